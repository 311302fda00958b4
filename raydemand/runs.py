"""The run folder: the one contract between train, tune, serve, the jobs and the demo.

Every family's `train` writes a run folder through this module, and every reader (predict, evaluate,
tune, serve, the demo) asks this module rather than naming a file of its own:

    RUN_DIR/
      config.yaml    the resolved config, written when training starts (a resumed run must match it)
      ray_train/     Ray Train's storage: one `epoch_NNNN/state.pt` checkpoint per epoch
      model.pt       {"family", "format", "config", "state"}: the chosen model (torch.load weights_only)
      metrics.json   the run's record (history, chosen epoch, validation metrics)
      COMPLETE       written last: the run finished; readers refuse a folder without it

`model.pt`'s `state` is the family's own dict (weights as tensors, plain values). Run folders written
before this layout (a `kind` key for GAN and scorer files, `format: 2` for forecast files, neither for
basket files; no COMPLETE marker) still load: `read_model` recognises them and treats them as finished.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raydemand.errors import InputError

FORMAT = 1  # the layout of model.pt written here; 0 stands for the layouts written before it
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
MARKER = "COMPLETE"
STORAGE_NAME = "ray_train"

# Each family: what people call its run folder, and the command that makes one.
FAMILIES = {
    "forecast": ("forecast", "raydemand forecast train"),
    "basket": ("basket", "raydemand basket train"),
    "gan": ("GAN", "raydemand design train"),
    "scorer": ("preference scorer", "raydemand design train-scorer"),
}
# What only a run folder holds: `--overwrite` deletes a folder only when it has one of these.
RUN_ENTRIES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, MARKER, STORAGE_NAME)


@dataclass
class ModelFile:
    """A run's model.pt, read: the family, the layout it was written in, the config and the family's state."""

    family: str
    format: int
    config: dict[str, Any]
    state: dict[str, Any]
    path: Path


def needs(family: str) -> str:
    """'a forecast run folder (`raydemand forecast train --out RUN_DIR`)': what to pass where a family's run is needed."""
    what, command = FAMILIES[family]
    return f"a {what} run directory (`{command} --out RUN_DIR`)"


# ---- paths --------------------------------------------------------------------------------------


def storage_dir(run_dir: str | Path) -> Path:
    """Ray Train's storage folder inside RUN_DIR."""
    return Path(run_dir) / STORAGE_NAME


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}"


def checkpoint_dir(run_dir: str | Path, epoch: int) -> Path:
    """The folder of the checkpoint Ray Train kept for `epoch` (it may have been pruned)."""
    return storage_dir(run_dir) / checkpoint_name(epoch)


# ---- writing ------------------------------------------------------------------------------------


def holds_run(run_dir: str | Path) -> bool:
    """True when RUN_DIR has any file or folder that only a run folder has."""
    return any((Path(run_dir) / name).exists() for name in RUN_ENTRIES)


def start_run(run_dir: str | Path, config, *, overwrite: bool = False,
              may_change: tuple[str, ...] = ("epochs", "train")) -> Path:
    """Create RUN_DIR for training with `config` and write its config.yaml before any training.

    A finished run is refused unless `overwrite`, which deletes the folder -- but only a folder that
    holds a run: `--out` naming a folder of other files is an error, never a deletion. An unfinished
    run (config.yaml written, no COMPLETE marker) is kept so that training resumes from its
    checkpoints, and when it has checkpoints `config` must be the one it started with, except the
    keys in `may_change`.
    """
    import yaml

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"{run_dir}: is a file, not a run directory")
    is_run = run_dir.exists() and holds_run(run_dir)
    if run_dir.exists() and not is_run and any(run_dir.iterdir()):
        raise InputError(f"{run_dir}: is a folder of other files, not a run directory; pass an empty or new folder")
    if overwrite and is_run:
        shutil.rmtree(run_dir)
    elif is_complete(run_dir):
        raise FileExistsError(f"{run_dir}: already holds a finished run (pass --overwrite to replace it)")
    saved = run_dir / CONFIG_FILE
    now = config.model_dump(mode="json")
    if saved.is_file() and storage_dir(run_dir).exists():  # checkpoints to resume from: the config must match
        before = yaml.safe_load(saved.read_text()) or {}
        changed = [k for k in now if k not in may_change and before.get(k) != now[k]]
        if changed:
            raise InputError(f"{run_dir}: holds an unfinished run started with other settings ({', '.join(changed)} "
                             f"differ from {saved}); pass --overwrite to start over, or the same config to resume")
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(saved)
    return run_dir


