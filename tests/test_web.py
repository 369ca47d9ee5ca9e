"""The latent explorer page, in a real headless Chromium, against the Keras decoder.

Needs Node.js, `npm ci` (puppeteer-core, @litertjs/core) and Debian's
chromium: `make test` and .ci/run install them.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

from keras_vae import cli, datasets
from keras_vae.export import explorer
from keras_vae.generation import latent
from keras_vae.models import priors
from tests.testing import (
    REPO_ROOT,
    assert_draws_follow_prior,
    browse,
    browse_run,
    call_main,
    real_errors,
    serving,
    write_folder,
)


@pytest.fixture(scope="module")
def served_page(trained_run, tmp_path_factory):
    """`keras-vae web` on train.py's run, serving on a free port; stopped at the end."""
    run_dir, _ = trained_run
    site = tmp_path_factory.mktemp("web") / "site"
    with serving(run_dir, site) as address:
        yield run_dir, site, address
    host, port = address.removeprefix("http://").rstrip("/").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass  # the server is gone


@pytest.mark.browser
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
    # A named slider: "Trouser" (the run's class) x 1.5 of its attribute vector.
    named = json.loads((run_dir / "attribute_vectors.json").read_text())
    attribute = seen["attribute"]
    first = named["names"].index(attribute["after"]["label"])
    assert attribute["after"]["label"] in datasets.CLASS_NAMES["fashion_mnist"]
    expected_z = np.array(attribute["before"]["z"]) + 1.5 * np.array(named["vectors"][first])
    np.testing.assert_allclose(attribute["after"]["z"], expected_z, atol=1e-5)
    assert attribute["explore"] != sliders["after_direction"]["explore"]


@pytest.mark.browser
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


@pytest.mark.browser
def test_unknown_variant_is_a_readable_error_naming_the_others(served_page):
    seen = browse(served_page[2] + "?variant=float64")
    assert seen["state"] == "error"
    assert (
        'no static-shape "float64" file; ?variant= can be float16, float32, int8'
        in (seen["error_text"])
    )


@pytest.mark.browser
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


@pytest.mark.browser
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
    # Only the error shows: no "Loading the generator...", no empty pictures.
    assert seen["visible"] == {
        "about": False,
        "error": True,
        "grid": False,
        "morph": False,
        "strip": False,
    }


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
    missing = tmp_path / "nothing"
    code, _, err = call_main(cli.main, ["web", "--run-dir", missing, "--no-serve"])
    assert code == 2 and f"Run dir not found: {missing} (--run-dir; or --export DIR)." in err
    model_file = run_dir / "model.keras"
    code, _, err = call_main(cli.main, ["web", "--run-dir", model_file, "--no-serve"])
    assert code == 2 and f"--run-dir {model_file} is a file; give the run's directory." in err
    site = explorer.build_site(str(runs / "new" / "export"), str(tmp_path / "site"))
    (tmp_path / "site" / "explorer.js").write_text("// from an earlier build")
    assert explorer.build_site(str(runs / "old" / "export"), site) == site
    assert "earlier build" not in (tmp_path / "site" / "explorer.js").read_text()
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


