"""Encoder and decoder builders, and the named architecture presets.

An encoder maps images `[batch, H, W, C]` to `(mean, log_var)`, each
`[batch, latent_dim]`; a decoder maps `z` `[batch, latent_dim]` to per-pixel
logits `[batch, H, W, C]` (the VAE turns them into Bernoulli probabilities or
Gaussian means with a sigmoid). Both are functional `keras.Model`s that work
on their own.
"""

import dataclasses
import math

import keras


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The numbers that define an encoder/decoder pair.

    Attributes:
        latent_dim: size of z.
        conv_filters: filters of the stride-2 3x3 convolutions of the encoder,
            mirrored by stride-2 transposed convolutions in the decoder; empty
            for a fully connected (MLP) pair.
        encoder_units: widths of the Dense layers after the convolutions.
        decoder_units: widths of the Dense layers before the transposed
            convolutions (or before the output layer of an MLP).
    """

    latent_dim: int
    conv_filters: tuple = ()
    encoder_units: tuple = ()
    decoder_units: tuple = ()


PRESETS = {
    # The official Keras "Variational AutoEncoder" example (keras-io
    # examples/generative/vae.py), layer for layer.
    "keras_example": Architecture(
        latent_dim=2, conv_filters=(32, 64), encoder_units=(16,), decoder_units=()
    ),
    # The lowest test -ELBO per second of CPU training that we measured on
    # Fashion-MNIST (`make bench`, BENCHMARKS.md): two Dense 512 layers each
    # way and a 32-dim latent space.
    "default": Architecture(latent_dim=32, encoder_units=(512, 512), decoder_units=(512, 512)),
    # The convolutional choice: the example's convolutions, a wide bottleneck
    # and a 32-dim latent space.
    "conv": Architecture(
        latent_dim=32, conv_filters=(32, 64), encoder_units=(512,), decoder_units=(512,)
    ),
    # pytorch/examples vae/main.py: 784-400-20 and back.
    "mlp": Architecture(latent_dim=20, encoder_units=(400,), decoder_units=(400,)),
}

KERNEL_SIZE = 3


def resolve_architecture(preset="default", **overrides):
    """The preset's `Architecture` with the non-None `overrides` applied.

    Raises:
        ValueError: unknown preset, or a non-positive size.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}. Valid presets: {', '.join(sorted(PRESETS))}.")
    changes = {k: v for k, v in overrides.items() if v is not None}
    for key in ("conv_filters", "encoder_units", "decoder_units"):
        if key in changes:
            changes[key] = tuple(int(v) for v in changes[key])
    architecture = dataclasses.replace(PRESETS[preset], **changes)
    sizes = (
        (architecture.latent_dim,)
        + architecture.conv_filters
        + architecture.encoder_units
        + architecture.decoder_units
    )
    if any(int(size) <= 0 for size in sizes):
        raise ValueError(
            f"latent_dim and every layer width must be positive integers; got {architecture}."
        )
    return architecture


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


def build_encoder(image_shape, architecture, activation="relu"):
    """Functional encoder: images -> `[mean, log_var]`."""
    _check_image_shape(image_shape, architecture)
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for filters in architecture.conv_filters:
        x = keras.layers.Conv2D(
            filters, KERNEL_SIZE, strides=2, padding="same", activation=activation
        )(x)
    x = keras.layers.Flatten()(x)
    for units in architecture.encoder_units:
        x = keras.layers.Dense(units, activation=activation)(x)
    mean = keras.layers.Dense(architecture.latent_dim, name="mean")(x)
    log_var = keras.layers.Dense(architecture.latent_dim, name="log_var")(x)
    return keras.Model(images, [mean, log_var], name="encoder")


def build_decoder(image_shape, architecture, activation="relu"):
    """Functional decoder: z -> per-pixel logits `[batch, H, W, C]`."""
    _check_image_shape(image_shape, architecture)
    height, width, channels = image_shape
    z = keras.Input(shape=(architecture.latent_dim,), name="z")
    x = z
    for units in architecture.decoder_units:
        x = keras.layers.Dense(units, activation=activation)(x)
    if architecture.conv_filters:
        factor = 2 ** len(architecture.conv_filters)
        start = (height // factor, width // factor, architecture.conv_filters[-1])
        x = keras.layers.Dense(math.prod(start), activation=activation)(x)
        x = keras.layers.Reshape(start)(x)
        for filters in reversed(architecture.conv_filters):
            x = keras.layers.Conv2DTranspose(
                filters, KERNEL_SIZE, strides=2, padding="same", activation=activation
            )(x)
        logits = keras.layers.Conv2DTranspose(channels, KERNEL_SIZE, padding="same", name="logits")(
            x
        )
    else:
        x = keras.layers.Dense(height * width * channels)(x)
        logits = keras.layers.Reshape(tuple(image_shape), name="logits")(x)
    return keras.Model(z, logits, name="decoder")
