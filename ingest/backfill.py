"""`ingest backfill` and site discovery: the I/O shell. It finds a target's sources (a site's
feeds and sitemaps, a feed's history, a sitemap index's sitemaps), queues their article URLs
with a checkpoint in PostgreSQL, and fetches, extracts and stores those pages with the
service's own Fetcher, worker pool, article assembly and Store. Deciding what a document
says is left to the pure modules (`discover`, `sitemaps`, `parse`, `dedup`, `article`)."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, Protocol

import structlog

from ingest import dedup
from ingest.article import build_article
from ingest.config import Settings
from ingest.documents.discovery import (
    common_feed_urls,
    feed_links,
    looks_like_html,
    page_number,
    parse_feed_page,
    sitemaps_from_robots,
    with_page,
)
from ingest.documents.feeds import looks_like_feed
from ingest.documents.sitemaps import Sitemap, SitemapEntry, looks_like_sitemap, parse_sitemap
from ingest.errors import (
    FeedError,
    FetchError,
    ParseError,
    StoreError,
)
from ingest.fetch import Fetcher
from ingest.fetch.robots import robots_url
from ingest.normalize import canonical_url, redact_url
from ingest.pages import PageOutcome, fetch_page
from ingest.store import Store
from ingest.store.backfill import (
    BackfillRun,
    BackfillStore,
    PendingUrl,
    QueuedUrl,
    RunCounts,
)
from ingest.types import Article, FetchKind, FetchResult, ParsedEntry, SourceKind
from ingest.workers.pool import WorkerCrashed, Workers, WorkerTimeout

log = structlog.get_logger(__name__)

PAGE_CONCURRENCY: Final = 8
"""Pages in flight at once; the rate limit and the Fetcher's per-host limits are the real brake."""
SOURCE_CONCURRENCY: Final = 4
SOURCE_ATTEMPTS: Final = 3
"""Tries at one feed page or sitemap that fails for a passing reason (5xx, 429, timeout)."""
MAX_FEED_LINKS: Final = 10
"""Feed links of one home page checked by `ingest feeds add`."""
MAX_NEWS_SITEMAP_PROBES: Final = 5
_AS_FEED: Final = "followed as a feed of kind 'sitemap'"
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- options and pure decisions ------------------------------------------------------------------


def parse_date_bound(text: str, *, end: bool = False) -> datetime:
    """`--since` / `--until` as an aware UTC datetime: YYYY-MM-DD or an ISO 8601 datetime (UTC
    when naive). With `end` the bound is returned exclusive: a date means the whole day
    (`--until 2024-05-31` ends at 2024-06-01T00:00Z), a datetime includes that instant.
    Raises ValueError."""
    text = text.strip()
    if _DATE_ONLY.fullmatch(text):
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment + timedelta(microseconds=1) if end else moment


def classify(
    when: datetime | None,
    *,
    since: datetime | None,
    until: datetime | None,
    dated_only: bool,
) -> tuple[Literal["pending", "skipped"], str | None]:
    """Whether a URL dated `when` is fetched: ("pending", None), or ("skipped", "range" |
    "undated"). `until` is exclusive; undated URLs are included unless `dated_only`."""
    if when is None:
        return ("skipped", "undated") if dated_only else ("pending", None)
    if (since is not None and when < since) or (until is not None and when >= until):
        return "skipped", "range"
    return "pending", None


def read_url_list(data: bytes) -> tuple[list[str], int]:
    """An explicit list of article URLs, one a line (blank lines and `#` comments ignored), in
    canonical form without repeats; also returns how many lines were not http(s) URLs."""
    urls: dict[str, None] = {}
    invalid = 0
    for raw in data.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            urls.setdefault(canonical_url(line))
        except ValueError:
            invalid += 1
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


