"""`tune forecast`: loss weights (MAE/MSE/SMAPE), contrastive lambda, learning rate or any other
ForecastConfig key; objective: validation WAPE (the latest releases of the training table; the test
split is never read), with ASHA stopping weak trials on the WAPE of each epoch.

Trials share one embedding cache (SWEEP_DIR/cache), filled once by the driver before the trials
start: captions and frozen-encoder vectors do not depend on loss, model or optimiser keys. Entries
are keyed by encoder, image size and the captions encoded (see `forecast.data.embed_products`), so
no trial reads another config's vectors; a sweep over `captions.*` or `data.*` keys still gives every
trial its own cache, so that trials do not compute the same new entry side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raydemand import runs
from raydemand.forecast.config import ForecastConfig
from raydemand.tune.runner import (Family, report_final, reported_finished, run_sweep, train_or_load, trial_config,
                                   trial_run_dir, tune_callbacks)

METRIC = "val_wape"


def forecast_trial(params: dict, settings: dict) -> None:
    from raydemand.forecast.train import train

    run_dir = trial_run_dir(settings)
    if reported_finished(run_dir):
        return
    cfg = trial_config(ForecastConfig, params, settings)
    metrics = train_or_load(run_dir, lambda: train(cfg, settings["train"], run_dir, cache_dir=settings["cache_dir"],
                                                   callbacks=tune_callbacks()))
    val = metrics["val"]
    epoch = metrics.get("chosen_epoch")
    checkpoint = runs.checkpoint_dir(run_dir, epoch) if epoch is not None else run_dir
    report_final(run_dir, {METRIC: val["wape"], "val_mae": val["mae"], "val_mse": val["mse"],
                           "chosen_epoch": epoch, "train_seconds": metrics["seconds"],
                           "checkpoint": str(checkpoint if Path(checkpoint).exists() else run_dir)})


def fill_cache(settings: dict, base: ForecastConfig) -> None:
    """Caption and embed every training product once, before trials running side by side would each
    do it (the swept keys do not change captions or embeddings)."""
    from raydemand.forecast.run import prepare_training

    if settings["cache_dir"] is not None:
        prepare_training(base, settings["train"], settings["cache_dir"])


FAMILY = Family(name="forecast", config_cls=ForecastConfig, trial=forecast_trial, metric=METRIC, mode="min",
                columns=[METRIC, "val_mae", "val_mse", "chosen_epoch", "train_seconds"], prepare=fill_cache)


def tune_forecast(source, out: str | Path, sweep, base: ForecastConfig, *, resume: bool = False,
                  overwrite: bool = False, address: str | None = None) -> dict[str, Any]:
    source = str(Path(source).resolve()) if Path(str(source)).exists() else str(source)
    out = Path(out).resolve()
    per_trial = any(key.split(".")[0] in ("captions", "data") for key in sweep.space)
    settings = {"train": source, "cache_dir": None if per_trial else str(out / "cache")}
    return run_sweep(FAMILY, sweep, base, settings, out, resume=resume, overwrite=overwrite, address=address)
