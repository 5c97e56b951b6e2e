"""Politeness under hostile answers: robots.txt behind redirect chains, loops and redirects to
blocked addresses, robots.txt answering 429; feeds answering 429 with Retry-After in seconds,
as an HTTP-date and as garbage, honoured when sane and clamped when not, without disturbing the
other feeds of the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ingest.config import Settings
from ingest.errors import BlockedError, FetchError, HeldError
from ingest.fetch import Fetcher
from ingest.workers.pool import Workers
from tests.support.httpserver import LocalServer, Response, static
from tests.support.network import (
    Tripwire,
    fake_dns,
    only_first_loopback_is_public,
    public_fetcher,
)
from tests.support.pipelines import article_page, local_settings, pipeline_for, rows, rss
from tests.support.virtual_time import SteppingClock

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

RULES = "User-agent: *\nDisallow: /private/\n"


async def test_robots_behind_a_redirect_chain_is_followed(
    server: LocalServer, internal: LocalServer
) -> None:
    """robots.txt reached through four redirects, one to another host, is fetched and its rules
    applied (RFC 9309 §2.3.1.2: follow at least five)."""
    server.routes["/robots.txt"] = Response(301, b"", {"Location": "/r1"})
    server.routes["/r1"] = Response(302, b"", {"Location": internal.url("/r2")})
    internal.routes["/r2"] = Response(307, b"", {"Location": server.url("/r3")})
    server.routes["/r3"] = Response(308, b"", {"Location": "/robots-final.txt"})
    server.routes["/robots-final.txt"] = static(RULES, "text/plain")
    async with Fetcher(local_settings()) as fetcher:
        assert await fetcher.robots_verdict(server.url("/private/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
    assert len(server.hits("/robots-final.txt")) == 1


@pytest.mark.parametrize("hops", [6, 0], ids=["six-hops", "loop"])
async def test_robots_redirecting_too_far_counts_as_unavailable(
    server: LocalServer, hops: int
) -> None:
    """More than five redirects, or a loop, and robots.txt is treated as unavailable (4xx-like:
    crawling allowed), fetched once and cached, not chased for ever."""
    if hops:
        server.routes["/robots.txt"] = Response(302, b"", {"Location": "/h1"})
        for n in range(1, hops + 1):
            server.routes[f"/h{n}"] = Response(302, b"", {"Location": f"/h{n + 1}"})
        server.routes[f"/h{hops + 1}"] = static("User-agent: *\nDisallow: /\n", "text/plain")
    else:
        server.routes["/robots.txt"] = Response(302, b"", {"Location": "/robots.txt"})
    async with Fetcher(local_settings()) as fetcher:
        assert await fetcher.robots_verdict(server.url("/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url("/b")) == "allowed"
    assert len(server.requests) == 6  # one chain of 1 + max_redirects requests, then cached


async def test_robots_redirect_to_blocked_address_is_refused(
    server: LocalServer, internal: LocalServer, tripwire: Tripwire
) -> None:
    """A public site whose robots.txt redirects to an internal address: BlockedError (its pages
    are not fetched), and the internal address gets no request."""
    server.routes["/robots.txt"] = Response(
        302, b"", {"Location": f"http://127.0.0.2:{internal.port}/robots.txt"}
    )
    internal.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    dns = {"news.test": ["127.0.0.1"]}
    async with public_fetcher(Settings(host_delay=0), dns) as fetcher:
        with pytest.raises(BlockedError, match=r"127\.0\.0\.2 is a loopback address"):
            await fetcher.robots_verdict(f"http://news.test:{server.port}/story")
    assert internal.requests == []
    assert tripwire.refused == []


@pytest.mark.parametrize("target", ["internal", "ftp"])
async def test_a_robots_txt_refused_by_the_guard_is_asked_for_once(
    server: LocalServer, internal: LocalServer, target: str
) -> None:
    """A robots.txt redirected where the guard refuses to go (an internal address, an ftp://
    URL): every page of the site is refused with the guard's reason, and robots.txt is asked
    for once, the refusal cached for ten minutes like a robots.txt that cannot be read, then
    asked for again (was: asked for again before each page of the site, each time as the
    host's first request, without its delay)."""
    location = (
        f"http://127.0.0.2:{internal.port}/robots.txt"
        if target == "internal"
        else "ftp://news.test/robots.txt"
    )
    server.routes["/robots.txt"] = Response(302, b"", {"Location": location})
    clock = SteppingClock(1000.0)
    dns = {"news.test": ["127.0.0.1"]}
    settings = Settings(host_delay=0, robots_cache_seconds=3600)
    fetcher = Fetcher(
        settings,
        resolver=fake_dns(dns),
        address_check=only_first_loopback_is_public,
        clock=clock,
        sleep=clock.sleep,
    )
    reason = r"loopback address" if target == "internal" else r"scheme 'ftp'"
    async with fetcher:
        for n in range(3):
            with pytest.raises(BlockedError, match=reason):
                await fetcher.robots_verdict(f"http://news.test:{server.port}/story/{n}")
        assert len(server.hits("/robots.txt")) == 1
        clock.now += 601
        with pytest.raises(BlockedError, match=reason):
            await fetcher.robots_verdict(f"http://news.test:{server.port}/story/4")
    assert len(server.hits("/robots.txt")) == 2
    assert internal.requests == []


async def test_robots_answering_429_is_unavailable(server: LocalServer) -> None:
    """429 on robots.txt means "too fast", not "no file": pages wait, they are not crawled as if
    everything were allowed: held while its Retry-After lasts (no try at them), then
    unavailable until robots.txt is asked for again."""
    server.routes["/robots.txt"] = Response(429, b"", {"Retry-After": "60"})
    clock = SteppingClock(1000.0)
    async with Fetcher(local_settings(), clock=clock) as fetcher:
        with pytest.raises(HeldError):
            await fetcher.robots_verdict(server.url("/a"))
        server.routes["/robots.txt"] = Response(429, b"")
        clock.now += 61
        with pytest.raises(HeldError):
            await fetcher.robots_verdict(server.url("/a"))
        clock.now += local_settings().max_crawl_delay + 1
        assert await fetcher.robots_verdict(server.url("/a")) == "unavailable"


async def test_robots_answering_304_to_no_validators_is_unavailable(server: LocalServer) -> None:
    """A robots.txt answering 304 Not Modified (a cache serving a 304 it stored, to a request
    that sent no validators) says nothing of the file: never read, the pages wait
    (unavailable); read before, its rules stay in force; it is asked for again ten minutes
    later, as a 5xx is (was: read as a 4xx, "no robots.txt": the whole site allowed for an
    hour, its disallowed paths fetched)."""
    server.routes["/robots.txt"] = Response(304, b"")
    clock = SteppingClock(1000.0)
    async with Fetcher(local_settings(robots_cache_seconds=3600), clock=clock) as fetcher:
        assert await fetcher.robots_verdict(server.url("/private/a")) == "unavailable"
        server.routes["/robots.txt"] = static(RULES, "text/plain")
        clock.now += 601
        assert await fetcher.robots_verdict(server.url("/private/a")) == "disallowed"
        server.routes["/robots.txt"] = Response(304, b"")
        clock.now += 3601
        assert await fetcher.robots_verdict(server.url("/private/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
        clock.now += 601
        assert await fetcher.robots_verdict(server.url("/private/a")) == "disallowed"
    assert len(server.hits("/robots.txt")) == 4
    assert all("if-none-match" not in r.headers for r in server.hits("/robots.txt"))


async def test_robots_soft_404_html_allows(server: LocalServer) -> None:
    """A robots.txt URL answering 200 with an HTML error page has no rules: crawling allowed."""
    server.routes["/robots.txt"] = static("<html><body><h1>Not found</h1></body></html>")
    async with Fetcher(local_settings()) as fetcher:
        assert await fetcher.robots_verdict(server.url("/a")) == "allowed"


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
async def test_a_robots_txt_over_the_size_limit_loses_the_line_cut_in_two(
    server: LocalServer, ending: bytes
) -> None:
    """A robots.txt longer than the 512 KiB read (RFC 9309 §2.5: what is beyond is ignored)
    whose limit falls inside `Disallow: /private/`: the rules before the limit hold, and the
    piece of the line cut in two, `Disallow: /`, is no rule of the site's (was: read as one,
    the whole site disallowed)."""
    limit = 512 * 1024
    head = b"User-agent: *" + ending + b"Disallow: /early/" + ending
    cut = b"Disallow: /"
    padding = limit - len(head) - len(cut) - len(ending)
    body = head + b"#" * padding + ending + cut + b"private/" + ending + b"Disallow: /late/"
    server.routes["/robots.txt"] = Response(200, body, {"Content-Type": "text/plain"})
    async with Fetcher(local_settings()) as fetcher:
        assert await fetcher.robots_verdict(server.url("/early/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url("/late/a")) == "allowed"
    assert len(server.hits("/robots.txt")) == 1


@pytest.mark.parametrize(
    "separator",
    ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e"],
    ids=["line-separator", "paragraph-separator", "nel", "ff", "vt", "fs", "gs", "rs"],
)
async def test_a_robots_txt_line_ends_only_at_cr_or_lf(server: LocalServer, separator: str) -> None:
    """RFC 9309 §2.2: a line ends at CR, LF or CRLF, nothing else. A comment holding U+2028 (or
    NEL, a form feed, …) before `Disallow: /` stays a comment, and a rule holding one stays one
    rule, that character a part of its path (was: the line split there, the comment's end read
    as `Disallow: /` and the rule cut to `Disallow: /search`: the whole site disallowed)."""
    body = f"User-agent: *\n# staff only{separator}Disallow: /\nDisallow: /search{separator}x/\n"
    server.routes["/robots.txt"] = Response(200, body.encode(), {"Content-Type": "text/plain"})
    encoded = "".join(f"%{b:02X}" for b in separator.encode())
    async with Fetcher(local_settings()) as fetcher:
        assert await fetcher.robots_verdict(server.url("/news/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url("/search-tips/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url(f"/search{encoded}x/a")) == "disallowed"


async def test_a_latin_1_robots_txt_rule_matches_its_percent_encoded_path(
    server: LocalServer,
) -> None:
    """A robots.txt in Latin-1 (not the UTF-8 RFC 9309 asks for), `Disallow: /caf\\xe9/`: its
    octets are percent-encoded for the comparison (§2.2.2), so the rule matches `/caf%E9/`, the
    path a Latin-1 site serves it under (either case of hex digit), beside the UTF-8 rules of
    the same file (was: the byte read as U+FFFD, a rule that matched nothing: the site's
    disallowed pages fetched)."""
    body = "User-agent: *\nDisallow: /café/\nDisallow: /né/\n".encode("latin-1")
    body += "Disallow: /façade/\n".encode()
    server.routes["/robots.txt"] = Response(200, body, {"Content-Type": "text/plain"})
    async with Fetcher(local_settings()) as fetcher:
        assert await fetcher.robots_verdict(server.url("/caf%E9/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/caf%e9/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/n%E9/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/fa%C3%A7ade/a")) == "disallowed"
        assert await fetcher.robots_verdict(server.url("/cafe/a")) == "allowed"
        assert await fetcher.robots_verdict(server.url("/caf%EF%BF%BD/a")) == "allowed"


@pytest.mark.parametrize("rules", ["disallowed", "unavailable"])
async def test_a_page_redirected_to_another_host_obeys_that_host_s_robots_txt(
    server: LocalServer, second_server: LocalServer, rules: str
) -> None:
    """A page whose host allows it but which redirects to a path the target host's robots.txt
    disallows (a tracking link, a moved story): the target is not requested; refused like a
    disallowed page, or, while that robots.txt answers 5xx, a failure worth another try. A
    redirect to an allowed path on that host is followed."""
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/go"] = Response(302, b"", {"Location": second_server.url("/private/a")})
    server.routes["/go-ok"] = Response(302, b"", {"Location": second_server.url("/news/a")})
    second_server.routes["/robots.txt"] = (
        static(RULES, "text/plain") if rules == "disallowed" else Response(503, b"")
    )
    second_server.routes["/private/a"] = static(article_page("Private"))
    second_server.routes["/news/a"] = static(article_page("News"))
    async with Fetcher(local_settings()) as fetcher:
        with pytest.raises(FetchError, match=r"robots\.txt") as refused:
            await fetcher.fetch(server.url("/go"), "page")
        assert refused.value.transient is (rules == "unavailable")
        assert isinstance(refused.value, BlockedError) is (rules == "disallowed")
        if rules == "disallowed":
            ok = await fetcher.fetch(server.url("/go-ok"), "page")
            assert ok.final_url == second_server.url("/news/a")
    assert second_server.hits("/private/a") == []


# --- 429 and Retry-After -------------------------------------------------------------------------

MIN = 60.0  # INGEST_MIN_INTERVAL for these tests: the first failure waits 60 s
MAX = 86_400.0
RETRY_MAX = 3_600.0  # INGEST_MAX_RETRY_AFTER, its default


def retry_after_cases(now: datetime) -> dict[str, tuple[str, float, float]]:
    """path -> (Retry-After, lowest and highest accepted delay in seconds)."""
    in_forty_minutes = format_datetime(now + timedelta(minutes=40), usegmt=True)
    return {
        "/seconds": ("3600", 3600, 3600),
        "/spaces": ("  120  ", 120, 120),
        "/date": (in_forty_minutes, 2380, 2401),
        "/past-date": (format_datetime(now - timedelta(days=1), usegmt=True), MIN, MIN),
        "/garbage": ("soon, maybe", MIN, MIN),
        "/negative": ("-5", MIN, MIN),
        "/fraction": ("1.5", MIN, MIN),
        "/huge": ("9" * 20, RETRY_MAX, RETRY_MAX),
        "/year-9999": ("Fri, 31 Dec 9999 23:59:59 GMT", RETRY_MAX, RETRY_MAX),
        "/5000-digits": ("9" * 5000, MIN, MIN),
    }


async def test_429_retry_after_is_honoured_clamped_or_ignored(
    database_url: str, server: LocalServer, second_server: LocalServer, workers: Workers
) -> None:
    """Feeds answering 429: a sane Retry-After (seconds, HTTP-date) sets the next poll, a huge
    one is capped at INGEST_MAX_RETRY_AFTER, garbage and past dates leave the usual backoff; each
    feed records the 429, and the good feed of another host in the same run as the first is
    ingested. One run per case, the delay read at once, each by a process of its own: one host
    answers them all, and a Retry-After holds the host's other feeds and requests too
    (`tests/schedule/test_scheduling.py`, `tests/fetch/test_politeness.py`), which is not what
    this is about."""
    now = datetime.now(UTC)
    cases = retry_after_cases(now)
    for path, (value, _, _) in cases.items():
        server.routes[path] = Response(429, b"slow down", {"Retry-After": value})
    second_server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    second_server.routes["/page"] = static(article_page("Fine"))
    second_server.routes["/good"] = static(
        rss(f"<item><link>{second_server.url('/page')}</link><title>Fine</title></item>"),
        "application/rss+xml",
    )
    settings = local_settings(database_url, min_interval=MIN, max_interval=MAX)
    for n, (path, (value, low, high)) in enumerate(cases.items()):
        # The process before held the host until its Retry-After was over (sql/0045): that
        # time has passed for this one.
        rows(database_url, "DELETE FROM ingest.host_holds RETURNING host")
        async with pipeline_for(settings, workers) as pipeline:
            if n == 0:
                await pipeline.store.add_feed(second_server.url("/good"))
            await pipeline.store.add_feed(server.url(path))
            summary = await pipeline.run()
            assert (summary.ok, summary.failed) == ((1, 1) if n == 0 else (0, 1)), path
            if n == 0:
                assert summary.new_articles == 1
            (row,) = rows(
                database_url,
                # From the database's clock, which the delay counts from (sql/queries.sql).
                "SELECT last_status, last_error, next_fetch_at - polled_at AS delay"
                " FROM ingest.feeds WHERE url = %s",
                [server.url(path)],
            )
            assert row["last_status"] == "error"
            assert "HTTP 429" in row["last_error"]
            delay = row["delay"].total_seconds()
            assert low <= delay <= high, (path, value[:40], delay)
    (good,) = rows(
        database_url,
        "SELECT last_status FROM ingest.feeds WHERE url = %s",
        [second_server.url("/good")],
    )
    assert good["last_status"] == "ok"


async def test_a_retry_after_date_counts_from_the_feed_server_s_own_date(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """Feeds answering 429 from servers whose clocks are 3 h behind and 3 h ahead of ours, each
    with a Retry-After 20 minutes after its own Date: both are polled again 20 minutes later
    (was: the one behind at once, its date past by our clock; the one ahead 3 h 20 min later)."""
    for path, skew in (("/behind", -3), ("/ahead", 3)):
        server_now = datetime.now(UTC) + timedelta(hours=skew)
        server.routes[path] = Response(
            429,
            b"slow down",
            {
                "Date": format_datetime(server_now, usegmt=True),
                "Retry-After": format_datetime(server_now + timedelta(minutes=20), usegmt=True),
            },
        )
    settings = local_settings(database_url, min_interval=MIN, max_interval=MAX, max_crawl_delay=0)
    async with pipeline_for(settings, workers) as pipeline:
        for path in ("/behind", "/ahead"):
            await pipeline.store.add_feed(server.url(path))
        summary = await pipeline.run()
    assert summary.failed == 2
    delays = {
        r["url"]: r["delay"].total_seconds()
        for r in rows(
            database_url, "SELECT url, next_fetch_at - polled_at AS delay FROM ingest.feeds"
        )
    }
    for path in ("/behind", "/ahead"):
        assert 1195 <= delays[server.url(path)] <= 1201, (path, delays)
        assert len(server.hits(path)) == 1


async def test_huge_retry_after_on_a_200_does_not_fail_the_feed(
    database_url: str, server: LocalServer, workers: Workers
) -> None:
    """A 200 response carrying a 5000-digit Retry-After is a normal success: the header is
    ignored like any invalid one."""
    server.routes["/feed"] = Response(
        200,
        rss("<item><guid isPermaLink='false'>a</guid></item>"),
        {"Content-Type": "application/rss+xml", "Retry-After": "9" * 5000},
    )
    async with pipeline_for(local_settings(database_url), workers) as pipeline:
        await pipeline.store.add_feed(server.url("/feed"))
        summary = await pipeline.run()
    assert summary.ok == 1, summary.outcomes
