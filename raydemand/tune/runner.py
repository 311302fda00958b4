"""The sweep runner every family shares: a `ray.tune.Tuner` over a family's trial function, resumable
from its storage folder, and the tables, best config and plots written from its results.

SWEEP_DIR holds
    sweep.yaml      the resolved sweep config            base.yaml   the family config every trial starts from
    settings.json   the data source and family options (read back by --resume)
    trials/         Tune's experiment folder (restored by `--resume`)
    runs/TRIAL_ID/  each trial's run directory, one the family's `train` wrote (see `raydemand.runs`)
    trials.csv/.md  a row per trial: status, error, parameters, objective, run directory
    best.yaml       the best trial's family config (`raydemand <family> train --config best.yaml`)
    best.json       the best trial: id, parameters, objective, run directory and checkpoint
    <metric>_vs_params.png

A trial is a driver function: it calls the family's `train`, which builds a `TorchTrainer` whose
epoch reports reach Tune through `TuneReportCallback` (so ASHA can stop it), then reports the run's
final metrics once more. A trial whose run directory already holds a finished run reports that run
instead of training again, and one whose training finished (its COMPLETE marker) is scored from
the saved run, so no finished training is ever repeated, whatever Tune's state says.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from raydemand.config import Config
from raydemand.io import atomic_write, write_table
from raydemand.tune.config import SweepConfig, apply_params, param_space

logger = logging.getLogger(__name__)

# Every family registry: a model registered outside the package is found here (see `plugin_modules`).
REGISTRIES = ("raydemand.forecast.base:FORECASTERS", "raydemand.basket.base:PREDICTORS",
              "raydemand.design.models:GANS", "raydemand.encoders:ENCODERS", "raydemand.forecast.captions:CAPTIONERS")
EXPERIMENT = "trials"
RUNS = "runs"
RESULT_FILE = "tune_result.json"  # a trial's final metrics, written into its run directory
SETTINGS_FILE = "settings.json"


@dataclass
class Family:
    """What the runner needs to know about a family."""

    name: str  # basket | forecast | design
    config_cls: type[Config]
    trial: Callable[[dict, dict], None]  # module-level trial function(params, settings)
    metric: str  # the objective every epoch report and the final report carry
    mode: str  # "min" | "max"
    columns: list[str] = field(default_factory=list)  # final-report values copied into trials.csv
    # The best trial is chosen by this final-report value when set (design: the scorer's distance,
    # which only a finished trial has); else by `metric`.
    select_metric: str | None = None
    # Driver-side work done once before the trials start (forecast: fill the shared embedding cache).
    prepare: Callable[[dict, Config], None] | None = None
    # The sweep without --config: its space, search, scheduler and samples (SweepConfig keys).
    default_sweep: dict[str, Any] = field(default_factory=dict)


# ---- trial side ---------------------------------------------------------------------------------


def trial_run_dir(settings: dict) -> Path:
    """This trial's run directory: SWEEP_DIR/runs/TRIAL_ID (the id survives a resume)."""
    from ray import tune

    return Path(settings["out"]) / RUNS / tune.get_context().get_trial_id()


def trial_config(family_cls: type[Config], params: dict, settings: dict) -> Config:
    for module in settings.get("plugins", []):
        importlib.import_module(module)  # their models register themselves in this worker too
    return apply_params(family_cls.model_validate(settings["base"]), params)


def plugin_modules() -> list[str]:
    """Modules outside raydemand that registered a model in this driver (a user's model file, a test's toy
    model). Each trial imports them before it builds its config, so that their names resolve in Ray's
    workers as they do here; they must be importable there (the job's working_dir, or PYTHONPATH)."""
    found = set()
    for source in REGISTRIES:
        module, _, registry = source.partition(":")
        if module in sys.modules:
            found |= {getattr(obj, "__module__", "") for obj in getattr(sys.modules[module], registry).values()}
    return sorted(m for m in found if m and m != "__main__" and not m.startswith("raydemand."))


def finished_result(run_dir: Path) -> dict | None:
    """The final metrics of a trial that already finished (None: it has to train)."""
    path = run_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def report_final(run_dir: Path, result: dict[str, Any], *, write: bool = True) -> None:
    """Write the trial's final metrics into its run directory (unless they are already there), then
    report them to Tune."""
    from ray import tune

    result = {**result, "run_dir": str(run_dir)}
    if write:
        with atomic_write(run_dir / RESULT_FILE, "w") as f:
            json.dump(result, f, indent=2, default=float)
    tune.report({k: v for k, v in result.items() if isinstance(v, (int, float, str, bool))})


