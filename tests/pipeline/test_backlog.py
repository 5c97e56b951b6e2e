"""The worker backlog (`ingest.workers.backlog`, `INGEST_WORKER_BACKLOG_BYTES`): requests wait
while fetched documents that no worker has finished with hold the limit, so a burst the workers
cannot keep up with stays within the limit plus the requests already running; and it never
holds a run up for good."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import psycopg
import pytest
from prometheus_client import REGISTRY

from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline
from ingest.ports import WorkerPool
from ingest.store import Store, StoredCounts
from ingest.store.db import make_pool
from ingest.workers.backlog import Backlog
from ingest.workers.pool import Workers
from ingest.workers.tasks import extract_page
from tests.support.httpserver import LocalServer, static
from tests.support.pool_tasks import nap, tagged
from tests.support.workers import InlineWorkers

pytestmark = pytest.mark.anyio

T = TypeVar("T")

# --- the primitive -------------------------------------------------------------------------


async def held(backlog: Backlog, size: int) -> tuple[asyncio.Future[None], asyncio.Future[None]]:
    """`size` bytes held for a work that ends when the first future is given a result; the
    second is the holder's."""
    work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    holder = asyncio.ensure_future(backlog.hold(size, work))
    await asyncio.sleep(0)  # the holder has counted its bytes
    return work, holder


async def test_room_waits_until_the_backlog_is_under_its_limit() -> None:
    backlog = Backlog(100)
    await backlog.room()  # empty: at once
    (a, holder_a), (b, holder_b) = await held(backlog, 60), await held(backlog, 60)
    assert REGISTRY.get_sample_value("ingest_worker_backlog_bytes") == 120
    waiting = asyncio.ensure_future(backlog.room())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    a.set_result(None)
    b.set_result(None)
    await asyncio.wait_for(waiting, 1)
    await asyncio.gather(holder_a, holder_b)
    assert backlog.held == 0
    assert REGISTRY.get_sample_value("ingest_worker_backlog_bytes") == 0


async def test_one_document_over_the_limit_goes_through_alone() -> None:
    backlog = Backlog(10)
    await backlog.room()
    work, holder = await held(backlog, 5000)
    assert backlog.held == 5000
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backlog.room(), 0.05)
    work.set_result(None)
    await asyncio.wait_for(backlog.room(), 1)
    await holder


async def test_a_release_that_leaves_it_full_wakes_nobody_for_good() -> None:
    backlog = Backlog(100)
    (big, _), (small, _) = await held(backlog, 150), await held(backlog, 10)
    waiting = asyncio.ensure_future(backlog.room())
    await asyncio.sleep(0)
    small.set_result(None)
    await asyncio.sleep(0)
    assert not waiting.done()  # 150 still held
    big.set_result(None)
    await asyncio.wait_for(waiting, 1)


async def test_a_cancelled_callers_bytes_stay_counted_until_its_worker_task_ends() -> None:
    """A caller cancelled while its document waits for a worker: the task goes on (the pool
    does not cancel it, `Workers.run`), the document with it in the pool's queue, so its bytes
    stay in the backlog until the task ends, not only until the caller is gone."""
    backlog = Backlog(1000)
    pool = Workers(1)
    try:
        await pool.run(tagged, 0, timeout=30)
        busy = asyncio.ensure_future(pool.run(nap, 0.5, -1, timeout=30))
        caller = asyncio.ensure_future(backlog.hold(1000, pool.run(nap, 0.2, 1, timeout=30)))
        await asyncio.sleep(0.1)
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        assert caller.cancelled()
        assert backlog.held == 1000  # its task still waits behind the busy one
        await busy
        await asyncio.wait_for(backlog.room(), 10)  # under its limit: the task has ended
        assert backlog.held == 0
    finally:
        pool.close()


# --- in the pipeline -----------------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)
FEEDS = 24
PADDING = "Background: " + "the committee heard from residents about the harbour. " * 400


def _feed(base: str, n: int) -> str:
    """One entry, and a long description: about 20 KB a feed."""
    return (
        "<rss version='2.0'><channel><title>T</title><item>"
        f"<title>Story {n}</title><link>{base}/a/{n}</link><guid>{base}/a/{n}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
        f"<description>{PADDING}</description></item></channel></rss>"
    )


