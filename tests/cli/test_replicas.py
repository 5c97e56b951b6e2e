"""Several `ingest run` service processes against one database and one local site of many
feeds: every feed fetched, none twice within its interval, no article stored twice, and a replica
killed with SIGKILL mid-run leaves its work to the others once its leases expire."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import psycopg
import pytest

from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

FEEDS = 40
ENTRIES = 3


def page(n: str) -> bytes:
    paragraph = (
        f"Story {n}: the regional council approved the new budget on Tuesday after a long "
        "debate about transport, schools and the cost of housing in the city centre."
    )
    body = f"<h1>Story {n}</h1><p>{paragraph}</p><p>{paragraph}</p>"
    return f"<html><body><article>{body}</article></body></html>".encode()


def feed(base: str, f: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Story {f}-{e}</title><link>{base}/p/{f}-{e}</link><guid>{f}-{e}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=e))}</pubDate></item>"
        for e in range(ENTRIES)
    )
    return f"<rss version='2.0'><channel><title>Feed {f}</title>{items}</channel></rss>"


def serve_site(srv: LocalServer, page_handler: Callable[[str], object] | None = None) -> None:
    srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    for f in range(FEEDS):
        srv.routes[f"/feed/{f}"] = static(feed(srv.base, f), "application/rss+xml")
        for e in range(ENTRIES):
            key = f"{f}-{e}"
            srv.routes[f"/p/{key}"] = page_handler(key) if page_handler else static(page(key))  # type: ignore[assignment]


def env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_LOG_FORMAT": "json",
        "INGEST_WORKERS": "1",
        "INGEST_HTTP_PORT": "0",
        "INGEST_TICK_SECONDS": "0.5",
        "INGEST_FEEDS_PER_TICK": "4",
        "INGEST_CONCURRENT_FEEDS": "4",
        "INGEST_HOST_DELAY": "0",
        "INGEST_PER_HOST_CONNECTIONS": "8",
        **extra,
    }


def start(n: int, e: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "run"],
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int | None]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=60))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            codes.append(None)
    return codes


def state(database_url: str) -> tuple[int, int, int]:
    """(feeds fetched successfully, articles, distinct article URLs)"""
    with psycopg.connect(database_url) as conn:
        ok = conn.execute("SELECT count(*) FROM news.feeds WHERE last_status = 'ok'").fetchone()
        arts = conn.execute("SELECT count(*), count(DISTINCT url) FROM news.articles").fetchone()
    assert ok is not None
    assert arts is not None
    return int(ok[0]), int(arts[0]), int(arts[1])


def add_feeds(database_url: str, srv: LocalServer) -> None:
    urls = [srv.url(f"/feed/{f}") for f in range(FEEDS)]
    subprocess.run(
        [sys.executable, "-m", "ingest.cli", "feeds", "add", *urls],
        env=env(database_url),
        check=True,
        capture_output=True,
    )


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


def test_three_replicas_share_the_work(database_url: str, site: LocalServer) -> None:
    """Three services on one database: every feed and page fetched exactly once, every article
    stored once, and all three exit 0 on SIGTERM."""
    serve_site(site)
    add_feeds(database_url, site)
    procs = start(3, env(database_url))
    try:
        done = wait_until(lambda: state(database_url)[0] == FEEDS, timeout=120, interval=0.3)
        time.sleep(2)  # a few more ticks: nothing may be fetched again within its interval
    finally:
        codes = stop(procs)
    assert done, f"only {state(database_url)[0]} of {FEEDS} feeds fetched"
    assert codes == [0, 0, 0]
    hits = Counter(r.path for r in site.requests)
    assert all(hits[f"/feed/{f}"] == 1 for f in range(FEEDS)), hits
    assert all(hits[f"/p/{f}-{e}"] == 1 for f in range(FEEDS) for e in range(ENTRIES))
    assert state(database_url) == (FEEDS, FEEDS * ENTRIES, FEEDS * ENTRIES)


def test_killed_replica_leaves_its_work_to_the_other(database_url: str, site: LocalServer) -> None:
    """SIGKILL one of two replicas mid-run: after its leases expire the survivor fetches what it
    held, and every article is stored exactly once."""

    def slow(key: str):  # type: ignore[no-untyped-def]
        body = page(key)

        def handle(req: Request) -> Response:
            time.sleep(0.2)
            return Response(200, body, {"Content-Type": "text/html"})

        return handle

    serve_site(site, slow)
    add_feeds(database_url, site)
    e = env(database_url, INGEST_LEASE_SECONDS="3")
    victim, survivor = start(2, e)
    try:
        assert wait_until(lambda: state(database_url)[1] >= 6, timeout=60, interval=0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = state(database_url)
        assert killed_at[0] < FEEDS, "all work was done before the kill"
        done = wait_until(lambda: state(database_url)[0] == FEEDS, timeout=180, interval=0.3)
    finally:
        codes = stop([survivor])
    assert done, f"only {state(database_url)[0]} of {FEEDS} feeds fetched after the kill"
    assert codes == [0]
    assert state(database_url) == (FEEDS, FEEDS * ENTRIES, FEEDS * ENTRIES)
    with psycopg.connect(database_url) as conn:
        held = conn.execute("SELECT count(*) FROM ingest.feeds WHERE lease_owner IS NOT NULL")
        assert held.fetchone() == (0,)


def test_two_replicas_keep_one_host_s_delay(database_url: str, site: LocalServer) -> None:
    """Two services on one database, every feed on one host: the host's delay holds between
    any two of its requests, whichever replica sends them (one process polls a host at a time,
    sql/0045); before, each replica kept the delay on its own, and the host saw requests at
    twice the rate. (robots.txt, which each process asks once without waiting, is left out.)"""
    delay, feeds, entries = 0.3, 8, 2
    arrivals: list[tuple[float, str]] = []

    def timed(body: bytes, kind: str) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            arrivals.append((time.monotonic(), req.path))
            return Response(200, body, {"Content-Type": kind})

        return handle

    site.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    now = datetime.now(UTC)
    for f in range(feeds):
        items = "".join(
            f"<item><title>Story {f}-{e}</title><link>{site.base}/p/{f}-{e}</link>"
            f"<guid>{f}-{e}</guid><pubDate>{format_datetime(now - timedelta(hours=e))}</pubDate>"
            "</item>"
            for e in range(entries)
        )
        rss = f"<rss version='2.0'><channel><title>Feed {f}</title>{items}</channel></rss>"
        site.routes[f"/feed/{f}"] = timed(rss.encode(), "application/rss+xml")
        for e in range(entries):
            site.routes[f"/p/{f}-{e}"] = timed(page(f"{f}-{e}"), "text/html")
    subprocess.run(
        [sys.executable, "-m", "ingest.cli", "feeds", "add"]
        + [site.url(f"/feed/{f}") for f in range(feeds)],
        env=env(database_url),
        check=True,
        capture_output=True,
    )
    procs = start(2, env(database_url, INGEST_HOST_DELAY=str(delay)))
    try:
        done = wait_until(lambda: state(database_url)[0] == feeds, timeout=120, interval=0.3)
        time.sleep(1)
    finally:
        codes = stop(procs)
    assert done, f"only {state(database_url)[0]} of {feeds} feeds fetched"
    assert codes == [0, 0]
    assert len(arrivals) == feeds * (1 + entries)
    times = sorted(t for t, _ in arrivals)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Half the delay: room for the loopback's jitter, none for two senders.
    assert min(gaps) >= delay / 2, sorted(gaps)[:5]
