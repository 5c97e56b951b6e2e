"""A private feed's credential (its URL's user-info, a credential parameter) through the
pipeline, against the real PostgreSQL and a loopback server: where it goes, and where it must
not (the articles' URLs, the requests for the pages the feed lists)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline
from ingest.ports import WorkerPool
from ingest.store import Store
from ingest.store.db import make_pool
from tests.support.httpserver import LocalServer, Request, Response, Route, static
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime.now(UTC).replace(microsecond=0)
PARAGRAPH = (
    "The harbour authority said on Thursday that the new ferry terminal would open next spring, "
    "two years later than planned, after a dispute over the cost of the foundations."
)
BASIC = "Basic UmVhZGVyOlMzY3JldA=="  # Reader:S3cret


@pytest.fixture
def workers(inline_workers: InlineWorkers) -> InlineWorkers:
    return inline_workers


@pytest.fixture
def server(server: LocalServer) -> LocalServer:
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    return server


@pytest.fixture
async def resources() -> AsyncIterator[list[Any]]:
    stack: list[Any] = []
    yield stack
    for pool, fetcher in stack:
        await fetcher.aclose()
        await pool.close()


async def make_pipeline(database_url: str, workers: WorkerPool, stack: list[Any]) -> Pipeline:
    s = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    fetcher = Fetcher(s)
    stack.append((pool, fetcher))
    return Pipeline(s, Store(pool), fetcher, workers, rng=random.Random(0))


def rows(database_url: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def page(title: str) -> str:
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{title}. {PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
    )


def rss(links: list[str]) -> str:
    items = "".join(
        f"<item><title>Story {n}</title><link>{link}</link><guid isPermaLink='false'>g{n}</guid>"
        f"<description>Feed text of story {n}.</description>"
        f"<media:content url='/img/{n}.jpg' medium='image'/>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate></item>"
        for n, link in enumerate(links)
    )
    return (
        "<rss version='2.0' xmlns:media='http://search.yahoo.com/mrss/'><channel><title>T</title>"
        f"<link>/</link>{items}</channel></rss>"
    )


def private(route: Route) -> Route:
    def handle(req: Request) -> Response:
        if req.headers.get("authorization") != BASIC:
            return Response(401, b"denied")
        return route(req) if callable(route) else route

    return handle


def _private_and_public_feeds(server: LocalServer) -> None:
    """A private feed (`/feeds/private.xml`) linking its two stories relative to it, the
    root-relative `/story/0` and the path-relative `story/1`, and a public feed listing
    `/story/0` too; the pages at both addresses."""
    server.routes["/feeds/private.xml"] = private(
        static(rss(["/story/0", "story/1"]), "application/rss+xml")
    )
    server.routes["/feeds/public.xml"] = static(
        rss([server.url("/story/0")]), "application/rss+xml"
    )
    for n in range(2):
        server.routes[f"/story/{n}"] = static(page(f"Story {n}"))
        server.routes[f"/feeds/story/{n}"] = static(page(f"Story {n}"))


async def test_a_private_feed_s_relative_links_are_its_site_s_urls_without_its_user_info(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed registered with its credential as user-info (`http://Reader:S3cret@host/feeds/
    private.xml`) whose entries link their pages relative to it (`<link>/story/0</link>`, an
    image `url='/img/0.jpg'`, the channel's `<link>/</link>`): the pages are its site's, stored
    without the credential (`news.articles.url` is read by `news_reader`), fetched without it
    (the credential goes with the feed's own requests, never with the pages it lists), and one
    story that a public feed of the site lists too is one article."""
    _private_and_public_feeds(server)
    pipeline = await make_pipeline(database_url, workers, resources)
    await pipeline.store.add_feed(
        server.url("/feeds/private.xml").replace("://", "://Reader:S3cret@")
    )
    await pipeline.store.add_feed(server.url("/feeds/public.xml"))
    done = await pipeline.run()
    assert (done.ok, done.failed) == (2, 0)
    stored = rows(database_url, "SELECT url, image_url FROM ingest.articles ORDER BY url")
    assert stored == [
        {"url": server.url("/feeds/story/1"), "image_url": server.url("/img/1.jpg")},
        {"url": server.url("/story/0"), "image_url": server.url("/img/0.jpg")},
    ]
    site = rows(database_url, "SELECT site_url FROM ingest.feeds WHERE url LIKE '%private%'")
    assert site == [{"site_url": server.url("/")}]
    pages = sorted(
        (r.path, "authorization" in r.headers) for r in server.requests if "story" in r.path
    )
    assert pages == [("/feeds/story/1", False), ("/story/0", False)]
    await pipeline.aclose()


