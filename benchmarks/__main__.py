"""`python -m benchmarks NAME [options]`: runs one benchmark; with no NAME, lists them.

python -m benchmarks                 the index: names, what each measures, minutes, files
python -m benchmarks NAME --help     one benchmark's options
python -m benchmarks NAME [options]  runs it (`make bench NAME=...` adds the data it needs)
python -m benchmarks report [--check]
                                     BENCHMARKS.md's tables and benchmarks/README.md's
                                     index from benchmarks/results/*.json
"""

import importlib
import sys

from benchmarks import BENCHMARKS, BY_NAME, FIXED_OPTIONS


def index():
    """The index as plain text, one benchmark a line."""
    width = max(len(benchmark.name) for benchmark in BENCHMARKS)
    lines = ["usage: python -m benchmarks NAME [options]  (or: report [--check])", ""]
    for benchmark in BENCHMARKS:
        minutes = benchmark.minutes + (" min" if benchmark.minutes[0].isdigit() else "")
        lines.append(f"  {benchmark.name:<{width}}  {benchmark.measures} ({minutes})")
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(index())
        return 0
    name, options = argv[0], argv[1:]
    if name == "report":
        from benchmarks import report

        return report.main(options)
    if name not in BY_NAME:
        print(f"error: no benchmark {name!r}\n\n{index()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{BY_NAME[name].module}")
    return module.main([*FIXED_OPTIONS.get(name, ()), *options], prog=name)


if __name__ == "__main__":
    sys.exit(main())
