"""Train a keras_vae VAE: `python train.py --help`.

Parses arguments into a TrainingConfig and calls
keras_vae.training.train_and_evaluate; all logic lives in the package.
"""

import argparse
import dataclasses
import sys


def parse_args(argv, defaults):
    parser = argparse.ArgumentParser(
        description="Train a variational autoencoder with model.fit and write a run dir "
        "(config.json, model.keras, TensorBoard logs, metrics.json, samples.png, "
        "reconstructions.png). Running the same command again resumes an interrupted run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", default=defaults.dataset, help="fashion_mnist or mnist.")
    parser.add_argument(
        "--data-dir",
        default=defaults.data_dir,
        help="Directory holding the four IDX files. Default: Debian's "
        "/usr/share/datasets/fashion-mnist for fashion_mnist when present, else "
        "tensorflow-datasets (downloads when online).",
    )
    parser.add_argument(
        "--preset",
        default=defaults.preset,
        help="Architecture: default, conv, keras_example or mlp.",
    )
    parser.add_argument(
        "--latent-dim", type=int, default=defaults.latent_dim, help="Size of z (default: preset's)."
    )
    parser.add_argument("--likelihood", default=defaults.likelihood, help="bernoulli or gaussian.")
    parser.add_argument(
        "--gaussian-scale",
        default=defaults.gaussian_scale,
        help="Gaussian likelihood's pixel std: 'learned' or a positive float.",
    )
    parser.add_argument("--beta", type=float, default=defaults.beta, help="KL weight (>= 0).")
    parser.add_argument(
        "--kl-warmup-epochs",
        type=int,
        default=defaults.kl_warmup_epochs,
        help="Ramp the KL weight linearly from 0 to beta over this many epochs (0: off).",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="Training epochs.")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="Batch size.")
    parser.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="Adam learning rate."
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="Random seed.")
    parser.add_argument(
        "--validation-size",
        type=int,
        default=defaults.validation_size,
        help="Images held out of the training split for validation (0: none).",
    )
    parser.add_argument(
        "--train-subset",
        type=int,
        default=defaults.train_subset,
        help="Use only the first N training images (0: all).",
    )
    parser.add_argument(
        "--test-subset",
        type=int,
        default=defaults.test_subset,
        help="Evaluate on the first N test images only (0: all).",
    )
    parser.add_argument(
        "--strategy",
        default=defaults.strategy,
        help="tf.distribute strategy: auto, one_device, mirrored or multi_worker "
        "(reads TF_CONFIG; run the same command on every worker).",
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="Train in mixed_float16 (GPU) or mixed_bfloat16 (CPU); losses stay float32.",
    )
    parser.add_argument("--run-dir", default="runs/latest", help="Output directory of the run.")
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        help="fit verbosity: 0 silent, 1 progress bar, 2 per epoch.",
    )
    return parser.parse_args(argv)


def _gaussian_scale(value):
    return value if value == "learned" else float(value)


def main(argv=None):
    from keras_vae.config import TrainingConfig
    from keras_vae.data import DataError
    from keras_vae.training import train_and_evaluate

    args = parse_args(argv, TrainingConfig())
    fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    try:
        values["gaussian_scale"] = _gaussian_scale(values["gaussian_scale"])
        config = TrainingConfig(**values)
        metrics = train_and_evaluate(config, args.run_dir, verbose=args.verbose)
    except (ValueError, DataError, OSError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    if not metrics:
        print("worker done (only the chief evaluates and writes the run dir)")
        return 0
    print(
        "test: negative_elbo {negative_elbo:.2f}  reconstruction_loss {reconstruction_loss:.2f}  "
        "kl_loss {kl_loss:.2f}  loss {loss:.2f}  (nats per image)".format(**metrics)
    )
    print(f"run dir: {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
