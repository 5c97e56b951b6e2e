"""Politeness end to end on loopback: the minimum delay between request starts to one host,
robots.txt Crawl-delay raising it (for that host only, capped, until robots.txt is read
again), and waits kept out of deadlines and FETCH_SECONDS.

Most tests run the Fetcher on virtual time (`SteppingClock`): the requests are real, over
loopback, but a wait takes no time, and the server notes the virtual time at which each request
arrived, so delays are checked exactly. Two run on real time with start times taken by the
server: requests really go out spaced on the wire while another host goes at its own pace, and
waiting counts against neither the deadline nor FETCH_SECONDS (which only real time can show)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from prometheus_client import REGISTRY

from ingest.config import Settings
from ingest.errors import FetchError, HeldError
from ingest.fetch import Fetcher, client
from ingest.fetch.limits import Clock
from tests.support.httpserver import LocalServer, Request, Response, static
from tests.support.network import fake_dns
from tests.support.virtual_time import SteppingClock

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DELAY = 0.3
POLITE = Settings(allow_private_networks=True, host_delay=DELAY, max_crawl_delay=30)
TOLERANCE = 0.05
"""On real time, server-side start times can come out slightly closer than the client spaced
them."""


@pytest.fixture
def host_a(server: LocalServer) -> LocalServer:
    """A server on 127.0.0.1 with no routes and no recorded requests."""
    return server


@pytest.fixture
def host_b(second_server: LocalServer) -> LocalServer:
    """A server on 127.0.0.2 with no routes and no recorded requests."""
    return second_server


class _Stamps:
    """A route that records, on the server, when each request arrived on `clock`."""

    def __init__(self, body: bytes = b"ok", clock: Clock = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._body = body
        self._clock = clock
        self.times: list[float] = []

    def __call__(self, req: Request) -> Response:
        with self._lock:
            self.times.append(self._clock())
        return Response(200, self._body, {"Content-Type": "text/plain"})


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(times))]


def _fetch_seconds(kind: str, what: str) -> float:
    value = REGISTRY.get_sample_value(f"ingest_fetch_duration_seconds_{what}", {"kind": kind})
    return value or 0.0


# --- on virtual time ----------------------------------------------------------------------------


async def test_requests_to_one_host_start_delay_apart(host_a: LocalServer) -> None:
    """Four requests at once to one host start host_delay apart, the first at once: the
    fetcher asks for exactly three waits of host_delay. One connection per host here, so that
    each wait starts once the previous request was answered and the stamps are exact."""
    clock = SteppingClock()
    stamps = _Stamps(clock=clock)
    host_a.routes["/page"] = stamps
    settings = dataclasses.replace(POLITE, per_host_connections=1)
    async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
        await asyncio.gather(*(fetcher.fetch(host_a.url("/page"), "page") for _ in range(4)))
    assert stamps.times == pytest.approx([0.0, DELAY, 2 * DELAY, 3 * DELAY])
    assert clock.slept == pytest.approx([DELAY] * 3)


async def test_robots_txt_goes_out_without_waiting_and_spaces_the_first_page(
    host_a: LocalServer,
) -> None:
    """The feed goes out, then robots.txt at once (it tells the delay, and waiting for it would
    hold back the host's first page by a whole delay), and the page a delay after robots.txt:
    two waits of the delay for three requests would be one too many."""
    clock = SteppingClock()
    feed, robots, page = (
        _Stamps(clock=clock),
        _Stamps(b"User-agent: *\n", clock=clock),
        _Stamps(clock=clock),
    )
    host_a.routes["/feed"], host_a.routes["/robots.txt"], host_a.routes["/page"] = (
        feed,
        robots,
        page,
    )
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        await fetcher.fetch(host_a.url("/feed"), "feed")
        clock.now += 0.01  # the feed parsed, its new entries found
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        await fetcher.fetch(host_a.url("/page"), "page")
    assert feed.times == [0.0]
    assert robots.times == pytest.approx([0.01])
    assert page.times == pytest.approx([0.01 + DELAY])
    assert clock.slept == pytest.approx([DELAY])


async def test_two_origins_of_one_host_are_one_host_to_spare(host_a: LocalServer) -> None:
    """A site's pages listed under one origin and redirected to another of the same host (a
    feed's http:// links to an https:// site; here another port): every request to the host,
    whatever its origin, starts a delay after the one before, not each origin at its own pace;
    and a Crawl-delay in one origin's robots.txt spaces the host's requests under both."""
    clock = SteppingClock()
    arrivals: list[float] = []
    with LocalServer("127.0.0.1") as moved:

        def old(req: Request) -> Response:
            arrivals.append(clock())
            return Response(301, b"", {"Location": moved.url(req.path.replace("/old", "/new"))})

        def new(req: Request) -> Response:
            arrivals.append(clock())
            return Response(200, b"ok", {"Content-Type": "text/html"})

        for n in range(3):
            host_a.routes[f"/old/{n}"] = old
            moved.routes[f"/new/{n}"] = new
        moved.routes["/robots.txt"] = static("User-agent: *\nCrawl-delay: 1\n", "text/plain")
        settings = dataclasses.replace(POLITE, per_host_connections=1)
        async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
            for n in range(3):
                result = await fetcher.fetch(host_a.url(f"/old/{n}"), "page")
                assert result.final_url == moved.url(f"/new/{n}")
            assert len(arrivals) == 6
            assert min(_gaps(arrivals)) >= DELAY - 1e-9, arrivals
            assert await fetcher.robots_allowed(moved.url("/new/0")) is True
            assert fetcher.host_delay(host_a.url("/old/0")) == 1.0


async def test_a_host_name_with_a_trailing_dot_or_capitals_is_one_host(
    host_a: LocalServer,
) -> None:
    """`news.example.` (the fully qualified spelling) and `NEWS.example` name the same host as
    `news.example`: their requests start a delay apart, one after the other, and the robots.txt
    read under one spelling (fetched once) gives its Crawl-delay to all of them."""
    clock = SteppingClock()
    robots = _Stamps(b"User-agent: *\nCrawl-delay: 1\n", clock=clock)
    stamps = _Stamps(clock=clock)
    host_a.routes["/robots.txt"], host_a.routes["/page"] = robots, stamps
    port = host_a.port
    spellings = ["news.example", "news.example.", "NEWS.Example."]
    dns = fake_dns({"news.example": ["127.0.0.1"], "news.example.": ["127.0.0.1"]})
    settings = dataclasses.replace(POLITE, per_host_connections=1)
    async with Fetcher(settings, resolver=dns, clock=clock, sleep=clock.sleep) as fetcher:
        for name in spellings:
            await fetcher.fetch(f"http://{name}:{port}/page", "page")
        assert stamps.times == pytest.approx([0.0, DELAY, 2 * DELAY])
        assert await fetcher.robots_allowed(f"http://news.example.:{port}/page") is True
        for name in spellings:
            assert await fetcher.robots_allowed(f"http://{name}:{port}/page") is True
            assert fetcher.host_delay(f"http://{name}:{port}/page") == 1.0
    assert len(robots.times) == 1


async def test_only_a_host_s_first_robots_txt_skips_its_delay(host_a: LocalServer) -> None:
    """The robots.txt of two origins of one host (http:// and https://; here two ports), asked
    for at once: the first goes out without waiting, the second a delay after it, not both at
    once."""
    clock = SteppingClock()
    first = _Stamps(b"User-agent: *\n", clock=clock)
    with LocalServer("127.0.0.1") as other:
        second = _Stamps(b"User-agent: *\n", clock=clock)
        host_a.routes["/robots.txt"], other.routes["/robots.txt"] = first, second
        async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
            allowed = await asyncio.gather(
                fetcher.robots_allowed(host_a.url("/a")), fetcher.robots_allowed(other.url("/b"))
            )
    assert allowed == [True, True]
    assert len(first.times + second.times) == 2
    assert clock.slept == pytest.approx([DELAY])  # the second waited out the host's delay


async def test_a_host_answering_429_gets_no_request_before_its_retry_after(
    host_a: LocalServer, host_b: LocalServer
) -> None:
    """A page answering 429 (or 503) with Retry-After: the host's next request waits that long,
    capped at INGEST_MAX_CRAWL_DELAY as a Crawl-delay is, instead of the rest of a feed's pages
    going out a host delay apart into the same refusal (each spending one of its tries); then
    the host's pace is the usual one. Another host is not held back."""
    clock = SteppingClock()
    pages_a, pages_b = _Stamps(clock=clock), _Stamps(clock=clock)
    host_a.routes["/busy"] = Response(429, b"", {"Retry-After": "5"})
    host_b.routes["/busy"] = Response(503, b"", {"Retry-After": "20"})
    host_a.routes["/page"], host_b.routes["/page"] = pages_a, pages_b
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        for host in (host_a, host_b):
            with pytest.raises(FetchError, match=r"HTTP (429|503)"):
                await fetcher.fetch(host.url("/busy"), "page")
        await fetcher.fetch(host_a.url("/page"), "page")
        await fetcher.fetch(host_a.url("/page"), "page")
        await fetcher.fetch(host_b.url("/page"), "page")
    assert pages_a.times == pytest.approx([5.0, 5.0 + DELAY])
    assert pages_b.times == pytest.approx([20.0])


async def test_a_host_answering_429_without_retry_after_is_left_alone_for_a_while(
    host_a: LocalServer, host_b: LocalServer
) -> None:
    """A page answering 429 with no Retry-After (nginx's limit_req, a CDN's rate limit), or
    one that is not valid: "too many requests" still, so the host's next request waits
    INGEST_MAX_CRAWL_DELAY, the longest a request waits for a host, instead of the rest of the
    feed's pages going out a host delay apart into the same refusal (was: nothing held). The
    error carries no Retry-After of its own, and another host is not held back."""
    clock = SteppingClock()
    pages_a, pages_b = _Stamps(clock=clock), _Stamps(clock=clock)
    host_a.routes["/busy"] = Response(429, b"slow down")
    host_a.routes["/garbage"] = Response(429, b"slow down", {"Retry-After": "soon"})
    host_a.routes["/page"], host_b.routes["/page"] = pages_a, pages_b
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        with pytest.raises(FetchError, match=r"HTTP 429") as refused:
            await fetcher.fetch(host_a.url("/busy"), "page")
        await fetcher.fetch(host_b.url("/page"), "page")
        await fetcher.fetch(host_a.url("/page"), "page")
        with pytest.raises(FetchError, match=r"HTTP 429"):
            await fetcher.fetch(host_a.url("/garbage"), "page")
        await fetcher.fetch(host_a.url("/page"), "page")
    assert refused.value.retry_after is None
    assert pages_b.times == [0.0]
    assert pages_a.times == pytest.approx([30.0, 30.0 + DELAY + 30.0])


async def test_a_retry_after_longer_than_the_wait_cap_fails_the_host_s_requests_until_then(
    host_a: LocalServer,
) -> None:
    """A Retry-After longer than INGEST_MAX_CRAWL_DELAY (30 s here): requests to the host do
    not wait that long, and do not go out either: each fails at once, without a request, its
    Retry-After the time left, until the time left is one the cap lets it wait, as the
    database's hold of the host's feeds says (was: the host was asked again after 30 s, and
    every 30 s after, each request into the same refusal)."""
    clock = SteppingClock()
    pages = _Stamps(clock=clock)
    host_a.routes["/busy"] = Response(503, b"", {"Retry-After": "3600"})
    host_a.routes["/page"] = pages
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        with pytest.raises(FetchError, match=r"HTTP 503"):
            await fetcher.fetch(host_a.url("/busy"), "page")
        clock.now += 60
        with pytest.raises(FetchError, match=r"held") as held:
            await fetcher.fetch(host_a.url("/page"), "feed")
        clock.now = 3569.0  # 31 s left: more than the cap
        with pytest.raises(FetchError, match=r"held"):
            await fetcher.fetch(host_a.url("/page"), "page")
        clock.now = 3580.0  # 20 s left: waited out
        await fetcher.fetch(host_a.url("/page"), "page")
    assert held.value.status is None
    assert held.value.transient
    assert held.value.retry_after == "3540"
    assert pages.times == pytest.approx([3600.0])
    assert len(host_a.hits("/busy")) == 1
    assert len(host_a.requests) == 2


async def test_a_host_s_first_robots_txt_waits_for_its_retry_after(host_a: LocalServer) -> None:
    """A host's feed answers 503 with a Retry-After before its robots.txt was ever read: the
    first robots.txt, which otherwise goes out without waiting for the host's delay, waits
    for the Retry-After like any request (was: sent at once, into the outage the host had just
    asked to be spared)."""
    clock = SteppingClock()
    robots = _Stamps(b"User-agent: *\n", clock=clock)
    host_a.routes["/robots.txt"] = robots
    host_a.routes["/feed"] = Response(503, b"", {"Retry-After": "20"})
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        with pytest.raises(FetchError, match=r"HTTP 503"):
            await fetcher.fetch(host_a.url("/feed"), "feed")
        assert await fetcher.robots_verdict(host_a.url("/news/a")) == "allowed"
    assert robots.times == pytest.approx([20.0])


async def test_a_robots_txt_not_asked_for_a_retry_after_is_asked_once_it_ends(
    host_a: LocalServer,
) -> None:
    """A host's cached robots.txt expires while the host is held by a Retry-After longer than
    the wait cap: robots.txt is not asked for then, the rules last read stay in force and its
    pages wait for the Retry-After (failing unsent, a passing failure), and robots.txt is
    asked for as soon as the Retry-After ends, not 10 minutes after it was found held (was:
    the held request was taken for an unreachable robots.txt, the whole host disallowed for
    10 minutes of a 2-minute Retry-After)."""
    clock = SteppingClock()
    robots = _Stamps(b"User-agent: *\nDisallow: /private/\n", clock=clock)
    host_a.routes["/robots.txt"] = robots
    host_a.routes["/busy"] = Response(503, b"", {"Retry-After": "120"})
    settings = dataclasses.replace(POLITE, robots_cache_seconds=700)
    async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
        assert await fetcher.robots_verdict(host_a.url("/news/a")) == "allowed"
        clock.now = 690.0
        with pytest.raises(FetchError, match=r"HTTP 503"):
            await fetcher.fetch(host_a.url("/busy"), "page")
        clock.now = 750.0  # the cached robots.txt has expired, 60 s of the hold are left
        assert await fetcher.robots_verdict(host_a.url("/news/a")) == "allowed"
        assert await fetcher.robots_verdict(host_a.url("/private/a")) == "disallowed"
        with pytest.raises(FetchError, match=r"held: .* \(Retry-After\)") as held:
            await fetcher.fetch(host_a.url("/news/a"), "page")
        assert held.value.transient
        clock.now = 811.0  # the Retry-After is over
        assert await fetcher.robots_verdict(host_a.url("/news/a")) == "allowed"
        assert await fetcher.robots_verdict(host_a.url("/private/a")) == "disallowed"
    assert robots.times == pytest.approx([0.0, 811.0])


@pytest.mark.parametrize(
    ("status", "read_before"),
    [(429, False), (503, False), (429, True), (503, True)],
    ids=["429-never-read", "503-never-read", "429-read-before", "503-read-before"],
)
async def test_a_robots_txt_answering_a_retry_after_is_asked_again_once_it_ends(
    host_a: LocalServer, status: int, read_before: bool
) -> None:
    """robots.txt answering 429 or 503 with `Retry-After: 60`: the pages wait (never read: held
    by the Retry-After; read before: the rules last read stay in force), and robots.txt is asked for
    again once the 60 s are over, its new rules in force from then (was: only after the 10
    minutes of an unavailable robots.txt, the site's pages held ten times as long as it had
    asked)."""
    clock = SteppingClock(1000.0)
    robots = _Stamps(b"User-agent: *\nDisallow: /old/\n", clock=clock)
    host_a.routes["/robots.txt"] = robots
    settings = dataclasses.replace(POLITE, robots_cache_seconds=3600)
    async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
        if read_before:
            assert await fetcher.robots_verdict(host_a.url("/old/a")) == "disallowed"
            clock.now += 3601
        host_a.routes["/robots.txt"] = Response(status, b"", {"Retry-After": "60"})
        asked = clock.now
        for clock.now in (asked, asked + 59):
            if read_before:
                assert await fetcher.robots_verdict(host_a.url("/old/a")) == "disallowed"
            else:
                with pytest.raises(HeldError, match=r"held: .* \(Retry-After\)"):
                    await fetcher.robots_verdict(host_a.url("/old/a"))
        robots = _Stamps(b"User-agent: *\nDisallow: /new/\n", clock=clock)
        host_a.routes["/robots.txt"] = robots
        clock.now = asked + 61
        assert await fetcher.robots_verdict(host_a.url("/old/a")) == "allowed"
        assert await fetcher.robots_verdict(host_a.url("/new/a")) == "disallowed"
    assert robots.times == pytest.approx([asked + 61])
    assert len(host_a.hits("/robots.txt")) == (3 if read_before else 2)


@pytest.mark.parametrize("skew", [-3 * 3600, 3 * 3600], ids=["server-behind", "server-ahead"])
async def test_a_retry_after_date_counts_from_the_server_s_own_date(
    host_a: LocalServer, skew: int
) -> None:
    """A Retry-After given as an HTTP-date is the server's clock speaking: the wait is that date
    less the response's own Date, whatever our clock says of them (was: a server 3 h behind
    held nothing back, its date long past by our clock; one 3 h ahead held the host for the
    whole INGEST_MAX_CRAWL_DELAY)."""
    clock = SteppingClock()
    server_now = datetime.now(UTC) + timedelta(seconds=skew)
    host_a.routes["/busy"] = Response(
        429,
        b"",
        {
            "Date": format_datetime(server_now, usegmt=True),
            "Retry-After": format_datetime(server_now + timedelta(seconds=7), usegmt=True),
        },
    )
    pages = _Stamps(clock=clock)
    host_a.routes["/page"] = pages
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        with pytest.raises(FetchError, match=r"HTTP 429"):
            await fetcher.fetch(host_a.url("/busy"), "page")
        await fetcher.fetch(host_a.url("/page"), "page")
    assert pages.times == pytest.approx([7.0])


async def test_a_robots_txt_refresh_waits_its_turn(host_a: LocalServer) -> None:
    """Only a host's first robots.txt skips the delay: once the cached one has expired, asking
    again right after a page waits the delay like any request."""
    clock = SteppingClock()
    robots, page = _Stamps(b"User-agent: *\n", clock=clock), _Stamps(clock=clock)
    host_a.routes["/robots.txt"], host_a.routes["/page"] = robots, page
    settings = dataclasses.replace(POLITE, robots_cache_seconds=100)
    async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        await fetcher.fetch(host_a.url("/page"), "page")
        clock.now += 100  # the cached robots.txt has expired
        await fetcher.fetch(host_a.url("/page"), "page")
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
    assert robots.times[0] == 0.0
    assert page.times[0] == pytest.approx(DELAY)
    assert robots.times[1] - page.times[1] == pytest.approx(DELAY)


async def test_crawl_delay_raises_the_host_delay(host_a: LocalServer, host_b: LocalServer) -> None:
    """`Crawl-delay: 1` applies to that host only, once robots_allowed() has read it: its next
    request starts a second after robots.txt, the other host's requests host_delay apart."""
    clock = SteppingClock()
    robots = _Stamps(b"User-agent: *\nCrawl-delay: 1\n", clock=clock)
    host_a.routes["/robots.txt"] = robots
    stamps_a, stamps_b = _Stamps(clock=clock), _Stamps(clock=clock)
    host_a.routes["/page"] = stamps_a
    host_b.routes["/page"] = stamps_b
    async with Fetcher(POLITE, clock=clock, sleep=clock.sleep) as fetcher:
        assert fetcher.host_delay(host_a.url("/page")) == DELAY
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        assert fetcher.host_delay(host_a.url("/page")) == 1.0
        assert fetcher.host_delay(host_b.url("/page")) == DELAY
        await fetcher.fetch(host_a.url("/page"), "page")
        for _ in range(2):
            await fetcher.fetch(host_b.url("/page"), "page")
    assert stamps_a.times[0] - robots.times[0] == pytest.approx(1.0)
    assert _gaps(stamps_b.times) == pytest.approx([DELAY])


async def test_max_crawl_delay_caps_a_huge_crawl_delay(host_a: LocalServer) -> None:
    """`Crawl-delay: 3600` is capped at max_crawl_delay, and the next request waits that long."""
    clock = SteppingClock()
    robots = _Stamps(b"User-agent: news-ingest\nCrawl-delay: 3600\n", clock=clock)
    host_a.routes["/robots.txt"] = robots
    stamps = _Stamps(clock=clock)
    host_a.routes["/page"] = stamps
    settings = dataclasses.replace(POLITE, max_crawl_delay=0.7)
    async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        assert fetcher.host_delay(host_a.url("/page")) == 0.7
        await fetcher.fetch(host_a.url("/page"), "page")
    assert stamps.times[0] - robots.times[0] == pytest.approx(0.7)
    assert clock.slept == pytest.approx([0.7])


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
        ("User-agent: *\nRequest-rate: 1/5s\n", 5.0),
        ("User-agent: news-ingest\nCrawl-delay: 2\nRequest-rate: 1/4\n", 4.0),
        ("User-agent: *\nRequest-rate: 1/1h\n", 30.0),
        ("User-agent: *\nRequest-rate: 100/1s\n", DELAY),
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
        "request-rate",
        "request-rate-beside-crawl-delay",
        "request-rate-capped",
        "request-rate-faster-than-host-delay",
        "404",
    ],
)
async def test_host_delay_from_robots(
    host_a: LocalServer, robots: str | None, expected: float
) -> None:
    """Our group's Crawl-delay, else `*`'s, or the interval its Request-rate gives if longer;
    never below host_delay; rounded up; capped."""
    if robots is not None:
        host_a.routes["/robots.txt"] = static(robots, "text/plain")
    async with Fetcher(POLITE) as fetcher:
        await fetcher.robots_allowed(host_a.url("/page"))
        assert fetcher.host_delay(host_a.url("/page")) == expected


