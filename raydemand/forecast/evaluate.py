"""Evaluation of a run on its test products: metrics on both scales, predictions, a PNG.

The test products are the source's own test split (VISUELLE folders), or the latest
`data.holdout_share` of products by release date that training held out (Complete Journey, plain
tables). This is the only place test sales are read. Beside the served forecaster, the metrics
compare the trained forecaster alone and the baselines `forecast train` compared it with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raydemand.errors import InputError
from raydemand.forecast.data import Rows, load_table, units_per_value
from raydemand.forecast.metrics import both_scales, forecast_metrics
from raydemand.forecast.run import ForecastRun, load_run, select_rows, table_split

PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "test_metrics.json"
PLOT_FILE = "forecast_vs_actual.png"


def test_rows(run: ForecastRun, source: str | Path, cache_dir: str | Path | None = None) -> tuple[pd.DataFrame, Rows]:
    _, test_split = table_split(source)
    upv = units_per_value(source)
    if abs(upv - run.units_per_value) > 1e-9 * max(upv, 1.0):
        raise InputError(f"{source}: stores sales as units / {upv:g}, the run was trained on units / "
                         f"{run.units_per_value:g}; evaluate on a table in the training scale")
    df = load_table(source, split=test_split)
    part = "all" if test_split is not None or run.cfg.data.holdout_share == 0 else "test"
    df = select_rows(df, run.cfg.data, upv, part)
    return df, run.rows(df, cache_dir, with_targets=True)


def plot_forecasts(pred_units: np.ndarray, true_units: np.ndarray, path: str | Path, title: str) -> None:
    """Mean weekly units over the test products, and the six best-selling products one by one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raydemand.io import atomic_path

    weeks = np.arange(pred_units.shape[1])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(weeks, true_units.mean(0), "o-", label="actual")
    axes[0].plot(weeks, pred_units.mean(0), "s--", label="forecast")
    axes[0].set(title=f"mean over {len(true_units)} test rows", xlabel="week after release", ylabel="units")
    axes[0].legend()
    for i, row in enumerate(np.argsort(-true_units.sum(1))[:6]):
        color = f"C{i}"
        axes[1].plot(weeks, true_units[row], "-", color=color)
        axes[1].plot(weeks, pred_units[row], "--", color=color)
    axes[1].set(title="best sellers: actual (solid) vs forecast (dashed)", xlabel="week after release")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def comparison(run: ForecastRun, rows: Rows, served: np.ndarray) -> dict[str, dict[str, Any]]:
    """What `forecast train` compared on validation, on the test rows: {"served", "model" (the trained
    forecaster alone), each baseline the run recorded: {"forecaster", "wape", "mae"} on the unit scale}."""
    from raydemand.forecast.guard import alone

    model = alone(run.forecaster)
    preds = {"served": (run.forecaster, served),
             "model": (model, served if model is run.forecaster else model.predict(rows, run.pool))}
    preds.update({name: (b, b.predict(rows, run.pool)) for name, b in run.baselines.items()})
    out = {}
    for label, (forecaster, pred) in preds.items():
        m = forecast_metrics(pred * run.scale, rows.target * run.scale, per_week=False)
        out[label] = {"forecaster": forecaster.name, "wape": m["wape"], "mae": m["mae"]}
    return out


def evaluate(run_dir: str | Path, source: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Metrics of the run on the test products of `source`; files go to `out` (default RUN_DIR)."""
    from raydemand.io import atomic_write, write_table

    run = load_run(run_dir)
    out = Path(out or run_dir)
    df, rows = test_rows(run, source)
    pred = run.predict_rows(rows)
    metrics = {"forecaster": run.forecaster.name, "source": str(source), "rows": len(rows),
               "scale": run.scale, **both_scales(pred, rows.target, run.scale),
               "comparison": comparison(run, rows, pred)}
    out.mkdir(parents=True, exist_ok=True)
    keys = df[["external_code"] + (["retail"] if "retail" in df else [])].reset_index(drop=True)
    table = pd.concat([keys, pd.DataFrame(pred * run.scale / run.units_per_value,
                                          columns=[str(i) for i in range(pred.shape[1])])], axis=1)
    write_table(table, out / PREDICTIONS_FILE)
    plot_forecasts(pred * run.scale, rows.target * run.scale, out / PLOT_FILE,
                   f"{run.forecaster.name}: WAPE {metrics['units']['wape']:.1f}%")
    with atomic_write(out / METRICS_FILE, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics
