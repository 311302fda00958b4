"""Splits, catalogue, window encoding (no leakage), in-process prediction; no Ray."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raydemand.basket.base import LoadedRun, create_predictor
from raydemand.basket.config import BasketConfig, DataConfig
from raydemand.basket.data import build_vocab, encode, history_orders, restrict, user_split
from raydemand.data.pipelines.windows import WindowsConfig, build_windows


def orders_table() -> pd.DataFrame:
    """User 1: orders {10, 20}, {10}, {10, 30}, {40}; user 2: {20}, {20, 30}."""
    rows = [(1, 101, 1, 10), (1, 101, 1, 20), (1, 102, 2, 10), (1, 103, 3, 10), (1, 103, 3, 30), (1, 104, 4, 40),
            (2, 201, 1, 20), (2, 202, 1 + 1, 20), (2, 202, 2, 30)]
    return pd.DataFrame(rows, columns=["user_id", "order_id", "order_number", "product_id"])


def test_user_split_is_stable_disjoint_and_sized():
    cfg = DataConfig(test_users=0.2, val_users=0.25)
    users = np.arange(20_000)
    a, b = user_split(users, cfg), user_split(users[::-1], cfg)[::-1]
    assert (a == b).all()  # a user's split does not depend on who else is in the table
    share = {s: (a == s).mean() for s in ("train", "val", "test")}
    assert share["test"] == pytest.approx(0.2, abs=0.01) and share["val"] == pytest.approx(0.2, abs=0.01)
    assert (user_split(users, DataConfig(split_seed=1)) != a).any()


def test_vocab_restriction_renumbers_orders():
    lines = orders_table()
    vocab = build_vocab(lines, DataConfig(top_products=2))
    assert set(vocab.products) == {10, 20}  # in 3 orders each, 30 in 2, 40 in 1
    assert vocab.index([10, 40])[1] == -1
    kept = restrict(lines, vocab, DataConfig(top_products=2, min_orders=3))
    user1 = kept[kept.user_id == 1]
    assert sorted(user1.order_number.unique()) == [1, 2, 3]  # order 104 ({40}) is gone
    assert set(kept.user_id) == {1}  # user 2 keeps two orders: below min_orders


def test_encode_matches_the_windows_and_never_sees_the_target():
    lines = orders_table()
    cfg = DataConfig(n_orders=2, feature_orders=10)
    vocab = build_vocab(lines, DataConfig())
    windows = build_windows(lines, WindowsConfig(n_orders=history_orders(cfg), targets="all"))
    enc = encode(windows, vocab, cfg, decay=0.5)
    i = [k for k, (u, n) in enumerate(zip(windows["user_id"].to_pylist(), windows["order_number"].to_pylist()))
         if (u, n) == (1, 4)][0]  # target {40}, history {10,20}, {10}, {10,30}
    ix = {p: int(vocab.index([p])[0]) for p in (10, 20, 30, 40)}
    assert enc["target"][i].nonzero()[0].tolist() == [ix[40]]
    assert enc["feats"][i, ix[40]].sum() == 0  # the target order is not in the features
    assert enc["feats"][i, ix[10], 0] == 1.0 and enc["feats"][i, ix[20], 0] == pytest.approx(1 / 3)
    seq = enc["orders"][i]  # (2, L): the last two orders, newest last
    assert sorted(seq[0][seq[0] > 0] - 1) == [ix[10]]
    assert sorted(seq[1][seq[1] > 0] - 1) == sorted([ix[10], ix[30]])
    assert enc["order_mask"][i].all() and enc["n_history"][i] == 3


def test_unknown_products_are_skipped_and_counted():
    lines = orders_table()
    vocab = build_vocab(lines[lines.product_id != 30], DataConfig())
    windows = build_windows(lines, WindowsConfig(n_orders=5, targets="last"))
    enc = encode(windows, vocab, DataConfig(), decay=0.8)
    assert enc["unknown"] >= 1 and 30 in enc["unknown_examples"]
    assert enc["missed"].sum() == 1  # user 2's last order holds 30, outside the catalogue


def test_in_process_prediction_with_unknowns_and_fallback():
    lines = orders_table()
    cfg = BasketConfig(model="topfreq", baseline="gptopfreq")
    vocab = build_vocab(lines, cfg.data)
    run = LoadedRun(None, cfg, vocab, create_predictor(cfg, vocab), threshold=0.5)
    new = pd.DataFrame({"user_id": [7, 7, 7, 8], "order_id": [1, 1, 2, 3], "order_number": [1, 1, 2, 1],
                        "product_id": [10, 999, 10, 555]})
    pred = run.predict(new, k=3)
    assert set(pred.columns) >= {"user_id", "rank", "product_id", "score"}
    u7 = pred[pred.user_id == 7]
    assert u7["product_id"].iloc[0] == 10 and u7["rank"].tolist() == [1, 2, 3]
    assert u7["in_basket"].iloc[0] and not u7["in_basket"].iloc[1]
    u8 = pred[pred.user_id == 8]  # no catalogue product in its history: popularity ranking
    assert u8["product_id"].tolist() == list(vocab.products[:3])
    summary = pred.attrs["summary"]
    assert summary["fallback_users"] == 1 and summary["unknown_lines"] == 2
    assert set(summary["unknown_examples"]) == {999, 555}


def test_histories_as_lists_predict_like_the_table():
    """Users given as lists of orders (Serve's shape) predict as the same orders table does; the
    'error' policy names the first unknown or repeated product by (user, order, position)."""
    from raydemand.basket.predict import HistoryError, history_table, predict_histories

    cfg = BasketConfig(model="topfreq")
    vocab = build_vocab(orders_table(), cfg.data)
    run = LoadedRun(None, cfg, vocab, create_predictor(cfg, vocab), threshold=0.5)
    histories = [[[10, "20"], [999]], [["x"]]]  # "20": a numeric catalogue's id sent as text; "x": never an id
    table = history_table(run, histories, unknown="ignore")
    assert table[["user_id", "order_number", "product_id"]].values.tolist() == [[0, 1, 10], [0, 1, 20], [0, 2, 999]]
    pred = predict_histories(run, histories, k=2, unknown="ignore")
    pd.testing.assert_frame_equal(pred[pred.user_id == 0].reset_index(drop=True), run.predict(table, k=2))
    assert pred[pred.user_id == 1]["product_id"].tolist() == list(vocab.products[:2])  # popularity fallback
    for orders, where in (([[10], [20, 999]], (0, 1, 1)), ([[10, 10]], (0, 0, 1))):
        with pytest.raises(HistoryError) as e:
            history_table(run, [orders])
        assert e.value.where == where


def test_prediction_input_is_validated():
    from raydemand.errors import TableError

    cfg = BasketConfig(model="topfreq")
    vocab = build_vocab(orders_table(), cfg.data)
    run = LoadedRun(None, cfg, vocab, create_predictor(cfg, vocab), threshold=0.5)
    with pytest.raises(TableError, match="order_number"):
        run.predict(pd.DataFrame({"user_id": [1], "order_id": [1], "product_id": [10]}))
