"""Which family a run directory belongs to, where its files are, and the model version a response reports.

A run directory may be a local folder or a storage URI (s3://, gs://, file://, ... anything pyarrow's
filesystems open, see `raydemand.jobs`): a URI is copied into a temporary local folder by whoever
loads it (the application builder to recognise it, each replica to load it, on whatever node it
runs), and the copy is removed once loaded.
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from raydemand.errors import InputError

MODEL_FILE = "model.pt"
KINDS = ("forecast", "basket", "gan", "scorer")
# What a 503 tells the caller to pass to `raydemand serve`.
NEEDS = {"forecast": "a forecast run directory (`raydemand forecast train --out RUN_DIR`)",
         "basket": "a basket run directory (`raydemand basket train --out RUN_DIR`)",
         "scorer": "a design scorer run directory (`raydemand design train-scorer --out RUN_DIR`)",
         "gan": "a GAN run directory (`raydemand design train --out RUN_DIR`)"}


@contextmanager
def fetch(run_dir: str | Path) -> Iterator[Path]:
    """The local folder of a run while the context lasts: the folder itself, or a fresh local copy of
    a URI, removed afterwards (everything a family's `load_run` needs is read while loading)."""
    from raydemand.jobs import download, is_uri

    if not is_uri(str(run_dir)):
        yield Path(run_dir)
        return
    with tempfile.TemporaryDirectory(prefix="raydemand-serve-") as tmp:
        yield download(str(run_dir), Path(tmp) / (Path(str(run_dir).rstrip("/")).name or "run"))


def run_state(run_dir: str | Path) -> dict[str, Any]:
    """RUN_DIR/model.pt's content (weights only)."""
    import torch

    with fetch(run_dir) as local:
        path = local / MODEL_FILE
        if not path.is_file():
            raise InputError(f"{run_dir}: not a run directory (no {MODEL_FILE}); serve takes the --out folders of "
                             f"`forecast train`, `basket train`, `design train` and `design train-scorer`")
        return torch.load(path, map_location="cpu", weights_only=True)


def run_kind(run_dir: str | Path) -> str:
    """'forecast' | 'basket' | 'gan' | 'scorer', recognised from RUN_DIR/model.pt's keys."""
    state = run_state(run_dir)
    path = Path(str(run_dir)) / MODEL_FILE
    if state.get("kind") in ("gan", "scorer"):
        return state["kind"]
    if "forecaster" in state and "pool" in state:
        return "forecast"
    if "vocab" in state and "threshold" in state:
        return "basket"
    raise InputError(f"{path}: not a model file of any raydemand family (keys: {sorted(state)[:8]})")


def group_runs(run_dirs: list[str]) -> dict[str, str]:
    """{kind: run_dir} (local folders made absolute, URIs as given), at most one run per kind."""
    from raydemand.jobs import is_uri

    out: dict[str, str] = {}
    for run_dir in run_dirs:
        kind = run_kind(run_dir)
        if kind in out:
            raise InputError(f"two {kind} runs given ({out[kind]}, {run_dir}); serve one run per family")
        out[kind] = run_dir if is_uri(run_dir) else str(Path(run_dir).resolve())
    return out


def model_version(run_dir: str | Path) -> str:
    """'<run folder name>@<first 12 hex digits of model.pt's SHA-256>': changes whenever the model does."""
    digest = hashlib.sha256()
    with open(Path(run_dir) / MODEL_FILE, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return f"{Path(run_dir).resolve().name}@{digest.hexdigest()[:12]}"
