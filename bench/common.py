"""Helpers shared by the benchmarks: the AEB corpus, a local multi-host news site served from a
separate process, throwaway PostgreSQL databases and a peak-RSS sampler."""

from __future__ import annotations

import contextlib
import gzip
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import psutil
import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from tests.support.httpserver import Request, Response

ROOT = Path(__file__).resolve().parent.parent
"""The repository (this file lives in <repo>/bench)."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_DSN_DEFAULT = os.environ.get(
    "INGEST_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DB_PREFIX = "ingest_bench_"
ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


# --- corpus -----------------------------------------------------------------------------------


def find_aeb(override: str | None) -> Path:
    """The AEB corpus directory: `--aeb DIR`, else `<repo>/../shared/aeb` (the CI layout puts
    `shared` next to the clone). Exits with a clear message when it is missing."""
    where = Path(override) if override else ROOT.parent / "shared" / "aeb"
    html = where / "html"
    if not html.is_dir() or not any(html.glob("*.html.gz")):
        hint = "" if override else " (pass --aeb DIR to point at it)"
        raise SystemExit(f"ingest_bench: AEB corpus not found: expected {html}/<id>.html.gz{hint}")
    return where.resolve()


def corpus_ids(aeb: Path, limit: int | None = None) -> list[str]:
    """Page ids in a stable (sorted) order, the first `limit` of them when given."""
    ids = sorted(p.name.removesuffix(".html.gz") for p in (aeb / "html").glob("*.html.gz"))
    return ids[:limit] if limit else ids


def read_page(aeb: Path, page_id: str) -> bytes:
    """The page of an id; "<id>~<k>" is the k-th copy of <id> (served under its own URL)."""
    source = page_id.split("~")[0]
    return gzip.decompress((aeb / "html" / f"{source}.html.gz").read_bytes())


def with_copies(ids: Sequence[str], copies: int) -> list[str]:
    """The ids, then `copies - 1` more rounds of them as "<id>~<k>": a bigger corpus of the same
    pages, so that fixed costs (process start-up) weigh less against the work."""
    return [i if k == 0 else f"{i}~{k}" for k in range(copies) for i in ids]


# --- the local site ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedPlan:
    host: int
    """Index of the loopback host serving the feed and its pages."""
    path: str
    page_ids: tuple[str, ...]


def plan_site(ids: Sequence[str], n_feeds: int, n_hosts: int) -> list[FeedPlan]:
    """Deal the pages round-robin over `n_feeds` feeds (every page in exactly one feed), and the
    feeds round-robin over `n_hosts` hosts; a feed's pages live on the feed's host."""
    n_feeds = max(1, min(n_feeds, len(ids)))
    buckets: list[list[str]] = [[] for _ in range(n_feeds)]
    for i, page_id in enumerate(ids):
        buckets[i % n_feeds].append(page_id)
    return [
        FeedPlan(host=f % n_hosts, path=f"/feeds/{f:03d}.xml", page_ids=tuple(bucket))
        for f, bucket in enumerate(buckets)
    ]


def page_path(page_id: str) -> str:
    return f"/news/{page_id[:2]}/{page_id}.html"


def host_address(index: int) -> str:
    """127.0.0.2, 127.0.0.3, ...: any 127/8 address is loopback on Linux."""
    return f"127.0.0.{2 + index}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now at `host` (the OS picks it; another process could
    take it before it is used, which is unlikely on a bench machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def rss(title: str, base: str, items: Sequence[tuple[str, str]], start: datetime) -> bytes:
    """An RSS 2.0 document: `items` are (page id, absolute URL)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(base)}/</link>",
        "<description>news-ingest benchmark feed</description>",
    ]
    for n, (page_id, url) in enumerate(items):
        when = format_datetime(start - timedelta(minutes=37 * n), usegmt=True)
        parts.append(
            f"<item><title>Article {page_id[:12]}</title><link>{escape(url)}</link>"
            f'<guid isPermaLink="true">{escape(url)}</guid><pubDate>{when}</pubDate>'
            f"<description>Summary of article {page_id[:12]}.</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class SiteInfo:
    feed_urls: list[str]
    page_urls: dict[str, str]
    pid: int


def _serve_site(aeb: str, plan: list[FeedPlan], n_hosts: int, conn: Connection) -> None:
    """Child process: one LocalServer per loopback host; pages come from memory (plain, or
    gzip precompressed once when the client accepts it). Runs until told to stop or the parent
    goes away."""
    from tests.support.httpserver import LocalServer, Response

    def document(data: bytes, content_type: str) -> Callable[[Request], Response]:
        packed = gzip.compress(data, 6)

        def handle(req: Request) -> Response:
            headers = {"Content-Type": content_type}
            if "gzip" in req.headers.get("accept-encoding", ""):
                headers["Content-Encoding"] = "gzip"
                return Response(200, packed, headers)
            return Response(200, data, headers)

        return handle

    servers = [LocalServer(host_address(h)) for h in range(n_hosts)]
    for srv in servers:
        # LocalServer writes the headers and the body of a response in two send() calls; on a
        # kept-alive connection Nagle's algorithm then holds the body back until the client's
        # delayed ACK of the headers, about 40 ms per request. Real servers set TCP_NODELAY.
        srv._httpd.RequestHandlerClass.disable_nagle_algorithm = True
    start = datetime(2025, 8, 11, 14, 0, tzinfo=UTC)
    feed_urls: list[str] = []
    page_urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for srv in servers:
            srv.routes["/robots.txt"] = Response(
                200, ROBOTS_TXT, {"Content-Type": "text/plain; charset=utf-8"}
            )
            stack.enter_context(srv)
        for n, feed in enumerate(plan):
            srv = servers[feed.host]
            items = []
            for page_id in feed.page_ids:
                path = page_path(page_id)
                srv.routes[path] = document(read_page(Path(aeb), page_id), "text/html")
                page_urls[page_id] = srv.url(path)
                items.append((page_id, srv.url(path)))
            body = rss(f"Bench feed {n}", srv.base, items, start - timedelta(hours=n))
            srv.routes[feed.path] = document(body, "application/rss+xml; charset=UTF-8")
            feed_urls.append(srv.url(feed.path))
        conn.send(SiteInfo(feed_urls, page_urls, os.getpid()))
        with contextlib.suppress(EOFError, OSError):
            conn.recv()


@contextlib.contextmanager
def local_site(aeb: Path, plan: list[FeedPlan], n_hosts: int) -> Iterator[SiteInfo]:
    """Serve the site from a separate process, so that serving costs no GIL time and no memory
    in the process being measured."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_serve_site, args=(str(aeb), plan, n_hosts, child), name="bench-site", daemon=True
    )
    proc.start()
    child.close()
    try:
        if not parent.poll(120):
            raise RuntimeError("the local site did not start within 120 s")
        info: SiteInfo = parent.recv()
        yield info
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        parent.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


# --- databases --------------------------------------------------------------------------------


class Databases:
    """Creates `ingest_bench_*` databases and drops every one of them on exit."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.created: list[str] = []

    def dsn(self, name: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_dsn, dbname=name)

    def create(self, label: str) -> str:
        name = f"{DB_PREFIX}{label}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.dsn(name)

    def drop(self, dsn: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        if not (isinstance(name, str) and name.startswith(DB_PREFIX)):
            raise ValueError(f"refusing to drop {name!r}: not a {DB_PREFIX}* database")
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> list[str]:
        """Drop every database still around; returns the names that could not be dropped."""
        failed = []
        for name in list(self.created):
            try:
                self.drop(self.dsn(name))
            except psycopg.Error:
                failed.append(name)
        return failed

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc: object) -> None:
        failed = self.drop_all()
        if failed:
            print(f"ingest_bench: could not drop databases: {', '.join(failed)}", file=sys.stderr)


# --- measuring --------------------------------------------------------------------------------


@dataclass
class ProcessSampler:
    """Samples some processes (plus all their descendants when `tree`) every `interval` seconds
    in a thread. `peak_rss` is the largest sum of their resident set sizes seen, in bytes;
    `cpu_seconds` the user+system CPU time they used while sampled (for processes that end
    between two samples, up to one interval of their last CPU time is missed)."""

    pids: Sequence[int]
    tree: bool = True
    interval: float = 0.05
    backends_of: str | None = None
    """Instead of `pids`: the PostgreSQL server processes serving this database (their command
    line names it), found afresh at every sample."""
    peak_rss: int = 0
    samples: int = 0
    _cpu_first: dict[int, float] = field(default_factory=dict)
    _cpu_last: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def cpu_seconds(self) -> float:
        return sum(v - self._cpu_first.get(pid, 0.0) for pid, v in self._cpu_last.items())

    @property
    def cpu_seconds_roots(self) -> float:
        """CPU time of the processes in `pids` alone, without their descendants."""
        return sum(
            v - self._cpu_first.get(pid, 0.0)
            for pid, v in self._cpu_last.items()
            if pid in self.pids
        )

    def sample(self) -> None:
        procs: dict[int, psutil.Process] = {}
        if self.backends_of is not None:
            procs.update(postgres_backends(self.backends_of))
        for pid in self.pids:
            try:
                proc = psutil.Process(pid)
                procs[pid] = proc
                if self.tree:
                    procs.update((c.pid, c) for c in proc.children(recursive=True))
            except psutil.Error:
                continue
        total = 0
        for pid, p in procs.items():
            with contextlib.suppress(psutil.Error):
                with p.oneshot():
                    total += p.memory_info().rss
                    times = p.cpu_times()
                cpu = times.user + times.system
                if self.samples == 0:
                    # Processes already running when sampling starts: count from now on.
                    self._cpu_first[pid] = cpu
                self._cpu_last[pid] = cpu
        self.peak_rss = max(self.peak_rss, total)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def postgres_backends(dbname: str) -> dict[int, psutil.Process]:
    """PostgreSQL backend processes connected to `dbname` ("postgres: user dbname host ...")."""
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("postgres: ") and f" {dbname} " in f"{cmd} ":
            found[p.pid] = p
    return found


def summarize(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
