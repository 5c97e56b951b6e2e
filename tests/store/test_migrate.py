"""ingest.store.db.migrate on an empty database: every migration applied once, idempotently, safely
from several processes at once, leaving the views of the README's SQL contract."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ingest.store.db import load_migrations, migrate, pending_migrations
from tests.support.paths import ROOT
from tests.support.processes import wait_until
from tests.support.relay import SilentRelay

pytestmark = pytest.mark.integration

README = ROOT / "README.md"


# README type names -> information_schema.columns.data_type
SQL_TYPES = {
    "bigint": "bigint",
    "integer": "integer",
    "text": "text",
    "boolean": "boolean",
    "timestamptz": "timestamp with time zone",
    "interval": "interval",
    "text[]": "ARRAY",
    "jsonb": "jsonb",
}


def _documented_columns(view: str, doc: Path = README) -> dict[str, str]:
    """Column name -> type from the table under the heading "### `<view>`" of a document."""
    text = doc.read_text(encoding="utf-8")
    start = text.index(f"### `{view}`")
    section = text[start:].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+(?:\[\])?) \|", section, flags=re.MULTILINE)
    return dict(rows)


def _view_columns(dsn: str, schema: str, view: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (schema, view),
        ).fetchall()
    return dict(rows)


def _applied(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT version FROM ingest.schema_migrations ORDER BY version")
        return [r[0] for r in rows.fetchall()]


@pytest.mark.anyio
async def test_migrate_applies_all_then_none(empty_database_url: str) -> None:
    """The first call applies every shipped migration in order; the second applies none."""
    shipped = [m.version for m in load_migrations()]
    assert shipped, "sql/ ships at least one migration"
    assert await pending_migrations(empty_database_url) == shipped
    assert await migrate(empty_database_url) == shipped
    assert await migrate(empty_database_url) == []
    assert _applied(empty_database_url) == shipped
    assert await pending_migrations(empty_database_url) == []


@pytest.mark.anyio
async def test_a_fresh_database_is_migrated_without_a_notice(empty_database_url: str) -> None:
    """`migration_notice` is what an operator acts on (the read-only role not created): a new
    database, on a cluster where news_reader exists, is migrated without one. PostgreSQL's own
    "already exists, skipping" of a `CREATE … IF NOT EXISTS` (sql/0001 creating the schema
    `ingest` that the migration table was made in first) is no news."""
    from structlog.testing import capture_logs

    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'news_reader')"
            " THEN CREATE ROLE news_reader LOGIN; END IF;"
            " EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL; END $$"
        )
    with capture_logs() as logged:
        assert await migrate(empty_database_url) == [m.version for m in load_migrations()]
    assert [e for e in logged if e["event"] == "migration_notice"] == []


SQL_DOC = README.parent / "docs" / "sql.md"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("doc", "view", "at_least"),
    [
        (README, "news.articles", 10),
        (README, "news.feeds", 10),
        (SQL_DOC, "news.articles", 10),
        (SQL_DOC, "news.feeds", 10),
        (SQL_DOC, "news.article_changes", 4),
        (SQL_DOC, "news.article_history", 7),
        (SQL_DOC, "news.article_feeds", 4),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
async def test_views_have_documented_columns(
    empty_database_url: str, doc: Path, view: str, at_least: int
) -> None:
    """Each view of the SQL contract has exactly the columns the README and docs/sql.md
    document for it, column by column, with the documented types."""
    await migrate(empty_database_url)
    documented = _documented_columns(view, doc)
    assert len(documented) >= at_least, f"{doc.name}: table for {view} not found"
    schema, name = view.split(".")
    actual = _view_columns(empty_database_url, schema, name)
    assert set(documented) - set(actual) == set()
    assert set(actual) - set(documented) == set(), "undocumented columns"
    wrong = {
        col: (SQL_TYPES[typ], actual[col])
        for col, typ in documented.items()
        if actual[col] != SQL_TYPES[typ]
    }
    assert wrong == {}


@pytest.mark.anyio
async def test_views_are_views(empty_database_url: str) -> None:
    """Consumers read views in schema `news`, not the internal tables."""
    await migrate(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'news'"
        ).fetchall()
    assert {r[0] for r in rows} >= {"articles", "feeds"}


NEWS_OBJECTS = """
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'news'::regnamespace AND c.relkind NOT IN ('i', 'S', 'c', 't')
UNION ALL
SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'news'::regnamespace
"""
"""The names of what consumers can read or call in schema `news`: its relations and functions."""


def test_every_object_of_schema_news_has_its_section_in_docs_sql_md(database_url: str) -> None:
    """docs/sql.md gives each view of schema `news` (`### \\`news.x\\``) and each function
    (`## \\`news.f(...)\\``) a section of its own, and none to an object the migrations do not
    make: a view added without its documentation, or a section left after a rename."""
    text = SQL_DOC.read_text(encoding="utf-8")
    sections = set(re.findall(r"^##+ `news\.(\w+)", text, flags=re.MULTILINE))
    with psycopg.connect(database_url) as conn:
        made = {row[0] for row in conn.execute(NEWS_OBJECTS).fetchall()}
    assert sections == made


def test_every_name_in_schema_news_the_documents_give_exists(database_url: str) -> None:
    """Each `news.x` and `news.x.column` the README and docs/sql.md write in code spans names a
    view or function of schema `news` and a column of that view, as a migrated database has
    them."""
    named = {
        match.groups()
        for document in (README, SQL_DOC)
        for match in re.finditer(
            r"`news\.(\w+)(?:\.(\w+))?[`(]", document.read_text(encoding="utf-8")
        )
    }
    with psycopg.connect(database_url) as conn:
        made = {row[0] for row in conn.execute(NEWS_OBJECTS).fetchall()}
        columns = set(
            conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'news'"
            ).fetchall()
        )
    assert len(named) > 20, "the documents' names of schema news not found"
    assert sorted(name for name, _ in named if name not in made) == []
    missing = {(name, column) for name, column in named if column and (name, column) not in columns}
    assert sorted(missing) == []


@pytest.mark.anyio
async def test_concurrent_migrate_applies_once(empty_database_url: str) -> None:
    """Four replicas migrating one empty database at once all succeed; each migration is applied
    by exactly one of them."""
    shipped = [m.version for m in load_migrations()]
    results = await asyncio.gather(*(migrate(empty_database_url) for _ in range(4)))
    applied = sorted(v for r in results for v in r)
    assert applied == shipped
    assert sum(1 for r in results if r) == 1
    assert _applied(empty_database_url) == shipped
    assert await pending_migrations(empty_database_url) == []


@pytest.mark.anyio
async def test_migrated_database_is_checked_without_the_lock(empty_database_url: str) -> None:
    """On a database with every migration applied, `migrate` answers at once, even while
    another process holds the migration lock (a replica applying nothing must not queue behind
    one that is, and `ingest run` starts without the lock's round trips); a database with one
    pending still waits for the lock."""
    from ingest.store.db import MIGRATION_LOCK_KEY

    await migrate(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        assert await asyncio.wait_for(migrate(empty_database_url), timeout=5) == []
        last = load_migrations()[-1].version
        holder.execute("DELETE FROM ingest.schema_migrations WHERE version = %s", (last,))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(migrate(empty_database_url), timeout=1)
        holder.execute(
            "INSERT INTO ingest.schema_migrations (version, name) VALUES (%s, 'x')", (last,)
        )


@pytest.mark.anyio
async def test_a_migration_waiting_for_a_lock_lets_the_readers_through(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer idle in a transaction that read news.articles holds a lock that replacing the
    view needs. The migration waits for it a second at a time, saying so (`migration_waiting`,
    with the oldest open transactions), and between tries the readers it would queue ahead of
    read on; once the consumer's transaction ends, it is applied."""
    from structlog.testing import capture_logs

    from ingest.store import db

    shipped = db.load_migrations()
    # What replacing the view takes.
    replace = db.Migration(9999, "replace", "LOCK TABLE news.articles IN ACCESS EXCLUSIVE MODE")
    monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, replace])
    idle = psycopg.connect(database_url)  # not autocommit: idle in its transaction
    reader = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        idle.execute("SELECT count(*) FROM news.articles")
        with capture_logs() as logged:
            task = asyncio.create_task(db.migrate(database_url))
            for _ in range(300):
                cur = await reader.execute(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE relation = 'news.articles'::regclass AND NOT granted"
                )
                if (await cur.fetchone()) != (0,):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the migration never asked for its lock")
            # Queued behind the migration's request: before, it waited as long as the consumer.
            await reader.execute("SET statement_timeout = '60s'")
            cur = await reader.execute("SELECT count(*) FROM news.articles")
            assert await cur.fetchone() == (0,)
            for _ in range(600):
                if any(e["event"] == "migration_waiting" for e in logged):
                    break
                await asyncio.sleep(0.05)
            assert not task.done()
            idle.rollback()
            assert await asyncio.wait_for(task, timeout=60) == [9999]
    finally:
        idle.close()
        await reader.close()
    waiting = [e for e in logged if e["event"] == "migration_waiting"]
    assert waiting, logged
    assert waiting[0]["version"] == 9999
    assert waiting[0]["oldest_transactions"], waiting[0]