def write_model(run_dir: str | Path, family: str, config, state: dict[str, Any]) -> Path:
    """RUN_DIR/model.pt in the one layout, written atomically. `config`: the run's Config (or its dict)."""
    import torch

    from raydemand.io import atomic_path

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    config = config if isinstance(config, dict) else config.model_dump(mode="json")
    path = Path(run_dir) / MODEL_FILE
    with atomic_path(path) as tmp:
        torch.save({"family": family, "format": FORMAT, "config": config, "state": state}, tmp)
    return path


def finish_run(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write metrics.json, then the COMPLETE marker last: from then on the run is finished."""
    import json

    from raydemand.io import atomic_write

    run_dir = Path(run_dir)
    if not (run_dir / MODEL_FILE).is_file():
        raise RuntimeError(f"{run_dir}: finish_run before write_model")
    with atomic_write(run_dir / METRICS_FILE, "w") as f:
        json.dump(metrics, f, indent=2, default=float)
    with atomic_write(run_dir / MARKER, "w") as f:
        f.write(f"{MODEL_FILE} {model_digest(run_dir)}\n")
    return run_dir


# ---- reading ------------------------------------------------------------------------------------


def _legacy(content: dict[str, Any], path: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(family, config, state) of a model.pt written before FORMAT 1."""
    import yaml

    if content.get("kind") in ("gan", "scorer"):
        family = content["kind"]
    elif "forecaster" in content and "pool" in content:
        family = "forecast"
        if content.get("format") != 2:
            raise InputError(f"{path}: written by an older raydemand (forecast format {content.get('format')}, "
                             "this one reads 2 and later); train it again")
    elif "vocab" in content and "threshold" in content:
        family = "basket"
    else:
        raise InputError(f"{path}: not a model file of any raydemand family (keys: {sorted(content)[:8]})")
    config = content.get("config")
    if config is None and (path.parent / CONFIG_FILE).is_file():
        config = yaml.safe_load((path.parent / CONFIG_FILE).read_text())
    state = {k: v for k, v in content.items() if k not in ("kind", "format", "config")}
    return family, config or {}, state


def read_model(run_dir: str | Path, family: str | None = None, *, finished: bool = True) -> ModelFile:
    """RUN_DIR/model.pt (weights only), checked: the run finished, and it is of `family` when given.
    `finished=False` is for the train stage itself, reading back the model it wrote before it
    writes what the run needs last (e.g. a GAN's sample grid)."""
    import torch

    run_dir = Path(run_dir)
    path = run_dir / MODEL_FILE
    wanted = needs(family) if family else "a run directory of `raydemand forecast|basket|design train`"
    if not path.is_file():
        raise InputError(f"{run_dir}: not a finished run directory (no {MODEL_FILE}); pass {wanted}")
    content = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(content, dict):
        raise InputError(f"{path}: not a raydemand model file")
    if "family" in content:
        if finished and not (run_dir / MARKER).is_file():
            raise InputError(f"{run_dir}: holds an unfinished run (no {MARKER} marker: training stopped before "
                             f"it ended); run the same train command with --out {run_dir} to resume it")
        if content.get("format", 0) > FORMAT:
            raise InputError(f"{path}: written by a newer raydemand (format {content['format']}; this one reads "
                             f"up to {FORMAT})")
        found, config, state, fmt = content["family"], content["config"], content["state"], int(content["format"])
    else:
        (found, config, state), fmt = _legacy(content, path), 0
    if family is not None and found != family:
        raise InputError(f"{run_dir}: holds a {FAMILIES[found][0]} run, not {wanted}")
    return ModelFile(found, fmt, config, state, path)


def run_family(run_dir: str | Path) -> str:
    """'forecast' | 'basket' | 'gan' | 'scorer', as model.pt records it."""
    return read_model(run_dir).family


def is_complete(run_dir: str | Path) -> bool:
    """True when RUN_DIR holds a finished run: its COMPLETE marker, or a model.pt of an older layout
    (those were written last, after metrics.json)."""
    import torch

    run_dir = Path(run_dir)
    if (run_dir / MARKER).is_file():
        return True
    path = run_dir / MODEL_FILE
    if not path.is_file():
        return False
    content = torch.load(path, map_location="cpu", weights_only=True)
    return isinstance(content, dict) and "family" not in content


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """RUN_DIR/metrics.json of a finished run."""
    import json

    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise InputError(f"{run_dir}: has no {METRICS_FILE} (not a finished run directory)")
    return json.loads(path.read_text())


def model_digest(run_dir: str | Path) -> str:
    """The SHA-256 of RUN_DIR/model.pt (hex)."""
    digest = hashlib.sha256()
    with open(Path(run_dir) / MODEL_FILE, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_version(run_dir: str | Path) -> str:
    """'<run folder name>@<first 12 hex digits of model.pt's SHA-256>': changes whenever the model does."""
    return f"{Path(run_dir).resolve().name}@{model_digest(run_dir)[:12]}"
