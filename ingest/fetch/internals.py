"""Every private part of httpx and httpcore that ingest relies on, behind a small typed
interface. No other module touches a private name of either library: a change of version
that moves one of them breaks this module alone, and `tests/fetch/test_httpx_internals.py`
says which one.

Private names relied on (checked with the versions in `CHECKED`):

- `httpx.AsyncHTTPTransport._pool`: the httpcore connection pool a transport sends every
  request through (`handle_async_request` hands the request to `self._pool`, `aclose` closes
  it). httpx offers no public way to give a transport a network backend, and the SSRF guard
  lives in the network backend (`transport.GuardedBackend`), so `transport_with_pool` replaces
  the pool httpx built with ours and `connection_pool` reads it back.
- The `"is_readable"` key of `httpcore.AsyncNetworkStream.get_extra_info` (`IS_READABLE`):
  httpcore's HTTP/1.1 connection asks its stream for it before it reuses an idle kept-alive
  connection, to tell one the server has closed (`AsyncHTTP11Connection.has_expired`). It is
  not among the keys httpcore documents; a network stream of our own has to answer it.

- The names `AsyncLock`, `AsyncEvent` and `AsyncShieldCancellation` in the modules of
  httpcore's HTTP/1.1 path (`httpcore._async.connection_pool`, `.connection`, `.http11`):
  `asyncio_primitives` binds them to asyncio's own lock and event and to a shield that does
  nothing (see there why).

- `httpcore._async.http11.AsyncHTTP11Connection._receive_event`, the coroutine that hands
  httpcore's HTTP/1.1 connection each event h11 reads: `bounded_events` wraps it to count
  the informational (1xx) responses before a response, which httpcore passes over without
  end, and to let the event loop turn between the events of a long run.

`httpcore.SOCKET_OPTION`, the type of a socket option in `AsyncNetworkBackend.connect_tcp`, is
public (in `httpcore.__all__`): it is imported from `httpcore`, not from the private module
that defines it."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import ssl
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any, Final

import httpcore
import httpx

CHECKED: Final = {"httpx": ("0.28.1", "0.29.0"), "httpcore": ("1.0.9",)}
"""The versions this module was checked with, by the test that guards it."""

IS_READABLE: Final = "is_readable"
"""The `get_extra_info` key httpcore asks a network stream for to learn whether an idle
connection has bytes or the end of the stream waiting, i.e. the server has closed it."""

_NOWHERE: Final = "/dev/null"
"""A Unix socket path nothing can listen on: the pool httpx builds for a transport, which
`transport_with_pool` replaces, connects there, so that a request that would go through it
(should httpx stop sending requests through `_pool`) fails instead of going out around the
project's network backend and its SSRF guard."""


class InternalsChangedError(RuntimeError):
    """The installed httpx or httpcore no longer has a private part this module relies on."""


def transport_with_pool(
    pool: httpcore.AsyncConnectionPool, *, ssl_context: ssl.SSLContext
) -> httpx.AsyncHTTPTransport:
    """An httpx transport that sends every request through `pool`, and so through the pool's
    network backend; closing the transport closes `pool`. `ssl_context` should be the pool's:
    httpx builds a pool of its own first (then dropped), and with a context given it does not
    load a CA bundle for it (tens of milliseconds)."""
    transport = _bare_transport(ssl_context)
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise InternalsChangedError(
            f"httpx {httpx.__version__}: AsyncHTTPTransport has no httpcore pool in `_pool`; "
            "see ingest/fetch/internals.py and tests/fetch/test_httpx_internals.py"
        )
    transport._pool = pool
    return transport


def _bare_transport(ssl_context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """The transport as httpx builds it, before its pool is replaced: that pool connects to
    `_NOWHERE`, whatever the URL."""
    return httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False, uds=_NOWHERE)


def connection_pool(transport: httpx.AsyncHTTPTransport) -> httpcore.AsyncConnectionPool:
    """The httpcore pool `transport` sends its requests through."""
    return transport._pool


_HTTP11_PRIMITIVES: Final = {
    "httpcore._async.connection_pool": ("AsyncEvent", "AsyncShieldCancellation"),
    "httpcore._async.connection": ("AsyncLock",),
    "httpcore._async.http11": ("AsyncLock", "AsyncShieldCancellation"),
}
"""The synchronisation primitives each module of httpcore's HTTP/1.1 path builds (HTTP/2 and
proxies are not used), which `asyncio_primitives` rebinds."""


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Lock:
    """httpcore's `AsyncLock` on an `asyncio.Lock`."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> _Lock:
        await self._lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._lock.release()


class _Event:
    """httpcore's `AsyncEvent` on an `asyncio.Event`: `wait` raises `httpcore.PoolTimeout`
    when `timeout` passes first, as httpcore's does."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        if self._event.is_set():
            return
        if timeout is None:
            await self._event.wait()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError as e:
            if self._event.is_set():
                # Set in the loop pass the deadline fired in, before this task ran again: the
                # request has its connection (anyio's deadline does not cancel a task whose
                # future is done); PoolTimeout would strand that connection in the pool.
                return
            raise httpcore.PoolTimeout() from e


class _NoShield:
    """httpcore's `AsyncShieldCancellation` where nothing uses anyio's cancel scopes: anyio's
    shield holds off the cancellation of anyio's own scopes only, never asyncio's
    (`Task.cancel`, `asyncio.timeout`), the only kind ingest uses; so it did nothing here but
    cost CPU on every response."""

    __slots__ = ()

    def __enter__(self) -> _NoShield:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        return None


