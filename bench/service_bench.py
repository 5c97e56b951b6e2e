"""The long-lived service with replicas: `ingest run` x R against one database and a local site.

    .venv/bin/python bench/service_bench.py [--feeds 1000] [--replicas 3] [--entries 3]
        [--hosts 50] [--no-kill] [--kill-feeds N] [--json FILE]

Evidence for "several replicas, one database" (README): every due feed is fetched by exactly
one process, every page once, no article is stored twice, no lease is left behind, the
endpoints answer, SIGTERM drains and exits 0, and a replica killed with SIGKILL loses its feeds
only until their leases expire.

The site. A separate process (so serving costs the measured processes nothing) runs one HTTP
server per loopback host 127.0.0.2, 127.0.0.3, ... (`--hosts`, default 50), each with a
robots.txt. It serves `--feeds` RSS feeds (default 1000, dealt round-robin over the hosts), each
with `--entries` items (default 3) dated one hour apart, the newest ten minutes old, so that
the adaptive schedule polls each feed again in about 30 minutes: nothing is due twice during
the run. Feeds carry an ETag; every item links to a small synthetic HTML article page (3-5
paragraphs of generated text, unique per page, with navigation and footer boilerplate) on the
feed's host. Feeds and pages are gzip-compressed when the client accepts it. The site counts
every request per URL; the counts are read at the end.

Phase 1 (service). A fresh `ingest_bench_*` database, `ingest migrate`, `ingest feeds import`
of a URL-a-line file. Then R replicas of `ingest run` (default 3) start at once, each with its
own /metrics port, INGEST_WORKERS=1 (the machine's cores are shared by all replicas),
INGEST_TICK_SECONDS=1 and INGEST_HOST_DELAY=0.05 (the default 0.5 s would make the per-host
spacing, not the service, the bottleneck of a 20-feeds-per-host site), JSON logs to one file
per replica. The bench waits until every feed has a `last_status`, sampling /healthz and
/readyz of each replica once on the way, waits 5 s more (ticks keep running: they must fetch
nothing), scrapes each replica's /metrics, sends SIGTERM to all and waits for each to exit
(the service's grace period is 30 s). Reported: wall time from the replicas' start to the last
feed done, feeds/s and articles/s; how many times each feed, page and robots.txt was requested;
articles in the database against distinct URLs and against the pages served; leases still
held; each replica's share of the feeds (its `feed_processed` log lines), exit code and exit
time; and a summary of each replica's /metrics, plus one replica's raw `ingest_*` lines.

Phase 2 (`--kill`, on by default; `--no-kill` skips it). A new site whose pages answer ~50 ms
late, a fresh database, 2 replicas with INGEST_LEASE_SECONDS=5. When a third of the feeds are
done, one replica gets SIGKILL. The feeds it held (read from the database right after the
kill) stay leased until their leases expire, then the survivor takes them. Reported: the time
to finish, the feeds each replica processed, when the orphaned feeds were finished, duplicates,
and which feeds and pages were fetched twice (expected: only those of the feeds the killed
replica had in flight). Worker processes the killed replica leaves behind are reported, then
killed. Default `--kill-feeds` is a third of `--feeds` (at least 100) to keep the run short.

Exit status: 1 when a correctness check fails (a feed never fetched or fetched twice in phase
1, a page fetched twice outside the killed replica's feeds, a duplicate or missing article, a
failed feed, a replica exiting non-zero or not at all, leases held at the end, no feed done for
60 s, the timeout); speed is never asserted. Every `ingest_bench_*` database created is dropped
at the end, also on error, Ctrl-C or SIGTERM; replicas still running are killed. The logs are
kept (`--logs DIR`, default a new directory under /tmp) and their path printed. The replicas
import `ingest` the way the `ingest` script does, so PYTHONPATH can point them at another
checkout; the header says where the code came from. All traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import multiprocessing
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import httpx
import psutil
import psycopg
from common import ADMIN_DSN_DEFAULT, ROBOTS_TXT, ROOT, Databases, free_port, host_address
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from tests.support.httpserver import Request, Response

GRACE_SECONDS = 30.0
"""jobs/service.py: how long a stopping replica lets its feeds in progress finish."""
SETTLE_SECONDS = 5.0
STALL_SECONDS = 60.0
"""Stop waiting when no feed gets done for this long (replicas failing every tick)."""
SAMPLE_AFTER = 30.0
"""Sample /healthz and /readyz when half the feeds are done, or after this long."""
KILL_LEASE_SECONDS = 5
KILL_PAGE_DELAY = 0.05
HOST_DELAY = "0.05"
TICK_SECONDS = "1"

# --- the local site ---------------------------------------------------------------------------

# fmt: off
_WORDS = [
    "city", "council", "budget", "vote", "district", "school", "river", "bridge", "project",
    "county", "board", "plan", "members", "residents", "meeting", "public", "hearing", "water",
    "energy", "price", "market", "report", "season", "team", "coach", "game", "players", "fans",
    "stadium", "league", "record", "weather", "storm", "rain", "week", "month", "year", "police",
    "fire", "station", "hospital", "health", "care", "doctors", "nurses", "patients", "study",
    "research", "university", "students", "teachers", "policy", "government", "minister",
    "election", "campaign", "voters", "poll", "party", "leader", "state", "federal", "court",
    "judge", "ruling", "case", "law", "company", "workers", "jobs", "factory", "business",
    "owners", "shop", "street", "traffic", "road", "construction", "housing", "rent", "homes",
    "families", "children", "parents", "library", "museum", "festival", "music", "artists",
    "local", "officials", "spokesperson", "announced", "said", "reported", "confirmed", "expected",
    "planned", "approved", "rejected", "delayed", "opened", "closed", "increased", "decreased",
    "during", "after", "before", "because", "although", "while", "since", "until", "new", "old",
    "large", "small", "early", "late", "first", "second", "final", "annual", "quarterly",
    "regional", "national", "international", "community", "neighborhood", "downtown", "morning",
    "evening",
]
# fmt: on


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(9, 20))
    return " ".join(words).capitalize() + "."


def article_html(number: int, title: str, when: datetime) -> bytes:
    """A small news page: boilerplate around 3-5 generated paragraphs, unique per `number`."""
    rng = random.Random(number)
    paragraphs = [
        " ".join([f"Story {number} opens here."] + [_sentence(rng) for _ in range(4)])
        if i == 0
        else " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))
        for i in range(rng.randint(3, 5))
    ]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    iso = when.isoformat()
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "datePublished": iso,
            "author": {"@type": "Person", "name": f"Reporter {number % 37}"},
        }
    )
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Bench Gazette</title>
<meta property="og:title" content="{escape(title)}">
<meta property="article:published_time" content="{iso}">
<script type="application/ld+json">{ld}</script></head>
<body><header><nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/sports/">Sports</a>
<a href="/about/">About us</a></nav></header>
<main><article><h1>{escape(title)}</h1><p class="byline">By Reporter {number % 37}</p>
<time datetime="{iso}">{when:%B %d, %Y}</time>
{body}
</article>
<aside><h2>Popular Posts</h2><ul><li><a href="/news/x.html">Another story</a></li>
<li><a href="/news/y.html">Yet another story</a></li></ul></aside></main>
<footer><p>Share this: Facebook Twitter Email</p><p>&copy; Bench Gazette. All rights reserved.
</p></footer></body></html>
"""
    return html.encode("utf-8")


