"""Fetcher end to end against a real HTTP server on loopback: results, caps, deadlines,
redirects, status errors, the SSRF guard and robots.txt. No traffic leaves 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from ingest import USER_AGENT
from ingest.config import Settings
from ingest.errors import BlockedError, FetchError
from ingest.fetch import Fetcher, client
from ingest.types import FeedSettings, FetchKind
from tests.support.httpserver import (
    LocalServer,
    RawServer,
    Request,
    Response,
    Route,
    read_request,
    static,
)
from tests.support.network import fake_dns, only_first_loopback_is_public
from tests.support.virtual_time import SteppingClock

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

# No delay between requests to one host: politeness has its own tests (test_politeness.py).
LOCAL = Settings(allow_private_networks=True, host_delay=0)
ETAG = '"v1"'
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
FEED = "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def _settings(**overrides: object) -> Settings:
    return dataclasses.replace(LOCAL, **overrides)


# --- results -------------------------------------------------------------------------------------


async def test_200_returns_body_and_validators(server: LocalServer) -> None:
    """A 200 carries the body, lowercase headers and the validators for the next poll."""
    server.routes["/feed"] = static(
        FEED, "application/rss+xml", etag=ETAG, last_modified=LAST_MODIFIED
    )
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/feed"), "feed")
    assert result.status == 200
    assert result.body == FEED.encode()
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.content_type == "application/rss+xml"
    assert result.url == result.final_url == server.url("/feed")
    assert result.redirects == ()
    assert all(k == k.lower() for k in result.headers)
    (sent,) = server.hits("/feed")
    assert sent.headers["user-agent"] == USER_AGENT
    assert sent.headers["accept-encoding"] == "gzip"
    assert "if-none-match" not in sent.headers


async def test_conditional_get_returns_304_result(server: LocalServer) -> None:
    """Validators are sent as If-None-Match / If-Modified-Since and a 304 is a result."""
    server.routes["/feed"] = static(FEED, etag=ETAG, last_modified=LAST_MODIFIED)
    async with Fetcher(LOCAL) as fetcher:
        by_etag = await fetcher.fetch(server.url("/feed"), "feed", etag=ETAG)
        by_date = await fetcher.fetch(server.url("/feed"), "feed", last_modified=LAST_MODIFIED)
        changed = await fetcher.fetch(server.url("/feed"), "feed", etag='"old"')
    assert by_etag.status == 304
    assert by_etag.not_modified
    assert by_etag.body == b""
    assert by_date.status == 304
    assert changed.status == 200
    assert changed.body == FEED.encode()
    first, second, _ = server.hits("/feed")
    assert first.headers["if-none-match"] == ETAG
    assert second.headers["if-modified-since"] == LAST_MODIFIED


async def test_a_304_to_a_request_without_validators_is_a_fetch_error(
    server: LocalServer,
) -> None:
    """A 304 says that the copy the request named is still current: to a request that named
    none (no If-None-Match, no If-Modified-Since: a cached 304 served to anyone) it says
    nothing of the document, and is a FetchError with its status, not an empty result."""
    server.routes["/feed"] = Response(304, b"", {"ETag": ETAG})
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(server.url("/feed"), "feed")
        assert caught.value.status == 304
        assert "without validators" in str(caught.value)
        # Asked with a validator, the same answer is a result.
        assert (await fetcher.fetch(server.url("/feed"), "feed", etag=ETAG)).not_modified


async def test_gzip_body_is_decoded(server: LocalServer) -> None:
    """A gzip-encoded response comes back as the decoded bytes."""
    server.routes["/feed"] = static(FEED * 100, gzip_body=True)
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/feed"), "feed")
    assert result.headers["content-encoding"] == "gzip"
    assert result.body == (FEED * 100).encode()


async def test_deflate_body_is_decoded(server: LocalServer) -> None:
    """Deflate (zlib-wrapped) is decoded too, for servers that ignore our Accept-Encoding."""
    server.routes["/feed"] = Response(
        200, zlib.compress(FEED.encode()), {"Content-Encoding": "deflate"}
    )
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/feed"), "feed")
    assert result.body == FEED.encode()


# --- size caps and deadlines ---------------------------------------------------------------------


async def test_gzip_bomb_is_refused_without_inflating_it(server: LocalServer) -> None:
    """50 MB of gzipped zeros against a 1 MB cap fails at the cap with bounded memory."""
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    server.routes["/bomb"] = Response(200, bomb, {"Content-Encoding": "gzip"})
    async with Fetcher(_settings(max_page_bytes=1024 * 1024)) as fetcher:
        tracemalloc.start()
        try:
            with pytest.raises(FetchError, match="body exceeds 1048576 bytes"):
                await fetcher.fetch(server.url("/bomb"), "page")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "message"),
    [("gzip, gzip", "stacked content encodings"), ("br", "unsupported content encoding: br")],
)
async def test_unsupported_encodings_are_refused(
    server: LocalServer, encoding: str, message: str
) -> None:
    """Stacked gzip and codings we never asked for (br) are FetchErrors, not garbage bodies."""
    body = gzip.compress(gzip.compress(FEED.encode()))
    server.routes["/feed"] = Response(200, body, {"Content-Encoding": encoding})
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match=message):
            await fetcher.fetch(server.url("/feed"), "feed")


async def test_plain_body_over_cap_is_refused(server: LocalServer) -> None:
    """An identity body larger than the feed cap is refused."""
    server.routes["/big"] = Response(200, b"x" * (256 * 1024 + 1))
    async with Fetcher(_settings(max_feed_bytes=256 * 1024)) as fetcher:
        with pytest.raises(FetchError, match="body exceeds 262144 bytes"):
            await fetcher.fetch(server.url("/big"), "feed")


async def test_endless_chunked_body_is_cut_at_the_cap(server: LocalServer) -> None:
    """A chunked body with no end (and no Content-Length) is cut off at the page cap."""

    def endless() -> Iterator[bytes]:
        for _ in range(100_000):
            yield b"y" * 65536

    server.routes["/endless"] = lambda req: Response(200, endless())
    async with Fetcher(_settings(max_page_bytes=1024 * 1024)) as fetcher:
        with pytest.raises(FetchError, match="body exceeds 1048576 bytes"):
            await fetcher.fetch(server.url("/endless"), "page")


async def test_robots_body_over_cap_is_truncated(server: LocalServer) -> None:
    """robots.txt is read up to 512 KiB and the rest ignored (RFC 9309 §2.5)."""
    server.routes["/robots.txt"] = Response(200, b"#" * (600 * 1024))
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/robots.txt"), "robots")
    assert len(result.body) == 512 * 1024


async def test_slow_drip_is_stopped_by_the_deadline(server: LocalServer) -> None:
    """A server sending a byte every 0.5 s never trips the read timeout, but hits the deadline,
    long before the body would have ended."""
    sent = []

    def drip() -> Iterator[bytes]:
        for _ in range(40):
            sent.append(1)
            yield b"."
            time.sleep(0.5)

    server.routes["/drip"] = lambda req: Response(200, drip())
    settings = _settings(request_deadline=2.0, read_timeout=10.0)
    async with Fetcher(settings) as fetcher:
        with pytest.raises(FetchError, match="timed out after 2s"):
            await fetcher.fetch(server.url("/drip"), "page")
    assert len(sent) < 40


async def test_fetcher_still_works_after_a_deadline(server: LocalServer) -> None:
    """A request cancelled by the deadline leaves the pool usable for the next one."""

    def stall() -> Iterator[bytes]:
        yield b"."
        time.sleep(1.0)
        yield b"."

    server.routes["/stall"] = lambda req: Response(200, stall())
    server.routes["/feed"] = static(FEED)
    async with Fetcher(_settings(request_deadline=0.3, max_connections=1)) as fetcher:
        with pytest.raises(FetchError, match=r"timed out after 0\.3s"):
            await fetcher.fetch(server.url("/stall"), "page")
        result = await fetcher.fetch(server.url("/feed"), "feed")
    assert result.body == FEED.encode()


async def test_non_ascii_validator_is_sent_not_raised(server: LocalServer) -> None:
    """A validator no server could have sent (a character beyond U+00FF) goes out as UTF-8
    instead of crashing inside httpx."""
    server.routes["/feed"] = static(FEED)
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/feed"), "feed", etag='"€"')
    assert result.status == 200
    (sent,) = server.hits("/feed")
    assert sent.headers["if-none-match"].encode("latin-1").decode() == '"€"'


@pytest.mark.parametrize(
    ("etag", "other"),
    [
        (b'"caf\xe9"', b"plain"),
        (b'"caf\xc3\xa9"', b"plain"),
        (b'"caf\xc3\xa9"', b"d\xe9j\xe0 vu"),
    ],
    ids=["latin-1", "utf-8", "utf-8-beside-latin-1"],
)
async def test_non_ascii_validators_are_echoed_byte_for_byte(
    server: LocalServer, etag: bytes, other: bytes
) -> None:
    """ETag bytes outside ASCII (obs-text, RFC 9110 §8.8.3) go back in If-None-Match exactly
    as the server sent them, whatever the other headers of the response are: a
    validator echoed with other bytes never matches, and the feed comes back whole every poll.
    (The test server writes and reads header values as Latin-1, one character per byte.)"""
    sent_etag = etag.decode("latin-1")

    def route(req: Request) -> Response:
        if req.headers.get("if-none-match") == sent_etag:
            return Response(304)
        headers = {"ETag": sent_etag, "X-Note": other.decode("latin-1")}
        return Response(200, FEED.encode(), headers)

    server.routes["/feed"] = route
    async with Fetcher(LOCAL) as fetcher:
        first = await fetcher.fetch(server.url("/feed"), "feed")
        again = await fetcher.fetch(server.url("/feed"), "feed", etag=first.etag)
    assert again.status == 304
    assert server.hits("/feed")[1].headers["if-none-match"] == sent_etag


async def test_connection_refused_is_a_fetch_error() -> None:
    """Nothing listening on the port: FetchError("connection refused ..."), no OSError."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="connection refused") as info:
            await fetcher.fetch(f"http://127.0.0.1:{port}/feed", "feed")
    assert info.value.status is None


