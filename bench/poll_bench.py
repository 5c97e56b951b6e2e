"""The warm poll: how fast `ingest run --once --all` goes over feeds that have nothing new.

    .venv/bin/python bench/poll_bench.py [--feeds 10000] [--hosts 50] [--repeat 3]
        [--concurrent-feeds 32] [--per-host 2] [--workers 2] [--server-procs 2]
        [--profile FILE] [--keep-logs DIR] [--json FILE]

Targets (issue): "Warm poll (nothing new): >= 1,000 feeds/s when feeds answer 304, and no feed
parsing when a feed answers 200 with a body identical to the last one (hash it first)."

The site. N RSS feeds (`--feeds`, default 10,000) dealt round-robin over loopback hosts
127.0.0.2, 127.0.0.3, ... (`--hosts`, default 50), served by a small asyncio HTTP/1.1 server
(keep-alive, responses precomputed and gzip-compressed once) running in `--server-procs`
separate processes (default 2) that share the listening sockets with SO_REUSEPORT, so that
serving costs the measured processes nothing and is not the bottleneck: its CPU is measured and
printed beside every row. Each feed has `--entries` items (default 10), an ETag and a
Last-Modified; its items link to a small pool of story URLs of its host under /private/, which
robots.txt disallows, so the first poll stores each story once from the feed text (no page
fetch, no extraction) and links the other feeds' entries to it. The site answers in one of three
modes, switched between passes: `conditional` (304 when If-None-Match or If-Modified-Since
match, else 200), `ignore` (always 200 with the same body and the same validators, whatever the
request says) and `changed` (200 with another body: same items, another lastBuildDate).

Every pass is one `ingest run --once --all` subprocess on the same throwaway database, with
INGEST_HOST_DELAY=0 (the politeness delay would make the run wait on the clock, not on the
service), INGEST_WORKERS=--workers, INGEST_CONCURRENT_FEEDS=--concurrent-feeds (the project's
default is 8), INGEST_PER_HOST_CONNECTIONS=--per-host (default 2, the project's default) and
INGEST_MAX_CONNECTIONS=--max-connections (default 32, the project's default). The passes:

  phase 0  (not timed for the figures) the first poll: every feed answers 200, is parsed, its
           entries are planned and linked, and its ETag, Last-Modified and body hash are stored.
  A        every feed answers 304 to its conditional GET.
  B        every feed answers 200 with the body of phase 0 (validators ignored by the server):
           the service must recognise the bytes by their hash and skip parsing.
  bare     beside A and B, in this process: the same conditional GETs (same URLs, validators
           and Accept-Encoding) with one shared httpx.AsyncClient and as many requests in flight
           as the service has feeds in flight, reading the body and nothing else (no database,
           no limiter, no logging): the HTTP ceiling of this machine.
  C        (once, at the end; `--no-control` skips it) every feed answers 200 with a changed
           body: parsed. The contrast for B's "no parsing".

A, bare A, B, bare B are interleaved and repeated `--repeat` times (default 3). Before C, two
untimed instrumented passes (A and B) run `ingest` with psycopg's cursor `execute` wrapped to
count the statements it sends by name (executemany rows and calls apart) and the size of every
claim, and, with `--profile
FILE`, one more phase-A pass runs under `py-spy record --subprocesses --idle --format raw`; its
summary (bench/profile_summary.py) is printed.

How to read it. Per row: the median (min-max) of feeds/s over the wall time of the process
(start-up, migration check and shutdown included) and over the feeds window (first feed start to
last `feed_processed` log line, as bench/ingest_bench.py's log_breakdown computes it); the
ratio of the project's feeds-window rate to the bare loop's rate is the share of the HTTP
ceiling it reaches. CPU seconds during the feeds window, by process: the `ingest` main process
(event loop), its worker processes (fork server and workers), the PostgreSQL backends of the
bench database (sampled with psutil every 0.1 s, found in pg_stat_activity), PostgreSQL's
auxiliary processes (WAL writer, checkpointer...) and the site's processes; "%" is of one core
over the window. Below: the time one feed takes, CPU milliseconds per feed, database
transactions and `ingest.feeds` row updates per feed (pg_stat_database, pg_stat_user_tables),
the TCP connections the site accepted, the statement counts per feed by query name and the
feeds per claim. The proof for B: the site answered 200 with the body to every request, the
service logged every feed `not_modified`, and the worker processes, where all parsing happens,
used no more CPU than in A, against C's CPU per parsed feed. Each pass records the project's
git revision: others may commit while the bench runs, and a note says so. Figures are printed,
never asserted; another process on a 2-core machine shows up in them, so compare rows of one
run. The exit status is 1 only when a step failed (a pass exiting non-zero, feeds not all
polled, phase 0 not storing validators). The `ingest_bench_*` database is dropped and the site
stopped at the end, also on error, Ctrl-C or SIGTERM. All traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import multiprocessing
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol, TypeVar
from xml.sax.saxutils import escape

import httpx
import psutil  # type: ignore[import-untyped]
import psycopg
from common import ADMIN_DSN_DEFAULT, ROBOTS_TXT, Databases, free_port, host_address
from ingest_bench import log_breakdown, machine, profiled, project_revision
from service_bench import base_env, ingest_command

MB = 1024 * 1024
T = TypeVar("T")
PASS_TIMEOUT = 1800.0

# --- a fast local HTTP server in separate processes -------------------------------------------

_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found"}


def http_response(status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    """One complete HTTP/1.1 response (a 304 carries no body and no Content-Length)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if status != 304:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if status == 304 else body)


