"""Sitemap bytes + URL -> typed sitemap entries (https://www.sitemaps.org/protocol.html): URL
sets with `lastmod`, Google News fields (`news:publication_date`, `news:title`), sitemap indexes,
plain-text sitemaps, gzip-compressed files (detected by their magic bytes, decompressed under a
size cap). Pure: no network, no files, no clock. A body that is not a sitemap is a `ParseError`.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from lxml import etree

from ingest.documents.text import title as text_title
from ingest.errors import ParseError
from ingest.normalize import (
    absolute_http_url,
    host_key,
    registered_domain,
    scheme_less_site_url,
    url_line,
    url_lines,
    utf8_with_windows_1252,
    w3c_date,
    wide_as_utf8,
    wide_encoding,
    without_controls,
    without_user_info,
    written_date,
)
from ingest.types import ParsedEntry, ParsedFeed

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_ENTRIES",
    "Sitemap",
    "SitemapEntry",
    "SitemapRef",
    "is_gzip",
    "looks_like_sitemap",
    "on_site",
    "parse_sitemap",
    "parse_sitemap_feed",
    "parse_w3c_datetime",
    "parse_w3c_period",
    "sitemap_sites",
]

DEFAULT_MAX_BYTES: Final = 50 * 1024 * 1024
"""The protocol's limit on an uncompressed sitemap; callers usually pass a tighter cap."""
MAX_ENTRIES: Final = 50_000
"""The protocol's limit on URLs (or sitemaps) in one file; anything beyond is dropped."""
GZIP_MAGIC: Final = b"\x1f\x8b"
_GZIP_CHUNK: Final = 64 * 1024

