"""Feed bytes + feed URL -> ParsedFeed: RSS, RDF and Atom through feedparser, JSON Feed by hand.

Pure: no network, no files, no clock. feedparser's untyped dictionaries never leave this module.
"""

from __future__ import annotations

import calendar
import codecs
import io
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final
from urllib.parse import urldefrag, urlsplit
from xml.sax import SAXParseException

import feedparser
from feedparser.datetimes import _parse_date as _feedparser_parse_date
from feedparser.datetimes.rfc822 import _parse_date_rfc822, timezone_names

from ingest.documents.text import (
    block,
    clean_line,
    http_url,
    plain_line,
    title,
)
from ingest.errors import ParseError
from ingest.normalize import (
    MONTH_NAMES,
    TZ_DATABASE_NAME,
    YEAR_FIRST,
    charset_of,
    colon_time,
    hour_of_day,
    is_year_last,
    media_type,
    rfc2822_form,
    scheme_less_host,
    spelled_date,
    stated_zone_name,
    to_utc,
    tz_database_zone,
    unique_tags,
    unix_time,
    utf8_with_windows_1252,
    wide_as_utf8,
    wide_encoding,
    with_charset,
    without_offset_name,
    without_user_info,
    year_last_date,
    zone_offset,
)
from ingest.types import ParsedEntry, ParsedFeed

__all__ = ["looks_like_feed", "parse_feed"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})
_HTML_ROOTS = frozenset({"html", "head", "body"})
# https://www.jsonfeed.org/version/1.1/ ; names as in feedparser's unreleased JSON parser.
_JSON_FEED_VERSIONS = {"1": "json1", "1.1": "json11"}
_JSON_FEED_PREFIX = re.compile(r"^https?://jsonfeed\.org/version/(\S+?)/?$")
# PHP's json_encode() escapes slashes by default: "https:\/\/jsonfeed.org\/version\/1".
_JSON_FEED_MARK = re.compile(rb"jsonfeed\.org\\?/version")

_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.DOTALL | re.IGNORECASE
)
_DOCTYPE_HTML = re.compile(r"<!DOCTYPE\s+html", re.IGNORECASE)
_START_TAG = re.compile(r"\s*<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)")
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?>")
# A declaration naming a two- or four-byte encoding on a document whose first bytes are "<?xml"
# one byte per character (no BOM) is false by construction (XML 1.0, Appendix F); believed, it
# turns the whole feed into garbage and every entry is lost.
_WIDE_DECLARATION = re.compile(
    rb"^(<\?xml[^>]*?encoding\s*=\s*[\"'])"
    rb"(?:utf-?(?:16|32)(?:-?[bl]e)?|ucs-?[24]|iso-10646-ucs-[24]|u16|u32|csunicode|csucs4)"
    rb"([\"'])",
    re.IGNORECASE,
)


# An element's whole text written as a CDATA section whose markers a template escaped with the
# rest (`<description>&lt;![CDATA[&lt;p&gt;Hi&lt;/p&gt;]]&gt;</description>`: Go's
# html/template, PHP's htmlspecialchars over a field already wrapped).
_ESCAPED_CDATA = re.compile(
    rb"(<[A-Za-z][^<>]*>)\s*&lt;!\[CDATA\[(.*?)\]\]&gt;\s*(?=</)", re.DOTALL
)


def _without_escaped_cdata(body: bytes) -> bytes:
    """The document with the escaped markers of a CDATA section that is an element's whole
    text (`_ESCAPED_CDATA`) taken out, its escaped text left as the element's: feedparser
    read the unescaped `<![CDATA[` as a declaration of HTML and dropped the whole field (a
    description, an entry's only text), and kept the markers in a title. Markers inside a
    real CDATA section (a post quoting them in a code sample) are text and stay."""
    if b"&lt;![CDATA[" not in body:
        return body

    def unmarked(match: re.Match[bytes]) -> bytes:
        start = match.start()
        if body.rfind(b"<![CDATA[", 0, start) > body.rfind(b"]]>", 0, start):
            return match[0]
        return match[1] + match[2]

    return _ESCAPED_CDATA.sub(unmarked, body)


