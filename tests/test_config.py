import argparse
import dataclasses
import json

import pytest

from keras_vae.models import presets
from keras_vae.training.config import TrainingConfig, add_config_flags, config_from_flags, option
from keras_vae.utils import names


def test_round_trip_through_json():
    config = TrainingConfig(preset="mlp", latent_dim=8, beta=0.5, epochs=3, gaussian_scale=0.2)
    restored = TrainingConfig.from_dict(json.loads(config.to_json()))
    assert restored == config


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match=r"Unknown configuration keys \['epoch'\]"):
        TrainingConfig.from_dict({"epoch": 3})


def test_every_field_is_a_flag_with_its_help_and_parser():
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    help_text = " ".join(parser.format_help().split())
    for field in dataclasses.fields(TrainingConfig):
        flag = "--" + field.name.replace("_", "-")
        assert flag in help_text, flag
    assert "One of: conv, conv_deep, default, keras_example, mlp." in help_text
    args = parser.parse_args(["--latent-dim", "8", "--gaussian-scale", "0.2", "--mixed-precision"])
    config = config_from_flags(args)
    assert config == TrainingConfig(latent_dim=8, gaussian_scale=0.2, mixed_precision=True)
    assert config_from_flags(parser.parse_args([])) == TrainingConfig()
    # One default per flag: a default that other flags decide is the help text's to say.
    for action in parser._actions:
        assert (action.help or "").count("(default:") <= 1, action.help
    assert "None" not in help_text


def test_a_gaussian_scale_that_is_no_number_says_what_it_takes(capsys):
    parser = argparse.ArgumentParser(prog="train.py")
    add_config_flags(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--gaussian-scale", "abc"])
    message = "argument --gaussian-scale: expected 'learned' or a positive number; got 'abc'"
    assert message in capsys.readouterr().err


def test_a_new_field_needs_one_edit():
    @dataclasses.dataclass
    class Extended(TrainingConfig):
        dropout: float = option(0.1, "Dropout rate.", parse=float, minimum="non-negative")

    parser = argparse.ArgumentParser()
    add_config_flags(parser, Extended)
    assert "Dropout rate." in parser.format_help()
    config = config_from_flags(parser.parse_args(["--dropout", "0.3"]), Extended)
    assert config.dropout == 0.3 and config.to_dict()["dropout"] == 0.3
    with pytest.raises(ValueError, match=r"dropout \(--dropout\) must be >= 0; got -1.0"):
        config_from_flags(parser.parse_args(["--dropout", "-1"]), Extended)


def test_check_choice_writes_the_one_message():
    with pytest.raises(ValueError, match=r"^Unknown strategy 'x'\. Valid strategies: auto, "):
        names.check_choice("strategy", "x", names.STRATEGIES)
    assert names.check_choice("preset", "mlp", names.PRESETS) == "mlp"


def test_presets_and_names_agree():
    assert names.PRESETS == tuple(sorted(presets.PRESETS))


def test_model_kwargs_build_the_configured_model():
    from keras_vae import VAE

    config = TrainingConfig(preset="mlp", latent_dim=5, beta=2.0)
    model = VAE(**config.model_kwargs((28, 28, 1)))
    assert model.latent_dim == 5 and model.beta == 2.0 and model.preset == "mlp"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"learning_rate": float("inf")}, r"learning_rate \(--learning-rate\) must be a finite"),
        ({"beta": float("-inf")}, r"beta \(--beta\) must be a finite number; got -inf"),
        ({"gaussian_scale": float("inf")}, r"gaussian_scale \(--gaussian-scale\) must be a"),
        ({"gaussian_scale": "nan"}, "must be 'learned' or a positive finite float"),
        ({"latent_dim": 10**8}, r"latent_dim \(--latent-dim\) must be at most 1024"),
        ({"seed": 2**32}, r"seed \(--seed\) must be at most 4294967295"),
    ],
)
def test_non_finite_and_out_of_range_values_name_their_flag(values, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**values)
    with pytest.raises(ValueError, match=message):  # a config.json holding them
        TrainingConfig.from_dict(json.loads(json.dumps(values)))
