"""The consumer contract of docs/sql.md against the real PostgreSQL: documented queries run
(as the read-only role) and use indexes on 100,000 generated articles, full-text search, the
NOTIFY channel, the gap-free change sequence, and what news_reader may and may not do."""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from ingest.store.db import migrate
from tests.support.paths import ROOT
from tests.support.secret_urls import REDACTED_TEXTS, REDACTED_URLS

pytestmark = pytest.mark.integration


def documented_queries() -> list[str]:
    """Every ```sql block of docs/sql.md and of the README."""
    blocks = []
    for doc in (ROOT / "docs" / "sql.md", ROOT / "README.md"):
        blocks += re.findall(r"```sql\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    return blocks


def indexed_queries() -> list[str]:
    """The examples of docs/sql.md over articles and changes (news.feeds holds one row per feed:
    a sequential scan is the right plan there)."""
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    blocks = [b.strip().rstrip(";") for b in re.findall(r"```sql\n(.*?)```", text, re.S)]
    return [b for b in blocks if "news.feeds" not in b]


GENERATE = """
ALTER TABLE ingest.articles DISABLE TRIGGER USER;
INSERT INTO ingest.articles (url, original_url, site, title, text, published_at,
    published_source, language, content_hash, text_source, fetched_at, tags)
SELECT 'https://site' || (g % 200) || '.example/a/' || g,
       'https://site' || (g % 200) || '.example/a/' || g,
       'site' || (g % 200) || '.example',
       'Story ' || g || ' on the ' ||
           (ARRAY['climate', 'football', 'election', 'market'])[1 + g % 4],
       'Reporters covered event ' || g || ' in detail; the ' ||
           (ARRAY['storm', 'match', 'vote', 'shares'])[1 + g % 4] || ' dominated the day.',
       now() - make_interval(mins => g),
       'feed',
       (ARRAY['en', 'de', 'fr', 'es'])[1 + g % 4],
       sha256(g::text::bytea),
       'page',
       now(),
       ARRAY[(ARRAY['Climate', 'Sport', 'Politics', 'Markets'])[1 + g % 4], 'tag-' || (g % 500)]
FROM generate_series(1, 100000) AS g;
UPDATE ingest.articles SET duplicate_of = id - 1 WHERE id % 10 = 0;
UPDATE ingest.articles SET lsh_bands = ARRAY(
    SELECT hashtextextended(id::text || ':' || b, 0) FROM generate_series(1, 32) AS b);
INSERT INTO ingest.article_changes (article_id, kind) SELECT id, 'insert' FROM ingest.articles;
INSERT INTO ingest.article_urls (url_hash, article_id) SELECT url_hash, id FROM ingest.articles;
INSERT INTO ingest.article_bands (band, article_id)
SELECT DISTINCT b, id FROM ingest.articles, unnest(lsh_bands) AS b
ORDER BY 1, 2;  -- in key order: 3.2 million inserts at the end of the index, not all over it
ALTER TABLE ingest.articles ENABLE TRIGGER USER;
ANALYZE;
"""


@pytest.fixture(scope="module")
def big_database(pg_admin: str, template_db: str) -> Iterator[str]:
    """A migrated database holding 100,000 generated articles, shared by this module."""
    name = f"ingest_big_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    dsn = psycopg.conninfo.make_conninfo(pg_admin, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(GENERATE)
    yield dsn
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_documented_queries_run_after_all_migrations(empty_database_url: str) -> None:
    """All migrations on an empty database, then every documented query runs, as news_reader."""
    asyncio.run(migrate(empty_database_url))
    queries = documented_queries()
    assert len(queries) >= 8
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET ROLE news_reader")
        for query in queries:
            conn.execute(query)


@pytest.mark.parametrize("query", indexed_queries(), ids=lambda q: q.splitlines()[0][3:40])
def test_documented_query_uses_an_index(big_database: str, query: str) -> None:
    """EXPLAIN of each example of docs/sql.md on 100,000 articles shows an index in the plan
    (the plan is printed: run pytest with -s to see it)."""
    with psycopg.connect(big_database) as conn:
        # news.search is a SECURITY DEFINER function, planned on its own: auto_explain reports
        # the plans of the statements inside it, as warnings (news.search sends no notices).
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = 'warning'")
        conn.execute("SET auto_explain.log_analyze = off")
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}"))
        if "news.search" in query:
            conn.execute(query).fetchall()
            plan += "\n" + "\n".join(notices)
    print(f"\n--- {query.splitlines()[0]}\n{plan}")
    assert re.search(r"Index (Only )?Scan|Bitmap Index Scan", plan), plan


