"""Order-history windows: for each target order of a user, the products of the orders before it.

One output row per window: `user_id`, `order_id`, `order_number` (the target's), `n_history`,
`history` (the last `n_orders` earlier orders, oldest -> newest, each a list of product ids in
cart order), `target` (the target order's products) and the target's context columns where the
table has them. `build_windows` is the whole computation for any set of complete users, in
numpy/pyarrow; the Ray pipeline only decides which users meet in one call.

Scaling to Instacart size (33M lines): a CSV/Parquet file is read by Ray Data in blocks and never
held whole by the driver. Its first lines are validated against the orders contract up front, in
the driver, so that a wrong file or column fails at once with the exact row; every block is then
validated in parallel with the same contract (rows there can only be named by user and order,
since a block does not know where it starts). Users are hashed into `buckets`; a hash shuffle
groups each bucket's lines, and `build_windows` runs once per bucket, vectorised over its users,
instead of once per user (200k Python calls on Instacart). Consistency across a user's lines that
one block cannot see (one order id per order number, a product once per order) is checked there.
A real-layout folder (several files joined by its reader) is loaded and validated in the driver.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from raydemand.config import Config
from raydemand.data.pipelines.stage_io import (
    parquet_files,
    parquet_rows,
    read_parquet,
    table_blocks,
    write_dataset,
    write_metadata,
)
from raydemand.data.schema import ORDER_REQUIRED, validate_orders
from raydemand.errors import InputError, TableError
from raydemand.io import atomic_dir, is_table_file

ID_COLUMNS = ["user_id", "order_id", "product_id"]
CONTEXT = ["days_since_prior_order", "order_dow", "order_hour_of_day"]
# What a window needs of an order line; other columns are not read.
LINE_COLUMNS = ORDER_REQUIRED + ["add_to_cart_order"] + CONTEXT
HEAD_LINES = 1000
LINES_PER_BUCKET = 250_000


class WindowsConfig(Config):
    n_orders: int = Field(5, ge=1)  # earlier orders per window, oldest -> newest (the seed's N_ORDERS)
    # all: every order with at least min_history earlier orders; last: each user's last order only
    # (the held-out target); next: one row per user, its last n_orders as history and an empty
    # target (the input for predicting the next order).
    targets: Literal["all", "last", "next"] = "all"
    min_history: int = Field(1, ge=0)  # all/last: fewest earlier orders a target needs
    # Users are hashed into buckets and each bucket is windowed in one call. None: one bucket per
    # ~250k lines (estimated from the table: ~135 for Instacart's 33M), at least two per CPU.
    # Each bucket is a shuffle partition and a Ray task (~50 ms of overhead on a small machine),
    # so thousands of tiny buckets cost more than the windows themselves.
    buckets: int | None = Field(None, ge=1)


# ---- the computation, without Ray -----------------------------------------------------------


def _arrow(values: np.ndarray):
    import pyarrow as pa

    return pa.array(values, type=pa.string() if values.dtype == object else None)


def _at(df: pd.DataFrame, i: int, column: str):
    """A plain Python value (11, not np.int64(11)) for messages."""
    return df[column].iloc[i:i + 1].tolist()[0] if column in df.columns else None


def _check_users(df: pd.DataFrame, starts: np.ndarray, source: str) -> None:
    """Per-user consistency a block-wise check cannot see: one order id per (user, order number),
    one order number per order id, a product once per order."""
    oid = df["order_id"].to_numpy()
    lengths = np.diff(np.append(starts, len(df)))
    if (bad := np.flatnonzero(oid != np.repeat(oid[starts], lengths))).size:
        i = int(bad[0])
        raise InputError(f"{source}, column 'order_id': user {_at(df, i, 'user_id')!r} has two orders with "
                         f"order_number {_at(df, i, 'order_number')} ({_at(df, i, 'order_id')!r} and another)")
    heads = df.iloc[starts].reset_index(drop=True)
    if (clash := np.flatnonzero(heads.duplicated(["user_id", "order_id"]))).size:
        i = int(clash[0])
        raise InputError(f"{source}, column 'order_number': order {_at(heads, i, 'order_id')!r} of user "
                         f"{_at(heads, i, 'user_id')!r} appears with two order numbers")
    if (dup := np.flatnonzero(df.duplicated(["user_id", "order_number", "product_id"]))).size:
        i = int(dup[0])
        raise InputError(f"{source}, column 'product_id': product {_at(df, i, 'product_id')!r} appears twice in "
                         f"order {_at(df, i, 'order_id')!r}")


def build_windows(lines: pd.DataFrame, cfg: WindowsConfig, source: str = "orders") -> Any:
    """Windows of every user in `lines` (which holds all lines of each of its users): a pyarrow Table.

    Products within an order keep cart order (`add_to_cart_order`, else product id order).
    """
    import pyarrow as pa

    within = "add_to_cart_order" if "add_to_cart_order" in lines.columns else "product_id"
    df = lines.sort_values(["user_id", "order_number", within], kind="stable", ignore_index=True)
    user, number = df["user_id"].to_numpy(), df["order_number"].to_numpy()
    new_order = np.ones(len(df), dtype=bool)
    new_order[1:] = (user[1:] != user[:-1]) | (number[1:] != number[:-1])
    starts = np.flatnonzero(new_order)  # first line of each order, orders sorted by (user, number)
    _check_users(df, starts, source)
    offsets = np.append(starts, len(df)).astype(np.int32)
    products = pa.ListArray.from_arrays(pa.array(offsets), _arrow(df["product_id"].to_numpy()))  # one list per order

    n = len(starts)
    o_user, o_number, o_id = user[starts], number[starts], df["order_id"].to_numpy()[starts]
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = o_user[1:] != o_user[:-1]
    first = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))  # each order's user's first order
    earlier = np.arange(n) - first  # orders the user placed before this one
    is_last = np.append(new_user[1:], True)

    if cfg.targets == "next":
        target = np.flatnonzero(is_last)
        end = target + 1  # the history runs up to and including the last order
    else:
        ok = earlier >= cfg.min_history
        target = np.flatnonzero(ok & is_last if cfg.targets == "last" else ok)
        end = target  # strictly before the target: no leakage
    begin = np.maximum(first[target], end - cfg.n_orders)
    n_history = end - begin
    h_offsets = np.concatenate([[0], np.cumsum(n_history)]).astype(np.int32)
    # Flat indices of the history orders: begin, begin+1, ..., end-1 for every window in turn.
    h_index = np.arange(h_offsets[-1]) - np.repeat(h_offsets[:-1], n_history) + np.repeat(begin, n_history)
    history = pa.ListArray.from_arrays(pa.array(h_offsets), products.take(pa.array(h_index, type=pa.int64())))

    columns: dict[str, Any] = {"user_id": _arrow(o_user[target])}
    if cfg.targets == "next":
        k = len(target)
        columns["order_id"] = pa.nulls(k, type=_arrow(o_id[:0]).type)
        columns["order_number"] = pa.array(o_number[target] + 1, type=pa.int64())
        empty = pa.array(np.zeros(k + 1, dtype=np.int32))
        columns |= {"n_history": pa.array(n_history, type=pa.int64()), "history": history,
                    "target": pa.ListArray.from_arrays(empty, _arrow(df["product_id"].to_numpy()[:0]))}
        columns |= {c: pa.nulls(k, type=pa.float64()) for c in CONTEXT if c in df.columns}
    else:
        columns["order_id"] = _arrow(o_id[target])
        columns["order_number"] = pa.array(o_number[target], type=pa.int64())
        columns |= {"n_history": pa.array(n_history, type=pa.int64()), "history": history,
                    "target": products.take(pa.array(target, type=pa.int64()))}
        columns |= {c: pa.array(df[c].to_numpy(dtype=np.float64)[starts[target]]) for c in CONTEXT if c in df.columns}
    return pa.table(columns)


# ---- reading order lines into Ray Data --------------------------------------------------------


def _block_error(e: TableError, block: pd.DataFrame) -> InputError:
    """A contract error found in a block: its row counts from the block start, so name the line
    by user and order instead."""
    message = e.message + (f" (value: {e.value!r})" if e.value is not None else "")
    where = f"{e.path}" + (f", column '{e.column}'" if e.column else "")
    if e.row is not None:
        message += (f" (in the line with user_id {_at(block, e.row - 1, 'user_id')!r}, "
                    f"order_id {_at(block, e.row - 1, 'order_id')!r})")
    return InputError(f"{where}: {message}")


def check_lines(block: pd.DataFrame, source: str, id_types: dict[str, str], buckets: int,
                validate: bool = True) -> pd.DataFrame:
    """Ray Data batch function: validate a block of order lines and add each line's user `bucket`.

    Ids keep the type the first lines of the file gave them (integer or string) in every block,
    so that all blocks share one schema.
    """
    if validate:
        try:
            block = validate_orders(block, source)
        except TableError as e:
            raise _block_error(e, block) from None
    out = block[[c for c in LINE_COLUMNS if c in block.columns]].copy()
    for col, kind in id_types.items():
        if kind == "int64" and not pd.api.types.is_integer_dtype(out[col]):
            bad = out[col][pd.to_numeric(out[col], errors="coerce").isna()].iloc[0]
            raise InputError(f"{source}, column '{col}': ids in the first lines are integers, later ones are not "
                             f"(value: {bad!r})")
        out[col] = out[col].astype(kind)
    out["bucket"] = (pd.util.hash_array(out["user_id"].to_numpy()) % np.uint64(buckets)).astype(np.int64)
    return out


def _head(path: Path) -> pd.DataFrame:
    """The first lines of a CSV or Parquet file (or of the first file of a Parquet folder)."""
    import pyarrow.parquet as pq

    if path.name.lower().endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, nrows=HEAD_LINES)
    first = path if path.is_file() else parquet_files(path)[0]
    batch = next(pq.ParquetFile(first).iter_batches(batch_size=HEAD_LINES), None)
    return batch.to_pandas() if batch is not None else pq.read_schema(first).empty_table().to_pandas()


def _is_plain(path: Path) -> bool:
    """A CSV/Parquet file, or a folder of Parquet files only (as Ray Data writes them)."""
    if path.is_file():
        return is_table_file(path)
    return path.is_dir() and any(path.glob("*.parquet")) and not any(
        is_table_file(p) and p.suffix != ".parquet" for p in path.iterdir())


def _estimate_lines(path: Path) -> int:
    """Lines of a plain table without reading it: Parquet footers, or a CSV's size over the size of
    its first lines (a gzipped CSV is taken to be 4x smaller than its text)."""
    import gzip

    import pyarrow.parquet as pq

    if not path.name.lower().endswith((".csv", ".csv.gz")):
        return sum(pq.ParquetFile(f).metadata.num_rows for f in ([path] if path.is_file() else parquet_files(path)))
    gz = path.name.lower().endswith(".gz")
    with (gzip.open if gz else open)(path, "rb") as f:
        start = f.read(1 << 16)
    per_line = len(start) / max(start.count(b"\n"), 1)
    return int(path.stat().st_size * (4 if gz else 1) / per_line)


def _buckets(cfg: WindowsConfig, lines: int) -> int:
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1
    return cfg.buckets or max(2 * cpus, -(-lines // LINES_PER_BUCKET), 1)


def read_lines(source: str | Path, cfg: WindowsConfig, split: str | None = None):
    """A Ray Dataset of validated order lines with a `bucket` column; the name for errors; the
    number of buckets."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import ray

    from raydemand.data.sources import load_orders

    path = Path(str(source))
    if not _is_plain(path):
        lines = load_orders(source, split=split)
        buckets = _buckets(cfg, len(lines))
        id_types = {c: "int64" if pd.api.types.is_integer_dtype(lines[c]) else "str" for c in ID_COLUMNS}
        lines = lines[[c for c in LINE_COLUMNS if c in lines.columns]]
        ds = ray.data.from_pandas(table_blocks(lines, LINES_PER_BUCKET))
        return ds.map_batches(check_lines, batch_format="pandas", fn_kwargs={
            "source": str(source), "id_types": id_types, "buckets": buckets, "validate": False}), str(source), buckets
    if split is not None:
        raise InputError(f"{source}: a split applies to real-layout folders only, not to a plain table")
    head = validate_orders(_head(path), path)  # exact rows for problems in the first lines
    buckets = _buckets(cfg, _estimate_lines(path))
    columns = [c for c in LINE_COLUMNS if c in head.columns]
    id_types = {c: "int64" if pd.api.types.is_integer_dtype(head[c]) else "str" for c in ID_COLUMNS}
    if path.is_file() and path.name.lower().endswith((".csv", ".csv.gz")):
        types = {c: pa.int64() if id_types.get(c) == "int64" else pa.string() if c in id_types else pa.float64()
                 for c in columns}
        ds = ray.data.read_csv(str(path), convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types=types))
    else:
        ds = read_parquet(path, columns=columns)  # the V1 reader (see stage_io.read_parquet)
    return ds.map_batches(check_lines, batch_format="pandas", fn_kwargs={
        "source": str(path), "id_types": id_types, "buckets": buckets}), str(path), buckets


