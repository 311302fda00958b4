"""`design train`: one class-conditional GAN trained with Ray Train, checkpointed every epoch, resumable.

The run directory holds `config.yaml` (resolved), `model.pt` (G's arguments and the chosen
weights, `torch.load(weights_only=True)`), `metrics.json` (per-epoch losses and health, chosen
epoch, flags, seed, data), `samples.png` (a row per category) and `ray_train/` (Ray's checkpoints;
the same run directory again resumes from the latest). The checkpoint is chosen by the Fréchet
distance of downsampled pixels to real images held out from GAN training (`val_fd`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from raydemand import runs
from raydemand.design.config import GANTrainConfig
from raydemand.design.images import ImageSet, load_images
from raydemand.training import TrainTask, prepare_model, run_loop, shard_batches

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.png"
SELECT_METRIC = "val_fd_select"
NOT_FULL_SIZE = 1e12  # selection score of epochs a growing GAN ended before its full-size layers faded in


def split_validation(labels: np.ndarray, fraction: float, max_n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: a random `fraction` of each label (at least one where the label
    has two or more images), scaled down so that the validation part holds at most about `max_n`."""
    rng = np.random.default_rng(seed)
    share = min(fraction, max_n / len(labels))
    val = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        val.append(idx[:max(1, int(round(share * len(idx))))] if len(idx) > 1 else idx[:0])
    val = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(labels)), val), val


