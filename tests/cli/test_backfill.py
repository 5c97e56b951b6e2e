"""`ingest backfill` and site discovery against a local site and the real PostgreSQL: a home
page linking a WordPress feed (?paged=N) and an RFC 5005 paged Atom feed, robots.txt naming a
sitemap index of three sitemaps (one gzipped, one a news sitemap), date ranges, --limit,
--dry-run, a run killed mid-way and resumed, runs repeated, the service and a backfill sharing
a database, and `ingest feeds add` finding feeds (and news sitemaps) for a home page."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.article import OTHER_PAGE
from ingest.backfill import (
    RateLimiter,
    classify,
    entry_from_json,
    entry_to_json,
    parse_date_bound,
    read_url_list,
)
from ingest.backfill.options import (
    MAX_LISTED_URLS,
    MAX_URL_LINE_BYTES,
    Horizon,
    TooManyUrls,
    runs_back,
)
from ingest.types import ParsedEntry
from tests.support.httpserver import LocalServer, Request, Response, Route, static
from tests.support.paths import ROOT
from tests.support.pipelines import CONSENT_WALL
from tests.support.processes import wait_until
from tests.support.relay import SilentRelay
from tests.support.virtual_time import VirtualTime

NOW = datetime.now(UTC).replace(microsecond=0)

pytestmark = pytest.mark.integration

# --- the local site ---------------------------------------------------------------------------
#
# 30 articles, /a/0 (newest, published today at NOW) to /a/29 (29 days old), one a day:
#   /a/0-5    WordPress feed /feed/ (?paged=2, ?paged=3; ?paged=4 is a 404), 2 a page
#   /a/6-11   RFC 5005 paged Atom feed /paged.atom (rel="next" across 3 pages), 2 a page
#   /a/12-17  /sitemap-posts.xml    (lastmod)
#   /a/18-23  /sitemap-old.xml.gz   (gzipped, lastmod)
#   /a/24-29  /news-sitemap.xml     (news:publication_date, news:title; no lastmod)
# robots.txt names /sitemap_index.xml, which lists the three sitemaps.

ARTICLES = 30
WP = range(0, 6)
ATOM = range(6, 12)
POSTS = range(12, 18)
OLD = range(18, 24)
NEWS = range(24, 30)
TOPICS = [
    "harbour ferry terminal",
    "city council budget",
    "river flood defences",
    "rail line upgrade",
    "school meals programme",
    "museum reopening",
]


def published(n: int) -> datetime:
    return NOW - timedelta(days=n, hours=1)


def article_html(n: int) -> str:
    topic = TOPICS[n % len(TOPICS)]
    sentences = " ".join(
        f"Report {n} on the {topic}: officials said on day {n} that item {k} of the plan "
        f"would change, and residents of district {n * 7 + k} asked for a public meeting."
        for k in range(6)
    )
    when = published(n).isoformat()
    return (
        f"<html><head><title>Story {n}</title>"
        f"<meta property='article:published_time' content='{when}'></head>"
        "<body><nav>Home | News</nav>"
        f"<article><h1>Story {n}</h1><p>{sentences}</p><p>Story {n} continues. {sentences}</p>"
        "</article><footer>All rights reserved</footer></body></html>"
    )


def rss_item(base: str, n: int) -> str:
    return (
        f"<item><title>Story {n}</title><link>{base}/a/{n}</link>"
        f"<guid isPermaLink='false'>story-{n}</guid>"
        f"<pubDate>{format_datetime(published(n))}</pubDate>"
        f"<description>Feed summary of story {n}.</description></item>"
    )


def wordpress_feed(base: str, numbers: range) -> str:
    items = "".join(rss_item(base, n) for n in numbers)
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Local News</title>"
        f"<link>{base}/</link><generator>https://wordpress.org/?v=6.5</generator>"
        f"{items}</channel></rss>"
    )


def atom_page(base: str, page: int) -> str:
    numbers = range(6 + (page - 1) * 2, 6 + page * 2)
    nxt = f"<link rel='next' href='{base}/paged.atom?page={page + 1}'/>" if page < 3 else ""
    entries = "".join(
        f"<entry><title>Story {n}</title><id>urn:story:{n}</id>"
        f"<link rel='alternate' href='{base}/a/{n}'/>"
        f"<updated>{published(n).isoformat()}</updated>"
        f"<summary>Atom summary of story {n}.</summary></entry>"
        for n in numbers
    )
    return (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>Paged</title>"
        f"<id>urn:paged</id><updated>{NOW.isoformat()}</updated>"
        f"<link rel='self' href='{base}/paged.atom'/>{nxt}{entries}</feed>"
    )


SITEMAP_NS = "xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'"


def urlset(base: str, numbers: range, *, news: bool = False) -> str:
    ns = SITEMAP_NS
    ns += " xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'" if news else ""
    urls = []
    for n in numbers:
        if news:
            inner = (
                "<news:news><news:publication><news:name>Local</news:name>"
                "<news:language>en</news:language></news:publication>"
                f"<news:publication_date>{published(n).isoformat()}</news:publication_date>"
                f"<news:title>News story {n}</news:title></news:news>"
            )
        else:
            inner = f"<lastmod>{published(n).isoformat()}</lastmod>"
        urls.append(f"<url><loc>{base}/a/{n}</loc>{inner}</url>")
    return f"<?xml version='1.0' encoding='UTF-8'?><urlset {ns}>{''.join(urls)}</urlset>"


def sitemap_index(base: str) -> str:
    refs = "".join(
        f"<sitemap><loc>{base}{path}</loc></sitemap>"
        for path in ("/sitemap-posts.xml", "/sitemap-old.xml.gz", "/news-sitemap.xml")
    )
    return (
        "<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        f"{refs}</sitemapindex>"
    )


def dated_index(base: str, refs: dict[str, str | None]) -> str:
    """A sitemap index of `refs`: each sitemap's path and its lastmod as written, or none."""
    body = "".join(
        f"<sitemap><loc>{base}{path}</loc>"
        + (f"<lastmod>{lastmod}</lastmod>" if lastmod else "")
        + "</sitemap>"
        for path, lastmod in refs.items()
    )
    return f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>{body}</sitemapindex>"


def one_url_sitemap(base: str, n: int, when: datetime) -> str:
    """A URL set of /a/n alone, last modified `when`."""
    return (
        f"<?xml version='1.0'?><urlset {SITEMAP_NS}><url><loc>{base}/a/{n}</loc>"
        f"<lastmod>{when.isoformat()}</lastmod></url></urlset>"
    )


def home_html(*links: tuple[str, str]) -> str:
    tags = "".join(
        f"<link rel='alternate' type='{mime}' title='Feed' href='{href}'>" for mime, href in links
    )
    comments = "<link rel='alternate' type='application/rss+xml' title='Comments Feed' "
    comments += "href='/comments/feed/'>"
    head = f"<head><title>Local</title>{tags}{comments}</head>"
    return f"<!DOCTYPE html><html>{head}<body>Hi</body></html>"


@dataclass
class Site:
    server: LocalServer
    gate: threading.Event = field(default_factory=threading.Event)
    """Pages listed in `stall` wait for this before answering."""
    stall: set[int] = field(default_factory=set)

    @property
    def base(self) -> str:
        return self.server.base

    def url(self, path: str) -> str:
        return self.server.url(path)

    def page_hits(self) -> Counter[int]:
        return Counter(
            int(r.path.removeprefix("/a/"))
            for r in self.server.requests
            if r.path.startswith("/a/")
        )


def build_site(srv: LocalServer) -> Site:
    site = Site(srv)
    base = srv.base
    routes = srv.routes
    routes["/"] = static(
        home_html(("application/rss+xml", "/feed/"), ("application/atom+xml", "/paged.atom"))
    )
    routes["/robots.txt"] = static(
        f"User-agent: *\nAllow: /\n\nSitemap: {base}/sitemap_index.xml\n", "text/plain"
    )
    routes["/feed/"] = static(wordpress_feed(base, range(0, 2)), "application/rss+xml")
    routes["/feed/?paged=2"] = static(wordpress_feed(base, range(2, 4)), "application/rss+xml")
    routes["/feed/?paged=3"] = static(wordpress_feed(base, range(4, 6)), "application/rss+xml")
    routes["/paged.atom"] = static(atom_page(base, 1), "application/atom+xml")
    routes["/paged.atom?page=2"] = static(atom_page(base, 2), "application/atom+xml")
    routes["/paged.atom?page=3"] = static(atom_page(base, 3), "application/atom+xml")
    routes["/sitemap_index.xml"] = static(sitemap_index(base), "application/xml")
    routes["/sitemap-posts.xml"] = static(urlset(base, POSTS), "application/xml")
    routes["/sitemap-old.xml.gz"] = Response(
        200, gzip.compress(urlset(base, OLD).encode()), {"Content-Type": "application/x-gzip"}
    )
    routes["/news-sitemap.xml"] = static(urlset(base, NEWS, news=True), "application/xml")
    for n in range(ARTICLES):
        routes[f"/a/{n}"] = _page_route(site, n)
    return site


def _page_route(site: Site, n: int) -> Callable[[Request], Response]:
    body = article_html(n).encode()

    def handle(req: Request) -> Response:
        if n in site.stall:
            site.gate.wait(timeout=60)
        return Response(200, body, {"Content-Type": "text/html; charset=utf-8"})

    return handle


@pytest.fixture
def site() -> Iterator[Site]:
    with LocalServer() as srv:
        s = build_site(srv)
        yield s
        s.gate.set()


# --- helpers ------------------------------------------------------------------------------------


def env(database_url: str, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    out.update(
        DATABASE_URL=database_url,
        INGEST_ALLOW_PRIVATE_NETWORKS="true",
        INGEST_HOST_DELAY="0",
        INGEST_LOG_FORMAT="json",
        INGEST_WORKERS="2",
    )
    out.update(extra)
    return out


def ingest(
    database_url: str, *args: str, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`ingest ARGS` to completion, `stdin` on its standard input; `extra`: environment."""
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        input=stdin,
        env=env(database_url, **extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def backfill(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = ingest(database_url, "backfill", "--rate", "0", *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def stored(database_url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM news.articles ORDER BY id").fetchall()
    return {str(r["url"]): r for r in rows}


def numbers(site: Site, urls: Any) -> set[int]:
    prefix = site.url("/a/")
    return {int(u.removeprefix(prefix)) for u in urls if u.startswith(prefix)}


def events(stderr: str, name: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                out.append(event)
    return out


def scalar(database_url: str, sql: str) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


# --- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2024-05-01", False, datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-31", True, datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-05-01T10:00:00", False, datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00+02:00", False, datetime(2024, 5, 1, 8, tzinfo=UTC)),
        ("2024-05-01T10:00:00Z", True, datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC)),
        ("20240531", True, datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-W22-5", True, datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-W22", False, datetime(2024, 5, 27, tzinfo=UTC)),
        ("2024-W22", True, datetime(2024, 6, 3, tzinfo=UTC)),
        ("2024W22", True, datetime(2024, 6, 3, tzinfo=UTC)),
        ("2020-W53", True, datetime(2021, 1, 4, tzinfo=UTC)),
        ("2024-05", False, datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05", True, datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-12", True, datetime(2025, 1, 1, tzinfo=UTC)),
        ("2024-02", True, datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024", False, datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024", True, datetime(2025, 1, 1, tzinfo=UTC)),
        ("9999-12", True, datetime.max.replace(tzinfo=UTC)),
        ("9999-W52", True, datetime.max.replace(tzinfo=UTC)),
        ("9999", True, datetime.max.replace(tzinfo=UTC)),
        ("20240501", False, datetime(2024, 5, 1, tzinfo=UTC)),
        ("9999-12-31", True, datetime.max.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999+00:00", True, datetime.max.replace(tzinfo=UTC)),
        ("2024-153", False, datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-153", True, datetime(2024, 6, 2, tzinfo=UTC)),
        ("2024153", True, datetime(2024, 6, 2, tzinfo=UTC)),
        ("2024-366", True, datetime(2025, 1, 1, tzinfo=UTC)),
        ("2023-001", False, datetime(2023, 1, 1, tzinfo=UTC)),
        ("9999-365", True, datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_date_bounds(text: str, end: bool, expected: datetime) -> None:
    """--since/--until: a date is a whole day (until inclusive), in any ISO 8601 form, and an
    ISO week (`2024-W22`), a month (`2024-05`) or a year given alone is the whole of it; a
    naive datetime is UTC; an --until at the end of the calendar is its last instant."""
    assert parse_date_bound(text, end=end) == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2024-13-01",
        "01/05/2024",
        "",
        "0001-01-01T00:00:00+01:00",
        "2024-13",
        "2024-W54",
        "202405",
        "24",
        "2023-366",
        "2024-000",
        "2024-367",
    ],
)
def test_bad_date_bounds(text: str) -> None:
    """Anything but a date or an ISO datetime is refused."""
    with pytest.raises(ValueError, match=r"."):
        parse_date_bound(text)


D = datetime(2024, 5, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "dated_only", "expected"),
    [
        (D, False, ("pending", None)),
        (D - timedelta(days=30), False, ("skipped", "range")),
        (D + timedelta(days=30), False, ("skipped", "range")),
        (datetime(2024, 6, 1, tzinfo=UTC), False, ("skipped", "range")),  # until is exclusive
        (datetime(2024, 5, 1, tzinfo=UTC), False, ("pending", None)),  # since is inclusive
        (None, False, ("pending", None)),
        (None, True, ("skipped", "undated")),
    ],
)
def test_classify(when: datetime | None, dated_only: bool, expected: tuple[str, Any]) -> None:
    """Dated URLs outside [since, until) are skipped; undated ones only with --dated-only."""
    since, until = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
    assert classify(when, since=since, until=until, dated_only=dated_only) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2024, 5, 10, tzinfo=UTC), "pending"),  # a date alone: any moment of the day
        (datetime(2024, 5, 9, tzinfo=UTC), "skipped"),
        (datetime(2024, 5, 10, 11, 59, tzinfo=UTC), "skipped"),  # a moment is itself
        (datetime(2024, 5, 10, 12, tzinfo=UTC), "pending"),
    ],
)
def test_a_date_given_alone_is_in_range_where_any_moment_of_its_day_is(
    when: datetime, expected: str
) -> None:
    """`--since 2024-05-10T12:00` keeps a sitemap URL dated `2024-05-10` (read as midnight
    UTC): it may be from the afternoon."""
    since = datetime(2024, 5, 10, 12, tzinfo=UTC)
    assert classify(when, since=since, until=None, dated_only=False)[0] == expected
    horizon = Horizon(since, None)
    assert horizon.passed([when]) is (expected == "skipped")


@pytest.mark.parametrize(
    ("dates", "before", "expected"),
    [
        ([published(3), published(4)], None, True),  # newest first
        ([published(4), published(3)], None, False),  # oldest first: read on
        ([published(4)], None, False),  # one entry: the next page tells
        ([published(4)], published(3), True),
        ([published(3)], published(4), False),
        ([None, published(3)], published(2), True),
        ([None], published(2), False),
        ([], None, False),
    ],
)
def test_runs_back(dates: list[datetime | None], before: datetime | None, expected: bool) -> None:
    assert runs_back(dates, before) is expected


def test_url_list() -> None:
    """--urls: one URL a line, comments and blanks ignored, canonical and without repeats."""
    data = b"\xef\xbb\xbf# mine\nhttps://Example.com/a?utm_source=x\n\nhttps://example.com/a\nftp://x/y\n"
    assert read_url_list(data) == (["https://example.com/a"], 1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"https://example.com/a?q=a\x00b\r\n", (["https://example.com/a?q=ab"], 0)),
        (b"https://example.com/a\x7f\xc2\x85b\n", (["https://example.com/ab"], 0)),
        (b"https://example.com/caf\xe9\n", (["https://example.com/caf%E9"], 0)),
        (b"https://example.com/caf\xc3\xa9\n", (["https://example.com/caf%C3%A9"], 0)),
        (b"/a/relative\njavascript:alert(1)\nmailto:x@example.com\n", ([], 3)),
    ],
)
def test_url_list_lines_as_urls(data: bytes, expected: tuple[list[str], int]) -> None:
    """--urls: control characters are dropped from a line, as from a text sitemap's (a NUL
    would make the database refuse the whole list), and bytes that are not UTF-8 are the
    bytes of the URL, percent-escaped (not U+FFFD, which names another page)."""
    assert read_url_list(data) == expected


class _EndlessList(io.RawIOBase):
    """A stream of distinct URL lines that never ends (an endless pipe on stdin)."""

    def __init__(self) -> None:
        self.lines = 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.pending:
            self.pending = f"https://example.com/a/{self.lines}\n".encode()
            self.lines += 1
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def test_url_list_is_read_as_a_stream_up_to_its_cap() -> None:
    """--urls is read line by line, not whole into memory: an endless list stops being read
    at the first URL beyond the cap, which is an error naming it."""
    stream = _EndlessList()
    with pytest.raises(TooManyUrls, match="more than 50 URLs"):
        read_url_list(io.BufferedReader(stream), max_urls=50)
    assert stream.lines <= 51 + 8192 // 20


def test_url_list_line_longer_than_a_url_is_skipped_unread() -> None:
    """A line longer than any URL (a binary file, a file without line breaks) is counted as
    not a URL and skipped without being held whole; the lines after it are read."""
    data = b"https://example.com/" + b"a" * (MAX_URL_LINE_BYTES * 3) + b"\nhttps://example.com/b\n"
    assert read_url_list(io.BufferedReader(io.BytesIO(data))) == (["https://example.com/b"], 1)
    assert read_url_list(data) == (["https://example.com/b"], 1)


def test_url_list_beyond_the_cap_is_a_usage_error(tmp_path: Path) -> None:
    """A list of more URLs than one backfill takes: exit 2, one line, before the database."""
    urls = tmp_path / "urls.txt"
    with urls.open("w") as out:
        for n in range(MAX_LISTED_URLS + 1):
            out.write(f"https://example.com/a/{n}\n")
    proc = ingest("postgresql://postgres@127.0.0.1:1/nothing", "backfill", "--urls", str(urls))
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("usage: ingest backfill ")
    assert lines[-1:] == [
        f"ingest backfill: error: {urls} lists more than {MAX_LISTED_URLS} URLs, the most one "
        "backfill takes: split it into several lists"
    ]


def test_entry_round_trip() -> None:
    """A queued entry survives the JSON checkpoint unchanged."""
    entry = ParsedEntry(
        guid="g", link="https://x.example/a", title="T", published_at=D, summary="S"
    )
    assert entry_from_json(json.loads(json.dumps(entry_to_json(entry))), "https://x/") == entry


def test_rate_limiter_spaces_requests() -> None:
    """--rate N: N acquisitions a second at most, evenly spaced (on virtual time)."""
    clock = VirtualTime()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def one() -> None:
        await limiter.wait()
        starts.append(clock())

    asyncio.run(clock.run(*(one() for _ in range(11))))
    assert sorted(starts) == pytest.approx([n * 0.05 for n in range(11)])


# --- backfills ------------------------------------------------------------------------------------


def test_site_backfill_walks_every_source(database_url: str, site: Site) -> None:
    """A home page: its feeds (WordPress ?paged=N until the 404, RFC 5005 rel=next across 3
    pages; not the comments feed) and robots.txt's sitemap index with its three sitemaps (one
    gzipped, one a news sitemap) give all 30 articles, each page fetched once; the summary
    says so and the log ends with backfill_done."""
    proc = backfill(database_url, site.url("/"))
    rows = stored(database_url)
    assert numbers(site, rows) == set(range(ARTICLES))
    assert all(n == 1 for n in site.page_hits().values())
    for path in ("/feed/", "/feed/?paged=2", "/feed/?paged=3", "/feed/?paged=4", "/paged.atom"):
        assert len(site.server.hits(path)) == 1, path
    for path in ("/paged.atom?page=2", "/paged.atom?page=3", "/sitemap-old.xml.gz"):
        assert len(site.server.hits(path)) == 1, path
    assert site.server.hits("/comments/feed/") == []
    news = rows[site.url("/a/25")]
    assert news["title"] == "News story 25"
    assert news["published_source"] == "feed"
    assert news["published_at"] == published(25)
    assert rows[site.url("/a/7")]["published_at"] == published(7)
    assert rows[site.url("/a/14")]["published_source"] in ("page", "first_seen")
    assert all(r["text_source"] == "page" for r in rows.values())
    assert all(r["feed_id"] is None for r in rows.values())
    assert "30 stored" in proc.stdout
    done = events(proc.stderr, "backfill_done")
    assert len(done) == 1
    assert done[0]["stored"] == 30
    assert done[0]["finished"] is True
    assert events(proc.stderr, "backfill_progress")


def test_date_range_excludes_entries(database_url: str, site: Site) -> None:
    """--since/--until keep the URLs dated inside the range (feed dates, news publication
    dates, lastmod), skip the others without fetching them, and stop walking a paged feed
    once its pages are older than --since."""
    since = (NOW - timedelta(days=20)).date().isoformat()
    until = (NOW - timedelta(days=3)).date().isoformat()
    proc = backfill(database_url, site.url("/"), "--since", since, "--until", until)
    # published(n) = NOW - n days - 1 h: day n's date is (NOW - n days - 1h).date()
    expected = {n for n in range(ARTICLES) if since <= published(n).date().isoformat() <= until}
    assert 5 < len(expected) < 25
    assert numbers(site, stored(database_url)) == expected
    assert set(site.page_hits()) == expected
    assert "out of range" in proc.stdout
    # The WordPress history ends at the page older than --since? All its entries are recent,
    # so it is walked to the end; nothing before --since is fetched either way.
    assert not any(n > 20 for n in site.page_hits())


@pytest.mark.parametrize("unit", ["week", "month"])
def test_a_week_or_a_month_given_alone_is_the_whole_of_it(
    database_url: str, site: Site, unit: str
) -> None:
    """`--since 2024-W22 --until 2024-W22` (an ISO week) keeps the URLs dated in any day of
    that week, and `--since 2024-05 --until 2024-05` those of the whole month, as a date alone
    is its whole day."""
    day = published(14).date()
    if unit == "week":
        year, week, _ = day.isocalendar()
        bound = f"{year}-W{week:02d}"

        def inside(n: int) -> bool:
            return published(n).isocalendar()[:2] == (year, week)
    else:
        bound = f"{day.year}-{day.month:02d}"

        def inside(n: int) -> bool:
            return (published(n).year, published(n).month) == (day.year, day.month)

    backfill(database_url, site.url("/"), "--since", bound, "--until", bound)
    expected = {n for n in range(ARTICLES) if inside(n)}
    assert len(expected) >= 7
    assert numbers(site, stored(database_url)) == expected


def test_history_walk_stops_before_since(database_url: str, site: Site) -> None:
    """A paged feed's older pages are not fetched once a page is entirely before --since."""
    since = (NOW - timedelta(hours=36)).isoformat()
    backfill(database_url, site.url("/feed/"), "--since", since)
    assert numbers(site, stored(database_url)) == {0, 1}
    assert len(site.server.hits("/feed/?paged=2")) == 1
    assert site.server.hits("/feed/?paged=3") == []


