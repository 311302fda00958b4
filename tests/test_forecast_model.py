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
@pytest.mark.parametrize("variant", [{}, {"use_image": False}, {"use_caption": False}, {"residual": True},
                                     {"head": "level_shape"}])
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
    model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2, base=base, residual=True), 32, 24).eval()
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


def test_neighbours_ablation_reads_no_neighbour():
    """`use_neighbours=False`: the forecast is the same whatever the neighbours' curves and weights."""
    torch.manual_seed(0)
    model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2, dropout=0.0, use_neighbours=False), 32, 24).eval()
    torch.nn.init.normal_(model.decoder[-1].weight)
    b = batch()
    other = {**b, "neighbours": b["neighbours"] * 5 + 1, "neighbour_weight": b["neighbour_weight"].flip(1)}
    with torch.no_grad():
        torch.testing.assert_close(model(b)["forecast"], model(other)["forecast"])
    model.cfg = model.cfg.model_copy(update={"use_neighbours": True})  # the same weights, neighbours read
    with torch.no_grad():
        assert not torch.allclose(model(b)["forecast"], model(other)["forecast"])


def test_level_shape_head_starts_at_the_mean_week_and_stays_positive():
    model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2, head="level_shape"), 32, 24).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch())["forecast"], torch.ones(B, H))  # zero-initialised last layer
        torch.nn.init.normal_(model.decoder[-1].weight)
        out = model(batch())["forecast"]
    assert (out > 0).all() and not torch.allclose(out, torch.ones(B, H))


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


