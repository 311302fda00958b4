"""Configs of the design family: image sources, the three GANs, GAN training and the preference scorer.

Defaults are the seed's settings (batch 128, noise 100, lr 2e-4, 10 epochs, Adam beta1 0.5, 64x64);
PGGAN's learning rate is its paper's 1e-3 (see `GANTrainConfig.lr`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from raydemand.config import Config, registered
from raydemand.training import TrainConfig


SCORER_ARCHS = ("resnet50", "resnet18")  # ResNets: the scorer reads their pooled features (scorer.features)


class ImageSourceConfig(Config):
    source: str = "fashion-mnist"  # fashion-mnist | a VISUELLE-layout table | a folder of category folders
    size: int = Field(64, ge=4)  # output side in pixels (the seed: 64)
    channels: Literal[1, 3] | None = None  # None: 1 for Fashion-MNIST, 3 for product tables and folders
    limit: int | None = Field(None, ge=1)  # keep the first N images (quick runs, CI)
    fashion_mnist_path: str | None = None  # folder of the IDX files; None: system copy, else the shipped subset


class GANConfig(Config):
    """Architecture and loss of one GAN; `create_gan(cfg.gan, ...)` builds it."""

    gan: Annotated[str, registered("raydemand.design.models:list_gans", "GAN")] = "dcgan"  # any registered GAN
    noise_dim: int = Field(100, ge=1)  # dimension of the noise vector z (the seed: 100)
    # Channels: DCGAN/D2GAN at size/2 (ngf = ndf, doubling per halving); PGGAN at full size (doubling per
    # halving up to max_width). None: the GAN's default (DCGAN/D2GAN 64 as in DCGAN, PGGAN 16).
    width: int | None = Field(None, ge=2)
    max_width: int = Field(256, ge=2)  # PGGAN: channel cap at low resolutions
    conditional: bool = True  # class-conditional G (label embedding) and projection D; False: one model ignores labels
    # D2GAN (Nguyen et al. 2017): alpha weights log D1(x), beta weights log D2(G(z)); the paper's defaults.
    alpha: float = Field(0.2, gt=0)
    beta: float = Field(0.1, gt=0)
    # PGGAN: share of each growth stage spent fading in the new resolution (the rest is stable training).
    fade_fraction: float = Field(0.5, ge=0, le=1)
    mbstd_group: int = Field(4, ge=1)  # PGGAN: minibatch standard deviation group size
    # PGGAN: tanh on G's output, as DCGAN has. The paper's output is linear; then G can overshoot the
    # [-1, 1] pixel range (white backgrounds sit at its edge), D tells fakes by out-of-range values alone
    # and users see clipped colours. False: the paper's linear output (model.pt files from before this key).
    pggan_tanh: bool = True
    # Weight of the mode-seeking term (Mao et al. 2019, MSGAN) in G's loss: G is paid for making two
    # images of one category differ in proportion to their noise vectors, which stops a class-conditional
    # G from ignoring z and drawing one image per category. None: the GAN's default (DCGAN 1.0, D2GAN
    # 0.02, PGGAN 0.0: it has minibatch stddev, and the term raised its pixel FD on the colour-layout
    # probe, docs/BENCHMARKS.md run 4); 0 turns it off (the seed's GANs).
    mode_seeking: float | None = Field(None, ge=0)


class GANTrainConfig(Config):
    """`raydemand design train`: one GAN on one image source, trained with Ray Train."""

    model: GANConfig = GANConfig()
    images: ImageSourceConfig = ImageSourceConfig()
    epochs: int = Field(10, ge=1)  # the seed: 10
    batch_size: int = Field(128, ge=2)  # the seed: 128 (per worker)
    # G's and D's learning rate. None: the GAN's default, the seed's 2e-4 for DCGAN and D2GAN and the
    # paper's 1e-3 for PGGAN: its equalised-learning-rate weights are stored at N(0, 1) and Adam's step
    # is about lr per weight, so at 2e-4 they move ~50x slower, relative to their size, than DCGAN's N(0, 0.02).
    lr: float | None = Field(None, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)  # Adam beta1 (DCGAN's 0.5)
    beta2: float = Field(0.999, ge=0, lt=1)
    # Real images held out from GAN training, used only to pick the checkpoint (val_fd) and watch health.
    val_fraction: float = Field(0.1, gt=0, lt=1)
    val_max: int = Field(1000, ge=16)  # at most this many validation images (and generated images to compare)
    # Health checks, per epoch. Diversity = mean pairwise distance of generated images divided by
    # the same for real validation images; below `collapse_diversity` the epoch is flagged as mode collapse.
    collapse_diversity: float = Field(0.35, gt=0)
    # D winning outright (mean D(real) - D(fake) probability gap above this) for `diverge_patience`
    # epochs in a row, or a non-finite loss, is flagged as divergence; a non-finite loss also stops training.
    diverge_gap: float = Field(0.98, gt=0, le=1)
    diverge_patience: int = Field(2, ge=1)
    sample_grid: int = Field(8, ge=1)  # samples per category in the PNG grids written beside the run
    seed: int = 0
    train: TrainConfig = TrainConfig()


class ScorerConfig(Config):
    """`raydemand design train-scorer`: the preference scorer (a ResNet over product categories)."""

    arch: Literal[SCORER_ARCHS] = "resnet50"  # the seed: ResNet-50; resnet18 is ~3x cheaper on CPU
    weights: str | None = None  # torchvision weights name (e.g. IMAGENET1K_V2), read from the local cache only
    images: ImageSourceConfig = ImageSourceConfig(channels=3)
    top: int | None = Field(None, ge=1)  # top-N products by total sales (None: every image; the seed: 50)
    split: tuple[float, float, float] = (0.5, 0.3, 0.2)  # train/val/test shares (the seed: 5:3:2)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1e-3, gt=0)  # AdamW
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(3, ge=1)  # early stopping on validation loss
    augment: bool = True  # horizontal flips and small shifts (the seed used flips, zoom, brightness)
    nearest_k: int = Field(5, ge=1)  # k of the k-NN manifolds behind precision/recall and density/coverage
    seed: int = 0
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _split_sums_to_one(self):
        if abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise ValueError(f"split shares must be > 0 and sum to 1, got {self.split}")
        return self
