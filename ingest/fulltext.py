"""Full-text feeds: whether a feed's own entries carry the whole article, so that its pages need
not be fetched. Pure: decided from the entries' text, the pages extracted for comparison and the
feed's recorded state.

A feed starts in page mode: every new entry's page is fetched and extracted, and where the entry
has text of its own (`content:encoded`, Atom `content`, JSON Feed `content_html`) the two are
compared. Once CONFIRM entries in a row show the feed's text to be the article (it holds nearly
all of the page's text and little besides), the feed switches to full-text mode: entries are
stored from their own text without a request, except one in RECHECK_EVERY and any entry whose
text is under SHRUNK of the feed's shortest articles (`_shortest`): their pages are fetched and
compared again, the shortest first (`shrunk`: one found to be the article vouches for the
longer ones). MISSES comparisons in a row that fail switch the feed back, so a failed one is
followed by the comparison of the feed's next entry; so is a re-check whose page failed in
passing, or showed something other than the entry (`stands_unchecked`, `still_due`,
`elsewhere`), up to STAND_INS times in a poll. A poll's entries after a comparison are planned
once it is in (`until_check`): none is stored from the feed's text on the strength of a state
that comparison changed. In any feed, an entry whose page is not its article at all (a consent
wall: `other_page`) is stored from its own text and counts neither way. An entry of fewer than
MIN_WORDS words, or that ends like an excerpt, or whose text stops at a length at which its
feed was seen to cut its texts without a mark (`pile_up`, `capped`), or that another entry of
the poll carries too, or that the feed carried in place of more than one story before
(`shared`, `with_templates`: a template), always has its page fetched and never counts
towards the mode: it says nothing about the feed's other entries; nor,
until the feed is proven full-text, does a failed comparison whose text stands for the article
(`observe`). (`FullText.streak` counts matches in a row, up to CONFIRM, or misses in a row as a
negative number, down to -MISSES.)

What is stored follows the comparison and the state. An entry whose text is the article is
stored from that text. One whose comparison failed is stored from its text all the same where
the text is clean and holds MOST of its page's extraction, or AT_END of it where the
extraction is that text with something before it, or holds nearly all of an extraction that
lost part of what the page shows as its content (`stands`, `dominates`), and the feed is
still full-text once that failure is counted (in feed order; while the feed is probed, once
probing is done): a comparison fails as often because the extraction kept a related story's
teaser or lost a paragraph as because the feed changed. An excerpt takes part only where its
page's text ends where its own does (`ends_alike`: an article that itself ends in an ellipsis,
or a page that shows no more), and then never counts towards the mode. An operator may fix the
mode per feed (`page` never trusts the feed's text, `feed` always does while entries have
text).

An updated entry of a stored article is decided as a new one would be (`wants_pages`), by the
word count `update_words` gives its text: none in `auto` mode where the text is under KEEPS of
the stored article's, so that its page is fetched and decides the update. Whether the feed's
text is the article was settled on new entries; an update that would drop most of the stored
text is a teaser or a cut, far more often than an edit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Final

from ingest.coverage import Reference, words
from ingest.neardup import fingerprint
from ingest.normalize import clean_text, content_hash, detect_language
from ingest.types import Comparison, FullText, OwnText, ParsedEntry, TextMode

TEXT_MODES: Final[tuple[TextMode, ...]] = ("auto", "page", "feed")

CONFIRM: Final = 3
"""Entries in a row whose feed text is the article before pages are no longer fetched."""
RECHECK_EVERY: Final = 20
"""In full-text mode, one entry in this many is still compared with its page, and the entry
after a failed comparison (`observe`)."""
MIN_WORDS: Final = 50
"""Fewer words than this is a teaser, never the article."""
HOLDS: Final = 0.8
"""Share of the page's word 4-grams the feed's text must hold (near-complete; the page's
extraction may keep a caption or a line of furniture the feed rightly leaves out)."""
CLEAN: Final = 0.9
"""Share of the feed text's word 4-grams the page must hold (nothing much besides): its
extracted text, or its whole visible text where the extraction holds at least LOOSE of them
(an extraction that missed a paragraph the feed has is the extraction's fault, not the feed's;
a feed text of which the page shows less than that is something else)."""
LOOSE: Final = 0.5
"""Share of the feed text's word 4-grams the page's extraction must hold before the rest may be
found anywhere on the page."""
MOST: Final = 0.75
"""Share of its page's extraction that an entry's text must hold to be stored from the feed
when its comparison failed in a full-text feed (`stands`): the extraction may have kept a
related story's teaser or the tags beside the article, while an excerpt missing a quarter of
the extracted text or more is not stored for the article. Set on the development half of the
corpora (`bench/fulltext_bench.py`): 0.7 and 0.75 stored two more of 125 articles from the
feed than HOLDS does; 0.6 also stored a two-thirds excerpt of 88 of the 125 pages, 0.7 of 5."""
AT_END: Final = 0.5
"""Share of its page's extraction that an entry's text must hold to be stored from the feed
when its comparison failed, where the extraction is that text with something before it
(`follows`: a headline and standfirst, another story's teaser; an excerpt begins where its
article does). The extraction may hold the text's words twice over, no more."""
STAND_INS: Final = 1
"""Entries of one poll compared in place of a proven feed's comparison left undone (its page
failed in passing, or was another page: `stands_unchecked`, `elsewhere`), each after the
one before was left undone too, before the comparison waits for the next poll: a host that
fails every page would otherwise cost a request for each entry of the poll, one after the
other."""
MISSES: Final = 2
"""Comparisons in a row that find the feed's text is not the article before a full-text feed
is switched back (one can be the extraction's fault)."""
DRIFT: Final = 1 / 8
"""Share of the difference by which an article longer than the feed's shortest raises it."""
SHRUNK: Final = 1 / 3
"""An entry with less than this share of the word count of the shortest entry found to be the
article is checked against its page (articles' lengths vary too much for a mean to tell a
summary from a short story)."""
KEEPS: Final = 1 / 2
"""Share of its stored article's text (in characters) that an updated entry's own text must
keep to update it without its page (`update_words`): a correction, a paragraph added or cut,
keeps most of an article; an entry turned into a teaser or cut short in the feed does not."""


