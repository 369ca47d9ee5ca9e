"""The latent explorer: a static web page that runs a run's exported generator in the browser.

`build_site` writes a self-contained folder that any static server can serve:

    index.html, explorer.js, latent.js, explorer.css   the page (keras_vae/export/page/)
    litert/core/, litert/wasm-utils/, litert/wasm/      LiteRT.js (npm @litertjs/core)
    model/generator.json, model/generator_*_b*.tflite   the run's static-shape generator

The page draws a grid from the run's prior (generator.json's latent_prior),
morphs between two picked samples (lerp or slerp) and moves a code along the
main directions of the training codes (latent_directions), all with
LiteRT.js's WASM runtime (WebGPU with ?accelerator=webgpu). The site's
generator.json holds only what the page reads (no training config, no local
paths), and the export's generator.json is checked first: a file that is not
an export of keras-vae (a path leaving the export, a link, a missing field)
is refused with one line. `make_server` binds --host (127.0.0.1 by
default) and serves the site's regular files only: no directory listings,
no links. No TensorFlow
import: the site is built from the export's files.
"""

import errno
import http.server
import json
import math
import os
import re
import shlex
import shutil
import socket
import stat
import urllib.parse

from keras_vae.utils import atomic_files, names

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page")
PAGE_FILES = ("index.html", "explorer.js", "latent.js", "explorer.css")
MODEL_DIR = "model"
# The LiteRT.js release the page is tested with: package.json pins the same.
LITERT_VERSION = "2.5.3"
LITERT_PACKAGES = ("@litertjs/core", "@litertjs/wasm-utils")
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
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PORT = 8000
# What the site's generator.json keeps of a static artifact's facts.
PUBLISHED_FACTS = (
    "path",
    "variant",
    "layout",
    "batch",
    "inputs",
    "outputs",
    "output_order",
    "output_layout",
    "quantization",
    "size_bytes",
    "max_abs_error",
)
# A file name inside the export: no folder, no dot first, ending in .tflite.
_TFLITE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.tflite")
_VARIANT = re.compile(r"[A-Za-z0-9_]+")
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming needs it
    ".tflite": "application/octet-stream",
}


class SiteError(ValueError):
    """The page cannot be built or served: no export, a bad generator.json, no LiteRT.js."""


