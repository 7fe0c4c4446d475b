# The image storage report. `make report` and `make test` each set up the environment they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICK ?=
DATASET ?= auto
IMAGE_SIZE ?=
REPORT_ARGS ?=
# setuptools prints a BuildBackendWarning on every editable install (a caution about folder names, not a
# problem here); the install's own errors still show.
PIP_QUIET := PYTHONWARNINGS=ignore

.PHONY: setup report pdf-deps lab data test benchmark clean distclean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP_QUIET) $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Chromium prints the PDF. Installed with apt when we are root; otherwise the report still writes HTML.
pdf-deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then \
		echo "pdf-deps: Chromium found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "pdf-deps: installing chromium and fonts with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null) \
			|| echo "pdf-deps: could not install Chromium; the report will be HTML only"; \
	else \
		echo "pdf-deps: no Chromium and no root to install it; the report will be HTML only."; \
		echo "          Install it with: sudo apt-get install chromium fonts-dejavu-core"; \
	fi

# QUICK=1: cutoffs up to 1,000 and one repeat. DATASET=/my/images IMAGE_SIZE=256: a folder of your own images. REPORT_ARGS passes any other option of
# `python -m helpers.report --help`, e.g. make report REPORT_ARGS="--no-cold-cache --methods lmdb,hdf5".
# A variable make report does not know (METHODS=lmdb) would be ignored without a word: it is refused instead.
REPORT_VARIABLES := QUICK DATASET IMAGE_SIZE REPORT_ARGS PYTHON
UNKNOWN_VARIABLES = $(filter-out $(REPORT_VARIABLES),$(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))

report: setup pdf-deps
	$(if $(UNKNOWN_VARIABLES),$(error make report does not take $(UNKNOWN_VARIABLES); it takes QUICK=1, DATASET=..., IMAGE_SIZE=... and REPORT_ARGS="..." for any option of python -m helpers.report --help, e.g. REPORT_ARGS="--methods lmdb,hdf5"))
	$(PY) -m helpers.report --dataset $(DATASET) $(if $(IMAGE_SIZE),--image-size $(IMAGE_SIZE)) $(if $(QUICK),--quick) $(REPORT_ARGS)

# JupyterLab on this machine only, with the project's kernel (the venv's python3 spec wins over others).
# As root (containers, CI, cloud machines) Jupyter needs --allow-root; it still listens on 127.0.0.1 only.
# jupyter-config/ comes first on the config path: its labconfig/page_config.json switches off the
# "get notified about Jupyter news?" pop-up (the announcements plugin). LAB_ROOT is asked only when lab runs.
LAB_ROOT = $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
lab: setup $(VENV)/.lab-installed
	JUPYTER_PREFER_ENV_PATH=1 JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(PY) -m jupyter lab --ip=127.0.0.1 --no-browser --notebook-dir=notebooks $(LAB_ROOT)

$(VENV)/.lab-installed: $(STAMP)
	$(PIP_QUIET) $(PY) -m pip install --quiet -e '.[lab]'
	touch $@

data: setup
	$(PY) -c "from helpers.datasets import default_data_root, download_cifar10; print(download_cifar10(default_data_root()))"

test: setup
	$(PY) -m pytest

# Speed targets, as ratios measured in one run (a few minutes each at 100,000 images; not part of make test).
benchmark: setup
	$(PY) benchmarks/performance.py
	$(PY) benchmarks/cache_effects.py
	$(PY) benchmarks/roundtrip.py
	$(PY) benchmarks/synthetic_png_size.py
	$(PY) benchmarks/formats.py
	$(PY) benchmarks/large_images.py
	$(PY) benchmarks/random_access.py
	$(PY) benchmarks/compression.py

clean:
	rm -rf data/work reports figures .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV) data/raw *.egg-info
