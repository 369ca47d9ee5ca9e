"""Shipping a trained decoder: `generator` writes the SavedModel, the `.tflite`
files and generator.json; `explorer` builds the browser page (`page/`) over such an
export and serves it (TensorFlow-free).
"""

from keras_vae.utils import lazy

__getattr__, __dir__ = lazy.attributes(__name__, __path__)