@pytest.mark.parametrize(
    ("refreshed", "expected"),
    [
        (static("User-agent: *\nCrawl-delay: 2\n", "text/plain"), 2.0),
        (static("User-agent: *\nDisallow: /private/\n", "text/plain"), DELAY),
        (Response(404, b""), DELAY),
        (Response(503, b""), 5.0),
    ],
    ids=["new-crawl-delay", "none-now", "404", "503"],
)
async def test_crawl_delay_holds_until_robots_txt_is_read_again(
    host_a: LocalServer, refreshed: Response, expected: float
) -> None:
    """The Crawl-delay a host's robots.txt asked for still spaces its requests once the cached
    copy has expired: the host's feeds, which do not read robots.txt, go on a Crawl-delay apart
    until a page reads it again, and then the file read says what the delay is; a robots.txt
    that cannot be read (5xx) says nothing new (was: back to host_delay at expiry, so a host
    asking for 5 s got its feeds' polls 0.3 s apart until one of them listed a new page)."""
    host_a.routes["/robots.txt"] = static("User-agent: *\nCrawl-delay: 5\n", "text/plain")
    host_a.routes["/feed"] = static("ok", "text/plain")
    clock = SteppingClock(1000.0)
    settings = dataclasses.replace(POLITE, robots_cache_seconds=60)
    async with Fetcher(settings, clock=clock, sleep=clock.sleep) as fetcher:
        await fetcher.robots_allowed(host_a.url("/page"))
        assert fetcher.host_delay(host_a.url("/page")) == 5.0
        clock.now += 61
        assert fetcher.host_delay(host_a.url("/page")) == 5.0
        await fetcher.fetch(host_a.url("/feed"), "feed")
        await fetcher.fetch(host_a.url("/feed"), "feed")
        assert clock.slept == pytest.approx([5.0])
        host_a.routes["/robots.txt"] = refreshed
        await fetcher.robots_allowed(host_a.url("/page"))
        assert fetcher.host_delay(host_a.url("/page")) == expected
    assert len(host_a.hits("/robots.txt")) == 2


