"""The named encoder/decoder architectures, as plain values (no TensorFlow import).

`keras_vae.models.networks` builds Keras networks from an `Architecture`;
`keras_vae.utils.names.PRESETS` lists the names for configuration and the CLI.
"""

import dataclasses

from keras_vae.utils import names


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
    # For colour pictures of 64x64 (folders, CelebA): four stride-2 convolutions
    # down to 4x4x256, so any size divisible by 16; a 64-dim latent space.
    "conv_deep": Architecture(
        latent_dim=64, conv_filters=(32, 64, 128, 256), encoder_units=(512,), decoder_units=(512,)
    ),
    # pytorch/examples vae/main.py: 784-400-20 and back.
    "mlp": Architecture(latent_dim=20, encoder_units=(400,), decoder_units=(400,)),
}


def resolve(preset="default", **overrides):
    """The preset's `Architecture` with the non-None `overrides` applied.

    Raises:
        ValueError: unknown preset, or a non-positive size.
    """
    names.check_choice("preset", preset, names.PRESETS)
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
