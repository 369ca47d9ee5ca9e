"""What every layer of the package uses: the names of valid choices (`names`), atomic
file and directory writes (`atomic_files`), image grids and PNG files (`images`) and
attributes loaded on first use (`lazy`).

No TensorFlow here.
"""

from keras_vae.utils import lazy

__getattr__, __dir__ = lazy.attributes(__name__, __path__)
