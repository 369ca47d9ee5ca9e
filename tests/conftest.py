"""Shared fixtures: real Fashion-MNIST, IDX files written by the tests, one tiny run dir.

Helpers live in tests/testing.py; test modules import from there, never from
each other.
"""

import os

import keras
import numpy as np
import pytest

from keras_vae import datasets
from tests.testing import train_in_process, write_idx


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run dir made by train.py's main, in this process: 2 tiny epochs on real Fashion-MNIST."""
    run_dir = tmp_path_factory.mktemp("run")
    result = train_in_process(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    """train.py --conditional: 2 tiny epochs on real Fashion-MNIST, every export file."""
    run = tmp_path_factory.mktemp("conditional") / "run"
    result = train_in_process(run, "--conditional")
    assert result.returncode == 0, result.stderr[-3000:]
    return run