_HEADLINE = r"\s*[\"“”«»„‘’'][^\n]{1,160}[\"“”«»‘’'][^\w\n]{0,10}"
"""The story's headline in quotes after an invitation, perhaps an arrow after it (WordPress's
"Continue reading “…”", whose headline is for screen readers): longer than the rest of an
invitation's line may otherwise be."""
_INVITE = (
    r"(?:read more|continue reading|read the full|keep reading|weiterlesen|lire la suite"
    r"|leer más|continua a leggere|lees verder|czytaj dalej|leia mais)\b"
    rf"(?:[^\n]{{0,80}}|{_HEADLINE})$"
)
_ELLIPSIS = r"(?:\.\.\.|…)"
_CUT_END = re.compile(rf"{_ELLIPSIS}\s*[\])]?\s*$|{_ELLIPSIS}\W{{0,10}}{_INVITE}", re.IGNORECASE)
"""An ellipsis at the end of the line, or followed within a few characters (a space, a bracket,
an arrow) by an invitation to the page: searched in the line's last _TAIL characters only,
which hold all of either (a line of ellipses is not searched from each of them)."""
_TAIL: Final = 200
_INVITED = re.compile(rf"\W{{0,10}}{_INVITE}", re.IGNORECASE)
"""A line that is an invitation to the page (after a bullet, an arrow or a bracket)."""


def looks_cut(text: str) -> bool:
    """Whether an entry's text ends the way an excerpt does: an ellipsis, or a last line
    inviting the reader to the page ("Continue reading …", however long the quoted headline
    after it: `_HEADLINE`), or an ellipsis followed by that invitation on its line (the link
    inside the excerpt's last paragraph: "… Read more")."""
    last = text.rstrip().rpartition("\n")[2]
    return bool(_CUT_END.search(last[-_TAIL:]) or _INVITED.match(last))


def article_words(
    text: str, mode: TextMode = "auto", count: int | None = None, state: FullText | None = None
) -> int:
    """The word count an entry's own text stands for as the article (`count`, where it was
    counted already): in `auto` mode, none for an excerpt, or a text that stops at the length
    at which its feed cuts its texts (`state`'s caps, `capped`): its page is fetched, and it is
    no evidence either way. An operator who set `feed` takes the text as it is."""
    if mode == "auto" and (looks_cut(text) or (state is not None and capped(state, text))):
        return 0
    return len(words(text)) if count is None else count


