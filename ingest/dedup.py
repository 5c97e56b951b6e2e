"""Decides, for one feed's entries, which pages to fetch, which entries only need linking to an
article already stored, and which to skip. Pure: it returns a plan that the pipeline executes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ingest.normalize import canonical_url, clean_inline, entry_hash, plausible_date
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
    refetch: tuple[Candidate, ...] = ()
    """Entries already stored whose feed entry says it was updated since: fetch the page again
    and update the article in place if its text changed. Each carries the earlier tries at
    its update's page that failed for a passing reason."""
    stamped: tuple[Candidate, ...] = ()
    """Entries already stored whose update time is the feed's stamp, not an edit (`stamps`):
    counted as skipped, their pages are not fetched again; a full-text feed's entries update
    their articles from their own text, which needs no request (one that does is counted as
    updated, not skipped: the pipeline's counts)."""
    skipped: int = 0
    invalid: int = 0


def _updated_since(
    entry_updated: datetime | None, stored: datetime | None, now: datetime | None
) -> bool:
    if now is not None:  # a time too far ahead is none (`plausible_date`), as it is stored
        entry_updated = plausible_date(entry_updated, now)
    return entry_updated is not None and (stored is None or entry_updated > stored)


STAMP_ENTRIES = 3
"""How many known entries of one poll must share an update time for it to be a stamp."""

_SECOND = timedelta(seconds=1)


def _update_time(c: Candidate, now: datetime | None) -> datetime | None:
    """The entry's update time as it would be stored (`plausible_date`, with `now`)."""
    return c.entry.updated_at if now is None else plausible_date(c.entry.updated_at, now)


def stamps(
    found: Iterable[Candidate],
    known_entries: Mapping[bytes, datetime | None],
    now: datetime | None = None,
) -> frozenset[datetime]:
    """Update times of this poll that are a stamp, not an edit, each to the second: a second
    (with the next: a generator that reads its clock entry by entry may cross one) that at
    least `STAMP_ENTRIES` of the feed's known entries (those in `known_entries`) carry, more
    than half of its known entries that carry a time. Some CMSs and feed generators stamp every
    entry's update time with the time the feed was generated (or built), so that at every
    poll every entry looks updated: each page would be fetched again at every poll, forever,
    for nothing. Editors do not edit most of a feed's stories in the same second: real edits
    carry times of their own, which stay updates (a burst of edits at different times, a
    feed's single entry or two). The cost is an edit made in the very second of a stamp (a
    bulk edit of most stories at once), not seen; and an edited entry in a feed that stamps
    every entry alike, whose edit the feed does not tell apart, but for a full-text feed's,
    which updates its article from its own text without a request (`Plan.stamped`; the stamp
    is then recorded, as for any update). Otherwise the stamp is not recorded as these
    entries' update time (nothing was fetched): a later time of one entry's own, earlier than
    the last stamp but later than its stored time, is still an edit (a generator fixed to give
    real times)."""
    return stamp_seconds(
        t for c in found if c.key in known_entries and (t := _update_time(c, now)) is not None
    )


def stamp_seconds(times: Iterable[datetime]) -> frozenset[datetime]:
    """The seconds of `times` that are a stamp: a second (with the next) that at least
    `STAMP_ENTRIES` of the times fall in, more than half of them (`stamps`'s rule, also the
    schedule's for the dates of a feed's entries: `ingest.schedule.publishing_interval`)."""
    truncated = [t.replace(microsecond=0) for t in times]
    seconds = Counter(truncated)
    stamped: set[datetime] = set()
    for second, n in seconds.items():
        n += seconds.get(second + _SECOND, 0)
        if n >= STAMP_ENTRIES and 2 * n > len(truncated):
            stamped |= {second, second + _SECOND}
    return frozenset(second for second in stamped if second in seconds)


