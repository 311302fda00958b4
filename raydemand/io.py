"""Files: atomic writes (temp file or folder, then rename) and table reading by suffix."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

import pandas as pd

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; done once, at import, before any threads write files
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; it replaces `path` only if the block finishes.

    The temp name keeps the target's suffixes, for writers that pick a format from them (Parquet,
    npz, PNG).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes the file owner-only; give it the permissions a plain open() would
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside `path`; it replaces `path` only if the block finishes."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; it becomes `path` only if the block finishes.

    An existing `path` is an error unless `overwrite`, in which case it is replaced as a whole
    after the new folder is complete, so a crash never leaves a mix of old and new files.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_table_file(path: str | Path) -> bool:
    return str(path).lower().endswith(TABLE_SUFFIXES)


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a folder of Parquet files (as Ray Data writes them)."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return pd.read_parquet(path, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path, **kwargs)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, **kwargs)
    raise ValueError(f"{path}: unknown table format (expected one of {', '.join(TABLE_SUFFIXES)})")


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` as CSV or Parquet (by suffix), atomically."""
    path = Path(path)
    name = path.name.lower()
    with atomic_path(path) as tmp:
        if name.endswith((".parquet", ".pq")):
            df.to_parquet(tmp, index=False)
        elif name.endswith((".csv", ".csv.gz")):
            df.to_csv(tmp, index=False)
        else:
            raise ValueError(f"{path}: unknown table format (expected one of {', '.join(TABLE_SUFFIXES)})")
    return path
