"""The Fetcher's transport layer (AsyncioBackend under httpcore, one pool per origin) against
real loopback servers, at the points where it can go wrong: sockets released after failures,
after an idle origin is evicted and after Fetcher.aclose; deadlines and cancellation mid-body;
an origin streaming while others are evicted; many distinct origins; kept-alive connections the
server drops; redirects across origins; TLS handshakes that never finish.

Open sockets are counted with psutil: a client socket is one of this process's TCP sockets
whose remote port is one of the test servers' ports (the servers run in this process too, but
their sockets have the port on the local side)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import psutil  # type: ignore[import-untyped]
import pytest

from ingest.errors import FetchError
from ingest.fetch import Fetcher, pools
from tests.support.httpserver import LocalServer, RawServer, Request, Response, read_request, static
from tests.support.pipelines import local_settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


# --- helpers ----------------------------------------------------------------------------------


def client_sockets(ports: Iterable[int]) -> int:
    """This process's open TCP sockets connected to one of `ports`."""
    wanted = set(ports)
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port in wanted and c.fd != -1
    )


async def open_after(ports: Iterable[int], seconds: float) -> int:
    """Client sockets to `ports` still open after waiting up to `seconds` for them to close."""
    ports = list(ports)
    for _ in range(round(seconds / 0.05)):
        if not client_sockets(ports):
            return 0
        await asyncio.sleep(0.05)
    return client_sockets(ports)


def _wrap(conn: socket.socket, tls: ssl.SSLContext | None) -> socket.socket:
    if tls is None:
        return conn
    return tls.wrap_socket(conn, server_side=True)


def _stalling(
    tls: ssl.SSLContext | None, reply: bytes, stop: threading.Event
) -> Callable[[socket.socket], None]:
    """A raw-server handler: read one request, send `reply`, then neither read nor write nor
    close until `stop` (a tarpit, or a server that hung mid-response)."""

    def handle(conn: socket.socket) -> None:
        with _wrap(conn, tls) as conn:
            read_request(conn)
            conn.sendall(reply)
            stop.wait(20)

    return handle


def _flooding(tls: ssl.SSLContext | None, stop: threading.Event) -> Callable[[socket.socket], None]:
    """Read one request, then send a chunked body as fast as the client takes it, for ever."""

    def handle(conn: socket.socket) -> None:
        with _wrap(conn, tls) as conn:
            read_request(conn)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            while not stop.is_set():
                conn.sendall(chunk)

    return handle


class Origins:
    """`n` HTTP(S) origins on 127.0.0.1, one listening port each, served in the test's event
    loop: keep-alive, a two-byte body for every request."""

    def __init__(self, n: int, tls: ssl.SSLContext | None = None) -> None:
        self._n = n
        self._tls = tls
        self.scheme = "https" if tls else "http"
        self.ports: list[int] = []
        self.accepted = 0
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, i: int, path: str = "/feed") -> str:
        return f"{self.scheme}://127.0.0.1:{self.ports[i]}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def __aenter__(self) -> Origins:
        for _ in range(self._n):
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.sleep(0.05)


def _dribble(chunks: int, pause: float) -> Callable[[Request], Response]:
    """A route sending a chunked body slowly: `chunks` chunks of 1 KB, `pause` seconds apart."""

    def body() -> Iterator[bytes]:
        for _ in range(chunks):
            yield b"y" * 1024
            time.sleep(pause)

    return lambda req: Response(200, body(), {"Content-Type": "text/html"})


# --- sockets released after a failure ---------------------------------------------------------

