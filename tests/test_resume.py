"""A run killed with SIGKILL resumes where it stopped, one stopped after training does not
train again, and a killed export loses nothing."""

import json
import os
import signal
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from export import __main__ as export_cli
from tests.testing import (
    REPO_ROOT,
    SMALL_EXPORT_ARGS,
    call_main,
    staging_exists,
    tree_digest,
    wait_for,
)

pytestmark = pytest.mark.processes

EPOCHS = 3
RESUME_ARGS = [
    "--preset",
    "keras_example",
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "64",
    "--train-subset",
    "2048",
    "--validation-size",
    "256",
    "--test-subset",
    "256",
    "--verbose",
    "2",
    *SMALL_EXPORT_ARGS,
]
STEPS_PER_EPOCH = (2048 - 256) // 64


def start_train(run_dir):
    return subprocess.Popen(
        [sys.executable, "train.py", "--run-dir", str(run_dir), *RESUME_ARGS],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def epoch_steps(log_dir, tag):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


def test_sigkill_after_first_epoch_then_same_command_resumes(tmp_path):
    run_dir = tmp_path / "run"
    metadata = run_dir / "backup" / "training_metadata.json"
    first = start_train(run_dir)
    try:
        wait_for(lambda: metadata.exists() or first.poll() is not None, 300, "the first backup")
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    assert first.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resume_epoch = json.loads(metadata.read_text())["epoch"]
    assert 1 <= resume_epoch < EPOCHS
    assert not (run_dir / "metrics.json").exists()

    # The second run finishes training; SIGTERM stops it in the evaluation or export.
    second = start_train(run_dir)
    try:
        wait_for(
            lambda: (run_dir / "training.json").exists() or second.poll() is not None,
            300,
            "the end of training",
        )
        os.kill(second.pid, signal.SIGTERM)
        stdout, stderr = second.communicate(timeout=60)
    finally:
        second.kill()
    assert second.returncode == -signal.SIGTERM, "the run finished before it could be stopped"
    epochs_run = [line for line in stdout.splitlines() if line.startswith("Epoch ")]
    # Continues at the next epoch, not from scratch.
    assert epochs_run[0] == f"Epoch {resume_epoch + 1}/{EPOCHS}", stderr[-2000:]
    assert len(epochs_run) == EPOCHS - resume_epoch

    # The third finds training finished: it evaluates and exports, and trains nothing.
    third = subprocess.run(
        [sys.executable, "train.py", "--run-dir", str(run_dir), *RESUME_ARGS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert third.returncode == 0, third.stderr[-3000:]
    assert not [line for line in third.stdout.splitlines() if line.startswith("Epoch ")]
    assert "negative_elbo" in third.stdout

    metrics = json.loads((run_dir / "metrics.json").read_text())
    # The optimizer state was restored too: its step count went on.
    assert metrics["optimizer_iterations"] == EPOCHS * STEPS_PER_EPOCH
    for split in ("train", "validation"):
        for tag in ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss"):
            assert epoch_steps(run_dir / "logs" / split, tag) == list(range(EPOCHS)), (split, tag)
    for name in (
        "config.json",
        "model.keras",
        "samples.png",
        "reconstructions.png",
        "generated_tflite.png",
        "export/generator.json",
        "export/generator_float32.tflite",
        "export/saved_model/saved_model.pb",
    ):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()


def test_sigkill_during_export_leaves_the_previous_export_intact(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "generator"
    argv = ["--model", str(run_dir), "--out", str(out), "--variants", "float32"]
    assert call_main(export_cli.main, argv)[0] == 0
    before = tree_digest(out)

    # Only the export that is killed needs a process of its own.
    process = subprocess.Popen(
        [sys.executable, "-m", "export", *argv, "--overwrite"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Kill once the new export is being written into its staging dir.
        wait_for(
            lambda: staging_exists(out) or process.poll() is not None,
            300,
            "the staging directory",
        )
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert tree_digest(out) == before
    # A later export replaces it normally; the killed staging dir is no obstacle.
    assert call_main(export_cli.main, [*argv, "--overwrite"])[0] == 0
    assert json.loads((out / "generator.json").read_text())["latent_dim"] == 2
