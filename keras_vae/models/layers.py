"""Keras layers of keras_vae."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws z from N(mean, exp(log_var)) with the reparameterization trick.

    z = mean + exp(0.5 * log_var) * eps, eps ~ N(0, I), so gradients reach both
    `mean` and `log_var`.

    Args:
        seed: optional int; seeds the layer's `keras.random.SeedGenerator` so a
            fresh layer draws the same sequence of eps.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`...).

    Call arguments:
        inputs: a pair `(mean, log_var)`, both float tensors of shape
            `[batch, latent_dim]`.

    Example:
    >>> z = Sampling(seed=0)((np.zeros((4, 2)), np.zeros((4, 2))))
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # No weights to make: built from the start (as Keras's Dropout is), so that
        # fit under a distribution strategy never calls the model to build it.
        self.built = True

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
