"""The model deployments. Each loads its run directory once per replica (weights only) and answers
through a `@serve.batch` method, so that concurrent requests share one model call.

Checks that need the model (attributes a forecast run compares, a basket run's catalogue) run per
request before batching and come back as a `FieldError` value: one bad request must not fail the
batch it would have shared with good ones. Batch size and wait come from the deployment's
`user_config` (`BatchConfig`), applied in `reconfigure`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from raydemand.serve.config import BatchConfig
from raydemand.serve.runs import fetch, model_version
from raydemand.serve.schemas import FieldError

BATCH = BatchConfig().model_dump()  # replaced by each deployment's user_config in `reconfigure`
# max_ongoing_requests >= max_batch_size, so that a replica can hold a full batch.
MODEL_OPTIONS = dict(max_ongoing_requests=64, user_config=BATCH)
LIGHT = {"num_cpus": 0.5}  # string captioners and basket scoring are light next to the neural models
# Logical CPUs a local cluster needs for one replica of each deployment (Ingress 0.25, Forecaster 1,
# DesignScorer 1, Captioner and BasketRecommender 0.5 each, Serve's controller and proxy): a local
# Ray started for serving gets at least this many, even on a 2-core machine.
LOCAL_CPUS = 4


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"  # Ray shows a replica only its own GPUs


def _set_batching(method, user_config: dict) -> None:
    cfg = BatchConfig.model_validate(user_config)
    method.set_max_batch_size(cfg.max_batch_size)
    method.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)


@serve.deployment(name="Captioner", ray_actor_options=LIGHT, **MODEL_OPTIONS)
class Captioner:
    """The forecast run's configured captioner (attributes, generic, column or BLIP) on products."""

    def __init__(self, forecast_run_dir: str):
        from raydemand.forecast.captions import create_captioner
        from raydemand.forecast.run import load_run

        with fetch(forecast_run_dir) as local:
            self.cfg = load_run(local).cfg.captions
        self.captioner = create_captioner(self.cfg)

    def reconfigure(self, user_config: dict) -> None:
        _set_batching(self.caption, user_config)

    @serve.batch(**BATCH)
    async def caption(self, products: list[dict[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self._caption, products)

    def _caption(self, products: list[dict[str, Any]]) -> list[str]:
        names = sorted({k for p in products for k in p["attributes"]})
        batch = {"external_code": np.array([p["external_code"] for p in products], dtype=object)}
        for name in names:
            batch[name] = np.array([str(p["attributes"].get(name, "")) for p in products], dtype=object)
        with tempfile.TemporaryDirectory() as tmp:
            if self.cfg.captioner == "blip":  # BLIP reads image files
                paths = []
                for i, p in enumerate(products):
                    if p.get("image"):
                        paths.append(str(Path(tmp) / f"{i}.img"))
                        Path(paths[-1]).write_bytes(p["image"])
                    else:
                        paths.append("")
                batch["image_path"] = np.array(paths, dtype=object)
            return [str(c) for c in self.captioner(batch)]


@serve.deployment(name="Forecaster", ray_actor_options={"num_cpus": 1}, **MODEL_OPTIONS)
class Forecaster:
    """A forecast run: captions (own or the Captioner's), frozen embeddings computed in-process with
    the run's encoders, retrieval over the run's pool, the forecaster and its attention weights."""

    def __init__(self, run_dir: str, captioner=None):
        from raydemand.data.pipelines.images import ImagesConfig
        from raydemand.encoders import create_encoder
        from raydemand.forecast.run import load_run

        with fetch(run_dir) as local:
            self.run, self.version = load_run(local), model_version(local)
        data, device = self.run.cfg.data, _device()
        self.text = create_encoder(data.text_encoder, pooling=data.text_pooling, device=device)
        self.image = create_encoder(data.image_encoder, device=device, **data.image_encoder_args)
        self.images_cfg = ImagesConfig(size=data.image_size)
        self.captioner, self.captioner_name = captioner, self.run.cfg.captions.captioner

    def reconfigure(self, user_config: dict) -> None:
        _set_batching(self._batch, user_config)

    def info(self) -> dict[str, Any]:
        return {"version": self.version, "attributes": self.run.attributes}

    async def forecast(self, product: dict[str, Any], loc: tuple = ()) -> dict[str, Any] | FieldError:
        """One product (a `schemas.Product` dict, image as bytes) -> a `schemas.Forecast` dict."""
        for name in self.run.attributes:
            if str(product["attributes"].get(name, "")).strip() == "":
                return FieldError((*loc, "attributes", name),
                                  f"missing; this forecast run compares the attributes {self.run.attributes}")
        return await self._batch(product)

    @serve.batch(**BATCH)
    async def _batch(self, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        captions = [(p.get("caption") or "").strip() for p in products]
        todo = [i for i, c in enumerate(captions) if not c]
        if todo and self.captioner is not None:
            made = await asyncio.gather(*(self.captioner.caption.remote(products[i]) for i in todo))
            for i, caption in zip(todo, made):
                captions[i] = caption.strip()
        return await asyncio.to_thread(self._predict, products, captions, set(todo))

    def _predict(self, products: list[dict[str, Any]], captions: list[str], made: set[int]) -> list[dict[str, Any]]:
        import pandas as pd

        from raydemand.data.pipelines.images import preprocess_image
        from raydemand.data.schema import validate_products
        from raydemand.forecast.data import prepare_rows

        run = self.run
        keys = [f"q{i}" for i in range(len(products))]  # two requests may send the same external_code
        table = {"external_code": keys, "release_date": [p["release_date"].isoformat() for p in products],
                 "caption": captions}
        for name in run.attributes:
            table[name] = [str(p["attributes"][name]) for p in products]
        df = validate_products(pd.DataFrame(table), "request", require_targets=False, check_images=False)
        with_caption = [i for i, c in enumerate(captions) if c]
        with_image = [i for i, p in enumerate(products) if p.get("image")]
        caption_vec = dict(zip([keys[i] for i in with_caption],
                               self.text.encode([captions[i] for i in with_caption]))) if with_caption else {}
        image_vec = {}
        if with_image:
            pixels = np.stack([preprocess_image(io.BytesIO(products[i]["image"]), self.images_cfg)
                               for i in with_image])  # (M, 3, H, W)
            image_vec = dict(zip([keys[i] for i in with_image], self.image.encode(pixels)))
        embedded = {"caption": dict(zip(keys, captions)), "caption_vec": caption_vec, "image_vec": image_vec,
                    "caption_dim": self.text.dim, "image_dim": self.image.dim}
        rows = prepare_rows(df, embedded, run.attributes, None, run.units_per_value)
        pred, attention = run.forecaster.explain(rows, run.pool)
        pred = pred * run.scale / run.units_per_value  # (N, 12) in the training table's sales scale
        return [{"external_code": p["external_code"], "weeks": [float(v) for v in pred[i]], "caption": captions[i],
                 "caption_source": self.captioner_name if i in made else "request", "attention": attention[i]}
                for i, p in enumerate(products)]


@serve.deployment(name="DesignScorer", ray_actor_options={"num_cpus": 1}, **MODEL_OPTIONS)
class DesignScorer:
    """The preference scorer on a design image (sent, or drawn by a GAN run), composed with the
    Forecaster for the design's 12-week demand."""

    def __init__(self, scorer_run_dir: str, gan_run_dir: str | None = None, forecaster=None):
        from raydemand.design.generate import GANRun
        from raydemand.design.scorer import ScorerRun

        device = _device()
        with fetch(scorer_run_dir) as local:
            self.scorer, self.version = ScorerRun(local, device), model_version(local)
        self.gan, self.gan_version = None, None
        if gan_run_dir:
            with fetch(gan_run_dir) as local:
                self.gan, self.gan_version = GANRun(local, device), model_version(local)
        self.forecaster = forecaster

    def reconfigure(self, user_config: dict) -> None:
        _set_batching(self._batch, user_config)

    def info(self) -> dict[str, Any]:
        return {"version": self.version, "categories": self.scorer.categories,
                "generator_version": self.gan_version}

    async def score(self, request: dict[str, Any]) -> dict[str, Any] | FieldError:
        """A `schemas.DesignRequest` dict (image as bytes) -> a `schemas.DesignResponse` dict."""
        from raydemand.serve.images import png_bytes, rgb_array

        out: dict[str, Any] = {"model_version": self.version, "design_id": request["design_id"]}
        if request.get("generate") is not None:
            gen = request["generate"]
            if gen["category"] is not None and gen["category"] not in self.gan.categories:
                return FieldError(("generate", "category"), f"unknown category {gen['category']!r}; this GAN "
                                                            f"makes: {', '.join(self.gan.categories)}")
            images, _ = await asyncio.to_thread(self.gan.generate, 1, gen["category"] or self.gan.categories[0],
                                                gen["seed"])
            request = {**request, "image": png_bytes(images[0])}
            out["image"] = base64.b64encode(request["image"]).decode("ascii")
            out["generator_version"] = self.gan_version
        pixels = await asyncio.to_thread(rgb_array, request["image"], self.scorer.size)  # (size, size, 3)
        probs = await self._batch(pixels)
        out["preference"] = {c: float(p) * 100 for c, p in zip(self.scorer.categories, probs)}
        out["top_category"] = self.scorer.categories[int(np.argmax(probs))]
        if request.get("release_date") is not None:
            product = {"external_code": request["design_id"], "release_date": request["release_date"],
                       "attributes": request["attributes"], "caption": request.get("caption"),
                       "image": request["image"]}
            forecast = await self.forecaster.forecast.remote(product, ())
            if isinstance(forecast, FieldError):
                return forecast
            out["forecast"] = forecast
        return out

    @serve.batch(**BATCH)
    async def _batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        probs, _ = await asyncio.to_thread(self.scorer.predict, np.stack(images))  # (N, size, size, 3) -> (N, K)
        return list(probs)


@serve.deployment(name="BasketRecommender", ray_actor_options=LIGHT, **MODEL_OPTIONS)
class BasketRecommender:
    """A basket run: each user's next basket from their past orders (the run's own `predict_frame`)."""

    def __init__(self, run_dir: str):
        from raydemand.basket.base import load_run

        with fetch(run_dir) as local:
            self.run, self.version = load_run(local), model_version(local)
        self.int_ids = self.run.vocab.products.dtype.kind in "iu"

    def reconfigure(self, user_config: dict) -> None:
        _set_batching(self._batch, user_config)

    def info(self) -> dict[str, Any]:
        return {"version": self.version, "threshold": self.run.threshold}

    def _product(self, value):
        """A request's product id in the catalogue's type; None when it cannot be one."""
        if self.int_ids:
            if isinstance(value, int):
                return value
            return int(value) if str(value).isdigit() else None
        return str(value)

    async def predict(self, user: dict[str, Any], k: int, unknown: str, loc: tuple) -> dict[str, Any] | FieldError:
        """One `schemas.BasketUser` dict -> a `schemas.UserPrediction` dict."""
        orders = []
        for o, order in enumerate(user["orders"]):
            ids = [self._product(v) for v in order]
            lookup = [-1 if i is None else i for i in ids]
            known = self.run.vocab.index(np.array(lookup, dtype=np.int64 if self.int_ids else object)) >= 0
            if unknown == "error" and not known.all():
                j = int(np.argmin(known))
                return FieldError((*loc, "orders", o, j),
                                  f"product id {order[j]!r} is not in the catalogue of this basket run "
                                  f"({len(self.run.vocab)} products); send unknown_products='ignore' to skip it")
            if len(set(lookup)) != len(lookup):
                j = next(j for j, v in enumerate(lookup) if lookup.index(v) != j)
                return FieldError((*loc, "orders", o, j), f"product id {order[j]!r} appears twice in one order")
            if known.any():
                orders.append([i for i, ok in zip(ids, known) if ok])
        return await self._batch({"user_id": user["user_id"], "orders": orders, "k": k})

    @serve.batch(**BATCH)
    async def _batch(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._predict, users)

    def _predict(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import pandas as pd

        from raydemand.basket.predict import predict_frame

        rows = [(u, o + 1, p) for u, user in enumerate(users) for o, order in enumerate(user["orders"])
                for p in order]
        lines = pd.DataFrame(rows, columns=["user_id", "order_number", "product_id"])
        if not self.int_ids:
            lines["product_id"] = lines["product_id"].astype(object)
        lines.insert(1, "order_id", lines["user_id"] * 100_000 + lines["order_number"])
        # A user left without catalogue products (all ignored as unknown) gets the popularity ranking.
        pred = predict_frame(self.run, lines, max(u["k"] for u in users)) if len(lines) else None
        out = []
        for u, user in enumerate(users):
            if pred is not None and (mine := pred[pred["user_id"] == u]).size:
                items = mine.head(user["k"])
                items = [{"rank": int(r.rank), "product_id": _plain(r.product_id), "score": float(r.score),
                          "in_basket": bool(r.in_basket)} for r in items.itertuples()]
            else:
                top = np.argsort(-self.run.vocab.popularity, kind="stable")[:user["k"]]
                items = [{"rank": i + 1, "product_id": _plain(self.run.vocab.products[j]),
                          "score": float(self.run.vocab.popularity[j]),
                          "in_basket": bool(self.run.vocab.popularity[j] >= self.run.threshold)}
                         for i, j in enumerate(top)]
            out.append({"user_id": user["user_id"], "items": items})
        return out


def _plain(value):
    return value.item() if hasattr(value, "item") else value
