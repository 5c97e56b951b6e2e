"""Error texts stored for feeds and articles (news.feeds.last_error and inactive_reason,
news.articles.extraction_error) quote URLs as schema news shows feed URLs: without user-info,
credential parameters' values as `***`."""

from __future__ import annotations

import pytest

from tests.support.httpserver import LocalServer, Response, static
from tests.support.pipelines import local_settings, pipeline_for, rows, rss
from tests.support.secret_urls import SECRET
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_page_redirect_quoted_in_an_extraction_error_is_stored_redacted(
    database_url: str, server: LocalServer, inline_workers: InlineWorkers
) -> None:
    """A story redirecting to a path robots.txt disallows, by a URL with a user and a token:
    the article is stored from its feed, its extraction error naming the redirect without
    them, in ingest.articles itself and so in news.articles."""
    server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /private\n", "text/plain")
    target = server.url(f"/private/story?token={SECRET}").replace("://", f"://reader:{SECRET}@")
    server.routes["/story"] = Response(302, b"", {"Location": target})
    server.routes["/feed.xml"] = static(
        rss(
            f"<item><title>Pier extended</title><link>{server.url('/story')}</link>"
            "<description>The harbour board voted to extend the pier by forty metres next"
            " spring, the chair said on Tuesday.</description></item>"
        ),
        "application/rss+xml",
    )
    async with pipeline_for(local_settings(database_url), inline_workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed.xml"))
        await pipeline.run()
    stored = rows(database_url, "SELECT extraction_error FROM ingest.articles")
    shown = rows(database_url, "SELECT extraction_error FROM news.articles")
    expected = f"redirect to {server.url('/private/story?token=***')}"
    assert len(stored) == 1, stored
    assert expected in stored[0]["extraction_error"], stored
    assert SECRET not in stored[0]["extraction_error"]
    assert shown == stored