def _stamped(c: Candidate, stamped: frozenset[datetime], now: datetime | None) -> bool:
    """Whether the entry's update time is one of this poll's `stamps`."""
    t = _update_time(c, now)
    return t is not None and t.replace(microsecond=0) in stamped


def newer_than_stored(
    found: Iterable[Candidate],
    modified: Mapping[bytes, datetime | None],
    now: datetime | None = None,
) -> tuple[tuple[Candidate, ...], tuple[Candidate, ...]]:
    """Of `plan`'s refetches, those whose update time is later than their stored article's
    modified time (`modified`, by entry key; the publisher's times on both sides), and those
    whose is not: the version stored is as new as their entry (another feed listing the article
    reached that edit first), so fetching the page again could bring nothing to write (an
    article's update time is its entry's, and the store writes no version no newer than the
    stored one): the latter only have their update time recorded. An article without a
    modified time is always older."""
    newer: list[Candidate] = []
    reached: list[Candidate] = []
    for c in found:
        stored, t = modified.get(c.key), _update_time(c, now)
        (reached if stored is not None and t is not None and t <= stored else newer).append(c)
    return tuple(newer), tuple(reached)


def update_times(found: Iterable[Candidate], now: datetime) -> dict[bytes, datetime | None]:
    """Each entry's update time as an article stored for it records it (`plausible_date`), by
    entry key: recorded with an entry linked to an article already stored, which would
    otherwise be taken for updated at the feed's next poll (`plan`'s refetch)."""
    return {c.key: plausible_date(c.entry.updated_at, now) for c in found}


def _story_key(guid: str, link: str) -> bytes:
    """The key of an entry whose guid another story of its feed has (`reused`, `candidates`)."""
    return entry_hash(f"guid:{guid}\nlink:{link}")


def _another_story(title: str | None, other: str | None) -> bool:
    """Whether two entries of one guid and other links are two stories: both have a headline,
    and they differ (without one, the entries are taken for one story, as the store takes
    them: `known_entries`' other_story)."""
    return title is not None and other is not None and title != other


def newest(entries: Sequence[ParsedEntry], limit: int, now: datetime) -> Sequence[ParsedEntry]:
    """The `limit` newest of a document's entries, in document order: those with the latest
    dates (published, else updated, as a backfill dates an entry; a date more than a day
    ahead or a placeholder is none, `plausible_date`), the undated after the dated, each rank
    in document order. A feed that lists its whole history oldest first (a podcast, a blog's
    archive feed) has its new stories at its end: the first entries in document order would
    be the same oldest ones at every poll, and no new story would ever be seen. A document
    of at most `limit` entries is returned whole, and one listed newest first loses the same
    entries as before."""
    if len(entries) <= limit:
        return entries

    def rank(i: int) -> tuple[bool, datetime, int]:
        e = entries[i]
        when = plausible_date(e.published_at or e.updated_at, now)
        return (when is not None, when or now, -i)

    kept = sorted(range(len(entries)), key=rank, reverse=True)[:limit]
    return [entries[i] for i in sorted(kept)]


def candidates(entries: Iterable[ParsedEntry]) -> tuple[list[Candidate], int]:
    """Entries with a usable http(s) link, in feed order, one per key and per link; also returns
    how many entries had no usable link. Of entries sharing a guid, the first is keyed by it; a
    later one that is another story (its link and its headline both other than the first's: a
    recycled post id, the earlier story still listed) is keyed by its guid and link, as
    `reused` keys it when the earlier story was stored at an earlier poll; one that is the same
    story (an item listed twice, a moved link with its headline) is left out."""
    found: list[Candidate] = []
    keys: set[bytes] = set()
    links: set[str] = set()
    firsts: dict[str, tuple[str, str | None]] = {}  # guid -> its first entry's link, title
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
        if link in links:
            continue
        if not entry.guid:
            key = entry_hash("link:" + link)
        elif (first := firsts.get(entry.guid)) is None:
            key = entry_hash("guid:" + entry.guid)
            firsts[entry.guid] = (link, clean_inline(entry.title))
        elif _another_story(first[1], clean_inline(entry.title)):
            key = _story_key(entry.guid, link)  # its link is another (`links`)
        else:
            continue
        if key in keys:
            continue
        keys.add(key)
        links.add(link)
        found.append(Candidate(entry, link, key))
    return found, invalid


