"""Atomic writes: modes as open() gives them, no temporaries left by killed processes."""

import os
import pathlib
import stat
import subprocess
import sys

import pytest

from keras_vae import VAE
from keras_vae.export import generator as export
from keras_vae.utils import atomic_files
from tests.testing import REPO_ROOT, TINY


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_and_exports_get_the_umask_modes(tmp_path, umask_022):
    # Not the private 0600 / 0700 of tempfile.
    atomic_files.atomic_write_json(tmp_path / "metrics.json", {"loss": 1.0})
    atomic_files.atomic_write_text(tmp_path / "notes.txt", "hello")
    assert mode(tmp_path / "metrics.json") == 0o644 and mode(tmp_path / "notes.txt") == 0o644
    model = VAE(preset="mlp", latent_dim=2, encoder_units=(4,), decoder_units=(4,), seed=0)
    atomic_files.atomic_write(tmp_path / "model.keras", model.save, suffix=".keras")
    assert mode(tmp_path / "model.keras") == 0o644
    export.export_generator(
        model, tmp_path / "export", variants=("float32",), static_batch_sizes=()
    )
    assert mode(tmp_path / "export") == 0o755
    for name in os.listdir(tmp_path / "export"):
        path = tmp_path / "export" / name
        assert mode(path) == (0o755 if path.is_dir() else 0o644), name


def dead_pid():
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_killed_processes_are_removed_by_the_next_write(tmp_path):
    # A SIGKILL during an export or a save leaves a temporary behind.
    stale_dir = tmp_path / f".export.tmp-{dead_pid()}-abc"
    stale_dir.mkdir()
    (stale_dir / "generator_float32.tflite").write_bytes(b"x" * 1000)
    stale_file = tmp_path / f".model.keras.tmp-{dead_pid()}-xyz.keras"
    stale_file.write_bytes(b"half a model")
    live = tmp_path / f".export.tmp-{os.getpid()}-mine"  # a running export's: kept
    live.mkdir()
    model = VAE(seed=0, **TINY)
    export.export_generator(
        model, tmp_path / "export", variants=("float32",), static_batch_sizes=()
    )
    atomic_files.atomic_write(tmp_path / "model.keras", model.save, suffix=".keras")
    assert sorted(os.listdir(tmp_path)) == [live.name, "export", "model.keras"]


def test_writing_onto_a_directory_names_it_not_a_temporary(tmp_path):
    # The message names the user's path.
    (tmp_path / "existdir").mkdir()
    with pytest.raises(IsADirectoryError, match="existdir is a directory") as error:
        atomic_files.atomic_write_text(tmp_path / "existdir", "x")
    assert ".tmp-" not in str(error.value)
    assert sorted(os.listdir(tmp_path)) == ["existdir"]


