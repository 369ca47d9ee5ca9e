import numpy as np
import pytest

from keras_vae import metrics


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


def test_pixel_distance_is_the_l2_norm_per_pair():
    a = np.zeros((2, 2, 2, 1))
    b = np.ones((2, 2, 2, 1))
    np.testing.assert_allclose(metrics.pixel_distance(a, b), [2.0, 2.0])
    with pytest.raises(ValueError, match="same shape"):
        metrics.pixel_distance(a, b[:1])
