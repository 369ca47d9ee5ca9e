"""The error every dataset loader raises."""


class DataError(ValueError):
    """A dataset could not be found or read, or holds unusable values.

    The message says which file (or array) and why, and what to do.
    """
