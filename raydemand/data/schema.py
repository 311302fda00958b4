"""The two table contracts of the SPEC and their validation.

Product/sales table (VISUELLE-compatible): `external_code`, `release_date`, optional attributes,
optional `image_path` (relative to the table's folder), `caption`, `text`, weekly targets `0`..`11`.
Orders table (Instacart-compatible, one row per order line): `user_id`, `order_id`,
`order_number`, `product_id`, optional order context.

Validation reports the first problem as a `TableError` naming file, column and row (data rows
count from 1). Checks are vectorised so that Instacart-size tables (33M lines) validate in seconds.
Unknown extra columns are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raydemand.errors import TableError

HORIZON = 12
TARGET_COLUMNS = [str(i) for i in range(HORIZON)]
PRODUCT_REQUIRED = ["external_code", "release_date"]
PRODUCT_NUMERIC = ["price", "restock", "discount"]
PRODUCT_TEXT = ["caption", "text", "image_path"]
# A product row is one product, or one product in one store where the table has `retail`.
STORE_COLUMN = "retail"

ORDER_REQUIRED = ["user_id", "order_id", "order_number", "product_id"]
# column -> (lowest, highest) allowed; NaN allowed (first orders have no days_since_prior_order).
ORDER_CONTEXT_RANGES = {
    "days_since_prior_order": (0, None),
    "order_dow": (0, 6),
    "order_hour_of_day": (0, 23),
    "add_to_cart_order": (1, None),
    "reordered": (0, 1),
}


def _first(mask: np.ndarray | pd.Series) -> int | None:
    """Position of the first True, or None."""
    idx = np.flatnonzero(np.asarray(mask))
    return int(idx[0]) if idx.size else None


def _fail(path, df: pd.DataFrame, pos: int, column: str, message: str, value=None):
    raise TableError(path, message, column=column, row=pos + 1, value=value)


def _require(path, df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TableError(
            path,
            f"missing required column(s) {missing}; the table has {list(df.columns)[:20]}",
            column=missing[0],
        )


def _numeric(path, df: pd.DataFrame, column: str, *, allow_missing: bool, integer: bool = False) -> pd.Series:
    raw = df[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw  # already numbers: the string checks below cost seconds on 33M lines
    else:
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if (pos := _first(bad)) is not None:
            _fail(path, df, pos, column, "not a number", raw.iloc[pos])
    if not allow_missing and (pos := _first(values.isna())) is not None:
        _fail(path, df, pos, column, "missing value")
    if integer and not pd.api.types.is_integer_dtype(values):
        frac = values.notna() & (values != np.floor(values.fillna(0)))
        if (pos := _first(frac)) is not None:
            _fail(path, df, pos, column, "not an integer", raw.iloc[pos])
    return values


def _ids(path, df: pd.DataFrame, column: str) -> pd.Series:
    """An id column: no missing values; kept as integers when all are integers, else strings."""
    raw = df[column]
    if pd.api.types.is_integer_dtype(raw):
        return raw  # cannot be missing; compact dtypes (int32) are kept to save memory
    if (pos := _first(raw.isna() | (raw.astype(str).str.strip() == ""))) is not None:
        _fail(path, df, pos, column, "missing id")
    as_num = pd.to_numeric(raw, errors="coerce")
    if as_num.notna().all() and (as_num == np.floor(as_num)).all():
        return as_num.astype("int64")
    return raw.astype(str).str.strip()


def validate_products(
    df: pd.DataFrame,
    path: str | Path,
    *,
    require_targets: bool = True,
    base_dir: str | Path | None = None,
    check_images: bool = True,
) -> pd.DataFrame:
    """Check a product/sales table and return it normalised.

    Normalised means: column names are strings; `external_code` is a string; `release_date` is a
    datetime; targets and known numeric attributes are floats; `image_path`, where present, is an
    absolute path ('' where the product has no image). `base_dir` is the folder `image_path` is
    relative to (default: the table's folder).
    """
    df = df.rename(columns=str)
    _require(path, df, PRODUCT_REQUIRED + (TARGET_COLUMNS if require_targets else []))
    out = df.copy(deep=False)  # copy-on-write: columns are only copied where replaced

    code = df["external_code"]
    if (pos := _first(code.isna() | (code.astype(str).str.strip() == ""))) is not None:
        _fail(path, df, pos, "external_code", "missing product id")
    out["external_code"] = code.astype(str).str.strip()

    raw_date = df["release_date"]
    if (pos := _first(raw_date.isna())) is not None:
        _fail(path, df, pos, "release_date", "missing date")
    dates = pd.to_datetime(raw_date.astype(str), format="ISO8601", errors="coerce")
    if (pos := _first(dates.isna())) is not None:
        _fail(path, df, pos, "release_date", "not an ISO date (YYYY-MM-DD)", raw_date.iloc[pos])
    out["release_date"] = dates

    for col in [c for c in TARGET_COLUMNS if c in df.columns]:
        values = _numeric(path, df, col, allow_missing=False)
        if (pos := _first(values < 0)) is not None:
            _fail(path, df, pos, col, "negative sales", values.iloc[pos])
        out[col] = values.astype("float64")

    for col in [c for c in PRODUCT_NUMERIC if c in df.columns]:
        out[col] = _numeric(path, df, col, allow_missing=True).astype("float64")

    key = ["external_code"] + ([STORE_COLUMN] if STORE_COLUMN in df.columns else [])
    dup = out.duplicated(subset=key, keep="first")
    if (pos := _first(dup)) is not None:
        what = " and ".join(key)
        _fail(path, df, pos, key[-1], f"duplicate key: another row has the same {what}",
              tuple(out[key].iloc[pos]))

    for col in [c for c in PRODUCT_TEXT if c in df.columns]:
        out[col] = df[col].fillna("").astype(str)

    if "image_path" in out.columns:
        # Absolute (against the working directory now), so that a table written elsewhere (a cache
        # folder) still points at the images.
        root = (Path(base_dir) if base_dir is not None else Path(path).parent).absolute()
        rel = out["image_path"].str.strip()
        absolute = pd.Series([str(root / p) if p else "" for p in rel], index=out.index)
        if check_images:
            # Product x store rows share one image: look at each file once.
            missing = [p for p in absolute.unique() if p and not Path(p).is_file()]
            if missing:
                pos = _first(absolute.isin(missing))
                _fail(path, df, pos, "image_path", f"image file not found: {absolute.iloc[pos]}", rel.iloc[pos])
        out["image_path"] = absolute
    return out


def validate_orders(df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Check an orders table (one row per order line) and return it normalised.

    Each order belongs to one user and has one order_number; order numbers are unique per user and
    start at 1; a product appears once per order. Ids stay integers when they are integers.
    """
    df = df.rename(columns=str)
    _require(path, df, ORDER_REQUIRED)
    out = df.copy(deep=False)  # copy-on-write: columns are only copied where replaced
    for col in ["user_id", "order_id", "product_id"]:
        out[col] = _ids(path, df, col)
    number = _numeric(path, df, "order_number", allow_missing=False, integer=True)
    if (pos := _first(number < 1)) is not None:
        _fail(path, df, pos, "order_number", "order numbers start at 1", number.iloc[pos])
    out["order_number"] = number if pd.api.types.is_integer_dtype(number) else number.astype("int64")

    for col, (lo, hi) in ORDER_CONTEXT_RANGES.items():
        if col not in df.columns:
            continue
        values = _numeric(path, df, col, allow_missing=True)
        outside = values.notna() & ((values < lo) | ((values > hi) if hi is not None else False))
        if (pos := _first(outside)) is not None:
            bounds = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            _fail(path, df, pos, col, f"out of range ({bounds})", values.iloc[pos])
        out[col] = values

    dup = out.duplicated(subset=["order_id", "product_id"], keep="first")
    if (pos := _first(dup)) is not None:
        _fail(path, df, pos, "product_id", "duplicate key: the product appears twice in the same order",
              (out["order_id"].iloc[pos], out["product_id"].iloc[pos]))

    # One (user, order_number) per order and one order per (user, order_number).
    heads = out[["order_id", "user_id", "order_number"]].drop_duplicates()
    for key, other in ((["order_id"], "user_id and order_number"), (["user_id", "order_number"], "order_id")):
        clash = heads.duplicated(subset=key, keep="first")
        if clash.any():
            bad = heads.loc[clash].iloc[0]
            match = np.ones(len(out), dtype=bool)
            for k in ("order_id", "user_id", "order_number"):
                match &= (out[k] == bad[k]).to_numpy()
            pos = int(np.flatnonzero(match)[0])  # first line of the order that clashes with an earlier one
            what = " and ".join(key)
            _fail(path, df, pos, key[-1], f"the same {what} appears with a different {other}",
                  tuple(bad[key]))
    return out


TREND_DATE = "date"


def validate_trends(df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Check a table of weekly series (Google Trends: VISUELLE's gtrends.csv) and return it normalised.

    The table has a `date` column (ISO dates, one row per week) and one numeric column per series,
    named after the attribute value it follows (a category, colour or fabric); real values are 0..100.
    Normalised: `date` is a datetime, sorted and unique; series are float64, NaN where a cell is empty;
    series names are stripped strings, distinct regardless of case (products name them in any case).
    """
    df = df.rename(columns=lambda c: str(c).strip())
    _require(path, df, [TREND_DATE])
    if df.empty:
        raise TableError(path, "no rows: a trends table needs at least one week", column=TREND_DATE)
    names = [c for c in df.columns if c != TREND_DATE]
    if not names:
        raise TableError(path, f"no series: only a '{TREND_DATE}' column", column=TREND_DATE)
    folded = pd.Series([n.casefold() for n in names])
    if (pos := _first(folded.duplicated())) is not None:
        raise TableError(path, "two series columns have the same name (case aside)", column=names[pos])

    raw = df[TREND_DATE]
    if (pos := _first(raw.isna())) is not None:
        _fail(path, df, pos, TREND_DATE, "missing date")
    dates = pd.to_datetime(raw.astype(str), format="ISO8601", errors="coerce")
    if (pos := _first(dates.isna())) is not None:
        _fail(path, df, pos, TREND_DATE, "not an ISO date (YYYY-MM-DD)", raw.iloc[pos])
    if (pos := _first(dates.duplicated())) is not None:
        _fail(path, df, pos, TREND_DATE, "duplicate date: another row holds the same week", raw.iloc[pos])

    columns = {TREND_DATE: dates.to_numpy()}
    for name in names:
        columns[name] = _numeric(path, df, name, allow_missing=True).astype("float64").to_numpy()
    return pd.DataFrame(columns).sort_values(TREND_DATE, kind="stable").reset_index(drop=True)
