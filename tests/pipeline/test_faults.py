"""The pipeline under awkward conditions, in process against the real PostgreSQL and a local
HTTP server: poisoned pages, pages that fail for a while, feeds racing over the same stories,
slow feeds outliving their lease, and stop requests."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.config import Settings
from ingest.errors import FetchError
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline, host_share
from ingest.ports import WorkerPool
from ingest.store import Store
from ingest.store.db import make_pool
from jobs.tasks import pass_counts
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.network import fake_dns
from tests.support.pipelines import CONSENT_WALL, fail_first
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime.now(UTC).replace(microsecond=0)
PARAGRAPH = (
    "The harbour authority said on Thursday that the new ferry terminal would open next spring, "
    "two years later than planned, after a dispute over the cost of the foundations."
)


@pytest.fixture
def workers(inline_workers: InlineWorkers) -> InlineWorkers:
    """Tasks run in process: nothing here is about worker processes (tests/hostile is)."""
    return inline_workers


@pytest.fixture
def server(server: LocalServer) -> LocalServer:
    """The loopback server, with a robots.txt that allows everything."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    return server


def page(title: str, ld: dict[str, Any] | None = None) -> str:
    script = f"<script type='application/ld+json'>{json.dumps(ld)}</script>" if ld else ""
    return (
        f"<html><head><title>{title}</title>{script}</head><body><article><h1>{title}</h1>"
        f"<p>{title}. {PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
    )


def rss(base: str, paths: list[str], guid_prefix: str = "g") -> str:
    items = "".join(
        f"<item><title>Item {p}</title><link>{base}{p}</link>"
        f"<guid isPermaLink='false'>{guid_prefix}{p}</guid>"
        f"<description>Feed text of {p}.</description>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=i))}</pubDate></item>"
        for i, p in enumerate(paths)
    )
    return f"<rss version='2.0'><channel><title>T</title>{items}</channel></rss>"


def full_text_rss(base: str, paths: list[str]) -> str:
    """A feed whose entries carry their whole article (`content:encoded`)."""
    items = "".join(
        f"<item><title>Story {p}</title><link>{base}{p}</link><guid>{p}</guid>"
        f"<content:encoded>{p}. {PARAGRAPH} {PARAGRAPH} {PARAGRAPH}</content:encoded></item>"
        for p in paths
    )
    return (
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<channel><title>T</title>{items}</channel></rss>"
    )


def held_page(release: threading.Event, seconds: float = 5) -> Callable[[Request], Response]:
    """A route answering with its page once `release` is set (or `seconds` passed)."""

    def held(req: Request) -> Response:
        release.wait(seconds)
        return Response(200, page(req.path).encode(), {"Content-Type": "text/html"})

    return held


def articles_new_counted() -> float:
    """`ingest_articles_new_total` as the metrics registry has it now."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("ingest_articles_new_total") or 0.0


def settings(database_url: str, **kw: Any) -> Settings:
    return Settings(database_url=database_url, allow_private_networks=True, host_delay=0, **kw)


async def make_pipeline(s: Settings, workers: WorkerPool, stack: list[Any]) -> Pipeline:
    pool = make_pool(s.database_url or "")
    await pool.open(wait=True)
    fetcher = Fetcher(s)
    stack.append((pool, fetcher))
    return Pipeline(s, Store(pool), fetcher, workers, rng=random.Random(0))


@pytest.fixture
async def resources() -> AsyncIterator[list[Any]]:
    stack: list[Any] = []
    yield stack
    for pool, fetcher in stack:
        await fetcher.aclose()
        await pool.close()


async def requested(server: LocalServer, prefix: str) -> None:
    """Until `server` has been asked for a path starting with `prefix`."""
    while not any(r.path.startswith(prefix) for r in server.requests):  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def lease_taken(database_url: str) -> None:
    """Another process holds every feed's lease, for a minute."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET lease_owner = 'another',"
            " lease_expires_at = now() + interval '1 minute'"
        )


def rows(database_url: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    "ld",
    [
        pytest.param(
            {"@type": "NewsArticle", "datePublished": "0001-01-01T00:00:00+05:00"}, id="year-1"
        ),
        pytest.param({"@type": "NewsArticle", "image": "http://x/a\u0000b"}, id="nul-in-image"),
        pytest.param({"@type": "NewsArticle", "image": "http://x/\ud800"}, id="lone-surrogate"),
        pytest.param({"@type": "NewsArticle", "author": {"name": "A\u0000B"}}, id="nul-in-author"),
    ],
)
async def test_poisoned_page_spoils_nothing_else(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    ld: dict[str, Any],
) -> None:
    """A page whose metadata PostgreSQL or Python would choke on does not stop the feed: every
    article is stored, the feed is ok, and a second poll fetches no page again."""
    server.routes["/bad"] = static(page("Bad", ld))
    server.routes["/good"] = static(page("Good"))
    server.routes["/feed"] = static(rss(server.base, ["/bad", "/good"]), "application/rss+xml")
    s = settings(database_url)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    summary = await pipeline.run()
    assert (summary.ok, summary.failed, summary.new_articles) == (1, 0, 2)
    await pipeline.run(all_feeds=True)
    assert len(server.hits("/bad")) == len(server.hits("/good")) == 1
    texts = {r["url"]: r["text"] for r in rows(database_url, "SELECT url, text FROM news.articles")}
    assert "\x00" not in "".join(texts.values())
    assert PARAGRAPH in texts[server.url("/bad")]


