"""ingest.store.Store against a fresh migrated database: feeds, leases (SKIP LOCKED), failure
counters, and idempotent article storage with URL aliases and content-hash duplicates."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.neardup import fingerprint
from ingest.normalize import content_hash, entry_hash
from ingest.store import Store, StoredCounts
from ingest.store.db import make_pool
from ingest.types import EXACT_MIN_WORDS, Article
from tests.support.paths import ROOT
from tests.support.secret_urls import SECRET
from tests.support.stories import THAI_CARRIED, THAI_OTHER, THAI_STORY

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2025, 8, 11, 13, 0, tzinfo=UTC)
SAME_STORY = "The same story, word for word, as two sites of one group printed it."


def _rows(dsn: str, query: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def _article(url: str, text: str | None = None, **overrides: object) -> Article:
    body = (
        text if text is not None else f"Body of the article at {url}.\n\nSecond paragraph, of it."
    )
    fields: dict[str, object] = {
        "url": url,
        "original_url": url + "?utm_source=rss",
        "title": f"Title {url}",
        "text": body,
        "author": "A. Writer",
        "published_at": NOW - timedelta(hours=1),
        "published_source": "feed",
        "updated_at": None,
        "language": "en",
        "site": "example.com",
        "image_url": None,
        "summary": None,
        "content_hash": content_hash(body),
        "text_source": "page",
        "extraction_error": None,
        "guid": f"guid:{url}",
        "fetched_at": NOW,
        "aliases": (),
    }
    fields.update(overrides)
    return Article(**fields)  # type: ignore[arg-type]


def _key(article: Article) -> bytes:
    return entry_hash("guid:" + (article.guid or ""))


async def _feed_ids(store: Store, n: int) -> list[int]:
    for i in range(n):
        assert await store.add_feed(f"https://feeds{i}.example/{i}.xml")
    return [f["id"] for f in await store.list_feeds()]


# --- feeds -----------------------------------------------------------------------------------


async def test_add_and_remove_feeds(store: Store) -> None:
    """Adding a registered URL again reports False and keeps one row, even for a 300 KB URL
    (uniqueness is on its hash); removing reports whether the feed existed."""
    plain = "https://example.com/feed/"
    huge = "https://example.com/feed?token=" + "y" * 300_000
    for url in (plain, huge):
        assert await store.add_feed(url) is True
        assert await store.add_feed(url) is False
    assert [f["url"] for f in await store.list_feeds()] == [plain, huge]
    for url in (plain, huge):
        assert await store.remove_feed(url) is True
        assert await store.remove_feed(url) is False
    assert await store.list_feeds() == []


async def test_concurrent_claims_are_disjoint(store: Store) -> None:
    """Owners claiming at the same moment (SKIP LOCKED) get disjoint sets: first two owners
    racing for everything, then five racing for small batches; every feed is claimed once."""
    ids = await _feed_ids(store, 16)
    a, b = await asyncio.gather(
        store.claim_feeds(owner="a", lease_seconds=600, limit=4, all_feeds=True),
        store.claim_feeds(owner="b", lease_seconds=600, limit=4, all_feeds=True),
    )
    assert {f.id for f in a}.isdisjoint({f.id for f in b})
    claims = [a, b] + await asyncio.gather(
        *(
            store.claim_feeds(owner=f"owner-{n}", lease_seconds=600, limit=3, all_feeds=False)
            for n in range(5)
        )
    )
    claimed = [f.id for batch in claims for f in batch]
    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == sorted(ids)
    assert all(len(batch) <= 4 for batch in claims)


@pytest.mark.parametrize("all_feeds", [False, True])
async def test_claims_leave_out_the_feeds_of_busy_hosts(store: Store, all_feeds: bool) -> None:
    """A claim names each feed's host as `ingest.url_host` reads it (lower-cased, without user,
    port, path or the root's trailing dot, as politeness counts hosts) and leaves out the feeds
    of the hosts it is told have no room left."""
    urls = [
        "https://News.Example.com:8443/feed/",
        "https://user@news.example.com/other.xml",
        "https://news.example.com./third.xml",
        "https://blog.example.org/feed/",
        "http://[::1]:8080/feed",
    ]
    for url in urls:
        await store.add_feed(url)
    claimed = await store.claim_feeds(
        owner="a",
        lease_seconds=600,
        limit=10,
        all_feeds=all_feeds,
        host_room={"news.example.com": 0},
    )
    assert sorted(f.host for f in claimed) == ["[::1]", "blog.example.org"]
    rest = await store.claim_feeds(owner="a", lease_seconds=600, limit=10, all_feeds=all_feeds)
    assert [f.host for f in rest] == ["news.example.com"] * 3


@pytest.mark.parametrize("all_feeds", [False, True])
async def test_a_host_s_room_holds_where_it_exceeds_the_limit_for_other_hosts(
    store: Store, all_feeds: bool
) -> None:
    """A host named in `host_room` is leased up to its room, not `host_limit` (the bound of
    hosts it does not name), also when that room is at least the claim's `limit`."""
    for n in range(4):
        await store.add_feed(f"https://wide.example.com/feed/{n}")
    claimed = await store.claim_feeds(
        owner="a",
        lease_seconds=600,
        limit=3,
        all_feeds=all_feeds,
        host_room={"wide.example.com": 5},
        host_limit=1,
    )
    assert len(claimed) == 3


async def test_leased_feeds_not_reclaimed_until_expiry(store: Store, database_url: str) -> None:
    """A leased feed is not claimed again, even with all_feeds, until its lease expires."""
    ids = await _feed_ids(store, 3)
    first = await store.claim_feeds(owner="a", lease_seconds=600, limit=10, all_feeds=True)
    assert sorted(f.id for f in first) == ids
    assert await store.claim_feeds(owner="b", lease_seconds=600, limit=10, all_feeds=True) == []
    assert await store.claim_feeds(owner="a", lease_seconds=600, limit=10, all_feeds=True) == []

    expired = ids[0]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
            (expired,),
        )
        # Its process is gone: the hold of its host lapses with the lease (sql/0045).
        conn.execute(
            "UPDATE ingest.host_holds SET held_until = now() - interval '1 second'"
            " WHERE host = (SELECT ingest.url_host(url) FROM ingest.feeds WHERE id = %s)",
            (expired,),
        )
    again = await store.claim_feeds(owner="b", lease_seconds=600, limit=10, all_feeds=True)
    assert [f.id for f in again] == [expired]


async def test_release_frees_and_short_lease_lapses(store: Store) -> None:
    """release_leases frees a feed at once, but only for the owner that holds it; a lease of a
    fraction of a second lapses on its own."""
    released, short = await _feed_ids(store, 2)
    await store.claim_feeds(owner="a", lease_seconds=600, limit=1, all_feeds=True, exclude=[short])
    await store.release_leases("b", [released])
    assert (
        await store.claim_feeds(
            owner="b", lease_seconds=600, limit=1, all_feeds=True, exclude=[short]
        )
        == []
    )
    await store.release_leases("a", [released])
    await store.release_hosts("a", ["feeds0.example"], 0)  # a's run ended (sql/0045)
    again = await store.claim_feeds(
        owner="b", lease_seconds=600, limit=1, all_feeds=True, exclude=[short]
    )
    assert [f.id for f in again] == [released]

    assert await store.claim_feeds(owner="a", lease_seconds=0.3, limit=1, all_feeds=True)
    assert await store.claim_feeds(owner="b", lease_seconds=600, limit=1, all_feeds=True) == []
    await asyncio.sleep(0.4)
    again = await store.claim_feeds(owner="b", lease_seconds=600, limit=1, all_feeds=True)
    assert [f.id for f in again] == [short]


async def _claim(store: Store, owner: str = "a") -> None:
    assert await store.claim_feeds(owner=owner, lease_seconds=600, limit=1, all_feeds=True)


async def test_failure_counter(store: Store, database_url: str) -> None:
    """feed_failed increments consecutive_failures, records the error and when it was fetched
    (by the database's clock), remembers when the failures began and reschedules (a feed not
    yet due is not claimed); feed_succeeded resets the counter and clears the error."""
    (feed_id,) = await _feed_ids(store, 1)
    first: datetime | None = None
    for n in (1, 2, 3):
        await _claim(store)
        await store.feed_failed(
            feed_id, owner="a", now=NOW + timedelta(minutes=n), next_fetch_at=NOW, error=f"e{n}"
        )
        (row,) = _rows(database_url, "SELECT * FROM news.feeds WHERE id = %s", (feed_id,))
        assert row["consecutive_failures"] == n
        assert row["last_status"] == "error"
        assert row["last_error"] == f"e{n}"
        # By the database's clock, as the next fetch is: the interval `feeds show` prints.
        (polled,) = _rows(
            database_url, "SELECT polled_at FROM ingest.feeds WHERE id = %s", (feed_id,)
        )
        assert row["last_fetched_at"] == polled["polled_at"]
        # When the first failure was recorded, by the database's clock too.
        first = first or polled["polled_at"]
        assert row["failing_since"] == first

    later = datetime.now(UTC) + timedelta(hours=1)
    await _claim(store)
    await store.feed_failed(feed_id, owner="a", now=NOW, next_fetch_at=later, error="e4")
    # Not due: only all_feeds (ignoring the schedule) claims it.
    assert await store.claim_feeds(owner="a", lease_seconds=600, limit=1, all_feeds=False) == []
    claimed = await store.claim_feeds(owner="a", lease_seconds=600, limit=1, all_feeds=True)
    assert claimed[0].consecutive_failures == 4

    await store.feed_succeeded(
        feed_id,
        owner="a",
        now=NOW,
        next_fetch_at=NOW + timedelta(minutes=30),
        not_modified=False,
        etag='"v2"',
        last_modified=None,
        body_hash=b"\x01" * 32,
        parsed=True,
        title="Example feed",
    )
    (row,) = _rows(database_url, "SELECT * FROM news.feeds WHERE id = %s", (feed_id,))
    assert row["consecutive_failures"] == 0
    assert row["last_status"] == "ok"
    assert row["last_error"] is None
    assert row["failing_since"] is None
    assert row["title"] == "Example feed"
    # NOW is long past by the database's clock: the 30 minutes count from the database's now.
    (polled,) = _rows(database_url, "SELECT polled_at FROM ingest.feeds WHERE id = %s", (feed_id,))
    assert row["next_fetch_at"] == polled["polled_at"] + timedelta(minutes=30)


