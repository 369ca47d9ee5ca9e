"""README's colour pictures: a VAE trained on a folder of emoji with keras-vae train.

    python -m benchmarks emoji-pictures                 (make bench NAME=emoji-pictures)
    python -m benchmarks emoji-pictures --folder-only   (make emoji: the folder alone)

The folder comes from npm's emoji-datasource-google and emoji-datasource-twitter
(`make emoji` installs both, pinned, into --npm-dir): every 64x64 PNG of the
two sets, skin tones included, as --folder/<category>/<style>-<image>.png,
with an attributes.csv whose columns come from each emoji's name and set:
google, twitter, skin_tone, face, smiling, sunglasses, heart_eyes, cat,
heart, hand. The pictures are Google's Noto Emoji (Apache-2.0) and Twitter's
Twemoji (CC-BY 4.0); the npm packages are MIT.

Then it trains `conv_deep` on the folder at 64x64 RGB (--run-dir, reused when
done) and writes into --docs, with the keras-vae commands it prints:
  emoji_samples.png    samples from the fitted prior (`keras-vae generate`)
  emoji_edit.png       the smiling and sunglasses vectors added to faces (`edit`)
  emoji_averages.png   the average emoji with and without attributes (`average`)
"""

import csv
import json
import os
import shutil
import sys

from benchmarks.common import argument_parser

STYLES = ("google", "twitter")
SKIPPED_CATEGORIES = ("Component",)  # the five skin-tone swatches
# attribute -> words of an emoji's name (upper case) that give it; any one will do.
NAME_ATTRIBUTES = {
    "face": ("FACE",),
    "smiling": ("SMILING", "GRINNING", "SMILE"),
    "sunglasses": ("SUNGLASSES",),
    "heart_eyes": ("HEART-SHAPED", "HEART-EYES"),
    "cat": ("CAT",),
    "heart": ("HEART",),
    "hand": ("HAND", "THUMBS"),
}


def _words(name):
    return set(name.upper().replace(",", " ").split())


def name_attributes(name):
    """{attribute: 0/1} of an emoji named `name` ("SMILING FACE WITH SUNGLASSES")."""
    words = _words(name)
    return {
        attribute: int(any(word in words for word in triggers))
        for attribute, triggers in NAME_ATTRIBUTES.items()
    }


def _category_folder(category):
    return category.replace(" & ", "_and_").replace(" ", "_")


def _pictures(emoji, style):
    """(image file name, is a skin-tone variation) of `emoji` drawn in `style`."""
    if emoji.get(f"has_img_{style}"):
        yield emoji["image"], False
    for variation in (emoji.get("skin_variations") or {}).values():
        if variation.get(f"has_img_{style}"):
            yield variation["image"], True


def build_folder(npm_dir, folder):
    """Writes the emoji folder (see the module docstring); returns the number of pictures.

    Raises:
        SystemExit: a package or its emoji.json is missing (run `make emoji`).
    """
    rows = []
    staging = folder.rstrip("/") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    for style in STYLES:
        package = os.path.join(npm_dir, "node_modules", f"emoji-datasource-{style}")
        listing = os.path.join(package, "emoji.json")
        if not os.path.exists(listing):
            raise SystemExit(f"{listing} is missing: run `make emoji` (it installs it).")
        with open(listing) as f:
            emojis = json.load(f)
        for emoji in emojis:
            if emoji["category"] in SKIPPED_CATEGORIES:
                continue
            category = _category_folder(emoji["category"])
            attributes = name_attributes(emoji.get("name") or emoji["short_name"])
            for image, skin_tone in _pictures(emoji, style):
                source = os.path.join(package, "img", style, "64", image)
                if not os.path.exists(source):
                    continue
                relative = f"{category}/{style}-{image}"
                os.makedirs(os.path.join(staging, category), exist_ok=True)
                shutil.copyfile(source, os.path.join(staging, relative))
                styles = {name: int(name == style) for name in STYLES}
                rows.append({"file": relative, **styles, "skin_tone": int(skin_tone), **attributes})
    if not rows:
        raise SystemExit(f"No emoji pictures under {npm_dir}: run `make emoji`.")
    with open(os.path.join(staging, "attributes.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return len(rows)


def keras_vae(*argv):
    from keras_vae import cli

    argv = [str(arg) for arg in argv]
    print("keras-vae " + " ".join(argv), file=sys.stderr, flush=True)
    if cli.main(argv) != 0:
        raise SystemExit(f"keras-vae {argv[0]} failed")


def faces(folder, count, seed=0):
    """Test-split pictures of smiling-free faces, as keras-vae edit --images takes them."""
    import numpy as np

    with open(os.path.join(folder, "attributes.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    candidates = [
        row["file"]
        for row in rows
        if row["face"] == "1" and row["smiling"] == "0" and row["sunglasses"] == "0"
        and row["skin_tone"] == "0" and "Smileys" in row["file"]
    ]  # fmt: skip
    chosen = np.random.default_rng(seed).choice(len(candidates), count, replace=False)
    return [os.path.join(folder, candidates[i]) for i in sorted(chosen)]


def main(argv=None, prog="emoji-pictures"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--npm-dir", default="data/emoji-npm")
    parser.add_argument("--folder", default="data/emoji")
    parser.add_argument("--folder-only", action="store_true", help="Build the folder, no more.")
    parser.add_argument("--run-dir", default="runs/emoji-conv_deep")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--docs", default="docs")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.folder, "attributes.csv")):
        count = build_folder(args.npm_dir, args.folder)
        print(f"{args.folder}: {count} pictures", file=sys.stderr)
    if args.folder_only:
        return
    keras_vae(
        "train", "--dataset", "folder", "--data-dir", args.folder, "--image-size", 64,
        "--preset", "conv_deep", "--epochs", args.epochs, "--cache", "--validation-size", 500,
        "--run-dir", args.run_dir, "--verbose", 2, "--learned-prior", "standard",
    )  # fmt: skip
    docs, run = args.docs, args.run_dir
    keras_vae("generate", "--model", run, "--n", 48, "--out", f"{docs}/emoji_samples.png")
    keras_vae(
        "edit", "--model", run, "--images", *faces(args.folder, 4), "--attribute", "smiling",
        "--alphas", 0, 0.5, 1, 1.5, 2, "--split", "train",
        "--out", f"{docs}/emoji_edit_smiling.png",
    )  # fmt: skip
    keras_vae(
        "edit", "--model", run, "--images", *faces(args.folder, 4), "--attribute", "sunglasses",
        "--alphas", 0, 0.5, 1, 1.5, 2, "--split", "train",
        "--out", f"{docs}/emoji_edit_sunglasses.png",
    )  # fmt: skip
    keras_vae(
        "average", "--model", run, "--attribute", "google", "twitter", "face", "smiling", "cat",
        "heart", "--split", "train", "--out", f"{docs}/emoji_averages.png",
    )  # fmt: skip


if __name__ == "__main__":
    main()
