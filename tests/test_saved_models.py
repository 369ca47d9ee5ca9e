"""Models saved by keras_vae 0.1.0 (tests/data/saved_models) load, generate and export.

The files name their classes as Keras registered them ("keras_vae>VAE",
"keras_vae>FusedAdam", ...), not by module path, so moving a class between
modules must not break them; these tests fail when it does.
"""

import os

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae.cli import main as keras_vae_main
from keras_vae.export import generator
from keras_vae.training import run_dir
from tests.testing import REPO_ROOT, call_main

SAVED = os.path.join(REPO_ROOT, "tests", "data", "saved_models")
Z = np.array([[0.5, -1.0]], np.float32)


@pytest.mark.parametrize("name, cls", [("vae", "VAE"), ("autoencoder", "Autoencoder")])
def test_a_saved_model_loads_with_its_weights_optimizer_and_priors(name, cls):
    keras_vae.register_serializable_classes()
    model = keras.models.load_model(os.path.join(SAVED, f"{name}.keras"))
    assert type(model) is getattr(keras_vae, cls)
    assert type(model.optimizer) is keras_vae.FusedAdam
    assert set(model.priors) == {"standard", "gaussian", "gmm"} and len(model.prior.weights) == 2
    expected = np.load(os.path.join(SAVED, "decoded.npz"))[name]
    np.testing.assert_allclose(np.asarray(model.decode(Z)), expected, atol=1e-6)


def test_a_saved_vae_generates_and_exports_from_the_command_line(tmp_path):
    path = os.path.join(SAVED, "vae.keras")
    model, config = run_dir.load_model(path)
    assert config is None and model.image_shape == (8, 8, 1)
    code, _, err = call_main(
        keras_vae_main, ["generate", "--model", path, "--out", tmp_path / "g.png", "--n", 4]
    )
    assert code == 0, err
    assert (tmp_path / "g.png").stat().st_size > 0
    out = tmp_path / "export"
    generator.export_generator(model, out, variants=("float32",), static_batch_sizes=())
    images = generator.run_tflite_generate(str(out / "generator_float32.tflite"), Z)["images"]
    np.testing.assert_allclose(images, np.asarray(model.decode(Z)), atol=1e-5)
