"""Hostile article pages through the pipeline: a page trafilatura would chew on for a minute,
pathological nesting, no text at all, binary bodies dressed as HTML, NUL bytes, bombs. Each
entry is stored once from the feed's own text with the reason in extraction_error; a healthy
page in the same feed is extracted by a fresh worker after the hung one was killed; worker
memory stays bounded."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from ingest.normalize import canonical_url
from ingest.workers.pool import Workers
from tests.hostile.test_bodies import gzip_bomb
from tests.support.httpserver import LocalServer, Response, static
from tests.support.pipelines import (
    PARAGRAPH,
    article_page,
    local_settings,
    pipeline_for,
    rows,
    rss,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MIB = 1024 * 1024
WORKER_RSS_LIMIT = 1024 * MIB


def _html(body: str) -> bytes:
    head = "<!DOCTYPE html><html lang='en'><head><title>t</title></head>"
    return f"{head}<body>{body}</body></html>".encode()


# path -> (response, expected text_source, substring of extraction_error or None)
PAGES: dict[str, tuple[Response, str, str | None]] = {
    "/paragraphs": (
        Response(200, _html("<p>word</p>" * 200_000), {"Content-Type": "text/html"}),
        "feed",
        "extraction failed: timed out after 3s",
    ),
    "/divs": (
        Response(
            200,
            _html("<div>" * 100_000 + "<p>deep text</p>" * 3 + "</div>" * 100_000),
            {"Content-Type": "text/html"},
        ),
        "feed",
        "no article text found",
    ),
    "/script-only": (
        Response(
            200,
            b"<html><head><script>" + b"var a = 1;" * 10_000 + b"</script></head><body>"
            b"<script>document.write('<p>rendered later</p>')</script></body></html>",
            {"Content-Type": "text/html"},
        ),
        "feed",
        "no article text found",
    ),
    "/binary": (
        Response(200, random.Random(7).randbytes(1_000_000), {"Content-Type": "text/html"}),
        "feed",
        None,
    ),
    "/nul": (
        Response(200, b"\0" * 500_000, {"Content-Type": "text/html; charset=utf-8"}),
        "feed",
        "not an HTML document",
    ),
    "/nul-in-text": (
        Response(
            200,
            article_page("Nul").replace(b"harbour", b"har\0bour\x01\x1b"),
            {"Content-Type": "text/html"},
        ),
        "page",
        None,
    ),
    "/octet": (
        Response(200, b"\x89PNG\r\n\x1a\n" + b"\0" * 1000, {"Content-Type": "image/png"}),
        "feed",
        "not an HTML page: image/png",
    ),
    "/good": (Response(200, article_page("Good"), {"Content-Type": "text/html"}), "page", None),
}


@contextmanager
def peak_descendant_rss() -> Iterator[list[int]]:
    """Samples the RSS of every process below this one (the fork server and its workers) every
    50 ms; yields a one-element list holding the peak seen, in bytes."""
    peak = [0]
    stop = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not stop.is_set():
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    peak[0] = max(peak[0], child.memory_info().rss)
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


async def test_hostile_pages_fall_back_to_feed_text_and_spoil_nothing(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """Every entry of a feed of hostile pages is stored once: from the page where it has text
    (NULs and controls stripped), else from the feed with the reason; the run is ok; the worker
    killed at the extraction limit is replaced; workers stay under 1 GiB."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    items = ""
    for path, (response, _, _) in PAGES.items():
        server.routes[path] = response
        items += (
            f"<item><title>Entry {path}</title><link>{server.url(path)}</link>"
            f"<guid isPermaLink='false'>{path}</guid><description>Feed text for {path}."
            "</description></item>"
        )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    settings = local_settings(database_url, extract_timeout=3)
    with peak_descendant_rss() as peak:
        async with pipeline_for(settings, workers) as pipeline:
            await pipeline.store.add_feed(server.url("/feed"))
            summary = await pipeline.run()
            again = await pipeline.run(all_feeds=True)
    print(f"\npeak worker RSS over the hostile pages: {peak[0] / MIB:.0f} MiB")
    assert (summary.ok, summary.failed, summary.new_articles) == (1, 0, len(PAGES))
    assert again.new_articles == 0
    stored = {
        r["guid"]: r
        for r in rows(
            database_url, "SELECT guid, text, text_source, extraction_error FROM news.articles"
        )
    }
    assert len(stored) == len(PAGES)
    for path, (_, source, error) in PAGES.items():
        row = stored[path]
        assert row["text_source"] == source, (path, row["extraction_error"])
        if source == "feed":
            assert row["text"] == f"Feed text for {path}."
            assert row["extraction_error"], path
        if error is not None:
            assert error in row["extraction_error"], (path, row["extraction_error"])
        assert "\0" not in row["text"]
        assert "\x1b" not in row["text"]
    assert "harbour" in stored["/nul-in-text"]["text"]
    assert all(len(server.hits(path)) == 1 for path in PAGES)
    assert peak[0] < WORKER_RSS_LIMIT


