"""Concurrency and politeness: requests in flight per host and in all, and the delay between
two requests to one host, with the clock and sleep passed in."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

Clock = Callable[[], float]
"""Monotonic seconds; `time.monotonic` outside tests."""

Sleep = Callable[[float], Awaitable[None]]
"""Waits the given number of seconds; `asyncio.sleep` outside tests."""

_SWEEP_MIN: Final = 1024
"""Idle hosts still inside their delay are swept once the table reaches this size (or twice
its size after the previous sweep), which keeps sweeping amortised O(1) per new host."""


class HostHeld(Exception):
    """The host asked for no request for longer than a request waits (`HostLimiter`'s
    `patience`): the request fails at once instead of waiting or going out."""

    def __init__(self, key: str, seconds: float) -> None:
        super().__init__(f"{key} held for another {seconds:.0f}s")
        self.key = key
        self.seconds = seconds
        """The time left before the host takes requests again."""


class Slots:
    """A counting semaphore whose waiters are served urgent ones first, then in arrival order.

    The limit on requests in flight across all hosts (`HostLimiter`'s `total`): a request a
    feed in progress waits on (its pages, its host's robots.txt) goes before one that starts
    another feed. A cold run asks for every feed and every host's robots.txt at once; served
    in arrival order, the first feeds' pages queued behind all of them, and the workers had
    no page to extract until most feeds were in."""

    def __init__(self, value: int) -> None:
        self._free = value
        self._waiters: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        """Urgent waiters, then the others."""

    def locked(self) -> bool:
        return self._free == 0

    async def acquire(self, *, urgent: bool = False) -> None:
        if self._free > 0:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = self._waiters[0 if urgent else 1]
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as it was cancelled: the next waiter's
            elif waiter in queue:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in self._waiters:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1


@dataclass(eq=False)
class _Host:
    turn: asyncio.Lock
    """Held by the one waiter allowed to start next: asyncio.Lock hands itself over in FIFO
    order, so waiters for a host are served in arrival order."""
    slots: asyncio.Semaphore
    """The per-host concurrency limit. The holder of `turn` waits on it, and untimed requests
    (robots.txt), which take no turn."""
    users: int = 0
    """Requests waiting for or holding a slot; the entry may go only when this is 0."""
    last_start: float = -math.inf
    not_before: float = -math.inf
    """No request starts before then: the host asked us to wait (`HostLimiter.hold`)."""


class HostLimiter:
    """Per-host politeness, keyed as the caller chooses (the fetcher: by host name, whatever
    the scheme and port): at most `per_host` requests in flight, and at least `delay(key)`
    seconds between the starts of two consecutive requests (the
    settings' host delay, raised by robots.txt Crawl-delay). With `total`, it also owns the
    limit on requests in flight across all hosts, taken last so that a host waiting out its
    delay holds no global slot, and so that the start it records is the real start.

    Waiters for one host start in FIFO order; hosts never wait for each other except for
    `total`, whose waiters are served urgent ones first (`Slots`). Entries go once idle and
    past their delay, so the table does not grow with every host ever seen. `clock` and
    `sleep` are injectable so tests can run on virtual time.
    A timed request to a host held (`hold`) for longer than `patience` seconds from now raises
    `HostHeld` instead of waiting."""

    def __init__(
        self,
        per_host: int,
        *,
        total: int | None = None,
        delay: float | Callable[[str], float] = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        patience: float = math.inf,
    ) -> None:
        self.per_host = per_host
        self._patience = patience
        self._total = None if total is None else Slots(total)
        if callable(delay):
            self._delay = delay
        else:
            fixed = float(delay)
            self._delay = lambda key: fixed
        self._clock = clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}
        self._sweep_at = _SWEEP_MIN

    @asynccontextmanager
    async def slot(
        self,
        key: str,
        *,
        timed: bool = True,
        ready: Callable[[], Awaitable[None]] | None = None,
        urgent: bool = False,
    ) -> AsyncIterator[None]:
        """Wait for a turn to start a request to `key`; the request runs inside the block.
        `ready` is awaited once, when the host's delay has been served and before the request
        takes a global slot and counts as started: a caller that holds requests back on its own
        account (a page slot, the worker backlog) waits there, holding no global slot, and its
        wait cannot shorten the host's delay (which is checked again after it).
        An untimed request (robots.txt) takes a host slot and a global one and counts as the
        host's last start, but does not wait out the host's delay: asked for right after the
        feed, it then costs the host's first page a few milliseconds, not a whole delay. While
        the host is held (`hold`) it is timed: the host asked for no request, whatever it is.
        An `urgent` request takes the next global slot before the others waiting for one
        (`Slots`)."""
        host = self._hosts.get(key)
        if host is None:
            if len(self._hosts) >= self._sweep_at:
                self._sweep()
            host = self._hosts[key] = _Host(asyncio.Lock(), asyncio.Semaphore(self.per_host))
        host.users += 1
        try:
            if not timed and host.not_before <= self._clock():
                async with self._untimed(host, ready, urgent):
                    yield
                return
            async with host.turn:
                await host.slots.acquire()
                try:
                    await self._wait_for_start(key, host, ready, urgent)
                except BaseException:
                    host.slots.release()
                    raise
                host.last_start = self._clock()
            try:
                yield
            finally:
                if self._total is not None:
                    self._total.release()
                host.slots.release()
        finally:
            host.users -= 1
            if self._idle(key, host, self._clock()):
                del self._hosts[key]

    @asynccontextmanager
    async def _untimed(
        self, host: _Host, ready: Callable[[], Awaitable[None]] | None, urgent: bool
    ) -> AsyncIterator[None]:
        async with host.slots:
            if ready is not None:
                await ready()
            if self._total is not None:
                await self._total.acquire(urgent=urgent)
            host.last_start = max(host.last_start, self._clock())
            try:
                yield
            finally:
                if self._total is not None:
                    self._total.release()

    async def _wait_for_start(
        self, key: str, host: _Host, ready: Callable[[], Awaitable[None]] | None, urgent: bool
    ) -> None:
        """Sleep out the host's delay, await `ready` (once), then take a global slot. The delay
        is read again after every wait: a robots.txt (untimed, with a Crawl-delay) may have
        gone out in the meantime, a response the host's hold (`HostHeld`)."""
        while True:
            now = self._clock()
            if host.not_before - now > self._patience:
                raise HostHeld(key, host.not_before - now)
            wait = self._next_start(key, host) - now
            if wait > 0:
                await self._sleep(wait)
                continue
            if ready is not None:
                await ready()
                ready = None
                continue
            if self._total is None:
                return
            await self._total.acquire(urgent=urgent)
            if self._next_start(key, host) <= self._clock():
                return
            self._total.release()

    def hold(self, key: str, seconds: float) -> None:
        """No request to `key` starts in the next `seconds` (a Retry-After), whatever its
        delay, an untimed one included; a request in flight is not stopped."""
        host = self._hosts.get(key)
        if host is not None:
            host.not_before = max(host.not_before, self._clock() + seconds)

    def held_for(self, key: str) -> float:
        """The seconds left before `key` takes requests again after a `hold`; 0 if none."""
        host = self._hosts.get(key)
        return max(host.not_before - self._clock(), 0.0) if host is not None else 0.0

    def _next_start(self, key: str, host: _Host) -> float:
        return max(host.last_start + self._delay(key), host.not_before)

    def _idle(self, key: str, host: _Host, now: float) -> bool:
        """Nobody is waiting or in flight and forgetting the host would delay nobody."""
        return host.users == 0 and self._next_start(key, host) <= now

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, h in self._hosts.items() if self._idle(k, h, now)]:
            del self._hosts[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._hosts))

    def __len__(self) -> int:
        return len(self._hosts)
