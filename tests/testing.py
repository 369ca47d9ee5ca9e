"""Helpers shared by the test modules (test modules never import each other)."""

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Widths small enough that a model builds and trains in milliseconds.
TINY = {"conv_filters": (4, 8), "encoder_units": (16,), "decoder_units": (16,), "latent_dim": 3}

# train.py flags of a tiny run on real data: 2 epochs of keras_example on 1,024 images.
TINY_TRAIN_ARGS = [
    "--preset",
    "keras_example",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--train-subset",
    "1024",
    "--validation-size",
    "256",
    "--test-subset",
    "256",
    "--kl-warmup-epochs",
    "1",
    "--verbose",
    "0",
]


# train.py flags of a run that exports the float32 dynamic file only (one conversion, not nine).
SMALL_EXPORT_ARGS = ["--export-variants", "float32", "--export-static-batch-sizes"]


def tiny_config(**changes):
    """A TrainingConfig of a tiny run on MNIST (under tfds.testing.mock_data: 3 steps an epoch).

    Its export is the float32 dynamic file only (SMALL_EXPORT_ARGS).
    """
    from keras_vae.training.config import TrainingConfig

    values = {
        "dataset": "mnist",
        "preset": "mlp",
        "latent_dim": 2,
        "epochs": 1,
        "batch_size": 16,
        "validation_size": 16,
        "test_subset": 32,
        "export_variants": ("float32",),
        "export_static_batch_sizes": (),
        **changes,
    }
    return TrainingConfig(**values)


def wait_for(poll, timeout, what, interval=0.02, tolerate=()):
    """Calls `poll()` until it returns something true, and returns that.

    Exceptions of the classes in `tolerate` count as "not yet".

    Raises:
        AssertionError: `timeout` seconds went by; the message names `what`.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = poll()
        except tolerate:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def staging_exists(path):
    """True once a staged write of `path` (`.NAME.tmp-...` beside it) exists."""
    prefix = f".{os.path.basename(path)}.tmp-"
    return any(name.startswith(prefix) for name in os.listdir(os.path.dirname(path)))


def free_ports(count=1):
    """`count` TCP ports of 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def random_images(n=32, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).uniform(size=(n,) + shape).astype("float32")


def write_idx(path, array, type_code=0x08):
    """Writes an array as an IDX file (gzip-compressed when path ends in .gz).

    `type_code` is the IDX data type: 0x08 uint8 (default), 0x0D float32.
    """
    dtype = {0x08: ">u1", 0x0D: ">f4"}[type_code]
    array = np.asarray(array).astype(dtype)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def call_main(main, argv):
    """Runs a CLI `main(argv)` in this process: (exit code, stdout, stderr).

    argparse's own exits (--help, a bad flag) count as returned exit codes.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def train_in_process(run_dir, *extra_args):
    """train.py's `main` with TINY_TRAIN_ARGS in this process: a CompletedProcess-like result."""
    import train

    code, out, err = call_main(train.main, ["--run-dir", run_dir, *TINY_TRAIN_ARGS, *extra_args])
    return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)


def run_serialization_test(instance, tmp_path, call=None):
    """Round-trips a keras_vae object through JSON `get_config` and a `.keras` file.

    Checks that `from_config(get_config())` gives the same config (through
    JSON, so every value is JSON-serializable), that the class is registered
    (a `.keras` file loads back as the same class with the same config), and,
    when `call` is given, that `call(restored)` equals `call(instance)`
    after the `.keras` round trip (the weights came back).

    Returns:
        The object loaded from the `.keras` file.
    """
    config = instance.get_config()
    restored = type(instance).from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(instance)))
    assert serialized["registered_name"].startswith("keras_vae>"), serialized["registered_name"]
    path = os.path.join(str(tmp_path), f"{type(instance).__name__}.keras")
    model = instance
    if not isinstance(instance, keras.Model):  # a layer travels inside a model
        inputs = [keras.Input((2,)), keras.Input((2,))]
        model = keras.Model(inputs, instance(inputs))
    model.save(path)
    loaded = keras.models.load_model(path)
    if model is not instance:
        loaded = loaded.layers[-1]
    assert type(loaded) is type(instance)
    assert loaded.get_config() == config
    if call is not None:
        for expected, got in zip(
            tf.nest.flatten(call(instance)), tf.nest.flatten(call(loaded)), strict=True
        ):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(expected), keras.ops.convert_to_numpy(got)
            )
    return loaded


