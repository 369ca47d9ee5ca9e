"""The MNIST family (MNIST, Fashion-MNIST): 28x28 grayscale images with 10 classes.

Read from the four original IDX files (`train-images-idx3-ubyte[.gz]`, ...)
in a directory, or, when no directory is named and the default one is
absent, through tensorflow-datasets (which downloads them when online).
"""

import os

import numpy as np

from keras_vae.datasets import idx
from keras_vae.datasets.checks import check_labels
from keras_vae.datasets.errors import DataError, load_tfds

# Where Debian's package `dataset-fashion-mnist` installs the IDX files.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# name: (default IDX directory or None, tensorflow-datasets name)
SOURCES = {
    "fashion_mnist": (DEBIAN_FASHION_MNIST_DIR, "fashion_mnist"),
    "mnist": (None, "mnist"),
}

# Class labels, used as attribute names ("is a trouser", "is a 7").
CLASS_NAMES = {
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist": tuple(str(digit) for digit in range(10)),
}


def _load_tfds_split(tfds_name, split):
    import tensorflow_datasets as tfds

    # Batches of 10,000 rather than batch_size=-1: the latter aborts the
    # process on datasets of unknown cardinality (tfds.testing.mock_data).
    dataset = load_tfds(tfds_name, split=split, as_supervised=True).batch(10_000)
    batches = list(tfds.as_numpy(dataset))
    if not batches:
        raise DataError(f"tensorflow-datasets {tfds_name!r} split {split!r} is empty.")
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def load(dataset, split="train", data_dir=None, limit=None):
    """One split of an MNIST-family dataset (its first `limit` images), in memory.

    Args:
        dataset: a key of `SOURCES` ("fashion_mnist", "mnist").
        split: "train" or "test".
        data_dir: directory of the four IDX files. If `None`, the dataset's
            default directory (Debian's for Fashion-MNIST) when it exists,
            else tensorflow-datasets. A named directory is never replaced by a
            download.
        limit: the number of images to keep, from the start (`None`: all).

    Returns:
        `(images, labels)`: float32 `[N, 28, 28, 1]` in [0, 1], int64 `[N]`.
    """
    default_dir, tfds_name = SOURCES[dataset]
    directory = data_dir
    if directory is None and default_dir is not None and os.path.isdir(default_dir):
        directory = default_dir
    if directory is None:
        images, labels = _load_tfds_split(tfds_name, split)
        images, labels = images[:limit], labels[:limit]
        source = f"tensorflow-datasets {tfds_name} {split}"
    else:
        images, labels = idx.load_idx_split(directory, split, limit)
        source = os.path.join(directory, idx.IDX_FILES[split][1])
    check_labels(labels, len(CLASS_NAMES[dataset]), source)
    return images, labels
