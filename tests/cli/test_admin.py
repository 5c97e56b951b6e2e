"""The day-two commands (issue 14): `feeds list/show/enable/disable/export`, `articles` and
`db url`, as subprocesses against a fresh database and a loopback site; and the pure
formatting of ingest.admin."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest import admin
from tests.cli.test_commands import _env, _feed_urls
from tests.cli.test_commands import ingest as _ingest
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.paths import ROOT
from tests.support.pipelines import PARAGRAPH, article_page, rss
from tests.support.processes import wait_until
from tests.support.relay import SilentRelay
from tests.support.secret_urls import SECRET

NOW = datetime.now(UTC).replace(microsecond=0)
LOCAL = {"INGEST_ALLOW_PRIVATE_NETWORKS": "true", "INGEST_HOST_DELAY": "0"}


def ingest(dsn: str, *args: str) -> Any:
    return _ingest(dsn, *args, **LOCAL)


def ok(dsn: str, *args: str) -> str:
    done = ingest(dsn, *args)
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def _site(server: LocalServer, name: str, stories: int) -> str:
    """A feed of `stories` stories whose pages answer; returns the feed's URL."""
    items = ""
    for n in range(stories):
        path = f"/{name}/story-{n}"
        server.routes[path] = static(article_page(f"{name} story {n}"))
        when = format_datetime(NOW - timedelta(hours=n + 1))
        items += (
            f"<item><title>{name} story {n}</title><link>{server.url(path)}</link>"
            f"<guid>{name}-{n}</guid><pubDate>{when}</pubDate>"
            f"<description>{PARAGRAPH}</description></item>"
        )
    server.routes[f"/{name}.xml"] = static(
        rss(items, channel=f"<link>{server.url('/')}</link>"), "application/rss+xml"
    )
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    return server.url(f"/{name}.xml")


@pytest.mark.integration
def test_a_feed_s_user_info_is_registered_and_sent_as_written(
    database_url: str, server: LocalServer
) -> None:
    """`feeds add https://Reader:S3cret@host/feed` (a token with capitals as the user or
    password): the feed is registered with the user-info as written and polled with it as
    Basic authentication, so the feed answers; `feeds show` names it without the user-info."""
    feed = _site(server, "private", 1)
    secret = feed.replace("://", "://Reader:S3cret@")
    served = server.routes["/private.xml"]

    def private(req: Request) -> Response:
        if req.headers.get("authorization") != "Basic UmVhZGVyOlMzY3JldA==":  # Reader:S3cret
            return Response(401, b"denied", {"Content-Type": "text/plain"})
        return served(req) if callable(served) else served

    server.routes["/private.xml"] = private
    ok(database_url, "feeds", "add", "--no-discover", secret)
    ok(database_url, "run", "--once", "--all")
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT url, last_status FROM ingest.feeds").fetchone()
    assert row == (secret, "ok")
    assert ok(database_url, "feeds", "show", secret).splitlines()[0].split() == ["url:", feed]