async def test_a_feed_s_api_key_header_goes_to_its_own_site_only(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A feed given `feeds set FEED header.X-Api-Key=...` (an API's key, named as a
    credential) listing a page of its own site and one of another site: the key goes with the
    feed's request and its own site's page, not to the other site; `X-Edition` goes to both.
    Moved to another site by a permanent redirect, the feed leaves the key behind, as it
    leaves Authorization."""
    server.routes["/feed"] = static(
        rss([server.url("/story/0"), second_server.url("/story/1")]), "application/rss+xml"
    )
    server.routes["/story/0"] = static(page("Story 0"))
    second_server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    second_server.routes["/story/1"] = static(page("Story 1"))
    s = Settings(
        database_url=database_url,
        allow_private_networks=True,
        host_delay=0,
        redirect_after_fetches=1,
        redirect_after=0,
    )
    pool = make_pool(database_url)
    await pool.open(wait=True)
    fetcher = Fetcher(s)
    resources.append((pool, fetcher))
    pipeline = Pipeline(s, Store(pool), fetcher, workers, rng=random.Random(0))
    url = server.url("/feed")
    await pipeline.store.add_feed(url)
    await pipeline.store.set_feed_settings(
        url, {}, {"X-Api-Key": "S3cret", "X-Edition": "uk"}, None
    )
    assert (await pipeline.run()).ok == 1
    sent = [
        (r.path, r.headers.get("x-api-key"), r.headers.get("x-edition"))
        for r in [*server.requests, *second_server.requests]
        if r.path != "/robots.txt"
    ]
    assert sorted(sent) == [
        ("/feed", "S3cret", "uk"),
        ("/story/0", "S3cret", "uk"),
        ("/story/1", None, "uk"),
    ]
    server.routes["/feed"] = Response(301, b"", {"Location": second_server.url("/feed")})
    second_server.routes["/feed"] = static(rss([]), "application/rss+xml")
    assert (await pipeline.run(all_feeds=True)).ok == 1
    moved = rows(database_url, "SELECT url, settings FROM ingest.feeds")
    assert moved == [
        {"url": second_server.url("/feed"), "settings": {"headers": {"X-Edition": "uk"}}}
    ]
    await pipeline.aclose()


async def test_articles_stored_with_a_private_feed_s_user_info_before_are_found_after_0046(
    empty_database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database that the version before the fix wrote to, its private feed's relative links
    stored with `Reader:S3cret@` in them and the public feed's copy of one story another
    article, migrated by sql/0046 and polled by this version: the two stories are found under
    the URLs this version computes, as the articles they were (no new row, no lost one), one
    article listed by both feeds, and no URL of news.articles has the credential."""
    from ingest import article as article_module
    from ingest.documents import feeds as feed_documents
    from ingest.store import db

    shipped = db.load_migrations()
    with monkeypatch.context() as old:
        # Every migration but 0046: this version's writes need the columns of those after it
        # (0048's held_until), which 0046 neither reads nor changes.
        old.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version != 46])
        await db.migrate(empty_database_url)
    database_url = empty_database_url
    _private_and_public_feeds(server)
    pipeline = await make_pipeline(database_url, workers, resources)
    await pipeline.store.add_feed(
        server.url("/feeds/private.xml").replace("://", "://Reader:S3cret@")
    )
    await pipeline.store.add_feed(server.url("/feeds/public.xml"))
    with monkeypatch.context() as old:
        # The links resolved and stored as the version before did: with the user-info.
        old.setattr(feed_documents, "without_user_info", lambda url: url)
        old.setattr(article_module, "without_user_info", lambda url: url)
        assert (await pipeline.run()).ok == 2
    before = rows(database_url, "SELECT id, url FROM ingest.articles ORDER BY id")
    assert sorted("S3cret" in r["url"] for r in before) == [False, True, True]
    # The story stored both ways is the row stored without the credential (sql/0046).
    ids = {r["url"].replace("Reader:S3cret@", ""): r["id"] for r in before}
    ids.update({r["url"]: r["id"] for r in before if "S3cret" not in r["url"]})

    assert await db.migrate(database_url) == [46]
    # Both feeds list a new story too, so that this version parses them again.
    server.routes["/feeds/private.xml"] = private(
        static(rss(["/story/0", "story/1", "/story/2"]), "application/rss+xml")
    )
    server.routes["/feeds/public.xml"] = static(
        rss([server.url("/story/0"), server.url("/story/2")]), "application/rss+xml"
    )
    server.routes["/story/2"] = static(page("Story 2"))
    done = await pipeline.run(all_feeds=True)
    assert (done.ok, done.failed, done.new_articles) == (2, 0, 1)
    after = rows(
        database_url,
        "SELECT id, url, original_url, image_url FROM news.articles ORDER BY url",
    )
    assert [(r["id"], r["url"]) for r in after][:2] == [
        (ids[server.url("/feeds/story/1")], server.url("/feeds/story/1")),
        (ids[server.url("/story/0")], server.url("/story/0")),
    ]
    assert after[2]["url"] == server.url("/story/2")
    assert not any("S3cret" in str(value) for r in after for value in r.values())
    listed = rows(
        database_url,
        "SELECT a.url, count(*) AS feeds FROM news.article_feeds f"
        " JOIN news.articles a ON a.id = f.article_id GROUP BY a.url ORDER BY a.url",
    )
    assert listed == [
        {"url": server.url("/feeds/story/1"), "feeds": 1},
        {"url": server.url("/story/0"), "feeds": 2},
        {"url": server.url("/story/2"), "feeds": 2},
    ]
    await pipeline.aclose()