class SiteApp(Protocol):
    """What a site serves: `respond` builds the whole response for one request (method, path
    without query, lower-case header names) and `control` answers the bench's messages."""

    def respond(self, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> tuple[int, bytes]:
        """(status, response bytes)."""
        ...

    def control(self, message: Any) -> Any: ...


class _Handler:
    def __init__(self, app: SiteApp) -> None:
        self.app = app
        self.counts: Counter[int] = Counter()
        self.connections = 0

    def handle(self, head: bytes) -> bytes:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self.counts[400] += 1
            return http_response(400, [("Connection", "close")])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        status, payload = self.app.respond(parts[0], parts[1].split(b"?", 1)[0], headers)
        self.counts[status] += 1
        return payload


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only (no request bodies), pipelining tolerated."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._handler.connections += 1

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        buf = self._buf + data if self._buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            self._transport.write(self._handler.handle(buf[:end]))
            buf = buf[end + 4 :]
        if len(buf) > 64 * 1024:
            self._transport.close()
            buf = b""
        self._buf = buf


async def _serve(app: SiteApp, hosts: Sequence[str], port: int, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    handler = _Handler(app)
    servers = [
        await loop.create_server(
            lambda: _Connection(handler), host, port, reuse_port=True, backlog=2048
        )
        for host in hosts
    ]
    stop = asyncio.Event()

    async def apply(message: Any) -> Any:
        if message == "counts":
            return {"statuses": dict(handler.counts), "connections": handler.connections}
        if message == "reset":
            handler.counts.clear()
            handler.connections = 0
            return True
        return app.control(message)

    def control() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = "stop"
            if message == "stop":
                loop.call_soon_threadsafe(stop.set)
                return
            try:
                reply = asyncio.run_coroutine_threadsafe(apply(message), loop).result(60)
            except Exception as e:
                reply = ("error", repr(e))
            with contextlib.suppress(OSError):
                conn.send(reply)

    conn.send(("ready", os.getpid()))
    threading.Thread(target=control, name="site-control", daemon=True).start()
    await stop.wait()
    for server in servers:
        server.close()


def _site_process(
    factory: Callable[[Any], SiteApp], arg: Any, hosts: list[str], port: int, conn: Connection
) -> None:
    try:
        app = factory(arg)
        asyncio.run(_serve(app, hosts, port, conn))
    except Exception as e:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}"))


class FastSite:
    """`procs` processes serving `factory(arg)` on every host of `hosts`, all on `port`
    (SO_REUSEPORT spreads the connections over the processes). `arg` usually needs the port to
    build absolute URLs, hence the caller chooses it (common.free_port). `factory` must be a
    module-level function: the processes are spawned."""

    def __init__(
        self,
        factory: Callable[[Any], SiteApp],
        arg: Any,
        hosts: Sequence[str],
        procs: int,
        port: int,
    ) -> None:
        self.factory = factory
        self.arg = arg
        self.hosts = list(hosts)
        self.nprocs = procs
        self.port = port
        self.pids: list[int] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[Connection] = []

    def __enter__(self) -> FastSite:
        ctx = multiprocessing.get_context("spawn")
        try:
            for i in range(self.nprocs):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_site_process,
                    args=(self.factory, self.arg, self.hosts, self.port, child),
                    name=f"bench-site-{i}",
                    daemon=True,
                )
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            for conn in self._conns:
                if not conn.poll(300):
                    raise RuntimeError("the local site did not start within 300 s")
                try:
                    kind, detail = conn.recv()
                except EOFError:
                    raise RuntimeError("a local site process died while starting") from None
                if kind != "ready":
                    raise RuntimeError(f"the local site failed to start: {detail}")
                self.pids.append(int(detail))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, host: int, path: str) -> str:
        return f"http://{self.hosts[host]}:{self.port}{path}"

    def ask(self, message: Any) -> list[Any]:
        """Send `message` to every server process; their replies."""
        for conn in self._conns:
            conn.send(message)
        replies = []
        for conn in self._conns:
            if not conn.poll(120):
                raise RuntimeError("the local site did not answer within 120 s")
            replies.append(conn.recv())
        for reply in replies:
            if isinstance(reply, tuple) and reply and reply[0] == "error":
                raise RuntimeError(f"the local site failed: {reply[1]}")
        return replies

    def counts(self) -> tuple[dict[int, int], int]:
        """Responses by status and TCP connections accepted since the last "reset"."""
        total: Counter[int] = Counter()
        connections = 0
        for reply in self.ask("counts"):
            total.update(reply["statuses"])
            connections += int(reply["connections"])
        return dict(total), connections

    def cpu_seconds(self) -> float:
        return sum(cpu_of(pid) or 0.0 for pid in self.pids)

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send("stop")
            conn.close()
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self._conns = []
        self._procs = []


# --- the poll site ----------------------------------------------------------------------------

SITE_DATE = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
_FILLER = (
    "Officials said on Tuesday that the plan would be reviewed again next month after residents"
    " raised questions about the cost and the timetable of the works."
)


@dataclass(frozen=True)
class PollSiteSpec:
    feeds: int
    hosts: list[str]
    port: int
    entries: int
    stories: int
    """Story URLs per host that the feeds' items point at."""


def feed_path(f: int) -> str:
    return f"/feeds/{f:05d}.xml"