def test_commit_directory_replaces_only_once_the_new_one_is_in_place(tmp_path):
    out = tmp_path / "out"
    for name, text in (("new", "first"), ("out", "old")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.txt").write_text(text)
    atomic_files.commit_directory(str(tmp_path / "new"), str(out))
    assert (out / "f.txt").read_text() == "first" and not (tmp_path / "new").exists()
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the old one is gone, no leftovers

    # The new one is gone before its rename (as a full disk or a kill may leave
    # it): the old one is put back.
    with pytest.raises(FileNotFoundError, match="out"):
        atomic_files.commit_directory(str(tmp_path / "gone"), str(out))
    assert (out / "f.txt").read_text() == "first"  # put back
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_commit_directory_replaces_nothing_it_is_not_allowed_to(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "new").mkdir()
    out.mkdir()  # even an empty folder, which a plain rename would silently replace
    with pytest.raises(FileExistsError):
        atomic_files.commit_directory(
            str(tmp_path / "new"), str(out), replaceable=lambda old: False
        )
    assert out.is_dir() and not os.listdir(out)
    with pytest.raises(FileExistsError):
        atomic_files.rename_no_replace(str(tmp_path / "new"), str(out))
    assert sorted(os.listdir(tmp_path)) == ["new", "out"]


def test_commit_directory_checks_the_folder_in_place_before_moving_it(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "new").mkdir()
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    asked = []

    def refuse(old):
        asked.append(old)
        assert sorted(os.listdir(tmp_path)) == ["new", "out"], "moved before it was checked"
        return False

    with pytest.raises(FileExistsError, match="nothing was replaced"):
        atomic_files.commit_directory(str(tmp_path / "new"), str(out), replaceable=refuse)
    assert asked == [str(out)]
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["new", "out"]


def test_commit_directory_says_where_a_folder_it_cannot_put_back_is(tmp_path):
    # The folder changes after the first check, and out is created again before
    # the put-back: the folder stays aside, and the error says where.
    out = tmp_path / "out"
    (tmp_path / "new").mkdir()
    out.mkdir()
    (out / "mine.txt").write_text("keep me")

    def changed_and_recreated(old):
        if old == str(out):
            return True
        (tmp_path / "out").mkdir()  # another process creates out meanwhile
        return False

    with pytest.raises(atomic_files.MovedAsideError, match="moved aside to") as error:
        atomic_files.commit_directory(
            str(tmp_path / "new"), str(out), replaceable=changed_and_recreated
        )
    aside = str(error.value).split("moved aside to ")[1].split(" and could not")[0]
    assert os.path.dirname(aside).startswith(str(tmp_path / f".out.old-{os.getpid()}-"))
    assert (tmp_path / aside / "mine.txt").read_text() == "keep me"


def test_a_folder_moved_aside_by_a_killed_process_is_put_back_or_left_never_deleted(
    tmp_path, capsys
):
    # A SIGKILL between commit_directory's renames leaves a user's folder (no
    # generator.json) in .NAME.old-PID-*/export.
    out = tmp_path / "out"
    retired = tmp_path / f".out.old-{dead_pid()}-x"
    (retired / "export").mkdir(parents=True)
    (retired / "export" / "mine.txt").write_text("keep me")
    atomic_files.remove_stale_temporaries(out)  # nothing at out: put back
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["out"]

    again = tmp_path / f".out.old-{dead_pid()}-y"
    (again / "export").mkdir(parents=True)
    (again / "export" / "other.txt").write_text("keep me too")
    atomic_files.remove_stale_temporaries(out)  # out exists: left where it is
    assert (again / "export" / "other.txt").read_text() == "keep me too"
    assert (out / "mine.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == [again.name, "out"]
    err = capsys.readouterr().err
    assert str(again / "export") in err and "nothing is lost" in err


def test_an_error_about_another_file_keeps_its_name(tmp_path):
    # Only errors about the temporary (or about no file) are relabelled.
    def write(tmp):
        open(tmp_path / "missing" / "input.txt").close()

    with pytest.raises(FileNotFoundError) as error:
        atomic_files.atomic_write(tmp_path / "out.txt", write)
    assert error.value.filename == str(tmp_path / "missing" / "input.txt")
    assert os.listdir(tmp_path) == []


# Writes `x` * 100000 to argv[1] atomically, as a process whose files may
# not exceed 4096 bytes (a full disk as the writer sees it: write() fails).
WRITE_PAST_FILE_SIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
from keras_vae.utils import atomic_files
try:
    atomic_files.atomic_write_text(sys.argv[1], "x" * 100000)
except OSError as error:
    print(error)
"""


def test_a_failed_write_names_the_file_not_a_temporary(tmp_path):
    target = tmp_path / "notes.txt"
    result = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_FILE_SIZE_LIMIT, str(target)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"[Errno 27] File too large: '{target}'"
    assert os.listdir(tmp_path) == []  # the temporary is gone


def test_a_staged_directory_becomes_the_destination_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with atomic_files.staged_directory(out) as staging:
        (pathlib.Path(staging) / "a.txt").write_text("new")
        assert not out.exists()  # nothing at the destination until the block ends
    assert (out / "a.txt").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["out"]

    with pytest.raises(RuntimeError), atomic_files.staged_directory(out) as staging:
        (pathlib.Path(staging) / "a.txt").write_text("half")
        raise RuntimeError("the writer failed")
    assert (out / "a.txt").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["out"]

    with (
        pytest.raises(atomic_files.DestinationChanged),
        atomic_files.staged_directory(out, replaceable=lambda old: False) as staging,
    ):
        (pathlib.Path(staging) / "a.txt").write_text("refused")
    assert (out / "a.txt").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["out"]

    with pytest.raises(FileNotFoundError) as raised, atomic_files.staged_directory(out) as staging:
        open(os.path.join(staging, "missing", "b.txt"), "w")
    assert raised.value.filename == str(out)  # the destination, never the staging folder
