"""`tf.data` input pipelines from in-memory arrays."""

import tensorflow as tf

from keras_vae.datasets.errors import DataError


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
