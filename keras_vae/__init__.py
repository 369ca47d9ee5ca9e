"""keras_vae: variational autoencoders for image generation, the Keras way.

The public classes and the submodules load on first use (`keras_vae.VAE`,
`from keras_vae import VAE`, `keras_vae.latent.fit_priors`), so `import
keras_vae.config` and the command-line tools' `--help` do not load
TensorFlow. Loading a class registers the serializable ones (`VAE`,
`Autoencoder`, `Sampling`, and `FusedAdam`, the optimizer that train.py
saves in model.keras) with Keras, so `keras.models.load_model` finds them;
when Keras is already imported, importing keras_vae registers them at once
(it costs nothing more then).
"""

import functools
import importlib
import pkgutil
import sys

from keras_vae.version import __version__

_PUBLIC = {
    "VAE": "keras_vae.model",
    "Autoencoder": "keras_vae.autoencoder",
    "Sampling": "keras_vae.layers",
    "KLWarmup": "keras_vae.callbacks",
    "FusedAdam": "keras_vae.optimizers",
}

__all__ = ["Autoencoder", "FusedAdam", "KLWarmup", "Sampling", "VAE", "__version__"]


def register_serializable_classes():
    """Imports the modules of every serializable class, which registers them with Keras."""
    for name in ("VAE", "Autoencoder", "Sampling", "FusedAdam"):
        importlib.import_module(_PUBLIC[name])


@functools.cache
def _submodules():
    """The package's modules and subpackages (not __main__, nor its folders of page assets)."""
    return {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def __getattr__(name):
    if name in _PUBLIC:
        register_serializable_classes()
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _submodules():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__, *_submodules()})


if "keras" in sys.modules:
    register_serializable_classes()
