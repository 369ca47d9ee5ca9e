"""How the benchmarks train and time a model, written once.

train.py's settings (batch 128, Adam 1e-3), its fit path for a preset
(`preset_model`: `training.build_model`'s FusedAdam and steps_per_execution
on `pipeline.training_dataset`), a plain compiled fit (`train_model`), epoch
timing (`timed_fit`, `epoch_figures`) and the test negative ELBO
(`elbo_evaluator`).
"""

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import datasets
from keras_vae.datasets import pipeline
from keras_vae.training import train as training
from keras_vae.training.callbacks import EpochTimer
from keras_vae.training.config import TrainingConfig

BATCH_SIZE = 128
LEARNING_RATE = 1e-3


def fashion_mnist(data_dir=None):
    """All 60,000 training and the 10,000 test images of Fashion-MNIST, without labels."""
    train, _ = datasets.load("fashion_mnist", "train", data_dir)
    test, _ = datasets.load("fashion_mnist", "test", data_dir)
    return train, test


def preset_model(preset, train, seed, learned_prior="standard"):
    """train.py's compiled `preset` model and repeated pipeline: `(model, dataset, steps)`.

    Under N(0, I) unless `learned_prior="vamp"`: train.py's default model,
    the VampPrior with 100 pseudo-inputs started at training images.
    """
    config = TrainingConfig(
        preset=preset,
        seed=seed,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        learned_prior=learned_prior,
    )
    strategy = tf.distribute.get_strategy()
    model = training.build_model(config, strategy, train.shape[1:], len(train))
    training.start_pseudo_inputs(model, train, seed, strategy)  # train.py's VampPrior start
    dataset, steps = pipeline.training_dataset(train, BATCH_SIZE, seed=seed)
    return model, dataset, steps


def train_model(model, images, epochs, batch_size, seed):
    """`epochs` of Adam 1e-3 on a shuffled, repeated pipeline; returns the training seconds."""
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    dataset = pipeline.make_dataset(
        images, batch_size=batch_size, shuffle=True, seed=seed, repeat=True, drop_remainder=True
    )
    start = time.perf_counter()
    model.fit(
        dataset, epochs=epochs, steps_per_epoch=len(images) // batch_size, verbose=0, shuffle=False
    )
    return time.perf_counter() - start


def timed_fit(model, epochs, **arguments):
    """`model.fit(epochs=epochs, **arguments)` with an `EpochTimer`; returns the timer."""
    timer = EpochTimer()
    model.fit(epochs=epochs, callbacks=[timer], verbose=0, **arguments)
    return timer


def epoch_figures(epoch_seconds, images_per_epoch):
    """images/s (median over epochs 2..N) and the slowest of those epochs over their median."""
    later = epoch_seconds[1:] or epoch_seconds
    if not later:
        return {"epochs": 0}
    median = statistics.median(later)
    return {
        "epochs": len(epoch_seconds),
        "first_epoch_seconds": epoch_seconds[0],
        "median_epoch_seconds": median,
        "images_per_second": images_per_epoch / median,
        "slowest_over_median": max(later) / median,
    }


def elbo_evaluator(loss_terms, images, batch_size=1000, seed=0):
    """`() -> {"neg_elbo", "reconstruction", "kl"}` means over `images`, compiled."""
    compiled = tf.function(loss_terms)
    batches = [tf.constant(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]

    def evaluate():
        tf.random.set_seed(seed)
        terms = [compiled(batch) for batch in batches]
        reconstruction = float(np.mean(np.concatenate([t[0].numpy() for t in terms])))
        kl = float(np.mean(np.concatenate([t[1].numpy() for t in terms])))
        return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

    return evaluate
