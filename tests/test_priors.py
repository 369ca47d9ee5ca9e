"""keras_vae.models.priors: fitted latent priors, their EM, sampling and scoring (NumPy only)."""

import json
import math

import numpy as np
import pytest

from keras_vae.models import priors
from tests.testing import assert_draws_follow_prior

TRUE_MEANS = np.array([[6.0, 0.0, 0.0, 0.0], [0.0, -6.0, 0.0, 0.0], [0.0, 0.0, 6.0, 3.0]])
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])


def three_clusters(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    return TRUE_MEANS[labels] + rng.normal(size=(n, 4)) * np.array([1.0, 0.5, 1.0, 0.3])


def direct_log_density(mixture, z):
    """The mixture density from its definition, with det and inv (independent of the module)."""
    total = np.zeros(len(z))
    for weight, mean, covariance in zip(
        mixture.weights, mixture.means, mixture.covariances(), strict=True
    ):
        centered = z - mean
        quadratic = np.einsum("ni,ij,nj->n", centered, np.linalg.inv(covariance), centered)
        norm = math.sqrt(np.linalg.det(2 * math.pi * covariance))
        total += weight * np.exp(-0.5 * quadratic) / norm
    return np.log(total)


def random_mixture(k=3, d=4, seed=1):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k))
    cholesky = np.tril(rng.normal(size=(k, d, d)) * 0.3)
    cholesky[:, range(d), range(d)] = rng.uniform(0.5, 1.5, size=(k, d))
    return priors.GaussianMixture(weights, rng.normal(size=(k, d)) * 3, cholesky)


def test_log_prob_is_the_mixture_density():
    mixture = random_mixture()
    z = np.random.default_rng(2).normal(size=(50, 4)) * 3
    np.testing.assert_allclose(mixture.log_prob(z), direct_log_density(mixture, z), rtol=1e-10)
    standard = priors.standard_normal(4)
    expected = -0.5 * (4 * math.log(2 * math.pi) + np.sum(z**2, axis=1))
    np.testing.assert_allclose(standard.log_prob(z), expected, rtol=1e-12)


def test_samples_follow_the_mixture_and_are_seeded():
    mixture = random_mixture()
    z, components = mixture.sample(20000, seed=3, return_components=True)
    assert z.dtype == np.float32 and z.shape == (20000, 4)
    assert_draws_follow_prior(mixture.to_dict(), z.astype(np.float64), components)
    np.testing.assert_array_equal(z, mixture.sample(20000, seed=3))
    assert not np.array_equal(z, mixture.sample(20000, seed=4))


def test_em_recovers_a_known_mixture_and_validation_picks_its_size():
    codes, held_out = three_clusters(seed=0), three_clusters(1000, seed=1)
    fitted = priors.fit_gmm(codes, held_out, candidates=(1, 3, 10), seed=0)
    assert fitted.kind == "gmm" and fitted.components == 3
    scores = fitted.info["validation_log_likelihood"]
    assert scores[3] > scores[1] and scores[3] > scores[10]
    order = np.argsort(-fitted.weights)
    np.testing.assert_allclose(fitted.weights[order], TRUE_WEIGHTS, atol=0.03)
    np.testing.assert_allclose(fitted.means[order], TRUE_MEANS, atol=0.1)
    true_stds = np.array([1.0, 0.5, 1.0, 0.3])
    for covariance in fitted.covariances():
        np.testing.assert_allclose(np.sqrt(np.diag(covariance)), true_stds, rtol=0.1)


def test_em_never_lowers_the_likelihood_and_is_deterministic():
    codes = three_clusters(seed=5)
    first = priors.fit_mixture(codes, 6, seed=7)
    history = np.array(first.history)
    assert len(history) >= 2 and np.all(np.diff(history) >= -1e-9)
    second = priors.fit_mixture(codes, 6, seed=7)
    np.testing.assert_array_equal(first.means, second.means)
    np.testing.assert_array_equal(first.cholesky, second.cholesky)


def test_duplicate_codes_give_finite_priors():
    codes = np.concatenate([np.ones((300, 4)), np.zeros((300, 4))])
    for fitted in (priors.fit_gaussian(codes), priors.fit_mixture(codes, 5)):
        values = fitted.log_prob(codes)
        assert np.all(np.isfinite(values)), fitted
        assert np.all(np.isfinite(fitted.sample(10, seed=0)))
    identical = np.full((100, 3), 2.5)
    assert np.all(np.isfinite(priors.fit_gmm(identical, components=2).log_prob(identical)))


def test_gaussian_is_the_codes_mean_and_covariance():
    codes = three_clusters(seed=2)
    fitted = priors.fit_gaussian(codes)
    assert fitted.kind == "gaussian" and fitted.components == 1
    np.testing.assert_allclose(fitted.means[0], codes.mean(axis=0), rtol=1e-12)
    covariance = np.cov(codes, rowvar=False, bias=True)
    np.testing.assert_allclose(fitted.covariances()[0], covariance, rtol=1e-3, atol=1e-3)


def test_saved_dict_is_json_and_round_trips_exactly():
    mixture = random_mixture()
    mixture.info = {"codes": 10}
    loaded = priors.GaussianMixture.from_dict(json.loads(json.dumps(mixture.to_dict())))
    for name in ("weights", "means", "cholesky"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(mixture, name))
    assert loaded.kind == "gmm" and loaded.info == {"codes": 10}
    with pytest.raises(ValueError, match="lacks its 'means'"):
        priors.GaussianMixture.from_dict({"weights": [1.0], "cholesky": [[[1.0]]]})


