"""`keras-vae train` (and train.py): the run configuration's flags, `train_and_evaluate`.

The flags come from `keras_vae.training.config.TrainingConfig`'s fields, so
`--help` and a bad flag answer before TensorFlow loads.
"""

from keras_vae.cli import interrupts, native_logs
from keras_vae.training.config import add_config_flags, config_from_flags

DESCRIPTION = (
    "Train a variational autoencoder with model.fit and write a run dir (config.json, "
    "model.keras, TensorBoard logs, metrics.json, samples.png, reconstructions.png, export/). "
    "Running the same command again resumes an interrupted run."
)


def add_arguments(parser):
    """The training flags: one per config field, `--run-dir` and `--verbose`."""
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


def run(args, prog, own_process):
    """Trains as the parsed `args` say and prints the test metrics: the exit status.

    Args:
        args: parsed by a parser given `add_arguments`.
        prog: the program's name in the messages ("keras-vae train", "train.py").
        own_process: True when the command is the process (see `interrupts.finish`).
    """
    status, metrics = interrupts.finish(
        lambda: _train(args), prog, "run the same command to resume", own_process
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
