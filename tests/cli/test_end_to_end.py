"""End to end: `ingest run --once` against a real local HTTP server and the real PostgreSQL,
with the seed article inside a WordPress-style page and an RSS feed pointing at it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.support.httpserver import LocalServer, Response, static
from tests.support.paths import ROOT

SEEDS = ROOT / "seeds"
ORIGIN = "https://www.theyeshivaworld.com"
ARTICLE_PATH = (
    "/news/israel-news/2410001/netanyahu-ministers-split-over-all-or-nothing-hostage-strategy.html"
)
MISSING_PATH = "/news/israel-news/2409950/hostage-families-rally.html"

pytestmark = pytest.mark.integration


def seed_blocks() -> list[str]:
    text = next(SEEDS.glob("000_*.txt")).read_text(encoding="utf-8")
    return [b.strip() for b in text.split("\n\n") if b.strip()]


def seed_body() -> list[str]:
    """The seed's body paragraphs: after the title and the image caption, before the
    comment-form heading."""
    blocks = seed_blocks()
    return blocks[2 : blocks.index("Leave a Reply")]


# Furniture of the WordPress page that must never reach the article text.
FURNITURE = [
    "Leave a Reply",
    "Popular Posts",
    "Watch: Massive Crowds Gather for Siyum in Jerusalem",
    "NYC Mayor Candidates Clash Over Subway Safety",
    "Heat Wave Warning Issued for Tri-State Area",
    "Related Posts",
    "Hostage Families Rally in Tel Aviv as Talks Stall",
    "Home Page News",
    "Contact Our Newsroom",
    "Skip to content",
    "Share on Facebook",
    "Send via WhatsApp",
    "Email this story",
    "All rights reserved",
    "Privacy Policy",
    "Your email address will not be published",
    "Post Comment",
    "Save my name, email, and website",
    "We use cookies",
    "Get the Daily Briefing",
    "Sign up for our newsletter",
    "Tagged",
]


@dataclass
class Site:
    server: LocalServer
    feed_url: str


@pytest.fixture
def site() -> Iterator[Site]:
    with LocalServer() as srv:
        page = (SEEDS / "wordpress-article.html").read_text(encoding="utf-8")
        feed = (SEEDS / "wordpress-feed.rss").read_text(encoding="utf-8")
        srv.routes["/category/news/israel-news/feed/"] = static(
            feed.replace(ORIGIN, srv.base),
            "application/rss+xml; charset=UTF-8",
            etag='"feed-v1"',
            last_modified="Mon, 11 Aug 2025 14:02:05 GMT",
        )
        srv.routes[ARTICLE_PATH] = static(page.replace(ORIGIN, srv.base), gzip_body=True)
        srv.routes["/robots.txt"] = static("User-agent: *\nDisallow: /wp-admin/\n", "text/plain")
        yield Site(srv, srv.url("/category/news/israel-news/feed/"))


def ingest(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_LOG_FORMAT": "json",
        "INGEST_WORKERS": "2",
        "INGEST_HOST_DELAY": "0",  # politeness: tests/fetch/test_politeness.py
    }
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def articles(database_url: str) -> list[dict[str, object]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM news.articles ORDER BY id").fetchall()


def feeds(database_url: str) -> list[dict[str, object]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM news.feeds ORDER BY id").fetchall()


def test_seed_article_is_ingested_clean(database_url: str, site: Site) -> None:
    """The seed's every body paragraph lands in news.articles.text and no page furniture does."""
    assert ingest(database_url, "feeds", "add", site.feed_url).returncode == 0
    run = ingest(database_url, "run", "--once")
    assert run.returncode == 0, run.stderr

    rows = {r["url"]: r for r in articles(database_url)}
    article = rows[site.server.url(ARTICLE_PATH)]
    text = str(article["text"])
    for paragraph in seed_body():
        assert paragraph in text, f"missing paragraph: {paragraph[:60]}"
    for furniture in FURNITURE:
        assert furniture not in text, f"boilerplate leaked: {furniture}"
    caption = seed_blocks()[1]
    assert caption not in text
    # Paragraphs are kept apart by blank lines, in the seed's order.
    assert text.split("\n\n") == seed_body()

    assert article["title"] == seed_blocks()[0]
    assert article["author"] == "YWN Editorial Staff"
    assert article["published_at"].isoformat() == "2025-08-11T13:14:27+00:00"
    assert article["published_source"] == "feed"
    assert article["language"] == "en"
    assert article["text_source"] == "page"
    assert article["extraction_error"] is None
    assert article["duplicate_of"] is None
    assert "utm_" in str(article["original_url"])
    assert "fbclid" in str(article["original_url"])


