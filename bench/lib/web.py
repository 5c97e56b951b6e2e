"""The local site: one small asyncio HTTP/1.1 server (keep-alive, GET only, responses built in
advance where they can be) on loopback hosts 127.0.0.2, 127.0.0.3, ..., all on one port, in
one or more separate processes sharing the sockets with SO_REUSEPORT, so that serving costs the
measured processes nothing. What it serves is an `App`. Also the RSS documents and generated
news pages the benches serve."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import math
import multiprocessing
import os
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import psutil

from lib.text import TextMaker

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"
RSS_TYPE, HTML_TYPE = "application/rss+xml; charset=UTF-8", "text/html; charset=utf-8"


@dataclass(frozen=True)
class Spec:
    """A news site in motion: `feeds` feeds on `hosts` loopback hosts, each listing its
    `entries` newest items, `rate` new articles per second over the whole site."""

    feeds: int
    hosts: int
    entries: int
    rate: float
    """New articles per second over the whole site."""
    t0: float
    """Epoch seconds: the site's start; item k >= 0 of a feed is published after it."""

    def published(self, f: int, k: int) -> datetime:
        """Feed f publishes every feeds / rate seconds, the feeds staggered over that period."""
        epoch = self.t0 + (f / self.feeds + k) * self.feeds / self.rate
        return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)

    def newest(self, f: int, now: float) -> int:
        return math.floor((now - self.t0) * self.rate / self.feeds - f / self.feeds)


def host_address(index: int) -> str:
    """127.0.0.2 ... 127.0.0.251, then 127.0.1.2 ... 127.0.1.251 and so on (250 per /24, none
    ending in .0, .1 or .255): any 127/8 address is loopback on Linux."""
    block, host = divmod(index, 250)
    return f"127.0.{block}.{2 + host}"


def site_url(host: int, port: int, path: str) -> str:
    return f"http://{host_address(host)}:{port}{path}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now at `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def cpu_of(pid: int) -> float | None:
    """User+system CPU seconds of a process so far; None when it is gone."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def http_response(status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    """One complete HTTP/1.1 response (a 304 carries no body and no Content-Length)."""
    reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "Bad Request")
    head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    head += [] if status == 304 else [f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (b"" if status == 304 else body)


class Reply(NamedTuple):
    status: int
    payload: bytes


NOT_FOUND = Reply(404, http_response(404, [("Content-Type", "text/plain")], b"not found\n"))
ROBOTS = Reply(200, http_response(200, [("Content-Type", "text/plain")], ROBOTS_TXT))


class App:
    """What a site serves (robots.txt aside): `respond` to a GET of a path (no query; header
    names in lower case), and answer the bench's messages (`control`)."""

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        return NOT_FOUND

    def control(self, message: Any) -> Any:
        return ("error", f"unknown message {message!r}")


