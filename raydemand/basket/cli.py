"""`raydemand basket train | predict | evaluate`."""

from __future__ import annotations

import argparse
import json

from raydemand.cli import add_config_args

MODELS = ("cnngru", "attngru", "xgboost", "topfreq")


def _train(args: argparse.Namespace) -> int:
    from raydemand.basket.config import BasketConfig
    from raydemand.basket.train import train
    from raydemand.config import load_config

    train_over = {k: v for k, v in {"num_workers": args.num_workers, "use_gpu": True if args.gpu else None}.items()
                  if v is not None}
    overrides = list(args.overrides) + [f"train.{k}={v}" for k, v in train_over.items()]
    cfg = load_config(BasketConfig, args.config, overrides, model=args.model, seed=args.seed)
    metrics = train(cfg, args.orders, args.out, overwrite=args.overwrite, address=args.address)
    brief = {k: metrics[k] for k in ("model", "seed", "threshold", "seconds")}
    print(json.dumps({**brief, "data": metrics["data"], "val": metrics["val"], "out": args.out}, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from raydemand.basket.predict import predict
    from raydemand.errors import InputError

    if args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")
    predict(args.checkpoint, args.orders, args.k, args.out, address=args.address)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from raydemand.basket.evaluate import evaluate
    from raydemand.errors import InputError
    from raydemand.io import atomic_write

    if args.k is not None and args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")
    result = evaluate(args.checkpoint, args.orders, k=args.k, address=args.address)
    text = json.dumps(result, indent=2)
    if args.out:
        with atomic_write(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a next-basket model (or baseline) into a run directory",
                       description="Split users (test users held out, validation users carved from the rest), "
                                   "build order windows with Ray Data, train with Ray Train, pick the checkpoint "
                                   "and the basket threshold on validation users, write RUN_DIR. Running it again "
                                   "on an unfinished RUN_DIR resumes from its latest checkpoint.")
    p.add_argument("--orders", required=True, metavar="TABLE",
                   help="orders table: a CSV/Parquet file, an Instacart-layout folder, or 'completejourney'")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--model", choices=MODELS, help="cnngru (default), attngru, xgboost, or topfreq "
                                                   "(variant from the config key 'baseline')")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--num-workers", type=int, metavar="N", help="Ray Train workers (default 1)")
    p.add_argument("--gpu", action="store_true", help="train on GPUs (default: when the cluster has them)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in RUN_DIR")
    p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    add_config_args(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("predict", help="predict every user's next order",
                       description="For every user in TABLE, rank the catalogue for the order after their last "
                                   "given one. Writes user_id, rank (1..K), product_id, score, in_basket "
                                   "(score >= the run's validation threshold).")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a `basket train` run directory")
    p.add_argument("--orders", required=True, metavar="TABLE", help="orders table (histories to predict from)")
    p.add_argument("--k", type=int, default=10, metavar="K", help="products per user (default 10)")
    p.add_argument("--out", required=True, metavar="PRED.parquet", help="output table (.parquet or .csv)")
    p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", help="metrics on the run's held-out test users",
                       description="precision/recall/NDCG/PHR@K and f1_micro/f1_macro at the run's validation "
                                   "threshold, on the last orders of the users the run held out of training.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a `basket train` run directory")
    p.add_argument("--orders", required=True, metavar="TABLE", help="the orders table the run was trained on")
    p.add_argument("--k", type=int, metavar="K", help="K of the ranking metrics (default: the run's k, 10)")
    p.add_argument("--out", metavar="METRICS.json", help="also write the metrics here")
    p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    p.set_defaults(func=_evaluate)
