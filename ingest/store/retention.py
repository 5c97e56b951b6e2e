"""Retention: pruning old articles with everything that hangs off them (`ingest prune`), and
trimming the change feed and the history (the service, daily). Runs the `prune_*` and `trim_*`
named queries of `sql/queries.sql` in batches, one short transaction each."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import structlog

from ingest.errors import StoreError
from ingest.store.base import StoreBase, queries, wrap_exceptions

log = structlog.get_logger(__name__)

DEFAULT_BATCH = 250
"""Articles removed and copies re-pointed per transaction (`prune_batch`). A batch holds the
article writers' turn for about 90 ms (most of it deleting each article's 32 band rows): four
times as many hold it four times as long, and make the whole prune no faster (bench/README.md,
prune_bench)."""

TRIM_BATCH = 1000
"""Change rows, earlier versions or pruned URL forms per transaction (no lock is taken for
them)."""

FORGET_PRUNED_AFTER = timedelta(days=365)
"""How long the URL forms of a pruned article stay known (`ingest prune --forget-pruned-after`),
so that no backfill or feed new to it stores it again; forgotten by the next prune after."""


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """What a prune would remove (`--dry-run`)."""

    articles: int
    urls: int
    entries: int
    """Feed entries that would be unlinked (kept, marked pruned: see sql/0017)."""
    bands: int
    history: int
    changes: int
    repointed: int
    """Copies outliving their pruned original, which would be re-pointed."""


@dataclass(frozen=True, slots=True)
class PruneResult:
    articles: int
    repointed: int
    batches: int
    seconds: float


@dataclass(frozen=True, slots=True)
class TrimResult:
    changes: int
    history: int
    batches: int
    seconds: float


class RetentionStore(StoreBase):
    async def retention_cutoff(self, older_than: timedelta) -> datetime:
        """Now minus `older_than`, by the database's clock."""
        rows = await self._all("retention_cutoff", {"seconds": older_than.total_seconds()})
        cutoff: datetime = rows[0]["cutoff"]
        return cutoff

    async def prune_counts(self, cutoff: datetime) -> PruneCounts:
        rows = await self._all("prune_counts", {"cutoff": cutoff})
        return PruneCounts(**{k: int(v) for k, v in rows[0].items()})

    async def prune(
        self,
        cutoff: datetime,
        *,
        batch: int = DEFAULT_BATCH,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> PruneResult:
        """Delete the articles published before `cutoff`, oldest first, each batch in its own
        transaction: at most `batch` articles removed and copies re-pointed together (a story's
        old copies go before its original, `prune_batch`); `on_batch(batch number, articles so
        far)` after each. An interrupted prune keeps what it committed and leaves a consistent
        database."""
        started = time.monotonic()
        articles = repointed = batches = 0
        while True:
            removed, moved = await self._prune_batch(cutoff, batch)
            if removed == 0:
                break
            batches += 1
            articles += removed
            repointed += moved
            log.debug("prune_batch", batch=batches, articles=removed, repointed=moved)
            if on_batch is not None:
                on_batch(batches, articles)
        return PruneResult(articles, repointed, batches, time.monotonic() - started)

    async def _prune_batch(self, cutoff: datetime, limit: int) -> tuple[int, int]:
        for attempt in range(3):
            try:
                return await self._prune_once(cutoff, limit)
            except StoreError as e:
                # Feed removals and merges rewrite feed_id without the article-writes lock:
                # their row locks can meet ours in another order. Try the batch again.
                if not isinstance(e.__cause__, psycopg.errors.DeadlockDetected) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _prune_once(self, cutoff: datetime, limit: int) -> tuple[int, int]:
        q = queries()
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            # The writers' turn (sql/0011), taken before any row lock as they do: while it is
            # held no writer can pick a pruned article as the original of a new copy (which
            # would then fail its foreign key), and the updates announced for re-pointed copies
            # get their change numbers in order.
            await conn.execute(q["lock_article_writes"])
            cur = await conn.execute(q["prune_batch"], {"cutoff": cutoff, "limit": limit})
            ids = [row[0] for row in await cur.fetchall()]
            if not ids:
                return 0, 0
            params = {"ids": ids}
            cur = await conn.execute(q["prune_repoint_copies"], params)
            repointed = cur.rowcount
            await conn.execute(q["prune_entries"], params)
            await conn.execute(q["prune_urls"], params)
            await conn.execute(q["prune_changes"], params)
            cur = await conn.execute(q["prune_articles"], params)
            return cur.rowcount, repointed

    async def forget_pruned_urls(self, keep: timedelta, *, batch: int = TRIM_BATCH) -> int:
        """Forget the URL forms of articles pruned more than `keep` ago, oldest first, `batch`
        per transaction; how many were forgotten."""
        cutoff = await self.retention_cutoff(keep)
        forgotten, _ = await self._trim("trim_pruned_urls", cutoff, batch)
        return forgotten

    async def trim_changes(self, keep: timedelta, *, batch: int = TRIM_BATCH) -> TrimResult:
        """Delete change rows and earlier versions of articles written more than `keep` ago,
        oldest first, `batch` rows per transaction. Neither takes the article-writes lock:
        writers only ever add new rows to these tables."""
        started = time.monotonic()
        cutoff = await self.retention_cutoff(keep)
        changes, n = await self._trim("trim_changes", cutoff, batch)
        history, m = await self._trim("trim_history", cutoff, batch)
        return TrimResult(changes, history, n + m, time.monotonic() - started)

    async def _trim(self, name: str, cutoff: datetime, limit: int) -> tuple[int, int]:
        removed = batches = 0
        while True:
            async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(queries()[name], {"cutoff": cutoff, "limit": limit})
                count = cur.rowcount
            if count > 0:
                batches += 1
                removed += count
            if count < limit:
                return removed, batches
