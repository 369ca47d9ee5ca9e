"""Conditional generation: do the images drawn for a class look like that class?

    python -m benchmarks conditional      (make bench NAME=conditional)

For each dataset (Fashion-MNIST; MNIST from `--mnist-dir`, the real digits
of mnist10k), within `make train`'s budget (the `default` preset, 30 epochs
of batch 128):
  - "conditional": train.py `--conditional` (`--scratch`; its fitted prior
    is train.py's, "gmm");
  - "unconditional": train.py `--learned-prior standard`, the same model
    without labels (the prior benchmark's baseline run: `--run-dir`,
    `--mnist-run-dir`; trained if missing).
A CNN classifier trained on the dataset's labels (`benchmarks.scores`) judges
`--samples` images per class drawn for that class: from N(0, I), from the
fitted prior (train.py fits it per class: z of a class's own codes), and
through the exported float32 .tflite's `sample` signature (the phone's path:
the app's own eps and u, the label beside them). For
each: the share the classifier assigns to the requested class ("class
accuracy"), the share it does so with confidence >= 0.9, and the Frechet
distance of its features to those of the test images of the class (mean
over classes). The model table gives the test -ELBO of both models: the
conditional one bounds -log p(x | y), the unconditional one -log p(x).
Writes --out (JSON) and the "same z, every class" grids of the conditional
models into --docs.
"""

import os
import sys
import time

import keras
import numpy as np

from benchmarks import scores
from benchmarks.common import argument_parser, run_facts
from keras_vae import datasets, generation
from keras_vae.export import generator as export
from keras_vae.training import run_dir
from keras_vae.training import train as training
from keras_vae.training.config import TrainingConfig
from keras_vae.utils import images as image_io
from keras_vae.utils.atomic_files import atomic_write_json

# The class accuracy the conditional samples are to reach (30 epochs).
TARGETS = {"fashion_mnist": 0.8, "mnist": 0.9}


def run_config(dataset, data_dir, seed, **changes):
    """train.py's config for `dataset`; a smaller validation split for mnist10k."""
    if dataset == "fashion_mnist":
        return TrainingConfig(seed=seed, **changes)
    # mnist10k has 8,000 training digits: 5,000 held out would leave too few.
    return TrainingConfig(
        dataset="mnist", data_dir=data_dir, validation_size=1000, seed=seed, **changes
    )


def device_images(export_dir, eps, u, labels):
    """Images of the exported float32 .tflite's `sample` signature for the app's inputs."""
    from ai_edge_litert.interpreter import Interpreter

    path = os.path.join(export_dir, export.tflite_filename("float32"))
    runner = Interpreter(model_path=path).get_signature_runner(export.SAMPLE)
    return runner(eps=eps, u=u, label=labels)["images"]


def class_scores(judge, images, requested, test_features, test_labels):
    """Class accuracy, confident accuracy and Frechet distance per class of `images`."""
    probabilities, features = judge(images)
    predicted = probabilities.argmax(axis=1)
    per_class = []
    for k in range(int(requested.max()) + 1):
        mine = requested == k
        per_class.append(
            {
                "class_accuracy": float(np.mean(predicted[mine] == k)),
                "frechet_distance": scores.frechet_distance(
                    features[mine], test_features[test_labels == k]
                ),
            }
        )
    hit = predicted == requested
    confident = probabilities[np.arange(len(requested)), requested] >= scores.CONFIDENCE
    return {
        "class_accuracy": float(np.mean(hit)),
        "confident_accuracy": float(np.mean(hit & confident)),
        "frechet_per_class": float(np.mean([c["frechet_distance"] for c in per_class])),
        "per_class": per_class,
    }