def _page(n: int) -> str:
    body = "".join(
        f"<p>Story {n}, part {k}: the council of district {n} voted on the footbridge {k} after "
        f"residents waited {k + n} years for it to be rebuilt over the canal.</p>"
        for k in range(6)
    )
    return f"<html><head><title>Story {n}</title></head><body><article>{body}</article></body>"


def _site(host: LocalServer, feed: str, links: list[str]) -> None:
    """`host` allows every robot and serves at `feed` an RSS feed listing `links`."""
    host.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    items = "".join(
        f"<item><title>Story {n}</title><link>{link}</link><guid>{link}</guid></item>"
        for n, link in enumerate(links)
    )
    host.routes[feed] = static(
        f"<rss version='2.0'><channel><title>T</title>{items}</channel></rss>",
        "application/rss+xml",
    )


@contextlib.asynccontextmanager
async def _pipeline(settings: Settings, workers: WorkerPool) -> AsyncIterator[Pipeline]:
    pool = make_pool(settings.database_url or "")
    await pool.open(wait=True)
    try:
        async with Fetcher(settings) as fetcher:
            yield Pipeline(settings, Store(pool), fetcher, workers, rng=random.Random(0))
    finally:
        await pool.close()


def _note_stores(pipeline: Pipeline, note: Callable[[], int]) -> list[int]:
    """What `note()` answers as each write of articles (`store_many`) begins."""
    noted: list[int] = []
    store_many = pipeline.store.store_many

    async def noting(*args: Any, **kwargs: Any) -> Any:
        noted.append(note())
        return await store_many(*args, **kwargs)

    pipeline.store.store_many = noting  # type: ignore[method-assign]
    return noted


class SlowWorkers(InlineWorkers):
    """One worker, 20 ms a task, noting the backlog's bytes as each task starts."""

    def __init__(self) -> None:
        super().__init__(1)
        self.backlog: Backlog | None = None
        self.seen: list[int] = []
        self._one = asyncio.Semaphore(1)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        async with self._one:
            if self.backlog is not None:
                self.seen.append(self.backlog.held)
            await asyncio.sleep(0.02)
            return await super().run(fn, *args, timeout=timeout)


KEEPING_UP = 10.0
"""Seconds a task of `StoreBoundWorkers` waits at most for the articles of the pages extracted
before it to be in a write: the article writer waits 50 ms for company before a write, which
takes milliseconds (a few hundred on a loaded machine). A task waits this long only where the
pipeline holds an article back for a later page, which no task can extract meanwhile."""


class StoreBoundWorkers(SlowWorkers):
    """SlowWorkers whose every task starts only once the article of each page extracted before
    it is in a write (`store_many` began with it; `follow`), however long the writer takes: the
    tasks keep pace with the writes instead of with the clock. A pipeline that holds an article
    back for a later page makes a task wait KEEPING_UP seconds; after that, the tasks wait no
    more."""

    def __init__(self) -> None:
        super().__init__()
        self.extracted = 0
        """Pages extracted."""
        self.written = 0
        """Articles in writes begun."""
        self._turn = asyncio.Semaphore(1)
        self._writes = asyncio.Condition()
        self._keeping_up = True

    def follow(self, pipeline: Pipeline) -> None:
        """Count the articles of each of `pipeline`'s writes (`store_many`) as it begins."""
        store_many = pipeline.store.store_many

        async def counted(items: Any, **kwargs: Any) -> Any:
            async with self._writes:
                self.written += len(items)
                self._writes.notify_all()
            return await store_many(items, **kwargs)

        pipeline.store.store_many = counted  # type: ignore[method-assign]

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        async with self._turn:
            if self._keeping_up:
                try:
                    async with asyncio.timeout(KEEPING_UP), self._writes:
                        await self._writes.wait_for(lambda: self.written >= self.extracted)
                except TimeoutError:
                    self._keeping_up = False
            result = await super().run(fn, *args, timeout=timeout)
            if fn is extract_page:
                self.extracted += 1
            return result


