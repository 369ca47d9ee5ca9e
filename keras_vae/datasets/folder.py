"""A folder of your own pictures, read as `keras.utils.image_dataset_from_directory` reads one.

    DIR/cat/1.png DIR/cat/2.jpg DIR/dog/3.webp ...   class labels from the sub-folders
    DIR/1.png DIR/2.jpg ...                          no sub-folders: no labels
    DIR/attributes.csv                               optional: file,Smiling,Eyeglasses,...

Every PNG, JPEG, BMP, GIF (its first frame) and WebP under DIR is an image;
hidden files and folders (".name") are not. `attributes.csv` holds one row
per image, `file` relative to DIR and one binary value per attribute (1/0,
or CelebA's 1/-1). Class sub-folders count as attributes too ("cat", "dog").

Images are decoded with Pillow when read (`FolderImages`): turned upright by
their EXIF orientation, transparent pixels composited on a background,
16-bit and palette images converted, centre-cropped to the aspect ratio of
the image size and resized with antialiasing, in grey (1 channel) or RGB (3).
Nothing is held in memory but the file list: a `FolderImages` decodes the
images a slice asks for, or reads them from its uint8 cache file.

The held-out test split is chosen by a seeded hash of each file's path, so
adding files never moves an old file between train and test.
"""

import concurrent.futures
import copy
import csv
import dataclasses
import hashlib
import os

import numpy as np

from keras_vae.datasets.errors import DataError
from keras_vae.utils import images as image_io

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
ATTRIBUTES_FILE = "attributes.csv"
# The share of the files whose path hashes into the test split.
TEST_FRACTION = 0.1
# Files named in a one-line message, at most.
NAMED = 3
# Images `FolderImages.verify` decodes at a time.
VERIFY_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class Folder:
    """What a scan of a folder found: its image files, labels and attributes.

    Attributes:
        directory: the folder, absolute.
        files: image paths relative to `directory` ("/"-separated), sorted.
        labels: int64 `[N]` class indices (sub-folders), or None.
        class_names: the sub-folders' names, in label order (empty without).
        attributes: bool `[N, K]`: one column per class, then one per
            attributes.csv column.
        attribute_names: the K names.
    """

    directory: str
    files: tuple
    labels: np.ndarray | None
    class_names: tuple
    attributes: np.ndarray
    attribute_names: tuple


def _named(paths):
    shown = ", ".join(str(p) for p in paths[:NAMED])
    return shown + (f" and {len(paths) - NAMED} more" if len(paths) > NAMED else "")


def _image_files(directory):
    found = []
    for root, folders, files in os.walk(directory, followlinks=True):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(path.replace(os.sep, "/") for path in found)


def scan(directory):
    """The `Folder` under `directory`.

    Raises:
        DataError: no such folder; no image file in it; images both in DIR
            and in sub-folders; a single class sub-folder; a bad attributes.csv.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(directory):
        raise DataError(f"Image folder not found: {directory} (--data-dir).")
    files = _image_files(directory)
    if not files:
        raise DataError(
            f"{directory} holds no image file ({', '.join(IMAGE_EXTENSIONS)}), in it or in "
            "its sub-folders: point --data-dir at the folder of pictures."
        )
    classes = sorted({path.split("/")[0] for path in files if "/" in path})
    labels, class_attributes = None, np.zeros((len(files), 0), bool)
    if classes:
        loose = [path for path in files if "/" not in path]
        if loose:
            raise DataError(
                f"{directory} holds images both in class sub-folders ({_named(classes)}) and "
                f"directly ({_named(loose)}): move those into a sub-folder, or every image out "
                "of the sub-folders."
            )
        if len(classes) == 1:
            raise DataError(
                f"{directory} has one class sub-folder, {classes[0]!r}: with one class the "
                f"labels say nothing. Pass --data-dir {os.path.join(directory, classes[0])}, "
                "or add a sub-folder per class."
            )
        labels = np.array([classes.index(path.split("/")[0]) for path in files], np.int64)
        class_attributes = labels[:, np.newaxis] == np.arange(len(classes))
    csv_attributes, csv_names = read_attributes(directory, files)
    return Folder(
        directory=directory,
        files=tuple(files),
        labels=labels,
        class_names=tuple(classes),
        attributes=np.concatenate([class_attributes, csv_attributes], axis=1),
        attribute_names=(*classes, *csv_names),
    )


def read_attributes(directory, files):
    """attributes.csv's bool `[len(files), K]` and K names (none without the file)."""
    path = os.path.join(directory, ATTRIBUTES_FILE)
    if not os.path.exists(path):
        return np.zeros((len(files), 0), bool), ()
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows or len(rows[0]) < 2:
        raise DataError(
            f"{path}: the first line must name the file column and at least one attribute "
            "(file,Smiling,...)."
        )
    names = tuple(name.strip() for name in rows[0][1:])
    position = {name: i for i, name in enumerate(files)}
    values = np.zeros((len(files), len(names)), bool)
    listed = np.zeros(len(files), bool)
    missing = []
    for number, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row]
        if len(cells) != len(names) + 1 or any(v not in ("1", "0", "-1") for v in cells[1:]):
            raise DataError(
                f"{path}, line {number}: expected a file and {len(names)} values of 1 and 0 "
                f"(or 1 and -1); got {','.join(row)[:80]!r}."
            )
        name = cells[0].replace(os.sep, "/")
        if name not in position:
            missing.append(name)
            continue
        values[position[name]] = [v == "1" for v in cells[1:]]
        listed[position[name]] = True
    if missing:
        raise DataError(
            f"{path} names {len(missing)} files that are not images in {directory}: "
            f"{_named(missing)}. Remove their rows, or put the files back."
        )
    if not listed.all():
        unlisted = [name for name, seen in zip(files, listed, strict=True) if not seen]
        raise DataError(
            f"{path} has no row for {len(unlisted)} images: {_named(unlisted)}. Add their rows."
        )
    return values, names


