"""python -m export --model RUN_DIR_or_model.keras [--out DIR] [--overwrite]

The same as `keras-vae export` (see `keras-vae export --help`): exports the
decoder of a trained keras_vae VAE as a generator (SavedModel, three
dynamic-batch LiteRT .tflite variants, their static-shape files for the
CompiledModel API, GPUs and LiteRT.js, and generator.json; see
export/README.md). All logic lives in keras_vae.cli and keras_vae.export.generator.
"""

import sys


def main(argv=None):
    from keras_vae.cli import main as keras_vae_main

    return keras_vae_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
