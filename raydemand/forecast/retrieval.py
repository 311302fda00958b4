"""Similar past products: for each target row, the K most similar rows of a pool of known sales.

A pool row is a candidate only when its whole curve was known at the target's release:
`release(candidate) + known_after_weeks <= release(target)`, and never the target product itself
(in VISUELLE 2.0 a product has one row per store). Similarity is a weighted sum of the share of
matching attributes (category, colour, store, brand, ...) and the cosine similarities of caption
and image embeddings, where both rows have them. Nothing about the target's own sales is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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

    @classmethod
    def build(cls, df: pd.DataFrame, attrs: list[str], caption: np.ndarray, image: np.ndarray) -> "Side":
        def unit(v):
            v = np.asarray(v, np.float32)
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

        values = np.zeros((len(df), len(attrs)), np.uint64)
        for i, col in enumerate(attrs):
            values[:, i] = pd.util.hash_array(df[col].astype(str).to_numpy(dtype=object))
        return cls(df["external_code"].astype(str).to_numpy(), df["release_date"].to_numpy().astype("datetime64[D]"),
                   values, unit(caption), unit(image))


@dataclass
class Neighbours:
    index: np.ndarray  # (N, K) pool rows, -1 where fewer than K candidates exist
    weight: np.ndarray  # (N, K) float32 softmax weights over the real neighbours; 0 for -1
    similarity: np.ndarray  # (N, K) float32


def retrieve(queries: Side, pool: Side, cfg: RetrievalConfig, chunk: int = 512,
             weights: tuple[float, float, float] | None = None) -> Neighbours:
    """Top-`cfg.k` pool rows per query under the known-before-release rule.

    `weights` (attribute, caption, image) overrides the config's, e.g. (0, 0, 1) for image-only kNN.
    """
    w_attr, w_cap, w_img = weights or (cfg.attribute_weight, cfg.caption_weight, cfg.image_weight)
    n, k = len(queries.codes), cfg.k
    index = np.full((n, k), -1, np.int64)
    sim_out = np.zeros((n, k), np.float32)
    lag = np.timedelta64(7 * cfg.known_after_weeks, "D")
    known_at = pool.release + lag  # (P,)
    n_attr = max(pool.attributes.shape[1], 1)
    for start in range(0, n, chunk):
        q = slice(start, min(start + chunk, n))
        sim = np.zeros((q.stop - q.start, len(pool.codes)), np.float32)  # (Q, P)
        if w_attr:
            for a in range(pool.attributes.shape[1]):
                sim += (w_attr / n_attr) * (queries.attributes[q, a, None] == pool.attributes[None, :, a])
        if w_cap:
            sim += w_cap * (queries.caption[q] @ pool.caption.T)
        if w_img:
            sim += w_img * (queries.image[q] @ pool.image.T)
        allowed = (known_at[None, :] <= queries.release[q, None]) & (pool.codes[None, :] != queries.codes[q, None])
        sim = np.where(allowed, sim, -np.inf)
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # (Q, k)
        top_sim = np.take_along_axis(sim, top, axis=1)
        real = np.isfinite(top_sim)
        index[q] = np.where(real, top, -1)
        sim_out[q] = np.where(real, top_sim, 0.0)
    logits = np.where(index >= 0, cfg.sharpness * sim_out, -np.inf)
    with np.errstate(invalid="ignore"):
        weight = np.exp(logits - logits.max(axis=1, keepdims=True))
        weight = np.nan_to_num(weight / weight.sum(axis=1, keepdims=True))
    return Neighbours(index, weight.astype(np.float32), sim_out)


def gather_curves(neighbours: Neighbours, pool_curves: np.ndarray) -> np.ndarray:
    """(N, K, H) neighbour curves, zeros where there is no neighbour."""
    curves = pool_curves[np.maximum(neighbours.index, 0)]  # (N, K, H)
    return np.where((neighbours.index >= 0)[..., None], curves, 0.0).astype(np.float32)
