"""The functions the service runs in its worker processes, named here so that the main process
can send them by reference without importing what they need: trafilatura, lxml, feedparser and
numpy live in the workers (preloaded by `ingest.workers.warm`), and the main process stays small."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.types import Extracted, OwnText, ParsedEntry, ParsedFeed


def extract_page(
    body: bytes, url: str, feed_text: str | None = None, charset: str | None = None
) -> Extracted:
    """`ingest.extract.extract_page` (`charset`: the page's Content-Type header's); with the
    text the page's feed entry carries, also that text against the extraction, the whole page
    and its main content (`Extracted.comparison`): a feed of long articles would otherwise be
    compared on the event loop."""
    from dataclasses import replace

    from ingest import extract
    from ingest.fulltext import digest, looks_cut, measure

    extracted, main = extract.read_page(body, url, charset)
    if not feed_text:
        return extracted
    # An excerpt is compared with the extraction only: the page's whole text is not read.
    cut = looks_cut(feed_text)
    visible = None if cut else extract.visible_text(body, charset)
    return replace(
        extracted,
        comparison=measure(feed_text, extracted.text, visible, None if cut else main),
        feed_text_digest=digest(feed_text),
    )


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None) -> ParsedFeed:
    """`ingest.documents.feeds.parse_feed`."""
    from ingest.documents import feeds as parse

    return parse.parse_feed(body, url, headers)


def parse_sitemap_feed(
    body: bytes,
    url: str,
    headers: Mapping[str, str] | None,
    max_bytes: int,
    sites: tuple[str, ...] = (),
) -> ParsedFeed:
    """`ingest.documents.sitemaps.parse_sitemap_feed`."""
    from ingest.documents import sitemaps

    return sitemaps.parse_sitemap_feed(body, url, headers, max_bytes, sites)


def own_texts(entries: list[ParsedEntry]) -> list[OwnText]:
    """`ingest.fulltext.own_text` of each entry; one that cannot be measured (a MemoryError on
    megabytes of content) has no text of its own, and costs the others nothing."""
    from ingest.fulltext import own_text
    from ingest.types import OwnText

    measured = []
    for entry in entries:
        try:
            measured.append(own_text(entry))
        except Exception:
            measured.append(OwnText())
    return measured