# --- redirects -----------------------------------------------------------------------------------


async def test_redirect_chain_is_followed_and_recorded(server: LocalServer) -> None:
    """Each hop is recorded as (status, absolute location) and final_url is the last one."""
    server.routes["/old"] = Response(301, b"", {"Location": "/older"})
    server.routes["/older"] = Response(302, b"", {"Location": server.url("/temp")})
    server.routes["/temp"] = Response(307, b"moved", {"Location": "feed?v=2"})
    server.routes["/feed?v=2"] = static(FEED, etag=ETAG)
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/old"), "feed")
    assert result.status == 200
    assert result.body == FEED.encode()
    assert result.url == server.url("/old")
    assert result.final_url == server.url("/feed?v=2")
    assert result.redirects == (
        (301, server.url("/older")),
        (302, server.url("/temp")),
        (307, server.url("/feed?v=2")),
    )


async def test_a_url_s_user_info_is_sent_as_basic_authentication_to_its_origin_only(
    server: LocalServer, second_server: LocalServer
) -> None:
    """`https://Reader:S3cret@host/feed` (a private feed's credential, as written, capitals
    included) is sent as Basic authentication on each hop to the URL's own origin, a redirect
    within it included, and to no other host a redirect leads to."""
    server.routes["/feed"] = Response(302, b"", {"Location": "/feed2"})
    server.routes["/feed2"] = Response(302, b"", {"Location": second_server.url("/cdn")})
    second_server.routes["/cdn"] = static(FEED, "application/rss+xml")
    url = server.url("/feed").replace("://", "://Reader:S3cret@")
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(url, "feed")
    assert result.body == FEED.encode()
    sent = [r.headers.get("authorization") for r in server.hits("/feed") + server.hits("/feed2")]
    assert sent == ["Basic UmVhZGVyOlMzY3JldA=="] * 2  # Reader:S3cret
    assert "authorization" not in second_server.hits("/cdn")[0].headers