@pytest.mark.integration
def test_feeds_import_registers_each_feed_once_it_is_checked(
    database_url: str, server: LocalServer, tmp_path: Path
) -> None:
    """`feeds import` (and `feeds add`) with discovery registers and prints each URL as soon as
    it and those listed before it are checked, in the list's order: a list of thousands of
    sites that a slow host holds up, stopped there (SIGTERM, Ctrl-C), keeps what was checked
    before it (was: nothing registered, nor printed, until every URL of the list was)."""
    release = threading.Event()

    def held(req: Request) -> Response:
        release.wait(90)
        return Response(200, b"<html><body>Home</body></html>", {"Content-Type": "text/html"})

    server.routes["/slow-site/"] = held
    first = server.url("/one.xml")  # a feed's URL: registered without a request
    listed = tmp_path / "feeds.txt"
    listed.write_text(f"{first}\n{server.url('/slow-site/')}\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "feeds", "import", str(listed)],
        env=_env(database_url, INGEST_READ_TIMEOUT="120", INGEST_REQUEST_DEADLINE="120", **LOCAL),
        cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert wait_until(lambda: server.hits("/slow-site/"), timeout=30)
        registered = wait_until(lambda: _feed_urls(database_url) == [first], timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert registered, _feed_urls(database_url)
    assert proc.returncode == 143, err
    assert out.splitlines() == [f"added   {first}"]


@pytest.mark.integration
def test_a_feed_s_credential_headers_go_to_its_own_site_only(
    database_url: str, server: LocalServer, second_server: LocalServer
) -> None:
    """`feeds set URL header.Authorization=... header.Cookie=... header.X-Edition=uk`: the feed's
    own pages get every header; a page of another site the feed links to gets X-Edition but
    not the feed's Authorization or Cookie (a feed may link anywhere)."""
    feed = _site(server, "own", 1)
    feed_body = server.routes["/own.xml"]
    second_server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    second_server.routes["/elsewhere"] = static(article_page("elsewhere story"))
    extra = (
        f"<item><title>Elsewhere</title><link>{second_server.url('/elsewhere')}</link>"
        f"<guid>elsewhere</guid><description>{PARAGRAPH}</description></item>"
    )

    def listing(req: Request) -> Response:
        shown = feed_body(req) if callable(feed_body) else feed_body
        body = shown.body if isinstance(shown.body, bytes) else b"".join(shown.body)
        return Response(
            200, body.replace(b"</channel>", extra.encode() + b"</channel>"), shown.headers
        )

    server.routes["/own.xml"] = listing
    ok(database_url, "feeds", "add", "--no-discover", feed)
    ok(
        database_url, "feeds", "set", feed, "header.Authorization=Bearer T0ken",
        "header.Cookie=s=T0ken", "header.X-Edition=uk",
    )  # fmt: skip
    ok(database_url, "run", "--once", "--all")
    own = server.hits("/own/story-0")[0].headers
    other = second_server.hits("/elsewhere")[0].headers
    assert (own["authorization"], own["cookie"], own["x-edition"]) == (
        "Bearer T0ken",
        "s=T0ken",
        "uk",
    )
    assert other["x-edition"] == "uk"
    assert "authorization" not in other
    assert "cookie" not in other


@pytest.mark.integration
def test_list_show_disable_enable(database_url: str, server: LocalServer) -> None:
    """A polled feed shows its state, schedule and articles; a paused one is not polled by
    `run --once --all`, shows why, and is due again once enabled."""
    one, two = _site(server, "one", 3), _site(server, "two", 1)
    ok(database_url, "feeds", "add", "--no-discover", one, two)
    ok(database_url, "run", "--once")
    listed = json.loads(ok(database_url, "feeds", "list", "--json"))
    assert [f["url"] for f in listed] == [one, two]
    assert {f["kind"] for f in listed} == {"feed"}
    assert all(f["last_status"] == "ok" for f in listed)

    shown = json.loads(ok(database_url, "feeds", "show", "--json", one))
    assert shown["articles_listed"] == 3
    assert shown["articles_first_seen"] == 3
    assert datetime.fromisoformat(shown["latest_article"]) == NOW - timedelta(hours=1)
    text = ok(database_url, "feeds", "show", one)
    assert "articles listed:" in text
    assert "state:" in text

    assert ok(database_url, "feeds", "disable", two).startswith("paused")
    lines = ok(database_url, "feeds", "list").splitlines()
    assert "paused" in lines[1]
    assert "next never" in lines[1]
    assert "paused by the operator" in lines[1]
    server.reset()
    _site(server, "one", 3)
    _site(server, "two", 1)
    ok(database_url, "run", "--once", "--all")
    polled = {r.path for r in server.requests}
    assert "/one.xml" in polled
    assert "/two.xml" not in polled
    assert json.loads(ok(database_url, "feeds", "show", "--json", two))["next_fetch_at"] == "never"

    ok(database_url, "feeds", "enable", two)
    again = json.loads(ok(database_url, "feeds", "show", "--json", two))
    assert again["active"] is True
    assert again["inactive_reason"] is None
    assert datetime.fromisoformat(again["next_fetch_at"]) <= datetime.now(UTC)
    ok(database_url, "run", "--once")
    assert "/two.xml" in {r.path for r in server.requests}


@pytest.mark.integration
@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_a_paused_feed_is_paused_whatever_the_session_s_time_zone(
    database_url: str, zone: str
) -> None:
    """A paused feed's next fetch (9999-01-01 UTC) comes back from a session in another time
    zone (PGTZ, or the database's `timezone` setting) as the same moment in that zone,
    9998-12-31 19:00-05:00 west of UTC: `feeds list`, `feeds show` and their JSON still say
    paused and never, and `feeds export` still marks it paused."""
    url = "https://one.example/feed/"
    ok(database_url, "feeds", "add", "--no-discover", url)
    ok(database_url, "feeds", "disable", url)
    zoned = {**LOCAL, "PGTZ": zone}

    def run(*args: str) -> str:
        done = _ingest(database_url, *args, **zoned)
        assert done.returncode == 0, done.stderr
        return str(done.stdout)

    (line,) = run("feeds", "list").splitlines()
    assert "paused" in line
    assert "next never" in line
    shown = run("feeds", "show", url)
    assert "state:                     paused" in shown
    for args in (("list", "--json"), ("show", "--json", url)):
        data = json.loads(run("feeds", *args))
        assert (data[0] if isinstance(data, list) else data)["next_fetch_at"] == "never"
    outline = ET.fromstring(run("feeds", "export")).find(".//outline")
    assert outline is not None
    assert outline.get(f"{{{admin.NAMESPACE}}}paused") == "true"


@pytest.mark.integration
def test_titles_any_terminal_cannot_show_are_escaped_not_a_traceback(database_url: str) -> None:
    """A feed titled in any script (`–`, `☃`, `新闻`, an emoji) printed where the output's
    encoding cannot carry them (a terminal or pipe in a Latin-1 locale; PYTHONIOENCODING
    stands in for it here): `feeds show` writes them as `\\u2013` escapes, the JSON of
    `feeds list --json` and `feeds show --json` escapes them as JSON does and `feeds export` as
    XML does (`&#8211;`), so that each reads back as the title (was: a UnicodeEncodeError
    traceback, exit 1, after part of the output)."""
    url = "https://one.example/feed/"
    title = "Nachrichten – ☃ 新闻 😀"
    ok(database_url, "feeds", "add", "--no-discover", url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE ingest.feeds SET title = %s", (title,))
    latin = {**LOCAL, "PYTHONIOENCODING": "latin-1"}
    shown = _ingest(database_url, "feeds", "show", url, **latin)
    assert shown.returncode == 0, shown.stderr
    (line,) = [ln for ln in shown.stdout.splitlines() if ln.startswith("title:")]
    assert line.split(None, 1)[1] == "Nachrichten \\u2013 \\u2603 \\u65b0\\u95fb \\U0001f600"
    for args in (("list", "--json"), ("show", "--json", url)):
        done = _ingest(database_url, "feeds", *args, **latin)
        assert done.returncode == 0, done.stderr
        parsed = json.loads(done.stdout)
        assert (parsed[0] if isinstance(parsed, list) else parsed)["title"] == title
    exported = _ingest(database_url, "feeds", "export", **latin)
    assert exported.returncode == 0, exported.stderr
    assert ET.fromstring(exported.stdout).find("./body/outline").get("title") == title


@pytest.mark.integration
def test_every_command_naming_a_feed_takes_the_id_feeds_list_prints(
    database_url: str, server: LocalServer
) -> None:
    """The id `feeds list` prints first (and `--json` gives as `id`) names its feed wherever a
    command takes a feed: `feeds show`, `set`, `text-mode`, `disable`, `enable`, `remove` and
    `articles --feed` act on that feed and print its URL as `news.feeds` shows it, a feed with
    credentials included; an id no feed has is `no such feed: id N`, exit 1 (was: every one of
    them refused the id as `not an http(s) URL`, exit 2)."""
    one = _site(server, "one", 2)
    ok(database_url, "feeds", "add", "--no-discover", one)
    ok(database_url, "run", "--once")
    secret = f"https://reader:{SECRET}@two.example/feed?token={SECRET}"
    shown = "https://two.example/feed?token=***"
    ok(database_url, "feeds", "add", "--no-discover", secret)
    first, second = (line.split()[0] for line in ok(database_url, "feeds", "list").splitlines())
    assert [f["id"] for f in json.loads(ok(database_url, "feeds", "list", "--json"))] == [
        int(first),
        int(second),
    ]

    by_url = json.loads(ok(database_url, "feeds", "show", "--json", one))
    assert json.loads(ok(database_url, "feeds", "show", "--json", first)) == by_url
    assert ok(database_url, "feeds", "show", first) == ok(database_url, "feeds", "show", one)
    articles = json.loads(ok(database_url, "articles", "--json", "--feed", one))
    assert len(articles) == 2
    assert json.loads(ok(database_url, "articles", "--json", "--feed", first)) == articles
    assert ok(database_url, "feeds", "set", first, "tags=news").startswith(f"set {one}: ")
    assert ok(database_url, "feeds", "text-mode", first, "page") == f"text mode page: {one}\n"
    assert ok(database_url, "feeds", "disable", first) == f"paused {one}\n"
    assert ok(database_url, "feeds", "enable", first) == f"enabled {one}: due now\n"
    again = json.loads(ok(database_url, "feeds", "show", "--json", one))
    assert (again["tags"], again["text_mode"], again["active"]) == (["news"], "page", True)

    assert ok(database_url, "feeds", "disable", second) == f"paused {shown}\n"
    assert json.loads(ok(database_url, "feeds", "show", "--json", second))["url"] == shown
    assert ok(database_url, "feeds", "remove", second) == f"removed {shown}\n"
    assert _feed_urls(database_url) == [one]

    for args in (
        ("feeds", "show", second), ("feeds", "enable", second), ("feeds", "disable", second),
        ("feeds", "set", second, "tags=a"), ("feeds", "text-mode", second, "feed"),
        ("feeds", "remove", second), ("articles", "--feed", second),
    ):  # fmt: skip
        done = ingest(database_url, *args)
        assert (done.returncode, done.stdout) == (1, ""), args
        errors = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
        assert errors == [f"ingest: no such feed: id {second}"], args
    assert SECRET not in ok(database_url, "feeds", "show", first)


@pytest.mark.integration
def test_feeds_show_prints_settings_as_written(database_url: str) -> None:
    """`feeds show` prints a feed's settings as `feeds set` took them, `user_agent=Café/1
    (Zürich)` included (was: the settings as ASCII JSON, `Caf\\u00e9/1 (Z\\u00fcrich)`, in a
    UTF-8 locale too), and its tags as written (`é`, `日本`); where the output cannot carry
    them (an ASCII locale), as escapes that read back as the characters, with exit 0, as a
    title is."""
    url = "https://one.example/feed/"
    ok(database_url, "feeds", "add", "--no-discover", url)
    ok(database_url, "feeds", "set", url, "user_agent=Café/1 (Zürich)", "tags=é,日本")
    utf8 = _ingest(database_url, "feeds", "show", url, PYTHONIOENCODING="utf-8", **LOCAL)
    assert utf8.returncode == 0, utf8.stderr
    lines = {k: v.strip() for k, _, v in (ln.partition(":") for ln in utf8.stdout.splitlines())}
    assert lines["settings"] == '{"user_agent": "Café/1 (Zürich)"}'
    assert lines["tags"] == "é, 日本"
    ascii_ = _ingest(database_url, "feeds", "show", url, PYTHONIOENCODING="ascii", **LOCAL)
    assert ascii_.returncode == 0, ascii_.stderr
    lines = {k: v.strip() for k, _, v in (ln.partition(":") for ln in ascii_.stdout.splitlines())}
    assert lines["settings"] == '{"user_agent": "Caf\\xe9/1 (Z\\xfcrich)"}'
    assert lines["tags"] == "\\xe9, \\u65e5\\u672c"


@pytest.mark.integration
def test_feeds_show_names_the_headers_a_feed_sends_never_their_values(database_url: str) -> None:
    """`feeds show` (and `--json`, as `headers`) names the headers `feeds set` gave a feed, as
    `feeds set` prints them, and never their values, which may be credentials (was: no trace
    of them, so that an operator could not tell whether a header was set, or removed)."""
    url = "https://one.example/feed/"
    ok(database_url, "feeds", "add", "--no-discover", url)
    assert json.loads(ok(database_url, "feeds", "show", "--json", url))["headers"] == []
    assert "headers:                   -\n" in ok(database_url, "feeds", "show", url)
    ok(
        database_url, "feeds", "set", url, f"header.X-Api-Key={SECRET}",
        f"header.Authorization=Bearer {SECRET}", "user_agent=Reader/2",
    )  # fmt: skip
    text = ok(database_url, "feeds", "show", url)
    shown = json.loads(ok(database_url, "feeds", "show", "--json", url))
    assert SECRET not in text + json.dumps(shown)
    assert "headers:                   Authorization, X-Api-Key\n" in text
    assert shown["headers"] == ["Authorization", "X-Api-Key"]
    assert shown["settings"] == {"user_agent": "Reader/2"}
    ok(database_url, "feeds", "set", url, "header.x-api-key=")
    assert json.loads(ok(database_url, "feeds", "show", "--json", url))["headers"] == [
        "Authorization"
    ]


@pytest.mark.integration
def test_unknown_feed_is_one_line_and_exit_1(database_url: str) -> None:
    for action in ("show", "enable", "disable"):
        done = ingest(database_url, "feeds", action, "https://nowhere.example/feed.xml")
        assert done.returncode == 1
        assert "no such feed" in done.stderr.splitlines()[-1]


@pytest.mark.integration
def test_export_round_trips_through_import(
    database_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    """`feeds export` writes OPML 2.0 that `feeds import` reads back into another database:
    the same feed URLs, in the same order."""
    urls = ["https://one.example/feed/", "https://two.example/rss.xml?x=1&y=2"]
    ok(database_url, "feeds", "add", "--no-discover", *urls)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET title = 'Tom & Jerry <news>', site_url = 'https://one.example/'"
            " WHERE url = %s",
            (urls[0],),
        )
    out = tmp_path / "feeds.opml"
    ok(database_url, "feeds", "export", str(out))
    root = ET.parse(out).getroot()
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    outlines = root.findall("./body/outline")
    assert [o.get("xmlUrl") for o in outlines] == urls
    assert outlines[0].get("title") == "Tom & Jerry <news>"
    assert outlines[0].get("htmlUrl") == "https://one.example/"
    assert ok(database_url, "feeds", "export") == out.read_text(encoding="utf-8")
    ok(empty_database_url, "feeds", "import", "--no-discover", str(out))
    with psycopg.connect(empty_database_url) as conn:
        got = [r[0] for r in conn.execute("SELECT url FROM news.feeds ORDER BY id").fetchall()]
    assert got == urls


_AS_REGISTERED = (
    "SELECT url, title, kind, active, inactive_reason, next_fetch_at >= '9999-01-01', text_mode,"
    " tags, settings, site_url FROM ingest.feeds ORDER BY id"
)


@pytest.mark.integration
@pytest.mark.parametrize("discover", [True, False], ids=["import", "import-no-discover"])
def test_export_then_import_gives_back_each_feed_as_it_was(
    database_url: str, empty_database_url: str, server: LocalServer, tmp_path: Path, discover: bool
) -> None:
    """What `feeds export` writes, `feeds import` registers as it was: a sitemap stays a sitemap
    of the site that named it (its `site_url`, whose URLs it may list wherever it is hosted),
    a paused feed paused, its title, settings (headers included), tags and text mode kept,
    without a request to discover what the file already says (was: each a plain active feed of
    its URL alone, a sitemap then parsed as a feed at every poll, a paused feed polled again)."""
    urls = [server.url("/news-sitemap.xml"), server.url("/paused?a=1&b=2"), server.url("/plain")]
    ok(database_url, "feeds", "add", "--no-discover", *urls)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET kind = 'sitemap', title = 'Tom & Jerry <news>',"
            " site_url = 'https://site.example/' WHERE url = %s",
            (urls[0],),
        )
    ok(
        database_url, "feeds", "set", urls[1], "min_interval=15m", "max_interval=6h",
        "user_agent=ValleyBot/2 (+https://valley.example/bot)", "header.X-Api-Key=k&<'\"",
        "tags=local, weather", "pages=always",
    )  # fmt: skip
    ok(database_url, "feeds", "disable", urls[1])
    ok(database_url, "feeds", "text-mode", urls[2], "feed")
    out = tmp_path / "feeds.opml"
    ok(database_url, "feeds", "export", str(out))

    ok(empty_database_url, "feeds", "import", *(() if discover else ("--no-discover",)), str(out))
    assert server.requests == []
    with psycopg.connect(database_url) as before, psycopg.connect(empty_database_url) as after:
        assert after.execute(_AS_REGISTERED).fetchall() == before.execute(_AS_REGISTERED).fetchall()


_NS = "{urn:news-ingest:opml}"


@pytest.mark.parametrize(
    ("attributes", "error"),
    [
        ({"kind": "podcast"}, "feed or sitemap"),
        ({"kind": "feed", "paused": "yes"}, "true or false"),
        ({"kind": "feed", "textMode": "always"}, "auto, page or feed"),
        ({"kind": "feed", "settings": "{not json"}, "not JSON"),
        ({"kind": "feed", "settings": "[1, 2]"}, "not a JSON object"),
        ({"kind": "feed", "settings": '{"headers": "X-A: b"}'}, "not a JSON object"),
        ({"kind": "feed", "settings": '{"min_interval": 0}'}, "longer than zero"),
        ({"kind": "feed", "settings": '{"min_interval": 1.5}'}, "not a duration"),
        ({"kind": "feed", "settings": '{"user_agent": ["a"]}'}, "one line"),
        ({"kind": "feed", "settings": '{"headers": {"X-A": "b\\r\\nHost: evil"}}'}, "one line"),
        ({"kind": "feed", "settings": '{"headers": {"Host": "evil"}}'}, "set by the service"),
        ({"kind": "feed", "settings": '{"headers": {"A=B": "c"}}'}, "one line"),
        ({"kind": "feed", "settings": '{"proxy": "http://evil"}'}, "unknown setting"),
    ],
)
def test_exported_attributes_are_checked_as_feeds_set_checks_them(
    attributes: dict[str, str], error: str
) -> None:
    """An outline's `ingest:` attributes come from a file: each is checked, as `feeds set`
    checks what it is given, and a wrong one rejects the outline."""
    with pytest.raises(ValueError, match=error):
        admin.restored("https://a.example/feed", {_NS + k: v for k, v in attributes.items()})


def test_an_export_is_xml_whatever_its_feeds_hold() -> None:
    """A title that XML cannot carry (U+FFFE, U+FFFF, as a home page's `<link title>` gave it
    to `feeds add`, or a control character of an older row) is written without those
    characters: the export stays a file `feeds import` reads (was: the whole file refused,
    "invalid character in attribute value")."""
    from ingest.documents.feedlists import read_feed_list

    row = {
        "url": "https://a.example/feed.xml", "title": "News \ufffe Feed \uffff\x01 x",
        "site_url": "https://a.example/", "kind": "feed", "active": True,
        "next_fetch_at": None, "text_mode": "auto", "tags": ["a\x02"], "settings": {},
    }  # fmt: skip
    (listed,) = read_feed_list(admin.opml([row]).encode())
    assert listed.url == row["url"]
    assert listed.attributes["title"] == "News  Feed  x"
    assert listed.attributes[_NS + "tags"] == "a"


def test_exported_attributes_read_back() -> None:
    row = {
        "url": "https://a.example/feed", "title": "A\x07 & B", "kind": "sitemap",
        "active": False, "next_fetch_at": datetime(9999, 1, 1, tzinfo=UTC), "text_mode": "feed",
        "tags": ["x", "y z"], "settings": {"min_interval": 900.0, "headers": {"X-A": "b"}},
    }  # fmt: skip
    attributes = {_NS + k: v for k, v in admin.exported_attributes(row).items()}
    feed = admin.restored(row["url"], {"title": "A\x07 & B", **attributes})
    assert feed is not None
    assert (feed.kind, feed.title, feed.paused) == ("sitemap", "A & B", True)
    assert feed.text_mode == "feed"
    assert feed.change.changes == {"min_interval": 900.0}
    assert feed.change.headers == {"X-A": "b"}
    assert feed.change.tags == ["x", "y z"]
    assert admin.restored(row["url"], {"title": "Another reader's"}) is None


@pytest.mark.integration
def test_an_export_file_is_readable_by_its_owner_only(database_url: str, tmp_path: Path) -> None:
    """`feeds export FILE` writes the feeds' credentials (URL user-info, `Authorization`
    headers): a file it creates is its owner's alone, whatever the umask (was: created
    world-readable under the usual umask 022)."""
    url = "https://reader:s3cret@one.example/feed/"
    ok(database_url, "feeds", "add", "--no-discover", url)
    ok(database_url, "feeds", "set", url, "header.Authorization=Bearer T0ken")
    target = tmp_path / "feeds.opml"
    umask = os.umask(0o022)
    try:
        ok(database_url, "feeds", "export", str(target))
    finally:
        os.umask(umask)
    assert "Bearer T0ken" in target.read_text(encoding="utf-8")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def _file_size_limit(size: int) -> None:
    """In the child: files written no larger than `size` bytes (EFBIG past it, as a full
    device gives ENOSPC), SIGXFSZ ignored so that the write fails instead of killing it."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.integration
def test_an_export_that_cannot_be_written_whole_leaves_the_file_as_it_was(
    database_url: str, tmp_path: Path
) -> None:
    """`feeds export FILE` over last night's backup that fails midway (a full device, a file
    size limit) says so, exit 1, and leaves the backup as it was, nothing else beside it; one
    that succeeds replaces it whole, keeping its mode (was: the backup truncated first, then
    left cut short: the one good copy lost by the export meant to renew it)."""
    urls = [f"https://site{n}.example/feed/" for n in range(20)]
    ok(database_url, "feeds", "add", "--no-discover", *urls)
    target = tmp_path / "feeds.opml"
    target.write_text("last night's backup\n", encoding="utf-8")
    target.chmod(0o640)
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "feeds", "export", str(target)],
        env=_env(database_url, **LOCAL),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: _file_size_limit(512),
    )
    assert done.returncode == 1, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert errors == [f"ingest: cannot write {target}: File too large"]
    assert target.read_text(encoding="utf-8") == "last night's backup\n"
    assert list(tmp_path.iterdir()) == [target]
    ok(database_url, "feeds", "export", str(target))
    outlines = ET.parse(target).findall("./body/outline")
    assert [o.get("xmlUrl") for o in outlines] == urls
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.integration
def test_what_the_feeds_commands_print_names_no_credential(database_url: str) -> None:
    """A feed URL's user-info and credential query parameters (a token, an API key), its site
    URL's, and a URL quoted by an error stored before errors were redacted: every `feeds`
    command that prints them, as lines or JSON, on stdout or stderr, names them as schema news
    does (`https://host/feed?token=***`), so that its output can be pasted into a ticket;
    `feeds list --show-credentials` and `feeds export` (a backup) give them as registered (was:
    `feeds list` and `--json`, and the lines of add, enable, disable, set, text-mode and remove,
    printed the token and the password)."""
    url = f"https://reader:{SECRET}@one.example/feed?page=2&token={SECRET}"
    shown = "https://one.example/feed?page=2&token=***"
    printed = [ingest(database_url, "feeds", "add", "--no-discover", url)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET site_url = %s, last_error = %s, last_status = 'error'",
            (
                f"https://one.example/?api_key={SECRET}",
                f"HTTP 403 from https://reader:{SECRET}@one.example/feed?token={SECRET}",
            ),
        )
    for args in (
        ("list",), ("list", "--json"), ("show", url), ("show", "--json", url),
        ("set", url, "tags=a", f"header.Authorization=Bearer {SECRET}"), ("text-mode", url, "page"),
        ("disable", url), ("enable", url), ("show", url.replace("one.", "two.")),
        ("enable", url.replace("one.", "two.")), ("remove", url.replace("one.", "two.")),
    ):  # fmt: skip
        printed.append(ingest(database_url, "feeds", *args))
    listed = ingest(database_url, "feeds", "list")
    removed = ingest(database_url, "feeds", "remove", url)
    printed += [listed, removed]
    for done in printed:
        assert done.returncode in (0, 1), done.stderr
        assert SECRET not in done.stdout + done.stderr, done.args
    assert shown in listed.stdout
    assert shown in removed.stdout
    ok(database_url, "feeds", "add", "--no-discover", url)
    copied = ingest(database_url, "feeds", "disable", shown)  # as copied from `feeds list`
    assert copied.returncode == 1
    assert "feeds list --show-credentials" in copied.stderr
    ok(database_url, "feeds", "remove", url)

    ok(database_url, "feeds", "add", "--no-discover", url)
    assert url in ok(database_url, "feeds", "list", "--show-credentials")
    listed_json = json.loads(ok(database_url, "feeds", "list", "--json", "--show-credentials"))
    assert [f["url"] for f in listed_json] == [url]
    exported = ET.fromstring(ok(database_url, "feeds", "export"))
    assert [o.get("xmlUrl") for o in exported.findall("./body/outline")] == [url]


@pytest.mark.integration
@pytest.mark.parametrize("where", ["missing/feeds.opml", "."], ids=["no-directory", "a-directory"])
def test_export_to_a_file_it_cannot_write_is_one_line_and_exit_1(
    database_url: str, tmp_path: Path, where: str
) -> None:
    """`feeds export FILE` where FILE cannot be written: one line naming it, exit 1."""
    ok(database_url, "feeds", "add", "--no-discover", "https://one.example/feed/")
    target = tmp_path / where
    done = ingest(database_url, "feeds", "export", str(target))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(errors) == 1
    assert errors[0].startswith(f"ingest: cannot write {target}: ")
    assert not (tmp_path / "missing").exists()


@pytest.mark.integration
def test_articles_newest_first_with_filters(database_url: str, server: LocalServer) -> None:
    one, two = _site(server, "one", 3), _site(server, "two", 2)
    ok(database_url, "feeds", "add", "--no-discover", one, two)
    ok(database_url, "run", "--once")
    rows = json.loads(ok(database_url, "articles", "--json"))
    assert len(rows) == 5
    times = [datetime.fromisoformat(r["published_at"]) for r in rows]
    assert times == sorted(times, reverse=True)
    assert all(PARAGRAPH in r["text"] for r in rows)
    only_two = json.loads(ok(database_url, "articles", "--json", "--feed", two))
    assert sorted(r["title"] for r in only_two) == ["two story 0", "two story 1"]
    recent = json.loads(ok(database_url, "articles", "--json", "--since", "90m"))
    assert sorted(r["title"] for r in recent) == ["one story 0", "two story 0"]
    assert len(json.loads(ok(database_url, "articles", "--json", "--limit", "2"))) == 2
    assert json.loads(ok(database_url, "articles", "--json", "--site", "nowhere")) == []
    lines = ok(database_url, "articles", "--limit", "1").splitlines()
    assert len(lines) == 1
    assert "story 0" in lines[0]
    bad = ingest(database_url, "articles", "--since", "yesterday-ish")
    assert bad.returncode == 2
    assert "--since" in bad.stderr
    empty = ingest(database_url, "articles", "--since", "")
    assert empty.returncode == 2
    assert "--since" in empty.stderr


@pytest.mark.integration
def test_articles_of_an_unknown_feed_is_one_line_and_exit_1(
    database_url: str, server: LocalServer
) -> None:
    """`articles --feed URL` naming no registered feed (a typo, a feed removed) says so, as
    every other command taking a feed's URL does (was: nothing listed and exit 0, as if the
    feed had no articles); an empty `--feed ""` is no URL, a usage error (was: every article
    listed)."""
    one = _site(server, "one", 1)
    ok(database_url, "feeds", "add", "--no-discover", one)
    ok(database_url, "run", "--once")
    assert len(json.loads(ok(database_url, "articles", "--json", "--feed", one))) == 1
    done = ingest(database_url, "articles", "--feed", one.replace("one.xml", "on.xml"))
    assert done.returncode == 1
    assert done.stdout == ""
    errors = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert errors == [f"ingest: no such feed: {one.replace('one.xml', 'on.xml')}"]
    empty = ingest(database_url, "articles", "--feed", "")  # `--feed "$FEED"`, FEED unset
    assert (empty.returncode, empty.stdout) == (2, "")
    assert "not an http(s) URL" in empty.stderr


@pytest.mark.integration
def test_articles_of_a_site_as_the_operator_writes_it(
    database_url: str, server: LocalServer
) -> None:
    """`articles --site` takes the site as it is written in a browser or a link, its capitals,
    `www.`, scheme, port and path as `news.articles.site` leaves them out (was: nothing listed
    for any spelling but the column's own)."""
    one = _site(server, "one", 2)
    ok(database_url, "feeds", "add", "--no-discover", one)
    ok(database_url, "run", "--once")
    assert {r["site"] for r in json.loads(ok(database_url, "articles", "--json"))} == {"127.0.0.1"}
    for spelling in ("127.0.0.1", " 127.0.0.1. ", server.base.upper(), one):
        rows = json.loads(ok(database_url, "articles", "--json", "--site", spelling))
        assert len(rows) == 2, spelling
    assert admin.site_filter("WWW.Example.COM") == "example.com"
    assert admin.site_filter("https://www.example.com/news/") == "example.com"
    assert admin.site_filter("news.example.com") == "news.example.com"
    assert admin.site_filter("xn--strae-oqa.de") == "straße.de"
    assert admin.site_filter("nowhere") == "nowhere"


@pytest.mark.integration
@pytest.mark.parametrize("age", ["99999999w", "800000d"])
def test_articles_since_an_age_reaching_before_year_1_is_one_line(
    database_url: str, age: str
) -> None:
    """`articles --since` with an age reaching back before the calendar: a usage error, exit 2,
    its reason on one line."""
    done = ingest(database_url, "articles", "--since", age)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert errors[-1] == (
        f"ingest articles: error: argument --since: reaches back before year 1: {age!r}"
    )


def test_db_url_never_prints_the_password() -> None:
    dsn = "postgresql://reader:s3cr3t-pw@127.0.0.1:1/news?sslmode=disable"
    done = _ingest(dsn, "db", "url")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgresql://reader@127.0.0.1:1/news?sslmode=disable"
    assert "s3cr3t" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "dsn",
    [
        "host=127.0.0.1 port=1 user=reader sslkey=/k.pem sslpassword='key pass-9f3c'",
        "postgresql://reader@127.0.0.1:1/news?sslkey=/k.pem&sslpassword=key%20pass-9f3c",
    ],
    ids=["keywords", "url"],
)
def test_db_url_never_prints_the_client_key_s_passphrase(dsn: str) -> None:
    """`sslpassword`, the passphrase of the client's key, is a password too: `db url` prints
    the connection string without it (was: printed as given, the passphrase in full)."""
    done = _ingest(dsn, "db", "url")
    assert done.returncode == 0, done.stderr
    assert "pass-9f3c" not in done.stdout + done.stderr
    assert "sslkey=" in done.stdout
    assert "sslpassword" not in done.stdout


