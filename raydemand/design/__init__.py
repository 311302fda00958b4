"""Design generation with GANs (DCGAN, PGGAN, D2GAN) and the preference scorer."""

from __future__ import annotations

from pathlib import Path


def load_run(run_dir: str | Path, device: str = "cpu"):
    """A trained design run, recognised from its model.pt: a `GANRun` (`predict(n, category, seed)` ->
    uint8 images, labels) or a `ScorerRun` (`predict(images)` -> category probabilities, features).
    Needs no Ray; for in-process serving."""
    import torch

    from raydemand.errors import InputError

    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a design run directory (no model.pt)")
    kind = torch.load(path, map_location="cpu", weights_only=True).get("kind")
    if kind == "gan":
        from raydemand.design.generate import GANRun

        return GANRun(run_dir, device)
    if kind == "scorer":
        from raydemand.design.scorer import ScorerRun

        return ScorerRun(run_dir, device)
    raise InputError(f"{path}: not a design model (kind {kind!r})")