async def test_a_failure_quoting_a_url_is_stored_without_its_credentials(
    store: Store, database_url: str
) -> None:
    """The error a failed poll records, and the reason a feed given up on keeps, hold no
    user-info or token of a URL they quote (a redirect target), in ingest.feeds itself."""
    (feed_id,) = await _feed_ids(store, 1)
    await _claim(store)
    quoted = f"https://reader:{SECRET}@example.com/feed?api_key={SECRET}"
    await store.feed_failed(
        feed_id,
        owner="a",
        now=NOW,
        next_fetch_at=NOW,
        error=f"invalid redirect location {quoted!r}",
        deactivate=True,
    )
    (row,) = _rows(database_url, "SELECT last_error, inactive_reason FROM ingest.feeds")
    shown = "invalid redirect location 'https://example.com/feed?api_key=***'"
    assert (row["last_error"], row["inactive_reason"]) == (
        shown,
        f"gave up after repeated failures; last: {shown}",
    )


async def test_deactivate_and_recover(store: Store, database_url: str) -> None:
    """feed_failed with deactivate turns the feed inactive with a reason; a later success
    makes it active again."""
    (feed_id,) = await _feed_ids(store, 1)
    await _claim(store)
    await store.feed_failed(
        feed_id, owner="a", now=NOW, next_fetch_at=NOW, error="HTTP 410 Gone", deactivate=True
    )
    (row,) = _rows(database_url, "SELECT active, inactive_reason FROM news.feeds")
    assert row["active"] is False
    assert "HTTP 410 Gone" in row["inactive_reason"]
    await _claim(store)
    await store.feed_succeeded(
        feed_id,
        owner="a",
        now=NOW,
        next_fetch_at=NOW,
        not_modified=True,
        etag=None,
        last_modified=None,
        body_hash=None,
        parsed=False,
    )
    (row,) = _rows(database_url, "SELECT active, inactive_reason FROM news.feeds")
    assert (row["active"], row["inactive_reason"]) == (True, None)


async def test_outcome_of_a_lost_lease_is_not_recorded(store: Store, database_url: str) -> None:
    """A process whose lease expired and was taken over cannot overwrite the new holder's
    state: its feed_failed / feed_succeeded change nothing."""
    (feed_id,) = await _feed_ids(store, 1)
    assert await store.claim_feeds(owner="a", lease_seconds=0.1, limit=1, all_feeds=True)
    await asyncio.sleep(0.2)
    await _claim(store, owner="b")
    await store.feed_failed(feed_id, owner="a", now=NOW, next_fetch_at=NOW, error="late")
    (row,) = _rows(database_url, "SELECT * FROM ingest.feeds")
    assert (row["last_error"], row["lease_owner"], row["consecutive_failures"]) == (None, "b", 0)


async def test_success_clears_lease_and_keeps_validators(store: Store) -> None:
    """After feed_succeeded the feed is free to claim and carries its new validators."""
    (feed_id,) = await _feed_ids(store, 1)
    await _claim(store)
    await store.feed_succeeded(
        feed_id,
        owner="a",
        now=NOW,
        next_fetch_at=NOW,
        not_modified=True,
        etag='"e1"',
        last_modified="Wed, 01 Jan 2025 00:00:00 GMT",
        body_hash=None,
        parsed=False,
    )
    await store.release_hosts("a", ["feeds0.example"], 0)  # a's run ended (sql/0045)
    (feed,) = await store.claim_feeds(owner="b", lease_seconds=600, limit=1, all_feeds=False)
    assert (feed.etag, feed.last_modified) == ('"e1"', "Wed, 01 Jan 2025 00:00:00 GMT")


# --- articles --------------------------------------------------------------------------------


async def test_store_articles_idempotent(store: Store, database_url: str) -> None:
    """Storing the same articles twice: the second time all are existing and no row is added;
    a changed copy under the same URL does not replace the first; an empty batch stores
    nothing."""
    assert await store.store_articles(None, []) == StoredCounts(0, 0)
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    articles = [_article(f"https://example.com/news/{n}") for n in range(3)]
    items = [(a, _key(a)) for a in articles]

    first = await store.store_articles(feed_id, items)
    assert (first.new, first.existing) == (3, 0)
    count = _rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"]
    assert count == 3

    second = await store.store_articles(feed_id, items)
    assert (second.new, second.existing) == (0, 3)
    assert _rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == count
    done, waiting = await store.known_entries(feed_id, [k for _, k in items])
    assert (set(done), waiting) == ({k for _, k in items}, {})

    # Stored again with other fields under the same URL: still one row, the first version.
    changed = replace(articles[0], title="Changed title")
    assert (await store.store_articles(feed_id, [(changed, _key(changed))])).existing == 1
    titles = _rows(database_url, "SELECT title FROM news.articles WHERE url = %s", (changed.url,))
    assert [r["title"] for r in titles] == [articles[0].title]


async def test_stored_row_matches_article(store: Store, database_url: str) -> None:
    """The view shows what was stored: URL, texts, sources, feed and hex content hash."""
    feed_url = "https://example.com/feed/"
    await store.add_feed(feed_url)
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    article = _article("https://example.com/news/1", language="fr", summary="S")
    await store.store_articles(feed_id, [(article, _key(article))])
    (row,) = _rows(database_url, "SELECT * FROM news.articles")
    assert row["url"] == article.url
    assert row["original_url"] == article.original_url
    assert row["text"] == article.text
    assert row["published_at"] == article.published_at
    assert row["published_source"] == article.published_source
    assert row["content_hash"] == article.content_hash.hex()
    assert row["feed_id"] == feed_id
    assert row["feed_url"] == feed_url
    assert row["duplicate_of"] is None
    assert (row["language"], row["summary"], row["guid"]) == ("fr", "S", article.guid)


async def test_authors_and_tags_are_arrays(store: Store, database_url: str) -> None:
    """news.articles shows each person and each tag as an array element, in order; `author`
    is their joined form."""
    article = _article(
        "https://example.com/news/people",
        author="Jane Doe, dpa",
        authors=("Jane Doe", "dpa"),
        tags=("Klima", "Energie"),
    )
    await store.store_articles(None, [(article, _key(article))])
    (row,) = _rows(database_url, "SELECT author, authors, tags FROM news.articles")
    assert row == {
        "author": "Jane Doe, dpa",
        "authors": ["Jane Doe", "dpa"],
        "tags": ["Klima", "Energie"],
    }
    topic = _rows(
        database_url, "SELECT count(*) AS n FROM news.articles WHERE tags @> ARRAY['Klima']"
    )
    assert topic == [{"n": 1}]


async def test_aliases_found_by_known_urls(store: Store) -> None:
    """known_urls finds an article by its canonical URL and by every alias."""
    canonical = "https://example.com/news/2025/story"
    aliases = ("https://www.example.com/news/story", "https://example.com/?p=123")
    article = _article(canonical, aliases=aliases)
    await store.store_articles(None, [(article, None)])
    found = await store.known_urls([canonical, *aliases, "https://example.com/other"])
    assert set(found) == {canonical, *aliases}
    assert len(set(found.values())) == 1


async def test_known_entries_and_urls_in_one_answer(store: Store) -> None:
    """For a poll's entries: those done and waiting, as `known_entries` says, and the articles
    stored under the links of the entries not done (a waiting entry's too), as `known_urls`
    says; a done entry's link is not looked up."""
    (feed_id,) = await _feed_ids(store, 1)
    done_article = _article("https://example.com/news/done")
    await store.store_articles(feed_id, [(done_article, _key(done_article))])
    elsewhere = _article("https://example.com/news/elsewhere")
    await store.store_articles(None, [(elsewhere, None)])
    waiting_key = entry_hash("guid:waiting")
    await store.defer_entries(feed_id, [waiting_key])
    new_key = entry_hash("guid:new")
    keys = [_key(done_article), waiting_key, new_key]
    links = [done_article.url, elsewhere.url, "https://example.com/news/unknown"]
    done, waiting, urls = await store.known_entries_and_urls(feed_id, keys, links)
    assert (set(done), waiting) == ({_key(done_article)}, {waiting_key: 1})
    assert urls == await store.known_urls([elsewhere.url])
    assert list(urls) == [elsewhere.url]
    assert (done, waiting) == await store.known_entries(feed_id, keys)
    with pytest.raises(ValueError, match="one link per entry"):
        await store.known_entries_and_urls(feed_id, keys, links[:2])


async def test_link_entries_marks_entries_known(store: Store) -> None:
    """Linking an entry of another feed to a stored article makes it known to that feed."""
    for url in ("https://a.example/feed", "https://b.example/feed"):
        await store.add_feed(url)
    feed_a, feed_b = [f["id"] for f in await store.list_feeds()]
    article = _article("https://example.com/news/shared")
    await store.store_articles(feed_a, [(article, _key(article))])
    (article_id,) = (await store.known_urls([article.url])).values()
    key_b = entry_hash("guid:from-feed-b")
    assert await store.known_entries(feed_b, [key_b]) == ({}, {})
    await store.link_entries(feed_b, [(key_b, article_id)])
    assert await store.known_entries(feed_b, [key_b]) == ({key_b: None}, {})


