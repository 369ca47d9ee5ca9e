"""The error every dataset loader raises, and tensorflow-datasets behind it."""


class DataError(ValueError):
    """A dataset could not be found or read, or holds unusable values.

    The message says which file (or array) and why, and what to do.
    """


def load_tfds(name, **kwargs):
    """`tfds.load(name, **kwargs)`, its failures (offline, no such split...) a `DataError`.

    tensorflow-datasets downloads a dataset the first time; where that fails
    the message says so in one line and names `--data-dir`, the offline way.
    """
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, **kwargs)
    except Exception as error:  # any failure of the download or the build
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DataError(
            f"Could not load {name!r} from tensorflow-datasets ({type(error).__name__}"
            f"{': ' + detail[:200] if detail else ''}). It downloads the dataset once, which "
            "needs the internet; offline, pass --data-dir with the dataset's own files "
            "(docs/data.md)."
        ) from error