async def test_transient_page_failure_is_retried_before_falling_back(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A page answering 503 is tried again on the next polls (the feed is re-read, not
    answered from its validators); once it answers, the page text is stored. One that keeps
    failing falls back to the feed text after INGEST_PAGE_ATTEMPTS tries."""
    answers = iter([503, 503, 200])

    def flaky(req: Request) -> Response:
        if next(answers, 200) == 503:
            return Response(503, b"busy", {"Content-Type": "text/plain"})
        return Response(200, page("Flaky").encode(), {"Content-Type": "text/html"})

    server.routes["/flaky"] = flaky
    server.routes["/down"] = Response(502, b"bad gateway", {"Content-Type": "text/plain"})
    server.routes["/feed"] = static(
        rss(server.base, ["/flaky", "/down"]), "application/rss+xml", etag='"v1"'
    )
    pipeline = await make_pipeline(settings(database_url, page_attempts=3), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    news = []
    for _ in range(3):
        summary = await pipeline.run(all_feeds=True)
        news.append(summary.new_articles)
    assert news == [0, 0, 2]
    assert [r.headers.get("if-none-match") for r in server.hits("/feed")] == [None] * 3
    stored = {r["url"]: r for r in rows(database_url, "SELECT * FROM news.articles")}
    assert stored[server.url("/flaky")]["text_source"] == "page"
    assert stored[server.url("/down")]["text_source"] == "feed"
    assert "502" in stored[server.url("/down")]["extraction_error"]
    await pipeline.run(all_feeds=True)  # now everything is done: validators are used again
    assert server.hits("/feed")[-1].headers.get("if-none-match") == '"v1"'


async def test_a_page_answering_an_empty_200_is_tried_again(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A page answering 200 with an empty body (a cache that stored an empty response) is a
    passing failure: the entry waits for the next poll, and once the page answers, its text
    is stored, not the feed's. One that stays empty falls back to the feed's text after
    INGEST_PAGE_ATTEMPTS tries, saying why."""
    answers = iter([b"", b"  \n"])

    def emptied(req: Request) -> Response:
        body = next(answers, None)
        return Response(
            200, page("Emptied").encode() if body is None else body, {"Content-Type": "text/html"}
        )

    server.routes["/emptied"] = emptied
    server.routes["/empty"] = Response(200, b"", {"Content-Type": "text/html"})
    server.routes["/feed"] = static(rss(server.base, ["/emptied", "/empty"]), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url, page_attempts=3), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    news = [(await pipeline.run(all_feeds=True)).new_articles for _ in range(3)]
    assert news == [0, 0, 2]
    stored = {r["url"]: r for r in rows(database_url, "SELECT * FROM news.articles")}
    assert stored[server.url("/emptied")]["text_source"] == "page"
    assert stored[server.url("/empty")]["text_source"] == "feed"
    assert stored[server.url("/empty")]["extraction_error"] == "empty response body"


async def test_robots_unavailable_defers_instead_of_downgrading(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """robots.txt answering 5xx makes pages wait (RFC 9309: disallowed while unavailable), and
    once it is back the page text is stored, not the feed's summary."""
    server.routes["/robots.txt"] = Response(503, b"", {"Content-Type": "text/plain"})
    server.routes["/a"] = static(page("A"))
    server.routes["/feed"] = static(rss(server.base, ["/a"]), "application/rss+xml")
    s = settings(database_url, robots_cache_seconds=0)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    first = await pipeline.run()
    assert (first.ok, first.new_articles) == (1, 0)
    assert server.hits("/a") == []
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    pipeline.fetcher = Fetcher(s)  # a fresh robots.txt cache, as after its expiry
    resources.append((pipeline.store.pool, pipeline.fetcher))
    await pipeline.run(all_feeds=True)
    article = rows(database_url, "SELECT text_source, extraction_error FROM news.articles")
    assert article == [{"text_source": "page", "extraction_error": None}]


async def test_pages_held_by_their_host_s_retry_after_spend_no_tries(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed on one host lists two pages of another host, which answers the first page asked
    for with 503 and `Retry-After: 3600`: the other page's request is not sent (held), and at
    the feed's next polls neither is (the host is held). Requests never sent spend none of
    the INGEST_PAGE_ATTEMPTS tries: after more polls than that the entries still wait, the
    refused page with its one try, and once the hold is over both are stored from their pages
    (was: each poll counted a try at each held page, so both were stored from the feed's
    summary after three polls, `extraction_error` "held: ...", never fetched)."""
    refusal = Response(503, b"", {"Retry-After": "3600", "Content-Type": "text/plain"})
    server.routes["/a"] = server.routes["/b"] = refusal
    # The feed is on a host of its own (a name resolving to the loopback server), which the
    # pages' host's Retry-After does not hold.
    feed_url = server.url("/feed").replace("127.0.0.1", "feeds.test")
    server.routes["/feed"] = static(rss(server.base, ["/a", "/b"]), "application/rss+xml")
    s = settings(database_url, per_host_connections=1)
    pipeline = await make_pipeline(s, workers, resources)

    def fetcher() -> Fetcher:
        made = Fetcher(s, resolver=fake_dns({"feeds.test": ["127.0.0.1"]}))
        resources.append((pipeline.store.pool, made))
        return made

    pipeline.fetcher = fetcher()
    await pipeline.store.add_feed(feed_url)
    for _ in range(s.page_attempts + 1):
        summary = await pipeline.run(all_feeds=True)
        assert (summary.ok, summary.new_articles) == (1, 0)
    assert len(server.hits("/a") + server.hits("/b")) == 1
    waiting = rows(database_url, "SELECT attempts FROM ingest.feed_entries ORDER BY attempts")
    assert waiting == [{"attempts": 0}, {"attempts": 1}]
    server.routes["/a"], server.routes["/b"] = static(page("A")), static(page("B"))
    pipeline.fetcher = fetcher()  # the hold is over
    summary = await pipeline.run(all_feeds=True)
    assert summary.new_articles == 2
    stored = rows(database_url, "SELECT text_source, extraction_error FROM news.articles")
    assert stored == [{"text_source": "page", "extraction_error": None}] * 2


@pytest.mark.parametrize("asked", ["robots", "another-feed"])
async def test_pages_whose_robots_txt_their_host_s_retry_after_holds_spend_no_tries(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any], asked: str
) -> None:
    """A feed on one host lists two pages of another, whose robots.txt was never read while that
    host asks for no request for an hour (`Retry-After: 3600`): its robots.txt answered so, or
    another feed of the host did. The pages wait, spending none of the INGEST_PAGE_ATTEMPTS
    tries, however often the feed is polled meanwhile; once the hold is over both are stored
    from their pages (was: robots.txt "unavailable", each poll counted a try at each page no
    request was sent for, and after three polls both were stored from the feed's summary,
    `extraction_error` "robots.txt: unavailable", never fetched)."""
    refusal = Response(503, b"", {"Retry-After": "3600", "Content-Type": "text/plain"})
    allowed = static("User-agent: *\nAllow: /\n", "text/plain")
    robots_asked: list[Request] = []

    def robots(req: Request) -> Response:
        if req.headers["host"].startswith("feeds.test"):
            return allowed(req)
        robots_asked.append(req)
        return refusal if asked == "robots" else allowed(req)

    server.routes["/robots.txt"] = robots
    server.routes["/busy"] = refusal
    server.routes["/a"], server.routes["/b"] = static(page("A")), static(page("B"))
    feed_url = server.url("/feed").replace("127.0.0.1", "feeds.test")
    server.routes["/feed"] = static(rss(server.base, ["/a", "/b"]), "application/rss+xml")
    s = settings(database_url, per_host_connections=1)
    pipeline = await make_pipeline(s, workers, resources)

    def fetcher() -> Fetcher:
        made = Fetcher(s, resolver=fake_dns({"feeds.test": ["127.0.0.1"]}))
        resources.append((pipeline.store.pool, made))
        return made

    pipeline.fetcher = fetcher()
    if asked == "another-feed":
        with pytest.raises(FetchError, match="HTTP 503"):
            await pipeline.fetcher.fetch(server.url("/busy"), "feed")
    await pipeline.store.add_feed(feed_url)
    for _ in range(s.page_attempts + 1):
        summary = await pipeline.run(all_feeds=True)
        assert (summary.ok, summary.new_articles) == (1, 0)
    assert server.hits("/a") + server.hits("/b") == []
    assert len(robots_asked) == (1 if asked == "robots" else 0)
    waiting = rows(database_url, "SELECT attempts FROM ingest.feed_entries ORDER BY attempts")
    assert waiting == [{"attempts": 0}, {"attempts": 0}]
    asked = "over"
    pipeline.fetcher = fetcher()  # the hold is over
    summary = await pipeline.run(all_feeds=True)
    assert summary.new_articles == 2
    stored = rows(database_url, "SELECT text_source, extraction_error FROM news.articles")
    assert stored == [{"text_source": "page", "extraction_error": None}] * 2


@pytest.mark.parametrize("asked", ["robots", "another-feed"])
async def test_pages_whose_robots_txt_redirects_to_a_host_a_retry_after_holds_spend_no_tries(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any], asked: str
) -> None:
    """A feed lists two pages of a host whose robots.txt, never read, redirects to another host
    (a CDN) that asks for no request for an hour (`Retry-After: 3600`): the robots.txt there
    answered so, or another feed of that host did. The pages are held as when their own host
    is: they wait, spending none of the INGEST_PAGE_ATTEMPTS tries, however often the feed is
    polled meanwhile, the robots.txt not asked for again; once the hold is over both are stored
    from their pages (was: robots.txt "unavailable", each poll counted a try at each page, and
    after three polls both were stored from the feed's summary, `extraction_error` "robots.txt:
    unavailable", never fetched)."""
    refusal = Response(503, b"", {"Retry-After": "3600", "Content-Type": "text/plain"})
    allowed = static("User-agent: *\nAllow: /\n", "text/plain")
    cdn = server.base.replace("127.0.0.1", "cdn.test")
    moved = Response(301, b"", {"Location": cdn + "/site-robots.txt"})
    cdn_asked: list[Request] = []

    def robots(req: Request) -> Response:
        return allowed(req) if req.headers["host"].startswith("feeds.test") else moved

    def site_robots(req: Request) -> Response:
        cdn_asked.append(req)
        return refusal if asked == "robots" else allowed(req)

    server.routes["/robots.txt"] = robots
    server.routes["/site-robots.txt"] = site_robots
    server.routes["/busy"] = refusal
    server.routes["/a"], server.routes["/b"] = static(page("A")), static(page("B"))
    feed_url = server.url("/feed").replace("127.0.0.1", "feeds.test")
    server.routes["/feed"] = static(rss(server.base, ["/a", "/b"]), "application/rss+xml")
    s = settings(database_url, per_host_connections=1)
    pipeline = await make_pipeline(s, workers, resources)

    def fetcher() -> Fetcher:
        names = {"feeds.test": ["127.0.0.1"], "cdn.test": ["127.0.0.1"]}
        made = Fetcher(s, resolver=fake_dns(names))
        resources.append((pipeline.store.pool, made))
        return made

    pipeline.fetcher = fetcher()
    if asked == "another-feed":
        with pytest.raises(FetchError, match="HTTP 503"):
            await pipeline.fetcher.fetch(cdn + "/busy", "feed")
    await pipeline.store.add_feed(feed_url)
    for _ in range(s.page_attempts + 1):
        summary = await pipeline.run(all_feeds=True)
        assert (summary.ok, summary.new_articles) == (1, 0)
    assert server.hits("/a") + server.hits("/b") == []
    assert len(cdn_asked) == (1 if asked == "robots" else 0)
    waiting = rows(database_url, "SELECT attempts FROM ingest.feed_entries ORDER BY attempts")
    assert waiting == [{"attempts": 0}, {"attempts": 0}]
    asked = "over"
    pipeline.fetcher = fetcher()  # the hold is over
    summary = await pipeline.run(all_feeds=True)
    assert summary.new_articles == 2
    stored = rows(database_url, "SELECT text_source, extraction_error FROM news.articles")
    assert stored == [{"text_source": "page", "extraction_error": None}] * 2


async def test_feeds_with_the_same_stories_in_opposite_order_do_not_deadlock(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Two feeds listing the same 20 stories in opposite orders, processed at once, both
    succeed; each story is one row, fetched once, and belongs to the entry of the feed that
    stored it."""
    paths = [f"/s/{n}" for n in range(20)]
    for p in paths:
        server.routes[p] = static(page(p))
    server.routes["/one"] = static(rss(server.base, paths, "one"), "application/rss+xml")
    server.routes["/two"] = static(rss(server.base, paths[::-1], "two"), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/one"))
    await pipeline.store.add_feed(server.url("/two"))
    summary = await pipeline.run()
    assert (summary.ok, summary.failed, summary.new_articles) == (2, 0, 20)
    assert Counter(r.path for r in server.requests if r.path.startswith("/s/")) == Counter(paths)
    owners = rows(
        database_url,
        "SELECT a.guid, f.url FROM news.articles a JOIN news.feeds f ON f.id = a.feed_id",
    )
    for row in owners:
        prefix = "one" if row["url"].endswith("/one") else "two"
        assert row["guid"].startswith(prefix), row


async def test_slow_feeds_keep_their_lease_across_replicas(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """With a lease far shorter than the work, two pipelines on one database still never
    process one feed twice: feeds are claimed only when a slot is free, and leases in progress
    are renewed."""
    feeds = 6

    def slow(req: Request) -> Response:
        time.sleep(0.4)
        return Response(200, page(req.path).encode(), {"Content-Type": "text/html"})

    for f in range(feeds):
        paths = [f"/f{f}/{n}" for n in range(3)]
        for p in paths:
            server.routes[p] = slow
        server.routes[f"/feed{f}"] = static(rss(server.base, paths), "application/rss+xml")
    s = settings(database_url, lease_seconds=1.0, concurrent_feeds=1, per_host_connections=1)
    one = await make_pipeline(s, workers, resources)
    two = await make_pipeline(s, workers, resources)
    for f in range(feeds):
        await one.store.add_feed(server.url(f"/feed{f}"))
    a, b = await asyncio.gather(one.run(), two.run())
    assert a.feeds + b.feeds == feeds
    assert Counter(r.path for r in server.requests if r.path.startswith("/feed")) == Counter(
        f"/feed{f}" for f in range(feeds)
    )


async def test_a_feed_whose_lease_another_process_took_is_stopped(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """The process stalled past its lease, and another replica claimed the feed meanwhile: the
    renewal finds the lease gone, and the feed is stopped before its lease would have run out,
    its page unstored (the other replica's poll stores it) and its lease left to its owner."""
    release = threading.Event()
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = held_page(release)
    pipeline = await make_pipeline(settings(database_url, lease_seconds=1.5), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    run = asyncio.create_task(pipeline.run())
    await requested(server, "/s/0")
    lease_taken(database_url)
    summary = await asyncio.wait_for(run, 5)
    release.set()
    assert summary.feeds == 0
    await asyncio.sleep(0.2)
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0
    state = rows(database_url, "SELECT lease_owner, polled_at FROM ingest.feeds")[0]
    assert (state["lease_owner"], state["polled_at"]) == ("another", None)
    await pipeline.aclose()


async def test_a_feed_is_stopped_before_its_lease_runs_out_while_renewals_fail(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Renewals fail (the database does not answer them): the feed is stopped before its lease
    runs out, when another replica could claim it, not left running past it."""
    from ingest.errors import StoreError

    release = threading.Event()
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = held_page(release)
    pipeline = await make_pipeline(settings(database_url, lease_seconds=1.5), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    renewals: list[float] = []

    async def unanswered(*args: Any, **kwargs: Any) -> set[int]:
        renewals.append(time.monotonic())
        raise StoreError("database unreachable: timeout")

    pipeline.store.renew_leases = unanswered  # type: ignore[method-assign]
    run = asyncio.create_task(pipeline.run())
    await requested(server, "/s/0")
    summary = await asyncio.wait_for(run, 5)
    stopped, stopped_at = time.monotonic(), time.time()
    release.set()
    assert summary.feeds == 0
    expires = rows(
        database_url, "SELECT extract(epoch FROM lease_expires_at) AS t FROM ingest.feeds"
    )
    assert stopped_at < float(expires[0]["t"]), "stopped only after its lease ran out"
    assert len(renewals) >= 2, "tried again before giving the feed up"
    assert renewals[-1] < stopped
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0
    await pipeline.aclose()


async def test_a_feed_stopped_for_its_lease_is_logged_without_its_user_info(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed whose URL carries a token as its user-info is stopped for its lease
    (`feed_lease_lost`): the line names the feed's URL without the token."""
    import io
    import logging

    import structlog

    from ingest import logs
    from ingest.errors import StoreError

    token = "tok-5e1f-feed"
    release = threading.Event()
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = held_page(release)
    pipeline = await make_pipeline(settings(database_url, lease_seconds=1.5), workers, resources)
    await pipeline.store.add_feed(server.url("/feed").replace("://", f"://{token}@", 1))

    async def unanswered(*args: Any, **kwargs: Any) -> set[int]:
        raise StoreError("database unreachable: timeout")

    pipeline.store.renew_leases = unanswered  # type: ignore[method-assign]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    logs.configure("json", "info", stream=out)
    try:
        run = asyncio.create_task(pipeline.run())
        await requested(server, "/s/0")
        await asyncio.wait_for(run, 5)
    finally:
        release.set()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.reset_defaults()
        await pipeline.aclose()
    lost = [json.loads(line) for line in out.getvalue().splitlines() if "feed_lease_lost" in line]
    assert [event["url"] for event in lost] == [server.url("/feed")]
    assert token not in out.getvalue()


async def test_a_feed_whose_outcome_is_being_written_when_its_lease_runs_short_is_reported(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Renewals fail, and the feed's outcome is being written when its lease is about to run
    out: that write (which holds only while the lease is the process's own) hands the lease
    back itself, so the feed is not stopped in it, and a poll it records is in the run's
    summary."""
    from ingest.errors import StoreError

    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = static(page("/s/0"))
    pipeline = await make_pipeline(settings(database_url, lease_seconds=1.5), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))

    renewals = 0

    async def unanswered(*args: Any, **kwargs: Any) -> set[int]:
        nonlocal renewals
        renewals += 1
        raise StoreError("database unreachable: timeout")

    real = pipeline.store.feeds_succeeded

    async def slow(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(2)
        await real(*args, **kwargs)

    pipeline.store.renew_leases = unanswered  # type: ignore[method-assign]
    pipeline.store.feeds_succeeded = slow  # type: ignore[method-assign]
    summary = await asyncio.wait_for(pipeline.run(), 10)
    state = rows(database_url, "SELECT polled_at, lease_owner FROM ingest.feeds")[0]
    assert state["lease_owner"] is None
    assert state["polled_at"] is not None
    assert (summary.feeds, summary.ok, summary.new_articles) == (1, 1, 1)
    assert renewals < 20, "renewals tried again and again while the outcome was written"
    await pipeline.aclose()


async def test_a_feed_whose_lease_was_taken_is_stopped_once_a_renewal_says_so(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Another process holds the feed's lease though this one did not stall (its lease was
    released under it, the database's clock jumped): the first renewal that finds it gone
    stops the feed, not only the time the lease would have run out at."""
    release = threading.Event()
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = held_page(release, 8)
    pipeline = await make_pipeline(settings(database_url, lease_seconds=6), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    started = time.monotonic()
    run = asyncio.create_task(pipeline.run())
    await requested(server, "/s/0")
    lease_taken(database_url)
    summary = await asyncio.wait_for(run, 10)
    stopped = time.monotonic() - started
    release.set()
    assert summary.feeds == 0
    assert stopped < 4, f"stopped after {stopped:.1f} s: renewed after 2 s, lease ran out at 6"
    assert rows(database_url, "SELECT lease_owner FROM ingest.feeds")[0]["lease_owner"] == (
        "another"
    )
    await pipeline.aclose()


async def test_a_claim_that_fails_mid_run_lets_the_feeds_in_progress_finish(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """The database does not answer a claim taken while a feed is in progress (a service's run
    claims as slots free up, and again at each tick): that feed finishes and its article is
    stored; claiming waits for the next pass, and the feed the claim would have taken is due
    as it was."""
    release = threading.Event()
    for name in ("a", "b"):
        server.routes[f"/{name}.xml"] = static(
            rss(server.base, [f"/{name}/0"], guid_prefix=name), "application/rss+xml"
        )
        server.routes[f"/{name}/0"] = held_page(release)
    pipeline = await make_pipeline(
        settings(database_url, concurrent_feeds=2, feeds_per_tick=1), workers, resources
    )
    for name in ("a", "b"):
        await pipeline.store.add_feed(server.url(f"/{name}.xml"))
    claim, claims = _second_claim_unanswered(pipeline)
    run = asyncio.create_task(pipeline.run())
    asked = asyncio.ensure_future(_either_page(server))
    await asyncio.wait({asked, run}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    release.set()
    summary = await asyncio.wait_for(run, 10)
    assert len(claims) >= 2
    assert (summary.feeds, summary.new_articles) == (1, 1)
    polled = rows(
        database_url,
        "SELECT count(*) FILTER (WHERE last_status = 'ok') AS ok,"
        " count(*) FILTER (WHERE lease_owner IS NULL) AS free FROM ingest.feeds",
    )[0]
    assert (polled["ok"], polled["free"]) == (1, 2)
    pipeline.store.claim_feeds = claim  # type: ignore[method-assign]
    again = await pipeline.run()
    assert (again.feeds, again.new_articles) == (1, 1)
    await pipeline.aclose()


async def test_a_feed_removed_while_it_is_polled_is_no_error(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator removes a feed (`ingest feeds remove`) while its page is being fetched:
    its articles and outcome can no longer be written (their rows name a feed that is gone),
    which is the operator's doing, not a failure: one info line `feed_removed_while_polled`,
    no error-level line, and the run's other feed is polled and stored as ever."""
    logged: list[tuple[str, str]] = []

    class Recorder:
        """The pipeline's logger, recording (level, event): whatever structlog's configuration
        other tests left cached."""

        def __getattr__(self, level: str) -> Callable[..., None]:
            return lambda event, *args, **kw: logged.append((level, event))

    monkeypatch.setattr("ingest.pipeline.log", Recorder())

    def removing(req: Request) -> Response:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM ingest.feeds WHERE url = %s", (server.url("/gone.xml"),))
        return Response(200, page(req.path).encode(), {"Content-Type": "text/html"})

    server.routes["/gone.xml"] = static(rss(server.base, ["/gone/0"]), "application/rss+xml")
    server.routes["/gone/0"] = removing
    server.routes["/kept.xml"] = static(rss(server.base, ["/kept/0"]), "application/rss+xml")
    server.routes["/kept/0"] = static(page("/kept/0"))
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/gone.xml"))
    await pipeline.store.add_feed(server.url("/kept.xml"))
    summary = await pipeline.run()
    assert [e for level, e in logged if level in ("error", "exception", "critical")] == []
    assert ("info", "feed_removed_while_polled") in logged
    assert summary.new_articles == 1
    stored = [r["url"] for r in rows(database_url, "SELECT url FROM news.articles")]
    assert stored == [server.url("/kept/0")]


async def test_a_tick_whose_run_fails_logs_what_its_pass_did_so_far(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """The database does not answer a claim taken once the feeds in progress are done: the
    run fails, and its tick ends with one line, `tick_failed`, with the counts of the pass so
    far (the feed polled and its article), as `tick_done` would have had them."""
    from structlog.testing import capture_logs

    from jobs.tasks import poll_due_feeds

    server.routes["/a.xml"] = static(rss(server.base, ["/a/0"]), "application/rss+xml")
    server.routes["/a/0"] = static(page("/a/0"))
    pipeline = await make_pipeline(
        settings(database_url, concurrent_feeds=1, feeds_per_tick=1), workers, resources
    )
    await pipeline.store.add_feed(server.url("/a.xml"))
    _second_claim_unanswered(pipeline)
    with capture_logs() as logged:
        problem = await asyncio.wait_for(poll_due_feeds(pipeline), 30)
    await pipeline.aclose()
    assert problem == "database unreachable: timeout"
    ticks = [e for e in logged if e["event"].startswith("tick_")]
    assert [
        (e["event"], e.get("feeds"), e.get("ok"), e.get("failed"), e.get("new")) for e in ticks
    ] == [("tick_failed", 1, 1, 0, 1)]


def _second_claim_unanswered(pipeline: Pipeline) -> tuple[Callable[..., Any], list[None]]:
    """Has the pipeline's second claim fail as a database that does not answer it: the claim
    replaced (to put back), and a list one longer at each claim asked for."""
    from ingest.errors import StoreError

    claim = pipeline.store.claim_feeds
    asked: list[None] = []

    async def second_unanswered(*args: Any, **kwargs: Any) -> Any:
        asked.append(None)
        if len(asked) == 2:
            raise StoreError("database unreachable: timeout")
        return await claim(*args, **kwargs)

    pipeline.store.claim_feeds = second_unanswered  # type: ignore[method-assign]
    return claim, asked


async def _either_page(server: LocalServer) -> None:
    """Until one of the two held pages has been asked for."""
    while not any(r.path in ("/a/0", "/b/0") for r in server.requests):  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def test_stop_request_starts_no_more_feeds(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """After request_stop(), the feed in progress finishes and no other feed is started; the
    unstarted ones stay due, with no lease held."""

    def slow(req: Request) -> Response:
        time.sleep(0.5)
        return Response(200, page(req.path).encode(), {"Content-Type": "text/html"})

    for f in range(4):
        server.routes[f"/p{f}"] = slow
        server.routes[f"/feed{f}"] = static(rss(server.base, [f"/p{f}"]), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url, concurrent_feeds=1), workers, resources)
    for f in range(4):
        await pipeline.store.add_feed(server.url(f"/feed{f}"))
    run = asyncio.create_task(pipeline.run())
    await requested(server, "/p")
    pipeline.request_stop()
    summary = await run
    assert summary.feeds == 1
    state = rows(database_url, "SELECT last_status, lease_owner FROM ingest.feeds")
    assert sorted(str(r["last_status"]) for r in state) == ["None", "None", "None", "ok"]
    assert all(r["lease_owner"] is None for r in state)


def atom(base: str, updated: datetime, summary: str = "Short.", title: str = "Story") -> str:
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<updated>{updated.isoformat()}</updated>"
        f"<entry><title>{title}</title><id>urn:story</id><link href='{base}/story'/>"
        f"<published>{NOW.isoformat()}</published><updated>{updated.isoformat()}</updated>"
        f"<summary>{summary}</summary></entry></feed>"
    )


async def test_updated_entry_updates_the_article_in_place(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """When a stored entry's <updated> moves forward and its page text changed, the article row
    is updated in place (updated_at set, an 'update' change announced, counted in the pass's
    summary and its `tick_done` line) and the old text kept in news.article_history; an entry
    whose update time did not move is not fetched again."""
    server.routes["/story"] = static(page("First version"))
    server.routes["/feed"] = static(atom(server.base, NOW), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    await pipeline.run(all_feeds=True)
    assert len(server.hits("/story")) == 1

    server.routes["/story"] = static(page("Second version"))
    server.routes["/feed"] = static(
        atom(server.base, NOW + timedelta(minutes=5)), "application/atom+xml"
    )
    summary = await pipeline.run(all_feeds=True)
    assert (summary.new_articles, summary.updated) == (0, 1)
    assert pass_counts(summary)["updated"] == 1
    (article,) = rows(database_url, "SELECT id, text, updated_at FROM news.articles")
    assert "Second version." in article["text"]
    assert "First version" not in article["text"]
    assert article["updated_at"] is not None
    history = rows(database_url, "SELECT article_id, text FROM news.article_history")
    assert [h["article_id"] for h in history] == [article["id"]]
    assert "First version." in history[0]["text"]
    kinds = rows(database_url, "SELECT kind FROM news.article_changes ORDER BY seq")
    assert [k["kind"] for k in kinds] == ["insert", "update"]
    await pipeline.run(all_feeds=True)
    assert len(server.hits("/story")) == 2


async def test_an_update_of_a_feed_handed_back_counts_in_its_pass_as_in_the_metric(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed whose edited entry updated its article in place, and whose outcome then cannot
    be recorded (the database went away): the feed is handed back without an outcome, and the
    update, which committed, counts in the pass's summary (`updated`, which `tick_done` and
    `run --once` print) as in `ingest_articles_updated_total` (was: the metric counted it, the
    summary did not, where a new article of such a feed counted in both)."""
    from prometheus_client import REGISTRY

    from ingest.errors import StoreError

    server.routes["/story"] = static(page("First version"))
    server.routes["/feed"] = static(atom(server.base, NOW), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    server.routes["/story"] = static(page("Second version"))
    server.routes["/feed"] = static(
        atom(server.base, NOW + timedelta(minutes=5)), "application/atom+xml"
    )

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        raise StoreError("database unreachable: connection refused")

    pipeline.store.feeds_succeeded = unreachable  # type: ignore[method-assign]
    before = REGISTRY.get_sample_value("ingest_articles_updated_total") or 0.0
    summary = await pipeline.run(all_feeds=True)
    counted = (REGISTRY.get_sample_value("ingest_articles_updated_total") or 0.0) - before
    assert (summary.feeds, summary.new_articles, summary.updated, counted) == (0, 0, 1, 1)
    assert pass_counts(summary)["updated"] == 1
    (article,) = rows(database_url, "SELECT text FROM news.articles")
    assert "Second version." in article["text"]
    await pipeline.aclose()


async def test_an_edit_of_the_headline_alone_updates_the_article_s_title(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An entry whose <updated> moves forward with a new headline and the same text: the
    article's title is updated in place like any edit (an 'update' change row, the earlier
    version in news.article_history with its title), counted as updated."""
    server.routes["/story"] = static(page("Ferry terminal"))
    server.routes["/feed"] = static(atom(server.base, NOW), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    (article,) = rows(database_url, "SELECT title, text FROM news.articles")
    assert article["title"] == "Story"

    later = NOW + timedelta(minutes=5)
    headline = "Ferry terminal opens two years late"
    server.routes["/feed"] = static(
        atom(server.base, later, title=headline), "application/atom+xml"
    )
    summary = await pipeline.run(all_feeds=True)
    assert summary.updated == 1
    assert len(server.hits("/story")) == 2
    (edited,) = rows(database_url, "SELECT title, text, modified_at FROM news.articles")
    assert (edited["title"], edited["text"]) == (headline, article["text"])
    assert edited["modified_at"] == later
    history = rows(database_url, "SELECT title, text FROM news.article_history")
    assert [(h["title"], h["text"]) for h in history] == [("Story", article["text"])]
    kinds = rows(database_url, "SELECT kind FROM news.article_changes ORDER BY seq")
    assert [k["kind"] for k in kinds] == ["insert", "update"]
    summary = await pipeline.run(all_feeds=True)
    assert summary.updated == 0
    assert len(server.hits("/story")) == 2


async def test_an_update_whose_page_did_not_change_is_counted_as_skipped(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An entry whose <updated> moved forward but whose page says the same: its page is
    fetched again, nothing is written, and the entry is counted as skipped (every entry is
    counted once: new, updated, skipped or deferred)."""
    server.routes["/story"] = static(page("Ferry terminal"))
    server.routes["/feed"] = static(atom(server.base, NOW), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    server.routes["/feed"] = static(
        atom(server.base, NOW + timedelta(minutes=5)), "application/atom+xml"
    )
    summary = await pipeline.run(all_feeds=True)
    assert len(server.hits("/story")) == 2
    assert (summary.new_articles, summary.updated, summary.skipped) == (0, 0, 1)


@pytest.mark.parametrize("etag", ['"v2"', None])
async def test_an_update_whose_page_failed_for_a_while_is_tried_again_though_the_feed_is_the_same(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    etag: str | None,
) -> None:
    """An updated entry whose page answers 503: the feed's validators and body hash are not
    kept, as for a new entry waiting for its page, so the next poll reads the feed again (not
    answered 304, not skipped as the same bytes) and applies the update once the page
    answers. A page that keeps failing is given up after INGEST_PAGE_ATTEMPTS tries, the
    stored version left as it is, and the feed's validators are used again."""
    server.routes["/story"] = static(page("First version"))
    server.routes["/feed"] = static(atom(server.base, NOW), "application/atom+xml", etag='"v1"')
    pipeline = await make_pipeline(settings(database_url, page_attempts=3), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()

    answers = iter([503])

    def flaky(req: Request) -> Response:
        if next(answers, 200) == 503:
            return Response(503, b"busy", {"Content-Type": "text/plain"})
        return Response(200, page("Second version").encode(), {"Content-Type": "text/html"})

    server.routes["/story"] = flaky
    updated = atom(server.base, NOW + timedelta(minutes=5))
    server.routes["/feed"] = static(updated, "application/atom+xml", etag=etag)
    first = await pipeline.run(all_feeds=True)
    assert first.updated == 0
    second = await pipeline.run(all_feeds=True)
    assert second.updated == 1
    (article,) = rows(database_url, "SELECT text FROM news.articles")
    assert "Second version." in article["text"]
    assert len(server.hits("/story")) == 3

    # A page that keeps failing: tried at most INGEST_PAGE_ATTEMPTS times for one update.
    server.routes["/story"] = Response(503, b"busy", {"Content-Type": "text/plain"})
    later = atom(server.base, NOW + timedelta(minutes=10))
    third = etag and '"v3"'
    server.routes["/feed"] = static(later, "application/atom+xml", etag=third)
    for _ in range(5):
        await pipeline.run(all_feeds=True)
    assert len(server.hits("/story")) == 3 + 3
    (article,) = rows(database_url, "SELECT text FROM news.articles")
    assert "Second version." in article["text"]
    if third is not None:
        assert server.hits("/feed")[-1].headers.get("if-none-match") == third


def reused_guid_rss(base: str, stories: list[tuple[str, str, str, datetime]], poll: int = 0) -> str:
    """RSS items of (guid, path, title, publication time); `poll` changes the document."""
    items = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link>"
        f"<guid isPermaLink='false'>{guid}</guid><pubDate>{format_datetime(when)}</pubDate>"
        "<description>Short.</description></item>"
        for guid, path, title, when in stories
    )
    return f"<rss version='2.0'><channel><title>T {poll}</title>{items}</channel></rss>"


async def test_a_guid_reused_for_another_story_brings_that_story_in(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A publisher whose CMS gives a new story the guid of an earlier one (a recycled post id),
    with its own link and headline: the new story is stored as a new article, the earlier one
    left as it is; at later polls both are known (nothing fetched again, nothing new). An
    entry that keeps its guid and changes only its link (new permalinks) or only its headline
    (an edit) is the same story, never a second article."""
    server.routes["/ferry"] = static(page("Ferry terminal"))
    server.routes["/budget"] = static(page("City budget"))
    server.routes["/ferry-moved"] = static(page("Ferry terminal"))
    first = [("post-7", "/ferry", "Ferry terminal opens", NOW - timedelta(hours=2))]
    server.routes["/feed"] = static(reused_guid_rss(server.base, first), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()

    second = [("post-7", "/budget", "Council passes the budget", NOW)]
    server.routes["/feed"] = static(reused_guid_rss(server.base, second), "application/rss+xml")
    summary = await pipeline.run(all_feeds=True)
    assert (summary.new_articles, summary.skipped) == (1, 0)
    stored = rows(database_url, "SELECT url, title, guid FROM news.articles ORDER BY id")
    assert [(r["url"].removeprefix(server.base), r["title"]) for r in stored] == [
        ("/ferry", "Ferry terminal opens"),
        ("/budget", "Council passes the budget"),
    ]
    assert {r["guid"] for r in stored} == {"post-7"}
    for poll in range(1, 3):
        server.routes["/feed"] = static(
            reused_guid_rss(server.base, second, poll), "application/rss+xml"
        )
        summary = await pipeline.run(all_feeds=True)
        assert (summary.new_articles, summary.updated, summary.skipped) == (0, 0, 1)
    assert [len(server.hits(p)) for p in ("/ferry", "/budget")] == [1, 1]

    both = [*first, ("post-8", "/budget", "Council passes the budget", NOW)]
    moved = [("post-7", "/ferry-moved", "Ferry terminal opens", NOW - timedelta(hours=2))]
    for feed in (both, moved):
        server.routes["/feed"] = static(reused_guid_rss(server.base, feed), "application/rss+xml")
        summary = await pipeline.run(all_feeds=True)
        assert (summary.new_articles, summary.skipped) == (0, len(feed))
    assert len(server.hits("/ferry-moved")) == 0
    assert len(rows(database_url, "SELECT id FROM news.articles")) == 2


@pytest.mark.parametrize("stored_first", [False, True])
async def test_two_stories_sharing_a_guid_in_one_document_are_both_stored(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    stored_first: bool,
) -> None:
    """One document listing an earlier story and a new one under the same guid (a recycled
    post id), each with its own link and headline: both are stored, the later one keyed by its
    guid and link as `dedup.reused` keys it, whether the earlier one was stored at an earlier
    poll or not; at later polls, in either order, nothing is fetched again and nothing is new.
    An item listed twice (the same guid, link and headline) is one entry."""
    server.routes["/ferry"] = static(page("Ferry terminal"))
    server.routes["/budget"] = static(page("City budget"))
    ferry = ("post-7", "/ferry", "Ferry terminal opens", NOW - timedelta(hours=2))
    budget = ("post-7", "/budget", "Council passes the budget", NOW)
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    if stored_first:
        server.routes["/feed"] = static(
            reused_guid_rss(server.base, [ferry]), "application/rss+xml"
        )
        await pipeline.run()
    both = [ferry, ferry, budget]
    server.routes["/feed"] = static(reused_guid_rss(server.base, both), "application/rss+xml")
    summary = await pipeline.run(all_feeds=True)
    assert summary.new_articles == (1 if stored_first else 2)
    stored = rows(database_url, "SELECT url, title, guid FROM news.articles ORDER BY url")
    assert [(r["url"].removeprefix(server.base), r["title"], r["guid"]) for r in stored] == [
        ("/budget", "Council passes the budget", "post-7"),
        ("/ferry", "Ferry terminal opens", "post-7"),
    ]
    for poll, order in enumerate(([ferry, budget], [budget, ferry], [ferry, budget]), 1):
        server.routes["/feed"] = static(
            reused_guid_rss(server.base, order, poll), "application/rss+xml"
        )
        summary = await pipeline.run(all_feeds=True)
        assert (summary.new_articles, summary.updated, summary.skipped) == (0, 0, 2)
    assert [len(server.hits(p)) for p in ("/ferry", "/budget")] == [1, 1]
    assert len(rows(database_url, "SELECT id FROM news.articles")) == 2


async def test_an_edit_another_feed_reached_first_does_not_fetch_the_page_again(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A story listed by two feeds: the first to show an edit has its page fetched and the
    article updated; the other, showing the same edit at its next poll, finds that version
    stored (its modified time no earlier than the entry's) before any request, and records
    the entry's time, so that it does not fetch the page again at the poll after either."""
    server.routes["/story"] = static(page("First version"))
    for path in ("/feed", "/other"):
        server.routes[path] = static(atom(server.base, NOW), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    for path in ("/feed", "/other"):
        await pipeline.store.add_feed(server.url(path))
    await pipeline.run()
    assert len(server.hits("/story")) == 1

    server.routes["/story"] = static(page("Second version"))
    edited = static(atom(server.base, NOW + timedelta(minutes=5)), "application/atom+xml")
    server.routes["/feed"] = edited
    summary = await pipeline.run(all_feeds=True)
    assert summary.updated == 1
    assert len(server.hits("/story")) == 2

    server.routes["/other"] = edited
    for _ in range(2):
        summary = await pipeline.run(all_feeds=True)
        assert summary.updated == 0
    assert len(server.hits("/story")) == 2
    history = rows(database_url, "SELECT count(*) AS n FROM news.article_history")
    assert history[0]["n"] == 1


def stamped_atom(base: str, stamp: datetime, edited: dict[str, datetime] | None = None) -> str:
    """Four entries whose <updated> is `stamp` (the time the feed was generated), but those of
    `edited`, which carry their own time."""
    times = edited or {}
    entries = "".join(
        f"<entry><title>Story {n}</title><id>urn:s{n}</id><link href='{base}/s{n}'/>"
        f"<published>{(NOW - timedelta(hours=n)).isoformat()}</published>"
        f"<updated>{times.get(f'/s{n}', stamp).isoformat()}</updated>"
        "<summary>Short.</summary></entry>"
        for n in range(4)
    )
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<updated>{stamp.isoformat()}</updated>{entries}</feed>"
    )


async def test_entries_stamped_with_the_feed_s_generation_time_are_not_fetched_again(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed whose generator stamps every entry's <updated> with the time of each poll's
    document does not have every page fetched again at every poll (`dedup.stamp`); an entry
    that then carries a time of its own, later than the one stored with it, is an edit: its
    page is fetched and its article updated."""
    for n in range(4):
        server.routes[f"/s{n}"] = static(page(f"Story {n} first version"))
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    for poll in range(3):
        stamp = NOW + timedelta(minutes=poll)
        server.routes["/feed"] = static(stamped_atom(server.base, stamp), "application/atom+xml")
        await pipeline.run(all_feeds=True)
    assert [len(server.hits(f"/s{n}")) for n in range(4)] == [1, 1, 1, 1]

    server.routes["/s1"] = static(page("Story 1 second version"))
    edited = {"/s1": NOW + timedelta(minutes=2, seconds=30)}
    server.routes["/feed"] = static(
        stamped_atom(server.base, NOW + timedelta(minutes=3), edited), "application/atom+xml"
    )
    summary = await pipeline.run(all_feeds=True)
    assert summary.updated == 1
    assert [len(server.hits(f"/s{n}")) for n in range(4)] == [1, 2, 1, 1]
    texts = rows(database_url, "SELECT text FROM news.articles WHERE url LIKE '%/s1'")
    assert "second version" in texts[0]["text"]


def articles_updated_counted() -> float:
    """`ingest_articles_updated_total` as the metrics registry has it now."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("ingest_articles_updated_total") or 0.0


async def test_an_update_that_committed_counts_though_its_feed_fails_later(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An article updated in place commits before the rest of its feed's poll: a feed that
    fails after it (here: a bug once its entries are handled) still counts the update, in
    its outcome (`updated`) and in ingest_articles_updated_total, as it counts the new
    articles that committed."""
    server.routes["/story"] = static(page("First version"))
    server.routes["/feed"] = static(atom(server.base, NOW), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()

    server.routes["/story"] = static(page("Second version"))
    server.routes["/feed"] = static(
        atom(server.base, NOW + timedelta(minutes=5)), "application/atom+xml"
    )

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken after the update")

    pipeline.store.defer_entries = broken  # type: ignore[method-assign]
    before = articles_updated_counted()
    summary = await pipeline.run(all_feeds=True)
    await pipeline.aclose()
    (article,) = rows(database_url, "SELECT text FROM news.articles")
    assert "Second version." in article["text"]
    assert [(o.status, o.updated) for o in summary.outcomes] == [("error", 1)]
    assert articles_updated_counted() - before == 1


async def test_an_entry_updated_in_year_9999_is_stored_without_that_date_nor_fetched_again(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An entry whose <updated> is more than a day ahead (year 9999) has no modified time:
    the article's modified_at is NULL, as a publication date that far ahead is none, and the
    next polls do not take that date for an update and fetch its page again."""
    far = datetime(9999, 12, 31, tzinfo=UTC)
    server.routes["/story"] = static(page("First version"))
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    for n in range(3):  # a feed that changes at every poll (its summary), the date staying
        server.routes["/feed"] = static(
            atom(server.base, far, f"Poll {n}."), "application/atom+xml"
        )
        await pipeline.run(all_feeds=True)
    (article,) = rows(database_url, "SELECT modified_at, published_at FROM news.articles")
    assert article["modified_at"] is None
    assert article["published_at"] == NOW
    assert len(server.hits("/story")) == 1


def harbour_rss(base: str, numbers: range) -> str:
    """Entries whose summaries are the story's gist, in other words than its page's."""
    items = "".join(
        f"<item><title>Ferry terminal {n} delayed</title><link>{base}/s/{n}</link>"
        f"<guid>{base}/s/{n}</guid><pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
        f"<description>Harbour officials push back opening of terminal {n} over foundation "
        "costs dispute.</description></item>"
        for n in numbers
    )
    return f"<rss version='2.0'><channel><title>T</title>{items}</channel></rss>"


async def test_an_entry_whose_page_is_a_consent_wall_is_stored_from_its_summary(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Two entries of a feed of summaries land on a consent wall: each is stored from its
    summary, the reason as its extraction error, not from the wall (whose copies would be
    near-duplicates of each other); the others from their pages."""
    from ingest.article import OTHER_PAGE

    for n in range(4):
        server.routes[f"/s/{n}"] = static(page(f"Ferry terminal {n} delayed"))
    server.routes["/s/1"] = server.routes["/s/2"] = static(CONSENT_WALL)
    server.routes["/feed"] = static(harbour_rss(server.base, range(4)), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    summary = await pipeline.run()
    assert summary.new_articles == 4
    stored = {
        r["url"].rsplit("/", 1)[1]: r
        for r in rows(
            database_url,
            "SELECT url, title, text, text_source, extraction_error, duplicate_of"
            " FROM news.articles",
        )
    }
    for n in ("1", "2"):
        assert stored[n]["text"] == (
            f"Harbour officials push back opening of terminal {n} over foundation costs dispute."
        )
        assert (stored[n]["text_source"], stored[n]["extraction_error"]) == ("feed", OTHER_PAGE)
        assert stored[n]["title"] == f"Ferry terminal {n} delayed"
    for n in ("0", "3"):
        assert stored[n]["text_source"] == "page"
        assert PARAGRAPH in stored[n]["text"]
    assert stored["1"]["duplicate_of"] is stored["2"]["duplicate_of"] is None


CHINESE_STORIES = {
    "industry": (
        "5月份规模以上工业增加值同比增长5.6%",
        "国家统计局今天发布数据显示，今年5月份全国规模以上工业增加值同比增长百分之五点六。",
        "分三大门类看，5月份采矿业增加值同比增长百分之三点一，制造业增长百分之六点零，电力、热力、"
        "燃气及水生产和供应业增长百分之四点三。国家统计局新闻发言人表示，当前外部环境依然复杂严峻，"
        "国内需求仍显不足，经济回升向好的基础还需巩固。",
    ),
    "retail": (
        "5月份社会消费品零售总额同比增长3.7%",
        "国家统计局今天发布数据显示，今年5月份社会消费品零售总额三万九千亿元，同比增长百分之三点七。",
        "按消费类型分，餐饮收入四千六百亿元，同比增长百分之五点二；商品零售三万四千亿元，增长百分之"
        "三点五。国家统计局新闻发言人表示，消费市场总体保持恢复态势，服务消费增长较快，升级类商品"
        "销售向好。",
    ),
}


async def test_a_chinese_entry_whose_page_is_a_consent_wall_is_stored_from_its_summary(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed in Chinese (no spaces between words: two characters in a row are a key word,
    `ingest.article.key_words`): the entry whose page is a consent wall is stored from its
    summary, the reason as its extraction error; the other from its page."""
    from ingest.article import OTHER_PAGE

    items = ""
    for n, (slug, (title, summary, more)) in enumerate(CHINESE_STORIES.items()):
        server.routes[f"/zh/{slug}"] = static(
            f"<html><head><title>{title}_新闻</title></head><body><article><h1>{title}</h1>"
            f"<p>{summary}</p><p>{more}</p><p>{more}</p></article></body></html>"
        )
        items += (
            f"<item><title>{title}</title><link>{server.base}/zh/{slug}</link>"
            f"<guid>{server.base}/zh/{slug}</guid><description>{summary}</description>"
            f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate></item>"
        )
    server.routes["/zh/retail"] = static(CONSENT_WALL)
    feed = f"<rss version='2.0'><channel><title>T</title><language>zh-CN</language>{items}"
    server.routes["/feed"] = static(feed + "</channel></rss>", "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    assert (await pipeline.run()).new_articles == 2
    stored = {
        r["url"].rsplit("/", 1)[1]: r
        for r in rows(
            database_url, "SELECT url, text, text_source, extraction_error FROM news.articles"
        )
    }
    retail = CHINESE_STORIES["retail"]
    assert (stored["retail"]["text"], stored["retail"]["extraction_error"]) == (
        retail[1],
        OTHER_PAGE,
    )
    assert stored["retail"]["text_source"] == "feed"
    assert stored["industry"]["text_source"] == "page"
    assert CHINESE_STORIES["industry"][2] in stored["industry"]["text"]


HOME = (
    "<html><head><title>The Courier</title></head><body><main><h1>The Courier</h1>"
    + "".join(
        f"<p>Welcome to our {k} sections: sport, culture, weather and the valley's politics, "
        "with newsletters, podcasts and puzzles every morning for our readers.</p>"
        for k in range(4)
    )
    + "</main></body></html>"
)


async def test_an_entry_redirected_to_the_home_page_is_stored_from_its_summary(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An entry whose link redirects to the site's home page, titled with the site's name
    ("The Courier", sharing only "the" with the entry's title): stored from its summary under
    its own link, not as the home page."""
    from ingest.article import OTHER_PAGE

    feed = harbour_rss(server.base, range(2)).replace("<title>Ferry", "<title>The ferry")
    server.routes["/s/0"] = static(page("The ferry terminal 0 delayed"))
    server.routes["/s/1"] = Response(302, b"", {"Location": server.url("/")})
    server.routes["/"] = static(HOME)
    server.routes["/feed"] = static(feed, "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    stored = {
        r["url"]: r
        for r in rows(
            database_url, "SELECT url, text, text_source, extraction_error FROM news.articles"
        )
    }
    assert set(stored) == {server.url("/s/0"), server.url("/s/1")}
    home = stored[server.url("/s/1")]
    assert home["text"] == (
        "Harbour officials push back opening of terminal 1 over foundation costs dispute."
    )
    assert (home["text_source"], home["extraction_error"]) == ("feed", OTHER_PAGE)


async def test_an_update_whose_page_became_a_consent_wall_leaves_the_article_alone(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An updated entry whose page is now a consent wall: the stored article stays as it was
    (not replaced by the wall, nor by the entry's summary), as after a page that failed."""
    gist = "The harbour authority delays the ferry terminal over the cost of foundations."
    server.routes["/story"] = static(page("Story"))
    server.routes["/feed"] = static(atom(server.base, NOW, gist), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    server.routes["/story"] = static(CONSENT_WALL)
    server.routes["/feed"] = static(
        atom(server.base, NOW + timedelta(minutes=5), gist), "application/atom+xml"
    )
    await pipeline.run(all_feeds=True)
    assert len(server.hits("/story")) == 2
    (article,) = rows(database_url, "SELECT text, text_source, updated_at FROM news.articles")
    assert PARAGRAPH in article["text"]
    assert (article["text_source"], article["updated_at"]) == ("page", None)
    assert rows(database_url, "SELECT 1 FROM news.article_history") == []


class CountingWorkers:
    """A worker pool, counting the tasks handed to it and not yet finished: the page
    bodies the pipeline holds while they wait for a worker."""

    def __init__(self, inner: WorkerPool) -> None:
        self.inner = inner
        self.size = inner.size
        self.waiting = 0
        self.most = 0

    async def run(self, fn: Any, *args: Any, timeout: float) -> Any:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        try:
            return await self.inner.run(fn, *args, timeout=timeout)
        finally:
            self.waiting -= 1


async def test_pages_are_not_fetched_far_ahead_of_extraction(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A backlog of new entries is fetched only as fast as the workers take the pages: at most
    the connection limit plus two per worker wait in memory, and every article is stored."""
    paths = [f"/story-{i}" for i in range(40)]
    for p in paths:
        server.routes[p] = static(page(f"Story {p}"))
    server.routes["/feed"] = static(rss(server.base, paths), "application/rss+xml")
    s = settings(database_url, max_connections=2, per_host_connections=2)
    counting = CountingWorkers(workers)
    pipeline = await make_pipeline(s, counting, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, 40)
    # Feed parsing goes through the pool too; pages are the rest.
    assert 2 <= counting.most <= 2 + 2 * workers.size + 1


async def test_claims_fill_every_slot_before_any_feed_finishes(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Feeds are claimed INGEST_FEEDS_PER_TICK at a time until INGEST_CONCURRENT_FEEDS are in
    flight, without waiting for one to finish (feeds that wait on their host, here a server
    that holds every answer, must not keep the slots of other hosts' feeds empty); then once a
    batch of slots is free again."""
    release = threading.Event()

    def held(req: Request) -> Response:
        release.wait(5)
        return Response(200, rss(server.base, []).encode(), {"Content-Type": "application/rss+xml"})

    for f in range(14):
        server.routes[f"/feed{f}"] = held
    s = settings(database_url, concurrent_feeds=12, feeds_per_tick=4, per_host_connections=20)
    pipeline = await make_pipeline(s, workers, resources)
    for f in range(14):
        await pipeline.store.add_feed(server.url(f"/feed{f}"))
    claims: list[int] = []
    claim = pipeline.store.claim_feeds

    async def counted(**kw: Any) -> list[Any]:
        got = await claim(**kw)
        claims.append(len(got))
        return got

    pipeline.store.claim_feeds = counted  # type: ignore[method-assign]
    run = asyncio.create_task(pipeline.run())
    while len([r for r in server.requests if r.path.startswith("/feed")]) < 12:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    assert claims == [4, 4, 4]
    done = rows(database_url, "SELECT count(*) AS n FROM ingest.feeds WHERE polled_at IS NOT NULL")
    assert done[0]["n"] == 0, "every slot was claimed before the first feed was done"
    release.set()
    summary = await run
    assert summary.feeds == 14
    assert sum(claims) == 14


async def test_one_host_s_feeds_leave_slots_to_other_hosts(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """Twelve feeds of one host, due first, each waiting out the host's delay, hold no more
    than their share of the feed slots (`host_share`: 2 here): the feeds of another host, due
    after them, are polled at once, not once the first host's have had their turns; and every
    feed is polled once in the pass, those claimed beyond their host's share included. The
    first host's third request is answered only once the other host's two have come (or after
    10 s): its fourth, which waits for that answer, comes after them wherever they are polled
    before the first host's feeds have had their turns, however slowly the machine runs."""
    second_server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    arrivals: dict[str, int] = {}  # feed -> the rank of its request among the feeds' requests
    ranks = itertools.count()
    lock = threading.Lock()
    other_host_polled = threading.Event()

    def feed_route(name: str) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            with lock:
                arrivals[name] = next(ranks)
                if {"b0", "b1"} <= arrivals.keys():
                    other_host_polled.set()
                third = name[0] == "a" and sum(f[0] == "a" for f in arrivals) == 3
            if third:
                other_host_polled.wait(10)
            return Response(
                200, rss(server.base, []).encode(), {"Content-Type": "application/rss+xml"}
            )

        return handle

    for n in range(12):
        server.routes[f"/a{n}"] = feed_route(f"a{n}")
    for n in range(2):
        second_server.routes[f"/b{n}"] = feed_route(f"b{n}")
    s = Settings(
        database_url=database_url,
        allow_private_networks=True,
        host_delay=0.25,
        concurrent_feeds=8,
        feeds_per_tick=8,
        per_host_connections=1,
    )
    assert host_share(s) == 2
    pipeline = await make_pipeline(s, workers, resources)
    for n in range(12):
        await pipeline.store.add_feed(server.url(f"/a{n}"))
    for n in range(2):
        await pipeline.store.add_feed(second_server.url(f"/b{n}"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET next_fetch_at = now() - CASE WHEN url LIKE %s"
            " THEN interval '1 hour' ELSE interval '1 minute' END",
            (server.base + "%",),
        )
    summary = await pipeline.run()
    assert (summary.feeds, summary.ok) == (14, 14)
    first_host = sorted(arrivals[f"a{n}"] for n in range(12))
    assert max(arrivals["b0"], arrivals["b1"]) < first_host[3], "b waited for a's turns"
    again = await pipeline.run(all_feeds=True)
    assert (again.feeds, again.not_modified) == (14, 14)  # the same bodies


async def test_a_host_at_its_share_is_not_claimed_beyond_its_room(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Twenty due feeds of one host and a share of two: each time one of them finishes, its
    host has room for one more, and the claim leases that one, not a whole batch of the
    host's feeds only to hand all but one back (a lease written and released for nearly every
    feed of the host, again at every turn)."""

    def feed(req: Request) -> Response:
        time.sleep(0.05)
        return Response(200, rss(server.base, []).encode(), {"Content-Type": "application/rss+xml"})

    for n in range(20):
        server.routes[f"/a{n}"] = feed
    s = settings(database_url, concurrent_feeds=8, feeds_per_tick=8, per_host_connections=1)
    assert host_share(s) == 2
    pipeline = await make_pipeline(s, workers, resources)
    for n in range(20):
        await pipeline.store.add_feed(server.url(f"/a{n}"))
    leased: list[int] = []
    claim = pipeline.store.claim_feeds

    async def counted(**kw: Any) -> list[Any]:
        got = await claim(**kw)
        leased.extend(f.id for f in got)
        return got

    pipeline.store.claim_feeds = counted  # type: ignore[method-assign]
    summary = await pipeline.run()
    assert (summary.feeds, summary.ok) == (20, 20)
    assert Counter(leased).most_common(1)[0][1] == 1, "a feed was leased and released"
    again = await pipeline.run(all_feeds=True)
    assert again.feeds == 20
    assert len(leased) == 40


async def test_a_failure_that_could_not_be_recorded_is_counted_once_it_is(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed that fails (404) while its failure cannot be recorded (the database went away):
    handed back, it is polled again and fails again, recorded then. `ingest_errors_total` counts
    that one failure, as `ingest_feeds_polled_total{status="error"}` and the passes' `failed`
    do (was: a failure each time the poll failed, recorded or not: two here)."""
    from prometheus_client import REGISTRY

    from ingest.errors import StoreError

    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/missing.xml"))
    real = pipeline.store.feed_failed
    unrecorded = 1

    async def feed_failed(*args: Any, **kwargs: Any) -> Any:
        nonlocal unrecorded
        if unrecorded:
            unrecorded -= 1
            raise StoreError("database unreachable: connection refused")
        return await real(*args, **kwargs)

    pipeline.store.feed_failed = feed_failed  # type: ignore[method-assign]

    def counted() -> tuple[float, float]:
        errors = REGISTRY.get_sample_value("ingest_errors_total", {"kind": "FetchError"})
        polled = REGISTRY.get_sample_value("ingest_feeds_polled_total", {"status": "error"})
        return errors or 0.0, polled or 0.0

    before = counted()
    first = await pipeline.run(all_feeds=True)
    second = await pipeline.run(all_feeds=True)
    after = counted()
    assert (first.failed, second.failed) == (0, 1)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    (feed,) = rows(database_url, "SELECT last_status, consecutive_failures FROM ingest.feeds")
    assert (feed["last_status"], feed["consecutive_failures"]) == ("error", 1)
    await pipeline.aclose()


async def test_leases_of_unrecorded_feeds_are_handed_back_once_the_database_answers(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A feed whose outcome cannot be recorded (the database went away), while handing its
    lease back fails too: the hand-back is tried again until the database answers, so the
    feed is due again at once instead of when its 10-minute lease runs out."""
    from ingest import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "HAND_BACK_FIRST_DELAY", 0.05)
    monkeypatch.setattr(pipeline_module, "HAND_BACK_MAX_DELAY", 0.1)
    server.routes["/feed"] = static(rss(server.base, []), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url, lease_seconds=600), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    failures = {"feeds_succeeded": 1, "release_leases": 3}

    fail_first(pipeline.store, failures, "database unreachable: connection refused")
    summary = await pipeline.run()
    assert summary.feeds == 0  # handed back: not recorded in this pass
    for _ in range(100):
        leased = rows(database_url, "SELECT lease_owner FROM ingest.feeds")[0]["lease_owner"]
        # Handed back, and no longer left out of the process's claims: the database's row is
        # written before the process forgets the feed it was handing back.
        if leased is None and not pipeline._unreleased:
            break
        await asyncio.sleep(0.05)
    assert leased is None, "the lease was not handed back"
    assert failures == {"feeds_succeeded": 0, "release_leases": 0}
    again = await pipeline.run()
    assert (again.feeds, again.ok, again.failed) == (1, 1, 0)
    await pipeline.aclose()


async def test_hosts_of_a_run_the_database_left_are_handed_back_once_it_answers(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run whose feed's outcome cannot be recorded and whose release of its host fails too
    (the database went away): once the database answers again, the host is handed back with
    the feed's lease, another process's to take a host delay later, instead of held until
    the end of its claim's 10-minute lease while its feed, handed back, is due at once."""
    from ingest import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "HAND_BACK_FIRST_DELAY", 0.05)
    monkeypatch.setattr(pipeline_module, "HAND_BACK_MAX_DELAY", 0.1)
    server.routes["/feed"] = static(rss(server.base, []), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url, lease_seconds=600), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    failures = {"feeds_succeeded": 1, "release_leases": 3, "release_hosts": 3}

    fail_first(pipeline.store, failures, "database unreachable: connection refused")
    summary = await pipeline.run()
    assert summary.feeds == 0  # handed back: not recorded in this pass
    held = "SELECT held_until - now() AS left FROM ingest.host_holds"
    left = rows(database_url, held)[0]["left"]
    for _ in range(100):
        if failures["release_hosts"] == 0 and left <= timedelta(seconds=1):
            break
        await asyncio.sleep(0.05)
        left = rows(database_url, held)[0]["left"]
    await pipeline.aclose()
    assert failures["release_hosts"] == 0, "the host's release was not tried again"
    assert left <= timedelta(seconds=1), left


async def test_a_store_that_fails_mid_feed_leaves_nothing_running_behind(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A feed's articles are stored as its pages come in; when one of those stores fails, the
    feed is handed back at once and nothing of it is stored afterwards (another replica may
    own it by then); what was stored before stays, and the next poll stores the rest."""
    from ingest.errors import StoreError

    paths = [f"/story/{n}" for n in range(6)]
    server.routes["/feed"] = static(rss(server.base, paths), "application/rss+xml")
    for p in paths:
        server.routes[p] = static(page(p))
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    real = pipeline.store.store_many
    calls: list[str] = []

    async def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls.append("store")
        if len(calls) == 1:
            raise StoreError("database unreachable: connection reset")
        return await real(*args, **kwargs)

    pipeline.store.store_many = failing_once  # type: ignore[method-assign]
    summary = await pipeline.run()
    assert summary.feeds == 0  # handed back
    await asyncio.sleep(0.3)  # anything left running would store now
    assert calls == ["store"]
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0
    assert rows(database_url, "SELECT lease_owner FROM ingest.feeds")[0]["lease_owner"] is None
    again = await pipeline.run()
    assert (again.feeds, again.ok, again.new_articles) == (1, 1, 6)
    await pipeline.aclose()


async def test_articles_waiting_behind_a_failing_store_are_not_written_after_it(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """The feed's other pages come in while its first store is failing: they wait for the
    next group, which the writer takes as soon as the failure is in. The feed has failed by
    then, and is handed back: none of them is written, by that group or a later one."""
    from ingest.errors import StoreError

    paths = [f"/story/{n}" for n in range(6)]
    server.routes["/feed"] = static(rss(server.base, paths), "application/rss+xml")
    server.routes[paths[0]] = static(page(paths[0]))
    for p in paths[1:]:

        def late(req: Request, serve: Any = static(page(p))) -> Response:
            time.sleep(0.2)  # while the first page's store is failing
            return serve(req)

        server.routes[p] = late
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    real = pipeline.store.store_many
    calls: list[int] = []

    async def failing_slowly(items: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(items))
        if len(calls) == 1:
            await asyncio.sleep(0.5)  # the other pages come in meanwhile
            raise StoreError("database unreachable: connection reset")
        return await real(items, *args, **kwargs)

    pipeline.store.store_many = failing_slowly  # type: ignore[method-assign]
    summary = await pipeline.run()
    assert summary.feeds == 0  # handed back
    await asyncio.sleep(0.3)
    assert len(calls) == 1, calls
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 0
    again = await pipeline.run()
    assert (again.feeds, again.ok, again.new_articles) == (1, 1, 6)
    await pipeline.aclose()


async def test_a_feed_that_fails_leaves_no_page_running_after_the_run(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A page still being fetched when its feed fails (here: the first store fails, and the
    feed is handed back) is stopped by the end of the run, not left pending for the event
    loop to destroy (`run --once` closes its loop right after)."""
    from ingest.errors import StoreError

    paths = ["/story/fast", "/story/slow"]
    server.routes["/feed"] = static(rss(server.base, paths), "application/rss+xml")
    server.routes["/story/fast"] = static(page("fast"))
    slow = static(page("slow"))

    def slowly(req: Request) -> Response:
        time.sleep(1.5)
        return slow(req)

    server.routes["/story/slow"] = slowly
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("database unreachable: connection reset")

    pipeline.store.store_many = failing  # type: ignore[method-assign]
    summary = await pipeline.run()
    assert summary.feeds == 0  # handed back
    pending = [t for t in asyncio.all_tasks() if not t.done() and "_page" in repr(t.get_coro())]
    assert pending == []
    await pipeline.aclose()


async def test_pages_redirected_to_a_slow_host_leave_its_own_pages_a_slot(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A feed whose links go through a redirector to a site with a Crawl-delay, and that
    site's own feed: pages waiting for the site's turn after their redirect hold no page slot
    the site's own next page waits for, so the run ends with every article stored instead of
    waiting for ever."""
    site, redirector = server, second_server
    site.routes["/robots.txt"] = static("User-agent: *\nCrawl-delay: 1\n", "text/plain")
    redirector.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    own = ["/own-0", "/own-1"]
    hops = [f"/r/{i}" for i in range(4)]
    for p in own:
        site.routes[p] = static(page(f"Own {p}"))
    for i, p in enumerate(hops):
        site.routes[f"/a/{i}"] = static(page(f"Story {i}"))
        redirector.routes[p] = Response(302, b"", {"Location": site.url(f"/a/{i}")})
    site.routes["/feed"] = static(rss(site.base, own, "own"), "application/rss+xml")
    redirector.routes["/feed"] = static(rss(redirector.base, hops, "hop"), "application/rss+xml")
    # Page slots: one connection plus two per worker (one worker here).
    s = settings(database_url, max_connections=1, max_crawl_delay=1)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.store.add_feed(redirector.url("/feed"))
    summary = await asyncio.wait_for(pipeline.run(), 20)
    assert (summary.ok, summary.new_articles) == (2, len(own) + len(hops))


async def test_a_feed_waiting_to_be_handed_back_is_not_claimed_again_by_its_holder(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A feed whose store failed while handing its lease back failed too waits for the
    hand-back. Once its lease has run out it is due, but this process's next pass (the
    service's next tick) must not claim it: the hand-back that finally gets through would
    release the lease of that new poll, and another replica could claim the feed while this
    one still writes its articles."""
    from ingest import pipeline as pipeline_module
    from ingest.errors import StoreError

    monkeypatch.setattr(pipeline_module, "HAND_BACK_FIRST_DELAY", 0.05)
    monkeypatch.setattr(pipeline_module, "HAND_BACK_MAX_DELAY", 0.1)
    server.routes["/feed"] = static(rss(server.base, ["/story/0"]), "application/rss+xml")
    slow = static(page("/story/0"))

    def slowly(req: Request) -> Response:
        time.sleep(1.0)  # the hand-back gets through meanwhile
        return slow(req)

    server.routes["/story/0"] = slowly
    pipeline = await make_pipeline(settings(database_url, lease_seconds=0.5), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    real_store, real_release = pipeline.store.store_many, pipeline.store.release_leases
    releasing = {"fails": True}
    owners_at_write: list[str | None] = []

    async def store_many(*args: Any, **kwargs: Any) -> Any:
        leased = rows(database_url, "SELECT lease_owner FROM ingest.feeds")[0]["lease_owner"]
        owners_at_write.append(leased)
        if len(owners_at_write) == 1:
            raise StoreError("database unreachable: connection reset")
        return await real_store(*args, **kwargs)

    async def release_leases(*args: Any, **kwargs: Any) -> Any:
        if releasing["fails"]:
            raise StoreError("database unreachable: connection refused")
        return await real_release(*args, **kwargs)

    pipeline.store.store_many = store_many  # type: ignore[method-assign]
    pipeline.store.release_leases = release_leases  # type: ignore[method-assign]
    first = await pipeline.run()
    assert first.feeds == 0  # handed back, or rather waiting to be
    await asyncio.sleep(0.7)  # its lease runs out: the feed is due
    asyncio.get_running_loop().call_later(0.3, releasing.update, {"fails": False})
    second = await pipeline.run()
    for _ in range(100):  # polled once the hand-back is through
        third = await pipeline.run()
        if second.feeds or third.feeds:
            break
        await asyncio.sleep(0.05)
    assert second.new_articles + third.new_articles == 1
    assert owners_at_write[1:] == [pipeline.owner], "written without holding the lease"
    await pipeline.aclose()


async def test_a_feed_failing_for_another_reason_waits_for_its_articles_being_written(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A feed fails (here: a bug while one of its pages is turned into an article) while the
    group holding another of its articles is being written: its failure, which hands the
    lease back, is recorded once that group is in, not before (another replica could claim
    the feed and poll it while the group commits)."""
    paths = ["/story/0", "/story/1"]
    server.routes["/feed"] = static(rss(server.base, paths), "application/rss+xml")
    server.routes["/story/0"] = static(page("/story/0"))
    late = static(page("/story/1"))
    writing = threading.Event()

    def slowly(req: Request) -> Response:
        writing.wait(10)  # answered while the first page's article is being written
        return late(req)

    server.routes["/story/1"] = slowly
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    real_store, real_article = pipeline.store.store_many, pipeline._article
    owners_at_write: list[str | None] = []

    async def slow_store(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        await asyncio.sleep(1.0)
        leased = rows(database_url, "SELECT lease_owner FROM ingest.feeds")[0]["lease_owner"]
        owners_at_write.append(leased)
        return await real_store(*args, **kwargs)

    def article(c: Any, page: Any, **kwargs: Any) -> Any:
        if c.link.endswith("/story/1"):
            raise RuntimeError("a bug")
        return real_article(c, page, **kwargs)

    pipeline.store.store_many = slow_store  # type: ignore[method-assign]
    pipeline._article = article  # type: ignore[method-assign]
    summary = await pipeline.run()
    assert (summary.feeds, summary.failed) == (1, 1)
    await asyncio.sleep(1.2)  # a write left running would be in by now
    assert owners_at_write == [pipeline.owner], "written after the feed's failure was recorded"
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 1
    # The article that committed is new in the failed poll's outcome and the pass's summary.
    assert [o.new for o in summary.outcomes] == [1]
    assert summary.new_articles == 1
    await pipeline.aclose()


async def test_articles_committed_before_a_later_group_of_their_feed_fails_are_counted(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full-text feed's entries are handed to the writer together, more than one group
    holds: the first group commits, the second fails and the feed is handed back. What the
    first committed counts in ingest_articles_new and in the pass's summary (counted as
    committed, whatever comes after), and the next poll stores and counts the rest: every
    article counted once."""
    from ingest import pipeline as pipeline_module
    from ingest.errors import StoreError

    monkeypatch.setattr(pipeline_module, "ARTICLES_LIMIT", 2)
    paths = [f"/story/{n}" for n in range(3)]
    server.routes["/feed"] = static(full_text_rss(server.base, paths), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    assert await pipeline.store.set_text_mode(server.url("/feed"), "feed")
    real = pipeline.store.store_many
    calls: list[int] = []

    async def second_fails(items: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(items))
        if len(calls) == 2:
            raise StoreError("database unreachable: connection reset")
        return await real(items, *args, **kwargs)

    pipeline.store.store_many = second_fails  # type: ignore[method-assign]

    before = articles_new_counted()
    first = await pipeline.run()
    assert first.feeds == 0  # handed back
    assert calls == [2, 1]
    stored = rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"]
    assert stored == 2
    assert first.new_articles == stored  # the pass's summary says what it stored
    assert articles_new_counted() - before == stored
    again = await pipeline.run()
    assert (again.ok, again.new_articles) == (1, 1)
    assert articles_new_counted() - before == 3
    await pipeline.aclose()


async def test_articles_committed_for_a_feed_stopped_meanwhile_are_counted(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full-text feed's entries take two groups; the feed is stopped (renewals fail, its lease
    runs short) while the second is being written. It waits for that write, which commits: what
    both groups committed counts in ingest_articles_new, though the feed ends stopped and the
    next poll finds those articles stored."""
    from ingest import pipeline as pipeline_module
    from ingest.errors import StoreError

    monkeypatch.setattr(pipeline_module, "ARTICLES_LIMIT", 2)
    paths = [f"/story/{n}" for n in range(3)]
    server.routes["/feed"] = static(full_text_rss(server.base, paths), "application/rss+xml")
    pipeline = await make_pipeline(settings(database_url, lease_seconds=1.5), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    assert await pipeline.store.set_text_mode(server.url("/feed"), "feed")
    real = pipeline.store.store_many
    calls: list[int] = []

    async def second_slow(items: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(items))
        if len(calls) == 2:
            await asyncio.sleep(2)
        return await real(items, *args, **kwargs)

    async def unanswered(*args: Any, **kwargs: Any) -> set[int]:
        raise StoreError("database unreachable: timeout")

    pipeline.store.store_many = second_slow  # type: ignore[method-assign]
    pipeline.store.renew_leases = unanswered  # type: ignore[method-assign]

    before = articles_new_counted()
    first = await asyncio.wait_for(pipeline.run(), 10)
    assert first.feeds == 0  # stopped
    assert calls == [2, 1]
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 3
    assert first.new_articles == 3
    assert articles_new_counted() - before == 3
    await pipeline.aclose()


def moved_feed(server: LocalServer, paths: list[str]) -> None:
    """A feed at /old permanently redirected to /new, listing `paths`, each a story page."""
    server.routes["/old"] = Response(301, b"", {"Location": server.url("/new")})
    server.routes["/new"] = static(rss(server.base, paths), "application/rss+xml")
    for path in paths:
        server.routes[path] = static(page(path))


async def test_a_feed_permanently_redirected_moves_to_its_new_url(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """Once its permanent redirect has held (here: at once), the feed is renamed to the URL it
    moved to, keeping its id, its articles and its outcome; it is then polled there."""
    moved_feed(server, ["/s/0"])
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/old"))
    summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, 1)
    feed = rows(database_url, "SELECT id, url, lease_owner, polled_at FROM ingest.feeds")
    assert len(feed) == 1
    assert feed[0]["url"] == server.url("/new")
    assert feed[0]["lease_owner"] is None
    assert feed[0]["polled_at"] is not None
    article = rows(database_url, "SELECT feed_id FROM news.articles")
    assert [a["feed_id"] for a in article] == [feed[0]["id"]]
    before = len(server.requests)
    again = await pipeline.run(all_feeds=True)
    assert (again.feeds, again.failed, again.new_articles) == (1, 0, 0)
    assert [r.path for r in server.requests[before:]] == ["/new"]
    await pipeline.aclose()


async def test_a_private_feed_moved_within_its_site_keeps_its_user_info(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed registered with its credential as user-info (`http://Reader:S3cret@host/old`),
    permanently redirected to an absolute URL of its own origin, is polled there with the same
    Basic authentication and moves to the new URL with the user-info kept, so that it is still
    polled with it."""
    moved_feed(server, ["/s/0"])
    served = server.routes["/new"]

    def private(req: Request) -> Response:
        if req.headers.get("authorization") != "Basic UmVhZGVyOlMzY3JldA==":  # Reader:S3cret
            return Response(401, b"denied")
        return served(req) if callable(served) else served

    server.routes["/new"] = private
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/old").replace("://", "://Reader:S3cret@"))
    assert (await pipeline.run()).ok == 1
    feed = rows(database_url, "SELECT url, last_status FROM ingest.feeds")
    assert feed == [
        {"url": server.url("/new").replace("://", "://Reader:S3cret@"), "last_status": "ok"}
    ]
    again = await pipeline.run(all_feeds=True)
    assert (again.feeds, again.failed) == (1, 0)
    await pipeline.aclose()


async def test_a_feed_moved_to_another_site_leaves_its_credentials_behind(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A feed whose permanent redirect leads to another site (another registered domain: a
    domain sold or lapsed, a hosting platform's) moves there without its Authorization and
    Cookie headers (`feeds set URL header.NAME=...`): they were never sent across the redirect
    while it held, and are not sent to the new site once the feed is renamed; its other headers
    go with it. Merged into a feed registered there, it hands over none either."""
    server.routes["/old"] = Response(301, b"", {"Location": second_server.url("/new")})
    second_server.routes["/new"] = static(rss(second_server.base, ["/s/0"]), "application/rss+xml")
    second_server.routes["/s/0"] = static(page("/s/0"))
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    old = server.url("/old")
    await pipeline.store.add_feed(old)
    given = {"authorization": "Bearer T0ken", "COOKIE": "s=T0ken", "X-Edition": "uk"}
    await pipeline.store.set_feed_settings(old, {}, dict(given), None)
    assert (await pipeline.run()).ok == 1
    moved = [{"url": second_server.url("/new"), "settings": {"headers": {"X-Edition": "uk"}}}]
    assert rows(database_url, "SELECT url, settings FROM ingest.feeds") == moved
    before = len(second_server.requests)
    again = await pipeline.run(all_feeds=True)
    assert (again.feeds, again.failed) == (1, 0)
    sent = [r.headers for r in second_server.requests[before:] if r.path == "/new"]
    assert [("authorization" in h, "cookie" in h, h.get("x-edition")) for h in sent] == [
        (False, False, "uk")
    ]
    # Merged: the feed registered at the new URL takes none of the moved one's credentials.
    await pipeline.store.add_feed(old)
    await pipeline.store.set_feed_settings(old, {}, dict(given), None)
    merged = await pipeline.run(all_feeds=True)
    assert (merged.feeds, merged.failed) == (2, 0)
    assert rows(database_url, "SELECT url, settings FROM ingest.feeds") == moved
    await pipeline.aclose()


async def test_a_feed_moved_to_the_url_of_another_feed_is_merged_into_it(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed redirected to a feed already subscribed is merged into it: its row goes, its
    entries and articles are the other feed's, and no story is stored twice."""
    moved_feed(server, ["/s/0", "/s/1"])
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/new"))
    await pipeline.store.add_feed(server.url("/old"))
    summary = await pipeline.run()
    assert (summary.ok, summary.failed, summary.new_articles) == (2, 0, 2)
    feeds = rows(database_url, "SELECT id, url, lease_owner FROM ingest.feeds")
    assert [(f["url"], f["lease_owner"]) for f in feeds] == [(server.url("/new"), None)]
    owners = rows(database_url, "SELECT DISTINCT feed_id FROM news.articles")
    assert [o["feed_id"] for o in owners] == [feeds[0]["id"]]
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 2
    await pipeline.aclose()


async def test_a_feed_redirected_to_a_paused_feed_s_url_goes_on_polling_through_it(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed whose permanent redirect holds, to the URL of a feed the operator paused, is not
    merged into it: it goes on polling through the redirect, its later stories stored, and
    the paused feed stays paused (was: merged into the paused feed, its row gone, and the
    stories at that URL no longer polled by anyone, logged only as `feed_moved`)."""
    moved_feed(server, ["/s/0"])
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    old, new = server.url("/old"), server.url("/new")
    await pipeline.store.add_feed(new)
    await pipeline.store.add_feed(old)
    await pipeline.store.disable_feed(new, "paused by the operator")
    summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, 1)
    moved_feed(server, ["/s/0", "/s/1"])
    again = await pipeline.run(all_feeds=True)
    assert (again.ok, again.new_articles) == (1, 1)
    feeds = rows(
        database_url,
        "SELECT url, active, next_fetch_at >= '9999-01-01' AS never FROM ingest.feeds ORDER BY id",
    )
    assert [(f["url"], f["active"], f["never"]) for f in feeds] == [
        (new, False, True),
        (old, True, False),
    ]
    await pipeline.aclose()


@pytest.mark.parametrize("target", ["renamed", "merged"])
async def test_a_feed_paused_while_its_poll_moves_it_stays_paused_where_it_was(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any], target: str
) -> None:
    """`ingest feeds disable` while a poll of the feed is in flight, its permanent redirect then
    holding: the poll lost its lease, and the feed stays as the operator left it, paused at its
    URL, neither renamed nor merged into the feed registered at the new URL, which keeps its own
    settings; its story is stored (the poll in progress finishes)."""
    moved_feed(server, ["/s/0"])
    arrived, answer = threading.Event(), threading.Event()
    served = server.routes["/s/0"]

    def slow_page(req: Request) -> Response:
        arrived.set()
        answer.wait(30)
        return served(req) if callable(served) else served

    server.routes["/s/0"] = slow_page
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    old, new = server.url("/old"), server.url("/new")
    if target == "merged":
        await pipeline.store.add_feed(new)
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE ingest.feeds SET next_fetch_at = now() + interval '1 hour'")
    await pipeline.store.add_feed(old)
    await pipeline.store.set_feed_settings(old, {"user_agent": "Old/1"}, {}, ["old"])
    run = asyncio.ensure_future(pipeline.run())
    try:
        assert await asyncio.to_thread(arrived.wait, 30)
        assert await pipeline.store.disable_feed(old, "paused by the operator")
    finally:
        answer.set()
        await asyncio.wait_for(run, 30)
    feeds = rows(
        database_url,
        "SELECT url, active, inactive_reason, next_fetch_at >= '9999-01-01' AS never,"
        " settings ->> 'user_agent' AS agent, tags FROM ingest.feeds ORDER BY id",
    )
    paused = (old, False, "paused by the operator", True, "Old/1", ["old"])
    expected = [paused] if target == "renamed" else [(new, True, None, False, None, []), paused]
    assert [tuple(f.values()) for f in feeds] == expected
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 1
    await pipeline.aclose()


@pytest.mark.parametrize("active", [False, True], ids=["given-up", "backing-off"])
async def test_a_feed_merged_into_a_failing_feed_is_polled_there_at_once(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    active: bool,
) -> None:
    """A feed whose permanent redirect holds, to the URL of a feed given up on after failures
    (probed once a day) or deep in its backoff, is merged into it, and that feed is due at
    once: the URL has just answered, so its next poll makes it active again and ends its
    failures (was: left until its daily probe or the end of its backoff, the moved feed's
    stories unpolled for up to a day)."""
    moved_feed(server, ["/s/0"])
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    old, new = server.url("/old"), server.url("/new")
    await pipeline.store.add_feed(new)
    await pipeline.store.add_feed(old)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET active = %s, consecutive_failures = 10,"
            " failing_since = now() - interval '3 days', last_status = 'error',"
            " inactive_reason = CASE WHEN %s THEN NULL"
            " ELSE 'gave up after 10 failures in a row; last: HTTP 503' END,"
            " next_fetch_at = now() + interval '1 day' WHERE url = %s",
            [active, active, new],
        )
    await pipeline.run()
    await pipeline.run()
    feeds = rows(
        database_url, "SELECT url, active, inactive_reason, consecutive_failures FROM ingest.feeds"
    )
    assert [
        (f["url"], f["active"], f["inactive_reason"], f["consecutive_failures"]) for f in feeds
    ] == [(new, True, None, 0)]
    await pipeline.aclose()


async def test_a_move_that_fails_leaves_the_poll_unrecorded_and_is_done_again(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """The move is made while the lease is held, before the outcome is recorded: when it fails,
    the feed is handed back with no outcome (not recorded as polled under its old URL while
    the run reports nothing of it), and the next poll moves it."""
    from ingest.errors import StoreError

    moved_feed(server, ["/s/0"])
    s = settings(database_url, redirect_after_fetches=1, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/old"))
    real = pipeline.store.move_feed

    async def failing(*args: Any, **kw: Any) -> int:
        raise StoreError("database unreachable: connection reset")

    pipeline.store.move_feed = failing  # type: ignore[method-assign]
    summary = await pipeline.run()
    assert summary.feeds == 0  # handed back
    state = rows(database_url, "SELECT url, polled_at, lease_owner FROM ingest.feeds")[0]
    assert (state["url"], state["polled_at"], state["lease_owner"]) == (
        server.url("/old"),
        None,
        None,
    )
    pipeline.store.move_feed = real  # type: ignore[method-assign]
    again = await pipeline.run()
    assert (again.ok, again.new_articles) == (1, 0)  # its article was stored the first time
    assert rows(database_url, "SELECT url FROM ingest.feeds")[0]["url"] == server.url("/new")
    await pipeline.aclose()


async def test_a_run_leaves_no_task_of_its_own_running(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """When `run` returns, its lease renewer and its pages have ended, not merely been asked
    to: `run --once` closes its event loop right after, which would destroy them pending."""
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = static(page("/s/0"))
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    summary = await pipeline.run()
    assert summary.new_articles == 1
    pending = [
        t.get_coro().__qualname__  # type: ignore[union-attr]
        for t in asyncio.all_tasks()
        if not t.done() and t is not asyncio.current_task()
    ]
    assert not [name for name in pending if name.startswith("Pipeline.")], pending
    await pipeline.aclose()


async def test_a_move_that_races_a_feed_registered_at_its_new_url_is_done_again(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """The URL a feed moves to is registered by another transaction (`feeds add`, another
    feed's move) after the move looked it up, before its rename: the rename fails on the
    unique URL. That is the race's, not the feed's: the feed is handed back with no outcome
    (no failure, no backoff, the redirect seen on its polls so far kept), and the next poll
    merges it into the feed now at that URL."""
    moved_feed(server, ["/s/0"])
    s = settings(database_url, redirect_after_fetches=2, redirect_after=0)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/old"))
    assert (await pipeline.run()).ok == 1  # the redirect seen once: not moved yet
    old = f"SELECT * FROM ingest.feeds WHERE url = '{server.url('/old')}'"
    assert rows(database_url, old)[0]["redirect_seen"] == 1
    other = await psycopg.AsyncConnection.connect(database_url)
    admin = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        # Registered, not committed yet: the move does not see it, and its rename waits for it.
        await other.execute("INSERT INTO ingest.feeds (url) VALUES (%s)", (server.url("/new"),))
        run = asyncio.create_task(pipeline.run(all_feeds=True))
        for _ in range(300):
            cur = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if (await cur.fetchone() or (0,))[0]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the rename never waited for the other registration")
        await other.commit()
        second = await asyncio.wait_for(run, 30)
    finally:
        await other.close()
        await admin.close()
    assert (second.feeds, second.failed) == (0, 0), second.outcomes  # handed back
    (state,) = rows(database_url, old)
    assert (state["last_status"], state["consecutive_failures"]) == ("ok", 0)
    assert state["redirect_seen"] == 1
    again = await pipeline.run(all_feeds=True)
    assert (again.feeds, again.failed) == (2, 0), again.outcomes
    feeds = rows(database_url, "SELECT url FROM ingest.feeds")
    assert [f["url"] for f in feeds] == [server.url("/new")]
    assert rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 1
    await pipeline.aclose()


@pytest.mark.parametrize(
    "gone", [Response(404, b"Not found", {"Content-Type": "text/html"}), static(CONSENT_WALL)]
)
async def test_an_update_whose_page_is_gone_for_good_is_not_fetched_at_every_poll(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    gone: Response,
) -> None:
    """An updated entry whose page is now gone (404) or a consent wall: the stored article
    stays as it was, and the entry's update time is recorded, as a refused update's is, so
    that the feed's next polls (its entries unchanged) do not fetch that page again."""
    gist = "The harbour authority delays the ferry terminal over the cost of foundations."
    server.routes["/story"] = static(page("Story"))
    server.routes["/feed"] = static(atom(server.base, NOW, gist), "application/atom+xml")
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.run()
    server.routes["/story"] = gone
    later = atom(server.base, NOW + timedelta(minutes=5), gist)
    for title in ("T", "T.", "T.."):  # the feed changes, its entry does not
        body = later.replace("<title>T</title>", f"<title>{title}</title>", 1)
        server.routes["/feed"] = static(body, "application/atom+xml")
        await pipeline.run(all_feeds=True)
    assert len(server.hits("/story")) == 2
    (article,) = rows(database_url, "SELECT text, text_source, updated_at FROM news.articles")
    assert PARAGRAPH in article["text"]
    assert (article["text_source"], article["updated_at"]) == ("page", None)


async def test_a_feed_merged_into_another_keeps_its_entries_update_times_and_tries(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed of dated entries (Atom `<updated>`) merged into the feed already registered at
    the URL it moved to, before that feed listed them: its entries keep their update times and
    their tries at a failing page, so that the merged feed's next poll takes no done entry for
    an update (no page fetched again, no history row) and counts a failing page's tries on."""
    entries = "".join(
        f"<entry><title>Story {p}</title><id>urn:{p}</id><link href='{server.base}{p}'/>"
        f"<published>{NOW.isoformat()}</published><updated>{NOW.isoformat()}</updated>"
        "<summary>Short.</summary></entry>"
        for p in ("/story", "/failing")
    )
    body = (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<updated>{NOW.isoformat()}</updated>{entries}</feed>"
    )
    server.routes["/old"] = Response(301, b"", {"Location": server.url("/new")})
    server.routes["/new"] = static(body, "application/atom+xml")
    server.routes["/story"] = static(page("Story"))
    server.routes["/failing"] = Response(503, b"busy", {"Content-Type": "text/html"})
    s = settings(database_url, redirect_after_fetches=2, redirect_after=0, page_attempts=5)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/old"))
    await pipeline.run()  # the redirect seen once: not moved yet
    await pipeline.store.add_feed(server.url("/new"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET next_fetch_at = now()"
            " + CASE WHEN url = %s THEN interval '1 day' ELSE interval '-1 minute' END",
            (server.url("/new"),),
        )
    await pipeline.run()  # /old alone is due: seen twice, merged into /new
    assert [f["url"] for f in rows(database_url, "SELECT url FROM ingest.feeds")] == [
        server.url("/new")
    ]
    merged = rows(
        database_url,
        "SELECT article_id, entry_updated_at, attempts FROM ingest.feed_entries"
        " ORDER BY article_id NULLS LAST",
    )
    assert [(e["entry_updated_at"], e["attempts"]) for e in merged] == [(NOW, 0), (None, 2)]
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [0]
    assert len(server.hits("/story")) == 1
    (failing,) = rows(database_url, "SELECT attempts FROM ingest.feed_entries WHERE attempts > 0")
    assert failing["attempts"] == 3
    await pipeline.aclose()


# Feeds whose documents change at every poll in what does not matter: ids and links naming the
# visit or the generation of the document rather than the story. Each poll must cost what is new
# in it: no page fetched and no row written again for a story already stored.
STORIES = 5


def churning_rss(items: list[tuple[str, str, str | None]]) -> str:
    """An RSS document of (title, link, guid or None) items, dated an hour apart."""
    return "<rss version='2.0'><channel><title>T</title>{}</channel></rss>".format(
        "".join(
            f"<item><title>{title}</title><link>{link}</link>"
            + (f"<guid isPermaLink='false'>{guid}</guid>" if guid is not None else "")
            + f"<pubDate>{format_datetime(NOW - timedelta(hours=i))}</pubDate>"
            "<description>Short.</description></item>"
            for i, (title, link, guid) in enumerate(items)
        )
    )


def churn_counts(server: LocalServer, database_url: str) -> tuple[int, int, int]:
    """Story pages requested, articles stored and entries recorded so far."""
    pages = len([r for r in server.requests if r.path.startswith("/s")])
    (n,) = rows(
        database_url,
        "SELECT (SELECT count(*) FROM ingest.articles) AS articles,"
        " (SELECT count(*) FROM ingest.feed_entries) AS entries",
    )
    return pages, n["articles"], n["entries"]


async def poll_churning_feed(
    database_url: str,
    server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
    item: Any,
    polls: int = 4,
) -> list[tuple[int, int, int]]:
    """Polls /feed `polls` times, its items `item(base, n, poll)` at each; the counts after each."""
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    after = []
    for poll in range(polls):
        for n in range(STORIES):
            _, link, _ = item(server.base, n, poll)
            server.routes[link.removeprefix(server.base)] = static(page(f"Story {n}"))
        doc = churning_rss([item(server.base, n, poll) for n in range(STORIES)])
        server.routes["/feed"] = static(doc, "application/rss+xml")
        await pipeline.run(all_feeds=True)
        after.append(churn_counts(server, database_url))
    return after


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("/s{n};jsessionid=0A{poll}B", id="jsessionid-path"),
        pytest.param("/s{n}?PHPSESSID=a{poll}c", id="phpsessid"),
        pytest.param("/s{n}?id={n}&ASPSESSIONIDQSTRDBSA=K{poll}J", id="aspsessionid"),
    ],
)
async def test_links_carrying_a_new_session_id_at_every_poll_are_fetched_and_stored_once(
    link: str, database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed served with the reader's session id in every link (and no guid, or the link as its
    guid), a new one at every poll: each story's page is fetched once and stored once."""

    def item(base: str, n: int, poll: int) -> tuple[str, str, str | None]:
        url = base + link.format(n=n, poll=poll)
        return f"Story {n}", url, None if n % 2 else url

    after = await poll_churning_feed(database_url, server, workers, resources, item)
    assert after == [(STORIES, STORIES, STORIES)] * 4


@pytest.mark.parametrize(
    "guid",
    [
        pytest.param("urn:story:{n}:{poll}", id="generation-in-guid"),
        pytest.param("{link}?utm_source=rss&utm_content=poll{poll}", id="tracked-permalink-guid"),
    ],
)
async def test_guids_that_change_at_every_poll_add_no_entry_for_a_story_already_listed(
    guid: str, database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A feed whose guids change at every poll (a generation count or a session in them, a
    tracking parameter rotated in a permalink guid) while each story's link stays: each page is
    fetched once, and a new guid for a story the feed already lists is not recorded again (a
    row per entry per poll, forever, and a round trip each)."""

    def item(base: str, n: int, poll: int) -> tuple[str, str, str | None]:
        link = f"{base}/s{n}"
        return f"Story {n}", link, guid.format(n=n, poll=poll, link=link)

    after = await poll_churning_feed(database_url, server, workers, resources, item)
    assert after == [(STORIES, STORIES, STORIES)] * 4


async def test_a_failing_page_of_an_entry_whose_guid_changes_at_every_poll_is_tried_as_often_as_any(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An entry whose page answers 503, listed under a new guid at every poll: its tries carry
    over from guid to guid by its link, so that it is stored from the feed's text after
    INGEST_PAGE_ATTEMPTS tries, as an entry with a stable guid is (its page was fetched at
    every poll, forever, the story never stored)."""
    server.routes["/s0"] = Response(503, b"busy", {"Content-Type": "text/plain"})
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    for poll in range(6):
        doc = churning_rss([("Story 0", server.url("/s0"), f"urn:story:0:{poll}")])
        server.routes["/feed"] = static(doc, "application/rss+xml")
        await pipeline.run(all_feeds=True)
    assert len(server.hits("/s0")) == pipeline.settings.page_attempts == 3
    (article,) = rows(database_url, "SELECT title, extraction_error FROM news.articles")
    assert article["title"] == "Story 0"


async def test_a_host_whose_feeds_are_done_is_released_while_the_run_goes_on(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A run still polling a slow host's feed (a service's run goes on for as long as feeds
    are in flight) is done with another host's feed: that host is another process's to take a
    host delay later (sql/0045), not once the lease its claim gave runs out, so that a replica
    with free slots polls its feeds as they come due while this one's are all busy."""
    release = threading.Event()
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = held_page(release, 10)
    second_server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    second_server.routes["/feed"] = static(rss(second_server.base, ["/s/1"]), "application/rss+xml")
    second_server.routes["/s/1"] = static(page("/s/1"))
    s = Settings(database_url=database_url, allow_private_networks=True, host_delay=0.5)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    await pipeline.store.add_feed(second_server.url("/feed"))
    run = asyncio.create_task(pipeline.run())
    try:
        await requested(server, "/s/0")
        done = "SELECT count(*) AS n FROM ingest.feeds WHERE polled_at IS NOT NULL"
        while rows(database_url, done)[0]["n"] == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        holds = rows(
            database_url,
            "SELECT host, held_until - now() AS left FROM ingest.host_holds ORDER BY host",
        )
        assert not run.done()
    finally:
        release.set()
        await asyncio.wait_for(run, 10)
        await pipeline.aclose()
    left = {row["host"]: row["left"] for row in holds}
    assert left["127.0.0.1"] > timedelta(seconds=500)
    assert left["127.0.0.2"] <= timedelta(seconds=0.5)


async def test_a_host_s_crawl_delay_holds_it_after_the_run_that_read_it(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """A host whose robots.txt asks for 3 s between requests (Crawl-delay) is another
    process's to take 3 s after the run polling it ends, not INGEST_HOST_DELAY (0.5 s) after
    it: one process polls a host at a time so that its delay holds whatever the number of
    replicas (sql/0045), and its delay is the one its robots.txt set."""
    server.routes["/robots.txt"] = static("User-agent: *\nCrawl-delay: 3\n", "text/plain")
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = static(page("/s/0"))
    s = Settings(database_url=database_url, allow_private_networks=True, host_delay=0.5)
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    summary = await asyncio.wait_for(pipeline.run(), 20)
    held = rows(database_url, "SELECT held_until - now() AS left FROM ingest.host_holds")
    await pipeline.aclose()
    assert summary.feeds == 1
    assert any(r.path == "/robots.txt" for r in server.requests)
    assert held[0]["left"] > timedelta(seconds=2)


async def test_a_host_s_retry_after_holds_it_after_the_run_that_met_it(
    database_url: str, server: LocalServer, workers: WorkerPool, resources: list[Any]
) -> None:
    """An article page answering 429 with a Retry-After of 30 s (which holds its host in this
    process only: not its feeds in the database, as a feed's would): the host is another
    process's to take once the Retry-After is over, not INGEST_HOST_DELAY after the run ends,
    nor when the leases would have run out (20 s), so that another replica sends it nothing
    while it asked for nothing."""
    server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    server.routes["/s/0"] = lambda req: Response(429, b"slow down", {"Retry-After": "30"})
    s = Settings(
        database_url=database_url, allow_private_networks=True, host_delay=0.5, lease_seconds=20
    )
    pipeline = await make_pipeline(s, workers, resources)
    await pipeline.store.add_feed(server.url("/feed"))
    summary = await asyncio.wait_for(pipeline.run(), 20)
    held = rows(database_url, "SELECT held_until - now() AS left FROM ingest.host_holds")
    due = rows(database_url, "SELECT next_fetch_at - now() AS left FROM ingest.feeds")
    await pipeline.aclose()
    assert summary.feeds == 1
    assert any(r.path == "/s/0" for r in server.requests)
    assert due[0]["left"] > timedelta(minutes=1)  # the feed itself answered: due as usual
    assert held[0]["left"] > timedelta(seconds=25)


def _timed_pages(server: LocalServer, paths: list[str]) -> list[float]:
    """Serves an article at each of `paths`; the list of the times (monotonic) they are asked."""
    arrivals: list[float] = []

    def timed(body: bytes) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            arrivals.append(time.monotonic())
            return Response(200, body, {"Content-Type": "text/html"})

        return handle

    for path in paths:
        server.routes[path] = timed(page(path).encode())
    return arrivals


async def test_a_page_on_another_host_waits_while_another_process_holds_that_host(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """A feed of one host (127.0.0.2) listing pages of another (127.0.0.1) that another process
    holds (a replica polling that host's own feeds, sql/0045): the pages wait for its hold to
    end, `page_host_waiting` logged, rather than go out beside that process's requests, each
    process at the host's delay; once they are fetched, the host is another process's to take
    a host delay later."""
    from structlog.testing import capture_logs

    second_server.routes["/feed"] = static(
        rss(server.base, ["/s/0", "/s/1"]), "application/rss+xml"
    )
    arrivals = _timed_pages(server, ["/s/0", "/s/1"])
    pipeline = await make_pipeline(settings(database_url), workers, resources)
    await pipeline.store.add_feed(second_server.url("/feed"))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.host_holds VALUES ('127.0.0.1', 'replica-1', now() + '2 s')"
        )
    ends = time.monotonic() + 2
    with capture_logs() as logged:
        summary = await asyncio.wait_for(pipeline.run(), 60)
    await pipeline.aclose()
    assert summary.new_articles == 2
    assert len(arrivals) == 2
    assert min(arrivals) >= ends - 0.3  # the test's clock read after the database's
    (waiting,) = [e for e in logged if e["event"] == "page_host_waiting"]
    assert (waiting["host"], waiting["held_by"]) == ("127.0.0.1", "replica-1")
    holds = rows(
        database_url,
        "SELECT held_by, held_until <= now() + '1 s' AS let_go FROM ingest.host_holds"
        " WHERE host = '127.0.0.1'",
    )
    assert holds == [{"held_by": pipeline.owner, "let_go": True}]


async def test_a_page_on_another_host_held_longer_than_a_request_waits_spends_no_try(
    database_url: str,
    server: LocalServer,
    second_server: LocalServer,
    workers: WorkerPool,
    resources: list[Any],
) -> None:
    """The pages of a host another process keeps for longer than a request waits for it
    (INGEST_MAX_CRAWL_DELAY, as for a Retry-After) are held back unsent (`held: … is another
    process's`), a passing failure that spends none of their tries, and fetched by a later poll
    once the host is free; the feed's poll itself is no failure."""
    second_server.routes["/feed"] = static(rss(server.base, ["/s/0"]), "application/rss+xml")
    arrivals = _timed_pages(server, ["/s/0"])
    pipeline = await make_pipeline(settings(database_url, max_crawl_delay=1), workers, resources)
    await pipeline.store.add_feed(second_server.url("/feed"))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO ingest.host_holds VALUES ('127.0.0.1', 'replica-1', now() + '1 h')"
        )
    summary = await asyncio.wait_for(pipeline.run(), 60)
    assert arrivals == []
    assert summary.new_articles == 0
    entries = rows(database_url, "SELECT attempts, article_id FROM ingest.feed_entries")
    assert entries == [{"attempts": 0, "article_id": None}]
    feed = rows(database_url, "SELECT last_status FROM ingest.feeds")
    assert feed == [{"last_status": "ok"}]
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM ingest.host_holds WHERE held_by = 'replica-1'")
    await asyncio.wait_for(pipeline.run(all_feeds=True), 60)
    await pipeline.aclose()
    assert len(arrivals) == 1