def feed_rss(number: int, base: str, items: Sequence[tuple[str, str, datetime]]) -> bytes:
    """RSS 2.0 with `items` = (title, URL, date)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>Service bench feed {number}</title><link>{escape(base)}/</link>",
        "<description>news-ingest service benchmark feed</description>",
    ]
    for title, url, when in items:
        parts.append(
            f"<item><title>{escape(title)}</title><link>{escape(url)}</link>"
            f'<guid isPermaLink="true">{escape(url)}</guid>'
            f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>"
            f"<description>Summary of {escape(title)}.</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True)
class SiteSpec:
    feeds: int
    entries: int
    hosts: int
    page_delay: float = 0.0
    """Seconds every article page waits before answering."""


@dataclass(frozen=True)
class SiteInfo:
    feeds: list[str]
    """Feed URLs, feed 0 first."""
    pages: dict[str, list[str]]
    """Feed URL -> the URLs of its entries' pages."""
    robots: list[str]
    pid: int


def _document(
    data: bytes, content_type: str, *, etag: str | None = None, delay: float = 0.0
) -> Callable[[Request], Response]:
    """A route like tests.support.httpserver.static, gzip precompressed once, with an optional
    delay before answering."""
    from tests.support.httpserver import Response

    packed = gzip.compress(data, 6)

    def handle(req: Request) -> Response:
        if delay:
            time.sleep(delay)
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
            if req.headers.get("if-none-match") == etag:
                return Response(304, b"", headers)
        if "gzip" in req.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(200, packed, headers)
        return Response(200, data, headers)

    return handle


def _serve_site(spec: SiteSpec, conn: Connection) -> None:
    """Child process: one LocalServer per loopback host. Answers "counts" on the pipe with the
    requests seen per URL; stops on "stop" or when the parent goes away."""
    from tests.support.httpserver import LocalServer, Response

    servers = [LocalServer(host_address(h)) for h in range(spec.hosts)]
    now = datetime.now(UTC).replace(microsecond=0)
    feeds: list[str] = []
    pages: dict[str, list[str]] = {}
    with contextlib.ExitStack() as stack:
        for srv in servers:
            srv.routes["/robots.txt"] = Response(
                200, ROBOTS_TXT, {"Content-Type": "text/plain; charset=utf-8"}
            )
            stack.enter_context(srv)
        for f in range(spec.feeds):
            srv = servers[f % spec.hosts]
            items = []
            for e in range(spec.entries):
                number = f * spec.entries + e
                path = f"/news/{f:04d}/{e:02d}-story-{number}.html"
                title = f"Story {number}: feed {f}, entry {e}"
                when = now - timedelta(minutes=10) - timedelta(hours=e)
                srv.routes[path] = _document(
                    article_html(number, title, when), "text/html; charset=utf-8",
                    delay=spec.page_delay,
                )  # fmt: skip
                items.append((title, srv.url(path), when))
            feed_path = f"/feeds/{f:04d}.xml"
            srv.routes[feed_path] = _document(
                feed_rss(f, srv.base, items),
                "application/rss+xml; charset=UTF-8",
                etag=f'"feed-{f}-v1"',
            )
            feeds.append(srv.url(feed_path))
            pages[srv.url(feed_path)] = [url for _, url, _ in items]
        conn.send(SiteInfo(feeds, pages, [s.url("/robots.txt") for s in servers], os.getpid()))
        while True:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                break
            if command != "counts":
                break
            counts: Counter[str] = Counter()
            for srv in servers:
                with srv._lock:
                    seen = [r.path for r in srv.requests]
                counts.update(srv.url(p) for p in seen)
            conn.send(dict(counts))


class Site:
    def __init__(self, info: SiteInfo, conn: Connection) -> None:
        self.info = info
        self._conn = conn

    def counts(self) -> dict[str, int]:
        """Requests received so far, per URL (paths that do not exist included)."""
        self._conn.send("counts")
        if not self._conn.poll(60):
            raise RuntimeError("the local site did not answer within 60 s")
        counts: dict[str, int] = self._conn.recv()
        return counts


@contextlib.contextmanager
def local_site(spec: SiteSpec) -> Iterator[Site]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve_site, args=(spec, child), name="bench-site", daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(120):
            raise RuntimeError("the local site did not start within 120 s")
        yield Site(parent.recv(), parent)
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        parent.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


# --- the replicas -----------------------------------------------------------------------------


def ingest_command() -> list[str]:
    script = Path(sys.executable).parent / "ingest"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ingest.cli"]