def test_sitemaps_last_modified_before_since_are_counted_in_the_summary(
    database_url: str,
) -> None:
    """An index's sitemaps last modified before --since are not fetched, and the summary's
    sources line counts them, in every invocation of the run (each once, a sitemap listed
    twice included), as it counts those on other sites or beyond --max-sitemaps."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        refs = {f"/s/{n}.xml": published(10 * n).isoformat() for n in range(5)}
        index = dated_index(srv.base, refs)
        twice = f"<sitemap><loc>{srv.url('/s/4.xml')}</loc></sitemap></sitemapindex>"
        srv.routes["/index.xml"] = static(index.replace("</sitemapindex>", twice))
        for n in range(5):
            srv.routes[f"/s/{n}.xml"] = static(urlset(srv.base, range(10 * n, 10 * n + 1)))
            srv.routes[f"/a/{10 * n}"] = static(article_html(10 * n))
        since = (NOW - timedelta(days=15)).isoformat()
        args = (srv.url("/index.xml"), "--since", since)
        runs = [backfill(database_url, *args), backfill(database_url, *args)]
        walked = sorted(r.path for r in srv.requests if r.path.startswith("/s/"))
    assert walked == ["/s/0.xml", "/s/1.xml"]
    for proc in runs:
        (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
        assert sources == (
            "  sources: 3 (0 feed pages, 3 sitemaps), 0 failed; "
            "3 sitemaps last modified before --since skipped"
        ), proc.stdout


@pytest.mark.parametrize("per_page", [1, 2])
def test_paged_feed_listing_its_history_oldest_first_is_walked_to_the_entries_since(
    database_url: str, site: Site, per_page: int
) -> None:
    """A WordPress feed ordered oldest first (`?order=ASC`: its first page lists the oldest
    entries, each page the next newer ones, oldest first) and --since 36 hours ago: the walk
    goes on past the pages entirely before --since, to the newest entries at its end."""
    feed = "/feed/"
    oldest_first = list(reversed(WP))
    pages = [oldest_first[i : i + per_page] for i in range(0, len(WP), per_page)]
    for page, entries in enumerate(pages, start=1):
        path = feed if page == 1 else f"{feed}?paged={page}"
        items = "".join(rss_item(site.base, n) for n in entries)
        body = wordpress_feed(site.base, range(0)).replace("</channel>", f"{items}</channel>")
        site.server.routes[path] = static(body, "application/rss+xml")
    since = (NOW - timedelta(hours=36)).isoformat()
    backfill(database_url, site.url(feed), "--since", since)
    assert numbers(site, stored(database_url)) == {0, 1}
    assert len(site.server.hits(f"{feed}?paged={len(pages) + 1}")) == 1  # the 404 at its end


@pytest.mark.parametrize("scheme", ["", "feed://", "feed:"])
def test_feed_target_walks_rfc5005_history(database_url: str, site: Site, scheme: str) -> None:
    """A feed URL as TARGET: its rel="next" pages are walked; articles keep the feed's dates.
    One given in the `feed:` URI scheme (`feed://host/rss`, `feed:http://host/rss`, as a
    browser's address bar shows a feed link so written) is the http(s) URL it stands for
    (`normalize.without_feed_scheme`, as in a page or an OPML file: it was a usage error,
    "not an http(s) URL")."""
    url = site.url("/paged.atom")
    backfill(
        database_url, scheme + url.removeprefix("http://") if scheme == "feed://" else scheme + url
    )
    assert numbers(site, stored(database_url)) == set(ATOM)
    assert site.server.hits("/robots.txt")  # page fetches honour robots.txt
    assert site.server.hits("/sitemap_index.xml") == []


@pytest.mark.parametrize("registered", [False, True])
def test_a_private_feed_s_history_is_walked_with_the_credential_of_its_url(
    database_url: str, site: Site, registered: bool
) -> None:
    """A private feed whose credential is its URL's user-info (`https://user:pw@host/feed`),
    given as TARGET or registered so: the pages of its history that it links (`rel="next"`,
    written without the credential, which the server cannot know) are fetched with it, within
    the feed's origin, as its redirects are; its article pages are not."""
    expected = "Basic " + base64.b64encode(b"reader:s3cret").decode()
    for path in [p for p in site.server.routes if p.startswith("/paged.atom")]:
        route = site.server.routes[path]
        assert callable(route)

        def guarded(req: Request, route: Callable[[Request], Response] = route) -> Response:
            if req.headers.get("authorization") != expected:
                return Response(401, b"who?", {"WWW-Authenticate": "Basic realm=feed"})
            return route(req)

        site.server.routes[path] = guarded
    feed = site.url("/paged.atom").replace("http://", "http://reader:s3cret@")
    if registered:
        assert ingest(database_url, "feeds", "add", "--no-discover", feed).returncode == 0
    proc = backfill(database_url, feed)
    assert numbers(site, stored(database_url)) == set(ATOM), proc.stdout
    assert "0 failed" in proc.stdout
    pages = [r for r in site.server.requests if r.path.startswith("/a/")]
    assert pages
    assert not any("authorization" in r.headers for r in pages)


READER = "Basic " + base64.b64encode(b"reader:s3cret").decode()


def _private(srv: LocalServer) -> None:
    """Every route of `srv` answers 401 without reader:s3cret, but its robots.txt and its
    article pages (`/a/N`)."""
    for path, route in list(srv.routes.items()):
        if path == "/robots.txt" or path.startswith("/a/"):
            continue

        def guarded(req: Request, route: Route = route) -> Response:
            if req.headers.get("authorization") != READER:
                return Response(401, b"who?", {"WWW-Authenticate": "Basic realm=site"})
            return route(req) if callable(route) else route

        srv.routes[path] = guarded


def _with_reader(url: str) -> str:
    return url.replace("http://", "http://reader:s3cret@", 1)


@pytest.mark.parametrize("found", ["feed-link", "robots-sitemap"])
def test_feeds_add_of_a_private_home_page_registers_its_feeds_with_its_credential(
    database_url: str, found: str
) -> None:
    """`feeds add http://reader:s3cret@host/` of a private site whose home page links its feed
    by an absolute URL of its own origin, or whose robots.txt names a sitemap index listing its
    news sitemap by one: the feed (or sitemap) is checked and registered with the home page's
    user-info, and polled with it; the article pages it lists never get it."""
    with LocalServer() as srv:
        base = srv.base
        if found == "feed-link":
            # The same server under another host name: another origin, which gets no credential.
            elsewhere = base.replace("127.0.0.1", "localhost") + "/elsewhere.rss"
            srv.routes["/"] = static(
                home_html(
                    ("application/rss+xml", elsewhere),
                    ("application/rss+xml", f"{base}/private/stories.rss"),
                )
            )
            srv.routes["/elsewhere.rss"] = static(
                wordpress_feed(base, range(1)), "application/rss+xml"
            )
            srv.routes["/private/stories.rss"] = static(
                wordpress_feed(base, range(3)), "application/rss+xml"
            )
            srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
            expected = (f"{base}/private/stories.rss", "feed")
        else:
            srv.routes["/"] = static("<html><head><title>x</title></head><body>Hi</body></html>")
            srv.routes["/robots.txt"] = static(
                f"User-agent: *\nAllow: /\nSitemap: {base}/index.xml\n", "text/plain"
            )
            srv.routes["/index.xml"] = static(dated_index(base, {"/news.xml": None}))
            srv.routes["/news.xml"] = static(urlset(base, range(3), news=True), "application/xml")
            expected = (f"{base}/news.xml", "sitemap")
        for n in range(3):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        _private(srv)
        proc = ingest(database_url, "feeds", "add", _with_reader(srv.url("/")))
        assert proc.returncode == 0, proc.stderr
        run = ingest(database_url, "run", "--once")
        assert run.returncode == 0, run.stderr
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT url, kind, last_status FROM ingest.feeds").fetchall()
        assert rows == [(_with_reader(expected[0]), expected[1], "ok")], proc.stdout
        assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)]
        pages = [r for r in srv.requests if r.path.startswith(("/a/", "/elsewhere.rss"))]
        assert pages
        assert not any("authorization" in r.headers for r in pages)
        if found == "feed-link":
            assert [r for r in pages if r.path == "/elsewhere.rss"]


@pytest.mark.parametrize("target", ["/", "/sitemap_index.xml"])
def test_a_private_site_s_sitemaps_are_walked_with_the_credential_of_its_url(
    database_url: str, site: Site, target: str
) -> None:
    """`backfill http://reader:s3cret@host/` of a private site whose robots.txt names its
    sitemap index by an absolute URL, or of its sitemap index, whose sitemaps it lists by
    absolute URLs: the sitemaps (of the target's origin) are fetched with the target's
    credential, as its feeds are; its article pages are not."""
    _private(site.server)
    proc = backfill(database_url, _with_reader(site.url(target)))
    expected = set(range(ARTICLES)) if target == "/" else set(POSTS) | set(OLD) | set(NEWS)
    assert numbers(site, stored(database_url)) == expected, proc.stdout
    assert "0 failed" in proc.stdout
    assert not [
        r.path
        for r in site.server.requests
        if r.headers.get("authorization") is None and not r.path.startswith(("/a/", "/robots.txt"))
    ]
    pages = [r for r in site.server.requests if r.path.startswith("/a/")]
    assert not any("authorization" in r.headers for r in pages)


def test_sitemap_index_target(database_url: str, site: Site) -> None:
    """A sitemap index as TARGET: its three sitemaps, one gzipped, one a news sitemap."""
    backfill(database_url, site.url("/sitemap_index.xml"))
    assert numbers(site, stored(database_url)) == set(POSTS) | set(OLD) | set(NEWS)


@pytest.mark.parametrize(
    ("gzipped", "scheme"), [(False, "http://"), (True, "http://"), (False, ""), (False, "//")]
)
def test_text_sitemap_target(database_url: str, gzipped: bool, scheme: str) -> None:
    """A sitemap in the protocol's text format (one URL a line, served as text/plain, gzipped
    or not) as TARGET is read as a sitemap, as one named by robots.txt is; so is one whose
    lines are written without their scheme (its own host's, as its lines are read:
    `normalize.scheme_less_site_url`), which was refused, exit 1, "neither a feed, a sitemap
    nor a web page"."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        host = srv.base.removeprefix("http://")
        lines = "".join(f"{scheme}{host}/a/{n}\n" for n in range(3)).encode()
        body = gzip.compress(lines) if gzipped else lines
        srv.routes["/sitemap.txt"] = Response(200, body, {"Content-Type": "text/plain"})
        for n in range(3):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/sitemap.txt"))
    assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)]
    assert "sources: 1 (0 feed pages, 1 sitemaps), 0 failed" in proc.stdout


def test_a_url_a_plain_sitemap_listed_first_takes_the_date_and_title_of_its_feed_entry(
    database_url: str,
) -> None:
    """A site whose sitemap lists its articles with a lastmod of today (edited since) and
    whose feed (its second page) and news sitemap (in an index) list two of them published
    10 days ago: each is dated and titled by its feed entry or news sitemap, whichever source
    the walk reached first, so --since 3 days ago leaves them unfetched; without it, they are
    stored with those titles and dates."""
    with LocalServer() as srv:
        base = srv.base
        srv.routes["/"] = static(home_html(("application/rss+xml", "/feed/")))
        srv.routes["/robots.txt"] = static(
            f"User-agent: *\nAllow: /\nSitemap: {base}/posts.xml\nSitemap: {base}/index.xml\n",
            "text/plain",
        )
        srv.routes["/feed/"] = static(wordpress_feed(base, range(0, 1)), "application/rss+xml")
        old = published(10)
        item = rss_item(base, 1).replace("Story 1<", "Feed story 1<")
        item = item.replace(format_datetime(published(1)), format_datetime(old))
        page_two = wordpress_feed(base, range(0)).replace("</channel>", f"{item}</channel>")
        srv.routes["/feed/?paged=2"] = static(page_two, "application/rss+xml")
        edited = "".join(
            f"<url><loc>{base}/a/{n}</loc><lastmod>{NOW.isoformat()}</lastmod></url>"
            for n in range(3)
        )
        srv.routes["/posts.xml"] = static(
            f"<?xml version='1.0'?><urlset {SITEMAP_NS}>{edited}</urlset>", "application/xml"
        )
        srv.routes["/index.xml"] = static(dated_index(base, {"/news.xml": None}), "text/xml")
        news = urlset(base, range(2, 3), news=True).replace(
            published(2).isoformat(), old.isoformat()
        )
        srv.routes["/news.xml"] = static(news, "application/xml")
        for n in range(3):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        since = (NOW - timedelta(days=3)).isoformat()
        backfill(database_url, srv.url("/"), "--since", since)
        assert sorted(stored(database_url)) == [srv.url("/a/0")]
        assert srv.hits("/a/1") == srv.hits("/a/2") == []
        backfill(database_url, srv.url("/"))
    rows = stored(database_url)
    assert (rows[srv.url("/a/1")]["title"], rows[srv.url("/a/1")]["published_at"]) == (
        "Feed story 1",
        old,
    )
    assert (rows[srv.url("/a/2")]["title"], rows[srv.url("/a/2")]["published_at"]) == (
        "News story 2",
        old,
    )


def test_sitemap_entries_left_out_are_logged(database_url: str) -> None:
    """A sitemap's entries that are not read (no http(s) location, a repeat, or beyond the
    protocol's 50,000) are counted in a `backfill_sitemap_dropped` log line, so that an
    operator missing URLs of a site learns where they went."""
    with LocalServer() as srv:
        bad = "".join(
            f"<url><loc>{loc}</loc></url>"
            for loc in ("javascript:alert(1)", "", srv.url("/a/0"), "mailto:x@example.com")
        )
        srv.routes["/sitemap.xml"] = static(
            urlset(srv.base, range(0, 2)).replace("</urlset>", bad + "</urlset>"),
            "application/xml",
        )
        for n in range(2):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/sitemap.xml"))
    assert len(stored(database_url)) == 2
    (event,) = events(proc.stderr, "backfill_sitemap_dropped")
    assert event["dropped"] == 4, event
    assert event["source"] == srv.url("/sitemap.xml")


def test_sitemap_urls_on_other_sites_are_skipped_and_counted(database_url: str) -> None:
    """A sitemap (and a sitemap index) listing pages of other sites: those are neither queued
    nor fetched, and the summary counts them; the site's own are backfilled."""
    with LocalServer() as srv:
        base = srv.base
        foreign = "".join(
            f"<url><loc>{u}</loc></url>"
            for u in ("https://elsewhere.example/a/9", "https://news.example.org/b/1")
        )
        srv.routes["/sitemap.xml"] = static(
            urlset(base, range(0, 2)).replace("</urlset>", foreign + "</urlset>"),
            "application/xml",
        )
        srv.routes["/index.xml"] = static(
            f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>"
            f"<sitemap><loc>{base}/sitemap.xml</loc></sitemap>"
            "<sitemap><loc>https://elsewhere.example/sitemap.xml</loc></sitemap>"
            "</sitemapindex>",
            "application/xml",
        )
        for n in range(2):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/index.xml"))
    assert sorted(stored(database_url)) == [srv.url("/a/0"), srv.url("/a/1")]
    assert scalar(database_url, "SELECT count(*) FROM ingest.backfill_urls") == 2
    assert scalar(database_url, "SELECT count(*) FROM ingest.backfill_sources") == 2
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith("; 3 on other sites skipped"), sources


