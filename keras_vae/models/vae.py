"""The variational autoencoder, as a subclassed `keras.Model`."""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae.models import losses, networks, priors, replicas
from keras_vae.models.latent_image_model import LatentImageModel
from keras_vae.models.layers import Sampling
from keras_vae.utils import names

# log_var is clipped to this range: sigma^2 from 1e-13 to 5e8, so exp() can
# neither overflow nor underflow to a zero variance, in float32 or bfloat16.
LOG_VAR_RANGE = (-30.0, 20.0)
DEFAULT_PSEUDO_INPUTS = names.DEFAULT_PSEUDO_INPUTS
# Pseudo-inputs made from images are logit(clip(pixel)): a pixel of exactly 0 or 1
# would be an infinite logit.
_PSEUDO_INPUT_CLIP = (0.01, 0.99)


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(LatentImageModel):
    """Variational autoencoder trained on reconstruction NLL + beta * KL.

    The encoder maps an image to N(mean, exp(log_var)); `Sampling` draws
    z = mean + sigma * eps; the decoder maps z back to per-pixel logits. The
    loss of one image, in nats, is

        reconstruction_loss + beta * kl_loss
        = -log p(x | z) + beta * KL(N(mean, sigma^2) || p(z)),

    averaged over the batch; with beta = 1 it is the negative ELBO. The prior
    p(z) is N(0, I) (analytic KL), or with `learned_prior="vamp"` the
    VampPrior (Tomczak & Welling 2018): the equal-weight mixture of the
    encoder's posteriors at K learned pseudo-inputs, trained with the rest of
    the model; the KL is then the one-sample Monte Carlo estimate
    log q(z | x) - log p(z) at the sampled z (log-sum-exp over components).

    Args (keywords, but for `image_shape`):
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
        learned_prior: "standard" (N(0, I)) or "vamp" (see above).
        pseudo_inputs: the VampPrior's number of pseudo-inputs K (default
            `DEFAULT_PSEUDO_INPUTS`); only with `learned_prior="vamp"`. They
            start as noise; `initialize_pseudo_inputs(images)` starts them
            at training images (train.py does).
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
        *,
        likelihood="bernoulli",
        gaussian_scale="learned",
        beta=1.0,
        seed=None,
        learned_prior="standard",
        pseudo_inputs=None,
        **kwargs,
    ):
        # latent_dim, preset and the layer widths go to LatentImageModel in kwargs.
        super().__init__(image_shape, **kwargs)
        names.check_choice("likelihood", likelihood, names.LIKELIHOODS)
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0; got {beta}.")
        names.check_gaussian_scale(gaussian_scale)
        names.check_choice("learned_prior", learned_prior, names.LEARNED_PRIORS)
        if learned_prior == priors.STANDARD and pseudo_inputs is not None:
            raise ValueError(
                f"pseudo_inputs ({pseudo_inputs}) is the VampPrior's: pass "
                "learned_prior='vamp' (--learned-prior vamp) too, or drop it."
            )
        if learned_prior == priors.VAMP:
            pseudo_inputs = DEFAULT_PSEUDO_INPUTS if pseudo_inputs is None else pseudo_inputs
            if int(pseudo_inputs) != pseudo_inputs or pseudo_inputs < 1:
                raise ValueError(f"pseudo_inputs must be an integer >= 1; got {pseudo_inputs}.")
            pseudo_inputs = int(pseudo_inputs)
        self.learned_prior = learned_prior
        self.pseudo_inputs = pseudo_inputs
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale
        self.beta = float(beta)
        self.seed = seed

        # float32 under mixed precision too: log q(z | x) is then taken at the z drawn.
        self.sampling = Sampling(seed=seed, name="sampling", dtype="float32")
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
        self.pseudo_input_logits = None
        if learned_prior == priors.VAMP:
            # The pseudo-inputs are sigmoid(logits): images in [0, 1] whatever the step.
            self.pseudo_input_logits = self.add_weight(
                shape=(pseudo_inputs, *self.image_shape),
                initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed),
                name="pseudo_input_logits",
            )
            self._default_prior = priors.VAMP
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True

    def build_encoder(self):
        """images -> `[mean, log_var]` (see `keras_vae.models.networks.build_encoder`)."""
        return networks.build_encoder(self.image_shape, self.architecture, label_dim=self.label_dim)

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
        the KL is analytic under N(0, I), and log q(z | x) - log p(z) at that
        z under the VampPrior. Computed in float32 whatever the dtype policy.
        """
        mean, log_var = self.encode(images, training=training)
        z = self.sampling((mean, log_var))
        logits = self.decoder_logits(z, training=training)
        reconstruction = self.reconstruction_nll(images, logits)
        if self.learned_prior == priors.STANDARD:
            return reconstruction, losses.kl_to_standard_normal(mean, log_var)
        kl = losses.log_normal(z, mean, log_var) - self.log_prior(z, training=training)
        return reconstruction, kl

    def pseudo_input_images(self):
        """The VampPrior's pseudo-inputs: float32 `[K, H, W, C]` in [0, 1]."""
        self._check_vamp("pseudo_input_images")
        return ops.sigmoid(ops.convert_to_tensor(self.pseudo_input_logits))

    def initialize_pseudo_inputs(self, images):
        """Starts the K pseudo-inputs at the first K of `images` `[>= K, H, W, C]` in [0, 1]."""
        self._check_vamp("initialize_pseudo_inputs")
        images = ops.convert_to_tensor(images, dtype="float32")
        self.check_images(images)
        if images.shape[0] < self.pseudo_inputs:
            raise ValueError(
                f"initialize_pseudo_inputs needs {self.pseudo_inputs} images (one per "
                f"pseudo-input); got {images.shape[0]}. Pass more, or use fewer pseudo_inputs."
            )
        pixels = ops.clip(images[: self.pseudo_inputs], *_PSEUDO_INPUT_CLIP)
        self.pseudo_input_logits.assign(ops.log(pixels) - ops.log(1.0 - pixels))

    def _check_vamp(self, what):
        if self.learned_prior != priors.VAMP:
            raise ValueError(
                f"{what} is the VampPrior's; this VAE's prior is "
                f"{self.learned_prior!r} (build it with learned_prior='vamp')."
            )

    def pseudo_posteriors(self, training=False):
        """The VampPrior's components: `(means, log_vars)`, float32 `[K, latent_dim]`.

        The encoder's posterior at each pseudo-input.
        """
        return self.encode(self.pseudo_input_images(), training=training)

    def log_prior(self, z, training=False):
        """log p(z) under the model's own prior, nats: float32 `[...]` for z `[..., latent_dim]`."""
        z = ops.cast(z, "float32")
        if self.learned_prior == priors.STANDARD:
            return losses.log_normal(z, 0.0, ops.zeros_like(z))
        means, log_vars = self.pseudo_posteriors(training=training)
        return losses.log_mixture(z, means, log_vars)

    @property
    def priors(self):
        found = super().priors
        if self.learned_prior == priors.VAMP:
            found[priors.VAMP] = self.vamp_prior()
        return found

    def vamp_prior(self):
        """The VampPrior as a `GaussianMixture` (equal weights, diagonal components)."""
        means, log_vars = (ops.convert_to_numpy(t) for t in self.pseudo_posteriors())
        count, latent_dim = means.shape
        scales = np.exp(0.5 * log_vars.astype(np.float64))
        cholesky = np.zeros((count, latent_dim, latent_dim))
        cholesky[:, np.arange(latent_dim), np.arange(latent_dim)] = scales
        return priors.GaussianMixture(
            np.full(count, 1.0 / count),
            means,
            cholesky,
            kind=priors.VAMP,  # learned with the model, not fitted: no fit info
        )

    def reconstruction_nll(self, images, logits):
        """-log p(x | z) in nats per image, `[batch]`, from the decoder's logits."""
        images = ops.cast(images, "float32")
        if self.likelihood == "bernoulli":
            return losses.bernoulli_nll(images, logits)
        return losses.gaussian_nll(images, ops.sigmoid(logits), self.log_scale)

    def step_inputs(self, data):
        """What `loss_terms` takes from a batch of `fit` or `evaluate`: `(images,)`."""
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return (images,)

    def train_step(self, data):
        inputs = self.step_inputs(data)
        with tf.GradientTape() as tape:
            reconstruction, kl = (ops.mean(t) for t in self.loss_terms(*inputs, training=True))
            loss = reconstruction + self.kl_weight * kl  # nats per image
            scaled_loss = self.optimizer.scale_loss(replicas.per_replica(loss))
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self.record(loss, reconstruction, kl)

    def test_step(self, data):
        # The KL is weighed with beta, not the warm-up's kl_weight.
        reconstruction, kl = (ops.mean(t) for t in self.loss_terms(*self.step_inputs(data)))
        return self.record(reconstruction + self.beta * kl, reconstruction, kl)

    def record(self, loss, reconstruction, kl):
        """Updates the loss trackers; returns the step's logs."""
        for tracker, value in zip(self.metrics, (loss, reconstruction, kl), strict=True):
            tracker.update_state(value)
        return replicas.step_logs({m.name: m.result() for m in self.metrics})

    def get_config(self):
        config = super().get_config()
        config.update({option: getattr(self, option) for option in names.VAE_OPTIONS})
        return config
