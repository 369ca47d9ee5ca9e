"""Decoder-only generator export: SavedModel + LiteRT (.tflite) + generator.json.

The export directory is self-contained; a server, phone or browser needs
neither this package nor Keras:

    saved_model/                  tf.saved_model.load(...).signatures["generate"]
    generator_float32.tflite      LiteRT, dynamic batch, float32 weights
    generator_float16.tflite      ... float16 weights (dequantized at load)
    generator_int8.tflite         ... dynamic-range int8 weights
    generator_float32_b16.tflite  LiteRT, static batch 16 (also _b1), float32
    generator_float16_b16.tflite  ... float16 weights
    generator_int8_b16.tflite     ... full-integer int8 (weights and activations)
    generator.json                shapes, dtypes, signatures, runtimes, sizes,
                                  parity errors, prior, principal directions

Dynamic files (the SavedModel and generator_{variant}.tflite), for the LiteRT
Interpreter API and TensorFlow:
    generate(z: float32 [batch, latent_dim])
        -> images: float32 [batch, H, W, C] in [0, 1]
           pixels: uint8   [batch, H, W, C] in [0, 255] (round(images * 255))
    sample(eps: float32 [n, latent_dim] ~ N(0, 1), u: float32 [n] ~ U[0, 1))
        -> images, pixels as above, z: float32 [n, latent_dim] of the model's
           prior, and component: int32 [n], the mixture component of each z
           (0 for N(0, I) and the Gaussian). A pure function of eps and u:
           the same inputs give the same images on every runtime.
    sample_random(count: int32 scalar)
        -> as `sample`, with eps and u drawn by the runtime's random ops, new
           ones in every process that loads the file.
`serving_default` is `generate` in the SavedModel.

Static files (generator_{variant}_b{batch}.tflite), for every LiteRT runtime:
the Interpreter, the CompiledModel API (CPU, GPU) and LiteRT.js (WASM,
WebGPU), which need every tensor's size fixed:
    generate(z: float32 [batch, latent_dim])
        -> images: float32 [batch, H * W * C] in [0, 1], rows of NHWC pixels
           pixels: uint8   [batch, H * W * C]
Flat outputs, because LiteRT.js returns zeros for an output made by a
trailing RESHAPE. An app samples with them as `sample` does, from
generator.json's "latent_prior": with its own eps and u,

    c = the number of cumulative weights (all but the last) that u reaches
    z = means[c] + cholesky[c] @ eps

and then `generate(z)`; the tests check that this gives `sample`'s z.

`sample` and `sample_random` draw from the model's default prior
(`VAE.prior`: the prior fitted to the training codes after
`keras_vae.generation.fit_priors`, else N(0, I)) with LiteRT builtins only
(RANDOM_UNIFORM and RANDOM_STANDARD_NORMAL in `sample_random`). generator.json's
"latent_prior" holds the weights, means and Cholesky factors, and
"latent_directions" the main directions of the codes (the explorer's sliders).

A conditional VAE's generator (generator.json's "conditioning": the label
type and names) takes `label: float32 [batch, num_labels]` (one-hot for a
class, 0/1 per attribute) after z in `generate`, after eps and u in `sample`,
and alone in `sample_random(label)` (one image per row). A prior fitted per
class ("label_weights" in "latent_prior") picks the component from the
label's row: the cumulative weights of `label @ label_weights`.
"""

import contextlib
import gc
import json
import os
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context

from keras_vae.models import priors
from keras_vae.utils import atomic_files, names
from keras_vae.version import __version__

GENERATE = "generate"
SAMPLE = "sample"
SAMPLE_RANDOM = "sample_random"
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "generator.json"
# Ops that mean the .tflite is not self-contained: Select TF (Flex) kernels
# would force apps to link the Flex delegate, and resource-variable ops run
# without error yet read uninitialized weights.
FORBIDDEN_OP_PREFIXES = ("Flex",)
FORBIDDEN_OPS = ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE", "CUSTOM")
STATIC_BATCH_SIZES = names.STATIC_BATCH_SIZES
MAX_STATIC_BATCH = names.MAX_STATIC_BATCH
# The largest absolute value of a prior parameter (means, Cholesky factors)
# that an export accepts. A VAE's codes are of order 1; values near float32's
# range overflow in `sample` (inf codes, a grey grid) or crash the LiteRT
# converter.
MAX_PRIOR_VALUE = 1e6
# z that calibrate the full-integer int8 files: half drawn from the exported
# prior, half from N(0, I), so that both kinds of code an app feeds keep their range.
CALIBRATION_CODES = 256
# Main directions of the codes stored in generator.json (the explorer's sliders).
LATENT_DIRECTIONS = 8
# The runtimes each kind of file is made for ("runtimes" in generator.json), and
# those this package's tests run it on ("runtimes_tested"): the GPU back ends
# are what the static files are shaped for, not something tested here.
DYNAMIC_RUNTIMES = ("tensorflow_lite_interpreter",)
SAVED_MODEL_RUNTIMES = ("tensorflow",)
STATIC_RUNTIMES_TESTED = (
    "tensorflow_lite_interpreter",
    "litert_compiled_model_cpu",
    "litert_js_wasm",
)
STATIC_RUNTIMES = (*STATIC_RUNTIMES_TESTED, "litert_compiled_model_gpu", "litert_js_webgpu")


class ExportError(RuntimeError):
    """The model cannot be exported, or an artifact failed verification."""


def tflite_filename(variant, batch=None):
    """generator_{variant}.tflite (dynamic batch) or generator_{variant}_b{batch}.tflite."""
    return (
        f"generator_{variant}.tflite" if batch is None else f"generator_{variant}_b{batch}.tflite"
    )


