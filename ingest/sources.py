"""Finding a site's sources over the network: the one discovery cascade that `ingest feeds add`
and `ingest backfill` share. Deciding what a document is and what it links to is left to the
pure `ingest.documents` modules; this module only fetches, through the caller's `fetch`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import structlog

from ingest.documents.discovery import (
    common_feed_urls,
    feed_links,
    looks_like_html,
    sitemaps_from_robots,
)
from ingest.documents.feeds import looks_like_feed
from ingest.documents.sitemaps import (
    Sitemap,
    looks_like_sitemap,
    on_site,
    parse_sitemap,
    sitemap_sites,
)
from ingest.errors import FetchError, ParseError
from ingest.fetch.client import with_user_info
from ingest.fetch.robots import robots_url
from ingest.normalize import canonical_url, redact_url, without_user_info
from ingest.types import FetchKind, FetchResult, SourceKind

log = structlog.get_logger(__name__)

Fetch = Callable[[str, FetchKind], Awaitable[FetchResult]]
ParseSitemap = Callable[[bytes, str, int], Awaitable[Sitemap]]
"""`parse_sitemap(body, url, max_bytes)`, awaited: in a worker process where the caller's event
loop serves other work (the service's rediscovery; a news sitemap can be megabytes), here
otherwise (`parse_here`). Raises ParseError."""


async def parse_here(body: bytes, url: str, max_bytes: int) -> Sitemap:
    """`parse_sitemap` in this process: for a command that does nothing else meanwhile."""
    return parse_sitemap(body, url, max_bytes)


MAX_FEED_LINKS: Final = 10
"""Feed links of one web page that are checked."""
MAX_NEWS_SITEMAP_PROBES: Final = 5
_AS_FEED: Final = "followed as a feed of kind 'sitemap'"


@dataclass(frozen=True, slots=True)
class FoundSource:
    """A feed (or sitemap) found for a URL, and how."""

    url: str
    kind: SourceKind
    how: str
    """How it was found, for people ("" for the URL itself answering a feed)."""
    title: str | None = None
    response: FetchResult | None = field(default=None, compare=False, repr=False)
    """The response that showed it is one, for a caller that reads it next."""
    site: str | None = None
    """For a sitemap: the site that named it (whose robots.txt lists it, or the index given),
    whose URLs it may list wherever it is hosted (`sitemaps.sitemap_sites`); registered as
    the feed's `site_url`."""


async def find_feeds(
    fetch: Fetch, url: str, *, max_bytes: int, parse: ParseSitemap = parse_here
) -> list[FoundSource]:
    """What `ingest feeds add URL` registers: the URL itself when it answers a feed or a (news)
    sitemap; for a web page, its feeds (`site_feeds`), else a news sitemap named in its
    robots.txt. Empty when none is found; FetchError when the URL itself cannot be fetched."""
    result = await fetch(url, "feed")
    body = result.body
    if looks_like_feed(body):
        return [FoundSource(url, "feed", "", response=result)]
    if looks_like_sitemap(body, result.final_url):
        try:
            sitemap = await parse(body, result.final_url, max_bytes)
        except ParseError:
            return []
        if sitemap.kind != "index":
            return [FoundSource(url, "sitemap", f"a sitemap, {_AS_FEED}", response=result)]
        sites = sitemap_sites(url, result.final_url, None)
        refs = [with_user_info(url, r.url) for r in sitemap.sitemaps if on_site(r.url, sites)]
        news = await _news_sitemap(fetch, refs, max_bytes, parse, named_by=url)
        how = f"news sitemap listed in {url}, {_AS_FEED}"
        return [FoundSource(news, "sitemap", how, site=url)] if news else []
    if not looks_like_html(body, result.content_type):
        return []
    return await page_sources(fetch, result, max_bytes=max_bytes, label=url, parse=parse)


async def page_sources(
    fetch: Fetch,
    page: FetchResult,
    *,
    max_bytes: int,
    label: str | None = None,
    parse: ParseSitemap = parse_here,
) -> list[FoundSource]:
    """What a web page stands for as a feed: its feeds (`site_feeds`), else a news sitemap
    named in its site's robots.txt (followed as a feed of kind 'sitemap'), its sitemaps read
    by `parse`."""
    label = label or page.final_url
    found = await site_feeds(fetch, page, label=label)
    if found:
        return found
    listed = list(await robots_sitemaps(fetch, page.final_url))
    news = await _news_sitemap(fetch, listed, max_bytes, parse, named_by=page.final_url)
    if news:
        how = f"news sitemap in the robots.txt of {label}, {_AS_FEED}"
        return [FoundSource(news, "sitemap", how, site=page.final_url)]
    return []


async def site_feeds(
    fetch: Fetch,
    page: FetchResult,
    *,
    label: str | None = None,
    unchecked: list[tuple[FoundSource, FetchError]] | None = None,
) -> list[FoundSource]:
    """A web page's feeds: those it links with `<link rel="alternate">` that answer a feed
    (the first MAX_FEED_LINKS, each checked), else the first common feed path (`/feed/`,
    `/rss.xml`, ...) that answers one. Each carries the response that showed it.
    `unchecked`, when given, gets the links that could not be checked for a passing reason
    (`FetchError.transient`: a 5xx, a 429, no answer, their host's Retry-After), each with
    its error: the page names them as its feeds, so that a backfill, which finds a site's
    sources once, keeps them to try again rather than lose them."""
    label = label or page.final_url
    found: list[FoundSource] = []
    for link in feed_links(page.body, page.final_url)[:MAX_FEED_LINKS]:
        link_url = with_user_info(page.final_url, link.url)
        how = f"linked from {label}" + (f": {link.title}" if link.title else "")
        try:
            candidate = await fetch(link_url, "feed")
        except FetchError as e:
            if unchecked is not None and e.transient:
                unchecked.append((FoundSource(canonical(link_url), "feed", how, link.title), e))
            continue
        if looks_like_feed(candidate.body):
            found.append(FoundSource(canonical(link_url), "feed", how, link.title, candidate))
    if found:
        return _unique(found)
    for path_url in common_feed_urls(page.final_url):
        try:
            candidate = await fetch(path_url, "feed")
        except FetchError:
            continue
        if looks_like_feed(candidate.body):
            how = f"common feed path of {label}"
            return [FoundSource(canonical(path_url), "feed", how, response=candidate)]
    return []


async def site_sitemaps(fetch: Fetch, site_url: str) -> list[FoundSource]:
    """The sitemaps a site lists in its robots.txt, else `/sitemap.xml` when it answers one."""
    listed = await robots_sitemaps(fetch, site_url)
    if listed:
        how = f"listed in the robots.txt of {site_url}"
        return _unique([FoundSource(canonical(u), "sitemap", how) for u in listed])
    root = robots_url(site_url).removesuffix("/robots.txt")
    url = canonical(with_user_info(site_url, root + "/sitemap.xml"))
    try:
        result = await fetch(url, "feed")
    except FetchError:
        return []
    if not looks_like_sitemap(result.body, result.final_url):
        return []
    return [FoundSource(url, "sitemap", "the conventional /sitemap.xml", response=result)]


async def robots_sitemaps(fetch: Fetch, site_url: str) -> tuple[str, ...]:
    """The sitemaps a site lists in its robots.txt, those of `site_url`'s origin with its
    user-info (`with_user_info`: robots.txt itself is fetched without it); none when robots.txt
    cannot be read."""
    url = robots_url(site_url)
    try:
        result = await fetch(url, "robots")
    except FetchError as e:
        log.debug("robots_unavailable", url=redact_url(url), error=str(e))
        return ()
    return tuple(
        with_user_info(site_url, u) for u in sitemaps_from_robots(result.body, result.final_url)
    )


async def _news_sitemap(
    fetch: Fetch, urls: Sequence[str], max_bytes: int, parse: ParseSitemap, *, named_by: str
) -> str | None:
    """The first news sitemap among `urls`, which `named_by` names (sitemap indexes are
    opened one level down, the sitemaps with "news" in their URL first, those of their own
    site only: `sitemaps.sitemap_sites`); at most MAX_NEWS_SITEMAP_PROBES fetches, each
    sitemap fetched once however often it is listed (a robots.txt naming the sitemaps its
    index lists again), by its canonical URL."""
    queue = sorted(urls, key=_not_news)
    probes = 0
    probed: set[str] = set()
    while queue and probes < MAX_NEWS_SITEMAP_PROBES:
        url = queue.pop(0)
        if canonical(url) in probed:
            continue
        probed.add(canonical(url))
        probes += 1
        try:
            result = await fetch(url, "feed")
            sitemap = await parse(result.body, result.final_url, max_bytes)
        except (FetchError, ParseError):
            continue
        if sitemap.kind == "index":
            sites = sitemap_sites(url, result.final_url, named_by)
            children = sorted(
                (with_user_info(url, r.url) for r in sitemap.sitemaps if on_site(r.url, sites)),
                key=_not_news,
            )
            queue = children + queue
        elif sitemap.is_news:
            return canonical(url)
    return None


def _not_news(url: str) -> bool:
    """False for a sitemap URL with "news" in it (its user-info, a credential, aside)."""
    return "news" not in without_user_info(url).lower()


def canonical(url: str) -> str:
    """The canonical form of a source URL, or the URL as given when it has none."""
    try:
        return canonical_url(url)
    except ValueError:
        return url


def _unique(found: list[FoundSource]) -> list[FoundSource]:
    """The first of each URL, in order (two links to one feed register it once)."""
    first: dict[str, FoundSource] = {}
    for f in found:
        first.setdefault(f.url, f)
    return list(first.values())
