"""Quality per second of wall clock: keras_vae's presets against a reference.

    python -m benchmarks quality    (make bench, about 70 min)
    python -m benchmarks quick      (make bench NAME=quick: quality --quick, about 3 min)

On Fashion-MNIST (all 60,000 training images, the 10,000 test images),
one after another on the same machine: each of the presets `mlp`,
`keras_example` and `default`, trained through train.py's fit path (a
`tf.data` pipeline with `repeat()` + `steps_per_epoch`, FusedAdam,
steps_per_execution, batch 128, Adam 1e-3), and two peers: the official
Keras example's training written from scratch
(`benchmarks.keras_io_reference`: plain `fit` on a numpy array) and the
pytorch/examples VAE (`benchmarks/pytorch_reference.py`, eager PyTorch, run
with --torch-python, a virtualenv with torch that `make bench` creates). Every
model is also evaluated after 5 complete epochs, and `comparisons` gives the
same-run ratios (mlp / PyTorch images/s and -ELBO after 5 epochs, default
against the best peer at each budget).

Each model trains against a wall-clock budget. When the training time
(evaluation excluded) crosses a checkpoint, training pauses for a test
evaluation: the negative ELBO in nats per image (one z per image, analytic
KL). At the last checkpoint of a preset also the importance-weighted NLL
(`keras_vae.models.likelihood.importance_weighted_nll`) on fixed test images. Per
model: training images/s (median over epochs 2..N), the slowest of those
epochs over the median (a stall shows here), forward FLOPs per image, the
achieved GFLOP/s (training counted as 3x the forward pass), and decode
latency at batch 1 and 64 through a `tf.function`.

Prints Markdown tables; writes JSON to --out and a learning-curve PNG
(test negative ELBO against training seconds, one line per model) to --plot
(full run: benchmarks/results/ and docs/; quick run: runs/bench-quick/).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import keras_io_reference
from benchmarks.common import (
    ROOT,
    argument_parser,
    command_line,
    machine_facts,
    median_ms,
    run_child,
)
from benchmarks.trainers import (
    BATCH_SIZE,
    elbo_evaluator,
    epoch_figures,
    fashion_mnist,
    preset_model,
)
from keras_vae import generation
from keras_vae.models import likelihood
from keras_vae.utils.atomic_files import atomic_write_json

PRESET_RUNS = ("mlp", "keras_example", "default")
REFERENCE = "keras_io_reference"
TORCH_REFERENCE = "pytorch_reference"
PEERS = (REFERENCE, TORCH_REFERENCE)
# The order of a full run: each preset next to the peer it is compared with.
DEFAULT_ORDER = ("mlp", TORCH_REFERENCE, "keras_example", REFERENCE, "default")
TORCH_PYTHON = os.path.join(".venv-torch", "bin", "python")
# After this many complete epochs every model is also evaluated (the mlp target
# compares -ELBO with the PyTorch peer after the same number of epochs).
EPOCH_CHECKPOINTS = (5,)
# The checkpoints the table and the comparisons report.
REPORTED = (60, 300, 900)
SETTINGS = {
    "full": {
        "checkpoints": (10, 30, 60, 120, 300, 600, 900),
        "reference_checkpoints": (10, 30, 60, 120, 300),
        "iw_k": 1000,
        "iw_images": 1000,
    },
    "quick": {
        "checkpoints": (5, 10, 20),
        "reference_checkpoints": (5, 10, 20),
        "iw_k": 50,
        "iw_images": 100,
    },
}
# Mean binary entropy of the test pixels: the floor of the Bernoulli term.
FLOOR_NOTE = "no model can reach below the mean binary entropy of the test pixels"


def pixel_entropy_floor(images):
    """Sum over pixels of the binary entropy of each intensity, nats per image (mean)."""
    p = np.clip(np.asarray(images, np.float64), 1e-12, 1 - 1e-12)
    entropy = -(p * np.log(p) + (1 - p) * np.log1p(-p))
    entropy[(images == 0) | (images == 1)] = 0.0
    return float(entropy.reshape(len(images), -1).sum(axis=1).mean())


def forward_flops(model):
    """Floating-point operations of one image's forward pass through a functional model.

    Counts the multiply-adds (2 FLOPs each) of Dense, Conv2D and
    Conv2DTranspose layers, recursing into nested models; biases,
    activations and element-wise ops are left out (under 1% here).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            # Every input position scatters a kh x kw x C_out patch.
            _, height, width, _ = layer.input.shape
            total += 2 * height * width * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += 2 * height * width * math.prod(layer.kernel.shape)
    return int(total)


