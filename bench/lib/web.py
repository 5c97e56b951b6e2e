"""The local site: one small asyncio HTTP/1.1 server (keep-alive, GET only, responses built in
advance where they can be) on loopback hosts 127.0.0.2, 127.0.0.3, ..., all on one port, in
one or more separate processes sharing the sockets with SO_REUSEPORT, so that serving costs the
measured processes nothing. What it serves is an `App`. Also the RSS documents and generated
news pages the benches serve."""

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
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import psutil

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"
RSS_TYPE, HTML_TYPE = "application/rss+xml; charset=UTF-8", "text/html; charset=utf-8"


def host_address(index: int) -> str:
    """127.0.0.2, 127.0.0.3, ...: any 127/8 address is loopback on Linux."""
    return f"127.0.0.{2 + index}"


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
    delay: float = 0.0
    """Seconds to wait before sending it (the connection's later replies wait too)."""


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
        self.docs: dict[bytes, tuple[bytes, bytes, bytes, bytes, float]] = {}

    def add(self, path: str, body: bytes, kind: str, etag: str = "", delay: float = 0.0,
            modified: str = "") -> None:  # fmt: skip
        headers = [("Content-Type", kind), *([("ETag", etag)] if etag else [])]
        headers += [("Last-Modified", modified)] if modified else []
        packed = gzip.compress(body, 6)
        self.docs[path.encode()] = (
            http_response(200, headers, body),
            http_response(200, [*headers, ("Content-Encoding", "gzip")], packed),
            http_response(304, headers), etag.encode(), delay,
        )  # fmt: skip

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        if path not in self.docs:
            return NOT_FOUND
        plain, packed, not_modified, etag, delay = self.docs[path]
        if etag and headers.get(b"if-none-match") == etag:
            return Reply(304, not_modified, delay)
        gz = b"gzip" in headers.get(b"accept-encoding", b"")
        return Reply(200, packed if gz else plain, delay)