def _insert(conn: psycopg.Connection, url: str, title: str, text: str, language: str) -> int:
    row = conn.execute(
        """INSERT INTO ingest.articles (url, original_url, site, title, text, published_at,
               published_source, language, content_hash, text_source, fetched_at)
           VALUES (%s, %s, 'example.com', %s, %s, now(), 'feed', %s, sha256(%s::bytea), 'page',
                   now())
           RETURNING id""",
        (url, url, title, text, language, url.encode()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_removing_a_feed_announces_no_update_of_its_articles(database_url: str) -> None:
    """Feed membership is not content: removing the feed (its articles' feed_id set to NULL)
    adds no 'update' to news.article_changes; a change of text still does."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        feed = conn.execute(
            "INSERT INTO ingest.feeds (url) VALUES ('https://example.com/feed') RETURNING id"
        ).fetchone()
        assert feed is not None
        article = _insert(conn, "https://example.com/1", "Council meets", "Talk.", "en")
        conn.execute("UPDATE ingest.articles SET feed_id = %s WHERE id = %s", (feed[0], article))
        before = conn.execute("SELECT count(*) FROM news.article_changes").fetchone()
        conn.execute("DELETE FROM ingest.feeds WHERE id = %s", (feed[0],))
        after = conn.execute("SELECT count(*) FROM news.article_changes").fetchone()
        assert before == after
        conn.execute(
            "UPDATE ingest.articles SET text = 'Talk of elections.' WHERE id = %s", (article,)
        )
        kinds = conn.execute(
            "SELECT kind FROM news.article_changes WHERE article_id = %s ORDER BY seq", (article,)
        ).fetchall()
    assert [k[0] for k in kinds][-1] == "update"


def test_search_ranks_title_matches_first_in_any_language(database_url: str) -> None:
    """news.search stems each article in its own language, weighs the title higher, and
    honours phrases and exclusions."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        body = _insert(conn, "https://example.com/1", "Council meets", "Talk of elections.", "en")
        title = _insert(conn, "https://example.com/2", "Elections called", "A short note.", "en")
        german = _insert(
            conn, "https://example.com/3", "Wahl", "Die Wahlen wurden verschoben.", "de"
        )
        sport = _insert(
            conn, "https://example.com/4", "Election football", "The election match.", "en"
        )

        def ids(q: str) -> list[int]:
            return [r[0] for r in conn.execute("SELECT id FROM news.search(%s)", (q,))]

        assert ids("election -football") == [title, body]
        assert ids("Wahlen") == [german]
        assert ids('"election match"') == [sport]
        assert ids("nothing-matches-this") == []
        assert ids("東京") == []

        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        assert ids("") == []
        assert ids("   ") == []
        assert notices == [], "an empty query is answered without a notice per language"


def test_search_refuses_a_query_of_more_than_32_words(database_url: str) -> None:
    """A query's cost grows with its words on every matching article, read in 23 languages (a
    thousand `storm or` took a minute on 5,000 articles, and more on more): one of more than 32
    words is refused at once with its own error, before any configuration reads it; 32 words
    are answered. (One of more than 4096 characters is refused for its length first, 0047.)"""
    with psycopg.connect(database_url, autocommit=True) as conn:
        storm = _insert(conn, "https://example.com/s", "Storm", "The storm came at night.", "en")

        def ids(q: str) -> list[int]:
            return [r[0] for r in conn.execute("SELECT id FROM news.search(%s)", (q,))]

        assert ids(" or ".join(["storm"] * 16)) == [storm]  # 31 words, "or" included
        assert ids("storm " + "night " * 31) == [storm]
        for hostile in ("storm or " * 455, "storm " * 682, "storm-" * 40 + "storm"):
            with pytest.raises(psycopg.errors.ProgramLimitExceeded) as refused:
                ids(hostile)
            assert "at most 32 words" in str(refused.value)
            assert "storm storm" not in str(refused.value)  # the query is not echoed back


@pytest.mark.parametrize(
    "query", ["?", "-", '""', ":*", "!!!", "the", "de", "w" * 3000], ids=lambda q: q[:8]
)
def test_search_answers_a_query_without_words_without_notices(
    database_url: str, query: str
) -> None:
    """Punctuation, stop words only or a word too long to index: nothing found, and no notice
    "contains only stop words" per language of the 23 (0014 covered only '' and spaces)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _insert(conn, "https://example.com/1", "The storm", "Rain fell at night.", "en")
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        rows = conn.execute("SELECT id FROM news.search(%s)", (query,)).fetchall()
    assert rows == []
    assert notices == []


@pytest.mark.parametrize(
    "query", ["-" * 33, "- " * 40, "-" * 4096], ids=lambda q: f"{q[:2]}x{len(q)}"
)
def test_search_answers_a_run_of_operators_without_words_without_an_error(
    database_url: str, query: str
) -> None:
    """A line of 33 minus signs (a separator pasted into a search box) has no word to search:
    nothing found, no notice, as for `-` alone; PostgreSQL's reading of it fails with an
    internal error ("tsquery stack too small", SQLSTATE XX000), which news.search never
    reaches."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _insert(conn, "https://example.com/1", "The storm", "Rain fell at night.", "en")
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        rows = conn.execute("SELECT id FROM news.search(%s)", (query,)).fetchall()
    assert rows == []
    assert notices == []


@pytest.mark.parametrize(
    "query",
    ["storm " + "-" * 33 + "night", "- " * 40 + "storm", "-storm " + "-" * 200],
    ids=["between", "before", "after"],
)
def test_search_refuses_a_query_its_parser_cannot_read_with_its_own_error(
    database_url: str, query: str
) -> None:
    """A query with words whose run of operators PostgreSQL cannot read (more than 32 minus
    signs in a row) is refused as a query of too many words is (SQLSTATE 54000, the query not
    repeated), not with an internal error (XX000) that a consumer's search page reports as a
    fault of the database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _insert(conn, "https://example.com/1", "The storm", "Rain fell at night.", "en")
        with pytest.raises(psycopg.errors.ProgramLimitExceeded) as refused:
            conn.execute("SELECT id FROM news.search(%s)", (query,))
    assert str(refused.value).startswith("news.search: a query the text search parser cannot read")
    assert "-----" not in str(refused.value)


def test_search_refuses_a_query_of_more_than_4096_characters(database_url: str) -> None:
    """Counting a query's words, and each of its 23 readings, costs time in proportion to its
    length: one word padded with a megabyte of spaces, a word of a million letters, 4097 minus
    signs or 50,000 quotes (which failed with "stack depth limit exceeded") is refused before
    any (SQLSTATE 54000, the query not repeated), as a query of more than 32 words is; 4096
    characters are answered, a word of 3,000 letters finding nothing as before."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        storm = _insert(conn, "https://example.com/s", "Storm", "The storm came at night.", "en")

        def ids(q: str) -> list[int]:
            return [r[0] for r in conn.execute("SELECT id FROM news.search(%s)", (q,))]

        assert ids("storm" + " " * 4091) == [storm]
        assert ids("w" * 3000) == []
        for hostile in ("storm" + " " * 1_000_000, "w" * 1_000_000, "-" * 4097, '"' * 50_000):
            with pytest.raises(psycopg.errors.ProgramLimitExceeded) as refused:
                ids(hostile)
            assert f"at most 4096 characters (this one has {len(hostile)})" in str(refused.value)
            assert "www" not in str(refused.value)


def test_search_reads_the_query_once_per_configuration_not_per_article(
    database_url: str,
) -> None:
    """news.search reads the query in each of the 23 configurations once, and matches every
    article against the reading of its language: reading it again for each matching article
    made one word padded with a megabyte of spaces cost a parse of that megabyte per article
    (5 s on 500 articles, growing with the table, whatever the 32-word limit). The plan
    of the statements inside the function (auto_explain, with the loops of each node) runs no
    function (websearch_to_tsquery among them) more than 23 times; the answer is unchanged."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO ingest.articles (url, original_url, site, title, text, published_at,
                   published_source, language, content_hash, text_source, fetched_at)
               SELECT 'https://example.com/' || g, 'https://example.com/' || g, 'example.com',
                      CASE WHEN g % 7 = 0 THEN 'Storm warning' ELSE 'News ' || g END,
                      'The storm came at night.', now() - make_interval(mins => g), 'feed',
                      (ARRAY['en', 'de', 'fr', NULL])[1 + g % 4], sha256(g::text::bytea),
                      'page', now()
               FROM generate_series(1, 200) AS g"""
        )
        expected = [
            row[0]
            for row in conn.execute(
                """SELECT id FROM ingest.articles
                   ORDER BY title LIKE 'Storm%%' DESC, published_at DESC, id DESC"""
            )
        ]
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = 'warning'")
        conn.execute("SET auto_explain.log_analyze = on")
        conn.execute("SET auto_explain.log_timing = off")
        padded = "storm" + " " * 4000
        found = [row[0] for row in conn.execute("SELECT id FROM news.search(%s)", (padded,))]
    plans = "\n".join(notices)
    assert found == expected
    scans = [int(loops) for loops in re.findall(r"Function Scan on .*\bloops=(\d+)\)", plans)]
    assert scans, plans
    assert max(scans) <= 23, plans


def test_search_reads_the_query_in_every_configuration_an_article_can_have(
    database_url: str,
) -> None:
    """news.search matches each article against the query read in its language's
    configuration, joined from `ingest.search_readings` (0047): a configuration that
    `ingest.ts_config` gives and the readings lack would drop its articles from every search."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT pg_get_functiondef('ingest.ts_config'::regproc)").fetchone()
        assert row is not None
        given = set(re.findall(r"'(\w+)'::regconfig", row[0]))
        read = {
            str(config)
            for (config,) in conn.execute("SELECT config::text FROM ingest.search_readings('x')")
        }
    assert len(given) == 23
    assert given == read


def test_new_article_is_notified_and_appears_in_the_change_feed(database_url: str) -> None:
    """An insert sends NOTIFY news_articles with id, kind and seq, and the same seq is in
    news.article_changes once committed."""
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN news_articles")
        with psycopg.connect(database_url, autocommit=True) as writer:
            article_id = _insert(writer, "https://example.com/n", "T", "Body text.", "en")
        note = next(listener.notifies(timeout=5))
    payload = json.loads(note.payload)
    assert note.channel == "news_articles"
    assert (payload["id"], payload["kind"]) == (article_id, "insert")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT seq, article_id, kind FROM news.article_changes").fetchall()
    assert rows == [(payload["seq"], article_id, "insert")]


def test_change_feed_never_skips_a_late_commit(database_url: str) -> None:
    """While one transaction that wrote an article is open, a second writer waits, so no
    reader can see a later change number before an earlier one."""
    slow = psycopg.connect(database_url)
    reader = psycopg.connect(database_url, autocommit=True)
    try:
        slow_id = _insert(slow, "https://example.com/slow", "Slow", "Committed late.", "en")
        with psycopg.connect(database_url, autocommit=True) as fast:
            fast.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                _insert(fast, "https://example.com/fast", "Fast", "Must wait.", "en")
        seen = reader.execute("SELECT article_id FROM news.article_changes").fetchall()
        assert seen == []
        slow.commit()
        with psycopg.connect(database_url, autocommit=True) as fast:
            fast_id = _insert(fast, "https://example.com/fast", "Fast", "Now it may.", "en")
        seen = reader.execute("SELECT article_id FROM news.article_changes ORDER BY seq").fetchall()
        assert seen == [(slow_id,), (fast_id,)]
    finally:
        slow.close()
        reader.close()


def _start_writers(database_url: str) -> tuple[list[threading.Thread], list[BaseException]]:
    """Four threads inserting and updating articles, 40 transactions each, a quarter of them
    rolled back and some rolling back a savepoint (numbers taken and never committed: gaps),
    each holding its transaction open a moment; the errors they meet are handed back."""
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        rng = random.Random(number)
        try:
            with psycopg.connect(database_url) as conn:
                for step in range(40):
                    url = f"https://example.com/{number}/{step}"
                    article = _insert(conn, url, "Title", f"Text {number} {step}.", "en")
                    if rng.random() < 0.3:
                        with conn.transaction():  # a savepoint rolled back
                            _insert(conn, url + "/gone", "Gone", "Rolled back.", "en")
                            conn.execute("SELECT pg_sleep(0.001)")
                            raise psycopg.Rollback()
                    if rng.random() < 0.5:
                        conn.execute(
                            "UPDATE ingest.articles SET title = 'Edited' WHERE id = %s", (article,)
                        )
                    conn.execute("SELECT pg_sleep(%s)", (rng.random() / 500,))
                    if rng.random() < 0.25:
                        conn.rollback()
                    else:
                        conn.commit()
        except BaseException as e:  # handed to the test's thread
            errors.append(e)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    return writers, errors


def _catch_up(reader: psycopg.Connection, seen: list[int]) -> None:
    """The documented catch-up, `seq > <last seq processed>` 500 rows at a time, onto `seen`."""
    while True:
        rows = reader.execute(
            "SELECT seq FROM news.article_changes WHERE seq > %s ORDER BY seq LIMIT 500",
            (seen[-1] if seen else 0,),
        ).fetchall()
        seen.extend(seq for (seq,) in rows)
        if len(rows) < 500:
            return


def test_catching_up_by_seq_sees_each_committed_change_once_beside_concurrent_writers(
    database_url: str,
) -> None:
    """The documented catch-up (`WHERE seq > <last seq processed> ORDER BY seq LIMIT 500`),
    run over and over while four writers insert and update articles, some rolling back whole
    transactions or savepoints (numbers taken and never committed: gaps) and some holding
    their transaction open: the consumer reads every change committed exactly once, in
    order, and no row it skipped over appears later (without the change trigger's lock, a
    later number committed first and the earlier one, committed after, was never read)."""
    seen: list[int] = []
    with psycopg.connect(database_url, autocommit=True) as reader:
        reader.execute("SET ROLE news_reader")
        writers, errors = _start_writers(database_url)
        while any(thread.is_alive() for thread in writers):
            _catch_up(reader, seen)
        for thread in writers:
            thread.join()
        _catch_up(reader, seen)
        committed = [seq for (seq,) in reader.execute("SELECT seq FROM news.article_changes")]
    assert errors == []
    assert seen == sorted(committed)
    assert len(set(seen)) == len(seen)
    assert max(seen) > len(seen)  # numbers were taken by rolled-back work: there were gaps


def test_the_documented_listen_loop_reads_each_committed_change_once(database_url: str) -> None:
    """docs/sql.md's loop beside the same writers: `LISTEN news_articles`, catch up, then catch
    up again on each notification whose seq is above the last one processed (those at or
    below it announce changes read already): every change committed is read once, in order,
    each by a notification's catch-up or the first one, none left for a later reconnect."""
    seen: list[int] = []
    with psycopg.connect(database_url, autocommit=True) as consumer:
        consumer.execute("SET ROLE news_reader")
        consumer.execute("LISTEN news_articles")
        writers, errors = _start_writers(database_url)
        _catch_up(consumer, seen)
        announced: list[int] = []
        while any(thread.is_alive() for thread in writers):
            # Gathered first: the connection is busy while it waits for them.
            for note in list(consumer.notifies(timeout=0.05)):
                announced.append(json.loads(note.payload)["seq"])
                if announced[-1] > (seen[-1] if seen else 0):
                    _catch_up(consumer, seen)
        for thread in writers:
            thread.join()
        with psycopg.connect(database_url, autocommit=True) as admin:
            committed = [seq for (seq,) in admin.execute("SELECT seq FROM news.article_changes")]
        # The notifications of the last commits: they arrive in commit order, the last
        # commit's after all the others.
        while max(announced, default=0) < max(committed):
            notes = list(consumer.notifies(timeout=30, stop_after=1))
            assert notes, f"no notification after seq {max(announced, default=0)}"
            announced.append(json.loads(notes[0].payload)["seq"])
            if announced[-1] > (seen[-1] if seen else 0):
                _catch_up(consumer, seen)
    assert errors == []
    assert seen == sorted(committed)
    assert sorted(announced) == sorted(committed)  # one notification per change committed


def test_updates_are_changes_too(database_url: str) -> None:
    """An update of an article is announced as kind 'update'; a no-op update is not."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        article_id = _insert(conn, "https://example.com/u", "T", "Body.", "en")
        conn.execute("UPDATE ingest.articles SET title = 'T2' WHERE id = %s", (article_id,))
        conn.execute("UPDATE ingest.articles SET title = 'T2' WHERE id = %s", (article_id,))
        kinds = conn.execute("SELECT kind FROM news.article_changes ORDER BY seq").fetchall()
    assert kinds == [("insert",), ("update",)]


def test_news_reader_reads_news_and_nothing_else(database_url: str) -> None:
    """news_reader can select from every news view and search, but cannot read the internal
    schema or write anything."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _insert(conn, "https://example.com/r", "Readable", "Body.", "en")
        conn.execute("SET ROLE news_reader")
        for view in ("news.articles", "news.feeds", "news.article_changes"):
            conn.execute(f"SELECT * FROM {view}")
        assert conn.execute("SELECT count(*) FROM news.search('readable')").fetchone() == (1,)
        for forbidden in (
            "SELECT * FROM ingest.articles",
            "SELECT * FROM ingest.feeds",
            "DELETE FROM news.articles",
            "UPDATE news.feeds SET title = 'x'",
            "CREATE TABLE news.mine (x int)",
        ):
            # Refused for want of privilege, or because the view cannot be written at all.
            with pytest.raises(
                (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectNotInPrerequisiteState)
            ):
                conn.execute(forbidden)


def test_only_news_reader_may_call_the_functions_of_schema_news(database_url: str) -> None:
    """No function of schema news is executable by PUBLIC (PostgreSQL's default for a new
    function): a role given USAGE on the schema, and no more, cannot call `news.search`, which
    reads the internal tables as its owner. news_reader, logged in as itself, reads every
    documented view (whose URL and error columns call internal functions with its rights) and
    searches."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _insert(conn, "https://example.com/g", "Granted", "Body.", "en")
        executable = conn.execute(
            """SELECT p.oid::regprocedure::text FROM pg_proc p
               WHERE p.pronamespace = 'news'::regnamespace
                 AND has_function_privilege('public', p.oid, 'EXECUTE')"""
        ).fetchall()
        assert executable == []
        stranger = f"ingest_stranger_{uuid.uuid4().hex[:10]}"
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
        try:
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA news TO {}").format(sql.Identifier(stranger))
            )
            with (
                psycopg.connect(
                    psycopg.conninfo.make_conninfo(database_url, user=stranger), autocommit=True
                ) as other,
                pytest.raises(psycopg.errors.InsufficientPrivilege),
            ):
                other.execute("SELECT * FROM news.search('granted')")
        finally:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(stranger)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))
    reader = psycopg.conninfo.make_conninfo(database_url, user="news_reader")
    with psycopg.connect(reader, autocommit=True) as conn:
        views = re.findall(
            r"^### `(news\.\w+)`",
            (ROOT / "docs" / "sql.md").read_text(encoding="utf-8"),
            re.MULTILINE,
        )
        assert len(views) >= 5
        for view in views:
            conn.execute(f"SELECT * FROM {view}").fetchall()
        assert conn.execute("SELECT count(*) FROM news.search('granted')").fetchone() == (1,)


@pytest.mark.parametrize(
    ("registered", "shown"),
    [
        ("https://reader:s3cret@example.com/feed.xml", "https://example.com/feed.xml"),
        ("https://TOKEN123@example.com/feed?x=1", "https://example.com/feed?x=1"),
        ("http://a%40b:p%3Aw@example.com:8080/f", "http://example.com:8080/f"),
        ("https://u:p@w@example.com/f#top", "https://example.com/f#top"),
        ("https://example.com/path@2x/feed", "https://example.com/path@2x/feed"),
    ],
)
def test_news_reader_sees_no_feed_url_user_info(
    database_url: str, registered: str, shown: str
) -> None:
    """A feed URL's user-info (a password, or a token as the user) is a credential, as its
    extra headers are: no view of schema news shows it, to news_reader or anyone."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO ingest.feeds (url) VALUES (%s) RETURNING id", (registered,)
        ).fetchone()
        assert row is not None
        article = _insert(conn, "https://example.com/1", "Council meets", "Talk.", "en")
        conn.execute("UPDATE ingest.articles SET feed_id = %s WHERE id = %s", (row[0], article))
        conn.execute(
            "INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id)"
            " VALUES (%s, '\\x01', %s)",
            (row[0], article),
        )
        conn.execute("SET ROLE news_reader")
        seen = [
            conn.execute("SELECT url FROM news.feeds").fetchone(),
            conn.execute("SELECT feed_url FROM news.articles").fetchone(),
            conn.execute("SELECT feed_url FROM news.article_feeds").fetchone(),
            conn.execute("SELECT feed_url FROM news.search('council')").fetchone(),
        ]
    assert seen == [(shown,)] * 4


