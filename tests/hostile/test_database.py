"""Database faults in process: the connection pool across a PostgreSQL restart, and a unit of
work whose session is killed in the middle (what a restart or failover does to it)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from ingest.store.db import migrate, open_pool
from ingest.workers.pool import Workers
from tests.support.cluster import PrivateCluster
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.pipelines import article_page, local_settings, pipeline_for, rows, rss

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
