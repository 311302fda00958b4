"""The `raydemand` command: one entry point, a sub-command group per family.

Each family module exposes `add_commands(subparsers)`; leaf commands set `func(args) -> int`.
Heavy imports (ray, torch) happen inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from raydemand import __version__
from raydemand.config import ConfigError
from raydemand.errors import InputError, TableError

# (group name, help, module with add_commands)
GROUPS = [
    ("data", "synthesise, validate, inspect and preprocess data sets", "raydemand.data.cli"),
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (TableError, ConfigError, InputError, FileNotFoundError, FileExistsError) as e:
        print(f"raydemand: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
