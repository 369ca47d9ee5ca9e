"""Evaluation beyond the single-sample ELBO.

`importance_weighted_nll` tightens the likelihood bound with k posterior
samples; the other functions score generated images from a classifier's
outputs (plain numpy on arrays the caller computes: class probabilities
`[N, K]`, feature vectors `[N, F]`, images `[N, H, W, C]`).
"""

import math

import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import autoencoder as _autoencoder  # noqa: F401 (registers it with Keras)
from keras_vae import model as _model  # noqa: F401 (registers it with Keras)
from keras_vae.layers import Sampling


def _log_normal(z, mean, log_var):
    """log N(z; mean, exp(log_var)) summed over the last axis, nats."""
    return -0.5 * ops.sum(
        math.log(2 * math.pi) + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1
    )


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
    log_prior = _log_normal(z, 0.0, ops.zeros_like(z))
    log_posterior = _log_normal(z, mean, log_var)
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


def confident_share(probabilities, threshold=0.9):
    """Share of rows whose largest class probability is >= `threshold`."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(
            f"probabilities must be [N, classes] with N > 0; got {probabilities.shape}."
        )
    return float(np.mean(probabilities.max(axis=1) >= threshold))


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets `[N, F]`.

    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), the FID
    formula, in squared feature units; 0 for identical statistics.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"features must be [N, F] with the same F and N >= 2; got {a.shape} and {b.shape}."
        )
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    mean_gap = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
    return float(mean_gap + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def step_unevenness(paths, over="path"):
    """Largest single-step pixel change over the whole path's change, per path.

    Args:
        paths: images `[num_paths, points, H, W, C]`, each path from its first
            to its last image.
        over: what "the whole path's change" is. "path": the sum of the step
            changes (the path's length in pixel space); "ends": the change
            from the first image to the last. Both give 1/(points-1) for
            equal steps on a straight line; "ends" also counts detours
            against a path (steps that wander away and come back).

    Returns:
        float `[num_paths]`, at least 1/(points-1) (perfectly even) and, for
        `over="path"`, at most 1 (one step does all the change). Paths whose
        denominator is zero give NaN.
    """
    if over not in ("path", "ends"):
        raise ValueError(f"over must be 'path' or 'ends'; got {over!r}.")
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim < 3 or paths.shape[1] < 2:
        raise ValueError(f"paths must be [num_paths, points >= 2, ...]; got {paths.shape}.")
    flat = paths.reshape(paths.shape[0], paths.shape[1], -1)
    lengths = np.linalg.norm(np.diff(flat, axis=1), axis=-1)
    if over == "path":
        totals = lengths.sum(axis=1)
    else:
        totals = np.linalg.norm(flat[:, -1] - flat[:, 0], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, lengths.max(axis=1) / totals, np.nan)


def pixel_distance(images_a, images_b):
    """Pixel L2 distance between paired images `[N, H, W, C]`, float `[N]`."""
    a = np.asarray(images_a, dtype=np.float64)
    b = np.asarray(images_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Paired images must have the same shape; got {a.shape} and {b.shape}.")
    return np.linalg.norm((a - b).reshape(len(a), -1), axis=1)
