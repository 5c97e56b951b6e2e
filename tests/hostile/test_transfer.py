"""Hostile transfers against the real Fetcher, loopback servers and the pipeline: responses
whose unwanted body never comes, headers given twice or in bytes outside ASCII, charsets and
content codings that name none, storms of 1xx responses and of one-byte chunks, framing a
server gets wrong, refresh loops, binary documents served as HTML. Each ends in the result
the response means or one clear error, the run going on and the event loop turning, within
the deadline."""

from __future__ import annotations

import asyncio
import gzip
import random
import re
import socket
import ssl
import threading
from collections.abc import Callable

import httpx
import pytest

from ingest.errors import FetchError
from ingest.fetch import Fetcher
from ingest.fetch.client import _joined, _location
from ingest.pages import fetch_page
from ingest.workers.pool import Workers
from tests.support.httpserver import LocalServer, RawServer, Response, read_request, static
from tests.support.pipelines import article_page, local_settings, pipeline_for, rows, rss
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class _Unfinished:
    """A raw server's handler: reads the request, sends `head` (status line and headers) with
    the start of a body its Content-Length promises more of, then stalls (`then="stall"`: the
    connection held open, nothing more sent, until `release`) or hangs up (`"close"`)."""

    def __init__(self, head: str, *, then: str) -> None:
        self._head = head.encode("latin-1") + b"Content-Length: 1000\r\n\r\n<html>"
        self._then = then
        self._released = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(self._head)
        if self._then == "stall":
            self._released.wait(30)
        conn.close()

    def release(self) -> None:
        self._released.set()


# --- bodies nobody reads ------------------------------------------------------------------------


@pytest.mark.parametrize("then", ["stall", "close"])
async def test_a_redirect_whose_body_never_comes_is_followed(
    server: LocalServer, then: str
) -> None:
    """A 301 whose Content-Length promises a body the server never sends (the connection held
    open, or closed midway) is followed: its body is not wanted, and its Location is what it
    says; the connection is not reused."""
    server.routes["/new"] = static(article_page("Moved"))
    handler = _Unfinished(f"HTTP/1.1 301 Moved\r\nLocation: {server.url('/new')}\r\n", then=then)
    with RawServer(handler) as raw:
        async with Fetcher(local_settings(read_timeout=20, request_deadline=30)) as fetcher:
            result = await fetcher.fetch(raw.url("/old"), "page")
        handler.release()
    assert result.final_url == server.url("/new")
    assert result.redirects == ((301, server.url("/new")),)
    assert b"Moved" in result.body


@pytest.mark.parametrize("then", ["stall", "close"])
@pytest.mark.parametrize(
    ("head", "status", "retry_after"),
    [
        ("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\n", 503, "120"),
        ("HTTP/1.1 404 Not Found\r\n", 404, None),
    ],
    ids=["503", "404"],
)
async def test_an_error_whose_body_never_comes_keeps_its_status(
    head: str, status: int, retry_after: str | None, then: str
) -> None:
    """A 503 with a Retry-After, or a 404, whose error page never comes whole is that status
    (the feed's 404s counted, the host held), not a read timeout or a protocol error that says
    nothing of what the server answered."""
    handler = _Unfinished(head, then=then)
    with RawServer(handler) as raw:
        async with Fetcher(local_settings(read_timeout=20, request_deadline=30)) as fetcher:
            with pytest.raises(FetchError) as info:
                await fetcher.fetch(raw.url("/feed"), "feed")
        handler.release()
    assert (info.value.status, info.value.retry_after) == (status, retry_after), info.value


