"""Evaluation beyond the single-sample ELBO.

`importance_weighted_nll` tightens the likelihood bound with k posterior
samples.
"""

import math

import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae.models import losses
from keras_vae.models.layers import Sampling


def _log_weights(model, images, samples, sampler):
    """log p(x|z) + log p(z) - log q(z|x) for `samples` z per image: `[samples, batch]`."""
    mean, log_var = model.encode(images)
    batch = ops.shape(mean)[0]
    shape = (samples, batch, model.latent_dim)
    z = sampler((ops.broadcast_to(mean, shape), ops.broadcast_to(log_var, shape)))
    flat_z = ops.reshape(z, (-1, model.latent_dim))
    tiled = ops.reshape(
        ops.broadcast_to(images[None], (samples,) + tuple(images.shape)),
        (-1,) + model.image_shape,
    )
    log_likelihood = -model.reconstruction_nll(tiled, model.decoder_logits(flat_z))
    log_likelihood = ops.reshape(log_likelihood, (samples, batch))
    log_prior = model.log_prior(z)
    log_posterior = losses.log_normal(z, mean, log_var)
    return log_likelihood + log_prior - log_posterior


def importance_weighted_nll(model, images, k=1000, batch_size=100, samples_per_pass=100, seed=0):
    """Importance-sampled estimate of -log p(x), nats per image (Burda et al., 2016).

    -log p(x) ~= -log( (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) ), z_i ~ q(z|x).
    It is an upper bound on -log p(x) that tightens as k grows, and equals
    the negative ELBO (in expectation) at k = 1. Images are processed
    `batch_size` at a time and the k samples `samples_per_pass` at a time,
    so k = 1000 fits in memory.

    Args:
        model: a `keras_vae.VAE`.
        images: float32 `[N, H, W, C]`.
        k: importance samples per image.
        batch_size, samples_per_pass: memory/speed trade-off.
        seed: seeds the estimate's own `Sampling` layer (no global seed is set).

    Returns:
        float: the mean over the N images.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    images = np.asarray(images, dtype=np.float32)
    if len(images) == 0:
        raise ValueError("importance_weighted_nll needs at least one image.")
    sampler = Sampling(seed=seed)
    totals = []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start : start + batch_size])
        log_sums = []
        for done in range(0, k, samples_per_pass):
            samples = min(samples_per_pass, k - done)
            log_sums.append(
                tf.reduce_logsumexp(_log_weights(model, batch, samples, sampler), axis=0)
            )
        log_mean = tf.reduce_logsumexp(tf.stack(log_sums), axis=0) - math.log(k)
        totals.append(-log_mean.numpy())
    return float(np.mean(np.concatenate(totals)))
