"""Encoder and decoder builders, and the named architecture presets.

An encoder maps images `[batch, H, W, C]` to `(mean, log_var)`, each
`[batch, latent_dim]`; a decoder maps `z` `[batch, latent_dim]` to per-pixel
logits `[batch, H, W, C]` (the VAE turns them into Bernoulli probabilities or
Gaussian means with a sigmoid). Both are functional `keras.Model`s that work
on their own. The numbers come from a `keras_vae.models.presets.Architecture`.

With `label_dim` > 0 both take a condition too (the conditional VAE's
q(z | x, y) and p(x | z, y)): a float vector `[batch, label_dim]` (a one-hot
class, or binary attributes), joined to the flattened image features in the
encoder and to the input of every fully connected layer of the decoder.
"""

import math

import keras

KERNEL_SIZE = 3


def _check_image_shape(image_shape, architecture):
    if len(image_shape) != 3 or any(int(d) <= 0 for d in image_shape):
        raise ValueError(
            f"image_shape must be (height, width, channels) of positive ints; got {image_shape}."
        )
    factor = 2 ** len(architecture.conv_filters)
    height, width, _ = image_shape
    if height % factor or width % factor:
        raise ValueError(
            f"image_shape {tuple(image_shape)}: height and width must be divisible by "
            f"{factor} for {len(architecture.conv_filters)} stride-2 convolutions. "
            "Resize the images or use fewer conv_filters."
        )


def build_encoder(image_shape, architecture, activation="relu", label_dim=0):
    """Functional encoder: images (and labels) -> `[mean, log_var]`."""
    _check_image_shape(image_shape, architecture)
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for filters in architecture.conv_filters:
        x = keras.layers.Conv2D(
            filters, KERNEL_SIZE, strides=2, padding="same", activation=activation
        )(x)
    x = keras.layers.Flatten()(x)
    inputs = images
    if label_dim:
        labels = keras.Input(shape=(label_dim,), name="labels")
        x = keras.layers.Concatenate(name="with_labels")([x, labels])
        inputs = [images, labels]
    for units in architecture.encoder_units:
        x = keras.layers.Dense(units, activation=activation)(x)
    mean = keras.layers.Dense(architecture.latent_dim, name="mean")(x)
    log_var = keras.layers.Dense(architecture.latent_dim, name="log_var")(x)
    return keras.Model(inputs, [mean, log_var], name="encoder")


def build_decoder(image_shape, architecture, activation="relu", label_dim=0):
    """Functional decoder: z (and labels) -> per-pixel logits `[batch, H, W, C]`."""
    _check_image_shape(image_shape, architecture)
    height, width, channels = image_shape
    z = keras.Input(shape=(architecture.latent_dim,), name="z")
    x, inputs = z, z
    if label_dim:
        labels = keras.Input(shape=(label_dim,), name="labels")
        inputs = [z, labels]

    def with_labels(x):
        # The label joins the input of every fully connected layer, not the first
        # alone: a decoder that hears it once learns to read the class from z.
        return keras.layers.Concatenate()([x, labels]) if label_dim else x

    for units in architecture.decoder_units:
        x = keras.layers.Dense(units, activation=activation)(with_labels(x))
    if architecture.conv_filters:
        factor = 2 ** len(architecture.conv_filters)
        start = (height // factor, width // factor, architecture.conv_filters[-1])
        x = keras.layers.Dense(math.prod(start), activation=activation)(with_labels(x))
        x = keras.layers.Reshape(start)(x)
        for filters in reversed(architecture.conv_filters):
            x = keras.layers.Conv2DTranspose(
                filters, KERNEL_SIZE, strides=2, padding="same", activation=activation
            )(x)
        logits = keras.layers.Conv2DTranspose(channels, KERNEL_SIZE, padding="same", name="logits")(
            x
        )
    else:
        x = keras.layers.Dense(height * width * channels)(with_labels(x))
        logits = keras.layers.Reshape(tuple(image_shape), name="logits")(x)
    return keras.Model(inputs, logits, name="decoder")
