"""keras_vae: variational autoencoders for image generation, the Keras way.

Importing the package registers every serializable class (`VAE`,
`Autoencoder`, `Sampling`), so `keras.models.load_model` finds them. The
training callbacks load only when asked for (`keras_vae.KLWarmup`), so
exporting or using a saved model does not import the training machinery.
"""

from keras_vae.autoencoder import Autoencoder
from keras_vae.layers import Sampling
from keras_vae.model import VAE
from keras_vae.version import __version__

__all__ = ["Autoencoder", "KLWarmup", "Sampling", "VAE", "__version__"]


def __getattr__(name):
    if name == "KLWarmup":
        from keras_vae.callbacks import KLWarmup

        return KLWarmup
    raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
