"""`raydemand basket train | predict | evaluate`."""

from __future__ import annotations

import argparse
import json

from raydemand import inputs
from raydemand.cli import Registered, add_command, add_ray_args, checked, command_config

PREDICTORS = Registered("raydemand.basket.base:list_predictors")
ORDERS_HELP = "orders table: a CSV/Parquet file, an Instacart-layout folder, or 'completejourney'"


def _k(args: argparse.Namespace) -> None:
    from raydemand.errors import InputError

    if args.k is not None and args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")


def _checked_run(args: argparse.Namespace) -> bool:
    """Check what predict and evaluate read (a `basket train` run and an orders table); True: `--check`."""
    _k(args)
    return checked(args, None, checkpoint=inputs.run_dir(args.checkpoint, "--checkpoint", "basket"),
                   orders=inputs.table(args.orders, "--orders"))


def _train(args: argparse.Namespace) -> int:
    """Split users (test users held out, validation users carved from the rest), build order windows with
    Ray Data, train with Ray Train, pick the checkpoint and the basket threshold on validation users,
    write RUN_DIR. Running it again on an unfinished RUN_DIR resumes from its latest checkpoint."""
    from raydemand.basket.config import BasketConfig

    cfg = command_config(BasketConfig, args, model=args.model, seed=args.seed)
    if checked(args, cfg, orders=inputs.table(args.orders, "--orders")):
        return 0
    from raydemand.basket.train import train

    metrics = train(cfg, args.orders, args.out, overwrite=args.overwrite, address=args.address)
    brief = {k: metrics[k] for k in ("model", "seed", "threshold", "seconds")}
    print(json.dumps({**brief, "data": metrics["data"], "val": metrics["val"], "out": args.out}, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    """For every user in TABLE, rank the catalogue for the order after their last given one. Writes
    user_id, rank (1..K), product_id, score, in_basket (score >= the run's validation threshold)."""
    if _checked_run(args):
        return 0
    from raydemand.basket.predict import predict

    predict(args.checkpoint, args.orders, args.k, args.out, address=args.address)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """precision/recall/NDCG/PHR@K and f1_micro/f1_macro at the run's validation threshold, on the last
    orders of the users the run held out of training."""
    if _checked_run(args):
        return 0
    from raydemand.basket.evaluate import evaluate
    from raydemand.io import atomic_write

    result = evaluate(args.checkpoint, args.orders, k=args.k, address=args.address)
    text = json.dumps(result, indent=2)
    if args.out:
        with atomic_write(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


def _run_and_orders(p: argparse.ArgumentParser, orders_help: str) -> None:
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a `basket train` run directory")
    p.add_argument("--orders", required=True, metavar="TABLE", help=orders_help)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", _train, "train a next-basket model (or baseline) into a run directory")
    p.add_argument("--orders", required=True, metavar="TABLE", help=ORDERS_HELP)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--model", choices=PREDICTORS, metavar="NAME",
                   help="a registered predictor: %(choices)s (default: the config's, cnngru; topfreq's variant "
                        "comes from the config key 'baseline')")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in RUN_DIR")
    add_ray_args(p)

    p = add_command(sub, "predict", _predict, "predict every user's next order")
    _run_and_orders(p, "orders table (histories to predict from)")
    p.add_argument("--k", type=int, default=10, metavar="K", help="products per user (default 10)")
    p.add_argument("--out", required=True, metavar="PRED.parquet", help="output table (.parquet or .csv)")
    add_ray_args(p, workers=False, config=False)

    p = add_command(sub, "evaluate", _evaluate, "metrics on the run's held-out test users")
    _run_and_orders(p, "the orders table the run was trained on")
    p.add_argument("--k", type=int, metavar="K", help="K of the ranking metrics (default: the run's k, 10)")
    p.add_argument("--out", metavar="METRICS.json", help="also write the metrics here")
    add_ray_args(p, workers=False, config=False)
