"""Using a trained model's latent space.

`latent`: interpolation, attribute vectors, edits and averages on codes
(NumPy); `codec`: batched encode/decode of a model as compiled functions;
`prior_fitting`: `fit_priors`, the priors fitted to a model's codes;
`two_stage`: `fit_two_stage`, the two-stage VAE's second VAE on the codes.

Example:
>>> from keras_vae import generation
>>> generation.fit_priors(vae, x_train)
>>> codes = generation.Codec(vae).encode(images)
>>> path = generation.interpolate(codes[0], codes[1], steps=8)
"""

from keras_vae.generation.codec import BatchedFunction, Codec
from keras_vae.generation.latent import (
    attribute_mask,
    attribute_vector,
    average_code,
    edit,
    interpolate,
)
from keras_vae.generation.prior_fitting import fit_priors
from keras_vae.generation.two_stage import fit_two_stage

__all__ = [
    "BatchedFunction",
    "Codec",
    "attribute_mask",
    "attribute_vector",
    "average_code",
    "edit",
    "fit_priors",
    "fit_two_stage",
    "interpolate",
]
