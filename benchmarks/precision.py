"""float32 against mixed bfloat16 training on the CPU: speed and test -ELBO after the same epochs.

    python -m benchmarks precision [--presets mlp,default,conv] [--epochs 5]

For each preset, float32 then `mixed_bfloat16` (what `train.py
--mixed-precision` sets on a CPU: bfloat16 compute, float32 variables; the
VAE computes its loss, KL and metrics in float32 either way), each in a fresh
Python process: `--epochs` epochs of Fashion-MNIST (all 60,000 training
images) through train.py's path (`benchmarks.trainers.preset_model`: its
pipeline, FusedAdam, steps_per_execution), batch 128, Adam 1e-3, seed 0;
then the test negative ELBO (10,000 images, one z each, analytic KL).
Training images/s is the median over epochs 2..N. Prints a Markdown table
with the bfloat16 / float32 speed ratio and the -ELBO difference; writes JSON
to --out.
"""

import argparse
import os
import tempfile

from benchmarks.common import argument_parser, run_child, run_facts
from keras_vae.utils.atomic_files import atomic_write_json

PRECISIONS = ("float32", "mixed_bfloat16")


def run_in_process(preset, policy, args):
    import keras

    from benchmarks import trainers

    keras.mixed_precision.set_global_policy(policy)
    train, test = trainers.fashion_mnist(args.data_dir)
    keras.utils.set_random_seed(args.seed)
    model, dataset, steps = trainers.preset_model(preset, train, args.seed)
    timer = trainers.timed_fit(model, args.epochs, x=dataset, steps_per_epoch=steps)
    evaluate = trainers.elbo_evaluator(lambda x: model.loss_terms(x), test, seed=args.seed)
    return {
        "preset": preset,
        "policy": policy,
        "compute_dtype": model.encoder.layers[-1].compute_dtype,
        **evaluate(),
        **trainers.epoch_figures(timer.seconds, steps * trainers.BATCH_SIZE),
        "epoch_seconds": timer.seconds,
    }


def table(result):
    """The Markdown table of a result: speed and -ELBO, bfloat16 against float32."""
    rows = result["rows"]
    epochs = result["settings"]["epochs"] if "settings" in result else 5
    lines = [
        f"| preset | policy | img/s | bfloat16 / float32 speed | test -ELBO after {epochs} epochs "
        "| bfloat16 - float32 |",
        "|---|---|---|---|---|---|",
    ]
    by_key = {(r["preset"], r["policy"]): r for r in rows}
    for row in rows:
        base = by_key[(row["preset"], "float32")]
        speed = row["images_per_second"] / base["images_per_second"]
        delta = "" if row is base else f"{row['neg_elbo'] - base['neg_elbo']:+.2f}"
        lines.append(
            f"| `{row['preset']}` | {row['policy']} | {row['images_per_second']:,.0f} "
            f"| {speed:.2f} | {row['neg_elbo']:.2f} | {delta} |"
        )
    return "\n".join(lines)


def main(argv=None, prog="precision"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--presets", default="mlp,default,conv")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX directory")
    parser.add_argument("--out", default="benchmarks/results/precision.json")
    parser.add_argument("--run-one", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        atomic_write_json(args.out, run_in_process(*args.run_one, args))
        return
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
            for policy in PRECISIONS:
                print(f"== {preset} {policy}", flush=True)
                out = os.path.join(scratch, f"{preset}-{policy}.json")
                argv = ["--run-one", preset, policy, "--epochs", args.epochs, "--seed", args.seed]
                argv += ["--data-dir", args.data_dir] if args.data_dir else []
                rows.append(run_child(prog, argv, out))
    result = {**run_facts(prog, args), "rows": rows}
    atomic_write_json(args.out, result)
    print(table(result))
    print(f"wrote {args.out}")