def looks_like_feed(body: bytes) -> bool:
    """Cheap sniff: does the body open like RSS, RDF, Atom or a JSON Feed?"""
    kind, _ = _sniff(body)
    if kind == "json":
        # The whole body: JSON keys have no order, "version" may come after the items.
        return _JSON_FEED_MARK.search(_json_as_utf8(body)) is not None
    return kind == "feed"


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse a fetched feed; `url` is where it came from, without its user-info the base for
    relative links: a private feed's credential (`https://user:password@host/feed`) is for the
    feed's own requests, not part of the addresses of the pages it lists.

    Raises ParseError when the body is not a feed or nothing usable could be recovered from it.
    """
    base = without_user_info(url)
    kind, root = _sniff(body)
    if kind == "empty":
        raise ParseError(url, "not a feed: empty body")
    if kind == "json":
        return _parse_json_feed(body, url, base)
    if kind == "html":
        # Fail fast: feedparser finds nothing in a web page, and a large page is slow to walk.
        raise ParseError(url, "not a feed: HTML document")
    body, headers, recoded = _as_utf8(body, headers or {})
    data = _feedparser(body, url, base, headers)

    version = _get(data, "version")
    version = version if isinstance(version, str) else ""
    bozo = _get(data, "bozo_exception") if _get(data, "bozo") else None
    feed = _get(data, "feed")
    feed_language = clean_line(_get(feed, "language"))
    # RFC 4287 4.2.1: an Atom entry without an author has the feed's; feedparser does not apply it.
    feed_author = _author(feed) if version.startswith("atom") else None
    entries = tuple(
        entry
        for raw in _dicts(_get(data, "entries"))
        if (entry := _entry(raw, base, feed_language, feed_author)) is not None
    )

    if not entries and (not version or _is_fatal(bozo)):
        raise ParseError(url, "not a feed: " + _why_unusable(body, kind, root, version, bozo))
    return ParsedFeed(
        version=version or "unknown",
        title=_text_line(_get(feed, "title_detail"), _get(feed, "title")),
        link=_link(_get(feed, "link"), base),
        language=feed_language,
        entries=entries,
        ttl_minutes=_ttl(_get(feed, "ttl")),
        update_minutes=_sy_update_minutes(
            _get(feed, "sy_updateperiod"), _get(feed, "sy_updatefrequency")
        ),
        warning=_describe(bozo, body) if bozo is not None else recoded,
    )


# --- feedparser ---------------------------------------------------------------------------------


_MAX_AUTHOR_SCAN = 256
"""Longest author string feedparser may search for an e-mail address (RFC 5321 caps an
address at 254 octets)."""
_feedparser_sync_author_detail = feedparser.mixin._FeedParserMixin._sync_author_detail


def _bounded_sync_author_detail(self: Any, key: str = "author") -> None:
    """feedparser 6.0.x looks for an e-mail address in every `<author>`, `dc:creator` and
    publisher string with a regex that is quadratic on long near-matches: one 64 KB author
    costs ~20 s of CPU (https://github.com/kurtmckee/feedparser/issues/562), and the worker's
    time limit would then fail the whole feed. A longer string gets what feedparser does when
    it finds no address, without the search: the whole string is the name."""
    context = self._get_context()
    author = dict.get(context, key)
    details = dict.get(context, f"{key}s")
    if isinstance(author, str) and len(author) > _MAX_AUTHOR_SCAN and not (details and details[-1]):
        detail = details[-1] if details else feedparser.FeedParserDict()
        context.setdefault(f"{key}_detail", detail)
        detail["name"] = author
        return
    _feedparser_sync_author_detail(self, key)


feedparser.mixin._FeedParserMixin._sync_author_detail = _bounded_sync_author_detail


def _start_media_description(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser reads media:description as a second `<description>`: the caption of an
    entry's photo became its content, or its summary when it came first. It is kept apart,
    as `media_description` (Media RSS: plain text unless type="html")."""
    self.push_content("media_description", attrs_d, "text/plain", 1)


def _end_media_description(self: Any) -> None:
    self.pop_content("media_description")


feedparser.namespaces.mediarss.Namespace._start_media_description = _start_media_description
feedparser.namespaces.mediarss.Namespace._end_media_description = _end_media_description


def _start_itunes_summary(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser reads itunes:summary (a podcast episode's notes) as a second summary: after
    a <description> it became the entry's content, before one it made the description the
    content, and after a content:encoded it replaced the summary. It is kept apart, as
    `itunes_summary` (plain text, as the iTunes specification has it)."""
    self.push_content("itunes_summary", attrs_d, "text/plain", 1)


def _end_itunes_summary(self: Any) -> None:
    self.pop_content("itunes_summary")


feedparser.namespaces.itunes.Namespace._start_itunes_summary = _start_itunes_summary
feedparser.namespaces.itunes.Namespace._end_itunes_summary = _end_itunes_summary


def _resolve_uri(self: Any, uri: str) -> str:
    """feedparser's resolution of a link against the base in force, a link written as a
    `www.` host without its scheme read as that host's (`ingest.normalize.scheme_less_host`)."""
    resolved: str = feedparser.urls._urljoin(self.baseuri or "", scheme_less_host(uri))
    return resolved


feedparser.mixin._FeedParserMixin.resolve_uri = _resolve_uri


def _link(value: object, base: str) -> str | None:
    """`http_url` of a link of the feed, read as feedparser's are (`_resolve_uri`)."""
    return http_url(scheme_less_host(value) if isinstance(value, str) else value, base)


def _resolving(start: Any) -> Any:
    """A feedparser start handler that reads a `url` or `href` attribute as given (Media RSS,
    RSS `<enclosure>`, `itunes:image`), given it resolved against the base in force there
    (the document's URL, or an `xml:base` on the feed, the entry or the element itself), as
    feedparser resolves links: read as given, it was resolved against the feed's own URL."""

    def resolved(self: Any, attrs_d: dict[str, str]) -> Any:
        for key in ("url", "href"):
            if isinstance(value := attrs_d.get(key), str) and value.strip():
                attrs_d[key] = self.resolve_uri(value.strip())
        return start(self, attrs_d)

    return resolved


for _namespace, _name in (
    (feedparser.namespaces.mediarss.Namespace, "_start_media_content"),
    (feedparser.namespaces.mediarss.Namespace, "_start_media_thumbnail"),
    (feedparser.namespaces._base.Namespace, "_start_enclosure"),
    (feedparser.namespaces.itunes.Namespace, "_start_itunes_image"),
):
    setattr(_namespace, _name, _resolving(getattr(_namespace, _name)))


_start_description_as_feedparser = feedparser.namespaces._base.Namespace._start_description
_end_description_as_feedparser = feedparser.namespaces._base.Namespace._end_description


def _start_description(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser reads a description-like element after another (a `dc:description` beside
    the RSS `<description>`, a second `<description>`) as the entry's content, which would be
    taken for the article's own text, or, after a content:encoded, as the summary in the
    first one's place. It is kept apart, as `description_again`: the entry's summary only
    where it has no other text."""
    context = self._get_context()
    # After a content:encoded, feedparser has copied it into the summary: that is no first
    # description.
    if "summary" in context and not _copies_content(context):
        self._summaryKey = "description_again"
        self.push_content("description_again", attrs_d, "text/html", 1)
    else:
        _start_description_as_feedparser(self, attrs_d)


def _end_description(self: Any) -> None:
    if self._summaryKey == "description_again":
        self.pop_content("description_again")
        self._summaryKey = None
    else:
        _end_description_as_feedparser(self)


feedparser.namespaces._base.Namespace._start_description = _start_description
feedparser.namespaces._base.Namespace._end_description = _end_description
feedparser.namespaces._base.Namespace._end_abstract = _end_description


_end_guid_as_feedparser = feedparser.namespaces._base.Namespace._end_guid


def _end_guid(self: Any) -> None:
    """feedparser makes a permalink `<guid>` (RSS 2.0: unless isPermaLink="false") the
    entry's link only where no `<link>` came before it, and an empty or unusable `<link>` after
    it replaces it: the guid's being a permalink is lost. It is kept, as `guid_permalink`, for
    `_entry_link`."""
    permalink = bool(self.guidislink)
    _end_guid_as_feedparser(self)
    if permalink:
        self._get_context()["guid_permalink"] = True


feedparser.namespaces._base.Namespace._end_guid = _end_guid
feedparser.namespaces._base.Namespace._end_id = _end_guid


_start_item_as_feedparser = feedparser.namespaces._base.Namespace._start_item


def _start_item(self: Any, attrs_d: dict[str, str]) -> None:
    """feedparser keeps an RSS 1.0 item's `rdf:about`, the URI of the resource it describes
    (its page: the specification asks for the `<link>`'s value there), as the entry's id
    alone, as written. It is kept too, resolved as a link is (`resolve_uri`), as
    `rdf_about`, for `_entry_link`: an item that gives no `<link>` is at that address."""
    _start_item_as_feedparser(self, attrs_d)
    about = self._get_attribute(attrs_d, "rdf:about")
    if isinstance(about, str) and about.strip():
        self._get_context()["rdf_about"] = self.resolve_uri(about.strip())


feedparser.namespaces._base.Namespace._start_item = _start_item


def _skipped_entity(self: Any, name: str) -> None:
    """expat skips, without a word, a reference to an entity that no declaration it has read
    defines where the document names an external DTD, which is never read (RSS 0.91's
    Netscape DTD declares HTML's `&eacute;`, `&mdash;`, `&copy;`): `été` became `t`.
    feedparser removes such a DOCTYPE only where it begins a line. A skipped entity makes the
    document one the strict parser cannot read, and feedparser's loose parser, which knows
    HTML's entities, reads it (the feed's warning names the entity). A skipped parameter
    entity (`%name;`) leaves no text out."""
    if not name.startswith("%"):
        raise SAXParseException(f"undefined entity &{name};", None, self._locator)


feedparser.parsers.strict._StrictFeedParser.skippedEntity = _skipped_entity


# The DOCTYPE of a document's prolog (after its XML declaration, comments and processing
# instructions), with its internal subset.
_PROLOG_DOCTYPE = re.compile(
    rb"(?:\s*(?:<\?.*?\?>|<!--.*?-->))*\s*(<!DOCTYPE(?:[^\[>]|\[.*?\])*>)",
    re.DOTALL | re.IGNORECASE,
)
# A general entity's declaration with its value (not one naming a resource, nor a parameter
# entity's), in double or single quotes.
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY\s+([\w.:-]+)\s+(?:\"([^\"]*)\"|'([^']*)')\s*>")
_CHARACTER_REFERENCE = re.compile(rb"&#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}));")
_MAX_ENTITY_VALUE = 1000
"""Longest value of a declared entity that is read (in bytes): a name, a line of boilerplate.
A longer one is the makings of an entity bomb (50 KB referenced 5,000 times)."""
_replace_doctype_as_feedparser = feedparser.api.replace_doctype


def _replace_doctype(data: bytes) -> tuple[str | None, bytes, dict[str, str]]:
    """feedparser's reading of the DOCTYPE (`replace_doctype`: the entities it declares kept
    where their values are text or one character reference), of the DOCTYPE as
    `_entities_on_their_lines` writes it."""
    result: tuple[str | None, bytes, dict[str, str]]
    result = _replace_doctype_as_feedparser(_entities_on_their_lines(data))
    return result


def _entities_on_their_lines(data: bytes) -> bytes:
    """The document with its DOCTYPE's internal subset written as feedparser reads one: the
    DOCTYPE at the start of a line, and in its subset only the general entities' declarations,
    one a line, each value in double quotes with its character references as the characters
    they stand for (but `&`, `<`, `%`, `"` and controls), none longer than
    `_MAX_ENTITY_VALUE`. feedparser finds a DOCTYPE and its declarations only at the start of
    a line and cuts the DOCTYPE at its first `>`: one written after the XML declaration on its
    line kept none of its entities, and one whose subset held two declarations on a line, a
    comment or an element declaration was cut inside it, an XML syntax error. Any other
    document is returned as it is."""
    match = _PROLOG_DOCTYPE.match(data)
    if match is None or b"[" not in match[1]:
        return data
    declared, _, subset = match[1].partition(b"[")
    entities = b"".join(
        b'<!ENTITY %s "%s">\n' % (entity[1], value)
        for entity in _ENTITY_DECLARATION.finditer(subset)
        if (value := _entity_value(entity[2] or entity[3] or b"")) is not None
    )
    return b"%s\n%s[\n%s]>%s" % (data[: match.start(1)], declared, entities, data[match.end(1) :])


def _entity_value(written: bytes) -> bytes | None:
    """A declared entity's value as `_entities_on_their_lines` writes it, or None where it
    is not read."""
    value = _CHARACTER_REFERENCE.sub(_character, written)
    return value if b'"' not in value and len(value) <= _MAX_ENTITY_VALUE else None


def _character(reference: re.Match[bytes]) -> bytes:
    code = int(reference[1], 16) if reference[1] else int(reference[2])
    if code > 0x10FFFF or code < 0x20 or chr(code) in '&<%"' or 0xD800 <= code <= 0xDFFF:
        return reference[0]
    return chr(code).encode("utf-8")


feedparser.api.replace_doctype = _replace_doctype


_loose_feed_as_feedparser = feedparser.api.LooseFeedParser.feed
_loose_entityref_as_feedparser = feedparser.api.LooseFeedParser.handle_entityref
_XML_ENTITIES: Final = frozenset({"lt", "gt", "quot", "amp", "apos"})


def _loose_feed(self: Any, data: str) -> None:
    """feedparser's loose parser, which reads a document expat could not, given as much text
    to expand from the entities the document declares as the document has (`_bounded_entityref`)."""
    self.entity_budget = len(data)
    _loose_feed_as_feedparser(self, data)


def _bounded_entityref(self: Any, ref: str) -> None:
    """feedparser's loose parser expands every reference to an entity the document's DTD
    declares, without a bound: a 50 KB entity referenced 5,000 times (which stops expat at
    its amplification limit, and so comes here) was a 250-million-character title, 750 MB
    and 15 s. Past the document's own length of such text, a reference stays as written, as
    one to an entity nobody declared does."""
    value = self.entities.get(ref) if ref not in _XML_ENTITIES else None
    if isinstance(value, str) and not (value.startswith("&#") and value.endswith(";")):
        self.entity_budget = getattr(self, "entity_budget", 0) - len(value)
        if self.entity_budget < 0:
            if self.elementstack:
                self.elementstack[-1][2].append(f"&{ref};")
            return
    _loose_entityref_as_feedparser(self, ref)


feedparser.api.LooseFeedParser.feed = _loose_feed
feedparser.api.LooseFeedParser.handle_entityref = _bounded_entityref


def _feedparser(body: bytes, url: str, base: str, headers: Mapping[str, str]) -> Any:
    lowered = {key.lower(): value for key, value in headers.items()}
    response_headers = {
        "content-location": base,
        # Without a Content-Type feedparser falls back to RFC 2616's ISO-8859-1 and garbles
        # undeclared UTF-8; application/xml makes it follow the XML rules (prolog, BOM, UTF-8).
        "content-type": lowered.get("content-type") or "application/xml",
    }
    if lowered.get("content-language"):
        response_headers["content-language"] = lowered["content-language"]
    try:
        # A stream, never bytes or str: feedparser opens anything that looks like a URL or a path.
        return feedparser.parse(
            io.BytesIO(_without_escaped_cdata(_WIDE_DECLARATION.sub(rb"\1utf-8\2", body, count=1))),
            response_headers=response_headers,
            resolve_relative_uris=True,
            sanitize_html=True,
        )
    except Exception as e:
        # The bytes come from the network: a crash inside the parser is a property of the document.
        raise ParseError(url, f"not a feed: feedparser failed: {type(e).__name__}: {e}") from e


_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([\x20-\x7e]*?)[\"']")


def _as_utf8(
    body: bytes, headers: Mapping[str, str]
) -> tuple[bytes, Mapping[str, str], str | None]:
    """The body and headers feedparser is given, and a note of what was read otherwise than
    labelled (None where nothing was). A UTF-8 document (declared so, or undeclared) with
    bytes that are not UTF-8, usually Windows-1252 text pasted into it, is made valid UTF-8
    with those bytes read as Windows-1252: feedparser would decode the whole document in the
    first charset that accepts every byte, and turn all of its other non-ASCII text into
    mojibake. A document whose bytes are valid UTF-8, non-ASCII among them, but labelled with
    another charset, by its server's Content-Type (a default for all its files) or by its own
    XML declaration (a template kept after the site moved to UTF-8), is relabelled UTF-8:
    valid UTF-8 is all but never meant as another charset, the rule a page is read by
    (`ingest.extract.page.decode_page`). A document in another charset, whose bytes are not
    UTF-8, is read in it, unless it opens with UTF-8's BOM: it is then UTF-8, whatever it is
    labelled, those bytes read as Windows-1252. A UTF-16 or UTF-32 one is read as its BOM or
    its NULs say (`_wide_as_utf8`)."""
    if (encoding := wide_encoding(body)) is not None:
        return _wide_as_utf8(body, headers, encoding)
    lowered = {key.lower(): value for key, value in headers.items()}
    content_type = lowered.get("content-type")
    bom = codecs.BOM_UTF8 if body.startswith(codecs.BOM_UTF8) else b""
    head = body.removeprefix(bom)
    declared = _DECLARED_ENCODING.match(head)
    labels = (charset_of(content_type) or "", declared.group(1).decode() if declared else "")
    others = [label for label in labels if label and not _is_utf8(label)]
    note = f"declared {others[0]}, read as UTF-8" if others else None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        # UTF-8's BOM outweighs any label (RFC 7303 section 3.3).
        if others and not bom:
            return body, headers, None
        text, _ = utf8_with_windows_1252(head)
        head = text.encode("utf-8")
        declared = _DECLARED_ENCODING.match(head)
        body = bom + head
        note = f"invalid UTF-8 at byte {e.start}, read as Windows-1252"
    else:
        # ASCII bytes read the same in any other charset but a seven-bit one (ISO-2022-JP)
        # and a wide one. A document in UTF-16 or UTF-32 has NULs (its markup's ASCII
        # characters); one without any is not one, whatever its server says.
        wide = any(map(_is_wide, others))
        if not others or (wide and b"\x00" in body) or (body.isascii() and not wide):
            return body, headers, None
    if not others:
        return body, headers, note
    if declared is not None and declared.group(1).decode() in others:
        body = bom + head[: declared.start(1)] + b"utf-8" + head[declared.end(1) :]
    if content_type is not None and charset_of(content_type) in others:
        lowered["content-type"] = with_charset(content_type, "utf-8")
    return body, lowered, note


def _wide_as_utf8(
    body: bytes, headers: Mapping[str, str], encoding: str
) -> tuple[bytes, Mapping[str, str], str | None]:
    """A document in UTF-16 or UTF-32, told by its BOM or by the NULs of its markup (XML 1.0
    Appendix F: `normalize.wide_encoding`), as UTF-8, its XML declaration
    and its Content-Type's charset saying so, and a note naming a label that said otherwise.
    A BOM or those NULs outweigh any label (RFC 7303 section 3.3): a server's default charset
    (`ISO-8859-1`, `utf-8`) or a template's declaration (`windows-1252`), believed, made
    the document an XML syntax error and every entry was lost."""
    data = body.decode(encoding, errors="replace").removeprefix("\ufeff").encode("utf-8")
    lowered = {key.lower(): value for key, value in headers.items()}
    labels = []
    if declared := _DECLARED_ENCODING.match(data):
        labels.append(declared.group(1).decode())
        data = data[: declared.start(1)] + b"utf-8" + data[declared.end(1) :]
    content_type = lowered.get("content-type")
    if content_type is not None and (charset := charset_of(content_type)) is not None:
        labels.append(charset)
        lowered["content-type"] = with_charset(content_type, "utf-8")
    others = [label for label in labels if not _is_wide(label)]
    return data, lowered, f"declared {others[0]}, read as {encoding.upper()}" if others else None


def _is_wide(label: str) -> bool:
    try:
        return codecs.lookup(label).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        return False


def _is_utf8(label: str) -> bool:
    try:
        return codecs.lookup(label).name == "utf-8"
    except LookupError:
        return False


def _is_fatal(bozo: object) -> bool:
    """Syntax errors count when nothing was recovered; content-type and charset notes do not."""
    return bozo is not None and not isinstance(bozo, feedparser.ThingsNobodyCaresAboutButMe)


def _describe(exc: object, body: bytes) -> str:
    if isinstance(exc, SAXParseException):
        line = exc.getLineNumber()
        # feedparser prepends an XML declaration when there is none, shifting every line by one.
        if isinstance(line, int) and line > 1 and not _has_xml_declaration(body):
            line -= 1
        return f"XML syntax error at line {line}: {exc.getMessage()}"
    return clean_line(f"{type(exc).__name__}: {exc}") or type(exc).__name__


def _has_xml_declaration(body: bytes) -> bool:
    head = body[:256].replace(b"\x00", b"")
    for bom in (codecs.BOM_UTF8, b"\xfe\xff", b"\xff\xfe"):
        head = head.removeprefix(bom)
    return _XML_DECLARATION.match(head) is not None


def _why_unusable(body: bytes, kind: str, root: str | None, version: str, bozo: object) -> str:
    if bozo is not None and _is_fatal(bozo):
        if kind == "other":
            return "neither XML nor JSON"
        return _describe(bozo, body) + (" (no entries recovered)" if version else "")
    if root:
        return f"no RSS, Atom or RDF root element (root is <{root}>)"
    return "no RSS, Atom or RDF root element"


def _get(obj: object, key: str) -> Any:
    """One field of a feedparser dict, read with dict.get on purpose.

    FeedParserDict.get() aliases keys: "updated_parsed" silently falls back to "published_parsed"
    (with a DeprecationWarning), "description" to "summary", "url" to "href".
    """
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _copies_content(entry: object) -> bool:
    """Whether a feedparser entry's summary is its content's copy: feedparser copies the
    content into an absent summary, and that copy is not a summary."""
    summary = _get(entry, "summary")
    return any(_get(c, "value") == summary for c in _dicts(_get(entry, "content")))


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _entry(
    raw: dict[str, Any], base: str, feed_language: str | None, feed_author: str | None
) -> ParsedEntry | None:
    guid = clean_line(_get(raw, "id"))
    link = _entry_link(raw, base)
    if guid is None and link is None:
        return None
    contents = _dicts(_get(raw, "content"))
    summary_detail, summary = _get(raw, "summary_detail"), _get(raw, "summary")
    if _copies_content(raw):
        summary_detail = summary = None
    longest = max(contents, key=lambda c: len(_get(c, "value") or ""), default=None)
    if longest is None and not (isinstance(summary, str) and summary.strip()):
        # A second description, a podcast episode's notes, or the description of the entry's
        # media in a video or photo feed, is then its only text (an empty <description/> is
        # none).
        summary_detail = (
            _get(raw, "description_again_detail")
            or _get(raw, "itunes_summary_detail")
            or _get(raw, "media_description_detail")
        )
    return ParsedEntry(
        guid=guid,
        link=link,
        title=_text_line(_get(raw, "title_detail"), _get(raw, "title")),
        # RFC 4287 4.2.1: an Atom entry without an author has its atom:source's (the feed an
        # aggregator copied it from), then the feed's.
        author=_author(raw) or _author(_get(raw, "source")) or feed_author,
        published_at=_entry_date(raw, "published"),
        updated_at=_entry_date(raw, "updated"),
        summary=_text_block(summary_detail, summary),
        content=_text_block(longest, None),
        image_url=_image_url(raw, base),
        language=_entry_language(raw, contents) or feed_language,
        tags=unique_tags(_get(t, "label") or _get(t, "term") for t in _dicts(_get(raw, "tags"))),
    )


_PAGE_TYPES: Final = ("text/html", "application/xhtml+xml")
"""Media types of an Atom entry's alternate link that is its web page (a link without one is
taken for it)."""


def _entry_link(raw: dict[str, Any], base: str) -> str | None:
    """The entry's page: the link it gives (`_given_link`), else its permalink guid, else its
    RSS 1.0 `rdf:about`. A link to a site's root (`https://example.com/`: a template giving
    every item the channel's link) is no article's page where the permalink guid names
    another: that page is the entry's."""
    permalink = _page_link(_get(raw, "id"), base) if _get(raw, "guid_permalink") else None
    given = _given_link(raw, base)
    if given is not None and not (_is_root(given) and permalink and not _is_root(permalink)):
        return given
    # RSS 2.0: a permalink guid is the item's address, where its <link> gives none.
    # RSS 1.0: the resource an item describes, its `rdf:about`, is its page.
    return permalink or given or _page_link(_get(raw, "rdf_about"), base)


def _given_link(raw: dict[str, Any], base: str) -> str | None:
    # FeedBurner's <link> is a redirect through feedproxy.google.com (shut down since);
    # `feedburner:origLink` is the article's own address. Checked as any link is.
    if original := _page_link(_get(raw, "feedburner_origlink"), base):
        return original
    for link in _dicts(_get(raw, "links")):
        if (
            (_get(link, "rel") or "alternate") == "alternate"
            and (media_type(_get(link, "type")) or "text/html") in _PAGE_TYPES
            and (href := _page_link(_get(link, "href"), base))
        ):
            return href
    return _page_link(_get(raw, "link"), base)


def _is_root(url: str) -> bool:
    """Whether a URL is a site's root, its home page (`https://example.com/`, a fragment
    aside), which is no article's page."""
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


def _page_link(value: object, base: str) -> str | None:
    """An entry's link as `http_url` reads it, unless it leads back to the feed document
    itself (`<link>#</link>`, an Atom `href=""`, the feed's own address): that is no page of
    the entry's."""
    href = _link(value, base)
    return None if href is None or urldefrag(href).url == urldefrag(base).url else href


def _author(raw: object) -> str | None:
    # feedparser's `author` is one of several: the last Atom <author>, the first dc:creator.
    names = [n for a in _dicts(_get(raw, "authors")) if (n := plain_line(_get(a, "name")))]
    if len(names) > 1:
        return ", ".join(dict.fromkeys(names))
    name = _get(_get(raw, "author_detail"), "name")
    return plain_line(name) or plain_line(_get(raw, "author"))


def _entry_language(raw: dict[str, Any], contents: list[dict[str, Any]]) -> str | None:
    # xml:lang (and Content-Language) only reach feedparser's per-field details.
    details = [*contents, _get(raw, "summary_detail"), _get(raw, "title_detail")]
    candidates = [_get(raw, "language"), *(_get(d, "language") for d in details)]
    return next((lang for c in candidates if (lang := clean_line(c))), None)


def _image_url(raw: dict[str, Any], base: str) -> str | None:
    media = _dicts(_get(raw, "media_content"))
    images = [m for m in media if _is_image(_get(m, "medium"), _get(m, "type"))]
    # Publishers list several renditions of one picture; the widest is the article image.
    images.sort(key=lambda m: -_int(_get(m, "width"), 0))
    thumbnails = _dicts(_get(raw, "media_thumbnail"))
    enclosures = [
        link
        for link in _dicts(_get(raw, "links"))
        if _get(link, "rel") == "enclosure" and str(_get(link, "type") or "").startswith("image/")
    ]
    candidates = [_get(m, "url") for m in images + thumbnails]
    candidates += [_get(e, "href") for e in enclosures]
    candidates.append(_get(_get(raw, "image"), "href"))  # an item's itunes:image
    return next((u for c in candidates if (u := _link(c, base))), None)


def _is_image(medium: object, mime: object) -> bool:
    if medium or mime:
        return medium == "image" or str(mime or "").startswith("image/")
    # Many publishers give media:content neither medium nor type; those are nearly always images.
    return True


def _entry_date(raw: dict[str, Any], key: str) -> datetime | None:
    """An entry's `published` or `updated` date as feedparser read it, in UTC; None where it
    names a zone no reader here knows (`_unread_zone`)."""
    written = _get(raw, key)
    if isinstance(written, str) and is_year_last(written):
        return _year_last(written)
    if isinstance(written, str) and (_unread_zone(written) or _no_day_year_first(written)):
        return None
    return _from_struct(_get(raw, f"{key}_parsed"))


def _year_last(value: str) -> datetime | None:
    """A date written with its year last in digits, as `normalize.year_last_date` reads it
    (none where the day and the month could be either), in UTC. feedparser's ISO 8601 parser
    read `11-08-2025 12:30` as 20 August 2011."""
    when = year_last_date(value)
    try:
        return None if when is None else to_utc(when)
    except (OverflowError, ValueError):
        return None


def _unread_zone(value: str) -> bool:
    """Whether a date's time is followed by a zone's name that neither `ZONE_OFFSETS` nor
    feedparser knows (`08:15:00 IST`, `08:15:00 IST 2025`: Indian, Irish or Israeli), or a
    tz database's name it does not have (`Europe/Nowhere`).
    feedparser reads such a name as UTC, hours off (all three ahead of it: the article dated
    in the future); it is no date, as a page's or a sitemap's is."""
    words = value.split()
    if words and TZ_DATABASE_NAME.fullmatch(words[-1]):
        return tz_database_zone(words[-1]) is None
    name = stated_zone_name(value)
    return (
        name is not None
        and name.lower() not in ("am", "pm")
        and zone_offset(name) is None
        and name.lower() not in timezone_names
    )


def _no_day_year_first(value: str) -> bool:
    """Whether a date is written year first (`normalize.YEAR_FIRST`: `2025/13/11`) but names
    no day and time `_year_first` reads (month 13, 30 February, `13:00 PM`). feedparser's ISO
    8601 parser takes its four digits for a year alone and dates it the first of the month
    the feed is parsed in: a date that moves with the clock. It is no date, as a sitemap's
    and a page's is (`normalize.year_first_date`)."""
    if not value.lstrip()[:4].isdigit():  # an RFC 822 date, the usual one: no search
        return False
    written = colon_time(value)
    return YEAR_FIRST.fullmatch(written) is not None and _year_first(written) is None


def _from_struct(value: object) -> datetime | None:
    """feedparser's *_parsed values are struct_time in UTC."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        # timegm() rather than datetime(*value[:6]): it normalizes leap seconds (tm_sec=60).
        return _EPOCH + timedelta(seconds=calendar.timegm(value))
    except (OverflowError, ValueError):
        return None


_DAY_NAMES = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})


def _rfc822_with_zone(value: str) -> time.struct_time | None:
    """An RFC 822 date whose zone `normalize.zone_offset` reads (one of `ZONE_OFFSETS`, an
    offset written `UTC+05:30` or `GMT+2`, which feedparser reads as UTC or not at all), or
    that names its day and gives a time but no zone (read as UTC, as feedparser reads one
    without the day name; it loses this one), or whose year is short (read as RFC 2822 says,
    `full_year`), or whose day is RFC 850's (`Sunday, 06-Nov-94`: `rfc2822_form`), in UTC; None
    for any other, left to feedparser's own parsers."""
    full = rfc2822_form(value)
    parts = full.split()
    if not parts:
        return None
    if (zone := tz_database_zone(parts[-1])) is not None:
        return _in_zone(_rfc822([*parts[:-1], "+0000"]), zone)
    offset = _numeric_zone(parts[-1])
    if offset is not None:
        parts[-1] = offset
    elif len(parts) == 5 and parts[0][:3].lower() in _DAY_NAMES and ":" in parts[-1]:
        parts.append("+0000")
    elif full == value:
        return None
    return _rfc822(parts)


def _in_zone(wall_clock: time.struct_time | None, zone: tzinfo) -> time.struct_time | None:
    """A date's wall-clock time (read as if in UTC) in `zone` (a tz database zone, whose
    offset depends on the day), in UTC."""
    when = _from_struct(wall_clock)
    try:
        return None if when is None else when.replace(tzinfo=zone).astimezone(UTC).timetuple()
    except (OverflowError, ValueError):
        return None


def _numeric_zone(word: str) -> str | None:
    """A zone `normalize.zone_offset` reads (a name of `ZONE_OFFSETS`, `UTC+05:30`, `GMT+2`)
    as the `+hhmm` feedparser reads; None for another word."""
    zone = zone_offset(word)
    offset = None if zone is None else zone.utcoffset(None)
    if offset is None:
        return None
    minutes = int(offset.total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _rfc822(parts: list[str]) -> time.struct_time | None:
    """An RFC 822 date's words (`2 May 2024 08:30:00 CEST`) read by feedparser, the zone
    read by `normalize.zone_offset` first (`ZONE_OFFSETS`, `UTC+05:30`), in UTC."""
    if parts and (offset := _numeric_zone(parts[-1])) is not None:
        parts = [*parts[:-1], offset]
    parsed = _parse_date_rfc822(" ".join(parts))
    return parsed if isinstance(parsed, time.struct_time) else None


# A date written year first as ISO 8601 writes its day, then the time after a space and a
# zone's name (or an offset after `GMT` or `UTC`, as `normalize.zone_offset` reads them, or a
# tz database zone) or AM/PM (`2025-06-02 08:15:00 GMT`, PHP's `Y-m-d H:i:s T`; `2025-06-02
# 08:15:00 GMT+02:00`; `2025-06-02 08:15:00 Europe/Berlin`, PHP's `e`; `2025-06-02 8:15 PM`):
# feedparser's ISO 8601 parser stops at the space and dates it that day at midnight, or at
# 8:15 in the morning, or in UTC. Without either it reads it whole; with a `T` and an offset
# it is ISO 8601 and stays feedparser's.
_DASHED_ZONE_NAME = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+|T)(\d{1,2}):(\d{2}(?::\d{2})?)(?:[.,]\d+)?"
    r"(?:\s*([AP]M))?(?:\s+(?![AP]M\s*$)"
    r"([A-Z]{1,5}|(?:UTC|GMT|UT)[+-]\d{1,2}(?::?\d{2})?|[A-Z]+(?:/[A-Z0-9_+-]+)+))?\s*",
    re.IGNORECASE,
)


def _year_first(value: str) -> time.struct_time | None:
    """A date written as `normalize.YEAR_FIRST` or `_DASHED_ZONE_NAME` matches, in UTC: read
    as the RFC 822 date it spells (`2 May 2024 20:30:00 +0900`), a zone-less one as UTC, its
    zone's name read by feedparser's table too (`CST` as the US's, as in an RFC 822 date).
    feedparser's ISO 8601 parser takes the four digits for a year alone and dates it the
    current month's first day, or drops the time before a zone's name; None for any other
    text."""
    match = YEAR_FIRST.fullmatch(value)
    if (
        match is None
        and (dashed := _DASHED_ZONE_NAME.fullmatch(value))
        and (dashed[6] or dashed[7])
    ):
        match = dashed
    if match is None or not 1 <= int(match[2]) <= 12:
        return None
    year, month, day, hour, rest, half, zone = match.groups()
    clock = None
    if hour is not None:
        if half is not None:
            if not 1 <= int(hour) <= 12:  # `13:00 PM`
                return None
            hour = str(hour_of_day(int(hour), half))  # 12 AM is midnight, 12 PM noon
        clock = f"{hour}:{rest}"
    month_name = MONTH_NAMES[int(month) - 1][:3].title()
    if zone and "/" in zone and (named := tz_database_zone(zone)) is not None:
        # A tz database zone's offset depends on the day: the wall-clock time read in it.
        return _in_zone(_rfc822([day, month_name, year, *filter(None, (clock,)), "+0000"]), named)
    return _rfc822([day, month_name, year, *filter(None, (clock, zone))])


def _spelled(value: str) -> time.struct_time | None:
    """A date written with its month's name (`June 2, 2025`, `Jun 2, 2025 8:15 AM EDT`, `Mon,
    02 Jun 2025 8:15:00 PM EDT`), read by the rule a page's is (`normalize.spelled_date`), a
    zone-less one as UTC, in UTC; None for any other text, left to the parsers below.
    feedparser has no reading of a month written first or of a 12-hour clock: it loses the
    first and reads 8:15 PM EDT as 08:15 UTC, 16 hours early."""
    when = spelled_date(value)
    return None if when is None else to_utc(when).timetuple()


def _iso_8601(value: str) -> time.struct_time | None:
    """An ISO 8601 date or date-time as Python reads it (`datetime.fromisoformat`), a
    zone-less one as UTC, in UTC; None for any other text, left to the parsers below.
    feedparser misreads an offset written without its colon (`+0530`, PHP's `DATE_ISO8601`:
    India's read as +05:00, Nepal's `+0545` as +05:05) and dates ISO 8601's basic format
    (`20250602T081500+0530`) at midnight."""
    try:
        when = _iso_in_utc(value)
    except ValueError:
        return None
    return None if when is None else when.timetuple()


def _unix_time(value: str) -> time.struct_time | None:
    """A date written as a Unix time (`normalize.unix_time`: `1667724577`, JavaScript's
    milliseconds `1667724577000`), in UTC; None for any other text. feedparser's ISO 8601
    parser took its first four digits for a year (1667724577 was 1667-12-01)."""
    when = unix_time(value)
    return None if when is None else when.utctimetuple()


def _dotted_time(value: str) -> time.struct_time | None:
    """A date whose time of day is written with dots (`2025-08-11 12.30`, `Mon, 11 Aug 2025
    12.30 +0200`), read as `normalize.colon_time` writes it, or whose offset is followed by
    its zone's name (`2025-08-11 14:00:00 -0400 EDT`), read without the name
    (`normalize.without_offset_name`), by the readers here and feedparser's, in UTC; None
    for any other text. feedparser's ISO 8601 parser read the first as 12:00 (`2025/08/11
    12.30` as 1 December) and its RFC 822 parser none; the second at midnight."""
    written = without_offset_name(colon_time(value))
    if written == value:
        return None
    parsed = _feedparser_parse_date(written)
    return parsed if isinstance(parsed, time.struct_time) else None


feedparser.registerDateHandler(_rfc822_with_zone)
feedparser.registerDateHandler(_year_first)
feedparser.registerDateHandler(_spelled)
feedparser.registerDateHandler(_iso_8601)
feedparser.registerDateHandler(_unix_time)
feedparser.registerDateHandler(_dotted_time)


def _ttl(value: object) -> int | None:
    minutes = _int(value, -1)
    return minutes if minutes >= 0 else None


_SY_PERIOD_MINUTES = {
    "hourly": 60,
    "daily": 1440,
    "weekly": 10080,
    "monthly": 43200,
    "yearly": 525600,
}


def _sy_update_minutes(period: object, frequency: object) -> int | None:
    """RSS 1.0 syndication module: `updateFrequency` updates per `updatePeriod` (default daily
    and 1 when absent, per the module's spec; a frequency that is no positive number is 1);
    None when the feed says nothing, or names a period the module does not (`fortnightly`,
    an empty one): like a `<ttl>` that is no number, it is ignored rather than guessed, and
    read as the default, daily, it would have a feed publishing every minute polled daily."""
    if period is None and frequency is None:
        return None
    if period is None:
        minutes = _SY_PERIOD_MINUTES["daily"]
    elif isinstance(period, str) and period.strip().lower() in _SY_PERIOD_MINUTES:
        minutes = _SY_PERIOD_MINUTES[period.strip().lower()]
    else:
        return None
    times = _int(frequency, 1) or 1
    return max(1, minutes // times)


def _int(value: object, default: int) -> int:
    text = value.strip() if isinstance(value, str) else ""
    # isdecimal() is also true for non-ASCII digits, which int() accepts too; cap the length.
    return int(text) if text.isdecimal() and len(text) <= 9 else default


# --- JSON Feed -----------------------------------------------------------------------------------


def _json_as_utf8(body: bytes) -> bytes:
    """A JSON document in UTF-16 or UTF-32 (with a BOM or without, told by its NULs as
    Python's json tells them: `normalize.wide_as_utf8`) as UTF-8; any other unchanged. RFC
    8259 asks for UTF-8, but a Windows tool's "Unicode" is UTF-16."""
    return wide_as_utf8(body)


def _parse_json_feed(body: bytes, url: str, base: str) -> ParsedFeed:
    warning = None
    body = _json_as_utf8(body)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        text = body.decode("utf-8-sig", errors="replace")
        warning = f"invalid UTF-8 at byte {e.start}, replaced"
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ParseError(url, f"not a feed: invalid JSON: {e}") from e
    version_url = document.get("version") if isinstance(document, dict) else None
    match = _JSON_FEED_PREFIX.match(version_url) if isinstance(version_url, str) else None
    if match is None or not isinstance(document, dict):
        raise ParseError(url, "not a feed: JSON document that is not a JSON Feed")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "not a feed: JSON Feed without an items array")

    language = clean_line(document.get("language"))
    feed_author = _json_authors(document)
    entries = tuple(
        entry
        for item in items
        if isinstance(item, dict)
        and (entry := _json_entry(item, base, language, feed_author)) is not None
    )
    return ParsedFeed(
        version=_JSON_FEED_VERSIONS.get(match.group(1), "json"),
        title=title(document.get("title")),
        link=_link(document.get("home_page_url"), base),
        language=language,
        entries=entries,
        warning=warning,
    )


def _json_entry(
    item: dict[str, Any], base: str, feed_language: str | None, feed_author: str | None
) -> ParsedEntry | None:
    raw_id = item.get("id")
    # The spec: "If the id is presented as a number or other type, a JSON Feed reader must
    # coerce it to a string." Booleans and containers are not identifiers.
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    guid = clean_line(raw_id)
    # "external_url": the page elsewhere that the item is about (a link blog's item); where
    # the item has no page of its own, that page is its story.
    link = _page_link(item.get("url"), base) or _page_link(item.get("external_url"), base)
    if guid is None and link is None:
        return None
    content_html, content_text = item.get("content_html"), item.get("content_text")
    content: str | None
    if isinstance(content_html, str) and content_html.strip():
        content = block(content_html, is_html=True)
    else:
        content = block(content_text) if isinstance(content_text, str) else None
    images = [item.get("image")] + [
        a.get("url")
        # `"attachments": true` (or a number) is not a list; iterating it raised TypeError.
        for a in _list(item.get("attachments"))
        if isinstance(a, dict) and str(a.get("mime_type") or "").startswith("image/")
    ]
    return ParsedEntry(
        guid=guid,
        link=link,
        title=title(item.get("title")),
        author=_json_authors(item) or feed_author,
        published_at=_from_iso(item.get("date_published")),
        updated_at=_from_iso(item.get("date_modified")),
        summary=block(summary) if isinstance(summary := item.get("summary"), str) else None,
        content=content or None,
        image_url=next((u for c in images if (u := _link(c, base))), None),
        language=clean_line(item.get("language")) or feed_language,
        tags=unique_tags(_list(item.get("tags"))),
    )


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _json_authors(obj: dict[str, Any]) -> str | None:
    # 1.1 has "authors"; 1.0 had a single "author", which 1.1 still allows readers to honour:
    # read where "authors" names nobody (a feed moving to 1.1 may write both, one empty).
    for authors in (obj.get("authors"), [obj.get("author")]):
        if isinstance(authors, list):
            names = [n for a in authors if isinstance(a, dict) and (n := plain_line(a.get("name")))]
            if names:
                return ", ".join(names)
    return None


def _from_iso(value: object) -> datetime | None:
    """A JSON Feed date: RFC 3339, else what feedparser's readers and those here read (RFC
    822, `_unix_time`); a JSON number, which the spec does not allow but a script's
    `Date.now()` writes, as the Unix time its digits are (`_unix_time`), as in an RSS feed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_struct(_unix_time(str(value)))
    if not isinstance(value, str) or not value.strip():
        return None
    if is_year_last(value):
        return _year_last(value)
    value = without_offset_name(colon_time(value))
    try:
        return _iso_in_utc(value)
    except ValueError:
        # Not RFC 3339; some JSON feeds use RFC 822 dates. feedparser's parser is the lenient one.
        if _unread_zone(value) or _no_day_year_first(value):
            return None
        return _from_struct(_feedparser_parse_date(value))


def _iso_in_utc(value: str) -> datetime | None:
    """An ISO 8601 date or date-time (`datetime.fromisoformat`) in UTC, a zone-less one taken
    as UTC (RFC 3339 requires an offset; UTC is the usual intent); None for a moment outside
    datetime's range (year 1 with a positive offset, year 9999 with a negative one). Raises
    ValueError for text that is not ISO 8601."""
    parsed = datetime.fromisoformat(value.strip())
    try:
        return to_utc(parsed)
    except OverflowError:
        return None


# --- text fields -----------------------------------------------------------------------------


def _text_line(detail: object, fallback: object) -> str | None:
    """A one-line field (title) from feedparser's value and its declared type."""
    value, is_html = _detail(detail, fallback)
    return title(value, is_html)


def _text_block(detail: object, fallback: object) -> str | None:
    """A multi-paragraph field (summary, content): paragraphs separated by blank lines."""
    value, is_html = _detail(detail, fallback)
    if value is None:
        return None
    return block(value, is_html)


def _detail(detail: object, fallback: object) -> tuple[str | None, bool]:
    value = _get(detail, "value")
    if isinstance(value, str):
        return value, "html" in str(_get(detail, "type") or "")
    return (fallback, True) if isinstance(fallback, str) else (None, False)


# --- sniffing ----------------------------------------------------------------------------------


def _sniff(body: bytes) -> tuple[str, str | None]:
    """('empty'|'json'|'html'|'feed'|'xml'|'other', root element name) from the first bytes."""
    text = _head(body).lstrip("\ufeff \t\r\n")
    if not text:
        # Empty if nothing but byte-order marks, whitespace and NULs, even past the head.
        padding = codecs.BOM_UTF8 + codecs.BOM_UTF16_LE + b" \t\r\n\x00"
        return ("other", None) if body.lstrip(padding) else ("empty", None)
    if text[0] in "{[":
        return "json", None
    kind, root = _sniff_markup(text)
    if kind not in ("feed", "html") and (declaration := text.find("<?xml", 1)) > 0:
        # A PHP warning or notice printed before the document (which also kept the script
        # from setting its Content-Type): what follows the XML declaration is the document,
        # as feedparser's loose parser reads it. An XHTML page is an HTML document so found.
        after = _sniff_markup(text[declaration:])
        if after[0] in ("feed", "html"):
            return after
    return kind, root


def _sniff_markup(text: str) -> tuple[str, str | None]:
    """`_sniff` of a text that is not JSON: the root element after the prolog."""
    position, doctype_html = 0, False
    while match := _PROLOG.match(text, position):
        doctype_html = doctype_html or _DOCTYPE_HTML.match(match.group(0).lstrip()) is not None
        position = match.end()
    start = _START_TAG.match(text, position)
    root = start.group(1) if start else None
    local = root.rpartition(":")[2].lower() if root else ""
    if local in _FEED_ROOTS:
        return "feed", root
    if doctype_html or local in _HTML_ROOTS:
        return "html", root
    return ("xml" if text.startswith("<") else "other"), root


def _head(body: bytes, size: int = 4096) -> str:
    """The first bytes as text, enough to find the root element; exact decoding is not needed.
    A BOM, or the NULs of UTF-16 or UTF-32 without one, name the encoding (`json.detect_encoding`:
    XML 1.0 Appendix F's rule, and RFC 4627's for JSON); other bytes are read one a character."""
    chunk = body[:size]
    encoding = json.detect_encoding(chunk)
    if encoding == "utf-8":
        return chunk.decode("latin-1")
    return chunk.decode(encoding, errors="ignore")
