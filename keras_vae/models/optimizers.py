"""Optimizers: Keras's Adam with TensorFlow's fused update kernel."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_vae")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, each variable updated by one fused TensorFlow kernel.

    Keras 3's Adam updates a variable with about a dozen small ops (casts,
    powers, assigns); on a CPU the per-op cost of so many tiny kernels is
    what a small model's step spends in the optimizer. `ResourceApplyAdam`
    computes the same update in one kernel:

        m <- m + (1 - beta_1) * (g - m)
        v <- v + (1 - beta_2) * (g^2 - v)
        variable <- variable - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    which is Keras's Adam term for term (the same `epsilon` placement), so
    the two follow the same trajectory up to float rounding. Everything else
    (learning-rate schedules, clipping, weight decay, loss scaling,
    `tf.distribute`, saving) is Keras's. Variables and cases the kernel
    does not cover (`amsgrad=True`, sparse `IndexedSlices` gradients,
    non-TensorFlow backends) take Keras's own update.

    Args: as `keras.optimizers.Adam`.

    Example:
    >>> vae.compile(optimizer=keras_vae.models.optimizers.FusedAdam(1e-3))
    """

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or keras.backend.backend() != "tensorflow"
            or isinstance(gradient, tf.IndexedSlices)
            or not hasattr(variable, "handle")
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), local_step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
