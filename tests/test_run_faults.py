"""A run dir survives what goes wrong around training: damaged backups, a loss that
diverges, Ctrl-C, run dirs written without training.json, priors too big for the data."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from keras_vae import VAE
from keras_vae.cli import interrupts, native_logs
from keras_vae.training import train as training
from tests import testing
from tests.testing import REPO_ROOT, call_main, staging_exists, wait_for

MOCK_EXAMPLES = 64  # tfds.testing.mock_data images per split


def tiny_config(**changes):
    """testing.tiny_config for two epochs, with a prior that fits in a blink."""
    return testing.tiny_config(**{"epochs": 2, "prior": "gaussian", **changes})


def train(config, run_dir):
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        return training.train_and_evaluate(config, str(run_dir), verbose=0)


def shown_epoch_steps(log_dir, tag="epoch_loss"):
    """The steps of `tag` as TensorBoard's event reader shows them."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


def weights_of(run_dir):
    model = keras.models.load_model(run_dir / "model.keras")
    return [np.array(weight) for weight in model.get_weights()]


def write_damaged_backup(run_dir, epoch):
    """A backup pair as a kill in the middle of the weights' write leaves it."""
    backup = run_dir / "backup"
    backup.mkdir(parents=True)
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": epoch, "batch": 0}))


def test_a_truncated_first_backup_is_discarded_and_training_starts_again(tmp_path, capfd):
    config = tiny_config()
    write_damaged_backup(tmp_path, epoch=1)
    metrics = train(config, tmp_path)
    assert metrics["epochs"] == 2 and metrics["optimizer_iterations"] == 2 * 3
    [line] = [line for line in capfd.readouterr().err.splitlines() if "latest.weights.h5" in line]
    assert line.startswith(str(tmp_path / "backup" / "latest.weights.h5") + " cannot be read (")
    assert line.endswith("no readable backup is left: training starts again from epoch 1.")
    assert not (tmp_path / "backup").exists()


