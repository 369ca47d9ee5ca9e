# keras_vae developer entry points. Each target creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
RUN_DIR ?= runs/fashion_mnist-default
TRAIN_ARGS ?=

.PHONY: install data browser train test lint format clean bench bench-quick bench-precision bench-evenness torch-venv bench-export bench-latent bench-latent-sweep bench-prior docs-mnist web web-deps bench-web bench-runtimes

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The PyTorch peer of `make bench`: its own virtualenv with a CPU build of torch
# (benchmarks/requirements-torch.txt), never a dependency of keras_vae.
TORCH_VENV ?= .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.installed
$(TORCH_STAMP): benchmarks/requirements-torch.txt
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-torch.txt
	touch $(TORCH_STAMP)

torch-venv: $(TORCH_STAMP)

# The explorer page's npm packages (LiteRT.js; puppeteer-core for the browser
# tests), pinned by package.json and package-lock.json.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	npm ci --silent --no-audit --no-fund

web-deps: $(NODE_STAMP)

# The latent explorer of the newest run under runs/ (or WEB_RUN), written to
# RUN/web/ and served on http://127.0.0.1:$(PORT)/ until Ctrl-C.
PORT ?= 8000
WEB_RUN ?=
web: install web-deps
	$(PY) -m keras_vae web $(if $(WEB_RUN),--run-dir $(WEB_RUN)) --port $(PORT)

# Debian's dataset-fashion-mnist where apt-get works; otherwise train.py falls
# back to tensorflow-datasets, which downloads Fashion-MNIST when online.
data:
	@if [ -f $(FASHION_MNIST) ]; then \
		echo "Fashion-MNIST: $(dir $(FASHION_MNIST))"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "apt-get failed: train.py will use tensorflow-datasets"; \
	else \
		echo "No Debian Fashion-MNIST and no root apt-get: train.py will use tensorflow-datasets"; \
	fi

train: install data
	$(PY) train.py --run-dir $(RUN_DIR) $(TRAIN_ARGS)

# What the tests need from Debian, installed as root with apt-get when missing
# (Fashion-MNIST comes from `make data`): chromium for the explorer page's
# browser tests, Node.js and npm for LiteRT.js.
browser:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "make browser: missing$$missing; install them (Debian: sudo apt-get install$$missing)" >&2; \
		exit 1; \
	fi

# One test process per CPU core (pytest-xdist), with everything the tests
# need: Fashion-MNIST, chromium, LiteRT.js and the PyTorch peer's $(TORCH_VENV).
test: install data browser web-deps torch-venv
	$(PY) -m pytest -n auto tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(TORCH_VENV) runs .pytest_cache node_modules

# Latency and size of the exported generator of $(RUN_DIR) (run `make train` first).
bench-export: install
	$(PY) -m benchmarks.export_latency --run-dir $(RUN_DIR)

# Every exported .tflite (dynamic and static, float32 / float16 / int8) on the
# LiteRT Interpreter and CompiledModel APIs, for the presets mlp, default, conv
# and keras_example (short runs trained into runs/bench-runtimes/ when
# missing), with a layer-by-layer profile of the int8 files of the conv
# presets; writes benchmarks/results/runtime_latency.json.
bench-runtimes: install data
	$(PY) -m benchmarks.runtime_latency

# Latent space quality, VAE vs deterministic autoencoder, on Fashion-MNIST:
# trains a classifier, a VAE and an Autoencoder (about 2 minutes on 2 CPU
# cores); writes benchmarks/results/latent_quality.json and docs/latent_*.png.
bench-latent: install data
	$(PY) -m benchmarks.latent_quality

# The same (a) and (b) over latent sizes, KL weights and likelihoods (about
# 10 minutes); writes benchmarks/results/latent_sweep.json.
bench-latent-sweep: install data
	$(PY) -m benchmarks.latent_sweep

# Quality per second of wall clock on Fashion-MNIST, one model after another
# in the same run: the presets mlp, keras_example and default and the PyTorch
# peer (pytorch/examples' VAE, in $(TORCH_VENV)), 900 s of training each, and
# the official Keras example's training written from scratch, 300 s (about 75
# minutes on 2 CPU cores); writes benchmarks/results/quality_per_second_full.json
# and docs/learning_curves_full.png.
bench: install data torch-venv
	$(PY) -m benchmarks.quality_per_second --torch-python $(TORCH_VENV)/bin/python

# float32 against mixed bfloat16 (train.py --mixed-precision) for mlp, default
# and conv, 5 epochs each (about 10 minutes); writes benchmarks/results/precision.json.
bench-precision: install data
	$(PY) -m benchmarks.precision

# Epoch wall times of train.py against a bare fit of the same model and data,
# and of README's two Python paths, 8 epochs of `default` each (about 6
# minutes); writes benchmarks/results/epoch_evenness.json.
bench-evenness: install data
	$(PY) -m benchmarks.epoch_evenness

# The same code on 5, 10 and 20 s budgets (about 5 minutes); writes runs/bench-quick/
bench-quick: install data torch-venv
	$(PY) -m benchmarks.quality_per_second --quick --torch-python $(TORCH_VENV)/bin/python

# Sample quality of the fitted latent priors on Fashion-MNIST (make train's
# run, trained first if missing) and on the real digits of $(MNIST_DIR): VAE,
# VAE with beta 0.2 and Autoencoder x standard / Gaussian / mixture priors
# (about 15 minutes on 2 CPU cores); writes benchmarks/results/prior_quality.json
# and docs/prior_samples_*.png.
MNIST_DIR ?= ../shared/data/mnist10k
bench-prior: install data
	$(PY) -m benchmarks.prior_quality --run-dir $(RUN_DIR) --mnist-dir $(MNIST_DIR)

# README's MNIST pictures (1 -> 7 morphs, the "7" vector, average digits, the
# 2-D latent map) from the real digits of $(MNIST_DIR), with train.py and keras-vae.
docs-mnist: install
	$(PY) -m benchmarks.mnist_pictures --mnist-dir $(MNIST_DIR)

# The explorer's latency in headless Chromium (LiteRT.js WASM) for each static
# .tflite of $(RUN_DIR)'s export (run `make train` first); writes
# benchmarks/results/web_latency.json.
bench-web: install web-deps
	$(PY) -m benchmarks.web_latency --run-dir $(RUN_DIR)
