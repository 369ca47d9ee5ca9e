"""`keras-vae` end to end on the tiny run dir that train.py made (trained_run)."""

import configparser
import contextlib
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import tracemalloc

import keras
import numpy as np
import pytest
from PIL import Image

from keras_vae import VAE, cli, datasets, generation
from tests.testing import REPO_ROOT, SMALL_EXPORT_ARGS, TINY, call_main, train_in_process

COMMANDS = ("generate", "interpolate", "attribute", "edit", "average", "export")
TILE = 28 * 2 + 2  # 28x28 images are drawn at scale 2 with 1 pixel padding


def run_cli(*args):
    """The console script in a subprocess: (returncode, stdout, stderr)."""
    script = os.path.join(os.path.dirname(sys.executable), "keras-vae")
    result = subprocess.run(
        [script, *map(str, args)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    return result.returncode, result.stdout, result.stderr


def test_an_argument_no_flag_takes_is_named_with_its_command_s_usage():
    argv = ["attribute", "--model", "runs/a", "--attribute", "Coat", "Bag", "--out", "c.npy"]
    code, _, err = call_main(cli.main, argv)
    assert code == 2 and "usage: keras-vae attribute" in err
    assert err.strip().splitlines()[-1] == "keras-vae attribute: error: unrecognized arguments: Bag"
    code, _, err = call_main(cli.main, ["web", "--model", "runs/a"])
    assert code == 2 and "keras-vae web: error: unrecognized arguments: --model runs/a" in err


def png(path):
    return np.asarray(Image.open(path))


def test_help_of_every_command_through_both_entry_points(monkeypatch):
    # The console script in a real process; `python -m keras_vae` as runpy runs it.
    code, out, _ = run_cli("--help")
    assert code == 0 and all(command in out for command in COMMANDS)
    monkeypatch.setattr(sys, "argv", ["python -m keras_vae", "generate", "--help"])
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stdout(io.StringIO()) as out:
        runpy.run_module("keras_vae", run_name="__main__")
    assert exit_.value.code == 0 and "usage: keras-vae generate" in out.getvalue()
    for command in COMMANDS:
        code, out, err = call_main(cli.main, [command, "--help"])
        assert code == 0, err
        assert f"usage: keras-vae {command}" in out and "--model" in out
    # One default per flag, and none where there is none.
    for name, command in cli.build_parser().commands.items():
        formatter = command._get_formatter()
        for action in command._actions:
            shown = formatter._get_help_string(action) or ""
            assert shown.count("(default:") <= 1, (name, action.dest, shown)
            assert not (action.default is None and "%(default)s" in shown), (name, action.dest)


def test_generate_writes_a_seeded_grid(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    out = tmp_path / "generated.png"
    code, stdout, stderr = call_main(
        cli.main, ["generate", "--model", run_dir, "--n", 12, "--out", out]
    )
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    grid = png(out)
    assert grid.shape == (2 * (2 * 29 + 1), 2 * (8 * 29 + 1))  # 28x28 tiles at scale 2
    assert grid[2:58, 2:58].std() > 5  # a generated image, not a blank
    assert (grid[60:118, 2 * (4 * 29 + 1) :] == 255).all()  # 12 images: the last 4 are blank
    again = tmp_path / "again.png"
    assert (
        cli.main(
            ["generate", "--model", str(run_dir / "model.keras"), "--n", "12", "--out", str(again)]
        )
        == 0
    )
    np.testing.assert_array_equal(png(again), grid)


def test_generate_draws_from_the_chosen_prior(trained_run, tmp_path):
    run_dir, _ = trained_run
    grids = {}
    for prior in ("gmm", "standard", None):
        out = tmp_path / f"{prior}.png"
        extra = ["--prior", prior] if prior else []
        code, _, stderr = call_main(
            cli.main, ["generate", "--model", run_dir, "--n", 8, "--out", out, *extra]
        )
        assert code == 0, stderr
        grids[prior] = png(out)
    np.testing.assert_array_equal(grids[None], grids["gmm"])  # the run's default is its gmm
    assert not np.array_equal(grids["gmm"], grids["standard"])


def test_fit_prior_refits_a_run_dir_and_the_export_follows(trained_run, tmp_path):
    source, _ = trained_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    code, stdout, stderr = call_main(
        cli.main, ["fit-prior", "--model", run_dir, "--prior", "gmm", "--components", 2]
    )
    assert code == 0, stderr
    assert stdout.strip() == str(run_dir / "model.keras")
    assert "the run's own fashion_mnist training split: 768 images (256 held out" in stderr
    assert "gmm: 2 components" in stderr and "keras-vae export" in stderr
    model = keras.models.load_model(run_dir / "model.keras")
    assert model.prior.kind == "gmm" and model.prior.components == 2
    # Fitted to the run's own split: its 768 training codes, chosen on its 256 validation codes.
    assert model.prior.info["codes"] == 768 and model.prior.info["validation_codes"] == 256
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["prior"]["components"] == 2
    code, _, stderr = call_main(
        cli.main, ["export", "--model", run_dir, "--overwrite", "--variants", "float32"]
    )
    assert code == 0, stderr
    metadata = json.loads((run_dir / "export" / "generator.json").read_text())
    assert metadata["latent_prior"] == model.prior.to_dict()
    code, _, stderr = call_main(cli.main, ["fit-prior", "--model", run_dir, "--prior", "standard"])
    assert code == 0, stderr
    assert keras.models.load_model(run_dir / "model.keras").prior.kind == "standard"
    code, _, stderr = call_main(
        cli.main,
        ["generate", "--model", run_dir, "--prior", "gaussian", "--out", tmp_path / "g.png"],
    )
    assert code == 0, stderr  # the Gaussian fitted with the mixture stays available
    bare = tmp_path / "bare.keras"
    VAE(image_shape=(28, 28, 1), **TINY).save(bare)
    code, _, stderr = call_main(
        cli.main, ["generate", "--model", bare, "--prior", "gmm", "--out", tmp_path / "x.png"]
    )
    assert code == 2 and "no fitted 'gmm' prior" in stderr and len(stderr.splitlines()) == 1


def test_interpolate_between_dataset_indices_and_user_images(trained_run, tmp_path, fashion_mnist):
    run_dir, _ = trained_run
    out = tmp_path / "interpolation.png"
    argv = ["interpolate", "--model", str(run_dir), "--indices", "0", "1", "2", "3"]
    assert cli.main(argv + ["--steps", "6", "--out", str(out)]) == 0
    grid = png(out)
    _, (test_images, _) = fashion_mnist
    assert grid.shape[0] > 2 * TILE and grid.shape[1] > 8 * TILE
    # The last column of row 1 is test image 3, the end point, at scale 2.
    expected = np.repeat(np.repeat(np.rint(test_images[3, ..., 0] * 255), 2, 0), 2, 1)
    bottom_right = grid[-TILE:-2, -TILE:-2]
    np.testing.assert_array_equal(bottom_right, expected)

    for index, name in ((0, "a.png"), (1, "b.jpg")):
        Image.fromarray((test_images[index, ..., 0] * 255).astype(np.uint8)).save(tmp_path / name)
    out = tmp_path / "from_files.png"
    argv = ["interpolate", "--model", str(run_dir), "--images", str(tmp_path / "a.png")]
    assert cli.main(argv + [str(tmp_path / "b.jpg"), "--method", "lerp", "--out", str(out)]) == 0
    assert png(out).shape[0] > TILE


def test_attribute_then_edit_with_the_saved_vector(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    vector_path = tmp_path / "trouser.npy"
    argv = ["attribute", "--model", str(run_dir), "--attribute", "trouser", "--limit", "500"]
    assert cli.main(argv + ["--out", str(vector_path)]) == 0
    assert "Trouser: " in capsys.readouterr().err
    vector = np.load(vector_path)
    model = keras.models.load_model(run_dir / "model.keras")
    images, labels = datasets.load("fashion_mnist", "test")
    expected = generation.attribute_vector(
        generation.Codec(model).encode(images[:500]), labels[:500] == 1
    )
    np.testing.assert_allclose(vector, expected, rtol=1e-5)

    out = tmp_path / "edit.png"
    argv = ["edit", "--model", str(run_dir), "--indices", "0", "5", "--vector", str(vector_path)]
    assert cli.main(argv + ["--alphas", "0", "1", "2", "--out", str(out)]) == 0
    grid = png(out)
    assert grid.shape[0] > 2 * TILE and grid.shape[1] > 4 * TILE
    on_the_fly = tmp_path / "edit2.png"
    argv = ["edit", "--model", str(run_dir), "--indices", "0", "5", "--attribute", "Trouser"]
    argv += ["--limit", "500", "--alphas", "0", "1", "2", "--out", str(on_the_fly)]
    assert cli.main(argv) == 0
    np.testing.assert_array_equal(png(on_the_fly), grid)


def test_average_decodes_group_means(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "average.png"
    code, _, stderr = call_main(
        cli.main, ["average", "--model", run_dir, "--attribute", "Trouser", "Bag", "--out", out]
    )
    assert code == 0, stderr
    grid = png(out)
    assert grid.shape[0] > 2 * TILE and grid.shape[1] > 2 * TILE
    everything = tmp_path / "all.png"
    assert cli.main(["average", "--model", str(run_dir), "--out", str(everything)]) == 0
    assert png(everything).shape[1] > 10 * TILE  # one column per class


@pytest.mark.parametrize(
    "argv, message",
    [
        (["average", "--attribute", "hat"], "Unknown attribute 'hat'. Valid attributes:"),
        (["interpolate", "--indices", "1", "2", "3"], "Give pairs of endpoints: got 3"),
        (["edit", "--indices", "99999", "--attribute", "Bag"], "Index 99999 is out of range"),
        (["interpolate", "--images", "nothing.png", "x.png"], "Image not found: nothing.png"),
        (
            ["attribute", "--attribute", "Bag", "--dataset", "celeba", "--data-dir", "/nowhere"],
            "CelebA directory not found",
        ),
    ],
)
def test_errors_are_one_line_with_exit_status_2(trained_run, capsys, argv, message):
    run_dir, _ = trained_run
    assert cli.main([argv[0], "--model", str(run_dir), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and f"keras-vae {argv[0]}: error:" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_model_is_an_error(tmp_path):
    code, _, stderr = call_main(cli.main, ["generate", "--model", tmp_path / "none"])
    assert code == 2 and "No model at" in stderr and "Traceback" not in stderr


def test_truncated_or_corrupted_png_is_a_one_line_error(trained_run, tmp_path):
    run_dir, _ = trained_run
    good = tmp_path / "good.png"
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(good)  # noise: the pixel data fills most of the file
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    corrupted = tmp_path / "corrupted.png"
    corrupted.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    for bad in (truncated, corrupted):
        code, _, stderr = call_main(
            cli.main,
            ["interpolate", "--model", run_dir, "--images", good, bad, "--out", tmp_path / "x.png"],
        )
        assert code == 2, stderr
        assert f"keras-vae interpolate: error: {bad}: not a readable PNG/JPEG image" in stderr
        assert "Traceback" not in stderr
    assert not (tmp_path / "x.png").exists()


def test_export_is_a_keras_vae_command_and_the_base_install_can_run_it(trained_run, tmp_path):
    # `keras-vae export` for installed users; LiteRT in install_requires.
    run_dir, _ = trained_run
    out = tmp_path / "gen"
    code, stdout, err = call_main(
        cli.main, ["export", "--model", run_dir, "--out", out, "--variants", "float32"]
    )
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == str(out)
    assert (out / "generator_float32.tflite").exists()
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO_ROOT, "setup.cfg"))
    assert "ai-edge-litert" in setup["options"]["install_requires"].split()


def test_output_names_are_what_gets_written(trained_run, tmp_path):
    # The printed path is the file, PNG commands write .png, parents are made.
    run_dir, _ = trained_run
    argv = ["attribute", "--model", run_dir, "--attribute", "Bag", "--limit", "200"]
    code, stdout, err = call_main(cli.main, argv + ["--out", tmp_path / "new" / "bag"])
    assert code == 0, err
    assert stdout.strip() == str(tmp_path / "new" / "bag.npy")
    assert np.load(stdout.strip()).shape == (2,)
    for directory in (f"{tmp_path / 'other'}{os.sep}", tmp_path / "new"):
        code, _, err = call_main(cli.main, argv + ["--out", directory])
        assert code == 2 and f"--out {directory} is a directory; give a file name such as" in err
    assert sorted(os.listdir(tmp_path / "new")) == ["bag.npy"] and not (tmp_path / "other").exists()
    code, _, err = call_main(
        cli.main, ["generate", "--model", run_dir, "--out", tmp_path / "x.jpg"]
    )
    assert code == 2 and "writes a PNG image; name the file .png" in err
    assert not (tmp_path / "x.jpg").exists()


def test_unusable_paths_are_one_line_errors_naming_them(trained_run, tmp_path):
    # No tracebacks, and never a temporary file's name.
    run_dir, _ = trained_run
    folder = tmp_path / "existdir.png"
    folder.mkdir()
    code, _, err = call_main(cli.main, ["generate", "--model", run_dir, "--out", folder])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{folder} is a directory" in err and ".tmp-" not in err
    (tmp_path / "file").write_text("not a directory")
    code, _, err = call_main(
        cli.main, ["export", "--model", run_dir, "--out", tmp_path / "file" / "gen"]
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(tmp_path / "file") in err
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((run_dir / "model.keras").read_bytes()[:1000])
    code, _, err = call_main(cli.main, ["generate", "--model", truncated])
    assert code == 2 and "is not a .keras file (not a zip archive)" in err
    assert "File not found" not in err


def small_vae_file(tmp_path, image_shape=(28, 28, 1)):
    """A bare .keras file of an untrained tiny VAE: no run dir, no config.json."""
    path = tmp_path / f"vae_{image_shape[0]}.keras"
    VAE(image_shape=image_shape, seed=0, **TINY).save(path)
    return path


def test_generate_upscales_small_tiles_like_the_labelled_grids(tmp_path):
    model = small_vae_file(tmp_path, (8, 8, 1))
    out = tmp_path / "generated.png"
    code, _, err = call_main(
        cli.main, ["generate", "--model", model, "--n", 4, "--cols", 2, "--out", out]
    )
    assert code == 0, err
    grid = png(out)
    assert grid.shape == (8 * (2 * 9 + 1), 8 * (2 * 9 + 1))  # 8x8 tiles and padding at scale 8
    tile = grid[8:72, 8:72]
    np.testing.assert_array_equal(tile, np.repeat(np.repeat(tile[::8, ::8], 8, 0), 8, 1))
    assert tile.std() > 0


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["generate", "--n", 1_000_000_000], "pass a smaller --n or --cols"),
        (["generate", "--cols", 100_000_000], "pass a smaller --n or --cols"),
        (
            ["interpolate", "--indices", 0, 1, "--steps", 100_000_000],
            "pass a smaller --steps or fewer pairs",
        ),
        (
            ["edit", "--indices", 0, "--vector", "unread.npy", "--alphas", *[1] * 30_000],
            "pass fewer inputs or --alphas",
        ),
    ],
)
def test_grids_over_the_size_limit_are_refused_before_any_work(trained_run, tmp_path, argv, hint):
    run_dir, _ = trained_run
    out = tmp_path / "grid.png"
    tracemalloc.start()
    try:
        code, _, err = call_main(cli.main, [argv[0], "--model", run_dir, *argv[1:], "--out", out])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "megapixels); the limit is 25 megapixels: " + hint in err
    assert peak < 2**27  # nothing of the grid's size was allocated
    assert not out.exists()


@pytest.mark.parametrize("limit", ["-5", "0"])
def test_a_limit_below_one_is_refused_by_the_parser(trained_run, limit):
    run_dir, _ = trained_run
    argv = ["attribute", "--model", run_dir, "--attribute", "Bag", "--limit", limit]
    code, _, err = call_main(cli.main, argv)
    assert code == 2 and f"argument --limit: must be >= 1; got {limit}" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--seed", "-1"], "argument --seed: must be >= 0; got -1"),
        (["fit-prior", "--seed", "x"], "argument --seed: expected an integer >= 0; got 'x'"),
        (
            ["edit", "--indices", "1", "--vector", "v.npy", "--alphas", "0", "nan"],
            "argument --alphas: expected a finite number; got 'nan'",
        ),
    ],
)
def test_a_seed_or_strength_out_of_range_is_named_by_the_parser(argv, message):
    code, _, err = call_main(cli.main, [argv[0], "--model", "runs/unread", *argv[1:]])
    assert code == 2 and message in err


def test_a_preview_not_named_png_is_refused_before_exporting(trained_run, tmp_path):
    run_dir, _ = trained_run
    argv = ["export", "--model", run_dir, "--out", tmp_path / "gen", "--variants", "float32"]
    code, _, err = call_main(cli.main, [*argv, "--preview", tmp_path / "prev.jpg"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--preview" in err and "name the file .png" in err
    assert not (tmp_path / "gen").exists() and not (tmp_path / "prev.jpg").exists()


def test_edit_takes_only_finite_npy_vectors_of_the_model(trained_run, tmp_path):
    run_dir, _ = trained_run  # a 2-D latent space
    files = {
        "infinite.npy": "holds NaN or infinite values",
        "wide.npy": "holds a float32 array of shape (3,); this model needs 2 numbers",
        "objects.npy": "holds a object array of shape (2,)",
        "text.npy": "is not a .npy file written by `keras-vae attribute`",
        "pair.npz": "is not a .npy file written by `keras-vae attribute`",
    }
    np.save(tmp_path / "infinite.npy", np.full(2, np.inf, np.float32))
    np.save(tmp_path / "wide.npy", np.zeros(3, np.float32))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("0.5 0.5\n")
    np.savez(tmp_path / "pair.npz", vector=np.zeros(2, np.float32))
    out = tmp_path / "edit.png"
    for name, message in files.items():
        argv = ["edit", "--model", run_dir, "--indices", 0, "--vector", tmp_path / name]
        code, _, err = call_main(cli.main, [*argv, "--out", out])
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"--vector {tmp_path / name} " in err and message in err, err
    assert not out.exists()


def test_a_bare_keras_file_needs_dataset_and_fit_prior_says_which_data(tmp_path):
    model = small_vae_file(tmp_path)
    for argv in (["fit-prior"], ["interpolate", "--indices", 0, 1, "--out", tmp_path / "i.png"]):
        code, _, err = call_main(cli.main, [argv[0], "--model", model, *argv[1:]])
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "without a run dir's config.json" in err and "pass --dataset" in err
    argv = ["fit-prior", "--model", model, "--dataset", "fashion_mnist", "--limit", 300]
    code, _, err = call_main(cli.main, [*argv, "--components", 2])
    assert code == 0, err
    assert "fitting to the codes of fashion_mnist train: 300 images" in err
    assert keras.models.load_model(model).priors["gaussian"].info["codes"] == 300


def test_a_one_dimensional_latent_space_trains_fits_its_priors_and_generates(tmp_path):
    run_dir = tmp_path / "run"
    tiny = ["--epochs", 1, "--train-subset", 256, "--validation-size", 64, "--test-subset", 64]
    result = train_in_process(run_dir, "--latent-dim", 1, *map(str, tiny), *SMALL_EXPORT_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(run_dir / "model.keras")
    assert model.latent_dim == 1 and model.prior.kind == "gmm"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["prior"]["default"] == "gmm" and metrics["prior"]["fits"]["gmm"]["codes"] == 192
    generator = json.loads((run_dir / "export" / "generator.json").read_text())
    assert generator["latent_prior"]["latent_dim"] == 1
    code, _, err = call_main(cli.main, ["fit-prior", "--model", run_dir, "--components", 3])
    assert code == 0 and "gmm: 3 components" in err, err
    code, _, err = call_main(
        cli.main, ["generate", "--model", run_dir, "--n", 4, "--out", tmp_path / "g.png"]
    )
    assert code == 0, err


def test_a_run_dirs_model_file_is_the_run_dir(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run, ignore=shutil.ignore_patterns("export", "logs"))
    model = run / "model.keras"
    # fit-prior refits the run's own splits and records the prior in metrics.json.
    code, _, err = call_main(cli.main, ["fit-prior", "--model", model, "--prior", "gaussian"])
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["prior"]["default"] == "gaussian"
    # export writes RUN/export with the run's config.
    argv = ["export", "--model", model, "--variants", "float32", "--static-batch-sizes"]
    code, _, err = call_main(cli.main, argv)
    assert code == 0, err
    metadata = json.loads((run / "export" / "generator.json").read_text())
    assert metadata["dataset"] == "fashion_mnist"
    # A run dir without its config.json is named as such.
    (run / "config.json").unlink()
    code, _, err = call_main(cli.main, ["attribute", "--model", run, "--attribute", "Trouser"])
    assert code == 2
    assert f"{run} is a run dir without a config.json, so the dataset it was trained on" in err