def _check_exportable(model):
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, keras.Model):
        raise ExportError(
            f"{type(model).__name__} has no `decoder` network: export needs a keras_vae.VAE."
        )
    if not decoder.built or not decoder.weights:
        raise ExportError(
            "The decoder is not built yet (it has no weights): build or train the VAE first."
        )


def _signed_zeros(*shape):
    """A float32 constant of alternating 0.0 and -0.0: adding it changes no value.

    Not a splat (for two elements or more), so no converter pass folds the
    ADD away or moves a RESHAPE across it.
    """
    signs = np.indices(shape).sum(axis=0) % 2
    return tf.constant(np.where(signs == 1, -0.0, 0.0), tf.float32)


class _Generator(tf.Module):
    """The decoder wrapped in the exported signatures.

    `frozen=False` (the SavedModel) reads the decoder's variables. `frozen=True`
    (what the LiteRT converter gets) runs the decoder statelessly on constant
    copies of its weights: converting a variable-holding graph leaves
    VAR_HANDLE / READ_VARIABLE ops in the .tflite (TF 2.21), which run without
    error and return garbage; a graph without variables cannot.

    `batch=None` makes the dynamic signatures `generate` and `sample`; an int
    makes the static one: `generate` on exactly `[batch, latent_dim]`, with flat
    outputs (frozen only).

    With `label_dim` > 0 (a conditional VAE's decoder) every signature takes
    a `label` `[batch, label_dim]` too, after z (eps and u); `sample_random`
    then takes the labels alone, one image per row.
    """

    def __init__(self, decoder, latent_dim, prior, frozen=False, batch=None, label_dim=0):
        super().__init__(name="generator")
        self.latent_dim = latent_dim
        self.label_dim = label_dim
        self.frozen = frozen
        self.batch = batch
        if frozen:
            trainable = [tf.constant(v) for v in decoder.trainable_variables]
            non_trainable = [tf.constant(v) for v in decoder.non_trainable_variables]
            self._logits = lambda inputs: decoder.stateless_call(
                trainable, non_trainable, inputs, training=False
            )[0]
        else:
            self.decoder = decoder  # tracked: the SavedModel holds its variables
            self._logits = lambda inputs: decoder(inputs, training=False)
        labels = [tf.TensorSpec([batch, label_dim], tf.float32, name="label")] * bool(label_dim)
        if batch is not None:
            self.generate = tf.function(
                self._generate_static,
                input_signature=[tf.TensorSpec([batch, latent_dim], tf.float32, name="z"), *labels],
            )
            return
        # LiteRT lets an app resize an input to any shape, and a fully connected
        # layer then silently reads [b, k] as [b * k / latent_dim, latent_dim]:
        # garbage, no error. With the last dimension left dynamic, the converter
        # cannot fold `_generate`'s reshape away, and that RESHAPE fails when
        # it runs (invoke) unless k == latent_dim.
        # The same for a label's width.
        z_shape = [None, None] if frozen else [None, latent_dim]
        labels = [
            tf.TensorSpec([None, None] if frozen else [None, label_dim], tf.float32, name="label")
        ] * bool(label_dim)
        self._prior = _PriorGraph(prior)
        self.generate = tf.function(
            self._generate,
            input_signature=[tf.TensorSpec(z_shape, tf.float32, name="z"), *labels],
        )
        self.sample = tf.function(
            self._sample,
            input_signature=[
                tf.TensorSpec(z_shape, tf.float32, name="eps"),
                tf.TensorSpec([None], tf.float32, name="u"),
                *labels,
            ],
        )
        self.sample_random = tf.function(
            self._sample_random,
            input_signature=labels or [tf.TensorSpec([], tf.int32, name="count")],
        )

    def signatures(self):
        if self.batch is not None:
            return {GENERATE: self.generate}
        return {GENERATE: self.generate, SAMPLE: self.sample, SAMPLE_RANDOM: self.sample_random}

    def _images(self, z, label=None, flat=False):
        logits = tf.cast(self._logits(z if label is None else [z, label]), tf.float32)
        if flat:
            logits = tf.reshape(logits, [tf.shape(logits)[0], -1])
        images = tf.sigmoid(logits)
        if flat:
            # The converter moves a RESHAPE below element-wise ops down to where
            # the outputs fork, which would make `images` a RESHAPE's output
            # (zeros in LiteRT.js). Adding a row of signed zeros stops it.
            images = images + _signed_zeros(1, images.shape[1])  # [1, H * W * C]
        pixels = tf.cast(tf.round(images * 255.0), tf.uint8)
        return images, pixels

    def _widths(self, z, label):
        """z (and label) reshaped to their widths: a resized input of another width fails."""
        if self.frozen:
            z = tf.reshape(z, tf.stack([tf.shape(z)[0], self.latent_dim]))
            if label is not None:
                label = tf.reshape(label, tf.stack([tf.shape(z)[0], self.label_dim]))
        return z, label

    def _generate(self, z, label=None):
        images, pixels = self._images(*self._widths(z, label))
        return {"images": images, "pixels": pixels}

    def _generate_static(self, z, label=None):
        # The Interpreter API resizes a static input too, and a fully connected
        # layer reads a wrong [b, k] without error. Adding a constant of signed
        # zeros keeps z exact and, not being a splat, is folded by no converter
        # pass; a z it does not broadcast with fails when tensors are allocated.
        # For batch > 1 the ADD sits between RESHAPE [batch * latent_dim] and
        # RESHAPE back, so that any other size fails (a [batch, latent_dim]
        # constant alone would broadcast a single [1, latent_dim] code). For
        # batch 1 those reshapes would fold away and the converter would then
        # fuse the ADD into the first layer's bias, so z meets the [1,
        # latent_dim] constant directly: a width other than latent_dim fails,
        # while [n, latent_dim] broadcasts and decodes its n codes correctly.
        z = self._guarded(z, self.latent_dim)
        if label is not None:  # the label likewise
            label = self._guarded(label, self.label_dim)
        images, pixels = self._images(z, label, flat=True)
        return {"images": images, "pixels": pixels}

    def _guarded(self, values, width):
        if self.batch == 1:
            return values + _signed_zeros(1, width)
        size = self.batch * width
        flat = tf.reshape(values, [size]) + _signed_zeros(size)
        return tf.reshape(flat, [self.batch, width])

    def _sample(self, eps, u, label=None):
        # A pure function of the randomness passed in: the same eps and u give
        # the same images on every runtime, and the app decides what repeats.
        # The component is the number of cumulative weights that u reaches.
        eps, label = self._widths(eps, label)
        z, component = self._prior(eps, u, label)
        images, pixels = self._images(z, label)
        return {"images": images, "pixels": pixels, "z": z, "component": component}

    def _sample_random(self, count_or_label):
        # Stateful tf.random.* become the LiteRT builtins RANDOM_UNIFORM and
        # RANDOM_STANDARD_NORMAL (keras.random's stateless ops would need Flex).
        # Traced without a global seed (`_fresh_random_ops`), each runtime that
        # loads the file seeds them from the system: new draws on every launch.
        # A conditional generator takes the labels, and draws one image per row.
        label = count_or_label if self.label_dim else None
        count = tf.shape(label)[0] if self.label_dim else count_or_label
        u = tf.random.uniform(tf.reshape(count, [1]))
        eps = tf.random.normal(tf.stack([count, self.latent_dim]))
        return self._sample(eps, u, label)