_SITEMAP_ROOTS: Final = frozenset({"urlset", "sitemapindex"})
_FEED_ROOTS: Final = frozenset({"rss", "feed", "rdf"})
_HTML_ROOTS: Final = frozenset({"html", "head", "body"})
# A start tag after any XML declaration, comments, processing instructions and doctype.
_PROLOG = re.compile(
    rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.DOTALL | re.IGNORECASE
)
_START_TAG = re.compile(rb"\s*<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)")
# libxml2's messages when a safety limit stops it (entity amplification or loops, depth, size).
_LIMITS: Final = ("amplification", "entity reference loop", "excessive depth", "huge")
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z_][\w.\-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
# The first line of a text sitemap: an http(s) URL alone (a long one may run past the sniffed head).
_TEXT_START = re.compile(rb"https?://[^\s/?#]+\S*(?:[ \t]*\r?\n|\Z)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    """One `<url>` of a URL set (or one line of a text sitemap)."""

    url: str
    lastmod: datetime | None = None
    news_title: str | None = None
    news_published: datetime | None = None
    news_language: str | None = None
    lastmod_until: datetime | None = None
    """The last moment of the year or the month `lastmod` names alone (`parse_w3c_period`);
    None where it names a day or a time."""
    news_until: datetime | None = None
    """So for `news_published`."""

    @property
    def date(self) -> datetime | None:
        """The date a backfill filters on: the publication date when the sitemap gives one,
        else the last modification."""
        return self.news_published or self.lastmod

    @property
    def date_until(self) -> datetime | None:
        """The last moment of the year or the month `date` names alone, or None."""
        return self.news_until if self.news_published else self.lastmod_until

    @property
    def is_news(self) -> bool:
        return self.news_published is not None or self.news_title is not None


@dataclass(frozen=True, slots=True)
class SitemapRef:
    """One `<sitemap>` of a sitemap index."""

    url: str
    lastmod: datetime | None = None
    lastmod_until: datetime | None = None
    """The last moment of the year or the month `lastmod` names alone (`parse_w3c_period`);
    None where it names a day or a time."""


@dataclass(frozen=True, slots=True)
class Sitemap:
    kind: Literal["urlset", "index", "text"]
    entries: tuple[SitemapEntry, ...] = ()
    sitemaps: tuple[SitemapRef, ...] = ()
    dropped: int = 0
    """Items left out: without a usable http(s) URL, repeated, or beyond MAX_ENTRIES."""
    compressed: bool = False

    @property
    def is_news(self) -> bool:
        """A Google News sitemap: some of its URLs carry `<news:news>`."""
        return any(e.is_news for e in self.entries)


def is_gzip(body: bytes) -> bool:
    return body.startswith(GZIP_MAGIC)


def looks_like_sitemap(body: bytes, url: str = "") -> bool:
    """Cheap sniff: gzip data, XML whose root is `<urlset>` or `<sitemapindex>`, or text whose
    first line is an http(s) URL: the protocol's text format, served as `text/plain`, which
    is neither a feed nor a web page and would otherwise be refused as TARGET of a backfill
    or by `feeds add` (`parse_sitemap` then decides, by most of its lines). A first line
    written without its scheme counts where `parse_sitemap` reads it as a URL: one that
    begins with a host of the site of `url` (where the body was served from) or with `www.`
    (`normalize.scheme_less_site_url`), or with `//`."""
    if is_gzip(body):
        return True
    # Its head as UTF-8 where it is in UTF-16 or UTF-32, as `parse_sitemap` reads it.
    body = _after_notice(wide_as_utf8(body[:4096]) if wide_encoding(body) else body)
    root = _root_name(body)
    if root is not None:
        return _local(root) in _SITEMAP_ROOTS
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if _TEXT_START.match(head) is not None:
        return True
    first = head.split(b"\n", 1)[0].rstrip(b"\r \t")
    if not first or len(first.split()) != 1:
        return False
    return scheme_less_site_url(url_line(first), url).startswith("//")


def parse_sitemap(
    body: bytes, url: str, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = MAX_ENTRIES
) -> Sitemap:
    """Parse a fetched sitemap; `url` is where it came from (the base for relative locations,
    which the protocol forbids but some sites write). `max_bytes` caps the document after
    decompression. Raises ParseError when the body is not a sitemap."""
    compressed = is_gzip(body)
    data = _gunzip(body, url, max_bytes) if compressed else body
    if len(data) > max_bytes:
        raise ParseError(url, f"sitemap exceeds {max_bytes} bytes")
    # A sitemap in UTF-16 or UTF-32 (a .NET site's `Encoding.Unicode`), with its byte order
    # mark or without, is read as the UTF-8 it stands for, as a feed is; its XML declaration's
    # UTF-16 then says so (`_as_declared_utf8`). libxml2 refused one without its mark and
    # declaration at its first NUL, and a text one was read as XML.
    data = _after_notice(wide_as_utf8(data))
    text_start = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text_start:
        raise ParseError(url, "not a sitemap: empty body" + (" (after gunzip)" * compressed))
    if not text_start.startswith(b"<"):
        sitemap = _text_sitemap(data, url, max_entries)
    else:
        sitemap = _xml_sitemap(data, url, max_entries)
    return Sitemap(sitemap.kind, sitemap.entries, sitemap.sitemaps, sitemap.dropped, compressed)


def parse_sitemap_feed(
    body: bytes,
    url: str,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sites: Sequence[str] = (),
) -> ParsedFeed:
    """A URL-set sitemap read as a feed (for feeds of kind 'sitemap', usually a news sitemap):
    one entry per URL of its own site (`url`'s, or one of `sites`: `sitemap_sites`; the others
    are left out, as a backfill leaves them out), newest first, titled and dated by its
    `news:` fields when present. The last modification is kept as the entry's update time
    only beside a publication date, so a page edited yesterday is not taken for one published
    yesterday."""
    del headers  # the same call shape as parse.parse_feed
    sitemap = parse_sitemap(body, url, max_bytes)
    if sitemap.kind == "index":
        raise ParseError(
            url, "a sitemap index, not a sitemap: register one of the sitemaps it lists"
        )
    own = (url, *sites)
    kept = [e for e in sitemap.entries if on_site(e.url, own)]
    entries = sorted(kept, key=lambda e: e.date or datetime.min.replace(tzinfo=UTC), reverse=True)
    return ParsedFeed(
        version="sitemap-news" if sitemap.is_news else "sitemap",
        title=None,
        link=None,
        language=None,
        entries=tuple(sitemap_entry(e) for e in entries),
        elsewhere=len(sitemap.entries) - len(kept),
    )


def sitemap_entry(entry: SitemapEntry) -> ParsedEntry:
    """A sitemap URL as a feed entry: the news title and publication date when it has them
    (lastmod only beside a publication date: a modification time is not a publication time)."""
    return ParsedEntry(
        guid=None,
        link=entry.url,
        title=entry.news_title,
        published_at=entry.news_published,
        updated_at=entry.lastmod if entry.news_published else None,
        language=entry.news_language,
    )


# --- decoding ------------------------------------------------------------------------------------


def _gunzip(body: bytes, url: str, max_bytes: int) -> bytes:
    """Decompress a gzip file, every member of it (RFC 1952: a file of several members is
    their concatenation), without ever holding more than `max_bytes + 1` of its output: a
    small file that inflates to gigabytes (a "zip bomb") is refused, not expanded. Input is fed
    in bounded chunks, so that what zlib copies past the end of each member stays small and
    many tiny members cost time in proportion to their size. Anything after the last member
    that does not start like one (padding) is ignored, as gzip does."""
    view = memoryview(body)
    out = bytearray()
    position = 0
    while True:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not decoder.eof:
            if position >= len(view):
                raise ParseError(url, "not a sitemap: truncated gzip data")
            chunk = view[position : position + _GZIP_CHUNK]
            try:
                out += decoder.decompress(chunk, max_bytes + 1 - len(out))
            except zlib.error as e:
                raise ParseError(url, f"not a sitemap: invalid gzip data: {e}") from e
            if len(out) > max_bytes or decoder.unconsumed_tail:
                raise ParseError(url, f"sitemap exceeds {max_bytes} bytes after gunzip")
            position += len(chunk) - len(decoder.unused_data)
        if not is_gzip(bytes(view[position : position + len(GZIP_MAGIC)])):
            return bytes(out)


def _after_notice(data: bytes) -> bytes:
    """The document from its XML declaration on, where a PHP warning or notice was printed
    before it (`<br />\n<b>Warning</b>: …`, a plugin on a site showing its errors), as a
    feed's is read (`feeds._sniff`); any other body as it is. A declaration is only ever at
    a document's start: one found further on, within the first 4 KiB, begins the document."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    declaration = head.find(b"<?xml", 1, 4096)
    return head[declaration:] if declaration > 0 else data


_DECLARED_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\x20-\x7e]*?)[\"']"
)