@pytest.mark.anyio
async def test_a_role_another_database_creates_meanwhile_is_no_failure() -> None:
    """Roles belong to the whole cluster, migration locks to one database: two databases of a
    new cluster migrated at once (two services, two test workers) both create news_reader, and
    the one whose CREATE ROLE waited for the other's failed with a unique violation on
    pg_authid. The migration is tried again, and finds the role there."""
    import contextlib
    import shutil
    import subprocess
    import tempfile

    from tests.support.cluster import PrivateCluster

    base = Path(tempfile.mkdtemp(prefix="ingest-migrate-pg-"))
    cluster = PrivateCluster(base / "data")
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE one")
        other = psycopg.connect(cluster.dsn())  # the other database's migration, mid-0004
        other.execute("CREATE ROLE news_reader LOGIN")
        task = asyncio.create_task(migrate(cluster.dsn("one")))
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            for _ in range(600):
                waiting = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = 'one' AND wait_event = 'transactionid'"
                ).fetchone()
                if waiting != (0,) or task.done():
                    break
                await asyncio.sleep(0.05)
        other.commit()
        other.close()
        applied = await asyncio.wait_for(task, timeout=120)
        assert applied == [m.version for m in load_migrations()]
        with psycopg.connect(cluster.dsn("one"), autocommit=True) as conn:
            conn.execute("SET ROLE news_reader")
            conn.execute("SELECT count(*) FROM news.articles")
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            cluster.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.anyio
async def test_a_migrating_user_who_may_not_create_roles_is_told_and_the_role_can_follow() -> None:
    """A database's owner without CREATEROLE migrates a cluster that has no news_reader: every
    migration is applied, and the notice that the role was not created is logged
    (`migration_notice`, naming the migration), not dropped. A superuser then runs the `DO`
    block of sql/0004 as docs/sql.md says, and news_reader reads every view of schema news and
    searches."""
    import contextlib
    import shutil
    import subprocess
    import tempfile

    from structlog.testing import capture_logs

    from tests.support.cluster import PrivateCluster

    base = Path(tempfile.mkdtemp(prefix="ingest-migrate-pg-"))
    cluster = PrivateCluster(base / "data")
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE ROLE owner LOGIN")
            admin.execute("CREATE DATABASE news OWNER owner")
        owner = cluster.dsn("news").replace("postgres@", "owner@", 1)
        with capture_logs() as logged:
            applied = await migrate(owner)
        assert applied == [m.version for m in load_migrations()]
        notices = [e for e in logged if e["event"] == "migration_notice"]
        assert [
            (e["version"], e["message"].split(":")[0])
            for e in notices
            if "news_reader" in e["message"]
        ] == [(4, "news_reader not created")], notices
        block = re.search(
            r"^DO \$\$\nBEGIN\n    IF NOT EXISTS .*?^\$\$;",
            (ROOT / "sql" / "0004_sql_contract.sql").read_text(encoding="utf-8"),
            flags=re.MULTILINE | re.DOTALL,
        )
        assert block is not None
        with psycopg.connect(cluster.dsn("news"), autocommit=True) as conn:
            conn.execute(block[0])
            conn.execute("SET ROLE news_reader")
            for view in _documented_views():
                conn.execute(f"SELECT * FROM {view}")
            conn.execute("SELECT * FROM news.search('storm')")
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            cluster.close()
        shutil.rmtree(base, ignore_errors=True)


