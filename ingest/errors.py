"""The exception tree of news-ingest. Errors are translated once, at the I/O boundary.

    IngestError                    anything the service expects and records instead of crashing
    ├── ConfigError                settings that cannot work (exit non-zero at start-up)
    ├── FeedError(url)             something about one feed or page URL
    │   ├── FetchError             the request failed (.status, .retry_after, .date, ...)
    │   │   ├── BlockedError       refused before connecting: scheme, address, robots.txt
    │   │   └── HeldError          not sent: the host's Retry-After is not over
    │   │       └── HostTaken      not sent: another process holds the host (sql/0045)
    │   └── ParseError             the bytes are not a feed feedparser can use
    ├── ExtractError(url)          the page could not be turned into an article
    ├── WorkerError                a task of the worker pool did not finish
    │   ├── WorkerTimeout          it overran its time limit; its worker was killed
    │   └── WorkerCrashed          its worker process died (segfault, out of memory)
    └── StoreError                 the database refused or is unreachable
        ├── LockLost               a backfill's advisory lock went with its database session
        └── DatabaseSilent         the database answered nothing for a minute: a command stopped

A 304 Not Modified to a conditional request is a normal result, never an exception (to a
request without validators, a FetchError). Anything outside this tree is a bug: it is logged
with its traceback and re-raised.
"""

from __future__ import annotations

import math
from typing import Any, Final


class IngestError(Exception):
    """Base class of every error the service records and survives."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors raised in worker processes cross back by pickle; the default reduction replays
        # only `args`, which misses keyword-only fields such as FetchError.status.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[IngestError], args: tuple[Any, ...], state: dict[str, Any]) -> IngestError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ConfigError(IngestError):
    """Configuration that cannot work."""


class _AboutURL(IngestError):
    """An error about one URL; `str()` is the message alone, the URL travels beside it."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.message = message

    def __str__(self) -> str:
        return self.message


class FeedError(_AboutURL):
    pass


class FetchError(FeedError):
    def __init__(
        self,
        url: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        date: str | None = None,
        permanent: bool = False,
        response_url: str | None = None,
    ) -> None:
        super().__init__(url, message)
        self.status = status
        self.retry_after = retry_after
        self.date = date
        """The response's Date header: what a Retry-After HTTP-date counts from."""
        self.response_url = response_url
        """The URL that gave the response (`status`), after any redirects: its host is the one
        that refused, and the one a Retry-After holds."""
        self.permanent = permanent
        """The response itself is unusable (over the size cap, an encoding we refuse, a broken
        body or URL): fetching again would give the same result."""

    @property
    def transient(self) -> bool:
        """Worth another try later: no response at all (a timeout, a refused or dropped
        connection), 429, or a server error; never a refusal or an unusable response."""
        if self.permanent or isinstance(self, BlockedError):
            return False
        return self.status is None or self.status == 429 or self.status >= 500


class BlockedError(FetchError):
    """Refused before any connection: non-HTTP scheme, non-public address, or robots.txt."""


class HeldError(FetchError):
    """Not sent: the host answered another request with 429 or 503 and a Retry-After that is
    not over (`seconds` left, also as `retry_after`). The host's word, not the URL's failure:
    a feed held is due again when the hold ends, with nothing of its failures changed."""

    def __init__(self, url: str, message: str, *, seconds: float, host: str | None = None) -> None:
        super().__init__(url, message, retry_after=str(math.ceil(seconds)))
        self.seconds = seconds
        self.host = host
        """The host held (after redirects, the one the request would have gone to)."""


class HostTaken(HeldError):
    """Not sent: another process holds the host (sql/0045: a service polling its feeds, a
    backfill) and did not let it go within the time a request waits for it (`ingest.holds`:
    a backfill's, a page's of another host than its feed's). `seconds`: what its hold had left
    as recorded then (its renewals move that on, its release brings it in)."""


class ParseError(FeedError):
    pass


class ExtractError(_AboutURL):
    pass


class StoreError(IngestError):
    pass


class LockLost(StoreError):
    """The database session holding a backfill's advisory lock ended mid-run (terminated, a
    restart, a network failure): the backfill stops, as another process may now hold the lock
    and run it (`ingest backfill` exits 3)."""


class DatabaseSilent(StoreError):
    """The database answered nothing at all for a minute while a command worked through its
    pool (`ingest.store.db.watching`): the command was stopped, its connections shut down
    (exit 1)."""


class WorkerError(IngestError):
    """A task of the worker pool did not finish; callers translate it into what it means for
    their work (a feed that could not be parsed, a page that could not be extracted)."""


class WorkerTimeout(WorkerError):
    """The task overran its time limit; its worker process was killed."""


class WorkerCrashed(WorkerError):
    """The worker process died while running the task (segfault, out of memory)."""


QUOTED_CHARS: Final = 200
"""The most of what a server wrote (a Location, a reason phrase, a Content-Type, a line h11
refuses) an error quotes (`clipped`)."""


def clipped(text: str) -> str:
    """What a server wrote, as an error quotes it: its first `QUOTED_CHARS` characters, and
    `…` where there is more. Up to 100 KiB of it (a header's length) would otherwise be the
    error recorded on the feed or the article, and its log line."""
    return text if len(text) <= QUOTED_CHARS else f"{text[:QUOTED_CHARS]}…"
