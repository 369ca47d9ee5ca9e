"""The conditional VAE: images of a class, or with given attributes, on request."""

import numbers

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae.models import losses, priors
from keras_vae.models.vae import LOG_VAR_RANGE, VAE
from keras_vae.utils import names

CLASS, ATTRIBUTES = names.LABEL_TYPES


@keras.saving.register_keras_serializable(package="keras_vae")
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder both see a label: q(z | x, y) and p(x | z, y).

    The conditional VAE of Kingma et al. (2014) and Sohn et al. (2015): the
    label y is given with every image, so z is left to hold what the label
    does not say (the style: slant, thickness, pose), and `sample(n,
    labels=...)` draws images of the requested class. Its loss is the VAE's
    with every term conditioned on y, a bound on log p(x | y):

        -log p(x | z, y) + beta * KL(q(z | x, y) || N(0, I))

    A label is a float vector of `label_dim` values beside the image: a
    one-hot class (`label_type="class"`) or 0/1 attributes
    (`label_type="attributes"`, several may be set). `fit(images, labels)`
    takes such vectors, or integer class indices `[batch]` for classes.
    `label_vectors` turns names and indices into vectors.

    Args:
        label_names: the names of the classes (at least 2) or attributes
            (at least 1), in the order of the vector's values.
        label_type: "class" or "attributes".
        **kwargs: the `keras_vae.VAE` arguments (image_shape, preset,
            latent_dim, likelihood, beta, ...). The prior in the bound is
            N(0, I): `learned_prior` must be "standard".

    Example:
    >>> cvae = ConditionalVAE(label_names=[str(d) for d in range(10)], image_shape=(28, 28, 1))
    >>> cvae.compile(optimizer="adam")
    >>> cvae.fit(x_train, y_train, epochs=5, batch_size=128)  # y_train: int [N]
    >>> sevens = cvae.sample(16, labels="7", seed=0)
    """

    def __init__(self, label_names=(), label_type=CLASS, **kwargs):
        names.check_choice("label type", label_type, names.LABEL_TYPES)
        label_names = tuple(str(name) for name in label_names)
        least = 2 if label_type == CLASS else 1
        if len(label_names) < least:
            raise ValueError(
                f"A ConditionalVAE of label_type {label_type!r} needs at least {least} label "
                f"name{'s' * (least > 1)}; got {list(label_names)}"
                + (": with one class the label says nothing." if label_type == CLASS else ".")
            )
        if len(set(label_names)) != len(label_names):
            repeated = sorted({n for n in label_names if label_names.count(n) > 1})
            raise ValueError(f"label_names must differ from each other; repeated: {repeated}.")
        learned_prior = kwargs.get("learned_prior", priors.STANDARD)
        if learned_prior != priors.STANDARD:
            raise ValueError(
                f"A ConditionalVAE trains under N(0, I) (learned_prior='standard'); got "
                f"learned_prior={learned_prior!r}. Drop it (train.py: --learned-prior standard)."
            )
        super().__init__(label_dim=len(label_names), **kwargs)
        self.label_names = label_names
        self.label_type = label_type

    # --- labels

    def label_vectors(self, labels, count=None):
        """Labels as the float32 condition vectors `[n, label_dim]` the networks take.

        Args:
            labels: for classes, a class name or index (`"Sneaker"`, `7`,
                `"7"`) or a sequence of them, or vectors `[n, label_dim]`;
                for attributes, `{name: value}` (unnamed attributes are 0) or
                a sequence of such dicts, or vectors `[label_dim]` /
                `[n, label_dim]`. Names are matched ignoring case and
                punctuation.
            count: repeat a single label this many times; with several
                labels, their number must be `count`.

        Raises:
            ValueError: an unknown name or index, vectors of the wrong
                length, or a count that differs from the labels'.
        """
        vectors = np.atleast_2d(self._vectors(labels)).astype(np.float32)
        if count is not None:
            if len(vectors) == 1:
                vectors = np.repeat(vectors, int(count), axis=0)
            elif len(vectors) != count:
                raise ValueError(f"Got {len(vectors)} labels for {count} images.")
        if not np.isfinite(vectors).all():
            raise ValueError("Label vectors must be finite.")
        return vectors

    def _vectors(self, labels):
        if isinstance(labels, dict):
            return self._attribute_vector(labels)
        if isinstance(labels, str | numbers.Integral):
            return self._class_vector(labels)
        array = np.asarray(labels, dtype=object if _holds_names(labels) else None)
        class_indices = self.label_type == CLASS and array.ndim == 1
        if array.dtype == object or (class_indices and np.issubdtype(array.dtype, np.integer)):
            if self.label_type == CLASS:
                return np.stack([self._class_vector(label) for label in array.ravel()])
            return np.stack([self._attribute_vector(label) for label in array.ravel()])
        if array.ndim in (1, 2) and array.shape[-1] == self.label_dim:
            return array
        raise ValueError(
            f"This ConditionalVAE's label vectors have {self.label_dim} values "
            f"({self.describe_labels()}); got labels of shape {array.shape}."
        )

    def _class_vector(self, label):
        if self.label_type != CLASS:
            raise ValueError(
                f"This ConditionalVAE's labels are attributes: pass {{name: 0 or 1}} "
                f"({self.describe_labels()}); got {label!r}."
            )
        index = self.class_index(label)
        return np.eye(self.label_dim, dtype=np.float32)[index]

    def class_index(self, label):
        """The index of a class name (`"Sneaker"`, `"sneaker"`) or index (`7`, `"7"`)."""
        if isinstance(label, str):
            try:
                return names.name_index("class", label, self.label_names)
            except ValueError:
                pass  # an index written as text ("7"), or unknown
        try:
            index = int(label)
            valid = index == float(label) and 0 <= index < self.label_dim
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"Unknown class {label!r}. Valid {self.describe_labels()}.")
        return index

    def _attribute_vector(self, values):
        if self.label_type != ATTRIBUTES:
            raise ValueError(
                f"This ConditionalVAE's labels are classes: pass a class name or index "
                f"({self.describe_labels()}); got {values!r}."
            )
        if not isinstance(values, dict):
            raise ValueError(f"Attributes are given as {{name: 0 or 1}}; got {values!r}.")
        vector = np.zeros(self.label_dim, np.float32)
        for name, value in values.items():
            vector[names.name_index("attribute", name, self.label_names)] = float(value)
        return vector

    def describe_labels(self):
        """The valid labels in words: "classes: 0 T-shirt/top, 1 Trouser, ..."."""
        if self.label_type == ATTRIBUTES:
            return f"attributes: {', '.join(self.label_names)}"
        shown = ", ".join(f"{i} {name}" for i, name in enumerate(self.label_names))
        return f"classes: {shown}"

    def each_label(self):
        """One label vector per class, or per attribute alone: float32 `[label_dim, label_dim]`."""
        return np.eye(self.label_dim, dtype=np.float32)

    def condition(self, labels):
        """Labels of a batch as float32 `[batch, label_dim]` tensors.

        Integer class indices `[batch]` become one-hot vectors (an index out of
        range stops the step, except under XLA); vectors must have
        `label_dim` values.
        """
        labels = ops.convert_to_tensor(labels)
        if len(labels.shape) == 1 and self.label_type == CLASS:
            indices = ops.cast(labels, "int32")
            # one_hot would turn an index out of range into a vector of zeros: no label at
            # all. XLA compiles these asserts away (jit_compile, Keras's "auto" on a GPU):
            # there, check the indices before fit, or pass one-hot vectors (train.py does).
            message = f"Class indices must lie in [0, {self.label_dim}) ({self.describe_labels()})."
            tf.debugging.assert_non_negative(indices, message=message)
            tf.debugging.assert_less(indices, self.label_dim, message=message)
            return ops.one_hot(indices, self.label_dim, dtype="float32")
        if len(labels.shape) != 2 or labels.shape[-1] not in (None, self.label_dim):
            raise ValueError(
                f"This ConditionalVAE takes labels of shape (batch, {self.label_dim}) "
                f"({self.describe_labels()})"
                + (" or class indices of shape (batch,)" if self.label_type == CLASS else "")
                + f"; got {tuple(labels.shape)}."
            )
        return ops.cast(labels, "float32")

    # --- the model

    def step_inputs(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is None:
            raise ValueError(
                "A ConditionalVAE trains on images with their labels: fit(images, labels), "
                "or a dataset of (images, labels) pairs."
            )
        return images, labels

    def encode(self, images, labels, training=False):
        """Posterior parameters `(mean, log_var)` of q(z | x, y), float32 `[batch, latent_dim]`."""
        images = ops.convert_to_tensor(images, dtype=self.compute_dtype)
        self.check_images(images)
        labels = ops.cast(self.condition(labels), self.compute_dtype)
        mean, log_var = self.encoder([images, labels], training=training)
        log_var = ops.clip(ops.cast(log_var, "float32"), *LOG_VAR_RANGE)
        return ops.cast(mean, "float32"), log_var

    def codes(self, images, labels):
        """The posterior mean of each image given its label: float32 `[batch, latent_dim]`."""
        return self.encode(images, labels)[0]

    def decoder_logits(self, z, labels=None, training=False):
        """The decoder's raw output in float32, `[batch, H, W, C]`, for codes and labels."""
        if labels is None:
            raise ValueError(
                "A ConditionalVAE draws images of a label: pass labels "
                f"({self.describe_labels()}); sample(n, labels=...), decode(z, labels)."
            )
        z = ops.cast(self.check_codes(z), self.compute_dtype)
        labels = ops.cast(self.condition(labels), self.compute_dtype)
        return ops.cast(self.decoder([z, labels], training=training), "float32")

    def decode(self, z, labels=None):
        """Images `[batch, H, W, C]` in [0, 1] of codes `[batch, latent_dim]` and their labels."""
        return ops.sigmoid(self.decoder_logits(z, labels))

    def call(self, inputs, training=False):
        """Reconstructions of `(images, labels)`."""
        images, labels = inputs
        mean, log_var = self.encode(images, labels, training=training)
        z = self.sampling((mean, log_var)) if training else mean
        return ops.sigmoid(self.decoder_logits(z, labels, training=training))

    def loss_terms(self, images, labels, training=False):
        """Per-image `(reconstruction_loss, kl_loss)` in nats, each `[batch]`, given the labels."""
        mean, log_var = self.encode(images, labels, training=training)
        z = self.sampling((mean, log_var))
        logits = self.decoder_logits(z, labels, training=training)
        return self.reconstruction_nll(images, logits), losses.kl_to_standard_normal(mean, log_var)

    def sample(self, n, seed=None, prior=None, labels=None):
        """Decodes `n` codes drawn from a prior with `labels`: images `[n, H, W, C]` in [0, 1].

        Args:
            labels: one label for all `n` images, or `n` labels (see
                `label_vectors`); required.
            n, seed, prior: as for `keras_vae.VAE.sample`. A prior fitted per
                class (`keras_vae.generation.fit_priors` with the labels)
                draws each z from the codes of its label's class.
        """
        if labels is None:
            self.decoder_logits(None)  # raises: a label is needed
        vectors = self.label_vectors(labels, count=n)
        # A prior fitted per class draws each z from its label's class.
        return self.decode(self.get_prior(prior).sample(n, seed=seed, labels=vectors), vectors)

    def get_config(self):
        config = super().get_config()
        config.update({"label_names": list(self.label_names), "label_type": self.label_type})
        return config


def _holds_names(labels):
    """Whether a sequence of labels holds names or dicts (not numbers)."""
    if isinstance(labels, np.ndarray):
        return labels.dtype.kind in "OUS"
    if np.ndim(labels) == 0:  # a lone number: not a sequence
        return False
    return any(isinstance(label, str | dict) for label in labels)