def stop_at_the_third_backup(config, run_dir, monkeypatch):
    """Trains `config` into `run_dir` until a kill as epoch 3's backup starts."""
    save_weights, saves = VAE.save_weights, []

    def killed_at_the_third_backup(self, *args, **kwargs):
        saves.append(args)
        if len(saves) == 3:
            raise KeyboardInterrupt
        return save_weights(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(VAE, "save_weights", killed_at_the_third_backup)
        with pytest.raises(KeyboardInterrupt):
            train(config, run_dir)


def test_a_damaged_backup_falls_back_to_the_previous_epochs(tmp_path, monkeypatch, capfd):
    config = tiny_config(epochs=3)
    stop_at_the_third_backup(config, tmp_path, monkeypatch)
    # Killed while writing epoch 3's backup, which a non-atomic writer leaves damaged;
    # epoch 2's was copied to .bkp first.
    (tmp_path / "backup" / "latest.weights.h5").write_bytes(b"not an HDF5 file")
    metrics = train(config, tmp_path)
    err = capfd.readouterr().err
    [line] = [line for line in err.splitlines() if "cannot be read (" in line]
    assert line.endswith("resuming from the previous backup, after epoch 2."), line
    assert metrics["epochs"] == 3 and metrics["optimizer_iterations"] == 3 * 3
    # Each epoch shows once, also where Keras counts optimizer steps (3 an epoch).
    logs = tmp_path / "logs"
    assert shown_epoch_steps(logs / "train") == shown_epoch_steps(logs / "validation") == [0, 1, 2]
    assert shown_epoch_steps(logs / "validation", "evaluation_loss_vs_iterations") == [3, 6, 9]


def test_a_kill_between_the_weights_and_the_epoch_record_resumes_after_the_weights(
    tmp_path, monkeypatch
):
    config = tiny_config(epochs=3)
    stop_at_the_third_backup(config, tmp_path, monkeypatch)
    # Epoch 2's weights are in place, its record is not: the record still says epoch 1.
    record = tmp_path / "backup" / "training_metadata.json"
    record.write_text(json.dumps({"epoch": 1, "batch": 0}))
    metrics = train(config, tmp_path)
    assert metrics["epochs"] == 3 and metrics["optimizer_iterations"] == 3 * 3


def test_backups_leave_no_temporaries_keep_the_previous_epoch_and_restore(tmp_path):
    from keras_vae.training.callbacks import AtomicBackupAndRestore

    model = VAE(preset="mlp", latent_dim=2, encoder_units=(4,), decoder_units=(4,), seed=0)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(32, 28, 28, 1)).astype("float32")
    backup_dir = tmp_path / "backup"

    class Inspect(keras.callbacks.Callback):
        listings = []

        def on_epoch_end(self, epoch, logs=None):
            self.listings.append(sorted(os.listdir(backup_dir)))

    callback = AtomicBackupAndRestore(str(backup_dir))
    callback.delete_checkpoint = False
    model.fit(images, epochs=2, batch_size=8, verbose=0, callbacks=[callback, Inspect()])
    # No temporaries left beside the backup, and the previous epoch kept as .bkp.
    assert Inspect.listings == [
        ["latest.weights.h5", "training_metadata.json"],
        [
            "latest.weights.h5",
            "latest.weights.h5.bkp",
            "training_metadata.json",
            "training_metadata.json.bkp",
        ],
    ]
    restored = VAE(preset="mlp", latent_dim=2, encoder_units=(4,), decoder_units=(4,), seed=1)
    restored.compile(optimizer="adam")
    restored.fit(images[:8], epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert int(restored.optimizer.iterations.numpy()) == 2 * 4  # restored, nothing left to run


def test_a_loss_that_diverges_in_the_first_epoch_is_one_line_and_a_rerun_may_fix_it(tmp_path):
    import train as train_script

    argv = ["--run-dir", tmp_path, "--dataset", "mnist", "--preset", "mlp", "--latent-dim", "2"]
    argv += ["--epochs", "2", "--batch-size", "16", "--validation-size", "16"]
    argv += ["--test-subset", "32", "--verbose", "0", "--prior", "gaussian"]
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        code, _, err = call_main(train_script.main, [*argv, "--learning-rate", "1e30"])
        assert code == 2 and "Traceback" not in err
        [line] = err.strip().splitlines()
        assert re.match(r"train\.py: error: the training loss became -?(nan|inf) in epoch 1 ", line)
        assert line.endswith(
            "before any checkpoint was saved: training diverged. Lower --learning-rate (it is "
            "1e+30) or --beta (it is 1) and run again."
        )
        assert not (tmp_path / "model.keras").exists()
        # Nothing was trained: the same run dir takes the lower learning rate.
        code, out, err = call_main(train_script.main, [*argv, "--learning-rate", "1e-3"])
    assert code == 0, err
    assert "negative_elbo" in out
    # TensorBoard shows each epoch once, the diverged first epoch's point dropped.
    assert shown_epoch_steps(tmp_path / "logs" / "train") == [0, 1]


def test_a_loss_that_diverges_after_a_checkpoint_stops_on_the_best_one(
    tmp_path, monkeypatch, capfd
):
    build_callbacks = training.build_callbacks

    class DivergeInEpochTwo(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.learning_rate.assign(1e30)

    monkeypatch.setattr(
        training,
        "build_callbacks",
        lambda *args, **kwargs: [DivergeInEpochTwo(), *build_callbacks(*args, **kwargs)],
    )
    metrics = train(tiny_config(epochs=3), tmp_path)
    [line] = [line for line in capfd.readouterr().err.splitlines() if "loss became" in line]
    assert re.fullmatch(
        r"the training loss became -?(nan|inf) in epoch 2 \(step \d\): training stopped "
        r"there, on the best checkpoint\.",
        line,
    )
    assert np.isfinite(metrics["negative_elbo"]) and metrics["epochs"] == 2
    assert (tmp_path / "export" / "generator.json").exists()


def test_an_interruption_in_the_first_epoch_leaves_no_doubled_tensorboard_points(
    tmp_path, monkeypatch
):
    config = tiny_config()
    save_weights = VAE.save_weights

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt  # a kill just before the first backup

    monkeypatch.setattr(VAE, "save_weights", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path)
    assert shown_epoch_steps(tmp_path / "logs" / "train") == [0]
    monkeypatch.setattr(VAE, "save_weights", save_weights)
    train(config, tmp_path)
    assert shown_epoch_steps(tmp_path / "logs" / "train") == [0, 1]


def test_a_finished_run_without_training_json_is_not_trained_again(tmp_path, monkeypatch):
    config = tiny_config()
    train(config, tmp_path)
    # A finished run dir without a training.json: its metrics.json holds the facts.
    (tmp_path / "training.json").unlink()
    trained = weights_of(tmp_path)
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained again"))
    metrics = train(config, tmp_path)
    for before, after in zip(trained, weights_of(tmp_path), strict=True):
        np.testing.assert_array_equal(before, after)
    assert metrics["epochs"] == 2 and metrics["optimizer_iterations"] == 2 * 3
    assert json.loads((tmp_path / "training.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"prior": "gmm", "prior_components": 100},
            "--prior-components 100 needs 300 training codes in 2 dimensions, and the run has "
            "32 to fit it to: pass --prior-components 10 or fewer, or --prior standard.",
        ),
        (
            {"prior": "gaussian", "latent_dim": 40},
            "--prior gaussian needs at least 41 training codes in 40 dimensions, and the run has "
            "32: use more training images, a smaller --latent-dim, or --prior standard.",
        ),
    ],
)
def test_a_prior_too_big_for_the_data_is_refused_before_training(tmp_path, changes, message):
    config = tiny_config(train_subset=48, **changes)
    with pytest.raises(ValueError) as raised:
        train(config, tmp_path)
    assert str(raised.value) == message
    assert not (tmp_path / "model.keras").exists()


def test_a_prior_per_class_is_checked_against_the_smallest_class_before_training(tmp_path):
    config = tiny_config(train_subset=48, conditional=True, prior="gmm", prior_components=2)
    with pytest.raises(ValueError) as raised:
        train(config, tmp_path)
    assert re.fullmatch(
        r"--prior-components 2 needs 6 training codes in 2 dimensions, and the run has \d "
        r"of its smallest class, '\d', to fit it to: .*",
        str(raised.value),
    ), raised.value
    assert not (tmp_path / "model.keras").exists()


def test_a_failed_prior_fit_is_redone_with_other_settings_without_training(tmp_path, monkeypatch):
    config = tiny_config()
    train(config, tmp_path)
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained again"))
    metrics = train(tiny_config(prior="standard"), tmp_path)
    assert metrics["prior"]["default"] == "standard"
    assert keras.models.load_model(tmp_path / "model.keras").prior.kind == "standard"
    assert json.loads((tmp_path / "config.json").read_text())["prior"] == "standard"


def interrupt_when(command, ready, timeout=240):
    """Starts `command`, sends SIGINT once `ready()` holds: (returncode, stdout, stderr)."""
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: ready() or process.poll() is not None, timeout, "the moment to interrupt")
        assert process.poll() is None, "the command ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stdout, stderr


