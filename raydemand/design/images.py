"""The three image sources as one array: Fashion-MNIST, a VISUELLE-layout product table, or a folder
with one sub-folder per category -> uint8 (N, H, W, C) at the configured size, labels, category names,
and per-image sales where the source has them.

Decoding reuses the data layer (`list_images`, `decode_image`): transparency is composited on white,
greyscale replicated or RGB reduced to luminance as configured.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from raydemand.design.config import ImageSourceConfig
from raydemand.errors import InputError

FASHION_MNIST = "fashion-mnist"
UNKNOWN_CATEGORY = "unknown"


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,), indices into `categories`
    categories: list[str]
    keys: np.ndarray  # str (N,): product id, file path relative to the folder, or Fashion-MNIST index
    sales: np.ndarray | None  # float64 (N,) total units per product, where the source has weekly targets
    description: str  # what was read, for run records

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: np.ndarray, description: str | None = None) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.categories, self.keys[index],
                        None if self.sales is None else self.sales[index], description or self.description)

    def to_float(self, index: np.ndarray | None = None) -> np.ndarray:
        """float32 (N, C, H, W) in [-1, 1], what the GANs read."""
        x = self.images if index is None else self.images[index]
        return (x.transpose(0, 3, 1, 2).astype(np.float32) / 127.5) - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C)."""
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _resize_fashion_mnist(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """uint8 (N, 28, 28) -> uint8 (N, size, size, channels), bilinear, in chunks to bound memory."""
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), size, size, channels), np.uint8)
    for start in range(0, len(images), 4096):
        x = torch.from_numpy(images[start:start + 4096]).float()[:, None]  # (n, 1, 28, 28)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out[start:start + 4096] = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def _load_fashion_mnist(cfg: ImageSourceConfig, channels: int) -> ImageSet:
    from raydemand.data.fashion_mnist import CLASSES, load_fashion_mnist, source_description

    images, labels = load_fashion_mnist(cfg.fashion_mnist_path, split="train", limit=cfg.limit)
    return ImageSet(_resize_fashion_mnist(images, cfg.size, channels), labels, list(CLASSES),
                    np.arange(len(labels)).astype(str), None,
                    f"Fashion-MNIST train, {len(labels)} images ({source_description(cfg.fashion_mnist_path)})")


def _product_sales(source: str, keys: np.ndarray) -> np.ndarray | None:
    """Total units over the weekly targets and every store, per product in `keys`; None without targets."""
    from raydemand.data.schema import TARGET_COLUMNS
    from raydemand.data.sources import load_products

    df = load_products(source, require_targets=False, check_images=False)
    if not all(c in df.columns for c in TARGET_COLUMNS):
        return None
    totals = df[TARGET_COLUMNS].sum(axis=1).groupby(df["external_code"]).sum()
    return totals.reindex(keys).fillna(0.0).to_numpy(np.float64)


def _decode_all(paths: list[str], size: int, channels: int) -> np.ndarray:
    from tqdm import tqdm

    from raydemand.data.pipelines.images import decode_image

    out = np.empty((len(paths), size, size, channels), np.uint8)

    def one(i: int) -> None:
        try:
            x = decode_image(paths[i], (size, size), channels)  # float32 (C, H, W) in [0, 1]
        except Exception as e:  # Pillow raises many types
            raise InputError(f"{paths[i]}: cannot decode image: {type(e).__name__}: {e}") from None
        out[i] = np.rint(x.transpose(1, 2, 0) * 255).astype(np.uint8)

    with ThreadPoolExecutor(max_workers=4) as pool:  # Pillow releases the GIL while decoding
        list(tqdm(pool.map(one, range(len(paths))), total=len(paths), desc="decoding images",
                  disable=len(paths) < 2000, leave=False))
    return out


def _load_listed(cfg: ImageSourceConfig, channels: int, top: int | None) -> ImageSet:
    from raydemand.data.pipelines.images import ImagesConfig, list_images

    table, info = list_images(cfg.source, ImagesConfig(size=cfg.size, channels=channels))
    if table.empty:
        raise InputError(f"{cfg.source}: no product has an image")
    keys = table[info["key"]].astype(str).to_numpy()
    category = (table["category"].astype(str).replace("", UNKNOWN_CATEGORY) if "category" in table.columns
                else np.full(len(table), UNKNOWN_CATEGORY))
    category = np.asarray(category, dtype=object)
    sales = _product_sales(cfg.source, keys) if info["key"] == "external_code" else None
    order = np.arange(len(table))
    what = "images"
    if top is not None:
        if sales is None:
            raise InputError(f"{cfg.source}: --top needs sales (weekly targets 0..11), and this source has none")
        order = np.argsort(-sales, kind="stable")[:top]  # best sellers first, ties in file order
        what = f"images of the top {len(order)} products by sales"
    if cfg.limit is not None:
        order = order[:cfg.limit]
    categories = sorted(set(category[order]))
    labels = np.searchsorted(categories, category[order]).astype(np.int64)
    paths = table["path"].astype(str).to_numpy()[order].tolist()
    return ImageSet(_decode_all(paths, cfg.size, channels), labels, categories, keys[order],
                    None if sales is None else sales[order], f"{cfg.source}: {len(order)} {what}")


def load_images(cfg: ImageSourceConfig, top: int | None = None) -> ImageSet:
    """Read the configured source. `top` keeps the N best-selling products (sources with sales only)."""
    if cfg.source == FASHION_MNIST:
        if top is not None:
            raise InputError("fashion-mnist has no sales, so --top cannot pick best sellers; leave it out")
        return _load_fashion_mnist(cfg, cfg.channels or 1)
    if not Path(cfg.source).exists():
        raise FileNotFoundError(f"{cfg.source}: no such file or folder (an image SOURCE is '{FASHION_MNIST}', "
                                f"a VISUELLE-layout product table, or a folder with one sub-folder per category)")
    return _load_listed(cfg, cfg.channels or 3, top)
