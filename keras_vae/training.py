"""train_and_evaluate(config, run_dir): fit a VAE, evaluate it, write the run dir.

A run dir holds:
    config.json           the TrainingConfig that made it
    model.keras           the checkpoint with the best validation loss
    logs/                 TensorBoard event files: train/ and validation/ scalars,
                          images/ latent grids (keras_vae.callbacks.LatentImages),
                          projector/ test posterior means with labels and sprite
    backup/               BackupAndRestore state while training (removed when done)
    metrics.json          test metrics of model.keras, in nats per image
    samples.png           8x8 grid decoded from z ~ N(0, I)
    reconstructions.png   test inputs (odd rows) above their reconstructions
    export/               the decoder as a generator (keras_vae.export): SavedModel,
                          float32/float16/int8 .tflite, generator.json
    generated_tflite.png  8x8 grid rendered by export/generator_float32.tflite

In multi-worker training only the chief writes the run dir; the other
workers checkpoint into private temporary directories that are removed at
the end.
"""

import contextlib
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import data, distribute, export
from keras_vae import images as image_io
from keras_vae.callbacks import BestModelCheckpoint, FlushingTensorBoard, KLWarmup, LatentImages
from keras_vae.files import atomic_write_json
from keras_vae.model import VAE

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
EXPORT_DIR = "export"
BACKUP_DIR = "backup"


def split_validation(images, validation_size, seed):
    """A seeded random split of `images` into (train, validation)."""
    if validation_size >= len(images):
        raise ValueError(
            f"validation_size ({validation_size}) must be smaller than the training split "
            f"({len(images)} images)."
        )
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order[validation_size:]], images[order[:validation_size]]


def _load_splits(config):
    train_images, _ = data.load(config.dataset, "train", config.data_dir)
    test_images, test_labels = data.load(config.dataset, "test", config.data_dir)
    if config.train_subset:
        train_images = train_images[: config.train_subset]
    if config.test_subset:
        test_images = test_images[: config.test_subset]
        test_labels = test_labels[: config.test_subset]
    data.check_images(train_images, config.likelihood, "training images")
    data.check_images(test_images, config.likelihood, "test images")
    return train_images, test_images, test_labels


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's training wall time (validation included) in seconds."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _log_config(log_dir, config):
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "config"))
    with writer.as_default():
        tf.summary.text("config", "```\n" + config.to_json() + "\n```", step=0)
    writer.close()


def _mark_restart(log_dir, backup_dir):
    """On a resumed run, tells TensorBoard to drop scalars of the epochs to redo.

    A SessionLog START event at step k makes TensorBoard discard the events
    with step >= k written before it, so an epoch logged just before a kill
    and run again after the restart does not appear twice.
    """
    metadata_path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(metadata_path):
        return
    with open(metadata_path) as f:
        epoch = int(json.load(f)["epoch"])
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for split in ("train", "validation", "images"):
        writer = EventFileWriter(os.path.join(log_dir, split))
        writer.add_event(
            event_pb2.Event(
                wall_time=time.time(),
                step=epoch,
                session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
            )
        )
        writer.close()


def write_samples(model, path, seed, rows=8, cols=8):
    """Writes a rows x cols grid of images decoded from z ~ N(0, I)."""
    samples = keras.ops.convert_to_numpy(model.sample(rows * cols, seed=seed))
    image_io.save_png(path, image_io.grid(samples, rows, cols))


def write_reconstructions(model, path, test_images, cols=8, pairs=2):
    """Writes `pairs` rows of test inputs, each above its reconstruction."""
    inputs = test_images[: cols * pairs]
    outputs = keras.ops.convert_to_numpy(model(inputs, training=False))
    rows = []
    for pair in range(pairs):
        rows.append(inputs[pair * cols : (pair + 1) * cols])
        rows.append(outputs[pair * cols : (pair + 1) * cols])
    image_io.save_png(path, image_io.grid(np.concatenate(rows), 2 * pairs, cols))


