"""What waits for the workers: the bytes of fetched documents (feeds and pages) that no worker
has finished with yet. A request starts only while they are under a limit (the pipeline asks
`room()` once a request has its connection slot), so however many feeds are in flight, a burst
the workers cannot keep up with holds at most the limit plus the requests already running
(`INGEST_MAX_CONNECTIONS`, each within its size cap), not the number of feeds times their
size."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from ingest import metrics


class Backlog:
    """Bytes held between a fetch and the end of its document's work in a worker. `room()`
    waits until they are under `limit`; `holding(n)` counts `n` bytes while its block runs.
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

    @contextmanager
    def holding(self, size: int) -> Iterator[None]:
        self.held += size
        metrics.WORKER_BACKLOG.set(self.held)
        try:
            yield
        finally:
            self.held -= size
            metrics.WORKER_BACKLOG.set(self.held)
            if self.held < self.limit:
                self._freed.set()
