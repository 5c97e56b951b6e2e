"""The imperative shell: claim due feeds -> fetch -> parse -> plan -> fetch pages -> extract ->
store. All I/O of a run happens here or below (fetch, store, workers); deciding is delegated to
the pure modules."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from ingest import dedup, metrics
from ingest.article import build_article
from ingest.config import Settings
from ingest.db import make_pool
from ingest.errors import BlockedError, ExtractError, FetchError, IngestError, ParseError
from ingest.extract import extract_page
from ingest.fetch import Fetcher
from ingest.normalize import canonical_url
from ingest.parse import parse_feed
from ingest.schedule import (
    Policy,
    RedirectState,
    hints_from,
    next_fetch_at,
    observe_redirect,
    parse_retry_after,
    permanent_target,
    publishing_interval,
    should_deactivate,
    success_interval,
)
from ingest.store import Store
from ingest.types import Article, Extracted, Feed, FetchResult, ParsedFeed
from ingest.workers import WorkerCrashed, Workers, WorkerTimeout

log = structlog.get_logger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml", "")


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_owner() -> str:
    """Identifies this process's leases: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    feed_id: int
    status: str
    new: int = 0
    skipped: int = 0
    page_errors: int = 0
    error: str | None = None


@dataclass(slots=True)
class RunSummary:
    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    new_articles: int = 0
    skipped: int = 0
    page_errors: int = 0
    outcomes: list[FeedOutcome] = field(default_factory=list)

    def add(self, outcome: FeedOutcome) -> None:
        self.feeds += 1
        self.outcomes.append(outcome)
        if outcome.status == "ok":
            self.ok += 1
        elif outcome.status == "not_modified":
            self.not_modified += 1
        else:
            self.failed += 1
        self.new_articles += outcome.new
        self.skipped += outcome.skipped
        self.page_errors += outcome.page_errors


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        workers: Workers,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.workers = workers
        self.owner = owner or make_owner()
        self.clock = clock
        self.rng = rng or random.Random()
        self.policy = policy_from(settings)
        self._stopping = asyncio.Event()
        self._feed_slots = asyncio.Semaphore(settings.concurrent_feeds)
        # Pages being (or already) built in the current batch, by canonical link: two feeds of
        # one batch that carry the same story fetch its page once.
        self._pages: dict[str, asyncio.Future[Article]] = {}

    def request_stop(self) -> None:
        """Stop claiming feeds; feeds already in progress finish."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self, *, all_feeds: bool = False) -> RunSummary:
        """Process every due feed (every active feed with `all_feeds`) once, claiming them in
        batches under a lease, until none is left or a stop is requested."""
        summary = RunSummary()
        done: list[int] = []
        while not self.stopping:
            feeds = await self.store.claim_feeds(
                owner=self.owner,
                lease_seconds=self.settings.lease_seconds,
                limit=self.settings.feeds_per_tick,
                all_feeds=all_feeds,
                exclude=done,
            )
            if not feeds:
                break
            done.extend(f.id for f in feeds)
            try:
                outcomes = await asyncio.gather(*(self._process_slot(f) for f in feeds))
            except BaseException:
                # Cancelled or crashed mid-batch: hand unfinished feeds back at once instead of
                # letting their leases run out.
                await asyncio.shield(self.store.release_leases(self.owner, [f.id for f in feeds]))
                raise
            finally:
                self._pages.clear()
            for outcome in outcomes:
                summary.add(outcome)
        return summary

    async def _process_slot(self, feed: Feed) -> FeedOutcome:
        async with self._feed_slots:
            return await self.process_feed(feed)

    async def process_feed(self, feed: Feed) -> FeedOutcome:
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(feed_id=feed.id, feed_url=feed.url):
            try:
                outcome = await self._process(feed)
            except IngestError as e:
                outcome = await self._record_failure(feed, e)
            except Exception as e:
                log.exception("feed_bug")
                outcome = await self._record_failure(feed, e)
            elapsed = time.monotonic() - started
            metrics.FEEDS_POLLED.labels(outcome.status).inc()
            metrics.FEED_SECONDS.observe(elapsed)
            metrics.ARTICLES_NEW.inc(outcome.new)
            metrics.PAGE_FALLBACKS.inc(outcome.page_errors)
            log.info(
                "feed_processed",
                status=outcome.status,
                new=outcome.new,
                skipped=outcome.skipped,
                page_errors=outcome.page_errors,
                not_modified=outcome.status == "not_modified",
                error=outcome.error,
                ms=int(elapsed * 1000),
            )
            return outcome

    async def _record_failure(self, feed: Feed, e: BaseException) -> FeedOutcome:
        message = str(e) if isinstance(e, IngestError) else f"internal error: {type(e).__name__}"
        metrics.ERRORS.labels(type(e).__name__).inc()
        now = self.clock()
        retry_after = parse_retry_after(e.retry_after, now) if isinstance(e, FetchError) else None
        failures = feed.consecutive_failures + 1
        deactivate = feed.active and should_deactivate(
            self.policy, failures=failures, failing_since=feed.failing_since, now=now
        )
        await self.store.feed_failed(
            feed.id,
            owner=self.owner,
            now=now,
            next_fetch_at=next_fetch_at(
                now,
                policy=self.policy,
                interval=self.policy.default_interval,
                failures=failures,
                active=feed.active and not deactivate,
                retry_after=retry_after,
                rng=self.rng,
            ),
            error=message,
            deactivate=deactivate,
        )
        if deactivate:
            log.warning("feed_deactivated", failures=failures, error=message)
        return FeedOutcome(feed.id, "error", error=message)

    async def _process(self, feed: Feed) -> FeedOutcome:
        result = await self.fetcher.fetch(
            feed.url, "feed", etag=feed.etag, last_modified=feed.last_modified
        )
        if result.not_modified:
            await self._record_success(feed, result, body_hash=None, parsed=None)
            return FeedOutcome(feed.id, "not_modified")

        body_hash = hashlib.sha256(result.body).digest()
        if feed.body_hash is not None and body_hash == feed.body_hash:
            # Same bytes as last time: nothing can be new, so skip parsing altogether (the new
            # validators, if the server changed them, are still stored).
            await self._record_success(feed, result, body_hash=body_hash, parsed=None)
            return FeedOutcome(feed.id, "not_modified")

        parsed = await self._parse(feed, result.body, result.final_url, result.headers)
        new, skipped, page_errors = await self._ingest_entries(feed, parsed)
        await self._record_success(feed, result, body_hash=body_hash, parsed=parsed)
        return FeedOutcome(feed.id, "ok", new=new, skipped=skipped, page_errors=page_errors)

    async def _record_success(
        self,
        feed: Feed,
        result: FetchResult,
        *,
        body_hash: bytes | None,
        parsed: ParsedFeed | None,
    ) -> None:
        now = self.clock()
        hints = hints_from(
            result.headers,
            now,
            ttl_minutes=parsed.ttl_minutes if parsed else None,
            update_minutes=parsed.update_minutes if parsed else None,
        )
        publishing = (
            publishing_interval(_entry_dates(parsed), now) if parsed else feed.publish_interval
        )
        feed_hint = max((h for h in (hints.feed_ttl, hints.feed_update) if h), default=None)
        interval = success_interval(
            self.policy,
            publishing=publishing,
            feed_hint=feed_hint if parsed else feed.feed_hint,
            hints=hints,
        )
        redirect, move_to = observe_redirect(
            self.policy,
            RedirectState(feed.redirect_to, feed.redirect_seen, feed.redirect_since),
            _canonical_or_none(permanent_target(result.redirects)),
            now,
        )
        await self.store.feed_succeeded(
            feed.id,
            owner=self.owner,
            now=now,
            next_fetch_at=next_fetch_at(
                now, policy=self.policy, interval=interval, failures=0, rng=self.rng
            ),
            not_modified=parsed is None,
            etag=result.etag or (feed.etag if result.not_modified else None),
            last_modified=result.last_modified
            or (feed.last_modified if result.not_modified else None),
            body_hash=body_hash,
            parsed=parsed is not None,
            title=parsed.title if parsed else None,
            site_url=parsed.link if parsed else None,
            publish_interval=publishing if parsed else None,
            feed_hint=feed_hint,
            redirect=redirect,
        )
        if move_to is not None and move_to != feed.url:
            kept = await self.store.move_feed(feed.id, move_to)
            log.info("feed_moved", new_url=move_to, merged_into=kept if kept != feed.id else None)

    async def _parse(
        self, feed: Feed, body: bytes, url: str, headers: dict[str, str]
    ) -> ParsedFeed:
        try:
            return await self.workers.run(
                parse_feed, body, url, headers, timeout=self.settings.parse_timeout
            )
        except (WorkerTimeout, WorkerCrashed) as e:
            raise ParseError(feed.url, f"feed parsing failed: {e}") from e

    async def _ingest_entries(self, feed: Feed, parsed: ParsedFeed) -> tuple[int, int, int]:
        found, invalid = dedup.candidates(parsed.entries[: self.settings.max_entries_per_feed])
        known_entries = await self.store.known_entries(feed.id, [c.key for c in found])
        fresh = [c for c in found if c.key not in known_entries]
        known_urls = await self.store.known_urls([c.link for c in fresh]) if fresh else {}
        plan = dedup.plan(
            found, known_entries=known_entries, known_urls=known_urls, invalid=invalid
        )
        await self.store.link_entries(feed.id, plan.link)
        built = await asyncio.gather(*(self._build_once(c) for c in plan.fetch))
        counts = await self.store.store_articles(
            feed.id, [(article, c.key) for c, article in zip(plan.fetch, built, strict=True)]
        )
        page_errors = sum(1 for a in built if a.extraction_error)
        metrics.DUPLICATES.inc(counts.duplicates)
        return counts.new, plan.skipped + counts.existing, page_errors

    async def _build_once(self, c: dedup.Candidate) -> Article:
        task = self._pages.get(c.link)
        if task is None:
            task = asyncio.ensure_future(self._build(c))
            self._pages[c.link] = task
        return await asyncio.shield(task)

    async def _build(self, c: dedup.Candidate) -> Article:
        """Fetch and extract one entry's page; on failure fall back to the feed's own text."""
        extracted: Extracted | None = None
        error: str | None = None
        final_url: str | None = None
        try:
            if not await self.fetcher.robots_allowed(c.link):
                raise BlockedError(c.link, "disallowed by robots.txt")
            page = await self.fetcher.fetch(c.link, "page")
            final_url = page.final_url
            media_type = page.content_type.split(";")[0].strip().lower()
            if media_type not in _HTML_TYPES:
                raise ExtractError(c.link, f"not an HTML page: {media_type}")
            with metrics.EXTRACT_SECONDS.time():
                extracted = await self.workers.run(
                    extract_page, page.body, page.final_url, timeout=self.settings.extract_timeout
                )
        except (FetchError, ExtractError) as e:
            error = str(e)
        except (WorkerTimeout, WorkerCrashed) as e:
            error = f"extraction failed: {e}"
        if error:
            log.info("page_fallback_to_feed", url=c.link, reason=error)
        return build_article(
            c.entry,
            entry_url=c.entry.link or c.link,
            final_url=final_url,
            extracted=extracted,
            extraction_error=error,
            now=self.clock(),
        )


def policy_from(settings: Settings) -> Policy:
    return Policy(
        min_interval=timedelta(seconds=settings.min_interval),
        max_interval=timedelta(seconds=settings.max_interval),
        default_interval=timedelta(seconds=settings.poll_interval),
        deactivate_after_failures=settings.deactivate_after_failures,
        deactivate_after=timedelta(seconds=settings.deactivate_after),
        redirect_after_fetches=settings.redirect_after_fetches,
        redirect_after=timedelta(seconds=settings.redirect_after),
    )


def _entry_dates(parsed: ParsedFeed) -> list[datetime]:
    return [d for e in parsed.entries if (d := e.published_at or e.updated_at) is not None]


def _canonical_or_none(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return canonical_url(url)
    except ValueError:
        return None


@asynccontextmanager
async def open_pipeline(settings: Settings, dsn: str) -> AsyncIterator[Pipeline]:
    """A ready pipeline: connection pool, HTTP client and worker processes, closed on exit."""
    pool = make_pool(dsn)
    await pool.open(wait=True, timeout=15)
    workers = Workers(settings.workers)
    try:
        async with Fetcher(settings) as fetcher:
            yield Pipeline(settings, Store(pool), fetcher, workers)
    finally:
        workers.close()
        await pool.close()
