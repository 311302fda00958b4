"""Baselines on the same rows, pool and retrieval rule as CrossAttnRNN.

- `zero` / `last_season`: naive forecasts (nothing sells; the mean curve of the same category
  released about a year earlier, whose 12 weeks were over by the target's release).
- `median`: the element-wise median training curve.
- `attribute_median`: the per-week median training curve of the products sharing the row's
  attribute values (category and colour by default), backing off to fewer attributes and then to
  `median` where a group has too few training rows.
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
from raydemand.errors import InputError
from raydemand.forecast.base import Forecaster, register_forecaster
from raydemand.forecast.data import Rows, neighbours_of
from raydemand.forecast.retrieval import visible_weeks


@register_forecaster
class Zero(Forecaster):
    name = "zero"
    is_baseline = True

    def predict(self, rows, pool):
        return np.zeros((len(rows), 12), np.float32)


@register_forecaster
class Median(Forecaster):
    name = "median"
    is_baseline = True

    def fit(self, train, val, pool, run_dir=None, callbacks=None):
        self.curve = np.median(train.target, axis=0).astype(np.float32)  # (12,)
        return {}

    def predict(self, rows, pool):
        return np.tile(self.curve, (len(rows), 1))

    def get_state(self):
        return {"curve": self.curve.tolist()}

    def set_state(self, state):
        self.curve = np.asarray(state["curve"], np.float32)


def attribute_positions(columns: tuple[str, ...], wanted: list[str] | None) -> list[int]:
    """Positions among the run's attribute `columns` of the columns `attribute_median` groups by:
    `wanted`, else category and color where the run has them, else its first two columns (Complete
    Journey: department and brand, a coarse product type and a second attribute crossing it, as
    category and colour do; its finer columns leave most groups below `min_count`)."""
    if wanted is None:
        wanted = [c for c in ("category", "color") if c in columns] or list(columns[:2])
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InputError(f"baselines.attribute_columns: {missing} not among the run's attribute columns "
                         f"{list(columns)} (retrieval.attributes)")
    return [columns.index(c) for c in wanted]


def group_keys(hashes: np.ndarray) -> np.ndarray:
    """(N,) uint64 key of each row's combination of attribute values, from their (N, L) hashes (L >= 1)."""
    key = hashes[:, 0].copy()
    for column in hashes[:, 1:].T:
        key = key * np.uint64(0x100000001B3) ^ column  # FNV-style mixing; uint64 wraps around
    return key


@register_forecaster
class AttributeMedian(Median):
    """Per week, the median training curve of the rows that share the row's values of
    `baselines.attribute_columns`; where that group has fewer than `baselines.min_count` training
    products, of those sharing the first columns only (the last column dropped, then the next), and
    the median training curve where none has enough."""

    name = "attribute_median"

    def fit(self, train, val, pool, run_dir=None, callbacks=None):
        cfg = self.cfg.baselines
        super().fit(train, val, pool)
        self.columns = [train.side.columns[p] for p in attribute_positions(train.side.columns, cfg.attribute_columns)]
        self.positions = [train.side.columns.index(c) for c in self.columns]
        self.levels = []  # (sorted group keys (G,), median curves (G, 12)), from all columns down to one
        for n in range(len(self.positions), 0, -1):
            keys = group_keys(train.side.attributes[:, self.positions[:n]])
            order = np.argsort(keys, kind="stable")
            values, start, count = np.unique(keys[order], return_index=True, return_counts=True)
            # products, not rows: in a product x store table one product's stores would fill a group
            pairs = np.unique(np.stack([keys, train.group.astype(np.uint64)], axis=1), axis=0)  # (P, 2) key, product
            enough = np.unique(pairs[:, 0], return_counts=True)[1] >= cfg.min_count
            curves = [np.median(train.target[order[s:s + c]], axis=0) for s, c in zip(start[enough], count[enough])]
            self.levels.append((values[enough], np.asarray(curves, np.float32).reshape(-1, HORIZON)))
        return {}

    def predict(self, rows, pool):
        named = rows.side.columns
        if named and [named[p] if p < len(named) else None for p in self.positions] != self.columns:
            raise InputError(f"attribute_median groups by {self.columns}; the rows' attribute columns are "
                             f"{list(rows.side.columns)}")
        out = np.tile(self.curve, (len(rows), 1))  # (N, 12)
        done = np.zeros(len(rows), bool)
        for n, (values, curves) in zip(range(len(self.positions), 0, -1), self.levels):
            keys = group_keys(rows.side.attributes[:, self.positions[:n]])
            pos = np.minimum(np.searchsorted(values, keys), max(len(values) - 1, 0))
            found = (values[pos] == keys) if len(values) else np.zeros(len(rows), bool)
            take = found & ~done
            out[take] = curves[pos[take]]
            done |= found
        return out

    def get_state(self):
        import torch

        levels = [{"keys": torch.as_tensor(values.view(np.int64)), "curves": torch.as_tensor(curves)}
                  for values, curves in self.levels]
        return {**super().get_state(), "columns": list(self.columns), "positions": list(self.positions),
                "levels": levels}

    def set_state(self, state):
        super().set_state(state)
        self.columns, self.positions = list(state["columns"]), [int(p) for p in state["positions"]]
        self.levels = [(level["keys"].numpy().view(np.uint64), level["curves"].numpy()) for level in state["levels"]]


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
    is_baseline = True
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
    is_baseline = True

    def predict(self, rows, pool):
        nb, curves, _ = neighbours_of(rows, pool, self.cfg.retrieval)
        return (nb.weight[..., None] * curves).sum(1)


@register_forecaster
class RetrievalMedian(Forecaster):
    """The similarity-weighted per-week median of the neighbours (CrossAttnRNN's default base curve)."""

    name = "retrieval_median"
    is_baseline = True

    def predict(self, rows, pool):
        import torch

        from raydemand.forecast.model import weighted_median

        nb, curves, _ = neighbours_of(rows, pool, self.cfg.retrieval)
        return weighted_median(torch.as_tensor(curves), torch.as_tensor(nb.weight)).numpy()


@register_forecaster
class DES(Forecaster):
    """Holt's linear trend on the neighbours' weighted mean curve, forecast 12 weeks ahead."""

    name = "des"
    is_baseline = True

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
