"""Retention against the real PostgreSQL (ingest/store/retention.py): a prune removes exactly the
old articles with every row that hangs off them, keeps duplicate_of pointing at originals, works
in batches and leaves the documented queries working; the trim of change rows and earlier
versions keeps recent rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest.neardup import fingerprint
from ingest.normalize import content_hash, entry_hash
from ingest.store import Store
from ingest.types import Article
from tests.store.test_sql_contract import documented_queries

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime.now(UTC)
AGE = timedelta(days=90)
OLD = NOW - timedelta(days=120)
NEW = NOW - timedelta(days=10)

# Every table with a row per article, and the column naming it.
DEPENDENTS = {
    "ingest.article_urls": "article_id",
    "ingest.feed_entries": "article_id",
    "ingest.article_bands": "article_id",
    "ingest.article_history": "article_id",
    "ingest.article_changes": "article_id",
}


def _article(n: int, published: datetime, text: str | None = None) -> Article:
    url = f"https://news.example/story/{n}"
    body = text or " ".join(f"Word{n}x{i} of story number {n}." for i in range(30))
    return Article(
        url=url,
        original_url=url + "?utm_source=rss",
        title=f"Story {n}",
        text=body,
        author="A. Writer",
        published_at=published,
        published_source="feed",
        updated_at=None,
        language="en",
        site="news.example",
        image_url=None,
        summary=None,
        content_hash=content_hash(body),
        text_source="page",
        extraction_error=None,
        guid=f"story-{n}",
        fetched_at=NOW,
        aliases=(f"https://news.example/s/{n}",),
        fingerprint=fingerprint(body),
    )


def _key(n: int) -> bytes:
    return entry_hash(f"guid:story-{n}")


async def _store(store: Store, feed_id: int, *articles: tuple[int, Article]) -> None:
    await store.store_articles(feed_id, [(a, _key(n)) for n, a in articles])


async def _feed(store: Store) -> int:
    assert await store.add_feed("https://news.example/feed.xml")
    return int((await store.list_feeds())[0]["id"])


def _ids(dsn: str, query: str, params: tuple[object, ...] = ()) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [int(r[0]) for r in conn.execute(query.encode(), params).fetchall()]


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        counts = {}
        for table in ("ingest.articles", *DEPENDENTS):
            row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
            assert row is not None
            counts[table] = int(row[0])
        return counts


def _dangling(dsn: str) -> dict[str, int]:
    """Rows of each dependent table, and copies, naming an article that is not there."""
    found = {}
    with psycopg.connect(dsn) as conn:
        for table, column in DEPENDENTS.items():
            row = conn.execute(
                f"SELECT count(*) FROM {table} t WHERE t.{column} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM ingest.articles a WHERE a.id = t.{column})".encode()
            ).fetchone()
            assert row is not None
            found[table] = int(row[0])
        row = conn.execute(
            "SELECT count(*) FROM news.articles c WHERE c.duplicate_of IS NOT NULL AND NOT "
            "EXISTS (SELECT 1 FROM news.articles o WHERE o.id = c.duplicate_of "
            "AND o.duplicate_of IS NULL)"
        ).fetchone()
        assert row is not None
        found["duplicate_of"] = int(row[0])
    return found


async def test_prune_removes_old_articles_with_their_rows_and_keeps_the_rest(
    store: Store, database_url: str
) -> None:
    """Articles published before the cutoff go with their URL forms, band rows, earlier
    versions and change rows, their feed entries unlinked but still known to the feed; newer
    articles keep all of theirs; nothing dangles."""
    feed = await _feed(store)
    await _store(store, feed, *((n, _article(n, OLD + timedelta(hours=n))) for n in range(3)))
    await _store(store, feed, *((n, _article(n, NEW + timedelta(hours=n))) for n in range(3, 6)))
    # An earlier version of one old and one new article.
    for n, when in ((1, OLD + timedelta(hours=1)), (4, NEW + timedelta(hours=4))):
        edited = _article(n, when, text=f"Edited text of story {n}, quite different now.")
        assert await store.update_articles(feed, [(edited, _key(n))]) == 1
    new_ids = _ids(database_url, "SELECT id FROM ingest.articles WHERE published_at > %s", (NEW,))
    before = _counts(database_url)
    with psycopg.connect(database_url) as conn:
        kept_rows = {
            table: conn.execute(
                f"SELECT count(*) FROM {table} WHERE {col} = ANY(%s)".encode(), (new_ids,)
            ).fetchone()
            for table, col in DEPENDENTS.items()
        }

    cutoff = await store.retention_cutoff(AGE)
    counts = await store.prune_counts(cutoff)
    assert _counts(database_url) == before  # counting changes nothing
    result = await store.prune(cutoff)

    assert (result.articles, result.batches, result.repointed) == (3, 1, 0)
    assert counts.articles == 3
    assert _ids(database_url, "SELECT id FROM news.articles ORDER BY id") == sorted(new_ids)
    after = _counts(database_url)
    assert before["ingest.article_urls"] - after["ingest.article_urls"] == counts.urls == 6
    # Feed entries stay known to their feed, unlinked, so a poll does not store them again.
    assert before["ingest.feed_entries"] == after["ingest.feed_entries"]
    assert counts.entries == 3
    done, waiting = await store.known_entries(feed, [_key(n) for n in range(6)])
    assert set(done) == {_key(n) for n in range(6)}
    assert waiting == {}
    assert _ids(database_url, "SELECT count(*) FROM ingest.feed_entries WHERE pruned") == [3]
    assert before["ingest.article_bands"] - after["ingest.article_bands"] == counts.bands > 0
    assert before["ingest.article_history"] - after["ingest.article_history"] == counts.history
    assert counts.history == 1
    assert before["ingest.article_changes"] - after["ingest.article_changes"] == counts.changes
    assert counts.changes == 4  # three inserts, one update
    with psycopg.connect(database_url) as conn:
        for table, col in DEPENDENTS.items():
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {col} = ANY(%s)".encode(), (new_ids,)
            ).fetchone()
            assert row == kept_rows[table], table
    assert _dangling(database_url) == dict.fromkeys([*DEPENDENTS, "duplicate_of"], 0)


async def test_copies_of_a_pruned_original_get_the_earliest_published_copy_as_original(
    store: Store, database_url: str
) -> None:
    """An old original with an old copy and three newer copies, the last stored published
    first: after the prune that one is the story's original (duplicate_of NULL), the others
    point at it, and each re-pointed copy is announced as an update, once."""
    text = " ".join(f"The same syndicated story, sentence {i}." for i in range(40))
    feed = await _feed(store)
    await _store(store, feed, (0, _article(0, OLD, text)))
    await _store(store, feed, (1, _article(1, OLD + timedelta(hours=1), text)))
    for n in (2, 3, 4):
        await _store(store, feed, (n, _article(n, NEW + timedelta(hours=10 - n), text)))
    other = _article(5, NEW, "Another story entirely, with words of its own and no copies.")
    await _store(store, feed, (5, other))
    rows = _ids(database_url, "SELECT id FROM ingest.articles ORDER BY id")
    original, old_copy, first, second, third, unrelated = rows
    assert (
        _ids(
            database_url,
            "SELECT duplicate_of FROM ingest.articles WHERE id <> %s AND duplicate_of IS NOT NULL",
            (original,),
        )
        == [original] * 4
    )
    seq = _ids(database_url, "SELECT max(seq) FROM ingest.article_changes")[0]

    cutoff = await store.retention_cutoff(AGE)
    assert (await store.prune_counts(cutoff)).repointed == 3
    # One article a batch: the old copy still goes with its original, never becomes the heir.
    result = await store.prune(cutoff, batch=1)

    assert (result.articles, result.repointed) == (2, 3)
    with psycopg.connect(database_url) as conn:
        now = dict(conn.execute("SELECT id, duplicate_of FROM news.articles").fetchall())
        announced = conn.execute(
            "SELECT article_id, kind FROM news.article_changes WHERE seq > %s ORDER BY seq",
            (seq,),
        ).fetchall()
    assert now == {first: third, second: third, third: None, unrelated: None}
    assert sorted(announced) == [(first, "update"), (second, "update"), (third, "update")]
    assert old_copy not in now
    assert _dangling(database_url)["duplicate_of"] == 0


async def test_prune_works_in_batches_oldest_first(store: Store, database_url: str) -> None:
    """batch=2 over 5 old articles: three transactions (2, 2, 1), the oldest first; the one new
    article stays."""
    feed = await _feed(store)
    await _store(store, feed, *((n, _article(n, OLD + timedelta(hours=n))) for n in range(5)))
    await _store(store, feed, (9, _article(9, NEW)))
    with psycopg.connect(database_url) as conn:
        published = dict(conn.execute("SELECT id, published_at FROM ingest.articles").fetchall())
    seen: list[tuple[int, int, list[int]]] = []

    def progress(batch: int, so_far: int) -> None:
        left = _ids(database_url, "SELECT id FROM ingest.articles ORDER BY published_at")
        seen.append((batch, so_far, left))

    result = await store.prune(await store.retention_cutoff(AGE), batch=2, on_batch=progress)

    by_age = sorted(published, key=lambda i: published[i])
    assert (result.articles, result.batches) == (5, 3)
    assert seen == [(1, 2, by_age[2:]), (2, 4, by_age[4:]), (3, 5, by_age[5:])]
    assert result.seconds >= 0


async def test_a_story_with_many_old_copies_is_pruned_in_bounded_transactions(
    store: Store, database_url: str
) -> None:
    """Story A: an old original with 10 old copies and 3 newer ones; story B: an old original
    with 3 newer copies. With batch=4 no transaction removes and re-points more than 4
    articles together (A's old copies go first, four at a time; each original goes with the
    copies it leaves), and the end is as one transaction would leave it: the old articles gone,
    each story's earliest newer copy its original, each re-pointed copy announced once."""
    feed = await _feed(store)
    story_a = " ".join(f"A story copied many times, sentence {i}." for i in range(40))
    story_b = " ".join(f"Another story with copies of its own, line {i}." for i in range(40))
    await _store(store, feed, (0, _article(0, OLD, story_a)))
    await _store(store, feed, (1, _article(1, OLD + timedelta(days=1), story_b)))
    for n in range(10, 20):
        await _store(store, feed, (n, _article(n, OLD + timedelta(hours=n), story_a)))
    for n in range(20, 23):
        await _store(store, feed, (n, _article(n, NEW + timedelta(hours=n), story_a)))
    for n in range(30, 33):
        await _store(store, feed, (n, _article(n, NEW + timedelta(hours=n), story_b)))
    ids = dict(
        zip(
            [0, 1, *range(10, 23), *range(30, 33)],
            _ids(database_url, "SELECT id FROM ingest.articles ORDER BY id"),
            strict=True,
        )
    )
    assert len(_ids(database_url, "SELECT id FROM ingest.articles WHERE duplicate_of IS NULL")) == 2
    seq = _ids(database_url, "SELECT max(seq) FROM ingest.article_changes")[0]
    cutoff = await store.retention_cutoff(AGE)
    assert (await store.prune_counts(cutoff)).articles == 12
    work: list[tuple[int, int]] = []  # (articles so far, copies re-pointed so far)

    def progress(batch: int, so_far: int) -> None:
        updates = _ids(
            database_url,
            "SELECT count(*) FROM news.article_changes WHERE seq > %s AND kind = 'update'",
            (seq,),
        )[0]
        work.append((so_far, updates))

    result = await store.prune(cutoff, batch=4, on_batch=progress)

    steps = [
        (articles - before[0]) + (updates - before[1])
        for before, (articles, updates) in zip([(0, 0), *work], work, strict=False)
    ]
    assert all(0 < step <= 4 for step in steps), (steps, work)
    assert (result.articles, result.repointed, result.batches) == (12, 6, len(work))
    with psycopg.connect(database_url) as conn:
        now = dict(conn.execute("SELECT id, duplicate_of FROM news.articles").fetchall())
        announced = conn.execute(
            "SELECT article_id FROM news.article_changes WHERE seq > %s", (seq,)
        ).fetchall()
    a, b = ids[20], ids[30]
    assert now == {a: None, ids[21]: a, ids[22]: a, b: None, ids[31]: b, ids[32]: b}
    assert sorted(r[0] for r in announced) == sorted(now)
    assert _dangling(database_url) == dict.fromkeys([*DEPENDENTS, "duplicate_of"], 0)