@pytest.mark.processes
def test_ctrl_c_during_training_is_one_line_and_keeps_the_backup(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "train.py", "--run-dir", str(run_dir), "--dataset"]
    command += ["fashion_mnist", "--preset", "mlp", "--epochs", "30", "--verbose", "0"]
    command += ["--train-subset", "4096", "--validation-size", "512", "--test-subset", "256"]
    code, stdout, stderr = interrupt_when(
        command, lambda: (run_dir / "backup" / "training_metadata.json").exists()
    )
    assert code == 130 and stdout == ""
    assert stderr.strip().splitlines() == [
        "train.py: interrupted; nothing was lost: run the same command to resume."
    ]
    assert json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"] >= 1


@pytest.mark.processes
def test_ctrl_c_during_an_export_is_one_line_and_leaves_no_export(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "export"
    command = [sys.executable, "-m", "keras_vae", "export", "--model", str(run_dir)]
    command += ["--out", str(out)]
    code, stdout, stderr = interrupt_when(command, lambda: staging_exists(out))
    assert code == 130, (code, stdout, stderr[-3000:])
    assert stderr.strip().splitlines() == [
        "keras-vae export: interrupted; nothing was lost: run the same command again."
    ]
    # No staging folder or lock is left. An extension module may swallow the
    # KeyboardInterrupt: then the export is whole (its files listed) before the line.
    left = os.listdir(tmp_path)
    if left == ["export"] and (out / "generator.json").exists():
        assert "generator_float32.tflite" in stdout
    else:
        assert left == [] and stdout == "", (left, stdout)


def test_an_error_after_a_lost_interrupt_still_ends_as_interrupted_in_one_line(capfd):
    # Ctrl-C caught inside an extension module, which prints a traceback and then
    # fails on its broken state.
    def work():
        with native_logs.filtered_stderr():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:  # the extension module swallows it
                os.write(2, b"Traceback (most recent call last):\nSystemError: <built-in>\n")
                os.write(2, b"I0000 00:00:1.0   1 port.cc:1] a held-back native line\n")
            raise AttributeError("'list' object has no attribute '_type_spec'")

    status, result = interrupts.finish(work, "keras-vae export", "run it again", own_process=True)
    assert (status, result) == (interrupts.INTERRUPTED_STATUS, None)
    line = "keras-vae export: interrupted; nothing was lost: run it again.\n"
    assert capfd.readouterr().err == line
    assert not interrupts.received()  # the next command shows its output

    def broken():
        raise AttributeError("no interrupt: the error is the error")

    with pytest.raises(AttributeError, match="the error is the error"):
        interrupts.finish(broken, "keras-vae export", "run it again", own_process=True)