async def test_oversized_page_falls_back_at_once(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A page that is a gzip bomb can never be read: its entry is stored from the feed text on
    the first poll, with the size refusal as extraction_error."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/bomb"] = Response(
        200, gzip_bomb(64), {"Content-Type": "text/html", "Content-Encoding": "gzip"}
    )
    items = (
        f"<item><title>Bomb</title><link>{server.url('/bomb')}</link>"
        "<guid isPermaLink='false'>bomb</guid><description>Feed text.</description></item>"
    )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == 1
    (row,) = rows(database_url, "SELECT text_source, extraction_error FROM news.articles")
    assert row["text_source"] == "feed"
    assert "body exceeds" in row["extraction_error"]


LEGACY_PARAGRAPH = (
    "The council approved a budget of €4 million on Tuesday, said José Müller, who chairs the "
    "finance committee with Begoña Peña. “It’s a good day for the town,” he said."
)
PASTED_PARAGRAPH = "Die Bürgermeisterin begrüßte die Gäste. „Wir sind froh“, sagte sie."


async def test_page_text_is_read_in_the_charset_its_header_declares(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """The charset of a page's Content-Type header is how its text is read: a Windows-1252
    page with little non-ASCII text served as `charset=windows-1252` (no meta tag), and a
    UTF-8 page served as `charset=utf-8` with Windows-1252 quotes pasted into it, are stored
    as their readers see them."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    legacy = (
        "<html><head><title>Budget</title></head><body><article><h1>Budget</h1>"
        f"<p>{LEGACY_PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
    )
    server.routes["/legacy"] = static(legacy.encode("cp1252"), "text/html; charset=windows-1252")
    pasted = (
        "<html><head><title>Köln</title></head><body><article><h1>Köln</h1>"
        f"<p>{PASTED_PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
    )
    body = pasted.encode().replace("„".encode(), b"\x84").replace("“".encode(), b"\x93")
    server.routes["/pasted"] = static(body, "text/html; charset=utf-8")
    items = "".join(
        f"<item><title>{path}</title><link>{server.url(path)}</link>"
        f"<guid isPermaLink='false'>{path}</guid></item>"
        for path in ("/legacy", "/pasted")
    )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == 2
    stored = {
        r["guid"]: r
        for r in rows(database_url, "SELECT guid, text, text_source FROM news.articles")
    }
    assert stored["/legacy"]["text_source"] == "page"
    assert LEGACY_PARAGRAPH in stored["/legacy"]["text"]
    assert stored["/pasted"]["text_source"] == "page"
    assert PASTED_PARAGRAPH in stored["/pasted"]["text"]


def _story(title: str, canonical: str, words: str) -> bytes:
    paragraphs = "".join(f"<p>{title}: {words} {PARAGRAPH}</p>" for _ in range(3))
    return (
        f"<html lang='en'><head><title>{title}</title><link rel='canonical' href='{canonical}'>"
        f"</head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    ).encode()


async def test_a_canonical_naming_another_story_takes_neither_its_address_nor_its_row(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A CMS naming its latest story as the canonical of every page: each story is stored at
    its own address with its own text, and the one the others name keeps its address (the
    other stories were stored under it, and the two collided)."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    latest = server.url("/2025/08/12/council-approves-budget")
    pages = {
        "/2025/08/12/council-approves-budget": _story("Council approves budget", latest, "vote"),
        "/2025/08/11/mayor-resigns-over-harbour-deal": _story(
            "Mayor resigns over harbour deal", latest, "resignation"
        ),
        "/2025/08/10/ferry-timetable-changes": _story(
            "Ferry timetable changes", latest, "timetable"
        ),
    }
    items = ""
    for path, page in pages.items():
        server.routes[path] = static(page, "text/html")
        items += (
            f"<item><title>{path}</title><link>{server.url(path)}</link>"
            f"<guid isPermaLink='false'>{path}</guid></item>"
        )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == len(pages)
    stored = {
        r["guid"]: r
        for r in rows(database_url, "SELECT guid, url, text, text_source FROM news.articles")
    }
    assert set(stored) == set(pages)
    for path, row in stored.items():
        assert row["url"] == canonical_url(server.url(path)), path
        assert row["text_source"] == "page"
    assert "resignation" in stored["/2025/08/11/mayor-resigns-over-harbour-deal"]["text"]
    assert "timetable" in stored["/2025/08/10/ferry-timetable-changes"]["text"]
    assert "vote" in stored["/2025/08/12/council-approves-budget"]["text"]


@pytest.mark.parametrize(
    "front",
    [
        pytest.param("/topics/budget/", id="topic-front"),
        pytest.param("/index.html", id="home-page-index-file"),
        pytest.param("/?lang=en", id="home-page-with-a-language"),
    ],
)
async def test_a_canonical_naming_a_front_keeps_each_story_at_its_own_address(
    database_url: str, server: LocalServer, workers: Workers, front: str
) -> None:
    """A template naming a front as the canonical of each story: a topic's whose word each
    story's slug holds (`/topics/budget/`), the home page's index file or the home page with
    a language: each story is stored at its own address (they were stored under the
    front's, the first one kept and the others skipped as known)."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    front = server.url(front)
    pages = {
        "/politics/2025/06/02/council-vote-budget": _story("Council vote budget", front, "vote"),
        "/politics/2025/06/03/budget-talks-collapse": _story(
            "Budget talks collapse", front, "collapse"
        ),
    }
    items = ""
    for path, page in pages.items():
        server.routes[path] = static(page, "text/html")
        items += f"<item><title>{path}</title><link>{server.url(path)}</link></item>"
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == len(pages)
    stored = {
        r["url"]: r["text"] for r in rows(database_url, "SELECT url, text FROM news.articles")
    }
    assert set(stored) == {canonical_url(server.url(path)) for path in pages}
    assert (
        "collapse"
        in stored[canonical_url(server.url("/politics/2025/06/03/budget-talks-collapse"))]
    )


async def test_a_later_page_naming_the_first_as_its_canonical_keeps_its_own_address(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A story split over pages, each naming the first (`/story`) as its canonical, and listed
    each: the second page (`/story?page=2`) is stored at its own address with its own text
    (it was taken for the first page's article, already stored, and skipped as known: its
    text lost)."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    path = "/2025/06/02/council-approves-budget"
    first = server.url(path)
    pages = {
        path: _story("Council approves budget", first, "aldermen"),
        f"{path}?page=2": _story("Council approves budget", first, "treasurer"),
    }
    items = ""
    for route, page in pages.items():
        server.routes[route] = static(page, "text/html")
        items += (
            f"<item><title>Council approves budget {route}</title><link>{server.url(route)}"
            f"</link><guid isPermaLink='false'>{route}</guid></item>"
        )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == len(pages)
    stored = {r["guid"]: r for r in rows(database_url, "SELECT guid, url, text FROM news.articles")}
    assert stored[path]["url"] == canonical_url(first)
    assert "aldermen" in stored[path]["text"]
    later = stored[f"{path}?page=2"]
    assert later["url"] == canonical_url(server.url(f"{path}?page=2"))
    assert "treasurer" in later["text"]


# A single-page app's shell, as its server answers every route of the app: the story a
# hashbang route names is drawn by its scripts.
APP_SHELL = (
    b"<!DOCTYPE html><html><head><title>Harbour News</title>"
    b"<link rel='canonical' href='/app/'></head><body><div id='app'></div>"
    b"<script src='/app.js'></script></body></html>"
)


async def test_each_hashbang_route_is_an_article_of_its_own(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A feed of a single-page app whose entries link hashbang routes (`/app#!/stories/1234`),
    the app's address redirected (to `/app/`) and its shell naming the app as its canonical:
    each entry is an article at its own route, from its own text (the fragment was dropped, so
    that every story was one URL: the first stored at the app's address, the others skipped
    as known)."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/app"] = Response(301, b"", {"Location": "/app/"})
    server.routes["/app/"] = static(APP_SHELL, "text/html")
    stories = {"1234": "ferry terminal", "5678": "council budget"}
    items = "".join(
        f"<item><title>The {words} story</title><link>{server.url('/app#!/stories/' + n)}</link>"
        f"<description>The {words} story. {PARAGRAPH}</description></item>"
        for n, words in stories.items()
    )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == len(stories)
    stored = {
        r["url"]: r["text"] for r in rows(database_url, "SELECT url, text FROM news.articles")
    }
    for n, words in stories.items():
        text = stored[canonical_url(server.url(f"/app/#!/stories/{n}"))]
        assert f"The {words} story." in text


async def test_a_page_s_addresses_are_resolved_against_its_base_href(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A page whose `<base href>` names its site's root (TYPO3's `config.baseURL`, an Angular
    app's `/`), with its canonical and `og:image` written relative to it: the article is stored
    at the address a browser resolves them to (they were resolved against the page's own
    address: the article stored at `/news/detail/news/detail/…`, which answers 404, and its
    image at a file that is not there)."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    path = "/news/detail/council-approves-harbour-budget/"
    page = (
        "<html lang='en'><head><title>Council approves harbour budget</title>"
        f"<base href='{server.url('/')}'>"
        f"<link rel='canonical' href='{path.lstrip('/')}'>"
        "<meta property='og:image' content='fileadmin/images/harbour.jpg'></head><body><article>"
        f"<h1>Council approves harbour budget</h1><p>{PARAGRAPH}</p><p>{PARAGRAPH}</p>"
        "</article></body></html>"
    )
    server.routes[path] = static(page.encode(), "text/html")
    items = f"<item><title>Harbour budget</title><link>{server.url(path)}</link></item>"
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == 1
    [row] = rows(database_url, "SELECT url, image_url, text_source FROM news.articles")
    assert row["text_source"] == "page"
    assert row["url"] == canonical_url(server.url(path))
    assert row["image_url"] == server.url("/fileadmin/images/harbour.jpg")


async def test_a_canonical_without_the_query_naming_the_story_keeps_each_at_its_address(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A script serving every story by an id in its query (`/news.php?id=4511`) whose
    template writes its own path as the canonical (PHP's `PHP_SELF`, without the query): each
    story is stored at its own address with its own text (they were stored under the
    script's, the first kept and the others skipped as known)."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    script = server.url("/news.php")
    pages = {
        "/news.php?id=4511": _story("Council approves budget", script, "vote"),
        "/news.php?id=4512": _story("Mayor resigns over harbour deal", script, "resignation"),
    }
    items = ""
    for route, page in pages.items():
        server.routes[route] = static(page, "text/html")
        items += f"<item><title>{route}</title><link>{server.url(route)}</link></item>"
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == len(pages)
    stored = {
        r["url"]: r["text"] for r in rows(database_url, "SELECT url, text FROM news.articles")
    }
    assert set(stored) == {canonical_url(server.url(route)) for route in pages}
    assert "resignation" in stored[canonical_url(server.url("/news.php?id=4512"))]


def _refresh_stub(content: str) -> bytes:
    """A CMS's "Redirecting..." page: a meta refresh and a link, and nothing else."""
    return (
        f"<!DOCTYPE html><html><head><meta http-equiv='Refresh' content=\"{content}\">"
        "<title>Redirecting...</title></head><body><h1>Redirecting...</h1>"
        "<p>You are being redirected. <a href='/story'>Click here</a> if nothing happens.</p>"
        "</body></html>"
    ).encode()


async def test_a_meta_refresh_stub_leads_to_its_article(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """An entry with only a title whose link answers with a meta refresh stub: the refresh is
    followed as a redirect (its target's robots.txt asked, as for a redirect), and the
    article's text and address are the target's; one whose target robots.txt disallows is
    stored without the stub's text."""
    server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /private/\n", "text/plain")
    server.routes["/harbour"] = static(article_page("Harbour"), "text/html")
    server.routes["/ferry"] = static(article_page("Ferry"), "text/html")
    server.routes["/private/story"] = static(article_page("Private"), "text/html")
    stubs = {
        "/go/relative": "0; url=/harbour",
        "/go/quoted": f"0;URL='{server.url('/ferry')}'",
        "/go/private": "1; url=/private/story",
    }
    for path, content in stubs.items():
        server.routes[path] = static(_refresh_stub(content), "text/html")
    items = "".join(
        f"<item><title>Harbour {path}</title><link>{server.url(path)}</link>"
        f"<guid isPermaLink='false'>{path}</guid></item>"
        for path in stubs
    )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.new_articles == len(stubs)
    stored = {
        r["guid"]: r
        for r in rows(
            database_url, "SELECT guid, url, text, text_source, extraction_error FROM news.articles"
        )
    }
    for path, target in (("/go/relative", "/harbour"), ("/go/quoted", "/ferry")):
        row = stored[path]
        assert row["text_source"] == "page", row["extraction_error"]
        assert PARAGRAPH in row["text"]
        assert "Redirecting" not in row["text"]
        assert row["url"] == canonical_url(server.url(target))
    private = stored["/go/private"]
    assert private["text_source"] == "feed"
    assert "Redirecting" not in private["text"]
    assert "robots.txt: disallowed (redirect to" in private["extraction_error"]
    assert server.hits("/private/story") == []