def reused(found: Iterable[Candidate], other_story: Set[bytes]) -> list[Candidate]:
    """`found`, an entry whose guid its feed gave earlier to another story keyed apart: the
    entry's article is stored under another title than the entry's now and the entry's link
    does not lead to it (`other_story`, by key, as the store tells). Some CMSs give a new story
    the id of an earlier one (a recycled post id, a template's fixed guid): keyed by its guid
    alone, the new story would be skipped as already done. A story edited keeps its link or its
    headline (an edit of the headline updates it, a move of the link alone is the same story);
    one whose link and headline both change (a headline edit in a CMS that rewrites the slug)
    is stored as a second article, which the near-duplicate check then marks a copy of the
    first. An entry keyed apart is keyed by its guid and link, so that it is known as itself at
    the next poll, and the earlier story stays known under its guid."""
    out: list[Candidate] = []
    for c in found:
        if c.key in other_story and c.entry.guid:
            c = replace(c, key=_story_key(c.entry.guid, c.link))
        out.append(c)
    return out


def plan(
    found: Iterable[Candidate],
    *,
    known_entries: Set[bytes] | Mapping[bytes, datetime | None],
    known_urls: Mapping[str, int | None],
    listed: Set[str] = frozenset(),
    attempts: Mapping[bytes, int] | None = None,
    invalid: int = 0,
    now: datetime | None = None,
) -> Plan:
    """Done in this feed: skip, unless the entry's update time is later than the one stored
    with it (`known_entries` maps each done entry to that time): then refetch. With `now`, an
    update time more than a day ahead of it is none (`plausible_date`): the article stored no
    such time, which would otherwise count as an update at every poll; an update time that
    most of the feed's known entries share is the feed's stamp, not an edit (`stamps`): no
    refetch for it (`Plan.stamped`). Link already stored (from another feed, or via another
    URL form): link without fetching; its article pruned (None in `known_urls`), or one this
    feed lists already under another entry (`listed`, its links): skip. A feed whose guids
    change at every poll for the same stories (a generation count or a session id in them, a
    tracking parameter rotated in a permalink guid) would otherwise have a new entry recorded
    for each of its stories at every poll, forever; the story's link finds it at each poll
    instead, in the same lookup.
    Otherwise: fetch, carrying the count of earlier tries (`attempts`, by key: a refetch's are
    the tries at its update's page, `ArticleStore.defer_updates`)."""
    fetch: list[Candidate] = []
    link: list[tuple[bytes, int]] = []
    refetch: list[Candidate] = []
    stamped_entries: list[Candidate] = []
    skipped = 0
    tries = attempts or {}
    found = list(found)
    stamped = stamps(found, known_entries, now) if isinstance(known_entries, Mapping) else None
    for c in found:
        if c.key in known_entries:
            if isinstance(known_entries, Mapping) and _updated_since(
                c.entry.updated_at, known_entries[c.key], now
            ):
                if stamped and _stamped(c, stamped, now):
                    stamped_entries.append(c)
                    skipped += 1
                else:
                    refetch.append(replace(c, attempts=tries.get(c.key, 0)))
            else:
                skipped += 1
        elif c.link in known_urls:
            if (article_id := known_urls[c.link]) is None or c.link in listed:
                skipped += 1
            else:
                link.append((c.key, article_id))
        else:
            fetch.append(replace(c, attempts=tries.get(c.key, 0)))
    return Plan(
        fetch=tuple(fetch),
        link=tuple(link),
        refetch=tuple(refetch),
        stamped=tuple(stamped_entries),
        skipped=skipped + len(link),
        invalid=invalid,
    )
