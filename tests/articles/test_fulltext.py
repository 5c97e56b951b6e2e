"""ingest.fulltext: when a feed's own entries are trusted as the article, when a page is still
fetched, and how comparisons move the state."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ingest import fulltext
from ingest.article import build_article
from ingest.fulltext import (
    AT_END,
    CLEAN,
    CONFIRM,
    ELSEWHERE,
    HOLDS,
    MIN_WORDS,
    MISSES,
    MOST,
    RECHECK_EVERY,
    SHRUNK,
    article_words,
    capped,
    compare,
    dominates,
    elsewhere,
    ends_alike,
    entry_text,
    follows,
    held_by_page,
    looks_cut,
    measure,
    observe,
    other_page,
    own_text,
    pile_up,
    probe,
    shrunk,
    stands,
    stands_unchecked,
    still_due,
    until_check,
    update_words,
    wants_pages,
    with_caps,
)
from ingest.neardup import fingerprint
from ingest.normalize import content_hash, detect_language
from ingest.types import Extracted, FullText, OwnText, PageMetadata, ParsedEntry, TextMode

STORY = " ".join(
    f"Paragraph {n} of the story tells how the harbour board voted on plan {n} after a long night."
    for n in range(12)
)
LONG = len(STORY.split())


def test_a_teaser_is_never_the_article() -> None:
    same, holds, _ = compare("The harbour board voted.", STORY)
    assert not same
    assert holds == 0.0


def test_the_same_text_is_the_article() -> None:
    same, holds, clean = compare(STORY, STORY)
    assert same
    assert holds == clean == 1.0


def test_a_feed_text_missing_half_the_story_is_not_the_article() -> None:
    half = STORY[: len(STORY) // 2]
    same, holds, _ = compare(half, STORY)
    assert not same
    assert holds < 0.6


def test_a_feed_text_padded_with_other_text_is_not_clean() -> None:
    padded = STORY + " " + " ".join(f"Related story number {n} about a bakery." for n in range(60))
    same, holds, clean = compare(padded, STORY)
    assert holds == 1.0
    assert clean < 0.8
    assert not same


def test_a_paragraph_the_extraction_missed_counts_where_the_page_shows_it() -> None:
    # The page's extraction lost the last three paragraphs; the page shows them elsewhere (a
    # second text block), so the feed text holds nothing the page does not.
    kept = STORY.rsplit("Paragraph 9", 1)[0]
    page = STORY + " Menu Home World Sport Contact us."
    same, _, clean = compare(STORY, kept)
    assert not same
    assert clean < 0.9
    on_page = held_by_page(STORY, page)
    assert on_page == 1.0
    same, holds, clean = compare(STORY, kept, on_page)
    assert same
    assert holds == 1.0
    assert clean == 1.0


def test_the_whole_page_does_not_vouch_for_a_feed_text_the_extraction_barely_holds() -> None:
    # Most of the feed text is elsewhere on the page (a list of other stories, say): the
    # extraction holding less than half of it is not a missed paragraph.
    others = " ".join(f"Other story {n} is about a bakery and its new ovens." for n in range(60))
    feed_text = STORY + " " + others
    same, _, clean = compare(feed_text, STORY, held_by_page(feed_text, STORY + " " + others))
    assert clean < 0.5
    assert not same


def test_an_excerpt_counts_as_no_article() -> None:
    for cut in (
        STORY + " [...]",
        STORY + "…",
        STORY + "\n\nContinue reading “The harbour vote” →",
        STORY + "\n\nLire la suite",
    ):
        assert looks_cut(cut), cut
        assert article_words(cut) == 0
    assert not looks_cut(STORY)
    assert not looks_cut(STORY + "\n\nHe said more would follow. Read the minutes online.")
    assert article_words(STORY) == LONG


def test_an_excerpt_whose_link_to_the_page_follows_its_ellipsis_counts_as_no_article() -> None:
    """The link an excerpt ends with is often inside its last paragraph ("… <a>Read more</a>",
    WordPress's "&hellip; Continue reading"): its text ends with the invitation on the line of
    the ellipsis."""
    for cut in (
        STORY + " … Read more",
        STORY + "… Continue reading “The harbour vote” →",
        STORY + " [...] Read more »",
        STORY + " […] [Weiterlesen]",
    ):
        assert looks_cut(cut), cut
        assert article_words(cut) == 0
    assert not looks_cut(STORY + " He said more would follow… and read more of it tonight.")


def test_an_invitation_naming_a_long_headline_counts_as_no_article() -> None:
    """WordPress's invitation names the story for screen readers ("Continue reading “…”"),
    after the ellipsis or on a line of its own: however long the headline, the text is an
    excerpt. A last line that only opens with those words, and goes on, is the story's."""
    headline = (
        "Council approves the budget for the footbridge over the canal after residents of "
        "the district waited twenty years for it"
    )
    for cut in (
        STORY + f"… Continue reading “{headline}”",
        STORY + f"\n\nContinue reading “{headline}” →",
        STORY + f'\n\nContinue reading "{headline}"',
    ):
        assert looks_cut(cut), cut
        assert article_words(cut) == 0
    told = f"Continue reading “{headline}”, the mayor wrote, and the council did so at length."
    assert not looks_cut(STORY + "\n\n" + told)


class _Searched:
    """A compiled pattern that keeps the length of every string it is asked to search."""

    def __init__(self, pattern: re.Pattern[str], lengths: list[int]) -> None:
        self._pattern = pattern
        self._lengths = lengths

    def search(self, text: str) -> re.Match[str] | None:
        self._lengths.append(len(text))
        return self._pattern.search(text)

    def match(self, text: str) -> re.Match[str] | None:
        self._lengths.append(len(text))
        return self._pattern.match(text)


def test_a_line_of_ellipses_is_searched_in_its_tail_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile entry's text of one long line of ellipses: told from an excerpt by searching
    the line's last _TAIL characters, not searched for an invitation after each ellipsis
    (looks_cut runs on the event loop). The invitation pattern is anchored at the line's start
    and reads at most a few characters and one invitation from there."""
    searched: list[int] = []
    matched: list[int] = []
    monkeypatch.setattr(fulltext, "_CUT_END", _Searched(fulltext._CUT_END, searched))
    monkeypatch.setattr(fulltext, "_INVITED", _Searched(fulltext._INVITED, matched))
    assert not looks_cut("... " * 20_000 + "x")
    assert looks_cut("… " * 20_000 + "Read more")
    assert searched
    assert max(searched) <= fulltext._TAIL
    assert len(matched) <= 2


def test_the_shortest_article_sets_the_bar_for_rechecks() -> None:
    state = observe(FullText(), [(True, 0.98, 0.97, LONG, False)] * CONFIRM)
    assert state.words == LONG
    shorter = observe(state, [(True, 0.98, 0.97, LONG // 2, False)])
    assert shorter.words == LONG // 2
    # A longer article raises it by an eighth of the difference, a mismatch not at all.
    assert observe(shorter, [(True, 0.98, 0.97, LONG, False)]).words == LONG // 2 + (LONG // 2) // 8
    assert observe(shorter, [(False, 0.3, 0.9, 20, False)]).words == LONG // 2
    wants, _ = wants_pages(shorter, "auto", [LONG // 2, int(SHRUNK * LONG // 2) - 1])
    assert wants == [False, True]


def test_one_brief_does_not_lower_the_bar_for_good() -> None:
    """After a 60-word brief, summaries of 200 words would slip under a third of the bar for
    ever; articles of the usual length bring it back up."""
    state = observe(
        FullText(), [(True, 0.98, 0.97, 900, False)] * CONFIRM + [(True, 0.98, 0.97, 60, False)]
    )
    assert state.words == 60
    wants, _ = wants_pages(state, "auto", [200])
    assert wants == [False]
    for _ in range(12):
        state = observe(state, [(True, 0.98, 0.97, 900, False)])
    assert state.words > 3 * 200
    wants, _ = wants_pages(state, "auto", [200])
    assert wants == [True]


def test_an_excerpt_is_not_counted_as_the_article_only_in_auto_mode() -> None:
    excerpt = STORY + " [...]"
    assert article_words(excerpt) == 0
    assert article_words(excerpt, "auto") == 0
    assert article_words(excerpt, "feed") == LONG
    wants, _ = wants_pages(FullText(on=True, words=LONG), "feed", [article_words(excerpt, "feed")])
    assert wants == [False]


def test_an_update_that_loses_most_of_its_stored_article_is_read_from_its_page() -> None:
    """An updated entry's text stands for the new version unless it keeps under half of the
    stored text (then its page decides); with nothing stored, or in `feed` mode, as it is."""
    edit = STORY.rsplit(" Paragraph", 2)[0] + " Correction: the vote was on Tuesday."
    teaser = STORY[: len(STORY) // 3]
    n_edit, n_teaser = len(edit.split()), len(teaser.split())
    assert update_words(edit, n_edit, len(STORY)) == n_edit
    assert update_words(teaser, n_teaser, len(STORY)) == 0
    assert update_words(teaser, n_teaser, None) == n_teaser
    assert update_words(teaser, n_teaser, 0) == n_teaser
    assert update_words(teaser, n_teaser, len(STORY), "feed") == n_teaser
    assert update_words(STORY + " [...]", LONG, len(STORY)) == 0
    wants, _ = wants_pages(FullText(on=True, words=10), "auto", [0, n_edit])
    assert wants == [True, False]


def test_confirmed_after_several_matches_in_a_row() -> None:
    match = (True, 0.98, 0.97, LONG, False)
    state = observe(FullText(), [match] * (CONFIRM - 1))
    assert not state.on
    assert state.streak == CONFIRM - 1
    state = observe(state, [match])
    assert state.on
    assert state.evidence is not None
    assert "the article" in state.evidence


def test_two_mismatches_in_a_row_switch_back() -> None:
    on = FullText(on=True, streak=5, words=LONG)
    once = observe(on, [(False, 0.4, 0.9, 40, False)])
    assert once.on  # one miss may be the extraction's fault
    assert once.streak == -1
    twice = observe(once, [(False, 0.4, 0.9, 40, False)])
    assert not twice.on
    assert twice.words == 0  # what it had shown before counts no more
    # A match in between starts the count again.
    assert observe(once, [(True, 0.99, 0.99, LONG, False), (False, 0.4, 0.9, 40, False)]).on


def test_a_text_that_stands_is_no_evidence_until_the_feed_is_proven() -> None:
    """A failed comparison whose text stands for the article (clean, holding most of the
    extraction) neither confirms nor counts against a feed being probed; in a proven feed it
    is a miss, and two in a row switch the feed back (a feed turned to excerpts of three
    quarters of the article)."""
    match, stood = (True, 0.98, 0.97, LONG, False), (False, 0.79, 1.0, LONG, True)
    probed = observe(FullText(), [match, stood, match])
    assert (probed.on, probed.streak) == (False, 2)
    assert probe(probed, "auto", [LONG] * 3) == [0]
    assert observe(probed, [match]).on
    assert observe(FullText(), [stood] * 10) == FullText()
    on = FullText(on=True, streak=CONFIRM, words=LONG)
    once = observe(on, [stood])
    assert (once.on, once.streak) == (True, -1)
    assert not observe(once, [stood]).on


def test_short_entries_of_a_proven_feed_are_checked_shortest_first() -> None:
    """Of the entries under SHRUNK of the feed's shortest article (teasers aside, which are
    always fetched), the shortest alone is checked first: one that proves to be the article
    lowers the bar under the others."""
    state = FullText(on=True, streak=CONFIRM, words=900)
    counts = [900, 200, 0, 120, 280, 40, 1200]
    assert shrunk(state, "auto", counts) == [3]
    after = observe(state, [(True, 0.98, 0.97, 120, False)])
    assert after.words == 120
    assert shrunk(after, "auto", [c for i, c in enumerate(counts) if i != 3]) == []
    assert shrunk(FullText(), "auto", counts) == []
    assert shrunk(state, "feed", counts) == []
    assert shrunk(state, "auto", [900, 600]) == []


SMALLINT = range(-32768, 32768)
"""What the feed's row holds of its streak (`full_text_streak smallint`, sql/0012)."""


