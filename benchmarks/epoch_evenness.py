"""Epoch wall times of train.py against a bare `fit`, and of README's two Python paths.

    python -m benchmarks evenness [--epochs 8] [--preset default]

One after another, each in a fresh Python process, on `train.py`'s data
(Fashion-MNIST, its seeded 55,000 / 5,000 training / validation split),
batch 128, Adam 1e-3:

  train.py     the real command, `python train.py --epochs N --run-dir ...`:
               validation, TensorBoard scalars and image grids, the best
               model's checkpoint and the backup every epoch; the epoch times
               come from its training.json (`epoch_wall_seconds`);
  bare_fit     the same compiled model (`training.build_model`: FusedAdam,
               steps_per_execution) and the same pipelines
               (`pipeline.fit_arguments`), `fit` with no callback but a timer;
  readme_numpy `vae.fit(x_train, epochs=N, batch_size=128,
               validation_data=(x_val,))` on numpy arrays with
               `compile(optimizer="adam")`;
  readme_fit_arguments  README's path, `vae.fit(epochs=N,
               **pipeline.fit_arguments(x_train, x_val))` with FusedAdam and
               `steps_per_execution`.

An epoch's wall time runs from its start to the next epoch's start (the last:
to the end of `fit`), so it holds the steps, the validation and what the
callbacks do between epochs. Every path runs `--repeats` times, the paths
interleaved (this machine is shared: its speed drifts over minutes). Per
path: every epoch's seconds, the median of epochs 2..N of all repeats (the
first of each holds the tracing), the slowest of those over the median, and
the median over the bare fit's. Prints a Markdown table; writes
JSON to --out.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import ROOT, argument_parser, run_child, run_facts
from keras_vae.utils.atomic_files import atomic_write_json

PATHS = ("train.py", "bare_fit", "readme_numpy", "readme_fit_arguments")
# How the table names each path.
PATH_NAMES = {
    "train.py": "`python train.py --epochs {epochs}`",
    "bare_fit": "bare `fit`: same model, same pipelines, no callback",
    "readme_numpy": "`vae.fit(x_train, batch_size=128, validation_data=(x_val,))` on numpy, "
    '`compile(optimizer="adam")`',
    "readme_fit_arguments": "`vae.fit(epochs={epochs}, **pipeline.fit_arguments(x_train, x_val))`"
    ", FusedAdam, `steps_per_execution`",
}


def _timed_fit(model, epochs, **arguments):
    from benchmarks.trainers import timed_fit

    return timed_fit(model, epochs, **arguments).wall_seconds


def run_in_process(path, args):
    """Trains one path in this process; returns its epoch wall seconds."""
    import keras
    import tensorflow as tf

    from keras_vae import VAE
    from keras_vae.datasets import pipeline
    from keras_vae.models.optimizers import FusedAdam
    from keras_vae.training import train as training
    from keras_vae.training.config import TrainingConfig

    config = TrainingConfig(
        preset=args.preset, epochs=args.epochs, data_dir=args.data_dir, learned_prior="standard"
    )
    keras.utils.set_random_seed(config.seed)
    splits = training.load_splits(config)
    train, validation = splits.train, splits.validation
    if path == "bare_fit":
        model = training.build_model(
            config, tf.distribute.get_strategy(), train.shape[1:], len(train)
        )
        data = pipeline.fit_arguments(train, validation, config.batch_size, seed=config.seed)
        return _timed_fit(model, args.epochs, shuffle=False, **data)
    model = VAE(image_shape=train.shape[1:], preset=args.preset, seed=config.seed)
    if path == "readme_numpy":
        model.compile(optimizer="adam")
        return _timed_fit(
            model, args.epochs, x=train, batch_size=config.batch_size, validation_data=(validation,)
        )
    data = pipeline.fit_arguments(train, validation, config.batch_size, seed=config.seed)
    execution = pipeline.execution_steps(data["steps_per_epoch"], config.steps_per_execution)
    model.compile(optimizer=FusedAdam(config.learning_rate), steps_per_execution=execution)
    return _timed_fit(model, args.epochs, **data)


def run_train_py(args, scratch):
    run = os.path.join(scratch, "run")
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--run-dir", run, "--verbose", "0"]
    command += ["--epochs", str(args.epochs), "--preset", args.preset]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(run, "training.json")) as f:
        facts = json.load(f)
    return facts["epoch_wall_seconds"], time.perf_counter() - start


def figures(repeats):
    """Pooled over the repeats: every epoch but each repeat's first (the tracing)."""
    later = [s for seconds in repeats for s in (seconds[1:] or seconds)]
    median = statistics.median(later)
    return {
        "epoch_wall_seconds": repeats,
        "first_epoch_seconds": [seconds[0] for seconds in repeats],
        "median_seconds": median,
        "slowest_over_median": max(later) / median,
    }


def main(argv=None, prog="evenness"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated, in order")
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of every path, interleaved (default: 2)"
    )
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX directory")
    parser.add_argument("--out", default="benchmarks/results/epoch_evenness.json")
    parser.add_argument("--run-one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        atomic_write_json(args.out, run_in_process(args.run_one, args))
        return
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        sys.exit(f"error: unknown path(s) {unknown}; choose from {list(PATHS)}")
    runs = {path: [] for path in paths}
    whole = []
    for repeat in range(args.repeats):
        for path in paths:
            print(f"== {path} ({repeat + 1} of {args.repeats})", flush=True)
            with tempfile.TemporaryDirectory() as scratch:
                if path == "train.py":
                    seconds, command_seconds = run_train_py(args, scratch)
                    runs[path].append(seconds)
                    whole.append(command_seconds)
                    continue
                out = os.path.join(scratch, f"{path}.json")
                argv = ["--run-one", path, "--epochs", args.epochs, "--preset", args.preset]
                argv += ["--data-dir", args.data_dir] if args.data_dir else []
                runs[path].append(run_child(prog, argv, out))
    rows = {path: figures(repeats) for path, repeats in runs.items()}
    if whole:
        rows["train.py"]["whole_command_seconds"] = whole
    bare = rows.get("bare_fit")
    for row in rows.values():
        if bare:
            row["median_over_bare_fit"] = row["median_seconds"] / bare["median_seconds"]
    report = {**run_facts(prog, args), "rows": rows}
    atomic_write_json(args.out, report)
    print(table(report))
    print(f"wrote {args.out}")


def table(result):
    """The Markdown table of a result: every epoch's wall seconds and the medians, per path."""
    epochs = len(next(iter(result["rows"].values()))["epoch_wall_seconds"][0])
    lines = [
        "| path | epoch wall seconds (run 1 / run 2 ...) | median (2..N) | slowest / median "
        "| median / bare fit |",
        "|---|---|---|---|---|",
    ]
    rows = result["rows"]
    for path in sorted(rows, key=lambda p: PATHS.index(p) if p in PATHS else len(PATHS)):
        row = rows[path]
        seconds = " / ".join(
            ", ".join(f"{s:.2f}" for s in run) for run in row["epoch_wall_seconds"]
        )
        ratio = row.get("median_over_bare_fit")
        lines.append(
            f"| {PATH_NAMES.get(path, path).format(epochs=epochs)} | {seconds} "
            f"| {row['median_seconds']:.2f} | {row['slowest_over_median']:.2f} "
            f"| {'' if ratio is None else f'{ratio:.3f}'} |"
        )
    return "\n".join(lines)