async def test_a_feed_s_own_headers_go_out_once_each_in_place_of_the_service_s() -> None:
    """A feed's settings with a `user_agent`, a `User-Agent` header and an `Accept` header, and
    (stored before `ingest feeds set` refused them) an `If-None-Match` and an `Accept-Encoding`:
    each name goes out once, the feed's own in place of the service's, and the service's own
    validators and codings, not the stored ones."""
    heads: list[bytes] = []

    def answer(conn: socket.socket) -> None:
        heads.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    settings = FeedSettings(
        user_agent="Reader/2",
        headers=(
            ("User-Agent", "Other/1"),
            ("Accept", "application/atom+xml"),
            ("if-none-match", '"stale"'),
            ("Accept-Encoding", "br"),
        ),
    )
    with RawServer(answer) as raw:
        async with Fetcher(LOCAL) as fetcher:
            result = await fetcher.fetch(
                raw.url("/feed"), "feed", etag='"v1"', extra_headers=settings.request_headers()
            )
    assert result.body == b"ok"
    lines = heads[0].decode("latin-1").split("\r\n")[1:]
    named = [line.partition(":")[0].lower() for line in lines if line]
    assert sorted(named) == sorted(set(named))
    sent = {
        line.partition(":")[0].lower(): line.partition(":")[2].strip() for line in lines if line
    }
    assert sent["user-agent"] == "Reader/2"
    assert sent["accept"] == "application/atom+xml"
    assert (sent["if-none-match"], sent["accept-encoding"]) == ('"v1"', "gzip")


async def test_a_feed_s_credential_headers_follow_no_redirect_to_another_site(
    server: LocalServer, second_server: LocalServer
) -> None:
    """A feed's own Authorization and Cookie headers (`ingest feeds set URL
    header.Authorization=...`) go with each hop to the feed's own site, and not to another site
    a redirect leads to (a CDN, or wherever an open redirect points); its other headers go to
    every hop."""
    server.routes["/feed"] = Response(302, b"", {"Location": second_server.url("/cdn")})
    second_server.routes["/cdn"] = static(FEED, "application/rss+xml")
    headers = [("Authorization", "Bearer T0ken"), ("Cookie", "s=T0ken"), ("X-Edition", "uk")]
    async with Fetcher(LOCAL) as fetcher:
        await fetcher.fetch(server.url("/feed"), "feed", extra_headers=headers)
    first, second = server.hits("/feed")[0].headers, second_server.hits("/cdn")[0].headers
    assert (first["authorization"], first["cookie"], first["x-edition"]) == (
        "Bearer T0ken",
        "s=T0ken",
        "uk",
    )
    assert "authorization" not in second
    assert "cookie" not in second
    assert second["x-edition"] == "uk"


@pytest.mark.parametrize("name", ["X-Api-Key", "x-auth-token", "Private-Token", "X-Secret"])
async def test_a_feed_s_header_named_as_a_credential_follows_no_redirect_to_another_site(
    server: LocalServer, second_server: LocalServer, name: str
) -> None:
    """A feed's own header named as a credential (`X-Api-Key`, `X-Auth-Token`: a name that
    ends as a credential parameter's does, `normalize.CREDENTIAL_PARAMETER_NAMES`) is one, as
    Authorization is: it goes with each hop to the feed's own site, not to another site a
    redirect leads to; `X-Edition` goes to every hop."""
    server.routes["/feed"] = Response(302, b"", {"Location": second_server.url("/cdn")})
    second_server.routes["/cdn"] = static(FEED, "application/rss+xml")
    headers = [(name, "S3cret"), ("X-Edition", "uk")]
    async with Fetcher(LOCAL) as fetcher:
        await fetcher.fetch(server.url("/feed"), "feed", extra_headers=headers)
    first, second = server.hits("/feed")[0].headers, second_server.hits("/cdn")[0].headers
    assert (first[name.lower()], first["x-edition"]) == ("S3cret", "uk")
    assert (name.lower() in second, second["x-edition"]) == (False, "uk")


