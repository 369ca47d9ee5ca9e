"""train_and_evaluate(config, run_dir): fit a VAE, evaluate it, write the run dir.

The run dir's layout is `keras_vae.training.run_dir`'s. Each step is a function of its
own: `load_splits`, `build_model`, `build_callbacks`, `fit`, `evaluate`,
`fit_run_priors`, `write_run_artifacts`. In multi-worker training only the chief writes the
run dir; the other workers checkpoint into private temporary directories
that are removed at the end.
"""

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import sys
import time
import typing

import keras
import numpy as np
import tensorflow as tf

from keras_vae import datasets, generation
from keras_vae.datasets import folder, pipeline
from keras_vae.export import generator as export
from keras_vae.models import priors
from keras_vae.models.conditional_vae import ConditionalVAE
from keras_vae.models.optimizers import FusedAdam
from keras_vae.models.vae import VAE
from keras_vae.training import distribute, run_dir
from keras_vae.training.callbacks import (
    AtomicBackupAndRestore,
    BestModelCheckpoint,
    EpochTimer,
    FlushingTensorBoard,
    KLWarmup,
    LatentImages,
    StopOnDivergence,
    TensorBoardRestart,
    TrainingComplete,
)
from keras_vae.utils import images as image_io
from keras_vae.utils import names
from keras_vae.utils.atomic_files import atomic_write, atomic_write_json

# Test images shown in the TensorBoard image grids and the Projector.
TENSORBOARD_IMAGES = 1000

# What training.json records, also found in the metrics.json of run dirs that
# were written without a training.json.
TRAINING_FACTS = (
    "train_seconds",
    "optimizer_iterations",
    "epochs",
    "train_images_per_second",
    "epoch_wall_seconds",
)


class TrainingDiverged(ValueError):
    """The training loss stopped being finite before any checkpoint was saved."""


@dataclasses.dataclass
class Labels:
    """A conditional run's labels: float32 vectors `[N, len(names)]` per split.

    `label_type` is "class" (one-hot) or "attributes" (0/1); `validation`
    is None without a validation split.
    """

    label_type: str
    names: tuple
    train: np.ndarray
    validation: np.ndarray | None
    test: np.ndarray

    @classmethod
    def of_splits(cls, conditions, train, validation, test):
        """The labels of each split: `conditions(*split)` gives `(type, names, vectors)`.

        `train`, `validation` and `test` are argument tuples of `conditions`;
        `validation` may be None.
        """
        label_type, label_names, train_vectors = conditions(*train)
        return cls(
            label_type,
            label_names,
            train_vectors,
            None if validation is None else conditions(*validation)[2],
            conditions(*test)[2],
        )

    def model_kwargs(self):
        """What `keras_vae.ConditionalVAE` is told of the labels."""
        return {"label_names": tuple(self.names), "label_type": self.label_type}


class Splits(typing.NamedTuple):
    """The data of a run: images of each split, test labels, and a conditional run's `labels`.

    `test_labels` are the test images' integer classes (None for a folder
    without classes), for the TensorBoard projector; `labels` is `Labels`
    when the config is `conditional`, else None.
    """

    train: typing.Any
    validation: typing.Any
    test: typing.Any
    test_labels: np.ndarray | None
    labels: Labels | None = None


def split_validation(images, validation_size, seed):
    """A seeded random split of `images` into (train, validation).

    The validation images are the first `validation_size` of a permutation
    drawn from `seed`; the rest, in that permuted order, are the training images.
    The same arguments split an array of their labels the same way.
    """
    if validation_size >= len(images):
        raise ValueError(
            f"validation_size ({validation_size}) must be smaller than the training split "
            f"({len(images)} images)."
        )
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order[validation_size:]], images[order[:validation_size]]


