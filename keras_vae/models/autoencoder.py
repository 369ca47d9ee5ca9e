"""The deterministic autoencoder: the VAE's baseline."""

import keras
import tensorflow as tf
from keras import ops

from keras_vae.models import losses, networks, replicas
from keras_vae.models.latent_image_model import LatentImageModel


@keras.saving.register_keras_serializable(package="keras_vae")
class Autoencoder(LatentImageModel):
    """Deterministic autoencoder: the VAE's networks without sampling or KL.

    The baseline that shows what the VAE's prior buys. The encoder is the
    VAE's encoder up to its `mean` head (the code z); the decoder is the VAE's
    decoder; the loss is the Bernoulli reconstruction NLL in nats per image
    (sigmoid cross-entropy on the decoder's logits, summed over pixels, mean
    over the batch). Nothing ties the codes to N(0, I).

    Args:
        image_shape, latent_dim, preset, conv_filters, encoder_units,
        decoder_units: as for `keras_vae.VAE`.
        **kwargs: standard `keras.Model` arguments (`name`...).

    Call arguments:
        images: float `[batch, H, W, C]` in [0, 1].

    Example:
    >>> ae = Autoencoder(image_shape=(28, 28, 1), preset="default")
    >>> ae.compile(optimizer="adam")
    >>> ae.fit(x_train, epochs=5, batch_size=128)
    >>> codes = ae.encode(x_test)  # [N, latent_dim]
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def build_encoder(self):
        """images -> codes: the VAE's encoder up to its `mean` head."""
        vae_encoder = networks.build_encoder(self.image_shape, self.architecture)
        return keras.Model(vae_encoder.input, vae_encoder.get_layer("mean").output, name="encoder")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def encode(self, images, training=False):
        """Codes float32 `[batch, latent_dim]`."""
        images = ops.convert_to_tensor(images, dtype=self.compute_dtype)
        self.check_images(images)
        return ops.cast(self.encoder(images, training=training), "float32")

    def codes(self, images):
        """The latent code of each image: float32 `[batch, latent_dim]`."""
        return self.encode(images)

    def call(self, images, training=False):
        return self.decode(self.encode(images, training=training))

    def reconstruction_loss(self, images, training=False):
        """Bernoulli NLL of the reconstructions, nats per image, `[batch]`."""
        logits = self.decoder_logits(self.encode(images, training=training), training=training)
        return losses.bernoulli_nll(ops.cast(images, "float32"), logits)

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss = ops.mean(self.reconstruction_loss(images, training=True))
            scaled_loss = self.optimizer.scale_loss(replicas.per_replica(loss))
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self.record(loss)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.record(ops.mean(self.reconstruction_loss(images)))

    def record(self, loss):
        """Updates the loss tracker; returns the step's logs."""
        self.loss_tracker.update_state(loss)
        return replicas.step_logs({"loss": self.loss_tracker.result()})
