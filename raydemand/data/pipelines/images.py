"""Image preprocessing: decode, resize, normalise; one float32 (C, H, W) tensor per image, in Parquet.

Sources: a product table (VISUELLE 2.0 rows are product x store and share one image, so images are
taken once per product) or a folder with one sub-folder per category. The per-image work is plain
functions (`decode_image`, `preprocess_image`); Ray Data runs them over batches of paths as tasks,
streaming decoded batches straight into the Parquet writer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from raydemand.config import Config
from raydemand.data.pipelines.stage_io import (
    FLOAT_PARQUET_ARGS,
    parquet_rows,
    table_blocks,
    write_dataset,
    write_metadata,
)
from raydemand.errors import InputError
from raydemand.io import atomic_dir, is_table_file

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Pillow modes holding 16-bit (or wider) greyscale; read as fractions of 65535.
WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImagesConfig(Config):
    size: int | tuple[int, int] = 224  # output side, or (height, width); 224 is what ImageNet ResNets expect
    channels: Literal[1, 3] = 3  # 3: RGB (greyscale replicated); 1: luminance (ITU-R 601-2)
    mean: list[float] | None = None  # per channel (or one for all); None: ImageNet statistics
    std: list[float] | None = None  # per channel (or one for all); None: ImageNet statistics
    on_error: Literal["raise", "skip"] = "raise"  # a file that cannot be decoded: stop naming it, or skip and count it
    # Images per Ray task. A Ray Data task costs ~15-20 ms of CPU across worker, driver and raylet;
    # 32 images (~0.4 s of decoding and writing at 224 px) keep that near 5%, and a few thousand
    # images still make enough tasks to keep every core busy to the end.
    batch_size: int = Field(32, ge=1)

    @field_validator("size")
    @classmethod
    def _positive(cls, v):
        if min(v if isinstance(v, tuple) else (v,)) < 1:
            raise ValueError("sizes must be >= 1")
        return v

    @model_validator(mode="after")
    def _stats_match_channels(self):
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) not in (1, self.channels):
                raise ValueError(f"{name} has {len(value)} values; expected 1 or channels={self.channels}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError("std values must be > 0")
        return self

    @property
    def hw(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std), each float32 (C,); the ImageNet defaults average to one value for greyscale."""
        out = []
        for value, default in ((self.mean, IMAGENET_MEAN), (self.std, IMAGENET_STD)):
            if value is None:
                value = default if self.channels == 3 else [float(np.mean(default))]
            out.append(np.broadcast_to(np.asarray(value, np.float32), (self.channels,)).copy())
        return out[0], out[1]


def _working_mode(img, channels: int):
    """Convert to the one mode the rest of the pipeline handles: RGB, L, RGBA (composited after
    resizing, where it is cheaper) or F (wide greyscale scaled to [0, 1])."""
    from PIL import Image

    mode = img.mode
    if mode in WIDE_GREY_MODES:
        return Image.fromarray(np.asarray(img, dtype=np.float32) / 65535.0)
    if mode == "F":
        return img
    if mode in ALPHA_MODES or "transparency" in img.info:
        return img.convert("RGBA")
    if mode in ("L", "1"):
        return img.convert("L")
    rgb = img if mode == "RGB" else img.convert("RGB")
    # Luminance before resizing: a third of the pixels to resample.
    return rgb.convert("L") if channels == 1 else rgb


def _pixels(path: str | Path, size: tuple[int, int], channels: int) -> tuple[np.ndarray, float]:
    """The resized pixels as a (channels, H, W) view (uint8, or float32 for wide greyscale) and the
    value of white in it. A view, not a copy: the caller writes the one float array it keeps."""
    from PIL import Image

    h, w = size
    with Image.open(path) as img:
        # JPEG only: let the decoder downscale by 2/4/8 towards the target size (much faster).
        img.draft("L" if channels == 1 else None, (w, h))
        img = _working_mode(img, channels)
        # Pillow resamples RGBA with premultiplied alpha, so compositing after resizing is exact.
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img).convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img)
    if arr.ndim == 2:  # (H, W) greyscale -> (C, H, W)
        return np.broadcast_to(arr[None], (channels, h, w)), 1.0 if img.mode == "F" else 255.0
    return arr.transpose(2, 0, 1), 255.0  # (H, W, 3) -> (3, H, W)


