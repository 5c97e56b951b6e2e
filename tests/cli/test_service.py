"""The long-lived service (`ingest run`) and crash safety of `ingest run --once`, as real
processes against the real PostgreSQL and a local HTTP server."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.processes import free_port, wait_until
from tests.support.relay import SilentRelay

pytestmark = pytest.mark.integration

PARAGRAPH = (
    "Officials in the city council met on {day} to discuss the budget for the coming year, "
    "and several members raised questions about the cost of the new transit line number {n}."
)


def article_page(n: int) -> str:
    body = "".join(
        f"<p>{PARAGRAPH.format(day=d, n=n)}</p>" for d in ("Monday", "Tuesday", "Friday")
    )
    return (
        f"<html lang='en'><head><title>Story {n}</title></head><body>"
        f"<nav><a href='/'>Home</a></nav><article><h1>Story {n}</h1>{body}</article>"
        f"<footer>Copyright Example News</footer></body></html>"
    )


def rss(base: str, count: int) -> str:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/story/{n}?utm_source=rss</link>"
        f"<guid>story-{n}</guid><pubDate>{format_datetime(start + timedelta(hours=n))}</pubDate>"
        f"</item>"
        for n in range(count)
    )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Example</title>"
        f"{items}</channel></rss>"
    )


def env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_LOG_FORMAT": "json",
        "INGEST_WORKERS": "2",
        "INGEST_HOST_DELAY": "0",  # politeness: tests/fetch/test_politeness.py
        **extra,
    }


def count_articles(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT url) FROM news.articles").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@contextlib.contextmanager
def logging_service(
    environment: dict[str, str], script: str | None = None
) -> Iterator[tuple[subprocess.Popen[str], list[dict[str, object]]]]:
    """`ingest run` in `environment` (or a `script` that runs it), and its JSON log lines as
    they come (a thread reads its stderr); killed on the way out if it still runs."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script] if script else [sys.executable, "-m", "ingest.cli", "run"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, object]] = []
    assert proc.stderr is not None
    reader = threading.Thread(
        target=lambda: lines.extend(
            json.loads(line) for line in proc.stderr or () if line.startswith("{")
        ),
        daemon=True,
    )
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        proc.stderr.close()


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        srv.routes["/feed.xml"] = static(rss(srv.base, 12), "application/rss+xml")
        for n in range(12):
            srv.routes[f"/story/{n}"] = static(article_page(n))
        yield srv


def test_service_ingests_serves_health_and_stops_on_sigterm(
    database_url: str, site: LocalServer
) -> None:
    """`ingest run` polls on its own, answers /healthz /readyz /metrics, and exits 0 on SIGTERM
    with no lease left behind."""
    subprocess.run(
        [sys.executable, "-m", "ingest.cli", "feeds", "add", site.url("/feed.xml")],
        env=env(database_url),
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "run"],
        env=env(
            database_url,
            INGEST_TICK_SECONDS="1",
            INGEST_HTTP_PORT=str(port),
            INGEST_HTTP_HOST="127.0.0.1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(
            lambda: count_articles(database_url)[0] == 12, timeout=60, interval=0.2
        ), "service stored nothing"
        assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
        assert http_get(f"http://127.0.0.1:{port}/readyz") == (200, "ok\n")
        assert http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200
        # The feed's outcome is counted once its poll ends, after its articles are stored.
        polled = 'ingest_feeds_polled_total{status="ok"} 1.0'
        assert wait_until(
            lambda: polled in http_get(f"http://127.0.0.1:{port}/metrics")[1], timeout=30
        ), "the feed's poll was never counted"
        assert http_get(f"http://127.0.0.1:{port}/nope")[0] == 404
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-2000:]
    assert '"service_stopped"' in stderr
    with psycopg.connect(database_url) as conn:
        held = conn.execute("SELECT count(*) FROM ingest.feeds WHERE lease_owner IS NOT NULL")
        assert held.fetchone() == (0,)


