"""Fashion-MNIST (real Zalando apparel images, 10 classes, MIT licence).

Read from, in order: an explicit folder of the four IDX files (gzipped or not), the Debian package
`dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist), or the real subset that ships inside
this package (500 training and 100 test images per class, so demos and tests work anywhere).
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import numpy as np

from raydemand.errors import InputError

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SUBSET_ASSET = "fashion_mnist_subset.npz"
_PREFIX = {"train": "train", "test": "t10k"}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]]).newbyteorder(">")
    body = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise InputError(f"{path}: truncated IDX file ({body.size} values, header says {shape})")
    return body.reshape(shape).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, split: str, kind: str) -> Path | None:
    for name in (f"{_PREFIX[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte", ):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.exists():
                return candidate
    return None


def source_description(path: str | Path | None = None) -> str:
    folder = Path(path) if path else SYSTEM_DIR
    if _idx_file(folder, "train", "images") is not None:
        return str(folder)
    return f"shipped subset ({SUBSET_ASSET})"


def load_fashion_mnist(
    path: str | Path | None = None,
    split: str = "train",
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels int64 (N,).

    `limit` keeps the first N images in file order. With an explicit `path` the IDX files must be
    there; without one the system copy is used when installed, else the shipped subset.
    """
    if split not in _PREFIX:
        raise InputError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(path) if path is not None else SYSTEM_DIR
    images_file, labels_file = _idx_file(folder, split, "images"), _idx_file(folder, split, "labels")
    if images_file is not None and labels_file is not None:
        images, labels = read_idx(images_file), read_idx(labels_file)
        if len(images) != len(labels):
            raise InputError(f"{folder}: {len(images)} images but {len(labels)} labels")
    elif path is not None:
        raise InputError(f"{folder}: no Fashion-MNIST IDX files for split '{split}' "
                         f"(expected {_PREFIX[split]}-images-idx3-ubyte[.gz] and {_PREFIX[split]}-labels-idx1-ubyte[.gz])")
    else:
        with resources.files("raydemand.assets").joinpath(SUBSET_ASSET).open("rb") as f:
            packed = np.load(f)
            images, labels = packed[f"{split}_images"], packed[f"{split}_labels"]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images.astype(np.uint8), labels.astype(np.int64)