class StaticApp(App):
    """Documents by path (on every host), gzip-compressed once for clients that accept it; a
    document with an ETag answers 304 to a matching If-None-Match."""

    def __init__(self) -> None:
        self.docs: dict[bytes, tuple[bytes, bytes, bytes, bytes]] = {}

    def add(self, path: str, body: bytes, kind: str, etag: str = "", modified: str = "") -> None:
        headers = [("Content-Type", kind), *([("ETag", etag)] if etag else [])]
        headers += [("Last-Modified", modified)] if modified else []
        gz = http_response(200, [*headers, ("Content-Encoding", "gzip")], gzip.compress(body, 6))
        not_modified = http_response(304, headers)
        self.docs[path.encode()] = (
            http_response(200, headers, body),
            gz,
            not_modified,
            etag.encode(),
        )

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        if path not in self.docs:
            return NOT_FOUND
        plain, packed, not_modified, etag = self.docs[path]
        if etag and headers.get(b"if-none-match") == etag:
            return Reply(304, not_modified)
        return Reply(200, packed if b"gzip" in headers.get(b"accept-encoding", b"") else plain)


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only, no request bodies, pipelining tolerated."""

    def __init__(self, app: App, stats: dict[str, Any]) -> None:
        self.app, self.stats, self.buf = app, stats, b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats["connections"] += 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buf + data
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            lines, buf = buf[:end].split(b"\r\n"), buf[end + 4 :]
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                reply = Reply(400, http_response(400, [("Connection", "close")]))
            else:
                fields = (line.partition(b":") for line in lines[1:])
                headers = {k.strip().lower(): v.strip() for k, _, v in fields}
                path = parts[1].split(b"?", 1)[0]
                reply = ROBOTS if path == b"/robots.txt" else self.app.respond(path, headers)
            self.stats["statuses"][reply.status] += 1
            self.transport.write(reply.payload)
        if len(buf) > 64 * 1024:
            buf = b""
            self.transport.close()
        self.buf = buf


async def _serve(app: App, hosts: Sequence[str], port: int, conn: Connection) -> None:
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    stats: dict[str, Any] = {"statuses": Counter(), "connections": 0}
    servers = [
        await loop.create_server(lambda: _Connection(app, stats), h, port, reuse_port=True)
        for h in hosts
    ]

    async def apply(message: Any) -> Any:
        if message == "counts":
            return (dict(stats["statuses"]), stats["connections"])
        if message == "reset":
            stats.update(statuses=Counter(), connections=0)
            return True
        return app.control(message)

    def control() -> None:
        for message in iter(lambda: (_recv(conn) or ["stop"])[0], "stop"):
            try:
                reply = asyncio.run_coroutine_threadsafe(apply(message), loop).result(60)
            except Exception as e:
                reply = ("error", repr(e))
            with contextlib.suppress(OSError):
                conn.send(reply)
        loop.call_soon_threadsafe(stop.set)

    conn.send(("ready", os.getpid()))
    threading.Thread(target=control, name="site-control", daemon=True).start()
    await stop.wait()
    for server in servers:
        server.close()


def _recv(conn: Connection) -> list[Any]:
    try:
        return [conn.recv()]
    except (EOFError, OSError):
        return []


def _site_process(factory: Callable[[Any, int], App], arg: Any, hosts: list[str], port: int,
                  conn: Connection) -> None:  # fmt: skip
    try:
        asyncio.run(_serve(factory(arg, port), hosts, port, conn))
    except Exception as e:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Site:
    """`procs` processes serving `factory(arg, port)` on `hosts` loopback hosts, on a port
    chosen now (so that the bench and the app can build absolute URLs). `factory` must be a
    module-level function: the processes are spawned."""

    def __init__(
        self, factory: Callable[[Any, int], App], arg: Any, hosts: int, procs: int = 1
    ) -> None:
        self.args = (factory, arg, [host_address(h) for h in range(hosts)])
        self.hosts, self.nprocs, self.port = hosts, procs, free_port(host_address(0))
        self.pids: list[int] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.conns: list[Connection] = []

    def url(self, host: int, path: str) -> str:
        return site_url(host % self.hosts, self.port, path)

    def __enter__(self) -> Site:
        ctx = multiprocessing.get_context("spawn")
        try:
            for i in range(self.nprocs):
                parent, child = ctx.Pipe()
                args = (*self.args, self.port, child)
                proc = ctx.Process(target=_site_process, args=args, name=f"site-{i}", daemon=True)
                proc.start()
                child.close()
                self.procs.append(proc)
                self.conns.append(parent)
            for conn in self.conns:
                reply = _recv(conn) if conn.poll(300) else []
                kind, detail = reply[0] if reply else ("error", "not started within 300 s")
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
        for conn in self.conns:
            conn.send(message)
        replies = [conn.recv() if conn.poll(120) else ("error", "no answer") for conn in self.conns]
        for reply in replies:
            if isinstance(reply, tuple) and reply and reply[0] == "error":
                raise RuntimeError(f"the local site failed: {reply[1]}")
        return replies

    def counts(self) -> tuple[dict[int, int], int]:
        """Responses by status and TCP connections accepted since the start or the last
        "reset"."""
        statuses, connections = Counter[int](), 0
        for s, c in self.ask("counts"):
            statuses.update(s)
            connections += c
        return dict(statuses), connections

    def cpu_seconds(self) -> float:
        return sum(cpu_of(pid) or 0.0 for pid in self.pids)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send("stop")
            conn.close()
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self.conns, self.procs = [], []


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    when: datetime
    summary: str
    guid: str = ""
    """A guid that is not the link (isPermaLink="false"); the link when empty."""
    content: str = ""
    """The whole article as HTML (`content:encoded`), for a full-text feed."""


def rss(title: str, base: str, items: Iterable[Item], built: datetime | None = None) -> bytes:
    items = list(items)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
        f"<title>{escape(title)}</title><link>{escape(base)}/</link>",
        f"<description>news-ingest benchmark: {escape(title)}</description>",
        f"<lastBuildDate>{format_datetime(built, usegmt=True)}</lastBuildDate>" if built else "",
    ]
    for it in items:
        guid, perma = (it.guid, "false") if it.guid else (it.link, "true")
        parts.append(
            f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>"
            f'<guid isPermaLink="{perma}">{escape(guid)}</guid><pubDate>'
            f"{format_datetime(it.when, usegmt=True)}</pubDate><description>{escape(it.summary)}"
            "</description>"
            + (f"<content:encoded>{escape(it.content)}</content:encoded>" if it.content else "")
            + "</item>"
        )
    return "".join([*parts, "</channel></rss>\n"]).encode("utf-8")


_HEAD = "".join(f".c{i}{{margin:{i}px;color:#{i * 99991 % 0xFFFFFF:06x}}}" for i in range(60))
_HEAD = f"<style>{_HEAD}</style><script>{'dataLayer.push({event: 1});' * 70}</script>"
_FORMS = (
    '<div class="ad-slot">Advertisement</div><section class="newsletter"><h3>Get the morning'
    " briefing</h3><form><input type=email><button>Sign up</button></form></section><section"
    ' id="comments"><h2>Leave a Reply</h2><form><textarea></textarea><button>Post comment'
    '</button></form></section><div class="cookie-banner">We use cookies. <button>Accept all'
    "</button></div>"
)


def _links(text: TextMaker, prefix: str, n: int) -> str:
    links = ((text.rng.randint(1, 9999), escape(text.title(4, 9))) for _ in range(n))
    return "".join(f'<li><a href="/{prefix}/{k}">{a}</a></li>' for k, a in links)


def article_html(seed: int, title: str, when: datetime) -> bytes:
    """A news page of 10-30 KB whose text (lib.text) is unique to `seed`: 2-30 paragraphs inside
    furniture: inline CSS and JS, menus, share bar, ad slot, newsletter and comment forms,
    cookie banner, link boxes."""
    text = TextMaker(random.Random(seed))
    sentences = (text.rng.randint(3, 6) for _ in range(text.rng.randint(2, 30)))
    paragraphs = [" ".join(text.title(12, 28) + "." for _ in range(n)) for n in sentences]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in [f"Story {seed} opens here.", *paragraphs])
    iso, author, t = when.isoformat(), f"Reporter {seed % 97}", escape(title)
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title}
    ld |= {"datePublished": iso, "author": {"@type": "Person", "name": author}}
    nav, related = _links(text, "menu", 25), _links(text, "news", 6)
    side = f"{_links(text, 'news', 12)}</ul><h2>Popular</h2><ul>{_links(text, 'page', 28)}"
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t} | Bench Gazette</title>
<meta property="og:title" content="{t}"><meta property="article:published_time" content="{iso}">
<script type="application/ld+json">{json.dumps(ld)}</script>{_HEAD}</head>
<body><header><a href="/">Bench Gazette</a><nav><a href="/news/">News</a>
<a href="/sports/">Sports</a> <a href="/about/">About us</a><ul>{nav}</ul></nav></header>
<main><article><h1>{t}</h1><p class="byline">By {author}</p>
<time datetime="{iso}">{when:%B %d, %Y}</time>
<div class="entry-content">{body}</div>Share: Facebook X{_FORMS}<h2>Related stories</h2>
<ul>{related}</ul></article>
<aside><h2>Most read</h2><ul>{side}</ul></aside></main>
<footer><p>Share this: Facebook Twitter Email</p><p>&copy; Bench Gazette.</p></footer>
</body></html>
"""
    return html.encode("utf-8")
