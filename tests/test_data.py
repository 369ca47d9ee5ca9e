import gzip
import struct
import tracemalloc

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_vae import datasets
from keras_vae.datasets import pipeline
from tests.testing import write_idx


def test_load_idx_split_shapes_dtypes_range_and_label_alignment(idx_dir):
    images, labels = datasets.load_idx_split(str(idx_dir), "train")
    assert images.shape == (30, 8, 8, 1) and images.dtype == np.float32
    assert labels.shape == (30,) and labels.dtype == np.int64
    assert images.min() >= 0 and images.max() <= 1
    # Fixture: every pixel of image i is 10 * label_i / 255.
    np.testing.assert_allclose(images[:, 0, 0, 0], labels * 10 / 255.0, rtol=1e-6)
    test_images, _ = datasets.load_idx_split(str(idx_dir), "test")
    assert len(test_images) == 10


def test_uncompressed_idx_files_are_read_too(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "plain-idx3-ubyte", array)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "plain-idx3-ubyte"), array)
    (tmp_path / "folder-idx3-ubyte").mkdir()
    with pytest.raises(datasets.DataError) as raised:
        datasets.read_idx(tmp_path / "folder-idx3-ubyte")
    assert "folder-idx3-ubyte: cannot be read (" in str(raised.value)
    assert "gzip" not in str(raised.value)


def test_real_fashion_mnist(fashion_mnist):
    (train_images, train_labels), (test_images, test_labels) = fashion_mnist
    assert train_images.shape == (60000, 28, 28, 1) and test_images.shape == (10000, 28, 28, 1)
    assert train_images.dtype == np.float32
    assert train_images.min() == 0.0 and train_images.max() == 1.0
    assert sorted(np.unique(train_labels)) == list(range(10))
    assert np.bincount(test_labels).tolist() == [1000] * 10
    # Label alignment: trousers (1) are tall and narrow, bags (8) wide.
    trousers = train_images[train_labels == 1].mean(axis=0)[..., 0]
    assert trousers[:, :5].mean() < 0.05 and trousers[:, 10:18].mean() > 0.3