def test_a_site_is_replaced_only_when_it_holds_nothing_but_what_a_build_writes(
    trained_run, tmp_path, monkeypatch
):
    run_dir, _ = trained_run
    site = explorer.build_site(str(run_dir / "export"), str(tmp_path / "site"))
    for extra in ("notes.txt", "model/notes.txt", "drafts"):
        path = tmp_path / "site" / extra
        path.mkdir() if extra == "drafts" else path.write_text("keep me")
        with pytest.raises(explorer.SiteError, match=f"it also holds {extra}, which") as error:
            explorer.build_site(str(run_dir / "export"), site)
        assert str(error.value).count("\n") == 0
        assert path.exists()
        path.rmdir() if extra == "drafts" else path.unlink()

    # What appears at --out during the build is checked too: left as it is.
    commit = explorer.atomic_files.commit_directory

    def someone_adds_a_file(staging, out_dir, *args, **kwargs):
        (tmp_path / "site" / "notes.txt").write_text("keep me")
        return commit(staging, out_dir, *args, **kwargs)

    monkeypatch.setattr(explorer.atomic_files, "commit_directory", someone_adds_a_file)
    with pytest.raises(explorer.SiteError, match="changed by someone else during the build"):
        explorer.build_site(str(run_dir / "export"), site)
    assert (tmp_path / "site" / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["site"]


def _get(address, path):
    """(status, body) of a GET on the test server."""
    try:
        with urllib.request.urlopen(address + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def _export_copy(run_dir, tmp_path, edit=None):
    """A copy of the run's export, its generator.json passed through `edit(metadata)`."""
    export = tmp_path / "export"
    shutil.copytree(run_dir / "export", export)
    if edit is not None:
        path = export / "generator.json"
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return export


def test_server_serves_the_site_files_only_no_listings_no_links(trained_run, tmp_path):
    run_dir, _ = trained_run
    site = tmp_path / "site"
    explorer.build_site(str(run_dir / "export"), str(site))
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    (site / "etc").symlink_to("/etc")
    (site / "model.keras").symlink_to(run_dir / "model.keras")
    (site / "model" / "secret.txt").symlink_to(secret)
    server, address = _serve_in_thread(site)
    try:
        assert _get(address, "/")[0] == 200
        assert _get(address, "/model/generator.json")[0] == 200
        for path in ("/model/", "/model", "/litert/", "/litert/wasm/", "/etc/passwd", "/etc/"):
            assert _get(address, path)[0] == 404, path
        for path in ("/model.keras", "/model/secret.txt", "/model/../../secret.txt"):
            assert _get(address, path)[0] == 404, path
        # A link made while the server runs is not served either.
        (site / "later.txt").symlink_to(secret)
        assert _get(address, "/later.txt")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_site_generator_json_holds_what_the_page_reads_and_no_local_paths(trained_run, tmp_path):
    run_dir, _ = trained_run

    def with_local_paths(metadata):
        metadata["training_config"]["data_dir"] = "/home/owner/private/data"
        return metadata

    export = _export_copy(run_dir, tmp_path, with_local_paths)
    site = explorer.build_site(str(export), str(tmp_path / "site"))
    text = (tmp_path / "site" / "model" / "generator.json").read_text()
    published = json.loads(text)
    assert "/home/owner" not in text and "training_config" not in published
    assert "data_dir" not in text and str(tmp_path) not in text
    assert set(published) <= {
        "latent_dim",
        "image_shape",
        "latent_prior",
        "latent_directions",
        "attribute_directions",
        "artifacts",
        "dataset",
        "likelihood",
        "keras_vae_version",
        "preset",
    }
    original = json.loads((export / "generator.json").read_text())
    assert published["preset"] == original["training_config"]["preset"]
    assert {f["layout"] for f in published["artifacts"].values()} == {"static"}
    assert site == str(tmp_path / "site")


def test_port_in_use_fails_before_building_and_says_what_to_do(trained_run, tmp_path):

    run_dir, _ = trained_run
    site = tmp_path / "site"
    explorer.build_site(str(run_dir / "export"), str(site))
    (site / "served.txt").write_text("a rebuild would remove me")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = call_main(
            cli.main, ["web", "--run-dir", run_dir, "--out", site, "--port", port]
        )
    assert code == 2
    assert err == (
        f"keras-vae web: error: port {port} is in use: pass --port N (0 picks a free one).\n"
    )
    assert (site / "served.txt").exists()  # the running server's page was not rebuilt
    for host in ("no.such.host.invalid", "256.1.1.1"):
        code, _, err = call_main(
            cli.main, ["web", "--run-dir", run_dir, "--out", site, "--host", host, "--port", 0]
        )
        assert code == 2 and err.count("\n") == 1 and f"--host {host}" in err, err


def test_installed_package_finds_litert_from_any_directory_with_the_command_it_prints(
    trained_run, tmp_path
):
    # The package as pip installs it (keras_vae/ with its page, no checkout
    # around it), run from another directory with an empty user cache.
    run_dir, _ = trained_run
    with open(os.path.join(REPO_ROOT, "package.json")) as f:
        pinned = json.load(f)["dependencies"]["@litertjs/core"]
    installed = tmp_path / "site-packages"
    shutil.copytree(
        os.path.join(REPO_ROOT, "keras_vae"),
        installed / "keras_vae",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "keras_vae", "web", "--export", str(run_dir / "export")]
    command += ["--out", str(tmp_path / "page"), "--no-serve"]

    missing = subprocess.run(command, capture_output=True, text=True, cwd=elsewhere, env=env)

    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    install = missing.stderr.split("`")[1]
    prefix = tmp_path / "cache" / "keras_vae" / f"litertjs-{pinned}"
    assert install == (
        f"npm install --prefix {prefix} @litertjs/core@{pinned} @litertjs/wasm-utils@{pinned}"
    )
    # What that command leaves behind (npm puts packages in PREFIX/node_modules).
    shutil.copytree(
        os.path.join(REPO_ROOT, "node_modules", "@litertjs"), prefix / "node_modules" / "@litertjs"
    )

    found = subprocess.run(command, capture_output=True, text=True, cwd=elsewhere, env=env)

    assert found.returncode == 0, found.stderr
    assert (tmp_path / "page" / "litert" / "core" / "index.js").is_file()
    assert (tmp_path / "page" / "index.html").is_file()


def _drop_variant(metadata):
    for facts in metadata["artifacts"].values():
        facts.pop("variant", None)
    return metadata


def _first_static(metadata):
    return next(f for f in metadata["artifacts"].values() if f.get("layout") == "static")


def _path_outside(metadata):
    _first_static(metadata)["path"] = "../../payload.txt"
    return metadata


def _absolute_path(metadata):
    _first_static(metadata)["path"] = "/etc/passwd"
    return metadata


def _directions_with_scales(scales):
    def edit(metadata):
        metadata["latent_directions"]["scales"] = scales
        return metadata

    return edit


def _no_path(metadata):
    del _first_static(metadata)["path"]
    return metadata


@pytest.mark.parametrize(
    "edit, message",
    [
        (_drop_variant, 'has no "variant"'),
        (lambda metadata: {"artifacts": []}, '"latent_dim" must be a positive integer'),
        (lambda metadata: {**metadata, "artifacts": []}, '"artifacts" must be an object'),
        (lambda metadata: None, "a JSON object expected, got NoneType"),
        (_no_path, 'has no "path"'),
        (_path_outside, "'../../payload.txt' is not a .tflite file name inside the export"),
        (_absolute_path, "'/etc/passwd' is not a .tflite file name inside the export"),
        (lambda metadata: {**metadata, "latent_prior": {"weights": [1]}}, '"latent_prior"'),
        (_directions_with_scales(3), '"latent_directions" must hold scales'),
        (_directions_with_scales(None), '"latent_directions" must hold scales'),
        (
            lambda metadata: {
                **metadata,
                "attribute_directions": {"names": ["Bag"], "vectors": []},
            },
            '"attribute_directions" must be null or names [k] and vectors',
        ),
    ],
)
def test_build_refuses_a_generator_json_that_is_not_an_export(trained_run, tmp_path, edit, message):

    run_dir, _ = trained_run
    run = tmp_path / "a" / "run"
    export = _export_copy(run_dir, run, edit)
    (tmp_path / "a" / "payload.txt").write_text("outside the export")

    code, _, err = call_main(cli.main, ["web", "--export", export, "--no-serve"])

    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"keras-vae web: error: {export / 'generator.json'}: "), err
    assert message in err and "keras-vae export --model RUN --overwrite" in err, err
    assert sorted(os.listdir(run)) == ["export"]  # no page, no staging folder
    assert sorted(os.listdir(tmp_path / "a")) == ["payload.txt", "run"]


def test_build_refuses_a_linked_or_foreign_model_file(trained_run, tmp_path):

    run_dir, _ = trained_run
    secret = tmp_path / "secret"
    secret.write_bytes(b"root only " * 100)
    secret.chmod(0o600)
    export = _export_copy(run_dir, tmp_path / "run")
    model = export / "generator_float32_b1.tflite"
    model.unlink()
    model.symlink_to(secret)

    code, _, err = call_main(cli.main, ["web", "--export", export, "--no-serve"])

    assert code == 2 and err.count("\n") == 1, err
    assert f"{model} is a symbolic link" in err
    assert not (tmp_path / "run" / "web").exists()
    model.unlink()
    model.write_bytes(b"root only " * 100)
    code, _, err = call_main(cli.main, ["web", "--export", export, "--no-serve"])
    assert code == 2 and f"{model} is not a .tflite file" in err, err
    assert not (tmp_path / "run" / "web").exists()


def test_web_on_a_read_only_run_names_the_run_and_what_to_do(trained_run, tmp_path):
    run_dir, _ = trained_run
    run = tmp_path / "run"
    shutil.copytree(run_dir / "export", run / "export")
    command = [sys.executable, "-m", "keras_vae", "web", "--run-dir", str(run), "--no-serve"]
    if os.geteuid() == 0:  # root writes anywhere: the run dir becomes a read-only mount
        script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        probe = ["unshare", "--mount", "sh", "-c", script, str(run), "true"]
        tried = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        if tried.returncode != 0:
            pytest.skip(f"root, and no read-only mount here: {tried.stderr.strip()}")
        command = ["unshare", "--mount", "sh", "-c", script, str(run), *command]
        why = "Read-only file system"
    else:
        run.chmod(0o555)
        why = "Permission denied"
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    finally:
        run.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"keras-vae web: error: cannot write the page into {run} ({why}): "
        "pass --out DIR, a folder you can write to.\n"
    )
    assert sorted(os.listdir(run)) == ["export"]


