"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Temporaries sit beside their target, named `.NAME.tmp-PID-...`, so a later
write of the same target removes those left by a killed process (SIGKILL
runs no cleanup). A folder that `commit_directory` moved aside
(`.NAME.old-PID-.../export`) is never removed that way: it is put back at
its target, or left where it is when the target exists again. Finished
files get the mode a plain `open()` gives under the user's umask, not the
private 0600 of `tempfile`. A failed write names the file it was writing,
never its temporary. `destination_lock` keeps two processes from writing
one destination at the same time.
"""

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import sys
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


def _helper_name(path):
    """A pattern of the names of `path`'s helpers: temporaries, folders moved aside, the lock."""
    base = re.escape(os.path.basename(os.path.abspath(path)))
    return re.compile(rf"\.{base}\.(?:lock|(tmp|old)-(\d+)-.+)")


def remove_stale_temporaries(path):
    """Removes the temporaries of `path` left behind by processes that no longer run.

    A folder such a process had moved aside (`.NAME.old-PID-.../export`) is
    not removed: it is put back at `path` if nothing is there, else left
    where it is, with a line on stderr saying where.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return
    pattern = _helper_name(path)
    for name in sorted(os.listdir(directory)):
        match = pattern.fullmatch(name)
        if not match or not match.group(1) or running(int(match.group(2))):
            continue
        stale = os.path.join(directory, name)
        if match.group(1) == "old":
            _put_back_moved_aside(stale, path)
        elif os.path.isdir(stale) and not os.path.islink(stale):
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):  # another writer was quicker
                os.unlink(stale)


def _put_back_moved_aside(retired, path):
    """Puts `retired`/export back at `path` if nothing is there; never deletes what it holds."""
    aside = os.path.join(retired, "export")
    if os.path.lexists(aside):
        try:
            rename_no_replace(aside, os.path.abspath(path))
        except FileExistsError:
            print(
                f"{aside}: a folder moved aside from {path} by a process that was killed; "
                f"{path} exists again, so it stays there (nothing is lost): move it back "
                "or remove it yourself.",
                file=sys.stderr,
            )
            return
        except FileNotFoundError:  # another writer put it back first
            pass
    with contextlib.suppress(OSError):  # removed only when empty
        os.rmdir(retired)


@contextlib.contextmanager
def naming(path):
    """Makes an OSError raised in the block about a helper of `path`, or no file, name `path`.

    A failed `write()` (ENOSPC, EFBIG) names no file, and a failed write of
    a temporary names the temporary (`.NAME.tmp-...`, `.NAME.old-...`, or
    the lock `.NAME.lock`); the user knows only `path`. An error about any
    other file keeps its name.
    """
    try:
        yield
    except OSError as error:
        if error.errno is None or not (error.filename is None or _is_helper(error.filename, path)):
            raise
        raise type(error)(error.errno, error.strerror, os.fspath(path)) from error


def _is_helper(filename, path):
    """True if `filename` is a helper of `path` (see `_helper_name`) or inside one."""
    directory = os.path.dirname(os.path.abspath(path))
    relative = os.path.relpath(os.path.abspath(os.fsdecode(filename)), directory)
    return bool(_helper_name(path).fullmatch(relative.split(os.sep)[0]))


def atomic_write(path, write, suffix=""):
    """Calls `write(tmp_path)`, then renames the temporary file onto `path`.

    The temporary file sits in `path`'s directory (so the rename is atomic)
    and is removed if `write` fails; an existing `path` is then untouched.

    Raises:
        IsADirectoryError: `path` is a directory (nothing is written).
        OSError: the write failed (a full disk, say); the message names `path`.
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a directory; give a file name to write to.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    with naming(path):
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


