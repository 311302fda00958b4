"""CrossAttnRNN blocks, losses and metrics as plain PyTorch / numpy (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raydemand.forecast.config import ForecastConfig, LossConfig, ModelConfig
from raydemand.forecast.losses import ForecastLoss, info_nce, smape
from raydemand.forecast.metrics import both_scales, forecast_metrics
from raydemand.forecast.model import MODELS, CrossAttnRNN, ImageEncoder, create_model

B, K, H = 6, 4, 12


def batch(image_shape=(B, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.rand(B, K, generator=g)
    weight[0] = 0  # a product with no similar past product
    weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-6)
    return {"image": torch.randn(*image_shape, generator=g), "caption": torch.randn(B, 24, generator=g),
            "has_image": torch.tensor([1, 1, 0, 1, 1, 0]).bool(), "has_caption": torch.tensor([1, 0, 1, 1, 1, 0]).bool(),
            "neighbours": torch.rand(B, K, H, generator=g) * 3, "neighbour_weight": weight,
            "neighbour_observed": torch.arange(H)[None, None, :] < torch.randint(1, H + 1, (B, K, 1), generator=g),
            "group": torch.tensor([0, 0, 1, 2, 3, 4]), "target": torch.rand(B, H, generator=g) * 3}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("variant", [{}, {"use_image": False}, {"use_caption": False}, {"residual": False}])
def test_every_model_forward_backward(name, variant):
    torch.manual_seed(0)
    model = create_model(name, ModelConfig(embed_dim=16, heads=2, decoder_hidden=16, **variant), 32, 24)
    b = batch()
    out = model(b)
    assert out["forecast"].shape == (B, H)
    terms = ForecastLoss(LossConfig())(out, b)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.decoder[-1].weight.grad.abs().sum() > 0  # zero-initialised last layer still learns


def test_seed_module_names():
    model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2), 32, 24)
    for name in ("image_encoder", "caption_proj", "ts_embedder", "image_text_attn", "fusion_proj", "attention",
                 "decoder"):
        assert hasattr(model, name), name
    assert isinstance(model.image_encoder, ImageEncoder)
    assert isinstance(model.image_text_attn, torch.nn.MultiheadAttention)
    assert isinstance(model.ts_embedder, torch.nn.GRU)


def test_missing_modalities_are_masked():
    """A product without image/caption gets the same forecast whatever its (absent) vectors hold."""
    torch.manual_seed(0)
    model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2, dropout=0.0), 32, 24).eval()
    torch.nn.init.normal_(model.decoder[-1].weight)  # zero-initialised: make the static branch matter
    b = batch()
    noisy = {**b, "image": b["image"].clone(), "caption": b["caption"].clone()}
    noisy["image"][2] += 100.0  # row 2 has no image
    noisy["caption"][1] += 100.0  # row 1 has no caption
    noisy["image"][5] -= 50.0
    noisy["caption"][5] -= 50.0  # row 5 has neither
    with torch.no_grad():
        a, c = model(b)["forecast"], model(noisy)["forecast"]
    torch.testing.assert_close(a, c)
    noisy["image"][0] += 1.0  # row 0 has an image: it matters
    with torch.no_grad():
        assert not torch.allclose(model(noisy)["forecast"][0], a[0])


@pytest.mark.parametrize("base", ["mean", "median"])
def test_residual_model_starts_at_the_neighbours_base(base):
    model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2, base=base), 32, 24).eval()
    b = batch()
    with torch.no_grad():
        out = model(b)["forecast"]
    w, curves = b["neighbour_weight"].numpy(), b["neighbours"].numpy()
    if base == "mean":
        expected = (w[..., None] * curves).sum(1)
    else:  # the smallest value whose cumulated weight reaches half
        expected = np.zeros((B, H), np.float32)
        for i in range(1, B):
            for t in range(H):
                order = np.argsort(curves[i, :, t], kind="stable")
                cum = np.cumsum(w[i, order])
                expected[i, t] = curves[i, order[np.searchsorted(cum, 0.5 * cum[-1] - 1e-7)], t]
    torch.testing.assert_close(out, torch.as_tensor(expected))
    assert torch.all(out[0] == 0)  # no neighbours, nothing learned yet


def test_weighted_median_picks_the_heavy_neighbour():
    from raydemand.forecast.model import weighted_median

    curves = torch.tensor([[[1.0, 5.0], [2.0, 0.0], [9.0, 1.0]]])  # (1, K=3, H=2)
    assert weighted_median(curves, torch.tensor([[0.2, 0.2, 0.6]])).tolist() == [[9.0, 1.0]]
    assert weighted_median(curves, torch.tensor([[0.6, 0.2, 0.2]])).tolist() == [[1.0, 5.0]]
    assert weighted_median(curves, torch.zeros(1, 3)).tolist() == [[0.0, 0.0]]


def test_finetuned_resnet_image_encoder_tiny():
    torch.manual_seed(0)
    cfg = ModelConfig(embed_dim=16, heads=2, image_encoder="resnet18")
    model = CrossAttnRNN(cfg, None, 24)
    b = batch(image_shape=(B, 3, 32, 32))
    terms = ForecastLoss(LossConfig())(model(b), b)
    terms["loss"].backward()
    conv = model.image_encoder.trunk[0].weight
    assert conv.grad is not None and conv.grad.abs().sum() > 0  # fine-tuned, not frozen
    tokens = model.image_encoder(b["image"])
    assert tokens.shape == (B, 1, 16)  # 32 px -> a 1x1 feature map; larger images give more tokens
    assert model.image_encoder(torch.randn(2, 3, 64, 64)).shape == (2, 4, 16)


def test_named_weights_must_be_in_the_local_cache(tmp_path, monkeypatch):
    from raydemand.errors import InputError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(InputError, match="local torch hub cache"):
        ImageEncoder("resnet18", 16, weights="IMAGENET1K_V1")


def test_heads_must_divide_embed_dim():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="divisible"):
        ModelConfig(embed_dim=30, heads=4)


def test_loss_weights_come_from_the_config():
    b = batch()
    out = {"forecast": b["target"] + 1.0, "image_emb": torch.randn(B, 8), "caption_emb": torch.randn(B, 8),
           "paired": b["has_image"] & b["has_caption"]}
    only_mae = ForecastLoss(LossConfig(mae=1, mse=0, smape=0, contrastive=0))(out, b)
    assert only_mae["loss"].item() == pytest.approx(1.0)
    assert "contrastive" not in only_mae
    with_nce = ForecastLoss(LossConfig(mae=1, mse=0, smape=0, contrastive=0.5))(out, b)
    assert with_nce["loss"].item() == pytest.approx(1.0 + 0.5 * with_nce["contrastive"].item())


def test_info_nce_prefers_matching_pairs_and_ignores_same_product():
    torch.manual_seed(0)
    x = torch.randn(8, 16)
    group = torch.arange(8)
    assert info_nce(x, x, group, 0.1) < info_nce(x, torch.randn(8, 16), group, 0.1)
    # rows 0 and 1 are one product: the same image and caption must not be a negative of each other
    y = x.clone()
    y[1] = y[0]
    same = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])
    assert info_nce(y, y, same, 0.1) < info_nce(y, y, group, 0.1)


def test_smape_bounds():
    y = torch.tensor([[1.0, 0.0, 2.0]])
    assert smape(y, y).item() == 0.0
    assert smape(torch.zeros_like(y), y).item() == pytest.approx(2 * 2 / 3)


def test_metrics_overall_and_per_week():
    target = np.array([[1.0, 2.0], [3.0, 0.0]])
    pred = np.array([[2.0, 2.0], [1.0, 0.0]])
    m = forecast_metrics(pred, target)
    assert m["mae"] == pytest.approx(0.75)
    assert m["mse"] == pytest.approx(1.25)
    assert m["wape"] == pytest.approx(100 * 3 / 6)
    assert m["wape_w0"] == pytest.approx(100 * 3 / 4)
    assert m["mae_w1"] == 0.0
    scaled = both_scales(pred, target, scale=10.0)
    assert scaled["units"]["mae"] == pytest.approx(7.5)
    assert scaled["units"]["wape"] == pytest.approx(scaled["normalised"]["wape"])
    with pytest.raises(ValueError, match="products, weeks"):
        forecast_metrics(pred[0], target[0])


def test_config_overrides_reach_every_weight():
    from raydemand.config import ConfigError, load_config

    cfg = load_config(ForecastConfig, None, ["loss.contrastive=0", "loss.mae=1", "model.use_image=false"])
    assert cfg.loss.contrastive == 0 and cfg.loss.mae == 1 and not cfg.model.use_image
    with pytest.raises(ConfigError, match="loss.bogus"):
        load_config(ForecastConfig, None, ["loss.bogus=1"])