async def test_a_crawl_delay_outlives_the_robots_cache_sweep(
    host_a: LocalServer, host_b: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The robots.txt cache sweeps the expired copies once it holds ROBOTS_CACHE_ORIGINS origins
    (10,000; 2 here): a host whose copy has expired keeps its Crawl-delay through the sweep, its
    feeds polled 5 s apart, its next robots.txt not sent at once as a host's first (was: the
    delay swept with the copy, the feeds polled INGEST_HOST_DELAY apart until a page read
    robots.txt again)."""
    monkeypatch.setattr(client, "ROBOTS_CACHE_ORIGINS", 2)
    host_a.routes["/robots.txt"] = static("User-agent: *\nCrawl-delay: 5\n", "text/plain")
    host_a.routes["/feed"] = static("ok", "text/plain")
    host_b.routes["/robots.txt"] = static("User-agent: *\n", "text/plain")
    names = [f"site{n}.example" for n in range(3)]
    dns = fake_dns({name: ["127.0.0.2"] for name in names})
    clock = SteppingClock(1000.0)
    settings = dataclasses.replace(POLITE, robots_cache_seconds=60)
    async with Fetcher(settings, resolver=dns, clock=clock, sleep=clock.sleep) as fetcher:
        await fetcher.robots_allowed(host_a.url("/page"))
        clock.now += 61
        for name in names:
            await fetcher.robots_allowed(f"http://{name}:{host_b.port}/page")
        assert fetcher.host_delay(host_a.url("/page")) == 5.0
        clock.slept.clear()
        await fetcher.fetch(host_a.url("/feed"), "feed")
        await fetcher.fetch(host_a.url("/feed"), "feed")
        assert clock.slept == pytest.approx([5.0])
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        assert clock.slept == pytest.approx([5.0, 5.0])
    assert len(host_a.hits("/robots.txt")) == 2
    assert len(host_b.hits("/robots.txt")) == 3


# --- on real time -------------------------------------------------------------------------------


async def test_on_the_wire_each_host_keeps_its_own_pace(
    host_a: LocalServer, host_b: LocalServer
) -> None:
    """Real time, stamps taken by the server: host A's page goes out a whole Crawl-delay after
    its robots.txt, host B's requests host_delay apart, and B is not held back by A's queue:
    its three requests (due at 0, 0.3 and 0.6 s) are all out before A's page (due at 1 s)."""
    robots = _Stamps(b"User-agent: *\nCrawl-delay: 1\n")
    host_a.routes["/robots.txt"] = robots
    stamps_a, stamps_b = _Stamps(), _Stamps()
    host_a.routes["/page"] = stamps_a
    host_b.routes["/page"] = stamps_b
    async with Fetcher(POLITE) as fetcher:
        assert await fetcher.robots_allowed(host_a.url("/page")) is True
        await asyncio.gather(
            fetcher.fetch(host_a.url("/page"), "page"),
            *(fetcher.fetch(host_b.url("/page"), "page") for _ in range(3)),
        )
    assert stamps_a.times[0] - robots.times[0] >= 1.0 - TOLERANCE
    assert len(stamps_b.times) == 3
    assert min(_gaps(stamps_b.times)) >= DELAY - TOLERANCE
    assert max(stamps_b.times) < stamps_a.times[0]


