"""Kept-alive connections: one small httpcore pool per origin, kept while the origin is in use
and for a while after, for the most recently used origins."""

from __future__ import annotations

import resource
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import httpx

from ingest.fetch.internals import connection_pool
from ingest.fetch.limits import Clock


def _idle_origins() -> int:
    """Origins whose idle connections are kept alive, most recently used first: 1024, or a
    quarter of the process's open-file limit if that is lower (each origin keeps up to
    `INGEST_PER_HOST_CONNECTIONS` sockets). A poll over a thousand hosts a second apart then
    reuses its connections instead of opening one per request."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 64
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(16, min(1024, soft // 4))


IDLE_ORIGINS: Final = _idle_origins()
KEEPALIVE_SECONDS: Final = 30.0


@dataclass(eq=False)
class _OriginPool:
    transport: httpx.AsyncHTTPTransport
    users: int = 0
    idle_since: float = 0.0


class OriginPools:
    """One small httpcore connection pool per origin (scheme, host, port), kept alive while
    the origin is in use and for `KEEPALIVE_SECONDS` after, for at most `max_idle` idle
    origins (`IDLE_ORIGINS` by default; least recently used closed first).

    Why not one httpcore pool for everything: httpcore looks at every pooled connection on each
    request and each release, so its CPU per request grows with the pool. One shared pool had
    to be capped at 8 kept-alive connections, and a poll over more hosts than that opened a new
    connection (and a TLS handshake) for almost every request. Here a pool holds at most the
    per-host limit; the HostLimiter in front keeps the number of requests in flight."""

    def __init__(
        self,
        make_transport: Callable[[], httpx.AsyncHTTPTransport],
        *,
        max_idle: int | None = None,
        keepalive: float = KEEPALIVE_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._make_transport = make_transport
        self._max_idle = IDLE_ORIGINS if max_idle is None else max_idle
        self._keepalive = keepalive
        self._clock = clock
        self._pools: dict[tuple[str, bytes, int | None], _OriginPool] = {}
        self._idle: dict[tuple[str, bytes, int | None], _OriginPool] = {}
        """Origins nobody is using, least recently released first (dicts keep order). They
        are trimmed whenever an origin is released: with no requests at all, idle connections
        stay until their servers close them."""
        self._closed = False

    def __len__(self) -> int:
        return len(self._pools)

    @asynccontextmanager
    async def transport(self, url: httpx.URL) -> AsyncIterator[httpx.AsyncHTTPTransport]:
        """The transport for `url`'s origin, held for the duration of the block."""
        if self._closed:
            raise RuntimeError("the connection pools are closed")
        key = (url.scheme, url.raw_host, url.port)
        entry = self._pools.get(key)
        if entry is None:
            entry = self._pools[key] = _OriginPool(self._make_transport())
        elif entry.users == 0:
            del self._idle[key]
        entry.users += 1
        try:
            yield entry.transport
        finally:
            entry.users -= 1
            if entry.users == 0 and not self._closed:
                entry.idle_since = self._clock()
                self._idle[key] = entry
                await self._trim()

    async def _trim(self) -> None:
        """Close idle origins beyond `max_idle`, and those idle for longer than the keep-alive."""
        expired = self._clock() - self._keepalive
        while self._idle:
            key, entry = next(iter(self._idle.items()))
            if len(self._idle) <= self._max_idle and entry.idle_since > expired:
                return
            del self._idle[key]
            del self._pools[key]
            await entry.transport.aclose()

    async def aclose(self) -> None:
        """Close every connection; a request still in flight fails, and its origin is not
        kept when it ends."""
        self._closed = True
        pools, self._pools, self._idle = self._pools, {}, {}
        for entry in pools.values():
            await entry.transport.aclose()


def has_idle_connection(transport: httpx.AsyncHTTPTransport) -> bool:
    """Would a request on `transport` go out on a kept-alive connection?"""
    return any(connection.is_idle() for connection in connection_pool(transport).connections)
