"""Frozen values that cross module boundaries. Datetimes are always timezone-aware (UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from ingest.coverage import has_words
from ingest.neardup import Fingerprint
from ingest.normalize import CREDENTIAL_PARAMETER_NAMES

FetchKind = Literal["feed", "page", "robots"]
SourceKind = Literal["feed", "sitemap"]
"""What a registered URL is: a feed, or a (news) sitemap followed as if it were a feed."""
FeedStatus = Literal["ok", "not_modified", "error"]
"""How a feed's poll ended (`news.feeds.last_status`)."""
PollStatus = Literal["ok", "not_modified", "error", "held"]
"""How a claimed feed's turn ended: its poll's `FeedStatus`, or `held`: its request not sent,
its host's Retry-After not over (`HeldError`), so that nothing of the feed is recorded but its
next fetch, at the end of the hold."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One HTTP exchange after redirects. `body` is the decoded (decompressed) payload."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    redirects: tuple[tuple[int, str], ...] = ()
    elapsed_ms: int = 0

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One feed entry as the feed describes it; text fields are plain text, not HTML."""

    guid: str | None
    link: str | None
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    summary: str | None = None
    content: str | None = None
    image_url: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    """The entry's categories, as the feed spells them."""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    version: str
    title: str | None
    link: str | None
    language: str | None
    entries: tuple[ParsedEntry, ...]
    ttl_minutes: int | None = None
    update_minutes: int | None = None
    """The publishing period announced by `sy:updatePeriod` / `sy:updateFrequency`."""
    warning: str | None = None
    """Set when feedparser flagged the document as ill-formed but entries were still usable."""
    elsewhere: int = 0
    """Of a sitemap followed as a feed, the URLs it listed on other sites, left out."""


@dataclass(frozen=True, slots=True)
class PageMetadata:
    """What the page itself says about the article (JSON-LD, OpenGraph/meta, trafilatura)."""

    title: str | None = None
    author: str | None = None
    """The people of `authors`, joined with ", "."""
    published_at: datetime | None = None
    published_has_time: bool = False
    updated_at: datetime | None = None
    canonical_url: str | None = None
    image_url: str | None = None
    description: str | None = None
    site_name: str | None = None
    language: str | None = None
    authors: tuple[str, ...] = ()
    """Each person of the byline once, in page order (agencies such as dpa included)."""
    tags: tuple[str, ...] = ()
    """`article:tag` values and JSON-LD `keywords`, each once, case kept."""
    page_type: str | None = None
    """What the page says it is: "article" (a JSON-LD article type, or `og:type` article),
    else its `og:type` ("website", "profile", ...), None when it says nothing."""
    persons: tuple[str, ...] = ()
    """The authors the page's JSON-LD types as a Person: people even where the site goes by
    the same name (a personal blog), which would otherwise name no author (`site_names_of`)."""


@dataclass(frozen=True, slots=True)
class Extracted:
    """The result of extracting one page: clean body text plus metadata."""

    text: str
    metadata: PageMetadata = field(default_factory=PageMetadata)
    fingerprint: Fingerprint | None = None
    """Computed in the worker process, beside the extraction, to keep it off the event loop."""
    content_hash: bytes | None = None
    """`ingest.normalize.content_hash` of `text`, computed in the worker for the same reason."""
    comparison: Comparison | None = None
    """Where the page was fetched to be compared with its feed entry's own text: that text
    against this extraction, the whole page and its main content (`ingest.fulltext.measure`),
    in the worker;
    None where the text takes no part (an excerpt whose page goes on)."""
    feed_text_digest: bytes | None = None
    """`ingest.fulltext.digest` of the text `comparison` measured, None where none was (a page
    two feeds list is fetched once, and measured against the first one's text)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """A feed entry's own text against its page (`ingest.fulltext.measure`)."""

    same: bool
    """The text is the article the page shows (`ingest.fulltext.compare`)."""
    holds: float
    """Share of the extraction's word 4-grams the text holds."""
    clean: float
    """Share of the text's word 4-grams the page holds."""
    stands: bool = False
    """Not the same, but the text may be stored for the article in a full-text feed
    (`ingest.fulltext.stands`)."""


