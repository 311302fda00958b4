"""The two table contracts: every kind of bad table is reported with file, column and first bad row."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from raydemand.data.schema import TARGET_COLUMNS, validate_orders, validate_products
from raydemand.data.sources import load_orders, load_products
from raydemand.errors import InputError, TableError


def products(n=3, **columns):
    df = pd.DataFrame({"external_code": [f"p{i}" for i in range(n)],
                       "release_date": ["2019-01-07", "2019-02-04", "2019-03-04"][:n],
                       "category": ["dress", "coat", "shirt"][:n]})
    for t in TARGET_COLUMNS:
        df[t] = np.arange(n, dtype=float)
    for name, values in columns.items():
        df[name] = values
    return df


def orders():
    return pd.DataFrame({"user_id": [1, 1, 1, 2], "order_id": [10, 10, 11, 20], "order_number": [1, 1, 2, 1],
                         "product_id": [5, 6, 5, 7], "days_since_prior_order": [np.nan, np.nan, 7.0, np.nan]})


def test_good_product_table_is_normalised(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "a.png")
    out = validate_products(products(image_path=["img/a.png", "", None], price="1.5"), tmp_path / "t.csv")
    assert out["release_date"].dtype.kind == "M" and out["0"].dtype == np.float64
    assert out["image_path"].tolist() == [str(tmp_path / "img" / "a.png"), "", ""]
    assert out["price"].tolist() == [1.5] * 3 and out["category"].tolist() == ["dress", "coat", "shirt"]


def test_image_paths_are_absolute_for_a_relative_table_path(tmp_path, monkeypatch):
    """A table read through a relative path (`raydemand demo`'s default runs/demo) gets absolute image
    paths, which stay right when the table is copied into a cache folder elsewhere."""
    (tmp_path / "data" / "img").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "data" / "img" / "a.png")
    monkeypatch.chdir(tmp_path)
    out = validate_products(products(image_path=["img/a.png", "", None]), Path("data") / "t.csv")
    assert out["image_path"].iloc[0] == str(tmp_path / "data" / "img" / "a.png")


@pytest.mark.parametrize("change, column, row, message", [
    (lambda d: d.drop(columns=["release_date"]), "release_date", None, "missing required column"),
    (lambda d: d.drop(columns=["11"]), "11", None, "missing required column"),
    (lambda d: d.assign(release_date=["2019-01-07", "2019-13-01", "x"]), "release_date", 2, "not an ISO date"),
    (lambda d: d.assign(**{"3": [1.0, "lots", 2.0]}), "3", 2, "not a number"),
    (lambda d: d.assign(**{"5": [1.0, 2.0, -0.5]}), "5", 3, "negative sales"),
    (lambda d: d.assign(**{"0": [1.0, None, 2.0]}), "0", 2, "missing value"),
    (lambda d: d.assign(external_code=["a", "b", "a"]), "external_code", 3, "duplicate key"),
    (lambda d: d.assign(external_code=["a", None, "c"]), "external_code", 2, "missing product id"),
    (lambda d: d.assign(price=["1", "2", "cheap"]), "price", 3, "not a number"),
    (lambda d: d.assign(image_path=["", "nope.png", ""]), "image_path", 2, "image file not found"),
])
def test_bad_product_tables(tmp_path, change, column, row, message):
    with pytest.raises(TableError, match=message) as err:
        validate_products(change(products()), tmp_path / "sales.csv")
    assert (err.value.path, err.value.column, err.value.row) == (str(tmp_path / "sales.csv"), column, row)
    assert str(err.value).startswith(f"{tmp_path / 'sales.csv'}, column '{column}'")


def test_store_rows_are_keyed_by_product_and_store(tmp_path):
    ok = products(3, retail=[1, 2, 1]).assign(external_code=["a", "a", "b"])
    assert len(validate_products(ok, "t.csv")) == 3
    with pytest.raises(TableError, match="same external_code and retail") as err:
        validate_products(ok.assign(retail=[1, 1, 1]), "t.csv")
    assert err.value.row == 2


def test_targets_optional_for_prediction_tables():
    df = products().drop(columns=TARGET_COLUMNS)
    assert len(validate_products(df, "p.csv", require_targets=False)) == 3
    with pytest.raises(TableError, match="missing required column"):
        validate_products(df, "p.csv")


def test_good_orders_table():
    out = validate_orders(orders(), "o.csv")
    assert out["product_id"].dtype == np.int64 and out["order_number"].tolist() == [1, 1, 2, 1]
    string_ids = orders().assign(product_id=["x", "y", "x", "z"])
    assert validate_orders(string_ids, "o.csv")["product_id"].tolist() == ["x", "y", "x", "z"]


@pytest.mark.parametrize("change, column, row, message", [
    (lambda d: d.drop(columns=["order_number"]), "order_number", None, "missing required column"),
    (lambda d: d.assign(order_number=[1, 1, 0, 1]), "order_number", 3, "start at 1"),
    (lambda d: d.assign(order_number=[1, 1, 2.5, 1]), "order_number", 3, "not an integer"),
    (lambda d: d.assign(order_number=["1", "1", "two", "1"]), "order_number", 3, "not a number"),
    (lambda d: d.assign(product_id=[5, None, 5, 7]), "product_id", 2, "missing id"),
    (lambda d: d.assign(product_id=[5, 5, 5, 7]), "product_id", 2, "duplicate key"),
    (lambda d: d.assign(user_id=[1, 2, 1, 2]), "order_id", 2, "different user_id and order_number"),
    (lambda d: d.assign(order_id=[10, 10, 11, 20], order_number=[1, 1, 1, 1]), "order_number", 3,
     "different order_id"),
    (lambda d: d.assign(order_dow=[0, 7, 1, 2]), "order_dow", 2, r"out of range \(0..6\)"),
    (lambda d: d.assign(days_since_prior_order=[np.nan, np.nan, -1, np.nan]), "days_since_prior_order", 3,
     "out of range"),
])
def test_bad_orders_tables(change, column, row, message):
    with pytest.raises(TableError, match=message) as err:
        validate_orders(change(orders()), "orders.parquet")
    assert (err.value.path, err.value.column, err.value.row) == ("orders.parquet", column, row)


def test_tables_load_from_files_and_errors_name_the_file(tmp_path):
    products().to_csv(tmp_path / "p.csv", index=False)
    orders().to_parquet(tmp_path / "o.parquet")
    assert len(load_products(tmp_path / "p.csv")) == 3
    assert len(load_orders(tmp_path / "o.parquet")) == 4
    products().assign(release_date="yesterday").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(TableError, match=r"bad.csv, column 'release_date', row 1: not an ISO date"):
        load_products(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_products(tmp_path / "missing.csv")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a table"):
        load_orders(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no known layout"):
        load_orders(tmp_path / "empty")


def test_cli_reports_a_bad_table_without_a_traceback(tmp_path, capsys):
    from raydemand.cli import main

    products().assign(**{"4": [0.0, -1.0, 0.0]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["data", "validate", "--products", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, column '4', row 2: negative sales" in err and "Traceback" not in err


def test_validation_is_fast_enough_for_instacart_size():
    """Vectorised checks: 2M lines must not take a per-row Python loop (guards against regressions)."""
    rng = np.random.default_rng(0)
    n_orders = 200_000
    order_of_line = np.repeat(np.arange(n_orders), 10)
    df = pd.DataFrame({"user_id": order_of_line // 20, "order_id": order_of_line,
                       "order_number": order_of_line % 20 + 1,
                       "product_id": np.tile(np.arange(10), n_orders) + rng.integers(0, 2, 1) * 10})
    out = validate_orders(df, "big.parquet")
    assert len(out) == 2_000_000


def test_table_error_survives_pickling_and_prints_plain_values():
    import pickle

    err = TableError("o.csv", "duplicate key", column="product_id", row=3, value=(np.int64(10), np.int64(5)))
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.column, back.row, back.value) == ("o.csv", "product_id", 3, (10, 5))
    assert str(back) == str(err) == "o.csv, column 'product_id', row 3: duplicate key (value: (10, 5))"
