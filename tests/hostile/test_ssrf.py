"""SSRF: with INGEST_ALLOW_PRIVATE_NETWORKS unset, no request reaches a loopback, link-local,
private, CGNAT or otherwise non-public address, whatever its spelling, whether it is the feed
URL, a redirect hop, a robots.txt or an article link inside a feed. Refused before any
connection: the tripwire (conftest) records every connection attempt outside loopback, and the
internal server on 127.0.0.2 records every request it gets."""

from __future__ import annotations

import pytest

from ingest.config import Settings
from ingest.errors import BlockedError, FetchError
from ingest.fetch import Fetcher, check_address
from ingest.workers.pool import Workers
from tests.support.httpserver import LocalServer, Response, static
from tests.support.network import Tripwire, numeric_only, public_fetcher
from tests.support.pipelines import article_page, local_settings, pipeline_for, rows, rss

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


# (URL host part, what the refusal names)
BLOCKED_HOSTS = [
    ("169.254.169.254", "link-local"),
    ("2852039166", "169.254.169.254 is a link-local"),
    ("0xa9fea9fe", "169.254.169.254 is a link-local"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254 is a link-local"),
    ("[::ffff:169.254.169.254]", "embeds 169.254.169.254"),
    ("[::ffff:a9fe:a9fe]", "embeds 169.254.169.254"),
    ("[64:ff9b::a9fe:a9fe]", "embeds 169.254.169.254"),
    ("10.0.0.1", "private"),
    ("0x0a000001", "10.0.0.1 is a private"),
    ("167772161", "10.0.0.1 is a private"),
    ("10.1", "10.0.0.1 is a private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.64.1", "100.64.0.1 is a shared"),
    ("127.0.0.2", "loopback"),
    ("0177.1", "127.0.0.1 is a loopback"),
    ("0", "0.0.0.0 is a unspecified"),
    ("[::1]", "loopback"),
    ("[::]", "unspecified"),
    ("[0:0:0:0:0:ffff:127.0.0.1]", "embeds 127.0.0.1"),
    ("[fe80::1]", "link-local"),
    ("[fe80::1%25eth0]", "link-local"),
    ("[fd00::1]", "private"),
    ("224.0.0.1", "multicast"),
]


@pytest.mark.parametrize(("host", "why"), BLOCKED_HOSTS, ids=[h for h, _ in BLOCKED_HOSTS])
async def test_blocked_destination_gets_no_connection(
    host: str, why: str, tripwire: Tripwire
) -> None:
    """Every spelling of a non-public address is BlockedError for feeds, pages and robots.txt,
    and no socket is ever opened towards it."""
    async with Fetcher(Settings(host_delay=0), resolver=numeric_only) as fetcher:
        for kind in ("feed", "page"):
            with pytest.raises(BlockedError, match="refused to connect") as info:
                await fetcher.fetch(f"http://{host}/latest/meta-data/", kind)
            assert why in str(info.value)
        with pytest.raises(BlockedError):
            await fetcher.robots_allowed(f"http://{host}/latest/meta-data/")
    assert tripwire.refused == []


LOCATIONS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://0x7f000002:{port}/admin",
    "http://127.0.0.2:{port}/admin",
    "http://[::1]:{port}/admin",
    "http://internal.test:{port}/admin",
    "//127.0.0.2:{port}/admin",
    "gopher://127.0.0.2:{port}/_GET%20/admin",
    "ftp://127.0.0.2/admin",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("location", LOCATIONS)
async def test_redirect_to_blocked_destination_is_refused(
    server: LocalServer, internal: LocalServer, location: str, tripwire: Tripwire
) -> None:
    """A public page redirecting to any blocked address or scheme, in any spelling, stops at the
    redirect: the internal server gets nothing and no other connection is attempted."""
    internal.routes["/admin"] = static("secret")
    server.routes["/start"] = Response(302, b"", {"Location": location.format(port=internal.port)})
    dns = {"news.test": ["127.0.0.1"], "internal.test": ["127.0.0.2"]}
    async with public_fetcher(Settings(host_delay=0), dns) as fetcher:
        with pytest.raises(BlockedError):
            await fetcher.fetch(f"http://news.test:{server.port}/start", "page")
    assert len(server.hits("/start")) == 1
    assert internal.requests == []
    assert tripwire.refused == []


async def test_dns_rebinding_cannot_swap_the_address_after_the_check(
    server: LocalServer, internal: LocalServer, tripwire: Tripwire
) -> None:
    """DNS rebinding: a name answers the public address once, then a private one. One lookup per
    connection, and the address checked is the address dialled, so the first fetch reaches the
    public server and the next connection is refused; 127.0.0.2 never sees a request."""
    server.routes["/feed"] = static("<rss version='2.0'><channel/></rss>", "application/rss+xml")
    internal.routes["/feed"] = static("secret")
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["127.0.0.2"]

    def check(ip: str) -> None:
        if ip != "127.0.0.1":
            check_address(ip, allow_private=False)

    # Same port on both loopback addresses is not available, so the "internal" service is
    # reached through its own port: a rebinding answer would have to dial it.
    async with Fetcher(Settings(host_delay=0), resolver=rebinding, address_check=check) as fetcher:
        first = await fetcher.fetch(f"http://rebind.test:{server.port}/feed", "feed")
        with pytest.raises(BlockedError, match=r"rebind\.test resolves to 127\.0\.0\.2"):
            await fetcher.fetch(f"http://rebind.test:{internal.port}/feed", "feed")
    assert first.status == 200
    assert lookups == ["rebind.test", "rebind.test"]
    assert len(server.hits("/feed")) == 1
    assert internal.requests == []
    assert tripwire.refused == []


async def test_feed_links_to_blocked_addresses_are_never_fetched(
    database_url: str,
    server: LocalServer,
    internal: LocalServer,
    workers: Workers,
    tripwire: Tripwire,
) -> None:
    """A public feed whose entries point at the metadata service, loopback, private ranges and a
    name resolving to a private address: those pages (and their robots.txt) are never requested,
    each entry is stored from the feed's own text with the refusal as extraction_error, and the
    feed's one public article is stored from its page. A feed whose own URL is private fails
    with the refusal recorded, and the run goes on."""
    port = internal.port
    internal.routes["/admin"] = static(article_page("Secret"))
    internal.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/good"] = static(article_page("Good"))
    blocked = [
        "http://169.254.169.254/latest/meta-data/iam/",
        f"http://127.0.0.2:{port}/admin",
        f"http://2130706434:{port}/admin",
        f"http://[::ffff:127.0.0.2]:{port}/admin",
        "http://10.0.0.1/admin",
        "http://100.64.0.1/admin",
        f"http://internal.test:{port}/admin",
    ]
    public = f"http://news.test:{server.port}"
    items = "".join(
        f"<item><title>Entry {n}</title><link>{link}</link><guid isPermaLink='false'>b{n}</guid>"
        f"<description>Feed text {n}.</description></item>"
        for n, link in enumerate([*blocked, f"{public}/good"])
    )
    server.routes["/feed"] = static(rss(items), "application/rss+xml")
    settings = local_settings(database_url, allow_private_networks=False)
    dns = {"news.test": ["127.0.0.1"], "internal.test": ["127.0.0.2"]}
    async with pipeline_for(settings, workers, public_fetcher(settings, dns)) as pipeline:
        await pipeline.store.add_feed(f"{public}/feed")
        await pipeline.store.add_feed("http://169.254.169.254/latest/feed")
        summary = await pipeline.run()
    assert (summary.ok, summary.failed, summary.new_articles) == (1, 1, len(blocked) + 1)
    stored = rows(database_url, "SELECT guid, text_source, extraction_error FROM news.articles")
    by_guid = {r["guid"]: r for r in stored}
    for n in range(len(blocked)):
        assert by_guid[f"b{n}"]["text_source"] == "feed", blocked[n]
        assert "refused to connect" in by_guid[f"b{n}"]["extraction_error"], blocked[n]
    assert by_guid[f"b{len(blocked)}"]["text_source"] == "page"
    (failed,) = rows(database_url, "SELECT last_error FROM news.feeds WHERE last_status = 'error'")
    assert "169.254.169.254 is a link-local address" in failed["last_error"]
    assert internal.requests == []
    assert tripwire.refused == []


async def test_feedburner_original_links_are_fetched_and_checked_as_links_are(
    database_url: str,
    server: LocalServer,
    internal: LocalServer,
    workers: Workers,
    tripwire: Tripwire,
) -> None:
    """A FeedBurner feed: each entry's <link> is a feedproxy redirect, its
    `feedburner:origLink` the article's own address. The article is fetched from, and stored
    under, its original address (the redirect is never requested); an original address that is
    private is refused as any link is, its entry stored from the feed's text."""
    port = internal.port
    internal.routes["/admin"] = static(article_page("Secret"))
    internal.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/robots.txt"] = static("User-agent: *\nAllow: /\n", "text/plain")
    server.routes["/2024/good"] = static(article_page("Good"))
    public = f"http://news.test:{server.port}"
    proxy = f"http://feedproxy.test:{server.port}"
    originals = [f"http://127.0.0.2:{port}/admin", f"{public}/2024/good"]
    items = "".join(
        f"<item><title>Entry {n}</title><link>{proxy}/~r/news/~3/{n}/</link>"
        f"<guid isPermaLink='false'>b{n}</guid><description>Feed text {n}.</description>"
        f"<feedburner:origLink>{original}</feedburner:origLink></item>"
        for n, original in enumerate(originals)
    )
    feedburner = "<rss version='2.0' xmlns:feedburner='http://rssnamespace.org/feedburner/ext/1.0'>"
    body = rss(items).replace(b"<rss version='2.0'>", feedburner.encode())
    server.routes["/feed"] = static(body, "application/rss+xml")
    settings = local_settings(database_url, allow_private_networks=False)
    dns = {"news.test": ["127.0.0.1"], "feedproxy.test": ["127.0.0.1"]}
    async with pipeline_for(settings, workers, public_fetcher(settings, dns)) as pipeline:
        await pipeline.store.add_feed(f"{public}/feed")
        summary = await pipeline.run()
    assert summary.new_articles == 2
    stored = rows(
        database_url,
        "SELECT guid, url, original_url, text_source, extraction_error FROM news.articles",
    )
    by_guid = {r["guid"]: r for r in stored}
    assert by_guid["b0"]["original_url"] == originals[0]
    assert by_guid["b0"]["text_source"] == "feed"
    assert "refused to connect" in by_guid["b0"]["extraction_error"]
    good = by_guid["b1"]
    assert (good["url"], good["original_url"]) == (originals[1], originals[1])
    assert good["text_source"] == "page"
    assert not [r for r in server.requests if r.path.startswith("/~r/")]
    assert internal.requests == []
    assert tripwire.refused == []


async def test_tripwire_stops_what_the_guard_lets_through(tripwire: Tripwire) -> None:
    """The harness itself: with the guard switched off (private networks allowed), a request to
    a private address reaches the socket layer, where the tripwire refuses and records it. So
    the empty `tripwire.refused` asserted above means no connection was even attempted."""
    async with Fetcher(Settings(allow_private_networks=True, host_delay=0)) as fetcher:
        with pytest.raises(FetchError, match=r"connection refused by 10\.0\.0\.1"):
            await fetcher.fetch("http://10.0.0.1/feed", "feed")
    assert tripwire.refused == [("10.0.0.1", 80)]
