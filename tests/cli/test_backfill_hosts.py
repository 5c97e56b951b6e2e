"""`ingest backfill` beside the service and other processes on one host: it holds the host as
the service's claims do (sql/0045, `ingest.host_holds`), so that the host's delay holds between
any two of its requests whichever process sends them; it waits while another process holds the
host, for a lease at most, and a backfill that dies holds it no longer than its lease."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli.test_backfill import events
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.paths import ROOT
from tests.support.processes import wait_until

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def page(n: str) -> bytes:
    paragraph = (
        f"Story {n}: the regional council approved the new budget on Tuesday after a long "
        "debate about transport, schools and the cost of housing in the city centre, and "
        "residents asked for a public meeting about the plans before the summer."
    )
    when = (NOW - timedelta(hours=1)).isoformat()
    return (
        f"<html><head><title>Story {n}</title>"
        f"<meta property='article:published_time' content='{when}'></head><body><article>"
        f"<h1>Story {n}</h1><p>{paragraph}</p><p>{paragraph}</p><p>{paragraph}</p>"
        "</article></body></html>"
    ).encode()


class Site:
    """A loopback host serving feeds (`/feed/F`, their pages `/p/F-E`) and pages listed for a
    backfill (`/b/N`), every request to them recorded with its arrival time."""

    def __init__(self, srv: LocalServer) -> None:
        self.srv = srv
        self.arrivals: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")

    def timed(self, body: bytes, kind: str) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            with self._lock:
                self.arrivals.append((time.monotonic(), req.path))
            return Response(200, body, {"Content-Type": kind})

        return handle

    def feeds(self, feeds: int, entries: int) -> list[str]:
        for f in range(feeds):
            items = "".join(
                f"<item><title>Story {f}-{e}</title><link>{self.srv.base}/p/{f}-{e}</link>"
                f"<guid>{f}-{e}</guid>"
                f"<pubDate>{format_datetime(NOW - timedelta(hours=e))}</pubDate></item>"
                for e in range(entries)
            )
            rss = f"<rss version='2.0'><channel><title>Feed {f}</title>{items}</channel></rss>"
            self.srv.routes[f"/feed/{f}"] = self.timed(rss.encode(), "application/rss+xml")
            for e in range(entries):
                self.srv.routes[f"/p/{f}-{e}"] = self.timed(page(f"{f}-{e}"), "text/html")
        return [self.srv.url(f"/feed/{f}") for f in range(feeds)]

    def listed(self, n: int, where: Path) -> Path:
        """A list of `n` pages at `where/urls.txt`."""
        for i in range(n):
            self.srv.routes[f"/b/{i}"] = self.timed(page(f"b{i}"), "text/html")
        path = where / "urls.txt"
        path.write_text("".join(self.srv.url(f"/b/{i}") + "\n" for i in range(n)))
        return path

    def times(self, prefix: str = "/") -> list[float]:
        with self._lock:
            return sorted(t for t, path in self.arrivals if path.startswith(prefix))


@pytest.fixture
def site() -> Iterator[Site]:
    with LocalServer() as srv:
        yield Site(srv)


def env(database_url: str, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    out.update(
        DATABASE_URL=database_url,
        INGEST_ALLOW_PRIVATE_NETWORKS="true",
        INGEST_LOG_FORMAT="json",
        INGEST_WORKERS="1",
        INGEST_HTTP_PORT="0",
        INGEST_TICK_SECONDS="0.5",
        INGEST_PER_HOST_CONNECTIONS="8",
    )
    out.update(extra)
    return out


def popen(
    database_url: str, *args: str, quiet: bool = False, **extra: str
) -> subprocess.Popen[str]:
    """`ingest ARGS`, started; `quiet`: its output thrown away (a service, left running)."""
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", *args],
        env=env(database_url, **extra),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        text=True,
    )


def backfill_urls(database_url: str, urls: Path, **extra: str) -> subprocess.Popen[str]:
    """`ingest backfill --urls URLS`, started."""
    return popen(
        database_url, "backfill", "--rate", "0", "--all-pages", "--urls", str(urls), **extra
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    """The exit status, standard output and standard error of `proc`, once it ends."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def scalar(database_url: str, sql: str) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def polled(database_url: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM news.feeds WHERE last_status = 'ok'"))


def test_a_backfill_and_the_service_keep_one_host_s_delay(
    database_url: str, site: Site, tmp_path: Path
) -> None:
    """A backfill fetching the pages of a host and a service polling feeds of that host, on
    one database: the host's delay holds between any two of its requests, whichever process
    sends them (the backfill holds the host as a claim does, sql/0045, and the service's
    claims take none of its feeds meanwhile); before, the backfill ignored the holds and the
    host saw both at once, at twice the rate. (robots.txt, which each process asks once
    without waiting, is left out.)"""
    delay, feeds, entries, listed = 0.3, 6, 2, 30
    urls = site.feeds(feeds, entries)
    pages = site.listed(listed, tmp_path)
    added = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "feeds", "add", *urls],
        env=env(database_url),
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    extra = {"INGEST_HOST_DELAY": str(delay)}
    filling = backfill_urls(database_url, pages, **extra)
    service = None
    try:
        assert wait_until(lambda: bool(site.times("/b/")), timeout=60), (
            "the backfill fetched nothing"
        )
        service = popen(database_url, "run", quiet=True, **extra)
        code, _, err = finish(filling)
        assert code == 0, err
        done = wait_until(lambda: polled(database_url) == feeds, timeout=120, interval=0.3)
    finally:
        for proc in (filling, service):
            if proc is not None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                finish(proc, timeout=60)
    assert done, f"only {polled(database_url)} of {feeds} feeds polled"
    assert len(site.times("/b/")) == listed
    assert len(site.times("/feed/")) == feeds
    times = site.times()
    assert len(times) == listed + feeds * (1 + entries)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Half the delay: room for the loopback's jitter, none for two senders.
    assert min(gaps) >= delay / 2, sorted(gaps)[:5]


