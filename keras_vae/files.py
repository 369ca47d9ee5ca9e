"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Temporaries sit beside their target, named `.NAME.tmp-PID-...`, so a later
write of the same target removes those left by a killed process (SIGKILL
runs no cleanup). Finished files get the mode a plain `open()` gives under the
user's umask, not the private 0600 of `tempfile`.
"""

import contextlib
import json
import os
import re
import shutil
import tempfile


def _umask():
    """The process's umask, read without changing it (other threads may be creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: the only way to read it is to set it for a moment
    os.umask(mask)
    return mask


def public_mode(path, directory=False):
    """Gives `path` the mode `open()` (0666) or `os.makedirs` (0777) would, less the umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def temporary_prefix(path, kind="tmp"):
    """`.NAME.KIND-PID-`: the prefix of this process's temporaries for `path`."""
    return f".{os.path.basename(os.path.abspath(path))}.{kind}-{os.getpid()}-"


def running(pid):
    """True if a process `pid` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path):
    """Removes the temporaries of `path` left behind by processes that no longer run."""
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(
        rf"\.{re.escape(os.path.basename(os.path.abspath(path)))}\.(tmp|old)-(\d+)-.+"
    )
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        match = pattern.fullmatch(name)
        if match and not running(int(match.group(2))):
            stale = os.path.join(directory, name)
            if os.path.isdir(stale):
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):  # another writer was quicker
                    os.unlink(stale)


def atomic_write(path, write, suffix=""):
    """Calls `write(tmp_path)`, then renames the temporary file onto `path`.

    The temporary file sits in `path`'s directory (so the rename is atomic)
    and is removed if `write` fails; an existing `path` is then untouched.

    Raises:
        IsADirectoryError: `path` is a directory (nothing is written).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; give a file name to write to.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp_path = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp_path)
        public_mode(tmp_path)
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


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically."""

    def write(tmp_path):
        with open(tmp_path, "w") as f:
            f.write(text)

    atomic_write(path, write)


def commit_directory(staging, out_dir):
    """Moves the finished directory `staging` to `out_dir`, replacing an existing one.

    The old `out_dir` is renamed aside (`.NAME.old-PID-.../export`) and removed
    only once `staging` is in place; if that rename fails it is put back.
    """
    if not os.path.exists(out_dir):
        os.rename(staging, out_dir)
        return
    retired = tempfile.mkdtemp(
        prefix=temporary_prefix(out_dir, "old"), dir=os.path.dirname(out_dir)
    )
    os.rename(out_dir, os.path.join(retired, "export"))
    try:
        os.rename(staging, out_dir)
    except BaseException:
        os.rename(os.path.join(retired, "export"), out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)