def _as_declared_utf8(data: bytes) -> bytes:
    """A document whose bytes are valid UTF-8, non-ASCII among them, with its XML declaration
    saying so where it names another charset (a template's `ISO-8859-1` kept after the site
    moved to UTF-8), as a feed's and a page's are read: valid UTF-8 is all but never meant as
    another charset, and read in that one, `café` in a URL was `cafÃ©`, another address. A
    declaration of UTF-16 or UTF-32 on bytes that are UTF-8 (no NULs: one byte a character)
    is false by construction. Any other document as it is: ASCII reads the same in every
    one-byte charset, and a seven-bit one (ISO-2022-JP) is ASCII bytes."""
    declared = _DECLARED_ENCODING.match(data)
    if declared is None:
        return data
    try:
        encoding = codecs.lookup(declared[1].decode("ascii")).name
    except LookupError:
        return data
    wide = encoding.startswith(("utf-16", "utf-32"))
    if encoding == "utf-8" or not (wide or not data.isascii()):
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    return data[: declared.start(1)] + b"utf-8" + data[declared.end(1) :]


_LOC_TEXT = re.compile(rb"(<(?:[\w.\-]+:)?loc\b[^>]*>)([^<]*)")


def _stray_bytes_read(data: bytes) -> bytes:
    """A UTF-8 document (declared so, or undeclared) with bytes that are not UTF-8 pasted
    in, made valid UTF-8 as a feed's are: in a location they are the URL's own bytes,
    percent-escaped (`normalize.url_line`, a text sitemap's rule: a Latin-1 `é` is `%E9`),
    elsewhere Windows-1252 (`normalize.utf8_with_windows_1252`: a word processor's quotes in
    a news title). libxml2 read each as U+FFFD, which names another page. Any other document
    as it is: one in another charset, or valid UTF-8 (one in UTF-16 is UTF-8 by now)."""
    declared = _DECLARED_ENCODING.match(data)
    if declared is not None:
        try:
            if codecs.lookup(declared[1].decode("ascii")).name != "utf-8":
                return data
        except LookupError:
            return data
    if data.isascii():
        return data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        escaped = _LOC_TEXT.sub(lambda m: m[1] + url_line(m[2]).encode("utf-8"), data)
        return utf8_with_windows_1252(escaped)[0].encode("utf-8")
    return data


