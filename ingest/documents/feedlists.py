"""Parse a list of feed URLs for `ingest feeds import`: OPML, or one URL a line. Pure."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from lxml import etree

from ingest.errors import IngestError


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
    line, blank lines and `#` comments ignored. URLs are as written: checking them is the
    caller's."""
    # UTF-8 unless a byte order mark says UTF-16 (as Windows tools write); the mark comes
    # before the `<?xml` declaration that says the file is XML.
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    encoding = "utf-16" if utf16 else "utf-8-sig"
    head = data[:2048].decode(encoding, errors="replace").lstrip()[:512].lower()
    if head.startswith("<?xml") or "<opml" in head:
        entries = _opml(data)
    else:
        text = data.decode(encoding, errors="replace")
        entries = [
            Listed(line.strip(), number)
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.strip().startswith("#")
        ]
    first: dict[str, Listed] = {}
    for entry in entries:
        first.setdefault(entry.url, entry)
    return list(first.values())


def _opml(data: bytes) -> list[Listed]:
    # No DTDs, no entity expansion, no network: the file may come from anywhere.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise FeedListError(f"not a valid OPML file: {e}") from e
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise FeedListError(f"not an OPML file: the root element is <{root.tag}>")
    entries = []
    for el in root.iter("outline"):
        feed = (el.get("xmlUrl") or el.get("xmlurl") or "").strip()
        site = (el.get("htmlUrl") or el.get("htmlurl") or "").strip()
        if feed:
            attributes = {str(k): str(v) for k, v in el.attrib.items()}
            entries.append(Listed(feed, el.sourceline, attributes=attributes))
        elif site:
            entries.append(Listed(site, el.sourceline, site=True))
    return entries
