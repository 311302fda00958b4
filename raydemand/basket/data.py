"""From an orders table to model inputs: user split, catalogue (vocabulary), order windows, tensors.

Users are split by a hash of (user_id, split_seed): test users are held out entirely (never seen
in training), validation users are carved from the rest. The catalogue comes from training and
validation users only. Windows (the last orders before each target order) are built by the
foundation's Ray Data stage (`raydemand.data.pipelines.windows`) and streamed; `encode` turns a
pyarrow batch of windows into fixed-size numpy arrays, vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from raydemand.basket.config import DataConfig
from raydemand.basket.features import user_product_features

CONTEXT_DIM = 6  # days since prior order (scaled, missing flag), day of week (sin, cos), hour (sin, cos)
ALL_HISTORY = 10_000  # "all orders" for the windows stage when feature_orders is None


@dataclass
class Vocab:
    """Product id <-> index, most popular first; popularity = share of training orders holding it."""

    products: np.ndarray  # (P,) ids (int64 or object/str)
    popularity: np.ndarray  # (P,) float

    def __post_init__(self):
        self._index = pd.Index(self.products)

    def __len__(self) -> int:
        return len(self.products)

    def index(self, ids) -> np.ndarray:
        """Indices of `ids`; -1 for products outside the catalogue."""
        ids = np.asarray(ids)
        if ids.dtype.kind != self.products.dtype.kind and len(ids):
            ids = ids.astype(self.products.dtype) if self.products.dtype.kind == "O" else ids
        return self._index.get_indexer(ids)

    def state(self) -> dict:
        """Plain lists: loadable with torch.load(weights_only=True)."""
        return {"products": self.products.tolist(), "popularity": self.popularity.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Vocab":
        products = np.asarray(state["products"])
        if products.dtype.kind == "U":
            products = products.astype(object)
        return cls(products, np.asarray(state["popularity"], dtype=np.float64))


def user_split(user_ids, cfg: DataConfig) -> np.ndarray:
    """'train' | 'val' | 'test' per user id, from a hash of (id, split_seed): stable across runs."""
    keys = pd.Series(np.asarray(user_ids)).astype(str) + f":{cfg.split_seed}"
    u = pd.util.hash_pandas_object(keys, index=False).to_numpy() / 2.0**64  # uniform in [0, 1)
    val_edge = cfg.test_users + cfg.val_users * (1 - cfg.test_users)
    return np.where(u < cfg.test_users, "test", np.where(u < val_edge, "val", "train"))


def build_vocab(lines: pd.DataFrame, cfg: DataConfig) -> Vocab:
    """The catalogue of the given (training) lines: products by number of orders holding them."""
    counts = lines["product_id"].value_counts(sort=False)
    counts = counts.sort_values(ascending=False, kind="stable")
    if cfg.top_products is not None:
        counts = counts.iloc[:cfg.top_products]
    products = counts.index.to_numpy()
    if products.dtype.kind not in "iu":
        products = products.astype(object)
    return Vocab(products, counts.to_numpy() / max(lines["order_id"].nunique(), 1))


def restrict(lines: pd.DataFrame, vocab: Vocab, cfg: DataConfig) -> pd.DataFrame:
    """With `top_products`: only catalogue lines; orders left empty disappear and the rest are
    renumbered 1..n per user. Then users with fewer than `min_orders` orders are dropped."""
    if cfg.top_products is not None:
        lines = lines[vocab.index(lines["product_id"].to_numpy()) >= 0]
        number = lines.groupby("user_id", sort=False)["order_number"].rank(method="dense").astype(np.int64)
        lines = lines.assign(order_number=number.to_numpy())
    n_orders = lines.groupby("user_id", sort=False)["order_number"].transform("max")
    return lines[n_orders.to_numpy() >= cfg.min_orders].reset_index(drop=True)


def history_orders(cfg: DataConfig) -> int:
    """Orders of history each window carries: enough for the features and for the sequence model."""
    return max(cfg.n_orders, cfg.feature_orders or ALL_HISTORY)


def write_lines(lines: pd.DataFrame, path: Path) -> Path:
    """Lines as one Parquet file: the plain table the windows stage streams from."""
    from raydemand.data.pipelines.windows import LINE_COLUMNS

    path.parent.mkdir(parents=True, exist_ok=True)
    lines[[c for c in LINE_COLUMNS if c in lines.columns]].to_parquet(path, index=False)
    return path


def windows_dataset(lines_file: Path, cfg: DataConfig, targets: str):
    """The foundation's Ray Data windows stage over a lines file (lazy Ray Dataset)."""
    from raydemand.data.pipelines import windows

    wcfg = windows.WindowsConfig(n_orders=history_orders(cfg), targets=targets, min_history=1)
    return windows.windows_dataset(lines_file, wcfg)


