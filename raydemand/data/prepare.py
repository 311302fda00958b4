"""The prepare stage: generate or read the data sets and run the Ray Data pipelines over them.

One run folder holds every output, one sub-folder per step:

    OUT/data/visuelle2, OUT/data/instacart   generated data sets (when `synth_*` is set)
    OUT/images                               preprocessed product images (Parquet)
    OUT/embeddings/<encoder>-<field>         frozen-encoder vectors, one folder per encoder
    OUT/windows                              order-history windows (Parquet)
    OUT/config.yaml, OUT/summary.json        the resolved config and what each step did

A step whose output folder is complete and was made from the same settings and inputs is not run
again, so an interrupted run continues where it stopped (`overwrite: true` redoes everything). Each
step folder holds `_cache_key.json`, the digest of what fixes its content (the step's config less
its speed settings, the encoder as built, and the input files' paths, sizes and modification times;
see `raydemand.data.pipelines.cache`): a changed encoder, window setting or regenerated input runs
the step again.
Command: `raydemand data prepare all --config YAML`; job: `python jobs/prepare.py --config jobs/configs/prepare.yaml`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from raydemand.config import Config
from raydemand.data.pipelines.cache import file_identity, is_current, mark_current
from raydemand.data.pipelines.embeddings import EmbeddingsConfig
from raydemand.data.pipelines.images import ImagesConfig
from raydemand.data.pipelines.windows import WindowsConfig
from raydemand.errors import InputError
from raydemand.io import atomic_write


class SynthSpec(Config):
    seed: int = 0  # generator seed; the same seed gives the same files
    scale: int | None = None  # products (visuelle2) or users (instacart); None: the generator's default


class PrepareConfig(Config):
    out: str = "runs/prepare"  # run folder (local path)
    products: str | None = None  # product/sales TABLE for images and embeddings; None: skip them
    orders: str | None = None  # orders TABLE for windows; None: skip them
    synth_products: SynthSpec | None = None  # generate a VISUELLE 2.0-layout set and use it as `products`
    synth_orders: SynthSpec | None = None  # generate an Instacart-layout set and use it as `orders`
    images: ImagesConfig | None = Field(default_factory=ImagesConfig)  # None: skip image preprocessing
    embeddings: list[EmbeddingsConfig] = Field(default_factory=lambda: [EmbeddingsConfig()])  # one cache each
    windows: WindowsConfig | None = Field(default_factory=WindowsConfig)  # None: skip windows
    address: str | None = None  # Ray cluster to join; None: RAY_ADDRESS or a new local cluster
    overwrite: bool = False  # redo steps whose outputs already exist


def _step(name: str, folder: Path, settings: dict[str, Any], overwrite: bool, work: Callable[[], dict],
          log) -> dict[str, Any]:
    if not overwrite and is_current(folder, settings) and (folder / "_summary.json").exists():
        log(f"[{name}] done earlier from the same settings and inputs: {folder}")
        return {**json.loads((folder / "_summary.json").read_text()), "reused": True}
    log(f"[{name}] running -> {folder}")
    summary = work()
    mark_current(folder, settings)
    log(f"[{name}] {json.dumps({k: v for k, v in summary.items() if k not in ('source', 'out')}, default=str)}")
    return summary


def check_sources(cfg: PrepareConfig) -> None:
    """Each data set comes from one place, and there is at least one."""
    for role in ("products", "orders"):
        if getattr(cfg, role) is not None and getattr(cfg, f"synth_{role}") is not None:
            raise InputError(f"config: set either `{role}` or `synth_{role}`, not both")
    if not any((cfg.products, cfg.orders, cfg.synth_products, cfg.synth_orders)):
        raise InputError("config: nothing to prepare (set products, orders, synth_products or synth_orders)")


def run_prepare(cfg: PrepareConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every configured step; returns {step: summary}. Writes OUT/summary.json."""
    from raydemand.data.pipelines import embeddings, images, windows
    from raydemand.ray_utils import init_ray

    check_sources(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    steps: dict[str, Any] = {}
    products, orders = cfg.products, cfg.orders
    for layout, spec, role in (("visuelle2", cfg.synth_products, "products"), ("instacart", cfg.synth_orders, "orders")):
        if spec is None:
            continue
        folder = out / "data" / layout
        settings = {"layout": layout, **spec.model_dump(mode="json")}
        steps[f"synth_{layout}"] = _step(f"synth {layout}", folder, settings, cfg.overwrite,
                                         lambda: _synth(layout, folder, spec, cfg.overwrite), log)
        if role == "products":
            products = str(folder)
        else:
            orders = str(folder)

    # Each pipeline validates its input itself (windows: a file's first lines in the driver, then
    # every block in parallel), so there is no separate pass here: on Instacart-size orders it would
    # read 33M lines twice.
    started = time.perf_counter()
    init_ray(cfg.address)
    if products is not None and cfg.images is not None:
        folder = out / "images"
        settings = {"images": cfg.images.model_dump(mode="json", exclude={"batch_size"}),
                    "products": file_identity(products)}
        steps["images"] = _step("images", folder, settings, cfg.overwrite,
                                lambda: images.run(products, folder, cfg.images, overwrite=True), log)
    for emb in cfg.embeddings if products is not None else []:
        folder = out / "embeddings" / f"{emb.encoder.replace('/', '_')}-{emb.field}"
        settings = embeddings.cache_settings(emb, file_identity(products))
        steps[f"embeddings/{folder.name}"] = _step(f"embeddings {folder.name}", folder, settings, cfg.overwrite,
                                                   lambda: embeddings.run(products, folder, emb, overwrite=True), log)
    if orders is not None and cfg.windows is not None:
        folder = out / "windows"
        settings = windows.cache_settings(cfg.windows, file_identity(orders))
        steps["windows"] = _step("windows", folder, settings, cfg.overwrite,
                                 lambda: windows.run(orders, folder, cfg.windows, overwrite=True), log)
    steps["seconds_after_synth"] = round(time.perf_counter() - started, 2)
    with atomic_write(out / "summary.json", "w") as f:
        json.dump(steps, f, indent=2, default=str)
    return steps


def _synth(layout: str, folder: Path, spec: SynthSpec, overwrite: bool) -> dict[str, Any]:
    from raydemand.data.synth import synthesize

    summary = synthesize(layout, folder, seed=spec.seed, scale=spec.scale, overwrite=True)
    # The generated folder is data, not a pipeline output: its config sits beside it.
    spec.save(folder / "_config.yaml")
    (folder / "_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from raydemand.cli import add_config_args

    add_config_args(parser)
    parser.add_argument("--out", help="run folder (overrides the config's `out`)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local cluster)")
    parser.add_argument("--overwrite", action="store_true", default=None, help="redo steps that are already done")