def test_a_resumed_backfill_s_summary_counts_what_the_run_skipped(database_url: str) -> None:
    """The summary's sources line gives the run's totals in every invocation: the sitemaps
    and URLs on other sites and the sitemaps beyond --max-sitemaps that an earlier invocation
    skipped are still counted by the next one, once each (a --restart counts them afresh);
    what the invocation itself did is on its own line, labelled so."""
    with LocalServer() as srv:
        base = srv.base
        refs = "".join(
            f"<sitemap><loc>{base}/s/{n}.xml</loc>"
            f"<lastmod>{published(n).isoformat()}</lastmod></sitemap>"
            for n in range(5)
        )
        refs += "<sitemap><loc>https://elsewhere.example/sitemap.xml</loc></sitemap>"
        srv.routes["/index.xml"] = static(
            f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>{refs}</sitemapindex>",
            "application/xml",
        )
        foreign = "<url><loc>https://elsewhere.example/b/1</loc></url></urlset>"
        for n in range(5):
            own = urlset(base, range(n, n + 1)).replace("</urlset>", foreign)
            srv.routes[f"/s/{n}.xml"] = static(own, "application/xml")
            srv.routes[f"/a/{n}"] = static(article_html(n))
        args = (srv.url("/index.xml"), "--max-sitemaps", "4")
        runs = [
            backfill(database_url, *args),
            backfill(database_url, *args),
            backfill(database_url, *args, "--restart"),
        ]
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(3))
    for proc in runs:
        (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
        assert sources == (
            "  sources: 4 (0 feed pages, 4 sitemaps), 0 failed; 4 on other sites skipped; "
            "2 sitemaps beyond --max-sitemaps 4 skipped"
        ), proc.stdout
    first, again, restarted = (
        next(line for line in proc.stdout.splitlines() if "pages fetched" in line) for proc in runs
    )
    assert first.startswith("  this invocation: 3 pages fetched, 3 stored"), first
    assert again.startswith("  this invocation: 0 pages fetched, 0 stored"), again
    assert restarted.startswith("  this invocation: 0 pages fetched, 0 stored"), restarted
    assert "(resumed)" in runs[1].stdout.splitlines()[0]


def test_sitemap_that_redirects_to_another_host_lists_the_urls_of_that_host(
    database_url: str,
) -> None:
    """A sitemap moved to another host with its site (a redirect): the URLs of the host it
    is served from are its own."""
    with LocalServer() as srv:
        srv.routes["/sitemap.xml"] = static(urlset(srv.base, range(0, 2)), "application/xml")
        for n in range(2):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        moved = srv.url("/sitemap.xml")
        old = moved.replace("127.0.0.1", "localhost").replace("/sitemap.xml", "/old.xml")
        srv.routes["/old.xml"] = Response(301, b"", {"Location": moved})
        proc = backfill(database_url, old)
    assert sorted(stored(database_url)) == [srv.url("/a/0"), srv.url("/a/1")], proc.stdout


def test_limit_takes_the_newest(database_url: str, site: Site) -> None:
    """--limit N fetches the N newest URLs and skips the rest, counted."""
    proc = backfill(database_url, site.url("/sitemap_index.xml"), "--limit", "4")
    assert numbers(site, stored(database_url)) == {12, 13, 14, 15}
    assert set(site.page_hits()) == {12, 13, 14, 15}
    assert "14 beyond --limit" in proc.stdout


def test_limit_skips_the_sitemaps_last_modified_before_the_newest_urls(database_url: str) -> None:
    """An index of twelve sitemaps of three URLs each, listed oldest first, each dated by the
    index: with --limit 4 the sitemaps are walked newest first, and once the 4 newest URLs are
    found those last modified before them are not fetched at all."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        refs = {f"/sitemap-{k}.xml": published(3 * k).isoformat() for k in reversed(range(12))}
        srv.routes["/index.xml"] = static(dated_index(srv.base, refs), "application/xml")
        for k in range(12):
            srv.routes[f"/sitemap-{k}.xml"] = static(
                urlset(srv.base, range(3 * k, 3 * k + 3)), "application/xml"
            )
        for n in range(36):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/index.xml"), "--limit", "4")
        walked = {r.path for r in srv.requests if r.path.startswith("/sitemap-")}
        fetched = {int(r.path.rsplit("/", 1)[1]) for r in srv.requests if r.path.startswith("/a/")}
    assert fetched == {0, 1, 2, 3}
    # The first sources are walked together, four at a time (SOURCE_CONCURRENCY).
    assert walked == {f"/sitemap-{k}.xml" for k in range(4)}
    skipped = scalar(
        database_url, "SELECT count(*) FROM ingest.backfill_sources WHERE state = 'skipped'"
    )
    assert skipped == 8
    # The summary counts them as skipped sources, apart from those walked, and says why.
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith(
        ", 0 failed, 8 skipped (8 sitemaps older than the --limit 4 newest URLs)"
    ), sources
    why = scalar(
        database_url,
        "SELECT string_agg(DISTINCT error, '|') FROM ingest.backfill_sources "
        "WHERE state = 'skipped'",
    )
    assert why == "last modified before the 4 newest URLs found (--limit 4)"


def test_limit_reads_a_sitemap_dated_by_day_alone_whatever_the_database_time_zone(
    database_url: str,
) -> None:
    """A sitemap the index dates `2024-05-10` (a day alone) may list URLs of that evening: with
    --limit 1 it is walked although the newest URL found before it is from 20:00 that day, and
    so it is when the database session's time zone is not UTC (the lastmod read back from the
    queue as 09:00+09:00 is still the day alone)."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        day = datetime(2024, 5, 10, tzinfo=UTC)
        hours = {0: 20, 1: 16, 2: 14, 3: 12}  # /a/k is dated, and its sitemap modified, then
        refs: dict[str, str | None] = {
            f"/sitemap-{k}.xml": (day + timedelta(hours=h)).isoformat() for k, h in hours.items()
        }
        refs["/sitemap-day.xml"] = "2024-05-10"
        srv.routes["/index.xml"] = static(dated_index(srv.base, refs), "application/xml")
        dated = {k: day + timedelta(hours=h) for k, h in hours.items()}
        dated[4] = day + timedelta(hours=23)  # in /sitemap-day.xml
        for k, when in dated.items():
            name = "day" if k == 4 else str(k)
            srv.routes[f"/sitemap-{name}.xml"] = static(
                one_url_sitemap(srv.base, k, when), "application/xml"
            )
            srv.routes[f"/a/{k}"] = static(article_html(k))
        proc = ingest(
            database_url,
            "backfill",
            "--rate",
            "0",
            srv.url("/index.xml"),
            "--limit",
            "1",
            PGTZ="Asia/Tokyo",
        )
        assert proc.returncode == 0, proc.stderr
        fetched = {int(r.path.rsplit("/", 1)[1]) for r in srv.requests if r.path.startswith("/a/")}
    assert srv.hits("/sitemap-day.xml")
    assert fetched == {4}


def test_limit_reads_a_sitemap_listed_by_two_indexes_by_its_newest_lastmod(
    database_url: str,
) -> None:
    """A sitemap listed by two indexes, one dating it a month back (stale) and one that very
    evening: with --limit 1 it is walked by the later date (it lists the newest URL), not
    skipped by the date of the index read first."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        day = datetime(2024, 5, 10, tzinfo=UTC)

        def index(refs: dict[str, datetime | None]) -> Callable[[Request], Response]:
            dates = {path: when.isoformat() if when else None for path, when in refs.items()}
            return static(dated_index(srv.base, dates), "application/xml")

        hours = {0: 20, 1: 16, 2: 14, 3: 12}
        dated = {k: day + timedelta(hours=h) for k, h in hours.items()}
        dated[4] = day + timedelta(hours=22)  # in /sitemap-shared.xml
        srv.routes["/index.xml"] = index({"/index-a.xml": None, "/index-b.xml": None})
        srv.routes["/index-a.xml"] = index(
            {
                **{f"/sitemap-{k}.xml": dated[k] for k in hours},
                "/sitemap-shared.xml": day - timedelta(days=30),
            }
        )
        late = index({"/sitemap-shared.xml": day + timedelta(hours=23)})

        def index_b(req: Request) -> Response:
            time.sleep(0.5)  # read after /index-a.xml
            return late(req)

        srv.routes["/index-b.xml"] = index_b
        for k, when in dated.items():
            name = "shared" if k == 4 else str(k)
            srv.routes[f"/sitemap-{name}.xml"] = static(
                one_url_sitemap(srv.base, k, when), "application/xml"
            )
            srv.routes[f"/a/{k}"] = static(article_html(k))
        backfill(database_url, srv.url("/index.xml"), "--limit", "1")
        fetched = {int(r.path.rsplit("/", 1)[1]) for r in srv.requests if r.path.startswith("/a/")}
        assert srv.hits("/sitemap-shared.xml")
    assert fetched == {4}


def test_since_keeps_what_a_lastmod_of_a_month_or_a_year_may_hold(database_url: str) -> None:
    """A `lastmod` of a month or a year alone (`2024-05`, `2024`: W3C Datetime's coarser forms)
    stands for the whole of it under --since: the sitemap an index dates `2024-05` is walked by
    `--since 2024-05-15`, as is a URL a sitemap dates so, and the URL is queued dated as
    written (its first moment, nothing later invented); a month wholly before --since is not
    walked."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        refs: dict[str, str | None] = {
            "/s/may.xml": "2024-05",
            "/s/year.xml": "2024",
            "/s/april.xml": "2024-04",
        }
        srv.routes["/index.xml"] = static(dated_index(srv.base, refs), "application/xml")
        srv.routes["/s/may.xml"] = static(
            one_url_sitemap(srv.base, 1, datetime(2024, 5, 20, 10, tzinfo=UTC)), "application/xml"
        )
        month = (
            f"<?xml version='1.0'?><urlset {SITEMAP_NS}><url><loc>{srv.base}/a/2</loc>"
            "<lastmod>2024-05</lastmod></url></urlset>"
        )
        srv.routes["/s/year.xml"] = static(month, "application/xml")
        srv.routes["/s/april.xml"] = static(
            one_url_sitemap(srv.base, 3, datetime(2024, 4, 20, tzinfo=UTC)), "application/xml"
        )
        for n in (1, 2, 3):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        backfill(database_url, srv.url("/index.xml"), "--since", "2024-05-15")
        walked = sorted(r.path for r in srv.requests if r.path.startswith("/s/"))
        assert walked == ["/s/may.xml", "/s/year.xml"]
        prefix = srv.url("/a/")
        assert {u.removeprefix(prefix) for u in stored(database_url)} == {"1", "2"}
        dated = scalar(
            database_url,
            f"SELECT dated_at FROM ingest.backfill_urls WHERE url = '{srv.url('/a/2')}'",
        )
    assert dated == datetime(2024, 5, 1, tzinfo=UTC)


def test_limit_walks_a_sitemap_dated_by_its_month_that_may_hold_newer_urls(
    database_url: str,
) -> None:
    """With --limit 1, a sitemap an index dates `2024-05` (the month alone) may hold URLs of
    any day of May: it is walked after four sitemaps of 20 May, not skipped as last modified
    on 1 May, and its URL of 25 May, the newest, is the one fetched."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        day = datetime(2024, 5, 20, tzinfo=UTC)
        refs: dict[str, str | None] = {
            f"/s/{k}.xml": (day + timedelta(hours=10 + k)).isoformat() for k in range(4)
        }
        refs["/s/month.xml"] = "2024-05"
        srv.routes["/index.xml"] = static(dated_index(srv.base, refs), "application/xml")
        for k in range(4):
            srv.routes[f"/s/{k}.xml"] = static(
                one_url_sitemap(srv.base, k, day + timedelta(hours=10 + k)), "application/xml"
            )
        srv.routes["/s/month.xml"] = static(
            one_url_sitemap(srv.base, 9, datetime(2024, 5, 25, tzinfo=UTC)), "application/xml"
        )
        for n in (0, 1, 2, 3, 9):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        backfill(database_url, srv.url("/index.xml"), "--limit", "1")
        assert srv.hits("/s/month.xml")
        fetched = {int(r.path.rsplit("/", 1)[1]) for r in srv.requests if r.path.startswith("/a/")}
    assert fetched == {9}


def test_limit_is_not_taken_by_urls_dated_far_ahead(database_url: str) -> None:
    """A sitemap whose URLs are dated years ahead (an events calendar, a typo) dates them
    nowhere, as the service reads such a date (`ingest.normalize.plausible_date`): with
    --limit 2 they neither take the two places of the newest URLs nor make the walk skip the
    sitemaps last modified before them, and they are queued undated."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        refs: dict[str, str | None] = {"/sitemap-events.xml": None}
        refs |= {f"/sitemap-{k}.xml": published(k).isoformat() for k in range(6)}
        srv.routes["/index.xml"] = static(dated_index(srv.base, refs), "application/xml")
        ahead = "".join(
            f"<url><loc>{srv.base}/e/{n}</loc><lastmod>2099-01-0{n + 1}</lastmod></url>"
            for n in range(4)
        )
        srv.routes["/sitemap-events.xml"] = static(
            f"<?xml version='1.0'?><urlset {SITEMAP_NS}>{ahead}</urlset>", "application/xml"
        )
        for k in range(6):
            srv.routes[f"/sitemap-{k}.xml"] = static(
                one_url_sitemap(srv.base, k, published(k)), "application/xml"
            )
            srv.routes[f"/a/{k}"] = static(article_html(k))
        for n in range(4):
            srv.routes[f"/e/{n}"] = static(article_html(10 + n))
        backfill(database_url, srv.url("/index.xml"), "--limit", "2")
        fetched = {r.path for r in srv.requests if r.path.startswith(("/a/", "/e/"))}
    assert fetched == {"/a/0", "/a/1"}
    undated = scalar(
        database_url,
        "SELECT count(*) FROM ingest.backfill_urls WHERE url LIKE '%/e/%' AND dated_at IS NULL",
    )
    assert undated == 4


def test_dry_run_lists_and_stores_nothing(database_url: str, site: Site) -> None:
    """--dry-run prints the URLs that would be fetched, one a line, newest first, after the
    date filter and the known-URL check; no page is fetched and nothing is stored. A real run
    afterwards fetches exactly those."""
    since = (NOW - timedelta(days=15)).date().isoformat()
    proc = backfill(database_url, site.url("/"), "--since", since, "--dry-run")
    listed = proc.stdout.split()
    expected = [n for n in range(ARTICLES) if published(n).date().isoformat() >= since]
    assert listed == [site.url(f"/a/{n}") for n in expected]
    assert "would be fetched" in proc.stderr
    assert site.page_hits() == Counter()
    assert stored(database_url) == {}
    backfill(database_url, site.url("/"), "--since", since)
    assert numbers(site, stored(database_url)) == set(expected)


def test_url_list_from_stdin(database_url: str, site: Site) -> None:
    """--urls - reads article URLs from stdin; no TARGET needed."""
    urls = "\n".join(site.url(f"/a/{n}") for n in (3, 4, 5)) + "\n"
    proc = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=urls)
    assert proc.returncode == 0, proc.stderr
    assert numbers(site, stored(database_url)) == {3, 4, 5}


def test_url_list_with_a_control_character_is_backfilled(database_url: str, site: Site) -> None:
    """A listed URL with a NUL byte in it (a binary file, a bad export) is read without it: the
    other URLs are stored, not the whole list refused by the database."""
    site.server.routes["/a/4?id=4"] = site.server.routes["/a/4"]
    urls = f"{site.url('/a/3')}\n{site.url('/a/4?id=4')}\x00\n{site.url('/a/5')}\n"
    proc = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=urls)
    assert proc.returncode == 0, proc.stderr
    assert sorted(stored(database_url)) == [site.url(p) for p in ("/a/3", "/a/4?id=4", "/a/5")]


def test_running_twice_stores_nothing_twice(database_url: str, site: Site) -> None:
    """The same backfill again fetches no page and stores nothing; another backfill over the
    same site (another range) skips what is already stored without fetching it."""
    backfill(database_url, site.url("/sitemap_index.xml"))
    first = stored(database_url)
    hits = site.page_hits()
    again = backfill(database_url, site.url("/sitemap_index.xml"))
    assert "(resumed)" in again.stdout
    other = backfill(database_url, site.url("/"), "--since", "2000-01-01")
    assert site.page_hits() - hits == Counter({n: 1 for n in list(WP) + list(ATOM)})
    rows = stored(database_url)
    assert len(rows) == ARTICLES
    assert {u: r["id"] for u, r in rows.items() if u in first} == {
        u: r["id"] for u, r in first.items()
    }
    assert "18 already known" in other.stdout


