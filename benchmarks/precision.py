"""float32 against mixed bfloat16 training on the CPU: speed and test -ELBO after the same epochs.

    python -m benchmarks.precision [--presets mlp,default,conv] [--epochs 5]

For each preset, float32 then `mixed_bfloat16` (what `train.py
--mixed-precision` sets on a CPU: bfloat16 compute, float32 variables; the
VAE computes its loss, KL and metrics in float32 either way), each in a fresh
Python process: `--epochs` epochs of Fashion-MNIST (all 60,000 training
images) through `benchmark.quality_per_second`'s path (train.py's
pipeline, FusedAdam, steps_per_execution), batch 128, Adam 1e-3, seed 0;
then the test negative ELBO (10,000 images, one z each, analytic KL).
Training images/s is the median over epochs 2..N. Prints a Markdown table
with the bfloat16 / float32 speed ratio and the -ELBO difference; writes JSON
to --out.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.common import command_line, machine_facts
from keras_vae.files import atomic_write_json

PRECISIONS = ("float32", "mixed_bfloat16")


def run_in_process(preset, policy, args):
    import keras
    import tensorflow as tf

    from benchmarks import quality_per_second as bench
    from keras_vae import datasets, pipeline, training
    from keras_vae.callbacks import EpochTimer
    from keras_vae.config import TrainingConfig

    keras.mixed_precision.set_global_policy(policy)
    train, _ = datasets.load("fashion_mnist", "train", args.data_dir)
    test, _ = datasets.load("fashion_mnist", "test", args.data_dir)
    keras.utils.set_random_seed(args.seed)
    config = TrainingConfig(
        preset=preset,
        seed=args.seed,
        batch_size=bench.BATCH_SIZE,
        learning_rate=bench.LEARNING_RATE,
    )
    model = training.build_model(config, tf.distribute.get_strategy(), train.shape[1:], len(train))
    dataset, steps = pipeline.training_dataset(train, bench.BATCH_SIZE, seed=args.seed)
    timer = EpochTimer()
    model.fit(dataset, epochs=args.epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    evaluate = bench.elbo_evaluator(lambda x: model.loss_terms(x), test, seed=args.seed)
    return {
        "preset": preset,
        "policy": policy,
        "compute_dtype": model.encoder.layers[-1].compute_dtype,
        **evaluate(),
        **bench.epoch_figures(timer.seconds, steps * bench.BATCH_SIZE),
        "epoch_seconds": timer.seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
                command = [sys.executable, "-m", "benchmarks.precision"]
                command += ["--run-one", preset, policy, "--out", out]
                command += ["--epochs", str(args.epochs), "--seed", str(args.seed)]
                command += ["--data-dir", args.data_dir] if args.data_dir else []
                subprocess.run(command, check=True)
                with open(out) as f:
                    rows.append(json.load(f))
    atomic_write_json(
        args.out,
        {
            "command": command_line("benchmarks.precision", args),
            "machine": machine_facts(),
            "rows": rows,
        },
    )
    print(
        f"| preset | policy | img/s | bf16 / f32 speed | test -ELBO after {args.epochs} epochs "
        "| bf16 - f32 (nats) |"
    )
    print("|---|---|---|---|---|---|")
    by_key = {(r["preset"], r["policy"]): r for r in rows}
    for row in rows:
        base = by_key.get((row["preset"], "float32"))
        speed = row["images_per_second"] / base["images_per_second"] if base else None
        delta = row["neg_elbo"] - base["neg_elbo"] if base else None
        print(
            f"| `{row['preset']}` | {row['policy']} | {row['images_per_second']:,.0f} "
            f"| {speed:.2f} | {row['neg_elbo']:.2f} | {delta:+.2f} |"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
