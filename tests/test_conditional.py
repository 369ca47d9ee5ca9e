"""The conditional VAE: trained on images and labels, it draws the label it is asked for."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import train
from keras_vae import VAE, ConditionalVAE, cli, datasets
from keras_vae.generation import Codec
from keras_vae.models import losses, priors
from keras_vae.training import run_dir
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from keras_vae.utils import images as image_io
from tests import generator_check
from tests.testing import (
    built_once,
    call_main,
    prior_draws,
    run_generator_check,
    run_serialization_test,
    tiny_config,
)

FOUR = ["top", "upper", "lower", "bottom"]
TOLERANCE = {"saved_model": 1e-5, "float32": 1e-5, "float16": 2e-2, "int8": 0.1}


def bands(count, seed=0):
    """8x8 images of 4 classes: class k is bright in rows 2k and 2k+1, dim noise elsewhere."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, count)
    images = rng.uniform(0.0, 0.1, (count, 8, 8, 1)).astype(np.float32)
    for k in range(4):
        images[labels == k, 2 * k : 2 * k + 2] = 0.9
    return images, labels


def small_model(**changes):
    values = {
        "label_names": FOUR,
        "image_shape": (8, 8, 1),
        "preset": "mlp",
        "latent_dim": 2,
        "encoder_units": (32,),
        "decoder_units": (32,),
        **changes,
    }
    return ConditionalVAE(**values)


def test_samples_show_the_class_asked_for_and_the_same_z_changes_with_the_label():
    images, labels = bands(1024)
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(images, labels, epochs=15, batch_size=64, verbose=0)
    for k, name in enumerate(FOUR):
        drawn = keras.ops.convert_to_numpy(model.sample(64, labels=name, seed=k))
        brightest_band = drawn.mean(axis=(2, 3)).reshape(64, 4, 2).mean(axis=2).argmax(axis=1)
        assert (brightest_band == k).mean() >= 0.95, (name, np.bincount(brightest_band))
    z = np.zeros((4, 2), np.float32)
    each = keras.ops.convert_to_numpy(model.decode(z, model.each_label()))
    assert np.abs(each[0] - each[3]).max() > 0.5  # the label, not z, decides the band


def test_the_loss_is_the_conditional_bound_of_its_two_networks():
    images, labels = bands(16)
    model = small_model()
    vectors = model.label_vectors(labels)
    mean, log_var = (keras.ops.convert_to_numpy(t) for t in model.encoder([images, vectors]))
    _, kl = model.loss_terms(images, vectors)
    expected_kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kl), expected_kl, rtol=1e-5, atol=1e-5)
    logits = keras.ops.convert_to_numpy(model.decoder([mean, vectors]))
    reconstruction = keras.ops.convert_to_numpy(model((images, vectors)))
    np.testing.assert_allclose(reconstruction, 1.0 / (1.0 + np.exp(-logits)), atol=1e-6)
    bernoulli = keras.ops.convert_to_numpy(losses.bernoulli_nll(images, logits))
    sampled = keras.ops.convert_to_numpy(model.reconstruction_nll(images, logits))
    np.testing.assert_allclose(sampled, bernoulli, rtol=1e-6)
    # Integer classes and one-hot vectors are the same labels to evaluate.
    model.compile(optimizer="adam")
    by_index = model.evaluate(images, labels, verbose=0, return_dict=True)
    by_vector = model.evaluate(images, vectors, verbose=0, return_dict=True)
    assert by_index["kl_loss"] == pytest.approx(by_vector["kl_loss"], rel=1e-6)


