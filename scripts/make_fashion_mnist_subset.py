"""Rebuild raydemand/assets/fashion_mnist_subset.npz from the real Fashion-MNIST files.

The subset is the first 500 training and the first 100 test images of each class, in file order:
    python scripts/make_fashion_mnist_subset.py [/usr/share/datasets/fashion-mnist]
"""

import sys
from pathlib import Path

import numpy as np

from raydemand.data.fashion_mnist import load_fashion_mnist

PER_CLASS = {"train": 500, "test": 100}


def main(folder: str) -> None:
    arrays = {}
    for split, n in PER_CLASS.items():
        images, labels = load_fashion_mnist(folder, split)
        keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:n] for c in range(10)]))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[keep], labels[keep].astype(np.uint8)
    out = Path(__file__).resolve().parents[1] / "raydemand" / "assets" / "fashion_mnist_subset.npz"
    np.savez_compressed(out, **arrays)
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
