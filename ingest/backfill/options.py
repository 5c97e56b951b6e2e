"""What a backfill is asked to do and the pure decisions about it: which URLs a run fetches
within its date bounds (read by `ingest.periods`), an explicit URL list, and what a source said
about an article (kept in the queue so the article can be built after a restart)."""

from __future__ import annotations

import hashlib
import heapq
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Final, Literal

from ingest.normalize import absolute_http_url, canonical_url, url_line
from ingest.types import ParsedEntry

DEFAULT_MAX_PAGES: Final = 1000
"""The pages of one feed's paged history a backfill walks at most (`--max-pages`): a history
that goes on without end (a site listing new entries on each page it is asked for, under new
page URLs) ends there."""
DEFAULT_MAX_SITEMAPS: Final = 10_000
"""The sitemaps (indexes included) a backfill walks at most (`--max-sitemaps`): an index lists
up to 50,000 sitemaps of up to 50,000 URLs each, three indexes deep, so that a site fabricating
them would have the run queue billions of URLs; the newest are walked first."""
MAX_PAGES_CEILING: Final = 32767
"""The largest `--max-pages`: a page's place in its walk is kept in a smallint
(`ingest.backfill_sources.depth`)."""


def latest(when: datetime) -> datetime:
    """The latest moment a date may stand for: one at midnight UTC exactly, the reading of a
    date given alone (a sitemap's `2024-05-10`, a feed's date without its time), for all of
    its day; any other, for itself. So `--since 2024-05-10T12:00` keeps a URL dated
    `2024-05-10`, as a sitemap index's sitemap last modified that day, and the newest URLs a
    run with --limit found do not pass over a sitemap modified later the same day. Read in UTC,
    in whatever zone `when` is given (PostgreSQL returns a timestamptz in the session's)."""
    utc = when.astimezone(UTC)
    if (utc.hour, utc.minute, utc.second, utc.microsecond) != (0, 0, 0, 0):
        return when
    return utc + timedelta(days=1, microseconds=-1)


def classify(
    when: datetime | None,
    *,
    since: datetime | None,
    until: datetime | None,
    dated_only: bool,
    last: datetime | None = None,
) -> tuple[Literal["pending", "skipped"], str | None]:
    """Whether a URL dated `when` is fetched: ("pending", None), or ("skipped", "range" |
    "undated"). `until` is exclusive; a date given alone is in range where any moment of its
    day is (`latest`), a year or a month given alone (a sitemap's `2024-05`) where any moment
    of it is (`last`: its last moment, `sitemaps.parse_w3c_period`); undated URLs are included
    unless `dated_only`."""
    if when is None:
        return ("skipped", "undated") if dated_only else ("pending", None)
    end = last or latest(when)
    if (since is not None and end < since) or (until is not None and when >= until):
        return "skipped", "range"
    return "pending", None


MAX_LISTED_URLS: Final = 100_000
"""The most URLs one `--urls` list holds (distinct, in canonical form): the list is part of
the backfill's identity and seeded in one transaction, so it is held in memory whole; a longer
list is refused (split it into several backfills)."""
MAX_URL_LINE_BYTES: Final = 8192
"""A longer line of a `--urls` list is no URL (the usual limit of a request line): it is
counted as such and skipped without being held whole."""
_SKIP_CHUNK: Final = 64 * 1024


class TooManyUrls(ValueError):
    """A `--urls` list of more than its cap of URLs (`MAX_LISTED_URLS`)."""


