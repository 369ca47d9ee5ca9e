"""Datasets as float32 NHWC images in [0, 1], with labels or binary attributes.

One module per source (`idx` files, the `mnist` family, a `folder` of
pictures, `celeba`), the `errors` they raise and the `checks` run before
training; this module is the name -> loader registry. The MNIST family is
loaded into memory; folders and CelebA's files are `folder.FolderImages`,
read from disk a slice at a time (`streamed_splits`). None of them imports
TensorFlow or anything above them; `keras_vae.datasets.pipeline` turns both
into `tf.data`.

Example:
>>> images, labels = datasets.load("fashion_mnist", "test")
>>> faces, attributes, names = datasets.load_attributes("celeba", "test", limit=1000)
"""

import functools

import numpy as np

from keras_vae.datasets import celeba, folder, mnist
from keras_vae.datasets.checks import check_images
from keras_vae.datasets.errors import DataError
from keras_vae.datasets.idx import IDX_FILES, load_idx_split, read_idx
from keras_vae.datasets.mnist import CLASS_NAMES, DEBIAN_FASHION_MNIST_DIR
from keras_vae.utils import lazy
from keras_vae.utils import names as valid

__all__ = [
    "CLASS_NAMES",
    "DEBIAN_FASHION_MNIST_DIR",
    "IDX_FILES",
    "DataError",
    "attribute_index",
    "check_images",
    "class_attributes",
    "conditions",
    "load",
    "load_attributes",
    "load_idx_split",
    "read_idx",
    "streamed_splits",
]

# name -> load(split, data_dir) -> (images, labels); the keys are names.DATASETS.
# `keras_vae.datasets.pipeline` (TensorFlow) loads on first use.
__getattr__, __dir__ = lazy.attributes(__name__, __path__)

LOADERS = {name: functools.partial(mnist.load, name) for name in valid.IDX_DATASETS}


def load(dataset="fashion_mnist", split="train", data_dir=None, limit=None):
    """Loads a split into memory: `(images, labels)`.

    Args:
        dataset: one of `keras_vae.utils.names.IDX_DATASETS` (folders and
            CelebA: `streamed_splits`, `load_attributes`).
        split: "train" or "test".
        data_dir: the dataset's files; `None` for its default source (see
            `keras_vae.datasets.mnist.load`). A named directory is never
            replaced by a download.
        limit: keep the first `limit` images only (`None`: all); only those
            are converted to float32.

    Returns:
        float32 `[N, H, W, C]` in [0, 1] and int64 `[N]`.
    """
    valid.check_choice("dataset", dataset, valid.IDX_DATASETS)
    return LOADERS[dataset](split, data_dir, limit)


def streamed_splits(dataset, data_dir, image_shape, seed=0, validation_size=0, background="white"):
    """`(train, validation or None, test)` of a folder or of CelebA's files, not yet read.

    Each is a `folder.FolderImages` (sized, sliceable, decoded when read;
    `verify` it first). See `folder.splits`, `celeba.directory_splits` and,
    for CelebA without `data_dir`, `celeba.tfds_splits` (whose splits must be
    verified into a cache file: `needs_cache`).
    """
    valid.check_choice("streamed dataset", dataset, ("folder", "celeba"))
    if dataset == "celeba" and data_dir is None:  # read once into a cache (see TfdsImages)
        return celeba.tfds_splits(image_shape, validation_size)
    if data_dir is None:
        raise DataError(f"--dataset {dataset} needs --data-dir (the directory of its pictures).")
    if dataset == "celeba":
        return celeba.directory_splits(data_dir, image_shape, seed, validation_size)
    return folder.splits(data_dir, image_shape, seed, validation_size, background)


def class_attributes(labels, num_classes):
    """Integer labels `[N]` as one binary attribute per class: bool `[N, num_classes]`."""
    labels = np.asarray(labels)
    return labels[:, np.newaxis] == np.arange(num_classes)


def conditions(images, labels=None, dataset=None):
    """What a conditional VAE is told of each image: `(label_type, names, vectors)`.

    Classes become one-hot vectors (`label_type` "class"): an IDX dataset's
    (with its integer `labels`), a folder's class sub-folders. Without class
    sub-folders, a folder's attributes.csv columns and CelebA's 40 attributes
    are 0/1 vectors ("attributes").

    Args:
        images: a `folder.FolderImages`, or an IDX dataset's array.
        labels: the integer labels of an array.
        dataset: the IDX dataset's name (its class names).

    Returns:
        `(label_type, names, float32 [N, len(names)])`.

    Raises:
        DataError: the images have neither classes nor attributes.
    """
    if isinstance(images, folder.FolderImages):
        found = images.folder
        if found.class_names:
            return (
                "class",
                found.class_names,
                class_attributes(images.labels, len(found.class_names)).astype(np.float32),
            )
        if found.attribute_names:
            return "attributes", found.attribute_names, images.attributes.astype(np.float32)
        raise DataError(
            f"--conditional needs labelled pictures, and {found.directory} has no class "
            "sub-folders and no attributes.csv: put the pictures in one sub-folder per "
            "class, or add an attributes.csv, or drop --conditional."
        )
    if labels is None or dataset not in CLASS_NAMES:
        raise DataError("--conditional needs the images' labels: none were given.")
    class_names = CLASS_NAMES[dataset]
    return "class", class_names, class_attributes(labels, len(class_names)).astype(np.float32)


def load_attributes(
    dataset, split="test", data_dir=None, limit=None, image_shape=None, seed=0, background="white"
):
    """Images with binary attributes, for attribute vectors and group averages.

    Args:
        dataset: "fashion_mnist" or "mnist" (each class is an attribute:
            "Trouser", "7"); "folder" (its class sub-folders and
            attributes.csv's columns); "celeba" (its 40 attributes; split
            "all" is every image, see `keras_vae.datasets.celeba`).
        split, data_dir: as for `load` (or `keras_vae.datasets.celeba.load`).
        limit: keep the first `limit` images.
        image_shape: `(H, W, C)` of folder and CelebA images (default
            64x64x3; CelebA is read square and RGB).
        seed, background: a folder's split seed and what its transparent
            pixels become (the run's `--seed`, `--background`).

    Returns:
        `(images, attributes, names)`: float32 `[N, H, W, C]` in [0, 1], bool
        `[N, K]`, and the K attribute names.
    """
    valid.check_choice("dataset", dataset, valid.ATTRIBUTE_DATASETS)
    image_shape = tuple(image_shape or (celeba.IMAGE_SIZE, celeba.IMAGE_SIZE, 3))
    if dataset == "folder":
        valid.check_choice("folder split", split, valid.SPLITS)
        train, _, test = streamed_splits(dataset, data_dir, image_shape, seed, 0, background)
        images = (train if split == "train" else test).subset(limit or 0)
        images.verify()
        return images[:], images.attributes, images.folder.attribute_names
    if dataset == "celeba":
        height, width, channels = image_shape
        square_rgb = height == width and channels == 3  # else 64x64: the caller says it differs
        return celeba.load(split, data_dir, limit, size=height if square_rgb else celeba.IMAGE_SIZE)
    images, labels = load(dataset, split, data_dir)
    class_names = CLASS_NAMES[dataset]
    images, labels = images[:limit], labels[:limit]
    return images, class_attributes(labels, len(class_names)), class_names


def attribute_index(attribute_names, name):
    """Position of `name` in `attribute_names`, ignoring case, spaces and punctuation.

    "ankle_boot" finds "Ankle boot", "smiling" finds "Smiling".
    """
    return valid.name_index("attribute", name, attribute_names)
