import numpy as np
import pytest

from keras_vae.models import losses


def test_kl_matches_closed_form():
    mean = np.array([[0.5, -1.0], [0.0, 0.0]], "float32")
    log_var = np.array([[np.log(2.0), np.log(0.5)], [0.0, 0.0]], "float32")
    # KL(N(m, s^2) || N(0, 1)) = 0.5 * (s^2 + m^2 - 1 - log s^2), per dimension.
    expected_first = 0.5 * (2.0 + 0.25 - 1 - np.log(2.0)) + 0.5 * (0.5 + 1.0 - 1 - np.log(0.5))
    kl = np.asarray(losses.kl_to_standard_normal(mean, log_var))
    np.testing.assert_allclose(kl, [expected_first, 0.0], rtol=1e-6, atol=1e-7)


def test_kl_matches_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mean = np.array([0.7, -0.3, 1.2])
    log_var = np.array([-0.5, 0.4, -1.0])
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((400_000, 3))
    log_q = -0.5 * (((z - mean) / std) ** 2 + log_var + np.log(2 * np.pi))
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    monte_carlo = (log_q - log_p).sum(axis=1).mean()
    analytic = float(np.asarray(losses.kl_to_standard_normal(mean[None], log_var[None]))[0])
    assert analytic == pytest.approx(monte_carlo, abs=0.01)


def test_bernoulli_nll_sums_binary_cross_entropy_over_pixels():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(3, 4, 4, 1)).astype("float32")
    logits = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits))
    expected = -(images * np.log(p) + (1 - images) * np.log(1 - p)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(losses.bernoulli_nll(images, logits), expected, rtol=1e-5)


def test_gaussian_nll_is_the_gaussian_log_density():
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(2, 3, 3, 3)).astype("float32")
    mean = rng.uniform(size=(2, 3, 3, 3)).astype("float32")
    sigma = 0.2
    log_density = -0.5 * np.log(2 * np.pi * sigma**2) - (images - mean) ** 2 / (2 * sigma**2)
    expected = -log_density.reshape(2, -1).sum(1)
    got = losses.gaussian_nll(images, mean, np.float32(np.log(sigma)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