def test_a_backfill_waits_while_another_process_holds_its_host(
    database_url: str, site: Site, tmp_path: Path
) -> None:
    """A host another process holds (a service polling its feeds) gets no request of a
    backfill until that hold ends: the backfill says it waits (`backfill_host_waiting`, by
    whom and for how long as recorded), then fetches every page."""
    pages = site.listed(3, tmp_path)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.host_holds VALUES ('127.0.0.1', 'replica-1', now() + '8 s')"
        )
    ends = time.monotonic() + 8
    code, out, err = finish(backfill_urls(database_url, pages, INGEST_HOST_DELAY="0"))
    assert code == 0, err
    assert len(site.times("/b/")) == 3
    assert min(site.times("/b/")) >= ends - 0.5  # the test's clock read after the database's
    (waiting,) = events(err, "backfill_host_waiting")
    assert waiting["host"] == "127.0.0.1"
    assert waiting["held_by"] == "replica-1"
    assert 0 <= waiting["seconds"] <= 8
    assert "not finished" not in out
    # Let go once done, its delay from then on: another process's to take.
    assert scalar(
        database_url,
        "SELECT held_by <> 'replica-1' AND held_until <= now() + '1 s' FROM ingest.host_holds",
    )


def test_a_host_held_longer_than_a_lease_leaves_the_backfill_s_pages_to_the_next_invocation(
    database_url: str, site: Site, tmp_path: Path
) -> None:
    """A host another process keeps (its hold renewed) for longer than it waits for it
    (INGEST_LEASE_SECONDS: what a process that died would hold it for): the pages are left
    failed unsent (`held: … is another process's`), no try spent, the run not finished; the
    same command run once the host is free fetches them."""
    pages = site.listed(3, tmp_path)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.host_holds VALUES ('127.0.0.1', 'replica-1', now() + '1 h')"
        )
    lease = {"INGEST_LEASE_SECONDS": "1.5", "INGEST_HOST_DELAY": "0"}
    code, out, err = finish(backfill_urls(database_url, pages, **lease))
    assert code == 0, err
    assert site.times("/b/") == []
    assert "not finished: run the same command again" in out
    assert events(err, "backfill_held")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT state, attempts, error FROM ingest.backfill_urls").fetchall()
    assert len(rows) == 3
    assert all(state == "failed" and attempts == 0 for state, attempts, _ in rows), rows
    assert all("127.0.0.1 is another process's (replica-1)" in error for *_, error in rows)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM ingest.host_holds")
    code, out, err = finish(backfill_urls(database_url, pages, **lease))
    assert code == 0, err
    assert len(site.times("/b/")) == 3
    assert "not finished" not in out


def test_a_home_page_held_by_another_process_longer_than_a_lease_is_not_begun(
    database_url: str, site: Site, tmp_path: Path
) -> None:
    """A backfill whose TARGET's host another process keeps for longer than it waits exits 1
    saying so, nothing recorded."""
    (target,) = site.feeds(1, 1)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.host_holds VALUES ('127.0.0.1', 'replica-1', now() + '1 h')"
        )
    proc = popen(
        database_url,
        "backfill",
        target,
        INGEST_LEASE_SECONDS="1",
    )
    code, _, err = finish(proc)
    assert code == 1
    assert "cannot find the sources of http://127.0.0.1:" in err
    assert "127.0.0.1 is another process's (replica-1)" in err
    assert site.times() == []
    assert scalar(database_url, "SELECT count(*) FROM ingest.backfill_sources") == 0


def test_a_backfill_killed_holds_its_host_no_longer_than_its_lease(
    database_url: str, site: Site, tmp_path: Path
) -> None:
    """A backfill killed with SIGKILL while it fetches a host's pages holds the host for other
    processes until its lease runs out (INGEST_LEASE_SECONDS), not for good; the same command
    started again, the same run, takes it back at once and fetches the rest."""
    pages = site.listed(40, tmp_path)
    lease = {"INGEST_LEASE_SECONDS": "3", "INGEST_HOST_DELAY": "0.2"}
    proc = backfill_urls(database_url, pages, **lease)
    try:
        assert wait_until(lambda: len(site.times("/b/")) >= 3, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT held_by, extract(epoch FROM held_until - now()),"
            " ingest.host_held('127.0.0.1', 'replica-1') FROM ingest.host_holds"
        ).fetchone()
    assert row is not None
    held_by, left, held = row
    assert held_by == "backfill 1"
    assert held
    assert 0 < left <= 3
    code, out, err = finish(backfill_urls(database_url, pages, **lease))
    assert code == 0, err
    assert events(err, "backfill_host_waiting") == []
    assert "not finished" not in out
    assert {path for _, path in site.arrivals} == {f"/b/{i}" for i in range(40)}
