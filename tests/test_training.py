"""The shared Ray Train harness: the training skeleton (padded sharding, validation split across ranks,
in-process runs), DDP on two workers, a checkpoint per epoch, resume, early stopping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from raydemand.training import (EarlyStopping, TrainConfig, TrainTask, all_reduce_mean, fit, load_state,
                                prepare_model, reduce_sums, run_loop, shard_batches, unwrap, validation_shard,
                                worker)


class LineTask(TrainTask):
    """Fit y = 3x - 1 with SGD: batches of 8 from this rank's shard of 64 points; validation on 51 others
    (26 and 25 on two ranks)."""

    def __init__(self, config: dict):
        self.epochs, self.patience = config["epochs"], config.get("patience")
        self.x = torch.linspace(-1, 1, 64).unsqueeze(1)
        self.x_val = torch.linspace(-1.1, 1.1, 51, dtype=torch.float64).unsqueeze(1)

    def setup(self, ctx):
        torch.manual_seed(0)  # the same start on every rank, also outside Ray Train (no DDP broadcast there)
        self.model = prepare_model(torch.nn.Linear(1, 1))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        return {"model": self.model}, {"opt": self.opt}

    def batches(self, epoch, ctx):
        return shard_batches(len(self.x), 8, self.seed, epoch, ctx.rank, ctx.world_size)

    def train_step(self, idx, epoch, ctx):
        x = self.x[idx].to(ctx.device)
        loss = torch.nn.functional.mse_loss(self.model(x), 3 * x - 1)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"train_loss": loss.item()}, len(idx)

    def evaluate(self, epoch, ctx):
        part = validation_shard(len(self.x_val), ctx)
        x = self.x_val[part].to(ctx.device)
        with torch.no_grad():
            err = unwrap(self.model)(x.float()).double() - (3 * x - 1)  # (n, 1)
        n = len(part)
        return {"val_loss": float((err ** 2).sum()), "val_abs_err": float(err.abs().sum()),
                "rank": float(ctx.rank * n), "world": float(ctx.world_size * n)}, n


def _loop(config: dict) -> None:
    run_loop(LineTask(config))


@pytest.mark.parametrize("n", [1, 5, 37, 64])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shard_batches_give_every_rank_as_many_batches_and_cover_every_row(n, world):
    for drop_last in (False, True):
        shards = [shard_batches(n, 8, 0, 3, rank, world, drop_last=drop_last) for rank in range(world)]
        assert len({len(batches) for batches in shards}) == 1  # the same number of DDP steps on every rank
        assert len({tuple(len(b) for b in batches) for batches in shards}) == 1
        rows = np.concatenate([b for batches in shards for b in batches])
        if not drop_last or n <= 8 * world:
            assert set(rows) == set(range(n))
        assert all(np.all(np.diff(b) >= 0) for batches in shards for b in batches)
    assert [b.tolist() for b in shard_batches(37, 8, 0, 1)] != [b.tolist() for b in shard_batches(37, 8, 0, 2)]


def _reduce_on_rank(rank: int, store: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    task = LineTask({"epochs": 1})
    ctx = worker()
    task.setup(ctx)
    with open(f"{out}.{rank}", "w") as f:
        json.dump({"ctx": [ctx.rank, ctx.world_size], "means": reduce_sums(*task.evaluate(0, ctx))}, f)
    torch.distributed.destroy_process_group()


def test_validation_split_over_two_ranks_reduces_to_the_one_rank_numbers(tmp_path):
    task = LineTask({"epochs": 1})
    task.setup(worker())
    alone = reduce_sums(*task.evaluate(0, worker()))
    # forked, not spawned: the ranks inherit the imports instead of paying for them again
    torch.multiprocessing.start_processes(_reduce_on_rank, args=(str(tmp_path / "store"), str(tmp_path / "out")),
                                          nprocs=2, start_method="fork")
    for rank in range(2):
        got = json.loads((tmp_path / f"out.{rank}").read_text())
        assert got["ctx"] == [rank, 2]
        assert got["means"]["world"] == 2.0 and got["means"]["rank"] == pytest.approx(25 / 51)  # rows 26 + 25
        for key in ("val_loss", "val_abs_err"):
            assert got["means"][key] == pytest.approx(alone[key], rel=1e-12)


def test_run_loop_in_process_learns_and_stops_early():
    history = run_loop(LineTask({"epochs": 6}))
    assert [h["epoch"] for h in history] == list(range(6))
    assert history[-1]["val_loss"] < history[0]["val_loss"] / 10
    assert {"train_loss", "val_loss", "val_abs_err"} <= set(history[0])

    class Stuck(LineTask):
        def train_step(self, idx, epoch, ctx):
            return {"train_loss": 1.0}, len(idx)

    assert len(run_loop(Stuck({"epochs": 10, "patience": 2}))) == 3  # the first epoch, then two without gain


def test_run_loop_ends_at_the_first_non_finite_step():
    class Diverging(LineTask):
        stop_on_nonfinite = True

        def train_step(self, idx, epoch, ctx):
            self.steps = getattr(self, "steps", 0) + 1
            return {"train_loss": math.inf if self.steps == 3 else 1.0}, 1.0

    task = Diverging({"epochs": 5})
    history = run_loop(task)
    assert task.steps == 3 and len(history) == 1 and history[0]["train_loss"] == math.inf


def test_early_stopping_counts_epochs_without_improvement():
    s = EarlyStopping(patience=2, mode="min", min_delta=0.01)
    assert [s.step(v) for v in [1.0, 0.5, 0.495, 0.6]] == [False, False, False, True]
    assert s.best == 0.5
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(s.state_dict())
    assert restored.bad_epochs == 2
    never = EarlyStopping(patience=None, mode="max")
    assert not any(never.step(v) for v in [3.0, 2.0, 1.0, 0.0])
    assert not EarlyStopping(1).improved(math.nan)


def test_all_reduce_mean_outside_distributed_is_identity():
    assert all_reduce_mean({"a": 1, "b": 2.5}) == {"a": 1.0, "b": 2.5}


@pytest.mark.slow
def test_fit_two_workers_checkpoints_every_epoch_and_resumes(ray_session, tmp_path):
    cfg = TrainConfig(num_workers=2, keep_checkpoints=1)
    first = fit(_loop, {"epochs": 2}, tmp_path / "run", cfg)
    assert [h["epoch"] for h in first.history] == [0, 1]
    # the mean over both workers' validation rows (26 on rank 0, 25 on rank 1)
    assert first.history[0]["world"] == 2.0 and first.history[0]["rank"] == pytest.approx(25 / 51)
    assert first.history[1]["val_loss"] < first.history[0]["val_loss"]
    assert first.best_checkpoint_dir.is_dir() and first.storage == (tmp_path / "run" / "ray_train").resolve()

    # Same run folder, more epochs: starts at epoch 2 from the saved weights, keeps the earlier history.
    second = fit(_loop, {"epochs": 4}, tmp_path / "run", cfg)
    assert [h["epoch"] for h in second.history] == [0, 1, 2, 3]
    assert second.history[:2] == first.history
    # Epoch 2 continued from epoch 1's weights (a fresh start would be back at epoch 0's loss).
    assert second.history[3]["val_loss"] < second.history[2]["val_loss"] < first.history[1]["val_loss"]
    best = load_state(second.best_checkpoint_dir)
    assert best["epoch"] == 3 and set(best["modules"]) == {"model"} and set(best["optimizers"]) == {"opt"}
    assert set(best["extra"]) == {"early_stop"}
    weight = best["modules"]["model"]["weight"].item()
    assert 2.0 < weight < 3.05  # 16 SGD steps (4 a worker and epoch, DDP-averaged) from ~0 towards 3
    # One best + the latest, not one folder per epoch.
    assert len(list(second.storage.glob("epoch_*"))) <= 2