class _PriorGraph:
    """The prior's z as TensorFlow ops of the app's randomness: `(z, component)` of (eps, u).

    A Gaussian mixture: c = how many cumulative weights (the last one never
    compared) u reaches, z = means[c] + cholesky[c] @ eps; a mixture per class
    (`label_weights`) takes each label's cumulative weights, label @
    cumsum(label_weights) (one-hot labels: its class's row). A two-stage prior:
    z = its decoder (ReLU layers, the last linear) of eps; u is not used, and
    every component is 0. Constants in float32: LiteRT builtins only.
    """

    def __init__(self, prior):
        self.two_stage = isinstance(prior, priors.TwoStagePrior)
        if self.two_stage:
            self.layers = [
                (tf.constant(kernel, tf.float32), tf.constant(bias, tf.float32))
                for kernel, bias in prior.decoder
            ]
            return
        self.cumulative_weights = tf.constant(np.cumsum(prior.weights)[:-1], tf.float32)
        self.label_cumulative_weights = None
        if prior.label_weights is not None:
            self.label_cumulative_weights = tf.constant(
                np.cumsum(prior.label_weights, axis=1)[:, :-1], tf.float32
            )
        self.means = tf.constant(prior.means, tf.float32)
        self.cholesky = tf.constant(prior.cholesky, tf.float32)

    def __call__(self, eps, u, label=None):
        if self.two_stage:
            return self.decode(eps), tf.zeros_like(u, tf.int32)
        cumulative = self.cumulative_weights[None, :]
        if label is not None and self.label_cumulative_weights is not None:
            cumulative = tf.matmul(label, self.label_cumulative_weights)  # [n, k - 1]
        component = tf.reduce_sum(tf.cast(u[:, None] >= cumulative, tf.int32), axis=1)
        chol = tf.gather(self.cholesky, component)  # [n, d, d]
        z = tf.gather(self.means, component) + tf.squeeze(tf.matmul(chol, eps[:, :, None]), axis=2)
        return z, component

    def decode(self, eps):
        x = eps
        for i, (kernel, bias) in enumerate(self.layers):
            x = tf.matmul(x, kernel) + bias
            if i < len(self.layers) - 1:
                x = tf.nn.relu(x)
        return x


class _PriorNetwork(tf.Module):
    """A two-stage prior's decoder alone, static batch: prior(eps [batch, d]) -> z.

    What the static runtimes (LiteRT.js, the CompiledModel API, GPU
    delegates) run to turn their own eps into codes for `generate`, since a
    network cannot be written as generator.json arithmetic.
    """

    def __init__(self, prior, batch):
        super().__init__(name="prior")
        self._graph = _PriorGraph(prior)
        self.prior = tf.function(
            lambda eps: {"z": self._graph.decode(eps)},
            input_signature=[tf.TensorSpec([batch, prior.latent_dim], tf.float32, name="eps")],
        )


def prior_filename(batch):
    """prior_float32_b{batch}.tflite: a two-stage prior's decoder for the static runtimes."""
    return f"prior_float32_b{batch}.tflite"


@contextlib.contextmanager
def _fresh_random_ops():
    """Inside the block, random ops are traced without seeds (TensorFlow's global seed unset).

    A random op traced under a global seed (`keras.utils.set_random_seed`, as
    training sets it) carries fixed seeds into the SavedModel and the
    .tflite, so every process or app that loads the file draws the same
    "random" numbers. Unseeded ops draw from the system's entropy instead.
    """
    seed = context.global_seed()
    tf.random.set_seed(None)
    try:
        yield
    finally:
        if seed is not None:
            tf.random.set_seed(seed)


