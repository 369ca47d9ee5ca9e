"""Bad input gets a clear one-line error; numerically extreme input trains without NaN."""

import gzip
import logging
import struct
import time

import keras
import numpy as np
import pytest

from keras_vae import VAE, cli, datasets
from keras_vae.datasets import pipeline
from keras_vae.training import train as training
from tests.testing import (
    SMALL_EXPORT_ARGS,
    TINY,
    TINY_TRAIN_ARGS,
    call_main,
    random_images,
    write_idx,
)


def train_main(run_dir, *args):
    """train.py's main in this process, on a tiny run: (exit code, stdout, stderr)."""
    import train

    return call_main(
        train.main, ["--run-dir", run_dir, *TINY_TRAIN_ARGS, *SMALL_EXPORT_ARGS, *args]
    )


def assert_one_line_error(result, message):
    code, out, err = result
    assert code == 2, out[-2000:] + err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("train.py: error:")]
    assert len(lines) == 1 and message in lines[0], err[-2000:]
    assert "Traceback" not in err


# Each bad value of a TrainingConfig field, through the CLI: the message is
# TrainingConfig.validate's (tests/test_config.py checks the config's other rules).
@pytest.mark.parametrize(
    "args, message",
    [
        (["--latent-dim", "0"], "latent_dim (--latent-dim) must be > 0; got 0."),
        (["--beta", "-1"], "beta (--beta) must be >= 0; got -1.0."),
        (["--batch-size", "0"], "batch_size (--batch-size) must be > 0; got 0."),
        (["--epochs", "0"], "epochs (--epochs) must be > 0; got 0."),
        (["--dataset", "cifar10"], "Valid datasets: fashion_mnist, mnist, folder, celeba."),
        (["--preset", "resnet"], "Valid presets: conv, conv_deep, default, keras_example, mlp."),
        (["--likelihood", "laplace"], "Valid likelihoods: bernoulli, gaussian."),
        (["--strategy", "tpu"], "Valid strategies: auto, one_device, mirrored, multi_worker."),
        (["--gaussian-scale", "-0.5"], "gaussian_scale (--gaussian-scale) must be 'learned' or a"),
    ],
)
def test_invalid_flags(tmp_path, args, message):
    assert_one_line_error(train_main(tmp_path / "run", *args), message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learning-rate", "inf"], "learning_rate (--learning-rate) must be a finite number"),
        (["--beta", "inf"], "beta (--beta) must be a finite number; got inf."),
        (["--beta", "nan"], "beta (--beta) must be a finite number; got nan."),
        (
            ["--likelihood", "gaussian", "--gaussian-scale", "inf"],
            "gaussian_scale (--gaussian-scale) must be a finite number; got inf.",
        ),
        (["--latent-dim", "100000000"], "latent_dim (--latent-dim) must be at most 1024"),
        (["--seed", "-1"], "seed (--seed) must be >= 0; got -1."),
    ],
)
def test_infinite_and_oversized_flags_are_refused_before_training(tmp_path, args, message):
    assert_one_line_error(train_main(tmp_path / "run", *args), message)
    assert not (tmp_path / "run").exists()


def test_truncated_idx_file_at_the_cli(tmp_path, idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    result = train_main(tmp_path / "run", "--data-dir", str(idx_dir))
    assert_one_line_error(result, "train-images-idx3-ubyte.gz")


def test_idx_header_declaring_gigabytes_is_refused_at_the_cli(tmp_path, idx_dir):
    # 3 images of 40000 x 40000 declared; the file holds 8 MB of zeros in 8 kB.
    path = idx_dir / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 3, 40000, 40000) + bytes(2**23))
    started = time.monotonic()
    result = train_main(tmp_path / "run", "--data-dir", str(idx_dir))
    assert_one_line_error(result, "the limit is 1,073,741,824 bytes (1 GiB)")
    assert "4,800,000,000 bytes of data" in result[2]
    assert time.monotonic() - started < 60
    assert not (tmp_path / "run").exists()


def test_empty_dataset_at_the_cli(tmp_path, idx_dir):
    write_idx(idx_dir / "train-images-idx3-ubyte.gz", np.zeros((0, 8, 8), np.uint8))
    write_idx(idx_dir / "train-labels-idx1-ubyte.gz", np.zeros((0,), np.uint8))
    result = train_main(tmp_path / "run", "--data-dir", str(idx_dir))
    assert_one_line_error(result, "expected a non-empty array")


def test_image_shape_the_model_cannot_take_at_the_cli(tmp_path):
    for split, count in (("train", 40), ("test", 8)):
        images = np.random.default_rng(0).integers(0, 256, (count, 30, 30), dtype=np.uint8)
        write_idx(tmp_path / f"{datasets.IDX_FILES[split][0]}.gz", images)
        write_idx(tmp_path / f"{datasets.IDX_FILES[split][1]}.gz", np.zeros(count, np.uint8))
    result = train_main(tmp_path / "run", "--data-dir", str(tmp_path), "--validation-size", "8")
    assert_one_line_error(result, "height and width must be divisible by 4")


