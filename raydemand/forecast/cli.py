"""`raydemand forecast ...`: train, predict, evaluate (and caption) new-product demand forecasters."""

from __future__ import annotations

import argparse
import json

from raydemand import inputs
from raydemand.cli import Registered, add_command, add_ray_args, checked, command_config

FORECASTERS = Registered("raydemand.forecast.base:list_forecasters")
SPLITS = ("train", "test")


def _train(args: argparse.Namespace) -> int:
    """Fit the configured forecaster (default crossattnrnn; a baseline with --forecaster NAME) on a
    product/sales table. The validation split is the latest releases of TABLE; RUN_DIR gets config.yaml,
    model.pt, metrics.json. The median and attribute-median baselines are compared on validation; where
    the forecaster does not beat them it says so and serves a validation-chosen blend (baselines.guard).
    Re-running an unfinished RUN_DIR resumes it."""
    from raydemand.forecast.config import ForecastConfig

    cfg = command_config(ForecastConfig, args, seed=args.seed, forecaster=args.forecaster)
    if checked(args, cfg, train=inputs.table(args.train, "--train")):
        return 0
    from raydemand.forecast.train import train
    from raydemand.ray_utils import init_ray

    init_ray(address=args.address)
    metrics = train(cfg, args.train, args.out, overwrite=args.overwrite)
    summary = {k: metrics[k] for k in ("forecaster", "seed", "rows", "scale", "chosen_epoch", "seconds")
               if k in metrics}
    summary["val"] = {k: metrics["val"][k] for k in ("mae", "mse", "wape")}
    summary["baselines"] = {name: {"val_wape": round(m["wape"], 4)} for name, m in metrics["baselines"].items()}
    served = metrics["served"]
    summary["served"] = {**{k: served[k] for k in ("forecaster", "baseline", "weight")},
                         "val_wape": round(served["val"]["wape"], 4)}
    print(json.dumps({"run_dir": args.out, **summary}, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    """Write PRED.csv: external_code (+ retail), weeks 0..11, in the training table's sales scale."""
    if checked(args, None, checkpoint=inputs.run_dir(args.checkpoint, "--checkpoint", "forecast"),
               products=inputs.table(args.products, "--products")):
        return 0
    from raydemand.forecast.data import load_table
    from raydemand.forecast.run import load_run
    from raydemand.io import write_table
    from raydemand.ray_utils import init_ray

    run = load_run(args.checkpoint)
    df = load_table(args.products, split=args.split, require_targets=False)
    init_ray(address=args.address)
    pred = run.predict(df)
    write_table(pred, args.out)
    print(json.dumps({"out": args.out, "rows": len(pred), "forecaster": run.forecaster.name}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Evaluate RUN_DIR on the test products of TABLE (its test split, or the products training held
    out): metrics overall and per week on the normalised and unit scales, the served forecaster beside
    the trained model alone and the baselines (WAPE, MAE in units), predictions.csv and
    forecast_vs_actual.png."""
    if checked(args, None, checkpoint=inputs.run_dir(args.checkpoint, "--checkpoint", "forecast"),
               test=inputs.table(args.test, "--test")):
        return 0
    from raydemand.forecast.evaluate import evaluate
    from raydemand.ray_utils import init_ray

    init_ray(address=args.address)
    metrics = evaluate(args.checkpoint, args.test, args.out)
    print(json.dumps({"forecaster": metrics["forecaster"], "rows": metrics["rows"],
                      **{scale: {k: round(metrics[scale][k], 4) for k in ("mae", "mse", "wape")}
                         for scale in ("normalised", "units")},
                      "comparison": {label: {"forecaster": m["forecaster"], "wape": round(m["wape"], 4),
                                             "mae_units": round(m["mae"], 4)}
                                     for label, m in metrics["comparison"].items()}}, indent=2))
    return 0


def _caption(args: argparse.Namespace) -> int:
    """Fill empty captions of TABLE's products with a captioner; existing captions are kept."""
    from raydemand.config import load_config
    from raydemand.forecast.captions import caption_products
    from raydemand.forecast.config import CaptionConfig
    from raydemand.forecast.data import load_table
    from raydemand.io import write_table
    from raydemand.ray_utils import init_ray

    cfg = load_config(CaptionConfig, args.config, args.overrides, captioner=args.captioner)
    if checked(args, cfg, products=inputs.table(args.products, "--products")):
        return 0
    df = load_table(args.products, split=args.split, require_targets=False)
    init_ray(address=args.address)
    products = df.drop_duplicates("external_code").reset_index(drop=True)
    products["caption"] = caption_products(products, cfg).to_numpy()
    write_table(products, args.out)
    print(json.dumps({"out": args.out, "products": len(products), "captioner": cfg.captioner}))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", _train, "fit CrossAttnRNN (Ray Train) or a baseline; writes a run directory")
    p.add_argument("--train", required=True, metavar="TABLE",
                   help="product/sales table, VISUELLE folder (its train split) or 'completejourney'")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--forecaster", choices=FORECASTERS, metavar="NAME",
                   help="a registered forecaster: %(choices)s (default: the config's, crossattnrnn)")
    p.add_argument("--seed", type=int, help="random seed (default from the config: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished RUN_DIR")
    add_ray_args(p)

    p = add_command(sub, "predict", _predict, "forecast 12 weeks for new products")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR")
    p.add_argument("--products", required=True, metavar="TABLE", help="products (targets not needed)")
    p.add_argument("--out", required=True, metavar="PRED.csv")
    p.add_argument("--split", choices=SPLITS, help="part of a real layout that has splits")
    add_ray_args(p, workers=False, config=False)

    p = add_command(sub, "evaluate", _evaluate, "MAE, MSE, WAPE of a run on test products, with a PNG")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR")
    p.add_argument("--test", required=True, metavar="TABLE")
    p.add_argument("--out", metavar="DIR", help="where the files go (default RUN_DIR)")
    add_ray_args(p, workers=False, config=False)

    p = add_command(sub, "caption", _caption, "caption products (Ray Data batch inference) into a table")
    p.add_argument("--products", required=True, metavar="TABLE")
    p.add_argument("--out", required=True, metavar="TABLE.csv")
    p.add_argument("--captioner", choices=Registered("raydemand.forecast.captions:list_captioners"),
                   metavar="NAME", help="a registered captioner: %(choices)s (default: the config's, attributes)")
    p.add_argument("--split", choices=SPLITS, help="part of a real layout that has splits")
    add_ray_args(p, workers=False)