class Budget(keras.callbacks.Callback):
    """Stops `fit` after `checkpoints[-1]` seconds of training, evaluating at each checkpoint.

    Training time runs from `on_train_begin` (so the first epoch's tracing
    counts) and excludes the evaluations, which happen between two steps
    once the time crosses a checkpoint, and after each of `epoch_checkpoints`
    complete epochs. Records every complete epoch's training seconds.

    Args:
        checkpoints: increasing training seconds.
        evaluate: `() -> dict` of figures, called at each checkpoint.
        steps_per_epoch: steps of a complete epoch.
        epoch_checkpoints: numbers of complete epochs after which to evaluate.
    """

    def __init__(self, checkpoints, evaluate, steps_per_epoch, epoch_checkpoints=()):
        super().__init__()
        self.checkpoints = tuple(sorted(checkpoints))
        self.evaluate = evaluate
        self.steps_per_epoch = steps_per_epoch
        self.epoch_checkpoints = set(epoch_checkpoints)
        self.curve = []
        self.after_epochs = []
        self.epoch_seconds = []

    def _elapsed(self):
        return time.perf_counter() - self._start - self._paused

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._paused = 0.0
        self._next = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._elapsed()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1
        elapsed = self._elapsed()
        if elapsed < self.checkpoints[self._next]:
            return
        pause = time.perf_counter()
        figures = self.evaluate()
        self.curve.append(
            {"checkpoint": self.checkpoints[self._next], "seconds": elapsed, **figures}
        )
        self._paused += time.perf_counter() - pause
        self._next += 1
        if self._next == len(self.checkpoints):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self._steps != self.steps_per_epoch:
            return
        elapsed = self._elapsed()
        self.epoch_seconds.append(elapsed - self._epoch_start)
        if len(self.epoch_seconds) in self.epoch_checkpoints:
            pause = time.perf_counter()
            point = {"epochs": len(self.epoch_seconds), "seconds": elapsed}
            self.after_epochs.append({**point, **self.evaluate()})
            self._paused += time.perf_counter() - pause


def decode_latency(decoder, latent_dim):
    """Median ms of a `tf.function` decode at batch 1 and 64."""
    compiled = generation.BatchedFunction(
        lambda z: decoder(z, training=False), (latent_dim,)
    ).function
    figures = {}
    for batch in (1, 64):
        z = tf.random.normal((batch, latent_dim))
        figures[f"decode_ms_batch_{batch}"] = median_ms(lambda z=z: compiled(z), calls=100)
    return figures


def run_preset(preset, train, test, settings, seed, verbose, learned_prior="standard"):
    keras.utils.set_random_seed(seed)
    model, dataset, steps = preset_model(preset, train, seed, learned_prior)
    budget = Budget(
        settings["checkpoints"],
        elbo_evaluator(lambda x: model.loss_terms(x), test, seed=seed),
        steps,
        EPOCH_CHECKPOINTS,
    )
    model.fit(
        dataset,
        epochs=10**6,
        steps_per_epoch=steps,
        callbacks=[budget],
        shuffle=False,
        verbose=verbose,
    )
    start = time.perf_counter()
    iw_nll = likelihood.importance_weighted_nll(
        model, test[: settings["iw_images"]], k=settings["iw_k"], seed=seed
    )
    budget.curve[-1].update(iw_nll=iw_nll, iw_seconds=time.perf_counter() - start)
    return {
        "model": preset,
        "training_path": (
            f"keras_vae: tf.data repeat() + steps_per_epoch, FusedAdam, "
            f"steps_per_execution {model.steps_per_execution}"
        ),
        "parameters": model.count_params() - 1,  # less the kl_weight variable
        "flops_per_image": forward_flops(model.encoder) + forward_flops(model.decoder),
        "curve": budget.curve,
        "after_epochs": budget.after_epochs,
        "epoch_seconds": budget.epoch_seconds,
        **epoch_figures(budget.epoch_seconds, steps * BATCH_SIZE),
        **decode_latency(model.decoder, model.latent_dim),
    }


