"""The error every dataset loader raises, and tensorflow-datasets behind it."""

import logging


class DataError(ValueError):
    """A dataset could not be found or read, or holds unusable values.

    The message says which file (or array) and why, and what to do.
    """


def load_tfds(name, **kwargs):
    """`tfds.load(name, **kwargs)`, its failures (offline, no such split...) a `DataError`.

    tensorflow-datasets downloads a dataset the first time; where that fails
    (offline: after its retries, a few minutes, whose warnings are kept quiet)
    the message says so in one line and names `--data-dir`, the offline way.
    """
    import tensorflow_datasets as tfds

    retries = logging.getLogger("urllib3")  # a warning per retried download
    level = retries.level
    retries.setLevel(logging.ERROR)
    try:
        return tfds.load(name, **kwargs)
    except Exception as error:  # any failure of the download or the build
        lines = str(error).strip().splitlines()
        detail = lines[0] if lines else ""
        if len(detail) > 200:
            detail = detail[:200] + "..."
        raise DataError(
            f"Could not load {name!r} from tensorflow-datasets ({type(error).__name__}"
            f"{': ' + detail if detail else ''}). It downloads the dataset once, which "
            "needs the internet; offline, pass --data-dir with the dataset's own files "
            "(docs/data.md)."
        ) from error
    finally:
        retries.setLevel(level)