async def test_a_feed_merged_into_another_keeps_what_either_knew_of_their_entries(
    store: Store,
) -> None:
    """Feed A moves to the URL of feed B, both listing entries 1 and 2: A stored entry 1 (with
    its update time) while B's try at its page failed, and both failed at entry 2's page, A
    twice. Merged, B has entry 1 done with its update time, and entry 2 tried twice."""
    for url in ("https://a.example/feed", "https://b.example/feed"):
        await store.add_feed(url)
    feed_a, feed_b = [f["id"] for f in await store.list_feeds()]
    article = _article("https://example.com/news/1", updated_at=NOW)
    one, two = _key(article), entry_hash("guid:2")
    await store.store_articles(feed_a, [(article, one)])
    await store.defer_entries(feed_a, [two])
    await store.defer_entries(feed_a, [two])
    await store.defer_entries(feed_b, [one, two])
    # Not leased by this process (nor by any): nothing moves.
    assert await store.move_feed(feed_a, "https://b.example/feed", owner="a") == "lost"
    assert len(await store.list_feeds()) == 2
    await store.claim_feeds(owner="a", lease_seconds=600, limit=2, all_feeds=True)
    assert await store.move_feed(feed_a, "https://b.example/feed", owner="a") == (feed_b, [])
    assert await store.known_entries(feed_b, [one, two]) == ({one: NOW}, {two: 2})


async def test_a_feed_s_entries_are_recorded_while_another_feed_merges_into_it(
    store: Store, database_url: str
) -> None:
    """Feed A merges into feed B while B's own poll records its entries: the merge locks B's
    row against a pause or a removal, not against the rows that refer to it, so B's entries
    are recorded without waiting for the merge (was: B's entry waited for the merge, which
    then waited for B's entry where both had it: deadlock, PostgreSQL aborting one of them
    after a second, the other's poll or move handed back)."""
    for url in ("https://a.example/feed", "https://b.example/feed"):
        await store.add_feed(url)
    feed_a, feed_b = [f["id"] for f in await store.list_feeds()]
    one, two = _article("https://example.com/news/1"), _article("https://example.com/news/2")
    await store.store_articles(feed_a, [(one, _key(one))])
    await store.store_articles(None, [(two, None)])
    ids = await store.known_urls([one.url, two.url])
    two_id = ids[two.url]
    assert two_id is not None
    await store.claim_feeds(owner="a", lease_seconds=600, limit=2, all_feeds=True)
    holder = await psycopg.AsyncConnection.connect(database_url)
    admin = await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    async def waiting() -> int:
        cur = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return int((await cur.fetchone() or (0,))[0])

    try:
        # A's entry's article held: the merge waits there, holding B's row.
        await holder.execute(
            "SELECT 1 FROM ingest.articles WHERE id = %s FOR UPDATE", (ids[one.url],)
        )
        move = asyncio.create_task(store.move_feed(feed_a, "https://b.example/feed", owner="a"))
        while not await waiting():
            assert not move.done(), move.result()
            await asyncio.sleep(0.02)
        link = asyncio.create_task(store.link_entries(feed_b, [(_key(two), two_id)]))
        while not link.done():
            assert await waiting() < 2, "B's entry waits for the merge"
            await asyncio.sleep(0.02)
        await link
        await holder.rollback()
        assert await asyncio.wait_for(move, 30) == (feed_b, [])
    finally:
        await holder.close()
        await admin.close()
    done, _ = await store.known_entries(feed_b, [_key(one), _key(two)])
    assert set(done) == {_key(one), _key(two)}


@pytest.mark.parametrize(
    ("headers", "left", "settings"),
    [
        ({"Authorization": "Bearer x"}, ["Authorization"], {"min_interval": 900}),
        (
            {"cookie": "s=1", "PROXY-Authorization": "Basic y", "X-Edition": "uk"},
            ["PROXY-Authorization", "cookie"],
            {"min_interval": 900, "headers": {"X-Edition": "uk"}},
        ),
        ({"X-Edition": "uk"}, [], {"min_interval": 900, "headers": {"X-Edition": "uk"}}),
        (None, [], {"min_interval": 900, "headers": {}}),  # as `feeds set` left them
    ],
)
async def test_a_feed_moved_leaves_the_headers_named_behind(
    store: Store,
    database_url: str,
    headers: dict[str, str] | None,
    left: list[str],
    settings: dict[str, object],
) -> None:
    """`move_feed` with header names to leave (any case of them stored): those headers go,
    the others and the other settings stay, the names are returned as they were stored, and
    a feed left without headers keeps no empty set of them."""
    old = "https://a.example/feed"
    await store.add_feed(old)
    await store.set_feed_settings(old, {"min_interval": 900}, dict(headers or {}), None)
    feed_id = (await store.list_feeds())[0]["id"]
    leave = {"authorization", "cookie", "proxy-authorization"}
    await _claim(store)
    moved = await store.move_feed(feed_id, "https://b.example/feed", leave_headers=leave, owner="a")
    assert moved == (feed_id, left)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT url, settings FROM ingest.feeds").fetchone()
    assert row == ("https://b.example/feed", settings)


async def test_content_hash_duplicate(store: Store, database_url: str) -> None:
    """The same body (up to case and layout) under another URL is stored with duplicate_of =
    the first article's id, across calls and within one call."""
    text = "One story syndicated to three sites.\n\nWord for word, as the wire sent it."
    first = _article("https://one.example/story", text)
    copy = _article("https://two.example/copied", text.upper(), site="two.example")
    rewrapped = _article("https://three.example/s", text.replace("\n\n", " "))
    assert first.content_hash == copy.content_hash == rewrapped.content_hash
    await store.store_articles(None, [(first, None)])
    await store.store_articles(None, [(copy, None), (rewrapped, None)])
    rows = _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles ORDER BY id")
    first_id = rows[0]["id"]
    assert {(r["url"], r["duplicate_of"]) for r in rows} == {
        (first.url, None),
        (copy.url, first_id),
        (rewrapped.url, first_id),
    }


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
async def test_a_copy_written_after_another_writer_s_turn_sees_its_original(
    database_url: str, isolation: str
) -> None:
    """Writers take turns (the article-writes lock), and each reads what the one before it
    committed: so too on a database whose sessions default to another isolation level (`ALTER
    DATABASE news SET default_transaction_isolation = 'repeatable read'`), where a
    transaction's snapshot is taken by its first statement, the lock, before its turn comes.
    Two replicas store one story under two URLs at once; the second, waiting behind the first,
    stores its copy as a copy of the first's article."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"ALTER DATABASE {conn.info.dbname} SET default_transaction_isolation = '{isolation}'"
        )
    text = "One story syndicated to two sites.\n\nWord for word, as the wire sent it to both."
    first = _article("https://one.example/story", text)
    copy = _article("https://two.example/copied", text, site="two.example")
    pools = [make_pool(database_url, max_size=2) for _ in range(2)]
    holder = psycopg.connect(database_url)
    try:
        for pool in pools:
            await pool.open(wait=True, timeout=15)
        holder.execute("SELECT pg_advisory_xact_lock(ingest.article_writes_lock_key())")

        async def waiting(n: int) -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for _ in range(600):
                    row = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                    ).fetchone()
                    if row == (n,):
                        return
                    await asyncio.sleep(0.05)
            raise AssertionError(f"{n} writers never waited for their turn")

        one = asyncio.create_task(Store(pools[0]).store_articles(None, [(first, None)]))
        await waiting(1)
        two = asyncio.create_task(Store(pools[1]).store_articles(None, [(copy, None)]))
        await waiting(2)
        holder.commit()
        await asyncio.gather(one, two)
    finally:
        holder.close()
        for pool in pools:
            await pool.close()
    rows = _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles ORDER BY id")
    assert [(r["url"], r["duplicate_of"]) for r in rows] == [
        (first.url, None),
        (copy.url, rows[0]["id"]),
    ]


CHINESE_BRIEF = (
    "新华社北京6月2日电 国家统计局今天发布数据显示，今年5月份全国规模以上工业增加值同比增长"
    "百分之五点六，比上月加快零点三个百分点。从环比看，5月份规模以上工业增加值比上月增长零点"
    "四七个百分点。\n\n分三大门类看，5月份采矿业增加值同比增长百分之三点一，制造业增长百分之六"
    "点零，电力、热力、燃气及水生产和供应业增长百分之四点三。\n\n国家统计局新闻发言人表示，当前"
    "外部环境依然复杂严峻，国内需求仍显不足，经济回升向好的基础还需巩固。"
)


async def test_a_chinese_story_printed_word_for_word_by_two_sites_is_a_copy(
    store: Store, database_url: str
) -> None:
    """A Chinese (or Japanese) text has no spaces between its words: each character is one
    (`ingest.coverage.words`), so a wire brief of three paragraphs holds far more than
    EXACT_MIN_WORDS words and its copy under another URL is a copy, as an English one is."""
    assert len(CHINESE_BRIEF.split()) < EXACT_MIN_WORDS
    first = _article("https://news.example.cn/a/1.html", CHINESE_BRIEF, language="zh")
    copy = _article(
        "https://www.other.example.cn/n/2.shtml", CHINESE_BRIEF, language="zh", site="other.cn"
    )
    await store.store_articles(None, [(first, None)])
    await store.store_articles(None, [(copy, None)])
    rows = _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles ORDER BY id")
    assert [(r["url"], r["duplicate_of"]) for r in rows] == [
        (first.url, None),
        (copy.url, rows[0]["id"]),
    ]


async def test_a_thai_story_carried_lightly_edited_by_another_site_is_a_copy(
    store: Store, database_url: str
) -> None:
    """A Thai story (no spaces between words, vowels and tones written as combining signs)
    carried by another site with its own dateline, a credit line and three words changed is a
    copy of the first: each letter with its signs is a word for the shingles."""
    first = _with_fingerprint("https://news.example.co.th/economy/1", THAI_STORY)
    copy = _with_fingerprint("https://www.other.example.co.th/n/2", THAI_CARRIED)
    other = _with_fingerprint("https://news.example.co.th/region/3", THAI_OTHER)
    for article in (first, copy, other):
        await store.store_articles(None, [(article, None)])
    rows = _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles ORDER BY id")
    assert [(r["url"], r["duplicate_of"]) for r in rows] == [
        (first.url, None),
        (copy.url, rows[0]["id"]),
        (other.url, None),
    ]


async def test_empty_texts_are_not_duplicates(store: Store, database_url: str) -> None:
    """Two different stories that both ended up without text are not copies of each other."""
    a = _article("https://a.example/story-1", "", text_source="feed", extraction_error="HTTP 403")
    b = _article("https://a.example/story-2", "", text_source="feed", extraction_error="HTTP 403")
    await store.store_articles(None, [(a, None), (b, None)])
    rows = _rows(database_url, "SELECT duplicate_of FROM news.articles ORDER BY id")
    assert [r["duplicate_of"] for r in rows] == [None, None]


async def test_huge_url_and_long_guid(store: Store, database_url: str) -> None:
    """A 300 KB URL (beyond any btree entry: uniqueness is on its hash) and a 100 KB guid are
    stored, found again, and not duplicated on a second store."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    url = "https://example.com/search?q=" + "x" * 300_000
    guid = "tag:example.com,2025:" + "g" * 100_000
    article = _article(url, aliases=(url + "&page=1",), guid=guid)
    key = _key(article)
    assert (await store.store_articles(feed_id, [(article, key)])).new == 1
    assert (await store.store_articles(feed_id, [(article, key)])).existing == 1
    found = await store.known_urls([url, url + "&page=1"])
    assert set(found) == {url, url + "&page=1"}
    assert await store.known_entries(feed_id, [key]) == ({key: None}, {})
    (row,) = _rows(database_url, "SELECT url, guid FROM news.articles")
    assert (row["url"], row["guid"]) == (url, guid)


