"""Latent priors fitted to a trained model's codes ("ex-post density estimation")."""

import functools

import numpy as np

from keras_vae.generation.codec import Codec
from keras_vae.generation.two_stage import fit_two_stage
from keras_vae.models import priors
from keras_vae.utils import names


def fit_priors(
    model,
    images,
    validation_images=None,
    kind=priors.GMM,
    components=None,
    codes="mean",
    seed=0,
    codec=None,
    labels=None,
    validation_labels=None,
):
    """Fits latent priors to the codes of `images` and makes `kind` the model's default.

    "ex-post density estimation": the fitted prior covers where the codes of
    real images lie, which N(0, I) does not; `model.sample()` and the
    exported generator then draw from it. Saved with the model.

    Args:
        model: a trained `keras_vae.VAE` or `keras_vae.Autoencoder`.
        images: training images `[N, H, W, C]` whose codes the prior fits.
        validation_images: held-out images whose codes choose the mixture's
            number of components (`None`: a seeded 10% of the codes).
        kind: "gmm" fits a full-covariance Gaussian and a Gaussian mixture,
            "two_stage" the Gaussian and a second VAE on the codes
            (`fit_two_stage`), "gaussian" the Gaussian only, "standard" nothing (N(0, I) becomes
            the default), "vamp" nothing (the VampPrior the model learned
            becomes the default).
        components: the mixture's number of components; `None` chooses it
            by held-out log-likelihood among `priors.COMPONENT_CANDIDATES`.
        codes: "mean" (posterior means) or "sample" (one z ~ q(z | x) per image).
        seed: seeds the code draws and the fits.
        codec: a `Codec` of `model` to reuse.
        labels, validation_labels: a `keras_vae.ConditionalVAE`'s label
            vectors of `images` and `validation_images`, which its codes are
            of. For classes, the Gaussian and the mixture are then fitted per
            class (`priors.fit_per_class`: z drawn for a class comes from the
            region of that class's codes); for attributes (and the two-stage
            prior) to the codes of every label.

    Returns:
        `{kind: GaussianMixture}` of the priors fitted (empty for "standard").
    """
    names.check_choice("prior", kind, names.PRIORS)
    names.check_choice("codes", codes, names.PRIOR_CODES)
    fitted = {}
    if kind not in (priors.STANDARD, priors.VAMP):
        codec = codec or Codec(model)
        if codes == "mean":
            encode = codec.encode
        else:
            encode = lambda x, y: codec.encode_samples(x, seed, labels=y)  # noqa: E731
        train_codes = encode(images, labels)
        validation_codes = (
            None if validation_images is None else encode(validation_images, validation_labels)
        )
        per_class = labels is not None and getattr(model, "label_type", None) == "class"
        if per_class:
            classes = np.asarray(labels).argmax(axis=1)
            held_out = None if validation_labels is None else np.asarray(validation_labels)
            fit = functools.partial(
                priors.fit_per_class,
                codes=train_codes,
                classes=classes,
                num_classes=model.label_dim,
                validation_codes=validation_codes,
                validation_classes=None if held_out is None else held_out.argmax(axis=1),
                class_names=model.label_names,
            )
            fitted[priors.GAUSSIAN] = fit(priors.GAUSSIAN)
            if kind == priors.GMM:
                fitted[priors.GMM] = fit(priors.GMM, components=components, seed=seed)
        else:
            fitted[priors.GAUSSIAN] = priors.fit_gaussian(train_codes)
            if kind == priors.GMM:
                fitted[priors.GMM] = priors.fit_gmm(
                    train_codes, validation_codes, components=components, seed=seed
                )
        if kind == priors.TWO_STAGE:
            fitted[priors.TWO_STAGE] = fit_two_stage(train_codes, seed=seed)
        for prior in fitted.values():
            prior.info["fitted_to"] = codes
            if validation_codes is not None:
                log_prob = prior.log_prob(validation_codes, validation_labels)
                prior.info["validation_log_likelihood_of_fit"] = float(log_prob.mean())
            model.set_prior(prior, default=False)
    model.set_prior(model.get_prior(kind))
    return fitted
