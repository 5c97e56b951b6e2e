"""HTTP for the whole service: one `Fetcher` owns the httpx client, the SSRF guard, size caps,
deadlines, redirects, concurrency limits and the robots.txt cache; it returns `FetchResult`s
and raises only `FetchError` / `BlockedError` for anything the network does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import re
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import Final, Literal

import httpcore
import httpx

from ingest import USER_AGENT, preload
from ingest.config import Settings
from ingest.errors import BlockedError, FetchError, HeldError, clipped
from ingest.fetch.body import BodyDecoder, BodyTooLargeError, content_coding
from ingest.fetch.guard import (
    AddressCheck,
    BlockedAddressError,
    Resolver,
    caused_by,
    check_address,
    system_resolver,
)
from ingest.fetch.internals import (
    asyncio_primitives,
    bounded_events,
    transport_with_pool,
)
from ingest.fetch.limits import Clock, HostHeld, HostLimiter, Sleep
from ingest.fetch.pools import KEEPALIVE_SECONDS, OriginPools, has_idle_connection
from ingest.fetch.refresh import refresh_location
from ingest.fetch.robots import ROBOTS_AGENT, Robots, parse_robots, robots_url
from ingest.fetch.transport import GuardedBackend
from ingest.metrics import FETCH_SECONDS
from ingest.normalize import host_key, registered_domain, served_type
from ingest.schedule import retry_after_wait
from ingest.types import FetchKind, FetchResult, is_credential_header

RobotsVerdict = Literal["allowed", "disallowed", "unavailable"]

ROBOTS_MAX_BYTES: Final = 512 * 1024
"""RFC 9309 §2.5: parse at least 500 KiB; anything beyond is ignored (truncated), not an error."""

ROBOTS_MAX_REDIRECTS: Final = 5
"""Redirects followed for a robots.txt, whatever `max_redirects` says for feeds and pages: RFC
9309 §2.3.1.2 asks for at least five, and allows taking more as "unavailable"."""

ROBOTS_CACHE_ORIGINS = 10_000
"""Cached robots.txt copies (origins) past which the expired ones are swept (`_sweep_robots`),
or twice as many as the previous sweep left, so that sweeping stays amortised O(1) a copy."""

_FORGOTTEN: Final = Robots.unreachable()
"""The rules of an expired copy once swept: none known, as where robots.txt was never read."""

ROBOTS_FAILURE_SECONDS: Final = 600.0
"""How long a 5xx or unreachable robots.txt is taken as it was (disallowing the host, where it
was never read; else the rules last read), and a request for it the guard refused (refusing
the origin's pages), before we ask again."""

_ACCEPT: Final[dict[FetchKind, str]] = {
    "feed": (
        "application/rss+xml, application/atom+xml, application/feed+json, "
        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
    ),
    "page": "text/html, application/xhtml+xml;q=0.9, */*;q=0.8",
    "robots": "text/plain, */*;q=0.5",
}
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SCHEMES: Final = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class _Redirect:
    status: int
    location: httpx.URL


@dataclass(frozen=True, slots=True)
class _Final:
    url: httpx.URL
    response: httpx.Response
    body: bytes


@dataclass(frozen=True, slots=True)
class _RobotsEntry:
    robots: Robots
    expires: float
    crawl_delay: float | None = None
    """The seconds between two requests the host asks of us (Crawl-delay, Request-rate): the
    file's own, or, while robots.txt answers 5xx or cannot be reached, the one last read, which
    the failure says nothing against."""
    refused: tuple[str, str] | None = None
    """The URL and reason of the guard's refusal of the robots.txt request (a redirect to an
    internal address or to another scheme), raised again as a `BlockedError` to every page of
    the origin until the entry expires, rather than asking for robots.txt before each page."""
    held_by: str | None = None
    """The host whose Retry-After kept robots.txt from being read, where it redirects to another
    (a CDN): its hold holds the origin's pages as their own host's does (`_rules_unless_held`)."""


def _http_url(original: str, url: str | httpx.URL, *, redirect: bool = False) -> httpx.URL:
    """Parse and vet a URL we are about to request: http(s) with a host, or an error."""
    try:
        parsed = url if isinstance(url, httpx.URL) else _parsed(url)
    except httpx.InvalidURL as e:
        raise FetchError(original, f"invalid URL {clipped(str(url))!r}: {e}", permanent=True) from e
    if parsed.scheme not in _ALLOWED_SCHEMES:
        what = "redirect to" if redirect else "URL with"
        raise BlockedError(original, f"{what} scheme {parsed.scheme or '(none)'!r} is not allowed")
    if not parsed.host:
        raise FetchError(original, f"URL without a host: {clipped(str(parsed))!r}", permanent=True)
    if parsed.port is not None and not 0 < parsed.port <= _MAX_PORT:
        # httpx parses any digits; the socket refuses them with an OverflowError.
        raise FetchError(original, f"URL with port {parsed.port} out of range", permanent=True)
    return parsed


_MAX_PORT: Final = 65535


def _parsed(url: str) -> httpx.URL:
    """`httpx.URL(url)`, kept for the last 1,024 URLs of up to _KEPT_URL characters (an
    immutable value): a page's URL is parsed for its robots.txt's origin and again for its
    request, and httpx's parser reads it character by character."""
    return _kept_url(url) if len(url) <= _KEPT_URL else httpx.URL(url)


_KEPT_URL: Final = 2048
_kept_url = lru_cache(maxsize=1024)(httpx.URL)


_MAX_RETRY_AFTER_CHARS: Final = 64
"""Longer than any valid Retry-After (an HTTP-date is 29 characters, delta-seconds fit in 20)."""


def _retry_after(value: str | None) -> str | None:
    """Retry-After (or the Date it counts from) as the server sent it, unless no valid value
    could be that long: an invalid Retry-After is ignored (RFC 9110 §10.2.3), and a run of
    thousands of digits would otherwise reach int() and its 4300-digit limit in the scheduler."""
    if value is None or len(value) > _MAX_RETRY_AFTER_CHARS:
        return None
    return value


_VALIDATORS: Final = (b"etag", b"last-modified")


def _result_headers(headers: httpx.Headers) -> dict[str, str]:
    """The response's headers by lowercase name, one sent twice with one value as that value
    (`_header`). httpx decodes all of them with one encoding (ASCII, else UTF-8, else
    Latin-1, guessed from the whole set), so a non-ASCII validator could not be told back into
    its bytes: validators are decoded as Latin-1 whatever the guess, one character per byte,
    for `_validator` to send back unchanged."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers.multi_items():
        grouped.setdefault(name, []).append(value)
    result = {name: _one(values) for name, values in grouped.items()}
    if "content-type" in grouped:
        result["content-type"] = _content_type(grouped["content-type"])
    if headers.encoding != "ascii":
        for validator in _VALIDATORS:
            raw = list(dict.fromkeys(v for k, v in headers.raw if k.lower() == validator))
            if raw:
                result[validator.decode()] = b", ".join(raw).decode("latin-1")
    return result


def _header(headers: httpx.Headers, name: str) -> str | None:
    """A header's value: where it comes more than once with one value (an application's and
    a proxy's `Retry-After: 120`, `Last-Modified`, `Date`), that value; with several values,
    all of them joined by commas, as httpx reads them (RFC 9110 §5.3)."""
    values = headers.get_list(name)
    return _one(values) if values else None


def _one(values: list[str]) -> str:
    """`_header` of the values a header came with."""
    return values[0] if len(values) == 1 or len(set(values)) == 1 else ", ".join(values)


def _content_type(values: list[str]) -> str:
    """The response's Content-Type from the values of its lines, read as one (`served_type`):
    the page's type and charset where a proxy or a framework sent its own beside the
    application's. One line without a comma, nearly every response's, is that line."""
    if len(values) == 1 and "," not in values[0]:
        return values[0]
    return served_type(part for value in values for part in value.split(","))


def _location(url: str, headers: httpx.Headers) -> str | None:
    """A redirect's Location as the bytes the server sent, each byte outside ASCII
    percent-encoded, as browsers and curl follow it: UTF-8's `café` is `caf%C3%A9`, a Latin-1
    site's (its `é` the byte E9) `caf%E9`. httpx decodes a response's headers with one
    encoding guessed from them all, which reads a UTF-8 Location beside a Latin-1 cookie as
    `cafÃ©` and sends a Latin-1 one back as UTF-8: neither the address the server named.
    Sent twice, its one value; two values name no one address (a browser refuses them too):
    a permanent `FetchError`, not a request for both joined by a comma."""
    values = list(dict.fromkeys(v.strip() for k, v in headers.raw if k.lower() == b"location"))
    if len(values) > 1:
        named = ", ".join(repr(clipped(_as_ascii(v))) for v in values[:2])
        raise FetchError(url, f"redirect with two Location headers: {named}", permanent=True)
    return _as_address(values[0]) if values else None


_AUTHORITY: Final = re.compile(rb"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//[^/?#]*")
"""A URL's scheme and authority, or the authority alone of a scheme-relative one."""


def _as_address(value: bytes) -> str:
    """A Location's bytes as a URL: its host, where the bytes are UTF-8, kept as its letters,
    which httpx sends as IDNA (`bücher.de`, xn--bcher-kva.de, as browsers resolve it; not
    `b%C3%BCcher.de`, a name no resolver knows), the rest as `_as_ascii` gives it."""
    authority = _AUTHORITY.match(value)
    if authority is None or not _NOT_ASCII.search(authority[0]):
        return _as_ascii(value)
    try:
        host = authority[0].decode("utf-8")
    except UnicodeDecodeError:
        return _as_ascii(value)
    return host + _as_ascii(value[authority.end() :])


_NOT_ASCII: Final = re.compile(rb"[\x80-\xff]")


def _as_ascii(value: bytes) -> str:
    """Header bytes as text, each byte outside ASCII percent-encoded."""
    return _NOT_ASCII.sub(lambda byte: b"%%%02X" % byte[0][0], value).decode("ascii")


_TAB_OR_NEWLINE: Final = re.compile("[\t\n\r]")


def _joined(target: httpx.URL, named: str) -> httpx.URL:
    """The address a response names (a Location, a refresh), resolved against `target` as a
    browser reads a URL: every ASCII tab and newline dropped first (the URL standard's basic
    URL parser), so that an address a template broke over lines is the address without the
    break, as a page's canonical link is (`normalize.canonical_url`); httpx refuses them."""
    return target.join(_TAB_OR_NEWLINE.sub("", named))


def _validator(value: str) -> bytes:
    """A stored ETag or Last-Modified as the bytes the server sent (`_result_headers`); as
    UTF-8 if it holds characters no header byte decodes to."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


def _host(url: httpx.URL) -> str:
    """What politeness is kept for: the host, whatever the scheme and port. The http:// and
    https:// origins of a site are one server to spare: a feed's http:// links, each redirected
    to https://, would otherwise reach it twice a delay, the two requests moments apart. A
    name's fully qualified spelling (`example.com.`) and its capitals are the same host too
    (`host_key`)."""
    return host_key(url.host)


def _origin(url: httpx.URL) -> str:
    """The key of a cached robots.txt: scheme, `_host` and port."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = _host(url)
    host = f"[{host}]" if ":" in host else host
    return f"{url.scheme}://{host}:{port}"


def credential_site(url: httpx.URL | str) -> str:
    """The site within which a feed's credential headers (`is_credential_header`) are sent: the
    registered domain of its URL's host (`www.example.com` and `feeds.example.com` are one).
    A redirect's hop outside it gets none of them (`_hop_headers`), nor does the new URL of a
    feed that moved there (`ingest.pipeline`)."""
    return registered_domain(_host(url if isinstance(url, httpx.URL) else httpx.URL(url)))


def credentials_reach(site: str, secure: bool, target: httpx.URL | str) -> bool:
    """Whether a request to `target` carries the credential headers (`is_credential_header`) of
    a feed of `site` (its URL's `credential_site`), registered over https:// (`secure`) or
    not: only to hosts of that site, and for an https:// feed only over https:// (over
    http:// they would cross the network in clear text, which the credential of a URL's
    user-info never does either). The rule of a feed's redirects and pages (`_hop_headers`)
    and of a feed that moved (`credentials_stay`)."""
    url = target if isinstance(target, httpx.URL) else httpx.URL(target)
    return credential_site(url) == site and (not secure or url.scheme == "https")


def credentials_stay(old_url: str, new_url: str) -> bool:
    """Whether a feed that moved from `old_url` to `new_url` (a permanent redirect that held)
    keeps its credential headers: where requests to the new URL would have carried them
    (`credentials_reach`). A feed moved to another site (a domain sold or lapsed, a hosting
    platform), or from https:// to http://, is polled there without them."""
    owner = httpx.URL(old_url)
    return credentials_reach(credential_site(owner), owner.scheme == "https", new_url)


def _basic_authorization(url: httpx.URL) -> bytes | None:
    """The Basic authentication a URL's user-info asks for (`https://user:password@host/`, a
    token alone as `https://TOKEN@host/`, sent as `TOKEN:`), as httpx and curl send it."""
    if not url.userinfo:
        return None
    return b"Basic " + base64.b64encode(f"{url.username}:{url.password}".encode())


def _credentials_follow(home: httpx.URL, target: httpx.URL) -> bool:
    """Whether the credentials given for `home` (its user-info, a feed's Authorization or Cookie
    header) go with a redirect hop to `target`: within `home`'s origin, or from http:// on
    port 80 to https:// on 443 of its host (a site's upgrade), as httpx and curl decide; never
    to another host, which a CDN or an open redirect may lead to."""
    if _origin(target) == _origin(home):
        return True
    return (
        _host(target) == _host(home)
        and (home.scheme, home.port or 80) == ("http", 80)
        and (target.scheme, target.port or 443) == ("https", 443)
    )


def _with_fragment(target: httpx.URL, location: httpx.URL) -> httpx.URL:
    """A redirect's target with the fragment of the URL redirected where it has none of its
    own, as a browser follows it (RFC 9110 §10.2.2): a hashbang route (`/app#!/stories/1234`)
    redirected to `/app/` is still that route, the story's address (`normalize.canonical_url`)."""
    if location.fragment or not target.fragment:
        return location
    return location.copy_with(fragment=target.fragment)


def _with_user_info(home: httpx.URL, location: httpx.URL) -> httpx.URL:
    """A redirect's target, with `home`'s user-info where credentials follow and the target
    has none of its own: the URL that fetches it, which a moved feed is renamed to (a private
    feed's `https://TOKEN@host/feed` redirected to `https://host/rss` moves to
    `https://TOKEN@host/rss`, not to a URL that answers 401)."""
    if not home.userinfo or location.userinfo or not _credentials_follow(home, location):
        return location
    return location.copy_with(userinfo=home.userinfo)


def with_user_info(home: str, url: str) -> str:
    """`url` with the user-info of `home` where the credentials given for `home` go to it (its
    origin, or its https:// upgrade: `_credentials_follow`) and it has none of its own; else
    `url` as given. The one rule for a source found from a private URL, written without the
    credential, which the server cannot know: a page of a private feed's history, the feed a
    private home page links, a sitemap named in its robots.txt (or its `/sitemap.xml`), a
    sitemap a private index lists are fetched (and registered) with it, as the redirects of
    `home` are; one of another origin never gets it."""
    try:
        parsed_home, parsed = httpx.URL(home), httpx.URL(url)
    except httpx.InvalidURL:
        return url
    if not parsed_home.userinfo or parsed.userinfo or not parsed.host:
        return url
    return str(_with_user_info(parsed_home, parsed))


def _hop_headers(
    headers: list[tuple[bytes, bytes]],
    basic: bytes | None,
    home: httpx.URL,
    target: httpx.URL,
    site: str | None,
    secure: bool,
) -> list[tuple[bytes, bytes]]:
    """A hop's own headers: the request's, those that are credentials only to a host of `site`
    (the registered domain of the feed they were set for: a feed's pages and its redirects
    within `www.` and `feeds.` of one domain get them, another site a feed links to or a
    redirect leads to does not; None: the request carries no such header), and, where that
    feed is an https:// one (`secure`), only over https:// (an http:// link or redirect would
    carry them in clear text, which the user-info's credential never is either), and the
    Basic authentication of the URL's user-info (`basic`) where that follows
    (`_credentials_follow`)."""
    if site is not None and not credentials_reach(site, secure, target):
        headers = [h for h in headers if not is_credential_header(h[0].decode("latin-1"))]
    if basic and (target is home or _credentials_follow(home, target)):
        return [*headers, (b"Authorization", basic)]
    return headers


def _network_error(url: str, e: httpx.HTTPError, settings: Settings) -> FetchError:
    """One clear message per kind of network failure; the httpx exception stays as __cause__."""
    detail = clipped(str(e) or type(e).__name__)
    if isinstance(e, httpx.ConnectTimeout):
        message = f"connect timed out after {settings.connect_timeout:g}s"
    elif isinstance(e, httpx.ReadTimeout):
        message = f"read timed out: no data for {settings.read_timeout:g}s"
    elif isinstance(e, httpx.TimeoutException):
        message = f"timed out: {detail}"
    elif isinstance(e, httpx.ConnectError):
        # GuardedBackend already words its errors ("connection refused by ...").
        known = detail.startswith(("connection refused", "could not"))
        if known:
            message = detail
        elif caused_by(e, ssl.SSLError):
            message = f"TLS handshake failed: {detail}"
        else:
            message = f"connect failed: {detail}"
    elif isinstance(e, httpx.RemoteProtocolError):
        message = f"protocol error: {detail}"
    elif isinstance(e, httpx.ReadError | httpx.WriteError):
        message = f"connection lost: {detail}"
    else:
        message = f"{type(e).__name__}: {detail}"
    return FetchError(url, message)


def _unasked_304(url: str, target: httpx.URL) -> FetchError:
    """A 304 to a request that sent no validators: it says the copy the request named is
    current, and the request named none (a cache serving a 304 it stored to anyone). Taken as
    a result, it would record the feed "not modified" while nothing of it was ever read, and
    keep its entries waiting for another try from being tried again."""
    return FetchError(
        url,
        "HTTP 304 Not Modified to a request without validators",
        status=304,
        response_url=str(target),
    )


_DRAIN_BYTES = 64 * 1024
_DRAIN_SECONDS: Final = 1.0
"""The longest a body that is not wanted is waited for (`_drain`): what keeps a connection for
the next request, not what the response means."""


async def _drain(response: httpx.Response) -> None:
    """Read the (small) body of a response whose body is not wanted (304, redirect, error), so
    that its connection goes back to the pool: a response closed unread closes its connection,
    and a poll that mostly gets 304s would then open a new connection for every feed. A body
    over `_DRAIN_BYTES` is left unread (its connection closed instead), and so is one that
    does not come within `_DRAIN_SECONDS` or whole (a Content-Length the server never sends,
    a connection it closes midway): the status and headers say what the response means (a
    redirect's Location, a 503's Retry-After, a 404), whatever becomes of a body nobody
    reads, which browsers do not wait for either."""
    seen = 0
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for chunk in response.aiter_raw():
                seen += len(chunk)
                if seen > _DRAIN_BYTES:
                    return


class Fetcher:
    """`async with Fetcher(settings) as f: result = await f.fetch(url, "feed", etag=...)`."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        address_check: AddressCheck | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`address_check` replaces `check_address` for every resolved address. It exists so tests
        can treat one loopback address as public while the real check refuses the others;
        production code never passes it. `clock` drives the robots.txt cache expiry and, with
        `sleep`, the waits between two requests to one host (`HostLimiter`): a clock other
        than `time.monotonic` needs a `sleep` that moves it. Deadlines and the time on the
        wire are real time whatever they are.
        `ssl_context` replaces the default (certifi's CA bundle, one context per process: see
        `preload`), for a test CA or a private one."""
        self._settings = settings
        self._policy = settings.policy()
        self._clock = clock
        allow = settings.allow_private_networks
        asyncio_primitives()
        bounded_events()

        def default_check(ip: str) -> None:
            check_address(ip, allow)

        backend = GuardedBackend(resolver or system_resolver, address_check or default_check)
        ssl_context = ssl_context or preload.ssl_context()
        per_host = settings.per_host_connections

        def make_transport() -> httpx.AsyncHTTPTransport:
            # AsyncHTTPTransport does not accept a network_backend, and the SSRF guard has to
            # live in the network layer (see GuardedBackend): the transport sends through a
            # pool built on ours (see internals).
            pool = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=per_host,
                max_keepalive_connections=per_host,
                keepalive_expiry=KEEPALIVE_SECONDS,
                network_backend=backend,
            )
            return transport_with_pool(pool, ssl_context=ssl_context)

        self._pools = OriginPools(make_transport)
        # Requests go to the transports, not through an httpx.AsyncClient: redirects are
        # followed here hop by hop (each hop vetted), a crawler keeps no cookies, and there is
        # no auth; the client's per-request machinery for those cost a third of a 304's CPU.
        self._headers: list[tuple[bytes, bytes]] = [
            (b"User-Agent", USER_AGENT.encode()),
            (b"Accept-Encoding", b"gzip"),
        ]
        self._extensions = {
            "timeout": {
                "connect": settings.connect_timeout,
                "read": settings.read_timeout,
                "write": settings.read_timeout,
                "pool": settings.request_deadline,
            }
        }
        self._hosts = HostLimiter(
            settings.per_host_connections,
            total=settings.max_connections,
            delay=self._delay_of,
            clock=clock,
            sleep=sleep,
            patience=settings.max_crawl_delay,
        )
        self._robots: dict[str, _RobotsEntry] = {}
        self._robots_origins: dict[str, set[str]] = {}
        """Host -> the origins of that host with a robots.txt in `_robots`."""
        self._robots_loading: set[str] = set()
        """Hosts with a robots.txt (of any origin) being fetched: only a host's first one goes
        out without waiting out its delay."""
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._robots_sweep_at = ROBOTS_CACHE_ORIGINS

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pools.aclose()

    def _cap(self, kind: FetchKind) -> int:
        if kind == "feed":
            return self._settings.max_feed_bytes
        if kind == "page":
            return self._settings.max_page_bytes
        return ROBOTS_MAX_BYTES

    async def fetch(
        self,
        url: str,
        kind: FetchKind,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        starting: Callable[[], Awaitable[None]] | None = None,
        waiting: Callable[[], None] | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        headers_for: str | None = None,
        untimed: bool = False,
    ) -> FetchResult:
        """GET `url`, following redirects. 2xx and 304 are results (a 304 only to a request
        with `etag` or `last_modified`); everything else is a `FetchError` (`BlockedError` when
        refused before connecting). For kind "robots" a body
        over the cap is truncated, not refused (RFC 9309 §2.5), and `ROBOTS_MAX_REDIRECTS`
        redirects are followed instead of `max_redirects`. A page's redirects are
        followed where the target's robots.txt allows (`_may_follow`); a page that is a
        refresh stub (`ingest.fetch.refresh`) is a redirect with its own status, recorded and
        counted as one. `starting` is awaited
        when the host's politeness lets a request start, once for each hop: a caller bounding
        its pages in flight takes its slot there, so that waiting out a host's delay holds none.
        `waiting` is called when a hop ends in a redirect, before the next hop waits for its
        host: the caller lets go of what `starting` took (the next hop's `starting` takes it
        again). A redirected page that held its slot while queued behind another host's
        requests could hold the very slot the request at the head of that queue waits for.
        `extra_headers` (a feed's own, `ingest feeds set`) go with every hop, those that are
        credentials (Authorization, Cookie) only to hosts of the site of `headers_for` (the
        feed's URL; by default `url`): see `_hop_headers`; a User-Agent among them replaces the
        service's. The user-info of `url` is sent as Basic authentication to its origin.
        `untimed`: the first hop neither waits out the host's delay nor is held back by
        `starting` (a host's first robots.txt, which tells the delay: see
        `HostLimiter.slot`); it still counts as the host's last start."""
        started = time.monotonic()
        settings = self._settings
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers]
        # A feed's own Accept replaces the service's, as its User-Agent does (`_base_headers`).
        if not any(name.lower() == b"accept" for name, _ in headers):
            headers.insert(0, (b"Accept", _ACCEPT[kind].encode()))
        # Validators are echoed back as the server sent them (see `_result_headers`); as str, a
        # non-ASCII ETag would raise UnicodeEncodeError inside httpx instead of reaching the
        # server.
        if etag:
            headers.append((b"If-None-Match", _validator(etag)))
        if last_modified:
            headers.append((b"If-Modified-Since", _validator(last_modified)))
        target = home = _http_url(url, url)
        # A feed's own Authorization header wins over its URL's user-info.
        named = {name.lower() for name, _ in headers}
        basic = None if b"authorization" in named else _basic_authorization(home)
        # The registered domain only where a credential header needs one (the Public Suffix
        # List is loaded at its first use, 50-70 ms: not on the way to a cold run's first feed).
        site, secure = None, False
        if any(is_credential_header(name.decode("latin-1")) for name in named):
            owner = _http_url(url, headers_for) if headers_for else home
            site, secure = credential_site(owner), owner.scheme == "https"
        redirects: list[tuple[int, str]] = []
        # The deadline counts time on the wire, not time queued behind our own limits: a burst
        # of pages from one host must not time out while waiting for a per-host slot or delay.
        # The same wire time, summed over redirect hops, is what FETCH_SECONDS observes.
        on_wire = 0.0
        hops = 0
        max_redirects = ROBOTS_MAX_REDIRECTS if kind == "robots" else settings.max_redirects
        try:
            while True:
                try:
                    async with self._hosts.slot(
                        _host(target),
                        timed=not (untimed and hops == 0),
                        ready=starting,
                        # What a feed in progress waits on goes before another feed.
                        urgent=kind != "feed",
                    ):
                        hops += 1
                        hop_started = time.monotonic()
                        try:
                            async with asyncio.timeout(settings.request_deadline - on_wire):
                                outcome = await self._exchange(
                                    url,
                                    target,
                                    _hop_headers(headers, basic, home, target, site, secure),
                                    kind,
                                )
                        finally:
                            on_wire += time.monotonic() - hop_started
                except TimeoutError as e:
                    raise FetchError(url, f"timed out after {settings.request_deadline:g}s") from e
                except HostHeld as e:
                    # Not sent: the host asked for no request before then (`_back_off`).
                    raise _held(url, e.key, e.seconds) from e
                except BlockedAddressError as e:
                    raise BlockedError(url, str(e)) from e
                except httpx.HTTPError as e:
                    raise _network_error(url, e, settings) from e
                if isinstance(outcome, _Final):
                    response = outcome.response
                    if response.status_code == 304 and not (etag or last_modified):
                        raise _unasked_304(url, outcome.url)
                    return FetchResult(
                        url=url,
                        final_url=str(outcome.url),
                        status=response.status_code,
                        headers=_result_headers(response.headers),
                        body=outcome.body,
                        redirects=tuple(redirects),
                        elapsed_ms=round((time.monotonic() - started) * 1000),
                    )
                location = _with_user_info(home, _with_fragment(target, outcome.location))
                redirects.append((outcome.status, str(location)))
                if len(redirects) > max_redirects:
                    raise FetchError(
                        url,
                        f"too many redirects (more than {max_redirects})",
                        status=outcome.status,
                    )
                target = _http_url(url, location, redirect=True)
                if waiting is not None:
                    waiting()
                if kind == "page":
                    await self._may_follow(url, target)
        finally:
            # Failures are observed too: a request that timed out still took its time.
            if hops:
                FETCH_SECONDS.labels(kind).observe(on_wire)

    async def _may_follow(self, url: str, target: httpx.URL) -> None:
        """A page's redirect goes where the target's own robots.txt lets it: a tracking link or
        a moved story must not lead the crawler into a path its site disallows (`BlockedError`,
        as a disallowed page), nor to a site whose robots.txt is unavailable (a `FetchError`
        worth another try, as a page of that site would be)."""
        verdict = await self.robots_verdict(str(target))
        if verdict == "disallowed":
            raise BlockedError(url, f"robots.txt: disallowed (redirect to {clipped(str(target))})")
        if verdict == "unavailable":
            raise FetchError(url, f"robots.txt: unavailable (redirect to {clipped(str(target))})")

    async def _exchange(
        self, url: str, target: httpx.URL, headers: list[tuple[bytes, bytes]], kind: FetchKind
    ) -> _Redirect | _Final:
        """One request/response on the wire; the response is always closed before returning."""
        request = httpx.Request(
            "GET",
            target,
            headers=_base_headers(self._headers, headers) + headers,
            extensions=self._extensions,
        )
        async with self._pools.transport(target) as transport:
            reused = has_idle_connection(transport)
            try:
                response = await transport.handle_async_request(request)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                if not reused:
                    raise
                # The server closed a kept-alive connection as this request went out (its idle
                # timer fired meanwhile): a GET may be sent again (RFC 9110 §9.2.2), once; the
                # failed connection is gone, so it goes out on a new one.
                response = await transport.handle_async_request(request)
            try:
                return await self._outcome(url, target, response, kind)
            finally:
                await response.aclose()

    async def _outcome(
        self, url: str, target: httpx.URL, response: httpx.Response, kind: FetchKind
    ) -> _Redirect | _Final:
        """What one response means: a redirect to follow (a page's refresh stub too,
        `refresh_location`), or the final result (with its body read within the cap), or a
        FetchError."""
        status = response.status_code
        location = _location(url, response.headers) if status in _REDIRECT_STATUSES else None
        if location:
            await _drain(response)
            try:
                return _Redirect(status, _joined(target, location))
            except httpx.InvalidURL as e:
                raise FetchError(
                    url, f"invalid redirect location {clipped(location)!r}", permanent=True
                ) from e
        if status == 304:
            await _drain(response)
            return _Final(target, response, b"")
        if not 200 <= status < 300:
            await _drain(response)
            retry_after = _retry_after(_header(response.headers, "retry-after"))
            date = _retry_after(_header(response.headers, "date"))
            if status in (429, 503):
                self._back_off(target, status, retry_after, date)
            raise FetchError(
                url,
                f"HTTP {status} {clipped(response.reason_phrase)}".rstrip(),
                status=status,
                retry_after=retry_after,
                date=date,
                response_url=str(target),
            )
        body = await self._read_body(url, response, kind)
        if kind == "page":
            refresh = refresh_location(
                _content_type(response.headers.get_list("content-type")),
                _header(response.headers, "refresh"),
                body,
            )
            if refresh is not None:
                try:
                    refreshed = _joined(target, refresh)
                except httpx.InvalidURL as e:
                    raise FetchError(
                        url, f"invalid refresh location {clipped(refresh)!r}", permanent=True
                    ) from e
                if refreshed.copy_with(fragment=None) != target.copy_with(fragment=None):
                    return _Redirect(status, refreshed)
        return _Final(target, response, body)

    def _back_off(
        self, target: httpx.URL, status: int, retry_after: str | None, date: str | None
    ) -> None:
        """A host that answered 429 or 503 with a Retry-After gets no request before then
        (capped as the database's hold of its feeds is: `retry_after_wait`): the rest of a feed's
        pages must not go out a host delay apart into the same refusal, each spending one of
        its tries. A request waits out at most max_crawl_delay of it, as of a Crawl-delay, and
        fails at once while more is left (`HostHeld`): a site must not hold pages, and the feeds
        waiting for them, back for an hour. An HTTP-date counts from the response's own Date
        (`parse_retry_after`). A 429 without a usable Retry-After still says "too many
        requests": the host gets max_crawl_delay, the longest a request waits for a host, before
        the next one (a 503 without one is an outage, not a pace)."""
        seconds = self._retry_after_seconds(retry_after, date)
        if seconds is None and status == 429:
            seconds = self._settings.max_crawl_delay
        if seconds is None:
            return
        self._hosts.hold(_host(target), seconds)

    def _retry_after_seconds(self, retry_after: str | None, date: str | None) -> float | None:
        """The seconds a Retry-After asks for (an HTTP-date counted from the response's own
        Date), capped as the database's hold of the host's feeds is (`retry_after_wait`);
        None without a valid one."""
        wait = retry_after_wait(self._policy, retry_after, datetime.now(UTC), date=date)
        return None if wait is None else wait.total_seconds()

    async def _read_body(self, url: str, response: httpx.Response, kind: FetchKind) -> bytes:
        cap = self._cap(kind)
        truncate = kind == "robots"
        try:
            coding = content_coding(response.headers.get("content-encoding"))
        except ValueError as e:
            raise FetchError(url, str(e), permanent=True) from e
        declared = response.headers.get("content-length", "")
        if coding == "identity" and declared.isdigit() and int(declared) > cap and not truncate:
            raise FetchError(
                url, f"body exceeds {cap} bytes (Content-Length {declared})", permanent=True
            )
        decoder = BodyDecoder(coding, cap, truncate=truncate)
        try:
            async for chunk in response.aiter_raw():
                decoder.feed(chunk)
                if decoder.done:
                    break
            return decoder.finish()
        except BodyTooLargeError as e:
            raise FetchError(url, str(e), permanent=True) from e
        except zlib.error as e:
            raise FetchError(url, f"invalid {coding} body: {e}", permanent=True) from e

    # --- robots.txt ---------------------------------------------------------------------------

    async def robots_allowed(self, url: str) -> bool:
        """May we fetch this article page, according to its host's robots.txt? Cached per
        origin. A robots.txt the SSRF guard refuses raises `BlockedError`."""
        robots = await self.robots_for(url)
        return robots.allowed(url, ROBOTS_AGENT)

    async def robots_verdict(self, url: str) -> RobotsVerdict:
        """`robots_allowed`, telling a disallow the site wrote ("disallowed") from the one
        assumed while its robots.txt is unavailable ("unavailable"), which is worth a retry;
        `HeldError` while, besides, the host's Retry-After lasts (`robots_for`)."""
        robots = await self.robots_for(url)
        if robots.allowed(url, ROBOTS_AGENT):
            return "allowed"
        return "unavailable" if robots.unavailable else "disallowed"

    def host_delay(self, url: str) -> float:
        """The minimum time between the starts of two requests to `url`'s host: the configured
        host delay, raised by the Crawl-delay (or Request-rate) of the host's robots.txt as last
        read (capped at max_crawl_delay; the largest of the host's origins). It holds after the
        cached copy expires, until robots.txt is read again: the host's feeds do not read it,
        and the site asked for that pace, not for an hour of it. A host whose robots.txt was
        never read gets the host delay."""
        return self._delay_of(_host(_http_url(url, url)))

    def quiet_for(self, url: str) -> float:
        """The seconds `url`'s host is to get no request from now, were this process's last
        request to it starting now: its delay (`host_delay`), or what is left of its
        Retry-After where that is longer."""
        host = _host(_http_url(url, url))
        return max(self._delay_of(host), self._hosts.held_for(host))

    def _delay_of(self, host: str) -> float:
        settings = self._settings
        delays = [
            delay
            for key in self._robots_origins.get(host, ())
            if (entry := self._robots.get(key)) is not None
            and (delay := entry.crawl_delay) is not None
        ]
        if not delays:
            return settings.host_delay
        crawl_delay = max(delays)
        # Crawl-delay is non-standard and set by the site: honour it, but a site must not be
        # able to hold its pages, and the feeds waiting for them, back for an hour.
        return max(settings.host_delay, min(crawl_delay, settings.max_crawl_delay))

    async def robots_for(self, url: str) -> Robots:
        """The robots.txt rules governing `url`, from cache or fetched (RFC 9309 §2.3.1).
        Where none were ever read (robots.txt unavailable) while the host's Retry-After is not
        over, `HeldError`: the host, not the site's rules, keeps the page waiting, and a page
        not requested for that is no try at it."""
        key = _origin(_http_url(url, url))
        entry = self._robots.get(key)
        if entry is not None and entry.expires > self._clock():
            return self._rules_unless_held(url, entry)
        lock = self._robots_locks.setdefault(key, asyncio.Lock())
        try:
            # One fetch per origin even when a whole feed's pages ask at once.
            async with lock:
                entry = self._robots.get(key)
                if entry is None or entry.expires <= self._clock():
                    # The host's first one goes out at once; another origin's of the same host
                    # (http:// beside https://) and a refresh wait their turn like any request.
                    host = _host(_http_url(url, url))
                    first = (
                        entry is None
                        and not self._robots_origins.get(host)
                        and host not in self._robots_loading
                    )
                    self._robots_loading.add(host)
                    try:
                        entry = await self._load_robots(robots_url(url), entry, first=first)
                    finally:
                        self._robots_loading.discard(host)
                    self._store_robots(key, host, entry)
                return self._rules_unless_held(url, entry)
        finally:
            if not lock.locked():
                self._robots_locks.pop(key, None)

    def _rules_unless_held(self, url: str, entry: _RobotsEntry) -> Robots:
        """`_rules`, or `HeldError` where they are the disallow assumed while robots.txt is
        unavailable and `url`'s host, or the host its robots.txt redirected to, asked for no
        request for a while yet."""
        robots = _rules(entry)
        if robots.unavailable:
            for host in (_host(_http_url(url, url)), entry.held_by):
                if host is not None and (left := self._hosts.held_for(host)) > 0:
                    raise _held(robots_url(url), host, left)
        return robots

    async def _load_robots(
        self, url: str, previous: _RobotsEntry | None, *, first: bool
    ) -> _RobotsEntry:
        """Fetch and read robots.txt; `previous`, the expired entry it replaces, stays in force
        (its rules and Crawl-delay) where the refresh fails for a passing reason (5xx, 429,
        unreachable, held by a Retry-After), which says nothing new of them."""
        ttl = self._settings.robots_cache_seconds
        short_ttl = min(ROBOTS_FAILURE_SECONDS, ttl)
        try:
            result = await self.fetch(url, "robots", untimed=first)
        except BlockedError as e:
            # Refused before connecting: the same refusal for a while, not a request for
            # robots.txt (as the host's first) before each of the origin's pages.
            delay = previous.crawl_delay if previous is not None else None
            refused = (e.url, e.message)
            return _RobotsEntry(Robots.unreachable(), self._clock() + short_ttl, delay, refused)
        except FetchError as e:
            status = e.status
            held_by = None
            if isinstance(e, HeldError):
                # Not sent: the host's Retry-After is not over. Its pages wait meanwhile, and
                # robots.txt is asked for once it ends, not a failure's 10 minutes later.
                short_ttl = min(short_ttl, e.seconds)
                held_by = e.host
            elif status in (429, 503):
                # The server said when to come back (`_back_off` holds its host until then):
                # robots.txt is asked for again then, not after a failure's 10 minutes; at
                # most once a host delay, however soon it asked.
                wait = self._retry_after_seconds(e.retry_after, e.date)
                if wait is not None:
                    floor = self._delay_of(_host(_http_url(url, url)))
                    short_ttl = min(short_ttl, max(wait, floor))
                if e.response_url is not None:
                    held_by = _host(_http_url(url, e.response_url))
            # 429 is a 4xx, but it says "you are too fast", not "there is no file"; treat it
            # like a server error, as Google does, rather than as permission to crawl. A 304 to
            # a request without validators (`_unasked_304`: a cache's stored 304) says nothing
            # of the file either.
            if status is not None and 300 <= status < 500 and status not in (304, 429):
                # 4xx: "unavailable", crawl freely; 3xx here means too many redirects, which
                # RFC 9309 §2.3.1.2 also lets us treat as unavailable.
                return _RobotsEntry(Robots.allow_all(), self._clock() + ttl)
            # 5xx or unreachable: ask again soon. The rules last read (a file, or none after a
            # 4xx) stay in force meanwhile: §2.4 lets a crawler use its cached copy past its
            # time while the file is unreachable, and §2.3.1.4 keep it for as long as that
            # lasts. Never read yet: assume complete disallow (§2.3.1.4).
            if previous is not None and not previous.robots.unavailable:
                return replace(previous, expires=self._clock() + short_ttl)
            delay = previous.crawl_delay if previous is not None else None
            expires = self._clock() + short_ttl
            return _RobotsEntry(Robots.unreachable(), expires, delay, held_by=held_by)
        robots = parse_robots(_whole_lines(result.body))
        return _RobotsEntry(robots, self._clock() + ttl, robots.crawl_delay(ROBOTS_AGENT))

    def _store_robots(self, key: str, host: str, entry: _RobotsEntry) -> None:
        if len(self._robots) >= self._robots_sweep_at:
            self._sweep_robots()
        self._robots[key] = entry
        self._robots_origins.setdefault(host, set()).add(key)

    def _sweep_robots(self) -> None:
        """Forget the expired copies, which a page of their origin reads again, so that the
        cache does not keep the rules of every origin ever seen. A copy whose Crawl-delay (or
        Request-rate) is longer than the host delay keeps that delay, its rules forgotten
        (`_FORGOTTEN`): the host's feeds do not read robots.txt, and `host_delay` promises the
        pace the site asked for until robots.txt is read again, not until the cache is full.
        The next sweep comes once the cache is twice what this one left (at least
        `ROBOTS_CACHE_ORIGINS`): those kept delays and unexpired copies do not make every
        new origin sweep the whole cache."""
        now = self._clock()
        floor = self._settings.host_delay
        for key, entry in list(self._robots.items()):
            if entry.expires > now:
                continue
            if entry.crawl_delay is None or entry.crawl_delay <= floor:
                del self._robots[key]
            elif entry.robots is not _FORGOTTEN:
                self._robots[key] = _RobotsEntry(_FORGOTTEN, entry.expires, entry.crawl_delay)
        for name, keys in list(self._robots_origins.items()):
            keys.intersection_update(self._robots)
            if not keys:
                del self._robots_origins[name]
        self._robots_sweep_at = max(ROBOTS_CACHE_ORIGINS, 2 * len(self._robots))


def _held(url: str, host: str, seconds: float) -> HeldError:
    left = math.ceil(seconds)
    return HeldError(
        url,
        f"held: {host} asked for no request for another {left}s (Retry-After)",
        seconds=seconds,
        host=host,
    )


def _rules(entry: _RobotsEntry) -> Robots:
    """A cached robots.txt's rules, or the guard's refusal of its request again."""
    if entry.refused is not None:
        raise BlockedError(*entry.refused)
    return entry.robots


def _whole_lines(body: bytes) -> bytes:
    """A robots.txt body up to its last line break when the read stopped at ROBOTS_MAX_BYTES:
    the line cut there is the start of a rule, wider than the site wrote it (`Disallow:
    /private/` cut to `Disallow: /` disallows the whole site). A file of exactly that size
    whose last line has no break loses that line: the two cannot be told apart."""
    if len(body) < ROBOTS_MAX_BYTES:
        return body
    return body[: max(body.rfind(b"\n"), body.rfind(b"\r")) + 1]


def _base_headers(
    base: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The service's headers, less those the request sets itself (a feed's User-Agent)."""
    own = {name.lower() for name, _ in extra}
    return [h for h in base if h[0].lower() not in own] if own & {b"user-agent"} else base
