"""What waits for the workers: the bytes of fetched documents (feeds and pages) that no worker
has finished with yet. A request starts only while they are under a limit (the pipeline asks
`room()` once a request has its connection slot), so however many feeds are in flight, a burst
the workers cannot keep up with holds at most the limit plus the requests already running
(`INGEST_MAX_CONNECTIONS`, each within its size cap), not the number of feeds times their
size."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ingest import metrics

T = TypeVar("T")


class Backlog:
    """Bytes held between a fetch and the end of its document's work in a worker. `room()`
    waits until they are under `limit`; `hold(n, work)` counts `n` bytes until `work` ends.
    The limit bounds when fetches start, not their size: the fetches already running when it
    is reached still land (each within its own size cap), and one document larger than the
    limit goes through alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._freed = asyncio.Event()

    async def room(self) -> None:
        while self.held >= self.limit:
            self._freed.clear()
            await self._freed.wait()

    async def hold(self, size: int, work: Awaitable[T]) -> T:
        """`await work`, with `size` bytes counted until `work` ends, also where the caller is
        cancelled before: the task a worker runs for a document goes on after its caller is
        gone, and its bytes with it, in the pool's queue or pipe (`Workers.run`)."""
        task = asyncio.ensure_future(work)
        self.held += size
        metrics.WORKER_BACKLOG.set(self.held)
        task.add_done_callback(lambda _: self._give(size))
        return await asyncio.shield(task)

    def _give(self, size: int) -> None:
        self.held -= size
        metrics.WORKER_BACKLOG.set(self.held)
        if self.held < self.limit:
            self._freed.set()
