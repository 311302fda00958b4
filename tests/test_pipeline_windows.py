"""Order-history windows: exact lists on a hand-made table, leakage, errors; one Ray run and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from raydemand.data.pipelines.windows import WindowsConfig, build_windows, check_lines, read_lines, run
from raydemand.errors import InputError, TableError

IDS = {"user_id": "int64", "order_id": "int64", "product_id": "int64"}


def orders_table(orders: dict[int, list[list[int]]]) -> pd.DataFrame:
    """Lines of {user: [order 1 products, order 2 products, ...]}; order id = user * 100 + number,
    cart order as listed, context derived from the order number."""
    rows = [{"user_id": user, "order_id": user * 100 + n, "order_number": n, "product_id": p,
             "add_to_cart_order": k + 1, "order_dow": n % 7, "order_hour_of_day": 10 + n,
             "days_since_prior_order": np.nan if n == 1 else 7.0}
            for user, baskets in orders.items() for n, basket in enumerate(baskets, start=1)
            for k, p in enumerate(basket)]
    return pd.DataFrame(rows)


# user 1: four orders; user 2: a single order; user 3: two orders.
HAND = {1: [[11, 12], [21], [31, 32, 33], [41]], 2: [[51]], 3: [[30, 10], [20]]}


def rows(table, *columns):
    return [tuple(r[c] for c in columns) for r in table.to_pylist()]


def test_all_targets_exact_lists():
    lines = orders_table(HAND).sample(frac=1, random_state=0)  # input order must not matter
    out = build_windows(lines, WindowsConfig(n_orders=2, targets="all"))
    assert rows(out, "user_id", "order_number", "n_history", "history", "target") == [
        (1, 2, 1, [[11, 12]], [21]),
        (1, 3, 2, [[11, 12], [21]], [31, 32, 33]),
        (1, 4, 2, [[21], [31, 32, 33]], [41]),  # only the last n_orders, oldest -> newest
        (3, 2, 1, [[30, 10]], [20]),  # cart order, not product id order
    ]
    assert rows(out, "order_id", "order_dow", "order_hour_of_day", "days_since_prior_order")[0] == (102, 2.0, 12.0, 7.0)


def test_last_and_next_targets():
    lines = orders_table(HAND)
    last = build_windows(lines, WindowsConfig(n_orders=5, targets="last"))
    assert rows(last, "user_id", "order_id", "history", "target") == [
        (1, 104, [[11, 12], [21], [31, 32, 33]], [41]),
        (3, 302, [[30, 10]], [20]),
    ]  # user 2 has no earlier order, so no held-out target
    nxt = build_windows(lines, WindowsConfig(n_orders=2, targets="next"))
    assert rows(nxt, "user_id", "order_id", "order_number", "n_history", "history", "target", "order_dow") == [
        (1, None, 5, 2, [[31, 32, 33], [41]], [], None),
        (2, None, 2, 1, [[51]], [], None),
        (3, None, 3, 2, [[30, 10], [20]], [], None),
    ]


def test_min_history():
    lines = orders_table(HAND)
    first_orders = build_windows(lines, WindowsConfig(n_orders=3, min_history=0))
    assert rows(first_orders, "user_id", "order_number", "history")[:2] == [(1, 1, []), (1, 2, [[11, 12]])]
    assert len(first_orders) == 4 + 1 + 2  # every order is a target
    deep = build_windows(lines, WindowsConfig(n_orders=1, min_history=3))
    assert rows(deep, "user_id", "order_number", "history") == [(1, 4, [[31, 32, 33]])]


def test_no_leakage_on_random_histories():
    """Every history order comes strictly before its target, and they are the latest ones."""
    rng = np.random.default_rng(0)
    baskets = {u: [[n * 1000 + k for k in range(rng.integers(1, 5))] for n in range(1, rng.integers(2, 12))]
               for u in range(1, 40)}  # product id encodes its order number
    lines = orders_table(baskets).sample(frac=1, random_state=1)
    cfg = WindowsConfig(n_orders=4)
    out = build_windows(lines, cfg).to_pylist()
    assert len(out) == sum(len(b) - 1 for b in baskets.values())
    for w in out:
        numbers = [order[0] // 1000 for order in w["history"]]
        assert numbers == list(range(max(1, w["order_number"] - 4), w["order_number"]))
        assert all(p // 1000 == w["order_number"] for p in w["target"])
        assert w["n_history"] == len(w["history"]) <= cfg.n_orders


def test_string_ids_and_no_cart_order():
    lines = orders_table(HAND).drop(columns="add_to_cart_order")
    lines = lines.assign(user_id="u" + lines["user_id"].astype(str), product_id="p" + lines["product_id"].astype(str))
    out = build_windows(lines, WindowsConfig(targets="last"))
    assert rows(out, "user_id", "history", "target")[1] == ("u3", [["p10", "p30"]], ["p20"])  # product id order


def test_inconsistent_orders_are_named():
    lines = orders_table(HAND)
    twice = pd.concat([lines, lines.iloc[[0]].assign(add_to_cart_order=9)])
    with pytest.raises(InputError, match="product 11 appears twice in order 101"):
        build_windows(twice, WindowsConfig(), "orders.csv")
    clash = lines.copy()
    clash.loc[1, "order_id"] = 999  # the second line of order 1 claims another order id
    with pytest.raises(InputError, match="orders.csv, column 'order_id': user 1 has two orders with order_number 1"):
        build_windows(clash, WindowsConfig(), "orders.csv")


def test_block_check_names_the_line():
    block = orders_table(HAND)
    out = check_lines(block, "orders.csv", IDS, buckets=4)
    assert set(out["bucket"]) <= {0, 1, 2, 3}
    assert out.groupby("user_id")["bucket"].nunique().max() == 1  # a user's lines share a bucket
    bad = block.assign(order_dow=block["order_dow"].where(block["user_id"] != 3, 9))
    with pytest.raises(InputError, match=r"orders.csv, column 'order_dow': out of range \(0..6\) \(value: .*9.*\) "
                                         r"\(in the line with user_id 3, order_id 301\)"):
        check_lines(bad, "orders.csv", IDS, buckets=4)
    strings = block.assign(product_id=block["product_id"].astype(str).where(block["user_id"] != 2, "x"))
    with pytest.raises(InputError, match="ids in the first lines are integers, later ones are not"):
        check_lines(strings, "orders.csv", IDS, buckets=4)


def test_first_lines_are_checked_before_ray_starts(tmp_path):
    path = tmp_path / "orders.csv"
    orders_table(HAND).drop(columns="order_number").to_csv(path, index=False)
    with pytest.raises(TableError, match="missing required column"):
        read_lines(path, WindowsConfig())


def test_ray_run_matches_the_plain_function(ray_session, tmp_path):
    rng = np.random.default_rng(2)
    baskets = {u: [list(rng.choice(60, rng.integers(1, 6), replace=False) + 1) for _ in range(rng.integers(1, 9))]
               for u in range(1, 120)}
    lines = orders_table(baskets).sample(frac=1, random_state=3)
    path = tmp_path / "orders.csv"
    lines.to_csv(path, index=False)
    cfg = WindowsConfig(buckets=3)
    summary = run(path, tmp_path / "out", cfg)
    expected = build_windows(lines, cfg).to_pandas()
    got = pd.read_parquet(tmp_path / "out").sort_values(["user_id", "order_number"], ignore_index=True)
    assert summary["windows"] == len(expected) == len(got)
    assert summary["users"] == sum(len(b) > 1 for b in baskets.values())
    pd.testing.assert_frame_equal(got.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v),
                                  expected.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v))


def test_cli_prepare_windows(ray_session, tmp_path, capsys):
    from raydemand.cli import main

    path = tmp_path / "orders.parquet"
    orders_table(HAND).to_parquet(path, index=False)
    assert main(["data", "prepare", "windows", "--orders", str(path), "--out", str(tmp_path / "out"),
                 "--targets", "last", "--n-orders", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 2 and summary["users"] == 2 and summary["targets"] == "last"
    got = pd.read_parquet(tmp_path / "out").sort_values("user_id")
    assert [h.tolist() for h in got["history"].iloc[0]] == [[31, 32, 33]]
    assert main(["data", "prepare", "windows", "--orders", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "already exists" in capsys.readouterr().err