def _no_delay(database_url: str, *, connections: int, backlog_bytes: int) -> Settings:
    """No host delay, `connections` requests at a time (all to one host if need be)."""
    return Settings(
        database_url=database_url,
        allow_private_networks=True,
        host_delay=0,
        max_connections=connections,
        per_host_connections=connections,
        worker_backlog_bytes=backlog_bytes,
    )


async def _burst(database_url: str, server: LocalServer, limit: int) -> list[int]:
    """FEEDS feeds polled at once by one slow worker: the backlog's bytes seen by each task."""
    settings = _no_delay(database_url, connections=4, backlog_bytes=limit)
    workers = SlowWorkers()
    async with _pipeline(settings, workers) as pipeline:
        workers.backlog = pipeline._backlog
        for n in range(FEEDS):
            await pipeline.store.add_feed(server.url(f"/feed/{n}"))
        summary = await pipeline.run()
    assert summary.new_articles == FEEDS
    assert workers.backlog.held == 0
    return workers.seen


@pytest.mark.integration
async def test_a_burst_the_workers_cannot_keep_up_with_stays_within_the_limit(
    database_url: str, server: LocalServer
) -> None:
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    for n in range(FEEDS):
        server.routes[f"/feed/{n}"] = static(_feed(server.base, n), "application/rss+xml")
        server.routes[f"/a/{n}"] = static(_page(n))
    feed_bytes = len(_feed(server.base, FEEDS).encode())
    limit = 2 * feed_bytes

    bounded = await _burst(database_url, server, limit)
    # The limit, plus what the 4 requests running when it was reached brought in.
    assert max(bounded) <= limit + 4 * feed_bytes

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ingest.articles, ingest.feeds CASCADE")
    unbounded = await _burst(database_url, server, 1 << 40)
    # Without it, every feed fetched waits in memory for the one worker.
    assert max(unbounded) > limit + 4 * feed_bytes


@pytest.mark.integration
async def test_page_bodies_count_and_page_requests_wait_for_room(
    database_url: str, server: LocalServer
) -> None:
    """One small feed listing 16 pages of about 20 KB, 8 requests at a time, one slow worker:
    every request (the feed's and each page's) asks for room first, and is let go only while
    the backlog is under its limit; the pages' bodies are what fills it."""
    padding = "<p>" + "The harbour committee met again on Tuesday evening. " * 400 + "</p>"
    _site(server, "/feed", [f"{server.base}/p/{n}" for n in range(16)])
    for n in range(16):
        server.routes[f"/p/{n}"] = static(_page(n).replace("</article>", padding + "</article>"))
    page_bytes = len(_page(0).replace("</article>", padding + "</article>").encode())
    limit = 3 * page_bytes
    settings = _no_delay(database_url, connections=8, backlog_bytes=limit)
    workers = SlowWorkers()
    let_go: list[int] = []
    async with _pipeline(settings, workers) as pipeline:
        backlog = workers.backlog = pipeline._backlog
        room = backlog.room

        async def noted_room() -> None:
            await room()
            let_go.append(backlog.held)

        backlog.room = noted_room  # type: ignore[method-assign]
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == 16
    assert len(let_go) == 1 + 16  # the feed and every page asked
    assert max(let_go) < limit
    assert max(workers.seen) >= 2 * page_bytes  # page bodies waiting for the worker count
    assert max(workers.seen) <= limit + 8 * page_bytes


