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
from keras_vae import export, names, run_dir
from keras_vae.files import atomic_write_json

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
    (`keras_vae.export.frozen_flatbuffers`) and takes the
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
    print(result["machine"])


def print_preset(preset, entry):
    print(f"\n### {preset} (latent_dim {entry['latent_dim']})\n")
    print("| file | batch | Interpreter ms | CompiledModel ms | max abs error |")
    print("|---|---|---|---|---|")
    for row in entry["files"]:
        compiled = row.get("compiled_model_ms")
        print(
            f"| {row['file']} | {row['batch']} | {row['interpreter_ms']:.3f} | "
            f"{'-' if compiled is None else f'{compiled:.3f}'} | {row['max_abs_error']:.2e} |"
        )
    print(
        "\ndynamic int8 at batch 16 without XNNPack: "
        f"{entry['dynamic_int8_without_xnnpack_ms_batch16']:.2f} ms"
    )
    for kind, layers in entry.get("layer_profile_batch16", {}).items():
        costs = ", ".join(f"{cost['layer']} {cost['ms']:.2f} ms" for cost in layers)
        print(f"\n{kind}: {costs}")
