"""README's Python training path: pipeline.fit_arguments, execution_steps, FusedAdam."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import VAE, FusedAdam
from keras_vae.datasets import pipeline
from tests.testing import TINY, random_images


def test_execution_steps_is_the_largest_divisor_at_most_the_request():
    assert pipeline.execution_steps(468, 16) == 13  # 468 = 4 * 9 * 13
    assert pipeline.execution_steps(429, 16) == 13
    assert pipeline.execution_steps(37, 16) == 1  # a prime: one step per execution
    assert pipeline.execution_steps(64, 16) == 16
    assert pipeline.execution_steps(5, 16) == 5
    with pytest.raises(ValueError, match="must be >= 1"):
        pipeline.execution_steps(0, 16)


def test_fit_arguments_train_every_image_once_per_epoch_and_validate_on_all():
    images = random_images(100)
    images[:, 0, 0, 0] = np.arange(100) / 100.0  # each image's id in one pixel
    arguments = pipeline.fit_arguments(images, images[:30], batch_size=16, seed=0)
    assert arguments["steps_per_epoch"] == 6 and "validation_steps" not in arguments
    iterator = iter(arguments["x"])
    epochs = [np.concatenate([next(iterator)[:, 0, 0, 0] for _ in range(6)]) for _ in range(2)]
    # 96 distinct images per epoch (the last partial batch dropped), reshuffled.
    assert all(len(set(np.round(e * 100).astype(int))) == 96 for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1])
    seen = np.concatenate([b[:, 0, 0, 0] for b in arguments["validation_data"]])
    assert sorted(np.round(seen * 100).astype(int)) == list(range(30))
    assert "validation_data" not in pipeline.fit_arguments(images, batch_size=16)


def test_readme_path_fits_with_fused_adam_and_steps_per_execution():
    images = random_images(96)
    model = VAE(seed=0, **TINY)
    # 70 validation images: 5 batches, run as executions of 6 steps.
    data = pipeline.fit_arguments(images, images[:70], batch_size=16, seed=0)
    execution = pipeline.execution_steps(data["steps_per_epoch"], 16)
    assert execution == 6
    model.compile(optimizer=FusedAdam(1e-3), steps_per_execution=execution)
    validated = tf.Variable(0)

    def counting_test_step(batch):
        validated.assign_add(tf.shape(batch)[0])
        return VAE.test_step(model, batch)

    model.test_step = counting_test_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(epochs=2, verbose=0, **data)
    assert not [str(w.message) for w in caught if "shuffle" in str(w.message)]
    # Each epoch is its 6 steps, not rounded up to a multiple of the execution,
    # and validates each of the 70 images once (not 6 batches, not a pass and a bit).
    assert int(model.optimizer.iterations) == 12
    assert int(validated.numpy()) == 2 * 70
    assert len(history.history["val_loss"]) == 2
    assert history.history["loss"][1] < history.history["loss"][0]


def test_fused_adam_takes_keras_adams_steps():
    # The same gradients, 20 steps, into both optimizers: the same variables, to
    # float32 rounding (Keras computes 1 - beta in Python, the kernel in float32).
    rng = np.random.default_rng(0)
    gradients = [
        [rng.normal(scale=s, size=(5, 3)).astype("float32") for s in (1.0, 1e-3)] for _ in range(20)
    ]
    start = [rng.normal(size=(5, 3)).astype("float32") for _ in range(2)]
    results = {}
    for name, optimizer in (
        ("keras", keras.optimizers.Adam(1e-2)),
        ("fused", FusedAdam(1e-2)),
    ):
        variables = [keras.Variable(v) for v in start]
        optimizer.build(variables)
        for g in gradients:
            optimizer.apply_gradients(zip([tf.constant(x) for x in g], variables, strict=True))
        results[name] = [v.numpy() for v in variables]
    for keras_value, fused_value, first in zip(
        results["keras"], results["fused"], start, strict=True
    ):
        assert np.abs(keras_value - first).max() > 0.05  # 20 steps of ~lr moved them
        np.testing.assert_allclose(fused_value, keras_value, rtol=1e-5, atol=1e-6)


def test_fused_adam_trains_a_vae_like_keras_adam():
    images = random_images(64)
    losses = {}
    for name, optimizer in (("keras", keras.optimizers.Adam(1e-3)), ("fused", FusedAdam(1e-3))):
        keras.utils.set_random_seed(0)
        model = VAE(preset="mlp", latent_dim=3, encoder_units=(16,), decoder_units=(16,), seed=0)
        model.compile(optimizer=optimizer)
        history = model.fit(images, epochs=3, batch_size=16, verbose=0, shuffle=False)
        losses[name] = history.history["loss"]
    assert losses["keras"][-1] < losses["keras"][0]
    np.testing.assert_allclose(losses["fused"], losses["keras"], rtol=1e-4)


def test_fused_adam_round_trips_in_a_keras_file(tmp_path):
    model = VAE(seed=0, **TINY)
    model.compile(optimizer=FusedAdam(2e-3, beta_1=0.8))
    model.fit(random_images(32), epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is FusedAdam
    assert loaded.optimizer.beta_1 == pytest.approx(0.8)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(2e-3)
    assert int(loaded.optimizer.iterations) == 2


def test_fused_adam_falls_back_to_keras_for_amsgrad():
    images = random_images(32)
    results = []
    for optimizer in (keras.optimizers.Adam(amsgrad=True), FusedAdam(amsgrad=True)):
        keras.utils.set_random_seed(0)
        model = VAE(seed=0, **TINY)
        model.compile(optimizer=optimizer)
        model.fit(images, epochs=1, batch_size=16, verbose=0, shuffle=False)
        results.append([w.numpy() for w in model.trainable_weights])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