def test_a_streak_stays_within_what_the_feed_s_row_holds() -> None:
    """A feed whose entries are never the article has each one compared, poll after poll (a
    year of a busy feed's entries is tens of thousands of misses in a row), and a proven feed
    matches at each re-check for as long as it lives: its streak stays within what its row
    holds, and means what it meant (no probing after misses; three matches prove the feed)."""
    miss, match = (False, 0.4, 0.5, LONG, False), (True, 0.98, 0.97, LONG, False)
    state = FullText()
    for _ in range(400):  # 100 entries a poll
        state = observe(state, [miss] * 100)
    assert state.streak in SMALLINT
    assert not state.on
    assert probe(state, "auto", [LONG] * 3) == []
    assert observe(state, [match] * (CONFIRM - 1)).on is False
    state = observe(state, [match] * CONFIRM)
    assert state.on
    for _ in range(400):
        state = observe(state, [match] * 100)
    assert state.streak in SMALLINT
    assert observe(state, [miss]).streak == -1


def test_the_probes_are_the_two_longest_entries_and_the_shortest() -> None:
    """A feed's probes are its two longest entries with text of their own and its shortest
    (teasers and excerpts aside), in feed order; a round that needs fewer takes the longest
    first."""
    counts = [900, 1200, 700, 0, 120, 40, 300, 1000]
    assert probe(FullText(), "auto", counts) == [1, 4, 7]
    assert probe(FullText(streak=1, evidence="x"), "auto", counts) == [1, 7]
    assert probe(FullText(streak=2, evidence="x"), "auto", counts) == [1]
    assert probe(FullText(), "auto", [LONG, LONG, LONG, LONG]) == [0, 1, 2]
    assert probe(FullText(), "auto", [300, 120]) == [0, 1]
    assert probe(FullText(), "auto", [0, 40]) == []


