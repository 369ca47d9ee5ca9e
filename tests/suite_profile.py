"""Where the suite's time goes: `pytest -n auto -p tests.suite_profile tests`.

A pytest plugin, loaded only when asked for. In every process of the run it
times each `train_and_evaluate` (train.py's and `keras-vae train`'s whole run),
each `export_generator` (inside a run or called on its own) and each child
process the tests start (from its start to the `wait` that reaps it), and at
the end it prints their counts and seconds, the child processes grouped by
program. The seconds are wall time on the worker that ran them; a run's export
counts under both. Nothing is timed in the processes the tests start.
"""

import collections
import functools
import json
import os
import subprocess
import tempfile
import time

LOG = "KERAS_VAE_SUITE_PROFILE"  # the environment variable naming the run's log file


def _log(kind, seconds, what=""):
    with open(os.environ[LOG], "a") as f:
        f.write(json.dumps({"kind": kind, "seconds": seconds, "what": what}) + "\n")


def _timed(module, name, kind):
    function = getattr(module, name)

    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _log(kind, time.perf_counter() - start)

    setattr(module, name, timed)


def _program(args):
    """A child process's program: `python SCRIPT`, `python -m MODULE`, `python -c`, or its name."""
    argv = [str(a) for a in (args if isinstance(args, (list, tuple)) else [args])]
    name = os.path.basename(argv[0])
    if name.startswith("python") and len(argv) > 1:
        if argv[1] in ("-m", "-c"):
            return f"python {argv[1]} {argv[2].split()[0] if argv[1] == '-m' else ''}".strip()
        return f"python {os.path.basename(argv[1])}"
    if name == "node" and len(argv) > 1:
        return f"node {os.path.basename(argv[1])}"
    return name


def pytest_configure(config):
    worker = hasattr(config, "workerinput")
    if not worker:  # the controller: a fresh log, which the workers inherit
        path = os.path.join(tempfile.gettempdir(), f"keras_vae_suite_profile_{os.getpid()}.jsonl")
        os.environ[LOG] = path
        if os.path.exists(path):
            os.remove(path)
    from keras_vae.export import generator
    from keras_vae.training import train

    _timed(train, "train_and_evaluate", "in-process training runs")
    _timed(generator, "export_generator", "exports")
    if not worker and config.getoption("numprocesses", None):
        return  # the controller of pytest-xdist workers: its children are the workers
    start_process, wait = subprocess.Popen.__init__, subprocess.Popen.wait

    def started(self, args, *rest, **kwargs):
        start_process(self, args, *rest, **kwargs)
        self._profile = (time.perf_counter(), _program(args))

    def reaped(self, *args, **kwargs):
        code = wait(self, *args, **kwargs)
        profile = self.__dict__.pop("_profile", None)
        if profile:
            _log("child processes", time.perf_counter() - profile[0], profile[1])
        return code

    subprocess.Popen.__init__, subprocess.Popen.wait = started, reaped


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    path = os.environ[LOG]
    if not os.path.exists(path):
        return
    totals = collections.defaultdict(lambda: [0, 0.0])
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            for key in (row["kind"], f"  {row['what']}" if row["what"] else None):
                if key:
                    totals[key][0] += 1
                    totals[key][1] += row["seconds"]
    terminalreporter.write_sep("-", "where the time went (seconds on the workers)")
    kinds = ("in-process training runs", "exports", "child processes")
    for kind in kinds:
        count, seconds = totals.get(kind, (0, 0.0))
        terminalreporter.write_line(f"{kind}: {count}, {seconds:.1f} s")
        if kind == "child processes":
            programs = sorted(
                (k for k in totals if k.startswith("  ")), key=lambda k: -totals[k][1]
            )
            for program in programs:
                count, seconds = totals[program]
                terminalreporter.write_line(f"{program}: {count}, {seconds:.1f} s")
