"""train.py end to end, in a subprocess, on real Fashion-MNIST."""

import dataclasses
import io
import json
import os
import subprocess
import sys
import time
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_vae import VAE, datasets
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from tests.testing import (
    call_main,
    free_ports,
    logged_images,
    scalar_steps,
    tiny_config,
    wait_for,
)

TINY_CONFIG = {"preset": "mlp", "train_subset": 300, "validation_size": 100, "test_subset": 50}


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
        tags = scalar_steps(run_dir / "logs" / split)
        for name in ("loss", "reconstruction_loss", "kl_loss"):
            assert tags[f"epoch_{name}"] == [0, 1], (split, name, tags)
    assert scalar_steps(run_dir / "logs" / "train")["epoch_kl_weight"] == [0, 1]

    samples = np.asarray(Image.open(run_dir / "samples.png"))
    assert samples.shape == (8 * 29 + 1, 8 * 29 + 1)
    assert samples.std() > 5  # not a blank image
    # samples.png is drawn from the prior fitted after training, samples_standard.png from N(0, I).
    assert config["prior"] == "gmm" and model.prior.kind == "gmm"
    np.testing.assert_array_equal(
        samples[1:29, 1:29], png_cell(model.sample(64, seed=config["seed"]))
    )
    standard = np.asarray(Image.open(run_dir / "samples_standard.png"))
    np.testing.assert_array_equal(
        standard[1:29, 1:29], png_cell(model.sample(64, seed=config["seed"], prior="standard"))
    )
    fits = metrics["prior"]["fits"]
    assert metrics["prior"]["default"] == "gmm" and set(fits) == {"gaussian", "gmm"}
    assert fits["gmm"]["validation_codes"] == 256 and fits["gmm"]["codes"] == 1024 - 256
    likelihoods = metrics["prior"]["test_log_likelihood"]
    # train.py's default model learned a VampPrior, which is scored beside the fits.
    assert set(likelihoods) == {"standard", "gaussian", "gmm", "vamp"}
    assert likelihoods["gmm"] >= likelihoods["gaussian"] - 0.5
    reconstructions = np.asarray(Image.open(run_dir / "reconstructions.png"))
    assert reconstructions.shape == (4 * 29 + 1, 8 * 29 + 1)
    assert not (run_dir / "backup").exists()


def png_cell(images):
    """The first image of `images` as samples.png's first cell holds it."""
    return np.rint(keras.ops.convert_to_numpy(images)[0, :, :, 0] * 255).astype(np.uint8)


def test_prior_standard_fits_nothing(tmp_path, fashion_mnist):
    # A model under N(0, I), whose default --prior standard keeps: nothing to save.
    config = TrainingConfig(prior="standard", learned_prior="standard", **TINY_CONFIG)
    splits = training.load_splits(config)
    model = VAE(**config.model_kwargs(splits[0].shape[1:]))
    path = tmp_path / "model.keras"
    facts = training.fit_run_priors(model, config, splits, str(tmp_path))
    assert facts["default"] == "standard" and facts["fits"] == {} and not path.exists()
    (tmp_path / "metrics.json").write_text(json.dumps({"loss": 1.0}))
    facts = training.fit_run_priors(
        model,
        TrainingConfig(prior_components=3, learned_prior="standard", **TINY_CONFIG),
        splits,
        str(tmp_path),
    )
    assert facts["components"] == 3 and path.exists()
    assert keras.models.load_model(path).prior.components == 3
    recorded = json.loads((tmp_path / "metrics.json").read_text())
    assert recorded == {"loss": 1.0, "prior": json.loads(json.dumps(facts))}


def test_evaluated_model_is_the_best_checkpoint(trained_run):
    run_dir, _ = trained_run
    model = keras.models.load_model(run_dir / "model.keras")
    # Reconstructions of test images must beat a blank guess by a wide margin.
    test_images, _ = datasets.load("fashion_mnist", "test")
    reconstructions = keras.ops.convert_to_numpy(model(test_images[:64]))
    assert np.mean((reconstructions - test_images[:64]) ** 2) < np.mean(
        (0.5 - test_images[:64]) ** 2
    )