def _root_name(body: bytes) -> str | None:
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    position = 0
    while match := _PROLOG.match(head, position):
        position = match.end()
    start = _START_TAG.match(head, position)
    return start.group(1).decode("ascii", "replace") if start else None


def _local(tag: object) -> str:
    """`{namespace}name` or `prefix:name` -> `name`, lower-cased; "" for comments and PIs."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2].rpartition(":")[2].lower()


def _parse_xml(data: bytes, url: str) -> Any:
    """The root element. Strict first; a document that is not well-formed (an unescaped `&` in
    a URL is the classic) is read again in recovery mode, and only fails when nothing usable
    comes out. Entities are never resolved, nothing is fetched, and libxml2's limits on depth
    and text size stay on (huge_tree=False)."""
    options: dict[str, Any] = {
        "resolve_entities": False,
        "no_network": True,
        "huge_tree": False,
        "load_dtd": False,
        "dtd_validation": False,
        "remove_comments": True,
        "remove_pis": True,
    }
    try:
        return etree.fromstring(data, etree.XMLParser(**options))
    except etree.XMLSyntaxError as e:
        strict_error = e
    message = _clean(str(strict_error)) or "not well-formed"
    if any(limit in message.lower() for limit in _LIMITS):
        # A document that trips libxml2's safety limits is hostile or broken: never recover it.
        raise ParseError(url, f"not a sitemap: refused by the XML parser: {message}")
    # The classic: `&` left unescaped in URLs. Escaping the bare ones repairs the document
    # without the losses of recovery mode (which drops "&b" from "?a=1&b=2").
    repaired = _BARE_AMPERSAND.sub(b"&amp;", data)
    if repaired != data:
        try:
            return etree.fromstring(repaired, etree.XMLParser(**options))
        except etree.XMLSyntaxError:
            pass
    try:
        root = etree.fromstring(repaired, etree.XMLParser(recover=True, **options))
    except etree.XMLSyntaxError:
        root = None
    if root is None or _local(root.tag) not in _SITEMAP_ROOTS:
        raise ParseError(url, f"not a sitemap: XML syntax error: {message}")
    return root


def _xml_sitemap(data: bytes, url: str, max_entries: int) -> Sitemap:
    root = _parse_xml(_as_declared_utf8(_stray_bytes_read(data)), url)
    name = _local(root.tag)
    if name == "urlset":
        entries: list[SitemapEntry] = []
        seen: set[str] = set()
        dropped = 0
        # A private sitemap's credential (its URL's user-info) is for its own requests, not
        # part of the addresses of the pages it lists.
        base = without_user_info(url)
        for item in _children(root, "url"):
            entry = _url_entry(item, base)
            if entry is None or entry.url in seen or len(entries) >= max_entries:
                dropped += 1
                continue
            seen.add(entry.url)
            entries.append(entry)
        return Sitemap("urlset", entries=tuple(entries), dropped=dropped)
    if name == "sitemapindex":
        refs: list[SitemapRef] = []
        seen = set()
        dropped = 0
        for item in _children(root, "sitemap"):
            loc = _loc(item, url)
            if loc is None or loc in seen or len(refs) >= max_entries:
                dropped += 1
                continue
            seen.add(loc)
            lastmod, until = parse_w3c_period(_child_text(item, "lastmod")) or (None, None)
            refs.append(SitemapRef(loc, lastmod, until))
        return Sitemap("index", sitemaps=tuple(refs), dropped=dropped)
    if name in _FEED_ROOTS:
        raise ParseError(url, f"not a sitemap: an RSS/Atom feed (root is <{name}>)")
    if name in _HTML_ROOTS:
        raise ParseError(url, "not a sitemap: HTML document")
    raise ParseError(url, f"not a sitemap: no <urlset> or <sitemapindex> root (root is <{name}>)")


def _url_entry(item: Any, base: str) -> SitemapEntry | None:
    loc = _loc(item, base)
    if loc is None:
        return None
    news = next(_children(item, "news"), None)
    title = published = published_until = language = None
    if news is not None:
        # Read as a feed's title is: references escaped twice decoded, markup left out.
        title = text_title(_child_text(news, "title"))
        published, published_until = parse_w3c_period(_child_text(news, "publication_date")) or (
            None,
            None,
        )
        publication = next(_children(news, "publication"), None)
        if publication is not None:
            language = _clean(_child_text(publication, "language"))
    lastmod, lastmod_until = parse_w3c_period(_child_text(item, "lastmod")) or (None, None)
    return SitemapEntry(
        url=loc,
        lastmod=lastmod,
        news_title=title,
        news_published=published,
        news_language=language.lower() if language else None,
        lastmod_until=lastmod_until,
        news_until=published_until,
    )


def _loc(item: Any, base: str) -> str | None:
    """The `<loc>` of a `<url>` or a `<sitemap>` as an http(s) URL (`_http_url`), an `&`
    escaped twice (`?id=1&amp;amp;page=2`, read by XML as `&amp;`) read as one, as a feed's
    link so written is: no URL means `&amp;` in its query."""
    written = _child_text(item, "loc")
    return _http_url(written.replace("&amp;", "&") if written else written, base)


def _children(element: Any, name: str) -> Iterator[Any]:
    return (child for child in element if _local(child.tag) == name)


def _child_text(element: Any, name: str) -> str | None:
    """The text of the first child called `name`; None when there is none, or when it holds a
    reference to an entity of the document's own DTD (never expanded, see _parse_xml)."""
    child = next(_children(element, name), None)
    if child is None or any(isinstance(node, etree._Entity) for node in child.iter()):
        return None
    return "".join(child.itertext())


