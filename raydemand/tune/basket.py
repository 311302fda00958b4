"""`tune basket`: pos_weight (or any basket key) x threshold. A threshold needs no retraining: each
trial trains once and scores every threshold of the list on the validation users (and, in clearly
named test_* columns, on the held-out test users for the seed's table; selection reads validation only).

Besides the runner's files, SWEEP_DIR holds results.csv / results.md (a row per trial x threshold:
pos_weight, threshold, f1_micro, f1_macro, precision@10, recall@10 on validation users, then test_*)
and heatmap.png (validation f1_micro over pos_weight x threshold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from raydemand.basket.config import BasketConfig
from raydemand.io import atomic_write, write_table
from raydemand.tune.runner import Family, checkpoint_of, finished_result, report_final, run_sweep, run_trial

POS_WEIGHTS = [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]  # the seed's grid
THRESHOLDS = [0.3, 0.4, 0.5, 0.6]
METRIC = "val_best_f1_micro"  # best f1_micro over the thresholds on validation users, in every epoch report


def _curve(scores, enc, thresholds, k: int) -> list[dict[str, float]]:
    from raydemand.basket.metrics import ranking_metrics, threshold_curve

    rank = ranking_metrics(scores, enc["target"], k, enc["missed"])
    return [{**row, f"precision@{k}": rank[f"precision@{k}"], f"recall@{k}": rank[f"recall@{k}"]}
            for row in threshold_curve(scores, enc["target"], thresholds, enc["missed"])]


def basket_trial(params: dict, settings: dict) -> None:
    """One Tune trial: train the basket model with these parameters, score every threshold."""
    from raydemand.basket.base import load_run
    from raydemand.basket.evaluate import test_arrays
    from raydemand.basket.train import train

    trained = run_trial(BasketConfig, params, settings,
                        lambda cfg, run_dir, **kw: train(cfg, settings["orders"], run_dir, **kw))
    if trained is None:
        return
    run_dir, cfg, metrics = trained
    k = cfg.k
    val_rank = {key: metrics["val"][key] for key in (f"precision@{k}", f"recall@{k}")}
    rows = [{**row, **val_rank} for row in metrics["val_threshold_curve"]]
    if settings.get("test_columns", True):
        run = load_run(run_dir)
        enc = test_arrays(run, settings["orders"])
        test = _curve(run.score(enc), enc, cfg.thresholds, k)
        rows = [{**v, **{f"test_{key}": value for key, value in t.items() if key != "threshold"}}
                for v, t in zip(rows, test)]
    epoch = metrics.get("chosen_epoch")
    report_final(run_dir, {METRIC: metrics["val"]["f1_micro"], "threshold": metrics["threshold"],
                           f"val_precision@{k}": val_rank[f"precision@{k}"],
                           f"val_recall@{k}": val_rank[f"recall@{k}"], "chosen_epoch": epoch,
                           "train_seconds": metrics["seconds"],
                           "checkpoint": checkpoint_of(run_dir, epoch),
                           "curve": rows})


FAMILY = Family(name="basket", config_cls=BasketConfig, trial=basket_trial, metric=METRIC, mode="max",
                columns=[METRIC, "threshold", "val_precision@10", "val_recall@10", "chosen_epoch", "train_seconds"],
                # The seed's grid: one full training per pos_weight, no early stopping between them.
                default_sweep={"space": {"pos_weight": {"grid": POS_WEIGHTS}}, "search": "grid",
                               "scheduler": "fifo"})


def results_table(trials: pd.DataFrame, space_keys: list[str]) -> pd.DataFrame:
    """A row per finished trial x threshold, in the SPEC's column order (validation first, then test_*)."""
    rows = []
    for trial in trials[trials["status"] == "finished"].itertuples(index=False):
        trial = trial._asdict()
        final = finished_result(Path(trial["run_dir"]))
        for row in final["curve"]:
            rows.append({**{k: trial[k] for k in space_keys}, "threshold": row["threshold"],
                         **{k: v for k, v in row.items() if k != "threshold"}, "trial_id": trial["trial_id"]})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    first = [*space_keys, "threshold", "f1_micro", "f1_macro", "precision@10", "recall@10"]
    first = [c for c in first if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]].sort_values([*space_keys, "threshold"])


def tune_basket(orders, out: str | Path, sweep, base: BasketConfig, *, resume: bool = False,
                overwrite: bool = False, address: str | None = None, test_columns: bool = True) -> dict[str, Any]:
    """Run (or resume) a basket sweep; writes the runner's files plus results.csv/.md and heatmap.png."""
    from raydemand.tune.report import heatmap, markdown_table

    orders = str(Path(orders).resolve()) if Path(str(orders)).exists() else str(orders)
    best = run_sweep(FAMILY, sweep, base, {"orders": orders, "test_columns": test_columns}, out,
                     resume=resume, overwrite=overwrite, address=address)
    import yaml

    from raydemand.config import load_config

    out = Path(out)
    sweep_keys = list(yaml.safe_load((out / "sweep.yaml").read_text())["space"])
    base = load_config(BasketConfig, out / "base.yaml")  # the saved one when resuming
    trials = pd.read_csv(out / "trials.csv")
    table = results_table(trials, sweep_keys)
    write_table(table, out / "results.csv")
    with atomic_write(out / "results.md", "w") as f:
        f.write(markdown_table(table) + "\n")
    if not table.empty and "pos_weight" in table.columns:
        name = base.model if base.model != "topfreq" else base.baseline
        heatmap(table, "f1_micro", out / "heatmap.png",
                f"{name}: validation f1_micro, {len(trials)} trainings")
    best["results"] = str(out.resolve() / "results.csv")
    return best
