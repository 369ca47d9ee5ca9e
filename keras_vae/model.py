"""The variational autoencoder, as a subclassed `keras.Model`."""

import math

import keras
import tensorflow as tf
from keras import ops

from keras_vae import distribute, losses, networks
from keras_vae.layers import Sampling

LIKELIHOODS = ("bernoulli", "gaussian")
# log_var is clipped to this range: sigma^2 from 1e-13 to 5e8, so exp() can
# neither overflow nor underflow to a zero variance, in float32 or bfloat16.
LOG_VAR_RANGE = (-30.0, 20.0)


def _store_architecture(model, image_shape, preset, **overrides):
    """Resolves `preset` with `overrides`; stores one attribute per constructor argument.

    Returns:
        The `networks.Architecture` to build the encoder and decoder from.
    """
    architecture = networks.resolve_architecture(preset, **overrides)
    model.image_shape = tuple(int(d) for d in image_shape)
    model.latent_dim = architecture.latent_dim
    model.preset = preset
    model.conv_filters = architecture.conv_filters
    model.encoder_units = architecture.encoder_units
    model.decoder_units = architecture.decoder_units
    return architecture


def _architecture_config(model):
    """The `get_config` entries of `_store_architecture`'s attributes (JSON types)."""
    return {
        "image_shape": list(model.image_shape),
        "latent_dim": model.latent_dim,
        "preset": model.preset,
        "conv_filters": list(model.conv_filters),
        "encoder_units": list(model.encoder_units),
        "decoder_units": list(model.decoder_units),
    }


def _minimize(model, tape, loss):
    """One optimizer step on `loss`, the replica's mean loss recorded by `tape`."""
    # Each replica sees 1/N of the global batch; the gradients are summed
    # across replicas, so the replica's mean loss is scaled by 1/N to give the
    # gradient of the global-batch mean.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tape:
        scaled_loss = model.optimizer.scale_loss(loss / replicas)
    gradients = tape.gradient(scaled_loss, model.trainable_weights)
    model.optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=True))


