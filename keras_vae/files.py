"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import json
import os
import tempfile


def atomic_write(path, write, suffix=""):
    """Calls `write(tmp_path)`, then renames the temporary file onto `path`.

    The temporary file sits in `path`'s directory (so the rename is atomic)
    and is removed if `write` fails; an existing `path` is then untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)


def atomic_write_json(path, values):
    """Writes `values` as indented, key-sorted JSON to `path` atomically."""

    def write(tmp_path):
        with open(tmp_path, "w") as f:
            json.dump(values, f, indent=2, sort_keys=True)
            f.write("\n")

    atomic_write(path, write, suffix=".json")
