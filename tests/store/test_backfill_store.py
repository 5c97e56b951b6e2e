"""A backfill's queue at the end of its walk (`BackfillStore.finish_discovery`) on a table filled
by the walk itself, as a run leaves it: tens of thousands of rows PostgreSQL has no statistics
of yet (autovacuum has not analyzed them), which the plans must not pay for per row."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.store import queries
from ingest.store.backfill import BackfillStore, QueuedUrl
from ingest.store.db import make_pool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

URLS = 3000
SITEMAP = "https://news.example/sitemap.xml"
DAY = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def runs(database_url: str) -> AsyncIterator[BackfillStore]:
    pool = make_pool(database_url, max_size=4)
    await pool.open(wait=True, timeout=15)
    try:
        yield BackfillStore(pool)
    finally:
        await pool.close()


async def walked_run(runs: BackfillStore, urls: int) -> int:
    """A run whose one sitemap listed `urls` URLs, one a minute back from DAY, oldest first."""
    run = await runs.open_run(
        b"run", target="https://news.example/", since=None, until=None, options={}
    )
    await runs.seed(run.id, sources=[(SITEMAP, "sitemap")], urls=[], feed_id=None)
    queued = [
        QueuedUrl(f"https://news.example/a/{n}", dated_at=DAY - timedelta(minutes=n))
        for n in reversed(range(urls))
    ]
    await runs.source_walked(run.id, SITEMAP, state="done", urls=queued, url_source="sitemap")
    return run.id


def buffers(plan: dict[str, Any]) -> int:
    """The shared buffers a plan node and the nodes under it touched (hit or read)."""
    return int(plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0))


async def test_ranking_a_walk_of_thousands_of_urls_reads_each_a_bounded_number_of_times(
    database_url: str, runs: BackfillStore
) -> None:
    """The fetch order of 3,000 URLs a walk just recorded, planned without statistics of them:
    the URLs ranked before (none here) are counted once, not again for every URL ranked (the
    plan did, 142 buffers a URL here and four times as many for twice the URLs: 80,000 URLs of
    a site's sitemaps took about an hour), and every URL is ranked, newest first."""
    run_id = await walked_run(runs, URLS)
    with psycopg.connect(database_url) as conn:
        (row,) = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + queries()["backfill_rank"],
            {"run_id": run_id, "limit": None},
        ).fetchall()
        conn.rollback()
    (explained,) = row[0] if isinstance(row[0], list) else json.loads(row[0])
    assert buffers(explained["Plan"]) < 40 * URLS, explained["Plan"]
    await runs.finish_discovery(run_id, None)
    with psycopg.connect(database_url) as conn:
        ranks = conn.execute(
            "SELECT url, rank FROM ingest.backfill_urls WHERE run_id = %s AND state = 'pending' "
            "ORDER BY rank",
            (run_id,),
        ).fetchall()
    assert [url for url, _ in ranks] == [f"https://news.example/a/{n}" for n in range(URLS)]
    assert [rank for _, rank in ranks] == list(range(1, URLS + 1))
