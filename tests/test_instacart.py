"""The Instacart reader on a hand-made folder in the real Kaggle layout (headers and rows as released)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from raydemand.cli import main
from raydemand.data.instacart import read_catalogue, read_orders
from raydemand.data.sources import load_orders
from raydemand.errors import InputError, TableError

FILES = {
    # The first three rows are user 1's first orders as printed from the real orders.csv.
    "orders.csv": """order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order
2539329,1,prior,1,2,08,
2398795,1,prior,2,3,07,15.0
473747,1,prior,3,3,12,21.0
1187899,1,train,4,4,08,14.0
2,202279,prior,1,5,09,
1,202279,test,2,4,10,8.0
""",
    "order_products__prior.csv": """order_id,product_id,add_to_cart_order,reordered
2,33120,1,0
2,28985,2,0
473747,196,1,1
473747,12427,2,1
2398795,196,1,1
2398795,10258,2,0
2539329,196,1,0
2539329,12427,2,0
""",
    "order_products__train.csv": """order_id,product_id,add_to_cart_order,reordered
1187899,196,1,1
1187899,10258,2,1
1187899,6816,3,0
""",
    "products.csv": """product_id,product_name,aisle_id,department_id
196,Soda,77,7
6816,"Scotch Kids 5"" Scissors, Blunted, Red",87,17
10258,Pistachios,117,19
12427,Original Beef Jerky,23,19
28985,Michigan Organic Kale,83,4
33120,Organic Egg Whites,86,16
""",
    "aisles.csv": """aisle_id,aisle
23,popcorn jerky
77,soft drinks
83,fresh vegetables
86,eggs
87,more household
117,nuts seeds dried fruit
""",
    "departments.csv": "department_id,department\n4,produce\n7,beverages\n16,dairy eggs\n17,household\n19,snacks\n",
}


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "instacart"
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(text)
    return root


def _replace(folder, name: str, old: str, new: str) -> None:
    path = folder / name
    path.write_text(path.read_text().replace(old, new, 1))


def test_mapping(folder):
    df = load_orders(folder)
    assert len(df) == 11  # 8 prior + 3 train lines; the test order has none
    assert list(df.columns[:4]) == ["user_id", "order_id", "order_number", "product_id"]
    first = df[(df["order_id"] == 2539329)].iloc[0]
    assert (first["user_id"], first["order_number"], first["order_dow"], first["order_hour_of_day"]) == (1, 1, 2, 8)
    assert np.isnan(first["days_since_prior_order"])
    second = df[df["order_id"] == 2398795].iloc[0]
    assert second["days_since_prior_order"] == 15.0 and second["order_hour_of_day"] == 7
    assert df.loc[df["order_id"] == 1187899, "eval_set"].eq("train").all()
    assert set(df["eval_set"]) == {"prior", "train"} and 1 not in set(df["order_id"])
    # Lines keep the files' order (prior first) and the lines' own columns.
    assert df["order_id"].tolist()[:2] == [2, 2] and df["order_id"].tolist()[-1] == 1187899
    assert df.loc[df["order_id"] == 1187899, "add_to_cart_order"].tolist() == [1, 2, 3]


def test_compact_dtypes(folder):
    df, named = read_orders(folder, None)
    assert named.name == "order_products__prior.csv"
    assert str(df["order_id"].dtype) == "int32" and str(df["product_id"].dtype) == "int32"
    assert str(df["order_dow"].dtype) == "int8" and str(df["reordered"].dtype) == "int8"
    assert str(df["days_since_prior_order"].dtype) == "float32"


def test_train_file_is_optional(folder):
    (folder / "order_products__train.csv").unlink()
    assert len(load_orders(folder)) == 8


def test_split_is_refused(folder):
    with pytest.raises(InputError, match="eval_set"):
        load_orders(folder, split="train")


@pytest.mark.parametrize("name, old, new, column, row, message", [
    # An order line whose order is not in orders.csv: named in the lines' own file and row.
    ("order_products__prior.csv", "2398795,10258,2,0", "999,10258,2,0", "order_id", 6, "not in orders.csv"),
    ("order_products__train.csv", "1187899,6816,3,0", "2,6816,3,0", "order_id", 3, "prior order"),
    ("order_products__prior.csv", "2539329,12427,2,0", "2539329,196,2,0", "product_id", 8, "twice"),
    ("order_products__prior.csv", "473747,196,1,1", "473747,196,1,300", "reordered", 3, "out of range"),
    ("orders.csv", "2398795,1,prior,2,3,07,", "2398795,1,prior,2,3,25,", "order_hour_of_day", 2, "out of range"),
    ("orders.csv", "473747,1,prior,3,3,", "473747,1,prior,3,x,", "order_dow", 3, "not an integer"),
    ("orders.csv", "473747,1,prior,3,", "473747,1,prior,2,", "order_number", 3, "another order"),
    ("orders.csv", "1,202279,test", "1,202279,later", "eval_set", 6, "not one of"),
])
def test_errors_name_the_real_file(folder, name, old, new, column, row, message):
    _replace(folder, name, old, new)
    with pytest.raises(TableError, match=message) as err:
        load_orders(folder)
    assert (err.value.path, err.value.column, err.value.row) == (str(folder / name), column, row)


def test_unreadable_csv_is_named(folder):
    _replace(folder, "order_products__prior.csv", "2,28985,2,0", "2,28985,2,0,7")
    with pytest.raises(TableError, match="not a readable CSV") as err:
        load_orders(folder)
    assert err.value.path.endswith("order_products__prior.csv")


def test_missing_column_is_named(folder):
    _replace(folder, "order_products__prior.csv", "add_to_cart_order", "cart")
    with pytest.raises(TableError, match="add_to_cart_order") as err:
        load_orders(folder)
    assert err.value.path.endswith("order_products__prior.csv")


def test_catalogue(folder):
    cat = read_catalogue(folder)
    row = cat[cat["product_id"] == 6816].iloc[0]
    assert row["product_name"] == 'Scotch Kids 5" Scissors, Blunted, Red'
    assert (row["aisle"], row["department"]) == ("more household", "household")
    _replace(folder, "products.csv", "196,Soda,77,7", "196,Soda,999,7")
    with pytest.raises(TableError, match="aisles.csv") as err:
        read_catalogue(folder)
    assert (err.value.column, err.value.row) == ("aisle_id", 1)


def test_cli_validate(folder, capsys, tmp_path):
    assert main(["data", "validate", "--orders", str(folder)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["lines"], summary["orders"], summary["users"]) == (11, 5, 2)
    broken = shutil.copytree(folder, tmp_path / "broken")
    _replace(broken, "order_products__prior.csv", "2,28985", "7,28985")
    assert main(["data", "validate", "--orders", str(broken)]) == 2
    assert "order_products__prior.csv, column 'order_id', row 2" in capsys.readouterr().err
