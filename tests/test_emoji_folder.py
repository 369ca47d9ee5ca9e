"""The emoji folder `make emoji` builds from npm's emoji-datasource packages (a fixture here)."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from benchmarks import emoji_pictures
from keras_vae.datasets import folder

EMOJIS = [
    {
        "name": "SMILING FACE WITH SUNGLASSES",
        "short_name": "sunglasses",
        "image": "1f60e.png",
        "category": "Smileys & Emotion",
        "has_img_google": True,
        "has_img_twitter": True,
    },
    {
        "name": "WAVING HAND SIGN",
        "short_name": "wave",
        "image": "1f44b.png",
        "category": "People & Body",
        "has_img_google": True,
        "has_img_twitter": False,
        "skin_variations": {
            "1F3FB": {"image": "1f44b-1f3fb.png", "has_img_google": True, "has_img_twitter": True}
        },
    },
    {
        "name": "EMOJI MODIFIER FITZPATRICK TYPE-1-2",
        "short_name": "skin-tone-2",
        "image": "1f3fb.png",
        "category": "Component",
        "has_img_google": True,
        "has_img_twitter": True,
    },
]


def write_packages(npm_dir):
    for style in emoji_pictures.STYLES:
        package = npm_dir / "node_modules" / f"emoji-datasource-{style}"
        images = package / "img" / style / "64"
        images.mkdir(parents=True)
        (package / "emoji.json").write_text(json.dumps(EMOJIS))
        for emoji in EMOJIS:
            names = [emoji["image"]] + [
                v["image"] for v in emoji.get("skin_variations", {}).values()
            ]
            for name in names:
                pixels = np.zeros((64, 64, 4), np.uint8)
                pixels[16:48, 16:48] = (255, 200, 0, 255)
                Image.fromarray(pixels).save(images / name)


def test_the_folder_has_category_folders_and_name_attributes(tmp_path):
    write_packages(tmp_path / "npm")
    out = tmp_path / "emoji"
    assert emoji_pictures.build_folder(str(tmp_path / "npm"), str(out)) == 5
    with open(out / "attributes.csv", newline="") as f:
        rows = {row["file"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == [
        "People_and_Body/google-1f44b-1f3fb.png",
        "People_and_Body/google-1f44b.png",
        "People_and_Body/twitter-1f44b-1f3fb.png",
        "Smileys_and_Emotion/google-1f60e.png",
        "Smileys_and_Emotion/twitter-1f60e.png",
    ]  # no Component swatch; no twitter picture where the set has none
    sunglasses = rows["Smileys_and_Emotion/twitter-1f60e.png"]
    assert (sunglasses["twitter"], sunglasses["google"]) == ("1", "0")
    assert (sunglasses["smiling"], sunglasses["sunglasses"], sunglasses["face"]) == ("1", "1", "1")
    assert sunglasses["hand"] == sunglasses["skin_tone"] == "0"
    wave = rows["People_and_Body/google-1f44b-1f3fb.png"]
    assert (wave["hand"], wave["skin_tone"], wave["smiling"]) == ("1", "1", "0")
    scanned = folder.scan(out)  # a folder keras-vae train reads
    assert scanned.class_names == ("People_and_Body", "Smileys_and_Emotion")
    assert "sunglasses" in scanned.attribute_names
    assert emoji_pictures.build_folder(str(tmp_path / "npm"), str(out)) == 5  # rebuilt whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emoji", "npm"]


def test_without_the_packages_it_says_to_run_make_emoji(tmp_path):
    with pytest.raises(SystemExit, match="run `make emoji`"):
        emoji_pictures.build_folder(str(tmp_path / "npm"), str(tmp_path / "emoji"))
    assert not (tmp_path / "emoji").exists()