def test_help_documents_every_flag():
    import train

    code, out, _ = call_main(train.main, ["--help"])
    assert code == 0
    for field in dataclasses.fields(TrainingConfig):
        flag = "--" + field.name.replace("_", "-")
        assert flag in out, flag
    assert "--run-dir" in out and "--verbose" in out


def test_bad_arguments_give_one_line_errors(tmp_path):
    import train

    code, _, err = call_main(train.main, ["--run-dir", tmp_path / "bad", "--preset", "giant"])
    assert code == 2
    assert (
        "train.py: error: Unknown preset 'giant'. "
        "Valid presets: conv, conv_deep, default, keras_example, mlp." in err
    )
    assert "Traceback" not in err


def test_whole_training_path_in_process_on_tensorflow_datasets(tmp_path):
    """train_and_evaluate end to end on mocked tensorflow-datasets MNIST (as Flax's examples)."""
    config = TrainingConfig(
        dataset="mnist",  # no default directory: read through tensorflow-datasets
        preset="mlp",
        latent_dim=2,
        epochs=1,
        batch_size=16,
        validation_size=16,
        test_subset=32,
    )
    with tfds.testing.mock_data(num_examples=64):
        metrics = training.train_and_evaluate(config, str(tmp_path), verbose=0)
    assert metrics["negative_elbo"] == pytest.approx(
        metrics["reconstruction_loss"] + metrics["kl_loss"]
    )
    assert metrics["optimizer_iterations"] == (64 - 16) // 16
    assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()
    for name in ("model.keras", "metrics.json", "samples.png", "export/generator.json"):
        assert (tmp_path / name).exists(), name


def test_train_logs_latent_grids_and_projector(trained_run):
    run_dir, _ = trained_run
    found = logged_images(run_dir / "logs" / "images")
    assert {tag: sorted(steps) for tag, steps in found.items()} == {
        "samples": [0, 1],
        "reconstructions": [0, 1],
        "interpolation": [0, 1],
    }
    projector = run_dir / "logs" / "projector"
    labels = (projector / "metadata.tsv").read_text().splitlines()
    assert len(labels) == 256 and set(labels) <= set(datasets.CLASS_NAMES["fashion_mnist"])
    assert (projector / "sprite.png").exists() and (projector / "projector_config.pbtxt").exists()


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def served(url, ready):
    """The JSON TensorBoard serves at `url` once `ready(it)`, else None (it loads lazily)."""
    result = get_json(url)
    return result if ready(result) else None


def wait_until_served(url, ready):
    return wait_for(
        lambda: served(url, ready), 90, url, interval=0.5, tolerate=(OSError, ValueError)
    )


