"""Keeps TensorFlow's C++ log lines out of the command-line tools' output.

TensorFlow and the LiteRT converter write `I0000 ...`, `W0000 ...` and
"All log messages before absl::InitializeLog()" lines straight to file
descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` can be read, so no setting
silences them. The CLIs run inside `filtered_stderr()`: what is written to
stderr in the block goes to a temporary file that a thread copies back to
stderr as it grows, without those lines. Everything else (Python warnings,
errors) is shown as it comes; if the block raises, the held-back lines are
shown too. `TF_CPP_MIN_LOG_LEVEL=0` in the
environment (asking for every log) turns the filter off.

No TensorFlow import: the filter must be in place before TensorFlow loads.
"""

import contextlib
import os
import re
import sys
import tempfile
import threading

from keras_vae.cli import interrupts

# absl / TensorFlow C++ log lines ("I0000 00:00:1796153870.027769   30908 port.cc:153] ...")
# and the few unprefixed lines TensorFlow and its converter print with them.
NATIVE_LOG_LINE = re.compile(
    rb"^([IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ [^ ]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    # The LiteRT converter's calibration, once per full-integer file
    rb"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, "
    rb"output_inference_type: \w+$)"
)


def is_native_log(line):
    """True for a line (bytes) that TensorFlow's C++ logging wrote."""
    return bool(NATIVE_LOG_LINE.match(line))


class _Forwarder(threading.Thread):
    """Copies what is written to `capture` onto `target`, line by line, without native logs.

    It reads with `os.pread` at its own offset, so writers (to a regular file,
    which never blocks) and this thread never wait for each other, and lines
    reach the terminal within `interval` seconds: a process that dies
    without cleanup (SIGKILL, abort) has shown all but the last moment.
    """

    def __init__(self, capture, target, interval=0.05):
        super().__init__(daemon=True)
        self.capture, self.target, self.interval = capture, target, interval
        self.offset, self.partial, self.held = 0, b"", []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            if not self.forward():
                self.done.wait(self.interval)

    def forward(self):
        """Forwards the complete lines written since the last call; True if there were any."""
        data = os.pread(self.capture, 1 << 16, self.offset)
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self._emit(line + b"\n")
        return bool(data)

    def drain(self):
        """Forwards everything still unread, the last line even without its newline."""
        while self.forward():
            pass
        if self.partial:
            self._emit(self.partial)
            self.partial = b""

    def _emit(self, line):
        # After Ctrl-C nothing more is shown: an extension module that caught the
        # KeyboardInterrupt may print its traceback; the command ends in one line.
        if is_native_log(line) or interrupts.received():
            self.held.append(line)
        else:
            os.write(self.target, line)


@contextlib.contextmanager
def filtered_stderr():
    """Runs the block with file descriptor 2 filtered: native log lines are held back.

    Every other line reaches stderr as it is written, until Ctrl-C
    (`interrupts.received`). If the block raises (other than
    KeyboardInterrupt, and not after Ctrl-C), the held-back lines are written
    after it, so nothing is lost on a failure.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        forwarder = _Forwarder(capture.fileno(), saved)
        forwarder.start()
        failed = True
        try:
            yield
            failed = False
        except KeyboardInterrupt:
            failed = False  # Ctrl-C is no failure to explain: its caller says one line
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            forwarder.done.set()
            forwarder.join()
            forwarder.drain()
            if failed and forwarder.held and not interrupts.received():
                os.write(2, b"".join(forwarder.held))
            os.close(saved)
