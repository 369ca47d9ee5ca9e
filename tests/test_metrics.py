import keras
import numpy as np
import pytest

from keras_vae import VAE, metrics
from keras_vae.metrics import importance_weighted_nll

# Four binary pixels, one latent dimension: p(x) = integral N(z; 0, 1) prod_i
# Bernoulli(x_i; sigmoid(f_i(z))) dz is then a 1-D integral that quadrature
# computes to many digits, whatever the decoder f.
IMAGES = np.array(
    [[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0]], np.float32
).reshape(-1, 1, 4, 1)
# 40 copies of each: the estimator's Monte Carlo noise averages down to ~0.005 nats.
MANY = np.tile(IMAGES, (40, 1, 1, 1))


@pytest.fixture(scope="module")
def small_model():
    """A 1-D latent VAE fitted to IMAGES, so its encoder is a fair proposal."""
    keras.utils.set_random_seed(1234)
    model = VAE(
        image_shape=(1, 4, 1),
        preset="mlp",
        latent_dim=1,
        encoder_units=(16,),
        decoder_units=(16,),
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(np.tile(IMAGES, (64, 1, 1, 1)), epochs=30, batch_size=64, verbose=0)
    return model


def exact_nll(model, images):
    z = np.linspace(-12, 12, 24001, dtype=np.float32)[:, None]
    logits = np.asarray(model.decoder_logits(z)).reshape(len(z), -1)
    log_prior = -0.5 * (z[:, 0] ** 2 + np.log(2 * np.pi))
    values = []
    for image in images.reshape(len(images), -1):
        log_lik = -(np.logaddexp(0, logits) - image * logits).sum(axis=1)
        log_joint = log_prior + log_lik
        peak = log_joint.max()
        values.append(-(peak + np.log(np.trapezoid(np.exp(log_joint - peak), z[:, 0]))))
    return float(np.mean(values))


def negative_elbo(model, images, repeats=2000):
    tiled = np.repeat(images, repeats, axis=0)
    reconstruction, kl = model.loss_terms(tiled)
    return float(np.mean(reconstruction) + np.mean(kl))


def test_matches_the_exact_marginal_likelihood(small_model):
    exact = exact_nll(small_model, IMAGES)
    estimate = importance_weighted_nll(small_model, MANY, k=1000)
    assert estimate == pytest.approx(exact, abs=0.01)
    assert estimate >= exact - 0.005  # an upper bound, up to Monte Carlo noise


def test_is_below_the_negative_elbo_and_decreases_with_k(small_model):
    exact = exact_nll(small_model, IMAGES)
    # 2,000 images pin each estimate's mean down to about a thousandth of a nat.
    images = np.tile(IMAGES, (400, 1, 1, 1))
    k1, k10, k100 = (importance_weighted_nll(small_model, images, k=k) for k in (1, 10, 100))
    assert k1 > k10 > k100 - 0.002 and k1 - k100 > 0.01
    assert k100 >= exact - 0.005
    elbo = negative_elbo(small_model, IMAGES)
    assert k1 == pytest.approx(elbo, abs=0.02)  # k = 1 is the single-sample ELBO
    assert k100 < elbo


def test_batching_does_not_change_the_estimate(small_model):
    whole = importance_weighted_nll(
        small_model, IMAGES, k=200, batch_size=100, samples_per_pass=200
    )
    pieces = importance_weighted_nll(small_model, IMAGES, k=200, batch_size=2, samples_per_pass=30)
    assert pieces == pytest.approx(whole, abs=0.05)


def test_bad_arguments(small_model):
    with pytest.raises(ValueError, match="k must be >= 1"):
        importance_weighted_nll(small_model, IMAGES, k=0)
    with pytest.raises(ValueError, match="at least one image"):
        importance_weighted_nll(small_model, IMAGES[:0])


def test_confident_share_counts_rows_at_or_above_the_threshold():
    probabilities = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert metrics.confident_share(probabilities, 0.9) == 0.5
    with pytest.raises(ValueError, match=r"\[N, classes\]"):
        metrics.confident_share(np.zeros((0, 3)))


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Shifted mean: |d|^2. Doubled std: tr(I + 4I - 2 * 2I) = 4 * 1.
    assert metrics.frechet_distance(a, a + [1.0, 2.0, 0.0, 0.0]) == pytest.approx(5.0, abs=1e-6)
    b = 2.0 * rng.standard_normal((20000, 4))
    assert metrics.frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    with pytest.raises(ValueError, match="same F"):
        metrics.frechet_distance(a, b[:, :3])


def test_step_unevenness_is_one_over_steps_for_even_paths_and_one_for_a_jump():
    t = np.linspace(0, 1, 17)[:, None, None, None]
    even = t * np.ones((1, 4, 4, 1))
    jump = np.where(t > 0.5, 1.0, 0.0) * np.ones((1, 4, 4, 1))
    still = np.zeros((17, 4, 4, 1))
    result = metrics.step_unevenness(np.stack([even, jump, still]))
    np.testing.assert_allclose(result[:2], [1 / 16, 1.0])
    assert np.isnan(result[2])
    with pytest.raises(ValueError, match="points >= 2"):
        metrics.step_unevenness(np.zeros((2, 1, 4, 4, 1)))


def test_step_unevenness_over_the_ends_counts_detours():
    t = np.linspace(0, 1, 17)[:, None, None, None]
    even = t * np.ones((1, 4, 4, 1))
    # Out along one pixel and back, while another pixel moves evenly 0 -> 1:
    # the path is longer than its ends' distance.
    detour = np.zeros((17, 2, 1, 1))
    detour[:, 0, 0, 0] = np.linspace(0, 1, 17)
    detour[:, 1, 0, 0] = np.concatenate([np.linspace(0, 1, 9), np.linspace(1, 0, 9)[1:]])
    np.testing.assert_allclose(metrics.step_unevenness(even[None], over="ends"), [1 / 16])
    step = np.hypot(1 / 16, 1 / 8)
    np.testing.assert_allclose(metrics.step_unevenness(detour[None], over="ends"), [step])
    np.testing.assert_allclose(metrics.step_unevenness(detour[None]), [1 / 16])
    # A closed loop has no change between its ends: NaN, not infinity.
    loop = np.concatenate([even, even[::-1]])
    assert np.isnan(metrics.step_unevenness(loop[None], over="ends")[0])
    with pytest.raises(ValueError, match="'path' or 'ends'"):
        metrics.step_unevenness(even[None], over="chord")


def test_pixel_distance_is_the_l2_norm_per_pair():
    a = np.zeros((2, 2, 2, 1))
    b = np.ones((2, 2, 2, 1))
    np.testing.assert_allclose(metrics.pixel_distance(a, b), [2.0, 2.0])
    with pytest.raises(ValueError, match="same shape"):
        metrics.pixel_distance(a, b[:1])
