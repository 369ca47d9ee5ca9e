"""train.py end to end, in a subprocess, on real Fashion-MNIST."""

import json
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from keras_vae import VAE
from tests.conftest import REPO_ROOT, run_train


def scalar_tags(event_dir):
    tags = {}
    for path in event_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_train_writes_every_artifact(trained_run):
    run_dir, result = trained_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "keras_example" and config["epochs"] == 2

    model = keras.models.load_model(run_dir / "model.keras")
    assert isinstance(model, VAE) and model.latent_dim == 2

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["negative_elbo"] == metrics["reconstruction_loss"] + metrics["kl_loss"]
    assert 150 < metrics["negative_elbo"] < 545
    assert f"negative_elbo {metrics['negative_elbo']:.2f}" in result.stdout

    for split in ("train", "validation"):
        tags = scalar_tags(run_dir / "logs" / split)
        for name in ("loss", "reconstruction_loss", "kl_loss"):
            assert tags[f"epoch_{name}"] == [0, 1], (split, name, tags)
    assert scalar_tags(run_dir / "logs" / "train")["epoch_kl_weight"] == [0, 1]

    samples = np.asarray(Image.open(run_dir / "samples.png"))
    assert samples.shape == (8 * 29 + 1, 8 * 29 + 1)
    assert samples.std() > 5  # not a blank image
    reconstructions = np.asarray(Image.open(run_dir / "reconstructions.png"))
    assert reconstructions.shape == (4 * 29 + 1, 8 * 29 + 1)
    assert not (run_dir / "backup").exists()


def test_evaluated_model_is_the_best_checkpoint(trained_run):
    run_dir, _ = trained_run
    model = keras.models.load_model(run_dir / "model.keras")
    # Reconstructions of test images must beat a blank guess by a wide margin.
    from keras_vae import data

    test_images, _ = data.load("fashion_mnist", "test")
    reconstructions = keras.ops.convert_to_numpy(model(test_images[:64]))
    assert np.mean((reconstructions - test_images[:64]) ** 2) < np.mean(
        (0.5 - test_images[:64]) ** 2
    )


def test_help_documents_every_flag():
    result = subprocess.run(
        [sys.executable, "train.py", "--help"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0
    for flag in (
        "--dataset",
        "--data-dir",
        "--preset",
        "--latent-dim",
        "--beta",
        "--likelihood",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--run-dir",
        "--kl-warmup-epochs",
    ):
        assert flag in result.stdout


def test_bad_arguments_give_one_line_errors(tmp_path):
    result = run_train(tmp_path / "bad", "--preset", "giant")
    assert result.returncode == 2
    assert (
        "train.py: error: Unknown preset 'giant'. Valid presets: default, keras_example, mlp."
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    result = run_train(tmp_path / "bad2", "--data-dir", str(tmp_path / "missing"))
    assert result.returncode == 2 and "Data directory not found" in result.stderr
    assert "Traceback" not in result.stderr
