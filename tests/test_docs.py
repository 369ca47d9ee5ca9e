"""Every Python and shell block of README.md and docs/*.md runs as a user would paste it.

A fenced block tagged ```python runs as a script (`exec` in a fresh namespace), one
tagged ```sh line by line, each line a `keras-vae`, `python train.py` or `python -m
export` command whose `main` gets the line's words (`~` expanded, comments dropped);
a line that is more than such a command sends the whole block to bash (`set -e`:
every line must succeed). Both run in this process, so a block costs its own work,
not a TensorFlow import per command; the console script itself and a fresh
process's `import keras_vae` are run by test_cli.py and below. The working directory
is a new temporary folder that holds what the docs assume: a trained run in
runs/fashion_mnist-default (made by train.py's `main` with the tiny settings below),
train.py, shoe.png and boot.jpg, MNIST's IDX files in ~/mnist and a folder of
colour pictures with classes and attributes.csv in ~/pictures (HOME is that
folder). Blocks that are output, trees or prose are tagged ```text; an untagged
block fails `test_every_block_says_whether_it_runs`.

Where a block trains, TINY_PYTHON / TINY_SHELL shrink it (fewer images and epochs);
the code that runs is otherwise the block's own code.
"""

import contextlib
import glob
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.testing import REPO_ROOT, assert_unchanged, built_once, call_main, write_idx

RUNNABLE = ("python", "sh")
NOT_RUN = ("text",)

# Blocks that need another machine, a long run or a server that runs until Ctrl-C:
# (file, the start of the block's first line) -> the reason.
SKIPPED = {
    ("README.md", "make train    # creates .venv"): (
        "make train is a 3-minute run (train.py's tests run its path), make web a server "
        "until Ctrl-C, make test this suite itself"
    ),
    ("docs/distributed.md", "# on host1"): (
        "two hosts (test_distribute.py runs two workers on 127.0.0.1)"
    ),
    ("docs/explorer.md", "make train "): (
        "make train is a 3-minute run, make web a server until Ctrl-C (the keras-vae web "
        "block of the same page runs)"
    ),
    ("docs/explorer.md", "npm install --prefix"): "downloads from the npm registry",
    ("docs/data.md", "make emoji"): (
        "downloads 150 MB from the npm registry (test_emoji_folder.py builds the folder from "
        "packages of the same layout)"
    ),
    ("docs/latent.md", "keras-vae average     --model runs/celeba"): (
        "needs a model trained on CelebA and CelebA's files (test_celeba.py covers the loader)"
    ),
    ("docs/tensorboard.md", "tensorboard --logdir"): (
        "a server until Ctrl-C (test_cli.py starts tensorboard on a run dir)"
    ),
    ("docs/benchmarks.md", "make bench "): "70 minutes; benchmarks have their own tests",
    ("docs/testing.md", "make test "): "this suite itself",
    ("docs/testing.md", ".venv/bin/python -m pytest -n auto -p tests.suite_profile"): (
        "this suite itself, profiled"
    ),
}


def skip_reason(path, code):
    reasons = [r for (p, start), r in SKIPPED.items() if p == path and code.startswith(start)]
    return reasons[0] if reasons else None


# train.py's flags of a tiny run: what every `python train.py` in a shell block gets
# first (a flag the block gives itself comes later and wins).
# The export: float32 files only, the static one at batch 16 (what keras-vae web serves).
TINY_TRAIN = (
    "--epochs 1 --train-subset 1024 --validation-size 128 --test-subset 128 "
    "--export-variants float32 --export-static-batch-sizes 16"
)
# (old, new): applied wherever `old` occurs; each must occur in some block.
TINY_SHELL = [
    ("python train.py", f"python train.py {TINY_TRAIN}"),
    ("keras-vae train --dataset", f"keras-vae train {TINY_TRAIN} --dataset"),
    ("--epochs 30", "--epochs 1"),
    ("--kl-warmup-epochs 5", "--kl-warmup-epochs 1"),
    ("--image-size 64", "--image-size 32"),
]
TINY_PYTHON = [
    (
        'x_test, _ = datasets.load("fashion_mnist", "test")\n',
        'x_test, _ = datasets.load("fashion_mnist", "test")\n'
        "x_train, x_test = x_train[:512], x_test[:128]\n",
    ),
    ("vae.fit(epochs=10,", "vae.fit(epochs=1, verbose=0,"),
    ("x_train[5000:], x_train[:5000]", "x_train[128:640], x_train[:128]"),
    (
        'x_train, y_train = datasets.load("fashion_mnist", "train")  # labels: int [60000]\n',
        'x_train, y_train = datasets.load("fashion_mnist", "train")  # labels: int [60000]\n'
        "x_train, y_train = x_train[:1024], y_train[:1024]\n",
    ),
    ("cvae.fit(x_train, y_train, epochs=10,", "cvae.fit(x_train, y_train, epochs=1, verbose=0,"),
    (
        'export.export_generator(cvae, "cvae_generator", overwrite=True)',
        'export.export_generator(cvae, "cvae_generator", overwrite=True, variants=["float32"], '
        "static_batch_sizes=[16])",
    ),
]

