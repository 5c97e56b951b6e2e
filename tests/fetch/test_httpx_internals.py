"""The private parts of httpx and httpcore that `ingest.fetch.internals` wraps are still there
and still work as it expects, in the installed versions; and no other module of ingest touches
a private name of either library.

A failure here after an upgrade of httpx or httpcore means the upgrade changed something the
fetcher depends on (requests could go out around the SSRF guard, or dropped kept-alive
connections go unnoticed): the message says what changed and where to look. Keep the pin, or
adapt `ingest/fetch/internals.py` and add the version to its `CHECKED`."""

from __future__ import annotations

import ast
import asyncio
import importlib
import ssl
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from ingest.fetch import internals
from ingest.fetch.guard import BlockedAddressError
from ingest.fetch.internals import (
    IS_READABLE,
    InternalsChangedError,
    asyncio_primitives,
    bounded_events,
    connection_pool,
    transport_with_pool,
)
from ingest.fetch.pools import has_idle_connection
from ingest.fetch.transport import GuardedBackend
from tests.support.httpserver import LocalServer, Response

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
INTERNALS = ROOT / "ingest" / "fetch" / "internals.py"
HTTPX_TRANSPORT = "_transports/default.py (AsyncHTTPTransport)"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def context() -> ssl.SSLContext:
    return ssl.create_default_context()


def changed(library: str, what: str, where: str) -> str:
    """The failure message: what changed, in which installed version, and where to look."""
    version = {"httpx": httpx.__version__, "httpcore": httpcore.__version__}[library]
    checked = ", ".join(internals.CHECKED[library])
    return (
        f"{library} {version} changed a private part ingest relies on: {what}. "
        f"Checked with {library} {checked}. Look at {library}'s {where}, then adapt "
        f"ingest/fetch/internals.py (or keep {library} pinned to a checked version)."
    )


# --- httpx.AsyncHTTPTransport._pool ---------------------------------------------------------


BYPASSED = (
    "AsyncHTTPTransport.handle_async_request no longer sends the request through `_pool`, so "
    "not through ingest's network backend and its SSRF guard (the pool httpx built instead "
    "connects nowhere: every fetch fails)"
)


async def send(transport: httpx.AsyncHTTPTransport, url: str) -> httpx.Response:
    """`handle_async_request`, failing with what changed if the request went out on the pool
    httpx built (which connects nowhere) rather than on the one in `_pool`."""
    try:
        return await transport.handle_async_request(httpx.Request("GET", url))
    except httpx.ConnectError as e:
        pytest.fail(changed("httpx", f"{BYPASSED}; the request failed with {e!r}", HTTPX_TRANSPORT))