def run_reference(train, test, settings, seed, verbose):
    keras.utils.set_random_seed(seed)
    model = keras_io_reference.build()
    steps = math.ceil(len(train) / BATCH_SIZE)
    budget = Budget(
        settings["reference_checkpoints"],
        elbo_evaluator(model.loss_terms, test, seed=seed),
        steps,
        EPOCH_CHECKPOINTS,
    )
    model.fit(train, epochs=10**6, batch_size=BATCH_SIZE, callbacks=[budget], verbose=verbose)
    return {
        "model": REFERENCE,
        "training_path": "keras.io example: fit on a numpy array",
        "parameters": model.encoder.count_params() + model.decoder.count_params(),
        "flops_per_image": forward_flops(model.encoder) + forward_flops(model.decoder),
        "curve": budget.curve,
        "after_epochs": budget.after_epochs,
        "epoch_seconds": budget.epoch_seconds,
        **epoch_figures(budget.epoch_seconds, len(train)),
        **decode_latency(model.decoder, keras_io_reference.LATENT_DIM),
    }


def check_torch_python(torch_python):
    """Exits with what to do when `torch_python` is missing (before any model trains)."""
    if not os.path.exists(torch_python):
        sys.exit(
            f"error: no PyTorch interpreter at {torch_python}. `make bench` creates the "
            "virtualenv .venv-torch (benchmarks/requirements-torch.txt); or pass "
            "--torch-python, or leave pytorch_reference out of --models."
        )


def run_torch_reference(train, test, settings, seed, torch_python, scratch):
    """Runs `benchmarks/pytorch_reference.py` under `torch_python` on the same data."""
    data = os.path.join(scratch, "data")
    os.makedirs(data, exist_ok=True)
    np.save(os.path.join(data, "train.npy"), train)
    np.save(os.path.join(data, "test.npy"), test)
    out = os.path.join(scratch, f"{TORCH_REFERENCE}.json")
    command = [torch_python, "-m", "benchmarks.pytorch_reference"]
    command += ["--data", data, "--out", out, "--seed", str(seed)]
    command += ["--checkpoints", *map(str, settings["checkpoints"])]
    command += ["--epoch-checkpoints", *map(str, EPOCH_CHECKPOINTS)]
    command += ["--iw-k", str(settings["iw_k"]), "--iw-images", str(settings["iw_images"])]
    subprocess.run(command, check=True, cwd=ROOT)
    with open(out) as f:
        result = json.load(f)
    return {**result, **epoch_figures(result["epoch_seconds"], result["images_per_epoch"])}


def at_checkpoint(result, checkpoint):
    for point in result["curve"]:
        if point["checkpoint"] == checkpoint:
            return point
    return None


def after_epochs(result, epochs):
    for point in result.get("after_epochs", []):
        if point["epochs"] == epochs:
            return point
    return None


