"""Ctrl-C in the command-line programs: one line on stderr, never a traceback.

Everything the programs write is written atomically (a killed or interrupted
write leaves the old file), and a run dir resumes where it stopped, so an
interrupted command has lost nothing and can be run again.
"""

import contextlib
import signal
import sys
import threading

# The exit status a shell gives a program that SIGINT ended.
INTERRUPTED_STATUS = 130

# Set by the command's own SIGINT handler: Ctrl-C came during the running command.
_received = threading.Event()


def received():
    """True once Ctrl-C came during the command that `finish` runs in this process."""
    return _received.is_set()


def shield():
    """Ctrl-C no longer stops this process: its work is done and its result goes out whole.

    Called by a program's `main` once the work has ended, so that an interrupt
    that arrives while the result is printed or the interpreter shuts down
    neither cuts the output nor turns a success into status 130.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _remembered_interrupt(own_process):
    """Yields a list that holds True once Ctrl-C came during the block.

    Python raises KeyboardInterrupt where the main thread is when the signal
    arrives; code it interrupts inside an extension module (an import of
    numpy.random, say) can lose it, and the command would then go on as if
    nothing happened. In the process's own command the handler also
    remembers the signal, so a lost KeyboardInterrupt still ends the command
    as interrupted once the work returns.
    """
    interrupted = []
    if not (own_process and threading.current_thread() is threading.main_thread()):
        yield interrupted
        return

    def handler(signum, frame):
        _received.set()
        interrupted.append(True)
        raise KeyboardInterrupt

    _received.clear()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
        _received.clear()


def finish(work, prog, again, own_process):
    """Runs a command's `work()`, which returns `(error, result)`, and reports its end.

    Ctrl-C prints `PROG: interrupted; nothing was lost: AGAIN.`, an error
    `PROG: error: ERROR`, each one line on stderr.

    Args:
        work: the command; returns the error to report (or None) and its result.
        prog: the program's name in the messages.
        again: what to do after an interrupt, e.g. "run the same command again".
        own_process: True when the command is the process (`main(argv=None)`):
            once the work is done Ctrl-C is ignored (`shield`).

    Returns:
        `(status, result)`: exit status 0 with the result, 2 after an error,
        `INTERRUPTED_STATUS` after Ctrl-C (result None for both).
    """
    with _remembered_interrupt(own_process) as interrupted:
        try:
            error, result = work()
        except KeyboardInterrupt:
            interrupted.append(True)
        except Exception:
            # An extension module that lost the KeyboardInterrupt (TensorFlow
            # tracing a function, say) can fail on its half-built state next.
            if not interrupted:
                raise
    if interrupted:
        print(f"{prog}: interrupted; nothing was lost: {again}.", file=sys.stderr)
        return INTERRUPTED_STATUS, None
    if own_process:
        shield()
    if error is not None:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2, None
    return 0, result