def load_splits(config, cache_dir=None, shard=None):
    """`Splits`: `(train_images, validation_images or None, test_images, test_labels)`, checked.

    The IDX datasets are arrays in memory; a folder or CelebA's files are
    `datasets.folder.FolderImages`, each decoded once here to drop (or with
    `--strict` refuse) unreadable files, into a uint8 file in `cache_dir`
    with `--cache`. `test_labels` is None for a folder without classes.

    Args:
        shard: `(workers, index)` (`distribute.worker_shard`): the training
            split of a folder or CelebA is then this worker's shard of the
            files, and only those are decoded. The IDX arrays are whole (the
            strategy shards their batches).

    With `config.conditional` the `Splits` also hold every split's `Labels`.
    """
    if config.dataset not in names.IDX_DATASETS:
        return _streamed_splits(config, cache_dir, shard)
    train_images, train_labels = datasets.load(
        config.dataset, "train", config.data_dir, limit=config.train_subset or None
    )
    test_images, test_labels = datasets.load(
        config.dataset, "test", config.data_dir, limit=config.test_subset or None
    )
    datasets.check_images(train_images, config.likelihood, "training images")
    datasets.check_images(test_images, config.likelihood, "test images")
    validation_images = validation_labels = None
    if config.validation_size:
        train_images, validation_images = split_validation(
            train_images, config.validation_size, config.seed
        )
        train_labels, validation_labels = split_validation(
            train_labels, config.validation_size, config.seed
        )
    labels = None
    if config.conditional:
        labels = Labels.of_splits(
            functools.partial(datasets.conditions, dataset=config.dataset),
            (train_images, train_labels),
            None if validation_images is None else (validation_images, validation_labels),
            (test_images, test_labels),
        )
    return Splits(train_images, validation_images, test_images, test_labels, labels)


def _streamed_splits(config, cache_dir, shard):
    train, validation, test = datasets.streamed_splits(
        config.dataset,
        config.data_dir,
        config.image_shape(),
        config.seed,
        config.validation_size,
        config.background,
    )
    train, test = train.subset(config.train_subset), test.subset(config.test_subset)
    if shard and not train.needs_cache:
        train = train.shard(*shard)  # before the first pass: a worker decodes its own files
    skipped, total = [], 0  # over the three splits: one line for the folder
    for images in (train, validation, test):
        if images is None:
            continue
        cache = None
        if (config.cache or images.needs_cache) and cache_dir is not None:
            cache = os.path.join(cache_dir, folder.cache_name(images))
        total += len(images)
        skipped += images.verify(config.strict, cache)
    if skipped:
        print(f"{config.data_dir}: {folder.skipped_message(skipped, total)}", file=sys.stderr)
    if shard and train.needs_cache:
        train = train.shard(*shard)  # tensorflow-datasets: read whole into the cache first
    labels = None
    if config.conditional:
        labels = Labels.of_splits(
            datasets.conditions, (train,), None if validation is None else (validation,), (test,)
        )
    return Splits(train, validation, test, test.labels, labels)


@contextlib.contextmanager
def dtype_policy(mixed_precision):
    """mixed_float16 on GPU, mixed_bfloat16 on CPU, for the duration of the block."""
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_model(config, strategy, image_shape, train_size=None, labels=None):
    """The configured VAE, compiled with `FusedAdam`, built under `strategy`'s scope.

    A `keras_vae.ConditionalVAE` of the `labels` (`Labels`) when the config
    is `conditional`.

    With `train_size` (training images) it runs up to the config's
    `steps_per_execution` steps per call, a divisor of the steps per epoch;
    in multi-worker training one (Keras 3.15's multi-step loop fails there:
    "You must feed a value for placeholder tensor 'while/body/...'").
    """
    execution = 1
    if train_size and not distribute.is_multi_worker(strategy):
        execution = pipeline.execution_steps(
            pipeline.steps_per_epoch(train_size, config.batch_size), config.steps_per_execution
        )
    with strategy.scope():
        if config.conditional:
            model = ConditionalVAE(**labels.model_kwargs(), **config.model_kwargs(image_shape))
        else:
            model = VAE(**config.model_kwargs(image_shape))
        model.compile(optimizer=FusedAdam(config.learning_rate), steps_per_execution=execution)
    return model


