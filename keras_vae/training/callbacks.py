"""Training callbacks: KL warm-up, checkpoints, TensorBoard restarts, latent images, timing."""

import json
import math
import os
import shutil
import sys
import time

import h5py
import keras
import numpy as np
import tensorflow as tf

from keras_vae import generation
from keras_vae.utils import images as image_io
from keras_vae.utils.atomic_files import atomic_write, atomic_write_json, atomic_write_text


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


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time in seconds, two ways.

    `seconds`: from the epoch's start to its end, the training steps and the
    validation. `wall_seconds`: from the epoch's start to the next one's (the
    last: to the end of `fit`), so also everything the callbacks do between
    epochs (checkpoints, TensorBoard images, backups).
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.wall_seconds = []
        self._start = None

    def _close_wall(self, now):
        """Ends the last ended epoch's wall time at `now`, once."""
        if len(self.wall_seconds) < len(self.seconds):
            self.wall_seconds.append(now - self._start)

    def on_epoch_begin(self, epoch, logs=None):
        now = time.perf_counter()
        self._close_wall(now)
        self._start = now

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    def on_train_end(self, logs=None):
        self._close_wall(time.perf_counter())


class TrainingComplete(keras.callbacks.Callback):
    """Writes the training facts to `path` when `fit` ends, before the backup goes.

    Place it before `keras.callbacks.BackupAndRestore`: callbacks end in
    list order, so the record that training finished is on disk before
    BackupAndRestore deletes its state. A run interrupted after that (during
    evaluation or export) therefore never trains again. Nothing is recorded
    when there is no `checkpoint` to evaluate (a loss that became NaN in the
    first epoch): such a run trains again from the start.

    Args:
        path: the JSON file to write: `train_seconds` (this `fit` call's wall
            time), `optimizer_iterations`, `epochs` (finished) and, with `timer`,
            `train_images_per_second` (steps x batch size over the median epoch)
            and `epoch_wall_seconds` (each epoch of this call, start to start).
        checkpoint: the model file that must exist for training to count as done.
        timer: the run's `EpochTimer` (earlier in the callback list), or None.
        batch_size: images per step.
    """

    def __init__(self, path, checkpoint, timer=None, batch_size=None):
        super().__init__()
        self.path = path
        self.checkpoint = checkpoint
        self.timer = timer
        self.batch_size = batch_size

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._epochs = self.params.get("epochs")  # a resumed fit with no epoch left

    def on_epoch_end(self, epoch, logs=None):
        self._epochs = epoch + 1  # absolute: BackupAndRestore resumes the count

    def on_train_end(self, logs=None):
        if not os.path.exists(self.checkpoint):
            return
        facts = {
            "train_seconds": time.perf_counter() - self._start,
            "optimizer_iterations": int(self.model.optimizer.iterations.numpy()),
            "epochs": self._epochs,
        }
        if self.timer is not None and self.timer.seconds:
            images_per_epoch = self.params["steps"] * self.batch_size
            facts["train_images_per_second"] = images_per_epoch / float(
                np.median(self.timer.seconds)
            )
            # Complete: the timer comes earlier in the list, so its on_train_end ran.
            facts["epoch_wall_seconds"] = list(self.timer.wall_seconds)
        atomic_write_json(self.path, facts)