def litert_cache_dir():
    """Where `install_command` puts LiteRT.js: the user's cache, found from any directory."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "keras_vae", f"litertjs-{LITERT_VERSION}")


def install_command():
    """The shell command that installs the pinned LiteRT.js where `find_node_modules` looks."""
    packages = " ".join(f"{name}@{LITERT_VERSION}" for name in LITERT_PACKAGES)
    return f"npm install --prefix {shlex.quote(litert_cache_dir())} {packages}"


def find_node_modules(node_modules=None):
    """The node_modules folder that holds the pinned @litertjs/core.

    Looked for in ./node_modules, the checkout's node_modules (`npm ci`) and
    the user's cache (`install_command`), or only in `node_modules` if given.
    """
    if node_modules:
        candidates = [node_modules]
    else:
        candidates = [os.path.join(os.getcwd(), "node_modules")]
        if os.path.isfile(os.path.join(REPO_ROOT, "package.json")):  # a checkout (`npm ci`)
            candidates.append(os.path.join(REPO_ROOT, "node_modules"))
        candidates.append(os.path.join(litert_cache_dir(), "node_modules"))
    others = []
    for candidate in dict.fromkeys(candidates):
        try:
            with open(os.path.join(candidate, "@litertjs", "core", "package.json")) as f:
                version = json.load(f).get("version")
        except (OSError, ValueError, AttributeError):
            continue
        if version == LITERT_VERSION:
            return candidate
        others.append(f"{candidate} has {version}")
    found = f" ({'; '.join(others)})" if others else ""
    raise SiteError(
        f"LiteRT.js {LITERT_VERSION} (npm @litertjs/core) is not in "
        f"{' or '.join(dict.fromkeys(candidates))}{found}. Install it, from any directory: "
        f"`{install_command()}` (in a checkout `npm ci` does the same), or pass "
        "--node-modules DIR."
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


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _numbers(value, shape):
    """True if `value` is nested lists of finite numbers of `shape`."""
    if not shape:
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    return (
        isinstance(value, list)
        and len(value) == shape[0]
        and all(_numbers(item, shape[1:]) for item in value)
    )


def read_generator_json(export_dir):
    """generator.json of `export_dir`, checked for what the page and the build use.

    Raises SiteError, one line naming the file and what is wrong, for a file
    that is not an export of `keras-vae export`: not an object, no latent_dim
    or image_shape, artifacts that are not objects with a path, static files
    without variant or batch or with a path that leaves the export, a prior
    or main directions of the wrong shape, or no static-shape file at all.
    """
    path = os.path.join(export_dir, "generator.json")
    again = "export the run again with `keras-vae export --model RUN --overwrite`."
    try:
        with open(path) as f:
            metadata = json.load(f)
    except FileNotFoundError:
        raise SiteError(
            f"{export_dir} is not a generator export (it has no generator.json). "
            "Point --run-dir at a run of train.py, or --export at `keras-vae export`'s output."
        ) from None
    except ValueError as error:  # UnicodeDecodeError too
        raise SiteError(f"{path} is not valid JSON ({error}).") from None

    def refuse(what):
        raise SiteError(f"{path}: {what}; {again}")

    if not isinstance(metadata, dict):
        refuse(f"a JSON object expected, got {type(metadata).__name__}")
    latent_dim = metadata.get("latent_dim")
    if not _is_count(latent_dim):
        refuse(f'"latent_dim" must be a positive integer, got {latent_dim!r}')
    shape = metadata.get("image_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(_is_count(n) for n in shape)
        and shape[2] in (1, 3)
    ):
        refuse(f'"image_shape" must be [height, width, 1 or 3], got {shape!r}')
    artifacts = metadata.get("artifacts")
    if not isinstance(artifacts, dict):
        refuse(f'"artifacts" must be an object of files, got {type(artifacts).__name__}')
    static = {}
    for key, facts in artifacts.items():
        if not isinstance(facts, dict) or not isinstance(facts.get("path"), str):
            refuse(f'artifacts["{key}"] has no "path"')
        if facts.get("layout") != "static":
            continue  # the page runs static files only; the others stay out of the site
        if not _TFLITE_NAME.fullmatch(facts["path"]):
            refuse(
                f'artifacts["{key}"]: path {facts["path"]!r} is not a .tflite file '
                "name inside the export"
            )
        variant = facts.get("variant")
        if not (isinstance(variant, str) and _VARIANT.fullmatch(variant)):
            refuse(f'artifacts["{key}"] has no "variant" (float32, float16 or int8)')
        if not _is_count(facts.get("batch")):
            refuse(f'artifacts["{key}"] has no "batch" (a positive integer)')
        static[key] = facts
    if not static:
        raise SiteError(
            f"{export_dir} has no static-shape .tflite files (an export of an older "
            "keras_vae, or --static-batch-sizes with none): export it again with "
            "`keras-vae export --model RUN --overwrite`."
        )
    paths = [facts["path"] for facts in static.values()]
    if len(set(paths)) != len(paths):
        refuse("two static artifacts name the same path")
    prior = metadata.get("latent_prior")
    if not isinstance(prior, dict):
        refuse('"latent_prior" is missing')
    if prior.get("kind") == "two_stage":
        _check_prior_files(metadata.get("prior_artifacts"), latent_dim, refuse)
    else:
        _check_mixture(prior, latent_dim, refuse)
    directions = metadata.get("latent_directions")
    scales = directions.get("scales") if isinstance(directions, dict) else None
    count = len(scales) if isinstance(scales, list) else 0
    if not (
        isinstance(directions, dict)
        and _numbers(scales, [count])
        and _numbers(directions.get("directions"), [count, latent_dim])
    ):
        refuse('"latent_directions" must hold scales [k] and directions [k, latent_dim]')
    named = metadata.get("attribute_directions")
    if named is not None:
        labels = named.get("names") if isinstance(named, dict) else None
        count = len(labels) if isinstance(labels, list) else 0
        if not (
            count
            and all(isinstance(label, str) for label in labels)
            and _numbers(named.get("vectors"), [count, latent_dim])
        ):
            refuse('"attribute_directions" must be null or names [k] and vectors [k, latent_dim]')
    conditioning = metadata.get("conditioning")
    if conditioning is not None:
        labels = conditioning.get("names") if isinstance(conditioning, dict) else None
        if not (
            isinstance(labels, list)
            and labels
            and all(isinstance(label, str) for label in labels)
            and conditioning.get("label_type") in names.LABEL_TYPES
        ):
            refuse(
                '"conditioning" must be null or a label_type (class, attributes) and the '
                "names of the labels"
            )
    label_weights = prior.get("label_weights")
    if label_weights is not None and len(label_weights) != len(
        (conditioning or {}).get("names", ())
    ):
        refuse('"latent_prior" has label_weights but not one row per label of "conditioning"')
    return metadata


def _check_mixture(prior, latent_dim, refuse):
    from keras_vae.models import priors  # NumPy only

    try:
        mixture = priors.GaussianMixture(
            prior.get("weights", []),
            prior.get("means", []),
            prior.get("cholesky", []),
            kind=prior.get("kind", "gmm"),
            label_weights=prior.get("label_weights"),
        )
    except (ValueError, TypeError) as error:
        refuse(f'"latent_prior" is not a Gaussian mixture ({error})')
    if mixture.means.shape[1] != latent_dim:
        refuse(f'"latent_prior" has {mixture.means.shape[1]}-D means, latent_dim is {latent_dim}')


def _check_prior_files(files, latent_dim, refuse):
    """A two-stage prior's static files (`prior_artifacts`): each a path and a batch."""
    if not isinstance(files, dict) or not files:
        refuse(
            'a two_stage "latent_prior" needs "prior_artifacts", its static '
            "prior_float32_b*.tflite files: export with static batch sizes"
        )
    for key, facts in files.items():
        if not (
            isinstance(facts, dict)
            and isinstance(facts.get("path"), str)
            and _TFLITE_NAME.fullmatch(facts["path"])
            and _is_count(facts.get("batch"))
        ):
            refuse(f'prior_artifacts["{key}"] needs a .tflite "path" and a "batch"')


