"""Politeness end to end on loopback: the minimum delay between request starts to one host,
robots.txt Crawl-delay raising it, and waits kept out of deadlines and FETCH_SECONDS.
Start times are taken by the server; tolerances are generous (these are not benchmarks)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest
from prometheus_client import REGISTRY

from ingest.config import Settings
from ingest.errors import FetchError
from ingest.fetch import Fetcher
from tests.support.httpserver import LocalServer, Request, Response, static

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DELAY = 0.3
POLITE = Settings(allow_private_networks=True, host_delay=DELAY, max_crawl_delay=30)
TOLERANCE = 0.05
"""Server-side start times can come out slightly closer than the client spaced them."""


@pytest.fixture
def host_a(server: LocalServer) -> LocalServer:
    """A server on 127.0.0.1 with no routes and no recorded requests."""
    return server


@pytest.fixture
def host_b(second_server: LocalServer) -> LocalServer:
    """A server on 127.0.0.2 with no routes and no recorded requests."""
    return second_server


class _Stamps:
    """A route that records, on the server, when each request arrived (time.monotonic)."""

    def __init__(self, body: bytes = b"ok") -> None:
        self._lock = threading.Lock()
        self._body = body
        self.times: list[float] = []

    def __call__(self, req: Request) -> Response:
        with self._lock:
            self.times.append(time.monotonic())
        return Response(200, self._body, {"Content-Type": "text/plain"})


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(times))]


def _fetch_seconds(kind: str, what: str) -> float:
    value = REGISTRY.get_sample_value(f"ingest_fetch_duration_seconds_{what}", {"kind": kind})
    return value or 0.0


async def test_requests_to_one_host_start_delay_apart(
    host_a: LocalServer, host_b: LocalServer
) -> None:
    """Each host's starts are >= host_delay apart, and neither host waits for the other."""
    stamps_a, stamps_b = _Stamps(), _Stamps()
    host_a.routes["/page"] = stamps_a
    host_b.routes["/page"] = stamps_b
    async with Fetcher(POLITE) as fetcher:
        began = time.monotonic()
        await asyncio.gather(
            *(fetcher.fetch(srv.url("/page"), "page") for _ in range(4) for srv in (host_a, host_b))
        )
    for stamps in (stamps_a, stamps_b):
        assert len(stamps.times) == 4
        assert min(_gaps(stamps.times)) >= DELAY - TOLERANCE
    # One shared queue would put the eighth start at >= 7 * DELAY = 2.1 s.
    assert min(stamps_b.times) - began < DELAY - TOLERANCE
    assert max(stamps_a.times + stamps_b.times) - began < 6 * DELAY


async def test_waiting_for_the_host_counts_against_neither_deadline_nor_metric(
    host_a: LocalServer,
) -> None:
    """Time queued for a host counts against neither the deadline nor FETCH_SECONDS."""
    host_a.routes["/page"] = _Stamps()
    host_a.routes["/missing"] = Response(404, b"no")
    count_before = _fetch_seconds("page", "count")
    sum_before = _fetch_seconds("page", "sum")
    async with Fetcher(POLITE.model_copy(update={"request_deadline": 0.25})) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(host_a.url("/page"), "page") for _ in range(4))
        )
        with pytest.raises(FetchError, match="HTTP 404"):
            await fetcher.fetch(host_a.url("/missing"), "page")
    assert [r.status for r in results] == [200] * 4
    # Failed requests are observed too.
    assert _fetch_seconds("page", "count") - count_before == 5
    # The waits alone add up to 0.3 + 0.6 + 0.9 + 0.3 s; the wire time is a few milliseconds.
    assert _fetch_seconds("page", "sum") - sum_before < 0.5


