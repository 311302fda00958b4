"""`raydemand tune basket | forecast | design`: Ray Tune sweeps, resumable, with tables and plots.

`--config` is a sweep YAML (jobs/configs/tune_*.yaml: the family config it starts from, the search
space, search, scheduler, samples); without it each family sweeps its default (`DEFAULT_SWEEP` in
raydemand/tune/<family>.py: forecast and design sample with ASHA, basket runs the seed's grid).
`--set KEY=VALUE` overrides the sweep's keys (`--set space.epochs=1` fixes a family key for every trial).
"""

from __future__ import annotations

import argparse
import json

from raydemand import inputs
from raydemand.cli import Registered, add_command, add_ray_args, checked, command_config


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


def _sweep_and_base(args: argparse.Namespace, family, **flags):
    """The sweep (`--config`, else the family's default sweep; `--set` overrides its keys) and the family
    config every trial starts from: defaults -> the sweep's `base` YAML -> its `set` -> the shared flags."""
    from raydemand.tune.config import load_sweep

    sweep = load_sweep(args.config, args.overrides, default=None if args.config else family.default_sweep,
                       num_samples=args.num_samples, max_concurrent=args.max_concurrent, seed=args.seed)
    return sweep, command_config(family.config_cls, args, sweep.base, sweep.set, **flags)


def _checked(args: argparse.Namespace, sweep, base, **sources) -> bool:
    """`--check`: the sweep and the trials' base config, resolved, with the checked inputs."""
    return checked(args, {"sweep": sweep.model_dump(mode="json"), "base": base.model_dump(mode="json")}, **sources)


def _print(best: dict) -> int:
    """The best trial as JSON; exit status 1 when no trial finished or the sweep was interrupted."""
    import sys

    print(json.dumps(best, indent=2, default=str))
    if best.get("unfinished"):
        print(f"raydemand: {best['unfinished']} trials unfinished: continue with --resume", file=sys.stderr)
    return 0 if best.get("finished") and not best.get("unfinished") else 1


def _basket(args: argparse.Namespace) -> int:
    """One training per pos_weight (or per sample of the space in --config); every threshold is scored on
    the validation users after training, so a 6 x 4 grid takes 6 trainings. Writes DIR/results.csv
    (pos_weight, threshold, f1_micro, f1_macro, precision@10, recall@10 on validation users, then test_*
    columns on held-out users), trials.csv, best.yaml, heatmap.png."""
    from raydemand.tune.basket import FAMILY, POS_WEIGHTS, THRESHOLDS

    thresholds = parse_values(args.threshold, "--threshold") if args.threshold else THRESHOLDS
    sweep, base = _sweep_and_base(args, FAMILY, model=args.model, thresholds=thresholds)
    space = dict(sweep.space)
    if args.pos_weight:
        space["pos_weight"] = {"grid": parse_values(args.pos_weight, "--pos-weight")}
    space.setdefault("pos_weight", {"grid": POS_WEIGHTS})
    sweep = sweep.model_copy(update={"space": space})
    if _checked(args, sweep, base, orders=inputs.table(args.orders, "--orders")):
        return 0
    from raydemand.tune.basket import tune_basket

    best = tune_basket(args.orders, args.out, sweep, base, resume=args.resume, overwrite=args.overwrite,
                       address=args.address, test_columns=not args.no_test_columns)
    return _print(best)


def _forecast(args: argparse.Namespace) -> int:
    """Sweep ForecastConfig keys with ASHA early stopping on validation WAPE. Without --config: 8 random
    samples of the loss weights, contrastive lambda and lr, the first one the base config's own values
    (raydemand.tune.forecast.DEFAULT_SWEEP; jobs/configs/tune_forecast_space.yaml sweeps the same on the
    tuned base config). Writes DIR/trials.csv/.md, best.yaml, best.json, val_wape_vs_params.png."""
    from raydemand.tune.forecast import FAMILY

    sweep, base = _sweep_and_base(args, FAMILY)
    if _checked(args, sweep, base, train=inputs.table(args.train, "--train")):
        return 0
    from raydemand.tune.forecast import tune_forecast

    return _print(tune_forecast(args.train, args.out, sweep, base, resume=args.resume, overwrite=args.overwrite,
                                address=args.address))


def _design(args: argparse.Namespace) -> int:
    """Sweep GANTrainConfig keys. Without --config: 8 random samples of D2GAN's alpha/beta and lr
    (raydemand.tune.design.DEFAULT_SWEEP; jobs/configs/tune_design_space.yaml on the seed's settings).
    ASHA stops trials by the pixel Frechet distance to held-out real images (val_fd, every epoch); with
    --scorer the best trial is chosen by the scorer's feature-space Frechet distance to its validation
    images (scorer_fd)."""
    from raydemand.tune.design import family

    sweep, base = _sweep_and_base(args, family(bool(args.scorer)), images={"source": args.images})
    sources = {"images": inputs.image_source(base.images.source, "--images")}
    if args.scorer:
        sources["scorer"] = inputs.run_dir(args.scorer, "--scorer", "scorer")
    if _checked(args, sweep, base, **sources):
        return 0
    from raydemand.tune.design import tune_design

    return _print(tune_design(args.out, sweep, base, scorer=args.scorer, resume=args.resume,
                              overwrite=args.overwrite, address=args.address))


def _common(p: argparse.ArgumentParser) -> None:
    add_ray_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder (trials, tables, best.yaml, plots)")
    p.add_argument("--num-samples", type=int, metavar="N",
                   help="samples of the search space (default: the sweep config's, or the family's default sweep)")
    p.add_argument("--max-concurrent", type=int, metavar="N", help="trials at once (default: the sweep config's, 1)")
    p.add_argument("--seed", type=int, help="seed of the search algorithm (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in DIR (finished trials are not run again)")
    p.add_argument("--overwrite", action="store_true", help="delete the sweep in DIR and start over")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "basket", _basket, "pos_weight x threshold grid for CNNGRU/AttentionGRU")
    p.add_argument("--orders", required=True, metavar="TABLE",
                   help="orders table: a CSV/Parquet file, an Instacart-layout folder, or 'completejourney'")
    p.add_argument("--model", choices=Registered("raydemand.basket.models:MODELS"), metavar="NAME",
                   help="a registered network: %(choices)s (default: the config's, cnngru)")
    p.add_argument("--pos-weight", metavar="LIST",
                   help="pos_weight values, e.g. 5,10,15 or 5:30:5 (default 5..30 by 5)")
    p.add_argument("--threshold", metavar="LIST", help="thresholds, e.g. 0.3,0.4,0.5,0.6 (the default) or 0.3:0.6:0.1")
    p.add_argument("--no-test-columns", action="store_true",
                   help="leave out the test_* columns (metrics on held-out users; never used for selection)")
    _common(p)

    p = add_command(sub, "forecast", _forecast, "loss weights, contrastive lambda, learning rate; ASHA on validation WAPE")
    p.add_argument("--train", required=True, metavar="TABLE", help="training table or VISUELLE-layout folder")
    _common(p)

    p = add_command(sub, "design", _design, "D2GAN alpha/beta and learning rates; objective: feature-space distance")
    p.add_argument("--images", required=True, metavar="SOURCE",
                   help="fashion-mnist | a VISUELLE-layout table | a folder of category folders")
    p.add_argument("--scorer", metavar="RUN_DIR",
                   help="a `design train-scorer` run: choose the best trial by its feature-space distance")
    _common(p)
