"""Every IngestError crosses process boundaries (worker pool -> event loop) by pickle: the
round trip must keep the class, the message and every field."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from collections.abc import Iterator

import pytest

import ingest
from ingest.documents.feedlists import FeedListError
from ingest.errors import (
    BlockedError,
    ConfigError,
    DatabaseSilent,
    ExtractError,
    FeedError,
    FetchError,
    HeldError,
    HostTaken,
    IngestError,
    LockLost,
    ParseError,
    StoreError,
    WorkerCrashed,
    WorkerError,
    WorkerTimeout,
)
from ingest.workers import forkserver

URL = "https://example.com/feed/"

# One instance per class, every field set to a value distinct from its default.
SAMPLES: dict[type[IngestError], IngestError] = {
    IngestError: IngestError("something expected went wrong"),
    ConfigError: ConfigError("invalid configuration: INGEST_WORKERS: must be >= 1"),
    FeedError: FeedError(URL, "feed is gone"),
    FetchError: FetchError(
        URL,
        "HTTP 503 Service Unavailable",
        status=503,
        retry_after="120",
        date="Sun, 06 Nov 1994 08:49:37 GMT",
        permanent=True,
        response_url="https://cdn.example.net/feed/",
    ),
    BlockedError: BlockedError(URL, "disallowed by robots.txt", status=451, retry_after="60"),
    HeldError: HeldError(
        URL, "held: example.com asked for no request", seconds=1199.5, host="example.com"
    ),
    HostTaken: HostTaken(
        URL, "held: example.com is another process's", seconds=420.5, host="example.com"
    ),
    ParseError: ParseError(URL, "not a feed: text/html"),
    ExtractError: ExtractError(URL, "no article text found on the page"),
    StoreError: StoreError("database unreachable"),
    LockLost: LockLost("backfill 3 lost its lock (its database session ended)"),
    DatabaseSilent: DatabaseSilent("the database answered nothing for 60 s: the command stopped"),
    FeedListError: FeedListError("not a valid OPML file"),
    WorkerError: WorkerError("worker pool task failed"),
    WorkerTimeout: WorkerTimeout("timed out after 30s"),
    WorkerCrashed: WorkerCrashed("worker process died (exit code -9)"),
}


def _subclasses(cls: type[IngestError]) -> Iterator[type[IngestError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_samples_cover_every_subclass() -> None:
    """The table above has one sample for every public IngestError subclass in `ingest`. The
    fork server's preload is not imported: importing it makes the importing process ignore
    SIGINT (it is meant for the fork server only), and every process a later test starts here
    would inherit that."""
    for module in pkgutil.walk_packages(ingest.__path__, "ingest."):
        if module.name not in forkserver.PRELOAD:
            importlib.import_module(module.name)
    project = {
        c
        for c in _subclasses(IngestError)
        if c.__module__.startswith("ingest.") and not c.__name__.startswith("_")
    }
    assert project <= set(SAMPLES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("protocol", [pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_keeps_fields(cls: type[IngestError], protocol: int) -> None:
    """Class, str(), args and every field (url, message, status, retry_after, date,
    response_url, permanent, seconds, host) survive pickling."""
    original = SAMPLES[cls]
    copy = pickle.loads(pickle.dumps(original, protocol=protocol))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert vars(copy) == vars(original)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(FetchError(URL, "m", status=429, retry_after="30"), (429, "30"), id="fetch"),
        pytest.param(BlockedError(URL, "m"), (None, None), id="blocked-defaults"),
    ],
)
def test_fetch_fields_survive(error: FetchError, expected: tuple[object, object]) -> None:
    """The keyword-only status and retry_after (which a plain args replay would lose) come
    back, defaults included."""
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status, copy.retry_after) == expected
    assert copy.url == URL


def test_round_trip_keeps_hierarchy() -> None:
    """A pickled BlockedError is still caught as FetchError, FeedError and IngestError."""
    copy = pickle.loads(pickle.dumps(SAMPLES[BlockedError]))
    assert isinstance(copy, FetchError)
    assert isinstance(copy, FeedError)
    assert isinstance(copy, IngestError)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (FetchError(URL, "timed out"), True),
        (FetchError(URL, "HTTP 429", status=429), True),
        (FetchError(URL, "HTTP 503", status=503), True),
        (FetchError(URL, "HTTP 404", status=404), False),
        (FetchError(URL, "HTTP 410", status=410), False),
        (FetchError(URL, "body exceeds 10 bytes", permanent=True), False),
        (BlockedError(URL, "disallowed by robots.txt"), False),
    ],
)
def test_transient_is_decided_once(error: FetchError, transient: bool) -> None:
    """What is worth another try: no response, 429 or 5xx; never a refusal or an unusable
    response (the pipeline and the backfill both ask this property)."""
    assert error.transient is transient
