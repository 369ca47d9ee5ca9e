"""The latent explorer: a static web page that runs a run's exported generator in the browser.

`build_site` writes a self-contained folder that any static server can serve:

    index.html, explorer.js, latent.js, explorer.css   the page (keras_vae/page/)
    litert/core/, litert/wasm-utils/, litert/wasm/      LiteRT.js (npm @litertjs/core)
    model/generator.json, model/generator_*_b*.tflite   the run's static-shape generator

The page draws a grid from the run's prior (generator.json's latent_prior),
morphs between two picked samples (lerp or slerp) and moves a code along the
main directions of the training codes (latent_directions), all with
LiteRT.js's WASM runtime (WebGPU with ?accelerator=webgpu). `serve` serves
the folder on 127.0.0.1. No TensorFlow import: the site is built from the
export's files.
"""

import functools
import http.server
import json
import os
import shutil
import tempfile

from keras_vae import files

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page")
PAGE_FILES = ("index.html", "explorer.js", "latent.js", "explorer.css")
MODEL_DIR = "model"
# What the page loads from @litertjs/core: the bundle, the module it imports,
# and the WASM runtime (with relaxed SIMD, and the build for browsers without).
LITERT_FILES = {
    "@litertjs/core/dist/index.js": "litert/core/index.js",
    "@litertjs/wasm-utils/dist/index.js": "litert/wasm-utils/index.js",
    **{
        f"@litertjs/core/wasm/litert_wasm{kind}_internal.{ext}": (
            f"litert/wasm/litert_wasm{kind}_internal.{ext}"
        )
        for kind in ("", "_compat")
        for ext in ("js", "wasm")
    },
}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PORT = 8000


class SiteError(ValueError):
    """The page cannot be built: no export, no static-shape files, no LiteRT.js."""


def find_node_modules(node_modules=None):
    """The node_modules folder that holds @litertjs/core (from `npm ci` in the repo)."""
    candidates = (
        [node_modules]
        if node_modules
        else [os.path.join(os.getcwd(), "node_modules"), os.path.join(REPO_ROOT, "node_modules")]
    )
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, "@litertjs", "core", "package.json")):
            return candidate
    raise SiteError(
        f"LiteRT.js (npm @litertjs/core) is not in {' or '.join(candidates)}. Run `npm ci` in "
        "the keras_vae checkout (its package.json pins it), or pass --node-modules DIR."
    )


def latest_run(runs_dir="runs"):
    """The run dir under `runs_dir` whose export/generator.json is the newest."""
    exports = []
    if os.path.isdir(runs_dir):
        for name in os.listdir(runs_dir):
            metadata = os.path.join(runs_dir, name, "export", "generator.json")
            if os.path.isfile(metadata):
                exports.append((os.path.getmtime(metadata), os.path.join(runs_dir, name)))
    if not exports:
        raise SiteError(
            f"No run with an export under {os.path.abspath(runs_dir)}: run `make train` "
            "(or train.py) first, or pass --run-dir."
        )
    return max(exports)[1]


def static_files(export_dir):
    """generator.json's static-shape .tflite files; SiteError if there are none."""
    path = os.path.join(export_dir, "generator.json")
    try:
        with open(path) as f:
            metadata = json.load(f)
    except FileNotFoundError:
        raise SiteError(
            f"{export_dir} is not a generator export (it has no generator.json). "
            "Point --run-dir at a run of train.py, or --export at `keras-vae export`'s output."
        ) from None
    except json.JSONDecodeError as error:
        raise SiteError(f"{path} is not valid JSON ({error}).") from None
    found = [
        facts["path"]
        for facts in metadata.get("artifacts", {}).values()
        if facts.get("layout") == "static"
    ]
    if not found:
        raise SiteError(
            f"{export_dir} has no static-shape .tflite files (an export of an older "
            "keras_vae, or --static-batch-sizes with none): export it again with "
            "`keras-vae export --model RUN --overwrite`."
        )
    return found


def build_site(export_dir, out_dir, node_modules=None):
    """Writes the explorer for `export_dir` into `out_dir`, atomically; returns `out_dir`.

    An existing `out_dir` is replaced only if it is an earlier site (it holds
    explorer.js): never a user's folder.
    """
    tflite_files = static_files(export_dir)
    node_modules = find_node_modules(node_modules)
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isfile(os.path.join(out_dir, "explorer.js")):
        raise SiteError(f"{out_dir} exists and is not an explorer page; choose another --out.")
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    files.remove_stale_temporaries(out_dir)
    staging = tempfile.mkdtemp(prefix=files.temporary_prefix(out_dir), dir=os.path.dirname(out_dir))
    try:
        copies = {os.path.join(PAGE_DIR, name): name for name in PAGE_FILES}
        copies.update(
            {os.path.join(node_modules, source): target for source, target in LITERT_FILES.items()}
        )
        for name in ("generator.json", *tflite_files):
            copies[os.path.join(export_dir, name)] = os.path.join(MODEL_DIR, name)
        for source, target in copies.items():
            destination = os.path.join(staging, target)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(source, destination)
        for root, _, names in os.walk(staging):
            files.public_mode(root, directory=True)
            for name in names:
                files.public_mode(os.path.join(root, name))
        files.commit_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming needs it
        ".json": "application/json",
        ".tflite": "application/octet-stream",
    }

    def log_message(self, format, *args):  # quiet: one line per request is noise here
        pass


def make_server(site_dir, host="127.0.0.1", port=DEFAULT_PORT):
    """An HTTP server of `site_dir` (port 0: any free port; see `server_address`)."""
    handler = functools.partial(_Handler, directory=os.path.abspath(site_dir))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve(site_dir, host="127.0.0.1", port=DEFAULT_PORT):
    """Serves `site_dir` until interrupted; prints the page's address first."""
    with make_server(site_dir, host, port) as server:
        bound_host, bound_port = server.server_address[:2]
        print(f"Latent explorer: http://{bound_host}:{bound_port}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