@pytest.mark.integration
async def test_a_burst_is_stored_as_its_pages_come_in(database_url: str) -> None:
    """Eight feeds of three pages, each feed and its pages on a host of its own (two requests
    at a time to it), one slow worker whose tasks each start once the articles of the pages
    extracted before are in a write (`StoreBoundWorkers`): articles are stored as their pages
    are extracted, so the database works during the burst, not all at its end. Stored a feed
    at a time after its last page instead, each feed's third page (which waits for its host
    until one of the first two is fetched) queues behind every other feed's first two, and the
    stores all come at the end."""
    with contextlib.ExitStack() as stack:
        hosts = [stack.enter_context(LocalServer()) for _ in range(8)]
        for f, host in enumerate(hosts):
            _site(host, "/feed", [f"{host.base}/s/{n}" for n in range(3)])
            for n in range(3):
                host.routes[f"/s/{n}"] = static(_page(10 * f + n))
        settings = Settings(
            database_url=database_url,
            allow_private_networks=True,
            host_delay=0,
            max_connections=2,
            per_host_connections=2,
        )
        workers = StoreBoundWorkers()
        async with _pipeline(settings, workers) as pipeline:
            stored_after = _note_stores(pipeline, lambda: workers.tasks)
            workers.follow(pipeline)
            for host in hosts:
                await pipeline.store.add_feed(host.url("/feed"))
            summary = await pipeline.run()
    assert summary.new_articles == 24
    assert workers.tasks == 8 + 24  # every feed parsed, every page extracted
    # Four stores are done before two thirds of the work is (stored a feed at a time after
    # its last page, all eight came at the very end).
    assert sorted(stored_after)[3] <= 2 * workers.tasks // 3, stored_after


@pytest.mark.integration
async def test_a_feed_s_articles_are_stored_while_its_other_pages_wait_for_the_host(
    database_url: str, server: LocalServer
) -> None:
    """Six pages on one host, 0.2 s apart: the first articles are in the database before the
    last page is even requested, and a burst of pages that came in while a store ran goes in
    together (fewer transactions than pages)."""
    _site(server, "/feed", [f"{server.base}/s/{n}" for n in range(6)])
    for n in range(6):
        server.routes[f"/s/{n}"] = static(_page(n))
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0.2)
    async with _pipeline(settings, InlineWorkers(1)) as pipeline:
        pages_requested_at_store = _note_stores(
            pipeline, lambda: sum(1 for r in server.requests if r.path.startswith("/s/"))
        )
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == 6
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM news.articles").fetchone() == (6,)
    assert pages_requested_at_store[0] < 6, pages_requested_at_store
    assert 1 < len(pages_requested_at_store) <= 6


def _one_page_feeds(
    database_url: str, server: LocalServer, monkeypatch: pytest.MonkeyPatch, n: int
) -> Settings:
    """`n` feeds of one page each on `server`, the article writer lingering 3 s for company
    (their pages come in well within it, even on a slow machine): the pipeline's settings."""
    from ingest import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "ARTICLES_LINGER", 3.0)
    for f in range(n):
        _site(server, f"/feed{f}", [f"{server.base}/s/{f}"])
        server.routes[f"/s/{f}"] = static(_page(f))
    return Settings(database_url=database_url, allow_private_networks=True, host_delay=0)


