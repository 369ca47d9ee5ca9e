"""Runs an exported generator the way a server or an app would: no keras_vae.

Usage: python generator_check.py EXPORT_DIR Z.npy OUT.npz

Loads the SavedModel (`generate` signature) and every dynamic .tflite
(signature runner), decodes the z in Z.npy at batch sizes 1 and len(z),
draws from the `sample_random` signatures (z and the mixture component of
each) and runs `sample` on the eps and u of `sampler_inputs`,
and feeds a wrong-size z. Runs every static-shape .tflite through both the
Interpreter API and the CompiledModel API (LiteRT's newer one) on the first
`batch` z, and feeds each a wrong shape. Writes everything to OUT.npz.
Fails if keras_vae got imported.

A conditional generator (generator.json's "conditioning") gets a `label`
beside every z and eps: its labels in turn (`labels`), as the export's own
parity check gives them; `sample_random` then takes the labels alone.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf
from ai_edge_litert.compiled_model import CompiledModel
from ai_edge_litert.interpreter import Interpreter

# z drawn per `sample` call. int8 gets fewer: LiteRT's dynamic-range int8 kernels
# decode the conv preset about 45x slower than float32 here (18 vs 0.4 ms an image).
SAMPLE_COUNTS = {"float32": 2000, "float16": 2000, "int8": 100}


def labels(metadata, count):
    """{"label": one-hot [count, K], the K labels in turn} of a conditional export, else {}."""
    conditioning = metadata.get("conditioning")
    if not conditioning:
        return {}
    size = len(conditioning["names"])
    return {"label": np.resize(np.eye(size, dtype=np.float32), (count, size))}


def random_inputs(metadata, count, numpy=False):
    """What `sample_random` takes for `count` draws: the count, or a conditional one's labels."""
    inputs = labels(metadata, count) or {"count": np.array(count, np.int32)}
    return inputs if numpy else {name: tf.constant(value) for name, value in inputs.items()}


def sampler_inputs(count, latent_dim):
    """The eps [count, latent_dim] and u [count] that an app would pass to `sample`."""
    rng = np.random.default_rng(7)
    eps = rng.standard_normal((count, latent_dim)).astype(np.float32)
    return eps, rng.uniform(size=count).astype(np.float32)


def wrong_size_errors(call, latent_dim, metadata=None):
    """The error each wrong-size z raised ("" where it returned images instead).

    [2, 2 * latent_dim] is the dangerous one: a fully connected layer could
    read it as 4 codes of the right size. `call(z, **labels)`.
    """
    messages = []
    for shape in ((2, 2 * latent_dim), (3, latent_dim + 3)):
        try:
            call(np.zeros(shape, np.float32), **labels(metadata or {}, shape[0]))
            messages.append("")
        except Exception as error:  # each runtime raises its own type
            messages.append(type(error).__name__ + ": " + str(error).splitlines()[0][:200])
    return messages


def run_compiled_model(path, z, label=None):
    """`generate` on z `[batch, latent_dim]` (and `label`) through the CompiledModel API (CPU)."""
    model = CompiledModel.from_file(path)
    signature = model.get_signature_index("generate")
    inputs = model.create_input_buffers(signature)
    outputs = model.create_output_buffers(signature)
    values = {"z": z, "label": label}
    for name, buffer in zip(model.get_signature_list()["generate"]["inputs"], inputs, strict=True):
        buffer.write(values[name])
    model.run_by_index(signature, inputs, outputs)
    details = model.get_output_tensor_details("generate")
    names = model.get_signature_list()["generate"]["outputs"]
    return {
        name: buffer.read(int(np.prod(details[name]["shape"])), details[name]["dtype"]).reshape(
            details[name]["shape"]
        )
        for name, buffer in zip(names, outputs, strict=True)
    }, model


def compiled_model_errors(path, latent_dim):
    """The error of each way to give a static CompiledModel a wrong-shape z.

    Each attempt gets a fresh model: a refused non-strict resize still
    changes the model's input shape.
    """

    def resize(model, strict):
        model.resize_input_tensor_by_name("generate", "z", [2, 2 * latent_dim], strict=strict)
        inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
        model.run_by_index(0, inputs, outputs)

    def write_more(model):
        batch = model.get_input_tensor_details("generate")["z"]["shape"][0]
        model.create_input_buffers(0)[0].write(np.zeros((batch + 1, latent_dim), np.float32))

    messages = []
    for attempt in (
        lambda m: resize(m, strict=True),
        lambda m: resize(m, strict=False),
        write_more,
    ):
        try:
            attempt(CompiledModel.from_file(path))
            messages.append("")
        except Exception as error:  # the runtime raises RuntimeError
            messages.append(type(error).__name__ + ": " + " ".join(str(error).split())[:300])
    return messages


