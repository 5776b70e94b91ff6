# Two commands do all the set-up on a fresh machine:
#   make book   builds the HTML book into _build/html (offline-ready)
#   make test   lint, unit tests, nbval on every chapter (twice: this CPU's torch kernels and
#               the generic ones), the strict build, browser tests, a Colab-like runtime,
#               and live JupyterLab
# Both create .venv and install the pinned requirements when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MATHJAX := build-assets/site/mathjax/.version
CHAPTERS := $(wildcard chapters/*.ipynb)
NBVAL_FLAGS := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600

.PHONY: book test lint unit notebooks notebooks-generic-kernels build browser colab live chromium clean

book: $(INSTALLED) $(MATHJAX)
	$(BIN)/python tools/notebooks.py refresh
	$(MAKE) --no-print-directory build

# The two nbval passes run side by side, and so do the browser tests and the Colab-like runtime:
# most chapter cells use one core, so the pairs share the two cores instead of queueing.
# --output-sync prints each target's output whole, once it ends.
test:
	$(MAKE) --no-print-directory lint unit
	$(MAKE) --no-print-directory -j2 --output-sync=target notebooks notebooks-generic-kernels
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory -j2 --output-sync=target browser colab
	$(MAKE) --no-print-directory live

lint: $(INSTALLED)
	$(BIN)/ruff check .

unit: $(INSTALLED)
	$(BIN)/pytest tests --ignore=tests/browser

notebooks: $(INSTALLED)
	$(BIN)/pytest $(NBVAL_FLAGS) -p no:cacheprovider $(CHAPTERS)

# A reader's CPU may run other torch kernels than this one, which changes the last digits of
# float32 arithmetic and, through chaotic training, whole runs. Run every chapter again with
# torch's generic kernels, so that no printed value or hidden check relies on this CPU.
notebooks-generic-kernels: $(INSTALLED)
	ATEN_CPU_CAPABILITY=default $(BIN)/pytest $(NBVAL_FLAGS) -p no:cacheprovider $(CHAPTERS)

# -W turns every warning (a broken reference, a stored cell error, a bad directive) into a
# failure; --keep-going reports all of them at once.
build: $(INSTALLED) $(MATHJAX)
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "Open the book: $(CURDIR)/_build/html/index.html"

browser: $(INSTALLED) chromium
	$(BIN)/pytest tests/browser

# Google Colab's preinstalled versions (ipywidgets 7.7, IPython 7.34, numpy 2.0, ...) in a venv
# cached under build-assets/colab-venv: the book's install cell must change none of them, and
# every chapter must run there without an error. Its file is not named test_*.py, so that
# `pytest tests` (the unit step) leaves these minutes-long checks to this step.
colab: $(INSTALLED)
	$(BIN)/pytest -p no:cacheprovider tests/colab/colab_runtime.py

# Real JupyterLab on 127.0.0.1, driven by Chromium: Run All on every chapter with a slider,
# then move each slider with the keyboard.
live: $(INSTALLED) chromium
	$(BIN)/pytest -p no:cacheprovider tests/live/jupyterlab_live.py

chromium:
	@tools/ensure_chromium.sh

$(INSTALLED): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "This book needs Python 3.10 or newer; $(PYTHON) is " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(MATHJAX):
	tools/fetch_mathjax.sh

clean:
	rm -rf _build build-assets
