import keras
import numpy as np
import pytest

from keras_vae import VAE
from keras_vae.models.likelihood import importance_weighted_nll

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