@pytest.mark.parametrize(
    ("old", "new", "stay"),
    [
        ("https://example.com/feed", "https://www.example.com/rss", True),
        ("http://example.com/feed", "https://feeds.example.com/rss", True),
        ("http://example.com/feed", "http://example.com/rss", True),
        ("https://example.com/feed", "http://example.com/feed", False),
        ("https://example.com/feed", "https://example.net/feed", False),
        ("https://example.com/feed", "https://example.com.evil.test/feed", False),
    ],
)
def test_a_moved_feed_keeps_its_credentials_where_its_redirect_carried_them(
    old: str, new: str, stay: bool
) -> None:
    """A feed that moved (its permanent redirect held) keeps its Authorization and Cookie
    headers only where the redirect's hop carried them: within its site, and for an https://
    feed over https:// only. Moved from https:// to http:// on its own site, it would
    otherwise send them in clear text at every poll from then on."""
    assert client.credentials_stay(old, new) is stay


async def test_only_a_request_with_credential_headers_asks_for_a_registered_domain(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Public Suffix List (loaded at the first `registered_domain`, 50-70 ms) is read only
    for requests carrying a credential header that must stay on the feed's site: not on the
    way to a cold run's first feed, nor for the pages of feeds without such headers."""
    asked: list[str] = []
    domain = client.registered_domain

    def recorded(host: str) -> str:
        asked.append(host)
        return domain(host)

    monkeypatch.setattr(client, "registered_domain", recorded)
    server.routes["/feed"] = static(FEED, "application/rss+xml")
    async with Fetcher(LOCAL) as fetcher:
        await fetcher.fetch(server.url("/feed"), "feed", extra_headers=[("X-Edition", "uk")])
        assert asked == []
        await fetcher.fetch(server.url("/feed"), "feed", extra_headers=[("Cookie", "s=1")])
    assert asked != []


async def test_too_many_redirects(server: LocalServer) -> None:
    """A redirect loop stops after max_redirects hops with a FetchError."""
    server.routes["/loop"] = Response(302, b"", {"Location": "/loop"})
    async with Fetcher(_settings(max_redirects=3)) as fetcher:
        with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
            await fetcher.fetch(server.url("/loop"), "feed")
    assert len(server.hits("/loop")) == 4


async def test_redirect_to_file_scheme_is_blocked(server: LocalServer) -> None:
    """A Location pointing at file:/// is BlockedError, never followed."""
    server.routes["/evil"] = Response(302, b"", {"Location": "file:///etc/passwd"})
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(BlockedError, match="redirect to scheme 'file'"):
            await fetcher.fetch(server.url("/evil"), "page")


@pytest.mark.parametrize("port", ["70000", "65536", "99999999999999999999"])
@pytest.mark.parametrize("kind", ["feed", "page"])
async def test_a_redirect_to_a_port_out_of_range_is_a_permanent_fetch_error(
    server: LocalServer, port: str, kind: FetchKind
) -> None:
    """A Location naming a port no TCP connection can have (over 65535) is an invalid redirect,
    a permanent FetchError like any other unusable Location, never an error of another type out
    of the connection's socket calls."""
    server.routes["/moved"] = Response(302, b"", {"Location": f"http://127.0.0.1:{port}/x"})
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="port") as raised:
            await fetcher.fetch(server.url("/moved"), kind)
    assert raised.value.permanent


@pytest.mark.parametrize("port", ["70000", "65536"])
async def test_a_url_with_a_port_out_of_range_is_a_permanent_fetch_error(port: str) -> None:
    """A feed or page URL whose port is over 65535 is refused before any request, as an
    invalid URL."""
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="port") as raised:
            await fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml", "feed")
    assert raised.value.permanent


def _refresh_stub(content: str, *, padding: int = 0) -> bytes:
    return (
        f"<html><head><title>Redirecting...</title><META HTTP-EQUIV=refresh CONTENT='{content}'>"
        f"</head><body><p>Redirecting...</p>{'<!-- -->' * padding}</body></html>"
    ).encode()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("0; url=/story", id="relative"),
        pytest.param("0;URL=story", id="no-space"),
        pytest.param('3; url="/story"', id="double-quoted-with-delay"),
        pytest.param("0, url = /story", id="comma"),
        pytest.param("0;/story", id="bare-url"),
    ],
)
async def test_a_page_s_meta_refresh_is_followed_as_a_redirect(
    server: LocalServer, content: str
) -> None:
    """A small page whose meta refresh names another address is a redirect: followed and
    recorded as one (with the page's status), in any of the forms browsers read."""
    server.routes["/go/stub"] = static(_refresh_stub(content), "text/html; charset=utf-8")
    server.routes["/go/story"] = static("<html><body><p>Story</p></body></html>", "text/html")
    server.routes["/story"] = server.routes["/go/story"]
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/go/stub"), "page")
    assert result.body == b"<html><body><p>Story</p></body></html>"
    assert result.final_url in (server.url("/story"), server.url("/go/story"))
    assert result.redirects == ((200, result.final_url),)


