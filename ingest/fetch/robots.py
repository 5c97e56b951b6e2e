"""robots.txt as data: parse the bytes and answer "may this agent fetch this URL?".

Pure: no I/O. The fetching and caching policy (RFC 9309 status handling) lives in `ingest.fetch`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

from ingest.normalize import wide_as_utf8

ROBOTS_AGENT = "news-ingest"
"""The product token matched against `User-agent:` lines (RFC 9309 §2.2.1)."""

_MAX_NUMBER: Final = 999_999_999
"""Larger Crawl-delay numbers are clamped to this: int() raises for digits beyond 4300, and
float() of a 400-digit delay overflows."""
_DECIMAL: Final = re.compile(r"([0-9]*)(?:\.([0-9]*))?", re.ASCII)
_SECONDS_UNITS: Final = ("seconds", "second", "secs", "sec", "s")
"""Units of seconds after a Crawl-delay's number (`5s`, `10 sec`), seen in the wild."""
_RATE: Final = re.compile(r"([0-9]+)\s*/\s*([0-9]+)\s*([smh]?)(?:\s|$)", re.ASCII | re.IGNORECASE)
"""A Request-rate value: requests / period, the period in seconds (no unit, `s`), minutes or
hours; a time window may follow (`1/10s 0600-0845`), which is not kept: the rate always
applies."""
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600}
_PRODUCT_TOKEN: Final = re.compile(r"[A-Za-z_-]*")
_PERCENT: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_ESCAPED_BYTE: Final = re.compile("[\udc80-\udcff]")
"""A byte that is no UTF-8, as `surrogateescape` decodes it."""
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PLAIN: Final = frozenset(chr(c) for c in range(0x21, 0x7F))
"""Characters a path or pattern keeps as they are; others are percent-encoded (as UTF-8)."""
_KEY_LENGTHS: Final = (16, 12, 8, 6, 4, 3, 2, 1)
"""A wildcard rule filed under a piece the path must contain is keyed by the piece's first
characters, as many as the longest of these lengths allows, so that a path is sliced at few
lengths to find the keys it contains."""
_KEY_LENGTH: Final = tuple(
    next((n for n in _KEY_LENGTHS if n <= length), 0) for length in range(_KEY_LENGTHS[0] + 1)
)
"""A piece's length (up to the longest key's) -> the length of its key."""


@dataclass(frozen=True, slots=True)
class _Rule:
    allow: bool
    pattern: str
    """Normalized (`_normalize`); `*` matches any run of characters, a final `$` the end."""


@dataclass(frozen=True, slots=True)
class _Group:
    agents: frozenset[str]
    """Product tokens, lowercase; "*" for the catch-all group."""
    rules: tuple[_Rule, ...]
    crawl_delay: int | None
    request_interval: float | None = None
    """The seconds between two requests its Request-rate asks for (non-standard)."""


@dataclass(frozen=True, slots=True)
class Robots:
    """The rules of one robots.txt. Build with `parse_robots`, `Robots.allow_all()` or
    `Robots.disallow_all()`."""

    _groups: tuple[_Group, ...]
    unavailable: bool = False
    """True for the complete disallow assumed while robots.txt answers 5xx or cannot be
    reached, where it was never read (RFC 9309 §2.3.1.4; once read, the rules last read stay
    in force meanwhile): a passing state, unlike rules the site wrote."""
    _matchers: dict[str, _Matcher] = field(default_factory=dict, compare=False, repr=False)
    """Product token -> the rules of its groups, indexed (`_Matcher`) on its first question."""

    @classmethod
    def allow_all(cls) -> Robots:
        return parse_robots(b"")

    @classmethod
    def disallow_all(cls) -> Robots:
        return parse_robots(b"User-agent: *\nDisallow: /\n")

    @classmethod
    def unreachable(cls) -> Robots:
        return cls(cls.disallow_all()._groups, unavailable=True)

    def allowed(self, url: str, user_agent: str = ROBOTS_AGENT) -> bool:
        """RFC 9309 §2.2.2: the rule with the longest pattern matching the URL's path and query
        decides, Allow winning a tie; no matching rule allows. /robots.txt is always allowed."""
        parts = urlsplit(url)
        path = _normalize(parts.path or "/")
        if parts.query:
            path += "?" + _normalize(parts.query)
        if path == "/robots.txt":
            return True
        token = _product_token(user_agent)
        matcher = self._matchers.get(token)
        if matcher is None:
            rules = (rule for group in self._groups_for(user_agent) for rule in group.rules)
            matcher = self._matchers.setdefault(token, _Matcher(rules))
        return matcher.allowed(path)

    def crawl_delay(self, user_agent: str = ROBOTS_AGENT) -> float | None:
        """The seconds this agent is asked to leave between two requests, if the file says:
        its `Crawl-delay`, or the interval its `Request-rate` gives (`1/10s`: 10) when that is
        longer (both non-standard; the first of each in the agent's groups)."""
        groups = self._groups_for(user_agent)
        delays = [g.crawl_delay for g in groups if g.crawl_delay is not None]
        intervals = [g.request_interval for g in groups if g.request_interval is not None]
        asked = [float(d[0]) for d in (delays, intervals) if d]
        return max(asked) if asked else None

    def _groups_for(self, user_agent: str) -> list[_Group]:
        """The groups naming `user_agent`'s product token, else the catch-all ones: RFC 9309
        §2.2.1 merges all the groups that match, and matches the whole token, ignoring case."""
        token = _product_token(user_agent)
        own = [g for g in self._groups if token and token in g.agents]
        return own or [g for g in self._groups if "*" in g.agents]


