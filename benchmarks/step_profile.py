"""Where a training step's time goes: presets against the keras.io reference.

    python -m benchmarks step-profile --models mlp,default,keras_example,keras_io_reference

For each model, at batch 128 on real Fashion-MNIST batches, the median
milliseconds per step of:
  fit           `fit` as train.py runs it (keras_vae's repeated pipeline,
                FusedAdam, steps_per_execution up to 16); the reference: `fit`
                on a numpy array, as published; measured per epoch / steps;
  fit_plain     keras_vae's pipeline with Keras's own Adam and one step per
                execution (train.py without FusedAdam and
                steps_per_execution; presets only);
  train_step    the model's compiled `train_step` on a batch in memory (no
                input pipeline, no Keras loop), FusedAdam;
  gradients     forward and backward pass, no optimizer update;
  forward       the loss alone;
  matmuls       only the Dense layers' matrix products of one step (forward,
                and the two products per layer of the backward pass) on
                constants of the step's shapes: the floor the rest sits on;
  adam / fused_adam  one optimizer update of all the model's variables with
                Keras's Adam / `keras_vae.models.optimizers.FusedAdam`.
The differences tell the input pipeline and Keras loop (fit - train_step),
the optimizer and metrics (train_step - gradients), the backward pass
(gradients - forward) and the element-wise work (gradients - matmuls) apart.
Prints a Markdown table; writes JSON to --out.
"""

import math
import statistics

import keras
import tensorflow as tf

from benchmarks import keras_io_reference
from benchmarks.common import argument_parser, command_line, machine_facts, median_ms
from benchmarks.quality_per_second import REFERENCE
from benchmarks.trainers import BATCH_SIZE, timed_fit
from keras_vae import VAE, datasets
from keras_vae.datasets import pipeline
from keras_vae.models.optimizers import FusedAdam
from keras_vae.training.config import TrainingConfig
from keras_vae.utils.atomic_files import atomic_write_json

COLUMNS = (
    "fit",
    "fit_plain",
    "train_step",
    "gradients",
    "forward",
    "matmuls",
    "adam",
    "fused_adam",
)
COLUMN_NAMES = {
    "fit": "fit (train.py's)",
    "fit_plain": "fit, Keras Adam, 1 step/execution",
    "train_step": "train_step",
    "gradients": "forward + backward",
    "forward": "forward",
    "matmuls": "the step's matmuls alone",
    "adam": "Keras Adam update",
    "fused_adam": "FusedAdam update",
}


def _preset(name, optimizer, execution=1):
    keras.utils.set_random_seed(0)
    model = VAE(preset=name, seed=0)
    model.compile(optimizer=optimizer, steps_per_execution=execution)
    return model


def _fit_ms(model, train, epochs):
    dataset, steps = pipeline.training_dataset(train, BATCH_SIZE, seed=0)
    timer = timed_fit(model, epochs, x=dataset, steps_per_epoch=steps)
    return 1000 * statistics.median(timer.seconds[1:]) / steps


def _matmuls_ms(model):
    """The step's Dense matrix products alone: x @ W, dy @ W^T and x^T @ dy per layer."""
    kernels = [w for w in model.trainable_weights if len(w.shape) == 2]
    if not kernels:
        return None
    pairs = [
        (tf.ones((BATCH_SIZE, w.shape[0])), tf.ones((BATCH_SIZE, w.shape[1])), w.value)
        for w in kernels
    ]

    @tf.function
    def products():
        out = []
        for x, dy, w in pairs:
            out += [x @ w, tf.matmul(dy, w, transpose_b=True), tf.matmul(x, dy, transpose_a=True)]
        return out

    return median_ms(products, calls=200)


def _apply_ms(optimizer, variables):
    optimizer.build(variables)
    gradients = [tf.fill(v.shape, 1e-3) for v in variables]
    apply = tf.function(lambda: optimizer.apply_gradients(zip(gradients, variables, strict=True)))
    return median_ms(apply, calls=200)


def profile(name, train, epochs):
    batch = tf.constant(train[:BATCH_SIZE])
    row = {"model": name}
    if name == REFERENCE:
        keras.utils.set_random_seed(0)
        model = keras_io_reference.build()
        timer = timed_fit(model, epochs, x=train, batch_size=BATCH_SIZE)
        row["fit"] = (
            1000 * statistics.median(timer.seconds[1:]) / math.ceil(len(train) / BATCH_SIZE)
        )
        loss = lambda x: sum(tf.reduce_mean(t) for t in model.loss_terms(x))  # noqa: E731
    else:
        steps = len(train) // BATCH_SIZE
        execution = pipeline.execution_steps(steps, TrainingConfig().steps_per_execution)
        row["steps_per_execution"] = execution
        row["fit"] = _fit_ms(_preset(name, FusedAdam(1e-3), execution), train, epochs)
        row["fit_plain"] = _fit_ms(_preset(name, keras.optimizers.Adam(1e-3)), train, epochs)
        model = _preset(name, FusedAdam(1e-3))
        loss = lambda x: sum(  # noqa: E731
            tf.reduce_mean(t) for t in model.loss_terms(x, training=True)
        )
    train_step = tf.function(model.train_step)

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            value = loss(x)
        return tape.gradient(value, model.trainable_weights)

    forward = tf.function(loss)
    row["train_step"] = median_ms(lambda: train_step(batch), calls=200)
    row["gradients"] = median_ms(lambda: gradients(batch), calls=200)
    row["forward"] = median_ms(lambda: forward(batch), calls=200)
    row["matmuls"] = _matmuls_ms(model) if name != REFERENCE else None
    variables = model.trainable_weights
    row["adam"] = _apply_ms(keras.optimizers.Adam(1e-3), variables)
    row["fused_adam"] = _apply_ms(FusedAdam(1e-3), variables)
    return row


def main(argv=None, prog="step-profile"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--models", default=f"mlp,default,keras_example,{REFERENCE}")
    parser.add_argument("--epochs", type=int, default=4, help="fit epochs; the first is dropped")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="benchmarks/results/step_profile.json")
    args = parser.parse_args(argv)
    train, _ = datasets.load("fashion_mnist", "train", args.data_dir)
    rows = [profile(name.strip(), train, args.epochs) for name in args.models.split(",")]
    result = {
        "command": command_line(prog, args),
        "machine": machine_facts(),
        "batch_size": BATCH_SIZE,
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(table(result))
    print(f"wrote {args.out}")


def table(result):
    """The Markdown table of a result: median ms per step of each part, per model."""
    lines = [
        "| model | " + " | ".join(COLUMN_NAMES[c] for c in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for row in result["rows"]:
        cells = [f"{row[c]:.2f}" if row.get(c) is not None else "" for c in COLUMNS]
        lines.append(f"| `{row['model']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