def sitemap_entry(entry: SitemapEntry) -> ParsedEntry:
    """A sitemap URL as a feed entry: the news title and publication date when it has them
    (lastmod only beside a publication date: a modification time is not a publication time)."""
    return ParsedEntry(
        guid=None,
        link=entry.url,
        title=entry.news_title,
        published_at=entry.news_published,
        updated_at=entry.lastmod if entry.news_published else None,
        language=entry.news_language,
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
    urls: tuple[str, ...] = ()
    """Canonical article URLs given with --urls."""
    dry_run: bool = False
    restart: bool = False
    rate: float = 2.0
    """Requests per second for this run (0: no limit beyond the Fetcher's per-host ones)."""

    def identity(self) -> dict[str, Any]:
        """What makes two invocations the same backfill: target, range and source options.
        --dry-run, --restart and --rate are not part of it."""
        digest = hashlib.sha256("\n".join(self.urls).encode()).hexdigest() if self.urls else None
        return {
            "target": self.target,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "limit": self.limit,
            "dated_only": self.dated_only,
            "urls": digest,
            "url_count": len(self.urls),
        }

    def run_key(self) -> bytes:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).digest()

    @property
    def label(self) -> str:
        return self.target or f"{len(self.urls)} listed URLs"


class RateLimiter:
    """At most `rate` acquisitions per second, evenly spaced (0 or less: unlimited)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)


# --- progress ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What this invocation did (the run's totals, resumes included, are in RunCounts)."""

    sources: int = 0
    sources_failed: int = 0
    sources_skipped: int = 0
    discovered: int = 0
    out_of_range: int = 0
    to_fetch: int = 0
    fetched: int = 0
    stored: int = 0
    existing: int = 0
    skipped: int = 0
    failed: int = 0
    retry_later: int = 0
    started: float = field(default_factory=time.monotonic)
    """When fetching started (reset at the fetch phase): the base of the rate and the ETA."""

    @property
    def done(self) -> int:
        return self.stored + self.existing + self.skipped + self.failed + self.retry_later

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.fetched / elapsed if elapsed > 0 else 0.0

    def fields(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "sources_failed": self.sources_failed,
            "discovered": self.discovered,
            "to_fetch": self.to_fetch,
            "fetched": self.fetched,
            "stored": self.stored,
            "existing": self.existing,
            "skipped": self.skipped,
            "failed": self.failed,
            "retry_later": self.retry_later,
        }


class Reporter(Protocol):
    def phase(
        self, name: Literal["discover", "fetch"], total: int | None, tally: Tally
    ) -> None: ...

    def update(self, tally: Tally) -> None: ...

    def close(self, tally: Tally) -> None: ...


class LogReporter:
    """Structured log lines: `backfill_progress` every `every` URLs (or `seconds`), per phase."""

    def __init__(self, every: int = 50, seconds: float = 15.0) -> None:
        self._every = every
        self._seconds = seconds
        self._last_done = 0
        self._last_time = time.monotonic()
        self._phase = "discover"
        self._total: int | None = None

    def phase(self, name: Literal["discover", "fetch"], total: int | None, tally: Tally) -> None:
        if name != self._phase:
            self.update(tally, force=True)  # where the previous phase ended
        self._phase, self._total = name, total

    def update(self, tally: Tally, *, force: bool = False) -> None:
        now = time.monotonic()
        done = tally.done + tally.sources
        if not force and (
            done - self._last_done < self._every and now - self._last_time < self._seconds
        ):
            return
        self._last_done, self._last_time = done, now
        rate = tally.rate(now)
        left = (self._total or 0) - tally.done
        eta = round(left / rate) if rate > 0 and self._phase == "fetch" and left > 0 else None
        log.info(
            "backfill_progress",
            phase=self._phase,
            **tally.fields(),
            rate=round(rate, 2),
            eta_seconds=eta,
        )

    def close(self, tally: Tally) -> None:
        self.update(tally, force=True)


