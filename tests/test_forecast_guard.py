"""The guard of `forecast train`: attribute_median with back-off, the validation-chosen blend weight,
the blend forecaster's state in model.pt, and what is served."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from raydemand.errors import InputError
from raydemand.forecast.base import create_forecaster, list_forecasters
from raydemand.forecast.config import ForecastConfig
from raydemand.forecast.data import prepare_rows
from raydemand.forecast.guard import Blend, alone, blend_weight, fit_baselines, guarded
from raydemand.forecast.retrieval import launch_profile

H = 12


def table(groups: dict[tuple[str, str], list[float]], start="2020-01-01") -> pd.DataFrame:
    """One product per level in `groups[(category, color)]`, its 12 weeks all at that level."""
    records = []
    for (category, color), levels in groups.items():
        for level in levels:
            records.append({"category": category, "color": color, "fabric": "cotton",
                            **{str(t): float(level) for t in range(H)}})
    df = pd.DataFrame(records)
    df.insert(0, "external_code", [f"p{i}" for i in range(len(df))])
    df.insert(1, "release_date", pd.Timestamp(start) + pd.to_timedelta(np.arange(len(df)), unit="D"))
    return df


def rows(df: pd.DataFrame, attrs=("category", "color", "fabric")):
    empty = {"caption_vec": {}, "image_vec": {}, "caption_dim": 4, "image_dim": 4}
    r = prepare_rows(df, empty, list(attrs), scale=1.0)
    r.profile = launch_profile(r.target)
    return r


def cfg(*overrides: str) -> ForecastConfig:
    from raydemand.config import load_config

    return load_config(ForecastConfig, None, list(overrides))


def round_trip(forecaster, c: ForecastConfig):
    """`forecaster` through get_state -> torch.save -> torch.load(weights_only=True) -> set_state."""
    buf = io.BytesIO()
    torch.save({"name": forecaster.name, "state": forecaster.get_state()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    loaded = create_forecaster(saved["name"], c)
    loaded.set_state(saved["state"])
    return loaded


TRAIN = table({("coat", "black"): [10, 11, 12, 13, 14],  # 5 rows: a group of its own (median 12)
               ("coat", "white"): [1, 2],  # 2 rows: backs off to all coats (median 10.5 of 7 rows)
               ("dress", "red"): [5, 6, 7, 100, 101, 102, 103]})  # (median 100)


def test_attribute_median_backs_off_to_fewer_columns_then_the_global_median():
    c = cfg("baselines.min_count=5")
    train = rows(TRAIN)
    f = create_forecaster("attribute_median", c)
    f.fit(train, train, train)
    assert f.columns == ["category", "color"]  # the defaults where the table has them
    query = rows(table({("coat", "black"): [0], ("coat", "white"): [0], ("coat", "green"): [0],
                        ("dress", "red"): [0], ("shirt", "black"): [0]}, start="2021-01-01"))
    pred = f.predict(query, train)
    overall = np.median(train.target, axis=0)
    expected = [12.0, np.median([10, 11, 12, 13, 14, 1, 2]), np.median([10, 11, 12, 13, 14, 1, 2]), 100.0,
                overall[0]]
    np.testing.assert_allclose(pred[:, 0], expected)
    assert pred.shape == (5, H) and pred.dtype == np.float32
    # saved as plain values and tensors (weights_only), predicts the same after loading
    np.testing.assert_array_equal(round_trip(f, c).predict(query, train), pred)
    # min_count above every group: the global median for all
    strict = create_forecaster("attribute_median", cfg("baselines.min_count=50"))
    strict.fit(train, train, train)
    np.testing.assert_allclose(strict.predict(query, train), np.tile(overall, (5, 1)))


def test_attribute_median_columns_default_to_the_first_two_and_are_checked():
    df = TRAIN.rename(columns={"category": "department", "color": "brand"})
    train = rows(df, ("department", "brand", "fabric"))
    f = create_forecaster("attribute_median", cfg())
    f.fit(train, train, train)
    assert f.columns == ["department", "brand"]  # no category/color (e.g. Complete Journey): the first two
    named = create_forecaster("attribute_median", cfg("baselines.attribute_columns=[fabric]"))
    named.fit(train, train, train)
    np.testing.assert_allclose(named.predict(train, train), np.median(train.target, 0)[None].repeat(len(train), 0))
    with pytest.raises(InputError, match=r"baselines.attribute_columns: \['size'\] not among"):
        create_forecaster("attribute_median", cfg("baselines.attribute_columns=[size]")).fit(train, train, train)
    with pytest.raises(InputError, match="attribute_median groups by"):
        f.predict(rows(TRAIN), train)  # rows of another attribute layout


def test_blend_weight_keeps_a_good_model_and_drops_a_bad_one():
    rng = np.random.default_rng(0)
    target = rng.poisson(3.0, (200, H)).astype(np.float64)
    baseline = np.full_like(target, np.median(target))
    good = target + rng.normal(0, 0.1, target.shape)
    bad = rng.uniform(0, 30, target.shape)
    a, score = blend_weight(good, baseline, target)
    assert a >= 0.9 and score <= blend_weight(baseline, baseline, target)[1]
    a, score = blend_weight(bad, baseline, target)
    assert a == 0.0 and score == pytest.approx(blend_weight(baseline, baseline, target)[1])
    assert blend_weight(baseline, baseline, target) == (1.0, pytest.approx(score))  # a tie keeps the model
    # in between: two half-right forecasts blend to better than either
    low, high = target - 1.0, target + 1.0
    a, score = blend_weight(low, high, target, grid=5)
    assert a == 0.5 and score == pytest.approx(0.0, abs=1e-9)


def test_blend_state_round_trip_predict_and_attention():
    c = cfg()
    train = rows(TRAIN)
    inner, base = create_forecaster("median", c), create_forecaster("attribute_median", c)
    for f in (inner, base):
        f.fit(train, train, train)
    blend = Blend.of(inner, base, 0.3)
    expected = 0.3 * inner.predict(train, train) + 0.7 * base.predict(train, train)
    np.testing.assert_allclose(blend.predict(train, train), expected, rtol=1e-6)
    loaded = round_trip(blend, c)
    assert isinstance(loaded, Blend) and loaded.weight == 0.3 and alone(loaded).name == "median"
    np.testing.assert_allclose(loaded.predict(train, train), expected, rtol=1e-6)
    pred, attention = loaded.explain(train, train)
    np.testing.assert_allclose(pred, expected, rtol=1e-6)
    assert attention == [{}] * len(train)  # the inner forecaster's: a baseline has none
    assert "blend" not in list_forecasters()  # written by train's guard, never chosen by name
    with pytest.raises(Exception, match="unknown forecaster 'blend'"):
        cfg("forecaster=blend")


class Ones:
    """A forecaster of ones: far above the sales of most TRAIN products."""

    name, is_baseline, cfg = "ones", False, ForecastConfig()

    def predict(self, rows, pool):
        return np.full((len(rows), H), 50.0, np.float32)

    def get_state(self):
        return {}


def test_guard_serves_the_better_of_model_baseline_and_blend(caplog):
    train = rows(TRAIN)
    data = SimpleNamespace(train=train, val=train, pool=train)
    c = cfg()
    baselines = fit_baselines(c, data)
    assert sorted(baselines) == ["attribute_median", "median"]
    model = Ones()
    served, record = guarded(c, model, model.predict(train, train), baselines, data)
    best = min(record["baselines"].values(), key=lambda m: m["wape"])["wape"]
    assert record["served"]["val"]["wape"] <= best + 1e-9 and record["served"]["forecaster"] == "blend"
    assert record["served"]["baseline"] == "attribute_median" and isinstance(served, Blend)
    assert "ones does not beat the attribute_median baseline on validation" in caplog.text
    np.testing.assert_allclose(forecast_wape(served.predict(train, train), train.target),
                               record["served"]["val"]["wape"], rtol=1e-6)
    # guard off: the model as it is, with the comparison still recorded
    off = cfg("baselines.guard=false")
    served, record = guarded(off, model, model.predict(train, train), baselines, data)
    assert served is model and record["served"]["weight"] == 1.0 and set(record["baselines"]) == set(baselines)
    # a perfect model is served alone, and nothing is said
    caplog.clear()
    perfect = SimpleNamespace(name="perfect", is_baseline=False, cfg=c)
    served, record = guarded(c, perfect, train.target, baselines, data)
    assert served is perfect and record["served"] == {"forecaster": "perfect", "model": "perfect", "baseline": None,
                                                      "weight": 1.0, "val": record["served"]["val"]}
    assert caplog.text == ""


def forecast_wape(pred, target):
    from raydemand.forecast.metrics import wape

    return float(wape(np.asarray(pred, np.float64), np.asarray(target, np.float64)))


def test_a_blend_loads_a_forecaster_added_outside_the_package():
    """The inner forecaster's module is in the blend's state: a process that has not imported it (a
    Serve replica, a Tune trial) imports it on load, as it would for a forecaster served alone."""
    import sys

    from raydemand.forecast.base import FORECASTERS

    c, train = cfg(), rows(TRAIN)
    import toy_forecaster

    toy = toy_forecaster.ToyMean(c)
    toy.fit(train, train, train)
    base = create_forecaster("median", c)
    base.fit(train, train, train)
    state = Blend.of(toy, base, 0.5).get_state()
    assert state["inner"]["module"] == "toy_forecaster"
    FORECASTERS.pop(toy_forecaster.NAME, None)
    sys.modules.pop("toy_forecaster")
    try:
        loaded = create_forecaster("blend", c)
        loaded.set_state(state)
        assert alone(loaded).name == toy_forecaster.NAME and toy_forecaster.NAME in FORECASTERS
        np.testing.assert_allclose(loaded.predict(train, train),
                                   0.5 * toy.predict(train, train) + 0.5 * base.predict(train, train), rtol=1e-6)
    finally:
        FORECASTERS.pop(toy_forecaster.NAME, None)  # other tests' lists of forecasters stay as shipped


def test_attribute_median_counts_products_not_store_rows():
    """Two coats sold in three stores each are six rows but two products: below min_count 5."""
    df = TRAIN.copy()
    white = df[df["color"] == "white"]
    df = pd.concat([df, white.assign(retail="s2"), white.assign(retail="s3")]).fillna({"retail": "s1"})
    f = create_forecaster("attribute_median", cfg())
    train = rows(df.reset_index(drop=True), ("category", "color", "retail"))
    f.fit(train, train, train)
    query = rows(table({("coat", "white"): [0]}, start="2021-01-01").assign(retail="s1"), ("category", "color", "retail"))
    coats = train.target[df["category"].to_numpy() == "coat", 0]
    assert f.predict(query, train)[0, 0] == pytest.approx(np.median(coats))  # backed off to all coats


def test_served_name_says_what_is_served():
    from raydemand.forecast.guard import served_name

    served = {"model": "crossattnrnn", "baseline": "attribute_median", "weight": 0.6}
    assert served_name(served) == "0.6 x crossattnrnn + 0.4 x attribute_median"
    assert served_name({**served, "weight": 0.0}) == "attribute_median"
    assert served_name({**served, "weight": 1.0}) == "crossattnrnn"
    assert served_name({**served, "baseline": None}) == "crossattnrnn"