async def test_removed_feed_keeps_articles(store: Store, database_url: str) -> None:
    """Removing a feed leaves its articles, with feed_id NULL."""
    url = "https://example.com/feed/"
    await store.add_feed(url)
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    article = _article("https://example.com/news/kept")
    await store.store_articles(feed_id, [(article, _key(article))])
    assert await store.remove_feed(url)
    (row,) = _rows(database_url, "SELECT url, feed_id, feed_url FROM news.articles")
    assert (row["url"], row["feed_id"], row["feed_url"]) == (article.url, None, None)


WIRE = (
    "The central bank raised its main interest rate by a quarter of a percentage point on "
    "Thursday, the third increase this year, saying that inflation in services had proved more "
    "stubborn than expected. The governor told reporters that the committee would watch wage "
    "settlements closely over the winter and did not rule out a further move in the spring. "
    "Markets had largely priced in the decision, and the currency was little changed in "
    "afternoon trading. Economists said the statement suggested the cycle was close to its "
    "peak, although two members of the committee voted for a larger increase. Mortgage lenders "
    "are expected to pass the rise on to borrowers with variable-rate loans within weeks."
)
OTHER = (
    "The city council approved a plan on Monday to pedestrianise three streets in the old town "
    "from next summer, after a trial last year cut traffic noise and drew more visitors to "
    "local shops. Shop owners were divided: some welcomed the footfall, others said deliveries "
    "would become harder and asked for loading hours in the early morning. The council said "
    "buses would be rerouted along the ring road and that residents would keep access to their "
    "garages. A final vote on the budget for new paving and benches is due in the autumn, and "
    "work could start as soon as the tourist season ends if the money is approved by then."
)


FOOTER = (
    (
        "Get the Ashby Advertiser in your inbox. Our free morning newsletter brings you the day's "
        "local news, sport, weather and what's on, every weekday at 7 a.m. Sign up on our website "
        "in less than a minute, and unsubscribe at any time with one click. We will never share "
        "your email address with anyone else."
    ),
    (
        "Local journalism needs your support. The Ashby Advertiser has reported on this town since "
        "1887. Our reporters attend council meetings, school board hearings and court sessions so "
        "that you don't have to, and we hold local institutions to account. If you value what we "
        "do, please consider becoming a subscriber: it costs less than a cup of coffee a week, and "
        "every subscription helps us keep a reporter in the town hall."
    ),
    (
        "Have a story for us? Contact the newsroom by email or call our news desk during office "
        "hours. You can also send us photos and videos through the form on our website. Letters to "
        "the editor should be no longer than 300 words and must include your name and the area "
        "where you live."
    ),
    (
        "Copyright Ashby Advertiser. All rights reserved. This article may not be reproduced "
        "without permission."
    ),
)
"""The paragraphs a local site's extraction keeps under each of its articles."""


def _with_fingerprint(url: str, text: str) -> Article:
    return _article(url, text, fingerprint=fingerprint(text))


async def test_near_duplicate_lookups_probe_the_band_index_as_a_new_database_grows(
    database_url: str,
) -> None:
    """One writer connection on a new database (its band table analyzed empty, autovacuum not
    come by yet) stores article after article: the near-copy lookups probe the band index and
    never read the whole table, as a plan made from those statistics would, and would go on
    doing as the table grows. The scans are counted by PostgreSQL (pg_stat_user_tables)."""
    rng = random.Random(7)
    vocabulary = [f"word{n}" for n in range(5000)]
    pool = make_pool(database_url, max_size=1)  # one connection: its cached plans are reused
    await pool.open(wait=True, timeout=15)
    try:
        store = Store(pool)
        (feed_id,) = await _feed_ids(store, 1)

        async def seq_scans() -> int:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_stat_force_next_flush()")
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT seq_scan FROM pg_stat_user_tables"
                    " WHERE relid = 'ingest.article_bands'::regclass"
                )
                row = await cur.fetchone()
                assert row is not None
                return int(row[0])

        async def store_some(n: int, start: int) -> None:
            for k in range(start, start + n):
                text = " ".join(rng.choice(vocabulary) for _ in range(60))
                article = _with_fingerprint(f"https://grow.example/{k}", text)
                counts = await store.store_articles(feed_id, [(article, _key(article))])
                assert counts.new == 1

        await store_some(100, 0)
        before = await seq_scans()
        await store_some(50, 100)
        assert await seq_scans() == before
    finally:
        await pool.close()


async def test_near_duplicates_point_at_the_original(store: Store, database_url: str) -> None:
    """A syndicated copy with an added line, and a copy of that copy, both get duplicate_of =
    the first article; a different story on the same site does not."""
    first = _with_fingerprint("https://wire.example/rates", WIRE)
    copy = _with_fingerprint(
        "https://paper.example/economy/rates", "(Wire) - " + WIRE + " First published by Wire."
    )
    copy_of_copy = _with_fingerprint(
        "https://blog.example/rates", WIRE.replace("Thursday", "Thursday afternoon")
    )
    other = _with_fingerprint("https://wire.example/streets", OTHER)
    for article in (first, copy, copy_of_copy, other):
        await store.store_articles(None, [(article, None)])
    rows = {
        r["url"]: (r["id"], r["duplicate_of"])
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }
    first_id = rows[first.url][0]
    assert rows[first.url][1] is None
    assert rows[copy.url][1] == first_id
    assert rows[copy_of_copy.url][1] == first_id
    assert rows[other.url][1] is None


PAYWALL = (
    "This story is available to subscribers only. Subscribe today for unlimited access to all "
    "our journalism, the daily e-paper and the puzzles, from just one dollar a week for the "
    "first three months. Already a subscriber? Log in to keep reading this story and every "
    "other story of the Harbour Gazette on any of your devices."
)
HEADLINES = (
    "Ferry terminal opening pushed back a year",
    "Council approves budget after long debate",
    "Hospital names new chief executive",
)


CHINESE_PAYWALL = (
    "本文为付费内容，仅限订阅用户阅读。立即订阅即可无限畅读本报全部新闻报道、电子版报纸和深度评论，"
    "首三个月每周仅需一元。已是订阅用户？请登录后继续阅读本文，并可在任何设备上阅读本报的其他文章。"
)
CHINESE_HEADLINES = (
    "轮渡码头启用推迟一年",
    "市议会经过长时间辩论批准预算",
    "医院任命新任首席执行官",
)


async def test_a_chinese_site_s_pages_showing_one_paywall_notice_are_not_one_story(
    store: Store, database_url: str
) -> None:
    """A Chinese site whose pages show only its paywall notice, three stories with headlines
    of their own: each an original, titled otherwise than the others (two characters in a row
    are a key word of a Chinese headline, `ingest.article.key_words`); the story stored again
    under a new link with its headline kept, and another site's copy, are copies."""
    assert fingerprint(CHINESE_PAYWALL) is not None
    site = [
        _with_fingerprint(f"https://gazette.example.cn/news/{n}", CHINESE_PAYWALL) for n in range(3)
    ]
    site = [
        replace(a, title=t, site="gazette.example.cn", published_at=NOW - timedelta(hours=9 - n))
        for n, (a, t) in enumerate(zip(site, CHINESE_HEADLINES, strict=True))
    ]
    again = replace(
        site[1],
        url="https://gazette.example.cn/news/1-budget",
        title=CHINESE_HEADLINES[1] + "：解读",
        published_at=NOW - timedelta(hours=5),
    )
    elsewhere = replace(
        site[2],
        url="https://courier.example.cn/health/chief",
        title="医院换帅",
        site="courier.example.cn",
        published_at=NOW - timedelta(hours=4),
    )
    for article in (*site, again, elsewhere):
        await store.store_articles(None, [(article, None)])
    rows = {
        r["url"]: (r["id"], r["duplicate_of"])
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }
    assert [rows[a.url][1] for a in site] == [None, None, None]
    assert rows[again.url][1] == rows[site[1].url][0]
    assert rows[elsewhere.url][1] == rows[site[0].url][0]


