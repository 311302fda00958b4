"""`raydemand design train | generate | train-scorer | score`."""

from __future__ import annotations

import argparse
import json

from raydemand import inputs
from raydemand.cli import Registered, add_command, add_ray_args, checked, command_config

SOURCE_HELP = "fashion-mnist | a VISUELLE-layout product table | a folder with one sub-folder per category"
GANS = Registered("raydemand.design.models:list_gans")


def _training_config(cls, args: argparse.Namespace, **flags):
    """GAN and scorer training: the shared flags plus the image source's `--images`/`--limit`."""
    return command_config(cls, args, epochs=args.epochs, seed=args.seed,
                          images={"source": args.images, "limit": args.limit}, **flags)


def _train(args: argparse.Namespace) -> int:
    """Train one class-conditional GAN at 64x64 (the seed's settings by default: batch 128, noise 100,
    lr 2e-4 (PGGAN: 1e-3), Adam beta1 0.5, 10 epochs) with Ray Train. RUN_DIR gets config.yaml, model.pt,
    metrics.json (losses, diversity, mode collapse and divergence flags per epoch) and samples.png;
    running again on an unfinished RUN_DIR resumes from its latest checkpoint."""
    from raydemand.design.config import GANTrainConfig

    cfg = _training_config(GANTrainConfig, args, model={"gan": args.gan})
    if checked(args, cfg, images=inputs.image_source(cfg.images.source, "--images")):
        return 0
    from raydemand.design.train import train
    from raydemand.ray_utils import init_ray

    init_ray(address=args.address)
    record = train(cfg, args.out, overwrite=args.overwrite)
    summary = {k: record[k] for k in ("gan", "data", "train_images", "val_images", "chosen_epoch",
                                      "mode_collapse_epochs", "divergence_epochs")}
    print(json.dumps({**summary, "best": record["best"], "out": args.out}, indent=2, default=float))
    return 0


def _generate(args: argparse.Namespace) -> int:
    """Write SAMPLES.npz: images uint8 (N, H, W) or (N, H, W, 3), labels int (N,), categories str; N
    images of one category or of every category in turn."""
    inputs.run_dir(args.checkpoint, "--checkpoint", "gan")
    from raydemand.design.generate import load_run, write_samples

    summary = write_samples(load_run(args.checkpoint), args.out, args.n, args.category, args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def _train_scorer(args: argparse.Namespace) -> int:
    """Train the preference scorer: a ResNet-50 (resnet18 with --arch) that tells categories apart on
    images of the top-N best-selling products (every image where SOURCE has no sales), split
    train/val/test 5:3:2. RUN_DIR gets model.pt, metrics.json (held-out test accuracy, real-vs-real
    feature reference) and reference.npz."""
    from raydemand.design.config import ScorerConfig

    cfg = _training_config(ScorerConfig, args, top=args.top, arch=args.arch)
    source = inputs.image_source(cfg.images.source, "--images", needs_sales=cfg.top is not None)
    if checked(args, cfg, images=source):
        return 0
    from raydemand.design.scorer import train_scorer
    from raydemand.ray_utils import init_ray

    init_ray(address=args.address)
    record = train_scorer(cfg, args.out, overwrite=args.overwrite)
    print(json.dumps({k: record[k] for k in ("arch", "data", "split", "chosen_epoch", "test_accuracy", "real_vs_real")}
                     | {"out": args.out}, indent=2, default=float))
    return 0


def _score(args: argparse.Namespace) -> int:
    """Score SAMPLES.npz files with a trained scorer: preference % per category (the seed's Table 2, a
    column per file), recognised %, and Fréchet distance, precision/recall and density/coverage in the
    scorer's feature space (not Inception FID) next to real-vs-real reference values."""
    inputs.run_dir(args.scorer, "--scorer", "scorer")
    inputs.files(args.images, "--images")
    from raydemand.design.score import markdown, score, write_report
    from raydemand.design.scorer import load_scorer

    report = score(load_scorer(args.scorer), args.images, k=args.k, seed=args.seed)
    print(markdown(report))
    if args.out:
        write_report(report, args.out)
    return 0


def _training(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", metavar="SOURCE", help=SOURCE_HELP + " (default fashion-mnist)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (GAN default 10, scorer default 5)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N images (quick runs, CI)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in RUN_DIR")
    add_ray_args(p)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", _train, "train a class-conditional GAN (dcgan, pggan, d2gan) with Ray Train")
    p.add_argument("--gan", choices=GANS, metavar="NAME",
                   help="a registered GAN: %(choices)s (default: the config's, dcgan)")
    _training(p)

    p = add_command(sub, "generate", _generate, "generate images from a trained GAN into SAMPLES.npz")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a `design train` run directory")
    p.add_argument("--n", type=int, required=True, metavar="N", help="number of images")
    p.add_argument("--category", metavar="NAME", help="only this category (default: every category in turn)")
    p.add_argument("--out", required=True, metavar="SAMPLES.npz", help="output file (written atomically)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    p = add_command(sub, "train-scorer", _train_scorer, "train the preference scorer (ResNet) on best sellers' images")
    p.add_argument("--top", type=int, metavar="N", help="keep the N best-selling products (sources with sales)")
    p.add_argument("--arch", choices=Registered("raydemand.design.config:SCORER_ARCHS"), metavar="NAME",
                   help="backbone: %(choices)s (default: the config's, resnet50)")
    _training(p)

    p = add_command(sub, "score", _score, "preference per category and feature-space quality of generated images")
    p.add_argument("--scorer", required=True, metavar="RUN_DIR", help="a `design train-scorer` run directory")
    p.add_argument("--images", required=True, nargs="+", metavar="SAMPLES.npz", help="one or more samples files")
    p.add_argument("--out", metavar="DIR", help="also write preference.csv/.md, recognised.csv, feature_space.csv, "
                                                "score.json there")
    p.add_argument("--k", type=int, default=5, help="nearest neighbours for precision/recall, density/coverage")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
