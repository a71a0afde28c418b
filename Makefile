# Everyday commands. `make run` and `make test` work on a fresh machine: they install first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run demo test lint bench web worker beat clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job: one poll cycle of every source, on the embedded default (SQLite, no broker).
run: $(STAMP)
	$(BIN)/tipwatch poll

## The same poll against the bundled replica of the sites (no internet needed).
demo: $(STAMP)
	$(BIN)/python -m tests.replica.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check worker tasks config
	$(BIN)/mypy worker tasks config

bench: $(STAMP)
	$(BIN)/python -m bench

web: $(STAMP)
	$(BIN)/tipwatch web

worker: $(STAMP)
	$(BIN)/celery -A worker worker --loglevel=INFO

beat: $(STAMP)
	$(BIN)/celery -A worker beat --loglevel=INFO

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .ruff_cache
