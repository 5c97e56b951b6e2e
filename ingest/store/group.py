"""Writes gathered into groups: while one group is being written, what arrives meanwhile waits
for the next, so that a burst of small writes costs a few transactions, not one each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupWriter(Generic[T]):
    """Writes items in groups without delaying any: the first item is written at once; items
    added while a write is in progress are written together by the next one. `add` returns
    when its item is written, or raises what the write raised."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writing = False
        self._drainer: asyncio.Future[None] | None = None

    async def add(self, item: T) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if not self._writing:
            self._writing = True
            self._drainer = asyncio.ensure_future(self._drain())
        await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await self._write([item for item, _ in group])
                except Exception as e:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(e)
                except BaseException:
                    for _, done in group:
                        done.cancel()
                    raise
                else:
                    for _, done in group:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._writing = False
            for _, done in self._pending:  # left by a cancelled drain
                done.cancel()
            self._pending = []