def test_articles_pruned_since_a_backfill_are_not_backfilled_again(
    database_url: str, site: Site
) -> None:
    """A backfill of the sitemaps, then `ingest prune` of the articles older than 20 days: a
    new backfill of the whole site (its feeds and sitemaps) fetches none of the pruned pages
    and stores none of them again (skipped as pruned); the pages never stored are fetched."""
    backfill(database_url, site.url("/sitemap_index.xml"))
    before = numbers(site, stored(database_url))
    pruned = ingest(database_url, "prune", "--older-than", "20d")
    assert pruned.returncode == 0, pruned.stderr
    kept = numbers(site, stored(database_url))
    gone = before - kept
    assert len(gone) >= 6, (before, kept)
    hits = site.page_hits()

    proc = backfill(database_url, site.url("/"), "--since", "2000-01-01")

    assert numbers(site, stored(database_url)) == set(range(ARTICLES)) - gone
    fetched = site.page_hits() - hits
    assert set(fetched) == set(range(ARTICLES)) - before
    assert f"{len(gone)} pruned" in proc.stdout
    assert f"{len(kept)} already known" in proc.stdout


def test_restart_walks_the_sources_again_without_refetching(database_url: str, site: Site) -> None:
    """--restart forgets the run's progress: the sources are walked again, but the articles
    stored by the first pass are skipped as known, not fetched."""
    backfill(database_url, site.url("/sitemap_index.xml"))
    hits = site.page_hits()
    proc = backfill(database_url, site.url("/sitemap_index.xml"), "--restart")
    assert "(resumed)" not in proc.stdout
    assert "18 already known" in proc.stdout
    assert len(site.server.hits("/sitemap_index.xml")) == 2
    assert site.page_hits() == hits
    assert len(stored(database_url)) == 18


def test_dated_only_skips_undated_urls(database_url: str, site: Site) -> None:
    """--dated-only: listed URLs (which carry no date) are skipped, counted as undated."""
    urls = "\n".join(site.url(f"/a/{n}") for n in (1, 2)) + "\n"
    proc = ingest(database_url, "backfill", "--urls", "-", "--dated-only", stdin=urls)
    assert proc.returncode == 0, proc.stderr
    assert "2 skipped (2 undated)" in proc.stdout
    assert stored(database_url) == {}
    assert site.page_hits() == Counter()


def test_failing_pages_are_retried_then_fall_back(database_url: str, site: Site) -> None:
    """A page failing for a passing reason (503) is tried again in the same run, then left
    failed, and the next invocation tries it again; a feed entry whose page is gone (404) is
    stored from the feed's text, as the service does. Failures do not fail the backfill."""
    answers = {"n": 0}

    def flaky(req: Request) -> Response:
        answers["n"] += 1
        if answers["n"] <= 2:
            return Response(503, b"busy", {"Content-Type": "text/plain"})
        return Response(200, article_html(13).encode(), {"Content-Type": "text/html"})

    site.server.routes["/a/13"] = flaky
    site.server.routes["/a/1"] = Response(404, b"gone", {"Content-Type": "text/plain"})
    first = ingest(database_url, "backfill", "--rate", "0", site.url("/"), INGEST_PAGE_ATTEMPTS="2")
    assert first.returncode == 0, first.stderr
    rows = stored(database_url)
    assert site.url("/a/13") not in rows
    assert answers["n"] == 2
    assert "1 failed" in first.stdout
    assert f"failed: {site.url('/a/13')}: HTTP 503" in first.stdout
    gone = rows[site.url("/a/1")]
    assert (gone["text_source"], gone["text"]) == ("feed", "Feed summary of story 1.")
    assert "404" in gone["extraction_error"]
    second = backfill(database_url, site.url("/"))
    assert "(resumed)" in second.stdout
    assert answers["n"] == 3
    assert stored(database_url)[site.url("/a/13")]["text_source"] == "page"
    assert len(stored(database_url)) == ARTICLES


def _busy_once(site: Site, retry_after: int) -> dict[str, int]:
    """Every article page answers 200, but the first page asked of the site answers 429 with
    `retry_after`; returns the count of those 429s."""
    busy = {"n": 0}
    for n in range(ARTICLES):
        page = site.server.routes[f"/a/{n}"]
        assert callable(page)

        def handle(req: Request, page: Callable[[Request], Response] = page) -> Response:
            if not busy["n"]:
                busy["n"] += 1
                return Response(429, b"slow down", {"Retry-After": str(retry_after)})
            return page(req)

        site.server.routes[f"/a/{n}"] = handle
    return busy


def _attempts(database_url: str) -> list[tuple[str, int, bool]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT state, attempts, retryable FROM ingest.backfill_urls ORDER BY url"
        ).fetchall()
    return [(str(r[0]), int(r[1]), bool(r[2])) for r in rows]


def test_pages_a_retry_after_holds_spend_no_try_and_are_fetched_once_it_ends(
    database_url: str, site: Site
) -> None:
    """A 429 with a Retry-After longer than a request waits (INGEST_MAX_CRAWL_DELAY) holds the
    site's other pages back unsent: no try of theirs is spent, and the run fetches them once
    the hold ends, each once."""
    busy = _busy_once(site, 10)
    urls = "\n".join(site.url(f"/a/{n}") for n in (3, 4, 5)) + "\n"
    started = time.monotonic()
    proc = ingest(
        database_url,
        "backfill",
        "--rate",
        "0",
        "--urls",
        "-",
        stdin=urls,
        INGEST_MAX_CRAWL_DELAY="1",
        INGEST_PER_HOST_CONNECTIONS="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert busy["n"] == 1
    assert numbers(site, stored(database_url)) == {3, 4, 5}
    assert sum(site.page_hits().values()) == 4
    assert time.monotonic() - started >= 9
    # The wait says so, rather than a silence of up to 10 minutes in the log.
    (waiting,) = events(proc.stderr, "backfill_waiting")
    assert waiting["pages"] == 3
    assert 5 <= waiting["seconds"] <= 10


def test_pages_held_longer_than_the_run_waits_are_left_untried_for_the_next_invocation(
    database_url: str, site: Site
) -> None:
    """A Retry-After longer than a backfill waits for a hold (an hour) ends the run at once,
    without spinning: the held pages are left failed with no try spent, and the next
    invocation fetches them."""
    busy = _busy_once(site, 3600)
    assert busy["n"] == 0
    urls = "\n".join(site.url(f"/a/{n}") for n in (3, 4, 5)) + "\n"
    started = time.monotonic()
    first = ingest(
        database_url,
        "backfill",
        "--rate",
        "0",
        "--urls",
        "-",
        stdin=urls,
        INGEST_MAX_CRAWL_DELAY="1",
        INGEST_PER_HOST_CONNECTIONS="1",
    )
    assert first.returncode == 0, first.stderr
    assert time.monotonic() - started < 60
    assert sum(site.page_hits().values()) == 1
    assert stored(database_url) == {}
    assert sorted(_attempts(database_url)) == [
        ("failed", 0, True),
        ("failed", 0, True),
        ("failed", 1, True),
    ]
    assert "held" in first.stdout
    assert "not finished: run the same command again" in first.stdout
    (held,) = events(first.stderr, "backfill_held")
    assert held["pages"] == 3
    assert held["seconds"] > 3000
    (done,) = events(first.stderr, "backfill_done")
    assert done["finished"] is False
    second = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=urls)
    assert second.returncode == 0, second.stderr
    assert numbers(site, stored(database_url)) == {3, 4, 5}


