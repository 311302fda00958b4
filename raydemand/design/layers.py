"""Layers shared by the GANs: PGGAN's pixel norm, minibatch stddev and equalised learning rate,
and the class-conditioning pieces (label embedding for G, projection head for D)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit length (PGGAN, section 4.2)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the standard deviation of each feature over a group of samples,
    averaged to a scalar per group (PGGAN, section 3). A collapsed G gives itself away through it."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(self.group, n)  # a group size that divides the batch (the last batch may be short)
        y = x.float().reshape(g, n // g, c, h, w)  # (G, M, C, H, W): M groups of G samples
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (M,)
        y = y.to(x.dtype).reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)  # (N, C + 1, H, W)


class EqualizedConv2d(nn.Module):
    """Conv with N(0, 1) weights scaled at run time by He's constant (equalised learning rate): Adam's
    per-parameter step then moves every layer at the same relative speed (PGGAN, section 4.1)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = math.sqrt(2.0 / (in_ch * kernel * kernel))
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class NoiseAndLabel(nn.Module):
    """G's input: z concatenated with a learned label embedding (nothing added when unconditional)."""

    def __init__(self, n_classes: int, dim: int, conditional: bool):
        super().__init__()
        self.embed = nn.Embedding(n_classes, dim) if conditional else None
        self.out_dim = dim * (2 if conditional else 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(y).to(z.dtype)], dim=1)  # (N, 2 * noise_dim)


class ProjectionHead(nn.Module):
    """D's output from pooled features h: `heads` logits, each linear(h) + <embed(y), h> (Miyato &
    Koyama 2018's projection discriminator; only the linear term when unconditional)."""

    def __init__(self, features: int, n_classes: int, conditional: bool, heads: int = 1,
                 linear: type[nn.Module] = nn.Linear):
        super().__init__()
        self.linear = linear(features, heads)
        self.embed = nn.Embedding(n_classes, features * heads) if conditional else None
        self.heads = heads
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.linear(h)  # (N, heads)
        if self.embed is not None:
            e = self.embed(y).to(h.dtype).reshape(len(h), self.heads, -1)  # (N, heads, F)
            out = out + (e * h[:, None, :]).sum(dim=-1)
        return out  # (N, heads) logits