@pytest.mark.parametrize(
    ("encoding", "bom", "content_type"),
    [
        pytest.param("utf-16-le", b"\xff\xfe", "text/html", id="le-with-bom"),
        pytest.param("utf-16-be", b"\xfe\xff", "text/html; charset=utf-8", id="be-with-bom"),
        pytest.param("utf-16-le", b"", "text/html; charset=UTF-16", id="served-as-utf-16"),
        pytest.param("utf-16-be", b"", "text/html; charset=utf-16be", id="served-as-utf-16be"),
    ],
)
async def test_a_utf_16_page_s_meta_refresh_is_followed_as_a_redirect(
    server: LocalServer, encoding: str, bom: bytes, content_type: str
) -> None:
    """A stub saved as UTF-16 (a Windows tool's "Unicode"), told by its byte order mark or,
    without one, served with a UTF-16 charset, is read as the page's text is
    (`ingest.extract.page.decode_page`): its meta refresh is a redirect as in UTF-8. Its
    bytes were searched for `<meta` one byte a character, never found in UTF-16: the stub
    was the page, "Redirecting..." extracted as the article."""
    stub = bom + _refresh_stub("0; url=/story").decode().encode(encoding)
    server.routes["/stub"] = static(stub, content_type)
    server.routes["/story"] = static("<html><body><p>Story</p></body></html>", "text/html")
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/stub"), "page")
    assert result.final_url == server.url("/story")
    assert result.redirects == ((200, server.url("/story")),)


async def test_a_refresh_header_is_followed_as_a_redirect(server: LocalServer) -> None:
    """The `Refresh` header, as browsers read it, is the meta tag's equivalent."""
    server.routes["/stub"] = Response(
        200, b"<p>Redirecting...</p>", {"Content-Type": "text/html", "Refresh": "0; url=/story"}
    )
    server.routes["/story"] = static("<p>Story</p>", "text/html")
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/stub"), "page")
    assert result.final_url == server.url("/story")


@pytest.mark.parametrize(
    ("content", "padding", "content_type", "kind"),
    [
        pytest.param("900", 0, "text/html", "page", id="a-reload"),
        pytest.param("0; url=/stub", 0, "text/html", "page", id="to-itself"),
        pytest.param("0; url=/story", 3000, "text/html", "page", id="a-whole-page"),
        pytest.param("0; url=/story", 0, "text/plain", "page", id="not-html"),
        pytest.param("0; url=/story", 0, "text/html", "feed", id="a-feed"),
        pytest.param("0; url=", 0, "text/html", "page", id="no-url"),
        pytest.param("900; url=/story", 0, "text/html", "page", id="after-fifteen-minutes"),
        pytest.param('60; URL="/story"', 0, "text/html", "page", id="after-a-minute"),
    ],
)
async def test_a_refresh_that_is_no_redirect_is_the_page(
    server: LocalServer, content: str, padding: int, content_type: str, kind: FetchKind
) -> None:
    """A page reloading itself (no address, or its own), an article page (past
    REFRESH_STUB_BYTES) whose refresh sends browsers without scripts elsewhere, a page that
    goes elsewhere only after its reader has had a minute or more of it (a news site's return
    to its front page), a body that is no HTML, and a feed are results as they are."""
    body = _refresh_stub(content, padding=padding)
    server.routes["/stub"] = static(body, content_type)
    server.routes["/story"] = static("<p>Story</p>", "text/html")
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/stub"), kind)
    assert result.body == body
    assert result.redirects == ()
    assert server.hits("/story") == []


@pytest.mark.parametrize(
    "unread",
    [
        pytest.param(
            "<noscript><meta http-equiv='refresh' content='0; url=/enable-js'></noscript>",
            id="noscript",
        ),
        pytest.param(
            "<NOSCRIPT><p>Please enable JavaScript.</p>"
            "<META HTTP-EQUIV=Refresh CONTENT='0;URL=/enable-js'></NOSCRIPT >",
            id="noscript-capitals",
        ),
        pytest.param(
            "<!-- <meta http-equiv='refresh' content='0; url=/enable-js'> -->", id="comment"
        ),
    ],
)
@pytest.mark.parametrize("where", ["head", "body"])
async def test_a_refresh_no_browser_reads_is_the_page(
    server: LocalServer, unread: str, where: str
) -> None:
    """A small page whose only refresh sits in a `<noscript>` (the "enable JavaScript"
    fallback of a page its scripts render; a browser with scripts never reads it) or in a
    comment is the page, not a redirect to the fallback."""
    head, body = ("<title>Story</title>", "<h1>Story</h1><p>The story.</p>")
    if where == "head":
        head = unread + head
    else:
        body = unread + body
    page = f"<html><head>{head}</head><body>{body}</body></html>".encode()
    server.routes["/story"] = static(page, "text/html")
    server.routes["/enable-js"] = static("<p>Please enable JavaScript.</p>", "text/html")
    async with Fetcher(LOCAL) as fetcher:
        result = await fetcher.fetch(server.url("/story"), "page")
    assert result.body == page
    assert result.redirects == ()
    assert server.hits("/enable-js") == []


async def test_meta_refreshes_count_as_redirects(server: LocalServer) -> None:
    """A loop of refreshes and redirects stops after max_redirects hops of either kind."""
    server.routes["/a"] = static(_refresh_stub("0; url=/b"), "text/html")
    server.routes["/b"] = Response(302, b"", {"Location": "/a"})
    async with Fetcher(_settings(max_redirects=3)) as fetcher:
        with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
            await fetcher.fetch(server.url("/a"), "page")
    assert len(server.hits("/a")) + len(server.hits("/b")) == 4


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        pytest.param("javascript:alert(1)", "redirect to scheme 'javascript'", id="javascript"),
        pytest.param("file:///etc/passwd", "redirect to scheme 'file'", id="file"),
    ],
)
async def test_a_refresh_to_a_refused_scheme_is_blocked(
    server: LocalServer, target: str, refusal: str
) -> None:
    server.routes["/stub"] = static(_refresh_stub(f"0; url={target}"), "text/html")
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(BlockedError, match=refusal):
            await fetcher.fetch(server.url("/stub"), "page")


