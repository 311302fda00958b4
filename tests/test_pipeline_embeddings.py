"""The embedding cache: one Ray Data run per field kind (text, image) on tiny random encoders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_encoders import write_tiny_bert

from raydemand.data.pipelines.embeddings import EmbeddingsConfig, embeddings_dataset, load_embeddings, run
from raydemand.data.pipelines.images import ImagesConfig, preprocess_image
from raydemand.encoders import create_encoder
from raydemand.errors import InputError


@pytest.fixture
def products(tmp_path):
    """Three products in two stores each; B has no caption, C no image."""
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 30, 4), dtype=np.uint8), "RGBA").save(tmp_path / name)
    rows = [{"external_code": code, "retail": store, "release_date": "2019-03-01", "image_path": image,
             "caption": caption}
            for code, image, caption in [("A", "a.png", "a red dress"), ("B", "b.png", ""),
                                         ("C", "", "a black boot for winter")]
            for store in (1, 2)]
    path = tmp_path / "products.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_caption_embeddings_match_the_encoder(ray_session, products, tmp_path):
    model = write_tiny_bert(tmp_path / "bert")
    cfg = EmbeddingsConfig(encoder=str(model), encoder_args={"pooling": "mean"}, field="caption", batch_size=1)
    summary = run(products, tmp_path / "out", cfg)
    assert summary["rows"] == 2 and summary["skipped_no_caption"] == 1 and summary["dim"] == 16
    keys, vectors = load_embeddings(tmp_path / "out")
    order = np.argsort(keys)
    assert list(keys[order]) == ["A", "C"] and vectors.shape == (2, 16) and vectors.dtype == np.float32
    direct = create_encoder(str(model), pooling="mean").encode(["a red dress", "a black boot for winter"])
    np.testing.assert_allclose(vectors[order], direct, rtol=1e-4, atol=1e-5)
    info = json.loads((tmp_path / "out" / "_encoder.json").read_text())
    assert info["kind"] == "text" and info["pooling"] == "mean" and info["field"] == "caption" and info["dim"] == 16


def test_image_embeddings(ray_session, products, tmp_path):
    cfg = EmbeddingsConfig(encoder="resnet18", images=ImagesConfig(size=32))
    summary = run(products, tmp_path / "out", cfg)
    assert summary["rows"] == 2 and summary["skipped_no_image"] == 1 and summary["dim"] == 512
    keys, vectors = load_embeddings(tmp_path / "out")
    order = np.argsort(keys)
    assert list(keys[order]) == ["A", "B"] and vectors.shape == (2, 512)
    image = preprocess_image(tmp_path / "a.png", ImagesConfig(size=32))[None]
    np.testing.assert_allclose(vectors[order][0], create_encoder("resnet18").encode(image)[0], rtol=1e-4, atol=1e-4)
    info = json.loads((tmp_path / "out" / "_encoder.json").read_text())
    assert info["name"] == "resnet18" and info["weights"] is None and info["images"]["size"] == 32


def test_field_must_suit_the_encoder(products):
    with pytest.raises(InputError, match="encoder 'resnet18' encodes images; field 'caption' needs a text encoder"):
        embeddings_dataset(products, EmbeddingsConfig(encoder="resnet18", field="caption"))
    with pytest.raises(InputError, match="take 3 channels"):
        embeddings_dataset(products, EmbeddingsConfig(images=ImagesConfig(channels=1)))
    with pytest.raises(InputError, match="no 'text' column"):
        embeddings_dataset(products, EmbeddingsConfig(encoder="minilm", field="text"))
