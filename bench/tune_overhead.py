"""Ray Tune overhead benchmark, and the trial rate of a finished sweep.

(a) N tiny trials through Ray Tune (function trainables, one CPU each, `--concurrent` at once) against
    the same work in a plain Python loop, alternating, --repeat times, best of each kept: the ratio
    Tune / loop is the price of Tune's trial actors, result handling and experiment checkpoints
    per trial. Each trial does a fixed amount of numpy work in `--epochs` steps and reports after each,
    like an epoch report. Ray start-up is not timed (reported separately). The machine may be shared:
    every timed block reports the CPU seconds other processes used (and the hypervisor stole) meanwhile.
(b) `--sweep DIR`: trials/hour of a finished `raydemand tune` sweep, from its trials' own result
    records (first report minus its iteration time, to the last report), and thresholds/hour for a
    basket sweep (each training scores every threshold).

    python bench/tune_overhead.py [--trials 8] [--epochs 3] [--work-s 0.5] [--repeat 2] [--sweep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# One BLAS thread in the loop too: Ray gives every 1-CPU trial actor OMP_NUM_THREADS=1.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_pipeline import CpuWatch  # noqa: E402  (the shared foreign-CPU meter)


def calibrate(seconds: float) -> int:
    """Matrix products (128 x 128) that take about `seconds` on this machine."""
    a = np.random.default_rng(0).standard_normal((128, 128))
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 0.3:
        a = np.tanh(a @ a)
        n += 1
    return max(1, int(n * seconds / (time.perf_counter() - start)))


def work(steps: int, seed: int) -> float:
    a = np.random.default_rng(seed).standard_normal((128, 128))
    for _ in range(steps):
        a = np.tanh(a @ a)
    return float(a.mean())


def trial(config: dict) -> None:
    from ray import tune

    for epoch in range(config["epochs"]):
        tune.report({"value": work(config["steps"], config["i"] * 100 + epoch), "epoch": epoch})


def plain_loop(n: int, epochs: int, steps: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        for epoch in range(epochs):
            work(steps, i * 100 + epoch)
    return time.perf_counter() - start


def through_tune(n: int, epochs: int, steps: int, concurrent: int, storage: Path) -> float:
    from ray import tune

    start = time.perf_counter()
    tuner = tune.Tuner(tune.with_resources(trial, {"cpu": 1}),
                       param_space={"i": tune.grid_search(list(range(n))), "epochs": epochs, "steps": steps},
                       tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
                       run_config=tune.RunConfig(storage_path=str(storage), name=f"bench_{time.time_ns()}", verbose=0))
    grid = tuner.fit()
    seconds = time.perf_counter() - start
    assert len(grid) == n and not grid.errors, grid.errors
    return seconds


def sweep_rate(sweep: Path) -> dict:
    """Trials/hour of a finished sweep from its trials' result records."""
    import pandas as pd

    starts, ends = [], []
    for result in sorted((sweep / "trials").glob("*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if rows:
            starts.append(rows[0]["timestamp"] - rows[0]["time_this_iter_s"])
            ends.append(rows[-1]["timestamp"])
    trials = pd.read_csv(sweep / "trials.csv")
    finished = int((trials["status"] == "finished").sum())
    span = max(ends) - min(starts)
    out = {"sweep": str(sweep), "trials": len(trials), "finished_trainings": finished,
           "span_s": round(span, 1), "trainings_per_hour": round(finished / span * 3600, 2),
           "mean_trial_s": round(float(trials.loc[trials["status"] == "finished", "seconds"].mean()), 1)}
    results = sweep / "results.csv"
    if results.exists():
        cells = len(pd.read_csv(results))
        out.update({"grid_cells": cells, "grid_cells_per_hour": round(cells / span * 3600, 1)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="reports per trial")
    parser.add_argument("--work-s", type=float, default=0.5, help="seconds of numpy work per trial")
    parser.add_argument("--concurrent", type=int, default=1, help="trials at once through Tune")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sweep", help="a finished `raydemand tune` folder: report its trials/hour")
    parser.add_argument("--skip-overhead", action="store_true", help="only --sweep")
    args = parser.parse_args()

    report: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    if not args.skip_overhead:
        import tempfile

        import ray

        from raydemand.ray_utils import init_ray

        t0 = time.perf_counter()
        init_ray(num_cpus=max(2, args.concurrent))
        report["ray_init_s"] = round(time.perf_counter() - t0, 1)
        steps = max(1, calibrate(args.work_s) // args.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            through_tune(1, 1, 1, 1, Path(tmp))  # warm-up: Tune's first trial imports and starts its actor pool
            loop_s, tune_s, foreign = [], [], []
            for r in range(args.repeat):
                with CpuWatch() as w_loop:
                    loop_s.append(plain_loop(args.trials, args.epochs, steps))
                with CpuWatch() as w_tune:
                    tune_s.append(through_tune(args.trials, args.epochs, steps, args.concurrent, Path(tmp)))
                foreign.append([round(w.foreign + w.steal, 1) for w in (w_loop, w_tune)])
                print(f"repeat {r + 1}: loop {loop_s[-1]:.2f} s, Tune {tune_s[-1]:.2f} s, "
                      f"foreign CPU-s loop/Tune {foreign[-1]}", flush=True)
        ray.shutdown()
        best_loop, best_tune = min(loop_s), min(tune_s)
        report["overhead"] = {
            "trials": args.trials, "reports_per_trial": args.epochs, "work_s_per_trial": args.work_s,
            "concurrent": args.concurrent, "loop_s": [round(x, 2) for x in loop_s],
            "tune_s": [round(x, 2) for x in tune_s], "ratio_tune_over_loop": round(best_tune / best_loop, 2),
            "overhead_s_per_trial": round((best_tune - best_loop) / args.trials, 2),
            "foreign_cpu_s_loop_tune": foreign}
    if args.sweep:
        report["sweep"] = sweep_rate(Path(args.sweep))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
