"""Ray Tune sweeps: the sweep config and search space, and a real basket sweep whose driver is killed
midway (SIGKILL) and resumed: finished trials are not trained again, a crashing trial is reported and
the sweep goes on, and best.yaml is a config `basket train --config` accepts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from raydemand.config import Config, ConfigError, load_config

FAST = ["batch_size=128", "net.embeddings=random", "net.order_hidden=32", "net.embed_dim=16", "epochs=1"]


def test_sweep_config_rejects_bad_space(tmp_path):
    from raydemand.tune.config import load_sweep

    bad = {"nope": "space:\n  lr: {normal: [0, 1]}\n", "bounds": "space:\n  lr: {loguniform: [0.01, 0.001]}\n",
           "zero": "space:\n  lr: {loguniform: [0, 1]}\n", "key": "searchh: grid\n"}
    messages = {}
    for name, text in bad.items():
        (tmp_path / f"{name}.yaml").write_text(text)
        with pytest.raises(ConfigError) as e:
            load_sweep(tmp_path / f"{name}.yaml")
        messages[name] = str(e.value)
    assert "space.lr" in messages["nope"] and "loguniform" in messages["nope"]
    assert "low must be below high" in messages["bounds"]
    assert "> 0" in messages["zero"]
    assert "unknown key 'searchh'" in messages["key"]
    (tmp_path / "nobase.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_sweep(tmp_path / "nobase.yaml")


def test_space_and_params_apply_to_family_configs(tmp_path):
    from ray import tune

    from raydemand.basket.config import BasketConfig
    from raydemand.forecast.config import ForecastConfig
    from raydemand.tune.config import apply_params, load_sweep, param_space

    space = param_space({"lr": {"loguniform": [1e-4, 1e-2]}, "loss.mae": {"uniform": [0, 1]},
                         "pos_weight": {"grid": [5, 10]}, "epochs": 2, "model.heads": {"choice": [2, 4]}})
    assert isinstance(space["lr"], tune.search.sample.Float) and space["epochs"] == 2
    assert space["pos_weight"] == {"grid_search": [5, 10]}
    cfg = apply_params(ForecastConfig(), {"loss.mae": 0.3, "lr": 2e-3, "model.heads": 2})
    assert (cfg.loss.mae, cfg.lr, cfg.model.heads, cfg.loss.mse) == (0.3, 2e-3, 2, ForecastConfig().loss.mse)
    with pytest.raises(ConfigError, match="unknown key 'loss.mea'"):
        apply_params(ForecastConfig(), {"loss.mea": 0.3})
    with pytest.raises(ConfigError, match="pos_weight"):
        apply_params(BasketConfig(), {"pos_weight": -1})
    # every shipped sweep config loads, and its space keys exist in its family config
    configs = {"tune_basket": BasketConfig, "tune_forecast": ForecastConfig}
    from raydemand.design.config import GANTrainConfig

    configs["tune_design"] = GANTrainConfig
    root = Path(__file__).resolve().parents[1] / "jobs" / "configs"
    for path in sorted(root.glob("tune_*_space.yaml")) + [root / "tune_basket_completejourney.yaml"]:
        sweep = load_sweep(path)
        family = next(cls for name, cls in configs.items() if path.stem.startswith(name))
        base = load_config(family, sweep.base, sweep.set)
        apply_params(base, {k: (v if not isinstance(v, dict) else next(iter(v.values()))[0])
                            for k, v in sweep.space.items()}, source=str(path))


def test_parse_values():
    from raydemand.errors import InputError
    from raydemand.tune.cli import parse_values

    assert parse_values("5,10,15", "--pos-weight") == [5.0, 10.0, 15.0]
    assert parse_values("5:30:5", "--pos-weight") == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    assert parse_values("0.3:0.6:0.1", "--threshold") == [0.3, 0.4, 0.5, 0.6]
    with pytest.raises(InputError, match="--threshold"):
        parse_values("0.3,x", "--threshold")


def _finished(out: Path) -> list[Path]:
    return sorted(out.glob("runs/*/tune_result.json"))


@pytest.mark.slow
def test_basket_sweep_killed_and_resumed(ray_session, instacart_dir, tmp_path):
    """A sweep of 3 trials, 2 at a time (one crashes on an invalid pos_weight), is killed once a
    training finished, then resumed: the finished trial is not trained again, an interrupted one
    continues, and every result is present."""
    from raydemand.basket.config import BasketConfig
    from raydemand.cli import main

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("set: [" + ", ".join(FAST) + "]\nsearch: grid\nmax_concurrent: 2\n")
    out = tmp_path / "sw"
    argv = ["tune", "basket", "--orders", str(instacart_dir), "--out", str(out), "--config", str(sweep),
            "--pos-weight", "5,-1,10", "--threshold", "0.2,0.5"]
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([sys.executable, "-m", "raydemand", *argv], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while not _finished(out) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
    assert _finished(out), "no trial finished in time"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    log.close()
    assert not (out / "results.csv").exists()
    first = _finished(out)
    before = {p.parent.name: (p.stat().st_mtime_ns, (p.parent / "metrics.json").stat().st_mtime_ns) for p in first}

    assert main([*argv[:-4], "--resume"]) == 0  # the flags come back from the sweep folder
    after = {p.parent.name: (p.stat().st_mtime_ns, (p.parent / "metrics.json").stat().st_mtime_ns)
             for p in _finished(out)}
    assert {k: after[k] for k in before} == before  # finished trials were not trained or rewritten again
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and len(after) == 2
    crashed = trials[trials["pos_weight"] == -1].iloc[0]
    assert crashed["status"] == "error" and "pos_weight" in crashed["error"]
    assert set(trials.loc[trials["pos_weight"] != -1, "status"]) == {"finished"}

    results = pd.read_csv(out / "results.csv")
    assert list(results.columns[:6]) == ["pos_weight", "threshold", "f1_micro", "f1_macro", "precision@10",
                                         "recall@10"]
    assert len(results) == 4 and {"test_f1_micro", "test_recall@10"} <= set(results.columns)
    assert results[["f1_micro", "test_f1_micro"]].notna().all().all()
    best = json.loads((out / "best.json").read_text())
    val_best = results.loc[results["f1_micro"].idxmax()]
    assert best["params"]["pos_weight"] == val_best["pos_weight"]  # chosen on validation columns only
    assert Path(best["run_dir"], "model.pt").is_file() and Path(best["checkpoint"]).exists()
    cfg = load_config(BasketConfig, out / "best.yaml")  # what `basket train --config best.yaml` does
    assert cfg.pos_weight == best["params"]["pos_weight"] and cfg.epochs == 1 and cfg.thresholds == [0.2, 0.5]
    assert (out / "heatmap.png").stat().st_size > 1000 and (out / "results.md").read_text().startswith("| pos_weight")
    # each trial reports the checkpoint of its chosen epoch, and that checkpoint is on disk
    reported = [json.loads(p.read_text()) for p in _finished(out)]
    assert all(Path(r["checkpoint"]) == Path(r["run_dir"], "ray_train", f"epoch_{r['chosen_epoch']:04d}")
               for r in reported)
    assert all(Path(r["checkpoint"]).is_dir() for r in reported)


def test_sweep_folder_guards(tmp_path, capsys):
    """--resume needs a sweep; a folder holding one is refused without --resume/--overwrite (exit 2, one line)."""
    from raydemand.cli import main

    (tmp_path / "x.csv").write_text("user_id,order_id,order_number,product_id\n1,1,1,7\n")
    args = ["tune", "basket", "--orders", str(tmp_path / "x.csv"), "--out", str(tmp_path / "sw")]
    assert main([*args, "--resume"]) == 2
    assert "no sweep to resume" in capsys.readouterr().err
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "settings.json").write_text("{}")
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--pos-weight", "5,x"]) == 2
    assert "--pos-weight" in capsys.readouterr().err


class _Quadratic(Config):
    """A family config with one number: the objective is (x - 0.3)^2."""

    x: float = 0.0


@pytest.mark.slow
def test_optuna_search_through_the_runner(ray_session, tmp_path):
    """`search: optuna` (Tune's OptunaSearch over the YAML space) drives real trials through the same
    runner as the families: trials.csv holds every sample, best.yaml the best x, which a seeded TPE
    run puts near the optimum."""
    from raydemand.tune.config import SweepConfig
    from raydemand.tune.runner import Family, report_final, run_sweep, trial_run_dir

    def trial(params: dict, settings: dict) -> None:
        run_dir = trial_run_dir(settings)
        run_dir.mkdir(parents=True, exist_ok=True)
        report_final(run_dir, {"loss": (params["x"] - 0.3) ** 2})

    family = Family(name="quadratic", config_cls=_Quadratic, trial=trial, metric="loss", mode="min",
                    columns=["loss"])
    sweep = SweepConfig(space={"x": {"uniform": [-1.0, 1.0]}}, search="optuna", num_samples=8, max_concurrent=2,
                        scheduler="fifo", seed=0)
    best = run_sweep(family, sweep, _Quadratic(), {}, tmp_path / "sw")
    trials = pd.read_csv(tmp_path / "sw" / "trials.csv")
    assert best["finished"] == 8 and best["errors"] == 0 and len(trials) == 8
    assert trials["x"].between(-1, 1).all() and trials["x"].nunique() == 8
    assert best["value"] == pytest.approx(trials["loss"].min())
    chosen = load_config(_Quadratic, tmp_path / "sw" / "best.yaml")
    assert chosen.x == pytest.approx(best["params"]["x"])
    assert chosen.x == pytest.approx(trials.loc[trials["loss"].idxmin(), "x"])  # the best sample, not any


@pytest.mark.parametrize("family, flag, space, scheduler", [
    ("forecast", "--train", ["loss.mae", "loss.mse", "loss.smape", "loss.contrastive", "lr"], "asha"),
    ("design", "--images", ["model.gan", "model.alpha", "model.beta", "lr"], "asha"),
    ("basket", "--orders", ["pos_weight"], "fifo"),
])
def test_without_config_each_family_sweeps_its_default_space(tmp_path, capsys, visuelle2_dir, family, flag, space,
                                                             scheduler):
    """Without --config a sweep samples the family's default space (not N copies of the base config),
    forecast and design under ASHA; the flags and --set still apply on top."""
    from raydemand.cli import main

    source = {"--train": str(visuelle2_dir), "--images": "fashion-mnist", "--orders": "completejourney"}[flag]
    assert main(["tune", family, flag, source, "--out", str(tmp_path / "sw"), "--num-samples", "3",
                 "--set", "max_concurrent=2", "--check"]) == 0
    sweep = json.loads(capsys.readouterr().out)["config"]["sweep"]
    assert sorted(sweep["space"]) == sorted(space) and sweep["scheduler"] == scheduler
    assert sweep["num_samples"] == 3 and sweep["max_concurrent"] == 2
    sampled = [spec for spec in sweep["space"].values() if isinstance(spec, dict)]
    assert sampled and not (tmp_path / "sw").exists()
