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

from raydemand.forecast.config import ForecastConfig
from raydemand.tune.runner import Family, checkpoint_of, report_final, run_sweep, run_trial

METRIC = "val_wape"
# `tune forecast` without --config: the seed's loss weights, contrastive lambda and learning rate, random
# search, ASHA stopping weak trials on each epoch's validation WAPE; trial 1 runs the base config's values.
DEFAULT_SWEEP = {
    "space": {"loss.mae": {"uniform": [0.2, 1.0]}, "loss.mse": {"uniform": [0.0, 0.6]},
              "loss.smape": {"choice": [0.0, 0.01, 0.1]}, "loss.contrastive": {"loguniform": [0.005, 0.3]},
              "lr": {"loguniform": [5e-4, 5e-3]}},
    "search": "random", "scheduler": "asha", "num_samples": 8, "include_base": True,
}


def forecast_trial(params: dict, settings: dict) -> None:
    from raydemand.forecast.train import train

    trained = run_trial(ForecastConfig, params, settings, lambda cfg, run_dir, **kw: train(
        cfg, settings["train"], run_dir, cache_dir=settings["cache_dir"], **kw))
    if trained is None:
        return
    run_dir, _, metrics = trained
    val, epoch = metrics["val"], metrics.get("chosen_epoch")
    report_final(run_dir, {METRIC: val["wape"], "val_mae": val["mae"], "val_mse": val["mse"],
                           "chosen_epoch": epoch, "train_seconds": metrics["seconds"],
                           "checkpoint": checkpoint_of(run_dir, epoch)})


def fill_cache(settings: dict, base: ForecastConfig) -> None:
    """Caption and embed every training product once, before trials running side by side would each
    do it (the swept keys do not change captions or embeddings)."""
    from raydemand.forecast.run import prepare_training

    if settings["cache_dir"] is not None:
        prepare_training(base, settings["train"], settings["cache_dir"])


FAMILY = Family(name="forecast", config_cls=ForecastConfig, trial=forecast_trial, metric=METRIC, mode="min",
                columns=[METRIC, "val_mae", "val_mse", "chosen_epoch", "train_seconds"], prepare=fill_cache,
                default_sweep=DEFAULT_SWEEP)


def tune_forecast(source, out: str | Path, sweep, base: ForecastConfig, *, resume: bool = False,
                  overwrite: bool = False, address: str | None = None) -> dict[str, Any]:
    source = str(Path(source).resolve()) if Path(str(source)).exists() else str(source)
    out = Path(out).resolve()
    per_trial = any(key.split(".")[0] in ("captions", "data") for key in sweep.space)
    settings = {"train": source, "cache_dir": None if per_trial else str(out / "cache")}
    return run_sweep(FAMILY, sweep, base, settings, out, resume=resume, overwrite=overwrite, address=address)
