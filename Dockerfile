# syntax=docker/dockerfile:1
# TIP Watch: one image for the Celery worker, Celery beat and the web UI (see docker-compose.yml).
# Every dependency ships manylinux wheels for CPython 3.11, so the slim image needs no compiler.

# --- build: install the project and its runtime dependencies into a venv -------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The dependencies first, exactly as locked: every version pinned and every file checked against
# its sha256, so a build next month installs the set the tests ran against. requirements.lock is
# uv.lock exported with the s3 extra (the archive in S3-compatible object storage,
# TIPWATCH_BLOB_URL) and without the dev extra; `make lock` writes it.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
# Then the project itself, without resolving anything (no tests/, no dev extras): see
# .dockerignore too. `pip check` fails the build if the lock misses a dependency.
COPY pyproject.toml README.md ./
COPY worker/ worker/
COPY tasks/ tasks/
COPY config/ config/
COPY seeds/ seeds/
RUN pip install --no-deps . && pip check && python -m compileall -q /opt/venv

# --- runtime -----------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    TIPWATCH_DATA_DIR=/data \
    TIPWATCH_ARCHIVE_DIR=/data/archive

RUN groupadd --system --gid 10001 tipwatch \
 && useradd --system --uid 10001 --gid tipwatch --home-dir /home/tipwatch --create-home \
        --shell /usr/sbin/nologin tipwatch \
 && mkdir -p /data/archive \
 && chown -R tipwatch:tipwatch /data

COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=tipwatch:tipwatch /src/seeds /opt/tipwatch/seeds

USER tipwatch
# Not the source tree: imports resolve to the installed package only.
WORKDIR /home/tipwatch

EXPOSE 8000

# Default role: the Celery worker. docker-compose.yml sets the command of each service.
CMD ["celery", "-A", "tasks.celery_app", "worker", "--loglevel=INFO", "--queues=poll,extract,notify", "--concurrency=2"]