def test_labels_by_name_index_or_vector():
    model = small_model()
    np.testing.assert_array_equal(model.label_vectors("Lower", count=2), [[0, 0, 1, 0]] * 2)
    np.testing.assert_array_equal(
        model.label_vectors(["top", 3, "1"]), [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    )
    np.testing.assert_array_equal(model.label_vectors(np.array([2])), [[0, 0, 1, 0]])
    mixed = model.label_vectors([[0.5, 0.5, 0, 0]])
    np.testing.assert_array_equal(mixed, [[0.5, 0.5, 0, 0]])
    faces = small_model(label_names=["Smiling", "Eyeglasses"], label_type="attributes")
    np.testing.assert_array_equal(faces.label_vectors({"smiling": 1}), [[1, 0]])
    np.testing.assert_array_equal(faces.label_vectors([{"Eyeglasses": 1}, {}]), [[0, 1], [0, 0]])
    # Integers are class indices only for classes: for attributes they are a vector.
    np.testing.assert_array_equal(faces.label_vectors(np.array([0, 1])), [[0, 1]])
    np.testing.assert_array_equal(faces.label_vectors([[1, 1], [0, 1]]), [[1, 1], [0, 1]])


def test_a_class_index_out_of_range_stops_training_and_names_the_range():
    model = small_model()
    model.compile(optimizer="adam", jit_compile=False)  # XLA drops asserts (on a GPU: auto)
    images = np.zeros((4, 8, 8, 1), "float32")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Class indices must lie in \[0, 4\)"):
        model.fit(images, np.array([0, 1, 2, 4]), batch_size=4, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="classes: 0 top, 1 upper"):
        model.evaluate(images, np.array([0, 1, -1, 3]), batch_size=4, verbose=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.label_vectors("sideways"), r"Unknown class 'sideways'\. Valid classes: 0 top"),
        (lambda m: m.label_vectors(4), r"Unknown class 4\. Valid classes: .*3 bottom"),
        (lambda m: m.label_vectors(np.zeros((2, 5))), "have 4 values .*got labels of shape"),
        (lambda m: m.label_vectors(["top", "upper"], count=3), "Got 2 labels for 3 images"),
        (lambda m: m.label_vectors(7.0), r"have 4 values .*got labels of shape \(\)"),
        (
            lambda m: Codec(m).decode(np.zeros((3, 2)), np.zeros((2, 4))),
            r"Expected labels of shape \(3, 4\), one vector per image or code; got \(2, 4\)",
        ),
        (lambda m: m.label_vectors({"top": 1}), "labels are classes"),
        (lambda m: m.sample(2), "draws images of a label: pass labels"),
        (lambda m: m.fit(np.zeros((4, 8, 8, 1)), verbose=0), "fit\\(images, labels\\)"),
        (lambda m: VAE(image_shape=(8, 8, 1)).sample(2, labels=1), "is unconditional"),
        (lambda m: small_model(label_names=["only"]), "at least 2 label names"),
        (lambda m: small_model(label_names=["a", "a"]), "repeated: \\['a'\\]"),
        (lambda m: small_model(learned_prior="vamp"), "trains under N\\(0, I\\)"),
    ],
)
def test_bad_labels_are_one_line_errors_naming_the_valid_ones(call, message):
    model = small_model()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=message):
        call(model)


def test_save_and_load_keep_the_labels_and_the_weights(tmp_path):
    model = small_model(label_type="attributes", label_names=["Smiling", "Eyeglasses"])
    z = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    labels = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    loaded = run_serialization_test(model, tmp_path, call=lambda m: m.decode(z, labels))
    assert loaded.label_names == ("Smiling", "Eyeglasses") and loaded.label_type == "attributes"


def test_config_takes_conditional_under_the_standard_prior_only():
    assert TrainingConfig(conditional=True).learned_prior == "standard"
    assert TrainingConfig().learned_prior == "vamp"
    with pytest.raises(ValueError, match="--conditional trains under N\\(0, I\\)"):
        TrainingConfig(conditional=True, learned_prior="vamp")


def test_train_py_conditional_writes_a_run_of_every_class(conditional_run):
    config = json.loads((conditional_run / "config.json").read_text())
    assert config["conditional"] is True and config["learned_prior"] == "standard"
    model = keras.models.load_model(conditional_run / "model.keras")
    assert isinstance(model, ConditionalVAE)
    assert model.label_names == datasets.CLASS_NAMES["fashion_mnist"]
    metrics = json.loads((conditional_run / "metrics.json").read_text())
    assert np.isfinite(metrics["negative_elbo"]) and metrics["prior"]["default"] == "gmm"
    # samples.png: 8 codes, each drawn as the 10 classes (28x28 tiles, 1-pixel padding).
    width, height = Image.open(conditional_run / "samples.png").size
    assert (width, height) == (10 * 29 + 1, 8 * 29 + 1)
    width, height = Image.open(conditional_run / "generated_tflite.png").size
    assert (width, height) == (10 * 29 + 1, 8 * 29 + 1)
    generator = json.loads((conditional_run / "export" / "generator.json").read_text())
    assert generator["conditioning"]["names"] == list(datasets.CLASS_NAMES["fashion_mnist"])
    assert generator["conditioning"]["label_type"] == "class"
    assert generator["signatures"]["generate"]["inputs"]["label"]["shape"] == [None, 10]
    assert generator["attribute_directions"] is None  # the label is the control


