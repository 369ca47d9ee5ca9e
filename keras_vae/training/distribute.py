"""tf.distribute strategies for training, and who writes what in a cluster.

`train.py --strategy` picks one of `keras_vae.utils.names.STRATEGIES`; the model
and optimizer are built under its scope. In multi-worker
training every worker runs the same command with its own TF_CONFIG; only
the chief writes the run dir, the others write their checkpoints to a
private temporary directory, as TensorFlow's multi-worker guide does.
"""

import hashlib
import os
import tempfile

import tensorflow as tf

from keras_vae.models.replicas import is_multi_worker
from keras_vae.utils import names


def make_strategy(name="auto"):
    """Returns the tf.distribute strategy called `name`.

    "auto": MirroredStrategy over all GPUs when there are several, else the
    default (no-op) strategy. "one_device": the first GPU, else the CPU.
    "mirrored": MirroredStrategy over the local GPUs (the CPU without any).
    "multi_worker": MultiWorkerMirroredStrategy configured by TF_CONFIG.
    """
    names.check_choice("strategy", name, names.STRATEGIES)
    # physical, not logical: listing logical devices would initialize the
    # runtime, after which collectives can no longer be configured.
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise ValueError(
            "--strategy multi_worker needs the TF_CONFIG environment variable "
            '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}) on every worker.'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """True for the worker that writes the run dir (always, out of a cluster)."""
    return bool(strategy.extended.should_checkpoint)


def _votes(strategy, flag, chief_only):
    if not is_multi_worker(strategy):
        return bool(flag)
    vote = 1.0 if flag and (is_chief(strategy) or not chief_only) else 0.0
    total = strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(vote)), axis=None
    )
    return bool(total.numpy() > 0)


def chief_says(strategy, flag):
    """The chief's `flag`, the same on every worker (a collective); `flag` out of a cluster.

    Decisions the chief takes from the run dir (training finished) must be every
    worker's, or a worker waits for collectives that the chief never joins.
    """
    return _votes(strategy, flag, chief_only=True)


def any_worker_says(strategy, flag):
    """True on every worker when `flag` is true on any of them (a collective)."""
    return _votes(strategy, flag, chief_only=False)


def smallest(strategy, value):
    """The smallest of every worker's `value` (a collective); `value` out of a cluster."""
    if not is_multi_worker(strategy):
        return value
    # tf.distribute reduces only by sum or mean: every replica's value, then their minimum.
    values = strategy.gather(strategy.run(lambda: tf.constant([value], tf.int64)), axis=0)
    return int(tf.reduce_min(values).numpy())


def worker_shard(strategy):
    """`(workers, this worker's index)` in a cluster, else None: which files a worker reads."""
    if not is_multi_worker(strategy):
        return None
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    tasks = [(job, i) for job in ("chief", "worker") for i in range(len(cluster.get(job, ())))]
    return len(tasks), tasks.index((resolver.task_type, resolver.task_id))


def worker_dir(run_dir, strategy):
    """Where this worker writes: `run_dir` for the chief, else a private temp dir.

    The private dir is derived from `run_dir` and the task, so the same worker
    finds its checkpoints again when the command is run again.
    """
    if is_chief(strategy):
        return run_dir
    resolver = strategy.cluster_resolver
    return private_worker_dir(run_dir, resolver.task_type, resolver.task_id)


def private_worker_dir(run_dir, task_type, task_id):
    """The temporary directory of a non-chief worker of the run `run_dir`."""
    key = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"keras_vae-{key}-{task_type}-{task_id}")
