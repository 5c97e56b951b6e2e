"""Virtual time for code that takes a clock and a sleep (`HostLimiter`, `Fetcher`): waits take
no real time, and what is checked is when things happen on the virtual clock.

`VirtualTime` is a scheduler for code that does no real I/O: `run()` lets every task go as far
as it can, then moves the clock to the earliest pending sleep. `SteppingClock` is for code that
does real I/O meanwhile (a `Fetcher` talking to a loopback server): each sleep returns at once,
the clock moved on by its length."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class VirtualTime:
    """A clock and a sleep that never wait: `run()` lets every task go as far as it can, then
    jumps the clock to the earliest pending sleep and wakes it, until all tasks are done."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, *jobs: Awaitable[T]) -> list[T]:
        tasks = [asyncio.ensure_future(job) for job in jobs]
        while True:
            # No real I/O or timers are involved, so a bounded number of loop iterations lets
            # every runnable task reach its next wait.
            for _ in range(100):
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                return [task.result() for task in tasks]
            live = [t for t in self._timers if not t[2].done()]
            if not live:
                for task in tasks:
                    task.cancel()
                raise AssertionError("deadlock: tasks are waiting and no sleep is pending")
            self.now = max(self.now, min(t[0] for t in live))
            while self._timers and self._timers[0][0] <= self.now:
                _, _, future = heapq.heappop(self._timers)
                if not future.done():
                    future.set_result(None)


class SteppingClock:
    """A monotonic clock that moves only when something sleeps on it: `sleep(s)` lets the
    other tasks run once and returns, the clock `s` seconds further on. Real I/O in between
    takes no virtual time, so a request sent right after a wait starts exactly when the wait
    ends. Exact while one sleeper at a time decides what happens (requests to one host, one
    connection); sleeps that overlap in real time add up instead. `now` may be set by hand
    (a robots.txt cache expiring); `slept` lists every sleep asked for."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds > 0:
            later = self.now + seconds
            # A wait too short to move a large clock still moves it, or its sleeper would
            # compute the same wait again for ever.
            self.now = later if later > self.now else math.nextafter(self.now, math.inf)
        await asyncio.sleep(0)