async def test_a_refresh_to_a_blocked_address_is_refused(
    server: LocalServer, internal: LocalServer
) -> None:
    """A refresh hop is checked as a redirect's: allowed.test -> 127.0.0.2 stops before it."""
    internal.routes["/admin"] = static("secret")
    server.routes["/start"] = static(_refresh_stub(f"0; url={internal.url('/admin')}"), "text/html")
    resolver = fake_dns({"allowed.test": ["127.0.0.1"]})
    async with Fetcher(
        Settings(), resolver=resolver, address_check=only_first_loopback_is_public
    ) as fetcher:
        with pytest.raises(BlockedError, match=r"127\.0\.0\.2 is a loopback address"):
            await fetcher.fetch(f"http://allowed.test:{server.port}/start", "page")
    assert internal.requests == []


# --- status errors -------------------------------------------------------------------------------


async def test_responses_without_wanted_body_keep_the_connection(server: LocalServer) -> None:
    """304s, redirects and error statuses have their small bodies read, so the connection is
    kept alive for the next request: a poll of feeds that answer 304 reuses connections."""
    server.routes["/feed"] = static(FEED, etag=ETAG)
    server.routes["/moved"] = Response(301, b"moved", {"Location": "/feed"})
    server.routes["/gone"] = Response(410, b"gone for good", {"Content-Type": "text/plain"})
    async with Fetcher(LOCAL) as fetcher:
        for _ in range(5):
            assert (await fetcher.fetch(server.url("/feed"), "feed", etag=ETAG)).not_modified
        assert (await fetcher.fetch(server.url("/moved"), "feed", etag=ETAG)).not_modified
        with pytest.raises(FetchError, match="HTTP 410"):
            await fetcher.fetch(server.url("/gone"), "feed")
        assert (await fetcher.fetch(server.url("/feed"), "feed", etag=ETAG)).not_modified
    assert len(server.requests) == 9
    assert {r.peer_port for r in server.requests} == {server.requests[0].peer_port}


async def test_404_is_fetch_error_with_status(server: LocalServer) -> None:
    """A 404 becomes FetchError with the status and reason in the message."""
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="HTTP 404 Not Found") as info:
            await fetcher.fetch(server.url("/missing"), "feed")
    assert info.value.status == 404
    assert info.value.retry_after is None
    assert not isinstance(info.value, BlockedError)


async def test_429_exposes_retry_after(server: LocalServer) -> None:
    """Retry-After is passed up as given so the scheduler can back off."""
    server.routes["/feed"] = Response(429, b"slow down", {"Retry-After": "120"})
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(server.url("/feed"), "feed")
    assert info.value.status == 429
    assert info.value.retry_after == "120"


async def test_500_is_fetch_error(server: LocalServer) -> None:
    """Server errors are FetchErrors with their status."""
    server.routes["/feed"] = Response(
        503, b"down", {"Retry-After": "Wed, 01 Jan 2025 00:00:00 GMT"}
    )
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="HTTP 503") as info:
            await fetcher.fetch(server.url("/feed"), "feed")
    assert info.value.status == 503
    assert info.value.retry_after == "Wed, 01 Jan 2025 00:00:00 GMT"


# --- SSRF guard ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        *("127.0.0.1", "2130706433", "0x7f000001", "127.1", "[::ffff:127.0.0.1]", "localhost"),
        *("127.0.0.1.", "[0:0::1]", "[::FFFF:7f00:1]"),
    ],
)
async def test_loopback_in_any_spelling_is_blocked(server: LocalServer, host: str) -> None:
    """With private networks disallowed, every spelling of loopback is refused, with no traffic."""
    async with Fetcher(Settings(allow_private_networks=False)) as fetcher:
        with pytest.raises(BlockedError, match="loopback"):
            await fetcher.fetch(f"http://{host}:{server.port}/feed", "feed")
    assert server.requests == []


async def test_name_resolving_to_private_address_is_blocked() -> None:
    """A name whose resolved address is private is refused before any connection."""
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return {"news.example": ["10.0.0.5"]}[host]

    async with Fetcher(Settings(), resolver=resolver) as fetcher:
        with pytest.raises(BlockedError, match=r"news\.example resolves to 10\.0\.0\.5"):
            await fetcher.fetch("http://news.example/feed", "feed")
    assert asked == [("news.example", 80)]


async def test_every_resolved_address_is_checked(server: LocalServer) -> None:
    """One allowed address among the answers is not enough: any refused one blocks the name."""
    resolver = fake_dns({"mixed.test": ["127.0.0.1", "10.0.0.5"]})
    async with Fetcher(
        Settings(), resolver=resolver, address_check=only_first_loopback_is_public
    ) as fetcher:
        with pytest.raises(BlockedError, match=r"10\.0\.0\.5"):
            await fetcher.fetch(f"http://mixed.test:{server.port}/feed", "feed")
    assert server.requests == []


