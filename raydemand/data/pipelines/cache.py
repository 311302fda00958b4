"""Cache keys: a folder kept across runs is reused only when it was made from the same settings and inputs.

A cached folder holds `_cache_key.json`: the digest of exactly what fixes its content (encoder name,
arguments and weights, how images are read, caption texts, window settings, the identity of the
input files) and those settings in plain JSON, so a rebuilt cache can be explained by a diff. A
folder whose key file is missing or different is never read; it is rebuilt. Settings that change
only speed (batch sizes, concurrency, buckets) are left out of keys, so changing them reuses caches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

KEY_FILE = "_cache_key.json"


def digest(settings: Any) -> str:
    """A stable short hash of JSON-able settings (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_data(path: Path, root: Path) -> bool:
    # '_' and '.' names are metadata (a stage's _summary.json, whose timings change every run) or
    # temp files, not data: counting them would make an unchanged input look new.
    return path.is_file() and not any(part.startswith(("_", ".")) for part in path.relative_to(root).parts)


def file_identity(source: str | Path) -> dict[str, Any]:
    """Path, size and modification time of a file, or of every data file under a folder: a
    rewritten input gets a new identity without its contents being read (33M order lines).

    A name that is not a local path (e.g. `completejourney`, a packaged data set) is its own identity.
    """
    path = Path(str(source))
    if not path.exists():
        return {"source": str(source)}
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if _is_data(f, path))
    stats = [(str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return {"path": str(path.resolve()), "files": len(files), "digest": digest(stats)}


def key_record(settings: dict[str, Any]) -> dict[str, Any]:
    """The content of a `_cache_key.json` for `settings`."""
    return {"key": digest(settings), "settings": json.loads(json.dumps(settings, default=str))}


def is_current(folder: str | Path, settings: dict[str, Any]) -> bool:
    """Whether `folder` was made from exactly `settings` (its key file says so)."""
    path = Path(folder) / KEY_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("key") == digest(settings)
    except (json.JSONDecodeError, AttributeError):
        return False


def mark_current(folder: str | Path, settings: dict[str, Any]) -> None:
    """Record that `folder` (complete now) was made from `settings`; written last and atomically."""
    from raydemand.io import atomic_write

    with atomic_write(Path(folder) / KEY_FILE, "w") as f:
        json.dump(key_record(settings), f, indent=2)
        f.write("\n")
