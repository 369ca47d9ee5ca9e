"""Latent space quality, VAE vs deterministic autoencoder, on Fashion-MNIST.

    python -m benchmarks latent          (make bench NAME=latent)

Trains a small classifier on the training labels, then a VAE and an
Autoencoder with the same networks (preset, epochs, batch, seed), and scores
both with the classifier:
  (a) prior samples: share of decoded z ~ N(0, I) classified with confidence
      >= 0.9, and the Frechet distance between classifier features of those
      samples and of the test images;
  (b) interpolation: along paths of `--steps` steps between random test
      pairs, largest single-step pixel change / whole path change
      (1/steps is perfectly even), for slerp and lerp;
  (c) class vectors: v = mean code of class B - mean code of class A (training
      images); test images of class A edited to z + alpha v: share the
      classifier assigns to B, and the pixel L2 the edit moves the
      reconstruction, next to decoding B's average code instead.
Prints Markdown tables, writes JSON to --out and example grids to --docs.
"""

import os
import sys
import time

import keras
import numpy as np

from benchmarks import scores, trainers
from benchmarks.common import argument_parser, run_facts
from keras_vae import VAE, Autoencoder, datasets, generation
from keras_vae.utils import images as image_io
from keras_vae.utils import names
from keras_vae.utils.atomic_files import atomic_write_json
from keras_vae.utils.names import LIKELIHOODS

# (from class, to class) of Fashion-MNIST for the class-vector edits.
EDITS = (("Pullover", "Coat"), ("Shirt", "T-shirt/top"), ("Sneaker", "Ankle boot"))
ALPHAS = (0.5, 1.0, 1.5, 2.0)


def interpolation_paths(codec, start_codes, end_codes, steps, method):
    """Decoded paths `[pairs, steps + 1, H, W, C]`."""
    return codec.decode(generation.interpolate(start_codes, end_codes, steps + 1, method))


def interpolation_scores(codec, judge, test_codes, pairs, steps):
    """(b) per method: mean and median of max step / path, and how plausible the inside is.

    `max_step_over_ends` reads "the whole path's change" as the change from
    the first image to the last instead of the path's length.

    `interior_confident_share` is the share of the images strictly inside
    the paths that the classifier labels with confidence >= 0.9: a
    cross-fade of two garments changes the pixels evenly but is neither.
    """
    starts, ends = test_codes[pairs[0]], test_codes[pairs[1]]
    by_method = {}
    for method in names.INTERPOLATIONS:
        paths = interpolation_paths(codec, starts, ends, steps, method)
        unevenness = scores.step_unevenness(paths)
        over_ends = scores.step_unevenness(paths, over="ends")
        interior = paths[:, 1:-1].reshape(-1, *paths.shape[2:])
        by_method[method] = {
            "max_step_over_path": float(np.nanmean(unevenness)),
            "median_max_step_over_path": float(np.nanmedian(unevenness)),
            "max_step_over_ends": float(np.nanmean(over_ends)),
            "median_max_step_over_ends": float(np.nanmedian(over_ends)),
            "interior_confident_share": scores.confident_share(judge(interior)[0]),
        }
    return by_method


def class_edits(codec, judge, train, test, alpha):
    """Per edit: success share at each alpha, and pixel L2 moves at `alpha`."""
    (x_train, y_train), (x_test, y_test) = train, test
    names = datasets.CLASS_NAMES["fashion_mnist"]
    train_codes = codec.encode(x_train)
    results = {}
    for source_name, target_name in EDITS:
        source, target = names.index(source_name), names.index(target_name)
        pair = (y_train == source) | (y_train == target)
        vector = generation.attribute_vector(train_codes[pair], y_train[pair] == target)
        target_image = codec.decode(generation.average_code(train_codes[y_train == target])[None])
        codes = codec.encode(x_test[y_test == source])
        edited = codec.decode(generation.edit(codes, vector, ALPHAS))  # [N, alphas, H, W, C]
        predicted = judge(edited.reshape(-1, *edited.shape[2:]))[0].argmax(axis=1)
        success = (predicted.reshape(len(codes), len(ALPHAS)) == target).mean(axis=0)
        reconstructions = codec.decode(codes)
        chosen = edited[:, ALPHAS.index(alpha)]
        results[f"{source_name} -> {target_name}"] = {
            "success_share": dict(zip(map(str, ALPHAS), success.tolist(), strict=True)),
            "edit_pixel_l2": float(scores.pixel_distance(chosen, reconstructions).mean()),
            "average_code_pixel_l2": float(
                scores.pixel_distance(
                    np.repeat(target_image, len(codes), axis=0), reconstructions
                ).mean()
            ),
        }
    return results