@dataclass(frozen=True, slots=True)
class OwnText:
    """What a feed entry's own text (its content, never its summary) is, measured once, in a
    worker process (`ingest.fulltext.own_text`): the text, its word count, its language, its
    near-duplicate fingerprint and its content hash."""

    text: str = ""
    words: int = 0
    language: str | None = None
    fingerprint: Fingerprint | None = None
    content_hash: bytes | None = None


TextMode = Literal["auto", "page", "feed"]
"""The operator's setting for where a feed's article text comes from: decided from evidence
(`auto`), always the page, or always the feed's own entry text."""


@dataclass(frozen=True, slots=True)
class FullText:
    """A feed's full-text state (see `ingest.fulltext`), as stored on its row."""

    on: bool = False
    """The feed's entries are the articles: their pages are not fetched."""
    streak: int = 0
    """Comparisons in a row that found the feed's text to be the article, up to CONFIRM;
    negative: that found it not to be, down to -MISSES (`ingest.fulltext.observe`)."""
    since_check: int = 0
    """Entries stored from the feed's text since the last comparison (full-text mode);
    RECHECK_EVERY - 1 after a failed one that left the feed full-text, so that its next entry
    is compared (`ingest.fulltext.observe`)."""
    words: int = 0
    """The length in words of the feed's shortest articles: the shortest entry text found to
    be the article, raised a little by each longer one (`ingest.fulltext._shortest`)."""
    evidence: str | None = None
    """The last comparison, for people."""
    cap_words: int = 0
    """The word count at which the feed's texts were seen to stop (`ingest.fulltext.pile_up`):
    an entry whose text is that long is taken for cut there; 0: none seen."""
    cap_chars: int = 0
    """The same in characters."""
    templates: tuple[bytes, ...] = ()
    """Texts the feed was seen to carry in place of more than one story (a template), as
    `ingest.fulltext.template_key`s, the latest first (`ingest.fulltext.with_templates`): an
    entry carrying one is no article, whatever the poll."""


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """The operator's settings of one feed (`ingest feeds set`), stored as JSON on its row."""

    min_interval: timedelta | None = None
    """Poll no more often than this (the service's INGEST_MIN_INTERVAL otherwise)."""
    max_interval: timedelta | None = None
    """Poll at least this often (INGEST_MAX_INTERVAL otherwise)."""
    user_agent: str | None = None
    """Sent instead of the service's User-Agent, to the feed and its pages."""
    headers: tuple[tuple[str, str], ...] = ()
    """Sent with every request for the feed and its pages."""

    @classmethod
    def from_json(cls, value: dict[str, object] | None) -> FeedSettings:
        value = value or {}

        def seconds(key: str) -> timedelta | None:
            raw = value.get(key)
            return timedelta(seconds=float(raw)) if isinstance(raw, int | float) else None

        headers = value.get("headers")
        agent = value.get("user_agent")
        return cls(
            min_interval=seconds("min_interval"),
            max_interval=seconds("max_interval"),
            user_agent=agent if isinstance(agent, str) else None,
            headers=tuple(
                (str(k), str(v)) for k, v in (headers.items() if isinstance(headers, dict) else ())
            ),
        )

    def request_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers its requests carry besides the service's own, each name once: those the
        service sets itself (`SERVICE_HEADERS`, refused by `ingest feeds set`, and so left out
        of settings stored before it refused them) are not among them, and `user_agent` is the
        one User-Agent where a `User-Agent` header is set too."""
        agent = (("User-Agent", self.user_agent),) if self.user_agent else ()
        taken = SERVICE_HEADERS | ({"user-agent"} if agent else set())
        return agent + tuple(h for h in self.headers if h[0].lower() not in taken)


CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
"""A feed's own headers (`ingest feeds set URL header.NAME=VALUE`) that are credentials: sent
to hosts of the feed's own site only (`ingest.fetch.client.credential_site`), and left behind
when the feed moves to another site; so are those named as credentials
(`is_credential_header`)."""

_CREDENTIAL_NAME = re.compile(rf"(?:{CREDENTIAL_PARAMETER_NAMES})s?$", re.IGNORECASE | re.ASCII)


def is_credential_header(name: str) -> bool:
    """Whether a feed's own header of that name is a credential: one of `CREDENTIAL_HEADERS`,
    or a name that ends as a credential parameter's does (`X-Api-Key`, `X-Auth-Token`,
    `Private-Token`: `ingest.normalize.CREDENTIAL_PARAMETER_NAMES`), an API's key."""
    return name.lower() in CREDENTIAL_HEADERS or _CREDENTIAL_NAME.search(name) is not None