def test_unreachable_page_falls_back_to_feed_text(database_url: str, site: Site) -> None:
    """An entry whose page 404s is stored from the feed's summary, and the row says so."""
    ingest(database_url, "feeds", "add", site.feed_url)
    run = ingest(database_url, "run", "--once")
    assert run.returncode == 0
    stored = len(articles(database_url))
    assert run.stdout.strip().endswith(
        f"articles: {stored} new (0 from full-text feeds without a request), 0 updated, "
        "0 skipped, "
        "1 stored from feed text for want of a usable page"
    )
    row = {r["url"]: r for r in articles(database_url)}[site.server.url(MISSING_PATH)]
    assert row["text_source"] == "feed"
    assert "404" in str(row["extraction_error"])
    assert str(row["text"]).startswith("Thousands of people gathered in Tel Aviv")


def test_second_run_is_conditional_and_adds_nothing(database_url: str, site: Site) -> None:
    """Run twice: the second sends If-None-Match/If-Modified-Since, gets 304, stores nothing."""
    ingest(database_url, "feeds", "add", site.feed_url)
    assert ingest(database_url, "run", "--once").returncode == 0
    first = articles(database_url)
    page_hits = len(site.server.hits(ARTICLE_PATH))

    assert ingest(database_url, "run", "--once", "--all").returncode == 0
    assert articles(database_url) == first
    assert len(site.server.hits(ARTICLE_PATH)) == page_hits
    feed_requests = site.server.hits("/category/news/israel-news/feed/")
    assert feed_requests[-1].headers.get("if-none-match") == '"feed-v1"'
    assert feed_requests[-1].headers.get("if-modified-since") == "Mon, 11 Aug 2025 14:02:05 GMT"
    assert feeds(database_url)[0]["last_status"] == "not_modified"


def test_changed_feed_does_not_refetch_known_entries(database_url: str, site: Site) -> None:
    """A feed whose body changed (new validators) but lists the same entries re-fetches no page
    and stores no row twice."""
    ingest(database_url, "feeds", "add", site.feed_url)
    assert ingest(database_url, "run", "--once").returncode == 0
    first = articles(database_url)
    hits = len(site.server.hits(ARTICLE_PATH))
    body = (
        (SEEDS / "wordpress-feed.rss").read_text(encoding="utf-8").replace(ORIGIN, site.server.base)
    )
    site.server.routes["/category/news/israel-news/feed/"] = Response(
        200,
        body.replace("</channel>", "<!-- rebuilt --></channel>").encode(),
        {"Content-Type": "application/rss+xml", "ETag": '"feed-v2"'},
    )
    assert ingest(database_url, "run", "--once", "--all").returncode == 0
    assert articles(database_url) == first
    assert len(site.server.hits(ARTICLE_PATH)) == hits
    assert feeds(database_url)[0]["last_status"] == "ok"


