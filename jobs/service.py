"""`ingest run`: APScheduler ticks `poll_due_feeds` until SIGTERM/SIGINT/SIGHUP, then stops
claiming, lets in-flight feeds finish within a grace period, and releases what it still holds.
Beside it, once a day, `trim_changes` applies INGEST_CHANGE_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ingest.config import Settings
from ingest.errors import StoreError
from ingest.pipeline import Pipeline, open_pipeline
from ingest.store.db import check_schema, keep_watching, migrate
from jobs.http import HealthServer
from jobs.tasks import poll_due_feeds, refresh_schedule_lag, trim_changes

log = structlog.get_logger(__name__)

GRACE_SECONDS = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""The signals that drain the service: SIGHUP is the hang-up of the terminal it runs in the
foreground of (an SSH session closed), whose default action would kill it mid-feed, its feeds
left leased."""
FAILED_TICKS_NOT_READY = 3
"""/readyz turns 503 after this many ticks in a row failed (e.g. a schema the code does not
expect), even while the database answers, until a claim works again."""
STALLED_TICKS = 10
STALL_MARGIN = 60.0
"""/healthz turns 503 when no tick has started, or the run in progress has had no answer to a
claim (an error is one), finished no feed and been done with no page, for STALLED_TICKS x
INGEST_TICK_SECONDS + INGEST_LEASE_SECONDS + STALL_MARGIN seconds (by default 300 + 600 + 60,
16 minutes): the run is stuck (a claim blocked on a lock, an await that never returns), and
a restart is what frees it. A tick failing in a database outage ends within the pool's 30 s
wait for a connection, well inside the margin, and is not stuck."""
READY_SECONDS = 3.0
"""/readyz answers within this many seconds: a database that does not answer by then (a
network that drops its packets, a pool whose connections are all busy) is a 503 with the
reason, rather than a probe's connection held open for as long as the database is silent."""
DRAIN_STUCK_SECONDS = GRACE_SECONDS + STALL_MARGIN
"""/healthz stays 200 while the service drains (`STOP_SIGNALS`): it is alive and finishing its
feeds, and a liveness probe that failed would have the container killed mid-drain, its feeds
left leased. A drain still going this long after the signal (its GRACE_SECONDS, then the
hand-back, stuck) is not: 503."""


