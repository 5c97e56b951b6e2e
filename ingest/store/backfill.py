"""PostgreSQL access for `ingest backfill`: runs, their sources and URL queue (the checkpoint),
and feeds of a given kind. Runs the `backfill_*` named queries of `sql/queries.sql` on the same
pool as `Store`; every method is one short transaction, never held across network I/O."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from ingest.errors import LockLost
from ingest.normalize import redact_text
from ingest.store.articles import StoredCounts, Then
from ingest.store.base import StoreBase, first_line, queries, wrap_exceptions
from ingest.types import SourceKind

UrlSource = Literal["feed", "sitemap", "list"]
UrlState = Literal["pending", "done", "failed", "skipped"]

LOCK_CLASS: Final = 0x62666C6C  # "bfll": the first key of the runs' advisory locks
LOCK_CHECK_SECONDS: Final = 2.0
"""How often a running backfill checks that its session still holds its lock."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BackfillRun:
    id: int
    target: str
    since: datetime | None
    until: datetime | None
    feed_id: int | None
    seeded: bool
    discovered: bool
    started_at: datetime
    finished_at: datetime | None
    site_url: str | None = None
    """Where TARGET, a home page, was served from (sql/0033): the site that names the run's
    sitemaps in its robots.txt (`sitemaps.sitemap_sites`)."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BackfillRun:
        return cls(**row)


@dataclass(frozen=True, slots=True)
class QueuedUrl:
    """An article URL to record in a run: `entry` is what its source said about it (JSON-able),
    `state` is 'pending', or 'skipped' with a `reason` (out of the date range, undated)."""

    url: str
    entry: dict[str, Any] = field(default_factory=dict)
    entry_hash: bytes | None = None
    dated_at: datetime | None = None
    state: UrlState = "pending"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PendingSource:
    """A feed page or sitemap waiting to be walked."""

    url: str
    kind: SourceKind
    depth: int = 0
    """How many sitemap indexes led to it."""
    lastmod: datetime | None = None
    """When the sitemap index that listed it says it was last modified (a date given alone is
    midnight UTC: `ingest.backfill.options.latest`)."""
    lastmod_until: datetime | None = None
    """The last moment of the year or the month `lastmod` names alone (`2024-05`), or None."""


@dataclass(frozen=True, slots=True)
class Added:
    """What one walked source added to its run: the URLs new to the run, by state."""

    pending: frozenset[str] = frozenset()
    """New to the run and to be fetched."""
    skipped: int = 0
    """New to the run but skipped (out of the date range, undated)."""

    @property
    def count(self) -> int:
        return len(self.pending) + self.skipped


@dataclass(frozen=True, slots=True)
class PendingUrl:
    """A URL waiting to be fetched, as read back from the queue."""

    url: str
    source: UrlSource
    entry: dict[str, Any]
    entry_hash: bytes | None
    attempts: int
    rank: int


@dataclass(frozen=True, slots=True)
class RunCounts:
    """How a run's URLs and sources stand: (state, reason) -> count, (kind, state) -> count;
    and what its walk skipped without recording it (sql/0039), all its invocations together."""

    urls: dict[tuple[str, str], int]
    sources: dict[tuple[str, str], int]
    other_sites: int = 0
    """Sitemaps and URLs its sitemaps listed on other sites (`sitemaps.on_site`)."""
    beyond_sitemaps: int = 0
    """Sitemaps beyond --max-sitemaps."""
    before_since: int = 0
    """Sitemaps an index listed as last modified before --since (sql/0041)."""

    def url_total(self, state: str | None = None, reason: str | None = None) -> int:
        return sum(
            n
            for (s, r), n in self.urls.items()
            if (state is None or s == state) and (reason is None or r == reason)
        )

    def source_total(self, kind: str | None = None, state: str | None = None) -> int:
        return sum(
            n
            for (k, s), n in self.sources.items()
            if (kind is None or k == kind) and (state is None or s == state)
        )


class RunLock:
    """A run's advisory lock, held by one database session (`BackfillStore.locked`)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], run_id: int, held: bool) -> None:
        self._conn = conn
        self.run_id = run_id
        self.held = held
        self.lost: LockLost | None = None
        """Why the lock was found gone, once it was."""

    async def guard(self, work: Awaitable[T]) -> T:
        """`work`'s result, the lock checked every `LOCK_CHECK_SECONDS` meanwhile: found gone
        with its session, `work` is cancelled (what it was writing rolls back; every
        checkpoint before it stays) and `LockLost` raised, so that no two processes ever go
        on with one run."""
        task = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(self._watch())
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            watch.cancel()
            await asyncio.gather(task, watch, return_exceptions=True)
            raise
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            watch.result()  # raises LockLost
            raise AssertionError("unreachable")
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        return task.result()

    async def _watch(self) -> None:
        params = {"lock_class": LOCK_CLASS, "run_id": self.run_id}
        while True:
            await asyncio.sleep(LOCK_CHECK_SECONDS)
            try:
                # Shielded: a check cancelled halfway would leave the session mid-query.
                held = await asyncio.shield(self._check(params))
                why = "its database session no longer holds it"
            except psycopg.Error as e:
                held, why = False, f"its database session ended: {first_line(e)}"
            if not held:
                self.lost = LockLost(f"backfill {self.run_id} lost its lock ({why})")
                raise self.lost

    async def _check(self, params: dict[str, Any]) -> bool:
        cur = await self._conn.execute(queries()["backfill_holds_lock"], params)
        row = await cur.fetchone()
        return bool(row and row[0])


