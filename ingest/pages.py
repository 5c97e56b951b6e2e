"""Fetching and extracting one article page under the service's rules (robots.txt, size and
time limits, HTML only, extraction in the worker pool), and what becomes of the entry then (try
again later, or the article from the page or from the entry's own text): one rule for the
service and backfills. Failures are outcomes, not exceptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from ingest import metrics
from ingest.article import OTHER_PAGE, another_page, build_article
from ingest.errors import (
    BlockedError,
    ExtractError,
    FetchError,
    HeldError,
    WorkerError,
    clipped,
)
from ingest.normalize import charset_of, media_type, redact_url
from ingest.ports import PageFetcher, WorkerPool
from ingest.types import Article, Extracted, OwnText, ParsedEntry
from ingest.workers.tasks import extract_page

if TYPE_CHECKING:
    from ingest.workers.backlog import Backlog

log = structlog.get_logger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/xml", "text/xml", ""})


@dataclass(frozen=True, slots=True)
class PageOutcome:
    final_url: str | None
    extracted: Extracted | None
    error: str | None
    transient: bool
    """Worth another try later: a server error, 429, a timeout, robots.txt unavailable."""
    responded: bool = False
    """The server answered (even with an error status)."""
    held: bool = False
    """Not sent: the host's Retry-After is not over (`HeldError`). A passing failure that is
    no try at the page: the entry waits without one more try counted."""
    held_for: float = 0.0
    """Where `held`, the seconds the hold had left (`HeldError.seconds`)."""

    def retry_later(self, attempts: int, max_attempts: int) -> bool:
        """Whether the entry waits for another try at its page instead of being stored from
        the feed's text now (`retry_later`)."""
        return retry_later(self.transient, self.held, attempts, max_attempts)


def tries_after(attempts: int, *, held: bool) -> int:
    """The tries made at a URL once one more request for it failed: the `attempts` made
    before, and this one, but for a request its host's Retry-After held back (`HeldError`),
    never sent, which is none."""
    return attempts if held else attempts + 1


def retry_later(transient: bool, held: bool, attempts: int, max_attempts: int) -> bool:
    """Whether a URL whose request just failed is worth another try: the failure is a passing
    one and tries are left (`tries_after`, `attempts` made before this one). One rule for
    the pages the service and backfills fetch and a backfill's sources (feed pages,
    sitemaps)."""
    return transient and tries_after(attempts, held=held) < max_attempts


NO_PAGE = PageOutcome(None, None, None, False)
"""The outcome of a page not fetched: a full-text feed's entry is its own article."""
OTHER_PAGE_OUTCOME = PageOutcome(None, None, OTHER_PAGE, False, True)
"""The outcome of a page that is not the entry's article at all (`page_for`): nothing usable,
nothing to try again (a consent wall stays one)."""


def page_for(entry: ParsedEntry, page: PageOutcome) -> PageOutcome:
    """`page` as the outcome of `entry`'s page: OTHER_PAGE_OUTCOME where it is not the entry's
    article at all (`ingest.article.another_page`: a consent wall, an error page served as a
    success), so that the entry is stored from its own text, or an update leaves the article
    as it is. The polls' rule and the backfill's."""
    if page.extracted is not None and another_page(entry, page.extracted, page.final_url):
        return OTHER_PAGE_OUTCOME
    return page


def article_for(
    entry: ParsedEntry,
    link: str,
    page: PageOutcome,
    *,
    now: datetime,
    without_text: bool,
    text_from_feed: bool = False,
    own: OwnText | None = None,
) -> Article | None:
    """The article for one entry and the outcome of its page: the page's text and metadata;
    the entry's own text (content, else summary) with the page's error when the page gave
    nothing usable or its metadata cannot be assembled. With `without_text` false, None when
    neither has any text (a sitemap's or a listed URL whose page failed); with it true, the
    entry is stored even then (a feed entry is recorded once its tries are spent). None, and
    logged, when not even the entry's own text can be assembled. With `text_from_feed` the
    entry's text is the article's (a full-text feed) and the page only adds metadata; `own` is
    that text measured already (`ingest.fulltext.own_text`)."""
    if not text_from_feed:
        page = page_for(entry, page)
    attempts = [(page.extracted, page.error)]
    if page.extracted is not None:
        attempts.append((None, "page metadata unusable"))
    for extracted, error in attempts:
        if extracted is None and not without_text and not (entry.content or entry.summary):
            continue
        try:
            return build_article(
                entry,
                entry_url=entry.link or link,
                final_url=page.final_url,
                extracted=extracted,
                extraction_error=error,
                now=now,
                text_from_feed=text_from_feed,
                own=own,
            )
        except Exception:
            log.exception("article_bug", url=redact_url(link))
    return None


async def fetch_page(
    fetcher: PageFetcher,
    workers: WorkerPool,
    link: str,
    *,
    extract_timeout: float,
    before_fetch: Callable[[], Awaitable[None]] | None = None,
    starting: Callable[[], Awaitable[None]] | None = None,
    waiting: Callable[[], None] | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    headers_for: str | None = None,
    feed_text: str | None = None,
    backlog: Backlog | None = None,
) -> PageOutcome:
    """Fetch `link` and extract its article; `before_fetch` (a rate limiter) runs once the
    robots.txt check has allowed the request, `starting` once the host's politeness lets the
    request start and `waiting` when a redirect's next hop waits for its host (see
    `Fetcher.fetch`); `extra_headers` are the listing feed's own, `headers_for` its URL;
    `feed_text`, the entry's own text, is measured against the page in the worker
    (`Extracted.comparison`); the page's body counts in `backlog` until its extraction is
    done."""
    final_url: str | None = None
    try:
        verdict = await fetcher.robots_verdict(link)
        if verdict != "allowed":
            return PageOutcome(None, None, f"robots.txt: {verdict}", verdict == "unavailable")
        if before_fetch is not None:
            await before_fetch()
        page = await fetcher.fetch(
            link,
            "page",
            starting=starting,
            waiting=waiting,
            extra_headers=extra_headers,
            headers_for=headers_for,
        )
        final_url = page.final_url
        if not page.body.strip():
            # A 200 with nothing in it is a server's passing glitch (a cache filled with an
            # empty response, a worker restarting), not the page's last word: tried again.
            return PageOutcome(final_url, None, "empty response body", True, True)
        media = media_type(page.content_type)
        if media not in HTML_TYPES:
            raise ExtractError(link, f"not an HTML page: {clipped(media)}")
        with metrics.EXTRACT_SECONDS.time():
            work = workers.run(
                extract_page,
                page.body,
                page.final_url,
                feed_text,
                charset_of(page.content_type),
                timeout=extract_timeout,
            )
            extracted = await (backlog.hold(len(page.body), work) if backlog is not None else work)
        return PageOutcome(final_url, extracted, None, False, True)
    except BlockedError as e:
        return PageOutcome(final_url, None, str(e), False)
    except HeldError as e:
        return PageOutcome(final_url, None, str(e), True, held=True, held_for=e.seconds)
    except FetchError as e:
        return PageOutcome(final_url, None, str(e), e.transient, e.status is not None)
    except ExtractError as e:
        return PageOutcome(final_url, None, str(e), False, final_url is not None)
    except WorkerError as e:
        return PageOutcome(final_url, None, f"extraction failed: {e}", False, True)
    except Exception as e:
        log.exception("page_bug", url=redact_url(link))
        return PageOutcome(final_url, None, f"internal error: {type(e).__name__}", False)
