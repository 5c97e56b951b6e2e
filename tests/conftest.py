"""Shared fixtures: a real PostgreSQL (checked, started if it is down, else a clear failure), a
migrated template database made once per session (per xdist worker: each has a template of its
own), one fresh database per test; TLS on loopback; loopback HTTP servers shared by the tests
of a session and reset for each; the real worker pool and an in-process one.

Tests run in parallel (pytest-xdist, see pyproject.toml): what one test holds must be its own
(a database, a port, a temporary directory). Tests that share something costly are kept on one
xdist worker with an `xdist_group` mark, given here by the fixture they use."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trustme
from psycopg import sql

from ingest.store.db import migrate
from ingest.workers.pool import Workers
from tests.support.httpserver import LocalServer
from tests.support.network import Tripwire, install_tripwire
from tests.support.paths import ROOT
from tests.support.workers import InlineWorkers

ADMIN_DSN = os.environ.get("INGEST_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

GROUPS = {
    "big_database": "big-database",  # 100,000 generated articles, made once
    "cluster": "private-cluster",  # an embedded PostgreSQL cluster, started once
}
"""Fixture -> the xdist group of every test that uses it: the costly thing is made once."""


SLOW = ("cli", "hostile")
"""Folders of tests/ whose tests run real `ingest` processes or wait out deadlines: seconds each."""


def _start_order(item: pytest.Item) -> int:
    if item.get_closest_marker("xdist_group"):
        return 0
    return 1 if item.path.relative_to(ROOT / "tests").parts[0] in SLOW else 2


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups from GROUPS; then the groups first, the slow folders next and the rest last (a
    stable sort): xdist deals tests out in this order, so the long ones start early and the
    workers finish together."""
    for item in items:
        for fixture, group in GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_start_order)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, as the service does."""
    return "asyncio"


def _dsn_for(dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=dbname)


def _reachable() -> str | None:
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.OperationalError as e:
        return str(e).strip().splitlines()[0]


def _try_start_local_cluster() -> None:
    """This machine kind ships a Debian PostgreSQL cluster; start it if it is installed."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def pg_admin() -> str:
    problem = _reachable()
    if problem:
        _try_start_local_cluster()
        problem = _reachable()
    if problem:
        pytest.exit(
            f"PostgreSQL is not reachable at {ADMIN_DSN!r} ({problem}). Start it, or point "
            "INGEST_TEST_ADMIN_URL at a server where this user may create databases.",
            returncode=3,
        )
    return ADMIN_DSN


@pytest.fixture(scope="session")
def template_db(pg_admin: str) -> Iterator[str]:
    # One per xdist worker (each is a session of its own); the worker's name is in it to tell
    # them apart while the suite runs.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"ingest_tpl_{worker}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    asyncio.run(migrate(_dsn_for(name)))
    yield name
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def database_url(pg_admin: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test only."""
    name = f"ingest_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    yield _dsn_for(name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def empty_database_url(pg_admin: str) -> Iterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    name = f"ingest_e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _dsn_for(name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(autouse=True)
def _sigint_left_alone() -> Iterator[None]:
    """Every test leaves this process's SIGINT as it found it, handler and mask. The processes a
    test starts inherit an ignored or blocked SIGINT, so a test that left it so would break the
    Ctrl-C tests that happen to run after it on the same xdist worker (their command never sees
    the signal): it fails here instead, and SIGINT is put back for the tests after it."""
    handler = signal.getsignal(signal.SIGINT)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    changed = []
    if signal.getsignal(signal.SIGINT) != handler:
        changed.append(f"handler {signal.getsignal(signal.SIGINT)!r}, was {handler!r}")
        signal.signal(signal.SIGINT, handler)
    if (blocked := signal.pthread_sigmask(signal.SIG_SETMASK, mask)) != mask:
        changed.append(f"blocked signals {sorted(blocked)}, were {sorted(mask)}")
    assert not changed, "the test changed this process's SIGINT: " + "; ".join(changed)


# --- TLS on loopback -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A test certificate authority: servers on 127.0.0.1 get certificates it signed."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server's TLS context with a certificate for 127.0.0.1 signed by `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A client's TLS context that trusts `ca` (and nothing else)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# --- loopback HTTP servers -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def _loopback_servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    with LocalServer("127.0.0.1") as main, LocalServer("127.0.0.2") as other:
        yield main, other


@pytest.fixture
def server(_loopback_servers: tuple[LocalServer, LocalServer]) -> LocalServer:
    """A server on 127.0.0.1 with no routes and no recorded requests."""
    return _loopback_servers[0].reset()


@pytest.fixture
def second_server(_loopback_servers: tuple[LocalServer, LocalServer]) -> LocalServer:
    """Another server, on 127.0.0.2 (another host), with no routes and no recorded requests."""
    return _loopback_servers[1].reset()


@pytest.fixture
def internal(second_server: LocalServer) -> LocalServer:
    """`second_server` as the "internal service" an attacker aims at: SSRF tests check that it
    is never reached."""
    return second_server


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    """Refuse, as ECONNREFUSED, and record any socket connection of this process that would
    leave loopback (every test of tests/fetch and tests/hostile has it)."""
    return install_tripwire(monkeypatch)


# --- worker pools --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def workers() -> Iterator[Workers]:
    """The real worker pool (processes forked from the fork server), one worker, shared by the
    session: for tests of parsing and extraction as they run in production."""
    pool = Workers(1)
    yield pool
    pool.close()


@pytest.fixture
def inline_workers() -> InlineWorkers:
    """A worker pool without processes (`tests.support.workers.InlineWorkers`)."""
    return InlineWorkers(1)
