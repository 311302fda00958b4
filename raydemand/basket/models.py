"""Neural next-basket models: blocks, then the shared network, then the registered variants.

Both variants read the last N orders of a user as (B, N, L) catalogue indices (0 = padding):
products -> embeddings -> one vector per order (CNN or attention pooling) -> GRU over the orders
-> one logit per catalogue product, plus (optionally) a score from the user's own frequency
features of each product and the target order's context.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from raydemand.basket.config import NetConfig
from raydemand.basket.data import CONTEXT_DIM
from raydemand.basket.features import FEATURES

MODELS: dict[str, Callable[..., "BasketNet"]] = {}


def register_model(name: str):
    def wrap(cls):
        MODELS[name] = cls
        return cls

    return wrap


def create_model(name: str, n_products: int, cfg: NetConfig, vectors: np.ndarray | None = None) -> "BasketNet":
    if name not in MODELS:
        raise ValueError(f"unknown basket model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name](n_products, cfg, vectors)


# ---- blocks -------------------------------------------------------------------------------------


class OrderEncoderCNN(nn.Module):
    """Products of one order -> Conv1d over the cart sequence -> AdaptiveMaxPool1d -> order vector."""

    def __init__(self, dim: int, hidden: int, kernel_size: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(dim, hidden, kernel_size, padding=kernel_size // 2)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (M, L, D), mask (M, L) True where a product is
        h = torch.relu(self.conv(x.transpose(1, 2)))[..., :x.shape[1]]  # (M, H, L)
        h = h.masked_fill(~mask[:, None, :], float("-inf"))  # padding never wins the max
        h = self.pool(h).squeeze(-1)  # (M, H)
        h = torch.where(mask.any(1, keepdim=True), h, torch.zeros_like(h))  # empty order -> 0
        return self.drop(h)


class OrderEncoderAttention(nn.Module):
    """Products of one order -> N_LAYERS self-attention blocks -> attention pooling with a learned query."""

    def __init__(self, dim: int, hidden: int, heads: int, n_layers: int, dropout: float):
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.query = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.pool = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (M, L, D), mask (M, L) True where a product is
        empty = ~mask.any(1)  # (M,)
        pad = ~mask
        pad[:, 0] &= ~empty  # an empty order attends to its (zero) first slot instead of nothing
        h = self.blocks(self.proj(x), src_key_padding_mask=pad)  # (M, L, H)
        q = self.query.expand(x.shape[0], -1, -1)  # (M, 1, H)
        out, _ = self.pool(q, h, h, key_padding_mask=pad, need_weights=False)  # (M, 1, H)
        out = out.squeeze(1)
        return torch.where(empty[:, None], torch.zeros_like(out), out)


class OrderSequenceGRU(nn.Module):
    """The order vectors of a user, oldest -> newest, through a GRU; returns the last state."""

    def __init__(self, hidden: int, n_layers: int, dropout: float):
        super().__init__()
        self.gru = nn.GRU(hidden, hidden, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)

    def forward(self, orders: torch.Tensor, order_mask: torch.Tensor) -> torch.Tensor:
        # orders (B, N, H) with empty leading slots; order_mask (B, N)
        b, n, _ = orders.shape
        lengths = order_mask.sum(1).clamp(min=1)  # (B,)
        shift = (torch.arange(n, device=orders.device)[None, :] + (n - lengths)[:, None]) % n  # (B, N)
        packed_in = torch.gather(orders, 1, shift[..., None].expand_as(orders))  # real orders first
        packed = nn.utils.rnn.pack_padded_sequence(packed_in, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # h (layers, B, H)
        return h[-1]  # (B, H)


class PredictionHead(nn.Module):
    """User state (and target-order context) -> FC -> one logit per catalogue product."""

    def __init__(self, hidden: int, n_products: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden + CONTEXT_DIM, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_products))

    def forward(self, state: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([state, context], dim=1))  # (B, P)


class UserFeatureScore(nn.Module):
    """A logit from the user's own frequency/recency features of each product, next to a learned
    vector per product: how often a product is bought again differs (milk vs. a kettle)."""

    def __init__(self, n_products: int, n_features: int, product_dim: int, hidden: int = 32):
        super().__init__()
        self.product = nn.Parameter(torch.randn(n_products, product_dim) * 0.1) if product_dim else None
        self.net = nn.Sequential(nn.Linear(n_features + product_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.product is not None:
            feats = torch.cat([feats, self.product.expand(feats.shape[0], -1, -1)], dim=-1)  # (B, P, F + d)
        return self.net(feats).squeeze(-1)  # (B, P)


# ---- the model ----------------------------------------------------------------------------------


class BasketNet(nn.Module):
    """Embeddings -> order encoder (the variant's) -> OrderSequenceGRU -> PredictionHead (+ user features)."""

    def __init__(self, n_products: int, cfg: NetConfig, vectors: np.ndarray | None, order_encoder: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(n_products + 1, cfg.embed_dim, padding_idx=0)
        if vectors is not None:
            if vectors.shape != (n_products, cfg.embed_dim):
                raise ValueError(f"product vectors have shape {vectors.shape}, "
                                 f"expected ({n_products}, {cfg.embed_dim})")
            with torch.no_grad():
                self.embed.weight[1:] = torch.as_tensor(vectors, dtype=torch.float32)
        self.embed.weight.requires_grad_(not cfg.freeze_embeddings)
        self.order_encoder = order_encoder
        self.sequence = OrderSequenceGRU(cfg.order_hidden, cfg.n_layers, cfg.dropout)
        self.head = PredictionHead(cfg.order_hidden, n_products, cfg.dropout)
        self.user_score = (UserFeatureScore(n_products, len(FEATURES), cfg.product_repeat_dim)
                           if cfg.user_features else None)

    def forward(self, orders: torch.Tensor, order_mask: torch.Tensor, feats: torch.Tensor,
                context: torch.Tensor) -> torch.Tensor:
        b, n, length = orders.shape
        flat = orders.reshape(b * n, length)  # (B*N, L)
        x = self.embed(flat)  # (B*N, L, D)
        vec = self.order_encoder(x, flat > 0).reshape(b, n, -1)  # (B, N, H)
        state = self.sequence(vec, order_mask)  # (B, H)
        if not self.cfg.context:
            context = torch.zeros_like(context)
        logits = self.head(state, context)  # (B, P)
        if self.user_score is not None:
            logits = logits + self.user_score(feats)
        return logits


# ---- variants -----------------------------------------------------------------------------------


@register_model("cnngru")
class CNNGRU(BasketNet):
    def __init__(self, n_products: int, cfg: NetConfig, vectors: np.ndarray | None = None):
        super().__init__(n_products, cfg, vectors,
                         OrderEncoderCNN(cfg.embed_dim, cfg.order_hidden, cfg.kernel_size, cfg.dropout))


@register_model("attngru")
class AttentionGRU(BasketNet):
    def __init__(self, n_products: int, cfg: NetConfig, vectors: np.ndarray | None = None):
        super().__init__(n_products, cfg, vectors,
                         OrderEncoderAttention(cfg.embed_dim, cfg.order_hidden, cfg.attn_heads, cfg.n_layers,
                                               cfg.dropout))
