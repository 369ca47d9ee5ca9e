import keras
import numpy as np
import tensorflow as tf

from keras_vae import Sampling
from tests.testing import run_serialization_test


def test_sampling_statistics_match_mean_and_variance():
    n, mean_value, log_var_value = 20000, 1.5, np.log(0.25)
    mean = np.full((n, 3), mean_value, dtype="float32")
    log_var = np.full((n, 3), log_var_value, dtype="float32")
    z = keras.ops.convert_to_numpy(Sampling(seed=0)((mean, log_var)))
    assert z.shape == (n, 3)
    # Standard errors: 0.5 / sqrt(20000) = 0.0035 for the mean.
    np.testing.assert_allclose(z.mean(axis=0), mean_value, atol=0.02)
    np.testing.assert_allclose(z.var(axis=0), 0.25, rtol=0.05)


def test_sampling_gradients_reach_mean_and_log_var():
    mean = tf.Variable(tf.zeros((8, 4)))
    log_var = tf.Variable(tf.zeros((8, 4)))
    with tf.GradientTape() as tape:
        z = Sampling(seed=1)((mean, log_var))
        objective = tf.reduce_sum(z**2)
    grad_mean, grad_log_var = tape.gradient(objective, [mean, log_var])
    assert np.all(grad_mean.numpy() != 0)
    assert np.abs(grad_log_var.numpy()).sum() > 0
    # d/dmean sum(z^2) = 2 z
    np.testing.assert_allclose(grad_mean.numpy(), 2 * z.numpy(), rtol=1e-6)


def test_sampling_seed_is_reproducible_and_draws_differ():
    inputs = (np.zeros((4, 5), "float32"), np.zeros((4, 5), "float32"))
    first = Sampling(seed=7)(inputs)
    layer = Sampling(seed=7)
    again, next_draw = layer(inputs), layer(inputs)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(again, next_draw)


def test_sampling_round_trips_through_json_and_a_keras_file(tmp_path):
    loaded = run_serialization_test(Sampling(seed=3, name="my_sampling"), tmp_path)
    assert loaded.seed == 3 and loaded.name == "my_sampling"
