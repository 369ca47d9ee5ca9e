"""What the VAE and the deterministic Autoencoder share: architecture, decoder, priors, checks."""

import json
import os

import keras
from keras import ops

from keras_vae.models import networks, presets, priors
from keras_vae.utils import names

# The fitted priors' file inside the `.keras` archive (the model's assets).
PRIORS_ASSET = "priors.json"


class LatentImageModel(keras.Model):
    """Base of `keras_vae.VAE` and `keras_vae.Autoencoder`: an image model with a latent code.

    Resolves the preset with the width overrides, keeps one attribute per
    constructor argument, builds the decoder (z -> per-pixel logits), checks
    the shapes of images and codes, and writes those arguments into
    `get_config`. Subclasses build their encoder from `self.architecture`.

    It also holds the latent priors it samples from (`keras_vae.models.priors`):
    N(0, I) always, and the priors fitted to its codes after training
    (`keras_vae.generation.fit_priors`, `set_prior`). The fitted priors are saved
    inside the `.keras` file (its assets) and load with it; `sample` draws
    from the default one.

    Args:
        image_shape: `(height, width, channels)`.
        latent_dim: size of z; `None` takes the preset's.
        preset: one of `keras_vae.utils.names.PRESETS`.
        conv_filters, encoder_units, decoder_units: override the preset's
            layer widths (sequences of ints); `None` keeps the preset's.
        label_dim: size of the condition vector the networks take beside
            their input (`keras_vae.ConditionalVAE`); 0 for none.
        **kwargs: standard `keras.Model` arguments (`name`...).
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=None,
        preset="default",
        conv_filters=None,
        encoder_units=None,
        decoder_units=None,
        label_dim=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        architecture = presets.resolve(
            preset,
            latent_dim=latent_dim,
            conv_filters=conv_filters,
            encoder_units=encoder_units,
            decoder_units=decoder_units,
        )
        self.image_shape = tuple(int(d) for d in image_shape)
        self.preset = preset
        self.latent_dim = architecture.latent_dim
        self.conv_filters = architecture.conv_filters
        self.encoder_units = architecture.encoder_units
        self.decoder_units = architecture.decoder_units
        self.label_dim = int(label_dim)
        self.encoder = self.build_encoder()
        self.decoder = networks.build_decoder(
            self.image_shape, architecture, label_dim=self.label_dim
        )
        self._fitted_priors = {}
        self._default_prior = priors.STANDARD

    def build_encoder(self):
        """The encoder network (a functional `keras.Model`), from `self.architecture`."""
        raise NotImplementedError

    @property
    def architecture(self):
        """The resolved `keras_vae.models.presets.Architecture`."""
        return presets.Architecture(
            self.latent_dim, self.conv_filters, self.encoder_units, self.decoder_units
        )

    def check_images(self, images):
        """Raises ValueError unless `images` is `[batch, H, W, C]` of this model's shape."""
        shape = tuple(images.shape[1:])
        if len(images.shape) != 4 or any(
            got is not None and got != want
            for got, want in zip(shape, self.image_shape, strict=False)
        ):
            height, width, channels = self.image_shape
            raise ValueError(
                f"This {type(self).__name__} takes images of shape (batch, {height}, {width}, "
                f"{channels}); got {tuple(images.shape)}. Resize the images to "
                f"{height}x{width}x{channels} or build a model with a matching image_shape."
            )

    def check_codes(self, z):
        """`z` as a tensor; raises ValueError unless it is `[batch, latent_dim]`."""
        z = ops.convert_to_tensor(z)
        if len(z.shape) != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"This {type(self).__name__} decodes latent codes of shape "
                f"(batch, {self.latent_dim}); got {tuple(z.shape)}."
            )
        return z

    def decoder_logits(self, z, training=False):
        """The decoder's raw output in float32, `[batch, H, W, C]`."""
        z = ops.cast(self.check_codes(z), self.compute_dtype)
        return ops.cast(self.decoder(z, training=training), "float32")

    def decode(self, z):
        """Images `[batch, H, W, C]` in [0, 1] for latent codes `[batch, latent_dim]`.

        sigmoid(decoder(z)) in float32: the Bernoulli probabilities or Gaussian
        means. Plain ops; `keras_vae.generation.Codec` runs it compiled, in batches.
        """
        return ops.sigmoid(self.decoder_logits(z))

    @property
    def priors(self):
        """`{kind: keras_vae.models.priors.GaussianMixture}`: "standard" and every fitted prior."""
        return {priors.STANDARD: priors.standard_normal(self.latent_dim), **self._fitted_priors}

    @property
    def prior(self):
        """The default prior: the one `sample()` and the exported generator draw from."""
        return self.get_prior()

    def set_prior(self, prior, default=True):
        """Keeps a fitted `GaussianMixture` under its kind, as the default if `default`.

        Saved with the model. A "standard" prior only makes N(0, I) the
        default, and a "vamp" one the VampPrior (which the model's weights hold).
        """
        if not isinstance(prior, priors.PRIOR_TYPES):
            raise TypeError(
                "set_prior takes a keras_vae.models.priors.GaussianMixture or TwoStagePrior; "
                f"got {type(prior).__name__}."
            )
        self._check_prior_size(prior)
        if prior.kind == priors.VAMP:
            self.get_prior(priors.VAMP)  # only a VAE that learned one has it
        elif prior.kind != priors.STANDARD:
            self._fitted_priors[prior.kind] = prior
        if default:
            self._default_prior = prior.kind

    def _check_prior_size(self, prior):
        if prior.latent_dim != self.latent_dim:
            raise ValueError(
                f"The prior is over {prior.latent_dim}-D codes but this "
                f"{type(self).__name__} has latent_dim {self.latent_dim}."
            )
        return prior

    def get_prior(self, prior=None):
        """The prior named `prior` (one of `names.PRIORS`), or the default for `None`.

        A `GaussianMixture` is returned as it is, after checking its size.
        """
        if isinstance(prior, priors.PRIOR_TYPES):
            return self._check_prior_size(prior)
        name = self._default_prior if prior is None else prior
        names.check_choice("prior", name, names.PRIORS)
        available = self.priors
        if name == priors.VAMP and name not in available:
            raise ValueError(
                f"This {type(self).__name__} has no vamp prior: it is learned with the "
                "model, by a VAE built with learned_prior='vamp' (train.py --learned-prior vamp)."
            )
        if name not in available:
            raise ValueError(
                f"This {type(self).__name__} has no fitted {name!r} prior (it has: "
                f"{', '.join(available)}). Fit one with keras_vae.generation.fit_priors(model, "
                "images) or `keras-vae fit-prior --model RUN`."
            )
        return available[name]

    def sample(self, n, seed=None, prior=None, labels=None):
        """Decodes `n` codes drawn from a prior: images `[n, H, W, C]` in [0, 1].

        Args:
            n: number of images.
            seed: int seed of the draws (NumPy's generator), or None.
            prior: "standard" (N(0, I)), "gaussian", "gmm" (fitted ones), a
                `keras_vae.models.priors.GaussianMixture`, or None for the default
                (`self.prior`: the fitted prior after `fit_priors`).
            labels: a `keras_vae.ConditionalVAE`'s; this model takes none.
        """
        if labels is not None:
            raise ValueError(
                f"This {type(self).__name__} is unconditional: it draws no given label. "
                "Train a keras_vae.ConditionalVAE (keras-vae train --conditional) for that."
            )
        return self.decode(self.get_prior(prior).sample(n, seed=seed))

    def save_assets(self, dir_path):
        """Writes the fitted priors into the `.keras` archive."""
        state = {
            "default": self._default_prior,
            "priors": {kind: prior.to_dict() for kind, prior in self._fitted_priors.items()},
        }
        with open(os.path.join(dir_path, PRIORS_ASSET), "w") as f:
            json.dump(state, f)

    def load_assets(self, dir_path):
        """Reads the fitted priors back; a model saved without them keeps N(0, I)."""
        path = os.path.join(dir_path, PRIORS_ASSET) if dir_path else None
        if not path or not os.path.exists(path):
            return
        with open(path) as f:
            state = json.load(f)
        self._fitted_priors = {}
        for values in state["priors"].values():
            self.set_prior(priors.from_dict(values), default=False)
        self._default_prior = state["default"]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "latent_dim": self.latent_dim,
                "preset": self.preset,
                "conv_filters": list(self.conv_filters),
                "encoder_units": list(self.encoder_units),
                "decoder_units": list(self.decoder_units),
            }
        )
        return config
