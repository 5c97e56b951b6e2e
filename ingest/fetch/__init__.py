"""HTTP for the whole service, httpx only: the SSRF guard (`guard`), the network under httpx
(`transport`), response bodies (`body`), per-host concurrency and politeness (`limits`),
robots.txt (`robots`), pages that are a refresh to another address (`refresh`), and the
`Fetcher` that owns them all (`client`)."""

from ingest.fetch.body import BodyDecoder, BodyTooLargeError, content_coding
from ingest.fetch.client import Fetcher, RobotsVerdict
from ingest.fetch.guard import (
    AddressCheck,
    BlockedAddressError,
    Resolver,
    check_address,
    system_resolver,
)
from ingest.fetch.limits import HostLimiter
from ingest.fetch.pools import OriginPools
from ingest.fetch.transport import AsyncioBackend, GuardedBackend

__all__ = [
    "AddressCheck",
    "AsyncioBackend",
    "BlockedAddressError",
    "BodyDecoder",
    "BodyTooLargeError",
    "Fetcher",
    "GuardedBackend",
    "HostLimiter",
    "OriginPools",
    "Resolver",
    "RobotsVerdict",
    "check_address",
    "content_coding",
    "system_resolver",
]
