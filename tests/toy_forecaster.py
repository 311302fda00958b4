"""A forecaster added in one file, as a user would add one: registering it is the only step. Imported
by tests/test_cli.py inside its tests (not at collection, so other tests' lists of forecasters stay as
shipped); Tune's trials import it in their Ray workers by module name (this folder is on their path)."""

from __future__ import annotations

import numpy as np

from raydemand.forecast.base import Forecaster, register_forecaster

NAME = "toy_mean"


@register_forecaster
class ToyMean(Forecaster):
    """The mean training curve for every product."""

    name = NAME

    def fit(self, train, val, pool, run_dir=None, callbacks=None):
        self.curve = train.target.mean(axis=0).astype(np.float32)  # (12,)
        return {}

    def predict(self, rows, pool):
        return np.tile(self.curve, (len(rows), 1))  # (N, 12)

    def get_state(self):
        return {"curve": self.curve.tolist()}

    def set_state(self, state):
        self.curve = np.asarray(state["curve"], np.float32)
