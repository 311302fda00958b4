"""The `raydemand` command: one entry point, a sub-command group per family.

Each family module exposes `add_commands(subparsers)`; leaf commands set `func(args) -> int`.
Heavy imports (ray, torch) happen inside the commands, so `--help` stays fast. Every command checks
its inputs (files, tables, run folders, config) before it imports or starts Ray, and the flags all
Ray commands share are added and mapped by one helper (`add_ray_args`, `command_config`). Model
names come from the families' registries (`Registered`), never from lists kept here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Callable, Sequence, TypeVar

from raydemand import __version__
from raydemand.config import ConfigError
from raydemand.errors import InputError, TableError

C = TypeVar("C")

# (group name, help, module with add_commands(subparsers))
GROUPS = [
    ("data", "synthesise, validate, inspect and preprocess data sets", "raydemand.data.cli"),
    ("forecast", "new-product demand: train, predict and evaluate CrossAttnRNN and baselines", "raydemand.forecast.cli"),
    ("basket", "next-basket prediction: train, predict and evaluate", "raydemand.basket.cli"),
    ("design", "GAN design generation and preference scoring", "raydemand.design.cli"),
    ("tune", "Ray Tune sweeps: basket pos_weight x threshold, forecast loss weights, design GAN settings",
     "raydemand.tune.cli"),
]
# (command name, help, module with add_arguments(parser) and run(args))
COMMANDS = [
    ("demo", "run the platform end to end on embedded data and write a report", "raydemand.demo"),
    ("serve", "deploy the HTTP API (Ray Serve) for trained run directories", "raydemand.serve.cli"),
]


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """`--config YAML` and repeatable `--set KEY=VALUE`, shared by every configurable command."""
    parser.add_argument("--config", metavar="YAML", help="YAML file with config values (defaults come from code)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override one config value, e.g. --set batch_size=256 (repeatable)")


def add_ray_args(parser: argparse.ArgumentParser, *, workers: bool = True, config: bool = True) -> None:
    """The flags every command that runs on Ray shares, spelled and mapped one way for all of them:
    `--num-workers`/`--gpu` (Ray Train workers: the config's `train.num_workers`/`train.use_gpu`),
    `--config`/`--set`, `--address`, and `--check` (validate config and inputs, start nothing)."""
    if workers:
        parser.add_argument("--num-workers", type=int, metavar="N",
                            help="Ray Train workers, DDP when > 1 (default: the config's train.num_workers, 1)")
        parser.add_argument("--gpu", action="store_true",
                            help="train on GPUs (default: the config's train.use_gpu, GPUs when the cluster has them)")
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--check", action="store_true",
                        help="check the config and the inputs, print the resolved config as JSON and exit "
                             "without starting Ray")
    if config:
        add_config_args(parser)


def add_command(sub: argparse._SubParsersAction, name: str, func: Callable[[argparse.Namespace], int],
                help_text: str) -> argparse.ArgumentParser:
    """A leaf command running `func(args)`: `help_text` in its group's list, `func`'s docstring as its `--help`."""
    import inspect

    parser = sub.add_parser(name, help=help_text, description=inspect.cleandoc(func.__doc__ or help_text))
    parser.set_defaults(func=func)
    return parser


def _given(values: dict) -> dict:
    """Flag values without the ones not given (None), nested sections included."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _given(value)
        if value is not None and value != {}:
            out[key] = value
    return out


FROM_ARGS: Any = object()  # command_config: read the YAML path / overrides from --config / --set


def command_config(cls: type[C], args: argparse.Namespace, path: str | None = FROM_ARGS,
                   overrides: Sequence[str] = FROM_ARGS, **flags: Any) -> C:
    """The command's config: defaults -> `--config` YAML (or `path`, None: none) -> `--set` (or
    `overrides`) -> flags.

    `flags` are config keys (nested sections as dicts; None: not given); the shared `--num-workers`
    and `--gpu` always land in `train`, so every family reads them the same way.
    """
    from raydemand.config import load_config

    train = {"num_workers": getattr(args, "num_workers", None), "use_gpu": True if getattr(args, "gpu", False) else None}
    flags["train"] = {**train, **flags.get("train", {})}
    return load_config(cls, getattr(args, "config", None) if path is FROM_ARGS else path,
                       getattr(args, "overrides", []) if overrides is FROM_ARGS else overrides, **_given(flags))


def checked(args: argparse.Namespace, cfg: Any | None, **inputs: Any) -> bool:
    """With `--check`: print the resolved config and the checked inputs as JSON; True means "stop here"."""
    if not getattr(args, "check", False):
        return False
    report: dict[str, Any] = {"check": "ok", "inputs": inputs}
    if cfg is not None:
        report["config"] = cfg.model_dump(mode="json") if hasattr(cfg, "model_dump") else cfg
    print(json.dumps(report, indent=2, default=str))
    return True


class Registered:
    """argparse `choices` read from a registry when first needed (checking a value, printing help), so that
    building the parser imports no model code and a model registered in one file is a choice everywhere.

    `source` is "module:attribute": a function listing the names, or a registry dict.
    """

    def __init__(self, source: str):
        self.source = source

    def names(self) -> list[str]:
        module, _, attribute = self.source.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        return list(found()) if callable(found) else sorted(found)

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __iter__(self):
        return iter(self.names())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raydemand",
        description="Ray-native demand intelligence: new-product forecasts, GAN design scoring, next baskets.",
    )
    parser.add_argument("--version", action="version", version=f"raydemand {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for name, help_text, module in GROUPS:
        sub = groups.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_commands(sub.add_subparsers(dest="command", metavar="SUBCOMMAND",
                                                                        required=True))
    for name, help_text, module in COMMANDS:
        sub = groups.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(sub)
        sub.set_defaults(func=mod.run)
    return parser


# Errors that mean "your input is wrong": printed as one line, exit status 2, no traceback.
USER_ERRORS = (TableError, ConfigError, InputError, FileNotFoundError, FileExistsError)


def run_command(fn: Callable[[], int | None]) -> int:
    try:
        return int(fn() or 0)
    except USER_ERRORS as e:
        print(f"raydemand: error: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