PILE: Final = 3
"""Texts that must stop together, at the length of the longest of a poll's texts that stops
inside a sentence, for the feed to be taken to cut its texts there (`pile_up`); and longer
texts that must come for a kept cap to be cleared (`with_caps`)."""
CAP_WORDS: Final = 1
"""Words by which texts cut at one word count may differ (`pile_up`, `capped`)."""
CAP_CHARS: Final = 20
"""Characters by which texts cut at one length may differ: a cut goes back to the end of a
word (`pile_up`, `capped`)."""


def pile_up(texts: Sequence[str]) -> tuple[int, int]:
    """The lengths at which a feed cuts its texts without marking the cut, as a poll's texts
    show them: the word count (counted between spaces, as a CMS counts them; only in texts of
    MIN_WORDS such words, so never in scripts written without spaces) of the longest text that
    stops inside a sentence (`_ending`), where PILE texts of different articles stop within
    CAP_WORDS words of it, none of them at the end of a sentence and PILE - 1 of them inside
    one; the same in characters within CAP_CHARS; 0 for each otherwise. Articles end at the
    end of a sentence, and their lengths spread too far for three of them to end together: on
    the full-text site of `bench/probe_bench.py` no poll shows a pile-up, on its sites cut at
    250, 400 and 700 words and 2,000 characters nearly every feed does."""
    # One article listed again (another tracking link) is one text.
    distinct = list({_as_one(t): t for t in texts}.values())
    spaced = [t for t in distinct if _spaced_words(t) >= MIN_WORDS]
    caps = []
    for measure, slack, pool in ((_spaced_words, CAP_WORDS, spaced), (len, CAP_CHARS, distinct)):
        ends = {t: _ending(t) for t in pool}
        longest = max((measure(t) for t in pool if ends[t]), default=0)
        near = [t for t in pool if abs(measure(t) - longest) <= slack]
        open_ = sum(1 for t in near if ends[t])
        closed = sum(1 for t in near if ends[t] is False)
        caps.append(longest if len(near) - closed >= PILE and open_ >= PILE - 1 else 0)
    return caps[0], caps[1]


_SENTENCE_END = re.compile(r"[.!?…。！？।؟\"'”’»)\]）」』】〉》][^\w:;：；]*$")
"""A line that ends as a sentence does (punctuation, then perhaps quotes and brackets); one
that ends in a colon or a semicolon goes on."""
_CREDIT = re.compile(r"^\s*(?:[-–—©]|\(c\)|\S+:(?:\s|$))|://", re.IGNORECASE)
"""A line that opens as a credit or a source does ("Photo: …", "Source: …", "— Jane Doe",
"© Agency") or holds a link."""
_CREDIT_WORDS: Final = 3
"""Words of a last line that is a name or an agency ("Reuters", "(AP)", "Jane Doe")."""


_LINK = re.compile(r"\S*://\S*")
"""A link in a text: left out when telling one article's text from another's."""


def _as_one(text: str) -> str:
    """A text as it is told from another: its links left out."""
    return _LINK.sub("", text).rstrip()


def shared(texts: Sequence[str], known: Collection[bytes] = ()) -> set[int]:
    """The indices of a poll's entries' texts (its new entries' and its updates') that another
    of its entries carries too (links left out, `_as_one`), or that the feed was seen to carry
    in place of more than one story before (`known`: `FullText.templates`): a template in the
    article's place (a newsletter's blurb, a subscription notice), which is the article of
    none of them. In `auto` mode such a new entry counts as having no text of its own
    (`article_words`): its page is fetched, compared with nothing (its page is not another
    page for sharing nothing with a template) and stored; such an update's page decides it.
    An article listed twice (another tracking link) costs its pages, never its text."""
    firsts: dict[str, int] = {}
    alike: set[int] = set()
    for i, text in enumerate(texts):
        if not text:
            continue
        one = _as_one(text)
        first = firsts.setdefault(one, i)
        if first != i:
            alike.update((first, i))
        elif known and digest(one) in known:
            alike.add(i)
    return alike


TEMPLATES: Final = 8
"""Templates a feed keeps (`with_templates`), the latest seen first: a site has a few (a
paywall notice, a newsletter's blurb), each carried again and again."""


