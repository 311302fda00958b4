"""Configs of the Serve application: request limits, auth, and per-deployment batching.

`AppConfig` is what the application builder takes (`args:` of deploy/serve.yaml, or the flags of
`raydemand serve`); `BatchConfig` is a model deployment's `user_config`, so batch size and wait
can be changed on a running application with `serve deploy` without restarting replicas.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from raydemand.config import Config

DEFAULT_TOKEN_ENV = "RAYDEMAND_SERVE_TOKEN"
MODEL_DEPLOYMENTS = ("Forecaster", "Captioner", "DesignScorer", "BasketRecommender")


class LimitsConfig(Config):
    """What one request may carry; anything beyond is a 413 (body) or 422 (field), never a 5xx."""

    max_body_bytes: int = Field(8 * 2**20, ge=1024)  # request body, by Content-Length and by counting streamed bytes
    max_image_bytes: int = Field(4 * 2**20, ge=64)  # one image after base64 decoding
    # Pixels (width x height) of one image, checked from its header before any decoding: a
    # decompression bomb (a tiny PNG that inflates to gigabytes) stops here.
    max_image_pixels: int = Field(4096 * 4096, ge=64)
    max_image_side: int = Field(8192, ge=8)  # longest side of one image, from its header
    max_products: int = Field(64, ge=1)  # products per /v1/forecast request
    max_users: int = Field(64, ge=1)  # users per /v1/basket/predict request
    max_orders: int = Field(100, ge=1)  # past orders per user
    max_order_lines: int = Field(200, ge=1)  # products per past order
    max_k: int = Field(100, ge=1)  # recommendations per user


class BatchConfig(Config):
    """`@serve.batch` settings of a model deployment (its Serve `user_config`)."""

    max_batch_size: int = Field(32, ge=1)  # requests per model call; 1 switches batching off
    # How long a batch waits for more requests after its first. Ray 2.60 forms the next batch while
    # the current one runs, so under steady load a short wait keeps batches small: at concurrency 32
    # the forecaster serves 3.7x its unbatched rate with 0.1 s, 2.5x with 0.05 s, 1.2x with 0.01 s
    # (docs/BENCHMARKS.md, "The HTTP API under load"); the price is up to that wait at low load.
    batch_wait_timeout_s: float = Field(0.1, ge=0)


class AppConfig(Config):
    run_dirs: list[str] = Field(default_factory=list)  # forecast, basket, GAN and scorer runs (kinds detected)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    # Bearer-token auth on every endpoint but /healthz when this environment variable is set (on
    # the machine that builds the application); unset: no auth.
    token_env: str = DEFAULT_TOKEN_ENV
    use_gpu: bool | None = None  # model deployments on GPUs; None: when the cluster has them
    # Per deployment name (Forecaster, Captioner, DesignScorer, BasketRecommender): its batching, as
    # its user_config. A `user_config` in a Serve config file's `deployments:` wins over this.
    batching: dict[str, BatchConfig] = Field(default_factory=dict)

    @field_validator("batching")
    @classmethod
    def _known_deployments(cls, v):
        unknown = sorted(set(v) - set(MODEL_DEPLOYMENTS))
        if unknown:
            raise ValueError(f"unknown deployment(s) {unknown}; batched deployments: {list(MODEL_DEPLOYMENTS)}")
        return v
