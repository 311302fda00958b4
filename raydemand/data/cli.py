"""`raydemand data ...`: synthesise, validate and preprocess data sets."""

from __future__ import annotations

import argparse
import json

from raydemand.cli import add_config_args
from raydemand.data.synth import layouts


def _synth(args: argparse.Namespace) -> int:
    from raydemand.data.synth import synthesize

    summary = synthesize(args.layout, args.out, seed=args.seed, scale=args.scale, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _validate(args: argparse.Namespace) -> int:
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


def _prepare(args: argparse.Namespace) -> int:
    from raydemand.config import load_config
    from raydemand.ray_utils import init_ray

    common = {"split": args.split, "overwrite": args.overwrite}
    if args.stage == "images":
        from raydemand.data.pipelines.images import ImagesConfig, run

        cfg = load_config(ImagesConfig, args.config, args.overrides, size=args.size, channels=args.channels,
                          on_error=args.on_error)
        init_ray(address=args.address)
        summary = run(args.images, args.out, cfg, **common)
    elif args.stage == "embeddings":
        from raydemand.data.pipelines.embeddings import EmbeddingsConfig, run

        cfg = load_config(EmbeddingsConfig, args.config, args.overrides, encoder=args.encoder, field=args.field,
                          batch_size=args.batch_size, concurrency=args.concurrency)
        init_ray(address=args.address)
        summary = run(args.products, args.out, cfg, **common)
    else:
        from raydemand.data.pipelines.windows import WindowsConfig, run

        cfg = load_config(WindowsConfig, args.config, args.overrides, n_orders=args.n_orders, targets=args.targets,
                          min_history=args.min_history)
        init_ray(address=args.address)
        summary = run(args.orders, args.out, cfg, **common)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("prepare", help="preprocess with Ray Data into Parquet (images, embeddings, windows)",
                           description="Ray Data stages that stream a data set through parallel workers into a "
                                       "folder of Parquet files (written atomically), plus _config.yaml and "
                                       "_summary.json; the summary is also printed as JSON.")
    stages = group.add_subparsers(dest="stage", metavar="STAGE", required=True)

    def stage(name: str, help_text: str) -> argparse.ArgumentParser:
        p = stages.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=_prepare)
        return p

    def finish(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", required=True, metavar="DIR", help="output folder (written atomically)")
        p.add_argument("--split", choices=["train", "test"], help="part of a real layout that has splits")
        p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
        p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
        add_config_args(p)

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
                   help="resnet18 (default), resnet50, minilm, or a transformers model name/folder")
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a generated data set in a real layout",
                       description="Write a generated data set in exactly the real layout (file names, columns). "
                                   "visuelle2: product images are real Fashion-MNIST images; --scale is the number "
                                   "of products. instacart: --scale is the number of users.")
    p.add_argument("--layout", required=True, choices=layouts())
    p.add_argument("--out", required=True, metavar="DIR", help="folder to create (written atomically)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same files")
    p.add_argument("--scale", type=int, default=None, metavar="N",
                   help="products (visuelle2, default 500) or users (instacart, default 1000)")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.set_defaults(func=_synth)

    p = sub.add_parser("validate", help="check a table against its contract and summarise it",
                       description="Check a product/sales or orders table (a file, a real-layout folder, or "
                                   "'completejourney'); the first problem is reported with file, column and row.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--products", metavar="TABLE", help="a product/sales table")
    which.add_argument("--orders", metavar="TABLE", help="an orders table")
    p.add_argument("--split", choices=["train", "test"], help="part of a real layout that has splits")
    p.add_argument("--no-targets", action="store_true", help="products only: weekly targets 0..11 not required")
    p.add_argument("--no-check-images", action="store_true", help="products only: do not check image files exist")
    p.set_defaults(func=_validate)

    _add_prepare(sub)
