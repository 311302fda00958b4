"""`raydemand demo`: the platform end to end on embedded data, on a local Ray cluster.

Today it generates both data sets in their real layouts (product images are real Fashion-MNIST
images), runs the three Ray Data pipelines over them (each validates its input), and writes a report with plots into
the run folder it prints. Training, tuning and serving join as those stages land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import Field

from raydemand.data.pipelines.embeddings import EmbeddingsConfig
from raydemand.data.pipelines.images import ImagesConfig
from raydemand.data.prepare import PrepareConfig, SynthSpec, run_prepare
from raydemand.io import atomic_path, atomic_write


class DemoConfig(PrepareConfig):
    """The prepare stage with small settings that finish in a few minutes on 2 cores."""

    out: str = "runs/demo"
    synth_products: SynthSpec | None = Field(default_factory=lambda: SynthSpec(seed=0, scale=300))
    synth_orders: SynthSpec | None = Field(default_factory=lambda: SynthSpec(seed=0, scale=1000))
    images: ImagesConfig | None = Field(default_factory=lambda: ImagesConfig(size=64))
    embeddings: list[EmbeddingsConfig] = Field(
        default_factory=lambda: [EmbeddingsConfig(encoder="resnet18", field="image", images=ImagesConfig(size=112))])


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


def write_report(cfg: DemoConfig, steps: dict) -> Path:
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
    lines += ["## Steps", "", "| step | result |", "|---|---|"]
    for name, summary in steps.items():
        if isinstance(summary, dict):
            shown = {k: v for k, v in summary.items() if k not in ("source", "out", "columns")}
            lines.append(f"| {name} | {', '.join(f'{k}: {v}' for k, v in shown.items())} |")
    lines += ["", f"Resolved config: `config.yaml`; step summaries: `summary.json`.", ""]
    report = out / "report.md"
    with atomic_write(report, "w") as f:
        f.write("\n".join(lines))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from raydemand.data.prepare import add_arguments as prepare_arguments

    prepare_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from raydemand.config import load_config

    cfg = load_config(DemoConfig, args.config, args.overrides, out=args.out, address=args.address,
                      overwrite=args.overwrite)
    steps = run_prepare(cfg)
    report = write_report(cfg, steps)
    print(f"\ndemo finished: {report.parent.resolve()}\nreport: {report.resolve()}")
    return 0