def test_sitemaps_a_retry_after_holds_spend_no_try_and_are_walked_once_it_ends(
    database_url: str, site: Site
) -> None:
    """An index's first sitemap answering 429 with a Retry-After longer than a request waits
    (INGEST_MAX_CRAWL_DELAY) holds the site's other sitemaps back unsent: as the pages held
    so, they spend no try and are walked once the hold ends, within the run; none fails."""
    busy = {"n": 0}
    posts = site.server.routes["/sitemap-posts.xml"]
    assert callable(posts)

    def handle(req: Request) -> Response:
        if not busy["n"]:
            busy["n"] += 1
            return Response(429, b"slow down", {"Retry-After": "10"})
        return posts(req)

    site.server.routes["/sitemap-posts.xml"] = handle
    proc = ingest(
        database_url,
        "backfill",
        "--rate",
        "0",
        site.url("/sitemap_index.xml"),
        INGEST_MAX_CRAWL_DELAY="1",
        INGEST_PER_HOST_CONNECTIONS="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert busy["n"] == 1
    assert numbers(site, stored(database_url)) == set(POSTS) | set(OLD) | set(NEWS)
    assert len(site.server.hits("/sitemap-posts.xml")) == 2
    assert len(site.server.hits("/sitemap-old.xml.gz")) == 1
    assert len(site.server.hits("/news-sitemap.xml")) == 1
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources == "  sources: 4 (0 feed pages, 4 sitemaps), 0 failed", proc.stdout
    assert "not finished" not in proc.stdout
    waiting = events(proc.stderr, "backfill_waiting")
    assert {w["source"] for w in waiting} == {
        site.url(path)
        for path in ("/sitemap-posts.xml", "/sitemap-old.xml.gz", "/news-sitemap.xml")
    }
    assert all(0 < w["seconds"] <= 10 for w in waiting)


def test_sitemaps_held_longer_than_the_run_waits_are_left_for_the_next_invocation(
    database_url: str, site: Site
) -> None:
    """A Retry-After longer than a backfill waits for a hold (an hour) on an index's first
    sitemap: the sitemaps it holds back are left failed at once, unsent, the run said not
    finished, and the next invocation walks them and stores their URLs."""
    busy = {"n": 0}
    posts = site.server.routes["/sitemap-posts.xml"]
    assert callable(posts)

    def handle(req: Request) -> Response:
        if not busy["n"]:
            busy["n"] += 1
            return Response(429, b"slow down", {"Retry-After": "3600"})
        return posts(req)

    site.server.routes["/sitemap-posts.xml"] = handle
    target = site.url("/sitemap_index.xml")
    first = ingest(
        database_url,
        "backfill",
        "--rate",
        "0",
        target,
        INGEST_MAX_CRAWL_DELAY="1",
        INGEST_PER_HOST_CONNECTIONS="1",
    )
    assert first.returncode == 0, first.stderr
    assert stored(database_url) == {}
    assert len(site.server.hits("/sitemap-posts.xml")) == 1
    assert site.server.hits("/news-sitemap.xml") == []
    (sources,) = (line for line in first.stdout.splitlines() if "sources:" in line)
    assert sources == "  sources: 4 (0 feed pages, 4 sitemaps), 3 failed", first.stdout
    assert "not finished: run the same command again" in first.stdout
    (done,) = events(first.stderr, "backfill_done")
    assert done["finished"] is False
    second = backfill(database_url, target)
    assert numbers(site, stored(database_url)) == set(POSTS) | set(OLD) | set(NEWS)
    assert "not finished" not in second.stdout


def test_sigterm_while_sitemaps_wait_for_a_hold_exits_143_and_resumes(
    database_url: str, site: Site
) -> None:
    """SIGTERM (`docker stop`) while the sitemaps a Retry-After holds wait for it to end: exit
    143 at once with the hint to run again; the same command then walks them, and stores
    every URL once."""
    busy = {"n": 0}
    posts = site.server.routes["/sitemap-posts.xml"]
    assert callable(posts)

    def handle(req: Request) -> Response:
        if not busy["n"]:
            busy["n"] += 1
            return Response(429, b"slow down", {"Retry-After": "300"})
        return posts(req)

    site.server.routes["/sitemap-posts.xml"] = handle
    target = site.url("/sitemap_index.xml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "backfill", "--rate", "0", target],
        env=env(database_url, INGEST_MAX_CRAWL_DELAY="1", INGEST_PER_HOST_CONNECTIONS="1"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if '"backfill_waiting"' in line:
                break
        assert any('"backfill_waiting"' in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert "run the same command again" in err
    assert stored(database_url) == {}
    resumed = backfill(database_url, target)
    assert "(resumed)" in resumed.stdout
    rows = stored(database_url)
    assert numbers(site, rows) == set(POSTS) | set(OLD) | set(NEWS)
    assert len(rows) == len(POSTS) + len(OLD) + len(NEWS)
    assert len(site.server.hits("/sitemap_index.xml")) == 1
    (sources,) = (line for line in resumed.stdout.splitlines() if "sources:" in line)
    assert sources == "  sources: 4 (0 feed pages, 4 sitemaps), 0 failed", resumed.stdout


def test_killed_backfill_resumes_where_it_stopped(database_url: str, site: Site) -> None:
    """A backfill killed (SIGKILL) while pages stall, started again, fetches only what was not
    done: every article is stored exactly once and no stored page is fetched again."""
    site.stall = set(range(8, ARTICLES))  # the 8 newest answer, the rest hang
    target = site.url("/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "backfill", "--rate", "0", target],
        env=env(database_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(stored(database_url)) < 8:
            time.sleep(0.2)
        first = stored(database_url)
        assert len(first) == 8, proc.stderr.read() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert numbers(site, first) == set(range(8))
    before = site.page_hits()
    site.stall = set()
    site.gate.set()
    resumed = backfill(database_url, target)
    assert "(resumed)" in resumed.stdout
    rows = stored(database_url)
    assert numbers(site, rows) == set(range(ARTICLES))
    assert len(rows) == ARTICLES
    hits = site.page_hits()
    assert all(hits[n] == 1 for n in range(8)), hits
    # Pages in flight when the process died are fetched again; no page more than twice.
    assert all(hits[n] - before[n] <= 1 for n in range(ARTICLES))
    # The sources walked before the kill were not walked again.
    assert len(site.server.hits("/sitemap_index.xml")) == 1
    assert len(site.server.hits("/feed/?paged=3")) == 1


WATCHED_BACKFILL = """
import sys
from ingest.store import db
db.MIGRATION_PROBE_SECONDS = 0.5  # the watch's pace: a loaded machine answers within it
db.MIGRATION_SILENCE_SECONDS = 10.0
from ingest.cli import main
sys.exit(main(["backfill", *sys.argv[1:]]))
"""


def test_a_backfill_whose_database_goes_silent_stops_and_resumes(
    database_url: str, site: Site
) -> None:
    """The database's network drops every packet (no reset: a partition, a server stopped
    behind a proxy that still acknowledges) while a backfill's pages stall: once it has
    answered nothing for the silence allowed (60 s, 10 s here), the backfill stops,
    `database_silent` logged, one line saying so and how to go on, exit 1; started again, it
    resumes where it stopped, every article stored once (was: it waited for ever, its lock's
    check and its writes on connections nothing answered any more)."""
    site.stall = set(range(8, ARTICLES))  # the 8 newest answer, the rest hang
    target = site.url("/")
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    through = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=str(relay.port))
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHED_BACKFILL, "--rate", "0", target],
        env=env(through),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(stored(database_url)) == 8 or proc.poll() is not None, 90)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert len(stored(database_url)) == 8
        relay.silence()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        relay.close()  # the sessions it held end: its lock goes with them
    assert proc.returncode == 1, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line and not line.startswith("{")]
    assert lines == [
        "ingest: the database answered nothing for 10 s (a network dropping its packets, a"
        " server stopped): the command stopped; run the same command again to continue"
    ], stderr[-2000:]
    assert events(stderr, "database_silent")
    assert numbers(site, stored(database_url)) == set(range(8))
    # The server ends the sessions once it sees them gone, the run's lock with them.
    locks = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert wait_until(lambda: scalar(database_url, locks) == 0, 30)
    site.stall = set()
    site.gate.set()
    resumed = backfill(database_url, target)
    assert "(resumed)" in resumed.stdout
    rows = stored(database_url)
    assert numbers(site, rows) == set(range(ARTICLES))
    assert len(rows) == ARTICLES


def test_backfill_killed_between_storing_a_page_and_its_checkpoint_counts_it_stored(
    database_url: str, site: Site
) -> None:
    """A backfill killed after a page's article is written but before the queue records it
    (its row in ingest.backfill_urls held by another session, the process killed while it
    waits): started again, every article is stored once and counted once as stored by the
    run, none as "already known"."""
    site.stall = {3}
    target = site.url("/feed/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "backfill", "--rate", "0", target],
        env=env(database_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = psycopg.connect(database_url)
    watcher = psycopg.connect(database_url, autocommit=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not site.server.hits("/a/3"):
            time.sleep(0.1)
        assert site.server.hits("/a/3"), proc.stderr.read() if proc.poll() is not None else ""
        # The page is being fetched: hold its queue row, then let the page answer.
        holder.execute(
            "SELECT 1 FROM ingest.backfill_urls WHERE url = %s FOR UPDATE", (site.url("/a/3"),)
        )
        site.gate.set()
        waiting: list[Any] = []
        while time.monotonic() < deadline and not waiting:
            waiting = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid))",
                (holder.info.backend_pid,),
            ).fetchall()
            time.sleep(0.1)
        assert waiting, "the backfill never reached the queue row"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # The server learns of the dead client only when it next reads from it: end its
        # sessions as it would, before the row is let go.
        for (pid,) in waiting:
            watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        holder.rollback()
        holder.close()
        watcher.close()
    resumed = backfill(database_url, target)
    rows = stored(database_url)
    assert numbers(site, rows) == set(WP)
    assert len(rows) == len(WP)
    assert f"{len(WP)} stored, 0 already stored, 0 skipped" in resumed.stdout, resumed.stdout


def test_interrupted_backfill_exits_130_and_resumes(database_url: str, site: Site) -> None:
    """SIGINT stops a backfill with a one-line hint and exit 130; the same command continues."""
    site.stall = {5}
    target = site.url("/feed/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "backfill", "--rate", "0", target],
        env=env(database_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(stored(database_url)) < 5:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert "run the same command again" in err
    site.stall = set()
    site.gate.set()
    backfill(database_url, target)
    assert numbers(site, stored(database_url)) == set(WP)
    assert all(site.page_hits()[n] == 1 for n in range(5))


def test_service_and_backfill_share_the_database(database_url: str, site: Site) -> None:
    """Articles the service stored are not fetched again by a backfill, and the service does
    not fetch what a backfill stored: the WordPress feed polled by `ingest run --once` and a
    backfill of the site between two polls."""
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    assert ingest(database_url, "run", "--once").returncode == 0
    assert numbers(site, stored(database_url)) == {0, 1}
    backfill(database_url, site.url("/"))
    assert numbers(site, stored(database_url)) == set(range(ARTICLES))
    site.server.routes["/feed/"] = static(
        wordpress_feed(site.base, range(0, 4)), "application/rss+xml"
    )
    assert ingest(database_url, "run", "--once", "--all").returncode == 0
    assert all(n == 1 for n in site.page_hits().values()), site.page_hits()


def test_registered_feed_target_links_its_entries(database_url: str, site: Site) -> None:
    """Backfilling a registered feed stores its articles under that feed and records its
    entries, so the service's next poll of the feed treats them as seen."""
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    backfill(database_url, site.url("/feed/"))
    rows = stored(database_url)
    feed_id = scalar(database_url, "SELECT id FROM news.feeds")
    assert {r["feed_id"] for r in rows.values()} == {feed_id}
    assert scalar(database_url, "SELECT count(*) FROM ingest.feed_entries") == 6
    run = ingest(database_url, "run", "--once")
    assert run.returncode == 0
    assert "0 new" in run.stdout
    assert all(n == 1 for n in site.page_hits().values())


def test_a_registered_feed_is_backfilled_by_its_id(database_url: str, site: Site) -> None:
    """`ingest backfill ID`, the id `feeds list` prints, backfills that feed as its URL does:
    one backfill, which the command naming its URL continues; an id no feed has is `no such
    feed: id N`, exit 1, with no request (was: a usage error, `not an http(s) URL`)."""
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    feed_id = scalar(database_url, "SELECT id FROM news.feeds")
    first = backfill(database_url, str(feed_id))
    rows = stored(database_url)
    assert numbers(site, rows) == set(WP)
    assert {r["feed_id"] for r in rows.values()} == {feed_id}
    assert first.stdout.splitlines()[0].endswith(f" of {site.url('/feed/')}")
    again = backfill(database_url, site.url("/feed/"))
    assert again.stdout.splitlines()[0] == first.stdout.splitlines()[0] + " (resumed)"
    site.server.requests.clear()
    unknown = ingest(database_url, "backfill", str(feed_id + 1))
    assert (unknown.returncode, unknown.stdout) == (1, ""), unknown.stderr
    errors = [ln for ln in unknown.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert errors == [f"ingest: no such feed: id {feed_id + 1}"]
    assert site.server.requests == []


def test_registered_feed_target_skips_the_entries_its_polls_did(
    database_url: str, site: Site
) -> None:
    """Backfilling a registered feed skips the entries its polls already stored, by their guid
    as the polls do (`dedup.plan`), also where their link changed since (a site's new
    permalinks): their pages are not fetched, nor stored again as second articles."""
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    assert ingest(database_url, "run", "--once").returncode == 0
    assert numbers(site, stored(database_url)) == {0, 1}
    moved = wordpress_feed(site.base, range(0, 2))
    for n in (0, 1):
        moved = moved.replace(f"{site.base}/a/{n}<", f"{site.base}/a/{n + 100}<")
        site.server.routes[f"/a/{n + 100}"] = site.server.routes[f"/a/{n}"]
    site.server.routes["/feed/"] = static(moved, "application/rss+xml")
    polled = ingest(database_url, "run", "--once", "--all")
    assert polled.returncode == 0
    assert "0 new" in polled.stdout
    backfill(database_url, site.url("/feed/"))
    assert numbers(site, stored(database_url)) == set(WP)
    assert not set(site.page_hits()) & {100, 101}


def test_same_backfill_twice_at_once_refuses(database_url: str, site: Site) -> None:
    """While a backfill runs (its advisory lock held), the same backfill started elsewhere
    exits 1 with one line instead of doing the work twice."""
    from ingest.store.backfill import LOCK_CLASS

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, 1)", (LOCK_CLASS,))  # the first run's id
        proc = ingest(database_url, "backfill", site.url("/feed/"))
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1
    assert "already running in another process" in errors[0]
    assert site.page_hits() == Counter()


def test_backfill_that_loses_its_lock_stops_with_exit_3_and_resumes(
    database_url: str, site: Site
) -> None:
    """The session holding the backfill's advisory lock ends mid-run (terminated, as an
    administrator or `idle_session_timeout` ends an idle session): the backfill stops at once
    with exit 3 and one line saying so, instead of working on unguarded (another process could
    run the same backfill meanwhile); the same command then finishes the run, nothing lost and
    nothing stored twice."""
    from ingest.store.backfill import LOCK_CLASS

    site.stall = {3}
    target = site.url("/feed/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "backfill", "--rate", "0", target],
        env=env(database_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not site.server.hits("/a/3"):
            time.sleep(0.1)
        assert site.server.hits("/a/3"), proc.stderr.read() if proc.poll() is not None else ""
        with psycopg.connect(database_url, autocommit=True) as conn:
            (ended,) = conn.execute(
                "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l"
                " JOIN pg_database d ON d.oid = l.database AND d.datname = current_database()"
                " WHERE l.locktype = 'advisory' AND l.classid = %s::bigint::oid",
                (LOCK_CLASS,),
            ).fetchone() or (0,)
        assert ended == 1
        out, err = proc.communicate(timeout=120)
    finally:
        site.gate.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, (out, err)
    errors = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1, err
    assert "lost its lock" in errors[0]
    assert "run the same command again" in errors[0]
    site.stall = set()
    resumed = backfill(database_url, target)
    assert "(resumed)" in resumed.stdout
    rows = stored(database_url)
    assert numbers(site, rows) == set(WP)
    assert len(rows) == len(WP)
    assert f"{len(WP)} stored, 0 already stored, 0 skipped" in resumed.stdout, resumed.stdout


def test_unreachable_target_exits_1(database_url: str) -> None:
    """A target nobody answers: exit 1 with one line on stderr."""
    proc = ingest(database_url, "backfill", "http://127.0.0.1:9/")
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1
    assert "127.0.0.1:9" in errors[0]


def test_site_without_sources_exits_1(database_url: str) -> None:
    """A web page with no feed, no common feed path and no sitemap: exit 1, one line."""
    with LocalServer() as srv:
        srv.routes["/"] = static("<html><body><p>Nothing here</p></body></html>")
        # No rate limit: it would space the probes of common feed paths half a second apart
        # (the limiter has a test of its own).
        proc = ingest(database_url, "backfill", "--rate", "0", srv.url("/"))
    assert proc.returncode == 1
    assert "no feed or sitemap found" in proc.stderr


def test_a_date_bound_refused_names_the_forms_taken() -> None:
    """`--since 2023-366` (an ordinal day the year does not have): exit 2, the usage, then one
    error line naming every form a bound takes, the ordinal date among them, and why this one
    is none."""
    proc = ingest(
        "postgresql://postgres@127.0.0.1:1/nothing",
        "backfill",
        "https://x.example/",
        "--since",
        "2023-366",
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("usage: ingest backfill"), proc.stderr
    assert lines[-1].startswith("ingest backfill: error: argument --since"), proc.stderr
    for form in ("YYYY-MM-DD", "YYYY-DDD", "YYYY-Www", "YYYY-MM", "YYYY", "2023 has no day 366"):
        assert form in lines[-1]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([], "give a TARGET URL"),
        (["https://x.example/", "--since", "last week"], "argument --since: not a date"),
        (
            ["https://x.example/", "--since", "2024-05-02", "--until", "2024-05-01"],
            "--since must be before --until",
        ),
        (["https://x.example/", "--since", "0001-01-01T00:00:00+01:00"], "argument --since"),
        (["https://x.example/", "--since", ""], "argument --since: not a date"),
        (["https://x.example/", "--until", " "], "argument --until: not a date"),
        (["ftp://x.example/"], "argument TARGET: not an http(s) URL"),
        (["https://x.example/", "--max-pages", "32768"], "--max-pages must be at most 32767"),
        (["0"], "argument TARGET: an id is at least 1"),
    ],
)
def test_usage_errors_exit_2(args: list[str], reason: str) -> None:
    """Bad arguments: exit 2, before touching the database, with the usage and the reason on
    stderr as every other command's usage errors (`ingest backfill: error: …`; was: the
    reason alone, with no usage)."""
    proc = ingest("postgresql://postgres@127.0.0.1:1/nothing", "backfill", *args)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("usage: ingest backfill "), proc.stderr
    assert lines[-1].startswith("ingest backfill: error: "), proc.stderr
    assert reason in lines[-1]
    assert "unreachable" not in proc.stderr


# --- sites as feeds -------------------------------------------------------------------------------


def feed_rows(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT url, kind, title FROM news.feeds ORDER BY id").fetchall()


def test_feeds_add_home_page_uses_link_alternate(database_url: str, site: Site) -> None:
    """`feeds add` with a home page registers the feeds it links (checked, comment feeds left
    out) and says where they came from."""
    proc = ingest(database_url, "feeds", "add", site.url("/"))
    assert proc.returncode == 0, proc.stderr
    assert [(f["url"], f["kind"]) for f in feed_rows(database_url)] == [
        (site.url("/feed/"), "feed"),
        (site.url("/paged.atom"), "feed"),
    ]
    assert f"added   {site.url('/feed/')}  (linked from {site.url('/')}: Feed)" in proc.stdout
    assert "2 added, 0 already present" in proc.stdout
    again = ingest(database_url, "feeds", "add", site.url("/"))
    assert "0 added, 2 already present" in again.stdout


def test_feeds_add_home_page_probes_common_paths(database_url: str) -> None:
    """A home page without feed links: the first common feed path answering a feed."""
    with LocalServer() as srv:
        srv.routes["/"] = static("<html><head><title>x</title></head><body>Hi</body></html>")
        srv.routes["/rss.xml"] = static(wordpress_feed(srv.base, range(2)), "application/rss+xml")
        proc = ingest(database_url, "feeds", "add", srv.url("/"))
    assert proc.returncode == 0, proc.stderr
    assert [f["url"] for f in feed_rows(database_url)] == [srv.url("/rss.xml")]
    assert "common feed path" in proc.stdout


def test_feeds_import_searches_home_pages_as_feeds_add_does(
    database_url: str, tmp_path: Path
) -> None:
    """`feeds import` runs the discovery of `feeds add` on a URL that is not a feed's, and
    registers feed-like URLs as given; with --no-discover, every URL as given."""
    with LocalServer() as srv:
        srv.routes["/"] = static("<html><head><title>x</title></head><body>Hi</body></html>")
        srv.routes["/rss.xml"] = static(wordpress_feed(srv.base, range(2)), "application/rss+xml")
        listing = tmp_path / "feeds.txt"
        listing.write_text(f"{srv.url('/')}\n{srv.url('/feed/')}\n")
        proc = ingest(database_url, "feeds", "import", str(listing))
        assert proc.returncode == 0, proc.stderr
        assert [f["url"] for f in feed_rows(database_url)] == [
            srv.url("/rss.xml"),
            srv.url("/feed/"),
        ]
        assert "common feed path" in proc.stdout
        asked = len(srv.requests)
        again = tmp_path / "again.txt"
        again.write_text(f"{srv.url('/other/')}\n")
        proc = ingest(database_url, "feeds", "import", "--no-discover", str(again))
        assert proc.returncode == 0, proc.stderr
        assert len(srv.requests) == asked
    assert feed_rows(database_url)[-1]["url"] == srv.url("/other/")


def test_feeds_import_finds_the_feeds_of_an_opml_site_outline(
    database_url: str, tmp_path: Path
) -> None:
    """An OPML outline with only an htmlUrl is a site: its feeds are found as `feeds add`
    finds them, instead of the outline being dropped."""
    with LocalServer() as srv:
        srv.routes["/"] = static("<html><head><title>x</title></head><body>Hi</body></html>")
        srv.routes["/rss.xml"] = static(wordpress_feed(srv.base, range(2)), "application/rss+xml")
        opml = tmp_path / "sites.opml"
        opml.write_text(
            '<?xml version="1.0"?><opml version="2.0"><body>'
            f'<outline text="A site" htmlUrl="{srv.url("/")}"/></body></opml>',
            encoding="utf-8",
        )
        proc = ingest(database_url, "feeds", "import", str(opml))
    assert proc.returncode == 0, proc.stderr
    assert [f["url"] for f in feed_rows(database_url)] == [srv.url("/rss.xml")]


def test_feeds_add_checks_urls_of_different_hosts_at_once(database_url: str) -> None:
    """Two home pages on two hosts are checked concurrently: each answers only once the other
    has been asked too (a barrier), so checking one after the other would find neither feed."""
    both = threading.Barrier(2, timeout=20)

    def home(feed: str) -> Callable[[Request], Response]:
        page = static(
            "<html><head><title>x</title>"
            f'<link rel="alternate" type="application/rss+xml" href="{feed}"></head>'
            "<body>Hi</body></html>"
        )

        def handle(req: Request) -> Response:
            both.wait()
            return page(req)

        return handle

    with LocalServer("127.0.0.1") as one, LocalServer("127.0.0.2") as two:
        for srv in (one, two):
            srv.routes["/"] = home(srv.url("/news.xml"))
            srv.routes["/news.xml"] = static(
                wordpress_feed(srv.base, range(1)), "application/rss+xml"
            )
        proc = ingest(database_url, "feeds", "add", one.url("/"), two.url("/"))
    assert proc.returncode == 0, proc.stderr
    assert [f["url"] for f in feed_rows(database_url)] == [
        one.url("/news.xml"),
        two.url("/news.xml"),
    ]


def test_feeds_add_news_sitemap_then_run_once(database_url: str) -> None:
    """A site with no feed but a news sitemap in robots.txt gets that sitemap registered with
    kind 'sitemap', and `ingest run --once` follows it like a feed."""
    with LocalServer() as srv:
        srv.routes["/"] = static("<html><head><title>x</title></head><body>Hi</body></html>")
        srv.routes["/robots.txt"] = static(
            f"User-agent: *\nAllow: /\nSitemap: {srv.base}/sitemap.xml\n", "text/plain"
        )
        srv.routes["/sitemap.xml"] = static(
            "<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
            f"<sitemap><loc>{srv.base}/pages.xml</loc></sitemap>"
            f"<sitemap><loc>{srv.base}/news.xml</loc></sitemap></sitemapindex>",
            "application/xml",
        )
        srv.routes["/pages.xml"] = static(urlset(srv.base, range(0, 3)), "application/xml")
        srv.routes["/news.xml"] = static(
            urlset(srv.base, range(3, 6), news=True), "application/xml"
        )
        for n in range(6):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = ingest(database_url, "feeds", "add", srv.url("/"))
        assert proc.returncode == 0, proc.stderr
        assert [(f["url"], f["kind"]) for f in feed_rows(database_url)] == [
            (srv.url("/news.xml"), "sitemap")
        ]
        assert "kind 'sitemap'" in proc.stdout
        run = ingest(database_url, "run", "--once")
        assert run.returncode == 0, run.stderr
        rows = stored(database_url)
        assert sorted(rows) == [srv.url(f"/a/{n}") for n in range(3, 6)]
        assert rows[srv.url("/a/4")]["title"] == "News story 4"
        assert rows[srv.url("/a/4")]["published_at"] == published(4)
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            feed = conn.execute("SELECT last_status, kind FROM news.feeds").fetchone()
        assert feed == {"last_status": "ok", "kind": "sitemap"}


def test_feeds_add_feed_urls_are_not_fetched(database_url: str, site: Site) -> None:
    """URLs that look like a feed's are registered as given, without a request (as before);
    --no-discover does the same for any URL."""
    proc = ingest(database_url, "feeds", "add", site.url("/feed/"))
    assert proc.returncode == 0
    proc = ingest(database_url, "feeds", "add", "--no-discover", site.url("/"))
    assert proc.returncode == 0
    assert site.server.requests == []
    assert [f["url"] for f in feed_rows(database_url)] == [site.url("/feed/"), site.url("/")]


def test_pages_that_are_not_articles_are_skipped_and_counted(database_url: str, site: Site) -> None:
    """A sitemap that lists the site's about, contact and tag pages beside a story: the page
    that says it is a website, the undated one and the near-empty one are skipped and counted
    (not dated "now" and put on top of the latest articles); `--all-pages` stores them too."""
    filler = " ".join(["We are a small newsroom covering the valley since 1998."] * 10)
    pages = {
        "/about/": f"<meta property='og:type' content='website'><p>{filler}</p>",
        "/contact/": f"<p>{filler}</p>",
        "/tag/floods/": f"<meta property='article:published_time' content='{NOW.isoformat()}'>"
        "<p>Floods</p>",
    }
    for path, inner in pages.items():
        site.server.routes[path] = static(
            f"<html><head><title>{path}</title></head><body><article>{inner}</article></body></html>"
        )
    lastmod = f"<lastmod>{NOW.isoformat()}</lastmod>"
    urls = [*pages, "/a/3"]
    site.server.routes["/pages.xml"] = static(
        "<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        + "".join(f"<url><loc>{site.url(u)}</loc>{lastmod}</url>" for u in urls)
        + "</urlset>",
        "application/xml",
    )
    proc = backfill(database_url, site.url("/pages.xml"))
    assert numbers(site, stored(database_url)) == {3}
    assert set(stored(database_url)) == {site.url("/a/3")}
    assert "3 not articles" in proc.stdout
    everything = backfill(database_url, site.url("/pages.xml"), "--all-pages")
    assert "(resumed)" not in everything.stdout
    assert set(stored(database_url)) == {site.url(u) for u in urls}


# --- sources that overlap -------------------------------------------------------------------------


def history_site(srv: LocalServer, *, pages: int, wordpress: bool, sitemap: range) -> None:
    """A site of `pages * 2` articles (/a/0 newest), two a page of a paged feed (WordPress
    /feed/?paged=N, or RFC 5005 /paged.atom?page=N) linked from its home page, and a sitemap in
    its robots.txt that lists the articles `sitemap` again (as a news sitemap keeps the latest)."""
    base = srv.base
    if wordpress:
        feed = "/feed/"
        srv.routes["/"] = static(home_html(("application/rss+xml", feed)))
        for page in range(1, pages + 1):
            path = feed if page == 1 else f"{feed}?paged={page}"
            numbers = range((page - 1) * 2, page * 2)
            srv.routes[path] = static(wordpress_feed(base, numbers), "application/rss+xml")
    else:
        srv.routes["/"] = static(home_html(("application/atom+xml", "/paged.atom")))
        for page in range(1, pages + 1):
            path = "/paged.atom" if page == 1 else f"/paged.atom?page={page}"
            nxt = f"<link rel='next' href='{base}/paged.atom?page={page + 1}'/>"
            entries = "".join(
                f"<entry><title>Story {n}</title><id>urn:story:{n}</id>"
                f"<link rel='alternate' href='{base}/a/{n}'/>"
                f"<updated>{published(n).isoformat()}</updated>"
                f"<summary>Atom summary of story {n}.</summary></entry>"
                for n in range((page - 1) * 2, page * 2)
            )
            srv.routes[path] = static(
                "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>P</title>"
                f"<id>urn:p</id><updated>{NOW.isoformat()}</updated>"
                f"{nxt if page < pages else ''}{entries}</feed>",
                "application/atom+xml",
            )
    srv.routes["/robots.txt"] = static(
        f"User-agent: *\nAllow: /\nSitemap: {base}/sitemap.xml\n", "text/plain"
    )
    srv.routes["/sitemap.xml"] = static(urlset(base, sitemap, news=True), "application/xml")
    for n in range(pages * 2):
        srv.routes[f"/a/{n}"] = static(article_html(n))


def test_limit_counts_a_url_listed_by_two_sources_once(database_url: str) -> None:
    """--limit N fetches the N newest URLs also when a sitemap lists the feed's newest entries
    again: a URL found twice counts once towards how far the feed's history is walked."""
    with LocalServer() as srv:
        history_site(srv, pages=5, wordpress=False, sitemap=range(0, 6))
        backfill(database_url, srv.url("/"), "--limit", "8")
        hits = {r.path for r in srv.requests}
    assert {f"/a/{n}" for n in range(8)} <= hits
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(8))


def test_wordpress_history_goes_on_past_pages_a_sitemap_listed(database_url: str) -> None:
    """A WordPress feed's ?paged=N history is walked to its end although a news sitemap of the
    site lists the entries of its first pages too: a page whose URLs the sitemap gave first is
    still a page of new entries for the feed, not a server repeating itself."""
    with LocalServer() as srv:
        history_site(srv, pages=4, wordpress=True, sitemap=range(0, 4))
        backfill(database_url, srv.url("/"))
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(8))


def test_wordpress_history_stops_where_the_server_repeats_itself(database_url: str) -> None:
    """A server that ignores ?paged=N answers the first page again: the walk stops there."""
    with LocalServer() as srv:
        history_site(srv, pages=1, wordpress=True, sitemap=range(0, 0))
        first = srv.routes["/feed/"]
        for page in range(2, 6):
            srv.routes[f"/feed/?paged={page}"] = first
        backfill(database_url, srv.url("/feed/"))
        assert len(srv.hits("/feed/?paged=2")) == 1
        assert srv.hits("/feed/?paged=3") == []
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(2))


@pytest.mark.parametrize("wordpress", [True, False])
def test_paged_feed_answering_a_web_page_past_its_last_page_ends_the_history(
    database_url: str, wordpress: bool
) -> None:
    """A site answering the page past the last of its paged feed with a web page and status
    200 (its home page, a "not found" page: a soft 404) ends the history, as a 404 does: no
    failed source, nothing in the summary's failures."""
    with LocalServer() as srv:
        history_site(srv, pages=2, wordpress=wordpress, sitemap=range(0, 0))
        if wordpress:
            srv.routes["/feed/?paged=3"] = static(home_html())
        else:
            page = srv.routes["/paged.atom?page=2"]
            assert callable(page)
            body = page(Request("GET", "/paged.atom?page=2", {})).body
            assert isinstance(body, bytes)
            nxt = f"<link rel='next' href='{srv.url('/paged.atom?page=3')}'/>"
            srv.routes["/paged.atom?page=2"] = static(
                body.decode().replace("<id>urn:p</id>", f"<id>urn:p</id>{nxt}"),
                "application/atom+xml",
            )
            srv.routes["/paged.atom?page=3"] = static(
                "<!DOCTYPE html><html><body><h1>Page not found</h1></body></html>"
            )
        proc = backfill(database_url, srv.url("/"))
        past = "/feed/?paged=3" if wordpress else "/paged.atom?page=3"
        assert len(srv.hits(past)) == 1
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(4))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith(", 0 failed"), sources
    assert (
        scalar(database_url, "SELECT count(*) FROM ingest.backfill_sources WHERE state = 'failed'")
        == 0
    )


def test_paged_feed_page_that_is_broken_xml_is_a_failed_source(database_url: str) -> None:
    """A page of a paged feed that is no feed and no web page (XML cut short mid-history) is
    still a failed source, counted in the summary."""
    with LocalServer() as srv:
        history_site(srv, pages=3, wordpress=True, sitemap=range(0, 0))
        srv.routes["/feed/?paged=2"] = static(
            "<?xml version='1.0'?><rss version='2.0'><channel><title>W</title><item><ti",
            "application/rss+xml",
        )
        proc = backfill(database_url, srv.url("/"))
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(2))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith(", 1 failed"), sources


def test_registered_feed_target_adopts_articles_already_stored(
    database_url: str, site: Site
) -> None:
    """Backfilling a registered feed whose articles an earlier backfill of the site stored
    (without a feed) links its entries to them as the service's poll does, without fetching
    them again: they become the feed's articles and its entries are recorded as seen."""
    urls = "\n".join(site.url(f"/a/{n}") for n in WP) + "\n"
    listed = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=urls)
    assert listed.returncode == 0, listed.stderr
    assert numbers(site, stored(database_url)) == set(WP)
    hits = site.page_hits()
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    backfill(database_url, site.url("/feed/"))
    assert site.page_hits() == hits
    feed_id = scalar(database_url, "SELECT id FROM news.feeds")
    assert {r["feed_id"] for r in stored(database_url).values()} == {feed_id}
    assert scalar(database_url, "SELECT count(*) FROM news.article_feeds") == len(WP)
    assert scalar(database_url, "SELECT count(*) FROM ingest.feed_entries") == len(WP)