def template_key(text: str) -> bytes:
    """What a template is known by (`FullText.templates`): the digest of the text without its
    links (`_as_one`), as `shared` tells texts apart."""
    return digest(_as_one(text))


def with_templates(state: FullText, texts: Sequence[str], alike: Collection[int]) -> FullText:
    """The state with the templates a poll's entries showed (`shared`'s `alike` of `texts`)
    first, then those it kept, TEMPLATES at most: an entry carrying one of them in a later
    poll, alone or as an update, is no article either."""
    if not alike:
        return state
    seen = list(dict.fromkeys(template_key(texts[i]) for i in sorted(alike)))
    kept = [*seen, *(k for k in state.templates if k not in seen)][:TEMPLATES]
    return replace(state, templates=tuple(kept))


_CREDIT_MAX_WORDS: Final = 8
"""Words over which a line is the story's, whatever it opens with."""


def _ending(text: str) -> bool | None:
    """True where a text stops inside a sentence, False where it ends one; None where its
    story's last line ends one but short lines follow it (a credit, a link, or the first
    words of a paragraph a cut landed in)."""
    trailing = False
    for line in reversed(text.splitlines()):
        n = len(line.split())
        if not n:
            continue
        if n <= _CREDIT_WORDS or (n <= _CREDIT_MAX_WORDS and _CREDIT.search(line)):
            trailing = True
            continue
        if not _SENTENCE_END.search(line):
            return True
        return None if trailing else False
    return None


def _spaced_words(text: str) -> int:
    return len(text.split())


def poll_caps(state: FullText, owns: Sequence[OwnText]) -> FullText:
    """`with_caps` of a poll's new entries: their texts that stand for an article (not
    teasers, not excerpts). The pipeline's rule, which its updates and new entries share."""
    return with_caps(
        state, [o.text for o in owns if o.words >= MIN_WORDS and not looks_cut(o.text)]
    )


def with_caps(state: FullText, texts: Sequence[str]) -> FullText:
    """The state with the caps a poll's entry texts (with text of their own: not teasers, not
    excerpts) show: a pile-up (`pile_up`) sets a cap, or replaces the one kept (the feed cuts
    at another length now); PILE texts longer than a kept cap by more than its slack, none
    stopping at it inside a sentence, clear it (the feed no longer cuts there; one kind of
    entry it does not cut, a live blog, does not); otherwise the kept cap stays."""
    cap_words, cap_chars = pile_up(texts)

    # A cap kept too long costs the pages of whole texts of its length, never a text.
    def stale(cap: int, measure: Callable[[str], int], slack: int) -> bool:
        longer = sum(1 for t in texts if measure(t) > cap + slack)
        at_cap = any(abs(measure(t) - cap) <= slack and _ending(t) for t in texts)
        return longer >= PILE and not at_cap

    if not cap_words:
        cap_words = 0 if stale(state.cap_words, _spaced_words, CAP_WORDS) else state.cap_words
    if not cap_chars:
        cap_chars = 0 if stale(state.cap_chars, len, CAP_CHARS) else state.cap_chars
    return replace(state, cap_words=cap_words, cap_chars=cap_chars)


def capped(state: FullText, text: str) -> bool:
    """Whether an entry's text stops at a length at which its feed cuts (`with_caps`: within
    its slack of it): taken for cut there, like an excerpt. Until a cap is cleared (PILE
    longer texts in a poll, `with_caps`), the feed's whole texts of that length have their
    pages fetched too, which costs pages, never texts."""
    return bool(
        (state.cap_words and abs(_spaced_words(text) - state.cap_words) <= CAP_WORDS)
        or (state.cap_chars and abs(len(text) - state.cap_chars) <= CAP_CHARS)
    )


def update_words(
    text: str,
    n: int,
    stored_chars: int | None,
    mode: TextMode = "auto",
    state: FullText | None = None,
) -> int:
    """The word count an updated entry's own text (`n` words) stands for as the new version
    of its stored article (`article_words`), none in `auto` mode where the text is under
    KEEPS of the stored text's length (`stored_chars`; None or 0: no text stored, nothing to
    lose): its page is then fetched and decides the update, as for a feed whose pages are
    fetched. Whether the feed's text is its article was settled on new entries; whether an
    update that drops most of the article is an edit of it is settled by its page (a feed that
    turned to teasers, an entry truncated on its way out). An operator who set `feed` takes
    the text as it is."""
    if mode == "auto" and stored_chars and len(text) < KEEPS * stored_chars:
        return 0
    return article_words(text, mode, n, state)


