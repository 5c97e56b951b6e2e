"""Thin scheduled tasks: each calls into the pipeline and never lets an expected error escape
into the scheduler; it reports whether the tick worked, for readiness."""

from __future__ import annotations

import math
from datetime import timedelta

import structlog

from ingest import metrics
from ingest.errors import StoreError
from ingest.outcomes import RunSummary
from ingest.pipeline import Pipeline
from ingest.store.db import check_schema
from ingest.store.retention import RetentionStore

log = structlog.get_logger(__name__)


async def poll_due_feeds(pipeline: Pipeline) -> str | None:
    """One tick: process every feed that is due. Returns None when the tick worked, else why
    not. A tick ends with one line: `tick_done` for each pass that polled feeds, or, where the
    run fails, `tick_failed` (a database outage: the next tick tries again) or `tick_bug` (with
    the traceback), each with the counts of its last pass so far. The schedule-lag gauges are
    refreshed either way, so a replica whose ticks fail shows its backlog growing."""
    if pipeline.stopping:
        return None
    problem: str | None = None
    summary = None
    try:
        # A database a newer version migrated meanwhile is written no more (ingest.store.db).
        await check_schema(pipeline.store.pool)
        summary = await pipeline.run(on_pass=log_pass)
    except StoreError as e:
        problem = str(e)
        log.error("tick_failed", error=problem, **pass_counts(pipeline.pass_summary))
    except Exception as e:
        problem = f"internal error: {type(e).__name__}"
        log.exception("tick_bug", **pass_counts(pipeline.pass_summary))
    if problem is not None:
        metrics.ERRORS.labels("tick").inc()
    await refresh_schedule_lag(pipeline)
    if summary is not None:
        log_pass(summary)
    return problem


def log_pass(summary: RunSummary) -> None:
    """The canonical line of a pass over the due feeds (`tick_done`), where it polled any: at
    the end of a run, and each time a run still going claims again (`Pipeline.rescan`)."""
    if summary.feeds:
        log.info("tick_done", **pass_counts(summary))


def pass_counts(summary: RunSummary) -> dict[str, int]:
    """The counts of a pass's line: `tick_done`'s, and those of a tick that failed
    (`tick_failed`, `tick_bug`: what its last pass did before it failed), so that every tick's
    line carries the same fields."""
    return {
        "feeds": summary.feeds,
        "ok": summary.ok,
        "not_modified": summary.not_modified,
        "failed": summary.failed,
        "held": summary.held,
        "new": summary.new_articles,
        "updated": summary.updated,
    }


async def refresh_schedule_lag(pipeline: Pipeline) -> None:
    """The schedule-lag gauges, from the database, and `ingest_database_up` 1; when it does not
    answer, the gauges NaN (unknown: their last values would show a healthy schedule through
    an outage, and no threshold alert fires on NaN) and `ingest_database_up` 0, which an alert
    can watch. Refreshed after each run, and at each tick that finds a run still going (a run
    that claims again at every tick can go on for as long as feeds keep coming due)."""
    try:
        overdue, lag = await pipeline.store.schedule_lag(grace_seconds=60.0)
    except StoreError:
        metrics.FEEDS_OVERDUE.set(math.nan)
        metrics.OVERDUE_LAG.set(math.nan)
        metrics.DATABASE_UP.set(0)
        return
    metrics.FEEDS_OVERDUE.set(overdue)
    metrics.OVERDUE_LAG.set(lag)
    metrics.DATABASE_UP.set(1)


async def trim_changes(store: RetentionStore, keep: timedelta) -> None:
    """Once a day: change rows and earlier versions of articles older than `keep` go (in
    batches, see ingest/store/retention.py). A failure is logged; the next day tries again."""
    try:
        result = await store.trim_changes(keep)
    except StoreError as e:
        metrics.ERRORS.labels("trim").inc()
        log.error("trim_failed", error=str(e))
        return
    except Exception:
        metrics.ERRORS.labels("trim").inc()
        log.exception("trim_bug")
        return
    log.info(
        "changes_trimmed",
        changes=result.changes,
        history=result.history,
        batches=result.batches,
        ms=round(result.seconds * 1000),
    )
