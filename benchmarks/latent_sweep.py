"""Where is the VAE ahead of the autoencoder? (a) and (b) over latent size, KL weight, likelihood.

    python -m benchmarks latent-sweep          (make bench NAME=latent-sweep)

`python -m benchmarks latent` scores one setting; this runs its (a) prior
sample and (b) interpolation measures over several, with one classifier
trained once. Each setting trains a VAE; the autoencoder depends only on the
latent size, so one is trained per size and compared with every VAE of that
size. Prints a Markdown table and writes JSON to --out.
"""

import sys
import time

import keras
import numpy as np

from benchmarks import latent_quality as lq
from benchmarks import scores
from benchmarks.common import argument_parser, run_facts
from keras_vae.utils.atomic_files import atomic_write_json

# VAE settings on the `default` networks; the first is the `latent` benchmark's.
SETTINGS = (
    {"latent_dim": 32},
    {"latent_dim": 32, "beta": 0.25},
    {"latent_dim": 32, "beta": 4.0},
    {"latent_dim": 32, "likelihood": "gaussian"},
    {"latent_dim": 16},
    {"latent_dim": 8},
    {"latent_dim": 4},
    {"latent_dim": 3},
    {"latent_dim": 2},
)
METHODS = ("slerp", "lerp")


def label(setting):
    """`latent 32, beta 0.25` style name of a setting."""
    parts = [f"latent {setting['latent_dim']}"]
    if setting.get("beta", 1.0) != 1.0:
        parts.append(f"beta {setting['beta']:g}")
    if setting.get("likelihood", "bernoulli") != "bernoulli":
        parts.append(f"{setting['likelihood']} likelihood")
    return ", ".join(parts)


def select(settings, latent_dims=""):
    """All `settings`, or with "2,3" only the beta 1, Bernoulli ones of those sizes."""
    if not latent_dims:
        return tuple(settings)
    try:
        sizes = {int(size) for size in latent_dims.split(",")}
    except ValueError:
        raise ValueError(
            f"--latent-dims takes comma-separated integers such as 2,3; got {latent_dims!r}."
        ) from None
    chosen = tuple(s for s in settings if s["latent_dim"] in sizes and len(s) == 1)
    missing = sizes - {s["latent_dim"] for s in chosen}
    if missing:
        known = sorted({s["latent_dim"] for s in settings})
        raise ValueError(f"No setting has latent size {sorted(missing)}; the sweep has {known}.")
    return chosen


def verdict(vae, ae):
    """Which of (a) and (b) the VAE wins against the AE, from two score dicts.

    (a) needs a higher confident share and a lower Frechet distance; (b), per
    interpolation method, a lower mean max step / path.
    """
    prior = (
        vae["prior"]["confident_share"] > ae["prior"]["confident_share"]
        and vae["prior"]["frechet_distance"] < ae["prior"]["frechet_distance"]
    )
    paths = {
        method: vae["interpolation"][method]["max_step_over_path"]
        < ae["interpolation"][method]["max_step_over_path"]
        for method in METHODS
    }
    return {"a": prior, "b": paths, "a_and_b": prior and all(paths.values())}


def sweep(settings, preset, train, test, judge, test_features, args):
    """Scores every setting's VAE and one AE per latent size; returns a list of rows."""
    autoencoders, rows = {}, []

    def score(name, models, setting, draws):
        """Trains and scores `models[name]` of `setting`, without (c)."""
        return lq.score_model(
            f"{name}, {label(setting)}",
            models[name],
            train,
            test,
            judge,
            test_features,
            draws,
            args,
            edits=False,
        )[0]

    pairs = np.random.default_rng([args.seed, 1]).choice(len(test[0]), size=(2, args.pairs))
    for setting in settings:
        latent_dim = setting["latent_dim"]
        # The same prior codes for every model of one latent size, the same
        # test pairs for every model.
        draws = lq.Draws(
            np.random.default_rng(args.seed),
            latent_dim,
            args.samples,
            len(test[0]),
            args.pairs,
            pairs=pairs,
        )
        keras.utils.set_random_seed(args.seed)
        models = lq.build_models(train[0].shape[1:], preset, seed=args.seed, **setting)
        vae = score("VAE", models, setting, draws)
        if latent_dim not in autoencoders:
            autoencoders[latent_dim] = score("AE", models, setting, draws)
        ae = autoencoders[latent_dim]
        rows.append(
            {
                "setting": setting,
                "label": label(setting),
                "VAE": vae,
                "AE": ae,
                "vae_ahead": verdict(vae, ae),
            }
        )
    return rows


def markdown_table(rows, prefix=""):
    """The sweep as one Markdown table, VAE / AE in each cell; `prefix` starts each label."""

    def pair(row, get, digits):
        return f"{get(row['VAE']):.{digits}f} / {get(row['AE']):.{digits}f}"

    lines = [
        "| setting | VAE active dims | VAE KL nats | (a) confident share | (a) Frechet distance "
        "| (b) slerp | (b) lerp | (b) max step / ends, slerp | (b) max step / ends, lerp "
        "| VAE ahead on |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ahead = row["vae_ahead"]
        won = (["(a)"] if ahead["a"] else []) + [
            f"(b) {method}" for method in METHODS if ahead["b"][method]
        ]
        lines.append(
            f"| {prefix}{row['label']} | {row['VAE']['active_dims']} | {row['VAE']['kl_nats']:.1f} "
            f"| {pair(row, lambda r: r['prior']['confident_share'], 3)} "
            f"| {pair(row, lambda r: r['prior']['frechet_distance'], 1)} "
            f"| {pair(row, lambda r: r['interpolation']['slerp']['max_step_over_path'], 4)} "
            f"| {pair(row, lambda r: r['interpolation']['lerp']['max_step_over_path'], 4)} "
            f"| {pair(row, lambda r: r['interpolation']['slerp']['max_step_over_ends'], 4)} "
            f"| {pair(row, lambda r: r['interpolation']['lerp']['max_step_over_ends'], 4)} "
            f"| {', '.join(won) or 'neither'} |"
        )
    return "\n".join(lines)


def main(argv=None, prog="latent-sweep"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--preset", default="default", help="Networks of every model.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--train-subset", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--latent-dims",
        default="",
        help="Comma-separated latent sizes: only the beta 1, Bernoulli settings of these.",
    )
    parser.add_argument("--out", default="benchmarks/results/latent_sweep.json")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    train, test = lq.load_data(args.train_subset)
    judge, accuracy = scores.train_classifier(train, test, args.classifier_epochs, args.seed)
    print(f"classifier: test accuracy {accuracy:.3f}", file=sys.stderr, flush=True)
    _, test_features = judge(test[0])
    rows = sweep(
        select(SETTINGS, args.latent_dims), args.preset, train, test, judge, test_features, args
    )
    result = {
        **run_facts(prog, args),
        "classifier_test_accuracy": accuracy,
        "rows": rows,
        "total_seconds": time.perf_counter() - start,
    }
    atomic_write_json(args.out, result)
    print(f"{result['machine']}; total {result['total_seconds']:.0f} s")
    print(markdown_table(rows))
