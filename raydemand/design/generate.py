"""`design generate`: images from a trained GAN run, in the SPEC's npz contract, and sample grids.

SAMPLES.npz: `images` uint8 (N, H, W) for greyscale or (N, H, W, 3) for RGB, `labels` int (N,)
(indices into `categories`), `categories` str (K,); plus `gan` (the model's name), written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from raydemand.errors import InputError
from raydemand.io import atomic_path


class GANRun:
    """A trained generator loaded from a run directory; no Ray needed."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", *, finished: bool = True):
        from raydemand.design.models import gan_from_args
        from raydemand.runs import read_model

        state = read_model(run_dir, "gan", finished=finished).state
        self.gan = gan_from_args(state["args"])
        self.gan.G.load_state_dict(state["G"])
        self.gan.G.eval().to(device)
        self.device, self.run_dir = device, Path(run_dir)
        self.categories: list[str] = list(state["categories"])
        self.epoch = int(state["epoch"])

    @property
    def name(self) -> str:
        return self.gan.name

    def labels_for(self, n: int, category: str | None = None) -> np.ndarray:
        """`n` labels: all `category`, or the categories in turn."""
        if n < 1:
            raise InputError(f"--n must be >= 1, got {n}")
        if category is None:
            return np.arange(n) % len(self.categories)
        if category not in self.categories:
            raise InputError(f"unknown category {category!r}; this model makes: {', '.join(self.categories)}")
        return np.full(n, self.categories.index(category))

    def generate(self, n: int, category: str | None = None, seed: int = 0, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (N, H, W) or (N, H, W, 3) and int labels (N,)."""
        import torch

        from raydemand.design.images import to_uint8

        labels = self.labels_for(n, category)
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.gan.cfg.noise_dim, generator=gen)
        out = []
        for i in range(0, n, batch_size):
            x = self.gan.generate(z[i:i + batch_size].to(self.device),
                                  torch.as_tensor(labels[i:i + batch_size]).to(self.device))
            out.append(to_uint8(x.float().cpu().numpy()))
        images = np.concatenate(out)  # (N, H, W, C)
        return (images[..., 0] if images.shape[-1] == 1 else images), labels.astype(np.int64)

    predict = generate


def load_run(run_dir: str | Path, device: str = "cpu") -> GANRun:
    return GANRun(run_dir, device)


def write_samples(run: GANRun, out: str | Path, n: int, category: str | None = None, seed: int = 0) -> dict:
    images, labels = run.generate(n, category, seed)
    with atomic_path(out) as tmp:
        np.savez_compressed(tmp, images=images, labels=labels, categories=np.array(run.categories, dtype=str),
                            gan=np.array(run.name))
    return {"out": str(out), "gan": run.name, "images": int(len(images)), "shape": list(images.shape[1:]),
            "categories": sorted({run.categories[i] for i in labels}), "seed": seed}


def grid_image(images: np.ndarray, rows: int):
    """uint8 (N, H, W[, 3]) -> one PIL image with `rows` rows, 2-pixel grey gutters."""
    from PIL import Image

    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    cols = -(-n // rows)
    canvas = np.full((rows * (h + 2) + 2, cols * (w + 2) + 2, c), 128, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + k * (w + 2):2 + k * (w + 2) + w] = img
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas)


def write_grid(run: GANRun, out: str | Path, per_category: int = 8, seed: int = 0) -> Path:
    """A PNG with a row per category, `per_category` samples each."""
    k = len(run.categories)
    images = np.concatenate([run.generate(per_category, run.categories[c], seed=seed + c)[0] for c in range(k)])
    with atomic_path(out) as tmp:
        grid_image(images, rows=k).save(tmp)
    return Path(out)
