"""Every exported .tflite on the LiteRT Interpreter and CompiledModel APIs, for each preset.

    python -m benchmarks runtimes            # make bench NAME=runtimes

For each preset (mlp, default, conv, keras_example), a short train.py run
(1 epoch on 6,000 images: latency does not depend on training, and parity
is measured on the weights it gives), exported by the code of the checkout.
Measures the median wall time of one call (after warm-up) of every file at
batch 1 and 16 (the dynamic files at both, a static file at its own batch),
through the Interpreter (1 thread, XNNPack) and the CompiledModel API (CPU,
1 thread), and each file's max abs error against the Keras decoder. For the
int8 files it also profiles the decoder layer by layer: each layer's cost
is the time of the decoder cut after it less the time of the decoder cut
before it, for the dynamic-shape dynamic-range file, the static-shape
full-integer one and float32. Writes --out (JSON) and prints Markdown tables.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
from ai_edge_litert.compiled_model import CompiledModel
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from benchmarks.common import argument_parser, median_ms, run_facts
from keras_vae.export import generator as export
from keras_vae.training import run_dir
from keras_vae.utils import names
from keras_vae.utils.atomic_files import atomic_write_json

BATCHES = (1, 16)
WARMUP = 5  # untimed calls before each measurement


def ensure_run(preset, directory):
    """A short train.py run of `preset` (trained when missing), exported again."""
    if not os.path.isfile(os.path.join(directory, run_dir.MODEL_FILE)):
        command = [sys.executable, "train.py", "--preset", preset, "--run-dir", directory]
        command += ["--epochs", "1", "--train-subset", "6000", "--test-subset", "1000"]
        command += ["--validation-size", "1000", "--verbose", "0"]
        subprocess.run(command, check=True)
    export_command = [sys.executable, "-m", "keras_vae", "export", "--model", directory]
    subprocess.run([*export_command, "--overwrite"], check=True, stdout=subprocess.DEVNULL)


def interpreter_call(path, batch, latent_dim, resolver=None):
    options = {"num_threads": 1}
    if resolver:
        options["experimental_op_resolver_type"] = resolver
    runner = Interpreter(model_path=path, **options).get_signature_runner(export.GENERATE)
    z = np.random.default_rng(0).standard_normal((batch, latent_dim)).astype(np.float32)
    runner(z=z)  # resizes and allocates once
    return lambda: runner(z=z)


def compiled_model_call(path, latent_dim):
    model = CompiledModel.from_file(path)
    index = model.get_signature_index(export.GENERATE)
    inputs, outputs = model.create_input_buffers(index), model.create_output_buffers(index)
    batch = model.get_input_tensor_details(export.GENERATE)["z"]["shape"][0]
    inputs[0].write(np.random.default_rng(0).standard_normal((batch, latent_dim)).astype("float32"))

    def call():
        model.run_by_index(index, inputs, outputs)

    return call


def layer_profile(model, calls, work_dir):
    """ms per decoder layer at batch 16, per kind of file.

    Converts the decoder cut after each layer with the export's own code
    (`keras_vae.export.generator.frozen_flatbuffers`) and takes the
    differences of the cuts' times.
    """
    decoder = model.decoder
    layers = [layer for layer in decoder.layers if not isinstance(layer, keras.layers.InputLayer)]
    prior = model.get_prior()
    z = np.random.default_rng(0).standard_normal((16, model.latent_dim)).astype(np.float32)
    kinds = {
        "float32 (dynamic)": ("float32", None),
        "int8 dynamic-range (dynamic)": ("int8", None),
        "int8 full-integer (static)": ("int8", 16),
    }
    totals = {}
    for kind, (variant, batch) in kinds.items():
        times = []
        for layer in layers:
            cut = keras.Model(decoder.inputs, layer.output)
            flatbuffer = export.frozen_flatbuffers(cut, prior, work_dir, [variant], batch)
            runner = Interpreter(model_content=flatbuffer[variant], num_threads=1)
            runner = runner.get_signature_runner(export.GENERATE)
            runner(z=z)
            times.append(median_ms(lambda runner=runner: runner(z=z), calls, WARMUP))
        totals[kind] = [
            {"layer": f"{layer.name} ({type(layer).__name__})", "ms": after - before}
            for layer, before, after in zip(layers, [0.0, *times[:-1]], times, strict=True)
        ]
    return totals


def main(argv=None, prog="runtimes"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--presets", nargs="+", default=list(names.PRESETS))
    parser.add_argument("--runs-dir", default="runs/bench-runtimes")
    parser.add_argument("--calls", type=int, default=50, help="Timed calls per measurement.")
    parser.add_argument("--out", default="benchmarks/results/runtime_latency.json")
    args = parser.parse_args(argv)

    result = {**run_facts(prog, args), "presets": {}}
    for preset in args.presets:
        directory = os.path.join(args.runs_dir, preset)
        ensure_run(preset, directory)
        model = keras.models.load_model(os.path.join(directory, run_dir.MODEL_FILE))
        export_dir = os.path.join(directory, "export")
        with open(os.path.join(export_dir, export.METADATA_FILE)) as f:
            artifacts = json.load(f)["artifacts"]
        rows = []
        for key, facts in artifacts.items():
            if key == "saved_model":
                continue
            path = os.path.join(export_dir, facts["path"])
            batches = BATCHES if facts["layout"] == "dynamic" else (facts["batch"],)
            for batch in batches:
                slow = facts["layout"] == "dynamic" and facts["variant"] == "int8"
                calls = max(5, args.calls // 10) if slow else args.calls
                row = {
                    "file": facts["path"],
                    "batch": batch,
                    "max_abs_error": facts["max_abs_error"],
                }
                row["interpreter_ms"] = median_ms(
                    interpreter_call(path, batch, model.latent_dim), calls, WARMUP
                )
                if facts["layout"] == "static":
                    row["compiled_model_ms"] = median_ms(
                        compiled_model_call(path, model.latent_dim), calls, WARMUP
                    )
                rows.append(row)
        entry = {"latent_dim": model.latent_dim, "files": rows}
        dynamic_int8 = os.path.join(export_dir, export.tflite_filename("int8"))
        entry["dynamic_int8_without_xnnpack_ms_batch16"] = median_ms(
            interpreter_call(
                dynamic_int8,
                16,
                model.latent_dim,
                resolver=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            ),
            max(5, args.calls // 10),
            WARMUP,
        )
        if preset in ("conv", "keras_example"):
            entry["layer_profile_batch16"] = layer_profile(
                model, max(5, args.calls // 5), directory
            )
        result["presets"][preset] = entry
        atomic_write_json(args.out, result)  # what is measured so far survives a crash
        print_preset(preset, entry)
    print(xnnpack_table(result))
    print(result["machine"])


def print_preset(preset, entry):
    result = {"presets": {preset: entry}}
    print(f"\n{table(result)}\n")
    if "layer_profile_batch16" in entry:
        print(f"{layer_table(result)}\n")


# The kinds of file, in the table's order: (variant, layout, label).
KINDS = (
    ("float32", "dynamic", ""),
    ("float32", "static", ""),
    ("float16", "dynamic", ""),
    ("float16", "static", ""),
    ("int8", "dynamic", " (dynamic-range)"),
    ("int8", "static", " (full-integer)"),
)


def _kind(file):
    """`(variant, layout)` of a file name such as generator_int8_b16.tflite."""
    parts = file.removesuffix(".tflite").split("_")
    return parts[1], "static" if len(parts) > 2 else "dynamic"


def table(result):
    """ms per call at batch 1 / 16 of every file, per preset: one row per variant and layout.

    A dynamic file's row holds its two batches; a static one's, its `_b1` and
    `_b16` files. "refused": the CompiledModel API runs only the static files.
    """
    lines = [
        "| preset | file | batch | Interpreter ms | CompiledModel ms | max abs error vs Keras |",
        "|---|---|---|---|---|---|",
    ]
    for preset, entry in result["presets"].items():
        for variant, layout, label in KINDS:
            rows = sorted(
                (row for row in entry["files"] if _kind(row["file"]) == (variant, layout)),
                key=lambda row: row["batch"],
            )
            if not rows:
                continue
            if layout == "dynamic":
                name = f"`generator_{variant}.tflite`"
            else:
                name = " / ".join(
                    f"`generator_{variant}_b{row['batch']}`" if i == 0 else f"`_b{row['batch']}`"
                    for i, row in enumerate(rows)
                )
            batches = " / ".join(str(row["batch"]) for row in rows)
            interpreter = " / ".join(f"{row['interpreter_ms']:.3f}" for row in rows)
            compiled = [row.get("compiled_model_ms") for row in rows]
            compiled = "refused" if None in compiled else " / ".join(f"{c:.3f}" for c in compiled)
            error = max(row["max_abs_error"] for row in rows)
            lines.append(
                f"| {preset} | {name}{label} | {batches} | {interpreter} | {compiled} "
                f"| {error:.1e} |"
            )
    return "\n".join(lines)


def layer_table(result):
    """ms per decoder layer at batch 16 (the cut after it less the cut before), per kind."""
    kinds = ("float32 (dynamic)", "int8 dynamic-range (dynamic)", "int8 full-integer (static)")
    lines = ["| preset | decoder layer | " + " | ".join(kinds) + " |", "|---|---|---|---|---|"]
    for preset, entry in result["presets"].items():
        profile = entry.get("layer_profile_batch16")
        if not profile:
            continue
        for index, layer in enumerate(profile[kinds[0]]):
            costs = " | ".join(f"{profile[kind][index]['ms']:.2f}" for kind in kinds)
            lines.append(f"| {preset} | {layer['layer']} | {costs} |")
    return "\n".join(lines)


def xnnpack_table(result):
    """The dynamic int8 file at batch 16 without XNNPack, per preset."""
    lines = ["| preset | dynamic int8 at batch 16 without XNNPack (ms) |", "|---|---|"]
    for preset, entry in result["presets"].items():
        lines.append(f"| {preset} | {entry['dynamic_int8_without_xnnpack_ms_batch16']:.2f} |")
    return "\n".join(lines)
