"""Job entrypoints: one stage per file under `jobs/`, one YAML per stage under `jobs/configs/`.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \\
        python jobs/train_basket.py --config jobs/configs/train_basket.yaml [--set out=runs/b2] [--check]

Every `jobs/<stage>.py` is the same three lines: `main(<its own file name>)`. `--check` runs the
stage's command with `--check`: the config is validated and the inputs resolved, nothing is trained.

A stage's YAML holds the flags of the `raydemand` command it runs (`raydemand basket train` for
`train_basket`), so a job and a command line are the same thing written two ways: `num_workers: 2`
is `--num-workers 2`, `gpu: true` is `--gpu`, a list is one value per flag use (`set: [a=1]` is
`--set a=1`), `args: [...]` are positionals. `--set KEY=VALUE` on the job's own command line
overrides one key of the YAML.

Storage: any value that is a URI (`s3://`, `gs://`, `abfs://`, `hdfs://`, `file://`, ... — whatever
pyarrow's filesystems resolve) is copied to a local staging folder before the stage runs; the
stage's `out` is then copied back to its URI when it ends. An `out` URI that already holds files is
copied down first, so the stage resumes from its checkpoints like a local run folder would.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from raydemand.config import ConfigError

# stage -> the raydemand command it runs
STAGES: dict[str, list[str]] = {
    "prepare": ["data", "prepare", "all"],
    "train_forecast": ["forecast", "train"],
    "train_basket": ["basket", "train"],
    "train_design": ["design", "train"],
    "train_scorer": ["design", "train-scorer"],
    "tune_basket": ["tune", "basket"],
    "tune_forecast": ["tune", "forecast"],
    "tune_design": ["tune", "design"],
    "deploy": ["serve"],
}
URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
STAGING = Path(".staging")


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and bool(URI.match(value))


def load_spec(config: str | Path, overrides: list[str]) -> dict[str, Any]:
    """The stage's flags from its YAML, with `KEY=VALUE` overrides (values parsed as YAML)."""
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such job config")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: a job config is a mapping of flag names to values, got {type(spec).__name__}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        spec[key.strip()] = yaml.safe_load(value)
    return spec


def to_argv(spec: dict[str, Any]) -> list[str]:
    """`{"num_workers": 2, "gpu": True, "set": ["a=1"], "args": ["x"]}` -> `--num-workers 2 --gpu --set a=1 x`."""
    argv: list[str] = []
    for key, value in spec.items():
        if key == "args":
            continue
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            for v in value:
                argv += [flag, str(v)]
        elif isinstance(value, dict):
            raise ConfigError(f"job config key {key!r}: a flag takes a value or a list, not a mapping")
        else:
            argv += [flag, str(value)]
    positional = spec.get("args") or []
    return argv + [str(v) for v in (positional if isinstance(positional, list) else [positional])]


def _filesystem(uri: str):
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError with its own wording
        raise ConfigError(f"{uri}: not a storage URI pyarrow can open ({e})") from e


def _exists(uri: str) -> bool:
    from pyarrow import fs

    filesystem, path = _filesystem(uri)
    return filesystem.get_file_info(path).type != fs.FileType.NotFound


def download(uri: str, local: Path) -> Path:
    """Copy a file or folder at `uri` to `local`."""
    from pyarrow import fs

    filesystem, path = _filesystem(uri)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        raise FileNotFoundError(f"{uri}: not found")
    (local.parent if info.type == fs.FileType.File else local).mkdir(parents=True, exist_ok=True)
    fs.copy_files(path, str(local), source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())
    return local


def upload(local: Path, uri: str) -> None:
    """Copy the local output (file or folder) to `uri`."""
    from pyarrow import fs

    filesystem, path = _filesystem(uri)
    if local.is_dir():
        filesystem.create_dir(path, recursive=True)
    fs.copy_files(str(local), path, source_filesystem=fs.LocalFileSystem(), destination_filesystem=filesystem)


def stage_locally(spec: dict[str, Any], staging: Path = STAGING) -> tuple[dict[str, Any], dict[str, Path]]:
    """Replace URI values with local copies; returns the new spec and {out URI: local path} to upload."""
    local_spec, uploads = dict(spec), {}
    for key, value in spec.items():
        if not is_uri(value):
            continue
        name = hashlib.sha1(value.encode()).hexdigest()[:12]
        local = (staging / key / name / Path(value.rstrip("/")).name).resolve()
        if key == "out":
            if _exists(value):
                download(value, local)  # resume from what an earlier attempt left
            uploads[value] = local
        else:
            download(value, local)
        local_spec[key] = str(local)
    return local_spec, uploads


def main(stage: str, argv: list[str] | None = None) -> int:
    """Run `stage` with its YAML (`--config`) and `--set` overrides; see the module docstring."""
    from raydemand import cli

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    command = STAGES[stage]
    parser = argparse.ArgumentParser(prog=f"jobs/{stage}.py",
                                     description=f"`raydemand {' '.join(command)}` as a job, flags from a YAML")
    parser.add_argument("--config", required=True, metavar="YAML", help=f"e.g. jobs/configs/{stage}.yaml")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override one key of the YAML, e.g. --set out=runs/x (repeatable)")
    parser.add_argument("--check", action="store_true",
                        help="validate the stage's config and inputs without running it (nothing is copied "
                             "from or to storage URIs)")
    args = parser.parse_args(argv)
    if args.check:
        return cli.run_command(lambda: cli.main(command + to_argv(load_spec(args.config, args.overrides)) +
                                                ["--check"]))

    uploads: dict[str, Path] = {}

    def run() -> int:
        spec, to_upload = stage_locally(load_spec(args.config, args.overrides))
        uploads.update(to_upload)
        print(f"{stage}: raydemand {' '.join(command + to_argv(spec))}", flush=True)
        return cli.main(command + to_argv(spec))

    code = cli.run_command(run)
    for uri, local in uploads.items():
        if local.exists():  # a failed stage still uploads its checkpoints, so a retry resumes
            upload(local, uri)
            print(f"{stage}: uploaded {local} -> {uri}", flush=True)
    return code


if __name__ == "__main__":  # python -m raydemand.jobs STAGE --config ...
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
