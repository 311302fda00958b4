"""Baselines on the same rows, pool and retrieval rule as CrossAttnRNN.

- `zero` / `last_season`: naive forecasts (nothing sells; the mean curve of the same category
  released about a year earlier, whose 12 weeks were over by the target's release).
- `median`: the element-wise median training curve.
- `knn_attributes`, `knn_image`, `knn_caption`: the mean curve of the K most similar products
  by attributes only, image embedding only, caption embedding only.
- `retrieval` / `retrieval_median`: the similarity-weighted per-week mean / median of the
  neighbours CrossAttnRNN reads (its residual base with `model.base: mean` / `median`).
- `des`: Double Exponential Smoothing (Holt, statsmodels) fitted on the neighbours' mean curve.
Every neighbour is read under the same rule as the model's: only the weeks of its curve observed
before the target's release, the rest filled in from their level and the pool's launch profile.
"""

from __future__ import annotations

import warnings

import numpy as np

from raydemand.data.schema import HORIZON
from raydemand.forecast.base import Forecaster, register_forecaster
from raydemand.forecast.data import Rows, neighbours_of
from raydemand.forecast.retrieval import visible_weeks


@register_forecaster
class Zero(Forecaster):
    name = "zero"

    def predict(self, rows, pool):
        return np.zeros((len(rows), 12), np.float32)


@register_forecaster
class Median(Forecaster):
    name = "median"

    def fit(self, train, val, pool, run_dir=None, callbacks=None):
        self.curve = np.median(train.target, axis=0).astype(np.float32)  # (12,)
        return {}

    def predict(self, rows, pool):
        return np.tile(self.curve, (len(rows), 1))

    def get_state(self):
        return {"curve": self.curve.tolist()}

    def set_state(self, state):
        self.curve = np.asarray(state["curve"], np.float32)


@register_forecaster
class LastSeason(Median):
    """The mean curve of known products sharing the first attribute (category) released 365 +- 45 days
    earlier; the median training curve where there are none (e.g. a data set shorter than a year)."""

    name = "last_season"

    def predict(self, rows: Rows, pool: Rows):
        out = np.tile(self.curve, (len(rows), 1))
        same = rows.side.attributes[:, :1] == pool.side.attributes[None, :, 0] if rows.side.attributes.shape[1] \
            else np.ones((len(rows), len(pool)), bool)
        age = (rows.side.release[:, None] - pool.side.release[None, :]).astype(np.int64)  # days
        whole = visible_weeks(rows.side.release, pool.side.release) == HORIZON  # (N, P) all 12 weeks over
        pick = same & (np.abs(age - 365) <= 45) & whole
        counts = pick.sum(1)
        has = counts > 0
        out[has] = (pick[has].astype(np.float32) @ pool.target) / counts[has, None]
        return out


class _KNN(Forecaster):
    weights: tuple[float, float, float]

    def predict(self, rows, pool):
        nb, curves, _ = neighbours_of(rows, pool, self.cfg.retrieval, weights=self.weights)  # curves (N, K, H)
        real = (nb.index >= 0).sum(1, keepdims=True)
        return curves.sum(1) / np.maximum(real, 1)


@register_forecaster
class KNNAttributes(_KNN):
    name, weights = "knn_attributes", (1.0, 0.0, 0.0)


@register_forecaster
class KNNImage(_KNN):
    name, weights = "knn_image", (0.0, 0.0, 1.0)


@register_forecaster
class KNNCaption(_KNN):
    name, weights = "knn_caption", (0.0, 1.0, 0.0)


@register_forecaster
class Retrieval(Forecaster):
    name = "retrieval"

    def predict(self, rows, pool):
        nb, curves, _ = neighbours_of(rows, pool, self.cfg.retrieval)
        return (nb.weight[..., None] * curves).sum(1)


@register_forecaster
class RetrievalMedian(Forecaster):
    """The similarity-weighted per-week median of the neighbours (CrossAttnRNN's default base curve)."""

    name = "retrieval_median"

    def predict(self, rows, pool):
        import torch

        from raydemand.forecast.model import weighted_median

        nb, curves, _ = neighbours_of(rows, pool, self.cfg.retrieval)
        return weighted_median(torch.as_tensor(curves), torch.as_tensor(nb.weight)).numpy()


@register_forecaster
class DES(Forecaster):
    """Holt's linear trend on the neighbours' weighted mean curve, forecast 12 weeks ahead."""

    name = "des"

    def predict(self, rows, pool):
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        history = Retrieval(self.cfg).predict(rows, pool)  # (N, H)
        out = np.zeros_like(history)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, series in enumerate(history.astype(np.float64)):
                if np.ptp(series) < 1e-9:
                    out[i] = series[-1]
                    continue
                fitted = ExponentialSmoothing(series, trend="add", initialization_method="estimated").fit()
                out[i] = fitted.forecast(len(series))
        return np.clip(out, 0, None).astype(np.float32)
