"""How the pipeline stages get rows into Ray Data and Parquet out of it.

Every stage writes a folder of Parquet files plus `_config.yaml` and `_summary.json`. The leading
'_' keeps Parquet readers (pandas, pyarrow, Ray Data) from taking the metadata files for data
files, so `pd.read_parquet(out)` and `ray.data.read_parquet(out)` read the folder as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from raydemand.config import Config
from raydemand.errors import InputError

# Float vectors and tensors never repeat: trying a dictionary encoding first doubles the write time.
FLOAT_PARQUET_ARGS = {"use_dictionary": False}
# Ray Data appends its retry advice to the message of an exception raised in a task.
_RAY_RETRY_NOTE = "\nFailed to apply UDF transform"


def table_blocks(table: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """One block per task-sized batch, so that Ray Data can spread a small table over all cores."""
    return [table.iloc[i:i + rows].reset_index(drop=True) for i in range(0, max(len(table), 1), rows)]


def write_dataset(ds, folder: Path, **parquet_args) -> None:
    """Execute `ds` into Parquet files in `folder`; `parquet_args` go to pyarrow's writer.

    Our own input errors raised inside Ray tasks (an undecodable image, a bad order line) come back
    as an `InputError` with their message (file, column), not as a Ray traceback.
    """
    from ray.exceptions import RayTaskError

    ds.context.raise_original_map_exception = True
    try:
        ds.write_parquet(str(folder), **parquet_args)
    except RayTaskError as e:
        if isinstance(e.cause, InputError):
            raise InputError(str(e.cause).split(_RAY_RETRY_NOTE)[0]) from None
        raise


def parquet_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob("*.parquet"))


def parquet_rows(folder: str | Path) -> int:
    """Rows written to a folder of Parquet files, read from the file footers."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(folder))


def write_metadata(folder: Path, cfg: Config, summary: dict[str, Any], **extra: dict[str, Any]) -> None:
    """`_config.yaml` (the resolved config), `_summary.json`, and one `_<name>.json` per `extra`."""
    cfg.save(folder / "_config.yaml")
    for name, content in {"summary": summary, **extra}.items():
        (folder / f"_{name}.json").write_text(json.dumps(content, indent=2, default=str) + "\n")


def read_parquet(path, **kwargs):
    """`ray.data.read_parquet` through the V1 reader.

    Ray 2.60's V2 Parquet reader starts 32 footer-reading actors for every read: ~6 s on a 2-core
    machine, whatever the size of the table. The V1 reader plans from the footers directly; the
    switch is read when the read is planned, so it is restored at once.
    """
    import ray

    context = ray.data.DataContext.get_current()
    v2, context.use_datasource_v2 = context.use_datasource_v2, False
    try:
        return ray.data.read_parquet(str(path), **kwargs)
    finally:
        context.use_datasource_v2 = v2