_ORIGINAL: Final = "__httpcore_primitive__"


def _either(native: Callable[[], Any], original: Callable[[], Any]) -> Callable[[], Any]:
    """A factory that builds `native` under asyncio, and httpcore's own class otherwise (a
    trio program in the same process keeps what httpcore gives it)."""

    def make() -> Any:
        return native() if _on_asyncio() else original()

    make.__name__ = getattr(original, "__name__", "primitive")
    setattr(make, _ORIGINAL, original)
    return make


def asyncio_primitives() -> None:
    """Make httpcore's HTTP/1.1 path use asyncio's own lock and event, and no cancellation
    shield, under asyncio. For every request httpcore takes three locks, waits on an event for
    its connection (inside an anyio deadline scope) and enters two cancellation shields, each
    built by anyio after sniffio has told which library runs: 13 % of the main process's CPU
    in a warm pass of 304s, where asyncio's own lock and event take next to none uncontended.
    Process-wide and idempotent; the primitives keep httpcore's semantics under asyncio
    (`tests/fetch/test_httpx_internals.py` checks them with the installed httpcore)."""
    from httpcore import _synchronization

    natives: dict[str, Callable[[], Any]] = {
        "AsyncLock": _Lock,
        "AsyncEvent": _Event,
        "AsyncShieldCancellation": _NoShield,
    }
    for name, primitives in _HTTP11_PRIMITIVES.items():
        module: ModuleType = importlib.import_module(name)
        for primitive in primitives:
            original = getattr(_synchronization, primitive, None)
            bound = getattr(module, primitive, None)
            rebound = getattr(bound, _ORIGINAL, None)  # the original a factory of ours wraps
            if original is None or original not in (bound, rebound):
                raise InternalsChangedError(
                    f"httpcore {httpcore.__version__}: {name} no longer builds httpcore's "
                    f"{primitive}; see ingest/fetch/internals.py and "
                    "tests/fetch/test_httpx_internals.py"
                )
            if rebound is None:  # httpcore's own still: not rebound yet
                setattr(module, primitive, _either(natives[primitive], original))


MAX_INFORMATIONAL: Final = 5
"""Informational (1xx) responses a response may come after (`bounded_events`): a server
sends one or two (`100 Continue`, `103 Early Hints`); Go's client takes five too."""

EVENTS_PER_TURN: Final = 64
"""h11 events (a chunk of a chunked body, a read of another) a connection hands on before it
lets the event loop turn (`bounded_events`): each costs about 37 µs in h11, httpcore and
httpx, so that a body of one-byte chunks the socket holds at once, parsed without a pause,
kept every other request and query of the process waiting for seconds."""

_INFORMATIONAL_SEEN: Final = "_ingest_informational_seen"
_EVENTS_SEEN: Final = "_ingest_events_seen"
_WRAPPED: Final = "__httpcore_receive_event__"


def bounded_events() -> None:
    """Make httpcore's HTTP/1.1 connection refuse a response that comes after more than
    `MAX_INFORMATIONAL` informational (1xx) responses (`httpcore.RemoteProtocolError`), and
    let the event loop turn once every `EVENTS_PER_TURN` events it hands on. httpcore passes
    1xx responses over for as long as the server sends them, and parses what the socket holds
    without a pause: a server sending 1xx responses without end, or a body in one-byte chunks,
    kept the event loop (every other request and query of the process) for a second or more
    at a time until the request's deadline. A `101 Switching Protocols` ends the head as
    httpcore reads it. Process-wide and idempotent."""
    from httpcore._async import http11

    connection = getattr(http11, "AsyncHTTP11Connection", None)
    receive = getattr(connection, "_receive_event", None)
    # The h11 httpcore parses with (its module's own import: no dependency of ingest's).
    informational = getattr(getattr(http11, "h11", None), "InformationalResponse", None)
    if connection is None or informational is None or not inspect.iscoroutinefunction(receive):
        raise InternalsChangedError(
            f"httpcore {httpcore.__version__}: AsyncHTTP11Connection has no coroutine "
            "`_receive_event` handing it h11's events; see ingest/fetch/internals.py and "
            "tests/fetch/test_httpx_internals.py"
        )
    if getattr(receive, _WRAPPED, None) is not None:
        return

    async def _receive_event(self: Any, timeout: float | None = None) -> Any:
        state = self.__dict__
        events = state.get(_EVENTS_SEEN, 0) + 1
        if events >= EVENTS_PER_TURN:
            events = 0
            if _on_asyncio():  # a trio program in the same process is left to its own
                await asyncio.sleep(0)
        state[_EVENTS_SEEN] = events
        event = await receive(self, timeout)
        if type(event) is informational and event.status_code != 101:
            seen = state.get(_INFORMATIONAL_SEEN, 0) + 1
            if seen > MAX_INFORMATIONAL:
                raise httpcore.RemoteProtocolError(
                    f"more than {MAX_INFORMATIONAL} informational (1xx) responses"
                )
            state[_INFORMATIONAL_SEEN] = seen
        elif _INFORMATIONAL_SEEN in state:
            del state[_INFORMATIONAL_SEEN]
        return event

    setattr(_receive_event, _WRAPPED, receive)
    connection._receive_event = _receive_event