class _Matcher:
    """The rules of an agent's groups, filed so that a path is compared with the few that can
    match it rather than with all: a plain rule (no `*`, no final `$`) under its pattern, which
    must start the path; `x$` under `x`, the whole path; a wildcard rule under its longest
    literal piece: its first (which must start the path), its last before a final `$` (which
    must end it), or another (which the path must contain; keyed by its start, `_KEY_LENGTHS`).
    Each of these is found by slicing the path at the few lengths the keys have. The decision
    is the one of comparing every rule: the longest matching pattern, Allow winning a tie."""

    __slots__ = ("_contains", "_ends", "_exact", "_plain", "_plain_lengths", "_starts")

    def __init__(self, rules: Iterable[_Rule]) -> None:
        patterns: dict[str, bool] = {}
        for rule in rules:
            patterns[rule.pattern] = patterns.get(rule.pattern, False) or rule.allow
        self._plain: dict[str, bool] = {}
        self._exact: dict[str, bool] = {}
        starts: dict[str, list[tuple[int, bool, str]]] = {}
        ends: dict[str, list[tuple[int, bool, str]]] = {}
        contains: dict[str, list[tuple[int, bool, str]]] = {}
        for pattern, allow in patterns.items():
            anchored = pattern.endswith("$")
            pieces = (pattern[:-1] if anchored else pattern).split("*")
            if len(pieces) == 1:
                (self._exact if anchored else self._plain)[pieces[0]] = allow
                continue
            entry = (len(pattern), allow, pattern)
            inner = pieces[1] if len(pieces) == 2 else max(pieces[1:], key=len)
            inner = inner[: _KEY_LENGTH[min(len(inner), _KEY_LENGTHS[0])]]
            last = pieces[-1] if anchored else ""
            if len(pieces[0]) >= max(len(last), len(inner)):
                starts.setdefault(pieces[0], []).append(entry)
            elif len(last) >= len(inner):
                ends.setdefault(last, []).append(entry)
            else:
                contains.setdefault(inner, []).append(entry)
        self._plain_lengths = sorted({len(p) for p in self._plain}, reverse=True)
        self._starts = _Filed(starts)
        self._ends = _Filed(ends)
        self._contains = _Filed(contains)

    def allowed(self, path: str) -> bool:
        best = (-1, True)
        for length in self._plain_lengths:
            if length <= len(path) and (allow := self._plain.get(path[:length])) is not None:
                best = (length, allow)
                break
        if (allow := self._exact.get(path)) is not None:
            best = max(best, (len(path) + 1, allow))
        candidates = [
            *self._starts.found(path[:length] for length in self._starts.lengths),
            *self._ends.found(path[-length:] for length in self._ends.lengths),
            *self._contains.found(self._contains.within(path)),
        ]
        candidates.sort(reverse=True)
        for length, allow, pattern in candidates:
            if (length, allow) <= best:
                break
            if _matches(pattern, path):
                best = (length, allow)
                break
        return best[1]