def _documented_views() -> list[str]:
    """The views docs/sql.md documents, each under a heading of its own."""
    return re.findall(r"^### `(news\.\w+)`", SQL_DOC.read_text(encoding="utf-8"), re.MULTILINE)


SCHEMA_CATALOG = """
SELECT 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('ingest', 'news') AND p.prokind IN ('f', 'p')
UNION ALL
SELECT 'view ' || c.oid::regclass::text, pg_get_viewdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('ingest', 'news') AND c.relkind = 'v'
UNION ALL
SELECT 'index ' || c.oid::regclass::text, pg_get_indexdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('ingest', 'news') AND c.relkind = 'i'
UNION ALL
SELECT 'constraint ' || x.conrelid::regclass::text || ' ' || x.conname, pg_get_constraintdef(x.oid)
FROM pg_constraint x JOIN pg_namespace n ON n.oid = x.connamespace
WHERE n.nspname IN ('ingest', 'news')
UNION ALL
SELECT 'default ' || d.adrelid::regclass::text || ' ' || a.attname, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attrdef d
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('ingest', 'news')
"""
"""The definition of everything the migrations make in schemas ingest and news, by name."""


def _catalog(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET standard_conforming_strings = on")  # definitions shown alike
        return dict(conn.execute(SCHEMA_CATALOG).fetchall())


@pytest.mark.anyio
async def test_a_database_reading_backslashes_as_escapes_is_migrated_as_any_other(
    empty_database_url: str, database_url: str
) -> None:
    """A database set to read a backslash in a string literal as an escape (`ALTER DATABASE
    news SET standard_conforming_strings = off`, for a legacy client) is migrated to the same
    functions, views, indexes, constraints and defaults as one with PostgreSQL's default: the
    regular expressions that hide a feed URL's credentials in schema news (`\\1`, `\\s`) are
    read as written, and news.feeds shows `https://h/f?token=***`."""
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET standard_conforming_strings = off")
    await migrate(empty_database_url)
    migrated, expected = _catalog(empty_database_url), _catalog(database_url)
    assert set(migrated) == set(expected)
    assert {k for k in expected if migrated[k] != expected[k]} == set()
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, last_error) VALUES (%s, %s)",
            ("https://u:p@h.example/f?token=S1", "redirect to https://h.example/g?api_key=S2"),
        )
        shown = conn.execute("SELECT url, last_error FROM news.feeds").fetchone()
    assert shown == ("https://h.example/f?token=***", "redirect to https://h.example/g?api_key=***")


