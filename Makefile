# Two commands do all set-up on a fresh machine:
#   make run    install into .venv and run the service (embedded PostgreSQL unless DATABASE_URL)
#   make test   install, then lint, type-check and run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test lint install tools bench lock

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
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

# Resolve pyproject.toml's dependencies afresh in a scratch venv and pin them in constraints.txt
# (read by `make install` and the Dockerfile). Run after changing a dependency.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	sed -n '/^#/p' constraints.txt > constraints.txt.new
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^news-ingest' >> constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .lock-venv
