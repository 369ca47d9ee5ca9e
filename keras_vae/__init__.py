"""keras_vae: variational autoencoders for image generation, the Keras way.

The public classes load on first use (`keras_vae.VAE`, `from keras_vae import
VAE`), so `import keras_vae.config` and the command-line tools' `--help` do not
load TensorFlow. Loading a class registers the serializable ones (`VAE`,
`Autoencoder`, `Sampling`, and `FusedAdam`, the optimizer that train.py
saves in model.keras) with Keras, so `keras.models.load_model` finds them;
when Keras is already imported, importing keras_vae registers them at once
(it costs nothing more then).
"""

import importlib
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


def __getattr__(name):
    if name in _PUBLIC:
        register_serializable_classes()
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")


if "keras" in sys.modules:
    register_serializable_classes()
