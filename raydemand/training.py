"""The one Ray Train harness every family trains through.

Driver side, `fit` runs a `TorchTrainer` whose storage is `RUN_DIR/ray_train`: a checkpoint per epoch,
the best `keep_checkpoints` by the validation metric kept (plus the latest), `FailureConfig` restarts,
and — because Ray Train V2 restores a run from its storage folder — calling `fit` again with the same
run directory resumes from the latest checkpoint instead of starting over.

Worker side, a family writes a `TrainTask` (its modules, one training step, its share of one
evaluation) and its loop function is `run_loop(task)`, which owns the rest: per-rank seeding, the
padded sharding that gives every rank the same number of batches (`shard_batches`), the validation
split across ranks with count-weighted reduction (`validation_shard`, `reduce_sums`), checkpoints
and resume (`Checkpointer`), early stopping (`EarlyStopping`) and reporting. Outside Ray Train (a
bench, a unit test) the same loop runs in-process as rank 0 of 1, or on a plain torch.distributed
group, and checkpoints nothing.

Checkpoints are a single `state.pt` that `torch.load(..., weights_only=True)` reads: state dicts,
the epoch, the metric history and an `extra` dict of plain values.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

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


def in_ray_train() -> bool:
    """Whether this process is a Ray Train worker (inside a function `fit` launched)."""
    import ray.train

    try:
        ray.train.get_context()
    except RuntimeError:
        return False
    return True


def worker(bf16: bool = True) -> WorkerContext:
    """The calling Ray Train worker's device and rank. Outside Ray Train: the rank of a plain
    torch.distributed group when one is initialised (e.g. under torchrun), else rank 0 of 1; on CPU."""
    import torch
    import torch.distributed as dist

    if in_ray_train():
        import ray.train
        from ray.train.torch import get_device

        ctx = ray.train.get_context()
        return WorkerContext(device=get_device(), rank=ctx.get_world_rank(), world_size=ctx.get_world_size(),
                             bf16=bf16)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    return WorkerContext(device=torch.device("cpu"), rank=rank, world_size=world, bf16=bf16)


def prepare_model(model, **kwargs):
    """`ray.train.torch.prepare_model`: moves the model to the worker's device, wraps it in DDP when needed
    (keyword arguments go to it, e.g. `parallel_strategy_kwargs={"find_unused_parameters": True}`).
    Outside Ray Train the model is returned as it is (on the CPU)."""
    if not in_ray_train():
        return model
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


def reduce_sums(sums: dict[str, float], count: float) -> dict[str, float]:
    """Means over the rows of every rank, from each rank's sums over its own rows and their count (so a
    validation set split across ranks gives the numbers one rank would get from all of it)."""
    return all_reduce_mean({k: float(v) / max(count, 1) for k, v in sums.items()}, weight=float(count))


def any_rank(flag: bool) -> bool:
    """Whether `flag` holds on any worker; every worker gets the same answer."""
    return all_reduce_mean({"flag": float(flag)})["flag"] > 0


def shard_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  drop_last: bool = False) -> list[Any]:
    """This rank's batches of row indices for one epoch over `n` rows (indices sorted within a batch).

    torch's `DistributedSampler` shuffles by (seed, epoch) and pads the permutation by wrapping, so
    every rank gets ceil(n / world) rows and the same number of batches: a rank with fewer would leave
    the others waiting in a DDP all-reduce. `drop_last` drops a partial last batch when there is a
    full one (a rank with fewer rows than `batch_size` gets them all as one batch)."""
    import numpy as np
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    idx = np.fromiter(iter(sampler), np.int64, count=len(sampler))
    end = len(idx) - len(idx) % batch_size if drop_last and len(idx) >= batch_size else len(idx)
    return [np.sort(idx[i:i + batch_size]) for i in range(0, end, batch_size)]


def validation_shard(n: int, ctx: WorkerContext):
    """This rank's validation rows: every row on exactly one rank (no padding, which would count rows twice)."""
    import numpy as np

    return np.arange(ctx.rank, n, ctx.world_size)


def seed_worker(seed: int, rank: int) -> None:
    """Seed torch with a stream of its own per (seed, rank): ranks draw different noise and dropout."""
    import numpy as np
    import torch

    torch.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))


