"""The local site: one small asyncio HTTP/1.1 server (keep-alive, GET only, responses built
in advance where they can be) on loopback hosts 127.0.0.2, 127.0.0.3, ..., all on one port,
in one or more separate processes sharing the sockets with SO_REUSEPORT, so that serving costs
the measured processes nothing. What it serves is an `App`; `StaticApp` serves documents by
path. Also the RSS documents and generated news pages the benches serve."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gzip
import json
import multiprocessing
import os
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, Protocol
from xml.sax.saxutils import escape

import psutil

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"
_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found"}


def host_address(index: int) -> str:
    """127.0.0.2, 127.0.0.3, ...: any 127/8 address is loopback on Linux."""
    return f"127.0.0.{2 + index}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now at `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def site_url(host: int, port: int, path: str) -> str:
    return f"http://{host_address(host)}:{port}{path}"


def http_response(status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    """One complete HTTP/1.1 response (a 304 carries no body and no Content-Length)."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        *(f"{k}: {v}" for k, v in headers),
    ]
    if status != 304:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if status == 304 else body)


NOT_FOUND = http_response(404, [("Content-Type", "text/plain")], b"not found\n")


class Reply(NamedTuple):
    status: int
    payload: bytes
    delay: float = 0.0
    """Seconds to wait before sending it (the connection's later replies wait too)."""


ROBOTS_REPLY = Reply(200, http_response(200, [("Content-Type", "text/plain")], ROBOTS_TXT))


class App(Protocol):
    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        """The reply to a GET of `path` (no query), header names in lower case."""
        ...

    def control(self, message: Any) -> Any:
        """The answer to a message from the bench."""
        ...


