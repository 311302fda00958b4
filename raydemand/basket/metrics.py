"""Next-basket metrics, used by training reports, `evaluate`, Tune and the bench.

Scores are (users, products) probabilities; `-inf` marks a product a method does not recommend
(P-TopFreq leaves everything the user never bought out of its list). Targets are boolean
(users, products). `missed` counts, per user, target products outside the catalogue: they can
never be predicted, and count against recall and f1 all the same.

Thresholds are applied after scoring, so one set of scores gives the whole threshold curve.
f1_macro averages per-product F1 over the products that occur in a target or a prediction (a
product nobody bought or was offered has no defined F1).
"""

from __future__ import annotations

import numpy as np

RANKED = ("precision", "recall", "ndcg", "phr")


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices (U, k) best first, valid (U, k)): positions whose score is -inf are not recommendations."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (U, k) unordered
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, 1)
    return idx, np.isfinite(np.take_along_axis(scores, idx, 1))


def ranking_metrics(scores: np.ndarray, target: np.ndarray, k: int, missed: np.ndarray | None = None) -> dict:
    """precision@K, recall@K, NDCG@K, PHR@K (share of users with at least one hit), means over users."""
    idx, valid = top_k(scores, k)
    hits = np.take_along_axis(target, idx, 1) & valid  # (U, k)
    n_true = target.sum(1) + (0 if missed is None else missed)
    n_true_safe = np.maximum(n_true, 1)
    discount = 1.0 / np.log2(np.arange(2, idx.shape[1] + 2))  # (k,)
    dcg = (hits * discount).sum(1)
    ideal = np.cumsum(discount)[np.minimum(n_true_safe, idx.shape[1]) - 1]
    return {f"precision@{k}": float((hits.sum(1) / k).mean()),
            f"recall@{k}": float((hits.sum(1) / n_true_safe).mean()),
            f"ndcg@{k}": float((dcg / ideal).mean()),
            f"phr@{k}": float((hits.sum(1) > 0).mean())}


def threshold_metrics(scores: np.ndarray, target: np.ndarray, threshold: float,
                      missed: np.ndarray | None = None) -> dict:
    """f1_micro, f1_macro, precision and recall of the basket {p : score_p >= threshold}."""
    pred = scores >= threshold
    tp = (pred & target).sum(0).astype(np.float64)  # (P,)
    fp = (pred & ~target).sum(0).astype(np.float64)
    fn = (~pred & target).sum(0).astype(np.float64)
    extra = 0.0 if missed is None else float(np.sum(missed))
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum() + extra
    f1_micro = 2 * TP / max(2 * TP + FP + FN, 1.0)
    seen = (tp + fp + fn) > 0
    f1_macro = float(np.mean(2 * tp[seen] / (2 * tp[seen] + fp[seen] + fn[seen]))) if seen.any() else 0.0
    return {"f1_micro": float(f1_micro), "f1_macro": f1_macro, "precision": float(TP / max(TP + FP, 1.0)),
            "recall": float(TP / max(TP + FN, 1.0)), "basket_size": float(pred.sum(1).mean())}


def threshold_curve(scores: np.ndarray, target: np.ndarray, thresholds, missed=None) -> list[dict]:
    return [{"threshold": float(t), **threshold_metrics(scores, target, t, missed)} for t in thresholds]


def best_threshold(scores: np.ndarray, target: np.ndarray, thresholds, missed=None) -> float:
    """The threshold with the best f1_micro (ties: the lowest threshold)."""
    curve = threshold_curve(scores, target, thresholds, missed)
    return max(curve, key=lambda r: (r["f1_micro"], -r["threshold"]))["threshold"]


def all_metrics(scores: np.ndarray, target: np.ndarray, k: int, threshold: float, missed=None) -> dict:
    """Ranking metrics at K plus f1_micro/f1_macro at `threshold` (chosen on validation users)."""
    out = ranking_metrics(scores, target, k, missed)
    at = threshold_metrics(scores, target, threshold, missed)
    out.update({"f1_micro": at["f1_micro"], "f1_macro": at["f1_macro"], "threshold": float(threshold),
                "basket_size": at["basket_size"], "users": int(len(scores))})
    return out
