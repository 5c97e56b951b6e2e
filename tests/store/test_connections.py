"""What every connection to the database is opened with: libpq's connect timeout, TCP
keepalives and user timeout (`ingest.store.db.CONNECTION_DEFAULTS`), unless the DSN sets its
own, read back from the sockets the kernel holds."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ingest.store import db
from ingest.store.db import (
    CONNECTION_DEFAULTS,
    connect,
    connection_defaults,
    make_pool,
    open_pool,
    watching,
)

pytestmark = pytest.mark.anyio


def _tcp_options(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    """The keepalive and user-timeout options of the connection's socket."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        return {
            "keepalives": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepalives_idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepalives_interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "keepalives_count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "tcp_user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }
    finally:
        sock.close()


def _tcp(dsn: str, **params: str) -> str:
    """The DSN over TCP on loopback (the kernel keeps no TCP options for a Unix socket)."""
    return make_conninfo(dsn, host="127.0.0.1", **params)


async def _pooled_options(dsn: str) -> dict[str, int]:
    pool = make_pool(dsn, max_size=1)
    await pool.open(wait=True, timeout=15)
    try:
        async with pool.connection() as conn:
            return _tcp_options(conn)
    finally:
        await pool.close()


async def test_every_connection_is_opened_with_keepalives_and_a_user_timeout(
    database_url: str,
) -> None:
    """The pool's connections and the migrations' session probe an idle peer after 30 s, every
    10 s, 3 times, and drop one that leaves what was sent unacknowledged for 60 s (was: the
    pool's had the kernel's defaults, 2 hours before the first probe and no user timeout, so
    that a query on a database gone silent waited for the retransmissions, about 15 minutes,
    and a connection idle on one, for ever)."""
    expected = {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60000,
    }
    dsn = _tcp(database_url)
    assert await _pooled_options(dsn) == expected
    conn = await connect(dsn)
    try:
        assert _tcp_options(conn) == expected
    finally:
        await conn.close()


async def test_the_dsn_s_own_connection_settings_win(database_url: str) -> None:
    """A DSN that sets keepalives or a user timeout of its own has them, the rest defaulted."""
    dsn = _tcp(database_url, keepalives_idle="45", tcp_user_timeout="5000")
    assert await _pooled_options(dsn) == {
        "keepalives": 1,
        "keepalives_idle": 45,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 5000,
    }


async def test_the_pool_connects_within_the_connect_timeout() -> None:
    """The pool's attempts to connect give up after `connect_timeout`, 10 s (was: none given,
    psycopg's own 130 s an attempt, each host of a multi-host DSN its own)."""
    pool = make_pool("postgresql://ingest@127.0.0.1/news")
    assert conninfo_to_dict(pool.conninfo)["connect_timeout"] == "10"


@pytest.mark.parametrize(
    ("dsn", "environment", "defaulted"),
    [
        ("postgresql://u@h/db", {}, set(CONNECTION_DEFAULTS)),
        (
            "postgresql://u@h/db?connect_timeout=3&keepalives=0",
            {},
            set(CONNECTION_DEFAULTS) - {"connect_timeout", "keepalives"},
        ),
        (
            "host=h dbname=db tcp_user_timeout=0",
            {},
            set(CONNECTION_DEFAULTS) - {"tcp_user_timeout"},
        ),
        ("host=h", {"PGCONNECT_TIMEOUT": "4"}, set(CONNECTION_DEFAULTS) - {"connect_timeout"}),
        ("postgresql://u:p@[not a host/db", {}, set(CONNECTION_DEFAULTS)),
    ],
    ids=["none set", "dsn sets two", "key-value dsn", "environment", "unparsable"],
)
def test_connection_defaults_are_what_the_dsn_and_environment_leave_unset(
    dsn: str, environment: dict[str, str], defaulted: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each default goes where neither the DSN nor (for `connect_timeout`) the environment
    sets the parameter; a DSN that does not parse gets them all, and fails as it would."""
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    defaults = connection_defaults(dsn)
    assert set(defaults) == defaulted
    assert all(defaults[key] == CONNECTION_DEFAULTS[key] for key in defaults)


@pytest.mark.parametrize("named", ["dsn", "environment"])
async def test_a_service_s_own_connection_settings_win(
    database_url: str, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DSN naming a service of pg_service.conf (`service=news`, or `PGSERVICE`) whose
    section sets a connect timeout or keepalives of its own has them, as libpq gives a
    parameter the DSN leaves unset the service's value, the rest defaulted (was: the defaults
    written into the DSN overrode the service's, which libpq reads only for what the DSN
    leaves unset)."""
    info = conninfo_to_dict(database_url)
    service = tmp_path / "pg_service.conf"
    service.write_text(
        "[news]\n"
        f"host=127.0.0.1\nport={info.get('port', 5432)}\ndbname={info['dbname']}\n"
        f"user={info.get('user', 'postgres')}\nconnect_timeout=3\nkeepalives_idle=45\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(service))
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    if named == "environment":
        monkeypatch.setenv("PGSERVICE", "news")
        dsn = "dbname=" + str(info["dbname"])
    else:
        monkeypatch.delenv("PGSERVICE", raising=False)
        dsn = "service=news"
    assert set(connection_defaults(dsn)) == set(CONNECTION_DEFAULTS) - {
        "connect_timeout",
        "keepalives_idle",
    }
    assert await _pooled_options(dsn) == {
        "keepalives": 1,
        "keepalives_idle": 45,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60000,
    }
    assert "PGSERVICE" not in os.environ or named == "environment"


async def test_a_command_s_watch_starts_over_a_pool_whose_first_session_closed(
    database_url: str,
) -> None:
    """A pool whose first session was closed before the command's watch starts (the server
    restarted between the pool's opening and the command's work, the session discarded):
    the watch takes a session still open, or none, and the work goes on through the pool
    (was: the watch read the closed session's server, psycopg's OperationalError escaping
    the command as a traceback)."""
    pool = await open_pool(database_url, max_size=2)
    try:
        async with pool.connection() as conn:
            await conn.close()
        async with watching(database_url, pool), pool.connection() as conn:
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
    finally:
        await pool.close()


async def test_an_event_loop_held_up_longer_than_the_silence_is_no_silence(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's own event loop held up past the silence allowed (a long step of its work
    between two awaits), the database answering all along: the watch asks once the loop goes
    on, and the work goes on (was: the time the loop could not ask counted as the server's
    silence, the pool's sessions shut down and a healthy command stopped)."""
    monkeypatch.setattr(db, "MIGRATION_PROBE_SECONDS", 0.2)
    monkeypatch.setattr(db, "MIGRATION_SILENCE_SECONDS", 1.0)
    pool = await open_pool(database_url, max_size=2)
    try:
        async with watching(database_url, pool):
            await asyncio.sleep(0.5)  # the watch asks, and is answered
            time.sleep(2)  # noqa: ASYNC251 - the loop held up: no question can be asked meanwhile
            await asyncio.sleep(0.5)
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT 1")
                assert await cur.fetchone() == (1,)
    finally:
        await pool.close()
