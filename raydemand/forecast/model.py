"""CrossAttnRNN (seed 000): image + caption + similar products' weekly sales -> 12 weeks of demand.

Blocks, then the model. Module names follow the seed: `ImageEncoder`, `caption_proj`,
`ts_embedder`, `image_text_attn`, `fusion_proj`, additive attention, `decoder`.

A batch is a dict of tensors:
  image     (B, Di) cached frozen vectors, or (B, 3, H, W) images for a fine-tuned trunk
  has_image (B,) bool      caption (B, Dc)      has_caption (B,) bool
  neighbours (B, K, 12) similar past products' curves (normalised); the weeks not yet observed at
             the product's release are filled in from the observed ones (`retrieval.complete_curves`)
  neighbour_observed (B, K, 12) bool, True for the weeks observed before the product's release
  neighbour_weight (B, K) similarity weights summing to 1 over the neighbours (0: none)
  attributes (B, A) int64 optional: per attribute column the value's vocabulary index (0: unknown);
             absent = every value unknown
  trends (B, S, 52) optional: the weekly series (values / 100) of the product's category, colour and
         fabric in the 52 weeks before its release; trend_observed (B, S, 52) bool, False where masked;
         absent = every week masked (read only by a model built with trend series, `TrendEncoder`)
Products without an image or caption are forecast with a learned "missing" embedding in its place.
"""

from __future__ import annotations

import torch
from torch import nn

from raydemand.data.schema import HORIZON
from raydemand.forecast.config import ModelConfig
from raydemand.forecast.trends import TREND_WEEKS


