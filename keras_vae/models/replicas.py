"""What a training or test step does differently under `tf.distribute`.

The model's `train_step` and `test_step` call these, so a model trains the
same on one device, several replicas or several workers
(`keras_vae.training.distribute` makes the strategies).
"""

import tensorflow as tf
from keras import ops


def is_multi_worker(strategy):
    """True when `strategy` synchronizes several workers (collective ops)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(job, ())) for job in ("chief", "worker")) > 1


def per_replica(loss):
    """A replica's share of the global-batch mean loss: `loss / num_replicas_in_sync`.

    Each replica sees 1/N of the global batch and the gradients are summed
    across replicas, so the replica's mean loss is scaled by 1/N to give the
    gradient of the global-batch mean. Outside a strategy N is 1.
    """
    return loss / tf.distribute.get_strategy().num_replicas_in_sync


def step_logs(logs):
    """A training or test step's logs (a dict of scalars), as the strategy needs them.

    Keras reduces a multi-worker step's outputs with
    `strategy.reduce("MEAN", value, axis=0)`, which rejects scalars ("Invalid
    reduction dimension 0"); a [1] tensor reduces to the scalar that every
    other strategy returns.
    """
    if is_multi_worker(tf.distribute.get_strategy()):
        return {name: ops.reshape(value, (1,)) for name, value in logs.items()}
    return logs
