"""The sweep config (`jobs/configs/tune_*.yaml`): what to sweep, how to search and schedule, what each
trial may use. One class for every family; the family's own config comes from `base` (a YAML that
`raydemand <family> train --config` accepts) plus `set` overrides, and every key of `space` is a
dotted key of that family config (`loss.mae`, `pos_weight`, `model.alpha`).

A space entry is one of
    {choice: [a, b, ...]}        random choice            {grid: [a, b, ...]}  every value (grid search)
    {uniform: [low, high]}       float in [low, high]     {loguniform: [low, high]}
    {randint: [low, high]}       int in [low, high)       {quniform: [low, high, q]}
A plain value fixes the key for every trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from raydemand.config import Config, ConfigError

SAMPLERS = ("choice", "grid", "uniform", "loguniform", "randint", "quniform")


class ASHAConfig(Config):
    """Asynchronous successive halving over the epochs each trial reports (ray.tune.schedulers.ASHAScheduler)."""

    grace_period: int = Field(2, ge=1)  # epochs every trial runs before it can be stopped
    reduction_factor: float = Field(2.0, gt=1)  # keep the best 1/reduction_factor at each rung
    max_t: int | None = Field(None, ge=1)  # None: the family config's epochs


class TrialResources(Config):
    """What one trial reserves. A trial that trains through Ray Train is a driver function: it needs
    next to no CPU of its own; its workers reserve `train.num_workers x train.cpus_per_worker`."""

    cpus: float = Field(0.1, gt=0)  # CPUs of the trial's driver function (Tune needs more than 0)
    gpus: float = Field(0.0, ge=0)


class SweepConfig(Config):
    base: str | None = None  # YAML of the family config every trial starts from (relative to this file)
    set: list[str] = []  # KEY=VALUE overrides on top of `base`, e.g. ["epochs=6"]
    space: dict[str, Any] = {}  # dotted family-config key -> sampler (see the module docstring) or fixed value
    metric: str | None = None  # None: the family's objective (basket val_f1_micro, forecast val_wape, design val_fd)
    mode: Literal["min", "max"] | None = None  # None: the family's
    search: Literal["random", "grid", "optuna"] = "random"  # random/grid: BasicVariantGenerator; optuna if installed
    scheduler: Literal["asha", "fifo"] = "fifo"
    asha: ASHAConfig = ASHAConfig()
    num_samples: int = Field(1, ge=1)  # samples of the space (a grid is repeated this many times)
    # Random search: the first trial runs the base config's own values of the sampled keys (one of
    # the num_samples), so the sweep compares its best with the default on the same footing.
    include_base: bool = False
    max_concurrent: int = Field(1, ge=1)  # trials running at once
    max_failures: int = Field(0, ge=0)  # retries of a crashed trial before it is reported as failed
    resources: TrialResources = TrialResources()
    seed: int = 0  # seed of the search algorithm (the family config's own seed stays as set)

    @model_validator(mode="after")
    def _samplers(self):
        for key, spec in self.space.items():
            if isinstance(spec, dict):
                if len(spec) != 1 or next(iter(spec)) not in SAMPLERS:
                    raise ValueError(f"space.{key}: expected one of {', '.join(SAMPLERS)} as the only key, "
                                     f"got {sorted(spec)}")
                (kind, args), = spec.items()
                if not isinstance(args, list) or not args:
                    raise ValueError(f"space.{key}.{kind}: expected a non-empty list, got {args!r}")
                if kind in ("uniform", "loguniform", "randint") and len(args) != 2:
                    raise ValueError(f"space.{key}.{kind}: expected [low, high], got {args!r}")
                if kind == "quniform" and len(args) != 3:
                    raise ValueError(f"space.{key}.quniform: expected [low, high, q], got {args!r}")
                if kind in ("uniform", "loguniform", "randint", "quniform") and not args[0] < args[1]:
                    raise ValueError(f"space.{key}.{kind}: low must be below high, got {args!r}")
                if kind == "loguniform" and args[0] <= 0:
                    raise ValueError(f"space.{key}.loguniform: bounds must be > 0, got {args!r}")
        if self.include_base and any(isinstance(s, dict) and "grid" in s for s in self.space.values()):
            raise ValueError("include_base works with sampled keys only, not with grid keys")
        return self


def load_sweep(path: str | Path | None, overrides=(), default: dict[str, Any] | None = None, **explicit) -> SweepConfig:
    """The sweep config from YAML (+ overrides); a relative `base` is resolved against the YAML's folder.
    Without a YAML the sweep is the family's `default` (its space, search, scheduler and samples)."""
    from raydemand.config import load_config

    cfg = load_config(SweepConfig, path, overrides, preset=default, **explicit)
    if cfg.base is not None and path is not None and not Path(cfg.base).is_absolute():
        candidate = Path(path).parent / cfg.base
        cfg.base = str(candidate if candidate.exists() else Path(cfg.base))
    if cfg.base is not None and not Path(cfg.base).is_file():
        raise ConfigError(f"{path or 'sweep config'}: field 'base': config file not found: {cfg.base}")
    return cfg


def param_space(space: dict[str, Any]) -> dict[str, Any]:
    """Tune's param_space for a sweep space: samplers become `ray.tune` search-space objects."""
    from ray import tune

    out: dict[str, Any] = {}
    for key, spec in space.items():
        if not isinstance(spec, dict):
            out[key] = spec
            continue
        (kind, args), = spec.items()
        out[key] = {"choice": lambda a: tune.choice(a), "grid": lambda a: tune.grid_search(a),
                    "uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
                    "randint": lambda a: tune.randint(*a), "quniform": lambda a: tune.quniform(*a)}[kind](args)
    return out


def apply_params(cfg: Config, params: dict[str, Any], source: str = "sweep space") -> Config:
    """A copy of the family config `cfg` with the dotted keys of `params` set (validated; an unknown key
    or a wrong value is a ConfigError naming it)."""
    from pydantic import ValidationError

    data = cfg.model_dump()
    for key, value in params.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{source}: unknown key '{key}' for {type(cfg).__name__}")
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"{source}: unknown key '{key}' for {type(cfg).__name__}")
        node[leaf] = value
    try:
        return type(cfg).model_validate(data)
    except ValidationError as e:
        fields = "; ".join(f"'{'.'.join(str(p) for p in err['loc'])}': {err['msg']}" for err in e.errors())
        raise ConfigError(f"{source}: {fields} (values {params})") from None
