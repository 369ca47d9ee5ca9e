"""Scores of generated images beyond the ELBO, computed from a classifier's outputs.

Plain numpy on arrays the caller computes: class probabilities `[N, K]`,
feature vectors `[N, F]`, images `[N, H, W, C]`.
"""

import numpy as np


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


def step_unevenness(paths):
    """Largest single-step pixel change over the whole path's change, per path.

    Args:
        paths: images `[num_paths, points, H, W, C]`, each path from its first
            to its last image.

    Returns:
        float `[num_paths]` in [1/(points-1), 1]: 1/(points-1) when every step
        changes the image by the same pixel L2 distance, 1 when one step does
        all the change. Paths whose images never change give NaN.
    """
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim < 3 or paths.shape[1] < 2:
        raise ValueError(f"paths must be [num_paths, points >= 2, ...]; got {paths.shape}.")
    steps = np.diff(paths.reshape(paths.shape[0], paths.shape[1], -1), axis=1)
    lengths = np.linalg.norm(steps, axis=-1)
    totals = lengths.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, lengths.max(axis=1) / totals, np.nan)


def pixel_distance(images_a, images_b):
    """Pixel L2 distance between paired images `[N, H, W, C]`, float `[N]`."""
    a = np.asarray(images_a, dtype=np.float64)
    b = np.asarray(images_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Paired images must have the same shape; got {a.shape} and {b.shape}.")
    return np.linalg.norm((a - b).reshape(len(a), -1), axis=1)