STALL_MID_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n" + (
    b"x" * 100
)
STALL_BEFORE_HEADERS = b""


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize(
    ("reply", "settings", "message"),
    [
        (STALL_MID_BODY, {"request_deadline": 0.5}, "timed out after 0.5s"),
        (STALL_BEFORE_HEADERS, {"read_timeout": 0.5}, "read timed out"),
    ],
    ids=["deadline-mid-body", "read-timeout"],
)
async def test_socket_is_released_when_a_stalled_request_fails(
    tls: bool,
    reply: bytes,
    settings: dict[str, float],
    message: str,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    """A request to a server that stops answering fails on time, and its socket is closed at
    once: a tarpit must not hold a file descriptor after its request has given up."""
    stop = threading.Event()
    try:
        with RawServer(_stalling(server_tls if tls else None, reply, stop)) as server:
            scheme = "https" if tls else "http"
            async with Fetcher(local_settings(**settings), ssl_context=client_tls) as fetcher:
                with pytest.raises(FetchError, match=message):
                    await fetcher.fetch(f"{scheme}://127.0.0.1:{server.port}/feed", "page")
                still_open = await open_after([server.port], 1.0)
            assert still_open == 0, f"{still_open} socket(s) still open 1 s after the failure"
    finally:
        stop.set()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_socket_is_released_when_a_streaming_body_exceeds_the_cap(
    tls: bool, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A body over the cap, from a server still sending as fast as it can (reading is paused
    when the cap is hit), fails and its socket is closed at once."""
    stop = threading.Event()
    try:
        with RawServer(_flooding(server_tls if tls else None, stop)) as server:
            scheme = "https" if tls else "http"
            settings = local_settings(max_page_bytes=2 * 1024 * 1024)
            async with Fetcher(settings, ssl_context=client_tls) as fetcher:
                with pytest.raises(FetchError, match="body exceeds"):
                    await fetcher.fetch(f"{scheme}://127.0.0.1:{server.port}/big", "page")
                still_open = await open_after([server.port], 1.0)
            assert still_open == 0, f"{still_open} socket(s) still open 1 s after the failure"
    finally:
        stop.set()


# --- TLS handshakes that never finish -----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"connect_timeout": 0.5}, "connect timed out after 0.5s"),
        ({"connect_timeout": 5, "request_deadline": 0.5}, "timed out after 0.5s"),
    ],
    ids=["connect-timeout", "deadline"],
)
async def test_tls_handshake_the_server_never_answers(
    settings: dict[str, float], message: str, client_tls: ssl.SSLContext
) -> None:
    """A server that accepts TCP and never says a word: the handshake fails on time (the
    connect timeout, or the request deadline when it comes first) and the socket is closed."""
    stop = threading.Event()

    def silent(conn: socket.socket) -> None:
        stop.wait(20)

    try:
        with RawServer(silent) as server:
            async with Fetcher(local_settings(**settings), ssl_context=client_tls) as fetcher:
                with pytest.raises(FetchError, match=message):
                    await fetcher.fetch(f"https://127.0.0.1:{server.port}/feed", "feed")
                assert await open_after([server.port], 1.0) == 0
    finally:
        stop.set()


async def test_https_to_a_plain_http_port_is_a_tls_error(client_tls: ssl.SSLContext) -> None:
    """https:// to a port speaking plain HTTP fails as a TLS handshake error, not a hang."""
    with LocalServer("127.0.0.1") as server:
        server.routes["/feed"] = static(FEED)
        async with Fetcher(local_settings(), ssl_context=client_tls) as fetcher:
            with pytest.raises(FetchError, match="TLS handshake failed"):
                await fetcher.fetch(f"https://127.0.0.1:{server.port}/feed", "feed")
            assert await open_after([server.port], 1.0) == 0


@pytest.mark.parametrize("close_notify", [False, True], ids=["ragged-eof", "close-notify"])
async def test_close_delimited_body_over_tls_larger_than_the_read_buffer(
    close_notify: bool, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A 3 MB body with neither Content-Length nor chunking, ended by the server closing the
    TLS connection (with or without close_notify), arrives whole although reading pauses and
    resumes on the way; the end of the stream is not lost while reading is paused."""
    body = os.urandom(3 * 1024 * 1024)

    def handle(conn: socket.socket) -> None:
        with server_tls.wrap_socket(conn, server_side=True) as tls:
            read_request(tls)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
            tls.sendall(body)
            if close_notify:
                with contextlib.suppress(OSError):
                    tls.unwrap().close()

    with RawServer(handle) as server:
        async with Fetcher(
            local_settings(max_page_bytes=4 * 1024 * 1024), ssl_context=client_tls
        ) as f:
            result = await f.fetch(f"https://127.0.0.1:{server.port}/big", "page")
            assert result.body == body
            assert await open_after([server.port], 1.0) == 0


# --- Fetcher.aclose -----------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_aclose_closes_kept_alive_connections(
    tls: bool, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """After Fetcher.aclose, no connection to any origin it used stays open (a cooperative
    server: it answers close_notify / closes on EOF)."""
    with (
        LocalServer("127.0.0.1", tls=server_tls if tls else None) as one,
        LocalServer("127.0.0.1", tls=server_tls if tls else None) as two,
    ):
        for server in (one, two):
            server.routes["/feed"] = static(FEED)
        fetcher = Fetcher(local_settings(), ssl_context=client_tls)
        for server in (one, two, one, two):
            await fetcher.fetch(server.url("/feed"), "feed")
        assert client_sockets([one.port, two.port]) == 2
        await fetcher.aclose()
        assert await open_after([one.port, two.port], 1.0) == 0


async def test_aclose_closes_a_tls_connection_whose_server_is_silent(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A kept-alive TLS connection to a server that answered and then went quiet (it never
    answers close_notify) is closed by Fetcher.aclose, not left open for ssl_shutdown_timeout
    (30 s) after the Fetcher is gone."""
    stop = threading.Event()
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n"
    try:
        with RawServer(_stalling(server_tls, reply % len(FEED) + FEED, stop)) as server:
            fetcher = Fetcher(local_settings(), ssl_context=client_tls)
            result = await fetcher.fetch(f"https://127.0.0.1:{server.port}/feed", "feed")
            assert result.body == FEED
            assert client_sockets([server.port]) == 1
            await fetcher.aclose()
            still_open = await open_after([server.port], 1.0)
            assert still_open == 0, f"{still_open} socket(s) open 1 s after Fetcher.aclose"
    finally:
        stop.set()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_idle_connections_the_server_closes_are_released_without_new_requests(
    tls: bool, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A kept-alive connection the server closes while idle is closed on our side as well,
    even if no request ever comes to look at the pool again (no descriptor kept for 30 s)."""
    with LocalServer("127.0.0.1", tls=server_tls if tls else None, idle_timeout=0.2) as server:
        server.routes["/feed"] = static(FEED)
        async with Fetcher(local_settings(), ssl_context=client_tls) as fetcher:
            await fetcher.fetch(server.url("/feed"), "feed")
            assert client_sockets([server.port]) == 1
            assert await open_after([server.port], 1.5) == 0


# --- deadlines and cancellation mid-body --------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("how", ["deadline", "cancel"])
async def test_request_stopped_mid_body_leaves_its_origin_usable(
    tls: bool, how: str, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A request stopped while its body streams (the request deadline, or the caller cancelling
    the task) gives its connection and its per-host slot back: with one connection per host,
    the next request to the origin goes through at once, on a new connection."""
    deadline = 0.5 if how == "deadline" else 10
    settings = local_settings(per_host_connections=1, request_deadline=deadline)
    with LocalServer("127.0.0.1", tls=server_tls if tls else None) as server:
        server.routes["/slow"] = _dribble(40, 0.05)
        server.routes["/feed"] = static(FEED)
        async with Fetcher(settings, ssl_context=client_tls) as fetcher:
            if how == "deadline":
                with pytest.raises(FetchError, match=r"timed out after 0\.5s"):
                    await fetcher.fetch(server.url("/slow"), "page")
            else:
                task = asyncio.ensure_future(fetcher.fetch(server.url("/slow"), "page"))
                await asyncio.sleep(0.5)
                assert not task.done()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            async with asyncio.timeout(2):
                result = await fetcher.fetch(server.url("/feed"), "feed")
            again = await fetcher.fetch(server.url("/feed"), "feed")
        assert result.body == again.body == FEED
        slow, feed, feed_again = (r.peer_port for r in server.requests)
        assert feed != slow
        assert feed_again == feed


# --- per-origin pools: eviction, many origins ---------------------------------------------------


async def test_an_origin_streaming_while_many_others_come_and_go_is_not_evicted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While one response streams slowly, 80 other origins are used and released (more than
    the 64 idle origins kept here, so idle ones are evicted meanwhile): the streaming one is in
    use and must not be closed under its response."""
    monkeypatch.setattr(pools, "IDLE_ORIGINS", 64)
    with LocalServer("127.0.0.1") as slow:
        slow.routes["/slow"] = _dribble(30, 0.04)
        async with Origins(80) as origins, Fetcher(local_settings()) as fetcher:
            streaming = asyncio.ensure_future(fetcher.fetch(slow.url("/slow"), "page"))
            await asyncio.sleep(0.1)
            for i in range(80):
                assert (await fetcher.fetch(origins.url(i), "feed")).body == b"ok"
            assert not streaming.done(), "the slow response finished before the others"
            result = await streaming
            assert result.body == b"y" * 1024 * 30
            assert await open_after(origins.ports, 1.0) <= 64


@pytest.mark.parametrize(("n", "tls"), [(300, False), (90, True)], ids=["http", "https"])
async def test_open_sockets_stay_bounded_polling_many_origins(
    n: int,
    tls: bool,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polling many distinct origins in turn (twice round) keeps at most the idle origins' worth
    of connections open (64 here, so that a test can pass it), whatever the number of origins;
    the most recent ones are reused."""
    monkeypatch.setattr(pools, "IDLE_ORIGINS", 64)
    async with (
        Origins(n, server_tls if tls else None) as origins,
        Fetcher(local_settings(), ssl_context=client_tls) as fetcher,
    ):
        peak = 0
        for _ in range(2):
            for i in range(n):
                await fetcher.fetch(origins.url(i), "feed")
                if i % 10 == 0:
                    peak = max(peak, client_sockets(origins.ports))
        assert peak <= 64 + 2
        assert await open_after(origins.ports, 1.0) <= 64
        accepted = origins.accepted
        await fetcher.fetch(origins.url(n - 1), "feed")
        assert origins.accepted == accepted, "the most recently used origin was not kept alive"


# --- kept-alive connections the server drops --------------------------------------------------

KEEP_ALIVE_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n%s"
    % (len(FEED), FEED)
)


async def test_server_closing_a_kept_alive_connection_as_the_request_arrives() -> None:
    """The server takes the next request on a kept-alive connection and hangs up without a
    response (its keep-alive timer fired as the request came in): the GET is sent again, once,
    on a new connection, and succeeds; the connection after that is kept alive."""
    connections = 0

    def handle(conn: socket.socket) -> None:
        nonlocal connections
        connections += 1
        with conn:
            if connections == 1:
                read_request(conn)
                conn.sendall(KEEP_ALIVE_REPLY)
                read_request(conn)  # the second request on this connection: no answer
                return
            while read_request(conn):
                conn.sendall(KEEP_ALIVE_REPLY)

    with RawServer(handle) as server:
        url = server.url("/feed")
        async with Fetcher(local_settings()) as fetcher:
            assert (await fetcher.fetch(url, "feed")).body == FEED
            assert (await fetcher.fetch(url, "feed")).body == FEED
            assert (await fetcher.fetch(url, "feed")).body == FEED
        assert server.connections == 2
        assert await open_after([server.port], 1.0) == 0


async def test_a_request_is_sent_again_at_most_once() -> None:
    """A server that hangs up on every request after the first: the second GET goes out on the
    kept-alive connection, then once more on a new one, then fails with a clear FetchError; a
    first request on a new connection that gets no response is not sent again."""
    connections = 0

    def handle(conn: socket.socket) -> None:
        nonlocal connections
        connections += 1
        with conn:
            if connections == 1:
                read_request(conn)
                conn.sendall(KEEP_ALIVE_REPLY)
            read_request(conn)

    with RawServer(handle) as server:
        url = server.url("/feed")
        async with Fetcher(local_settings()) as fetcher:
            assert (await fetcher.fetch(url, "feed")).body == FEED
            with pytest.raises(FetchError, match="protocol error: Server disconnected"):
                await fetcher.fetch(url, "feed")
            assert server.connections == 2
            with pytest.raises(FetchError, match="protocol error: Server disconnected"):
                await fetcher.fetch(url, "feed")
        assert server.connections == 3


async def test_kept_alive_connection_reset_while_idle_and_loop_busy() -> None:
    """The server resets (RST, not FIN) an idle kept-alive connection while the event loop is
    busy elsewhere: the reset is noticed before reuse and the request goes over a new
    connection instead of failing."""
    reset = threading.Event()

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(KEEP_ALIVE_REPLY)
        if not reset.is_set():
            reset.set()
            time.sleep(0.1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        read_request(conn)

    with RawServer(handle) as server:
        async with Fetcher(local_settings()) as fetcher:
            assert (await fetcher.fetch(server.url("/feed"), "feed")).body == FEED
            time.sleep(0.4)  # noqa: ASYNC251 - the loop must not see the reset before reuse
            assert (await fetcher.fetch(server.url("/feed"), "feed")).body == FEED
        assert server.connections == 2


# --- redirects across origins -------------------------------------------------------------------


async def test_redirect_chain_across_origins_with_one_connection_per_host() -> None:
    """a -> b -> a -> final, with one connection per host: each hop gives its slot and its
    connection back before the next (no deadlock coming back to a), and a second fetch reuses
    one kept-alive connection per origin."""
    with LocalServer("127.0.0.1") as a, LocalServer("127.0.0.1") as b:
        a.routes["/start"] = Response(302, b"moved", {"Location": b.url("/hop")})
        b.routes["/hop"] = Response(301, b"", {"Location": a.url("/back")})
        a.routes["/back"] = Response(307, b"", {"Location": "/final"})
        a.routes["/final"] = static(FEED, etag='"v1"')
        async with Fetcher(local_settings(per_host_connections=1)) as fetcher:
            async with asyncio.timeout(5):
                first = await fetcher.fetch(a.url("/start"), "feed")
                second = await fetcher.fetch(a.url("/start"), "feed", etag='"v1"')
        assert first.body == FEED
        assert first.final_url == a.url("/final")
        assert [status for status, _ in first.redirects] == [302, 301, 307]
        assert second.not_modified
        assert len({r.peer_port for r in a.requests}) == 1
        assert len({r.peer_port for r in b.requests}) == 1
        # The conditional header follows the hops (the origin that answers is the one asked).
        assert all(r.headers.get("if-none-match") == '"v1"' for r in a.requests[3:])


async def test_redirect_from_http_to_https_on_another_origin(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """A redirect to https:// on another port gets a TLS connection (verified with the
    Fetcher's context), and the final URL is the https one."""
    with LocalServer("127.0.0.1") as plain, LocalServer("127.0.0.1", tls=server_tls) as secure:
        plain.routes["/feed"] = Response(301, b"", {"Location": secure.url("/feed")})
        secure.routes["/feed"] = static(FEED)
        async with Fetcher(local_settings(), ssl_context=client_tls) as fetcher:
            result = await fetcher.fetch(plain.url("/feed"), "feed")
        assert result.body == FEED
        assert result.final_url == secure.url("/feed")
        assert result.redirects == ((301, secure.url("/feed")),)


async def test_tls_connection_closed_by_the_server_while_the_loop_was_busy_is_replaced(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """The idle-connection check also works over TLS, where the end of the stream waiting in
    the socket is below the TLS layer: a dropped kept-alive connection is not reused."""
    with LocalServer("127.0.0.1", tls=server_tls, idle_timeout=0.2) as server:
        server.routes["/feed"] = static(FEED)
        async with Fetcher(local_settings(), ssl_context=client_tls) as fetcher:
            first = await fetcher.fetch(server.url("/feed"), "feed")
            time.sleep(0.6)  # noqa: ASYNC251 - the loop does not run meanwhile
            second = await fetcher.fetch(server.url("/feed"), "feed")
        ports = [r.peer_port for r in server.requests]
    assert first.body == second.body == FEED
    assert len(ports) == 2
    assert ports[0] != ports[1]


async def test_deadline_during_the_tls_handshake_leaves_the_origin_usable(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """The request deadline firing in the middle of a TLS handshake (the first connection's
    server is slow to handshake) leaves no half-open connection holding the origin's only
    slot: the next request connects and succeeds at once."""
    connections = 0

    def handle(conn: socket.socket) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            time.sleep(1.0)
        with server_tls.wrap_socket(conn, server_side=True) as tls:
            while read_request(tls):
                tls.sendall(KEEP_ALIVE_REPLY)

    settings = local_settings(per_host_connections=1, request_deadline=0.5, connect_timeout=5)
    with RawServer(handle) as server:
        url = f"https://127.0.0.1:{server.port}/feed"
        async with Fetcher(settings, ssl_context=client_tls) as fetcher:
            with pytest.raises(FetchError, match=r"timed out after 0\.5s"):
                await fetcher.fetch(url, "feed")
            async with asyncio.timeout(2):
                assert (await fetcher.fetch(url, "feed")).body == FEED
        assert server.connections == 2