def test_a_dry_run_of_a_registered_feed_changes_no_article(database_url: str, site: Site) -> None:
    """A dry run of a registered feed whose articles are already stored links none of its
    entries to them (a dry run stores nothing but its walk); the real run after it, which does
    not walk the feed again, links them as a run without the dry run would."""
    urls = "\n".join(site.url(f"/a/{n}") for n in WP) + "\n"
    listed = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=urls)
    assert listed.returncode == 0, listed.stderr
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    dry = backfill(database_url, site.url("/feed/"), "--dry-run")
    assert dry.stdout == ""
    assert {r["feed_id"] for r in stored(database_url).values()} == {None}
    assert scalar(database_url, "SELECT count(*) FROM ingest.feed_entries") == 0
    hits = site.page_hits()
    real = backfill(database_url, site.url("/feed/"))
    assert f"{len(WP)} skipped ({len(WP)} already known)" in real.stdout
    assert site.page_hits() == hits
    feed_id = scalar(database_url, "SELECT id FROM news.feeds")
    assert {r["feed_id"] for r in stored(database_url).values()} == {feed_id}
    assert scalar(database_url, "SELECT count(*) FROM ingest.feed_entries") == len(WP)


def test_entries_a_dry_run_found_stored_keep_their_update_times_once_linked(
    database_url: str, site: Site
) -> None:
    """A registered feed whose entries carry update times, its articles already stored: a dry
    run finds them, the real run after it links them with their entries' update times, as a
    run without the dry run would; so the feed's next poll takes none of them for an update
    and fetches no page again."""
    atom = "xmlns:atom='http://www.w3.org/2005/Atom'"
    feed = wordpress_feed(site.base, WP).replace(
        "<rss version='2.0'>", f"<rss version='2.0' {atom}>"
    )
    for n in WP:
        updated = (
            f"<atom:updated>{(published(n) + timedelta(minutes=30)).isoformat()}</atom:updated>"
        )
        feed = feed.replace(
            f"<guid isPermaLink='false'>story-{n}</guid>",
            f"<guid isPermaLink='false'>story-{n}</guid>{updated}",
        )
    assert feed.count("<atom:updated>") == len(WP)
    site.server.routes["/feed/"] = static(feed, "application/rss+xml")
    urls = "\n".join(site.url(f"/a/{n}") for n in WP) + "\n"
    listed = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=urls)
    assert listed.returncode == 0, listed.stderr
    assert ingest(database_url, "feeds", "add", site.url("/feed/")).returncode == 0
    assert backfill(database_url, site.url("/feed/"), "--dry-run").stdout == ""
    backfill(database_url, site.url("/feed/"))
    times = scalar(database_url, "SELECT count(entry_updated_at) FROM ingest.feed_entries")
    assert times == len(WP)
    hits = site.page_hits()
    polled = ingest(database_url, "run", "--once")
    assert polled.returncode == 0, polled.stderr
    assert "0 updated" in polled.stdout
    assert site.page_hits() == hits


def test_endless_chain_of_sitemap_indexes_is_not_followed(database_url: str) -> None:
    """A sitemap index that lists an index that lists an index... (each at a URL of its own, so
    no loop a run would notice) is read three indexes deep: the sitemaps listed that deep are
    walked, an index found there is recorded failed with the reason, and the run ends."""
    ns = "xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'"
    with LocalServer() as srv:
        for n in range(100):
            refs = f"<sitemap><loc>{srv.url(f'/sm/{n + 1}.xml')}</loc></sitemap>"
            refs += f"<sitemap><loc>{srv.url(f'/urls/{n}.xml')}</loc></sitemap>"
            srv.routes[f"/sm/{n}.xml"] = static(
                f"<?xml version='1.0'?><sitemapindex {ns}>{refs}</sitemapindex>",
                "application/xml",
            )
            srv.routes[f"/urls/{n}.xml"] = static(urlset(srv.base, range(n, n + 1)))
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/sm/0.xml"))
        indexes = sorted(r.path for r in srv.requests if r.path.startswith("/sm/"))
    assert indexes == ["/sm/0.xml", "/sm/1.xml", "/sm/2.xml", "/sm/3.xml"]
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(3))
    assert "1 failed" in proc.stdout.splitlines()[1]
    error = scalar(database_url, "SELECT error FROM ingest.backfill_sources WHERE state = 'failed'")
    assert "nested" in error


def test_source_failing_for_a_passing_reason_is_walked_again_on_the_next_run(
    database_url: str, site: Site
) -> None:
    """A sitemap answering 503 through every try of a run is recorded failed, and the same
    command run again walks it again (as it tries pages that failed that way again): its
    articles are stored then, and what the first run stored is not fetched again."""
    answers = {"n": 0}
    healthy = site.server.routes["/sitemap-old.xml.gz"]

    def flaky(req: Request) -> Response:
        answers["n"] += 1
        if answers["n"] <= 3:
            return Response(503, b"busy", {"Content-Type": "text/plain"})
        assert isinstance(healthy, Response)
        return healthy

    site.server.routes["/sitemap-old.xml.gz"] = flaky
    first = backfill(database_url, site.url("/sitemap_index.xml"))
    assert answers["n"] == 3
    assert numbers(site, stored(database_url)) == set(POSTS) | set(NEWS)
    assert "1 failed" in first.stdout.splitlines()[1]
    hits = site.page_hits()
    second = backfill(database_url, site.url("/sitemap_index.xml"))
    assert answers["n"] == 4
    assert numbers(site, stored(database_url)) == set(POSTS) | set(OLD) | set(NEWS)
    assert site.page_hits() - hits == Counter({n: 1 for n in OLD})
    assert "0 failed" in second.stdout.splitlines()[1]
    assert len(site.server.hits("/sitemap_index.xml")) == 1


def test_limit_holds_across_a_source_walked_again(database_url: str, site: Site) -> None:
    """--limit N over a run whose failed sitemap is walked again by the next invocation: the
    second invocation fetches only what the first left of the N newest, counting what the
    first fetched."""
    answers = {"n": 0}
    healthy = site.server.routes["/sitemap-posts.xml"]

    def flaky(req: Request) -> Response:
        answers["n"] += 1
        if answers["n"] <= 3:
            return Response(503, b"busy", {"Content-Type": "text/plain"})
        assert callable(healthy)
        return healthy(req)

    site.server.routes["/sitemap-posts.xml"] = flaky
    backfill(database_url, site.url("/sitemap_index.xml"), "--limit", "4")
    assert numbers(site, stored(database_url)) == {18, 19, 20, 21}
    proc = backfill(database_url, site.url("/sitemap_index.xml"), "--limit", "4")
    assert numbers(site, stored(database_url)) == {18, 19, 20, 21}
    assert site.page_hits() == Counter({n: 1 for n in (18, 19, 20, 21)})
    assert "beyond --limit" in proc.stdout


def test_paged_feed_repeating_itself_under_new_next_links_ends_the_walk(
    database_url: str,
) -> None:
    """An RFC 5005 paged feed whose every page is the first one again, with a `rel="next"` to
    a page number of its own each time (no loop a run would notice): the walk stops at the
    first page listing nothing the page before it did not, as for WordPress's ?paged=N."""
    with LocalServer() as srv:
        history_site(srv, pages=1, wordpress=False, sitemap=range(0, 0))
        first = srv.routes["/paged.atom"]
        assert callable(first)
        for page in range(1, 40):
            body = first(Request("GET", "/paged.atom", {})).body
            assert isinstance(body, bytes)
            nxt = f"<link rel='next' href='{srv.url(f'/paged.atom?page={page + 1}')}'/>"
            doc = body.replace(b"<entry>", nxt.encode() + b"<entry>", 1)
            path = "/paged.atom" if page == 1 else f"/paged.atom?page={page}"
            srv.routes[path] = static(doc, "application/atom+xml")
        backfill(database_url, srv.url("/paged.atom"))
        walked = [r.path for r in srv.requests if r.path.startswith("/paged.atom")]
    assert walked == ["/paged.atom", "/paged.atom?page=2"]
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(2))