def poll_feed_xml(spec: PollSiteSpec, f: int, version: int) -> bytes:
    host = spec.hosts[f % len(spec.hosts)]
    base = f"http://{host}:{spec.port}"
    built = format_datetime(SITE_DATE + timedelta(hours=version - 1), usegmt=True)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>Poll bench feed {f}</title><link>{base}/</link>",
        f"<description>news-ingest poll benchmark feed {f}</description>",
        f"<lastBuildDate>{built}</lastBuildDate>",
    ]
    offset = f // len(spec.hosts)
    for e in range(spec.entries):
        k = (offset + e) % spec.stories
        link = escape(f"{base}/private/story-{k:03d}.html")
        when = format_datetime(SITE_DATE - timedelta(minutes=47 * (e + 1)), usegmt=True)
        parts.append(
            f"<item><title>Story {k} of {escape(host)}</title><link>{link}</link>"
            f'<guid isPermaLink="true">{link}</guid><pubDate>{when}</pubDate>'
            f"<description>{escape(_FILLER)} Story {k}.</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


class PollApp:
    """The feeds of `PollSiteSpec`, in one of three modes (see the module docstring)."""

    MODES = ("conditional", "ignore", "changed")

    def __init__(self, spec: PollSiteSpec) -> None:
        self.spec = spec
        self.mode = "conditional"
        self.last_modified = [
            format_datetime(SITE_DATE + timedelta(hours=v - 1), usegmt=True) for v in (1, 2)
        ]
        self.etags: list[list[bytes]] = [[], []]
        self.full: list[list[bytes]] = [[], []]
        self.not_modified: list[list[bytes]] = [[], []]
        for f in range(spec.feeds):
            for v in (0, 1):
                etag = f'"feed-{f}-v{v + 1}"'
                headers = [
                    ("Content-Type", "application/rss+xml; charset=UTF-8"),
                    ("ETag", etag),
                    ("Last-Modified", self.last_modified[v]),
                ]
                body = gzip.compress(poll_feed_xml(spec, f, v + 1), 6)
                self.etags[v].append(etag.encode())
                self.full[v].append(
                    http_response(200, [*headers, ("Content-Encoding", "gzip")], body)
                )
                self.not_modified[v].append(http_response(304, headers))
        self.robots = http_response(200, [("Content-Type", "text/plain")], ROBOTS_TXT)
        self.missing = http_response(404, [("Content-Type", "text/plain")], b"not found\n")

    def respond(self, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> tuple[int, bytes]:
        if path == b"/robots.txt":
            return 200, self.robots
        if not path.startswith(b"/feeds/") or method != b"GET":
            return 404, self.missing
        try:
            f = int(path[7:12])
        except ValueError:
            return 404, self.missing
        if not 0 <= f < self.spec.feeds:
            return 404, self.missing
        v = 1 if self.mode == "changed" else 0
        if self.mode != "ignore" and (
            headers.get(b"if-none-match") == self.etags[v][f]
            or headers.get(b"if-modified-since") == self.last_modified[v].encode()
        ):
            return 304, self.not_modified[v][f]
        if b"gzip" in headers.get(b"accept-encoding", b""):
            return 200, self.full[v][f]
        plain = http_response(
            200,
            [
                ("Content-Type", "application/rss+xml; charset=UTF-8"),
                ("ETag", self.etags[v][f].decode()),
                ("Last-Modified", self.last_modified[v]),
            ],
            poll_feed_xml(self.spec, f, v + 1),
        )
        return 200, plain

    def control(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "mode" and message[1] in self.MODES:
            self.mode = message[1]
            return True
        return ("error", f"unknown message {message!r}")


def make_poll_app(spec: PollSiteSpec) -> SiteApp:
    return PollApp(spec)


# --- measuring processes ----------------------------------------------------------------------


def cpu_of(pid: int) -> float | None:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def role_of(proc: Any, names: dict[int, str]) -> str:
    """main / forkserver / worker / tracker / profiler, for a process of an `ingest` tree."""
    try:
        cmd = " ".join(proc.cmdline())
        parent = int(proc.ppid())
    except psutil.Error:
        return "gone"
    if "py-spy" in cmd:
        return "profiler"
    if "resource_tracker" in cmd:
        return "tracker"
    if "forkserver" in cmd:
        if names.get(parent) == "forkserver":
            return "worker"
        try:
            parent_cmd = " ".join(psutil.Process(parent).cmdline())
        except psutil.Error:
            parent_cmd = ""
        return "worker" if "forkserver" in parent_cmd else "forkserver"
    return "main"


PG_AUX = {
    "walwriter",
    "checkpointer",
    "background writer",
    "autovacuum launcher",
    "logical replication launcher",
    "autovacuum worker",
    "archiver",
    "walsender",
}

CPU_ROLES = ("main", "forkserver", "worker", "tracker", "profiler", "pg", "pg_aux", "server")


class PassSampler:
    """Every `interval` seconds, in a thread: the CPU time of every process of the `ingest` tree
    (by role), of the PostgreSQL backends of `dbname` and of PostgreSQL's auxiliary processes,
    and of the site's processes; the summed RSS of the tree. Processes born during the pass
    count from zero, the others from the first sample. `series` holds (epoch seconds, CPU
    seconds by role) so that any time window can be cut out of it."""

    def __init__(
        self, root: int, admin_dsn: str, dbname: str, server_pids: Sequence[int], interval: float
    ) -> None:
        self.root = root
        self.admin_dsn = admin_dsn
        self.dbname = dbname
        self.server_pids = list(server_pids)
        self.interval = interval
        self.names: dict[int, str] = {}
        self.cpu: dict[tuple[str, int], float] = {}
        self.base: dict[tuple[str, int], float] = {}
        self.series: list[tuple[float, dict[str, float]]] = []
        self.peak_rss = 0
        self.seen: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def _note(self, role: str, pid: int, value: float | None, born: bool) -> None:
        if value is None:
            return
        key = (role, pid)
        if key not in self.cpu:
            self.base[key] = 0.0 if born else value
            self.seen[role] += 1
        self.cpu[key] = value

    def sample(self) -> None:
        now = time.time()
        procs = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.root)
            procs = [root, *root.children(recursive=True)]
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    times = p.cpu_times()
                    mem = int(p.memory_info().rss)
            except psutil.Error:
                continue
            if p.pid not in self.names:
                self.names[p.pid] = role_of(p, self.names)
            self._note(self.names[p.pid], p.pid, float(times.user + times.system), born=True)
            rss += mem
        self.peak_rss = max(self.peak_rss, rss)
        if self._conn is not None:
            try:
                rows = self._conn.execute(
                    "SELECT pid, backend_type, datname FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid()"
                ).fetchall()
            except psycopg.Error:
                rows = []
            for pid, backend_type, datname in rows:
                if datname == self.dbname:
                    self._note("pg", int(pid), cpu_of(int(pid)), born=True)
                elif backend_type in PG_AUX:
                    self._note("pg_aux", int(pid), cpu_of(int(pid)), born=False)
        for pid in self.server_pids:
            self._note("server", pid, cpu_of(pid), born=False)
        totals = dict.fromkeys(CPU_ROLES, 0.0)
        for (role, pid), value in self.cpu.items():
            totals[role] = totals.get(role, 0.0) + value - self.base[(role, pid)]
        self.series.append((now, totals))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PassSampler:
        with contextlib.suppress(psycopg.Error):
            self._conn = psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10)
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="pass-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        if self._conn is not None:
            self._conn.close()

    def at(self, when: float) -> dict[str, float]:
        """CPU seconds by role at epoch time `when`, interpolated between samples."""
        if not self.series:
            return dict.fromkeys(CPU_ROLES, 0.0)
        if when <= self.series[0][0]:
            return dict(self.series[0][1])
        for (t0, v0), (t1, v1) in zip(self.series, self.series[1:], strict=False):
            if t0 <= when <= t1:
                w = (when - t0) / (t1 - t0) if t1 > t0 else 1.0
                return {k: v0.get(k, 0.0) + w * (v1.get(k, 0.0) - v0.get(k, 0.0)) for k in v1}
        return dict(self.series[-1][1])

    def between(self, start: float, end: float) -> dict[str, float]:
        a, b = self.at(start), self.at(end)
        return {k: round(b.get(k, 0.0) - a.get(k, 0.0), 3) for k in CPU_ROLES}


# --- one pass of `ingest run --once --all` ----------------------------------------------------

STATEMENT_COUNTER = r"""
import collections, json, sys
import psycopg
import ingest.store
from ingest.cli import main

names = {text: name for name, text in ingest.store.queries().items()}
counts = collections.Counter()
claims = collections.Counter()
_execute = psycopg.AsyncCursor.execute

async def execute(self, query, params=None, **kw):
    text = query if isinstance(query, str) else repr(query)
    counts[names.get(text, "(pool check: empty query)" if text == "" else text[:60])] += 1
    return await _execute(self, query, params, **kw)

psycopg.AsyncCursor.execute = execute
_executemany = psycopg.AsyncCursor.executemany

async def executemany(self, query, params_seq, **kw):
    params_seq = list(params_seq)
    text = query if isinstance(query, str) else repr(query)
    name = names.get(text, text[:60])
    counts[name + " (rows via executemany)"] += len(params_seq)
    counts[name + " (executemany calls)"] += 1
    return await _executemany(self, query, params_seq, **kw)

psycopg.AsyncCursor.executemany = executemany
_claim = ingest.store.Store.claim_feeds

async def claim_feeds(self, **kw):
    found = await _claim(self, **kw)
    claims[len(found)] += 1
    return found

ingest.store.Store.claim_feeds = claim_feeds
try:
    code = main(sys.argv[1:])
finally:
    print(json.dumps({"event": "bench_statements", "counts": counts,
                      "claim_sizes": {str(k): v for k, v in sorted(claims.items())}}),
          file=sys.stderr, flush=True)
sys.exit(code)
"""


@dataclass
class PassResult:
    label: str
    wall_s: float
    feeds: int
    window_s: float
    statuses: dict[str, int]
    site_counts: dict[int, int]
    site_connections: int
    cpu_total: dict[str, float]
    cpu_window: dict[str, float]
    processes: dict[str, int]
    peak_rss_mb: float
    db: dict[str, int]
    summary: str
    breakdown: dict[str, Any] = field(default_factory=dict)
    statements: dict[str, Any] | None = None
    revision: str = ""
    """The project's git revision when the pass started (others may commit during a run)."""

    @property
    def rate_wall(self) -> float:
        return self.feeds / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def rate_window(self) -> float:
        return self.feeds / self.window_s if self.window_s > 0 else 0.0


def db_counters(dsn: str, dbname: str) -> dict[str, int]:
    """Cumulative counters of the bench database: transactions, and ingest.feeds activity."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback, tup_updated, tup_inserted, tup_returned,"
            " tup_fetched FROM pg_stat_database WHERE datname = %s",
            (dbname,),
        ).fetchone()
        feeds = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, coalesce(seq_scan, 0), coalesce(idx_scan, 0),"
            " coalesce(seq_tup_read, 0) FROM pg_stat_user_tables"
            " WHERE relid = 'ingest.feeds'::regclass"
        ).fetchone()
    keys = ("xacts", "tup_updated", "tup_inserted", "tup_returned", "tup_fetched")
    out = dict(zip(keys, (int(v or 0) for v in row or ()), strict=False))
    fkeys = ("feeds_upd", "feeds_hot_upd", "feeds_seq_scan", "feeds_idx_scan", "feeds_seq_read")
    out.update(zip(fkeys, (int(v or 0) for v in feeds or ()), strict=False))
    return out


def run_pass(
    label: str,
    dsn: str,
    env: dict[str, str],
    site: FastSite,
    admin_dsn: str,
    expected: int,
    *,
    keep_logs: Path | None = None,
    profile: Path | None = None,
    count_statements: bool = False,
) -> PassResult:
    dbname = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    args = ["run", "--once", "--all"]
    if count_statements:
        cmd = [sys.executable, "-c", STATEMENT_COUNTER, *args]
    else:
        cmd = profiled([*ingest_command(), *args], profile)
    site.ask("reset")
    revision = project_revision()
    before = db_counters(dsn, dbname)
    started_wall = time.time()
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        with PassSampler(proc.pid, admin_dsn, dbname, site.pids, 0.1) as sampler:
            out, err = proc.communicate(timeout=PASS_TIMEOUT)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    seconds = time.perf_counter() - started
    ended_wall = time.time()
    # Leftovers of the group (workers of a process killed by py-spy's exit, say).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if keep_logs is not None:
        (keep_logs / f"{label.replace(' ', '_')}.jsonl").write_text(err)
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"{label}: `ingest run --once --all` exited {proc.returncode}:\n{tail}")
    time.sleep(1.0)  # exiting backends flush their statistics
    site_counts, site_connections = site.counts()
    after = db_counters(dsn, dbname)
    breakdown = log_breakdown(err, started_wall, ended_wall)
    statements = None
    for line in err.splitlines():
        if '"bench_statements"' in line:
            with contextlib.suppress(ValueError):
                statements = json.loads(line)
    feeds = int(breakdown["feeds_logged"])
    window = float(breakdown["feeds_window_s"])
    first = started_wall + float(breakdown["startup_s"])
    if feeds < expected:
        raise RuntimeError(f"{label}: {feeds} feeds processed of {expected}")
    return PassResult(
        label=label,
        wall_s=seconds,
        feeds=feeds,
        window_s=window,
        statuses=dict(breakdown["statuses"]),
        site_counts=site_counts,
        site_connections=site_connections,
        cpu_total=sampler.between(started_wall, ended_wall + 1),
        cpu_window=sampler.between(first, first + window),
        processes=dict(sampler.seen),
        peak_rss_mb=round(sampler.peak_rss / MB, 1),
        db={k: after.get(k, 0) - before.get(k, 0) for k in after},
        summary=out.strip(),
        breakdown={k: v for k, v in breakdown.items() if k != "statuses"},
        statements=statements,
        revision=revision,
    )


# --- the bare HTTP loop -----------------------------------------------------------------------


@dataclass
class BareResult:
    label: str
    seconds: float
    feeds: int
    statuses: dict[int, int]
    cpu_s: float
    server_cpu_s: float
    body_bytes: int
    connections: int

    @property
    def rate(self) -> float:
        return self.feeds / self.seconds if self.seconds > 0 else 0.0


async def _bare(
    targets: Sequence[tuple[str, str | None, str | None]], concurrency: int, connections: int
) -> tuple[float, Counter[int], int]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    statuses: Counter[int] = Counter()
    size = 0
    async with httpx.AsyncClient(
        trust_env=False,
        limits=limits,
        timeout=30,
        headers={"User-Agent": "poll-bench", "Accept-Encoding": "gzip"},
    ) as client:
        queue = iter(targets)

        async def worker() -> None:
            nonlocal size
            for url, etag, last_modified in queue:
                headers = {}
                if etag:
                    headers["If-None-Match"] = etag
                if last_modified:
                    headers["If-Modified-Since"] = last_modified
                response = await client.get(url, headers=headers)
                statuses[response.status_code] += 1
                size += len(response.content)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return seconds, statuses, size


def run_bare(
    label: str,
    targets: Sequence[tuple[str, str | None, str | None]],
    concurrency: int,
    connections: int,
    site: FastSite,
) -> BareResult:
    """`concurrency` requests in flight over a pool of `connections` (the service's
    INGEST_MAX_CONNECTIONS), in a random order (fixed seed): after phase 0 the service claims
    feeds in `next_fetch_at` order, which its jitter has shuffled."""
    order = list(targets)
    random.Random(42).shuffle(order)
    site.ask("reset")
    server_before = site.cpu_seconds()
    cpu_before = time.process_time()
    seconds, statuses, size = asyncio.run(_bare(order, concurrency, connections))
    cpu = time.process_time() - cpu_before
    return BareResult(
        label,
        seconds,
        sum(statuses.values()),
        dict(statuses),
        round(cpu, 3),
        round(site.cpu_seconds() - server_before, 3),
        size,
        site.counts()[1],
    )


# --- report -----------------------------------------------------------------------------------


def med(values: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    n = len(ordered)
    mid = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return mid, ordered[0], ordered[-1]


def fmt(values: Sequence[float], digits: int = 0) -> str:
    m, lo, hi = med(values)
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def cpu_cells(runs: Sequence[PassResult]) -> str:
    """Median CPU seconds in the feeds window per role group, with % of one core."""
    window = med([r.window_s for r in runs])[0] or 1.0
    groups = {
        "main": ("main",),
        "workers": ("forkserver", "worker"),
        "pg": ("pg",),
        "pg-aux": ("pg_aux",),
        "site": ("server",),
    }
    cells = []
    for name, roles in groups.items():
        v = med([sum(r.cpu_window.get(x, 0.0) for x in roles) for r in runs])[0]
        cells.append(f"{name} {v:5.2f}s {100 * v / window:3.0f}%")
    return "  ".join(cells)


def report(
    passes: dict[str, list[PassResult]],
    bare: dict[str, list[BareResult]],
    args: argparse.Namespace,
    server_procs: int,
) -> list[str]:
    out = [
        "",
        f"{'row':<24} {'feeds/s wall (min-max)':>24} {'feeds/s window (min-max)':>26}"
        f"  {'vs bare':>7}   CPU in the feeds window (s, % of one core)",
    ]
    for key, title in (
        ("A", "A 304"),
        ("B", "B 200 same body"),
        ("C", "C 200 new body (parsed)"),
    ):
        runs = passes.get(key, [])
        b = bare.get(key, [])
        bare_rate = med([r.rate for r in b])[0] if b else None
        if runs:
            window = med([r.rate_window for r in runs])[0]
            ratio = f"{window / bare_rate:7.2f}" if bare_rate else f"{'-':>7}"
            out.append(
                f"{title + ' project':<24} {fmt([r.rate_wall for r in runs]):>24}"
                f" {fmt([r.rate_window for r in runs]):>26}  {ratio}   {cpu_cells(runs)}"
            )
        if b:
            secs = med([r.seconds for r in b])[0] or 1.0
            bcpu = med([r.cpu_s for r in b])[0]
            scpu = med([r.server_cpu_s for r in b])[0]
            out.append(
                f"{title + ' bare HTTP':<24} {'':>24} {fmt([r.rate for r in b]):>26}"
                f"  {1.0:7.2f}   loop {bcpu:5.2f}s {100 * bcpu / secs:3.0f}%"
                f"  site {scpu:5.2f}s {100 * scpu / secs:3.0f}%"
                f"  ({b[-1].connections} TCP connections for {b[-1].feeds} requests)"
            )
    out.append(
        f"(site: {server_procs} asyncio process(es); its % is of one core, so"
        f" {100 * server_procs}% would mean every site process saturated)"
    )
    out.append("")
    for key in ("A", "B", "C"):
        runs = passes.get(key, [])
        if not runs:
            continue
        last = runs[-1]
        n = max(last.feeds, 1)
        per = {k: round(v / n, 2) for k, v in last.db.items() if k in ("xacts", "feeds_upd")}
        cpu_ms = {
            k: round(1000 * med([r.cpu_window.get(k, 0.0) / max(r.feeds, 1) for r in runs])[0], 3)
            for k in ("main", "pg", "server")
        }
        out.append(
            f"{key}: {med([r.wall_s for r in runs])[0]:.1f} s wall = start-up"
            f" {med([r.breakdown['startup_s'] for r in runs])[0]:.1f} s + feeds"
            f" {med([r.window_s for r in runs])[0]:.1f} s + shutdown"
            f" {med([r.breakdown['shutdown_s'] for r in runs])[0]:.1f} s; one feed takes"
            f" {med([r.breakdown['feed_ms_median'] or 0 for r in runs])[0]:.0f} ms (median of the"
            f" `ms` logged) with {args.concurrent_feeds} in flight; per feed: CPU ms"
            f" {cpu_ms}; db {per} (transactions, ingest.feeds row updates);"
            f" peak RSS {med([r.peak_rss_mb for r in runs])[0]:.0f} MB"
        )
        out.append(
            f"   last run: logs {last.statuses}; site answered {last.site_counts} over"
            f" {last.site_connections} TCP connections;"
            f" processes seen {last.processes}; `{last.summary}`"
        )
        workers = sum(r.processes.get("worker", 0) + r.processes.get("forkserver", 0) for r in runs)
        cpu_workers = sum(
            r.cpu_total.get("worker", 0.0) + r.cpu_total.get("forkserver", 0.0) for r in runs
        )
        out.append(
            f"   over its {len(runs)} run(s): fork server + worker processes started"
            f" {workers}, their CPU {cpu_workers:.2f} s"
        )
    return out


def proof_lines(passes: dict[str, list[PassResult]]) -> list[str]:
    """The evidence that B parsed nothing. Parsing runs only in the worker processes (the fork
    server's children), so their CPU time bounds the number of feeds parsed."""
    b = passes.get("B", [])
    if not b:
        return []
    answered_200 = all(
        r.site_counts.get(200, 0) >= r.feeds and not r.site_counts.get(304) for r in b
    )
    logged_nm = all(r.statuses.get("not_modified", 0) == r.feeds for r in b)
    b_cpu = max(r.cpu_total.get("worker", 0.0) for r in b)
    a_cpu = max((r.cpu_total.get("worker", 0.0) for r in passes.get("A", [])), default=0.0)
    started = max(r.processes.get("worker", 0) for r in b)
    lines = [
        "",
        "B, no parsing: the site answered 200 with the full body to every feed request"
        f" [{'yes' if answered_200 else 'NO'}]; the service logged every feed"
        f" `not_modified` [{'yes' if logged_nm else 'NO'}] (pipeline.py returns that status"
        " after a 200 only when the body hash equals the stored one, before `_parse`); the"
        f" parse worker processes ({started} started per pass) used at most {b_cpu:.2f} s of"
        f" CPU in any B pass, against {a_cpu:.2f} s in A (304s: nothing to parse), i.e. their"
        " start-up and idling.",
    ]
    c = passes.get("C", [])
    if c:
        r = c[-1]
        per_feed = r.cpu_total.get("worker", 0.0) / max(r.feeds, 1)
        bound = f"{b_cpu / per_feed:.0f}" if per_feed > 0 else "?"
        lines.append(
            f"  Contrast, C (changed body, parsed): logs {r.statuses}; the workers used"
            f" {r.cpu_total.get('worker', 0.0):.1f} s of CPU, {1000 * per_feed:.2f} ms per feed:"
            f" B's worker CPU is worth at most {bound} parsed feeds of {b[-1].feeds}, and"
            " that much CPU goes to start-up alone."
        )
    lines.append(
        "  The project emits no parse-specific log event or metric: `feed_processed` and"
        " ingest_feeds_polled_total{status} say `not_modified` both for a 304 and for an"
        " identical body, hence the proof by status counts and worker CPU."
    )
    return lines


def statement_lines(instrumented: dict[str, PassResult]) -> list[str]:
    lines = []
    for key, r in instrumented.items():
        if not r.statements:
            continue
        n = max(r.feeds, 1)
        counts: dict[str, int] = r.statements.get("counts", {})
        total = sum(v for k, v in counts.items() if not k.endswith("(executemany calls)"))
        shown = sorted(((k, v) for k, v in counts.items() if v / n >= 0.01), key=lambda kv: -kv[1])
        rest = total - sum(v for k, v in shown if not k.endswith("(executemany calls)"))
        per = ", ".join(f"{name} {v / n:.2f}" for name, v in shown)
        per += f"; other statements (start-up, migrations check): {rest} in all"
        claims: dict[str, int] = r.statements.get("claim_sizes", {})
        n_claims = sum(claims.values())
        lines.append(
            f"{key} statements per feed (instrumented pass, {r.feeds} feeds):"
            f" {total / n:.2f} in all: {per}"
        )
        lines.append(
            f"   claims: {n_claims} ({n_claims / n:.2f} per feed); feeds per claim:"
            f" {dict(sorted(claims.items(), key=lambda kv: int(kv[0])))}"
        )
    return lines


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="poll_bench.py",
        description="The warm poll: `ingest run --once --all` over feeds with nothing new.",
    )
    p.add_argument("--feeds", type=int, default=10_000, help="RSS feeds (default 10000)")
    p.add_argument("--hosts", type=int, default=50, help="loopback hosts (default 50)")
    p.add_argument("--entries", type=int, default=10, help="items per feed (default 10)")
    p.add_argument("--stories", type=int, default=20, help="story URLs per host (default 20)")
    p.add_argument("--repeat", type=int, default=3, help="runs of A and B (default 3)")
    p.add_argument(
        "--concurrent-feeds",
        type=int,
        default=32,
        help="INGEST_CONCURRENT_FEEDS and the bare loop's requests in flight (default 32, the"
        " service's default)",
    )
    p.add_argument(
        "--per-host", type=int, default=2, help="INGEST_PER_HOST_CONNECTIONS (default 2)"
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="INGEST_MAX_CONNECTIONS and the bare loop's pool size (default: the project's 32,"
        " or --concurrent-feeds if larger)",
    )
    p.add_argument("--workers", type=int, default=2, help="INGEST_WORKERS (default 2)")
    p.add_argument(
        "--server-procs", type=int, default=2, help="site processes (default 2, SO_REUSEPORT)"
    )
    p.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end with phase C, a changed body that must be parsed (default on)",
    )
    p.add_argument(
        "--count-statements",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one instrumented pass of A and of B counting SQL statements (default on)",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="one more phase-A pass under py-spy (all processes); raw collapsed stacks in FILE",
    )
    p.add_argument("--admin-url", default=ADMIN_DSN_DEFAULT, help="PostgreSQL admin DSN")
    p.add_argument("--keep-logs", metavar="DIR", help="write each pass's JSON log lines to DIR")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    for name in ("feeds", "hosts", "entries", "stories", "repeat", "concurrent_feeds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("per_host", "workers", "server_procs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_connections is None:
        args.max_connections = max(32, args.concurrent_feeds)
    if args.max_connections < 1:
        p.error("--max-connections must be at least 1")
    if not 1 <= args.hosts <= 250:
        p.error("--hosts must be between 1 and 250")
    if args.feeds > 99_999:
        p.error("--feeds must be at most 99999")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def import_feeds(dsn: str, env: dict[str, str], urls: Sequence[str]) -> float:
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="poll_bench_") as f:
        f.write("\n".join(urls) + "\n")
        f.flush()
        for args in (["migrate"], ["feeds", "import", f.name]):
            done = subprocess.run(
                [*ingest_command(), *args],
                env=env,
                cwd="/",
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"`ingest {args[0]}` exited {done.returncode}: {done.stderr}")
    return time.perf_counter() - started


