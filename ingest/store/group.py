"""Writes gathered into groups: while one group is being written, what arrives meanwhile waits
for the next, so that a burst of small writes costs a few transactions, not one each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from ingest.errors import StoreError
from ingest.store.base import unreachable

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Writes items in groups: items added while a write is in progress are written together
    by the next one (at most `limit` a group). The first item of a group is written at once,
    or, with `linger`, once it has waited that many seconds for others to join it (for writes
    whose cost is mostly per transaction), also where it came in while the group before it was
    written; a full group goes at once. `write` returns one result per item, in order; `add`
    returns its item's result when the item is written, or raises what the write raised (a
    `StoreError` if the writer was stopped before writing it). A caller cancelled while its
    items wait for a group withdraws them (a feed handed back must not be written after it);
    items already in a write are written, and the caller's cancellation reaches it once they
    are (or once the write failed)."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        linger: float = 0.0,
        limit: int = 1000,
    ) -> None:
        self._write = write
        self._linger = linger
        self._limit = limit
        self._pending: list[tuple[T, asyncio.Future[R], float]] = []
        """Items waiting for a group, with their waiters and when they came in (the event
        loop's clock)."""
        self._full = asyncio.Event()
        """Set when a group's worth of items is pending: it need not wait for more."""
        self._writing = False
        self._drainer: asyncio.Future[None] | None = None

    async def add(self, item: T) -> R:
        (result,) = await self.add_all([item])
        return result

    async def add_all(self, items: Sequence[T]) -> list[R]:
        """`add` of each item: their results, in order."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        now = loop.time()
        self._pending += [(item, done, now) for item, done in zip(items, futures, strict=True)]
        if len(self._pending) >= self._limit:
            self._full.set()
        if not self._writing:
            self._writing = True
            self._drainer = asyncio.ensure_future(self._drain())
        gathered = asyncio.gather(*futures)
        gathered.add_done_callback(_retrieved)  # read even if this caller is gone
        try:
            return list(await asyncio.shield(gathered))
        except asyncio.CancelledError:
            self._withdraw(futures)
            # Items already in a write: the cancellation reaches the caller once they are
            # written or not, so that what it does next (a feed failing hands its lease back)
            # comes after their commit. A write that hangs is the writer's `close` to stop.
            if writing := [done for done in futures if not done.done()]:
                await asyncio.wait(writing)
            raise

    def _withdraw(self, futures: Sequence[asyncio.Future[R]]) -> None:
        """Items of `futures` not taken into a write yet: left out of the next group."""
        mine = set(futures)
        kept = [pending for pending in self._pending if pending[1] not in mine]
        for _, done, _ in self._pending:
            if done in mine:
                done.cancel()
        self._pending = kept

    async def close(self, grace: float) -> None:
        """Let what is waiting or being written finish, for at most `grace` seconds; then stop
        the writer: a write in progress is cancelled (its transaction rolls back) and what it
        had not written gets an error. The writer starts again with the next `add`."""
        drainer = self._drainer
        if drainer is None or drainer.done():
            return
        await asyncio.wait([drainer], timeout=grace)
        if not drainer.done():
            drainer.cancel()
            await asyncio.wait([drainer])

    async def _company(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until the first pending item has waited `linger` for company, or the group is full
        (or nothing is pending any more)."""
        while self._pending and len(self._pending) < self._limit:
            wait = self._pending[0][2] + self._linger - loop.time()
            if wait <= 0:
                return
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._full.wait()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        self._full = asyncio.Event()  # of this loop: a writer may outlive one
        try:
            while self._pending:
                if self._linger > 0:
                    await self._company(loop)
                if not self._pending:  # withdrawn meanwhile
                    break
                group = self._pending[: self._limit]
                self._pending = self._pending[self._limit :]
                try:
                    results = await self._write([item for item, _, _ in group])
                    if len(results) != len(group):
                        raise TypeError(f"{len(results)} results for {len(group)} items")
                except Exception as e:
                    for _, done, _ in group:
                        if not done.done():
                            done.set_exception(e)
                except BaseException:
                    _stopped(group)
                    raise
                else:
                    for (_, done, _), result in zip(group, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self._writing = False
            _stopped(self._pending)  # left by a cancelled drain
            self._pending = []


async def by_parts(
    write: Callable[[list[T]], Awaitable[Sequence[R]]],
    items: list[T],
    part: Callable[[T], Hashable],
) -> list[R | Exception]:
    """`write(items)`, one transaction for the items of several parts (feeds). A failure that
    is not the database's as a whole (`unreachable`: a row the store cannot leave out by
    itself, a bug) must not fail the other parts: their items are written again, a part at a
    time, and each part's items get its own results or error (once the database is
    unreachable, that error goes to the parts not written yet). Raised as it is where the
    items are of one part, or where the database is unreachable."""
    try:
        return list(await write(items))
    except Exception as e:
        if len({part(item) for item in items}) < 2 or unreachable(e):
            raise
    parts: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        parts.setdefault(part(item), []).append(i)
    outcomes: list[R | Exception] = [StoreError("not written")] * len(items)
    down: Exception | None = None
    for mine in parts.values():
        written: list[R | Exception]
        if down is not None:
            written = [down] * len(mine)
        else:
            try:
                written = list(await write([items[i] for i in mine]))
            except Exception as e:
                down = e if unreachable(e) else None
                written = [e] * len(mine)
        for i, outcome in zip(mine, written, strict=True):
            outcomes[i] = outcome
    return outcomes


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _stopped(group: Sequence[tuple[object, asyncio.Future[Any], float]]) -> None:
    """Items the writer will not write: their waiters get an error, never a cancellation (a
    task that ends cancelled inside a task group passes unnoticed, as if it had succeeded)."""
    for _, done, _ in group:
        if not done.done():
            done.set_exception(StoreError("the writer stopped before writing this"))
