"""`raydemand demo`: the platform end to end on embedded data, on one local Ray cluster.

Stages (each writes a sub-folder of the run folder and is skipped when a rerun finds it finished):
prepare (both data sets generated in their real layouts — product images are real Fashion-MNIST
pictures — and Ray Data image preprocessing), forecast (CrossAttnRNN on Ray Train, then it and the
median-curve baseline on the test products), basket (CNNGRU on Ray Train, then it and GP-TopFreq on
the held-out users), design (a class-conditional DCGAN and the preference scorer on real
Fashion-MNIST, Ray Train), tune (a pos_weight x threshold basket sweep, Ray Tune), serve (the Serve
app over those runs, every endpoint called over HTTP). report.md in the run folder tours the results.

The terminal gets one line per stage and a short summary. Everything Ray prints (driver logging,
worker output forwarded to the driver, Tune's status tables, Serve's logs) goes to RUN/ray.log;
`--verbose` prints it on the terminal instead. Small settings by default (minutes on 2 cores);
`--full` uses the real-size configs of jobs/configs/.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, TextIO

import numpy as np
import pandas as pd
from pydantic import Field

from raydemand.basket.config import AutoencoderConfig, BasketConfig
from raydemand.data.pipelines.embeddings import EmbeddingsConfig
from raydemand.data.pipelines.images import ImagesConfig
from raydemand.data.pipelines.windows import WindowsConfig
from raydemand.design.config import GANConfig, GANTrainConfig, ImageSourceConfig, ScorerConfig
from raydemand.forecast.config import DataConfig as ForecastDataConfig
from raydemand.forecast.config import ForecastConfig
from raydemand.data.prepare import PrepareConfig, SynthSpec, run_prepare
from raydemand.demo_report import duration
from raydemand.io import atomic_write
from raydemand.training import TrainConfig


STEPS = ("prepare", "forecast", "basket", "design", "tune", "serve")
RAY_LOG = "ray.log"
# Fashion-MNIST images the design stage trains on: the 5,000 real ones that ship in the package (the
# first 5,000 of the full set when Debian's copy is installed), so its budget is the same everywhere.
DESIGN_IMAGES = 5000


class DemoConfig(PrepareConfig):
    """Every stage with small settings that finish in minutes on 2 cores (`--full`: jobs/configs/)."""

    out: str = "runs/demo"
    synth_products: SynthSpec | None = Field(default_factory=lambda: SynthSpec(seed=0, scale=300))
    synth_orders: SynthSpec | None = Field(default_factory=lambda: SynthSpec(seed=0, scale=600))
    images: ImagesConfig | None = Field(default_factory=lambda: ImagesConfig(size=64))
    # The forecast and basket trainings run the embedding and window pipelines themselves.
    embeddings: list[EmbeddingsConfig] = Field(default_factory=list)
    windows: WindowsConfig | None = None
    steps: list[Literal[STEPS]] = list(STEPS)  # a subset runs only those (later steps need earlier outputs)
    forecast: ForecastConfig = Field(default_factory=lambda: ForecastConfig(
        epochs=4, batch_size=64, patience=None, data=ForecastDataConfig(text_encoder="minilm")))
    basket: BasketConfig = Field(default_factory=lambda: BasketConfig(
        model="cnngru", epochs=1, batch_size=64, lr=2e-3, patience=None,
        autoencoder=AutoencoderConfig(epochs=20, report_every=10)))
    # 4,500 training images at batch 128 for 14 epochs: 490 generator updates, where a width-16 DCGAN
    # draws garments a person recognises (docs/BENCHMARKS.md: its pixel FD is near its best after one
    # 460-update epoch of the full set). Both cores go to the one worker: ~2.5 min on an idle 2-core box.
    gan: GANTrainConfig = Field(default_factory=lambda: GANTrainConfig(
        model=GANConfig(gan="dcgan", width=16), epochs=14, batch_size=128,
        images=ImageSourceConfig(source="fashion-mnist", limit=DESIGN_IMAGES),
        train=TrainConfig(cpus_per_worker=2)))
    # ResNet-18 at 32 px for 3 epochs on 2,500 of those images: cheap, and good enough that its
    # verdict on the GAN's samples means something (its accuracy on real test images is in the report).
    scorer: ScorerConfig = Field(default_factory=lambda: ScorerConfig(
        arch="resnet18", epochs=3, batch_size=64,
        images=ImageSourceConfig(source="fashion-mnist", channels=3, size=32, limit=DESIGN_IMAGES),
        train=TrainConfig(cpus_per_worker=2)))
    tune_pos_weights: list[float] = [5.0, 20.0]  # trainings of the sweep
    tune_thresholds: list[float] = [0.3, 0.4, 0.5]  # scored after each training, no retraining
    serve_port: int = Field(8000, ge=1, le=65535)  # the Serve app, on 127.0.0.1


FULL = {  # --full: the configs of the real-size runs (docs/BENCHMARKS.md)
    "forecast": "jobs/configs/forecast_visuelle2.yaml",
    "basket": "jobs/configs/basket_instacart.yaml",
    "gan": "jobs/configs/design_fashion_mnist.yaml",
    "scorer": "jobs/configs/design_scorer.yaml",
}


def _trained(run_dir: Path, fit: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The run's metrics.json when a previous demo finished it, else `fit()`'s."""
    from raydemand import runs

    return runs.read_metrics(run_dir) if runs.is_complete(run_dir) else fit()


