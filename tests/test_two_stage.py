"""The two-stage VAE: a second VAE on the codes, saved with the model, exported, browsed."""

import json

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_vae import VAE, generation
from keras_vae.models import priors
from keras_vae.training import train as training
from tests.testing import TINY, browse_run, real_errors, tiny_config


def two_clusters(count, seed=0):
    """4-D codes in two tight clusters at x = -2 and x = +2: nothing a Gaussian fits."""
    rng = np.random.default_rng(seed)
    side = np.where(rng.integers(0, 2, count) == 0, -2.0, 2.0)
    codes = 0.25 * rng.standard_normal((count, 4))
    codes[:, 0] += side
    return codes.astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    return generation.fit_two_stage(two_clusters(4000), epochs=30, seed=0)


def test_the_second_stage_learns_a_distribution_a_gaussian_cannot(fitted):
    codes = two_clusters(4000, seed=1)
    drawn = fitted.sample(4000, seed=2)
    assert drawn.shape == (4000, 4) and drawn.dtype == np.float32
    # Both clusters, in their proportions, and fewer draws in the empty middle than a
    # Gaussian fitted to the same codes puts there (a continuous map of N(0, I)
    # cannot jump the gap: after 30 epochs about a quarter of the draws cross it).
    assert 0.4 < np.mean(drawn[:, 0] > 0) < 0.6
    between = np.mean(np.abs(drawn[:, 0]) < 1.0)
    gaussian = priors.fit_gaussian(codes).sample(4000, seed=2)
    assert between < 0.8 * np.mean(np.abs(gaussian[:, 0]) < 1.0)
    # The narrow dimensions keep their spread (not passed off as likelihood noise).
    np.testing.assert_allclose(drawn[:, 1:].std(axis=0), codes[:, 1:].std(axis=0), rtol=0.25)
    # log_prob is a finite lower bound, and higher on the codes than far from them.
    inside, outside = fitted.log_prob(codes[:200]), fitted.log_prob(codes[:200] * 0 + 5.0)
    assert np.all(np.isfinite(inside)) and inside.mean() > outside.mean() + 5


def test_sample_is_the_numpy_decoder_of_seeded_normal_draws(fitted):
    u = np.random.default_rng(5).standard_normal((3, 4))
    np.testing.assert_allclose(fitted.sample(3, seed=5), fitted.decode(u), rtol=1e-6)
    z, components = fitted.sample(3, seed=5, return_components=True)
    assert not components.any()


def test_saved_and_loaded_with_the_model_as_the_default(fitted, tmp_path):
    model = VAE(**{**TINY, "latent_dim": 4})
    model.set_prior(fitted)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.prior, priors.TwoStagePrior)
    np.testing.assert_array_equal(loaded.prior.sample(5, seed=1), fitted.sample(5, seed=1))
    assert priors.from_dict(json.loads(json.dumps(fitted.to_dict()))).to_dict() == (
        fitted.to_dict()
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["decoder"].pop(), "decoder maps 4 values to as many"),
        (lambda d: d.update(log_scale=[float("nan")] * 4), "log_scale must be finite"),
        (lambda d: d["encoder"][0].__setitem__(1, [0.0]), "must be \\(kernel \\[in, out\\]"),
    ],
)
def test_a_damaged_two_stage_prior_is_refused_naming_what(fitted, change, message):
    values = json.loads(json.dumps(fitted.to_dict()))
    change(values)
    with pytest.raises(ValueError, match=message):
        priors.from_dict(values)


def test_fit_two_stage_refuses_codes_it_cannot_fit():
    with pytest.raises(ValueError, match="needs finite codes"):
        generation.fit_two_stage(np.array([[np.nan, 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="fit_two_stage\\(codes\\) makes it"):
        priors.fit("two_stage", np.zeros((10, 3)))


@pytest.mark.browser
def test_train_py_two_stage_prior_exports_and_the_explorer_samples_it(tmp_path):
    config = tiny_config(epochs=1, prior="two_stage", export_static_batch_sizes=(1, 16))
    with tfds.testing.mock_data(num_examples=64):
        metrics = training.train_and_evaluate(config, str(tmp_path / "run"), verbose=0)
    assert metrics["prior"]["default"] == "two_stage"
    assert "two_stage" in metrics["prior"]["test_log_likelihood"]
    export_dir = tmp_path / "run" / "export"
    metadata = json.loads((export_dir / "generator.json").read_text())
    assert metadata["latent_prior"]["kind"] == "two_stage"
    assert sorted(metadata["prior_artifacts"]) == ["prior_b1", "prior_b16"]
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    prior = model.prior
    from ai_edge_litert.interpreter import Interpreter

    # The dynamic file's sample: the prior's decoder, then the image decoder.
    eps = np.random.default_rng(0).standard_normal((6, model.latent_dim)).astype(np.float32)
    drawn = Interpreter(
        model_path=str(export_dir / "generator_float32.tflite")
    ).get_signature_runner("sample")(eps=eps, u=np.zeros(6, np.float32))
    np.testing.assert_allclose(drawn["z"], prior.decode(eps), atol=1e-5)
    expected = keras.ops.convert_to_numpy(model.decode(drawn["z"]))
    assert np.max(np.abs(drawn["images"] - expected)) <= 1e-5
    assert metadata["prior_artifacts"]["prior_b16"]["max_abs_error"] <= 1e-5
    # The explorer draws its grid through the static prior file, in the browser.
    seen = browse_run(tmp_path / "run", tmp_path / "site")
    assert seen["state"] == "ready" and real_errors(seen) == [], seen
    grid = seen["first_grid"]
    eps = np.array(grid["eps"], np.float64)
    assert eps.shape == (16, model.latent_dim)
    np.testing.assert_allclose(np.array(grid["codes"]), prior.decode(eps), atol=1e-4)
    assert "two-stage VAE" in grid["about"]
