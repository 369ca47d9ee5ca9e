"""The valid names of every choice the package offers, and the one error message for a bad one.

Imports nothing, so configuration, `--help` and argument checks never load
TensorFlow; every other module takes its names from here.
"""

import math

# The architectures of keras_vae.models.presets.PRESETS (a test keeps the two equal).
PRESETS = ("conv", "conv_deep", "default", "keras_example", "mlp")
LIKELIHOODS = ("bernoulli", "gaussian")
# The MNIST family: 28x28 grey IDX files (or tensorflow-datasets), held in memory.
IDX_DATASETS = ("fashion_mnist", "mnist")
# Datasets that `keras-vae train` trains on: the IDX ones, a folder of pictures and
# CelebA (both streamed from disk, at any --image-size).
DATASETS = (*IDX_DATASETS, "folder", "celeba")
# Datasets with attributes for the latent toolkit (class labels count as attributes).
ATTRIBUTE_DATASETS = DATASETS
# What transparent pixels become.
BACKGROUNDS = ("white", "black")
SPLITS = ("train", "test")
CELEBA_SPLITS = ("train", "validation", "test", "all")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
INTERPOLATIONS = ("slerp", "lerp")
TFLITE_VARIANTS = ("float32", "float16", "int8")
# The batch sizes of the exported static-shape .tflite files (keras_vae.export.generator):
# one image (a phone drawing one picture, a slider) and a grid of 16 (the web explorer's).
STATIC_BATCH_SIZES = (1, 16)
# The largest static batch: a file's tensors, its calibration codes and its
# parity check grow with it (a batch of 1024 64x64 RGB images is 50 MB a tensor).
MAX_STATIC_BATCH = 1024
# Latent priors (keras_vae.models.priors): N(0, I), a fitted full-covariance Gaussian,
# a fitted mixture, the VampPrior a VAE learned with its weights, a second VAE
# trained on the codes (the two-stage VAE).
PRIORS = ("standard", "gaussian", "gmm", "vamp", "two_stage")
# The prior in a VAE's own bound while it trains: N(0, I), or the VampPrior (a mixture
# of the encoder's posteriors at learned pseudo-inputs).
LEARNED_PRIORS = ("standard", "vamp")
# The VampPrior's number of pseudo-inputs when none is given.
DEFAULT_PSEUDO_INPUTS = 100
# keras_vae.VAE's own options beyond its networks': its config holds them under
# these names, and a TrainingConfig has a field of each name.
VAE_OPTIONS = ("likelihood", "gaussian_scale", "beta", "seed", "learned_prior", "pseudo_inputs")
# What a conditional VAE's labels are: one class of several (a one-hot vector),
# or binary attributes (a 0/1 vector, any number of them set).
LABEL_TYPES = ("class", "attributes")
# What the fitted priors are fitted to: posterior means, or one z ~ q(z | x) per image.
PRIOR_CODES = ("mean", "sample")


def _plural(kind):
    last = kind.rsplit(" ", 1)[-1]
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return kind[:-1] + "ies"
    return kind + "s"


def check_choice(kind, value, choices):
    """Returns `value` if it is one of `choices`, else raises the package's one message.

    `check_choice("preset", "big", PRESETS)` raises
    ValueError("Unknown preset 'big'. Valid presets: conv, default, keras_example, mlp.")
    """
    if value in choices:
        return value
    raise ValueError(
        f"Unknown {kind} {value!r}. Valid {_plural(kind)}: {', '.join(map(str, choices))}."
    )


def _folded(name):
    return "".join(character for character in str(name).lower() if character.isalnum())


def name_index(kind, name, candidates):
    """Position of `name` in `candidates`, ignoring case, spaces and punctuation.

    "ankle_boot" finds "Ankle boot", "smiling" finds "Smiling"; any other name
    raises `check_choice`'s ValueError.
    """
    folded = [_folded(candidate) for candidate in candidates]
    if _folded(name) not in folded:
        check_choice(kind, name, candidates)  # raises: name is not there
    return folded.index(_folded(name))


def parse_image_size(text):
    """`"64"` -> (64, 64), `"48x64"` -> (48, 64): (height, width).

    Raises:
        ValueError: anything else, or a side below 1.
    """
    parts = str(text).lower().split("x")
    try:
        sides = tuple(int(part) for part in parts)
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2 or min(sides) < 1:
        raise ValueError(
            f"image_size (--image-size) must be a side (64) or height x width (48x64); "
            f"got {text!r}."
        )
    return sides


def check_gaussian_scale(value):
    """Raises ValueError unless `value` is "learned" or a positive finite number."""
    if value != "learned" and not (math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(
            "gaussian_scale (--gaussian-scale) must be 'learned' or a positive finite float; "
            f"got {value!r}."
        )
