"""The shared Ray Train harness: DDP on two workers, a checkpoint per epoch, resume, early stopping."""

from __future__ import annotations

import math

import pytest

from raydemand.training import EarlyStopping, TrainConfig, all_reduce_mean, fit, load_state


def _loop(config: dict) -> None:
    """Fit y = 3x - 1 with SGD; each epoch is a fixed number of steps on fixed data."""
    import torch

    from raydemand.training import Checkpointer, EarlyStopping, all_reduce_mean, prepare_model, worker

    ctx = worker()
    torch.manual_seed(0)
    model = prepare_model(torch.nn.Linear(1, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = Checkpointer({"model": model}, {"opt": opt})
    stopper = EarlyStopping(config.get("patience"))
    state = ckpt.restore()
    if state is not None:
        stopper.load_state_dict(state.extra["stopper"])
    x = torch.linspace(-1, 1, 64).unsqueeze(1) + ctx.rank * 0.01  # a different shard per worker
    y = 3 * x - 1
    for epoch in range(state.epoch if state else 0, config["epochs"]):
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x.to(ctx.device)), y.to(ctx.device))
            loss.backward()
            opt.step()
        metrics = all_reduce_mean({"val_loss": loss.item(), "rank": float(ctx.rank),
                                   "world": float(ctx.world_size)})
        ckpt.report(epoch, metrics, extra={"stopper": stopper.state_dict()})
        if stopper.step(metrics["val_loss"]):
            break


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
    assert first.history[0]["world"] == 2.0 and first.history[0]["rank"] == 0.5  # the mean over both workers
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
    weight = best["modules"]["model"]["weight"].item()
    assert 2.0 < weight < 3.05  # 20 SGD steps from ~0 towards 3
    # One best + the latest, not one folder per epoch.
    assert len(list(second.storage.glob("epoch_*"))) <= 2
