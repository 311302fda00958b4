"""`raydemand design train | generate | train-scorer | score`."""

from __future__ import annotations

import argparse
import json

from raydemand.cli import add_config_args

SOURCE_HELP = "fashion-mnist | a VISUELLE-layout product table | a folder with one sub-folder per category"


def _gan_config(args: argparse.Namespace):
    from raydemand.config import load_config
    from raydemand.design.config import GANTrainConfig

    cfg = load_config(GANTrainConfig, args.config, args.overrides, epochs=args.epochs, seed=args.seed)
    images = cfg.images.model_copy(update={k: v for k, v in (("source", args.images), ("limit", args.limit))
                                           if v is not None})
    model = cfg.model if args.gan is None else cfg.model.model_copy(update={"gan": args.gan})
    train = cfg.train.model_copy(update={k: v for k, v in (("num_workers", args.num_workers),
                                                           ("use_gpu", True if args.gpu else None)) if v is not None})
    # Re-validate: flags go through the same checks as YAML values.
    return GANTrainConfig.model_validate({**cfg.model_dump(), "images": images.model_dump(),
                                          "model": model.model_dump(), "train": train.model_dump()})


def _train(args: argparse.Namespace) -> int:
    from raydemand.design.train import train
    from raydemand.ray_utils import init_ray

    cfg = _gan_config(args)
    init_ray(address=args.address)
    record = train(cfg, args.out, overwrite=args.overwrite)
    summary = {k: record[k] for k in ("gan", "data", "train_images", "val_images", "chosen_epoch",
                                      "mode_collapse_epochs", "divergence_epochs")}
    print(json.dumps({**summary, "best": record["best"], "out": args.out}, indent=2, default=float))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from raydemand.design.generate import load_run, write_samples

    summary = write_samples(load_run(args.checkpoint), args.out, args.n, args.category, args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def _train_scorer(args: argparse.Namespace) -> int:
    from raydemand.config import load_config
    from raydemand.design.config import ScorerConfig
    from raydemand.design.scorer import train_scorer
    from raydemand.ray_utils import init_ray

    cfg = load_config(ScorerConfig, args.config, args.overrides, top=args.top, epochs=args.epochs, seed=args.seed,
                      arch=args.arch)
    images = cfg.images.model_copy(update={k: v for k, v in (("source", args.images), ("limit", args.limit))
                                           if v is not None})
    train = cfg.train.model_copy(update={k: v for k, v in (("num_workers", args.num_workers),
                                                           ("use_gpu", True if args.gpu else None)) if v is not None})
    cfg = ScorerConfig.model_validate({**cfg.model_dump(), "images": images.model_dump(), "train": train.model_dump()})
    init_ray(address=args.address)
    record = train_scorer(cfg, args.out, overwrite=args.overwrite)
    print(json.dumps({k: record[k] for k in ("arch", "data", "split", "chosen_epoch", "test_accuracy", "real_vs_real")}
                     | {"out": args.out}, indent=2, default=float))
    return 0


def _score(args: argparse.Namespace) -> int:
    from raydemand.design.score import markdown, score, write_report
    from raydemand.design.scorer import load_scorer

    report = score(load_scorer(args.scorer), args.images, k=args.k, seed=args.seed)
    print(markdown(report))
    if args.out:
        write_report(report, args.out)
    return 0


def _common(p: argparse.ArgumentParser, *, training: bool) -> None:
    p.add_argument("--seed", type=int, default=None if training else 0, help="random seed (default 0)")
    if training:
        p.add_argument("--epochs", type=int, metavar="N", help="epochs (GAN default 10, scorer default 5)")
        p.add_argument("--limit", type=int, metavar="N", help="use only the first N images (quick runs, CI)")
        p.add_argument("--num-workers", type=int, metavar="N", help="Ray Train workers (DDP when > 1)")
        p.add_argument("--gpu", action="store_true", help="train on GPUs (default: when the cluster has them)")
        p.add_argument("--overwrite", action="store_true", help="replace a finished run in RUN_DIR")
        p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
        add_config_args(p)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a class-conditional GAN (dcgan, pggan, d2gan) with Ray Train",
                       description="Train one class-conditional GAN at 64x64 (the seed's settings by default: "
                                   "batch 128, noise 100, lr 2e-4 (PGGAN: 1e-3), Adam beta1 0.5, 10 epochs) "
                                   "with Ray Train. "
                                   "RUN_DIR gets config.yaml, model.pt, metrics.json (losses, diversity, mode "
                                   "collapse and divergence flags per epoch) and samples.png; running again on an "
                                   "unfinished RUN_DIR resumes from its latest checkpoint.")
    p.add_argument("--gan", choices=["dcgan", "pggan", "d2gan"], help="which GAN (default dcgan, or the config's)")
    p.add_argument("--images", metavar="SOURCE", help=SOURCE_HELP + " (default fashion-mnist)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    _common(p, training=True)
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="generate images from a trained GAN into SAMPLES.npz",
                       description="Write SAMPLES.npz: images uint8 (N, H, W) or (N, H, W, 3), labels int (N,), "
                                   "categories str; N images of one category or of every category in turn.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a `design train` run directory")
    p.add_argument("--n", type=int, required=True, metavar="N", help="number of images")
    p.add_argument("--category", metavar="NAME", help="only this category (default: every category in turn)")
    p.add_argument("--out", required=True, metavar="SAMPLES.npz", help="output file (written atomically)")
    _common(p, training=False)
    p.set_defaults(func=_generate)

    p = sub.add_parser("train-scorer", help="train the preference scorer (ResNet) on best sellers' images",
                       description="Train the preference scorer: a ResNet-50 (resnet18 with --arch) that tells "
                                   "categories apart on images of the top-N best-selling products (every image "
                                   "where SOURCE has no sales), split train/val/test 5:3:2. RUN_DIR gets "
                                   "model.pt, metrics.json (held-out test accuracy, real-vs-real feature "
                                   "reference) and reference.npz.")
    p.add_argument("--images", metavar="SOURCE", help=SOURCE_HELP + " (default fashion-mnist)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--top", type=int, metavar="N", help="keep the N best-selling products (sources with sales)")
    p.add_argument("--arch", choices=["resnet50", "resnet18"], help="backbone (default resnet50)")
    _common(p, training=True)
    p.set_defaults(func=_train_scorer)

    p = sub.add_parser("score", help="preference per category and feature-space quality of generated images",
                       description="Score SAMPLES.npz files with a trained scorer: preference % per category "
                                   "(the seed's Table 2, a column per file), recognised %, and Fréchet distance, "
                                   "precision/recall and density/coverage in the scorer's feature space (not "
                                   "Inception FID) next to real-vs-real reference values.")
    p.add_argument("--scorer", required=True, metavar="RUN_DIR", help="a `design train-scorer` run directory")
    p.add_argument("--images", required=True, nargs="+", metavar="SAMPLES.npz", help="one or more samples files")
    p.add_argument("--out", metavar="DIR", help="also write preference.csv/.md, recognised.csv, feature_space.csv, "
                                                "score.json there")
    p.add_argument("--k", type=int, default=5, help="nearest neighbours for precision/recall, density/coverage")
    _common(p, training=False)
    p.set_defaults(func=_score)