def credential_header_names(headers: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """The names (lower case) of the credential headers among a feed's `headers`, and
    `CREDENTIAL_HEADERS`: what it leaves behind when it moves to another site."""
    return CREDENTIAL_HEADERS | {n.lower() for n, _ in headers if is_credential_header(n)}


SERVICE_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "accept-encoding",
        "if-none-match",
        "if-modified-since",
    }
)
"""Request headers a feed's settings may not set (lower case): the service sets them on every
request (framing, the content codings it can decode, its conditional GET's validators), and a
second one beside its own would contradict it."""


@dataclass(frozen=True, slots=True)
class Feed:
    id: int
    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: bytes | None
    consecutive_failures: int
    active: bool
    publish_interval: timedelta | None = None
    feed_hint: timedelta | None = None
    failing_since: datetime | None = None
    redirect_to: str | None = None
    redirect_seen: int = 0
    redirect_since: datetime | None = None
    kind: SourceKind = "feed"
    text_mode: TextMode = "auto"
    full_text: FullText = field(default_factory=FullText)
    settings: FeedSettings = field(default_factory=FeedSettings)
    newest_entry_at: datetime | None = None
    """The date of its newest dated entry when it was last parsed (sql/0024)."""
    site_url: str | None = None
    """The site it belongs to: a feed's own `<link>`, the site whose robots.txt named a
    sitemap (kind 'sitemap'), which may be hosted elsewhere (`sitemaps.sitemap_sites`)."""
    consecutive_not_found: int = 0
    """The 404s it answered in a row, the last failures of its streak (sql/0040)."""
    not_found_since: datetime | None = None
    """When the first of those 404s came; None without one."""
    host: str = ""
    """The host of `url` as the claims read it (`ingest.url_host`, sql/0018): what a process
    counts its feeds in flight by."""


EXACT_MIN_WORDS: Final = 10
"""Words of a text from which two articles with that text are copies of one story
(`Article.copies_by_text`)."""

TextSource = Literal["page", "feed"]
DateSource = Literal["feed", "page", "first_seen"]


@dataclass(frozen=True, slots=True)
class Article:
    """A normalized article ready to be stored."""

    url: str
    original_url: str
    title: str | None
    text: str
    author: str | None
    published_at: datetime
    published_source: DateSource
    updated_at: datetime | None
    language: str | None
    site: str
    image_url: str | None
    summary: str | None
    content_hash: bytes
    text_source: TextSource
    extraction_error: str | None
    guid: str | None
    fetched_at: datetime
    aliases: tuple[str, ...] = ()
    """Other canonical-form URLs that lead to this article (entry link, final response URL)."""
    authors: tuple[str, ...] = ()
    """The people of `author`, each once, in byline order."""
    tags: tuple[str, ...] = ()
    """Topics from the feed's categories and the page's tags and keywords, each once."""
    fingerprint: Fingerprint | None = None
    """Near-duplicate fingerprint of `text`; None when the text is too short to judge."""

    @property
    def copies_by_text(self) -> bool:
        """Whether another article with the same text (`content_hash`) is a copy of this one:
        where the text holds EXACT_MIN_WORDS words. A shorter one is a placeholder a feed
        puts where its stories have no text ("Comments", "Read more", "Video"), stored when
        the page failed, and says nothing of which story it stands for. Words are
        `ingest.coverage.words`: each Chinese or Japanese character is one (a Thai, Lao, Khmer,
        Myanmar, Tibetan, Javanese or Balinese letter with its signs too), so a story in
        those scripts, which put no spaces between words, is a copy as any other is."""
        return has_words(self.text, EXACT_MIN_WORDS)