@contextlib.contextmanager
def _dtype_policy(mixed_precision):
    """mixed_float16 on GPU, mixed_bfloat16 on CPU, for the duration of the block."""
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _fit(config, strategy, train_images, validation_images, test_split, out_dir, verbose):
    """Builds and fits the model under `strategy`, writing into `out_dir`.

    `test_split` is `(images, labels)`; its first 1,000 feed the TensorBoard
    image grids and the Projector.
    """
    test_images, test_labels = test_split
    with strategy.scope():
        model = VAE(**config.model_kwargs(train_images.shape[1:]))
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))

    batch_size = min(config.batch_size, len(train_images))
    steps_per_epoch = len(train_images) // batch_size
    train_data = data.make_dataset(
        train_images,
        batch_size=batch_size,
        shuffle=True,
        seed=config.seed,
        repeat=True,
        drop_remainder=True,
    )
    validation = {}
    if validation_images is not None:
        validation = {
            "validation_data": data.make_dataset(
                validation_images, batch_size=config.batch_size, repeat=True
            ),
            "validation_steps": math.ceil(len(validation_images) / config.batch_size),
        }
    log_dir = os.path.join(out_dir, "logs")
    backup_dir = os.path.join(out_dir, BACKUP_DIR)
    _log_config(log_dir, config)
    _mark_restart(log_dir, backup_dir)
    timer = EpochTimer()
    # Order matters at each epoch end: the scalars are flushed, then the best
    # model is saved, then the backup that a restart resumes from.
    callbacks = [
        KLWarmup(config.kl_warmup_epochs),
        keras.callbacks.TerminateOnNaN(),
        timer,
        LatentImages(
            log_dir,
            test_images[:1000],
            test_labels[:1000],
            label_names=data.CLASS_NAMES.get(config.dataset),
            seed=config.seed,
        ),
        FlushingTensorBoard(log_dir=log_dir),
        BestModelCheckpoint(
            os.path.join(out_dir, MODEL_FILE),
            monitor="val_loss" if validation else "loss",
            state_path=os.path.join(backup_dir, "best.json"),
        ),
        keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True),
    ]
    start = time.perf_counter()
    model.fit(
        train_data,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,
        verbose=verbose,
        **validation,
    )
    train_seconds = time.perf_counter() - start
    facts = {
        "train_seconds": train_seconds,
        "optimizer_iterations": int(model.optimizer.iterations.numpy()),
    }
    if timer.seconds:
        epoch_seconds = float(np.median(timer.seconds))
        facts["train_images_per_second"] = steps_per_epoch * batch_size / epoch_seconds
    return facts


def train_and_evaluate(config, run_dir, verbose="auto"):
    """Trains a VAE as `config` says and writes every artifact into `run_dir`.

    Running the same call again on an interrupted run resumes from the last
    finished epoch (Keras's BackupAndRestore).

    Args:
        config: a `keras_vae.config.TrainingConfig`.
        run_dir: output directory, created if missing.
        verbose: passed to `fit`.

    Returns:
        dict of test metrics in nats per image: `loss`, `reconstruction_loss`,
        `kl_loss`, `negative_elbo` (= reconstruction_loss + kl_loss), plus
        `train_seconds`, `train_images_per_second` (median epoch) and
        `optimizer_iterations` (of the last epoch's model). Empty
        on the non-chief workers of a cluster.
    """
    config.validate()
    # First: a multi-worker strategy must configure collectives before any op runs.
    strategy = distribute.make_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    train_images, test_images, test_labels = _load_splits(config)
    validation_images = None
    if config.validation_size:
        train_images, validation_images = split_validation(
            train_images, config.validation_size, config.seed
        )

    chief = distribute.is_chief(strategy)
    out_dir = distribute.worker_dir(run_dir, strategy)
    os.makedirs(out_dir, exist_ok=True)
    if chief:
        atomic_write_json(os.path.join(run_dir, CONFIG_FILE), config.to_dict())
    with _dtype_policy(config.mixed_precision):
        facts = _fit(
            config,
            strategy,
            train_images,
            validation_images,
            (test_images, test_labels),
            out_dir,
            verbose,
        )
    if not chief:
        shutil.rmtree(out_dir, ignore_errors=True)
        return {}

    # Evaluated outside the strategy: one local model, no collectives.
    best = keras.models.load_model(os.path.join(run_dir, MODEL_FILE))
    test_data = data.make_dataset(test_images, batch_size=config.batch_size)
    metrics = best.evaluate(test_data, return_dict=True, verbose=0)
    metrics = {name: float(value) for name, value in metrics.items()}
    metrics["negative_elbo"] = metrics["reconstruction_loss"] + metrics["kl_loss"]
    metrics.update(facts)
    atomic_write_json(os.path.join(run_dir, METRICS_FILE), metrics)
    write_samples(best, os.path.join(run_dir, "samples.png"), seed=config.seed)
    write_reconstructions(best, os.path.join(run_dir, "reconstructions.png"), test_images)
    export_dir = os.path.join(run_dir, EXPORT_DIR)
    export.export_generator(best, export_dir, overwrite=True, training_config=config.to_dict())
    export.render_preview(
        export_dir, os.path.join(run_dir, "generated_tflite.png"), seed=config.seed
    )
    return metrics
