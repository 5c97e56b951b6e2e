"""A feed that answers 410 Gone is given up on at its first poll, with the reason in
news.feeds, instead of being retried with backoff for days."""

from __future__ import annotations

import random

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline
from ingest.store import Store
from ingest.store.db import make_pool
from tests.support.httpserver import LocalServer, Response
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_410_gone_deactivates_at_once(
    database_url: str, server: LocalServer, inline_workers: InlineWorkers
) -> None:
    server.routes["/feed"] = Response(410, b"gone", {"Content-Type": "text/plain"})
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(
                settings, Store(pool), fetcher, inline_workers, rng=random.Random(0)
            )
            await pipeline.store.add_feed(server.url("/feed"))
            summary = await pipeline.run()
    finally:
        await pool.close()
    assert summary.failed == 1
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        feed = conn.execute(
            "SELECT active, inactive_reason, consecutive_failures FROM news.feeds"
        ).fetchone()
    assert feed is not None
    assert feed["active"] is False
    assert feed["consecutive_failures"] == 1
    assert "410" in feed["inactive_reason"]
    assert feed["inactive_reason"].startswith("gone:")
