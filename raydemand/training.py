"""The one Ray Train harness every family trains through.

Driver side, `fit` runs a `TorchTrainer` whose storage is `RUN_DIR/ray_train`: a checkpoint per epoch,
the best `keep_checkpoints` by the validation metric kept (plus the latest), `FailureConfig` restarts,
and — because Ray Train V2 restores a run from its storage folder — calling `fit` again with the same
run directory resumes from the latest checkpoint instead of starting over.

Worker side, a loop function uses `worker()` (device, rank, bf16 autocast), `prepare_model` /
`prepare_data_loader` (DDP and distributed sampling when there are several workers), `Checkpointer`
(save every epoch, restore on resume; any number of modules and optimisers, e.g. a GAN's G, D1, D2),
`all_reduce_mean` (one validation number on every worker) and `EarlyStopping`.

Checkpoints are a single `state.pt` that `torch.load(..., weights_only=True)` reads: state dicts,
the epoch, the metric history and an `extra` dict of plain values.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field

from raydemand.config import Config

STATE_FILE = "state.pt"


class TrainConfig(Config):
    num_workers: int = Field(1, ge=1)  # Ray Train workers; DDP when more than one
    use_gpu: bool | None = None  # None: one GPU per worker when the cluster has GPUs
    bf16: bool = True  # bf16 autocast on GPU (ignored on CPU, where bf16 matmuls are slow)
    max_failures: int = Field(1, ge=0)  # worker failures survived by restarting from the latest checkpoint
    keep_checkpoints: int = Field(2, ge=1)  # best checkpoints kept by the validation metric (the latest is kept too)
    cpus_per_worker: float = Field(1.0, gt=0)  # logical CPUs each worker reserves


# ---------------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------------


@dataclass
class WorkerContext:
    device: Any  # torch.device
    rank: int
    world_size: int
    bf16: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        """bf16 autocast on a GPU; a no-op elsewhere."""
        import torch

        if self.bf16 and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def worker(bf16: bool = True) -> WorkerContext:
    """The calling Ray Train worker's device and rank (rank 0 of 1 outside Ray Train, on CPU)."""
    import ray.train
    import torch

    try:
        ctx = ray.train.get_context()
        rank, world = ctx.get_world_rank(), ctx.get_world_size()
        from ray.train.torch import get_device

        device = get_device()
    except (RuntimeError, AttributeError):
        rank, world, device = 0, 1, torch.device("cpu")
    return WorkerContext(device=device, rank=rank, world_size=world, bf16=bf16)


def prepare_model(model, **kwargs):
    """`ray.train.torch.prepare_model`: moves the model to the worker's device, wraps it in DDP when needed
    (keyword arguments go to it, e.g. `parallel_strategy_kwargs={"find_unused_parameters": True}`)."""
    from ray.train.torch import prepare_model as _prepare

    return _prepare(model, **kwargs)


def prepare_data_loader(loader):
    """`ray.train.torch.prepare_data_loader`: a distributed sampler and device placement of batches."""
    from ray.train.torch import prepare_data_loader as _prepare

    return _prepare(loader)


def unwrap(module):
    """The model inside a DDP wrapper (state dicts are saved without the `module.` prefix)."""
    return getattr(module, "module", module)


def all_reduce_mean(values: dict[str, float], weight: float = 1.0) -> dict[str, float]:
    """Weighted mean of each value over all workers (weight: e.g. the number of samples a worker saw)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return {k: float(v) for k, v in values.items()}
    keys = sorted(values)
    t = torch.tensor([float(values[k]) * weight for k in keys] + [weight], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    t = t.cpu()
    return {k: float(t[i] / t[-1]) for i, k in enumerate(keys)}


class EarlyStopping:
    """Stop after `patience` epochs without an improvement of more than `min_delta` (None: never stop)."""

    def __init__(self, patience: int | None, mode: Literal["min", "max"] = "min", min_delta: float = 0.0):
        self.patience, self.mode, self.min_delta = patience, mode, min_delta
        self.best: float | None = None
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        delta = self.best - value if self.mode == "min" else value - self.best
        return delta > self.min_delta

    def step(self, value: float) -> bool:
        """Record this epoch's value; True when training should stop."""
        if self.improved(value):
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


@dataclass
class TrainState:
    epoch: int  # the next epoch to run
    history: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Checkpointer:
    """Saves `modules` and `optimizers` with every epoch's report; restores them on resume."""

    def __init__(self, modules: dict[str, Any], optimizers: dict[str, Any] | None = None):
        self.modules, self.optimizers = modules, optimizers or {}
        self.history: list[dict[str, float]] = []

    def restore(self) -> TrainState | None:
        """The state of the latest checkpoint when this run resumes (or restarts after a failure), else None."""
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            state = load_state(folder)
        for name, module in self.modules.items():
            unwrap(module).load_state_dict(state["modules"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.history = list(state["history"])
        return TrainState(epoch=state["epoch"] + 1, history=self.history, extra=state["extra"])

    def report(self, epoch: int, metrics: dict[str, float], extra: dict[str, Any] | None = None) -> None:
        """Report this epoch's metrics on every worker; rank 0 attaches the checkpoint."""
        import ray.train
        import torch

        from raydemand.runs import checkpoint_name

        metrics = {**{k: float(v) for k, v in metrics.items()}, "epoch": epoch}
        self.history.append(metrics)
        if ray.train.get_context().get_world_rank() != 0:
            ray.train.report(metrics, checkpoint=None)
            return
        state = {
            "epoch": epoch,
            "modules": {n: unwrap(m).state_dict() for n, m in self.modules.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "history": self.history,
            "extra": extra or {},
        }
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state, Path(tmp) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp),
                             checkpoint_dir_name=checkpoint_name(epoch))


def load_state(folder: str | Path) -> dict[str, Any]:
    """A checkpoint's `state.pt` (weights only: no pickled code runs)."""
    import torch

    return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------------------------


@dataclass
class FitResult:
    metrics: dict[str, float]  # the last report
    history: list[dict[str, float]]  # one dict per epoch, in order (across resumes)
    best_checkpoint_dir: Path
    best_metrics: dict[str, float]
    storage: Path  # RUN_DIR/ray_train


def fit(
    loop_fn: Callable[[dict], None],
    loop_config: dict[str, Any],
    run_dir: str | Path,
    cfg: TrainConfig,
    *,
    metric: str = "val_loss",
    mode: Literal["min", "max"] = "min",
    datasets: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> FitResult:
    """Train `loop_fn` on `cfg.num_workers` Ray Train workers; resumes when `run_dir` holds a run."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from raydemand.ray_utils import gpu_available
    from raydemand.runs import STORAGE_NAME, storage_dir

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    use_gpu = gpu_available() if cfg.use_gpu is None else cfg.use_gpu
    resources = {"CPU": cfg.cpus_per_worker}
    trainer = TorchTrainer(
        loop_fn,
        train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=STORAGE_NAME,
            storage_path=str(run_dir),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.keep_checkpoints,
                                                         checkpoint_score_attribute=metric,
                                                         checkpoint_score_order=mode),
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            callbacks=callbacks,
        ),
        datasets=datasets,
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training in {run_dir} reported no checkpoint")
    best = result.get_best_checkpoint(metric=metric, mode=mode) or result.checkpoint
    with result.checkpoint.as_directory() as latest:
        history = load_state(latest)["history"]
    best_dir = Path(best.path)
    best_metrics = load_state(best_dir)["history"][-1]
    return FitResult(metrics=dict(result.metrics or {}), history=history, best_checkpoint_dir=best_dir,
                     best_metrics=best_metrics, storage=storage_dir(run_dir))
