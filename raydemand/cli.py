"""The `raydemand` command: one entry point, a sub-command group per family.

Each family module exposes `add_commands(subparsers)`; leaf commands set `func(args) -> int`.
Heavy imports (ray, torch) happen inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from raydemand import __version__
from raydemand.config import ConfigError
from raydemand.errors import InputError, TableError

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