class BackfillStore(StoreBase):
    """The backfill's runs and their queue of sources and URLs."""

    # runs ---------------------------------------------------------------------------------

    async def open_run(
        self,
        run_key: bytes,
        *,
        target: str,
        since: datetime | None,
        until: datetime | None,
        options: dict[str, Any],
    ) -> BackfillRun:
        """The run with this identity, created when it does not exist yet."""
        rows = await self._all(
            "backfill_open_run",
            {
                "run_key": run_key,
                "target": target,
                "since": since,
                "until": until,
                "options": Jsonb(options),
            },
        )
        return BackfillRun.from_row(rows[0])

    @asynccontextmanager
    async def locked(self, run_id: int) -> AsyncIterator[RunLock]:
        """Hold the run's advisory lock for the block (on a connection kept aside for it); its
        `held` is False when another process holds it. A lock whose session ended meanwhile
        is gone with it: nothing to release."""
        q = queries()
        params = {"lock_class": LOCK_CLASS, "run_id": run_id}
        async with wrap_exceptions(), self.pool.connection() as conn:
            cur = await conn.execute(q["backfill_try_lock"], params)
            row = await cur.fetchone()
            lock = RunLock(conn, run_id, bool(row and row[0]))
            try:
                yield lock
            finally:
                if lock.held:
                    try:
                        await conn.execute(q["backfill_unlock"], params)
                    except psycopg.OperationalError:
                        if lock.lost is None:
                            raise

    async def reset_run(self, run_id: int) -> None:
        """Forget everything the run has done (`--restart`); stored articles stay."""
        q = queries()
        params = {"run_id": run_id}
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            await conn.execute(q["backfill_clear_urls"], params)
            await conn.execute(q["backfill_clear_sources"], params)
            await conn.execute(q["backfill_reset_run"], params)

    async def seed(
        self,
        run_id: int,
        *,
        sources: Sequence[tuple[str, SourceKind]],
        urls: Sequence[QueuedUrl],
        url_source: UrlSource = "list",
        feed_id: int | None,
        site_url: str | None = None,
        beyond_sitemaps: int = 0,
        failed: Sequence[tuple[str, SourceKind, str]] = (),
    ) -> None:
        """Record the sources found for the run's target (and an explicit URL list), and mark
        the run seeded (with `site_url`, `BackfillRun.site_url`, and the sitemaps found beyond
        --max-sitemaps, left out of `sources`), in one transaction. `failed`: sources found
        that failed for a passing reason (URL, kind, error), recorded failed so, to be walked
        by the next invocation (`retry_sources`)."""
        q = queries()
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            if sources:
                await conn.execute(q["backfill_add_sources"], _sources_params(run_id, sources))
            if failed:
                listed = [(url, kind) for url, kind, _ in failed]
                await conn.execute(q["backfill_add_sources"], _sources_params(run_id, listed))
                for url, _, error in failed:
                    await conn.execute(
                        q["backfill_source_finished"],
                        {
                            "run_id": run_id,
                            "url": url,
                            "state": "failed",
                            "found": 0,
                            "error": _error_text(error),
                            "retryable": True,
                        },
                    )
            if urls:
                await conn.execute(q["backfill_add_urls"], _urls_params(run_id, url_source, urls))
            await conn.execute(
                q["backfill_set_seeded"],
                {
                    "run_id": run_id,
                    "feed_id": feed_id,
                    "site_url": site_url,
                    "beyond_sitemaps": beyond_sitemaps,
                },
            )

    async def pending_sources(self, run_id: int, limit: int = 100) -> list[PendingSource]:
        rows = await self._all("backfill_pending_sources", {"run_id": run_id, "limit": limit})
        return [
            PendingSource(r["url"], r["kind"], int(r["depth"]), r["lastmod"], r["lastmod_until"])
            for r in rows
        ]

    async def source_walked(
        self,
        run_id: int,
        url: str,
        *,
        state: Literal["done", "failed", "skipped"],
        urls: Sequence[QueuedUrl] = (),
        url_source: UrlSource = "feed",
        children: Sequence[tuple[str, SourceKind]] = (),
        depth: int = 0,
        lastmods: Sequence[datetime | None] = (),
        lastmod_untils: Sequence[datetime | None] = (),
        error: str | None = None,
        retryable: bool = False,
        other_sites: int = 0,
        beyond_sitemaps: int = 0,
        before_since: int = 0,
    ) -> Added:
        """Record one walked source with what it yielded, in one transaction: its article URLs
        and the further sources it points to (at `depth`; `lastmods`, when their index says
        they were last modified, in their order, and `lastmod_untils`, the last moments of those
        given as a year or a month alone), and what it skipped (`RunCounts`); a failed
        one `retryable` is walked again by the next invocation (`retry_sources`). Returns the
        URLs it added that were new to the run. The sources walked at once record theirs one
        after the other (`backfill_lock_walk`)."""
        q = queries()
        pending: set[str] = set()
        skipped = 0
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            await conn.execute(q["backfill_lock_walk"], {"run_id": run_id})
            if urls:
                cur = await conn.execute(
                    q["backfill_add_urls"], _urls_params(run_id, url_source, urls)
                )
                for row_url, row_state, inserted in await cur.fetchall():
                    if not inserted:
                        continue  # a record replaced (`backfill_add_urls`), not a new URL
                    if row_state == "pending":
                        pending.add(row_url)
                    else:
                        skipped += 1
            added = Added(frozenset(pending), skipped)
            if children:
                await conn.execute(
                    q["backfill_add_sources"],
                    _sources_params(run_id, children, depth, lastmods, lastmod_untils),
                )
            if other_sites or beyond_sitemaps or before_since:
                await conn.execute(
                    q["backfill_count_skips"],
                    {
                        "run_id": run_id,
                        "other_sites": other_sites,
                        "beyond_sitemaps": beyond_sitemaps,
                        "before_since": before_since,
                    },
                )
            await conn.execute(
                q["backfill_source_finished"],
                {
                    "run_id": run_id,
                    "url": url,
                    "state": state,
                    "found": added.count,
                    "error": _error_text(error),
                    "retryable": retryable,
                },
            )
        return added

    async def add_sources(self, run_id: int, sources: Sequence[tuple[str, SourceKind]]) -> None:
        if sources:
            await self._all("backfill_add_sources", _sources_params(run_id, sources))

    async def retry_sources(self, run_id: int) -> int:
        """Put the sources that failed for a passing reason back in line and, when there are
        any, the run back in discovery, in one transaction; returns how many."""
        q = queries()
        params = {"run_id": run_id}
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(q["backfill_retry_sources"], params)
            count = len(await cur.fetchall())
            if count:
                await conn.execute(q["backfill_reopen_discovery"], params)
        return count

    async def finish_discovery(self, run_id: int, limit: int | None) -> None:
        """Every source walked: skip the URLs already stored, fix the fetch order, skip what is
        beyond `limit` (counting the URLs an earlier discovery of the run took), and mark the
        run discovered, in one transaction."""
        q = queries()
        params = {"run_id": run_id, "limit": limit}
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            await conn.execute(q["backfill_unskip_limit"], params)
            await conn.execute(q["backfill_skip_known"], params)
            await conn.execute(q["backfill_rank"], params)
            await conn.execute(q["backfill_set_discovered"], params)

    async def next_urls(
        self, run_id: int, *, after: int, limit: int = 200, failed: bool = False
    ) -> list[PendingUrl]:
        """Pending URLs in fetch order, after rank `after`; with `failed`, those failed for a
        passing reason too (that the run's next invocation puts back in line, `retry_urls`)."""
        rows = await self._all(
            "backfill_next_urls",
            {"run_id": run_id, "after": after, "limit": limit, "failed": failed},
        )
        return [
            PendingUrl(
                url=r["url"],
                source=r["source"],
                entry=r["entry"] if isinstance(r["entry"], dict) else {},
                entry_hash=bytes(r["entry_hash"]) if r["entry_hash"] is not None else None,
                attempts=int(r["attempts"]),
                rank=int(r["rank"]),
            )
            for r in rows
        ]

    async def url_finished(
        self,
        run_id: int,
        url: str,
        *,
        state: Literal["done", "failed", "skipped"],
        reason: str | None = None,
        error: str | None = None,
        retryable: bool = False,
        attempted: bool = False,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> None:
        """Record where a URL stands; on `conn` (in its transaction) when given: the article
        store's, so that an article and its checkpoint are committed together."""
        params = {
            "run_id": run_id,
            "url": url,
            "state": state,
            "reason": reason,
            "error": _error_text(error),
            "retryable": retryable,
            "attempted": int(attempted),
        }
        if conn is None:
            await self._all("backfill_url_finished", params)
        else:
            await conn.execute(queries()["backfill_url_finished"], params)

    def stored_checkpoint(self, run_id: int, url: str, *, error: str | None) -> Then:
        """The checkpoint of a URL whose article is being stored, for the article store to
        write in the article's transaction (`ArticleStore.store_many`'s `then`): done, "new"
        or "existing", or failed where the database refused the article; `error`, the page's
        (an article stored from its feed entry's text for want of its page)."""

        async def checkpoint(
            conn: psycopg.AsyncConnection[Any], outcomes: list[StoredCounts]
        ) -> None:
            (outcome,) = outcomes
            state: Literal["done", "failed"] = "failed"
            reason: str | None = None
            why: str | None = "refused by the database"
            if outcome.new or outcome.existing:
                state, reason, why = "done", "new" if outcome.new else "existing", error
            await self.url_finished(
                run_id, url, state=state, reason=reason, error=why, attempted=True, conn=conn
            )

        return checkpoint

    async def retry_urls(self, run_id: int, max_attempts: int, *, fresh: bool = False) -> int:
        """Put the URLs that failed for a passing reason back in line, those with fewer than
        `max_attempts` tries (with `fresh`, all of them, their count reset); returns how many."""
        rows = await self._all(
            "backfill_retry_urls",
            {"run_id": run_id, "max_attempts": max_attempts, "fresh": fresh},
        )
        return len(rows)

    async def to_link(self, run_id: int) -> list[tuple[str, bytes, dict[str, Any]]]:
        """The registered feed's entries (URL, entry hash, what the entry said as
        `entry_to_json` kept it) whose article a dry run of the run found already stored and
        left unlinked (reason 'to_link')."""
        rows = await self._all("backfill_to_link", {"run_id": run_id})
        return [
            (r["url"], bytes(r["entry_hash"]), r["entry"] if isinstance(r["entry"], dict) else {})
            for r in rows
        ]

    async def linked(self, run_id: int) -> None:
        """Those entries linked: skipped as known from now on."""
        await self._all("backfill_linked", {"run_id": run_id})

    async def recorded_sources(self, run_id: int, urls: Sequence[str]) -> set[str]:
        """Those of `urls` the run has recorded as sources already, walked or not."""
        if not urls:
            return set()
        rows = await self._all("backfill_recorded_sources", {"run_id": run_id, "urls": list(urls)})
        return {r["url"] for r in rows}

    async def sitemap_count(self, run_id: int) -> int:
        """The sitemaps (indexes included) the run has recorded, walked or not."""
        rows = await self._all("backfill_sitemap_count", {"run_id": run_id})
        return int(rows[0]["n"])

    async def counts(self, run_id: int) -> RunCounts:
        urls = await self._all("backfill_url_counts", {"run_id": run_id})
        sources = await self._all("backfill_source_counts", {"run_id": run_id})
        (skips,) = await self._all("backfill_run_skips", {"run_id": run_id})
        return RunCounts(
            urls={(r["state"], r["reason"]): int(r["n"]) for r in urls},
            sources={(r["kind"], r["state"]): int(r["n"]) for r in sources},
            other_sites=int(skips["other_sites"]),
            beyond_sitemaps=int(skips["beyond_sitemaps"]),
            before_since=int(skips["before_since"]),
        )

    async def failures(self, run_id: int, limit: int = 5) -> list[tuple[str, str | None]]:
        rows = await self._all("backfill_failures", {"run_id": run_id, "limit": limit})
        return [(r["url"], r["error"]) for r in rows]

    async def finish_run(self, run_id: int) -> None:
        await self._all("backfill_finish_run", {"run_id": run_id})


def _sources_params(
    run_id: int,
    sources: Sequence[tuple[str, SourceKind]],
    depth: int = 0,
    lastmods: Sequence[datetime | None] = (),
    lastmod_untils: Sequence[datetime | None] = (),
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "depth": depth,
        "urls": [url for url, _ in sources],
        "kinds": [kind for _, kind in sources],
        "lastmods": list(lastmods),
        "lastmod_untils": list(lastmod_untils),
    }


def _urls_params(run_id: int, source: UrlSource, urls: Sequence[QueuedUrl]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "source": source,
        "urls": [u.url for u in urls],
        "entries": [json.dumps(u.entry, ensure_ascii=False) if u.entry else None for u in urls],
        "entry_hashes": [u.entry_hash for u in urls],
        "dates": [u.dated_at for u in urls],
        "states": [u.state for u in urls],
        "reasons": [u.reason for u in urls],
    }


def _error_text(error: str | None) -> str | None:
    """A failure's message as it is recorded (and `ingest backfill` prints it): each URL it
    quotes without user-info and with credential parameters' values as `***` (`redact_text`, the
    rule of feeds' and articles' stored errors), at most 2,000 characters."""
    return redact_text(error)[:2000] if error else None