class StepMeans:
    """Weighted means of per-step values (weight: e.g. the rows of the step's batch)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def add(self, values: dict[str, float], weight: float = 1.0) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * weight
        self.weight += weight

    def means(self) -> dict[str, float]:
        return {k: v / (self.weight or 1.0) for k, v in self.sums.items()}


class TrainTask:
    """What one family says about its training; `run_loop` does the rest (see docs/training.md).

    A subclass sets the attributes below (usually from its config in `__init__`) and writes `setup`,
    `batches`, `train_step` and `evaluate`; `finish` and `stop_on_nonfinite` are optional.
    """

    name = "train"  # the progress bar's label
    epochs = 1  # reports (one checkpoint each) in the whole run
    seed = 0
    bf16 = True  # bf16 autocast on a GPU
    metric = "val_loss"  # early stopping watches it; `fit` should select checkpoints by the same one
    mode: Literal["min", "max"] = "min"
    patience: int | None = None  # epochs without improvement before stopping; None: never stop early
    stop_on_nonfinite = False  # end the epoch at the first non-finite step on any rank, and the run after it

    def setup(self, ctx: WorkerContext) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build the modules (`prepare_model`) and optimisers after seeding; returns both by name, for the
        checkpoint."""
        raise NotImplementedError

    def batches(self, epoch: int, ctx: WorkerContext) -> Iterable[Any]:
        """This rank's batches of `epoch`; every rank must get as many (e.g. `shard_batches`)."""
        raise NotImplementedError

    def train_step(self, batch: Any, epoch: int, ctx: WorkerContext) -> tuple[dict[str, float], float]:
        """One optimiser step on `batch`: the values to report (their epoch mean) and their weight."""
        raise NotImplementedError

    def evaluate(self, epoch: int, ctx: WorkerContext) -> tuple[dict[str, float], float]:
        """This rank's share of the validation (e.g. `validation_shard`): sums over its rows and their
        count. A metric that is no mean over rows is computed from all rows on every rank, count 1."""
        raise NotImplementedError

    def finish(self, metrics: dict[str, float], seconds: float, seen: float) -> dict[str, float]:
        """The epoch's report from the reduced means (`seconds`: this rank's training time, `seen`: the
        summed weights of its steps)."""
        return metrics


def run_loop(task: TrainTask) -> list[dict[str, float]]:
    """Train `task` on this worker (a Ray Train loop function's body); returns the metric history."""
    ctx = worker(task.bf16)
    seed_worker(task.seed, ctx.rank)
    modules, optimizers = task.setup(ctx)
    ckpt = Checkpointer(modules, optimizers)
    stopper = EarlyStopping(task.patience, task.mode)
    state = ckpt.restore()
    if state is not None and "early_stop" in state.extra:  # GAN checkpoints written before 2026-12 lack it
        stopper.load_state_dict(state.extra["early_stop"])
    for epoch in range(state.epoch if state else 0, task.epochs):
        for module in modules.values():
            module.train()
        start = time.perf_counter()
        steps = _train_epoch(task, epoch, ctx)
        seconds = time.perf_counter() - start
        train = all_reduce_mean(steps.means(), weight=steps.weight)
        metrics = task.finish({**train, **reduce_sums(*task.evaluate(epoch, ctx))}, seconds, steps.weight)
        stop = stopper.step(metrics[task.metric])
        ckpt.report(epoch, metrics, extra={"early_stop": stopper.state_dict()})
        if stop or (task.stop_on_nonfinite and not all(math.isfinite(v) for v in train.values())):
            break
    return ckpt.history


def _train_epoch(task: TrainTask, epoch: int, ctx: WorkerContext) -> StepMeans:
    from tqdm import tqdm

    steps = StepMeans()
    for batch in tqdm(task.batches(epoch, ctx), desc=f"{task.name} epoch {epoch + 1}/{task.epochs}",
                      disable=not ctx.is_main, leave=False, mininterval=5):
        values, weight = task.train_step(batch, epoch, ctx)
        steps.add(values, weight)
        if task.stop_on_nonfinite and any_rank(not all(math.isfinite(v) for v in values.values())):
            break
    return steps


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
    """Saves `modules` and `optimizers` with every epoch's report; restores them on resume. Outside
    Ray Train it only keeps the metric history: there is no run to restore or report to."""

    def __init__(self, modules: dict[str, Any], optimizers: dict[str, Any] | None = None):
        self.modules, self.optimizers = modules, optimizers or {}
        self.history: list[dict[str, float]] = []

    def restore(self) -> TrainState | None:
        """The state of the latest checkpoint when this run resumes (or restarts after a failure), else None."""
        import ray.train

        checkpoint = ray.train.get_checkpoint() if in_ray_train() else None
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
        if not in_ray_train():
            return
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
