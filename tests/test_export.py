"""The exported generator, run in a fresh process that never imports keras_vae."""

import json
import os
import shutil
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from export import __main__ as export_cli
from keras_vae import VAE, datasets
from keras_vae.export import generator as export
from keras_vae.models import priors
from keras_vae.utils import atomic_files
from tests import generator_check
from tests.testing import (
    REPO_ROOT,
    TINY,
    assert_draws_follow_prior,
    built_once,
    call_main,
    prior_draws,
    run_generator_check,
    staging_exists,
    tree_digest,
    wait_for,
)

TOLERANCE = {"saved_model": 1e-5, "float32": 1e-5, "float16": 2e-2, "int8": 0.1}
STATIC = [
    f"{variant}_b{batch}"
    for variant in ("float32", "float16", "int8")
    for batch in export.STATIC_BATCH_SIZES
]
RUNTIMES = ["interpreter", "compiled_model"]


@pytest.fixture(scope="module")
def generator_outputs(trained_run, tmp_path_factory):
    """generator_check.py on trained_run's export, in a process without keras_vae (once a run)."""
    run_dir, _ = trained_run
    export_dir = run_dir / "export"
    model = keras.models.load_model(run_dir / "model.keras")
    z = np.random.default_rng(42).standard_normal((16, model.latent_dim)).astype(np.float32)
    work, _, _ = built_once(
        tmp_path_factory,
        "generator_outputs",
        lambda work: run_generator_check(export_dir, z, work),
    )
    outputs = dict(np.load(work / "out.npz"))
    expected = keras.ops.convert_to_numpy(model.decode(z))
    return export_dir, model, z, expected, outputs


def test_run_dir_holds_every_artifact(trained_run):
    run_dir, _ = trained_run
    export_dir = run_dir / "export"
    names = sorted(os.listdir(export_dir))
    assert names == sorted(
        [
            "generator.json",
            "saved_model",
            *(f"generator_{variant}.tflite" for variant in ("float32", "float16", "int8")),
            *(f"generator_{key}.tflite" for key in STATIC),
        ]
    )
    assert (run_dir / "generated_tflite.png").stat().st_size > 0


@pytest.mark.parametrize("variant", list(TOLERANCE))
@pytest.mark.parametrize("batch", [1, 16])
def test_fresh_process_outputs_match_keras_decoder(generator_outputs, variant, batch):
    _, _, _, expected, outputs = generator_outputs
    images = outputs[f"{variant}/images/{batch}"]
    assert images.shape == expected[:batch].shape and images.dtype == np.float32
    error = np.max(np.abs(images - expected[:batch]))
    assert error <= TOLERANCE[variant], (variant, batch, error)
    pixels = outputs[f"{variant}/pixels/{batch}"]
    assert pixels.dtype == np.uint8
    assert np.max(np.abs(pixels.astype(int) - np.rint(images * 255))) <= 1


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("key", STATIC)
def test_static_files_match_keras_decoder_on_both_litert_apis(generator_outputs, key, runtime):
    export_dir, model, _, expected, outputs = generator_outputs
    facts = json.loads((export_dir / "generator.json").read_text())["artifacts"][key]
    batch, size = facts["batch"], int(np.prod(model.image_shape))
    images = outputs[f"{key}/{runtime}/images"]
    pixels = outputs[f"{key}/{runtime}/pixels"]
    assert images.shape == pixels.shape == (batch, size)
    assert images.dtype == np.float32 and pixels.dtype == np.uint8
    error = np.max(np.abs(images - expected[:batch].reshape(batch, size)))
    assert error <= TOLERANCE[facts["variant"]], (key, runtime, error)
    if runtime == "compiled_model":  # generator.json tells apps the order of the buffers
        assert list(outputs[f"{key}/compiled_model/output_order"]) == facts["output_order"]
    assert np.max(np.abs(pixels.astype(int) - np.rint(images * 255))) <= 1


# What export/README.md and BENCHMARKS.md say of the dynamic files on the
# CompiledModel API: after a resize its output buffers keep the declared
# [1, H, W, C]; the run writes past them and the process crashes, or it fails
# to invoke. If a LiteRT release fixes it, this fails: update the guide then.
COMPILED_MODEL_ON_DYNAMIC_FILE = """
import sys, numpy as np
from ai_edge_litert.compiled_model import CompiledModel
model = CompiledModel.from_file(sys.argv[1])
model.resize_input_tensor_by_name("generate", "z", [16, int(sys.argv[2])])
inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
inputs[0].write(np.zeros((16, int(sys.argv[2])), np.float32))
model.run_by_index(0, inputs, outputs)
shape = model.get_output_tensor_details("generate")["images"]["shape"]
print("images", shape, flush=True)
"""