@pytest.mark.integration
async def test_articles_of_several_feeds_are_written_together(
    database_url: str, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight feeds of one page each: their articles come in one at a time, and those that
    come in while the first waits for company (ARTICLES_LINGER, here 3 s) or while a write
    runs go in one transaction, each feed counting its own. The first write waits until every
    article is in, so that those a slow machine brings in after the 3 s come in while it
    runs."""
    settings = _one_page_feeds(database_url, server, monkeypatch, 8)
    async with _pipeline(settings, InlineWorkers(2)) as pipeline:
        written: list[int] = []
        store_many = pipeline.store.store_many

        async def noting(items: Any) -> Any:
            written.append(len(items))
            if len(written) == 1:  # the other articles queue up behind this write
                for _ in range(1000):
                    if len(items) + len(pipeline._articles._pending) == 8:
                        break
                    await asyncio.sleep(0.01)
            return await store_many(items)

        pipeline.store.store_many = noting  # type: ignore[method-assign]
        for f in range(8):
            await pipeline.store.add_feed(server.url(f"/feed{f}"))
        summary = await pipeline.run()
    assert (summary.feeds, summary.new_articles) == (8, 8)
    assert sum(written) == 8
    assert len(written) <= 2, written
    with psycopg.connect(database_url) as conn:
        per_feed = conn.execute(
            "SELECT count(*) FROM ingest.feed_entries WHERE article_id IS NOT NULL GROUP BY feed_id"
        ).fetchall()
    assert per_feed == [(1,)] * 8


@pytest.mark.integration
async def test_a_feed_whose_articles_fail_a_shared_write_fails_alone(database_url: str) -> None:
    """A group holds articles of two feeds, one of them removed meanwhile (its rows violate a
    foreign key, which the store cannot leave out row by row): the write is tried again feed
    by feed, the other feed's article is stored and only the removed feed's gets the error."""
    from ingest.errors import StoreError
    from tests.store.test_store import _article

    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    async with _pipeline(settings, InlineWorkers(1)) as pipeline:
        await pipeline.store.add_feed("https://kept.example/feed")
        await pipeline.store.add_feed("https://gone.example/feed")
        ids = {f["url"]: f["id"] for f in await pipeline.store.list_feeds()}
        kept, gone = ids["https://kept.example/feed"], ids["https://gone.example/feed"]
        assert await pipeline.store.remove_feed("https://gone.example/feed")
        outcomes = await pipeline._store_many(
            [
                (gone, _article("https://gone.example/a"), b"gone-a"),
                (kept, _article("https://kept.example/a"), b"kept-a"),
            ]
        )
    assert isinstance(outcomes[0], StoreError)
    assert outcomes[1] == StoredCounts(1, 0)
    with psycopg.connect(database_url) as conn:
        urls = [r[0] for r in conn.execute("SELECT url FROM news.articles")]
    assert urls == ["https://kept.example/a"]


@pytest.mark.integration
async def test_a_feed_whose_store_fails_in_a_shared_group_is_handed_back_alone(
    database_url: str, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two feeds' articles go in one group; the database refuses the second feed's rows
    (not for being unreachable): the first feed's article is stored and its poll recorded,
    the second feed is handed back, due again, and stores its article at the next run."""
    from ingest.errors import StoreError

    settings = _one_page_feeds(database_url, server, monkeypatch, 2)
    async with _pipeline(settings, InlineWorkers(2)) as pipeline:
        for f in range(2):
            await pipeline.store.add_feed(server.url(f"/feed{f}"))
        ids = {f["url"]: f["id"] for f in await pipeline.store.list_feeds()}
        refused = ids[server.url("/feed1")]
        store_many = pipeline.store.store_many
        groups: list[set[int]] = []
        failing = True

        async def refusing(items: Any) -> Any:
            feeds = {feed_id for feed_id, _, _ in items}
            groups.append(feeds)
            if failing and refused in feeds:
                raise StoreError("CheckViolation: new row violates a check constraint")
            return await store_many(items)

        pipeline.store.store_many = refusing  # type: ignore[method-assign]
        first = await pipeline.run()
        assert groups[0] == set(ids.values())  # one group for both feeds, then one each
        assert (first.feeds, first.ok, first.new_articles) == (1, 1, 1)
        failing = False
        second = await pipeline.run()
        assert (second.feeds, second.ok, second.new_articles) == (1, 1, 1)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM news.articles").fetchone() == (2,)


@pytest.mark.integration
async def test_a_poll_outcome_the_database_refuses_hands_back_only_its_feed(
    database_url: str, server: LocalServer
) -> None:
    """Three feeds with nothing new, their outcomes written in groups (the first write waits
    until every outcome is in, so that a group holds two or three). The database refuses the
    first group of several for one of its feeds (not for being unreachable): the others' polls
    are recorded all the same, written again one feed at a time; the refused feed is handed
    back, due again, and recorded at the next run."""
    from ingest.errors import StoreError

    for f in range(3):
        _site(server, f"/feed{f}", [])
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    async with _pipeline(settings, InlineWorkers(2)) as pipeline:
        for f in range(3):
            await pipeline.store.add_feed(server.url(f"/feed{f}"))
        feeds_succeeded = pipeline.store.feeds_succeeded
        groups: list[list[int]] = []
        refused: list[int] = []
        failing = True

        async def refusing(owner: str, updates: Any) -> None:
            ids = [u.feed_id for u in updates]
            groups.append(ids)
            if len(groups) == 1:  # the other outcomes queue up behind this write
                for _ in range(1000):
                    if len(ids) + len(pipeline._successes._pending) == 3:
                        break
                    await asyncio.sleep(0.01)
            if len(ids) > 1 and not refused:
                refused.append(min(ids))
            if failing and refused and refused[0] in ids:
                raise StoreError("CheckViolation: new row violates a check constraint")
            await feeds_succeeded(owner, updates)

        pipeline.store.feeds_succeeded = refusing  # type: ignore[method-assign]
        first = await pipeline.run()
        assert (first.feeds, first.ok) == (2, 2), groups
        (group,) = [g for g in groups if len(g) > 1]
        after = groups[groups.index(group) + 1 :]
        # Written again one feed at a time: the refused one fails again, the others are in.
        assert sorted(after[: len(group)]) == sorted([f] for f in group), groups
        failing = False
        second = await pipeline.run()
        assert (second.feeds, second.ok) == (1, 1)
        assert groups[-1] == refused
    with psycopg.connect(database_url) as conn:
        polled = conn.execute(
            "SELECT count(*) FROM ingest.feeds WHERE last_status = 'ok' AND lease_owner IS NULL"
        ).fetchone()
    assert polled == (3,)


@pytest.mark.integration
async def test_a_feed_whose_own_row_the_database_refuses_fails_with_backoff(
    database_url: str, server: LocalServer
) -> None:
    """The database refuses one feed's poll outcome for its values (a check constraint on the
    title it would record: the rows would be refused at every poll): that feed's poll is
    recorded as failing, with its error and a backoff, not handed back to be tried again at
    the next tick; the other feeds' outcomes are recorded."""
    for f in range(3):
        _site(server, f"/feed{f}", [])
    server.routes["/feed1"] = static(
        "<rss version='2.0'><channel><title>Refused</title></channel></rss>",
        "application/rss+xml",
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE ingest.feeds ADD CONSTRAINT feeds_title_test"
            " CHECK (title IS DISTINCT FROM 'Refused')"
        )
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    async with _pipeline(settings, InlineWorkers(2)) as pipeline:
        for f in range(3):
            await pipeline.store.add_feed(server.url(f"/feed{f}"))
        first = await pipeline.run()
        assert (first.feeds, first.ok, first.failed) == (3, 2, 1)
        again = await pipeline.run()  # nothing due: the refused feed waits out its backoff
        assert again.feeds == 0
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT url, last_status, last_error, next_fetch_at > now() + interval '1 minute',"
            " lease_owner FROM ingest.feeds ORDER BY id"
        ).fetchall()
    statuses = {
        url.rsplit("/", 1)[1]: (status, error, later, owner)
        for url, status, error, later, owner in rows
    }
    assert statuses["feed1"][0] == "error"
    assert "CheckViolation" in statuses["feed1"][1]
    assert statuses["feed1"][2] is True
    assert statuses["feed0"][0] == statuses["feed2"][0] == "ok"
    assert {s[3] for s in statuses.values()} == {None}


