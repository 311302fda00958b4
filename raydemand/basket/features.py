"""What a user's own history says about every product: frequency and recency features.

Shared by the frequency baselines, the XGBoost rows and (as an input added to the logits) the
neural models. Computed vectorised from flat (window, product, age) triples, where age 0 is the
most recent order of the window's history.
"""

from __future__ import annotations

import numpy as np

FEATURES = ("freq", "decayed", "in_last", "recency", "log_count")


def user_product_features(rows: np.ndarray, products: np.ndarray, ages: np.ndarray, n_history: np.ndarray,
                          n_products: int, decay: float) -> np.ndarray:
    """(B, P, 5) float32 features of every product for each of B windows.

    freq: share of the history orders holding the product; decayed: the same with order weights
    decay**age, normalised; in_last: bought in the latest order; recency: 1 / (1 + orders since
    it was last bought), 0 if never; log_count: log1p(times bought) / 5.
    """
    b = len(n_history)
    counts = np.zeros((b, n_products), np.float32)
    np.add.at(counts, (rows, products), 1.0)
    weighted = np.zeros((b, n_products), np.float32)
    np.add.at(weighted, (rows, products), decay ** ages.astype(np.float32))
    youngest = np.full((b, n_products), np.inf, np.float32)
    np.minimum.at(youngest, (rows, products), ages.astype(np.float32))

    n = np.maximum(n_history, 1).astype(np.float32)[:, None]  # (B, 1)
    norm = ((1 - decay ** n) / (1 - decay)) if decay < 1 else n  # sum of decay**age over the history
    feats = np.stack([counts / n, weighted / norm, (youngest == 0).astype(np.float32),
                      1.0 / (1.0 + youngest), np.log1p(counts) / 5.0], axis=-1)  # (B, P, 5)
    return feats.astype(np.float32)
