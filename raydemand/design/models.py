"""The GAN base class and registry: `create_gan(name, n_classes, channels, size, **overrides)`.

Every GAN has one interface, so the training loop, generation, Tune and the bench treat them alike:
`G(z, y)` makes images at the current training resolution, `D(x, y)` gives logits (N, heads),
`d_loss_real`/`d_loss_fake`/`g_loss` turn logits into the losses, `prepare_real` brings real images to the
resolution G works at, `set_progress` lets a growing GAN follow the schedule, and `generate` makes
full-size images in [-1, 1] for users. Images are float (N, C, H, W) in [-1, 1]; labels int64 (N,).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from raydemand.design.config import GANConfig
from raydemand.errors import InputError


class GAN(nn.Module):
    name: ClassVar[str]
    heads: ClassVar[int] = 1  # discriminator outputs per image (D2GAN: 2)
    default_width: ClassVar[int] = 64
    default_mode_seeking: ClassVar[float] = 1.0
    default_lr: ClassVar[float] = 2e-4  # design train's learning rate when its config leaves `lr` null
    G: nn.Module
    D: nn.Module

    def __init__(self, cfg: GANConfig, n_classes: int, channels: int, size: int = 64):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise InputError(f"{self.name}: image size must be a power of two >= 8, got {size}")
        if n_classes < 1:
            raise InputError(f"{self.name}: n_classes must be >= 1, got {n_classes}")
        if cfg.width is None:
            cfg = cfg.model_copy(update={"width": self.default_width})
        if cfg.mode_seeking is None:
            cfg = cfg.model_copy(update={"mode_seeking": self.default_mode_seeking})
        self.cfg, self.n_classes, self.channels, self.size = cfg, n_classes, channels, size

    def args(self) -> dict[str, Any]:
        """What `create_gan` needs to rebuild this model (saved beside the weights)."""
        return {"name": self.name, "n_classes": self.n_classes, "channels": self.channels, "size": self.size,
                **self.cfg.model_dump(exclude={"gan"})}

    def set_progress(self, fraction: float) -> None:
        """Share of training done, in [0, 1]; only growing GANs use it."""

    @property
    def resolution(self) -> int:
        """Side of the images G makes now (a growing GAN: its current stage's)."""
        return self.size

    def full_grown(self) -> bool:
        """Whether G now makes full-size images with all its layers (a growing GAN: at its last stage,
        with the new layers fully faded in). Only such epochs can be chosen as the final checkpoint."""
        return True

    def prepare_real(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def d_loss_real(self, d_real: torch.Tensor) -> torch.Tensor:
        """D's loss on real images' logits (N, heads)."""
        raise NotImplementedError

    def d_loss_fake(self, d_fake: torch.Tensor) -> torch.Tensor:
        """D's loss on generated images' logits (N, heads)."""
        raise NotImplementedError

    def d_loss(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return self.d_loss_real(d_real) + self.d_loss_fake(d_fake)

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mode_seeking_loss(self, fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """MSGAN's mode-seeking term for images (2h, C, H, W) made from noise z (2h, noise_dim) where
        rows i and i + h share a category: the reciprocal of the mean ratio of image distance to noise
        distance over the h pairs. It falls as G spreads one category's images apart."""
        h = len(z) // 2
        ratio = (fake[:h] - fake[h:2 * h]).abs().flatten(1).mean(1) / (z[:h] - z[h:2 * h]).abs().mean(1)  # (h,)
        return 1.0 / (ratio.mean() + 1e-5)

    def realness(self, logits: torch.Tensor) -> torch.Tensor:
        """(N,) a score D raises for real images (for the divergence check)."""
        return logits[:, 0]

    @torch.no_grad()
    def calibrate(self, batches: int = 8, batch_size: int = 128) -> None:
        """Re-estimate G's batch-norm running statistics for its current weights (cumulative average over
        `batches` random batches), so that eval-mode generation matches what G learned. The running
        averages kept during training lag behind weights that move fast, and early on that alone
        makes eval-mode samples nearly constant."""
        norms = [m for m in self.G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        device = next(self.G.parameters()).device
        was_training = self.G.training
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        self.G.train()
        for _ in range(batches):
            self.G(torch.randn(batch_size, self.cfg.noise_dim, device=device),
                   torch.randint(0, self.n_classes, (batch_size,), device=device))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.G.train(was_training)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Full-size images (N, C, size, size) in [-1, 1]."""
        x = self.G(z, y)
        if x.shape[-1] != self.size:  # a growing GAN stopped before its last stage
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="nearest")
        return x.clamp(-1, 1)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN's init: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


GANS: dict[str, type[GAN]] = {}


def register_gan(cls: type[GAN]) -> type[GAN]:
    GANS[cls.name] = cls
    return cls


def _load() -> None:
    from raydemand.design import d2gan, dcgan, pggan  # noqa: F401  (they register themselves)


def list_gans() -> list[str]:
    _load()
    return sorted(GANS)


def create_gan(name: str, n_classes: int, channels: int, size: int = 64, **overrides) -> GAN:
    """A registered GAN by name; `overrides` are GANConfig fields."""
    _load()
    if name not in GANS:
        raise InputError(f"unknown GAN {name!r}; choose one of {', '.join(sorted(GANS))}")
    cfg = GANConfig(gan=name, **overrides)
    return GANS[name](cfg, n_classes=n_classes, channels=channels, size=size)


def gan_from_args(args: dict[str, Any]) -> GAN:
    """Rebuild a GAN from `GAN.args()` (as saved in model.pt)."""
    args = dict(args)
    if args["name"] == "pggan":
        args.setdefault("pggan_tanh", False)  # model.pt files from before the key had a linear output
    return create_gan(args.pop("name"), args.pop("n_classes"), args.pop("channels"), args.pop("size"), **args)