class GatedParses(InlineWorkers):
    """Feeds are parsed only once `gate` is set; everything else runs at once."""

    def __init__(self) -> None:
        super().__init__(2)
        self.gate = asyncio.Event()

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        if fn.__name__ == "parse_feed":
            await self.gate.wait()
        return await super().run(fn, *args, timeout=timeout)


@pytest.mark.integration
async def test_a_changed_feeds_robots_txt_is_asked_for_while_the_feed_waits_for_a_worker(
    database_url: str, server: LocalServer
) -> None:
    """A changed feed's host's robots.txt goes out as the feed comes in, not once the feed is
    parsed and its pages are planned: the host's delay before the first page runs meanwhile,
    however long the parse waits for a worker."""
    _site(server, "/feed", [f"{server.base}/a/0"])
    server.routes["/a/0"] = static(_page(0))
    workers = GatedParses()
    settings = _no_delay(database_url, connections=4, backlog_bytes=1 << 30)
    async with _pipeline(settings, workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        run = asyncio.ensure_future(pipeline.run())
        try:
            async with asyncio.timeout(10):
                while not any(r.path == "/robots.txt" for r in server.requests):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert not workers.gate.is_set()
            workers.gate.set()
            summary = await asyncio.wait_for(run, 10)
        finally:
            workers.gate.set()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        await pipeline.aclose()
    assert (summary.feeds, summary.new_articles) == (1, 1)
    assert [r.path for r in server.requests].count("/robots.txt") == 1