class RecordingPool(httpcore.AsyncConnectionPool):
    """A pool that answers every request itself, 200 with `ok`, and records what it got."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpcore.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        self.requests.append(request)
        return httpcore.Response(200, headers=[(b"Content-Length", b"2")], content=b"ok")

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


def test_a_transport_keeps_its_httpcore_pool_in_pool_attribute(context: ssl.SSLContext) -> None:
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
    pool = getattr(transport, "_pool", None)
    assert isinstance(pool, httpcore.AsyncConnectionPool), changed(
        "httpx",
        f"AsyncHTTPTransport() has no httpcore.AsyncConnectionPool in `_pool` (found {pool!r})",
        HTTPX_TRANSPORT,
    )


async def test_requests_and_closing_go_through_the_pool_attribute(
    context: ssl.SSLContext,
) -> None:
    pool = RecordingPool()
    transport = transport_with_pool(pool, ssl_context=context)
    assert connection_pool(transport) is pool
    response = await send(transport, "http://a.example/x")
    await response.aread()
    sent_through_pool = len(pool.requests) == 1 and response.content == b"ok"
    assert sent_through_pool, changed("httpx", BYPASSED, HTTPX_TRANSPORT)
    assert pool.requests[0].url == httpcore.URL("http://a.example/x")
    await transport.aclose()
    assert pool.closed, changed(
        "httpx",
        "AsyncHTTPTransport.aclose no longer closes `_pool`: connections would be left open",
        HTTPX_TRANSPORT,
    )


async def test_the_pool_httpx_builds_itself_connects_nowhere(context: ssl.SSLContext) -> None:
    """Should httpx stop sending requests through `_pool`, they fail rather than go out on the
    pool httpx built, which knows nothing of the SSRF guard."""
    with LocalServer() as server:
        server.routes["/x"] = Response(200, b"ok")
        transport = internals._bare_transport(context)
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(httpx.Request("GET", server.url("/x")))
        await transport.aclose()
        assert not server.requests


class RecordingCheck:
    """An address check that records every address and refuses those in `refused`."""

    def __init__(self, refused: Iterable[str] = ()) -> None:
        self.checked: list[str] = []
        self.refused = set(refused)

    def __call__(self, ip: str) -> None:
        self.checked.append(ip)
        if ip in self.refused:
            raise BlockedAddressError(f"{ip} refused by the test")


async def _no_resolver(host: str, port: int) -> list[str]:
    raise AssertionError("the test connects to IP addresses only")


def _guarded_transport(check: RecordingCheck, context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=2,
        max_keepalive_connections=2,
        network_backend=GuardedBackend(_no_resolver, check),
    )
    return transport_with_pool(pool, ssl_context=context)


async def test_a_request_goes_through_the_projects_backend(context: ssl.SSLContext) -> None:
    """Against a real loopback server: the transport connects through the project's backend
    (the address is checked), keeps the connection alive in the project's pool, and reuses it."""
    check = RecordingCheck()
    transport = _guarded_transport(check, context)
    with LocalServer() as server:
        server.routes["/x"] = Response(200, b"hello")
        for _ in range(2):
            response = await send(transport, server.url("/x"))
            assert response.status_code == 200
            assert await response.aread() == b"hello"
            await response.aclose()
            assert has_idle_connection(transport), changed(
                "httpcore",
                "a connection back from a response is not idle in AsyncConnectionPool.connections",
                "_async/connection_pool.py",
            )
        await transport.aclose()
    assert check.checked == ["127.0.0.1"], changed(
        "httpx",
        "a request did not connect through the network backend of the pool put in `_pool` "
        f"(addresses checked: {check.checked})",
        HTTPX_TRANSPORT,
    )
    assert len(server.requests) == 2
    assert server.requests[0].peer_port == server.requests[1].peer_port


async def test_a_refused_address_never_reaches_the_server(context: ssl.SSLContext) -> None:
    check = RecordingCheck(refused={"127.0.0.1"})
    transport = _guarded_transport(check, context)
    with LocalServer() as server:
        server.routes["/x"] = Response(200, b"hello")
        with pytest.raises(BlockedAddressError):
            await send(transport, server.url("/x"))
        await transport.aclose()
        assert not server.requests, changed(
            "httpx",
            "a request reached the server although the pool's network backend refused the "
            "address: requests do not go through `_pool`",
            HTTPX_TRANSPORT,
        )


# --- the "is_readable" network stream key ---------------------------------------------------

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class ClosedByServerStream(httpcore.AsyncMockStream):
    """A stream that answers one request, then says it is readable: the server closed it."""

    def __init__(self, asked: list[str]) -> None:
        super().__init__([RESPONSE])
        self.asked = asked

    def get_extra_info(self, info: str) -> Any:
        self.asked.append(info)
        return True if info == IS_READABLE else super().get_extra_info(info)


class ClosedByServerBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.connections = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connections += 1
        return ClosedByServerStream(self.asked)


async def test_an_idle_connection_the_stream_calls_readable_is_not_reused() -> None:
    """httpcore asks the stream for `IS_READABLE` before reusing an idle connection, and drops
    the connection when the answer is yes (`AsyncioStream.get_extra_info` answers it)."""
    backend = ClosedByServerBackend()

    def reused(detail: str) -> str:
        return changed(
            "httpcore",
            "an idle connection is reused without asking its network stream for "
            f"{IS_READABLE!r} ({detail}; keys asked: {sorted(set(backend.asked))}); "
            "kept-alive connections a server closed would fail the next request",
            "_async/http11.py (AsyncHTTP11Connection.has_expired)",
        )

    async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
        for _ in range(2):
            try:
                response = await pool.request("GET", "http://a.example/")
            except httpcore.RemoteProtocolError as e:
                pytest.fail(reused(f"the second request failed with {e!r}"))
            assert response.status == 200
    dropped = IS_READABLE in backend.asked and backend.connections == 2
    assert dropped, reused(f"{backend.connections} connection(s) for two requests")


