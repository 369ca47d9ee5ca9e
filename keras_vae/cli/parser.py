"""`keras-vae`'s command line as a table: each command, its help and its arguments.

No TensorFlow: `keras-vae --help` and a bad flag answer at once.
"""

import argparse
import dataclasses
import math

from keras_vae.cli import train
from keras_vae.utils import images as image_io
from keras_vae.utils import names

_DEFAULT_STATIC_BATCHES = " ".join(map(str, names.STATIC_BATCH_SIZES))


def integer_at_least(minimum):
    """An argparse type: an integer >= `minimum`, else a message naming the bound."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}; got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}; got {value}")
        return value

    return parse


positive_int = integer_at_least(1)  # a count
seed = integer_at_least(0)  # what NumPy and TensorFlow take


def finite_float(text):
    """argparse type of a strength: a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def arg(*flags, **options):
    """One argument: `parser.add_argument(*flags, **options)`."""
    return ("argument", flags, options)


def one_of(*arguments, required=True):
    """Mutually exclusive arguments."""
    return ("exclusive", arguments, {"required": required})


def added_by(function):
    """The arguments `function(parser)` adds (the training flags come from the config)."""
    return ("function", function, {})


def group(title, *arguments):
    """Arguments listed under `title` in --help."""
    return ("group", arguments, {"title": title})


MODEL = arg("--model", required=True, help="A run dir (holding model.keras) or a .keras file.")
PRIOR = arg(
    "--prior",
    choices=names.PRIORS,
    help="Prior of z: standard (N(0, I)) or a fitted one (default: the model's).",
)


def out(default):
    return arg("--out", default=default, help="Output file.")


def dataset(split="test"):
    return group(
        "dataset (default: the run dir's config.json)",
        arg("--dataset", help=f"One of: {', '.join(names.ATTRIBUTE_DATASETS)}."),
        arg("--data-dir", help="IDX directory, or CelebA's original layout (default: tfds)."),
        arg("--split", default=split, help="train or test (CelebA: train, validation, test, all)."),
        arg("--limit", type=positive_int, help="Use only the first N images of the split."),
    )


def inputs(what):
    return group(
        "inputs",
        one_of(
            arg("--indices", type=int, nargs="+", help=f"{what}: dataset indices."),
            arg("--images", nargs="+", help=f"{what}: image files, resized to the model's input."),
        ),
        arg(
            "--background",
            default="white",
            choices=image_io.BACKGROUNDS,
            help="What transparent pixels of --images become. Models trained on MNIST or "
            "Fashion-MNIST expect light objects on black.",
        ),
        arg(
            "--invert",
            action="store_true",
            help="Invert --images (1 - pixel): for dark drawings or clothes on light paper.",
        ),
    )


@dataclasses.dataclass(frozen=True)
class Command:
    help: str
    arguments: tuple
    description: str | None = None
    # False where the help texts say their defaults themselves.
    show_defaults: bool = True