class _Counts:
    def __init__(self, count_urls: bool) -> None:
        self.count_urls = count_urls
        self.reset()

    def reset(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.urls: Counter[tuple[str, bytes]] | None = Counter() if self.count_urls else None
        self.connections = 0


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, no request bodies, pipelining tolerated; replies leave in order."""

    def __init__(self, app: App, counts: _Counts) -> None:
        self._app, self._counts = app, counts
        self._buf = b""
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._host = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._host = str(transport.get_extra_info("sockname")[0])
        self._counts.connections += 1

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        now = asyncio.get_running_loop().time()
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            reply = self._handle(buf[:end])
            self._queue.append((now + reply.delay, reply.payload))
            buf = buf[end + 4 :]
        if len(buf) > 64 * 1024:
            buf = b""
            assert self._transport is not None
            self._transport.close()
        self._buf = buf
        self._flush()

    def _handle(self, head: bytes) -> Reply:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            reply = Reply(400, http_response(400, [("Connection", "close")]))
        else:
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            path = parts[1].split(b"?", 1)[0]
            if self._counts.urls is not None:
                self._counts.urls[(self._host, path)] += 1
            reply = ROBOTS_REPLY if path == b"/robots.txt" else self._app.respond(path, headers)
        self._counts.statuses[reply.status] += 1
        return reply

    def _flush(self) -> None:
        if self._timer is not None or self._transport is None or self._transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        while self._queue and self._queue[0][0] <= loop.time():
            self._transport.write(self._queue.popleft()[1])
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._flush()


async def _serve(app: App, hosts: Sequence[str], port: int, conn: Connection, urls: bool) -> None:
    loop = asyncio.get_running_loop()
    counts = _Counts(urls)
    servers = [
        await loop.create_server(
            lambda: _Connection(app, counts), host, port, reuse_port=True, backlog=2048
        )
        for host in hosts
    ]
    stop = asyncio.Event()

    async def apply(message: Any) -> Any:
        if message == "counts":
            by_url = {
                f"http://{h}:{port}{p.decode()}": n for (h, p), n in (counts.urls or {}).items()
            }
            return {
                "statuses": dict(counts.statuses),
                "connections": counts.connections,
                "urls": by_url,
            }
        if message == "reset":
            counts.reset()
            return True
        return app.control(message)

    def control() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = "stop"
            if message == "stop":
                loop.call_soon_threadsafe(stop.set)
                return
            try:
                reply = asyncio.run_coroutine_threadsafe(apply(message), loop).result(60)
            except Exception as e:
                reply = ("error", repr(e))
            with contextlib.suppress(OSError):
                conn.send(reply)

    conn.send(("ready", os.getpid()))
    threading.Thread(target=control, name="site-control", daemon=True).start()
    await stop.wait()
    for server in servers:
        server.close()


def _site_process(
    factory: Callable[[Any, int], App], arg: Any, hosts: list[str], port: int, conn: Connection,
    urls: bool,
) -> None:  # fmt: skip
    try:
        app = factory(arg, port)
        asyncio.run(_serve(app, hosts, port, conn, urls))
    except Exception as e:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Site:
    """`procs` processes serving `factory(arg, port)` on `hosts` loopback hosts, all on one port
    chosen now (so that the bench and the app can build absolute URLs). `factory` must be a
    module-level function: the processes are spawned. With `count_urls`, the requests of every
    URL are counted."""

    def __init__(
        self, factory: Callable[[Any, int], App], arg: Any, hosts: int, *, procs: int = 1,
        count_urls: bool = False,
    ) -> None:  # fmt: skip
        self.factory, self.arg, self.nprocs, self.count_urls = factory, arg, procs, count_urls
        self.hosts = [host_address(h) for h in range(hosts)]
        self.port = free_port(self.hosts[0])
        self.pids: list[int] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[Connection] = []

    def url(self, host: int, path: str) -> str:
        return site_url(host % len(self.hosts), self.port, path)

    def __enter__(self) -> Site:
        ctx = multiprocessing.get_context("spawn")
        try:
            for i in range(self.nprocs):
                parent, child = ctx.Pipe()
                args = (self.factory, self.arg, self.hosts, self.port, child, self.count_urls)
                proc = ctx.Process(
                    target=_site_process, args=args, name=f"bench-site-{i}", daemon=True
                )
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            for conn in self._conns:
                if not conn.poll(300):
                    raise RuntimeError("the local site did not start within 300 s")
                try:
                    kind, detail = conn.recv()
                except EOFError:
                    raise RuntimeError("a local site process died while starting") from None
                if kind != "ready":
                    raise RuntimeError(f"the local site failed to start: {detail}")
                self.pids.append(int(detail))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self, message: Any) -> list[Any]:
        """Send `message` to every server process; their replies."""
        for conn in self._conns:
            conn.send(message)
        replies = []
        for conn in self._conns:
            if not conn.poll(120):
                raise RuntimeError("the local site did not answer within 120 s")
            replies.append(conn.recv())
        for reply in replies:
            if isinstance(reply, tuple) and reply and reply[0] == "error":
                raise RuntimeError(f"the local site failed: {reply[1]}")
        return replies

    def counts(self) -> tuple[dict[int, int], int, dict[str, int]]:
        """Responses by status, TCP connections accepted and (with `count_urls`) requests by
        URL, since the start or the last "reset"."""
        statuses: Counter[int] = Counter()
        urls: Counter[str] = Counter()
        connections = 0
        for reply in self.ask("counts"):
            statuses.update(reply["statuses"])
            urls.update(reply["urls"])
            connections += int(reply["connections"])
        return dict(statuses), connections, dict(urls)

    def cpu_seconds(self) -> float:
        """User+system CPU time of the server processes so far."""
        return sum(cpu_of(pid) or 0.0 for pid in self.pids)

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send("stop")
            conn.close()
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self._conns, self._procs = [], []


@dataclass
class _Doc:
    plain: bytes
    packed: bytes
    not_modified: bytes | None
    etag: bytes | None
    delay: float


class StaticApp:
    """Documents by path (on every host), gzip-compressed once for clients that accept it; a
    document with an ETag answers 304 to a matching If-None-Match."""

    def __init__(self) -> None:
        self.docs: dict[bytes, _Doc] = {}

    def add(
        self, path: str, body: bytes, content_type: str, *, etag: str | None = None,
        delay: float = 0.0,
    ) -> None:  # fmt: skip
        headers = [("Content-Type", content_type), *([("ETag", etag)] if etag else [])]
        self.docs[path.encode()] = _Doc(
            http_response(200, headers, body),
            http_response(200, [*headers, ("Content-Encoding", "gzip")], gzip.compress(body, 6)),
            http_response(304, headers) if etag else None,
            etag.encode() if etag else None,
            delay,
        )

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        doc = self.docs.get(path)
        if doc is None:
            return Reply(404, NOT_FOUND)
        if doc.not_modified is not None and headers.get(b"if-none-match") == doc.etag:
            return Reply(304, doc.not_modified, doc.delay)
        packed = b"gzip" in headers.get(b"accept-encoding", b"")
        return Reply(200, doc.packed if packed else doc.plain, doc.delay)

    def control(self, message: Any) -> Any:
        return ("error", f"unknown message {message!r}")


# --- documents --------------------------------------------------------------------------------

RSS_TYPE = "application/rss+xml; charset=UTF-8"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    when: datetime
    summary: str
    guid: str = ""
    """A guid that is not the link (isPermaLink="false"); the link when empty."""


def rss(title: str, base: str, items: Iterable[Item], built: datetime | None = None) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(base)}/</link>",
        f"<description>news-ingest benchmark: {escape(title)}</description>",
        f"<lastBuildDate>{format_datetime(built, usegmt=True)}</lastBuildDate>" if built else "",
    ]
    for it in items:
        guid, perma = (it.guid, "false") if it.guid else (it.link, "true")
        parts.append(
            f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>"
            f'<guid isPermaLink="{perma}">{escape(guid)}</guid>'
            f"<pubDate>{format_datetime(it.when, usegmt=True)}</pubDate>"
            f"<description>{escape(it.summary)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


# fmt: off
WORDS = (
    "city", "council", "budget", "vote", "district", "school", "river", "bridge", "project",
    "county", "board", "plan", "members", "residents", "meeting", "public", "hearing", "water",
    "energy", "price", "market", "report", "season", "team", "coach", "game", "players", "fans",
    "stadium", "league", "record", "weather", "storm", "rain", "week", "month", "year", "police",
    "fire", "station", "hospital", "health", "care", "doctors", "nurses", "patients", "study",
    "research", "university", "students", "teachers", "policy", "government", "minister",
    "election", "campaign", "voters", "poll", "party", "leader", "state", "federal", "court",
    "judge", "ruling", "case", "law", "company", "workers", "jobs", "factory", "business",
    "owners", "shop", "street", "traffic", "road", "construction", "housing", "rent", "homes",
    "families", "children", "parents", "library", "museum", "festival", "music", "artists",
    "local", "officials", "spokesperson", "announced", "said", "reported", "confirmed",
    "expected", "planned", "approved", "rejected", "delayed", "opened", "closed", "increased",
    "decreased", "during", "after", "before", "because", "although", "while", "since", "until",
    "new", "old", "large", "small", "early", "late", "first", "second", "final", "annual",
    "quarterly", "regional", "national", "international", "community", "neighborhood", "downtown",
    "morning", "evening",
)
# fmt: on


def words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi))).capitalize()


def _links(rng: random.Random, prefix: str, n: int) -> str:
    return "".join(
        f'<li><a href="/{prefix}/{rng.randint(1, 99999)}.html">{words(rng, 3, 7)}</a></li>'
        for _ in range(n)
    )


_STYLE = "".join(
    f".c{i}{{margin:{i}px;padding:{i % 7}px;color:#{(i * 2654435761) % 0xFFFFFF:06x}}}"
    for i in range(40)
)
_SCRIPT = "".join(
    f"window.dataLayer=window.dataLayer||[];dataLayer.push({{event:'slot{i}',id:{i}}});"
    for i in range(20)
)


def article_html(seed: int, title: str, when: datetime, *, heavy: bool = False) -> bytes:
    """A news page whose text is unique to `seed`: 3-5 paragraphs inside a little navigation
    and footer, or (`heavy`) 2-30 paragraphs inside 10-30 KB of furniture: cookie banner, inline
    CSS and JS, share bar, ad slot, newsletter and comment forms, related and most-read boxes."""
    rng = random.Random(seed)
    paragraphs = [
        " ".join(words(rng, 9, 20) + "." for _ in range(rng.randint(3, 6)))
        for _ in range(rng.randint(2, 30) if heavy else rng.randint(3, 5))
    ]
    paragraphs[0] = f"Story {seed} opens here. {paragraphs[0]}"
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    iso, author, t = when.isoformat(), f"Reporter {seed % 97}", escape(title)
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title}
    ld |= {"datePublished": iso, "author": {"@type": "Person", "name": author}}
    head, top, tail, side, foot = "", "", "", "", ""
    if heavy:
        head = f"<style>{_STYLE}</style><script>{_SCRIPT}</script>"
        top = (
            '<div class="cookie-banner" role="dialog"><p>We use cookies to improve your'
            " experience. <button>Accept all</button> <button>Settings</button></p></div>"
            f'<nav class="main-nav"><ul>{_links(rng, "section", 25)}</ul></nav>'
        )
        tail = (
            '<div class="share-bar">Share: <a href="#">Facebook</a> <a href="#">X</a></div>'
            '<div class="ad-slot"><span>Advertisement</span></div><section class="newsletter">'
            "<h3>Get the morning briefing</h3><form><input type=email><button>Sign up</button>"
            f'</form></section><section class="related"><h2>Related stories</h2><ul>'
            f'{_links(rng, "news", 6)}</ul></section><section id="comments"><h2>Leave a Reply'
            "</h2><form><textarea></textarea><button>Post comment</button></form></section>"
        )
        side = f"<h2>Most read</h2><ol>{_links(rng, 'news', 10)}</ol>"
        foot = f"<ul>{_links(rng, 'page', 20)}</ul>"
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t} | Bench Gazette</title>
<meta property="og:title" content="{t}"><meta property="article:published_time" content="{iso}">
<script type="application/ld+json">{json.dumps(ld)}</script>{head}</head>
<body><header><a href="/">Bench Gazette</a><nav><a href="/news/">News</a>
<a href="/sports/">Sports</a> <a href="/about/">About us</a></nav>{top}</header>
<main><article><h1>{t}</h1><p class="byline">By {author}</p>
<time datetime="{iso}">{when:%B %d, %Y}</time>
<div class="entry-content">{body}</div>{tail}</article>
<aside>{side}<h2>Popular Posts</h2><ul>{_links(rng, "news", 8 if heavy else 2)}</ul></aside></main>
<footer>{foot}<p>Share this: Facebook Twitter Email</p><p>&copy; Bench Gazette.</p></footer>
</body></html>
"""
    return html.encode("utf-8")


def cpu_of(pid: int) -> float | None:
    """User+system CPU seconds of a process so far; None when it is gone."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)