class RichReporter:
    """A progress bar on the terminal (stderr): discovery, then fetching with rate and ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("discovering", total=None, stats="")
        self._started = False

    def phase(self, name: Literal["discover", "fetch"], total: int | None, tally: Tally) -> None:
        if not self._started:  # shown from the first phase on, so a failed start leaves no bar
            self._progress.start()
            self._started = True
        if name == "fetch":
            self._progress.reset(self._task, total=total, description="fetching", stats="")

    def update(self, tally: Tally) -> None:
        if not self._started:
            return
        rate = tally.rate(time.monotonic())
        stats = (
            f"found {tally.discovered} · fetched {tally.fetched} · stored {tally.stored} · "
            f"skipped {tally.skipped + tally.existing} · failed {tally.failed} · {rate:.1f}/s"
        )
        if self._progress.tasks[0].total is None:
            stats = f"{tally.sources} sources · " + stats
            self._progress.update(self._task, stats=stats)
        else:
            self._progress.update(self._task, completed=tally.done, stats=stats)

    def close(self, tally: Tally) -> None:
        if self._started:
            self.update(tally)
            self._progress.stop()
            self._started = False


# --- fetching helpers -------------------------------------------------------------------------

Fetch = Callable[[str, FetchKind], Awaitable[FetchResult]]


async def robots_sitemaps(fetch: Fetch, site_url: str) -> tuple[str, ...]:
    """The sitemaps a site lists in its robots.txt; none when robots.txt cannot be read."""
    url = robots_url(site_url)
    try:
        result = await fetch(url, "robots")
    except FetchError as e:
        log.debug("robots_unavailable", url=redact_url(url), error=str(e))
        return ()
    return sitemaps_from_robots(result.body, result.final_url)


async def probe_sitemap(fetch: Fetch, site_url: str) -> FetchResult | None:
    """`/sitemap.xml`, the conventional place, for a site whose robots.txt names no sitemap."""
    url = canonical_url(robots_url(site_url).removesuffix("/robots.txt") + "/sitemap.xml")
    try:
        result = await fetch(url, "feed")
    except FetchError:
        return None
    return result if looks_like_sitemap(result.body) else None


@dataclass(frozen=True, slots=True)
class FoundSource:
    """A feed (or news sitemap) found for a URL by `find_feeds`, and how."""

    url: str
    kind: SourceKind
    how: str
    """How it was found, for people ("" for the URL itself answering a feed)."""
    title: str | None = None


async def find_feeds(fetch: Fetch, url: str, *, max_bytes: int) -> list[FoundSource]:
    """What `ingest feeds add URL` registers: the URL itself when it answers a feed or a (news)
    sitemap; for a web page, the feeds it links with `<link rel="alternate">` (each checked),
    else the first common feed path that answers a feed, else a news sitemap named in
    robots.txt. Empty when none is found; FetchError when the URL itself cannot be fetched."""
    result = await fetch(url, "feed")
    body = result.body
    if looks_like_feed(body):
        return [FoundSource(url, "feed", "")]
    if looks_like_sitemap(body):
        try:
            sitemap = parse_sitemap(body, result.final_url, max_bytes)
        except ParseError:
            return []
        if sitemap.kind != "index":
            return [FoundSource(url, "sitemap", f"a sitemap, {_AS_FEED}")]
        news = await _news_sitemap(fetch, [r.url for r in sitemap.sitemaps], max_bytes)
        how = f"news sitemap listed in {url}, {_AS_FEED}"
        return [FoundSource(news, "sitemap", how)] if news else []
    if not looks_like_html(body, result.content_type):
        return []
    found: list[FoundSource] = []
    for link in feed_links(body, result.final_url)[:MAX_FEED_LINKS]:
        try:
            candidate = await fetch(link.url, "feed")
        except FetchError:
            continue
        if looks_like_feed(candidate.body):
            how = f"linked from {url}" + (f": {link.title}" if link.title else "")
            found.append(FoundSource(_canonical(link.url), "feed", how, link.title))
    if found:
        return _unique(found)
    for path_url in common_feed_urls(result.final_url):
        try:
            candidate = await fetch(path_url, "feed")
        except FetchError:
            continue
        if looks_like_feed(candidate.body):
            return [FoundSource(_canonical(path_url), "feed", f"common feed path of {url}")]
    listed = list(await robots_sitemaps(fetch, result.final_url))
    news = await _news_sitemap(fetch, listed, max_bytes)
    if news:
        how = f"news sitemap in the robots.txt of {url}, {_AS_FEED}"
        return [FoundSource(news, "sitemap", how)]
    return []


async def _news_sitemap(fetch: Fetch, urls: Sequence[str], max_bytes: int) -> str | None:
    """The first news sitemap among `urls` (sitemap indexes are opened one level down, the
    sitemaps with "news" in their URL first); at most MAX_NEWS_SITEMAP_PROBES fetches."""
    queue = sorted(urls, key=lambda u: "news" not in u.lower())
    probes = 0
    while queue and probes < MAX_NEWS_SITEMAP_PROBES:
        url = queue.pop(0)
        probes += 1
        try:
            result = await fetch(url, "feed")
            sitemap = parse_sitemap(result.body, result.final_url, max_bytes)
        except (FetchError, ParseError):
            continue
        if sitemap.kind == "index":
            children = sorted(
                (r.url for r in sitemap.sitemaps), key=lambda u: "news" not in u.lower()
            )
            queue = children + queue
        elif sitemap.is_news:
            return _canonical(url)
    return None


def _canonical(url: str) -> str:
    try:
        return canonical_url(url)
    except ValueError:
        return url


def _unique(found: list[FoundSource]) -> list[FoundSource]:
    """The first of each URL, in order (two links to one feed register it once)."""
    first: dict[str, FoundSource] = {}
    for f in found:
        first.setdefault(f.url, f)
    return list(first.values())


# --- the backfill ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillReport:
    run_id: int
    resumed: bool
    counts: RunCounts
    tally: Tally
    finished: bool
    dry_run_urls: tuple[str, ...] = ()
    failures: tuple[tuple[str, str | None], ...] = ()
    elapsed: float = 0.0


class Backfill:
    """One invocation of a backfill run: seed, walk the sources, fetch what is left."""

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
        self.tally = Tally()
        self._prefetched: dict[str, FetchResult] = {}
        # The dates of the `limit` newest pending URLs seen so far (a min-heap), so a feed's
        # history stops being walked once its pages are older than anything that would be kept.
        self._newest: list[datetime] = []

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
            async with self.runs.locked(run.id) as locked:
                if not locked:
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
                try:
                    report = await self._run(run, resumed)
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
        if not run.discovered:
            self.reporter.phase("discover", None, self.tally)
        if not run.seeded:
            run = replace(run, seeded=True, feed_id=await self._seed(run))
        if not run.discovered:
            await self._walk_sources(run)
            await self.runs.finish_discovery(run.id, self.options.limit)
        if self.options.dry_run:
            urls = await self._dry_run(run)
            counts = await self.runs.counts(run.id)
            return BackfillReport(run.id, resumed, counts, self.tally, False, dry_run_urls=urls)
        # A new invocation gives the pages that failed for a passing reason a new set of tries.
        await self.runs.retry_urls(run.id, self.settings.page_attempts, fresh=True)
        counts = await self.runs.counts(run.id)
        self.tally.to_fetch = counts.url_total("pending")
        self.tally.started = time.monotonic()
        self.reporter.phase("fetch", self.tally.to_fetch, self.tally)
        await self._fetch_all(run)
        counts = await self.runs.counts(run.id)
        finished = counts.url_total("pending") == 0
        if finished:
            await self.runs.finish_run(run.id)
        failures = await self.runs.failures(run.id)
        return BackfillReport(
            run.id, resumed, counts, self.tally, finished, failures=tuple(failures)
        )

    # requests ---------------------------------------------------------------------------------

    async def _fetch(self, url: str, kind: FetchKind) -> FetchResult:
        if kind != "robots":
            await self.limiter.wait()
        return await self.fetcher.fetch(url, kind)

    async def _fetch_source(self, url: str) -> FetchResult:
        """A feed page or sitemap, tried again after a pause when it fails for a passing reason."""
        for attempt in range(1, SOURCE_ATTEMPTS + 1):
            try:
                return await self._fetch(url, "feed")
            except FetchError as e:
                if not e.transient or attempt == SOURCE_ATTEMPTS:
                    raise
                await asyncio.sleep(min(30.0, 2.0**attempt))
        raise AssertionError("unreachable")

    # seeding ----------------------------------------------------------------------------------

    async def _seed(self, run: BackfillRun) -> int | None:
        """Find the target's sources and record them (with the --urls list): the only step that
        can make the backfill fail as a whole."""
        options = self.options
        sources: list[tuple[str, SourceKind]] = []
        feed_id: int | None = None
        target = options.target
        if target is not None:
            try:
                result = await self._fetch(target, "feed")
            except FetchError as e:
                raise FeedError(target, f"cannot fetch {redact_url(target)}: {e}") from e
            registered = await self.runs.feed_by_url(target)
            if registered is not None:
                feed_id = registered[0]
            body = result.body
            if looks_like_sitemap(body):
                sources.append((target, "sitemap"))
                self._prefetched[target] = result
            elif looks_like_feed(body):
                sources.append((target, "feed"))
                self._prefetched[target] = result
            elif looks_like_html(body, result.content_type):
                sources = await self._site_sources(result)
                if not sources:
                    raise FeedError(target, f"no feed or sitemap found for {redact_url(target)}")
            else:
                raise FeedError(
                    target, f"{redact_url(target)} is neither a feed, a sitemap nor a web page"
                )
        state, reason = classify(None, since=None, until=None, dated_only=options.dated_only)
        listed = [QueuedUrl(url, state=state, reason=reason) for url in options.urls]
        await self.runs.seed(run.id, sources=sources, urls=listed, feed_id=feed_id)
        self.tally.discovered += len(listed)
        log.info(
            "backfill_seeded",
            feeds=sum(1 for _, k in sources if k == "feed"),
            sitemaps=sum(1 for _, k in sources if k == "sitemap"),
            listed=len(listed),
            feed_id=feed_id,
        )
        return feed_id

    async def _site_sources(self, result: FetchResult) -> list[tuple[str, SourceKind]]:
        """A home page's feeds (`<link rel="alternate">`, else the first common path answering
        a feed) and the sitemaps of its robots.txt (else /sitemap.xml when there is one)."""
        feeds = [link.url for link in feed_links(result.body, result.final_url)]
        if not feeds:
            for url in common_feed_urls(result.final_url):
                try:
                    candidate = await self._fetch(url, "feed")
                except FetchError:
                    continue
                if looks_like_feed(candidate.body):
                    feeds = [url]
                    self._prefetched[_canonical(url)] = candidate
                    break
        sitemaps = list(await robots_sitemaps(self._fetch, result.final_url))
        if not sitemaps and (found := await probe_sitemap(self._fetch, result.final_url)):
            sitemaps = [found.url]
            self._prefetched[_canonical(found.url)] = found
        sources: list[tuple[str, SourceKind]] = [(_canonical(u), "feed") for u in feeds]
        sources += [(_canonical(u), "sitemap") for u in sitemaps]
        return list(dict.fromkeys(sources))

    # discovery --------------------------------------------------------------------------------

    async def _walk_sources(self, run: BackfillRun) -> None:
        while batch := await self.runs.pending_sources(run.id, limit=SOURCE_CONCURRENCY):
            await asyncio.gather(*(self._walk(run, url, kind) for url, kind in batch))

    async def _walk(self, run: BackfillRun, url: str, kind: SourceKind) -> None:
        with structlog.contextvars.bound_contextvars(source=redact_url(url), kind=kind):
            result = self._prefetched.pop(url, None)
            if result is None:
                try:
                    result = await self._fetch_source(url)
                except FetchError as e:
                    # WordPress answers 404 past the last page: the end of the history.
                    end = kind == "feed" and page_number(url) > 1 and e.status in (404, 410)
                    await self.runs.source_walked(
                        run.id, url, state="done" if end else "failed", error=str(e)
                    )
                    self.tally.sources += 1
                    if end:
                        log.debug("backfill_source_end", error=str(e))
                    else:
                        self.tally.sources_failed += 1
                        log.warning("backfill_source_failed", error=str(e))
                    self.reporter.update(self.tally)
                    return
            try:
                if kind == "sitemap" and not looks_like_feed(result.body):
                    await self._walk_sitemap(run, url, result)
                else:
                    await self._walk_feed(run, url, result)
            except (ParseError, WorkerTimeout, WorkerCrashed) as e:
                await self.runs.source_walked(run.id, url, state="failed", error=str(e))
                self.tally.sources_failed += 1
                log.warning("backfill_source_failed", error=str(e))
            self.tally.sources += 1
            self.reporter.update(self.tally)

    async def _walk_sitemap(self, run: BackfillRun, url: str, result: FetchResult) -> None:
        sitemap: Sitemap = await self.workers.run(
            parse_sitemap,
            result.body,
            result.final_url,
            self.settings.max_feed_bytes,
            timeout=self.settings.parse_timeout,
        )
        since = self.options.since
        if sitemap.kind == "index":
            # A sitemap last modified before --since lists nothing modified since.
            children: list[tuple[str, SourceKind]] = [
                (_canonical(ref.url), "sitemap")
                for ref in sitemap.sitemaps
                if not (since and ref.lastmod and ref.lastmod < since)
            ]
            skipped = len(sitemap.sitemaps) - len(children)
            self.tally.sources_skipped += skipped
            await self.runs.source_walked(run.id, url, state="done", children=children)
            log.debug("backfill_sitemap_index", sitemaps=len(children), skipped_by_lastmod=skipped)
            return
        queued: list[QueuedUrl] = []
        for entry in sitemap.entries:
            try:
                link = canonical_url(entry.url)
            except ValueError:
                continue
            queued.append(self._queued(link, sitemap_entry(entry), None, entry.date))
        pending, skipped = await self.runs.source_walked(
            run.id, url, state="done", urls=queued, url_source="sitemap"
        )
        await self._count_found(queued, pending, skipped)
        log.debug("backfill_sitemap", urls=len(queued), new=pending, skipped=skipped)

    async def _walk_feed(self, run: BackfillRun, url: str, result: FetchResult) -> None:
        parsed, paging = await self.workers.run(
            parse_feed_page,
            result.body,
            result.final_url,
            result.headers,
            timeout=self.settings.parse_timeout,
        )
        found, _invalid = dedup.candidates(parsed.entries)
        queued = [
            self._queued(c.link, c.entry, c.key, c.entry.published_at or c.entry.updated_at)
            for c in found
        ]
        dates = [q.dated_at for q in queued if q.dated_at is not None]
        newest_on_page = max(dates) if dates and len(dates) == len(queued) else None
        # Paged history runs from new to old: once a page is entirely older than --since (or
        # than the `limit` newest URLs already found), the pages after it have nothing to add.
        limit = self.options.limit
        exhausted = newest_on_page is not None and (
            (self.options.since is not None and newest_on_page < self.options.since)
            or (
                limit is not None
                and len(self._newest) >= limit
                and newest_on_page < self._newest[0]
            )
        )
        children: list[tuple[str, SourceKind]] = []
        if_new: list[tuple[str, SourceKind]] = []
        if not exhausted:
            if paging.history:
                children = [(_canonical(u), "feed") for u in paging.history]
            elif paging.wordpress and found:
                # ?paged=N is followed while pages bring URLs new to the run: a server that
                # ignores the parameter answers the same entries again and ends the walk.
                if_new = [(_canonical(with_page(url, page_number(url) + 1)), "feed")]
        pending, skipped = await self.runs.source_walked(
            run.id,
            url,
            state="done",
            urls=queued,
            url_source="feed",
            children=children,
            children_if_new=if_new,
        )
        await self._count_found(queued, pending, skipped)
        log.debug(
            "backfill_feed_page",
            entries=len(parsed.entries),
            new=pending,
            skipped=skipped,
            next=[redact_url(u) for u, _ in children + if_new],
        )

    def _queued(
        self, link: str, entry: ParsedEntry, key: bytes | None, when: datetime | None
    ) -> QueuedUrl:
        options = self.options
        state, reason = classify(
            when, since=options.since, until=options.until, dated_only=options.dated_only
        )
        return QueuedUrl(link, entry_to_json(entry), key, when, state, reason)

    async def _count_found(self, queued: Sequence[QueuedUrl], pending: int, skipped: int) -> None:
        self.tally.discovered += pending + skipped
        self.tally.out_of_range += skipped
        limit = self.options.limit
        if limit is None:
            return
        # Only URLs that will be fetched count towards the limit: not those already stored.
        dated = [q for q in queued if q.state == "pending" and q.dated_at is not None]
        known = await self.store.known_urls([q.url for q in dated]) if dated else {}
        for q in dated:
            if q.url not in known and q.dated_at is not None:
                if len(self._newest) < limit:
                    heapq.heappush(self._newest, q.dated_at)
                elif q.dated_at > self._newest[0]:
                    heapq.heapreplace(self._newest, q.dated_at)

    # fetching ---------------------------------------------------------------------------------

    async def _dry_run(self, run: BackfillRun) -> tuple[str, ...]:
        """The URLs a real run would fetch now, in order; the known-URL check is the one made
        just before each fetch."""
        urls: list[str] = []
        after = 0
        while batch := await self.runs.next_urls(run.id, after=after, limit=500):
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
            await self._fetch_pass(run)
            if not await self.runs.retry_urls(run.id, self.settings.page_attempts):
                return
            rounds += 1
            # Pages that failed for a passing reason get another try after a pause.
            self.tally.retry_later = 0
            await asyncio.sleep(min(60.0, 2.0**rounds))

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
        # The service (or another backfill) may have stored it meanwhile: never fetch it twice.
        if await self.store.known_urls([item.url]):
            await self.runs.url_finished(run.id, item.url, state="skipped", reason="known")
            self.tally.skipped += 1
            log.debug("backfill_url", status="known")
            return
        page = await self._page(item.url)
        self.tally.fetched += page.responded
        if page.transient and item.attempts + 1 < self.settings.page_attempts:
            await self.runs.url_finished(
                run.id, item.url, state="failed", error=page.error, retryable=True, attempted=True
            )
            self.tally.retry_later += 1
            log.debug("backfill_url", status="retry_later", error=page.error)
            return
        entry = entry_from_json(item.entry, item.url)
        article = self._article(entry, item.url, page)
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
        stored = await self.store.store_articles(run.feed_id, [(article, key)])
        if stored.new == stored.existing == 0:
            await self.runs.url_finished(
                run.id, item.url, state="failed", error="refused by the database", attempted=True
            )
            self.tally.failed += 1
            return
        reason = "new" if stored.new else "existing"
        await self.runs.url_finished(
            run.id, item.url, state="done", reason=reason, error=page.error, attempted=True
        )
        if stored.new:
            self.tally.stored += 1
        else:
            self.tally.existing += 1
        log.debug("backfill_url", status=reason, text_source=article.text_source)

    def _article(self, entry: ParsedEntry, url: str, page: PageOutcome) -> Article | None:
        """The article from the page, else from the source's own text (a feed entry's content
        or summary); None when neither has text (a sitemap or listed URL whose page failed)."""
        attempts = [(page.extracted, page.error)]
        if page.extracted is not None:
            attempts.append((None, "page metadata unusable"))
        for extracted, error in attempts:
            if extracted is None and not (entry.content or entry.summary):
                continue
            try:
                return build_article(
                    entry,
                    entry_url=entry.link or url,
                    final_url=page.final_url,
                    extracted=extracted,
                    extraction_error=error,
                    now=self.clock(),
                )
            except Exception:
                log.exception("article_bug")
        return None

    async def _page(self, link: str) -> PageOutcome:
        return await fetch_page(
            self.fetcher,
            self.workers,
            link,
            extract_timeout=self.settings.extract_timeout,
            before_fetch=self.limiter.wait,
        )


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
    from ingest.store.db import open_pool

    pool = await open_pool(dsn, max_size=PAGE_CONCURRENCY + 2)
    workers = Workers(settings.workers)
    try:
        async with Fetcher(settings) as fetcher:
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


def summary_lines(report: BackfillReport, options: BackfillOptions) -> list[str]:
    """The human summary printed at the end: the run's totals (resumes included) and what this
    invocation did."""
    c, t = report.counts, report.tally
    head = f"backfill {report.run_id} of {redact_url(options.label)}"
    if report.resumed:
        head += " (resumed)"
    lines = [head]
    if options.since or options.until or options.limit:
        parts = []
        if options.since:
            parts.append(f"since {options.since.isoformat()}")
        if options.until:
            parts.append(f"before {options.until.isoformat()}")
        if options.limit:
            parts.append(f"limit {options.limit}")
        lines.append("  " + ", ".join(parts))
    feeds, sitemaps = c.source_total("feed"), c.source_total("sitemap")
    lines.append(
        f"  sources: {feeds + sitemaps} ({feeds} feed pages, {sitemaps} sitemaps), "
        f"{c.source_total(state='failed')} failed"
    )
    skipped = c.url_total("skipped")
    why = ", ".join(
        f"{n} {label}"
        for label, n in (
            ("out of range", c.url_total("skipped", "range")),
            ("undated", c.url_total("skipped", "undated")),
            ("beyond --limit", c.url_total("skipped", "limit")),
            ("already known", c.url_total("skipped", "known")),
        )
        if n
    )
    lines.append(
        f"  urls: {c.url_total()} found; {c.url_total('done', 'new')} stored, "
        f"{c.url_total('done', 'existing')} already stored, {skipped} skipped"
        + (f" ({why})" if why else "")
        + f", {c.url_total('failed')} failed, {c.url_total('pending')} pending"
    )
    rate = t.fetched / report.elapsed if report.elapsed > 0 else 0.0
    lines.append(
        f"  this run: {t.fetched} pages fetched, {t.stored} stored, {t.skipped} skipped as "
        f"known, {t.failed} failed in {report.elapsed:.1f}s ({rate:.1f} pages/s)"
    )
    for url, error in report.failures:
        lines.append(f"  failed: {redact_url(url)}: {error}")
    if not report.finished and not options.dry_run:
        lines.append("  not finished: run the same command again to continue")
    return lines
