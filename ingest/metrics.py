"""Prometheus metrics of the service process (scraped from `/metrics`)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from ingest.errors import (
    BlockedError,
    FetchError,
    ParseError,
    StoreError,
    WorkerCrashed,
    WorkerTimeout,
)
from ingest.types import FetchKind, PollStatus

FEEDS_POLLED = Counter("ingest_feeds_polled", "Feeds polled, by outcome", ["status"])
ARTICLES_NEW = Counter("ingest_articles_new", "Articles stored for the first time")
ARTICLES_UPDATED = Counter(
    "ingest_articles_updated", "Stored articles updated in place because their page changed"
)
PAGE_FALLBACKS = Counter(
    "ingest_page_fallbacks", "Articles stored from feed text because their page was unusable"
)
FETCH_SECONDS = Histogram(
    "ingest_fetch_duration_seconds",
    "Time of one HTTP request, redirects and body included (waiting for host slots excluded)",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FEED_SECONDS = Histogram(
    "ingest_feed_duration_seconds",
    "Time to process one feed, fetch to store",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ERRORS = Counter("ingest_errors", "Feed failures, by error kind", ["kind"])
FEEDS_OVERDUE = Gauge(
    "ingest_feeds_overdue",
    "Feeds past their due time and not being worked on (counted up to 10,000)",
)
WORKER_BACKLOG = Gauge(
    "ingest_worker_backlog_bytes",
    "Bytes of fetched feeds and pages that no worker has finished with yet",
)
OVERDUE_LAG = Gauge("ingest_overdue_lag_seconds", "How late the most overdue feed is")
DATABASE_UP = Gauge(
    "ingest_database_up",
    "1 when the database answered the service's last look at its schedule (each tick), 0 when "
    "it did not (ingest_feeds_overdue and ingest_overdue_lag_seconds are then NaN)",
)
EXTRACT_SECONDS = Histogram(
    "ingest_extract_duration_seconds",
    "Time to extract one page in a worker process, queueing included",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DUPLICATES = Counter("ingest_duplicates", "New articles whose body duplicates an earlier article's")
EVENT_LOOP_LAG = Histogram(
    "ingest_event_loop_lag_seconds",
    "How late the event loop ran a timer due every 50 ms: CPU work or a blocking call on the "
    "loop shows here",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Not measured yet: NaN, not a 0 that reads as an empty backlog and a database that answers.
for _gauge in (FEEDS_OVERDUE, OVERDUE_LAG, DATABASE_UP):
    _gauge.set(math.nan)

_FEED_ERRORS = (FetchError, BlockedError, ParseError, StoreError, WorkerTimeout, WorkerCrashed)
ERROR_KINDS = ("tick", "trim", *(e.__name__ for e in _FEED_ERRORS))
"""The kinds of `ingest_errors_total` known in advance: a failed tick, a failed daily trim, and
the errors a feed's poll fails with (`Pipeline._record_failure` labels it with the error's
class; a bug's own class shows up when it happens)."""

# Every series known in advance is exported from the start, at 0 (Prometheus, "Avoid missing
# metrics"): a series that appears with its first event makes `increase()` and `rate()` miss
# that event, and leaves an alert on it nothing to read until then.
for _status in get_args(PollStatus):
    FEEDS_POLLED.labels(_status)
for _kind in get_args(FetchKind):
    FETCH_SECONDS.labels(_kind)
for _kind in ERROR_KINDS:
    ERRORS.labels(_kind)


class LoopLag:
    """Measures event-loop lag while running: a timer due every `interval` seconds, and how
    late it fires (exported as EVENT_LOOP_LAG; `summary()` for a log line)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - due)
            self.samples.append(lag)
            EVENT_LOOP_LAG.observe(lag)
            if len(self.samples) > 100_000:  # a long-lived service: keep the recent ones
                del self.samples[:50_000]

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> dict[str, float | int]:
        """Median, 99th percentile and maximum lag in milliseconds, over the samples kept."""
        if not self.samples:
            return {"samples": 0}
        ordered = sorted(self.samples)

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        return {
            "samples": len(ordered),
            "p50_ms": pick(0.5),
            "p99_ms": pick(0.99),
            "max_ms": round(ordered[-1] * 1000, 2),
        }