def test_paged_feed_cycling_through_its_pages_under_new_next_links_ends_the_walk(
    database_url: str,
) -> None:
    """An RFC 5005 paged feed whose two pages come round again and again (the first, the
    second, the first...), each with a `rel="next"` to a page number of its own: the walk
    stops at the first page listing nothing the feed's earlier pages did not, not only the page
    just before it."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        for page in range(1, 40):
            nxt = f"<link rel='next' href='{srv.url(f'/paged.atom?page={page + 1}')}'/>"
            entries = "".join(
                f"<entry><title>Story {n}</title><id>urn:story:{n}</id>"
                f"<link rel='alternate' href='{srv.url(f'/a/{n}')}'/>"
                f"<updated>{published(n).isoformat()}</updated>"
                f"<summary>Atom summary of story {n}.</summary></entry>"
                for n in ((0, 1) if page % 2 else (2, 3))
            )
            path = "/paged.atom" if page == 1 else f"/paged.atom?page={page}"
            srv.routes[path] = static(
                "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>P</title>"
                f"<id>urn:p</id><updated>{NOW.isoformat()}</updated>{nxt}{entries}</feed>",
                "application/atom+xml",
            )
        for n in range(4):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        backfill(database_url, srv.url("/paged.atom"))
        walked = [r.path for r in srv.requests if r.path.startswith("/paged.atom")]
    assert walked == ["/paged.atom", "/paged.atom?page=2", "/paged.atom?page=3"]
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(4))


def test_registered_feed_target_sends_the_feeds_own_headers(database_url: str) -> None:
    """Backfilling a registered feed sends its own User-Agent and headers (`feeds set`) with
    its history pages and article pages, as the service's polls do: a site that answers 403
    without them is backfilled all the same."""
    with LocalServer() as srv:
        history_site(srv, pages=2, wordpress=True, sitemap=range(0, 0))
        guarded = [p for p in srv.routes if p.startswith(("/feed/", "/a/"))]
        for path in guarded:
            route = srv.routes[path]
            assert callable(route)

            def handle(req: Request, route: Callable[[Request], Response] = route) -> Response:
                if req.headers.get("x-api-key") != "k1" or req.headers.get("user-agent") != "Bot/2":
                    return Response(403, b"forbidden", {"Content-Type": "text/plain"})
                return route(req)

            srv.routes[path] = handle
        feed = srv.url("/feed/")
        assert ingest(database_url, "feeds", "add", feed).returncode == 0
        setting = ingest(
            database_url, "feeds", "set", feed, "user_agent=Bot/2", "header.X-Api-Key=k1"
        )
        assert setting.returncode == 0, setting.stderr
        backfill(database_url, feed)
    rows = stored(database_url)
    assert sorted(rows) == sorted(srv.url(f"/a/{n}") for n in range(4))
    assert {r["text_source"] for r in rows.values()} == {"page"}


def test_a_registered_sitemap_moved_to_a_cdn_leaves_the_feeds_credentials_behind(
    database_url: str,
) -> None:
    """A registered sitemap with credential headers (`feeds set header.Authorization=…`,
    `header.Cookie=…`) that redirects to a CDN on another site: the CDN gets neither (nor do
    the pages of the CDN's site it lists), while the pages of the feed's own site get both, as
    its polls send them; a cookie the CDN sets is kept by nobody; no robots.txt request carries
    them."""
    with LocalServer() as srv:
        cdn = srv.base.replace("127.0.0.1", "localhost")
        listed = [f"{cdn}/a/0", f"{cdn}/a/1", srv.url("/a/2"), srv.url("/a/3")]
        body = "".join(f"<url><loc>{u}</loc></url>" for u in listed)
        srv.routes["/sitemap.xml"] = Response(302, b"", {"Location": f"{cdn}/cdn/sitemap.xml"})
        srv.routes["/cdn/sitemap.xml"] = Response(
            200,
            f"<?xml version='1.0'?><urlset {SITEMAP_NS}>{body}</urlset>".encode(),
            {"Content-Type": "application/xml", "Set-Cookie": "cdn=tracked; Path=/"},
        )
        for n in range(4):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        feed = srv.url("/sitemap.xml")
        assert ingest(database_url, "feeds", "add", "--no-discover", feed).returncode == 0
        headers = ("header.Authorization=Bearer s3cret", "header.Cookie=session=s3cret")
        setting = ingest(database_url, "feeds", "set", feed, *headers)
        assert setting.returncode == 0, setting.stderr
        backfill(database_url, feed, "--all-pages")
        sent = [(r.headers.get("host", ""), r.path, r.headers) for r in srv.requests]
    assert len(stored(database_url)) == 4
    for host, path, got in sent:
        own = host.startswith("127.0.0.1") and path != "/robots.txt"
        assert ("authorization" in got, "cookie" in got) == (own, own), (host, path, got)
        if own:
            assert (got["authorization"], got["cookie"]) == ("Bearer s3cret", "session=s3cret")


def full_text_feed(base: str, count: int) -> str:
    """An RSS feed of `count` entries, each carrying its whole story (`content:encoded`)."""
    items = "".join(
        f"<item><title>Story {n}</title><link>{base}/a/{n}</link><guid>{base}/a/{n}</guid>"
        f"<pubDate>{format_datetime(published(n))}</pubDate><description>Teaser {n}."
        "</description><content:encoded><![CDATA["
        + "".join(
            f"<p>Part {k} of story {n}: the council of district {n} voted on item {k} of the "
            f"plan on Tuesday, after residents of street {n * 7 + k} asked for a meeting.</p>"
            for k in range(5)
        )
        + "]]></content:encoded></item>"
        for n in range(count)
    )
    return (
        "<rss version='2.0' xmlns:content='http://purl.org/rss/1.0/modules/content/'><channel>"
        f"<title>T</title><link>{base}/</link>{items}</channel></rss>"
    )


def test_an_entry_whose_page_is_a_consent_wall_is_backfilled_from_its_own_text(
    database_url: str,
) -> None:
    """A feed's entry whose page is a consent wall (titled otherwise, sharing nothing with the
    entry's text) is stored from that text, as the feed's polls store it; the others from
    their pages."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        srv.routes["/feed.xml"] = static(full_text_feed(srv.base, 3), "application/rss+xml")
        for n in (0, 2):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        srv.routes["/a/1"] = static(CONSENT_WALL)
        backfill(database_url, srv.url("/feed.xml"))
        rows = stored(database_url)
        wall = rows.pop(srv.url("/a/1"))
    assert wall["text"].startswith("Part 0 of story 1: the council")
    assert (wall["text_source"], wall["extraction_error"]) == ("feed", OTHER_PAGE)
    assert len(rows) == 2
    assert {r["text_source"] for r in rows.values()} == {"page"}


@pytest.mark.parametrize(("state", "pages"), [("feed", 0), ("proven", 0), ("auto", 4), ("page", 4)])
def test_a_full_text_feed_is_backfilled_from_its_own_texts_as_its_polls_store_them(
    database_url: str, state: str, pages: int
) -> None:
    """Backfilling a registered feed whose polls store its entries from their own text (its
    text mode `feed`, or `auto` once proven full-text) stores its history so too, without a
    request for each page; a feed not proven, or in `page` mode, has its pages fetched."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        srv.routes["/feed.xml"] = static(full_text_feed(srv.base, 4), "application/rss+xml")
        for n in range(4):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        feed = srv.url("/feed.xml")
        assert ingest(database_url, "feeds", "add", "--no-discover", feed).returncode == 0
        mode = "auto" if state == "proven" else state
        assert ingest(database_url, "feeds", "text-mode", feed, mode).returncode == 0
        if state == "proven":
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("UPDATE ingest.feeds SET full_text = true, full_text_words = 60")
        backfill(database_url, feed)
        fetched = sum(1 for r in srv.requests if r.path.startswith("/a/"))
    assert fetched == pages
    rows = stored(database_url)
    assert len(rows) == 4
    expected = "feed" if pages == 0 else "page"
    assert {r["text_source"] for r in rows.values()} == {expected}
    if pages == 0:
        for url, row in rows.items():
            n = url.rsplit("/", 1)[1]
            assert row["text"].startswith(f"Part 0 of story {n}: the council")
            assert row["extraction_error"] is None


@pytest.mark.parametrize("wordpress", [True, False])
def test_paged_feed_history_is_walked_at_most_max_pages_deep(
    database_url: str, wordpress: bool
) -> None:
    """A paged feed whose history goes on and on (each page listing entries of its own, so
    that no page repeats the ones before it) is walked `--max-pages` pages, no more: the page
    beyond is recorded as a skipped source, saying why, not fetched, and the run ends as
    finished, with nothing failed."""
    with LocalServer() as srv:
        history_site(srv, pages=12, wordpress=wordpress, sitemap=range(0, 0))
        feed = "/feed/" if wordpress else "/paged.atom"
        proc = backfill(database_url, srv.url(feed), "--max-pages", "4")
        walked = [r.path for r in srv.requests if r.path.startswith(feed)]
    assert len(walked) == 4
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(8))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith(", 0 failed, 1 skipped (1 feed pages beyond --max-pages 4)"), sources
    assert "not finished" not in proc.stdout
    beyond = "/feed/?paged=5" if wordpress else "/paged.atom?page=5"
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT url, error FROM ingest.backfill_sources WHERE state = 'skipped'"
        ).fetchall()
    assert [url for url, _ in rows] == [srv.url(beyond)]
    assert "--max-pages 4" in rows[0][1]


def test_paged_feed_branching_into_two_histories_a_page_is_walked_max_pages_in_all(
    database_url: str,
) -> None:
    """A feed whose every page links two further pages of its own (`rel="next"` and
    `rel="prev-archive"`, each to a page never seen), a history that doubles at each step:
    `--max-pages` bounds the pages of the whole walk, not only the depth of each branch."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        for page in range(1, 300):
            links = (
                f"<link rel='next' href='{srv.url(f'/tree.atom?p={2 * page}')}'/>"
                f"<link rel='prev-archive' href='{srv.url(f'/tree.atom?p={2 * page + 1}')}'/>"
            )
            entry = (
                f"<entry><title>Story {page}</title><id>urn:story:{page}</id>"
                f"<link rel='alternate' href='{srv.url(f'/a/{page}')}'/>"
                f"<updated>{NOW.isoformat()}</updated><summary>Story {page}.</summary></entry>"
            )
            path = "/tree.atom" if page == 1 else f"/tree.atom?p={page}"
            srv.routes[path] = static(
                "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>T</title>"
                f"<id>urn:t</id><updated>{NOW.isoformat()}</updated>{links}{entry}</feed>",
                "application/atom+xml",
            )
        backfill(database_url, srv.url("/tree.atom"), "--max-pages", "6", "--dry-run")
        walked = [r.path for r in srv.requests if r.path.startswith("/tree.atom")]
    assert 1 < len(walked) <= 6, walked
    skipped = "SELECT count(*) FROM ingest.backfill_sources WHERE state = 'skipped'"
    assert scalar(database_url, skipped) > 0


def test_sitemap_followed_as_a_feed_keeps_the_urls_of_its_own_site(database_url: str) -> None:
    """A sitemap registered as a feed (kind 'sitemap') listing pages of another site beside
    its own: its polls store its own site's, and neither fetch nor store the others, as a
    backfill of the same sitemap skips them (`sitemaps.on_site`)."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        other = srv.base.replace("127.0.0.1", "localhost")
        foreign = "".join(
            f"<url><loc>{other}/x/{n}</loc><news:news><news:publication>"
            "<news:name>Other</news:name><news:language>en</news:language></news:publication>"
            f"<news:publication_date>{published(n).isoformat()}</news:publication_date>"
            f"<news:title>Other story {n}</news:title></news:news></url>"
            for n in range(2)
        )
        srv.routes["/news-sitemap.xml"] = static(
            urlset(srv.base, range(0, 2), news=True).replace("</urlset>", foreign + "</urlset>"),
            "application/xml",
        )
        for n in range(2):
            srv.routes[f"/a/{n}"] = static(article_html(n))
            srv.routes[f"/x/{n}"] = static(article_html(n + 10))
        proc = ingest(database_url, "feeds", "add", srv.url("/news-sitemap.xml"))
        assert proc.returncode == 0, proc.stderr
        assert [f["kind"] for f in feed_rows(database_url)] == ["sitemap"]
        run = ingest(database_url, "run", "--once")
        assert run.returncode == 0, run.stderr
        assert srv.hits("/x/0") == srv.hits("/x/1") == []
    assert sorted(stored(database_url)) == [srv.url("/a/0"), srv.url("/a/1")]
    # Said, not silent: a sitemap hosted elsewhere whose site is not recorded would keep none.
    (said,) = events(run.stderr + run.stdout, "sitemap_urls_elsewhere")
    assert (said["level"], said["left_out"], said["kept"]) == ("info", 2, 2)


def cdn_site(srv: LocalServer) -> str:
    """A site (127.0.0.1) whose robots.txt names a news sitemap hosted on another host
    (`localhost`, as a CDN serves one) listing the site's articles /a/0-2; returns the
    sitemap's URL."""
    cdn = srv.base.replace("127.0.0.1", "localhost")
    srv.routes["/"] = static(
        "<!DOCTYPE html><html><head><title>A</title></head><body></body></html>"
    )
    srv.routes["/robots.txt"] = static(
        f"User-agent: *\nAllow: /\nSitemap: {cdn}/cdn/sitemap-index.xml\n", "text/plain"
    )
    srv.routes["/cdn/sitemap-index.xml"] = static(
        f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>"
        f"<sitemap><loc>{cdn}/cdn/news.xml</loc></sitemap></sitemapindex>",
        "application/xml",
    )
    srv.routes["/cdn/news.xml"] = static(urlset(srv.base, range(0, 3), news=True))
    for n in range(3):
        srv.routes[f"/a/{n}"] = static(article_html(n))
    return f"{cdn}/cdn/news.xml"


def test_sitemap_hosted_elsewhere_named_by_robots_txt_lists_the_sites_urls(
    database_url: str,
) -> None:
    """sitemaps.org's cross-submission: a sitemap hosted on another host (a CDN) that the
    site's robots.txt names may list the site's URLs; a backfill of the site stores them."""
    with LocalServer() as srv:
        cdn_site(srv)
        proc = backfill(database_url, srv.url("/"))
    assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)], proc.stdout
    assert "on other sites" not in proc.stdout


def test_sitemap_hosted_elsewhere_followed_as_a_feed_lists_the_sites_urls(
    database_url: str,
) -> None:
    """The same CDN-hosted news sitemap, registered by `feeds add` for the site whose
    robots.txt names it: its polls store the site's URLs it lists."""
    with LocalServer() as srv:
        sitemap = cdn_site(srv)
        proc = ingest(database_url, "feeds", "add", srv.url("/"))
        assert proc.returncode == 0, proc.stderr
        assert [(f["url"], f["kind"]) for f in feed_rows(database_url)] == [(sitemap, "sitemap")]
        run = ingest(database_url, "run", "--once")
        assert run.returncode == 0, run.stderr
    assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)]


def test_a_sitemap_hosted_elsewhere_registered_without_its_site_is_a_warning(
    database_url: str,
) -> None:
    """The CDN-hosted news sitemap registered through the CDN's own index, so that nothing says
    which site it lists: its polls keep none of the site's URLs, and say so at each poll with a
    warning (`feeds add` of the site that names it gives it that site)."""
    with LocalServer() as srv:
        sitemap = cdn_site(srv)
        index = sitemap.replace("/news.xml", "/sitemap-index.xml")
        proc = ingest(database_url, "feeds", "add", index)
        assert proc.returncode == 0, proc.stderr
        assert [(f["url"], f["kind"]) for f in feed_rows(database_url)] == [(sitemap, "sitemap")]
        run = ingest(database_url, "run", "--once")
        assert run.returncode == 0, run.stderr
        assert srv.hits("/a/0") == []
    (said,) = events(run.stderr + run.stdout, "sitemap_urls_elsewhere")
    assert (said["level"], said["left_out"], said["kept"]) == ("warning", 3, 0)
    assert not stored(database_url)


def test_feeds_add_sitemap_index_opens_the_sitemaps_of_its_own_site_only(
    database_url: str,
) -> None:
    """A sitemap index given to `feeds add` listing a news sitemap of another site: that one is
    not registered for it (an index lists the sitemaps of its own site, `sitemaps.on_site`, as
    a backfill reads it); its own site's news sitemap is."""
    with LocalServer() as srv:
        other = srv.base.replace("127.0.0.1", "localhost")
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        srv.routes["/sitemap_index.xml"] = static(
            f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>"
            f"<sitemap><loc>{other}/news.xml</loc></sitemap>"
            f"<sitemap><loc>{srv.base}/own-news.xml</loc></sitemap></sitemapindex>",
            "application/xml",
        )
        srv.routes["/news.xml"] = static(urlset(other, range(0, 2), news=True))
        srv.routes["/own-news.xml"] = static(urlset(srv.base, range(0, 2), news=True))
        proc = ingest(database_url, "feeds", "add", srv.url("/sitemap_index.xml"))
        assert proc.returncode == 0, proc.stderr
        assert srv.hits("/news.xml") == []
    assert [(f["url"], f["kind"]) for f in feed_rows(database_url)] == [
        (srv.url("/own-news.xml"), "sitemap")
    ]


def test_feeds_add_probes_a_sitemap_listed_twice_once(database_url: str) -> None:
    """A site's robots.txt naming its sitemaps one by one and, after them, the index that lists
    them again (with its news sitemap, whose URL does not say "news"): `feeds add` of its home
    page fetches each sitemap once, however often it is listed and spelled (a fragment, the
    dot segments), so that its probes (`MAX_NEWS_SITEMAP_PROBES`) reach the news sitemap,
    registered. Probed again, the sitemaps listed twice used the probes up: nothing found,
    the home page registered as given."""
    with LocalServer() as srv:
        srv.routes["/"] = static(
            "<!DOCTYPE html><html><head><title>A</title></head><body></body></html>"
        )
        srv.routes["/robots.txt"] = static(
            "User-agent: *\nAllow: /\n"
            + "".join(f"Sitemap: {srv.url(f'/s/{n}.xml')}\n" for n in range(3))
            + f"Sitemap: {srv.url('/sitemap_index.xml')}\n",
            "text/plain",
        )
        srv.routes["/sitemap_index.xml"] = static(
            f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>"
            f"<sitemap><loc>{srv.url('/s/0.xml')}#top</loc></sitemap>"
            f"<sitemap><loc>{srv.base}/x/../s/1.xml</loc></sitemap>"
            f"<sitemap><loc>{srv.url('/s/2.xml')}</loc></sitemap>"
            f"<sitemap><loc>{srv.url('/s/google.xml')}</loc></sitemap></sitemapindex>",
            "application/xml",
        )
        for n in range(3):
            srv.routes[f"/s/{n}.xml"] = static(urlset(srv.base, range(n, n + 1)))
        srv.routes["/s/google.xml"] = static(urlset(srv.base, range(0, 2), news=True))
        proc = ingest(database_url, "feeds", "add", srv.url("/"))
        assert proc.returncode == 0, proc.stderr
        assert [len(srv.hits(f"/s/{n}.xml")) for n in range(3)] == [1, 1, 1]
    assert [(f["url"], f["kind"]) for f in feed_rows(database_url)] == [
        (srv.url("/s/google.xml"), "sitemap")
    ]


def test_sitemap_index_listing_more_sitemaps_than_max_sitemaps_is_walked_to_the_cap(
    database_url: str,
) -> None:
    """A sitemap index listing sitemap after sitemap (each of a URL of its own, each listing
    pages of its own: a site fabricating them would have millions queued) has its newest
    walked up to `--max-sitemaps` sitemaps in all, the index included; the others are neither
    fetched nor queued, the summary counts them, and the run ends."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        refs = "".join(
            f"<sitemap><loc>{srv.url(f'/s/{n}.xml')}</loc>"
            f"<lastmod>{published(n).isoformat()}</lastmod></sitemap>"
            for n in range(30)
        )
        srv.routes["/index.xml"] = static(
            f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>{refs}</sitemapindex>",
            "application/xml",
        )
        for n in range(30):
            srv.routes[f"/s/{n}.xml"] = static(urlset(srv.base, range(n, n + 1)))
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/index.xml"), "--max-sitemaps", "5")
        walked = sorted(r.path for r in srv.requests if r.path.startswith("/s/"))
    assert walked == [f"/s/{n}.xml" for n in range(4)]
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(4))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith("; 26 sitemaps beyond --max-sitemaps 5 skipped"), sources
    assert "not finished" not in proc.stdout


def test_a_sitemap_listed_twice_takes_one_place_under_max_sitemaps(database_url: str) -> None:
    """An index listing one sitemap twice (and two indexes listing one sitemap, and an index
    listing the index that listed it: a loop): each sitemap is walked once and takes one place
    under `--max-sitemaps`, so that the others are walked while there is room, and none
    already in the run is counted beyond it."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")

        def index(*numbers: int | str) -> Response:
            refs = "".join(
                f"<sitemap><loc>{srv.url(f'/s/{n}.xml' if isinstance(n, int) else n)}</loc>"
                + (f"<lastmod>{published(n).isoformat()}</lastmod>" if isinstance(n, int) else "")
                + "</sitemap>"
                for n in numbers
            )
            body = f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>{refs}</sitemapindex>"
            return static(body, "application/xml")

        # /index.xml: 0 twice, 1, and /other.xml; /other.xml: 0 again, 2, and /index.xml back.
        srv.routes["/index.xml"] = index(0, 0, 1, "/other.xml")
        srv.routes["/other.xml"] = index(0, 2, "/index.xml")
        for n in range(3):
            srv.routes[f"/s/{n}.xml"] = static(urlset(srv.base, range(n, n + 1)))
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/index.xml"), "--max-sitemaps", "5")
        walked = Counter(r.path for r in srv.requests if r.path.endswith(".xml"))
    assert walked == {"/index.xml": 1, "/other.xml": 1, "/s/0.xml": 1, "/s/1.xml": 1, "/s/2.xml": 1}
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(3))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources == "  sources: 5 (0 feed pages, 5 sitemaps), 0 failed", proc.stdout


def test_robots_txt_listing_more_sitemaps_than_max_sitemaps_is_walked_to_the_cap(
    database_url: str,
) -> None:
    """A site whose robots.txt names sitemap after sitemap (as many as its size allows, each
    listing pages of its own): the first `--max-sitemaps` in file order are walked, the others
    are neither fetched nor queued, the summary counts them, and the run ends."""
    with LocalServer() as srv:
        srv.routes["/"] = static(
            "<!DOCTYPE html><html><head><title>A</title></head><body></body></html>"
        )
        listed = "".join(f"Sitemap: {srv.url(f'/s/{n}.xml')}\n" for n in range(8))
        srv.routes["/robots.txt"] = static(f"User-agent: *\nAllow: /\n{listed}", "text/plain")
        for n in range(8):
            srv.routes[f"/s/{n}.xml"] = static(urlset(srv.base, range(n, n + 1)))
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/"), "--max-sitemaps", "3")
        walked = sorted(r.path for r in srv.requests if r.path.startswith("/s/"))
    assert proc.returncode == 0, proc.stderr
    assert walked == [f"/s/{n}.xml" for n in range(3)]
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(3))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources.endswith("; 5 sitemaps beyond --max-sitemaps 3 skipped"), sources
    assert "not finished" not in proc.stdout