class _Filed:
    """Wildcard rules (pattern length, allow, pattern) filed under a literal key."""

    __slots__ = ("_rules", "lengths")

    def __init__(self, rules: dict[str, list[tuple[int, bool, str]]]) -> None:
        self._rules = rules
        self.lengths = sorted({len(key) for key in rules})

    def found(self, keys: Iterable[str]) -> list[tuple[int, bool, str]]:
        """The rules filed under any of these keys."""
        if not self._rules:
            return []
        return [rule for key in keys if key in self._rules for rule in self._rules[key]]

    def within(self, path: str) -> Iterable[str]:
        """The keys `path` contains: each key looked for in it, or the path's slices at the keys'
        lengths (each one once), whichever is cheaper (a search costs a slice's set insert and
        lookup, and a bit more for each 64 characters of the path)."""
        if not self._rules:
            return ()
        slices = sum(max(len(path) - length + 1, 0) for length in self.lengths)
        if len(self._rules) * (4 + len(path) // 64) <= 3 * slices:
            return (key for key in self._rules if key in path)
        return {path[i : i + n] for n in self.lengths for i in range(len(path) - n + 1)}


def parse_robots(body: bytes) -> Robots:
    """Parse a robots.txt body (RFC 9309 §2.2). Bytes that are no UTF-8 are kept, not
    rejected, because §2.2 asks crawlers to use whatever rules they can still read: in a path,
    as the octets they are (`_octets`).

    A group is a run of User-agent lines and the Allow, Disallow, Crawl-delay and Request-rate
    lines after it,
    up to the next User-agent line that follows one of them; blank lines and other records
    (Sitemap, unknown ones) neither open nor end a group. Rules before any User-agent line
    belong to no group and are ignored."""
    groups: list[_Group] = []
    agents: set[str] = set()
    rules: list[_Rule] = []
    delay: int | None = None
    interval: float | None = None
    in_agents = False
    # RFC 9309 §2.2: a line ends at CR, LF or CRLF, where bytes.splitlines ends it; the
    # decoded text's splitlines would also end it at U+2028, NEL, a form feed…, cutting a rule in
    # two (its first piece a wider rule) or making the end of a comment a rule. A file saved as
    # UTF-16 (Notepad's "Unicode") is read as the UTF-8 it stands for: read a byte a
    # character, it had no field a NUL did not break, and its Disallow lines allowed all.
    for raw in wide_as_utf8(body).removeprefix(b"\xef\xbb\xbf").splitlines():
        line = raw.decode("utf-8", errors="surrogateescape")
        name, colon, value = line.partition("#")[0].partition(":")
        field, value = name.strip().lower(), value.strip()
        if not colon:
            continue
        if field == "user-agent":
            if not in_agents:
                if agents:
                    groups.append(_Group(frozenset(agents), tuple(rules), delay, interval))
                agents, rules, delay, interval = set(), [], None, None
            agents.add("*" if value == "*" else _product_token(value))
            in_agents = True
        elif field in ("allow", "disallow", "crawl-delay", "request-rate") and agents:
            in_agents = False
            if field == "crawl-delay":
                if delay is None:
                    delay = _seconds(unquote(value).strip())
            elif field == "request-rate":
                if interval is None:
                    interval = _interval(unquote(value).strip())
            elif value:
                rules.append(_Rule(field == "allow", _normalize(_octets(value))))
    if agents:
        groups.append(_Group(frozenset(agents), tuple(rules), delay, interval))
    return Robots(tuple(groups))


def _octets(value: str) -> str:
    """A rule's path with the bytes that are no UTF-8 (a robots.txt in Latin-1) percent-encoded
    as themselves: RFC 9309 §2.2.2 compares a path's octets percent-encoded, so `/caf\\xe9/`
    is `/caf%E9/`, the path a site in that charset serves it under."""
    if not _ESCAPED_BYTE.search(value):
        return value
    return _ESCAPED_BYTE.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", value)


def _product_token(user_agent: str) -> str:
    """The product token of a User-agent value or of our own agent string, lowercase: its
    leading letters, `_` and `-` (RFC 9309 §2.2.1), so `News-Ingest/2.0` names news-ingest."""
    match = _PRODUCT_TOKEN.match(user_agent.strip())
    return match.group().lower() if match else ""


def _normalize(text: str) -> str:
    """A path or pattern as RFC 9309 §2.2.2 compares it: percent-encoded unreserved characters
    decoded, other escapes in uppercase, and non-ASCII characters, spaces and controls
    percent-encoded as UTF-8, so that both spellings of one path match each other."""

    def escape(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group().upper()

    text = _PERCENT.sub(escape, text)
    if all(c in _PLAIN for c in text):
        return text
    return "".join(
        c if c in _PLAIN else "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace"))
        for c in text
    )


def _matches(pattern: str, path: str) -> bool:
    """Does `pattern` match the start of `path` (all of it, with a final `$`)? Each literal piece
    between `*`s is taken at its first occurrence after the previous one, which finds a match
    whenever there is one, in linear time: no backtracking, whatever the pattern."""
    anchored = pattern.endswith("$")
    pieces = (pattern[:-1] if anchored else pattern).split("*")
    first, *middle = pieces
    if not path.startswith(first):
        return False
    if not middle:
        return not anchored or len(path) == len(first)
    *middle, last = middle
    position = len(first)
    for piece in middle:
        found = path.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    if anchored:
        return path.endswith(last) and len(path) - len(last) >= position
    return path.find(last, position) >= 0


def _seconds(value: str) -> int | None:
    """A Crawl-delay value as whole seconds, rounded up; None if it is not a plain number,
    maybe followed by a unit of seconds (`5s`, `10 sec`, `1 second`)."""
    unit = next((u for u in _SECONDS_UNITS if value.lower().endswith(u)), "")
    value = value[: len(value) - len(unit)].rstrip()
    match = _DECIMAL.fullmatch(value)
    if match is None or value in ("", "."):
        return None
    whole, fraction = match.group(1), match.group(2) or ""
    seconds = _bounded(whole)
    if fraction.strip("0") and seconds < _MAX_NUMBER:
        seconds += 1
    return seconds


def _interval(value: str) -> float | None:
    """A Request-rate value (`n/p`, `n/p[smh]`, maybe a time window after it) as the seconds
    between two requests, p/n, at most `_MAX_NUMBER`; None if it is not one or n or p is 0."""
    match = _RATE.match(value)
    if match is None:
        return None
    requests, period = _bounded(match.group(1)), _bounded(match.group(2))
    if not requests or not period:
        return None
    return min(period * _UNIT_SECONDS[match.group(3).lower()] / requests, float(_MAX_NUMBER))


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
