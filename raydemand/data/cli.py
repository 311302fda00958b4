"""`raydemand data ...`: synthesise, validate and preprocess data sets."""

from __future__ import annotations

import argparse
import json

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