def _attribute_rows(n=40, seed=0, colors=("red", "blue", "green"), trends=None):
    import pandas as pd

    from raydemand.data.schema import TARGET_COLUMNS, validate_products
    from raydemand.forecast.data import prepare_rows
    from raydemand.forecast.retrieval import launch_profile

    rng = np.random.default_rng(seed)
    codes = [f"p{seed}_{i:03d}" for i in range(n)]
    df = pd.DataFrame({"external_code": codes,
                       "release_date": pd.date_range("2019-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
                       "category": rng.choice(["dress", "shirt"], n), "color": rng.choice(list(colors), n)})
    for c in TARGET_COLUMNS:
        df[c] = rng.gamma(2.0, 1.5, n).round(2)
    df = validate_products(df, "attrs", check_images=False)
    embedded = {"caption": {c: "" for c in codes}, "caption_dim": 24, "image_dim": 32,
                "caption_vec": dict(zip(codes, rng.normal(size=(n, 24)).astype(np.float32))),
                "image_vec": dict(zip(codes, rng.normal(size=(n, 32)).astype(np.float32)))}
    rows = prepare_rows(df, embedded, ["category", "color"], 3.0, trends=trends,
                        trend_attributes=["category", "color", "fabric"])
    rows.profile = launch_profile(rows.target)
    return rows


def test_attribute_branch_vocab_saved_and_unknown_values(tmp_path):
    """The static attribute branch: vocabularies fitted on training rows, saved with the state and
    loaded back (same forecasts); a value never seen in training maps to the reserved index 0."""
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.train import attribute_codes, build_model, fit_vocab

    cfg = ForecastConfig(model=ModelConfig(embed_dim=16, heads=2, decoder_hidden=16, dropout=0.0,
                                           attribute_min_count=1))
    pool = _attribute_rows()
    f = create_forecaster("crossattnrnn", cfg)
    dims = f.fit_vocab(pool)
    assert [len(v) for v in f.vocab] == [2, 3] and dims["attribute_sizes"] == [2, 3]
    assert [len(v) for v in fit_vocab(pool, 1000)] == [0, 0]  # min_count: rarer values stay unknown
    f.model = build_model(cfg, dims)
    assert len(f.model.attribute_embeddings) == 2
    torch.nn.init.normal_(f.model.decoder[-1].weight)  # zero-initialised: make the static branch matter
    codes = attribute_codes(pool, f.vocab)
    assert codes.min() >= 1 and codes.max(0).tolist() == [2, 3]

    torch.save(f.get_state(), tmp_path / "state.pt")
    g = create_forecaster("crossattnrnn", cfg)
    g.set_state(torch.load(tmp_path / "state.pt", weights_only=True))
    assert [v.tolist() for v in g.vocab] == [v.tolist() for v in f.vocab]
    np.testing.assert_allclose(g.predict(pool, pool), f.predict(pool, pool), rtol=1e-5, atol=1e-6)

    # new products with a colour the training rows never had: index 0, finite forecasts
    new = _attribute_rows(n=5, seed=1, colors=("purple",))
    new_codes = attribute_codes(new, g.vocab)
    assert (new_codes[:, 1] == 0).all() and (new_codes[:, 0] >= 1).all()
    pred = g.predict(new, pool)
    assert pred.shape == (5, 12) and np.isfinite(pred).all()
    # the attribute codes reach the forecast
    arrays = g.inputs(new, pool)
    from raydemand.forecast.train import predict_arrays

    other = dict(arrays, attributes=np.zeros_like(arrays["attributes"]))
    assert not np.allclose(predict_arrays(g.model, arrays, "cpu"), predict_arrays(g.model, other, "cpu"))


def test_state_without_vocab_loads_as_the_seed_fusion():
    """model.pt files written before the caption fusion / attribute branch keep loading."""
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.train import build_model

    old_cfg = ForecastConfig(model=ModelConfig(embed_dim=16, heads=2, decoder_hidden=16, fusion="seed",
                                               attributes=False))
    dims = {"image_dim": 32, "caption_dim": 24}
    old_state = {"dims": dims, "weights": build_model(old_cfg, dims).state_dict()}  # the old get_state
    f = create_forecaster("crossattnrnn", ForecastConfig(model=ModelConfig(embed_dim=16, heads=2, decoder_hidden=16)))
    f.set_state(old_state)
    assert f.cfg.model.fusion == "seed" and f.model.fusion_proj.in_features == 32
    pool = _attribute_rows()
    assert np.isfinite(f.predict(pool, pool)).all()


def test_caption_reaches_the_forecast_with_one_image_token():
    """model.fusion=caption: with one cached image token the caption still changes the forecast;
    the seed's fusion cannot (the attention weight over one token is 1)."""
    for fusion, changes in (("caption", True), ("seed", False)):
        torch.manual_seed(0)
        model = CrossAttnRNN(ModelConfig(embed_dim=16, heads=2, dropout=0.0, fusion=fusion), 32, 24).eval()
        torch.nn.init.normal_(model.decoder[-1].weight)
        b = batch()
        other = dict(b, caption=b["caption"] + 1.0)
        with torch.no_grad():
            diff = (model(b)["forecast"] - model(other)["forecast"]).abs()[b["has_caption"]].max()
        assert (diff > 1e-4) == changes, fusion


# ---- the exogenous trend branch --------------------------------------------------------------------

S, W = 3, 52


def trend_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    observed = torch.rand(B, S, W, generator=g) > 0.2
    observed[1] = False  # a product without any series (e.g. released before the series start)
    observed[2, 0] = False  # one series masked (its category names no series)
    return dict(batch(), trends=torch.rand(B, S, W, generator=g) * observed, trend_observed=observed)


def test_trend_branch_forward_backward_and_masking():
    torch.manual_seed(0)
    cfg = ModelConfig(embed_dim=16, heads=2, decoder_hidden=16, dropout=0.0)
    model = create_model("crossattnrnn", cfg, 32, 24, trend_series=S)
    assert model.fusion_proj.in_features == 3 * 16 + 16  # image, attention, caption + the trend vector
    torch.nn.init.normal_(model.decoder[-1].weight)  # zero-initialised: make the static branch matter
    b = trend_batch()
    out = model(b)
    terms = ForecastLoss(LossConfig())(out, b)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"]) and out["forecast"].shape == (B, H)
    for name, p in model.trend_encoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name

    model.eval()
    with torch.no_grad():
        ref = model(b)["forecast"]
        masked = dict(b, trends=torch.where(b["trend_observed"], b["trends"], torch.full_like(b["trends"], 7.0)))
        torch.testing.assert_close(model(masked)["forecast"], ref)  # values under the mask are never read
        # without trend arrays in the batch every week is masked: the products without any series agree
        torch.testing.assert_close(model(batch())["forecast"][1], ref[1])
        shifted = dict(b, trends=b["trends"] + 0.1 * b["trend_observed"])
        assert not torch.allclose(model(shifted)["forecast"][0], ref[0])  # observed weeks matter


def test_no_trend_branch_without_series_or_when_switched_off():
    torch.manual_seed(0)
    plain = create_model("crossattnrnn", ModelConfig(embed_dim=16, heads=2), 32, 24)
    torch.manual_seed(0)
    off = create_model("crossattnrnn", ModelConfig(embed_dim=16, heads=2, trends=False), 32, 24, trend_series=S)
    assert plain.trend_encoder is None and off.trend_encoder is None
    assert plain.state_dict().keys() == off.state_dict().keys()
    for k, v in plain.state_dict().items():  # and initialised exactly as before the branch existed
        torch.testing.assert_close(off.state_dict()[k], v)
    with torch.no_grad():
        plain.eval(), off.eval()
        torch.testing.assert_close(off(trend_batch())["forecast"], plain(batch())["forecast"])


def _trend_series(weeks=120, seed=0):
    import pandas as pd

    from raydemand.data.schema import validate_trends
    from raydemand.forecast.trends import TrendSeries

    rng = np.random.default_rng(seed)
    names = ["dress", "shirt", "red", "blue", "green"]
    df = pd.DataFrame({"date": pd.date_range("2017-12-04", periods=weeks, freq="7D").strftime("%Y-%m-%d"),
                       **{n: rng.integers(0, 101, weeks) for n in names}})
    return TrendSeries.from_frame(validate_trends(df, "trends.csv"))


def test_forecaster_with_trends_state_and_predict(tmp_path):
    """dims['trend_series'] records the branch; model.trends=false trains without it (and without its
    arrays); the forecaster's state loads back into the same forecasts."""
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.train import build_model, trend_series

    assert trend_series(_attribute_rows(), ForecastConfig()) == 0  # a table without series
    cfg = ForecastConfig(model=ModelConfig(embed_dim=16, heads=2, decoder_hidden=16, dropout=0.0))
    pool = _attribute_rows(trends=_trend_series())
    # the rows have a category and a colour, no fabric column: that series is masked
    assert pool.trends.shape == (40, 3, 52) and pool.trend_observed[:, :2].all() and not pool.trend_observed[:, 2].any()
    assert (pool.take(np.array([3, 1])).trends == pool.trends[[3, 1]]).all()

    f = create_forecaster("crossattnrnn", cfg)
    assert f.fit_vocab(pool)["trend_series"] == 3
    f.model = build_model(cfg, f.dims)
    torch.nn.init.normal_(f.model.decoder[-1].weight)
    arrays = f.inputs(pool, pool)
    assert arrays["trends"].shape == (40, 3, 52) and arrays["trend_observed"].dtype == bool
    torch.save(f.get_state(), tmp_path / "state.pt")
    g = create_forecaster("crossattnrnn", cfg)
    g.set_state(torch.load(tmp_path / "state.pt", weights_only=True))
    np.testing.assert_array_equal(g.predict(pool, pool), f.predict(pool, pool))

    off = create_forecaster("crossattnrnn", ForecastConfig(model=cfg.model.model_copy(update={"trends": False})))
    assert off.fit_vocab(pool)["trend_series"] == 0 and "trends" not in off.inputs(pool, pool)


@pytest.mark.parametrize("variant", __import__("raydemand.forecast.compare", fromlist=["VARIANTS"]).VARIANTS)
def test_compare_variants_are_valid_configs(variant):
    from raydemand.config import with_overrides
    from raydemand.forecast.compare import VARIANTS

    cfg = with_overrides(ForecastConfig(), VARIANTS[variant])
    assert cfg != ForecastConfig() or variant in ("full", "seed_loss")
    if variant == "no_trends":
        assert not cfg.model.trends and ForecastConfig().model.trends
def _store_rows(n_products=8, stores=3, size=32, seed=0):
    """Product x store rows (VISUELLE 2.0), the products' decoded images given as `pixels`, a few without one."""
    import pandas as pd

    from raydemand.data.schema import TARGET_COLUMNS, validate_products
    from raydemand.forecast.data import prepare_rows
    from raydemand.forecast.retrieval import launch_profile

    rng = np.random.default_rng(seed)
    codes = [f"p{i:02d}" for i in range(n_products)]
    df = pd.DataFrame({"external_code": np.repeat(codes, stores), "retail": np.tile(np.arange(stores), n_products),
                       "release_date": np.repeat(pd.date_range("2019-01-01", periods=n_products, freq="14D")
                                                 .strftime("%Y-%m-%d"), stores),
                       "category": np.repeat(rng.choice(["dress", "shirt"], n_products), stores)})
    for c in TARGET_COLUMNS:
        df[c] = rng.gamma(2.0, 1.5, len(df)).round(2)
    df = validate_products(df, "stores", check_images=False)
    with_image = codes[:-2]
    embedded = {"caption": {c: "" for c in codes}, "caption_dim": 24, "image_dim": 32, "caption_vec": {},
                "image_vec": dict(zip(with_image, rng.normal(size=(len(with_image), 32)).astype(np.float32))),
                "pixels": dict(zip(with_image, rng.normal(size=(len(with_image), 3, size, size)).astype(np.float16)))}
    rows = prepare_rows(df, embedded, ["category"], 3.0)
    rows.profile = launch_profile(rows.target)
    return rows


def test_trunk_rows_keep_one_image_per_product():
    rows = _store_rows()
    assert rows.pixels.shape == (6 + 1, 3, 32, 32) and rows.pixels.dtype == np.float16
    assert not rows.pixels[0].any()  # entry 0: rows without an image
    assert (rows.pixel_index.reshape(8, 3) == rows.pixel_index.reshape(8, 3)[:, :1]).all()  # stores share it
    assert rows.has_image.tolist() == [True] * 18 + [False] * 6 and (rows.pixel_index[18:] == 0).all()
    part = rows.take(np.array([4, 20]))
    assert part.pixels is rows.pixels and part.pixel_index.tolist() == [rows.pixel_index[4], 0]


@pytest.mark.parametrize("mode", ["none", "flip", "flip_crop"])
def test_augmentation_keeps_shapes_and_applies_in_training_only(mode):
    from raydemand.forecast.train import augment_images

    torch.manual_seed(0)
    images = torch.randn(16, 3, 32, 32)
    out = augment_images(images, mode)
    assert out.shape == images.shape
    if mode == "none":
        assert out is images
    else:  # some images change, each is its own flip or shift (no mixing across the batch)
        assert not torch.equal(out, images)
        assert torch.isclose(out.mean((1, 2, 3)), images.mean((1, 2, 3)), atol=0.2).all()


def test_finetuned_efficientnet_trunk_reads_product_images(tmp_path):
    """A trunk run in plain PyTorch: the ImageNet weights are the start, training steps move the
    trunk, the state saved in model.pt reloads (weights_only) to the same forecasts, forecasts depend
    on the product's image and are repeatable (no augmentation outside training)."""
    from raydemand.encoders import pretrained_backbone
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.train import build_model, predict_arrays, train_epoch
    from raydemand.training import WorkerContext

    cfg = ForecastConfig(batch_size=24, model=ModelConfig(embed_dim=16, heads=2, decoder_hidden=16,
                                                         image_encoder="efficientnet_lite0", augment="flip_crop"))
    pool = _store_rows()
    f = create_forecaster("crossattnrnn", cfg)
    f.model = build_model(cfg, f.fit_vocab(pool))
    shipped = pretrained_backbone("efficientnet_lite0").conv_stem.weight
    stem = f.model.image_encoder.trunk[0].weight
    torch.testing.assert_close(stem, shipped)
    torch.nn.init.normal_(f.model.decoder[-1].weight)  # zero-initialised: make the static branch matter
    arrays = f.inputs(pool, pool)
    assert "image" not in arrays and arrays["pixels"] is pool.pixels
    opt = torch.optim.AdamW(f.model.parameters(), lr=1e-2)
    ctx = WorkerContext(torch.device("cpu"), 0, 1, bf16=False)
    metrics = train_epoch(f.model, opt, ForecastLoss(cfg.loss), arrays, cfg, 0, ctx)
    assert np.isfinite(metrics["train_loss"]) and not torch.allclose(stem, shipped)  # fine-tuned

    pred = f.predict(pool, pool)
    np.testing.assert_array_equal(pred, f.predict(pool, pool))
    torch.save(f.get_state(), tmp_path / "state.pt")
    g = create_forecaster("crossattnrnn", cfg)
    g.set_state(torch.load(tmp_path / "state.pt", weights_only=True))
    np.testing.assert_allclose(g.predict(pool, pool), pred, rtol=1e-5, atol=1e-6)
    other = dict(arrays, pixels=arrays["pixels"] + np.float16(1.0))
    changed = np.abs(predict_arrays(g.model, other, "cpu") - predict_arrays(g.model, arrays, "cpu")).max(1)
    assert (changed[pool.has_image] > 1e-5).all() and (changed[~pool.has_image] < 1e-6).all()


def test_efficientnet_trunk_weights(monkeypatch):
    from raydemand.errors import InputError

    random = ImageEncoder("efficientnet_lite0", 16, weights="random")
    pretrained = ImageEncoder("efficientnet_lite0", 16)
    assert not torch.allclose(random.trunk[0].weight, pretrained.trunk[0].weight)
    assert "in_scale" not in pretrained.state_dict()  # the fixed re-normalisation is not a weight
    with pytest.raises(InputError, match="null \\(the shipped ImageNet weights\\) or 'random'"):
        ImageEncoder("efficientnet_lite0", 16, weights="IMAGENET1K_V1")