def start_pseudo_inputs(model, train_images, seed, strategy):
    """Starts a VampPrior's pseudo-inputs at random training images (seeded).

    In a cluster they keep their random start: each worker holds another
    shard of the files, and the pseudo-inputs must start equal everywhere.
    """
    if model.learned_prior != priors.VAMP or distribute.is_multi_worker(strategy):
        return
    count = len(train_images)
    positions = np.random.default_rng(seed).choice(
        count, model.pseudo_inputs, replace=count < model.pseudo_inputs
    )
    model.initialize_pseudo_inputs(train_images[np.sort(positions)])


def log_config(log_dir, config):
    """Writes the config as a TensorBoard text summary under `log_dir/config`."""
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "config"))
    with writer.as_default():
        tf.summary.text("config", "```\n" + config.to_json() + "\n```", step=0)
    writer.close()


def class_names(config, images):
    """The names of the labels of `images` (None where they have none)."""
    if isinstance(images, folder.FolderImages):
        return images.folder.class_names or None
    return datasets.CLASS_NAMES.get(config.dataset)


def build_callbacks(
    config, out_dir, test_images, test_labels, monitor, batch_size, test_conditions=None
):
    """The callbacks of `fit`, in the order they must run.

    At each epoch's end the scalars are flushed, then the best model is
    saved, then the backup that a restart resumes from; when `fit` ends, the
    record that training finished is written before BackupAndRestore deletes
    the backup; the restart marker reads the restored backup at the start, so
    it comes after BackupAndRestore.

    `test_conditions` are a conditional VAE's label vectors of `test_images`.
    """
    log_dir = os.path.join(out_dir, run_dir.LOGS_DIR)
    backup_dir = os.path.join(out_dir, run_dir.BACKUP_DIR)
    timer = EpochTimer()
    return [
        KLWarmup(config.kl_warmup_epochs),
        StopOnDivergence(),
        timer,
        LatentImages(
            log_dir,
            test_images[:TENSORBOARD_IMAGES],
            None if test_labels is None else test_labels[:TENSORBOARD_IMAGES],
            label_names=class_names(config, test_images),
            seed=config.seed,
            conditions=None if test_conditions is None else test_conditions[:TENSORBOARD_IMAGES],
        ),
        FlushingTensorBoard(log_dir=log_dir),
        BestModelCheckpoint(
            os.path.join(out_dir, run_dir.MODEL_FILE),
            monitor=monitor,
            state_path=os.path.join(backup_dir, "best.json"),
        ),
        TrainingComplete(
            os.path.join(out_dir, run_dir.TRAINING_FILE),
            os.path.join(out_dir, run_dir.MODEL_FILE),
            timer,
            batch_size,
        ),
        AtomicBackupAndRestore(backup_dir),
        TensorBoardRestart(log_dir),
    ]


def fit(config, model, splits, out_dir, verbose):
    """Fits `model` on the training split, writing into `out_dir`.

    Returns:
        dict: what `TrainingComplete` recorded in `training.json`.
    """
    train_images, validation_images, test_images, test_labels, labels = splits
    strategy = model.distribute_strategy
    if distribute.worker_shard(strategy) and isinstance(train_images, folder.FolderImages):
        batch_size = config.batch_size
        data = sharded_fit_arguments(
            strategy, train_images, validation_images, batch_size, config.seed, labels
        )
    else:
        batch_size = min(config.batch_size, len(train_images))
        data = pipeline.fit_arguments(
            train_images,
            validation_images,
            batch_size=batch_size,
            seed=config.seed,
            likelihood=config.likelihood,
            labels=None if labels is None else labels.train,
            validation_labels=None if labels is None else labels.validation,
        )
    log_config(os.path.join(out_dir, run_dir.LOGS_DIR), config)
    monitor = "val_loss" if validation_images is not None else "loss"
    callbacks = build_callbacks(
        config,
        out_dir,
        test_images,
        test_labels,
        monitor,
        batch_size,
        None if labels is None else labels.test,
    )
    model.fit(epochs=config.epochs, callbacks=callbacks, verbose=verbose, **data)
    diverged = next(c for c in callbacks if isinstance(c, StopOnDivergence)).diverged
    training_path = os.path.join(out_dir, run_dir.TRAINING_FILE)
    if diverged:
        where = (
            f"the training loss became {diverged['loss']} in epoch {diverged['epoch']} "
            f"(step {diverged['step']})"
        )
        if not os.path.exists(training_path):
            raise TrainingDiverged(
                f"{where}, before any checkpoint was saved: training diverged. Lower "
                f"--learning-rate (it is {config.learning_rate:g}) or --beta (it is "
                f"{config.beta:g}) and run again."
            )
        print(f"{where}: training stopped there, on the best checkpoint.", file=sys.stderr)
    return read_json(training_path)