def _overlap(a, b):
    """True if two boxes share an area of more than one pixel each way."""
    return min(a["right"], b["right"]) - max(a["left"], b["left"]) > 1 and (
        min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 1
    )


@pytest.mark.browser
def test_page_marks_the_picks_and_keeps_its_sections_apart(served_page, tmp_path):
    widths = (1920, 1280, 700)
    seen = browse(served_page[2], "--layout", ",".join(map(str, widths)), tmp_path / "page")

    assert seen["state"] == "ready", seen
    for width in widths:
        layout = seen["layout"][str(width)]
        assert layout["scroll_width"] <= layout["page_width"], width  # no sideways scrolling
        sections = layout["sections"]
        for section in sections:
            for name, part in section["parts"].items():
                inside = section["box"]
                assert (
                    inside["left"] - 1 <= part["left"] and part["right"] <= inside["right"] + 1
                ), (
                    width,
                    section["title"],
                    name,
                )
            for other in sections:
                if other is not section:
                    for name, part in section["parts"].items():
                        assert not _overlap(part, other["box"]), (width, name, other["title"])
        morph = next(s for s in sections if s["title"] == "Morph")["parts"]
        figures = [morph[name] for name in ("pick-a", "morph", "pick-b")]
        assert not any(_overlap(a, b) for i, a in enumerate(figures) for b in figures[i + 1 :])
        # The grid frames the picked samples A (tile 5) and B (tile 10).
        for mark, tile in zip(("mark-a", "mark-b"), layout["picked_tiles"], strict=True):
            assert layout["marks"][mark]["visible"], (width, mark)
            assert layout["marks"][mark]["text"] == mark[-1].upper()
            box = layout["marks"][mark]["box"]
            assert all(abs(box[side] - tile[side]) <= 1 for side in tile), (width, box, tile)
    assert (tmp_path / "page-1280.png").stat().st_size > 0
    assert seen["clicked"] == {"picked": [7, 10], "mark_a": 7}


