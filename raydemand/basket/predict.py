"""`basket predict`: the next order of every user in an orders table, after their last given order.

Products outside the run's catalogue are counted (with examples) and skipped. A user with no
usable history (no catalogue product in any order) gets the popularity ranking (G-TopFreq) and is
counted. Output: user_id, rank (1..K), product_id, score, in_basket (score >= the run's threshold,
chosen on validation users).

The CLI streams a table through the Ray Data windows stage (`predict`); `predict_frame` answers a
small table in-process, and `history_table` turns users' orders given as lists of product ids (the
HTTP API's shape) into such a table, so that Serve predicts through the same code as the CLI.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from raydemand.basket.base import LoadedRun, load_run
from raydemand.basket.data import Vocab, encode, history_orders, write_lines
from raydemand.basket.metrics import top_k
from raydemand.errors import InputError

# What to do with a product outside the run's catalogue in `history_table`: 'error' raises
# `HistoryError` naming it; 'ignore' leaves it to the prediction, which skips and counts it.
UNKNOWN_PRODUCTS = ("error", "ignore")


def _rank_rows(run: LoadedRun, batch, k: int, stats: dict[str, Any]) -> pd.DataFrame:
    enc = encode(batch, run.vocab, run.cfg.data, run.cfg.decay)
    scores = np.asarray(run.score(enc), dtype=np.float64)
    empty = ~(enc["feats"][..., 0] > 0).any(1)  # no catalogue product in the history
    scores[empty] = run.vocab.popularity
    stats["fallback_users"] += int(empty.sum())
    idx, valid = top_k(scores, k)
    users = batch.column("user_id").to_numpy(zero_copy_only=False)
    b, r = np.nonzero(valid)
    s = scores[b, idx[b, r]]
    return pd.DataFrame({"user_id": users[b], "rank": r + 1, "product_id": run.vocab.products[idx[b, r]],
                         "score": s.astype(np.float32), "in_basket": s >= run.threshold})


def _prepare_lines(run: LoadedRun, lines: pd.DataFrame) -> pd.DataFrame:
    """Catalogue restriction as in training (top_products: catalogue lines only, orders renumbered)."""
    if run.cfg.data.top_products is None:
        return lines
    keep = run.vocab.index(lines["product_id"].to_numpy()) >= 0
    lines = lines[keep]
    number = lines.groupby("user_id", sort=False)["order_number"].rank(method="dense").astype(np.int64)
    return lines.assign(order_number=number.to_numpy()).reset_index(drop=True)


def _finish(run: LoadedRun, parts: list[pd.DataFrame], all_users: np.ndarray, k: int,
            stats: dict[str, Any]) -> pd.DataFrame:
    """Users the windows lost (every line outside a restricted catalogue) get the popularity ranking."""
    pred = pd.concat(parts, ignore_index=True) if parts else None
    seen = pd.Index(pred["user_id"].unique()) if pred is not None else pd.Index([])
    lost = pd.Index(all_users).difference(seen)
    if len(lost):
        top = np.argsort(-run.vocab.popularity, kind="stable")[:k]
        fill = pd.DataFrame({"user_id": np.repeat(lost.to_numpy(), len(top)),
                             "rank": np.tile(np.arange(1, len(top) + 1), len(lost)),
                             "product_id": np.tile(run.vocab.products[top], len(lost)),
                             "score": np.tile(run.vocab.popularity[top].astype(np.float32), len(lost))})
        fill["in_basket"] = fill["score"] >= run.threshold
        pred = pd.concat([p for p in (pred, fill) if p is not None], ignore_index=True)
        stats["fallback_users"] += len(lost)
    stats["users"] = len(all_users)
    return pred.sort_values(["user_id", "rank"], ignore_index=True)


def _count_unknown(run: LoadedRun, lines: pd.DataFrame, stats: dict[str, Any]) -> None:
    unknown = run.vocab.index(lines["product_id"].to_numpy()) < 0
    stats["unknown_lines"] = int(unknown.sum())
    stats["unknown_examples"] = pd.unique(lines["product_id"].to_numpy()[unknown])[:5].tolist()


def predict_frame(run: LoadedRun, orders: pd.DataFrame, k: int = 10, users: Sequence | None = None) -> pd.DataFrame:
    """In-process prediction for a small orders table (no Ray): the windows stage's pure function.
    `users`: every user to answer (default: the table's); those without lines get the popularity ranking."""
    from raydemand.data.pipelines.windows import WindowsConfig, build_windows
    from raydemand.data.schema import validate_orders

    lines = validate_orders(orders, "orders")
    stats = {"fallback_users": 0, "unknown_lines": 0, "unknown_examples": []}
    _count_unknown(run, lines, stats)
    kept = _prepare_lines(run, lines)
    parts = []
    if len(kept):
        windows = build_windows(kept, WindowsConfig(n_orders=history_orders(run.cfg.data), targets="next"))
        parts.append(_rank_rows(run, windows, k, stats))
    out = _finish(run, parts, lines["user_id"].unique() if users is None else np.asarray(users), k, stats)
    out.attrs["summary"] = stats
    return out


class HistoryError(InputError):
    """A product of users' orders given as lists that cannot be predicted from; `where` is its
    (user, order, position) in those lists, `msg` the reason."""

    def __init__(self, where: tuple[int, int, int], msg: str):
        self.where, self.msg = tuple(where), msg
        super().__init__(f"user {where[0]}, order {where[1]}, product {where[2]}: {msg}")

    def __reduce__(self):
        return type(self), (self.where, self.msg)


def _catalogue_id(vocab: Vocab, value):
    """A product id in the catalogue's id type; None when it cannot be one (text for numeric ids)."""
    if vocab.products.dtype.kind not in "iu":
        return str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return int(value) if str(value).isdigit() else None


def _order_ids(run: LoadedRun, where: tuple[int, int], order: Sequence, unknown: str) -> list:
    """The order's products in the catalogue's id type, checked under the `unknown` policy; ids that
    cannot be the catalogue's type are left out (they can match no product)."""
    ids = [_catalogue_id(run.vocab, v) for v in order]
    known = np.zeros(len(ids), bool)
    typed = [j for j, i in enumerate(ids) if i is not None]
    if typed:
        dtype = np.int64 if run.vocab.products.dtype.kind in "iu" else object
        known[typed] = run.vocab.index(np.array([ids[j] for j in typed], dtype=dtype)) >= 0
    if unknown == "error" and not known.all():
        j = int(np.argmin(known))
        raise HistoryError((*where, j), f"product id {order[j]!r} is not in the catalogue of this basket run "
                                        f"({len(run.vocab)} products); send unknown_products='ignore' to skip it")
    keys = [i if i is not None else ("untyped", str(v)) for i, v in zip(ids, order)]
    if len(set(keys)) != len(keys):
        j = next(j for j, key in enumerate(keys) if keys.index(key) != j)
        raise HistoryError((*where, j), f"product id {order[j]!r} appears twice in one order")
    return [i for i in ids if i is not None]


def history_table(run: LoadedRun, histories: Sequence[Sequence[Sequence]], unknown: str = "error") -> pd.DataFrame:
    """The orders table of users given as their past orders, oldest first, each a list of product
    ids: user_id is the user's position in `histories`, orders are numbered in table order (lists
    carry no order ids). `unknown`: one of UNKNOWN_PRODUCTS."""
    if unknown not in UNKNOWN_PRODUCTS:
        raise InputError(f"unknown={unknown!r}; expected one of {UNKNOWN_PRODUCTS}")
    rows, order_id = [], 0
    for u, orders in enumerate(histories):
        for o, order in enumerate(orders):
            order_id += 1
            rows += [(u, order_id, o + 1, p) for p in _order_ids(run, (u, o), order, unknown)]
    lines = pd.DataFrame(rows, columns=["user_id", "order_id", "order_number", "product_id"])
    return lines.astype({"user_id": np.int64, "order_id": np.int64, "order_number": np.int64,
                         "product_id": np.int64 if run.vocab.products.dtype.kind in "iu" else object})


def predict_histories(run: LoadedRun, histories: Sequence[Sequence[Sequence]], k: int = 10,
                      unknown: str = "error") -> pd.DataFrame:
    """`predict_frame` for users given as lists of orders (see `history_table`); user_id is the
    user's position in `histories`, and every user is answered."""
    return predict_frame(run, history_table(run, histories, unknown), k, users=np.arange(len(histories)))


def predict(run_dir, orders, k: int, out, *, address: str | None = None) -> dict[str, Any]:
    """Stream every user's next-order window through the Ray Data stage and write PRED.parquet/csv."""
    from tqdm import tqdm

    from raydemand.basket.data import iter_windows
    from raydemand.data.sources import load_orders
    from raydemand.io import write_table
    from raydemand.ray_utils import init_ray

    run = load_run(run_dir)
    init_ray(address=address)
    lines = load_orders(orders)
    stats = {"fallback_users": 0, "unknown_lines": 0, "unknown_examples": []}
    _count_unknown(run, lines, stats)
    kept = _prepare_lines(run, lines)
    parts: list[pd.DataFrame] = []
    if len(kept):
        with tempfile.TemporaryDirectory() as tmp:
            batches: Iterable = iter_windows(write_lines(kept, Path(tmp) / "lines.parquet"), run.cfg.data, "next")
            with tqdm(desc="predict", unit="user", total=int(kept["user_id"].nunique())) as bar:
                for batch in batches:
                    if batch.num_rows:
                        parts.append(_rank_rows(run, batch, k, stats))
                        bar.update(batch.num_rows)
    pred = _finish(run, parts, lines["user_id"].unique(), k, stats)
    write_table(pred, out)
    summary = {"out": str(out), "k": k, "rows": len(pred), **stats, "threshold": run.threshold}
    print(json.dumps(summary, indent=2, default=str))
    return summary
