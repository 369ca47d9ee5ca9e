"""tf.distribute: mirrored loss scaling, two localhost workers, strategy choice."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_vae.training import distribute
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from tests.testing import REPO_ROOT, SMALL_EXPORT_ARGS, built_once, free_ports

MIRRORED_CASES = [("sgd", "standard"), ("fused_adam", "standard"), ("sgd", "conditional")]


@pytest.fixture(scope="module")
def mirrored_results(tmp_path_factory):
    """What tests/mirrored_check.py reports for every case, run once in its own process."""
    cases = [
        f"{optimizer}:{model}" for optimizer, model in MIRRORED_CASES + [("fused_adam", "vamp")]
    ]

    def build(folder):
        check = os.path.join(REPO_ROOT, "tests", "mirrored_check.py")
        result = subprocess.run(
            [sys.executable, check, str(folder / "mirrored.json"), *cases],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads((folder / "mirrored.json").read_text())

    return built_once(tmp_path_factory, "mirrored_check", build)[1]


@pytest.mark.processes
@pytest.mark.parametrize("optimizer, model", MIRRORED_CASES)
def test_mirrored_step_on_two_replicas_equals_single_device_step(
    mirrored_results, optimizer, model
):
    # The loss scaling across replicas (distribute.per_replica): without its division by
    # the replica count both optimizers take a step of the wrong size here and fail.
    # fused_adam: FusedAdam's kernel updates each replica's copy through its own handle.
    # conditional: a ConditionalVAE's step, on images and their labels.
    results = mirrored_results[f"{optimizer}:{model}"]
    assert results["single_loss"] == pytest.approx(results["mirrored_loss"], rel=1e-6)
    # The step is large enough that a doubled or halved one (a wrong cross-replica
    # reduction) would differ by far more than the tolerance under SGD. Adam's first
    # step is about lr (0.05) whatever the gradient's scale, and where a gradient is
    # near epsilon it magnifies the rounding of the two reductions (7e-5 seen), so
    # there the check is that every replica's copy took the single device's step
    # to 2% of its size.
    assert results["max_step"] > 1e-2
    tolerance = 1e-5 if optimizer == "sgd" else 1e-3
    assert results["max_weight_diff"] <= tolerance, results
    assert results["replica_copies"] == 2 and results["max_replica_diff"] == 0.0


def write_pictures(root, count=48):
    """root/dark/*.png and root/light/*.png: grey squares of `count` shades in all."""
    for i in range(count):
        kind = "dark" if i % 2 else "light"
        (root / kind).mkdir(parents=True, exist_ok=True)
        shade = 40 + 4 * i if kind == "dark" else 255 - 4 * i
        Image.fromarray(np.full((16, 16), shade, np.uint8)).save(root / kind / f"{i}.png")
    return root


@pytest.mark.processes
def test_a_vamp_prior_trains_in_sync_on_two_replicas(mirrored_results):
    results = mirrored_results["fused_adam:vamp"]
    assert results["losses_finite"] and results["replica_copies"] == 2
    assert results["max_replica_diff"] == 0.0 and results["pseudo_input_step"] > 1e-4


def start_workers(run_dir, workers, pictures):
    """train.py on every worker of the cluster `workers`, each with its TF_CONFIG.

    They train on the folder `pictures`, each worker on its own shard of the files.
    """
    processes = []
    for index in range(len(workers)):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "train.py",
                    "--strategy",
                    "multi_worker",
                    "--run-dir",
                    str(run_dir),
                    "--dataset",
                    "folder",
                    "--data-dir",
                    str(pictures),
                    "--image-size",
                    "16",
                    "--channels",
                    "1",
                    "--epochs",
                    "2",
                    "--batch-size",
                    "8",
                    "--validation-size",
                    "8",
                    "--kl-warmup-epochs",
                    "1",
                    *SMALL_EXPORT_ARGS,
                    # A small MLP: what is tested is the synchronization, not the network.
                    "--preset",
                    "mlp",
                    "--latent-dim",
                    "2",
                    "--verbose",
                    "2",
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            )
        )
    return processes


@pytest.mark.processes
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    run_dir = tmp_path / "run"
    pictures = write_pictures(tmp_path / "pictures")
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = start_workers(run_dir, workers, pictures)
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    chief_out, worker_out = outputs[0][0], outputs[1][0]
    assert "negative_elbo" in chief_out and "worker done" in worker_out
    # Each worker decoded and trained on its own half of the training files.
    shares = [
        int(re.search(rf"Worker {i} of 2 reads its shard of the files: (\d+) training", out)[1])
        for i, out in ((1, chief_out), (2, worker_out))
    ]
    train = training.load_splits(
        TrainingConfig(dataset="folder", data_dir=str(pictures), image_size="16", validation_size=8)
    ).train
    assert shares == [(len(train) + 1) // 2, len(train) // 2]

    def epoch_lines(text):
        # "12/12 - 5s - 396ms/step - kl_loss: 0.22 - loss: ..." without the timings.
        return [
            " - ".join(line.split(" - ")[3:]) for line in text.splitlines() if "kl_loss:" in line
        ]

    # Both workers took the same synchronized steps: identical epoch logs.
    assert epoch_lines(chief_out) and epoch_lines(chief_out) == epoch_lines(worker_out)
    assert sorted(os.listdir(run_dir)) == [
        ".lock",
        "attribute_vectors.json",
        "config.json",
        "export",
        "generated_tflite.png",
        "logs",
        "metrics.json",
        "model.keras",
        "reconstructions.png",
        "samples.png",
        "samples_standard.png",
        "training.json",
    ]
    assert keras.models.load_model(run_dir / "model.keras").latent_dim == 2
    assert not os.path.exists(distribute.private_worker_dir(str(run_dir), "worker", 1))

    # The same command again on every worker: the chief's run dir says training has
    # finished, and every worker follows it (none waits for the others' collectives).
    again = start_workers(run_dir, [f"127.0.0.1:{port}" for port in free_ports(2)], pictures)
    outputs = [process.communicate(timeout=300) for process in again]
    for process, (stdout, stderr) in zip(again, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert not [line for line in stdout.splitlines() if line.startswith("Epoch ")]
    assert "negative_elbo" in outputs[0][0] and "worker done" in outputs[1][0]


def test_strategy_names():
    assert distribute.make_strategy("auto") is tf.distribute.get_strategy()
    assert isinstance(distribute.make_strategy("one_device"), tf.distribute.OneDeviceStrategy)
    with pytest.raises(ValueError, match="Valid strategies: auto, one_device, mirrored"):
        distribute.make_strategy("horovod")


def test_multi_worker_without_tf_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        distribute.make_strategy("multi_worker")


def test_single_process_is_chief_and_writes_the_run_dir():
    strategy = tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)
    assert distribute.worker_dir("runs/x", strategy) == "runs/x"