@pytest.mark.parametrize(
    ("name", "params", "index"),
    [
        (
            "near_duplicate_candidates",
            {"bands": [-(2**40) - b for b in range(32)], "url": "https://new.example/a"},
            "article_bands_pkey",
        ),
        (
            "exact_candidates",
            {"content_hash": b"\x07" * 32, "site": "site1.example", "id": None},
            "articles_content_hash_idx",
        ),
        ("known_urls", {"urls": ["https://site1.example/a/1"]}, "article_urls_pkey"),
        ("article_ids_by_url", {"urls": ["https://site1.example/a/1"]}, "articles_url_hash_key"),
    ],
)
def test_store_lookups_use_their_index(
    big_database: str, name: str, params: dict[str, object], index: str
) -> None:
    """The lookups made for every new article stay index lookups at 100,000 articles (the
    near-duplicate query once walked the whole primary key for its ORDER BY ... LIMIT)."""
    from ingest.store import queries

    with psycopg.connect(big_database) as conn:
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {queries()[name]}", params))
    print(f"\n--- {name}\n{plan}")
    assert index in plan, plan
    assert "Seq Scan on articles" not in plan, plan


ARTICLE_INDEX_READS = {
    # The service's own reads: exact_candidates' lookup of a body stored under another URL,
    # repoint_duplicates' copies of a story, a removed feed's articles (ON DELETE SET NULL).
    "articles_content_hash_idx": (
        "SELECT id FROM ingest.articles WHERE content_hash = sha256('7'::bytea) ORDER BY id LIMIT 1"
    ),
    "articles_duplicate_of_idx": "SELECT id FROM ingest.articles WHERE duplicate_of = 7",
    "articles_feed_id_idx": "SELECT id FROM ingest.articles WHERE feed_id = 7",
    # A consumer's latest articles in a language few of them are in.
    "articles_language_published_idx": (
        "SELECT id FROM news.articles WHERE language = 'ja' ORDER BY published_at DESC LIMIT 20"
    ),
}
"""Indexes of ingest.articles that no example of docs/sql.md names, each with a query that
reads by it."""


