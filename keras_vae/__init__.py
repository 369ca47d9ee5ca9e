"""keras_vae: variational autoencoders for image generation, the Keras way.

Packages, each importing only those listed before it:
`utils` (names, atomic files, image grids), `models` (`VAE`,
`Autoencoder` and their parts), `datasets` (arrays and `tf.data`
pipelines), `generation` (latent toolkit, fitted priors), `export`
(SavedModel, LiteRT, the browser page), `training` (config, `fit`, the
run dir) and `cli` (`keras-vae`, train.py).

The public classes and the subpackages load on first use (`keras_vae.VAE`,
`from keras_vae import VAE`, `keras_vae.generation.fit_priors`), so
`import keras_vae` and the command-line tools' `--help` do not load
TensorFlow. Loading a class registers the serializable ones with Keras
(`keras_vae.models.register_serializable_classes`), so
`keras.models.load_model` finds them; when Keras is already imported,
importing keras_vae registers them at once (it costs nothing more then).
"""

import importlib
import sys

from keras_vae.utils import lazy
from keras_vae.version import __version__

_PUBLIC = {
    "VAE": "keras_vae.models",
    "ConditionalVAE": "keras_vae.models",
    "Autoencoder": "keras_vae.models",
    "Sampling": "keras_vae.models",
    "FusedAdam": "keras_vae.models",
    "KLWarmup": "keras_vae.training.callbacks",
}

__all__ = [
    "Autoencoder",
    "ConditionalVAE",
    "FusedAdam",
    "KLWarmup",
    "Sampling",
    "VAE",
    "__version__",
]


def register_serializable_classes():
    """Registers every serializable class with Keras (see `keras_vae.models`)."""
    importlib.import_module("keras_vae.models").register_serializable_classes()


_getattr, __dir__ = lazy.attributes(__name__, __path__, _PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        register_serializable_classes()
    return _getattr(name)


if "keras" in sys.modules:
    register_serializable_classes()
