"""The VampPrior: a prior learned with the model, in its bound, saved, resumed, exported."""

import json

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_vae import VAE
from keras_vae.models import likelihood, losses, priors
from keras_vae.models.layers import Sampling
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from tests.testing import TINY, assert_draws_follow_prior, tiny_config

VAMP = {**TINY, "learned_prior": "vamp", "pseudo_inputs": 5}


def images(count, seed=0):
    return np.random.default_rng(seed).uniform(size=(count, 28, 28, 1)).astype("float32")


def brute_force_log_prior(z, means, log_vars):
    """log((1/K) sum_k N(z; means[k], exp(log_vars[k]))), component by component, float64."""
    z, means, log_vars = (np.asarray(a, np.float64) for a in (z, means, log_vars))
    densities = [
        np.exp(-0.5 * np.sum(np.log(2 * np.pi) + lv + (z - m) ** 2 / np.exp(lv), axis=-1))
        for m, lv in zip(means, log_vars, strict=True)
    ]
    return np.log(np.mean(densities, axis=0))


def test_the_kl_term_is_log_q_minus_the_brute_force_mixture_at_the_sampled_z():
    model = VAE(seed=3, **VAMP)
    x = images(6)
    model.initialize_pseudo_inputs(images(5, seed=1))
    mean, log_var = (keras.ops.convert_to_numpy(t) for t in model.encode(x))
    # A fresh layer with the model's seed draws the eps the model's own layer draws first.
    z = keras.ops.convert_to_numpy(Sampling(seed=3)((mean, log_var)))
    means, log_vars = (keras.ops.convert_to_numpy(t) for t in model.pseudo_posteriors())
    log_q = brute_force_log_prior(z[None], mean[None], log_var[None])[0]  # one component
    expected = log_q - brute_force_log_prior(z, means, log_vars)
    _, kl = model.loss_terms(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kl), expected, rtol=1e-4, atol=1e-3)
    # Under N(0, I) the KL stays the analytic one.
    standard = VAE(seed=3, **TINY)
    _, kl = standard.loss_terms(x)
    mean, log_var = standard.encode(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(kl),
        keras.ops.convert_to_numpy(losses.kl_to_standard_normal(mean, log_var)),
    )


def test_the_mixture_density_is_stable_far_from_every_component():
    means = np.array([[0.0, 0.0], [1.0, -1.0]], np.float32)
    log_vars = np.array([[-6.0, -6.0], [-2.0, 0.0]], np.float32)
    z = np.array([[0.5, 0.3], [40.0, -40.0], [1e3, 1e3]], np.float32)
    got = keras.ops.convert_to_numpy(losses.log_mixture(z, means, log_vars))
    assert np.all(np.isfinite(got))  # exp() of each component alone underflows to 0
    # float64 brute force where it does not underflow; the largest component where it does.
    np.testing.assert_allclose(got[0], brute_force_log_prior(z[:1], means, log_vars)[0], rtol=1e-5)
    largest = max(
        -0.5 * np.sum(np.log(2 * np.pi) + lv + (z[2].astype(np.float64) - m) ** 2 / np.exp(lv))
        for m, lv in zip(means, log_vars, strict=True)
    )
    np.testing.assert_allclose(got[2], largest - np.log(2), rtol=1e-5)


def test_the_model_trains_its_pseudo_inputs_and_saves_and_loads_them(tmp_path):
    keras.utils.set_random_seed(0)
    model = VAE(seed=0, **VAMP)
    model.initialize_pseudo_inputs(images(5, seed=1))
    start = model.pseudo_input_images().numpy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images(64), epochs=3, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.max(np.abs(model.pseudo_input_images().numpy() - start)) > 1e-3  # learned
    assert model.prior.kind == "vamp" and model.prior.components == 5
    model.save(tmp_path / "vamp.keras")
    loaded = keras.models.load_model(tmp_path / "vamp.keras")
    assert (loaded.learned_prior, loaded.pseudo_inputs) == ("vamp", 5)
    z = np.random.default_rng(2).standard_normal((8, 3)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.log_prior(z)),
        keras.ops.convert_to_numpy(model.log_prior(z)),
    )
    assert loaded.prior.to_dict() == model.prior.to_dict()


