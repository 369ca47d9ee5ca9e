"""Sample quality and likelihood of fitted and learned latent priors on Fashion-MNIST and MNIST.

    python -m benchmarks prior          (make bench NAME=prior)

For each dataset, within `make train`'s budget (the `default` preset, 30
epochs of batch 128):
  - "VAE N(0, I) (train.py)": train.py with `--learned-prior standard`
    (`--run-dir`; trained if missing), sampled from each prior;
  - "VAE vamp K=k" for each k of `--pseudo-inputs`: train.py with
    `--learned-prior vamp --pseudo-inputs k --prior vamp` (the same fit path
    and budget, so their training seconds compare; the export is float32
    only), in `--scratch`; K=100 is `make train`'s default model;
  - "VAE beta=B" (`--low-beta`) and the deterministic "Autoencoder" (the RAE
    baseline of Ghosh et al. 2020), trained here on the same training split
    with the same budget (plain Adam, no steps_per_execution).
Each model's codes (posterior means) of the training split are fitted with a
full-covariance Gaussian and mixtures of `--components` components; "gmm
(auto)" is the mixture whose validation codes score best (train.py's choice).
"two_stage" (train.py's VAE and the low-beta one) is the second VAE of
`generation.fit_two_stage` on the same codes; "vamp (learned)" the VampPrior
of a vamp model. Every VAE's test -ELBO (its own prior in the bound) and
importance-weighted NLL (`--iw-k` samples on the first `--iw-images` test
images) are in its model row.
Every prior draws `--samples` codes (seeded); a CNN classifier trained on the
dataset's labels scores the decoded images: share classified with confidence
>= 0.9, entropy of the predicted class histogram (log 10 = 2.30 is uniform
over the 10 classes), and the Frechet distance of its features to the test
images'. `test_ll` is the mean log-likelihood of the test images' codes under
the prior (nats per image). Each model's "reconstructions (no prior)" row
scores the decoder's pictures of the codes of `--samples` validation images:
the floor of what any prior's samples can reach through that decoder.
Writes --out (JSON) and side-by-side grids of the standard and the fitted
prior (same seed) into --docs.
"""

import dataclasses
import os
import sys
import time

import keras
import numpy as np

from benchmarks import scores
from benchmarks.common import argument_parser, run_facts
from benchmarks.trainers import train_model
from keras_vae import VAE, Autoencoder, datasets, generation
from keras_vae.export import generator as export
from keras_vae.models import likelihood, priors
from keras_vae.training import run_dir
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from keras_vae.utils import images as image_io
from keras_vae.utils.atomic_files import atomic_write_json


def score_images(judge, images, test_features):
    probabilities, features = judge(images)
    return {
        "confident_share": scores.confident_share(probabilities),
        "class_entropy": scores.class_entropy(probabilities),
        "frechet_distance": scores.frechet_distance(features, test_features),
    }


def score(codec, judge, prior, samples, seed, test_features, test_codes):
    return {
        **score_images(judge, codec.decode(prior.sample(samples, seed=seed)), test_features),
        "test_log_likelihood": float(prior.log_prob(test_codes).mean()),
        "components": prior.components,
    }


def device_samples(export_dir, count):
    """Images the exported float32 .tflite's `sample` signature draws on its own."""
    from ai_edge_litert.interpreter import Interpreter

    path = os.path.join(export_dir, export.tflite_filename("float32"))
    runner = Interpreter(model_path=path).get_signature_runner(export.SAMPLE_RANDOM)
    return runner(count=np.array(count, np.int32))["images"]


def fitted_priors(model, codec, train_images, validation_images, components, seed, two_stage=False):
    """{name: prior}: standard, gaussian, gmm k for each k, gmm (auto), two_stage, vamp."""
    train_codes, validation_codes = codec.encode(train_images), codec.encode(validation_images)
    found = {"standard": priors.standard_normal(model.latent_dim)}
    found["gaussian"] = priors.fit_gaussian(train_codes)
    mixtures = {}
    for k in components:
        start = time.perf_counter()
        mixtures[k] = priors.fit_gmm(train_codes, validation_codes, components=k, seed=seed)
        mixtures[k].info["seconds"] = round(time.perf_counter() - start, 2)
        found[f"gmm k={k}"] = mixtures[k]
    held_out = {k: float(m.log_prob(validation_codes).mean()) for k, m in mixtures.items()}
    found["gmm (auto)"] = mixtures[max(held_out, key=held_out.get)]
    if two_stage:
        start = time.perf_counter()
        found["two_stage"] = generation.fit_two_stage(train_codes, seed=seed)
        found["two_stage"].info["seconds"] = round(time.perf_counter() - start, 2)
    if getattr(model, "learned_prior", "standard") == "vamp":
        found["vamp (learned)"] = model.get_prior("vamp")
    return found


