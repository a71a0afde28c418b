# Everyday commands. `make run` and `make test` work on a fresh machine: they install first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# The image's runtime set: the s3 extra the Dockerfile installs, no dev extra, not the project.
EXPORT_ARGS := --frozen --no-dev --extra s3 --no-emit-project --format requirements-txt

.PHONY: install lock run demo test lint bench web worker beat clean

$(BIN)/uv:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv

# The venv holds exactly the versions of uv.lock (the image installs the same ones, from
# requirements.lock); --locked refuses a uv.lock older than pyproject.toml: run `make lock`.
$(STAMP): pyproject.toml uv.lock | $(BIN)/uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --locked --inexact --extra dev --extra s3
	touch $(STAMP)

install: $(STAMP)

## After editing dependencies in pyproject.toml: re-resolve uv.lock (keeping the other pins) and
## export the image's runtime set, with hashes, to requirements.lock (the Dockerfile installs it).
## Newer releases: `.venv/bin/uv lock --upgrade` (or --upgrade-package NAME), then `make lock`.
lock: | $(BIN)/uv
	$(BIN)/uv lock
	$(BIN)/uv export -q $(EXPORT_ARGS) -o requirements.lock

## The main job: one poll cycle of every source, on the embedded default (SQLite, no broker).
run: $(STAMP)
	$(BIN)/tipwatch poll

## The same poll against the bundled replica of the sites (no internet needed).
demo: $(STAMP)
	$(BIN)/python -m tests.replica.demo

## System packages first (Chromium for the browser test, pdftotext): quick when present.
test: $(STAMP)
	bash .ci/apt-packages
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
	$(BIN)/celery -A tasks.celery_app worker --loglevel=INFO

beat: $(STAMP)
	$(BIN)/celery -A tasks.celery_app beat --loglevel=INFO

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .ruff_cache