def base_env(dsn: str) -> dict[str, str]:
    """This process's environment without any INGEST_* or DATABASE_URL it may carry, plus the
    settings every command of the bench shares."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k != "DATABASE_URL"
    }
    env.update(
        DATABASE_URL=dsn,
        INGEST_ALLOW_PRIVATE_NETWORKS="true",
        INGEST_LOG_FORMAT="json",
        INGEST_WORKERS="1",
    )
    return env


def run_ingest(dsn: str, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [*ingest_command(), *args],
        env={**base_env(dsn), "INGEST_HTTP_PORT": "0"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`ingest {' '.join(args[:2])}` exited {done.returncode}:\n{done.stderr.strip()}"
        )
    return done.stdout


def service_env(dsn: str, port: int, extra: dict[str, str]) -> dict[str, str]:
    return {
        **base_env(dsn),
        "INGEST_TICK_SECONDS": TICK_SECONDS,
        "INGEST_HTTP_PORT": str(port),
        "INGEST_HTTP_HOST": "127.0.0.1",
        "INGEST_HOST_DELAY": HOST_DELAY,
        **extra,
    }


@dataclass
class Replica:
    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    started: float
    """time.monotonic() at start."""
    healthy_after: float | None = None
    """Seconds from start to the first 200 from /healthz."""
    probes: dict[str, Any] = field(default_factory=dict)
    metrics_text: str = ""
    exit_code: int | None = None
    exit_seconds: float | None = None
    """Seconds from SIGTERM to exit."""
    left_behind: list[str] = field(default_factory=list)
    """Processes of its process group still alive after it exited."""

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_replica(dsn: str, name: str, logs: Path, extra: dict[str, str]) -> Replica:
    port = free_port()
    log_path = logs / f"{name}.jsonl"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*ingest_command(), "run"],
            env=service_env(dsn, port, extra),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C of the bench does not reach it, and the bench can
            # find (and clean up) its worker processes if it dies.
            start_new_session=True,
        )
    return Replica(name, port, log_path, proc, time.monotonic())


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int | None, str, float]:
    """GET http://127.0.0.1:port/path: (status or None when unreachable, body, seconds)."""
    started = time.perf_counter()
    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            r = client.get(f"http://127.0.0.1:{port}{path}")
        return r.status_code, r.text, time.perf_counter() - started
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}", time.perf_counter() - started


def probe_health(replicas: Sequence[Replica]) -> None:
    """Record when each replica first answers 200 on /healthz (a quick try per call)."""
    for r in replicas:
        if r.healthy_after is None and r.proc.poll() is None:
            status, _, _ = http_get(r.port, "/healthz", timeout=0.5)
            if status == 200:
                r.healthy_after = time.monotonic() - r.started


def sample_endpoints(replicas: Sequence[Replica], when: str) -> None:
    for r in replicas:
        for path in ("/healthz", "/readyz"):
            status, body, seconds = http_get(r.port, path)
            r.probes[path] = {
                "status": status,
                "body": body.strip()[:200],
                "ms": round(seconds * 1000, 1),
                "when": when,
            }