END_SLACK: Final = 10
"""Words a page's text may go on for after the last words of a feed text that ends like an
excerpt and still end where it does (a credit line, a tag)."""
_LAST: Final = 6


def ends_alike(feed_text: str, page_text: str) -> bool:
    """Whether a page's text ends where a feed text that ends like an excerpt does: the feed
    text's last six words among the page text's last END_SLACK + 6, so that its ellipsis cut
    nothing off (an excerpt's page goes on with the story, and one cut inside a word does not
    end in it at all)."""
    last, tail = words(feed_text)[-_LAST:], words(page_text)[-(END_SLACK + _LAST) :]
    n = len(last)
    return n == _LAST and any(tail[k : k + n] == last for k in range(len(tail) - n + 1))


def stands(
    feed_text: str, page_text: str, holds: float, clean: float, in_main: float | None = None
) -> bool:
    """Whether the text of an entry whose comparison with its page's extraction failed
    (`compare`'s measures) is stored from the feed all the same where the feed is still
    full-text once that failure is counted: it is as clean as a match must be and holds at
    least MOST of the extraction (HOLDS is the comparison's bar), or AT_END of it where the
    extraction is the text with something before it (`follows`). So only a feed proven
    full-text gets the benefit of the doubt, and not on the miss that switches it back.

    Also where the extraction lost part of the article (`dominates`): the text holds as much
    of the extraction as a match must, and the page's main content shows CLEAN of it
    (`in_main`, `held_by_page` of the main-content text; None for an excerpt, which this
    never vouches for)."""
    if in_main is not None and dominates(holds, in_main):
        return True
    if clean < CLEAN:
        return False
    return holds >= MOST or (holds >= AT_END and follows(feed_text, page_text))


def dominates(holds: float, in_main: float) -> bool:
    """Whether an entry's text is its page's extraction and more, all of it in the page's main
    content: it holds HOLDS of the extraction, and the main-content text (resiliparse's second
    opinion, which leaves out asides, menus and related-story blocks) CLEAN of it. Stored, it
    loses nothing the extraction has and adds only what the page shows as its content, where
    the extraction missed paragraphs (a story split across blocks, a lead under a share bar).
    A text padded with a sidebar's stories is not in the main content where the page marks
    them as such (an aside, a related-stories block); laid out as cards of their own beside
    the article, they may be, and such a text stands (no measure of the texts tells it from a
    story split across blocks; a feed that pads its entries so is rare). The comparison still
    fails (the text may be an excerpt longer than a poor extraction), so it is stored so only
    in a feed proven full-text. Set on the development half of the corpora
    (`bench/fulltext_bench.py`): one more article of 125 stored from the feed, and two
    excerpts, each nearer the article than its page's extraction."""
    return holds >= HOLDS and in_main >= CLEAN


def follows(feed_text: str, page_text: str) -> bool:
    """Whether a page's text is the feed text with something before it (a headline and
    standfirst, another story's teaser): the feed text's first six words first come where all
    but END_SLACK of the page text's other words are behind, and its last six end the page's
    text (`ends_alike`). An excerpt begins where its article does, and a text that repeats
    itself finds its first words early."""
    feed_words, page_words = words(feed_text), words(page_text)
    head = feed_words[:_LAST]
    at = next(
        (k for k in range(len(page_words) - _LAST + 1) if page_words[k : k + _LAST] == head),
        None,
    )
    lead = len(page_words) - len(feed_words)
    return at is not None and at >= lead - END_SLACK and ends_alike(feed_text, page_text)


