"""Training: the Ray Train loop of CrossAttnRNN, its forecaster, and `train(cfg, source, run_dir)`.

`train` is the `raydemand forecast train` stage and the function Tune calls: it reads the
training table, carves the validation split off by release date (the latest `data.val_share` of
products), captions and embeds every product once (frozen encoders, cached), fits the configured
forecaster (CrossAttnRNN through Ray Train's TorchTrainer; baselines in closed form) and writes a
self-contained run directory: config.yaml, model.pt, metrics.json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from raydemand.errors import InputError
from raydemand.forecast.base import Forecaster, create_forecaster, register_forecaster
from raydemand.forecast.config import ForecastConfig
from raydemand.forecast.data import Rows, model_inputs
from raydemand.forecast.losses import ForecastLoss
from raydemand.forecast.metrics import forecast_metrics
from raydemand.training import StepMeans, TrainTask, prepare_model, run_loop, shard_batches, unwrap, validation_shard


# ---- the epoch, shared by the Ray Train loop and a plain PyTorch loop (bench) ----------------


# Arrays with one entry per product, not per row (a trunk run's decoded images): rows reach theirs
# through `pixel_index`, so selecting rows leaves them whole.
PRODUCT_ARRAYS = ("pixels",)


def take_rows(arrays: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v if k in PRODUCT_ARRAYS else v[idx] for k, v in arrays.items()}


def to_tensors(arrays: dict[str, np.ndarray], idx: np.ndarray, device) -> dict[str, Any]:
    import torch

    batch = {k: torch.as_tensor(v[idx]).to(device, non_blocking=True) for k, v in arrays.items()
             if k not in PRODUCT_ARRAYS and k != "pixel_index"}
    if "pixels" in arrays:  # (B, 3, H, W) float16 -> float32: each row's product image
        batch["image"] = torch.as_tensor(arrays["pixels"][arrays["pixel_index"][idx]]).to(device).float()
    return batch


def augment_images(images, mode: str):
    """Training-only augmentation of a batch of normalised images (B, 3, H, W): 'flip' mirrors a random
    half left-right; 'flip_crop' also shifts each image by up to 1/8 of its side, repeating the edges."""
    import torch
    import torch.nn.functional as F

    if mode == "none":
        return images
    b, c, h, w = images.shape
    flip = torch.rand(b, device=images.device) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if mode == "flip_crop":
        ph, pw = max(1, h // 8), max(1, w // 8)
        padded = F.pad(images, (pw, pw, ph, ph), mode="replicate")  # (B, C, H + 2ph, W + 2pw)
        rows = torch.randint(0, 2 * ph + 1, (b, 1), device=images.device) + torch.arange(h, device=images.device)  # (B, H)
        cols = torch.randint(0, 2 * pw + 1, (b, 1), device=images.device) + torch.arange(w, device=images.device)  # (B, W)
        batch = torch.arange(b, device=images.device)[:, None, None, None]
        channel = torch.arange(c, device=images.device)[None, :, None, None]
        images = padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)
    return images


def forecast_step(model, opt, loss_fn: ForecastLoss, arrays: dict[str, np.ndarray], idx: np.ndarray,
                  ctx, augment: str = "none") -> dict[str, float]:
    """One optimiser step on rows `idx` of `arrays`; the loss terms, named `train_<term>`. `augment`
    (model.augment) applies to a trunk's images only, and only here: never in validation or predict."""
    batch = to_tensors(arrays, idx, ctx.device)
    if batch["image"].ndim == 4:
        batch["image"] = augment_images(batch["image"], augment)
    with ctx.autocast():
        out = model(batch)
    terms = loss_fn(out, batch)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    opt.step()
    return {f"train_{k}": float(v.detach()) for k, v in terms.items()}


def train_epoch(model, opt, loss_fn: ForecastLoss, arrays: dict[str, np.ndarray], cfg: ForecastConfig, epoch: int,
                ctx, batches: list[np.ndarray] | None = None) -> dict[str, float]:
    """One pass over this worker's shard of `arrays` in plain PyTorch (the bench's loop; `ForecastTask`
    runs the same steps inside the training skeleton)."""
    model.train()
    if batches is None:
        batches = epoch_batches(len(arrays["target"]), cfg, epoch, ctx.rank, ctx.world_size)
    steps = StepMeans()
    for idx in batches:
        steps.add(forecast_step(model, opt, loss_fn, arrays, idx, ctx, cfg.model.augment), len(idx))
    return steps.means()


