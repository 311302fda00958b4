"""Which family a run directory belongs to (as `raydemand.runs` reads it), and where its files are.

A run directory may be a local folder or a storage URI (s3://, gs://, file://, ... anything pyarrow's
filesystems open, see `raydemand.jobs`): a URI is copied into a temporary local folder by whoever
loads it (the application builder to recognise it, each replica to load it, on whatever node it
runs), and the copy is removed once loaded.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from raydemand.errors import InputError
from raydemand.runs import FAMILIES, ModelFile, model_version, needs, read_model

__all__ = ["KINDS", "NEEDS", "fetch", "group_runs", "model_version", "read_run", "run_kind"]

KINDS = tuple(FAMILIES)
# What a 503 tells the caller to pass to `raydemand serve`.
NEEDS = {family: needs(family) for family in FAMILIES}


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


def read_run(run_dir: str | Path) -> ModelFile:
    """RUN_DIR's model file (a finished run's; a URI is fetched first)."""
    with fetch(run_dir) as local:
        return read_model(local)


def run_kind(run_dir: str | Path) -> str:
    """'forecast' | 'basket' | 'gan' | 'scorer', as RUN_DIR/model.pt records it."""
    return read_run(run_dir).family


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