def test_a_feed_that_cuts_its_long_articles_is_not_proven_on_its_short_ones() -> None:
    """A feed that cuts its articles at 400 words without marking the cut: its whole short
    entries match their pages, its cut ones do not. Its longest entries are among the first
    probes whatever their place in the feed, so it is not proven, where its first entries in
    feed order (three whole ones) or its shortest beside them would have proven it."""
    counts = [300, 320, 350, *[400] * 6, 120]
    whole = [True, True, True, *[False] * 6, True]
    state, rest = FullText(), list(range(len(counts)))
    while first := probe(state, "auto", [counts[i] for i in rest]):
        picked = [rest[j] for j in first]
        state = observe(
            state, [(whole[i], 0.98 if whole[i] else 0.35, 0.97, counts[i], False) for i in picked]
        )
        rest = [i for i in rest if i not in picked]
    assert not state.on
    assert state.streak == -MISSES


def test_probing_stops_after_two_misses_in_a_row() -> None:
    counts = [LONG] * 6
    assert probe(FullText(), "auto", counts) == [0, 1, 2]
    assert probe(FullText(streak=2, evidence="x"), "auto", counts) == [0]
    assert probe(FullText(streak=-1, evidence="x"), "auto", counts) == [0, 1, 2]
    assert probe(FullText(streak=-2, evidence="x"), "auto", counts) == []
    assert probe(FullText(on=True), "auto", counts) == []


def test_pages_are_fetched_until_confirmed() -> None:
    wants, _ = wants_pages(FullText(), "auto", [LONG] * 4)
    assert wants == [True] * 4


def test_full_text_mode_fetches_one_in_twenty_and_shrunk_entries() -> None:
    state = FullText(on=True, streak=CONFIRM, words=LONG)
    wants, after = wants_pages(state, "auto", [LONG] * (2 * RECHECK_EVERY))
    assert sum(wants) == 2
    assert wants[RECHECK_EVERY - 1]
    assert after.since_check == 0
    wants, _ = wants_pages(state, "auto", [LONG, MIN_WORDS + 1, LONG])
    assert wants == [False, True, False]  # far shorter than its shortest article


def test_the_count_since_the_last_check_carries_over_polls() -> None:
    state = FullText(on=True, streak=CONFIRM, words=LONG, since_check=RECHECK_EVERY - 2)
    wants, after = wants_pages(state, "auto", [LONG, LONG, LONG])
    assert wants == [False, True, False]
    assert after.since_check == 1


def test_a_re_check_that_matches_keeps_the_count_of_entries_stored_after_it() -> None:
    state = FullText(on=True, streak=CONFIRM, words=LONG)
    wants, planned = wants_pages(state, "auto", [LONG] * (RECHECK_EVERY + 5))
    assert wants.index(True) == RECHECK_EVERY - 1
    assert planned.since_check == 5
    assert observe(planned, [(True, 0.98, 0.97, LONG, False)]).since_check == 5