def reported_finished(run_dir: Path) -> bool:
    """True when this trial already finished (its driver was killed after that): its saved final
    metrics are reported again and nothing is trained."""
    done = finished_result(run_dir)
    if done is not None:
        report_final(run_dir, done, write=False)
    return done is not None


def train_or_load(run_dir: Path, train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The run's metrics.json when its training already finished (the driver was killed while the
    trial was scoring the trained run), else `train()`, which resumes an unfinished run from its
    checkpoints (`raydemand.runs.start_run`)."""
    from raydemand import runs

    if runs.is_complete(run_dir):
        return runs.read_metrics(run_dir)
    return train()


def tune_callbacks() -> list:
    from ray.tune.integration.ray_train import TuneReportCallback

    return [TuneReportCallback()]


def run_trial(config_cls: type[Config], params: dict, settings: dict,
              train: Callable[..., dict[str, Any]]) -> tuple[Path, Config, dict[str, Any]] | None:
    """The shared start of every family's trial: None when the trial already finished (its result was
    reported again), else (run dir, trial config, the run's metrics), training unless the run finished.
    `train(cfg, run_dir, callbacks=...)` is the family's training call."""
    run_dir = trial_run_dir(settings)
    if reported_finished(run_dir):
        return None
    cfg = trial_config(config_cls, params, settings)
    metrics = train_or_load(run_dir, lambda: train(cfg, run_dir, callbacks=tune_callbacks()))
    return run_dir, cfg, metrics


def checkpoint_of(run_dir: Path, epoch: int | None) -> str:
    """The chosen epoch's Ray Train checkpoint folder, else the run directory (baselines have none)."""
    from raydemand.runs import checkpoint_dir

    checkpoint = checkpoint_dir(run_dir, epoch) if epoch is not None else run_dir
    return str(checkpoint if checkpoint.exists() else run_dir)


# ---- driver side --------------------------------------------------------------------------------


def _base_point(sweep: SweepConfig, base: Config) -> list[dict[str, Any]] | None:
    """The base config's values of the sampled keys, as Tune's `points_to_evaluate`."""
    if not sweep.include_base:
        return None
    data = base.model_dump(mode="json")
    point = {}
    for key, spec in sweep.space.items():
        if isinstance(spec, dict):
            node = data
            for part in key.split("."):
                node = node[part]
            point[key] = node
    return [point]


def _search_alg(sweep: SweepConfig, metric: str, mode: str, base: Config):
    points = _base_point(sweep, base)
    if sweep.search == "optuna":
        try:
            from ray.tune.search.optuna import OptunaSearch
        except ImportError:
            from raydemand.config import ConfigError

            raise ConfigError("search: optuna needs the optional package `optuna` (pip install optuna); "
                              "use random or grid") from None
        return OptunaSearch(metric=metric, mode=mode, seed=sweep.seed, points_to_evaluate=points)
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(random_state=sweep.seed, max_concurrent=sweep.max_concurrent,
                                 points_to_evaluate=points)


def _scheduler(sweep: SweepConfig, epochs: int | None):
    if sweep.scheduler == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler

    # One report per epoch, then the trial's final report: max_t covers both, so ASHA never stops a
    # trial that is writing its finished run.
    max_t = sweep.asha.max_t or ((epochs or 100) + 1)
    return ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=sweep.asha.grace_period,
                         reduction_factor=sweep.asha.reduction_factor)


def _trainable(family: Family, sweep: SweepConfig, settings: dict):
    from ray import tune

    resources = {"cpu": sweep.resources.cpus, "gpu": sweep.resources.gpus}
    return tune.with_resources(tune.with_parameters(family.trial, settings=settings), resources)


