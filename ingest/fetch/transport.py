"""The network under httpx: an asyncio stream and backend for httpcore, and the backend that
resolves, checks (see `guard`) and connects, trying a bounded number of addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any, Final

import httpcore
from httpcore import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream

from ingest.fetch.guard import AddressCheck, BlockedAddressError, Resolver, refused
from ingest.fetch.internals import IS_READABLE

_MAX_ADDRESSES_TRIED: Final = 4
"""A name with many dead addresses must not multiply the connect timeout without bound."""


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
        if info == IS_READABLE:
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
        """The addresses to check and dial. An address written with the root's dot
        (`127.0.0.1.`, as a browser reads it) is that address, whatever a resolver makes of
        the name: refused or dialled as the address it is."""
        literal = host.removesuffix(".")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            pass
        else:
            return [literal]
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
                    if refused(e)
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