def rename_no_replace(source, target):
    """Renames `source` to `target`; FileExistsError if anything is at `target`.

    `os.rename` would silently replace an empty directory at `target`;
    Linux's renameat2(RENAME_NOREPLACE) checks and renames in one step. Where
    it is missing, the check comes just before the rename.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if (
            renameat2(
                at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace
            )
            == 0
        ):
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: a file system without the flag
            raise OSError(code, os.strerror(code), os.fspath(target))
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(target))
    os.rename(source, target)


def commit_directory(staging, out_dir, replaceable=None):
    """Moves the finished directory `staging` to `out_dir`.

    Nothing at `out_dir`: one rename, which never replaces what appears there
    meanwhile. An existing `out_dir` is first checked where it is with
    `replaceable(out_dir)` (default: always replaceable); if refused, nothing
    is moved. Otherwise it is renamed aside (`.NAME.old-PID-.../export`),
    checked again there (it may have changed between), and removed only once
    `staging` is in place; if the second check refuses or the rename of
    `staging` fails, it is put back. After a kill in between, the next
    `remove_stale_temporaries(out_dir)` puts it back.

    Raises:
        FileExistsError: `replaceable` refused what is at `out_dir`.
        MovedAsideError: the folder moved aside could not be put back (its
            message says where it is now).
        OSError: a rename failed; the message names `out_dir`.
    """
    with naming(out_dir):
        for _ in range(3):  # another process may create or remove out_dir meanwhile
            try:
                rename_no_replace(staging, out_dir)
                return
            except FileExistsError:
                pass
            if replaceable is not None and not replaceable(out_dir):
                if not os.path.lexists(out_dir):
                    continue
                raise _refused(out_dir)
            retired = tempfile.mkdtemp(
                prefix=temporary_prefix(out_dir, "old"), dir=os.path.dirname(out_dir)
            )
            aside = os.path.join(retired, "export")
            try:
                os.rename(out_dir, aside)
            except FileNotFoundError:
                os.rmdir(retired)
                continue
            try:
                if replaceable is not None and not replaceable(aside):
                    raise _refused(out_dir)
                rename_no_replace(staging, out_dir)
            except BaseException:
                try:
                    rename_no_replace(aside, out_dir)
                except OSError as error:
                    raise MovedAsideError(
                        f"{out_dir} was moved aside to {aside} and could not be put back "
                        f"({error.strerror}: something is at {out_dir} again); nothing in it "
                        "was removed: move it back yourself."
                    ) from error
                os.rmdir(retired)
                raise
            shutil.rmtree(retired, ignore_errors=True)
            return
        raise FileExistsError(
            errno.EEXIST, "created and removed by another process meanwhile", os.fspath(out_dir)
        )


def _refused(out_dir):
    return FileExistsError(
        errno.EEXIST,
        "something other than what this command replaces is there; nothing was replaced",
        os.fspath(out_dir),
    )


class DestinationChanged(FileExistsError):
    """What is at a staged directory's destination appeared or changed meanwhile; kept."""


@contextlib.contextmanager
def staged_directory(out_dir, replaceable=None):
    """Yields an empty directory beside `out_dir` that becomes `out_dir` when the block ends.

    The one way this package writes a directory whole: the staging directory
    (`.NAME.tmp-PID-...`, with the mode `os.makedirs` gives) is committed by
    `commit_directory(staging, out_dir, replaceable)` when the block ends, and
    removed if the block or the commit fails. An error about a file in it
    names `out_dir`. Hold `destination_lock(out_dir)` around it when another
    process may write the same destination.

    Raises:
        DestinationChanged: `replaceable` refused what is at `out_dir` at the
            commit (it appeared or changed meanwhile); it is left as it is.
    """
    out_dir = os.path.abspath(out_dir)
    with naming(out_dir):
        staging = tempfile.mkdtemp(prefix=temporary_prefix(out_dir), dir=os.path.dirname(out_dir))
    try:
        public_mode(staging, directory=True)
        with naming(out_dir):
            yield staging
        try:
            commit_directory(staging, out_dir, replaceable)
        except FileExistsError as error:
            raise DestinationChanged(error.errno, error.strerror, out_dir) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class MovedAsideError(OSError):
    """`commit_directory` could not put back the folder it moved aside; the message says where."""


class DestinationInUse(OSError):
    """Another process is writing the same destination."""


@contextlib.contextmanager
def destination_lock(path, alternative="choose another destination"):
    """Holds an exclusive lock on writing `path` for the block.

    The lock is an `flock` on `.NAME.lock` beside `path` (its parent must
    exist), which the kernel releases when the process ends, however it ends;
    the file is removed when the block ends.

    Raises:
        DestinationInUse: another process holds it; the message ends with
            "wait for it to finish, or `alternative`".
    """
    path = os.path.abspath(path)
    lock_path = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.lock")
    while True:
        with naming(path):
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            holder = os.pread(fd, 100, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DestinationInUse(
                f"{path} is being written by {holder}: wait for it to finish, or {alternative}."
            ) from error
        try:  # a holder that finished removed the file: lock the one at lock_path
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(current, os.fstat(fd)):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(fd)