async def test_a_feed_moved_by_a_redirect_whose_body_never_comes_is_polled_there(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A feed whose URL answers 301 with a body that never comes is polled at the Location,
    its entries stored, in one run."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/story"] = static(article_page("Story"))
    server.routes["/feed"] = static(
        rss(
            f"<item><title>Story</title><link>{server.url('/story')}</link>"
            "<description>Feed text.</description></item>"
        ),
        "application/rss+xml",
    )
    handler = _Unfinished(
        f"HTTP/1.1 301 Moved\r\nLocation: {server.url('/feed')}\r\n", then="stall"
    )
    settings = local_settings(database_url, read_timeout=20, request_deadline=30)
    with RawServer(handler) as raw:
        async with pipeline_for(settings, workers) as pipeline:
            await pipeline.store.add_feed(raw.url("/feed"))
            summary = await pipeline.run()
        handler.release()
    assert (summary.ok, summary.failed, summary.new_articles) == (1, 0, 1)
    (row,) = rows(database_url, "SELECT url, text_source FROM news.articles")
    assert row == {"url": server.url("/story"), "text_source": "page"}


# --- headers given twice ------------------------------------------------------------------------


def _raw_site(pages: dict[str, bytes]) -> Callable[[socket.socket], None]:
    """A raw server's handler answering each request with the response written for its path
    (status line, headers and body as bytes, one request a connection), else a 404."""

    def handle(conn: socket.socket) -> None:
        head = read_request(conn)
        path = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "/"
        conn.sendall(pages.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        conn.close()

    return handle


def _response(headers: list[str], body: bytes) -> bytes:
    lines = "".join(f"{line}\r\n" for line in headers)
    return (
        f"HTTP/1.1 200 OK\r\n{lines}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + body


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["text/html", "text/html"], "text/html"),
        (["text/html; charset=utf-8", "text/html; charset=utf-8"], "text/html; charset=utf-8"),
        (["text/plain", "text/html; charset=utf-8"], "text/html; charset=utf-8"),
        (["text/html; charset=windows-1252", "text/html"], "text/html; charset=windows-1252"),
        (["text/html; charset=utf-8", "text/plain"], "text/plain"),
        (["text/html", "*/*"], "text/html"),
        (["application/rss+xml", "nonsense"], "application/rss+xml"),
        (["text/html, text/html"], "text/html"),
        (["nonsense"], "nonsense"),
    ],
    ids=[
        "twice",
        "twice-with-charset",
        "last-wins",
        "charset-of-the-same-type-kept",
        "charset-of-another-type-dropped",
        "any-type-ignored",
        "no-type-ignored",
        "one-line-with-a-comma",
        "one-value-naming-no-type",
    ],
)
async def test_a_content_type_sent_twice_is_read_as_a_browser_reads_it(
    values: list[str], expected: str
) -> None:
    """A response whose Content-Type header comes twice (a framework's and a proxy's) has the
    type a browser reads (Fetch's "extract a MIME type"): the last value that names a type,
    with the charset an earlier value of that type gave; not the values joined by a comma,
    `text/html, text/html`, which is no type at all."""
    page = _response([f"Content-Type: {v}" for v in values], b"<html><p>x</p></html>")
    with RawServer(_raw_site({"/page": page})) as raw:
        async with Fetcher(local_settings()) as fetcher:
            result = await fetcher.fetch(raw.url("/page"), "page")
    assert result.content_type == expected


