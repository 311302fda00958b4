"""Caches kept on disk across runs are keyed by what fixes their content: the same settings reuse
them, a changed encoder, caption, window setting or input recomputes (embeddings of the forecast
family, the prepare job's steps, the basket family's training windows)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_encoders import write_tiny_bert
from test_pipeline_windows import HAND, orders_table

from raydemand.data.pipelines import embeddings
from raydemand.data.pipelines.cache import file_identity, is_current, mark_current


def test_file_identity_follows_data_files_not_metadata(tmp_path):
    folder = tmp_path / "table"
    folder.mkdir()
    (folder / "lines.csv").write_text("a\n1\n")
    before = file_identity(folder)
    (folder / "_summary.json").write_text("{}")  # a stage's own metadata is not input data
    assert file_identity(folder) == before
    (folder / "lines.csv").write_text("a\n2\n")
    os.utime(folder / "lines.csv", ns=(1, 1))  # same size, other time: rewritten, so another input
    assert file_identity(folder) != before
    assert file_identity("completejourney") == {"source": "completejourney"}

    mark_current(folder, {"n": 1, "inputs": before})
    assert is_current(folder, {"inputs": before, "n": 1}) and not is_current(folder, {"n": 2, "inputs": before})
    assert not is_current(tmp_path, {"n": 1})  # no key file: never current


@pytest.fixture
def products(tmp_path):
    """Three products with an image and a caption each, validated as training reads them."""
    from raydemand.forecast.data import load_table

    rng = np.random.default_rng(0)
    rows = []
    for code in ("A", "B", "C"):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / f"{code}.png")
        rows.append({"external_code": code, "release_date": "2019-03-01", "image_path": f"{code}.png",
                     "caption": f"a red dress {code}"})
    pd.DataFrame(rows).to_csv(tmp_path / "products.csv", index=False)
    return load_table(tmp_path / "products.csv", require_targets=False)


class CountingRun:
    """The real embeddings stage, counting which fields it encoded."""

    def __init__(self, monkeypatch):
        self.fields, real = [], embeddings.run

        def run(source, out, cfg, **kwargs):
            self.fields.append(cfg.field)
            return real(source, out, cfg, **kwargs)

        monkeypatch.setattr(embeddings, "run", run)


def test_forecast_embeddings_are_keyed_by_encoder_and_captions(ray_session, products, tmp_path, monkeypatch):
    from raydemand.config import load_config
    from raydemand.forecast.config import ForecastConfig
    from raydemand.forecast.data import embed_products

    bert = write_tiny_bert(tmp_path / "bert")
    base = [f"data.text_encoder={bert}", "data.image_size=16", "data.image_encoder_args={weights: null, seed: 0}"]
    cache, runs = tmp_path / "cache", CountingRun(monkeypatch)

    first = embed_products(products, load_config(ForecastConfig, None, base), cache)
    assert sorted(runs.fields) == ["caption", "image"] and set(first["image_vec"]) == {"A", "B", "C"}
    again = embed_products(products, load_config(ForecastConfig, None, base), cache)
    assert sorted(runs.fields) == ["caption", "image"]  # the same config: nothing encoded again
    np.testing.assert_array_equal(again["image_vec"]["A"], first["image_vec"]["A"])

    reseeded = load_config(ForecastConfig, None, [*base[:2], "data.image_encoder_args={weights: null, seed: 1}"])
    other_weights = embed_products(products, reseeded, cache)
    assert sorted(runs.fields) == ["caption", "image", "image"]  # the captions' encoder did not change
    assert not np.allclose(other_weights["image_vec"]["A"], first["image_vec"]["A"])
    np.testing.assert_array_equal(other_weights["caption_vec"]["A"], first["caption_vec"]["A"])

    recaptioned = embed_products(products.assign(caption="a black boot"), load_config(ForecastConfig, None, base),
                                 cache)
    assert sorted(runs.fields) == ["caption", "caption", "image", "image"]
    assert not np.allclose(recaptioned["caption_vec"]["A"], first["caption_vec"]["A"])
    np.testing.assert_array_equal(recaptioned["image_vec"]["A"], first["image_vec"]["A"])  # reused, not rerun


def test_prepare_reruns_windows_when_their_settings_or_orders_change(ray_session, tmp_path):
    from raydemand.data.prepare import PrepareConfig, run_prepare

    orders = tmp_path / "orders.csv"
    orders_table(HAND).to_csv(orders, index=False)

    def prepare(n_orders: int) -> dict:
        cfg = PrepareConfig(out=str(tmp_path / "out"), orders=str(orders), images=None, embeddings=[],
                            windows={"n_orders": n_orders, "buckets": 1})
        return run_prepare(cfg, log=lambda _: None)["windows"]

    assert not prepare(1).get("reused")
    assert prepare(1).get("reused")
    changed = prepare(2)
    assert not changed.get("reused") and changed["n_orders"] == 2
    assert pd.read_parquet(tmp_path / "out" / "windows")["n_history"].max() == 2
    orders_table({**HAND, 4: [[7], [8]]}).to_csv(orders, index=False)  # new orders, same settings
    rerun = prepare(2)
    assert not rerun.get("reused") and rerun["windows"] == changed["windows"] + 1


def test_basket_training_windows_are_keyed_by_their_settings(ray_session, tmp_path):
    from raydemand.basket.base import _write_windows
    from raydemand.basket.config import DataConfig

    lines = tmp_path / "train_lines.parquet"
    orders_table(HAND).to_parquet(lines, index=False)
    one = _write_windows(lines, DataConfig(n_orders=1, feature_orders=1))
    written = os.stat(os.path.join(one, "_cache_key.json")).st_mtime_ns
    assert _write_windows(lines, DataConfig(n_orders=1, feature_orders=1)) == one  # reused as it is
    assert os.stat(os.path.join(one, "_cache_key.json")).st_mtime_ns == written
    two = _write_windows(lines, DataConfig(n_orders=1, feature_orders=2))
    assert two != one
    assert pd.read_parquet(one)["n_history"].max() == 1 and pd.read_parquet(two)["n_history"].max() == 2
