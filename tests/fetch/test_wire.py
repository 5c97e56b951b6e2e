"""The Fetcher's network layer (asyncio transports under httpcore) against real servers on
loopback: HTTPS with a test CA, refused certificates, kept-alive connections the server closed
while idle, bodies larger than the read buffer, and servers that hang up mid-response."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import httpcore
import pytest
import trustme

from ingest.config import Settings
from ingest.errors import FetchError
from ingest.fetch import AsyncioBackend, Fetcher
from tests.support.httpserver import LocalServer, Response, static

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LOCAL = Settings(allow_private_networks=True, host_delay=0)
FEED = "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture(scope="module")
def https(server_tls: ssl.SSLContext) -> Iterator[LocalServer]:
    with LocalServer("127.0.0.1", tls=server_tls) as server:
        yield server


async def test_https_body_over_one_kept_alive_connection(
    https: LocalServer, client_tls: ssl.SSLContext
) -> None:
    """Requests over TLS return their bodies (plain and gzip) and share one connection."""
    https.routes["/feed"] = static(FEED, "application/rss+xml", etag='"v1"')
    https.routes["/page"] = static("<p>" + "word " * 20_000 + "</p>", gzip_body=True)
    async with Fetcher(LOCAL, ssl_context=client_tls) as fetcher:
        feed = await fetcher.fetch(https.url("/feed"), "feed")
        page = await fetcher.fetch(https.url("/page"), "page")
        again = await fetcher.fetch(https.url("/feed"), "feed", etag='"v1"')
    assert feed.status == 200
    assert feed.body == FEED.encode()
    assert feed.final_url == https.url("/feed")
    assert page.body.count(b"word ") == 20_000
    assert again.not_modified
    ports = {r.peer_port for r in https.requests if r.path in ("/feed", "/page")}
    assert len(ports) == 1


async def test_a_feed_s_credential_headers_never_go_over_plain_http(
    https: LocalServer, server: LocalServer, client_tls: ssl.SSLContext
) -> None:
    """A feed registered over https:// with its own Authorization and Cookie headers (`ingest
    feeds set`), redirected to http:// on its site, and one of its pages linked over http://:
    neither request carries them (they would cross the network in clear text), as the
    credential of a URL's user-info never goes from https:// to http://; the feed's other
    headers do (was: both sent, clear text, to any http:// URL of the feed's site)."""
    https.routes["/feed"] = Response(301, b"", {"Location": server.url("/feed")})
    server.routes["/feed"] = static(FEED, "application/rss+xml")
    server.routes["/story"] = static("<p>story</p>")
    headers = [("Authorization", "Bearer T0ken"), ("Cookie", "s=T0ken"), ("X-Edition", "uk")]
    feed_url = https.url("/feed")
    async with Fetcher(LOCAL, ssl_context=client_tls) as fetcher:
        await fetcher.fetch(feed_url, "feed", extra_headers=headers)
        await fetcher.fetch(
            server.url("/story"), "page", extra_headers=headers, headers_for=feed_url
        )
    assert https.hits("/feed")[-1].headers["authorization"] == "Bearer T0ken"
    for sent in (server.hits("/feed")[-1].headers, server.hits("/story")[-1].headers):
        assert "authorization" not in sent
        assert "cookie" not in sent
        assert sent["x-edition"] == "uk"


async def test_untrusted_certificate_is_a_tls_error(https: LocalServer) -> None:
    """A certificate no trusted CA signed fails the request with a clear message."""
    https.routes["/feed"] = static(FEED)
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError, match="TLS handshake failed") as info:
            await fetcher.fetch(https.url("/feed"), "feed")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


async def test_certificate_for_another_name_is_refused(
    ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    """A certificate valid for another host name does not pass for this one."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("news.example").configure_cert(context)
    with LocalServer("127.0.0.1", tls=context) as server:
        server.routes["/feed"] = static(FEED)
        async with Fetcher(LOCAL, ssl_context=client_tls) as fetcher:
            with pytest.raises(FetchError, match="TLS handshake failed"):
                await fetcher.fetch(server.url("/feed"), "feed")


async def test_plain_http_to_a_tls_port_is_a_protocol_error(https: LocalServer) -> None:
    """Speaking HTTP to a TLS port ends in a FetchError, not a hang or a crash."""
    https.routes["/feed"] = static(FEED)
    async with Fetcher(LOCAL) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.fetch(f"http://127.0.0.1:{https.port}/feed", "feed")


@pytest.mark.parametrize("loop_busy", [False, True], ids=["loop-idle", "loop-busy"])
async def test_connection_closed_by_the_server_while_idle_is_replaced(loop_busy: bool) -> None:
    """A kept-alive connection the server dropped while idle is noticed before reuse: the next
    request opens a new connection instead of failing. Also when the event loop was busy
    meanwhile and has not yet read the end of the stream from the socket."""
    with LocalServer("127.0.0.1", idle_timeout=0.2) as server:
        server.routes["/feed"] = static(FEED)
        async with Fetcher(LOCAL) as fetcher:
            first = await fetcher.fetch(server.url("/feed"), "feed")
            if loop_busy:
                time.sleep(0.6)  # noqa: ASYNC251 - the point: the loop does not run meanwhile
            else:
                await asyncio.sleep(0.6)
            second = await fetcher.fetch(server.url("/feed"), "feed")
        ports = [r.peer_port for r in server.requests]
    assert first.body == second.body == FEED.encode()
    assert len(ports) == 2
    assert ports[0] != ports[1]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_body_larger_than_the_read_buffer(
    tls: bool, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A 3 MB body (the transport pauses and resumes reading on the way) arrives whole."""
    body = os.urandom(3 * 1024 * 1024)
    with LocalServer("127.0.0.1", tls=server_tls if tls else None) as server:
        server.routes["/big"] = Response(200, body, {"Content-Type": "text/html"})
        async with Fetcher(LOCAL, ssl_context=client_tls) as fetcher:
            result = await fetcher.fetch(server.url("/big"), "page")
    assert result.body == body


def _raw_server(reply: bytes) -> tuple[socket.socket, threading.Thread]:
    """A server that reads one request, sends `reply` and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this", "protocol error"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "protocol error"),
        (b"", "protocol error"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "protocol error"),
    ],
    ids=["body-cut-short", "headers-cut-short", "no-reply", "not-http"],
)
async def test_server_hanging_up_mid_response(reply: bytes, message: str) -> None:
    """Whatever point the server hangs up at, the request fails with a clear FetchError."""
    listener, thread = _raw_server(reply)
    with listener:
        port = listener.getsockname()[1]
        async with Fetcher(LOCAL) as fetcher:
            with pytest.raises(FetchError, match=message):
                await fetcher.fetch(f"http://127.0.0.1:{port}/page", "page")
    thread.join(5)


async def test_connections_to_many_hosts_are_kept_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling hosts in turn reuses one connection per host: one pool per origin, not a shared
    pool whose few kept-alive connections the hosts would take from each other. A new origin
    does not build a TLS context (loading a CA bundle costs tens of milliseconds)."""
    hosts = [f"127.0.0.{i}" for i in range(2, 14)]
    servers = [LocalServer(host) for host in hosts]
    for server in servers:
        server.__enter__()
    try:
        for server in servers:
            server.routes["/feed"] = static(FEED, etag='"v1"')
        async with Fetcher(LOCAL) as fetcher:

            def no_new_context(*args: object, **kwargs: object) -> ssl.SSLContext:
                raise AssertionError("a TLS context was built for a new origin")

            monkeypatch.setattr(ssl, "create_default_context", no_new_context)
            for _ in range(3):
                for server in servers:
                    result = await fetcher.fetch(server.url("/feed"), "feed", etag='"v1"')
                    assert result.not_modified
        for server in servers:
            assert len(server.requests) == 3
            assert len({r.peer_port for r in server.requests}) == 1
    finally:
        for server in servers:
            server.__exit__(None, None, None)


# --- the network stream itself ---------------------------------------------------------------


async def _stream_pair() -> tuple[
    httpcore.AsyncNetworkStream, asyncio.StreamReader, asyncio.StreamWriter, asyncio.Server
]:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    reader, writer = await accepted.get()
    return stream, reader, writer, server


async def test_stream_read_after_a_timed_out_read() -> None:
    """A read that timed out leaves the stream usable: data sent afterwards is read."""
    stream, _, peer, server = await _stream_pair()
    async with server:
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(1024, timeout=0.05)
        waiting = asyncio.ensure_future(stream.read(1024, timeout=5))
        await asyncio.sleep(0.05)  # the read is waiting before the data comes
        peer.write(b"hello")
        await peer.drain()
        assert await waiting == b"hello"
        peer.close()
        assert await stream.read(1024, timeout=5) == b""
        assert stream.get_extra_info("is_readable")
        await stream.aclose()


async def test_stream_write_waits_for_a_slow_reader() -> None:
    """Writes to a peer that does not read time out once the buffers are full, and go on once
    the peer reads again; everything written arrives, in order."""
    stream, peer_reader, peer, server = await _stream_pair()
    async with server:
        chunk = os.urandom(1024 * 1024)

        async def write_until_blocked() -> int:
            written = 0
            for _ in range(64):
                try:
                    await stream.write(chunk, timeout=0.2)
                except httpcore.WriteTimeout:
                    return written
                written += len(chunk)
            raise AssertionError("64 MB went to a peer that reads nothing")

        written = await write_until_blocked()
        # The chunk whose wait timed out was handed to the transport: it arrives too.
        pending = asyncio.ensure_future(stream.write(chunk, timeout=10))
        expected = written + 2 * len(chunk)
        received = 0
        async with asyncio.timeout(30):
            while received < expected:
                data = await peer_reader.read(1024 * 1024)
                assert data, "the stream closed early"
                received += len(data)
        await pending
        assert received == expected
        await stream.aclose()
        peer.close()
