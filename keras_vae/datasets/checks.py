"""Checks of arrays before training: fail before `fit`, with what is wrong and what to do."""

import numpy as np

from keras_vae.datasets.errors import DataError


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
            "likelihood needs [0, 1]: divide 8-bit images by 255, or use the gaussian likelihood "
            "(--likelihood gaussian)."
        )


def check_labels(labels, num_classes, name="labels"):
    """Raises DataError unless every label is an integer class index in [0, num_classes)."""
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        values = sorted(set(labels[bad].tolist()))
        raise DataError(
            f"{name}: {int(bad.sum())} labels outside 0..{num_classes - 1} (e.g. {values[:5]}); "
            "the labels file does not belong to these images or is corrupted."
        )