def _host_rows(dsn: str) -> list[tuple[str, Any]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT host, due_at FROM ingest.feed_hosts ORDER BY host").fetchall()


def _sitemap_with_articles(conn: psycopg.Connection[Any], sitemap: str, pages: list[str]) -> int:
    """A news sitemap followed as a feed, without site_url, that listed these pages."""
    row = conn.execute(
        "INSERT INTO ingest.feeds (url, kind, next_fetch_at) VALUES (%s, 'sitemap', now())"
        " RETURNING id",
        (sitemap,),
    ).fetchone()
    assert row is not None
    for i, page in enumerate(pages):
        conn.execute(
            "WITH a AS (INSERT INTO ingest.articles (url, original_url, site, text, published_at,"
            "   published_source, content_hash, text_source, fetched_at)"
            " VALUES (%(url)s, %(url)s, 'x', 'Text.', now(), 'feed',"
            "   sha256(convert_to(%(url)s::text, 'UTF8')), 'page', now()) RETURNING id)"
            " INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id)"
            " SELECT %(feed)s, sha256(convert_to(%(url)s::text, 'UTF8')), id FROM a",
            {"url": page, "feed": row[0]},
        )
    return int(row[0])


@pytest.mark.anyio
async def test_functions_made_while_backslashes_were_escapes_are_repaired(
    empty_database_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that an earlier version migrated while its sessions read a backslash in a
    string literal as an escape (the server, role or database set standard_conforming_strings
    off) holds the functions of sql/0022, 0026, 0028 and 0031 made so: `ingest.url_host` drops a
    host's last letter, and news.feeds shows a feed URL's user-info and token mangled, or fails.
    The next migration (sql/0042) makes them as written; the index on feed hosts, each host's
    row of ingest.feed_hosts (so that its feeds are claimed) and the site that 0036 read for a
    news sitemap from its articles are made again with the function as written."""
    from ingest.store import db
    from tests.store.test_host_queue import claim

    shipped = db.load_migrations()
    misread = db.SESSION_SETTINGS.replace(
        "standard_conforming_strings = on", "standard_conforming_strings = off"
    )
    with monkeypatch.context() as old:
        old.setattr(db, "SESSION_SETTINGS", misread)
        old.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version <= 35])
        await db.migrate(empty_database_url)
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            cdn = _sitemap_with_articles(
                conn,
                "https://cdn.example.net/news.xml",
                ["https://news.example.com/a/1", "https://news.example.com/a/2"],
            )
            own = _sitemap_with_articles(
                conn, "https://www.example.org/news.xml", ["https://www.example.org/b/1"]
            )
        old.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version <= 41])
        await db.migrate(empty_database_url)
    urls = ["https://u:p@news.example.com/feed?token=S1", "https://feeds.example.org/rss"]
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        for url in urls:
            conn.execute(
                "INSERT INTO ingest.feeds (url, next_fetch_at, last_error)"
                " VALUES (%s, now() - interval '1 minute', 'redirect to https://h.example/?key=S2')",
                (url,),
            )
        assert conn.execute("SELECT ingest.url_host(%s)", (urls[0],)).fetchone() == (
            "news.example.co",
        )
        with pytest.raises(psycopg.errors.InvalidRegularExpression):
            conn.execute("SELECT url, last_error FROM news.feeds").fetchall()
        sites = conn.execute(
            "SELECT id, site_url FROM ingest.feeds WHERE kind = 'sitemap' ORDER BY id"
        ).fetchall()
        assert sites == [(cdn, "https://news.example.co/"), (own, "https://www.example.or/")]

    assert await db.migrate(empty_database_url) == [m.version for m in shipped if m.version > 41]
    migrated, expected = _catalog(empty_database_url), _catalog(database_url)
    assert {k for k in expected if migrated.get(k) != expected[k]} == set()
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        shown = conn.execute(
            "SELECT url, last_error FROM news.feeds WHERE kind = 'feed' ORDER BY id"
        ).fetchall()
        assert shown == [
            ("https://news.example.com/feed?token=***", "redirect to https://h.example/?key=***"),
            ("https://feeds.example.org/rss", "redirect to https://h.example/?key=***"),
        ]
        sites = conn.execute(
            "SELECT id, site_url FROM ingest.feeds WHERE kind = 'sitemap' ORDER BY id"
        ).fetchall()
        assert sites == [(cdn, "https://news.example.com/"), (own, None)]
        conn.execute("SET enable_seqscan = off")
        by_index = conn.execute(
            "SELECT count(*) FROM ingest.feeds"
            " WHERE COALESCE(ingest.url_host(url), '') = 'news.example.com'"
        ).fetchone()
        assert by_index == (1,)
        conn.execute("RESET enable_seqscan")
        claimed = sorted(host for _, host in claim(conn))
    assert claimed == [
        "cdn.example.net",
        "feeds.example.org",
        "news.example.com",
        "www.example.org",
    ]


@pytest.mark.anyio
async def test_the_repair_of_backslash_functions_leaves_a_healthy_database_as_it_was(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a database migrated with standard_conforming_strings on, sql/0042 changes nothing: the
    same functions, views and indexes, and the same rows of ingest.feed_hosts."""
    from ingest.store import db

    shipped = db.load_migrations()
    monkeypatch.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version <= 41])
    await db.migrate(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, next_fetch_at) VALUES"
            " ('https://a.example/feed', now() + interval '1 hour'),"
            " ('https://b.example./feed', now() - interval '1 hour')"
        )
        # A row later than its feed (a poll's outcome written while a claim held the row).
        conn.execute("UPDATE ingest.feed_hosts SET due_at = due_at + interval '5 minutes'")
    before_catalog, before_hosts = _catalog(empty_database_url), _host_rows(empty_database_url)
    # Up to the repair alone: the migrations after it change the catalog on purpose.
    monkeypatch.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version <= 42])
    await db.migrate(empty_database_url)
    assert _catalog(empty_database_url) == before_catalog
    assert _host_rows(empty_database_url) == before_hosts


