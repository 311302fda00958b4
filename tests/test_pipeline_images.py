"""Image preprocessing: per-image functions without Ray, then one Ray Data run per source kind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from raydemand.config import ConfigError, load_config
from raydemand.data.pipelines.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImagesConfig,
    decode_image,
    list_images,
    preprocess_batch,
    preprocess_image,
    run,
)
from raydemand.errors import InputError


def _save(path, array, mode=None, **kwargs):
    Image.fromarray(array, mode).save(path, **kwargs)
    return path


@pytest.fixture
def mode_images(tmp_path):
    """One small image per Pillow mode the pipeline must read, each 30 x 40 (H x W)."""
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 200
    files = {"RGB": _save(tmp_path / "rgb.png", rgb)}
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[:, :20] = (255, 0, 0, 255)  # left half opaque red, right half fully transparent
    files["RGBA"] = _save(tmp_path / "rgba.png", rgba)
    files["L"] = _save(tmp_path / "l.png", np.full((30, 40), 128, np.uint8))
    files["LA"] = _save(tmp_path / "la.png", np.dstack([np.full((30, 40), 50, np.uint8), np.zeros((30, 40), np.uint8)]))
    files["P"] = tmp_path / "p.png"
    Image.fromarray(rgb).quantize(4).save(files["P"])
    files["I;16"] = _save(tmp_path / "i16.png", np.full((30, 40), 65535, np.uint16))
    files["CMYK"] = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(files["CMYK"])
    files["1"] = tmp_path / "bilevel.png"
    Image.fromarray(np.full((30, 40), 255, np.uint8)).convert("1").save(files["1"])
    return files


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "CMYK", "1"])
@pytest.mark.parametrize("channels", [1, 3])
def test_decode_any_mode(mode_images, mode, channels):
    with Image.open(mode_images[mode]) as img:
        assert img.mode == mode
    arr = decode_image(mode_images[mode], (16, 24), channels)
    assert arr.shape == (channels, 16, 24) and arr.dtype == np.float32
    assert 0.0 <= arr.min() and arr.max() <= 1.0


def test_transparency_is_white_and_colours_are_kept(mode_images):
    arr = decode_image(mode_images["RGBA"], (30, 40), 3)
    np.testing.assert_allclose(arr[:, 10, 5], [1.0, 0.0, 0.0], atol=1e-6)  # opaque red stays red
    np.testing.assert_allclose(arr[:, 10, 35], [1.0, 1.0, 1.0], atol=1e-6)  # transparent -> white
    # A fully transparent greyscale image is all white, whatever its grey.
    np.testing.assert_allclose(decode_image(mode_images["LA"], (30, 40), 1), 1.0, atol=1e-6)


def test_greyscale_and_wide_greyscale_values(mode_images):
    np.testing.assert_allclose(decode_image(mode_images["L"], (30, 40), 3), 128 / 255, atol=1e-6)
    np.testing.assert_allclose(decode_image(mode_images["I;16"], (30, 40), 1), 1.0, atol=1e-6)  # 65535 -> 1
    red = decode_image(mode_images["RGB"], (30, 40), 1)
    np.testing.assert_allclose(red, round(0.299 * 200) / 255, atol=1 / 255)  # ITU-R 601-2 luma


def test_normalisation_values(mode_images):
    cfg = ImagesConfig(size=(30, 40), mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 2.0])
    arr = preprocess_image(mode_images["RGB"], cfg)
    expected = [(200 / 255 - 0.5) / 0.5, (0 - 0.25) / 0.25, 0.0]
    np.testing.assert_allclose(arr[:, 3, 3], expected, atol=1e-6)
    assert arr.shape == (3, 30, 40)


def test_default_statistics_follow_channels():
    mean, std = ImagesConfig().stats()
    np.testing.assert_allclose(mean, IMAGENET_MEAN)
    np.testing.assert_allclose(std, IMAGENET_STD)
    mean, std = ImagesConfig(channels=1).stats()
    np.testing.assert_allclose(mean, [np.mean(IMAGENET_MEAN)])
    mean, _ = ImagesConfig(mean=[0.5]).stats()
    np.testing.assert_allclose(mean, [0.5, 0.5, 0.5])  # one value serves every channel


def test_config_rejects_statistics_that_do_not_fit(tmp_path):
    with pytest.raises(ConfigError, match="mean has 2 values"):
        load_config(ImagesConfig, overrides=["mean=[0.1, 0.2]"])
    with pytest.raises(ConfigError, match="std values must be > 0"):
        load_config(ImagesConfig, overrides=["std=[0]"])
    assert load_config(ImagesConfig, overrides=["size=[32, 48]"]).hw == (32, 48)


def test_undecodable_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken.png: cannot decode image"):
        preprocess_image(bad, ImagesConfig())


def test_batch_skips_undecodable_files_when_asked(mode_images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    batch = {"key": np.array(["a", "b", "c"], dtype=object),
             "path": np.array([str(mode_images["RGB"]), str(bad), str(mode_images["L"])], dtype=object)}
    with pytest.raises(InputError, match="broken.png"):
        preprocess_batch(batch, ImagesConfig(size=8))
    out = preprocess_batch(batch, ImagesConfig(size=8, on_error="skip"))
    assert list(out["key"]) == ["a", "c"] and out["image"].shape == (2, 3, 8, 8)


def _product_table(folder, images):
    """Two stores per product (VISUELLE 2.0 rows); product C has no image."""
    rows = []
    for code, image in [("A", images[0]), ("B", images[1]), ("C", "")]:
        for store in (1, 2):
            rows.append({"external_code": code, "retail": store, "release_date": "2019-03-01",
                         "category": "dress", "image_path": image})
    path = folder / "products.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_list_images_takes_one_image_per_product(mode_images, tmp_path):
    table = _product_table(tmp_path, ["rgb.png", "rgba.png"])
    listed, info = list_images(table, ImagesConfig())
    assert list(listed["external_code"]) == ["A", "B"]
    assert list(listed["category"]) == ["dress", "dress"]
    assert info == {"key": "external_code", "skipped_no_image": 1}


def test_list_images_from_category_folders(tmp_path):
    for category in ("coat", "dress"):
        (tmp_path / "src" / category).mkdir(parents=True)
        _save(tmp_path / "src" / category / "x.png", np.zeros((5, 5), np.uint8))
    (tmp_path / "src" / "dress" / "notes.txt").write_text("not an image")
    listed, info = list_images(tmp_path / "src", ImagesConfig())
    assert list(listed["key"]) == ["coat/x.png", "dress/x.png"]
    assert list(listed["category"]) == ["coat", "dress"]
    assert info["key"] == "key"


def test_run_product_table(ray_session, mode_images, tmp_path):
    import pyarrow.parquet as pq

    table = _product_table(tmp_path, ["rgb.png", "rgba.png"])
    summary = run(table, tmp_path / "out", ImagesConfig(size=(12, 16), batch_size=1))
    assert summary["images"] == 2 and summary["skipped_no_image"] == 1 and summary["skipped_unreadable"] == 0
    assert summary["shape"] == [3, 12, 16]
    data = pq.read_table(tmp_path / "out").to_pandas().sort_values("external_code")
    assert list(data["external_code"]) == ["A", "B"]
    images = np.stack(data["image"].to_numpy())
    assert images.shape == (2, 3, 12, 16) and images.dtype == np.float32
    np.testing.assert_allclose(images[0], preprocess_image(mode_images["RGB"], ImagesConfig(size=(12, 16))), atol=1e-6)
    assert json.loads((tmp_path / "out" / "_summary.json").read_text())["images"] == 2
    assert load_config(ImagesConfig, tmp_path / "out" / "_config.yaml").hw == (12, 16)


def test_run_folder_with_a_broken_image(ray_session, tmp_path):
    for i, category in enumerate(("coat", "dress")):
        (tmp_path / "src" / category).mkdir(parents=True)
        _save(tmp_path / "src" / category / f"{i}.png", np.full((20, 10), 100, np.uint8))
    (tmp_path / "src" / "dress" / "broken.png").write_bytes(b"\x89PNG but not really")
    cfg = ImagesConfig(size=8, channels=1, batch_size=2)
    with pytest.raises(InputError, match=r"dress/broken\.png: cannot decode image"):
        run(tmp_path / "src", tmp_path / "out", cfg)
    assert not (tmp_path / "out").exists()  # nothing half-written
    summary = run(tmp_path / "src", tmp_path / "out", cfg.model_copy(update={"on_error": "skip"}))
    assert summary["images"] == 2 and summary["skipped_unreadable"] == 1
    data = pd.read_parquet(tmp_path / "out")
    assert sorted(data["category"]) == ["coat", "dress"]
    assert np.stack(data["image"].to_numpy()).shape == (2, 1, 8, 8)