def test_compiled_model_api_cannot_run_the_dynamic_files(trained_run):
    run_dir, _ = trained_run
    latent_dim = json.loads((run_dir / "export" / "generator.json").read_text())["latent_dim"]
    result = subprocess.run(
        [sys.executable, "-c", COMPILED_MODEL_ON_DYNAMIC_FILE]
        + [str(run_dir / "export" / export.tflite_filename("float32")), str(latent_dim)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The runtime's own failure: SIGABRT (the MLP decoders) or "Failed to invoke"
    # (the convolutional ones, as this keras_example run), never a Python
    # error such as an API rename.
    assert result.returncode < 0 or (
        result.returncode > 0 and "RuntimeError: CompiledModel error" in result.stderr
    ), (result.returncode, result.stderr[-1500:])
    assert "images [16," not in result.stdout


def test_wrong_latent_size_is_an_error_not_garbage(generator_outputs):
    _, model, _, _, outputs = generator_outputs
    errors = json.loads(str(outputs["errors"]))
    plus_one = {f"{key}/interpreter/batch_plus_one" for key in STATIC}
    expected_keys = {f"{key}/{runtime}" for key in STATIC for runtime in RUNTIMES}
    assert (
        set(TOLERANCE) | expected_keys <= set(errors) <= set(TOLERANCE) | expected_keys | plus_one
    )
    # One code too many (e.g. 17 into a batch-16 file) is refused, except that
    # a batch-1 file may broadcast [2, latent_dim]; then it decodes both right.
    assert {f"{key}/interpreter/batch_plus_one" for key in STATIC if "_b1" not in key} <= set(
        errors
    )
    guard_words = ("not broadcastable", "reshape", "xnnpack")  # RESHAPE or ADD refuses it
    for name, messages in errors.items():
        if name.endswith("batch_plus_one"):
            assert any(w in messages[0].lower() for w in guard_words), (name, messages)
            continue
        # Interpreter: [2, 2 * latent_dim] and [3, latent_dim + 3]; CompiledModel:
        # a strict and a non-strict resize to [2, 2 * latent_dim], a z one row too many.
        assert len(messages) == (3 if "compiled_model" in name else 2), (name, messages)
        assert all(messages), (name, messages)
    static_interpreter = [errors[f"{key}/interpreter"] for key in STATIC]
    assert all(any(w in m.lower() for w in guard_words) for ms in static_interpreter for m in ms)
    for key in STATIC:
        messages = errors[f"{key}/compiled_model"]
        assert "not compatible" in messages[0] and "larger than the tensor" in messages[2]
    # A batch-1 file that broadcasts [2, latent_dim] decodes both codes right.
    zeros = np.zeros((2, model.latent_dim), np.float32)
    two = keras.ops.convert_to_numpy(model.decode(zeros)).reshape(2, -1)
    for key in STATIC:
        if f"{key}/interpreter/batch_plus_one" not in errors:
            decoded = outputs[f"{key}/interpreter/batch_plus_one"]
            assert np.max(np.abs(decoded - two)) <= TOLERANCE[key.split("_")[0]], key
    expected = generator_outputs[3]
    for variant in ("float32", "float16", "int8"):
        after = generator_outputs[4][f"{variant}/after_error"]
        assert np.max(np.abs(after - expected[:2])) <= TOLERANCE[variant]
    for key in STATIC:
        after = generator_outputs[4][f"{key}/interpreter/after_error"]
        batch = len(after)
        error = np.max(np.abs(after - expected[:batch].reshape(batch, -1)))
        assert error <= TOLERANCE[key.split("_")[0]]


@pytest.mark.parametrize("variant", ["saved_model", "float32", "float16", "int8"])
def test_on_device_sample_draws_from_the_fitted_prior(generator_outputs, variant):
    export_dir, model, _, _, outputs = generator_outputs
    prior = json.loads((export_dir / "generator.json").read_text())["latent_prior"]
    # train.py fitted a mixture to the training codes and the export draws from it.
    assert prior["kind"] == "gmm" and prior == model.prior.to_dict()
    z, components = outputs[f"{variant}/sample/z"], outputs[f"{variant}/sample/component"]
    count = generator_check.SAMPLE_COUNTS.get(variant, generator_check.SAMPLE_COUNTS["float32"])
    assert len(z) == count and z.dtype == np.float32 and components.dtype == np.int32
    assert_draws_follow_prior(prior, z, components)
    if variant != "saved_model":
        assert outputs[f"{variant}/sample/z_again"].shape == (3, model.latent_dim)
        assert not np.allclose(z[:3], outputs[f"{variant}/sample/z_again"])
    images = outputs[f"{variant}/sample/images"]
    # The images are the decoder's output for the z it returned.
    expected = keras.ops.convert_to_numpy(model.decode(z[:8]))
    assert np.max(np.abs(images[:8] - expected)) <= TOLERANCE[variant]


# How far `sample`'s z may be from the app's own arithmetic: the prior's constants
# are float16 in the float16 files.
Z_TOLERANCE = {"saved_model": 1e-5, "float32": 1e-5, "float16": 1e-2, "int8": 1e-5}


@pytest.mark.parametrize("variant", ["saved_model", "float32", "float16", "int8"])
def test_sample_is_a_function_of_the_eps_and_u_the_app_passes(generator_outputs, variant):
    export_dir, model, z, _, outputs = generator_outputs
    prior = json.loads((export_dir / "generator.json").read_text())["latent_prior"]
    eps, u = generator_check.sampler_inputs(len(z), model.latent_dim)
    expected_z, expected_component = prior_draws(prior, eps, u)
    assert len(set(expected_component)) > 1  # several components are exercised
    got = {name: outputs[f"{variant}/sample_inputs/{name}"] for name in ("z", "component")}
    np.testing.assert_array_equal(got["component"], expected_component)
    np.testing.assert_allclose(got["z"], expected_z, atol=Z_TOLERANCE[variant], rtol=0)
    images = outputs[f"{variant}/sample_inputs/images"]
    expected = keras.ops.convert_to_numpy(model.decode(got["z"]))
    assert np.max(np.abs(images - expected)) <= TOLERANCE[variant]


SAMPLER_RUN = """
import json, sys
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
export_dir = sys.argv[1]
eps = np.linspace(-2, 2, 16, dtype=np.float32).reshape(4, 4)
u = np.array([0.05, 0.3, 0.6, 0.95], np.float32)
saved = tf.saved_model.load(export_dir + "/saved_model")
lite = Interpreter(model_path=export_dir + "/generator_float32.tflite")
out = {
    "saved_model": saved.signatures["sample"](eps=eps, u=u)["images"].numpy().tolist(),
    "saved_model_random": saved.signatures["sample_random"](count=4)["z"].numpy().tolist(),
    "tflite": lite.get_signature_runner("sample")(eps=eps, u=u)["images"].tolist(),
    "tflite_random": lite.get_signature_runner("sample_random")(count=np.int32(4))["z"].tolist(),
}
print(json.dumps(out))
"""


@pytest.mark.processes
def test_same_eps_and_u_same_images_in_fresh_processes_and_new_draws_each_launch(
    tmp_path, small_vae
):
    # The model was built under a global seed, as train.py's are: the random ops
    # of sample_random must not carry it into the files.
    keras.utils.set_random_seed(0)
    small_vae.set_prior(
        priors.GaussianMixture(
            [0.5, 0.5], [[-3.0, 0, 0, 0], [3.0, 0, 0, 0]], [np.eye(4) * 0.5, np.eye(4)]
        )
    )
    export.export_generator(
        small_vae, tmp_path / "export", variants=("float32",), static_batch_sizes=()
    )
    launches = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", SAMPLER_RUN, str(tmp_path / "export")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        launches.append(json.loads(result.stdout.strip().splitlines()[-1]))
    first, second = launches
    np.testing.assert_array_equal(first["saved_model"], second["saved_model"])
    np.testing.assert_array_equal(first["tflite"], second["tflite"])
    np.testing.assert_allclose(first["saved_model"], first["tflite"], atol=1e-5)
    for key in ("saved_model_random", "tflite_random"):
        assert not np.allclose(first[key], second[key]), key


def test_sample_signature_picks_components_by_weight(tmp_path):
    # Far-apart components: the component of each draw can be read off its z.
    model = VAE(image_shape=(28, 28, 1), **TINY)
    model.decode(np.zeros((1, 3), np.float32))
    prior = priors.GaussianMixture(
        [0.2, 0.5, 0.3],
        [[20.0, 0, 0], [0, 20.0, 0], [0, 0, -20.0]],
        [np.eye(3) * 0.5, np.eye(3), np.tril(np.full((3, 3), 0.5)) + np.eye(3)],
    )
    model.set_prior(prior)
    export.export_generator(
        model, tmp_path / "export", variants=("float32",), static_batch_sizes=()
    )
    metadata = json.loads((tmp_path / "export" / "generator.json").read_text())
    assert metadata["latent_prior"] == prior.to_dict()
    path = str(tmp_path / "export" / export.tflite_filename("float32"))
    from ai_edge_litert.interpreter import Interpreter

    drawn = Interpreter(model_path=path).get_signature_runner("sample_random")(
        count=np.array(4000, np.int32)
    )
    nearest = np.argmin(np.linalg.norm(drawn["z"][:, None] - prior.means[None], axis=-1), axis=1)
    np.testing.assert_array_equal(nearest, drawn["component"])
    assert_draws_follow_prior(metadata["latent_prior"], drawn["z"], drawn["component"])
    # The standard prior's sampler is plain N(0, I).
    model.set_prior(model.priors["standard"])
    export.export_generator(
        model, tmp_path / "standard", variants=("float32",), static_batch_sizes=()
    )
    path = str(tmp_path / "standard" / export.tflite_filename("float32"))
    drawn = Interpreter(model_path=path).get_signature_runner("sample_random")(
        count=np.array(4000, np.int32)
    )
    assert not drawn["component"].any()
    assert_draws_follow_prior(priors.standard_normal(3).to_dict(), drawn["z"], drawn["component"])


def test_metadata_describes_the_generator(trained_run, generator_outputs):
    run_dir, _ = trained_run
    metadata = json.loads((run_dir / "export" / "generator.json").read_text())
    model = generator_outputs[1]
    assert metadata["latent_dim"] == model.latent_dim
    assert metadata["image_shape"] == [28, 28, 1]
    assert metadata["likelihood"] == "bernoulli" and metadata["dataset"] == "fashion_mnist"
    assert metadata["training_config"]["preset"] == "keras_example"
    assert metadata["keras_vae_version"]
    # The classes' attribute vectors, as the run dir records them (the explorer's sliders).
    named = metadata["attribute_directions"]
    assert named == json.loads((run_dir / "attribute_vectors.json").read_text())
    assert named["names"] == list(datasets.CLASS_NAMES["fashion_mnist"])
    assert np.array(named["vectors"]).shape == (10, model.latent_dim)
    assert sum(named["counts"]) == 256  # one class per test image
    generate = metadata["signatures"]["generate"]
    assert generate["inputs"]["z"] == {"shape": [None, model.latent_dim], "dtype": "float32"}
    assert generate["outputs"]["pixels"]["dtype"] == "uint8"
    for name, tolerance in TOLERANCE.items():
        facts = metadata["artifacts"][name]
        assert 0 < facts["size_bytes"] and 0 <= facts["max_abs_error"] <= tolerance
        assert facts["layout"] == "dynamic"
    size = int(np.prod(metadata["image_shape"]))
    for key in STATIC:
        facts = metadata["artifacts"][key]
        batch = facts["batch"]
        assert facts["path"] == export.tflite_filename(facts["variant"], batch)
        assert facts["layout"] == "static" and facts["signatures"] == ["generate"]
        assert {"litert_compiled_model_cpu", "litert_js_wasm"} <= set(facts["runtimes"])
        assert facts["inputs"]["z"] == {"shape": [batch, model.latent_dim], "dtype": "float32"}
        assert facts["outputs"]["images"]["shape"] == [batch, size]
        assert facts["outputs"]["pixels"] == {
            "shape": [batch, size],
            "dtype": "uint8",
            "range": [0, 255],
        }
        assert 0 <= facts["max_abs_error"] <= TOLERANCE[facts["variant"]]
        # GPU delegates and LiteRT.js need every tensor's size fixed.
        assert export.dynamic_tensors(str(run_dir / "export" / facts["path"])) == []
    assert "full-integer" in metadata["artifacts"]["int8_b16"]["quantization"]
    assert "dynamic-range" in metadata["artifacts"]["int8"]["quantization"]
    directions = metadata["latent_directions"]
    vectors = np.array(directions["directions"])
    assert vectors.shape == (min(export.LATENT_DIRECTIONS, model.latent_dim), model.latent_dim)
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(len(vectors)), atol=1e-9)
    assert list(directions["scales"]) == sorted(directions["scales"], reverse=True)


@pytest.mark.parametrize("variant", ["float32", "float16", "int8"])
def test_tflite_holds_builtin_ops_only(trained_run, variant):
    run_dir, _ = trained_run
    ops = export.tflite_op_names(str(run_dir / "export" / export.tflite_filename(variant)))
    assert {"RANDOM_STANDARD_NORMAL", "RANDOM_UNIFORM", "TRANSPOSE_CONV"} <= set(ops)
    assert not [op for op in ops if op.startswith("Flex") or op in export.FORBIDDEN_OPS]
    static = export.tflite_op_names(str(run_dir / "export" / export.tflite_filename(variant, 16)))
    assert "TRANSPOSE_CONV" in static and "RANDOM_UNIFORM" not in static
    # LiteRT.js returns zeros for an output that a RESHAPE makes.
    producers = export.output_ops(str(run_dir / "export" / export.tflite_filename(variant, 16)))
    assert set(producers) == {"images", "pixels"} and "RESHAPE" not in producers.values()
    assert not [op for op in static if op.startswith("Flex") or op in export.FORBIDDEN_OPS]


def test_op_check_rejects_variable_and_flex_ops(tmp_path):
    class Holder(tf.Module):
        def __init__(self):
            self.weight = tf.Variable(tf.ones([2, 2]))

        # No autograph: nothing to convert, and its per-process cache of converted
        # code has mixed this method up with another test's class (TypeError).
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)], autograph=False)
        def __call__(self, x):
            self.weight.assign_add(tf.ones([2, 2]))
            return tf.matmul(x, self.weight)

    holder = Holder()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [holder.__call__.get_concrete_function()], holder
    )
    path = tmp_path / "variables.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(export.ExportError, match="VAR_HANDLE"):
        export.check_builtin_ops(str(path))

    @tf.function(input_signature=[tf.TensorSpec([2], tf.int32)])
    def stateless(seed):
        return tf.random.stateless_normal([3], seed=seed)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([stateless.get_concrete_function()])
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    path = tmp_path / "flex.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(export.ExportError, match="Flex"):
        export.check_builtin_ops(str(path))