def benchmark_dataset(dataset, data_dir, baseline_dir, args):
    seed = args.seed
    conditional_dir = os.path.join(args.scratch, f"{dataset}-conditional")
    models, seconds, metrics = {}, {}, {}
    for name, directory, changes in (
        ("conditional", conditional_dir, {"conditional": True}),
        ("unconditional", baseline_dir, {"learned_prior": "standard"}),
    ):
        config = run_config(dataset, data_dir, seed, **changes)
        print(f"== {dataset}: train.py {name} in {directory}", file=sys.stderr, flush=True)
        metrics[name] = training.train_and_evaluate(config, directory, verbose=0)
        seconds[name] = metrics[name].get("train_seconds")
        models[name], _ = run_dir.load_model(directory)
    model = models["conditional"]
    train_images, train_labels = datasets.load(dataset, "train", data_dir)
    test_images, test_labels = datasets.load(dataset, "test", data_dir)
    keras.utils.set_random_seed(seed)
    judge, accuracy = scores.train_classifier(
        (train_images, train_labels), (test_images, test_labels), args.classifier_epochs, seed
    )
    test_features = judge(test_images)[1]
    classes = model.label_dim
    requested = np.repeat(np.arange(classes), args.samples)
    labels = model.label_vectors(requested)
    codec = generation.Codec(model)
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((len(requested), model.latent_dim)).astype(np.float32)
    u = rng.uniform(size=len(requested)).astype(np.float32)
    rows = []
    for prior_name in ("standard", model.prior.kind):
        prior = model.get_prior(prior_name)
        z = prior.sample(len(requested), seed=seed, labels=labels)  # per class where fitted so
        rows.append({"prior": prior_name, "path": "Python (Codec)"})
        rows[-1].update(
            class_scores(judge, codec.decode(z, labels), requested, test_features, test_labels)
        )
    export_dir = os.path.join(conditional_dir, run_dir.EXPORT_DIR)
    images = device_images(export_dir, eps, u, labels)
    rows.append({"prior": model.prior.kind, "path": ".tflite sample(eps, u, label)"})
    rows[-1].update(class_scores(judge, images, requested, test_features, test_labels))
    for row in rows:
        print(format_row(dataset, row), file=sys.stderr, flush=True)
    grid = codec.every_label(model.prior.sample(8, seed=seed), model.each_label())
    image_io.save_png(
        os.path.join(args.docs, f"conditional_{dataset}.png"),
        image_io.grid(grid.reshape(-1, *model.image_shape), 8, classes),
    )
    return {
        "classifier_test_accuracy": accuracy,
        "class_names": list(model.label_names),
        "target_class_accuracy": TARGETS[dataset],
        "models": [
            {
                "model": name,
                "bound": "-log p(x | y)" if name == "conditional" else "-log p(x)",
                "test_negative_elbo": metrics[name]["negative_elbo"],
                "train_seconds": seconds[name],
            }
            for name in ("conditional", "unconditional")
        ],
        "rows": rows,
    }


def format_row(dataset, row):
    return (
        f"| {dataset} | {row['prior']} | {row['path']} | {row['class_accuracy']:.3f} | "
        f"{row['confident_accuracy']:.3f} | {row['frechet_per_class']:.2f} |"
    )


def table(results):
    """Class accuracy of the conditional samples per dataset, prior and path."""
    lines = [
        "| dataset | prior | drawn by | class accuracy | confident (>= 0.9) | "
        "Frechet per class (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, result in results["datasets"].items():
        lines += [format_row(dataset, row) for row in result["rows"]]
    return "\n".join(lines)


def class_table(results):
    """Per class: class accuracy and Frechet distance of the fitted prior's samples (Python)."""
    lines = []
    for dataset, result in results["datasets"].items():
        row = result["rows"][1]
        names = result["class_names"]
        lines += [
            f"| {dataset} ({row['prior']}) | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
            "| class accuracy | "
            + " | ".join(f"{c['class_accuracy']:.2f}" for c in row["per_class"])
            + " |",
            "| Frechet | "
            + " | ".join(f"{c['frechet_distance']:.1f}" for c in row["per_class"])
            + " |",
            "",
        ]
    return "\n".join(lines).rstrip()


def model_table(results):
    """Test -ELBO of the conditional model against the unconditional one, and training time."""
    lines = [
        "| dataset | model | bound | test -ELBO | training seconds | classifier test accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, result in results["datasets"].items():
        for row in result["models"]:
            bound = row["bound"].replace("|", "\\|")  # a | inside a Markdown cell
            lines.append(
                f"| {dataset} | {row['model']} | {bound} | "
                f"{row['test_negative_elbo']:.2f} | {row['train_seconds']:,.0f} | "
                f"{result['classifier_test_accuracy']:.3f} |"
            )
    return "\n".join(lines)


def main(argv=None, prog="conditional"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--run-dir", default="runs/bench-prior/fashion_mnist-default")
    parser.add_argument("--mnist-dir", default="../shared/data/mnist10k")
    parser.add_argument("--mnist-run-dir", default="runs/bench-prior/mnist-default")
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist", "mnist"])
    parser.add_argument("--scratch", default="runs/bench-conditional")
    parser.add_argument("--samples", type=int, default=200, help="images drawn per class")
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/conditional.json")
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = {**run_facts(prog, args), "datasets": {}}
    for dataset in args.datasets:
        if dataset == "mnist" and not os.path.isdir(args.mnist_dir):
            raise SystemExit(f"--mnist-dir {args.mnist_dir} is missing (the mnist10k IDX files).")
        data_dir = args.mnist_dir if dataset == "mnist" else None
        baseline = args.mnist_run_dir if dataset == "mnist" else args.run_dir
        results["datasets"][dataset] = benchmark_dataset(dataset, data_dir, baseline, args)
    results["seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_json(args.out, results)
    print("\n\n".join([table(results), class_table(results), model_table(results)]))
    print(f"{results['seconds']:.0f} s; wrote {args.out}", file=sys.stderr)
