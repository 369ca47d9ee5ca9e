"""IDX files, the format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

import gzip
import os
import struct

import numpy as np

from keras_vae import names
from keras_vae.datasets.errors import DataError

# The four files of a dataset directory, per split: (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX type codes (third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path):
    """Reads one IDX file (optionally gzip-compressed) into a numpy array.

    Raises:
        DataError: the file is missing, not gzip when named `.gz`, truncated,
            or its header is not IDX.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if str(path).endswith(".gz"):
            raw = gzip.decompress(raw)
    except FileNotFoundError as e:
        raise DataError(f"IDX file not found: {path}") from e
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: not a readable gzip file ({e}); download it again.") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file (expected magic bytes 00 00 <type> <ndim>, "
            f"got {raw[:4].hex(' ') or 'an empty file'})."
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes).")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has "
            f"{len(raw)} bytes; it is truncated or corrupted, download it again."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)


def _find_idx_file(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise DataError(f"{directory}: missing {stem}.gz (or {stem}); expected the four IDX files.")


def load_idx_split(directory, split):
    """Images `[N, H, W, 1]` float32 in [0, 1] and labels `[N]` int64 from IDX files."""
    names.check_choice("split", split, names.SPLITS)
    if not os.path.isdir(directory):
        raise DataError(f"Data directory not found: {directory}")
    image_stem, label_stem = IDX_FILES[split]
    image_path = _find_idx_file(directory, image_stem)
    label_path = _find_idx_file(directory, label_stem)
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3:
        raise DataError(f"{image_path}: expected 3 dimensions [N, H, W], got {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{label_path}: expected {len(images)} labels to match {image_path}, "
            f"got shape {labels.shape}."
        )
    return _as_unit_floats(images, image_path)[..., np.newaxis], labels.astype(np.int64)


def _as_unit_floats(images, path):
    """IDX pixels as float32 in [0, 1]: 8-bit integers over 255, floats as they are.

    Float files (types 0x0D, 0x0E) are taken to hold intensities already; values
    outside [0, 1] then fail `check_images` with their range, not silently.
    """
    if np.issubdtype(images.dtype, np.floating):
        return images.astype(np.float32)
    if images.dtype.itemsize != 1:
        raise DataError(
            f"{path}: {images.dtype.itemsize * 8}-bit integer pixels; expected 8-bit (0-255) "
            "or floats in [0, 1]."
        )
    return images.astype(np.float32) / 255.0
