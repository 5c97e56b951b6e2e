"""Scheduling state in PostgreSQL, driven through the real pipeline with a controlled clock:
adaptive intervals, server hints, giving up on and recovering feeds, permanent redirects,
validators, and one fetch per feed URL."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest import admin
from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline
from ingest.store import Store
from ingest.store.db import make_pool
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.pipelines import article_page
from tests.support.workers import InlineWorkers

pytestmark = pytest.mark.integration

# The pipeline's clock starts at the real time, and the tests move it ahead: claims compare due
# times with the database's now(), which does not move. A clock behind the database's counts
# its delays from the database's (sql/queries.sql): START is reset as each test starts, not
# once for a run whose later tests start minutes after it.
START = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _start_now() -> None:
    global START
    START = datetime.now(UTC).replace(microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def rss(base: str, dates: list[datetime], extra: str = "") -> str:
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/story/{n}</link><guid>s{n}</guid>"
        f"<description>Summary of story {n}.</description>"
        f"<pubDate>{format_datetime(d)}</pubDate></item>"
        for n, d in enumerate(dates)
    )
    return f"<rss version='2.0'><channel><title>T</title>{extra}{items}</channel></rss>"


@pytest.fixture
def server(server: LocalServer) -> LocalServer:
    """The loopback server, with a robots.txt that allows everything."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    return server


@pytest.fixture
async def env(
    database_url: str, inline_workers: InlineWorkers
) -> AsyncIterator[tuple[Pipeline, Clock, Store]]:
    """A pipeline on a fresh database with a clock of the test's own; its tasks run in process
    (nothing here is about worker processes)."""
    settings = Settings(
        database_url=database_url,
        allow_private_networks=True,
        host_delay=0,
        deactivate_after_failures=3,
        deactivate_after=2 * 86400,
    )
    pool = make_pool(database_url)
    await pool.open(wait=True)
    clock = Clock()
    try:
        async with Fetcher(settings) as fetcher:
            store = Store(pool)
            yield (
                Pipeline(
                    settings, store, fetcher, inline_workers, clock=clock, rng=random.Random(1)
                ),
                clock,
                store,
            )
    finally:
        await pool.close()


def feed_rows(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM news.feeds ORDER BY id").fetchall()


def make_due(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE ingest.feeds SET next_fetch_at = now() - interval '1 second'")


def advance(clock: Clock, database_url: str, to: datetime) -> None:
    """Let time pass until `to`, on the pipeline's clock and on the database's as the feeds'
    rows read it: the times their streaks began (recorded by the database's clock, which does
    not move) are moved back by as much."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET failing_since = failing_since - %(d)s,"
            " not_found_since = not_found_since - %(d)s, redirect_since = redirect_since - %(d)s",
            {"d": to - clock.now},
        )
    clock.now = to


def ago(database_url: str, column: str) -> timedelta:
    """How long ago, by the database's clock, the one feed's `column` of ingest.feeds was."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"SELECT now() - {column} FROM ingest.feeds").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def due_after_poll(database_url: str) -> timedelta:
    """How long after its last poll the one feed is due, both by the database's clock (the
    pipeline's clock, which the tests move ahead, counts only the delay it decides)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT next_fetch_at - polled_at FROM ingest.feeds").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_hourly_feed_polled_more_often_than_weekly(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """The next fetch follows each feed's publishing rate: half an hour for an hourly feed, the
    24 h ceiling for a weekly one; the observed interval is visible in news.feeds."""
    pipeline, _clock, store = env
    hourly = [START - HOUR * i for i in range(10)]
    weekly = [START - timedelta(days=7) * i for i in range(5)]
    server.routes["/hourly"] = static(rss(server.base, hourly), "application/rss+xml")
    server.routes["/weekly"] = static(
        rss(server.base, weekly).replace("/story/", "/w/"), "application/rss+xml"
    )
    await store.add_feed(server.url("/hourly"))
    await store.add_feed(server.url("/weekly"))
    await pipeline.run()
    rows = {r["url"]: r for r in feed_rows(database_url)}
    fast, slow = rows[server.url("/hourly")], rows[server.url("/weekly")]
    assert fast["publish_interval"] == HOUR
    assert timedelta(minutes=27) <= fast["next_fetch_at"] - START <= timedelta(minutes=33)
    assert slow["publish_interval"] == timedelta(days=7)
    assert timedelta(hours=21.6) <= slow["next_fetch_at"] - START <= timedelta(hours=26.4)


@pytest.mark.anyio
async def test_server_hints_lengthen_the_interval(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """Cache-Control max-age and RSS <ttl> longer than the adaptive interval are honoured;
    an absurd max-age is capped at the maximum interval."""
    pipeline, _clock, store = env
    hourly = [START - HOUR * i for i in range(10)]

    def with_headers(body: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
        def handle(req: Request) -> Response:
            return Response(200, body.encode(), {"Content-Type": "application/rss+xml", **headers})

        return handle

    server.routes["/max-age"] = with_headers(
        rss(server.base, hourly), {"Cache-Control": "max-age=7200"}
    )
    server.routes["/ttl"] = static(
        rss(server.base, hourly, "<ttl>180</ttl>").replace("/story/", "/t/"), "application/rss+xml"
    )
    server.routes["/absurd"] = with_headers(
        rss(server.base, hourly).replace("/story/", "/a/"), {"Cache-Control": "max-age=31536000"}
    )
    for path in ("/max-age", "/ttl", "/absurd"):
        await store.add_feed(server.url(path))
    await pipeline.run()
    due = {r["url"]: r["next_fetch_at"] - START for r in feed_rows(database_url)}
    assert 2 * HOUR * 0.9 <= due[server.url("/max-age")] <= 2 * HOUR * 1.1
    assert 3 * HOUR * 0.9 <= due[server.url("/ttl")] <= 3 * HOUR * 1.1
    assert due[server.url("/absurd")] <= timedelta(hours=24) * 1.1


SY = "xmlns:sy='http://purl.org/rss/1.0/modules/syndication/'"
EVERY_HOUR = "".join(f"<hour>{h}</hour>" for h in range(24))
EVERY_DAY = "".join(
    f"<day>{d}</day>"
    for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
)
HOSTILE_HINTS: dict[str, tuple[str, dict[str, str]]] = {
    # The feed's own fields (feed document markup, headers).
    "ttl-zero": ("<ttl>0</ttl>", {}),
    "ttl-negative": ("<ttl>-60</ttl>", {}),
    "ttl-not-a-number": ("<ttl>hourly</ttl>", {}),
    "ttl-20-digits": ("<ttl>" + "9" * 20 + "</ttl>", {}),
    "sy-a-billion-a-day": (
        f"<sy:updatePeriod {SY}>daily</sy:updatePeriod>"
        f"<sy:updateFrequency {SY}>999999999</sy:updateFrequency>",
        {},
    ),
    "sy-an-unknown-period": (
        f"<sy:updatePeriod {SY}>fortnightly</sy:updatePeriod>"
        f"<sy:updateFrequency {SY}>-3</sy:updateFrequency>",
        {},
    ),
    "skip-every-hour-and-day": (
        f"<skipHours>{EVERY_HOUR}</skipHours><skipDays>{EVERY_DAY}</skipDays>",
        {},
    ),
    # The server's headers.
    "max-age-zero": ("", {"Cache-Control": "max-age=0"}),
    "max-age-negative": ("", {"Cache-Control": "max-age=-3600"}),
    "max-age-twice": ("", {"Cache-Control": "max-age=300, max-age=86400"}),
    "age-beyond-max-age": ("", {"Cache-Control": "max-age=3600", "Age": "999999"}),
    "expires-past": ("", {"Expires": "Thu, 01 Jan 2015 00:00:00 GMT"}),
    "expires-unparsable": ("", {"Expires": "tomorrow"}),
    "retry-after-on-a-200": ("", {"Retry-After": "86400"}),
    # Asking for more than the maximum.
    "ttl-a-billion-minutes": ("<ttl>999999999</ttl>", {}),
    "sy-yearly": (f"<sy:updatePeriod {SY}>yearly</sy:updatePeriod>", {}),
    "max-age-huge": ("", {"Cache-Control": "max-age=999999999999"}),
    "expires-year-9999": ("", {"Expires": "Fri, 31 Dec 9999 23:59:59 GMT"}),
}
LONG_HINTS = ("ttl-a-billion-minutes", "sy-yearly", "max-age-huge", "expires-year-9999")


@pytest.mark.anyio
async def test_hostile_hints_keep_a_feed_between_the_minimum_and_maximum_intervals(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed publishing every minute, its document or server saying odd things about when
    to come back: a `<ttl>` of 0, negative, 20 digits or not a number, `sy:updateFrequency`
    of a billion a day or negative, `skipHours`/`skipDays` naming every hour and day (not
    read: no feed is left unpolled by them), `max-age` of 0, negative or given twice, an `Age`
    beyond its `max-age`, an `Expires` past or unparsable, a `Retry-After` on a 200 (no
    refusal: none is waited out). Each is polled again after INGEST_MIN_INTERVAL (jittered up
    to 10 % over it), never sooner; and a `<ttl>`, `sy:updatePeriod`, `max-age` or `Expires`
    asking for years, after at most INGEST_MAX_INTERVAL."""
    pipeline, _clock, store = env
    every_minute = [START - timedelta(minutes=i) for i in range(5)]
    for name, (extra, headers) in HOSTILE_HINTS.items():
        body = rss(server.base, every_minute, extra).replace("/story/", f"/{name}/")
        server.routes[f"/{name}"] = Response(
            200, body.encode(), {"Content-Type": "application/rss+xml", **headers}
        )
        await store.add_feed(server.url(f"/{name}"))
    summary = await pipeline.run()
    assert summary.ok == len(HOSTILE_HINTS)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        due = {
            r["url"]: r["delay"]
            for r in conn.execute(
                "SELECT url, next_fetch_at - polled_at AS delay FROM ingest.feeds"
            )
        }
    policy = pipeline.policy
    for name in HOSTILE_HINTS:
        delay = due[server.url(f"/{name}")]
        if name in LONG_HINTS:
            low, high = policy.max_interval * 0.9, policy.max_interval
        else:
            low, high = policy.min_interval, policy.min_interval * 1.1
        assert low <= delay <= high, (name, delay)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param("Thu, 01 Jan 2015 00:00:00 GMT", 300, id="a-date-past"),
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", 3600, id="a-date-far-ahead"),
        pytest.param("-600", 300, id="negative-seconds"),
        pytest.param("0", 300, id="zero"),
        pytest.param("9" * 30, 3600, id="30-digits"),
    ],
)
async def test_a_failure_s_hostile_retry_after_keeps_it_between_the_bounds(
    env, server: LocalServer, database_url: str, retry_after: str, expected: int
) -> None:  # type: ignore[no-untyped-def]
    """A first failure (503) with a Retry-After in the past, of zero or negative seconds
    waits INGEST_MIN_INTERVAL, its backoff; one in the year 9999 or of 30 digits waits
    INGEST_MAX_RETRY_AFTER (an hour), no longer."""
    pipeline, _clock, store = env
    server.routes["/f"] = Response(
        503, b"down", {"Retry-After": retry_after, "Content-Type": "text/plain"}
    )
    await store.add_feed(server.url("/f"))
    summary = await pipeline.run()
    assert summary.failed == 1
    assert due_after_poll(database_url) == timedelta(seconds=expected)


