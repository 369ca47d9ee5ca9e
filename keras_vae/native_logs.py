"""Keeps TensorFlow's C++ log lines out of the command-line tools' output.

TensorFlow and the LiteRT converter write `I0000 ...`, `W0000 ...` and
"All log messages before absl::InitializeLog()" lines straight to file
descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` can be read, so no setting
silences them. The CLIs run inside `filtered_stderr()`: what is written to
stderr in the block is held in a temporary file and, at the end, written back
without those lines. Everything else (Python warnings, errors) is shown; if
the block raises, everything is shown. `TF_CPP_MIN_LOG_LEVEL=0` in the
environment (asking for every log) turns the filter off.

No TensorFlow import: the filter must be in place before TensorFlow loads.
"""

import contextlib
import os
import re
import sys
import tempfile

# absl / TensorFlow C++ log lines ("I0000 00:00:1796153870.027769   30908 port.cc:153] ...")
# and the few unprefixed lines TensorFlow prints with them.
NATIVE_LOG_LINE = re.compile(
    rb"^([IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ [^ ]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)"
)


def is_native_log(line):
    """True for a line (bytes) that TensorFlow's C++ logging wrote."""
    return bool(NATIVE_LOG_LINE.match(line))


@contextlib.contextmanager
def filtered_stderr():
    """Runs the block with file descriptor 2 captured; replays it without native log lines."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture if failed or not is_native_log(line)]
            if kept:
                sys.stderr.flush()
                os.write(2, b"".join(kept))