def read_url_list(
    source: bytes | BinaryIO, *, max_urls: int = MAX_LISTED_URLS
) -> tuple[list[str], int]:
    """An explicit list of article URLs, one a line (blank lines and `#` comments ignored), in
    canonical form without repeats; also returns how many lines were not http(s) URLs. Lines
    are read as a text sitemap's (`url_line`; `absolute_http_url`: control characters, which
    the database would refuse, dropped). A stream is read line by line, never whole: a line
    longer than `MAX_URL_LINE_BYTES` is counted as not a URL and skipped in chunks, and
    reading stops at the first URL beyond `max_urls` (TooManyUrls)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    urls: dict[str, None] = {}
    invalid = 0
    first = True
    while raw := stream.readline(MAX_URL_LINE_BYTES + 1):
        if len(raw.removesuffix(b"\n")) > MAX_URL_LINE_BYTES:
            while not raw.endswith(b"\n") and (raw := stream.readline(_SKIP_CHUNK)):
                pass
            invalid += 1
            first = False
            continue
        line = url_line(raw.removesuffix(b"\n"), first=first)
        first = False
        if not line or line.startswith("#"):
            continue
        try:
            url = canonical_url(absolute_http_url(line, "") or "")
        except ValueError:
            invalid += 1
            continue
        if url not in urls and len(urls) >= max_urls:
            raise TooManyUrls(f"more than {max_urls} URLs")
        urls.setdefault(url)
    return list(urls), invalid


def entry_to_json(entry: ParsedEntry) -> dict[str, Any]:
    """What a source said about an article, kept in the queue so the article can be built
    after a restart: the non-empty ParsedEntry fields, datetimes as ISO 8601."""
    out: dict[str, Any] = {}
    for name in ParsedEntry.__slots__:
        value = getattr(entry, name)
        if value is None:
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def entry_from_json(data: dict[str, Any], url: str) -> ParsedEntry:
    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) else None

    def moment(name: str) -> datetime | None:
        value = text(name)
        try:
            return datetime.fromisoformat(value) if value else None
        except ValueError:
            return None

    return ParsedEntry(
        guid=text("guid"),
        link=text("link") or url,
        title=text("title"),
        author=text("author"),
        published_at=moment("published_at"),
        updated_at=moment("updated_at"),
        summary=text("summary"),
        content=text("content"),
        image_url=text("image_url"),
        language=text("language"),
        tags=tuple(t for t in data.get("tags") or () if isinstance(t, str)),
    )


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    target: str | None
    """Canonical URL of a site's home page, a feed or a sitemap; None with only `urls`."""
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive (see parse_date_bound)."""
    limit: int | None = None
    dated_only: bool = False
    all_pages: bool = False
    """Store pages that do not look like articles too (`ingest.article.not_an_article`)."""
    urls: tuple[str, ...] = ()
    """Canonical article URLs given with --urls."""
    dry_run: bool = False
    restart: bool = False
    rate: float = 2.0
    """Requests per second for this invocation (0: no limit beyond the Fetcher's per-host ones)."""
    max_pages: int = DEFAULT_MAX_PAGES
    """The pages of one feed's paged history walked at most; those beyond are skipped."""
    max_sitemaps: int = DEFAULT_MAX_SITEMAPS
    """The sitemaps (indexes included) walked at most; those beyond are skipped."""

    def identity(self) -> dict[str, Any]:
        """What makes two invocations the same backfill: target, range and source options.
        --dry-run, --restart and --rate are not part of it; --max-pages and --max-sitemaps are
        where they are not the default (so that the backfills started before they existed keep
        their identity)."""
        digest = hashlib.sha256("\n".join(self.urls).encode()).hexdigest() if self.urls else None
        identity: dict[str, Any] = {
            "target": self.target,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "limit": self.limit,
            "dated_only": self.dated_only,
            "all_pages": self.all_pages,
            "urls": digest,
            "url_count": len(self.urls),
        }
        if self.max_pages != DEFAULT_MAX_PAGES:
            identity["max_pages"] = self.max_pages
        if self.max_sitemaps != DEFAULT_MAX_SITEMAPS:
            identity["max_sitemaps"] = self.max_sitemaps
        return identity

    def run_key(self) -> bytes:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).digest()

    @property
    def label(self) -> str:
        return self.target or f"{len(self.urls)} listed URLs"


def runs_back(dates: Sequence[datetime | None], before: datetime | None) -> bool:
    """Whether a feed page whose entries carry `dates` (in the page's order) shows its paged
    history running from new to old: it is no newer than the page before it in the walk
    (`before`: that page's newest date), or, where that is not known (the first page of a walk,
    one an earlier invocation's page linked, or a page before it undated), it lists its
    entries newest first. A history listed oldest first (WordPress's `?order=ASC`, an archive
    read forward) goes on to its newest entries at its end."""
    known = [d for d in dates if d is not None]
    if not known:
        return False
    if before is not None:
        return max(known) <= before
    return known[0] > known[-1]


@dataclass(slots=True)
class Horizon:
    """How far back a feed's paged history is worth walking. Where the history runs from new
    to old (`runs_back`), once a page is entirely older than `since`, or than the `limit`
    newest URLs to fetch found so far, the pages after it have nothing to add; so for the
    sitemaps of an index, by their last modification."""

    since: datetime | None
    limit: int | None
    newest: list[datetime] = field(default_factory=list)
    """The dates of the `limit` newest URLs to fetch found so far (a min-heap)."""

    def saw(self, when: datetime) -> None:
        """A dated URL that will be fetched (not one already stored)."""
        if self.limit is None:
            return
        if len(self.newest) < self.limit:
            heapq.heappush(self.newest, when)
        elif when > self.newest[0]:
            heapq.heapreplace(self.newest, when)

    def passed(self, dates: Sequence[datetime | None]) -> bool:
        """Whether a page whose entries carry `dates` lies wholly beyond the horizon (a page
        with an undated entry never does)."""
        if not dates or any(d is None for d in dates):
            return False
        newest = latest(max(d for d in dates if d is not None))
        if self.since is not None and newest < self.since:
            return True
        full = self.limit is not None and len(self.newest) >= self.limit
        return full and newest < self.newest[0]