@pytest.mark.parametrize(
    ("dsn", "safe"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql://u@h:5432/d"),
        (
            "postgresql://u:p@/d?host=/run/pg&port=5433",
            "postgresql://u@/d?host=%2Frun%2Fpg&port=5433",
        ),
        ("host=h dbname=d user=u password=secret", "user=u dbname=d host=h"),
    ],
)
def test_safe_dsn_drops_only_the_password(dsn: str, safe: str) -> None:
    """The embedded server's address is a socket directory: it stays, with its port."""
    assert admin.safe_dsn(dsn) == safe


@pytest.mark.parametrize(
    ("dsn", "safe"),
    [
        ("postgresql://u:p@[::1]:5433/d", "postgresql://u@[::1]:5433/d"),
        ("postgresql://u:p@[2001:db8::7]/d", "postgresql://u@[2001:db8::7]/d"),
        ("postgresql://u:p@h1:5432,h2:5433/d", "postgresql://u@h1:5432,h2:5433/d"),
        ("postgresql://u:p@h1,[::1]:5433/d", "postgresql://u@h1,[::1]:5433/d"),
        (
            "postgresql://u:p@/d?host=/run/a,/run/b&port=5433,5434",
            "postgresql://u@/d?host=%2Frun%2Fa%2C%2Frun%2Fb&port=5433%2C5434",
        ),
    ],
    ids=["ipv6", "ipv6-default-port", "two-hosts", "a-host-and-ipv6", "two-sockets"],
)
def test_safe_dsn_of_ipv6_and_several_hosts_is_the_same_address(dsn: str, safe: str) -> None:
    """`db url` prints, and `db shell` gives psql, an address libpq reads as the one in use:
    an IPv6 host in brackets, each host beside its own port (was: `u@::1:5433`, which libpq
    refuses, and `h1,h2:5432,5433`, which it reads as three other hosts)."""
    from psycopg.conninfo import conninfo_to_dict

    assert admin.safe_dsn(dsn) == safe
    without = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "password"}
    assert conninfo_to_dict(safe) == without


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        pytest.param("postgresql:/postgres:hunter2@127.0.0.1/x", "hunter2", id="malformed"),
        pytest.param("postgresql://postgres:pa%ss-w0rd@127.0.0.1:1/x", "pa%ss", id="bad-escape"),
        pytest.param("mysql://postgres:hunter2@127.0.0.1/x", "hunter2", id="other-scheme"),
        pytest.param("postgresql://postgres:s3cr@tPW9@127.0.0.1:1/x", "tPW9", id="unescaped-at"),
    ],
)
@pytest.mark.parametrize("command", ["url", "shell"])
def test_db_commands_never_show_the_password_of_a_bad_url(
    command: str, dsn: str, secret: str
) -> None:
    """`db url` / `db shell` with a DATABASE_URL that libpq cannot read, or that holds an
    unescaped `@` (libpq takes the password's tail for the host): nothing of the password on
    either stream; one line and exit 1 for what does not parse (was: a traceback quoting the
    whole URL; the tail printed as the host)."""
    done = _ingest(dsn, "db", command, PATH="/nonexistent")  # no psql: `shell` stops there
    assert secret not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    if "@tPW9" not in dsn:
        assert done.returncode == 1
        assert done.stderr.strip() == "ingest: DATABASE_URL is not a valid connection string"


