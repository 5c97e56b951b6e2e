"""robots.txt as data: parse the bytes and answer "may this agent fetch this URL?".

Pure: no I/O. The fetching and caching policy (RFC 9309 status handling) lives in `ingest.fetch`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

ROBOTS_AGENT = "news-ingest"
"""The product token matched against `User-agent:` lines (RFC 9309 §2.2.1)."""

_MAX_NUMBER: Final = 999_999_999
"""Larger Crawl-delay / Request-rate numbers are clamped to this before RobotFileParser sees
them: it calls int() on any `str.isdigit()` value, which raises for digits beyond 4300 and
for non-ASCII digits ("²"), and float() of a 400-digit delay overflows."""
_DECIMAL: Final = re.compile(r"([0-9]*)(?:\.([0-9]*))?", re.ASCII)


@dataclass(frozen=True, slots=True)
class Robots:
    """The rules of one robots.txt. Build with `parse_robots`, `Robots.allow_all()` or
    `Robots.disallow_all()`; the wrapped parser is never mutated after construction."""

    _parser: RobotFileParser
    unavailable: bool = False
    """True for the complete disallow assumed while robots.txt answers 5xx or cannot be
    reached (RFC 9309 §2.3.1.4): a passing state, unlike rules the site wrote."""

    @classmethod
    def allow_all(cls) -> Robots:
        return parse_robots(b"")

    @classmethod
    def disallow_all(cls) -> Robots:
        return parse_robots(b"User-agent: *\nDisallow: /\n")

    @classmethod
    def unreachable(cls) -> Robots:
        return cls(cls.disallow_all()._parser, unavailable=True)

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
    parser.parse([_safe_numbers(line) for line in text.splitlines()])
    return Robots(parser)


def _safe_numbers(line: str) -> str:
    """`line` with its Crawl-delay or Request-rate value rewritten so RobotFileParser can
    neither crash on it nor ignore a fractional delay; other lines are returned unchanged.

    The line itself is kept (an invalid value becomes an empty one) because RobotFileParser's
    group state machine counts it as a rule line either way. A fractional Crawl-delay, which
    RobotFileParser would ignore, is rounded up: waiting slightly longer than asked is polite.
    """
    name, colon, value = line.partition(":")
    field = name.strip().lower()
    if not colon or field not in ("crawl-delay", "request-rate"):
        return line
    # As RobotFileParser reads it: comment cut, whitespace stripped, percent-decoded.
    value = unquote(value.partition("#")[0].strip()).strip()
    if field == "crawl-delay":
        seconds = _seconds(value)
        return f"{name}:{'' if seconds is None else seconds}"
    parts = value.split("/")
    if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        return f"{name}:"
    requests, per = (_bounded(p.strip()) for p in parts)
    return f"{name}:{requests}/{per}"


def _seconds(value: str) -> int | None:
    """A Crawl-delay value as whole seconds, rounded up; None if it is not a plain number."""
    match = _DECIMAL.fullmatch(value)
    if match is None or value in ("", "."):
        return None
    whole, fraction = match.group(1), match.group(2) or ""
    seconds = _bounded(whole)
    if fraction.strip("0") and seconds < _MAX_NUMBER:
        seconds += 1
    return seconds


def _bounded(digits: str) -> int:
    """ASCII digits (maybe none) as an int, at most `_MAX_NUMBER`; long runs never reach int()."""
    digits = digits.lstrip("0")
    if len(digits) >= len(str(_MAX_NUMBER)):
        return _MAX_NUMBER
    return int(digits or "0")


def robots_url(page_url: str) -> str:
    """The robots.txt governing `page_url`: same scheme, host and port, path `/robots.txt`.
    Userinfo is dropped so credentials never travel to the robots.txt request."""
    parts = urlsplit(page_url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme.lower(), netloc.lower(), "/robots.txt", "", ""))
