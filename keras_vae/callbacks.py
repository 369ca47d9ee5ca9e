"""Training callbacks."""

import keras


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
