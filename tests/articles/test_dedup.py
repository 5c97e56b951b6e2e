"""ingest.dedup: which entries of one feed are usable candidates, and the plan for them
(skip what this feed already gave, link what is already stored, fetch the rest)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest.dedup import Candidate, candidates, newer_than_stored, plan, reused, stamps
from ingest.normalize import canonical_url
from ingest.types import ParsedEntry

A = "https://example.com/news/a"
B = "https://example.com/news/b"
C = "https://example.com/news/c"


def _entry(link: str | None, guid: str | None = None) -> ParsedEntry:
    return ParsedEntry(guid=guid, link=link, title=f"title of {link}")


# --- candidates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "links", "invalid"),
    [
        pytest.param([_entry(A), _entry(B)], [A, B], 0, id="all-valid"),
        pytest.param([_entry(None, "g1"), _entry(A)], [A], 1, id="no-link"),
        pytest.param([_entry("", "g1"), _entry(A)], [A], 1, id="empty-link"),
        pytest.param([_entry("   ", "g1")], [], 1, id="blank-link"),
        pytest.param([_entry("javascript:void(0)"), _entry(A)], [A], 1, id="javascript-link"),
        pytest.param([_entry("mailto:desk@example.com")], [], 1, id="mailto-link"),
        pytest.param([_entry("/news/relative")], [], 1, id="relative-link"),
        pytest.param(
            [_entry(None), _entry("javascript:x"), _entry("ftp://example.com/f")],
            [],
            3,
            id="every-invalid-counted",
        ),
        pytest.param([_entry(A), _entry(A), _entry(B)], [A, B], 0, id="duplicate-link"),
        pytest.param(
            [_entry(A, "g1"), replace(_entry(B, "g1"), title="title of " + A), _entry(C, "g2")],
            [A, C],
            0,
            id="duplicate-guid-same-title",
        ),
        pytest.param(
            [_entry(A, "g1"), _entry(B, "g1"), _entry(C, "g2")],
            [A, B, C],
            0,
            id="duplicate-guid-another-story",
        ),
        pytest.param(
            [_entry(A, "g1"), _entry(A, "g2")],
            [A],
            0,
            id="same-link-other-guid",
        ),
        pytest.param(
            [
                _entry(A + "?utm_source=rss&utm_medium=feed"),
                _entry(A + "?fbclid=123"),
                _entry(A + "#comments"),
                _entry("HTTPS://EXAMPLE.COM:443/news/a"),
            ],
            [A],
            0,
            id="tracking-variants-collapse",
        ),
        pytest.param([_entry(C), _entry(A), _entry(B)], [C, A, B], 0, id="feed-order-kept"),
    ],
)
def test_candidates(entries: list[ParsedEntry], links: list[str], invalid: int) -> None:
    """Entries without a usable http(s) link are counted invalid; duplicate links (in any URL
    form) and duplicate guids are kept once, first occurrence first, unless the later entry of
    a guid is another story (its link and its title both another)."""
    found, bad = candidates(entries)
    assert [c.link for c in found] == links
    assert bad == invalid


def test_candidates_keep_the_first_entry_of_duplicates() -> None:
    """Of two entries with one link, the first one (and its guid) is the candidate."""
    first, second = _entry(A + "?utm_source=x", "first"), _entry(A, "second")
    found, _ = candidates([first, second])
    assert [c.entry for c in found] == [first]


def test_a_later_story_under_an_earlier_one_s_guid_is_keyed_by_its_guid_and_link() -> None:
    """Two stories of one document sharing a guid (its link and title both another): the first
    keeps the guid's key, the later one is keyed by its guid and link, as `reused` keys an
    entry whose guid went to another story at an earlier poll; the same story listed twice,
    or under another link with its title (a moved link), is one entry."""
    first, later = _entry(A, "g1"), _entry(B, "g1")
    found, _ = candidates([first, later, _entry(A, "g1")])
    assert [(c.entry, c.link) for c in found] == [(first, A), (later, B)]
    (alone,), _ = candidates([first])
    assert found[0].key == alone.key
    assert [c.key for c in reused(found[1:], {found[1].key})] == [found[1].key]
    (rekeyed,) = reused(candidates([later])[0], {alone.key})
    assert found[1].key == rekeyed.key
    moved = replace(_entry(B, "g1"), title=first.title)
    assert [c.entry for c in candidates([first, moved])[0]] == [first]


def test_candidate_link_is_canonical() -> None:
    """A candidate's link is the canonical form of the entry link: what is fetched and looked
    up."""
    raw = "HTTP://Example.com:80/news/a?id=7&utm_campaign=spring#top"
    (found,), _ = candidates([_entry(raw)])
    assert found.link == canonical_url(raw)


@pytest.mark.parametrize(
    ("one", "other", "same_key"),
    [
        pytest.param(_entry(A, "g1"), _entry(B, "g1"), True, id="guid-decides"),
        pytest.param(_entry(A, "g1"), _entry(A, "g2"), False, id="other-guid-same-link"),
        pytest.param(_entry(A), _entry(A + "?utm_source=x"), True, id="no-guid-link-decides"),
        pytest.param(_entry(A), _entry(B), False, id="no-guid-other-link"),
    ],
)
def test_candidate_key_identity(one: ParsedEntry, other: ParsedEntry, same_key: bool) -> None:
    """The key is the entry's guid, or its canonical link when it has none."""
    (c1,), _ = candidates([one])
    (c2,), _ = candidates([other])
    assert (c1.key == c2.key) is same_key


