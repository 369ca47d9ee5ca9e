"""The classifier scores, and the latent-quality benchmark and its sweep on a tiny synthetic set."""

import argparse

import numpy as np
import pytest

from benchmarks import latent_quality as lq
from benchmarks import latent_sweep, scores, trainers


def score_dicts(confident, frechet, slerp, lerp):
    return {
        "prior": {"confident_share": confident, "frechet_distance": frechet},
        "interpolation": {
            "slerp": {"max_step_over_path": slerp},
            "lerp": {"max_step_over_path": lerp},
        },
    }


def test_verdict_needs_both_prior_measures_and_reports_b_per_method():
    ae = score_dicts(0.1, 50.0, 0.09, 0.09)
    assert latent_sweep.verdict(score_dicts(0.2, 40.0, 0.08, 0.08), ae) == {
        "a": True,
        "b": {"slerp": True, "lerp": True},
        "a_and_b": True,
    }
    # A higher confident share alone is not (a); winning one method is not all of (b).
    mixed = latent_sweep.verdict(score_dicts(0.2, 60.0, 0.10, 0.08), ae)
    assert mixed == {"a": False, "b": {"slerp": False, "lerp": True}, "a_and_b": False}


def test_label_names_only_what_differs_from_the_defaults():
    assert latent_sweep.label({"latent_dim": 32}) == "latent 32"
    assert latent_sweep.label({"latent_dim": 8, "beta": 0.25}) == "latent 8, beta 0.25"
    assert (
        latent_sweep.label({"latent_dim": 32, "likelihood": "gaussian"})
        == "latent 32, gaussian likelihood"
    )


@pytest.fixture(scope="module")
def tiny_fashion():
    """Ten classes of 28x28 images: class k is a bright bar at row 2k, plus noise."""
    rng = np.random.default_rng(0)

    def split(n):
        labels = np.arange(n) % 10
        images = 0.1 * rng.random((n, 28, 28, 1), dtype=np.float32)
        for i, k in enumerate(labels):
            images[i, 2 * k + 3 : 2 * k + 8, 4:24] = 0.9
        return images, labels

    return split(160), split(60)


def test_select_keeps_the_plain_settings_of_the_asked_sizes():
    assert latent_sweep.select(latent_sweep.SETTINGS) == latent_sweep.SETTINGS
    assert latent_sweep.select(latent_sweep.SETTINGS, "3,2") == (
        {"latent_dim": 3},
        {"latent_dim": 2},
    )
    with pytest.raises(ValueError, match=r"latent size \[5\]; the sweep has \[2, 3,"):
        latent_sweep.select(latent_sweep.SETTINGS, "2,5")
    with pytest.raises(ValueError, match="comma-separated integers"):
        latent_sweep.select(latent_sweep.SETTINGS, "two")


def test_active_dims_counts_dimensions_whose_mean_varies():
    rng = np.random.default_rng(0)
    means = np.concatenate([rng.normal(0, 1.0, (500, 2)), rng.normal(0, 0.01, (500, 3))], axis=1)
    assert lq.active_dims(means) == 2


def test_sweep_scores_every_setting_and_trains_one_autoencoder_per_latent_size(
    tiny_fashion, monkeypatch
):
    train, test = tiny_fashion
    trained = []
    real_train_model = trainers.train_model

    def counting_train_model(model, *args, **kwargs):
        trained.append((type(model).__name__, model.latent_dim))
        return real_train_model(model, *args, **kwargs)

    monkeypatch.setattr(trainers, "train_model", counting_train_model)
    args = argparse.Namespace(
        epochs=1, batch_size=32, samples=16, pairs=5, steps=4, seed=0, alpha=1.0
    )
    judge, accuracy = scores.train_classifier(train, test, epochs=1, seed=0)
    assert 0.0 <= accuracy <= 1.0
    _, test_features = judge(test[0])
    settings = ({"latent_dim": 2}, {"latent_dim": 2, "beta": 0.5}, {"latent_dim": 3})
    rows = latent_sweep.sweep(settings, "mlp", train, test, judge, test_features, args)

    assert [row["label"] for row in rows] == ["latent 2", "latent 2, beta 0.5", "latent 3"]
    # One AE per latent size: the two latent-2 rows share theirs, the VAEs differ.
    assert trained == [("VAE", 2), ("Autoencoder", 2), ("VAE", 2), ("VAE", 3), ("Autoencoder", 3)]
    assert rows[0]["AE"] is rows[1]["AE"] and rows[2]["AE"] is not rows[0]["AE"]
    assert rows[0]["VAE"]["kl_nats"] != rows[1]["VAE"]["kl_nats"]
    for row, setting in zip(rows, settings, strict=True):
        assert 0 <= row["VAE"]["active_dims"] <= setting["latent_dim"]
        for model in ("VAE", "AE"):
            for method in ("slerp", "lerp"):
                b = row[model]["interpolation"][method]
                assert 1 / args.steps - 1e-9 <= b["max_step_over_path"] <= 1.0
                assert b["max_step_over_ends"] >= 1 / args.steps - 1e-9
            assert 0.0 <= row[model]["prior"]["confident_share"] <= 1.0
            assert row[model]["prior"]["frechet_distance"] >= 0.0
    assert "prior_fitted_gaussian" in rows[0]["AE"]
    table = latent_sweep.markdown_table(rows).splitlines()
    assert len(table) == 2 + len(settings)
    assert table[2].startswith(f"| latent 2 | {rows[0]['VAE']['active_dims']} |")


