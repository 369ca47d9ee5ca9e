"""IDX files, the format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

import gzip
import math
import os
import struct
import zlib

import numpy as np

from keras_vae.datasets.errors import DataError
from keras_vae.utils import names

# The four files of a dataset directory, per split: (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# The most data an IDX file may declare: 1 GiB (Fashion-MNIST's training images
# are 47 MB); more is a corrupted or hostile header, refused before reading on.
MAX_IDX_BYTES = 2**30
# DEFLATE expands one byte into at most 1032: a gzip file declaring more is lying.
MAX_GZIP_RATIO = 1032
# Bytes read per call while filling the array.
_READ_BYTES = 2**24
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

    The header is checked before the data is read: it may declare at most
    MAX_IDX_BYTES of data, and no more than the file can hold (its size, or
    for gzip the most DEFLATE can expand it to), so a hostile or corrupted
    header costs no memory.

    Raises:
        DataError: the file is missing, not gzip when named `.gz`, truncated,
            its header is not IDX or declares more data than the limit or the file.
    """
    compressed = str(path).endswith(".gz")
    try:
        file_size = os.path.getsize(path)
        with open(path, "rb") as raw_file:
            stream = gzip.GzipFile(fileobj=raw_file, mode="rb") if compressed else raw_file
            return _read_idx_stream(stream, path, file_size, compressed)
    except FileNotFoundError as e:
        raise DataError(f"IDX file not found: {path}") from e
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        if compressed:
            raise DataError(f"{path}: not a readable gzip file ({e}); download it again.") from e
        raise DataError(f"{path}: cannot be read ({e}).") from e


def _read_idx_stream(stream, path, file_size, compressed):
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file (expected magic bytes 00 00 <type> <ndim>, "
            f"got {magic.hex(' ') or 'an empty file'})."
        )
    ndim = magic[3]
    dims = stream.read(4 * ndim)
    header_size = 4 + len(dims)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({header_size} bytes).")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(_IDX_DTYPES[magic[2]])
    data_size = math.prod(shape) * dtype.itemsize
    expected = header_size + data_size
    if data_size > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: IDX header says shape {shape}, {data_size:,} bytes of data; the limit "
            f"is {MAX_IDX_BYTES:,} bytes ({MAX_IDX_BYTES / 2**30:g} GiB). The file is corrupted "
            "or not a dataset this package can hold in memory."
        )
    if compressed and expected > file_size * MAX_GZIP_RATIO:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected:,} bytes), more than a "
            f"{file_size:,}-byte gzip file can hold; it is truncated or corrupted, download "
            "it again."
        )
    if not compressed and expected != file_size:
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has "
            f"{file_size} bytes; it is truncated or corrupted, download it again."
        )
    data = np.empty(data_size, np.uint8)
    view, filled = memoryview(data), 0
    while filled < data_size:
        count = stream.readinto(view[filled : filled + _READ_BYTES])
        if not count:
            break
        filled += count
    if filled < data_size or stream.read(1):
        actual = f"{header_size + filled} bytes" if filled < data_size else "more bytes"
        raise DataError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has "
            f"{actual}; it is truncated or corrupted, download it again."
        )
    return data.view(dtype).reshape(shape)


def _find_idx_file(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise DataError(f"{directory}: missing {stem}.gz (or {stem}); expected the four IDX files.")


def load_idx_split(directory, split, limit=None):
    """Images `[N, H, W, 1]` float32 in [0, 1] and labels `[N]` int64 from IDX files.

    `limit` keeps the first `limit` of them (`None`: all), converted alone.
    """
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
    images, labels = images[:limit], labels[:limit]
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
