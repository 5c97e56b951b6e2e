"""Every private part of httpx and httpcore that ingest relies on, behind a small typed
interface. No other module touches a private name of either library: a change of version
that moves one of them breaks this module alone, and `tests/unit/test_httpx_internals.py`
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

`httpcore.SOCKET_OPTION`, the type of a socket option in `AsyncNetworkBackend.connect_tcp`, is
public (in `httpcore.__all__`): it is imported from `httpcore`, not from the private module
that defines it."""

from __future__ import annotations

import ssl
from typing import Final

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
            "see ingest/fetch/internals.py and tests/unit/test_httpx_internals.py"
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
