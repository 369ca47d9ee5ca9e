"""The PyTorch peer of `make bench` (benchmarks/pytorch_reference.py), run in .venv-torch.

keras_vae never imports torch: these tests run the script with the Python of
the virtualenv that `make torch-venv` creates (.ci/run creates it; set
KERAS_VAE_TORCH_PYTHON for another one) and read what it writes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_vae import VAE

ROOT = Path(__file__).resolve().parent.parent
TORCH_PYTHON = os.environ.get(
    "KERAS_VAE_TORCH_PYTHON", str(ROOT / ".venv-torch" / "bin" / "python")
)

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(
        not os.path.exists(TORCH_PYTHON),
        reason=f"no PyTorch virtualenv at {TORCH_PYTHON}: run `make torch-venv` (make test does)",
    ),
]


def _images(n, seed):
    """Images with structure to learn: a bright square at a random place on a dim field."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.2, size=(n, 28, 28, 1)).astype("float32")
    for image, (row, col) in zip(images, rng.integers(0, 18, size=(n, 2)), strict=True):
        image[row : row + 10, col : col + 10] = 0.9
    return images


def test_the_reference_trains_against_its_budget_and_reports_like_the_benchmark(tmp_path):
    np.save(tmp_path / "train.npy", _images(1024, seed=0))
    np.save(tmp_path / "test.npy", _images(200, seed=1))
    out = tmp_path / "result.json"
    command = [TORCH_PYTHON, "-m", "benchmarks.pytorch_reference"]
    command += ["--data", str(tmp_path), "--out", str(out)]
    # Two epochs of 1,024 images take a fraction of a second on one thread. More threads
    # than free cores (the suite's other workers) can slow PyTorch's spinning threads
    # a hundredfold, so the peer runs on one here.
    command += ["--checkpoints", "4", "0.5", "--epoch-checkpoints", "1", "2"]
    command += ["--iw-k", "20", "--iw-images", "50"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, timeout=300, cwd=ROOT, env=environment)
    result = json.loads(out.read_text())

    assert [p["checkpoint"] for p in result["curve"]] == [0.5, 4.0]
    for point in result["curve"] + result["after_epochs"]:
        assert point["neg_elbo"] == pytest.approx(point["reconstruction"] + point["kl"])
    assert all(p["seconds"] >= p["checkpoint"] for p in result["curve"])
    assert [p["epochs"] for p in result["after_epochs"]] == [1, 2]
    assert len(result["epoch_seconds"]) >= 2
    # It learned, and the importance-weighted bound sits at or below the ELBO (k = 20).
    first, last = result["after_epochs"][0], result["curve"][-1]
    assert last["neg_elbo"] < first["neg_elbo"]
    assert 0 < last["iw_nll"] <= last["neg_elbo"] + 1.0
    # pytorch/examples' 784-400-20 network is keras_vae's `mlp` preset, parameter for parameter.
    mlp = VAE(preset="mlp", seed=0)
    assert result["parameters"] == mlp.count_params() - 1  # less the kl_weight variable
    assert result["images_per_epoch"] == 1024
    assert result["threads"] >= 1 and result["decode_ms_batch_64"] > 0


def test_the_reference_scores_the_same_network_as_keras_vae_does(tmp_path):
    """One weight set in both frameworks: the same test -ELBO, so the budgets compare alike."""
    model = VAE(preset="mlp", seed=0)
    # A log-variance head of -30 makes sigma ~ 3e-7, so the one sampled z is the mean
    # in both frameworks and the figures do not depend on the two random generators.
    log_var = model.encoder.get_layer("log_var")
    log_var.set_weights([log_var.get_weights()[0] * 0.0, np.full(20, -30.0, "float32")])
    dense = [layer for layer in model.encoder.layers + model.decoder.layers if layer.weights]
    names = ("fc1", "fc21", "fc22", "fc3", "fc4")  # encoder Dense, mean, log_var; decoder
    weights = {}
    for name, layer in zip(names, dense, strict=True):
        kernel, bias = layer.get_weights()
        weights[f"{name}.weight"], weights[f"{name}.bias"] = kernel.T, bias
    np.savez(tmp_path / "weights.npz", **weights)
    images = _images(100, seed=2)
    np.save(tmp_path / "test.npy", images)

    snippet = (
        "import json, sys, numpy as np, torch\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks import pytorch_reference as ref\n"
        "model = ref.VAE()\n"
        "state = {k: torch.from_numpy(v) for k, v in np.load(sys.argv[1]).items()}\n"
        "model.load_state_dict(state)\n"
        "test = torch.from_numpy(np.load(sys.argv[2])).reshape(-1, 784)\n"
        "print(json.dumps(ref.evaluate(model, test, seed=0)))\n"
    )
    printed = subprocess.run(
        [TORCH_PYTHON, "-c", snippet, str(tmp_path / "weights.npz"), str(tmp_path / "test.npy")],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    theirs = json.loads(printed.strip().splitlines()[-1])
    reconstruction, kl = (np.mean(t) for t in model.loss_terms(images))
    assert theirs["reconstruction"] == pytest.approx(float(reconstruction), rel=1e-4)
    assert theirs["kl"] == pytest.approx(float(kl), rel=1e-4)
    assert sys.modules.get("torch") is None  # keras_vae's side never loaded torch
