"""Writes gathered into groups: while one group is being written, what arrives meanwhile waits
for the next, so that a burst of small writes costs a few transactions, not one each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupWriter(Generic[T, R]):
    """Writes items in groups: items added while a write is in progress are written together
    by the next one. The first item of a group is written at once, or, with `linger`, after
    waiting that many seconds for others to join it (for writes whose cost is mostly per
    transaction). `write` returns one result per item, in order; `add` returns its item's
    result when the item is written, or raises what the write raised."""

    def __init__(
        self, write: Callable[[list[T]], Awaitable[Sequence[R]]], *, linger: float = 0.0
    ) -> None:
        self._write = write
        self._linger = linger
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writing = False
        self._drainer: asyncio.Future[None] | None = None

    async def add(self, item: T) -> R:
        (result,) = await self.add_all([item])
        return result

    async def add_all(self, items: Sequence[T]) -> list[R]:
        """`add` of each item (written in the same group): their results, in order."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in items]
        self._pending += zip(items, futures, strict=True)
        if not self._writing:
            self._writing = True
            self._drainer = asyncio.ensure_future(self._drain())
        return list(await asyncio.shield(asyncio.gather(*futures)))

    async def _drain(self) -> None:
        try:
            if self._linger > 0:
                await asyncio.sleep(self._linger)
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    results = await self._write([item for item, _ in group])
                    if len(results) != len(group):
                        raise TypeError(f"{len(results)} results for {len(group)} items")
                except Exception as e:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(e)
                except BaseException:
                    for _, done in group:
                        done.cancel()
                    raise
                else:
                    for (_, done), result in zip(group, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self._writing = False
            for _, done in self._pending:  # left by a cancelled drain
                done.cancel()
            self._pending = []
