"""What a feed's outcome and the metrics count of the articles its storer hands over: the
articles that committed, not those handed over."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import REGISTRY

from ingest.config import Settings
from ingest.pipeline import _Storer
from tests.pipeline.test_backlog import _pipeline
from tests.store.test_store import _article
from tests.support.workers import InlineWorkers

pytestmark = pytest.mark.anyio


def _fallbacks() -> float:
    return REGISTRY.get_sample_value("ingest_page_fallbacks_total") or 0.0


@pytest.mark.integration
async def test_a_page_fallback_shared_by_two_feeds_counts_once(database_url: str) -> None:
    """Two feeds list one story whose page was unusable: the first stores it from its feed
    text, the second finds it stored. One article stored from feed text, counted once, in the
    metric and in the feed outcomes (`page_errors`)."""
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    article = dataclasses.replace(
        _article("https://shared.example/story"),
        text_source="feed",
        extraction_error="page unusable: HTTP 500",
    )
    before = _fallbacks()
    async with _pipeline(settings, InlineWorkers(1)) as pipeline:
        await pipeline.store.add_feed("https://one.example/feed")
        await pipeline.store.add_feed("https://two.example/feed")
        ids = [f["id"] for f in await pipeline.store.list_feeds()]
        storers = [_Storer(pipeline._articles, feed_id) for feed_id in ids]
        for storer in storers:
            await storer.add(article, f"entry-{storer.feed_id}".encode())
    assert [s.new for s in storers] == [1, 0]
    assert [s.page_errors for s in storers] == [1, 0]
    assert _fallbacks() - before == 1