def _readme_blocks(language, section=None):
    """The ```language code blocks of export/README.md (of one ## section if given)."""
    with open(os.path.join(REPO_ROOT, "export", "README.md")) as f:
        text = f.read()
    if section is not None:
        text = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.mark.browser
def test_export_readme_javascript_page_runs_in_the_browser(trained_run, tmp_path):
    # The page as README writes it, served with node_modules/ and model/.
    run_dir, _ = trained_run
    (page,) = _readme_blocks("html", "Web (JavaScript, LiteRT.js)")
    root = tmp_path / "app"
    shutil.copytree(run_dir / "export", root / "model", ignore=shutil.ignore_patterns("saved_*"))
    for package in ("core", "wasm-utils"):
        shutil.copytree(
            os.path.join(REPO_ROOT, "node_modules", "@litertjs", package),
            root / "node_modules" / "@litertjs" / package,
            ignore=shutil.ignore_patterns("*jspi*", "*threaded*", "*.map"),
        )
    # The check reads `pixels` back: one line added at the end of the module.
    readback = "window.result = {pixels: Array.from(pixels), batch, latentDim};\n</script>"
    (root / "index.html").write_text(page[::-1].replace(">tpircs/<", readback[::-1], 1)[::-1])
    (root / "favicon.ico").write_bytes(b"")  # what the browser asks of any site
    server, address = _serve_in_thread(root)
    try:
        seen = browse(address + "/", "--result")
    finally:
        server.shutdown()
        server.server_close()

    assert real_errors(seen) == [] and "result" in seen, seen
    result = seen["result"]
    model = keras.models.load_model(run_dir / "model.keras")
    z = np.zeros((result["batch"], result["latentDim"]), np.float32)
    expected = np.rint(keras.ops.convert_to_numpy(model.decode(z)).ravel() * 255)
    assert np.max(np.abs(np.array(result["pixels"]) - expected)) <= 1


