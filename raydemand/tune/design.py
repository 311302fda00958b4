"""`tune design`: D2GAN alpha/beta, learning rate or any other GANTrainConfig key.

Every epoch reports val_fd (Fréchet distance of downsampled pixels to real images held out from GAN
training), so ASHA can stop weak trials early. With a scorer (`--scorer RUN_DIR`, a `design
train-scorer` run), each finished trial also generates images and measures the Fréchet distance in
the scorer's feature space to the scorer's *validation* real images (scorer_fd; its test images are
left to `design score`), and the best trial is the one with the lowest scorer_fd.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from raydemand.design.config import GANTrainConfig
from raydemand.tune.runner import SETTINGS_FILE, Family, checkpoint_of, report_final, run_sweep, run_trial

METRIC = "val_fd"
SCORER_METRIC = "scorer_fd"
# `tune design` without --config: D2GAN's alpha/beta and learning rate, random search, ASHA stopping weak
# trials on each epoch's pixel Fréchet distance to held-out real images.
DEFAULT_SWEEP = {
    "space": {"model.gan": "d2gan", "model.alpha": {"loguniform": [0.05, 1.0]},
              "model.beta": {"loguniform": [0.02, 0.5]}, "lr": {"loguniform": [5e-5, 1e-3]}},
    "search": "random", "scheduler": "asha", "num_samples": 8,
}


def scorer_distance(run_dir: Path, scorer_dir: str, seed: int) -> float:
    """Fréchet distance in the scorer's features between generated images and the scorer's validation
    images, class-balanced: as many generated images per category as it has real ones."""
    from raydemand.design.generate import load_run
    from raydemand.design.metrics import frechet_distance
    from raydemand.design.scorer import load_scorer
    from raydemand.errors import InputError

    scorer = load_scorer(scorer_dir)
    if scorer.reference is None:
        raise InputError(f"{scorer_dir}: the scorer run has no reference features (retrain it with train-scorer)")
    gan = load_run(run_dir)
    real, real_labels = scorer.reference["val_features"], scorer.reference["val_labels"]
    wanted = [scorer.categories[c] for c in real_labels]
    unknown = sorted(set(wanted) - set(gan.categories))
    if unknown:
        raise InputError(f"{scorer_dir}: scorer categories {unknown} are not made by the GAN in {run_dir}")
    images, labels = [], []
    for category in sorted(set(wanted)):
        imgs, labs = gan.generate(wanted.count(category), category, seed=seed)
        images.append(imgs)
        labels.append(labs)
    _, fake = scorer.predict(np.concatenate(images))
    return frechet_distance(real, fake)


def design_trial(params: dict, settings: dict) -> None:
    from raydemand.design.train import train

    trained = run_trial(GANTrainConfig, params, settings, train)
    if trained is None:
        return
    run_dir, cfg, record = trained
    best, epoch = record["best"], record["chosen_epoch"]
    result: dict[str, Any] = {METRIC: best["val_fd"], "diversity_mean": best.get("diversity_mean"),
                              "chosen_epoch": epoch, "checkpoint": checkpoint_of(run_dir, epoch)}
    if settings.get("scorer"):
        result[SCORER_METRIC] = scorer_distance(run_dir, settings["scorer"], cfg.seed)
    report_final(run_dir, result)


def family(scorer: bool) -> Family:
    """ASHA always reads val_fd (every epoch has it); the best trial is chosen by scorer_fd when a scorer is given."""
    extra = [SCORER_METRIC] if scorer else []
    return Family(name="design", config_cls=GANTrainConfig, trial=design_trial, metric=METRIC, mode="min",
                  columns=[*extra, "diversity_mean", "chosen_epoch"], select_metric=SCORER_METRIC if scorer else None,
                  default_sweep=DEFAULT_SWEEP)


def tune_design(out: str | Path, sweep, base: GANTrainConfig, *, scorer: str | None = None, resume: bool = False,
                overwrite: bool = False, address: str | None = None) -> dict[str, Any]:
    source = base.images.source
    if Path(source).exists():
        images = base.images.model_copy(update={"source": str(Path(source).resolve())})
        base = base.model_copy(update={"images": images})
    saved = Path(out) / SETTINGS_FILE
    if resume and saved.is_file():
        scorer = json.loads(saved.read_text()).get("scorer")
    settings = {"scorer": str(Path(scorer).resolve()) if scorer else None}
    return run_sweep(family(bool(scorer)), sweep, base, settings, out, resume=resume, overwrite=overwrite,
                     address=address)
