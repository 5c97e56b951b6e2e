"""How far a backfill has got: the request rate limit, the tally of what it did, and the two ways
of showing it (log lines, or a progress bar on a terminal)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from ingest.store.backfill import RunCounts

log = structlog.get_logger(__name__)


class RateLimiter:
    """At most `rate` acquisitions per second, evenly spaced (0 or less: unlimited)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
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
            await self._sleep(start - now)


# --- progress ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What this invocation did (the run's totals, resumes included, are in RunCounts)."""

    sources: int = 0
    sources_failed: int = 0
    sources_skipped: int = 0
    other_sites: int = 0
    """URLs and sitemaps that sitemaps listed on other sites, skipped (`sitemaps.on_site`)."""
    beyond_sitemaps: int = 0
    """Sitemaps that indexes listed beyond --max-sitemaps, skipped."""
    discovered: int = 0
    out_of_range: int = 0
    to_fetch: int = 0
    fetched: int = 0
    stored: int = 0
    existing: int = 0
    skipped: int = 0
    not_articles: int = 0
    failed: int = 0
    retry_later: int = 0
    started: float = field(default_factory=time.monotonic)
    """When fetching started (reset at the fetch phase): the base of the rate and the ETA."""

    @property
    def done(self) -> int:
        return (
            self.stored
            + self.existing
            + self.skipped
            + self.not_articles
            + self.failed
            + self.retry_later
        )

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.fetched / elapsed if elapsed > 0 else 0.0

    def fields(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "sources_failed": self.sources_failed,
            "sources_skipped": self.sources_skipped,
            "other_sites": self.other_sites,
            "beyond_sitemaps": self.beyond_sitemaps,
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
        self._phase: Literal["discover", "fetch"] | None = None
        """The phase under way; None before the first (a resumed run may begin with fetch)."""
        self._total: int | None = None

    def phase(self, name: Literal["discover", "fetch"], total: int | None, tally: Tally) -> None:
        if self._phase is not None and name != self._phase:
            self.update(tally, force=True)  # where the previous phase ended
        self._phase, self._total = name, total

    def update(self, tally: Tally, *, force: bool = False) -> None:
        if self._phase is None:
            return  # no phase begun: nothing done to report (a dry run of a run discovered)
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
