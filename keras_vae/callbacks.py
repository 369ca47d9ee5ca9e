"""Training callbacks."""

import json
import math
import os

import keras

from keras_vae.files import atomic_write, atomic_write_json


class KLWarmup(keras.callbacks.Callback):
    """Ramps the VAE's `kl_weight` linearly from 0 to its `beta`.

    At the start of epoch e the weight is beta * min(1, e / warmup_epochs):
    the first epoch trains the reconstruction alone, the KL term comes in
    over the next ones. This is the usual guard against posterior collapse.
    The current weight is added to the epoch logs as `kl_weight`, so a
    TensorBoard callback placed after this one plots it.

    Args:
        warmup_epochs: number of epochs of the ramp; 0 disables it.
    """

    def __init__(self, warmup_epochs):
        super().__init__()
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0; got {warmup_epochs}.")
        self.warmup_epochs = warmup_epochs

    def weight_at(self, epoch):
        if self.warmup_epochs == 0:
            return self.model.beta
        return self.model.beta * min(1.0, epoch / self.warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.weight_at(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = float(self.model.kl_weight.numpy())


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` whenever `monitor` reaches a new minimum.

    Unlike `keras.callbacks.ModelCheckpoint`, the file is written to a
    temporary sibling and renamed into place, so a run killed mid-save never
    leaves a half-written `.keras` file; and the best value so far is kept in
    `state_path`, so a run resumed by BackupAndRestore does not replace the
    best model with the first, worse, epoch after the restart.

    Args:
        path: the `.keras` file to write.
        monitor: the epoch log to minimize, e.g. "val_loss".
        state_path: JSON file holding the best value; put it in the
            BackupAndRestore directory so it lives exactly as long as the
            run's resumable state.
    """

    def __init__(self, path, monitor="val_loss", state_path=None):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.state_path = state_path
        self.best = math.inf

    def on_train_begin(self, logs=None):
        self.best = math.inf
        if self.state_path and os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.best = json.load(f)["best"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(
                f"BestModelCheckpoint monitors {self.monitor!r}, which is not in the epoch logs "
                f"({sorted(logs or {})})."
            )
        if not float(value) < self.best:
            return
        self.best = float(value)
        atomic_write(self.path, self.model.save, suffix=".keras")
        if self.state_path:
            atomic_write_json(self.state_path, {"best": self.best, "epoch": epoch})


class FlushingTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard that flushes its event files at the end of every epoch.

    Placed before BackupAndRestore, an epoch's scalars are on disk before
    the epoch's backup is, so a killed run resumed from its backup leaves no
    gap in the curves.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        for writer in self._writers.values():
            writer.flush()
