"""Latent arithmetic: interpolation, attribute vectors, edits and average codes.

Codes are posterior means `[N, latent_dim]` from `VAE.encode` (or the codes of
an `Autoencoder`); `keras_vae.generation.Codec` computes them in batches.
The arithmetic is plain NumPy in float64 (returned as float32): these are
small arrays, and exact endpoints and clear NaN checks matter more than speed.

Example:
>>> codes = Codec(vae).encode(images)                  # [N, latent_dim]
>>> smile = attribute_vector(codes, attributes[:, SMILING])
>>> faces = Codec(vae).decode(edit(codes[0], smile, [-1, 0, 1, 2]))
"""

import keras
import numpy as np

from keras_vae.utils import names

# Below this sin(angle) two directions count as parallel: slerp is then lerp.
_PARALLEL = 1e-6


def _as_array(name, values, ndims):
    """`values` as float64, checked for its number of dimensions and NaN."""
    array = np.asarray(keras.ops.convert_to_numpy(values), dtype=np.float64)
    if array.ndim not in ndims:
        expected = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {expected}; got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} contains NaN or infinite values; use finite codes (a diverged model "
            "gives NaN)."
        )
    return array


def _same_width(name_a, a, name_b, b):
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} has latent size {a.shape[-1]} but {name_b} has {b.shape[-1]}; "
            "both must come from the same model."
        )


def interpolate(z0, z1, steps, method="slerp"):
    """Codes on the path from `z0` to `z1`, both endpoints included.

    "lerp" is the straight line (1 - t) z0 + t z1. "slerp" turns the direction
    along the great circle between z0/|z0| and z1/|z1| while the norm goes
    linearly from |z0| to |z1|: in many dimensions z ~ N(0, I) lies near the
    sphere of radius sqrt(latent_dim), which the straight line cuts through
    (its midpoint between two independent draws has about 0.71 times their
    norm), while slerp stays on it. Parallel or zero codes fall back to lerp.

    Args:
        z0, z1: codes `[latent_dim]`, or `[batch, latent_dim]` for a batch of
            paths.
        steps: number of codes on the path, >= 2 (t = 0, 1/(steps-1), ..., 1).
        method: "slerp" or "lerp".

    Returns:
        float32 `[steps, latent_dim]` (or `[batch, steps, latent_dim]`); the
        first and last codes are exactly z0 and z1.
    """
    names.check_choice("method", method, names.INTERPOLATIONS)
    if int(steps) != steps or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (both endpoints count); got {steps}.")
    z0 = _as_array("z0", z0, (1, 2))
    z1 = _as_array("z1", z1, (1, 2))
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape; got {z0.shape} and {z1.shape}.")
    a, b = z0[..., None, :], z1[..., None, :]  # [..., 1, latent_dim]
    t = np.linspace(0.0, 1.0, int(steps))[:, None]  # [steps, 1]
    path = (1 - t) * a + t * b
    if method == "slerp":
        path = np.where(_parallel(a, b), path, _slerp(a, b, t))
    path[..., 0, :], path[..., -1, :] = z0, z1
    return path.astype(np.float32)


def _norms(z):
    return np.linalg.norm(z, axis=-1, keepdims=True)


def _parallel(a, b):
    """True where the directions of `a` and `b` are undefined or (anti)parallel."""
    norms = _norms(a) * _norms(b)
    cosine = np.sum(a * b, axis=-1, keepdims=True) / np.where(norms > 0, norms, 1.0)
    return (norms == 0) | (np.sqrt(np.clip(1 - cosine**2, 0.0, 1.0)) < _PARALLEL)


def _slerp(a, b, t):
    norm_a, norm_b = _norms(a), _norms(b)
    unit_a = a / np.where(norm_a > 0, norm_a, 1.0)
    unit_b = b / np.where(norm_b > 0, norm_b, 1.0)
    angle = np.arccos(np.clip(np.sum(unit_a * unit_b, axis=-1, keepdims=True), -1.0, 1.0))
    sin_angle = np.where(np.sin(angle) > _PARALLEL, np.sin(angle), 1.0)
    direction = (np.sin((1 - t) * angle) * unit_a + np.sin(t * angle) * unit_b) / sin_angle
    return ((1 - t) * norm_a + t * norm_b) * direction


def _group_mean(codes, mask, group):
    if not mask.any():
        raise ValueError(
            f"No codes {group}: the group is empty, so its mean is undefined. "
            "Use more images or another attribute."
        )
    return codes[mask].mean(axis=0)


def average_code(codes):
    """The mean code `[latent_dim]` (float32) of `codes` `[N, latent_dim]`."""
    codes = _as_array("codes", codes, (2,))
    return _group_mean(codes, np.ones(len(codes), bool), "given").astype(np.float32)


def attribute_mask(has_attribute, count):
    """`has_attribute` (booleans, 0/1 or CelebA's -1/1) as a bool `[count]` array."""
    values = np.asarray(keras.ops.convert_to_numpy(has_attribute))
    if values.shape != (count,):
        raise ValueError(
            f"has_attribute must have one entry per code: expected shape ({count},), "
            f"got {values.shape}."
        )
    if values.dtype == bool:
        return values
    if not np.isin(values, (-1, 0, 1)).all():
        raise ValueError(
            "has_attribute must be booleans, 0/1 or -1/1; got values "
            f"{sorted(set(np.unique(values).tolist()) - {-1, 0, 1})[:5]}."
        )
    return values == 1


def attribute_vector(codes, has_attribute):
    """mean(codes with the attribute) - mean(codes without it), float32 `[latent_dim]`.

    Args:
        codes: `[N, latent_dim]` posterior means.
        has_attribute: `[N]` booleans (or 0/1, or CelebA's -1/1).

    Raises:
        ValueError: a group is empty, the shapes disagree, or codes hold NaN.
    """
    codes = _as_array("codes", codes, (2,))
    mask = attribute_mask(has_attribute, len(codes))
    with_attribute = _group_mean(codes, mask, "with the attribute")
    without_attribute = _group_mean(codes, ~mask, "without the attribute")
    return (with_attribute - without_attribute).astype(np.float32)


def edit(z, vector, alphas):
    """Codes z + alpha * vector for each alpha.

    Args:
        z: a code `[latent_dim]` or codes `[batch, latent_dim]`.
        vector: an attribute vector `[latent_dim]`.
        alphas: sequence of floats; 0 keeps z, 1 adds the whole vector.

    Returns:
        float32 `[len(alphas), latent_dim]` (or `[batch, len(alphas), latent_dim]`).
    """
    z = _as_array("z", z, (1, 2))
    vector = _as_array("vector", vector, (1,))
    alphas = _as_array("alphas", np.atleast_1d(alphas), (1,))
    _same_width("z", z, "vector", vector)
    if len(alphas) == 0:
        raise ValueError("alphas is empty; give at least one alpha (0 keeps the code).")
    return (z[..., None, :] + alphas[:, None] * vector).astype(np.float32)
