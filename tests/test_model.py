import keras
import numpy as np
import pytest

from keras_vae import VAE, Autoencoder, KLWarmup, generation
from keras_vae.datasets import pipeline
from keras_vae.models import presets, priors
from tests.testing import TINY, random_images, run_serialization_test


def loss_with_fixed_eps(model, images):
    """The batch loss with the Sampling layer's RNG reset, so eps is the same each call."""
    state = model.sampling.seed_generator.state
    saved = state.numpy()
    recon, kl = model.loss_terms(images)
    state.assign(saved)
    return float(np.mean(recon) + model.beta * np.mean(kl))


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
@pytest.mark.parametrize("preset", ["keras_example", "conv", "conv_deep", "default", "mlp"])
def test_presets_build_for_each_image_shape(preset, shape):
    if shape[0] % 2 ** len(presets.PRESETS[preset].conv_filters):
        with pytest.raises(ValueError, match="must be divisible by 16"):
            VAE(image_shape=shape, preset=preset)
        return
    model = VAE(image_shape=shape, preset=preset)
    images = random_images(2, shape)
    mean, log_var = model.encode(images)
    assert mean.shape == (2, model.latent_dim) and log_var.shape == (2, model.latent_dim)
    decoded = keras.ops.convert_to_numpy(model.decode(mean))
    assert decoded.shape == (2,) + shape
    assert decoded.min() >= 0 and decoded.max() <= 1
    assert model(images).shape == (2,) + shape


def test_keras_example_preset_is_the_official_architecture():
    model = VAE(preset="keras_example")
    encoder_layers = [type(layer).__name__ for layer in model.encoder.layers]
    assert encoder_layers == [
        "InputLayer",
        "Conv2D",
        "Conv2D",
        "Flatten",
        "Dense",
        "Dense",
        "Dense",
    ]
    assert [layer.filters for layer in model.encoder.layers[1:3]] == [32, 64]
    assert model.encoder.layers[4].units == 16
    assert model.latent_dim == 2
    decoder_layers = [type(layer).__name__ for layer in model.decoder.layers]
    assert decoder_layers == [
        "InputLayer",
        "Dense",
        "Reshape",
        "Conv2DTranspose",
        "Conv2DTranspose",
        "Conv2DTranspose",
    ]
    assert model.decoder.layers[1].units == 7 * 7 * 64
    assert [layer.filters for layer in model.decoder.layers[3:]] == [64, 32, 1]
    # Same parameter count as the keras-io example (encoder 69,076 + decoder 65,089).
    assert model.encoder.count_params() == 69076
    assert model.decoder.count_params() == 65089


def test_mlp_preset_is_the_pytorch_example_architecture():
    model = VAE(preset="mlp")
    dense = [layer.units for layer in model.encoder.layers if hasattr(layer, "units")]
    assert dense == [400, 20, 20]
    assert [layer.units for layer in model.decoder.layers if hasattr(layer, "units")] == [400, 784]


def test_one_train_step_lowers_the_loss_on_a_fixed_batch():
    model = VAE(preset="default", seed=0, **TINY)
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    images = random_images(16)
    before = loss_with_fixed_eps(model, images)
    model.train_on_batch(images)
    after = loss_with_fixed_eps(model, images)
    assert after < before


def test_train_step_reports_loss_as_reconstruction_plus_beta_kl():
    model = VAE(beta=3.0, seed=0, **TINY)
    model.compile(optimizer="adam")
    logs = model.train_on_batch(random_images(8), return_dict=True)
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss"}
    assert logs["loss"] == pytest.approx(
        logs["reconstruction_loss"] + 3.0 * logs["kl_loss"], rel=1e-5
    )


def test_fit_on_numpy_and_tf_data_with_validation_evaluate_predict():
    images = random_images(64)
    model = VAE(seed=0, **TINY)
    model.compile(optimizer="adam")
    history = model.fit(images, epochs=2, batch_size=16, validation_data=images[:16], verbose=0)
    for name in ("loss", "reconstruction_loss", "kl_loss"):
        assert len(history.history[name]) == 2
        assert len(history.history["val_" + name]) == 2
    dataset = pipeline.make_dataset(images, batch_size=16)
    history = model.fit(dataset, epochs=1, validation_data=dataset, verbose=0, shuffle=False)
    assert np.isfinite(history.history["val_loss"][0])
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    assert set(results) == {"loss", "reconstruction_loss", "kl_loss"}
    assert model.predict(images[:5], verbose=0).shape == (5, 28, 28, 1)