class _CompiledFunctions:
    """Holds a model's lazily traced `tf.function`s.

    A plain object, so neither Keras's attribute tracking nor a SavedModel
    export of the model picks the functions up.
    """

    decode = None


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
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
        preset: one of `keras_vae.networks.PRESETS` ("default", "conv",
            "keras_example", "mlp").
        conv_filters, encoder_units, decoder_units: override the preset's
            layer widths (tuples of ints); `None` keeps the preset's.
        likelihood: "bernoulli" (pixels in [0, 1], sigmoid cross-entropy on
            the decoder's logits) or "gaussian" (mean = sigmoid(logits)).
        gaussian_scale: the Gaussian likelihood's standard deviation: a
            positive float (fixed), or "learned" (one trainable scale shared
            by all pixels, starting at 0.1). Ignored for "bernoulli".
        beta: weight of the KL term, >= 0. The loss uses the non-trainable
            variable `kl_weight` (initialized to beta), which
            `keras_vae.callbacks.KLWarmup` ramps from 0 to beta; evaluation
            (`test_step`) always weighs the KL with beta.
        seed: seeds the `Sampling` layer.
        **kwargs: standard `keras.Model` arguments (`name`...).

    Call arguments:
        images: float `[batch, H, W, C]` in [0, 1].
        training: if True, decodes a sampled z; else the posterior mean.

    Example:
    >>> vae = VAE(image_shape=(28, 28, 1), preset="keras_example")
    >>> vae.compile(optimizer="adam")
    >>> vae.fit(x_train, epochs=5, batch_size=128, validation_data=x_test)
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
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"Unknown likelihood {likelihood!r}. Valid likelihoods: {', '.join(LIKELIHOODS)}."
            )
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0; got {beta}.")
        if gaussian_scale != "learned" and not float(gaussian_scale) > 0:
            raise ValueError(
                f"gaussian_scale must be 'learned' or a positive float; got {gaussian_scale!r}."
            )
        architecture = _store_architecture(
            self,
            image_shape,
            preset,
            latent_dim=latent_dim,
            conv_filters=conv_filters,
            encoder_units=encoder_units,
            decoder_units=decoder_units,
        )
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale
        self.beta = float(beta)
        self.seed = seed

        self.encoder = networks.build_encoder(self.image_shape, architecture)
        self.decoder = networks.build_decoder(self.image_shape, architecture)
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
        self._compiled = _CompiledFunctions()
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def _check_images(self, images):
        shape = tuple(images.shape[1:])
        if len(images.shape) != 4 or any(
            got is not None and got != want
            for got, want in zip(shape, self.image_shape, strict=False)
        ):
            height, width, channels = self.image_shape
            raise ValueError(
                f"This VAE takes images of shape (batch, {height}, {width}, {channels}); "
                f"got {tuple(images.shape)}. Resize the images to {height}x{width}x{channels} "
                "or build a VAE with a matching image_shape."
            )

    def encode(self, images, training=False):
        """Posterior parameters `(mean, log_var)`, float32 `[batch, latent_dim]`.

        log_var is clipped to LOG_VAR_RANGE.
        """
        images = ops.convert_to_tensor(images, dtype=self.compute_dtype)
        self._check_images(images)
        mean, log_var = self.encoder(images, training=training)
        log_var = ops.clip(ops.cast(log_var, "float32"), *LOG_VAR_RANGE)
        return ops.cast(mean, "float32"), log_var

    def _check_codes(self, z):
        z = ops.convert_to_tensor(z)
        if len(z.shape) != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"This VAE decodes latent codes of shape (batch, {self.latent_dim}); got "
                f"{tuple(z.shape)}."
            )
        return z

    def decoder_logits(self, z, training=False):
        """The decoder's raw output in float32, `[batch, H, W, C]`."""
        z = self._check_codes(z)
        return ops.cast(self.decoder(ops.cast(z, self.compute_dtype), training=training), "float32")

    def decode(self, z):
        """Images `[batch, H, W, C]` in [0, 1] for latent codes `[batch, latent_dim]`.

        The Bernoulli probabilities or Gaussian means: sigmoid(decoder(z)),
        computed in float32. Called eagerly, it runs a `tf.function` traced
        once for every batch size (0.66 ms for one image of the `conv`
        preset here, against 3.4 ms of eager ops and ~37 ms for `predict`);
        inside a graph (`train_step`, a `tf.function`) it is plain ops.
        """
        if not tf.executing_eagerly():
            return ops.sigmoid(self.decoder_logits(z))  # checks z itself
        z = self._check_codes(z)
        if self._compiled.decode is None:
            self._compiled.decode = tf.function(
                lambda codes: ops.sigmoid(self.decoder_logits(codes)),
                input_signature=[tf.TensorSpec([None, self.latent_dim], tf.float32)],
            )
        return self._compiled.decode(ops.cast(z, "float32"))

    def sample(self, n, seed=None):
        """Decodes `n` codes drawn from the prior N(0, I); `[n, H, W, C]` in [0, 1]."""
        z = keras.random.normal((int(n), self.latent_dim), seed=seed)
        return self.decode(z)

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

    def _batch_losses(self, data, kl_weight, training):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        reconstruction, kl = self.loss_terms(images, training=training)
        reconstruction = ops.mean(reconstruction)
        kl = ops.mean(kl)
        return reconstruction + ops.cast(kl_weight, kl.dtype) * kl, reconstruction, kl

    def _update_metrics(self, loss, reconstruction, kl):
        self.loss_tracker.update_state(loss)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        results = {m.name: m.result() for m in self.metrics}
        if distribute.is_multi_worker(tf.distribute.get_strategy()):
            # Keras reduces a multi-worker step's outputs with
            # strategy.reduce("MEAN", value, axis=0), which rejects scalars
            # ("Invalid reduction dimension 0"); a [1] tensor reduces to the
            # scalar that every other strategy returns.
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, reconstruction, kl = self._batch_losses(data, self.kl_weight, training=True)
        _minimize(self, tape, loss)
        return self._update_metrics(loss, reconstruction, kl)

    def test_step(self, data):
        return self._update_metrics(*self._batch_losses(data, self.beta, training=False))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **_architecture_config(self),
                "likelihood": self.likelihood,
                "gaussian_scale": self.gaussian_scale,
                "beta": self.beta,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class Autoencoder(keras.Model):
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

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=None,
        preset="default",
        conv_filters=None,
        encoder_units=None,
        decoder_units=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        architecture = _store_architecture(
            self,
            image_shape,
            preset,
            latent_dim=latent_dim,
            conv_filters=conv_filters,
            encoder_units=encoder_units,
            decoder_units=decoder_units,
        )
        vae_encoder = networks.build_encoder(self.image_shape, architecture)
        self.encoder = keras.Model(
            vae_encoder.input, vae_encoder.get_layer("mean").output, name="encoder"
        )
        self.decoder = networks.build_decoder(self.image_shape, architecture)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    def encode(self, images):
        """Codes `[batch, latent_dim]`."""
        return self.encoder(images)

    def decode(self, z):
        """Images `[batch, H, W, C]` in [0, 1] for codes `[batch, latent_dim]`."""
        return ops.sigmoid(self.decoder(z))

    def call(self, images, training=False):
        return self.decode(self.encoder(images, training=training))

    def _batch_loss(self, data, training):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = ops.cast(images, self.compute_dtype)
        logits = self.decoder(self.encoder(images, training=training), training=training)
        return ops.mean(losses.bernoulli_nll(images, logits))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._batch_loss(data, training=True)
        _minimize(self, tape, loss)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        self.loss_tracker.update_state(self._batch_loss(data, training=False))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        config = super().get_config()
        config.update(_architecture_config(self))
        return config