def test_a_failed_re_check_has_the_feed_s_next_entry_compared() -> None:
    """The feed stays full-text after one miss, and its next entry is compared too (the poll's
    entries after the re-check are planned once it is in: `until_check`); a match then makes
    the wait for the next re-check a full RECHECK_EVERY again, a second miss switches the feed
    back."""
    state = FullText(on=True, streak=CONFIRM, words=LONG)
    _, planned = wants_pages(state, "auto", [LONG] * (RECHECK_EVERY + 5))
    missed = observe(planned, [(False, 0.4, 0.9, LONG, False)])
    assert missed.on
    assert missed.streak == -1
    wants, after = wants_pages(missed, "auto", [LONG] * 3)
    assert wants == [True, False, False]
    assert after.since_check == 2
    matched = observe(after, [(True, 0.98, 0.97, LONG, False)])
    assert matched.on
    assert matched.streak == 1
    assert wants_pages(matched, "auto", [LONG] * (RECHECK_EVERY - 3))[0] == [False] * (
        RECHECK_EVERY - 3
    )
    assert not observe(after, [(False, 0.4, 0.9, LONG, False)]).on


def test_a_failed_re_check_settled_in_the_same_poll_leaves_no_comparison_due() -> None:
    """The re-check fails and a much shorter entry later in the same poll is compared and
    matches: that match settles the miss, so the entries stored from the feed after it count
    towards the next re-check as before, and the next poll's first entry is not compared."""
    state = FullText(on=True, streak=CONFIRM, words=LONG, since_check=RECHECK_EVERY - 1)
    counts = [LONG, LONG, MIN_WORDS + 1, *[LONG] * 5]
    wants, planned = wants_pages(state, "auto", counts)
    assert wants == [True, False, True, *[False] * 5]
    assert planned.since_check == 5
    settled = observe(
        planned, [(False, 0.4, 0.9, LONG, False), (True, 0.98, 0.97, MIN_WORDS + 1, False)]
    )
    assert settled.on
    assert settled.streak == 1
    assert settled.since_check == 5
    assert wants_pages(settled, "auto", [LONG])[0] == [False]
    # A miss after the match is the one the next entry settles.
    missed = observe(
        planned, [(True, 0.98, 0.97, MIN_WORDS + 1, False), (False, 0.4, 0.9, LONG, False)]
    )
    assert missed.since_check == RECHECK_EVERY - 1


def test_a_teaser_s_page_is_no_re_check() -> None:
    state = FullText(on=True, streak=CONFIRM, words=LONG, since_check=RECHECK_EVERY - 2)
    wants, after = wants_pages(state, "auto", [LONG, 3, 0, LONG, LONG])
    assert wants == [False, True, True, True, False]
    assert after.since_check == 1


@pytest.mark.parametrize(
    ("state", "mode", "counts", "planned"),
    [
        # The re-check is the third entry: the ones after it wait for its comparison.
        (FullText(on=True, words=LONG, since_check=RECHECK_EVERY - 3), "auto", [LONG] * 6, 3),
        # A teaser's page is fetched, but compared with nothing: no reason to wait.
        (FullText(on=True, words=LONG, since_check=RECHECK_EVERY - 2), "auto", [3, LONG, LONG], 3),
        (FullText(on=True, words=LONG, since_check=RECHECK_EVERY - 1), "auto", [3, LONG, LONG], 2),
        # A comparison due (after a miss): the first entry with text of its own.
        (FullText(on=True, words=LONG, since_check=RECHECK_EVERY - 1), "auto", [LONG] * 4, 1),
        # No re-check among them, a feed not proven (every page is fetched), the operator's modes.
        (FullText(on=True, words=LONG), "auto", [LONG] * 6, 6),
        (FullText(streak=1, since_check=RECHECK_EVERY - 1), "auto", [LONG] * 6, 6),
        (FullText(on=True, words=LONG, since_check=RECHECK_EVERY - 1), "feed", [LONG] * 6, 6),
        (FullText(on=True, words=LONG, since_check=RECHECK_EVERY - 1), "page", [LONG] * 6, 6),
        (FullText(on=True, words=LONG), "auto", [], 0),
    ],
)
def test_entries_after_a_re_check_are_planned_once_it_is_in(
    state: FullText, mode: TextMode, counts: list[int], planned: int
) -> None:
    """How many of a poll's entries are planned before the ones after them: up to a proven
    feed's next comparison, whose outcome decides whether those after it are trusted."""
    assert until_check(state, mode, counts) == planned


def test_operator_modes() -> None:
    on = FullText(on=True, words=LONG)
    assert wants_pages(on, "page", [LONG, LONG])[0] == [True, True]
    assert wants_pages(FullText(), "feed", [LONG, 3])[0] == [False, True]  # a teaser still fetches


def test_entry_text_is_the_content_never_the_summary() -> None:
    entry = ParsedEntry(guid=None, link="https://x.example/a", summary="A teaser.")
    assert entry_text(entry) == ""
    full = ParsedEntry(guid=None, link="https://x.example/a", content="<p>Body</p> text")
    assert "Body" in entry_text(full)


