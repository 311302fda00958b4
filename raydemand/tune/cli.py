"""`raydemand tune basket | forecast | design`: Ray Tune sweeps, resumable, with tables and plots.

`--config` is a sweep YAML (jobs/configs/tune_*.yaml: the family config it starts from, the search
space, search, scheduler, samples); `--set KEY=VALUE` overrides its keys (`--set space.epochs=1`
fixes a family key for every trial).
"""

from __future__ import annotations

import argparse
import json

from raydemand.cli import add_config_args


def parse_values(text: str, flag: str) -> list[float]:
    """`5,10,15` or a range `START:STOP:STEP` (STOP included) -> floats; errors name the flag."""
    from raydemand.errors import InputError

    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            n = int(round((stop - start) / step)) + 1
            return [round(start + i * step, 10) for i in range(n)]
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{flag}: expected a comma-separated list (5,10,15) or START:STOP:STEP, "
                         f"got {text!r}") from None
    if not values:
        raise InputError(f"{flag}: no values in {text!r}")
    return values


def _sweep(args: argparse.Namespace):
    from raydemand.tune.config import load_sweep

    return load_sweep(args.config, args.overrides, num_samples=args.num_samples,
                      max_concurrent=args.max_concurrent, seed=args.seed)


def _base(cls, sweep, args, **explicit):
    """The family config every trial starts from: defaults -> sweep `base` YAML -> sweep `set` -> flags."""
    from raydemand.config import load_config

    if args.num_workers is not None:
        explicit["train"] = {"num_workers": args.num_workers}
    return load_config(cls, sweep.base, sweep.set, **explicit)


def _print(best: dict) -> int:
    """The best trial as JSON; exit status 1 when no trial finished or the sweep was interrupted."""
    import sys

    print(json.dumps(best, indent=2, default=str))
    if best.get("unfinished"):
        print(f"raydemand: {best['unfinished']} trials unfinished: continue with --resume", file=sys.stderr)
    return 0 if best.get("finished") and not best.get("unfinished") else 1


def _basket(args: argparse.Namespace) -> int:
    from raydemand.basket.config import BasketConfig
    from raydemand.tune.basket import POS_WEIGHTS, THRESHOLDS, tune_basket

    sweep = _sweep(args)
    thresholds = parse_values(args.threshold, "--threshold") if args.threshold else THRESHOLDS
    base = _base(BasketConfig, sweep, args, model=args.model, thresholds=thresholds)
    space = dict(sweep.space)
    if args.pos_weight:
        space["pos_weight"] = {"grid": parse_values(args.pos_weight, "--pos-weight")}
    space.setdefault("pos_weight", {"grid": POS_WEIGHTS})
    sweep = sweep.model_copy(update={"space": space})
    best = tune_basket(args.orders, args.out, sweep, base, resume=args.resume, overwrite=args.overwrite,
                       address=args.address, test_columns=not args.no_test_columns)
    return _print(best)


def _forecast(args: argparse.Namespace) -> int:
    from raydemand.forecast.config import ForecastConfig
    from raydemand.tune.forecast import tune_forecast

    sweep = _sweep(args)
    base = _base(ForecastConfig, sweep, args)
    return _print(tune_forecast(args.train, args.out, sweep, base, resume=args.resume, overwrite=args.overwrite,
                                address=args.address))


def _design(args: argparse.Namespace) -> int:
    from raydemand.design.config import GANTrainConfig
    from raydemand.tune.design import tune_design

    sweep = _sweep(args)
    base = _base(GANTrainConfig, sweep, args, images={"source": args.images})
    return _print(tune_design(args.out, sweep, base, scorer=args.scorer, resume=args.resume,
                              overwrite=args.overwrite, address=args.address))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder (trials, tables, best.yaml, plots)")
    p.add_argument("--num-samples", type=int, metavar="N",
                   help="samples of the search space (default: the sweep config's)")
    p.add_argument("--max-concurrent", type=int, metavar="N", help="trials at once (default: the sweep config's, 1)")
    p.add_argument("--num-workers", type=int, metavar="N",
                   help="Ray Train workers per trial (default: the family config's)")
    p.add_argument("--seed", type=int, help="seed of the search algorithm (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in DIR (finished trials are not run again)")
    p.add_argument("--overwrite", action="store_true", help="delete the sweep in DIR and start over")
    p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    add_config_args(p)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("basket", help="pos_weight x threshold grid for CNNGRU/AttentionGRU",
                       description="One training per pos_weight (or per sample of the space in --config); every "
                                   "threshold is scored on the validation users after training, so a 6 x 4 grid "
                                   "takes 6 trainings. Writes DIR/results.csv (pos_weight, threshold, f1_micro, "
                                   "f1_macro, precision@10, recall@10 on validation users, then test_* columns on "
                                   "held-out users), trials.csv, best.yaml, heatmap.png.")
    p.add_argument("--orders", required=True, metavar="TABLE",
                   help="orders table: a CSV/Parquet file, an Instacart-layout folder, or 'completejourney'")
    p.add_argument("--model", choices=("cnngru", "attngru"), help="network (default: the config's, cnngru)")
    p.add_argument("--pos-weight", metavar="LIST",
                   help="pos_weight values, e.g. 5,10,15 or 5:30:5 (default 5..30 by 5)")
    p.add_argument("--threshold", metavar="LIST", help="thresholds, e.g. 0.3,0.4,0.5,0.6 (the default) or 0.3:0.6:0.1")
    p.add_argument("--no-test-columns", action="store_true",
                   help="leave out the test_* columns (metrics on held-out users; never used for selection)")
    _common(p)
    p.set_defaults(func=_basket)

    p = sub.add_parser("forecast", help="loss weights, contrastive lambda, learning rate; ASHA on validation WAPE",
                       description="Sweep ForecastConfig keys (jobs/configs/tune_forecast_space.yaml) with ASHA early "
                                   "stopping on validation WAPE. Writes DIR/trials.csv/.md, best.yaml, best.json, "
                                   "val_wape_vs_params.png.")
    p.add_argument("--train", required=True, metavar="TABLE", help="training table or VISUELLE-layout folder")
    _common(p)
    p.set_defaults(func=_forecast)

    p = sub.add_parser("design", help="D2GAN alpha/beta and learning rates; objective: feature-space distance",
                       description="Sweep GANTrainConfig keys (jobs/configs/tune_design_space.yaml). ASHA stops trials "
                                   "by the pixel Frechet distance to held-out real images (val_fd, every epoch); "
                                   "with --scorer the best trial is chosen by the scorer's feature-space Frechet "
                                   "distance to its validation images (scorer_fd).")
    p.add_argument("--images", required=True, metavar="SOURCE",
                   help="fashion-mnist | a VISUELLE-layout table | a folder of category folders")
    p.add_argument("--scorer", metavar="RUN_DIR",
                   help="a `design train-scorer` run: choose the best trial by its feature-space distance")
    _common(p)
    p.set_defaults(func=_design)


def main(argv=None) -> int:
    """Job entrypoint: `ray job submit -- python -m raydemand.tune.cli basket --orders ... --out ...`
    (the same commands as `raydemand tune ...`)."""
    from raydemand.cli import run_command

    parser = argparse.ArgumentParser(prog="raydemand tune", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True))
    args = parser.parse_args(argv)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