def _page_models(metadata):
    """The .tflite files the page loads: the static generators and a two-stage prior's."""
    files = [f for f in metadata["artifacts"].values() if f.get("layout") == "static"]
    if metadata["latent_prior"].get("kind") == "two_stage":
        files += list(metadata["prior_artifacts"].values())
    return files


def static_files(export_dir):
    """generator.json's static-shape .tflite files; SiteError if there are none."""
    metadata = read_generator_json(export_dir)
    return [f["path"] for f in _page_models(metadata)]


def published_metadata(metadata):
    """What the page reads of a checked generator.json: no training config, no local paths."""
    prior = metadata["latent_prior"]
    directions = metadata["latent_directions"]
    training = metadata.get("training_config")
    if prior.get("kind") == "two_stage":
        latent_prior = {"kind": "two_stage", "components": 1, "latent_dim": metadata["latent_dim"]}
    else:
        latent_prior = {
            "kind": prior.get("kind", "gmm"),
            "components": len(prior["weights"]),
            "latent_dim": metadata["latent_dim"],
            "weights": prior["weights"],
            "means": prior["means"],
            "cholesky": prior["cholesky"],
        }
        if prior.get("label_weights") is not None:
            latent_prior["label_weights"] = prior["label_weights"]
    published = {
        "latent_dim": metadata["latent_dim"],
        "image_shape": metadata["image_shape"],
        "latent_prior": latent_prior,
        "latent_directions": {
            "scales": directions["scales"],
            "directions": directions["directions"],
        },
        "artifacts": {
            key: {name: facts[name] for name in PUBLISHED_FACTS if name in facts}
            for key, facts in metadata["artifacts"].items()
            if facts.get("layout") == "static"
        },
    }
    if prior.get("kind") == "two_stage":
        published["prior_artifacts"] = {
            key: {"path": facts["path"], "batch": facts["batch"]}
            for key, facts in metadata["prior_artifacts"].items()
        }
    named = metadata.get("attribute_directions")
    if named is not None:
        published["attribute_directions"] = {
            "names": named["names"],
            "vectors": named["vectors"],
        }
    conditioning = metadata.get("conditioning")
    if conditioning is not None:
        published["conditioning"] = {
            "label_type": conditioning["label_type"],
            "names": conditioning["names"],
        }
    for key in ("dataset", "likelihood", "keras_vae_version"):
        if isinstance(metadata.get(key), str):
            published[key] = metadata[key]
    if isinstance(training, dict) and isinstance(training.get("preset"), str):
        published["preset"] = training["preset"]
    return published


