# tabrepro: `make repro` runs the pipeline, `make test` runs the checks. Both create .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Nothing phones home, nothing is written to the user's home.
export DVC_NO_ANALYTICS := 1
export BENTOML_DO_NOT_TRACK := True
export ORT_DISABLE_TELEMETRY := 1
# No in-process OpenTelemetry SDK in the service: with it each request left ~4.8 KB in the worker (BentoML 1.4.40).
export OTEL_SDK_DISABLED := true
export BENTOML_HOME := $(CURDIR)/.bentoml
export PATH := $(BIN):$(PATH)

.PHONY: venv lock repro test test-fast lint format params dag serve push pull report clean-venv

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"need Python 3.11, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

repro: venv  ## set up and run the whole pipeline on the default data
	dvc repro

# Unit and integration tests run on two workers (pytest-xdist; --dist loadfile keeps a file's tests on one worker,
# so its module fixtures are made once), then e2e in one process: its tests share one `dvc repro` per process, which
# two workers would each make. Both parts run even when the first fails; the markers are in tests/support/marks.py.
XDIST := -n 2 --dist loadfile
FAST := not slow and not postgres and not dask and not service

test: venv lint  ## set up and run lint + every test: unit + integration on 2 workers, then e2e
	status=0; \
	pytest $(XDIST) tests/unit tests/integration || status=$$?; \
	pytest -p no:xdist tests/e2e || status=$$((status ? status : $$?)); \
	exit $$status

test-fast: venv lint  ## set up and run lint + unit + the integration tests that start no server, cluster or database
	pytest $(XDIST) -m "$(FAST)" tests/unit tests/integration

# The lock: pyproject.toml's ranges (dependencies + the dev and notebook extras) compiled to exact, hashed pins.
# Every pin already in requirements.txt is kept unless named: `make lock UPGRADE="pandas optuna"` or UPGRADE=all.
# Resolved for CPython 3.11 on x86-64 Linux (glibc 2.28 or newer) whatever machine runs it (docs/dependencies.md).
lock: venv  ## re-compile requirements.txt from pyproject.toml (keeps every pin; UPGRADE="pkg ..." or all)
	uv pip compile pyproject.toml --extra dev --extra notebook --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet --custom-compile-command "make lock" \
	  $(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE))) -o requirements.txt

# The same checks run as pre-commit hooks (.pre-commit-config.yaml).
lint: venv  ## ruff, ruff format --check, mypy, the layer contracts (lint-imports), the docs' links and diagrams
	ruff check .
	ruff format --check .
	mypy
	lint-imports
	python tools/check_links.py
	python tools/architecture.py --check

format: venv
	ruff check --fix .
	ruff format .

params: venv  ## compose conf/ into params.yaml (what `dvc exp run` does; `dvc repro` does not)
	tabrepro params

dag: venv
	dvc dag

serve: venv  ## serve the packaged model (models/serving) on http://127.0.0.1:3000
	TABREPRO_SERVING_DIR=models/serving bentoml serve tabrepro.serving.service:TabreproService --host 127.0.0.1 --port 3000

push: venv  ## upload this commit's data and models to the default DVC remote (credentials from the environment)
	dvc push

pull: venv  ## download the data and models of this commit from the default DVC remote
	dvc pull

BASE ?= main
report: venv  ## Markdown report of the workspace against $(BASE) (report.md); FAIL_ON="roc_auc:-0.005" exits 1 past it
	tabrepro report --base $(BASE) --output report.md $(if $(FAIL_ON),--fail-on $(FAIL_ON))

clean-venv:
	rm -rf $(VENV)
