"""The Instacart generator: the real layout, and the signal it promises (each check is also run on a
control with the signal shuffled away, to show the check can fail)."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest

from raydemand.data.sources import load_orders
from raydemand.data.synth import synthesize

HEADERS = {
    "orders.csv": "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order",
    "order_products__prior.csv": "order_id,product_id,add_to_cart_order,reordered",
    "order_products__train.csv": "order_id,product_id,add_to_cart_order,reordered",
    "products.csv": "product_id,product_name,aisle_id,department_id",
    "aisles.csv": "aisle_id,aisle",
    "departments.csv": "department_id,department",
    "sample_submission.csv": "order_id,products",
}


@pytest.fixture(scope="module")
def tables(instacart_dir):
    read = {name: pd.read_csv(instacart_dir / name, keep_default_na=name != "products.csv") for name in HEADERS}
    orders = read["orders.csv"]
    lines = {part: read[f"order_products__{part}.csv"].merge(orders, on="order_id") for part in ("prior", "train")}
    return read, lines


def _shuffled(lines: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The control: the same lines with products permuted across all of them (no signal left)."""
    return lines.assign(product_id=np.random.default_rng(seed).permutation(lines["product_id"].to_numpy()))


def _recall_ratio(prior: pd.DataFrame, train: pd.DataFrame) -> tuple[float, float]:
    """Mean recall@10 on each user's train order: personal top-10 (most bought) and global top-10."""
    counts = prior.groupby(["user_id", "product_id"]).size().rename("n").reset_index()
    top = counts.sort_values(["user_id", "n", "product_id"], ascending=[True, False, True])
    top = top.groupby("user_id").head(10)
    glob = prior["product_id"].value_counts().index[:10]
    truth = train[["user_id", "product_id"]]
    personal = truth.merge(top[["user_id", "product_id"]].assign(hit=1), how="left").fillna({"hit": 0})
    per_user = pd.DataFrame({"personal": personal.groupby("user_id")["hit"].mean(),
                             "global": truth.assign(hit=truth["product_id"].isin(glob)).groupby("user_id")["hit"].mean()})
    return per_user["personal"].mean(), per_user["global"].mean()


def _aisle_lift(lines: pd.DataFrame, products: pd.DataFrame) -> float:
    """P(two products of one basket share an aisle) / the same under independence."""
    aisle = lines.merge(products[["product_id", "aisle_id"]], on="product_id")
    same = aisle.groupby(["order_id", "aisle_id"]).size()
    basket = aisle.groupby("order_id").size()
    chance = (aisle["aisle_id"].value_counts(normalize=True) ** 2).sum()
    return (same * (same - 1)).sum() / (basket * (basket - 1)).sum() / chance


def test_headers_and_formats(instacart_dir, tables):
    for name, header in HEADERS.items():
        assert (instacart_dir / name).read_text().split("\n", 1)[0] == header, name
    raw = pd.read_csv(instacart_dir / "orders.csv", dtype=str, keep_default_na=False)
    first = raw["order_number"] == "1"
    assert (raw.loc[first, "days_since_prior_order"] == "").all()
    assert raw.loc[~first, "days_since_prior_order"].str.fullmatch(r"\d+\.0").all()
    assert raw["order_hour_of_day"].str.fullmatch(r"\d\d").all()
    orders = tables[0]["orders.csv"]
    assert orders["days_since_prior_order"].max() <= 30
    assert orders.equals(orders.sort_values(["user_id", "order_number"]))
    for part in ("prior", "train"):
        lines = tables[0][f"order_products__{part}.csv"]
        assert lines.equals(lines.sort_values(["order_id", "add_to_cart_order"]))
    names = tables[0]["products.csv"]["product_name"]
    assert names.str.contains(",").any() and names.str.contains('"').any()  # quoting is exercised


def test_orders_structure(instacart_dir, tables):
    read, lines = tables
    orders = read["orders.csv"]
    per_user = orders.groupby("user_id")
    assert per_user.size().between(4, 100).all() and 10 < per_user.size().mean() < 25
    last = orders[orders["order_number"] == per_user["order_number"].transform("max")]
    assert set(last["eval_set"]) <= {"train", "test"} and (orders["eval_set"] != "prior").sum() == len(last)
    assert 0.5 < (last["eval_set"] == "train").mean() < 0.85
    test_ids = set(last.loc[last["eval_set"] == "test", "order_id"])
    assert test_ids == set(read["sample_submission.csv"]["order_id"])
    assert not test_ids & (set(lines["prior"]["order_id"]) | set(lines["train"]["order_id"]))
    basket = lines["prior"].groupby("order_id").size()
    assert basket.between(1, 50).all() and 7 < basket.mean() < 13
    assert read["products.csv"]["product_id"].tolist() == list(range(1, 200 * 2 + 501))


def test_loads_as_orders_table(instacart_dir, tables):
    df = load_orders(instacart_dir)
    assert len(df) == sum(len(t) for t in tables[1].values())
    assert set(df["eval_set"]) == {"prior", "train"}


def test_reordered_means_bought_before(tables):
    lines = pd.concat(tables[1].values()).sort_values(["user_id", "order_number", "add_to_cart_order"])
    expected = lines.duplicated(["user_id", "product_id"]).astype(int)
    assert (lines["reordered"] == expected).all()
    assert 0.3 < lines["reordered"].mean() < 0.8


def test_personal_frequency_beats_popularity(tables):
    prior, train = tables[1]["prior"], tables[1]["train"]
    personal, popular = _recall_ratio(prior, train)
    assert personal > 2 * popular, (personal, popular)
    personal, popular = _recall_ratio(_shuffled(prior), _shuffled(train, seed=1))
    assert personal < 2 * popular, (personal, popular)


def test_co_purchase_within_aisles(tables):
    prior, products = tables[1]["prior"], tables[0]["products.csv"]
    assert _aisle_lift(prior, products) > 1.5
    assert _aisle_lift(_shuffled(prior), products) < 1.2


def test_deterministic(tmp_path):
    a = synthesize("instacart", tmp_path / "a", seed=3, scale=40)
    synthesize("instacart", tmp_path / "b", seed=3, scale=40)
    synthesize("instacart", tmp_path / "c", seed=4, scale=40)
    names = list(HEADERS)
    assert filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)[0] == names
    assert not filecmp.cmp(tmp_path / "a" / "order_products__prior.csv", tmp_path / "c" / "order_products__prior.csv",
                           shallow=False)
    prior_rows = len((tmp_path / "a" / "order_products__prior.csv").read_text().splitlines()) - 1
    assert a["users"] == 40 and a["prior_lines"] == prior_rows
