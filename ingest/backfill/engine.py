"""The backfill engine, the I/O shell of `ingest backfill`: it finds a target's sources (with
the discovery cascade of `ingest.sources`), walks them (a site's feeds and sitemaps, a feed's
history, a sitemap index's sitemaps), queues their article URLs with a checkpoint in
PostgreSQL, and fetches, extracts and stores those pages with the service's own Fetcher, worker
pool, page rule (`ingest.pages`) and Store."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from ingest import dedup
from ingest.article import not_an_article
from ingest.backfill.options import (
    MAX_PAGES_CEILING,
    BackfillOptions,
    Horizon,
    classify,
    entry_from_json,
    entry_to_json,
    latest,
    runs_back,
)
from ingest.backfill.progress import BackfillReport, LogReporter, RateLimiter, Reporter, Tally
from ingest.config import Settings
from ingest.documents.discovery import looks_like_html, page_number, parse_feed_page, with_page
from ingest.documents.feeds import looks_like_feed
from ingest.documents.sitemaps import (
    Sitemap,
    SitemapRef,
    looks_like_sitemap,
    on_site,
    parse_sitemap,
    sitemap_entry,
    sitemap_sites,
)
from ingest.errors import (
    FeedError,
    FetchError,
    HeldError,
    HostTaken,
    LockLost,
    ParseError,
    StoreError,
    WorkerError,
)
from ingest.fetch import Fetcher
from ingest.fetch.client import with_user_info
from ingest.fulltext import article_words, trusted, trusts_feed
from ingest.holds import HostHolds
from ingest.normalize import canonical_url, plausible_date, redact_url
from ingest.pages import NO_PAGE, PageOutcome, article_for, fetch_page, retry_later, tries_after
from ingest.pipeline import known_entries
from ingest.sources import FoundSource, canonical, site_feeds, site_sitemaps
from ingest.store import Store
from ingest.store.backfill import (
    Added,
    BackfillRun,
    BackfillStore,
    PendingSource,
    PendingUrl,
    QueuedUrl,
)
from ingest.types import (
    FetchKind,
    FetchResult,
    FullText,
    OwnText,
    ParsedEntry,
    SourceKind,
    TextMode,
)
from ingest.workers.backlog import Backlog
from ingest.workers.pool import Workers, parse_in_worker
from ingest.workers.tasks import own_texts

log = structlog.get_logger(__name__)

PAGE_CONCURRENCY: Final = 8
"""Pages in flight at once; the rate limit and the Fetcher's per-host limits are the real brake."""
SOURCE_CONCURRENCY: Final = 4
SOURCE_ATTEMPTS: Final = 3
"""Tries at one feed page or sitemap that fails for a passing reason (5xx, 429, timeout)."""
HOLD_PATIENCE: Final = 600.0
"""The longest a run waits for a host's Retry-After to end before fetching the pages (or
walking the sources) it held back again; a longer hold leaves them to the next invocation."""
MAX_INDEX_DEPTH: Final = 3
"""Sitemap indexes read one below the other: the protocol allows one (an index lists sitemaps,
not indexes), sites nest a few (by year, then by month); an index below that many is not read,
so that indexes nested without end, each at a URL of its own, end the walk."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def owner(run_id: int) -> str:
    """Who holds the hosts a backfill run sends requests to (`ingest.host_holds.held_by`):
    the run, which one process at a time runs (its advisory lock), so that the same command
    started again after a crash takes them back at once; another process waits until the
    holds of the one that died run out."""
    return f"backfill {run_id}"


def waits_out(hold: float) -> bool:
    """Whether a run waits for a host's Retry-After, `hold` seconds left of it, to end and
    then sends the requests it held back (`HeldError`) again: where it ends within
    HOLD_PATIENCE. The rule of the pages (`Backfill._fetch_all`) and the sources
    (`Backfill._fetch_source`) alike."""
    return hold <= HOLD_PATIENCE


def _plausible_ref(ref: SitemapRef, now: datetime) -> SitemapRef:
    """An index's sitemap with its lastmod as the service reads a date (`plausible_date`: one
    far ahead is none), the period it names (`2024-05`) gone with it."""
    lastmod = plausible_date(ref.lastmod, now)
    return replace(ref, lastmod=lastmod, lastmod_until=ref.lastmod_until if lastmod else None)


@dataclass(slots=True)
class _History:
    """A feed's walk through its paged history, shared by its pages."""

    links: set[str]
    """The entry links of the pages walked so far."""
    pages: int
    """The pages queued so far: the place in the walk of the next one queued (its `depth`)."""


@dataclass(frozen=True, slots=True)
class _Walk:
    """Where a feed's walk stands at a page it links to."""

    history: _History
    newest: datetime | None
    """The newest entry date of the page that links it (None: it has none)."""