def test_killed_run_loses_nothing_and_duplicates_nothing(database_url: str) -> None:
    """SIGKILL in the middle of `run --once`; the next run (after the lease expires) stores
    every article exactly once."""
    with LocalServer() as srv:
        count = 30
        srv.routes["/feed.xml"] = static(rss(srv.base, count), "application/rss+xml")

        def slow(n: int):  # type: ignore[no-untyped-def]
            page = article_page(n).encode()

            def handle(req: Request) -> Response:
                time.sleep(0.3)
                return Response(200, page, {"Content-Type": "text/html"})

            return handle

        for n in range(count):
            srv.routes[f"/story/{n}"] = slow(n)
        e = env(database_url, INGEST_LEASE_SECONDS="1", INGEST_PER_HOST_CONNECTIONS="2")
        subprocess.run(
            [sys.executable, "-m", "ingest.cli", "feeds", "add", srv.url("/feed.xml")],
            env=e,
            check=True,
            capture_output=True,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "run", "--once"],
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(
            lambda: len([r for r in srv.requests if r.path.startswith("/story/")]) >= 5,
            timeout=60,
            interval=0.2,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        before = count_articles(database_url)[0]
        assert before < count, "the run finished before it could be killed"

        time.sleep(1.5)  # let the killed run's lease expire
        # The rerun holds the default lease: a 1 s one can lapse on a loaded machine before it
        # is renewed, and the feed is then left to another run.
        rerun = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "run", "--once"],
            env=env(database_url, INGEST_PER_HOST_CONNECTIONS="2"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert count_articles(database_url) == (count, count)


def test_sigterm_during_once_hands_feeds_back(database_url: str) -> None:
    """SIGTERM in the middle of `run --once` exits promptly and releases the feeds it claimed, so
    another process can take them at once instead of after the lease expires."""
    with LocalServer() as srv:
        srv.routes["/feed.xml"] = static(rss(srv.base, 5), "application/rss+xml")

        def stall(req: Request) -> Response:
            time.sleep(20)
            return Response(200, article_page(0).encode(), {"Content-Type": "text/html"})

        for n in range(5):
            srv.routes[f"/story/{n}"] = stall
        e = env(database_url)
        subprocess.run(
            [sys.executable, "-m", "ingest.cli", "feeds", "add", srv.url("/feed.xml")],
            env=e,
            check=True,
            capture_output=True,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "run", "--once"],
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(
            lambda: any(r.path.startswith("/story/") for r in srv.requests),
            timeout=60,
            interval=0.2,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 143
        with psycopg.connect(database_url) as conn:
            held = conn.execute("SELECT count(*) FROM ingest.feeds WHERE lease_owner IS NOT NULL")
            assert held.fetchone() == (0,)


def _slow_feed(srv: LocalServer, release: threading.Event, database_url: str) -> dict[str, str]:
    """One feed registered at `srv` (`/slow.xml`), whose one story's page is answered only once
    `release` is set: its run goes on until then. The service's environment for it."""
    srv.routes["/slow.xml"] = static(rss(srv.base, 1), "application/rss+xml")

    def held(req: Request) -> Response:
        release.wait(90)
        return Response(200, article_page(0).encode(), {"Content-Type": "text/html"})

    srv.routes["/story/0"] = held
    e = env(database_url, INGEST_READ_TIMEOUT="120", INGEST_REQUEST_DEADLINE="120")
    subprocess.run(
        [sys.executable, "-m", "ingest.cli", "feeds", "add", srv.url("/slow.xml")],
        env=e,
        check=True,
        capture_output=True,
    )
    return e


def test_a_feed_due_while_a_slow_feed_runs_is_polled_meanwhile(database_url: str) -> None:
    """A tick that finds the run of an earlier tick still going (one feed whose page its host
    holds back) has that run claim the feeds due since: a feed registered meanwhile is polled
    while the slow one still runs, not once it is done. Each pass's line (`tick_done`) is
    logged when the run claims again, not once the run ends, whose summary would otherwise
    only grow."""
    release = threading.Event()
    with LocalServer() as srv:
        e = _slow_feed(srv, release, database_url)
        srv.routes["/other.xml"] = static(
            "<?xml version='1.0'?><rss version='2.0'><channel><title>Other</title></channel></rss>",
            "application/rss+xml",
        )
        service = logging_service({**e, "INGEST_TICK_SECONDS": "0.5", "INGEST_HTTP_PORT": "0"})
        try:
            with service as (proc, lines):
                assert wait_until(
                    lambda: any(r.path == "/story/0" for r in srv.requests),
                    timeout=60,
                    interval=0.1,
                )
                subprocess.run(
                    [sys.executable, "-m", "ingest.cli", "feeds", "add", srv.url("/other.xml")],
                    env=e,
                    check=True,
                    capture_output=True,
                )
                polled = wait_until(
                    lambda: any(r.path == "/other.xml" for r in srv.requests),
                    timeout=30,
                    interval=0.1,
                )
                logged = wait_until(
                    lambda: any(e["event"] == "tick_done" for e in list(lines)), timeout=30
                )
                still_held = not release.is_set()
                release.set()
                assert polled, "the feed waited for the slow feed's run to end"
                assert logged, "no pass was logged while the slow feed ran"
                assert still_held
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        finally:
            release.set()
        assert proc.returncode == 0, lines[-5:]
        assert count_articles(database_url) == (1, 1)
        first = next(e for e in lines if e["event"] == "tick_done")
        assert (first["feeds"], first["new"]) == (1, 0)  # the other feed's pass alone


def test_failing_ticks_make_the_service_unready(database_url: str) -> None:
    """A replica whose every tick fails (here: a schema it does not expect) turns /readyz to
    503 with the reason, counts the failures in ingest_errors_total{kind="tick"}, keeps
    /healthz at 200 (the process is alive) and still stops cleanly."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ingest.feeds (url) VALUES ('http://127.0.0.1:9/a.xml')")
        conn.execute("ALTER TABLE ingest.feeds RENAME COLUMN feed_hint TO feed_hint_gone")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "run"],
        env=env(
            database_url,
            INGEST_TICK_SECONDS="0.3",
            INGEST_HTTP_PORT=str(port),
            INGEST_HTTP_HOST="127.0.0.1",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(  # 503 `migrating` at first, until the service runs
            lambda: "ticks failed" in http_get_or_none(f"http://127.0.0.1:{port}/readyz")[1],
            timeout=60,
            interval=0.2,
        )
        status, reason = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503
        assert "ticks failed" in reason
        assert "feed_hint" in reason
        assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
        metrics = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        assert 'ingest_errors_total{kind="tick"}' in metrics
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


TICK_COUNTS = ("feeds", "ok", "not_modified", "failed", "held", "new", "updated")


def test_a_failed_tick_logs_one_line_with_its_counts(database_url: str) -> None:
    """A tick whose run fails (its claim refused: a schema the service does not expect) ends
    with one line saying so, `tick_failed`, carrying the counts `tick_done` carries (what the
    pass did before it failed: nothing here), so that the ticks of a replica can be counted
    from its log whether they worked or not."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ingest.feeds (url) VALUES ('http://127.0.0.1:9/a.xml')")
        conn.execute("ALTER TABLE ingest.feeds RENAME COLUMN feed_hint TO feed_hint_gone")
    with logging_service(env(database_url, INGEST_TICK_SECONDS="0.3", INGEST_HTTP_PORT="0")) as (
        proc,
        lines,
    ):
        failed = wait_until(
            lambda: sum(e["event"] == "tick_failed" for e in list(lines)) >= 3, timeout=60
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert failed, [e["event"] for e in lines]
    ticks = [e for e in lines if str(e["event"]).startswith("tick_")]
    assert {e["event"] for e in ticks} == {"tick_failed"}
    for tick in ticks:
        assert "feed_hint" in str(tick["error"])
        assert {name: tick.get(name) for name in TICK_COUNTS} == dict.fromkeys(TICK_COUNTS, 0)


def test_readiness_returns_once_ticks_work_again_while_their_run_goes_on(
    database_url: str,
) -> None:
    """After a streak of failed ticks (a schema the service does not expect), /readyz is 200
    again as soon as a tick's claims work (the schema put back), while that tick's run still
    goes on (a feed whose page its host holds back), not only once the run is over."""
    release = threading.Event()
    with LocalServer() as srv:
        e = _slow_feed(srv, release, database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE ingest.feeds RENAME COLUMN feed_hint TO feed_hint_gone")
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "run"],
            env={
                **e,
                "INGEST_TICK_SECONDS": "0.3",
                "INGEST_HTTP_PORT": str(port),
                "INGEST_HTTP_HOST": "127.0.0.1",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        readyz = f"http://127.0.0.1:{port}/readyz"
        try:
            assert wait_until(lambda: http_get_or_none(readyz)[0] == 503, timeout=60)
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("ALTER TABLE ingest.feeds RENAME COLUMN feed_hint_gone TO feed_hint")
            assert wait_until(
                lambda: any(r.path == "/story/0" for r in srv.requests), timeout=60, interval=0.1
            )
            ready = wait_until(lambda: http_get_or_none(readyz)[0] == 200, timeout=15)
            still_held = not release.is_set()
            release.set()
            assert ready, http_get_or_none(readyz)[1]
            assert still_held
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, stderr[-2000:]


def test_readiness_fails_from_the_moment_the_service_drains(database_url: str) -> None:
    """SIGTERM to a service whose run goes on (a feed whose page its host holds back): from
    the moment it drains, /readyz answers 503 with the reason, so that a load balancer or
    Kubernetes takes the replica out of rotation, while /healthz stays 200, so that a liveness
    probe does not have the container killed mid-drain (was: 503 "stopping", the drain and its
    hand-back lost to the restart); once the page comes, the feed finishes and the process
    exits 0."""
    release = threading.Event()
    with LocalServer() as srv:
        e = _slow_feed(srv, release, database_url)
        port = free_port()
        service = logging_service(
            {
                **e,
                "INGEST_TICK_SECONDS": "0.5",
                "INGEST_HTTP_PORT": str(port),
                "INGEST_HTTP_HOST": "127.0.0.1",
            }
        )
        try:
            with service as (proc, lines):
                assert wait_until(
                    lambda: any(r.path == "/story/0" for r in srv.requests),
                    timeout=60,
                    interval=0.1,
                )
                assert http_get(f"http://127.0.0.1:{port}/readyz") == (200, "ok\n")
                proc.send_signal(signal.SIGTERM)
                draining = wait_until(
                    lambda: any(e["event"] == "service_draining" for e in list(lines)),
                    timeout=30,
                )
                ready = http_get_or_none(f"http://127.0.0.1:{port}/readyz")
                healthy = http_get_or_none(f"http://127.0.0.1:{port}/healthz")
                still_held = not release.is_set()
                release.set()
                proc.wait(timeout=60)
        finally:
            release.set()
        assert draining, [e["event"] for e in lines]
        assert still_held
        assert ready == (503, "stopping\n")
        assert healthy == (200, "ok\n")
        assert proc.returncode == 0, lines[-5:]
        assert count_articles(database_url) == (1, 1)


def http_get_or_none(url: str) -> tuple[int | None, str]:
    try:
        return http_get(url)
    except OSError:
        return None, ""


NEWER = (
    "INSERT INTO ingest.schema_migrations (version, name, checksum)"
    " VALUES (9998, 'from_a_newer_version', 'x')"
)


def test_commands_refuse_a_database_a_newer_version_migrated(database_url: str) -> None:
    """`ingest run` and the commands that write (here `feeds add`) on a database with a
    migration this version does not ship exit 1 with one line naming it, and write nothing."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(NEWER)
    for args in (["feeds", "add", "http://127.0.0.1:9/a.xml"], ["run", "--once"]):
        done = subprocess.run(
            [sys.executable, "-m", "ingest.cli", *args],
            env=env(database_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, (args, done.stderr[-2000:])
        assert "9998" in done.stderr
        assert "newer version" in done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM ingest.feeds").fetchone() == (0,)


def test_a_running_service_stops_writing_once_a_newer_version_migrates(database_url: str) -> None:
    """An older replica still running when a newer version migrates the database (a rolling
    upgrade) claims no more feeds: each tick fails, saying why (`tick_failed`), and /readyz
    turns 503 with the reason at once, while /healthz stays 200 and SIGTERM still stops it."""
    with LocalServer() as srv:
        srv.routes["/feed.xml"] = static(rss(srv.base, 1), "application/rss+xml")
        srv.routes["/story/0"] = static(article_page(0))
        port = free_port()
        readyz = f"http://127.0.0.1:{port}/readyz"
        with logging_service(
            env(
                database_url,
                INGEST_TICK_SECONDS="0.3",
                INGEST_HTTP_PORT=str(port),
                INGEST_HTTP_HOST="127.0.0.1",
            )
        ) as (proc, lines):
            assert wait_until(lambda: http_get_or_none(readyz)[0] == 200, timeout=60)
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(NEWER)
            status, reason = http_get(readyz)
            assert status == 503
            assert "9998" in reason
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("INSERT INTO ingest.feeds (url) VALUES (%s)", (srv.url("/feed.xml"),))
            refused = wait_until(
                lambda: (
                    sum(
                        e["event"] == "tick_failed" and "9998" in str(e["error"])
                        for e in list(lines)
                    )
                    >= 3
                ),
                timeout=60,
            )
            assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        assert refused, [e["event"] for e in lines]
        assert proc.returncode == 0
        assert srv.requests == []
    assert count_articles(database_url) == (0, 0)


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1", "::", "::1"])
def test_the_image_health_check_passes_against_the_running_service(
    database_url: str, host: str
) -> None:
    """The Dockerfile's HEALTHCHECK command, run with the service's own settings beside a real
    `ingest run`, reaches its /healthz and passes, whichever address INGEST_HTTP_HOST makes it
    listen on (`::` listens on IPv6 alone); once the service is gone it fails."""
    from tests.project.test_container import (
        DOCKERFILE,
        _healthcheck_command,
        parse_dockerfile,
    )

    command = _healthcheck_command(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[-1])
    port = free_port()
    settings = {"INGEST_HTTP_PORT": str(port), "INGEST_HTTP_HOST": host}
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "::1": "[::1]"}.get(host, host)
    healthz = f"http://{probe_host}:{port}/healthz"

    def check() -> int:
        return subprocess.run(
            [sys.executable, *command[1:]],
            env={**os.environ, **settings},
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode

    with logging_service(env(database_url, INGEST_TICK_SECONDS="1", **settings)) as (proc, _):
        assert wait_until(lambda: http_get_or_none(healthz)[0] == 200, timeout=60)
        assert check() == 0
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert check() != 0


def test_a_service_waiting_for_its_migrations_answers_its_probes(empty_database_url: str) -> None:
    """`ingest run` whose migrations wait (another replica migrating holds the lock; a long
    migration, an index built over millions of rows, is the same): its endpoints answer from
    the start, /healthz 200 (alive: a liveness probe, or Docker's health check, failing for as
    long as a migration takes would have the container killed mid-migration, the migration
    rolled back and started again at every restart) and /readyz 503 `migrating`; once the
    migrations are done, /readyz 200, and SIGTERM exits 0 (was: nothing listened until the
    migrations were done, connection refused)."""
    from ingest.store.db import MIGRATION_LOCK_KEY

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {
        **env(empty_database_url),
        "INGEST_TICK_SECONDS": "0.5",
        "INGEST_HTTP_PORT": str(port),
        "INGEST_HTTP_HOST": "127.0.0.1",
    }
    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        with logging_service(environment) as (proc, lines):
            waiting = wait_until(
                lambda: any(e["event"] == "migration_lock_waiting" for e in list(lines)),
                timeout=60,
            )
            healthy = http_get_or_none(f"{base}/healthz")
            ready = http_get_or_none(f"{base}/readyz")
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            started = wait_until(lambda: http_get_or_none(f"{base}/readyz")[0] == 200, timeout=60)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert waiting, [e["event"] for e in lines]
    assert healthy == (200, "ok\n")
    assert ready == (503, "migrating\n")
    assert started
    assert proc.returncode == 0, lines[-5:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_stop_signal_while_the_service_waits_for_its_migrations_ends_it(
    empty_database_url: str, sig: signal.Signals
) -> None:
    """SIGTERM, or SIGHUP (the terminal it runs in the foreground of hung up), while `ingest
    run` still starts, its migrations waiting for another replica's: it stops there, its wait
    given up (the session closed), exit 128 + the signal's number as any command the signal
    ends, `service_stopped` logged with `starting` (was: SIGHUP's default action killed it
    at once, and neither signal left a line saying the service stopped)."""
    from ingest.store.db import MIGRATION_LOCK_KEY

    environment = {**env(empty_database_url), "INGEST_HTTP_PORT": "0"}
    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        with logging_service(environment) as (proc, lines):
            waiting = wait_until(
                lambda: any(e["event"] == "migration_lock_waiting" for e in list(lines)),
                timeout=60,
            )
            proc.send_signal(sig)
            code = proc.wait(timeout=60)
        waiters = holder.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    events = [e["event"] for e in lines]
    assert waiting, events
    assert code == 128 + sig, (code, events[-5:])
    stopped = [e for e in lines if e["event"] == "service_stopped"]
    assert stopped, events[-5:]
    assert stopped[0].get("starting") is True
    assert waiters == (0,)


SLOW_POOL = """
import asyncio, sys, structlog
from ingest import pipeline
open_pool = pipeline.open_pool
async def slow(dsn, **kw):  # a database slow to give the pool its first connection
    structlog.get_logger("test").info("test_pool_opening")
    await asyncio.sleep(5)
    return await open_pool(dsn, **kw)
pipeline.open_pool = slow
from ingest.cli import main
sys.exit(main(["run"]))
"""


def test_readiness_says_the_service_starts_once_its_migrations_are_done(
    database_url: str,
) -> None:
    """`ingest run` whose migrations are done and whose database pool is still opening (it
    waits up to 15 s for a first connection): /readyz answers 503 `starting: connecting to the
    database`, what it waits on, then 200 (was: `migrating`, the migrations long done)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_POOL],
        env={
            **env(database_url),
            "INGEST_TICK_SECONDS": "0.5",
            "INGEST_HTTP_PORT": str(port),
            "INGEST_HTTP_HOST": "127.0.0.1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    readyz = f"http://127.0.0.1:{port}/readyz"
    try:
        for line in proc.stderr:
            if '"test_pool_opening"' in line:
                break
        opening = http_get_or_none(readyz)
        started = wait_until(lambda: http_get_or_none(readyz)[0] == 200, timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert opening == (503, "starting: connecting to the database\n")
    assert started
    assert proc.returncode == 0


SILENT_POOL = """
import socket, structlog, sys
from ingest import pipeline
silent = socket.create_server(("127.0.0.1", 0))  # connections accepted, never answered
open_pool = pipeline.open_pool
async def silent_pool(dsn, **kw):  # the database gone silent once the migrations are done
    structlog.get_logger("test").info("test_pool_opening")
    port = silent.getsockname()[1]
    return await open_pool(f"postgresql://postgres@127.0.0.1:{port}/news", **kw)
pipeline.open_pool = silent_pool
from ingest.cli import main
sys.exit(main(["run"]))
"""


def test_sigterm_while_the_service_s_pool_waits_for_a_silent_database_ends_it(
    database_url: str,
) -> None:
    """SIGTERM while the service's database pool waits for its first connection from a
    database gone silent once the migrations are done (connections accepted, never
    answered): the service stops there, exit 143, `service_stopped` logged with `starting`
    (was: the pool's connection attempts, cancelled, were tried again for ever behind the
    event loop's close, and the process never exited: SIGKILL was the way out)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SILENT_POOL],
        env={**env(database_url), "INGEST_HTTP_PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    events = []
    try:
        for line in proc.stderr:
            if line.startswith("{"):
                events.append(json.loads(line)["event"])
            if events[-1:] == ["test_pool_opening"]:
                break
        time.sleep(1)  # its first connection attempt under way
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        events.extend(json.loads(line)["event"] for line in proc.stderr if line.startswith("{"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert code == 143, events[-5:]
    assert "service_stopped" in events


def test_a_service_killed_leaves_only_json_lines(database_url: str) -> None:
    """`ingest run` in JSON killed with SIGKILL (the kernel's OOM killer, Kubernetes or Docker
    once their grace is over): every line of its stderr, whoever wrote it, is a JSON object,
    also once it is gone (was: multiprocessing's resource tracker, a process of its own, wrote
    its `UserWarning: resource_tracker: There appear to be 2 leaked semaphore objects to clean
    up at shutdown` and the source line under it as text)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "run"],
        env={**env(database_url), "INGEST_TICK_SECONDS": "0.5", "INGEST_HTTP_PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if '"service_started"' in line:
                break
        time.sleep(1)  # the worker pool started
        proc.kill()
        rest = proc.stderr.read()  # until the last process holding it (the tracker) exits
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    not_json = []
    for line in rest.splitlines():
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not_json == []


def test_a_hang_up_of_the_service_s_process_group_leaves_only_json_lines(
    database_url: str,
) -> None:
    """SIGHUP to the whole process group of `ingest run` (the terminal it runs in the
    foreground of hung up: the kernel signals the terminal's foreground process group, which
    multiprocessing's resource tracker is in): the service drains and exits 0, and every line
    of its stderr is JSON, none a warning (was: the tracker died of the signal; the worker
    pool's stop relaunched it, `UserWarning: resource_tracker: process died unexpectedly,
    relaunching.  Some resources might leak.`, and the new tracker, told to forget semaphores
    it never knew, printed a `KeyError` traceback as text for each)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "run"],
        env={**env(database_url), "INGEST_TICK_SECONDS": "0.5", "INGEST_HTTP_PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if '"service_started"' in line:
                break
        time.sleep(1)  # the worker pool started
        os.killpg(proc.pid, signal.SIGHUP)
        lines.extend(proc.stderr)  # until the last process holding it (the tracker) exits
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    not_json, warnings = [], []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            not_json.append(line)
            continue
        if event.get("level") in ("warning", "error", "critical"):
            warnings.append(event)
    assert proc.returncode == 0, lines[-5:]
    assert not_json == []
    assert warnings == []


SLOW_CLOSE = """
import asyncio, sys
from ingest import pipeline
aclose = pipeline.Pipeline.aclose
async def slow(self):  # a group of articles still being written as the service stops
    await asyncio.sleep(3)
    await aclose(self)
pipeline.Pipeline.aclose = slow
from ingest.cli import main
sys.exit(main(["run"]))
"""


def _signalled_twice(
    database_url: str, script: str, sig: signal.Signals, second_after: str, pause: float = 0.0
) -> tuple[list[str], int, str]:
    """Run the service by `script`, send it `sig` once it has started and again `pause` s after
    it logs `second_after`; the events it logged up to then, its exit status and the rest of
    its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**env(database_url), "INGEST_TICK_SECONDS": "0.5", "INGEST_HTTP_PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    events: list[str] = []
    try:
        for line in proc.stderr:
            if line.startswith("{"):
                events.append(json.loads(line)["event"])
            if events[-1:] == ["service_started"]:
                proc.send_signal(sig)
            if events[-1:] == [second_after]:
                time.sleep(pause)
                proc.send_signal(sig)
                break
        rest = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return events, proc.returncode, rest


def test_a_second_sigterm_while_the_service_closes_changes_nothing(database_url: str) -> None:
    """A second SIGTERM after the drain, while the service closes (its writers finishing the
    groups being written, its worker pool stopping; 3 s here): it goes on closing and exits 0
    (was: the default action of the signal, restored once the drain was over, killed it there,
    the group being written rolled back and the exit status -15)."""
    events, returncode, rest = _signalled_twice(
        database_url, SLOW_CLOSE, signal.SIGTERM, "service_stopped", pause=0.5
    )
    assert "service_stopped" in events
    assert returncode == 0, rest[-2000:]
    assert '"event_loop_lag"' in rest  # the pipeline closed


SLOW_EXIT = """
import atexit, json, sys, time
def slow():  # what the process does last: an embedded server it started is stopped (pg_ctl)
    print(json.dumps({"event": "test_exiting"}), file=sys.stderr, flush=True)
    time.sleep(2)
atexit.register(slow)
from ingest.cli import main
sys.exit(main(["run"]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_second_signal_while_the_service_exits_changes_nothing(
    database_url: str, sig: signal.Signals
) -> None:
    """A second SIGTERM (Ctrl-C, SIGHUP) once the service has drained and closed, while the
    process exits (an embedded server it started being stopped, 2 s here): it goes on exiting,
    exit 0 (was: the signal's default action, restored as the service closed, killed it
    there, exit status -15; a Ctrl-C raised KeyboardInterrupt in the server's stop)."""
    events, returncode, rest = _signalled_twice(database_url, SLOW_EXIT, sig, "test_exiting")
    assert "service_stopped" in events
    assert returncode == 0, rest[-2000:]
    assert rest == ""  # no traceback of an exit cut short


def test_readiness_answers_within_seconds_when_the_database_goes_silent(
    database_url: str,
) -> None:
    """The database's network drops every packet (no reset, no refusal: a firewall rule, a
    partition) under a running service: each /readyz answers 503 with the reason within a
    few seconds (`jobs.service.READY_SECONDS`), as a probe with its own timeout needs, and the
    next one too (was: every request waited for the database's answer, minutes, each probe's
    connection held open meanwhile)."""
    from jobs.service import READY_SECONDS

    info = conninfo_to_dict(database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    port = free_port()
    environment = {
        **env(make_conninfo(database_url, host="127.0.0.1", port=str(relay.port))),
        # One tick, at the start: the probes then find the pool's connections idle.
        "INGEST_TICK_SECONDS": "3600",
        "INGEST_HTTP_PORT": str(port),
        "INGEST_HTTP_HOST": "127.0.0.1",
    }
    readyz = f"http://127.0.0.1:{port}/readyz"
    answers = []
    try:
        with logging_service(environment):
            assert wait_until(lambda: http_get_or_none(readyz)[0] == 200, timeout=60)
            time.sleep(1.5)  # the pool checks a connection idle this long before handing it out
            relay.silence()
            for _ in range(2):
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(readyz, timeout=30) as resp:
                        answer: tuple[int | None, str] = resp.status, resp.read().decode()
                except urllib.error.HTTPError as e:
                    answer = e.code, e.read().decode()
                except OSError as e:
                    answer = None, str(e)
                answers.append((answer, time.monotonic() - started))
    finally:
        relay.close()
    for (status, reason), seconds in answers:
        assert status == 503, (status, reason, seconds)
        assert reason == f"database unreachable: no answer within {READY_SECONDS:g} s\n"
        assert seconds < READY_SECONDS + 2, seconds


WATCHED_SERVICE = """
import sys
from ingest.store import db
db.MIGRATION_PROBE_SECONDS = 0.2  # the watch's pace, as the migrations' test sets it
db.MIGRATION_SILENCE_SECONDS = 2.0
from ingest.cli import main
sys.exit(main(["run"]))
"""


def test_a_service_whose_database_goes_silent_says_so_and_recovers(
    database_url: str, site: LocalServer
) -> None:
    """The database's network drops every packet under a running service (no reset: a
    partition, or a server stopped behind a proxy that still acknowledges): once it has
    answered nothing for the silence allowed (60 s, 2 s here), the service shuts its pool's
    connections down, `database_silent` logged, and its ticks fail meanwhile; once the network
    forwards again, it polls the feed registered during the silence, every article stored
    once, no lease left, exit 0 on SIGTERM (was: its tick waited for ever on a connection
    nothing answered any more, until /healthz's 16 minutes had an orchestrator restart it)."""
    info = conninfo_to_dict(database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    environment = {
        **env(make_conninfo(database_url, host="127.0.0.1", port=str(relay.port))),
        "INGEST_TICK_SECONDS": "0.5",
        "INGEST_HTTP_PORT": "0",
    }

    def logged(lines: list[dict[str, object]], event: str) -> bool:
        return any(line.get("event") == event for line in list(lines))

    try:
        with logging_service(environment, WATCHED_SERVICE) as (proc, lines):
            assert wait_until(lambda: logged(lines, "service_started"), 60), lines[-5:]
            time.sleep(1)  # ticks under way, each through the pool
            relay.silence()
            subprocess.run(
                [sys.executable, "-m", "ingest.cli", "feeds", "add", site.url("/feed.xml")],
                env=env(database_url),
                check=True,
                capture_output=True,
            )
            silent = wait_until(lambda: logged(lines, "database_silent"), 60)
            relay.resume()
            stored = wait_until(lambda: count_articles(database_url) == (12, 12), 120)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    finally:
        relay.close()
    events = [line.get("event") for line in lines]
    assert silent, events[-10:]
    assert "tick_failed" in events
    assert stored, count_articles(database_url)
    assert code == 0, events[-10:]
    with psycopg.connect(database_url) as conn:
        held = conn.execute("SELECT count(*) FROM ingest.feeds WHERE lease_owner IS NOT NULL")
        assert held.fetchone() == (0,)


ON_ITS_OWN_TERMINAL = """
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the terminal on stdin, this session's controlling one
os.execv(sys.executable, [sys.executable, "-m", "ingest.cli", *sys.argv[1:]])
"""


def _hung_up_on(database_url: str, *args: str) -> tuple[int, str]:
    """`ingest ARGS` in the foreground of a terminal of its own, polling a feed whose page its
    host holds back, and the terminal hung up meanwhile (SIGHUP from the kernel to the
    session's foreground, its output gone); the page then answered. Its exit status and what
    it had shown."""
    release = threading.Event()
    with LocalServer() as srv:
        e = _slow_feed(srv, release, database_url)
        controller, terminal = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-c", ON_ITS_OWN_TERMINAL, *args],
            env={**e, "INGEST_TICK_SECONDS": "0.5", "INGEST_HTTP_PORT": "0"},
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        shown = bytearray()
        hang_up = threading.Event()

        def show() -> None:  # never blocked in a read: a close would wait for it
            with contextlib.suppress(OSError):
                while not hang_up.is_set():
                    if select.select([controller], [], [], 0.1)[0]:
                        shown.extend(os.read(controller, 65536))

        reader = threading.Thread(target=show, daemon=True)
        reader.start()
        try:
            assert wait_until(
                lambda: any(r.path == "/story/0" for r in srv.requests), timeout=60
            ), shown.decode(errors="replace")[-2000:]
            hang_up.set()
            reader.join(10)
            os.close(controller)  # the hang-up: SIGHUP to the session's foreground
            time.sleep(1)
            release.set()
            code = proc.wait(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, shown.decode(errors="replace")


def _leased(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        held = conn.execute("SELECT count(*) FROM ingest.feeds WHERE lease_owner IS NOT NULL")
        row = held.fetchone()
        assert row is not None
        return int(row[0])


def test_a_terminal_hung_up_under_the_service_drains_it(database_url: str) -> None:
    """`ingest run` in the foreground of a terminal that hangs up (the SSH session closed, the
    terminal window shut) while a feed is in progress: the kernel's SIGHUP drains the service
    as SIGTERM does, the feed finishes, its article stored, nothing left leased, exit 0, its
    log lines to the terminal gone lost on the way (was: killed by the signal at once, the
    feed left leased for INGEST_LEASE_SECONDS)."""
    code, shown = _hung_up_on(database_url, "run")
    assert code == 0, shown[-2000:]
    assert count_articles(database_url) == (1, 1)
    assert _leased(database_url) == 0


def test_a_terminal_hung_up_under_run_once_hands_its_feeds_back(database_url: str) -> None:
    """`ingest run --once` in the foreground of a terminal that hangs up mid-pass: the SIGHUP
    ends it as SIGTERM does, its feeds handed back at once, exit 129 (128 + SIGHUP) (was:
    killed by the signal, the feed left leased for INGEST_LEASE_SECONDS)."""
    code, shown = _hung_up_on(database_url, "run", "--once")
    assert code == 128 + signal.SIGHUP, shown[-2000:]
    assert _leased(database_url) == 0


WATCHED_ONCE = """
import sys
from ingest.store import db
db.MIGRATION_PROBE_SECONDS = 0.5  # the watch's pace: a loaded machine answers within it
db.MIGRATION_SILENCE_SECONDS = 10.0
from ingest.cli import main
sys.exit(main(["run", "--once"]))
"""


def test_run_once_whose_database_goes_silent_stops_and_the_next_run_resumes(
    database_url: str, site: LocalServer
) -> None:
    """The database's network drops every packet (no reset: a partition, a server stopped
    behind a proxy that still acknowledges) while `run --once` waits on a feed's page, after
    another feed's articles were stored: once it has answered nothing for the silence allowed
    (60 s, 10 s here), the pass stops, `database_silent` logged, one line saying so, exit 1,
    the articles stored before kept; the feed it held is polled by the next run once its
    lease runs out (was: the pass waited for ever on connections nothing answered any more)."""
    release = threading.Event()

    def held(req: Request) -> Response:
        release.wait(90)
        return Response(200, article_page(12).encode(), {"Content-Type": "text/html"})

    site.routes["/slow.xml"] = static(
        rss(site.base, 1).replace("/story/0", "/held"), "application/rss+xml"
    )
    site.routes["/held"] = held
    e = env(database_url, INGEST_READ_TIMEOUT="120", INGEST_REQUEST_DEADLINE="120")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "feeds",
            "add",
            site.url("/feed.xml"),
            site.url("/slow.xml"),
        ],
        env=e,
        check=True,
        capture_output=True,
    )
    info = conninfo_to_dict(database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    through = make_conninfo(database_url, host="127.0.0.1", port=str(relay.port))
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHED_ONCE],
        env={**e, "DATABASE_URL": through, "INGEST_LEASE_SECONDS": "5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: count_articles(database_url) == (12, 12) or proc.poll() is not None, 60)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert count_articles(database_url) == (12, 12)
        assert wait_until(lambda: any(r.path == "/held" for r in site.requests), 60)
        relay.silence()
        try:
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            release.set()
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        relay.close()
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    errors = [line for line in stderr.splitlines() if line and not line.startswith("{")]
    assert proc.returncode == 1, stderr[-2000:]
    assert len(errors) == 1, stderr[-2000:]
    assert errors[0].startswith("ingest: the database answered nothing for 10 s"), errors
    assert "database_silent" in events
    assert stdout == ""
    assert count_articles(database_url) == (12, 12)
    time.sleep(5)  # the slow feed's lease runs out
    again = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "run", "--once"],
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert count_articles(database_url) == (13, 13)