def _text_sitemap(data: bytes, url: str, max_entries: int) -> Sitemap:
    """The protocol's text format: one URL a line, UTF-8 (read as `url_lines`). Accepted when
    most non-blank lines read up to the `max_entries`-th URL are http(s) URLs, so that an
    arbitrary text file is refused; the lines after it are dropped unread, as an XML sitemap's
    URLs beyond the cap."""
    lines = [line for line in url_lines(data) if line]
    entries: list[SitemapEntry] = []
    seen: set[str] = set()
    dropped = invalid = read = 0
    for line in lines:
        if len(entries) >= max_entries:
            break
        read += 1
        url_like = "://" in line or scheme_less_site_url(line, url).startswith("//")
        loc = _http_url(line, url) if url_like and " " not in line else None
        if loc is None:
            invalid += 1
        elif loc not in seen:
            seen.add(loc)
            entries.append(SitemapEntry(loc))
            continue
        dropped += 1
    if not entries or invalid > read // 2:
        raise ParseError(url, "not a sitemap: neither XML nor a list of URLs")
    return Sitemap("text", entries=tuple(entries), dropped=dropped + len(lines) - read)


# --- sites --------------------------------------------------------------------------------------


def sitemap_sites(url: str, final_url: str, *named_by: str | None) -> tuple[str, ...]:
    """The sites whose URLs (and sitemaps) a sitemap may list as its own (`on_site`): that of
    the URL it was asked for, that of the URL it was served from (a site moved to a new domain
    redirects), and those of `named_by`, the site that named it (the backfill's TARGET and
    where that redirected, the site whose robots.txt listed a sitemap followed as a feed,
    `news.feeds.site_url`): sitemaps.org's cross-submission lets a site's robots.txt name a
    sitemap hosted elsewhere (a CDN) that lists the site's URLs."""
    return (url, final_url, *filter(None, named_by))