async def test_nothing_to_prune(store: Store, database_url: str) -> None:
    """No article old enough: no batch, nothing removed, zero counts."""
    feed = await _feed(store)
    await _store(store, feed, (1, _article(1, NEW)))
    cutoff = await store.retention_cutoff(AGE)
    assert (await store.prune_counts(cutoff)).articles == 0
    result = await store.prune(cutoff)
    assert (result.articles, result.batches) == (0, 0)
    assert len(_ids(database_url, "SELECT id FROM news.articles")) == 1


async def test_documented_queries_run_after_a_prune(store: Store, database_url: str) -> None:
    """Every ```sql example of the README and docs/sql.md runs, as news_reader, on a database
    a prune has just emptied of its old articles and their copies' originals."""
    text = " ".join(f"A story told twice, sentence {i}." for i in range(40))
    feed = await _feed(store)
    await _store(store, feed, (0, _article(0, OLD, text)), (1, _article(1, OLD)))
    await _store(store, feed, (2, _article(2, NEW, text)), (3, _article(3, NEW)))
    await store.prune(await store.retention_cutoff(AGE), batch=1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET ROLE news_reader")
        for query in documented_queries():
            conn.execute(query.encode())
        rows = conn.execute(
            "SELECT count(*) FROM news.articles WHERE duplicate_of IS NULL"
        ).fetchone()
    assert rows == (2,)


async def test_trim_keeps_recent_change_rows_and_versions(store: Store, database_url: str) -> None:
    """Change rows and earlier versions written more than the retention ago go; recent ones and
    the articles themselves stay."""
    feed = await _feed(store)
    await _store(store, feed, *((n, _article(n, NEW)) for n in range(5)))
    for n in range(5):
        edited = _article(n, NEW, text=f"Edited story {n}, now with other words entirely.")
        assert await store.update_articles(feed, [(edited, _key(n))]) == 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        # The 6 oldest change rows and 3 oldest versions were written 40 days ago.
        conn.execute(
            "UPDATE ingest.article_changes SET changed_at = now() - interval '40 days' "
            "WHERE seq IN (SELECT seq FROM ingest.article_changes ORDER BY seq LIMIT 6)"
        )
        conn.execute(
            "UPDATE ingest.article_history SET replaced_at = now() - interval '40 days' "
            "WHERE id IN (SELECT id FROM ingest.article_history ORDER BY id LIMIT 3)"
        )
    changes = _ids(database_url, "SELECT seq FROM news.article_changes ORDER BY seq")
    history = _ids(database_url, "SELECT id FROM ingest.article_history ORDER BY id")

    result = await store.trim_changes(timedelta(days=30), batch=4)

    assert (result.changes, result.history, result.batches) == (6, 3, 3)
    assert _ids(database_url, "SELECT seq FROM news.article_changes ORDER BY seq") == changes[6:]
    assert _ids(database_url, "SELECT id FROM ingest.article_history ORDER BY id") == history[3:]
    assert len(_ids(database_url, "SELECT id FROM news.articles")) == 5
    again = await store.trim_changes(timedelta(days=30))
    assert (again.changes, again.history) == (0, 0)


async def test_trim_empties_the_change_feed_when_nothing_changed_during_the_retention(
    store: Store, database_url: str
) -> None:
    """When every change row is older than the retention, none is kept: a consumer cannot
    tell from the oldest seq that it missed rows (docs/sql.md, Retention: it goes by its own
    clock)."""
    feed = await _feed(store)
    await _store(store, feed, *((n, _article(n, NEW)) for n in range(3)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE ingest.article_changes SET changed_at = now() - interval '40 days'")
    result = await store.trim_changes(timedelta(days=30))
    assert result.changes == 3
    assert _ids(database_url, "SELECT seq FROM news.article_changes") == []
