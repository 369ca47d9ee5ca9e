"""What every benchmark records next to its figures: the machine and the command."""

import os
import platform
import shlex

import keras
import tensorflow as tf


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else `platform.processor()`."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_facts():
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def run_facts(module, args):
    """`command`, `machine` and `settings` entries for a benchmark's result JSON."""
    return {
        "command": command_line(module, args),
        "machine": machine_facts(),
        "settings": vars(args),
    }


def command_line(module, args):
    """`python -m module --flag value ...` with every parsed argument spelled out.

    Values are shell-quoted (an empty string is `''`); a flag whose value is
    True is written alone and one whose value is False or None is left out,
    as `store_true` flags are typed.
    """
    words = ["python", "-m", module]
    for key, value in vars(args).items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is not False and value is not None:
            words += [flag, shlex.quote(str(value))]
    return " ".join(words)
