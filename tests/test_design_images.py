"""The three image sources of the design family, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from raydemand.design.config import ImageSourceConfig
from raydemand.design.images import load_images, to_uint8
from raydemand.errors import InputError


def test_fashion_mnist_upsampled_grey():
    images = load_images(ImageSourceConfig(limit=30))
    assert images.images.shape == (30, 64, 64, 1) and images.images.dtype == np.uint8
    assert len(images.categories) == 10 and images.labels.max() < 10 and images.sales is None
    x = images.to_float()
    assert x.shape == (30, 1, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(x), images.images)  # the float view round-trips
    rgb = load_images(ImageSourceConfig(limit=4, channels=3, size=32))
    assert rgb.images.shape == (4, 32, 32, 3)


def test_category_folders(tmp_path):
    for cat, value in (("boots", 30), ("hats", 200)):
        (tmp_path / cat).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 10, 3), value, np.uint8)).save(tmp_path / cat / f"{i}.png")
    images = load_images(ImageSourceConfig(source=str(tmp_path), size=16))
    assert images.categories == ["boots", "hats"] and images.images.shape == (6, 16, 16, 3)
    assert list(images.labels) == [0, 0, 0, 1, 1, 1] and images.sales is None
    assert abs(int(images.images[0].mean()) - 30) <= 1 and abs(int(images.images[-1].mean()) - 200) <= 1
    with pytest.raises(InputError, match="needs sales"):
        load_images(ImageSourceConfig(source=str(tmp_path)), top=2)


def test_visuelle_table_with_sales_and_top(visuelle2_dir):
    everything = load_images(ImageSourceConfig(source=str(visuelle2_dir), size=16))
    assert everything.images.shape[1:] == (16, 16, 3) and everything.sales is not None
    assert len(everything) == len(set(everything.keys))  # one image per product, not per store row
    top = load_images(ImageSourceConfig(source=str(visuelle2_dir), size=16), top=10)
    assert len(top) == 10 and list(top.sales) == sorted(everything.sales, reverse=True)[:10]
    assert set(top.categories) <= set(everything.categories)


def test_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_images(ImageSourceConfig(source=str(tmp_path / "missing")))
    with pytest.raises(InputError, match="fashion-mnist has no sales"):
        load_images(ImageSourceConfig(), top=5)