@pytest.mark.parametrize(
    "codes, call, message",
    [
        (np.zeros((3, 4)), priors.fit_gaussian, "Too few codes: 3, need at least 5"),
        (np.zeros((40, 4)), lambda c: priors.fit_mixture(c, 10), "Too few codes: 40"),
        (np.zeros((30, 4)), lambda c: priors.fit_gmm(c, candidates=(50,)), "Too few codes"),
        (np.full((30, 2), np.nan), priors.fit_gaussian, "NaN or infinite"),
        (np.zeros(30), priors.fit_gaussian, r"must be \[n, latent_dim\]"),
        (np.zeros((30, 2)), lambda c: priors.fit("big", c), "Unknown prior 'big'"),
    ],
)
def test_unusable_codes_are_clear_errors(codes, call, message):
    with pytest.raises(ValueError, match=message):
        call(codes)


@pytest.mark.parametrize(
    "weights, means, cholesky, message",
    [
        ([0.5, 0.6], np.zeros((2, 2)), np.stack([np.eye(2)] * 2), "sum to 1"),
        ([1.0], np.zeros((2, 2)), np.stack([np.eye(2)]), "weights \\[k\\]"),
        ([1.0], np.zeros((1, 2)), np.eye(2), "cholesky must be"),
        ([1.0], np.zeros((1, 2)), -np.eye(2)[None], "positive Cholesky diagonal"),
    ],
)
def test_invalid_parameters_are_refused(weights, means, cholesky, message):
    with pytest.raises(ValueError, match=message):
        priors.GaussianMixture(weights, means, cholesky)


def test_log_prob_checks_the_codes_width():
    with pytest.raises(ValueError, match=r"codes of shape \(n, 4\); got \(2, 3\)"):
        random_mixture().log_prob(np.zeros((2, 3)))


def test_moments_and_principal_directions_are_the_codes():
    rng = np.random.default_rng(3)
    # Variance 9 along (1, 1, 0)/sqrt(2), 4 along z, 1 along (1, -1, 0)/sqrt(2).
    basis = np.array([[1, 1, 0], [0, 0, 1], [1, -1, 0]]) / np.array([[2**0.5], [1], [2**0.5]])
    codes = (rng.standard_normal((20000, 3)) * [3.0, 2.0, 1.0]) @ basis + [1.0, -2.0, 0.5]
    for prior in (priors.fit_gaussian(codes), priors.fit_mixture(codes, 3, seed=0)):
        mean, covariance = prior.moments()
        np.testing.assert_allclose(mean, codes.mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(covariance, np.cov(codes.T, bias=True), atol=1e-3)
        found = prior.principal_directions(2)
        np.testing.assert_allclose(
            np.abs(np.array(found["directions"])), np.abs(basis[:2]), atol=0.02
        )
        np.testing.assert_allclose(found["scales"], [3.0, 2.0], rtol=0.03)
        assert json.loads(json.dumps(found)) == found
    axes = priors.standard_normal(4).principal_directions(8)
    np.testing.assert_allclose(np.abs(axes["directions"]), np.eye(4))
    assert axes["scales"] == [1.0] * 4
    with pytest.raises(ValueError, match="count must be >= 1"):
        priors.standard_normal(4).principal_directions(0)


def test_one_dimensional_codes_fit_sample_score_and_give_their_direction():
    # A 1-D latent space (train.py --latent-dim 1): two clusters on a line.
    rng = np.random.default_rng(4)
    codes = np.concatenate([rng.normal(-4.0, 0.5, (600, 1)), rng.normal(3.0, 1.0, (400, 1))])
    gaussian = priors.fit("gaussian", codes)
    np.testing.assert_allclose(gaussian.means, [[codes.mean()]], rtol=1e-12)
    np.testing.assert_allclose(gaussian.covariances(), [[[codes.var()]]], rtol=1e-3)
    two = priors.fit_mixture(codes, 2, seed=0)
    order = np.argsort(two.means[:, 0])
    np.testing.assert_allclose(two.means[order, 0], [-4.0, 3.0], atol=0.15)
    np.testing.assert_allclose(two.weights[order], [0.6, 0.4], atol=0.02)
    np.testing.assert_allclose(np.sqrt(two.covariances()[order, 0, 0]), [0.5, 1.0], rtol=0.1)
    chosen = priors.fit("gmm", codes, seed=0)
    assert chosen.kind == "gmm" and chosen.latent_dim == 1
    assert chosen.info["validation_log_likelihood"][5] > chosen.info["validation_log_likelihood"][1]
    for prior in (priors.standard_normal(1), gaussian, two, chosen):
        z, components = prior.sample(20000, seed=1, return_components=True)
        assert z.shape == (20000, 1)
        assert_draws_follow_prior(prior.to_dict(), z.astype(np.float64), components)
        grid = np.linspace(-8, 8, 7)[:, None]
        np.testing.assert_allclose(prior.log_prob(grid), direct_log_density(prior, grid))
        found = prior.principal_directions(3)
        assert found["directions"] == [[1.0]] and len(found["scales"]) == 1
        mean, covariance = prior.moments()
        np.testing.assert_allclose(found["scales"], np.sqrt(covariance[0]))
        assert (
            priors.GaussianMixture.from_dict(json.loads(json.dumps(prior.to_dict()))).latent_dim
            == 1
        )
