"""DCGAN (Radford et al. 2016): transposed-conv G with batch norm and ReLU, strided-conv D with
leaky ReLU, non-saturating logistic loss. Class-conditional through a label embedding in G and a
projection head in D."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from raydemand.design.config import GANConfig
from raydemand.design.layers import NoiseAndLabel, ProjectionHead
from raydemand.design.models import GAN, init_dcgan_weights, register_gan


def _channels(width: int, size: int, res: int) -> int:
    """Channels at resolution `res`: `width` at size/2, doubling at each halving (8 * width at 4x4 for 64 px)."""
    return width * size // (2 * res)


class DCGenerator(nn.Module):
    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int):
        super().__init__()
        self.input = NoiseAndLabel(n_classes, cfg.noise_dim, cfg.conditional)
        c = _channels(cfg.width, size, 4)
        layers: list[nn.Module] = [nn.ConvTranspose2d(self.input.out_dim, c, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(c), nn.ReLU(True)]  # (N, c, 4, 4)
        res = 4
        while res < size // 2:
            nxt = _channels(cfg.width, size, res * 2)
            layers += [nn.ConvTranspose2d(c, nxt, 4, 2, 1, bias=False), nn.BatchNorm2d(nxt), nn.ReLU(True)]
            c, res = nxt, res * 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]  # (N, channels, size, size)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.input(z, y)  # (N, in)
        return self.net(h[:, :, None, None])  # (N, in, 1, 1) -> (N, C, size, size)


class DCDiscriminator(nn.Module):
    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int, heads: int = 1):
        super().__init__()
        c = _channels(cfg.width, size, size // 2)
        layers: list[nn.Module] = [nn.Conv2d(channels, c, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        res = size // 2
        while res > 4:
            nxt = _channels(cfg.width, size, res // 2)
            layers += [nn.Conv2d(c, nxt, 4, 2, 1, bias=False), nn.BatchNorm2d(nxt), nn.LeakyReLU(0.2, True)]
            c, res = nxt, res // 2
        self.net = nn.Sequential(*layers)  # (N, c, 4, 4)
        # DCGAN ends in a 4x4 conv over the last map: a linear map of the flattened features.
        self.head = ProjectionHead(c * 16, n_classes, cfg.conditional, heads)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.net(x).flatten(1)  # (N, c * 16)
        return self.head(h, y)  # (N, heads)


@register_gan
class DCGAN(GAN):
    name = "dcgan"

    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int = 64):
        super().__init__(cfg, n_classes, channels, size)
        cfg = self.cfg
        self.G = DCGenerator(cfg, n_classes, channels, size)
        self.D = DCDiscriminator(cfg, n_classes, channels, size)
        init_dcgan_weights(self)

    def d_loss_real(self, d_real: torch.Tensor) -> torch.Tensor:
        return F.softplus(-d_real).mean()  # BCE with logits, target 1

    def d_loss_fake(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(d_fake).mean()  # BCE with logits, target 0

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-d_fake).mean()  # non-saturating: maximise log D(G(z))

