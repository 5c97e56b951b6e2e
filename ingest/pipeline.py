"""The imperative shell: claim due feeds -> fetch -> parse -> plan -> fetch pages -> extract ->
store. All I/O of a run happens here or below (fetch, store, workers); deciding is delegated to
the pure modules."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import structlog

from ingest import dedup, metrics
from ingest.article import another_page
from ingest.config import Settings
from ingest.errors import FetchError, HeldError, HostTaken, IngestError, StoreError, WorkerError
from ingest.fetch import Fetcher
from ingest.fetch.client import credential_site, credentials_stay
from ingest.fulltext import (
    MIN_WORDS,
    STAND_INS,
    article_words,
    capped,
    digest,
    looks_cut,
    measure,
    observe,
    other_page,
    poll_caps,
    probe,
    shared,
    shrunk,
    stands_unchecked,
    still_due,
    trusted,
    until_check,
    update_words,
    wants_pages,
    with_templates,
)
from ingest.holds import HostHolds, same_host
from ingest.normalize import canonical_url, clean_inline, host_key, redact_url
from ingest.outcomes import EntriesOutcome, FeedOutcome, RunSummary
from ingest.pages import NO_PAGE, OTHER_PAGE_OUTCOME, PageOutcome, article_for, fetch_page, page_for
from ingest.ports import PageFetcher, WorkerPool
from ingest.schedule import (
    FeedFailure,
    FeedUpdate,
    decide_feed_failure,
    decide_feed_update,
    on_clock,
    retry_after_wait,
)
from ingest.store import Store, refused
from ingest.store.articles import KnownEntries, StoredCounts, WriteItem
from ingest.store.db import open_pool
from ingest.store.group import GroupWriter, by_parts
from ingest.types import (
    Article,
    Feed,
    FetchResult,
    FullText,
    OwnText,
    ParsedFeed,
    credential_header_names,
)
from ingest.workers.backlog import Backlog
from ingest.workers.pool import Workers, parse_in_worker
from ingest.workers.tasks import own_texts, parse_feed, parse_sitemap_feed

log = structlog.get_logger(__name__)


HAND_BACK_FIRST_DELAY, HAND_BACK_MAX_DELAY = 1.0, 15.0
"""Seconds between two tries to hand back leases while the database does not answer: the
first wait, doubled after each failed try up to the longest."""
INLINE_RELEASE_SECONDS = 2.0
"""How long a failed feed's error path waits to hand its lease back itself, before leaving it to
the retries (the pool would wait 30 s for a connection to a database that is down)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_owner() -> str:
    """Identifies this process's leases: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


HOST_SHARE = 8
"""A process holds at most this fraction of its feed slots (INGEST_CONCURRENT_FEEDS) for the
feeds of one host (`host_share`)."""


def host_share(settings: Settings) -> int:
    """The feeds of one host a process holds in flight at most: a HOST_SHARE-th of its feed
    slots, or twice the connections it opens to a host where that is more. Feeds of one host
    take turns on it (its delay, its connections): beyond that, more of them in flight only
    wait, and a host with hundreds of feeds would hold every slot while other hosts' feeds,
    which could progress in parallel, wait for one."""
    return max(settings.concurrent_feeds // HOST_SHARE, 2 * settings.per_host_connections)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        fetcher: PageFetcher,
        workers: WorkerPool,
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
        self._claimed: Mapping[str, str] = {}
        """The hosts the run's claims hold (`run`'s `held`), which they let go themselves."""
        self._page_hosts = HostHolds(
            store,
            self.owner,
            lease_seconds=settings.lease_seconds,
            delay=settings.host_delay,
            quiet_for=fetcher.quiet_for,
            patience=settings.max_crawl_delay,
            waiting="page_host_waiting",
            claimed=lambda host: host in self._claimed,
        )
        """The hosts of the pages a feed links on another host than its own, held while they
        are fetched (sql/0045), as the claims hold the feeds' own: two processes polling feeds
        of two hosts do not both send requests to a third, each at its delay. A page whose host
        another process holds waits for it as for a Retry-After, INGEST_MAX_CRAWL_DELAY at most,
        then is held back unsent (`HostTaken`)."""
        self.clock = clock
        self.rng = rng or random.Random()
        self.policy = settings.policy()
        self._stopping = asyncio.Event()
        self._rescan = asyncio.Event()
        self._wake = asyncio.Event()
        """Set when a feed of the run finishes or a rescan is asked for: what `run` waits on."""
        self.pass_summary = RunSummary()
        """The summary of the pass in progress, or of the last pass run: a run that fails
        leaves here what its last pass did before it failed (the service's `tick_failed`)."""
        self.claims = 0
        """Claims that worked so far: the service's readiness learns from it that a run got
        past its claims (the failures of earlier ticks are over) while that run goes on."""
        self.progress_at = time.monotonic()
        """When (time.monotonic) a run last started, got an answer to a claim (an error too),
        finished a feed or was done with a page: the service's liveness learns from it that a
        run in progress is not stuck."""
        # Pages being fetched and extracted, by canonical link: two feeds in progress that carry
        # the same story fetch its page once.
        self._pages: dict[str, asyncio.Future[PageOutcome]] = {}
        self._robots_asked: set[asyncio.Task[object]] = set()
        """robots.txt requests begun as a changed feed came in (`_ask_robots`)."""
        # Pages between the start of their request and the end of their extraction. Fetching
        # is much faster than extraction, so without a bound a backlog of new entries would be
        # fetched long before workers are free, every body waiting in memory (a 900-page cold
        # start held 140 MB of them). As many as can be on the wire, plus two per worker
        # ready for the next task, keep the workers busy. A slot is taken when the host's
        # politeness lets the request start, not before: pages queued 0.5 s apart on one host
        # must not hold the slots that pages of other hosts could use now.
        self._page_slots = asyncio.Semaphore(settings.max_connections + 2 * workers.size)
        self._backlog = Backlog(settings.worker_backlog_bytes)
        self._unreleased: dict[int, FullText | None] = {}
        """Feeds whose outcome could not be recorded and whose leases are not handed back yet,
        each with the full-text state its poll's stored entries left (None: none to keep),
        handed back with its lease (`_hand_back`)."""
        self._finishing: set[int] = set()
        """Feeds in progress whose outcome is being recorded or whose lease is being handed back
        (`_finishing_poll`): writes that change nothing once the lease is another process's,
        and that release it themselves. `_renew_leases` does not stop them."""
        self._unreleased_hosts: dict[str, str] = {}
        """Hosts a run ended holding (sql/0045) whose release failed (the database went away),
        each with a URL of it: released with the leases handed back (`_hand_back`), so that
        another process may take them a host delay after the database answers again rather
        than when the claims' leases run out; forgotten where a claim takes one again (the run
        that claimed it releases it)."""
        self._claiming = asyncio.Lock()
        """Held by a claim and by the release of `_unreleased_hosts`: a host a claim takes
        again is not released under the run that now holds it."""
        self._handing_back: asyncio.Future[None] | None = None
        self._claimed_on: dict[int, tuple[datetime, float]] = {}
        """For each feed a pass is polling, the wall clock's reading its claim read the
        feed's streaks on, and the loop's time then (monotonic): the clock may be set
        meanwhile (`_on_clock_now`)."""
        self._committed: dict[int, _Committed] = {}
        """What committed so far for each feed a pass is polling (new articles, articles
        updated in place), whatever becomes of the poll: a feed that fails, or is handed back,
        after some of its writes committed still counts them in its outcome and the pass's
        summary (`_count_committed`)."""
        # Outcomes of polls are written in groups: while one group is being written, the
        # outcomes of the feeds that finish meanwhile gather for the next (one commit each).
        self._successes: GroupWriter[FeedUpdate, Exception | None] = GroupWriter(
            self._feeds_succeeded
        )
        # Articles of every feed, written together: a transaction costs about as much CPU as
        # the rows it writes (its lock, round trips and commit), and a cold run's pages come
        # in one at a time from many feeds (docs/performance.md, section "Articles written
        # together").
        self._articles: GroupWriter[_Queued, StoredCounts | Exception] = GroupWriter(
            self._store_queued, linger=ARTICLES_LINGER, limit=ARTICLES_LIMIT
        )

    async def _store_queued(self, queued: list[_Queued]) -> list[StoredCounts | Exception]:
        """The article writer's write. Articles of a feed whose store failed are not written:
        the feed is handed back, and another replica may own it by the time the group taken
        right after the failure (its pages that came in meanwhile) is written."""
        outcomes: list[StoredCounts | Exception] = [
            StoreError("not written: a store of its feed failed") for _ in queued
        ]
        live = [i for i, (storer, _, _) in enumerate(queued) if not storer.failed]
        if not live:
            return outcomes
        written: list[StoredCounts | Exception]
        try:
            written = await self._store_many(
                [(queued[i][0].feed_id, queued[i][1], queued[i][2]) for i in live]
            )
        except Exception as e:
            # Each item's outcome, not the group's failure: a feed whose articles took more
            # than one group learns what the groups that committed stored (`_Storer.flush`).
            written = [e] * len(live)
        except BaseException:
            for i in live:
                queued[i][0].failed = True
            raise
        for i, outcome in zip(live, written, strict=True):
            outcomes[i] = outcome
            if isinstance(outcome, Exception):
                queued[i][0].failed = True
            else:
                self._count_committed(queued[i][0].feed_id, new=outcome.new)
        # Counted as the group commits, whatever becomes of the feeds that handed it over: one
        # stopped while it was written, or failing later, ends without its results, and the
        # next poll finds those articles stored.
        committed = StoredCounts.total([o for o in written if isinstance(o, StoredCounts)])
        metrics.ARTICLES_NEW.inc(committed.new)
        metrics.DUPLICATES.inc(committed.duplicates)
        metrics.PAGE_FALLBACKS.inc(
            sum(
                o.new
                for i, o in zip(live, written, strict=True)
                if queued[i][1].extraction_error and isinstance(o, StoredCounts)
            )
        )
        return outcomes

    def _count_committed(self, feed_id: int, *, new: int = 0, updated: int = 0) -> None:
        """Counts what a write of the feed's committed (`_committed`), as it commits."""
        if (committed := self._committed.get(feed_id)) is not None:
            committed.new += new
            committed.updated += updated

    async def _store_many(self, items: list[WriteItem]) -> list[StoredCounts | Exception]:
        """The article writer's write: one transaction for the articles of several feeds,
        written again feed by feed where it fails for one of them (`by_parts`)."""
        return await by_parts(self.store.store_many, items, lambda item: item[0] or 0)

    async def _feeds_succeeded(self, updates: list[FeedUpdate]) -> list[Exception | None]:
        """The outcome writer's write: one transaction for the polls of several feeds, written
        again feed by feed where it fails for one of them (`by_parts`): a value the database
        refuses fails that feed's poll, not the polls of every feed that ended meanwhile."""

        async def write(group: list[FeedUpdate]) -> list[None]:
            await self.store.feeds_succeeded(self.owner, group)
            return [None] * len(group)

        return await by_parts(write, updates, lambda update: update.feed_id)

    def request_stop(self) -> None:
        """Stop claiming feeds; feeds already in progress finish."""
        self._stopping.set()

    def rescan(self) -> None:
        """Have the run in progress claim due feeds again, as a new pass: once its claims find
        nothing more, a run goes on while its last feeds do (a feed of a slow host can take an
        hour), and the feeds that come due meanwhile would wait for it. The service asks for
        this at each tick that finds a run in progress; a feed done earlier in the run may be
        polled again, as it would be by the next run. A run over every feed (`all_feeds`) is
        one pass and ignores it."""
        self._rescan.set()
        self._wake.set()

    def _progressed(self, _: object = None) -> None:
        self.progress_at = time.monotonic()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(
        self,
        *,
        all_feeds: bool = False,
        on_pass: Callable[[RunSummary], object] | None = None,
    ) -> RunSummary:
        """Process every due feed (every active feed with `all_feeds`) once, until none is left
        or a stop is requested. Feeds are claimed only as slots free up, so no lease waits in a
        queue, and the leases of feeds in progress are renewed while they run. A run asked to
        claim again (`rescan`) hands the summary of the pass it ends to `on_pass` and returns
        the last one's: a service's run may go on for as long as feeds keep coming due, and its
        summary would otherwise only grow, every feed's outcome in it."""
        summary = self.pass_summary = RunSummary()
        self.progress_at = time.monotonic()
        pass_started = await self.store.database_now() if all_feeds else None
        handed_back: list[int] = []
        done: set[int] = set()  # one poll per feed per pass
        running: dict[asyncio.Task[FeedOutcome | None], Feed] = {}
        # The loop time until which each running feed's lease surely holds: its claim's
        # start, or its last renewal's, plus INGEST_LEASE_SECONDS (`_renew_leases`).
        leases: dict[int, float] = {}
        renewer = asyncio.create_task(self._renew_leases(running, leases))
        exhausted = False
        self._rescan.clear()
        # One event a run: a set left by an earlier run (or a rescan between runs) cannot
        # reach this one, and a pipeline run again in another event loop gets a fresh one.
        self._wake = asyncio.Event()
        # Feeds finished since the loop last looked, in the order they finished: each task
        # reports itself once, where waiting on every running task (asyncio.wait) would hook
        # and unhook a callback on each of up to INGEST_CONCURRENT_FEEDS tasks at every wake.
        finished: list[asyncio.Task[FeedOutcome | None]] = []
        # The hosts this run took feeds of, each with a URL of it: the claims hold them
        # (sql/0045) until it ends, or until it has no feed of theirs in flight (`idle`),
        # whichever comes first.
        held: dict[str, str] = {}
        idle: set[str] = set()
        self._claimed = held

        def on_done(task: asyncio.Task[FeedOutcome | None]) -> None:
            finished.append(task)
            self._wake.set()

        try:
            # Claims come in batches of INGEST_FEEDS_PER_TICK (or half the slots, if fewer),
            # taken once that many slots are free: a claim per finished feed would cost a
            # query per feed, which is most of the work of a feed that answers 304.
            cap = self.settings.concurrent_feeds
            batch = max(1, min(self.settings.feeds_per_tick, cap // 2))
            share = host_share(self.settings)
            per_host: Counter[str] = Counter()  # feeds in flight by host
            blocked = False  # the due feeds left are of hosts that hold their share
            while True:
                while (
                    (cap - len(running) >= batch or not running)
                    and not exhausted
                    and not blocked
                    and not self.stopping
                ):
                    room = {host: share - n for host, n in per_host.items() if n}
                    claimed_at = asyncio.get_running_loop().time()
                    claimed_on = self.clock()
                    try:
                        # Not beside a hand-back's release of hosts (`_hand_back`).
                        async with self._claiming:
                            feeds = await self.store.claim_feeds(
                                owner=self.owner,
                                lease_seconds=self.settings.lease_seconds,
                                limit=min(cap - len(running), self.settings.feeds_per_tick),
                                all_feeds=all_feeds,
                                # Nor a feed still waiting for its hand-back (`_hand_back`), even
                                # once its lease ran out: the hand-back would release the new
                                # poll's lease.
                                exclude=[*handed_back, *self._unreleased],
                                pass_started=pass_started,
                                host_room=room,
                                host_limit=share,
                                now=claimed_on,
                            )
                            # Its run holds them now, and releases them itself.
                            for feed in feeds:
                                self._unreleased_hosts.pop(feed.host, None)
                    except StoreError as e:
                        self.progress_at = time.monotonic()  # answered, if with an error
                        if not running:
                            raise
                        # The feeds in progress go on (each of their writes meets the
                        # database or is handed back on its own); claiming waits for the
                        # next pass, and the feeds it would have taken stay due.
                        log.warning("claim_failed", error=str(e), in_progress=len(running))
                        exhausted = True
                        break
                    self.claims += 1
                    self.progress_at = time.monotonic()
                    busy = any(n <= 0 for n in room.values())
                    exhausted, blocked = not feeds and not busy, not feeds and busy
                    again = [f.id for f in feeds if f.id in done]
                    if again:  # due again already (a clock behind the database's): next pass
                        await self.store.release_leases(self.owner, again)
                        handed_back.extend(again)
                    for feed in feeds:
                        held[feed.host] = feed.url
                        if feed.id not in done:
                            done.add(feed.id)
                            self._committed[feed.id] = _Committed()
                            self._claimed_on[feed.id] = (claimed_on, claimed_at)
                            leases[feed.id] = claimed_at + self.settings.lease_seconds
                            per_host[feed.host] += 1
                            task = asyncio.create_task(self._process_guarded(feed))
                            task.add_done_callback(on_done)
                            running[task] = feed
                    idle.update(f.host for f in feeds if not per_host[f.host])
                if not running:
                    break
                self._wake.clear()
                if not finished and not self._rescan.is_set():
                    await self._wake.wait()
                if self._rescan.is_set():
                    self._rescan.clear()
                    if not all_feeds:  # a new pass: what is due now, whatever this one did
                        if on_pass is not None:
                            on_pass(summary)
                            summary = self.pass_summary = RunSummary()
                        exhausted = blocked = False
                        done.intersection_update(f.id for f in running.values())
                        handed_back.clear()
                        # Pages left by feeds that failed while they were fetched: a later
                        # poll of the same link fetches it anew.
                        for link in [k for k, page in self._pages.items() if page.done()]:
                            del self._pages[link]
                ended, finished[:] = finished[:], []
                for task in ended:
                    self.progress_at = time.monotonic()
                    feed = running.pop(task)
                    leases.pop(feed.id, None)
                    committed = self._committed.pop(feed.id, _Committed())
                    self._claimed_on.pop(feed.id, None)
                    per_host[feed.host] -= 1
                    if per_host[feed.host] < share:
                        blocked = False
                    if not per_host[feed.host]:
                        idle.add(feed.host)
                    if task.cancelled() or (outcome := task.result()) is None:
                        # Its lease ran out (`_renew_leases`), or it was handed back without
                        # an outcome: not again in this pass, and what it committed (articles
                        # stored, or updated in place) still counts.
                        handed_back.append(feed.id)
                        summary.new_articles += committed.new
                        summary.updated += committed.updated
                    else:
                        summary.add(outcome)
                if idle:
                    # Done with these hosts for now: another process may take them a host
                    # delay from now, not once their claims' leases run out (a service's run
                    # goes on while any feed is in flight). Kept until the run ends where the
                    # database does not answer. Those other feeds' pages go on to are let go
                    # with the last of them (`_page_hosts`).
                    for host in idle & self._page_hosts.busy():
                        del held[host]
                        idle.discard(host)
                    with contextlib.suppress(IngestError):
                        await self.store.release_hosts(
                            self.owner, idle, self.settings.host_delay, self._hold_ends(idle, held)
                        )
                        for host in idle:
                            del held[host]
                    idle.clear()
        except BaseException:
            # Cancelled (SIGTERM past the grace period, Ctrl-C) or the database went away:
            # stop the feeds in progress and hand them back at once instead of letting their
            # leases run out.
            for task in running:
                task.cancel()
            for page in self._pages.values():
                page.cancel()
            # A group of their articles being written commits (or, past WRITER_GRACE, rolls
            # back) before the leases go back: no write of a feed lands after another replica
            # may have claimed it. A feed cancelled while its articles are in that group ends
            # once the group is in: the writers are closed meanwhile, not after.
            closing = asyncio.ensure_future(self._close_writers())
            await asyncio.gather(*running, *self._pages.values(), return_exceptions=True)
            await asyncio.shield(closing)
            # With the full-text state of those whose entries were all stored (`_committed`).
            kept = {
                f.id: state
                for f in running.values()
                if (state := self._committed.get(f.id, _Committed()).full_text) is not None
            }
            with contextlib.suppress(IngestError):
                await asyncio.shield(
                    self.store.release_leases(self.owner, [f.id for f in running.values()], kept)
                )
            raise
        finally:
            renewer.cancel()
            # Pages of feeds that failed while they were fetched: no feed waits for them now.
            left = [page for page in self._pages.values() if not page.done()]
            self._pages.clear()
            for page in left:
                page.cancel()
            await asyncio.gather(renewer, *left, return_exceptions=True)
            await self._forget_robots_asked()
            for host in set(held) & self._page_hosts.busy():
                del held[host]
            if held:
                try:
                    await asyncio.shield(
                        self.store.release_hosts(
                            self.owner, held, self.settings.host_delay, self._hold_ends(held, held)
                        )
                    )
                except IngestError:
                    # The database went away: released once it answers again, with the
                    # leases of the feeds whose outcome it did not record.
                    self._unreleased_hosts.update(held)
                    self._start_hand_back()
        return summary

    def _hold_ends(self, hosts: Iterable[str], urls: Mapping[str, str]) -> dict[str, float]:
        """How long each of `hosts` stays held once released (sql/0045): its delay as this
        process keeps it (INGEST_HOST_DELAY, raised by its robots.txt's Crawl-delay), or what
        is left of its Retry-After where longer, so that another process's first request does
        not follow this one's last sooner, nor come while the host asked for none. `urls`: a
        URL of each host (one that cannot be requested keeps INGEST_HOST_DELAY)."""
        ends: dict[str, float] = {}
        for host in hosts:
            with contextlib.suppress(IngestError):
                ends[host] = self.fetcher.quiet_for(urls[host])
        return ends

    async def _renew_leases(
        self, running: dict[asyncio.Task[FeedOutcome | None], Feed], leases: dict[int, float]
    ) -> None:
        """Renew the leases of the feeds in progress every third of INGEST_LEASE_SECONDS, and
        again shortly before one runs out while renewals fail. A feed whose lease may run out
        before it is renewed (the database did not answer; the process stalled, and another
        process may have claimed the feed meanwhile), or that a renewal finds this process
        holds no more (released under it, taken once the database's clock had it run out), is
        stopped: two polls of one feed would fetch its pages twice and count its entries' tries
        twice. A feed whose outcome is being recorded, or whose lease is being handed back, is
        not stopped: that write changes nothing once the lease is another's, and a poll it
        records belongs in the run's summary. `leases`: the loop time until which each feed's
        lease surely holds, updated here."""
        lease = self.settings.lease_seconds
        period = lease / 3
        margin = min(1.0, lease / 10)  # a feed is stopped this long before its lease runs out
        loop = asyncio.get_running_loop()
        stopped: set[int] = set()
        while True:
            soonest = min(
                (
                    leases.get(f.id, math.inf)
                    for f in running.values()
                    if f.id not in stopped and f.id not in self._finishing
                ),
                default=math.inf,
            )
            await asyncio.sleep(max(0.0, min(period, soonest - margin - loop.time())))
            held = [f.id for f in running.values() if f.id not in stopped]
            if not held:
                continue
            started = loop.time()
            lost: set[int] = set()
            await self._page_hosts.renew()
            try:
                renewed = await self.store.renew_leases(self.owner, held, lease)
            except IngestError as e:
                log.warning("lease_renewal_failed", error=str(e))
            else:
                # Not held any more though this process did not hand it back (released under
                # it, or taken once the database's clock had it run out): stopped at once.
                lost = set(held) - renewed
                for feed_id in renewed:
                    if feed_id in leases:
                        leases[feed_id] = started + lease
            now = loop.time()
            for task, feed in list(running.items()):
                if (
                    feed.id not in stopped
                    and feed.id not in self._finishing
                    and not task.done()
                    and (feed.id in lost or leases.get(feed.id, math.inf) - margin <= now)
                ):
                    stopped.add(feed.id)
                    log.error("feed_lease_lost", feed_id=feed.id, url=redact_url(feed.url))
                    task.cancel()

    async def _process_guarded(self, feed: Feed) -> FeedOutcome | None:
        """process_feed, but a feed whose outcome cannot even be recorded (the database went
        away) is handed back and logged instead of aborting the other feeds. A feed the
        operator removed while it was polled (its rows then violate a foreign key) is no
        error: it is logged as `feed_removed_while_polled`, at info level."""
        try:
            return await self.process_feed(feed)
        except IngestError as e:
            if await self._removed(feed.id):
                log.info("feed_removed_while_polled", feed_id=feed.id, url=redact_url(feed.url))
                return None
            log.error("feed_not_recorded", feed_id=feed.id, error=str(e))
            # The full-text state the poll's stored entries left goes back with the lease, as
            # with a failure recorded (`_record_failure`): those entries are known at the next
            # poll, and their comparisons are not made again.
            state = None if refused(e) else self._committed.get(feed.id, _Committed()).full_text
            kept = {feed.id: state} if state is not None else {}
            with contextlib.suppress(IngestError, TimeoutError):
                # At once, where the database answers already (the unit of work failed, not
                # the database): the feed is due again before this call returns. Not for
                # long: a database that is down is left to the retries of `_hand_back`.
                async with asyncio.timeout(INLINE_RELEASE_SECONDS):
                    with self._finishing_poll(feed.id):
                        await self.store.release_leases(self.owner, [feed.id], kept)
                return None
            self._unreleased[feed.id] = state
            self._start_hand_back()
            return None

    async def _removed(self, feed_id: int) -> bool:
        """Whether the feed is known to be removed: False where the database cannot say at
        once (down: the failure is then its own)."""
        with contextlib.suppress(IngestError, TimeoutError):
            async with asyncio.timeout(INLINE_RELEASE_SECONDS):
                return not await self.store.feed_exists(feed_id)
        return False

    def _start_hand_back(self) -> None:
        """`_hand_back`, unless it is under way."""
        if self._handing_back is None or self._handing_back.done():
            self._handing_back = asyncio.ensure_future(self._hand_back())

    async def _hand_back(self) -> None:
        """Hand back the leases of the feeds whose outcome could not be recorded, and the hosts
        of runs that ended while the database did not answer (`_unreleased_hosts`), as soon
        as it answers again (tried at once, then every 1, 2, 4, ... 15 s): the feeds are due
        again at once and their hosts free a host delay later, for this process's next tick
        or another replica, instead of when their leases run out."""
        delay = 0.0
        feeds = hosts = 0
        while self._unreleased or self._unreleased_hosts:
            if delay:
                await asyncio.sleep(delay)
            try:
                if self._unreleased:
                    ids = sorted(self._unreleased)
                    kept = {i: s for i in ids if (s := self._unreleased[i]) is not None}
                    await self.store.release_leases(self.owner, ids, kept)
                    for i in ids:
                        del self._unreleased[i]
                    feeds += len(ids)
                async with self._claiming:
                    left = dict(self._unreleased_hosts)
                    if left:
                        await self.store.release_hosts(
                            self.owner, left, self.settings.host_delay, self._hold_ends(left, left)
                        )
                        for host in left:
                            del self._unreleased_hosts[host]
                        hosts += len(left)
            except IngestError:
                delay = min(HAND_BACK_MAX_DELAY, max(HAND_BACK_FIRST_DELAY, 2 * delay))
                continue
        if delay:
            log.info("leases_handed_back", feeds=feeds, hosts=hosts)

    @contextlib.contextmanager
    def _finishing_poll(self, feed_id: int) -> Iterator[None]:
        """The feed's outcome is being recorded, or its lease handed back (`_finishing`)."""
        self._finishing.add(feed_id)
        try:
            yield
        finally:
            self._finishing.discard(feed_id)

    async def _close_writers(self) -> None:
        """Let the groups of articles and of feed outcomes being written finish, for at most
        WRITER_GRACE (then they roll back)."""
        await asyncio.gather(
            self._articles.close(WRITER_GRACE), self._successes.close(WRITER_GRACE)
        )

    async def aclose(self) -> None:
        """Let a group of articles or feed outcomes being written finish (for at most
        WRITER_GRACE, then it rolls back), and stop handing back leases (a process that exits
        leaves them to expire)."""
        await self._close_writers()
        await self._forget_robots_asked()
        if self._handing_back is not None:
            self._handing_back.cancel()
            await asyncio.gather(self._handing_back, return_exceptions=True)

    def _ask_robots(self, url: str) -> None:
        """Ask for the robots.txt of a changed feed's host now, beside the feed's parse: its new
        entries' pages are mostly on that host and need it first, and the host's delay then
        runs from it while the feed is parsed (which waits its turn for a worker), not after.
        Cached, it costs nothing; what it meets (a failure, a refusal) is the pages' to meet
        when they ask (the fetcher keeps one request per origin)."""
        task: asyncio.Task[object] = asyncio.ensure_future(self.fetcher.robots_verdict(url))
        self._robots_asked.add(task)
        task.add_done_callback(self._robots_answered)

    def _robots_answered(self, task: asyncio.Task[object]) -> None:
        """Forgets a robots.txt asked for ahead of the pages, and takes its exception, which the
        pages meet themselves."""
        self._robots_asked.discard(task)
        if not task.cancelled():
            task.exception()

    async def _forget_robots_asked(self) -> None:
        """Stop the robots.txt requests still running (the run is over or stopped)."""
        left = [task for task in self._robots_asked if not task.done()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    async def process_feed(self, feed: Feed) -> FeedOutcome:
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(
            feed_id=feed.id, feed_url=redact_url(feed.url)
        ):
            try:
                outcome = await self._process(feed)
            except StoreError as e:
                # The database failed, not the feed: no backoff, no step towards giving the
                # feed up; _process_guarded hands it back still due. Unless the database
                # refused the feed's own rows, which it would at every poll: that is the
                # feed's failure, recorded with its backoff and error.
                if not refused(e):
                    raise
                outcome = await self._record_failure(feed, e)
            except HeldError as e:
                outcome = await self._record_held(feed, e)
            except IngestError as e:
                outcome = await self._record_failure(feed, e)
            except Exception as e:
                log.exception("feed_bug")
                outcome = await self._record_failure(feed, e)
            elapsed = time.monotonic() - started
            metrics.FEEDS_POLLED.labels(outcome.status).inc()
            metrics.FEED_SECONDS.observe(elapsed)
            # (ingest_articles_updated_total counts updates as they commit: `_refetch`.)
            log.info(
                "feed_processed",
                status=outcome.status,
                new=outcome.new,
                skipped=outcome.skipped,
                page_errors=outcome.page_errors,
                deferred=outcome.deferred,
                updated=outcome.updated,
                from_feed=outcome.from_feed,
                not_modified=outcome.status == "not_modified",
                error=outcome.error,
                ms=int(elapsed * 1000),
            )
            return outcome

    async def _record_held(self, feed: Feed, e: HeldError) -> FeedOutcome:
        """The feed's request was not sent: its host answered another request (of this feed's
        or another's) with a Retry-After that is not over. The host asked us to wait, the feed
        did nothing wrong: it is due again when the hold ends, with no failure, error or end
        of its 404 streak recorded, no backoff, and no error counted."""
        with self._finishing_poll(feed.id):
            await self.store.feed_held(
                feed.id, owner=self.owner, wait=timedelta(seconds=math.ceil(e.seconds))
            )
        return FeedOutcome(feed.id, "held", error=_failure_message(feed, e))

    def _on_clock_now(self, feed: Feed, now: datetime) -> Feed:
        """The feed as claimed, the times its streaks began on the wall clock as it reads
        `now`: moved with it where it was set since the claim (`schedule.on_clock`), by the
        difference between what it moved and the loop's (monotonic) time that passed."""
        claimed = self._claimed_on.get(feed.id)
        if claimed is None:
            return feed
        claimed_on, claimed_at = claimed
        passed = timedelta(seconds=asyncio.get_running_loop().time() - claimed_at)
        return on_clock(feed, now - claimed_on - passed)

    async def _record_failure(self, feed: Feed, e: BaseException) -> FeedOutcome:
        message = _failure_message(feed, e)
        now = self.clock()
        feed = self._on_clock_now(feed, now)

        def decide(claimed: Feed, rng: random.Random) -> FeedFailure:
            return decide_feed_failure(
                claimed,
                message,
                retry_after=e.retry_after if isinstance(e, FetchError) else None,
                policy=self.policy,
                now=now,
                rng=rng,
                status=e.status if isinstance(e, FetchError) else None,
                date=e.date if isinstance(e, FetchError) else None,
            )

        if_enabled = None
        if not feed.active or feed.consecutive_failures:
            # `ingest feeds enable` may have run while the poll was in flight: the failure is
            # then the first of an active feed, not one more of the feed the claim read
            # (`Store.feed_failed` tells which). Decided on a copy of the random source, so
            # that the usual decision draws what it would have drawn.
            fork = random.Random()
            fork.setstate(self.rng.getstate())
            enabled = replace(
                feed,
                active=True,
                consecutive_failures=0,
                failing_since=None,
                consecutive_not_found=0,
                not_found_since=None,
            )
            if_enabled = decide(enabled, fork)
        failure = decide(feed, self.rng)
        # A 429 or 503 with a Retry-After holds the feed, and its host's other feeds, for as
        # long as the one rule says (`retry_after_wait`), shown in news.feeds.held_until.
        held_for = None
        if isinstance(e, FetchError) and e.status in (429, 503):
            held_for = retry_after_wait(self.policy, e.retry_after, now, date=e.date) or None
        # The full-text state of the entries stored before the failure, unless the database
        # refused the poll's values: they may be the state's own.
        full_text = None if refused(e) else self._committed.get(feed.id, _Committed()).full_text
        with self._finishing_poll(feed.id):
            await self.store.feed_failed(
                feed.id,
                owner=self.owner,
                now=failure.now,
                next_fetch_at=failure.next_fetch_at,
                error=message,
                deactivate=failure.deactivate,
                reason=failure.reason,
                claimed=(feed.active, feed.consecutive_failures),
                if_enabled=if_enabled,
                full_text=full_text,
                not_found=failure.not_found,
                held_for=held_for,
            )
        # Counted once recorded, as the poll's outcome is: a failure the database did not take
        # is handed back, polled again, and counted then.
        metrics.ERRORS.labels(type(e).__name__).inc()
        if held_for is not None and isinstance(e, FetchError) and e.response_url:
            await self._hold_host(feed, held_for, e.response_url)
        if failure.deactivate:
            log.warning("feed_deactivated", failures=failure.failures, reason=failure.reason)
        # Articles that committed before the failure stay stored (new) or updated: counted.
        committed = self._committed.get(feed.id, _Committed())
        return FeedOutcome(
            feed.id, "error", new=committed.new, updated=committed.updated, error=message
        )

    async def _hold_host(self, feed: Feed, wait: timedelta, refused: str) -> None:
        """A Retry-After on one feed of a host holds the host's other feeds too, in the
        database, where every replica's claims see it (the fetcher's own hold is only in this
        process), for `wait`, the feed's own hold. The host held is the one that refused (`refused`,
        the response's URL): after a redirect, the host the feed was sent to, not the one it is
        registered at. That URL is spelled as the request went out (an internationalized name
        in punycode); its canonical form spells the host as the feeds' registered URLs do."""
        with contextlib.suppress(ValueError):
            refused = canonical_url(refused)
        host = host_key(urlsplit(refused).hostname or "")
        try:
            with self._finishing_poll(feed.id):
                await self.store.hold_host_feeds(feed.id, refused, wait)
        except StoreError as error:
            # The feed's failure is recorded; its host's other feeds meet the refusal themselves.
            log.warning("host_hold_failed", host=host, error=str(error))
            return
        log.info("host_held", host=host, seconds=round(wait.total_seconds()))

    async def _process(self, feed: Feed) -> FeedOutcome:
        result = await self.fetcher.fetch(
            feed.url,
            "feed",
            etag=feed.etag,
            last_modified=feed.last_modified,
            # Not while the workers are behind (`Backlog`): asked once the request may start,
            # so that only requests actually running can land on a full backlog.
            starting=self._backlog.room,
            extra_headers=feed.settings.request_headers(),
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

        if feed.kind == "feed" and (replaced := await self._rediscover(feed, result)):
            return replaced
        self._ask_robots(result.final_url)
        parsed = await self._parse(feed, result.body, result.final_url, result.headers)
        result = replace(result, body=b"")
        entries = await self._ingest_entries(feed, parsed)
        await self._record_success(
            feed,
            result,
            body_hash=body_hash,
            parsed=parsed,
            # Entries waiting for another try at their page (new ones, and updates) need the
            # next poll to parse the feed again: keep neither validators nor body hash that
            # would let it skip that.
            keep_validators=entries.deferred == 0,
            full_text=entries.full_text,
        )
        return FeedOutcome(
            feed.id,
            "ok",
            new=entries.new,
            skipped=entries.skipped,
            page_errors=entries.page_errors,
            deferred=entries.deferred,
            updated=entries.updated,
            from_feed=entries.from_feed,
        )

    async def _rediscover(self, feed: Feed, page: FetchResult) -> FeedOutcome | None:
        """A registered URL that answers a web page (registered as given when it could not be
        checked): what it stands for, found as `feeds add` finds it (ingest.sources), is
        registered, and the page itself given up on, saying why. None when the body is not a
        web page or nothing is found."""
        # Imported here: discovery brings lxml and feedparser, which `ingest run` would
        # otherwise load before its first request only for this rare case.
        from ingest.documents.discovery import looks_like_html
        from ingest.documents.feeds import looks_like_feed
        from ingest.documents.sitemaps import Sitemap, parse_sitemap
        from ingest.sources import page_sources

        if not looks_like_html(page.body, page.content_type) or looks_like_feed(page.body):
            return None

        async def parse(body: bytes, url: str, max_bytes: int) -> Sitemap:
            # A news sitemap can be megabytes: read in a worker, not on the event loop.
            return await parse_in_worker(
                self.workers,
                parse_sitemap,
                body,
                url,
                max_bytes,
                url=url,
                timeout=self.settings.parse_timeout,
            )

        try:
            found = await page_sources(
                self.fetcher.fetch, page, max_bytes=self.settings.max_feed_bytes, parse=parse
            )
        except IngestError:
            found = []
        if not found:
            return None
        # Registered with their user-info (a feed may need it), named without: the reason is
        # the page's last error, shown by `ingest feeds` and in news.feeds. None once the page's
        # lease is lost (paused or removed meanwhile): its outcome is not recorded either.
        named = [redact_url(f.url) for f in found]
        reason = f"a web page, not a feed: replaced by {', '.join(named)}"
        registered = [(f.url, f.title, f.kind, f.site) for f in found]
        if await self.store.add_found_feeds(feed.id, self.owner, registered):
            log.info("feed_rediscovered", found=named)
        # Given up on (or, given up already, for this reason now), and so probed at the
        # slowest rate, as every feed given up on is.
        now = self.clock()
        failure = decide_feed_failure(
            self._on_clock_now(feed, now), reason, retry_after=None, policy=self.policy,
            now=now, rng=self.rng, give_up=reason,
        )  # fmt: skip
        with self._finishing_poll(feed.id):
            await self.store.feed_failed(
                feed.id, owner=self.owner, now=failure.now, next_fetch_at=failure.next_fetch_at,
                error=reason, deactivate=failure.deactivate, reason=failure.reason,
            )  # fmt: skip
        return FeedOutcome(feed.id, "error", error=reason)

    async def _record_success(
        self,
        feed: Feed,
        result: FetchResult,
        *,
        body_hash: bytes | None,
        parsed: ParsedFeed | None,
        keep_validators: bool = True,
        full_text: FullText | None = None,
    ) -> None:
        now = self.clock()
        update = decide_feed_update(
            self._on_clock_now(feed, now),
            result,
            body_hash=body_hash,
            parsed=parsed,
            keep_validators=keep_validators,
            policy=self.policy,
            now=now,
            rng=self.rng,
            full_text=full_text,
        )
        # Moved while the lease is held, before the outcome releases it: a move that fails
        # leaves the poll unrecorded (handed back, done again), not recorded and unreported.
        if update.move_to is not None:
            # Credentials go where they went across the redirect (`credentials_stay`).
            stay = credentials_stay(feed.url, update.move_to)
            moved = await self.store.move_feed(
                feed.id,
                update.move_to,
                update.full_text,
                () if stay else credential_header_names(feed.settings.headers),
                owner=self.owner,
            )
            if moved == "held":
                # The feed at that URL is paused: this one goes on polling through the
                # redirect, its outcome recorded as any poll's.
                log.info("feed_move_held", new_url=redact_url(update.move_to))
            elif isinstance(moved, tuple):
                kept, left = moved
                log.info(
                    "feed_moved",
                    new_url=redact_url(update.move_to),
                    merged_into=kept if kept != feed.id else None,
                )
                if left:
                    log.warning(
                        "feed_credentials_left_behind",
                        headers=left,
                        new_url=redact_url(update.move_to),
                        site=credential_site(update.move_to),
                    )
        with self._finishing_poll(feed.id):
            if (error := await self._successes.add(update)) is not None:
                raise error

    async def _parse(
        self, feed: Feed, body: bytes, url: str, headers: dict[str, str]
    ) -> ParsedFeed:
        # The body is counted while it waits for a worker (never while anything here waits for
        # a request: a full backlog holds requests back), until its parse ends; let go then,
        # as its pages can take minutes of politeness.
        timeout, size = self.settings.parse_timeout, len(body)
        if feed.kind == "sitemap":  # a news sitemap followed as if it were a feed
            from ingest.documents.sitemaps import sitemap_sites

            max_bytes = self.settings.max_feed_bytes
            # The URLs of its own site only, by the backfill's rule: the site whose robots.txt
            # named it (its site_url) may have it hosted elsewhere.
            sites = sitemap_sites(feed.url, url, feed.site_url)
            parsed = await self._backlog.hold(
                size,
                parse_in_worker(
                    self.workers,
                    parse_sitemap_feed,
                    body,
                    url,
                    headers,
                    max_bytes,
                    sites,
                    url=feed.url,
                    timeout=timeout,
                ),
            )
            if parsed.elsewhere:
                # Not the feed's failure (a sitemap may list a partner's pages), but URLs not
                # followed; a warning where none was kept: a sitemap hosted elsewhere (a CDN)
                # whose site is not recorded lists nothing of its own, and `feeds add` of the
                # site that names it says which site it is.
                (log.info if parsed.entries else log.warning)(
                    "sitemap_urls_elsewhere",
                    left_out=parsed.elsewhere,
                    kept=len(parsed.entries),
                    site_url=redact_url(feed.site_url) if feed.site_url else None,
                )
            return parsed
        return await self._backlog.hold(
            size,
            parse_in_worker(
                self.workers, parse_feed, body, url, headers, url=feed.url, timeout=timeout
            ),
        )

    async def _ingest_entries(self, feed: Feed, parsed: ParsedFeed) -> EntriesOutcome:
        now = self.clock()
        entries = dedup.newest(parsed.entries, self.settings.max_entries_per_feed, now)
        found, invalid = dedup.candidates(entries)
        found, known = await known_entries(self.store, feed.id, found)
        plan = dedup.plan(
            found,
            known_entries=known.done,
            known_urls=known.urls,
            listed=known.listed,
            attempts={**known.waiting, **known.update_attempts},
            invalid=invalid,
            now=now,
        )
        await self.store.link_entries(feed.id, plan.link, dedup.update_times(found, now))
        owns = await self._own_texts(feed, plan.fetch)
        # The caps this poll's new entries show (`ingest.fulltext.poll_caps`) hold for its
        # updates and its new entries alike.
        feed = replace(feed, full_text=poll_caps(feed.full_text, owns))
        news = [own.text for own in owns]
        updated, unchanged, retried, changed = await self._refetch(
            feed, plan.refetch, plan.stamped, now, news
        )
        storer = _Storer(self._articles, feed.id)
        deferred: list[dedup.Candidate] = []
        held: set[bytes] = set()

        async def ready(i: int, page: PageOutcome, own: bool, now: bool) -> None:
            c = plan.fetch[i]
            # An entry whose own text is its article never waits for its page.
            if not own and page.retry_later(c.attempts, self.settings.page_attempts):
                deferred.append(c)
                if page.held:
                    held.add(c.key)
                return
            article = self._article(c, page, text_from_feed=own, own=owns[i])
            if article is not None:
                await storer.add(article, c.key, now=now, unfetched=page is NO_PAGE)

        try:
            full_text = await self._entry_pages(feed, plan.fetch, owns, ready, changed)
            await storer.flush()
            # The entries it was decided on are stored: a failure after this point records it.
            if (committed := self._committed.get(feed.id)) is not None:
                committed.full_text = full_text
            await self.store.defer_entries(
                feed.id,
                [c.key for c in deferred],
                [c.link for c in deferred],
                [c.attempts for c in deferred],
                tried=[c.key not in held for c in deferred],
            )
        finally:
            for c in plan.fetch:  # stored (or deferred): later feeds find it in the database
                # A page still running (this feed failed mid-way) stays for `run` to stop.
                if (task := self._pages.get(c.link)) is not None and task.done():
                    del self._pages[c.link]
        return EntriesOutcome(
            new=storer.new,
            # Each entry counted once: the stamped ones are among the plan's skipped, and among
            # the refetches that changed nothing (`_refetch`), which are skipped too.
            skipped=plan.skipped - len(plan.stamped) + unchanged + storer.existing,
            page_errors=storer.page_errors,
            deferred=len(deferred) + retried,
            updated=updated,
            from_feed=storer.from_feed,
            full_text=full_text,
        )

    async def _own_texts(self, feed: Feed, found: tuple[dedup.Candidate, ...]) -> list[OwnText]:
        """Each new entry's own text, measured in a worker process (`ingest.fulltext.own_text`):
        a feed of full articles is tens of ms of CPU, which on the event loop would hold up
        every other feed. Nothing to measure for a feed whose pages are always fetched or for
        entries without content; where the worker fails, the texts count as absent (the pages
        are fetched)."""
        owns = [OwnText()] * len(found)
        with_content = [i for i, c in enumerate(found) if c.entry.content]
        if feed.text_mode == "page" or not with_content:
            return owns
        try:
            measured = await self.workers.run(
                own_texts,
                [found[i].entry for i in with_content],
                timeout=self.settings.parse_timeout,
            )
        except WorkerError as e:
            log.warning("own_texts_failed", error=str(e))
            return owns
        except Exception:  # raised in the worker: the texts count as absent all the same
            log.exception("own_texts_failed")
            return owns
        for i, own in zip(with_content, measured, strict=True):
            owns[i] = own
        return owns

    async def _entry_pages(
        self,
        feed: Feed,
        found: tuple[dedup.Candidate, ...],
        owns: Sequence[OwnText],
        ready: Callable[[int, PageOutcome, bool, bool], Awaitable[None]],
        updates: Sequence[str] = (),
    ) -> FullText:
        """Each new entry's page outcome and whether its own text is the article, handed to
        `ready` (entry index, outcome, own, whether to store now) as soon as it is known, so
        that a feed's articles are stored while its other pages are still fetched (a feed of
        20 pages on a polite host takes 10 s); then the feed's full-text state
        (ingest.fulltext): a
        full-text feed's entries are not fetched (their outcome is NO_PAGE) but for the
        re-checks; every page fetched of an entry with text of its own is compared with it,
        and where the comparison fails the entry is still stored from its text if it
        `ingest.fulltext.stands` and the feed is full-text once the failure is counted (in
        feed order; while the feed is probed, once probing is done). `updates`: the texts of
        the poll's updated entries (`_refetch`), whose templates the feed learns too."""
        state, mode = feed.full_text, feed.text_mode
        # A text several entries of the poll carry (new ones and updates), or that the feed
        # carried in place of several stories before, is the article of none (`shared`).
        alike: set[int] = set()
        if mode == "auto":
            texts = [*(own.text for own in owns), *updates]
            every = shared(texts, state.templates)
            state = with_templates(state, texts, every)
            alike = {i for i in every if i < len(owns)}
        counts = [
            0 if i in alike else article_words(own.text, mode, own.words, state)
            for i, own in enumerate(owns)
        ]
        seen: set[int] = set()
        # Whether the last of the poll's pages to decide anything left a proven feed's
        # comparison undone (the page failed in passing, or was another page): the next entry
        # is compared instead (up to STAND_INS times a poll), else the next poll's first.
        undone = False
        # Entries whose comparison failed but whose text may stand for the article: stored once
        # the state their comparison leaves is known (after the batch; while probing, after it).
        doubtful: dict[int, PageOutcome] = {}

        async def fetch(
            indices: list[int],
            *,
            probing: bool = False,
            earlier: tuple[FullText, list[tuple[bool, float, float, int, bool]]] | None = None,
        ) -> FullText:
            """`indices`' pages fetched and compared: the state after them, judged from the
            planned state, or with `earlier`, from a state and the comparisons of rounds since
            (to which this round's are added), as one batch would be; `undone` as they leave
            it."""
            nonlocal undone
            # Only an entry that may be the article is compared: not a teaser, and an excerpt
            # only where its page ends where it does (its text is not measured against the
            # whole page: an excerpt's page seldom ends alike); never a text as long as the
            # length at which the feed cuts (`capped`), whose page is its article; nor a text
            # other entries carry too (`shared`).
            compares = {
                i
                for i in indices
                if mode == "auto"
                and owns[i].words >= MIN_WORDS
                and not capped(state, owns[i].text)
                and i not in alike
            }
            compared: dict[int, tuple[bool, float, float, int, bool]] = {}
            # Re-checks of a proven feed that a passing failure of their page left undone.
            unchecked: set[int] = set()

            async def one(i: int) -> None:
                feed_text = owns[i].text
                text = feed_text if i in compares else None
                page = await self._page_once(found[i].link, feed, text)
                seen.add(i)
                ex = page.extracted
                # While probing, the round waits for the comparisons, not for the stores: what
                # it fetched is stored with the feed's next store.
                now = not probing
                c = None
                if text is not None and ex is not None:
                    # Measured in the worker, unless the page was fetched for another feed's
                    # entry (then here, against the extraction only).
                    c = (
                        ex.comparison
                        if ex.feed_text_digest == digest(text)
                        else measure(text, ex.text)
                    )
                if c is None:
                    if (
                        text is not None
                        and ex is None
                        and not probing
                        and stands_unchecked(state, feed_text, owns[i].words)
                    ):
                        # A proven feed's re-check whose page failed: the entry is the feed's
                        # article all the same (stored now, not held for another try at its
                        # page), and after a passing failure the comparison stays due.
                        if page.transient:
                            unchecked.add(i)
                        await ready(i, page, True, now)
                        return
                    await ready(i, page, False, now)
                    return
                another = ex is not None and another_page(found[i].entry, ex, page.final_url)
                if other_page(state, feed_text, owns[i].words, c, another):
                    # The page is not the entry's article (an interstitial, an error page
                    # served as a success): the entry is its text, stored without the page's
                    # metadata, and the comparison stays due.
                    unchecked.add(i)
                    await ready(i, OTHER_PAGE_OUTCOME, True, now)
                    return
                # An excerpt that ends where its page does proves nothing about the feed.
                if not looks_cut(feed_text):
                    compared[i] = (c.same, c.holds, c.clean, owns[i].words, c.stands)
                if c.stands:
                    doubtful[i] = page
                    return
                await ready(i, page, c.same, now)

            try:
                async with asyncio.TaskGroup() as group:
                    for i in indices:
                        group.create_task(one(i))
            except BaseExceptionGroup as failed:
                # The others were cancelled: what failed reaches the caller as itself, not
                # wrapped in a group; a StoreError first (the feed is handed back).
                raise _chief(failed) from None
            # Each entry's state is that of the comparisons up to it, from the planned state.
            start, so_far = earlier if earlier is not None else (state, [])
            after = observe(start, so_far)
            for i in indices:  # feed order
                if i in compared:
                    so_far.append(compared[i])
                    after = observe(start, so_far)
                    undone = False  # a comparison after an undone re-check stands for it
                elif i in unchecked:
                    undone = True
                if i in doubtful and not probing:  # stored with the next store
                    await ready(i, doubtful.pop(i), after.on, False)
            return after

        rest = list(range(len(found)))
        # Undecided: a few pages at a time until the feed proves full-text or fails to twice.
        while first := probe(state, mode, [counts[i] for i in rest]):
            state = await fetch([rest[j] for j in first], probing=True)
            rest = [i for i in rest if i not in seen]
        # Not stored if the feed fails first: they are new entries again at the next poll.
        for i in sorted(doubtful):
            await ready(i, doubtful.pop(i), state.on, False)
        # Entries short for a full-text feed: the shortest first, one at a time, judged as one
        # batch (a match settles a miss before it, as it would in one poll's batch).
        checks: tuple[FullText, list[tuple[bool, float, float, int, bool]]] = (state, [])
        while short := shrunk(state, mode, [counts[i] for i in rest]):
            state = await fetch([rest[j] for j in short], earlier=checks)
            rest = [i for i in rest if i not in seen]
        # The others in feed order, planned up to a proven feed's next comparison at a time
        # (`until_check`): those after it are planned once it is in, so that none is stored
        # from the feed's text on a state it changed (a failed comparison has the next entry
        # compared, a second one switches the feed back for the rest of the poll).
        stand_ins = STAND_INS
        while rest:
            if undone and stand_ins and state.on:
                state, stand_ins = still_due(state), stand_ins - 1
            k = until_check(state, mode, [counts[i] for i in rest])
            head, rest = rest[:k], rest[k:]
            wanted, state = wants_pages(state, mode, [counts[i] for i in head])
            # Handed over together, stored with the first page that comes in (or at the end).
            for i, want in zip(head, wanted, strict=True):
                if not want:
                    await ready(i, NO_PAGE, True, False)
            state = await fetch([i for i, want in zip(head, wanted, strict=True) if want])
        return still_due(state) if undone else state

    async def _refetch(
        self,
        feed: Feed,
        found: tuple[dedup.Candidate, ...],
        stamped: tuple[dedup.Candidate, ...],
        now: datetime,
        news: Sequence[str] = (),
    ) -> tuple[int, int, int, list[str]]:
        """Pages of stored articles whose feed entry was updated: fetched again, and the
        article updated in place if its text changed. A page that cannot be used now leaves
        the stored version alone: after a passing failure the update waits for another try
        (its try counted, `ArticleStore.defer_updates`, unless its host held the request back;
        tried again at the next poll, which
        reads the feed again, as for a new entry waiting for its page), up to
        INGEST_PAGE_ATTEMPTS tries; past them, or after a failure that is not passing, the
        entry's update time is recorded, so that the page is not fetched again until the entry
        changes again (a page gone for good or a consent wall stays so). A
        full-text feed's entry (`feed` mode, or proven in `auto`) is its own article: updated
        from its new text without a request where a new entry's would be (the entry's text is
        where its correction is; its page may not have it, and is what the feed spares), unless
        that text would lose most of the stored one (`update_words`). So are `stamped`
        entries of such a feed (their update time the feed's stamp, `dedup.stamps`: an edit
        of theirs shows in their text alone), but never from their pages. An entry whose article
        is stored in a version as new as it (`dedup.newer_than_stored`: another feed listing
        the article reached the edit first) has its update time recorded without a request.
        Updates are not new entries: none is one of the feed's re-checks (its page would be
        read for the update, never compared with the entry's text, and an edit whose page had
        gone would be lost), and they leave the feed's count towards its next re-check alone.
        An update whose text is a template (`ingest.fulltext.shared`: another entry of the
        poll carries it too, among them the new entries' texts, `news`, or the feed carried it
        in place of several stories before) is decided by its page, in `auto` mode.
        Returns how many of the entries (`found` and `stamped`) updated their article,
        how many did not (unchanged, their page unusable, or not looked at: skipped), how
        many wait for another try at their page (deferred), and the updates' own texts
        (those measured: a full-text feed's)."""
        mode, state = feed.text_mode, feed.full_text
        full_text = mode == "feed" or (mode == "auto" and state.on)
        entries = len(found) + len(stamped)
        if full_text:
            found = (*found, *stamped)
        if not found:
            return 0, entries, 0, []
        versions = await self.store.stored_versions(feed.id, [c.key for c in found])
        modified = {key: v.modified_at for key, v in versions.items()}
        found, reached = dedup.newer_than_stored(found, modified, now)
        stamps = {c.key for c in stamped}
        owns = await self._own_texts(feed, found) if full_text else [OwnText()] * len(found)
        texts = [own.text for own in owns]
        alike = shared([*news, *texts], state.templates) if mode == "auto" else set()
        counts = [
            0
            if len(news) + i in alike
            else update_words(
                own.text, own.words, v.chars if (v := versions.get(c.key)) else None, mode, state
            )
            for i, (c, own) in enumerate(zip(found, owns, strict=True))
        ]
        wanted = [not trusted(state, mode, n) for n in counts]
        fetched = [i for i, want in enumerate(wanted) if want and found[i].key not in stamps]
        pages = await asyncio.gather(*(self._page(found[i].link, feed) for i in fetched))
        outcomes = dict(zip(fetched, pages, strict=True))
        items = []
        gone = []
        retried: list[bytes] = []
        tried: list[bytes] = []
        for i, c in enumerate(found):
            if i not in outcomes:
                if wanted[i]:  # stamped, and its text does not decide: left as it is
                    continue
                article = self._article(c, NO_PAGE, text_from_feed=True, own=owns[i])
            elif (page := page_for(c.entry, outcomes[i])).extracted is not None:
                article = self._article(c, page)
            else:
                if page.retry_later(c.attempts, self.settings.page_attempts):
                    retried.append(c.key)
                    if not page.held:
                        tried.append(c.key)
                else:
                    gone.append(c)
                continue
            if article is not None:
                items.append((article, c.key))
        times = dedup.update_times([*reached, *gone], now)
        updated = len(await self.store.updated_entries(feed.id, items, unchanged=times))
        # A page its host held back (never sent) waits without a try counted.
        await self.store.defer_updates(feed.id, tried)
        # Counted as they commit, whatever becomes of the poll (`_committed`): a feed that fails
        # later keeps them updated.
        metrics.ARTICLES_UPDATED.inc(updated)
        self._count_committed(feed.id, updated=updated)
        return updated, entries - updated - len(retried), len(retried), texts

    def _article(
        self,
        c: dedup.Candidate,
        page: PageOutcome,
        *,
        text_from_feed: bool = False,
        own: OwnText | None = None,
    ) -> Article | None:
        # A feed entry is stored once its tries are spent, with or without text: its row
        # records that it was handled.
        return article_for(
            c.entry,
            c.link,
            page,
            now=self.clock(),
            without_text=True,
            text_from_feed=text_from_feed,
            own=own,
        )

    async def _page_once(self, link: str, feed: Feed, feed_text: str | None = None) -> PageOutcome:
        task = self._pages.get(link)
        if task is None:
            task = asyncio.ensure_future(self._page(link, feed, feed_text))
            task.add_done_callback(self._progressed)
            self._pages[link] = task
        return await asyncio.shield(task)

    async def _page(self, link: str, feed: Feed, feed_text: str | None = None) -> PageOutcome:
        """The page of `link`, with the headers of the feed that lists it (its credentials
        only if the page is of the feed's site: `Fetcher.fetch`); `feed_text`, the
        listing entry's own text, is measured against the page (`fetch_page`). Its page slot
        is held while a request of it is on the wire and until its extraction is done, not
        while a redirect's next hop waits for its host: queued there behind a request that
        waits for a slot, it would hold what that request waits for."""
        held = False

        async def starting() -> None:
            nonlocal held
            if held:
                return
            await self._backlog.room()
            await self._page_slots.acquire()
            held = True

        def waiting() -> None:
            nonlocal held
            if held:
                held = False
                self._page_slots.release()

        async def fetch() -> PageOutcome:
            return await fetch_page(
                self.fetcher,
                self.workers,
                link,
                extract_timeout=self.settings.extract_timeout,
                starting=starting,
                waiting=waiting,
                extra_headers=feed.settings.request_headers(),
                headers_for=feed.url,
                feed_text=feed_text or None,
                backlog=self._backlog,
            )

        try:
            if same_host(link, feed.url):  # the claim holds it
                return await fetch()
            async with self._page_hosts.hold(link):
                return await fetch()
        except HostTaken as e:
            # Not sent, no try spent, as a page its host's Retry-After holds back.
            return PageOutcome(None, None, str(e), True, held=True, held_for=e.seconds)
        finally:
            if held:
                self._page_slots.release()


async def known_entries(
    store: Store, feed_id: int, found: list[dedup.Candidate]
) -> tuple[list[dedup.Candidate], KnownEntries]:
    """What the store knows of a poll's entries (`found`), and the entries as they are keyed:
    one whose guid the feed gave earlier to another story keyed apart (`dedup.reused`), looked
    up again under its own key (a second round trip, only then)."""
    known = await store.known_entries_of(
        feed_id,
        [c.key for c in found],
        [c.link for c in found],
        [clean_inline(c.entry.title) for c in found],
    )
    if not known.other_story:
        return found, known
    found = dedup.reused(found, known.other_story)
    moved = [c for c in found if c.key not in known.done and c.key not in known.waiting]
    again = await store.known_entries_of(feed_id, [c.key for c in moved], [c.link for c in moved])
    known.done.update(again.done)
    known.waiting.update(again.waiting)
    known.urls.update(again.urls)
    known.listed.update(again.listed)
    return found, known


def _failure_message(feed: Feed, e: BaseException) -> str:
    """The error a feed's failed poll records: the error's own message (a bug's type only),
    and, for a response from another address than the feed's (its URL redirected there), that
    address: the feed's own URL answers a redirect, and `HTTP 404` alone, in its error and the
    reason it is given up for, names no address that answers 404."""
    if not isinstance(e, IngestError):
        return f"internal error: {type(e).__name__}"
    message = str(e)
    if isinstance(e, FetchError) and e.response_url and e.response_url != feed.url:
        answered, own = e.response_url, feed.url
        with contextlib.suppress(ValueError):
            answered, own = canonical_url(answered), canonical_url(own)
        if answered != own:
            message = f"{message} (from {answered})"
    return message


def _chief(failed: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception of a failed task group that stands for it: a cancellation, else a
    database failure, else the first; the others are logged."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [failed]
    while stack:
        e = stack.pop()
        if isinstance(e, BaseExceptionGroup):
            stack.extend(reversed(e.exceptions))
        else:
            leaves.append(e)
    chief = next(
        (e for e in leaves if isinstance(e, asyncio.CancelledError)),
        next((e for e in leaves if isinstance(e, StoreError)), leaves[0]),
    )
    for e in leaves:
        if e is not chief:
            log.warning("feed_task_failed_too", error=f"{type(e).__name__}: {e}")
    return chief


ARTICLES_LINGER = 0.05
"""Seconds the first article of a group waits for others before they are written together: a
cold run's pages come in one at a time, some 15 ms apart, and a transaction of one article
costs its writer about as much CPU as the article itself (docs/performance.md, section
"Articles written together"); news waits 50 ms."""
ARTICLES_LIMIT = 50
"""Articles a group holds at most: one transaction holds the article-writes lock throughout,
and a feed waiting for its store waits for the group before its own (50 articles: about 0.2 s;
groups of ten already cost 0.68 of the CPU per article of groups of one)."""
WRITER_GRACE = 10.0
"""Seconds a stopping pipeline waits for a group of articles being written."""


@dataclass(slots=True)
class _Committed:
    """What a feed's poll committed so far (`Pipeline._committed`)."""

    new: int = 0
    updated: int = 0
    full_text: FullText | None = None
    """The feed's full-text state once the entries it was decided on are stored: a poll that
    fails after that records it with its failure (those entries are known at the next poll,
    which does not compare them again)."""


_Queued = tuple["_Storer", Article, bytes | None]
"""An article handed to the article writer: its feed's storer, the article, its entry key."""


class _Storer:
    """A feed's new articles, stored as their pages come in: `add` hands what has come in to
    the pipeline's article writer, which stores it with what other feeds hand it meanwhile
    (one transaction for a group; the first of a group waits ARTICLES_LINGER for company).
    `flush` stores what is left. The counts are the feed's."""

    def __init__(
        self, writer: GroupWriter[_Queued, StoredCounts | Exception], feed_id: int
    ) -> None:
        self._writer = writer
        self.feed_id = feed_id
        self.failed = False
        """A store of the feed failed: what it still hands the writer is not written."""
        self._waiting: list[tuple[Article, bytes | None]] = []
        self._unfetched: list[bool] = []
        self.new = self.existing = self.duplicates = self.page_errors = self.from_feed = 0

    async def add(
        self, article: Article, key: bytes | None, *, now: bool = True, unfetched: bool = False
    ) -> None:
        """Stores `article` (with what else came in) unless `now` is false: then it waits
        for the next store. `unfetched`: stored from a full-text feed's text without a
        request (counted in `from_feed` where it is new)."""
        self._waiting.append((article, key))
        self._unfetched.append(unfetched)
        if now:
            await self.flush()

    async def flush(self) -> None:
        items, self._waiting = self._waiting, []
        unfetched, self._unfetched = self._unfetched, []
        if items:
            written = await self._writer.add_all([(self, a, k) for a, k in items])
            # The feed's counts of what committed (a feed that fails later keeps them), before a
            # failure of the rest is raised: what is handed over at once can take more than one
            # group (ARTICLES_LIMIT), and a group that committed stays so when a later one fails.
            # (ingest_articles_new counts them as each group commits: `_store_queued`.)
            counts = StoredCounts.total([w for w in written if isinstance(w, StoredCounts)])
            self.new += counts.new
            self.existing += counts.existing
            self.duplicates += counts.duplicates
            self.from_feed += sum(
                w.new
                for w, u in zip(written, unfetched, strict=True)
                if u and isinstance(w, StoredCounts)
            )
            # Stored from feed text for want of its page: counted where it committed as new, not
            # where another feed listing the same page stored it first or the store refused it.
            self.page_errors += sum(
                w.new
                for w, (a, _) in zip(written, items, strict=True)
                if a.extraction_error and isinstance(w, StoredCounts)
            )
            if errors := [w for w in written if isinstance(w, Exception)]:
                raise errors[0]


@asynccontextmanager
async def open_pipeline(settings: Settings, dsn: str) -> AsyncIterator[Pipeline]:
    """A ready pipeline: connection pool, HTTP client and worker processes, closed on exit."""
    pool = await open_pool(dsn)
    workers = Workers(settings.workers)
    lag = metrics.LoopLag()
    lag.start()
    try:
        workers.start_soon()
        async with Fetcher(settings) as fetcher:
            pipeline = Pipeline(settings, Store(pool), fetcher, workers)
            try:
                yield pipeline
            finally:
                await pipeline.aclose()
    finally:
        await lag.stop()
        log.info("event_loop_lag", **lag.summary())
        workers.close()
        await pool.close()
