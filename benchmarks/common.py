"""What every benchmark shares: its parser, its record of machine and command, timing.

Imports neither TensorFlow nor Keras at module level, so the PyTorch peer
(`benchmarks.pytorch_reference`, run in a virtualenv without them) uses
`median_ms` from here too.
"""

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join("benchmarks", "results")


def argument_parser(prog, doc):
    """The parser of `python -m benchmarks PROG`, described by `doc`'s first paragraph."""
    return argparse.ArgumentParser(
        prog=f"python -m benchmarks {prog}", description=doc.split("\n\n")[0]
    )


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


# The /proc/cpuinfo flags that decide TensorFlow's CPU kernels (the CPU model changes
# between sessions here: Zen 3 with AVX2 only, Zen 4 and Zen 5 with AVX-512 and BF16).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu_identity():
    """`(family/model, [flags of SPEED_FLAGS it has])` from /proc/cpuinfo (empty off Linux)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    family = f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"
    return family, [flag for flag in SPEED_FLAGS if flag in flags]


def machine_facts():
    import keras
    import tensorflow as tf

    family, flags = cpu_identity()
    return {
        "cpu": cpu_model(),
        "cpu_family": family,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def run_facts(name, args):
    """`command`, `machine` and `settings` entries for a benchmark's result JSON."""
    return {
        "command": command_line(name, args),
        "machine": machine_facts(),
        "settings": vars(args),
    }


def command_line(name, args):
    """`python -m benchmarks NAME --flag value ...` with every parsed argument spelled out.

    Values are shell-quoted (an empty string is `''`), a list's items one by
    one (`nargs="+"`); a flag whose value is
    True is written alone and one whose value is False or None is left out,
    as `store_true` flags are typed.
    """
    words = ["python", "-m", "benchmarks", name]
    for key, value in vars(args).items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *(shlex.quote(str(item)) for item in value)]
        elif value is not False and value is not None:
            words += [flag, shlex.quote(str(value))]
    return " ".join(words)


def median_ms(call, calls, warmup=10):
    """The median wall time of `call()` in ms over `calls` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run_child(name, argv, out):
    """Runs `python -m benchmarks NAME *argv --out OUT` in a fresh process; returns OUT's JSON.

    The benchmarks that compare models train each in its own process, so
    that one model's teardown (a `fit`'s iterator, a mixed-precision policy)
    never lands on the next one's clock.
    """
    command = [sys.executable, "-m", "benchmarks", name, *map(str, argv), "--out", out]
    subprocess.run(command, check=True, cwd=ROOT)
    with open(out) as f:
        return json.load(f)