def start(out: Path, sweep: SweepConfig, base: Config, settings: dict, *, resume: bool, overwrite: bool):
    """Prepare SWEEP_DIR: a new sweep writes its settings; `resume` reads the saved ones back."""
    from raydemand.config import load_config

    out = out.resolve()
    experiment = out / EXPERIMENT
    if resume:
        if not (out / SETTINGS_FILE).is_file():
            raise FileNotFoundError(f"{out}: no sweep to resume (no {SETTINGS_FILE}; start one without --resume)")
        saved = json.loads((out / SETTINGS_FILE).read_text())
        sweep = load_config(SweepConfig, out / "sweep.yaml")
        return out, sweep, saved
    if experiment.exists() or (out / SETTINGS_FILE).exists():
        if not overwrite:
            raise FileExistsError(f"{out}: already holds a sweep (pass --resume to continue it, "
                                  "--overwrite to start over)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {**settings, "out": str(out), "base": base.model_dump(mode="json"), "plugins": plugin_modules()}
    sweep.save(out / "sweep.yaml")
    base.save(out / "base.yaml")
    with atomic_write(out / SETTINGS_FILE, "w") as f:
        json.dump(settings, f, indent=2)
    return out, sweep, settings


def start_ray(address: str | None) -> None:
    """Join `address` (or RAY_ADDRESS), else start a local Ray that can free a stopped trial's CPUs.

    When a scheduler stops a trial, its Ray Train controller dies with it and Ray Train's
    placement-group cleaner frees the workers' CPUs. The cleaner asks the state API (served by the
    dashboard) whether the controller is alive, finding the cluster by address: so a local cluster
    started for a sweep runs its dashboard (on 127.0.0.1), and gets a known GCS port that its workers
    see as RAY_ADDRESS (the job's runtime env), since with several Ray instances on one machine the
    address cannot be guessed. Without both, stopped trials keep their CPUs and later trials wait.
    """
    import os
    import socket

    import ray

    from raydemand.ray_utils import init_ray

    if ray.is_initialized() or address or os.environ.get("RAY_ADDRESS"):
        init_ray(address=address)
        return
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    os.environ["RAY_GCS_SERVER_PORT"] = str(port)
    try:
        ray.init(include_dashboard=True, dashboard_host="127.0.0.1", logging_level=logging.WARNING,
                 configure_logging=True,
                 runtime_env={"env_vars": {"RAY_ADDRESS": f"{ray.util.get_node_ip_address()}:{port}"}})
    finally:
        del os.environ["RAY_GCS_SERVER_PORT"]


def _check_capacity(sweep: SweepConfig, base: Config) -> None:
    """Warn when max_concurrent trials cannot all hold their CPUs at once on this cluster: the extra
    trials' Ray Train worker groups then wait, time out and retry instead of training."""
    import ray

    train = getattr(base, "train", None)
    per_trial = sweep.resources.cpus + (train.num_workers * train.cpus_per_worker if train else 0)
    cpus = ray.cluster_resources().get("CPU", 0)
    if sweep.max_concurrent * per_trial > cpus:
        logger.warning("max_concurrent=%d trials x %.1f CPUs each exceed the cluster's %g CPUs: trials will "
                       "wait for each other (lower --max-concurrent, or add CPUs)", sweep.max_concurrent, per_trial,
                       cpus)


def run_sweep(family: Family, sweep: SweepConfig, base: Config, settings: dict, out: str | Path, *,
              resume: bool = False, overwrite: bool = False, address: str | None = None) -> dict[str, Any]:
    """Run (or resume) a sweep into `out`; returns the best trial's record (best.json)."""
    from ray import tune

    out, sweep, settings = start(Path(out), sweep, base, settings, resume=resume, overwrite=overwrite)
    base = family.config_cls.model_validate(settings["base"])
    metric, mode = sweep.metric or family.metric, sweep.mode or family.mode
    start_ray(address)
    _check_capacity(sweep, base)
    if family.prepare is not None:
        family.prepare(settings, base)
    trainable = _trainable(family, sweep, settings)
    experiment = out / EXPERIMENT
    if resume and tune.Tuner.can_restore(str(experiment)):
        # Finished and failed trials keep their results; running and pending ones continue.
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
    else:
        epochs = getattr(base, "epochs", None)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(sweep.space),
            tune_config=tune.TuneConfig(metric=metric, mode=mode,
                                        search_alg=_search_alg(sweep, metric, mode, base),
                                        scheduler=_scheduler(sweep, epochs), num_samples=sweep.num_samples,
                                        max_concurrent_trials=sweep.max_concurrent,
                                        trial_dirname_creator=lambda trial: trial.trial_id),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(out),
                                      failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                                      verbose=1),
        )
    grid = tuner.fit()
    trials = trials_table(grid, family, out, sweep, metric)
    points = _base_point(sweep, base)
    if points:
        trials.insert(3, "base_config", [all(r[k] == v for k, v in points[0].items())
                                         for r in trials.to_dict("records")])
    return write_results(family, trials, base, out, sweep, family.select_metric or metric, mode)


