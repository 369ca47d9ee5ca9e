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
