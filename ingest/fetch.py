"""HTTP for the whole service: one `Fetcher` owns the httpx client, the SSRF guard, size caps,
deadlines, redirects, concurrency limits and the robots.txt cache; it returns `FetchResult`s
and raises only `FetchError` / `BlockedError` for anything the network does."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import math
import select
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.base import SOCKET_OPTION

from ingest import USER_AGENT
from ingest.config import Settings
from ingest.errors import BlockedError, FetchError
from ingest.metrics import FETCH_SECONDS
from ingest.robots import ROBOTS_AGENT, Robots, parse_robots, robots_url
from ingest.types import FetchKind, FetchResult

RobotsVerdict = Literal["allowed", "disallowed", "unavailable"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> IP address strings, in the order to try them."""

AddressCheck = Callable[[str], None]
"""Raises `BlockedAddressError` for an IP address that must not be connected to."""

ROBOTS_MAX_BYTES: Final = 512 * 1024
"""RFC 9309 §2.5: parse at least 500 KiB; anything beyond is ignored (truncated), not an error."""

ROBOTS_FAILURE_SECONDS: Final = 600.0
"""How long a 5xx or unreachable robots.txt keeps a host disallowed before we ask again."""

_ACCEPT: Final[dict[FetchKind, str]] = {
    "feed": (
        "application/rss+xml, application/atom+xml, application/feed+json, "
        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
    ),
    "page": "text/html, application/xhtml+xml;q=0.9, */*;q=0.8",
    "robots": "text/plain, */*;q=0.5",
}
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
_MAX_ADDRESSES_TRIED: Final = 4
"""A name with many dead addresses must not multiply the connect timeout without bound."""
_CHUNK: Final = 64 * 1024


# --- SSRF guard -------------------------------------------------------------------------------


class BlockedAddressError(ValueError):
    """An address the guard refuses. Raised inside the network layer; `Fetcher.fetch` turns it
    into `BlockedError` with the URL attached."""


_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the translation forms.

    ::ffff:a.b.c.d reaches a.b.c.d on dual-stack sockets; 64:ff9b::/96 (RFC 6052) reaches it
    through a NAT64 gateway; 2002::/16 (6to4) and Teredo tunnel to it. Python reports several of
    these as `is_global` whatever they embed, so the embedded address is what gets checked."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def _refusal(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `addr` is not a public unicast address, or None if it is."""
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        # Python counts most multicast ranges as `is_global`.
        return "multicast"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return "shared (carrier-grade NAT)"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    if isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local:
        return "site-local"
    if not addr.is_global:
        return "non-global"
    return None