class _Stats:
    def __init__(self, count_urls: bool) -> None:
        self.count_urls = count_urls
        self.reset()

    def reset(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.urls: Counter[tuple[str, bytes]] = Counter()
        self.connections = 0


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, no request bodies, pipelining tolerated; replies leave in order."""

    def __init__(self, app: App, stats: _Stats) -> None:
        self.app, self.stats, self.buf, self.host = app, stats, b"", ""
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.host = transport, str(transport.get_extra_info("sockname")[0])
        self.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        buf, now = self.buf + data, asyncio.get_running_loop().time()
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            lines, buf = buf[:end].split(b"\r\n"), buf[end + 4 :]
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                reply = Reply(400, http_response(400, [("Connection", "close")]))
            else:
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(b":") for x in lines[1:])
                }
                path = parts[1].split(b"?", 1)[0]
                if self.stats.count_urls:
                    self.stats.urls[(self.host, path)] += 1
                reply = ROBOTS if path == b"/robots.txt" else self.app.respond(path, headers)
            self.stats.statuses[reply.status] += 1
            self.queue.append((now + reply.delay, reply.payload))
        if len(buf) > 64 * 1024 and self.transport is not None:
            buf = b""
            self.transport.close()
        self.buf = buf
        if self.timer is None:
            self.flush()

    def flush(self) -> None:
        self.timer = None
        if self.transport is None or self.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        while self.queue and self.queue[0][0] <= loop.time():
            self.transport.write(self.queue.popleft()[1])
        if self.queue:
            self.timer = loop.call_at(self.queue[0][0], self.flush)


async def _serve(app: App, hosts: Sequence[str], port: int, conn: Connection, urls: bool) -> None:
    loop, stats, stop = asyncio.get_running_loop(), _Stats(urls), asyncio.Event()
    servers = [
        await loop.create_server(lambda: _Connection(app, stats), h, port, reuse_port=True)
        for h in hosts
    ]

    async def apply(message: Any) -> Any:
        if message == "counts":
            by_url = {f"http://{h}:{port}{p.decode()}": n for (h, p), n in stats.urls.items()}
            return (dict(stats.statuses), stats.connections, by_url)
        return stats.reset() if message == "reset" else app.control(message)

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


def _site_process(
    factory: Callable[[Any, int], App], arg: Any, hosts: list[str], port: int, conn: Connection,
    urls: bool,
) -> None:  # fmt: skip
    try:
        asyncio.run(_serve(factory(arg, port), hosts, port, conn, urls))
    except Exception as e:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Site:
    """`procs` processes serving `factory(arg, port)` on `hosts` loopback hosts, on a port
    chosen now (so that the bench and the app can build absolute URLs). `factory` must be a
    module-level function: the processes are spawned. With `count_urls`, requests are counted
    by URL."""

    def __init__(self, factory: Callable[[Any, int], App], arg: Any, hosts: int, *, procs: int = 1,
                 count_urls: bool = False) -> None:  # fmt: skip
        self.args = (factory, arg, [host_address(h) for h in range(hosts)])
        self.hosts, self.nprocs, self.count_urls = hosts, procs, count_urls
        self.port = free_port(host_address(0))
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
                args = (*self.args, self.port, child, self.count_urls)
                proc = ctx.Process(target=_site_process, args=args, name=f"site-{i}", daemon=True)
                proc.start()
                self.procs.append(proc)
                child.close()
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

    def counts(self) -> tuple[dict[int, int], int, dict[str, int]]:
        """Responses by status, TCP connections accepted and (with `count_urls`) requests by
        URL, since the start or the last "reset"."""
        statuses, connections, urls = Counter[int](), 0, Counter[str]()
        for s, c, u in self.ask("counts"):
            statuses.update(s)
            connections += c
            urls.update(u)
        return dict(statuses), connections, dict(urls)

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
            f'<guid isPermaLink="{perma}">{escape(guid)}</guid><pubDate>'
            f"{format_datetime(it.when, usegmt=True)}</pubDate><description>{escape(it.summary)}"
            "</description></item>"
        )
    return "".join([*parts, "</channel></rss>\n"]).encode("utf-8")


WORDS = (
    "city", "council", "budget", "vote", "district", "school", "river", "bridge", "project",
    "board", "plan", "residents", "meeting", "public", "water", "energy", "price", "market",
    "report", "season", "team", "game", "players", "league", "weather", "storm", "week", "year",
    "police", "hospital", "health", "study", "university", "students", "policy", "minister",
    "election", "voters", "party", "court", "judge", "law", "company", "workers", "jobs", "shop",
    "street", "traffic", "housing", "families", "library", "festival", "music", "local",
    "officials", "announced", "said", "reported", "expected", "approved", "delayed", "opened",
    "after", "before", "because", "while", "new", "large", "early", "first", "final", "annual",
)  # fmt: skip


def words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi))).capitalize()


def _links(rng: random.Random, prefix: str, n: int) -> str:
    items = (
        f'<a href="/{prefix}/{rng.randint(1, 99999)}.html">{words(rng, 3, 7)}</a>' for _ in range(n)
    )
    return "".join(f"<li>{a}</li>" for a in items)


_STYLE = "".join(f".c{i}{{margin:{i}px;color:#{i * 99991 % 0xFFFFFF:06x}}}" for i in range(40))
_SCRIPT = "".join(
    f"window.dataLayer=window.dataLayer||[];dataLayer.push({{slot:{i}}});" for i in range(20)
)
_FORMS = (
    '<div class="ad-slot">Advertisement</div><section class="newsletter"><h3>Get the morning'
    " briefing</h3><form><input type=email><button>Sign up</button></form></section><section"
    ' id="comments"><h2>Leave a Reply</h2><form><textarea></textarea><button>Post comment'
    '</button></form></section><div class="cookie-banner">We use cookies. <button>Accept all'
    "</button></div>"
)


def article_html(seed: int, title: str, when: datetime, *, heavy: bool = False) -> bytes:
    """A news page whose text is unique to `seed`: 3-5 paragraphs inside a little navigation
    and footer, or (`heavy`) 2-30 paragraphs inside 10-30 KB of furniture: inline CSS and JS,
    menus, share bar, ad slot, newsletter and comment forms, cookie banner, link boxes."""
    rng = random.Random(seed)
    paragraphs = [
        " ".join(words(rng, 9, 20) + "." for _ in range(rng.randint(3, 6)))
        for _ in range(rng.randint(2, 30) if heavy else rng.randint(3, 5))
    ]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in [f"Story {seed} opens here.", *paragraphs])
    iso, author, t = when.isoformat(), f"Reporter {seed % 97}", escape(title)
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title}
    ld |= {"datePublished": iso, "author": {"@type": "Person", "name": author}}
    head, nav, tail, side = "", "", "", _links(rng, "news", 2)
    if heavy:
        head, nav = f"<style>{_STYLE}</style><script>{_SCRIPT}</script>", _links(rng, "menu", 25)
        tail = f"Share: Facebook X{_FORMS}<h2>Related stories</h2><ul>{_links(rng, 'news', 6)}</ul>"
        side = f"{_links(rng, 'news', 10)}</ul><h2>Popular</h2><ul>{_links(rng, 'page', 28)}"
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t} | Bench Gazette</title>
<meta property="og:title" content="{t}"><meta property="article:published_time" content="{iso}">
<script type="application/ld+json">{json.dumps(ld)}</script>{head}</head>
<body><header><a href="/">Bench Gazette</a><nav><a href="/news/">News</a>
<a href="/sports/">Sports</a> <a href="/about/">About us</a><ul>{nav}</ul></nav></header>
<main><article><h1>{t}</h1><p class="byline">By {author}</p>
<time datetime="{iso}">{when:%B %d, %Y}</time>
<div class="entry-content">{body}</div>{tail}</article>
<aside><h2>Most read</h2><ul>{side}</ul></aside></main>
<footer><p>Share this: Facebook Twitter Email</p><p>&copy; Bench Gazette.</p></footer>
</body></html>
"""
    return html.encode("utf-8")
