"""Design metrics, used by training, scoring, Tune and the bench.

- Preference (the seed's Table 2): the scorer's softmax probability of the intended category, in %,
  averaged per category. Recognisability: the share of images the scorer assigns to that category.
- Feature-space quality and diversity, in the scorer's penultimate features (NOT Inception features:
  no Inception weights exist offline, so values are not comparable with published FID):
  Fréchet distance ("FD-scorer"), precision/recall (Kynkäänniemi et al. 2019) and density/coverage
  (Naeem et al. 2020) on k-nearest-neighbour balls.
- Training health: Fréchet distance of downsampled pixels to held-out real images (checkpoint
  choice), intra-category diversity relative to real images (mode collapse), and how cleanly D
  separates real from generated images (divergence).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PIXEL_FEATURE_SIDE = 16  # side of the downsampled images behind the training-time Fréchet distance


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets (N, D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr((S_a S_b)^(1/2)) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2))): a symmetric PSD problem, stable.
    w, v = np.linalg.eigh(sa)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sb @ root), 0, None)).sum()
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * cross)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point."""
    d = _distances(x, x)
    return np.sort(d, axis=1)[:, min(k, len(x) - 1)]  # column 0 is the point itself


def manifold_metrics(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of `fake` against `real` on k-NN balls."""
    real_r, fake_r = _knn_radii(real, k), _knn_radii(fake, k)
    d = _distances(real, fake)  # (R, F)
    inside_real = d <= real_r[:, None]  # fake j inside real i's ball
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d <= fake_r[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) <= real_r).mean()),
    }


def feature_metrics(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Fréchet distance and the k-NN manifold metrics between two feature sets (N, D)."""
    return {"fd": frechet_distance(real, fake), **manifold_metrics(real, fake, k)}


def preference(probs: np.ndarray, labels: np.ndarray, categories: list[str]) -> dict[str, dict[str, float]]:
    """Per category: preference % (mean softmax probability of the intended category), recognised %
    (argmax is the intended category) and the number of images; plus 'all' over every image."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    p_true = probs[np.arange(len(labels)), labels]
    hit = probs.argmax(1) == labels
    out = {}
    for i, name in enumerate(categories):
        m = labels == i
        if m.any():
            out[name] = {"preference": 100 * float(p_true[m].mean()), "recognised": 100 * float(hit[m].mean()),
                         "n": int(m.sum())}
    out["all"] = {"preference": 100 * float(p_true.mean()), "recognised": 100 * float(hit.mean()),
                  "n": int(len(labels))}
    return out


# ---- training health ---------------------------------------------------------------------------


def pixel_features(x: Any) -> np.ndarray:
    """float images (N, C, H, W) in [-1, 1] (torch or numpy) -> (N, C * 16 * 16) area-downsampled pixels."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(x, np.float32) if not isinstance(x, torch.Tensor) else x.float())
    return F.adaptive_avg_pool2d(t, PIXEL_FEATURE_SIDE).flatten(1).cpu().numpy()


def _mean_pairwise(x: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")
    d = _distances(x, x)
    return float(d.sum() / (len(x) * (len(x) - 1)))


def diversity_ratio(fake: np.ndarray, real: np.ndarray, fake_labels: np.ndarray,
                    real_labels: np.ndarray) -> dict[int, float]:
    """Per label: mean pairwise distance of generated features / the same for real ones. Near 1 for
    a healthy G; near 0 when G makes (nearly) one image per category, i.e. mode collapse."""
    out = {}
    for c in np.unique(real_labels):
        f, r = fake[fake_labels == c], real[real_labels == c]
        if len(f) > 1 and len(r) > 1:
            out[int(c)] = _mean_pairwise(f) / max(_mean_pairwise(r), 1e-12)
    return out


def separation(real_scores: Any, fake_scores: Any) -> float:
    """Share of (real, generated) pairs that D ranks correctly (a ROC AUC); 1 means D wins outright."""
    import torch

    r, f = torch.as_tensor(real_scores).float().flatten(), torch.as_tensor(fake_scores).float().flatten()
    return float((r[:, None] > f[None, :]).float().mean())


def health_flags(history: list[dict[str, float]], collapse_diversity: float, diverge_gap: float,
                 diverge_patience: int) -> dict[str, list[int]]:
    """Epochs flagged for mode collapse (diversity below the threshold) and divergence (non-finite
    losses, or D separating real from generated for `diverge_patience` epochs in a row)."""
    collapse, diverge, streak = [], [], 0
    for h in history:
        epoch = int(h["epoch"])
        if h.get("diversity_min", 1.0) < collapse_diversity:
            collapse.append(epoch)
        streak = streak + 1 if h.get("d_separation", 0.0) >= diverge_gap else 0
        if not (np.isfinite(h.get("d_loss", 0.0)) and np.isfinite(h.get("g_loss", 0.0))) or streak >= diverge_patience:
            diverge.append(epoch)
    return {"mode_collapse_epochs": collapse, "divergence_epochs": diverge}
