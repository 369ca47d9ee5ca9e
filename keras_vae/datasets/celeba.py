"""CelebA faces as float32 64x64 RGB images in [0, 1] with their 40 binary attributes.

Two sources give the same arrays (`load`), and the same streamed splits for
training (`directory_splits`, `tfds_splits`):
- tensorflow-datasets `celeb_a` (`load(data_dir=None)`);
- the files people download by hand (`load(data_dir=DIR)`), in their original
  layout: `DIR/img_align_celeba/000001.jpg ...`, `DIR/list_attr_celeba.txt`
  (line 1 the image count, line 2 the 40 attribute names, then one line per
  image: `000001.jpg  -1  1 ...` with -1 = no, 1 = yes) and, for the
  train / validation / test splits, `DIR/list_eval_partition.txt`
  (`000001.jpg 0` with 0 = train, 1 = validation, 2 = test).

Each aligned 178x218 photo is center-cropped to a square (140 pixels by
default, the face) and resized to 64x64 with antialiasing. The whole dataset
is 202,599 images (about 10 GB as float32 at 64x64x3): pass `limit`.
"""

import dataclasses
import os

import numpy as np
from PIL import Image

from keras_vae.datasets import folder as folders
from keras_vae.datasets.errors import DataError, load_tfds
from keras_vae.utils.names import CELEBA_SPLITS, check_choice

ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
IMAGE_DIR = "img_align_celeba"
ATTRIBUTES_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
_PARTITION_IDS = {"train": "0", "validation": "1", "test": "2"}
IMAGE_SIZE = 64
CROP = 140


def preprocess(image, size=IMAGE_SIZE, crop=CROP):
    """uint8 `[H, W, 3]` photo -> float32 `[size, size, 3]` in [0, 1].

    The central square of side min(crop, H, W), resized with antialiasing.
    """
    return face(image, (size, size, 3), crop).astype(np.float32) / 255.0


def read_attributes(path):
    """Parses `list_attr_celeba.txt`.

    Returns:
        `(filenames, attributes, names)`: a list of N file names, bool
        `[N, len(names)]`, and the attribute names of line 2.

    Raises:
        DataError: missing file, or a line that breaks the format (named by number).
    """
    try:
        with open(path) as f:
            lines = [line.split() for line in f if line.strip()]
    except FileNotFoundError as error:
        raise DataError(f"CelebA attribute file not found: {path}") from error
    if len(lines) < 2 or len(lines[0]) != 1 or not lines[0][0].isdigit():
        raise DataError(f"{path}: line 1 must be the image count and line 2 the attribute names.")
    count, names = int(lines[0][0]), tuple(lines[1])
    rows = lines[2:]
    if len(rows) != count:
        raise DataError(f"{path}: line 1 says {count} images but {len(rows)} rows follow.")
    values = []
    for number, row in enumerate(rows, start=3):
        if len(row) != len(names) + 1 or any(v not in ("-1", "1") for v in row[1:]):
            raise DataError(
                f"{path}, line {number}: expected a file name and {len(names)} values of -1 or 1; "
                f"got {' '.join(row)[:80]!r}."
            )
        values.append([v == "1" for v in row[1:]])
    filenames = [row[0] for row in rows]
    return filenames, np.array(values, dtype=bool).reshape(count, len(names)), names


def _split_filenames(directory, split):
    path = os.path.join(directory, PARTITION_FILE)
    if not os.path.exists(path):
        raise DataError(
            f"{path} is missing: it assigns images to train/validation/test. "
            "Download it, or use split='all'."
        )
    with open(path) as f:
        pairs = [line.split() for line in f if line.strip()]
    return {name for name, partition in pairs if partition == _PARTITION_IDS[split]}


def _check_split(split):
    check_choice("CelebA split", split, CELEBA_SPLITS)