def on_site(url: str, sites: Iterable[str]) -> bool:
    """Whether a URL a sitemap lists belongs to the site of one of `sites` (`sitemap_sites`). The
    protocol allows a sitemap the URLs of its own host only; a site's hosts share a registered
    domain (`www.`, `news.`, `m.` of `example.co.uk`), by the Public Suffix List, its private
    part included (two `*.blogspot.com` blogs are two sites); a host without one (an address,
    an unknown suffix) is a site of its own. Ports are not compared."""
    key = _site_key(url)
    return bool(key) and any(key == _site_key(site) for site in sites)


def _site_key(url: str) -> str:
    try:
        host = host_key(urlsplit(url).hostname or "")
    except ValueError:
        return ""
    return registered_domain(host)


# --- values --------------------------------------------------------------------------------------


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(without_controls(value).split()) or None


def _http_url(value: str | None, base: str) -> str | None:
    """An absolute http(s) URL (resolved against `base`, one written without its scheme read
    as `normalize.scheme_less_site_url` reads it), or None."""
    if value and "://" not in value:
        value = scheme_less_site_url(value, base)
    return absolute_http_url(value, base)


def parse_w3c_datetime(value: str | None) -> datetime | None:
    """A W3C Datetime (`2024-05-01`, `2024-05-01T10:30:00+02:00`, ...) as an aware UTC
    datetime; a date or a time without a zone is taken as UTC. The other forms sites write,
    which feeds are read in too (RFC 2822, a Unix time, a day written year last or first in
    digits: `normalize.written_date`), are accepted too. None for anything else. A year or a
    month alone (`2024`, `2024-05`) is its first moment (`parse_w3c_period` gives its last
    too)."""
    period = parse_w3c_period(value)
    return period[0] if period is not None else None


def parse_w3c_period(value: str | None) -> tuple[datetime, datetime | None] | None:
    """A W3C Datetime as `parse_w3c_datetime` reads it, with the last moment of the period it
    stands for where it names a year or a month alone (`2024`, `2024-05`, valid W3C Datetime
    forms that a site may give as a sitemap's `lastmod`): a URL last modified `2024-05` may
    have been modified on any day of May. None beside a day or a time (a date alone, read as
    its midnight, is its whole day: `ingest.backfill.options.latest`). The W3C forms are
    `normalize.w3c_date`'s (a time written with dots, a zone's name after an offset)."""
    text = (value or "").strip()
    if not text:
        return None
    found = w3c_date(text)
    if found is None:
        moment = written_date(text)
        return (start, None) if moment is not None and (start := _in_utc(moment)) else None
    moment, precision = found
    start = _in_utc(moment)
    if start is None:
        return None
    if precision == "day":
        return start, None
    return start, _period_end(start, whole_year=precision == "year")


def _in_utc(moment: datetime) -> datetime | None:
    """`moment` in UTC, a naive one taken to be UTC; None outside datetime's range."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _period_end(start: datetime, *, whole_year: bool) -> datetime:
    """The last moment of the year or the month that begins at `start` (UTC); the calendar's
    last moment for its last year or month."""
    try:
        if whole_year:
            after = start.replace(year=start.year + 1)
        elif start.month == 12:
            after = start.replace(year=start.year + 1, month=1)
        else:
            after = start.replace(month=start.month + 1)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return after - timedelta(microseconds=1)
