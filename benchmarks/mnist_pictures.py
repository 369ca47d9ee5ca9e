"""The pictures of a VAE tutorial, on real MNIST digits, made with train.py and keras-vae.

    python -m benchmarks mnist-pictures       (make bench NAME=mnist-pictures; about 3 minutes)

Reads the 10,000 real digits of `--mnist-dir` (IDX files, as
`train.py --dataset mnist --data-dir` does), trains `make train`'s default
VAE on them (`--run-dir`, reused when done) and a 2-D one, and writes into
--docs:
  mnist_1_to_7.png         1s morphing into 7s (`keras-vae interpolate`)
  mnist_seven_vector.png   the "7" attribute vector added to 1s (`attribute`, `edit`)
  mnist_average.png        the average digit of each class, and of the rest (`average`)
  mnist_latent_map.png     a latent_dim=2 VAE decoding a 20 x 20 grid of z in [-2, 2]^2
(the standard vs fitted prior grids are the `prior` benchmark's prior_samples_mnist.png).
Prints each command it runs.
"""

import os
import sys

import numpy as np

from benchmarks.common import argument_parser
from keras_vae import cli, datasets, generation
from keras_vae.training import run_dir
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from keras_vae.utils import images as image_io


def keras_vae(*argv):
    argv = [str(arg) for arg in argv]
    print("keras-vae " + " ".join(argv), file=sys.stderr, flush=True)
    if cli.main(argv) != 0:
        raise SystemExit(f"keras-vae {argv[0]} failed")


def train(config, directory):
    print(f"train.py --run-dir {directory} (config: {config.to_json()})", file=sys.stderr)
    return training.train_and_evaluate(config, directory, verbose=0)


def latent_map(directory, path, points=20, limit=2.0):
    model, _ = run_dir.load_model(directory)
    axis = np.linspace(-limit, limit, points)
    z = np.stack(np.meshgrid(axis, -axis), axis=-1).reshape(-1, 2)[:, ::-1]
    images = generation.Codec(model).decode(z.astype(np.float32))
    image_io.save_png(path, image_io.grid(images, points, points))


def main(argv=None, prog="mnist-pictures"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist10k")
    parser.add_argument("--run-dir", default="runs/mnist-default")
    parser.add_argument("--map-run-dir", default="runs/mnist-latent2")
    parser.add_argument("--docs", default="docs")
    parser.add_argument("--pairs", type=int, default=4, help="1 -> 7 morphs")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.mnist_dir):
        raise SystemExit(f"--mnist-dir {args.mnist_dir} is missing (the mnist10k IDX files).")
    config = TrainingConfig(
        dataset="mnist", data_dir=args.mnist_dir, validation_size=1000, learned_prior="standard"
    )
    train(config, args.run_dir)
    _, labels = datasets.load("mnist", "test", args.mnist_dir)
    ones, sevens = np.flatnonzero(labels == 1), np.flatnonzero(labels == 7)
    pairs = np.stack([ones[: args.pairs], sevens[: args.pairs]], axis=1).ravel()
    data = ["--dataset", "mnist", "--data-dir", args.mnist_dir]
    docs = args.docs
    keras_vae(
        "interpolate", "--model", args.run_dir, "--indices", *pairs, "--steps", 10,
        "--out", f"{docs}/mnist_1_to_7.png", *data,
    )  # fmt: skip
    vector = os.path.join(args.run_dir, "seven.npy")
    keras_vae(
        "attribute", "--model", args.run_dir, "--attribute", 7, "--split", "train",
        "--out", vector, *data,
    )  # fmt: skip
    keras_vae(
        "edit", "--model", args.run_dir, "--indices", *ones[: args.pairs], "--vector", vector,
        "--alphas", 0, 0.25, 0.5, 0.75, 1, 1.25, "--out", f"{docs}/mnist_seven_vector.png", *data,
    )  # fmt: skip
    keras_vae(
        "average", "--model", args.run_dir, "--split", "train",
        "--out", f"{docs}/mnist_average.png", *data,
    )  # fmt: skip
    two_d = TrainingConfig(
        dataset="mnist",
        data_dir=args.mnist_dir,
        validation_size=1000,
        latent_dim=2,
        learned_prior="standard",
    )
    train(two_d, args.map_run_dir)
    latent_map(args.map_run_dir, f"{docs}/mnist_latent_map.png")
    print(f"wrote {docs}/mnist_*.png", file=sys.stderr)