# --- plan ------------------------------------------------------------------------------------


def _three() -> list[Candidate]:
    found, _ = candidates([_entry(A, "ga"), _entry(B, "gb"), _entry(C, "gc")])
    return found


def test_plan_all_new_are_fetched() -> None:
    """With nothing known, every candidate is fetched, in order."""
    found = _three()
    p = plan(found, known_entries=set(), known_urls={})
    assert p.fetch == tuple(found)
    assert p.link == ()
    assert p.skipped == 0


def test_plan_known_entry_is_skipped() -> None:
    """An entry this feed already gave is skipped, not fetched nor linked."""
    a, b, c = _three()
    p = plan([a, b, c], known_entries={b.key}, known_urls={})
    assert p.fetch == (a, c)
    assert p.link == ()
    assert p.skipped == 1


def test_plan_known_url_is_linked_with_its_article_id() -> None:
    """An entry new to this feed whose link is already stored is linked to that article."""
    a, b, c = _three()
    p = plan([a, b, c], known_entries=set(), known_urls={c.link: 42})
    assert p.fetch == (a, b)
    assert p.link == ((c.key, 42),)


def test_plan_pruned_url_is_skipped_neither_fetched_nor_linked() -> None:
    """A link whose article was pruned (None in known_urls) is skipped: not fetched again,
    and not linked to an article that is gone."""
    (a, b), _ = candidates([_entry(A), _entry(B)])
    p = plan([a, b], known_entries=set(), known_urls={a.link: None})
    assert [c.link for c in p.fetch] == [b.link]
    assert p.link == ()
    assert p.skipped == 1


def test_plan_skips_a_new_entry_of_an_article_the_feed_lists_already() -> None:
    """An entry new to the feed whose link leads to an article the feed lists already, under
    another entry (a guid changed since), is skipped: neither fetched nor linked again; one
    leading to another feed's article is still linked."""
    a, b, c = _three()
    p = plan([a, b, c], known_entries=set(), known_urls={b.link: 7, c.link: 8}, listed={b.link})
    assert p.fetch == (a,)
    assert p.link == ((c.key, 8),)
    assert p.skipped == 2


def test_plan_known_entry_wins_over_known_url() -> None:
    """An entry known to the feed is skipped even if its URL is stored: nothing to link again."""
    a, b, c = _three()
    p = plan([a, b, c], known_entries={a.key}, known_urls={a.link: 7})
    assert p.fetch == (b, c)
    assert p.link == ()


def test_plan_counts_linked_as_skipped_and_passes_invalid() -> None:
    """Linked entries need no fetch and count as skipped; the invalid count is carried over."""
    a, b, c = _three()
    p = plan([a, b, c], known_entries={a.key}, known_urls={b.link: 9}, invalid=4)
    assert p.fetch == (c,)
    assert p.skipped == 2
    assert p.invalid == 4


def test_plan_partitions_candidates() -> None:
    """Every candidate lands in exactly one of fetch, link or skip."""
    a, b, c = _three()
    p = plan([a, b, c], known_entries={a.key}, known_urls={b.link: 1})
    fetched = {x.key for x in p.fetch}
    linked = {key for key, _ in p.link}
    assert fetched.isdisjoint(linked)
    assert len(fetched) + len(linked) + 1 == 3
    assert a.key not in fetched | linked


NOW = datetime(2025, 8, 12, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("updated", "stored", "refetched"),
    [
        pytest.param(NOW, NOW - timedelta(hours=1), True, id="moved-forward"),
        pytest.param(NOW, NOW, False, id="same"),
        pytest.param(NOW + timedelta(days=1), None, True, id="a-day-ahead"),
        pytest.param(datetime(9999, 12, 31, tzinfo=UTC), None, False, id="year-9999"),
        pytest.param(NOW + timedelta(days=2), NOW, False, id="two-days-ahead"),
    ],
)
def test_plan_refetches_an_entry_updated_since_unless_the_time_is_too_far_ahead(
    updated: datetime, stored: datetime | None, refetched: bool
) -> None:
    """A done entry whose update time is later than the stored one is fetched again; one more
    than a day ahead of now is no update time (the article stored none), not an update at
    every poll."""
    (entry,), _ = candidates([ParsedEntry(guid="g", link=A, title="t", updated_at=updated)])
    p = plan([entry], known_entries={entry.key: stored}, known_urls={}, now=NOW)
    assert (p.refetch == (entry,)) is refetched
    assert p.skipped == (0 if refetched else 1)


def _timed(times: list[datetime | None]) -> list[Candidate]:
    found, _ = candidates(
        [
            ParsedEntry(guid=f"g{n}", link=f"{A}{n}", title="t", updated_at=t)
            for n, t in enumerate(times)
        ]
    )
    return found