@pytest.mark.anyio
async def test_failing_feed_is_given_up_then_recovers(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """After the configured failures over the configured time the feed turns inactive with the
    reason in news.feeds, is still probed at the slowest rate, and a success brings it back."""
    pipeline, clock, store = env
    server.routes["/flaky"] = Response(503, b"down", {"Content-Type": "text/plain"})
    await store.add_feed(server.url("/flaky"))
    for step in range(4):
        advance(clock, database_url, START + timedelta(days=1) * step)
        make_due(database_url)
        await pipeline.run()
    row = feed_rows(database_url)[0]
    assert row["consecutive_failures"] == 4
    assert row["active"] is False
    assert "503" in row["inactive_reason"]
    assert ago(database_url, "failing_since") // HOUR == 3 * 24
    # Probed at the slowest rate: about a day later, not on the backoff schedule.
    assert timedelta(hours=21) <= due_after_poll(database_url) <= timedelta(hours=24)
    # `--all` does not poll it, but it is polled when due, and recovers on success.
    await pipeline.run(all_feeds=True)
    assert len(server.hits("/flaky")) == 4
    server.routes["/flaky"] = static(rss(server.base, [START]), "application/rss+xml")
    advance(clock, database_url, clock.now + timedelta(days=1))
    make_due(database_url)
    await pipeline.run()
    row = feed_rows(database_url)[0]
    assert (row["active"], row["inactive_reason"], row["failing_since"]) == (True, None, None)
    assert row["consecutive_failures"] == 0
    assert row["last_status"] == "ok"


@pytest.mark.anyio
async def test_a_burst_of_failures_backs_off_then_the_feed_is_polled_at_its_own_rate(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """An hourly feed failing five times in a row waits INGEST_MIN_INTERVAL, then twice as long
    at each failure (jittered down by half at most, never below the minimum), still active;
    its first success ends the streak and polls it every half hour again, its own rate, not
    at the backoff it had reached."""
    pipeline, clock, store = env
    hourly = [START - HOUR * i for i in range(10)]
    server.routes["/f"] = Response(503, b"down", {"Content-Type": "text/plain"})
    await store.add_feed(server.url("/f"))
    for n in range(1, 6):
        advance(clock, database_url, START + timedelta(minutes=10) * n)
        make_due(database_url)
        await pipeline.run()
        step = timedelta(minutes=5) * 2 ** (n - 1)
        assert max(step / 2, timedelta(minutes=5)) <= due_after_poll(database_url) <= step
        row = feed_rows(database_url)[0]
        assert (row["consecutive_failures"], row["active"]) == (n, True)
    server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml")
    make_due(database_url)
    await pipeline.run()
    row = feed_rows(database_url)[0]
    assert (row["consecutive_failures"], row["failing_since"], row["last_status"]) == (
        0,
        None,
        "ok",
    )
    assert timedelta(minutes=27) <= due_after_poll(database_url) <= timedelta(minutes=33)


@pytest.mark.anyio
async def test_a_feed_given_up_on_that_then_answers_410_is_recorded_gone(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed given up on after its 503s, probed at the slowest rate, that then answers 410:
    news.feeds.inactive_reason says it is gone, the latest cause, not the 503s it was given up
    for; it stays inactive and probed once a day."""
    pipeline, clock, store = env
    server.routes["/f"] = Response(503, b"down", {"Content-Type": "text/plain"})
    await store.add_feed(server.url("/f"))
    for step in range(4):
        advance(clock, database_url, START + timedelta(days=1) * step)
        make_due(database_url)
        await pipeline.run()
    (row,) = feed_rows(database_url)
    assert row["inactive_reason"].startswith("gave up after 3 failures")
    server.routes["/f"] = Response(410, b"gone", {"Content-Type": "text/plain"})
    advance(clock, database_url, clock.now + timedelta(days=1))
    make_due(database_url)
    await pipeline.run()
    (row,) = feed_rows(database_url)
    assert row["active"] is False
    assert row["inactive_reason"].startswith("gone: the feed answers HTTP 410")
    assert timedelta(hours=21) <= due_after_poll(database_url) <= timedelta(hours=24)


async def _answer(
    pipeline: Pipeline,
    clock: Clock,
    server: LocalServer,
    database_url: str,
    at: timedelta,
    route: Any,
    *,
    elapse: bool = True,
) -> dict[str, Any]:
    """Poll the feed at /f at START + `at`, answering with `route`; its news.feeds row. With
    `elapse` false, only the pipeline's clock moves (a replica's clock off the database's)."""
    server.routes["/f"] = route
    if elapse:
        advance(clock, database_url, START + at)
    else:
        clock.now = START + at
    make_due(database_url)
    await pipeline.run()
    (row,) = feed_rows(database_url)
    return row


NOT_FOUND = Response(404, b"not found", {"Content-Type": "text/plain"})
DOWN = Response(503, b"down", {"Content-Type": "text/plain"})


@pytest.mark.anyio
async def test_a_feed_is_gone_after_404s_in_a_row_not_after_other_failures(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed that answered before, then 503s for seven hours, then one 404: still active,
    the first 404 of a streak (news.feeds.consecutive_not_found, not_found_since) that the
    next poll reads. A 503 ends the streak; a new one of three 404s over six hours gives the
    feed up as gone, saying how many 404s."""
    pipeline, clock, store = env
    await store.add_feed(server.url("/f"))
    feed = static(rss(server.base, [START]), "application/rss+xml")
    server.routes["/story/0"] = static(article_page("Story 0"))
    row = await _answer(pipeline, clock, server, database_url, timedelta(0), feed)
    assert row["last_status"] == "ok"
    for hours in (1, 4, 8):
        row = await _answer(pipeline, clock, server, database_url, HOUR * hours, DOWN)
    assert (row["active"], row["consecutive_failures"]) == (True, 3)
    row = await _answer(pipeline, clock, server, database_url, HOUR * 9, NOT_FOUND)
    assert (row["active"], row["inactive_reason"]) == (True, None)
    assert (row["consecutive_not_found"], ago(database_url, "not_found_since") // HOUR) == (1, 0)
    row = await _answer(pipeline, clock, server, database_url, HOUR * 12, NOT_FOUND)
    assert (row["consecutive_not_found"], ago(database_url, "not_found_since") // HOUR) == (2, 3)
    row = await _answer(pipeline, clock, server, database_url, HOUR * 13, DOWN)
    assert (row["consecutive_not_found"], row["not_found_since"]) == (0, None)
    for hours in (14, 17):
        row = await _answer(pipeline, clock, server, database_url, HOUR * hours, NOT_FOUND)
        assert row["active"] is True
    row = await _answer(pipeline, clock, server, database_url, HOUR * 20, NOT_FOUND)
    assert row["active"] is False
    assert row["inactive_reason"].startswith("gone: the feed answers HTTP 404 (3 times in a row")
    assert row["consecutive_failures"] == 9


@pytest.mark.anyio
async def test_a_wall_clock_stepped_during_a_poll_does_not_lengthen_the_feed_s_streaks(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed 404 since four hours (its second 404 three hours ago), polled while the
    machine's wall clock is stepped two hours ahead (NTP setting a clock that was behind,
    between the claim and the answer): its third 404 ends a streak of four hours, not six, and
    it stays active; it is gone once the streak has lasted six hours."""
    pipeline, clock, store = env
    await store.add_feed(server.url("/f"))
    server.routes["/story/0"] = static(article_page("Story 0"))
    feed = static(rss(server.base, [START]), "application/rss+xml")
    await _answer(pipeline, clock, server, database_url, timedelta(0), feed)
    for hours in (1, 2):
        await _answer(pipeline, clock, server, database_url, HOUR * hours, NOT_FOUND)

    def stepped(route: Response):  # type: ignore[no-untyped-def]
        def handle(_: Request) -> Response:
            clock.now += 2 * HOUR  # the wall clock, stepped while the feed is fetched
            return route

        return handle

    row = await _answer(pipeline, clock, server, database_url, HOUR * 5, stepped(NOT_FOUND))
    assert (row["active"], row["consecutive_not_found"]) == (True, 3)
    row = await _answer(pipeline, clock, server, database_url, HOUR * 9, NOT_FOUND)
    assert (row["active"], row["consecutive_not_found"]) == (False, 4)


@pytest.mark.anyio
async def test_a_feed_whose_redirect_leads_to_a_404_says_where_the_404_came_from(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed that answered before, whose URL then redirects (301) to an address that answers
    404: its error, and once its 404s give it up, its reason name the address that answered,
    which the feed's own URL does not (it answers 301), so that the operator can tell a move
    gone wrong from a feed removed; a failure at the feed's own URL names none."""
    pipeline, clock, store = env
    await store.add_feed(server.url("/f"))
    server.routes["/story/0"] = static(article_page("Story 0"))
    feed = static(rss(server.base, [START]), "application/rss+xml")
    await _answer(pipeline, clock, server, database_url, timedelta(0), feed)
    server.routes["/moved"] = NOT_FOUND
    moved = Response(301, b"", {"Location": "/moved"})
    for hours in (1, 4, 8):
        row = await _answer(pipeline, clock, server, database_url, HOUR * hours, moved)
    assert row["last_error"] == f"HTTP 404 Not Found (from {server.url('/moved')})"
    assert row["active"] is False
    assert row["inactive_reason"].startswith("gone: the feed answers HTTP 404 (3 times in a row)")
    assert row["inactive_reason"].endswith(f"(from {server.url('/moved')})")
    row = await _answer(pipeline, clock, server, database_url, HOUR * 32, NOT_FOUND)
    assert row["last_error"] == "HTTP 404 Not Found"


@pytest.mark.anyio
async def test_a_feed_whose_last_poll_kept_no_validators_is_gone_after_its_404s(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed without a title (a news sitemap has none) whose last successful poll left an
    entry waiting for another try at its page (503), so that it kept neither validators nor
    body hash, then three 404s over six hours: it has answered before, and is given up on as
    gone, not asked for two days more as a URL that never answered."""
    pipeline, clock, store = env
    await store.add_feed(server.url("/f"))
    server.routes["/story/0"] = DOWN
    untitled = rss(server.base, [START]).replace("<title>T</title>", "")
    feed = static(untitled, "application/rss+xml", etag='"v1"')
    row = await _answer(pipeline, clock, server, database_url, timedelta(0), feed)
    assert (row["last_status"], row["title"]) == ("ok", None)
    for hours in (1, 4, 8):
        row = await _answer(pipeline, clock, server, database_url, HOUR * hours, NOT_FOUND)
    assert row["active"] is False
    assert row["inactive_reason"].startswith("gone: the feed answers HTTP 404 (3 times in a row)")


@pytest.mark.anyio
async def test_a_success_or_enable_ends_a_404_streak(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """Two 404s, a success, two 404s more: a streak of two, not four; `ingest feeds enable`
    forgets the streak with the feed's failures."""
    pipeline, clock, store = env
    await store.add_feed(server.url("/f"))
    feed = static(rss(server.base, [START]), "application/rss+xml")
    server.routes["/story/0"] = static(article_page("Story 0"))
    await _answer(pipeline, clock, server, database_url, timedelta(0), feed)
    for hours in (1, 4):
        row = await _answer(pipeline, clock, server, database_url, HOUR * hours, NOT_FOUND)
    assert row["consecutive_not_found"] == 2
    row = await _answer(pipeline, clock, server, database_url, HOUR * 5, feed)
    assert (row["consecutive_not_found"], row["not_found_since"]) == (0, None)
    for hours in (6, 12):
        row = await _answer(pipeline, clock, server, database_url, HOUR * hours, NOT_FOUND)
    assert (row["active"], row["consecutive_not_found"]) == (True, 2)
    assert await store.enable_feed(server.url("/f"))
    (row,) = feed_rows(database_url)
    assert (row["consecutive_not_found"], row["not_found_since"]) == (0, None)
    row = await _answer(pipeline, clock, server, database_url, HOUR * 13, NOT_FOUND)
    assert (row["active"], row["consecutive_not_found"]) == (True, 1)


@pytest.mark.anyio
async def test_a_gone_feed_polled_at_least_every_10_minutes_is_probed_once_a_day(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed set to `max_interval=10m` that answers 410 Gone is given up on and probed once a
    day, as every feed given up on is, instead of asked every 10 minutes for ever."""
    pipeline, _clock, store = env
    server.routes["/f"] = Response(410, b"gone", {"Content-Type": "text/plain"})
    await store.add_feed(server.url("/f"))
    await store.set_feed_settings(server.url("/f"), {"max_interval": 600}, {}, None)
    await pipeline.run()
    (row,) = feed_rows(database_url)
    assert row["active"] is False
    assert timedelta(hours=21) <= row["next_fetch_at"] - START <= timedelta(hours=24)
    assert row["inactive_reason"].startswith("gone: the feed answers HTTP 410 (1 failure in")


@pytest.mark.anyio
async def test_a_web_page_given_up_for_its_feeds_is_probed_once_a_day(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A web page registered as a feed, given up on for the feed it links (registered
    instead): probed once a day, as every feed given up on is, not polled again minutes later
    on a first failure's backoff (each poll fetching the page and looking for its feeds)."""
    pipeline, _clock, store = env
    server.routes["/"] = static(
        "<html><head><title>Harbour Times</title>"
        '<link rel="alternate" type="application/rss+xml" title="News" href="/feed.xml">'
        "</head><body><p>Welcome</p></body></html>"
    )
    server.routes["/feed.xml"] = static(rss(server.base, [START]), "application/rss+xml")
    server.routes["/story/0"] = static(article_page("Story 0"))
    await store.add_feed(server.url("/"))
    await pipeline.run()
    page = next(r for r in feed_rows(database_url) if r["url"] == server.url("/"))
    assert page["active"] is False
    assert page["inactive_reason"].startswith("a web page, not a feed: replaced by")
    assert timedelta(hours=21) <= page["next_fetch_at"] - START <= timedelta(hours=24)


@pytest.mark.anyio
@pytest.mark.parametrize("change", ["disable", "remove"])
async def test_a_web_page_paused_or_removed_while_polled_registers_no_feed(
    env, server: LocalServer, database_url: str, change: str
) -> None:  # type: ignore[no-untyped-def]
    """A web page registered as a feed, paused (`feeds disable`) or removed while its poll
    looks for the feeds it links: the poll lost its lease, and registers none of them; the
    page stays as the operator left it."""
    pipeline, _clock, store = env
    arrived, answer = threading.Event(), threading.Event()
    body = rss(server.base, [START])

    def slow_feed(_: Request) -> Response:
        arrived.set()
        answer.wait(30)
        return Response(200, body.encode(), {"Content-Type": "application/rss+xml"})

    server.routes["/"] = static(
        "<html><head><title>Harbour Times</title>"
        '<link rel="alternate" type="application/rss+xml" title="News" href="/feed.xml">'
        "</head><body><p>Welcome</p></body></html>"
    )
    server.routes["/feed.xml"] = slow_feed
    url = server.url("/")
    await store.add_feed(url)
    run = asyncio.ensure_future(pipeline.run())
    try:
        assert await asyncio.to_thread(arrived.wait, 30)
        if change == "disable":
            assert await store.disable_feed(url, "paused by the operator")
        else:
            assert await store.remove_feed(url)
    finally:
        answer.set()
        await asyncio.wait_for(run, 30)
    feeds = [(r["url"], r["active"], r["inactive_reason"]) for r in feed_rows(database_url)]
    assert feeds == ([(url, False, "paused by the operator")] if change == "disable" else [])


@pytest.mark.anyio
async def test_permanent_redirect_moves_feed_after_a_day(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A 301 seen on 3 consecutive fetches over a day updates the stored URL; a 302 never does."""
    pipeline, clock, store = env
    body = rss(server.base, [START])
    server.routes["/old"] = Response(301, b"", {"Location": "/new"})
    server.routes["/new"] = static(body, "application/rss+xml")
    server.routes["/temp"] = Response(302, b"", {"Location": "/new2"})
    server.routes["/new2"] = static(body.replace("/story/", "/other/"), "application/rss+xml")
    await store.add_feed(server.url("/old"))
    await store.add_feed(server.url("/temp"))
    urls = []
    for step in range(4):
        advance(clock, database_url, START + timedelta(hours=12) * step)
        await pipeline.run(all_feeds=True)
        urls.append(sorted(r["url"] for r in feed_rows(database_url)))
    old, new, temp = server.url("/old"), server.url("/new"), server.url("/temp")
    assert urls[:2] == [sorted([old, temp])] * 2  # seen twice, or not a day yet
    assert urls[2] == sorted([new, temp])  # third time, a day after the first
    assert urls[3] == sorted([new, temp])
    assert len(server.hits("/old")) == 3


@pytest.mark.anyio
async def test_permanent_redirect_onto_existing_feed_merges(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """When the redirect target is already a registered feed, the two become one: the old row
    goes and its articles now belong to the feed that has the URL."""
    pipeline, clock, store = env
    server.routes["/new"] = static(rss(server.base, [START]), "application/rss+xml")
    await store.add_feed(server.url("/old"))
    server.routes["/old"] = static(
        rss(server.base, [START - HOUR]).replace("/story/", "/old-story/").replace(">s0<", ">o0<"),
        "application/rss+xml",
    )
    await pipeline.run(all_feeds=True)  # the old URL still serves its own feed once
    await store.add_feed(server.url("/new"))
    server.routes["/old"] = Response(308, b"", {"Location": "/new"})
    for step in range(1, 4):
        advance(clock, database_url, START + timedelta(hours=12) * step)
        await pipeline.run(all_feeds=True)
    rows = feed_rows(database_url)
    assert [r["url"] for r in rows] == [server.url("/new")]
    with psycopg.connect(database_url) as conn:
        owners = conn.execute("SELECT DISTINCT feed_id FROM ingest.articles").fetchall()
        entries = conn.execute("SELECT count(*) FROM ingest.feed_entries").fetchone()
    assert owners == [(rows[0]["id"],)]
    assert entries == (2,)


@pytest.mark.anyio
async def test_changed_etag_with_same_body_stores_new_validators(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A server that changes its ETag but not its body: nothing is parsed again, and the next
    conditional request carries the new ETag."""
    pipeline, _clock, store = env
    body = rss(server.base, [START])
    server.routes["/f"] = static(body, "application/rss+xml", etag='"a"')
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    server.routes["/f"] = static(body, "application/rss+xml", etag='"b"')
    summary = await pipeline.run(all_feeds=True)
    assert summary.not_modified == 1
    await pipeline.run(all_feeds=True)
    assert [r.headers.get("if-none-match") for r in server.hits("/f")] == [None, '"a"', '"b"']
    assert [r.path for r in server.requests if r.path.startswith("/story/")] == ["/story/0"]


@pytest.mark.anyio
async def test_one_fetch_per_feed_url_however_it_is_spelled(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """The same feed registered under several spellings of its URL is one feed, fetched once."""
    pipeline, _clock, store = env
    from ingest.normalize import canonical_url

    server.routes["/feed?a=1&b=2"] = static(rss(server.base, [START]), "application/rss+xml")
    spellings = [
        server.url("/feed?a=1&b=2"),
        server.url("/feed?b=2&a=1#top"),
        server.url("/feed?a=1&b=2&utm_source=newsletter").replace("http://", "HTTP://"),
    ]
    added = [await store.add_feed(canonical_url(u)) for u in spellings]
    assert added == [True, False, False]
    await asyncio.gather(pipeline.run(), pipeline.run())
    assert len(server.hits("/feed?a=1&b=2")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", ["ok", "429"])
async def test_a_replica_whose_clock_is_behind_the_database_s_does_not_poll_again_at_once(
    env, server: LocalServer, database_url: str, outcome: str
) -> None:  # type: ignore[no-untyped-def]
    """A process whose clock runs an hour behind the database's: the feed's next poll is still
    its interval (or the server's Retry-After) after the poll, by the clock claims compare
    with, not already past, so the next tick does not poll it again."""
    pipeline, clock, store = env
    clock.now = START - HOUR
    if outcome == "ok":
        hourly = [clock.now - HOUR * i for i in range(10)]
        server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml")
    else:
        server.routes["/f"] = Response(429, b"slow down", {"Retry-After": "1200"})
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    await pipeline.run()
    assert len(server.hits("/f")) == 1
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT next_fetch_at - now() FROM ingest.feeds WHERE url = %s", [server.url("/f")]
        ).fetchone()
    assert row is not None
    assert row[0] >= timedelta(minutes=19)


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", ["ok", "429"])
async def test_a_replica_whose_clock_is_ahead_of_the_database_s_polls_its_feeds_on_time(
    env, server: LocalServer, database_url: str, outcome: str
) -> None:  # type: ignore[no-untyped-def]
    """A process whose clock runs six hours ahead of the database's: the feed's next poll is
    its interval (or the server's Retry-After) after the poll by the clock claims compare
    with, not six hours later besides, as if every replica's clock were that replica's."""
    pipeline, clock, store = env
    clock.now = START + 6 * HOUR
    if outcome == "ok":
        hourly = [clock.now - HOUR * i for i in range(10)]
        server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml")
        low, high = timedelta(minutes=26), timedelta(minutes=34)
    else:
        server.routes["/f"] = Response(429, b"slow down", {"Retry-After": "1200"})
        low, high = timedelta(minutes=19), timedelta(minutes=21)
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT next_fetch_at - now() FROM ingest.feeds WHERE url = %s", [server.url("/f")]
        ).fetchone()
    assert row is not None
    assert low <= row[0] <= high


@pytest.mark.anyio
@pytest.mark.parametrize("skew", [6 * HOUR, -HOUR], ids=["ahead", "behind"])
async def test_a_feed_s_last_and_next_fetch_are_on_one_clock_whatever_the_replica_s(
    env, server: LocalServer, database_url: str, skew: timedelta
) -> None:  # type: ignore[no-untyped-def]
    """news.feeds' last and next fetch of a feed polled by a replica whose clock is off the
    database's are both by the database's clock: the interval between them, which `feeds
    show` prints, is the poll's interval (about 30 minutes for an hourly feed), not that
    less the replica's skew (negative, for a replica six hours ahead)."""
    pipeline, clock, store = env
    clock.now = START + skew
    hourly = [clock.now - HOUR * i for i in range(10)]
    server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml")
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    (row,) = feed_rows(database_url)
    interval = row["next_fetch_at"] - row["last_fetched_at"]
    assert timedelta(minutes=26) <= interval <= timedelta(minutes=34)


@pytest.mark.anyio
@pytest.mark.parametrize("streak", ["failures", "404s", "redirect"])
@pytest.mark.parametrize("ahead", ["first", "later"])
async def test_a_streak_is_timed_by_the_database_s_clock_whatever_the_replica_s(
    env, server: LocalServer, database_url: str, streak: str, ahead: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed's streak (of failures, of 404s, of one permanent redirect) polled minutes apart by
    a replica on time and one whose clock runs three days ahead, in either order: the time it
    began is recorded by the database's clock, and it has lasted minutes: the feed is neither
    given up on (two days of failures, six hours of 404s) nor moved (a day of redirects)."""
    pipeline, clock, store = env
    await store.add_feed(server.url("/f"))
    feed = static(rss(server.base, [START]), "application/rss+xml")
    server.routes["/story/0"] = static(article_page("Story 0"))
    server.routes["/moved"] = feed
    await _answer(pipeline, clock, server, database_url, timedelta(0), feed)
    route = {
        "failures": DOWN,
        "404s": NOT_FOUND,
        "redirect": Response(301, b"", {"Location": "/moved"}),
    }[streak]
    column = {"failures": "failing_since", "404s": "not_found_since"}.get(streak, "redirect_since")
    skews = [timedelta(days=3), timedelta(0), timedelta(0)]
    with psycopg.connect(database_url) as conn:
        began = conn.execute("SELECT now()").fetchone()
    for skew in skews if ahead == "first" else skews[::-1]:
        await _answer(pipeline, clock, server, database_url, skew, route, elapse=False)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        row = conn.execute(
            f"SELECT url, active, {column} AS since, now() AS polled FROM ingest.feeds"
        ).fetchone()
    assert began is not None
    assert row is not None
    assert (row["url"], row["active"]) == (server.url("/f"), True)
    assert began[0] <= row["since"] <= row["polled"]


@pytest.mark.anyio
async def test_a_feed_gone_quiet_slows_down_on_its_304s(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """An hourly feed polled every half hour that then says nothing new for three days, and
    answers its conditional requests with 304: polled once a day, as the time since its newest
    entry asks, not every half hour for as long as it is quiet."""
    pipeline, clock, store = env
    hourly = [START - HOUR * i for i in range(10)]
    server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml", etag='"1"')
    for n in range(10):
        server.routes[f"/story/{n}"] = static(article_page(f"Story {n}"))
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    (row,) = feed_rows(database_url)
    assert timedelta(minutes=27) <= row["next_fetch_at"] - START <= timedelta(minutes=33)
    clock.now = START + timedelta(days=3)
    make_due(database_url)
    assert (await pipeline.run()).not_modified == 1
    (row,) = feed_rows(database_url)
    assert due_after_poll(database_url) >= timedelta(hours=21)


@pytest.mark.anyio
async def test_a_feed_s_304s_poll_it_at_the_rate_its_last_parse_found(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """An hourly feed whose entries then lose their dates: the parse finds no publishing
    history (the default interval), and records none, so that its 304s days later poll it at
    that same rate, instead of slowing down by an interval and a newest entry of a document
    it no longer serves."""
    pipeline, clock, store = env
    hourly = [START - HOUR * i for i in range(10)]
    server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml", etag='"1"')
    for n in range(10):
        server.routes[f"/story/{n}"] = static(article_page(f"Story {n}"))
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    assert feed_rows(database_url)[0]["publish_interval"] == HOUR
    undated = rss(server.base, hourly).replace("<pubDate>", "<!--").replace("</pubDate>", "-->")
    server.routes["/f"] = static(undated, "application/rss+xml", etag='"2"')
    clock.now = START + HOUR
    make_due(database_url)
    assert (await pipeline.run()).ok == 1
    (row,) = feed_rows(database_url)
    assert row["publish_interval"] is None
    assert timedelta(minutes=27) <= due_after_poll(database_url) <= timedelta(minutes=33)
    clock.now = START + timedelta(days=3)
    make_due(database_url)
    assert (await pipeline.run()).not_modified == 1
    (row,) = feed_rows(database_url)
    assert timedelta(minutes=27) <= due_after_poll(database_url) <= timedelta(minutes=33)


@pytest.mark.anyio
async def test_a_feed_without_its_newest_entry_s_date_is_read_again_and_slows_down(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """An hourly feed recorded before the date of its newest entry was kept (sql/0024), which
    has said nothing new for three days and answers 304: its next request goes without
    validators, the feed is read and polled once a day from then on, instead of every half
    hour for as long as it answers 304."""
    pipeline, clock, store = env
    hourly = [START - HOUR * i for i in range(10)]
    server.routes["/f"] = static(rss(server.base, hourly), "application/rss+xml", etag='"1"')
    for n in range(10):
        server.routes[f"/story/{n}"] = static(article_page(f"Story {n}"))
    await store.add_feed(server.url("/f"))
    await pipeline.run()
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE ingest.feeds SET newest_entry_at = NULL")
    clock.now = START + timedelta(days=3)
    make_due(database_url)
    assert (await pipeline.run()).not_modified == 1
    clock.now += HOUR
    make_due(database_url)
    assert (await pipeline.run()).ok == 1
    assert [r.headers.get("if-none-match") for r in server.hits("/f")] == [None, '"1"', None]
    assert due_after_poll(database_url) >= timedelta(hours=21)


@pytest.mark.anyio
@pytest.mark.parametrize("state", ["given-up", "about-to-give-up", "backing-off"])
async def test_a_feed_enabled_while_its_poll_fails_stays_enabled(
    env, server: LocalServer, database_url: str, state: str
) -> None:  # type: ignore[no-untyped-def]
    """`ingest feeds enable` while a poll of the feed is in flight, which then fails: the
    failure is recorded as the first of an active feed (backoff of a first failure, active, no
    reason), not decided on the feed as it was claimed: given up on (polled again a day
    later), one failure short of giving up (given up on again at once), or deep in its
    backoff (hours later)."""
    pipeline, _clock, store = env
    arrived, answer = threading.Event(), threading.Event()

    def slow_failure(_: Request) -> Response:
        arrived.set()
        answer.wait(30)
        return Response(503, b"down", {"Content-Type": "text/plain"})

    server.routes["/f"] = slow_failure
    url = server.url("/f")
    await store.add_feed(url)
    active, failures = {
        "given-up": (False, 4),
        "about-to-give-up": (True, 2),
        "backing-off": (True, 1),
    }[state]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET active = %s, consecutive_failures = %s,"
            " failing_since = %s, inactive_reason = CASE WHEN %s THEN NULL ELSE 'gave up' END,"
            " next_fetch_at = now() - interval '1 second'",
            [active, failures, START - timedelta(days=3), active],
        )
    run = asyncio.ensure_future(pipeline.run())
    try:
        assert await asyncio.to_thread(arrived.wait, 30)
        assert await store.enable_feed(url)
    finally:
        answer.set()
        summary = await run
    assert summary.failed == 1
    row = feed_rows(database_url)[0]
    assert (row["active"], row["inactive_reason"]) == (True, None)
    assert row["consecutive_failures"] == 1
    with psycopg.connect(database_url) as conn:
        polled = conn.execute("SELECT polled_at FROM ingest.feeds").fetchone()
    assert polled is not None
    assert row["failing_since"] == polled[0]
    assert "503" in row["last_error"]
    with psycopg.connect(database_url) as conn:
        delay = conn.execute("SELECT next_fetch_at - polled_at FROM ingest.feeds").fetchone()
    # A first failure waits INGEST_MIN_INTERVAL (300 s); a second one, 5 to 10 minutes.
    assert delay is not None
    assert delay[0] == timedelta(seconds=300)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503])
async def test_a_retry_after_on_one_feed_holds_the_host_s_other_feeds_for_every_replica(
    server: LocalServer,
    second_server: LocalServer,
    database_url: str,
    inline_workers: InlineWorkers,
    status: int,
) -> None:
    """One feed of a host answers 429 (or 503) with `Retry-After: 1200`: the host's other feeds
    due before then are not polled before then either, by this process or any other (their
    next fetch, which every replica's claims read, is moved to it); another host's feed, a
    paused feed and a feed due later are left as they were (was: each other feed of the host
    was polled at once into the same refusal, by this process after a hold of at most
    INGEST_MAX_CRAWL_DELAY, by another replica with none)."""
    server.routes["/busy"] = Response(status, b"slow down", {"Retry-After": "1200"})
    for path in ("/other", "/later", "/paused"):
        server.routes[path] = static(rss(server.base, [START]), "application/rss+xml")
    second_server.routes["/elsewhere"] = static(
        rss(second_server.base, [START]), "application/rss+xml"
    )
    urls = {
        name: host.url(f"/{name}")
        for host, names in (
            (server, ("busy", "other", "later", "paused")),
            (second_server, ("elsewhere",)),
        )
        for name in names
    }
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        store = Store(pool)
        for url in urls.values():
            await store.add_feed(url)
        await store.disable_feed(urls["paused"], "paused by the operator")
        with psycopg.connect(database_url) as conn:
            for name, due in (
                ("busy", "-2 minutes"),
                ("other", "-1 minute"),
                ("elsewhere", "-1 minute"),
                ("later", "+2 hours"),
            ):
                conn.execute(
                    "UPDATE ingest.feeds SET next_fetch_at = now() + %s::interval WHERE url = %s",
                    [due, urls[name]],
                )
        # One feed at a time, earliest due first: the busy feed's outcome is recorded before
        # the next claim.
        settings = Settings(
            database_url=database_url,
            allow_private_networks=True,
            host_delay=0,
            concurrent_feeds=1,
            feeds_per_tick=1,
            # The process's own hold fails a request of the held host at once, unsent: the
            # held feeds' `polled_at` tells that the database's hold kept them unclaimed.
            max_crawl_delay=0,
        )
        async with Fetcher(settings) as fetcher:
            for _replica in range(2):
                pipeline = Pipeline(settings, store, fetcher, inline_workers, rng=random.Random(1))
                await pipeline.run()
    finally:
        await pool.close()
    assert len(server.hits("/busy")) == 1
    assert server.hits("/other") == []
    assert len(second_server.hits("/elsewhere")) == 1
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        due = {
            r["url"]: r["due_in"]
            for r in conn.execute("SELECT url, next_fetch_at - now() AS due_in FROM ingest.feeds")
        }
    assert timedelta(minutes=19) <= due[urls["other"]] <= timedelta(minutes=20)
    assert _never_polled(database_url) == {urls["other"], urls["later"], urls["paused"]}
    assert timedelta(hours=1, minutes=59) <= due[urls["later"]] <= timedelta(hours=2)
    assert due[urls["paused"]] > timedelta(days=365)
    assert due[urls["elsewhere"]] > timedelta(minutes=20)


def _retry_afters() -> dict[str, str]:
    month = format_datetime(datetime.now(UTC) + timedelta(days=30), usegmt=True)
    return {"a-day": "86400", "a-month-ahead": month, "huge": "9" * 20}


@pytest.mark.anyio
@pytest.mark.parametrize("asked", list(_retry_afters()))
async def test_a_long_retry_after_holds_a_feed_and_its_host_for_max_retry_after(
    server: LocalServer, database_url: str, inline_workers: InlineWorkers, asked: str
) -> None:
    """A feed answering 503 with a Retry-After of a day, an HTTP-date a month ahead or 20
    digits holds the feed, its host's other feeds (in the database, for every replica) and the
    host itself (`ingest.host_holds`, past the run) for INGEST_MAX_RETRY_AFTER, an hour by
    default, and no more (was: for INGEST_MAX_INTERVAL, a day: a site whose error page carries
    `Retry-After: 86400` went unread for a day, every feed of it). Both feeds say until when
    they are held: `news.feeds.held_until`, `ingest feeds list` and `feeds show` (was: a next
    fetch a day ahead, nothing said why)."""
    server.routes["/busy"] = Response(503, b"maintenance", {"Retry-After": _retry_afters()[asked]})
    server.routes["/other"] = static(rss(server.base, [START]), "application/rss+xml")
    busy, other = server.url("/busy"), server.url("/other")
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        store = Store(pool)
        for url in (busy, other):
            await store.add_feed(url)
        with psycopg.connect(database_url) as conn:
            for url, due in ((busy, "-2 minutes"), (other, "-1 minute")):
                conn.execute(
                    "UPDATE ingest.feeds SET next_fetch_at = now() + %s::interval WHERE url = %s",
                    [due, url],
                )
        settings = Settings(
            database_url=database_url,
            allow_private_networks=True,
            host_delay=0,
            concurrent_feeds=1,
            feeds_per_tick=1,
            max_crawl_delay=0,
        )
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(settings, store, fetcher, inline_workers, rng=random.Random(1))
            summary = await pipeline.run()
        listed = [admin.feed_line(row) for row in await store.list_feeds()]
        shown = admin.feed_details(await store.feed_details(other) or {})
    finally:
        await pool.close()
    assert all("its host's Retry-After" in line for line in listed), listed
    assert any(line.startswith("held until") and "Z" in line for line in shown), shown
    assert summary.failed == 1
    assert len(server.hits("/busy")) == 1
    assert server.hits("/other") == []
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT f.url, f.next_fetch_at - f.polled_at AS waits,"
            " f.next_fetch_at - now() AS due_in, n.held_until - now() AS held_for"
            " FROM ingest.feeds f JOIN news.feeds n USING (id)"
        ).fetchall()
        (hold,) = conn.execute("SELECT held_until - now() AS left FROM ingest.host_holds")
    waits = {r["url"]: r for r in rows}
    assert waits[busy]["waits"] == HOUR
    assert timedelta(minutes=59) <= waits[other]["due_in"] <= HOUR
    assert timedelta(minutes=59) <= hold["left"] <= HOUR
    for url in (busy, other):
        assert timedelta(minutes=59) <= waits[url]["held_for"] <= HOUR


@pytest.mark.anyio
async def test_a_feed_held_by_its_host_s_retry_after_is_not_a_failed_poll(
    server: LocalServer, database_url: str, inline_workers: InlineWorkers
) -> None:
    """Two feeds of a host are in flight together; the first answers 429 with `Retry-After:
    1200` while the second waits out the host's delay, whose request is then never sent: the
    second is due again when the hold ends, its lease released, and its failure state (a
    failure in a row that is a 404, its error) left as it was, counted as held by the pass
    (was: recorded as one more failed poll, failures + 1 and `last_error` "held: ...", its
    404 streak ended by a request the host never saw)."""
    server.routes["/busy"] = Response(429, b"slow down", {"Retry-After": "1200"})
    server.routes["/other"] = static(rss(server.base, [START]), "application/rss+xml")
    busy, other = server.url("/busy"), server.url("/other")
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        store = Store(pool)
        for url in (busy, other):
            await store.add_feed(url)
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "UPDATE ingest.feeds SET next_fetch_at = now() - interval '2 minutes'"
                " WHERE url = %s",
                [busy],
            )
            conn.execute(
                "UPDATE ingest.feeds SET next_fetch_at = now() - interval '1 minute',"
                " consecutive_failures = 1, failing_since = now() - interval '1 hour',"
                " consecutive_not_found = 1, not_found_since = now() - interval '1 hour',"
                " last_status = 'error', last_error = 'HTTP 404', title = 'Other'"
                " WHERE url = %s",
                [other],
            )
            before = conn.execute(
                "SELECT consecutive_failures, failing_since, consecutive_not_found,"
                " not_found_since, last_status, last_error, last_fetched_at, active"
                " FROM ingest.feeds WHERE url = %s",
                [other],
            ).fetchone()
        settings = Settings(
            database_url=database_url,
            allow_private_networks=True,
            # The second feed's request waits out the host's delay behind the first's, and the
            # hold then fails it at once, unsent.
            host_delay=1,
            concurrent_feeds=2,
            feeds_per_tick=2,
            max_crawl_delay=0,
        )
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(settings, store, fetcher, inline_workers, rng=random.Random(1))
            summary = await pipeline.run()
    finally:
        await pool.close()
    assert len(server.hits("/busy")) == 1
    assert server.hits("/other") == []
    assert (summary.feeds, summary.failed, summary.held) == (2, 1, 1)
    assert [o.status for o in summary.outcomes if o.status != "error"] == ["held"]
    with psycopg.connect(database_url) as conn:
        after = conn.execute(
            "SELECT consecutive_failures, failing_since, consecutive_not_found,"
            " not_found_since, last_status, last_error, last_fetched_at, active"
            " FROM ingest.feeds WHERE url = %s",
            [other],
        ).fetchone()
        held = conn.execute(
            "SELECT next_fetch_at - now(), lease_owner FROM ingest.feeds WHERE url = %s",
            [other],
        ).fetchone()
    assert after == before
    assert held is not None
    assert held[1] is None
    assert timedelta(minutes=19) <= held[0] <= timedelta(minutes=20)


@pytest.mark.anyio
async def test_a_retry_after_given_twice_is_honoured(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A feed answering 503 with two Retry-After lines (the application's `600` and a proxy's
    `3600`, which arrive joined, `600, 3600`): not polled for an hour, the longest wait asked
    for, nor its host's other feeds, instead of the Retry-After ignored as invalid and the
    feed asked again minutes later into the same outage."""
    pipeline, _clock, store = env
    server.routes["/f"] = Response(
        503, b"down", {"Retry-After": "600", "retry-after": "3600", "Content-Type": "text/plain"}
    )
    server.routes["/g"] = static(rss(server.base, [START]), "application/rss+xml")
    await store.add_feed(server.url("/f"))
    await store.add_feed(server.url("/g"))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET next_fetch_at = now()"
            " + CASE WHEN url = %s THEN interval '-1 minute' ELSE interval '1 minute' END",
            [server.url("/f")],
        )
    await pipeline.run()
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        due = {
            r["url"]: r["due_in"]
            for r in conn.execute("SELECT url, next_fetch_at - now() AS due_in FROM ingest.feeds")
        }
    assert timedelta(minutes=59) <= due[server.url("/f")] <= HOUR
    assert timedelta(minutes=59) <= due[server.url("/g")] <= HOUR


@pytest.mark.anyio
async def test_a_retry_after_after_a_redirect_holds_the_host_that_refused(
    server: LocalServer,
    second_server: LocalServer,
    database_url: str,
    inline_workers: InlineWorkers,
) -> None:
    """A feed of one host redirects to another, which answers 429 with `Retry-After: 1200`:
    the host that refused is held (its other feeds due then), not the host the feed is
    registered at, whose other feeds are polled as they are due (was: the registered host's
    feeds held 20 minutes, the refusing host's polled at once into the same refusal)."""
    server.routes["/moved"] = Response(302, b"", {"Location": second_server.url("/busy")})
    second_server.routes["/busy"] = Response(429, b"slow down", {"Retry-After": "1200"})
    server.routes["/mine"] = static(rss(server.base, [START]), "application/rss+xml")
    second_server.routes["/theirs"] = static(
        rss(second_server.base, [START]), "application/rss+xml"
    )
    urls = {
        "moved": server.url("/moved"),
        "mine": server.url("/mine"),
        "theirs": second_server.url("/theirs"),
    }
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        store = Store(pool)
        for url in urls.values():
            await store.add_feed(url)
        with psycopg.connect(database_url) as conn:
            for name, due in (
                ("moved", "-2 minutes"),
                ("mine", "-1 minute"),
                ("theirs", "-1 minute"),
            ):
                conn.execute(
                    "UPDATE ingest.feeds SET next_fetch_at = now() + %s::interval WHERE url = %s",
                    [due, urls[name]],
                )
        settings = Settings(
            database_url=database_url,
            allow_private_networks=True,
            host_delay=0,
            concurrent_feeds=1,
            feeds_per_tick=1,
            # The process's own hold fails a request of the held host at once, unsent: the
            # held feeds' `polled_at` tells that the database's hold kept them unclaimed.
            max_crawl_delay=0,
        )
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(settings, store, fetcher, inline_workers, rng=random.Random(1))
            await pipeline.run()
    finally:
        await pool.close()
    assert len(second_server.hits("/busy")) == 1
    assert second_server.hits("/theirs") == []
    assert len(server.hits("/mine")) == 1
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        due = {
            r["url"]: r["due_in"]
            for r in conn.execute("SELECT url, next_fetch_at - now() AS due_in FROM ingest.feeds")
        }
    assert timedelta(minutes=19) <= due[urls["theirs"]] <= timedelta(minutes=20)
    assert _never_polled(database_url) == {urls["theirs"]}


def _never_polled(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {r[0] for r in conn.execute("SELECT url FROM ingest.feeds WHERE polled_at IS NULL")}


@pytest.mark.anyio
async def test_a_retry_after_from_an_internationalized_host_holds_its_other_feeds(
    server: LocalServer, database_url: str, inline_workers: InlineWorkers
) -> None:
    """A feed of a host with an internationalized name (registered, as every feed URL is, in
    its Unicode spelling) answers 429 with `Retry-After: 1200`: the host's other feed is held
    (was: the hold read the host from the response's URL as the request spelled it, in
    punycode, which no registered feed's host is, and held none)."""
    from tests.support.network import public_fetcher

    server.routes["/busy"] = Response(429, b"slow down", {"Retry-After": "1200"})
    server.routes["/other"] = static(rss(server.base, [START]), "application/rss+xml")
    host = "münchen.example"
    urls = {name: f"http://{host}:{server.port}/{name}" for name in ("busy", "other")}
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        store = Store(pool)
        for url in urls.values():
            await store.add_feed(url)
        with psycopg.connect(database_url) as conn:
            for name, due in (("busy", "-2 minutes"), ("other", "-1 minute")):
                conn.execute(
                    "UPDATE ingest.feeds SET next_fetch_at = now() + %s::interval WHERE url = %s",
                    [due, urls[name]],
                )
        settings = Settings(
            database_url=database_url,
            host_delay=0,
            concurrent_feeds=1,
            feeds_per_tick=1,
            max_crawl_delay=0,
        )
        async with public_fetcher(settings, {"xn--mnchen-3ya.example": ["127.0.0.1"]}) as f:
            pipeline = Pipeline(settings, store, f, inline_workers, rng=random.Random(1))
            await pipeline.run()
    finally:
        await pool.close()
    assert len(server.hits("/busy")) == 1
    assert server.hits("/other") == []
    assert _never_polled(database_url) == {urls["other"]}


@pytest.mark.anyio
async def test_a_304_to_a_request_without_validators_is_a_failure_of_the_feed(
    env, server: LocalServer, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    """A server (a cache in front of it, serving a 304 it stored) that answers 304 to a request
    carrying neither If-None-Match nor If-Modified-Since has said nothing about the feed: the
    poll fails, saying so, and backs off, rather than being recorded as "not modified" while
    not one entry of the feed has ever been read. Once it answers with the feed, the feed is
    read."""
    pipeline, _clock, store = env
    server.routes["/f"] = Response(304, b"", {"ETag": '"cached"'})
    await store.add_feed(server.url("/f"))
    summary = await pipeline.run()
    assert (summary.failed, summary.not_modified) == (1, 0)
    (row,) = feed_rows(database_url)
    assert row["last_status"] == "error"
    assert "304" in row["last_error"]
    assert "validators" in row["last_error"]
    assert row["consecutive_failures"] == 1
    (sent,) = server.hits("/f")
    assert "if-none-match" not in sent.headers
    server.routes["/f"] = static(rss(server.base, [START]), "application/rss+xml", etag='"1"')
    server.routes["/story/0"] = static(article_page("Story 0"))
    make_due(database_url)
    summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, 1)
