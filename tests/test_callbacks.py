"""LatentImages: the TensorBoard image grids and projector, read back from the files."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_vae import VAE, datasets, generation
from keras_vae.training.callbacks import LatentImages
from keras_vae.utils import images as image_io
from tests.testing import TINY, logged_images


@pytest.fixture(scope="module")
def logged_run(fashion_mnist, tmp_path_factory):
    (train_images, _), (test_images, test_labels) = fashion_mnist
    log_dir = tmp_path_factory.mktemp("logs")
    model = VAE(seed=0, **TINY)
    model.compile(optimizer="adam")
    callback = LatentImages(
        str(log_dir),
        test_images[:50],
        test_labels[:50],
        label_names=datasets.CLASS_NAMES["fashion_mnist"],
        every_n_epochs=2,
        num_samples=16,
        num_interpolations=3,
        interpolation_steps=5,
        projector_size=40,
        seed=7,
    )
    model.fit(train_images[:256], epochs=3, batch_size=64, verbose=0, callbacks=[callback])
    return log_dir, model, callback, test_images[:50], test_labels[:50]


def test_grids_are_logged_every_n_epochs_and_after_the_last(logged_run):
    log_dir, *_ = logged_run
    found = logged_images(log_dir / "images")
    assert set(found) == {"samples", "reconstructions", "interpolation"}
    for tag, by_step in found.items():
        assert sorted(by_step) == [1, 2], tag
    tile = 29  # 28 pixels + 1 padding
    assert found["samples"][2].shape[:2] == (2 * tile + 1, 8 * tile + 1)
    assert found["reconstructions"][2].shape[:2] == (4 * tile + 1, 8 * tile + 1)
    assert found["interpolation"][2].shape[:2] == (3 * tile + 1, 7 * tile + 1)
    assert found["samples"][1].std() > 1  # not blank


def test_samples_come_from_a_fixed_z_and_inputs_sit_beside_reconstructions(logged_run):
    log_dir, model, _, test_images, _ = logged_run
    found = logged_images(log_dir / "images")
    z = np.random.default_rng(7).standard_normal((16, 3)).astype(np.float32)
    expected = image_io.grid(keras.ops.convert_to_numpy(model.decode(z)), 2, 8)
    # The last grid was drawn by the final weights from the seeded z.
    assert np.abs(found["samples"][2].astype(int) - expected[..., 0]).max() <= 1
    reconstructions = found["reconstructions"][2]
    np.testing.assert_array_equal(
        reconstructions[1:29, 1:29], image_io.to_uint8(test_images[0])[..., 0]
    )
    # The interpolation rows start at image i and end at image 3 + i.
    strip = found["interpolation"][2]
    np.testing.assert_array_equal(strip[30:58, 1:29], image_io.to_uint8(test_images[1])[..., 0])
    np.testing.assert_array_equal(
        strip[30:58, 6 * 29 + 1 : 7 * 29], image_io.to_uint8(test_images[4])[..., 0]
    )


def test_projector_holds_posterior_means_labels_and_sprite(logged_run):
    log_dir, model, _, test_images, test_labels = logged_run
    directory = log_dir / "projector"
    config = (directory / "projector_config.pbtxt").read_text()
    assert 'metadata_path: "metadata.tsv"' in config and 'image_path: "sprite.png"' in config
    names = datasets.CLASS_NAMES["fashion_mnist"]
    lines = (directory / "metadata.tsv").read_text().splitlines()
    assert lines == [names[label] for label in test_labels[:40]]
    sprite = np.asarray(Image.open(directory / "sprite.png"))
    assert sprite.shape == (7 * 28, 7 * 28)  # ceil(sqrt(40)) = 7 per side
    np.testing.assert_array_equal(sprite[:28, 28:56], image_io.to_uint8(test_images[1])[..., 0])
    reader = tf.train.load_checkpoint(str(directory))
    embedding = reader.get_tensor("embedding/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_allclose(
        embedding, generation.Codec(model).encode(test_images[:40]), atol=1e-5
    )


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="every_n_epochs must be >= 1"):
        LatentImages("logs", np.zeros((4, 28, 28, 1)), every_n_epochs=0)
    with pytest.raises(ValueError, match="Got 3 labels for 4 images"):
        LatentImages("logs", np.zeros((4, 28, 28, 1)), labels=[0, 1, 2])