COMMANDS = {
    "train": Command(
        "Train a VAE and write a run dir (the same as train.py).",
        (added_by(train.add_arguments),),
        description=train.DESCRIPTION,
        show_defaults=False,
    ),
    "generate": Command(
        "Decode z drawn from a prior into a grid.",
        (
            MODEL,
            out("generated.png"),
            arg("--n", type=positive_int, default=64, help="Number of images."),
            arg("--seed", type=seed, default=0, help="Seed of the z draws."),
            arg("--cols", type=positive_int, default=8, help="Images per grid row."),
            PRIOR,
            group(
                "a conditional VAE's label (train --conditional)",
                one_of(
                    arg(
                        "--label",
                        help="Draw this class: its name (Sneaker) or index (7).",
                    ),
                    arg(
                        "--attribute",
                        action="append",
                        metavar="NAME=VALUE",
                        help="Draw with this attribute set (Smiling=1); repeat for more, "
                        "the others are 0.",
                    ),
                    arg(
                        "--every-label",
                        action="store_true",
                        help="One row per code, one column per class (or attribute): the "
                        "same z drawn as every class.",
                    ),
                    required=False,
                ),
            ),
        ),
    ),
    "fit-prior": Command(
        "Fit a latent prior to the training codes and save it in the model.",
        (
            MODEL,
            arg(
                "--prior",
                default="gmm",
                choices=names.PRIORS,
                help="What to fit and make the default (gmm also fits the Gaussian; standard "
                "makes N(0, I) the default).",
            ),
            arg(
                "--components",
                type=int,
                help="Mixture components (default: chosen by held-out log-likelihood).",
            ),
            arg("--codes", default="mean", choices=names.PRIOR_CODES),
            arg("--seed", type=seed, default=0, help="Seed of the fit."),
            dataset(split="train"),
        ),
    ),
    "interpolate": Command(
        "Morph one image into another through the latent space.",
        (
            MODEL,
            out("interpolation.png"),
            inputs("pairs of endpoints, one grid row per pair"),
            arg("--steps", type=int, default=10, help="Codes per path (>= 2)."),
            arg("--method", default="slerp", choices=names.INTERPOLATIONS),
            dataset(),
        ),
    ),
    "attribute": Command(
        "Save mean(code | attribute) - mean(code | not) to a .npy file.",
        (
            MODEL,
            out(None),
            arg("--attribute", required=True, help="e.g. Smiling, Eyeglasses, 7."),
            dataset(),
        ),
    ),
    "edit": Command(
        "Add alpha * an attribute vector to images' codes.",
        (
            MODEL,
            out("edit.png"),
            inputs("images to edit, one grid row each"),
            one_of(
                arg("--vector", help="A .npy file written by `keras-vae attribute`."),
                arg("--attribute", help="Compute the vector of this dataset attribute."),
            ),
            arg(
                "--alphas",
                type=finite_float,
                nargs="+",
                default=[0.0, 0.5, 1.0, 1.5, 2.0],
                help="Edit strengths.",
            ),
            dataset(),
        ),
    ),
    "average": Command(
        "Decode the mean code of the images with and without attributes.",
        (
            MODEL,
            out("average.png"),
            arg("--attribute", nargs="+", help="Attributes, one column each (default: all)."),
            dataset(),
        ),
    ),
    "export": Command(
        "Export the decoder as a SavedModel + LiteRT (.tflite) generator.",
        (
            MODEL,
            arg(
                "--out", help="Export directory (default: RUN/export, or next to the .keras file)."
            ),
            arg(
                "--overwrite",
                action="store_true",
                help="Replace an existing export directory (only ever one made by an export).",
            ),
            arg(
                "--variants",
                nargs="+",
                default=argparse.SUPPRESS,  # absent: the run's own (see the help)
                help=f"LiteRT variants to write ({' '.join(names.TFLITE_VARIANTS)}; default: "
                "those of the run dir's own export, else all).",
            ),
            arg(
                "--static-batch-sizes",
                nargs="*",
                default=argparse.SUPPRESS,
                type=int,
                metavar="N",
                help="Batch sizes of the static-shape .tflite files (CompiledModel, GPU, "
                "LiteRT.js), each at most 1024; none: only the dynamic ones (default: those "
                f"of the run dir's own export, else {_DEFAULT_STATIC_BATCHES}).",
            ),
            arg(
                "--preview",
                help="Also write a PNG grid generated by the float32 .tflite to this path.",
            ),
            PRIOR,
        ),
    ),
    "web": Command(
        "Build the latent explorer page of a run and serve it on 127.0.0.1.",
        (
            one_of(
                arg(
                    "--run-dir",
                    help="A run dir of train.py (default: the newest run under ./runs).",
                ),
                arg("--export", help="An export directory (keras-vae export's --out)."),
                required=False,
            ),
            arg("--out", help="Where to write the page (default: RUN/web)."),
            arg("--host", default="127.0.0.1", help="Address to serve on."),
            arg("--port", type=int, default=8000, help="Port (0: any free one)."),
            arg(
                "--node-modules",
                help="node_modules holding @litertjs/core (default: ./node_modules, the "
                "checkout's, then the user cache's).",
            ),
            arg("--no-serve", action="store_true", help="Only write the page."),
        ),
        description="Writes RUN/web/ (the page, LiteRT.js and the run's static-shape .tflite "
        "files) and serves it: open the printed address in a browser.",
    ),
}


def _add(parser, entry):
    """Adds one entry of a command's table (an argument, a group) to `parser`."""
    kind, contents, options = entry
    if kind == "argument":
        parser.add_argument(*contents, **options)
        return
    if kind == "function":
        contents(parser)
        return
    if kind == "exclusive":
        target = parser.add_mutually_exclusive_group(**options)
    else:
        target = parser.add_argument_group(**options)
    for inner in contents:
        _add(target, inner)


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each flag's default, except where the help names it or there is none."""

    def _get_help_string(self, action):
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Arguments no flag takes are reported with the usage of the command they were given to."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.commands = {}  # subcommand name -> its parser

    def parse_args(self, args=None, namespace=None):
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self.commands.get(getattr(parsed, "command", None), self)
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def build_parser():
    """The `keras-vae` argparse parser, one subcommand per entry of `COMMANDS`."""
    parser = _Parser(
        prog="keras-vae",
        description="Train a keras_vae VAE; then its latent space toolkit: generate, "
        "interpolate, attribute vectors, edits and average images; export; the web explorer.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        subparser = subcommands.add_parser(
            name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=_DefaultsHelpFormatter
            if command.show_defaults
            else argparse.HelpFormatter,
        )
        for entry in command.arguments:
            _add(subparser, entry)
        parser.commands[name] = subparser
    return parser
