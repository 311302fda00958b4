"""Real run directories for the Serve tests and bench, built in seconds with each family's own
save code from small untrained models (no Ray Train): `load_run` reads them like trained runs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from raydemand import runs

CATEGORIES = ["coat", "dress", "shirt"]
COLORS = ["black", "red", "blue", "white"]
FABRICS = ["cotton", "wool", "denim"]


def trend_series(first: str = "2018-01-01", weeks: int = 100, seed: int = 0):
    """Weekly Google-Trends-like series (0..100) of every category, colour and fabric name."""
    import pandas as pd

    from raydemand.data.schema import validate_trends
    from raydemand.forecast.trends import TrendSeries

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"date": pd.date_range(first, periods=weeks, freq="7D").strftime("%Y-%m-%d"),
                       **{name: rng.integers(0, 101, weeks) for name in CATEGORIES + COLORS + FABRICS}})
    return TrendSeries.from_frame(validate_trends(df, "trends.csv"))


def forecast_run(out: Path, n: int = 60, seed: int = 0, trends: bool = False) -> Path:
    """A CrossAttnRNN run over `n` generated past products with random frozen vectors of the run's
    encoders' sizes (minilm 384, efficientnet_lite0 1280) and the default attributes captioner; `trends`: with
    the series of `trend_series` (its trend branch and model.pt's copy of the series)."""
    import pandas as pd

    from raydemand.data.schema import TARGET_COLUMNS, validate_products
    from raydemand.forecast.base import create_forecaster
    from raydemand.forecast.config import DataConfig, ForecastConfig, ModelConfig
    from raydemand.forecast.data import prepare_rows
    from raydemand.forecast.run import TrainingData, save_model
    from raydemand.forecast.train import build_model

    rng = np.random.default_rng(seed)
    codes = [f"p{i:03d}" for i in range(n)]
    df = pd.DataFrame({"external_code": codes,
                       "release_date": pd.date_range("2019-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
                       "category": rng.choice(CATEGORIES, n), "color": rng.choice(COLORS, n),
                       "fabric": rng.choice(FABRICS, n)})
    for c in TARGET_COLUMNS:
        df[c] = rng.gamma(2.0, 1.5, n).round(2)
    df = validate_products(df, "fixture", check_images=False)
    cfg = ForecastConfig(model=ModelConfig(embed_dim=16, heads=2, decoder_hidden=16), data=DataConfig(image_size=32))
    dims = {"caption_dim": 384, "image_dim": 1280}
    embedded = {"caption": {c: "" for c in codes}, "caption_dim": dims["caption_dim"], "image_dim": dims["image_dim"],
                "caption_vec": dict(zip(codes, rng.normal(size=(n, 384)).astype(np.float32))),
                "image_vec": dict(zip(codes, rng.normal(size=(n, 1280)).astype(np.float32)))}
    attrs = ["category", "color", "fabric"]
    scale = float(df[TARGET_COLUMNS].to_numpy().mean())
    series = trend_series() if trends else None
    pool = prepare_rows(df, embedded, attrs, scale, trends=series, trend_attributes=cfg.data.trend_attributes)
    if trends:
        dims["trend_series"] = len(cfg.data.trend_attributes)
    forecaster = create_forecaster("crossattnrnn", cfg)
    forecaster.dims, forecaster.model = dims, build_model(cfg, dims)
    if trends:  # the zero-initialised last layer would forecast the neighbours' base curve whatever the trends
        import torch

        torch.nn.init.normal_(forecaster.model.decoder[-1].weight, std=0.1)
    runs.start_run(out, cfg)
    save_model(out, cfg, forecaster, TrainingData(pool, pool, pool, scale, 1.0, attrs, series))
    return runs.finish_run(out, {})


def basket_run(out: Path, n_products: int = 30) -> Path:
    """A personal-top-frequency run over products 100..100+n (popularity falling with the id)."""
    from raydemand.basket.base import create_predictor, save_model
    from raydemand.basket.config import BasketConfig
    from raydemand.basket.data import Vocab

    cfg = BasketConfig(model="topfreq")
    popularity = np.linspace(0.5, 0.01, n_products)
    vocab = Vocab(np.arange(100, 100 + n_products, dtype=np.int64), popularity)
    runs.start_run(out, cfg)
    save_model(out, create_predictor(cfg, vocab), threshold=0.2)
    return runs.finish_run(out, {})


def scorer_run(out: Path, size: int = 32) -> Path:
    """An untrained resnet18 preference scorer over CATEGORIES, as `train-scorer` writes it."""
    from raydemand.design.config import ScorerConfig
    from raydemand.design.scorer import build_model

    cfg = ScorerConfig(arch="resnet18")
    model = build_model("resnet18", len(CATEGORIES))
    runs.start_run(out, cfg)
    runs.write_model(out, "scorer", cfg, {"arch": "resnet18", "size": size, "categories": CATEGORIES,
                                          "state_dict": model.state_dict(), "epoch": 0})
    return runs.finish_run(out, {})


def gan_run(out: Path) -> Path:
    """An untrained 32x32 greyscale DCGAN over CATEGORIES, as `design train` writes it."""
    from raydemand.design.config import GANTrainConfig
    from raydemand.design.models import create_gan

    cfg = GANTrainConfig()
    gan = create_gan("dcgan", n_classes=len(CATEGORIES), channels=1, size=32)
    runs.start_run(out, cfg)
    runs.write_model(out, "gan", cfg, {"args": gan.args(), "G": gan.G.state_dict(), "categories": CATEGORIES,
                                       "epoch": 0})
    return runs.finish_run(out, {})


def png_b64(side: int = 48, seed: int = 0, mode: str = "RGB") -> str:
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (side, side, 3) if mode == "RGB" else (side, side)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def bomb_b64(side: int = 6000) -> str:
    """A greyscale PNG of side x side zeros: tens of KB that would inflate to side**2 bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def product(i: int = 0, image: bool = True, caption: str | None = None) -> dict:
    p = {"external_code": f"new{i}", "release_date": "2021-06-01",
         "attributes": {"category": CATEGORIES[i % 3], "color": COLORS[i % 4], "fabric": FABRICS[i % 3]}}
    if image:
        p["image"] = png_b64(seed=i)
    if caption is not None:
        p["caption"] = caption
    return p