def save_examples(codecs, test, train, docs, seed):
    """Example grids: interpolations, a class edit and per-class average images."""
    (x_test, y_test), (x_train, y_train) = test, train
    names = datasets.CLASS_NAMES["fashion_mnist"]
    rng = np.random.default_rng(seed)
    ends = [("Sneaker", "Ankle boot"), ("Trouser", "Dress"), ("Pullover", "Bag")]
    starts = [rng.choice(np.flatnonzero(y_test == names.index(a))) for a, _ in ends]
    stops = [rng.choice(np.flatnonzero(y_test == names.index(b))) for _, b in ends]
    rows, labels = [], []
    for model_name, codec in codecs.items():
        codes = codec.encode(x_test[starts + stops])
        rows.append(interpolation_paths(codec, codes[: len(ends)], codes[len(ends) :], 9, "slerp"))
        labels += [f"{model_name}: {a} -> {b}" for a, b in ends]
    strips = np.concatenate(rows).reshape(-1, *x_test.shape[1:])
    image_io.save_png(
        os.path.join(docs, "latent_interpolation.png"),
        image_io.labelled_grid(strips, len(labels), 10, row_labels=labels, scale=2),
    )
    for model_name, codec in codecs.items():
        train_codes = codec.encode(x_train)
        averages = np.stack([generation.average_code(train_codes[y_train == k]) for k in range(10)])
        image_io.save_png(
            os.path.join(docs, f"latent_average_{model_name.lower()}.png"),
            image_io.labelled_grid(codec.decode(averages), 1, 10, col_labels=names, scale=3),
        )
    codec = codecs["VAE"]
    source, target = names.index("Pullover"), names.index("Coat")
    train_codes = codec.encode(x_train)
    pair = (y_train == source) | (y_train == target)
    vector = generation.attribute_vector(train_codes[pair], y_train[pair] == target)
    pullovers = x_test[y_test == source][:4]
    alphas = (0.0, 0.5, 1.0, 1.5, 2.0)
    edited = codec.decode(generation.edit(codec.encode(pullovers), vector, alphas))
    grid = np.concatenate([pullovers[:, None], edited], axis=1).reshape(-1, *x_test.shape[1:])
    image_io.save_png(
        os.path.join(docs, "latent_edit.png"),
        image_io.labelled_grid(
            grid, 4, 1 + len(alphas), col_labels=["input"] + [f"a={a}" for a in alphas], scale=3
        ),
    )


def load_data(train_subset=0):
    """Fashion-MNIST `(train, test)` as `(images, labels)`; the first N train images if N."""
    train = datasets.load("fashion_mnist", "train")
    test = datasets.load("fashion_mnist", "test")
    if train_subset:
        train = tuple(array[:train_subset] for array in train)
    return train, test


def build_models(image_shape, preset, seed, latent_dim=None, beta=1.0, likelihood="bernoulli"):
    """The VAE and the Autoencoder with the same networks."""
    return {
        "VAE": VAE(
            image_shape=image_shape,
            preset=preset,
            latent_dim=latent_dim,
            beta=beta,
            likelihood=likelihood,
            seed=seed,
        ),
        "AE": Autoencoder(image_shape=image_shape, preset=preset, latent_dim=latent_dim),
    }


class Draws:
    """The random inputs both models are scored on: prior codes and test pairs."""

    def __init__(self, rng, latent_dim, samples, num_test, num_pairs, pairs=None):
        """`pairs` (`[2, num_pairs]` test indices), when given, replaces the draw from `rng`."""
        self.rng = rng
        self.prior_codes = rng.standard_normal((samples, latent_dim)).astype(np.float32)
        drawn = rng.choice(num_test, size=(2, num_pairs))
        self.pairs = drawn if pairs is None else np.asarray(pairs)


