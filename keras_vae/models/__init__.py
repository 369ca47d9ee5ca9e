"""The models: `VAE`, `ConditionalVAE`, `Autoencoder` and what they are built from.

`latent_image_model` (what both share: decoder, shape checks, priors),
`vae`, `conditional_vae` and `autoencoder` (the `keras.Model` subclasses
with their `train_step`), `layers` (`Sampling`), `networks` and `presets` (encoder and
decoder stacks), `losses` (the objective's terms), `priors` (latent priors,
NumPy only), `replicas` (a step under `tf.distribute`), `optimizers`
(`FusedAdam`) and `likelihood` (importance-weighted NLL).

Nothing here reads data, run settings or files of a run. The names load on
first use (`keras_vae.models.VAE`), so the NumPy-only modules (`presets`,
`priors`) stay free of TensorFlow; `register_serializable_classes` is the one
place that lists the classes Keras must find in a `.keras` file.
"""

import importlib

from keras_vae.utils import lazy

_PUBLIC = {
    "VAE": "keras_vae.models.vae",
    "ConditionalVAE": "keras_vae.models.conditional_vae",
    "Autoencoder": "keras_vae.models.autoencoder",
    "LatentImageModel": "keras_vae.models.latent_image_model",
    "Sampling": "keras_vae.models.layers",
    "FusedAdam": "keras_vae.models.optimizers",
}

# The classes that a .keras file of this package names (registered as "keras_vae>Name").
SERIALIZABLE = ("VAE", "ConditionalVAE", "Autoencoder", "Sampling", "FusedAdam")

__all__ = [*_PUBLIC, "register_serializable_classes"]


def register_serializable_classes():
    """Imports every serializable class, which registers it with Keras (`keras_vae>Name`).

    Call it before `keras.models.load_model` on a file this package wrote;
    `import keras_vae` does it whenever Keras is loaded.
    """
    for name in SERIALIZABLE:
        importlib.import_module(_PUBLIC[name])


__getattr__, __dir__ = lazy.attributes(__name__, __path__, _PUBLIC)
