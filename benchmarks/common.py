"""What every benchmark records next to its figures: the machine and the command."""

import os
import platform

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


def command_line(module, args):
    """`python -m module --flag value ...` with every parsed argument spelled out."""
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    return f"python -m {module} {flags}"
