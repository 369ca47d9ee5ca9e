"""A run dir's layout, defined once, and loading the trained model from one.

config.json           the TrainingConfig that made the run
model.keras           the checkpoint with the best validation loss
logs/                 TensorBoard event files: train/ and validation/ scalars,
                      config/ the config as text, images/ latent grids,
                      projector/ test posterior means with labels and sprite
backup/               BackupAndRestore state while training (removed when done)
metrics.json          test metrics of model.keras, in nats per image
samples.png           8x8 grid decoded from z ~ N(0, I)
reconstructions.png   test inputs (odd rows) above their reconstructions
export/               the decoder as a generator (keras_vae.export)
generated_tflite.png  8x8 grid rendered by export/generator_float32.tflite
"""

import json
import os
import zipfile

import keras

from keras_vae.model import VAE

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"
SAMPLES_PNG = "samples.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
PREVIEW_PNG = "generated_tflite.png"


class ModelFileError(ValueError):
    """A file is not a loadable keras_vae model; the message says which and why."""


def load_model(path):
    """Loads a keras_vae model from a run dir or a `.keras` file.

    Returns:
        `(model, training_config)`: a `keras_vae.VAE`; the
        config is the run dir's config.json as a dict, or None for a bare
        `.keras` file.

    Raises:
        FileNotFoundError: nothing at `path`.
        ModelFileError: the file is not a keras_vae model.
    """
    training_config = None
    model_path = path
    if os.path.isdir(path):
        model_path = os.path.join(path, MODEL_FILE)
        config_path = os.path.join(path, CONFIG_FILE)
        if os.path.exists(config_path):
            with open(config_path) as f:
                training_config = json.load(f)
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model at {model_path}: give a run dir or a .keras file.")
    try:
        model = keras.models.load_model(model_path)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{model_path} is not a loadable .keras model: {error}") from error
    if not isinstance(model, VAE):
        raise ModelFileError(f"{model_path} holds a {type(model).__name__}, not a keras_vae VAE.")
    return model, training_config
