"""Train a keras_vae VAE: `python train.py --help`.

Parses arguments into a TrainingConfig (whose fields define the flags) and
calls keras_vae.training.train.train_and_evaluate; all logic lives in the package.
"""

import argparse
import sys

from keras_vae.cli import interrupts, native_logs
from keras_vae.training.config import add_config_flags, config_from_flags


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train a variational autoencoder with model.fit and write a run dir "
        "(config.json, model.keras, TensorBoard logs, metrics.json, samples.png, "
        "reconstructions.png, export/). Running the same command again resumes an "
        "interrupted run.",
    )
    add_config_flags(parser)
    parser.add_argument(
        "--run-dir",
        default="runs/latest",
        help="Output directory of the run (default: %(default)s).",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        help="fit verbosity: 0 silent, 1 progress bar, 2 per epoch (default: %(default)s).",
    )
    return parser.parse_args(argv)


def main(argv=None):
    """train.py's command line; `argv` None means the process's own arguments."""
    args = parse_args(argv)  # --help and bad flags exit here, before TensorFlow loads
    status, metrics = interrupts.finish(
        lambda: _train(args), "train.py", "run the same command to resume", argv is None
    )
    if status:
        return status
    if not metrics:
        print("worker done (only the chief evaluates and writes the run dir)")
        return 0
    print(
        "test: negative_elbo {negative_elbo:.2f}  reconstruction_loss {reconstruction_loss:.2f}  "
        "kl_loss {kl_loss:.2f}  loss {loss:.2f}  (nats per image)".format(**metrics)
    )
    print(f"run dir: {args.run_dir}")
    return 0


def _train(args):
    """`(error, metrics)`: train_and_evaluate's metrics, or the error to print in one line."""
    error = metrics = None
    with native_logs.filtered_stderr():
        import tensorflow as tf  # TensorFlow loads here

        from keras_vae.export.generator import ExportError

        try:
            config = config_from_flags(args)
            from keras_vae.training.train import train_and_evaluate

            metrics = train_and_evaluate(config, args.run_dir, verbose=args.verbose)
        # DataError and RunDirInUse are among them; ExportError: the export's checks failed.
        except (ValueError, OSError, ExportError) as caught:
            error = caught
        except tf.errors.UnavailableError as caught:  # a cluster peer went away
            error = caught.message.splitlines()[0]
    return error, metrics


if __name__ == "__main__":
    sys.exit(main())
