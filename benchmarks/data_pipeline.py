"""Folders of pictures streamed from disk: memory, speed and quality against in-memory IDX.

    python -m benchmarks data        (make bench NAME=data, or make bench-data)

Every training run is `keras-vae train` in a fresh process (its peak RSS from
`wait4`), float32 export only:
- memory: 3 epochs of `default` on flat folders of 10k, 50k and 200k 64x64
  RGBA emoji PNGs (data/emoji's 7,562 pictures hard-linked over and over;
  `make emoji` builds it), decoded every epoch (no --cache). Target: peak RSS
  grows by less than 300 MB from 10k to 200k.
- speed and parity: Fashion-MNIST's 60,000 training images written as a PNG
  folder with class sub-folders, trained with `--image-size 28 --channels 1
  --cache`, against the IDX path (`--dataset fashion_mnist`) with
  `--train-subset` set to the folder's training and validation count, so both
  train on as many images; same seed and settings otherwise. Speed: images/s
  of the epochs after the first (median). Target: the folder within 1.25x of
  IDX. Parity: each best model's test -ELBO on the same 10,000 IDX test
  images. Target: within 0.5 nats.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks.common import ROOT, argument_parser, run_facts
from keras_vae.utils.atomic_files import atomic_write_json

MEMORY_SIZES = (10_000, 50_000, 200_000)
SMALL_EXPORT = ["--export-variants", "float32", "--export-static-batch-sizes"]


def keras_vae_train(run_dir, *flags):
    """`keras-vae train` in a fresh process: its training.json, metrics, peak RSS and seconds."""
    command = [sys.executable, "-m", "keras_vae", "train", "--run-dir", run_dir, "--verbose", "0"]
    command += ["--learned-prior", "standard"]  # the pipelines compared, under N(0, I)
    command += [str(flag) for flag in flags] + SMALL_EXPORT
    print(" ".join(command[2:]), file=sys.stderr, flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"keras-vae train exited with {process.returncode}")
    with open(os.path.join(run_dir, "training.json")) as f:
        training = json.load(f)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    epochs = training["epoch_wall_seconds"]
    images_per_epoch = training["optimizer_iterations"] // training["epochs"] * 128
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "seconds": round(seconds, 1),
        "images_per_second_after_first_epoch": round(
            images_per_epoch / statistics.median(epochs[1:]), 1
        ),
        "epoch_wall_seconds": epochs,
        "test_negative_elbo_own_split": round(metrics["negative_elbo"], 3),
    }


def linked_folder(source, out, count):
    """`out` with `count` pictures: hard links to `source`'s PNGs, over and over."""
    pictures = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(source)
        for name in names
        if name.endswith(".png")
    )
    if not pictures:
        raise SystemExit(f"No PNG under {source}: run `make emoji`.")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for i in range(count):
        os.link(pictures[i % len(pictures)], os.path.join(out, f"{i:06d}.png"))


def fashion_mnist_folder(out):
    """Fashion-MNIST's training images as out/<class>/<index>.png (grey, 28x28)."""
    import numpy as np
    from PIL import Image

    from keras_vae import datasets

    if os.path.exists(os.path.join(out, ".complete")):
        return
    shutil.rmtree(out, ignore_errors=True)
    images, labels = datasets.load("fashion_mnist", "train")
    pixels = np.rint(images[..., 0] * 255).astype(np.uint8)
    names = [
        name.replace("/", "-").replace(" ", "_") for name in datasets.CLASS_NAMES["fashion_mnist"]
    ]
    for name in names:
        os.makedirs(os.path.join(out, name))
    for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        Image.fromarray(image).save(os.path.join(out, names[label], f"{i:05d}.png"))
    open(os.path.join(out, ".complete"), "w").close()