@contextlib.contextmanager
def _gc_skips_live_objects():
    """Inside the block, `gc.collect()` leaves the objects alive at its start alone.

    The converter calls `gc.collect()` once per file, which walks every object
    of the process (TensorFlow's modules: about a fifth of an export's time);
    frozen objects (`gc.freeze`) are not walked. A process that froze objects
    of its own is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _convert_tflite(frozen_saved_model_dir, signature_keys, variant, calibration=None):
    """A .tflite flatbuffer.

    `calibration`, z `[steps, batch, latent_dim]` of the static `generate`
    (or `{"z": ..., "label": ...}` of a conditional one), makes int8
    full-integer; without it int8 is dynamic-range (weights only).
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(
        frozen_saved_model_dir, signature_keys=list(signature_keys)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration is not None:
            # Weights and activations in int8, the inputs and outputs left float32
            # and uint8 so that the signature is the float files' one. Each sample
            # a list (inputs by position, z the only one): given a dict, the
            # calibrator builds TensorFlow's deprecated tf.lite.Interpreter to map
            # names to tensors, which warns on every call.
            if isinstance(calibration, dict):  # z, then the label: the subgraph's input order
                steps = len(calibration["z"])
                converter.representative_dataset = lambda: (
                    [calibration["z"][step], calibration["label"][step]] for step in range(steps)
                )
            else:
                converter.representative_dataset = lambda: ([z] for z in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with _gc_skips_live_objects():
        return converter.convert()


def _read_tflite(model_path):
    """The parsed flatbuffer of a .tflite, and a function naming an operator's op."""
    from ai_edge_litert import schema_py_generated as schema

    with open(model_path, "rb") as f:
        model = schema.Model.GetRootAsModel(f.read(), 0)
    builtin_names = {
        value: name for name, value in vars(schema.BuiltinOperator).items() if name.isupper()
    }

    def op_name(operator):
        code = model.OperatorCodes(operator.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            return code.CustomCode().decode()
        return builtin_names[builtin]

    return model, op_name


def _subgraphs(model):
    return [model.Subgraphs(s) for s in range(model.SubgraphsLength())]


def tflite_op_names(model_path):
    """Names of the ops used by every subgraph (signature) of a .tflite file.

    Builtin ops by their LiteRT name (e.g. "FULLY_CONNECTED"); custom ops,
    Select TF ops among them ("FlexRandomStandardNormal"), by their custom code.
    """
    model, op_name = _read_tflite(model_path)
    return sorted(
        {
            op_name(subgraph.Operators(o))
            for subgraph in _subgraphs(model)
            for o in range(subgraph.OperatorsLength())
        }
    )


def check_builtin_ops(model_path):
    """Raises ExportError if the .tflite holds Flex, custom or variable ops."""
    bad = [
        name
        for name in tflite_op_names(model_path)
        if name.startswith(FORBIDDEN_OP_PREFIXES) or name in FORBIDDEN_OPS
    ]
    if bad:
        raise ExportError(f"{model_path}: non-builtin or variable ops {bad}.")


def dynamic_tensors(model_path):
    """Names of the tensors whose size is not fixed in the file (-1 in a dimension)."""
    model, _ = _read_tflite(model_path)
    found = []
    for subgraph in _subgraphs(model):
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            shape = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else ()
            if any(int(size) < 0 for size in shape):
                found.append(tensor.Name().decode())
    return found


def output_ops(model_path, signature=GENERATE):
    """{output name: the op that makes it} of a signature of a .tflite.

    In the order of the subgraph's outputs, which is the order of the output
    buffers that the CompiledModel API creates (`createOutputBuffers`).
    """
    model, op_name = _read_tflite(model_path)
    for d in range(model.SignatureDefsLength()):
        definition = model.SignatureDefs(d)
        if definition.SignatureKey().decode() != signature:
            continue
        subgraph = model.Subgraphs(definition.SubgraphIndex())
        made_by = {}
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            for tensor in operator.OutputsAsNumpy():
                made_by[int(tensor)] = op_name(operator)
        output_names = {
            definition.Outputs(i).TensorIndex(): definition.Outputs(i).Name().decode()
            for i in range(definition.OutputsLength())
        }
        return {
            output_names[int(tensor)]: made_by.get(int(tensor), "none")
            for tensor in subgraph.OutputsAsNumpy()
        }
    raise ExportError(f"{model_path} has no {signature!r} signature.")


def check_static_file(model_path):
    """Raises ExportError unless every tensor's size is fixed and no RESHAPE makes an output.

    GPU delegates and LiteRT.js need fixed sizes; LiteRT.js (2.5) returns
    zeros for an output made by a trailing RESHAPE. Returns `output_ops`.
    """
    dynamic = dynamic_tensors(model_path)
    if dynamic:
        raise ExportError(f"{model_path}: tensors of dynamic size {dynamic[:5]}.")
    made_by = output_ops(model_path)
    reshaped = [name for name, op in made_by.items() if op == "RESHAPE"]
    if reshaped:
        raise ExportError(f"{model_path}: outputs {reshaped} are made by a RESHAPE.")
    return made_by


def run_tflite_generate(model_path, z, label=None):
    """Runs the `generate` signature of a .tflite on `z` (and `label`); returns its outputs."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=model_path).get_signature_runner(GENERATE)
    inputs = {"z": np.asarray(z, dtype=np.float32)}
    if label is not None:
        inputs["label"] = np.asarray(label, dtype=np.float32)
    return runner(**inputs)


def _signatures_json(model):
    height, width, channels = model.image_shape
    image = [None, height, width, channels]
    sampled = {
        "images": {"shape": image, "dtype": "float32", "range": [0.0, 1.0]},
        "pixels": {"shape": image, "dtype": "uint8", "range": [0, 255]},
        "z": {"shape": [None, model.latent_dim], "dtype": "float32"},
        "component": {"shape": [None], "dtype": "int32"},
    }
    label = _label_json(model, None)
    return {
        GENERATE: {
            "inputs": {"z": {"shape": [None, model.latent_dim], "dtype": "float32"}, **label},
            "outputs": {
                "images": {"shape": image, "dtype": "float32", "range": [0.0, 1.0]},
                "pixels": {"shape": image, "dtype": "uint8", "range": [0, 255]},
            },
        },
        SAMPLE: {
            "inputs": {
                "eps": {"shape": [None, model.latent_dim], "dtype": "float32", "draw": "N(0, 1)"},
                "u": {"shape": [None], "dtype": "float32", "draw": "uniform in [0, 1)"},
                **label,
            },
            "outputs": sampled,
        },
        SAMPLE_RANDOM: {
            "inputs": label or {"count": {"shape": [], "dtype": "int32"}},
            "outputs": sampled,
            "randomness": "the runtime's own, seeded from the system when the file loads",
        },
    }


def _label_json(model, batch):
    """A conditional generator's `label` input (generator.json), or {} for another one."""
    if not getattr(model, "label_dim", 0):
        return {}
    return {"label": {"shape": [batch, model.label_dim], "dtype": "float32"}}


def _conditioning_json(model):
    """generator.json's "conditioning": what a conditional generator's `label` means."""
    if not getattr(model, "label_dim", 0):
        return None
    one_hot = model.label_type == "class"
    return {
        "label_type": model.label_type,
        "names": list(model.label_names),
        "input": "label",
        "encoding": (
            "one-hot: 1.0 at the class's index in names, 0.0 elsewhere"
            if one_hot
            else "one value per attribute of names: 1.0 set, 0.0 not set"
        ),
    }


_QUANTIZATION = {
    "float32": "none: float32 weights and activations",
    "float16": "float16 weights, dequantized to float32 at load; float32 activations",
    "int8": "dynamic-range int8: int8 weights, float32 activations",
}
_FULL_INTEGER = (
    "full-integer int8: int8 weights and activations, calibrated on {codes} z (half "
    "drawn from latent_prior, half from N(0, I)); float32 z in, float32 images and "
    "uint8 pixels out"
)


def _static_signature_json(model, batch):
    size = int(np.prod(model.image_shape))
    return {
        "inputs": {
            "z": {"shape": [batch, model.latent_dim], "dtype": "float32"},
            **_label_json(model, batch),
        },
        "outputs": {
            "images": {"shape": [batch, size], "dtype": "float32", "range": [0.0, 1.0]},
            "pixels": {"shape": [batch, size], "dtype": "uint8", "range": [0, 255]},
        },
        "output_layout": "row b is image b: H x W x C pixels, row by row, channels last",
    }


def _calibration_steps(batch):
    return max(1, CALIBRATION_CODES // batch)


def _calibration_codes(prior, count):
    half = count // 2
    standard = np.random.default_rng(1).standard_normal((count - half, prior.latent_dim))
    return np.concatenate([prior.sample(half, seed=0), standard.astype(np.float32)])


# The temporary SavedModel that the converter reads, inside the export's staging folder.
FROZEN_PREFIX = "frozen_saved_model-"


def frozen_flatbuffers(decoder, prior, directory, variants, batch, labels=None):
    """{variant: .tflite flatbuffer} of `decoder`'s dynamic (batch None) or static generator.

    `directory` holds the temporary SavedModel the converter reads. `labels`
    are a conditional decoder's label vectors `[K, label_dim]` (one per
    class): the int8 files are calibrated on every one of them.
    """
    latent_dim = prior.latent_dim
    label_dim = 0 if labels is None else labels.shape[1]
    frozen = _Generator(decoder, latent_dim, prior, frozen=True, batch=batch, label_dim=label_dim)
    calibration = None
    if batch is not None:
        steps = _calibration_steps(batch)
        codes = _calibration_codes(prior, steps * batch)
        calibration = codes.reshape(steps, batch, latent_dim)
        if label_dim:
            cycled = np.resize(labels, (steps * batch, label_dim)).astype(np.float32)
            calibration = {"z": calibration, "label": cycled.reshape(steps, batch, label_dim)}
    signatures = frozen.signatures()
    with tempfile.TemporaryDirectory(prefix=FROZEN_PREFIX, dir=directory) as frozen_dir:
        tf.saved_model.save(frozen, frozen_dir, signatures=signatures)
        return {
            variant: _convert_tflite(frozen_dir, signatures, variant, calibration)
            for variant in variants
        }


def parity_labels(model, count):
    """A conditional model's labels of the parity check: its labels in turn; None otherwise."""
    if not getattr(model, "label_dim", 0):
        return None
    return np.resize(model.each_label(), (count, model.label_dim)).astype(np.float32)


def _write_artifacts(model, prior, directory, parity_z, variants, static_batch_sizes):
    """Writes every artifact into `directory`; returns the per-file facts."""
    label_dim = getattr(model, "label_dim", 0)
    generator = _Generator(model.decoder, model.latent_dim, prior, label_dim=label_dim)
    saved_model_dir = os.path.join(directory, SAVED_MODEL_DIR)
    tf.saved_model.save(
        generator,
        saved_model_dir,
        signatures={**generator.signatures(), "serving_default": generator.generate},
    )
    labels = parity_labels(model, len(parity_z))
    inputs = {"z": parity_z} if labels is None else {"z": parity_z, "label": labels}
    expected = np.asarray(model.decode(*inputs.values()), dtype=np.float32)
    loaded = tf.saved_model.load(saved_model_dir)
    saved_images = loaded.signatures[GENERATE](
        **{name: tf.constant(values) for name, values in inputs.items()}
    )["images"].numpy()
    facts = {
        "saved_model": {
            "path": SAVED_MODEL_DIR,
            "layout": "dynamic",
            "signatures": [GENERATE, SAMPLE, SAMPLE_RANDOM, "serving_default"],
            "runtimes": list(SAVED_MODEL_RUNTIMES),
            "runtimes_tested": list(SAVED_MODEL_RUNTIMES),
            "size_bytes": _tree_size(saved_model_dir),
            "max_abs_error": float(np.max(np.abs(saved_images - expected))),
        }
    }
    each_label = model.each_label() if label_dim else None
    for batch in (None, *static_batch_sizes):
        flatbuffers = frozen_flatbuffers(
            model.decoder, prior, directory, variants, batch, each_label
        )
        for variant, flatbuffer in flatbuffers.items():
            filename = tflite_filename(variant, batch)
            path = os.path.join(directory, filename)
            with atomic_files.naming(path), open(path, "wb") as f:
                f.write(flatbuffer)
            check_builtin_ops(path)
            z = parity_z if batch is None else parity_z[:batch]
            label = None if labels is None else labels[: len(z)]
            images = run_tflite_generate(path, z, label)["images"]
            entry = {"path": filename, "variant": variant, "batch": batch}
            if batch is None:
                entry.update(
                    layout="dynamic",
                    signatures=[GENERATE, SAMPLE, SAMPLE_RANDOM],
                    runtimes=list(DYNAMIC_RUNTIMES),
                    runtimes_tested=list(DYNAMIC_RUNTIMES),
                    quantization=_QUANTIZATION[variant],
                )
            else:
                entry["output_order"] = list(check_static_file(path))
                full_integer = _FULL_INTEGER.format(codes=_calibration_steps(batch) * batch)
                entry.update(
                    layout="static",
                    signatures=[GENERATE],
                    runtimes=list(STATIC_RUNTIMES),
                    runtimes_tested=list(STATIC_RUNTIMES_TESTED),
                    quantization=full_integer if variant == "int8" else _QUANTIZATION[variant],
                    **_static_signature_json(model, batch),
                )
                images = images.reshape((batch, *model.image_shape))
            entry.update(
                size_bytes=os.path.getsize(path),
                max_abs_error=float(np.max(np.abs(images - expected[: len(z)]))),
            )
            facts[variant if batch is None else f"{variant}_b{batch}"] = entry
    return facts


def _write_prior_files(prior, directory, static_batch_sizes):
    """A two-stage prior's decoder as a static float32 .tflite per batch size; their facts."""
    facts = {}
    for batch in static_batch_sizes:
        module = _PriorNetwork(prior, batch)
        with tempfile.TemporaryDirectory(prefix=FROZEN_PREFIX, dir=directory) as frozen_dir:
            tf.saved_model.save(module, frozen_dir, signatures={"prior": module.prior})
            flatbuffer = _convert_tflite(frozen_dir, ["prior"], "float32")
        filename = prior_filename(batch)
        path = os.path.join(directory, filename)
        with atomic_files.naming(path), open(path, "wb") as f:
            f.write(flatbuffer)
        check_builtin_ops(path)
        eps = np.random.default_rng(1).standard_normal((batch, prior.latent_dim))
        from ai_edge_litert.interpreter import Interpreter

        z = Interpreter(model_path=path).get_signature_runner("prior")(eps=eps.astype(np.float32))
        facts[f"prior_b{batch}"] = {
            "path": filename,
            "layout": "static",
            "batch": batch,
            "signatures": ["prior"],
            "inputs": {"eps": {"shape": [batch, prior.latent_dim], "dtype": "float32"}},
            "outputs": {"z": {"shape": [batch, prior.latent_dim], "dtype": "float32"}},
            "size_bytes": os.path.getsize(path),
            "max_abs_error": float(np.max(np.abs(z["z"] - prior.decode(eps)))),
        }
    return facts


def _tree_size(directory):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    )


def check_attribute_directions(directions, latent_dim):
    """Raises ExportError unless `directions` is None or K names with K finite vectors."""
    if directions is None:
        return
    names_ = directions.get("names") if isinstance(directions, dict) else None
    vectors = np.asarray(directions.get("vectors", ()) if names_ else (), dtype=np.float64)
    if (
        not names_
        or not all(isinstance(name, str) for name in names_)
        or vectors.shape != (len(names_), latent_dim)
        or not np.isfinite(vectors).all()
        or np.abs(vectors).max() > MAX_PRIOR_VALUE
    ):
        raise ExportError(
            "attribute_directions must hold names and one finite vector of "
            f"{latent_dim} values per name (attribute_vectors.json of the run dir); "
            "delete that file to export without named sliders."
        )


def export_generator(
    model,
    out_dir,
    overwrite=False,
    training_config=None,
    variants=names.TFLITE_VARIANTS,
    parity_samples=16,
    prior=None,
    static_batch_sizes=STATIC_BATCH_SIZES,
    latent_directions=LATENT_DIRECTIONS,
    attribute_directions=None,
):
    """Exports `model`'s decoder as a generator into `out_dir`, atomically.

    Everything is written into a temporary sibling directory, verified (ops,
    parity against `model.decode`), then renamed into place; a failure at
    any point leaves an existing `out_dir` untouched. A lock beside
    `out_dir` (`.NAME.lock`, removed when done) keeps a second export from
    writing it at the same time.

    Args:
        model: a built `keras_vae.VAE`.
        out_dir: the export directory.
        overwrite: replace an existing `out_dir`; without it an existing
            directory is an error.
        training_config: optional dict (the run's config.json) stored in
            the metadata; its "dataset" is also recorded at the top level.
        variants: which .tflite variants to write, each dynamic and static.
        parity_samples: how many z ~ N(0, I) the parity check decodes (at
            least the largest static batch).
        prior: the prior `sample` draws from: a name ("standard", "gaussian",
            "gmm"), a `keras_vae.models.priors.GaussianMixture`, or None for the
            model's default (`model.prior`).
        static_batch_sizes: the batch sizes of the static-shape files (one
            file per variant and size; empty for none).
        latent_directions: how many main directions of the codes (of the
            prior's covariance) generator.json records.
        attribute_directions: optional named directions (the explorer's
            attribute sliders): `{"names": [K], "vectors": [K, latent_dim],
            ...}`, as `keras_vae.training.train.attribute_directions` makes them;
            recorded as generator.json's "attribute_directions".

    Returns:
        The metadata dict written to `generator.json`.

    Raises:
        FileExistsError: `out_dir` exists and `overwrite` is False, or it
            exists and is not exactly an export (no generator.json, or files
            an export does not write), also if that happens during the
            export: only an earlier export is ever replaced.
        atomic_files.DestinationInUse: another export is writing `out_dir`.
        ValueError: a static batch size outside 1..MAX_STATIC_BATCH.
        ExportError: the model has no built decoder, its prior holds values
            beyond MAX_PRIOR_VALUE (or not finite in float32), a TensorFlow
            write failed (the message names the file), or verification failed.
        OSError: a write failed (a full disk); the message names the file.
    """
    _check_exportable(model)
    prior = model.get_prior(prior)
    check_prior(prior)
    for variant in variants:
        names.check_choice("variant", variant, names.TFLITE_VARIANTS)
    static_batch_sizes = check_static_batch_sizes(static_batch_sizes)
    if int(latent_directions) < 1:
        raise ValueError(f"latent_directions must be >= 1; got {latent_directions}.")
    check_attribute_directions(attribute_directions, model.latent_dim)
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    # One export at a time into out_dir: a second one is refused, not raced.
    with atomic_files.destination_lock(out_dir, alternative="choose another --out"):
        # Of exports killed before they finished: temporaries are removed, and a
        # folder moved aside by a commit is put back (or left aside, never removed).
        atomic_files.remove_stale_temporaries(out_dir)
        if os.path.exists(out_dir) and not overwrite:
            raise FileExistsError(
                f"{out_dir} already exists; pass overwrite=True (--overwrite) to replace it."
            )
        if os.path.exists(out_dir):
            # Only ever replace what this function made: never a user's folder or a run dir.
            reason = not_an_export(out_dir)
            if reason:
                raise FileExistsError(
                    f"{out_dir} exists and is not a keras_vae export ({reason}); "
                    "refusing to replace it. Choose another --out."
                )
        try:
            # What is at out_dir at the commit is replaced only if it still is nothing
            # but an export, and only with overwrite: not a folder created meanwhile.
            with atomic_files.staged_directory(
                out_dir, replaceable=lambda old: overwrite and not not_an_export(old)
            ) as staging:
                with _naming_the_export(staging, out_dir):
                    metadata = _write_staging(
                        model,
                        prior,
                        staging,
                        training_config=training_config,
                        variants=variants,
                        parity_samples=parity_samples,
                        static_batch_sizes=static_batch_sizes,
                        latent_directions=latent_directions,
                        attribute_directions=attribute_directions,
                    )
        except atomic_files.DestinationChanged as error:
            raise FileExistsError(
                f"{out_dir} was created or changed by someone else during the export; "
                "it was left as it is. Export again to another --out, or move it away."
            ) from error
    return metadata


def _prior_json(prior):
    """generator.json's "latent_prior": a mixture's parameters, or how to run a two-stage one.

    A two-stage prior's networks stay out of the JSON (hundreds of thousands
    of weights): the dynamic files' `sample` runs its decoder, and for the
    static runtimes `prior_float32_b{batch}.tflite` does (generator.json's
    "prior_artifacts").
    """
    if not isinstance(prior, priors.TwoStagePrior):
        return prior.to_dict()
    return {
        "kind": prior.kind,
        "components": 1,
        "latent_dim": prior.latent_dim,
        "sampling": "eps ~ N(0, I) [batch, latent_dim]; z = the `prior` signature of a "
        "prior_artifacts file on eps (or the dynamic files' `sample`, which also decodes z)",
        "info": prior.info,
    }


def _write_staging(
    model,
    prior,
    staging,
    training_config,
    variants,
    parity_samples,
    static_batch_sizes,
    latent_directions,
    attribute_directions,
):
    """Writes every artifact and generator.json into `staging`; returns the metadata."""
    parity_z = (
        np.random.default_rng(0)
        .standard_normal((max((parity_samples, *static_batch_sizes)), model.latent_dim))
        .astype(np.float32)
    )
    with _fresh_random_ops():
        artifacts = _write_artifacts(model, prior, staging, parity_z, variants, static_batch_sizes)
    prior_artifacts = {}
    if isinstance(prior, priors.TwoStagePrior):
        prior_artifacts = _write_prior_files(prior, staging, static_batch_sizes)
    metadata = {
        "keras_vae_version": __version__,
        "latent_dim": int(model.latent_dim),
        "image_shape": list(model.image_shape),
        "likelihood": model.likelihood,
        "dataset": (training_config or {}).get("dataset"),
        "model_config": model.get_config(),
        "training_config": training_config,
        "signatures": _signatures_json(model),
        "serving_default": GENERATE,
        "conditioning": _conditioning_json(model),
        "latent_prior": _prior_json(prior),
        "latent_directions": prior.principal_directions(latent_directions),
        "attribute_directions": attribute_directions,
        "parity_check": f"max |artifact - VAE.decode| over {len(parity_z)} z ~ N(0, I) "
        "(the first `batch` of them for a static file), run by the LiteRT Interpreter"
        + (", each with the next label of names in turn" if _conditioning_json(model) else ""),
        "artifacts": artifacts,
        "prior_artifacts": prior_artifacts,
    }
    atomic_files.atomic_write_json(os.path.join(staging, METADATA_FILE), metadata)
    return metadata


@contextlib.contextmanager
def _naming_the_export(staging, out_dir):
    """Write errors in `staging` as one line naming the path in `out_dir` they were for.

    TensorFlow's (a full disk in a SavedModel write is a ResourceExhaustedError
    of many lines) become an ExportError; OSErrors keep their type.
    """

    def shown(text):
        text = text.replace(staging, out_dir)
        # The converter's input is no file of the export: name the export itself.
        text = re.sub(rf"{re.escape(out_dir)}/{FROZEN_PREFIX}[^/;]*(/[^;]*)?", out_dir, text)
        return re.sub(r"\.tmp[0-9a-f]{32}\b", "", text)  # TensorFlow's own temporaries

    try:
        yield
    except tf.errors.OpError as error:
        lines = (error.message or type(error).__name__).strip().splitlines()
        path, separator, reason = shown(lines[0] if lines else "").partition("; ")
        if separator and os.path.isabs(path):
            raise ExportError(f"Could not write {path}: {reason}") from None
        raise ExportError(f"Could not write the export {out_dir}: {shown(lines[0])}") from None
    except OSError as error:
        if error.errno is None or not error.filename:
            raise
        raise type(error)(error.errno, error.strerror, shown(os.fspath(error.filename))) from None


def check_static_batch_sizes(static_batch_sizes):
    """The batch sizes as a tuple of ints; ValueError unless each is in 1..MAX_STATIC_BATCH."""
    sizes = tuple(int(batch) for batch in static_batch_sizes)
    if any(not 1 <= batch <= MAX_STATIC_BATCH for batch in sizes):
        raise ValueError(
            f"Static batch sizes must be between 1 and {MAX_STATIC_BATCH}; got {list(sizes)}."
        )
    return sizes


def check_prior(prior):
    """Raises ExportError unless the prior's parameters are finite and of a sane scale.

    The exported files hold them as float32 constants: a value beyond
    `MAX_PRIOR_VALUE` (float32's range ends at 3.4e38) makes `sample` draw
    inf codes or crashes the LiteRT converter.
    """
    if isinstance(prior, priors.TwoStagePrior):
        parameters = [
            (f"decoder layer {i} {part}", values)
            for i, layer in enumerate(prior.decoder)
            for part, values in zip(("kernel", "bias"), layer, strict=True)
        ]
    else:
        parameters = [
            ("weights", prior.weights),
            ("means", prior.means),
            ("cholesky", prior.cholesky),
        ]
    for name, values in parameters:
        values = np.abs(np.asarray(values, dtype=np.float64))
        largest = float(np.max(np.where(np.isnan(values), np.inf, values), initial=0.0))
        if largest > MAX_PRIOR_VALUE:
            raise ExportError(
                f"The prior's {name} reach {largest:.3g}, beyond the {MAX_PRIOR_VALUE:g} an "
                "export accepts (a VAE's codes are of order 1): fit the prior again "
                "(keras-vae fit-prior), or export with --prior standard."
            )


# What an export writes, and nothing else: generator.json, the .tflite files
# and the SavedModel (its files as tf.saved_model.save writes them).
_EXPORT_FILE = re.compile(r"generator_[a-z0-9]+(_b\d+)?\.tflite|prior_float32_b\d+\.tflite")
_SAVED_MODEL_FILE = re.compile(
    r"saved_model\.pb|fingerprint\.pb|variables/variables\.(index|data-\d+-of-\d+)"
)


def not_an_export(directory):
    """Why `directory` is not exactly an export's files (a short reason), or "" if it is."""
    if not os.path.isfile(os.path.join(directory, METADATA_FILE)):
        return f"it has no {METADATA_FILE}"
    others = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.islink(path):
            others.append(name)
        elif name == SAVED_MODEL_DIR and os.path.isdir(path):
            for root, dirs, names_ in os.walk(path):
                for entry in names_ + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                    relative = os.path.relpath(os.path.join(root, entry), path)
                    if os.path.islink(os.path.join(root, entry)) or not (
                        _SAVED_MODEL_FILE.fullmatch(relative)
                    ):
                        others.append(os.path.join(name, relative))
        elif not (os.path.isfile(path) and (name == METADATA_FILE or _EXPORT_FILE.fullmatch(name))):
            others.append(name)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return f"it also holds {shown}, which an export does not write"
    return ""


# The columns of a conditional generator's preview: its first labels.
MAX_PREVIEW_LABELS = 10


def render_preview(export_dir, png_path, rows=8, cols=8, seed=0):
    """Writes a grid generated by the exported float32 .tflite from z of its prior.

    A conditional generator's grid has a row per code and a column per label
    (its first `MAX_PREVIEW_LABELS`), from the same eps and u in every column:
    a prior fitted per class turns them into each class's own z.
    """
    from ai_edge_litert.interpreter import Interpreter

    from keras_vae.utils import images as image_io

    with open(os.path.join(export_dir, METADATA_FILE)) as f:
        metadata = json.load(f)
    latent_dim, conditioning = metadata["latent_dim"], metadata.get("conditioning")
    rng = np.random.default_rng(seed)
    inputs, draws = {}, rows * cols
    if conditioning:  # a row per code, a column per label: "same z, every class"
        cols = min(len(conditioning["names"]), MAX_PREVIEW_LABELS)
        inputs["label"] = np.tile(
            np.eye(len(conditioning["names"]), dtype=np.float32)[:cols], (rows, 1)
        )
        draws = rows
    eps = rng.standard_normal((draws, latent_dim)).astype(np.float32)
    u = rng.uniform(size=draws).astype(np.float32)
    if conditioning:
        eps, u = np.repeat(eps, cols, axis=0), np.repeat(u, cols)
    path = os.path.join(export_dir, tflite_filename("float32"))
    runner = Interpreter(model_path=path).get_signature_runner(SAMPLE)
    generated = runner(eps=eps, u=u, **inputs)
    image_io.save_png(png_path, image_io.grid(generated["images"], rows, cols))
