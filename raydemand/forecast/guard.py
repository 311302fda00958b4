"""What `forecast train` serves: the trained forecaster, checked against the baselines on validation.

The baselines of `baselines.compare` (default `median`, `attribute_median`) are fitted on the
training rows and scored on the validation rows with the forecaster's own metric. With
`baselines.guard` on, the served forecaster is the blend a * forecaster + (1 - a) * best baseline
whose weight a (a grid in [0, 1], 1 = the forecaster alone, 0 = the baseline alone) has the lowest
validation WAPE, so it is never worse there than the forecaster or the best baseline. A blend
(a < 1) is one `blend` forecaster in model.pt holding both, so predict, evaluate, Serve and Tune
load it as any other. The validation rows also chose the forecaster's epoch (early stopping): its
validation WAPE is a little optimistic, which leans the choice towards the forecaster.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from raydemand.forecast.base import Forecaster, create_forecaster, register_forecaster, register_from
from raydemand.forecast.config import ForecastConfig
from raydemand.forecast.metrics import forecast_metrics, wape

logger = logging.getLogger(__name__)


def blend_weight(model: np.ndarray, baseline: np.ndarray, target: np.ndarray, grid: int = 11) -> tuple[float, float]:
    """(a, WAPE) of the blend a * model + (1 - a) * baseline, all (N, 12), with the lowest WAPE for a
    on `grid` evenly spaced values in [0, 1]; a tie keeps the larger a (the model)."""
    model, baseline = np.asarray(model, np.float64), np.asarray(baseline, np.float64)
    best_a, best = 1.0, float("inf")
    for a in np.linspace(1.0, 0.0, grid):  # from the model down, so that ties keep the model
        score = float(wape(a * model + (1 - a) * baseline, target))
        if score < best - 1e-9:
            best_a, best = round(float(a), 6), score
    return best_a, best


def _packed(forecaster: Forecaster) -> dict[str, Any]:
    return {"name": forecaster.name, "module": type(forecaster).__module__, "state": forecaster.get_state()}


def _unpacked(packed: dict[str, Any], cfg: ForecastConfig) -> Forecaster:
    register_from(packed["name"], packed.get("module"))  # a forecaster added outside the package
    forecaster = create_forecaster(packed["name"], cfg)
    forecaster.set_state(packed["state"])
    return forecaster


@register_forecaster
class Blend(Forecaster):
    """weight * inner + (1 - weight) * baseline: the guard's served forecaster. Attention is the inner
    forecaster's, or the baseline's (none) at weight 0, where the inner one is not run."""

    name = "blend"
    listed = False

    inner: Forecaster
    baseline: Forecaster
    weight: float

    @classmethod
    def of(cls, inner: Forecaster, baseline: Forecaster, weight: float) -> "Blend":
        blend = cls(inner.cfg)
        blend.inner, blend.baseline, blend.weight = inner, baseline, float(weight)
        return blend

    def mix(self, inner: np.ndarray, baseline: np.ndarray) -> np.ndarray:
        return (self.weight * inner + (1 - self.weight) * baseline).astype(np.float32)

    def predict(self, rows, pool):
        base = self.baseline.predict(rows, pool)
        return base if self.weight == 0 else self.mix(self.inner.predict(rows, pool), base)

    def explain(self, rows, pool):
        if self.weight == 0:
            return self.baseline.explain(rows, pool)
        pred, attention = self.inner.explain(rows, pool)
        return self.mix(pred, self.baseline.predict(rows, pool)), attention

    def get_state(self):
        return {"weight": self.weight, "inner": _packed(self.inner), "baseline": _packed(self.baseline)}

    def set_state(self, state):
        self.weight = float(state["weight"])
        self.inner, self.baseline = _unpacked(state["inner"], self.cfg), _unpacked(state["baseline"], self.cfg)


def alone(forecaster: Forecaster) -> Forecaster:
    """The trained forecaster inside what is served (itself when it is served alone)."""
    return forecaster.inner if isinstance(forecaster, Blend) else forecaster


def served_name(served: dict[str, Any]) -> str:
    """metrics.json's `served` in words: the model, a baseline, or their blend."""
    a, baseline, model = served["weight"], served["baseline"], served["model"]
    if baseline is None or a == 1:
        return model
    return baseline if a == 0 else f"{a:g} x {model} + {1 - a:g} x {baseline}"


def fit_baselines(cfg: ForecastConfig, data) -> dict[str, Forecaster]:
    """The baselines of `cfg.baselines.compare`, fitted on `data.train` (a run's TrainingData)."""
    fitted = {}
    for name in cfg.baselines.compare:
        fitted[name] = create_forecaster(name, cfg)
        fitted[name].fit(data.train, data.val, data.pool)
    return fitted


def guarded(cfg: ForecastConfig, forecaster: Forecaster, forecaster_val: np.ndarray, baselines: dict[str, Forecaster],
            data) -> tuple[Forecaster, dict[str, Any]]:
    """(served forecaster, metrics.json's record) from the trained `forecaster`, its (N, 12) validation
    forecasts and the fitted `baselines`: {"baselines": {name: validation metrics}, "served": {...}}."""
    target = data.val.target
    preds = {name: b.predict(data.val, data.pool) for name, b in baselines.items()}  # name -> (N, 12)
    val = {name: forecast_metrics(pred, target, per_week=False) for name, pred in preds.items()}
    own = forecast_metrics(forecaster_val, target, per_week=False)
    served: dict[str, Any] = {"forecaster": forecaster.name, "model": forecaster.name, "baseline": None,
                              "weight": 1.0, "val": own}
    rivals = {name: m["wape"] for name, m in val.items() if name != forecaster.name}
    if not rivals:
        return forecaster, {"baselines": val, "served": served}
    best = min(rivals, key=rivals.get)
    out = forecaster
    guard = cfg.baselines.guard and not forecaster.is_baseline
    if guard:
        a, _ = blend_weight(forecaster_val, preds[best], target, cfg.baselines.blend_grid)
        if a < 1:
            out = Blend.of(forecaster, baselines[best], a)
            served = {"forecaster": out.name, "model": forecaster.name, "baseline": best, "weight": a,
                      "val": forecast_metrics(out.mix(forecaster_val, preds[best]), target, per_week=False)}
    if own["wape"] >= rivals[best]:
        why = None if guard else ("a baseline run" if forecaster.is_baseline else "baselines.guard=false")
        logger.warning("%s", _verdict(forecaster.name, own["wape"], best, rivals[best], served, why))
    return out, {"baselines": val, "served": served}


def _verdict(name: str, own: float, best: str, theirs: float, served: dict[str, Any], unguarded: str | None) -> str:
    """The one terminal line `forecast train` writes when the forecaster loses to a baseline."""
    head = f"{name} does not beat the {best} baseline on validation (WAPE {own:.2f} vs {theirs:.2f}); "
    if unguarded:
        return head + f"serving {name} as configured ({unguarded})"
    if served["forecaster"] == name:
        return head + f"serving {name}"
    a = served["weight"]
    what = best if a == 0 else f"{a:g} x {name} + {1 - a:g} x {best}"
    return head + f"serving {what} (validation WAPE {served['val']['wape']:.2f})"
