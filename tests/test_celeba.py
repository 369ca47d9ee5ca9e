"""CelebA from the original on-disk layout (a fixture written here) and from tfds (mocked)."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_vae import datasets
from keras_vae.datasets import celeba

# Six photos of CelebA's aligned size (218 high, 178 wide); photo i is filled
# with gray level 40 * i inside the central face crop and black outside it.
COUNT = 6
PARTITIONS = [0, 0, 0, 1, 2, 2]


def fixture_attributes():
    rng = np.random.default_rng(0)
    return rng.random((COUNT, len(celeba.ATTRIBUTES))) < 0.5


@pytest.fixture
def celeba_dir(tmp_path):
    image_dir = tmp_path / celeba.IMAGE_DIR
    image_dir.mkdir()
    attributes = fixture_attributes()
    rows = []
    for i in range(COUNT):
        name = f"{i + 1:06d}.jpg"
        photo = np.zeros((218, 178, 3), np.uint8)
        photo[39:179, 19:159] = 40 * i  # the central 140x140 square
        Image.fromarray(photo).save(image_dir / name, quality=95)
        values = "  ".join("1" if has else "-1" for has in attributes[i])
        rows.append(f"{name}  {values}")
    (tmp_path / celeba.ATTRIBUTES_FILE).write_text(
        f"{COUNT}\n{' '.join(celeba.ATTRIBUTES)}\n" + "\n".join(rows) + "\n"
    )
    (tmp_path / celeba.PARTITION_FILE).write_text(
        "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(PARTITIONS))
    )
    return tmp_path


def test_on_disk_layout_gives_64x64_faces_with_40_attributes(celeba_dir):
    images, attributes, names = celeba.load("all", data_dir=str(celeba_dir))
    assert images.shape == (COUNT, 64, 64, 3) and images.dtype == np.float32
    assert attributes.shape == (COUNT, 40) and attributes.dtype == bool
    assert names == celeba.ATTRIBUTES
    np.testing.assert_array_equal(attributes, fixture_attributes())
    # The center crop keeps exactly the gray square: no black border left.
    np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 40 * np.arange(COUNT) / 255, atol=0.01)


def test_on_disk_splits_and_limit(celeba_dir):
    train, train_attributes, _ = celeba.load("train", data_dir=str(celeba_dir))
    test, _, _ = celeba.load("test", data_dir=str(celeba_dir))
    assert len(train) == 3 and len(test) == 2
    np.testing.assert_array_equal(train_attributes, fixture_attributes()[:3])
    np.testing.assert_allclose(test.mean(axis=(1, 2, 3)), [160 / 255, 200 / 255], atol=0.01)
    assert len(celeba.load("all", data_dir=str(celeba_dir), limit=4)[0]) == 4


def test_on_disk_errors_say_which_file_and_line(celeba_dir):
    attribute_file = celeba_dir / celeba.ATTRIBUTES_FILE
    lines = attribute_file.read_text().splitlines()
    attribute_file.write_text("\n".join(lines[:4] + [lines[4].replace("-1", "0", 1)] + lines[5:]))
    with pytest.raises(
        datasets.DataError, match=r"list_attr_celeba.txt, line 5: expected a file name"
    ):
        celeba.load("all", data_dir=str(celeba_dir))
    attribute_file.write_text("\n".join(lines[:-1]))
    with pytest.raises(datasets.DataError, match="line 1 says 6 images but 5 rows follow"):
        celeba.load("all", data_dir=str(celeba_dir))
    attribute_file.write_text("\n".join(lines))
    (celeba_dir / celeba.IMAGE_DIR / "000002.jpg").unlink()
    with pytest.raises(
        datasets.DataError, match="000002.jpg is listed in list_attr_celeba.txt but"
    ):
        celeba.load("all", data_dir=str(celeba_dir))
    (celeba_dir / celeba.PARTITION_FILE).unlink()
    with pytest.raises(datasets.DataError, match="list_eval_partition.txt is missing"):
        celeba.load("train", data_dir=str(celeba_dir))
    with pytest.raises(datasets.DataError, match="CelebA directory not found"):
        celeba.load("all", data_dir=str(celeba_dir / "nowhere"))
    with pytest.raises(ValueError, match="Valid CelebA splits: train, validation, test, all"):
        celeba.load("dev", data_dir=str(celeba_dir))


def test_tensorflow_datasets_celeb_a():
    with tfds.testing.mock_data(num_examples=5):
        images, attributes, names = celeba.load("train")
    assert images.shape == (5, 64, 64, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0
    assert attributes.shape == (5, 40) and attributes.dtype == bool
    assert names == celeba.ATTRIBUTES


def test_load_attributes_dispatches_to_celeba_and_class_labels(celeba_dir):
    images, attributes, names = datasets.load_attributes("celeba", "all", str(celeba_dir))
    assert images.shape == (COUNT, 64, 64, 3)
    smiling = datasets.attribute_index(names, "smiling")
    np.testing.assert_array_equal(attributes[:, smiling], fixture_attributes()[:, smiling])
    with pytest.raises(ValueError, match="Valid datasets: fashion_mnist, mnist, folder, celeba"):
        datasets.load_attributes("cifar10")


def test_class_labels_are_attributes(fashion_mnist):
    images, attributes, names = datasets.load_attributes("fashion_mnist", "test", limit=500)
    _, (_, test_labels) = fashion_mnist
    assert images.shape == (500, 28, 28, 1) and attributes.shape == (500, 10)
    trouser = datasets.attribute_index(names, "trouser")
    ankle_boot = datasets.attribute_index(names, "ankle_boot")
    assert (trouser, ankle_boot) == (1, 9)
    np.testing.assert_array_equal(attributes[:, trouser], test_labels[:500] == 1)
    assert attributes.sum(axis=1).tolist() == [1] * 500
    assert datasets.attribute_index(datasets.CLASS_NAMES["mnist"], "7") == 7
    with pytest.raises(ValueError, match="Unknown attribute 'hat'. Valid attributes: T-shirt/top"):
        datasets.attribute_index(names, "hat")


def test_training_streams_the_same_faces_the_toolkit_loads(celeba_dir):
    train, validation, test = datasets.streamed_splits(
        "celeba", str(celeba_dir), (32, 32, 3), validation_size=5
    )
    assert (len(train), len(validation), len(test)) == (3, 1, 2)
    for split, streamed in (("train", train), ("validation", validation), ("test", test)):
        assert streamed.verify() == []
        loaded, attributes, _ = celeba.load(split, data_dir=str(celeba_dir), size=32)
        np.testing.assert_allclose(streamed[:], loaded, atol=1 / 255)
        np.testing.assert_array_equal(streamed.attributes, attributes)


def test_keras_vae_train_on_celeba_files_then_a_smile_vector(celeba_dir, tmp_path):
    from keras_vae import cli
    from tests.testing import SMALL_EXPORT_ARGS, call_main

    run = tmp_path / "run"
    train = ["train", "--dataset", "celeba", "--data-dir", celeba_dir, "--image-size", "32"]
    train += ["--epochs", "1", "--batch-size", "2", "--prior", "standard", "--cache"]
    code, out, err = call_main(
        cli.main, [*train, "--run-dir", run, "--verbose", "0", *SMALL_EXPORT_ARGS]
    )
    assert code == 0, err
    assert len(list((run / "cache").iterdir())) == 6  # train, validation, test: records, kept
    argv = ["attribute", "--model", run, "--attribute", "Smiling", "--split", "all"]
    code, out, err = call_main(cli.main, [*argv, "--out", tmp_path / "smile.npy"])
    assert code == 0, err
    smiling = fixture_attributes()[:, celeba.ATTRIBUTES.index("Smiling")]
    assert f"Smiling: {smiling.sum()} of {COUNT} images have it" in err
    assert np.load(tmp_path / "smile.npy").shape == (32,)


def test_tensorflow_datasets_celeb_a_streams_through_one_cache_file(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        train, validation, test = datasets.streamed_splits("celeba", None, (16, 16, 3), 0, 4)
        assert train.needs_cache and len(validation.subset(0)) == 0  # nothing read yet
        cache = tmp_path / "cache" / datasets.folder.cache_name(test)
        assert test.verify(cache=str(cache)) == []
        in_memory, attributes, names = celeba.load("test", size=16)
    assert len(test) == 6 and test.attributes.shape == (6, 40)
    np.testing.assert_array_equal(test.attributes, attributes)
    np.testing.assert_allclose(test[:], in_memory, atol=1 / 255)
    assert names == test.folder.attribute_names
    assert sorted(os.listdir(cache.parent)) == sorted([cache.name, cache.name + ".attributes.npy"])
    again = datasets.streamed_splits("celeba", None, (16, 16, 3), 0, 4)[2]
    assert again.verify(cache=str(cache)) == []  # from the cache: no tfds read
    np.testing.assert_array_equal(again.read(range(6)), test.read(range(6)))
    assert validation.subset(2).subset(3).limit == 2


def test_keras_vae_train_on_tensorflow_datasets_celeb_a(tmp_path):
    from keras_vae import cli
    from tests.testing import SMALL_EXPORT_ARGS, call_main

    run = tmp_path / "run"
    argv = ["train", "--dataset", "celeba", "--image-size", "16", "--epochs", "1"]
    argv += ["--batch-size", "4", "--prior", "standard", "--validation-size", "2"]
    with tfds.testing.mock_data(num_examples=8):
        code, _, err = call_main(
            cli.main, [*argv, "--run-dir", run, "--verbose", "0", *SMALL_EXPORT_ARGS]
        )
    assert code == 0, err
    assert len(os.listdir(run / "cache")) == 6  # three splits: pictures and attributes
    named = json.loads((run / "attribute_vectors.json").read_text())
    assert set(named["names"]) <= set(celeba.ATTRIBUTES) and named["names"]


def test_keras_vae_train_conditional_on_celeba_s_attributes_then_a_smiling_face(
    celeba_dir, tmp_path
):
    import json

    from keras_vae import cli
    from tests.testing import SMALL_EXPORT_ARGS, call_main

    run = tmp_path / "run"
    train = ["train", "--dataset", "celeba", "--data-dir", celeba_dir, "--image-size", "16"]
    train += ["--epochs", "1", "--batch-size", "2", "--prior", "standard", "--conditional"]
    code, _, err = call_main(
        cli.main, [*train, "--run-dir", run, "--verbose", "0", *SMALL_EXPORT_ARGS]
    )
    assert code == 0, err
    generator = json.loads((run / "export" / "generator.json").read_text())
    assert generator["conditioning"]["label_type"] == "attributes"
    assert generator["conditioning"]["names"] == list(celeba.ATTRIBUTES)
    out = tmp_path / "smiling.png"
    argv = ["generate", "--model", run, "--attribute", "Smiling=1", "--attribute", "Eyeglasses"]
    code, _, err = call_main(cli.main, [*argv, "--n", "4", "--out", out])
    assert code == 0 and out.exists(), err
    code, _, err = call_main(
        cli.main, ["generate", "--model", run, "--attribute", "Smiling=yes", "--out", out]
    )
    assert code != 0 and "give NAME=VALUE with a number (Smiling=1)" in err, err