def test_truncated_idx_file_names_file_and_sizes(idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(datasets.DataError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        datasets.load_idx_split(str(idx_dir), "train")


def test_corrupted_gzip_and_bad_magic_give_clear_errors(idx_dir):
    labels = idx_dir / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(b"this is not gzip")
    with pytest.raises(datasets.DataError, match="t10k-labels-idx1-ubyte.gz: not a readable gzip"):
        datasets.load_idx_split(str(idx_dir), "test")
    labels.write_bytes(gzip.compress(b"\x12\x34\x08\x01rest"))
    with pytest.raises(datasets.DataError, match="not an IDX file"):
        datasets.load_idx_split(str(idx_dir), "test")


def test_mismatched_label_count_is_an_error(idx_dir):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(datasets.DataError, match="expected 10 labels"):
        datasets.load_idx_split(str(idx_dir), "test")


def test_missing_directory_or_file_never_falls_back_to_download(tmp_path, idx_dir):
    with pytest.raises(datasets.DataError, match="Data directory not found"):
        datasets.load("mnist", "train", data_dir=str(tmp_path / "nowhere"))
    (idx_dir / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(datasets.DataError, match="missing train-labels-idx1-ubyte.gz"):
        datasets.load("mnist", "train", data_dir=str(idx_dir))


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ValueError, match="Valid datasets: fashion_mnist, mnist"):
        datasets.load("cifar", "train")


def test_tensorflow_datasets_path_when_no_local_source():
    # mnist has no default directory, so this goes through tfds.load.
    with tfds.testing.mock_data(num_examples=12):
        images, labels = datasets.load("mnist", "test")
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.float32
    assert labels.shape == (12,) and labels.dtype == np.int64
    assert images.min() >= 0 and images.max() <= 1


def test_make_dataset_batches_and_seeded_shuffle(idx_dir):
    images, labels = datasets.load_idx_split(str(idx_dir), "train")
    batches = list(pipeline.make_dataset(images, labels, batch_size=8).as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [8, 8, 8, 6]
    x, y = batches[0]
    np.testing.assert_allclose(x[:, 0, 0, 0], y * 10 / 255.0, rtol=1e-6)

    def first_epoch(seed):
        dataset = pipeline.make_dataset(images, labels, batch_size=30, shuffle=True, seed=seed)
        return next(dataset.as_numpy_iterator())[1]

    np.testing.assert_array_equal(first_epoch(3), first_epoch(3))
    assert sorted(first_epoch(3)) == sorted(labels)
    assert not np.array_equal(first_epoch(3), labels)

    repeated = pipeline.make_dataset(images, batch_size=8, repeat=True, drop_remainder=True)
    shapes = [b.shape for b in repeated.take(6).as_numpy_iterator()]
    assert shapes == [(8, 8, 8, 1)] * 6


def test_repeated_shuffled_dataset_shows_every_image_once_per_pass():
    labels = np.arange(40)
    images = np.zeros((40, 4, 4, 1), np.float32) + labels[:, None, None, None] / 40.0
    dataset = pipeline.make_dataset(
        images, labels, batch_size=10, shuffle=True, seed=1, repeat=True
    )
    batches = list(dataset.take(8).as_numpy_iterator())
    for x, y in batches:
        np.testing.assert_allclose(x[:, 0, 0, 0], y / 40.0, rtol=1e-6)  # pairs stay together
    passes = [np.concatenate([y for _, y in batches[i : i + 4]]) for i in (0, 4)]
    assert sorted(passes[0]) == sorted(passes[1]) == list(labels)
    assert not np.array_equal(passes[0], passes[1])  # reshuffled each pass


def test_a_repeated_pass_never_shares_a_batch_with_the_next():
    labels = np.arange(30)
    images = np.zeros((30, 4, 4, 1), np.float32)
    dataset = pipeline.make_dataset(
        images, labels, batch_size=16, shuffle=True, seed=0, repeat=True
    )
    batches = [y for _, y in dataset.take(4).as_numpy_iterator()]
    assert [len(b) for b in batches] == [16, 14, 16, 14]
    for first in (0, 2):
        assert sorted(np.concatenate(batches[first : first + 2])) == list(labels)
    dropped = pipeline.make_dataset(
        images, labels, batch_size=16, shuffle=True, seed=0, repeat=True, drop_remainder=True
    )
    passes = [y for _, y in dropped.take(2).as_numpy_iterator()]
    assert [len(set(p)) for p in passes] == [16, 16]  # each pass's own 16 of the 30


def test_make_dataset_rejects_empty_input_and_bad_batch_size():
    with pytest.raises(datasets.DataError, match="empty"):
        pipeline.make_dataset(np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="batch_size must be positive"):
        pipeline.make_dataset(np.zeros((4, 28, 28, 1), np.float32), batch_size=0)


def test_labels_out_of_range_fail_at_load_with_the_file(idx_dir):
    # Checked before training, not in the projector writer afterwards.
    labels = np.arange(10, dtype=np.uint8)
    labels[3] = 200
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(
        datasets.DataError, match=r"t10k-labels-idx1-ubyte: 1 labels outside 0\.\.9"
    ):
        datasets.load("mnist", "test", data_dir=str(idx_dir))


def test_float_idx_files_are_not_divided_by_255(tmp_path):
    # IDX type 0x0D holds intensities already.
    for split, count in (("train", 4), ("test", 2)):
        pixels = np.linspace(0, 1, count * 64, dtype=np.float32).reshape(count, 8, 8)
        write_idx(tmp_path / f"{datasets.IDX_FILES[split][0]}.gz", pixels, type_code=0x0D)
        write_idx(tmp_path / f"{datasets.IDX_FILES[split][1]}.gz", np.zeros(count, np.uint8))
    images, _ = datasets.load("mnist", "train", data_dir=str(tmp_path))
    assert images.dtype == np.float32 and images.max() == 1.0
    np.testing.assert_allclose(images[..., 0], np.linspace(0, 1, 256).reshape(4, 8, 8), rtol=1e-6)


def write_idx_header_and_zeros(path, shape, zero_bytes):
    """A gzip IDX file of 8-bit pixels whose header says `shape`, then `zero_bytes` zeros."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
        for begin in range(0, zero_bytes, 2**20):
            f.write(bytes(min(2**20, zero_bytes - begin)))


def peak_memory_of(call):
    """The peak of Python and NumPy allocations (bytes) while `call()` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "shape, zero_bytes, message",
    [
        # 4.8 GB declared, 64 MB of zeros in a 64 kB file: over the limit.
        (
            (3, 40000, 40000),
            2**26,
            r"shape \(3, 40000, 40000\), 4,800,000,000 bytes of data; the limit is "
            r"1,073,741,824 bytes \(1 GiB\)",
        ),
        # 262 MB declared, under the limit, in a file of about 1 kB: more than gzip can hold.
        ((1000, 512, 512), 2**20, r"\(262,144,016 bytes\), more than a [\d,]+-byte gzip file"),
    ],
)
def test_idx_headers_declaring_too_much_are_refused_before_reading(
    tmp_path, shape, zero_bytes, message
):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx_header_and_zeros(path, shape, zero_bytes)

    def read():
        with pytest.raises(datasets.DataError, match=message):
            datasets.read_idx(path)

    assert peak_memory_of(read) < 2**22  # the zeros are never decompressed


def test_load_keeps_the_first_limit_images_and_their_labels(idx_dir):
    images, labels = datasets.load("mnist", "train", idx_dir)
    first, first_labels = datasets.load("mnist", "train", idx_dir, limit=7)
    assert first.dtype == np.float32 and first.shape == (7, 8, 8, 1)
    np.testing.assert_array_equal(first, images[:7])
    np.testing.assert_array_equal(first_labels, labels[:7])