def model_facts(model, test_images, seconds, args):
    """A model's row: training seconds, test -ELBO and IW-NLL (VAEs; its own prior)."""
    facts = {"train_seconds": seconds}
    if isinstance(model, VAE):
        facts["test_negative_elbo"] = training.evaluate(model, test_images, 128)["negative_elbo"]
        start = time.perf_counter()
        facts["iw_nll"] = likelihood.importance_weighted_nll(
            model, test_images[: args.iw_images], k=args.iw_k, seed=args.seed
        )
        facts["iw_seconds"] = round(time.perf_counter() - start, 1)
    return facts


# The row of train.py's VAE under N(0, I), the one the others are measured against.
BASELINE = "VAE N(0, I) (train.py)"
# The row of the decoder's pictures of held-out images' codes: the floor of every prior.
RECONSTRUCTIONS = "reconstructions (no prior)"


def run_config(dataset, data_dir, args):
    """train.py's config for `dataset` under N(0, I); a smaller validation split for MNIST."""
    if dataset == "fashion_mnist":
        return TrainingConfig(seed=args.seed, learned_prior="standard")
    # mnist10k has 8,000 training digits: 5,000 held out would leave too few.
    return TrainingConfig(
        dataset="mnist",
        data_dir=data_dir,
        validation_size=1000,
        seed=args.seed,
        learned_prior="standard",
    )


def side_by_side(codec, standard, fitted, path, seed, rows=8, cols=8):
    """The standard prior's grid (left) and the fitted prior's (right), same seed."""
    grids = [
        image_io.grid(codec.decode(prior.sample(rows * cols, seed=seed)), rows, cols)
        for prior in (standard, fitted)
    ]
    gap = np.full((grids[0].shape[0], 12) + grids[0].shape[2:], 255, np.uint8)
    image_io.save_png(path, np.concatenate([grids[0], gap, grids[1]], axis=1))