def test_tensorboard_server_serves_scalars_images_and_projector(trained_run):
    run_dir, _ = trained_run
    [port] = free_ports()
    tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    server = subprocess.Popen(
        [tensorboard, "--logdir", str(run_dir / "logs"), "--host", "127.0.0.1"]
        + ["--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/data/plugin"
    try:
        scalars = wait_until_served(
            f"{base}/scalars/tags", lambda tags: "epoch_loss" in tags.get("train", {})
        )
        assert "epoch_kl_loss" in scalars["validation"]
        image_tags = wait_until_served(f"{base}/images/tags", lambda tags: "images" in tags)
        assert set(image_tags["images"]) == {"samples", "reconstructions", "interpolation"}
        entries = get_json(f"{base}/images/images?run=images&tag=samples")
        assert [entry["step"] for entry in entries] == [0, 1]
        with urllib.request.urlopen(
            f"{base}/images/individualImage?{entries[-1]['query']}", timeout=10
        ) as response:
            picture = np.asarray(Image.open(io.BytesIO(response.read())))
        assert picture.shape == (8 * 29 + 1, 8 * 29 + 1) and picture.std() > 5
        runs = wait_until_served(f"{base}/projector/runs", lambda runs: runs)
        assert runs == ["projector"]
        info = get_json(f"{base}/projector/info?run=projector")
        [embedding] = info["embeddings"]
        assert embedding["tensorShape"] == [256, 2] and embedding["sprite"]["imagePath"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode is not None


TINY_ARGS = ["--dataset", "mnist", "--preset", "mlp", "--latent-dim", "2", "--epochs", "1"]


def test_a_crash_after_fit_is_resumed_without_training_again(tmp_path, monkeypatch):
    # An interruption during evaluation or export must not retrain.
    config = tiny_config(epochs=2)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises during the export

    with tfds.testing.mock_data(num_examples=64):
        monkeypatch.setattr(training, "write_run_artifacts", crash)
        with pytest.raises(KeyboardInterrupt):
            training.train_and_evaluate(config, str(tmp_path), verbose=0)
        assert (tmp_path / "training.json").exists() and not (tmp_path / "backup").exists()
        monkeypatch.undo()
        monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained again"))
        metrics = training.train_and_evaluate(config, str(tmp_path), verbose=0)
    assert metrics["optimizer_iterations"] == 2 * (64 - 16) // 16 and metrics["epochs"] == 2
    assert (tmp_path / "export" / "generator.json").exists()
    assert scalar_steps(tmp_path / "logs" / "train")["epoch_loss"] == [0, 1]  # each epoch once


def test_a_second_writer_of_the_same_run_dir_is_refused(tmp_path):
    # One process writes a run dir at a time.
    from keras_vae.training import run_dir

    with run_dir.lock(str(tmp_path)):
        with tfds.testing.mock_data(num_examples=64):
            with pytest.raises(run_dir.RunDirInUse, match=r"is in use by process \d+"):
                training.train_and_evaluate(tiny_config(), str(tmp_path), verbose=0)
    assert not (tmp_path / "config.json").exists()


def test_resuming_with_other_flags_names_them_and_changes_nothing(tmp_path):
    # The saved config is compared before anything else.
    import train

    config = tiny_config(dataset="fashion_mnist")
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "backup").mkdir()  # a run that trained
    before = (tmp_path / "config.json").read_text()
    argv = ["--run-dir", tmp_path, "--preset", "mlp", "--latent-dim", "8", "--epochs", "1"]
    code, _, err = call_main(train.main, argv + ["--batch-size", "16", "--test-subset", "32"])
    assert code == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert "--latent-dim 2 there, 8 now" in line and "--validation-size 16 there, 5000 now" in line
    assert (tmp_path / "config.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == [".lock", "backup", "config.json"]  # .lock: released


def test_a_run_resumes_with_another_steps_per_execution_but_not_another_epoch_count(tmp_path):
    from keras_vae.training import run_dir

    saved = tiny_config(steps_per_execution=4)
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    (tmp_path / "model.keras").write_bytes(b"a checkpoint")
    run_dir.check_config(str(tmp_path), tiny_config(steps_per_execution=16))  # speed only
    run_dir.check_config(str(tmp_path), tiny_config(steps_per_execution=4, prior="standard"))
    with pytest.raises(ValueError, match="--epochs 1 there, 2 now"):
        run_dir.check_config(str(tmp_path), tiny_config(steps_per_execution=4, epochs=2))


def test_a_rerun_that_names_the_defaults_it_trained_with_resumes(tmp_path):
    from keras_vae import datasets
    from keras_vae.training import run_dir
    from keras_vae.training.config import TrainingConfig

    (tmp_path / "model.keras").write_bytes(b"a checkpoint")
    debian = datasets.DEBIAN_FASHION_MNIST_DIR
    pictures = {"dataset": "folder", "data_dir": str(tmp_path)}
    for saved, same, other, message in (
        ({}, {"latent_dim": 32, "pseudo_inputs": 100}, {"latent_dim": 8}, "32 there, 8 now"),
        ({}, {"data_dir": debian}, {"pseudo_inputs": 5}, "--pseudo-inputs 100 there, 5 now"),
        (
            {**pictures, "image_size": "32"},
            {**pictures, "image_size": "32x32", "channels": 3},
            {**pictures, "image_size": "32", "channels": 1},
            "--channels 3 there, 1 now",
        ),
    ):
        (tmp_path / "config.json").write_text(TrainingConfig(**saved).to_json())
        run_dir.check_config(str(tmp_path), TrainingConfig(**same))
        with pytest.raises(ValueError, match=message):
            run_dir.check_config(str(tmp_path), TrainingConfig(**other))
    # A config.json this version cannot rebuild is compared as written: one difference.
    (tmp_path / "config.json").write_text(json.dumps({**TrainingConfig().to_dict(), "old": 1}))
    with pytest.raises(ValueError, match=r"other settings \(--old 1 there, None now\)\."):
        run_dir.check_config(str(tmp_path), TrainingConfig())


def test_a_relative_data_dir_is_stored_absolute(tmp_path, monkeypatch):
    # config.json must work from any directory.
    monkeypatch.chdir(tmp_path)
    assert TrainingConfig(data_dir="idx").data_dir == str(tmp_path / "idx")
    assert TrainingConfig(data_dir=str(tmp_path / "idx")).data_dir == str(tmp_path / "idx")
    assert TrainingConfig().data_dir is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kl-warmup-epochs", "5", "--epochs", "2"], "kl_warmup_epochs (5) is longer than"),
        (["--test-subset", "1"], "test_subset must be 0 (all) or at least 2"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_anything_is_written(tmp_path, args, message):
    import train

    code, _, err = call_main(train.main, ["--run-dir", tmp_path / "run", *args])
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_run_dir_locked_by_another_process_is_a_one_line_error(tmp_path):
    # One writer at a time across processes, as two train.py would meet: the holder is a plain
    # flock (no TensorFlow), the second writer is train.py's main.
    import train

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "f.write(f'process {os.getpid()}'); f.flush(); print('held', flush=True)\n"
            "time.sleep(60)",
            str(tmp_path / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = call_main(train.main, ["--run-dir", tmp_path, *TINY_ARGS])
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line == (
        f"train.py: error: {tmp_path} is in use by process {holder.pid}: wait for it to "
        "finish, or choose another --run-dir."
    )
    assert sorted(os.listdir(tmp_path)) == [".lock"]


def test_training_counts_as_finished_only_with_a_checkpoint(tmp_path):
    # A loss that turns NaN in the first epoch leaves no model.keras: the run must
    # not be marked finished, or every rerun would skip training and fail.
    from keras_vae import VAE
    from keras_vae.training.callbacks import EpochTimer, TrainingComplete

    model = VAE(preset="mlp", latent_dim=2, encoder_units=(4,), decoder_units=(4,), seed=0)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(32, 28, 28, 1)).astype("float32")
    missing = TrainingComplete(tmp_path / "a.json", tmp_path / "none.keras")
    model.fit(images, epochs=1, batch_size=8, verbose=0, callbacks=[missing])
    assert not (tmp_path / "a.json").exists()
    (tmp_path / "model.keras").write_bytes(b"a checkpoint")
    timer = EpochTimer()
    present = TrainingComplete(tmp_path / "b.json", tmp_path / "model.keras", timer, 8)
    model.fit(images, epochs=2, batch_size=8, verbose=0, callbacks=[timer, present])
    facts = json.loads((tmp_path / "b.json").read_text())
    # The optimizer's steps go on across fit calls; epochs are this fit's (absolute
    # under BackupAndRestore, which resumes the count).
    assert facts["optimizer_iterations"] == 3 * 4 and facts["epochs"] == 2
    assert facts["train_images_per_second"] > 0 and facts["train_seconds"] > 0
    assert len(facts["epoch_wall_seconds"]) == 2


def test_epoch_timer_wall_seconds_count_the_callbacks_between_epochs():

    import keras

    from keras_vae import VAE
    from keras_vae.training.callbacks import EpochTimer

    class SlowEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.3)

    model = VAE(preset="mlp", latent_dim=2, encoder_units=(4,), decoder_units=(4,), seed=0)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(32, 28, 28, 1)).astype("float32")
    timer = EpochTimer()
    model.fit(images, epochs=3, batch_size=8, verbose=0, callbacks=[timer, SlowEpochEnd()])
    assert len(timer.seconds) == len(timer.wall_seconds) == 3
    for steps, wall in zip(timer.seconds, timer.wall_seconds, strict=True):
        assert wall >= steps + 0.29  # the slow callback ran after the epoch's steps