async def test_connection_goes_to_the_checked_address(server: LocalServer) -> None:
    """The name is resolved once, the checked address is dialled, and Host keeps the name."""
    server.routes["/feed"] = static(FEED)
    resolver = fake_dns({"allowed.test": ["127.0.0.1"]})
    async with Fetcher(
        Settings(), resolver=resolver, address_check=only_first_loopback_is_public
    ) as fetcher:
        result = await fetcher.fetch(f"http://allowed.test:{server.port}/feed", "feed")
    assert result.body == FEED.encode()
    (sent,) = server.hits("/feed")
    assert sent.headers["host"] == f"allowed.test:{server.port}"


async def test_redirect_to_blocked_address_is_refused(
    server: LocalServer, internal: LocalServer
) -> None:
    """Each redirect hop is checked: allowed.test -> 127.0.0.2 stops before reaching 127.0.0.2."""
    internal.routes["/admin"] = static("secret")
    server.routes["/start"] = Response(302, b"", {"Location": internal.url("/admin")})
    resolver = fake_dns({"allowed.test": ["127.0.0.1"]})
    async with Fetcher(
        Settings(), resolver=resolver, address_check=only_first_loopback_is_public
    ) as fetcher:
        with pytest.raises(BlockedError, match=r"127\.0\.0\.2 is a loopback address"):
            await fetcher.fetch(f"http://allowed.test:{server.port}/start", "page")
    assert len(server.hits("/start")) == 1
    assert internal.requests == []


# --- concurrency ---------------------------------------------------------------------------------


class _Gauge:
    """Counts requests in flight inside the server (handler threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    def route(self, req: Request) -> Response:
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        time.sleep(0.1)
        with self._lock:
            self.inside -= 1
        return Response(200, b"ok")


async def test_per_host_limit(server: LocalServer) -> None:
    """No more than per_host_connections requests run at once against one host."""
    gauge = _Gauge()
    server.routes["/slow"] = gauge.route
    async with Fetcher(_settings(per_host_connections=2)) as fetcher:
        await asyncio.gather(*(fetcher.fetch(server.url("/slow"), "page") for _ in range(6)))
    assert gauge.peak == 2
    assert len(server.hits("/slow")) == 6


async def test_global_limit_spans_hosts(server: LocalServer, internal: LocalServer) -> None:
    """max_connections caps requests in flight across all hosts together."""
    gauge = _Gauge()
    server.routes["/slow"] = gauge.route
    internal.routes["/slow"] = gauge.route
    urls = [server.url("/slow"), internal.url("/slow")] * 2
    async with Fetcher(_settings(max_connections=1, per_host_connections=2)) as fetcher:
        await asyncio.gather(*(fetcher.fetch(u, "page") for u in urls))
    assert gauge.peak == 1


# --- robots.txt ----------------------------------------------------------------------------------


async def test_robots_disallow_is_honoured_and_cached(server: LocalServer) -> None:
    """Disallowed paths are refused, others allowed, and robots.txt is fetched once per origin."""
    server.routes["/robots.txt"] = static(
        "User-agent: news-ingest\nDisallow: /private/\n", "text/plain"
    )
    async with Fetcher(LOCAL) as fetcher:
        assert await fetcher.robots_allowed(server.url("/private/page.html")) is False
        assert await fetcher.robots_allowed(server.url("/news/page.html")) is True
        assert await fetcher.robots_allowed(server.url("/private/other")) is False
    assert len(server.hits("/robots.txt")) == 1
    assert server.hits("/robots.txt")[0].headers["user-agent"] == USER_AGENT


async def test_robots_404_allows_everything(server: LocalServer) -> None:
    """No robots.txt (4xx) means everything may be fetched (RFC 9309 §2.3.1.3)."""
    async with Fetcher(LOCAL) as fetcher:
        assert await fetcher.robots_allowed(server.url("/any/page")) is True
        assert await fetcher.robots_allowed(server.url("/other")) is True
    assert len(server.hits("/robots.txt")) == 1


async def test_robots_500_disallows_and_retries_sooner(server: LocalServer) -> None:
    """A 5xx robots.txt disallows everything, cached for ten minutes rather than the full hour."""
    server.routes["/robots.txt"] = Response(500, b"oops")
    clock = SteppingClock(1000.0)
    async with Fetcher(_settings(robots_cache_seconds=3600), clock=clock) as fetcher:
        assert await fetcher.robots_allowed(server.url("/page")) is False
        clock.now += 599
        assert await fetcher.robots_allowed(server.url("/page")) is False
        assert len(server.hits("/robots.txt")) == 1
        server.routes["/robots.txt"] = static("User-agent: *\nDisallow:\n", "text/plain")
        clock.now += 2
        assert await fetcher.robots_allowed(server.url("/page")) is True
    assert len(server.hits("/robots.txt")) == 2


_PRIVATE = "User-agent: *\nDisallow: /private/\n"


@pytest.mark.parametrize(
    ("first", "private", "refresh"),
    [
        (static(_PRIVATE, "text/plain"), "disallowed", Response(503, b"down")),
        (static(_PRIVATE, "text/plain"), "disallowed", Response(500, b"oops")),
        (static(_PRIVATE, "text/plain"), "disallowed", Response(429, b"slow")),
        (Response(404, b"none"), "allowed", Response(503, b"down")),
    ],
    ids=["file-503", "file-500", "file-429", "404-503"],
)
async def test_robots_5xx_on_a_refresh_keeps_the_copy_last_read(
    server: LocalServer, first: Route, private: str, refresh: Response
) -> None:
    """A robots.txt read once (a file, or a 404: none) that answers 5xx (or 429) when its cached
    copy has expired: the rules last read stay in force (RFC 9309 §2.3.1.4, §2.4 let a crawler
    keep its cached copy while the file is unreachable), and it is asked for again ten minutes
    later, as an unreachable one is; once it answers again, its new rules apply."""
    server.routes["/robots.txt"] = first
    clock = SteppingClock(1000.0)
    async with Fetcher(_settings(robots_cache_seconds=3600), clock=clock) as fetcher:
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url("/private/a")) == private
        server.routes["/robots.txt"] = refresh
        clock.now += 3601
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url("/private/a")) == private
        assert len(server.hits("/robots.txt")) == 2
        clock.now += 599
        assert await fetcher.robots_verdict(server.url("/news/b")) == "allowed"
        assert len(server.hits("/robots.txt")) == 2
        clock.now += 2
        assert await fetcher.robots_verdict(server.url("/news/c")) == "allowed"
        assert len(server.hits("/robots.txt")) == 3
        server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /news/\n", "text/plain")
        clock.now += 601
        assert await fetcher.robots_verdict(server.url("/news/d")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/private/a")) == "allowed"
    assert len(server.hits("/robots.txt")) == 4


async def test_robots_unreachable_disallows() -> None:
    """A host whose robots.txt cannot be fetched at all is treated as disallowing everything."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Fetcher(LOCAL) as fetcher:
        assert await fetcher.robots_allowed(f"http://127.0.0.1:{port}/page") is False