def _read_until(fd: int, marker: bytes, seen: bytearray) -> bool:
    """Read the terminal `fd` into `seen` until `marker` shows in what came since the last
    call, for up to 30 s; whether it did."""
    start = len(seen)
    deadline = time.monotonic() + 30
    while marker not in seen[start:] and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other end closed: nothing more will come
                break
    return marker in seen[start:]


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql, as `db shell` does")
def test_ctrl_c_in_db_shell_cancels_the_query_and_keeps_the_session(database_url: str) -> None:
    """Ctrl-C in `ingest db shell` (SIGINT to the terminal's foreground process group: the
    command and its psql) is psql's: the query in progress is cancelled and the session goes
    on, as in psql itself (was: the command ended with exit 130, killing psql and the session
    with it)."""
    main, terminal = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "db", "shell"],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        env={**_env(database_url), "PSQL_PAGER": "", "PAGER": "", "TERM": "dumb"}, cwd=ROOT,
    )  # fmt: skip
    os.close(terminal)
    seen = bytearray()
    try:
        assert _read_until(main, b"=# ", seen), bytes(seen)
        os.write(main, b"SELECT pg_sleep(60);\n")
        assert wait_until(lambda: _sleeping(database_url), timeout=30)
        os.killpg(proc.pid, signal.SIGINT)
        assert _read_until(main, b"canceling statement due to user request", seen), bytes(seen)
        os.write(main, b"SELECT 'still' || 'here';\n")
        assert _read_until(main, b"stillhere", seen), bytes(seen)
        os.write(main, b"\\q\n")
        assert proc.wait(timeout=30) == 0, bytes(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql, as `db shell` does")
def test_db_shell_on_a_silent_database_gives_up_within_the_connect_timeout(
    database_url: str,
) -> None:
    """`ingest db shell` on a database whose network drops every packet (connections accepted,
    never answered) has psql give up after the connect timeout the service's own connections
    have (10 s), its error on stderr and its exit status 2, as psql's (was: psql connected
    without one, and waited for ever)."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    relay.silence()
    dsn = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=str(relay.port))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "db", "shell"],
            input="SELECT 1;\n",
            env=_env(dsn),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        relay.close()
    assert done.returncode == 2, done.stderr
    assert "timeout expired" in done.stderr


def test_db_url_prints_the_dsn_without_the_connection_defaults(database_url: str) -> None:
    """`db url` prints the DSN in use as it was given, without its password and without the
    connect timeout and keepalives news-ingest's own connections add to it (those of a
    consumer's connections are its own to choose); a DSN naming a service of pg_service.conf
    is printed so, for libpq to read the service (its password included) itself."""
    done = _ingest(database_url, "db", "url")
    assert done.returncode == 0, done.stderr
    assert psycopg.conninfo.conninfo_to_dict(done.stdout.strip()) == {
        k: v for k, v in psycopg.conninfo.conninfo_to_dict(database_url).items() if k != "password"
    }
    service = _ingest("service=news", "db", "url")
    assert (service.returncode, service.stdout) == (0, "service=news\n"), service.stderr


def _sleeping(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%%'"
            " AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


def test_parse_since() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert admin.parse_since("2h", now) == now - timedelta(hours=2)
    assert admin.parse_since("3d", now) == now - timedelta(days=3)
    assert admin.parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert admin.parse_since("2026-12-01T10:00+01:00", now) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="soon"):
        admin.parse_since("soon", now)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-W22", datetime(2024, 5, 27, tzinfo=UTC)),
        ("2024-153", datetime(2024, 6, 1, tzinfo=UTC)),
        ("20240601", datetime(2024, 6, 1, tzinfo=UTC)),
        ("2024-06-01T10:00+01:00", datetime(2024, 6, 1, 9, tzinfo=UTC)),
    ],
)
def test_articles_since_takes_the_dates_backfill_takes(text: str, expected: datetime) -> None:
    """`articles --since` takes every ISO 8601 form `backfill --since` takes, from its start
    (a month, a year, a week, an ordinal day), by the one rule (`parse_date_bound`), instead of
    refusing a month or a year as no time."""
    assert admin.parse_since(text, datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == expected


def test_json_of_rows_reads_never_and_intervals() -> None:
    row = {
        "next_fetch_at": datetime(9999, 1, 1, tzinfo=UTC),
        "publish_interval": timedelta(hours=1),
        "body_hash": b"\x01\x02",
    }
    assert json.loads(admin.to_json(row)) == {
        "next_fetch_at": "never",
        "publish_interval": 3600.0,
        "body_hash": "0102",
    }


@pytest.mark.integration
def test_feed_settings_reach_its_requests_and_its_schedule(
    database_url: str, server: LocalServer
) -> None:
    """`feeds set`: the User-Agent and headers go with the feed's request and its pages', the
    interval bounds shape its next fetch, the tags and settings (headers left out) are in
    news.feeds; an empty value removes a setting."""
    url = _site(server, "one", 1)
    ok(database_url, "feeds", "add", "--no-discover", url)
    ok(
        database_url, "feeds", "set", url, "max_interval=10m", "user_agent=ValleyBot/2",
        "header.X-Api-Key=k-123", "tags=local, weather,local",
    )  # fmt: skip
    ok(database_url, "run", "--once")
    sent = [r for r in server.requests if r.path in ("/one.xml", "/one/story-0")]
    assert {r.path for r in sent} == {"/one.xml", "/one/story-0"}
    for request in sent:
        assert request.headers["user-agent"] == "ValleyBot/2"
        assert request.headers["x-api-key"] == "k-123"
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT tags, settings, next_fetch_at - last_fetched_at FROM news.feeds"
        ).fetchone()
    assert row is not None
    tags, shown, interval = row
    assert tags == ["local", "weather"]
    assert shown == {"max_interval": 600.0, "user_agent": "ValleyBot/2"}
    assert interval <= timedelta(minutes=11)  # 10 minutes, and up to a tenth of jitter

    ok(database_url, "feeds", "set", url, "user_agent=", "header.X-Api-Key=")
    server.reset()
    _site(server, "one", 1)
    ok(database_url, "run", "--once", "--all")
    feed = next(r for r in server.requests if r.path == "/one.xml")
    assert "ValleyBot" not in feed.headers["user-agent"]
    assert "x-api-key" not in feed.headers


@pytest.mark.integration
def test_a_header_named_again_in_another_case_is_the_same_header(
    database_url: str, server: LocalServer
) -> None:
    """Header names are case-insensitive (RFC 9110): `feeds set URL header.AUTHORIZATION=new`
    replaces the `Authorization` set before, and `header.authorization=` removes it, both in
    one command as across commands (was: each spelling kept as a header of its own, so the
    old token went out beside the new one, and one "removed" was still sent)."""
    url = _site(server, "one", 1)
    ok(database_url, "feeds", "add", "--no-discover", url)
    ok(database_url, "feeds", "set", url, "header.Authorization=Bearer old", "header.X-A=1")
    shown = ok(database_url, "feeds", "set", url, "header.AUTHORIZATION=Bearer new", "header.x-a=2")
    assert shown.rstrip().endswith("headers ['AUTHORIZATION', 'x-a'], tags []")
    ok(database_url, "run", "--once")
    feed = next(r for r in server.requests if r.path == "/one.xml")
    assert (feed.headers["authorization"], feed.headers["x-a"]) == ("Bearer new", "2")

    ok(database_url, "feeds", "set", url, "header.authorization=", "header.X-A=")
    server.reset()
    _site(server, "one", 1)
    ok(database_url, "run", "--once", "--all")
    feed = next(r for r in server.requests if r.path == "/one.xml")
    assert "authorization" not in feed.headers
    assert "x-a" not in feed.headers
    assert admin.parse_settings(["header.X-B=1", "header.x-b=2"]).headers == {"x-b": "2"}


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        (["bogus=1"], "unknown setting"),
        (["min_interval=soon"], "not a duration"),
        (["min_interval=90"], "not a duration"),
        (["min_interval=1h", "max_interval=10m"], "below min_interval"),
        (["header.Host=x"], "set by the service"),
        (["header.If-None-Match=x"], "set by the service"),
        (["header.accept-encoding=br"], "set by the service"),
        (["header.X-A=line\nbreak"], "one line"),
        (["header.X-A=bell\x07"], "control character"),
        (["user_agent=Bot\x1b[2J"], "control character"),
        (["header.X-A=del\x7f"], "control character"),
        (["pages=sometimes"], "always, never or auto"),
        (["tags"], "expected key=value"),
    ],
)
def test_bad_settings_are_refused(pairs: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        admin.parse_settings(pairs)


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        (
            ["header.Authorization=Bearer S3cr3t\u2019V4lue"],
            "'header.Authorization': a header value must be Latin-1 ('\u2019' at character 14)",
        ),
        (["header.Cookie=s=S3cr3t\nV4lue"], "'header.Cookie': a header value is one line"),
        (
            ["header.X-Api-Key=S3cr3t\x07V4lue"],
            "'header.X-Api-Key': a header value has no control character ('\\x07' at character 7)",
        ),
    ],
)
def test_a_refused_header_value_is_not_shown(pairs: list[str], error: str) -> None:
    """A header value `feeds set` refuses (a curly quote pasted into a token, a line break, a
    control character) may be a credential: the error names the header and what is wrong,
    never the value, which would go to a terminal's scrollback or a provisioning job's log."""
    with pytest.raises(ValueError, match="header") as info:
        admin.parse_settings(pairs)
    assert str(info.value) == error
    assert "S3cr3t" not in str(info.value)


@pytest.mark.parametrize(
    "settings",
    [
        '{"headers": {"Authorization": "Bearer S3cr3tV4lue"}',
        '{"headers": {"Authorization": "Bearer S3cr3tV4lue"}, "user_agent": ["a"]',
        '[{"headers": {"Authorization": "Bearer S3cr3tV4lue"}}]',
        '{"headers": {"Authorization": "Bearer S3cr3t\u2019V4lue"}}',
    ],
)
def test_an_outline_s_refused_settings_are_not_shown(settings: str) -> None:
    """`feeds import` of an outline whose `ingest:settings` (headers included, credentials
    among them) are not JSON, not an object, or hold a value refused: the line it prints says
    why, without the settings' text."""
    with pytest.raises(ValueError, match=r"ingest:settings|header") as info:
        admin.restored("https://a.example/feed", {_NS + "kind": "feed", _NS + "settings": settings})
    assert "S3cr3t" not in str(info.value)


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        (["header:Authorization=Bearer S3cr3tV4lue"], "'header:Authorization': unknown setting"),
        (["headers.X-Api-Key=S3cr3tV4lue"], "'headers.X-Api-Key': unknown setting"),
        (["header.X Api Key=S3cr3tV4lue"], "'header.X Api Key': not a header name"),
        (["header.Host=S3cr3tV4lue"], "'header.Host': Host is set by the service"),
        (["header.Authorization: Bearer S3cr3tV4lue"], "'header.Authorization': expected key="),
    ],
)
def test_a_refused_header_setting_does_not_show_its_value(pairs: list[str], error: str) -> None:
    """A header setting `feeds set` refuses for its key (a typo in `header.`, a name with a
    space, a header of the service's, a colon written in place of `=`), its value a credential
    maybe: the error names the key, never the value, as for a value refused."""
    with pytest.raises(ValueError, match=re.escape(error)) as info:
        admin.parse_settings(pairs)
    assert "S3cr3t" not in str(info.value)