# What a block's run must also show: code run after the block (Python) and the
# facts its last printed line must hold.
README_CHECK = (
    "import json, os\n"
    'loaded = keras.models.load_model("vae.keras")\n'
    'print(json.dumps({"prior": loaded.prior.kind, "components": loaded.prior.components,'
    ' "images": list(images.shape), "logs": sorted(os.listdir("logs"))}))\n'
)


def documents():
    paths = ["README.md"] + sorted(
        os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md"))
    )
    return paths


def blocks():
    """(file, line, tag, code) of every fenced block of README.md and docs/*.md."""
    found = []
    for path in documents():
        with open(os.path.join(REPO_ROOT, path)) as f:
            text = f.read()
        for match in re.finditer(r"^```(\S*)\n(.*?)^```$", text, re.DOTALL | re.MULTILINE):
            line = text.count("\n", 0, match.start()) + 1
            found.append((path, line, match.group(1), match.group(2)))
    return found


def runnable_blocks():
    params = []
    for path, line, tag, code in blocks():
        if tag not in RUNNABLE:
            continue
        reason = skip_reason(path, code)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(path, tag, code, id=f"{path}:{line}", marks=marks))
    return params


def shrink(code, replacements):
    for old, new in replacements:
        code = code.replace(old, new)
    return code


def environment(home):
    bin_dir = os.path.dirname(sys.executable)  # the venv's python and keras-vae
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": REPO_ROOT,
        "HOME": str(home),
    }


def command_mains():
    """The commands a shell block may hold -> the `main` each one runs."""
    import train
    from export import __main__ as export_main
    from keras_vae import cli

    return {
        ("keras-vae",): cli.main,
        ("python", "-m", "keras_vae"): cli.main,
        ("python", "train.py"): train.main,
        ("python", "-m", "export"): export_main.main,
    }


def shell_commands(code, home):
    """A shell block as [(main, argv)], or None where a line is more than one such command."""
    mains = command_mains()
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        if re.search(r"[|&;<>$`(){}*?]|\\", line.split("#")[0]):
            return None
        words = shlex.split(line, comments=True)
        if not words:
            continue
        words = [os.path.join(home, w[2:]) if w.startswith("~/") else w for w in words]
        found = [prefix for prefix in mains if tuple(words[: len(prefix)]) == prefix]
        if not found:
            return None
        commands.append((mains[found[0]], words[len(found[0]) :]))
    return commands


@contextlib.contextmanager
def inside(folder):
    """The working directory and HOME of a user in `folder`, for code run in this process."""
    cwd, home = os.getcwd(), os.environ.get("HOME")
    os.chdir(folder)
    os.environ["HOME"] = str(folder)
    try:
        yield
    finally:
        os.chdir(cwd)
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home


def run_block(tag, code, cwd):
    """Runs a block in `cwd`: (exit code, stdout, stderr)."""
    if tag == "python":
        out, err = io.StringIO(), io.StringIO()
        with inside(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(code, "<block>", "exec"), {"__name__": "__main__"})
        return 0, out.getvalue(), err.getvalue()
    commands = shell_commands(code, str(cwd))
    if commands is None:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=environment(cwd),
            timeout=600,
        )
        return result.returncode, result.stdout, result.stderr
    status, printed, logged = 0, [], []
    with inside(cwd):
        for main, argv in commands:  # as `set -e`: the first failing command ends the block
            status, out, err = call_main(main, argv)
            printed.append(out)
            logged.append(err)
            if status:
                break
    return status or 0, "".join(printed), "".join(logged)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """runs/fashion_mnist-default as `make train` makes it, with the tiny settings (shared)."""

    def build(folder):
        command = "python train.py --run-dir runs/fashion_mnist-default --verbose 0"
        code, _, err = run_block("sh", shrink(command, TINY_SHELL[:1]), folder)
        assert code == 0, err[-3000:]

    folder, _, digest = built_once(tmp_path_factory, "docs_run", build)
    yield folder / "runs" / "fashion_mnist-default"
    assert_unchanged(folder, digest)