def iter_windows(lines_file: Path, cfg: DataConfig, targets: str, batch_size: int = 1024) -> Iterator[Any]:
    """pyarrow batches of windows, streamed out of the Ray Data stage."""
    ds = windows_dataset(lines_file, cfg, targets)
    yield from ds.iter_batches(batch_size=batch_size, batch_format="pyarrow")


# ---- windows -> arrays ------------------------------------------------------------------------


def _context(batch, n: int) -> np.ndarray:
    """(B, 6) target-order context; zeros with a missing flag where the table lacks it."""
    out = np.zeros((n, CONTEXT_DIM), np.float32)
    out[:, 1] = 1.0
    names = batch.column_names
    if "days_since_prior_order" in names:
        days = batch.column("days_since_prior_order").to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(days)
        out[ok, 0] = np.minimum(days[ok], 60.0) / 30.0
        out[ok, 1] = 0.0
    for col, period, at in (("order_dow", 7.0, 2), ("order_hour_of_day", 24.0, 4)):
        if col in names:
            v = batch.column(col).to_numpy(zero_copy_only=False).astype(np.float64)
            ok = np.isfinite(v)
            out[ok, at] = np.sin(2 * np.pi * v[ok] / period)
            out[ok, at + 1] = np.cos(2 * np.pi * v[ok] / period)
    return out


def encode(batch, vocab: Vocab, cfg: DataConfig, decay: float) -> dict[str, np.ndarray]:
    """A pyarrow batch of windows -> arrays.

    orders (B, N, L) int64: catalogue index + 1 of the products of the last N orders (0: padding;
    empty leading orders for short histories), order_mask (B, N) bool, feats (B, P, 5) float32,
    context (B, 6) float32, target (B, P) bool, missed (B,) target products outside the catalogue,
    n_history (B,), unknown (products outside the catalogue in the history, total).
    """
    import pyarrow.compute as pc

    hist = batch.column("history").combine_chunks()
    b, n_slots, p = len(hist), cfg.n_orders, len(vocab)
    n_hist = pc.list_value_length(hist).to_numpy(zero_copy_only=False).astype(np.int64)  # (B,)
    orders = pc.list_flatten(hist)  # one list per history order, windows in turn
    order_row = pc.list_parent_indices(hist).to_numpy()  # (O,)
    starts = np.cumsum(n_hist) - n_hist
    order_age = n_hist[order_row] - 1 - (np.arange(len(order_row)) - starts[order_row])  # 0 = latest
    items = pc.list_flatten(orders).to_numpy(zero_copy_only=False)
    item_order = pc.list_parent_indices(orders).to_numpy()  # (T,)
    order_len = pc.list_value_length(orders).to_numpy(zero_copy_only=False)
    item_pos = np.arange(len(items)) - (np.cumsum(order_len) - order_len)[item_order]  # position in its order
    idx = vocab.index(items)
    known = idx >= 0
    row, age = order_row[item_order][known], order_age[item_order][known]
    pidx, pos = idx[known], item_pos[known]

    feats = user_product_features(row, pidx, age, n_hist, p, decay)  # (B, P, 5)

    recent = (age < n_slots) & (pos < cfg.max_basket)
    width = int(pos[recent].max()) + 1 if recent.any() else 1
    seq = np.zeros((b, n_slots, width), np.int64)  # (B, N, L), newest order in the last slot
    seq[row[recent], n_slots - 1 - age[recent], pos[recent]] = pidx[recent] + 1
    order_mask = (n_slots - 1 - np.arange(n_slots))[None, :] < np.minimum(n_hist, n_slots)[:, None]  # (B, N)

    target = np.zeros((b, p), bool)
    tgt = batch.column("target").combine_chunks()
    t_items = pc.list_flatten(tgt).to_numpy(zero_copy_only=False)
    t_row = pc.list_parent_indices(tgt).to_numpy()
    t_idx = vocab.index(t_items) if len(t_items) else np.zeros(0, np.int64)
    target[t_row[t_idx >= 0], t_idx[t_idx >= 0]] = True
    missed = np.bincount(t_row[t_idx < 0], minlength=b).astype(np.int64)
    return {"orders": seq, "order_mask": order_mask, "feats": feats, "context": _context(batch, b),
            "target": target, "missed": missed, "n_history": n_hist, "unknown": int((~known).sum()),
            "unknown_examples": pd.unique(items[~known])[:5].tolist()}
