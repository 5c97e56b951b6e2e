"""Parse a list of feed URLs for `ingest feeds import`: OPML, or one URL a line. Pure."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html.entities import name2codepoint

from lxml import etree

from ingest.errors import IngestError
from ingest.normalize import (
    url_line,
    utf8_with_windows_1252,
    wide_as_utf8,
    wide_encoding,
    without_feed_scheme,
)


class FeedListError(IngestError):
    pass


@dataclass(frozen=True, slots=True)
class Listed:
    """One URL of a feed list, where it was."""

    url: str
    line: int | None
    """Its line in the file (an OPML outline's line), for messages."""
    site: bool = False
    """An OPML outline with an `htmlUrl` and no `xmlUrl`: a site whose feeds are to be found."""
    attributes: dict[str, str] = field(default_factory=dict)
    """An OPML outline's attributes as written, a namespaced one's name as `{uri}name`."""


def parse_feed_list(data: bytes) -> list[str]:
    """Feed URLs in file order, without duplicates (`read_feed_list` without the sites)."""
    return [entry.url for entry in read_feed_list(data) if not entry.site]


def read_feed_list(data: bytes) -> list[Listed]:
    """The URLs of a feed list in file order, each once, with their lines. OPML `<outline
    xmlUrl=...>` at any depth (an outline with only `htmlUrl` as a site); otherwise one URL a
    line, its first word (a title or a comment after it ignored), blank lines and `#`
    comments ignored. URLs are as written (one in the `feed:` scheme as the http(s) URL it
    stands for, `normalize.without_feed_scheme`): checking them is the caller's."""
    # UTF-8, unless its byte order mark or the NULs of its first characters say UTF-16 or
    # UTF-32 (a Windows tool's "Unicode", which not every one marks): read as the UTF-8 it
    # stands for (`normalize.wide_as_utf8`), its `<?xml` declaration's UTF-16 no longer its
    # bytes' encoding.
    wide = wide_encoding(data) is not None
    data = wide_as_utf8(data)
    head = data[:2048].decode("utf-8-sig", errors="replace").lstrip()[:512].lower()
    if head.startswith("<?xml") or "<opml" in head:
        entries = _opml(data, utf8=wide)
    else:
        # A line (ended by LF, CR or CRLF) is read as a text sitemap's is (`url_line`): a
        # byte that is not UTF-8 is the URL's own, percent-escaped. Its URL is its first
        # word: a URL has no space or tab in it, and what follows (a title, a `# comment`) is
        # a note of the list's author.
        entries = [
            Listed(without_feed_scheme(url), number)
            for number, raw in enumerate(data.splitlines(), start=1)
            if (url := _NOTE.split(url_line(raw, first=number == 1), 1)[0])
            and not url.startswith("#")
        ]
    first: dict[str, Listed] = {}
    for entry in entries:
        first.setdefault(entry.url, entry)
    return list(first.values())


# What parts a line's URL from the note after it.
_NOTE = re.compile(r"[ \t]")
# A `&` that begins no reference (`?cat=1&lang=en`, `Tom & Jerry`), and a reference to one of
# HTML's named characters, which XML does not define (`&eacute;`, `&nbsp;`).
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z_][\w.\-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
_NAMED_REFERENCE = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})


def _opml(data: bytes, *, utf8: bool = False) -> list[Listed]:
    """The outlines of an OPML file; `utf8`: its bytes are UTF-8 whatever its XML declaration
    says (a UTF-16 file read as UTF-8)."""
    # No DTDs, no entity expansion, no network: the file may come from anywhere.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        encoding="utf-8" if utf8 else None,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        repaired = _repaired(data)
        if repaired == data:
            raise FeedListError(f"not a valid OPML file: {e}") from e
        try:
            root = etree.fromstring(repaired, parser)
        except etree.XMLSyntaxError:
            raise FeedListError(f"not a valid OPML file: {e}") from e
    if not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise FeedListError(f"not an OPML file: the root element is <{root.tag}>")
    entries = []
    # An OPML namespace (`xmlns="http://opml.org/spec2"`) changes nothing.
    for el in root.iter("{*}outline"):
        # Attribute names as exporters spell them: `xmlUrl`, `xmlurl`, `xmlURL`.
        named = {str(k).lower(): str(v) for k, v in el.attrib.items()}
        feed = without_feed_scheme(named.get("xmlurl", "").strip())
        site = named.get("htmlurl", "").strip()
        if feed:
            attributes = {str(k): str(v) for k, v in el.attrib.items()}
            entries.append(Listed(feed, el.sourceline, attributes=attributes))
        elif site:
            entries.append(Listed(site, el.sourceline, site=True))
    return entries


def _repaired(data: bytes) -> bytes:
    """An OPML file that is not well-formed XML as exporters get it wrong, repaired without
    loss: a `&` left unescaped (a URL's query, a title's "Tom & Jerry") escaped, HTML's
    named characters (`&eacute;`, a title escaped by PHP's htmlentities()) as the character
    references they stand for, and bytes that are not UTF-8 in a file declared (or presumed)
    UTF-8 read as a feed's and a sitemap's are (`_stray_bytes_read`); a file in UTF-16 or
    UTF-32 is read as UTF-8 before. References to the document's own entities are left as
    they are: those are never expanded."""
    escaped = _NAMED_REFERENCE.sub(_character_reference, _BARE_AMPERSAND.sub(b"&amp;", data))
    return _stray_bytes_read(escaped)


_DECLARED_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\x20-\x7e]*?)[\"']"
)
_URL_ATTRIBUTE = re.compile(rb"""(\b(?:xmlurl|htmlurl)\s*=\s*)("[^"]*"|'[^']*')""", re.IGNORECASE)


def _stray_bytes_read(data: bytes) -> bytes:
    """A file declared UTF-8 (or undeclared) with bytes that are not UTF-8 in it (edited and
    saved as Windows-1252, "ANSI"), made valid UTF-8 as a sitemap is: in a URL attribute the
    bytes are the URL's own, percent-escaped (`normalize.url_line`: a Latin-1 `é` is `%E9`),
    elsewhere Windows-1252 (`normalize.utf8_with_windows_1252`). Any other file as it is:
    valid UTF-8, or declared in another charset (libxml2 read it in that one)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return data
    declared = _DECLARED_ENCODING.match(data)
    if declared is not None:
        try:
            if codecs.lookup(declared[1].decode("ascii")).name != "utf-8":
                return data
        except LookupError:
            return data
    escaped = _URL_ATTRIBUTE.sub(lambda m: m[1] + url_line(m[2]).encode("utf-8"), data)
    return utf8_with_windows_1252(escaped)[0].encode("utf-8")


def _character_reference(match: re.Match[bytes]) -> bytes:
    name = match[1].decode("ascii")
    if name in _XML_ENTITIES or name not in name2codepoint:
        return match[0]
    return b"&#%d;" % name2codepoint[name]