def test_the_importance_weighted_nll_is_under_the_models_own_prior():
    model = VAE(seed=0, **VAMP)
    model.initialize_pseudo_inputs(images(5, seed=1))
    x = images(32, seed=4)
    # At k = 1 the estimate is the -ELBO, whose KL is the model's own (here the VampPrior).
    reconstruction, kl = model.loss_terms(x)
    elbo = float(np.mean(keras.ops.convert_to_numpy(reconstruction + kl)))
    iw = likelihood.importance_weighted_nll(model, x, k=1, seed=5)
    spread = float(np.std(keras.ops.convert_to_numpy(kl)))
    assert abs(iw - elbo) < 3 * spread / np.sqrt(len(x)) + 0.5
    assert abs(iw - elbo) < abs(
        float(np.mean(keras.ops.convert_to_numpy(reconstruction)))
        + float(np.mean(keras.ops.convert_to_numpy(losses.kl_to_standard_normal(*model.encode(x)))))
        - elbo
    )


def test_mixed_bfloat16_keeps_the_kl_finite_and_close():
    model = VAE(seed=0, **VAMP)
    model.initialize_pseudo_inputs(images(5, seed=1))
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        low = VAE(seed=0, **VAMP)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    low.set_weights(model.get_weights())
    z = np.random.default_rng(3).standard_normal((8, 3)).astype("float32") * 3
    got = keras.ops.convert_to_numpy(low.log_prior(z))
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model.log_prior(z)), rtol=0.05)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"pseudo_inputs": 5}, "pseudo_inputs \\(5\\) is the VampPrior's"),
        ({"learned_prior": "vamp", "pseudo_inputs": 0}, "must be an integer >= 1"),
        ({"learned_prior": "flow"}, "Valid learned_priors: standard, vamp"),
    ],
)
def test_bad_vamp_arguments_say_what_to_pass(arguments, message):
    with pytest.raises(ValueError, match=message):
        VAE(**{**TINY, **arguments})


def test_a_model_without_a_vamp_prior_says_how_to_get_one():
    with pytest.raises(ValueError, match="learned_prior='vamp'"):
        VAE(**TINY).get_prior("vamp")
    with pytest.raises(ValueError, match="is the VampPrior's"):
        VAE(**TINY).initialize_pseudo_inputs(images(2))
    with pytest.raises(ValueError, match="needs 5 images"):
        VAE(**VAMP).initialize_pseudo_inputs(images(2))
    with pytest.raises(ValueError, match="learned with the model"):
        priors.fit("vamp", np.zeros((10, 3)))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"pseudo_inputs": 8}, "pass --learned-prior vamp too"),
        ({"prior": "vamp"}, "samples from the VampPrior the model learned"),
    ],
)
def test_config_refuses_vamp_flags_without_a_vamp_model(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(learned_prior="standard", **changes)
    TrainingConfig(**changes)  # train.py's default model learns a VampPrior


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Ctrl-C at the end of the first epoch, after the backup; keeps the pseudo-inputs."""

    def on_epoch_end(self, epoch, logs=None):
        self.pseudo_inputs = self.model.pseudo_input_logits.numpy()
        raise KeyboardInterrupt


class _AtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.pseudo_inputs = self.model.pseudo_input_logits.numpy()


def test_train_py_trains_resumes_and_exports_the_vamp_prior(tmp_path, monkeypatch):
    config = tiny_config(epochs=2, learned_prior="vamp", pseudo_inputs=4, prior="vamp")
    added = []
    build = training.build_callbacks

    def with_extra(*args, **kwargs):
        return [*build(*args, **kwargs), added[-1]]

    monkeypatch.setattr(training, "build_callbacks", with_extra)
    with tfds.testing.mock_data(num_examples=64):
        added.append(_StopAfterFirstEpoch())
        with pytest.raises(KeyboardInterrupt):
            training.train_and_evaluate(config, str(tmp_path), verbose=0)
        added.append(_AtStart())
        metrics = training.train_and_evaluate(config, str(tmp_path), verbose=0)
    # The resumed run starts from the pseudo-inputs it had learned, not a new start.
    np.testing.assert_array_equal(added[1].pseudo_inputs, added[0].pseudo_inputs)
    assert metrics["epochs"] == 2 and metrics["prior"]["default"] == "vamp"
    assert "vamp" in metrics["prior"]["test_log_likelihood"]
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.prior.kind == "vamp"
    generator = json.loads((tmp_path / "export" / "generator.json").read_text())
    assert generator["latent_prior"] == model.prior.to_dict()
    assert generator["latent_prior"]["components"] == 4
    from ai_edge_litert.interpreter import Interpreter

    drawn = Interpreter(
        model_path=str(tmp_path / "export" / "generator_float32.tflite")
    ).get_signature_runner("sample_random")(count=np.array(4000, np.int32))
    assert_draws_follow_prior(generator["latent_prior"], drawn["z"], drawn["component"])