class ImageEncoder(nn.Module):
    """Image -> tokens (B, T, D). 'cached': one token from a frozen vector; efficientnet_lite0,
    resnet18/50: the last feature map's cells as tokens (so the caption can attend to image regions),
    fine-tuned on images normalised by the images pipeline (ImageNet statistics)."""

    def __init__(self, arch: str, embed_dim: int, in_dim: int | None = None, weights: str | None = None):
        super().__init__()
        self.arch = arch
        if arch == "cached":
            if in_dim is None:
                raise ValueError("a cached image encoder needs in_dim, the size of the cached vectors")
            self.trunk = None
            self.proj = nn.Linear(in_dim, embed_dim)
            return
        if arch.startswith("efficientnet_lite"):
            self._efficientnet(arch, embed_dim, weights)
            return
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        if weights is not None:
            from raydemand.encoders import cached_weights

            net.load_state_dict(cached_weights(arch, weights))
        channels = net.fc.in_features
        self.trunk = nn.Sequential(*list(net.children())[:-2])  # without avgpool and fc
        self.proj = nn.Linear(channels, embed_dim)

    def _efficientnet(self, arch: str, embed_dim: int, weights: str | None) -> None:
        """The shipped ImageNet weights unless weights='random'; the pipeline's ImageNet-normalised
        images are re-normalised to the Lite statistics by a fixed affine map (not saved: it is the
        same for every run)."""
        from raydemand.data.pipelines.images import IMAGENET_MEAN, IMAGENET_STD
        from raydemand.encoders import input_adapter, pretrained_backbone
        from raydemand.errors import InputError

        if weights not in (None, "random"):
            raise InputError(f"model.image_weights for {arch}: null (the shipped ImageNet weights) or 'random', "
                             f"got {weights!r}")
        net = pretrained_backbone(arch, "imagenet" if weights is None else None)
        scale, shift = input_adapter(IMAGENET_MEAN, IMAGENET_STD)
        self.register_buffer("in_scale", torch.from_numpy(scale)[None, :, None, None], persistent=False)  # (1, 3, 1, 1)
        self.register_buffer("in_shift", torch.from_numpy(shift)[None, :, None, None], persistent=False)
        # stem, blocks, head conv + BN + activation: everything before pooling and the classifier
        self.trunk = nn.Sequential(net.conv_stem, net.bn1, *net.blocks, net.conv_head, net.bn2)
        self.proj = nn.Linear(net.num_features, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.trunk is None:
            return self.proj(x).unsqueeze(1)  # (B, Di) -> (B, 1, D)
        if hasattr(self, "in_scale"):
            x = x * self.in_scale + self.in_shift
        fmap = self.trunk(x)  # (B, C, h, w)
        return self.proj(fmap.flatten(2).transpose(1, 2))  # (B, C, h*w) -> (B, h*w, C) -> (B, h*w, D)


class TrendEncoder(nn.Module):
    """GTM-style encoder of S exogenous weekly series -> one vector (B, D).

    Each week carries three channels: the value (/100: the series' level), the window's min-max
    scaled value over its observed weeks (GTM-Transformer's per-series scaling: the shape, blind to
    the level) and whether the week is observed. A series becomes a token through one linear layer
    over its weeks plus a learned embedding of which attribute it follows (category, colour,
    fabric); tokens of series with an observed week are averaged; a product with none gets a
    learned "missing" vector.
    """

    def __init__(self, n_series: int, weeks: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(3 * weeks, dim)
        self.series_embedding = nn.Embedding(n_series, dim)
        self.missing = nn.Parameter(torch.zeros(1, dim))

    def forward(self, values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """values (B, S, W), observed (B, S, W) bool -> (B, D)."""
        obs = observed.to(values.dtype)  # (B, S, W)
        lo = values.masked_fill(~observed, float("inf")).amin(-1, keepdim=True)  # (B, S, 1)
        hi = values.masked_fill(~observed, float("-inf")).amax(-1, keepdim=True)  # (B, S, 1)
        flat = ~(hi > lo)  # (B, S, 1): one value, or nothing observed: no shape
        lo = torch.where(flat, torch.zeros_like(lo), lo)
        span = torch.where(flat, torch.ones_like(hi), hi - lo)
        shape = torch.where(observed & ~flat, (values - lo) / span, torch.zeros_like(values))  # (B, S, W)
        x = torch.cat([values * obs, shape, obs], dim=-1)  # (B, S, 3W)
        tokens = torch.relu(self.proj(x) + self.series_embedding.weight)  # (B, S, D) + (S, D)
        has = observed.any(-1, keepdim=True).to(values.dtype)  # (B, S, 1)
        pooled = (tokens * has).sum(1) / has.sum(1).clamp(min=1.0)  # (B, D)
        return torch.where(has.sum(1) > 0, pooled, self.missing.expand_as(pooled))


class AdditiveAttention(nn.Module):
    """Bahdanau attention: the fused static vector (query) over the neighbours' GRU embeddings."""

    def __init__(self, dim: int):
        super().__init__()
        self.w_query = nn.Linear(dim, dim, bias=False)
        self.w_key = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, 1, bias=False)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(context (B, D), weights (B, K)); query (B, D), keys (B, K, D), mask (B, K) True where a neighbour exists."""
        scores = self.v(torch.tanh(self.w_query(query).unsqueeze(1) + self.w_key(keys))).squeeze(-1)  # (B, K)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # a product with no neighbour: all zeros
        return (weights.unsqueeze(-1) * keys).sum(1), weights  # (B, D), (B, K)


def weighted_median(curves: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, H) per-week weighted median of curves (B, K, H) under weights (B, K); 0 where all weights are 0."""
    values, order = curves.sort(dim=1)  # (B, K, H)
    w = weight.unsqueeze(-1).expand_as(curves).gather(1, order)  # (B, K, H) weights in sorted order
    cum = w.cumsum(1)  # (B, K, H)
    pick = (cum < 0.5 * cum[:, -1:]).sum(1, keepdim=True).clamp(max=curves.shape[1] - 1)  # (B, 1, H)
    return torch.where(cum[:, -1] > 0, values.gather(1, pick).squeeze(1), torch.zeros_like(values[:, 0]))


class CrossAttnRNN(nn.Module):
    def __init__(self, cfg: ModelConfig, image_dim: int | None, caption_dim: int, horizon: int = HORIZON,
                 attribute_sizes: list[int] | None = None, trend_series: int = 0):
        super().__init__()
        d = cfg.embed_dim
        n_trends = trend_series if cfg.trends else 0  # S series per product; 0: no trend branch
        # one embedding table per attribute column: index 0 = unknown value, 1..n = the vocabulary
        sizes = list(attribute_sizes or []) if cfg.attributes else []
        self.attribute_embeddings = nn.ModuleList(nn.Embedding(n + 1, cfg.attribute_dim) for n in sizes)
        self.cfg, self.horizon = cfg, horizon
        self.image_encoder = ImageEncoder(cfg.image_encoder, d, image_dim, cfg.image_weights)
        self.caption_proj = nn.Linear(caption_dim, d)
        self.missing_image = nn.Parameter(torch.zeros(1, 1, d))
        self.missing_caption = nn.Parameter(torch.zeros(1, d))
        self.image_text_attn = nn.MultiheadAttention(d, cfg.heads, batch_first=True)
        parts = 3 if cfg.fusion == "caption" else 2
        self.fusion_proj = nn.Linear(parts * d + len(sizes) * cfg.attribute_dim + (d if n_trends else 0), d)
        # Inputs per week: the normalised units, log1p of them (real sales span orders of magnitude)
        # and whether the week was observed or filled in.
        self.ts_embedder = nn.GRU(3, d, num_layers=cfg.gru_layers, batch_first=True)
        self.attention = AdditiveAttention(d)
        self.decoder = nn.Sequential(
            nn.Linear(2 * d + horizon, cfg.decoder_hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.decoder_hidden, cfg.decoder_hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.decoder_hidden, horizon + (cfg.head == "level_shape")),
        )
        nn.init.zeros_(self.decoder[-1].weight)  # residual mode starts from the neighbours' mean curve
        nn.init.zeros_(self.decoder[-1].bias)
        # last, so that a model without trends initialises exactly as before the branch existed
        self.trend_encoder = TrendEncoder(n_trends, TREND_WEEKS, d) if n_trends else None

    def encode_static(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """fused (B, D), image and caption embeddings (B, D), where both are real (B,) bool, and the
        caption's attention over the image tokens (B, T); missing modalities (and those an ablation
        switches off) are masked."""
        has_image = batch["has_image"] & self.cfg.use_image
        has_caption = batch["has_caption"] & self.cfg.use_caption
        tokens = self.image_encoder(batch["image"])  # (B, T, D)
        missing = self.missing_image.expand(tokens.shape[0], tokens.shape[1], -1)  # (B, T, D)
        tokens = torch.where(has_image[:, None, None], tokens, missing)
        image_emb = tokens.mean(1)  # (B, D)
        caption_emb = self.caption_proj(batch["caption"])  # (B, D)
        caption_emb = torch.where(has_caption[:, None], caption_emb, self.missing_caption.expand_as(caption_emb))
        # query (B, 1, D); weights averaged over heads (B, 1, T)
        attn_output, attn_weights = self.image_text_attn(caption_emb.unsqueeze(1), tokens, tokens)
        parts = [attn_output.squeeze(1), image_emb]  # (B, D) each
        if self.cfg.fusion == "caption":
            parts.append(caption_emb)
        if len(self.attribute_embeddings):
            codes = batch.get("attributes")
            if codes is None:
                codes = torch.zeros(tokens.shape[0], len(self.attribute_embeddings), dtype=torch.long,
                                    device=tokens.device)
            parts += [emb(codes[:, a].long()) for a, emb in enumerate(self.attribute_embeddings)]  # (B, Da) each
        if self.trend_encoder is not None:
            parts.append(self.trend_encoder(*self._trend_inputs(batch, tokens)))  # (B, D)
        fused = self.fusion_proj(torch.cat(parts, dim=-1))  # (B, 2D or 3D [+ A*Da] [+ D]) -> (B, D)
        return fused, image_emb, caption_emb, has_image & has_caption, attn_weights.squeeze(1)

    def _trend_inputs(self, batch: dict[str, torch.Tensor], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values (B, S, W), observed (B, S, W)); absent from the batch: every week masked."""
        if "trends" in batch:
            return batch["trends"].float(), batch["trend_observed"].bool()
        shape = (like.shape[0], self.trend_encoder.series_embedding.num_embeddings, TREND_WEEKS)
        return torch.zeros(shape, device=like.device), torch.zeros(shape, dtype=torch.bool, device=like.device)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fused, image_emb, caption_emb, paired, image_text = self.encode_static(batch)
        curves = batch["neighbours"]  # (B, K, H)
        b, k, h = curves.shape
        observed = batch["neighbour_observed"].to(curves.dtype)  # (B, K, H)
        steps = torch.stack([curves, torch.log1p(curves.clamp(min=0)), observed], dim=-1)  # (B, K, H, 3)
        steps = steps.reshape(b * k, h, 3)  # (B*K, H, 3)
        _, hidden = self.ts_embedder(steps)  # (layers, B*K, D)
        series = hidden[-1].reshape(b, k, -1)  # (B, K, D)
        weight = batch["neighbour_weight"]  # (B, K)
        if not self.cfg.use_neighbours:  # ablation: no neighbour is read (no context, base curve 0)
            weight = torch.zeros_like(weight)
        context, neighbour_attn = self.attention(fused, series, weight > 0)  # (B, D), (B, K)
        if self.cfg.base == "median":
            base = weighted_median(curves, weight)  # (B, H)
        else:
            base = (weight.unsqueeze(-1) * curves).sum(1)  # (B, H)
        out = self.decoder(torch.cat([fused, context, base], dim=-1))  # (B, 2D + H) -> (B, H) or (B, 1 + H)
        if self.cfg.head == "level_shape":
            # log of the mean week (the inputs' effects add up in it, as demand's factors multiply) times a
            # softmax launch shape; the zero-initialised layer starts at 1.0 a week, the training mean
            level = torch.exp(out[:, :1].clamp(max=20.0))  # (B, 1)
            out = level * h * torch.softmax(out[:, 1:], dim=-1)  # (B, H)
        if self.cfg.residual:
            out = out + base
        return {"forecast": out, "image_emb": image_emb, "caption_emb": caption_emb, "paired": paired,
                "image_text_attn": image_text, "neighbour_attn": neighbour_attn}


MODELS = {"crossattnrnn": CrossAttnRNN}


def create_model(name: str, cfg: ModelConfig, image_dim: int | None, caption_dim: int,
                 attribute_sizes: list[int] | None = None, trend_series: int = 0) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name](cfg, image_dim, caption_dim, attribute_sizes=attribute_sizes, trend_series=trend_series)
