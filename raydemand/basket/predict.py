"""`basket predict`: the next order of every user in an orders table, after their last given order.

Products outside the run's catalogue are counted (with examples) and skipped. A user with no
usable history (no catalogue product in any order) gets the popularity ranking (G-TopFreq) and is
counted. Output: user_id, rank (1..K), product_id, score, in_basket (score >= the run's threshold,
chosen on validation users).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from raydemand.basket.base import LoadedRun, load_run
from raydemand.basket.data import encode, history_orders, write_lines
from raydemand.basket.metrics import top_k


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


def predict_frame(run: LoadedRun, orders: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """In-process prediction for a small orders table (no Ray): the windows stage's pure function."""
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
    out = _finish(run, parts, lines["user_id"].unique(), k, stats)
    out.attrs["summary"] = stats
    return out


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