class StopOnDivergence(keras.callbacks.TerminateOnNaN):
    """Keras's TerminateOnNaN that also records where the loss stopped being finite.

    Training stops gracefully (the other callbacks end as usual). `diverged`
    is None, or `{"epoch": e, "step": s, "loss": value}` with 1-based epoch
    and step of the first non-finite training loss.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.diverged is None and loss is not None and not math.isfinite(float(loss)):
            self.diverged = {"epoch": self._epoch + 1, "step": batch + 1, "loss": float(loss)}
        super().on_batch_end(batch, logs)


def _readable_backup(weights_path, metadata_path):
    """None if the backup pair can be restored (or there is none), else why not."""
    if not os.path.exists(weights_path):
        if os.path.exists(metadata_path):
            return f"{metadata_path} has no weights beside it"
        return None
    if not os.path.exists(metadata_path):
        return f"{weights_path} has no {os.path.basename(metadata_path)} beside it"
    try:
        with open(metadata_path) as f:
            int(json.load(f)["epoch"])
        with h5py.File(weights_path, "r") as f:
            # Read every array: a truncated file may open and fail only here.
            f.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"{weights_path} cannot be read ({reason})"
    return None


def _copy_atomically(source, target):
    atomic_write(target, lambda tmp_path: shutil.copyfile(source, tmp_path))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore whose files a kill or a full disk never leaves half-written.

    Every file is written to a temporary sibling and renamed into place: the
    weights first, then the epoch metadata; the previous epoch's pair is kept
    as `.bkp` copies, made the same way. Training resumes after the epoch
    that the restored optimizer's step count says the weights finished, which
    is the metadata's but for a kill between the two renames. At the start of
    training a backup that cannot be read (damaged on disk, or written by a
    process killed mid-write by another writer) is replaced by the previous
    one, or else discarded; a line on stderr says which, and training goes on
    from that epoch or starts again from the first. At most the epochs after
    the last readable backup are lost.

    Args:
        backup_dir: the directory of the backup files.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", double_checkpoint=True)

    def on_train_begin(self, logs=None):
        problem = _readable_backup(self._weights_path, self._training_metadata_path)
        if problem:
            previous = (self._prev_weights_path, self._prev_training_metadata_path)
            if os.path.exists(previous[0]) and not _readable_backup(*previous):
                for source, target in zip(
                    previous, (self._weights_path, self._training_metadata_path), strict=True
                ):
                    _copy_atomically(source, target)
                with open(self._training_metadata_path) as f:
                    epoch = json.load(f)["epoch"]
                outcome = f"resuming from the previous backup, after epoch {epoch}"
            else:
                for path in (self._weights_path, self._training_metadata_path, *previous):
                    if os.path.exists(path):
                        os.remove(path)
                outcome = "no readable backup is left: training starts again from epoch 1"
            print(f"{problem}: {outcome}.", file=sys.stderr, flush=True)
        super().on_train_begin(logs)
        # A kill between the weights' rename and the epoch record's leaves weights one
        # epoch ahead of the record: the restored optimizer's step count says where.
        steps = self.params.get("steps")
        iterations = int(self.model.optimizer.iterations.numpy())
        if steps and iterations % steps == 0:
            self.model._initial_epoch = iterations // steps

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        for current, previous in (
            (self._weights_path, self._prev_weights_path),
            (self._training_metadata_path, self._prev_training_metadata_path),
        ):
            if os.path.exists(current):
                _copy_atomically(current, previous)
        atomic_write(
            self._weights_path,
            lambda tmp_path: self.model.save_weights(tmp_path, overwrite=True),
            suffix=".weights.h5",
        )
        atomic_write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
        )


def _event_records(path):
    """The serialized events of a TensorBoard event file, up to a record cut short by a kill."""
    records = iter(tf.data.TFRecordDataset(path))
    while True:
        try:
            yield next(records).numpy()
        except (StopIteration, tf.errors.DataLossError):
            return


# Keras's TensorBoard callback logs these tags at the optimizer's step count, not
# the epoch (evaluation_loss_vs_iterations...).
ITERATION_TAG_SUFFIX = "_vs_iterations"


def drop_summaries_from(path, epoch, steps_per_epoch):
    """Rewrites the event file `path` without its summaries of epoch `epoch` or later.

    Per-epoch tags are logged at the epoch's index (dropped at steps >= `epoch`);
    `*_vs_iterations` tags at the optimizer's step count at the epoch's end
    (dropped past `epoch * steps_per_epoch`, where the last kept epoch ended).

    Returns:
        int: the number of events dropped (0: the file is left as it was).
    """
    from tensorboard.compat.proto import event_pb2

    kept, dropped = [], 0
    for record in _event_records(path):
        event = event_pb2.Event.FromString(record)
        if event.HasField("summary"):
            tags = [value.tag for value in event.summary.value]
            by_iterations = any(tag.endswith(ITERATION_TAG_SUFFIX) for tag in tags)
            first = epoch * steps_per_epoch + 1 if by_iterations else epoch
            if event.step >= first:
                dropped += 1
                continue
        kept.append(record)
    if dropped:

        def write(tmp_path):
            with tf.io.TFRecordWriter(tmp_path) as writer:
                for record in kept:
                    writer.write(record)

        atomic_write(path, write)
    return dropped


class TensorBoardRestart(keras.callbacks.Callback):
    """On a rerun, removes the logged points of the epochs that training redoes.

    Place it after `keras.callbacks.BackupAndRestore`: at the start of
    training it reads how many epochs the restored optimizer has finished
    (its iterations over the steps per epoch), k, and rewrites the event
    files that earlier runs left in the TensorBoard runs without their
    summaries of epochs >= k (`drop_summaries_from`). An epoch logged before an interruption and run
    again then appears once, whatever reads the logs (TensorBoard's own
    restart markers are honoured by some of its readers only). The files are
    listed when the callback is made, before this fit's writers open theirs.

    Args:
        log_dir: the TensorBoard log directory of the run.
        runs: the subdirectories (TensorBoard runs) written per epoch.
    """

    def __init__(self, log_dir, runs=("train", "validation", "images")):
        super().__init__()
        self.log_dir = log_dir
        self.runs = runs
        self._earlier_files = [
            os.path.join(log_dir, run, name)
            for run in runs
            if os.path.isdir(os.path.join(log_dir, run))
            for name in sorted(os.listdir(os.path.join(log_dir, run)))
            if name.startswith("events.out.tfevents.")
        ]

    def on_train_begin(self, logs=None):
        steps = self.params["steps"]
        epoch = int(self.model.optimizer.iterations.numpy()) // steps
        for path in self._earlier_files:
            drop_summaries_from(path, epoch, steps)


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


class LatentImages(keras.callbacks.Callback):
    """Logs latent-space image grids and, at the end, a Projector embedding to TensorBoard.

    Every `every_n_epochs` epochs (and after the last one) it writes, under
    `log_dir/images` with the epoch as step:
      - `samples`: images decoded from a FIXED set of z ~ N(0, I) drawn once
        from `seed`, so the same cell shows the same code epoch after epoch;
      - `reconstructions`: rows of held-out inputs, each above its
        reconstruction from the posterior mean;
      - `interpolation`: slerp paths between pairs of held-out images, the
        inputs at both ends.
    Nothing is logged once the training loss is not finite. When training
    ends, `log_dir/projector` gets the posterior means of the
    first `projector_size` images as a checkpoint, their labels as
    `metadata.tsv`, a `sprite.png` of the images and a one-line text summary
    that makes the directory a TensorBoard run (TensorBoard's Projector tab
    lists runs that hold a `projector_config.pbtxt`). Decoding and encoding
    use `keras_vae.generation.Codec` (compiled once).

    Args:
        log_dir: the TensorBoard log directory of the run.
        images: held-out float32 `[N, H, W, C]` in [0, 1] (N >= 2).
        labels: optional `[N]` ints or strings for the projector.
        label_names: optional names of integer labels (index -> name).
        every_n_epochs: logging period, >= 1.
        num_samples: decoded prior samples per grid (8 per row).
        num_interpolations: interpolation rows; `interpolation_steps` codes each.
        projector_size: images in the projector; 0 disables it.
        seed: seeds the fixed z and nothing else.
        conditions: a `keras_vae.ConditionalVAE`'s label vectors of `images`
            `[N, label_dim]`. Each image is then encoded and reconstructed
            with its own; the samples decode the fixed z with the labels of
            the first images, and the interpolations move the label too.
    """

    def __init__(
        self,
        log_dir,
        images,
        labels=None,
        label_names=None,
        every_n_epochs=1,
        num_samples=64,
        num_interpolations=4,
        interpolation_steps=8,
        projector_size=1000,
        seed=0,
        conditions=None,
    ):
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1; got {every_n_epochs}.")
        if len(images) < 2:
            raise ValueError(f"LatentImages needs at least 2 held-out images; got {len(images)}.")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"Got {len(labels)} labels for {len(images)} images.")
        if conditions is not None and len(conditions) != len(images):
            raise ValueError(f"Got {len(conditions)} label vectors for {len(images)} images.")
        self.conditions = None if conditions is None else np.asarray(conditions, np.float32)
        self.log_dir = log_dir
        self.images = np.asarray(images, dtype=np.float32)
        self.labels = labels
        self.label_names = label_names
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.num_interpolations = min(num_interpolations, len(images) // 2)
        self.interpolation_steps = interpolation_steps
        self.projector_size = min(projector_size, len(images))
        self.seed = seed

    def on_train_begin(self, logs=None):
        self._codec = generation.Codec(self.model)
        rng = np.random.default_rng(self.seed)
        self._z = rng.standard_normal((self.num_samples, self.model.latent_dim)).astype("float32")
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
        self._diverged = False

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            self._diverged = True  # a model with non-finite weights has nothing to show
        last = epoch + 1 == self.params.get("epochs")
        if not self._diverged and ((epoch + 1) % self.every_n_epochs == 0 or last):
            self.log_images(epoch)

    def on_train_end(self, logs=None):
        self._writer.close()
        if self.projector_size and not self._diverged:
            self.write_projector()

    def log_images(self, step):
        """Writes the three grids at `step`."""
        grids = {
            "samples": self._samples(),
            "reconstructions": self._reconstructions(),
            "interpolation": self._interpolation(),
        }
        with self._writer.as_default():
            for name, picture in grids.items():
                tf.summary.image(name, picture[np.newaxis], step=step)
        self._writer.flush()

    def _conditions(self, start, stop):
        """The label vectors of images[start:stop], or None for an unconditional model."""
        return None if self.conditions is None else self.conditions[start:stop]

    def _samples(self):
        cols = 8
        rows = math.ceil(self.num_samples / cols)
        labels = None
        if self.conditions is not None:  # the labels of real images, repeated as needed
            labels = np.resize(self.conditions, (len(self._z), self.conditions.shape[1]))
        samples = self._codec.decode(self._z, labels)
        return image_io.grid(image_io.padded(samples, rows * cols), rows, cols)

    def _reconstructions(self):
        cols = min(8, len(self.images))
        count = 2 * cols if len(self.images) >= 2 * cols else cols
        inputs, labels = self.images[:count], self._conditions(0, count)
        outputs = self._codec.decode(self._codec.encode(inputs, labels), labels)
        return image_io.reconstruction_grid(inputs, outputs, cols)

    def _interpolation(self):
        count = self.num_interpolations
        starts, ends = self.images[:count], self.images[count : 2 * count]
        first, last = self._conditions(0, count), self._conditions(count, 2 * count)
        codes = generation.interpolate(
            self._codec.encode(starts, first),
            self._codec.encode(ends, last),
            self.interpolation_steps,
        )
        labels = None
        if first is not None:  # the label moves in a straight line with the code
            labels = generation.interpolate(first, last, self.interpolation_steps, method="lerp")
        paths = self._codec.decode(codes, labels)
        strips = np.concatenate([starts[:, None], paths, ends[:, None]], axis=1)
        return image_io.grid(
            strips.reshape(-1, *self.images.shape[1:]), count, self.interpolation_steps + 2
        )

    def write_projector(self):
        """Posterior means, labels and sprite of the first images, for the Projector tab."""
        from tensorboard.plugins import projector

        directory = os.path.join(self.log_dir, "projector")
        os.makedirs(directory, exist_ok=True)
        images = self.images[: self.projector_size]
        means = self._codec.encode(images, self._conditions(0, len(images)))
        checkpoint = tf.train.Checkpoint(embedding=tf.Variable(means))
        checkpoint.save(os.path.join(directory, "embedding.ckpt"))
        config = projector.ProjectorConfig()
        embedding = config.embeddings.add()
        embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
        if self.labels is not None:
            lines = "".join(f"{self._label(label)}\n" for label in self.labels[: len(images)])
            atomic_write_text(os.path.join(directory, "metadata.tsv"), lines)
            embedding.metadata_path = "metadata.tsv"
        side = math.ceil(math.sqrt(len(images)))
        sprite = image_io.grid(image_io.padded(images, side * side), side, side, padding=0)
        image_io.save_png(os.path.join(directory, "sprite.png"), sprite)
        embedding.sprite.image_path = "sprite.png"
        embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])
        projector.visualize_embeddings(directory, config)
        # TensorBoard finds projector configs in runs, i.e. in directories that
        # hold event files: this note makes log_dir/projector one.
        writer = tf.summary.create_file_writer(directory)
        with writer.as_default():
            tf.summary.text(
                "embedding",
                f"Posterior means of {len(images)} held-out images "
                f"({means.shape[1]} dimensions): open the Projector tab.",
                step=0,
            )
        writer.close()

    def _label(self, label):
        if self.label_names is not None:
            label = self.label_names[int(label)]
        return str(label).replace("\t", " ").replace("\n", " ")
