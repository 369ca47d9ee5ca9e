"""Batched encoding and decoding of a model with compiled functions."""

import numpy as np
import tensorflow as tf

from keras_vae.datasets.folder import FolderImages
from keras_vae.models.vae import VAE


class BatchedFunction:
    """A function of arrays, compiled once for a dynamic batch and applied in batches.

    Args:
        function: maps float32 tensors `[batch, ...]` (one per input shape)
            to a tensor `[batch, ...]` (or a tuple of them).
        input_shape: the shape of one element (without the batch), or a
            list of such shapes for a function of several arrays.
        batch_size: elements per graph call.

    Calling it on numpy arrays `[N, ...]` (as many as input shapes) returns
    numpy `[N, ...]` (or a tuple of them). `.function` is the compiled
    `tf.function` itself.
    """

    def __init__(self, function, input_shape, batch_size=256):
        self.batch_size = int(batch_size)
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        specs = [tf.TensorSpec([None, *shape], tf.float32) for shape in shapes]
        self.function = tf.function(function, input_signature=specs)

    def __call__(self, *values):
        values = [np.asarray(v, dtype=np.float32) for v in values]
        outputs = [
            self.function(*(tf.constant(v[start : start + self.batch_size]) for v in values))
            for start in range(0, len(values[0]), self.batch_size)
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
        self.label_dim = getattr(model, "label_dim", 0)
        labels = [(self.label_dim,)] if self.label_dim else []
        self._encode = BatchedFunction(model.codes, [model.image_shape, *labels], batch_size)
        self._decode = BatchedFunction(model.decode, [(model.latent_dim,), *labels], batch_size)
        self._posterior = None
        if isinstance(model, VAE):
            self._posterior = BatchedFunction(
                model.encode, [model.image_shape, *labels], batch_size
            )

    def _labels(self, labels, count):
        """`[labels [count, label_dim]]` for a conditional model, `[]` for another one."""
        if not self.label_dim:
            if labels is not None:
                raise ValueError(
                    f"This {type(self.model).__name__} is unconditional: it takes no labels."
                )
            return []
        if labels is None:
            raise ValueError(
                "A ConditionalVAE encodes and decodes with labels: pass the labels of the "
                f"images or codes (vectors of {self.label_dim} values)."
            )
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape != (count, self.label_dim):
            raise ValueError(
                f"Expected labels of shape ({count}, {self.label_dim}), one vector per image "
                f"or code; got {labels.shape}."
            )
        return [labels]

    def encode(self, images, labels=None):
        """Codes float32 `[N, latent_dim]` of images `[N, H, W, C]` in [0, 1].

        `images` may be a `keras_vae.datasets.folder.FolderImages`: it is then
        read a chunk at a time. A `keras_vae.ConditionalVAE` needs the
        images' label vectors `[N, label_dim]`.
        """
        if isinstance(images, FolderImages):
            return self._chunked(self.encode, images, labels)
        images = np.asarray(images, dtype=np.float32)
        if images.shape[1:] != tuple(self.model.image_shape):
            raise ValueError(
                f"The model takes images of shape {tuple(self.model.image_shape)}; "
                f"got {images.shape[1:]}. Resize them (keras_vae.utils.images.load_images)."
            )
        return self._encode(images, *self._labels(labels, len(images)))

    def encode_samples(self, images, seed=0, labels=None):
        """One z ~ q(z | x) per image, float32 `[N, latent_dim]` (a VAE's only)."""
        if isinstance(images, FolderImages):
            rng = np.random.default_rng(seed)
            return self._chunked(
                lambda x, y=None: self.encode_samples(x, rng, labels=y), images, labels
            )
        if self._posterior is None:
            raise ValueError(
                f"A {type(self.model).__name__} has no posterior to sample codes from: "
                "use its codes (codes='mean')."
            )
        self.encode(images[:0], None if labels is None else np.asarray(labels)[:0])  # checks
        mean, log_var = self._posterior(
            np.asarray(images, dtype=np.float32), *self._labels(labels, len(images))
        )
        eps = np.random.default_rng(seed).standard_normal(mean.shape)
        return (mean + np.exp(0.5 * log_var) * eps).astype(np.float32)

    def _chunked(self, encode, images, labels=None, size=1024):
        parts = [
            encode(chunk, *([] if labels is None else [labels[start : start + len(chunk)]]))
            for start, chunk in zip(range(0, len(images), size), images.chunks(size), strict=True)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.model.latent_dim), np.float32)

    def decode(self, codes, labels=None):
        """Images float32 `[..., H, W, C]` in [0, 1] of codes `[..., latent_dim]`.

        A `keras_vae.ConditionalVAE` needs label vectors `[..., label_dim]`
        beside the codes.
        """
        codes = np.asarray(codes, dtype=np.float32)
        if codes.shape[-1] != self.model.latent_dim:
            raise ValueError(
                f"The model's codes have {self.model.latent_dim} dimensions; "
                f"got codes of shape {codes.shape}."
            )
        flat = codes.reshape(-1, self.model.latent_dim)
        if labels is not None:
            labels = np.asarray(labels, np.float32)
            if labels.shape[:-1] == codes.shape[:-1]:  # one vector per code, as the codes lie
                labels = labels.reshape(len(flat), -1)
        flat = self._decode(flat, *self._labels(labels, len(flat)))
        return flat.reshape(codes.shape[:-1] + tuple(self.model.image_shape))

    def every_label(self, codes, labels):
        """Each code decoded with each label: images `[len(codes), len(labels), H, W, C]`.

        The conditional VAE's "same z, every class" grid: along a row the
        code (the style) stays and the label changes. `labels` are label
        vectors `[K, label_dim]` (`ConditionalVAE.each_label()`: one per class).
        """
        codes = np.asarray(codes, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.float32)
        rows, cols = len(codes), len(labels)
        tiled_codes = np.repeat(codes[:, None], cols, axis=1)
        tiled_labels = np.broadcast_to(labels[None], (rows, *labels.shape))
        return self.decode(tiled_codes, tiled_labels)
