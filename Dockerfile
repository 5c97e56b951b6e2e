# syntax=docker/dockerfile:1
#
# news-ingest container image.
#
#   docker build -t news-ingest .
#   docker run --rm -e DATABASE_URL=postgresql://... news-ingest migrate
#   docker run --rm -p 8080:8080 --stop-timeout 45 -e DATABASE_URL=postgresql://... news-ingest
#       (= ingest run; --stop-timeout: its 30 s drain and hand-back before Docker's SIGKILL)
#
# Two stages: the builder installs the package and all its dependencies into a virtualenv at
# /opt/venv (every dependency ships binary wheels, so no compiler or apt package is needed);
# the final stage copies only that virtualenv, so neither the source tree nor pip's build
# environment ends up in the image. Both stages use the same base image, so the venv's paths
# and interpreter match. The one Debian package is the final stage's init, tini.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Only what the build needs (see [tool.setuptools] in pyproject.toml: packages ingest + jobs,
# and sql/ shipped as the package ingest.sql).
COPY pyproject.toml README.md constraints.txt ./
COPY ingest/ ingest/
COPY jobs/ jobs/
COPY sql/ sql/

# The dependencies at the versions the tests passed with (constraints.txt, `make lock`).
RUN pip install --no-cache-dir -c constraints.txt . \
    && ingest --help > /dev/null

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="news-ingest" \
      org.opencontainers.image.description="Polls RSS/Atom feeds and stores clean articles in PostgreSQL." \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    INGEST_LOG_FORMAT=json \
    INGEST_DATA_DIR=/data \
    INGEST_HTTP_PORT=8080

# tini as the container's PID 1 (the ENTRYPOINT below): it passes each signal on to `ingest`
# and reaps every process left to it. The service is not fit for that role: a fork server
# killed (by the OOM killer, with a worker) leaves its workers to PID 1, which the service never
# waits for, and each would stay a zombie. Debian's package: no download outside the registry.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user with a fixed uid/gid, so volume ownership is predictable. /data exists
# in the image owned by that user, so a fresh named volume mounted there inherits the ownership.
RUN groupadd --system --gid 10001 ingest \
    && useradd --system --uid 10001 --gid ingest --no-create-home \
       --home-dir /data --shell /usr/sbin/nologin ingest \
    && mkdir -p /data \
    && chown ingest:ingest /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app

# Numeric uid:gid so the orchestrator can verify it is non-root (runAsNonRoot) without
# resolving names.
USER 10001:10001

VOLUME ["/data"]

# /healthz, /readyz and /metrics are served on INGEST_HTTP_PORT.
EXPOSE 8080

# No curl in the slim image: the probe is the package's own, on the standard library
# (ingest/healthcheck.py). Any connection error or non-2xx answer exits non-zero (= unhealthy),
# with the reason (docker inspect). It goes where the service listens, INGEST_HTTP_HOST and
# INGEST_HTTP_PORT read as the service reads them: a wildcard address through loopback of its
# family (0.0.0.0: 127.0.0.1; `::`, which listens on IPv6 alone: ::1), any other address as it
# is, never through a proxy. /healthz is the liveness check (the process and its scheduler
# run); /readyz, which says whether the database lets it work, is for orchestrators that route
# or alert on readiness. With INGEST_HTTP_PORT=0 nothing answers: run the container with
# --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ingest.healthcheck"]

# `-s` (subreaper): it reaps them too where it is not PID 1 (`docker run --init`, compose
# `init: true`), and prints no warning there, as text among the JSON lines.
ENTRYPOINT ["tini", "-s", "--", "ingest"]
CMD ["run"]
