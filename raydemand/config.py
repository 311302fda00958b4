"""Layered configuration: defaults in code -> YAML file -> command-line overrides.

Every stage and model declares one `Config` subclass with commented defaults; nothing else is
read. Unknown keys are errors, values are type-checked by pydantic, and the resolved config is
written beside every run so that it can be reproduced with `--config`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from raydemand.io import atomic_write

C = TypeVar("C", bound="Config")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the source and the field."""


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: str | Path) -> None:
        with atomic_write(path, "w") as f:
            f.write(self.to_yaml())


def registered(source: str, what: str) -> AfterValidator:
    """A name field checked against a registry, so that a model registered in one file is valid in every
    config without a list of names here: `model: Annotated[str, registered("raydemand.basket.base:
    list_predictors", "basket model")]`. `source` is "module:function" returning the names; it is imported
    when a value is validated (the registry's module imports this one)."""

    def check(value: str) -> str:
        module, _, function = source.partition(":")
        names = getattr(importlib.import_module(module), function)()
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; registered: {', '.join(names)}")
        return value

    return AfterValidator(check)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`["train.lr=1e-3", "seed=3"]` -> `{"train": {"lr": 0.001}, "seed": 3}`.

    Values are parsed as YAML scalars, so `1e-3`, `true`, `[5, 10]` and `null` mean what they say;
    the config class then checks their types.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected KEY=VALUE")
        value = _scalar(raw)
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is set both as a value and as a section")
        node[leaf] = value
    return out


def _scalar(raw: str) -> Any:
    if not raw.strip():
        return ""
    value = yaml.safe_load(raw)
    # YAML 1.1 reads `1e-3` (no dot) as a string; a user typing it means a number.
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(err: ValidationError, cls: type[Config], source: str) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            known = ", ".join(cls.model_fields) if len(e["loc"]) == 1 else ""
            lines.append(f"{source}: unknown key '{field}'" + (f" (known keys: {known})" if known else ""))
        else:
            lines.append(f"{source}: field '{field}': {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    preset: dict[str, Any] | None = None,
    **explicit: Any,
) -> C:
    """Build `cls` from its defaults, then the YAML at `path`, then `KEY=VALUE` overrides, then
    explicit keyword values (command-line flags; `None` means "not given"). `preset` stands in for
    the YAML when there is none (e.g. a family's default sweep)."""
    data: dict[str, Any] = dict(preset or {})
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(loaded).__name__}")
        data = loaded
    overrides = list(overrides)
    if overrides:
        data = _merge(data, parse_overrides(overrides))
        source += " + command-line overrides"
    data = _merge(data, {k: v for k, v in explicit.items() if v is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, cls, source)) from None


def with_overrides(cfg: C, overrides: Iterable[str]) -> C:
    """A copy of `cfg` with `KEY=VALUE` overrides applied and validated (errors name the field)."""
    data = _merge(cfg.model_dump(), parse_overrides(list(overrides)))
    try:
        return type(cfg).model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, type(cfg), "overrides")) from None