def process_group(pgid: int) -> list[psutil.Process]:
    """Live processes of process group `pgid` (the replica and its worker processes)."""
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def describe(procs: Sequence[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            out.append(f"pid {p.pid} ({' '.join(p.cmdline())[:80]})")
    return out


def reap_group(replica: Replica, wait: float) -> list[str]:
    """After the replica's main process has exited: processes of its group still alive after
    `wait` seconds (described), which are then killed."""
    deadline = time.monotonic() + wait
    left = process_group(replica.pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = process_group(replica.pid)
    described = describe(left)
    if left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(replica.pid, signal.SIGKILL)
    return described


def stop_replicas(replicas: Sequence[Replica]) -> None:
    """SIGTERM every live replica at once; wait for each up to the grace period plus 10 s."""
    sent: dict[str, float] = {}
    for r in replicas:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
            sent[r.name] = time.monotonic()
    for r in replicas:
        if r.name not in sent:
            r.exit_code = r.proc.returncode
            continue
        remaining = sent[r.name] + GRACE_SECONDS + 10 - time.monotonic()
        try:
            r.exit_code = r.proc.wait(timeout=max(remaining, 0.1))
            r.exit_seconds = time.monotonic() - sent[r.name]
        except subprocess.TimeoutExpired:
            r.exit_code = None  # reported as "did not exit"; killed by kill_all()
    for r in replicas:
        if r.exit_code is not None:
            r.left_behind = reap_group(r, wait=5.0)


def kill_all(replicas: Sequence[Replica]) -> None:
    """Last resort (errors, Ctrl-C, replicas that did not exit): SIGKILL their process groups."""
    for r in replicas:
        if r.proc.poll() is None or process_group(r.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(r.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.proc.wait(5)


# --- what the replicas said -------------------------------------------------------------------


@dataclass
class LogSummary:
    feeds: int = 0
    feed_ids: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    new: int = 0
    events: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    owner: str | None = None
    skipped_ticks: int = 0
    """APScheduler warnings "skipped: maximum number of running instances reached": a tick came
    while the previous one was still running (counted apart from `problems`)."""
    first_start: float | None = None
    """Epoch seconds: the earliest feed start (its `feed_processed` time minus its `ms`)."""
    last_end: float | None = None


def read_log(path: Path) -> LogSummary:
    s = LogSummary()
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                s.problems.append(line.strip()[:300])
            continue
        if not isinstance(record, dict):
            continue
        event = str(record.get("event"))
        s.events[event] += 1
        if event == "service_started":
            s.owner = record.get("owner")
        if event == "feed_processed":
            s.feeds += 1
            s.statuses[str(record.get("status"))] += 1
            s.new += int(record.get("new") or 0)
            with contextlib.suppress(TypeError, ValueError):
                s.feed_ids.append(int(record["feed_id"]))
            with contextlib.suppress(KeyError, TypeError, ValueError):
                end = datetime.fromisoformat(str(record["timestamp"])).timestamp()
                start = end - int(record.get("ms", 0)) / 1000
                s.first_start = start if s.first_start is None else min(s.first_start, start)
                s.last_end = end if s.last_end is None else max(s.last_end, end)
        if "maximum number of running instances reached" in event:
            s.skipped_ticks += 1
        elif record.get("level") in ("warning", "error", "critical", "exception"):
            s.problems.append(line[:300])
    return s


_FETCH_SAMPLES = ("ingest_fetch_duration_seconds_count", "ingest_fetch_duration_seconds_sum")


def metric_summary(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "polled": {},
        "articles_new": 0.0,
        "errors": {},
        "fetch": {},
        "extract": {"count": 0.0, "sum": 0.0},
        "overdue": None,
        "lag": None,
    }
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "ingest_feeds_polled_total":
                out["polled"][labels.get("status", "")] = value
            elif name == "ingest_articles_new_total":
                out["articles_new"] = value
            elif name == "ingest_errors_total":
                out["errors"][labels.get("kind", "")] = value
            elif name in _FETCH_SAMPLES:
                kind = out["fetch"].setdefault(labels.get("kind", ""), {"count": 0.0, "sum": 0.0})
                kind["count" if name.endswith("_count") else "sum"] = value
            elif name == "ingest_extract_duration_seconds_count":
                out["extract"]["count"] = value
            elif name == "ingest_extract_duration_seconds_sum":
                out["extract"]["sum"] = value
            elif name == "ingest_feeds_overdue":
                out["overdue"] = value
            elif name == "ingest_overdue_lag_seconds":
                out["lag"] = value
    return out


def raw_metric_lines(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith("ingest_") and not line.split("{")[0].split(" ")[0].endswith("_bucket")
    ]


# --- what the database and the site say -------------------------------------------------------


def done_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM news.feeds WHERE last_status IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def db_figures(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        statuses: dict[str, int] = dict(
            conn.execute(
                "SELECT coalesce(last_status, 'never'), count(*) FROM news.feeds GROUP BY 1"
            ).fetchall()
        )
        row = conn.execute(
            "SELECT count(*), count(DISTINCT url), count(DISTINCT original_url),"
            " count(*) FILTER (WHERE duplicate_of IS NOT NULL),"
            " count(*) FILTER (WHERE text_source = 'feed') FROM news.articles"
        ).fetchone()
        assert row is not None
        articles, distinct_urls, distinct_links, near_copies, from_feed = (int(v) for v in row)
        leases = conn.execute(
            "SELECT count(*) FILTER (WHERE lease_owner IS NOT NULL),"
            " count(*) FILTER (WHERE lease_expires_at > now()) FROM ingest.feeds"
        ).fetchone()
        assert leases is not None
        interval = conn.execute(
            "SELECT min(s), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), max(s),"
            " count(*) FILTER (WHERE next <= now()) FROM ("
            "  SELECT extract(epoch FROM next_fetch_at - last_fetched_at) / 60 AS s,"
            "  next_fetch_at AS next FROM news.feeds WHERE last_fetched_at IS NOT NULL) t"
        ).fetchone()
        assert interval is not None
        errors = conn.execute(
            "SELECT last_error, count(*) FROM news.feeds WHERE last_status = 'error'"
            " GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
        ).fetchall()
        extraction = conn.execute(
            "SELECT extraction_error, count(*) FROM news.articles"
            " WHERE extraction_error IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
        ).fetchall()
    return {
        "feeds_by_status": statuses,
        "articles": articles,
        "distinct_urls": distinct_urls,
        "distinct_original_urls": distinct_links,
        "near_copies": near_copies,
        "from_feed_text": from_feed,
        "leases_owned": int(leases[0]),
        "leases_unexpired": int(leases[1]),
        "next_poll_minutes": {
            "min": _round(interval[0]),
            "median": _round(interval[1]),
            "max": _round(interval[2]),
        },
        "due_now": int(interval[3] or 0),
        "feed_errors": [f"{n} x {e}" for e, n in errors],
        "extraction_errors": [f"{n} x {e}" for e, n in extraction],
    }


def _round(v: object) -> float | None:
    return round(float(v), 1) if v is not None else None  # type: ignore[arg-type]


def request_figures(site: SiteInfo, counts: dict[str, int]) -> dict[str, Any]:
    feed_counts = [counts.get(u, 0) for u in site.feeds]
    page_urls = [p for pages in site.pages.values() for p in pages]
    page_counts = [counts.get(u, 0) for u in page_urls]
    robots = [counts.get(u, 0) for u in site.robots]
    known = set(site.feeds) | set(page_urls) | set(site.robots)
    return {
        "feeds_fetched_0": sum(1 for n in feed_counts if n == 0),
        "feeds_fetched_1": sum(1 for n in feed_counts if n == 1),
        "feeds_fetched_more": sum(1 for n in feed_counts if n > 1),
        "feeds_twice_urls": [u for u, n in zip(site.feeds, feed_counts, strict=True) if n > 1],
        "pages": len(page_urls),
        "pages_fetched_0": sum(1 for n in page_counts if n == 0),
        "pages_fetched_more": sum(1 for n in page_counts if n > 1),
        "pages_twice_urls": [u for u, n in zip(page_urls, page_counts, strict=True) if n > 1],
        "robots_requests": sum(robots),
        "robots_max_per_host": max(robots, default=0),
        "other_requests": sum(n for u, n in counts.items() if u not in known),
        "requests": sum(counts.values()),
    }


# --- reporting helpers ------------------------------------------------------------------------


@dataclass
class Checks:
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        return ok

    @property
    def failed(self) -> list[str]:
        return [f"{name}: {detail}" for name, ok, detail in self.results if not ok]


def fmt_counts(d: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(d.items())) or "none"


def print_metrics(replicas: Sequence[Replica]) -> list[dict[str, Any]]:
    """One row per replica: counters, then histogram count / sum (mean) per kind, then the
    overdue gauges."""

    def hist(h: dict[str, float]) -> str:
        n, total = h.get("count", 0.0), h.get("sum", 0.0)
        mean = f"{1000 * total / n:.0f}" if n else "-"
        return f"{n:g} / {total:.1f} s ({mean} ms)"

    summaries: list[dict[str, Any]] = []
    print("  /metrics of each replica right before SIGTERM (histograms: count / sum (mean)):")
    print(
        f"    {'':<4} {'feeds_polled_total':<20} {'articles':>8}  {'errors_total':<13}"
        f" {'fetch_duration feed':<24} {'fetch_duration page':<24} {'fetch_duration robots':<22}"
        f" {'extract_duration':<24} {'overdue':>7} {'lag_s':>5}"
    )
    for r in replicas:
        if not r.metrics_text:
            print(f"    {r.name:<4} (no /metrics: {r.probes.get('/metrics', 'not scraped')})")
            summaries.append({})
            continue
        m = metric_summary(r.metrics_text)
        summaries.append(m)
        fetch = m["fetch"]
        overdue = "-" if m["overdue"] is None else f"{m['overdue']:g}"
        lag = "-" if m["lag"] is None else f"{m['lag']:.0f}"
        print(
            f"    {r.name:<4} {fmt_counts(m['polled']):<20} {m['articles_new']:>8g}"
            f"  {fmt_counts(m['errors']):<13} {hist(fetch.get('feed', {})):<24}"
            f" {hist(fetch.get('page', {})):<24} {hist(fetch.get('robots', {})):<22}"
            f" {hist(m['extract']):<24} {overdue:>7} {lag:>5}"
        )
    return summaries


# --- phase 1: R replicas ----------------------------------------------------------------------


def phase_service(
    args: argparse.Namespace, dbs: Databases, logs: Path, checks: Checks
) -> dict[str, Any]:
    spec = SiteSpec(args.feeds, args.entries, args.hosts)
    replicas: list[Replica] = []
    out: dict[str, Any] = {"feeds": args.feeds, "replicas": args.replicas}
    print(
        f"\n== phase 1: {args.replicas} replicas, {args.feeds} feeds x {args.entries} entries"
        f" on {min(args.hosts, args.feeds)} hosts =="
    )
    with local_site(spec) as site:
        dsn = dbs.create("svc")
        run_ingest(dsn, "migrate")
        feed_file = logs / "phase1-feeds.txt"
        feed_file.write_text("\n".join(site.info.feeds) + "\n")
        imported = run_ingest(dsn, "feeds", "import", str(feed_file)).strip().splitlines()[-1]
        print(f"  site pid {site.info.pid} ready; `ingest feeds import`: {imported}")
        try:
            t0 = time.monotonic()
            for i in range(args.replicas):
                replicas.append(start_replica(dsn, f"r{i + 1}", logs, {}))
            all_done = wait_for_feeds(dsn, args.feeds, replicas, t0, args.timeout, sample=True)
            wall = time.monotonic() - t0
            done_at = time.monotonic()
            if all_done:
                print(f"  all {args.feeds} feeds done {wall:.1f} s after the replicas started")
            # Ticks go on (every second) while we wait: they must find nothing due.
            before = site.counts()
            logged_before = sum(read_log(r.log_path).feeds for r in replicas)
            time.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - done_at)))
            after = site.counts()
            logged_after = sum(read_log(r.log_path).feeds for r in replicas)
            settle_requests = sum(after.values()) - sum(before.values())
            settle_feeds = logged_after - logged_before
            for r in replicas:
                status, body, _ = http_get(r.port, "/metrics")
                if status == 200:
                    r.metrics_text = body
                else:
                    r.probes["/metrics"] = f"{status}: {body[:100]}"
            stop_replicas(replicas)
        finally:
            kill_all(replicas)
        counts = site.counts()
        info = site.info
    db = db_figures(dsn)
    req = request_figures(info, counts)
    logs_read = [read_log(r.log_path) for r in replicas]
    articles = db["articles"]
    expected = args.feeds * args.entries
    window = [
        t for s in logs_read for t in (s.first_start, s.last_end) if t is not None
    ]  # fmt: skip
    feeds_window = max(window) - min(window) if window else None

    print(
        f"  settings: INGEST_WORKERS=1 per replica, INGEST_TICK_SECONDS={TICK_SECONDS},"
        f" INGEST_HOST_DELAY={HOST_DELAY} (default 0.5), other settings default"
        f" (INGEST_CONCURRENT_FEEDS=8, INGEST_PER_HOST_CONNECTIONS=2, lease 600 s)"
    )
    if all_done:
        print(
            f"  wall time to fetch all feeds: {wall:.1f} s from the replicas' start ="
            f" {args.feeds / wall:.1f} feeds/s, {articles / wall:.1f} articles/s"
        )
    else:
        print(f"  NOT all feeds done after {wall:.1f} s (timeout {args.timeout:g} s)")
    if feeds_window:
        print(
            f"  feed processing window (first feed start to last `feed_processed`, start-up"
            f" excluded): {feeds_window:.1f} s = {args.feeds / feeds_window:.1f} feeds/s,"
            f" {articles / feeds_window:.1f} articles/s"
        )
    for r in replicas:
        healthy = f"{r.healthy_after:.1f} s" if r.healthy_after is not None else "never seen"
        probes = "  ".join(
            f"{path} {p['status']} {p['body']!r} ({p['ms']} ms)"
            for path, p in r.probes.items()
            if isinstance(p, dict)
        )
        print(f"  {r.name}: /healthz 200 after {healthy}; sampled mid-run: {probes}")
    print(
        f"  requests to the site: {req['requests']} = feeds + pages + {req['robots_requests']}"
        f" robots.txt (at most {req['robots_max_per_host']} per host, {args.replicas} replicas)"
        f" + {req['other_requests']} other"
    )
    print(
        f"  feeds fetched exactly once: {req['feeds_fetched_1']}/{args.feeds};"
        f" fetched 0 times: {req['feeds_fetched_0']}; more than once: {req['feeds_fetched_more']}"
    )
    print(
        f"  pages: {req['pages']}; fetched more than once: {req['pages_fetched_more']};"
        f" never fetched: {req['pages_fetched_0']}"
    )
    print(
        f"  during the {SETTLE_SECONDS:g} s after the last feed (ticks every {TICK_SECONDS} s):"
        f" {settle_requests} requests to the site, {settle_feeds} `feed_processed` lines;"
        f" feeds due again: {db['due_now']}; next poll in"
        f" {db['next_poll_minutes']['min']}-{db['next_poll_minutes']['max']} min"
        f" (median {db['next_poll_minutes']['median']})"
    )
    print(
        f"  database: feeds by status {db['feeds_by_status']}; articles {articles}"
        f" (expected {expected}), distinct URLs {db['distinct_urls']}, duplicates"
        f" {articles - db['distinct_urls']}; near-copies (duplicate_of) {db['near_copies']};"
        f" stored from feed text {db['from_feed_text']}"
    )
    for e in db["feed_errors"] + db["extraction_errors"]:
        print(f"    {e}")
    print(
        f"  leases left held: {db['leases_owned']} (unexpired: {db['leases_unexpired']})"
    )  # fmt: skip
    total_logged = sum(s.feeds for s in logs_read) or 1
    print("  per replica:")
    for r, s in zip(replicas, logs_read, strict=True):
        exit_s = f"{r.exit_seconds:.1f} s after SIGTERM" if r.exit_seconds is not None else "-"
        code = "did not exit" if r.exit_code is None else str(r.exit_code)
        print(
            f"    {r.name}: {s.feeds} feeds ({100 * s.feeds / total_logged:.0f} %),"
            f" {fmt_counts(dict(s.statuses))}, {s.new} new articles; exit code {code}"
            f" ({exit_s}); ticks skipped (APScheduler warning): {s.skipped_ticks};"
            f" other warnings/errors logged: {len(s.problems)}"
            + (f"; left behind: {r.left_behind}" if r.left_behind else "")
        )
        for p in s.problems[:3]:
            print(f"      {p}")
    summaries = print_metrics(replicas)
    if replicas and replicas[0].metrics_text:
        print(f"  raw /metrics lines of {replicas[0].name} starting with ingest_ (no buckets):")
        for line in raw_metric_lines(replicas[0].metrics_text):
            print(f"    {line}")

    checks.check("phase 1: all feeds done before the timeout", all_done)
    checks.check(
        "phase 1: every feed fetched", req["feeds_fetched_0"] == 0, f"{req['feeds_fetched_0']} not"
    )
    checks.check(
        "phase 1: no feed fetched twice",
        req["feeds_fetched_more"] == 0,
        f"{req['feeds_fetched_more']} twice or more, e.g. {req['feeds_twice_urls'][:3]}",
    )
    checks.check(
        "phase 1: no page fetched twice",
        req["pages_fetched_more"] == 0,
        f"{req['pages_fetched_more']}, e.g. {req['pages_twice_urls'][:3]}",
    )
    checks.check(
        "phase 1: no duplicate article",
        articles == db["distinct_urls"] == db["distinct_original_urls"],
        f"{articles} rows, {db['distinct_urls']} URLs",
    )
    checks.check(
        "phase 1: every page stored", articles == expected, f"{articles} of {expected}"
    )  # fmt: skip
    checks.check(
        "phase 1: no feed failed",
        db["feeds_by_status"].get("error", 0) == 0,
        f"{db['feeds_by_status'].get('error', 0)} failed",
    )
    checks.check(
        "phase 1: nothing fetched once all feeds were done",
        settle_requests == 0 and settle_feeds == 0,
        f"{settle_requests} requests, {settle_feeds} feeds",
    )
    checks.check(
        "phase 1: no lease left", db["leases_owned"] == 0, f"{db['leases_owned']} held"
    )  # fmt: skip
    for r in replicas:
        checks.check(
            f"phase 1: {r.name} exited 0 on SIGTERM",
            r.exit_code == 0,
            "did not exit" if r.exit_code is None else f"exit code {r.exit_code}",
        )
    out.update(
        all_done=all_done,
        wall_seconds=round(wall, 2),
        feeds_per_second=round(args.feeds / wall, 2),
        articles_per_second=round(articles / wall, 2),
        feeds_window_seconds=round(feeds_window, 2) if feeds_window else None,
        requests={k: v for k, v in req.items() if not k.endswith("_urls")},
        settle={"requests": settle_requests, "feeds_processed": settle_feeds},
        database=db,
        replicas_detail=[
            {
                "name": r.name,
                "feeds": s.feeds,
                "statuses": dict(s.statuses),
                "new": s.new,
                "exit_code": r.exit_code,
                "exit_seconds": round(r.exit_seconds, 2) if r.exit_seconds is not None else None,
                "healthy_after": r.healthy_after,
                "probes": r.probes,
                "left_behind": r.left_behind,
                "metrics": m,
                "problems": s.problems[:10],
            }
            for r, s, m in zip(replicas, logs_read, summaries, strict=True)
        ],
        raw_metrics=raw_metric_lines(replicas[0].metrics_text) if replicas else [],
    )
    return out


def wait_for_feeds(
    dsn: str,
    n: int,
    replicas: Sequence[Replica],
    t0: float,
    timeout: float,
    *,
    sample: bool = False,
    until: int | None = None,
) -> bool:
    """Poll the database until `until` (default all `n`) feeds have a last_status; True when
    reached before `timeout` seconds after `t0`. Prints progress every 10 s; with `sample`,
    probes /healthz and /readyz of every replica once, when half the feeds are done (or after
    SAMPLE_AFTER seconds). Gives up when no feed gets done for STALL_SECONDS."""
    target = n if until is None else until
    sampled = not sample
    next_report = t0 + 10
    last_done, last_progress = -1, time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            done = done_count(conn)
            now = time.monotonic()
            if done != last_done:
                last_done, last_progress = done, now
            probe_health(replicas)
            if not sampled and (done >= n // 2 or now - t0 >= SAMPLE_AFTER):
                sample_endpoints(replicas, f"{done}/{n} feeds done")
                sampled = True
            if done >= target:
                if not sampled:
                    sample_endpoints(replicas, f"{done}/{n} feeds done")
                return True
            if now >= next_report:
                alive = sum(1 for r in replicas if r.proc.poll() is None)
                print(
                    f"  t={now - t0:5.1f} s: {done}/{n} feeds done, {alive} replicas running",
                    flush=True,
                )
                next_report += 10
            if now - t0 > timeout:
                print(f"  timeout: {done}/{n} feeds done after {timeout:g} s", file=sys.stderr)
                return False
            if now - last_progress > STALL_SECONDS:
                print(
                    f"  no feed done for {STALL_SECONDS:g} s ({done}/{n}): giving up waiting",
                    file=sys.stderr,
                )
                return False
            if all(r.proc.poll() is not None for r in replicas):
                print("  every replica has exited", file=sys.stderr)
                return False
            time.sleep(0.2)


# --- phase 2: SIGKILL one of two --------------------------------------------------------------


def phase_kill(
    args: argparse.Namespace, dbs: Databases, logs: Path, checks: Checks
) -> dict[str, Any]:
    n = args.kill_feeds
    spec = SiteSpec(n, args.entries, args.hosts, page_delay=KILL_PAGE_DELAY)
    extra = {"INGEST_LEASE_SECONDS": str(KILL_LEASE_SECONDS)}
    print(
        f"\n== phase 2: 2 replicas, {n} feeds x {args.entries} entries, pages answer"
        f" {KILL_PAGE_DELAY * 1000:.0f} ms late, INGEST_LEASE_SECONDS={KILL_LEASE_SECONDS};"
        f" SIGKILL one after a third of the feeds =="
    )
    replicas: list[Replica] = []
    orphans: list[tuple[int, str]] = []
    with local_site(spec) as site:
        dsn = dbs.create("kill")
        run_ingest(dsn, "migrate")
        feed_file = logs / "phase2-feeds.txt"
        feed_file.write_text("\n".join(site.info.feeds) + "\n")
        run_ingest(dsn, "feeds", "import", str(feed_file))
        try:
            t0 = time.monotonic()
            replicas = [start_replica(dsn, f"k{i + 1}", logs, extra) for i in range(2)]
            victim, survivor = replicas
            reached = wait_for_feeds(dsn, n, replicas, t0, args.timeout, until=n // 3)
            if not reached:
                raise RuntimeError(f"a third of the feeds were not done within {args.timeout} s")
            owner = read_log(victim.log_path).owner
            with psycopg.connect(dsn, autocommit=True) as conn:
                done_at_kill = done_count(conn)
                victim.proc.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                victim.proc.wait(10)
                victim.exit_code = victim.proc.returncode
                time.sleep(0.5)  # its connections are gone, their transactions rolled back
                row = conn.execute("SELECT now()").fetchone()
                assert row is not None
                kill_db_time: datetime = row[0]
                # The owner is "<host>:<pid>:<random>" (ingest.pipeline.make_owner).
                orphans = [
                    (int(i), str(u))
                    for i, u in conn.execute(
                        "SELECT id, url FROM ingest.feeds WHERE lease_owner = %s"
                        " OR (%s::text IS NULL AND lease_owner LIKE %s) ORDER BY id",
                        (owner, owner, f"%:{victim.pid}:%"),
                    ).fetchall()
                ]
            print(
                f"  SIGKILL {victim.name} (pid {victim.pid}) at t={killed_at - t0:.1f} s with"
                f" {done_at_kill}/{n} feeds done; it still held {len(orphans)} feed lease(s)"
            )
            victim.left_behind = reap_group(victim, wait=10.0)
            print(
                f"  processes of {victim.name}'s group still alive 10 s after the kill:"
                f" {len(victim.left_behind)}{' ' if victim.left_behind else ''}"
                f"{', '.join(victim.left_behind)}"
            )
            all_done = wait_for_feeds(dsn, n, [survivor], t0, args.timeout)
            finished_at = time.monotonic()
            with psycopg.connect(dsn, autocommit=True) as conn:
                picked = conn.execute(
                    "SELECT min(extract(epoch FROM last_fetched_at - %s)),"
                    " max(extract(epoch FROM last_fetched_at - %s))"
                    " FROM ingest.feeds WHERE id = ANY(%s)",
                    (kill_db_time, kill_db_time, [i for i, _ in orphans]),
                ).fetchone()
            stop_replicas([survivor])
        finally:
            kill_all(replicas)
        counts = site.counts()
        info = site.info
    db = db_figures(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        feed_ids = {int(i): str(u) for i, u in conn.execute("SELECT id, url FROM ingest.feeds")}
    req = request_figures(info, counts)
    victim_log, survivor_log = (read_log(r.log_path) for r in replicas)
    orphan_urls = {u for _, u in orphans}
    orphan_pages = {p for u in orphan_urls for p in info.pages.get(u, [])}
    feeds_twice = set(req["feeds_twice_urls"])
    pages_twice = set(req["pages_twice_urls"])
    articles = db["articles"]
    expected = n * args.entries
    total = finished_at - t0
    print(
        f"  all feeds done: {all_done}; {total:.1f} s from the replicas' start,"
        f" {finished_at - killed_at:.1f} s after the kill"
    )
    if picked and picked[0] is not None:
        print(
            f"  the {len(orphans)} orphaned feeds were finished by {survivor.name}"
            f" {float(picked[0]):.1f}-{float(picked[1]):.1f} s after the kill"
            f" (lease {KILL_LEASE_SECONDS} s, renewed every {KILL_LEASE_SECONDS / 3:.1f} s)"
        )
    unlogged = sorted(set(feed_ids) - set(victim_log.feed_ids) - set(survivor_log.feed_ids))
    print(
        f"  feeds processed (`feed_processed` lines): {victim.name} (killed) {victim_log.feeds},"
        f" {survivor.name} {survivor_log.feeds}; sum {victim_log.feeds + survivor_log.feeds}"
        f" of {n}"
    )
    if unlogged:
        once = sum(1 for i in unlogged if counts.get(feed_ids[i], 0) == 1)
        print(
            f"    done without any `feed_processed` line: {len(unlogged)} (feed ids"
            f" {unlogged[:10]}), fetched once each: {once}: stored by {victim.name}, killed"
            " between the commit and the log line"
        )
    print(
        f"  feeds fetched twice: {len(feeds_twice)} (of them held by {victim.name} at the kill:"
        f" {len(feeds_twice & orphan_urls)}); fetched 0 times: {req['feeds_fetched_0']}"
    )
    print(
        f"  pages fetched twice: {len(pages_twice)} (of them pages of feeds {victim.name} held:"
        f" {len(pages_twice & orphan_pages)} of {len(orphan_pages)} such pages)"
    )
    print(
        f"  database: feeds by status {db['feeds_by_status']}; articles {articles}"
        f" (expected {expected}), distinct URLs {db['distinct_urls']}, duplicates"
        f" {articles - db['distinct_urls']}; leases left held {db['leases_owned']}"
    )
    for e in db["feed_errors"] + db["extraction_errors"]:
        print(f"    {e}")
    code = "did not exit" if survivor.exit_code is None else str(survivor.exit_code)
    exit_s = f"{survivor.exit_seconds:.1f} s" if survivor.exit_seconds is not None else "-"
    print(
        f"  {victim.name} exit code {victim.exit_code} (SIGKILL); {survivor.name} exit code"
        f" {code} ({exit_s} after SIGTERM)"
        + (f"; left behind: {survivor.left_behind}" if survivor.left_behind else "")
    )
    for s, r in ((victim_log, victim), (survivor_log, survivor)):
        for p in s.problems[:3]:
            print(f"    {r.name}: {p}")

    checks.check("phase 2: survivor finished every feed", all_done)
    checks.check(
        "phase 2: every feed fetched", req["feeds_fetched_0"] == 0, f"{req['feeds_fetched_0']} not"
    )
    checks.check(
        "phase 2: only the killed replica's feeds fetched twice",
        feeds_twice <= orphan_urls,
        f"{len(feeds_twice - orphan_urls)} others, e.g. {sorted(feeds_twice - orphan_urls)[:3]}",
    )
    checks.check(
        "phase 2: only pages of the killed replica's feeds fetched twice",
        pages_twice <= orphan_pages,
        f"{len(pages_twice - orphan_pages)} others, e.g. {sorted(pages_twice - orphan_pages)[:3]}",
    )
    checks.check(
        "phase 2: no duplicate article",
        articles == db["distinct_urls"] == db["distinct_original_urls"],
        f"{articles} rows, {db['distinct_urls']} URLs",
    )
    checks.check(
        "phase 2: every page stored", articles == expected, f"{articles} of {expected}"
    )  # fmt: skip
    checks.check(
        "phase 2: no lease left", db["leases_owned"] == 0, f"{db['leases_owned']} held"
    )  # fmt: skip
    checks.check(
        f"phase 2: {survivor.name} exited 0 on SIGTERM",
        survivor.exit_code == 0,
        "did not exit" if survivor.exit_code is None else f"exit code {survivor.exit_code}",
    )
    return {
        "feeds": n,
        "all_done": all_done,
        "seconds": round(total, 2),
        "seconds_after_kill": round(finished_at - killed_at, 2),
        "killed_at_seconds": round(killed_at - t0, 2),
        "done_at_kill": done_at_kill,
        "orphaned_feeds": len(orphans),
        "orphans_finished_after_kill_s": [float(v) if v is not None else None for v in picked]
        if picked
        else None,
        "feeds_processed": {victim.name: victim_log.feeds, survivor.name: survivor_log.feeds},
        "feeds_done_unlogged": unlogged,
        "feeds_fetched_twice": len(feeds_twice),
        "feeds_fetched_twice_orphaned": len(feeds_twice & orphan_urls),
        "pages_fetched_twice": len(pages_twice),
        "pages_fetched_twice_orphaned": len(pages_twice & orphan_pages),
        "orphan_pages": len(orphan_pages),
        "left_behind_by_killed": victim.left_behind,
        "survivor_exit_code": survivor.exit_code,
        "requests": {k: v for k, v in req.items() if not k.endswith("_urls")},
        "database": db,
    }


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="service_bench.py",
        description="The long-lived service with replicas against a local site.",
    )
    p.add_argument("--feeds", type=int, default=1000, help="RSS feeds (default 1000)")
    p.add_argument("--replicas", type=int, default=3, help="`ingest run` processes (default 3)")
    p.add_argument("--entries", type=int, default=3, help="items per feed (default 3)")
    p.add_argument("--hosts", type=int, default=50, help="loopback hosts (default 50)")
    p.add_argument(
        "--kill",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="phase 2: SIGKILL one of two replicas (default on)",
    )
    p.add_argument(
        "--kill-feeds",
        type=int,
        default=None,
        metavar="N",
        help="feeds in phase 2 (default a third of --feeds, at least 100)",
    )
    p.add_argument(
        "--timeout", type=float, default=240, help="seconds per phase to finish (default 240)"
    )
    p.add_argument("--admin-url", default=ADMIN_DSN_DEFAULT, help="PostgreSQL admin DSN")
    p.add_argument("--logs", metavar="DIR", help="replica logs (default a new dir under /tmp)")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    for name in ("feeds", "replicas", "entries", "hosts"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if not 1 <= args.hosts <= 250:
        p.error("--hosts must be between 1 and 250")
    if args.kill_feeds is None:
        args.kill_feeds = min(args.feeds, max(100, args.feeds // 3))
    if args.kill_feeds < 3:
        p.error("--kill-feeds must be at least 3")
    return args


def project_source() -> str:
    """Where the replicas import `ingest` and its SQL from (PYTHONPATH may point them at another
    checkout), with the git revision when that is this repository."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ingest, ingest.sql, pathlib;"
            "print(pathlib.Path(ingest.__file__).parent.parent);"
            "print(pathlib.Path(list(ingest.sql.__path__)[0]))",
        ],
        env=base_env(""),
        cwd="/",  # like the `ingest` script: the working directory is not on sys.path
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return f"unknown ({probe.stderr.strip().splitlines()[-1:]})"
    source, sql_dir = probe.stdout.split()
    where = f"{source} (SQL from {sql_dir})"
    if Path(source).resolve() != ROOT:
        return where
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "ingest", "jobs", "sql"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        where += f", git {head}{' + uncommitted changes in ingest/ jobs/ sql/' if dirty else ''}"
    return where


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with psycopg.connect(args.admin_url, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg_version = str(row[0]) if row else "?"
    except psycopg.Error as e:
        print(
            f"service_bench: PostgreSQL not reachable at {args.admin_url!r}: {e}", file=sys.stderr
        )
        return 1
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="service_bench_"))
    logs.mkdir(parents=True, exist_ok=True)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(
        f"machine: {os.cpu_count()} cpus ({usable} usable), load"
        f" {[round(x, 2) for x in os.getloadavg()]}; Python {platform.python_version()};"
        f" PostgreSQL {pg_version}; logs in {logs}"
    )
    source = project_source()
    print(f"project: {source}")
    checks = Checks()
    figures: dict[str, Any] = {
        "command": shlex.join(sys.orig_argv),
        "project": source,
        "config": {
            "feeds": args.feeds,
            "replicas": args.replicas,
            "entries": args.entries,
            "hosts": args.hosts,
            "kill_feeds": args.kill_feeds if args.kill else None,
            "host_delay": float(HOST_DELAY),
            "tick_seconds": float(TICK_SECONDS),
            "workers_per_replica": 1,
        },
    }
    started = time.monotonic()
    with Databases(args.admin_url) as dbs:
        try:
            figures["service"] = phase_service(args, dbs, logs, checks)
        except Exception as e:
            checks.check("phase 1 ran", False, f"{type(e).__name__}: {e}")
        if args.kill:
            try:
                figures["kill"] = phase_kill(args, dbs, logs, checks)
            except Exception as e:
                checks.check("phase 2 ran", False, f"{type(e).__name__}: {e}")
    print("\nchecks:")
    for name, ok, detail in checks.results:
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}" + ("" if ok else f" ({detail})"))
    print(f"total bench time {time.monotonic() - started:.0f} s; logs in {logs}")
    figures["checks"] = [
        {"check": name, "ok": ok, "detail": detail} for name, ok, detail in checks.results
    ]
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