def test_handles_of_killed_processes_are_forgotten(tmp_path: Path) -> None:
    """A process killed with SIGKILL stays in the embedded server's list of holders, so the
    server would never be stopped: the next start drops the pids of processes that are gone
    and keeps the live ones."""
    import json
    import os
    import subprocess
    import sys

    from ingest.store.db import forget_dead_handles

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    # Killed and not reaped yet: a zombie, which kill(pid, 0) still finds.
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()
    wait_until(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] == "Z", 10)
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([gone.pid, zombie.pid, os.getpid()]))
    forget_dead_handles(tmp_path)
    zombie.wait()
    assert json.loads(handles.read_text()) == [os.getpid()]
    forget_dead_handles(tmp_path / "nothing-here")  # no list yet: nothing to do
    handles.write_text("not json")
    forget_dead_handles(tmp_path)
    assert handles.read_text() == "not json"


def _checksums(dsn: str) -> dict[int, str | None]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT version, checksum FROM ingest.schema_migrations").fetchall()
    return dict(rows)


@pytest.mark.anyio
async def test_an_applied_migration_edited_later_is_refused(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each migration is recorded with the SHA-256 of its file. A released file edited after it
    was applied (a view changed in place, which this database never got) stops `migrate`, and
    so every command and the service's start, with a message naming the file; nothing is
    applied meanwhile."""
    import dataclasses
    import hashlib

    from ingest.errors import StoreError
    from ingest.store import db

    shipped = db.load_migrations()
    await migrate(empty_database_url)
    assert _checksums(empty_database_url) == {
        m.version: hashlib.sha256(m.sql.encode("utf-8")).hexdigest() for m in shipped
    }
    edited = [
        dataclasses.replace(m, sql=m.sql + "\nSELECT 1;\n") if m.version == 4 else m
        for m in shipped
    ]
    later = db.Migration(9999, "later", "CREATE TABLE ingest.later (id int)")
    monkeypatch.setattr(db, "load_migrations", lambda: [*edited, later])
    with pytest.raises(StoreError) as raised:
        await db.migrate(empty_database_url)
    message = str(raised.value)
    assert "0004_sql_contract.sql" in message
    assert "changed since it was applied" in message
    assert "checksum to NULL" in message
    assert 9999 not in _checksums(empty_database_url)


@pytest.mark.anyio
async def test_migrations_recorded_without_a_checksum_get_one(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows recorded before checksums were (NULL) take the checksum of the file as it is at the
    next start, even one edited since; from then on an edit is refused."""
    import dataclasses

    from ingest.errors import StoreError
    from ingest.store import db

    await migrate(empty_database_url)
    expected = _checksums(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("UPDATE ingest.schema_migrations SET checksum = NULL WHERE version < 10")
    assert await migrate(empty_database_url) == []
    assert _checksums(empty_database_url) == expected
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("UPDATE ingest.schema_migrations SET checksum = NULL WHERE version = 3")
    edited = [
        dataclasses.replace(m, sql=m.sql + "\n-- note\n") if m.version == 3 else m
        for m in db.load_migrations()
    ]
    monkeypatch.setattr(db, "load_migrations", lambda: edited)
    assert await db.migrate(empty_database_url) == []
    assert _checksums(empty_database_url)[3] != expected[3]
    monkeypatch.undo()
    with pytest.raises(StoreError, match=r"0003_retry_pages\.sql"):
        await db.migrate(empty_database_url)


@pytest.mark.anyio
async def test_a_database_migrated_by_a_newer_version_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database with a migration this code does not ship (a newer version migrated it) is
    refused by `migrate`, and so by every command and the service's start, with a message
    naming the versions: this code does not know what they changed, so it writes nothing, not
    even its own pending migrations."""
    from ingest.errors import StoreError
    from ingest.store import db

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.schema_migrations (version, name, checksum)"
            " VALUES (9998, 'from_a_newer_version', 'x')"
        )
    with pytest.raises(StoreError) as raised:
        await migrate(database_url)
    message = str(raised.value)
    assert "9998" in message
    assert "newer version" in message
    pending = db.Migration(9997, "pending", "CREATE TABLE ingest.pending (id int)")
    shipped = db.load_migrations()
    monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, pending])
    with pytest.raises(StoreError, match="9998"):
        await db.migrate(database_url)
    assert 9997 not in _applied(database_url)


@pytest.mark.anyio
async def test_a_migration_that_fails_is_named_and_leaves_nothing_half_done(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration failing midway (a statement the database refuses after one it took) is named
    in the error, file and reason, so that the operator knows which one; its transaction is
    rolled back whole, nothing of it recorded, and the next start applies it once it can."""
    from ingest.errors import StoreError
    from ingest.store import db

    shipped = db.load_migrations()
    broken = db.Migration(
        9990,
        "half_done",
        "CREATE TABLE ingest.half_done (id int);\nINSERT INTO ingest.no_such_table VALUES (1);\n",
    )
    monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, broken])
    with pytest.raises(StoreError) as raised:
        await db.migrate(database_url)
    message = str(raised.value)
    assert "9990_half_done.sql" in message
    assert 'relation "ingest.no_such_table" does not exist' in message
    assert "\n" not in message
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('ingest.half_done')").fetchone() == (None,)
    assert 9990 not in _applied(database_url)
    repaired = db.Migration(9990, "half_done", "CREATE TABLE ingest.half_done (id int);\n")
    monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, repaired])
    assert await db.migrate(database_url) == [9990]
    assert 9990 in _applied(database_url)