def test_fit_on_labelled_dataset_ignores_labels():
    images = random_images(32)
    model = VAE(seed=0, **TINY)
    model.compile(optimizer="adam")
    labelled = pipeline.make_dataset(images, np.arange(32), batch_size=16)
    history = model.fit(labelled, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_vae_round_trips_through_json_and_a_keras_file(tmp_path):
    model = VAE(
        image_shape=(32, 32, 3),
        likelihood="gaussian",
        gaussian_scale=0.05,
        beta=0.5,
        seed=9,
        name="faces",
        **TINY,
    )
    run_serialization_test(model, tmp_path)
    trained = VAE(preset="default", likelihood="gaussian", seed=5, **TINY)
    trained.compile(optimizer="adam")
    images = random_images(16)
    trained.fit(images, epochs=1, batch_size=8, verbose=0)
    z = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    loaded = run_serialization_test(
        trained, tmp_path, call=lambda m: (m.encode(images), m.decode(z), m.log_scale)
    )
    assert loaded.name == trained.name and loaded.count_params() == trained.count_params()


def test_gaussian_scale_learned_trains_and_fixed_does_not():
    images = random_images(16)
    learned = VAE(likelihood="gaussian", seed=0, **TINY)
    fixed = VAE(likelihood="gaussian", gaussian_scale=0.3, seed=0, **TINY)
    for model in (learned, fixed):
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(images, epochs=3, batch_size=8, verbose=0)
    assert float(learned.log_scale.numpy()) != pytest.approx(np.log(0.1))
    assert float(fixed.log_scale.numpy()) == pytest.approx(np.log(0.3))


def test_sample_returns_images_in_unit_range_and_is_seeded():
    model = VAE(seed=0, **TINY)
    first = keras.ops.convert_to_numpy(model.sample(6, seed=11))
    assert first.shape == (6, 28, 28, 1)
    assert first.min() >= 0 and first.max() <= 1
    np.testing.assert_array_equal(first, model.sample(6, seed=11))


def test_sample_decodes_draws_of_the_chosen_prior():
    model = VAE(seed=0, **TINY)
    assert model.prior.kind == "standard" and list(model.priors) == ["standard"]
    shifted = priors.GaussianMixture([1.0], [[5.0, -5.0, 5.0]], [np.eye(3) * 0.1], kind="gaussian")
    model.set_prior(shifted)
    assert model.prior is shifted
    expected = model.decode(shifted.sample(4, seed=2))
    np.testing.assert_array_equal(model.sample(4, seed=2), expected)
    standard = model.decode(priors.standard_normal(3).sample(4, seed=2))
    np.testing.assert_array_equal(model.sample(4, seed=2, prior="standard"), standard)
    with pytest.raises(ValueError, match="no fitted 'gmm' prior .*fit-prior"):
        model.sample(4, prior="gmm")
    with pytest.raises(ValueError, match="over 2-D codes but this VAE has latent_dim 3"):
        model.set_prior(priors.standard_normal(2))


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_fitted_priors_are_saved_inside_the_keras_file(cls, tmp_path):
    model = cls(**TINY)
    images = random_images(256)
    model.compile(optimizer="adam")
    model.fit(images, epochs=1, batch_size=64, verbose=0)
    fitted = generation.fit_priors(model, images[:200], images[200:], components=2)
    assert set(fitted) == {"gaussian", "gmm"} and model.prior is fitted["gmm"]
    assert fitted["gmm"].components == 2 and fitted["gmm"].info["fitted_to"] == "mean"
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.prior.kind == "gmm" and set(loaded.priors) == {"standard", "gaussian", "gmm"}
    np.testing.assert_array_equal(loaded.prior.means, model.prior.means)
    np.testing.assert_array_equal(loaded.sample(3, seed=1), model.sample(3, seed=1))
    # A model saved without fitted priors loads with N(0, I) only.
    plain = cls(**TINY)
    plain.save(tmp_path / "plain.keras")
    assert list(keras.models.load_model(tmp_path / "plain.keras").priors) == ["standard"]


def test_fit_priors_from_posterior_samples_and_what_cannot_be_fitted():
    model = VAE(seed=0, **TINY)
    images = random_images(200)
    fitted = generation.fit_priors(model, images, kind="gaussian", codes="sample", seed=3)
    assert list(fitted) == ["gaussian"] and model.prior.kind == "gaussian"
    means = generation.Codec(model).encode(images)
    assert not np.allclose(fitted["gaussian"].means[0], means.mean(axis=0), atol=1e-6)
    assert generation.fit_priors(model, images, kind="standard") == {}
    assert model.prior.kind == "standard"
    with pytest.raises(ValueError, match="Autoencoder has no posterior"):
        generation.fit_priors(Autoencoder(**TINY), images, codes="sample")
    with pytest.raises(ValueError, match="Too few codes"):
        generation.fit_priors(model, images[:3], kind="gaussian")


def test_decode_is_sigmoid_of_the_decoder_and_checks_the_code_size():
    model = VAE(seed=0, **TINY)
    for batch in (1, 3):
        z = np.random.default_rng(batch).normal(size=(batch, 3)).astype("float32")
        expected = keras.ops.convert_to_numpy(keras.ops.sigmoid(model.decoder(z)))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model.decode(z)), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"latent codes of shape \(batch, 3\)"):
        model.decode(np.zeros((2, 4), "float32"))


