"""`keras-vae` (also `python -m keras_vae`): the latent space toolkit on the command line.

    keras-vae train       [--dataset fashion_mnist] [--run-dir runs/latest] (train.py's flags)
    keras-vae generate    --model RUN [--n 64 --seed 0] [--prior gmm] [--out generated.png]
    keras-vae fit-prior   --model RUN [--prior gmm] [--components K] [--codes mean]
    keras-vae interpolate --model RUN (--indices I J ... | --images A B ...) [--steps 10]
    keras-vae attribute   --model RUN --attribute Smiling [--out smiling.npy]
    keras-vae edit        --model RUN (--indices ... | --images ...) --vector V.npy [--alphas ...]
    keras-vae average     --model RUN [--attribute A ...] [--out average.png]
    keras-vae export      --model RUN [--out DIR] [--overwrite] [--variants ...] [--prior P]
    keras-vae web         [--run-dir RUN | --export DIR] [--port 8000] [--no-serve]

RUN is a run dir of `keras-vae train` (its config.json names the dataset) or a
.keras file. `train` writes a run dir and prints its test metrics; each other
command writes one PNG (`attribute` a .npy, `export` a directory, `fit-prior`
the model file), creating missing parent directories, and prints its path.
Errors are one line on stderr and exit status 2. Decoding and encoding run as compiled
`tf.function`s (`keras_vae.generation.Codec`), not `Model.predict`.
"""

from keras_vae.cli import commands, interrupts, native_logs, train
from keras_vae.cli.commands import default_export_dir
from keras_vae.cli.parser import build_parser

__all__ = ["build_parser", "default_export_dir", "main"]


def main(argv=None):
    """keras-vae's command line; `argv` None means the process's own arguments."""
    args = build_parser().parse_args(argv)  # --help and bad flags exit here
    if args.command == "train":
        return train.run(args, "keras-vae train", own_process=argv is None)
    status, path = interrupts.finish(
        lambda: _run(args),
        f"keras-vae {args.command}",
        "run the same command again",
        argv is None,
    )
    if status == 0 and path is not None:
        print(path)
    return status


def _run(args):
    """`(error, path)`: the path the command wrote (None for web), or the error to print."""
    if args.command == "web":  # no TensorFlow: the page is built from the export's files
        try:
            commands.web(args)
        except (ValueError, OSError) as error:
            return error, None
        return None, None
    error = path = None
    with native_logs.filtered_stderr():
        from keras_vae.export.generator import ExportError

        try:
            path = commands.run(args)
        # DataError and ModelFileError are ValueErrors.
        except (ValueError, OSError, ExportError) as caught:
            error = caught
    return error, path