@pytest.fixture(scope="module")
def fresh_outputs(conditional_run, tmp_path_factory):
    """generator_check.py on the conditional export, in a process without keras_vae (once a run)."""
    model = keras.models.load_model(conditional_run / "model.keras")
    z = np.random.default_rng(42).standard_normal((16, model.latent_dim)).astype(np.float32)
    work, _, _ = built_once(
        tmp_path_factory,
        "conditional_generator",
        lambda work: run_generator_check(conditional_run / "export", z, work),
    )
    metadata = json.loads((conditional_run / "export" / "generator.json").read_text())
    labels = generator_check.labels(metadata, len(z))["label"]
    expected = keras.ops.convert_to_numpy(model.decode(z, labels))
    return model, metadata, z, labels, expected, dict(np.load(work / "out.npz"))


def test_every_runtime_draws_each_label_as_the_model_does_in_a_fresh_process(fresh_outputs):
    model, metadata, _, _, expected, outputs = fresh_outputs
    checked = 0
    for key, facts in metadata["artifacts"].items():
        variant = "saved_model" if key == "saved_model" else facts["variant"]
        if facts.get("layout") == "static":
            batch = facts["batch"]
            for runtime in ("interpreter", "compiled_model"):
                images = outputs[f"{key}/{runtime}/images"].reshape(batch, *model.image_shape)
                error = np.max(np.abs(images - expected[:batch]))
                assert error <= TOLERANCE[variant], (key, runtime, error)
                checked += 1
            continue
        for batch in (1, 16):
            error = np.max(np.abs(outputs[f"{key}/images/{batch}"] - expected[:batch]))
            assert error <= TOLERANCE[variant], (key, batch, error)
            checked += 1
    assert checked == 4 * 2 + 6 * 2  # 4 dynamic runtimes, 6 static files on 2 APIs


def test_the_label_input_changes_the_picture_and_sample_draws_with_it(fresh_outputs):
    model, _, z, labels, expected, outputs = fresh_outputs
    # The same z as another class: a different picture (the label is wired in).
    other = np.roll(labels, 1, axis=0)
    moved = keras.ops.convert_to_numpy(model.decode(z, other))
    assert np.abs(moved - expected).max() > 0.1
    eps, u = generator_check.sampler_inputs(len(z), model.latent_dim)
    prior_z = outputs["saved_model/sample_inputs/z"]
    drawn = keras.ops.convert_to_numpy(model.decode(prior_z, labels))
    assert np.max(np.abs(outputs["saved_model/sample_inputs/images"] - drawn)) <= 1e-5
    for variant in ("float32", "float16"):
        images = outputs[f"{variant}/sample_inputs/images"]
        assert np.max(np.abs(images - drawn)) <= TOLERANCE[variant]
    # A wrong-width z is refused by every dynamic runtime, label or not.
    errors = json.loads(str(outputs["errors"]))
    for variant in ("saved_model", "float32", "float16", "int8"):
        assert all(errors[variant]), (variant, errors[variant])


