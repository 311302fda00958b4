"""The forecaster interface every model and baseline implements, and the registry that builds them.

A forecaster fits on training rows (validation rows for early stopping / selection), predicts
normalised 12-week curves for any rows, and exports its state as plain tensors and values, so
one `model.pt` (read with `torch.load(..., weights_only=True)`) holds any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from raydemand.errors import InputError
from raydemand.forecast.config import ForecastConfig
from raydemand.forecast.data import Rows


class Forecaster:
    name: ClassVar[str]
    # A closed-form reference forecast (raydemand.forecast.baselines): `forecast train` serves it as
    # asked, where it guards any other forecaster against the best baseline (raydemand.forecast.guard).
    is_baseline: ClassVar[bool] = False
    # False: written by `forecast train` itself (the guard's blend), loadable but never chosen by name.
    listed: ClassVar[bool] = True

    def __init__(self, cfg: ForecastConfig):
        self.cfg = cfg

    def fit(self, train: Rows, val: Rows, pool: Rows, run_dir: Path | None = None,
            callbacks: list | None = None) -> dict[str, Any]:
        """Fit on `train`, select on `val`; `pool` holds the known sales retrieval may read. Returns
        what the run reports (history, chosen epoch); baselines return {}. `callbacks` go to Ray
        Train (e.g. Tune's TuneReportCallback); closed-form baselines have no epochs to report."""
        return {}

    def predict(self, rows: Rows, pool: Rows) -> np.ndarray:
        """(N, 12) normalised forecasts, >= 0."""
        raise NotImplementedError

    def explain(self, rows: Rows, pool: Rows) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """(forecasts as `predict`, one dict of attention weights per row); a forecaster without
        attention gives empty dicts."""
        return self.predict(rows, pool), [{} for _ in range(len(rows))]

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        del state


FORECASTERS: dict[str, Callable[[ForecastConfig], Forecaster]] = {}


def register_forecaster(cls):
    FORECASTERS[cls.name] = cls
    return cls


def list_forecasters() -> list[str]:
    _load()
    return sorted(name for name, cls in FORECASTERS.items() if getattr(cls, "listed", True))


def register_from(name: str, module: str | None) -> None:
    """Import `module`, where forecaster `name` registers itself, when `name` is unknown in this
    process: a run's model.pt records the module, so a forecaster added outside the package loads in
    any process (a Serve replica, a Tune trial) as it does where it was trained."""
    _load()
    if name not in FORECASTERS and module:
        import importlib

        importlib.import_module(module)


def create_forecaster(name: str, cfg: ForecastConfig) -> Forecaster:
    _load()
    if name not in FORECASTERS:
        raise InputError(f"unknown forecaster {name!r}; registered: {', '.join(sorted(FORECASTERS))}")
    return FORECASTERS[name](cfg)


def _load() -> None:
    from raydemand.forecast import baselines, guard, train  # noqa: F401  (they register themselves)