@pytest.mark.parametrize("headline_in_text", [True, False], ids=["near", "exact"])
async def test_a_site_s_pages_showing_one_paywall_notice_are_not_one_story(
    store: Store, database_url: str, headline_in_text: bool
) -> None:
    """A site whose pages show only its paywall notice (with the headline, a near-copy, or
    without, the same text): each story is an original, titled otherwise than the others
    (`ingest.article.titled_alike`), and the notice is the site's, not one story's. A story
    the site stores again under a new link with its headline kept, and a copy of the notice's
    page on another site, are still copies."""
    gazette = [
        _with_fingerprint(
            f"https://gazette.example/news/{n}",
            f"{title}\n\n{PAYWALL}" if headline_in_text else PAYWALL,
        )
        for n, title in enumerate(HEADLINES)
    ]
    gazette = [
        replace(a, title=title, site="gazette.example", published_at=NOW - timedelta(hours=9 - n))
        for n, (a, title) in enumerate(zip(gazette, HEADLINES, strict=True))
    ]
    again = replace(
        gazette[1],
        url="https://gazette.example/news/1-council-budget",
        title=HEADLINES[1] + ": what it means",
        published_at=NOW - timedelta(hours=5),
    )
    elsewhere = replace(
        gazette[2],
        url="https://courier.example/health/chief",
        title="Courier: health board picks its leader",
        site="courier.example",
        published_at=NOW - timedelta(hours=4),
    )
    for article in (*gazette, again, elsewhere):
        await store.store_articles(None, [(article, None)])
    rows = {
        r["url"]: (r["id"], r["duplicate_of"])
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }
    assert [rows[a.url][1] for a in gazette] == [None, None, None]
    assert rows[again.url][1] == rows[gazette[1].url][0]
    # Another site's copy of a page: a copy of the earliest article with its very text.
    earliest = gazette[2] if headline_in_text else gazette[0]
    assert rows[elsewhere.url][1] == rows[earliest.url][0]


@pytest.mark.parametrize("headline_in_text", [True, False], ids=["near", "exact"])
async def test_a_story_whose_page_turns_into_its_site_s_paywall_notice_stays_a_story(
    store: Store, database_url: str, headline_in_text: bool
) -> None:
    """An article updated in place to the paywall notice that an earlier story of its site
    shows (its page now behind the paywall) stays an original: titled otherwise, it is
    another story of the site, as when stored with that text."""
    feed_id = (await _feed_ids(store, 1))[0]
    walled, story = (
        replace(
            _with_fingerprint(f"https://gazette.example/news/{n}", text),
            title=HEADLINES[n],
            site="gazette.example",
            published_at=NOW - timedelta(hours=9 - n),
        )
        for n, text in enumerate(
            (f"{HEADLINES[0]}\n\n{PAYWALL}" if headline_in_text else PAYWALL, WIRE)
        )
    )
    await store.store_articles(feed_id, [(a, _key(a)) for a in (walled, story)])
    text = f"{HEADLINES[1]}\n\n{PAYWALL}" if headline_in_text else PAYWALL
    edited = replace(
        story, text=text, content_hash=content_hash(text), fingerprint=fingerprint(text)
    )
    assert await store.update_articles(feed_id, [(edited, _key(story))]) == 1
    rows = _rows(database_url, "SELECT url, text, duplicate_of FROM news.articles ORDER BY id")
    assert [(r["url"], r["text"], r["duplicate_of"]) for r in rows] == [
        (walled.url, walled.text, None),
        (story.url, text, None),
    ]


async def test_near_copies_inside_one_batch(store: Store, database_url: str) -> None:
    """Copies arriving in the same batch as their original (one feed carrying a story twice,
    or a batch sorted with the copy first): each copy points at the original, whatever the
    order, and the batch is stored whole."""
    first = _with_fingerprint("https://b.example/1-original", WIRE)
    copy = _with_fingerprint("https://a.example/2-copy", "(Wire) - " + WIRE)
    other = _with_fingerprint("https://c.example/streets", OTHER)
    counts = await store.store_articles(None, [(first, None), (copy, None), (other, None)])
    assert (counts.new, counts.existing, counts.duplicates) == (3, 0, 1)
    rows = {
        r["url"]: (r["id"], r["duplicate_of"])
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }
    # Stored in URL order: the copy under a.example comes first and is the story's original.
    assert rows[copy.url][1] is None
    assert rows[first.url][1] == rows[copy.url][0]
    assert rows[other.url][1] is None


async def test_a_copy_is_found_however_many_articles_share_its_site_s_template(
    store: Store, database_url: str
) -> None:
    """A site whose pages keep a long footer (newsletter, subscription appeal, copyright) gives
    every one of its articles band keys in common with hundreds of others of the site, none a
    copy. A story it stores again under a new link (a headline edited with its slug) is still
    found to be a copy of the first: the candidates are the articles sharing the most bands
    with it, not the site's earliest articles."""
    rng = random.Random(4)
    vocabulary = [f"word{n}" for n in range(5000)]
    footer = "\n\n".join(FOOTER)

    def page(words: list[str]) -> str:
        return " ".join(words) + "\n\n" + footer

    site = [
        _with_fingerprint(
            f"https://advertiser.example/news/{k}", page(rng.choices(vocabulary, k=200))
        )
        for k in range(500)
    ]
    site = [replace(a, published_at=NOW - timedelta(days=30)) for a in site]
    await store.store_articles(None, [(a, None) for a in site])
    story = rng.choices(vocabulary, k=200)
    first = _with_fingerprint("https://advertiser.example/news/port-strike", page(story))
    await store.store_articles(None, [(first, None)])
    edited = [*story[:100], "edited", *story[101:]]
    again = _with_fingerprint("https://advertiser.example/news/dockers-walk-out", page(edited))
    assert again.fingerprint is not None
    bands = set(again.fingerprint.bands)
    sharing = sum(bool(bands & set(a.fingerprint.bands)) for a in site if a.fingerprint)
    assert sharing > 200  # the case: more than the lookup's 200 candidates
    await store.store_articles(None, [(again, None)])
    rows = {
        r["url"]: (r["id"], r["duplicate_of"])
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }
    assert rows[again.url][1] == rows[first.url][0]
    assert all(rows[a.url][1] is None for a in site)


BRIEFS = [
    f"brief-{topic}-{n}.txt" for topic in ("police", "sports", "traffic", "weather") for n in (1, 2)
]


async def test_briefs_under_their_site_s_footer_are_not_copies_of_each_other(
    store: Store, database_url: str
) -> None:
    """Briefs of 100 words, each under the same 195-word footer its site's extraction kept,
    estimate a similarity near 0.5 on the footer alone: each is a story of its own all the same
    (values of the signature shared with another story of the site are the site's template, no
    evidence of a copy), while a brief the site carries again, lightly edited, under another
    link is still a copy."""
    footer = "\n\n".join(FOOTER)
    texts = [(ROOT / "tests/data/neardup/texts" / name).read_text().split() for name in BRIEFS]
    briefs = [
        _with_fingerprint(
            f"https://advertiser.example/news/{name}", " ".join(words[:100]) + "\n\n" + footer
        )
        for name, words in zip(BRIEFS, texts, strict=True)
    ]
    for article in briefs:
        await store.store_articles(None, [(article, None)])
    edited = texts[0][:100]
    edited[50:52] = ["on", "Saturday"]
    again = _with_fingerprint(
        "https://advertiser.example/news/burglaries-again", " ".join(edited) + "\n\n" + footer
    )
    await store.store_articles(None, [(again, None)])
    rows = {
        r["url"]: (r["id"], r["duplicate_of"])
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }
    assert [rows[a.url][1] for a in briefs] == [None] * len(briefs)
    assert rows[again.url][1] == rows[briefs[0].url][0]


async def test_a_refused_row_spoils_no_other_in_its_batch(store: Store, database_url: str) -> None:
    """A row the database refuses (a NUL byte is invalid for PostgreSQL) fails no other of its
    batch: refused for its text, it is stored without it, the reason as its extraction error;
    refused for something else too (here its title), it is left out and its entry not done."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    good = [_article(f"https://example.com/news/{n}") for n in range(4)]
    bad_text = _article("https://example.com/news/bad-text", "broken \x00 text")
    bad_both = _article("https://example.com/news/bad", "broken \x00 text", title="a \x00 title")
    items = [(a, _key(a)) for a in [*good[:2], bad_text, bad_both, *good[2:]]]
    counts = await store.store_articles(feed_id, items)
    assert (counts.new, counts.existing) == (5, 0)
    rows = _rows(database_url, "SELECT url, title, text, extraction_error FROM news.articles")
    by_url = {r["url"]: r for r in rows}
    assert set(by_url) == {a.url for a in [*good, bad_text]}
    assert (by_url[bad_text.url]["title"], by_url[bad_text.url]["text"]) == (bad_text.title, "")
    assert "the database refused its text" in str(by_url[bad_text.url]["extraction_error"])
    assert all(by_url[a.url]["text"] == a.text for a in good)
    done, _ = await store.known_entries(feed_id, [k for _, k in items])
    assert set(done) == {_key(a) for a in [*good, bad_text]}


async def test_a_refused_row_stays_out_where_no_article_goes_without_text(
    store: Store, database_url: str
) -> None:
    """The backfill stores no article without text: there a row refused for its text is left
    out (the backfill records the URL failed), not stored without it."""
    bad = _article("https://example.com/news/bad-text", "broken \x00 text")
    good = _article("https://example.com/news/good")
    counts = await store.store_articles(None, [(bad, None), (good, None)], without_text=False)
    assert (counts.new, counts.existing) == (1, 0)
    urls = {r["url"] for r in _rows(database_url, "SELECT url FROM news.articles")}
    assert urls == {good.url}


async def test_a_text_too_large_to_search_is_stored_without_it(
    store: Store, database_url: str
) -> None:
    """PostgreSQL's text search holds 1 MB a row: a text (or title) of a million characters of
    distinct words cannot be indexed. Its article is stored without the text, the title cut,
    once: its entry is done, not fetched and refused again on every poll. Texts as long in
    words that repeat, as a language does, are stored whole."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    rng = random.Random(7)

    def distinct(n: int) -> str:
        return " ".join(f"w{rng.getrandbits(48):x}" for _ in range(n))

    huge = _article("https://example.com/news/dump", distinct(90_000))
    titled = _article("https://example.com/news/title", title=distinct(90_000))
    vocabulary = [f"word{n}" for n in range(5_000)]
    long_read = _article(
        "https://example.com/news/long", " ".join(rng.choices(vocabulary, k=150_000))
    )
    items = [(a, _key(a)) for a in (huge, titled, long_read)]
    counts = await store.store_articles(feed_id, items)
    assert counts.new == 3
    rows = _rows(database_url, "SELECT url, title, text, extraction_error FROM news.articles")
    by_url = {r["url"]: r for r in rows}
    assert by_url[huge.url]["text"] == ""
    assert by_url[huge.url]["title"] == huge.title
    assert "tsvector" in str(by_url[huge.url]["extraction_error"])
    assert by_url[titled.url]["text"] == ""
    assert titled.title is not None
    assert by_url[titled.url]["title"] == titled.title[:300]
    assert by_url[long_read.url]["text"] == long_read.text
    assert by_url[long_read.url]["extraction_error"] is None
    done, waiting = await store.known_entries(feed_id, [k for _, k in items])
    assert set(done) == {k for _, k in items}
    assert not waiting


