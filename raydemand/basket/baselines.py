"""Frequency baselines, which the next-basket literature finds hard to beat.

Scores are shares in [0, 1], so the same thresholds apply as to the models' probabilities:
G-TopFreq: the share of training orders holding the product (global popularity), for everyone.
P-TopFreq: the share of the user's own history orders holding it; products the user never
  bought are not recommended (-inf), so a short history gives a short list.
GP-TopFreq: P-TopFreq, the remaining places filled by global popularity (scaled below any
  personal score, so personal products always rank first).
decayfreq: GP-TopFreq with each history order weighted by decay**age (recent orders count more).
"""

from __future__ import annotations

import numpy as np

from raydemand.basket.base import BasketPredictor, register_predictor
from raydemand.basket.features import FEATURES

FREQ, DECAYED = FEATURES.index("freq"), FEATURES.index("decayed")
FILL = 1e-3  # global popularity below any personal share (a share is at least 1/feature_orders)


def baseline_scores(kind: str, feats: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """(B, P) scores of baseline `kind` from the (B, P, F) user features and (P,) popularity."""
    glob = np.broadcast_to(popularity[None, :], feats.shape[:2]).astype(np.float64)
    if kind == "gtopfreq":
        return glob.copy()
    personal = feats[..., DECAYED if kind == "decayfreq" else FREQ].astype(np.float64)
    if kind == "ptopfreq":
        return np.where(personal > 0, personal, -np.inf)
    return np.where(personal > 0, personal, FILL * glob)


@register_predictor("topfreq")
class TopFreq(BasketPredictor):
    """`model=topfreq`; `baseline` picks the variant. Nothing to fit beyond the training catalogue."""

    def score(self, enc):
        return baseline_scores(self.cfg.baseline, enc["feats"], self.vocab.popularity)
