import numpy as np
import pytest
from PIL import Image

from keras_vae import images


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