def epoch_batches(n: int, cfg: ForecastConfig, epoch: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
    return shard_batches(n, cfg.batch_size, cfg.seed, epoch, rank, world)


def model_outputs(model, arrays: dict[str, np.ndarray], device, keys: tuple[str, ...] = ("forecast",),
                  batch_size: int = 1024, ctx=None) -> dict[str, np.ndarray]:
    """The model's outputs `keys` for every row of `arrays`, in eval mode, as float32 arrays."""
    import torch

    model.eval()
    n = len(arrays["neighbours"])
    outs: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    inputs = {k: v for k, v in arrays.items() if k not in ("target", "neighbour_index")}
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = to_tensors(inputs, np.arange(start, min(start + batch_size, n)), device)
            with (ctx.autocast() if ctx is not None else _null()):
                out = model(batch)
            for k in keys:
                outs[k].append(out[k].float().cpu().numpy())
    return {k: np.concatenate(v) if v else np.zeros((0, 12), np.float32) for k, v in outs.items()}


def predict_arrays(model, arrays: dict[str, np.ndarray], device, batch_size: int = 1024, ctx=None) -> np.ndarray:
    """(N, 12) raw model forecasts (normalised), in eval mode."""
    return model_outputs(model, arrays, device, ("forecast",), batch_size, ctx)["forecast"]


def _null():
    import contextlib

    return contextlib.nullcontext()


VALIDATION_SUMS = ("val_mae", "val_mse", "val_smape", "val_abs_target")


def validation_sums(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Sums over the rows of `pred` and `target` (N, 12) of their per-row means (absolute error, squared
    error, SMAPE, |actual|): a rank's share of `validation_metrics`' inputs."""
    import torch

    from raydemand.forecast.losses import smape

    if not len(pred):
        return dict.fromkeys(VALIDATION_SUMS, 0.0)
    m = forecast_metrics(pred, target, per_week=False)
    s = float(smape(torch.as_tensor(pred), torch.as_tensor(target)))
    means = (m["mae"], m["mse"], s, float(np.abs(np.asarray(target, np.float64)).mean()))
    return {k: v * len(pred) for k, v in zip(VALIDATION_SUMS, means)}


def validation_metrics(means: dict[str, float], cfg: ForecastConfig) -> dict[str, float]:
    """val_loss = the forecasting part of the training loss (no contrastive term), plus MAE, MSE and WAPE,
    from the means of `validation_sums` over all validation rows (WAPE = sum |error| / sum |actual|)."""
    loss = cfg.loss.mae * means["val_mae"] + cfg.loss.mse * means["val_mse"] + cfg.loss.smape * means["val_smape"]
    wape = 100.0 * means["val_mae"] / max(means["val_abs_target"], 1e-12)
    return {"val_loss": loss, "val_mae": means["val_mae"], "val_mse": means["val_mse"], "val_wape": wape}


def build_model(cfg: ForecastConfig, dims: dict[str, Any]):
    import torch

    from raydemand.forecast.model import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return create_model(cfg.forecaster, cfg.model, dims["image_dim"], dims["caption_dim"],
                            attribute_sizes=dims.get("attribute_sizes"), trend_series=dims.get("trend_series", 0))


# ---- the static attribute branch's vocabularies -----------------------------------------------


def fit_vocab(rows: Rows, min_count: int = 1) -> list[np.ndarray]:
    """Per attribute column of `rows.side` (the run's attribute columns), the sorted uint64 hashes of
    the values seen at least `min_count` times; a value's index is its position + 1 (0: unknown)."""
    vocab = []
    for a in range(rows.side.attributes.shape[1]):
        values, counts = np.unique(rows.side.attributes[:, a], return_counts=True)
        vocab.append(values[counts >= min_count])
    return vocab


def attribute_codes(rows: Rows, vocab: list[np.ndarray]) -> np.ndarray:
    """(N, A) int64 vocabulary indices of `rows`' attribute values; 0 for values outside the vocabulary."""
    hashes = rows.side.attributes
    if hashes.shape[1] != len(vocab):
        raise InputError(f"the rows have {hashes.shape[1]} attribute column(s), the model's vocabularies "
                         f"{len(vocab)}")
    out = np.zeros((len(rows), len(vocab)), np.int64)
    for a, values in enumerate(vocab):
        pos = np.searchsorted(values, hashes[:, a])
        found = pos < len(values)
        found[found] = values[pos[found]] == hashes[found, a]
        out[:, a] = np.where(found, pos + 1, 0)
    return out


def trend_series(train: Rows, cfg: ForecastConfig) -> int:
    """S, the series per product the trend branch reads: 0 (no branch) when switched off or when no
    training row has an observed week (tables without trends)."""
    if not cfg.model.trends or train.trends is None or not train.trend_observed.any():
        return 0
    return int(train.trends.shape[1])


class ForecastTask(TrainTask):
    """CrossAttnRNN in the training skeleton: AdamW steps on this rank's padded shard of the training
    rows, early stopping on the validation loss over every rank's share of the validation rows."""

    name = "crossattnrnn"

    def __init__(self, config: dict):
        self.cfg = ForecastConfig.model_validate(config["cfg"])
        self.dims, self.train_arrays, self.val_arrays = config["dims"], config["train"], config["val"]
        self.epochs, self.seed, self.patience = self.cfg.epochs, self.cfg.seed, self.cfg.patience
        self.bf16 = self.cfg.train.bf16

    def setup(self, ctx):
        import torch

        self.model = prepare_model(build_model(self.cfg, self.dims))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.loss_fn = ForecastLoss(self.cfg.loss)
        return {"model": self.model}, {"opt": self.opt}

    def batches(self, epoch: int, ctx) -> list[np.ndarray]:
        return epoch_batches(len(self.train_arrays["target"]), self.cfg, epoch, ctx.rank, ctx.world_size)

    def train_step(self, idx: np.ndarray, epoch: int, ctx) -> tuple[dict[str, float], float]:
        return (forecast_step(self.model, self.opt, self.loss_fn, self.train_arrays, idx, ctx, self.cfg.model.augment),
                len(idx))

    def evaluate(self, epoch: int, ctx) -> tuple[dict[str, float], float]:
        part = validation_shard(len(self.val_arrays["target"]), ctx)
        arrays = take_rows(self.val_arrays, part)
        # the module inside DDP: ranks score different numbers of rows, which must not meet in a collective
        pred = predict_arrays(unwrap(self.model), arrays, ctx.device, ctx=ctx)
        return validation_sums(pred, arrays["target"]), len(part)

    def finish(self, metrics: dict[str, float], seconds: float, seen: float) -> dict[str, float]:
        train = {k: v for k, v in metrics.items() if k.startswith("train_")}
        return {**train, "epoch_seconds": seconds, **validation_metrics(metrics, self.cfg)}


def train_loop(config: dict) -> None:
    """Ray Train worker loop: epochs with checkpoints, resume, early stopping on the validation loss."""
    run_loop(ForecastTask(config))


@register_forecaster
class CrossAttnForecaster(Forecaster):
    name = "crossattnrnn"

    def fit(self, train: Rows, val: Rows, pool: Rows, run_dir: Path | None = None,
            callbacks: list | None = None) -> dict[str, Any]:
        from raydemand.training import fit, load_state

        if run_dir is None:
            raise ValueError("crossattnrnn trains through Ray Train and needs a run directory")
        self.fit_vocab(train)
        arrays = self.inputs(train, pool)
        # The earliest training rows have no product observed before them. With a residual base they
        # teach the decoder to carry the whole level itself, which it then adds on top of the
        # neighbours' curves of later (validation, test) products: forecasts double. By default they
        # are left out; `model.train_without_neighbours` keeps them with an empty neighbour set.
        known = arrays["neighbour_weight"].sum(1) > 0
        if not self.cfg.model.train_without_neighbours:
            if not known.any():
                raise InputError("no training product has a similar product released early enough "
                                 f"(retrieval.min_known_weeks={self.cfg.retrieval.min_known_weeks}) to learn from")
            arrays = take_rows(arrays, known)
        loop_config = {"cfg": self.cfg.model_dump(mode="json"), "dims": self.dims, "train": arrays,
                       "val": self.inputs(val, pool)}
        result = fit(train_loop, loop_config, run_dir, self.cfg.train, metric="val_loss", mode="min",
                     callbacks=callbacks)
        self.model = build_model(self.cfg, self.dims)
        self.model.load_state_dict(load_state(result.best_checkpoint_dir)["modules"]["model"])
        return {"history": result.history, "best": result.best_metrics, "train_rows_without_neighbours": int((~known).sum()),
                "chosen_epoch": int(result.best_metrics["epoch"])}

    vocab: list[np.ndarray] = []  # per attribute column, the known values' hashes (empty: no attribute branch)

    def fit_vocab(self, train: Rows) -> dict[str, Any]:
        """Fit the attribute vocabularies on the training rows; returns (and keeps) the model's dims."""
        self.vocab = fit_vocab(train, self.cfg.model.attribute_min_count) if self.cfg.model.attributes else []
        self.dims = {"image_dim": int(train.image.shape[1]), "caption_dim": int(train.caption.shape[1]),
                     "attribute_sizes": [len(v) for v in self.vocab], "trend_series": trend_series(train, self.cfg)}
        return self.dims

    def inputs(self, rows: Rows, pool: Rows, with_index: bool = False) -> dict[str, np.ndarray]:
        """The model's input arrays of `rows`: `model_inputs` plus the attribute codes (static branch)."""
        arrays = model_inputs(rows, pool, self.cfg.retrieval, with_index=with_index)
        if self.vocab:
            arrays["attributes"] = attribute_codes(rows, self.vocab)
        if not getattr(self, "dims", {}).get("trend_series"):  # no trend branch: its arrays would only travel
            arrays.pop("trends", None)
            arrays.pop("trend_observed", None)
        return arrays

    def predict(self, rows: Rows, pool: Rows) -> np.ndarray:
        pred = predict_arrays(self.model, self.inputs(rows, pool), "cpu")
        return np.clip(pred, 0, None)

    def explain(self, rows: Rows, pool: Rows) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Forecasts, and per row the caption's attention over the image tokens (`image_text`, one
        weight per token; a cached image is one token) and the additive attention over the
        retrieved neighbours (`neighbours`: pool product code and weight, strongest first)."""
        arrays = self.inputs(rows, pool, with_index=True)
        out = model_outputs(self.model, arrays, "cpu", ("forecast", "image_text_attn", "neighbour_attn"))
        codes = pool.side.codes
        attention = []
        for i, (image_text, weights) in enumerate(zip(out["image_text_attn"], out["neighbour_attn"])):
            real = [(int(j), float(w)) for j, w in zip(arrays["neighbour_index"][i], weights) if j >= 0]
            attention.append({
                "image_text": [float(w) for w in image_text],
                "neighbours": [{"external_code": str(codes[j]), "weight": w}
                               for j, w in sorted(real, key=lambda jw: -jw[1])],
            })
        return np.clip(out["forecast"], 0, None), attention

    def get_state(self) -> dict[str, Any]:
        import torch

        vocab = [torch.as_tensor(np.asarray(v, np.uint64).view(np.int64)) for v in self.vocab]
        return {"dims": self.dims, "weights": self.model.state_dict(), "vocab": vocab}

    def set_state(self, state: dict[str, Any]) -> None:
        self.dims = dict(state["dims"])
        if "vocab" not in state:
            # written before the caption fusion and the attribute branch (2026-11-29): the seed's
            # fusion, no attributes, so older model.pt files keep loading
            model = self.cfg.model.model_copy(update={"fusion": "seed", "attributes": False})
            self.cfg = self.cfg.model_copy(update={"model": model})
        self.vocab = [np.asarray(v.numpy()).view(np.uint64) for v in state.get("vocab", [])]
        self.dims.setdefault("attribute_sizes", [len(v) for v in self.vocab])
        self.model = build_model(self.cfg, self.dims)
        self.model.load_state_dict(state["weights"])  # strict: a mismatch is an error


# ---- the stage ----------------------------------------------------------------------------------


def train(cfg: ForecastConfig, source: str | Path, run_dir: str | Path, *, overwrite: bool = False,
          cache_dir: str | Path | None = None, callbacks: list | None = None) -> dict[str, Any]:
    """Fit `cfg.forecaster` on `source` and write RUN_DIR; returns the metrics written to metrics.json.

    Running again on an existing RUN_DIR of an unfinished CrossAttnRNN run resumes it from its
    latest checkpoint; `overwrite` starts over instead. `callbacks` go to Ray Train's RunConfig
    (e.g. `ray.tune.integration.ray_train.TuneReportCallback()`): every epoch reports `val_loss`
    (the selection metric), `val_wape`, `val_mae`, `val_mse`, `train_loss` and `epoch`.

    The baselines of `cfg.baselines` are fitted beside it and compared on validation; model.pt holds
    what `raydemand.forecast.guard` serves (metrics.json: `val` of the forecaster, `baselines`, `served`).
    """
    from raydemand import runs
    from raydemand.forecast.guard import fit_baselines, guarded
    from raydemand.forecast.run import prepare_training, save_model

    run_dir = runs.start_run(run_dir, cfg, overwrite=overwrite)
    start = time.perf_counter()
    np.random.seed(cfg.seed)
    data = prepare_training(cfg, source, cache_dir or run_dir / "cache")
    forecaster = create_forecaster(cfg.forecaster, cfg)
    report = forecaster.fit(data.train, data.val, data.pool, run_dir, callbacks=callbacks)
    forecaster_val = forecaster.predict(data.val, data.pool)
    val = forecast_metrics(forecaster_val, data.val.target)
    baselines = fit_baselines(cfg, data)
    served, comparison = guarded(cfg, forecaster, forecaster_val, baselines, data)
    metrics = {"forecaster": cfg.forecaster, "seed": cfg.seed, "source": str(source),
               "rows": {"train": len(data.train), "val": len(data.val)}, "scale": data.scale,
               "val": val, **comparison, **report, "seconds": round(time.perf_counter() - start, 2)}
    save_model(run_dir, cfg, served, data, baselines=baselines)
    runs.finish_run(run_dir, metrics)
    return metrics