class _CatchingUp(IntervalTrigger):  # type: ignore[misc]
    """APScheduler's interval trigger, but one that catches up with a wall clock set ahead
    (NTP stepping a clock that was behind; a machine without a real-time clock, set from
    1970 once synchronised) in one step, to its next run time after now. APScheduler lists
    every run time a job missed, asking for them one interval after the other, before it
    runs the last (coalesced): for a day at 0.1 s, 864,000 of them, seconds of the event
    loop held; from 1970 at 30 s, 59 million, minutes held and gigabytes of memory."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None and previous_fire_time + self.interval < now:
            # The next run time after now, on the trigger's own grid (from its start date).
            previous_fire_time = None
        return super().get_next_fire_time(previous_fire_time, now)  # type: ignore[no-any-return]


class Service:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        tick_seconds: float,
        keep_changes: timedelta | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.stalled_after = (
            STALLED_TICKS * tick_seconds + pipeline.settings.lease_seconds + STALL_MARGIN
        )
        """Seconds without a tick, or without progress of the run in progress, after which
        the service is not healthy (`STALLED_TICKS`)."""
        self._tick_at = time.monotonic()
        self.keep_changes = keep_changes
        """How long change rows and earlier versions are kept; None: forever."""
        self._current: asyncio.Task[None] | None = None
        self._trimming: asyncio.Task[None] | None = None
        self._lag: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()
        self._stopped_at: float | None = None
        """When `stop` was first called (monotonic)."""
        self._scheduler: AsyncIOScheduler | None = None
        self._failed_ticks = 0
        self._last_problem: str | None = None
        self._claims_at_failure = 0
        """`Pipeline.claims` when the last tick failed: a claim that worked since ends the
        streak for readiness, before the run of its tick is over."""
        self._given_up: set[asyncio.Future[list[int]]] = set()
        """Readiness checks past READY_SECONDS, still letting go of their connection."""

    async def healthy(self) -> str | None:
        if self._scheduler is None or not self._scheduler.running:
            return "scheduler not running"
        now = time.monotonic()
        if self._stopped_at is not None:
            draining = now - self._stopped_at
            if draining > DRAIN_STUCK_SECONDS:
                return f"stopping: still draining {draining:.0f}s after the signal"
            return None
        if now - self._tick_at > self.stalled_after:
            return f"no tick for {now - self._tick_at:.0f}s"
        current = self._current
        idle = now - self.pipeline.progress_at
        if current is not None and not current.done() and idle > self.stalled_after:
            return f"run stalled: no claim answered, feed finished or page done for {idle:.0f}s"
        return None

    async def ready(self) -> str | None:
        # From the signal on, not ready: a load balancer (a Kubernetes Service) takes the
        # replica out of rotation while it drains, rather than when its port closes. Asked
        # again after the database's answer, which a stop may have come during.
        if self.stopping:
            return "stopping"
        if (
            self._failed_ticks >= FAILED_TICKS_NOT_READY
            and self.pipeline.claims == self._claims_at_failure
        ):
            return f"last {self._failed_ticks} ticks failed: {self._last_problem}"
        check = asyncio.ensure_future(check_schema(self.pipeline.store.pool))
        await asyncio.wait({check}, timeout=READY_SECONDS)
        if not check.done():
            # Let go in the background: cancelling its query can itself wait on the silence.
            check.cancel()
            self._given_up.add(check)
            check.add_done_callback(self._let_go)
            return f"database unreachable: no answer within {READY_SECONDS:g} s"
        try:
            pending = check.result()
        except StoreError as e:
            if e.__cause__ is not None:
                return f"database unreachable: {type(e.__cause__).__name__}"
            return str(e)
        if self.stopping:
            return "stopping"
        return f"migrations pending: {pending}" if pending else None

    def _let_go(self, check: asyncio.Future[list[int]]) -> None:
        """A readiness check given up on has ended: whatever it ended with is nobody's."""
        self._given_up.discard(check)
        if not check.cancelled():
            check.exception()

    @property
    def stopping(self) -> bool:
        """Whether one of `STOP_SIGNALS` came (`stop`): the service drains and exits."""
        return self._stop.is_set() or self.pipeline.stopping

    async def _tick(self) -> None:
        # The tick's work runs in a task of our own: APScheduler 3 cancels running jobs on
        # shutdown, and a tick that finds the previous one still running (a long backlog, a
        # slow feed) does not pile up "maximum number of running instances" warnings: it has
        # that run claim the feeds due since (`Pipeline.rescan`) instead of starting another.
        self._tick_at = time.monotonic()
        if self._current is not None and not self._current.done():
            self.pipeline.rescan()
            if self._lag is None or self._lag.done():
                self._lag = asyncio.ensure_future(refresh_schedule_lag(self.pipeline))
            return
        self._current = asyncio.ensure_future(self._poll())

    async def _keep_ticking(self) -> None:
        """Ticks that APScheduler misses for two intervals, counted on the monotonic clock.
        It times its interval job on the wall clock: set back (by NTP, an operator, a virtual
        machine resumed), that clock has it wait for the time it had set, an hour for a clock
        set back an hour, and nothing would be polled meanwhile. Once missed, the ticks are
        this loop's, every interval, until the scheduler's come again."""
        ours: float | None = None  # when this loop last ticked
        while True:
            await asyncio.sleep(self.tick_seconds)
            late = time.monotonic() - self._tick_at
            by_scheduler = self._tick_at != ours
            if by_scheduler and late < 2 * self.tick_seconds:
                continue
            if by_scheduler:  # once a gap, not at every tick of an hour's
                log.warning("ticks_missed", seconds=round(late, 1))
            await self._tick()
            ours = self._tick_at

    async def _poll(self) -> None:
        problem = await poll_due_feeds(self.pipeline)
        self._failed_ticks = self._failed_ticks + 1 if problem else 0
        self._last_problem = problem
        if problem:
            self._claims_at_failure = self.pipeline.claims

    async def _trim(self) -> None:
        # Own task, as for the tick: cancelled at shutdown (its batch rolls back).
        if self.keep_changes is None or (self._trimming and not self._trimming.done()):
            return
        self._trimming = asyncio.ensure_future(trim_changes(self.pipeline.store, self.keep_changes))

    def stop(self) -> None:
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        self._stop.set()

    async def run(self) -> None:
        scheduler = self._scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._tick,
            _CatchingUp(seconds=self.tick_seconds, timezone=UTC),
            id="poll_due_feeds",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
        if self.keep_changes is not None:
            scheduler.add_job(
                self._trim,
                _CatchingUp(days=1, timezone=UTC),
                id="trim_changes",
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),
                misfire_grace_time=None,
            )
        self._tick_at = time.monotonic()
        scheduler.start()
        keep_ticking = asyncio.ensure_future(self._keep_ticking())
        log.info("service_started", owner=self.pipeline.owner, tick_seconds=self.tick_seconds)
        try:
            await self._stop.wait()
        finally:
            self.pipeline.request_stop()
            scheduler.pause()
            keep_ticking.cancel()
            await asyncio.gather(keep_ticking, return_exceptions=True)
            current = self._current
            if current is not None and not current.done():
                log.info("service_draining", grace_seconds=GRACE_SECONDS)
                done, _ = await asyncio.wait({current}, timeout=GRACE_SECONDS)
                if not done:
                    # Cancelling the run hands its unfinished feeds back (Pipeline.run).
                    current.cancel()
                    await asyncio.gather(current, return_exceptions=True)
            for task in (self._trimming, self._lag):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            scheduler.shutdown(wait=False)
            log.info("service_stopped")