def test_an_outline_s_header_of_a_refused_name_is_not_shown() -> None:
    """`feeds import` of an outline whose `ingest:settings` name a header that is no header's
    name: the line it prints names it, without its value."""
    settings = '{"headers": {"X Api Key": "S3cr3tV4lue"}}'
    with pytest.raises(ValueError, match="not a header name") as info:
        admin.restored("https://a.example/feed", {_NS + "kind": "feed", _NS + "settings": settings})
    assert "S3cr3t" not in str(info.value)


def test_tags_are_one_line_each_once_whatever_their_case() -> None:
    """`tags=` as a feed's entries' tags are read: spaces collapsed, control characters
    dropped, each once whatever its case, none empty (was: `Local` beside `local`, an escape
    sequence stored and printed by `feeds show`)."""
    change = admin.parse_settings(["tags= local ,Local,, weather  news ,\x1b[31mred,"])
    assert change.tags == ["local", "weather news", "red"]
    assert admin.parse_settings(["tags="]).tags == []


def test_settings_parse_and_apply() -> None:
    from ingest.schedule import Policy, policy_for
    from ingest.types import FeedSettings

    change = admin.parse_settings(["min_interval=90s", "max_interval=2h", "pages=never"])
    assert change.changes == {"min_interval": 90.0, "max_interval": 7200.0}
    assert change.text_mode == "feed"
    settings = FeedSettings.from_json({**change.changes, "headers": {"X-A": "b"}})
    assert settings.request_headers() == (("X-A", "b"),)
    policy = policy_for(Policy(), settings)
    assert (policy.min_interval, policy.max_interval) == (
        timedelta(seconds=90),
        timedelta(hours=2),
    )
    assert policy_for(Policy(), FeedSettings()) == Policy()
    # An empty value removes a setting: the text mode goes back to its default.
    assert admin.parse_settings(["pages="]).text_mode == "auto"
    low_only = policy_for(Policy(), FeedSettings(min_interval=timedelta(days=3)))
    assert low_only.max_interval == timedelta(days=3)


