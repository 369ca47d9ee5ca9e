"""Shared fixtures: real Fashion-MNIST subsets and IDX files written by the tests."""

import gzip
import os
import struct

import keras
import numpy as np
import pytest

from keras_vae import data

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


def write_idx(path, array):
    """Writes a uint8 array as an IDX file (gzip-compressed when path ends in .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


@pytest.fixture
def idx_dir(tmp_path):
    """A directory with the four IDX files of a tiny 8x8 dataset.

    Image i of a split is filled with the value 10 * label_i, so tests can
    check that images and labels stay aligned.
    """
    for split, count in (("train", 30), ("test", 10)):
        labels = np.arange(count, dtype=np.uint8) % 10
        images = np.repeat((labels * 10)[:, None, None], 8, axis=1).repeat(8, axis=2)
        image_stem, label_stem = data.IDX_FILES[split]
        write_idx(tmp_path / f"{image_stem}.gz", images)
        write_idx(tmp_path / f"{label_stem}.gz", labels)
    return tmp_path


@pytest.fixture(scope="session")
def fashion_mnist():
    """Real Fashion-MNIST from Debian's dataset-fashion-mnist (installed by .ci/run)."""
    if not os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR):
        pytest.fail(
            f"{data.DEBIAN_FASHION_MNIST_DIR} is missing: apt-get install dataset-fashion-mnist"
        )
    train = data.load("fashion_mnist", "train")
    test = data.load("fashion_mnist", "test")
    return train, test