def test_feeds_add_again_gives_a_sitemap_registered_without_its_site_the_site_that_named_it(
    database_url: str,
) -> None:
    """A CDN-hosted news sitemap registered before its site was recorded (`site_url` NULL):
    `feeds add` of the site again says it is present and records the site, so that its polls
    keep the site's URLs."""
    with LocalServer() as srv:
        sitemap = cdn_site(srv)
        ok = ingest(database_url, "feeds", "add", srv.url("/"))
        assert ok.returncode == 0, ok.stderr
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE ingest.feeds SET site_url = NULL")
        again = ingest(database_url, "feeds", "add", srv.url("/"))
        assert again.returncode == 0, again.stderr
        assert f"present {sitemap}" in again.stdout
        assert "0 added, 1 already present" in again.stdout
        assert scalar(database_url, "SELECT site_url FROM ingest.feeds") == srv.url("/")
        run = ingest(database_url, "run", "--once")
        assert run.returncode == 0, run.stderr
    assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)]


def test_sitemap_hosted_elsewhere_named_by_a_moved_sites_robots_txt_lists_its_urls(
    database_url: str,
) -> None:
    """TARGET redirects to the site's new domain, whose robots.txt names a sitemap hosted
    elsewhere (a CDN) listing the new domain's URLs: they are the site's, in this invocation
    and in the next, which continues the run without fetching TARGET again."""
    with LocalServer() as srv, LocalServer("127.0.0.2") as cdn:
        sitemap = cdn.url("/news.xml")
        cdn.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        cdn.routes["/index.xml"] = static(
            f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>"
            f"<sitemap><loc>{sitemap}</loc></sitemap></sitemapindex>",
            "application/xml",
        )
        cdn.routes["/news.xml"] = static(urlset(srv.base, range(0, 3), news=True))
        srv.routes["/"] = static("<!DOCTYPE html><html><body>Moved here</body></html>")
        srv.routes["/robots.txt"] = static(
            f"User-agent: *\nAllow: /\nSitemap: {cdn.url('/index.xml')}\n", "text/plain"
        )
        srv.routes["/old"] = Response(301, b"", {"Location": srv.url("/")})
        for n in range(3):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        old = srv.url("/old").replace("127.0.0.1", "localhost")
        # The first invocation stops before the sitemap listing the URLs is walked.
        cdn.routes["/news.xml"], news = Response(503, b"busy", {}), cdn.routes["/news.xml"]
        backfill(database_url, old)
        cdn.routes["/news.xml"] = news
        proc = backfill(database_url, old)
    assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)], proc.stdout
    assert "on other sites" not in proc.stdout


def test_backfill_of_a_sitemap_followed_as_a_feed_keeps_the_urls_its_polls_keep(
    database_url: str,
) -> None:
    """A CDN-hosted news sitemap registered for the site whose robots.txt names it, given to
    `ingest backfill` as TARGET: its URLs of that site are backfilled, as its polls store them
    (the feed's `site_url` names it, by the one rule `sitemaps.sitemap_sites`)."""
    with LocalServer() as srv:
        sitemap = cdn_site(srv)
        added = ingest(database_url, "feeds", "add", srv.url("/"))
        assert added.returncode == 0, added.stderr
        proc = backfill(database_url, sitemap)
    assert sorted(stored(database_url)) == [srv.url(f"/a/{n}") for n in range(3)], proc.stdout


def test_a_failure_quoting_a_url_is_recorded_and_shown_without_its_credentials(
    database_url: str, server: LocalServer
) -> None:
    """A page redirected to a path its robots.txt disallows, by a URL carrying a user,
    password and token: the failure the backfill records (ingest.backfill_urls.error) and
    prints names that URL as stored error texts do (`redact_text`), nothing of the secret."""
    secret = "S3cr3tV4lue"
    server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /private\n", "text/plain")
    target = server.url(f"/private/a?token={secret}").replace("://", f"://reader:{secret}@")
    server.routes["/a/1"] = Response(302, b"", {"Location": target})
    proc = ingest(database_url, "backfill", "--rate", "0", "--urls", "-", stdin=server.url("/a/1"))
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(database_url) as conn:
        errors = [r[0] for r in conn.execute("SELECT error FROM ingest.backfill_urls")]
    assert errors == [f"robots.txt: disallowed (redirect to {server.url('/private/a?token=***')})"]
    assert f"failed: {server.url('/a/1')}: {errors[0]}" in proc.stdout
    assert secret not in proc.stdout + proc.stderr


def test_a_failure_recorded_with_its_credentials_before_is_shown_without_them(
    database_url: str, server: LocalServer
) -> None:
    """A run begun by an earlier version, its failure recorded with the URL it quotes as it was
    (user, password, token): the failed line the next invocation prints names that URL as
    stored error texts do (`redact_text`), nothing of the secret."""
    secret = "S3cr3tV4lue"
    server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /private\n", "text/plain")
    target = server.url(f"/private/a?token={secret}").replace("://", f"://reader:{secret}@")
    server.routes["/a/1"] = Response(302, b"", {"Location": target})
    args = ("backfill", "--rate", "0", "--urls", "-")
    first = ingest(database_url, *args, stdin=server.url("/a/1"))
    assert first.returncode == 0, first.stderr
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.backfill_urls SET error = %s",
            (f"robots.txt: disallowed (redirect to {target})",),
        )
    proc = ingest(database_url, *args, stdin=server.url("/a/1"))
    assert proc.returncode == 0, proc.stderr
    shown = f"robots.txt: disallowed (redirect to {server.url('/private/a?token=***')})"
    assert f"failed: {server.url('/a/1')}: {shown}" in proc.stdout
    assert secret not in proc.stdout + proc.stderr


def test_a_sitemap_index_listed_at_the_url_it_redirected_to_is_walked_once(
    database_url: str,
) -> None:
    """TARGET a sitemap index's old address, redirected to its new one, where it lists itself
    (its new address) beside a sitemap and another index, which lists it back (its new
    address too): the index is walked once, its new address taken for the index already
    walked, not a sitemap of its own, so that the summary counts it once."""
    with LocalServer() as srv:
        srv.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
        srv.routes["/sitemap.xml"] = Response(301, b"", {"Location": srv.url("/index.xml")})

        def index(*paths: str) -> Response:
            refs = "".join(f"<sitemap><loc>{srv.url(path)}</loc></sitemap>" for path in paths)
            body = f"<?xml version='1.0'?><sitemapindex {SITEMAP_NS}>{refs}</sitemapindex>"
            return static(body, "application/xml")

        srv.routes["/index.xml"] = index("/index.xml", "/s/0.xml", "/other.xml")
        srv.routes["/other.xml"] = index("/index.xml", "/s/1.xml")
        for n in range(2):
            srv.routes[f"/s/{n}.xml"] = static(urlset(srv.base, range(n, n + 1)))
            srv.routes[f"/a/{n}"] = static(article_html(n))
        proc = backfill(database_url, srv.url("/sitemap.xml"))
        walked = Counter(r.path for r in srv.requests if r.path.endswith(".xml"))
    assert walked == {
        "/sitemap.xml": 1,
        "/index.xml": 1,
        "/other.xml": 1,
        "/s/0.xml": 1,
        "/s/1.xml": 1,
    }
    assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(2))
    (sources,) = (line for line in proc.stdout.splitlines() if "sources:" in line)
    assert sources == "  sources: 4 (0 feed pages, 4 sitemaps), 0 failed", proc.stdout


def _unavailable_once(site: Site, path: str) -> dict[str, int]:
    """`path` answers 503 the first time it is asked for, as it did before after that;
    returns the count of those 503s."""
    route = site.server.routes[path]
    failed = {"n": 0}

    def handle(req: Request) -> Response:
        if not failed["n"]:
            failed["n"] += 1
            return Response(503, b"busy")
        return route(req) if callable(route) else route

    site.server.routes[path] = handle
    return failed


def test_target_failing_once_for_a_passing_reason_is_tried_again(
    database_url: str, site: Site
) -> None:
    """TARGET answering 503 once (a site busy for a moment) is tried again, as the sources
    it leads to are, instead of the backfill refused as unreachable."""
    failed = _unavailable_once(site, "/sitemap_index.xml")
    proc = ingest(database_url, "backfill", "--rate", "0", site.url("/sitemap_index.xml"))
    assert proc.returncode == 0, proc.stderr
    assert failed["n"] == 1
    assert numbers(site, stored(database_url)) == set(POSTS) | set(OLD) | set(NEWS)


def test_a_feed_a_home_page_links_failing_once_for_a_passing_reason_is_walked(
    database_url: str, site: Site
) -> None:
    """A home page linking a feed that answers 503 once, when it is checked: it is tried
    again and walked, its history stored, instead of left out of the run's sources for good
    (the run seeded without it: no later invocation walks it)."""
    failed = _unavailable_once(site, "/paged.atom")
    backfill(database_url, site.url("/"))
    assert failed["n"] == 1
    assert numbers(site, stored(database_url)) == set(range(ARTICLES))


def test_a_feed_a_home_page_links_failing_every_try_is_a_failed_source_walked_next_time(
    database_url: str, site: Site
) -> None:
    """A home page linking a feed that answers 503 through every try when it is checked: the
    summary counts it failed and names it, and the same command run again walks it and
    stores its history, instead of the feed left out of the run unseen and for good."""
    healthy = site.server.routes["/paged.atom"]
    down = {"on": True}

    def handle(req: Request) -> Response:
        if down["on"]:
            return Response(503, b"busy")
        return healthy(req) if callable(healthy) else healthy

    site.server.routes["/paged.atom"] = handle
    first = backfill(database_url, site.url("/"))
    assert len(site.server.hits("/paged.atom")) == 3
    assert numbers(site, stored(database_url)) == set(range(ARTICLES)) - set(ATOM)
    (sources,) = (line for line in first.stdout.splitlines() if "sources:" in line)
    assert sources.endswith(", 1 failed"), first.stdout
    assert f"failed: {site.url('/paged.atom')}: HTTP 503" in first.stdout
    down["on"] = False
    second = backfill(database_url, site.url("/"))
    assert numbers(site, stored(database_url)) == set(range(ARTICLES))
    (sources,) = (line for line in second.stdout.splitlines() if "sources:" in line)
    assert sources.endswith(", 0 failed"), second.stdout


def test_a_feed_on_a_host_held_longer_than_the_run_waits_is_left_for_the_next_invocation(
    database_url: str,
) -> None:
    """A home page linking a feed on another host that answers 429 with `Retry-After: 3600`
    when it is checked: the site's sitemap is walked, the feed is a failed source, unsent,
    the run not finished, and the same command run again walks it."""
    with LocalServer() as srv:
        feed_url = srv.base.replace("127.0.0.1", "localhost") + "/x/news"
        busy = {"n": 0}

        def feed(req: Request) -> Response:
            if req.headers.get("host", "").startswith("localhost") and not busy["n"]:
                busy["n"] += 1
                return Response(429, b"slow down", {"Retry-After": "3600"})
            return Response(
                200,
                wordpress_feed(srv.base, range(0, 2)).encode(),
                {"Content-Type": "application/rss+xml"},
            )

        srv.routes["/x/news"] = feed
        srv.routes["/"] = static(home_html(("application/rss+xml", feed_url)))
        srv.routes["/robots.txt"] = static(
            f"User-agent: *\nSitemap: {srv.url('/sitemap.xml')}\n", "text/plain"
        )
        srv.routes["/sitemap.xml"] = static(urlset(srv.base, range(2, 4)), "application/xml")
        for n in range(4):
            srv.routes[f"/a/{n}"] = static(article_html(n))
        first = ingest(database_url, "backfill", "--rate", "0", srv.url("/"))
        assert first.returncode == 0, first.stderr
        assert sorted(stored(database_url)) == [srv.url("/a/2"), srv.url("/a/3")]
        assert len(srv.hits("/x/news")) == 1
        (sources,) = (line for line in first.stdout.splitlines() if "sources:" in line)
        assert sources.endswith(", 1 failed"), first.stdout
        assert f"failed: {feed_url}: held" in first.stdout
        assert "not finished: run the same command again" in first.stdout
        second = backfill(database_url, srv.url("/"))
        assert sorted(stored(database_url)) == sorted(srv.url(f"/a/{n}") for n in range(4))
        assert "not finished" not in second.stdout


def test_a_site_held_by_its_retry_after_while_its_sources_are_found_says_so_and_resumes(
    database_url: str, site: Site
) -> None:
    """A home page whose first feed answers 429 with `Retry-After: 3600` when it is checked,
    holding back every other request to its host: exit 1, one line saying the host is held
    and until when, instead of "no feed or sitemap found"; the same command run again (its
    hold over) walks every source."""
    busy = {"n": 0}
    feed = site.server.routes["/feed/"]

    def handle(req: Request) -> Response:
        if not busy["n"]:
            busy["n"] += 1
            return Response(429, b"slow down", {"Retry-After": "3600"})
        return feed(req) if callable(feed) else feed

    site.server.routes["/feed/"] = handle
    before = datetime.now(UTC)
    first = ingest(
        database_url, "backfill", "--rate", "0", site.url("/"), INGEST_MAX_CRAWL_DELAY="1"
    )
    assert first.returncode == 1, first.stderr
    errors = [ln for ln in first.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1, first.stderr
    assert "no feed or sitemap found" not in errors[0]
    assert "held" in errors[0]
    until = datetime.fromisoformat(errors[0].split(" until ")[1].split()[0].rstrip(":;,"))
    assert before + timedelta(seconds=3500) <= until <= before + timedelta(seconds=3700)
    assert "run the same command again" in errors[0]
    backfill(database_url, site.url("/"))
    assert numbers(site, stored(database_url)) == set(range(ARTICLES))


def test_a_target_held_by_its_retry_after_says_until_when(database_url: str) -> None:
    """TARGET answering 429 with `Retry-After: 3600`: exit 1, one line saying its host is
    held and until when, and to run the same command again then."""
    with LocalServer() as srv:
        srv.routes["/feed.xml"] = Response(429, b"slow down", {"Retry-After": "3600"})
        proc = ingest(
            database_url,
            "backfill",
            "--rate",
            "0",
            srv.url("/feed.xml"),
            INGEST_MAX_CRAWL_DELAY="1",
        )
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1, proc.stderr
    assert " held " in errors[0], errors[0]
    assert " until " in errors[0], errors[0]
    assert "run the same command again" in errors[0]


def test_progress_lines_count_the_sources_skipped_and_a_resumed_run_logs_no_empty_discovery(
    database_url: str, site: Site
) -> None:
    """`backfill_progress` and `backfill_done` carry `sources_skipped` (feed pages beyond
    --max-pages); a run resumed after its discovery logs no discover line (all zeros, a
    phase it did not run), only its fetch phase."""
    first = backfill(database_url, site.url("/paged.atom"), "--max-pages", "1", "--dry-run")
    (done,) = events(first.stderr, "backfill_done")
    assert done["sources_skipped"] == 1
    discover = [e for e in events(first.stderr, "backfill_progress") if e["phase"] == "discover"]
    assert discover
    assert discover[-1]["sources_skipped"] == 1
    second = backfill(database_url, site.url("/paged.atom"), "--max-pages", "1")
    assert "(resumed)" in second.stdout
    phases = [e["phase"] for e in events(second.stderr, "backfill_progress")]
    assert phases
    assert set(phases) == {"fetch"}, phases


def test_a_dry_run_lists_the_pages_an_earlier_invocation_left_failed_to_try_again(
    database_url: str, site: Site
) -> None:
    """A dry run of a backfill whose earlier invocation left a page failed for a passing
    reason (503) lists that page among those a run would fetch, as the run then does,
    instead of only the pages still queued."""
    answers = {"n": 0}

    def flaky(req: Request) -> Response:
        answers["n"] += 1
        if answers["n"] == 1:
            return Response(503, b"busy", {"Content-Type": "text/plain"})
        return Response(200, article_html(4).encode(), {"Content-Type": "text/html"})

    site.server.routes["/a/4"] = flaky
    urls = "\n".join(site.url(f"/a/{n}") for n in (3, 4, 5)) + "\n"
    args = ["backfill", "--rate", "0", "--urls", "-"]
    first = ingest(database_url, *args, stdin=urls, INGEST_PAGE_ATTEMPTS="1")
    assert first.returncode == 0, first.stderr
    assert numbers(site, stored(database_url)) == {3, 5}
    dry = ingest(database_url, *args, "--dry-run", stdin=urls)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == [site.url("/a/4")]
    assert "1 URL(s) would be fetched" in dry.stderr
    assert answers["n"] == 1
    ingest(database_url, *args, stdin=urls)
    assert numbers(site, stored(database_url)) == {3, 4, 5}


def test_a_site_whose_robots_txt_fails_every_try_is_not_begun_without_its_sitemaps(
    database_url: str, site: Site
) -> None:
    """A home page whose robots.txt, which names its sitemaps, answers 503 through every try:
    exit 1, one line saying it could not be read, nothing recorded, instead of a run seeded
    with its feeds alone, its sitemaps never walked by it; the same command run again (the
    file readable) walks every source."""
    healthy = site.server.routes["/robots.txt"]
    down = {"on": True}

    def handle(req: Request) -> Response:
        if down["on"]:
            return Response(503, b"busy")
        return healthy(req) if callable(healthy) else healthy

    site.server.routes["/robots.txt"] = handle
    first = ingest(database_url, "backfill", "--rate", "0", site.url("/"))
    assert first.returncode == 1, first.stderr
    errors = [ln for ln in first.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1, first.stderr
    assert "robots.txt" in errors[0]
    assert "run the same command again" in errors[0]
    assert site.page_hits() == Counter()
    down["on"] = False
    backfill(database_url, site.url("/"))
    assert numbers(site, stored(database_url)) == set(range(ARTICLES))
