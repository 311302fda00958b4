"""Configuration of the basket family: one class per stage, defaults from seed 002."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from raydemand.config import Config, registered
from raydemand.training import TrainConfig

BASELINES = ("gtopfreq", "ptopfreq", "gptopfreq", "decayfreq")


class DataConfig(Config):
    n_orders: int = Field(5, ge=1)  # orders the neural models read, oldest -> newest (the seed's N_ORDERS)
    # Orders of history behind the frequency features and the baselines (None: all of them). Training
    # windows repeat this much history per target order, so it bounds the size of the window files.
    feature_orders: int | None = Field(50, ge=1)
    # Keep only the most-bought products of the training users (145 in the seed); None: all products.
    # Orders left empty by the restriction are dropped and the rest renumbered per user.
    top_products: int | None = Field(None, ge=1)
    min_orders: int = Field(2, ge=2)  # users with fewer orders (after the restriction) are dropped
    test_users: float = Field(0.2, ge=0, lt=1)  # share of users held out entirely for `evaluate`
    val_users: float = Field(0.1, gt=0, lt=1)  # share of the remaining users that pick checkpoints/thresholds
    split_seed: int = 0  # the user split is a hash of (user_id, split_seed): the same in train/evaluate
    max_basket: int = Field(64, ge=1)  # products read per order by the neural models (cart order)


class AutoencoderConfig(Config):
    dim: int = Field(64, ge=2)  # embedding size (the seed's 64-d vectors)
    hidden: int = Field(256, ge=2)  # encoder/decoder hidden layer
    context_products: int = Field(1024, ge=1)  # co-purchase columns: the most-bought products
    epochs: int = Field(100, ge=1)  # passes over the catalogue (a few batches each)
    report_every: int = Field(10, ge=1)  # epochs per Ray Train report/checkpoint (each costs ~1 s)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)  # input dropout: a denoising autoencoder
    attributes: list[str] = []  # orders-table columns holding product attributes (e.g. aisle_id), one-hot


class NetConfig(Config):
    embed_dim: int = Field(64, ge=2)  # product embedding size; equals autoencoder.dim when vectors are loaded
    order_hidden: int = Field(128, ge=2)  # ORDER_HIDDEN: order vector and GRU state size
    kernel_size: int = Field(3, ge=1)  # OrderEncoderCNN Conv1d kernel over the products of an order
    attn_heads: int = Field(4, ge=1)  # ATTN_HEADS (AttentionGRU)
    n_layers: int = Field(2, ge=1)  # N_LAYERS: attention blocks (AttentionGRU) and GRU layers
    dropout: float = Field(0.1, ge=0, lt=1)  # DROPOUT
    # Embeddings: "autoencoder" (train the product autoencoder first and load its vectors), "random".
    embeddings: Literal["autoencoder", "random"] = "autoencoder"
    freeze_embeddings: bool = False  # False: the loaded vectors are fine-tuned with the predictor
    # The user's own frequency/recency of every product (features.py) added to the logits through a
    # small per-product MLP: repeat purchases dominate grocery baskets.
    user_features: bool = True
    product_repeat_dim: int = Field(8, ge=0)  # learned per-product vector beside those features (0: none)
    context: bool = True  # days since prior order, day of week, hour of the target order, where present


class XGBConfig(Config):
    num_boost_round: int = Field(300, ge=1)
    early_stopping_rounds: int = Field(20, ge=1)  # on the validation users
    max_depth: int = Field(6, ge=1)
    eta: float = Field(0.1, gt=0)
    subsample: float = Field(0.8, gt=0, le=1)
    popular_candidates: int = Field(20, ge=0)  # candidates: the user's products plus the N most popular
    window_fraction: float = Field(0.3, gt=0, le=1)  # share of training windows turned into rows


class BasketConfig(Config):
    # Any registered predictor (raydemand.basket.base.register_predictor): cnngru, attngru, xgboost, topfreq, ...
    model: Annotated[str, registered("raydemand.basket.base:list_predictors", "basket model")] = "cnngru"
    baseline: Literal["gtopfreq", "ptopfreq", "gptopfreq", "decayfreq"] = "gptopfreq"  # model=topfreq
    decay: float = Field(0.8, gt=0, le=1)  # per-order decay of the recency-weighted frequency
    seed: int = 0  # model initialisation and data order; fixed and written to metrics.json
    data: DataConfig = DataConfig()
    autoencoder: AutoencoderConfig = AutoencoderConfig()
    net: NetConfig = NetConfig()
    xgb: XGBConfig = XGBConfig()
    pos_weight: float = Field(10.0, gt=0)  # BCEWithLogits pos_weight (seed grid 5..30; best 10)
    lr: float = Field(1e-3, gt=0)  # LEARNING_RATE
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(16, ge=1)  # BATCH_SIZE
    epochs: int = Field(3, ge=1)  # EPOCHS
    patience: int | None = Field(2, ge=1)  # early stopping on the validation metric; None: never
    # Share of training windows (every order of every training user) the networks train on, drawn
    # once per run with `seed`; 1: all. A cheaper epoch on a small machine.
    window_fraction: float = Field(1.0, gt=0, le=1)
    shuffle_buffer: int = Field(20000, ge=1)  # training windows shuffled in a streaming buffer
    k: int = Field(10, ge=1)  # K of precision/recall/NDCG/PHR@K in training reports
    # Thresholds tried on the validation users; the best f1_micro one is kept for baskets.
    thresholds: list[float] = [round(0.05 * i, 2) for i in range(1, 20)]
    train: TrainConfig = TrainConfig()
