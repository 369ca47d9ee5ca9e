"""Train a keras_vae VAE: `python train.py --help`, the same as `keras-vae train`.

The flags are keras_vae.training.config.TrainingConfig's fields; all logic lives
in the package (keras_vae.cli.train, keras_vae.training.train).
"""

import argparse
import sys

from keras_vae.cli import train


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="train.py", description=train.DESCRIPTION)
    train.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """train.py's command line; `argv` None means the process's own arguments."""
    args = parse_args(argv)  # --help and bad flags exit here, before TensorFlow loads
    return train.run(args, "train.py", own_process=argv is None)


if __name__ == "__main__":
    sys.exit(main())