def test_one_url_per_article_across_feeds(database_url: str, site: Site) -> None:
    """The same story reached from two feeds, with different tracking parameters, is one row."""
    other = (
        (SEEDS / "wordpress-feed.rss").read_text(encoding="utf-8").replace(ORIGIN, site.server.base)
    )
    other = other.replace("utm_campaign=netanyahu-ministers-split", "utm_campaign=other&gclid=XYZ")
    other = other.replace("?p=2410001", "?p=2410001&amp;feed=2")
    site.server.routes["/feed/"] = static(other, "application/rss+xml")
    ingest(database_url, "feeds", "add", site.feed_url, site.server.url("/feed/"))
    assert ingest(database_url, "run", "--once").returncode == 0
    urls = [r["url"] for r in articles(database_url)]
    assert len(urls) == len(set(urls)) == 2
    assert len(site.server.hits(ARTICLE_PATH)) == 1


def test_broken_feeds_are_recorded_and_the_run_goes_on(database_url: str, site: Site) -> None:
    """A 500, a non-feed and a refused connection mark their feeds failing; the good feed is
    still ingested and the exit status is 0."""
    site.server.routes["/broken.xml"] = Response(500, b"oops", {"Content-Type": "text/plain"})
    site.server.routes["/html"] = static("<html><body><p>Not a feed</p></body></html>")
    dead = "http://127.0.0.1:9/feed.xml"
    ingest(
        database_url,
        "feeds",
        "add",
        site.server.url("/broken.xml"),
        site.server.url("/html"),
        dead,
        site.feed_url,
    )
    run = ingest(database_url, "run", "--once")
    assert run.returncode == 0, run.stderr
    state = {f["url"]: f for f in feeds(database_url)}
    for url in (site.server.url("/broken.xml"), site.server.url("/html"), dead):
        assert state[url]["last_status"] == "error"
        assert state[url]["consecutive_failures"] == 1
        assert state[url]["last_error"]
        assert state[url]["next_fetch_at"] > state[url]["last_fetched_at"]
    assert "500" in str(state[site.server.url("/broken.xml")]["last_error"])
    assert state[site.feed_url]["last_status"] == "ok"
    assert len(articles(database_url)) == 2


def test_unreachable_database_is_one_line_and_nonzero() -> None:
    """`ingest run --once` with a database that does not answer exits 1 with one stderr line."""
    run = ingest("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2", "run", "--once")
    assert run.returncode == 1
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("ingest:")]
    assert len(lines) == 1
    assert "database unreachable" in lines[0]


SESSION_DEFAULTS = {
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "iso_8601",
    "TimeZone": "Asia/Kathmandu",
    "client_encoding": "LATIN1",
}
"""Session settings a database or role may default to for its other clients' sake."""


def test_a_database_whose_sessions_default_to_other_settings(database_url: str, site: Site) -> None:
    """A database set to show dates as `07/12/2026 14:21:48 UTC` and intervals as `PT1H`, and
    to talk to its clients in Latin-1 (for its other clients), stores and reads the same as one
    with PostgreSQL's defaults: every command exits 0 and what news.articles and news.feeds
    hold is unchanged, the article's curly quotes included."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name, value in SESSION_DEFAULTS.items():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(conn.info.dbname), sql.Identifier(name), sql.Literal(value)
                )
            )
    assert ingest(database_url, "feeds", "add", site.feed_url).returncode == 0
    for args in (
        ["run", "--once"],
        ["run", "--once", "--all"],
        ["feeds", "list"],
        ["feeds", "show", site.feed_url],
        ["articles", "--since", "3650d"],
        ["prune", "--older-than", "36500d", "--dry-run"],
    ):
        done = ingest(database_url, *args)
        assert done.returncode == 0, f"{args}: {done.stderr}"
    iso = psycopg.conninfo.make_conninfo(
        database_url,
        options="-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC",
        client_encoding="UTF8",
    )
    rows = {r["url"]: r for r in articles(iso)}
    article = rows[site.server.url(ARTICLE_PATH)]
    assert article["published_at"].isoformat() == "2025-08-11T13:14:27+00:00"
    assert article["text_source"] == "page"
    assert "\u201d" in str(article["text"])  # a curly quote: no Latin-1 character
    (feed,) = feeds(iso)
    assert feed["last_status"] == "not_modified"
    assert feed["publish_interval"] > timedelta(days=1)  # the feed is quiet since August 2025
