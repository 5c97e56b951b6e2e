# Two commands do all set-up on a fresh machine:
#   make run    install into .venv and run the service (embedded PostgreSQL unless DATABASE_URL)
#   make test   install, then lint, type-check and run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test lint install tools bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

tools:
	bash .ci/container-tools.sh

run: install
	$(BIN)/ingest run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install tools lint
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/ingest_bench.py
