"""The FastAPI ingress, its middleware (auth, body limit) and the application builder.

Endpoints: GET /healthz, POST /v1/forecast, POST /v1/design/score, POST /v1/basket/predict,
OpenAPI at /docs. Bad input is a 4xx naming the field (422 field errors, 413 oversized bodies or
images, 401 missing/wrong token); an endpoint whose model is not loaded answers 503 after the
request validated, naming the run directory it needs.
"""

import asyncio
import hmac
import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.exceptions import RayActorError

from raydemand import __version__
from raydemand.serve.config import AppConfig, LimitsConfig
from raydemand.serve.deployments import BasketRecommender, Captioner, DesignScorer, Forecaster
from raydemand.serve.runs import NEEDS, group_runs
from raydemand.serve.schemas import (
    BasketRequest,
    BasketResponse,
    DesignRequest,
    DesignResponse,
    FieldError,
    ForecastRequest,
    ForecastResponse,
    Health,
    where,
)

PUBLIC_PATHS = ("/healthz",)


def _json(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware: bearer-token auth (every path but /healthz) and the request body limit,
    by Content-Length and by counting the bytes actually streamed (chunked bodies have no length)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope["app"].state
        token, limit = state.token, state.limits.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if token and scope["path"] not in PUBLIC_PATHS:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return await _json(401, "missing or wrong bearer token (header 'Authorization: Bearer TOKEN')",
                                   {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _json(413, f"request body is larger than {limit} bytes")(scope, receive, send)
        # The whole body is read here (up to the limit) and handed on: a chunked body without a
        # Content-Length is stopped as soon as it passes the limit.
        body, more = b"", scope["method"] in ("POST", "PUT", "PATCH")
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await _json(413, f"request body is larger than {limit} bytes")(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


app = FastAPI(title="raydemand", version=__version__,
              description="Forecasts for new products, design preference scores and next baskets. "
                          "See docs/serve.md.")
app.add_middleware(Guard)
app.state.token, app.state.limits = None, LimitsConfig()


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    detail = "; ".join(f"{where(tuple(e['loc']))}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


@app.exception_handler(FieldError)
async def _field(request: Request, exc: FieldError) -> JSONResponse:
    loc = ("body", *exc.loc)
    return JSONResponse({"detail": f"{where(loc)}: {exc.msg}", "errors": [{"loc": list(loc), "msg": exc.msg}]},
                        status_code=exc.status)


class ModelMissing(Exception):
    def __init__(self, kind: str):
        self.kind = kind


@app.exception_handler(ModelMissing)
async def _missing(request: Request, exc: ModelMissing) -> JSONResponse:
    return _json(503, f"no {exc.kind} model is loaded; start the server with {NEEDS[exc.kind]}")


@app.exception_handler(RayActorError)
async def _replica_died(request: Request, exc: RayActorError) -> JSONResponse:
    # A model replica died mid-request (Serve replaces it): the client may retry.
    return _json(503, "a model replica stopped while answering; retry shortly", {"Retry-After": "1"})


def _raise(result):
    if isinstance(result, FieldError):
        raise result
    return result


@serve.deployment(name="Ingress", max_ongoing_requests=512, ray_actor_options={"num_cpus": 0.25})
@serve.ingress(app)
class Ingress:
    def __init__(self, handles: dict[str, Any], loaded: list[str], limits: dict, token_env: str):
        self.handles, self.loaded = handles, set(loaded)
        self.limits = LimitsConfig.model_validate(limits)
        app.state.limits, app.state.token = self.limits, os.environ.get(token_env) or None
        self._versions: dict[str, Any] | None = None

    async def versions(self) -> dict[str, Any]:
        if self._versions is None:
            infos = await asyncio.gather(*(h.info.remote() for h in self.handles.values()))
            self._versions = dict(zip(self.handles, infos))
        return self._versions

    def _need(self, kind: str):
        if kind not in self.loaded:
            raise ModelMissing(kind)
        return self.handles.get(kind)

    def _image(self, text: str | None, loc: tuple) -> bytes | None:
        from raydemand.serve.images import check_image

        return None if text is None else check_image(text, loc, self.limits)

    @app.get("/healthz", response_model=Health)
    async def healthz(self) -> dict[str, Any]:
        versions = await self.versions()
        models = {k: v["version"] for k, v in versions.items()}
        if versions.get("scorer", {}).get("generator_version"):
            models["gan"] = versions["scorer"]["generator_version"]
        return {"status": "ok", "models": models}

    @app.post("/v1/forecast", response_model=ForecastResponse)
    async def forecast(self, body: ForecastRequest) -> dict[str, Any]:
        if len(body.products) > self.limits.max_products:
            raise FieldError(("products",), f"{len(body.products)} products; at most {self.limits.max_products} "
                                            f"per request")
        products = [{**p.model_dump(), "image": self._image(p.image, ("products", i, "image"))}
                    for i, p in enumerate(body.products)]
        handle = self._need("forecast")
        results = await asyncio.gather(*(handle.forecast.remote(p, ("products", i)) for i, p in enumerate(products)))
        return {"model_version": (await self.versions())["forecast"]["version"],
                "forecasts": [_raise(r) for r in results]}

    @app.post("/v1/design/score", response_model=DesignResponse, response_model_exclude_none=True)
    async def design_score(self, body: DesignRequest) -> dict[str, Any]:
        request = {**body.model_dump(), "image": self._image(body.image, ("image",))}
        scorer = self._need("scorer")
        if body.generate is not None:
            self._need("gan")
        if body.release_date is not None:
            self._need("forecast")
        result = _raise(await scorer.score.remote(request))
        if "forecast" in result:
            result["forecast_model_version"] = (await self.versions())["forecast"]["version"]
        return result

    @app.post("/v1/basket/predict", response_model=BasketResponse)
    async def basket_predict(self, body: BasketRequest) -> dict[str, Any]:
        lim = self.limits
        if len(body.users) > lim.max_users:
            raise FieldError(("users",), f"{len(body.users)} users; at most {lim.max_users} per request")
        if body.k > lim.max_k:
            raise FieldError(("k",), f"k={body.k}; at most {lim.max_k}")
        for u, user in enumerate(body.users):
            if len(user.orders) > lim.max_orders:
                raise FieldError(("users", u, "orders"), f"{len(user.orders)} orders; at most {lim.max_orders}")
            for o, order in enumerate(user.orders):
                if not order or len(order) > lim.max_order_lines:
                    raise FieldError(("users", u, "orders", o),
                                     f"{len(order)} products; an order holds 1 to {lim.max_order_lines}")
        ids = [str(u.user_id) for u in body.users]
        if len(set(ids)) != len(ids):
            dup = next(i for i, v in enumerate(ids) if ids.index(v) != i)
            raise FieldError(("users", dup, "user_id"), f"user {ids[dup]!r} appears twice")
        handle = self._need("basket")
        results = await asyncio.gather(*(handle.predict.remote(u.model_dump(), body.k, body.unknown_products,
                                                               ("users", i)) for i, u in enumerate(body.users)))
        info = (await self.versions())["basket"]
        return {"model_version": info["version"], "threshold": info["threshold"],
                "predictions": [_raise(r) for r in results]}


# ---- building the application ----------------------------------------------------------------


def build_app(args: dict[str, Any]):
    """Serve application builder (`import_path: raydemand.serve.app:build_app`; Serve passes the
    config file's `args`, an `AppConfig` mapping: run_dirs, limits, token_env, use_gpu, batching)."""
    return compose(args)


def compose(args: dict[str, Any], deployments: dict[str, dict[str, Any]] | None = None):
    """The application graph for `args`; `deployments`: {name: options} as in a Serve config file's
    `deployments:` (what `raydemand serve --serve-config` reads; `serve deploy` applies that section
    itself)."""
    import ray

    from raydemand.config import ConfigError, _describe
    from pydantic import ValidationError

    try:
        cfg = AppConfig.model_validate(args or {})
    except ValidationError as e:
        raise ConfigError(_describe(e, AppConfig, "serve application args")) from None
    runs = group_runs(cfg.run_dirs)
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else bool(
        ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0)
    gpu = {"ray_actor_options": {"num_cpus": 1, "num_gpus": 1}} if use_gpu else {}

    def options(deployment, on_gpu: bool):
        batch = cfg.batching.get(deployment.name)
        opts = {**(gpu if on_gpu else {}), **({"user_config": batch.model_dump()} if batch is not None else {}),
                **(deployments or {}).get(deployment.name, {})}
        return deployment.options(**opts)

    handles: dict[str, Any] = {}
    if "forecast" in runs:
        blip = _forecast_config(runs["forecast"])["captions"]["captioner"] == "blip"
        captioner = options(Captioner, blip).bind(runs["forecast"])
        handles["forecast"] = options(Forecaster, True).bind(runs["forecast"], captioner)
    if "scorer" in runs:
        handles["scorer"] = options(DesignScorer, True).bind(runs["scorer"], runs.get("gan"), handles.get("forecast"))
    if "basket" in runs:
        handles["basket"] = options(BasketRecommender, False).bind(runs["basket"])
    # A GAN run serves through the scorer (it draws designs to score), so it counts only beside one.
    loaded = [k for k in runs if k != "gan" or "scorer" in runs]
    ingress_options = {}
    if os.environ.get(cfg.token_env):
        # The replica may start on another node, or from a process whose environment predates the token.
        ingress_options["ray_actor_options"] = {"num_cpus": 0.25, "runtime_env": {
            "env_vars": {cfg.token_env: os.environ[cfg.token_env]}}}
    ingress_options.update((deployments or {}).get("Ingress", {}))
    return Ingress.options(**ingress_options).bind(handles, loaded, cfg.limits.model_dump(), cfg.token_env)


def _forecast_config(run_dir: str) -> dict[str, Any]:
    from raydemand.serve.runs import read_run

    return read_run(run_dir).config


def start(cfg: AppConfig, host: str = "127.0.0.1", port: int = 8000, name: str = "raydemand",
          deployments: dict[str, dict[str, Any]] | None = None) -> str:
    """Deploy the application on the connected Ray cluster (Serve started on `host`:`port` if it is not
    running yet) and return its URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(compose(cfg.model_dump(), deployments), name=name, route_prefix="/")
    return f"http://{host}:{port}"


def read_serve_config(path: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    """(application args, {deployment name: options}, http_options) of a Serve config file's raydemand
    application (deploy/serve.yaml), checked against Ray's own schema."""
    import yaml
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    from raydemand.config import ConfigError

    try:
        schema = ServeDeploySchema.model_validate(yaml.safe_load(open(path).read()))
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ConfigError(f"{path}: not a valid Serve config file: {e}") from None
    apps = [a for a in schema.applications if a.import_path == "raydemand.serve.app:build_app"]
    if not apps:
        raise ConfigError(f"{path}: no application with import_path raydemand.serve.app:build_app")
    options = {d.name: d.model_dump(exclude_unset=True, exclude={"name"}) for d in apps[0].deployments}
    return apps[0].args or {}, options, schema.http_options.model_dump(include={"host", "port"})
