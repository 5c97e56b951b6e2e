"""Decides, for one feed's entries, which pages to fetch, which entries only need linking to an
article already stored, and which to skip. Pure: it returns a plan that the pipeline executes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, replace

from ingest.normalize import canonical_url, entry_hash
from ingest.types import ParsedEntry


@dataclass(frozen=True, slots=True)
class Candidate:
    entry: ParsedEntry
    link: str
    """The entry link in canonical form: what is fetched and looked up."""
    key: bytes
    """Hash of the entry's identity in its feed: its guid, or its canonical link without one."""
    attempts: int = 0
    """Earlier tries at this entry's page that failed for a passing reason."""


@dataclass(frozen=True, slots=True)
class Plan:
    fetch: tuple[Candidate, ...] = ()
    link: tuple[tuple[bytes, int], ...] = ()
    """(entry key, article id): entries new to this feed whose article is already stored."""
    skipped: int = 0
    invalid: int = 0


def candidates(entries: Iterable[ParsedEntry]) -> tuple[list[Candidate], int]:
    """Entries with a usable http(s) link, in feed order, one per key and per link; also returns
    how many entries had no usable link."""
    found: list[Candidate] = []
    keys: set[bytes] = set()
    links: set[str] = set()
    invalid = 0
    for entry in entries:
        if not entry.link:
            invalid += 1
            continue
        try:
            link = canonical_url(entry.link)
        except ValueError:
            invalid += 1
            continue
        key = entry_hash("guid:" + entry.guid if entry.guid else "link:" + link)
        if key in keys or link in links:
            continue
        keys.add(key)
        links.add(link)
        found.append(Candidate(entry, link, key))
    return found, invalid


def plan(
    found: Iterable[Candidate],
    *,
    known_entries: Set[bytes],
    known_urls: Mapping[str, int],
    attempts: Mapping[bytes, int] | None = None,
    invalid: int = 0,
) -> Plan:
    """Done in this feed: skip. Link already stored (from another feed, or via another URL
    form): link without fetching. Otherwise: fetch, carrying the count of earlier tries."""
    fetch: list[Candidate] = []
    link: list[tuple[bytes, int]] = []
    skipped = 0
    tries = attempts or {}
    for c in found:
        if c.key in known_entries:
            skipped += 1
        elif c.link in known_urls:
            link.append((c.key, known_urls[c.link]))
        else:
            fetch.append(replace(c, attempts=tries.get(c.key, 0)))
    return Plan(fetch=tuple(fetch), link=tuple(link), skipped=skipped + len(link), invalid=invalid)