@pytest.fixture
def small_vae():
    return VAE(preset="mlp", latent_dim=4, encoder_units=(8,), decoder_units=(8,), seed=0)


def test_existing_export_is_not_overwritten_without_overwrite(tmp_path, small_vae):
    out = tmp_path / "gen"
    export.export_generator(small_vae, out, variants=("float32",), static_batch_sizes=())
    before = tree_digest(out)
    with pytest.raises(FileExistsError, match="--overwrite"):
        export.export_generator(small_vae, out, variants=("float32",), static_batch_sizes=())
    assert tree_digest(out) == before
    other = VAE(preset="mlp", latent_dim=4, encoder_units=(8,), decoder_units=(8,), seed=1)
    export.export_generator(
        other, out, overwrite=True, variants=("float32",), static_batch_sizes=()
    )
    assert tree_digest(out) != before
    assert sorted(os.listdir(tmp_path)) == ["gen"]


def test_overwrite_replaces_only_an_earlier_export(tmp_path, small_vae):
    # Pointed at a user's folder or at a run dir, --overwrite must delete nothing.
    for name, contents in (("photos", ["cat.jpg"]), ("run", ["model.keras", "config.json"])):
        folder = tmp_path / name
        folder.mkdir()
        for file in contents:
            (folder / file).write_text(file)
        before = tree_digest(folder)
        with pytest.raises(FileExistsError, match="is not a keras_vae export"):
            export.export_generator(
                small_vae, folder, overwrite=True, variants=("float32",), static_batch_sizes=()
            )
        assert tree_digest(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["photos", "run"]  # no staging dir left


def test_failure_mid_export_leaves_previous_export_intact(tmp_path, small_vae, monkeypatch):
    out = tmp_path / "gen"
    export.export_generator(small_vae, out)
    before = tree_digest(out)
    convert = export._convert_tflite

    def fail_on_int8(saved_model_dir, signature_keys, variant, calibration=None):
        if variant == "int8" and calibration is not None:  # int8_b1, mid-export
            raise RuntimeError("injected converter failure")
        return convert(saved_model_dir, signature_keys, variant, calibration)

    monkeypatch.setattr(export, "_convert_tflite", fail_on_int8)
    with pytest.raises(RuntimeError, match="injected"):
        export.export_generator(small_vae, out, overwrite=True)
    assert tree_digest(out) == before
    assert sorted(os.listdir(tmp_path)) == ["gen"]  # no staging dir left behind


def test_model_without_built_decoder_is_a_clear_error(tmp_path):
    class Unbuilt(keras.Model):
        def __init__(self):
            super().__init__()
            self.decoder = keras.Sequential([keras.layers.Dense(4)])

    with pytest.raises(export.ExportError, match="decoder is not built"):
        export.export_generator(Unbuilt(), tmp_path / "gen")
    with pytest.raises(export.ExportError, match="no `decoder`"):
        export.export_generator(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "gen")
    assert not (tmp_path / "gen").exists()


def test_cli_exports_refuses_overwrite_and_rejects_non_vae(tmp_path, small_vae):
    small_vae.save(tmp_path / "vae.keras")
    argv = ["--model", tmp_path / "vae.keras", "--variants", "float32"]
    code, out, err = call_main(export_cli.main, argv + ["--preview", tmp_path / "preview.png"])
    assert code == 0, err[-2000:]
    assert "generator_float32.tflite" in out
    assert (tmp_path / "vae_export" / "generator.json").exists()
    assert (tmp_path / "preview.png").exists()
    code, _, err = call_main(export_cli.main, argv)
    assert code == 2 and "already exists" in err and "Traceback" not in err

    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(tmp_path / "other.keras")
    code, _, err = call_main(export_cli.main, ["--model", tmp_path / "other.keras"])
    assert code == 2 and "not a keras_vae VAE" in err


def test_cli_help():
    code, out, _ = call_main(export_cli.main, ["--help"])
    assert code == 0
    for flag in ("--model", "--out", "--overwrite", "--variants", "--preview"):
        assert flag in out


def test_a_folder_moved_aside_by_a_killed_commit_is_put_back(tmp_path, small_vae):
    # A kill between commit_directory's two renames leaves what was at --out in
    # .gen.old-PID-*/export: an earlier export, or a user's folder.
    out = tmp_path / "gen"
    export.export_generator(small_vae, out, variants=("float32",), static_batch_sizes=())
    before = tree_digest(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    retired = tmp_path / f".gen.old-{dead.pid}-abc"
    retired.mkdir()
    out.rename(retired / "export")
    with pytest.raises(FileExistsError, match="already exists"):
        export.export_generator(small_vae, out, variants=("float32",), static_batch_sizes=())
    assert tree_digest(out) == before
    assert sorted(os.listdir(tmp_path)) == ["gen"]

    shutil.rmtree(out)
    (retired / "export").mkdir(parents=True)
    (retired / "export" / "notes.txt").write_text("mine")  # no generator.json
    with pytest.raises(FileExistsError, match="is not a keras_vae export"):
        export.export_generator(
            small_vae, out, overwrite=True, variants=("float32",), static_batch_sizes=()
        )
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["gen"]


def test_preview_needs_the_float32_variant(tmp_path, small_vae):
    small_vae.save(tmp_path / "vae.keras")
    argv = [
        "--model",
        tmp_path / "vae.keras",
        "--variants",
        "int8",
        "--preview",
        tmp_path / "p.png",
    ]
    code, _, err = call_main(export_cli.main, argv)
    assert code == 2 and "add float32 to --variants" in err
    assert not (tmp_path / "vae_export").exists()


def test_static_files_of_an_rgb_model_at_other_batch_sizes(tmp_path):
    # 8x8 RGB, latent_dim 2, batches 1 and 3, fewer parity codes than a batch.
    model = VAE(
        image_shape=(8, 8, 3), preset="mlp", latent_dim=2, encoder_units=(8,), decoder_units=(8,)
    )
    model.decode(np.zeros((1, 2), np.float32))
    metadata = export.export_generator(
        model,
        tmp_path / "gen",
        variants=("float32", "int8"),
        static_batch_sizes=(1, 3),
        parity_samples=2,
    )
    assert sorted(k for k in metadata["artifacts"] if "_b" in k) == [
        "float32_b1",
        "float32_b3",
        "int8_b1",
        "int8_b3",
    ]
    facts = metadata["artifacts"]["float32_b3"]
    assert facts["inputs"]["z"]["shape"] == [3, 2]
    assert facts["outputs"]["images"]["shape"] == [3, 8 * 8 * 3]
    assert "calibrated on 255 z" in metadata["artifacts"]["int8_b3"]["quantization"]
    z = np.random.default_rng(1).standard_normal((3, 2)).astype(np.float32)
    images = export.run_tflite_generate(str(tmp_path / "gen" / facts["path"]), z)["images"]
    # Rows of NHWC pixels: reshaped, they are the decoder's [3, 8, 8, 3] images.
    expected = keras.ops.convert_to_numpy(model.decode(z))
    np.testing.assert_allclose(images.reshape(3, 8, 8, 3), expected, atol=1e-5)
    with pytest.raises(ValueError, match="latent_directions must be >= 1"):
        export.export_generator(model, tmp_path / "other", latent_directions=0)
    with pytest.raises(ValueError, match="Static batch sizes must be between 1 and 1024"):
        export.export_generator(model, tmp_path / "other", static_batch_sizes=(0,))
    assert not (tmp_path / "other").exists()


def test_static_files_of_the_default_mlp_refuse_wrong_shapes(tmp_path):
    # The `default` preset's decoder (Dense 512, 512, 784): with a guard that the
    # converter could fold into the first layer's bias, its batch-1 file once
    # read [2, 2 * latent_dim] as four codes.
    model = VAE(preset="default", seed=0)
    model.decode(np.zeros((1, model.latent_dim), np.float32))
    # Non-zero biases, as after training (the fold showed only then).
    rng = np.random.default_rng(0)
    model.decoder.set_weights(
        [0.05 * rng.standard_normal(w.shape).astype("float32") for w in model.decoder.get_weights()]
    )
    export.export_generator(model, tmp_path / "gen", variants=("float32",))
    d = model.latent_dim
    for batch in export.STATIC_BATCH_SIZES:
        path = str(tmp_path / "gen" / export.tflite_filename("float32", batch))
        runner = Interpreter(model_path=path).get_signature_runner(export.GENERATE)
        for shape in ((2, 2 * d), (3, d + 3), (batch, d + 1)):
            with pytest.raises(RuntimeError):
                runner(z=np.zeros(shape, np.float32))
        more = np.random.default_rng(0).standard_normal((batch + 1, d)).astype(np.float32)
        if batch > 1:
            with pytest.raises(RuntimeError):
                runner(z=more)
        else:  # a batch-1 file may broadcast [2, d]; then both codes come out right
            expected = keras.ops.convert_to_numpy(model.decode(more)).reshape(2, -1)
            np.testing.assert_allclose(runner(z=more)["images"], expected, atol=1e-5)


def saved_vae(directory, latent_dim=4, seed=0, prior=None):
    """A tiny MLP VAE saved as directory/model.keras (with `prior` its default); the path."""
    model = VAE(
        preset="mlp", latent_dim=latent_dim, encoder_units=(8,), decoder_units=(8,), seed=seed
    )
    model.decode(np.zeros((1, latent_dim), np.float32))
    if prior is not None:
        model.set_prior(prior)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "model.keras")
    model.save(path)
    return path


def run_cli(*argv, **kwargs):
    """`python -m keras_vae ARGV` in a fresh process (stderr as the terminal shows it)."""
    return subprocess.run(
        [sys.executable, "-m", "keras_vae", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        **kwargs,
    )


def test_every_artifact_names_the_runtimes_it_was_tested_on(tmp_path, small_vae):
    metadata = export.export_generator(
        small_vae, tmp_path / "gen", variants=("float32",), static_batch_sizes=(1,)
    )
    for name, facts in metadata["artifacts"].items():
        assert facts["runtimes_tested"], name
        assert set(facts["runtimes_tested"]) <= set(facts["runtimes"]), name
    assert metadata["artifacts"]["saved_model"]["runtimes_tested"] == ["tensorflow"]


def test_export_prints_no_tensorflow_deprecation_or_converter_lines(tmp_path):
    model = saved_vae(tmp_path / "vae")
    # int8 static files are calibrated: the converter's calibrator runs.
    result = run_cli(
        "export",
        "--model",
        model,
        "--out",
        tmp_path / "gen",
        "--variants",
        "int8",
        "--static-batch-sizes",
        "1",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    for noise in ("tf.lite.Interpreter is deprecated", "fully_quantize", "Warning"):
        assert noise not in output, output[-3000:]
    assert result.stderr.strip() == "", result.stderr[-3000:]


def documented(path):
    with open(os.path.join(REPO_ROOT, path)) as f:
        return " ".join(f.read().split())


def test_a_wrong_z_fails_where_the_docs_say(tmp_path, small_vae):
    # Dynamic files: RESHAPE refuses z when it runs; static files: when tensors are allocated.
    export.export_generator(
        small_vae, tmp_path / "gen", variants=("float32",), static_batch_sizes=(16,)
    )
    d = small_vae.latent_dim
    dynamic = Interpreter(model_path=str(tmp_path / "gen" / export.tflite_filename("float32")))
    with pytest.raises(RuntimeError, match=r"\(RESHAPE\) failed to invoke"):
        dynamic.get_signature_runner("generate")(z=np.zeros((2, 2 * d), np.float32))
    static = Interpreter(model_path=str(tmp_path / "gen" / export.tflite_filename("float32", 16)))
    with pytest.raises(RuntimeError, match="failed to prepare"):  # AllocateTensors
        static.get_signature_runner("generate")(z=np.zeros((2, 2 * d), np.float32))
    readme, guide = documented("docs/troubleshooting.md"), documented("export/README.md")
    for text in (readme, guide):
        assert "(RESHAPE) failed to invoke" in text
        assert "RESHAPE error at allocation" not in text
        assert "fails at allocation with a RESHAPE error" not in text


def test_the_compiled_model_api_crashes_on_a_dynamic_mlp_file_as_documented(tmp_path, small_vae):
    # What export/README.md says of the dynamic files on the CompiledModel API:
    # after a resize its output buffers keep the declared [1, H, W, C], the run
    # writes past them and the process crashes (a signal: SIGSEGV or SIGABRT,
    # as the heap allows). If a LiteRT release fixes it, this fails: update the guide.
    export.export_generator(
        small_vae, tmp_path / "gen", variants=("float32",), static_batch_sizes=()
    )
    result = subprocess.run(
        [sys.executable, "-c", COMPILED_MODEL_ON_DYNAMIC_FILE]
        + [str(tmp_path / "gen" / export.tflite_filename("float32")), str(small_vae.latent_dim)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode < 0, (result.returncode, result.stderr[-1500:])
    assert "images [16," not in result.stdout
    guide = documented("export/README.md")
    assert "the process crashes" in guide and "munmap_chunk" not in guide


def when_staging_appears(out, action):
    """A thread that runs `action()` as soon as an export's staging folder for `out` exists."""
    done = threading.Event()

    def watch():
        try:
            wait_for(
                lambda: staging_exists(out),
                120,
                "the staging folder",
                interval=0.005,
            )
            action()
        finally:
            done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_made_during_an_export_is_never_removed(tmp_path, small_vae, overwrite):
    # The user creates --out (or adds a file to the export being replaced) while it runs.
    out = tmp_path / "gen"
    if overwrite:
        export.export_generator(small_vae, out, variants=("float32",), static_batch_sizes=())

    def user_writes():
        out.mkdir(exist_ok=True)
        (out / "mydata.txt").write_text("mine")

    done = when_staging_appears(out, user_writes)
    with pytest.raises(FileExistsError, match="during the export; it was left as it is"):
        export.export_generator(
            small_vae, out, overwrite=overwrite, variants=("float32",), static_batch_sizes=()
        )
    assert done.wait(5)
    assert (out / "mydata.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["gen"]  # no staging, no lock, nothing moved aside


def test_an_export_into_an_out_another_export_is_writing_is_refused(tmp_path, small_vae):
    model = saved_vae(tmp_path / "vae")
    out = tmp_path / "gen"
    # Many static files: the first export runs long enough for two attempts beside it.
    sizes = ["--static-batch-sizes", "1", "2", "4", "8", "16", "32"]
    first = subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "export", "--model", model, "--out", out, *sizes],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: staging_exists(out) or first.poll() is not None,
            120,
            "the first export's staging folder",
        )
        assert first.poll() is None, first.stderr.read()
        in_use = rf"being written by process {first.pid}"
        with pytest.raises(atomic_files.DestinationInUse, match=in_use):
            export.export_generator(
                small_vae, out, overwrite=True, variants=("float32",), static_batch_sizes=()
            )
        code, _, err = call_main(export_cli.main, ["--model", model, "--out", out])
        assert code == 2 and "wait for it to finish, or choose another --out" in err
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert export.not_an_export(out) == ""  # the first export, whole
    assert sorted(os.listdir(tmp_path)) == ["gen", "vae"]  # its lock is gone too


def test_overwrite_refuses_an_export_folder_holding_other_files(tmp_path, small_vae):
    out = tmp_path / "gen"
    export.export_generator(small_vae, out, variants=("float32",), static_batch_sizes=())
    for extra in ("notes.txt", "saved_model/mine.txt"):
        (out / extra).write_text("mine")
        before = tree_digest(out)
        with pytest.raises(FileExistsError, match=f"also holds {extra}"):
            export.export_generator(
                small_vae, out, overwrite=True, variants=("float32",), static_batch_sizes=()
            )
        assert tree_digest(out) == before
        (out / extra).unlink()
    export.export_generator(
        small_vae, out, overwrite=True, variants=("float32",), static_batch_sizes=()
    )
    assert sorted(os.listdir(tmp_path)) == ["gen"]


def test_a_model_file_in_a_run_dir_takes_the_runs_lock(tmp_path):
    from keras_vae import cli
    from keras_vae.training import run_dir

    run = tmp_path / "run"
    model = saved_vae(run)
    with run_dir.lock(str(run)):  # as a fit-prior or train.py writing the run would
        code, _, err = call_main(export_cli.main, ["--model", model, "--variants", "float32"])
        assert code == 2 and "in use by process" in err
        assert "--run-dir" not in err and "pass --out outside it" in err
        code, _, err = call_main(cli.main, ["fit-prior", "--model", model])
        assert code == 2 and "in use by process" in err
        assert "--run-dir" not in err and "run the same command again" in err
    assert not (run / "export").exists() and not (run / "model_export").exists()
    # Exporting RUN/model.keras writes RUN/export, where fit-prior's hint sends it.
    assert cli.default_export_dir(model) == str(run / "export")
    code, _, err = call_main(export_cli.main, ["--model", model, "--variants", "float32"])
    assert code == 0, err[-2000:]
    assert (run / "export" / "generator.json").exists()
    assert not (run / "model_export").exists()


@pytest.fixture
def small_disk(tmp_path_factory):
    """A function mounting a tmpfs of the given size (a real full disk); skips without root."""
    mounted = []

    def mount(size):
        directory = tmp_path_factory.mktemp("disk")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(directory)
        return directory

    yield mount
    for directory in mounted:
        subprocess.run(["umount", str(directory)], check=True)


# Sizes at which a different write of the export fills the disk: the SavedModel
# (TensorFlow), the converter's input, a .tflite (Python).
@pytest.mark.parametrize("size", ["60k", "120k", "180k"])
def test_a_full_disk_is_one_line_naming_the_export(tmp_path, small_disk, size):
    model = saved_vae(tmp_path / "vae")
    disk = small_disk(size)
    code, out, err = call_main(
        export_cli.main, ["--model", model, "--out", disk / "gen", "--variants", "float32", "int8"]
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err[-3000:]
    assert "No space left on device" in err and str(disk / "gen") in err
    assert ".tmp-" not in err and "frozen" not in err
    assert os.listdir(disk) == []  # no staging folder, no lock


# `keras-vae export` of each model file given, in one fresh process: [exit code, stderr].
EXPORT_EACH = """
import contextlib, io, json, sys
from keras_vae import cli
results = []
for model, out in zip(sys.argv[1::2], sys.argv[2::2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["export", "--model", model, "--out", out, "--variants", "float32"])
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_a_prior_of_absurd_scale_is_refused_before_converting(tmp_path):
    d = 3
    huge_cholesky = priors.GaussianMixture([1.0], np.zeros((1, d)), [np.eye(d) * 1e200])
    huge_means = priors.GaussianMixture([1.0], np.full((1, d), 1e300), [np.eye(d)])
    cases = (("cholesky", huge_cholesky, "cholesky reach 1e+200"), ("means", huge_means, "means"))
    argv = []
    for name, prior, _ in cases:
        argv += [saved_vae(tmp_path / name, latent_dim=d, prior=prior), tmp_path / f"{name}_gen"]
    # In a fresh process: the LiteRT converter crashes on such constants.
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_EACH, *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for (name, _, what), (code, stderr) in zip(
        cases, json.loads(result.stdout.strip().splitlines()[-1]), strict=True
    ):
        assert code == 2, (name, code, stderr[-2000:])
        assert len(stderr.strip().splitlines()) == 1, stderr[-2000:]
        assert what in stderr and "--prior standard" in stderr
        out = tmp_path / f"{name}_gen"
        assert not out.exists() and f".{out.name}.lock" not in os.listdir(tmp_path)
    # The standard prior exports the same model.
    code, _, err = call_main(
        export_cli.main,
        ["--model", tmp_path / "means" / "model.keras", "--variants", "float32", "--prior",
         "standard", "--static-batch-sizes"],
    )  # fmt: skip
    assert code == 0, err[-2000:]


def test_a_huge_static_batch_is_refused_up_front(tmp_path, small_vae):
    model = saved_vae(tmp_path / "vae")
    code, _, err = call_main(
        export_cli.main, ["--model", model, "--static-batch-sizes", "16", "1000000000"]
    )
    assert code == 2 and "between 1 and 1024; got [16, 1000000000]" in err
    with pytest.raises(ValueError, match="between 1 and 1024"):
        export.export_generator(small_vae, tmp_path / "gen", static_batch_sizes=(10**9,))
    assert sorted(os.listdir(tmp_path)) == ["vae"]
    assert sorted(os.listdir(tmp_path / "vae")) == ["model.keras"]


def test_a_keras_load_error_is_one_line(tmp_path):
    import zipfile

    from keras_vae.training import run_dir

    # model.keras of a latent_dim 4 VAE with the weights of a latent_dim 5 one:
    # Keras's own message spans six lines.
    four, five = saved_vae(tmp_path / "four"), saved_vae(tmp_path / "five", latent_dim=5)
    mixed = tmp_path / "mixed.keras"
    with zipfile.ZipFile(four) as a, zipfile.ZipFile(five) as b, zipfile.ZipFile(mixed, "w") as z:
        for name in a.namelist():
            z.writestr(name, (b if name == "model.weights.h5" else a).read(name))
    with pytest.raises(run_dir.ModelFileError, match="is not a loadable .keras model") as error:
        run_dir.load_model(str(mixed))
    assert "\n" not in str(error.value) and "could not be loaded" in str(error.value)
    code, _, err = call_main(export_cli.main, ["--model", mixed, "--out", tmp_path / "gen"])
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_a_corrupt_config_json_is_named_and_generate_still_works(tmp_path):
    from keras_vae import cli

    run = tmp_path / "run"
    saved_vae(run)
    (run / "config.json").write_text("")  # a disk that filled as it was written
    code, _, err = call_main(export_cli.main, ["--model", run, "--variants", "float32"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{run / 'config.json'} is not a run's settings (Expecting value" in err
    assert f"--model {run / 'model.keras'}" in err
    code, _, err = call_main(cli.main, ["generate", "--model", run, "--out", tmp_path / "g.png"])
    assert code == 0, err[-2000:]
    assert (tmp_path / "g.png").stat().st_size > 0


def test_an_out_under_a_file_is_one_line_naming_it(tmp_path):
    model = saved_vae(tmp_path / "vae")
    (tmp_path / "file").write_text("mine")
    code, _, err = call_main(
        export_cli.main, ["--model", model, "--out", tmp_path / "file" / "gen"]
    )
    assert code == 2 and err.strip() == (
        f"keras-vae export: error: [Errno 17] File exists: '{tmp_path / 'file'}'"
    )
    assert (tmp_path / "file").read_text() == "mine"


def test_the_converter_gc_skips_the_live_objects_and_a_freeze_of_the_process_stays():
    import gc

    assert gc.get_freeze_count() == 0
    with export._gc_skips_live_objects():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()  # an app that froze its objects (before forking, say)
    try:
        frozen = gc.get_freeze_count()
        with export._gc_skips_live_objects():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_run_dirs_export_writes_the_files_its_run_chose_unless_told_otherwise(tmp_path):
    from keras_vae.training.config import TrainingConfig

    run = tmp_path / "run"
    saved_vae(run)
    chosen = TrainingConfig(export_variants=("float32",), export_static_batch_sizes=(16,))
    (run / "config.json").write_text(chosen.to_json())

    def tflite_files(out):
        return sorted(name for name in os.listdir(out) if name.endswith(".tflite"))

    code, _, err = call_main(export_cli.main, ["--model", run, "--out", tmp_path / "a"])
    assert code == 0, err[-2000:]
    assert tflite_files(tmp_path / "a") == [
        "generator_float32.tflite",
        "generator_float32_b16.tflite",
    ]
    argv = ["--model", run, "--out", tmp_path / "b", "--variants", "float16", "float32"]
    code, _, err = call_main(export_cli.main, [*argv, "--static-batch-sizes"])
    assert code == 0, err[-2000:]
    assert tflite_files(tmp_path / "b") == ["generator_float16.tflite", "generator_float32.tflite"]
