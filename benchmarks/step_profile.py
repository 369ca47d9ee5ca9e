"""Where a training step's time goes, for a preset and for the keras.io reference.

    python -m benchmarks.step_profile --models keras_example,keras_io_reference

For each model, at batch 128 on real Fashion-MNIST batches, the median
milliseconds of:
  fit        one step of `fit` on a `tf.data` pipeline (repeat() +
             steps_per_epoch; the reference: `fit` on a numpy array),
             measured per epoch and divided by the steps;
  train_step the model's own compiled `train_step` on a batch already in
             memory (no input pipeline, no Keras loop);
  gradients  forward pass and backward pass, no optimizer update;
  forward    the loss alone.
The differences tell the input pipeline and Keras loop (fit - train_step),
the optimizer and metrics (train_step - gradients) and the backward pass
(gradients - forward) apart. Prints a Markdown table; writes JSON to --out.
"""

import argparse
import math
import statistics

import keras
import tensorflow as tf

from benchmarks import keras_io_reference
from benchmarks.common import machine_facts
from benchmarks.export_latency import median_ms
from benchmarks.quality_per_second import BATCH_SIZE, REFERENCE
from keras_vae import VAE, datasets, pipeline
from keras_vae.callbacks import EpochTimer
from keras_vae.files import atomic_write_json


def _build(name):
    if name == REFERENCE:
        model = keras_io_reference.build()
        loss = lambda x: sum(tf.reduce_mean(t) for t in model.loss_terms(x))  # noqa: E731
        return model, loss
    model = VAE(preset=name, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    loss = lambda x: sum(tf.reduce_mean(t) for t in model.loss_terms(x, training=True))  # noqa: E731
    return model, loss


def profile(name, train, epochs):
    keras.utils.set_random_seed(0)
    model, loss = _build(name)
    timer = EpochTimer()
    if name == REFERENCE:
        steps = math.ceil(len(train) / BATCH_SIZE)
        model.fit(train, epochs=epochs, batch_size=BATCH_SIZE, callbacks=[timer], verbose=0)
    else:
        steps = len(train) // BATCH_SIZE
        dataset = pipeline.make_dataset(
            train, batch_size=BATCH_SIZE, shuffle=True, seed=0, repeat=True, drop_remainder=True
        )
        model.fit(dataset, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    batch = tf.constant(train[:BATCH_SIZE])
    train_step = tf.function(model.train_step)

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            value = loss(x)
        return tape.gradient(value, model.trainable_weights)

    forward = tf.function(loss)
    return {
        "model": name,
        "fit": 1000 * statistics.median(timer.seconds[1:]) / steps,
        "train_step": median_ms(lambda: train_step(batch), calls=200),
        "gradients": median_ms(lambda: gradients(batch), calls=200),
        "forward": median_ms(lambda: forward(batch), calls=200),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=f"keras_example,{REFERENCE}")
    parser.add_argument("--epochs", type=int, default=4, help="fit epochs; the first is dropped")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="benchmarks/results/step_profile.json")
    args = parser.parse_args(argv)
    train, _ = datasets.load("fashion_mnist", "train", args.data_dir)
    rows = [profile(name.strip(), train, args.epochs) for name in args.models.split(",")]
    atomic_write_json(
        args.out, {"machine": machine_facts(), "batch_size": BATCH_SIZE, "rows": rows}
    )
    print("| model | fit step (ms) | train_step (ms) | gradients (ms) | forward (ms) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| `{row['model']}` | {row['fit']:.2f} | {row['train_step']:.2f} "
            f"| {row['gradients']:.2f} | {row['forward']:.2f} |"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