async def test_robots_cache_expires(server: LocalServer) -> None:
    """After robots_cache_seconds the file is fetched again."""
    server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /x\n", "text/plain")
    clock = SteppingClock(1000.0)
    async with Fetcher(_settings(robots_cache_seconds=60), clock=clock) as fetcher:
        assert await fetcher.robots_allowed(server.url("/x")) is False
        clock.now += 59
        assert await fetcher.robots_allowed(server.url("/x")) is False
        assert len(server.hits("/robots.txt")) == 1
        clock.now += 2
        assert await fetcher.robots_allowed(server.url("/x")) is False
    assert len(server.hits("/robots.txt")) == 2


async def test_concurrent_robots_checks_fetch_once(server: LocalServer) -> None:
    """Many pages of one site asking at once cause a single robots.txt request."""
    server.routes["/robots.txt"] = static("User-agent: *\nDisallow: /x\n", "text/plain")
    async with Fetcher(LOCAL) as fetcher:
        answers = await asyncio.gather(
            *(fetcher.robots_allowed(server.url(f"/page{i}")) for i in range(10))
        )
    assert answers == [True] * 10
    assert len(server.hits("/robots.txt")) == 1


async def test_robots_on_blocked_host_raises(server: LocalServer) -> None:
    """A robots.txt the SSRF guard refuses is BlockedError, not a silent allow or disallow."""
    async with Fetcher(Settings(allow_private_networks=False)) as fetcher:
        with pytest.raises(BlockedError):
            await fetcher.robots_allowed(server.url("/page"))
    assert server.requests == []


@pytest.mark.parametrize("max_redirects", [0, 2])
async def test_robots_redirects_are_followed_five_hops_whatever_max_redirects(
    server: LocalServer, max_redirects: int
) -> None:
    """robots.txt behind five redirects (http:// to https://, then a CDN...) is followed and
    its rules applied (RFC 9309 §2.3.1.2), however few redirects pages and feeds may follow."""
    server.routes["/robots.txt"] = Response(301, b"", {"Location": "/r1"})
    for n in range(1, 5):
        server.routes[f"/r{n}"] = Response(302, b"", {"Location": f"/r{n + 1}"})
    server.routes["/r5"] = static("User-agent: *\nDisallow: /private/\n", "text/plain")
    async with Fetcher(_settings(max_redirects=max_redirects)) as fetcher:
        assert await fetcher.robots_verdict(server.url("/private/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
    assert len(server.hits("/r5")) == 1


@pytest.mark.parametrize(
    ("home", "url", "expected"),
    [
        (
            "https://reader:pw@example.com/feed",
            "https://example.com/feed?page=2",
            "https://reader:pw@example.com/feed?page=2",
        ),
        (
            "https://TOKEN@example.com/feed",
            "https://example.com/p2",
            "https://TOKEN@example.com/p2",
        ),
        (
            "http://reader:pw@example.com/feed",
            "https://example.com/feed?page=2",
            "https://reader:pw@example.com/feed?page=2",
        ),
        ("https://reader:pw@example.com/feed", "https://cdn.example.net/p2", None),
        ("https://reader:pw@example.com/feed", "https://www.example.com/p2", None),
        ("https://reader:pw@example.com/feed", "https://example.com:8443/p2", None),
        ("https://reader:pw@example.com/feed", "http://example.com/p2", None),
        ("https://reader:pw@example.com/feed", "https://other:x@example.com/p2", None),
        ("https://example.com/feed", "https://example.com/p2", None),
    ],
)
def test_with_user_info(home: str, url: str, expected: str | None) -> None:
    """A URL takes the user-info of the feed it is a page of only where the feed's credential
    would follow a redirect to it (its origin, or its https:// upgrade) and it has none of its
    own; else it is as given (None)."""
    assert client.with_user_info(home, url) == (expected or url)
