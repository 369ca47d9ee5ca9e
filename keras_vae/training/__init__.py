"""Training a VAE the Keras way, and the run dir it writes.

`config` (the run's settings, TensorFlow-free, also train.py's flags),
`train` (load data, build, `fit`, evaluate, fit the priors, write the
run dir's files), `callbacks` (KL warm-up, resumable backups, TensorBoard
images, timings), `distribute` (strategies and workers) and `run_dir` (its
files, its lock, loading its model).

Modules load on import of their own name, so `keras_vae.training.config`
loads no TensorFlow.
"""

from keras_vae.utils import lazy

__getattr__, __dir__ = lazy.attributes(__name__, __path__)
