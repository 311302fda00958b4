"""Basket benchmark: training throughput and memory, and order windows through Ray Data vs pandas.

On a generated Instacart-layout orders table of about --lines order lines (default 1M, ~6,500
users), as one Parquet file:
(a) windows: the foundation's Ray Data windows stage (`windows_dataset(...).materialize()`, the
    path `basket train` takes) against a plain pandas groupby loop that builds the same windows
    user by user, alternating, --repeat times, best of each kept; reported as a ratio measured in
    this one run, next to the CPU time other processes used meanwhile (the machine may be shared).
    Both build training windows (targets=all) with the basket default history (feature_orders 50).
(b) training: samples (windows) per second of the CNNGRU / AttentionGRU training step (encode a
    batch of windows + forward + backward + Adam) in this process, at the seed's batch 16 and at
    256, on the device torch picks (GPU when present), and the peak RSS of the process; then one
    full `basket train` epoch through Ray Train (TorchTrainer, 1 worker) with its wall time, the
    windows it trained on and the peak memory of the whole process tree (driver, Ray workers).

    python bench/basket_train.py [--lines 1e6] [--steps 60] [--repeat 2] [--skip-ray-train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from data_pipeline import GIB, LINES_PER_USER, CpuWatch, orders_parquet  # noqa: E402


class TreeRSS(threading.Thread):
    """Peak RSS summed over this process and its descendants, sampled every 0.25 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.peak = threading.Event(), 0

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in [psutil.Process()] + psutil.Process().children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.stop.wait(0.25)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join()


def pandas_windows(path: Path, n_orders: int) -> int:
    """The same windows (targets=all, min_history=1) as Python lists, one user at a time."""
    import pandas as pd

    lines = pd.read_parquet(path, columns=["user_id", "order_number", "add_to_cart_order", "product_id"])
    lines = lines.sort_values(["user_id", "order_number", "add_to_cart_order"])
    windows = []
    for user, df in lines.groupby("user_id", sort=False):
        orders = [g["product_id"].tolist() for _, g in df.groupby("order_number", sort=True)]
        for t in range(1, len(orders)):
            windows.append((user, orders[max(0, t - n_orders):t], orders[t]))
    return len(windows)


def bench_windows(path: Path, repeat: int) -> dict:
    from raydemand.basket.config import DataConfig
    from raydemand.basket.data import history_orders, windows_dataset

    cfg = DataConfig()
    n = history_orders(cfg)
    windows_dataset(path, cfg, "all").materialize()  # warm-up: starts Ray Data workers, not timed
    best = {"ray_data": np.inf, "pandas_loop": np.inf}
    foreign = {"ray_data": 0.0, "pandas_loop": 0.0}
    counts = {}
    for _ in range(repeat):
        with CpuWatch() as w:
            t = time.perf_counter()
            counts["ray_data"] = windows_dataset(path, cfg, "all").materialize().count()
            s = time.perf_counter() - t
        if s < best["ray_data"]:
            best["ray_data"], foreign["ray_data"] = s, w.foreign + w.steal
        with CpuWatch() as w:
            t = time.perf_counter()
            counts["pandas_loop"] = pandas_windows(path, n)
            s = time.perf_counter() - t
        if s < best["pandas_loop"]:
            best["pandas_loop"], foreign["pandas_loop"] = s, w.foreign + w.steal
    assert counts["ray_data"] == counts["pandas_loop"], counts
    out = {"windows": counts["ray_data"], "history_orders": n,
           **{f"{k}_s": round(v, 2) for k, v in best.items()},
           "speedup_ray_over_pandas": round(best["pandas_loop"] / best["ray_data"], 2),
           "foreign_cpu_s": {k: round(v, 1) for k, v in foreign.items()}}
    print(f"[windows] {out['windows']:,} windows: Ray Data {out['ray_data_s']}s, pandas loop "
          f"{out['pandas_loop_s']}s -> x{out['speedup_ray_over_pandas']}; CPU-s of other processes "
          f"{out['foreign_cpu_s']}", flush=True)
    return out


def bench_steps(path: Path, steps: int) -> list[dict]:
    """Training-step throughput in this process on real windows of the table."""
    import pyarrow as pa
    import torch

    from raydemand.basket.config import BasketConfig
    from raydemand.basket.data import build_vocab, encode, iter_windows
    from raydemand.basket.models import create_model
    from raydemand.basket.neural import bce, to_tensors
    import pandas as pd

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = BasketConfig()
    lines = pd.read_parquet(path)
    vocab = build_vocab(lines, cfg.data)
    table = pa.concat_tables(b for b in iter_windows(path, cfg.data, "all", batch_size=4096) if b.num_rows)
    table = table.take(np.random.default_rng(0).permutation(table.num_rows)[:256 * (steps + 5)])
    rows = []
    for name in ("cnngru", "attngru"):
        for batch_size in (16, 256):
            torch.manual_seed(0)
            model = create_model(name, len(vocab), cfg.net).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            batches = [table.slice(i * batch_size, batch_size) for i in range(steps + 3)]
            process = psutil.Process()
            base = process.memory_info().rss
            peak = base
            with CpuWatch() as w:
                for i, b in enumerate(batches):
                    if i == 3:  # first steps warm allocators and kernels: not timed
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        t = time.perf_counter()
                    enc = encode(b, vocab, cfg.data, cfg.decay)
                    loss = bce(model(*to_tensors(enc, device)), torch.as_tensor(enc["target"]).to(device),
                               cfg.pos_weight)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    peak = max(peak, process.memory_info().rss)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                s = time.perf_counter() - t
            row = {"model": name, "batch_size": batch_size, "device": str(device), "catalogue": len(vocab),
                   "samples_per_s": round(steps * batch_size / s, 1), "peak_rss_gib": round(peak / GIB, 2),
                   "foreign_cpu_s": round(w.foreign + w.steal, 1)}
            if device.type == "cuda":
                row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / GIB, 2)
            rows.append(row)
            print(f"[train step] {row}", flush=True)
    return rows


def bench_ray_train(path: Path, work: Path) -> dict:
    from raydemand.basket.config import BasketConfig
    from raydemand.basket.train import train

    cfg = BasketConfig(model="cnngru", epochs=1, batch_size=256, net={"embeddings": "random"})
    with TreeRSS() as mem, CpuWatch() as w:
        t = time.perf_counter()
        metrics = train(cfg, path, work / "run_cnngru", overwrite=True)
        s = time.perf_counter() - t
    windows = int(metrics["history"][0]["train_windows"])
    out = {"seconds_total": round(s, 1), "train_windows": windows, "batch_size": 256,
           "peak_tree_rss_gib": round(mem.peak / GIB, 2), "foreign_cpu_s": round(w.foreign + w.steal, 1)}
    print(f"[ray train] {out}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=float, default=1e6)
    p.add_argument("--steps", type=int, default=60, help="timed training steps per model and batch size")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--skip-ray-train", action="store_true")
    p.add_argument("--out", help="also write the results as JSON here")
    args = p.parse_args()

    import ray

    from raydemand.ray_utils import init_ray

    init_ray()
    ray.data.DataContext.get_current().enable_progress_bars = False
    result = {"machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
                          "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path, n, made = orders_parquet(int(args.lines), work)
        print(f"[data] {n:,} order lines (~{n // LINES_PER_USER:,} users) generated in {made:.1f}s (not timed)")
        result["lines"] = n
        result["windows"] = bench_windows(path, args.repeat)
        result["train_step"] = bench_steps(path, args.steps)
        if not args.skip_ray_train:
            result["ray_train"] = bench_ray_train(path, work)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
