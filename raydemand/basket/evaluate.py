"""`basket evaluate`: a run's metrics on its held-out test users, touched only here.

Test users are those the run's user split (a hash of user_id and data.split_seed) held out of
training; their last order is the target and the orders before it the history. The threshold is
the one the run chose on validation users; K is any K.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from raydemand.basket.base import load_run
from raydemand.basket.data import encode, restrict, write_lines
from raydemand.basket.metrics import all_metrics
from raydemand.basket.train import collect_windows, split_lines
from raydemand.errors import InputError


def test_arrays(run, orders) -> dict[str, np.ndarray]:
    """Encoded windows of the test users' last orders (catalogue and restriction of the run)."""
    from raydemand.data.sources import load_orders

    lines = load_orders(orders)
    test = lines[split_lines(lines, run.cfg) == "test"]
    test = restrict(test, run.vocab, run.cfg.data)
    if test.empty:
        raise InputError(f"{orders}: none of its users is a held-out test user of this run with at least "
                         f"{run.cfg.data.min_orders} orders (users are split by a hash of user_id and "
                         f"data.split_seed={run.cfg.data.split_seed})")
    with tempfile.TemporaryDirectory() as tmp:
        windows = collect_windows(write_lines(test, Path(tmp) / "test_lines.parquet"), run.cfg, "last")
    return encode(windows, run.vocab, run.cfg.data, run.cfg.decay)


def evaluate(run_dir, orders, k: int | None = None, address: str | None = None) -> dict[str, Any]:
    from raydemand.ray_utils import init_ray

    run = load_run(run_dir)
    init_ray(address=address)
    enc = test_arrays(run, orders)
    scores = run.score(enc)
    k = k or run.cfg.k
    out = all_metrics(scores, enc["target"], k, run.threshold, enc["missed"])
    name = run.cfg.model if run.cfg.model != "topfreq" else run.cfg.baseline
    return {"model": name, "seed": run.cfg.seed, "run": str(run_dir), "orders": str(orders), "k": k, **out,
            "target_products_outside_catalogue": int(enc["missed"].sum())}
