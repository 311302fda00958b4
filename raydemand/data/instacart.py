"""Reader for the real Instacart Market Basket Analysis folder (the Kaggle release).

orders.csv holds one row per order (user, order number, eval_set, time context);
order_products__prior.csv and order_products__train.csv hold the lines of prior and train orders
(test orders have none). The orders contract is their join, with `eval_set` kept as a column.

The real folder is large (3.4M orders, 33.8M lines), so files are parsed by pyarrow and held in
compact dtypes, and every check is vectorised. Problems are reported against the file and row
they come from; by the time the joined table is returned, everything that could fail row-wise
has been checked here, where the real file is known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from raydemand.data.schema import ORDER_CONTEXT_RANGES
from raydemand.data.sources import Layout, register_layout
from raydemand.errors import InputError, TableError

ORDERS = "orders.csv"
PRIOR = "order_products__prior.csv"
TRAIN = "order_products__train.csv"
EVAL_SETS = ("prior", "train", "test")
# column -> dtype it is held in. Real values fit: ids < 2^31, order_number <= 100,
# add_to_cart_order in the low hundreds; a column whose values do not fit stays int64.
ORDER_DTYPES = {"order_id": "int32", "user_id": "int32", "eval_set": "category", "order_number": "int16",
                "order_dow": "int8", "order_hour_of_day": "int8", "days_since_prior_order": "float32"}
ARROW_TYPES = {"int32": pa.int32(), "int16": pa.int16(), "int8": pa.int8(), "float32": pa.float32(),
               "category": pa.dictionary(pa.int32(), pa.string())}
LINE_DTYPES = {"order_id": "int32", "product_id": "int32", "add_to_cart_order": "int16", "reordered": "int8"}
CATALOGUE = {"products.csv": ["product_id", "product_name", "aisle_id", "department_id"],
             "aisles.csv": ["aisle_id", "aisle"], "departments.csv": ["department_id", "department"]}
OUTPUT = ["user_id", "order_id", "order_number", "product_id", "days_since_prior_order", "order_dow",
          "order_hour_of_day", "add_to_cart_order", "reordered", "eval_set"]


def _bad(path: Path, column: str, pos: int, message: str, value=None):
    raise TableError(path, message, column=column, row=pos + 1, value=value)


def _compact(path: Path, raw: pd.Series, dtype: str) -> pd.Series:
    """`raw` (as pyarrow read it) in `dtype`; the first value that cannot be is an error."""
    if dtype == "category":
        return raw.astype("category")
    values = pd.to_numeric(raw, errors="coerce")
    if dtype.startswith("float"):
        if (pos := np.flatnonzero(values.isna() & raw.notna())).size:
            _bad(path, raw.name, pos[0], "not a number", raw.iloc[pos[0]])
        return values.astype(dtype)
    if not pd.api.types.is_integer_dtype(values):
        bad = values.isna() | (values != np.floor(values))
        pos = int(np.flatnonzero(bad)[0])
        _bad(path, raw.name, pos, "missing value" if pd.isna(raw.iloc[pos]) else "not an integer", raw.iloc[pos])
    info = np.iinfo(dtype)
    fits = values.empty or (info.min <= values.min() and values.max() <= info.max)
    return values.astype(dtype if fits else "int64")


def _read(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns
    missing = [c for c in dtypes if c not in header]
    if missing:
        raise TableError(path, f"missing column(s) {missing}; the file has {list(header)}", column=missing[0])
    # Typed parsing is 4x faster than letting pyarrow infer types (33M lines: ~5 s, not ~20 s).
    types = {c: ARROW_TYPES[t] for c, t in dtypes.items()}
    options = pacsv.ConvertOptions(column_types=types, include_columns=list(dtypes))
    try:
        df = pacsv.read_csv(path, convert_options=options).to_pandas()
    except pa.ArrowInvalid:
        # A value that does not parse as its compact type: read untyped to find and name it.
        try:
            df = pd.read_csv(path, engine="pyarrow", usecols=list(dtypes))
        except ValueError as e:  # pyarrow's parse errors (wrong field count, bad quoting) say where
            raise TableError(path, f"not a readable CSV: {e}") from e
    df = pd.DataFrame({c: _compact(path, df[c], t) for c, t in dtypes.items()})
    for col, (lo, hi) in ORDER_CONTEXT_RANGES.items():
        if col in df:
            values = df[col]
            outside = (values < lo) | ((values > hi) if hi is not None else False)
            if (pos := np.flatnonzero(outside)).size:
                bounds = f"{lo}..{hi}" if hi is not None else f">= {lo}"
                _bad(path, col, pos[0], f"out of range ({bounds})", values.iloc[pos[0]])
    return df


def _first_duplicate(*keys: pd.Series) -> int | None:
    """Position of the first row whose key (one or more integer columns) appeared before."""
    key = np.zeros(len(keys[0]), dtype=np.int64)
    for k in keys:  # one int64 per row, exact while the product of the columns' ranges fits
        values = k.to_numpy().astype(np.int64)
        low = int(values.min()) if values.size else 0
        key = key * (int(values.max()) - low + 1 if values.size else 1) + (values - low)
    # Sorting finds repeated keys ~10x faster than hashing 33M of them; only those are then located.
    ordered = np.sort(key)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not repeated.size:
        return None
    candidates = np.flatnonzero(np.isin(key, repeated))
    return int(candidates[pd.Series(key[candidates]).duplicated().to_numpy()][0])


def _read_order_table(path: Path) -> pd.DataFrame:
    orders = _read(path, ORDER_DTYPES)
    if (pos := np.flatnonzero(orders["order_number"] < 1)).size:
        _bad(path, "order_number", pos[0], "order numbers start at 1", orders["order_number"].iloc[pos[0]])
    if (pos := np.flatnonzero(~orders["eval_set"].isin(EVAL_SETS))).size:
        _bad(path, "eval_set", pos[0], f"not one of {EVAL_SETS}", orders["eval_set"].iloc[pos[0]])
    if (pos := _first_duplicate(orders["order_id"])) is not None:
        _bad(path, "order_id", pos, "duplicate order_id", orders["order_id"].iloc[pos])
    if (pos := _first_duplicate(orders["user_id"], orders["order_number"])) is not None:
        _bad(path, "order_number", pos, "the user has another order with this order_number",
             (orders["user_id"].iloc[pos], orders["order_number"].iloc[pos]))
    return orders


def _read_lines(path: Path, orders: pd.DataFrame, index: pd.Index, part: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The lines of one order_products file and, per line, the row of its order in orders.csv."""
    lines = _read(path, LINE_DTYPES)
    at = index.get_indexer(lines["order_id"])
    if (pos := np.flatnonzero(at < 0)).size:
        _bad(path, "order_id", pos[0], f"order not in {ORDERS}", lines["order_id"].iloc[pos[0]])
    if (pos := np.flatnonzero(~(orders["eval_set"] == part).to_numpy()[at])).size:
        _bad(path, "order_id", pos[0], f"a {orders['eval_set'].iloc[at[pos[0]]]} order in {ORDERS}, not a {part} order",
             lines["order_id"].iloc[pos[0]])
    if (pos := _first_duplicate(lines["order_id"], lines["product_id"])) is not None:
        _bad(path, "product_id", pos, "the product appears twice in the same order",
             (lines["order_id"].iloc[pos], lines["product_id"].iloc[pos]))
    return lines, at