def test_missing_data_dir_at_the_cli(tmp_path):
    result = train_main(tmp_path / "run", "--data-dir", str(tmp_path / "missing"))
    assert_one_line_error(result, "Data directory not found")
    assert not (tmp_path / "run").exists()  # the run dir the lock created is gone again
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    result = train_main(tmp_path / "mine", "--data-dir", str(tmp_path / "missing"))
    assert_one_line_error(result, "Data directory not found")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "kept"


def test_wrong_image_shape_for_fit_and_encode():
    model = VAE(seed=0, **TINY)
    model.compile(optimizer="adam")
    rgb = np.zeros((4, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match=r"takes images of shape \(batch, 28, 28, 1\)"):
        model.fit(rgb, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"got \(4, 32, 32, 3\)"):
        model.encode(rgb)
    with pytest.raises(ValueError, match="takes images of shape"):
        model.encode(np.zeros((4, 28, 28), np.float32))


def test_wrong_latent_size_to_decode():
    model = VAE(seed=0, **TINY)
    with pytest.raises(
        ValueError, match=r"decodes latent codes of shape \(batch, 3\); got \(2, 5\)"
    ):
        model.decode(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize(
    "images, message",
    [
        (np.full((2, 4, 4, 1), np.nan, np.float32), "32 pixels are NaN or infinite"),
        (np.array([np.inf]).reshape(1, 1, 1, 1), "1 pixels are NaN or infinite"),
        (np.full((2, 4, 4, 1), 255.0), r"span \[255, 255\].*divide 8-bit images by 255"),
        (np.zeros((0, 4, 4, 1)), "non-empty array"),
        (np.zeros((4, 4, 1)), "shape \\(N, H, W, C\\)"),
    ],
)
def test_check_images_rejects_unusable_pixels(images, message):
    with pytest.raises(datasets.DataError, match=message):
        datasets.check_images(images, "bernoulli")


def test_gaussian_likelihood_accepts_any_finite_range():
    datasets.check_images(np.full((2, 4, 4, 1), 255.0), "gaussian")


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_all_zero_and_all_one_images_train_without_nan(fill):
    images = np.full((32, 28, 28, 1), fill, np.float32)
    model = VAE(seed=0, **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images, epochs=5, batch_size=8, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_log_variance_is_clipped_so_exp_cannot_overflow():
    model = VAE(seed=0, **TINY)
    layer = model.encoder.get_layer("log_var")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, 1000.0)])
    images = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype(np.float32)
    _, log_var = model.encode(images)
    assert float(np.max(log_var)) == 20.0
    reconstruction, kl = model.loss_terms(images)
    assert np.all(np.isfinite(reconstruction)) and np.all(np.isfinite(kl))


@pytest.mark.parametrize("prior", [{}, {"learned_prior": "vamp", "pseudo_inputs": 4}])
def test_mixed_precision_keeps_losses_in_float32(prior):
    images = np.random.default_rng(0).uniform(size=(16, 28, 28, 1)).astype(np.float32)
    with training.dtype_policy(mixed_precision=True):
        model = VAE(seed=0, **TINY, **prior)
        model.compile(optimizer="adam")
        assert model.compute_dtype == "bfloat16" and model.sampling.compute_dtype == "float32"
        reconstruction, kl = model.loss_terms(images)
        history = model.fit(images, epochs=2, batch_size=8, verbose=0)
    assert reconstruction.dtype == "float32" and kl.dtype == "float32"
    assert all(np.isfinite(history.history["loss"]))
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize(
    "fill, message",
    [
        (np.nan, "fit_arguments' images: 1 pixels are NaN or infinite"),
        (255.0, r"fit_arguments' images: pixel values span .*, 255\], but the bernoulli"),
    ],
)
def test_the_fit_pipeline_checks_array_pixels_where_they_enter(fill, message):
    # The ValueError docs/troubleshooting.md promises, before any step.
    images = random_images(8)
    images[0, 0, 0, 0] = fill
    with pytest.raises(ValueError, match=message):
        pipeline.fit_arguments(images, batch_size=4)
    with pytest.raises(ValueError, match="fit_arguments' validation_images"):
        pipeline.fit_arguments(random_images(8), images, batch_size=4)
    with pytest.raises(ValueError, match="test images"):
        pipeline.make_dataset(images, name="test images")
    if fill == 255.0:  # the Gaussian likelihood takes any finite pixels
        pipeline.fit_arguments(images, images, batch_size=4, likelihood="gaussian")


@pytest.mark.parametrize("dataset", ["mnist", "celeba"])
def test_tensorflow_datasets_offline_is_one_line_naming_data_dir(dataset, tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):  # the network, as it fails without one
        assert logging.getLogger("urllib3").level == logging.ERROR  # no warning per retry
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'" + " x" * 200 + "\nmore")

    monkeypatch.setattr(tfds, "load", offline)
    argv = ["train", "--dataset", dataset, "--run-dir", tmp_path / "run", "--epochs", "1"]
    code, _, err = call_main(cli.main, argv)
    assert code == 2, err[-2000:]
    assert len(err.strip().splitlines()) == 1, err[-2000:]
    assert "ConnectionError: Failed to resolve" in err and "pass --data-dir" in err
    assert " x x..." in err and "more" not in err  # the first line, cut where it is long
    assert logging.getLogger("urllib3").level != logging.ERROR  # put back
