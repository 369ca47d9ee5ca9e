"""Run configuration as a value: a dataclass saved as config.json in every run dir."""

import dataclasses
import json

from keras_vae import data, networks
from keras_vae.distribute import STRATEGIES
from keras_vae.model import LIKELIHOODS


@dataclasses.dataclass
class TrainingConfig:
    """Everything that defines a training run.

    Model fields (`preset`, `latent_dim`, `likelihood`, `gaussian_scale`,
    `beta`, `seed`) go to `keras_vae.VAE`; the rest drive data and `fit`.
    `latent_dim=None` takes the preset's. `train_subset` / `test_subset`
    (0 = all) keep the first images of each split, for quick runs.
    `validation_size` images are held out of the training split (a seeded
    random choice) for `val_*` curves and checkpoint selection; the test
    split is used only for the final evaluation. `strategy` is one of
    `keras_vae.distribute.STRATEGIES`; `mixed_precision` trains in
    mixed_float16 on GPU, mixed_bfloat16 on CPU (losses stay float32).
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    preset: str = "default"
    latent_dim: int | None = None
    likelihood: str = "bernoulli"
    gaussian_scale: float | str = "learned"
    beta: float = 1.0
    kl_warmup_epochs: int = 0
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    validation_size: int = 5000
    train_subset: int = 0
    test_subset: int = 0
    strategy: str = "auto"
    mixed_precision: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raises ValueError with what is wrong and the valid choices."""
        if self.dataset not in data.DATASETS:
            raise ValueError(
                f"Unknown dataset {self.dataset!r}. Valid datasets: {', '.join(data.DATASETS)}."
            )
        if self.preset not in networks.PRESETS:
            raise ValueError(
                f"Unknown preset {self.preset!r}. "
                f"Valid presets: {', '.join(sorted(networks.PRESETS))}."
            )
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown strategy {self.strategy!r}. Valid strategies: {', '.join(STRATEGIES)}."
            )
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"Unknown likelihood {self.likelihood!r}. "
                f"Valid likelihoods: {', '.join(LIKELIHOODS)}."
            )
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
        }
        if self.latent_dim is not None:
            positive["latent_dim"] = self.latent_dim
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0; got {value}.")
        non_negative = {
            "beta": self.beta,
            "kl_warmup_epochs": self.kl_warmup_epochs,
            "validation_size": self.validation_size,
            "train_subset": self.train_subset,
            "test_subset": self.test_subset,
        }
        for name, value in non_negative.items():
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0; got {value}.")

    def model_kwargs(self, image_shape):
        """Keyword arguments for `keras_vae.VAE`."""
        return {
            "image_shape": tuple(image_shape),
            "preset": self.preset,
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "gaussian_scale": self.gaussian_scale,
            "beta": self.beta,
            "seed": self.seed,
        }

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict such as `to_dict()`'s; unknown keys are an error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown configuration keys {unknown}. Valid keys: {', '.join(sorted(known))}."
            )
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
