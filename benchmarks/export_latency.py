"""Generation latency and size of the exported generator, per artifact.

    python -m benchmarks export --run-dir runs/fashion_mnist-default

For batch 1 and 64: the median wall time of one call (after warm-up) of the
Keras decoder (eager, `model.predict`, and a `tf.function`), the SavedModel's
`generate` signature and each .tflite variant's signature runner, plus file
sizes and max abs error against the Keras decoder. Prints a Markdown table
and writes it with machine facts to --out (JSON).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from benchmarks.common import argument_parser, median_ms, run_facts
from keras_vae import generation
from keras_vae.export import generator as export
from keras_vae.training import run_dir
from keras_vae.utils import names
from keras_vae.utils.atomic_files import atomic_write_json


def main(argv=None, prog="export"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--run-dir", default="runs/fashion_mnist-default")
    parser.add_argument("--calls", type=int, default=200, help="Timed calls per measurement.")
    parser.add_argument("--out", default="benchmarks/results/export_latency.json")
    args = parser.parse_args(argv)

    export_dir = os.path.join(args.run_dir, "export")
    model = keras.models.load_model(os.path.join(args.run_dir, run_dir.MODEL_FILE))
    with open(os.path.join(export_dir, export.METADATA_FILE)) as f:
        metadata = json.load(f)
    saved = tf.saved_model.load(os.path.join(export_dir, export.SAVED_MODEL_DIR))
    generate = saved.signatures[export.GENERATE]
    decode_fn = generation.BatchedFunction(model.decode, (model.latent_dim,)).function
    # LiteRT's Python interpreter runs one thread unless told otherwise; an
    # app picks its own count, so both are measured.
    runners = {
        (variant, threads): Interpreter(
            model_path=os.path.join(export_dir, export.tflite_filename(variant)),
            num_threads=threads,
        ).get_signature_runner(export.GENERATE)
        for variant in names.TFLITE_VARIANTS
        for threads in (1, 2)
    }

    rows = []
    for batch in (1, 64):
        z = np.random.default_rng(0).standard_normal((batch, model.latent_dim)).astype(np.float32)
        z_tensor = tf.constant(z)
        candidates = {
            "Keras decoder, eager call": lambda z_tensor=z_tensor: model.decode(z_tensor),
            "Keras decoder, predict": lambda z=z: model.decoder.predict(z, verbose=0),
            "Keras decoder, tf.function": lambda z_tensor=z_tensor: decode_fn(z_tensor),
            "SavedModel generate": lambda z_tensor=z_tensor: generate(z=z_tensor),
        }
        for (variant, threads), runner in runners.items():
            name = f"LiteRT {variant}, {threads} thread{'s' if threads > 1 else ''}"
            candidates[name] = lambda z=z, runner=runner: runner(z=z)
        calls = max(20, args.calls // 4) if batch > 1 else args.calls
        for name, call in candidates.items():
            slow = "predict" in name or "int8" in name
            calls_here = min(calls, 20) if slow else calls
            rows.append(
                {
                    "artifact": name,
                    "batch": batch,
                    "median_ms": median_ms(call, calls_here),
                    "calls": calls_here,
                }
            )

    sizes = {name: facts["size_bytes"] for name, facts in metadata["artifacts"].items()}
    errors = {name: facts["max_abs_error"] for name, facts in metadata["artifacts"].items()}
    result = {
        **run_facts(prog, args),
        "run_dir": args.run_dir,
        "latent_dim": model.latent_dim,
        "preset": model.preset,
        "latency": rows,
        "size_bytes": sizes,
        "max_abs_error": errors,
    }
    atomic_write_json(args.out, result)

    print(f"{result['machine']}; preset {model.preset}, latent_dim {model.latent_dim}")
    print(latency_table(result))
    print()
    print(size_table(result))


def latency_table(result):
    """Median ms per call of each artifact at batch 1 and 64."""
    rows = result["latency"]
    lines = ["| artifact | batch 1 (ms) | batch 64 (ms) |", "|---|---|---|"]
    for name in dict.fromkeys(row["artifact"] for row in rows):
        ms = {row["batch"]: row["median_ms"] for row in rows if row["artifact"] == name}
        lines.append(f"| {name} | {ms[1]:.3f} | {ms[64]:.3f} |")
    return "\n".join(lines)


def size_table(result):
    """Each artifact's size and max abs error against the Keras decoder."""
    lines = ["| artifact | size (bytes) | max abs error vs Keras |", "|---|---|---|"]
    order = ["saved_model", *names.TFLITE_VARIANTS]
    for name in sorted(result["size_bytes"], key=lambda n: order.index(n) if n in order else 99):
        if name == "saved_model":
            shown = "SavedModel (`saved_model/`)"
        else:
            shown = f"`{export.tflite_filename(name)}`"
        size, error = result["size_bytes"][name], result["max_abs_error"][name]
        lines.append(f"| {shown} | {size:,} | {error:.2e} |")
    return "\n".join(lines)