@pytest.mark.anyio
async def test_a_statement_timeout_of_the_database_does_not_cut_a_migration_short(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `statement_timeout` or `lock_timeout` the operator set for the service's role or
    database (for its queries) does not apply to migrations: one longer than it (an index
    built, every article rewritten) is applied, and a replica waiting for another's migration
    waits it out, where each failed at every start and the service never came up."""
    from psycopg import sql

    from ingest.store import db

    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for setting in ("statement_timeout", "lock_timeout"):
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = '100ms'").format(
                    sql.Identifier(name), sql.Identifier(setting)
                )
            )
    shipped = db.load_migrations()
    slow = db.Migration(9991, "slow", "SELECT pg_sleep(0.5);\nCREATE TABLE ingest.slow (id int);\n")
    monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, slow])
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SET statement_timeout = 0; SET lock_timeout = 0")
        holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,))
        waiting = asyncio.create_task(db.migrate(database_url))
        for _ in range(200):  # until the migration waits for the lock
            if _lock_waiters(holder) or waiting.done():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # longer than the statement_timeout
        assert not waiting.done()
        holder.execute("SELECT pg_advisory_unlock(%s)", (db.MIGRATION_LOCK_KEY,))
        assert await waiting == [9991]
    assert 9991 in _applied(database_url)


@pytest.mark.anyio
async def test_a_transaction_timeout_of_the_database_does_not_cut_a_migration_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL 17's `transaction_timeout` set for the service's role or database (for its
    queries) does not apply to migrations either, as statement_timeout and lock_timeout do not:
    a migration longer than it is applied, and a replica waiting for another's migration waits
    it out. The timeout ends the session where it runs out: each start failed with
    "terminating connection due to transaction timeout". On the embedded server (18)."""
    import contextlib
    import shutil
    import subprocess
    import tempfile

    from ingest.store import db
    from tests.support.cluster import PrivateCluster

    base = Path(tempfile.mkdtemp(prefix="ingest-migrate-pg-"))
    cluster = PrivateCluster(base / "data")
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE news")
            admin.execute("ALTER DATABASE news SET transaction_timeout = '300ms'")
        dsn = cluster.dsn("news")
        shipped = db.load_migrations()
        slow = db.Migration(9991, "slow", "SELECT pg_sleep(0.6);\nCREATE TABLE ingest.slow ();\n")
        monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, slow])
        with psycopg.connect(dsn, autocommit=True) as holder:
            holder.execute("SET transaction_timeout = 0")
            holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,))
            waiting = asyncio.create_task(db.migrate(dsn))
            for _ in range(200):  # until the migration waits for the lock
                if _lock_waiters(holder) or waiting.done():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.6)  # longer than the transaction_timeout
            assert not waiting.done()
            holder.execute("SELECT pg_advisory_unlock(%s)", (db.MIGRATION_LOCK_KEY,))
            assert await asyncio.wait_for(waiting, timeout=120) == [
                *(m.version for m in shipped),
                9991,
            ]
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            cluster.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.anyio
async def test_a_migration_s_notice_is_logged_whatever_level_the_database_sends(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database or role whose sessions are sent warnings and errors only
    (`client_min_messages = warning`, to quiet its other clients) still has the notices its
    migrations raise logged as `migration_notice`: the role not created, a grant skipped, what
    the operator acts on."""
    from psycopg import sql
    from structlog.testing import capture_logs

    from ingest.store import db

    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET client_min_messages = warning").format(
                sql.Identifier(name)
            )
        )
    shipped = db.load_migrations()
    telling = db.Migration(
        9991, "telling", "DO $$ BEGIN RAISE NOTICE 'news_reader not granted: a reason'; END $$;"
    )
    monkeypatch.setattr(db, "load_migrations", lambda: [*shipped, telling])
    with capture_logs() as logged:
        assert await db.migrate(database_url) == [9991]
    told = [e for e in logged if e["event"] == "migration_notice"]
    assert [(e["version"], e["message"]) for e in told] == [
        (9991, "news_reader not granted: a reason")
    ]


def _lock_waiters(conn: psycopg.Connection[Any]) -> int:
    """Sessions of this database waiting for an advisory lock."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_file_numbered_as_a_migration_but_misnamed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file in sql/ numbered as a migration whose name the runner does not read as one
    (capitals, a hyphen, three digits) would never be applied: it is refused, named, with the
    form a migration's name takes (was: skipped without a word, the schema change missing on
    every database). Files not numbered (the named queries) are no migrations."""
    from ingest.errors import ConfigError
    from ingest.store import db

    for name in ("0001_first.sql", "queries.sql", "__init__.py"):
        (tmp_path / name).write_text("SELECT 1;\n")
    monkeypatch.setattr(db.resources, "files", lambda _package: tmp_path)
    assert [m.version for m in db.load_migrations()] == [1]
    for bad in ("0002_Add-Column.sql", "003_third.sql"):
        (tmp_path / bad).write_text("SELECT 1;\n")
        with pytest.raises(ConfigError, match=re.escape(bad)) as raised:
            db.load_migrations()
        assert "NNNN_lower_case_words.sql" in str(raised.value)
        (tmp_path / bad).unlink()


@pytest.mark.anyio
async def test_a_replica_waiting_for_another_s_migration_says_so(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica starting while another holds the migration lock logs `migration_lock_waiting`
    once before it waits, naming the session holding the lock (`held_by`: its pid, user, state
    and since when; was: the lock's key alone), then migrates when the lock is free (was:
    silent for as long as the other took)."""
    from ingest.store import db

    lines: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            lines.append((event, fields))

    monkeypatch.setattr(db, "log", Recorder())
    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,))
        waiting = asyncio.ensure_future(migrate(empty_database_url))
        for _ in range(100):
            if lines:
                break
            await asyncio.sleep(0.1)
        assert [event for event, _ in lines] == ["migration_lock_waiting"]
        assert lines[0][1]["held_by"].startswith(f"{holder.info.backend_pid} "), lines[0]
        assert not waiting.done()
        holder.execute("SELECT pg_advisory_unlock(%s)", (db.MIGRATION_LOCK_KEY,))
    applied = await asyncio.wait_for(waiting, 60)
    assert applied == [m.version for m in load_migrations()]
    assert [event for event, _ in lines].count("migration_lock_waiting") == 1


