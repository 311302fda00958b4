"""Generators that write data sets in exactly the real layouts, deterministic from a seed.

`scale` is the number of products (visuelle2) or users (instacart). Generators register with
`@register_generator(name)` and write into an empty folder; `synthesize` makes that folder appear
at `out` only when the data set is complete.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from raydemand.errors import InputError
from raydemand.io import atomic_dir

# layout -> (module that registers it, default scale)
_MODULES = {"visuelle2": ("raydemand.data.synth.visuelle2", 500), "instacart": ("raydemand.data.synth.instacart", 1000)}
GENERATORS: dict[str, Callable[[Path, int, int], dict]] = {}


def register_generator(name: str):
    def wrap(fn: Callable[[Path, int, int], dict]):
        GENERATORS[name] = fn
        return fn

    return wrap


def layouts() -> list[str]:
    return sorted(_MODULES)


def synthesize(layout: str, out: str | Path, seed: int = 0, scale: int | None = None, overwrite: bool = False) -> dict:
    """Write a `layout` data set to `out`; returns a summary (row counts, files)."""
    if layout not in _MODULES:
        raise InputError(f"unknown layout {layout!r}; choose one of {layouts()}")
    module, default_scale = _MODULES[layout]
    importlib.import_module(module)
    scale = default_scale if scale is None else scale
    if scale < 1:
        raise InputError(f"--scale must be >= 1, got {scale}")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        summary = GENERATORS[layout](tmp, seed, scale)
    return {"layout": layout, "out": str(out), "seed": seed, "scale": scale, **summary}
