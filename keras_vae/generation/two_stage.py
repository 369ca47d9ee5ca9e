"""The two-stage VAE's second stage: a small VAE trained on the first one's codes.

Dai & Wipf (2019, "Diagnosing and Enhancing VAE Models"): a VAE's codes
q(z) = mean over x of q(z | x) do not match N(0, I), so decoding prior
draws gives blurry in-betweens. A second VAE with a learned Gaussian
likelihood scale, trained on the codes, learns their distribution; sampling
u ~ N(0, I), decoding it by the second decoder to a code z, then by the
image decoder gives the samples. `fit_two_stage` trains it with Keras and
returns a `keras_vae.models.priors.TwoStagePrior` (NumPy weights), which
samples, saves and exports like any other prior.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae.models import losses, priors
from keras_vae.models.layers import Sampling

# The second VAE's hidden layers (ReLU), the same for its encoder and decoder.
UNITS = (512, 512)
# Training: Adam, this many passes over the codes, in batches of BATCH_SIZE.
EPOCHS = 40
BATCH_SIZE = 256
LEARNING_RATE = 1e-3


class _CodeVAE(keras.Model):
    """A VAE on vectors: Gaussian likelihood with one learned scale (log_gamma)."""

    def __init__(self, latent_dim, units, seed):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _network(latent_dim, units, 2 * latent_dim, "encoder", seed)
        self.decoder = _network(latent_dim, units, latent_dim, "decoder", seed + 100)
        self.sampling = Sampling(seed=seed)
        # Started small (gamma 0.1): a scale near the codes' own spread lets the
        # second VAE explain them as noise and its latent collapse.
        self.log_gamma = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(math.log(0.1)), name="log_gamma"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def negative_elbo(self, codes):
        posterior = self.encoder(codes)
        mean, log_var = posterior[:, : self.latent_dim], posterior[:, self.latent_dim :]
        log_var = ops.clip(log_var, -30.0, 20.0)
        u = self.sampling((mean, log_var))
        reconstruction = losses.gaussian_nll(codes, self.decoder(u), self.log_gamma)
        return reconstruction + losses.kl_to_standard_normal(mean, log_var)

    def train_step(self, data):
        codes, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loss = ops.mean(self.negative_elbo(codes))
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def _network(inputs, units, outputs, name, seed):
    """A ReLU MLP, its kernels seeded (no global seed is set)."""
    codes = keras.Input((inputs,))
    x = codes
    for i, width in enumerate((*units, outputs)):
        x = keras.layers.Dense(
            width,
            activation="relu" if i < len(units) else None,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
        )(x)
    return keras.Model(codes, x, name=name)


def _weights(network):
    dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]
    return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in dense]


def fit_two_stage(
    codes,
    units=UNITS,
    epochs=EPOCHS,
    batch_size=BATCH_SIZE,
    learning_rate=LEARNING_RATE,
    seed=0,
):
    """Trains the second stage on `codes` `[n, latent_dim]`; returns its `TwoStagePrior`.

    Args:
        codes: the first VAE's codes of the training images (posterior means,
            or one z ~ q(z | x) per image).
        units: the widths of the hidden ReLU layers of its encoder and decoder.
        epochs, batch_size, learning_rate: its training (Adam).
        seed: seeds its weights, the shuffles and its sampling.
    """
    start = time.perf_counter()
    codes = np.asarray(codes, np.float32)
    if codes.ndim != 2 or len(codes) < 2 or not np.all(np.isfinite(codes)):
        raise ValueError(
            f"fit_two_stage needs finite codes [n >= 2, latent_dim]; got shape {codes.shape}."
        )
    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1; got {epochs} and {batch_size}.")
    latent_dim = codes.shape[1]
    # Trained on standardized codes, so that its one likelihood scale fits every
    # dimension alike (a wide one would otherwise pass a narrow one off as noise);
    # the scaling is folded into the decoder's last layer afterwards.
    center, spread = codes.mean(axis=0), codes.std(axis=0) + 1e-6
    codes = (codes - center) / spread
    model = _CodeVAE(latent_dim, tuple(units), seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    batch_size = min(int(batch_size), len(codes))
    dataset = (
        tf.data.Dataset.from_tensor_slices(codes)
        .shuffle(len(codes), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .repeat()
    )
    steps = len(codes) // batch_size
    history = model.fit(
        dataset, epochs=int(epochs), steps_per_epoch=steps, shuffle=False, verbose=0
    )
    loss = history.history["loss"][-1]
    decoder, encoder = _weights(model.decoder), _weights(model.encoder)
    kernel, bias = decoder[-1]
    decoder[-1] = (kernel * spread, bias * spread + center)  # z = center + spread * output
    kernel, bias = encoder[0]
    encoder[0] = (kernel / spread[:, None], bias - (center / spread) @ kernel)
    log_gamma = float(model.log_gamma.numpy())
    return priors.TwoStagePrior(
        decoder,
        encoder,
        log_gamma + np.log(spread),  # the likelihood's scale, in the codes' units
        info={
            "codes": len(codes),
            "units": list(units),
            "epochs": int(epochs),
            "final_loss": float(loss) if math.isfinite(loss) else None,
            "gamma_of_standardized_codes": float(np.exp(log_gamma)),
            "seconds": round(time.perf_counter() - start, 3),
        },
    )
