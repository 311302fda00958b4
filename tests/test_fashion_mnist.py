import gzip

import numpy as np
import pytest

from raydemand.data import fashion_mnist as fm
from raydemand.errors import InputError


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def test_reads_idx_files_from_a_folder(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([9, 0, 4], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 0x08)
    x, y = fm.load_fashion_mnist(tmp_path, split="test")
    assert np.array_equal(x, images) and y.tolist() == [9, 0, 4] and y.dtype == np.int64
    assert fm.load_fashion_mnist(tmp_path, split="test", limit=2)[0].shape == (2, 28, 28)


def test_explicit_folder_without_files_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no Fashion-MNIST IDX files for split 'train'"):
        fm.load_fashion_mnist(tmp_path)


def test_bad_magic_is_an_error(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(InputError, match="bad magic"):
        fm.read_idx(tmp_path / "x.idx")


def test_shipped_subset_is_real_and_balanced(monkeypatch):
    monkeypatch.setattr(fm, "SYSTEM_DIR", fm.Path("/nonexistent"))
    x, y = fm.load_fashion_mnist()
    assert x.shape == (5000, 28, 28) and np.bincount(y).tolist() == [500] * 10
    xt, yt = fm.load_fashion_mnist(split="test")
    assert xt.shape == (1000, 28, 28) and np.bincount(yt).tolist() == [100] * 10
    # Real garments: trousers (1) are tall and narrow, bags (8) wide; a random array would not be.
    ink = x > 30
    width = ink.any(axis=1).sum(axis=1)
    assert width[y == 1].mean() + 6 < width[y == 8].mean()


@pytest.mark.realdata
@pytest.mark.skipif(not fm.SYSTEM_DIR.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_system_copy_matches_the_shipped_subset():
    x, y = fm.load_fashion_mnist()
    assert x.shape == (60000, 28, 28)
    with fm.resources.files("raydemand.assets").joinpath(fm.SUBSET_ASSET).open("rb") as f:
        packed = np.load(f)
        sub_x, sub_y = packed["train_images"], packed["train_labels"]
    first_of_class = np.flatnonzero(y == sub_y[0])[0]
    assert np.array_equal(x[first_of_class], sub_x[0])
