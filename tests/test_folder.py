"""A folder of the user's own pictures: scanning, decoding, splits, bad input, training on it."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from keras_vae import cli, datasets
from keras_vae.datasets import folder
from keras_vae.datasets.folder import FolderImages
from tests.testing import SMALL_EXPORT_ARGS, call_main, logged_images, write_folder


def test_scan_reads_every_format_class_folders_and_attributes(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog" / "puppies").mkdir(parents=True)
    rgb = np.zeros((20, 20, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "cat" / "a.png")
    Image.fromarray(rgb).save(tmp_path / "cat" / "b.JPG")
    Image.fromarray(rgb).save(tmp_path / "cat" / "c.bmp")
    Image.fromarray(rgb).save(tmp_path / "dog" / "d.webp")
    Image.fromarray(rgb).save(tmp_path / "dog" / "puppies" / "e.gif")
    Image.fromarray(rgb).save(tmp_path / "dog" / ".hidden.png")
    (tmp_path / "dog" / "notes.txt").write_text("not a picture")
    (tmp_path / "attributes.csv").write_text(
        "file,Smiling,Eyeglasses\ncat/a.png,1,-1\ncat/b.JPG,-1,1\ncat/c.bmp,-1,-1\n"
        "dog/d.webp,1,1\ndog/puppies/e.gif,0,1\n"
    )
    found = folder.scan(tmp_path)
    assert found.files == ("cat/a.png", "cat/b.JPG", "cat/c.bmp", "dog/d.webp", "dog/puppies/e.gif")
    assert found.class_names == ("cat", "dog")
    np.testing.assert_array_equal(found.labels, [0, 0, 0, 1, 1])
    assert found.attribute_names == ("cat", "dog", "Smiling", "Eyeglasses")
    np.testing.assert_array_equal(found.attributes[:, 2:], [[1, 0], [0, 1], [0, 0], [1, 1], [0, 1]])
    np.testing.assert_array_equal(found.attributes[:, 0], found.labels == 0)


def test_every_mode_decodes_upright_on_its_background_at_one_shape(tmp_path):
    grey = np.full((30, 40), 100, np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    rgba = np.zeros((30, 40, 4), np.uint8)  # fully transparent
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    palette = Image.fromarray(np.full((30, 40, 3), (0, 255, 0), np.uint8)).convert("P")
    palette.save(tmp_path / "palette.gif")
    deep = (np.full((30, 40), 65535, np.uint16)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit grey: white
    # A landscape photo saved sideways, with EXIF orientation 6 ("rotate 90 CW to view").
    sideways = np.zeros((40, 30, 3), np.uint8)
    sideways[:, :15] = 255  # left half white: upright, the top half is white
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(sideways).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    found = folder.scan(tmp_path)
    for background, clear in (("white", 255), ("black", 0)):
        images = FolderImages(found, range(len(found.files)), (12, 16, 3), background)
        assert images.verify() == []
        pixels = images.read(range(len(images)))
        assert pixels.shape == (5, 12, 16, 3) and pixels.dtype == np.uint8
        by_name = dict(zip(found.files, pixels, strict=True))
        assert abs(int(by_name["grey.png"].mean()) - 100) <= 1
        assert by_name["clear.png"].min() == by_name["clear.png"].max() == clear
        assert tuple(by_name["palette.gif"][6, 8]) == (0, 255, 0)
        assert by_name["deep.png"].min() >= 254
        upright = by_name["phone.jpg"].mean(axis=(1, 2))
        assert upright[:4].mean() > 200 and upright[-4:].mean() < 50
    grey_images = FolderImages(found, [0], (12, 16, 1))
    assert grey_images[:].shape == (1, 12, 16, 1)


def test_adding_files_never_moves_an_old_file_between_train_and_test(tmp_path):
    write_folder(tmp_path, per_class=40)
    before = folder.scan(tmp_path)
    parts = folder.split(before, seed=3)
    test_before = {before.files[i] for i in parts["test"]}
    assert 0 < len(test_before) < len(before.files) / 4
    write_folder(tmp_path / "green", per_class=30)  # new files, in new sub-sub-folders
    after = folder.scan(tmp_path)
    parts = folder.split(after, seed=3)
    test_after = {after.files[i] for i in parts["test"]}
    assert test_after & set(before.files) == test_before
    other_seed = folder.split(after, seed=4)["test"]
    assert {after.files[i] for i in other_seed} != test_after


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "holds no image file"),
        (lambda d: (d / "a.txt").write_text("x"), "holds no image file"),
        (lambda d: (write_folder(d), shutil.rmtree(d / "blue")), "has one class sub-folder, 'red'"),
        (lambda d: (write_folder(d), (d / "red" / "0.png").rename(d / "loose.png")), "directly"),
        (
            lambda d: (
                write_folder(d),
                (d / "attributes.csv").write_text("file,Smiling\nx.png,1\n"),
            ),
            "names 1 files that are not images",
        ),
        (
            lambda d: (
                write_folder(d, per_class=1),
                (d / "attributes.csv").write_text("file,Smiling\nred/0.png,yes\nblue/0.jpg,0\n"),
            ),
            "line 2: expected a file and 1 values of 1 and 0",
        ),
        (
            lambda d: (
                write_folder(d, per_class=1),
                (d / "attributes.csv").write_text("file,Smiling\nred/0.png,1\n"),
            ),
            "has no row for 1 images: blue/0.jpg",
        ),
    ],
    ids=[
        "empty",
        "no-pictures",
        "one-class",
        "loose-and-classes",
        "csv-missing",
        "csv-value",
        "csv-row",
    ],
)
def test_a_folder_that_cannot_be_read_is_one_error_naming_it(tmp_path, make, message):
    root = tmp_path / "pictures"
    root.mkdir()
    make(root)
    with pytest.raises(datasets.DataError, match=message) as caught:
        folder.scan(root)
    assert "\n" not in str(caught.value)


def test_unreadable_files_are_skipped_and_counted_or_refused_with_strict(tmp_path):
    write_folder(tmp_path, per_class=5)
    (tmp_path / "red" / "zero.png").write_bytes(b"")
    good = (tmp_path / "red" / "0.png").read_bytes()
    (tmp_path / "red" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "blue" / "text.jpg").write_text("not a JPEG")
    found = folder.scan(tmp_path)
    images = FolderImages(found, range(len(found.files)), (16, 16, 3))
    skipped = images.verify()
    assert sorted(os.path.basename(path) for path, _ in skipped) == [
        "text.jpg",
        "truncated.png",
        "zero.png",
    ]
    assert len(images) == 10 and images[:].shape == (10, 16, 16, 3)
    message = folder.skipped_message(skipped, 13)
    assert message.startswith("skipped 3 of 13 files that are not readable images: ")
    assert "--strict makes this an error" in message and "\n" not in message
    strict = FolderImages(found, range(len(found.files)), (16, 16, 3))
    with pytest.raises(datasets.DataError, match="is not a readable image .*drop --strict"):
        strict.verify(strict=True)


def test_no_readable_image_or_one_too_small_is_an_error_naming_a_file(tmp_path):
    (tmp_path / "a.png").write_text("x")
    (tmp_path / "b.png").write_text("y")
    found = folder.scan(tmp_path)
    with pytest.raises(datasets.DataError, match=r"No readable image among the 2 files .*a\.png"):
        FolderImages(found, [0, 1], (8, 8, 3)).verify()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(datasets.DataError, match=r"a\.png is 30x20 pixels, smaller than"):
        FolderImages(found, [0], (32, 32, 3)).verify()


def test_the_cache_holds_the_decoded_pictures_and_is_written_whole(tmp_path):
    write_folder(tmp_path / "pictures", per_class=6)
    found = folder.scan(tmp_path / "pictures")
    images = FolderImages(found, range(len(found.files)), (16, 16, 3))
    decoded = images.read(range(len(images)))
    cache = tmp_path / "run" / "cache" / folder.cache_name(images)
    assert images.verify(cache=str(cache)) == []
    # The records and which pictures they are; no temporary left.
    assert sorted(os.listdir(cache.parent)) == [cache.name, cache.name + ".kept.npy"]
    assert cache.stat().st_size == decoded.nbytes
    np.testing.assert_array_equal(images.read(range(len(images))), decoded)
    other = FolderImages(found, range(len(found.files)), (16, 16, 1))
    assert folder.cache_name(other) != cache.name  # another size: another file
    for path in (tmp_path / "pictures" / "red").iterdir():
        path.unlink()  # later reads come from the cache alone
    again = FolderImages(found, range(len(found.files)), (16, 16, 3))
    assert again.verify(cache=str(cache)) == []
    np.testing.assert_array_equal(again[3:5], decoded[3:5] / np.float32(255))


def test_the_pipeline_streams_every_picture_once_a_pass(tmp_path):
    from keras_vae.datasets import pipeline

    write_folder(tmp_path, per_class=7)
    found = folder.scan(tmp_path)
    images = FolderImages(found, range(len(found.files)), (8, 8, 3))
    expected = images[:]
    dataset = pipeline.make_dataset(images, batch_size=4, shuffle=True, seed=0)
    batches = [batch.numpy() for batch in dataset]
    assert [len(b) for b in batches] == [4, 4, 4, 2]
    streamed = np.concatenate(batches)
    order = np.lexsort(streamed.reshape(len(streamed), -1).T)
    np.testing.assert_array_equal(
        streamed[order], expected[np.lexsort(expected.reshape(len(expected), -1).T)]
    )
    assert not np.array_equal(streamed, expected)  # shuffled


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset", "folder"], "--dataset folder needs --data-dir"),
        (["--image-size", "64"], "fashion_mnist is 28x28; drop the flag"),
        (["--channels", "3"], "fashion_mnist is grey; drop the flag"),
        (["--dataset", "folder", "--data-dir", ".", "--image-size", "big"], "must be a side"),
        (["--dataset", "folder", "--data-dir", ".", "--channels", "4"], "must be 1 or 3"),
        (
            ["--dataset", "folder", "--data-dir", ".", "--image-size", "30", "--preset", "conv"],
            "divisible by 4 (8, 12, 16...); --image-size 30 is 30x30",
        ),
        (["--preset", "conv_deep"], "fashion_mnist images are 28x28: use another --preset"),
    ],
)
def test_data_flags_that_cannot_work_are_refused_before_anything_is_read(flags, message, tmp_path):
    code, _, err = call_main(cli.main, ["train", "--run-dir", tmp_path / "run", *flags])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_keras_vae_train_on_a_folder_of_colour_pictures_then_export_explorer_and_toolkit(
    tmp_path, monkeypatch
):
    pictures = write_folder(tmp_path / "pictures", per_class=40)
    (pictures / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    monkeypatch.chdir(tmp_path)  # any directory: the flags name the paths
    train = ["train", "--dataset", "folder", "--data-dir", "pictures", "--image-size", "32"]
    train += ["--channels", "3", "--epochs", "1", "--run-dir", "run", "--batch-size", "16"]
    train += ["--prior", "standard", "--verbose", "0", *SMALL_EXPORT_ARGS, "16"]
    code, out, err = call_main(cli.main, train)
    assert code == 0, err
    assert "skipped 1 of 81 files" in err and "broken.png" in err  # of all 81, not a split's
    assert "test: negative_elbo" in out
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "folder" and config["data_dir"] == str(pictures)
    # The inputs of reconstructions.png are red and blue; after one epoch the
    # decoded pictures are colour too, if faintly.
    for picture, spread in (("reconstructions.png", 100), ("samples.png", 10)):
        with Image.open(run / picture) as image:
            pixels = np.asarray(image.convert("RGB"), np.int16)
        assert np.abs(pixels[..., 0] - pixels[..., 2]).max() > spread, picture
    # TensorBoard's grids and the projector's sprite are in colour too.
    logged = logged_images(run / "logs" / "images")
    assert {"reconstructions", "samples"} <= set(logged)
    for tag, steps in logged.items():
        for picture in steps.values():
            assert picture.shape[-1] == 3, tag
    inputs = next(iter(logged["reconstructions"].values())).astype(np.int16)
    assert np.abs(inputs[..., 0] - inputs[..., 2]).max() > 100
    with Image.open(run / "logs" / "projector" / "sprite.png") as sprite:
        assert sprite.mode == "RGB"
    generator = json.loads((run / "export" / "generator.json").read_text())
    assert generator["image_shape"] == [32, 32, 3]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(run / "export" / "generator_float32_b16.tflite"))
    # A static file's rows are whole pictures, H x W x C (see its "output_layout").
    shapes = [list(detail["shape"]) for detail in interpreter.get_output_details()]
    assert shapes == [[16, 32 * 32 * 3]] * 2
    code, _, err = call_main(cli.main, ["web", "--run-dir", "run", "--no-serve"])
    assert code == 0, err
    assert (run / "web" / "index.html").exists()
    code, out, err = call_main(cli.main, ["attribute", "--model", "run", "--attribute", "red"])
    assert code == 0, err
    assert np.load(out.strip().splitlines()[-1]).shape == (32,)
    code, _, err = call_main(cli.main, [*train[:6], "24", *train[7:]])
    assert code == 2 and "--image-size '32x32' there, '24x24' now" in err, err


def test_a_cache_written_with_skipped_files_reads_back_the_same_pictures(tmp_path):
    write_folder(tmp_path / "pictures", per_class=3)
    (tmp_path / "pictures" / "blue" / "0.jpg").write_text("not a JPEG")
    found = folder.scan(tmp_path / "pictures")
    images = FolderImages(found, range(len(found.files)), (8, 8, 3))
    cache = str(tmp_path / "cache" / folder.cache_name(images))
    assert len(images.verify(cache=cache)) == 1
    again = FolderImages(found, range(len(found.files)), (8, 8, 3))
    assert again.verify(cache=cache) == []  # from the cache, without decoding
    np.testing.assert_array_equal(again.indices, images.indices)
    np.testing.assert_array_equal(again[:], images[:])
    np.testing.assert_array_equal(again.labels, images.labels)


def test_shards_split_the_files_between_workers_before_or_after_the_cache(tmp_path):
    write_folder(tmp_path / "pictures", per_class=5)
    found = folder.scan(tmp_path / "pictures")
    whole = FolderImages(found, range(len(found.files)), (8, 8, 3))
    shards = [whole.shard(3, index) for index in range(3)]
    assert sorted(np.concatenate([s.indices for s in shards]).tolist()) == list(range(10))
    assert [len(s) for s in shards] == [4, 3, 3]
    np.testing.assert_array_equal(shards[1][:], whole[1::3])
    np.testing.assert_array_equal(shards[1].labels, whole.labels[1::3])
    # After the first pass the shard reads its records of the one cache file.
    expected = shards[2][:]
    cache = str(tmp_path / "cache" / folder.cache_name(whole))
    whole.verify(cache=cache)
    for path in (tmp_path / "pictures" / "red").iterdir():
        path.unlink()
    np.testing.assert_array_equal(whole.shard(3, 2)[:], expected)
    np.testing.assert_array_equal(whole.shard(3, 2).subset(2)[:], expected[:2])
    with pytest.raises(ValueError, match=r"shard index must be in \[0, 3\); got 3"):
        whole.shard(3, 3)


def test_a_worker_decodes_only_its_own_shard_of_the_training_files(tmp_path, capsys):
    from keras_vae.training import train as training
    from keras_vae.training.config import TrainingConfig

    write_folder(tmp_path / "pictures", per_class=20, size=(16, 16))
    # One broken training file: only the worker whose shard holds it meets it.
    config = TrainingConfig(
        dataset="folder",
        data_dir=str(tmp_path / "pictures"),
        image_size="16",
        channels=3,
        validation_size=0,
    )
    whole = training.load_splits(config).train
    broken = whole.path(3)
    with open(broken, "wb") as f:
        f.write(b"not a picture")
    shards = [training.load_splits(config, shard=(2, index))[0] for index in range(2)]
    assert len(shards[0]) + len(shards[1]) == len(whole) - 1
    paths = [{s.path(p) for p in range(len(s))} for s in shards]
    assert not paths[0] & paths[1] and broken not in paths[0] | paths[1]
    errors = capsys.readouterr().err
    assert errors.count("skipped 1 of") == 1 and os.path.basename(broken) in errors


def test_a_run_dir_inside_the_folder_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    write_folder(tmp_path / "pictures", per_class=3)
    monkeypatch.chdir(tmp_path / "pictures")
    argv = ["train", "--dataset", "folder", "--data-dir", ".", "--run-dir", "runs/latest"]
    code, _, err = call_main(cli.main, argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--run-dir runs/latest is inside --data-dir" in err and "outside the folder" in err
    assert sorted(os.listdir(tmp_path / "pictures")) == ["blue", "red"]
    # Also through a link to a folder elsewhere, which the folder's reader follows.
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "pictures" / "runs")
    code, _, err = call_main(cli.main, argv)
    assert code == 2 and "is inside --data-dir" in err, err
    assert os.listdir(tmp_path / "elsewhere") == []
