"""robots.txt as data: parse the bytes and answer "may this agent fetch this URL?".

Pure: no I/O. The fetching and caching policy (RFC 9309 status handling) lives in `ingest.fetch`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

ROBOTS_AGENT = "news-ingest"
"""The product token matched against `User-agent:` lines (RFC 9309 §2.2.1)."""


@dataclass(frozen=True, slots=True)
class Robots:
    """The rules of one robots.txt. Build with `parse_robots`, `Robots.allow_all()` or
    `Robots.disallow_all()`; the wrapped parser is never mutated after construction."""

    _parser: RobotFileParser

    @classmethod
    def allow_all(cls) -> Robots:
        return parse_robots(b"")

    @classmethod
    def disallow_all(cls) -> Robots:
        return parse_robots(b"User-agent: *\nDisallow: /\n")

    def allowed(self, url: str, user_agent: str = ROBOTS_AGENT) -> bool:
        return self._parser.can_fetch(user_agent, url)

    def crawl_delay(self, user_agent: str = ROBOTS_AGENT) -> float | None:
        """The `Crawl-delay` for this agent in seconds, if the file sets one (non-standard)."""
        delay = self._parser.crawl_delay(user_agent)
        return None if delay is None else float(delay)


def parse_robots(body: bytes) -> Robots:
    """Parse a robots.txt body. Undecodable bytes are replaced rather than rejected, because
    RFC 9309 §2.2 asks crawlers to use whatever rules they can still read."""
    text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
    parser = RobotFileParser()
    # parse() also stamps the parse time; can_fetch() answers False until that is set.
    parser.parse(text.splitlines())
    return Robots(parser)


def robots_url(page_url: str) -> str:
    """The robots.txt governing `page_url`: same scheme, host and port, path `/robots.txt`.
    Userinfo is dropped so credentials never travel to the robots.txt request."""
    parts = urlsplit(page_url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme.lower(), netloc.lower(), "/robots.txt", "", ""))
