"""The model deployments. Each loads its run directory once per replica (weights only) with its
family's own loader and answers through a `@serve.batch` method that calls the family's prediction
API (`ForecastRun.predict`, `design.score.score_images`, `basket.predict.predict_histories`), the
code the CLI predicts with, so that concurrent requests share one model call.

Checks that need the model (attributes a forecast run compares, a basket run's catalogue) run per
request before batching and come back as a `FieldError` value: one bad request must not fail the
batch it would have shared with good ones. Batch size and wait come from the deployment's
`user_config` (`BatchConfig`), applied in `reconfigure`.
"""

from __future__ import annotations

import asyncio
import base64
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
        from raydemand.forecast.run import ProductEncoders, load_run

        with fetch(run_dir) as local:
            self.run, self.version = load_run(local), model_version(local)
        self.encoders = ProductEncoders(self.run.cfg.data, _device(), pixels=self.run.cfg.model.image_encoder != "cached")
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

        from raydemand.data.schema import HORIZON

        run = self.run
        keys = [f"q{i}" for i in range(len(products))]  # two requests may send the same external_code
        table = {"external_code": keys, "release_date": [p["release_date"].isoformat() for p in products],
                 "caption": captions}
        for name in run.attributes:
            table[name] = [str(p["attributes"][name]) for p in products]
        embedded = self.encoders.embed(keys, captions, [p.get("image") for p in products])
        pred, attention = run.predict(pd.DataFrame(table), return_attention=True, embedded=embedded)
        weeks = pred[[str(i) for i in range(HORIZON)]].to_numpy()  # (N, 12)
        return [{"external_code": p["external_code"], "weeks": [float(v) for v in weeks[i]], "caption": captions[i],
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
        from raydemand.errors import InputError
        from raydemand.serve.images import png_bytes, rgb_array

        out: dict[str, Any] = {"model_version": self.version, "design_id": request["design_id"]}
        if request.get("generate") is not None:
            gen = request["generate"]
            try:  # a category the GAN run does not make is the only InputError of one generated image
                images, _ = await asyncio.to_thread(self.gan.generate, 1, gen["category"], gen["seed"])
            except InputError as e:
                return FieldError(("generate", "category"), str(e))
            request = {**request, "image": png_bytes(images[0])}
            out["image"] = base64.b64encode(request["image"]).decode("ascii")
            out["generator_version"] = self.gan_version
        pixels = await asyncio.to_thread(rgb_array, request["image"], self.scorer.size)  # (size, size, 3)
        out.update(await self._batch(pixels))
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
    async def _batch(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        from raydemand.design.score import score_images

        return await asyncio.to_thread(score_images, self.scorer, np.stack(images))  # (N, size, size, 3)


@serve.deployment(name="BasketRecommender", ray_actor_options=LIGHT, **MODEL_OPTIONS)
class BasketRecommender:
    """A basket run: each user's next basket from their past orders (the run's own `predict_histories`)."""

    def __init__(self, run_dir: str):
        from raydemand.basket.base import load_run

        with fetch(run_dir) as local:
            self.run, self.version = load_run(local), model_version(local)

    def reconfigure(self, user_config: dict) -> None:
        _set_batching(self._batch, user_config)

    def info(self) -> dict[str, Any]:
        return {"version": self.version, "threshold": self.run.threshold}

    async def predict(self, user: dict[str, Any], k: int, unknown: str, loc: tuple) -> dict[str, Any] | FieldError:
        """One `schemas.BasketUser` dict -> a `schemas.UserPrediction` dict."""
        from raydemand.basket.predict import HistoryError, history_table

        try:
            history_table(self.run, [user["orders"]], unknown)
        except HistoryError as e:
            return FieldError((*loc, "orders", *e.where[1:]), e.msg)
        return await self._batch({"user_id": user["user_id"], "orders": user["orders"], "k": k})

    @serve.batch(**BATCH)
    async def _batch(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._predict, users)

    def _predict(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from raydemand.basket.predict import predict_histories

        out: list[dict[str, Any]] = [{}] * len(users)
        # One prediction per k: top-k among tied scores may differ from the head of a longer top list.
        for k in {u["k"] for u in users}:
            mine = [i for i, u in enumerate(users) if u["k"] == k]
            # Each user passed its own `unknown_products` check in `predict`; what is left unknown is skipped.
            pred = predict_histories(self.run, [users[i]["orders"] for i in mine], k, unknown="ignore")
            for u, items in pred.groupby("user_id", sort=True):
                out[mine[u]] = {"user_id": users[mine[u]]["user_id"],
                                "items": [{"rank": int(r.rank), "product_id": _plain(r.product_id),
                                           "score": float(r.score), "in_basket": bool(r.in_basket)}
                                          for r in items.itertuples()]}
        return out


def _plain(value):
    return value.item() if hasattr(value, "item") else value
