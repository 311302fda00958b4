"""Similar past products: for each target row, the K most similar rows of a pool of known sales.

A pool row is a candidate when it was released before the target and at least
`min_known_weeks` whole weeks of its 12-week curve lie before the target's release date; only
those weeks are visible, the rest is masked (`visible_weeks`). It is never the target product
itself (in VISUELLE 2.0 a product has one row per store). So products early in a data set still
get neighbours (partly observed ones), and no week at or after the target's release is read.
Similarity is a weighted sum of the share of matching attributes (category, colour, store,
brand, ...), the cosine similarities of caption and image embeddings, and the visible share of
the neighbour's curve. Nothing about the target's own sales is read.

A neighbour's masked weeks are filled in by `complete_curves`: its visible weeks' level times
the launch profile (the mean weekly shape of the training curves, a fitted parameter stored
with the run), so every forecaster built on neighbours sees a whole 12-week curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from raydemand.data.schema import HORIZON
from raydemand.forecast.config import RetrievalConfig

# Columns that are never attributes: keys, dates, free text, file paths, bookkeeping.
NOT_ATTRIBUTES = {"external_code", "release_date", "image_path", "caption", "text", "split", "launched",
                  "first_week"}


def attribute_columns(df: pd.DataFrame, wanted: list[str] | None) -> list[str]:
    """`wanted`, or every non-numeric column plus the store column (`retail`) when present."""
    from raydemand.data.schema import STORE_COLUMN, TARGET_COLUMNS

    if wanted is not None:
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            from raydemand.errors import InputError

            raise InputError(f"retrieval.attributes: column(s) {missing} not in the table ({list(df.columns)})")
        return list(wanted)
    cols = [c for c in df.columns if c not in NOT_ATTRIBUTES and c not in TARGET_COLUMNS
            and not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    if STORE_COLUMN in df.columns and STORE_COLUMN not in cols:
        cols.append(STORE_COLUMN)
    return cols


@dataclass
class Side:
    """What retrieval reads of a set of rows (queries or pool)."""

    codes: np.ndarray  # (N,) product ids
    release: np.ndarray  # (N,) datetime64[D]
    attributes: np.ndarray  # (N, A) uint64 hashes of the attribute values (same value, same hash)
    caption: np.ndarray  # (N, Dc) unit vectors, zeros where missing
    image: np.ndarray  # (N, Di) unit vectors, zeros where missing
    columns: tuple[str, ...] = ()  # the attribute columns hashed into `attributes`, in order

    @classmethod
    def build(cls, df: pd.DataFrame, attrs: list[str], caption: np.ndarray, image: np.ndarray) -> "Side":
        def unit(v):
            v = np.asarray(v, np.float32)
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

        values = np.zeros((len(df), len(attrs)), np.uint64)
        for i, col in enumerate(attrs):
            values[:, i] = pd.util.hash_array(df[col].astype(str).to_numpy(dtype=object))
        return cls(df["external_code"].astype(str).to_numpy(), df["release_date"].to_numpy().astype("datetime64[D]"),
                   values, unit(caption), unit(image), tuple(attrs))


@dataclass
class Neighbours:
    index: np.ndarray  # (N, K) pool rows, -1 where fewer than K candidates exist
    weight: np.ndarray  # (N, K) float32 softmax weights over the real neighbours; 0 for -1
    similarity: np.ndarray  # (N, K) float32
    visible: np.ndarray  # (N, K) int64 weeks of each neighbour's curve observed before the target's release


def visible_weeks(query_release: np.ndarray, pool_release: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """(Q, P) whole weeks of each pool row's curve that end on or before each query's release day
    (week w of a row covers days [7w, 7w + 7) after its release)."""
    days = (query_release[:, None] - pool_release[None, :]).astype(np.int64)  # (Q, P)
    return np.clip(days // 7, 0, horizon)


def retrieve(queries: Side, pool: Side, cfg: RetrievalConfig, chunk: int = 512,
             weights: tuple[float, float, float] | None = None) -> Neighbours:
    """Top-`cfg.k` pool rows per query under the visible-before-release rule.

    `weights` (attribute, caption, image) overrides the config's, e.g. (0, 0, 1) for image-only kNN.
    """
    w_attr, w_cap, w_img = weights or (cfg.attribute_weight, cfg.caption_weight, cfg.image_weight)
    n, k = len(queries.codes), cfg.k
    index = np.full((n, k), -1, np.int64)
    sim_out = np.zeros((n, k), np.float32)
    vis_out = np.zeros((n, k), np.int64)
    n_attr = max(pool.attributes.shape[1], 1)
    for start in range(0, n, chunk):
        q = slice(start, min(start + chunk, n))
        visible = visible_weeks(queries.release[q], pool.release)  # (Q, P)
        sim = (cfg.coverage_weight / HORIZON) * visible.astype(np.float32)  # (Q, P)
        if w_attr:
            for a in range(pool.attributes.shape[1]):
                sim += (w_attr / n_attr) * (queries.attributes[q, a, None] == pool.attributes[None, :, a])
        if w_cap:
            sim += w_cap * (queries.caption[q] @ pool.caption.T)
        if w_img:
            sim += w_img * (queries.image[q] @ pool.image.T)
        allowed = (visible >= cfg.min_known_weeks) & (pool.codes[None, :] != queries.codes[q, None])
        sim = np.where(allowed, sim, -np.inf)
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # (Q, k)
        top_sim = np.take_along_axis(sim, top, axis=1)
        real = np.isfinite(top_sim)
        index[q] = np.where(real, top, -1)
        sim_out[q] = np.where(real, top_sim, 0.0)
        vis_out[q] = np.where(real, np.take_along_axis(visible, top, axis=1), 0)
    logits = np.where(index >= 0, cfg.sharpness * sim_out, -np.inf)
    with np.errstate(invalid="ignore"):
        weight = np.exp(logits - logits.max(axis=1, keepdims=True))
        weight = np.nan_to_num(weight / weight.sum(axis=1, keepdims=True))
    return Neighbours(index, weight.astype(np.float32), sim_out, vis_out)


def launch_profile(curves: np.ndarray) -> np.ndarray:
    """(H,) the mean weekly shape of `curves` (N, H), summing to 1 (flat where they sold nothing)."""
    mean = np.asarray(curves, np.float64).mean(0)
    total = mean.sum()
    return (mean / total if total > 0 else np.full(mean.shape, 1.0 / len(mean))).astype(np.float32)


def gather_curves(neighbours: Neighbours, pool_curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(curves (N, K, H), observed (N, K, H) bool): each neighbour's visible weeks, zeros elsewhere
    and where there is no neighbour. Masked weeks are never read from `pool_curves`."""
    h = pool_curves.shape[1]
    observed = np.arange(h)[None, None, :] < neighbours.visible[..., None]  # (N, K, H)
    observed &= (neighbours.index >= 0)[..., None]
    curves = pool_curves[np.maximum(neighbours.index, 0)]  # (N, K, H)
    return np.where(observed, curves, 0.0).astype(np.float32), observed


def complete_curves(curves: np.ndarray, observed: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """(N, K, H) curves whose masked weeks are the visible weeks' level times `profile` (H,):
    level = units over the visible weeks / the profile's share of those weeks."""
    seen_share = (observed * profile).sum(-1, keepdims=True)  # (N, K, 1)
    level = curves.sum(-1, keepdims=True) / np.maximum(seen_share, 1e-6)  # (N, K, 1) 12-week units
    return np.where(observed, curves, level * profile).astype(np.float32)


def neighbour_curves(neighbours: Neighbours, pool_curves: np.ndarray, profile: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(completed curves (N, K, H), observed (N, K, H) bool) of the retrieved neighbours."""
    curves, observed = gather_curves(neighbours, pool_curves)
    return complete_curves(curves, observed, profile), observed