def _read_model_file(export_dir, name):
    """The bytes of the export's .tflite `name`: a regular file in the folder, never a link."""
    path = os.path.join(export_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SiteError(
                f"{path} is a symbolic link: the export's files must be plain files in it; "
                "export the run again with `keras-vae export --model RUN --overwrite`."
            ) from None
        raise SiteError(f"{path}: {error.strerror}; export the run again.") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SiteError(f"{path} is not a regular file; export the run again.")
        content = f.read()
    if content[4:8] != b"TFL3":
        raise SiteError(f"{path} is not a .tflite file (no TFL3 identifier); export the run again.")
    return content


def not_a_site(directory):
    """Why `directory` is not exactly a page `build_site` wrote (a short reason), or "" if it is.

    A page holds explorer.js and nothing but what a build writes: the page
    files, LiteRT.js's files, model/generator.json and model/*.tflite, as
    plain files (no links).
    """
    if not os.path.isfile(os.path.join(directory, "explorer.js")):
        return "it has no explorer.js"
    written = {*PAGE_FILES, *LITERT_FILES.values(), f"{MODEL_DIR}/generator.json"}
    folders = {MODEL_DIR} | {
        "/".join(name.split("/")[:end]) for name in written for end in range(1, name.count("/") + 1)
    }
    others = []
    for root, dirs, files in os.walk(directory):  # does not enter linked folders
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, directory).replace(os.sep, "/")
            folder, _, file_name = relative.rpartition("/")
            if os.path.islink(path):
                others.append(relative)
            elif name in dirs:
                if relative not in folders:
                    others.append(relative)
            elif not (
                relative in written or (folder == MODEL_DIR and _TFLITE_NAME.fullmatch(file_name))
            ):
                others.append(relative)
        prefix = os.path.relpath(root, directory).replace(os.sep, "/")
        # Only the page's own folders are entered: an extra folder is named once.
        dirs[:] = [d for d in dirs if os.path.normpath(f"{prefix}/{d}") in folders]
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return f"it also holds {shown}, which the page build does not write"
    return ""


def build_site(export_dir, out_dir, node_modules=None):
    """Writes the explorer for `export_dir` into `out_dir`, atomically; returns `out_dir`.

    An existing `out_dir` is replaced only if it is exactly an earlier page
    (see `not_a_site`), also when it changes during the build: never a
    user's folder.
    """
    metadata = read_generator_json(export_dir)
    models = {
        facts["path"]: _read_model_file(export_dir, facts["path"])
        for facts in _page_models(metadata)
    }
    node_modules = find_node_modules(node_modules)
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        # A page moved aside by a killed build is put back first (or left aside).
        atomic_files.remove_stale_temporaries(out_dir)
    except OSError as error:
        raise SiteError(
            f"cannot write the page into {parent} ({error.strerror}): pass --out DIR, "
            "a folder you can write to."
        ) from None
    if os.path.lexists(out_dir):
        reason = (
            "it is not a folder"
            if os.path.islink(out_dir) or not os.path.isdir(out_dir)
            else not_a_site(out_dir)
        )
        if reason:
            raise SiteError(
                f"{out_dir} exists and is not an explorer page ({reason}); choose another --out."
            )
    try:
        with (
            atomic_files.destination_lock(out_dir, alternative="choose another --out"),
            atomic_files.staged_directory(out_dir, replaceable=_replaceable_site) as staging,
        ):
            _write_site(staging, metadata, models, node_modules)
    except atomic_files.DestinationChanged:
        raise SiteError(
            f"{out_dir} was created or changed by someone else during the build; it was "
            "left as it is. Build again, or choose another --out."
        ) from None
    except OSError as error:
        if os.fspath(error.filename or "") != out_dir:
            raise
        raise SiteError(
            f"cannot write the page into {parent} ({error.strerror}): pass --out DIR, "
            "a folder you can write to."
        ) from None
    return out_dir