def test_kl_warmup_ramps_weight_from_zero_to_beta():
    model = VAE(beta=2.0, seed=0, **TINY)
    model.compile(optimizer="adam")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((float(self.model.kl_weight.numpy()), logs["kl_weight"]))

    model.fit(
        random_images(16), epochs=4, batch_size=8, verbose=0, callbacks=[KLWarmup(2), Record()]
    )
    assert [weight for weight, _ in seen] == [0.0, 1.0, 2.0, 2.0]
    assert [logged for _, logged in seen] == [0.0, 1.0, 2.0, 2.0]


def test_validation_loss_uses_full_beta_during_warmup():
    model = VAE(beta=1.0, seed=0, **TINY)
    model.compile(optimizer="adam")
    images = random_images(16)
    history = model.fit(
        images, epochs=1, batch_size=8, validation_data=images, verbose=0, callbacks=[KLWarmup(5)]
    )
    h = history.history
    assert h["loss"][0] == pytest.approx(h["reconstruction_loss"][0], rel=1e-6)
    assert h["val_loss"][0] == pytest.approx(
        h["val_reconstruction_loss"][0] + h["val_kl_loss"][0], rel=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"preset": "huge"}, "Valid presets: conv, conv_deep, default, keras_example, mlp"),
        ({"likelihood": "poisson"}, "Valid likelihoods: bernoulli, gaussian"),
        ({"latent_dim": 0}, "must be positive"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"preset": "conv", "image_shape": (30, 30, 1)}, "divisible by 4"),
        ({"likelihood": "gaussian", "gaussian_scale": -0.1}, "positive finite float"),
    ],
)
def test_bad_constructor_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAE(**kwargs)


def test_fit_lowers_test_negative_elbo_on_real_fashion_mnist(fashion_mnist):
    (train_images, _), (test_images, _) = fashion_mnist
    model = VAE(preset="default", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    test_data = pipeline.make_dataset(test_images[:1000], batch_size=250)

    def negative_elbo():
        results = model.evaluate(test_data, return_dict=True, verbose=0)
        return results["reconstruction_loss"] + results["kl_loss"]

    before = negative_elbo()
    train_data = pipeline.make_dataset(
        train_images[:4096], batch_size=64, shuffle=True, seed=0, repeat=True, drop_remainder=True
    )
    model.fit(train_data, epochs=1, steps_per_epoch=300, verbose=0, shuffle=False)
    after = negative_elbo()
    # A fresh model scores ~545 nats (uniform pixels); 300 steps reach ~280.
    assert before > 500
    assert after < 320, (before, after)


def test_autoencoder_uses_the_vae_networks_without_sampling_or_kl():
    from keras_vae import Autoencoder

    vae = VAE(**TINY)
    ae = Autoencoder(**TINY)
    # Same decoder; the encoder is the VAE's without the log_var head.
    assert ae.decoder.count_params() == vae.decoder.count_params()
    log_var_params = vae.encoder.get_layer("log_var").count_params()
    assert ae.encoder.count_params() == vae.encoder.count_params() - log_var_params
    images = random_images(8)
    assert ae.encode(images).shape == (8, 3)
    # Deterministic: training=True gives the same reconstruction.
    np.testing.assert_array_equal(ae(images, training=True), ae(images))


def test_autoencoder_trains_and_every_weight_gets_a_gradient():
    from keras_vae import Autoencoder

    ae = Autoencoder(**TINY)
    ae.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = random_images(32)
    before = ae.evaluate(images, verbose=0, return_dict=True)["loss"]
    initial = [w.numpy().copy() for w in ae.trainable_weights]
    history = ae.fit(images, epochs=3, batch_size=8, validation_data=images, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    assert ae.evaluate(images, verbose=0, return_dict=True)["loss"] < before
    for start, weight in zip(initial, ae.trainable_weights, strict=True):
        assert not np.array_equal(start, weight.numpy()), weight.path


def test_autoencoder_round_trips_through_json_and_a_keras_file(tmp_path):
    from keras_vae import Autoencoder

    ae = Autoencoder(image_shape=(32, 32, 3), name="baseline", **TINY)
    images = random_images(4, (32, 32, 3))
    loaded = run_serialization_test(ae, tmp_path, call=lambda m: m(images))
    assert loaded.name == "baseline"
