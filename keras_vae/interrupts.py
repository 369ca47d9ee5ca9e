"""Ctrl-C in the command-line programs: one line on stderr, never a traceback.

Everything the programs write is written atomically (a killed or interrupted
write leaves the old file), and a run dir resumes where it stopped, so an
interrupted command has lost nothing and can be run again.
"""

import signal
import threading

# The exit status a shell gives a program that SIGINT ended.
INTERRUPTED_STATUS = 130


def shield():
    """Ctrl-C no longer stops this process: its work is done and its result goes out whole.

    Called by a program's `main` once the work has ended, so that an interrupt
    that arrives while the result is printed or the interpreter shuts down
    neither cuts the output nor turns a success into status 130.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
