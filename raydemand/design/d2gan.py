"""D2GAN (Nguyen et al. 2017): one DCGAN generator against two DCGAN discriminators with softplus
(positive) outputs. D1 rewards real data (alpha * log D1(x) - D1(G(z))), D2 rewards generated data
(-D2(x) + beta * log D2(G(z))); together they make G minimise a mix of the KL and reverse KL
divergences, which counters mode collapse. alpha and beta are config fields."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from raydemand.design.config import GANConfig
from raydemand.design.dcgan import DCDiscriminator, DCGenerator
from raydemand.design.models import GAN, init_dcgan_weights, register_gan


def _log_softplus(logits: torch.Tensor) -> torch.Tensor:
    """log(softplus(a)), finite for very negative a (where softplus underflows and log -> a)."""
    return torch.where(logits < -20, logits, F.softplus(logits).clamp_min(1e-30).log())


class DualDiscriminator(nn.Module):
    """D1 and D2 share no parameters (as in the paper); one module so DDP wraps them together."""

    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int):
        super().__init__()
        self.d1 = DCDiscriminator(cfg, n_classes, channels, size)
        self.d2 = DCDiscriminator(cfg, n_classes, channels, size)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.d1(x, y), self.d2(x, y)], dim=1)  # (N, 2) logits of D1 and D2


@register_gan
class D2GAN(GAN):
    name = "d2gan"
    heads = 2
    # The paper's G loss saturates while D1 rejects G's images, so a larger mode-seeking weight outweighs
    # it and G never leaves noise: measured with bench/design_dynamics.py, 1.0 and 0.1 stay at noise,
    # 0.02 breaks out sooner than without the term and keeps 4x the variety (docs/BENCHMARKS.md).
    default_mode_seeking = 0.02

    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int = 64):
        super().__init__(cfg, n_classes, channels, size)
        cfg = self.cfg
        self.G = DCGenerator(cfg, n_classes, channels, size)
        self.D = DualDiscriminator(cfg, n_classes, channels, size)
        init_dcgan_weights(self)

    # The discriminators maximise alpha log D1(x) - D1(G(z)) - D2(x) + beta log D2(G(z)); losses are its negation.
    def d_loss_real(self, d_real: torch.Tensor) -> torch.Tensor:
        return (-self.cfg.alpha * _log_softplus(d_real[:, 0]) + F.softplus(d_real[:, 1])).mean()

    def d_loss_fake(self, d_fake: torch.Tensor) -> torch.Tensor:
        return (F.softplus(d_fake[:, 0]) - self.cfg.beta * _log_softplus(d_fake[:, 1])).mean()

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        return (-F.softplus(d_fake[:, 0]) + self.cfg.beta * _log_softplus(d_fake[:, 1])).mean()