async def _alive() -> str | None:
    return None


async def _migrating() -> str | None:
    return "migrating"


async def _connecting() -> str | None:
    """/readyz once the migrations are done, while the service's database pool waits for its
    first connection (`ingest.store.db.open_pool`, up to 15 s)."""
    return "starting: connecting to the database"


async def serve(settings: Settings, dsn: str) -> None:
    """Migrate, then run the service until a stop signal. The endpoints answer from the start:
    while the migrations run (or wait for another replica's), /healthz is 200 and /readyz 503
    `migrating`, so that a liveness probe does not have the process killed in the middle of a
    long migration, which would be rolled back and started again at every restart; then, while
    the database pool opens, 503 `starting: connecting to the database`. A stop signal until
    the service runs (the caller's handler cancels this) stops it where it is, logging
    `service_stopped` with `starting`."""
    loop = asyncio.get_running_loop()
    http = None
    if settings.http_port:
        http = HealthServer(
            settings.http_host, settings.http_port, healthy=_alive, ready=_migrating
        )
        await http.start()
    started = False
    try:
        await migrate(dsn)  # its connection fails fast, with one clear line, when unreachable
        if http is not None:
            http.check_with(healthy=_alive, ready=_connecting)
        async with open_pipeline(settings, dsn) as pipeline:
            days = settings.change_retention_days
            service = Service(
                pipeline,
                tick_seconds=settings.tick_seconds,
                keep_changes=timedelta(days=days) if days else None,
            )
            if http is not None:
                http.check_with(healthy=service.healthy, ready=service.ready)
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, service.stop)
            started = True
            watch = asyncio.ensure_future(keep_watching(dsn, pipeline.store.pool))
            try:
                await service.run()
            finally:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
                if http is not None:
                    await http.close()
    except asyncio.CancelledError:
        if not started:
            # Stopped by a signal before the service was under way (the caller's handler):
            # nothing to drain; the migration in progress rolled back with its session.
            log.info("service_stopped", starting=True)
        raise
    finally:
        # Only once the pipeline is closed (its writers finishing their groups, its workers
        # stopping): until then a signal more is the stop under way. Nor the default action
        # after it: what the process does last (an embedded server it started stopped as it
        # exits) is the stop under way too.
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, _exiting)
        if http is not None:
            await http.close()


def _exiting(signum: int, frame: object) -> None:
    """A stop signal once the service has closed, while the process exits: the stop is under
    way, and the signal changes nothing (its default action would kill the process, or a
    KeyboardInterrupt cut its exit short, an embedded server it started left running)."""