def validators(dsn: str) -> list[tuple[str, str | None, str | None]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT url, etag, last_modified FROM ingest.feeds ORDER BY id"
        ).fetchall()
    return [(str(u), e, m) for u, e, m in rows]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    info = machine()
    try:
        with psycopg.connect(args.admin_url, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = str(row[0]) if row else "?"
    except psycopg.Error as e:
        print(f"poll_bench: PostgreSQL not reachable at {args.admin_url!r}: {e}", file=sys.stderr)
        return 1
    command = shlex.join(sys.orig_argv)
    print(f"command: {command}")
    print(
        f"machine: {info['cpu_count']} cpus ({info['cpus_usable']} usable, {info['cpu_model']}),"
        f" load {info['load_average']}, {info['memory_gb']} GB; Python {info['python']};"
        f" PostgreSQL {info['postgresql']}; httpx {info['httpx']}; project at"
        f" {info['project_revision']}"
    )
    print(
        f"config: {args.feeds} feeds x {args.entries} items on {args.hosts} hosts;"
        f" INGEST_CONCURRENT_FEEDS={args.concurrent_feeds} INGEST_PER_HOST_CONNECTIONS="
        f"{args.per_host} INGEST_MAX_CONNECTIONS={args.max_connections}"
        f" INGEST_WORKERS={args.workers} INGEST_HOST_DELAY=0; site {args.server_procs}"
        f" process(es); {args.repeat} run(s) of A, bare A, B, bare B interleaved"
    )
    keep_logs = Path(args.keep_logs) if args.keep_logs else None
    if keep_logs is not None:
        keep_logs.mkdir(parents=True, exist_ok=True)
    hosts = [host_address(h) for h in range(args.hosts)]
    passes: dict[str, list[PassResult]] = {}
    bare: dict[str, list[BareResult]] = {}
    instrumented: dict[str, PassResult] = {}
    failures: list[str] = []
    profile_text = ""
    phase0: PassResult | None = None
    total_started = time.perf_counter()
    port = free_port(hosts[0])
    spec = PollSiteSpec(args.feeds, hosts, port, args.entries, args.stories)

    def step(name: str, fn: Callable[..., T], *fn_args: Any, **fn_kw: Any) -> T | None:
        t0 = time.perf_counter()
        try:
            result = fn(*fn_args, **fn_kw)
        except Exception as e:
            failures.append(f"{name}: {type(e).__name__}: {e}")
            print(f"  {name}: FAILED ({type(e).__name__}: {e})", file=sys.stderr, flush=True)
            traceback.print_exc()
            return None
        if isinstance(result, PassResult):
            print(
                f"  {name:<26} {result.rate_wall:7.0f} feeds/s wall, {result.rate_window:7.0f}"
                f" in the feeds window ({result.feeds} in {result.wall_s:.1f} s,"
                f" window {result.window_s:.1f} s) logs {result.statuses} site"
                f" {result.site_counts}, {result.site_connections} connections;"
                f" project at {result.revision}",
                flush=True,
            )
        elif isinstance(result, BareResult):
            print(
                f"  {name:<26} {result.rate:7.0f} feeds/s ({result.feeds} in"
                f" {result.seconds:.1f} s) statuses {result.statuses}; loop CPU"
                f" {result.cpu_s:.1f} s, site CPU {result.server_cpu_s:.1f} s,"
                f" {result.connections} connections",
                flush=True,
            )
        else:
            print(f"  {name:<26} done in {time.perf_counter() - t0:.1f} s", flush=True)
        return result

    with Databases(args.admin_url) as dbs:
        site_started = time.perf_counter()
        with FastSite(make_poll_app, spec, hosts, args.server_procs, port) as site:
            print(
                f"site: {args.server_procs} process(es) (pids {site.pids}) on port {site.port},"
                f" ready in {time.perf_counter() - site_started:.1f} s"
            )
            dsn = dbs.create("poll")
            env = base_env(dsn)
            env.update(
                INGEST_WORKERS=str(args.workers),
                INGEST_HOST_DELAY="0",
                INGEST_CONCURRENT_FEEDS=str(args.concurrent_feeds),
                INGEST_PER_HOST_CONNECTIONS=str(args.per_host),
                INGEST_MAX_CONNECTIONS=str(args.max_connections),
                INGEST_HTTP_PORT="0",
            )
            urls = [site.url(f % args.hosts, feed_path(f)) for f in range(args.feeds)]
            seconds = import_feeds(dsn, env, urls)
            print(f"set-up: migrate + `feeds import` of {len(urls)} feeds in {seconds:.1f} s")

            def one(label: str, mode: str, **kw: Any) -> PassResult:
                site.ask(("mode", mode))
                return run_pass(
                    label, dsn, env, site, args.admin_url, args.feeds, keep_logs=keep_logs, **kw
                )

            print("phase 0 (first poll: every feed answers 200 and is parsed):")
            phase0 = step("phase 0", one, "phase0", "conditional")
            targets = validators(dsn) if phase0 is not None else []
            missing = sum(1 for _, e, m in targets if not e and not m)
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE body_hash IS NULL),"
                    " count(*) FILTER (WHERE last_status IS DISTINCT FROM 'ok'),"
                    " (SELECT count(*) FROM ingest.articles),"
                    " (SELECT count(*) FROM ingest.feed_entries) FROM ingest.feeds"
                ).fetchone()
            assert row is not None
            print(
                f"  after phase 0: feeds without validators {missing}, without body hash"
                f" {row[0]}, not 'ok' {row[1]}; articles {row[2]}, feed entries {row[3]}"
            )
            if phase0 is None or missing or row[0] or row[1]:
                failures.append("phase 0 did not leave every feed polled with validators")
            else:
                for k in range(args.repeat):
                    print(f"run {k + 1}/{args.repeat}:")
                    for key, mode in (("A", "conditional"), ("B", "ignore")):
                        r = step(f"{key} project", one, f"{key}{k + 1}", mode)
                        if r is not None:
                            passes.setdefault(key, []).append(r)
                        b = step(
                            f"{key} bare HTTP",
                            run_bare,
                            key,
                            targets,
                            args.concurrent_feeds,
                            args.max_connections,
                            site,
                        )
                        if b is not None:
                            bare.setdefault(key, []).append(b)
                if args.count_statements:
                    print("instrumented passes (statement counts; not in the figures):")
                    for key, mode in (("A", "conditional"), ("B", "ignore")):
                        r = step(
                            f"{key} counted", one, f"{key}-counted", mode, count_statements=True
                        )
                        if r is not None:
                            instrumented[key] = r
                if args.profile:
                    print(f"profiled pass of A (py-spy, not in the figures) into {args.profile}:")
                    r = step(
                        "A profiled", one, "A-profiled", "conditional", profile=Path(args.profile)
                    )
                    if r is not None:
                        try:
                            from profile_summary import summarize as summarize_profile

                            profile_text = summarize_profile(Path(args.profile), 20, [])
                        except (ImportError, OSError) as e:
                            profile_text = f"(no summary: {e})"
                if args.control:
                    print("phase C (control: a changed body, parsed):")
                    r = step("C project", one, "C", "changed")
                    if r is not None:
                        passes["C"] = [r]

    lines = report(passes, bare, args, args.server_procs)
    if phase0 is not None:
        lines.insert(
            1,
            f"phase 0 (first poll, parse + plan + link, not in the table):"
            f" {phase0.rate_wall:.0f} feeds/s wall, {phase0.rate_window:.0f} in the feeds"
            f" window; `{phase0.summary}`",
        )
    revisions = sorted({r.revision for runs in passes.values() for r in runs})
    if phase0 is not None and phase0.revision not in revisions:
        revisions.insert(0, phase0.revision)
    if len(revisions) > 1:
        lines.append(
            f"NOTE: the project changed during the run (revisions {revisions}): compare passes"
            " of one revision only; each pass's revision is in the --json output."
        )
    lines += proof_lines(passes)
    lines += ["", *statement_lines(instrumented)]
    print("\n".join(lines))
    if profile_text:
        print("\n" + profile_text)
    print(f"\ntotal bench time {time.perf_counter() - total_started:.0f} s")
    if failures:
        print("failed steps:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
    if args.json:
        payload = {
            "command": command,
            "machine": info,
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "phase0": asdict(phase0) if phase0 else None,
            "passes": {k: [asdict(r) for r in v] for k, v in passes.items()},
            "bare": {k: [asdict(r) for r in v] for k, v in bare.items()},
            "instrumented": {k: asdict(r) for k, r in instrumented.items()},
            "summary": {
                key: {
                    "feeds_per_s_wall": med([r.rate_wall for r in runs]),
                    "feeds_per_s_window": med([r.rate_window for r in runs]),
                    "bare_feeds_per_s": med([b.rate for b in bare[key]]) if bare.get(key) else None,
                }
                for key, runs in passes.items()
            },
            "profile_summary": profile_text or None,
            "failures": failures,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
