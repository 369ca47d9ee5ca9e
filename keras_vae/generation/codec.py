"""Batched encoding and decoding of a model with compiled functions."""

import numpy as np
import tensorflow as tf

from keras_vae.datasets.folder import FolderImages
from keras_vae.models.vae import VAE


class BatchedFunction:
    """A function of arrays, compiled once for a dynamic batch and applied in batches.

    Args:
        function: maps a float32 tensor `[batch, ...]` to a tensor `[batch, ...]`
            (or a tuple of them).
        input_shape: the shape of one element (without the batch).
        batch_size: elements per graph call.

    Calling it on a numpy array `[N, ...]` returns numpy `[N, ...]` (or a
    tuple of them). `.function` is the compiled `tf.function` itself.
    """

    def __init__(self, function, input_shape, batch_size=256):
        self.batch_size = int(batch_size)
        spec = tf.TensorSpec([None, *input_shape], tf.float32)
        self.function = tf.function(function, input_signature=[spec])

    def __call__(self, values):
        values = np.asarray(values, dtype=np.float32)
        outputs = [
            self.function(tf.constant(values[start : start + self.batch_size]))
            for start in range(0, len(values), self.batch_size)
        ]
        if not outputs:
            return np.zeros((0,), np.float32)
        return tf.nest.map_structure(
            lambda *parts: np.concatenate([p.numpy() for p in parts]), *outputs
        )


class Codec:
    """Encodes images to codes and decodes codes to images in batches.

    Both directions are `tf.function`s traced once for a dynamic batch, so a
    call costs the graph's run time only (`Model.predict` and eager ops add a
    fixed cost to every call; see BENCHMARKS.md). The functions read the
    model's variables, so they follow training. This is the package's one
    compiled batch encoder/decoder: the CLI, the callbacks and the benchmarks
    use it.

    Args:
        model: a `keras_vae.VAE` (codes are posterior means) or
            `keras_vae.Autoencoder`.
        batch_size: images per graph call.
    """

    def __init__(self, model, batch_size=256):
        self.model = model
        self._encode = BatchedFunction(model.codes, model.image_shape, batch_size)
        self._decode = BatchedFunction(model.decode, (model.latent_dim,), batch_size)
        self._posterior = None
        if isinstance(model, VAE):
            self._posterior = BatchedFunction(model.encode, model.image_shape, batch_size)

    def encode(self, images):
        """Codes float32 `[N, latent_dim]` of images `[N, H, W, C]` in [0, 1].

        `images` may be a `keras_vae.datasets.folder.FolderImages`: it is then
        read a chunk at a time.
        """
        if isinstance(images, FolderImages):
            return self._chunked(self.encode, images)
        images = np.asarray(images, dtype=np.float32)
        if images.shape[1:] != tuple(self.model.image_shape):
            raise ValueError(
                f"The model takes images of shape {tuple(self.model.image_shape)}; "
                f"got {images.shape[1:]}. Resize them (keras_vae.utils.images.load_images)."
            )
        return self._encode(images)

    def encode_samples(self, images, seed=0):
        """One z ~ q(z | x) per image, float32 `[N, latent_dim]` (a VAE's only)."""
        if isinstance(images, FolderImages):
            rng = np.random.default_rng(seed)
            return self._chunked(lambda x: self.encode_samples(x, rng), images)
        if self._posterior is None:
            raise ValueError(
                f"A {type(self.model).__name__} has no posterior to sample codes from: "
                "use its codes (codes='mean')."
            )
        self.encode(images[:0])  # the shape check
        mean, log_var = self._posterior(np.asarray(images, dtype=np.float32))
        eps = np.random.default_rng(seed).standard_normal(mean.shape)
        return (mean + np.exp(0.5 * log_var) * eps).astype(np.float32)

    def _chunked(self, encode, images):
        parts = [encode(chunk) for chunk in images.chunks()]
        return np.concatenate(parts) if parts else np.zeros((0, self.model.latent_dim), np.float32)

    def decode(self, codes):
        """Images float32 `[..., H, W, C]` in [0, 1] of codes `[..., latent_dim]`."""
        codes = np.asarray(codes, dtype=np.float32)
        if codes.shape[-1] != self.model.latent_dim:
            raise ValueError(
                f"The model's codes have {self.model.latent_dim} dimensions; "
                f"got codes of shape {codes.shape}."
            )
        flat = self._decode(codes.reshape(-1, self.model.latent_dim))
        return flat.reshape(codes.shape[:-1] + tuple(self.model.image_shape))