def check_static(export_dir, key, facts, z, results, errors, metadata):
    path = os.path.join(export_dir, facts["path"])
    z = z[: facts["batch"]]
    label = labels(metadata, len(z))
    runner = Interpreter(model_path=path).get_signature_runner("generate")
    for name, value in runner(z=z, **label).items():
        results[f"{key}/interpreter/{name}"] = value
    errors[f"{key}/interpreter"] = wrong_size_errors(
        lambda bad, **more: runner(z=bad, **more), z.shape[1], metadata
    )
    # One code too many: an error for batch > 1; a batch-1 file decodes both codes.
    try:
        results[f"{key}/interpreter/batch_plus_one"] = runner(
            z=np.zeros((len(z) + 1, z.shape[1]), np.float32), **labels(metadata, len(z) + 1)
        )["images"]
    except Exception as error:  # the runtime raises RuntimeError
        errors[f"{key}/interpreter/batch_plus_one"] = [
            type(error).__name__ + ": " + str(error)[:200]
        ]
    results[f"{key}/interpreter/after_error"] = runner(z=z, **label)["images"]
    outputs, model = run_compiled_model(path, z, label.get("label"))
    for name, value in outputs.items():
        results[f"{key}/compiled_model/{name}"] = value
    results[f"{key}/compiled_model/output_order"] = np.array(
        model.get_signature_list()["generate"]["outputs"]
    )
    errors[f"{key}/compiled_model"] = compiled_model_errors(path, z.shape[1])


def main(export_dir, z_path, out_path):
    z = np.load(z_path)
    with open(os.path.join(export_dir, "generator.json")) as f:
        metadata = json.load(f)
    results, errors = {}, {}

    saved = tf.saved_model.load(os.path.join(export_dir, "saved_model"))
    generate = saved.signatures["generate"]
    assert saved.signatures["serving_default"] is not None

    def constants(**values):
        return {name: tf.constant(value) for name, value in values.items()}

    for batch in (1, len(z)):
        outputs = generate(**constants(z=z[:batch], **labels(metadata, batch)))
        results[f"saved_model/images/{batch}"] = outputs["images"].numpy()
        results[f"saved_model/pixels/{batch}"] = outputs["pixels"].numpy()
    errors["saved_model"] = wrong_size_errors(
        lambda bad, **more: generate(**constants(z=bad, **more)), z.shape[1], metadata
    )
    drawn = saved.signatures["sample_random"](**random_inputs(metadata, SAMPLE_COUNTS["float32"]))
    for name in ("z", "component", "images"):
        results[f"saved_model/sample/{name}"] = drawn[name].numpy()
    eps, u = sampler_inputs(len(z), z.shape[1])
    drawn = saved.signatures["sample"](**constants(eps=eps, u=u, **labels(metadata, len(z))))
    for name in ("z", "component", "images"):
        results[f"saved_model/sample_inputs/{name}"] = drawn[name].numpy()

    for variant, facts in metadata["artifacts"].items():
        if variant == "saved_model":
            continue
        if facts.get("layout") == "static":
            check_static(export_dir, variant, facts, z, results, errors, metadata)
            continue
        interpreter = Interpreter(model_path=os.path.join(export_dir, facts["path"]))
        runner = interpreter.get_signature_runner("generate")
        for batch in (1, len(z)):
            outputs = runner(z=z[:batch], **labels(metadata, batch))
            results[f"{variant}/images/{batch}"] = outputs["images"]
            results[f"{variant}/pixels/{batch}"] = outputs["pixels"]
        errors[variant] = wrong_size_errors(
            lambda bad, r=runner, **more: r(z=bad, **more), z.shape[1], metadata
        )
        # The runner still works after refusing a wrong z.
        results[f"{variant}/after_error"] = runner(z=z[:2], **labels(metadata, 2))["images"]
        sample = interpreter.get_signature_runner("sample_random")
        first = sample(**random_inputs(metadata, SAMPLE_COUNTS[variant], numpy=True))
        second = sample(**random_inputs(metadata, 3, numpy=True))
        results[f"{variant}/sample/z"] = first["z"]
        results[f"{variant}/sample/component"] = first["component"]
        results[f"{variant}/sample/images"] = first["images"]
        results[f"{variant}/sample/z_again"] = second["z"]
        drawn = interpreter.get_signature_runner("sample")(eps=eps, u=u, **labels(metadata, len(z)))
        for name in ("z", "component", "images"):
            results[f"{variant}/sample_inputs/{name}"] = drawn[name]

    assert "keras_vae" not in sys.modules, "the generator must run without keras_vae"
    np.savez(out_path, **results, errors=json.dumps(errors))


if __name__ == "__main__":
    main(*sys.argv[1:])
