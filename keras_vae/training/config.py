"""Run configuration as a value: a dataclass saved as config.json in every run dir.

Each field of `TrainingConfig` carries its help text, its command-line parser
and its check in `dataclasses.field(metadata=...)`; `add_config_flags` derives
train.py's flags from them and `validate` checks them, so a new field needs
one edit to appear in config.json, the CLI and `--help`. No TensorFlow import.
"""

import argparse
import dataclasses
import json
import math
import os

from keras_vae.datasets.mnist import DEBIAN_FASHION_MNIST_DIR
from keras_vae.models import presets
from keras_vae.utils import names

# The largest latent space train.py builds: far more dimensions than any preset
# uses, and the fitted priors' EM holds d x d statistics per code block.
MAX_LATENT_DIM = 1024
# The side of folder and CelebA pictures without --image-size.
DEFAULT_IMAGE_SIZE = 64
# NumPy and Keras seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1


def option(default, help, parse=None, choices=None, minimum=None, maximum=None, many=False):
    """A dataclass field with what the CLI and `validate` need to know of it.

    Args:
        default: the field's default.
        help: one sentence for `--help`.
        parse: turns the flag's string into the value (`int`, `float`...);
            `None` keeps the string. A bool field becomes an on/off flag.
        choices: the valid values (from `keras_vae.utils.names`), checked by
            `names.check_choice` and listed in `--help`.
        minimum: "positive" (> 0) or "non-negative" (>= 0); `None` values
            are not checked.
        maximum: the largest valid value, or `None`.
        many: the field is a tuple of such values (a flag that takes any
            number of them, none included); each value is checked.

    Every float field must also be finite (no inf or nan).
    """
    metadata = {
        "help": help,
        "parse": parse,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "many": many,
    }
    return dataclasses.field(default=default, metadata=metadata)


def _gaussian_scale(value):
    """The --gaussian-scale flag's value: 'learned' or a float (checked by the config)."""
    if value == "learned":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'learned' or a positive number; got {value!r}"
        ) from None


# What a config.json without the field trained with, where the field's default
# is not that: such runs trained under N(0, I).
WITHOUT_THE_FIELD = {"learned_prior": "standard"}
# The prior in the bound when none is named: the VampPrior, which a conditional VAE
# does not take.
DEFAULT_LEARNED_PRIOR = "vamp"