def _windows_of_bucket(lines: pd.DataFrame, cfg: WindowsConfig, source: str):
    return build_windows(lines.drop(columns="bucket"), cfg, source)


def windows_dataset(source: str | Path, cfg: WindowsConfig, split: str | None = None):
    """The lazy Ray Dataset of windows: read and check lines, group by user bucket, window each bucket."""
    lines, name, buckets = read_lines(source, cfg, split)
    return lines.groupby("bucket", num_partitions=buckets).map_groups(
        _windows_of_bucket, batch_format="pandas", fn_kwargs={"cfg": cfg, "source": name})


def cache_settings(cfg: WindowsConfig, inputs: Any) -> dict[str, Any]:
    """What fixes a windows folder: the window settings and `inputs`, the identity of the order
    lines (`cache.file_identity`); `buckets` changes only how the work is split."""
    return {"windows": cfg.model_dump(mode="json", exclude={"buckets"}), "orders": inputs}


def run(source: str | Path, out: str | Path, cfg: WindowsConfig | None = None, *, split: str | None = None,
        overwrite: bool = False) -> dict[str, Any]:
    """Build the windows of every user of `source` into Parquet files in `out` (written atomically)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    cfg = cfg or WindowsConfig()
    start = time.perf_counter()
    ds = windows_dataset(source, cfg, split)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_dataset(ds, tmp)
        chunks = [c for f in parquet_files(tmp) for c in pq.read_table(f, columns=["user_id"])["user_id"].chunks]
        users = pc.count_distinct(pa.chunked_array(chunks)).as_py() if chunks else 0
        summary = {"source": str(source), "out": str(out), "windows": parquet_rows(tmp), "users": users,
                   "targets": cfg.targets, "n_orders": cfg.n_orders, "min_history": cfg.min_history,
                   "seconds": round(time.perf_counter() - start, 2)}
        write_metadata(tmp, cfg, summary)
    return summary