def write_pictures(root, per_class=60):
    """root/cats/ and root/dogs/: 64x64 colour pictures, and attributes.csv with `smiling`."""
    rng = np.random.default_rng(0)
    rows = ["file,smiling"]
    for name, colour in (("cats", (200, 120, 40)), ("dogs", (60, 90, 200))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((64, 64, 3), colour, np.uint8)
            top, left = rng.integers(0, 40, 2)
            pixels[top : top + 24, left : left + 24] = rng.integers(0, 256, 3)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
            rows.append(f"{name}/{i}.png,{int(rng.random() < 0.5)}")
    (root / "attributes.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def workdir(tmp_path, tiny_run):
    """A folder with what the docs' blocks assume is there."""
    shutil.copytree(tiny_run, tmp_path / "runs" / "fashion_mnist-default", symlinks=True)
    os.symlink(os.path.join(REPO_ROOT, "train.py"), tmp_path / "train.py")
    from keras_vae import datasets

    images, labels = datasets.load("fashion_mnist", "test")
    pixels = (images[..., 0] * 255).round().astype(np.uint8)
    Image.fromarray(pixels[int(np.argmax(labels == 5))]).save(tmp_path / "shoe.png")  # sandal
    Image.fromarray(pixels[int(np.argmax(labels == 9))]).save(tmp_path / "boot.jpg")  # ankle boot
    write_pictures(tmp_path / "pictures")  # ~/pictures
    mnist = tmp_path / "mnist"  # ~/mnist
    mnist.mkdir()
    rng = np.random.default_rng(0)
    for split, count in (("train", 600), ("test", 150)):
        image_stem, label_stem = datasets.IDX_FILES[split]
        write_idx(mnist / f"{image_stem}.gz", rng.integers(0, 256, (count, 28, 28), np.uint8))
        write_idx(mnist / f"{label_stem}.gz", rng.integers(0, 10, count).astype(np.uint8))
    return tmp_path


@pytest.mark.parametrize("path, tag, code", runnable_blocks())
def test_the_block_runs(path, tag, code, workdir):
    code = shrink(code, TINY_PYTHON if tag == "python" else TINY_SHELL)
    is_readme_example = path == "README.md" and tag == "python"
    if is_readme_example:
        code += README_CHECK
    returncode, out, err = run_block(tag, code, workdir)
    assert returncode == 0, f"{path}:\n{code}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    if is_readme_example:
        facts = json.loads(out.strip().splitlines()[-1])
        assert facts["prior"] == "gmm" and facts["components"] >= 1
        assert facts["images"] == [16, 28, 28, 1]
        assert facts["logs"] == ["train", "validation"]


def test_a_failing_line_fails_its_block_and_shell_syntax_goes_to_bash(tmp_path):
    missing = "keras-vae generate --model runs/missing --out a.png"
    code, out, err = run_block("sh", f"{missing}\nkeras-vae train --help", tmp_path)
    assert code == 2 and "runs/missing" in err and "usage" not in out  # the help never ran
    assert shell_commands("keras-vae train --help | head -1", str(tmp_path)) is None
    assert shell_commands("ls ~/pictures", str(tmp_path)) is None  # not a keras_vae command
    ((main, argv),) = shell_commands("python train.py --data-dir ~/mnist  # IDX", "/home/u")
    assert main.__module__ == "train" and argv == ["--data-dir", "/home/u/mnist"]
    code, out, _ = run_block("sh", "echo $((6 * 7)) | tr 4 x", tmp_path)
    assert (code, out) == (0, "x2\n")


def test_every_block_says_whether_it_runs():
    untagged = [
        f"{path}:{line}" for path, line, tag, _ in blocks() if tag not in RUNNABLE + NOT_RUN
    ]
    assert not untagged, f"tag these blocks ```python, ```sh or ```text: {untagged}"


def test_every_skip_and_replacement_still_matches_a_block():
    runnable = [(path, tag, code) for path, _, tag, code in blocks() if tag in RUNNABLE]
    for path, start in SKIPPED:
        matches = [code for p, _, code in runnable if p == path and code.startswith(start)]
        assert len(matches) == 1, f"SKIPPED[{path!r}, {start!r}] matches {len(matches)} blocks"
    for tag, table in (("python", TINY_PYTHON), ("sh", TINY_SHELL)):
        for old, _ in table:
            assert any(old in code for _, t, code in runnable if t == tag), f"unused: {old!r}"


def test_the_readme_is_short_and_keeps_its_commands():
    with open(os.path.join(REPO_ROOT, "README.md")) as f:
        readme = f.read()
    assert len(readme.splitlines()) <= 250
    assert "make test     # installs what the tests need" in readme
    for path in documents()[1:]:
        assert f"({path})" in readme, f"README does not link {path}"


def test_every_picture_in_docs_is_shown_and_every_link_resolves():
    shown = set()
    for path in documents():
        with open(os.path.join(REPO_ROOT, path)) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            resolved = os.path.normpath(os.path.join(REPO_ROOT, os.path.dirname(path), target))
            assert os.path.exists(resolved), f"{path} links {target}, which does not exist"
            shown.add(resolved)
    pictures = set(glob.glob(os.path.join(REPO_ROOT, "docs", "*.png")))
    assert not pictures - shown, f"pictures no page shows: {sorted(pictures - shown)}"


def test_submodules_load_on_first_attribute_access_and_only_then():
    # README's example reaches keras_vae.generation after a bare `import keras_vae`.
    code = (
        "import sys, keras_vae\n"
        "assert keras_vae.models.priors.fit_gmm and keras_vae.training.config.TrainingConfig\n"
        "assert keras_vae.datasets.load and keras_vae.utils.names.PRIORS\n"
        "light = 'tensorflow' in sys.modules\n"
        "assert 'generation' in dir(keras_vae) and 'page' not in dir(keras_vae)\n"
        "assert 'priors' in dir(keras_vae.models) and 'VAE' in dir(keras_vae.models)\n"
        "assert keras_vae.generation.fit_priors and keras_vae.export.generator.export_generator\n"
        "for missing in ('page', 'nothing', '__main__'):\n"
        "    assert not hasattr(keras_vae, missing), missing\n"
        "print(light, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "True"]
