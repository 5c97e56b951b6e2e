"""Full-text feeds end to end, in process against the real PostgreSQL and a local HTTP server:
a feed whose entries carry the whole article stops costing page fetches once that is proven,
stores the feed's text, is re-checked one entry in twenty, and a feed whose entries carry only
part of the story keeps having its pages fetched."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

import ingest.article
import ingest.fulltext
import ingest.pipeline
from ingest.article import OTHER_PAGE
from ingest.config import Settings
from ingest.errors import WorkerCrashed
from ingest.fetch import Fetcher
from ingest.fulltext import CONFIRM, MISSES
from ingest.neardup import Fingerprint
from ingest.normalize import clean_text
from ingest.pipeline import Pipeline
from ingest.store import Store
from ingest.store.db import make_pool
from ingest.workers.tasks import own_texts
from tests.support.httpserver import LocalServer, Response, static
from tests.support.pipelines import CONSENT_WALL, fail_first
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime.now(UTC).replace(microsecond=0)
RSS = "application/rss+xml"


def paragraphs(n: int) -> list[str]:
    return [
        f"Story {n}, part {k}: the council of district {n} agreed on Tuesday to rebuild the "
        f"footbridge number {k} over the canal, after residents waited {k + n} years for it."
        for k in range(6)
    ]


def article_page(n: int) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs(n))
    return (
        f"<html><head><title>Story {n}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>Story {n}</h1>{body}</article>"
        "<aside class='related'><a href='/x'>Other story</a></aside></body></html>"
    )


def feed(base: str, numbers: range, *, parts: int = 6) -> str:
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/a/{n}</link><guid>{base}/a/{n}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
        "<description>A teaser.</description><content:encoded><![CDATA["
        + "".join(f"<p>{p}</p>" for p in paragraphs(n)[:parts])
        + "]]></content:encoded></item>"
        for n in numbers
    )
    return (
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<channel><title>T</title>{items}</channel></rss>"
    )


@pytest.fixture
def site(server: LocalServer) -> LocalServer:
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    for n in range(40):
        server.routes[f"/a/{n}"] = static(article_page(n))
    return server


@pytest.fixture
async def pipeline(database_url: str, inline_workers: InlineWorkers) -> AsyncIterator[Pipeline]:
    settings = Settings(database_url=database_url, allow_private_networks=True, host_delay=0)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    fetcher = Fetcher(settings)
    yield Pipeline(settings, Store(pool), fetcher, inline_workers, rng=random.Random(0))
    await fetcher.aclose()
    await pool.close()


def rows(database_url: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def page_hits(site: LocalServer) -> int:
    return sum(1 for r in site.requests if r.path.startswith("/a/"))


async def test_a_full_text_feed_stops_costing_page_fetches(
    database_url: str, site: LocalServer, pipeline: Pipeline, inline_workers: InlineWorkers
) -> None:
    site.routes["/feed"] = static(feed(site.base, range(12)), "application/rss+xml")
    await pipeline.store.add_feed(site.url("/feed"))
    summary = await pipeline.run()
    assert summary.new_articles == 12
    assert page_hits(site) == 3  # the entries that proved it; the other nine from the feed
    assert summary.from_feed == 9
    # The feed parsed, its entries' own texts measured together, three pages extracted: the
    # texts' words, language and fingerprint are worked out in a worker, not on the loop.
    assert inline_workers.tasks == 1 + 1 + 3
    (state,) = rows(database_url, "SELECT full_text, full_text_evidence FROM news.feeds")
    assert state["full_text"] is True
    assert "the article" in state["full_text_evidence"]
    stored = rows(
        database_url, "SELECT url, text, text_source, extraction_error FROM news.articles"
    )
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        expected = clean_text("\n\n".join(paragraphs(n)))  # the feed's text, normalized
        assert row["text"] == expected
        assert row["text_source"] == "feed"
        assert row["extraction_error"] is None

    # The next poll: 25 new entries, one of which is the one-in-twenty re-check.
    site.routes["/feed"] = static(feed(site.base, range(37)), "application/rss+xml")
    before = page_hits(site)
    await pipeline.run(all_feeds=True)
    assert page_hits(site) - before == 1
    assert len(rows(database_url, "SELECT id FROM news.articles")) == 37


async def test_a_feed_with_part_of_the_story_keeps_fetching_pages(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    site.routes["/feed"] = static(feed(site.base, range(8), parts=3), "application/rss+xml")
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    assert page_hits(site) == 8
    (state,) = rows(database_url, "SELECT full_text, full_text_evidence FROM news.feeds")
    assert state["full_text"] is False
    assert "not the article" in state["full_text_evidence"]
    sources = {
        r["text_source"] for r in rows(database_url, "SELECT text_source FROM news.articles")
    }
    assert sources == {"page"}


async def test_the_operator_can_fix_the_mode(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    site.routes["/feed"] = static(feed(site.base, range(4)), "application/rss+xml")
    await pipeline.store.add_feed(site.url("/feed"))
    assert await pipeline.store.set_text_mode(site.url("/feed"), "page")
    await pipeline.run()
    assert page_hits(site) == 4
    sources = {
        r["text_source"] for r in rows(database_url, "SELECT text_source FROM news.articles")
    }
    assert sources == {"page"}
    assert not await pipeline.store.set_text_mode(site.url("/nope"), "feed")


async def test_text_the_extraction_missed_but_the_page_shows_does_not_hold_a_feed_back(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    # The pages show the last two paragraphs of each story in a box the extraction drops as
    # furniture; the feed's entries carry all six. The feed is still the article.
    for n in range(12):
        first, last = paragraphs(n)[:4], paragraphs(n)[4:]
        site.routes[f"/a/{n}"] = static(
            f"<html><head><title>Story {n}</title></head><body><article><h1>Story {n}</h1>"
            + "".join(f"<p>{p}</p>" for p in first)
            + "</article><aside class='related sidebar'>"
            + "".join(f"<p>{p}</p>" for p in last)
            + "</aside></body></html>"
        )
    site.routes["/feed"] = static(feed(site.base, range(12)), "application/rss+xml")
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text, full_text_evidence FROM news.feeds")
    assert "page 100%" in state["full_text_evidence"]
    assert state["full_text"] is True
    assert page_hits(site) == 3
    stored = rows(database_url, "SELECT url, text FROM news.articles")
    assert len(stored) == 12
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        if row["text"] != clean_text("\n\n".join(paragraphs(n))):
            # Only the three compared entries may hold the page's (shorter) extraction.
            assert row["text"] == clean_text("\n\n".join(paragraphs(n)[:4]))


def excerpt_feed(base: str, full: range, cut: range) -> str:
    """Entries of `full` carry the article; those of `cut` half of it, ending "[…]"."""
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/a/{n}</link><guid>{base}/a/{n}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
        "<content:encoded><![CDATA["
        + (
            "".join(f"<p>{p}</p>" for p in paragraphs(n))
            if n in full
            else "".join(f"<p>{p}</p>" for p in paragraphs(n)[:3]) + "<p>[…]</p>"
        )
        + "]]></content:encoded></item>"
        for n in [*full, *cut]
    )
    return (
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<channel><title>T</title>{items}</channel></rss>"
    )


async def test_excerpts_in_a_full_text_feed_are_fetched_and_prove_nothing(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed whose next two entries are excerpts ("[…]"): their pages are
    fetched and their text is the page's, and the feed stays full-text (an excerpt says
    nothing about whether the feed's other entries are the article)."""
    site.routes["/feed"] = static(excerpt_feed(site.base, range(6), range(0)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    assert page_hits(site) == 3
    site.routes["/feed"] = static(excerpt_feed(site.base, range(6), range(6, 8)), RSS)
    await pipeline.run(all_feeds=True)
    assert page_hits(site) == 3 + 2
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    cut = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/a/[67]$'")
    assert [r["text_source"] for r in cut] == ["page", "page"]
    assert all("[…]" not in r["text"] for r in cut)


async def test_the_operator_s_feed_mode_takes_excerpts_as_they_are(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    site.routes["/feed"] = static(excerpt_feed(site.base, range(0), range(4)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    assert await pipeline.store.set_text_mode(site.url("/feed"), "feed")
    await pipeline.run()
    assert page_hits(site) == 0
    stored = rows(database_url, "SELECT text_source FROM news.articles")
    assert {r["text_source"] for r in stored} == {"feed"}


WEATHER = (
    "The weather office expects rain over the canal district for the rest of the week, with "
    "winds from the west and temperatures falling below ten degrees at night, it said. Ferries "
    "on the outer line keep to their winter timetable until March."
)


FERRIES = (
    "Ferry notice: from Monday the boats of the inner line call at the north pier only every "
    "half hour, while the landing stage at the market is rebuilt, and tickets bought on board "
    "cost a euro more than those from the machines on the quay, the operator said."
)


def page_with(n: int, paras: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paras)
    return (
        f"<html><head><title>Story {n}</title></head><body>"
        f"<article><h1>Story {n}</h1>{body}</article></body></html>"
    )


async def test_a_failed_comparison_in_a_feed_proven_in_the_same_poll_keeps_the_feed_s_text(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Story 1's page carries a weather note the extraction keeps: its comparison fails (the
    feed's text holds 79% of the page), but the text stands for the article, which says
    nothing either way while the feed is probed: one more entry is fetched, and once the feed
    is proven full-text story 1 is stored from the feed's text, not the page's."""
    site.routes["/a/1"] = static(page_with(1, [*paragraphs(1), WEATHER]))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    assert page_hits(site) == 4
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is True
    assert state["full_text_streak"] == 3  # 0, 2 and 3 (1 failed, and stands)
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    assert len(stored) == 12
    assert {r["text_source"] for r in stored} == {"feed"}
    (one,) = (r for r in stored if r["url"].endswith("/a/1"))
    assert one["text"] == clean_text("\n\n".join(paragraphs(1)))
    assert "weather" not in one["text"]


async def never_proven(
    database_url: str, site: LocalServer, pipeline: Pipeline, pages: dict[int, str]
) -> list[dict[str, Any]]:
    """A feed of the stories of `pages` (number: page), run once: it is never proven
    full-text, and every entry is stored from its page. The articles' rows (url, text,
    text_source)."""
    for n, html in pages.items():
        site.routes[f"/a/{n}"] = static(html)
    site.routes["/feed"] = static(feed(site.base, range(len(pages))), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is False
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    assert [r["text_source"] for r in stored] == ["page"] * len(pages)
    return stored


async def test_a_feed_not_proven_stores_the_page_where_its_comparison_failed(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Every page carries the weather note: no comparison holds, the feed is never proven,
    and each entry is stored from its page."""
    pages = {n: page_with(n, [*paragraphs(n), WEATHER]) for n in range(6)}
    stored = await never_proven(database_url, site, pipeline, pages)
    assert all("weather" in r["text"] for r in stored)


async def test_an_article_ending_in_an_ellipsis_is_the_feed_s_where_its_page_ends_alike(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed's next entry ends "…" as its page does: the page is fetched
    (it looks like an excerpt), the text is the feed's, and the feed's state does not move;
    an excerpt ending "[…]" beside it is stored from its page."""
    site.routes["/feed"] = static(feed(site.base, range(6)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (before,) = rows(database_url, "SELECT full_text_streak, full_text_evidence FROM ingest.feeds")
    trailing = [*paragraphs(6)[:-1], paragraphs(6)[-1] + " And then…"]
    site.routes["/a/6"] = static(page_with(6, trailing))
    full = feed(site.base, range(6)).replace("</channel>", "")
    item = (
        f"<item><title>Story 6</title><link>{site.base}/a/6</link><guid>{site.base}/a/6</guid>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><content:encoded><![CDATA["
        + "".join(f"<p>{p}</p>" for p in trailing)
        + "]]></content:encoded></item>"
    )
    excerpt = excerpt_feed(site.base, range(0), range(7, 8)).split("<channel><title>T</title>")[1]
    site.routes["/feed"] = static(full + item + excerpt, RSS)
    hits = page_hits(site)
    measured: dict[str, object] = {}
    run = pipeline.workers.run

    async def recording(fn: Any, *args: Any, timeout: float) -> Any:
        if fn.__name__ == "extract_page":  # (body, url, feed_text)
            measured[args[1].rsplit("/", 1)[1]] = args[2]
        return await run(fn, *args, timeout=timeout)

    pipeline.workers.run = recording  # type: ignore[method-assign]
    await pipeline.run(all_feeds=True)
    assert page_hits(site) == hits + 2
    # Both compared in the worker, against the extraction only: an excerpt is not measured
    # against the page's whole text (`ingest.workers.tasks.extract_page`).
    assert sorted(measured) == ["6", "7"]
    assert all(measured.values())
    (after,) = rows(database_url, "SELECT full_text_streak, full_text_evidence FROM ingest.feeds")
    assert after == before
    stored = {
        r["url"].rsplit("/", 1)[1]: r
        for r in rows(database_url, "SELECT url, text, text_source FROM news.articles")
    }
    assert stored["6"]["text_source"] == "feed"
    assert stored["6"]["text"] == clean_text("\n\n".join(trailing))
    assert stored["7"]["text_source"] == "page"


async def test_a_failed_re_check_keeps_the_feed_s_text_but_not_the_second_in_a_row(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven feed's one-in-twenty re-check (22, the poll's last new entry) lands on a page
    with the weather note: the failure leaves the feed full-text and its entry is stored from
    the feed's text, and the feed's next entry (23, at the next poll) is compared too. Its page
    has the note as well: the second miss in a row switches the feed back, and that entry is
    stored from its page. (A poll with entries after the miss compares the next of them: see
    the test of entries after a failed re-check, below.)"""
    for n in (22, 23):
        site.routes[f"/a/{n}"] = static(page_with(n, [*paragraphs(n), WEATHER]))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    for last, recheck in ((23, 22), (24, 23)):
        site.routes["/feed"] = static(feed(site.base, range(last)), RSS)
        before = {r.path for r in site.requests}
        await pipeline.run(all_feeds=True)
        assert {r.path for r in site.requests} - before == {f"/a/{recheck}"}
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is False
    assert state["full_text_streak"] == -2
    stored = {
        r["url"].rsplit("/", 1)[1]: r
        for r in rows(database_url, "SELECT url, text, text_source FROM news.articles")
    }
    assert len(stored) == 24
    assert stored["22"]["text_source"] == "feed"
    assert stored["22"]["text"] == clean_text("\n\n".join(paragraphs(22)))
    assert stored["23"]["text_source"] == "page"
    assert "weather" in stored["23"]["text"]
    # Back in page mode: every new entry's page is fetched again.
    site.routes["/feed"] = static(feed(site.base, range(26)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/24", "/a/25"}


async def test_a_re_check_that_failed_once_is_settled_by_the_next_entry(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """The one-in-twenty re-check, the poll's last new entry, fails on a page with the weather
    note; the feed's next entry is compared at the next poll, matches, and the feed stays
    full-text with its re-checks one in twenty again."""
    for n in range(40, 80):
        site.routes[f"/a/{n}"] = static(article_page(n))
    site.routes["/a/22"] = static(page_with(22, [*paragraphs(22), WEATHER]))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    for last, fetched in ((23, {22}), (43, {23}), (63, {43})):
        site.routes["/feed"] = static(feed(site.base, range(last)), RSS)
        before = {r.path for r in site.requests}
        await pipeline.run(all_feeds=True)
        assert {r.path for r in site.requests} - before == {f"/a/{n}" for n in fetched}
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is True
    assert state["full_text_streak"] == 2  # 23 and 43 matched
    sources = rows(database_url, "SELECT text_source FROM news.articles")
    assert len(sources) == 63
    assert {r["text_source"] for r in sources} == {"feed"}


BRIEF = (
    "Story 30, in brief: the council of district 30 closed the footbridge over the canal on "
    "Tuesday for a week of repairs to its railings, and walkers are asked to use the ferry from "
    "the north pier instead, which runs every twenty minutes from six in the morning until "
    "midnight, the council said."
)


async def test_a_failed_re_check_settled_later_in_the_same_poll_has_no_entry_compared_after(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A poll of 41 new entries: its first one-in-twenty re-check (22) fails on a page with
    the weather note, and the next entry (23) is compared in the same poll and matches. The
    miss is settled: the next re-check is 43, twenty entries on, the entries stored from the
    feed after it count towards the one after, and the next poll's entries are all stored
    from the feed."""
    for n in range(40, 56):
        site.routes[f"/a/{n}"] = static(article_page(n))
    site.routes["/a/22"] = static(page_with(22, [*paragraphs(22), WEATHER]))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    site.routes["/feed"] = static(feed(site.base, range(53)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/22", "/a/23", "/a/43"}
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is True
    assert state["full_text_streak"] == 2  # 23 and 43 matched after 22 failed
    site.routes["/feed"] = static(feed(site.base, range(56)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == set()
    assert len(rows(database_url, "SELECT id FROM news.articles")) == 56


def content_feed(site: LocalServer, texts: dict[int, list[str]], pages: dict[int, str]) -> None:
    """An RSS feed of entries `n` whose `content:encoded` holds `texts[n]`, a paragraph each,
    their pages `pages[n]`."""
    items = ""
    for n, paras in texts.items():
        site.routes[f"/a/{n}"] = static(pages[n])
        body = "".join(f"<p>{p}</p>" for p in paras)
        items += (
            f"<item><title>Story {n}</title><link>{site.base}/a/{n}</link>"
            f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    site.routes["/feed"] = static(
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<channel><title>T</title>{items}</channel></rss>",
        RSS,
    )


def briefs_feed(
    site: LocalServer,
    lengths: dict[int, int],
    pages: dict[int, str],
    numbers: range = range(10),
) -> None:
    """Entries (ten) of twelve paragraphs, but for those of `lengths` (number: paragraphs),
    each page showing the entry's text, unless `pages` gives it another."""

    def text(n: int) -> list[str]:
        return (paragraphs(n) + paragraphs(n + 100))[: lengths.get(n, 12)]

    content_feed(
        site,
        {n: text(n) for n in numbers},
        {n: pages.get(n) or page_with(n, text(n)) for n in numbers},
    )


async def test_a_feed_is_probed_on_its_longest_entries_and_its_shortest(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Articles of twelve paragraphs, but for entries 4, 6 and 8, briefs of four, three and two
    paragraphs, whose pages show the same. The shortest (8) is among the first poll's three
    probes, beside two of the longest: proven on them, the feed has no entry short enough to
    be checked before it is trusted, and the pages of the other briefs are not fetched."""
    lengths = {4: 4, 6: 3, 8: 2}
    briefs_feed(site, lengths, {})
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    fetched = {r.path for r in site.requests if r.path.startswith("/a/")}
    assert page_hits(site) == 3
    assert "/a/8" in fetched
    assert not fetched & {"/a/4", "/a/6"}
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    assert len(stored) == 10
    assert {r["text_source"] for r in stored} == {"feed"}
    for r in stored:
        n = int(r["url"].rsplit("/", 1)[1])
        paras = (paragraphs(n) + paragraphs(n + 100))[: lengths.get(n, 12)]
        assert r["text"] == clean_text("\n\n".join(paras))


async def test_a_feed_that_cuts_its_long_articles_is_not_proven_on_its_shortest(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A feed whose first entries (0, 1 and 2) and last (9) are whole short articles, and
    whose others are articles of twelve paragraphs cut to four, without an ellipsis: its
    longest entries are probed whatever their place, it is not proven full-text, and no cut
    text is stored for its article."""
    cut = range(3, 9)
    full = {n: page_with(n, (paragraphs(n) + paragraphs(n + 100))[:12]) for n in cut}
    briefs_feed(site, {0: 3, 1: 3, 2: 3, 9: 2, **{n: 4 for n in cut}}, full)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    stored = rows(database_url, "SELECT url, text_source FROM news.articles")
    assert len(stored) == 10
    from_feed = {int(r["url"].rsplit("/", 1)[1]) for r in stored if r["text_source"] == "feed"}
    assert not from_feed & set(cut)
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is False


async def test_short_entries_of_a_full_text_feed_are_checked_shortest_first(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A feed proven on articles of twelve paragraphs brings briefs of four, three and two
    (10, 12 and 13), whose pages show the same: under a third of the feed's shortest article,
    none is stored from the feed unchecked. The shortest (13) is fetched first; its page shows
    it is the article, which lowers the bar under the other two, and their pages are not
    fetched."""
    briefs_feed(site, {}, {})
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    assert page_hits(site) == 3
    lengths = {10: 4, 12: 3, 13: 2}
    briefs_feed(site, lengths, {}, range(14))
    before = len(site.requests)
    second = await pipeline.run(all_feeds=True)
    assert [r.path for r in site.requests[before:] if r.path.startswith("/a/")] == ["/a/13"]
    assert second.new_articles == 4
    stored = rows(
        database_url, "SELECT url, text, text_source FROM news.articles WHERE url ~ '/a/1[0-3]$'"
    )
    assert {r["text_source"] for r in stored} == {"feed"}
    for r in stored:
        n = int(r["url"].rsplit("/", 1)[1])
        paras = (paragraphs(n) + paragraphs(n + 100))[: lengths.get(n, 12)]
        assert r["text"] == clean_text("\n\n".join(paras))


async def test_a_short_entry_that_matches_settles_a_miss_of_a_shorter_one(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven feed brings briefs of two paragraphs (11, its page padded with a weather note
    and a ferry notice: a miss) and three (10, a match): checked shortest first, one at a time,
    the match settles the miss as it would in one batch, so no other entry's page is fetched
    to settle it."""
    briefs_feed(site, {}, {})
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    paras = (paragraphs(11) + paragraphs(111))[:2]
    briefs_feed(site, {10: 3, 11: 2}, {11: page_with(11, [*paras, WEATHER, FERRIES])}, range(12))
    before = len(site.requests)
    await pipeline.run(all_feeds=True)
    assert [r.path for r in site.requests[before:] if r.path.startswith("/a/")] == [
        "/a/11",
        "/a/10",
    ]
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert (state["full_text"], state["full_text_streak"]) == (True, 1)
    site.routes["/feed"] = static(feed(site.base, range(14, 18)), RSS)
    before = len(site.requests)
    await pipeline.run(all_feeds=True)
    assert [r.path for r in site.requests[before:] if r.path.startswith("/a/")] == []


@pytest.mark.parametrize(("status", "due"), [(503, True), (404, False)])
async def test_a_re_check_whose_page_fails_stores_the_feed_s_text_at_once(
    database_url: str, site: LocalServer, pipeline: Pipeline, status: int, due: bool
) -> None:
    """A proven feed's one-in-twenty re-check (22, the poll's last new entry) finds its page
    failing: the entry is stored from the feed's text in that poll, not held for another try
    at its page. After a passing failure (503) the comparison stays due, and the next poll's
    first new entry is compared; after a lasting one (404) it is not (a feed whose pages are
    forbidden would cost a request every poll). (A poll with entries after the re-check
    compares the next of them instead: see the test of a page failing in passing, below.)"""
    site.routes["/a/22"] = Response(status, b"unavailable", {"Content-Type": "text/plain"})
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    site.routes["/feed"] = static(feed(site.base, range(23)), RSS)
    before = {r.path for r in site.requests}
    second = await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/22"}
    assert second.new_articles == 11
    (one,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/a/22$'")
    assert one["text_source"] == "feed"
    assert one["text"] == clean_text("\n\n".join(paragraphs(22)))
    site.routes["/feed"] = static(feed(site.base, range(26)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == ({"/a/23"} if due else set())
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is True


async def test_a_re_check_that_finds_another_page_stores_the_feed_s_text_and_counts_no_miss(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven feed's re-check (22) lands on a consent page that shares nothing with the
    entry, and so does the next entry's (23), compared in its place: each entry is stored from
    the feed's text, without the page's title or author and with the reason as its extraction
    error; no miss is counted, so the feed stays full-text, the poll's other entries are
    stored from the feed's text, and the next poll's first new entry is compared instead."""
    site.routes["/a/22"] = static(CONSENT_WALL)
    site.routes["/a/23"] = static(CONSENT_WALL)
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    for last, compared in ((37, {"/a/22", "/a/23"}), (40, {"/a/37"})):
        site.routes["/feed"] = static(feed(site.base, range(last)), RSS)
        before = {r.path for r in site.requests}
        await pipeline.run(all_feeds=True)
        assert {r.path for r in site.requests} - before == compared
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is True
    assert state["full_text_streak"] == 3  # 37 matched; the consent pages counted nothing
    stored = {
        r["url"].rsplit("/", 1)[1]: r
        for r in rows(
            database_url,
            "SELECT url, title, author, text, text_source, extraction_error FROM news.articles",
        )
    }
    assert len(stored) == 40
    for n in ("22", "23"):
        assert stored[n]["text_source"] == "feed"
        assert stored[n]["text"] == clean_text("\n\n".join(paragraphs(int(n))))
        assert stored[n]["title"] == f"Story {n}"
        assert stored[n]["author"] is None
        assert stored[n]["extraction_error"] == OTHER_PAGE


async def test_a_feed_being_probed_whose_page_is_a_consent_wall_stores_the_entry_s_text(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A new feed's second entry lands on a consent wall (titled otherwise, sharing nothing
    with the entry): the entry is stored from its own text, not the wall's, without the wall's
    metadata, and counts neither way: the three entries around it prove the feed full-text
    (counted as a miss, it would take two more, /a/4 fetched too)."""
    site.routes["/a/1"] = static(CONSENT_WALL)
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    summary = await pipeline.run()
    assert summary.new_articles == 12
    assert sorted(r.path for r in site.requests if r.path.startswith("/a/")) == [
        "/a/0", "/a/1", "/a/2", "/a/3"
    ]  # fmt: skip
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state == {"full_text": True, "full_text_streak": CONFIRM}
    (walled,) = rows(
        database_url,
        "SELECT title, author, text, text_source, extraction_error FROM news.articles"
        f" WHERE url = '{site.url('/a/1')}'",
    )
    assert walled == {
        "title": "Story 1",
        "author": None,
        "text": clean_text("\n\n".join(paragraphs(1))),
        "text_source": "feed",
        "extraction_error": OTHER_PAGE,
    }


async def test_a_feed_not_full_text_stores_its_entries_text_over_a_consent_wall(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A feed whose texts are half the story stores its pages; an entry whose page is a
    consent wall is stored from its own text, the better of the two (and counts no miss)."""
    site.routes["/a/5"] = static(CONSENT_WALL)
    site.routes["/feed"] = static(feed(site.base, range(8), parts=3), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    stored = {
        r["url"].rsplit("/", 1)[1]: r
        for r in rows(
            database_url, "SELECT url, text, text_source, extraction_error FROM news.articles"
        )
    }
    assert len(stored) == 8
    assert stored["5"]["text"] == clean_text("\n\n".join(paragraphs(5)[:3]))
    assert (stored["5"]["text_source"], stored["5"]["extraction_error"]) == ("feed", OTHER_PAGE)
    assert {r["text_source"] for n, r in stored.items() if n != "5"} == {"page"}
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state == {"full_text": False, "full_text_streak": -MISSES}


async def test_a_feed_text_that_shares_nothing_with_its_entry_s_page_is_not_the_article(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Entries whose own text is the same blurb, not the story, and whose pages are titled
    as the entries: the pages are the articles, stored from their extraction."""
    blurb = " ".join(
        f"Listen to episode {k} of our podcast on every platform and subscribe to the newsletter."
        for k in range(6)
    )
    items = "".join(
        f"<item><title>Story {n}</title><link>{site.base}/a/{n}</link>"
        f"<guid>{site.base}/a/{n}</guid><content:encoded><![CDATA[<p>{blurb}</p>]]></content:encoded></item>"
        for n in range(5)
    )
    site.routes["/feed"] = static(
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<channel><title>T</title>{items}</channel></rss>",
        RSS,
    )
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    stored = rows(
        database_url, "SELECT url, text, text_source, extraction_error FROM news.articles"
    )
    assert len(stored) == 5
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        assert row["text_source"] == "page"
        assert row["extraction_error"] is None
        assert all(p in row["text"] for p in paragraphs(n))
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is False


async def test_failures_in_one_batch_are_judged_in_feed_order(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Pages 1 and 2 carry the weather note and a ferry notice, 6 and 7 the weather note.
    Probing: 0 matches, 1 and 2 fail (their texts hold too little of their pages to stand for
    the articles), so the feed is not proven and both are stored from their page. The rest are
    fetched together: 3, 4 and 5 prove the feed; 6 fails with the feed still full-text after
    it (stored from the feed); 7 is the second miss in a row, which switches the feed back
    (stored from its page): once the feed is proven, a text that stands counts as a miss."""
    for n in (1, 2):
        site.routes[f"/a/{n}"] = static(page_with(n, [*paragraphs(n), WEATHER, FERRIES]))
    for n in (6, 7):
        site.routes[f"/a/{n}"] = static(page_with(n, [*paragraphs(n), WEATHER]))
    site.routes["/feed"] = static(feed(site.base, range(8)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is False
    assert state["full_text_streak"] == -2
    sources = {
        r["url"].rsplit("/", 1)[1]: r["text_source"]
        for r in rows(database_url, "SELECT url, text_source FROM news.articles")
    }
    assert {n: sources[n] for n in "1267"} == {"1": "page", "2": "page", "6": "feed", "7": "page"}
    assert {sources[n] for n in "0345"} == {"feed"}  # they matched


def split_page(n: int, at: int) -> str:
    """Story n with its body in two containers split by an advertising row after paragraph
    `at`, as some publishers lay a story out: the extraction keeps the first container only,
    the page's main content both."""

    def block(paras: list[str]) -> str:
        return (
            "<div class='grid'><div class='body article__body'>"
            + "".join(f"<p>{p}</p>" for p in paras)
            + "</div><div class='aside'><div class='ad ad--rail'></div></div></div>"
        )

    story = paragraphs(n)
    return (
        f"<html><head><title>Story {n}</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<main><article><h1>Story {n}</h1>{block(story[:at])}"
        "<div class='row full-bleed-ad'><div class='ad'><span class='ad-label'>Advertisement"
        f"</span></div></div>{block(story[at:])}</article></main></body></html>"
    )


async def test_a_story_the_extraction_cut_short_is_stored_from_a_proven_feed_s_text(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Story 1's page splits its body with an advertising row, and the extraction keeps only
    the first third: the comparison fails, but the feed's text holds all of that extraction
    and the page's main content shows all of the text, so once the feed is proven full-text
    story 1 is stored from the feed, whole."""
    site.routes["/a/1"] = static(split_page(1, 2))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert state["full_text"] is True
    assert state["full_text_streak"] == 3  # 0, then 1 failed; 2, 3 and 4 in a row
    (one,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/a/1$'")
    assert one["text_source"] == "feed"
    assert one["text"] == clean_text("\n\n".join(paragraphs(1)))


async def test_a_story_the_extraction_cut_short_is_the_page_s_in_a_feed_not_proven(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Every page is split so: no comparison holds, the feed is never proven, and each entry is
    stored from its page's extraction, short as it is (an excerpt longer than a poor extraction
    looks the same)."""
    pages = {n: split_page(n, 2) for n in range(6)}
    stored = await never_proven(database_url, site, pipeline, pages)
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        assert row["text"] == clean_text("\n\n".join(paragraphs(n)[:2]))


async def test_a_feed_text_padded_with_a_story_its_page_shows_elsewhere_does_not_stand(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Entry 1 carries its story and a longer one its page shows beside the article: the
    extraction holds under half of the entry's text, so the whole page does not vouch for
    it, nor does the page's main content (the longer story is in an aside), and it is stored
    from its page even though the feed is proven in the same poll."""
    other = [
        f"Elsewhere, the ferry company of harbour {k} renamed its boats after local poets and "
        f"painters, and the first of them, number {k + 10}, sails from the north pier in May."
        for k in range(9)
    ]
    site.routes["/a/1"] = static(
        "<html><head><title>Story 1</title></head><body><article><h1>Story 1</h1>"
        + "".join(f"<p>{p}</p>" for p in paragraphs(1))
        + "</article><aside class='related sidebar'>"
        + "".join(f"<p>{p}</p>" for p in other)
        + "</aside></body></html>"
    )
    last = f"{paragraphs(1)[-1]}</p>"
    padded = feed(site.base, range(12)).replace(last, last + "".join(f"<p>{p}</p>" for p in other))
    site.routes["/feed"] = static(padded, RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is True
    (one,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/a/1$'")
    assert one["text_source"] == "page"
    assert "ferry" not in one["text"]


async def test_only_new_articles_count_as_stored_from_a_feed_without_a_request(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Two full-text feeds list the same twelve stories: each proves itself on three pages and
    hands nine entries over without a request, but an article the other feed stored first is
    not new, and the run's count of articles from full-text feeds says so."""
    site.routes["/one"] = static(feed(site.base, range(12)), RSS)
    site.routes["/two"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/one"))
    await pipeline.store.add_feed(site.url("/two"))
    summary = await pipeline.run()
    assert summary.new_articles == 12
    assert summary.from_feed <= summary.new_articles
    stored = rows(database_url, "SELECT url FROM news.articles")
    assert len(stored) == 12
    fetched = {r.path for r in site.requests if r.path.startswith("/a/")}
    assert summary.from_feed == 12 - len(fetched)


async def test_entries_whose_own_texts_cannot_be_measured_are_stored_from_their_pages(
    database_url: str,
    site: LocalServer,
    pipeline: Pipeline,
    inline_workers: InlineWorkers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the worker measuring a feed's own texts fails, nothing is lost: the entries count
    as having no text of their own, so every page is fetched and each is stored from it."""
    run = inline_workers.run

    async def crash_on_own_texts(fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        if fn is own_texts:
            raise WorkerCrashed("worker died (exit code -9)")
        return await run(fn, *args, timeout=timeout)

    monkeypatch.setattr(inline_workers, "run", crash_on_own_texts)
    site.routes["/feed"] = static(feed(site.base, range(5)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    summary = await pipeline.run()
    assert summary.new_articles == 5
    assert page_hits(site) == 5
    stored = rows(database_url, "SELECT text_source FROM news.articles")
    assert [r["text_source"] for r in stored] == ["page"] * 5


async def test_articles_stored_from_a_feed_are_not_measured_again_in_the_main_process(
    site: LocalServer, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The language and fingerprint of an article stored from its feed's text are the ones its
    worker measured: building the article computes neither."""
    calls: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append("measured in the main process")

    monkeypatch.setattr(ingest.article, "fingerprint", refuse)
    monkeypatch.setattr(ingest.article, "detect_language", refuse)
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    summary = await pipeline.run()
    assert (summary.new_articles, summary.from_feed, page_hits(site)) == (12, 9, 3)
    assert calls == []


async def test_entries_are_compared_with_their_pages_in_the_workers(
    database_url: str, site: LocalServer, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparisons that prove a feed full-text are made beside the extraction, in the
    worker: the main process compares nothing (a feed text of megabytes would hold up every
    other feed), and the feed is proven as before."""
    calls: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append("compared in the main process")

    monkeypatch.setattr(ingest.pipeline, "measure", refuse)
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    summary = await pipeline.run()
    assert (summary.new_articles, summary.from_feed, page_hits(site)) == (12, 9, 3)
    (state,) = rows(database_url, "SELECT full_text, full_text_evidence FROM news.feeds")
    assert state["full_text"] is True
    assert "the article" in str(state["full_text_evidence"])
    assert calls == []


async def test_an_entry_whose_text_cannot_be_measured_does_not_fail_its_feed(
    database_url: str, site: LocalServer, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measuring one entry's text fails in the worker (as numpy's MemoryError does on megabytes
    of content under a memory limit): that entry has no text of its own and is stored from its
    page, the others are measured, and the feed is fine."""
    real = ingest.fulltext.fingerprint

    def fingerprint(text: str) -> Fingerprint | None:
        if "Story 4," in text:
            raise MemoryError("Unable to allocate 1.39 GiB")
        return real(text)

    monkeypatch.setattr(ingest.fulltext, "fingerprint", fingerprint)
    site.routes["/feed"] = static(feed(site.base, range(5)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    summary = await pipeline.run()
    (state,) = rows(database_url, "SELECT last_status, last_error FROM news.feeds")
    assert (state["last_status"], state["last_error"], summary.new_articles) == ("ok", None, 5)
    assert any(r.path == "/a/4" for r in site.requests)


async def test_entries_stored_after_a_re_check_count_towards_the_next_one(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Proven on 0-2 with 3-11 from the feed (nine since the last comparison); the next poll's
    21 entries re-check 22 and store 23-32 from the feed after it: ten since the last
    comparison, so the third poll re-checks its tenth new entry, 42 (one in twenty)."""
    for n in range(40, 43):
        site.routes[f"/a/{n}"] = static(article_page(n))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    site.routes["/feed"] = static(feed(site.base, range(33)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/22"}
    (state,) = rows(database_url, "SELECT full_text, full_text_since_check FROM ingest.feeds")
    assert state == {"full_text": True, "full_text_since_check": 10}
    site.routes["/feed"] = static(feed(site.base, range(43)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/42"}


async def test_excerpts_fetched_between_full_entries_do_not_put_off_the_re_check(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed (nine entries from the feed since its last comparison) whose
    next poll has an excerpt every fifth entry: the excerpts' pages are fetched, but they are
    compared with nothing, so the eleventh full entry after them, 24, is still re-checked."""
    for n in range(40, 42):
        site.routes[f"/a/{n}"] = static(article_page(n))
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    cut = range(15, 42, 5)
    items = [
        excerpt_feed(site.base, range(0), range(n, n + 1))
        if n in cut
        else feed(site.base, range(n, n + 1))
        for n in range(42)
    ]
    body = "".join(i.split("<channel><title>T</title>")[1].split("</channel>")[0] for i in items)
    site.routes["/feed"] = static(items[0].split("<item>")[0] + body + "</channel></rss>", RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    fetched = {r.path for r in site.requests} - before
    assert fetched == {f"/a/{n}" for n in cut} | {"/a/24"}
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is True


def atom_feed(
    base: str,
    numbers: range,
    updated: dict[int, tuple[datetime, str]],
    stamp: datetime | None = None,
) -> str:
    """Entries of `numbers` carrying their article; those in `updated` were updated at the
    given time and end with the given paragraph; the others' update time is `stamp` (the
    feed's generation time, given to every entry), else their publication time."""

    def at(n: int) -> datetime:
        return updated[n][0] if n in updated else stamp or NOW - timedelta(hours=n)

    entries = "".join(
        f"<entry><title>Story {n}</title><id>{base}/a/{n}</id><link href='{base}/a/{n}'/>"
        f"<published>{(NOW - timedelta(hours=n)).isoformat()}</published>"
        f"<updated>{at(n).isoformat()}</updated><content type='html'>"
        + "".join(
            f"&lt;p&gt;{p}&lt;/p&gt;"
            for p in [*paragraphs(n), *([updated[n][1]] if n in updated else [])]
        )
        + "</content></entry>"
        for n in numbers
    )
    return (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<updated>{NOW.isoformat()}</updated>{entries}</feed>"
    )


CORRECTION = (
    "Correction: an earlier version of this story gave the wrong number of years the "
    "residents had waited for the footbridge."
)


@pytest.mark.parametrize("mode", ["feed", "auto"])
async def test_an_updated_entry_of_a_full_text_feed_is_updated_from_its_own_text(
    database_url: str, site: LocalServer, pipeline: Pipeline, mode: str
) -> None:
    """A full-text feed (proven, or set to `feed` by the operator) updates a stored entry and
    its text: the article is updated from the entry's new text, without a request."""
    atom = "application/atom+xml"
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}), atom)
    await pipeline.store.add_feed(site.url("/feed"))
    if mode == "feed":
        assert await pipeline.store.set_text_mode(site.url("/feed"), "feed")
    await pipeline.run()
    hits = page_hits(site)
    later = {5: (NOW + timedelta(minutes=5), CORRECTION)}
    site.routes["/feed"] = static(atom_feed(site.base, range(12), later), atom)
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [1]
    assert page_hits(site) == hits
    (five,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/5$'")
    assert five["text_source"] == "feed"
    assert five["text"] == clean_text("\n\n".join([*paragraphs(5), CORRECTION]))


@pytest.mark.parametrize("mode", ["feed", "auto"])
async def test_a_correction_in_a_full_text_feed_that_stamps_its_entries_updates_the_article(
    database_url: str, site: LocalServer, pipeline: Pipeline, mode: str
) -> None:
    """A full-text feed whose generator gives every entry its generation time as update time
    (`dedup.stamps`): no stamped entry has its page fetched, but one whose own text changed
    (a correction, stamped like the others) updates its article from that text, as an
    update of a full-text feed's entry needs no request."""
    atom = "application/atom+xml"
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}, NOW), atom)
    await pipeline.store.add_feed(site.url("/feed"))
    if mode == "feed":
        assert await pipeline.store.set_text_mode(site.url("/feed"), "feed")
    await pipeline.run()
    hits = page_hits(site)
    stamp = NOW + timedelta(minutes=1)
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}, stamp), atom)
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [0]
    stamp += timedelta(minutes=1)
    later = {5: (stamp, CORRECTION)}
    site.routes["/feed"] = static(atom_feed(site.base, range(12), later, stamp), atom)
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [1]
    assert page_hits(site) == hits
    (five,) = rows(database_url, "SELECT text FROM news.articles WHERE url ~ '/5$'")
    assert five["text"] == clean_text("\n\n".join([*paragraphs(5), CORRECTION]))


async def test_twenty_edits_in_one_poll_of_a_full_text_feed_need_no_page(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed's 30 entries are each edited (a correction, each at a time of
    its own) before one poll, while their pages are gone: every article is updated from its
    entry's new text without a request. An update is never one of the feed's re-checks (its
    page would be read for the update, not compared with the entry's text)."""
    atom = "application/atom+xml"
    site.routes["/feed"] = static(atom_feed(site.base, range(30), {}), atom)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    for n in range(30):
        site.routes[f"/a/{n}"] = Response(404, b"gone", {"Content-Type": "text/plain"})
    hits = page_hits(site)
    later = {n: (NOW + timedelta(minutes=5 + n), CORRECTION) for n in range(30)}
    site.routes["/feed"] = static(atom_feed(site.base, range(30), later), atom)
    summary = await pipeline.run(all_feeds=True)
    assert page_hits(site) == hits
    assert [o.updated for o in summary.outcomes] == [30]
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    assert len(stored) == 30
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        assert row["text"] == clean_text("\n\n".join([*paragraphs(n), CORRECTION]))
        assert row["text_source"] == "feed"


async def test_a_stamped_entry_updated_from_its_own_text_is_counted_once(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A full-text feed stamping its 12 entries with its generation time, one of them with a
    correction: the counts partition the entries, the corrected one updated and the 11
    others skipped (not skipped too)."""
    atom = "application/atom+xml"
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}, NOW), atom)
    await pipeline.store.add_feed(site.url("/feed"))
    assert await pipeline.store.set_text_mode(site.url("/feed"), "feed")
    await pipeline.run()
    stamp = NOW + timedelta(minutes=1)
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}, stamp), atom)
    summary = await pipeline.run(all_feeds=True)
    assert (summary.updated, summary.skipped) == (0, 12)
    stamp += timedelta(minutes=1)
    later = {5: (stamp, CORRECTION)}
    site.routes["/feed"] = static(atom_feed(site.base, range(12), later, stamp), atom)
    summary = await pipeline.run(all_feeds=True)
    assert (summary.new_articles, summary.updated, summary.skipped) == (0, 1, 11)
    (outcome,) = summary.outcomes
    assert (outcome.updated, outcome.skipped) == (1, 11)


async def redirected_atom_feed_polled(site: LocalServer, pipeline: Pipeline) -> None:
    """An Atom feed of 12 stories whose links redirect to the stories' own addresses
    (/a/N -> /story/N), registered and polled once."""
    for n in range(12):
        site.routes[f"/a/{n}"] = Response(301, b"", {"Location": f"{site.base}/story/{n}"})
        site.routes[f"/story/{n}"] = static(article_page(n))
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}), "application/atom+xml")
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()


async def test_an_update_of_a_full_text_entry_reaches_an_article_stored_from_its_page(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """The feed's links redirect to the stories' own addresses: the entries compared while the
    feed was probed are stored under the page's URL, the others under the feed's link. An
    update of a compared entry, taken from the entry's new text without a request, updates
    that article all the same."""
    atom = "application/atom+xml"
    await redirected_atom_feed_polled(site, pipeline)
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    (one,) = rows(database_url, "SELECT url FROM news.articles WHERE url ~ '/1$'")
    assert one["url"] == f"{site.base}/story/1"  # compared: stored from its page's address
    later = {1: (NOW + timedelta(minutes=5), CORRECTION)}
    site.routes["/feed"] = static(atom_feed(site.base, range(12), later), atom)
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [1]
    (one,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/1$'")
    assert one["text"] == clean_text("\n\n".join([*paragraphs(1), CORRECTION]))
    assert one["text_source"] == "feed"


async def test_an_update_fetched_from_its_page_reaches_an_article_stored_from_its_feed(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """The feed's links redirect to the stories' own addresses, and story 5 was stored from the
    proven feed's text under its link. The operator then has the feed's pages fetched: an
    update of story 5 is read from its page, under the address the link redirects to, and
    updates that article all the same."""
    atom = "application/atom+xml"
    await redirected_atom_feed_polled(site, pipeline)
    (five,) = rows(database_url, "SELECT url, text_source FROM news.articles WHERE url ~ '/5$'")
    assert (five["url"], five["text_source"]) == (f"{site.base}/a/5", "feed")
    assert await pipeline.store.set_text_mode(site.url("/feed"), "page")
    later = {5: (NOW + timedelta(minutes=5), CORRECTION)}
    site.routes["/feed"] = static(atom_feed(site.base, range(12), later), atom)
    site.routes["/story/5"] = static(page_with(5, [*paragraphs(5), CORRECTION]))
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [1]
    (five,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/5$'")
    assert CORRECTION in five["text"]
    assert five["text_source"] == "page"


async def test_a_feed_never_full_text_for_a_year_of_entries_still_records_its_polls(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A feed whose entries carry half of each story has every entry compared and found not to
    be the article, poll after poll: after a year of a busy feed's entries (its streak of
    misses at the bottom of what its row holds), its polls are still recorded, not refused."""
    site.routes["/feed"] = static(feed(site.base, range(4), parts=3), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE ingest.feeds SET full_text_streak = -32768, full_text_evidence = 'x'")
    summary = await pipeline.run()
    assert summary.new_articles == 4
    (state,) = rows(
        database_url,
        "SELECT last_status, last_error, full_text, full_text_evidence FROM news.feeds",
    )
    assert (state["last_status"], state["last_error"], state["full_text"]) == ("ok", None, False)
    assert "not the article" in state["full_text_evidence"]


LONG_HEADLINE = (
    "Council approves the budget for the footbridge over the canal after residents of the "
    "district waited twenty years for it"
)


@pytest.mark.parametrize(
    "invitation",
    [
        "<p>{last} &#8230; <a href='{link}'>Read more</a></p>",
        # WordPress's, with the headline for screen readers: longer than most lines' rest.
        "<p>{last} &#8230; <a href='{link}' class='more-link'>Continue reading<span"
        " class='screen-reader-text'> &#8220;{headline}&#8221;</span></a></p>",
        "<p>{last}</p><p class='link-more'><a href='{link}' class='more-link'>Continue reading"
        "<span class='screen-reader-text'> &#8220;{headline}&#8221;</span></a></p>",
    ],
    ids=["read-more", "wordpress-headline", "wordpress-headline-own-line"],
)
async def test_an_excerpt_ending_in_a_read_more_link_is_stored_from_its_page(
    database_url: str, site: LocalServer, pipeline: Pipeline, invitation: str
) -> None:
    """A proven full-text feed's next entry is half of its story, its last paragraph ending
    "… Read more" (the link inside the paragraph), or WordPress's "Continue reading" with a
    long headline after it: its page is fetched and its text is the page's, not the
    excerpt's."""
    site.routes["/feed"] = static(feed(site.base, range(6)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    head = "".join(f"<p>{p}</p>" for p in paragraphs(6)[:2])
    link = f"{site.base}/a/6"
    cut = head + invitation.format(last=paragraphs(6)[2], link=link, headline=LONG_HEADLINE)
    item = (
        f"<item><title>Story 6</title><link>{site.base}/a/6</link><guid>{site.base}/a/6</guid>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><content:encoded><![CDATA[{cut}]]>"
        "</content:encoded></item>"
    )
    site.routes["/feed"] = static(
        feed(site.base, range(6)).replace("</channel>", item + "</channel>"), RSS
    )
    hits = page_hits(site)
    await pipeline.run(all_feeds=True)
    assert page_hits(site) == hits + 1
    (six,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/a/6$'")
    assert six["text_source"] == "page"
    assert all(p in six["text"] for p in paragraphs(6))  # the whole story, not half
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True


async def test_a_feed_whose_text_is_escaped_markup_not_typed_as_html_stores_no_tags(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """An Atom feed carries each story as escaped HTML in a content element not typed as html
    (text, by default): its tags are markup, so the feed is proven full-text on its words and
    the articles stored from it hold no tags."""
    story = {
        n: [
            f"{p} The mayor said the work would begin in the spring once the contracts with the "
            "builders were signed and the canal was closed to boats."
            for p in paragraphs(n)
        ]
        for n in range(12)
    }
    for n, paras in story.items():
        site.routes[f"/a/{n}"] = static(page_with(n, paras))
    entries = "".join(
        f"<entry><title>Story {n}</title><id>{site.base}/a/{n}</id>"
        f"<link href='{site.base}/a/{n}'/><updated>{(NOW - timedelta(hours=n)).isoformat()}"
        "</updated><content>"
        + "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paras)
        + "</content></entry>"
        for n, paras in story.items()
    )
    site.routes["/feed"] = static(
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<updated>{NOW.isoformat()}</updated>{entries}</feed>",
        "application/atom+xml",
    )
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    stored = rows(database_url, "SELECT text FROM news.articles")
    assert len(stored) == 12
    assert not [r["text"] for r in stored if "<p>" in r["text"]]


async def test_a_feed_whose_html_is_escaped_twice_stores_no_tags(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """An RSS feed carries each story in content:encoded as HTML escaped once more than HTML
    asks (`<![CDATA[&lt;p&gt;…&lt;/p&gt;]]>`): its tags are markup, so the feed is proven
    full-text on its words and the articles stored from it hold no tags, their paragraphs
    kept."""
    site.routes["/feed"] = static(
        feed(site.base, range(12)).replace("<p>", "&lt;p&gt;").replace("</p>", "&lt;/p&gt;"),
        RSS,
    )
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    assert len(stored) == 12
    for row in stored:
        if row["text_source"] == "feed":
            n = int(row["url"].rsplit("/", 1)[1])
            assert row["text"] == clean_text("\n\n".join(paragraphs(n)))


async def test_an_excerpt_whose_ellipsis_is_escaped_twice_is_stored_from_its_page(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed's next entry is half of its story ending "[&amp;#8230;]" (its
    character references escaped once more than HTML asks, as some publishers' feeds are): it
    ends like an excerpt, so its page is fetched and its text is the page's."""
    site.routes["/feed"] = static(feed(site.base, range(6)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    cut = "".join(f"<p>{p}</p>" for p in paragraphs(6)[:3]) + "<p>[&amp;#8230;]</p>"
    item = (
        f"<item><title>Story 6</title><link>{site.base}/a/6</link><guid>{site.base}/a/6</guid>"
        f"<pubDate>{format_datetime(NOW)}</pubDate><content:encoded><![CDATA[{cut}]]>"
        "</content:encoded></item>"
    )
    full = feed(site.base, range(6)).replace("</channel>", item + "</channel>")
    site.routes["/feed"] = static(full, RSS)
    hits = page_hits(site)
    await pipeline.run(all_feeds=True)
    assert page_hits(site) == hits + 1
    (six,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/a/6$'")
    assert six["text_source"] == "page"
    assert "&#8230;" not in six["text"]


async def test_an_entry_linked_to_another_feed_s_article_is_no_update_at_the_next_poll(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Stories 0-3 are stored from their pages by a feed of excerpts; a full-text Atom feed
    listing them too (each entry with its `<updated>`) links its entries to those articles. Its
    next poll, whose entries did not change, takes none of them for an update: the articles
    keep the text they were stored with, and no history row is written."""
    atom = "application/atom+xml"
    site.routes["/excerpts"] = static(feed(site.base, range(4), parts=3), RSS)
    await pipeline.store.add_feed(site.url("/excerpts"))
    await pipeline.run()
    site.routes["/full"] = static(atom_feed(site.base, range(4), {}), atom)
    await pipeline.store.add_feed(site.url("/full"))
    assert await pipeline.store.set_text_mode(site.url("/full"), "feed")
    await pipeline.run()
    hits = page_hits(site)
    # The feed's next poll: its own title changed, none of its entries.
    body = atom_feed(site.base, range(4), {}).replace("<title>T</title>", "<title>T.</title>", 1)
    site.routes["/full"] = static(body, atom)
    summary = await pipeline.run(all_feeds=True)
    assert [o.updated for o in summary.outcomes] == [0, 0]
    assert page_hits(site) == hits
    stored = rows(database_url, "SELECT text_source FROM news.articles")
    assert [r["text_source"] for r in stored] == ["page"] * 4
    assert rows(database_url, "SELECT 1 FROM news.article_history") == []


async def test_an_entry_linked_to_an_older_version_of_its_article_updates_it_once(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Story 2 is stored from its page by a feed of excerpts; a full-text feed then lists it
    with a correction, updated after that page was read. Its entry is linked to the article,
    and its next poll updates the article from the entry's text, once."""
    atom = "application/atom+xml"
    site.routes["/excerpts"] = static(feed(site.base, range(4), parts=3), RSS)
    await pipeline.store.add_feed(site.url("/excerpts"))
    await pipeline.run()
    later = {2: (NOW + timedelta(hours=1), CORRECTION)}
    site.routes["/full"] = static(atom_feed(site.base, range(4), later), atom)
    await pipeline.store.add_feed(site.url("/full"))
    assert await pipeline.store.set_text_mode(site.url("/full"), "feed")
    await pipeline.run()
    # Two more polls: the feed's title changes, none of its entries.
    for title, updated in (("T.", 1), ("T..", 0)):
        body = atom_feed(site.base, range(4), later)
        site.routes["/full"] = static(body.replace("T</title>", f"{title}</title>", 1), atom)
        summary = await pipeline.run(all_feeds=True)
        # By feed: outcomes come in the order the feeds finished.
        by_feed = {o.feed_id: o.updated for o in sorted(summary.outcomes, key=lambda o: o.feed_id)}
        assert list(by_feed.values()) == [0, updated]
    (two,) = rows(database_url, "SELECT text, text_source FROM news.articles WHERE url ~ '/2$'")
    assert two["text"] == clean_text("\n\n".join([*paragraphs(2), CORRECTION]))
    assert two["text_source"] == "feed"


async def test_an_update_to_a_third_of_a_full_text_entry_s_article_is_read_from_its_page(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """An entry of a proven full-text feed is updated to its first two paragraphs of six (a
    teaser without an ellipsis, long enough to be taken for an article by the feed's shortest
    ones): a text that would lose most of the stored article is no edit of it on its own
    word. Its page is fetched and decides the update, as a page update's would (here: it
    still shows the whole story, so the article keeps it); its next poll fetches nothing."""
    atom = "application/atom+xml"
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}), atom)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    teaser = atom_feed(site.base, range(12), {5: (NOW + timedelta(minutes=5), "")})
    cut = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paragraphs(5)[2:]) + "&lt;p&gt;&lt;/p&gt;"
    assert cut in teaser
    site.routes["/feed"] = static(teaser.replace(cut, ""), atom)
    hits = len(site.hits("/a/5"))
    await pipeline.run(all_feeds=True)
    assert len(site.hits("/a/5")) == hits + 1
    (five,) = rows(database_url, "SELECT text FROM news.articles WHERE url ~ '/5$'")
    assert all(p in five["text"] for p in paragraphs(5))
    await pipeline.run(all_feeds=True)
    assert len(site.hits("/a/5")) == hits + 1


async def test_an_edit_listed_by_two_feeds_is_one_version_of_its_article(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Story 2 is listed by a full-text feed and by a feed whose pages are fetched, both Atom
    with the same `<updated>`. Each edit moves both entries' update times: the first feed to
    reach it updates the article (from its text, or its page), and the other finds that
    version already stored (its modified time no earlier than the entry's): one history row
    and one `update` change per edit, not one per feed with the text flipping between the
    feed's and the page's."""
    atom = "application/atom+xml"
    for path, mode in (("/full", "feed"), ("/pages", "page")):
        site.routes[path] = static(atom_feed(site.base, range(4), {}), atom)
        await pipeline.store.add_feed(site.url(path))
        assert await pipeline.store.set_text_mode(site.url(path), mode)
    await pipeline.run()
    for k in range(1, 4):
        added = f"{CORRECTION} Edition {k} of the correction."
        later = {2: (NOW + timedelta(minutes=5 * k), added)}
        for path in ("/full", "/pages"):
            site.routes[path] = static(atom_feed(site.base, range(4), later), atom)
        site.routes["/a/2"] = static(page_with(2, [*paragraphs(2), added]))
        summary = await pipeline.run(all_feeds=True)
        assert sorted(o.updated for o in summary.outcomes) == [0, 1]
        (two,) = rows(database_url, "SELECT text FROM news.articles WHERE url ~ '/2$'")
        assert added in two["text"]
    history = rows(database_url, "SELECT count(*) AS n FROM news.article_history")
    assert history[0]["n"] == 3
    kinds = rows(database_url, "SELECT kind, count(*) AS n FROM news.article_changes GROUP BY 1")
    assert {k["kind"]: k["n"] for k in kinds} == {"insert": 4, "update": 3}


def first_words(paras: list[str], words: int) -> list[str]:
    """The paragraphs' first `words` words, cut inside the paragraph they end in, unmarked."""
    kept, left = [], words
    for p in paras:
        if left <= 0:
            break
        kept.append(" ".join(p.split()[:left]))
        left -= len(p.split())
    return kept


def cut_feed(site: LocalServer, cut: range, whole: range, words: int) -> None:
    """Entries `cut`: articles of twelve paragraphs, the feed's text their first `words` words
    (inside a sentence, no mark), their pages the whole article; entries `whole`: articles of
    three paragraphs, whole in the feed and on their pages."""
    articles = {n: (paragraphs(n) + paragraphs(n + 100))[:12] for n in cut}
    articles |= {n: (paragraphs(n) + paragraphs(n + 100))[:3] for n in whole}
    content_feed(
        site,
        {n: first_words(paras, words) if n in cut else paras for n, paras in articles.items()},
        {n: page_with(n, paras) for n, paras in articles.items()},
    )


async def test_a_feed_that_cuts_its_texts_at_one_length_has_those_pages_fetched(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A feed cuts its articles at 100 words without a mark; its short articles are whole.
    Its first poll shows the cut (the texts of four entries stop at 100 words inside a
    sentence), which the feed keeps: the cut entries are stored from their pages, the whole
    ones prove the feed full-text; in the next poll, two new cut entries (too few to show the
    cut by themselves) are fetched too, not stored as the articles."""
    cut_feed(site, range(0, 4), range(4, 8), 100)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(
        database_url,
        "SELECT full_text, full_text_cap_words, full_text_cap_chars FROM ingest.feeds",
    )
    assert state["full_text_cap_words"] == 100
    assert state["full_text"] is True
    fetched = {r.path for r in site.requests if r.path.startswith("/a/")}
    assert {"/a/0", "/a/1", "/a/2", "/a/3"} <= fetched
    cut_feed(site, range(10, 12), range(4, 8), 100)
    before = len(site.requests)
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests[before:] if r.path.startswith("/a/")} == {
        "/a/10",
        "/a/11",
    }
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    by_n = {int(r["url"].rsplit("/", 1)[1]): r for r in stored}
    assert sorted(by_n) == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]
    for n in (0, 1, 2, 3, 10, 11):
        assert by_n[n]["text_source"] == "page"
        whole = (paragraphs(n) + paragraphs(n + 100))[:12]
        assert clean_text("\n\n".join(whole)) in by_n[n]["text"]
    assert {by_n[n]["text_source"] for n in range(4, 8)} == {"feed"}


def credited_feed(site: LocalServer, numbers: range) -> None:
    """A full-text feed whose every entry is the whole article, its last line a photo credit
    (no full stop), as its page shows it."""
    texts = {n: [*paragraphs(n), "Photo: City archive"] for n in numbers}
    content_feed(site, texts, {n: page_with(n, paras) for n, paras in texts.items()})


async def test_a_full_text_feed_whose_texts_end_in_a_credit_is_proven(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Whole articles of one template, each ending in a photo credit without a full stop:
    their lengths coincide, but they end with their sentences before the credit, so the feed
    is not taken to cut them, and it is proven on three pages as any full-text feed is."""
    credited_feed(site, range(12))
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text, full_text_cap_words FROM ingest.feeds")
    assert (state["full_text"], state["full_text_cap_words"], page_hits(site)) == (True, 0, 3)


async def test_a_feed_that_cuts_shorter_later_has_those_pages_fetched(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Cut at 100 words (seen; the feed proven on its whole short articles), then four new
    entries cut at 60: the new cut replaces the old one, and they are stored from their
    pages."""
    cut_feed(site, range(0, 4), range(4, 8), 100)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    cut_feed(site, range(10, 14), range(4, 8), 60)
    await pipeline.run(all_feeds=True)
    (state,) = rows(database_url, "SELECT full_text, full_text_cap_words FROM ingest.feeds")
    assert (state["full_text"], state["full_text_cap_words"]) == (True, 60)
    stored = rows(database_url, "SELECT url, text_source FROM news.articles")
    by_n = {int(r["url"].rsplit("/", 1)[1]): r["text_source"] for r in stored}
    assert [by_n[n] for n in range(10, 14)] == ["page"] * 4


ATOM = "application/atom+xml"


def _paras(n: int, size: int) -> list[str]:
    return (paragraphs(n) + paragraphs(n + 100))[:size]


def cut_atom_feed(site: LocalServer, entries: dict[int, tuple[list[str], datetime]]) -> None:
    """Entries n: (feed paragraphs, updated); pages: the whole article (12 paragraphs, or 3
    for n in 4..7)."""
    xml = ""
    for n, (paras, updated) in entries.items():
        site.routes[f"/a/{n}"] = static(page_with(n, _paras(n, 3 if 4 <= n < 8 else 12)))
        xml += (
            f"<entry><title>Story {n}</title><id>{site.base}/a/{n}</id>"
            f"<link href='{site.base}/a/{n}'/>"
            f"<published>{(NOW - timedelta(hours=n)).isoformat()}</published>"
            f"<updated>{updated.isoformat()}</updated><content type='html'>"
            + "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paras)
            + "</content></entry>"
        )
    site.routes["/feed"] = static(
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<updated>{NOW.isoformat()}</updated>{xml}</feed>",
        ATOM,
    )


def hours_ago(n: int) -> datetime:
    return NOW - timedelta(hours=n)


async def test_a_live_blog_in_a_cutting_feed_does_not_let_cut_texts_in(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Poll 1: 0-3 cut at 100 words, 4-7 whole short: cap 100, feed proven. Poll 2: two new
    cut entries and one whole long one (a live blog): the cut ones must come from their
    pages."""
    first = {n: (first_words(_paras(n, 12), 100), hours_ago(n)) for n in range(4)}
    first |= {n: (_paras(n, 3), hours_ago(n)) for n in range(4, 8)}
    cut_atom_feed(site, first)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text, full_text_cap_words FROM ingest.feeds")
    assert (state["full_text"], state["full_text_cap_words"]) == (True, 100)
    second = first | {n: (first_words(_paras(n, 12), 100), hours_ago(n)) for n in (10, 11)}
    second[12] = (_paras(12, 12), hours_ago(12))  # whole, 336 words
    cut_atom_feed(site, second)
    await pipeline.run(all_feeds=True)
    stored = rows(database_url, "SELECT url, text_source FROM news.articles")
    by_n = {int(r["url"].rsplit("/", 1)[1]): r["text_source"] for r in stored}
    assert (by_n[10], by_n[11]) == ("page", "page")


async def test_an_update_in_the_poll_that_shows_the_cap_is_not_stored_cut(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """Poll 1: whole articles (4-7 short, 20 long): proven. Poll 2: the feed now cuts at 200
    words: four new entries show the cap, and entry 20 is updated, its text cut too. The
    update must not replace the whole stored article with the cut text."""
    first = {n: (_paras(n, 3), hours_ago(n)) for n in range(4, 8)} | {
        20: (_paras(20, 12), hours_ago(20))
    }
    cut_atom_feed(site, first)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is True
    second = first | {n: (first_words(_paras(n, 12), 200), hours_ago(n)) for n in range(10, 14)}
    second[20] = (first_words(_paras(20, 12), 200), NOW + timedelta(minutes=5))
    cut_atom_feed(site, second)
    await pipeline.run(all_feeds=True)
    (state,) = rows(database_url, "SELECT full_text_cap_words FROM ingest.feeds")
    assert state["full_text_cap_words"] == 200
    (twenty,) = rows(database_url, "SELECT text FROM news.articles WHERE url ~ '/20$'")
    assert len(twenty["text"].split()) > 300, len(twenty["text"].split())


async def test_a_poll_that_fails_after_storing_its_entries_keeps_their_full_text_evidence(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A new feed is proven full-text on three pages and its twelve entries are stored; then
    its poll fails (a bug once its entries are handled). The failure is recorded with the
    full-text state those entries left, so the next poll's 25 new entries cost only their
    one-in-twenty re-check, not three probes more."""
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    real = pipeline.store.defer_entries

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken after the entries were stored")

    pipeline.store.defer_entries = broken  # type: ignore[method-assign]
    first = await pipeline.run()
    assert (first.failed, first.new_articles, page_hits(site)) == (1, 12, 3)
    (state,) = rows(
        database_url,
        "SELECT last_status, full_text, full_text_streak, full_text_since_check,"
        " full_text_evidence FROM ingest.feeds",
    )
    assert state["last_status"] == "error"
    assert (state["full_text"], state["full_text_streak"]) == (True, CONFIRM)
    assert state["full_text_since_check"] == 9
    assert "the article" in state["full_text_evidence"]
    pipeline.store.defer_entries = real  # type: ignore[method-assign]
    site.routes["/feed"] = static(feed(site.base, range(37)), RSS)
    before = {r.path for r in site.requests}
    second = await pipeline.run(all_feeds=True)
    assert second.new_articles == 25
    assert {r.path for r in site.requests} - before == {"/a/22"}


async def test_entries_after_a_failed_re_check_wait_for_the_next_comparison(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven feed's pages now carry a weather note its texts leave out, from story 22 on.
    The next poll's re-check (22) fails: its entry keeps the feed's text, and the next entry
    (23) is compared in the same poll, before the entries after it are stored. It fails too,
    the feed is switched back, and 24-36 are stored from their pages: none of the poll's
    entries after the first miss is stored from a text nothing vouched for."""
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    for n in range(22, 37):
        site.routes[f"/a/{n}"] = static(page_with(n, [*paragraphs(n), WEATHER]))
    site.routes["/feed"] = static(feed(site.base, range(37)), RSS)
    before = {r.path for r in site.requests}
    second = await pipeline.run(all_feeds=True)
    assert second.new_articles == 25
    assert {r.path for r in site.requests} - before == {f"/a/{n}" for n in range(22, 37)}
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert (state["full_text"], state["full_text_streak"]) == (False, -MISSES)
    stored = {
        int(r["url"].rsplit("/", 1)[1]): r
        for r in rows(database_url, "SELECT url, text, text_source FROM news.articles")
    }
    assert stored[22]["text_source"] == "feed"
    assert "weather" not in stored[22]["text"]
    for n in range(23, 37):
        assert stored[n]["text_source"] == "page", n
        assert "weather" in stored[n]["text"], n


@pytest.mark.parametrize(("failing", "later"), [((22,), set()), ((22, 23), {"/a/37"})])
async def test_a_re_check_whose_page_fails_in_passing_has_the_next_entry_compared_instead(
    database_url: str,
    site: LocalServer,
    pipeline: Pipeline,
    failing: tuple[int, ...],
    later: set[str],
) -> None:
    """A proven feed's re-check (22) finds its page answering 503: the next entry of the same
    poll (23) is compared instead, and settles it; the poll's other entries are stored from
    the feed's text, and the next poll has nothing due. Where that page answers 503 as well,
    the comparison waits for the next poll (whose first new entry, 37, is compared) rather
    than costing a request for each entry of this one."""
    for n in failing:
        site.routes[f"/a/{n}"] = Response(503, b"unavailable", {"Content-Type": "text/plain"})
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    site.routes["/feed"] = static(feed(site.base, range(37)), RSS)
    before = {r.path for r in site.requests}
    second = await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/22", "/a/23"}
    assert (second.new_articles, second.from_feed) == (25, 25 - 2)
    sources = rows(database_url, "SELECT text_source FROM news.articles")
    assert [r["text_source"] for r in sources] == ["feed"] * 37
    site.routes["/feed"] = static(feed(site.base, range(40)), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == later
    (state,) = rows(database_url, "SELECT full_text FROM ingest.feeds")
    assert state["full_text"] is True


@pytest.mark.parametrize(("mode", "later"), [("auto", {"/a/22"}), ("feed", set())])
async def test_a_feed_moved_onto_a_registered_feed_brings_its_text_mode_settings_and_evidence(
    database_url: str, site: LocalServer, inline_workers: InlineWorkers, mode: str, later: set[str]
) -> None:
    """A feed (/old) with the operator's settings and text mode, proven full-text in `auto`
    mode, moves (a permanent redirect) to /feed, registered meanwhile with a header of its own
    and no evidence: merged into it, /feed takes /old's text mode, full-text state, its
    settings and headers it does not set itself (its own header wins, whatever the case of its
    name) and /old's tags beside its own. Its next poll of 25 new entries costs what /old's
    would have: one re-check (`auto`), none (`feed`), not three probes."""
    settings = Settings(
        database_url=database_url,
        allow_private_networks=True,
        host_delay=0,
        redirect_after_fetches=2,
        redirect_after=0,
    )
    pool = make_pool(database_url)
    await pool.open(wait=True)
    fetcher = Fetcher(settings)
    pipeline = Pipeline(settings, Store(pool), fetcher, inline_workers, rng=random.Random(0))
    try:
        site.routes["/old"] = Response(301, b"", {"Location": site.url("/feed")})
        site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
        old, new = site.url("/old"), site.url("/feed")
        await pipeline.store.add_feed(old)
        changes = {"user_agent": "Reader/1", "min_interval": 900}
        await pipeline.store.set_feed_settings(old, changes, {"X-Api-Key": "old"}, ["Wire"])
        assert await pipeline.store.set_text_mode(old, mode)  # type: ignore[arg-type]
        await pipeline.run()  # the redirect seen once: not moved yet
        await pipeline.store.add_feed(new)
        await pipeline.store.set_feed_settings(new, {}, {"x-api-key": "new"}, ["Local", "wire"])
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE ingest.feeds SET next_fetch_at = now()"
                " + CASE WHEN url = %s THEN interval '1 day' ELSE interval '-1 minute' END",
                (new,),
            )
        await pipeline.run()  # /old alone is due: seen twice, merged into /feed
        (kept,) = rows(
            database_url,
            "SELECT url, text_mode, settings, tags, full_text, full_text_since_check"
            " FROM ingest.feeds",
        )
        assert (kept["url"], kept["text_mode"]) == (new, mode)
        assert kept["settings"] == {**changes, "headers": {"x-api-key": "new"}}
        assert kept["tags"] == ["Local", "wire"]
        assert kept["full_text"] is (mode == "auto")
        assert kept["full_text_since_check"] == (9 if mode == "auto" else 0)
        site.routes["/feed"] = static(feed(site.base, range(37)), RSS)
        before = len(site.requests)
        third = await pipeline.run(all_feeds=True)
        assert third.new_articles == 25
        fetched = site.requests[before:]
        assert {r.path for r in fetched if r.path.startswith("/a/")} == later
        (polled,) = (r for r in fetched if r.path == "/feed")
        assert (polled.headers["user-agent"], polled.headers["x-api-key"]) == ("Reader/1", "new")
    finally:
        await fetcher.aclose()
        await pool.close()


TEMPLATE = (
    "Thank you for reading the Riverside Gazette. Our reporters cover the council, the "
    "schools, the courts and the canal district every day of the year, and this newsletter "
    "brings you their stories each morning. Read the full story on our website, where you "
    "can also sign up for our breaking news alerts, share your views with the editors and "
    "support local journalism with a subscription of your own."
)


async def test_a_text_every_new_entry_of_a_poll_carries_is_not_their_article(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed whose new entries all carry one text (a template: the
    newsletter's blurb in place of the story, long enough to pass for an article and ending
    like no excerpt): that text is stored as none of their articles; their pages are fetched
    and each is its page's story."""
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    before = page_hits(site)
    blurb = f"<content:encoded><![CDATA[<p>{TEMPLATE}</p>]]>"
    templated = feed(site.base, range(12, 18), parts=0).replace(
        "<content:encoded><![CDATA[]]>", blurb
    )
    items = feed(site.base, range(12))
    items = items[items.index("<item>") : items.index("</channel>")]
    site.routes["/feed"] = static(templated.replace("</channel>", f"{items}</channel>"), RSS)
    await pipeline.run(all_feeds=True)
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles WHERE id > 12")
    assert len(stored) == 6
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        assert row["text_source"] == "page"
        assert "newsletter" not in row["text"]
        assert clean_text("\n\n".join(paragraphs(n))) in row["text"]
    assert page_hits(site) - before == 6


@pytest.mark.parametrize("releases_failing", [0, 2])
async def test_a_poll_handed_back_unrecorded_keeps_its_full_text_evidence(
    database_url: str, site: LocalServer, pipeline: Pipeline, releases_failing: int
) -> None:
    """A new feed is proven full-text on three pages and its twelve entries are stored; then
    the poll's outcome cannot be written (the database went away for a moment), and the feed
    is handed back unrecorded: at once, or once the database answers again. The hand-back
    keeps the full-text state those stored entries left, so the next poll's 25 new entries
    cost only their one-in-twenty re-check, not three probes more."""

    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    failures = {"feeds_succeeded": 1, "release_leases": releases_failing}

    fail_first(pipeline.store, failures, "database unreachable: connection reset")
    first = await pipeline.run()
    assert (first.feeds, first.new_articles, page_hits(site)) == (0, 12, 3)
    for _ in range(200):
        leased = rows(database_url, "SELECT lease_owner FROM ingest.feeds")[0]["lease_owner"]
        if leased is None:
            break
        await asyncio.sleep(0.05)
    assert leased is None, "the lease was not handed back"
    (state,) = rows(
        database_url,
        "SELECT last_status, full_text, full_text_streak, full_text_since_check,"
        " full_text_evidence FROM ingest.feeds",
    )
    assert state["last_status"] is None  # no outcome recorded
    assert (state["full_text"], state["full_text_streak"]) == (True, CONFIRM)
    assert state["full_text_since_check"] == 9
    assert "the article" in state["full_text_evidence"]
    site.routes["/feed"] = static(feed(site.base, range(37)), RSS)
    before = {r.path for r in site.requests}
    second = await pipeline.run(all_feeds=True)
    assert second.new_articles == 25
    assert {r.path for r in site.requests} - before == {"/a/22"}


async def test_a_proven_feed_set_back_to_auto_compares_its_next_entry_first(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A feed proven full-text whose operator set it to `page`; while it was so, its entries
    turned into the first four paragraphs of six, no mark of the cut. Set back to `auto`, its
    next poll compares the first new entry before any is stored from the feed's text (the
    evidence is of before the override): that fails, so does the next, the feed is switched
    back, and all ten new entries are stored from their pages, none cut short."""
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    assert page_hits(site) == 3
    assert await pipeline.store.set_text_mode(site.url("/feed"), "page")
    site.routes["/feed"] = static(feed(site.base, range(17), parts=4), RSS)
    await pipeline.run(all_feeds=True)
    assert page_hits(site) == 3 + 5
    assert await pipeline.store.set_text_mode(site.url("/feed"), "auto")
    site.routes["/feed"] = static(feed(site.base, range(27), parts=4), RSS)
    before = page_hits(site)
    third = await pipeline.run(all_feeds=True)
    assert third.new_articles == 10
    assert page_hits(site) - before == 10
    (state,) = rows(database_url, "SELECT full_text, full_text_streak FROM ingest.feeds")
    assert (state["full_text"], state["full_text_streak"]) == (False, -MISSES)
    stored = rows(database_url, "SELECT url, text, text_source FROM news.articles")
    for row in stored:
        n = int(row["url"].rsplit("/", 1)[1])
        if n >= 17:
            assert row["text_source"] == "page", n
            assert paragraphs(n)[5] in row["text"], n


def templated_feed(base: str, numbers: range, templated: set[int]) -> str:
    """`feed` of `numbers`, the entries of `templated` carrying TEMPLATE in place of their
    story (their own link after it)."""
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/a/{n}</link><guid>{base}/a/{n}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=n))}</pubDate>"
        "<content:encoded><![CDATA["
        + (
            f"<p>{TEMPLATE}</p><p>{base}/a/{n}</p>"
            if n in templated
            else "".join(f"<p>{p}</p>" for p in paragraphs(n))
        )
        + "]]></content:encoded></item>"
        for n in numbers
    )
    return (
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<channel><title>T</title>{items}</channel></rss>"
    )


async def test_a_template_seen_in_an_earlier_poll_is_not_the_article_of_a_lone_entry(
    database_url: str, site: LocalServer, pipeline: Pipeline
) -> None:
    """A proven full-text feed whose two new entries of one poll carry its template (caught:
    their pages are fetched); at each later poll one new entry carries it, beside stories of
    their own. The feed keeps the template it saw: each lone one is no article either, its
    page fetched and stored, while the stories beside it are stored from the feed."""
    site.routes["/feed"] = static(feed(site.base, range(12)), RSS)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    site.routes["/feed"] = static(templated_feed(site.base, range(16), {12, 13}), RSS)
    before = {r.path for r in site.requests}
    await pipeline.run(all_feeds=True)
    assert {r.path for r in site.requests} - before == {"/a/12", "/a/13"}
    for k, lone in enumerate((16, 19)):
        numbers = range(19 + 3 * k)
        site.routes["/feed"] = static(templated_feed(site.base, numbers, {12, 13, lone}), RSS)
        before = {r.path for r in site.requests}
        polled = await pipeline.run(all_feeds=True)
        assert polled.new_articles == 3
        assert {r.path for r in site.requests} - before == {f"/a/{lone}"}
    stored = {
        int(r["url"].rsplit("/", 1)[1]): r
        for r in rows(database_url, "SELECT url, text, text_source FROM news.articles")
    }
    for n in (12, 13, 16, 19):
        assert stored[n]["text_source"] == "page", n
        assert "newsletter" not in stored[n]["text"], n
        assert paragraphs(n)[5] in stored[n]["text"], n
    assert {stored[n]["text_source"] for n in (14, 15, 17, 18, 20, 21)} == {"feed"}


LONG_TEMPLATE = (
    f"{TEMPLATE} Subscribers read every story of the Gazette in full, on the website and in "
    "the app, and get the morning newsletter and the weekend edition as well. This story is "
    "for subscribers only: sign in with your account, or subscribe today for a euro a week "
    "for the first three months, and read on."
)


@pytest.mark.parametrize("earlier", [False, True])
async def test_updates_that_turn_into_a_template_are_read_from_their_pages(
    database_url: str, site: LocalServer, pipeline: Pipeline, earlier: bool
) -> None:
    """A proven full-text feed whose entries 3 and 7 are updated to its paywall notice (as long
    as half the stored story: no teaser by its length): in one poll, or one of them after the
    feed showed the notice in place of two new entries' stories. The notice is the article of
    neither: their pages are fetched and decide the update, and as they still show the whole
    story, the articles keep it."""
    atom = "application/atom+xml"
    site.routes["/feed"] = static(atom_feed(site.base, range(12), {}), atom)
    await pipeline.store.add_feed(site.url("/feed"))
    await pipeline.run()
    (state,) = rows(database_url, "SELECT full_text FROM news.feeds")
    assert state["full_text"] is True
    notice = f"&lt;p&gt;{LONG_TEMPLATE}&lt;/p&gt;"
    if earlier:
        two = atom_feed(site.base, range(14), {})
        for n in (12, 13):
            body = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paragraphs(n))
            two = two.replace(body, notice)
        site.routes["/feed"] = static(two, atom)
        await pipeline.run(all_feeds=True)
    numbers = range(14) if earlier else range(12)
    updated = {3: (NOW + timedelta(minutes=5), ""), 7: (NOW + timedelta(minutes=5), "")}
    if earlier:
        del updated[7]
    later = atom_feed(site.base, numbers, updated)
    for n in [*updated, 12, 13] if earlier else updated:
        body = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paragraphs(n)) + "&lt;p&gt;&lt;/p&gt;"
        later = later.replace(body, notice).replace(body[: -len("&lt;p&gt;&lt;/p&gt;")], notice)
    assert later.count(notice) == len(updated) + (2 if earlier else 0)
    site.routes["/feed"] = static(later, atom)
    hits = {n: len(site.hits(f"/a/{n}")) for n in updated}
    await pipeline.run(all_feeds=True)
    for n in updated:
        assert len(site.hits(f"/a/{n}")) == hits[n] + 1, n
        (row,) = rows(database_url, f"SELECT text FROM news.articles WHERE url ~ '/a/{n}$'")
        assert "Gazette" not in row["text"], n
        assert all(p in row["text"] for p in paragraphs(n)), n