def load_from_directory(directory, split="all", limit=None, size=IMAGE_SIZE, crop=CROP):
    """CelebA from the original files in `directory` (see the module docstring)."""
    _check_split(split)
    if not os.path.isdir(directory):
        raise DataError(f"CelebA directory not found: {directory}")
    filenames, attributes, names = read_attributes(os.path.join(directory, ATTRIBUTES_FILE))
    if split != "all":
        wanted = _split_filenames(directory, split)
        keep = np.array([name in wanted for name in filenames], dtype=bool)
        filenames = [name for name, kept in zip(filenames, keep, strict=True) if kept]
        attributes = attributes[keep]
    if limit is not None:
        filenames, attributes = filenames[:limit], attributes[:limit]
    images = []
    for name in filenames:
        path = os.path.join(directory, IMAGE_DIR, name)
        try:
            with Image.open(path) as image:
                images.append(preprocess(np.asarray(image.convert("RGB")), size, crop))
        except FileNotFoundError as error:
            raise DataError(f"{path} is listed in {ATTRIBUTES_FILE} but missing.") from error
        except OSError as error:
            raise DataError(f"{path}: not a readable JPEG ({error}).") from error
    return _stacked(images, size), attributes, names


def _stacked(images, size):
    if not images:
        raise DataError("No CelebA images selected: the split or limit left none.")
    return np.stack(images).reshape(len(images), size, size, 3)


def load_from_tfds(split="all", limit=None, size=IMAGE_SIZE, crop=CROP, data_dir=None):
    """CelebA from tensorflow-datasets `celeb_a` (downloads it when online)."""
    import tensorflow_datasets as tfds

    _check_split(split)
    tfds_split = "train+validation+test" if split == "all" else split
    dataset = load_tfds("celeb_a", split=tfds_split, data_dir=data_dir)
    if limit is not None:
        dataset = dataset.take(limit)
    images, attributes = [], []
    for example in tfds.as_numpy(dataset):
        images.append(preprocess(example["image"], size, crop))
        attributes.append([bool(example["attributes"][name]) for name in ATTRIBUTES])
    return _stacked(images, size), np.array(attributes, dtype=bool), ATTRIBUTES


def load(split="all", data_dir=None, limit=None, size=IMAGE_SIZE, crop=CROP):
    """CelebA images float32 `[N, size, size, 3]`, attributes bool `[N, 40]`, names.

    Args:
        split: "train", "validation", "test" or "all".
        data_dir: a directory in the original layout; `None` uses
            tensorflow-datasets. A named directory is never replaced by a
            download.
        limit: keep the first `limit` images of the split.
        size, crop: output side and the central square cropped first.
    """
    if data_dir is not None:
        return load_from_directory(data_dir, split, limit, size, crop)
    return load_from_tfds(split, limit, size, crop)