def score_model(name, model, train, test, judge, test_features, draws, args, edits=True):
    """Trains `model` and scores (a), (b) and, with `edits`, (c); returns (scores, codec)."""
    seconds = trainers.train_model(model, train[0], args.epochs, args.batch_size, args.seed)
    print(f"{name}: trained in {seconds:.0f} s", file=sys.stderr, flush=True)
    codec = generation.Codec(model)
    test_codes = codec.encode(test[0])
    loss = model.evaluate(test[0], verbose=0, return_dict=True)
    result = {
        "train_seconds": seconds,
        "test_reconstruction_nats": float(
            loss["reconstruction_loss" if isinstance(model, VAE) else "loss"]
        ),
        "prior": scores.sample_scores(judge, codec.decode(draws.prior_codes), test_features),
        "interpolation": interpolation_scores(codec, judge, test_codes, draws.pairs, args.steps),
    }
    if isinstance(model, VAE):
        result["kl_nats"] = float(loss["kl_loss"])
        result["active_dims"] = active_dims(test_codes)
    else:
        # The AE's codes are not N(0, I): also sample a Gaussian fitted to them.
        codes = codec.encode(train[0])
        fitted = draws.rng.multivariate_normal(
            codes.mean(0), np.cov(codes, rowvar=False), len(draws.prior_codes)
        )
        result["prior_fitted_gaussian"] = scores.sample_scores(
            judge, codec.decode(fitted.astype(np.float32)), test_features
        )
    if edits:
        result["edits"] = class_edits(codec, judge, train, test, args.alpha)
    return result, codec


def active_dims(posterior_means, threshold=0.01):
    """Latent dimensions whose posterior mean varies across images (Burda et al.'s A_u).

    A dimension counts as active when the variance over images of its
    posterior mean (`[images, latent_dim]`) exceeds `threshold`; the others
    stay at the prior.
    """
    return int((np.var(posterior_means, axis=0) > threshold).sum())