# What the Kotlin snippets may call besides their own functions: Kotlin's
# standard library, Java, Android and LiteRT (names from their API references).
KOTLIN_FREE_CALLS = {
    "Array", "ByteArray", "DoubleArray", "FloatArray", "Triple", "mapOf",  # Kotlin
    "FileInputStream", "JSONObject",  # java.io, org.json (Android)
    "Interpreter",  # org.tensorflow.lite
    "Options",  # CompiledModel.Options (com.google.ai.edge.litert)
}  # fmt: skip
KOTLIN_MEMBER_CALLS = {
    "copyInto", "toFloat", "toInt", "use", "bufferedReader", "readText",  # Kotlin
    "nextDouble", "nextFloat", "nextGaussian", "Random", "map",  # java.util, java.nio
    "openFd", "open",  # android.content.res.AssetManager
    "getInt", "getDouble", "getString", "getJSONArray", "getJSONObject", "length",  # org.json
    "runSignature",  # org.tensorflow.lite.Interpreter
    "create", "createInputBuffers", "createOutputBuffers", "run",  # CompiledModel
    "writeFloat", "readFloat",  # com.google.ai.edge.litert.TensorBuffer
}  # fmt: skip
KOTLIN_IMPORTS = ("android.", "java.", "org.json.", "org.tensorflow.lite.", "com.google.ai.edge.")


def test_export_readme_kotlin_snippets_are_complete_and_read_real_fields(trained_run):
    run_dir, _ = trained_run
    code = "\n".join(_readme_blocks("kotlin"))
    code = re.sub(r"//[^\n]*", "", code)  # comments
    defined = set(re.findall(r"\bfun\s+(\w+)", code)) | set(re.findall(r"\bclass\s+(\w+)", code))
    calls = re.findall(r"(\.?)\b([A-Za-z_]\w*)\s*[({]", code)
    keywords = {"if", "while", "for", "fun", "val", "var", "return", "class", "object"}
    for dot, name in calls:
        if name in keywords or name in defined:
            continue
        allowed = KOTLIN_MEMBER_CALLS | KOTLIN_FREE_CALLS if dot else KOTLIN_FREE_CALLS
        assert name in allowed, f"{dot}{name}(...) is neither defined in the snippets nor an API"
    for imported in re.findall(r"^import\s+([\w.]+)", code, re.M):
        assert imported.startswith(KOTLIN_IMPORTS), imported
    assert {"loadModelFile", "loadMetadata", "samplePrior"} <= defined
    # Every generator.json field the snippets read is in a real export, where they read it.
    metadata = json.loads((run_dir / "export" / "generator.json").read_text())
    reads = re.findall(r'\.get(?:Int|Double|String|JSONArray|JSONObject)\("(\w+)"\)', code)
    assert {"latent_dim", "image_shape", "latent_prior", "weights", "means", "cholesky"} <= set(
        reads
    )
    prior = metadata["latent_prior"]
    facts = metadata["artifacts"]["float16_b16"]
    for field in reads:
        assert (
            field in metadata or field in prior or field in facts or field in metadata["artifacts"]
        ), field
    assert facts["path"] == "generator_float16_b16.tflite" and facts["batch"] == 16