def _write_site(staging, metadata, models, node_modules):
    """Writes the page, LiteRT.js and the model files into `staging`."""
    copies = {os.path.join(PAGE_DIR, name): name for name in PAGE_FILES}
    copies.update(
        {os.path.join(node_modules, source): target for source, target in LITERT_FILES.items()}
    )
    writes = {os.path.join(MODEL_DIR, name): content for name, content in models.items()}
    writes[os.path.join(MODEL_DIR, "generator.json")] = (
        json.dumps(published_metadata(metadata), indent=1) + "\n"
    ).encode()
    for target in [*copies.values(), *writes]:
        os.makedirs(os.path.dirname(os.path.join(staging, target)), exist_ok=True)
    for source, target in copies.items():
        shutil.copyfile(source, os.path.join(staging, target))
    for target, content in writes.items():
        with open(os.path.join(staging, target), "wb") as f:
            f.write(content)
    for root, _, file_names in os.walk(staging):
        atomic_files.public_mode(root, directory=True)
        for name in file_names:
            atomic_files.public_mode(os.path.join(root, name))


def _replaceable_site(directory):
    return os.path.isdir(directory) and not os.path.islink(directory) and not not_a_site(directory)


def site_files(site_dir):
    """{URL path: file} of the regular files in `site_dir`, links and what they lead to left out."""
    root = os.path.realpath(site_dir)
    found = {}
    for folder, _, file_names in os.walk(root):  # does not enter linked folders
        for name in file_names:
            path = os.path.join(folder, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                found[os.path.relpath(path, root).replace(os.sep, "/")] = path
    return found


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of the site's files; 404 for anything else, directories included."""

    server_version = "keras-vae-web"

    def do_GET(self):
        self._send(body=True)

    def do_HEAD(self):
        self._send(body=False)

    def _open(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        name = "index.html" if path == "/" else path[1:]
        found = self.server.files.get(name)
        if found is None or not found.startswith(self.server.root + os.sep):
            return None, None
        try:
            fd = os.open(found, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None, None
        f = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.path.realpath(found) != found:
            f.close()
            return None, None
        return name, f

    def _send(self, body):
        name, f = self._open()
        if f is None:
            self.send_error(404, "Not found")
            return
        with f:
            self.send_response(200)
            media = _MEDIA_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if body:
                shutil.copyfileobj(f, self.wfile)

    def log_message(self, format, *args):  # quiet: one line per request is noise here
        pass


class SiteServer(http.server.ThreadingHTTPServer):
    """Serves the files `publish` found in a site (none until then)."""

    def __init__(self, address):
        self.root = ""
        self.files = {}
        super().__init__(address, _Handler)

    def publish(self, site_dir):
        """Serves the regular files now in `site_dir` (files added later are not served)."""
        self.root = os.path.realpath(site_dir)
        self.files = site_files(site_dir)


def make_server(site_dir=None, host="127.0.0.1", port=DEFAULT_PORT):
    """A bound SiteServer of `site_dir` (port 0: any free port; see `server_address`).

    Without `site_dir` it serves nothing until `publish`: bind first, build
    then, so a port in use fails before anything is written.
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise SiteError(f"--port {port}: a port is 0 to 65535 (0 picks a free one).")
    try:
        server = SiteServer((host, port))
    except socket.gaierror as error:
        raise SiteError(f"--host {host}: not a known address ({error.strerror}).") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SiteError(f"port {port} is in use: pass --port N (0 picks a free one).") from None
        if error.errno == errno.EACCES:
            raise SiteError(
                f"port {port} needs more privileges ({error.strerror}): pass --port N "
                "above 1023 (0 picks a free one)."
            ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise SiteError(
                f"--host {host} is not an address of this machine: pass --host 127.0.0.1."
            ) from None
        raise SiteError(f"cannot serve on {host}:{port} ({error.strerror}).") from None
    if site_dir is not None:
        server.publish(site_dir)
    return server


def serve(server):
    """Serves until interrupted; prints the page's address first; closes the server."""
    with server:
        bound_host, bound_port = server.server_address[:2]
        print(f"Latent explorer: http://{bound_host}:{bound_port}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