def documented_indexes() -> dict[str, str]:
    """The indexes docs/sql.md's examples name ("(index NAME)"), each with its example."""
    named: dict[str, str] = {}
    for query in indexed_queries():
        for index in re.findall(r"\(index (\w+)\)", query):
            named[index] = query
    return named


def test_every_index_of_articles_serves_a_read(big_database: str) -> None:
    """Each index of ingest.articles is read by a documented query or one of the service's own
    (its constraints' aside), and that query's plan at 100,000 articles uses it: every article
    stored writes to each of them, so one that nothing reads is pure cost, and a new one comes
    with the read it is for."""
    reads = documented_indexes() | ARTICLE_INDEX_READS
    with psycopg.connect(big_database) as conn:
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT i.relname FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE n.nspname = 'ingest' AND t.relname = 'articles'"
                " AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
            )
        }
        assert indexes == {i for i in reads if i.startswith("articles_")}
        for index in sorted(indexes):
            query = reads[index]
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}"))
            if "news.search" in query:  # planned inside the function: its index is its own
                continue
            assert index in plan, f"{index}: {query}\n{plan}"


@pytest.mark.parametrize(("registered", "shown"), REDACTED_URLS)
def test_news_reader_sees_no_secret_query_parameter_of_a_feed_url(
    database_url: str, registered: str, shown: str
) -> None:
    """A token in a feed URL's query string (`?token=`, `api_key=`, `sig=`...) is a credential
    as its user-info is: every view of schema news shows the URL as the logs do
    (`ingest.normalize.redact_url`, one rule), the value replaced by `***`."""
    from ingest.normalize import redact_url

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO ingest.feeds (url) VALUES (%s) RETURNING id", (registered,)
        ).fetchone()
        assert row is not None
        article = _insert(conn, "https://example.com/1", "Council meets", "Talk.", "en")
        conn.execute("UPDATE ingest.articles SET feed_id = %s WHERE id = %s", (row[0], article))
        conn.execute(
            "INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id)"
            " VALUES (%s, '\\x01', %s)",
            (row[0], article),
        )
        conn.execute("SET ROLE news_reader")
        seen = [
            conn.execute("SELECT url FROM news.feeds").fetchone(),
            conn.execute("SELECT feed_url FROM news.articles").fetchone(),
            conn.execute("SELECT feed_url FROM news.article_feeds").fetchone(),
            conn.execute("SELECT feed_url FROM news.search('council')").fetchone(),
        ]
    assert seen == [(shown,)] * 4
    assert redact_url(registered) == shown


