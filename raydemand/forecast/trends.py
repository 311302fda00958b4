"""Exogenous weekly series (Google Trends) before a product's release, as model inputs.

GTM-Transformer (Skenderi et al. 2021) gives each VISUELLE product the 52 weeks of Google-Trends
popularity of its category, colour and fabric before its release. Here a product row gets, for
each attribute column of `data.trend_attributes`, the series named by its value:

- week w (0..51) of the window covers [release - 7*(52-w), release - 7*(51-w)) days, so week 51 is
  the 7 days just before the release; a series point counts for the week its date falls in. Only
  dates strictly before the release are read (a point dated on the release day is not).
- weeks the series does not cover (before its first date, after its last, empty cells) are masked,
  as is the whole series where the row has no such column or its value names no series.
- values are divided by 100, the Google-Trends scale: a fixed factor, so a feature depends on the
  window's own values only. The model adds the window's min-max shape (GTM's per-series scaling)
  itself, from the observed weeks (`raydemand.forecast.model.TrendEncoder`).

A run keeps the series it was trained with (`TrendSeries.to_state` in model.pt), so new products
get their windows at predict time without the training folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TREND_WEEKS = 52  # weeks before release, as GTM-Transformer
TREND_SCALE = 100.0  # Google Trends values run 0..100


@dataclass(frozen=True)
class TrendSeries:
    dates: np.ndarray  # (T,) datetime64[D], increasing
    names: list[str]  # (M,) series names as in the file
    values: np.ndarray  # (T, M) float32 as stored (0..100), NaN where a week has no value

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> "TrendSeries":
        """From a validated trends table (`raydemand.data.schema.validate_trends`)."""
        names = [str(c) for c in df.columns if c != "date"]
        return cls(df["date"].to_numpy().astype("datetime64[D]"), names, df[names].to_numpy(np.float32))

    def column(self, labels: np.ndarray) -> np.ndarray:
        """(N,) int64 index of the series each label names (stripped, any case), -1 for none."""
        index = {n.strip().casefold(): i for i, n in enumerate(self.names)}
        codes, values = pd.factorize(pd.Series(labels, dtype=object))  # -1 for None; a few distinct values
        found = np.array([index.get(str(v).strip().casefold(), -1) for v in values] + [-1], dtype=np.int64)
        return found[codes]  # code -1 picks the trailing -1

    def to_state(self) -> dict[str, Any]:
        """Plain tensors and strings (model.pt loads with weights_only=True)."""
        import torch

        return {"dates": torch.as_tensor(self.dates.astype(np.int64)), "names": list(self.names),
                "values": torch.as_tensor(np.array(self.values, np.float32))}  # a copy: frames hand out read-only views

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TrendSeries":
        return cls(state["dates"].numpy().astype("datetime64[D]"), [str(n) for n in state["names"]],
                   state["values"].numpy().astype(np.float32))


def load_trend_series(source: str | Path) -> TrendSeries | None:
    """The series a TABLE ships (VISUELLE folders), or None."""
    from raydemand.data.sources import load_trends

    df = load_trends(source)
    return None if df is None else TrendSeries.from_frame(df)


def trend_windows(series: TrendSeries, release: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values (N, S, W) float32 / 100, observed (N, S, W) bool) of rows released on `release` (N,)
    whose attribute values are `labels` (N, S) (None or a name no series has: masked); W = 52."""
    n, s = labels.shape
    release = np.asarray(release).astype("datetime64[D]")
    lag = (TREND_WEEKS - 1 - np.arange(TREND_WEEKS)) * 7  # (W,) days from a week's end to the release
    ends = release[:, None] - lag[None, :].astype("timedelta64[D]")  # (N, W) exclusive end of each week
    point = np.searchsorted(series.dates, ends, side="left") - 1  # (N, W) last series date before the end
    inside = (point >= 0) & (series.dates[point.clip(0)] >= ends - np.timedelta64(7, "D"))  # (N, W)
    values = np.zeros((n, s, TREND_WEEKS), np.float32)
    observed = np.zeros((n, s, TREND_WEEKS), bool)
    for a in range(s):
        col = series.column(labels[:, a])  # (N,)
        v = series.values[point.clip(0), col.clip(0)[:, None]]  # (N, W)
        ok = inside & (col >= 0)[:, None] & ~np.isnan(v)
        values[:, a] = np.where(ok, v / TREND_SCALE, 0.0)
        observed[:, a] = ok
    return values, observed


def row_trends(df: pd.DataFrame, series: TrendSeries, attributes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`trend_windows` of a validated product table's rows; a missing column masks its series."""
    empty = np.full(len(df), None, dtype=object)
    labels = np.stack([df[a].astype(object).where(df[a].notna(), None).to_numpy() if a in df else empty
                       for a in attributes], axis=1) if attributes else np.zeros((len(df), 0), object)
    return trend_windows(series, df["release_date"].to_numpy(), labels)