async def test_a_page_whose_content_type_comes_twice_is_stored_from_its_text(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A page served with two Content-Type lines (`text/html` twice; a Windows-1252 charset,
    then the server's default `text/html`) is an HTML page, read in its charset: stored from
    its own text, not from the feed's with "not an HTML page: text/html, text/html"."""
    legacy = "José Müller said the “budget” was approved."
    pages = {
        "/robots.txt": b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        "/twice": _response(["Content-Type: text/html"] * 2, article_page("Twice")),
        "/legacy": _response(
            ["Content-Type: text/html; charset=windows-1252", "Content-Type: text/html"],
            article_page("Legacy").replace(b"harbour", legacy.encode("cp1252")),
        ),
    }
    with RawServer(_raw_site(pages)) as raw:
        items = "".join(
            f"<item><title>{name}</title><link>{raw.url('/' + name.lower())}</link>"
            f"<description>Feed text {name}.</description></item>"
            for name in ("Twice", "Legacy")
        )
        server.routes["/feed"] = static(rss(items), "application/rss+xml")
        async with pipeline_for(local_settings(database_url), workers) as pipeline:
            await pipeline.store.add_feed(server.url("/feed"))
            summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, 2)
    stored = {
        r["title"]: r
        for r in rows(
            database_url, "SELECT title, text, text_source, extraction_error FROM news.articles"
        )
    }
    assert {t: r["text_source"] for t, r in stored.items()} == {"Twice": "page", "Legacy": "page"}
    assert legacy in stored["Legacy"]["text"]


# --- charsets that name no charset --------------------------------------------------------------


def _legacy_page(title: str, meta: str = "") -> bytes:
    """An article page in Windows-1252 (not UTF-8), with `meta` in its head."""
    return (
        article_page(title)
        .replace(b"<head>", f"<head>{meta}".encode())
        .replace(b"harbour", "José Müller’s harbour".encode("cp1252"))
    )


@pytest.mark.parametrize(
    ("content_type", "meta"),
    [
        ("text/html; charset=base64", ""),
        ("text/html; charset=zlib", ""),
        ("text/html", "<meta charset='rot13'>"),
        ("text/html", "<meta http-equiv='Content-Type' content='text/html; charset=hex'>"),
        ("text/html; charset=uu", "<meta charset='bz2'>"),
    ],
    ids=["served-base64", "served-zlib", "meta-rot13", "meta-hex", "both"],
)
async def test_a_charset_naming_a_codec_of_bytes_is_no_charset(
    database_url: str, server: LocalServer, workers: Workers, content_type: str, meta: str
) -> None:
    """A page that is not UTF-8 whose charset, served or in its meta tag, names one of
    Python's codecs of bytes to bytes (`base64`, `zlib`, `rot13`, `hex`: no charset a
    browser knows) is read as a page declaring none: stored from its own text, not from the
    feed's with "internal error: LookupError" and a `page_bug` traceback."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/page"] = static(_legacy_page("Codec", meta), content_type)
    server.routes["/feed"] = static(
        rss(
            f"<item><title>Codec</title><link>{server.url('/page')}</link>"
            "<description>Feed text.</description></item>"
        ),
        "application/rss+xml",
    )
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, 1)
    (row,) = rows(database_url, "SELECT text, text_source, extraction_error FROM news.articles")
    assert (row["text_source"], row["extraction_error"]) == ("page", None)
    assert "harbour authority said on Thursday" in row["text"]


# --- Location in bytes outside ASCII ------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "requested"),
    [
        ([b"Location: /caf\xc3\xa9?q=\xc3\xa9t\xc3\xa9"], "/caf%C3%A9?q=%C3%A9t%C3%A9"),
        (
            [b"Set-Cookie: who=Jos\xe9", b"Location: /caf\xc3\xa9?q=\xc3\xa9t\xc3\xa9"],
            "/caf%C3%A9?q=%C3%A9t%C3%A9",
        ),
        ([b"Location: /caf\xe9?q=\xe9t\xe9"], "/caf%E9?q=%E9t%E9"),
        ([b"Location: /caf%C3%A9", b"Location: /caf%C3%A9"], "/caf%C3%A9"),
    ],
    ids=["utf-8", "utf-8-beside-latin-1", "latin-1", "twice"],
)
async def test_a_location_outside_ascii_is_followed_to_the_bytes_it_names(
    server: LocalServer, headers: list[bytes], requested: str
) -> None:
    """A redirect's Location holding bytes outside ASCII leads to the address of those very
    bytes, percent-encoded (as browsers and curl follow it): UTF-8's `café` to `caf%C3%A9`,
    beside a cookie in Latin-1 too; a Latin-1 `caf\\xe9` to `caf%E9`, the page of a site in
    Latin-1. A Location sent twice with one value is that value."""
    server.routes[requested] = static(article_page("Found"))
    moved = (
        b"HTTP/1.1 301 Moved\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(moved.replace(b"Location: /", f"Location: {server.base}/".encode()))
        conn.close()

    with RawServer(handle) as raw:
        async with Fetcher(local_settings()) as fetcher:
            result = await fetcher.fetch(raw.url("/old"), "page")
    assert result.final_url == server.url(requested)
    assert [r.path for r in server.requests if r.path != "/robots.txt"] == [requested]
    assert b"Found" in result.body


@pytest.mark.parametrize(
    ("location", "host", "path"),
    [
        ("https://bücher.de/neu/café".encode(), b"xn--bcher-kva.de", b"/neu/caf%C3%A9"),
        ("//пример.рф/".encode(), b"xn--e1afmkfd.xn--p1ai", b"/"),
    ],
    ids=["utf-8-host", "scheme-relative"],
)
def test_a_location_naming_its_host_in_letters_outside_ascii_goes_to_its_idna_name(
    location: bytes, host: bytes, path: bytes
) -> None:
    """A Location whose host is written in UTF-8 letters (`bücher.de`) leads to that host's
    IDNA name, as browsers resolve it, its path percent-encoded as its bytes are; not to a
    host percent-encoded, which no resolver knows."""
    named = _location("https://example.com/old", httpx.Headers([(b"Location", location)]))
    assert named is not None
    url = _joined(httpx.URL("https://example.com/old"), named)
    assert (url.raw_host, url.raw_path) == (host, path)


async def test_a_redirect_naming_two_locations_is_refused() -> None:
    """A redirect with two Location headers of different values names no one address (a
    browser refuses it too): a permanent FetchError naming both, no request to either, not
    a request for the two joined by a comma."""

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        conn.close()

    with RawServer(handle) as raw:
        async with Fetcher(local_settings()) as fetcher:
            with pytest.raises(FetchError, match="two Location headers: '/a', '/b'") as info:
                await fetcher.fetch(raw.url("/old"), "page")
        assert raw.connections == 1
    assert not info.value.transient


# --- informational responses --------------------------------------------------------------------


def _informational(count: int | None) -> Callable[[socket.socket], None]:
    """A raw server's handler answering with `count` 100 Continue and 103 Early Hints
    responses, then a page; with None, with such responses for as long as the client reads."""

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        hint = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        if count is None:
            while True:
                conn.sendall(hint * 1000)
        conn.sendall(hint[:25] * (count % 2) + hint * (count // 2))
        body = article_page("Hinted")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.close()

    return handle


async def test_a_storm_of_informational_responses_is_a_protocol_error() -> None:
    """A server answering with 1xx responses without end (`100 Continue`, `103 Early Hints`,
    as fast as loopback carries them) is a protocol error at the sixth: parsing them for the
    whole deadline kept the event loop, and every other fetch and query on it, waiting up to
    a second at a time."""
    with RawServer(_informational(None)) as raw:
        async with Fetcher(local_settings(request_deadline=5)) as fetcher:
            with pytest.raises(
                FetchError, match=r"protocol error: more than 5 informational \(1xx\) responses"
            ):
                await fetcher.fetch(raw.url("/page"), "page")


async def test_a_few_informational_responses_come_before_the_page() -> None:
    """Five 1xx responses before the page (the most a real server sends is one or two Early
    Hints) are passed over: the page is the result."""
    with RawServer(_informational(5)) as raw:
        async with Fetcher(local_settings()) as fetcher:
            result = await fetcher.fetch(raw.url("/page"), "page")
    assert (result.status, b"Hinted" in result.body) == (200, True)


# --- a body in tiny chunks ----------------------------------------------------------------------

TINY_CHUNKS = 100_000


def _tiny_chunks(conn: socket.socket) -> None:
    """Sends at once, before reading the request, a body of TINY_CHUNKS chunks of one byte
    each (600 KB on the wire, held by the sockets' buffers)."""
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"1\r\nx\r\n" * TINY_CHUNKS
        + b"0\r\n\r\n"
    )
    read_request(conn)
    conn.recv(1)


async def test_a_body_in_tiny_chunks_lets_the_event_loop_turn() -> None:
    """A body of 100,000 one-byte chunks, all of it in the socket's buffer at once (a server
    sending a body as fast as the network carries it, a byte a chunk), is read with the event
    loop turning at least once every 64 chunks: parsing one took 37 µs, and what the socket
    held was parsed at a stretch, the loop (every other fetch and query of the process)
    waiting seconds at a time."""
    turns = 0

    async def another_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    with RawServer(_tiny_chunks) as raw:
        async with Fetcher(local_settings(request_deadline=60)) as fetcher:
            other = asyncio.create_task(another_task())
            await asyncio.sleep(0)
            turns = 0
            result = await fetcher.fetch(raw.url("/page"), "page")
            other.cancel()
    assert result.body == b"x" * TINY_CHUNKS
    assert turns >= TINY_CHUNKS // 64, turns


# --- a Content-Encoding that names no coding ----------------------------------------------------


@pytest.mark.parametrize("coding", ["none", "UTF-8", "binary", "8bit", "text", "none, gzip"])
async def test_a_content_encoding_naming_no_coding_is_the_body_as_sent(
    server: LocalServer, coding: str
) -> None:
    """A Content-Encoding that names no content coding at all (`none`: PHP's idiom to keep a
    server from compressing a page it flushes; a charset, `UTF-8`; `binary`, `8bit`) says
    nothing of the body, which is read as sent (or as the codings named beside it), as a
    browser reads it; not refused for good as "unsupported content encoding"."""
    page = article_page("Plain")
    body = gzip.compress(page) if "gzip" in coding else page
    server.routes["/page"] = Response(
        200, body, {"Content-Type": "text/html", "Content-Encoding": coding}
    )
    async with Fetcher(local_settings()) as fetcher:
        result = await fetcher.fetch(server.url("/page"), "page")
    assert result.body == page


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "x-compress", "aes128gcm"])
async def test_a_content_coding_that_cannot_be_decoded_is_refused(
    server: LocalServer, coding: str
) -> None:
    """A registered content coding that is not decoded here (never asked for: the request
    accepts gzip alone) is still refused for good, its bytes never taken for the page."""
    server.routes["/page"] = Response(200, b"\x00\x01\x02", {"Content-Encoding": coding})
    async with Fetcher(local_settings()) as fetcher:
        with pytest.raises(FetchError, match=f"unsupported content encoding: {coding}") as info:
            await fetcher.fetch(server.url("/page"), "page")
    assert not info.value.transient