async def test_waiting_for_the_host_counts_against_neither_deadline_nor_metric(
    host_a: LocalServer,
) -> None:
    """Time queued for a host counts against neither the deadline nor FETCH_SECONDS: four
    requests, each but the first waiting longer than the deadline, all succeed, and the time
    FETCH_SECONDS observed is less than the waits alone."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    host_a.routes["/page"] = _Stamps()
    host_a.routes["/missing"] = Response(404, b"no")
    count_before = _fetch_seconds("page", "count")
    sum_before = _fetch_seconds("page", "sum")
    settings = dataclasses.replace(POLITE, request_deadline=0.25)
    async with Fetcher(settings, sleep=sleep) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(host_a.url("/page"), "page") for _ in range(4))
        )
        with pytest.raises(FetchError, match="HTTP 404"):
            await fetcher.fetch(host_a.url("/missing"), "page")
    assert [r.status for r in results] == [200] * 4
    # Failed requests are observed too.
    assert _fetch_seconds("page", "count") - count_before == 5
    # Four sleeps of host_delay, one before each request but the first; the requests queued
    # 0.3 + 0.6 + 0.9 + 0.3 s in all, more than the sleeps: counted, the queueing alone would
    # exceed them.
    assert len(waits) == 4
    assert _fetch_seconds("page", "sum") - sum_before < sum(waits)
