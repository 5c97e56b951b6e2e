"""Database faults in process: the connection pool across a PostgreSQL restart, and a unit of
work whose session is killed in the middle (what a restart or failover does to it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading

import psycopg
import pytest

from ingest.store.db import migrate, open_pool
from ingest.workers.pool import Workers
from tests.support.cluster import PrivateCluster
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.paths import ROOT
from tests.support.pipelines import article_page, local_settings, pipeline_for, rows, rss
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_pool_hands_out_working_connections_after_a_restart(
    cluster: PrivateCluster,
) -> None:
    """psycopg_pool does not check connections by itself; ingest's pool does (check=), so the
    first query after a PostgreSQL restart succeeds instead of failing on a dead connection."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "pool_restart"')
    dsn = cluster.dsn("pool_restart")
    await migrate(dsn)
    pool = await open_pool(dsn, max_size=4)
    try:
        async with pool.connection() as conn:
            before = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        await asyncio.to_thread(cluster.stop)
        await asyncio.to_thread(cluster.start)
        async with pool.connection() as conn:
            after = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    finally:
        await pool.close()
    assert before is not None
    assert after is not None
    assert before != after  # a new session: the dead one was discarded, not handed out


async def _waiting_pids(conn: psycopg.AsyncConnection[tuple[int]]) -> list[int]:
    cur = await conn.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    return [r[0] for r in await cur.fetchall()]


async def test_database_error_in_a_unit_of_work_is_not_the_feeds_failure(
    database_url: str, workers: Workers
) -> None:
    """The session storing a feed's articles is terminated mid-statement: the feed is not marked
    failing for it, and its articles are stored by the next run (nothing lost)."""
    page_requested = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_page(req: Request) -> Response:
        loop.call_soon_threadsafe(page_requested.set)
        return Response(200, article_page(req.path), {"Content-Type": "text/html"})

    with LocalServer() as site:
        site.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        site.routes["/a"] = site.routes["/b"] = slow_page
        items = "".join(
            f"<item><title>{p}</title><link>{site.url(p)}</link></item>" for p in ("/a", "/b")
        )
        site.routes["/feed"] = static(rss(items), "application/rss+xml")
        settings = local_settings(database_url)
        async with pipeline_for(settings, workers) as pipeline:
            await pipeline.store.add_feed(site.url("/feed"))
            blocker = await psycopg.AsyncConnection.connect(database_url)
            admin = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
            try:
                run = asyncio.create_task(pipeline.run())
                await asyncio.wait_for(page_requested.wait(), 30)  # the feed is claimed
                # Storing its articles needs a key-share lock on the feed row: hold it up there.
                await blocker.execute("SELECT id FROM ingest.feeds FOR UPDATE")
                for _ in range(300):
                    if pids := await _waiting_pids(admin):
                        break
                    await asyncio.sleep(0.05)
                assert pids, "the unit of work never reached the database"
                await admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
                await blocker.rollback()
                first = await run
            finally:
                await blocker.close()
                await admin.close()
            second = await pipeline.run()
    (feed,) = rows(database_url, "SELECT last_status, consecutive_failures FROM news.feeds")
    stored = rows(database_url, "SELECT url FROM news.articles")
    print(f"\nfirst run: {first.outcomes}\nsecond run: {second.outcomes}\nfeed: {feed}")
    assert feed["consecutive_failures"] == 0
    assert len(stored) == 2


WATCHED = """
import sys
from ingest.store import db
db.MIGRATION_PROBE_SECONDS = 0.5  # the watch's pace: a loaded machine answers within it
db.MIGRATION_SILENCE_SECONDS = 10.0
from ingest.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_run_once_on_a_frozen_server_stops_with_one_line(cluster: PrivateCluster) -> None:
    """`ingest run --once` over the Unix socket of a server stopped without being killed
    (SIGSTOP to every process of the cluster: a frozen virtual machine; no keepalive applies
    to a Unix socket) while a feed's page is fetched: once it has answered nothing for the
    silence allowed (60 s, 10 s here), the pass stops, `database_silent` logged, one line,
    exit 1; thawed, the server goes on (was: the pass waited for ever)."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "frozen_once"')
        conn.execute('CREATE DATABASE "frozen_once"')
    dsn = cluster.dsn("frozen_once")
    release = threading.Event()

    def held(req: Request) -> Response:
        release.wait(90)
        return Response(200, article_page("Held"), {"Content-Type": "text/html"})

    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INGEST_")},
        "DATABASE_URL": dsn,
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_LOG_FORMAT": "json",
        "INGEST_WORKERS": "1",
        "INGEST_HOST_DELAY": "0",
    }
    with LocalServer() as site:
        site.routes["/held"] = held
        item = f"<item><title>Held</title><link>{site.url('/held')}</link></item>"
        site.routes["/feed"] = static(rss(item), "application/rss+xml")
        command = [sys.executable, "-c", WATCHED]
        added = subprocess.run(
            [*command, "feeds", "add", "--no-discover", site.url("/feed")],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        proc = subprocess.Popen(
            [*command, "run", "--once"],
            env=environment,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until(lambda: any(r.path == "/held" for r in site.requests), 60)
            with cluster.frozen():
                _, stderr = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    lines = [line for line in stderr.splitlines() if line and not line.startswith("{")]
    assert proc.returncode == 1, stderr[-2000:]
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith("ingest: the database answered nothing for 10 s"), lines
    assert "database_silent" in events
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM news.feeds").fetchone() == (1,)