@pytest.mark.browser
def test_a_colour_run_of_a_folder_is_drawn_in_colour_with_its_named_sliders(tmp_path):

    pictures = write_folder(tmp_path / "pictures", per_class=40)
    run = tmp_path / "run"
    argv = ["train", "--dataset", "folder", "--data-dir", pictures, "--image-size", "16"]
    argv += ["--epochs", "2", "--batch-size", "16", "--prior", "standard", "--run-dir", run]
    argv += ["--verbose", "0", "--export-variants", "float32", "--export-static-batch-sizes", "16"]
    code, _, err = call_main(cli.main, argv)
    assert code == 0, err
    model = keras.models.load_model(run / "model.keras")
    z = np.random.default_rng(5).standard_normal((16, model.latent_dim)).astype(np.float32)
    (tmp_path / "z.json").write_text(json.dumps(z.tolist()))
    seen = browse_run(run, tmp_path / "site", tmp_path / "z.json")
    assert seen["state"] == "ready" and real_errors(seen) == [], seen
    expected = keras.ops.convert_to_numpy(model.decode(z)).reshape(16, -1)
    images = np.array(seen["grid"]["images"], np.float32)
    assert images.shape == (16, 16 * 16 * 3)
    assert np.max(np.abs(images - expected)) <= 1e-5
    # The canvas shows every channel of the generator's pixels: not a grey picture.
    drawn = np.array(seen["grid"]["drawn"]).reshape(16, 16, 16, 3)
    np.testing.assert_array_equal(drawn.reshape(16, -1), np.array(seen["grid"]["pixels"]))
    assert (drawn[..., 0] != drawn[..., 1]).any()
    assert seen["attribute"]["after"]["label"] in ("red", "blue")


@pytest.mark.browser
def test_a_conditional_run_has_a_class_picker_and_draws_every_class_of_the_picks(
    conditional_run, tmp_path
):
    seen = browse_run(conditional_run, tmp_path / "site")
    assert seen["state"] == "ready" and real_errors(seen) == [], seen
    assert "conditional on 10 classes" in seen["about"]
    conditioning = seen["conditioning"]
    assert conditioning["visible"] and conditioning["every_label_visible"]
    assert conditioning["names"] == list(datasets.CLASS_NAMES["fashion_mnist"])
    assert conditioning["label"] == [0.0] * 9 + [1.0]  # the last class was picked
    model = keras.models.load_model(conditional_run / "model.keras")
    codes = np.array(conditioning["codes"], np.float32)
    ankle_boot = model.label_vectors("Ankle boot", count=len(codes))
    expected = keras.ops.convert_to_numpy(model.decode(codes, ankle_boot)).reshape(len(codes), -1)
    assert np.max(np.abs(np.array(conditioning["grid"]) - expected)) <= 1e-5
    # "Same z, every class": picks A and B, each drawn as the 10 classes.
    picked = codes[conditioning["picked"]]
    each = keras.ops.convert_to_numpy(
        model.decode(np.repeat(picked, 10, axis=0), np.tile(model.each_label(), (2, 1)))
    )
    rows = np.array(conditioning["every_label"])
    assert rows.shape == (20, 28 * 28)
    assert np.max(np.abs(rows - each.reshape(20, -1))) <= 1e-5
