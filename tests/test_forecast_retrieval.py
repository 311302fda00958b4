"""Similar past products: the known-before-release rule, and proof that no future or test sales leak in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raydemand.forecast.base import create_forecaster, list_forecasters
from raydemand.forecast.config import ForecastConfig, RetrievalConfig
from raydemand.forecast.data import Rows, model_inputs, prepare_rows, split_by_release
from raydemand.forecast.retrieval import attribute_columns, retrieve

H = 12


def table(n=40, seed=0, start="2018-01-01", step_days=14):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "external_code": [f"p{i}" for i in range(n)],
        "release_date": pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * step_days, unit="D"),
        "category": rng.choice(["coat", "dress", "shirt"], n),
        "color": rng.choice(["black", "white"], n),
        "price": rng.uniform(10, 50, n),
    })
    for t in range(H):
        df[str(t)] = rng.poisson(5, n).astype(float)
    return df


def embedded(df, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    codes = df["external_code"].astype(str)
    return {"caption_vec": {c: rng.normal(size=dim).astype(np.float32) for c in codes},
            "image_vec": {c: rng.normal(size=dim).astype(np.float32) for c in codes},
            "caption_dim": dim, "image_dim": dim}


def rows(df, emb, scale=1.0) -> Rows:
    return prepare_rows(df, emb, attribute_columns(df, None), scale)


def test_attribute_columns_are_strings_and_store():
    df = table().assign(retail=1, text="x")
    assert attribute_columns(df, None) == ["category", "color", "retail"]
    with pytest.raises(Exception, match="fabric"):
        attribute_columns(df, ["fabric"])


def test_neighbours_were_known_before_release_and_never_the_product_itself():
    df = table()
    emb = embedded(df)
    r = rows(df, emb)
    cfg = RetrievalConfig(k=5, known_after_weeks=12)
    nb = retrieve(r.side, r.side, cfg)
    release = df["release_date"].to_numpy()
    for i in range(len(df)):
        for j in nb.index[i][nb.index[i] >= 0]:
            assert release[j] + np.timedelta64(84, "D") <= release[i]
            assert j != i
    assert (nb.index[:6] == -1).all()  # the first six releases (two-week steps) have nothing known before them
    assert (nb.index[-1] >= 0).all()
    real = nb.index >= 0
    np.testing.assert_allclose(nb.weight.sum(1)[real.any(1)], 1.0, rtol=1e-5)
    assert (nb.weight[~real] == 0).all()


def test_same_product_in_other_stores_is_excluded():
    df = table(6)
    stores = pd.concat([df.assign(retail=s) for s in (1, 2)], ignore_index=True)
    r = rows(stores, embedded(stores))
    nb = retrieve(r.side, r.side, RetrievalConfig(k=3, known_after_weeks=0))
    codes = stores["external_code"].to_numpy()
    for i in range(len(stores)):
        assert codes[i] not in set(codes[nb.index[i][nb.index[i] >= 0]])


@pytest.mark.parametrize("name", ["crossattnrnn_inputs", *sorted(set(list_forecasters()) - {"crossattnrnn"})])
def test_no_future_or_test_sales_leak(name):
    """Changing the sales of test products, or of pool rows released after (or too close before) the
    target, changes nothing a forecaster reads or predicts for it."""
    df = table(60, step_days=7)
    train_idx, test_idx = split_by_release(df, 0.1)
    emb = embedded(df)
    pool = rows(df.iloc[train_idx].reset_index(drop=True), emb)
    test = rows(df.iloc[test_idx].reset_index(drop=True), emb)
    # The test products' own sales, and the sales of late pool rows, scrambled:
    df2 = df.copy()
    cols = [str(t) for t in range(H)]
    df2.loc[test_idx, cols] = 1000.0
    # rows whose 12 weeks are not over when even the last test product is released
    last_known = df.iloc[test_idx]["release_date"].max() - pd.Timedelta(weeks=12)
    late = df2.index[(df2["release_date"] > last_known) & df2.index.isin(train_idx)]
    assert len(late) > 0
    df2.loc[late, cols] = 777.0
    pool2 = rows(df2.iloc[train_idx].reset_index(drop=True), emb)
    test2 = rows(df2.iloc[test_idx].reset_index(drop=True), emb)
    cfg = ForecastConfig()
    if name == "crossattnrnn_inputs":
        a, b = model_inputs(test, pool, cfg.retrieval), model_inputs(test2, pool2, cfg.retrieval)
        for key in ("neighbours", "neighbour_weight", "image", "caption"):
            np.testing.assert_array_equal(a[key], b[key])
        assert a["neighbours"].max() < 100
        return
    forecaster = create_forecaster(name, cfg)
    half = len(pool) // 2
    forecaster.fit(pool.take(np.arange(half)), pool.take(np.arange(half, len(pool))), pool)
    first = forecaster.predict(test, pool)
    forecaster.fit(pool.take(np.arange(half)), pool.take(np.arange(half, len(pool))), pool)
    np.testing.assert_array_equal(first, forecaster.predict(test2, pool2))
    assert first.shape == (len(test), H) and np.isfinite(first).all() and (first >= 0).all()