def trials_table(grid, family: Family, out: Path, sweep: SweepConfig, metric: str) -> pd.DataFrame:
    """A row per trial: id, status (finished | stopped | error | unfinished), error, parameters, objective,
    run dir."""
    # Tune's own trial states: TERMINATED (ran to its end or was stopped by the scheduler), ERROR, or
    # PENDING/RUNNING/PAUSED when the sweep was interrupted (`--resume` continues those).
    # A trial's sampled values come from Tune's trial record: a trial that failed before reporting
    # has an empty result config.
    trials = {t.trial_id: t for t in grid._experiment_analysis.trials}
    rows = []
    for result in grid:
        trial_id = Path(result.path).name
        run_dir = out / RUNS / trial_id
        final = finished_result(run_dir)
        metrics = result.metrics or {}
        if result.error is not None:
            last_line = str(result.error).strip().splitlines()[-1]
            status, error = "error", f"{type(result.error).__name__}: {last_line}"
        elif final is not None:
            status, error = "finished", ""
        elif trials[trial_id].status == "TERMINATED":
            status, error = "stopped", ""  # stopped early by the scheduler: no final model
        else:
            status, error = "unfinished", ""
        row = {"trial_id": trial_id, "status": status, "error": error}
        row.update({k: (trials[trial_id].config or {}).get(k) for k in sweep.space})
        source = final if final is not None else metrics
        row.update({k: source.get(k) for k in [metric, *family.columns]})
        row["epochs_reported"] = metrics.get("training_iteration")
        row["seconds"] = round(float(metrics.get("time_total_s", 0.0)), 1)
        row["run_dir"] = str(run_dir) if final is not None else ""
        rows.append(row)
    df = pd.DataFrame(rows).sort_values("trial_id", kind="stable").reset_index(drop=True)
    for column in ("chosen_epoch", "epochs_reported"):
        if column in df:
            df[column] = pd.to_numeric(df[column]).astype("Int64")
    return df


def write_results(family: Family, trials: pd.DataFrame, base: Config, out: Path, sweep: SweepConfig,
                  metric: str, mode: str) -> dict[str, Any]:
    from raydemand.tune.report import markdown_table, plot_metric_vs_params

    write_table(trials, out / "trials.csv")
    with atomic_write(out / "trials.md", "w") as f:
        f.write(markdown_table(trials) + "\n")
    done = trials[(trials["status"] == "finished") & trials[metric].notna()]
    best: dict[str, Any] = {"metric": metric, "mode": mode, "trials": len(trials),
                            "finished": int((trials["status"] == "finished").sum()),
                            "stopped": int((trials["status"] == "stopped").sum()),
                            "errors": int((trials["status"] == "error").sum()),
                            "unfinished": int((trials["status"] == "unfinished").sum())}
    if not done.empty:
        row = done.sort_values(metric, ascending=(mode == "min"), kind="stable").iloc[0]
        params = {k: _plain(row[k]) for k in sweep.space}
        cfg = apply_params(base, params)
        cfg.save(out / "best.yaml")
        final = finished_result(Path(row["run_dir"])) or {}
        best.update({"trial_id": row["trial_id"], "value": float(row[metric]), "params": params,
                     "run_dir": row["run_dir"], "checkpoint": final.get("checkpoint"),
                     "config": str(out / "best.yaml")})
    with atomic_write(out / "best.json", "w") as f:
        json.dump(best, f, indent=2, default=str)
    sampled = [k for k in sweep.space if isinstance(sweep.space[k], dict)]
    shown = trials[trials["status"].isin(["finished", "stopped"]) & trials[metric].notna()]
    if sampled and not shown.empty:
        plot_metric_vs_params(shown, sampled, metric, out / f"{metric}_vs_params.png",
                              f"{family.name} sweep: {len(done)} finished, {len(shown) - len(done)} stopped early")
    return best


def _plain(value):
    """numpy scalars from a DataFrame row as plain Python values (for configs and JSON)."""
    return value.item() if hasattr(value, "item") else value