SHOWN_AT = datetime(2026, 1, 2, tzinfo=UTC)
SHOWN_ROW = {
    "url": "https://example.org/feed.xml", "id": 1, "kind": "feed", "title": "Café",
    "site_url": None, "active": True, "inactive_reason": None, "added_at": SHOWN_AT,
    "last_fetched_at": SHOWN_AT, "last_status": "ok", "last_error": None,
    "consecutive_failures": 0, "failing_since": None, "consecutive_not_found": 0,
    "not_found_since": None, "next_fetch_at": SHOWN_AT + timedelta(hours=1),
    "publish_interval": None, "text_mode": "auto", "full_text": True,
    "full_text_evidence": None, "tags": [], "settings": None,
    "articles_first_seen": 0, "articles_listed": 0, "latest_article": None,
}  # fmt: skip


def _shown(row: dict[str, object], fact: str) -> str:
    from ingest.admin import feed_details

    (line,) = [line for line in feed_details(row) if line.startswith(f"{fact}:")]
    return line.split(":", 1)[1].strip()


def test_full_text_evidence_is_shown_as_written() -> None:
    """`feeds show` prints the full-text evidence as the sentence it is: no quotes, no escapes."""
    evidence = "feed text holds 97% of the page, the page 99% of it (812 words): the article…"
    assert _shown({**SHOWN_ROW, "full_text_evidence": evidence}, "full-text evidence") == evidence


def test_feeds_show_says_how_many_404s_in_a_row_and_since_when() -> None:
    """A feed failing for hours whose last answers were 404s: `feeds show` says how many 404s
    in a row and since when, the streak that gives it up as gone, beside its failures."""
    failing = {
        **SHOWN_ROW, "last_status": "error", "last_error": "HTTP 404 Not Found",
        "consecutive_failures": 7, "failing_since": SHOWN_AT - timedelta(hours=9),
        "consecutive_not_found": 2, "not_found_since": SHOWN_AT - timedelta(hours=2),
    }  # fmt: skip
    assert _shown(failing, "failures in a row") == "7"
    assert _shown(failing, "404s in a row") == "2 since 2026-01-01 22:00:00Z"
    assert _shown(SHOWN_ROW, "404s in a row") == "0"