def step_prepare(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    return run_prepare(cfg, log=print)


def step_forecast(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """CrossAttnRNN on Ray Train; then what `forecast train` serves (the model, or its blend with the
    best baseline where validation says so), the model alone and the median training curve (the
    baseline the literature finds hard to beat), compared once on the test products."""
    from raydemand.forecast.evaluate import plot_forecasts, test_rows
    from raydemand.forecast.guard import alone, served_name
    from raydemand.forecast.metrics import both_scales
    from raydemand.forecast.run import load_run
    from raydemand.forecast.train import train

    source, cache, run_dir = out / "data" / "visuelle2", out / "cache" / "forecast", out / "forecast"
    metrics = _trained(run_dir, lambda: train(cfg.forecast, source, run_dir, cache_dir=cache))
    run = load_run(run_dir)
    _, rows = test_rows(run, source, out / "cache" / "forecast_test")
    preds = {"served": run.predict_rows(rows), "crossattnrnn": alone(run.forecaster).predict(rows, run.pool),
             "median": run.baselines["median"].predict(rows, run.pool)}
    val = {"served": metrics["served"]["val"]["wape"], "crossattnrnn": metrics["val"]["wape"],
           "median": metrics["baselines"]["median"]["wape"]}
    summary: dict[str, Any] = {}
    for name, pred in preds.items():
        units = both_scales(pred, rows.target, run.scale, per_week=False)["units"]
        summary[name] = {"test_wape": round(units["wape"], 2), "test_mae": round(units["mae"], 4),
                         "val_wape": round(val[name], 2)}
    summary.update(served_as=served_name(metrics["served"]), test_rows=len(rows),
                   train_rows=metrics["rows"]["train"], epochs=cfg.forecast.epochs)
    plot_forecasts(preds["served"] * run.scale, rows.target * run.scale, run_dir / "forecast_vs_actual.png",
                   f"{summary['served_as']} on the test products: WAPE {summary['served']['test_wape']:.1f}%")
    return summary


def step_basket(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """CNNGRU and GP-TopFreq (each user's own most frequent products, then the most popular) on the
    held-out users' next orders; ranking metrics, which need no threshold."""
    from raydemand.basket.base import load_run
    from raydemand.basket.baselines import baseline_scores
    from raydemand.basket.evaluate import test_arrays
    from raydemand.basket.metrics import ranking_metrics
    from raydemand.basket.train import train

    orders, run_dir = out / "data" / "instacart", out / "basket"
    metrics = _trained(run_dir, lambda: train(cfg.basket, orders, run_dir))
    run = load_run(run_dir)
    enc = test_arrays(run, orders)
    k = run.cfg.k
    scores = {"cnngru": run.score(enc), "gptopfreq": baseline_scores("gptopfreq", enc["feats"], run.vocab.popularity)}
    summary: dict[str, Any] = {"k": k, "test_users": int(len(enc["target"])), "catalogue": len(run.vocab),
                               "train_users": metrics["data"]["train_users"], "epochs": cfg.basket.epochs}
    for name, s in scores.items():
        summary[name] = {m: round(v, 4) for m, v in ranking_metrics(s, enc["target"], k, enc["missed"]).items()}
    return summary


def step_design(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """A DCGAN and the preference scorer on real Fashion-MNIST, then the scorer's Table-2 style
    scores of the GAN's samples next to its scores of real test images."""
    from raydemand.design.generate import load_run, write_samples
    from raydemand.design.score import score, write_report
    from raydemand.design.scorer import load_scorer, train_scorer
    from raydemand.design.train import train

    gan_dir, scorer_dir = out / "gan", out / "scorer"
    gan_metrics = _trained(gan_dir, lambda: train(cfg.gan, gan_dir))
    scorer_metrics = _trained(scorer_dir, lambda: train_scorer(cfg.scorer, scorer_dir))
    gan = load_run(gan_dir)
    samples = out / "design_samples.npz"
    write_samples(gan, samples, n=20 * len(gan.categories))
    report = score(load_scorer(scorer_dir), [samples])
    write_report(report, out / "design_scores")
    real = report["real_test"].get("all", {})
    train_images = gan_metrics["train_images"]
    return {"gan": gan.name, "train_images": train_images, "epochs": len(gan_metrics["history"]),
            "updates": len(gan_metrics["history"]) * (train_images // min(cfg.gan.batch_size, train_images)),
            "chosen_epoch": gan_metrics["chosen_epoch"], "categories": len(gan.categories),
            "recognised_all": round(float(report["recognised"].loc["all"].iloc[0]), 1),
            "preference_all": round(float(report["preference"].loc["all"].iloc[0]), 1),
            "real_recognised_all": real.get("recognised"), "real_preference_all": real.get("preference"),
            "scorer_test_accuracy": scorer_metrics.get("test_accuracy")}


def step_tune(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    from raydemand.tune.basket import tune_basket
    from raydemand.tune.config import SweepConfig

    sweep = SweepConfig(space={"pos_weight": {"grid": cfg.tune_pos_weights}}, max_concurrent=1)
    # The sweep's trials skip the product autoencoder (a Ray Train run of its own per trial) and start
    # from random product embeddings: the demo shows the sweep, the basket step shows the autoencoder.
    net = cfg.basket.net.model_copy(update={"embeddings": "random"})
    base = cfg.basket.model_copy(update={"thresholds": cfg.tune_thresholds, "net": net})
    best = tune_basket(out / "data" / "instacart", out / "tune_basket", sweep, base,
                       resume=(out / "tune_basket").exists())
    if not best.get("finished"):
        raise RuntimeError(f"tune: no trial finished; see {out / 'tune_basket' / 'trials.csv'} (error column)")
    cells = pd.read_csv(out / "tune_basket" / "results.csv")
    top = cells.loc[cells["f1_micro"].idxmax()]
    return {**best, "cells": len(cells), "best_cell": {"pos_weight": float(top["pos_weight"]),
                                                       "threshold": float(top["threshold"]),
                                                       "val_f1_micro": round(float(top["f1_micro"]), 4)}}


def _png_b64(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def step_serve(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """Deploy the Serve app over the trained runs, call every endpoint over HTTP, shut it down."""
    import requests
    from ray import serve

    from raydemand.data.sources import load_products
    from raydemand.design.generate import load_run
    from raydemand.forecast.run import load_run as load_forecast_run
    from raydemand.serve.app import start
    from raydemand.serve.config import AppConfig

    run_dirs = [str(out / d) for d in ("forecast", "basket", "scorer", "gan")]
    url = start(AppConfig(run_dirs=run_dirs), host="127.0.0.1", port=cfg.serve_port)
    calls: dict[str, Any] = {}

    def call(name: str, method: str, path: str, body: dict | None = None) -> dict:
        began = time.perf_counter()
        r = requests.request(method, url + path, json=body, timeout=120)
        calls[name] = {"status": r.status_code, "ms": round(1000 * (time.perf_counter() - began), 1)}
        if r.status_code != 200:
            raise RuntimeError(f"serve: {method} {path} answered {r.status_code}: {r.text[:500]}")
        return r.json()

    try:
        calls["healthz_body"] = call("GET /healthz", "GET", "/healthz")
        products = load_products(out / "data" / "visuelle2", check_images=False).drop_duplicates("external_code")
        attrs = load_forecast_run(out / "forecast").attributes  # every attribute the run compares
        latest = products.sort_values("release_date").tail(3)
        body = {"products": [{"external_code": str(r.external_code), "release_date": str(r.release_date)[:10],
                              "attributes": {a: str(getattr(r, a)) for a in attrs}} for r in latest.itertuples()]}
        forecast = call("POST /v1/forecast", "POST", "/v1/forecast", body)
        calls["forecast_example"] = forecast["forecasts"][0]
        gan = load_run(out / "gan")
        images, _ = gan.generate(1, category=gan.categories[0], seed=1)
        first = latest.iloc[-1]
        design = call("POST /v1/design/score", "POST", "/v1/design/score", {
            "image": _png_b64(images[0]), "design_id": "demo-design", "release_date": str(first.release_date)[:10],
            "attributes": {a: str(first[a]) for a in attrs}})
        calls["design_example"] = {k: design[k] for k in ("top_category", "preference")} | {
            "forecast": design.get("forecast", {}) and design["forecast"]["weeks"]}
        orders = pd.read_csv(out / "data" / "instacart" / "order_products__prior.csv").merge(
            pd.read_csv(out / "data" / "instacart" / "orders.csv"), on="order_id")
        users = []
        for user_id, frame in list(orders.groupby("user_id"))[:2]:
            users.append({"user_id": int(user_id), "orders": [
                g["product_id"].astype(int).tolist() for _, g in frame.sort_values("order_number").groupby("order_number")]})
        basket = call("POST /v1/basket/predict", "POST", "/v1/basket/predict",
                      {"users": users, "k": 5, "unknown_products": "ignore"})
        calls["basket_example"] = basket["predictions"][0]
    finally:
        serve.shutdown()
    with atomic_write(out / "serve_calls.json", "w") as f:
        json.dump(calls, f, indent=2, default=str)
    return {"url": url, **{k: v for k, v in calls.items() if k.startswith(("GET", "POST"))}}


@contextlib.contextmanager
def ray_output_to(log_file: Path):
    """Everything this process, and the Ray processes it starts, writes to stdout/stderr goes to
    `log_file` (appended); yields a line-buffered stream to the terminal this process had before.

    Redirected at the file-descriptor level, not only sys.stdout: Ray's core worker (C++), the GCS
    and raylet it starts and the worker output it forwards (`log_to_driver`) write to fds 1 and 2.
    sys.stdout/sys.stderr point at those fds meanwhile (also where a test harness had replaced them),
    so Tune's status tables, tqdm bars and Python logging land in the file too.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    with open(log_file, "ab") as log:
        log.write(f"\n===== raydemand demo, {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode())
        log.flush()
        for fd in saved:
            os.dup2(log.fileno(), fd)
    colour = os.environ.get("RAY_COLOR_PREFIX")
    os.environ["RAY_COLOR_PREFIX"] = "0"  # the driver prints forwarded worker lines without colour codes
    try:
        with contextlib.redirect_stdout(sys.__stdout__), contextlib.redirect_stderr(sys.__stderr__):
            yield terminal
    finally:
        for stream in (sys.__stdout__, sys.__stderr__):
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        terminal.close()
        if colour is None:
            os.environ.pop("RAY_COLOR_PREFIX")
        else:
            os.environ["RAY_COLOR_PREFIX"] = colour


@dataclass
class Stage:
    what: str  # shown while it runs
    run: Callable[[DemoConfig, Path], dict[str, Any]]
    headline: Callable[[dict[str, Any]], str]  # its result in a few words, from its summary


def _prepare_headline(s: dict) -> str:
    parts = [f"{s['synth_visuelle2']['products']} products" if "synth_visuelle2" in s else "",
             f"{s['synth_instacart']['users']} shoppers" if "synth_instacart" in s else "",
             f"{s['images']['images']} images preprocessed" if "images" in s else ""]
    return ", ".join(p for p in parts if p)


def _forecast_headline(s: dict) -> str:
    served, base = s["served"]["test_wape"], s["median"]["test_wape"]
    verdict = "ahead of the baseline" if served < base else "baseline ahead at this budget"
    return f"test WAPE {served:.1f}% ({s['served_as']}) vs median curve {base:.1f}% ({verdict})"


def _basket_headline(s: dict) -> str:
    k = s["k"]
    return (f"test recall@{k} {s['cnngru'][f'recall@{k}']:.3f} vs GP-TopFreq "
            f"{s['gptopfreq'][f'recall@{k}']:.3f} ({s['test_users']} held-out shoppers)")


def _design_headline(s: dict) -> str:
    real = s.get("real_recognised_all")
    ref = f"real images {real:.0f}%, " if real is not None else ""
    return f"{s['recognised_all']:.0f}% of samples recognised ({ref}chance {100 / s['categories']:.0f}%)"


def _tune_headline(s: dict) -> str:
    cell = s["best_cell"]
    return (f"{s['finished']} trainings, {s['cells']} cells; best pos_weight {cell['pos_weight']:g} "
            f"@ threshold {cell['threshold']:g} (val f1 {cell['val_f1_micro']:.3f})")


def _serve_headline(s: dict) -> str:
    calls = {k: v for k, v in s.items() if k.startswith(("GET", "POST"))}
    ok = sum(v["status"] == 200 for v in calls.values())
    return f"{ok}/{len(calls)} endpoints answered over HTTP at {s['url']}"


STAGES: dict[str, Stage] = {
    "prepare": Stage("generate data, Ray Data pipelines", step_prepare, _prepare_headline),
    "forecast": Stage("CrossAttnRNN on Ray Train", step_forecast, _forecast_headline),
    "basket": Stage("CNNGRU on Ray Train", step_basket, _basket_headline),
    "design": Stage("DCGAN + scorer on Fashion-MNIST", step_design, _design_headline),
    "tune": Stage("Ray Tune sweep", step_tune, _tune_headline),
    "serve": Stage("Ray Serve app", step_serve, _serve_headline),
}


class Progress:
    """One terminal line per stage: its name and what runs, then its result and time."""

    def __init__(self, terminal: TextIO, total: int, verbose: bool):
        self.terminal, self.total, self.verbose, self.i = terminal, total, verbose, 0
        self.prefix = ""

    def start(self, name: str) -> None:
        self.i += 1
        self.prefix = f"[{self.i}/{self.total}] {name:<8}"
        # With Ray's output on the terminal too (--verbose) the line would be split; print it whole.
        end = "\n" if self.verbose else " ... "
        self.terminal.write(f"{self.prefix} {STAGES[name].what}{end}")
        self.terminal.flush()

    def done(self, text: str, seconds: float) -> None:
        lead = f"{self.prefix} " if self.verbose else ""
        self.terminal.write(f"{lead}{text} ({duration(seconds)})\n")


def _ray_logs_dir() -> str | None:
    """Ray's own log folder of this session on this node (raylet, GCS, every worker's .out/.err)."""
    import ray

    # Ray 2.60 has no public accessor for it; the driver's node object knows it.
    node = getattr(ray._private.worker, "_global_node", None)
    return node.get_logs_dir_path() if node is not None else None


def _run_stages(cfg: DemoConfig, progress: Progress, failed_hint: str) -> tuple[dict[str, Any], dict[str, float]]:
    out = Path(cfg.out)
    steps: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in [s for s in STEPS if s in cfg.steps]:
        progress.start(name)
        began = time.perf_counter()
        try:
            summary = STAGES[name].run(cfg, out)
        except BaseException:
            progress.terminal.write(f"failed after {duration(time.perf_counter() - began)}{failed_hint}\n")
            raise
        seconds[name] = time.perf_counter() - began
        if name == "prepare":
            steps.update(summary)  # its sub-steps' keys at the top, as `raydemand data prepare` writes them
        else:
            steps[name] = summary
        progress.done(STAGES[name].headline(summary), seconds[name])
    return steps, seconds


def run_demo(cfg: DemoConfig, terminal: TextIO | None = None, verbose: bool = True) -> Path:
    """Run the configured stages; writes summary.json and report.md, returns the report's path.
    `terminal` gets one line per stage (default: stdout); `verbose=False` when Ray's output goes to
    RUN/ray.log (see `ray_output_to`)."""
    import ray

    from raydemand.demo_report import write_report

    out = Path(cfg.out)
    started_ray = not (ray.is_initialized() or cfg.address or os.environ.get("RAY_ADDRESS"))
    if started_ray:
        # One local cluster for every stage; the Serve app's replicas need LOCAL_CPUS logical CPUs.
        from raydemand.ray_utils import init_ray
        from raydemand.serve.deployments import LOCAL_CPUS

        init_ray(num_cpus=max(os.cpu_count() or 1, LOCAL_CPUS))
    if not verbose:
        from ray.data import DataContext

        # Progress bars redrawn into a log file are thousands of lines of carriage returns.
        DataContext.get_current().enable_progress_bars = False
    progress = Progress(terminal or sys.stdout, len([s for s in STEPS if s in cfg.steps]), verbose)
    try:
        steps, seconds = _run_stages(cfg, progress, "" if verbose else f"; Ray's output: {out.resolve() / RAY_LOG}")
        steps["ray_logs"] = _ray_logs_dir()
    finally:
        if started_ray:
            ray.shutdown()  # here, so that its shutdown messages go where the rest of Ray's output went
    with atomic_write(out / "summary.json", "w") as f:
        json.dump({**steps, "seconds": seconds}, f, indent=2, default=str)  # prepare's keys, then the stages
    return write_report(cfg, steps, seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from raydemand.data.prepare import add_arguments as prepare_arguments

    prepare_arguments(parser)
    parser.add_argument("--full", action="store_true",
                        help="real-size settings: the family configs of jobs/configs/ (hours on a CPU)")
    parser.add_argument("--verbose", action="store_true",
                        help=f"print Ray's own output (logs, Tune tables, worker output) on the terminal "
                             f"instead of RUN/{RAY_LOG}")


def run(args: argparse.Namespace) -> int:
    from raydemand.config import load_config

    cfg = load_config(DemoConfig, args.config, args.overrides, out=args.out, address=args.address,
                      overwrite=args.overwrite)
    if args.full:
        full = {name: load_config(type(getattr(cfg, name)), path) for name, path in FULL.items()}
        # The full scorer config picks best sellers (`top`); Fashion-MNIST, its source here, has no sales.
        full["scorer"] = full["scorer"].model_copy(update={"top": None})
        cfg = cfg.model_copy(update=full | {"synth_products": SynthSpec(seed=0, scale=1000),
                                            "synth_orders": SynthSpec(seed=0, scale=5000)})
    out = Path(cfg.out).resolve()
    began = time.perf_counter()
    print(f"raydemand demo -> {out}")
    if args.verbose:
        report = run_demo(cfg, verbose=True)
    else:
        print(f"Ray's own output goes to {out / RAY_LOG} (--verbose prints it here)", flush=True)
        with ray_output_to(out / RAY_LOG) as terminal:
            report = run_demo(cfg, terminal, verbose=False)
    summary = json.loads((out / "summary.json").read_text())
    kind = "real-size settings" if args.full else "a smoke run at small settings"
    print(f"done in {duration(time.perf_counter() - began)}: {kind}; measured real-size results: docs/BENCHMARKS.md")
    print(f"report: {report.resolve()} (what each result means, and the real-size commands)")
    logs = [] if args.verbose else [str(out / RAY_LOG)]
    logs += [f"Ray's session logs {summary['ray_logs']}"] if summary.get("ray_logs") else []
    print(f"logs:   {'; '.join(logs)}")
    return 0
