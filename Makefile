# keras_vae developer entry points. Each target creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
RUN_DIR ?= runs/fashion_mnist-default
TRAIN_ARGS ?=

.PHONY: install data browser train test lint format clean bench torch-venv web web-deps emoji bench-data

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

# A folder of real colour pictures, offline: every 64x64 emoji of npm's
# emoji-datasource-google (Noto Emoji, Apache-2.0) and emoji-datasource-twitter
# (Twemoji, CC-BY 4.0), pinned, as data/emoji/<category>/*.png with an
# attributes.csv (benchmarks/emoji_pictures.py says which).
EMOJI_VERSION := 16.0.0
EMOJI_NPM := data/emoji-npm
EMOJI_STAMP := $(EMOJI_NPM)/.installed-$(EMOJI_VERSION)
$(EMOJI_STAMP):
	mkdir -p $(EMOJI_NPM)
	npm install --silent --no-audit --no-fund --prefix $(EMOJI_NPM) \
		emoji-datasource-google@$(EMOJI_VERSION) emoji-datasource-twitter@$(EMOJI_VERSION)
	touch $(EMOJI_STAMP)

emoji: install $(EMOJI_STAMP)
	$(PY) -m benchmarks emoji-pictures --folder-only --npm-dir $(EMOJI_NPM) --folder data/emoji

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
	rm -rf $(VENV) $(TORCH_VENV) runs .pytest_cache node_modules data

# The benchmarks, one runner: `make bench NAME=... [BENCH_ARGS=...]` runs
# `python -m benchmarks NAME`, with what that benchmark needs installed first
# and the options below (benchmarks/README.md lists the names, what each
# measures, how long it runs and what it writes). Without NAME: `quality`,
# quality per second beside the PyTorch peer (about 70 minutes on 2 CPU
# cores). `make bench NAME=report` regenerates BENCHMARKS.md's tables from
# benchmarks/results/. Only a NAME given on the command line counts.
NAME := $(if $(filter command line,$(origin NAME)),$(NAME),quality)
BENCH_ARGS ?=
MNIST_DIR ?= ../shared/data/mnist10k
BENCH_NEEDS_quality := data torch-venv
BENCH_NEEDS_quick := data torch-venv
BENCH_NEEDS_step-profile := data
BENCH_NEEDS_precision := data
BENCH_NEEDS_evenness := data
BENCH_NEEDS_runtimes := data
BENCH_NEEDS_web := web-deps
BENCH_NEEDS_latent := data
BENCH_NEEDS_latent-sweep := data
BENCH_NEEDS_prior := data
BENCH_NEEDS_conditional := data
BENCH_OPTIONS_quality := --torch-python $(TORCH_VENV)/bin/python
BENCH_OPTIONS_quick := --torch-python $(TORCH_VENV)/bin/python
BENCH_OPTIONS_export := --run-dir $(RUN_DIR)
BENCH_OPTIONS_web := --run-dir $(RUN_DIR)
BENCH_OPTIONS_prior := --mnist-dir $(MNIST_DIR)
BENCH_OPTIONS_conditional := --mnist-dir $(MNIST_DIR)
BENCH_OPTIONS_mnist-pictures := --mnist-dir $(MNIST_DIR)

BENCH_NEEDS_emoji-pictures := emoji
BENCH_NEEDS_data := data emoji

bench: install $(BENCH_NEEDS_$(NAME))
	$(PY) -m benchmarks $(NAME) $(BENCH_OPTIONS_$(NAME)) $(BENCH_ARGS)

# The data benchmark by its own name: folders streamed from disk against the IDX path.
bench-data:
	$(MAKE) bench NAME=data
