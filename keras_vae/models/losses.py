"""Loss terms of the VAE objective as plain functions.

Every function returns one value per image, in nats (natural-log units):
a sum over pixels or latent dimensions, never a mean, so the terms add up
to the negative ELBO of each image.
"""

import math

from keras import ops

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _sum_per_image(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


def bernoulli_nll(images, logits):
    """-log p(x | z) under independent Bernoulli pixels, nats per image.

    Args:
        images: float `[batch, H, W, C]`, pixel intensities in [0, 1] (the
            continuous Bernoulli-style use of binary cross-entropy).
        logits: float `[batch, H, W, C]`, decoder outputs before the sigmoid.

    Returns:
        float `[batch]`: binary cross-entropy summed over pixels.
    """
    per_pixel = ops.binary_crossentropy(images, logits, from_logits=True)
    return _sum_per_image(per_pixel)


def gaussian_nll(images, mean, log_scale):
    """-log N(x; mean, exp(log_scale)^2) summed over pixels, nats per image.

    Args:
        images: float `[batch, H, W, C]`.
        mean: float `[batch, H, W, C]`, the decoder's mean image.
        log_scale: float scalar (or broadcastable), log of the standard
            deviation shared by the pixels.

    Returns:
        float `[batch]`.
    """
    log_scale = ops.cast(log_scale, mean.dtype)
    standardized = (images - mean) * ops.exp(-log_scale)
    per_pixel = _HALF_LOG_TWO_PI + log_scale + 0.5 * ops.square(standardized)
    return _sum_per_image(per_pixel)


def kl_to_standard_normal(mean, log_var):
    """Closed-form KL(N(mean, exp(log_var)) || N(0, I)), nats per image.

    Args:
        mean: float `[batch, latent_dim]`.
        log_var: float `[batch, latent_dim]`.

    Returns:
        float `[batch]`: the KL summed over latent dimensions.
    """
    per_dim = -0.5 * (1.0 + log_var - ops.square(mean) - ops.exp(log_var))
    return ops.sum(per_dim, axis=-1)


def log_normal(z, mean, log_var):
    """log N(z; mean, exp(log_var)) of a diagonal Gaussian, summed over the last axis, nats."""
    return -0.5 * ops.sum(
        2.0 * _HALF_LOG_TWO_PI + log_var + ops.square(z - mean) * ops.exp(-log_var), axis=-1
    )


def log_mixture(z, means, log_vars):
    """log of the equal-weight mixture of diagonal Gaussians at `z`, nats.

    Args:
        z: float `[..., latent_dim]`.
        means, log_vars: float `[k, latent_dim]`, the components.

    Returns:
        float `[...]`: log((1/k) sum_c N(z; means[c], exp(log_vars[c]))), by
        log-sum-exp, so a z far from every component is finite, not -inf.
    """
    # sum_d (z - m)^2 / v expanded into matrix products, so that memory holds
    # [n, k] values rather than [n, k, latent_dim].
    latent_dim = ops.shape(z)[-1]
    flat = ops.reshape(z, (-1, latent_dim))
    precisions = ops.exp(-log_vars)  # [k, d]
    squared = (
        ops.matmul(ops.square(flat), ops.transpose(precisions))
        - 2.0 * ops.matmul(flat, ops.transpose(means * precisions))
        + ops.sum(ops.square(means) * precisions, axis=-1)
    )
    per_component = -0.5 * (
        2.0 * _HALF_LOG_TWO_PI * ops.cast(latent_dim, z.dtype)
        + ops.sum(log_vars, axis=-1)
        + squared
    )  # [n, k]
    count = ops.cast(ops.shape(means)[0], z.dtype)
    log_density = ops.logsumexp(per_component, axis=-1) - ops.log(count)
    return ops.reshape(log_density, ops.shape(z)[:-1])
