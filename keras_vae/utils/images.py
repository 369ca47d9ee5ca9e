"""Image grids and PNG files."""

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from keras_vae.utils import names
from keras_vae.utils.atomic_files import atomic_write
from keras_vae.utils.names import check_choice

# The largest grid written: 25 megapixels (75 MB of RGB), under Pillow's 89-megapixel
# decompression-bomb warning, so every PNG written here opens in Pillow and browsers.
MAX_GRID_PIXELS = 25_000_000
# Tiles are upscaled (nearest neighbour) to about this height, so that 8x8 digits
# and 28x28 images are not dwarfed by the labels or lost on a screen.
TILE_HEIGHT = 64


def to_uint8(images):
    """float images in [0, 1] -> uint8 in [0, 255] (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(images, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def tile_scale(image_shape):
    """The integer upscaling of tiles of `image_shape` `(H, W, C)` in a grid: TILE_HEIGHT // H."""
    return max(1, TILE_HEIGHT // int(image_shape[0]))


def grid_size(rows, cols, image_shape, scale=1, padding=1):
    """`(height, width)` in pixels of a `rows` x `cols` grid of `image_shape` tiles.

    Raises:
        ValueError: it would hold more than MAX_GRID_PIXELS pixels; the message
            names the size and the limit.
    """
    rows, cols, scale = int(rows), int(cols), int(scale)
    height = (rows * (int(image_shape[0]) + padding) + padding) * scale
    width = (cols * (int(image_shape[1]) + padding) + padding) * scale
    if height * width > MAX_GRID_PIXELS:
        raise ValueError(
            f"A grid of {rows} rows x {cols} columns of {int(image_shape[1])}x"
            f"{int(image_shape[0])} images would be {width} x {height} pixels "
            f"({height * width / 1e6:,.0f} megapixels); the limit is "
            f"{MAX_GRID_PIXELS / 1e6:g} megapixels"
        )
    return height, width


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
    grid_size(rows, cols, images.shape[1:], padding=padding)
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


def padded(images, count):
    """`images` `[N, H, W, C]` followed by white images up to `count`."""
    images = np.asarray(images)
    blanks = np.ones((count - len(images), *images.shape[1:]), images.dtype)
    return np.concatenate([images, blanks])


def reconstruction_grid(inputs, outputs, cols):
    """Rows of `cols` inputs, each row above the row of their reconstructions.

    Args:
        inputs, outputs: `[N, H, W, C]` in [0, 1], N a multiple of `cols`.

    Returns:
        uint8 grid of `2 * N / cols` rows (see `grid`).
    """
    pairs = len(inputs) // cols
    rows = [
        block[pair * cols : (pair + 1) * cols]
        for pair in range(pairs)
        for block in (inputs, outputs)
    ]
    return grid(np.concatenate(rows), 2 * pairs, cols)


def save_png(path, image):
    """Writes a uint8 `[H, W, C]` image to `path` atomically (temp file + rename)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    atomic_write(path, lambda tmp_path: picture.save(tmp_path, format="PNG"), suffix=".png")


def labelled_grid(images, rows, cols, row_labels=None, col_labels=None, scale=1, padding=1):
    """`grid` with text labels left of each row and above each column.

    Args:
        images: `[rows * cols, H, W, C]` in [0, 1], row by row.
        rows, cols: grid size.
        row_labels, col_labels: optional sequences of `rows` / `cols` strings.
        scale: integer upscaling of every tile (nearest neighbour), so that
            28x28 images are not dwarfed by the text.
        padding: white pixels between tiles, before scaling.

    Returns:
        uint8 `[height, width, C]`: black text on white margins.
    """
    for name, labels, count in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
        if labels is not None and len(labels) != count:
            raise ValueError(f"{name} needs {count} labels; got {len(labels)}.")
    grid_size(rows, cols, np.shape(images)[1:], scale, padding)
    tiles = grid(images, rows, cols, padding)
    tiles = tiles.repeat(int(scale), axis=0).repeat(int(scale), axis=1)
    font = ImageFont.load_default()
    line_height = _text_size(font, "Ag")[1] + 4
    left = max((_text_size(font, label)[0] + 6 for label in row_labels or ()), default=0)
    top = line_height if col_labels else 0
    height, width, channels = tiles.shape
    canvas = Image.new("L" if channels == 1 else "RGB", (left + width, top + height), "white")
    canvas.paste(Image.fromarray(tiles[..., 0] if channels == 1 else tiles), (left, top))
    draw = ImageDraw.Draw(canvas)
    tile_height = (height - padding * scale) / rows
    tile_width = (width - padding * scale) / cols
    for row, label in enumerate(row_labels or ()):
        y = top + padding * scale + row * tile_height + (tile_height - line_height) / 2
        draw.text((2, y), label, fill="black", font=font)
    for col, label in enumerate(col_labels or ()):
        x = left + padding * scale + col * tile_width
        draw.text((x + 1, 2), label, fill="black", font=font)
    out = np.asarray(canvas)
    return out[..., np.newaxis] if channels == 1 else out


def _text_size(font, text):
    x0, y0, x1, y1 = font.getbbox(text)
    return x1 - x0, y1 - y0


BACKGROUNDS = names.BACKGROUNDS


def load_images(paths, image_shape, background="white", invert=False):
    """Reads image files as model inputs: float32 `[N, H, W, C]` in [0, 1].

    Each image is turned upright by its EXIF orientation (phone photos),
    center-cropped to the aspect ratio of `image_shape`, resized (Lanczos) to
    its height and width, and converted to grayscale (C = 1) or RGB (C = 3).
    16-bit images are scaled by 65535; float images (TIFF) must already hold
    finite values in [0, 1].

    Args:
        paths: image files (PNG, JPEG, TIFF, ... anything Pillow reads).
        image_shape: the model's `(H, W, C)`.
        background: what transparent pixels become, "white" or "black". Models
            trained on MNIST or Fashion-MNIST expect light objects on black.
        invert: 1 - pixel afterwards, for dark drawings on light paper.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not an image Pillow can read, is too large to
            decode safely, holds NaN or out-of-range floats; C is not 1 or 3;
            an unknown background.
    """
    height, width, channels = (int(d) for d in image_shape)
    if channels not in (1, 3):
        raise ValueError(f"image_shape must have 1 or 3 channels; got {tuple(image_shape)}.")
    check_choice("background", background, BACKGROUNDS)
    loaded = []
    for path in paths:
        pixels = load_image(path, image_shape, background).astype(np.float32) / 255.0
        loaded.append(1.0 - pixels if invert else pixels)
    return np.stack(loaded) if loaded else np.zeros((0, height, width, channels), np.float32)


def load_image(path, image_shape, background="white", smallest=False, crop=None):
    """One image file as uint8 `[H, W, C]`: `load_images`'s steps, without the scaling.

    Args:
        smallest: refuse (`ImageTooSmall`, a ValueError) an image smaller than
            `image_shape` once cropped to its aspect ratio, instead of enlarging it.
        crop: first keep the central square of side `crop` (at most the
            image's sides): CelebA's faces.
    """
    height, width, channels = (int(d) for d in image_shape)
    image = _flattened(_read(path), background, path)
    image = image.convert("L" if channels == 1 else "RGB")
    if crop is not None:
        side = min(crop, *image.size)
        left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if smallest:
        cropped = _cropped_size(image.size, (width, height))
        if cropped[0] < width or cropped[1] < height:
            raise ImageTooSmall(
                f"{path} is {image.size[0]}x{image.size[1]} pixels, smaller than the image size "
                f"{height}x{width} (height x width) once cropped to its aspect ratio: pass a "
                "smaller --image-size, or remove the file."
            )
    image = ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


class ImageTooSmall(ValueError):
    """An image has fewer pixels than the size it must be resized to."""


def _cropped_size(size, target):
    """(width, height) of the largest centred crop of `size` with `target`'s aspect ratio."""
    width, height = size
    if width * target[1] > height * target[0]:  # wider than the target
        return height * target[0] // target[1], height
    return width, width * target[1] // target[0]


def _read(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"Image not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{path}: too many pixels to decode safely ({error}). Resize it first: the model "
            "takes small images."
        ) from error
    except (OSError, Image.UnidentifiedImageError) as error:
        raise ValueError(f"{path}: not a readable PNG/JPEG image ({error}).") from error


def _flattened(image, background, path):
    """An 8-bit image ("L", "RGB"...) without transparency, on `background`."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image, dtype=np.float64) / 65535.0
        return Image.fromarray(np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8))
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(
                f"{path}: {int((~np.isfinite(values)).sum())} pixels are NaN or infinite."
            )
        if values.min() < 0 or values.max() > 1:
            raise ValueError(
                f"{path}: float pixels span [{values.min():g}, {values.max():g}]; expected [0, 1]."
            )
        return Image.fromarray(np.rint(values * 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, background)
        return Image.alpha_composite(canvas, image)
    return image