async def test_a_refused_update_keeps_the_stored_version_and_its_entry_is_done(
    store: Store, database_url: str
) -> None:
    """An update the database refuses leaves the stored article as it was, and records the
    entry's update time all the same: its page is not fetched again until the entry changes
    again."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    article = _article("https://example.com/news/1")
    await store.store_articles(feed_id, [(article, _key(article))])
    later = NOW + timedelta(hours=2)
    broken = replace(
        article, text="edited \x00 text", content_hash=content_hash("edited"), updated_at=later
    )
    assert await store.update_articles(feed_id, [(broken, _key(article))]) == 0
    (row,) = _rows(database_url, "SELECT text FROM news.articles")
    assert row["text"] == article.text
    done, _ = await store.known_entries(feed_id, [_key(article)])
    assert done[_key(article)] == later


async def test_an_edit_read_without_a_headline_keeps_the_stored_one(
    store: Store, database_url: str
) -> None:
    """An edit of the text whose new version has no title (an entry of a feed without item
    titles, updated from its own text with no page read) keeps the stored headline, as it keeps
    the byline, image and summary: no title is no new one. The edit is one change, the old
    version in the history, as for any edit."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    article = _article("https://example.com/news/1", title="Council approves the plan")
    await store.store_articles(feed_id, [(article, _key(article))])
    body = "The council approved the plan on Monday.\n\nA correction was added."
    edited = replace(
        article,
        title=None,
        text=body,
        content_hash=content_hash(body),
        updated_at=NOW + timedelta(hours=2),
    )
    assert await store.update_articles(feed_id, [(edited, _key(article))]) == 1
    (row,) = _rows(database_url, "SELECT title, text FROM news.articles")
    assert row == {"title": "Council approves the plan", "text": body}
    history = _rows(database_url, "SELECT title, text FROM news.article_history")
    assert history == [{"title": "Council approves the plan", "text": article.text}]
    kinds = _rows(database_url, "SELECT kind FROM news.article_changes ORDER BY seq")
    assert [k["kind"] for k in kinds] == ["insert", "update"]


async def test_an_exact_copy_of_a_copy_in_one_batch_points_at_the_original(
    store: Store, database_url: str
) -> None:
    """A batch of a story's earliest article (a near copy of the one stored), a later near
    copy of the stored one, and an exact copy of that near copy: once the batch's takeovers
    are done, every row points at the earliest, never at another copy."""
    words = [f"w{n}x" for n in range(120)]
    stored_text = " ".join(words)
    near_one = " ".join(words[:90] + [f"a{n}y" for n in range(30)])
    near_two = " ".join([f"b{n}z" for n in range(30)] + words[30:])

    def at(url: str, text: str, hours: int) -> Article:
        return replace(_with_fingerprint(url, text), published_at=NOW - timedelta(hours=hours))

    stored = at("https://o.example/s", stored_text, 0)
    earliest = at("https://a.example/s", near_one, 9)
    later = at("https://b.example/s", near_two, 5)
    exact = at("https://c.example/s", near_two, 3)
    await store.store_articles(None, [(stored, None)])
    await store.store_articles(None, [(a, None) for a in (earliest, later, exact)])
    rows = _group(database_url)
    earliest_id = rows[earliest.url][0]
    assert rows[earliest.url][1] is None
    assert [rows[a.url][1] for a in (stored, later, exact)] == [earliest_id] * 3


async def test_batch_mixing_new_and_stored_urls(store: Store, database_url: str) -> None:
    """A batch where some URLs are stored already (by another feed): the new ones are
    inserted, the stored ones linked to this feed's entries, none duplicated."""
    await store.add_feed("https://one.example/feed/")
    await store.add_feed("https://two.example/feed/")
    feed_a, feed_b = sorted(f["id"] for f in await store.list_feeds())
    shared = [_article(f"https://example.com/shared/{n}") for n in range(3)]
    await store.store_articles(feed_a, [(a, _key(a)) for a in shared])
    fresh = [_article(f"https://example.com/fresh/{n}") for n in range(3)]
    items = [(a, _key(a)) for a in [*shared, *fresh]]
    counts = await store.store_articles(feed_b, items)
    assert (counts.new, counts.existing) == (3, 3)
    assert _rows(database_url, "SELECT count(*) AS n FROM news.articles")[0]["n"] == 6
    done, _ = await store.known_entries(feed_b, [k for _, k in items])
    assert set(done) == {k for _, k in items}


