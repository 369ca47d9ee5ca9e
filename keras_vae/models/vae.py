"""The variational autoencoder, as a subclassed `keras.Model`."""

import math

import keras
import tensorflow as tf
from keras import ops

from keras_vae.models import losses, networks, replicas
from keras_vae.models.latent_image_model import LatentImageModel
from keras_vae.models.layers import Sampling
from keras_vae.utils import names

# log_var is clipped to this range: sigma^2 from 1e-13 to 5e8, so exp() can
# neither overflow nor underflow to a zero variance, in float32 or bfloat16.
LOG_VAR_RANGE = (-30.0, 20.0)


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(LatentImageModel):
    """Variational autoencoder trained on reconstruction NLL + beta * KL.

    The encoder maps an image to N(mean, exp(log_var)); `Sampling` draws
    z = mean + sigma * eps; the decoder maps z back to per-pixel logits. The
    loss of one image, in nats, is

        reconstruction_loss + beta * kl_loss
        = -log p(x | z) + beta * KL(N(mean, sigma^2) || N(0, I)),

    averaged over the batch; with beta = 1 it is the negative ELBO.

    Args:
        image_shape: `(height, width, channels)`.
        latent_dim: size of z; `None` takes the preset's.
        preset: one of `keras_vae.utils.names.PRESETS` ("conv", "default",
            "keras_example", "mlp"; see `keras_vae.models.presets`).
        conv_filters, encoder_units, decoder_units: override the preset's
            layer widths (tuples of ints); `None` keeps the preset's.
        likelihood: "bernoulli" (pixels in [0, 1], sigmoid cross-entropy on
            the decoder's logits) or "gaussian" (mean = sigmoid(logits)).
        gaussian_scale: the Gaussian likelihood's standard deviation: a
            positive float (fixed), or "learned" (one trainable scale shared
            by all pixels, starting at 0.1). Ignored for "bernoulli".
        beta: weight of the KL term, >= 0. The loss uses the non-trainable
            variable `kl_weight` (initialized to beta), which
            `keras_vae.training.callbacks.KLWarmup` ramps from 0 to beta; evaluation
            (`test_step`) always weighs the KL with beta.
        seed: seeds the `Sampling` layer.
        **kwargs: standard `keras.Model` arguments (`name`...).

    Call arguments:
        images: float `[batch, H, W, C]` in [0, 1].
        training: if True, decodes a sampled z; else the posterior mean.

    Example:
    >>> vae = VAE(image_shape=(28, 28, 1), preset="keras_example")
    >>> vae.compile(optimizer="adam")
    >>> vae.fit(x_train, epochs=5, batch_size=128, validation_data=(x_test,))
    >>> images = vae.sample(16, seed=0)
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=None,
        preset="default",
        conv_filters=None,
        encoder_units=None,
        decoder_units=None,
        likelihood="bernoulli",
        gaussian_scale="learned",
        beta=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            image_shape, latent_dim, preset, conv_filters, encoder_units, decoder_units, **kwargs
        )
        names.check_choice("likelihood", likelihood, names.LIKELIHOODS)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0; got {beta}.")
        names.check_gaussian_scale(gaussian_scale)
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale
        self.beta = float(beta)
        self.seed = seed

        self.sampling = Sampling(seed=seed, name="sampling")
        self.kl_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.beta),
            trainable=False,
            name="kl_weight",
        )
        self.log_scale = None
        if likelihood == "gaussian":
            learned = gaussian_scale == "learned"
            self.log_scale = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(
                    math.log(0.1 if learned else float(gaussian_scale))
                ),
                trainable=learned,
                name="log_scale",
            )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True

    def build_encoder(self):
        """images -> `[mean, log_var]` (see `keras_vae.models.networks.build_encoder`)."""
        return networks.build_encoder(self.image_shape, self.architecture)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def encode(self, images, training=False):
        """Posterior parameters `(mean, log_var)`, float32 `[batch, latent_dim]`.

        log_var is clipped to LOG_VAR_RANGE.
        """
        images = ops.convert_to_tensor(images, dtype=self.compute_dtype)
        self.check_images(images)
        mean, log_var = self.encoder(images, training=training)
        log_var = ops.clip(ops.cast(log_var, "float32"), *LOG_VAR_RANGE)
        return ops.cast(mean, "float32"), log_var

    def codes(self, images):
        """The latent code of each image, the posterior mean: float32 `[batch, latent_dim]`."""
        return self.encode(images)[0]

    def call(self, images, training=False):
        mean, log_var = self.encode(images, training=training)
        z = self.sampling((mean, log_var)) if training else mean
        return self.decode(z)

    def loss_terms(self, images, training=False):
        """Per-image `(reconstruction_loss, kl_loss)` in nats, each `[batch]`.

        One z is sampled per image (the usual single-sample ELBO estimate);
        the KL is analytic. Computed in float32 whatever the dtype policy.
        """
        mean, log_var = self.encode(images, training=training)
        z = self.sampling((mean, log_var))
        logits = self.decoder_logits(z, training=training)
        reconstruction = self.reconstruction_nll(images, logits)
        return reconstruction, losses.kl_to_standard_normal(mean, log_var)

    def reconstruction_nll(self, images, logits):
        """-log p(x | z) in nats per image, `[batch]`, from the decoder's logits."""
        images = ops.cast(images, "float32")
        if self.likelihood == "bernoulli":
            return losses.bernoulli_nll(images, logits)
        return losses.gaussian_nll(images, ops.sigmoid(logits), self.log_scale)

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = (ops.mean(t) for t in self.loss_terms(images, training=True))
            loss = reconstruction + self.kl_weight * kl  # nats per image
            scaled_loss = self.optimizer.scale_loss(replicas.per_replica(loss))
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self.record(loss, reconstruction, kl)

    def test_step(self, data):
        # The KL is weighed with beta, not the warm-up's kl_weight.
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        reconstruction, kl = (ops.mean(t) for t in self.loss_terms(images))
        return self.record(reconstruction + self.beta * kl, reconstruction, kl)

    def record(self, loss, reconstruction, kl):
        """Updates the loss trackers; returns the step's logs."""
        for tracker, value in zip(self.metrics, (loss, reconstruction, kl), strict=True):
            tracker.update_state(value)
        return replicas.step_logs({m.name: m.result() for m in self.metrics})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "likelihood": self.likelihood,
                "gaussian_scale": self.gaussian_scale,
                "beta": self.beta,
                "seed": self.seed,
            }
        )
        return config