def sharded_fit_arguments(strategy, train_images, validation_images, batch_size, seed, labels=None):
    """`fit`'s data in a cluster whose workers each hold their own shard of the files.

    Each worker's pipeline reads only its shard (`train_images`), in batches
    of its replicas' share of the global `batch_size`; an epoch is as many
    steps as the smallest shard fills, so every worker takes the same steps.
    The validation images are whole on every worker (the strategy splits
    their batches). A conditional run's `Labels` go with the images.
    """
    workers, _ = distribute.worker_shard(strategy)
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"--batch-size {batch_size} must be a multiple of the cluster's {replicas} "
            f"replicas (each replica takes an equal part); try "
            f"{batch_size // replicas * replicas or replicas}."
        )
    worker_batch = batch_size // workers
    steps = distribute.smallest(strategy, len(train_images) // worker_batch)
    if steps < 1:
        raise ValueError(
            f"A worker's shard holds {len(train_images)} pictures, fewer than its "
            f"{worker_batch} of each --batch-size {batch_size} batch: lower --batch-size."
        )

    def worker_dataset(context):
        return pipeline.make_dataset(
            train_images,
            None if labels is None else labels.train,
            batch_size=context.get_per_replica_batch_size(batch_size),
            shuffle=True,
            seed=seed,
            repeat=True,
            drop_remainder=True,
        )

    data = {
        "x": strategy.distribute_datasets_from_function(worker_dataset),
        "steps_per_epoch": steps,
        "shuffle": False,
    }
    if validation_images is not None:
        data["validation_data"] = pipeline.make_dataset(
            validation_images, None if labels is None else labels.validation, batch_size=batch_size
        )
    return data


def finished_training(directory):
    """What training.json records if `directory`'s training has finished, else None.

    A run dir written without a training.json has finished when it holds a
    model.keras and a metrics.json and no backup: its training facts are then
    in metrics.json, and training.json is written from them.
    """
    training_path = os.path.join(directory, run_dir.TRAINING_FILE)
    if os.path.exists(training_path):
        return read_json(training_path)
    metrics_path = os.path.join(directory, run_dir.METRICS_FILE)
    if not (
        os.path.exists(metrics_path)
        and os.path.exists(os.path.join(directory, run_dir.MODEL_FILE))
        and not os.path.exists(os.path.join(directory, run_dir.BACKUP_DIR))
    ):
        return None
    metrics = read_json(metrics_path)
    facts = {name: metrics[name] for name in TRAINING_FACTS if name in metrics}
    atomic_write_json(training_path, facts)
    return facts


def read_json(path):
    with open(path) as f:
        return json.load(f)


def evaluate(model, images, batch_size, labels=None):
    """Test metrics in nats per image, with `negative_elbo` = reconstruction + KL.

    A conditional VAE is evaluated on the images with their label vectors `labels`.
    """
    results = model.evaluate(
        pipeline.make_dataset(
            images,
            labels,
            batch_size=batch_size,
            likelihood=getattr(model, "likelihood", "bernoulli"),
            name="test images",
        ),
        return_dict=True,
        verbose=0,
    )
    metrics = {name: float(value) for name, value in results.items()}
    metrics["negative_elbo"] = metrics["reconstruction_loss"] + metrics["kl_loss"]
    return metrics


def write_samples(model, path, seed, prior=None, rows=8, cols=8):
    """Writes a rows x cols grid of images decoded from z of `prior` (default: the model's).

    For a conditional VAE, the grid is `rows` codes, each decoded with every
    label (`generation.Codec.every_label`): one column per class, for the
    first `export.MAX_PREVIEW_LABELS` labels, as the export's preview.
    """
    if getattr(model, "label_dim", 0):
        z = model.get_prior(prior).sample(rows, seed=seed)
        labels = model.each_label()[: export.MAX_PREVIEW_LABELS]
        grid = generation.Codec(model).every_label(z, labels)
        image_io.save_png(
            path, image_io.grid(grid.reshape(-1, *model.image_shape), *grid.shape[:2])
        )
        return
    samples = keras.ops.convert_to_numpy(model.sample(rows * cols, seed=seed, prior=prior))
    image_io.save_png(path, image_io.grid(samples, rows, cols))


def fit_run_priors(model, config, splits, directory, seed=None, codec=None):
    """Fits the config's prior to the training codes, saved in the run dir `directory`.

    The prior goes into `directory`'s model.keras, and what it records goes
    into its metrics.json (when there is one) as `"prior"`: this function is
    the one writer of that entry (train.py and `keras-vae fit-prior` call it).
    The validation split's codes choose the mixture's size (without one, a
    held-out tenth of the training codes does).

    Args:
        seed: of the code draws and the fits (default: the config's).

    Returns:
        The entry: the default prior, each prior's fit facts, and the mean
        log-likelihood of the test images' codes under each prior (nats per image).
    """
    start = time.perf_counter()
    train_images, validation_images, test_images, _, labels = splits
    codec = codec or generation.Codec(model)
    default = model.prior.kind
    fitted = generation.fit_priors(
        model,
        train_images,
        validation_images,
        kind=config.prior,
        components=config.prior_components,
        codes=config.prior_codes,
        seed=config.seed if seed is None else seed,
        codec=codec,
        labels=None if labels is None else labels.train,
        validation_labels=None if labels is None else labels.validation,
    )
    if fitted or model.prior.kind != default:  # a rerun may make N(0, I) the default
        atomic_write(os.path.join(directory, run_dir.MODEL_FILE), model.save, suffix=".keras")
    test_labels = None if labels is None else labels.test
    facts = prior_facts(model, codec.encode(test_images, test_labels), test_labels)
    facts["seconds"] = round(time.perf_counter() - start, 3)  # encoding, fits and the save
    metrics_path = os.path.join(directory, run_dir.METRICS_FILE)
    if os.path.exists(metrics_path):
        atomic_write_json(metrics_path, {**read_json(metrics_path), "prior": facts})
    return facts


def check_prior_settings(config, splits, latent_dim):
    """Raises ValueError if the config's prior cannot be fitted to the training codes.

    Checked before training, so that a prior the run's data is too small for
    is refused before hours of `fit`; the prior settings may change on a
    rerun (`run_dir.RERUN_FIELDS`), which then fits without training again.
    """
    if config.prior in (priors.STANDARD, priors.VAMP):
        return
    train_size, has_validation = len(splits.train), splits.validation is not None
    of_what = ""
    if splits.labels is not None and splits.labels.label_type == "class":
        # A prior is fitted to each class's codes alone: the smallest class decides.
        counts = splits.labels.train.sum(axis=0)
        smallest = int(counts.argmin())
        train_size = int(counts[smallest])
        of_what = f" of its smallest class, {splits.labels.names[smallest]!r},"
    needed = priors.codes_needed(1, latent_dim)
    # fit_gmm holds out a tenth of the codes when there is no validation split.
    mixture_codes = min(
        train_size if has_validation else train_size - max(1, train_size // 10),
        priors.MAX_FIT_CODES,
    )
    if config.prior == priors.GMM and config.prior_components:
        needed = priors.codes_needed(config.prior_components, latent_dim)
        largest = mixture_codes // (latent_dim + 1)
        if mixture_codes < needed:
            raise ValueError(
                f"--prior-components {config.prior_components} needs {needed} training codes "
                f"in {latent_dim} dimensions, and the run has {mixture_codes}{of_what} "
                "to fit it to: "
                + (
                    f"pass --prior-components {largest} or fewer, "
                    if largest
                    else "use more training images, "
                )
                + "or --prior standard."
            )
    available = mixture_codes if config.prior == priors.GMM else train_size
    if available < needed:
        raise ValueError(
            f"--prior {config.prior} needs at least {needed} training codes in {latent_dim} "
            f"dimensions, and the run has {available}{of_what}: use more training images, "
            "a smaller --latent-dim, or --prior standard."
        )


def prior_facts(model, test_codes, test_labels=None):
    """metrics.json's "prior" entry: the default, fit facts, test codes' log-likelihoods.

    A prior fitted per class scores each code under its own label's
    (`test_labels`, a conditional run's label vectors): log p(z | y).
    """

    def log_likelihood(prior):
        return float(prior.log_prob(test_codes, test_labels).mean())

    return {
        "default": model.prior.kind,
        "components": model.prior.components,
        "fits": {kind: prior.info for kind, prior in model.priors.items() if prior.info},
        "test_log_likelihood": {
            kind: log_likelihood(prior) for kind, prior in model.priors.items()
        },
    }


def attribute_directions(model, config, test_images, test_labels, limit=TENSORBOARD_IMAGES * 5):
    """The attribute vectors of the test codes, by name: the explorer's named sliders.

    Each is mean(code | attribute) - mean(code | not) over the first `limit`
    test images: the classes of the IDX datasets ("Trouser"), a folder's
    class sub-folders and attributes.csv columns, CelebA's 40 attributes.
    Attributes that every image (or none) has are left out.

    Returns:
        `{"names", "vectors", "counts", "source"}`, or None without attributes.
    """
    streamed = isinstance(test_images, folder.FolderImages)
    images = test_images.subset(limit) if streamed else test_images[:limit]  # read in chunks
    if streamed:
        attributes, attribute_names = (
            test_images.attributes[:limit],
            test_images.folder.attribute_names,
        )
    elif test_labels is not None and config.dataset in datasets.CLASS_NAMES:
        attribute_names = datasets.CLASS_NAMES[config.dataset]
        attributes = datasets.class_attributes(test_labels[:limit], len(attribute_names))
    else:
        return None
    counts = attributes.sum(axis=0)
    kept = [k for k, count in enumerate(counts) if 0 < count < len(attributes)]
    if not kept:
        return None
    codes = generation.Codec(model).encode(images)
    return {
        "names": [attribute_names[k] for k in kept],
        "vectors": [generation.attribute_vector(codes, attributes[:, k]).tolist() for k in kept],
        "counts": [int(counts[k]) for k in kept],
        "source": f"mean(code | attribute) - mean(code | not) over {len(attributes)} test images",
    }


def write_run_artifacts(model, directory, config, test_images, test_labels=None, labels=None):
    """The pictures and the exported generator of a trained `model` in the run dir.

    A conditional VAE (`labels`: the run's `Labels`) reconstructs the test
    images with their labels; its samples show every label per code, and its
    export takes a label beside z (it has no attribute sliders: the label is
    its control).
    """
    write_samples(model, os.path.join(directory, run_dir.SAMPLES_PNG), seed=config.seed)
    write_samples(
        model,
        os.path.join(directory, run_dir.STANDARD_SAMPLES_PNG),
        seed=config.seed,
        prior="standard",
    )
    cols = min(8, len(test_images))  # two rows of 8, or one row of every test image
    inputs = test_images[: 16 // cols * cols]
    if labels is not None:
        outputs = keras.ops.convert_to_numpy(model((inputs, labels.test[: len(inputs)])))
    else:
        outputs = keras.ops.convert_to_numpy(model(inputs, training=False))
    image_io.save_png(
        os.path.join(directory, run_dir.RECONSTRUCTIONS_PNG),
        image_io.reconstruction_grid(inputs, outputs, cols=cols),
    )
    directions = None
    if labels is None:
        directions = attribute_directions(model, config, test_images, test_labels)
    if directions is not None:
        atomic_write_json(os.path.join(directory, run_dir.ATTRIBUTES_FILE), directions)
    export_dir = os.path.join(directory, run_dir.EXPORT_DIR)
    export.export_generator(
        model,
        export_dir,
        overwrite=True,
        training_config=config.to_dict(),
        variants=config.export_variants,
        static_batch_sizes=config.export_static_batch_sizes,
        attribute_directions=directions,
    )
    export.render_preview(
        export_dir, os.path.join(directory, run_dir.PREVIEW_PNG), seed=config.seed
    )


def train_and_evaluate(config, directory, verbose="auto"):
    """Trains a VAE as `config` says and writes every artifact into `directory`.

    Running the same call again on an interrupted run resumes it: training
    goes on from the last finished epoch (Keras's BackupAndRestore), and a
    run whose training had finished (`training.json`) is not trained again;
    the evaluation, pictures and export are redone. The run dir is locked
    first: a run dir that another process is writing (`run_dir.RunDirInUse`)
    or one holding another config is refused before anything else is done.
    In a cluster the chief takes these decisions for every worker.

    Args:
        config: a `keras_vae.training.config.TrainingConfig`.
        directory: the run dir, created if missing.
        verbose: passed to `fit`.

    Returns:
        dict of test metrics in nats per image: `loss`, `reconstruction_loss`,
        `kl_loss`, `negative_elbo` (= reconstruction_loss + kl_loss), plus
        `train_seconds`, `train_images_per_second` (median epoch),
        `optimizer_iterations` and `epochs`, as `training.json` recorded them,
        and `prior`, the fitted priors (`fit_run_priors`).
        Empty on the non-chief workers of a cluster.
    """
    config.validate()
    run_dir.check_outside_data(directory, config)  # before the run dir is made
    # First: a multi-worker strategy must configure collectives before any op runs.
    strategy = distribute.make_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    out_dir = distribute.worker_dir(directory, strategy)
    with contextlib.ExitStack() as stack:
        # Every worker learns whether any of them cannot go on, before any of them
        # waits for the others' collectives.
        refusal = None
        try:
            stack.enter_context(run_dir.lock(out_dir))
            if chief:
                run_dir.check_config(directory, config)
        except (ValueError, OSError) as error:
            refusal = error
        if distribute.any_worker_says(strategy, refusal is not None):
            raise refusal or ValueError(
                f"Another worker refused the run dir {directory}; its error says why."
            )
        # The chief's run dir says whether training has finished, for every worker.
        finished = finished_training(directory) if chief else None
        done = distribute.chief_says(strategy, finished is not None)
        keras.utils.set_random_seed(config.seed)
        shard = distribute.worker_shard(strategy)
        # A worker's cache (of its own files) goes where it writes: the chief's, in the run dir.
        splits = load_splits(config, os.path.join(out_dir, run_dir.CACHE_DIR), shard)
        if shard and isinstance(splits.train, folder.FolderImages):
            print(
                f"Worker {shard[1] + 1} of {shard[0]} reads its shard of the files: "
                f"{len(splits.train)} training pictures."
            )
        if not done:
            with dtype_policy(config.mixed_precision):
                model = build_model(
                    config, strategy, splits.train.shape[1:], len(splits.train), splits.labels
                )
                start_pseudo_inputs(model, splits.train, config.seed, strategy)
            check_prior_settings(config, splits, model.latent_dim)
        if chief:
            atomic_write_json(os.path.join(directory, run_dir.CONFIG_FILE), config.to_dict())
        if done:
            facts = finished if chief else {}
            shutil.rmtree(os.path.join(out_dir, run_dir.BACKUP_DIR), ignore_errors=True)
        else:
            with dtype_policy(config.mixed_precision):
                facts = fit(config, model, splits, out_dir, verbose)
        if not chief:
            shutil.rmtree(out_dir, ignore_errors=True)
            return {}

        # Evaluated outside the strategy: one local model, no collectives.
        best, _ = run_dir.load_model(directory)
        test_images = splits.test
        test_conditions = None if splits.labels is None else splits.labels.test
        metrics = {**evaluate(best, test_images, config.batch_size, test_conditions), **facts}
        atomic_write_json(os.path.join(directory, run_dir.METRICS_FILE), metrics)
        check_prior_settings(config, splits, best.latent_dim)
        metrics["prior"] = fit_run_priors(best, config, splits, directory)
        write_run_artifacts(best, directory, config, test_images, splits.test_labels, splits.labels)
    return metrics