def logged_images(event_dir):
    """{tag: {step: uint8 image}} of the image summaries under `event_dir`."""
    found = {}
    for path in sorted(event_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    # Tensor of strings: width, height, then the PNG of each image.
                    png = tf.make_ndarray(value.tensor)[2]
                    found.setdefault(value.tag, {})[event.step] = np.asarray(
                        Image.open(io.BytesIO(png))
                    )
    return found


def scalar_steps(event_dir):
    """{tag: [steps]} of the scalar summaries under `event_dir`."""
    tags = {}
    for path in event_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def tree_digest(directory):
    """One hash of every file's relative path and bytes under `directory`."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(directory)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def prior_draws(prior, eps, u, labels=None):
    """`(z, component)` that `prior` (a `to_dict()`) gives eps `[n, d]` and u `[n]`.

    What an app computes from generator.json to sample with a static file:
    c = how many of the cumulative weights (all but the last) u reaches,
    z = means[c] + cholesky[c] @ eps. A prior per class ("label_weights")
    given one-hot `labels` `[n, K]` takes each label's row of weights.
    """
    weights = np.asarray(prior["weights"])[None, :]
    if labels is not None and "label_weights" in prior:
        weights = np.asarray(labels) @ np.asarray(prior["label_weights"])
    cumulative = np.cumsum(weights, axis=1)[:, :-1]
    component = np.sum(u[:, None] >= cumulative, axis=1).astype(np.int32)
    means, cholesky = np.asarray(prior["means"]), np.asarray(prior["cholesky"])
    z = means[component] + np.einsum("nij,nj->ni", cholesky[component], eps)
    return z.astype(np.float32), component


def assert_draws_follow_prior(prior, z, components, sigmas=5.0):
    """Asserts that draws `z` `[n, d]` with their `components` `[n]` come from `prior`.

    `prior` is a `to_dict()` (generator.json's "latent_prior"). Checks, each
    within `sigmas` standard errors: every component's frequency against its
    weight, and the whitened draws L_c^-1 (z - mean_c), which must be
    N(0, I): their mean, their variance per dimension, and no correlation.
    """
    weights = np.asarray(prior["weights"])
    means, cholesky = np.asarray(prior["means"]), np.asarray(prior["cholesky"])
    n = len(z)
    assert z.shape == (n, means.shape[1]) and components.shape == (n,)
    assert components.min() >= 0 and components.max() < len(weights)
    frequencies = np.bincount(components, minlength=len(weights)) / n
    tolerance = sigmas * np.sqrt(weights * (1 - weights) / n) + 1.0 / n
    assert np.all(np.abs(frequencies - weights) <= tolerance), (frequencies, weights)
    whitened = np.einsum("nij,nj->ni", np.linalg.inv(cholesky)[components], z - means[components])
    assert np.all(np.abs(whitened.mean(axis=0)) <= sigmas / np.sqrt(n)), whitened.mean(axis=0)
    covariance = np.cov(whitened, rowvar=False).reshape(z.shape[1], z.shape[1])
    # Each entry of a sample covariance of N(0, I) has a standard error of about sqrt(2/n).
    assert np.max(np.abs(covariance - np.eye(z.shape[1]))) <= sigmas * np.sqrt(2.0 / n), covariance


def built_once(tmp_path_factory, name, build):
    """`build(folder)` once for the whole test run, by whichever pytest-xdist worker asks first.

    The other workers wait for it and share the folder (read-only for every test: a
    test that writes there fails `assert_unchanged`). `build` returns what the
    fixture yields (JSON), saved beside the folder. A build that fails is tried
    again by the next worker that asks, and fails there the same way.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, which every worker's own folder sits in
    folder, record = root / name, root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            value = build(folder)
            record.write_text(json.dumps({"value": value, "digest": tree_digest(folder)}))
    saved = json.loads(record.read_text())
    return folder, saved["value"], saved["digest"]


def assert_unchanged(folder, digest):
    """Fails when a test wrote into a folder that `built_once` shares."""
    assert tree_digest(folder) == digest, f"a test changed the shared folder {folder}"


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVER = os.path.join(REPO_ROOT, "tests", "browser_check.mjs")


def browse(url, *arguments):
    """What browser_check.mjs saw at `url` (a dict)."""
    for needed, how in (
        (shutil.which("node"), "Node.js (apt-get install nodejs)"),
        (os.path.isfile(CHROMIUM), f"Chromium at {CHROMIUM} (apt-get install chromium)"),
        (
            os.path.isdir(os.path.join(REPO_ROOT, "node_modules", "puppeteer-core")),
            "puppeteer-core (npm ci)",
        ),
    ):
        if not needed:
            pytest.fail(f"The browser tests need {how}.")
    result = subprocess.run(
        ["node", DRIVER, url, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def serving(run, site):
    """`keras-vae web --run-dir run --out site` on a free port: yields its address, then stops."""
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "web", "--run-dir", str(run)]
        + ["--out", str(site), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        address = next(
            (line.split()[2] for line in server.stdout if line.startswith("Latent explorer: ")),
            None,
        )
        assert address, server.stderr.read()[-3000:]
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)


def browse_run(run, site, *arguments):
    """What browser_check.mjs saw of `keras-vae web --run-dir run --out site`, while served."""
    with serving(run, site) as address:
        return browse(address, *arguments)


def run_generator_check(export_dir, z, work):
    """tests/generator_check.py on an export, in a process without keras_vae: its outputs.

    `z` (saved as work/z.npy) are the codes every runtime decodes.
    """
    np.save(work / "z.npy", z)
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tests", "generator_check.py")]
        + [str(export_dir), str(work / "z.npy"), str(work / "out.npz")],
        capture_output=True,
        text=True,
        cwd=str(work),
        timeout=300,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]


def real_errors(seen):
    """Console errors and page errors, less LiteRT's native INFO/WARNING log lines.

    LiteRT.js prints its C++ log (e.g. "INFO: Created TensorFlow Lite XNNPACK
    delegate") through console.error; those are not errors of the page.
    """
    native_log = ("INFO: ", "WARNING: ")
    return [m for m in seen["console_errors"] if not m.startswith(native_log)] + seen["page_errors"]


RED, BLUE = (200, 30, 30), (30, 30, 200)  # write_folder's class colours


def write_folder(root, per_class=12, size=(48, 40)):
    """root/red/*.png and root/blue/*.jpg: flat colours with a green square of varying shade."""
    for name, colour, extension in (("red", RED, "png"), ("blue", BLUE, "jpg")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), colour, np.uint8)
            pixels[8:24, 8:24, 1] = 6 * i
            Image.fromarray(pixels).save(root / name / f"{i}.{extension}")
    return root
