"""`python -m keras_vae`: the same as the `keras-vae` command (keras_vae.cli)."""

import sys

from keras_vae.cli import main

if __name__ == "__main__":
    sys.exit(main())
