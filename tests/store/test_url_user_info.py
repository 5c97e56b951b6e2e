"""Rows that a version before the fix of a private feed's relative links wrote with the feed's
credential in them (`http://Reader:S3cret@host/story/1` in ingest.articles and a backfill's
queue), and what sql/0046 makes of them: the user-info gone from every URL that schema news
shows and from the queue, the hashes that find them by URL consistent with the cleaned URLs, an
article stored twice (with and without the credential) one article, the feeds' own URLs kept."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest.normalize import without_user_info
from ingest.store import db

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PRIVATE = "http://Reader:S3cret@news.example/feeds/private.xml"
OTHER = "http://Other:Pw@news.example/feeds/other.xml"
PUBLIC = "http://news.example/feeds/public.xml"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
async def before_0046(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database migrated up to 0045, as the version before 0046 left it."""
    shipped = db.load_migrations()
    with monkeypatch.context() as old:
        old.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version <= 45])
        await db.migrate(empty_database_url)
    return empty_database_url


def _feed(conn: psycopg.Connection[Any], url: str) -> int:
    row = conn.execute(
        "INSERT INTO ingest.feeds (url, next_fetch_at) VALUES (%s, now()) RETURNING id", (url,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _article(
    conn: psycopg.Connection[Any],
    feed_id: int | None,
    url: str,
    *,
    guid: str,
    published: datetime = T0,
    duplicate_of: int | None = None,
    image_url: str | None = None,
    text: str = "The harbour authority said the ferry terminal would open next spring.",
) -> int:
    """An article as the writer stored it (a change row by the trigger), with its URL forms and
    its feed entry."""
    row = conn.execute(
        "INSERT INTO ingest.articles (url, original_url, feed_id, guid, site, text, published_at,"
        "  published_source, content_hash, text_source, fetched_at, duplicate_of, image_url)"
        " VALUES (%(url)s, %(url)s, %(feed)s, %(guid)s, 'news.example', %(text)s, %(at)s, 'feed',"
        "  sha256(convert_to(%(text)s::text, 'UTF8')), 'page', %(at)s, %(dup)s, %(image)s)"
        " RETURNING id",
        {
            "url": url,
            "feed": feed_id,
            "guid": guid,
            "text": text,
            "at": published,
            "dup": duplicate_of,
            "image": image_url,
        },
    ).fetchone()
    assert row is not None
    article_id = int(row[0])
    conn.execute(
        "INSERT INTO ingest.article_urls (url_hash, article_id) VALUES (ingest.url_hash(%s), %s)",
        (url, article_id),
    )
    if feed_id is not None:
        conn.execute(
            "INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id)"
            " VALUES (%s, sha256(convert_to(%s::text, 'UTF8')), %s)",
            (feed_id, "guid:" + guid, article_id),
        )
    return article_id


def _known(conn: psycopg.Connection[Any], url: str) -> list[int | None]:
    rows = conn.execute("SELECT article_id FROM ingest.known_url(ingest.url_hash(%s))", (url,))
    return [r[0] for r in rows.fetchall()]


def _changes(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    rows = conn.execute("SELECT article_id, kind FROM ingest.article_changes ORDER BY seq")
    return [(int(r[0]), str(r[1])) for r in rows.fetchall()]


async def test_an_article_stored_with_its_feed_s_user_info_is_shown_without_it(
    before_0046: str,
) -> None:
    """An article of a private feed stored at `http://Reader:S3cret@news.example/story/1` (its
    image too) is shown by news.articles at `http://news.example/story/1`, under the same id,
    found by that URL (its url_hash, its URL forms), and announced as an update; the feed's own
    URL keeps the credential its requests are sent with."""
    with psycopg.connect(before_0046, autocommit=True) as conn:
        feed = _feed(conn, PRIVATE)
        article = _article(
            conn,
            feed,
            "http://Reader:S3cret@news.example/story/1",
            guid="g1",
            image_url="http://Reader:S3cret@news.example/img/1.jpg",
        )
        # An `@` in the path is no user-info: the row is left as it is, unannounced.
        at = _article(conn, feed, "http://news.example/@writer/story", guid="w1", text="Other.")
        before = _changes(conn)

    await db.migrate(before_0046)

    with psycopg.connect(before_0046, autocommit=True, row_factory=dict_row) as conn:
        shown = conn.execute(
            "SELECT id, url, original_url, image_url, feed_url FROM news.articles ORDER BY id"
        ).fetchall()
        assert shown[1:] == [
            {
                "id": at,
                "url": "http://news.example/@writer/story",
                "original_url": "http://news.example/@writer/story",
                "image_url": None,
                "feed_url": "http://news.example/feeds/private.xml",
            }
        ]
        assert shown[:1] == [
            {
                "id": article,
                "url": "http://news.example/story/1",
                "original_url": "http://news.example/story/1",
                "image_url": "http://news.example/img/1.jpg",
                "feed_url": "http://news.example/feeds/private.xml",
            }
        ]
        hashed = conn.execute(
            "SELECT url_hash = sha256(convert_to('http://news.example/story/1', 'UTF8')) AS ok"
            " FROM ingest.articles WHERE id = %s",
            (article,),
        ).fetchall()
        assert hashed == [{"ok": True}]
        assert conn.execute("SELECT url FROM ingest.feeds").fetchall() == [{"url": PRIVATE}]
    with psycopg.connect(before_0046, autocommit=True) as conn:
        assert _known(conn, "http://news.example/story/1") == [article]
        assert _known(conn, "http://Reader:S3cret@news.example/story/1") == [article]
        assert _changes(conn) == [*before, (article, "update")]


async def test_an_article_stored_with_and_without_user_info_is_one_article(
    before_0046: str,
) -> None:
    """The same page stored twice by the version before: at its URL with the private feed's
    user-info (the story's original) and without it, by a public feed of the site (a copy of
    it), a copy on another site published later; and one page stored with two private feeds'
    credentials. Each is one article after sql/0046: the copy stored without the credential
    keeps its id and takes the other's feeds and URL forms, and the story keeps one original
    (the earliest published left, as after a prune); two stored with credentials alone are the
    first one stored, its URL cleaned. Nothing else is lost, and nothing is left with a
    credential."""
    with psycopg.connect(before_0046, autocommit=True) as conn:
        private, public, other = _feed(conn, PRIVATE), _feed(conn, PUBLIC), _feed(conn, OTHER)
        original = _article(conn, private, "http://Reader:S3cret@news.example/story/0", guid="g0")
        conn.execute(
            "INSERT INTO ingest.article_history (article_id, text, content_hash)"
            " VALUES (%s, 'An earlier text.', sha256('x'))",
            (original,),
        )
        copy = _article(
            conn,
            public,
            "http://news.example/story/0",
            guid="p0",
            published=T0 + timedelta(minutes=1),
            duplicate_of=original,
        )
        elsewhere = _article(
            conn,
            None,
            "http://copies.example/s0",
            guid="c0",
            published=T0 + timedelta(minutes=2),
            duplicate_of=original,
        )
        first = _article(
            conn,
            private,
            "http://Reader:S3cret@news.example/story/2",
            guid="g2",
            text="Another story altogether, about the new bridge over the river.",
        )
        second = _article(
            conn, other, "http://Other:Pw@news.example/story/2", guid="o2", text="Bridge."
        )
        before = _changes(conn)

    await db.migrate(before_0046)

    with psycopg.connect(before_0046, autocommit=True, row_factory=dict_row) as conn:
        shown = conn.execute(
            "SELECT id, url, feed_id, duplicate_of FROM news.articles ORDER BY id"
        ).fetchall()
        assert shown == [
            {"id": copy, "url": "http://news.example/story/0", "feed_id": public,
             "duplicate_of": None},
            {"id": elsewhere, "url": "http://copies.example/s0", "feed_id": None,
             "duplicate_of": copy},
            {"id": first, "url": "http://news.example/story/2", "feed_id": private,
             "duplicate_of": None},
        ]  # fmt: skip
        feeds = conn.execute(
            "SELECT article_id, feed_id FROM news.article_feeds ORDER BY article_id, feed_id"
        ).fetchall()
        assert feeds == [
            {"article_id": copy, "feed_id": private},
            {"article_id": copy, "feed_id": public},
            {"article_id": first, "feed_id": private},
            {"article_id": first, "feed_id": other},
        ]
        history = conn.execute("SELECT article_id FROM news.article_history").fetchall()
        assert history == []
        leaked = conn.execute(
            "SELECT count(*) AS n FROM news.articles"
            " WHERE url LIKE '%%@%%' OR original_url LIKE '%%@%%'"
        ).fetchone()
        assert leaked == {"n": 0}
    with psycopg.connect(before_0046, autocommit=True) as conn:
        assert _known(conn, "http://Reader:S3cret@news.example/story/0") == [copy]
        assert _known(conn, "http://news.example/story/0") == [copy]
        assert _known(conn, "http://Other:Pw@news.example/story/2") == [first]
        assert _known(conn, "http://news.example/story/2") == [first]
        gone = {original, second}
        assert [c for c in before if c[0] in gone] != []
        assert sorted(_changes(conn)) == sorted(
            [c for c in before if c[0] not in gone]
            + [(copy, "update"), (elsewhere, "update"), (first, "update")]
        )


async def test_a_backfill_s_pages_queued_with_user_info_are_queued_without_it(
    before_0046: str,
) -> None:
    """A backfill of a private sitemap that the version before queued its relative pages for
    with the sitemap's user-info (the URL, and the link and image of its entry): queued without
    it; a page queued both ways in one run is one page, the row without it kept; another run's
    row is its own; the run's target keeps the credential it is fetched with."""
    target = "https://Reader:S3cret@news.example/news/sitemap.xml"
    with psycopg.connect(before_0046, autocommit=True) as conn:
        runs = [
            conn.execute(
                "INSERT INTO ingest.backfill_runs (run_key, target) VALUES (sha256(%s), %s)"
                " RETURNING id",
                (key, target),
            ).fetchone()
            for key in (b"one", b"two")
        ]
        one, two = (int(r[0]) for r in runs if r is not None)
        queued = [
            (one, "https://Reader:S3cret@news.example/news/a", "pending"),
            (one, "https://news.example/news/b", "done"),
            (one, "https://Reader:S3cret@news.example/news/b", "pending"),
            (two, "https://Reader:S3cret@news.example/news/a", "done"),
        ]
        for run, url, state in queued:
            conn.execute(
                "INSERT INTO ingest.backfill_urls (run_id, url, source, entry, state)"
                " VALUES (%s, %s, 'sitemap', %s, %s)",
                (run, url, Jsonb({"link": url, "image_url": url + ".jpg", "title": "T"}), state),
            )

    await db.migrate(before_0046)

    with psycopg.connect(before_0046, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT run_id, url, entry, state, url_hash = ingest.url_hash(url)"
            " FROM ingest.backfill_urls ORDER BY run_id, url"
        ).fetchall()
        targets = conn.execute("SELECT target FROM ingest.backfill_runs").fetchall()
    assert rows == [
        (one, f"https://news.example/news/{p}",
         {"link": f"https://news.example/news/{p}",
          "image_url": f"https://news.example/news/{p}.jpg", "title": "T"}, state, True)
        for p, state in (("a", "pending"), ("b", "done"))
    ] + [
        (two, "https://news.example/news/a",
         {"link": "https://news.example/news/a", "image_url": "https://news.example/news/a.jpg",
          "title": "T"}, "done", True)
    ]  # fmt: skip
    assert targets == [(target,), (target,)]


def _forms(conn: psycopg.Connection[Any], article_id: int, *urls: str) -> None:
    """More URL forms of an article (an entry's link, a page it redirected from)."""
    for url in urls:
        conn.execute(
            "INSERT INTO ingest.article_urls (url_hash, article_id)"
            " VALUES (ingest.url_hash(%s), %s)",
            (url, article_id),
        )


def _found_elsewhere(conn: psycopg.Connection[Any]) -> list[tuple[int, str, list[int | None]]]:
    """Articles that their own URL does not find (`ingest.known_url` of their url_hash names
    another article, or none): the service, looking a page up by its URL, would not find the
    row stored at it."""
    rows = conn.execute(
        "SELECT a.id, a.url, ARRAY(SELECT k.article_id FROM ingest.known_url(a.url_hash) k)"
        " FROM ingest.articles a ORDER BY a.id"
    ).fetchall()
    return [(int(i), str(u), list(k)) for i, u, k in rows if list(k) != [i]]


async def test_a_copy_re_pointed_and_cleaned_by_0046_is_announced_once(before_0046: str) -> None:
    """A story's original stored with the private feed's credential is merged into the same
    page stored without it (its copy, whose image was written with the credential), and another
    copy of the story stored with the credential is re-pointed and cleaned: each surviving
    article the migration changes is one `update`, as one edit of an article is one row."""
    with psycopg.connect(before_0046, autocommit=True) as conn:
        private, public = _feed(conn, PRIVATE), _feed(conn, PUBLIC)
        original = _article(conn, private, "http://Reader:S3cret@news.example/story/0", guid="g0")
        kept = _article(
            conn,
            public,
            "http://news.example/story/0",
            guid="p0",
            published=T0 + timedelta(minutes=1),
            duplicate_of=original,
            image_url="http://Reader:S3cret@news.example/img/0.jpg",
        )
        printed = _article(
            conn,
            private,
            "http://Reader:S3cret@news.example/print/0",
            guid="g0p",
            published=T0 + timedelta(minutes=2),
            duplicate_of=original,
        )
        before = _changes(conn)

    await db.migrate(before_0046)

    with psycopg.connect(before_0046, autocommit=True) as conn:
        shown = conn.execute(
            "SELECT id, url, image_url, duplicate_of FROM news.articles ORDER BY id"
        ).fetchall()
        assert shown == [
            (kept, "http://news.example/story/0", "http://news.example/img/0.jpg", None),
            (printed, "http://news.example/print/0", None, kept),
        ]
        assert _changes(conn) == [
            *[c for c in before if c[0] != original],
            (kept, "update"),
            (printed, "update"),
        ]


async def test_0046_merges_along_chains_of_url_forms(before_0046: str) -> None:
    """Articles stored with a credential whose cleaned URL is a URL form of another article
    being cleaned (which the service would find under it): an article A whose cleaned URL is a
    form of C, whose cleaned URL is D's URL (stored without a credential); two articles each of
    whose cleaned URL is a form of the other. Each chain is one article, the one the service
    finds under every URL of it (D; the first stored of the two), and every article is found by
    its own URL."""
    with psycopg.connect(before_0046, autocommit=True) as conn:
        private, public = _feed(conn, PRIVATE), _feed(conn, PUBLIC)
        d = _article(conn, public, "http://news.example/story/d", guid="d", text="D.")
        c = _article(conn, private, "http://Reader:S3cret@news.example/story/d", guid="c")
        _forms(conn, c, "http://news.example/story/a")
        a = _article(conn, private, "http://Reader:S3cret@news.example/story/a", guid="a")
        p = _article(conn, private, "http://Reader:S3cret@loop.example/p", guid="p", text="P.")
        q = _article(conn, private, "http://Reader:S3cret@loop.example/q", guid="q", text="Q.")
        _forms(conn, p, "http://loop.example/q")
        _forms(conn, q, "http://loop.example/p")

    await db.migrate(before_0046)

    with psycopg.connect(before_0046, autocommit=True) as conn:
        shown = conn.execute("SELECT id, url FROM news.articles ORDER BY id").fetchall()
        assert shown == [(d, "http://news.example/story/d"), (p, "http://loop.example/p")]
        assert _found_elsewhere(conn) == []
        for url in ("a", "d"):
            assert _known(conn, f"http://news.example/story/{url}") == [d]
        assert _known(conn, "http://Reader:S3cret@news.example/story/a") == [d]
        assert _known(conn, "http://loop.example/q") == [p]
        feeds = conn.execute(
            "SELECT article_id, feed_id FROM news.article_feeds ORDER BY article_id, feed_id"
        ).fetchall()
        assert feeds == [(d, private), (d, public), (p, private)]
        assert {a, c, q}.isdisjoint({r[0] for r in shown})


async def test_0046_changes_nothing_where_no_url_has_a_user_info(before_0046: str) -> None:
    """A database whose URLs carry no user-info (an `@` in a path, a query, a fragment; a
    backfill's page and entry so too): 0046 rewrites no row and announces nothing."""
    with psycopg.connect(before_0046, autocommit=True) as conn:
        feed = _feed(conn, PRIVATE)
        for n, url in enumerate(
            [
                "http://news.example/@writer/story",
                "http://news.example/story?contact=desk@news.example",
                "http://news.example/story/2#by@desk",
                "http://news.example/story/3",
            ]
        ):
            _article(conn, feed, url, guid=f"n{n}", text=f"Story {n}.", image_url=url + ".jpg")
        run = conn.execute(
            "INSERT INTO ingest.backfill_runs (run_key, target) VALUES (sha256('r'), %s)"
            " RETURNING id",
            (PRIVATE,),
        ).fetchone()
        assert run is not None
        page = "https://news.example/@desk/page"
        conn.execute(
            "INSERT INTO ingest.backfill_urls (run_id, url, source, entry)"
            " VALUES (%s, %s, 'sitemap', %s)",
            (run[0], page, Jsonb({"link": page, "image_url": page + ".jpg"})),
        )
        tables = ("articles", "article_urls", "feed_entries", "article_changes", "backfill_urls")
        snapshot = "SELECT ctid::text, to_jsonb(t) FROM ingest.{} t ORDER BY 1"
        before = {t: conn.execute(snapshot.format(t)).fetchall() for t in tables}

    await db.migrate(before_0046)

    with psycopg.connect(before_0046, autocommit=True) as conn:
        after = {t: conn.execute(snapshot.format(t)).fetchall() for t in tables}
    assert after == before


@st.composite
def urls_with_at_signs(draw: st.DrawFn) -> str:
    """URLs, well formed or not, with `@` where it is a user-info's end and where it is not (a
    path, a query, a fragment), in the spellings a feed, a page or a redirect gives them:
    schemes in capitals, percent-encoded user-info, a user without a password, IPv6 hosts,
    ports, empty queries and fragments, whitespace and backslashes."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTtPs", "git+https", "1http", ""]))
    sep = draw(st.sampled_from(["://", ":/", ":", ":///", "//"]))
    user = draw(
        st.sampled_from(
            ["", "u@", "u:p@", "@", ":@", "a@b@", "Reader%40x:p%2F@", "u:p@w@", "u\n@", "u p@"]
        )
    )
    host = draw(st.sampled_from(["news.example", "News.EXAMPLE.", "[::1]", "[::1", "", "h\\x"]))
    port = draw(st.sampled_from(["", ":80", ":8080", ":", ":x"]))
    pieces = ["/", "a", "@", "/@writer", "%40", "\\", " ", "\t", ".", ":", "é", "[", "]"]
    path = "".join(draw(st.lists(st.sampled_from(pieces), max_size=6)))
    query = draw(st.sampled_from(["", "?", "?e=desk@news.example", "?a=1&b=@"]))
    fragment = draw(st.sampled_from(["", "#", "#by@desk", "#!/s@1"]))
    lead = draw(st.sampled_from(["", " "]))
    return f"{lead}{scheme}{sep}{user}{host}{port}{path}{query}{fragment}"


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.one_of(urls_with_at_signs(), st.text(alphabet=st.characters(exclude_characters="\x00"))))
def test_the_service_and_0046_take_the_same_user_info_out_of_a_url(
    database_url: str, url: str
) -> None:
    """The service stores an article's URLs without their user-info as
    `ingest.normalize.without_user_info` gives them, and 0046 cleaned those stored before with
    the SQL function `ingest.without_userinfo`: on any URL the two give the same, so that a row
    stored before the upgrade and the same row stored after it are one, and nothing but the
    user-info changes (the rest of the URL as written: `original_url` is the link as the feed
    gave it)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT ingest.without_userinfo(%s)", (url,)).fetchone()
    assert row is not None
    assert without_user_info(url) == row[0]


async def test_0046_beside_a_feed_removed_meanwhile_is_applied(before_0046: str) -> None:
    """A private feed removed while 0046 runs (`ingest feeds remove`: its entries deleted and
    its articles' feed_id set to NULL, row locks that the article writers' turn does not
    order) can deadlock with the migration's merge, which rewrites the same entries and
    articles in the other order. The migration, rolled back whole, is tried again and applied,
    as one that waited too long for a lock is, instead of failing the start of the service."""
    name = psycopg.conninfo.conninfo_to_dict(before_0046)["dbname"]
    with psycopg.connect(before_0046, autocommit=True) as conn:
        private, public = _feed(conn, PRIVATE), _feed(conn, PUBLIC)
        gone = _article(conn, private, "http://Reader:S3cret@news.example/story/0", guid="g0")
        kept = _article(conn, public, "http://news.example/story/0", guid="p0")
        # The migration finds the deadlock before its lock_timeout runs out; the other
        # session never looks (its deadlock_timeout is an hour): the migration is the one
        # rolled back, as the database may choose either.
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET deadlock_timeout = '300ms'").format(sql.Identifier(name))
        )
    async with await psycopg.AsyncConnection.connect(before_0046) as remover:
        await remover.execute("SET deadlock_timeout = '1h'")
        # The removal's first cascade: the feed's articles lose their feed_id.
        await remover.execute("UPDATE ingest.articles SET feed_id = NULL WHERE id = %s", (gone,))
        migrating = asyncio.create_task(db.migrate(before_0046))
        for _ in range(400):  # until the migration waits for the article's row
            cur = await remover.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            row = await cur.fetchone()
            if (row and row[0]) or migrating.done():
                break
            await asyncio.sleep(0.01)
        # Its second: the feed's entries, which the migration moved to the article it keeps.
        await remover.execute("DELETE FROM ingest.feed_entries WHERE feed_id = %s", (private,))
        await remover.execute("DELETE FROM ingest.feeds WHERE id = %s", (private,))
        await remover.commit()
        assert (await migrating)[:1] == [46]  # and those after it
    with psycopg.connect(before_0046, autocommit=True) as conn:
        shown = conn.execute("SELECT id, url, feed_id FROM news.articles ORDER BY id").fetchall()
        assert shown == [(kept, "http://news.example/story/0", public)]
        assert _known(conn, "http://Reader:S3cret@news.example/story/0") == [kept]


@pytest.fixture(scope="module")
def at_0045(pg_admin: str) -> Iterator[str]:
    """A database migrated up to 0045, empty: the template of each example below."""
    name = f"ingest_t45_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(pg_admin, dbname=name)
    shipped = db.load_migrations()
    old, db.load_migrations = db.load_migrations, lambda: [m for m in shipped if m.version <= 45]
    try:
        asyncio.run(db.migrate(dsn))
    finally:
        db.load_migrations = old
    yield name
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


STORY_URLS = [f"http://{u}news.example/{p}" for p in "abc" for u in ("", "R:S@", "O:P@")]
"""Three pages, each at its URL and with two feeds' credentials."""

stored_article = st.tuples(
    st.sampled_from(STORY_URLS),  # its url (and original_url)
    st.lists(st.sampled_from(STORY_URLS), max_size=3),  # more URL forms
    st.one_of(st.none(), st.integers(0, 8)),  # the earlier article it is a copy of
    st.integers(0, 10),  # minutes before now it was published
    st.booleans(),  # listed by the private feed (else the public one)
    st.sampled_from([None, "http://R:S@img.example/i.jpg"]),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(stored_article, min_size=1, max_size=9))
def test_0046_leaves_every_database_consistent(
    pg_admin: str,
    at_0045: str,
    stored: list[tuple[str, list[str], int | None, int, bool, str | None]],
) -> None:
    """Any articles the version before could have stored of three pages, each at its URL or
    with one of two feeds' credentials, with URL forms, copies and images: after 0046 no URL
    of an article has a user-info, every article is found by its own URL, no URL form is lost,
    every feed entry names an article, every copy points at an original, and each article that
    changed has exactly one `update` change row, those that did not none."""
    name = f"ingest_e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(at_0045)
            )
        )
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(pg_admin, dbname=name)) as conn:
            conn.autocommit = True
            _check_0046_on(conn, stored)
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _check_0046_on(
    conn: psycopg.Connection[Any],
    stored: list[tuple[str, list[str], int | None, int, bool, str | None]],
) -> None:
    private, public = _feed(conn, PRIVATE), _feed(conn, PUBLIC)
    ids: list[int] = []
    urls: set[str] = set()
    forms: set[str] = set()
    for n, (url, more, copy_of, minutes, by_private, image) in enumerate(stored):
        if url in urls or url in forms:
            continue  # the version before stored one article per URL form
        original: int | None = None
        if copy_of is not None and copy_of < len(ids):
            row = conn.execute(
                "SELECT duplicate_of IS NULL FROM ingest.articles WHERE id = %s", (ids[copy_of],)
            ).fetchone()
            original = ids[copy_of] if row and row[0] else None
        feed = private if by_private else public
        article = _article(
            conn,
            feed,
            url,
            guid=f"g{n}",
            published=T0 - timedelta(minutes=minutes),
            duplicate_of=original,
            image_url=image,
        )
        ids.append(article)
        urls.add(url)
        forms.add(url)
        for form in more:
            if form not in forms and form not in urls:
                forms.add(form)
                _forms(conn, article, form)
    read = "SELECT id, to_jsonb(a) - 'feed_id' FROM ingest.articles a"
    before = dict(conn.execute(read).fetchall())
    last_seq = conn.execute("SELECT max(seq) FROM ingest.article_changes").fetchone()
    entries = conn.execute("SELECT count(*) FROM ingest.feed_entries").fetchone()
    hashes = {r[0] for r in conn.execute("SELECT url_hash FROM ingest.article_urls")}
    migration = next(m for m in db.load_migrations() if m.version == 46)
    with conn.transaction():
        conn.execute(migration.sql.encode("utf-8"))

    after = dict(conn.execute(read).fetchall())
    assert (
        conn.execute(
            "SELECT id FROM ingest.articles WHERE ingest.without_userinfo(url) <> url"
            " OR ingest.without_userinfo(original_url) <> original_url"
            " OR ingest.without_userinfo(image_url) <> image_url"
        ).fetchall()
        == []
    )
    assert _found_elsewhere(conn) == []
    assert hashes <= {r[0] for r in conn.execute("SELECT url_hash FROM ingest.article_urls")}
    assert (
        conn.execute("SELECT count(*), count(article_id) FROM ingest.feed_entries").fetchone()
        == (entries[0] if entries else 0,) * 2
    )
    assert (
        conn.execute(
            "SELECT c.id FROM ingest.articles c JOIN ingest.articles o ON o.id = c.duplicate_of"
            " WHERE o.duplicate_of IS NOT NULL"
        ).fetchall()
        == []
    )
    changes = conn.execute(
        "SELECT article_id, kind FROM ingest.article_changes WHERE seq > %s ORDER BY article_id",
        (last_seq[0] if last_seq else 0,),
    ).fetchall()
    assert changes == [(i, "update") for i in sorted(after) if after[i] != before[i]]