@pytest.mark.parametrize(("given", "shown"), REDACTED_URLS)
def test_news_reader_sees_no_credential_of_a_feed_s_site_url(
    database_url: str, given: str, shown: str
) -> None:
    """A private feed may give its site's link with its token too: news.feeds.site_url is
    shown as its url is (`ingest.redacted_url`, sql/0034)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, site_url) VALUES ('https://example.com/feed', %s)",
            (given,),
        )
        conn.execute("SET ROLE news_reader")
        seen = conn.execute("SELECT site_url FROM news.feeds").fetchone()
    assert seen == (shown,)


@pytest.mark.parametrize(("stored", "shown"), REDACTED_TEXTS)
def test_news_reader_sees_no_credential_of_a_url_quoted_in_an_error(
    database_url: str, stored: str, shown: str
) -> None:
    """A feed's last error and inactive reason, and an article's extraction error, may quote a
    URL (a redirect target, a failing URL) with its user-info or a token: schema news shows each
    such URL as it shows feed URLs, even in a row stored so (`ingest.redacted_text`, the rule
    of `ingest.normalize.redact_text`)."""
    from ingest.normalize import redact_text

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, last_error, inactive_reason, active)"
            " VALUES ('https://example.com/feed', %s, %s, false)",
            (stored, stored),
        )
        article = _insert(conn, "https://example.com/1", "Council meets", "Talk.", "en")
        conn.execute(
            "UPDATE ingest.articles SET extraction_error = %s, text_source = 'feed' WHERE id = %s",
            (stored, article),
        )
        conn.execute("SET ROLE news_reader")
        seen = [
            conn.execute("SELECT last_error FROM news.feeds").fetchone(),
            conn.execute("SELECT inactive_reason FROM news.feeds").fetchone(),
            conn.execute("SELECT extraction_error FROM news.articles").fetchone(),
            conn.execute("SELECT extraction_error FROM news.search('council')").fetchone(),
        ]
    assert seen == [(shown,)] * 4
    assert redact_text(stored) == shown


def test_a_host_hold_reads_the_host_feeds_by_index(database_url: str) -> None:
    """A Retry-After's hold on one host reads that host's feeds by an index on their host
    (sql/0032), not every feed due before the hold ends: at 100,000 feeds and a hold of an
    hour, that would be every feed."""
    from datetime import timedelta

    from ingest.store import queries

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, next_fetch_at)"
            " SELECT format('https://host%s.example/feed/%s', i % 200, i), now()"
            " FROM generate_series(1, 4000) AS i"
        )
        conn.execute("ANALYZE ingest.feeds")
        params = {"id": 1, "url": "https://host7.example/x", "wait": timedelta(hours=1)}
        plan = "\n".join(
            row[0] for row in conn.execute(f"EXPLAIN {queries()['hold_host_feeds']}", params)
        )
    print(f"\n--- hold_host_feeds\n{plan}")
    assert "feeds_url_host_idx" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_a_feed_s_text_mode_is_set_by_its_url_s_index(database_url: str) -> None:
    """`ingest feeds text-mode` (and `feeds import` of a feed with a text mode, once a feed)
    finds the feed by the unique index on its URL's hash, as every other command naming a feed
    does, not by reading every feed: at 100,000 feeds, an import of them all read each one
    100,000 times."""
    from ingest.store import queries

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url)"
            " SELECT format('https://host%s.example/feed/%s', i % 200, i)"
            " FROM generate_series(1, 4000) AS i"
        )
        conn.execute("ANALYZE ingest.feeds")
        params = {"url": "https://host7.example/feed/7", "mode": "page", "due": 19}
        plan = "\n".join(
            row[0] for row in conn.execute(f"EXPLAIN {queries()['set_text_mode']}", params)
        )
    print(f"\n--- set_text_mode\n{plan}")
    assert "feeds_url_hash_key" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize(
    "url",
    [
        "http://News.Example.COM./feed",
        "https://user:pw@news.example.com:8443/feed",
        "https://XN--MNCHEN-3YA.DE./feed",
        "https://[0:0::1]:8080/feed",
        "https://[::FFFF:7f00:1]/feed",
        "https://[2001:DB8::A]/feed",
    ],
)
def test_a_feed_s_host_in_the_database_is_the_fetcher_s(database_url: str, url: str) -> None:
    """The host the claims and the holds read from a registered (canonical) feed URL
    (`ingest.url_host`) is the one the fetcher keeps politeness for (`host_key`), an IPv6
    address in its brackets: one host, one share of a process's feeds, one hold."""
    from urllib.parse import urlsplit

    from ingest.normalize import canonical_url, host_key

    registered = canonical_url(url)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT ingest.url_host(%s)", (registered,)).fetchone()
    assert row is not None
    host = host_key(urlsplit(registered).hostname or "")
    assert row[0] == (f"[{host}]" if ":" in host else host)


