"""What each `keras-vae` command does; the parser is `keras_vae.cli.parser`.

TensorFlow loads only when a command runs: the modules that need it (latent,
export, run_dir, training) are imported inside the commands.
"""

import contextlib
import dataclasses
import os
import sys

import numpy as np

from keras_vae import datasets
from keras_vae.utils import images as image_io
from keras_vae.utils import names
from keras_vae.utils.atomic_files import atomic_write


def web(args):
    from keras_vae.export import explorer

    if args.export:
        export_dir = args.export
        out = args.out or os.path.join(os.path.dirname(os.path.abspath(export_dir)), "web")
    else:
        run = args.run_dir or explorer.latest_run()
        if not os.path.exists(run):
            raise FileNotFoundError(f"Run dir not found: {run} (--run-dir; or --export DIR).")
        if not os.path.isdir(run):
            raise NotADirectoryError(f"--run-dir {run} is a file; give the run's directory.")
        export_dir = os.path.join(run, "export")
        out = args.out or os.path.join(run, "web")
    # Bind first: a port in use fails before the page (maybe being served) is rebuilt.
    server = None if args.no_serve else explorer.make_server(host=args.host, port=args.port)
    try:
        site = explorer.build_site(export_dir, out, node_modules=args.node_modules)
        print(f"Latent explorer page: {site}", flush=True)
        if server is not None:
            server.publish(site)
            explorer.serve(server)
    finally:
        if server is not None:
            server.server_close()
    return site


class Session:
    """The loaded model, its compiled codec and the dataset the command reads."""

    def __init__(self, args):
        from keras_vae import generation
        from keras_vae.training import run_dir

        self.args = args
        # generate reads no dataset: a damaged config.json does not stop it.
        self.model, self.config = run_dir.load_model(args.model, config=args.command != "generate")
        self.codec = generation.Codec(self.model)
        config = self.config or {}
        # A bare .keras file does not say what it was trained on: --dataset must.
        self.dataset = getattr(args, "dataset", None) or config.get("dataset")
        self.data_dir = getattr(args, "data_dir", None) or (
            config.get("data_dir") if self.dataset == config.get("dataset") else None
        )
        self._data = None

    def data(self):
        """`(images, attributes, attribute_names)` of the chosen dataset split, loaded once."""
        if self._data is None:
            if self.dataset is None:
                where = (
                    "a run dir without a config.json"
                    if os.path.isdir(self.args.model)
                    else "a .keras file without a run dir's config.json"
                )
                raise ValueError(
                    f"{self.args.model} is {where}, so the dataset it was trained on is "
                    f"unknown: pass --dataset ({', '.join(names.ATTRIBUTE_DATASETS)})."
                )
            config = self.config or {}
            self._data = datasets.load_attributes(
                self.dataset,
                self.args.split,
                self.data_dir,
                self.args.limit,
                image_shape=self.model.image_shape,
                seed=config.get("seed", 0),
                background=config.get("background", "white"),
            )
            shape = self._data[0].shape[1:]
            if tuple(shape) != tuple(self.model.image_shape):
                raise ValueError(
                    f"{self.dataset} images are {tuple(shape)} but the model takes "
                    f"{tuple(self.model.image_shape)}; pick the dataset it was trained on."
                )
        return self._data

    def attribute(self, name):
        """Column `[N]` (bool) of attribute `name` and its canonical name."""
        _, attributes, attribute_names = self.data()
        index = datasets.attribute_index(attribute_names, name)
        return attributes[:, index], attribute_names[index]

    def inputs(self):
        """The images named by --indices or --images, and a label for each."""
        if self.args.images:
            images = image_io.load_images(
                self.args.images,
                self.model.image_shape,
                background=self.args.background,
                invert=self.args.invert,
            )
            return images, [os.path.basename(path) for path in self.args.images]
        images, attributes, attribute_names = self.data()
        for index in self.args.indices:
            if not 0 <= index < len(images):
                raise ValueError(
                    f"Index {index} is out of range: {self.dataset} {self.args.split} "
                    f"has {len(images)} images."
                )
        labels = [_describe(attributes[i], attribute_names, i) for i in self.args.indices]
        return images[self.args.indices], labels

    def label_vectors(self, indices):
        """A conditional VAE's label vectors `[n, label_dim]` of the dataset images at `indices`."""
        _, attributes, attribute_names = self.data()
        columns = [
            datasets.attribute_index(attribute_names, name) for name in self.model.label_names
        ]
        return attributes[np.asarray(indices)][:, columns].astype(np.float32)

    def attribute_vector(self, name):
        from keras_vae import generation

        has_attribute, name = self.attribute(name)
        codes = self.codec.encode(self.data()[0])
        return generation.attribute_vector(codes, has_attribute), name, int(has_attribute.sum())


