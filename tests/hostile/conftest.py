"""Fixtures for the hostile-input suite: the tripwire (refusing and recording any connection
that would leave loopback) in every test, and a private PostgreSQL cluster a test may restart.
Servers, pipelines, processes and resolvers are in `tests.support` and tests/conftest.py.

The SSRF cases aim at link-local, private and public addresses on purpose. They must be refused
before any connection; if a regression let one through, the tripwire stops it at the socket and
the test fails, so no packet ever leaves 127.0.0.0/8 whatever the code under test does."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import PrivateCluster
from tests.support.network import Tripwire


@pytest.fixture(autouse=True)
def _loopback_only(tripwire: Tripwire) -> Tripwire:
    return tripwire


@pytest.fixture(scope="session")
def cluster() -> Iterator[PrivateCluster]:
    """One private cluster for the hostile suite; tests use databases of their own in it and
    leave it running. Its directory is not under pytest's basetemp, which another pytest session
    on the machine may prune while this one runs."""
    base = Path(tempfile.mkdtemp(prefix="ingest-hostile-pg-"))
    own = PrivateCluster(base / "data")
    try:
        yield own
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            own.close()
        shutil.rmtree(base, ignore_errors=True)
