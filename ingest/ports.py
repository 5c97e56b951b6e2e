"""What the pipeline needs of the network and of the worker pool, as Protocols: `Fetcher`
(`ingest.fetch`) and `Workers` (`ingest.workers.pool`) are the implementations the service
uses; anything with the same methods will do (the tests run pipelines on an in-process pool)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ingest.fetch import RobotsVerdict
    from ingest.types import FetchKind, FetchResult

T = TypeVar("T")


class PageFetcher(Protocol):
    """Fetches feeds and pages under the service's rules, and answers for robots.txt."""

    async def fetch(
        self,
        url: str,
        kind: FetchKind,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        starting: Callable[[], Awaitable[None]] | None = None,
        waiting: Callable[[], None] | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        headers_for: str | None = None,
    ) -> FetchResult:
        """GET `url`, following redirects: a 2xx result, a 304 to a request with `etag` or
        `last_modified`, or a `FetchError` (`BlockedError` when refused before connecting).
        `starting` is awaited when the host's politeness lets a request start (each hop's);
        `waiting` is called when a hop ends in a redirect, before the next hop waits for its
        host. `extra_headers` are a feed's own, its credentials sent to the site of
        `headers_for` (the feed's URL; by default `url`) only."""
        ...

    async def robots_verdict(self, url: str) -> RobotsVerdict:
        """May `url` be fetched: "allowed", "disallowed" by the site, or "unavailable" while
        its robots.txt cannot be read (`HeldError` while, besides, its host's Retry-After
        lasts)."""
        ...

    def quiet_for(self, url: str) -> float:
        """The seconds `url`'s host is to get no request from now, were the last request to it
        starting now: the host delay (raised by its robots.txt's Crawl-delay as last read), or
        what is left of its Retry-After where longer."""
        ...


class WorkerPool(Protocol):
    """Runs CPU-bound functions off the event loop, `size` at a time, each within a time
    limit (`WorkerTimeout` past it, `WorkerCrashed` if the worker dies)."""

    @property
    def size(self) -> int:
        """How many tasks run at once."""
        ...

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """`fn(*args)`; `fn` and the arguments must pickle (they may cross to a process)."""
        ...
