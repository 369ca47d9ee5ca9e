"""Shared fixtures: real Fashion-MNIST subsets and IDX files written by the tests."""

import gzip
import os
import struct

import keras
import numpy as np
import pytest

from keras_vae import datasets

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
        image_stem, label_stem = datasets.IDX_FILES[split]
        write_idx(tmp_path / f"{image_stem}.gz", images)
        write_idx(tmp_path / f"{label_stem}.gz", labels)
    return tmp_path


@pytest.fixture(scope="session")
def fashion_mnist():
    """Real Fashion-MNIST from Debian's dataset-fashion-mnist (installed by .ci/run)."""
    if not os.path.isdir(datasets.DEBIAN_FASHION_MNIST_DIR):
        pytest.fail(
            f"{datasets.DEBIAN_FASHION_MNIST_DIR} is missing: apt-get install dataset-fashion-mnist"
        )
    train = datasets.load("fashion_mnist", "train")
    test = datasets.load("fashion_mnist", "test")
    return train, test


TINY_TRAIN_ARGS = [
    "--preset",
    "keras_example",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--train-subset",
    "1024",
    "--validation-size",
    "256",
    "--test-subset",
    "256",
    "--kl-warmup-epochs",
    "1",
    "--verbose",
    "0",
]


def run_train(run_dir, *extra_args):
    """Runs train.py in a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "train.py"),
            "--run-dir",
            str(run_dir),
            *TINY_TRAIN_ARGS,
            *extra_args,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run dir made by train.py end to end: 2 tiny epochs on real Fashion-MNIST."""
    run_dir = tmp_path_factory.mktemp("run")
    result = run_train(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result
