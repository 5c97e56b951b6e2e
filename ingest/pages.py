"""Fetching and extracting one article page under the service's rules (robots.txt, size and
time limits, HTML only, extraction in the worker pool), shared by the service and backfills.
Failures are outcomes, not exceptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ingest import metrics
from ingest.errors import BlockedError, ExtractError, FetchError
from ingest.normalize import redact_url
from ingest.ports import PageFetcher, WorkerPool
from ingest.types import Extracted
from ingest.workers.pool import WorkerCrashed, WorkerTimeout
from ingest.workers.tasks import extract_page

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


async def fetch_page(
    fetcher: PageFetcher,
    workers: WorkerPool,
    link: str,
    *,
    extract_timeout: float,
    before_fetch: Callable[[], Awaitable[None]] | None = None,
) -> PageOutcome:
    """Fetch `link` and extract its article; `before_fetch` (a rate limiter) runs once the
    robots.txt check has allowed the request."""
    final_url: str | None = None
    try:
        verdict = await fetcher.robots_verdict(link)
        if verdict != "allowed":
            return PageOutcome(None, None, f"robots.txt: {verdict}", verdict == "unavailable")
        if before_fetch is not None:
            await before_fetch()
        page = await fetcher.fetch(link, "page")
        final_url = page.final_url
        media_type = page.content_type.split(";")[0].strip().lower()
        if media_type not in HTML_TYPES:
            raise ExtractError(link, f"not an HTML page: {media_type}")
        with metrics.EXTRACT_SECONDS.time():
            extracted = await workers.run(
                extract_page, page.body, page.final_url, timeout=extract_timeout
            )
        return PageOutcome(final_url, extracted, None, False, True)
    except BlockedError as e:
        return PageOutcome(final_url, None, str(e), False)
    except FetchError as e:
        return PageOutcome(final_url, None, str(e), e.transient, e.status is not None)
    except ExtractError as e:
        return PageOutcome(final_url, None, str(e), False, final_url is not None)
    except (WorkerTimeout, WorkerCrashed) as e:
        return PageOutcome(final_url, None, f"extraction failed: {e}", False, True)
    except Exception as e:
        log.exception("page_bug", url=redact_url(link))
        return PageOutcome(final_url, None, f"internal error: {type(e).__name__}", False)
