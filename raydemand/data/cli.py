"""`raydemand data ...`: synthesise, validate and preprocess data sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from raydemand import inputs
from raydemand.cli import add_command, add_ray_args, checked
from raydemand.data.synth import layouts
from raydemand.encoders import list_encoders


def _synth(args: argparse.Namespace) -> int:
    """Write a generated data set in exactly the real layout (file names, columns). visuelle2: product
    images are real Fashion-MNIST images; --scale is the number of products; the summary's `wape` holds
    the noise floor and the baselines on the test split. instacart: --scale is the number of users."""
    from raydemand.data.synth import synthesize

    summary = synthesize(args.layout, args.out, seed=args.seed, scale=args.scale, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Check a product/sales or orders table (a file, a real-layout folder, or 'completejourney'); the
    first problem is reported with file, column and row."""
    from raydemand.data.sources import load_orders, load_products

    if args.products:
        df = load_products(args.products, split=args.split, require_targets=not args.no_targets,
                           check_images=not args.no_check_images)
        summary = {"table": args.products, "kind": "products", "rows": len(df),
                   "products": int(df["external_code"].nunique()),
                   "release_dates": [str(df["release_date"].min().date()), str(df["release_date"].max().date())],
                   "with_image": int((df["image_path"] != "").sum()) if "image_path" in df else 0,
                   "columns": list(df.columns)}
    else:
        df = load_orders(args.orders, split=args.split)
        summary = {"table": args.orders, "kind": "orders", "lines": len(df),
                   "orders": int(df["order_id"].nunique()), "users": int(df["user_id"].nunique()),
                   "products": int(df["product_id"].nunique()), "columns": list(df.columns)}
    print(json.dumps(summary, indent=2, default=str))
    return 0


# stage -> (module with `<Stage>Config` and `run`, its config class, the input flag, the flags that are config keys)
STAGES = {
    "images": ("raydemand.data.pipelines.images", "ImagesConfig", "images", ("size", "channels", "on_error")),
    "embeddings": ("raydemand.data.pipelines.embeddings", "EmbeddingsConfig", "products",
                   ("encoder", "field", "batch_size", "concurrency")),
    "windows": ("raydemand.data.pipelines.windows", "WindowsConfig", "orders", ("n_orders", "targets", "min_history")),
}


def _prepare(args: argparse.Namespace) -> int:
    import importlib

    from raydemand.config import load_config

    module, cls, source, keys = STAGES[args.stage]
    stage = importlib.import_module(module)
    cfg = load_config(getattr(stage, cls), args.config, args.overrides, **{k: getattr(args, k) for k in keys})
    check = inputs.image_source if args.stage == "images" else inputs.table
    if checked(args, cfg, **{source: check(getattr(args, source), f"--{source}")}):
        return 0
    from raydemand.ray_utils import init_ray

    init_ray(address=args.address)
    summary = stage.run(getattr(args, source), args.out, cfg, split=args.split, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _prepare_all(args: argparse.Namespace) -> int:
    """Generate or read the data sets a prepare config names (PrepareConfig in raydemand/data/prepare.py,
    e.g. jobs/configs/prepare_synth.yaml) and run every configured stage into one run folder; steps
    already done with the same config are skipped. The job stage jobs/prepare.py runs this command."""
    from raydemand.config import load_config
    from raydemand.data.prepare import PrepareConfig, check_sources, run_prepare

    cfg = load_config(PrepareConfig, args.config, args.overrides, out=args.out, address=args.address,
                      overwrite=args.overwrite)
    check_sources(cfg)
    sources = {role: inputs.table(getattr(cfg, role), role) for role in ("products", "orders")
               if getattr(cfg, role) is not None}
    if checked(args, cfg, **sources):
        return 0
    run_prepare(cfg)
    print(f"prepared: {Path(cfg.out).resolve()}")
    return 0


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("prepare", help="preprocess with Ray Data into Parquet (images, embeddings, windows)",
                           description="Ray Data stages that stream a data set through parallel workers into a "
                                       "folder of Parquet files (written atomically), plus _config.yaml and "
                                       "_summary.json; the summary is also printed as JSON. `all` runs every "
                                       "stage a prepare config names (the job stage jobs/prepare.py).")
    stages = group.add_subparsers(dest="stage", metavar="STAGE", required=True)

    def stage(name: str, help_text: str) -> argparse.ArgumentParser:
        p = stages.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=_prepare)
        return p

    def finish(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", required=True, metavar="DIR", help="output folder (written atomically)")
        p.add_argument("--split", choices=["train", "test"], help="part of a real layout that has splits")
        p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
        add_ray_args(p, workers=False)

    p = stage("images", "decode, resize and normalise images into float32 (C, H, W) tensors")
    p.add_argument("--images", required=True, metavar="SOURCE",
                   help="a product table (TABLE) or a folder with one sub-folder of images per category")
    p.add_argument("--size", type=int, metavar="N", help="output side in pixels (default 224)")
    p.add_argument("--channels", type=int, choices=[1, 3], help="3: RGB (default); 1: greyscale")
    p.add_argument("--on-error", choices=["raise", "skip"], help="an undecodable file: stop (default) or skip it")
    finish(p)

    p = stage("embeddings", "run a frozen encoder once over the catalogue and cache the vectors")
    p.add_argument("--products", required=True, metavar="TABLE", help="a product table")
    p.add_argument("--encoder", metavar="NAME",
                   help=f"a registered encoder ({', '.join(list_encoders())}; default resnet18) or a transformers "
                        "model name/folder")
    p.add_argument("--field", choices=["image", "caption", "text"], help="what to encode (default image)")
    p.add_argument("--batch-size", type=int, metavar="N", help="rows per encoder call (default 32)")
    p.add_argument("--concurrency", type=int, metavar="N", help="encoder actors, one GPU each where there are GPUs")
    finish(p)

    p = stage("windows", "per-user windows of the last N orders before each target order")
    p.add_argument("--orders", required=True, metavar="TABLE", help="an orders table")
    p.add_argument("--n-orders", type=int, metavar="N", help="orders of history per window (default 5)")
    p.add_argument("--targets", choices=["all", "last", "next"],
                   help="all: every order (default); last: each user's last; next: the order after the last")
    p.add_argument("--min-history", type=int, metavar="N", help="all/last: fewest earlier orders a target needs")
    finish(p)

    p = add_command(stages, "all", _prepare_all, "every stage of a prepare config (synthesised or real data sets)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: the config's `out`)")
    p.add_argument("--overwrite", action="store_true", default=None, help="redo steps that are already done")
    add_ray_args(p, workers=False)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "synth", _synth, "write a generated data set in a real layout")
    p.add_argument("--layout", required=True, choices=layouts())
    p.add_argument("--out", required=True, metavar="DIR", help="folder to create (written atomically)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same files")
    p.add_argument("--scale", type=int, default=None, metavar="N",
                   help="products (visuelle2, default 500) or users (instacart, default 1000)")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")

    p = add_command(sub, "validate", _validate, "check a table against its contract and summarise it")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--products", metavar="TABLE", help="a product/sales table")
    which.add_argument("--orders", metavar="TABLE", help="an orders table")
    p.add_argument("--split", choices=["train", "test"], help="part of a real layout that has splits")
    p.add_argument("--no-targets", action="store_true", help="products only: weekly targets 0..11 not required")
    p.add_argument("--no-check-images", action="store_true", help="products only: do not check image files exist")

    _add_prepare(sub)
