"""PGGAN (Karras et al. 2018): G and D grow together from 4x4 to the full size (4 -> 8 -> 16 -> 32
-> 64), each new resolution faded in linearly over `fade_fraction` of its stage; pixel norm in G,
minibatch standard deviation in D, equalised learning rate everywhere. Training is split into equal
stages by progress (share of all steps), so the schedule follows any epoch budget. Loss: the
non-saturating logistic loss with PGGAN's small drift penalty on D(real). G's output goes through
tanh (`pggan_tanh`; the paper's is linear) and the default learning rate is the paper's 1e-3."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from raydemand.design.config import GANConfig
from raydemand.design.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    NoiseAndLabel,
    PixelNorm,
    ProjectionHead,
)
from raydemand.design.models import GAN, register_gan

DRIFT = 1e-3  # PGGAN's epsilon_drift: keeps D's real logits near zero


def _channels(cfg: GANConfig, size: int, res: int) -> int:
    return min(cfg.max_width, cfg.width * size // res)


def _resolutions(size: int) -> list[int]:
    return [4 * 2**i for i in range(int(math.log2(size)) - 1)]  # [4, 8, ..., size]


class _Progress(nn.Module):
    """Current stage (index into the resolutions) and fade-in weight of its new layers, as buffers
    so that saved weights know how far the model grew."""

    def __init__(self):
        super().__init__()
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))
        self.register_buffer("alpha", torch.ones(()))


class PGGenerator(_Progress):
    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int):
        super().__init__()
        res = _resolutions(size)
        ch = [_channels(cfg, size, r) for r in res]
        self.input = NoiseAndLabel(n_classes, cfg.noise_dim, cfg.conditional)
        self.pixel_norm = PixelNorm()
        self.dense = EqualizedLinear(self.input.out_dim, ch[0] * 16, gain=math.sqrt(2) / 4)
        self.base = EqualizedConv2d(ch[0], ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(ch[i - 1], ch[i], 3, padding=1), EqualizedConv2d(ch[i], ch[i], 3, padding=1)])
            for i in range(1, len(res)))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, channels, 1) for c in ch)
        for conv in self.to_rgb:
            conv.scale /= math.sqrt(2)  # gain 1: to_rgb is linear
        self.tanh = cfg.pggan_tanh

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixel_norm(F.leaky_relu(x, 0.2))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        stage, alpha = int(self.stage), float(self.alpha)
        h = self.pixel_norm(self.input(z, y))  # (N, in)
        h = self._act(self.dense(h).reshape(len(z), -1, 4, 4))  # (N, ch0, 4, 4)
        h = self._act(self.base(h))
        prev = h
        for i in range(stage):
            prev = h
            h = F.interpolate(h, scale_factor=2, mode="nearest")  # (N, c, 2r, 2r)
            for conv in self.blocks[i]:
                h = self._act(conv(h))
        out = self.to_rgb[stage](h)  # (N, C, r, r) at the current resolution
        if stage > 0 and alpha < 1:  # fade in: blend with the upsampled output of the previous stage
            skip = F.interpolate(self.to_rgb[stage - 1](prev), scale_factor=2, mode="nearest")
            out = torch.lerp(skip, out, alpha)
        return torch.tanh(out) if self.tanh else out


class PGDiscriminator(_Progress):
    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int):
        super().__init__()
        res = _resolutions(size)
        ch = [_channels(cfg, size, r) for r in res]
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, c, 1) for c in ch)
        # blocks[i] takes resolution res[i] down to res[i - 1]
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(ch[i], ch[i], 3, padding=1), EqualizedConv2d(ch[i], ch[i - 1], 3, padding=1)])
            for i in range(1, len(res)))
        self.mbstd = MinibatchStdDev(cfg.mbstd_group)
        self.final_conv = EqualizedConv2d(ch[0] + 1, ch[0], 3, padding=1)
        self.final_dense = EqualizedLinear(ch[0] * 16, ch[0])
        self.head = ProjectionHead(ch[0], n_classes, cfg.conditional,
                                   linear=lambda i, o: EqualizedLinear(i, o, gain=1.0))

    def _block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        for conv in self.blocks[i - 1]:
            h = F.leaky_relu(conv(h), 0.2)
        return F.avg_pool2d(h, 2)  # (N, c, r/2, r/2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        stage, alpha = int(self.stage), float(self.alpha)
        h = F.leaky_relu(self.from_rgb[stage](x), 0.2)  # (N, c, r, r)
        if stage > 0:
            h = self._block(stage, h)
            if alpha < 1:  # fade in: blend with the previous stage's input path on the downsampled image
                skip = F.leaky_relu(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)), 0.2)
                h = torch.lerp(skip, h, alpha)
        for i in range(stage - 1, 0, -1):
            h = self._block(i, h)
        h = self.mbstd(h)  # (N, ch0 + 1, 4, 4)
        h = F.leaky_relu(self.final_conv(h), 0.2)
        h = F.leaky_relu(self.final_dense(h.flatten(1)), 0.2)  # (N, ch0)
        return self.head(h, y)  # (N, 1)


@register_gan
class PGGAN(GAN):
    name = "pggan"
    default_width = 16
    default_mode_seeking = 0.0  # minibatch stddev in D; the term cost recognisability on colour data (run 4)
    default_lr = 1e-3  # the paper's; with equalised learning rate the seed's 2e-4 barely moves the weights

    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int = 64):
        super().__init__(cfg, n_classes, channels, size)
        cfg = self.cfg
        self.G = PGGenerator(cfg, n_classes, channels, size)
        self.D = PGDiscriminator(cfg, n_classes, channels, size)
        self.n_stages = len(_resolutions(size))
        self.set_progress(1.0)

    def set_progress(self, fraction: float) -> None:
        """Equal stages over training; in each stage after the first, the new layers fade in first."""
        pos = min(max(fraction, 0.0), 1.0) * self.n_stages
        stage = min(int(pos), self.n_stages - 1)
        within = pos - stage
        fade = self.cfg.fade_fraction
        alpha = 1.0 if stage == 0 or fade == 0 else min(1.0, within / fade)
        for m in (self.G, self.D):
            m.stage.fill_(stage)
            m.alpha.fill_(alpha)

    def full_grown(self) -> bool:
        # At the start of the last stage G's 64x64 layers are untrained and its output is the previous
        # stage's, upsampled (alpha 0); it counts as full size only once they have faded in.
        return int(self.G.stage) == self.n_stages - 1 and float(self.G.alpha) >= 1.0 - 1e-6

    @property
    def resolution(self) -> int:
        return 4 * 2 ** int(self.G.stage)

    def prepare_real(self, x: torch.Tensor) -> torch.Tensor:
        """Real images at the current resolution, faded like G's output during a fade-in."""
        r = self.resolution
        if x.shape[-1] != r:
            x = F.adaptive_avg_pool2d(x, r)
        alpha = float(self.G.alpha)
        if alpha < 1:
            x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
        return x

    def d_loss_real(self, d_real: torch.Tensor) -> torch.Tensor:
        return F.softplus(-d_real).mean() + DRIFT * d_real.pow(2).mean()

    def d_loss_fake(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(d_fake).mean()

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-d_fake).mean()