def test_an_article_that_ends_in_an_ellipsis_ends_where_its_page_does() -> None:
    ending = STORY + " And then…"
    assert looks_cut(ending)
    assert ends_alike(ending, "Home News " + STORY + " And then… Photo: the harbour board.")
    # An excerpt's page goes on with the story; one cut inside a word never ends in it.
    half = STORY[: len(STORY) // 2].rsplit(" ", 1)[0]
    assert not ends_alike(half + " …", STORY)
    assert not ends_alike(STORY[: len(STORY) // 2] + "…", STORY + " vot")
    # The page's text may end in a credit line, not in another paragraph.
    assert not ends_alike(ending, STORY + " And then… " + "More words follow here. " * 4)
    assert not ends_alike("Short …", "Short")
    # Its last six words must be the page's: a last phrase every paragraph ends with is not.
    assert not ends_alike("The vote came after a long night…", STORY)


def test_a_text_the_extraction_kept_more_than_may_stand() -> None:
    """The page's extraction kept a related story's teaser: the feed's text holds less than
    HOLDS of it, so it is no proof, but it may stand for the article in a full-text feed."""
    teaser = " ".join(f"Also read: the bakery opens oven {n} this week." for n in range(6))
    same, holds, clean = compare(STORY, teaser + " " + STORY)
    assert not same
    assert MOST <= holds < HOLDS
    assert clean >= CLEAN
    assert stands(STORY, teaser + " " + STORY, holds, clean)


def test_a_text_the_extraction_kept_a_headline_and_a_teaser_before_may_stand() -> None:
    """The extraction holds the headline, standfirst and another story's teaser before the
    article, more than a quarter of it: the text is the article all the same, for it ends
    where the extraction does and begins after everything the extraction kept besides."""
    front = "Harbour board votes. " + " ".join(
        f"Also read: the bakery opens oven {n} this week after the long winter." for n in range(8)
    )
    same, holds, clean = compare(STORY, front + " " + STORY)
    assert not same
    assert AT_END <= holds < MOST
    assert follows(STORY, front + " " + STORY)
    assert stands(STORY, front + " " + STORY, holds, clean)
    # The same furniture after the article is not the text's end: it stands only above MOST.
    after = STORY + " " + front
    same, holds, clean = compare(STORY, after)
    assert holds < MOST
    assert not follows(STORY, after)
    assert not stands(STORY, after, holds, clean)


def test_an_excerpt_does_not_follow_its_page_even_where_the_page_repeats_itself() -> None:
    two_thirds = STORY[: len(STORY) * 2 // 3].rsplit(" ", 1)[0]
    assert not follows(two_thirds, STORY)
    # A page that says the same thing three times ends the way its first third does, but
    # the excerpt's first words come first at the page's start.
    chorus = " ".join(["The harbour board voted on the plan after a long night again."] * 12)
    excerpt = " ".join(["The harbour board voted on the plan after a long night again."] * 8)
    assert ends_alike(excerpt, chorus)
    assert not follows(excerpt, chorus)
    _, holds, clean = compare(excerpt, chorus)
    assert holds < MOST
    assert not stands(excerpt, chorus, holds, clean)


def test_nothing_stands_for_an_excerpt_or_a_text_the_page_does_not_show() -> None:
    two_thirds = STORY[: len(STORY) * 2 // 3].rsplit(" ", 1)[0]
    same, holds, clean = compare(two_thirds, STORY)
    assert holds < MOST
    assert not same
    assert not stands(two_thirds, STORY, holds, clean)
    other = STORY.replace("harbour board", "school governors")
    assert not stands(other, STORY, *compare(other, STORY)[1:])
    assert stands(two_thirds, STORY, MOST, CLEAN)


def test_a_feed_text_padded_with_a_story_the_page_shows_does_not_stand() -> None:
    """The entry carries the story and another one; the page shows both, the extraction only
    the story: the whole page does not vouch for a text the extraction holds under half of."""
    others = " ".join(f"Other story {n} is about a bakery and its new ovens." for n in range(60))
    padded = STORY + " " + others
    same, holds, clean = compare(padded, STORY, held_by_page(padded, STORY + " " + others))
    assert holds == 1.0
    assert not same
    assert not stands(padded, STORY, holds, clean)


def test_a_text_holding_all_of_an_extraction_that_lost_part_of_the_story_stands() -> None:
    """The extraction kept the story's first third (its body split across containers): the
    comparison fails, but the feed's text holds all of the extraction and the page's main
    content shows all of the text, so it may stand in a full-text feed. Neither a text padded
    with a story the main content leaves out (an aside) nor an excerpt gets that benefit."""
    third = STORY[: len(STORY) // 3].rsplit(" ", 1)[0]
    menu = "Home News Sport Weather Contact"
    c = measure(STORY, third, f"{menu} {STORY}", STORY)
    assert c is not None
    assert not c.same
    assert c.holds == 1.0
    assert c.clean < CLEAN
    assert c.stands
    # Without the main content (a page fetched for another feed's entry), it does not.
    c = measure(STORY, third, f"{menu} {STORY}")
    assert c is not None
    assert not c.stands
    others = " ".join(f"Other story {n} is about a bakery and its new ovens." for n in range(60))
    padded = STORY + " " + others
    c = measure(padded, STORY, f"{STORY} {others}", STORY)
    assert c is not None
    assert c.holds == 1.0
    assert not c.stands
    assert measure(third + " …", third[: len(third) // 2], third, third) is None


def test_dominating_takes_a_match_s_bar_on_both_sides() -> None:
    assert dominates(HOLDS, CLEAN)
    assert not dominates(HOLDS - 0.01, 1.0)
    assert not dominates(1.0, CLEAN - 0.01)


def test_an_entrys_own_text_is_measured_once_as_the_pipeline_needs_it() -> None:
    """`own_text`: the entry's content as text, its word count, language, fingerprint and
    content hash; an
    entry with only a summary has no text of its own."""
    entry = ParsedEntry(guid=None, link="https://x.example/a", content=STORY)
    own = own_text(entry)
    assert own.text == entry_text(entry)
    assert own.words == LONG
    assert own.language == "en"
    assert own.fingerprint == fingerprint(own.text)
    assert own.content_hash == content_hash(own.text)
    assert article_words(own.text, "auto", own.words) == article_words(own.text) == LONG
    assert article_words(own.text + " …", "auto", own.words) == 0
    summary_only = ParsedEntry(guid=None, link="https://x.example/b", summary=STORY)
    assert own_text(summary_only) == OwnText()


@pytest.mark.parametrize("content", [STORY, "", "<p> </p>"])
@pytest.mark.parametrize("meta_language", [None, "it"])
@pytest.mark.parametrize("page", [False, True])
def test_a_measured_own_text_builds_the_article_it_would_have_built(
    content: str, meta_language: str | None, page: bool
) -> None:
    """`build_article` given the entry's measured text builds the same article as without it,
    whatever the entry and the page hold (the page's language wins where the text is the page's)."""
    entry = ParsedEntry(
        guid="g", link="https://x.example/a", content=content, summary="A teaser.", language="fr"
    )
    text = "Page text. " + STORY
    metadata = PageMetadata(language=meta_language)
    extracted = Extracted(text, metadata, fingerprint(text)) if page else None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for text_from_feed in (True, False):
        built = [
            build_article(
                entry,
                entry_url="https://x.example/a",
                final_url=None,
                extracted=extracted,
                extraction_error=None,
                now=now,
                text_from_feed=text_from_feed,
                own=own,
            )
            for own in (own_text(entry), None)
        ]
        assert built[0] == built[1]


TEASER_DE = " ".join(
    f"Der Stadtrat von Bezirk {n} hat am Dienstag beschlossen, die alte Brücke über den Kanal "
    "abzureißen und eine neue zu bauen, obwohl die Anwohner seit Jahren dagegen protestieren."
    for n in range(6)
)


def test_an_article_stored_from_its_feed_has_the_language_of_its_own_text() -> None:
    """The page's extraction has another story's teaser in German before the English article
    (so its language, detected from its first lines, is German); the article stored from the
    feed's text is English, whether that text was measured already or not."""
    entry = ParsedEntry(guid="g", link="https://x.example/a", content=STORY, language="en")
    page_text = TEASER_DE + "\n\n" + STORY
    same, holds, clean = compare(STORY, page_text)
    assert not same
    assert stands(STORY, page_text, holds, clean)  # stored from the feed in a full-text feed
    language = detect_language(page_text)  # as the extraction's metadata has it
    assert language == "de"
    extracted = Extracted(page_text, PageMetadata(language=language), fingerprint(page_text))
    for own in (own_text(entry), None):
        article = build_article(
            entry,
            entry_url="https://x.example/a",
            final_url="https://x.example/a",
            extracted=extracted,
            extraction_error=None,
            now=datetime(2026, 1, 1, tzinfo=UTC),
            text_from_feed=True,
            own=own,
        )
        assert (article.text_source, article.language) == ("feed", "en")


def test_a_re_check_whose_page_failed_stands_unless_its_text_was_in_doubt() -> None:
    """A proven feed's entry whose page failed is stored from its text where it was fetched as
    a re-check of a text like the feed's others; not where its text ends like an excerpt or is
    under SHRUNK of the feed's shortest articles (fetched because it may not be the article),
    nor in a feed not proven."""
    on = FullText(on=True, streak=CONFIRM, words=LONG)
    assert stands_unchecked(on, STORY, LONG)
    assert not stands_unchecked(on, STORY + " …", LONG)
    short = int(SHRUNK * LONG) - 1
    assert not stands_unchecked(on, " ".join(STORY.split()[:short]), short)
    assert not stands_unchecked(FullText(), STORY, LONG)
    assert still_due(on).since_check == RECHECK_EVERY - 1
    assert wants_pages(still_due(on), "auto", [LONG, LONG])[0] == [True, False]
    assert still_due(FullText()) == FullText()


def test_a_page_that_shares_next_to_nothing_with_the_text_is_elsewhere() -> None:
    """A consent page measured against a story: neither holds ELSEWHERE of the other's
    4-grams, so the page is not the entry's article; a page that shows the story with a lot
    besides, or an excerpt's page, shares enough to be judged by the comparison."""
    story = " ".join(
        f"Sentence {k} of the story tells how the council of district nine rebuilt bridge {k}."
        for k in range(12)
    )
    consent = " ".join(
        f"We and our {k} partners use cookies to measure audiences and show advertising."
        for k in range(8)
    )
    c = measure(story, consent)
    assert c is not None
    assert not c.same
    assert elsewhere(c.holds, c.clean)
    padded = measure(story, story + " " + consent * 3)
    assert padded is not None
    assert not elsewhere(padded.holds, padded.clean)
    first = story[: len(story) // 2]
    cut = measure(first + " and more.", story)
    assert cut is not None
    assert not elsewhere(cut.holds, cut.clean)
    assert not elsewhere(ELSEWHERE, 0.0)
    assert not elsewhere(0.0, ELSEWHERE)


def test_a_page_that_is_not_the_entry_s_article_leaves_the_entry_its_own_text() -> None:
    """`other_page`: a proven feed's entry is its text whenever its page shares next to nothing
    with it (and its text would have been stored unchecked); any feed's where the page is
    another by the rule for every entry (`another`); a page that matched never is."""
    story = " ".join(
        f"Sentence {k} of the story tells how the council of district nine rebuilt bridge {k}."
        for k in range(12)
    )
    consent = " ".join(
        f"We and our {k} partners use cookies to measure audiences and show advertising."
        for k in range(8)
    )
    n = len(story.split())
    wall = measure(story, consent)
    assert wall is not None
    proven = FullText(on=True, streak=CONFIRM, words=n)
    for state in (FullText(), FullText(streak=-2, evidence="not the article")):
        assert other_page(state, story, n, wall, another=True)
        assert not other_page(state, story, n, wall, another=False)
    assert other_page(proven, story, n, wall, another=False)
    assert not other_page(proven, story + " …", n, wall, another=False)
    assert other_page(proven, story + " …", n, wall, another=True)
    matched = measure(story, story)
    padded = measure(story, story + " " + consent * 3)
    assert matched is not None
    assert padded is not None
    assert not other_page(proven, story, n, padded, another=False)
    for state in (FullText(), proven):
        assert not other_page(state, story, n, matched, another=True)


def _cut(n: int, words: int) -> str:
    """Story `n`'s text cut after `words` words, inside a sentence."""
    sentence = f"Story {n} says the council met again on Tuesday and agreed on the plan. "
    return " ".join((sentence * 40).split()[:words])


def test_texts_that_stop_at_one_length_inside_a_sentence_show_a_cap() -> None:
    """Three or more texts of a poll stopping at its longest length, within a word or within
    twenty characters, each inside a sentence: the feed cuts there. Articles that end with
    their sentence, lengths that merely come close, two texts alike, or one text listed
    three times show no cap."""
    cut = [_cut(n, 120) for n in range(3)]
    assert pile_up([*cut, "A whole brief of a few words."]) == (120, max(map(len, cut)))
    assert pile_up(cut[:2]) == (0, 0)
    assert pile_up([cut[0]] * 3) == (0, 0)
    closed = [t + "." for t in cut]
    assert pile_up(closed) == (0, 0)
    spread = [_cut(0, 120), _cut(1, 110), _cut(2, 100)]
    assert pile_up(spread) == (0, 0)
    by_chars = [(_whole(n, 12))[: 600 + n].rsplit(maxsplit=1)[0] for n in range(3)]
    assert pile_up(by_chars)[1] == max(map(len, by_chars))


def test_a_capped_text_is_an_excerpt_to_the_feed() -> None:
    """A text as long as the length at which its feed cuts stands for no article (its page is
    fetched, it is no evidence); a shorter one, or any in `feed` mode, is counted; the cap is
    kept through the comparisons of later polls, a longer one replacing it."""
    state = with_caps(FullText(), [_cut(n, 120) for n in range(3)])
    assert state.cap_words == 120
    assert capped(state, _cut(9, 120))
    assert article_words(_cut(9, 120), "auto", 120, state) == 0
    assert article_words(_cut(9, 60), "auto", 60, state) == 60
    assert article_words(_cut(9, 120), "feed", 120, state) == 120
    assert article_words(_cut(9, 120), "auto", 120) == 120
    later = observe(state, [(True, 0.98, 0.97, 60, False), (False, 0.4, 0.5, 60, False)] * 2)
    assert (later.cap_words, later.cap_chars) == (state.cap_words, state.cap_chars)
    assert with_caps(later, [_whole(n, 2) for n in range(3)]).cap_words == 120
    assert with_caps(later, [_cut(n, 200) for n in range(3)]).cap_words == 200


def _whole(n: int, sentences: int) -> str:
    """Story `n`'s whole text of so many sentences."""
    return " ".join(
        f"Story {n}, line {k}: the harbour board voted on plan {k} after a long night."
        for k in range(sentences)
    )


def _own(content: str) -> str:
    """An entry's text as the pipeline measures it (one paragraph a line)."""
    return own_text(ParsedEntry(guid="g", link="http://x.invalid/a", content=content)).text


ZH = [
    "\n".join(
        [
            f"第{k}段：市政府周二宣布新的交通计划，居民表示欢迎。" * (2 + (k + n) % 3)
            for k in range(8 + n % 2)
        ]
        + ["（完）"]
    )
    for n in range(3)
]


def test_whole_texts_show_no_cap_whatever_their_last_line() -> None:
    """Whole stories written without spaces (Chinese, ending "（完）"), whole briefs of one
    template ending in a credit, a source or a link, and one article listed three times with
    different tracking lines: none is a feed cutting its texts."""
    chinese = [_own(h) for h in ZH]
    assert len({len(t) for t in chinese}) == 3
    assert pile_up(chinese) == (0, 0)
    for tail in ("Photo: Reuters", "Source: https://example.com/q", "— Jane Doe"):
        briefs = [
            f"A magnitude {4 + n / 10:.1f} earthquake struck {10 + n} km north of Town {n} at "
            f"0{n}:12 UTC today at a depth of {5 + n} km, the survey said. "
            + _whole(n, 4)
            + f"\n\n{tail}"
            for n in range(3)
        ]
        assert pile_up(briefs) == (0, 0), tail
    body = _whole(1, 6)
    relisted = [f"{body}\n\nhttps://example.com/a/1?utm_source=rss&utm_campaign={c}" for c in "abc"]
    assert pile_up(relisted) == (0, 0)


def test_a_cap_follows_the_feed() -> None:
    """A feed that stops cutting (its texts now longer than the cap) loses its cap; one that
    cuts at another length has the new one seen; one whose later polls show no pile-up and
    nothing longer keeps its cap."""
    state = with_caps(FullText(), [_cut(n, 120) for n in range(3)])
    assert with_caps(state, [_whole(1, 2)]).cap_words == 120
    longer = with_caps(state, [_whole(n, s) for n, s in enumerate((20, 35, 50))])
    assert (longer.cap_words, longer.cap_chars) == (0, 0)
    assert not capped(longer, _whole(7, 50))
    shorter = with_caps(state, [_cut(n, 80) for n in range(3, 6)])
    assert shorter.cap_words == 80
    assert article_words(_cut(9, 80), "auto", 80, shorter) == 0


_SENTENCE = "Story {n} says the council met again on Tuesday and agreed on the plan."  # 14 words


def _story_of(n: int, per_para: int, lead: str = "", sep: str = "\n\n") -> str:
    """Story n: paragraphs of `per_para` sentences, each paragraph opened by `lead`."""
    para = " ".join([_SENTENCE.format(n=n)] * per_para)
    return sep.join(lead + para for _ in range(30))


def _cut_words(text: str, words: int) -> str:
    """The text's first `words` space-separated words, its line breaks kept (a CMS cut)."""
    tokens = re.findall(r"\S+\s*", text)
    return "".join(tokens[:words]).rstrip()


def test_a_cut_landing_on_a_short_new_paragraph_still_counts() -> None:
    # 128 = 3 paragraphs of 42 words + 2: text 0 is cut two words into its 4th paragraph.
    texts = [
        _cut_words(_story_of(0, 3), 128),
        _cut_words(_story_of(1, 4), 128),
        _cut_words(_story_of(2, 2), 128),
    ]
    assert texts[0].endswith("\n\nStory 0")
    assert pile_up(texts)[0] == 128


def test_a_cut_inside_a_dialogue_line_still_counts() -> None:
    # French/Spanish/Russian dialogue opens with a dash; text 0's cut lands in such a line.
    dialogue = _story_of(0, 3).split("\n\n")
    dialogue[3] = "— " + dialogue[3]
    texts = [
        _cut_words("\n\n".join(dialogue), 138),
        _cut_words(_story_of(1, 4), 138),
        _cut_words(_story_of(2, 2), 138),
    ]
    assert pile_up(texts)[0] == 138


def test_cut_interview_transcripts_show_their_cap() -> None:
    texts = [
        _cut_words(_story_of(n, 2, lead=("Q: " if n % 2 else "Smith: ")), 130) for n in range(3)
    ]
    assert pile_up(texts)[0] == 130


def test_a_cut_line_holding_a_link_still_counts() -> None:
    link = "Story {n} links https://example.org/report/{n} and the council said it would "
    head = ["\n\n".join(_story_of(n, 2).split("\n\n")[:4]) for n in range(3)]  # 112 words
    texts = [_cut_words(h + "\n\n" + link.format(n=n) * 20, 150) for n, h in enumerate(head)]
    assert "://" in texts[0].rsplit("\n", 1)[1]
    assert pile_up(texts)[0] == 150


def test_one_line_cuts_with_a_dateline_or_a_link_still_count() -> None:
    # wp_trim_words-style cuts: tags stripped, one line; a wire dateline "ISLAMABAD: ",
    # or any link anywhere in the text, makes the whole (only) line "a credit".
    dateline = [_cut_words("ISLAMABAD: " + _story_of(n, 2, sep=" "), 120) for n in range(3)]
    linked = [
        _cut_words(_story_of(n, 2, sep=" ").replace("plan.", "plan (https://x.org).", 1), 120)
        for n in range(3)
    ]
    assert (pile_up(dateline)[0], pile_up(linked)[0]) == (120, 120)


def test_cut_texts_under_one_standfirst_are_different_articles() -> None:
    note = (
        "Editor's note: This story is part of our series on local government, produced with "
        "the support of the Civic Trust, which has no say over our coverage. Sign up for the "
        "newsletter to get each new story of the series in your inbox.\n\n"
    )
    assert len(note) > 200
    texts = [_cut_words(note + _story_of(n, 3), 150) for n in range(4)]
    assert pile_up(texts)[0] == 150


def test_one_longer_whole_text_does_not_hide_the_pile_up() -> None:
    """A poll of five cut texts and one live blog: the pile-up is sought at the longest text
    that stops inside a sentence, not at the poll's longest."""
    cut = [_cut_words(_story_of(n, 3), 120) for n in range(5)]
    live = _cut_words(_story_of(9, 3), 294)  # whole: ends with its sentence
    assert live.endswith("plan.")
    assert pile_up([*cut, live])[0] == 120  # a poll of 5 cut texts and one live blog


def test_one_longer_whole_text_does_not_clear_the_cap() -> None:
    """One longer whole text in a later poll (a live blog) leaves a kept cap as it is."""
    cut = [_cut_words(_story_of(n, 3), 120) for n in range(5)]
    live = _cut_words(_story_of(9, 3), 294)
    state = with_caps(FullText(), cut)
    assert state.cap_words == 120
    later = with_caps(state, [cut[0], live])  # next poll: one cut text, one live blog
    assert later.cap_words == 120
    assert capped(later, _cut_words(_story_of(7, 3), 120))


def test_a_text_other_entries_of_the_poll_carry_too_is_shared() -> None:
    """Entries carrying one text (its links aside: each entry's own link in a template) are
    told from the others; entries without text, and texts of their own, are not."""
    blurb = "Thank you for reading. Our newsletter brings you the day's stories."
    texts = [
        f"{blurb}\n\nhttps://example.com/a/1",
        _story_of(1, 3),
        "",
        f"{blurb}\n\nhttps://example.com/a/2",
        "",
        _story_of(2, 3),
        blurb,
    ]
    assert fulltext.shared(texts) == {0, 3, 6}
    assert fulltext.shared([_story_of(1, 3), _story_of(2, 3)]) == set()


def test_a_template_the_feed_carried_before_is_shared_by_a_lone_entry() -> None:
    """A text the feed carried in place of several stories is kept by the key of its words
    (its links aside), the latest first, TEMPLATES at most: an entry of a later poll carrying
    it is told from the others, alone, with its own link, or as an update."""
    blurb = "Thank you for reading. Our newsletter brings you the day's stories."
    notice = "This story is for subscribers only. Subscribe today and read on."
    poll = [f"{blurb}\n\nhttps://example.com/a/1", _story_of(1, 3), blurb]
    alike = fulltext.shared(poll)
    state = fulltext.with_templates(FullText(on=True), poll, alike)
    assert state.templates == (fulltext.template_key(blurb),)
    assert fulltext.with_templates(state, poll, set()) is state
    later = [_story_of(2, 3), f"{blurb}\n\nhttps://example.com/a/7"]
    assert fulltext.shared(later, state.templates) == {1}
    assert fulltext.shared(later) == set()
    state = fulltext.with_templates(state, [notice, notice], {0, 1})
    assert state.templates == (fulltext.template_key(notice), fulltext.template_key(blurb))
    for n in range(fulltext.TEMPLATES):
        other = f"{notice} Offer number {n}."
        state = fulltext.with_templates(state, [other], {0})
    assert len(state.templates) == fulltext.TEMPLATES
    assert fulltext.template_key(blurb) not in state.templates