def paired_labels(y):
    """Labels (2 * (B // 2),) for G: a random half of the batch's labels y (B,), twice, so rows i and
    i + B // 2 share a category. Random, not the first half: a batch's indices are sorted, and a source
    stored category by category would otherwise give G the first categories of every batch only."""
    import torch

    half = y[torch.randperm(len(y), device=y.device)[:len(y) // 2]]
    return torch.cat([half, half])


def learning_rate(cfg: GANTrainConfig, gan) -> float:
    """G's and D's learning rate: `cfg.lr`, or the GAN's default when it is null."""
    return cfg.lr if cfg.lr is not None else gan.default_lr


def gan_step(gan, G, D, opt_g, opt_d, real, y, autocast=contextlib.nullcontext) -> tuple[float, float, float]:
    """One D update then one G update on a batch of real images (B, C, H, W) in [-1, 1] with labels
    (B,). `G`/`D` are the (possibly DDP-wrapped) modules of `gan`. Returns the two losses (G's without
    the mode-seeking term) and D's real-vs-generated separation on this batch.

    With `gan.cfg.mode_seeking` > 0, G draws the categories of a random half of the batch twice
    (`paired_labels`) and adds the weighted mode-seeking term to its loss."""
    import torch

    from raydemand.design.metrics import separation

    weight = gan.cfg.mode_seeking  # resolved to the GAN's default when the config leaves it null
    y_fake = paired_labels(y) if weight > 0 and len(y) >= 2 else y
    z = torch.randn(len(y_fake), gan.cfg.noise_dim, device=real.device)
    opt_d.zero_grad(set_to_none=True)
    # Real and generated images in separate D calls, each followed by its backward: batch-norm
    # statistics then never mix real and generated images (D could tell them apart by the batch,
    # and would judge G's batch in the G step by other statistics), and DDP sees one backward per forward.
    with autocast():
        real = gan.prepare_real(real)
        fake = G(z, y_fake)
        d_real = D(real, y).float()  # (B, heads)
        loss_real = gan.d_loss_real(d_real)
    loss_real.backward()
    with autocast():
        d_fake = D(fake.detach(), y_fake).float()
        loss_fake = gan.d_loss_fake(d_fake)
    loss_fake.backward()
    opt_d.step()
    loss_d = loss_real.detach() + loss_fake.detach()
    with autocast():
        loss_g = gan.g_loss(D(fake, y_fake).float())
        total_g = loss_g + weight * gan.mode_seeking_loss(fake.float(), z) if weight > 0 else loss_g
    opt_g.zero_grad(set_to_none=True)
    total_g.backward()
    opt_g.step()
    sep = separation(gan.realness(d_real).detach(), gan.realness(d_fake).detach())
    return float(loss_d.detach()), float(loss_g.detach()), sep


def generator_health(gan, z, y, val_features: np.ndarray, val_labels: np.ndarray,
                     autocast=contextlib.nullcontext) -> tuple[float, dict]:
    """G's health against held-out real images: re-estimate G's batch-norm statistics, generate one
    eval-mode image per (z, y) and return the pixel Fréchet distance to the real images (`val_fd`) and
    the per-category diversity ratios (empty, and `val_fd` NaN, when G's output is not finite)."""
    import torch

    from raydemand.design.metrics import diversity_ratio, frechet_distance, pixel_features

    was_training = gan.G.training
    with torch.no_grad(), autocast():
        gan.calibrate()
        gan.G.eval()
        fake = torch.cat([gan.generate(z[i:i + 256], y[i:i + 256]).float().cpu() for i in range(0, len(y), 256)])
    gan.G.train(was_training)
    features = pixel_features(fake)
    if not np.isfinite(features).all():
        return float("nan"), {}
    return frechet_distance(val_features, features), diversity_ratio(features, val_features, val_labels, val_labels)


class GANTask(TrainTask):
    """A GAN in the training skeleton: one D and one G update per batch of this rank's padded shard of
    the images (full batches only), checkpoints chosen by `val_fd_select`; a non-finite loss ends the
    run (diverged: the last finite checkpoint stays the best one). Every worker measures G against
    all held-out images: a Fréchet distance is no mean over images."""

    metric, stop_on_nonfinite = SELECT_METRIC, True

    def __init__(self, config: dict[str, Any]):
        import ray

        self.cfg = GANTrainConfig.model_validate(config["cfg"])
        self.data = ray.get(config["data"]) if isinstance(config["data"], ray.ObjectRef) else config["data"]
        self.gan_args = config["gan_args"]
        self.epochs, self.seed, self.bf16 = self.cfg.epochs, self.cfg.seed, self.cfg.train.bf16

    def setup(self, ctx):
        import torch

        from raydemand.design.metrics import pixel_features
        from raydemand.design.models import gan_from_args

        cfg, gan = self.cfg, gan_from_args(self.gan_args)
        self.gan, self.name = gan, gan.name
        strategy = {"find_unused_parameters": gan.name == "pggan"}  # layers of later stages get no gradient early on
        self.G = prepare_model(gan.G, parallel_strategy_kwargs=strategy)
        self.D = prepare_model(gan.D, parallel_strategy_kwargs=strategy)
        lr, betas = learning_rate(cfg, gan), (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(gan.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(gan.D.parameters(), lr=lr, betas=betas)
        self.steps = len(self.batches(0, ctx))  # the same every epoch
        val_real = self.data["val_images"].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1  # (V, C, H, W)
        self.val_labels = np.array(self.data["val_labels"])  # a writable copy of the object-store array
        self.val_features = pixel_features(val_real)
        self.z_val = torch.randn(len(self.val_labels), gan.cfg.noise_dim,
                                 generator=torch.Generator().manual_seed(cfg.seed + 12345)).to(ctx.device)
        self.y_val = torch.as_tensor(self.val_labels).to(ctx.device)
        return {"G": gan.G, "D": gan.D}, {"G": self.opt_g, "D": self.opt_d}

    def batches(self, epoch: int, ctx) -> list[tuple[int, np.ndarray]]:
        return list(enumerate(shard_batches(len(self.data["train_images"]), self.cfg.batch_size, self.seed, epoch,
                                            ctx.rank, ctx.world_size, drop_last=True)))

    def train_step(self, batch: tuple[int, np.ndarray], epoch: int, ctx) -> tuple[dict[str, float], float]:
        import torch

        step, idx = batch
        total = self.epochs * self.steps
        self.gan.set_progress((epoch * self.steps + step) / total)
        images = self.data["train_images"][idx]  # uint8 (B, H, W, C)
        real = torch.from_numpy(images).to(ctx.device).permute(0, 3, 1, 2).float() / 127.5 - 1  # (B, C, H, W)
        y = torch.from_numpy(self.data["train_labels"][idx]).to(ctx.device)
        loss_d, loss_g, sep = gan_step(self.gan, self.G, self.D, self.opt_g, self.opt_d, real, y, ctx.autocast)
        self.gan.set_progress(min(1.0, (epoch * self.steps + step + 1) / total))
        return {"d_loss": loss_d, "g_loss": loss_g, "d_separation": sep}, 1.0

    def evaluate(self, epoch: int, ctx) -> tuple[dict[str, float], float]:
        val_fd, div = generator_health(self.gan, self.z_val, self.y_val, self.val_features, self.val_labels,
                                       ctx.autocast)
        return {"val_fd": val_fd, "diversity_mean": float(np.mean(list(div.values()))) if div else 0.0,
                "diversity_min": float(min(div.values())) if div else 0.0,
                "resolution": float(self.gan.resolution)}, 1.0

    def finish(self, metrics: dict[str, float], seconds: float, seen: float) -> dict[str, float]:
        full_size = self.gan.full_grown()
        select = metrics["val_fd"] if full_size and np.isfinite(metrics["val_fd"]) else NOT_FULL_SIZE
        return {**metrics, SELECT_METRIC: select}


def _loop(config: dict[str, Any]) -> None:
    """Ray Train worker loop: the same on every worker; each worker trains on its shard of the images."""
    run_loop(GANTask(config))


def _training_data(images: ImageSet, cfg: GANTrainConfig) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    train, val = split_validation(images.labels, cfg.val_fraction, cfg.val_max, cfg.seed)
    return ({"train_images": images.images[train], "train_labels": images.labels[train],
             "val_images": images.images[val], "val_labels": images.labels[val]}, train, val)


def train(cfg: GANTrainConfig, out: str | Path, *, overwrite: bool = False, images: ImageSet | None = None,
          callbacks: list | None = None) -> dict[str, Any]:
    """Train `cfg.model.gan` on `cfg.images` into run directory `out`; returns the metrics record.

    A run directory that holds a finished run is an error unless `overwrite`; one with an unfinished
    `ray_train/` resumes from its latest checkpoint. `callbacks` go to the Ray Train run (e.g. Tune's
    `TuneReportCallback`, which passes every epoch's val_fd to a Tune scheduler).
    """
    import ray

    from raydemand.design.metrics import health_flags
    from raydemand.design.models import create_gan
    from raydemand.ray_utils import init_ray
    from raydemand.training import fit, load_state

    out = runs.start_run(out, cfg, overwrite=overwrite)
    images = images if images is not None else load_images(cfg.images)
    if len(images) < 2 * len(images.categories) or len(images) < 8:
        from raydemand.errors import InputError

        raise InputError(f"{cfg.images.source}: {len(images)} images are too few to train a GAN "
                         f"({len(images.categories)} categories)")
    data, train_idx, val_idx = _training_data(images, cfg)
    gan = create_gan(cfg.model.gan, n_classes=len(images.categories), channels=images.channels,
                     size=cfg.images.size, **cfg.model.model_dump(exclude={"gan"}))
    init_ray()
    loop_config = {"cfg": cfg.model_dump(mode="json"), "gan_args": gan.args(), "data": ray.put(data)}
    result = fit(_loop, loop_config, out, cfg.train, metric=SELECT_METRIC, mode="min", callbacks=callbacks)

    state = load_state(result.best_checkpoint_dir)
    gan.G.load_state_dict(state["modules"]["G"])
    best = state["history"][-1]
    runs.write_model(out, "gan", cfg, {"args": gan.args(), "G": gan.G.state_dict(), "categories": images.categories,
                                       "epoch": int(best["epoch"])})
    flags = health_flags(result.history, cfg.collapse_diversity, cfg.diverge_gap, cfg.diverge_patience)
    for kind, epochs in flags.items():
        if epochs:
            logger.warning("%s: %s at epochs %s (see %s)", gan.name, kind.replace("_epochs", "").replace("_", " "),
                           epochs, out / runs.METRICS_FILE)
    record = {
        "gan": gan.name, "seed": cfg.seed, "lr": learning_rate(cfg, gan), "data": images.description,
        "categories": images.categories, "train_images": int(len(train_idx)), "val_images": int(len(val_idx)),
        "chosen_epoch": int(best["epoch"]), "select_metric": SELECT_METRIC, "best": best,
        "history": result.history, **flags,
    }
    from raydemand.design.generate import GANRun, write_grid

    write_grid(GANRun(out, finished=False), out / SAMPLES_FILE, per_category=cfg.sample_grid, seed=cfg.seed)
    runs.finish_run(out, record)
    return record