def read_orders(folder: str | Path, split: str | None) -> tuple[pd.DataFrame, Path]:
    """The orders contract: every prior and train line joined with its order (test orders have no lines)."""
    if split is not None:
        raise InputError(f"{folder}: an Instacart folder has no '{split}' split to pick: its eval_set "
                         "(prior/train/test) is kept as a column of the orders table instead")
    folder = Path(folder)
    orders = _read_order_table(folder / ORDERS)
    index = pd.Index(orders["order_id"])
    parts = [(folder / PRIOR, "prior")] + ([(folder / TRAIN, "train")] if (folder / TRAIN).exists() else [])
    read = [_read_lines(path, orders, index, part) for path, part in parts]
    at = np.concatenate([a for _, a in read])
    columns = {}
    for col in OUTPUT:
        if col in LINE_DTYPES:
            columns[col] = np.concatenate([lines[col].to_numpy() for lines, _ in read])
        else:
            columns[col] = orders[col].take(at).reset_index(drop=True)
    # Lines keep the files' order (prior, then train): row n of the table is row n of the prior file.
    return pd.DataFrame(columns), folder / PRIOR


def read_catalogue(folder: str | Path) -> pd.DataFrame:
    """products.csv with the names of its aisles and departments: product_id, product_name,
    aisle_id, aisle, department_id, department."""
    folder = Path(folder)
    tables = {}
    for file, columns in CATALOGUE.items():
        tables[file] = pd.read_csv(folder / file, dtype={c: "string" for c in ("product_name", "aisle", "department")})
        if missing := [c for c in columns if c not in tables[file].columns]:
            raise TableError(folder / file, f"missing column(s) {missing}", column=missing[0])
    products = out = tables["products.csv"]
    for file in ("aisles.csv", "departments.csv"):
        key, name = CATALOGUE[file]
        if (pos := np.flatnonzero(~products[key].isin(tables[file][key]))).size:
            _bad(folder / "products.csv", key, pos[0], f"not in {file}", products[key].iloc[pos[0]])
        out = out.merge(tables[file][[key, name]], on=key, how="left")
    return out[["product_id", "product_name", "aisle_id", "aisle", "department_id", "department"]]


register_layout(Layout("instacart", (ORDERS, PRIOR), orders=read_orders))
