"""Design generation with GANs (DCGAN, PGGAN, D2GAN) and the preference scorer."""

from __future__ import annotations

from pathlib import Path


def load_run(run_dir: str | Path, device: str = "cpu"):
    """A trained design run, recognised from its model.pt: a `GANRun` (`predict(n, category, seed)` ->
    uint8 images, labels) or a `ScorerRun` (`predict(images)` -> category probabilities, features).
    Needs no Ray; for in-process serving."""
    from raydemand.errors import InputError
    from raydemand.runs import needs, run_family

    family = run_family(run_dir)
    if family == "gan":
        from raydemand.design.generate import GANRun

        return GANRun(run_dir, device)
    if family == "scorer":
        from raydemand.design.scorer import ScorerRun

        return ScorerRun(run_dir, device)
    raise InputError(f"{run_dir}: holds a {family} run, not {needs('gan')} or {needs('scorer')}")
