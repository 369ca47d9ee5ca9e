"""A run dir's layout, defined once, and loading the trained model from one.

config.json           the TrainingConfig that made the run
.lock                 flock'ed by the process writing the run dir
model.keras           the checkpoint with the best validation loss
training.json         written when `fit` has finished: a rerun does not train again
logs/                 TensorBoard event files: train/ and validation/ scalars,
                      config/ the config as text, images/ latent grids,
                      projector/ test posterior means with labels and sprite
backup/               BackupAndRestore state while training (removed when done)
metrics.json          test metrics of model.keras, in nats per image, and its
                      priors' fit and test log-likelihoods ("prior")
samples.png           8x8 grid decoded from z of the run's prior (--prior, fitted
                      to the training codes after training; model.keras holds it)
samples_standard.png  the same grid and seed from z ~ N(0, I)
reconstructions.png   test inputs (odd rows) above their reconstructions
export/               the decoder as a generator (keras_vae.export.generator)
generated_tflite.png  8x8 grid rendered by export/generator_float32.tflite
"""

import contextlib
import fcntl
import json
import os
import warnings
import zipfile

import keras

from keras_vae import models
from keras_vae.models.vae import VAE
from keras_vae.training.config import WITHOUT_THE_FIELD, flag_name

# Config fields that a rerun may change: how fast a run trains (not what it
# computes), the prior fitted after training (a failed or unwanted fit is
# redone with other settings, without training again), what it exports, and how
# a folder is read (whether its decoded pictures are cached, unreadable files refused).
RERUN_FIELDS = frozenset(
    {
        "steps_per_execution",
        "prior",
        "prior_components",
        "prior_codes",
        "export_variants",
        "export_static_batch_sizes",
        "strict",
        "cache",
    }
)

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
TRAINING_FILE = "training.json"
# The test codes' attribute vectors (class labels, attributes.csv, CelebA's 40):
# the web explorer's named sliders.
ATTRIBUTES_FILE = "attribute_vectors.json"
LOCK_FILE = ".lock"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
EXPORT_DIR = "export"
CACHE_DIR = "cache"  # --cache: the decoded pictures of a folder or CelebA
SAMPLES_PNG = "samples.png"
STANDARD_SAMPLES_PNG = "samples_standard.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
PREVIEW_PNG = "generated_tflite.png"


class ModelFileError(ValueError):
    """A file is not a loadable keras_vae model; the message says which and why."""


class RunDirInUse(OSError):
    """Another process is writing the run dir."""


@contextlib.contextmanager
def lock(directory, alternative="choose another --run-dir"):
    """Holds an exclusive lock on the run dir `directory` (created if missing).

    The lock is an `flock` on `directory/.lock`, so the kernel releases it
    when its process ends, however it ends (even SIGKILL).

    Raises:
        RunDirInUse: another process holds it; the message says to wait for
            it to finish, "or `alternative`" (None: wait, then run again).
    """
    created = not os.path.exists(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_FILE)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            f.seek(0)
            holder = f.read().strip() or "another process"
            what_to_do = (
                f"wait for it to finish, or {alternative}"
                if alternative
                else "wait for it to finish, then run the same command again"
            )
            raise RunDirInUse(f"{directory} is in use by {holder}: {what_to_do}.") from error
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()}\n")
        f.flush()
        try:
            yield
        except BaseException:
            if created:  # a run that failed before writing anything leaves no run dir
                with contextlib.suppress(OSError):
                    os.remove(path)
                    os.rmdir(directory)  # only if empty: never what another process wrote
            raise
        finally:
            f.seek(0)
            f.truncate()


def holds_training(directory):
    """True if `directory` holds a checkpoint, a backup or the record of finished training."""
    return any(
        os.path.exists(os.path.join(directory, name))
        for name in (MODEL_FILE, BACKUP_DIR, TRAINING_FILE)
    )


