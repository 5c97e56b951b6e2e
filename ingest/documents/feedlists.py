"""Parse a list of feed URLs for `ingest feeds import`: OPML, or one URL a line. Pure."""

from __future__ import annotations

from lxml import etree

from ingest.errors import IngestError


class FeedListError(IngestError):
    pass


def parse_feed_list(data: bytes) -> list[str]:
    """Feed URLs in file order, without duplicates. OPML `<outline xmlUrl=...>` at any depth;
    otherwise one URL a line, blank lines and `#` comments ignored."""
    head = data.lstrip()[:512].lower()
    if head.startswith(b"<?xml") or b"<opml" in head:
        urls = _opml(data)
    else:
        text = data.decode("utf-8-sig", errors="replace")
        urls = [ln.strip() for ln in text.splitlines()]
        urls = [u for u in urls if u and not u.startswith("#")]
    return list(dict.fromkeys(urls))


def _opml(data: bytes) -> list[str]:
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
    return [
        (el.get("xmlUrl") or el.get("xmlurl") or "").strip()
        for el in root.iter("outline")
        if (el.get("xmlUrl") or el.get("xmlurl") or "").strip()
    ]