@dataclasses.dataclass
class TrainingConfig:
    """Everything that defines a training run.

    Model fields (`preset`, `latent_dim`, `likelihood`, `gaussian_scale`,
    `beta`, `seed`, `learned_prior`, `pseudo_inputs`) go to `keras_vae.VAE`
    (`keras_vae.ConditionalVAE` with `conditional`, told the data's labels);
    the rest drive data and `fit`.
    Every field's meaning is its `help` below (also `python train.py --help`).
    """

    dataset: str = option(
        "fashion_mnist",
        "Dataset to train on: an IDX dataset, a folder of pictures (--data-dir) or CelebA.",
        choices=names.DATASETS,
    )
    data_dir: str | None = option(
        None,
        "The dataset's directory: the four IDX files; the folder of pictures (class "
        "sub-folders, attributes.csv); CelebA's original files. Default: Debian's "
        "/usr/share/datasets/fashion-mnist for fashion_mnist when present, else "
        "tensorflow-datasets (downloads when online).",
    )
    image_size: str | None = option(
        None,
        "Side (64) or HEIGHTxWIDTH (48x64) the pictures of folder and celeba are "
        "centre-cropped and resized to (default: 64); IDX datasets are 28x28.",
    )
    channels: int | None = option(
        None,
        "1 (grey) or 3 (RGB) for folder and celeba (default: 3); IDX datasets are grey.",
        parse=int,
    )
    strict: bool = option(
        False, "An unreadable file in the folder is an error (default: skipped, and counted)."
    )
    cache: bool = option(
        False,
        "Decode the folder or CelebA once into a uint8 file in RUN/cache and read it from "
        "there (one byte per pixel on disk; nothing more in memory).",
    )
    background: str = option(
        "white",
        "What transparent pixels of folder pictures become.",
        choices=names.BACKGROUNDS,
    )
    preset: str = option("default", "Architecture.", choices=names.PRESETS)
    latent_dim: int | None = option(
        None,
        "Size of z (default: the preset's).",
        parse=int,
        minimum="positive",
        maximum=MAX_LATENT_DIM,
    )
    likelihood: str = option("bernoulli", "Pixel likelihood.", choices=names.LIKELIHOODS)
    gaussian_scale: float | str = option(
        "learned",
        "Gaussian likelihood's pixel std: 'learned' or a positive float.",
        parse=_gaussian_scale,
    )
    beta: float = option(1.0, "KL weight.", parse=float, minimum="non-negative")
    conditional: bool = option(
        False,
        "Train a conditional VAE on the images and their labels (classes, attributes), "
        "which draws images of a requested label (keras-vae generate --label).",
    )
    learned_prior: str | None = option(
        None,
        "The prior in the model's own bound while it trains: vamp, the VampPrior (a mixture "
        "of the encoder's posteriors at --pseudo-inputs learned images), or standard, N(0, I). "
        "Default: vamp; standard with --conditional (the only one it takes).",
        choices=names.LEARNED_PRIORS,
    )
    pseudo_inputs: int | None = option(
        None,
        "The VampPrior's number of pseudo-inputs, started at training images (default: 100).",
        parse=int,
        minimum="positive",
    )
    kl_warmup_epochs: int = option(
        0,
        "Ramp the KL weight linearly from 0 to beta over this many epochs (0: off).",
        parse=int,
        minimum="non-negative",
    )
    epochs: int = option(30, "Training epochs.", parse=int, minimum="positive")
    batch_size: int = option(
        128, "Batch size (global, over all replicas).", parse=int, minimum="positive"
    )
    learning_rate: float = option(1e-3, "Adam learning rate.", parse=float, minimum="positive")
    steps_per_execution: int = option(
        16,
        "Training steps per call of the compiled step, at most (rounded down to a divisor of "
        "the steps per epoch, so epochs keep their length); fewer Python round trips per step.",
        parse=int,
        minimum="positive",
    )
    seed: int = option(
        0,
        "Random seed of the split, the shuffles and the model.",
        parse=int,
        minimum="non-negative",
        maximum=MAX_SEED,
    )
    validation_size: int = option(
        5000,
        "Images held out of the training split (a seeded random choice) for val_* curves "
        "and checkpoint selection (0: none).",
        parse=int,
        minimum="non-negative",
    )
    train_subset: int = option(
        0, "Use only the first N training images (0: all).", parse=int, minimum="non-negative"
    )
    test_subset: int = option(
        0, "Evaluate on the first N test images only (0: all).", parse=int, minimum="non-negative"
    )
    strategy: str = option(
        "auto",
        "tf.distribute strategy (multi_worker reads TF_CONFIG; run the same command on "
        "every worker).",
        choices=names.STRATEGIES,
    )
    prior: str = option(
        "gmm",
        "Latent prior fitted to the training codes after training, which samples.png and "
        "the exported generator draw from (gmm and two_stage, a second VAE on the codes, "
        "also fit the Gaussian; standard: N(0, I), nothing fitted; vamp: the VampPrior the "
        "model learned, with --learned-prior vamp).",
        choices=names.PRIORS,
    )
    prior_components: int | None = option(
        None,
        "Components of the gmm prior (default: chosen by the validation codes' "
        "log-likelihood among 1, 5, 10, 20, 50).",
        parse=int,
        minimum="positive",
    )
    prior_codes: str = option(
        "mean",
        "What the prior is fitted to: posterior means, or one z ~ q(z | x) per image.",
        choices=names.PRIOR_CODES,
    )
    mixed_precision: bool = option(
        False, "Train in mixed_float16 (GPU) or mixed_bfloat16 (CPU); losses stay float32."
    )
    export_variants: tuple = option(
        names.TFLITE_VARIANTS,
        "LiteRT variants of the run's export (RUN/export), float32 among them: "
        "RUN/generated_tflite.png is drawn by it.",
        choices=names.TFLITE_VARIANTS,
        many=True,
    )
    export_static_batch_sizes: tuple = option(
        names.STATIC_BATCH_SIZES,
        "Batch sizes of the export's static-shape .tflite files (CompiledModel, GPU, "
        "LiteRT.js; keras-vae web uses 16); none: only the dynamic ones.",
        parse=int,
        minimum="positive",
        maximum=names.MAX_STATIC_BATCH,
        many=True,
    )

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if field.metadata["many"]:  # JSON and argparse give lists
                setattr(self, field.name, tuple(getattr(self, field.name)))
        if self.data_dir is not None:
            # Absolute, so the run dir's config.json works from any directory.
            self.data_dir = os.path.abspath(os.path.expanduser(self.data_dir))
        if self.learned_prior is None:
            self.learned_prior = "standard" if self.conditional else DEFAULT_LEARNED_PRIOR
        self.validate()

    def validate(self):
        """Raises ValueError with what is wrong (the field and its flag) and the valid choices."""
        for field in dataclasses.fields(self):
            values = getattr(self, field.name)
            for value in values if field.metadata["many"] else (values,):
                _check_value(field, value)
        if self.kl_warmup_epochs > self.epochs:
            raise ValueError(
                f"kl_warmup_epochs ({self.kl_warmup_epochs}) is longer than epochs "
                f"({self.epochs}): the KL weight would never reach beta. Use at most "
                f"--kl-warmup-epochs {self.epochs}, or train longer."
            )
        if self.test_subset == 1:
            raise ValueError(
                "test_subset must be 0 (all) or at least 2: the TensorBoard interpolation "
                "grid pairs test images."
            )
        names.check_gaussian_scale(self.gaussian_scale)
        if self.pseudo_inputs is not None and self.learned_prior != "vamp":
            raise ValueError(
                f"pseudo_inputs (--pseudo-inputs {self.pseudo_inputs}) is the VampPrior's: "
                "pass --learned-prior vamp too, or drop it."
            )
        if self.conditional and self.learned_prior != "standard":
            raise ValueError(
                f"--conditional trains under N(0, I): drop --learned-prior {self.learned_prior} "
                "(or pass --learned-prior standard)."
            )
        if self.prior == "vamp" and self.learned_prior != "vamp":
            raise ValueError(
                "prior (--prior vamp) samples from the VampPrior the model learned: pass "
                "--learned-prior vamp too, or another --prior (gmm, gaussian, standard)."
            )
        self._check_data()
        if "float32" not in self.export_variants:
            raise ValueError(
                "export_variants (--export-variants) must include float32: the run's "
                f"generated_tflite.png is drawn by it; got {' '.join(self.export_variants)}."
            )

    def _check_data(self):
        self._check_data_flags()
        strides = len(presets.PRESETS[self.preset].conv_filters)
        factor = 2**strides
        height, width, _ = self.image_shape()
        if height % factor == 0 and width % factor == 0:
            return
        needs = f"--preset {self.preset}'s {strides} stride-2 convolutions need a height and width"
        if self.dataset in names.IDX_DATASETS:
            raise ValueError(
                f"{needs} divisible by {factor}, and {self.dataset} images are {height}x{width}: "
                "use another --preset."
            )
        raise ValueError(
            f"{needs} divisible by {factor} ({factor * 2}, {factor * 3}, {factor * 4}...); "
            f"--image-size {self.image_size or DEFAULT_IMAGE_SIZE} is {height}x{width}: pass "
            "another --image-size, or another --preset."
        )

    def _check_data_flags(self):
        if self.dataset in names.IDX_DATASETS:
            if self.image_size is not None and names.parse_image_size(self.image_size) != (28, 28):
                raise ValueError(
                    f"image_size (--image-size) {self.image_size!r}: {self.dataset} is 28x28; "
                    "drop the flag (it is for --dataset folder and celeba)."
                )
            if self.channels not in (None, 1):
                raise ValueError(
                    f"channels (--channels) {self.channels}: {self.dataset} is grey; drop "
                    "the flag (it is for --dataset folder and celeba)."
                )
            return
        if self.image_size is not None:
            names.parse_image_size(self.image_size)
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels (--channels) must be 1 or 3; got {self.channels}.")
        if self.dataset == "folder" and self.data_dir is None:
            raise ValueError(
                "--dataset folder needs --data-dir: the folder of pictures (sub-folders "
                "are classes)."
            )

    def image_shape(self):
        """`(H, W, C)` of the images of folder and celeba (IDX datasets are 28x28x1)."""
        if self.dataset in names.IDX_DATASETS:
            return (28, 28, 1)
        height, width = names.parse_image_size(self.image_size or DEFAULT_IMAGE_SIZE)
        return (height, width, self.channels or 3)

    def model_kwargs(self, image_shape):
        """Keyword arguments for `keras_vae.VAE`."""
        return {
            "image_shape": tuple(image_shape),
            "preset": self.preset,
            "latent_dim": self.latent_dim,
            **{option: getattr(self, option) for option in names.VAE_OPTIONS},
        }

    def effective(self):
        """`to_dict()` with the defaults that other fields decide filled in.

        What the run computes with: two configs of the same run are equal here
        whether a value was given or left to its default (`--latent-dim 32` with
        `--preset default`, `--image-size 32x32` and `32`, Debian's Fashion-MNIST
        directory named or found).
        """
        values = self.to_dict()
        values["latent_dim"] = self.latent_dim or presets.PRESETS[self.preset].latent_dim
        if self.learned_prior == "vamp" and self.pseudo_inputs is None:
            values["pseudo_inputs"] = names.DEFAULT_PSEUDO_INPUTS
        height, width, channels = self.image_shape()
        values["image_size"], values["channels"] = f"{height}x{width}", channels
        if (
            self.data_dir is None
            and self.dataset == "fashion_mnist"
            and os.path.isdir(DEBIAN_FASHION_MNIST_DIR)
        ):
            values["data_dir"] = DEBIAN_FASHION_MNIST_DIR
        return values

    def to_dict(self):
        """The fields as JSON values (tuples as lists), as config.json holds them."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict such as `to_dict()`'s; unknown keys are an error.

        A field the dict lacks (a config.json written before the field
        existed) is `WITHOUT_THE_FIELD`'s value where it has one, else the default.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown configuration keys {unknown}. Valid keys: {', '.join(sorted(known))}."
            )
        return cls(**{**WITHOUT_THE_FIELD, **values})

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check_value(field, value):
    """Raises ValueError unless `value` is valid for `field` (one of a tuple's values)."""
    meta = field.metadata
    named = f"{field.name} ({flag_name(field.name)})"
    if meta["choices"] is not None:
        # A tuple's values are named one at a time: "export variant".
        kind = field.name.replace("_", " ").removesuffix("s") if meta["many"] else field.name
        names.check_choice(kind, value, meta["choices"])
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{named} must be a finite number; got {value}.")
    if meta["minimum"] == "positive" and value is not None and not value > 0:
        raise ValueError(f"{named} must be > 0; got {value}.")
    if meta["minimum"] == "non-negative" and value is not None and not value >= 0:
        raise ValueError(f"{named} must be >= 0; got {value}.")
    if meta["maximum"] is not None and value is not None and value > meta["maximum"]:
        raise ValueError(f"{named} must be at most {meta['maximum']}; got {value}.")


def flag_name(field_name):
    """The command-line flag of a config field: `latent_dim` -> `--latent-dim`."""
    return "--" + field_name.replace("_", "-")


def add_config_flags(parser, config_class=TrainingConfig):
    """Adds one flag per field of `config_class` to an `argparse` parser.

    The flag is the field name with dashes (`--latent-dim`), its help the
    field's, with the choices and default appended. Values are parsed but not
    checked here: `config_from_flags` builds the config, whose `validate`
    gives the package's messages.
    """
    for field in dataclasses.fields(config_class):
        meta = field.metadata
        help_text = meta["help"]
        if meta["choices"]:
            help_text += f" One of: {', '.join(meta['choices'])}."
        if field.type is bool or isinstance(field.default, bool):
            parser.add_argument(
                flag_name(field.name), action="store_true", default=field.default, help=help_text
            )
            continue
        if meta["many"]:
            parser.add_argument(
                flag_name(field.name),
                nargs="*",
                type=meta["parse"] or str,
                default=list(field.default),
                help=help_text + f" (default: {' '.join(map(str, field.default))})",
            )
            continue
        parser.add_argument(
            flag_name(field.name),
            type=meta["parse"] or str,
            default=field.default,
            # A None default is decided by other flags, which the help text says.
            help=help_text + ("" if field.default is None else " (default: %(default)s)"),
        )


def config_from_flags(args, config_class=TrainingConfig):
    """The config of the parsed `args` (an `argparse.Namespace` or any object)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return config_class(**{f.name: values[f.name] for f in dataclasses.fields(config_class)})
