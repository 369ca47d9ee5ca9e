"""The package's import graph: no cycles, lower layers import nothing above them.

Read from the source with `ast` (imports inside functions count too), so a
test fails as soon as an import goes the wrong way, whatever is installed.
"""

import ast
import os

from tests.testing import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "keras_vae")
# Modules that must import neither TensorFlow nor Keras, directly or through keras_vae.
NO_TENSORFLOW = {"names", "presets", "config", "version", "files", "datasets"}
# Each module may import only modules of its own layer or below.
LAYERS = [
    {"version", "names", "presets", "config", "files"},
    {"datasets", "losses", "layers", "networks", "distribute", "images", "pipeline"},
    {"base"},
    {"model", "autoencoder"},
    {"latent", "metrics", "export", "run_dir"},
    {"callbacks"},
    {"training", "cli", "__main__"},
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
            assert layer_of(target) <= layer_of(module), f"{module} imports {target}"


def test_configuration_and_datasets_do_not_import_tensorflow():
    graph = import_graph()
    for module, (imported, outer) in graph.items():
        if top(module) in NO_TENSORFLOW:
            assert not outer & {"tensorflow", "keras"}, (module, outer)
            assert all(top(target) in NO_TENSORFLOW for target in imported), (module, imported)


def test_export_needs_no_training_machinery():
    imported, _ = import_graph()["export"]
    assert not {top(target) for target in imported} & {"callbacks", "training", "datasets"}
