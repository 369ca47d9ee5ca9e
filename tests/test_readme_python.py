"""README's "Use it from Python" example, run as a user runs it: in a fresh process."""

import json
import os
import re
import subprocess
import sys

from tests.testing import REPO_ROOT


def readme_python_example():
    """The first ```python block of README's "Use it from Python" section."""
    with open(os.path.join(REPO_ROOT, "README.md")) as f:
        readme = f.read()
    section = readme.split("\n## Use it from Python\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def substitute(code, old, new):
    """`code` with `old` replaced once; fails if README no longer holds `old`."""
    assert code.count(old) == 1, f"README's example no longer holds {old!r}"
    return code.replace(old, new)


def test_the_python_example_runs_in_a_fresh_process(tmp_path):
    code = readme_python_example()
    # The same code on a few images for one epoch.
    test_split = 'x_test, _ = datasets.load("fashion_mnist", "test")\n'
    code = substitute(
        code, test_split, test_split + "x_train, x_test = x_train[:512], x_test[:128]\n"
    )
    code = substitute(code, "vae.fit(epochs=10,", "vae.fit(epochs=1, verbose=0,")
    code += (
        "import json\n"
        'loaded = keras.models.load_model("vae.keras")\n'
        'print(json.dumps({"prior": loaded.prior.kind, "components": loaded.prior.components,'
        ' "images": list(images.shape), "logs": sorted(__import__("os").listdir("logs"))}))\n'
    )
    # A fresh process imports only `keras_vae` (the example's own imports), as a user's does.
    environment = {**os.environ, "PYTHONPATH": REPO_ROOT}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["prior"] == "gmm" and facts["components"] >= 1
    assert facts["images"] == [16, 28, 28, 1]
    assert facts["logs"] == ["train", "validation"]


def test_submodules_load_on_first_attribute_access_and_only_then():
    code = (
        "import sys, keras_vae\n"
        "assert keras_vae.priors.fit_gmm and keras_vae.config.TrainingConfig\n"
        "assert keras_vae.datasets.load and keras_vae.names.PRIORS\n"
        "light = 'tensorflow' in sys.modules\n"
        "assert 'latent' in dir(keras_vae) and 'page' not in dir(keras_vae)\n"
        "assert keras_vae.latent.fit_priors and keras_vae.export.export_generator\n"
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
