"""The latent explorer's generator latency in headless Chromium (LiteRT.js), per static file.

    python -m benchmarks web --run-dir runs/fashion_mnist-default   # make bench NAME=web

Builds the run's explorer page, serves it on 127.0.0.1 and, for each variant
(float32, float16, int8), times the page's own `generator.decode` (input
tensor, `run`, reading both outputs back) at each static batch: the median
of 20 samples after 5 warm-up samples, each the mean of 10 calls (the
browser's clock ticks in 0.1 ms), with LiteRT.js's WASM runtime
(tests/browser_check.mjs --bench). Writes --out (JSON) and prints a table.
"""

import json
import os
import subprocess
import threading

from benchmarks.common import argument_parser, run_facts
from keras_vae.export import explorer
from keras_vae.utils.atomic_files import atomic_write_json

DRIVER = os.path.join(explorer.REPO_ROOT, "tests", "browser_check.mjs")


def main(argv=None, prog="web"):
    parser = argument_parser(prog, __doc__)
    parser.add_argument("--run-dir", default="runs/fashion_mnist-default")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    parser.add_argument("--out", default="benchmarks/results/web_latency.json")
    args = parser.parse_args(argv)

    site = explorer.build_site(
        os.path.join(args.run_dir, "export"), os.path.join(args.run_dir, "web")
    )
    server = explorer.make_server(site, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}/"
    version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True)
    result = {
        **run_facts(prog, args),
        "browser": version.stdout.strip(),
        "accelerator": "wasm",
        "variants": {},
    }
    try:
        for variant in ("float32", "float16", "int8"):
            seen = subprocess.run(
                ["node", DRIVER, f"{address}?variant={variant}", "--bench"],
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
                env={**os.environ, "CHROMIUM": args.chromium},
            )
            report = json.loads(seen.stdout.strip().splitlines()[-1])
            if report["state"] != "ready":
                raise RuntimeError(f"{variant}: the page did not start: {report['error_text']}")
            result["variants"][variant] = report["bench"]
    finally:
        server.shutdown()
        server.server_close()
    atomic_write_json(args.out, result)
    print(f"{result['machine']}; {result['browser']}")
    print(table({args.run_dir: result}))


def table(results):
    """ms per call of each static file, one column per result (`{column name: result}`)."""
    names = list(results)
    lines = ["| file | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    first = results[names[0]]["variants"]
    for variant, batches in first.items():
        for batch in sorted(batches, key=int):
            cells = [f"{r['variants'][variant][batch]['median_ms']:.3f}" for r in results.values()]
            lines.append(f"| `generator_{variant}_b{batch}.tflite` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