def test_keras_vae_generate_draws_the_label_by_name_or_index(conditional_run, tmp_path):
    by_name, by_index = tmp_path / "sneaker.png", tmp_path / "seven.png"
    for label, out in (("Sneaker", by_name), ("7", by_index)):
        argv = ["generate", "--model", conditional_run, "--label", label, "--out", out]
        code, _, err = call_main(cli.main, [*argv, "--n", "8"])
        assert code == 0, err
    assert by_name.read_bytes() == by_index.read_bytes()
    # The z come from the prior fitted to the class's own codes, as model.sample draws them.
    model, _ = run_dir.load_model(conditional_run)
    drawn = model.sample(8, seed=0, labels="Sneaker")
    scale = image_io.tile_scale(model.image_shape)
    expected = image_io.labelled_grid(np.asarray(drawn), 1, 8, scale=scale, padding=1)
    grid = np.asarray(Image.open(by_name)).reshape(expected.shape)
    assert np.abs(grid.astype(int) - expected).max() <= 1
    every = tmp_path / "every.png"
    code, _, err = call_main(
        cli.main,
        ["generate", "--model", conditional_run, "--every-label", "--n", "3", "--out", every],
    )
    assert code == 0, err
    assert Image.open(every).size[0] > Image.open(by_name).size[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "is a conditional VAE: say what to draw with --label NAME or --every-label"),
        (["--label", "Boot"], "Unknown class 'Boot'. Valid classes: 0 T-shirt/top"),
        (["--label", "10"], "Unknown class '10'"),
        (["--attribute", "Smiling=1"], "labels are classes"),
    ],
)
def test_generate_on_a_conditional_run_without_a_valid_label_is_one_line(
    conditional_run, tmp_path, argv, message
):
    out = tmp_path / "never.png"
    code, _, err = call_main(
        cli.main, ["generate", "--model", conditional_run, "--out", out, *argv]
    )
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_interpolate_moves_a_conditional_run_s_label_with_its_code(
    conditional_run, tmp_path, monkeypatch
):
    from keras_vae.cli import commands
    from keras_vae.generation import interpolate

    drawn = {}
    monkeypatch.setattr(
        commands, "_save_grid", lambda path, images, *a, **k: drawn.update(x=images)
    )
    argv = ["interpolate", "--model", conditional_run, "--indices", "0", "1"]
    code, _, err = call_main(
        cli.main, [*argv, "--steps", "4", "--method", "lerp", "--out", "m.png"]
    )
    assert code == 0, err
    # Each end encoded with its own label; the label moves linearly with the code.
    model, _ = run_dir.load_model(conditional_run)
    images, classes = datasets.load("fashion_mnist", "test")
    ends = np.eye(10, dtype="float32")[classes[:2]]
    assert classes[0] != classes[1]
    codec = Codec(model)
    codes = codec.encode(images[:2], ends)
    t = np.linspace(0, 1, 4)[:, None]
    path_labels = (1 - t) * ends[0] + t * ends[1]
    path = codec.decode(interpolate(codes[0], codes[1], 4, "lerp"), path_labels)
    np.testing.assert_allclose(drawn["x"][1:5], path, atol=1e-5)
    np.testing.assert_array_equal(drawn["x"][[0, 5]], images[:2])
    one_label = codec.decode(interpolate(codes[0], codes[1], 4, "lerp"), ends[[0] * 4])
    assert np.abs(drawn["x"][3:5] - one_label[2:]).max() > 0.05


def test_the_latent_toolkit_refuses_a_conditional_run_and_generate_an_unconditional_label(
    conditional_run, trained_run, tmp_path
):
    out = tmp_path / "never.png"
    argv = ["average", "--model", conditional_run, "--attribute", "Bag", "--out", out]
    code, _, err = call_main(cli.main, argv)
    assert code != 0 and "works on unconditional VAEs" in err, err
    argv = ["interpolate", "--model", conditional_run, "--images", "a.png", "b.png", "--out", out]
    code, _, err = call_main(cli.main, argv)
    assert code != 0 and "interpolate dataset images with --indices" in err, err
    run_dir, _ = trained_run
    code, _, err = call_main(
        cli.main, ["generate", "--model", run_dir, "--label", "7", "--out", out]
    )
    assert code != 0 and "is an unconditional VAE" in err and "drop --label" in err, err
    assert not out.exists()


def labelled_folder(root, per_class=24):
    """root/circle, root/square: 16x16 grey shapes; with attributes.csv beside them if asked."""
    for name in ("circle", "square"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((16, 16, 3), np.uint8)
            if name == "square":
                pixels[4:12, 4:12] = 200 + i
            else:
                yy, xx = np.mgrid[:16, :16]
                pixels[(yy - 8) ** 2 + (xx - 8) ** 2 < 20] = 200 + i
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


FOLDER_ARGS = ["--image-size", "16", "--epochs", "1", "--batch-size", "16", "--verbose", "0"]
FOLDER_ARGS += ["--prior", "standard", "--export-variants", "float32"]
FOLDER_ARGS += ["--export-static-batch-sizes", "16"]


def test_keras_vae_train_conditional_on_a_folder_of_classes(tmp_path):
    pictures = labelled_folder(tmp_path / "pictures")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "folder", "--data-dir", pictures, "--conditional"]
    code, _, err = call_main(cli.main, [*argv, *FOLDER_ARGS, "--run-dir", run])
    assert code == 0, err
    model = keras.models.load_model(run / "model.keras")
    assert model.label_names == ("circle", "square") and model.label_type == "class"
    code, _, err = call_main(
        cli.main, ["generate", "--model", run, "--label", "square", "--out", tmp_path / "s.png"]
    )
    assert code == 0, err