def check_config(directory, config):
    """Raises ValueError if `directory` holds a config.json other than `config`'s.

    Resuming a run with other settings would mix two runs in one directory
    (or fail deep inside Keras); the message names each differing flag.
    `RERUN_FIELDS` may differ, and so may everything while the run dir holds
    nothing trained (a run that diverged or was stopped in its first epoch).
    """
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(path) or not holds_training(directory):
        return
    with open(path) as f:
        saved = json.load(f)
    wanted = config.effective()
    # A field added after the run was made counts as its default there, or as
    # what such runs did where the default is another (config.WITHOUT_THE_FIELD).
    saved = {**type(config)().to_dict(), **WITHOUT_THE_FIELD, **saved}
    try:
        saved = type(config).from_dict(saved).effective()
    except (TypeError, ValueError):
        wanted = config.to_dict()  # a config.json this version cannot rebuild: as written
    differences = [
        f"{flag_name(name)} {saved.get(name)!r} there, {wanted.get(name)!r} now"
        for name in sorted(set(saved) | set(wanted))
        if saved.get(name) != wanted.get(name) and name not in RERUN_FIELDS
    ]
    if differences:
        raise ValueError(
            f"{directory} holds a run made with other settings ({'; '.join(differences)}). "
            "Run the same command as before to resume it, or choose another --run-dir."
        )


def check_outside_data(directory, config):
    """Raises ValueError if the run dir `directory` lies inside the folder of pictures it reads.

    The run's own pictures (samples, grids, the projector's sprite) would be
    read back as training pictures by the next run on that folder.
    """
    if config.dataset != "folder" or config.data_dir is None:
        return
    # Both as written and resolved: the folder's reader follows symbolic links.
    inside = any(
        os.path.join(resolve(directory), "").startswith(os.path.join(resolve(config.data_dir), ""))
        for resolve in (os.path.abspath, os.path.realpath)
    )
    if inside:
        raise ValueError(
            f"--run-dir {directory} is inside --data-dir {config.data_dir}: the run's pictures "
            "would be read as training pictures. Choose a --run-dir outside the folder."
        )


def of_model(path):
    """The run dir that `path` belongs to, or None.

    A run dir is a directory holding model.keras; `path` is one, or a .keras
    file inside one (`RUN/model.keras`), which the run's lock also guards.
    """
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return directory if os.path.isfile(os.path.join(directory, MODEL_FILE)) else None


def _one_line(error):
    """Keras's message of `error` on one line (some span six), at most 400 characters."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text if len(text) <= 400 else text[:397] + "..."


def read_attribute_directions(directory):
    """The run dir's attribute_vectors.json as a dict, or None when it has none (or is None)."""
    path = None if directory is None else os.path.join(directory, ATTRIBUTES_FILE)
    if path is None or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def read_config(path):
    """The run dir `path`'s config.json as a dict, or None if it has none.

    Raises:
        ModelFileError: config.json is not a JSON object; the message names it.
    """
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.exists(config_path):
        return None
    try:
        with open(config_path) as f:
            config = json.load(f)
    except ValueError as error:  # UnicodeDecodeError too
        config = error
    if not isinstance(config, dict):
        reason = _one_line(config) if isinstance(config, Exception) else "not a JSON object"
        raise ModelFileError(
            f"{config_path} is not a run's settings ({reason}): restore it from a copy, or "
            f"pass --model {os.path.join(path, MODEL_FILE)} to use the model alone."
        )
    return config


def load_model(path, config=True):
    """Loads a keras_vae model from a run dir or a `.keras` file.

    Args:
        path: a run dir or a `.keras` file.
        config: False to skip the run dir's config.json (a command that does
            not need the run's settings then works with a corrupt one).

    Returns:
        `(model, training_config)`: a `keras_vae.VAE`; the
        config is the run dir's config.json as a dict, or None for a bare
        `.keras` file (or `config` False).

    Raises:
        FileNotFoundError: nothing at `path`.
        ModelFileError: the file is not a keras_vae model, or the run dir's
            config.json is not valid JSON; the message is one line.
    """
    training_config = None
    model_path = path
    if os.path.isdir(path):
        model_path = os.path.join(path, MODEL_FILE)
        if config:
            training_config = read_config(path)
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model at {model_path}: give a run dir or a .keras file.")
    if os.path.isfile(model_path) and not zipfile.is_zipfile(model_path):
        raise ModelFileError(
            f"{model_path} is not a .keras file (not a zip archive): it is truncated or "
            "corrupted; train again or copy it again."
        )
    models.register_serializable_classes()
    with warnings.catch_warnings(record=True) as caught:
        try:
            model = keras.models.load_model(model_path)
        except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
            # Keras's warnings about what it skipped only repeat the error.
            raise ModelFileError(
                f"{model_path} is not a loadable .keras model: {_one_line(error)}"
            ) from error
    for warning in caught:  # a model that loaded: Keras's warnings are shown as they were
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not isinstance(model, VAE):
        raise ModelFileError(f"{model_path} holds a {type(model).__name__}, not a keras_vae VAE.")
    return model, training_config