def _describe(attributes, attribute_names, index):
    """'#12 Trouser' for a one-class dataset row; '#12' when it has several attributes."""
    present = [name for name, has in zip(attribute_names, attributes, strict=True) if has]
    return f"#{index} {present[0]}" if len(present) == 1 else f"#{index}"


def _save_grid(path, images, rows, cols, **labels):
    """A grid of `images`, small ones upscaled (image_io.tile_scale), with optional labels."""
    scale = image_io.tile_scale(images.shape[1:])
    image_io.save_png(
        path, image_io.labelled_grid(images, rows, cols, scale=scale, padding=1, **labels)
    )
    return path


def _check_grid(session, rows, cols, what):
    """Refuses a grid over image_io.MAX_GRID_PIXELS before any code is drawn or decoded."""
    shape = session.model.image_shape
    try:
        image_io.grid_size(rows, cols, shape, image_io.tile_scale(shape))
    except ValueError as error:
        raise ValueError(f"{error}: pass {what}.") from None


def _read_vector(path, latent_dim):
    """The attribute vector saved in the .npy file `path`: float32 `[latent_dim]`, finite.

    The header is read first: a file that is not a .npy array, holds another
    shape or a non-numeric dtype is refused before its data is read.
    """
    what = f"--vector {path}"
    header_readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version not in header_readers:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = header_readers[version](f)
        except ValueError as error:
            raise ValueError(
                f"{what} is not a .npy file written by `keras-vae attribute` ({error})."
            ) from None
        if shape != (latent_dim,) or dtype.kind not in "fiu":
            raise ValueError(
                f"{what} holds a {dtype} array of shape {shape}; this model needs {latent_dim} "
                "numbers: write the vector with `keras-vae attribute` of this model."
            )
        f.seek(0)
        try:
            vector = np.load(f, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{what} is truncated or corrupted ({error}).") from None
    if not np.all(np.isfinite(vector)):
        raise ValueError(
            f"{what} holds NaN or infinite values: write it again with `keras-vae attribute`."
        )
    return vector.astype(np.float32)


def _generate(session):
    args = session.args
    model = session.model
    labels = _requested_labels(model, args)
    if args.every_label:
        each = model.each_label()
        _check_grid(session, args.n, len(each), "a smaller --n")
        z = model.get_prior(args.prior).sample(args.n, seed=args.seed)
        images = session.codec.every_label(z, each)
        return _save_grid(
            args.out,
            images.reshape(-1, *model.image_shape),
            args.n,
            len(each),
            col_labels=list(model.label_names),
        )
    rows = -(-args.n // args.cols)
    _check_grid(session, rows, args.cols, "a smaller --n or --cols")
    labels = None if labels is None else np.repeat(labels, args.n, 0)
    # A prior fitted per class draws each z from the codes of the asked class.
    z = model.get_prior(args.prior).sample(args.n, seed=args.seed, labels=labels)
    images = session.codec.decode(z, labels)
    return _save_grid(args.out, image_io.padded(images, rows * args.cols), rows, args.cols)


def _requested_labels(model, args):
    """The label vector `[1, label_dim]` that --label or --attribute asks for, else None.

    A conditional VAE must be asked for a label (or --every-label), and an
    unconditional one must not be.
    """
    asked = args.label is not None or args.attribute or args.every_label
    flag = "--every-label" if args.every_label else "--attribute" if args.attribute else "--label"
    if not getattr(model, "label_dim", 0):
        if asked:
            raise ValueError(
                f"{args.model} is an unconditional VAE: it draws no given label, so drop "
                f"{flag} (train one with keras-vae train --conditional)."
            )
        return None
    if not asked:
        flags = "--label NAME" if model.label_type == "class" else "--attribute NAME=1"
        raise ValueError(
            f"{args.model} is a conditional VAE: say what to draw with {flags} or "
            f"--every-label ({model.describe_labels()})."
        )
    if args.every_label:
        return None
    if args.label is not None:
        if model.label_type != "class":
            raise ValueError(
                f"{args.model} draws attributes, not classes: ask with --attribute NAME=1 "
                f"({model.describe_labels()})."
            )
        return model.label_vectors(args.label)
    values = {}
    for setting in args.attribute:
        name, equals, value = setting.partition("=")
        try:
            values[name] = float(value) if equals else 1.0
        except ValueError:
            raise ValueError(
                f"--attribute {setting}: give NAME=VALUE with a number (Smiling=1)."
            ) from None
    return model.label_vectors(values)


def _interpolate(session):
    from keras_vae import generation

    args = session.args
    count = len(args.indices or args.images)
    if count % 2:
        raise ValueError(f"Give pairs of endpoints: got {count} images or indices.")
    if args.steps < 2:
        raise ValueError(f"--steps must be >= 2 (both endpoints count); got {args.steps}.")
    _check_grid(session, count // 2, args.steps + 2, "a smaller --steps or fewer pairs")
    conditional = getattr(session.model, "label_dim", 0)
    if conditional and args.images:
        raise ValueError(
            f"{args.model} is a conditional VAE: interpolate dataset images with "
            "--indices, whose labels it knows (files carry none)."
        )
    images, labels = session.inputs()
    conditions = path_conditions = None
    if conditional:
        # Each end is encoded with its own label, and the label moves along the
        # path with the code: a 1 morphs into a 7.
        conditions = session.label_vectors(args.indices)
        path_conditions = generation.interpolate(
            conditions[0::2], conditions[1::2], args.steps, "lerp"
        )
    codes = session.codec.encode(images, conditions)
    path_codes = generation.interpolate(codes[0::2], codes[1::2], args.steps, args.method)
    paths = session.codec.decode(path_codes, path_conditions)
    rows = np.concatenate([images[0::2, None], paths, images[1::2, None]], axis=1)
    fractions = [f"{t:.2g}" for t in np.linspace(0, 1, args.steps)]
    return _save_grid(
        args.out,
        rows.reshape(-1, *images.shape[1:]),
        len(paths),
        args.steps + 2,
        row_labels=[f"{a} -> {b}" for a, b in zip(labels[0::2], labels[1::2], strict=True)],
        col_labels=["input", *fractions, "input"],
    )


def _npy_name(attribute):
    """The default file of an attribute's vector: `Ankle boot` -> `ankle_boot.npy`."""
    return f"{attribute.lower().replace('/', '_').replace(' ', '_')}.npy"


def _attribute(session):
    args = session.args
    if args.out and (args.out.endswith(os.sep) or os.path.isdir(args.out)):  # before encoding
        example = os.path.join(args.out, _npy_name(args.attribute))
        raise ValueError(f"--out {args.out} is a directory; give a file name such as {example}.")
    vector, name, count = session.attribute_vector(args.attribute)
    out = args.out or _npy_name(name)
    if not out.endswith(".npy"):
        out += ".npy"  # what np.save would write anyway: print the real name
    atomic_write(out, lambda tmp_path: np.save(tmp_path, vector), suffix=".npy")
    total = len(session.data()[0])
    print(
        f"{name}: {count} of {total} images have it; vector norm {np.linalg.norm(vector):.3f}",
        file=sys.stderr,
    )
    return out


def _edit(session):
    from keras_vae import generation

    args = session.args
    inputs = len(args.indices or args.images)
    _check_grid(session, inputs, len(args.alphas) + 1, "fewer inputs or --alphas")
    if args.vector:
        vector = _read_vector(args.vector, session.model.latent_dim)
    else:
        vector = session.attribute_vector(args.attribute)[0]
    images, labels = session.inputs()
    edited = session.codec.decode(
        generation.edit(session.codec.encode(images), vector, args.alphas)
    )
    rows = np.concatenate([images[:, None], edited], axis=1)
    return _save_grid(
        args.out,
        rows.reshape(-1, *images.shape[1:]),
        len(images),
        len(args.alphas) + 1,
        row_labels=labels,
        col_labels=["input", *(f"a={alpha:g}" for alpha in args.alphas)],
    )


def _average(session):
    from keras_vae import generation

    args = session.args
    images, _, attribute_names = session.data()
    codes = session.codec.encode(images)
    columns, averages = [], []
    for requested in args.attribute or attribute_names:
        has_attribute, name = session.attribute(requested)
        for group, verb in ((has_attribute, "has"), (~has_attribute, "lacks")):
            if not group.any():
                raise ValueError(f"No image {verb} {name}: its average is undefined.")
        columns.append(name)
        averages.append(
            [
                generation.average_code(codes[has_attribute]),
                generation.average_code(codes[~has_attribute]),
            ]
        )
    decoded = session.codec.decode(np.swapaxes(np.array(averages), 0, 1))  # [2, cols, H, W, C]
    return _save_grid(
        args.out,
        decoded.reshape(-1, *images.shape[1:]),
        2,
        len(columns),
        row_labels=["with", "without"],
        col_labels=columns,
    )


def _export_files(args):
    """`(variants, static batch sizes)`: the flags', else the run dir's own, else all.

    Given a run dir, an export writes the files train.py wrote into it
    (`--export-variants`, `--export-static-batch-sizes` in its config.json).
    """
    from keras_vae.training import run_dir

    settings = (run_dir.read_config(args.model) or {}) if os.path.isdir(args.model) else {}
    variants = getattr(args, "variants", None) or settings.get("export_variants")
    variants = variants or names.TFLITE_VARIANTS
    sizes = getattr(args, "static_batch_sizes", None)
    if sizes is None:
        sizes = settings.get("export_static_batch_sizes", names.STATIC_BATCH_SIZES)
    return list(variants), list(sizes)


def _export(args):
    from keras_vae.export import generator as export
    from keras_vae.training import run_dir

    args.variants, args.static_batch_sizes = _export_files(args)
    if args.preview and "float32" not in args.variants:
        raise ValueError("--preview is drawn by the float32 .tflite: add float32 to --variants.")
    export.check_static_batch_sizes(args.static_batch_sizes)  # before loading anything
    out = args.out or default_export_dir(args.model)
    run = run_dir.of_model(args.model)  # a run dir, or the one a .keras file sits in
    inside_run_dir = run is not None and os.path.realpath(out).startswith(
        os.path.join(os.path.realpath(run), "")
    )
    # Into a run dir: not while train.py, fit-prior or another export is writing it.
    with (
        run_dir.lock(run, alternative="pass --out outside it")
        if inside_run_dir
        else contextlib.nullcontext()
    ):
        return _write_export(args, out)


def _write_export(args, out):
    from keras_vae.export import generator as export
    from keras_vae.training import run_dir

    model, training_config = run_dir.load_model(args.model)
    metadata = export.export_generator(
        model,
        out,
        overwrite=args.overwrite,
        training_config=training_config,
        variants=args.variants,
        prior=args.prior,
        static_batch_sizes=args.static_batch_sizes,
        attribute_directions=run_dir.read_attribute_directions(run_dir.of_model(args.model)),
    )
    if args.preview:
        export.render_preview(out, args.preview)
    for name, facts in metadata["artifacts"].items():
        print(
            f"{name:12s} {facts['path']:32s} {facts['size_bytes']:>10,d} bytes  "
            f"max abs error {facts['max_abs_error']:.2e}"
        )
    return out


def _fit_prior(args):
    from keras_vae.training import run_dir

    if args.components is not None and args.components < 1:
        raise ValueError(f"--components must be >= 1; got {args.components}.")
    is_run_dir = os.path.isfile(os.path.join(args.model, run_dir.MODEL_FILE))
    # A run dir: not while train.py, an export or another fit-prior is writing it.
    with run_dir.lock(args.model, alternative=None) if is_run_dir else contextlib.nullcontext():
        return _write_prior(args, is_run_dir)


def _write_prior(args, is_run_dir):
    from keras_vae.training import run_dir

    session = Session(args)
    model = session.model
    earlier = dict(model.priors)
    if is_run_dir and session.config and not (args.dataset or args.data_dir or args.limit):
        _refit_run(session, args)
        path = os.path.join(args.model, run_dir.MODEL_FILE)
    else:
        if getattr(model, "label_dim", 0):
            raise ValueError(_conditional_needs_its_run(args))
        _fit_to_data(session, args)
        path = os.path.join(args.model, run_dir.MODEL_FILE) if is_run_dir else args.model
        atomic_write(path, model.save, suffix=".keras")
    for kind, prior in model.priors.items():
        if prior.info and prior is not earlier.get(kind):  # fitted by this command
            print(
                f"{kind}: {prior.components} components, fitted to {prior.info['codes']} "
                f"codes in {prior.info['seconds']:.1f} s",
                file=sys.stderr,
            )
    print(
        f"default prior: {model.prior.kind}. Export again to ship it: keras-vae export "
        f"--model {args.model} --overwrite",
        file=sys.stderr,
    )
    return path


def _refit_run(session, args):
    """Refits the run dir's priors on its own splits, as train.py made them (metrics.json too)."""
    from keras_vae.training import train as training
    from keras_vae.training.config import TrainingConfig

    run_config = dataclasses.replace(
        TrainingConfig.from_dict(session.config),
        prior=args.prior,
        prior_components=args.components,
        prior_codes=args.codes,
    )
    splits = training.load_splits(run_config)
    held_out = 0 if splits.validation is None else len(splits.validation)
    print(
        f"fitting to the codes of the run's own {session.dataset} training split: "
        f"{len(splits.train)} images ({held_out} held out to choose the mixture)",
        file=sys.stderr,
    )
    training.fit_run_priors(
        session.model, run_config, splits, args.model, seed=args.seed, codec=session.codec
    )


def _conditional_needs_its_run(args):
    """The refusal of a conditional model given without its run dir, or with data flags."""
    asked = " and ".join(
        flag
        for flag, value in (
            ("--dataset", args.dataset),
            ("--data-dir", args.data_dir),
            ("--limit", args.limit),
        )
        if value
    )
    return (
        f"{args.model} is a conditional VAE: fit-prior refits it on its run dir's own "
        "training split, with the labels; "
        + (f"drop {asked}." if asked else "pass the run dir that train.py wrote.")
    )


def _fit_to_data(session, args):
    """Fits the priors to the codes of the dataset split the flags name."""
    from keras_vae import generation

    images = session.data()[0]
    print(
        f"fitting to the codes of {session.dataset} {args.split}: {len(images)} images",
        file=sys.stderr,
    )
    generation.fit_priors(
        session.model,
        images,
        kind=args.prior,
        components=args.components,
        codes=args.codes,
        seed=args.seed,
        codec=session.codec,
    )


def default_export_dir(model_path):
    """RUN/export for a run dir or its RUN/model.keras, NAME_export beside another .keras file."""
    from keras_vae.training import run_dir

    model_path = as_run_dir(model_path)
    if os.path.isdir(model_path):
        return os.path.join(model_path, run_dir.EXPORT_DIR)
    return os.path.splitext(model_path)[0] + "_export"


def as_run_dir(model_path):
    """RUN for --model RUN/model.keras: a run dir's model file is the run, config and lock too."""
    from keras_vae.training import run_dir

    directory = os.path.dirname(os.path.abspath(model_path))
    if os.path.basename(model_path) == run_dir.MODEL_FILE and run_dir.of_model(directory):
        return directory
    return model_path


def check_out(args):
    """PNG commands write PNG: a --out (or --preview) with another extension is refused first."""
    if args.command == "export" and args.preview:
        if not str(args.preview).lower().endswith(".png"):
            raise ValueError(
                f"--preview {args.preview}: the preview is a PNG image; name the file .png."
            )
    if args.command in LATENT_COMMANDS and args.command != "attribute":
        if not str(args.out).lower().endswith(".png"):
            raise ValueError(
                f"--out {args.out}: keras-vae {args.command} writes a PNG image; "
                "name the file .png."
            )


def _unconditional(command):
    """`command`, refusing a conditional VAE (its codes need each image's label)."""

    def run(session):
        if getattr(session.model, "label_dim", 0):
            raise ValueError(
                f"keras-vae {session.args.command} works on unconditional VAEs; "
                f"{session.args.model} is a conditional one: keras-vae generate --label or "
                "--every-label draws its classes, and interpolate --indices morphs its images."
            )
        return command(session)

    return run


LATENT_COMMANDS = {
    "generate": _generate,
    "interpolate": _interpolate,
    "attribute": _unconditional(_attribute),
    "edit": _unconditional(_edit),
    "average": _unconditional(_average),
}


def run(args):
    """Runs the parsed command `args` (any but web); returns the path it wrote.

    Raises:
        ValueError, OSError, keras_vae.export.generator.ExportError: what the command
            reports in one line.
    """
    check_out(args)
    args.model = as_run_dir(args.model)
    if args.command == "export":
        return _export(args)
    if args.command == "fit-prior":
        return _fit_prior(args)
    return LATENT_COMMANDS[args.command](Session(args))