def check_address(ip: str, allow_private: bool) -> None:
    """Return if `ip` may be connected to; raise `BlockedAddressError` otherwise.

    Only globally routable unicast addresses pass (checked after unwrapping IPv4-mapped, NAT64,
    6to4 and Teredo forms), unless `allow_private` is set (tests, intranet deployments)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError as e:
        raise BlockedAddressError(f"{ip!r} is not an IP address") from e
    if allow_private:
        return
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            reason = _refusal(embedded)
            if reason is not None:
                raise BlockedAddressError(f"{ip} embeds {embedded}, a {reason} address")
            return
    reason = _refusal(addr)
    if reason is not None:
        raise BlockedAddressError(f"{ip} is a {reason} address")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the OS resolver (getaddrinfo), keeping its order and dropping duplicates."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and its causes: the useful detail is often a few exceptions down."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _refused(exc: BaseException) -> bool:
    return any(isinstance(c, OSError) and c.errno == errno.ECONNREFUSED for c in _chain(exc))


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(c, kind) for c in _chain(exc))


_READ_LIMIT: Final = 256 * 1024
"""Bytes buffered from a socket before reading from it pauses until the client catches up."""


class _StreamProtocol(asyncio.Protocol):
    """Buffers what the transport receives for `AsyncioStream.read`, and tracks write flow
    control for `AsyncioStream.write`. A waiter abandoned by its reader (a timeout) is replaced
    by a new one on the next wait."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self._writing_paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_LIMIT and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        _wake(self._readable)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self._readable)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._writing_paused = False
        _wake(self._readable)
        _wake(self._writable)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._writable)

    def readable(self) -> asyncio.Future[None]:
        """Done once data, end of stream or an error has arrived."""
        if self._readable is None or self._readable.done():
            self._readable = asyncio.get_running_loop().create_future()
        return self._readable

    def writable(self) -> asyncio.Future[None] | None:
        """None while the transport takes writes; otherwise done once it does again."""
        if not self._writing_paused:
            return None
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()
        return self._writable


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _socket_readable(sock: socket.socket | None) -> bool:
    """Would a read return at once (data, or the end of the stream)? A socket that is gone
    counts as readable: its next read is the end."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class AsyncioStream(AsyncNetworkStream):
    """An httpcore network stream straight on an asyncio transport."""

    def __init__(
        self, transport: asyncio.Transport, protocol: _StreamProtocol, *, tls: bool = False
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tls = tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                async with asyncio.timeout(timeout):
                    await protocol.readable()
            except TimeoutError as e:
                raise httpcore.ReadTimeout(f"no data for {timeout}s") from e
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if protocol.reading_paused and len(protocol.buffer) <= _READ_LIMIT // 2:
                protocol.reading_paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__) from (
                protocol.error
            )
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if self._transport.is_closing() or protocol.error is not None:
            raise httpcore.WriteError("connection closed") from protocol.error
        self._transport.write(buffer)
        waiter = protocol.writable()
        if waiter is not None:
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError as e:
                raise httpcore.WriteTimeout(f"could not write for {timeout}s") from e
            if protocol.error is not None:
                raise httpcore.WriteError(str(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        self._transport.close()
        if self._tls:
            # close() starts asyncio's graceful TLS shutdown, which waits up to 30 s for the
            # server's close_notify before it lets go of the socket: a stalled server would hold
            # a file descriptor that long. close_notify goes out on the next loop pass; then
            # the socket is dropped, as httpcore's own network layer does.
            await asyncio.sleep(0)
            self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as e:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake timed out after {timeout}s") from e
        except (OSError, ssl.SSLError) as e:
            self._transport.abort()
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        if transport is None:
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol, tls=True)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle keep-alive connection with bytes or EOF waiting was closed by the server.
            # What the event loop has not yet read (it may not have run since) is still in the
            # socket: look there too.
            protocol = self._protocol
            return (
                bool(protocol.buffer)
                or protocol.eof
                or _socket_readable(self.get_extra_info("socket"))
            )
        key = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if key in ("ssl_object", "sockname", "peername", "socket"):
            try:
                return self._transport.get_extra_info(key)
            except AttributeError:  # asyncio's TLS transport, once closed
                return None
        return None


class AsyncioBackend(AsyncNetworkBackend):
    """httpcore's network layer on plain asyncio transports. httpcore's default goes through
    anyio, whose cancel scopes and stream wrappers cost more CPU per request than the HTTP
    parsing itself; a poll that mostly gets 304s is bound by that."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _StreamProtocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"connect timed out after {timeout}s") from e
        except OSError as e:
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class GuardedBackend(AsyncNetworkBackend):
    """httpcore network backend that resolves, checks every address, then connects to a checked
    address. Checking here rather than before the request means the address checked is the
    address connected to (no DNS-rebinding window) and every redirect hop and odd IP-literal
    spelling (2130706433, 0x7f000001, 127.1) goes through the same check."""

    def __init__(self, resolver: Resolver, check: AddressCheck) -> None:
        self._resolver = resolver
        self._check = check
        self._inner: AsyncNetworkBackend = AsyncioBackend()

    async def _resolve(self, host: str, port: int, limit: float | None) -> list[str]:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host]
        try:
            async with asyncio.timeout(limit):
                addresses = await self._resolver(host, port)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from e
        except OSError as e:
            detail = e.strerror or str(e)
            raise httpcore.ConnectError(f"could not resolve host {host}: {detail}") from e
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve host {host}: no addresses")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        # Check them all before touching any: a name answering with one public and one private
        # address is an attack, not a fallback.
        for ip in addresses:
            try:
                self._check(ip)
            except BlockedAddressError as e:
                where = "" if ip == host else f"{host} resolves to {ip}: "
                raise BlockedAddressError(f"refused to connect: {where}{e}") from e
        last: Exception | None = None
        for ip in addresses[:_MAX_ADDRESSES_TRIED]:
            try:
                return await self._inner.connect_tcp(
                    ip,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectTimeout as e:
                last = e
            except httpcore.ConnectError as e:
                last = httpcore.ConnectError(
                    f"connection refused by {ip} port {port}"
                    if _refused(e)
                    else f"could not connect to {ip} port {port}: {e}"
                )
                last.__cause__ = e
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are never used")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --- body decoding ----------------------------------------------------------------------------


class BodyTooLargeError(Exception):
    pass


class BodyDecoder:
    """Decodes a Content-Encoding incrementally and never produces more than `cap` bytes.

    httpx's own decoders have no output limit, so a 50 KB gzip of zeros would expand to 50 MB
    in memory before any cap could look at it; `max_length` stops zlib at the cap instead."""

    def __init__(self, encoding: str, cap: int, *, truncate: bool = False) -> None:
        self._encoding = encoding
        self._cap = cap
        self._truncate = truncate
        self._out = bytearray()
        self._raw_seen = 0
        self._done = False
        # RFC 9110 says deflate means zlib-wrapped, but many servers send raw deflate: start
        # with zlib and, if the header is rejected before any output, replay as raw.
        self._zlib_first = encoding == "deflate"
        self._head = bytearray()
        self._decomp = self._new_decompressor()

    def _new_decompressor(self) -> zlib._Decompress | None:
        if self._encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._encoding == "deflate":
            return zlib.decompressobj(zlib.MAX_WBITS if self._zlib_first else -zlib.MAX_WBITS)
        return None

    @property
    def done(self) -> bool:
        """True once the cap was reached in truncate mode; further input is ignored."""
        return self._done

    def feed(self, data: bytes) -> None:
        if self._done or not data:
            return
        self._raw_seen += len(data)
        # Compressed input that inflates to almost nothing (empty deflate blocks) would
        # otherwise be read for ever; no honest body is twice its decoded size.
        if self._raw_seen > 2 * self._cap + _CHUNK:
            self._overflow(f"compressed body exceeds {2 * self._cap + _CHUNK} bytes")
            return
        if self._decomp is None:
            self._emit(data)
            return
        if not self._zlib_first:
            self._inflate(data)
            return
        self._head += data
        try:
            self._inflate(data)
        except zlib.error:
            if self._out:
                raise
            self._zlib_first = False
            self._decomp = self._new_decompressor()
            self._inflate(bytes(self._head))
        if self._out or len(self._head) > _CHUNK:
            self._zlib_first = False
            self._head = bytearray()

    def _inflate(self, data: bytes) -> None:
        assert self._decomp is not None
        while data and not self._done:
            if self._decomp.eof:
                # Concatenated gzip members are one body (RFC 1952 §2.2); other trailing bytes
                # after the end of the stream are ignored, as browsers do.
                if self._encoding != "gzip" or not b"\x1f\x8b".startswith(data[:2]):
                    return
                self._decomp = self._new_decompressor()
                assert self._decomp is not None
            # At most one chunk per call: asking zlib for everything up to the cap at once
            # would hold a cap-sized bytes object beside the cap-sized buffer (and a slice of
            # it), three times the cap in memory for every bomb being read.
            room = self._cap - len(self._out) + 1
            self._emit(self._decomp.decompress(data, min(room, _CHUNK)))
            data = self._decomp.unused_data if self._decomp.eof else self._decomp.unconsumed_tail

    def _emit(self, out: bytes) -> None:
        room = self._cap - len(self._out)
        if len(out) > room:
            self._out += out[:room]
            self._overflow()
            return
        self._out += out

    def _overflow(self, message: str | None = None) -> None:
        if not self._truncate:
            raise BodyTooLargeError(message or f"body exceeds {self._cap} bytes")
        self._done = True

    def finish(self) -> bytes:
        """The decoded body. A compressed stream cut short yields what was decoded, as
        browsers and httpx do; framing errors are the HTTP layer's to report."""
        if self._decomp is not None and not self._done and not self._decomp.eof:
            # _inflate leaves no unconsumed input, so flush only drains zlib's window.
            self._emit(self._decomp.flush())
        return bytes(self._out)


def content_coding(header: str | None) -> str:
    """The single content coding of a response: "identity", "gzip" or "deflate".

    We only ever send `Accept-Encoding: gzip`, so anything else (br, zstd, or stacked codings
    like "gzip, gzip", which would need one bounded inflater per layer) is refused."""
    codings = [c.strip().lower() for c in (header or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return "identity"
    if len(codings) > 1:
        raise ValueError(f"stacked content encodings are not supported: {header}")
    coding = {"x-gzip": "gzip"}.get(codings[0], codings[0])
    if coding not in ("gzip", "deflate"):
        raise ValueError(f"unsupported content encoding: {codings[0]}")
    return coding


# --- concurrency and politeness ---------------------------------------------------------------

Clock = Callable[[], float]
"""Monotonic seconds; `time.monotonic` outside tests."""

Sleep = Callable[[float], Awaitable[None]]
"""Waits the given number of seconds; `asyncio.sleep` outside tests."""

_SWEEP_MIN: Final = 1024
"""Idle hosts still inside their delay are swept once the table reaches this size (or twice
its size after the previous sweep), which keeps sweeping amortised O(1) per new host."""


@dataclass(eq=False)
class _Host:
    turn: asyncio.Lock
    """Held by the one waiter allowed to start next: asyncio.Lock hands itself over in FIFO
    order, so waiters for a host are served in arrival order."""
    slots: asyncio.Semaphore
    """The per-host concurrency limit. Only the holder of `turn` ever waits on it."""
    users: int = 0
    """Requests waiting for or holding a slot; the entry may go only when this is 0."""
    last_start: float = -math.inf


class HostLimiter:
    """Per-host politeness, keyed by scheme://host:port: at most `per_host` requests in flight,
    and at least `delay(key)` seconds between the starts of two consecutive requests (the
    settings' host delay, raised by robots.txt Crawl-delay). With `total`, it also owns the
    limit on requests in flight across all hosts, taken last so that a host waiting out its
    delay holds no global slot, and so that the start it records is the real start.

    Waiters for one host start in FIFO order; hosts never wait for each other except for
    `total`. Entries go once idle and past their delay, so the table does not grow with every
    host ever seen. `clock` and `sleep` are injectable so tests can run on virtual time."""

    def __init__(
        self,
        per_host: int,
        *,
        total: int | None = None,
        delay: float | Callable[[str], float] = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_host = per_host
        self._total = None if total is None else asyncio.Semaphore(total)
        if callable(delay):
            self._delay = delay
        else:
            fixed = float(delay)
            self._delay = lambda key: fixed
        self._clock = clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}
        self._sweep_at = _SWEEP_MIN

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Wait for a turn to start a request to `key`; the request runs inside the block."""
        host = self._hosts.get(key)
        if host is None:
            if len(self._hosts) >= self._sweep_at:
                self._sweep()
            host = self._hosts[key] = _Host(asyncio.Lock(), asyncio.Semaphore(self.per_host))
        host.users += 1
        try:
            async with host.turn:
                await host.slots.acquire()
                try:
                    await self._wait_for_start(key, host)
                except BaseException:
                    host.slots.release()
                    raise
                host.last_start = self._clock()
            try:
                yield
            finally:
                if self._total is not None:
                    self._total.release()
                host.slots.release()
        finally:
            host.users -= 1
            if self._idle(key, host, self._clock()):
                del self._hosts[key]

    async def _wait_for_start(self, key: str, host: _Host) -> None:
        """Sleep out the host's delay, then take a global slot. The delay is read again after
        every wait: a robots.txt with a Crawl-delay may have arrived in the meantime."""
        while True:
            wait = host.last_start + self._delay(key) - self._clock()
            if wait > 0:
                await self._sleep(wait)
                continue
            if self._total is None:
                return
            await self._total.acquire()
            if host.last_start + self._delay(key) <= self._clock():
                return
            self._total.release()

    def _idle(self, key: str, host: _Host, now: float) -> bool:
        """Nobody is waiting or in flight and forgetting `last_start` would delay nobody."""
        return host.users == 0 and host.last_start + self._delay(key) <= now

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, h in self._hosts.items() if self._idle(k, h, now)]:
            del self._hosts[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._hosts))

    def __len__(self) -> int:
        return len(self._hosts)


# --- the fetcher ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Redirect:
    status: int
    location: httpx.URL


@dataclass(frozen=True, slots=True)
class _Final:
    url: httpx.URL
    response: httpx.Response
    body: bytes


@dataclass(frozen=True, slots=True)
class _RobotsEntry:
    robots: Robots
    expires: float


def _http_url(original: str, url: str | httpx.URL, *, redirect: bool = False) -> httpx.URL:
    """Parse and vet a URL we are about to request: http(s) with a host, or an error."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL as e:
        raise FetchError(original, f"invalid URL {str(url)!r}: {e}", permanent=True) from e
    if parsed.scheme not in _ALLOWED_SCHEMES:
        what = "redirect to" if redirect else "URL with"
        raise BlockedError(original, f"{what} scheme {parsed.scheme or '(none)'!r} is not allowed")
    if not parsed.host:
        raise FetchError(original, f"URL without a host: {str(parsed)!r}", permanent=True)
    return parsed


_MAX_RETRY_AFTER_CHARS: Final = 64
"""Longer than any valid Retry-After (an HTTP-date is 29 characters, delta-seconds fit in 20)."""


def _retry_after(value: str | None) -> str | None:
    """Retry-After as the server sent it, unless no valid value could be that long: an invalid
    Retry-After is ignored (RFC 9110 §10.2.3), and a run of thousands of digits would otherwise
    reach int() and its 4300-digit limit in the scheduler."""
    if value is None or len(value) > _MAX_RETRY_AFTER_CHARS:
        return None
    return value


def _origin(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{port}"


def _network_error(url: str, e: httpx.HTTPError, settings: Settings) -> FetchError:
    """One clear message per kind of network failure; the httpx exception stays as __cause__."""
    detail = str(e) or type(e).__name__
    if isinstance(e, httpx.ConnectTimeout):
        message = f"connect timed out after {settings.connect_timeout:g}s"
    elif isinstance(e, httpx.ReadTimeout):
        message = f"read timed out: no data for {settings.read_timeout:g}s"
    elif isinstance(e, httpx.TimeoutException):
        message = f"timed out: {detail}"
    elif isinstance(e, httpx.ConnectError):
        # GuardedBackend already words its errors ("connection refused by ...").
        known = detail.startswith(("connection refused", "could not"))
        if known:
            message = detail
        elif _caused_by(e, ssl.SSLError):
            message = f"TLS handshake failed: {detail}"
        else:
            message = f"connect failed: {detail}"
    elif isinstance(e, httpx.RemoteProtocolError):
        message = f"protocol error: {detail}"
    elif isinstance(e, httpx.ReadError | httpx.WriteError):
        message = f"connection lost: {detail}"
    else:
        message = f"{type(e).__name__}: {detail}"
    return FetchError(url, message)


_DRAIN_BYTES = 64 * 1024


async def _drain(response: httpx.Response) -> None:
    """Read the (small) body of a response whose body is not wanted (304, redirect, error), so
    that its connection goes back to the pool: a response closed unread closes its connection,
    and a poll that mostly gets 304s would then open a new connection for every feed. A body
    over `_DRAIN_BYTES` is left unread (its connection closed instead)."""
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > _DRAIN_BYTES:
            return


_IDLE_ORIGINS: Final = 64
"""Origins whose idle connections are kept alive, most recently used first."""
_KEEPALIVE_SECONDS: Final = 30.0


@dataclass(eq=False)
class _OriginPool:
    transport: httpx.AsyncHTTPTransport
    users: int = 0
    idle_since: float = 0.0


class OriginPools:
    """One small httpcore connection pool per origin (scheme, host, port), kept alive while
    the origin is in use and for `_KEEPALIVE_SECONDS` after, for at most `max_idle` idle
    origins (least recently used closed first).

    Why not one httpcore pool for everything: httpcore looks at every pooled connection on each
    request and each release, so its CPU per request grows with the pool. One shared pool had
    to be capped at 8 kept-alive connections, and a poll over more hosts than that opened a new
    connection (and a TLS handshake) for almost every request. Here a pool holds at most the
    per-host limit; the HostLimiter in front keeps the number of requests in flight."""

    def __init__(
        self,
        make_transport: Callable[[], httpx.AsyncHTTPTransport],
        *,
        max_idle: int = _IDLE_ORIGINS,
        keepalive: float = _KEEPALIVE_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._make_transport = make_transport
        self._max_idle = max_idle
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


def _has_idle_connection(transport: httpx.AsyncHTTPTransport) -> bool:
    """Would a request on `transport` go out on a kept-alive connection?"""
    pool = transport._pool
    return isinstance(pool, httpcore.AsyncConnectionPool) and any(
        connection.is_idle() for connection in pool.connections
    )


class Fetcher:
    """`async with Fetcher(settings) as f: result = await f.fetch(url, "feed", etag=...)`."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        address_check: AddressCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`address_check` replaces `check_address` for every resolved address. It exists so tests
        can treat one loopback address as public while the real check refuses the others;
        production code never passes it. `clock` drives the robots.txt cache expiry (and so
        how long a Crawl-delay applies); the waits between requests run on real time.
        `ssl_context` replaces the default (system settings, certifi's CA bundle), for a test
        CA or a private one."""
        self._settings = settings
        self._clock = clock
        allow = settings.allow_private_networks

        def default_check(ip: str) -> None:
            check_address(ip, allow)

        backend = GuardedBackend(resolver or system_resolver, address_check or default_check)
        ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        per_host = settings.per_host_connections

        def make_transport() -> httpx.AsyncHTTPTransport:
            # AsyncHTTPTransport does not accept a network_backend, and the SSRF guard has to
            # live in the network layer (see GuardedBackend), so the pool it built is swapped
            # for ours. It is given our TLS context: left to itself it would load a CA bundle
            # (tens of milliseconds) for every new origin.
            transport = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False)
            transport._pool = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=per_host,
                max_keepalive_connections=per_host,
                keepalive_expiry=_KEEPALIVE_SECONDS,
                network_backend=backend,
            )
            return transport

        self._pools = OriginPools(make_transport)
        # Requests go to the transports, not through an httpx.AsyncClient: redirects are
        # followed here hop by hop (each hop vetted), a crawler keeps no cookies, and there is
        # no auth; the client's per-request machinery for those cost a third of a 304's CPU.
        self._headers: list[tuple[bytes, bytes]] = [
            (b"User-Agent", USER_AGENT.encode()),
            (b"Accept-Encoding", b"gzip"),
        ]
        self._extensions = {
            "timeout": {
                "connect": settings.connect_timeout,
                "read": settings.read_timeout,
                "write": settings.read_timeout,
                "pool": settings.request_deadline,
            }
        }
        self._hosts = HostLimiter(
            settings.per_host_connections,
            total=settings.max_connections,
            delay=self._origin_delay,
        )
        self._robots: dict[str, _RobotsEntry] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pools.aclose()

    def _cap(self, kind: FetchKind) -> int:
        if kind == "feed":
            return self._settings.max_feed_bytes
        if kind == "page":
            return self._settings.max_page_bytes
        return ROBOTS_MAX_BYTES

    async def fetch(
        self,
        url: str,
        kind: FetchKind,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """GET `url`, following redirects. 2xx and 304 are results; everything else is a
        `FetchError` (`BlockedError` when refused before connecting). For kind "robots" a body
        over the cap is truncated, not refused (RFC 9309 §2.5)."""
        started = time.monotonic()
        settings = self._settings
        headers = [(b"Accept", _ACCEPT[kind].encode())]
        # Validators are echoed back as the server sent them; as str, a non-ASCII ETag would
        # raise UnicodeEncodeError inside httpx instead of reaching the server.
        if etag:
            headers.append((b"If-None-Match", etag.encode()))
        if last_modified:
            headers.append((b"If-Modified-Since", last_modified.encode()))
        target = _http_url(url, url)
        redirects: list[tuple[int, str]] = []
        # The deadline counts time on the wire, not time queued behind our own limits: a burst
        # of pages from one host must not time out while waiting for a per-host slot or delay.
        # The same wire time, summed over redirect hops, is what FETCH_SECONDS observes.
        on_wire = 0.0
        hops = 0
        try:
            while True:
                try:
                    async with self._hosts.slot(_origin(target)):
                        hops += 1
                        hop_started = time.monotonic()
                        try:
                            async with asyncio.timeout(settings.request_deadline - on_wire):
                                outcome = await self._exchange(url, target, headers, kind)
                        finally:
                            on_wire += time.monotonic() - hop_started
                except TimeoutError as e:
                    raise FetchError(url, f"timed out after {settings.request_deadline:g}s") from e
                except BlockedAddressError as e:
                    raise BlockedError(url, str(e)) from e
                except httpx.HTTPError as e:
                    raise _network_error(url, e, settings) from e
                if isinstance(outcome, _Final):
                    response = outcome.response
                    return FetchResult(
                        url=url,
                        final_url=str(outcome.url),
                        status=response.status_code,
                        headers={k.lower(): v for k, v in response.headers.items()},
                        body=outcome.body,
                        redirects=tuple(redirects),
                        elapsed_ms=round((time.monotonic() - started) * 1000),
                    )
                redirects.append((outcome.status, str(outcome.location)))
                if len(redirects) > settings.max_redirects:
                    raise FetchError(
                        url,
                        f"too many redirects (more than {settings.max_redirects})",
                        status=outcome.status,
                    )
                target = _http_url(url, outcome.location, redirect=True)
        finally:
            # Failures are observed too: a request that timed out still took its time.
            if hops:
                FETCH_SECONDS.labels(kind).observe(on_wire)

    async def _exchange(
        self, url: str, target: httpx.URL, headers: list[tuple[bytes, bytes]], kind: FetchKind
    ) -> _Redirect | _Final:
        """One request/response on the wire; the response is always closed before returning."""
        request = httpx.Request(
            "GET", target, headers=self._headers + headers, extensions=self._extensions
        )
        async with self._pools.transport(target) as transport:
            reused = _has_idle_connection(transport)
            try:
                response = await transport.handle_async_request(request)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                if not reused:
                    raise
                # The server closed a kept-alive connection as this request went out (its idle
                # timer fired meanwhile): a GET may be sent again (RFC 9110 §9.2.2), once; the
                # failed connection is gone, so it goes out on a new one.
                response = await transport.handle_async_request(request)
            try:
                return await self._outcome(url, target, response, kind)
            finally:
                await response.aclose()

    async def _outcome(
        self, url: str, target: httpx.URL, response: httpx.Response, kind: FetchKind
    ) -> _Redirect | _Final:
        """What one response means: a redirect to follow, or the final result (with its body
        read within the cap), or a FetchError."""
        status = response.status_code
        location = response.headers.get("location")
        if status in _REDIRECT_STATUSES and location:
            await _drain(response)
            try:
                return _Redirect(status, target.join(location))
            except httpx.InvalidURL as e:
                raise FetchError(
                    url, f"invalid redirect location {location!r}", permanent=True
                ) from e
        if status == 304:
            await _drain(response)
            return _Final(target, response, b"")
        if not 200 <= status < 300:
            await _drain(response)
            raise FetchError(
                url,
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                status=status,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        return _Final(target, response, await self._read_body(url, response, kind))

    async def _read_body(self, url: str, response: httpx.Response, kind: FetchKind) -> bytes:
        cap = self._cap(kind)
        truncate = kind == "robots"
        try:
            coding = content_coding(response.headers.get("content-encoding"))
        except ValueError as e:
            raise FetchError(url, str(e), permanent=True) from e
        declared = response.headers.get("content-length", "")
        if coding == "identity" and declared.isdigit() and int(declared) > cap and not truncate:
            raise FetchError(
                url, f"body exceeds {cap} bytes (Content-Length {declared})", permanent=True
            )
        decoder = BodyDecoder(coding, cap, truncate=truncate)
        try:
            async for chunk in response.aiter_raw():
                decoder.feed(chunk)
                if decoder.done:
                    break
            return decoder.finish()
        except BodyTooLargeError as e:
            raise FetchError(url, str(e), permanent=True) from e
        except zlib.error as e:
            raise FetchError(url, f"invalid {coding} body: {e}", permanent=True) from e

    # --- robots.txt ---------------------------------------------------------------------------

    async def robots_allowed(self, url: str) -> bool:
        """May we fetch this article page, according to its host's robots.txt? Cached per
        origin. A robots.txt the SSRF guard refuses raises `BlockedError`."""
        robots = await self.robots_for(url)
        return robots.allowed(url, ROBOTS_AGENT)

    async def robots_verdict(self, url: str) -> RobotsVerdict:
        """`robots_allowed`, telling a disallow the site wrote ("disallowed") from the one
        assumed while its robots.txt is unavailable ("unavailable"), which is worth a retry."""
        robots = await self.robots_for(url)
        if robots.allowed(url, ROBOTS_AGENT):
            return "allowed"
        return "unavailable" if robots.unavailable else "disallowed"

    def host_delay(self, url: str) -> float:
        """The minimum time between the starts of two requests to `url`'s host: the configured
        host delay, raised by the Crawl-delay of a cached robots.txt (capped at
        max_crawl_delay). A host whose robots.txt is not cached (yet) gets the host delay."""
        return self._origin_delay(_origin(_http_url(url, url)))

    def _origin_delay(self, key: str) -> float:
        settings = self._settings
        entry = self._robots.get(key)
        if entry is None or entry.expires <= self._clock():
            return settings.host_delay
        crawl_delay = entry.robots.crawl_delay(ROBOTS_AGENT)
        if crawl_delay is None:
            return settings.host_delay
        # Crawl-delay is non-standard and set by the site: honour it, but a site must not be
        # able to hold its pages, and the feeds waiting for them, back for an hour.
        return max(settings.host_delay, min(crawl_delay, settings.max_crawl_delay))

    async def robots_for(self, url: str) -> Robots:
        """The robots.txt rules governing `url`, from cache or fetched (RFC 9309 §2.3.1)."""
        key = _origin(_http_url(url, url))
        entry = self._robots.get(key)
        if entry is not None and entry.expires > self._clock():
            return entry.robots
        lock = self._robots_locks.setdefault(key, asyncio.Lock())
        try:
            # One fetch per origin even when a whole feed's pages ask at once.
            async with lock:
                entry = self._robots.get(key)
                if entry is None or entry.expires <= self._clock():
                    entry = await self._load_robots(robots_url(url))
                    self._store_robots(key, entry)
                return entry.robots
        finally:
            if not lock.locked():
                self._robots_locks.pop(key, None)

    async def _load_robots(self, url: str) -> _RobotsEntry:
        ttl = self._settings.robots_cache_seconds
        short_ttl = min(ROBOTS_FAILURE_SECONDS, ttl)
        try:
            result = await self.fetch(url, "robots")
        except BlockedError:
            raise
        except FetchError as e:
            status = e.status
            # 429 is a 4xx, but it says "you are too fast", not "there is no file"; treat it
            # like a server error, as Google does, rather than as permission to crawl.
            if status is not None and 300 <= status < 500 and status != 429:
                # 4xx: "unavailable", crawl freely; 3xx here means too many redirects, which
                # RFC 9309 §2.3.1.2 also lets us treat as unavailable.
                return _RobotsEntry(Robots.allow_all(), self._clock() + ttl)
            # 5xx or unreachable: assume complete disallow (§2.3.1.4), and ask again soon.
            return _RobotsEntry(Robots.unreachable(), self._clock() + short_ttl)
        return _RobotsEntry(parse_robots(result.body), self._clock() + ttl)

    def _store_robots(self, key: str, entry: _RobotsEntry) -> None:
        if len(self._robots) >= 10_000:
            now = self._clock()
            for stale in [k for k, v in self._robots.items() if v.expires <= now]:
                del self._robots[stale]
        self._robots[key] = entry