def test_a_sitemap_registered_without_its_site_gets_the_site_its_articles_are_on(
    database_url: str,
) -> None:
    """sql/0036: a news sitemap followed as a feed, registered before its site was recorded and
    hosted elsewhere (a CDN), gets as its site_url the host most of the articles it led to are
    on, so that its polls (which keep the URLs of the sitemap's site and of its site_url) keep
    listing them. A sitemap on its articles' own host, one that led to none, a feed, and a
    sitemap whose site is recorded are left as they are."""
    sql = (ROOT / "sql" / "0036_sitemap_feed_sites.sql").read_text(encoding="utf-8")
    with psycopg.connect(database_url, autocommit=True) as conn:

        def feed(url: str, kind: str = "sitemap", site: str | None = None) -> int:
            row = conn.execute(
                "INSERT INTO ingest.feeds (url, kind, site_url) VALUES (%s, %s, %s) RETURNING id",
                (url, kind, site),
            ).fetchone()
            assert row is not None
            return int(row[0])

        def lists(feed_id: int, *urls: str) -> None:
            for url in urls:
                article = _insert(conn, url, "Council meets", "Talk.", "en")
                conn.execute(
                    "INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id)"
                    " VALUES (%s, sha256(%s::bytea), %s)",
                    (feed_id, url.encode(), article),
                )

        cdn = feed("https://cdn.example.net/news/sitemap.xml")
        lists(cdn, "https://www.news.example/a", "https://www.news.example/b",
              "https://partner.example/c")  # fmt: skip
        own = feed("https://www.own.example/sitemap-news.xml")
        lists(own, "https://www.own.example/a")
        empty = feed("https://cdn.example.net/empty.xml")
        plain = feed("https://cdn.example.net/feed.xml", kind="feed")
        lists(plain, "https://www.plain.example/a")
        named = feed("https://cdn.example.net/named.xml", site="https://named.example/")
        lists(named, "https://www.other.example/a")
        conn.execute(sql)
        conn.execute(sql)  # as often as it runs
        sites = dict(conn.execute("SELECT id, site_url FROM ingest.feeds").fetchall())
    assert sites == {
        cdn: "https://www.news.example/",
        own: None,
        empty: None,
        plain: None,
        named: "https://named.example/",
    }