STAMP = NOW - timedelta(minutes=1)
BEFORE = NOW - timedelta(days=1)


@pytest.mark.parametrize(
    ("times", "refetched"),
    [
        pytest.param([STAMP] * 4, [], id="every-entry-stamped"),
        pytest.param([STAMP] * 3 + [None], [], id="every-timed-entry-stamped"),
        pytest.param(
            [STAMP, STAMP - timedelta(seconds=30), STAMP, STAMP],
            [1],
            id="an-edit-of-its-own-among-stamps",
        ),
        pytest.param(
            [STAMP - timedelta(minutes=n) for n in range(3)] + [BEFORE] * 3,
            [0, 1, 2],
            id="a-burst-of-edits-at-different-times",
        ),
        pytest.param(
            [STAMP + timedelta(milliseconds=ms) for ms in (100, 500, 900, 999)],
            [],
            id="stamped-to-the-millisecond-entry-by-entry",
        ),
        pytest.param(
            [STAMP, STAMP, STAMP + timedelta(seconds=1), STAMP + timedelta(seconds=1)],
            [],
            id="stamped-entry-by-entry-across-a-second",
        ),
        pytest.param([STAMP], [0], id="a-single-entry"),
        pytest.param([STAMP, STAMP], [0, 1], id="two-entries-at-one-time"),
        pytest.param([STAMP] * 3 + [BEFORE] * 3, [0, 1, 2], id="half-at-one-time"),
    ],
)
def test_plan_does_not_take_a_time_most_known_entries_share_for_their_edits(
    times: list[datetime | None], refetched: list[int]
) -> None:
    """An update time that at least three known entries, and most of those that carry a time,
    share, to the second (or across one), is the feed's stamp (its generation time given to
    every entry), not an edit: those entries are not fetched again. Edits at times of their
    own are, however many; so is the update of a feed's single entry, or of two."""
    found = _timed(times)
    stored = {c.key: BEFORE for c in found}
    p = plan(found, known_entries=stored, known_urls={}, now=NOW)
    skipped_times = {t for i, t in enumerate(times) if i not in refetched}
    assert p.refetch == tuple(found[i] for i in refetched)
    assert p.skipped == len(found) - len(refetched)
    assert p.stamped == tuple(
        c for i, c in enumerate(found) if i not in refetched and times[i] not in (None, BEFORE)
    )
    assert stamps(found, stored, NOW) == {
        t.replace(microsecond=0) for t in skipped_times if t not in (None, BEFORE)
    }


def test_a_stamp_is_judged_among_known_entries_only() -> None:
    """New entries (fetched anyway) do not make a stamp of a time two known entries share."""
    found = _timed([STAMP] * 5)
    stored = {c.key: BEFORE for c in found[:2]}
    p = plan(found, known_entries=stored, known_urls={}, now=NOW)
    assert p.refetch == tuple(found[:2])
    assert p.fetch == tuple(found[2:])


@pytest.mark.parametrize(
    ("stored", "newer"),
    [
        pytest.param(NOW - timedelta(hours=1), True, id="stored-older"),
        pytest.param(NOW, False, id="stored-as-new"),
        pytest.param(NOW + timedelta(minutes=1), False, id="stored-newer"),
        pytest.param(None, True, id="stored-without-a-modified-time"),
    ],
)
def test_a_refetch_whose_article_is_stored_as_new_as_its_entry_is_not_made(
    stored: datetime | None, newer: bool
) -> None:
    """An entry updated since its feed last saw it, whose article another feed already updated
    to a version as new (the stored modified time no earlier than the entry's update time), is
    not fetched again: its page could bring nothing the store would write."""
    (entry,), _ = candidates([ParsedEntry(guid="g", link=A, title="t", updated_at=NOW)])
    assert newer_than_stored([entry], {entry.key: stored}, NOW) == (
        ((entry,), ()) if newer else ((), (entry,))
    )
    assert newer_than_stored([entry], {}, NOW) == ((entry,), ())


# --- reused ----------------------------------------------------------------------------------


def test_an_entry_whose_guid_went_to_another_story_is_keyed_by_its_guid_and_link() -> None:
    """Only the entries the store found under another story (`other_story`) and that have a
    guid are keyed apart, by guid and link: stable from poll to poll, and apart from every
    other entry of the feed; the others keep their keys."""
    found, _ = candidates([_entry(A, "g1"), _entry(B, "g2"), _entry(C)])
    others = {c.key for c in found}
    again, _ = candidates([_entry(A, "g1"), _entry(B, "g2"), _entry(C)])
    rekeyed = reused(found, others)
    assert [c.link for c in rekeyed] == [A, B, C]
    assert rekeyed[0].key not in others
    assert rekeyed[1].key not in others
    assert rekeyed[0].key != rekeyed[1].key
    assert rekeyed[2].key == found[2].key  # keyed by its link already
    assert [c.key for c in reused(again, others)] == [c.key for c in rekeyed]
    assert reused(found, set()) == found
