"""Similar past products: the known-before-release rule, and proof that no future or test sales leak in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raydemand.forecast.base import create_forecaster, list_forecasters
from raydemand.forecast.config import ForecastConfig, RetrievalConfig
from raydemand.forecast.data import Rows, model_inputs, prepare_rows, split_by_release
from raydemand.forecast.retrieval import attribute_columns, launch_profile, retrieve, visible_weeks

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


def rows(df, emb, scale=1.0, profile=None) -> Rows:
    r = prepare_rows(df, emb, attribute_columns(df, None), scale)
    r.profile = profile
    return r


def test_attribute_columns_are_strings_and_store():
    df = table().assign(retail=1, text="x")
    assert attribute_columns(df, None) == ["category", "color", "retail"]
    with pytest.raises(Exception, match="fabric"):
        attribute_columns(df, ["fabric"])


def test_visible_weeks_end_before_the_release_day():
    release = np.array(["2020-01-01"], dtype="datetime64[D]")
    pool = np.array(["2020-01-01", "2019-12-26", "2019-12-25", "2019-12-11", "2019-01-01", "2020-01-08"],
                    dtype="datetime64[D]")
    # same day: nothing; 6 days before: week 0 not over; 7 days: week 0; 21 days: 3 weeks; a year: all 12
    assert visible_weeks(release, pool).tolist() == [[0, 0, 1, 3, 12, 0]]


def test_neighbours_are_released_before_and_read_only_as_far_as_observed():
    df = table()
    r = rows(df, embedded(df), profile=np.full(H, 1 / H, np.float32))
    cfg = RetrievalConfig(k=5, min_known_weeks=1)
    nb = retrieve(r.side, r.side, cfg)
    release = df["release_date"].to_numpy()
    for i in range(len(df)):
        for j, v in zip(nb.index[i], nb.visible[i]):
            if j < 0:
                continue
            assert j != i and release[j] < release[i]
            assert v == min(H, (release[i] - release[j]) // np.timedelta64(7, "D")) >= 1
    assert (nb.index[0] == -1).all()  # the first release has nothing before it
    assert (nb.index[1] >= 0).any()  # the second sees two weeks of the first (two-week steps)
    assert nb.visible[1][nb.index[1] >= 0].tolist() == [2]
    real = nb.index >= 0
    np.testing.assert_allclose(nb.weight.sum(1)[real.any(1)], 1.0, rtol=1e-5)
    assert (nb.weight[~real] == 0).all()
    # 12 required weeks: only fully known curves, as the earlier rule had it
    whole = retrieve(r.side, r.side, RetrievalConfig(k=5, min_known_weeks=12))
    assert (whole.index[:6] == -1).all() and (whole.visible[whole.index >= 0] == H).all()
    # masked weeks are filled in from the observed level times the profile
    inputs = model_inputs(r, r, cfg)
    obs, curves = inputs["neighbour_observed"], inputs["neighbours"]
    assert obs[1, 0].tolist() == [True, True] + [False] * (H - 2)
    np.testing.assert_allclose(curves[1, 0, :2], r.target[0, :2])
    np.testing.assert_allclose(curves[1, 0, 2:], r.target[0, :2].mean(), rtol=1e-5)


def test_same_product_in_other_stores_is_excluded():
    df = table(6)
    stores = pd.concat([df.assign(retail=s) for s in (1, 2)], ignore_index=True)
    r = rows(stores, embedded(stores))
    nb = retrieve(r.side, r.side, RetrievalConfig(k=3, min_known_weeks=1))
    codes = stores["external_code"].to_numpy()
    for i in range(len(stores)):
        assert codes[i] not in set(codes[nb.index[i][nb.index[i] >= 0]])


def test_a_pool_needs_its_launch_profile():
    df = table(10)
    r = rows(df, embedded(df))
    with pytest.raises(ValueError, match="launch profile"):
        model_inputs(r, r, RetrievalConfig())


def hide_unobserved(df: pd.DataFrame, at: pd.Timestamp, value: float) -> pd.DataFrame:
    """`df` with every week that is not over by `at` (and every week of products released on or
    after it) set to `value`."""
    out = df.copy()
    weeks_over = ((at - out["release_date"]).dt.days // 7).clip(0, H).to_numpy()
    cols = [str(t) for t in range(H)]
    values = out[cols].to_numpy(copy=True)
    values[np.arange(H)[None, :] >= weeks_over[:, None]] = value
    out[cols] = values
    return out


@pytest.mark.parametrize("name", ["crossattnrnn_inputs", *sorted(set(list_forecasters()) - {"crossattnrnn"})])
def test_no_future_or_test_sales_leak(name):
    """For a product released on day d, changing the test products' sales and every week of the
    pool that was not over by d changes nothing a forecaster reads or predicts for it. Checked for
    early training products (mostly partly observed neighbours) and for the test products."""
    df = table(60, step_days=5)
    train_idx, test_idx = split_by_release(df, 0.1)
    emb = embedded(df)
    train_df, test_df = df.iloc[train_idx].reset_index(drop=True), df.iloc[test_idx].reset_index(drop=True)
    # the launch profile is fitted on the training curves, like any model parameter
    profile = launch_profile(rows(train_df, emb).target)
    pool = rows(train_df, emb, profile=profile)
    cfg = ForecastConfig()
    forecaster = None
    if name != "crossattnrnn_inputs":
        forecaster = create_forecaster(name, cfg)
        half = len(pool) // 2
        forecaster.fit(pool.take(np.arange(half)), pool.take(np.arange(half, len(pool))), pool)
    checked = 0
    for query_df in (train_df.iloc[[3, 8, 15]], test_df):
        for day, part in query_df.groupby("release_date"):
            part = part.reset_index(drop=True)
            hidden_pool = rows(hide_unobserved(train_df, day, 777.0), emb, profile=profile)
            queries, hidden_queries = rows(part, emb), rows(hide_unobserved(part, day, 1000.0), emb)
            assert (hidden_queries.target == 1000.0).all()
            if forecaster is None:
                a, b = model_inputs(queries, pool, cfg.retrieval), model_inputs(hidden_queries, hidden_pool,
                                                                                 cfg.retrieval)
                for key in ("neighbours", "neighbour_observed", "neighbour_weight", "image", "caption"):
                    np.testing.assert_array_equal(a[key], b[key])
                assert a["neighbours"].max() < 100 and a["neighbour_observed"].any()
            else:
                first = forecaster.predict(queries, pool)
                np.testing.assert_array_equal(first, forecaster.predict(hidden_queries, hidden_pool))
                assert first.shape == (len(part), H) and np.isfinite(first).all() and (first >= 0).all()
            checked += len(part)
    assert checked >= 8
