"""Thin scheduled tasks: each calls into the pipeline and never lets an expected error escape
into the scheduler."""

from __future__ import annotations

import structlog

from ingest import metrics
from ingest.errors import StoreError
from ingest.pipeline import Pipeline

log = structlog.get_logger(__name__)


async def poll_due_feeds(pipeline: Pipeline) -> None:
    """One tick: process every feed that is due. A database outage is logged and the next tick
    tries again; bugs are logged with their traceback."""
    if pipeline.stopping:
        return
    try:
        summary = await pipeline.run()
    except StoreError as e:
        log.error("tick_failed", error=str(e))
        return
    except Exception:
        log.exception("tick_bug")
        return
    try:
        overdue, lag = await pipeline.store.schedule_lag(grace_seconds=60.0)
    except StoreError:
        pass
    else:
        metrics.FEEDS_OVERDUE.set(overdue)
        metrics.OVERDUE_LAG.set(lag)
    if summary.feeds:
        log.info(
            "tick_done",
            feeds=summary.feeds,
            ok=summary.ok,
            not_modified=summary.not_modified,
            failed=summary.failed,
            new=summary.new_articles,
        )