def test_confident_share_counts_rows_at_or_above_the_threshold():
    probabilities = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert scores.confident_share(probabilities, 0.9) == 0.5
    with pytest.raises(ValueError, match=r"\[N, classes\]"):
        scores.confident_share(np.zeros((0, 3)))


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 4))
    assert scores.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Shifted mean: |d|^2. Doubled std: tr(I + 4I - 2 * 2I) = 4 * 1.
    assert scores.frechet_distance(a, a + [1.0, 2.0, 0.0, 0.0]) == pytest.approx(5.0, abs=1e-6)
    b = 2.0 * rng.standard_normal((20000, 4))
    assert scores.frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)
    with pytest.raises(ValueError, match="same F"):
        scores.frechet_distance(a, b[:, :3])


def test_step_unevenness_is_one_over_steps_for_even_paths_and_one_for_a_jump():
    t = np.linspace(0, 1, 17)[:, None, None, None]
    even = t * np.ones((1, 4, 4, 1))
    jump = np.where(t > 0.5, 1.0, 0.0) * np.ones((1, 4, 4, 1))
    still = np.zeros((17, 4, 4, 1))
    result = scores.step_unevenness(np.stack([even, jump, still]))
    np.testing.assert_allclose(result[:2], [1 / 16, 1.0])
    assert np.isnan(result[2])
    with pytest.raises(ValueError, match="points >= 2"):
        scores.step_unevenness(np.zeros((2, 1, 4, 4, 1)))


def test_step_unevenness_over_the_ends_counts_detours():
    t = np.linspace(0, 1, 17)[:, None, None, None]
    even = t * np.ones((1, 4, 4, 1))
    # Out along one pixel and back, while another pixel moves evenly 0 -> 1:
    # the path is longer than its ends' distance.
    detour = np.zeros((17, 2, 1, 1))
    detour[:, 0, 0, 0] = np.linspace(0, 1, 17)
    detour[:, 1, 0, 0] = np.concatenate([np.linspace(0, 1, 9), np.linspace(1, 0, 9)[1:]])
    np.testing.assert_allclose(scores.step_unevenness(even[None], over="ends"), [1 / 16])
    step = np.hypot(1 / 16, 1 / 8)
    np.testing.assert_allclose(scores.step_unevenness(detour[None], over="ends"), [step])
    np.testing.assert_allclose(scores.step_unevenness(detour[None]), [1 / 16])
    # A closed loop has no change between its ends: NaN, not infinity.
    loop = np.concatenate([even, even[::-1]])
    assert np.isnan(scores.step_unevenness(loop[None], over="ends")[0])
    with pytest.raises(ValueError, match="'path' or 'ends'"):
        scores.step_unevenness(even[None], over="chord")


def test_pixel_distance_is_the_l2_norm_per_pair():
    a = np.zeros((2, 2, 2, 1))
    b = np.ones((2, 2, 2, 1))
    np.testing.assert_allclose(scores.pixel_distance(a, b), [2.0, 2.0])
    with pytest.raises(ValueError, match="same shape"):
        scores.pixel_distance(a, b[:1])


def test_class_entropy_is_that_of_the_predicted_class_histogram():
    uniform = np.eye(10)[np.arange(100) % 10]
    assert scores.class_entropy(uniform) == pytest.approx(np.log(10))
    assert scores.class_entropy(np.eye(10)[np.zeros(50, int)]) == 0.0
    halves = np.eye(4)[np.arange(10) % 2]
    assert scores.class_entropy(halves) == pytest.approx(np.log(2))
