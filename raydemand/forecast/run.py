"""Run directories: the training data a run is fitted on, `model.pt`, and `load_run` for predict/serve.

`model.pt` holds everything a forecast needs without the training table: the config, the
forecaster's state, the normalising scale, the retrieval pool (codes, release dates, attribute
hashes, embeddings, normalised curves of the training rows and their launch profile) and the
table's exogenous weekly series where it has them (`trends`), as tensors and plain values
(`torch.load(..., weights_only=True)`). New products still need captions and frozen embeddings;
`load_run(...).predict(df)` computes them with the run's encoders through the Ray Data captioning and
embedding stages, or takes them from `ProductEncoders` (the same encoders in-process, for Serve).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raydemand.data.schema import HORIZON, TARGET_COLUMNS
from raydemand.errors import InputError
from raydemand.forecast.base import Forecaster, create_forecaster, register_from
from raydemand.forecast.config import DataConfig, ForecastConfig
from raydemand.forecast.data import (
    Rows,
    embed_products,
    load_table,
    prepare_rows,
    split_by_release,
    units_per_value,
)
from raydemand.forecast.retrieval import Side, attribute_columns, launch_profile
from raydemand.forecast.trends import TrendSeries, load_trend_series



@dataclass
class TrainingData:
    train: Rows
    val: Rows
    pool: Rows  # train + val: every curve retrieval may read (its weeks visible before a target's release)
    scale: float  # units per normalised unit (mean weekly units of the training rows)
    units_per_value: float  # units per stored sales value of the table
    attributes: list[str]
    trends: TrendSeries | None = None  # the table's exogenous weekly series, kept in model.pt for predict


def table_split(source: str | Path) -> tuple[str | None, str | None]:
    """(train split, test split) names of a source that ships them (VISUELLE folders), else (None, None)."""
    from raydemand.data.sources import detect_layout

    path = Path(str(source))
    if path.is_dir() and (layout := detect_layout(path)) is not None and layout.name.startswith("visuelle"):
        return "train", "test"
    return None, None


def select_rows(df: pd.DataFrame, cfg: DataConfig, upv: float, part: str) -> pd.DataFrame:
    """The population a run models: launched products only where the table marks them, enough units,
    and for tables without their own test split the earlier (`train`) or later (`test`) products."""
    if cfg.launched_only and "launched" in df.columns:
        df = df[df["launched"].astype(bool)]
    if cfg.min_units > 0 and all(c in df for c in TARGET_COLUMNS):
        df = df[df[TARGET_COLUMNS].sum(axis=1) * upv >= cfg.min_units]
    if cfg.holdout_share > 0 and part != "all":
        early, late = split_by_release(df, cfg.holdout_share)
        df = df.iloc[early if part == "train" else late]
    if df.empty:
        raise InputError(f"no product rows left after the data filters ({cfg.model_dump()})")
    return df.reset_index(drop=True)


def prepare_training(cfg: ForecastConfig, source: str | Path, cache_dir: str | Path) -> TrainingData:
    train_split, _ = table_split(source)
    upv = units_per_value(source)
    df = select_rows(load_table(source, split=train_split), cfg.data, upv, "train")
    embedded = embed_products(df, cfg, cache_dir)
    attrs = attribute_columns(df, cfg.retrieval.attributes)
    early, late = split_by_release(df, cfg.data.val_share)
    scale = float(df.iloc[early][TARGET_COLUMNS].to_numpy().mean() * upv)
    if not scale > 0:
        raise InputError(f"{source}: the training rows sold nothing; cannot normalise sales")
    series = load_trend_series(source)
    pool = prepare_rows(df, embedded, attrs, scale, upv, trends=series, trend_attributes=cfg.data.trend_attributes)
    pool.profile = launch_profile(pool.target[early])
    return TrainingData(pool.take(early), pool.take(late), pool, scale, upv, attrs, series)


# ---- model.pt --------------------------------------------------------------------------------------


def _pool_state(pool: Rows, profile: np.ndarray) -> dict[str, Any]:
    import torch

    s = pool.side
    return {"codes": [str(c) for c in s.codes], "release": torch.as_tensor(s.release.astype(np.int64)),
            "attributes": torch.as_tensor(s.attributes.view(np.int64)), "caption": torch.as_tensor(s.caption),
            "image": torch.as_tensor(s.image), "target": torch.as_tensor(pool.target),
            "profile": torch.as_tensor(profile)}


def _pool_from_state(state: dict[str, Any]) -> Rows:
    side = Side(np.asarray(state["codes"], dtype=object), state["release"].numpy().astype("datetime64[D]"),
                state["attributes"].numpy().view(np.uint64), state["caption"].numpy(), state["image"].numpy())
    n = len(side.codes)
    empty = np.zeros((n, 0), np.float32)
    keys = pd.DataFrame({"external_code": side.codes, "release_date": side.release.astype("datetime64[ns]")})
    return Rows(keys, side, empty, np.zeros(n, bool), empty, np.zeros(n, bool), np.zeros(n, np.int64),
                state["target"].numpy(), state["profile"].numpy())


def save_model(run_dir: Path, cfg: ForecastConfig, forecaster: Forecaster, data: TrainingData,
               baselines: dict[str, Forecaster] | None = None) -> Path:
    """`baselines`: the fitted baselines `evaluate` compares the served forecaster with on test."""
    from raydemand import runs

    profile = data.pool.profile if data.pool.profile is not None else launch_profile(data.train.target)
    state = {"forecaster": forecaster.name, "module": type(forecaster).__module__,
             "state": forecaster.get_state(), "scale": data.scale,
             "units_per_value": data.units_per_value, "attributes": data.attributes,
             "pool": _pool_state(data.pool, profile),
             "baselines": {name: {"module": type(b).__module__, "state": b.get_state()}
                           for name, b in (baselines or {}).items()}}
    if data.trends is not None:
        state["trends"] = data.trends.to_state()
    return runs.write_model(run_dir, "forecast", cfg, state)


class ForecastRun:
    """A trained run, loaded for prediction (CLI `predict`, `evaluate`, Serve)."""

    def __init__(self, run_dir: str | Path):
        from raydemand.runs import read_model

        self.run_dir = Path(run_dir)
        model = read_model(self.run_dir, "forecast")
        state = model.state
        register_from(state["forecaster"], state.get("module"))  # before the config names it
        self.cfg = ForecastConfig.model_validate(model.config)
        self.scale, self.units_per_value = float(state["scale"]), float(state["units_per_value"])
        self.attributes = list(state["attributes"])
        self.pool = _pool_from_state(state["pool"])
        self.trends = TrendSeries.from_state(state["trends"]) if "trends" in state else None
        self.forecaster = create_forecaster(state["forecaster"], self.cfg)
        self.forecaster.set_state(state["state"])
        self.baselines = self._baselines(state.get("baselines", {}))  # none in runs written before them

    def _baselines(self, packed: dict[str, Any]) -> dict[str, Forecaster]:
        out = {}
        for name, b in packed.items():
            register_from(name, b.get("module"))
            out[name] = create_forecaster(name, self.cfg)
            out[name].set_state(b["state"])
        return out

    def rows(self, df: pd.DataFrame, cache_dir: str | Path | None = None, with_targets: bool = False,
             embedded: dict | None = None) -> Rows:
        """`embedded`: the products' frozen vectors (`ProductEncoders.embed`) when the caller has them;
        else `embed_products` computes them (into `cache_dir`, default a temporary folder)."""
        from raydemand.data.schema import validate_products

        # Validation is idempotent: tables from `load_products` pass unchanged, raw frames (Serve) get
        # string ids, dates and absolute image paths (relative ones are taken from the working folder).
        df = validate_products(df, "products", require_targets=with_targets, base_dir=Path.cwd())
        missing = [c for c in ["external_code", "release_date", *self.attributes] if c not in df.columns]
        if missing:
            raise InputError(f"products: missing column(s) {missing}; this run compares attributes "
                             f"{self.attributes}")
        if embedded is None:
            with tempfile.TemporaryDirectory() as tmp:
                embedded = embed_products(df, self.cfg, cache_dir or tmp)
        scale = self.scale if with_targets else None
        # New products read the weeks before their release from the series the run was trained with;
        # weeks those do not cover (a release after their last date) are masked.
        return prepare_rows(df.reset_index(drop=True), embedded, self.attributes, scale, self.units_per_value,
                            trends=self.trends, trend_attributes=self.cfg.data.trend_attributes)

    def predict_rows(self, rows: Rows) -> np.ndarray:
        """(N, 12) normalised forecasts."""
        return self.forecaster.predict(rows, self.pool)

    def predict(self, df: pd.DataFrame, return_attention: bool = False, embedded: dict | None = None):
        """Forecasts for a product table (see `raydemand.data.schema.validate_products`), in the
        training table's own sales scale: key columns and weeks '0'..'11'. The CLI's `predict` and
        the Serve Forecaster both answer through this method.

        `return_attention`: (forecasts, attention), attention a list with one dict per row of plain
        floats and strings: {"image_text": [weight per image token], "neighbours":
        [{"external_code", "weight"}, ...]} for CrossAttnRNN, {} for baselines (no attention).
        `embedded`: see `rows`."""
        rows = self.rows(df, embedded=embedded)
        if return_attention:
            pred, attention = self.forecaster.explain(rows, self.pool)
        else:
            pred = self.predict_rows(rows)
        pred = pred * self.scale / self.units_per_value
        keys = df[["external_code"] + (["retail"] if "retail" in df else [])].reset_index(drop=True)
        table = pd.concat([keys, pd.DataFrame(pred, columns=[str(i) for i in range(HORIZON)])], axis=1)
        return (table, attention) if return_attention else table


def load_run(run_dir: str | Path) -> ForecastRun:
    return ForecastRun(run_dir)


class ProductEncoders:
    """A run's caption and image encoders loaded in this process (a Serve replica): the encoder
    names, arguments and image preprocessing of the embedding stages `embed_products` runs, so that
    both give a product the same vectors without a Ray Data job per request. `pixels`: the run's model
    has a fine-tuned image trunk, which reads the decoded images themselves (`embed` adds them)."""

    def __init__(self, cfg: DataConfig, device: str = "cpu", pixels: bool = False):
        from raydemand.data.pipelines.images import ImagesConfig
        from raydemand.encoders import create_encoder

        self.text = create_encoder(cfg.text_encoder, pooling=cfg.text_pooling, device=device)
        self.image = create_encoder(cfg.image_encoder, device=device, **cfg.image_encoder_args)
        self.images_cfg = ImagesConfig(size=cfg.image_size)
        self.pixels = pixels

    def embed(self, codes: list[str], captions: list[str], images: list[bytes | None]) -> dict:
        """`embed_products`' answer for products whose captions are known ('' for none) and whose
        images come as file bytes (None for none)."""
        import io

        from raydemand.data.pipelines.images import preprocess_image

        with_caption = [i for i, c in enumerate(captions) if c]
        with_image = [i for i, image in enumerate(images) if image]
        caption_vec = dict(zip([codes[i] for i in with_caption],
                               self.text.encode([captions[i] for i in with_caption]))) if with_caption else {}
        image_vec, decoded = {}, {}
        if with_image:
            pixels = np.stack([preprocess_image(io.BytesIO(images[i]), self.images_cfg)
                               for i in with_image])  # (M, 3, H, W)
            image_vec = dict(zip([codes[i] for i in with_image], self.image.encode(pixels)))
            decoded = dict(zip([codes[i] for i in with_image], pixels.astype(np.float16)))
        embedded = {"caption": dict(zip(codes, captions)), "caption_vec": caption_vec, "image_vec": image_vec,
                    "caption_dim": self.text.dim, "image_dim": self.image.dim}
        if self.pixels:  # as `embed_products` gives a trunk run (`decode_images`)
            embedded["pixels"] = decoded
        return embedded
