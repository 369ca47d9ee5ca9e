import keras
import numpy as np
import pytest

from keras_vae import VAE, Autoencoder, generation
from keras_vae.utils import names
from tests.testing import TINY


def random_codes(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize("method", names.INTERPOLATIONS)
def test_endpoints_are_exact_and_shapes_follow_the_batch(method):
    z0, z1 = random_codes(8, 1), random_codes(8, 2, scale=3.0)
    path = generation.interpolate(z0, z1, 7, method)
    assert path.shape == (7, 8) and path.dtype == np.float32
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)
    batch = generation.interpolate(random_codes((5, 8), 3), random_codes((5, 8), 4), 4, method)
    assert batch.shape == (5, 4, 8)


def test_slerp_norm_stays_between_the_endpoint_norms():
    for seed in range(20):
        z0, z1 = random_codes(16, seed, scale=0.5), random_codes(16, seed + 100, scale=2.0)
        norms = np.linalg.norm(generation.interpolate(z0, z1, 33, "slerp"), axis=1)
        low, high = sorted((np.linalg.norm(z0), np.linalg.norm(z1)))
        assert np.all(norms >= low - 1e-5) and np.all(norms <= high + 1e-5)
        # The norm moves linearly from |z0| to |z1|.
        np.testing.assert_allclose(norms, np.linspace(norms[0], norms[-1], 33), rtol=1e-5)


def test_slerp_follows_the_great_circle_and_lerp_the_chord():
    z0, z1 = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    np.testing.assert_allclose(generation.interpolate(z0, z1, 3, "slerp")[1], [np.sqrt(2)] * 2)
    np.testing.assert_allclose(generation.interpolate(z0, z1, 3, "lerp")[1], [1.0, 1.0])
    # Quarter turns at t = 1/3 and 2/3: 30 and 60 degrees.
    third = generation.interpolate(z0, z1, 4, "slerp")[1]
    np.testing.assert_allclose(third, [2 * np.cos(np.pi / 6), 2 * np.sin(np.pi / 6)], rtol=1e-6)


def test_parallel_opposite_or_zero_codes_fall_back_to_lerp():
    z = random_codes(4, 5)
    for z0, z1 in ((z, 2 * z), (z, -z), (np.zeros(4), z)):
        slerp = generation.interpolate(z0, z1, 5, "slerp")
        assert np.isfinite(slerp).all()
        np.testing.assert_allclose(slerp, generation.interpolate(z0, z1, 5, "lerp"), atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(3), np.zeros(4), 5), "same shape"),
        ((np.zeros(3), np.zeros(3), 1), "steps must be an integer >= 2"),
        ((np.zeros(3), np.array([0.0, np.nan, 1.0]), 5), "z1 contains NaN"),
        ((np.zeros((2, 2, 3)), np.zeros((2, 2, 3)), 5), "z0 must be 1-D or 2-D"),
    ],
)
def test_interpolate_errors(args, message):
    with pytest.raises(ValueError, match=message):
        generation.interpolate(*args)
    with pytest.raises(ValueError, match="Valid methods: slerp, lerp"):
        generation.interpolate(np.zeros(3), np.ones(3), 3, method="cubic")


def test_attribute_vector_recovers_the_offset_of_two_clusters():
    rng = np.random.default_rng(0)
    offset = rng.standard_normal(16)
    has_attribute = rng.random(4000) < 0.3
    codes = rng.standard_normal((4000, 16)) * 0.5 + rng.standard_normal(16)
    codes[has_attribute] += offset
    vector = generation.attribute_vector(codes, has_attribute)
    assert vector.shape == (16,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, offset, atol=0.06)
    # CelebA's -1/1 and 0/1 encodings give the same vector.
    np.testing.assert_array_equal(
        generation.attribute_vector(codes, np.where(has_attribute, 1, -1)), vector
    )
    np.testing.assert_array_equal(
        generation.attribute_vector(codes, has_attribute.astype(int)), vector
    )


def test_attribute_vector_errors():
    codes = random_codes((4, 3))
    with pytest.raises(ValueError, match="No codes without the attribute"):
        generation.attribute_vector(codes, np.ones(4, bool))
    with pytest.raises(ValueError, match="No codes with the attribute"):
        generation.attribute_vector(codes, np.zeros(4, bool))
    with pytest.raises(ValueError, match=r"expected shape \(4,\), got \(3,\)"):
        generation.attribute_vector(codes, np.ones(3, bool))
    with pytest.raises(ValueError, match="booleans, 0/1 or -1/1"):
        generation.attribute_vector(codes, np.array([0, 1, 2, 1]))
    codes[2, 1] = np.nan
    with pytest.raises(ValueError, match="codes contains NaN"):
        generation.attribute_vector(codes, np.array([0, 1, 0, 1]))


def test_edit_adds_alpha_times_the_vector():
    z, vector = random_codes(5, 1), random_codes(5, 2)
    edited = generation.edit(z, vector, [0.0, 1.0, -2.0])
    assert edited.shape == (3, 5)
    np.testing.assert_allclose(edited, [z, z + vector, z - 2 * vector], rtol=1e-6)
    assert generation.edit(random_codes((4, 5)), vector, [0.5, 1.0]).shape == (4, 2, 5)
    with pytest.raises(ValueError, match="z has latent size 5 but vector has 3"):
        generation.edit(z, vector[:3], [1.0])
    with pytest.raises(ValueError, match="alphas is empty"):
        generation.edit(z, vector, [])


def test_average_code_and_its_errors():
    codes = random_codes((10, 4))
    np.testing.assert_allclose(generation.average_code(codes), codes.mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="group is empty"):
        generation.average_code(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="codes must be 2-D"):
        generation.average_code(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        generation.average_code(np.full((2, 4), np.nan))


@pytest.mark.parametrize("model_class", [VAE, Autoencoder])
def test_codec_matches_the_model_in_batches(model_class):
    model = model_class(**TINY)
    images = np.random.default_rng(0).uniform(size=(7, 28, 28, 1)).astype(np.float32)
    codec = generation.Codec(model, batch_size=3)
    codes = codec.encode(images)
    expected = model.encode(images)
    expected = expected[0] if model_class is VAE else expected
    np.testing.assert_allclose(codes, keras.ops.convert_to_numpy(expected), atol=1e-5)
    decoded = codec.decode(codes.reshape(7, 1, 3))
    assert decoded.shape == (7, 1, 28, 28, 1)
    np.testing.assert_allclose(
        decoded[:, 0], keras.ops.convert_to_numpy(model.decode(codes)), atol=1e-5
    )
    # One graph for every batch size (3, then the remainder 1), following training.
    assert codec._decode.function.experimental_get_tracing_count() == 1
    before = codec.decode(np.zeros((1, 3)))
    for variable in model.decoder.trainable_variables:
        variable.assign(variable + 0.1)
    assert np.abs(codec.decode(np.zeros((1, 3))) - before).max() > 1e-3
    with pytest.raises(ValueError, match=r"takes images of shape \(28, 28, 1\)"):
        codec.encode(images[:, :14])
    with pytest.raises(ValueError, match="codes have 3 dimensions"):
        codec.decode(np.zeros((2, 4)))