def benchmark_dataset(dataset, data_dir, directory, args):
    config = run_config(dataset, data_dir, args)
    print(f"== {dataset}: train.py's run in {directory}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    train_metrics = training.train_and_evaluate(config, directory, verbose=0)
    default_seconds = time.perf_counter() - start
    splits = training.load_splits(config)
    train_images, validation_images, test_images, test_labels, _ = splits
    all_train_images, train_labels = datasets.load(dataset, "train", config.data_dir)
    # Seeded here, so the classifier and the models below do not depend on
    # whether train.py's run was trained in this process or found done.
    keras.utils.set_random_seed(args.seed)
    judge, accuracy = scores.train_classifier(
        (all_train_images, train_labels),
        (test_images, test_labels),
        args.classifier_epochs,
        args.seed,
    )
    test_features = judge(test_images)[1]
    default_vae, _ = run_dir.load_model(directory)
    models = {BASELINE: default_vae}
    seconds = {BASELINE: train_metrics.get("train_seconds")}
    for count in args.pseudo_inputs:
        name = f"VAE vamp K={count}"
        vamp_config = dataclasses.replace(
            config,
            learned_prior="vamp",
            pseudo_inputs=count,
            prior="vamp",
            export_variants=("float32",),
            export_static_batch_sizes=(),
        )
        vamp_dir = os.path.join(args.scratch, f"{dataset}-vamp{count}")
        print(f"== {dataset}: train.py {name} in {vamp_dir}", file=sys.stderr, flush=True)
        metrics = training.train_and_evaluate(vamp_config, vamp_dir, verbose=0)
        models[name], _ = run_dir.load_model(vamp_dir)
        seconds[name] = metrics.get("train_seconds")
    for name, model in (
        (
            f"VAE beta={args.low_beta:g}",
            VAE(image_shape=train_images.shape[1:], beta=args.low_beta),
        ),
        ("Autoencoder", Autoencoder(image_shape=train_images.shape[1:])),
    ):
        print(f"== {dataset}: training {name}", file=sys.stderr, flush=True)
        keras.utils.set_random_seed(args.seed)
        seconds[name] = train_model(
            model, train_images, config.epochs, config.batch_size, args.seed
        )
        models[name] = model
    rows, model_rows = [], []
    for name, model in models.items():
        model_rows.append({"model": name, **model_facts(model, test_images, seconds[name], args)})
        print(format_model_row(model_rows[-1]), file=sys.stderr, flush=True)
        codec = generation.Codec(model)
        test_codes = codec.encode(test_images)
        found = fitted_priors(
            model,
            codec,
            train_images,
            validation_images,
            args.components,
            args.seed,
            two_stage=name == BASELINE or name.startswith("VAE beta="),
        )
        if name == BASELINE:
            found["gmm (train.py)"] = model.get_prior("gmm")
            side_by_side(
                codec,
                found["standard"],
                found["gmm (train.py)"],
                os.path.join(args.docs, f"prior_samples_{dataset}.png"),
                args.seed,
            )
            # The exported generator, sampling on the device: the same distribution as
            # the Python sampler of the row above (its own random numbers, so within
            # sampling error).
            row = {"model": name, "prior": "gmm (train.py), .tflite sample signature"}
            images = device_samples(os.path.join(directory, run_dir.EXPORT_DIR), args.samples)
            row.update(score_images(judge, images, test_features))
            row.update(
                components=found["gmm (train.py)"].components,
                test_log_likelihood=float(found["gmm (train.py)"].log_prob(test_codes).mean()),
                train_seconds=seconds[name],
            )
            found_rows = [row]
        else:
            found_rows = []
        for prior_name, prior in found.items():
            row = {"model": name, "prior": prior_name, "train_seconds": seconds[name]}
            row.update(
                score(codec, judge, prior, args.samples, args.seed, test_features, test_codes)
            )
            rows.append(row)
            print(format_row(row), file=sys.stderr, flush=True)
        rows += found_rows
        # What no prior can beat: the decoder's pictures of real codes, those of
        # held-out images (scored like the samples, against the test images).
        held_out = validation_images[: args.samples]
        row = {"model": name, "prior": RECONSTRUCTIONS, "train_seconds": seconds[name]}
        row.update(score_images(judge, codec.decode(codec.encode(held_out)), test_features))
        row.update(components=None, test_log_likelihood=None)
        rows.append(row)
        print(format_row(row), file=sys.stderr, flush=True)
    return {
        "classifier_test_accuracy": accuracy,
        "train_py_seconds": default_seconds,
        "train_py_metrics": train_metrics,
        "models": model_rows,
        "rows": rows,
    }


def format_row(row):
    components = "-" if row["components"] is None else row["components"]
    log_likelihood = row["test_log_likelihood"]
    log_likelihood = "-" if log_likelihood is None else f"{log_likelihood:.2f}"
    return (
        f"| {row['model']} | {row['prior']} | {components} | "
        f"{row['confident_share']:.3f} | {row['class_entropy']:.3f} | "
        f"{row['frechet_distance']:.2f} | {log_likelihood} |"
    )


def format_model_row(row):
    def number(key, form):
        return format(row[key], form) if row.get(key) is not None else "-"

    return (
        f"| {row['model']} | {number('train_seconds', ',.0f')} | "
        f"{number('test_negative_elbo', '.2f')} | {number('iw_nll', '.2f')} |"
    )


def model_table(result, args_text):
    """One dataset's models: training seconds, test -ELBO and IW-NLL under their own prior."""
    return "\n".join(
        [
            f"| model | training seconds | test -ELBO | IW-NLL ({args_text}) |",
            "|---|---|---|---|",
            *(format_model_row(row) for row in result["models"]),
        ]
    )


def table(result):
    """One dataset's rows (`results["datasets"][name]`) as a Markdown table."""
    return "\n".join(
        [
            "| model | prior | k | confident (>= 0.9) | class entropy | Frechet "
            "| test log-lik of codes |",
            "|---|---|---|---|---|---|---|",
            *(format_row(row) for row in result["rows"]),
        ]
    )


def iw_text(results):
    arguments = results.get("settings", {})
    return f"k = {arguments.get('iw_k')}, first {arguments.get('iw_images')} test images"


def markdown(results):
    lines = []
    for dataset, result in results["datasets"].items():
        accuracy = result["classifier_test_accuracy"]
        lines += [f"### {dataset} (classifier test accuracy {accuracy:.3f})", "", table(result), ""]
        if "models" in result:
            lines += [model_table(result, iw_text(results)), ""]
    return "\n".join(lines)


def main(argv=None, prog="prior"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--run-dir", default="runs/bench-prior/fashion_mnist-default")
    parser.add_argument("--mnist-dir", default="../shared/data/mnist10k")
    parser.add_argument("--mnist-run-dir", default="runs/bench-prior/mnist-default")
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist", "mnist"])
    parser.add_argument("--components", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--low-beta", type=float, default=0.2)
    parser.add_argument("--pseudo-inputs", type=int, nargs="*", default=[50, 100, 500])
    parser.add_argument("--scratch", default="runs/bench-prior", help="the vamp runs' dirs")
    parser.add_argument("--iw-k", type=int, default=200, help="IW-NLL samples per image")
    parser.add_argument("--iw-images", type=int, default=1000, help="test images of the IW-NLL")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/prior_quality.json")
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = {**run_facts(prog, args), "datasets": {}}
    for dataset in args.datasets:
        if dataset == "mnist" and not os.path.isdir(args.mnist_dir):
            raise SystemExit(f"--mnist-dir {args.mnist_dir} is missing (the mnist10k IDX files).")
        data_dir = args.mnist_dir if dataset == "mnist" else None
        directory = args.mnist_run_dir if dataset == "mnist" else args.run_dir
        results["datasets"][dataset] = benchmark_dataset(dataset, data_dir, directory, args)
    results["seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_json(args.out, results)
    print(markdown(results))
    print(f"{results['seconds']:.0f} s; wrote {args.out}", file=sys.stderr)
