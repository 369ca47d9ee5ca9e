import numpy as np
import pytest
from PIL import Image

from keras_vae.utils import images


def test_grid_places_images_row_by_row_with_white_padding():
    tiles = np.stack([np.full((2, 3, 1), i / 5.0) for i in range(6)])
    out = images.grid(tiles, rows=2, cols=3, padding=1)
    assert out.shape == (2 * 3 + 1, 3 * 4 + 1, 1) and out.dtype == np.uint8
    assert out[0, 0, 0] == 255
    # Tile 4 is row 1, column 1: top-left at (1 + 3, 1 + 4).
    assert out[4, 5, 0] == round(4 / 5.0 * 255)
    assert out[1, 1, 0] == 0


def test_grid_rejects_wrong_count():
    with pytest.raises(ValueError, match="needs 4 images; got 3"):
        images.grid(np.zeros((3, 2, 2, 1)), 2, 2)


def test_save_png_round_trips_and_replaces_atomically(tmp_path):
    picture = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    images.save_png(path, picture)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), picture)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    gray = picture[..., :1]
    images.save_png(path, gray)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), gray[..., 0])


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "keep.png"
    path.write_bytes(b"previous")
    with pytest.raises(TypeError):
        images.save_png(path, np.zeros((4, 4, 3), dtype=np.complex64))
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_labelled_grid_adds_text_margins_and_scales_tiles():
    tiles = np.zeros((6, 4, 4, 1))
    plain = images.labelled_grid(tiles, 2, 3, scale=2)
    np.testing.assert_array_equal(plain, images.grid(tiles, 2, 3).repeat(2, 0).repeat(2, 1))
    out = images.labelled_grid(
        tiles, 2, 3, row_labels=["first", "second"], col_labels=["a", "b", "c"], scale=2
    )
    left = out.shape[1] - plain.shape[1]
    top = out.shape[0] - plain.shape[0]
    assert left > 20 and top > 5 and out.shape[2] == 1
    np.testing.assert_array_equal(out[top:, left:], plain)
    assert (out[top:, :left] < 128).any(), "row labels are drawn"
    assert (out[:top, left:] < 128).any(), "column labels are drawn"
    rgb = images.labelled_grid(np.ones((2, 4, 4, 3)), 1, 2, col_labels=["x", "y"])
    assert rgb.shape[2] == 3
    with pytest.raises(ValueError, match="row_labels needs 2 labels; got 1"):
        images.labelled_grid(tiles, 2, 3, row_labels=["only one"])


def test_load_images_crops_resizes_and_converts(tmp_path):
    # A wide RGB picture: black sides, a white central square.
    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, 40:80] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(wide).save(tmp_path / "wide.jpg", quality=95)
    # Transparent pixels count as white.
    clear = np.zeros((10, 10, 4), np.uint8)
    Image.fromarray(clear).save(tmp_path / "clear.png")
    loaded = images.load_images(
        [tmp_path / "wide.png", tmp_path / "wide.jpg", tmp_path / "clear.png"], (28, 28, 1)
    )
    assert loaded.shape == (3, 28, 28, 1) and loaded.dtype == np.float32
    assert loaded[0].min() > 0.95  # only the central square is kept
    assert loaded[1].mean() > 0.9
    np.testing.assert_allclose(loaded[2], 1.0)
    rgb = images.load_images([tmp_path / "wide.png"], (64, 64, 3))
    assert rgb.shape == (1, 64, 64, 3)


def test_load_images_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        images.load_images([tmp_path / "missing.png"], (28, 28, 1))
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png: not a readable PNG/JPEG"):
        images.load_images([tmp_path / "notes.png"], (28, 28, 1))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        images.load_images([], (28, 28, 2))


def test_sixteen_bit_exif_float_and_transparent_images(tmp_path):
    # 16-bit, EXIF-rotated, float and transparent pictures each load as they look.
    ramp = np.tile(np.linspace(0, 1, 28, dtype=np.float64), (28, 1))  # dark left, light right
    Image.fromarray(np.rint(ramp * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    [deep] = images.load_images([tmp_path / "deep.png"], (28, 28, 1))
    np.testing.assert_allclose(deep[..., 0], ramp, atol=1 / 255)

    # A phone photo: stored sideways, with EXIF orientation 6 (rotate 90 degrees clockwise).
    stored = Image.fromarray(np.rint(np.flipud(ramp.T) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    [upright] = images.load_images([tmp_path / "phone.jpg"], (28, 28, 1))
    assert upright[:, :5].mean() < 0.2 and upright[:, -5:].mean() > 0.8  # dark left, light right

    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tiff")
    [floats] = images.load_images([tmp_path / "float.tiff"], (28, 28, 1))
    np.testing.assert_allclose(floats[..., 0], ramp, atol=1 / 255)
    bad = ramp.astype(np.float32)
    bad[0, 0] = np.nan
    Image.fromarray(bad).save(tmp_path / "nan.tiff")
    with pytest.raises(ValueError, match="nan.tiff: 1 pixels are NaN"):
        images.load_images([tmp_path / "nan.tiff"], (28, 28, 1))
    Image.fromarray((ramp * 255).astype(np.float32)).save(tmp_path / "bright.tiff")
    with pytest.raises(ValueError, match=r"bright.tiff: float pixels span \[0, 255\]"):
        images.load_images([tmp_path / "bright.tiff"], (28, 28, 1))

    clear = np.zeros((10, 10, 4), np.uint8)
    clear[4:6, 4:6] = 255  # one opaque white square on a transparent sheet
    Image.fromarray(clear).save(tmp_path / "clear.png")
    [on_black] = images.load_images([tmp_path / "clear.png"], (10, 10, 1), background="black")
    assert on_black[0, 0, 0] == 0 and on_black[5, 5, 0] == 1
    [inverted] = images.load_images([tmp_path / "clear.png"], (10, 10, 1), invert=True)
    np.testing.assert_allclose(inverted[0, 0], 0.0)  # white background, inverted
    with pytest.raises(ValueError, match="Valid backgrounds: white, black"):
        images.load_images([tmp_path / "clear.png"], (10, 10, 1), background="grey")


def test_a_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    # Pillow's limit, lowered here so the test image stays small.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "huge.png")
    with pytest.raises(ValueError, match="huge.png: too many pixels to decode safely"):
        images.load_images([tmp_path / "huge.png"], (28, 28, 1))
