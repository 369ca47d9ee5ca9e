"""`tf.data` input pipelines from in-memory arrays or from pictures on disk."""

import tensorflow as tf

from keras_vae.datasets.checks import check_images
from keras_vae.datasets.folder import FolderImages


def make_dataset(
    images,
    labels=None,
    batch_size=128,
    shuffle=False,
    seed=None,
    repeat=False,
    drop_remainder=False,
    likelihood="bernoulli",
    name="images",
):
    """A cached, batched, prefetched `tf.data.Dataset` of `images` (and `labels`).

    The arrays are checked where they enter (`keras_vae.datasets.check_images`):
    empty, NaN or infinite pixels, and pixels outside [0, 1] with the
    Bernoulli likelihood raise `DataError` (a ValueError) naming `name`.

    Args:
        images: float32 `[N, H, W, C]` in [0, 1], or a `FolderImages`
            (pictures on disk, read in parallel a batch at a time).
        labels: optional `[N]` or `[N, K]` (a conditional VAE's label
            vectors); the dataset then yields `(images, labels)`.
        batch_size: images per batch.
        shuffle: reshuffle every pass, seeded by `seed`.
        repeat: repeat the batches forever, each pass in a new order when
            shuffled; a pass never shares a batch with the next. Training with
            `repeat=True` and `steps_per_epoch` keeps one iterator alive for the
            whole of `fit`, which avoids multi-second stalls while Keras tears
            down the previous epoch's iterator.
        drop_remainder: drop each pass's last partial batch (static batch shape).
        likelihood: the model's likelihood, which decides the pixel range.
        name: what the error messages call `images`.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{name}: got {len(labels)} labels for {len(images)} images.")
    if isinstance(images, FolderImages):
        return _streamed(images, labels, batch_size, shuffle, seed, repeat, drop_remainder)
    check_images(images, likelihood, name)
    elements = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements).cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


def _streamed(images, labels, batch_size, shuffle, seed, repeat, drop_remainder):
    """Batches of `images` (a `FolderImages`) read from disk by parallel calls.

    Only indices are shuffled (a full shuffle, whatever the number of
    images); each batch's pictures are decoded, or read from the cache file,
    when the batch is needed, so memory holds a few batches at most. The
    `labels` (in memory) of a batch are gathered by the same positions.
    """
    dataset = tf.data.Dataset.range(len(images))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    shape = [batch_size if drop_remainder else None, *images.image_shape]

    def read(positions):
        pixels = tf.numpy_function(images.read, [positions], tf.uint8, stateful=False)
        pixels.set_shape(shape)
        pixels = tf.cast(pixels, tf.float32) / 255.0
        return pixels if labels is None else (pixels, tf.gather(all_labels, positions))

    all_labels = None if labels is None else tf.constant(labels)

    dataset = dataset.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    if repeat:
        dataset = dataset.repeat()
    return dataset.prefetch(tf.data.AUTOTUNE)


def training_dataset(
    images, batch_size=128, seed=None, likelihood="bernoulli", name="images", labels=None
):
    """`(dataset, steps_per_epoch)` for `fit`: shuffled every pass, repeated, full batches.

    The one-iterator way to train on in-memory images: pass both to `fit`,
    `fit(dataset, steps_per_epoch=steps_per_epoch, ...)`. Every epoch then
    sees `steps_per_epoch * batch_size` images in a new order, and no
    iterator is torn down between epochs (see `make_dataset`'s `repeat`).

    Args:
        images: float32 `[N, H, W, C]` in [0, 1], N >= 1.
        batch_size: images per step; batches larger than N are cut to N.
        seed: seeds the shuffles.
        likelihood, name: as in `make_dataset`, which checks the images.
        labels: optional labels of the images (`make_dataset`'s).
    """
    if len(images):
        batch_size = min(batch_size, len(images))
    dataset = make_dataset(
        images,
        labels,
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        repeat=True,
        drop_remainder=True,
        likelihood=likelihood,
        name=name,
    )
    return dataset, steps_per_epoch(len(images), batch_size)


def steps_per_epoch(num_images, batch_size):
    """Full batches per pass over `num_images` (`training_dataset`'s epoch), batches cut to N."""
    return num_images // min(batch_size, num_images)


def fit_arguments(
    images,
    validation_images=None,
    batch_size=128,
    seed=None,
    likelihood="bernoulli",
    labels=None,
    validation_labels=None,
):
    """Keyword arguments for `fit` that train on in-memory arrays without stalls.

    `model.fit(epochs=10, **fit_arguments(x_train, x_val))` trains on
    `training_dataset(x_train)` with its `steps_per_epoch` (one iterator for
    all of `fit`, unlike `fit(x_train, ...)` on a numpy array, for which Keras
    builds and tears down one per epoch), and validates on every image of
    `validation_images` once per epoch: a finite pipeline, not a repeated
    one, because Keras validates in whole `steps_per_execution` runs, and a
    repeated pipeline would be read past its end.

    Both arrays are checked first (see `make_dataset`): a NaN pixel, or with
    the Bernoulli `likelihood` a pixel outside [0, 1], raises `DataError`
    before any step.

    A `keras_vae.ConditionalVAE` trains on `labels` (and validates on
    `validation_labels`) beside the images: the pipelines then yield
    `(images, labels)`.

    Returns:
        dict with `x`, `steps_per_epoch` and `shuffle=False` (the pipeline
        shuffles; Keras warns when `fit` is asked to shuffle a dataset), and
        with validation images `validation_data`.
    """
    dataset, steps = training_dataset(
        images, batch_size, seed, likelihood, "fit_arguments' images", labels
    )
    arguments = {"x": dataset, "steps_per_epoch": steps, "shuffle": False}
    if validation_images is not None:
        arguments["validation_data"] = make_dataset(
            validation_images,
            validation_labels,
            batch_size=batch_size,
            likelihood=likelihood,
            name="fit_arguments' validation_images",
        )
    return arguments


def execution_steps(steps_per_epoch, at_most):
    """The largest divisor of `steps_per_epoch` that is <= `at_most` (and >= 1).

    For `compile(steps_per_execution=...)`: Keras runs whole executions, so
    with a `steps_per_execution` that does not divide `steps_per_epoch` an
    epoch silently grows to the next multiple (16 with 37 steps: 48 steps).
    """
    if steps_per_epoch < 1 or at_most < 1:
        raise ValueError(
            f"steps_per_epoch and at_most must be >= 1; got {steps_per_epoch} and {at_most}."
        )
    return max(d for d in range(1, min(at_most, steps_per_epoch) + 1) if steps_per_epoch % d == 0)