def idx_test_elbo(run_dir):
    """The best model's test -ELBO on Fashion-MNIST's 10,000 IDX test images."""
    code = (
        "import json, sys\n"
        "from keras_vae import datasets\n"
        "from keras_vae.training import run_dir, train\n"
        "model, _ = run_dir.load_model(sys.argv[1])\n"
        "images, _ = datasets.load('fashion_mnist', 'test')\n"
        "print(json.dumps(train.evaluate(model, images, 128)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, run_dir], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return round(json.loads(result.stdout.strip().splitlines()[-1])["negative_elbo"], 3)


def memory_table(result):
    rows = result["memory"]
    base = rows[0]["peak_rss_mb"]
    lines = [
        "| pictures (64x64 PNG) | peak RSS, MB | growth from the smallest, MB | wall seconds "
        "| img/s after epoch 1 |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['images']:,} | {row['peak_rss_mb']:,.0f} | {row['peak_rss_mb'] - base:+,.0f} "
            f"| {row['seconds']:,.0f} | {row['images_per_second_after_first_epoch']:,.0f} |"
        )
    return "\n".join(lines)


def speed_table(result):
    idx, png = result["idx"], result["folder"]
    ratio = idx["images_per_second_after_first_epoch"] / png["images_per_second_after_first_epoch"]
    lines = [
        f"| Fashion-MNIST, {result['settings']['epochs']} epochs of `default` | img/s after "
        "epoch 1 | test -ELBO, IDX test set | test -ELBO, its own test split |",
        "|---|---|---|---|",
    ]
    rows = [("IDX in memory", idx), ("PNG folder, --cache", png)]
    if "idx_seed1" in result:
        rows.append(("IDX in memory, --seed 1", result["idx_seed1"]))
    for name, row in rows:
        lines.append(
            f"| {name} | {row['images_per_second_after_first_epoch']:,.0f} "
            f"| {row['test_negative_elbo_idx_test']:.2f} "
            f"| {row['test_negative_elbo_own_split']:.2f} |"
        )
    lines.append(
        f"| IDX / folder | {ratio:.2f}x | "
        f"{png['test_negative_elbo_idx_test'] - idx['test_negative_elbo_idx_test']:+.2f} nats | |"
    )
    if "idx_seed1" in result:
        spread = (
            result["idx_seed1"]["test_negative_elbo_idx_test"] - idx["test_negative_elbo_idx_test"]
        )
        lines.append(f"| IDX --seed 1 - IDX --seed 0 | | {spread:+.2f} nats | |")
    return "\n".join(lines)


def main(argv=None, prog="data"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--emoji", default="data/emoji", help="`make emoji`'s folder")
    parser.add_argument("--scratch", default="runs/bench-data")
    parser.add_argument("--sizes", default=",".join(map(str, MEMORY_SIZES)))
    parser.add_argument("--epochs", type=int, default=10, help="of the speed and parity runs")
    parser.add_argument("--out", default="benchmarks/results/data_pipeline.json")
    args = parser.parse_args(argv)
    scratch = args.scratch
    memory = []
    for count in [int(size) for size in args.sizes.split(",")]:
        folder = os.path.join(scratch, f"emoji-{count}")
        linked_folder(args.emoji, folder, count)
        run_dir = os.path.join(scratch, f"run-emoji-{count}")
        shutil.rmtree(run_dir, ignore_errors=True)  # a finished run would not train again
        run = keras_vae_train(
            run_dir, "--dataset", "folder", "--data-dir", folder, "--image-size", 64,
            "--epochs", 3, "--prior", "gaussian",
        )  # fmt: skip
        memory.append({"images": count, **run})
        shutil.rmtree(folder)
        print(memory_table({"memory": memory}), flush=True)
    png = os.path.join(scratch, "fashion_mnist_png")
    fashion_mnist_folder(png)
    from keras_vae.datasets import folder as folders

    parts = folders.split(folders.scan(png), seed=0)
    epochs = ["--epochs", args.epochs]
    png_dir = os.path.join(scratch, "run-fashion_mnist-png")
    idx_dir = os.path.join(scratch, "run-fashion_mnist-idx")
    seed_dir = os.path.join(scratch, "run-fashion_mnist-idx-seed1")
    for directory in (png_dir, idx_dir, seed_dir):
        shutil.rmtree(directory, ignore_errors=True)
    png_run = keras_vae_train(
        png_dir, "--dataset", "folder", "--data-dir", png, "--image-size", 28, "--channels", 1,
        "--cache", *epochs,
    )  # fmt: skip
    idx_run = keras_vae_train(idx_dir, "--train-subset", len(parts["train"]), *epochs)
    # The same IDX run with another seed: how far two runs land apart by chance.
    seed_run = keras_vae_train(
        seed_dir, "--train-subset", len(parts["train"]), "--seed", 1, *epochs
    )
    for run, directory in ((png_run, png_dir), (idx_run, idx_dir), (seed_run, seed_dir)):
        run["test_negative_elbo_idx_test"] = idx_test_elbo(directory)
    result = {
        **run_facts(prog, args),
        "settings": {"epochs": args.epochs, "folder_training_images": len(parts["train"])},
        "memory": memory,
        "idx": idx_run,
        "folder": png_run,
        "idx_seed1": seed_run,
    }
    atomic_write_json(args.out, result)
    print(memory_table(result))
    print(speed_table(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