def test_socket_option_is_public() -> None:
    assert "SOCKET_OPTION" in httpcore.__all__, changed(
        "httpcore",
        "SOCKET_OPTION (the type of connect_tcp's socket options, imported by "
        "ingest/fetch/transport.py) is no longer exported",
        "__init__.py",
    )


# --- httpcore's synchronisation primitives ----------------------------------------------------

SYNCHRONISATION = "_synchronization.py and the modules that import from it"


def _sniffing_forbidden(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every time httpcore asks sniffio which library runs (it does so for each anyio
    primitive it builds) instead of answering."""
    from httpcore import _synchronization

    asked: list[str] = []

    def current_async_library() -> str:
        asked.append("asked")
        return "asyncio"

    monkeypatch.setattr(_synchronization, "current_async_library", current_async_library)
    return asked


async def test_a_request_builds_no_anyio_primitive(
    context: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `asyncio_primitives`, a request over a kept-alive connection (and the one that
    opened it) builds none of httpcore's anyio locks, events or shields."""
    asyncio_primitives()
    asked = _sniffing_forbidden(monkeypatch)
    transport = _guarded_transport(RecordingCheck(), context)
    with LocalServer() as server:
        server.routes["/x"] = Response(200, b"hello")
        for _ in range(2):
            response = await send(transport, server.url("/x"))
            assert await response.aread() == b"hello"
            await response.aclose()
        await transport.aclose()
    assert len(server.requests) == 2
    assert server.requests[0].peer_port == server.requests[1].peer_port
    assert not asked, changed(
        "httpcore",
        f"a request still built {len(asked)} anyio primitive(s) after asyncio_primitives "
        "(a module of the HTTP/1.1 path builds one under a new name)",
        SYNCHRONISATION,
    )


def _get(url: str, pool_timeout: float | None = None) -> httpcore.Request:
    host = httpx.URL(url).netloc
    extensions = {"timeout": {"pool": pool_timeout}} if pool_timeout else {}
    return httpcore.Request("GET", url, headers=[(b"Host", host)], extensions=extensions)


async def test_a_full_pool_still_times_out_with_pool_timeout(context: ssl.SSLContext) -> None:
    """The event a request waits on for a connection keeps httpcore's deadline: a pool of one
    connection held by an unread response makes the next request fail with PoolTimeout, and
    serves it once the first is closed; a waiter cancelled meanwhile leaves nothing behind."""
    asyncio_primitives()
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=1,
        network_backend=GuardedBackend(_no_resolver, RecordingCheck()),
    )
    with LocalServer() as server:
        server.routes["/x"] = Response(200, b"hello")
        url = server.url("/x")
        async with pool:
            held = await pool.handle_async_request(_get(url))
            with pytest.raises(httpcore.PoolTimeout):
                await pool.handle_async_request(_get(url, pool_timeout=0.05))
            cancelled = asyncio.create_task(pool.handle_async_request(_get(url)))
            await asyncio.sleep(0.02)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            await held.aread()
            await held.aclose()
            response = await pool.request("GET", url)
            assert response.content == b"hello"
            assert not pool._requests  # httpcore's queue of waiting requests
    assert len(server.requests) == 2


async def test_a_cancelled_response_still_releases_its_connection(
    context: ssl.SSLContext,
) -> None:
    """httpcore closes a response cancelled mid-body under what was anyio's shield; under
    asyncio it never held off asyncio's cancellation, and the connection is still given back."""
    asyncio_primitives()
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=1,
        network_backend=GuardedBackend(_no_resolver, RecordingCheck()),
    )

    def slow() -> Iterator[bytes]:
        yield b"a" * 1000
        import time

        time.sleep(0.5)
        yield b"b"

    with LocalServer() as server:
        server.routes["/slow"] = Response(200, slow(), {"Content-Length": "1001"})
        server.routes["/x"] = Response(200, b"hello")
        async with pool:

            async def read_slowly() -> None:
                async with pool.stream("GET", server.url("/slow")) as response:
                    await response.aread()

            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await read_slowly()
            response = await pool.request("GET", server.url("/x"))
            assert response.content == b"hello"
    assert [r.path for r in server.requests] == ["/slow", "/x"]


