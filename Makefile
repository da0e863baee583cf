# The two commands of the README: `make demo` and `make test`. Everything else they need is installed here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Airflow pins clash with the project's: it gets its own venv; its tasks run the steps in $(VENV) (dags/).
AIRFLOW_VENV := .venv-airflow
AIRFLOW_VERSION := 3.3.2
# torch is pinned to 2.13.0 in pyproject.toml: pip takes the CPU build from the local wheel where there is one.

.PHONY: demo test lint bench system-deps airflow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(AIRFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet 'apache-airflow==$(AIRFLOW_VERSION)'
	touch $@

airflow: $(AIRFLOW_VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/vibrasense demo

system-deps:
	bash scripts/install-system-deps.sh

test: $(VENV)/.installed-dev $(AIRFLOW_VENV)/.installed system-deps
	$(BIN)/ruff check src tests benchmarks dags
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks dags
	$(BIN)/ruff format --check src tests benchmarks dags

bench: $(VENV)/.installed-dev
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) vibrasense-work
