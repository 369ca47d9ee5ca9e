"""The latent explorer page, in a real headless Chromium, against the Keras decoder.

Needs Node.js, `npm ci` (puppeteer-core, @litertjs/core) and Debian's
chromium: `make test` and .ci/run install them.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest

from keras_vae import explorer, latent, priors
from tests.testing import REPO_ROOT, assert_draws_follow_prior, call_main

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


def real_errors(seen):
    """Console errors and page errors, less LiteRT's native INFO/WARNING log lines.

    LiteRT.js prints its C++ log (e.g. "INFO: Created TensorFlow Lite XNNPACK
    delegate") through console.error; those are not errors of the page.
    """
    native_log = ("INFO: ", "WARNING: ")
    return [m for m in seen["console_errors"] if not m.startswith(native_log)] + seen["page_errors"]


@pytest.fixture(scope="module")
def served_page(trained_run, tmp_path_factory):
    """`keras-vae web` on train.py's run, serving on a free port; stopped at the end."""
    run_dir, _ = trained_run
    site = tmp_path_factory.mktemp("web") / "site"
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "web", "--run-dir", str(run_dir)]
        + ["--out", str(site), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        address = None
        for line in server.stdout:
            if line.startswith("Latent explorer: http://"):
                address = line.split()[2]
                break
        assert address, server.stderr.read()[-3000:]
        yield run_dir, site, address
    finally:
        server.terminate()
        server.wait(timeout=30)
    host, port = address.removeprefix("http://").rstrip("/").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass  # the server is gone


def test_page_generates_morphs_and_explores_like_the_keras_decoder(served_page, tmp_path):
    run_dir, site, address = served_page
    model = keras.models.load_model(run_dir / "model.keras")
    metadata = json.loads((site / "model" / "generator.json").read_text())
    z = priors.GaussianMixture.from_dict(metadata["latent_prior"]).sample(16, seed=3)
    (tmp_path / "z.json").write_text(json.dumps(z.tolist()))

    seen = browse(address, tmp_path / "z.json")

    assert seen["state"] == "ready" and seen["error_text"] == "", seen
    assert real_errors(seen) == []
    assert "LiteRT.js (wasm)" in seen["about"] and "fitted gmm" in seen["about"]
    expected = keras.ops.convert_to_numpy(model.decode(z)).reshape(16, -1)
    images = np.array(seen["grid"]["images"], np.float32)
    assert images.shape == expected.shape
    assert np.max(np.abs(images - expected)) <= 1e-6
    pixels = np.array(seen["grid"]["pixels"])
    assert np.max(np.abs(pixels - np.rint(images * 255))) <= 1
    # The canvas shows those pixels (grayscale drawn as R = G = B).
    np.testing.assert_array_equal(np.array(seen["grid"]["drawn"]), pixels)
    # The batch-1 path: the morph at t = 0.9 between grid codes 0 and 1.
    slerp = latent.interpolate(z[0], z[1], 11, "slerp")[9]
    np.testing.assert_allclose(seen["morph"]["z"], slerp, atol=1e-5)
    morph = keras.ops.convert_to_numpy(model.decode(np.array([seen["morph"]["z"]], np.float32)))
    assert np.max(np.abs(np.array(seen["morph"]["pixels"]) - np.rint(morph.ravel() * 255))) <= 1
    sliders = seen["sliders"]
    assert sliders["after_morph"]["morph"] != sliders["before"]["morph"]
    assert sliders["after_direction"]["explore"] != sliders["after_morph"]["explore"]
    assert sliders["after_direction"]["morph"] == sliders["after_morph"]["morph"]


@pytest.mark.parametrize("variant, tolerance", [("float16", 2e-2), ("int8", 0.1)])
def test_page_runs_every_variant(served_page, tmp_path, variant, tolerance):
    run_dir, site, address = served_page
    model = keras.models.load_model(run_dir / "model.keras")
    metadata = json.loads((site / "model" / "generator.json").read_text())
    z = priors.GaussianMixture.from_dict(metadata["latent_prior"]).sample(16, seed=4)
    (tmp_path / "z.json").write_text(json.dumps(z.tolist()))

    seen = browse(f"{address}?variant={variant}", tmp_path / "z.json")

    assert seen["state"] == "ready" and real_errors(seen) == [], seen
    assert f"generator_{variant}_b*" in seen["about"]
    expected = keras.ops.convert_to_numpy(model.decode(z)).reshape(16, -1)
    assert np.max(np.abs(np.array(seen["grid"]["images"]) - expected)) <= tolerance


def test_unknown_variant_is_a_readable_error_naming_the_others(served_page):
    seen = browse(served_page[2] + "?variant=float64")
    assert seen["state"] == "error"
    assert (
        'no static-shape "float64" file; ?variant= can be float16, float32, int8'
        in (seen["error_text"])
    )


def test_page_math_is_the_python_math(served_page, tmp_path):
    # latent.js's prior draws, lerp / slerp and moves along the main directions.
    _, site, address = served_page
    metadata = json.loads((site / "model" / "generator.json").read_text())
    prior = priors.GaussianMixture.from_dict(metadata["latent_prior"])
    a, b = prior.sample(2, seed=5).astype(np.float64)
    ts = [0.0, 0.25, 0.5, 0.9, 1.0]
    amounts = [1.5, -0.5]
    request = {"count": 4000, "seed": 11, "endpoints": [a.tolist(), b.tolist()], "ts": ts}
    (tmp_path / "case.json").write_text(json.dumps({**request, "amounts": amounts}))

    seen = browse(address, "--math", tmp_path / "case.json")["math"]

    z, components = np.array(seen["z"], np.float32), np.array(seen["components"], np.int32)
    assert z.shape == (4000, prior.latent_dim)
    assert_draws_follow_prior(metadata["latent_prior"], z, components)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    for method in ("lerp", "slerp"):
        python = latent.interpolate(a32, b32, 101, method)[[round(t * 100) for t in ts]]
        np.testing.assert_allclose(seen["paths"][method], python, atol=1e-4)
    directions = metadata["latent_directions"]
    expected = a32 + sum(
        amount * directions["scales"][k] * np.array(directions["directions"][k])
        for k, amount in enumerate(amounts)
    )
    np.testing.assert_allclose(seen["moved"], expected, atol=1e-5)


def _serve_in_thread(root):
    server = explorer.make_server(root, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize(
    "damage, message",
    [
        ("corrupt", "generator_float32_b16.tflite is not a LiteRT model this page can run"),
        ("missing", "Could not load model/generator_float32_b16.tflite: HTTP 404"),
        ("no_metadata", "Could not load model/generator.json: HTTP 404"),
    ],
)
def test_missing_or_corrupt_model_is_a_readable_error_on_the_page(
    served_page, tmp_path, damage, message
):
    _, site, _ = served_page
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    model_file = broken / "model" / "generator_float32_b16.tflite"
    if damage == "corrupt":
        model_file.write_bytes(b"this is not a flatbuffer" * 100)
    elif damage == "missing":
        model_file.unlink()
    else:
        (broken / "model" / "generator.json").unlink()
    server, address = _serve_in_thread(broken)
    try:
        seen = browse(address + "/")
    finally:
        server.shutdown()
        server.server_close()
    assert seen["state"] == "error", seen
    assert message in seen["error_text"], seen["error_text"]
    assert seen["page_errors"] == []


def test_site_needs_static_files_and_refuses_a_foreign_folder(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    old = tmp_path / "old_export"
    shutil.copytree(run_dir / "export", old)
    metadata = json.loads((old / "generator.json").read_text())
    metadata["artifacts"] = {
        key: facts
        for key, facts in metadata["artifacts"].items()
        if facts.get("layout") != "static"
    }
    (old / "generator.json").write_text(json.dumps(metadata))
    from keras_vae import cli

    code, _, err = call_main(cli.main, ["web", "--export", str(old), "--no-serve"])
    assert code == 2 and "no static-shape .tflite files" in err and "--overwrite" in err
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, _, err = call_main(
        cli.main, ["web", "--run-dir", str(run_dir), "--out", str(folder), "--no-serve"]
    )
    assert code == 2 and "is not an explorer page" in err
    assert (folder / "notes.txt").read_text() == "keep me"
    code, _, err = call_main(
        cli.main,
        ["web", "--run-dir", str(run_dir), "--no-serve", "--node-modules", str(tmp_path)],
    )
    assert code == 2 and "npm ci" in err
    assert not (run_dir / "web").exists()


def test_latest_run_is_the_newest_export_and_a_rebuilt_site_replaces_the_old(trained_run, tmp_path):
    run_dir, _ = trained_run
    runs = tmp_path / "runs"
    for name in ("old", "new", "no_export"):
        (runs / name).mkdir(parents=True)
    for name, age in (("old", 100), ("new", 0)):
        shutil.copytree(run_dir / "export", runs / name / "export")
        metadata = runs / name / "export" / "generator.json"
        os.utime(metadata, (metadata.stat().st_mtime - age,) * 2)
    assert explorer.latest_run(str(runs)) == str(runs / "new")
    with pytest.raises(explorer.SiteError, match="No run with an export"):
        explorer.latest_run(str(tmp_path / "nothing"))
    site = explorer.build_site(str(runs / "new" / "export"), str(tmp_path / "site"))
    (tmp_path / "site" / "stale.txt").write_text("from an earlier build")
    assert explorer.build_site(str(runs / "old" / "export"), site) == site
    assert not (tmp_path / "site" / "stale.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["runs", "site"]  # no staging left behind
    names = set(os.listdir(tmp_path / "site" / "model"))
    assert names == {
        "generator.json",
        *(
            f"generator_{k}.tflite"
            for k in (
                "float32_b1",
                "float32_b16",
                "float16_b1",
                "float16_b16",
                "int8_b1",
                "int8_b16",
            )
        ),
    }
