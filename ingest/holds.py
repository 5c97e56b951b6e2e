"""Hosts held for the requests a process sends them outside its claims (a backfill's; the pages
a service's feeds link on another host than their own), as the claims hold the hosts of their
feeds (sql/0045, `ingest.host_holds`): one process at a time sends requests to a host, so that
its delay holds whatever else runs beside it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

import structlog

from ingest.errors import HostTaken, IngestError
from ingest.normalize import host_key
from ingest.store import Store

log = structlog.get_logger(__name__)

HOLD_POLL: Final = 1.0
"""How often a request waiting for a host another process holds asks again whether it is
free: a service lets a host go once it has no feed of it in flight, long before the leases
its hold was renewed with run out."""


@dataclass(slots=True)
class _Hold:
    """This process's hold of one host (keyed as the fetcher keeps its politeness:
    `host_key`)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the host is taken, renewed or let go: one at a time."""
    users: int = 0
    """Requests to the host inside `HostHolds.hold`: it is let go once none is."""
    hosts: set[str] = field(default_factory=set)
    """The host as the database reads it (`ingest.url_host`), as takes told it (two where
    it reads two spellings of one host, an IPv6 address's, as two)."""
    url: str = ""
    """A URL of the host: what its delay is read for when it is let go."""
    until: float = float("-inf")
    """The moment (the clock's) until which the hold surely lasts: the start of its take or
    its last renewal, plus the lease."""
    waiting_since: float | None = None
    """When a request first found another process holding the host, since it last held it."""
    asked_at: float = float("-inf")
    """When a request last asked for it: a wait begins anew after a silence longer than a
    wait's asking (the next poll of a feed listing its pages)."""


class HostHolds:
    """`async with holds.hold(url):` around each request (`async with holds:` renews them, else
    `renew` does). A host is taken (`Store.take_host`) before a request to it goes out, held
    for INGEST_LEASE_SECONDS, renewed every third of that while requests to it go on, and let
    go once none does (`Store.release_hosts`), its delay from then on kept (`quiet_for`: the
    host delay, raised by its Crawl-delay, or the rest of its Retry-After), as a service lets go
    of a host it has no feed of in flight; not where the process's claims hold it (`claimed`),
    which let it go themselves. While another process holds it, a request waits, asking again
    every HOLD_POLL seconds, for at most `patience` seconds in all (by default a lease: what a
    process that died holds a host for), `waiting` logged as the wait starts; then it, and
    every request to the host after it until the host is taken, raises `HostTaken`, unsent. A
    process that dies holds its hosts until their leases run out."""

    def __init__(
        self,
        store: Store,
        owner: str,
        *,
        lease_seconds: float,
        delay: float,
        quiet_for: Callable[[str], float],
        patience: float | None = None,
        waiting: str = "host_waiting",
        claimed: Callable[[str], bool] = lambda host: False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease_seconds
        self.patience = lease_seconds if patience is None else patience
        self._delay = delay
        self._waiting = waiting
        self._claimed = claimed
        self._quiet_for = quiet_for
        self._clock = clock
        self._sleep = sleep
        self._holds: dict[str, _Hold] = {}
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HostHolds:
        self._renewer = asyncio.create_task(self._renew())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        for hold in list(self._holds.values()):
            await self._let_go(hold)

    @contextlib.asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[None]:
        """The request to `url` runs inside the block, its host held by this process (taken
        first where it is not, waiting while another process holds it: `HostTaken` once that
        has lasted `patience`)."""
        key = _key(url)
        hold = self._holds.get(key)
        if hold is None:
            hold = self._holds[key] = _Hold()
        hold.users += 1
        try:
            await self._take(hold, url)
            yield
        finally:
            hold.users -= 1
            if not hold.users:
                await asyncio.shield(self._let_go(hold))

    async def _take(self, hold: _Hold, url: str) -> None:
        async with hold.lock:
            while self._clock() > hold.until - self.lease / 3:
                started = self._clock()
                if started - hold.asked_at > self.patience + HOLD_POLL:
                    hold.waiting_since = None
                hold.asked_at = started
                take = await self.store.take_host(self.owner, url, self.lease)
                if take.taken:
                    hold.hosts.add(take.host)
                    hold.url, hold.until, hold.waiting_since = url, started + self.lease, None
                    return
                if hold.waiting_since is None:
                    hold.waiting_since = started
                    log.info(
                        self._waiting,
                        host=take.host,
                        held_by=take.held_by,
                        seconds=round(take.seconds or 0),
                    )
                left = self.patience - (started - hold.waiting_since)
                if left <= 0:
                    raise HostTaken(
                        url,
                        f"held: {take.host} is another process's ({take.held_by or 'a claim'}), "
                        f"longer than a request waits for it ({self.patience:g}s)",
                        seconds=take.seconds or 0.0,
                        host=take.host,
                    )
                await self._sleep(min(HOLD_POLL, left, take.seconds or HOLD_POLL))

    async def _let_go(self, hold: _Hold) -> None:
        """Let the host go, unless requests to it came meanwhile: another process may take
        it once its delay from now is over. Where the database does not answer, it is held
        until its lease runs out."""
        async with hold.lock:
            if hold.users or not hold.hosts or hold.until == float("-inf"):
                return
            hold.until = float("-inf")
            hosts = [host for host in hold.hosts if not self._claimed(host)]
            hold.hosts.clear()
            if not hosts:
                return
            quiet = self._delay
            with contextlib.suppress(IngestError):  # a URL that cannot be requested
                quiet = self._quiet_for(hold.url)
            with contextlib.suppress(IngestError):
                await self.store.release_hosts(self.owner, hosts, quiet)

    def busy(self) -> set[str]:
        """The hosts (as the database reads them) requests go on to: a claim's release of one
        leaves it to the last of them (`claimed`)."""
        return {host for hold in self._holds.values() if hold.users for host in hold.hosts}

    async def _renew(self) -> None:
        while True:
            await self._sleep(self.lease / 3)
            await self.renew()

    async def renew(self) -> None:
        """The hosts requests go on to, held a lease more (every third of it); one another
        process took meanwhile (this one stalled past its lease) is taken again, or waited
        for, by the next request to it."""
        busy = [h for h in self._holds.values() if h.users and h.hosts]
        if busy:
            started = self._clock()
            try:
                kept = await self.store.renew_hosts(
                    self.owner, [host for h in busy for host in h.hosts], self.lease
                )
            except IngestError as e:
                log.warning("host_renewal_failed", error=str(e))
                return
            for h in busy:
                if not h.hosts:
                    # Let go while the renewal was under way (its last request ended): its
                    # release stands, and the next request to it takes it again.
                    continue
                if h.hosts <= kept:
                    h.until = max(h.until, started + self.lease)
                else:
                    h.until = float("-inf")
                    h.hosts &= kept


def same_host(url: str, other: str) -> bool:
    """Whether two URLs are of one host, whatever their schemes and ports."""
    return _key(url) == _key(other)


def _key(url: str) -> str:
    """The host of `url` whatever its scheme and port, as the fetcher keeps its politeness."""
    return host_key(urlsplit(url).hostname or "")
