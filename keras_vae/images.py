"""Image grids and PNG files."""

import numpy as np
from PIL import Image

from keras_vae.files import atomic_write


def to_uint8(images):
    """float images in [0, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def grid(images, rows, cols, padding=1):
    """Tiles `rows * cols` images `[N, H, W, C]` in [0, 1] into one uint8 image.

    Returns:
        uint8 `[rows*(H+padding)+padding, cols*(W+padding)+padding, C]`; the
        padding is white.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"Expected images [N, H, W, C]; got shape {images.shape}.")
    if len(images) != rows * cols:
        raise ValueError(f"A {rows}x{cols} grid needs {rows * cols} images; got {len(images)}.")
    _, height, width, channels = images.shape
    out = np.full(
        (rows * (height + padding) + padding, cols * (width + padding) + padding, channels),
        255,
        dtype=np.uint8,
    )
    pixels = to_uint8(images)
    for index, image in enumerate(pixels):
        top = padding + (index // cols) * (height + padding)
        left = padding + (index % cols) * (width + padding)
        out[top : top + height, left : left + width] = image
    return out


def save_png(path, image):
    """Writes a uint8 `[H, W, C]` image to `path` atomically (temp file + rename)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    atomic_write(path, lambda tmp_path: picture.save(tmp_path, format="PNG"), suffix=".png")
