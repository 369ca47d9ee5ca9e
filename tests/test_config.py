import json

import pytest

from keras_vae.config import TrainingConfig


def test_round_trip_through_json():
    config = TrainingConfig(preset="mlp", latent_dim=8, beta=0.5, epochs=3, gaussian_scale=0.2)
    restored = TrainingConfig.from_dict(json.loads(config.to_json()))
    assert restored == config


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match=r"Unknown configuration keys \['epoch'\]"):
        TrainingConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("latent_dim", 0, "latent_dim must be > 0"),
        ("beta", -0.1, "beta must be >= 0"),
        ("batch_size", 0, "batch_size must be > 0"),
        ("epochs", 0, "epochs must be > 0"),
        ("preset", "big", "Valid presets: conv, default, keras_example, mlp"),
        ("dataset", "cifar10", "Valid datasets: fashion_mnist, mnist"),
        ("likelihood", "laplace", "Valid likelihoods: bernoulli, gaussian"),
    ],
)
def test_invalid_values_say_what_is_wrong(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{field: value})


def test_model_kwargs_build_the_configured_model():
    from keras_vae import VAE

    config = TrainingConfig(preset="mlp", latent_dim=5, beta=2.0)
    model = VAE(**config.model_kwargs((28, 28, 1)))
    assert model.latent_dim == 5 and model.beta == 2.0 and model.preset == "mlp"
