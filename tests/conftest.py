"""Shared fixtures: real Fashion-MNIST, IDX files written by the tests, one tiny run dir.

Helpers live in tests/testing.py; test modules import from there, never from
each other.
"""

import os
import types

import keras
import numpy as np
import pytest

from keras_vae import datasets
from tests.testing import assert_unchanged, built_once, train_in_process, write_idx


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
    """A run dir made by train.py's main in a test process: 2 tiny epochs on real Fashion-MNIST.

    One for the whole test run, shared by the workers: tests read it and never write it.
    """

    def build(run_dir):
        result = train_in_process(run_dir)
        assert result.returncode == 0, result.stderr[-3000:]
        return {"stdout": result.stdout, "stderr": result.stderr}

    run_dir, printed, digest = built_once(tmp_path_factory, "trained_run", build)
    yield run_dir, types.SimpleNamespace(returncode=0, **printed)
    assert_unchanged(run_dir, digest)


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    """train.py --conditional: 2 tiny epochs on real Fashion-MNIST, every export file.

    One for the whole test run, shared by the workers like trained_run.
    """

    def build(folder):
        result = train_in_process(folder / "run", "--conditional")
        assert result.returncode == 0, result.stderr[-3000:]

    folder, _, digest = built_once(tmp_path_factory, "conditional_run", build)
    yield folder / "run"
    assert_unchanged(folder, digest)