class Backfill:
    """One invocation of a backfill run: seed, walk the sources, fetch what is left."""

    holds: HostHolds
    """The hosts it sends requests to, held as the service's claims hold theirs (sql/0045):
    a service polling a host's feeds, or another backfill of the site, and this one take
    turns on it. Held by the run (`owner`), which one process at a time runs (its lock)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backfill_store: BackfillStore,
        fetcher: Fetcher,
        workers: Workers,
        options: BackfillOptions,
        *,
        reporter: Reporter | None = None,
        clock: Callable[[], datetime] = utcnow,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runs = backfill_store
        self.fetcher = fetcher
        self.workers = workers
        self.options = options
        self.reporter: Reporter = reporter or LogReporter()
        self.clock = clock
        self.echo = echo or (lambda line: None)
        self.limiter = RateLimiter(options.rate)
        self.backlog = Backlog(settings.worker_backlog_bytes)
        self.tally = Tally()
        self._prefetched: dict[str, FetchResult] = {}
        self._feed_id: int | None = None
        """The registered feed the target is, if it is one."""
        self._headers: tuple[tuple[str, str], ...] = ()
        """That feed's own request headers (`ingest feeds set`)."""
        self._text_mode: TextMode = "page"
        self._full_text = FullText()
        """That feed's text mode and full-text state: where its polls store an entry from its
        own text without a request, so does the backfill (`ingest.fulltext.trusted`)."""
        self._feed_site: str | None = None
        """That feed's site_url: for a sitemap followed as a feed, the site that named it,
        whose URLs its polls keep and so does the backfill (`sitemaps.sitemap_sites`)."""
        self._listed: dict[str, _Walk] = {}
        """Feed page to walk -> the walk before it."""
        self._moved: dict[str, str] = {}
        """A sitemap walked by this invocation that redirected: the URL it was served from
        (canonical) -> the URL it is recorded under, so that an index listing it at its new
        address (itself, or an index it lists listing it back) lists the sitemap walked, not
        another (at most --max-sitemaps of them). Not kept in the checkpoint: an index that a
        later invocation walks (the run interrupted, or the index failed for a passing reason)
        listing a sitemap walked before at its new address has it fetched once more and
        counted as a sitemap of its own; its URLs, and the sitemaps it lists, are the run's
        already (recorded once), so that nothing is queued or stored twice."""
        self._sitemap_room = asyncio.Lock()
        """Held from counting a run's sitemaps to recording those an index adds, so that the
        indexes walked at once do not each take the same room under --max-sitemaps."""
        self.horizon = Horizon(options.since, options.limit)
        self._tried_later = 0
        """Pages of this pass that failed for a passing reason after a request sent."""
        self._hold_ends: float | None = None
        """When (monotonic) the earliest hold ends of the pages of this pass a host's
        Retry-After held back unsent; None if none was."""
        self._held_over = False
        """Whether this invocation left pages or sources to the next one, unsent, their host's
        Retry-After longer than it waits (`waits_out`), or their host another process's for
        longer (`HostTaken`): the run is not finished."""
        self._taken = 0
        """Pages of this pass not sent for their host another process held longer than the
        run waits for it (`HostTaken`)."""

    async def run(self) -> BackfillReport:
        started = time.monotonic()
        options = self.options
        run = await self.runs.open_run(
            options.run_key(),
            target=options.label,
            since=options.since,
            until=options.until,
            options=options.identity(),
        )
        with structlog.contextvars.bound_contextvars(backfill_id=run.id):
            async with self.runs.locked(run.id) as lock:
                if not lock.held:
                    # The errors that stop a backfill as a whole are the tree's own (FeedError
                    # about the target, StoreError about the database): the CLI exits 1.
                    raise StoreError(
                        f"backfill {run.id} of {redact_url(options.label)} is already running "
                        "in another process"
                    )
                if options.restart and (run.seeded or run.discovered):
                    await self.runs.reset_run(run.id)
                    run = replace(run, seeded=False, discovered=False, feed_id=None)
                resumed = run.seeded
                log.info(
                    "backfill_started",
                    target=redact_url(options.label),
                    resumed=resumed,
                    dry_run=options.dry_run,
                )
                self.holds = HostHolds(
                    self.store,
                    owner(run.id),
                    lease_seconds=self.settings.lease_seconds,
                    delay=self.settings.host_delay,
                    quiet_for=self.fetcher.quiet_for,
                    waiting="backfill_host_waiting",
                )
                try:
                    # Stopped should the lock go with its session (LockLost: the CLI exits 3).
                    async with self.holds:
                        report = await lock.guard(self._run(run, resumed))
                except LockLost as e:
                    log.error("backfill_lock_lost", error=str(e), **self.tally.fields())
                    raise
                finally:
                    self.reporter.close(self.tally)
            # The canonical line of the invocation: what it did, and where the run stands.
            log.info(
                "backfill_done",
                target=redact_url(options.label),
                dry_run=options.dry_run,
                finished=report.finished,
                **self.tally.fields(),
                run_stored=report.counts.url_total("done", "new"),
                run_failed=report.counts.url_total("failed"),
                run_pending=report.counts.url_total("pending"),
                ms=int((time.monotonic() - started) * 1000),
            )
        return replace(report, elapsed=time.monotonic() - started)

    async def _run(self, run: BackfillRun, resumed: bool) -> BackfillReport:
        if self.options.target is not None:
            # A registered feed's requests carry its own User-Agent and headers, as its polls'.
            registered = await self.store.feed_settings_by_url(self.options.target)
            if registered is not None:
                self._feed_id, settings, self._text_mode, self._full_text, self._feed_site = (
                    registered
                )
                self._headers = settings.request_headers()
        # A new invocation walks the sources that failed for a passing reason again.
        if run.seeded and await self.runs.retry_sources(run.id):
            run = replace(run, discovered=False)
        if not run.discovered:
            self.reporter.phase("discover", None, self.tally)
        if not run.seeded:
            feed_id, site_url = await self._seed(run)
            run = replace(run, seeded=True, feed_id=feed_id, site_url=site_url)
        if not run.discovered:
            await self._walk_sources(run)
            await self.runs.finish_discovery(run.id, self.options.limit)
        if self.options.dry_run:
            urls = await self._dry_run(run)
            counts = await self.runs.counts(run.id)
            return BackfillReport(run.id, resumed, counts, self.tally, False, dry_run_urls=urls)
        await self._link_found(run)
        # A new invocation gives the pages that failed for a passing reason a new set of tries.
        await self.runs.retry_urls(run.id, self.settings.page_attempts, fresh=True)
        counts = await self.runs.counts(run.id)
        self.tally.to_fetch = counts.url_total("pending")
        self.tally.started = time.monotonic()
        self.reporter.phase("fetch", self.tally.to_fetch, self.tally)
        await self._fetch_all(run)
        counts = await self.runs.counts(run.id)
        finished = counts.url_total("pending") == 0 and not self._held_over
        if finished:
            await self.runs.finish_run(run.id)
        failures = await self.runs.failures(run.id)
        return BackfillReport(
            run.id, resumed, counts, self.tally, finished, failures=tuple(failures)
        )

    # requests ---------------------------------------------------------------------------------

    async def _fetch(self, url: str, kind: FetchKind) -> FetchResult:
        async with self.holds.hold(url):
            if kind == "robots":
                return await self.fetcher.fetch(url, kind)
            await self.limiter.wait()
            return await self.fetcher.fetch(
                url, kind, extra_headers=self._headers, headers_for=self.options.target
            )

    async def _fetch_source(self, url: str, kind: FetchKind = "feed") -> FetchResult:
        """A source (TARGET, the requests that find a site's sources, a feed page, a sitemap),
        tried again after a pause when it fails for a passing reason, SOURCE_ATTEMPTS tries in
        all, under the pages' rule (`retry_later`): a request its host's Retry-After held back,
        unsent, is no try, and is sent again once the hold ends where the run waits that long
        (`waits_out`); a longer hold raises its `HeldError` (a source walked is left to the
        next invocation, failed for a passing reason)."""
        attempts = 0
        while True:
            try:
                return await self._fetch(url, kind)
            except FetchError as e:
                held = isinstance(e, HeldError)
                if not retry_later(e.transient, held, attempts, SOURCE_ATTEMPTS):
                    raise
                # Another process's host was waited for already (`HostHolds`).
                if isinstance(e, HeldError) and (
                    isinstance(e, HostTaken) or not waits_out(e.seconds)
                ):
                    raise
                attempts = tries_after(attempts, held=held)
                if isinstance(e, HeldError):
                    pause = e.seconds
                    log.info("backfill_waiting", source=redact_url(url), seconds=round(pause))
                else:
                    pause = min(30.0, 2.0**attempts)
            await asyncio.sleep(pause)

    # seeding ----------------------------------------------------------------------------------

    async def _seed(self, run: BackfillRun) -> tuple[int | None, str | None]:
        """Find the target's sources and record them (with the --urls list): the only step that
        can make the backfill fail as a whole. Returns the registered feed the target is, and
        where the target, a home page, was served from (`BackfillRun.site_url`)."""
        options = self.options
        sources: list[tuple[str, SourceKind]] = []
        feed_id: int | None = None
        site_url: str | None = None
        unchecked: list[tuple[str, SourceKind, FetchError]] = []
        target = options.target
        if target is not None:
            try:
                result = await self._fetch_source(target)
            except HeldError as e:
                raise self._held_target(target, e) from e
            except FetchError as e:
                raise FeedError(target, f"cannot fetch {redact_url(target)}: {e}") from e
            feed_id = self._feed_id
            body = result.body
            if looks_like_sitemap(body, result.final_url):
                sources.append((target, "sitemap"))
                self._prefetched[target] = result
            elif looks_like_feed(body):
                sources.append((target, "feed"))
                self._prefetched[target] = result
            elif looks_like_html(body, result.content_type):
                site_url = result.final_url
                sources, unchecked = await self._site_sources(target, result)
                if not sources and not unchecked:
                    raise FeedError(target, f"no feed or sitemap found for {redact_url(target)}")
            else:
                raise FeedError(
                    target, f"{redact_url(target)} is neither a feed, a sitemap nor a web page"
                )
        sources, beyond = self._within_max_sitemaps(sources)
        state, reason = classify(None, since=None, until=None, dated_only=options.dated_only)
        listed = [QueuedUrl(url, state=state, reason=reason) for url in options.urls]
        await self.runs.seed(
            run.id,
            sources=sources,
            urls=listed,
            feed_id=feed_id,
            site_url=site_url,
            beyond_sitemaps=beyond,
            failed=[(url, kind, str(error)) for url, kind, error in unchecked],
        )
        self.tally.discovered += len(listed)
        for url, _, error in unchecked:
            # Recorded failed for a passing reason, as a source walked that failed so: the
            # summary names it, and the next invocation walks it (`retry_sources`).
            self.tally.sources += 1
            self.tally.sources_failed += 1
            self._held_over |= isinstance(error, HeldError)
            log.warning("backfill_source_failed", source=redact_url(url), error=str(error))
        log.info(
            "backfill_seeded",
            feeds=sum(1 for _, k in sources if k == "feed"),
            sitemaps=sum(1 for _, k in sources if k == "sitemap"),
            listed=len(listed),
            unchecked=len(unchecked),
            feed_id=feed_id,
        )
        return feed_id, site_url

    def _held_target(self, target: str, e: HeldError) -> FeedError:
        """Why TARGET's sources cannot be found now: its host (`e.host`) holds every request
        back by its Retry-After, longer than a run waits (`waits_out`), said with the moment it
        ends, when the same command finds them (nothing is recorded of a run not seeded); or
        another process held the host for longer than a request waits for it (`HostTaken`),
        which says nothing of when it lets it go."""
        host = e.host or redact_url(e.url)
        if isinstance(e, HostTaken):
            return FeedError(
                target,
                f"cannot find the sources of {redact_url(target)}: {e}; run the same command "
                "again later",
            )
        until = self.clock() + timedelta(seconds=math.ceil(e.seconds))
        return FeedError(
            target,
            f"cannot find the sources of {redact_url(target)}: {host} is held by its "
            f"Retry-After until {until.isoformat(timespec='seconds').replace('+00:00', 'Z')}; "
            "run the same command again then",
        )

    def _within_max_sitemaps(
        self, sources: list[tuple[str, SourceKind]]
    ) -> tuple[list[tuple[str, SourceKind]], int]:
        """The sources found for TARGET with at most --max-sitemaps sitemaps among them, the
        first in the order found (a robots.txt may name as many as its size allows, undated),
        and how many were left out: neither fetched nor queued, counted as an index's are."""
        cap = self.options.max_sitemaps
        kept: list[tuple[str, SourceKind]] = []
        sitemaps = beyond = 0
        for url, kind in sources:
            if kind == "sitemap":
                sitemaps += 1
                if sitemaps > cap:
                    beyond += 1
                    self._prefetched.pop(url, None)
                    continue
            kept.append((url, kind))
        if beyond:
            self.tally.beyond_sitemaps += beyond
            log.info("backfill_sitemaps_capped", skipped=beyond, max_sitemaps=cap)
        return kept, beyond

    async def _site_sources(
        self, target: str, result: FetchResult
    ) -> tuple[list[tuple[str, SourceKind]], list[tuple[str, SourceKind, FetchError]]]:
        """A home page's feeds and its sitemaps, found as `feeds add` finds them, each request
        under the sources' rule (`_fetch_source`: a feed link or a robots.txt failing once for
        a passing reason is no source lost, the run being seeded once); the responses that
        showed them are read again by the walk instead of fetched twice. Also returns the
        feeds the page links that still failed for a passing reason (their error, a host's
        Retry-After longer than the run waits among them), to record failed and walk again
        at the next invocation rather than leave out of the run for good. A site whose
        robots.txt (or /sitemap.xml) its host's Retry-After holds back, or whose every
        request it held, cannot be seeded now: its sitemaps would be lost to the run (found
        once), `_held_target` says until when; nor one whose robots.txt still fails for a
        passing reason after its tries (FeedError)."""
        held: list[HeldError] = []
        unread: list[FetchError] = []

        async def fetch(url: str, kind: FetchKind) -> FetchResult:
            try:
                return await self._fetch_source(url, kind)
            except HeldError as e:
                held.append(e)
                raise
            except FetchError as e:
                if kind == "robots" and e.transient:
                    unread.append(e)
                raise

        failed: list[tuple[FoundSource, FetchError]] = []
        found = await site_feeds(fetch, result, unchecked=failed)
        before = len(held)
        found += await site_sitemaps(fetch, result.final_url)
        if len(held) > before or (held and not found and not failed):
            raise self._held_target(target, max(held, key=lambda e: e.seconds))
        if unread:
            # The sitemaps it names are unknown: a run seeded without them would never walk
            # them (its pages, besides, wait for the file to be read: `Fetcher.robots_for`).
            raise FeedError(
                target,
                f"cannot find the sources of {redact_url(target)}: its robots.txt, which names "
                f"its sitemaps, could not be read ({unread[0]}); run the same command again "
                "later",
            )
        for f in found:
            if f.response is not None:
                self._prefetched[f.url] = f.response
        sources = list(dict.fromkeys((f.url, f.kind) for f in found))
        taken = {url for url, _ in sources}
        unchecked = [(f.url, f.kind, e) for f, e in failed if f.url not in taken]
        return sources, list({url: (url, k, e) for url, k, e in unchecked}.values())

    # discovery --------------------------------------------------------------------------------

    async def _walk_sources(self, run: BackfillRun) -> None:
        while batch := await self.runs.pending_sources(run.id, limit=SOURCE_CONCURRENCY):
            await asyncio.gather(*(self._walk(run, s) for s in batch))

    async def _walk(self, run: BackfillRun, source: PendingSource) -> None:
        url, kind, depth = source.url, source.kind, source.depth
        with structlog.contextvars.bound_contextvars(source=redact_url(url), kind=kind):
            lastmod = source.lastmod
            if lastmod is not None and self.horizon.passed([source.lastmod_until or lastmod]):
                # Last modified before the newest URLs found so far: it lists none newer (by
                # the last moment of a year or a month its index gives alone: `2024-05`).
                limit = self.options.limit
                await self.runs.source_walked(
                    run.id,
                    url,
                    state="skipped",
                    error=f"last modified before the {limit} newest URLs found (--limit {limit})"
                    if limit is not None
                    else "last modified before --since",
                )
                self.tally.sources_skipped += 1
                log.debug("backfill_source_skipped", lastmod=lastmod.isoformat())
                self.reporter.update(self.tally)
                return
            if kind == "feed" and depth >= self.options.max_pages:
                # A history that goes on and on (a site listing new entries on each page it is
                # asked for) ends at the cap: the page beyond it is recorded, not fetched.
                await self.runs.source_walked(
                    run.id,
                    url,
                    state="skipped",
                    error=f"beyond --max-pages {self.options.max_pages}: a feed's paged history "
                    "is walked that many pages at most",
                )
                self._listed.pop(url, None)
                self.tally.sources_skipped += 1
                log.info("backfill_history_capped", max_pages=self.options.max_pages)
                self.reporter.update(self.tally)
                return
            result = self._prefetched.pop(url, None)
            if result is None:
                try:
                    result = await self._fetch_source(url)
                except FetchError as e:
                    # WordPress answers 404 past the last page: the end of the history.
                    end = kind == "feed" and page_number(url) > 1 and e.status in (404, 410)
                    await self.runs.source_walked(
                        run.id,
                        url,
                        state="done" if end else "failed",
                        error=str(e),
                        retryable=e.transient and not end,
                    )
                    self.tally.sources += 1
                    self._held_over |= isinstance(e, HeldError)
                    if end:
                        log.debug("backfill_source_end", error=str(e))
                    else:
                        self.tally.sources_failed += 1
                        log.warning("backfill_source_failed", error=str(e))
                    self.reporter.update(self.tally)
                    return
            if kind == "feed" and self._soft_end(url, result):
                # A web page with status 200 where a later page of the history was asked (the
                # site's home page, a "not found" page): the end of the history, as a 404 is.
                await self.runs.source_walked(
                    run.id, url, state="done", error=f"HTTP {result.status}: a web page"
                )
                self._listed.pop(url, None)
                self.tally.sources += 1
                log.debug("backfill_source_end", error="a web page, not a feed page")
                self.reporter.update(self.tally)
                return
            try:
                if kind == "sitemap" and not looks_like_feed(result.body):
                    await self._walk_sitemap(run, url, result, depth)
                else:
                    await self._walk_feed(run, url, result, depth)
            except ParseError as e:
                await self.runs.source_walked(run.id, url, state="failed", error=str(e))
                self.tally.sources_failed += 1
                log.warning("backfill_source_failed", error=str(e))
            self.tally.sources += 1
            self.reporter.update(self.tally)

    def _soft_end(self, url: str, result: FetchResult) -> bool:
        """Whether a feed page past the first of its history (a WordPress `?paged=N`, or a page
        a page of this walk linked) is a web page rather than a feed: by its body, whatever its
        media type says (feeds are served as text/html too)."""
        later = page_number(url) > 1 or url in self._listed
        body = result.body
        return later and not looks_like_feed(body) and looks_like_html(body)

    async def _walk_sitemap(
        self, run: BackfillRun, url: str, result: FetchResult, depth: int
    ) -> None:
        if (served_from := canonical(with_user_info(url, result.final_url))) != url:
            self._moved.setdefault(served_from, url)
        sitemap: Sitemap = await parse_in_worker(
            self.workers,
            parse_sitemap,
            result.body,
            result.final_url,
            self.settings.max_feed_bytes,
            url=url,
            timeout=self.settings.parse_timeout,
        )
        if sitemap.dropped:
            # Entries without an http(s) location, repeated, or beyond the protocol's 50,000.
            log.info("backfill_sitemap_dropped", dropped=sitemap.dropped, sitemap=sitemap.kind)
        since = self.options.since
        # The URLs (and sitemaps) of its own site only: a sitemap naming pages of other sites
        # does not make them the site's articles (`on_site`). Its own: where it was listed,
        # where that redirected (a site moved to a new domain), and TARGET's (where it redirected
        # too: the site whose robots.txt named the run's sitemaps; for a registered sitemap,
        # the site that named it, as its polls read it).
        sites = sitemap_sites(
            url, result.final_url, self.options.target, run.site_url, self._feed_site
        )
        entries = [e for e in sitemap.entries if on_site(e.url, sites)]
        listed = [r for r in sitemap.sitemaps if on_site(r.url, sites)]
        elsewhere = len(sitemap.entries) - len(entries) + len(sitemap.sitemaps) - len(listed)
        if elsewhere:
            self.tally.other_sites += elsewhere
            log.info("backfill_sitemap_other_sites", skipped=elsewhere)
        if sitemap.kind == "index":
            if depth >= MAX_INDEX_DEPTH:
                raise ParseError(
                    url,
                    f"a sitemap index nested {depth + 1} deep (at most {MAX_INDEX_DEPTH} are "
                    "read): its sitemaps are not walked",
                )
            # Each sitemap once, by the URL it is recorded under, with the latest date the
            # index gives it (none where one listing gives none): one listed twice (by this
            # index, or by another index of the run, or an index listed back by one it lists,
            # at the URL it was recorded under or one it redirected to, `_moved`) is walked
            # once, and takes one place under --max-sitemaps. They are walked newest
            # first (those the index does not date before them), so that a run with --limit
            # finds the newest URLs first and skips the sitemaps last modified before them
            # (`_walk`), as it stops walking a feed's paged history. A date far ahead is none,
            # as everywhere (`plausible_date`).
            now = self.clock()
            dated = (_plausible_ref(r, now) for r in listed)
            children: dict[str, SitemapRef] = {}
            for ref in sorted(
                dated,
                key=lambda r: (r.lastmod is not None, -r.lastmod.timestamp() if r.lastmod else 0),
            ):
                child = canonical(with_user_info(url, ref.url))
                children.setdefault(self._moved.get(child, child), ref)
            async with self._sitemap_room:
                recorded = await self.runs.recorded_sources(run.id, list(children))
                # A sitemap last modified before --since lists nothing modified since: neither
                # fetched nor recorded, but counted (one the run has already is walked anyway).
                # A lastmod of a year or a month alone (`2024-05`) is any moment of it.
                old = {
                    u
                    for u, ref in children.items()
                    if since and ref.lastmod and (ref.lastmod_until or latest(ref.lastmod)) < since
                }
                before_since = len(old - recorded)
                new = [u for u in children if u not in recorded and u not in old]
                # The newest up to --max-sitemaps in all: an index tree fabricated without end
                # (50,000 sitemaps of 50,000 URLs an index) ends there.
                room = max(0, self.options.max_sitemaps - await self.runs.sitemap_count(run.id))
                beyond = len(new) - room if len(new) > room else 0
                kept = set(new[:room]) | recorded
                # Those the run has already are given again: a later lastmod of theirs still
                # counts under --limit while they wait (`backfill_add_sources`).
                taken = [(u, ref) for u, ref in children.items() if u in kept]
                await self.runs.source_walked(
                    run.id,
                    url,
                    state="done",
                    children=[(u, "sitemap") for u, _ in taken],
                    depth=depth + 1,
                    lastmods=[ref.lastmod for _, ref in taken],
                    lastmod_untils=[ref.lastmod_until for _, ref in taken],
                    other_sites=elsewhere,
                    beyond_sitemaps=beyond,
                    before_since=before_since,
                )
            self.tally.sources_skipped += before_since
            if beyond:
                self.tally.beyond_sitemaps += beyond
                log.info(
                    "backfill_sitemaps_capped",
                    skipped=beyond,
                    max_sitemaps=self.options.max_sitemaps,
                )
            log.debug(
                "backfill_sitemap_index", sitemaps=len(taken), skipped_by_lastmod=before_since
            )
            return
        queued: list[QueuedUrl] = []
        for entry in entries:
            try:
                link = canonical_url(entry.url)
            except ValueError:
                continue
            queued.append(
                self._queued(link, sitemap_entry(entry), None, entry.date, last=entry.date_until)
            )
        added = await self.runs.source_walked(
            run.id, url, state="done", urls=queued, url_source="sitemap", other_sites=elsewhere
        )
        await self._count_found(queued, added)
        log.debug(
            "backfill_sitemap", urls=len(queued), new=len(added.pending), skipped=added.skipped
        )

    async def _walk_feed(self, run: BackfillRun, url: str, result: FetchResult, depth: int) -> None:
        parsed, paging = await parse_in_worker(
            self.workers,
            parse_feed_page,
            result.body,
            result.final_url,
            result.headers,
            url=url,
            timeout=self.settings.parse_timeout,
        )
        found, _invalid = dedup.candidates(parsed.entries)
        known: dict[str, str] = {}
        if run.feed_id is not None:
            # Keyed as the feed's polls key them (a guid given to another story, `dedup.reused`).
            found, known = await self._known(run.feed_id, found)
        queued = [
            self._queued(
                c.link,
                c.entry,
                c.key,
                c.entry.published_at or c.entry.updated_at,
                known=known.get(c.link),
            )
            for c in found
        ]
        # The history ends at a page beyond the horizon where it runs from new to old; one
        # listed oldest first goes on to its newest entries at its end.
        dates = [q.dated_at for q in queued]
        before = self._listed.pop(url, None)
        exhausted = runs_back(dates, before.newest if before else None) and self.horizon.passed(
            dates
        )
        # A page listing nothing the pages before it in the walk did not is a server repeating
        # itself (ignoring ?paged=N, or a next link to a page number of its own each time, to
        # the same page or round a few): its history ends there. Entries that other sources of
        # the run found first (a news sitemap lists a feed's newest entries too) still count as
        # new here. The pages before are unknown when an earlier invocation walked them: the
        # walk then goes one page further at most.
        links = frozenset(c.link for c in found)
        children: list[tuple[str, SourceKind]] = []
        if not exhausted and not (before is not None and links <= before.history.links):
            if paging.history:
                # A private feed's pages, within its origin, go with its URL's credential.
                children = [(canonical(with_user_info(url, u)), "feed") for u in paging.history]
            elif paging.wordpress and found:
                children = [(canonical(with_page(url, page_number(url) + 1)), "feed")]
        # Each page queued takes the next place in the walk (`depth`), the two a page may link
        # (`next`, `prev-archive`) the later of their places both, so that --max-pages bounds
        # the pages of a walk whatever its shape. A walk an earlier invocation began goes on
        # from the place of its page.
        place = 0
        if children:
            history = before.history if before is not None else _History(set(), depth + 1)
            history.links |= links
            history.pages += len(children)
            place = min(history.pages - 1, MAX_PAGES_CEILING)
            newest = max((d for d in dates if d is not None), default=None)
            for child, _ in children:
                self._listed[child] = _Walk(history, newest)
        added = await self.runs.source_walked(
            run.id,
            url,
            state="done",
            urls=queued,
            url_source="feed",
            children=children,
            depth=place,
        )
        await self._count_found(queued, added)
        log.debug(
            "backfill_feed_page",
            entries=len(parsed.entries),
            new=len(added.pending),
            skipped=added.skipped,
            next=[redact_url(u) for u, _ in children],
        )

    async def _known(
        self, feed_id: int, found: list[dedup.Candidate]
    ) -> tuple[list[dedup.Candidate], dict[str, str]]:
        """A registered feed's entries that its polls would not fetch (`dedup.plan`, their
        rule), each link with why ("known", or "pruned" where its article was pruned): the
        entries the feed has done (stored, or pruned since), by their key whatever their link
        is now, and those whose article is already stored under their link (by the service, or
        by a backfill of the site). The latter are linked to the feed as the poll links them:
        recorded as seen by the feed, their article adopted by it when it has no feed yet; in a
        dry run they are not ("to_link"), and the next invocation links them (`_link_found`).
        Returns the entries as the polls key them (`known_entries`) with those links."""
        if not found:
            return found, {}
        found, known_now = await known_entries(self.store, feed_id, found)
        urls = known_now.urls
        now = self.clock()
        plan = dedup.plan(
            found,
            known_entries=known_now.done,
            known_urls=urls,
            listed=known_now.listed,
            now=now,
        )
        known = {c.link: "pruned" if urls.get(c.link, 0) is None else "known" for c in found}
        for c in plan.fetch:
            del known[c.link]
        if self.options.dry_run:
            # A dry run stores nothing but its walk: the next run that is not one links them.
            linked = {key for key, _ in plan.link}
            known |= {c.link: "to_link" for c in found if c.key in linked}
        else:
            await self.store.link_entries(feed_id, plan.link, dedup.update_times(found, now))
        return found, known

    async def _link_found(self, run: BackfillRun) -> None:
        """Link the entries of the run's registered feed that a dry run found already stored
        (`_known`), as the walk would have linked them but for the dry run: each with its
        entry's update time, as the queue kept the entry (an entry linked without the time it
        carries would be taken for an update, its page fetched again, at the feed's next
        poll)."""
        if run.feed_id is None or not (found := await self.runs.to_link(run.id)):
            return
        known = await self.store.known_urls([url for url, _, _ in found])
        links = [(key, article_id) for url, key, _ in found if (article_id := known.get(url))]
        now = self.clock()
        times = {
            key: plausible_date(entry_from_json(entry, url).updated_at, now)
            for url, key, entry in found
        }
        await self.store.link_entries(run.feed_id, links, times)
        await self.runs.linked(run.id)

    def _queued(
        self,
        link: str,
        entry: ParsedEntry,
        key: bytes | None,
        when: datetime | None,
        *,
        known: str | None = None,
        last: datetime | None = None,
    ) -> QueuedUrl:
        """`link` queued with what its source said, dated `when`: a date more than a day ahead
        is none, as the article stored would have none (`plausible_date`), so that it neither
        takes the place of the newest URLs under --limit nor is filtered as a date. `last`: the
        last moment of the year or the month `when` names alone (a sitemap's `2024-05`), which
        --since reads it by; it is queued dated `when`, as written. `known`: skipped for that
        reason (`_known`), never fetched."""
        options = self.options
        when = plausible_date(when, self.clock())
        state, reason = classify(
            when,
            since=options.since,
            until=options.until,
            dated_only=options.dated_only,
            last=last if when is not None else None,
        )
        if known is not None:
            state, reason = "skipped", known
        return QueuedUrl(link, entry_to_json(entry), key, when, state, reason)

    async def _count_found(self, queued: Sequence[QueuedUrl], added: Added) -> None:
        self.tally.discovered += added.count
        self.tally.out_of_range += added.skipped
        if self.options.limit is None:
            return
        # Only URLs that will be fetched count towards the limit: not those already stored,
        # and each once (not again when another source of the run lists it too).
        dated: dict[str, datetime] = {}
        for q in queued:
            if q.url in added.pending and q.dated_at is not None:
                dated.setdefault(q.url, q.dated_at)
        known = await self.store.known_urls(list(dated)) if dated else {}
        for url, when in dated.items():
            if url not in known:
                self.horizon.saw(when)

    # fetching ---------------------------------------------------------------------------------

    async def _dry_run(self, run: BackfillRun) -> tuple[str, ...]:
        """The URLs a real run would fetch now, in order: those queued and those failed for a
        passing reason; the known-URL check is the one made just before each fetch."""
        urls: list[str] = []
        after = 0
        # The pages an earlier invocation left failed for a passing reason too: a run that is
        # not a dry one tries them again (`retry_urls`).
        while batch := await self.runs.next_urls(run.id, after=after, limit=500, failed=True):
            known = await self.store.known_urls([p.url for p in batch])
            for p in batch:
                if p.url not in known:
                    urls.append(p.url)
                    self.echo(p.url)
            after = batch[-1].rank
        return tuple(urls)

    async def _fetch_all(self, run: BackfillRun) -> None:
        rounds = 0
        while True:
            self._tried_later = 0
            self._hold_ends = None
            self._taken = 0
            await self._fetch_pass(run)
            pause = min(60.0, 2.0 ** (rounds + 1))
            if self._hold_ends is not None:
                # Pages a host's Retry-After held back, unsent, are tried again once the
                # earliest hold ends; one ending beyond the run's patience ends the run where
                # nothing else is left to try, leaving them to the next invocation; so do
                # pages whose host another process held longer than the run waited for it.
                hold = self._hold_ends - time.monotonic()
                if waits_out(hold) and not self._taken:
                    pause = max(pause, hold)
                    # Said, rather than a silence of up to HOLD_PATIENCE in the log.
                    log.info("backfill_waiting", pages=self.tally.retry_later, seconds=round(pause))
                elif not self._tried_later:
                    log.info("backfill_held", pages=self.tally.retry_later, seconds=round(hold))
                    self._held_over = True
                    return
            if not await self.runs.retry_urls(run.id, self.settings.page_attempts):
                return
            rounds += 1
            # Pages that failed for a passing reason get another try after a pause.
            self.tally.retry_later = 0
            await asyncio.sleep(pause)

    async def _fetch_pass(self, run: BackfillRun) -> None:
        queue: asyncio.Queue[PendingUrl | None] = asyncio.Queue(maxsize=PAGE_CONCURRENCY * 4)

        async def produce() -> None:
            after = 0
            while batch := await self.runs.next_urls(run.id, after=after, limit=200):
                for item in batch:
                    await queue.put(item)
                after = batch[-1].rank
            for _ in range(PAGE_CONCURRENCY):
                await queue.put(None)

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                with structlog.contextvars.bound_contextvars(url=redact_url(item.url)):
                    await self._one(run, item)
                self.reporter.update(self.tally)

        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(PAGE_CONCURRENCY):
                group.create_task(consume())

    async def _one(self, run: BackfillRun, item: PendingUrl) -> None:
        """Fetch, extract and store one URL, then record its state: one short transaction for
        the article and one for the checkpoint, none across the network."""
        # The service (or another backfill) may have stored it meanwhile: never fetch it twice;
        # nor an article that was pruned (as the service's polls do not).
        if known := await self.store.known_urls([item.url]):
            article_id = known[item.url]
            if run.feed_id is not None and item.entry_hash is not None and article_id is not None:
                await self.store.link_entries(run.feed_id, [(item.entry_hash, article_id)])
            reason = "known" if article_id is not None else "pruned"
            await self.runs.url_finished(run.id, item.url, state="skipped", reason=reason)
            self.tally.skipped += 1
            log.debug("backfill_url", status=reason)
            return
        entry = entry_from_json(item.entry, item.url)
        own = await self._own_text(item, entry)
        page = NO_PAGE if own is not None else await self._page(item.url)
        self.tally.fetched += page.responded
        if page.retry_later(item.attempts, self.settings.page_attempts):
            # A page its host's Retry-After held back was not sent: no try of it spent.
            await self.runs.url_finished(
                run.id,
                item.url,
                state="failed",
                error=page.error,
                retryable=True,
                attempted=not page.held,
            )
            if page.held:
                ends = time.monotonic() + page.held_for
                self._hold_ends = ends if self._hold_ends is None else min(self._hold_ends, ends)
            else:
                self._tried_later += 1
            self.tally.retry_later += 1
            log.debug("backfill_url", status="retry_later", error=page.error)
            return
        # A feed's entries are articles; a sitemap or a URL list also holds other pages.
        judged = item.source != "feed" and not self.options.all_pages
        if judged and (why := not_an_article(page.extracted, entry)):
            await self.runs.url_finished(
                run.id, item.url, state="skipped", reason="not_article", error=why, attempted=True
            )
            self.tally.not_articles += 1
            log.info("backfill_url", status="not_article", why=why)
            return
        article = article_for(
            entry,
            item.url,
            page,
            now=self.clock(),
            without_text=False,
            text_from_feed=own is not None,
            own=own,
        )
        if article is None:
            error = page.error or "no article text"
            # Still failing for a passing reason after every try: worth trying again when the
            # backfill is run again (the next invocation starts with these).
            await self.runs.url_finished(
                run.id,
                item.url,
                state="failed",
                error=error,
                retryable=page.transient,
                attempted=True,
            )
            self.tally.failed += 1
            log.info("backfill_url", status="failed", error=error)
            return
        key = item.entry_hash if run.feed_id is not None else None

        stored = await self.store.store_articles(
            run.feed_id,
            [(article, key)],
            without_text=False,
            # The URL's checkpoint in the article's own transaction: no process dying between
            # the two leaves the URL pending with its article stored, for the next invocation
            # to count "already known" instead of stored by the run.
            then=self.runs.stored_checkpoint(run.id, item.url, error=page.error),
        )
        if stored.new == stored.existing == 0:
            self.tally.failed += 1
            return
        reason = "new" if stored.new else "existing"
        if stored.new:
            self.tally.stored += 1
        else:
            self.tally.existing += 1
        log.debug("backfill_url", status=reason, text_source=article.text_source)

    async def _own_text(self, item: PendingUrl, entry: ParsedEntry) -> OwnText | None:
        """The entry's own text, measured in a worker, where the registered feed's polls would
        store the entry from it without fetching its page (`trusted`); else None. A text that
        cannot be measured is none: the page is fetched."""
        if item.source != "feed" or self._feed_id is None or not entry.content:
            return None
        if not trusts_feed(self._full_text, self._text_mode):
            return None
        try:
            (own,) = await self.workers.run(own_texts, [entry], timeout=self.settings.parse_timeout)
        except WorkerError:
            return None
        n = article_words(own.text, self._text_mode, own.words, self._full_text)
        return own if own.text and trusted(self._full_text, self._text_mode, n) else None

    async def _page(self, link: str) -> PageOutcome:
        try:
            async with self.holds.hold(link):
                return await fetch_page(
                    self.fetcher,
                    self.workers,
                    link,
                    extract_timeout=self.settings.extract_timeout,
                    before_fetch=self.limiter.wait,
                    starting=self.backlog.room,
                    extra_headers=self._headers,
                    headers_for=self.options.target,
                    backlog=self.backlog,
                )
        except HostTaken as e:
            # Not sent, no try spent, as a page its host's Retry-After holds back; not waited
            # for again in this invocation (`_fetch_all`).
            self._taken += 1
            return PageOutcome(None, None, str(e), True, held=True, held_for=e.seconds)


# --- running it ---------------------------------------------------------------------------------


async def run_backfill(
    settings: Settings,
    dsn: str,
    options: BackfillOptions,
    *,
    reporter: Reporter | None = None,
    echo: Callable[[str], None] | None = None,
) -> BackfillReport:
    """One invocation with its own connection pool, HTTP client and worker processes."""
    from ingest.store.db import open_pool, watching

    pool = await open_pool(dsn, max_size=PAGE_CONCURRENCY + 2)
    workers = Workers(settings.workers)
    try:
        async with watching(dsn, pool), Fetcher(settings) as fetcher:
            backfill = Backfill(
                settings,
                Store(pool),
                BackfillStore(pool),
                fetcher,
                workers,
                options,
                reporter=reporter,
                echo=echo,
            )
            return await backfill.run()
    finally:
        workers.close()
        await pool.close()