@pytest.mark.anyio
async def test_a_database_gone_silent_under_the_migrations_stops_them(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's network drops every packet (no reset, no refusal: a partition, or the
    server stopped without being killed) while a replica's migrations wait for another's: the
    wait, which the server answering other sessions never cuts short (`migration_running`
    says what it waits on), ends once nothing has answered for MIGRATION_SILENCE_SECONDS, a
    `StoreError` saying so (was: `migrate`, and `ingest run`'s start, waited for ever)."""
    from ingest.errors import StoreError
    from ingest.store import db

    monkeypatch.setattr(db, "MIGRATION_PROBE_SECONDS", 0.2)
    monkeypatch.setattr(db, "MIGRATION_SILENCE_SECONDS", 2.0)
    lines: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            lines.append((event, fields))

        error = warning = info

    monkeypatch.setattr(db, "log", Recorder())
    info = conninfo_to_dict(empty_database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    dsn = make_conninfo(empty_database_url, host="127.0.0.1", port=str(relay.port))
    try:
        with psycopg.connect(empty_database_url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,))
            migrating = asyncio.ensure_future(migrate(dsn))
            for _ in range(100):
                if _lock_waiters(holder):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # longer than the silence allowed, the server answering
            waited = not migrating.done()
            relay.silence()
            with pytest.raises(StoreError) as raised:
                await asyncio.wait_for(migrating, 60)
    finally:
        relay.close()
    events = [event for event, _ in lines]
    assert waited, events
    assert "answered nothing for 2 s" in str(raised.value), raised.value
    running = [fields for event, fields in lines if event == "migration_running"]
    assert running, events
    assert running[0]["waiting_on"] == "Lock:advisory"
    assert events[-1] == "migration_silent"


@pytest.mark.anyio
async def test_a_server_of_several_gone_silent_under_the_migrations_stops_them(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a DSN naming two servers (`host=a,b`), the first, the one migrating, goes silent
    before the migrations' watch first asks about them: the watch asks that server, finds it
    silent and stops them (was: its new session gave up on the silent server after its
    connect timeout and reached the second, which answered for the silent one, and the
    migrations waited for ever)."""
    from ingest.errors import StoreError
    from ingest.store import db

    monkeypatch.setattr(db, "MIGRATION_PROBE_SECONDS", 1.0)
    # Over the 10 s a new session waits for a server: time for the second one to answer.
    monkeypatch.setattr(db, "MIGRATION_SILENCE_SECONDS", 12.0)
    info = conninfo_to_dict(empty_database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    dsn = make_conninfo(
        empty_database_url,
        host="127.0.0.1,127.0.0.1",
        port=f"{relay.port},{info.get('port', 5432)}",
    )
    try:
        with psycopg.connect(empty_database_url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (db.MIGRATION_LOCK_KEY,))
            migrating = asyncio.ensure_future(migrate(dsn))
            for _ in range(100):
                if _lock_waiters(holder):
                    break
                await asyncio.sleep(0.1)
            relay.silence()
            try:
                with pytest.raises(StoreError) as raised:
                    await asyncio.wait_for(asyncio.shield(migrating), 60)
            finally:
                migrating.cancel()
                await asyncio.gather(migrating, return_exceptions=True)
    finally:
        relay.close()
    assert "answered nothing for 12 s" in str(raised.value), raised.value


@pytest.fixture
def latin1_database_url(pg_admin: str) -> Iterator[str]:
    """A new database whose encoding is LATIN1 (one made with a legacy template or locale)."""
    import uuid

    name = f"ingest_l_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
            " TEMPLATE template0"
        )
    yield pg_admin.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.anyio
async def test_a_new_database_not_in_utf8_is_refused_before_anything_is_applied(
    latin1_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database in LATIN1 (or SQL_ASCII) cannot hold what the service stores: a headline in
    Cyrillic, a curly quote of a feed's title, refused (LATIN1) or stored as bytes that length,
    case and search misread (SQL_ASCII). A new one is refused by the first `migrate`, naming the
    encoding and the way out, with nothing applied; one that an earlier version migrated still
    starts, with a warning (`database_not_utf8`) at each start."""
    from structlog.testing import capture_logs

    from ingest.errors import StoreError
    from ingest.store import db

    with pytest.raises(StoreError) as raised:
        await db.migrate(latin1_database_url)
    message = str(raised.value)
    assert "LATIN1" in message
    assert "ENCODING 'UTF8'" in message
    with psycopg.connect(latin1_database_url) as conn:
        assert conn.execute("SELECT to_regnamespace('ingest')").fetchone() == (None,)

    monkeypatch.setattr(db, "check_encoding", lambda *_args, **_kwargs: None)
    await db.migrate(latin1_database_url)
    monkeypatch.undo()
    with capture_logs() as logged:
        assert await db.migrate(latin1_database_url) == []
    assert [e["encoding"] for e in logged if e["event"] == "database_not_utf8"] == ["LATIN1"]


@pytest.mark.parametrize(
    ("version_num", "shown"),
    [(130009, "13.9"), (130000, "13"), (120017, "12.17"), (90624, "9.6.24")],
)
def test_a_server_older_than_postgresql_14_is_refused_naming_both_versions(
    version_num: int, shown: str
) -> None:
    """The migrations use SQL-standard function bodies (sql/0004), which PostgreSQL 14 brought:
    an older server is refused with its version and the minimum; 14 and later pass."""
    from ingest.errors import StoreError
    from ingest.store.db import check_server_version

    with pytest.raises(StoreError) as raised:
        check_server_version(version_num)
    message = str(raised.value)
    assert f"PostgreSQL {shown}, older than 14," in message
    assert "DATABASE_URL" in message
    for newer in (140000, 140015, 150020, 180001):
        check_server_version(newer)


@pytest.mark.anyio
async def test_a_server_below_the_minimum_is_refused_before_anything_is_applied(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server the tests run on passes the check; with the minimum set above it, `migrate`
    refuses it by its real version before it applies anything, instead of failing midway (a
    server before 14 stopped at sql/0004 with a syntax error, 0001 to 0003 applied)."""
    from ingest.errors import StoreError
    from ingest.store import db

    with psycopg.connect(empty_database_url) as conn:
        version_num = conn.info.server_version
        version = conn.info.parameter_status("server_version") or ""
    db.check_server_version(version_num)
    monkeypatch.setattr(db, "MIN_SERVER_VERSION", version_num + 1)
    with pytest.raises(StoreError) as raised:
        await db.migrate(empty_database_url)
    assert f"the server is PostgreSQL {version.split()[0]}, older than" in str(raised.value)
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regnamespace('ingest')").fetchone() == (None,)
    monkeypatch.undo()
    assert await db.migrate(empty_database_url) == [m.version for m in load_migrations()]


def test_the_languages_docs_sql_md_counts_are_those_news_search_reads(database_url: str) -> None:
    """docs/sql.md counts the text search configurations `news.search` reads a query in
    ("English, German, French, Spanish, Russian and N more stem words", "each of the M
    configurations"): N + 5 languages and, with `simple`, M configurations, as the function
    the migrations leave has them."""
    text = SQL_DOC.read_text(encoding="utf-8")
    section = text.split("## `news.search(", 1)[1].split("\n## ", 1)[0]
    more = re.search(
        r"English,\s+German,\s+French,\s+Spanish,\s+Russian\s+and\s+(\d+)\s+more", section
    )
    every = re.search(r"each\s+of\s+the\s+(\d+)\s+configurations", section)
    assert more is not None
    assert every is not None
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            # The list of them, since 0047 (any_language_query's before it).
            "SELECT pg_get_functiondef('ingest.search_readings(text)'::regprocedure)"
        ).fetchone()
    assert row is not None
    configurations = set(re.findall(r"'(\w+)'::regconfig", row[0]))
    assert "simple" in configurations
    assert (int(more[1]) + 5, int(every[1])) == (len(configurations) - 1, len(configurations))
