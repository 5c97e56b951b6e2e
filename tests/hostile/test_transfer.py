"""Hostile transfers against the real Fetcher, loopback servers and the pipeline: responses
whose unwanted body never comes, headers given twice or in bytes outside ASCII, charsets that
name no charset. Each ends in the result the response means or one clear error, the run going
on, within the deadline."""

from __future__ import annotations

import socket
import threading

import pytest

from ingest.errors import FetchError
from ingest.fetch import Fetcher
from ingest.workers.pool import Workers
from tests.support.httpserver import LocalServer, RawServer, read_request, static
from tests.support.pipelines import article_page, local_settings, pipeline_for, rows, rss

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class _Unfinished:
    """A raw server's handler: reads the request, sends `head` (status line and headers) with
    the start of a body its Content-Length promises more of, then stalls (`then="stall"`: the
    connection held open, nothing more sent, until `release`) or hangs up (`"close"`)."""

    def __init__(self, head: str, *, then: str) -> None:
        self._head = head.encode("latin-1") + b"Content-Length: 1000\r\n\r\n<html>"
        self._then = then
        self._released = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(self._head)
        if self._then == "stall":
            self._released.wait(30)
        conn.close()

    def release(self) -> None:
        self._released.set()


# --- bodies nobody reads ------------------------------------------------------------------------


@pytest.mark.parametrize("then", ["stall", "close"])
async def test_a_redirect_whose_body_never_comes_is_followed(
    server: LocalServer, then: str
) -> None:
    """A 301 whose Content-Length promises a body the server never sends (the connection held
    open, or closed midway) is followed: its body is not wanted, and its Location is what it
    says; the connection is not reused."""
    server.routes["/new"] = static(article_page("Moved"))
    handler = _Unfinished(f"HTTP/1.1 301 Moved\r\nLocation: {server.url('/new')}\r\n", then=then)
    with RawServer(handler) as raw:
        async with Fetcher(local_settings(read_timeout=20, request_deadline=30)) as fetcher:
            result = await fetcher.fetch(raw.url("/old"), "page")
        handler.release()
    assert result.final_url == server.url("/new")
    assert result.redirects == ((301, server.url("/new")),)
    assert b"Moved" in result.body


@pytest.mark.parametrize("then", ["stall", "close"])
@pytest.mark.parametrize(
    ("head", "status", "retry_after"),
    [
        ("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\n", 503, "120"),
        ("HTTP/1.1 404 Not Found\r\n", 404, None),
    ],
    ids=["503", "404"],
)
async def test_an_error_whose_body_never_comes_keeps_its_status(
    head: str, status: int, retry_after: str | None, then: str
) -> None:
    """A 503 with a Retry-After, or a 404, whose error page never comes whole is that status
    (the feed's 404s counted, the host held), not a read timeout or a protocol error that says
    nothing of what the server answered."""
    handler = _Unfinished(head, then=then)
    with RawServer(handler) as raw:
        async with Fetcher(local_settings(read_timeout=20, request_deadline=30)) as fetcher:
            with pytest.raises(FetchError) as info:
                await fetcher.fetch(raw.url("/feed"), "feed")
        handler.release()
    assert (info.value.status, info.value.retry_after) == (status, retry_after), info.value


async def test_a_feed_moved_by_a_redirect_whose_body_never_comes_is_polled_there(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A feed whose URL answers 301 with a body that never comes is polled at the Location,
    its entries stored, in one run."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/story"] = static(article_page("Story"))
    server.routes["/feed"] = static(
        rss(
            f"<item><title>Story</title><link>{server.url('/story')}</link>"
            "<description>Feed text.</description></item>"
        ),
        "application/rss+xml",
    )
    handler = _Unfinished(
        f"HTTP/1.1 301 Moved\r\nLocation: {server.url('/feed')}\r\n", then="stall"
    )
    settings = local_settings(database_url, read_timeout=20, request_deadline=30)
    with RawServer(handler) as raw:
        async with pipeline_for(settings, workers) as pipeline:
            await pipeline.store.add_feed(raw.url("/feed"))
            summary = await pipeline.run()
        handler.release()
    assert (summary.ok, summary.failed, summary.new_articles) == (1, 0, 1)
    (row,) = rows(database_url, "SELECT url, text_source FROM news.articles")
    assert row == {"url": server.url("/story"), "text_source": "page"}
