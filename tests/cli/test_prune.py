"""`ingest prune` as a subprocess against a fresh database: --dry-run changes nothing, a prune
removes the old articles in batches and prints one summary line, and exit codes as the other
commands (0, 1 with one line on stderr, 2 for usage); and the service's daily trim of change
rows (INGEST_CHANGE_RETENTION_DAYS)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from tests.cli.test_service import article_page, rss
from tests.support.httpserver import LocalServer, static
from tests.support.processes import ingest_cmd, ingest_env, wait_until

pytestmark = pytest.mark.integration

NOWHERE = "postgresql://postgres@127.0.0.1:1/nothing"

# 10 articles published 1..10 weeks ago, with their URL forms; 5 to 10 weeks old are "old".
ARTICLES = """
INSERT INTO ingest.articles (url, original_url, site, text, published_at, published_source,
    content_hash, text_source, fetched_at)
SELECT 'https://news.example/' || g, 'https://news.example/' || g, 'news.example',
       'Story number ' || g, now() - make_interval(weeks => g), 'feed',
       sha256(g::text::bytea), 'page', now()
FROM generate_series(1, 10) AS g;
INSERT INTO ingest.article_urls (url_hash, article_id) SELECT url_hash, id FROM ingest.articles;
"""


def ingest(dsn: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ingest_cmd(*args), env=ingest_env(dsn, **extra), capture_output=True, text=True, timeout=60
    )


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def articles(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(ARTICLES.encode())
    return database_url


def test_dry_run_counts_and_changes_nothing(articles: str) -> None:
    """--dry-run prints what would go (6 articles older than 4 weeks + 3 days, and their rows)
    and leaves every table as it was."""
    before = [_count(articles, t) for t in ("news.articles", "news.article_changes")]
    done = ingest(articles, "prune", "--older-than", "31d", "--dry-run", "--batch", "4")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"would remove 6 articles published before \S+ in 2 batch\(es\) of 4, with 6 URL "
        r"forms, 0 band rows, 0 earlier versions and 6 change rows, unlink 0 feed entries "
        r"and re-point 0 copies \(dry run: nothing changed\)\n",
        done.stdout,
    ), done.stdout
    assert [_count(articles, t) for t in ("news.articles", "news.article_changes")] == before


def test_prune_removes_old_articles_in_batches(articles: str) -> None:
    """`prune --older-than 2w --batch 3` removes the 9 articles published 2..10 weeks ago in 3
    batches (then finds none left) and prints one line; the newest article and its rows stay."""
    done = ingest(articles, "prune", "--older-than", "13d", "--batch", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"removed 9 articles published before \S+ in 3 batch\(es\), \d+\.\d s; "
        r"0 copies re-pointed",
        lines[0],
    ), lines
    assert _count(articles, "news.articles") == 1
    assert _count(articles, "ingest.article_urls") == 1
    assert _count(articles, "news.article_changes") == 1


def test_a_pruned_article_its_feed_still_lists_is_not_stored_again(
    database_url: str, server: LocalServer
) -> None:
    """A feed listing four entries of January 2025: stored by a poll, pruned, then polled again
    with a fifth entry: the four are known to the feed (unlinked), so only the fifth page is
    fetched and stored; nothing comes back under a new id."""
    server.routes["/feed.xml"] = static(rss(server.base, 4), "application/rss+xml")
    for n in range(4):
        server.routes[f"/story/{n}"] = static(article_page(n))
    assert ingest(database_url, "feeds", "add", server.url("/feed.xml")).returncode == 0
    first = ingest(database_url, "run", "--once")
    assert first.returncode == 0, first.stderr
    assert _count(database_url, "news.articles") == 4

    pruned = ingest(database_url, "prune", "--older-than", "90d")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("removed 4 articles")
    # The feed changes (a fifth entry), so that the next poll reads it again.
    server.routes["/feed.xml"] = static(rss(server.base, 5), "application/rss+xml")
    server.routes["/story/4"] = static(article_page(4))
    again = ingest(database_url, "run", "--once", "--all")
    assert again.returncode == 0, again.stderr

    with psycopg.connect(database_url) as conn:
        urls = [r[0] for r in conn.execute("SELECT url FROM news.articles").fetchall()]
    assert urls == [server.url("/story/4")]
    assert [len(server.hits(f"/story/{n}")) for n in range(5)] == [1, 1, 1, 1, 1]


def test_a_pruned_article_a_new_feed_lists_is_not_stored_again(
    database_url: str, server: LocalServer
) -> None:
    """Four entries stored by a poll of one feed, pruned; then a second feed listing the same
    four links is added and polled: its entries are new to it, but their URLs were pruned, so
    no page is fetched again and nothing is stored."""
    server.routes["/feed.xml"] = static(rss(server.base, 4), "application/rss+xml")
    for n in range(4):
        server.routes[f"/story/{n}"] = static(article_page(n))
    assert ingest(database_url, "feeds", "add", server.url("/feed.xml")).returncode == 0
    assert ingest(database_url, "run", "--once").returncode == 0
    assert _count(database_url, "news.articles") == 4
    pruned = ingest(database_url, "prune", "--older-than", "90d")
    assert pruned.returncode == 0, pruned.stderr

    server.routes["/other.xml"] = static(rss(server.base, 4), "application/rss+xml")
    assert ingest(database_url, "feeds", "add", server.url("/other.xml")).returncode == 0
    again = ingest(database_url, "run", "--once", "--all")
    assert again.returncode == 0, again.stderr

    assert _count(database_url, "news.articles") == 0
    assert [len(server.hits(f"/story/{n}")) for n in range(4)] == [1, 1, 1, 1]


def test_sigterm_keeps_whole_batches_and_a_second_prune_finishes(database_url: str) -> None:
    """SIGTERM in the middle of a prune of 20,000 articles in batches of 10: exit 143 with one
    line, whole batches gone (with their URL forms and change rows), the batch in progress
    rolled back; the same command again removes the rest."""
    many = ARTICLES.replace("make_interval(weeks => g)", "interval '1 year' - g * interval '1 s'")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(many.replace("generate_series(1, 10)", "generate_series(1, 20000)").encode())
    total = _count(database_url, "news.articles")
    assert total == 20_000
    proc = subprocess.Popen(
        ingest_cmd("prune", "--older-than", "30d", "--batch", "10"),
        env=ingest_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: _count(database_url, "news.articles") < total - 100, 60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert out == ""
    assert [ln for ln in err.splitlines() if not ln.startswith("{")] == [
        "ingest: prune interrupted; the batch in progress was rolled back, earlier ones"
        " are removed; run the same command again to continue"
    ]
    left = _count(database_url, "news.articles")
    assert 0 < left < total
    assert left % 10 == 0
    assert _count(database_url, "ingest.article_urls") == left
    assert _count(database_url, "news.article_changes") == left

    again = ingest(database_url, "prune", "--older-than", "30d", "--batch", "500")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"removed {left} articles")
    assert _count(database_url, "news.articles") == 0
    assert _count(database_url, "ingest.article_urls") == 0


@pytest.mark.parametrize(
    "age", ["", "90", "ninety days", "0d", "-3d", "5y", "800000d", "142857142w"]
)
def test_bad_durations_are_usage_errors(database_url: str, age: str) -> None:
    """A limit that is not a positive whole number of s, m, h, d or w exits 2 with usage, as
    does one reaching back before year 1 (the database had refused it, exit 1)."""
    done = ingest(database_url, "prune", "--older-than", age)
    assert done.returncode == 2
    assert "--older-than" in done.stderr


def test_older_than_is_required(database_url: str) -> None:
    done = ingest(database_url, "prune")
    assert done.returncode == 2
    assert "--older-than" in done.stderr


def test_unreachable_database_exits_1_with_one_line() -> None:
    """The database down: exit 1, one line on stderr that names the problem."""
    done = ingest(NOWHERE, "prune", "--older-than", "90d", INGEST_LOG_FORMAT="console")
    assert done.returncode == 1
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ingest:")]
    assert len(errors) == 1
    assert "unreachable" in errors[0]


def test_service_trims_change_rows_older_than_the_retention(articles: str) -> None:
    """`ingest run` with INGEST_CHANGE_RETENTION_DAYS=30 trims, at start-up (then daily), the
    change rows written more than 30 days ago and keeps the others."""
    with psycopg.connect(articles, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.article_changes SET changed_at = now() - interval '45 days' "
            "WHERE seq IN (SELECT seq FROM ingest.article_changes ORDER BY seq LIMIT 4)"
        )
    proc = subprocess.Popen(
        ingest_cmd("run"),
        env=ingest_env(articles, INGEST_CHANGE_RETENTION_DAYS="30", INGEST_TICK_SECONDS="60"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        # The trim's log line comes once both tables are done: wait for it, not for the rows.
        assert wait_until(lambda: any("changes_trimmed" in ln for ln in lines), timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0
    trimmed = json.loads(next(ln for ln in lines if "changes_trimmed" in ln))
    assert (trimmed["changes"], trimmed["history"]) == (4, 0)
    assert _count(articles, "news.article_changes") == 6
    assert _count(articles, "news.articles") == 10


def test_service_keeps_change_rows_forever_with_retention_zero(articles: str) -> None:
    """INGEST_CHANGE_RETENTION_DAYS=0: no trim job, old change rows stay."""
    with psycopg.connect(articles, autocommit=True) as conn:
        conn.execute("UPDATE ingest.article_changes SET changed_at = now() - interval '5 years'")
    proc = subprocess.Popen(
        ingest_cmd("run"),
        env=ingest_env(articles, INGEST_CHANGE_RETENTION_DAYS="0", INGEST_TICK_SECONDS="60"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: "service_started" in (proc.stderr.readline() or "x"), 60)
        time.sleep(1)  # where a trim would run: right after the start
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "changes_trimmed" not in stderr
    assert _count(articles, "news.article_changes") == 10


# Pruned URL forms remembered 2, 100, 400 and 800 days ago (sql/0023).
PRUNED_URLS = """
INSERT INTO ingest.pruned_urls (url_hash, pruned_at)
SELECT sha256(('https://gone.example/' || d)::bytea), now() - make_interval(days => d)
FROM unnest(ARRAY[2, 100, 400, 800]) AS d;
"""


def _pruned_ages(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT extract(day FROM now() - pruned_at)::int FROM ingest.pruned_urls"
            " ORDER BY pruned_at DESC"
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_pruned_urls_are_forgotten_after_a_year(articles: str) -> None:
    """The URL forms of pruned articles are remembered for a year (`--forget-pruned-after`,
    default 365d), not for ever: a prune forgets those pruned longer ago, whether it removes
    articles or not, so the table stays bounded by a year of prunes; --dry-run forgets
    nothing."""
    with psycopg.connect(articles, autocommit=True) as conn:
        conn.execute(PRUNED_URLS.encode())
    dry = ingest(articles, "prune", "--older-than", "13d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _pruned_ages(articles) == [2, 100, 400, 800]
    done = ingest(articles, "prune", "--older-than", "13d")
    assert done.returncode == 0, done.stderr
    # The 9 just pruned, remembered now, and the two of the last year.
    assert _pruned_ages(articles) == [0] * 9 + [2, 100]
    again = ingest(articles, "prune", "--older-than", "13d", "--forget-pruned-after", "30d")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("removed 0 articles")
    assert _pruned_ages(articles) == [0] * 9 + [2]
