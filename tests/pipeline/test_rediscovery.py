"""A URL registered as given that answers a web page (`feeds add` could not check it, or a list
was imported with --no-discover) is not stuck failing "not a feed": its next poll finds what
it stands for, as `feeds add` would, registers that, and gives the page up saying why."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline
from ingest.store import Store
from ingest.store.db import make_pool
from tests.support.httpserver import LocalServer, static
from tests.support.pipelines import local_settings, pipeline_for, rows
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

STORY = "The harbour board voted on Tuesday to extend the pier by forty metres next spring. " * 6


async def test_a_web_page_registered_as_a_feed_is_replaced_by_its_feeds(
    database_url: str, server: LocalServer, inline_workers: InlineWorkers
) -> None:
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/"] = static(
        "<html><head><title>Harbour Times</title>"
        '<link rel="alternate" type="application/rss+xml" title="News" href="/feed.xml">'
        "</head><body><p>Welcome</p></body></html>"
    )
    server.routes["/feed.xml"] = static(
        "<rss version='2.0'><channel><title>Harbour Times</title><item><title>Pier</title>"
        f"<link>{server.url('/pier')}</link><guid>{server.url('/pier')}</guid>"
        f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate></item></channel></rss>",
        "application/rss+xml",
    )
    server.routes["/pier"] = static(
        f"<html><head><title>Pier</title></head><body><article><h1>Pier</h1><p>{STORY}</p>"
        "</article></body></html>"
    )
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(
                settings, Store(pool), fetcher, inline_workers, rng=random.Random(0)
            )
            await pipeline.store.add_feed(server.url("/"))
            await pipeline.run()
            with psycopg.connect(database_url, row_factory=dict_row) as conn:
                feeds = conn.execute(
                    "SELECT url, active, inactive_reason FROM news.feeds ORDER BY id"
                ).fetchall()
            assert feeds[0]["url"] == server.url("/")
            assert feeds[0]["active"] is False
            assert server.url("/feed.xml") in feeds[0]["inactive_reason"]
            assert feeds[0]["inactive_reason"].startswith("a web page, not a feed")
            assert (feeds[1]["url"], feeds[1]["active"]) == (server.url("/feed.xml"), True)
            await pipeline.run(all_feeds=True)
    finally:
        await pool.close()
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT url FROM news.articles").fetchall()
    assert stored == [(server.url("/pier"),)]


async def test_the_feeds_found_for_a_web_page_are_named_without_their_user_info(
    database_url: str, server: LocalServer, inline_workers: InlineWorkers
) -> None:
    """A page whose feed link carries a user and token (`http://reader:s3cret@host/feed.xml`):
    the feed is registered with them (it needs them), but the page's last error and inactive
    reason, which `ingest feeds` and news.feeds show, name it without, as news.feeds.url does."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    secret_url = server.url("/feed.xml").replace("://", "://reader:s3cret@")
    server.routes["/"] = static(
        "<html><head><title>Harbour Times</title>"
        f'<link rel="alternate" type="application/rss+xml" title="News" href="{secret_url}">'
        "</head><body><p>Welcome</p></body></html>"
    )
    server.routes["/feed.xml"] = static(
        "<rss version='2.0'><channel><title>Harbour Times</title></channel></rss>",
        "application/rss+xml",
    )
    async with pipeline_for(local_settings(database_url), inline_workers) as pipeline:
        await pipeline.store.add_feed(server.url("/"))
        await pipeline.run()
    feeds = rows(
        database_url,
        "SELECT i.url AS registered, n.url, n.last_error, n.inactive_reason"
        " FROM ingest.feeds i JOIN news.feeds n USING (id) ORDER BY id",
    )
    assert [f["registered"] for f in feeds] == [server.url("/"), secret_url]
    assert [f["url"] for f in feeds] == [server.url("/"), server.url("/feed.xml")]
    expected = f"a web page, not a feed: replaced by {server.url('/feed.xml')}"
    assert (feeds[0]["last_error"], feeds[0]["inactive_reason"]) == (expected, expected)


async def test_the_title_of_a_feed_found_for_a_web_page_is_cleaned_as_article_titles_are(
    database_url: str, server: LocalServer, inline_workers: InlineWorkers
) -> None:
    """A home page whose feed link is titled with noncharacters and a C1 control (`News`,
    U+FDD0, U+FFFE, `&#x1FFFE;`, U+0085, `Feed`): the feed found for it is registered titled
    `News Feed`, what `ingest feeds`, `feeds export` and news.feeds.title show."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/"] = static(
        "<html><head><title>Harbour Times</title>"
        '<link rel="alternate" type="application/rss+xml" '
        'title="News\ufdd0\ufffe&#x1FFFE; \x85Feed" href="/feed.xml">'
        "</head><body><p>Welcome</p></body></html>"
    )
    # Untitled: the run may poll the feed it found (a claim after it was registered), and a
    # poll keeps the title a feed gives itself; this one gives none.
    server.routes["/feed.xml"] = static(
        "<rss version='2.0'><channel></channel></rss>", "application/rss+xml"
    )
    async with pipeline_for(local_settings(database_url), inline_workers) as pipeline:
        await pipeline.store.add_feed(server.url("/"))
        await pipeline.run()
    feeds = rows(database_url, "SELECT url, title FROM news.feeds ORDER BY id")
    assert feeds[1] == {"url": server.url("/feed.xml"), "title": "News Feed"}


T = TypeVar("T")


class Recording(InlineWorkers):
    """Workers in process that remember the name of each task's function."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        self.names.append(fn.__name__)
        return await super().run(fn, *args, timeout=timeout)


async def test_a_web_page_standing_for_a_news_sitemap_has_its_sitemaps_read_in_a_worker(
    database_url: str, server: LocalServer
) -> None:
    """A registered URL answering a page without feeds, whose robots.txt lists a sitemap index
    with a news sitemap in it: the news sitemap is registered in its place, and the sitemaps
    (megabytes, on a news site) are read in the worker pool, not on the service's event loop."""
    server.routes["/robots.txt"] = static(
        f"User-agent: *\nAllow: /\nSitemap: {server.url('/sitemap_index.xml')}\n", "text/plain"
    )
    server.routes["/"] = static(
        "<html><head><title>Harbour Times</title></head><body></body></html>"
    )
    server.routes["/sitemap_index.xml"] = static(
        "<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        f"<sitemap><loc>{server.url('/news-sitemap.xml')}</loc></sitemap></sitemapindex>",
        "application/xml",
    )
    server.routes["/news-sitemap.xml"] = static(
        "<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'"
        " xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>"
        f"<url><loc>{server.url('/pier')}</loc><news:news><news:publication>"
        "<news:name>Harbour Times</news:name><news:language>en</news:language>"
        f"</news:publication><news:publication_date>{datetime.now(UTC).isoformat()}"
        "</news:publication_date><news:title>Pier</news:title></news:news></url></urlset>",
        "application/xml",
    )
    workers = Recording()
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(settings, Store(pool), fetcher, workers, rng=random.Random(0))
            await pipeline.store.add_feed(server.url("/"))
            await pipeline.run()
    finally:
        await pool.close()
    with psycopg.connect(database_url) as conn:
        feeds = conn.execute("SELECT url, kind, active FROM news.feeds ORDER BY id").fetchall()
    assert feeds == [
        (server.url("/"), "feed", False),
        (server.url("/news-sitemap.xml"), "sitemap", True),
    ]
    assert workers.names.count("parse_sitemap") == 2  # the index, then the news sitemap