async def test_crawl_delay_raises_the_host_delay(host_a: LocalServer, host_b: LocalServer) -> None:
    """`Crawl-delay: 1` applies to that host only, once robots_allowed() has read it."""
    robots = _Stamps(b"User-agent: *\nCrawl-delay: 1\n")
    host_a.routes["/robots.txt"] = robots
    stamps_a, stamps_b = _Stamps(), _Stamps()
    host_a.routes["/page"] = stamps_a
    host_b.routes["/page"] = stamps_b
    async with Fetcher(POLITE) as fetcher:
        assert fetcher.host_delay(host_a.url("/page")) == DELAY
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        assert fetcher.host_delay(host_a.url("/page")) == 1.0
        assert fetcher.host_delay(host_b.url("/page")) == DELAY
        await asyncio.gather(
            fetcher.fetch(host_a.url("/page"), "page"),
            *(fetcher.fetch(host_b.url("/page"), "page") for _ in range(2)),
        )
    assert stamps_a.times[0] - robots.times[0] >= 1.0 - TOLERANCE
    assert _gaps(stamps_b.times)[0] < 1.0 - TOLERANCE


async def test_max_crawl_delay_caps_a_huge_crawl_delay(host_a: LocalServer) -> None:
    """`Crawl-delay: 3600` is capped at max_crawl_delay, and the next request waits that long."""
    robots = _Stamps(b"User-agent: news-ingest\nCrawl-delay: 3600\n")
    host_a.routes["/robots.txt"] = robots
    stamps = _Stamps()
    host_a.routes["/page"] = stamps
    async with Fetcher(POLITE.model_copy(update={"max_crawl_delay": 0.7})) as fetcher:
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        assert fetcher.host_delay(host_a.url("/page")) == 0.7
        await fetcher.fetch(host_a.url("/page"), "page")
    assert stamps.times[0] - robots.times[0] >= 0.7 - TOLERANCE


@pytest.mark.parametrize(
    ("robots", "expected"),
    [
        ("User-agent: news-ingest\nCrawl-delay: 2\n\nUser-agent: *\nCrawl-delay: 5\n", 2.0),
        ("User-agent: *\nCrawl-delay: 5\n", 5.0),
        ("User-agent: otherbot\nCrawl-delay: 5\n", DELAY),
        ("User-agent: news-ingest\nDisallow: /x\n\nUser-agent: *\nCrawl-delay: 5\n", DELAY),
        ("User-agent: *\nCrawl-delay: 0\n", DELAY),
        ("User-agent: *\nCrawl-delay: 1.5\n", 2.0),
        ("User-agent: *\nCrawl-delay: 3600\n", 30.0),
        (None, DELAY),
    ],
    ids=[
        "own-group",
        "catch-all",
        "other-agent",
        "own-group-without",
        "zero",
        "fraction",
        "cap",
        "404",
    ],
)
async def test_host_delay_from_robots(
    host_a: LocalServer, robots: str | None, expected: float
) -> None:
    """Our group's Crawl-delay, else `*`'s; never below host_delay; rounded up; capped."""
    if robots is not None:
        host_a.routes["/robots.txt"] = static(robots, "text/plain")
    async with Fetcher(POLITE) as fetcher:
        await fetcher.robots_allowed(host_a.url("/page"))
        assert fetcher.host_delay(host_a.url("/page")) == expected


async def test_crawl_delay_ends_with_the_cached_robots(host_a: LocalServer) -> None:
    """Once the cached robots.txt expires, the host is back to host_delay until it is re-read."""
    host_a.routes["/robots.txt"] = static("User-agent: *\nCrawl-delay: 5\n", "text/plain")
    now = [1000.0]
    settings = POLITE.model_copy(update={"robots_cache_seconds": 60})
    async with Fetcher(settings, clock=lambda: now[0]) as fetcher:
        await fetcher.robots_allowed(host_a.url("/page"))
        assert fetcher.host_delay(host_a.url("/page")) == 5.0
        now[0] += 61
        assert fetcher.host_delay(host_a.url("/page")) == DELAY