def decode_image(path: str | Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Read any Pillow mode into float32 (channels, H, W) in [0, 1]; transparency is composited on white."""
    pixels, white = _pixels(path, size, channels)
    return np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(white)


def preprocess_image(path: str | Path, cfg: ImagesConfig, stats: tuple[np.ndarray, np.ndarray] | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Decode, resize and normalise one image into float32 (C, H, W) (into `out` when given).
    Errors name the file."""
    mean, std = stats if stats is not None else cfg.stats()
    try:
        pixels, white = _pixels(path, cfg.hw, cfg.channels)
    except Exception as e:  # Pillow raises many types (OSError, ValueError, SyntaxError, ...)
        raise InputError(f"{path}: cannot decode image: {type(e).__name__}: {e}") from None
    if out is None:
        out = np.empty(pixels.shape, np.float32)
    # (p / white - mean) / std as one scale and one shift, in place: no float temporaries, whose
    # fresh pages would cost more than the arithmetic.
    np.multiply(pixels, (1 / (white * std))[:, None, None], out=out)
    out -= (mean / std)[:, None, None]
    return out


def preprocess_batch(batch: dict[str, np.ndarray], cfg: ImagesConfig) -> dict[str, np.ndarray]:
    """Ray Data batch function: `path` (+ key columns) in, the same rows plus `image` (N, C, H, W) out.

    With on_error='skip' unreadable files are logged and dropped from the batch.
    """
    stats = cfg.stats()
    images = np.empty((len(batch["path"]), cfg.channels, *cfg.hw), np.float32)
    keep = []
    for i, path in enumerate(batch["path"]):
        try:
            preprocess_image(path, cfg, stats, out=images[len(keep)])
            keep.append(i)
        except InputError as e:
            if cfg.on_error == "raise":
                raise
            logger.warning("skipping %s", e)
    return {**{k: v[keep] for k, v in batch.items()}, "image": images[:len(keep)]}


def _is_category_folder(path: Path) -> bool:
    """A folder with no tables in it (and not a real layout) is read as category sub-folders."""
    return path.is_dir() and not any(is_table_file(p) for p in path.iterdir())


def list_images(source: str | Path, cfg: ImagesConfig, split: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The images to process, one row each, and what was left out. `split` picks the train or test
    part of a real layout that has one.

    Product tables give `external_code` (+ `category` where the table has it) and `path`; category
    folders give `key` (path relative to the folder), `category` and `path`.
    """
    from raydemand.data.sources import load_products

    path = Path(str(source))
    if _is_category_folder(path):
        rows = [(str(f.relative_to(path)), d.name, str(f.resolve()))
                for d in sorted(p for p in path.iterdir() if p.is_dir())
                for f in sorted(d.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
        if not rows:
            raise InputError(f"{path}: no images found (expected one sub-folder per category holding "
                             f"{', '.join(IMAGE_SUFFIXES)} files, or a product table)")
        return pd.DataFrame(rows, columns=["key", "category", "path"]), {"key": "key", "skipped_no_image": 0}

    # Missing files are reported by the table check (with its row) unless they are to be skipped.
    df = load_products(source, split=split, require_targets=False, check_images=cfg.on_error == "raise")
    if "image_path" not in df.columns:
        raise InputError(f"{source}: the product table has no image_path column")
    columns = ["external_code"] + (["category"] if "category" in df.columns else [])
    with_image = df[df["image_path"] != ""].drop_duplicates("external_code")
    products = df["external_code"].nunique()
    table = with_image[columns + ["image_path"]].rename(columns={"image_path": "path"}).reset_index(drop=True)
    if "category" in table.columns:
        table["category"] = table["category"].fillna("").astype(str)
    return table, {"key": "external_code", "skipped_no_image": int(products - len(table))}


def images_dataset(source: str | Path, cfg: ImagesConfig, split: str | None = None):
    """The lazy Ray Dataset of preprocessed images, and the listing info (key column, skips)."""
    import ray

    table, info = list_images(source, cfg, split)
    info["listed"] = len(table)
    ds = ray.data.from_pandas(table_blocks(table, cfg.batch_size)).map_batches(
        preprocess_batch, batch_size=cfg.batch_size, fn_kwargs={"cfg": cfg})
    return ds, info


def run(source: str | Path, out: str | Path, cfg: ImagesConfig | None = None, *, split: str | None = None,
        overwrite: bool = False) -> dict[str, Any]:
    """Preprocess every image of `source` into Parquet files in `out` (written atomically)."""
    cfg = cfg or ImagesConfig()
    start = time.perf_counter()
    ds, info = images_dataset(source, cfg, split)
    if info["listed"] == 0:
        raise InputError(f"{source}: no product has an image")
    # One operator only: Ray Data's per-operator reservation (half the CPUs) would otherwise hold
    # it to one task at a time on a 2-CPU machine until its budget adapts.
    ds.context.op_resource_reservation_enabled = False
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_dataset(ds, tmp, **FLOAT_PARQUET_ARGS)
        written = parquet_rows(tmp)
        summary = {"source": str(source), "out": str(out), "images": written, "key": info["key"],
                   "skipped_no_image": info["skipped_no_image"], "skipped_unreadable": info["listed"] - written,
                   "shape": [cfg.channels, *cfg.hw], "seconds": round(time.perf_counter() - start, 2)}
        write_metadata(tmp, cfg, summary)
    return summary