def directory_splits(directory, image_shape, seed, validation_size):
    """`(train, validation or None, test)` `FolderImages` of CelebA's original files.

    Streamed like a folder of pictures (each central `CROP` square resized to
    `image_shape`), with the 40 attributes. The splits are
    list_eval_partition.txt's (validation: its first `validation_size`
    images); without that file, a folder's hash split.
    """
    if not os.path.isdir(directory):
        raise DataError(f"CelebA directory not found: {directory}")
    filenames, attributes, names = read_attributes(os.path.join(directory, ATTRIBUTES_FILE))
    faces = folders.Folder(
        directory=os.path.join(directory, IMAGE_DIR),
        files=tuple(filenames),
        labels=None,
        class_names=(),
        attributes=attributes,
        attribute_names=names,
    )
    if os.path.exists(os.path.join(directory, PARTITION_FILE)):
        position = {name: i for i, name in enumerate(filenames)}
        parts = {
            split: np.array(
                sorted(position[n] for n in _split_filenames(directory, split) if n in position),
                np.int64,
            )
            for split in _PARTITION_IDS
        }
        validation_indices = parts["validation"][:validation_size]
    else:
        parts = folders.split(faces, seed)
        held_out = min(validation_size, len(parts["train"]) // 10)
        validation_indices = parts["train"][:held_out]
        parts["train"] = parts["train"][held_out:]
    for split in ("train", "test"):
        if not len(parts[split]):
            raise DataError(f"{os.path.join(directory, PARTITION_FILE)} lists no {split} image.")

    def images(indices):
        return folders.FolderImages(faces, indices, image_shape, crop=CROP)

    validation = images(validation_indices) if len(validation_indices) else None
    return images(parts["train"]), validation, images(parts["test"])


class TfdsImages(folders.FolderImages):
    """A tensorflow-datasets `celeb_a` split, decoded once into a uint8 cache file.

    A `FolderImages` whose pictures come from tensorflow-datasets rather
    than files: `verify(cache=PATH)` (a cache is required) reads the split
    once, writes each face (the central `CROP` square, resized) and its 40
    attributes beside it, and every later read comes from that file.

    Args:
        split: "train", "validation" or "test".
        image_shape: `(H, W, C)`.
        limit: keep the first `limit` images (`None`: all).
        data_dir: tensorflow-datasets' data directory (`None`: its default).
    """

    needs_cache = True

    def __init__(self, split, image_shape, limit=None, data_dir=None):
        source = folders.Folder(
            directory=f"tensorflow-datasets celeb_a {split}",
            files=(),
            labels=None,
            class_names=(),
            attributes=np.zeros((0, len(ATTRIBUTES)), bool),
            attribute_names=ATTRIBUTES,
        )
        super().__init__(source, [], image_shape, crop=CROP)
        self.split, self.limit, self.data_dir = split, limit, data_dir

    def subset(self, count):
        if self.cache is not None:
            return super().subset(count)
        limits = [n for n in (self.limit, count) if n]
        return TfdsImages(self.split, self.image_shape, min(limits, default=None), self.data_dir)

    def cache_key(self):
        return repr(("celeb_a", self.split, self.limit, self.image_shape, self.crop))

    def verify(self, strict=False, cache=None, workers=None):
        """Reads the split once into `cache` (and its attributes beside it); nothing is skipped."""
        if cache is None:
            raise ValueError("A tensorflow-datasets split is read from a cache file: pass cache.")
        attributes_path = cache + ".attributes.npy"
        if not (os.path.exists(cache) and os.path.exists(attributes_path)):
            self._write_cache(cache, attributes_path)
        attributes = np.load(attributes_path)
        self.folder = dataclasses.replace(
            self.folder,
            files=tuple(f"{self.split}/{i:06d}" for i in range(len(attributes))),
            attributes=attributes,
        )
        self.indices = np.arange(len(attributes))
        self.cache = cache
        return []

    def _write_cache(self, cache, attributes_path):
        import tensorflow_datasets as tfds

        dataset = load_tfds("celeb_a", split=self.split, data_dir=self.data_dir)
        if self.limit:
            dataset = dataset.take(self.limit)
        writer = folders.RecordWriter(cache)
        attributes = []
        try:
            for example in tfds.as_numpy(dataset):
                writer.add(face(example["image"], self.image_shape))
                attributes.append([bool(example["attributes"][name]) for name in ATTRIBUTES])
            if not attributes:
                raise DataError(f"tensorflow-datasets celeb_a split {self.split!r} is empty.")
            temporary = f"{attributes_path}.tmp-{os.getpid()}.npy"
            np.save(temporary, np.array(attributes, bool).reshape(-1, len(ATTRIBUTES)))
            os.replace(temporary, attributes_path)
            writer.commit()
        finally:
            writer.discard()


def face(image, image_shape, crop=CROP):
    """uint8 `[H, W, 3]` photo -> uint8 `image_shape`: `preprocess`'s steps, any size."""
    height, width, channels = image_shape
    rows, cols = image.shape[:2]
    side = min(crop, rows, cols)
    top, left = (rows - side) // 2, (cols - side) // 2
    square = Image.fromarray(np.asarray(image[top : top + side, left : left + side], np.uint8))
    resized = square.convert("L" if channels == 1 else "RGB").resize(
        (width, height), Image.Resampling.LANCZOS
    )
    return np.asarray(resized, np.uint8).reshape(image_shape)


def tfds_splits(image_shape, validation_size, data_dir=None):
    """`(train, validation or None, test)` `TfdsImages` of tensorflow-datasets `celeb_a`."""
    validation = TfdsImages("validation", image_shape, validation_size, data_dir)
    return (
        TfdsImages("train", image_shape, None, data_dir),
        validation if validation_size else None,
        TfdsImages("test", image_shape, None, data_dir),
    )