def test_outside_asyncio_httpcore_keeps_its_own_primitives() -> None:
    from httpcore import _synchronization

    asyncio_primitives()
    http11 = importlib.import_module("httpcore._async.http11")
    assert isinstance(http11.AsyncLock(), _synchronization.AsyncLock)
    pool_module = importlib.import_module("httpcore._async.connection_pool")
    assert isinstance(pool_module.AsyncEvent(), _synchronization.AsyncEvent)


async def test_asyncio_primitives_is_idempotent_and_notices_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asyncio_primitives()
    asyncio_primitives()
    http11 = importlib.import_module("httpcore._async.http11")
    assert not isinstance(http11.AsyncLock(), httpcore._synchronization.AsyncLock)
    monkeypatch.setattr(http11, "AsyncLock", object)
    with pytest.raises(InternalsChangedError, match="http11 no longer builds"):
        asyncio_primitives()


def test_bounded_events_is_idempotent_and_notices_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http11 = importlib.import_module("httpcore._async.http11")
    bounded_events()
    wrapped = http11.AsyncHTTP11Connection._receive_event
    bounded_events()
    assert http11.AsyncHTTP11Connection._receive_event is wrapped
    monkeypatch.delattr(http11.AsyncHTTP11Connection, "_receive_event")
    with pytest.raises(InternalsChangedError, match="no coroutine `_receive_event`"):
        bounded_events()


# --- no other module touches a private name ---------------------------------------------------


def _private_attributes() -> frozenset[str]:
    """The private attributes of an httpx transport and of its httpcore pool."""
    transport = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(), trust_env=False)
    names = set(vars(transport)) | set(vars(connection_pool(transport)))
    return frozenset(n for n in names if n.startswith("_") and not n.startswith("__"))


def _private_uses(path: Path, attributes: frozenset[str]) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            names = []
        for name in names:
            top, _, rest = name.partition(".")
            if top in ("httpx", "httpcore") and any(p.startswith("_") for p in rest.split(".")):
                yield f"{where}: imports {name}"
        if (
            isinstance(node, ast.Attribute)
            and node.attr in attributes
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            yield f"{where}: .{node.attr} of {ast.unparse(node.value)}"
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("httpx", "httpcore")
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            yield f"{where}: {node.value.id}.{node.attr}"


def test_no_other_module_touches_a_private_name() -> None:
    attributes = _private_attributes()
    assert "_pool" in attributes
    found = [
        use
        for path in sorted((ROOT / "ingest").rglob("*.py"))
        if path != INTERNALS
        for use in _private_uses(path, attributes)
    ]
    assert not found, (
        "private names of httpx/httpcore used outside ingest/fetch/internals.py; wrap them "
        "there, with the versions checked:\n" + "\n".join(found)
    )


@pytest.mark.parametrize("which", ["httpcore", "asyncio_primitives"])
async def test_an_event_set_as_its_pool_timeout_fires_is_no_timeout(which: str) -> None:
    """The connection is handed to a waiting request (its event set) in the same pass of the
    event loop as its pool timeout fires, before the waiter runs again: httpcore's event (anyio
    does not cancel a task whose awaited future is already done) lets the request go on with its
    connection. Raising PoolTimeout there would leave the connection assigned to a request that
    is gone; a new one, never connected, would hold a pool slot for good."""
    import time

    from httpcore import _synchronization

    asyncio_primitives()
    pool_module = importlib.import_module("httpcore._async.connection_pool")
    event = _synchronization.AsyncEvent() if which == "httpcore" else pool_module.AsyncEvent()
    loop = asyncio.get_running_loop()
    waiter = asyncio.create_task(event.wait(timeout=0.05))
    await asyncio.sleep(0)  # the waiter waits, its deadline 0.05 s from now
    loop.call_at(loop.time() + 0.01, event.set)  # before the deadline; blocked past both,
    time.sleep(0.1)  # noqa: ASYNC251 - the loop then runs both in one pass: set, then deadline
    await waiter  # no PoolTimeout
