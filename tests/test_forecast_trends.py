"""Exogenous trend windows (`raydemand.forecast.trends`): what a product may read, and leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from raydemand.data.schema import validate_trends
from raydemand.forecast.trends import TREND_WEEKS, TrendSeries, row_trends, trend_windows

NAMES = ["dress", "coat", "red", "Blue", "cotton"]
START = np.datetime64("2017-01-02")  # a Monday, as the VISUELLE files


def series(weeks: int = 150, seed: int = 0) -> TrendSeries:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"date": (START + 7 * np.arange(weeks)).astype(str),
                       **{n: rng.integers(0, 101, weeks).astype(float) for n in NAMES}})
    return TrendSeries.from_frame(validate_trends(df, "trends.csv"))


def products(release: list[str], **attrs) -> pd.DataFrame:
    n = len(release)
    base = {"category": ["dress"] * n, "color": ["red"] * n, "fabric": ["cotton"] * n}
    return pd.DataFrame({"release_date": pd.to_datetime(release), **{**base, **attrs}})


ATTRS = ["category", "color", "fabric"]


def test_window_is_the_52_weeks_strictly_before_release():
    s = series()
    # released on a Monday that is a series date: week 51 is the Monday a week before, not the release day
    release = START + 7 * 80
    values, observed = row_trends(products([str(release)]), s, ATTRS)
    assert values.shape == (1, 3, TREND_WEEKS) and observed.shape == (1, 3, TREND_WEEKS) and observed.all()
    dress = s.values[:, s.names.index("dress")]
    np.testing.assert_allclose(values[0, 0], dress[80 - TREND_WEEKS:80] / 100)  # /100: the Google-Trends scale
    # a Thursday release also reads the Monday that opens its week (3 days before the release)
    values_thu, _ = row_trends(products([str(release + 3)]), s, ATTRS)
    np.testing.assert_allclose(values_thu[0, 0], dress[81 - TREND_WEEKS:81] / 100)


@pytest.mark.parametrize("offset", [0, 3, 6])
def test_no_value_at_or_after_release_is_read(offset):
    """Leakage: changing the series from the release date on leaves the features unchanged; changing
    the last week before the release changes them."""
    s = series()
    release = START + 7 * 90 + offset
    df = products([str(release)])
    before = row_trends(df, s, ATTRS)
    later = s.values.copy()
    later[s.dates >= release] = 100.0 - later[s.dates >= release]
    after = row_trends(df, TrendSeries(s.dates, s.names, later), ATTRS)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    earlier = s.values.copy()
    last = np.flatnonzero(s.dates < release)[-1]
    earlier[last] += 1.0
    changed, _ = row_trends(df, TrendSeries(s.dates, s.names, earlier), ATTRS)
    assert (changed != before[0]).any(axis=-1).all()  # every series sees its last week before release


def test_weeks_outside_the_series_are_masked():
    s = series(weeks=150)
    early = START + 7 * 10  # only 10 weeks of history
    late = s.dates[-1] + 7 * 30 + 1  # released 30 weeks after the series ends
    values, observed = row_trends(products([str(early), str(late)]), s, ATTRS)
    assert observed[0].sum(-1).tolist() == [10, 10, 10] and observed[0, :, -10:].all()
    assert observed[1].sum(-1).tolist() == [TREND_WEEKS - 30] * 3 and not observed[1, :, -29:].any()
    assert (values[~observed] == 0).all()
    never = START - 7  # released before the series starts: nothing to read
    _, observed = row_trends(products([str(never)]), s, ATTRS)
    assert not observed.any()


def test_missing_columns_unknown_values_and_empty_cells_mask_a_series():
    s = series()
    holes = s.values.copy()
    holes[70, s.names.index("cotton")] = np.nan  # an empty cell of the file
    s = TrendSeries(s.dates, s.names, holes)
    df = products([str(START + 7 * 80)] * 3, color=["red", "BLUE ", "mauve"], fabric=["cotton", None, "cotton"])
    values, observed = row_trends(df.drop(columns="category"), s, ATTRS)
    assert not observed[:, 0].any()  # no category column
    assert observed[:2, 1].all() and not observed[2, 1].any()  # 'BLUE ' names Blue; mauve names nothing
    assert observed[0, 2].sum() == TREND_WEEKS - 1 and not observed[0, 2, 70 - 80 + TREND_WEEKS]
    assert not observed[1, 2].any()  # no fabric value
    assert (values[~observed] == 0).all()


def test_rows_of_one_product_read_their_own_release():
    """Product x store rows launch on different days: each row's window ends at its own release."""
    s = series()
    a, b = START + 7 * 80, START + 7 * 81
    values, _ = trend_windows(s, np.array([a, b]), np.array([["dress"], ["dress"]], dtype=object))
    np.testing.assert_array_equal(values[0, 0, 1:], values[1, 0, :-1])


def test_series_state_round_trip(tmp_path):
    s = series(weeks=20)
    holes = s.values.copy()
    holes[3, 1] = np.nan
    s = TrendSeries(s.dates, s.names, holes)
    torch.save(s.to_state(), tmp_path / "trends.pt")
    back = TrendSeries.from_state(torch.load(tmp_path / "trends.pt", weights_only=True))
    assert back.names == s.names and (back.dates == s.dates).all()
    np.testing.assert_array_equal(back.values, s.values)


def test_predict_new_products_from_a_run_with_trends(tmp_path):
    """A run keeps its series in model.pt: new products read the weeks before their release from
    them; repeated predictions agree; a release after the series ends is forecast with masked weeks."""
    import serve_fixtures as fx

    from raydemand.forecast.run import load_run

    run = load_run(fx.forecast_run(tmp_path / "run", trends=True))
    assert run.trends is not None and run.trends.names == fx.CATEGORIES + fx.COLORS + fx.FABRICS
    assert run.forecaster.dims["trend_series"] == 3
    codes = ["new1", "new2", "late"]
    df = pd.DataFrame({"external_code": codes, "release_date": pd.to_datetime(["2019-06-05", "2019-09-02",
                                                                              "2022-03-01"]),
                       "category": ["coat", "dress", "coat"], "color": ["red", "blue", "red"],
                       "fabric": ["wool", "cotton", "wool"]})
    rng = np.random.default_rng(0)
    embedded = {"caption": dict.fromkeys(codes, ""), "caption_dim": 384, "image_dim": 1280,
                "caption_vec": dict(zip(codes, rng.normal(size=(3, 384)).astype(np.float32))),
                "image_vec": dict(zip(codes, rng.normal(size=(3, 1280)).astype(np.float32)))}

    rows = run.rows(df, embedded=embedded)
    expected = row_trends(df, fx.trend_series(), ATTRS)
    np.testing.assert_array_equal(rows.trends, expected[0])
    assert rows.trend_observed[:2].all() and not rows.trend_observed[2].any()  # the series end in 2019-11

    first = run.predict(df, embedded=embedded)
    pd.testing.assert_frame_equal(run.predict(df, embedded=embedded), first)
    pred = first.iloc[:, 1:].to_numpy()
    assert np.isfinite(pred).all() and (pred >= 0).all()
    # the series reach the forecasts: without them (every week masked) only the late product agrees
    run.trends = None
    blind = run.predict(df, embedded=embedded).iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(blind[2], pred[2], rtol=1e-6)
    assert not np.allclose(blind[:2], pred[:2])
