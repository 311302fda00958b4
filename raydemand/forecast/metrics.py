"""Forecast metrics, used by training (validation), evaluation, Tune and the benches.

MAE, MSE and WAPE (%, sum |error| / sum actual) overall and per horizon week, on the normalised
scale the model trains on and on the de-normalised scale (units).
"""

from __future__ import annotations

import numpy as np


def _check(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"forecasts {pred.shape} and actuals {target.shape} must both be (products, weeks)")
    return pred, target


def wape(pred: np.ndarray, target: np.ndarray, axis=None) -> np.ndarray | float:
    err = np.abs(pred - target).sum(axis=axis)
    total = np.abs(target).sum(axis=axis)
    return 100.0 * err / np.maximum(total, 1e-12)


def forecast_metrics(pred: np.ndarray, target: np.ndarray, per_week: bool = True) -> dict[str, float]:
    """{'mae', 'mse', 'wape'} overall, plus 'mae_w{t}', 'mse_w{t}', 'wape_w{t}' for every week t."""
    pred, target = _check(pred, target)
    err = pred - target
    out = {"mae": float(np.abs(err).mean()), "mse": float((err ** 2).mean()), "wape": float(wape(pred, target))}
    if per_week:
        for t, (mae, mse, wp) in enumerate(zip(np.abs(err).mean(0), (err ** 2).mean(0), wape(pred, target, 0))):
            out.update({f"mae_w{t}": float(mae), f"mse_w{t}": float(mse), f"wape_w{t}": float(wp)})
    return out


def both_scales(pred_norm: np.ndarray, target_norm: np.ndarray, scale: float, per_week: bool = True) -> dict:
    """{'normalised': metrics, 'units': metrics}; units = normalised x `scale`."""
    return {"normalised": forecast_metrics(pred_norm, target_norm, per_week),
            "units": forecast_metrics(np.asarray(pred_norm) * scale, np.asarray(target_norm) * scale, per_week)}
