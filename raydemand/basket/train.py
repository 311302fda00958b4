"""`basket train`: split users, build the catalogue and windows, fit one method, pick its threshold on
validation users, and write a self-contained run directory.

RUN_DIR holds config.yaml (the resolved config), model.pt (method, catalogue, weights, threshold;
weights_only-loadable), metrics.json (per-epoch history, chosen epoch, seed, validation metrics and
threshold curve), val_threshold.png, embeddings.parquet for the neural models (the autoencoder's
product vectors), ray_train*/ (Ray Train storage: checkpoints; running `train` again on an
unfinished RUN_DIR resumes there) and work/ (the training and validation users'
lines as Parquet, which the Ray Data windows stage reads).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raydemand import runs
from raydemand.basket.base import TrainData, create_predictor, save_model
from raydemand.basket.config import BasketConfig
from raydemand.basket.data import build_vocab, encode, iter_windows, restrict, user_split, write_lines
from raydemand.basket.metrics import all_metrics, best_threshold, threshold_curve
from raydemand.errors import InputError


def split_lines(lines: pd.DataFrame, cfg: BasketConfig) -> np.ndarray:
    """The split ('train' | 'val' | 'test') of every line's user."""
    users = lines["user_id"].unique()
    return pd.Series(user_split(users, cfg.data), index=users).reindex(lines["user_id"]).to_numpy()


def _windows_table(lines_file: Path, cfg: BasketConfig, targets: str):
    import pyarrow as pa

    return pa.concat_tables([b for b in iter_windows(lines_file, cfg.data, targets) if b.num_rows])


def collect_windows(lines_file: Path, cfg: BasketConfig, targets: str):
    """All windows of a (small) lines file as one pyarrow Table, built by the Ray Data stage (outside
    a Tune trial's placement group: `outside_placement_group`)."""
    from raydemand.ray_utils import outside_placement_group

    return outside_placement_group(_windows_table, lines_file, cfg, targets)


def prepare(cfg: BasketConfig, orders, work: Path) -> tuple[TrainData, Any, dict[str, Any]]:
    from raydemand.data.sources import load_orders

    lines = load_orders(orders)
    split = split_lines(lines, cfg)
    known = lines[split != "test"]
    if known.empty:
        raise InputError(f"{orders}: every user falls in the test split (data.test_users={cfg.data.test_users})")
    vocab = build_vocab(known, cfg.data)
    known = restrict(known, vocab, cfg.data)
    known_split = split_lines(known, cfg)
    train_lines, val_lines = known[known_split == "train"], known[known_split == "val"]
    for name, part in (("training", train_lines), ("validation", val_lines)):
        if part["user_id"].nunique() == 0:
            raise InputError(f"{orders}: no {name} users with at least {cfg.data.min_orders} orders (users: "
                             f"{lines['user_id'].nunique()}; data.test_users={cfg.data.test_users}, "
                             f"data.val_users={cfg.data.val_users})")
    train_file = write_lines(train_lines, work / "train_lines.parquet")
    val_windows = collect_windows(write_lines(val_lines, work / "val_lines.parquet"), cfg, "last")
    val = encode(val_windows, vocab, cfg.data, cfg.decay)
    summary = {"orders": str(orders), "lines": len(lines), "users": int(lines["user_id"].nunique()),
               "test_users_held_out": int(lines.loc[split == "test", "user_id"].nunique()),
               "train_users": int(train_lines["user_id"].nunique()), "val_users": int(val_lines["user_id"].nunique()),
               "train_orders": int(train_lines["order_id"].nunique()), "train_lines": len(train_lines),
               "catalogue": len(vocab)}
    return TrainData(train_lines, train_file, val, val_windows), vocab, summary


def _plot_threshold(curve: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raydemand.io import atomic_path

    t = [r["threshold"] for r in curve]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key in ("f1_micro", "f1_macro", "precision", "recall"):
        ax.plot(t, [r[key] for r in curve], label=key)
    ax.set_xlabel("threshold")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def train(cfg: BasketConfig, orders, run_dir: str | Path, *, overwrite: bool = False,
          address: str | None = None, callbacks: list | None = None) -> dict[str, Any]:
    """Train `cfg.model` on `orders`; returns the metrics written to RUN_DIR/metrics.json.
    `callbacks` go to the Ray Train run (e.g. Tune's `TuneReportCallback`)."""
    import torch

    from raydemand.ray_utils import init_ray

    run_dir = runs.start_run(run_dir, cfg, overwrite=overwrite)
    start = time.perf_counter()
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    init_ray(address=address)
    data, vocab, summary = prepare(cfg, orders, run_dir / "work")
    predictor = create_predictor(cfg, vocab)
    fitted = predictor.fit(data, run_dir, callbacks)

    scores = predictor.score(data.val)
    curve = threshold_curve(scores, data.val["target"], cfg.thresholds, data.val["missed"])
    threshold = best_threshold(scores, data.val["target"], cfg.thresholds, data.val["missed"])
    val = all_metrics(scores, data.val["target"], cfg.k, threshold, data.val["missed"])
    save_model(run_dir, predictor, threshold)
    name = cfg.model if cfg.model != "topfreq" else cfg.baseline
    metrics = {"model": name, "seed": cfg.seed, "split_seed": cfg.data.split_seed, "data": summary,
               "threshold": threshold, "val": val, "val_threshold_curve": curve, **fitted,
               "seconds": round(time.perf_counter() - start, 1)}
    _plot_threshold(curve, run_dir / "val_threshold.png", f"{name}: validation users, threshold {threshold}")
    runs.finish_run(run_dir, metrics)
    return metrics