def digest(text: str) -> bytes:
    """A short fingerprint of a feed text, to tell which text a measure was taken of."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def entry_text(entry: ParsedEntry) -> str:
    """The article text an entry carries itself: its content, never its summary."""
    return clean_text(entry.content or "")


def own_text(entry: ParsedEntry) -> OwnText:
    """`entry_text` with what the pipeline needs of it: its word count, and for an article
    stored from it, its language and fingerprint. CPU work on long texts (tens of ms for a
    feed of full articles), done in a worker process (`ingest.workers.tasks.own_texts`)."""
    text = entry_text(entry)
    if not text:
        return OwnText()
    return OwnText(
        text,
        len(words(text)),
        detect_language(text, hint=entry.language),
        fingerprint(text),
        content_hash(text),
    )


def probe(state: FullText, mode: TextMode, entry_words: Sequence[int]) -> list[int]:
    """The entries (indices, feed order) whose pages are fetched and compared before the others
    are planned, so that a feed proving full-text in its first poll spares the rest of that
    poll's pages: while it is undecided (not MISSES failed comparisons in a row), as many
    entries with text of their own as confirmation still needs: the longest of them, the next
    longest, then the shortest (then the first others in feed order). Asked again after each
    round until it answers none.

    The longest entries are where a feed that cuts its longer articles without marking the
    cut (no ellipsis, no "read more") shows it, whatever their place in the feed, so such a
    feed fails its probes more often (the pages fetched after them may still prove it: three
    whole short articles in a row do); and a feed proven on its shortest entry has fewer short
    entries left to check before it is trusted (`shrunk`), their page fetched in a probe's
    place. Chosen with `bench/probe_bench.py` against the first entries in feed order
    (docs/performance.md, section "Twenty-first session"): fewer pages in a first poll on its
    full-text site, on its development and on its validation part, and fewer texts cut by
    more than a fifth stored as articles from feeds cutting at 250, 400 or 700 words (about
    two fifths fewer over two polls), for more pages in later polls."""
    undecided = state.evidence is None or state.streak > -MISSES
    if mode != "auto" or state.on or not undecided:
        return []
    wanted = CONFIRM - max(state.streak, 0)
    texts = [i for i, n in enumerate(entry_words) if n >= MIN_WORDS]
    chosen: list[int] = []
    for pick in (max, max, min):  # the first of equal ones
        if texts and len(chosen) < wanted:
            chosen.append(pick(texts, key=lambda i: entry_words[i]))
            texts.remove(chosen[-1])
    return sorted(chosen + texts[: max(wanted - len(chosen), 0)])


def shrunk(state: FullText, mode: TextMode, entry_words: Sequence[int]) -> list[int]:
    """In a proven full-text feed (`auto` mode), the shortest of the entries that `trusted`
    does not take for articles by their length alone (under SHRUNK of the feed's shortest
    articles; teasers aside): fetched and compared before the others are planned, since one
    that proves to be the article lowers that bar (`_shortest`), and the feed's longer short
    entries then need no page. A feed whose briefs run from 100 to 300 words against articles
    of 1,000 costs one page for them, not one each. Asked again after each until it answers
    none."""
    if mode != "auto" or not state.on:
        return []
    short = [
        (n, i) for i, n in enumerate(entry_words) if n >= MIN_WORDS and not trusted(state, mode, n)
    ]
    return [min(short)[1]] if short else []


def wants_pages(
    state: FullText, mode: TextMode, entry_words: Sequence[int]
) -> tuple[list[bool], FullText]:
    """For new entries in feed order (each given by the word count of its own text): whether
    its page is fetched, and the state once the others are stored from their text. A page
    fetched for a teaser or an excerpt is compared with nothing: it leaves the count since the
    last comparison as it is, or a feed with an excerpt every few entries would never be
    re-checked."""
    wants: list[bool] = []
    since = state.since_check
    for n in entry_words:
        if n < MIN_WORDS or mode == "page":
            wants.append(True)
            continue
        fetch = not trusted(state, mode, n) or (mode == "auto" and since + 1 >= RECHECK_EVERY)
        wants.append(fetch)
        since = 0 if fetch else since + 1
    return wants, replace(state, since_check=since if state.on else 0)


def until_check(state: FullText, mode: TextMode, entry_words: Sequence[int]) -> int:
    """How many of a poll's new entries (feed order, each given by the word count of its own
    text) are planned together (`wants_pages`) before the ones after them: in a proven
    full-text feed (`auto` mode), those up to and including the first whose page is compared
    with its text (a re-check), since its comparison decides whether the entries after it are
    stored from their text (a failed one has the next entry compared, and two in a row switch
    the feed back); all of them otherwise (every page is fetched, or none is compared)."""
    if mode != "auto" or not state.on:
        return len(entry_words)
    wants, _ = wants_pages(state, mode, entry_words)
    compared = (
        k for k, (w, n) in enumerate(zip(wants, entry_words, strict=True)) if w and n >= MIN_WORDS
    )
    return next(compared, len(entry_words) - 1) + 1


ELSEWHERE: Final = 0.05
"""Share of each other's word 4-grams under which a page and an entry's text have next to
nothing in common (`elsewhere`)."""


def elsewhere(holds: float, clean: float) -> bool:
    """Whether a failed comparison found a page that is not the entry's article at all: the
    text holds under ELSEWHERE of the page's extraction and the page under ELSEWHERE of the
    text (a consent or paywall interstitial, an error page served as a success, a redirect to
    the home page, an extraction that took the wrong block). It says nothing of the feed: in a
    proven full-text feed the entry is stored from its text (`stands_unchecked`) and the
    comparison stays due, as after a page that failed in passing, instead of counting as a
    miss; such a page's metadata is not the entry's either. (Of a text compared at all: one of
    fewer than MIN_WORDS words measures 0 against any page.)"""
    return holds < ELSEWHERE and clean < ELSEWHERE


def other_page(state: FullText, feed_text: str, n: int, c: Comparison, another: bool) -> bool:
    """Whether an entry whose own text was compared with its page, and failed, is stored from
    that text, without the page's metadata, because the page is not its article at all; the
    comparison then counts neither way. In a proven full-text feed, where the page shares next
    to nothing with the text (`elsewhere`) and the text would have been stored unchecked
    (`stands_unchecked`); in any feed, where the page is another by the rule for every entry
    (`another`: `ingest.article.another_page`, titled otherwise and showing next to none of
    the entry's words), so that a consent wall met while a feed is probed is no evidence and
    the entry keeps its text. `n`: the text's word count."""
    if c.same:
        return False
    proven = state.on and elsewhere(c.holds, c.clean) and stands_unchecked(state, feed_text, n)
    return proven or another


def trusted(state: FullText, mode: TextMode, n: int) -> bool:
    """Whether an entry whose own text stands for `n` words of article (`article_words`) is
    stored from that text without its page, re-checks aside: in `feed` mode, and in `auto`
    mode once the feed is proven full-text, unless the text is under SHRUNK of the feed's
    shortest articles. The polls' rule (`wants_pages`, which adds the re-checks of new
    entries), their updates' and the backfill's."""
    if n < MIN_WORDS or not trusts_feed(state, mode):
        return False
    return mode == "feed" or n >= SHRUNK * state.words


def trusts_feed(state: FullText, mode: TextMode) -> bool:
    """Whether the feed's entries may be stored from their own text at all (`trusted`): in
    `feed` mode, and in `auto` mode once it is proven full-text."""
    return mode == "feed" or (mode == "auto" and state.on)


def stands_unchecked(state: FullText, feed_text: str, n: int) -> bool:
    """Whether an entry of a proven full-text feed whose page was fetched to be compared, and
    failed, is stored from its own text all the same (as it would have been had it not been
    the one re-checked): not where the text ends like an excerpt or is under SHRUNK of the
    feed's shortest articles, whose pages were fetched because the text may not be the
    article. `n`: the text's word count."""
    return state.on and not looks_cut(feed_text) and n >= MIN_WORDS and n >= SHRUNK * state.words


def still_due(state: FullText) -> FullText:
    """A full-text feed's state with a comparison still due: its next entry is compared (a
    re-check's page failed in passing, and nothing was compared after it)."""
    return replace(state, since_check=RECHECK_EVERY - 1) if state.on else state


def compare(
    feed_text: str, page_text: str, on_page: float | None = None
) -> tuple[bool, float, float]:
    """Whether the feed's text is the article the page shows: (verdict, share of the page's
    extracted 4-grams it holds, share of its own 4-grams the page holds). `on_page` is
    `held_by_page` of the feed's text and the page, where it was measured."""
    feed_words, page_words = words(feed_text), words(page_text)
    if len(feed_words) < MIN_WORDS or not page_words:
        return False, 0.0, 0.0
    holds = Reference(page_text).held_by(feed_words)
    clean = Reference(feed_text).held_by(page_words)
    if on_page is not None and clean >= LOOSE:
        clean = max(clean, on_page)
    return holds >= HOLDS and clean >= CLEAN, holds, clean


def judge(
    feed_text: str, page_text: str, on_page: float | None = None
) -> tuple[bool, float, float] | None:
    """`compare` of an entry's text with its page, or None where the entry takes no part: a
    text that ends like an excerpt is compared only where its page ends where it does
    (`ends_alike`), and then with the extraction alone."""
    cut = looks_cut(feed_text)
    if cut and not ends_alike(feed_text, page_text):
        return None
    return compare(feed_text, page_text, None if cut else on_page)


def measure(
    feed_text: str,
    page_text: str,
    visible_text: str | None = None,
    main_text: str | None = None,
) -> Comparison | None:
    """`judge` and, where the text is not the article, `stands`, in one: what the pipeline
    decides an entry by. `visible_text`, the page's whole visible text, may vouch for a text
    that is not an excerpt (`held_by_page`), and `main_text`, its main content
    (`ingest.extract.read_page`), for one that holds all of a poor extraction (`dominates`);
    None where they were not read. CPU work in the length of the texts: the workers run it
    beside the extraction (`ingest.workers.tasks`)."""
    cut = looks_cut(feed_text)
    on_page = in_main = None
    if visible_text is not None and not cut:
        on_page = held_by_page(feed_text, visible_text)
    verdict = judge(feed_text, page_text, on_page)
    if verdict is None:
        return None
    same, holds, clean = verdict
    if main_text is not None and not cut and not same:
        in_main = held_by_page(feed_text, main_text)
    return Comparison(
        same,
        holds,
        clean,
        stands=not same and stands(feed_text, page_text, holds, clean, in_main),
    )


def _shortest(floor: int, n: int) -> int:
    """The length of the feed's shortest articles after one more of `n` words: a shorter one
    lowers it at once, a longer one raises it by DRIFT of the difference, so that one brief
    long ago does not leave the bar so low that summaries slip under it for good."""
    if not floor or n < floor:
        return n
    return floor + int(DRIFT * (n - floor))


def held_by_page(feed_text: str, visible_text: str) -> float:
    """The share of the feed text's word 4-grams anywhere in the page's visible text."""
    return Reference(feed_text).held_by(visible_text)


def observe(
    state: FullText, comparisons: Sequence[tuple[bool, float, float, int, bool]]
) -> FullText:
    """The state after this poll's comparisons, in feed order (verdict, holds, clean, the feed
    text's word count, whether a failed one `stands`), from the state `wants_pages` planned
    them in. A failed comparison whose text stands is no evidence while the feed is not proven
    full-text (the extraction kept a related story's teaser or lost a paragraph as often as
    the feed's text fell short); once it is, it counts as a miss, so that a feed turned to
    excerpts of three quarters of the article switches back. A full-text feed's count
    since the last comparison is `wants_pages`'s, which placed the re-checks: the entries it
    stored from the feed after the last of them still count towards the next one. A failed
    comparison that leaves the feed full-text has its next entry compared, unless a later
    comparison of the same poll matched (that settled it)."""
    counted = state.since_check if state.on else 0
    for same, holds, clean, n, stood in comparisons:
        if stood and not same and not state.on:
            continue
        evidence = (
            f"feed text holds {holds:.0%} of the page, the page {clean:.0%} of it "
            f"({n} words): {'the article' if same else 'not the article'}"
        )
        # Counted no further than they decide (CONFIRM matches, MISSES misses): a feed whose
        # entries are never its articles has every one compared, and its row holds a smallint.
        if same:
            streak = min(max(state.streak, 0) + 1, CONFIRM)
            since = counted if state.on else 0
            state = replace(
                state,
                on=state.on or streak >= CONFIRM,
                streak=streak,
                since_check=since,
                words=_shortest(state.words, n),
                evidence=evidence,
            )
        else:
            streak = max(min(state.streak, 0) - 1, -MISSES)
            on = state.on and streak > -MISSES
            # Evidence gathered before the feed stopped being its article is not kept.
            words = state.words if on else 0
            # A full-text feed's next entry is compared too: it tells a feed that changed
            # (switched back after it) from a page the extraction got wrong, before another
            # RECHECK_EVERY entries are stored from the feed on the strength of one miss.
            since = RECHECK_EVERY - 1 if on else state.since_check
            state = replace(
                state, on=on, streak=streak, since_check=since, words=words, evidence=evidence
            )
    return state
