"""`raydemand demo`: the platform end to end on embedded data, on one local Ray cluster.

Steps (each writes a sub-folder of the run folder and is skipped when a rerun finds it finished):
prepare (both data sets generated in their real layouts — product images are real Fashion-MNIST
pictures — and Ray Data image preprocessing), forecast (CrossAttnRNN, Ray Train), basket (CNNGRU,
Ray Train), design (a class-conditional DCGAN and the preference scorer, Ray Train), tune (a
pos_weight x threshold basket sweep, Ray Tune), serve (the Serve app over those runs, every endpoint
called over HTTP). The report (report.md with PNGs and metric tables) goes into the run folder it
prints. Small settings by default (minutes on 2 cores); `--full` uses the real-size configs of
jobs/configs/.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field

from raydemand.basket.config import AutoencoderConfig, BasketConfig
from raydemand.data.pipelines.embeddings import EmbeddingsConfig
from raydemand.data.pipelines.images import ImagesConfig
from raydemand.data.pipelines.windows import WindowsConfig
from raydemand.design.config import GANConfig, GANTrainConfig, ImageSourceConfig, ScorerConfig
from raydemand.forecast.config import DataConfig as ForecastDataConfig
from raydemand.forecast.config import ForecastConfig
from raydemand.data.prepare import PrepareConfig, SynthSpec, run_prepare
from raydemand.io import atomic_path, atomic_write


STEPS = ("prepare", "forecast", "basket", "design", "tune", "serve")


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
    gan: GANTrainConfig = Field(default_factory=lambda: GANTrainConfig(
        model=GANConfig(gan="dcgan", width=16), epochs=2, batch_size=64, images=ImageSourceConfig(limit=1200)))
    scorer: ScorerConfig = Field(default_factory=lambda: ScorerConfig(
        arch="resnet18", epochs=2, batch_size=64, images=ImageSourceConfig(channels=3, limit=1200)))
    tune_pos_weights: list[float] = [5.0, 20.0]  # trainings of the sweep
    tune_thresholds: list[float] = [0.3, 0.4, 0.5]  # scored after each training, no retraining
    serve_port: int = Field(8000, ge=1, le=65535)  # the Serve app, on 127.0.0.1


FULL = {  # --full: the configs of the real-size runs (docs/BENCHMARKS.md)
    "forecast": "jobs/configs/forecast_visuelle2.yaml",
    "basket": "jobs/configs/basket_instacart.yaml",
    "gan": "jobs/configs/design_fashion_mnist.yaml",
    "scorer": "jobs/configs/design_scorer.yaml",
}


def _image_grid(images_dir: Path, products: pd.DataFrame, png: Path, n: int = 32) -> None:
    """What the image pipeline produced, de-normalised, with each product's category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = ImagesConfig.model_validate(yaml.safe_load((images_dir / "_config.yaml").read_text()))
    mean, std = cfg.stats()
    frame = pd.read_parquet(images_dir).head(n)
    category = products.drop_duplicates("external_code").set_index("external_code")["category"]
    cols = 8
    fig, axes = plt.subplots((len(frame) + cols - 1) // cols, cols, figsize=(cols * 1.4, 1.6 * ((len(frame) + cols - 1) // cols)))
    for ax, (_, row) in zip(axes.flat, frame.iterrows()):
        chw = np.asarray(row["image"], dtype=np.float32).reshape(cfg.channels, *cfg.hw)
        rgb = np.clip(chw * std[:, None, None] + mean[:, None, None], 0, 1).transpose(1, 2, 0)
        ax.imshow(rgb.squeeze(), cmap="gray" if cfg.channels == 1 else None)
        ax.set_title(str(category.get(str(row["external_code"]), ""))[:14], fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Preprocessed product images (Ray Data output)", fontsize=9)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _sales_by_category(products: pd.DataFrame, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = [str(i) for i in range(12)]
    curves = products.groupby("category")[weeks].mean()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, row in curves.iterrows():
        ax.plot(range(1, 13), row.to_numpy(), label=name)
    ax.set_xlabel("week after release")
    ax.set_ylabel("mean weekly sales (normalised)")
    ax.set_title("Generated VISUELLE 2.0 data: sales curve by category")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)



def _done(run_dir: Path, marker: str = "model.pt") -> bool:
    return (run_dir / marker).is_file()


def step_forecast(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    from raydemand.forecast.train import train

    run_dir = out / "forecast"
    if _done(run_dir):
        return json.loads((run_dir / "metrics.json").read_text())
    return train(cfg.forecast, out / "data" / "visuelle2", run_dir, cache_dir=out / "cache" / "forecast")


def step_basket(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    from raydemand.basket.train import train

    run_dir = out / "basket"
    if _done(run_dir):
        return json.loads((run_dir / "metrics.json").read_text())
    return train(cfg.basket, out / "data" / "instacart", run_dir)


def step_design(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """A DCGAN and the preference scorer on the generated products' images (real Fashion-MNIST
    pictures, coloured), then the scorer's Table-2 style scores of the GAN's samples."""
    from raydemand.design.generate import load_run, write_samples
    from raydemand.design.score import score, write_report
    from raydemand.design.scorer import load_scorer, train_scorer
    from raydemand.design.train import train

    products = str(out / "data" / "visuelle2")
    gan_dir, scorer_dir = out / "gan", out / "scorer"
    summary: dict[str, Any] = {}
    if not _done(gan_dir):
        gan_cfg = cfg.gan.model_copy(update={"images": cfg.gan.images.model_copy(update={"source": products})})
        train(gan_cfg, gan_dir)
    if not _done(scorer_dir):
        scorer_cfg = cfg.scorer.model_copy(update={"images": cfg.scorer.images.model_copy(update={"source": products})})
        train_scorer(scorer_cfg, scorer_dir)
    gan = load_run(gan_dir)
    samples = out / "design_samples.npz"
    write_samples(gan, samples, n=20 * len(gan.categories))
    report = score(load_scorer(scorer_dir), [samples])
    write_report(report, out / "design_scores")
    summary["preference_all"] = round(float(report["preference"].loc["all"].iloc[0]), 2)
    summary["recognised_all"] = round(float(report["recognised"].loc["all"].iloc[0]), 2)
    summary["categories"] = len(gan.categories)
    return summary


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
    return best


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


def _metrics_line(metrics: dict, keys: list[str]) -> str:
    flat: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items() if not isinstance(vv, (dict, list))})
        elif not isinstance(v, list):
            flat[k] = v
    shown = [(k, flat[k]) for k in keys if k in flat] or list(flat.items())[:8]
    return ", ".join(f"{k}: {round(v, 4) if isinstance(v, float) else v}" for k, v in shown)


def write_report(cfg: DemoConfig, steps: dict, seconds: dict[str, float]) -> Path:
    from raydemand.data.sources import load_products

    out = Path(cfg.out)
    lines = ["# raydemand demo", "", f"Run folder: `{out.resolve()}`", ""]
    products_dir = out / "data" / "visuelle2"
    if products_dir.exists():
        products = load_products(products_dir, check_images=False)
        _sales_by_category(products, out / "sales_by_category.png")
        lines += ["## Data", "", "![sales by category](sales_by_category.png)", ""]
        if (out / "images").exists():
            _image_grid(out / "images", products, out / "product_images.png")
            lines += ["![product images](product_images.png)", ""]
    lines += ["## Steps", "", "| step | seconds | result |", "|---|---|---|"]
    for name, summary in steps.items():
        if isinstance(summary, dict):
            shown = {k: v for k, v in summary.items() if k not in ("source", "out", "columns")}
            text = ", ".join(f"{k}: {v}" for k, v in shown.items() if not isinstance(v, (dict, list)))
            lines.append(f"| {name} | {seconds.get(name, 0):.0f} | {text[:300]} |")
    pictures = [("forecast", "Forecast vs actual (validation)", "forecast/*.png"),
                ("basket", "Basket threshold on validation users", "basket/*.png"),
                ("design", "DCGAN samples per category", "gan/*.png"),
                ("tune", "Sweep: pos_weight x threshold", "tune_basket/*.png")]
    for step, title, pattern in pictures:
        found = sorted(out.glob(pattern))
        if step in steps and found:
            lines += ["", f"## {title}", ""] + [f"![{p.stem}]({p.relative_to(out)})" for p in found[:3]]
    for table in ("design_scores/preference.md", "tune_basket/results.md"):
        if (out / table).is_file():
            lines += ["", f"## {table}", "", (out / table).read_text()]
    if (out / "serve_calls.json").is_file():
        lines += ["", "## Serve calls", "", "```json", (out / "serve_calls.json").read_text()[:4000], "```"]
    lines += ["", "Resolved config: `config.yaml`; step summaries: `summary.json`.", ""]
    report = out / "report.md"
    with atomic_write(report, "w") as f:
        f.write("\n".join(lines))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from raydemand.data.prepare import add_arguments as prepare_arguments

    prepare_arguments(parser)
    parser.add_argument("--full", action="store_true",
                        help="real-size settings: the family configs of jobs/configs/ (hours on a CPU)")


def run_demo(cfg: DemoConfig, log: Callable[[str], None] = print) -> Path:
    from tqdm import tqdm

    out = Path(cfg.out)
    work: dict[str, Callable[[DemoConfig, Path], dict]] = {
        "forecast": step_forecast, "basket": step_basket, "design": step_design, "tune": step_tune,
        "serve": step_serve}
    steps: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    if not (cfg.address or os.environ.get("RAY_ADDRESS")):
        # One local cluster for every step; the Serve app's replicas need LOCAL_CPUS logical CPUs.
        from raydemand.ray_utils import init_ray
        from raydemand.serve.deployments import LOCAL_CPUS

        init_ray(num_cpus=max(os.cpu_count() or 1, LOCAL_CPUS))
    bar = tqdm([s for s in STEPS if s in cfg.steps], desc="demo", unit="step")
    for name in bar:
        bar.set_postfix_str(name)
        began = time.perf_counter()
        if name == "prepare":
            steps.update(run_prepare(cfg, log=log))
        else:
            steps[name] = work[name](cfg, out)
        seconds[name] = time.perf_counter() - began
        log(f"[demo] {name}: {seconds[name]:.0f} s")
    with atomic_write(out / "summary.json", "w") as f:
        json.dump({**steps, "seconds": seconds}, f, indent=2, default=str)  # prepare's keys, then the stages
    return write_report(cfg, steps, seconds)


def run(args: argparse.Namespace) -> int:
    from raydemand.config import load_config

    cfg = load_config(DemoConfig, args.config, args.overrides, out=args.out, address=args.address,
                      overwrite=args.overwrite)
    if args.full:
        cfg = cfg.model_copy(update={
            name: load_config(type(getattr(cfg, name)), path) for name, path in FULL.items()} | {
            "synth_products": SynthSpec(seed=0, scale=1000), "synth_orders": SynthSpec(seed=0, scale=5000)})
    report = run_demo(cfg)
    print(f"\ndemo finished: {report.parent.resolve()}\nreport: {report.resolve()}")
    return 0
