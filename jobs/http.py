"""The service's HTTP endpoints on `INGEST_HTTP_PORT`: `/healthz` (process alive, scheduler
running, ticks not stuck: jobs.service.STALLED_TICKS), `/readyz` (database reachable, migrations
current, not stopping), `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.config import cannot_listen
from ingest.errors import ConfigError

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[str | None]]
"""Returns None when healthy, else the reason."""

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

REQUEST_SECONDS = 10.0
"""Time a connection has to send its request line and headers."""
MAX_WAITING = 64
"""Connections waiting for their request at once. One more closes the one that has waited
longest: connections opened and left idle (a port scanner, a slowloris client) would otherwise
each hold a file descriptor for REQUEST_SECONDS, as many as they open, and the descriptors the
service's own requests and database connections need run out; a probe, which sends its request
at once, is not the one that waited longest."""


class HealthServer:
    def __init__(self, host: str, port: int, *, healthy: Check, ready: Check) -> None:
        self.host, self.port = host, port
        self._healthy, self._ready = healthy, ready
        self._server: asyncio.Server | None = None
        self._checking: dict[str, asyncio.Future[str | None]] = {}
        """The check of each path under way: requests that come meanwhile share its answer."""
        self._waiting: dict[asyncio.StreamWriter, None] = {}
        """Connections whose request is not read yet, oldest first (`MAX_WAITING`)."""

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as e:
            raise ConfigError(cannot_listen(self.host, self.port, e.strerror or str(e))) from e
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("http_listening", host=self.host, port=self.port)

    def check_with(self, *, healthy: Check, ready: Check) -> None:
        """Answer /healthz and /readyz with these checks from now on (those of the service,
        once it runs, in place of those of its start-up)."""
        self._healthy, self._ready = healthy, ready
        self._checking.clear()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in self._waiting:  # what they would send is no longer answered
                writer.close()
            self._waiting.clear()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._waiting) >= MAX_WAITING:
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            oldest.close()
        self._waiting[writer] = None
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                request_line = (await reader.readline()).decode("latin-1").split()
                while (await reader.readline()).strip():
                    pass  # headers are not needed
            if writer not in self._waiting:  # closed to make room for a newer connection
                return
            del self._waiting[writer]
            status, ctype, body = await self._respond(request_line)
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return
        finally:
            self._waiting.pop(writer, None)
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        # A HEAD answer is GET's head alone (RFC 9110 9.3.2): a body after it would be read
        # as the start of the next response by a client reusing the connection.
        head_only = bool(request_line) and request_line[0] == "HEAD"
        writer.write(head.encode("latin-1") + (b"" if head_only else body))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _respond(self, request_line: list[str]) -> tuple[int, str, bytes]:
        if len(request_line) < 2:
            return 405, "text/plain", b"bad request\n"
        method, path = request_line[0], request_line[1].split("?")[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest()
        check = {"/healthz": self._healthy, "/readyz": self._ready}.get(path)
        if check is None:
            return 404, "text/plain", b"not found\n"
        # One check of a path at a time, whatever the requests: /readyz reads the database
        # through the service's own pool, and a request of its own each would let a flood of
        # them hold every connection the feeds need.
        running = self._checking.get(path)
        if running is None or running.done():
            running = self._checking[path] = asyncio.ensure_future(check())
        try:
            problem = await asyncio.shield(running)
        except Exception as e:
            problem = f"check failed: {type(e).__name__}"
        if problem:
            return 503, "text/plain", f"{problem}\n".encode()
        return 200, "text/plain", b"ok\n"