def test_a_folder_with_only_attributes_conditions_on_them(tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rows = ["file,Bright,Square"]
    for i in range(40):
        pixels = np.full((16, 16, 3), 200 if i % 2 else 40, np.uint8)
        Image.fromarray(pixels).save(pictures / f"{i}.png")
        rows.append(f"{i}.png,{1 if i % 2 else -1},{1 if i % 4 < 2 else -1}")
    (pictures / "attributes.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    argv = ["train", "--dataset", "folder", "--data-dir", pictures, "--conditional"]
    code, _, err = call_main(cli.main, [*argv, *FOLDER_ARGS, "--run-dir", run])
    assert code == 0, err
    generator = json.loads((run / "export" / "generator.json").read_text())
    assert generator["conditioning"]["label_type"] == "attributes"
    assert generator["conditioning"]["names"] == ["Bright", "Square"]
    out = tmp_path / "bright.png"
    argv = ["generate", "--model", run, "--attribute", "bright=1", "--out", out]
    code, _, err = call_main(cli.main, argv)
    assert code == 0 and out.exists(), err
    argv = ["generate", "--model", run, "--label", "bright", "--out", out]
    code, _, err = call_main(cli.main, argv)
    assert code != 0 and "draws attributes, not classes: ask with --attribute NAME=1" in err, err


def test_conditional_on_a_folder_without_labels_says_how_to_label_it(tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(8):
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(pictures / f"{i}.png")
    argv = ["--dataset", "folder", "--data-dir", pictures, "--conditional"]
    code, _, err = call_main(train.main, [*argv, *FOLDER_ARGS, "--run-dir", tmp_path / "run"])
    assert code != 0 and "no class sub-folders and no attributes.csv" in err, err
    assert len(err.strip().splitlines()) == 1


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.weights = [w.numpy() for w in self.model.decoder.weights]
        raise KeyboardInterrupt


class _AtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = [w.numpy() for w in self.model.decoder.weights]


def test_an_interrupted_conditional_run_resumes_from_its_weights(tmp_path, monkeypatch):
    config = tiny_config(epochs=2, conditional=True, prior="standard")
    added = []
    build = training.build_callbacks
    monkeypatch.setattr(training, "build_callbacks", lambda *a, **k: [*build(*a, **k), added[-1]])
    with tfds.testing.mock_data(num_examples=64):
        added.append(_StopAfterFirstEpoch())
        with pytest.raises(KeyboardInterrupt):
            training.train_and_evaluate(config, str(tmp_path), verbose=0)
        added.append(_AtStart())
        metrics = training.train_and_evaluate(config, str(tmp_path), verbose=0)
    for stopped, resumed in zip(added[0].weights, added[1].weights, strict=True):
        np.testing.assert_array_equal(stopped, resumed)
    assert metrics["epochs"] == 2
    assert isinstance(keras.models.load_model(tmp_path / "model.keras"), ConditionalVAE)


def test_a_prior_per_class_names_the_class_it_cannot_fit():
    codes = np.random.default_rng(0).standard_normal((30, 2))
    classes = np.array([0] * 28 + [1] * 2)
    with pytest.raises(ValueError, match="Class 'upper': Too few codes: 2, need at least 3"):
        priors.fit_per_class("gaussian", codes, classes, 2, class_names=["top", "upper"])
    with pytest.raises(ValueError, match="Class 'b' has no codes"):
        priors.fit_per_class("gmm", codes, np.zeros(30, int), 2, class_names=["a", "b"])


def test_a_prior_per_class_draws_each_label_from_its_own_codes():
    rng = np.random.default_rng(0)
    centres = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    classes = rng.integers(0, 3, 3000)
    codes = centres[classes] + rng.standard_normal((3000, 2)) * [0.5, 1.0]
    prior = priors.fit_per_class("gmm", codes, classes, 3, components=2, seed=0)
    assert prior.components == 6 and prior.label_weights.shape == (3, 6)
    np.testing.assert_allclose(prior.weights, np.bincount(classes) / 3000 @ prior.label_weights)
    for k in range(3):
        z = prior.sample(500, seed=k, labels=np.eye(3)[[k] * 500])
        np.testing.assert_allclose(z.mean(axis=0), centres[k], atol=0.15)
    # log p(z | y) is high for the code's own class, far lower for another.
    z = centres[[0, 1]]
    own = prior.log_prob(z, np.eye(3)[[0, 1]])
    other = prior.log_prob(z, np.eye(3)[[1, 0]])
    assert np.all(own - other > 10)
    # Without a label: the mixture over the classes, p(z) = sum_y p(y) p(z | y).
    frequencies = np.bincount(classes) / len(classes)
    per_label = [np.exp(prior.log_prob(z, np.eye(3)[[k, k]])) for k in range(3)]
    np.testing.assert_allclose(np.exp(prior.log_prob(z)), frequencies @ per_label, rtol=1e-9)
    again = priors.from_dict(json.loads(json.dumps(prior.to_dict())))
    np.testing.assert_array_equal(again.label_weights, prior.label_weights)
    with pytest.raises(ValueError, match="label_weights must be"):
        priors.GaussianMixture(prior.weights, prior.means, prior.cholesky, label_weights=[[1.0]])


def test_the_exported_sampler_draws_the_label_s_class_as_an_app_would(
    conditional_run, fresh_outputs
):
    model, metadata, z, labels, _, outputs = fresh_outputs
    prior = metadata["latent_prior"]
    assert prior["kind"] == "gmm" and len(prior["label_weights"]) == 10  # fitted per class
    eps, u = generator_check.sampler_inputs(len(z), model.latent_dim)
    expected_z, expected_components = prior_draws(prior, eps, u, labels)
    for variant in ("saved_model", "float32"):
        np.testing.assert_allclose(outputs[f"{variant}/sample_inputs/z"], expected_z, atol=1e-5)
        np.testing.assert_array_equal(
            outputs[f"{variant}/sample_inputs/component"], expected_components
        )
    # Each label's components are its own class's.
    weights = np.asarray(prior["label_weights"])
    assert np.all(weights[labels.argmax(axis=1), expected_components] > 0)
    # sample_random(label) follows the labels' mixtures too.
    drawn = outputs["float32/sample/component"]
    random_labels = generator_check.labels(metadata, len(drawn))["label"]
    assert np.all(weights[random_labels.argmax(axis=1), drawn] > 0)


def test_a_mixed_bfloat16_conditional_vae_trains_with_float32_losses():
    images, labels = bands(64)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = small_model()
        model.compile(optimizer="adam")
        history = model.fit(images, labels, epochs=2, batch_size=16, verbose=0)
        drawn = model.sample(4, labels="top", seed=0)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert model.decoder.compute_dtype == "bfloat16"
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert drawn.dtype == "float32"


def test_fit_prior_refits_a_conditional_run_per_class_on_its_own_labelled_split(
    conditional_run, tmp_path
):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(conditional_run, run)
    code, _, err = call_main(cli.main, ["fit-prior", "--model", run, "--prior", "gaussian"])
    assert code == 0, err
    model = keras.models.load_model(run / "model.keras")
    assert model.prior.kind == "gaussian" and model.prior.components == 10
    np.testing.assert_array_equal(model.prior.label_weights, np.eye(10))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["prior"]["fits"]["gaussian"]["per_class"] is True
    argv = ["fit-prior", "--model", run, "--dataset", "fashion_mnist", "--limit", "100"]
    code, _, err = call_main(cli.main, argv)
    assert code != 0 and "training split, with the labels; drop --dataset and --limit." in err, err
    # model.keras alone, without its run dir, holds no labelled split to refit on.
    alone = shutil.copy(run / "model.keras", tmp_path / "alone.keras")
    argv = ["fit-prior", "--model", alone, "--prior", "gaussian"]
    code, _, err = call_main(cli.main, argv)
    assert code != 0 and "pass the run dir that train.py wrote." in err, err
