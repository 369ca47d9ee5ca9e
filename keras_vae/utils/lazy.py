"""Package attributes that load on first use (PEP 562), so a package's `__init__` stays light.

Example (in a package's `__init__.py`):
>>> __getattr__, __dir__ = lazy.attributes(__name__, __path__, {"VAE": "keras_vae.models.vae"})
"""

import importlib
import pkgutil


def attributes(package, path, public=None):
    """`(__getattr__, __dir__)` for `package`: its `public` names and its submodules.

    Args:
        package: the package's `__name__`.
        path: its `__path__`, where its submodules are found.
        public: `{name: module}` of names a module of the package defines.
    """
    public = dict(public or {})
    submodules = {m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")}

    def __getattr__(name):
        if name in public:
            return getattr(importlib.import_module(public[name]), name)
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        module = importlib.import_module(package)
        return sorted({*vars(module), *public, *submodules})

    return __getattr__, __dir__
