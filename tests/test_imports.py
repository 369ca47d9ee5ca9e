"""The package's import graph: no cycles, lower layers import nothing above them.

Read from the source with `ast` (imports inside functions count too), so a
test fails as soon as an import goes the wrong way, whatever is installed.
"""

import ast
import glob
import os
import subprocess
import sys
import time

import pytest

from tests.testing import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "keras_vae")
# Modules that must import neither TensorFlow nor Keras, directly or through keras_vae
# (a package's __init__ runs before its modules, so it counts as imported too).
NO_TENSORFLOW = {
    "version",
    "utils",
    "utils.names",
    "utils.atomic_files",
    "utils.images",
    "utils.lazy",
    "models",
    "models.presets",
    "models.priors",
    "datasets",
    "datasets.celeba",
    "datasets.folder",
    "datasets.checks",
    "datasets.errors",
    "datasets.idx",
    "datasets.mnist",
    "training",
    "training.config",
    "export",
    "export.explorer",
}
# The command-line tools import TensorFlow inside the commands that need it; that their
# `--help` loads none is checked in a fresh process below.
# Packages by layer: a module imports only its own package and the layers before its
# own; two packages of one layer import nothing from each other.
LAYERS = [
    {"version", "utils"},
    {"models", "datasets"},
    {"generation"},
    {"export"},
    {"training"},
    {"cli"},
    {"__main__"},
]


def module_name(path):
    relative = os.path.relpath(path, PACKAGE)[: -len(".py")].replace(os.sep, ".")
    return relative.removesuffix(".__init__") if relative != "__init__" else ""


def import_graph():
    """{module: (keras_vae modules it imports, other top-level packages it imports)}."""
    graph = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            module = module_name(path)
            inner, outer = set(), set()
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    targets = [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                for target in targets:
                    parts = target.split(".")
                    if parts[0] != "keras_vae":
                        outer.add(parts[0])
                    elif len(parts) > 1:
                        inner.add(_known(parts[1:], graph_modules()))
            graph[module] = (inner - {module, ""}, outer)
    return graph


def graph_modules():
    return {
        module_name(os.path.join(root, name))
        for root, _, files in os.walk(PACKAGE)
        for name in files
        if name.endswith(".py")
    }


def _known(parts, modules):
    """The longest module path among `parts` ("datasets.errors.DataError" -> "datasets.errors")."""
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return ""


def top(module):
    return module.split(".")[0]


def layer_of(module):
    return next(i for i, layer in enumerate(LAYERS) if top(module) in layer)


def test_there_is_no_import_cycle():
    graph = import_graph()
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(path + [module])
        state[module] = "open"
        for imported in graph.get(module, ((), ()))[0]:
            if not imported.startswith(module + ".") and imported != top(module):
                visit(imported, path + [module])
        state[module] = "done"

    for module in graph:
        if module:  # the package root imports its public API, by design
            visit(module, [])


def test_lower_layers_import_nothing_above_them():
    for module, (imported, _) in import_graph().items():
        if not module:
            continue
        for target in imported:
            if top(target) == top(module):
                continue
            assert layer_of(target) < layer_of(module), f"{module} imports {target}"


def test_the_models_import_no_data_configuration_or_training():
    for module, (imported, _) in import_graph().items():
        if top(module) == "models":
            assert {top(target) for target in imported} <= {"models", "utils"}, (module, imported)


def parents(module):
    """The packages whose __init__ runs before `module` ("models.priors" -> ["models"])."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def test_configuration_and_datasets_do_not_import_tensorflow():
    # tensorflow_datasets is allowed: the loaders import it inside the functions that
    # read from it, so TensorFlow loads only when a dataset comes from there.
    graph = import_graph()
    assert NO_TENSORFLOW <= set(graph), NO_TENSORFLOW - set(graph)
    for module in NO_TENSORFLOW:
        imported, outer = graph[module]
        assert not outer & {"tensorflow", "keras"}, (module, outer)
        for target in [*imported, *parents(module)]:
            assert target in NO_TENSORFLOW, (module, target)


def test_one_function_registers_every_serializable_class():
    from keras_vae import models

    registered = set()
    for module in graph_modules():
        path = os.path.join(PACKAGE, *module.split(".")) + ".py"
        if not os.path.exists(path):
            path = os.path.join(PACKAGE, *module.split("."), "__init__.py")
        source = open(path).read()
        assert "noqa: F401" not in source, f"{module} imports something only for its side effect"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and any(
                "register_keras_serializable" in ast.unparse(d) for d in node.decorator_list
            ):
                registered.add(node.name)
    assert registered == set(models.SERIALIZABLE)


def test_help_and_configuration_load_no_tensorflow_in_a_fresh_process():
    # `--help` answers at once, with no TensorFlow log lines.
    code = (
        "import sys, keras_vae.cli, keras_vae.training.config, train; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.stdout.split() == ["False", "False"], result.stderr
    script = os.path.join(os.path.dirname(sys.executable), "keras-vae")
    for command in ([sys.executable, "train.py", "--help"], [script, "export", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
        assert result.returncode == 0 and "usage:" in result.stdout, result.stderr
        assert result.stderr == "", result.stderr


def test_native_log_lines_are_held_back_and_the_rest_is_shown(capfd):
    from keras_vae.cli import native_logs

    with native_logs.filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are\n")
        os.write(2, b"I0000 00:00:1796153944.852073   31436 port.cc:153] oneDNN custom ops\n")
        os.write(2, b"W0000 00:00:1796153944.9   31436 flatbuffer_export.cc:1] converter\n")
        os.write(2, b"UserWarning: something a user should read\n")
    assert capfd.readouterr().err == "UserWarning: something a user should read\n"
    with pytest.raises(RuntimeError):
        with native_logs.filtered_stderr():
            os.write(2, b"I0000 00:00:1.0   1 port.cc:1] shown when the block fails\n")
            raise RuntimeError
    assert "shown when the block fails" in capfd.readouterr().err


def test_lines_are_forwarded_while_the_block_runs_and_none_is_lost(capfd):
    from keras_vae.cli import native_logs

    with native_logs.filtered_stderr():
        os.write(2, b"first line\n")
        deadline = time.monotonic() + 5
        seen = ""
        while "first line" not in seen and time.monotonic() < deadline:
            time.sleep(0.02)
            seen += capfd.readouterr().err
        assert "first line" in seen  # shown before the block ends
        lines = b"".join(b"line %06d %s\n" % (i, b"x" * 40) for i in range(20000))
        os.write(2, lines)  # about 1 MB, more than any one read
        os.write(2, b"no newline at the end")
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 20001 and err[-2].startswith("line 019999") and err[-1].endswith("end")


def test_a_fresh_process_loads_a_model_compiled_with_fused_adam(tmp_path):
    # train.py saves FusedAdam in model.keras; the CLI and `python -m export` load it
    # through run_dir in processes that imported keras_vae before Keras.
    from keras_vae import VAE, FusedAdam
    from tests.testing import TINY

    model = VAE(seed=0, **TINY)
    model.compile(optimizer=FusedAdam(1e-3))
    path = tmp_path / "m.keras"
    model.save(path)
    code = (
        "import sys; from keras_vae.training import run_dir; "
        "model, _ = run_dir.load_model(sys.argv[1]); print(type(model.optimizer).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "FusedAdam"


def test_no_function_of_the_command_line_is_over_60_lines():
    long = []
    for path in glob.glob(os.path.join(PACKAGE, "cli", "*.py")):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{os.path.basename(path)}:{node.name} ({lines} lines)")
    assert not long, long
