"""Real servers on loopback addresses, run in threads, for tests and benchmarks.

`LocalServer` speaks HTTP: routes map a path (with query) to a `Response` or to a callable
taking the `Request`. `static()` builds a route that honours If-None-Match / If-Modified-Since
like a real server. Every request is recorded so tests can assert what was sent (conditional
headers, User-Agent); `reset()` hands a shared server to the next test like a new one.

`RawServer` hands each TCP connection to a function, for behaviour below HTTP (silence,
dribbled headers, lying framing); `read_request()` reads one request head from it.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    peer_port: int = 0
    """The client's port: requests with the same one came over one (kept-alive) connection."""


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterator[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)


Route = Response | Callable[[Request], Response]


def static(
    body: bytes | str,
    content_type: str = "text/html; charset=utf-8",
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    gzip_body: bool = False,
) -> Callable[[Request], Response]:
    """A route serving one document with validators, answering 304 to a matching conditional GET."""
    data = body.encode("utf-8") if isinstance(body, str) else body

    def handle(req: Request) -> Response:
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        if (etag and req.headers.get("if-none-match") == etag) or (
            last_modified and req.headers.get("if-modified-since") == last_modified
        ):
            return Response(304, b"", headers)
        payload = data
        if gzip_body and "gzip" in req.headers.get("accept-encoding", ""):
            payload = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        return Response(200, payload, headers)

    return handle


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up early (size caps, deadlines) are part of what tests exercise.
        pass


class LocalServer:
    """`with LocalServer() as srv: srv.routes["/feed"] = static(...); srv.url("/feed")`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        """`tls` serves HTTPS with that server context; `idle_timeout` closes a kept-alive
        connection that brings no new request within that many seconds, without a word."""
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle plus delayed
            # ACKs add ~40 ms to every keep-alive request.
            disable_nagle_algorithm = True
            timeout = idle_timeout

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(send_body=True)

            def do_HEAD(self) -> None:
                self._serve(send_body=False)

            def _serve(self, send_body: bool) -> None:
                req = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.client_address[1],
                )
                with server._lock:
                    server.requests.append(req)
                    route = server.routes.get(self.path)
                if route is None:
                    resp = Response(404, b"not found", {"Content-Type": "text/plain"})
                elif callable(route):
                    resp = route(req)
                else:
                    resp = route
                headers = dict(resp.headers)
                # A route's own Date (a server whose clock is off) replaces the one
                # send_response would add.
                self.log_request(resp.status)
                self.send_response_only(resp.status)
                self.send_header("Server", self.version_string())
                self.send_header("Date", headers.pop("Date", None) or self.date_time_string())
                if not isinstance(resp.body, bytes):
                    headers.setdefault("Transfer-Encoding", "chunked")
                elif resp.status != 304:
                    headers.setdefault("Content-Length", str(len(resp.body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if not send_body or resp.status == 304:
                    return
                try:
                    if isinstance(resp.body, bytes):
                        self.wfile.write(resp.body)
                    else:
                        for chunk in resp.body:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = _QuietServer((host, port), Handler)
        self._httpd.daemon_threads = True
        if tls is not None:
            # The handshake runs in the handler's thread, on its first read.
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls is not None else "http"
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> LocalServer:
        """Forget every route and every recorded request: a server shared by several tests is
        handed to each one like a new one (stopping a server takes up to 50 ms)."""
        with self._lock:
            self.routes.clear()
            self.requests.clear()
        return self

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class RawServer:
    """A TCP listener on loopback whose connections are handed to `handler(conn)` in a thread:
    for behaviour below HTTP (silence, dribbled headers, lying framing). With `accept=False`
    nothing accepts: connections wait in the backlog."""

    def __init__(self, handler: Callable[[socket.socket], None], *, accept: bool = True) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0
        self._handler = handler
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True) if accept else None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self._handler(conn)

    def __enter__(self) -> RawServer:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in self._open:
            conn.close()
        self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


def read_request(conn: socket.socket) -> bytes:
    """Read one request head (up to the blank line) from a raw connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