async def test_a_feed_served_with_content_encoding_none_is_polled(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A feed and its page served with `Content-Encoding: none` are read: the feed polled,
    its entry stored from its page."""
    none = {"Content-Encoding": "none"}
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/story"] = Response(
        200, article_page("Story"), {"Content-Type": "text/html", **none}
    )
    feed = rss(
        f"<item><title>Story</title><link>{server.url('/story')}</link>"
        "<description>Feed text.</description></item>"
    )
    server.routes["/feed"] = Response(200, feed, {"Content-Type": "application/rss+xml", **none})
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert (summary.ok, summary.failed, summary.new_articles) == (1, 0, 1)
    (row,) = rows(database_url, "SELECT text_source FROM news.articles")
    assert row["text_source"] == "page"


# --- what a server writes, quoted in an error -----------------------------------------------------

LONG = b"a" * 90_000


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://[" + LONG,
            "invalid redirect location 'http://[aaa",
        ),
        (b"HTTP/1.1 302 Found\r\nLocation: /" + LONG, "invalid redirect location '/aaa"),
        (b"HTTP/1.1 500 " + LONG, "HTTP 500 aaa"),
        (b"HTTP/1.1 2000 " + LONG, "protocol error: illegal status line: "),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nRefresh: 0; url=http://[" + LONG,
            "invalid refresh location 'http://[aaa",
        ),
    ],
    ids=["location-no-url", "location-over-64-kib", "reason-phrase", "status-line", "refresh"],
)
async def test_an_error_quotes_at_most_a_few_hundred_characters_of_what_the_server_wrote(
    response: bytes, message: str
) -> None:
    """An error quoting what a server wrote (a Location or Refresh that is no URL, a reason
    phrase, a status line h11 refuses) of 90,000 characters quotes its first 200, then `…`:
    the error recorded on the feed or the article (and its log line) says what went wrong in
    a line, not in 90 KB."""

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(response + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    with RawServer(handle) as raw:
        async with Fetcher(local_settings()) as fetcher:
            with pytest.raises(FetchError) as info:
                await fetcher.fetch(raw.url("/page"), "page")
    assert str(info.value).startswith(message), str(info.value)[:300]
    assert len(str(info.value)) < 400, str(info.value)[:300]


async def test_a_page_whose_content_type_is_long_is_refused_in_a_line(
    server: LocalServer, inline_workers: InlineWorkers
) -> None:
    """A page whose Content-Type is 90,000 characters of no HTML type is "not an HTML page"
    quoting the type's first 200 characters, not all of them."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/page"] = Response(200, b"%PDF-1.4", {"Content-Type": "a/" + "b" * 90_000})
    async with Fetcher(local_settings()) as fetcher:
        outcome = await fetch_page(fetcher, inline_workers, server.url("/page"), extract_timeout=5)
    assert outcome.error == f"not an HTML page: a/{'b' * 198}…"


# --- framing a server gets wrong: pinned ------------------------------------------------------

CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"


def _endless(head: bytes, piece: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head)
        while True:
            conn.sendall(piece)

    return handle


def _once(response: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(response)
        conn.close()

    return handle


FRAMING = {
    "chunk-size-2^63": (_endless(CHUNKED + b"8000000000000000\r\n", b"x" * 65536), "body exceeds"),
    "chunk-size-1000-digits": (_once(CHUNKED + b"f" * 1000 + b"\r\nx"), "illegal chunk header"),
    "chunk-extension-200-kb": (
        _once(CHUNKED + b"5;" + b"e" * 200_000 + b"\r\nhello\r\n0\r\n\r\n"),
        "protocol error: Receive buffer too long",
    ),
    "content-lengths-differ": (
        _once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        "conflicting Content-Length headers",
    ),
    "switching-protocols": (
        _once(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" + b"x" * 100),
        "protocol error",
    ),
    "http-0.9": (_once(b"<html><p>no status line</p></html>"), "protocol error"),
    "location-with-a-bare-cr": (
        _once(b"HTTP/1.1 302 Found\r\nLocation: /a\rX: y\r\nContent-Length: 0\r\n\r\n"),
        "protocol error: illegal header line",
    ),
    "redirect-to-data": (
        _once(b"HTTP/1.1 302 Found\r\nLocation: data:text/html,<p>x\r\nContent-Length: 0\r\n\r\n"),
        "redirect to scheme 'data' is not allowed",
    ),
    "redirect-to-javascript": (
        _once(b"HTTP/1.1 302 Found\r\nLocation: javascript:alert(1)\r\nContent-Length: 0\r\n\r\n"),
        "redirect to scheme 'javascript' is not allowed",
    ),
    "10000-headers": (
        _once(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 10_000 + b"Content-Length: 2\r\n\r\nok"),
        None,
    ),
    "a-100-kb-header": (
        _once(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\nContent-Length: 2\r\n\r\nok"),
        None,
    ),
    "content-length-under-the-body": (
        _once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok and more"),
        None,
    ),
}


@pytest.mark.parametrize("case", list(FRAMING))
async def test_framing_a_server_gets_wrong_ends_in_one_clear_outcome(case: str) -> None:
    """Each framing a server gets wrong ends in one clear FetchError (a chunk size of 2^63
    cut at the cap, a chunk header or extension h11 refuses, two Content-Lengths, a 101 or
    an HTTP/0.9 answer to a GET, a Location with a bare CR, a redirect to `data:` or
    `javascript:`), or in the body it frames (10,000 headers, one of 100 KB under h11's
    limit, a body longer than its Content-Length cut there, as browsers cut it)."""
    handler, expected = FRAMING[case]
    with RawServer(handler) as raw:
        async with Fetcher(local_settings()) as fetcher:
            if expected is None:
                result = await fetcher.fetch(raw.url("/page"), "page")
                assert result.body == b"ok"
                return
            with pytest.raises(FetchError, match=re.escape(expected)):
                await fetcher.fetch(raw.url("/page"), "page")


async def test_a_meta_refresh_loop_ends_as_a_redirect_loop(server: LocalServer) -> None:
    """Two refresh stubs sending each other on (`/a` to `/b` to `/a`), or a redirect and a
    stub, are a loop of redirects: "too many redirects" after INGEST_MAX_REDIRECTS, for good
    (the page's status, 200, is no passing failure)."""
    stub = "<html><head><meta http-equiv=refresh content='0;url={}'></head><body>…</body></html>"
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/a"] = static(stub.format("/b"))
    server.routes["/b"] = static(stub.format("/a"))
    server.routes["/c"] = Response(302, b"", {"Location": "/d"})
    server.routes["/d"] = static(stub.format("/c"))
    async with Fetcher(local_settings()) as fetcher:
        for start in ("/a", "/c"):
            with pytest.raises(FetchError, match=r"too many redirects \(more than 5\)") as info:
                await fetcher.fetch(server.url(start), "page")
            assert not info.value.transient


async def test_binary_documents_served_as_html_fall_back_to_the_feed_text(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A PDF, a JPEG and a ZIP (a .docx) served as `text/html`, and a PDF served with no
    Content-Type: each entry stored from the feed's text, "not an HTML document"; the feed
    polled ok."""
    binary = random.Random(12).randbytes(20_000)
    bodies = {
        "/pdf": (
            b"%PDF-1.4\n" + b"(The harbour authority said on Thursday.) Tj\n" * 50,
            "text/html",
        ),
        "/jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + binary, "text/html; charset=utf-8"),
        "/zip": (b"PK\x03\x04" + binary, "text/html"),
        "/untyped": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + binary, None),
    }
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    items = ""
    for path, (body, content_type) in bodies.items():
        server.routes[path] = Response(
            200, body, {"Content-Type": content_type} if content_type else {}
        )
        items += (
            f"<item><title>{path}</title><link>{server.url(path)}</link>"
            f"<description>Feed text {path}.</description></item>"
        )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert (summary.ok, summary.new_articles) == (1, len(bodies))
    for row in rows(
        database_url, "SELECT title, text, text_source, extraction_error FROM news.articles"
    ):
        assert (row["text_source"], row["text"]) == ("feed", f"Feed text {row['title']}.")
        assert row["extraction_error"] == "not an HTML document", row


# --- a URL with a tab or a line break in it ---------------------------------------------------


@pytest.mark.parametrize(
    ("head", "body"),
    [
        (b"HTTP/1.1 301 Moved\r\nLocation: {base}/news/2024/\tstory.html\r\n", b""),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n",
            b"<html><head><meta http-equiv='refresh' content='0; url={base}/news/2024/\n"
            b"story.html'></head></html>",
        ),
    ],
    ids=["location-with-a-tab", "refresh-broken-over-lines"],
)
async def test_a_redirect_whose_url_holds_a_tab_or_a_line_break_is_followed_without_it(
    server: LocalServer, head: bytes, body: bytes
) -> None:
    """A Location holding a tab, or a meta refresh stub whose address a template broke over
    lines (`url=/news/2024/⏎story.html`), leads to the address without it, as a browser
    reads a URL (the URL standard drops every ASCII tab and newline first; a page's canonical
    link is read so too), not to "invalid redirect location" for good."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/news/2024/story.html"] = static(article_page("Found"))
    base = server.base.encode()
    head, body = head.replace(b"{base}", base), body.replace(b"{base}", base)
    framing = b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head + framing + body)
        conn.close()

    with RawServer(handle) as raw:
        async with Fetcher(local_settings()) as fetcher:
            result = await fetcher.fetch(raw.url("/old"), "page")
    assert result.final_url == server.url("/news/2024/story.html")
    assert b"Found" in result.body


# --- a header sent twice with one value ---------------------------------------------------------


async def test_a_503_whose_retry_after_comes_twice_holds_its_host() -> None:
    """A 503 whose Retry-After (and Date) a proxy repeated with the same value (`120` twice)
    says 120 seconds: the error carries it and the host is held, not a Retry-After of
    `120, 120` that reads as none."""
    date = "Tue, 08 Dec 2026 05:00:00 GMT"
    twice = f"Retry-After: 120\r\nRetry-After: 120\r\nDate: {date}\r\nDate: {date}\r\n"
    with RawServer(_once(f"HTTP/1.1 503 Busy\r\n{twice}Content-Length: 0\r\n\r\n".encode())) as raw:
        async with Fetcher(local_settings()) as fetcher:
            with pytest.raises(FetchError) as info:
                await fetcher.fetch(raw.url("/feed"), "feed")
            held = fetcher.quiet_for(raw.url("/feed"))
    assert (info.value.status, info.value.retry_after, info.value.date) == (503, "120", date)
    assert held > 100


async def test_validators_sent_twice_with_one_value_are_that_value() -> None:
    """A Last-Modified and an ETag a proxy repeated with the same value are kept as that
    value, sent back as the server wrote it: the next poll can be answered 304."""
    stamp = "Wed, 01 Jan 2025 00:00:00 GMT"
    head = f'Last-Modified: {stamp}\r\nLast-Modified: {stamp}\r\nETag: "v1"\r\nETag: "v1"\r\n'
    response = f"HTTP/1.1 200 OK\r\n{head}Content-Length: 2\r\n\r\nok".encode()
    with RawServer(_once(response)) as raw:
        async with Fetcher(local_settings()) as fetcher:
            result = await fetcher.fetch(raw.url("/feed"), "feed")
    assert (result.last_modified, result.etag) == (stamp, '"v1"')


# --- a redirect loop across schemes -----------------------------------------------------------


async def test_a_redirect_loop_across_schemes_ends_as_a_loop(
    server: LocalServer, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A private feed whose http:// address redirects to https:// and back, for ever: "too
    many redirects" after INGEST_MAX_REDIRECTS hops (six requests), the credential of its
    URL sent to its own origin only, never across the loop to the other."""
    with LocalServer("127.0.0.1", tls=server_tls) as secure:
        server.routes["/feed"] = Response(302, b"", {"Location": secure.url("/feed")})
        secure.routes["/feed"] = Response(302, b"", {"Location": server.url("/feed")})
        private = server.url("/feed").replace("http://", "http://reader:s3cret@")
        async with Fetcher(local_settings(), ssl_context=client_tls) as fetcher:
            with pytest.raises(FetchError, match=r"too many redirects \(more than 5\)"):
                await fetcher.fetch(private, "feed")
        hops = [*server.requests, *secure.requests]
        assert len(hops) == 6
        assert all("authorization" in r.headers for r in server.requests)
        assert not any("authorization" in r.headers for r in secure.requests)
