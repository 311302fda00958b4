"""Captions for products: a registry of captioners run as a Ray Data batch-inference stage.

- `attributes` (domain): built from the catalogue's attributes, e.g. "a black cotton coat, autumn-winter".
- `generic`: what a generic captioner says of the same product: its category only ("a photo of a coat").
- `blip`: transformers' `BlipForConditionalGeneration` on the product image; with `blip_prompt`
  set the caption continues an apparel-domain prompt, without it captions are unconditional (generic).
- `column`: the table's `caption` column (else `text`) as it is.
Captions already in the table are always kept as they are; a captioner fills only the empty ones.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from raydemand.errors import InputError
from raydemand.forecast.config import CaptionConfig

CAPTIONERS: dict[str, Callable[..., "Captioner"]] = {}


def register_captioner(name: str):
    def wrap(cls):
        CAPTIONERS[name] = cls
        return cls

    return wrap


def list_captioners() -> list[str]:
    return sorted(CAPTIONERS)


class Captioner:
    """`__call__(batch) -> list[str]`; a batch is a dict of numpy arrays (one product per row)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> list[str]:
        raise NotImplementedError


def _season(value: str) -> str:
    value = str(value)
    if value.upper().startswith(("AW", "AI", "FW")):
        return "autumn-winter"
    if value.upper().startswith(("SS", "PE")):
        return "spring-summer"
    return value


@register_captioner("attributes")
class AttributeCaptioner(Captioner):
    """Domain captions from attributes; a table with a free `text` description uses it instead."""

    def __call__(self, batch):
        n = len(batch["external_code"])
        if "text" in batch:
            texts = [str(t) for t in batch["text"]]
            if all(texts):
                return texts

        def col(name):
            return [str(v) if v is not None else "" for v in batch[name]] if name in batch else [""] * n

        out = []
        for color, fabric, category, season in zip(col("color"), col("fabric"), col("category"), col("season")):
            words = " ".join(w for w in (color, fabric, category or "product") if w)
            out.append(f"a {words}" + (f", {_season(season)}" if season else ""))
        return out


@register_captioner("generic")
class GenericCaptioner(Captioner):
    def __call__(self, batch):
        n = len(batch["external_code"])
        cats = batch.get("category", batch.get("product_type", [""] * n))
        return [f"a photo of a {c}" if str(c) else "a photo of a product" for c in cats]


@register_captioner("column")
class ColumnCaptioner(Captioner):
    def __call__(self, batch):
        n = len(batch["external_code"])
        return [str(t) for t in batch.get("text", [""] * n)]


@register_captioner("blip")
class BlipCaptioner(Captioner):
    """BLIP on the product image; loaded offline from a transformers name (local cache) or folder."""

    def __init__(self, model: str, prompt: str | None, max_new_tokens: int = 20, device: str | None = None):
        import torch
        from transformers import BlipForConditionalGeneration, BlipProcessor

        try:
            self.processor = BlipProcessor.from_pretrained(model, local_files_only=True)
            self.model = BlipForConditionalGeneration.from_pretrained(model, local_files_only=True).eval()
        except (OSError, ValueError) as e:
            raise InputError(f"BLIP model {model!r} is not in a local folder or the local Hugging Face cache; "
                             f"nothing is downloaded here ({type(e).__name__}: {e})") from None
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.prompt, self.max_new_tokens = prompt, max_new_tokens

    def __call__(self, batch):
        import torch
        from PIL import Image

        paths = [str(p) for p in batch["image_path"]]
        out = [""] * len(paths)
        have = [i for i, p in enumerate(paths) if p]
        if not have:
            return out
        images = []
        for i in have:
            with Image.open(paths[i]) as img:
                images.append(img.convert("RGB"))
        text = [self.prompt] * len(images) if self.prompt else None
        inputs = self.processor(images=images, text=text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        for i, caption in zip(have, self.processor.batch_decode(ids, skip_special_tokens=True)):
            out[i] = caption.strip()
        return out


def create_captioner(cfg: CaptionConfig) -> Captioner:
    if cfg.captioner not in CAPTIONERS:
        raise InputError(f"unknown captioner {cfg.captioner!r}; registered: {sorted(CAPTIONERS)}")
    if cfg.captioner == "blip":
        return BlipCaptioner(cfg.blip_model, cfg.blip_prompt, cfg.max_new_tokens)
    return CAPTIONERS[cfg.captioner]()


class CaptionBatch:
    """Ray Data actor: builds the captioner once, then captions batches of products."""

    def __init__(self, cfg: dict):
        self.captioner = create_captioner(CaptionConfig.model_validate(cfg))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        captions = self.captioner(batch)
        return {"external_code": batch["external_code"], "caption": np.asarray(captions, dtype=object)}


def caption_products(products: pd.DataFrame, cfg: CaptionConfig) -> pd.Series:
    """A caption per product row (one row per product): the table's own where it has one, else the
    captioner's, run as a Ray Data map_batches stage over an actor pool."""
    existing = products["caption"].fillna("").astype(str) if "caption" in products else \
        pd.Series("", index=products.index)
    todo = products.loc[existing.str.strip() == ""]
    if todo.empty:
        return existing
    import ray

    from raydemand.data.pipelines.stage_io import table_blocks

    cols = [c for c in todo.columns if c != "release_date"]
    frame = todo[cols].astype(str).reset_index(drop=True)
    ds = ray.data.from_pandas(table_blocks(frame, cfg.batch_size)).map_batches(
        CaptionBatch, fn_constructor_kwargs={"cfg": cfg.model_dump()}, batch_size=cfg.batch_size,
        compute=ray.data.ActorPoolStrategy(size=cfg.concurrency), batch_format="numpy")
    made = ds.to_pandas()
    filled = dict(zip(made["external_code"].astype(str), made["caption"].astype(str)))
    out = existing.copy()
    out.loc[todo.index] = todo["external_code"].astype(str).map(filled).fillna("").to_numpy()
    return out