def markdown(results, checkpoints, floor):
    reported = [c for c in checkpoints if c in REPORTED] or list(checkpoints)
    last = checkpoints[-1]
    epochs = EPOCH_CHECKPOINTS[0]
    header = (
        ["model"]
        + [f"-ELBO @ {c} s" for c in reported]
        + [f"IW-NLL @ {last} s", f"distance to floor @ {last} s", f"-ELBO after {epochs} epochs"]
        + ["epochs", "img/s", "slowest / median epoch", "MFLOP/img", "GFLOP/s"]
        + ["decode b1 ms", "decode b64 ms"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        row = [f"`{result['model']}`"]
        for checkpoint in reported:
            point = at_checkpoint(result, checkpoint)
            row.append(f"{point['neg_elbo']:.2f}" if point else "")
        final = at_checkpoint(result, last)
        iw_nll = final.get("iw_nll") if final else None
        row.append(f"{iw_nll:.2f}" if iw_nll is not None else "")
        best = iw_nll if iw_nll is not None else (final["neg_elbo"] if final else None)
        row.append(f"{best - floor:.2f}" if best is not None else "")
        point = after_epochs(result, epochs)
        row.append(f"{point['neg_elbo']:.2f}" if point else "")
        speed = result.get("images_per_second")
        row += [
            str(result["epochs"]),
            f"{speed:,.0f}" if speed else "",
            f"{result['slowest_over_median']:.2f}" if speed else "",
            f"{result['flops_per_image'] / 1e6:.2f}",
            f"{3 * result['flops_per_image'] * speed / 1e9:.1f}" if speed else "",
            f"{result['decode_ms_batch_1']:.3f}",
            f"{result['decode_ms_batch_64']:.3f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def comparisons(results, checkpoints):
    """Same-run comparisons: speed ratios and -ELBO differences (nats).

    `speed` entries are ours / peer training images per second; `neg_elbo`
    entries are ours - peer (negative: ours is lower, i.e. better); the
    `default` preset is compared with the best peer at each reported checkpoint
    that peer reached.
    """
    by_name = {r["model"]: r for r in results}
    figures = {}

    def speed(ours, peer):
        a, b = by_name.get(ours), by_name.get(peer)
        if a and b and a.get("images_per_second") and b.get("images_per_second"):
            figures[f"{ours}_over_{peer}_images_per_second"] = (
                a["images_per_second"] / b["images_per_second"]
            )

    speed("mlp", TORCH_REFERENCE)
    speed("keras_example", REFERENCE)
    epochs = EPOCH_CHECKPOINTS[0]
    if "mlp" in by_name and TORCH_REFERENCE in by_name:
        ours, peer = (
            after_epochs(by_name["mlp"], epochs),
            after_epochs(by_name[TORCH_REFERENCE], epochs),
        )
        if ours and peer:
            figures[f"mlp_minus_{TORCH_REFERENCE}_neg_elbo_after_{epochs}_epochs"] = (
                ours["neg_elbo"] - peer["neg_elbo"]
            )
    if "default" in by_name:
        for checkpoint in [c for c in checkpoints if c in REPORTED] or list(checkpoints):
            ours = at_checkpoint(by_name["default"], checkpoint)
            peers = {
                name: at_checkpoint(by_name[name], checkpoint)["neg_elbo"]
                for name in PEERS
                if name in by_name and at_checkpoint(by_name[name], checkpoint)
            }
            if ours and peers:
                best = min(peers, key=peers.get)
                figures[f"default_minus_best_peer_neg_elbo_at_{checkpoint}_s"] = {
                    "peer": best,
                    "nats": ours["neg_elbo"] - peers[best],
                }
    return figures


def _comparison_order(item):
    """Speed ratios, then the -ELBO after epochs, then `default` by checkpoint."""
    key = item[0]
    if key.endswith("_images_per_second"):
        return (0, 0, key)
    if "_neg_elbo_after_" in key:
        return (1, 0, key)
    return (2, int("".join(c for c in key if c.isdigit())), key)


def comparisons_table(report):
    """The `comparisons` of a report as a table, each with the figures it is made of."""
    by_name = {r["model"]: r for r in report["results"]}
    lines = ["| comparison | measured |", "|---|---|"]
    for key, value in sorted(report["comparisons"].items(), key=_comparison_order):
        if key.endswith("_images_per_second"):
            ours, peer = key.removesuffix("_images_per_second").split("_over_")
            a, b = by_name[ours]["images_per_second"], by_name[peer]["images_per_second"]
            lines.append(
                f"| `{ours}` / `{peer}`, training images/s | {a:,.0f} / {b:,.0f} = {value:.2f}x |"
            )
        elif "_neg_elbo_after_" in key:
            pair, epochs = key.removesuffix("_epochs").split("_neg_elbo_after_")
            ours, peer = pair.split("_minus_")
            a = after_epochs(by_name[ours], int(epochs))["neg_elbo"]
            b = after_epochs(by_name[peer], int(epochs))["neg_elbo"]
            lines.append(
                f"| `{ours}` - `{peer}`, test -ELBO after {epochs} epochs "
                f"| {a:.2f} - {b:.2f} = {value:+.2f} nats |"
            )
        else:
            checkpoint = int(key.removeprefix("default_minus_best_peer_neg_elbo_at_")[:-2])
            a = at_checkpoint(by_name["default"], checkpoint)["neg_elbo"]
            b = at_checkpoint(by_name[value["peer"]], checkpoint)["neg_elbo"]
            lines.append(
                f"| `default` - best peer at {checkpoint} s "
                f"| {a:.2f} - {b:.2f} (`{value['peer']}`) = {value['nats']:+.2f} nats |"
            )
    return "\n".join(lines)


def table(report):
    """The report's results table, at its own checkpoints and floor."""
    return markdown(report["results"], report["settings"]["checkpoints"], report["floor_nats"])


def plot_curves(results, path, floor=None):
    """Writes a PNG: test -ELBO against training seconds (log scale), one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=120)
    for result in results:
        seconds = [p["seconds"] for p in result["curve"]]
        values = [p["neg_elbo"] for p in result["curve"]]
        axes.plot(seconds, values, marker="o", label=result["model"])
    if floor is not None:
        axes.axhline(floor, color="gray", linestyle=":", label="pixel-entropy floor")
    axes.set_xscale("log")
    axes.set_xlabel("training seconds (evaluation excluded)")
    axes.set_ylabel("test negative ELBO (nats/image)")
    axes.set_title("Fashion-MNIST, batch 128, 2 CPU cores")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    tmp = f"{path}.tmp.png"
    figure.savefig(tmp)
    pyplot.close(figure)
    os.replace(tmp, path)


def parse_args(argv, prog="quality"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--quick", action="store_true", help="5, 10 and 20 s budgets")
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_ORDER),
        help="comma-separated, run in this order: presets, keras_io_reference, pytorch_reference",
    )
    parser.add_argument(
        "--torch-python",
        default=TORCH_PYTHON,
        help="the Python of a virtualenv with torch, for pytorch_reference (default: %(default)s)",
    )
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--learned-prior",
        default="standard",
        choices=("standard", "vamp"),
        help="the presets' prior while they train (vamp: train.py's default, K = 100)",
    )
    parser.add_argument("--out", default=None, help="JSON results path")
    parser.add_argument("--plot", default=None, help="learning-curve PNG path")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--run-one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The full run's figures are kept in the repository; the quick run's are a smoke test.
    if args.quick:
        args.out = args.out or "runs/bench-quick/quality_per_second_quick.json"
        args.plot = args.plot or "runs/bench-quick/learning_curves_quick.png"
    else:
        args.out = args.out or "benchmarks/results/quality_per_second_full.json"
        args.plot = args.plot or "docs/learning_curves_full.png"
    return args


def run_one(name, args, settings):
    """Trains and measures one model in this process; returns its result dict."""
    train, test = fashion_mnist(args.data_dir)
    if name == REFERENCE:
        return run_reference(train, test, settings, args.seed, args.verbose)
    return run_preset(name, train, test, settings, args.seed, args.verbose, args.learned_prior)


def main(argv=None, prog="quality"):
    args = parse_args(argv, prog)
    settings = SETTINGS["quick" if args.quick else "full"]
    if args.run_one:
        atomic_write_json(args.out, run_one(args.run_one, args, settings))
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in PRESET_RUNS + PEERS]
    if unknown:
        sys.exit(f"error: unknown model(s) {unknown}; choose from {PRESET_RUNS + PEERS}")
    if TORCH_REFERENCE in models:
        check_torch_python(args.torch_python)
    started = time.perf_counter()
    train, test = fashion_mnist(args.data_dir)
    floor = pixel_entropy_floor(test)
    child_argv = ["--seed", str(args.seed), "--verbose", str(args.verbose)]
    child_argv += ["--learned-prior", args.learned_prior]
    child_argv += ["--quick"] if args.quick else []
    child_argv += ["--data-dir", args.data_dir] if args.data_dir else []
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in models:
            print(f"== {name}", flush=True)
            if name == TORCH_REFERENCE:
                result = run_torch_reference(
                    train, test, settings, args.seed, args.torch_python, scratch
                )
            else:
                # One process per model: in a shared process the previous `fit`'s
                # iterator teardown stalled the next model's first steps for tens of
                # seconds with the CPU idle, and that stall landed on its clock.
                argv = [*child_argv, "--run-one", name]
                result = run_child("quality", argv, os.path.join(scratch, f"{name}.json"))
            results.append(result)
            print(json.dumps(result["curve"][-1]), flush=True)
    compared = comparisons(results, settings["checkpoints"])
    report = {
        "command": command_line(prog, args),
        "machine": machine_facts(),
        "settings": settings,
        "batch_size": BATCH_SIZE,
        "floor_nats": floor,
        "comparisons": compared,
        "total_seconds": time.perf_counter() - started,
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, report)
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    plot_curves(results, args.plot, floor)
    print(f"{table(report)}\n\n{comparisons_table(report)}")
    print(f"\nFloor ({FLOOR_NOTE}): {floor:.2f} nats")
    for name, value in compared.items():
        print(f"{name}: {json.dumps(value)}")
    print(f"Total {report['total_seconds']:.0f} s; wrote {args.out} and {args.plot}")
