"""Datasets as float32 NHWC images in [0, 1] (and int labels), and tf.data pipelines.

Fashion-MNIST and MNIST are read from the four original IDX files
(`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
`t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`) in a directory,
or, when no directory is named and the default one is absent, through
tensorflow-datasets (which downloads them when online).
"""

import gzip
import os
import struct

import numpy as np
import tensorflow as tf

# Where Debian's package `dataset-fashion-mnist` installs the IDX files.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

DATASETS = {
    # name: (default IDX directory or None, tensorflow-datasets name)
    "fashion_mnist": (DEBIAN_FASHION_MNIST_DIR, "fashion_mnist"),
    "mnist": (None, "mnist"),
}

SPLITS = ("train", "test")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class DataError(ValueError):
    """A dataset could not be found or read; the message says which file and why."""


def read_idx(path):
    """Reads one IDX file (optionally gzip-compressed) into a numpy array.

    Raises:
        DataError: the file is missing, not gzip when named `.gz`, truncated,
            or its header is not IDX.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if str(path).endswith(".gz"):
            raw = gzip.decompress(raw)
    except FileNotFoundError as e:
        raise DataError(f"IDX file not found: {path}") from e
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: not a readable gzip file ({e}); download it again.") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file (expected magic bytes 00 00 <type> <ndim>, "
            f"got {raw[:4].hex(' ') or 'an empty file'})."
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes).")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has "
            f"{len(raw)} bytes; it is truncated or corrupted, download it again."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)


def _find_idx_file(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise DataError(f"{directory}: missing {stem}.gz (or {stem}); expected the four IDX files.")


def load_idx_split(directory, split):
    """Images `[N, H, W, 1]` float32 in [0, 1] and labels `[N]` int64 from IDX files."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Valid splits: {', '.join(SPLITS)}.")
    if not os.path.isdir(directory):
        raise DataError(f"Data directory not found: {directory}")
    image_stem, label_stem = IDX_FILES[split]
    image_path = _find_idx_file(directory, image_stem)
    label_path = _find_idx_file(directory, label_stem)
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3:
        raise DataError(f"{image_path}: expected 3 dimensions [N, H, W], got {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{label_path}: expected {len(images)} labels to match {image_path}, "
            f"got shape {labels.shape}."
        )
    images = (images.astype(np.float32) / 255.0)[..., np.newaxis]
    return images, labels.astype(np.int64)


def _load_tfds_split(tfds_name, split):
    import tensorflow_datasets as tfds

    # Batches of 10,000 rather than batch_size=-1: the latter aborts the
    # process on datasets of unknown cardinality (tfds.testing.mock_data).
    dataset = tfds.load(tfds_name, split=split, as_supervised=True).batch(10_000)
    batches = list(tfds.as_numpy(dataset))
    if not batches:
        raise DataError(f"tensorflow-datasets {tfds_name!r} split {split!r} is empty.")
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def load(dataset="fashion_mnist", split="train", data_dir=None):
    """Loads a whole split into memory.

    Args:
        dataset: "fashion_mnist" or "mnist".
        split: "train" or "test".
        data_dir: directory of the four IDX files. If `None`, the dataset's
            default directory (Debian's for Fashion-MNIST) when it exists,
            else tensorflow-datasets. A named directory is never replaced by a
            download.

    Returns:
        `(images, labels)`: float32 `[N, 28, 28, 1]` in [0, 1], int64 `[N]`.
    """
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}. Valid datasets: {', '.join(DATASETS)}.")
    default_dir, tfds_name = DATASETS[dataset]
    if data_dir is not None:
        return load_idx_split(data_dir, split)
    if default_dir is not None and os.path.isdir(default_dir):
        return load_idx_split(default_dir, split)
    return _load_tfds_split(tfds_name, split)


def make_dataset(
    images,
    labels=None,
    batch_size=128,
    shuffle=False,
    seed=None,
    repeat=False,
    drop_remainder=False,
):
    """A cached, batched, prefetched `tf.data.Dataset` of `images` (and `labels`).

    Args:
        images: float32 `[N, H, W, C]` in [0, 1].
        labels: optional `[N]`; the dataset then yields `(images, labels)`.
        batch_size: images per batch.
        shuffle: reshuffle every pass, seeded by `seed`.
        repeat: repeat forever. Training with `repeat=True` and
            `steps_per_epoch` keeps one iterator alive for the whole of `fit`,
            which avoids multi-second stalls while Keras tears down the
            previous epoch's iterator.
        drop_remainder: drop the last partial batch (static batch shape).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")
    if len(images) == 0:
        raise DataError("The dataset is empty: no images to train or evaluate on.")
    elements = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements).cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def check_images(images, likelihood="bernoulli", name="images"):
    """Raises DataError unless `images` is a non-empty finite NHWC array fit to train on.

    With the Bernoulli likelihood, pixels must lie in [0, 1].
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise DataError(
            f"{name}: expected a non-empty array of shape (N, H, W, C); got {images.shape}."
        )
    if not np.isfinite(images).all():
        bad = int(np.size(images) - np.count_nonzero(np.isfinite(images)))
        raise DataError(f"{name}: {bad} pixels are NaN or infinite; clean the data first.")
    if likelihood == "bernoulli" and (images.min() < 0 or images.max() > 1):
        raise DataError(
            f"{name}: pixel values span [{images.min():g}, {images.max():g}], but the bernoulli "
            "likelihood needs [0, 1]: divide 8-bit images by 255, or use --likelihood gaussian."
        )


# Class labels as attribute names ("is a trouser", "is a 7").
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
ATTRIBUTE_DATASETS = (*DATASETS, "celeba")


def class_attributes(labels, num_classes):
    """Integer labels `[N]` as one binary attribute per class: bool `[N, num_classes]`."""
    labels = np.asarray(labels)
    return labels[:, np.newaxis] == np.arange(num_classes)


def load_attributes(dataset, split="test", data_dir=None, limit=None):
    """Images with binary attributes, for attribute vectors and group averages.

    Args:
        dataset: "fashion_mnist" or "mnist" (each class is an attribute:
            "Trouser", "7") or "celeba" (its 40 attributes, 64x64 RGB; split
            "all" is every image, see `keras_vae.celeba`).
        split, data_dir: as for `load` (or `keras_vae.celeba.load`).
        limit: keep the first `limit` images.

    Returns:
        `(images, attributes, names)`: float32 `[N, H, W, C]` in [0, 1], bool
        `[N, K]`, and the K attribute names.
    """
    if dataset not in ATTRIBUTE_DATASETS:
        raise ValueError(
            f"Unknown dataset {dataset!r}. Valid datasets: {', '.join(ATTRIBUTE_DATASETS)}."
        )
    if dataset == "celeba":
        from keras_vae import celeba

        return celeba.load(split, data_dir, limit)
    images, labels = load(dataset, split, data_dir)
    names = CLASS_NAMES[dataset]
    images, labels = images[:limit], labels[:limit]
    return images, class_attributes(labels, len(names)), names


def _folded(name):
    return "".join(character for character in name.lower() if character.isalnum())


def attribute_index(names, name):
    """Position of `name` in `names`, ignoring case, spaces and punctuation.

    "ankle_boot" finds "Ankle boot", "smiling" finds "Smiling".
    """
    matches = [i for i, candidate in enumerate(names) if _folded(candidate) == _folded(name)]
    if not matches:
        raise ValueError(f"Unknown attribute {name!r}. Valid attributes: {', '.join(names)}.")
    return matches[0]
