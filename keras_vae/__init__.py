"""keras_vae: variational autoencoders for image generation, the Keras way."""

__version__ = "0.1.0"

from keras_vae.callbacks import KLWarmup  # noqa: E402
from keras_vae.layers import Sampling  # noqa: E402
from keras_vae.model import VAE, Autoencoder  # noqa: E402

__all__ = ["Autoencoder", "KLWarmup", "Sampling", "VAE", "__version__"]