def path_hash(path, seed):
    """A number in [0, 1) drawn from `path` and `seed` alone."""
    digest = hashlib.sha256(f"{seed}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split(folder, seed, test_fraction=TEST_FRACTION):
    """`{"train": indices, "test": indices}` of `folder.files`, by their path's hash.

    A file is a test file when its hash is below `test_fraction`; each split
    is in order of the hashes (a seeded shuffle). When no hash falls below
    it (a handful of files), the lowest one is the test file.

    Raises:
        DataError: fewer than 2 files.
    """
    if len(folder.files) < 2:
        raise DataError(
            f"{folder.directory} holds {len(folder.files)} image: training needs at least 2 "
            "(one is held out for the test)."
        )
    hashes = np.array([path_hash(path, seed) for path in folder.files])
    order = np.argsort(hashes, kind="stable")
    test_count = max(1, int(np.sum(hashes < test_fraction)))
    return {"test": order[:test_count], "train": order[test_count:]}


class FolderImages:
    """Some images of a `Folder` at one size: sized and sliceable, decoded when read.

    `images[a:b]` (or `images[indices]`) is float32 `[n, H, W, C]` in [0, 1];
    `images.read(positions)` the same as uint8. Nothing is decoded before a
    read; with a `cache` file (written by `verify`) reads are file reads.

    Args:
        folder: a `Folder`.
        indices: which of `folder.files`, in this order.
        image_shape: `(H, W, C)`, C 1 or 3.
        background: what transparent pixels become ("white" or "black").
    """

    # True where the images can only be read from a cache file (see `verify`).
    needs_cache = False

    def __init__(self, folder, indices, image_shape, background="white", crop=None):
        self.folder = folder
        self.indices = np.asarray(indices, np.int64)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.background = background
        self.crop = crop
        self.cache = None
        self.records = None  # with a cache: the record of each position (None: the same)

    def __len__(self):
        return len(self.indices)

    @property
    def shape(self):
        return (len(self), *self.image_shape)

    @property
    def labels(self):
        return None if self.folder.labels is None else self.folder.labels[self.indices]

    @property
    def attributes(self):
        return self.folder.attributes[self.indices]

    def subset(self, count):
        """The first `count` of these images (all of them for 0), reading the same cache."""
        return self._select(slice(count or None))

    def shard(self, count, index):
        """Every `count`-th of these images from the `index`-th: one worker's share of files.

        The `count` shards are disjoint and together hold every image. Taken
        before `verify`, a shard is all a worker decodes; taken after, it
        reads its records of the same cache file.
        """
        if not 0 <= index < count:
            raise ValueError(f"shard index must be in [0, {count}); got {index}.")
        return self._select(slice(index, None, count))

    def _select(self, key):
        images = copy.copy(self)
        images.indices = self.indices[key]
        if self.cache is not None:
            images.records = self._records()[key]
        return images

    def _records(self):
        """Which record of the cache file each position is."""
        return np.arange(len(self)) if self.records is None else self.records

    def cache_key(self):
        """What the cache file's name is made from: every file's path, size and time."""
        parts = [repr((self.image_shape, self.background, self.crop))]
        for position in range(len(self)):
            path = self.path(position)
            stat = os.stat(path)
            parts.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
        return "\0".join(parts)

    def path(self, position):
        return os.path.join(self.folder.directory, self.folder.files[self.indices[position]])

    def _decode(self, position):
        return image_io.load_image(
            self.path(position), self.image_shape, self.background, smallest=True, crop=self.crop
        )

    def read(self, positions):
        """uint8 `[len(positions), H, W, C]` of the images at `positions`."""
        positions = np.asarray(positions, np.int64).reshape(-1)
        out = np.empty((len(positions), *self.image_shape), np.uint8)
        if self.cache is not None:
            size = out[0].nbytes
            records = positions if self.records is None else self.records[positions]
            with open(self.cache, "rb") as f:
                for i, record in enumerate(records):
                    out[i] = np.frombuffer(
                        os.pread(f.fileno(), size, int(record) * size), np.uint8
                    ).reshape(self.image_shape)
            return out
        for i, position in enumerate(positions):
            out[i] = self._decode(int(position))
        return out

    def __getitem__(self, key):
        positions = np.arange(len(self))[key]
        return self.read(np.atleast_1d(positions)).astype(np.float32) / 255.0

    def chunks(self, size=1024):
        """float32 arrays of `size` images (the last may be smaller), in order."""
        for start in range(0, len(self), size):
            yield self[start : start + size]

    def verify(self, strict=False, cache=None, workers=None):
        """Decodes every image once: drops the unreadable ones, or with `strict` refuses them.

        Args:
            strict: an unreadable file is an error rather than skipped.
            cache: a file to write every kept image to (uint8, in order),
                with the kept positions beside it (`CACHE.kept.npy`); later
                reads come from it. An existing cache made for the same
                files, size and background is used without decoding.
            workers: decoding threads (default: one per CPU).

        Returns:
            The unreadable files that were skipped: `[(path, reason)]`.

        Raises:
            DataError: with `strict`, an unreadable file; no readable image;
                an image smaller than the image size.
        """
        kept_path = None if cache is None else cache + ".kept.npy"
        if cache is not None and os.path.exists(cache) and os.path.exists(kept_path):
            # The cache holds the images that were readable when it was written.
            self.indices = self.indices[np.load(kept_path)]
            self.cache = cache
            return []
        workers = workers or os.cpu_count() or 1
        skipped, kept = [], []
        writer = RecordWriter(cache) if cache is not None else None
        try:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                # A bounded number of decoded images at a time, whatever the folder's size.
                for start in range(0, len(self), VERIFY_CHUNK):
                    positions = range(start, min(start + VERIFY_CHUNK, len(self)))
                    for position, (pixels, reason) in zip(
                        positions, pool.map(self._checked, positions), strict=True
                    ):
                        if reason is None:
                            kept.append(position)
                            if writer is not None:
                                writer.add(pixels)
                            continue
                        if strict:
                            raise DataError(
                                f"{self.path(position)} is not a readable image ({reason}); "
                                "remove it, or drop --strict to skip such files."
                            )
                        skipped.append((self.path(position), reason))
            if not kept:
                raise DataError(
                    f"No readable image among the {len(self)} files of "
                    f"{self.folder.directory} (for example {_named([p for p, _ in skipped])}): "
                    f"{skipped[0][1]}."
                )
            if writer is not None:
                # Which images the records are, first: a cache file never stands without it.
                temporary = f"{kept_path}.tmp-{os.getpid()}.npy"
                np.save(temporary, np.array(kept, np.int64))
                os.replace(temporary, kept_path)
                writer.commit()
        finally:
            if writer is not None:
                writer.discard()
        self.indices = self.indices[kept]
        self.cache = cache
        return skipped

    def _checked(self, position):
        try:
            return self._decode(position), None
        except image_io.ImageTooSmall as error:
            raise DataError(str(error)) from error
        except (ValueError, OSError) as error:
            return None, str(error).removeprefix(f"{self.path(position)}: ")


class RecordWriter:
    """Appends uint8 arrays to a temporary file beside `path`; `commit` renames it to `path`."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.temporary = f"{path}.tmp-{os.getpid()}"
        self.file = open(self.temporary, "wb")

    def add(self, pixels):
        self.file.write(np.ascontiguousarray(pixels, np.uint8).tobytes())

    def commit(self):
        self.file.close()
        os.replace(self.temporary, self.path)

    def discard(self):
        self.file.close()
        if os.path.exists(self.temporary):
            os.remove(self.temporary)


def cache_name(images):
    """A cache file name that changes with the pictures (`cache_key`) and their size."""
    digest = hashlib.sha256(images.cache_key().encode()).hexdigest()[:16]
    height, width, channels = images.image_shape
    return f"{digest}-{height}x{width}x{channels}.u8"


def skipped_message(skipped, total):
    """One line on the files `FolderImages.verify` skipped."""
    return (
        f"skipped {len(skipped)} of {total} files that are not readable images: "
        + ", ".join(f"{path} ({reason})" for path, reason in skipped[:NAMED])
        + (f" and {len(skipped) - NAMED} more" if len(skipped) > NAMED else "")
        + "; --strict makes this an error."
    )


def splits(directory, image_shape, seed, validation_size, background="white"):
    """`(train, validation or None, test)` `FolderImages` of the folder `directory`.

    The test split is `split`'s; the validation images are the first
    `validation_size` training images in hash order, at most a tenth of them.
    """
    folder = scan(directory)
    parts = split(folder, seed)
    held_out = min(validation_size, len(parts["train"]) // 10)

    def images(indices):
        return FolderImages(folder, indices, image_shape, background)

    validation = images(parts["train"][:held_out]) if held_out else None
    return images(parts["train"][held_out:]), validation, images(parts["test"])