async def test_band_keys_follow_the_article(store: Store, database_url: str) -> None:
    """ingest.article_bands holds each article's current band keys: written with the article,
    replaced when an update changes its text, gone with the article."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    article = _with_fingerprint("https://wire.example/rates", WIRE)
    await store.store_articles(feed_id, [(article, _key(article))])

    def bands() -> set[int]:
        rows = _rows(database_url, "SELECT band FROM ingest.article_bands")
        return {int(r["band"]) for r in rows}  # type: ignore[call-overload]

    assert article.fingerprint is not None
    assert bands() == set(article.fingerprint.bands)
    edited = _with_fingerprint(article.url, OTHER)
    assert await store.update_articles(feed_id, [(edited, _key(article))]) == 1
    assert edited.fingerprint is not None
    assert bands() == set(edited.fingerprint.bands)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ingest.articles")
    assert bands() == set()


async def test_an_update_reaches_the_entry_s_article_stored_under_another_spelling(
    store: Store, database_url: str
) -> None:
    """An entry's article stored under a URL that the canonical rules of the time wrote (a
    session id in the path, kept before they dropped it) is updated when the entry is: the
    update's URL forms, by today's rules, lead to none, but the entry leads to its article
    (was: the edit was dropped, and the entry's update time recorded as if it had been made)."""
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    stored = _with_fingerprint("https://example.com/story;jsessionid=0A1B", WIRE)
    await store.store_articles(feed_id, [(stored, _key(stored))])
    edited = replace(
        _with_fingerprint("https://example.com/story", OTHER),
        original_url="https://example.com/story;jsessionid=0A1B",
    )
    assert await store.update_articles(feed_id, [(edited, _key(stored))]) == 1
    (row,) = _rows(database_url, "SELECT url, text FROM ingest.articles")
    assert (row["url"], row["text"]) == (stored.url, OTHER)


async def test_schedule_lag_counts_up_to_its_cap(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overdue feeds (past due by more than the grace, not leased) are counted up to the cap,
    and the lag is that of the most overdue one; leased feeds are not overdue."""
    from ingest.store import feeds as feed_store

    ids = await _feed_ids(store, 5)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n, feed_id in enumerate(ids):
            conn.execute(
                "UPDATE ingest.feeds SET next_fetch_at = now() - make_interval(mins => %s)"
                " WHERE id = %s",
                (10 * (n + 1), feed_id),
            )
        conn.execute(
            "UPDATE ingest.feeds SET lease_owner = 'x', lease_expires_at = now() + interval '1h'"
            " WHERE id = %s",
            (ids[-1],),
        )
    overdue, lag = await store.schedule_lag(grace_seconds=60.0)
    assert overdue == 4
    assert 40 * 60 - 5 < lag < 40 * 60 + 30  # the oldest unleased one: 40 minutes late
    monkeypatch.setattr(feed_store, "OVERDUE_COUNTED", 3)
    assert (await store.schedule_lag(grace_seconds=60.0))[0] == 3
    assert await store.schedule_lag(grace_seconds=3600.0) == (0, 0.0)


def _group(database_url: str) -> dict[str, tuple[int, int | None]]:
    return {
        str(r["url"]): (int(r["id"]), r["duplicate_of"])  # type: ignore[call-overload]
        for r in _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles")
    }


async def test_the_earliest_published_copy_is_the_original(store: Store, database_url: str) -> None:
    """A story first stored from a copy published later (its own feed polled first) is
    re-pointed when the earlier one arrives: the earliest published is the original, the
    others (the old original and its copies) point at it, and each re-pointed row is announced
    as an update. A later copy then points at the earliest."""
    text = "The council agreed the budget on Tuesday.\n\nThe vote was close."
    syndicated = _article(
        "https://paper.example/budget", text, published_at=NOW - timedelta(hours=2)
    )
    copy = _article("https://blog.example/budget", text, published_at=NOW - timedelta(hours=1))
    await store.store_articles(None, [(syndicated, None)])
    await store.store_articles(None, [(copy, None)])
    before = _group(database_url)
    assert before[copy.url][1] == before[syndicated.url][0]

    wire = _article("https://wire.example/budget", text, published_at=NOW - timedelta(hours=22))
    await store.store_articles(None, [(wire, None)])
    rows = _group(database_url)
    wire_id = rows[wire.url][0]
    assert rows[wire.url][1] is None
    assert rows[syndicated.url][1] == wire_id
    assert rows[copy.url][1] == wire_id
    updates = _rows(
        database_url,
        "SELECT article_id FROM news.article_changes WHERE kind = 'update' ORDER BY article_id",
    )
    assert [u["article_id"] for u in updates] == sorted(
        [rows[syndicated.url][0], rows[copy.url][0]]
    )

    late = _article("https://late.example/budget", text, published_at=NOW)
    await store.store_articles(None, [(late, None)])
    assert _group(database_url)[late.url][1] == wire_id


async def test_an_earlier_near_copy_takes_the_story_over(store: Store, database_url: str) -> None:
    """The same for near-duplicates: the wire's story published 20 hours before the paper's
    copy that was stored first becomes the original; ties keep the lowest id."""
    paper = replace(
        _with_fingerprint("https://paper.example/rates", "(Wire) - " + WIRE),
        published_at=NOW - timedelta(hours=1),
    )
    wire = replace(
        _with_fingerprint("https://wire.example/rates", WIRE),
        published_at=NOW - timedelta(hours=21),
    )
    same_time = replace(
        _with_fingerprint("https://blog.example/rates", WIRE + " Via Wire."),
        published_at=NOW - timedelta(hours=21),
    )
    for article in (paper, wire, same_time):
        await store.store_articles(None, [(article, None)])
    rows = _group(database_url)
    assert rows[wire.url][1] is None
    assert rows[paper.url][1] == rows[wire.url][0]
    assert rows[same_time.url][1] == rows[wire.url][0]


async def test_two_earlier_copies_in_one_batch(store: Store, database_url: str) -> None:
    """Two copies in one batch, both published before the story's original: the earliest
    becomes the original, and the other and the old original point at it."""
    text = "Floods closed the valley road again.\n\nRepairs start in spring."
    late = _article("https://late.example/floods", text, published_at=NOW)
    await store.store_articles(None, [(late, None)])
    middle = _article("https://mid.example/floods", text, published_at=NOW - timedelta(hours=3))
    first = _article("https://first.example/floods", text, published_at=NOW - timedelta(hours=9))
    await store.store_articles(None, [(middle, None), (first, None)])
    rows = _group(database_url)
    first_id = rows[first.url][0]
    assert rows[first.url][1] is None
    assert rows[middle.url][1] == first_id
    assert rows[late.url][1] == first_id


@pytest.mark.parametrize("hours", list(itertools.permutations((1, 5, 9))))
async def test_exact_copies_in_one_batch_end_as_stored_one_at_a_time(
    store: Store, database_url: str, hours: tuple[int, ...]
) -> None:
    """Exact copies of one text (with fingerprints, so near copies of each other too) in one
    batch, after a stored original, in every order of publication and of URL: the same
    originals as storing them one at a time, and one change row for each article the batch
    inserts (its earliest copy goes in first, so no row of the batch is inserted as the
    story's original and then re-pointed by the same transaction); the stored original the
    batch's earliest copy takes over is announced as updated once."""

    def copies(tag: str) -> list[Article]:
        text = f"The {tag} bridge reopens on Monday after repairs.\n\nTraffic returns."
        return [
            replace(
                _with_fingerprint(f"https://{tag}{k}.example/bridge", text),
                published_at=NOW - timedelta(hours=h),
            )
            for k, h in enumerate((0, *hours))
        ]

    def shape(articles: list[Article]) -> list[tuple[int | None, list[str]]]:
        group = _group(database_url)
        role = {group[a.url][0]: k for k, a in enumerate(articles)}
        out = []
        for a in articles:
            article_id, original = group[a.url]
            kinds = _rows(
                database_url,
                "SELECT kind FROM news.article_changes WHERE article_id = %s ORDER BY seq",
                (article_id,),
            )
            out.append((role[original] if original else None, [str(k["kind"]) for k in kinds]))
        return out

    batched, single = copies("batch"), copies("single")
    await store.store_articles(None, [(batched[0], None)])
    await store.store_articles(None, [(a, None) for a in batched[1:]])
    for article in single:
        await store.store_articles(None, [(article, None)])
    assert [original for original, _ in shape(batched)] == [o for o, _ in shape(single)]
    assert [kinds for _, kinds in shape(batched)] == [["insert", "update"]] + [["insert"]] * 3
    earliest = min(range(4), key=lambda k: (batched[k].published_at, k))
    assert shape(batched)[earliest][0] is None


async def test_every_feed_of_an_article_is_recorded_and_the_first_adopts_it(
    store: Store, database_url: str
) -> None:
    """An article stored with no feed (a backfill) is given the first feed whose poll lists
    it; a second feed listing it is recorded in news.article_feeds beside the first, which
    stays its feed_id; neither is announced as an update."""
    one = await store.add_feed("https://one.example/feed.xml")
    two = await store.add_feed("https://two.example/feed.xml")
    assert one is not None
    assert two is not None
    feeds = {f["url"]: f["id"] for f in await store.list_feeds()}
    backfilled = _article("https://site.example/story")
    await store.store_articles(None, [(backfilled, None)])
    article_id = (await store.known_urls([backfilled.url]))[backfilled.url]

    await store.link_entries(feeds["https://one.example/feed.xml"], [(b"entry-1", article_id)])
    await store.store_articles(feeds["https://two.example/feed.xml"], [(backfilled, b"entry-2")])
    row = _rows(database_url, "SELECT feed_id FROM news.articles WHERE id = %s", (article_id,))
    assert row[0]["feed_id"] == feeds["https://one.example/feed.xml"]
    members = _rows(
        database_url,
        "SELECT feed_url FROM news.article_feeds WHERE article_id = %s ORDER BY first_seen_at",
        (article_id,),
    )
    assert [m["feed_url"] for m in members] == [
        "https://one.example/feed.xml",
        "https://two.example/feed.xml",
    ]
    kinds = _rows(
        database_url, "SELECT kind FROM news.article_changes WHERE article_id = %s", (article_id,)
    )
    assert [k["kind"] for k in kinds] == ["insert"]


async def test_one_write_for_articles_of_several_feeds(store: Store, database_url: str) -> None:
    """`store_many` writes the articles of several feeds in one transaction: each item's own
    outcome in the order given, each entry recorded for its own feed, a row the database
    refuses left out without spoiling the other feeds' rows, and an article stored before with
    no feed adopted by the feed that lists it (not by the others)."""
    feed_a, feed_b, feed_c = await _feed_ids(store, 3)
    backfilled = _article("https://example.com/old")
    await store.store_articles(None, [(backfilled, None)])
    a = [_article(f"https://a.example/{n}") for n in range(2)]
    b = [_article(f"https://b.example/{n}") for n in range(2)]
    bad = _article("https://c.example/bad", "broken \x00 text", title="broken \x00 title")
    copy = _article("https://c.example/copy", a[0].text)
    items = [
        (feed_b, b[1], _key(b[1])),
        (feed_a, a[0], _key(a[0])),
        (feed_c, bad, _key(bad)),
        (feed_c, backfilled, _key(backfilled)),
        (feed_b, b[0], _key(b[0])),
        (feed_a, a[1], _key(a[1])),
        (feed_c, copy, _key(copy)),
    ]
    outcomes = await store.store_many(items)
    assert outcomes == [
        StoredCounts(1, 0),
        StoredCounts(1, 0),
        StoredCounts(0, 0),  # refused
        StoredCounts(0, 1),  # stored before
        StoredCounts(1, 0),
        StoredCounts(1, 0),
        StoredCounts(1, 0, 1),  # a copy of a[0]'s body
    ]
    for feed_id, stored in ((feed_a, a), (feed_b, b), (feed_c, [backfilled, copy])):
        done, _ = await store.known_entries(feed_id, [_key(x) for x in stored])
        assert set(done) == {_key(x) for x in stored}
    rows = _rows(database_url, "SELECT url, feed_id FROM news.articles")
    feed_of = {r["url"]: r["feed_id"] for r in rows}
    assert bad.url not in feed_of
    assert feed_of[backfilled.url] == feed_c
    assert {feed_of[x.url] for x in a} == {feed_a}
    assert {feed_of[x.url] for x in b} == {feed_b}
    assert StoredCounts.total(outcomes) == StoredCounts(5, 1, 1)
    assert await store.store_many([]) == []


async def test_one_write_of_several_feeds_links_and_adopts_per_feed(
    store: Store, database_url: str
) -> None:
    """In one transaction (no row refused): each of two feeds lists an article stored before
    with no feed and is given that one only; a new URL both feeds list is stored once, new for
    the first item and already stored for the second, and both feeds' entries point at it."""
    feed_a, feed_b = await _feed_ids(store, 2)
    old_a, old_b = _article("https://example.com/old-a"), _article("https://example.com/old-b")
    await store.store_articles(None, [(old_a, None), (old_b, None)])
    shared = _article("https://example.com/shared")
    outcomes = await store.store_many(
        [
            (feed_b, old_b, b"b-old"),
            (feed_a, shared, b"a-shared"),
            (feed_a, old_a, b"a-old"),
            (feed_b, shared, b"b-shared"),
        ]
    )
    assert outcomes == [
        StoredCounts(0, 1),
        StoredCounts(1, 0),
        StoredCounts(0, 1),
        StoredCounts(0, 1),
    ]
    rows = _rows(database_url, "SELECT url, feed_id FROM news.articles")
    feed_of = {r["url"]: r["feed_id"] for r in rows}
    assert feed_of == {old_a.url: feed_a, old_b.url: feed_b, shared.url: feed_a}
    (shared_id,) = [v for k, v in (await store.known_urls([shared.url])).items()]
    for feed_id, key in ((feed_a, b"a-shared"), (feed_b, b"b-shared")):
        done, _ = await store.known_entries(feed_id, [key])
        assert set(done) == {key}
    links = _rows(
        database_url,
        "SELECT feed_id FROM ingest.feed_entries WHERE article_id = %s ORDER BY feed_id",
        (shared_id,),
    )
    assert [r["feed_id"] for r in links] == sorted([feed_a, feed_b])


def _check_articles(database_url: str, condition: str) -> None:
    """A check constraint an operator adds on the articles (`articles_title_test`)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"ALTER TABLE ingest.articles ADD CONSTRAINT articles_title_test CHECK ({condition})"
        )


async def test_a_row_a_check_constraint_refuses_spoils_no_other_in_its_batch(
    store: Store, database_url: str
) -> None:
    """A constraint the database holds the articles to (here a check an operator added on the
    title) refuses one row of a batch: the others are stored, and that one is left out, its
    entry not done (dropping its text does not make it acceptable)."""
    _check_articles(database_url, "title IS DISTINCT FROM 'Refused'")
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    good = [_article(f"https://example.com/news/{n}") for n in range(3)]
    bad = _article("https://example.com/news/refused", title="Refused")
    items = [(a, _key(a)) for a in [good[0], bad, *good[1:]]]
    counts = await store.store_articles(feed_id, items)
    assert (counts.new, counts.existing) == (3, 0)
    urls = {r["url"] for r in _rows(database_url, "SELECT url FROM news.articles")}
    assert urls == {a.url for a in good}
    done, _ = await store.known_entries(feed_id, [k for _, k in items])
    assert set(done) == {_key(a) for a in good}


async def test_a_check_constraint_refusal_keeps_the_text_it_is_not_about(
    store: Store, database_url: str
) -> None:
    """A check or not-null constraint is not the text's to answer for: the article it refuses
    is left out, its entry not done, not stored without its text. Here a check an operator
    added on the title's length (the record without text, its title cut, would pass it), and
    one added NOT VALID on the language that an earlier copy of the story breaks: storing the
    new article re-points that copy, and the row refused is not even the new article's."""
    _check_articles(database_url, "length(title) <= 500")
    await store.add_feed("https://example.com/feed/")
    (feed_id,) = [f["id"] for f in await store.list_feeds()]
    copied = _article("https://example.com/news/first", SAME_STORY, language=None)
    assert (await store.store_articles(feed_id, [(copied, _key(copied))])).new == 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE ingest.articles ADD CONSTRAINT articles_language_test"
            " CHECK (language IS NOT NULL) NOT VALID"
        )
    good = _article("https://example.com/news/good")
    titled = _article("https://example.com/news/titled", title="t" * 600)
    earlier = _article(
        "https://example.com/news/earlier", SAME_STORY, published_at=NOW - timedelta(days=1)
    )
    items = [(a, _key(a)) for a in (good, titled, earlier)]
    counts = await store.store_articles(feed_id, items)
    assert (counts.new, counts.existing) == (1, 0)
    urls = {r["url"] for r in _rows(database_url, "SELECT url FROM news.articles")}
    assert urls == {copied.url, good.url}
    done, _ = await store.known_entries(feed_id, [k for _, k in items])
    assert set(done) == {_key(good)}


async def test_an_update_moves_the_article_to_the_story_of_its_new_text(
    store: Store, database_url: str
) -> None:
    """duplicate_of follows an article's text when an update replaces it: a copy whose page now
    tells another story leaves its old one (and its old original's copies stay with it), an
    article rewritten into a copy of another story joins that one, an article whose copies no
    longer match it leaves them a story of their own, and a later copy of the new text finds
    the story it belongs to."""
    feed_id = (await _feed_ids(store, 1))[0]

    def at(url: str, text: str, hours: int) -> Article:
        return replace(_with_fingerprint(url, text), published_at=NOW - timedelta(hours=hours))

    wire = at("https://wire.example/rates", WIRE, 9)
    copy = at("https://paper.example/rates", WIRE, 5)
    council = at("https://city.example/streets", OTHER, 7)
    await store.store_articles(feed_id, [(a, _key(a)) for a in (wire, copy, council)])
    rows = _group(database_url)
    assert rows[copy.url][1] == rows[wire.url][0]

    # The paper's page now carries the council story: a copy of it, no longer of the wire's.
    await store.update_articles(feed_id, [(at(copy.url, OTHER, 5), _key(copy))])
    rows = _group(database_url)
    assert rows[copy.url][1] == rows[council.url][0]
    assert rows[wire.url][1] is None

    # The council's page is rewritten: the paper's copy of it becomes the story's original.
    fresh = "Entirely new words about a harbour festival, " + " ".join(
        f"boat{n} sails past pier{n}." for n in range(40)
    )
    await store.update_articles(feed_id, [(at(council.url, fresh, 7), _key(council))])
    rows = _group(database_url)
    assert rows[council.url][1] is None
    assert rows[copy.url][1] is None

    # A later exact copy of the rewritten page belongs to the council's story.
    late = at("https://late.example/festival", fresh, 1)
    await store.store_articles(feed_id, [(late, _key(late))])
    rows = _group(database_url)
    assert rows[late.url][1] == rows[council.url][0]
    assert all(
        rows[url][1] is None or rows[url][1] in {r[0] for r in rows.values() if r[1] is None}
        for url in rows
    )


async def test_an_edit_that_moves_an_article_to_another_story_is_one_change(
    store: Store, database_url: str
) -> None:
    """An edit whose new text moves the article to another story is one change of its row:
    one change row, which finds it with its new text and its new `duplicate_of` (joining the
    story, or taking it over), not one for the text and another for the story. The other rows
    it re-points are announced once each, as before."""
    feed_id = (await _feed_ids(store, 1))[0]

    def at(url: str, text: str, hours: int) -> Article:
        return replace(_with_fingerprint(url, text), published_at=NOW - timedelta(hours=hours))

    festival = "Entirely new words about a harbour festival, " + " ".join(
        f"boat{n} sails past pier{n}." for n in range(40)
    )
    railway = "A quite different report on a mountain railway, " + " ".join(
        f"train{n} climbs to station{n}." for n in range(40)
    )
    wire = at("https://wire.example/rates", WIRE, 9)
    copy = at("https://paper.example/rates", WIRE, 5)
    council = at("https://city.example/streets", OTHER, 7)
    fair = at("https://fair.example/festival", festival, 9)
    paper = at("https://paper.example/festival", festival, 5)
    mountain = at("https://hills.example/railway", railway, 3)
    stored = (wire, copy, council, fair, paper, mountain)
    await store.store_articles(feed_id, [(a, _key(a)) for a in stored])
    rows = _group(database_url)
    assert rows[copy.url][1] == rows[wire.url][0]
    assert rows[paper.url][1] == rows[fair.url][0]
    (last,) = _rows(database_url, "SELECT max(seq) AS seq FROM news.article_changes")

    # The paper's page now carries the council story: it joins it (council published first).
    await store.update_articles(feed_id, [(at(copy.url, OTHER, 5), _key(copy))])
    # The paper's festival page now carries the railway story, published before the railway's
    # own page: it takes that story over, and the railway's page is re-pointed at it.
    await store.update_articles(feed_id, [(at(paper.url, railway, 5), _key(paper))])

    after = _group(database_url)
    assert after[copy.url][1] == rows[council.url][0]
    assert after[paper.url][1] is None
    assert after[mountain.url][1] == rows[paper.url][0]
    assert after[wire.url][1] is None
    assert after[fair.url][1] is None
    changes = _rows(
        database_url,
        "SELECT article_id, kind FROM news.article_changes WHERE seq > %s ORDER BY seq",
        (last["seq"],),
    )
    assert sorted((r["article_id"], r["kind"]) for r in changes) == sorted(
        [
            (rows[copy.url][0], "update"),
            (rows[paper.url][0], "update"),
            (rows[mountain.url][0], "update"),
        ]
    )


async def test_a_light_edit_keeps_the_story_and_announces_only_the_edited_row(
    store: Store, database_url: str
) -> None:
    """An original edited lightly stays its story's original, its copies still point at it and
    are not announced; an article published first and rewritten into a copy of a later story
    takes that story over, and each re-pointed row is announced once."""
    feed_id = (await _feed_ids(store, 1))[0]

    def at(url: str, text: str, hours: int) -> Article:
        return replace(_with_fingerprint(url, text), published_at=NOW - timedelta(hours=hours))

    wire = at("https://wire.example/rates", WIRE, 9)
    copy = at("https://paper.example/rates", WIRE, 5)
    early = at("https://early.example/streets", "Short note, soon replaced.", 20)
    council = at("https://city.example/streets", OTHER, 7)
    await store.store_articles(feed_id, [(a, _key(a)) for a in (wire, copy, early, council)])
    rows = _group(database_url)
    (last,) = _rows(database_url, "SELECT max(seq) AS seq FROM news.article_changes")

    await store.update_articles(feed_id, [(at(wire.url, WIRE + " Corrected.", 9), _key(wire))])
    await store.update_articles(feed_id, [(at(early.url, OTHER, 20), _key(early))])

    after = _group(database_url)
    assert after[copy.url][1] == rows[wire.url][0]
    assert after[wire.url][1] is None
    assert after[early.url][1] is None
    assert after[council.url][1] == rows[early.url][0]
    announced = _rows(
        database_url,
        "SELECT article_id, count(*) AS n FROM news.article_changes WHERE seq > %s "
        "GROUP BY article_id",
        (last["seq"],),
    )
    assert {r["article_id"]: r["n"] for r in announced} == {
        rows[wire.url][0]: 1,
        rows[early.url][0]: 1,
        rows[council.url][0]: 1,
    }


async def test_placeholder_texts_are_not_copies(store: Store, database_url: str) -> None:
    """Different stories stored with their feed's placeholder for a text ("Comments", as
    Hacker News writes under every entry, stored where the page failed) are not copies of
    each other: a text of fewer than EXACT_MIN_WORDS words says nothing of the story. Ten
    words the same are (`test_content_hash_duplicate`)."""
    placeholders = [
        _article(f"https://news.example/item?id={n}", "Comments", text_source="feed")
        for n in range(3)
    ]
    await store.store_articles(None, [(placeholders[0], None)])
    await store.store_articles(None, [(a, None) for a in placeholders[1:]])
    brief = "A wire brief of ten words, printed by two sites."
    assert len(brief.split()) == EXACT_MIN_WORDS
    briefs = [
        _article(f"https://{site}/brief", brief, site=site) for site in ("a.example", "b.example")
    ]
    await store.store_articles(None, [(a, None) for a in briefs])
    rows = _rows(database_url, "SELECT id, url, duplicate_of FROM news.articles ORDER BY id")
    copies = {r["url"]: r["duplicate_of"] for r in rows}
    assert [copies[a.url] for a in placeholders] == [None, None, None]
    assert copies[briefs[0].url] is None
    assert copies[briefs[1].url] == rows[3]["id"]