def main(argv=None, prog="latent"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--preset", default="default", help="Architecture of both models.")
    parser.add_argument(
        "--latent-dim", type=int, default=0, help="Latent size of both models (0: the preset's)."
    )
    parser.add_argument("--beta", type=float, default=1.0, help="The VAE's KL weight.")
    parser.add_argument(
        "--likelihood", default="bernoulli", choices=LIKELIHOODS, help="The VAE's likelihood."
    )
    parser.add_argument("--epochs", type=int, default=10, help="Epochs of the VAE and the AE.")
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=1000, help="Prior samples for (a).")
    parser.add_argument("--pairs", type=int, default=200, help="Test pairs for (b).")
    parser.add_argument("--steps", type=int, default=16, help="Steps per interpolation path.")
    parser.add_argument("--alpha", type=float, default=1.0, choices=ALPHAS)
    parser.add_argument(
        "--train-subset", type=int, default=0, help="First N train images (0: all)."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/latent_quality.json")
    parser.add_argument("--docs", default="docs", help="Where the example PNGs go ('' skips).")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    train, test = load_data(args.train_subset)
    judge, accuracy = scores.train_classifier(train, test, args.classifier_epochs, args.seed)
    print(f"classifier: test accuracy {accuracy:.3f}", file=sys.stderr, flush=True)
    test_probabilities, test_features = judge(test[0])
    rng = np.random.default_rng(args.seed)
    models = build_models(
        train[0].shape[1:],
        args.preset,
        seed=args.seed,
        latent_dim=args.latent_dim or None,
        beta=args.beta,
        likelihood=args.likelihood,
    )
    draws = Draws(rng, models["VAE"].latent_dim, args.samples, len(test[0]), args.pairs)
    results, codecs = {}, {}
    for name, model in models.items():
        results[name], codecs[name] = score_model(
            name, model, train, test, judge, test_features, draws, args, edits=True
        )
    reference = {
        "classifier_test_accuracy": accuracy,
        "test_images_confident_share": scores.confident_share(test_probabilities),
        "frechet_distance_test_subset": scores.frechet_distance(
            test_features[rng.choice(len(test_features), args.samples, replace=False)],
            test_features,
        ),
    }
    if args.docs:
        os.makedirs(args.docs, exist_ok=True)
        save_examples(codecs, test, train, args.docs, args.seed)
    result = {
        **run_facts(prog, args),
        "reference": reference,
        "models": results,
        "total_seconds": time.perf_counter() - start,
    }
    atomic_write_json(args.out, result)
    reference = result["reference"]
    print(f"{result['machine']}; total {result['total_seconds']:.0f} s")
    print(
        f"classifier test accuracy {reference['classifier_test_accuracy']:.3f}; test images "
        f"confident share {reference['test_images_confident_share']:.3f}; Frechet distance of "
        f"{args.samples} test images to all {reference['frechet_distance_test_subset']:.2f}"
    )
    print(f"\n{scores_table(result)}\n\n{edits_table(result)}")


MODEL_NAMES = {"VAE": "VAE", "AE": "Autoencoder"}


def ordered(models):
    """The model names of a result, the VAE first (a result's JSON keeps them sorted)."""
    return sorted(models, key=lambda name: list(MODEL_NAMES).index(name))


def scores_table(result):
    """(a) and (b) per model, and (a) of a Gaussian fitted to the autoencoder's codes."""
    models = result["models"]
    ends = "max_step_over_ends" in models["VAE"]["interpolation"]["slerp"]
    header = [
        "model",
        "test reconstruction (nats)",
        "(a) confident share",
        "(a) Frechet distance",
        "(b) max step / path, slerp (median)",
        "(b) lerp (median)",
        "(b) inside of paths confident, slerp / lerp",
    ] + (["max step / ends, slerp / lerp"] if ends else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in ordered(models):
        r = models[name]
        slerp, lerp = r["interpolation"]["slerp"], r["interpolation"]["lerp"]
        row = [
            MODEL_NAMES.get(name, name),
            f"{r['test_reconstruction_nats']:.1f}",
            f"{r['prior']['confident_share']:.3f}",
            f"{r['prior']['frechet_distance']:.2f}",
            f"{slerp['max_step_over_path']:.4f} ({slerp['median_max_step_over_path']:.4f})",
            f"{lerp['max_step_over_path']:.4f} ({lerp['median_max_step_over_path']:.4f})",
            f"{slerp['interior_confident_share']:.3f} / {lerp['interior_confident_share']:.3f}",
        ]
        if ends:
            row.append(f"{slerp['max_step_over_ends']:.4f} / {lerp['max_step_over_ends']:.4f}")
        lines.append("| " + " | ".join(row) + " |")
    fitted = models.get("AE", {}).get("prior_fitted_gaussian")
    if fitted:
        row = ["Autoencoder, z ~ Gaussian fitted to its training codes", ""]
        row += [f"{fitted['confident_share']:.3f}", f"{fitted['frechet_distance']:.2f}"]
        lines.append("| " + " | ".join(row + [""] * (len(header) - len(row))) + " |")
    return "\n".join(lines)


def edits_table(result):
    """(c) per edit and model: success by alpha, and how far the edit moves the image."""
    models, alpha = result["models"], str(result["settings"]["alpha"])
    shown = alpha.removesuffix(".0")
    lines = [
        f"| edit (alpha = {shown}) | model | success "
        f"| success at alpha {', '.join(f'{a:g}' for a in ALPHAS)} "
        "| edit pixel L2 | target average pixel L2 |",
        "|---|---|---|---|---|---|",
    ]
    for edit_name in models["VAE"]["edits"]:
        for name in ordered(models):
            e = models[name]["edits"][edit_name]
            by_alpha = ", ".join(f"{v:.2f}" for v in e["success_share"].values())
            lines.append(
                f"| {edit_name} | {name} | {e['success_share'][alpha]:.3f} | {by_alpha} "
                f"| {e['edit_pixel_l2']:.2f} | {e['average_code_pixel_l2']:.2f} |"
            )
    return "\n".join(lines)
