"""Readers for the real VISUELLE folders: v1 (GTM-Transformer) and VISUELLE 2.0.

v1: train.csv / test.csv, one row per product, weekly sales normalised by the scalar in
normalization_scale.npy. VISUELLE 2.0: stfore_train.csv / stfore_test.csv, one row per product
and store (`retail`), weekly sales normalised by stfore_sales_norm_scalar.npy, prices in
price_discount_series.csv. In both, `image_path` is relative to `<folder>/images/`; weekly Google-Trends
series of the category, colour and fabric names are in gtrends.csv (v1) / vis2_gtrends_data.csv (2.0).
Targets stay as stored (normalised); `read_norm_scalar` gives the factor back to units.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from raydemand.data.schema import STORE_COLUMN, TARGET_COLUMNS
from raydemand.data.sources import Layout, TablePart, register_layout
from raydemand.errors import InputError, TableError

log = logging.getLogger(__name__)

V1_FILES = {"train": "train.csv", "test": "test.csv"}
V2_FILES = {"train": "stfore_train.csv", "test": "stfore_test.csv"}
V2_PRICES = "price_discount_series.csv"
TREND_FILES = {"visuelle": "gtrends.csv", "visuelle2": "vis2_gtrends_data.csv"}
SCALAR_FILES = ("stfore_sales_norm_scalar.npy", "normalization_scale.npy")
SPLITS = ("train", "test")


def read_norm_scalar(folder: str | Path) -> float:
    """The factor that turns the stored (normalised) weekly sales back into units."""
    folder = Path(folder)
    for name in SCALAR_FILES:
        path = folder / name
        if path.exists():
            value = np.load(path)
            if value.size != 1:
                raise InputError(f"{path}: expected one number, found an array of shape {value.shape}")
            return float(value.reshape(-1)[0])
    raise FileNotFoundError(f"{folder}: no normalisation scalar (looked for {', '.join(SCALAR_FILES)})")


def _read_csv(path: Path) -> pd.DataFrame:
    # Some copies of these files carry pandas' unnamed index as a first column; it is not data.
    with open(path, encoding="utf-8") as f:
        unnamed_index = f.readline().startswith(",")
    return pd.read_csv(path, index_col=0 if unnamed_index else None).reset_index(drop=True)


def _clip_returns(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """v1 stores returns as small negative sales; the contract counts units sold, so they become 0."""
    numeric = [c for c in TARGET_COLUMNS if c in df.columns and pd.api.types.is_numeric_dtype(df[c])]
    negative = int((df[numeric] < 0).to_numpy().sum())
    if negative:
        log.warning("%s: %d negative weekly sales (returns) clipped to 0", path, negative)
        df[numeric] = df[numeric].clip(lower=0)
    return df


def _read_prices(path: Path) -> pd.DataFrame:
    """`price` per (external_code, retail) from price_discount_series.csv (which has one row per pair)."""
    key = ["external_code", STORE_COLUMN]
    prices = _read_csv(path)
    missing = [c for c in key + ["price"] if c not in prices.columns]
    if missing:
        raise TableError(path, f"missing column(s) {missing}", column=missing[0])
    value = pd.to_numeric(prices["price"], errors="coerce")
    if (bad := np.flatnonzero(value.isna() & prices["price"].notna())).size:
        raise TableError(path, "not a number", column="price", row=int(bad[0]) + 1, value=prices["price"].iloc[bad[0]])
    if (dup := np.flatnonzero(prices.duplicated(subset=key))).size:
        raise TableError(path, "duplicate key: another row has the same external_code and retail",
                         column=STORE_COLUMN, row=int(dup[0]) + 1)
    return prices[key].astype(str).assign(price=value)


def _join_prices(df: pd.DataFrame, prices: pd.DataFrame | None) -> pd.DataFrame:
    if prices is None or "price" in df.columns or STORE_COLUMN not in df.columns:
        return df
    # Keys compared as text: the two files need not be read with the same dtypes.
    key = df[["external_code", STORE_COLUMN]].astype(str)
    price = key.merge(prices, how="left", on=["external_code", STORE_COLUMN])["price"]
    return df.assign(price=price.to_numpy())


def _read_split_files(folder: Path, split: str | None, files: dict[str, str], *, clip_returns: bool,
                      prices: pd.DataFrame | None) -> list[TablePart]:
    """The train and/or test file of a layout, one part each; load_products validates them."""
    if split is not None and split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS} or None, got {split!r}")
    parts = []
    for name in ([split] if split else SPLITS):
        path = folder / files[name]
        df = _read_csv(path)
        if clip_returns:
            df = _clip_returns(df, path)
        parts.append(TablePart(_join_prices(df, prices).assign(split=name), path, folder / "images"))
    return parts


def read_visuelle2(folder: Path, split: str | None) -> list[TablePart]:
    prices_file = folder / V2_PRICES
    prices = _read_prices(prices_file) if prices_file.exists() else None
    return _read_split_files(folder, split, V2_FILES, clip_returns=False, prices=prices)


def read_visuelle1(folder: Path, split: str | None) -> list[TablePart]:
    return _read_split_files(folder, split, V1_FILES, clip_returns=True, prices=None)


def _trends_reader(name: str):
    def read(folder: Path) -> tuple[pd.DataFrame, Path] | None:
        path = folder / TREND_FILES[name]
        return (_read_csv(path), path) if path.exists() else None

    return read


register_layout(Layout("visuelle2", marker_files=tuple(V2_FILES.values()), products=read_visuelle2,
                       trends=_trends_reader("visuelle2")))
register_layout(Layout("visuelle", marker_files=(*V1_FILES.values(), TREND_FILES["visuelle"]), products=read_visuelle1,
                       trends=_trends_reader("visuelle")))
