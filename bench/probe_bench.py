"""Pages a full-text feed's first poll fetches, by rule: the full-text site of `ingest_bench.py
--full-text` (each AEB page's human-written body as its entry's `content:encoded`), its first
poll replayed with `ingest.fulltext`'s rules, each entry compared with its page as a worker
compares them. Also on sites built from the development or the validation pages alone (split
by site, as `quality_bench.py` splits them), so that a rule is chosen on the first and checked
on the second.

What it measures and how to run it: bench/README.md (`probe_bench.py`)."""

import argparse
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ingest_bench import buckets, feed_item
from lib import web
from lib.corpora import aeb_bodies, aeb_ids, aeb_page, find_aeb, site_key, site_part

from ingest.coverage import words
from ingest.documents.feeds import parse_feed
from ingest.fulltext import (
    HOLDS,
    MIN_WORDS,
    article_words,
    capped,
    looks_cut,
    observe,
    poll_caps,
    probe,
    shrunk,
    wants_pages,
)
from ingest.types import Comparison, FullText, OwnText, TextMode
from ingest.workers.tasks import extract_page, own_texts

Compared = tuple[bool, float, float, int, bool]


@dataclass(frozen=True)
class Entry:
    page: str
    own: OwnText
    comparison: Comparison | None
    cut: bool = False
    """The entry's text is its article cut short, by more than the comparison lets pass (it
    holds under HOLDS of the article's words)."""


@dataclass(frozen=True)
class Rules:
    name: str
    stands_neutral: bool
    """A failed comparison whose text stands is no evidence while the feed is probed."""
    shortest_first: bool
    """Short entries of a proven feed checked shortest first, one at a time."""
    caps: bool = True
    """Texts as long as the length at which the feed's texts pile up are fetched as excerpts
    are (`ingest.fulltext.with_caps`, 2026-12-07)."""
    probes: str = "spanned"
    """Which entries a probe round takes: "feed order" (the first ones, the rule before
    2026-12-07), "shortest" (the poll's shortest, then the first others) or "spanned" (its
    two longest, then its shortest: `ingest.fulltext.probe`)."""
    planned: bool = False
    """The poll that proves a feed plans its other entries with the bar for short entries at
    its shortest entry, where the probes proved that entry (`planned`; tried and not taken,
    2026-12-07)."""


RULES = (
    Rules(
        "before (each miss counts; short entries all at once)", False, False, False, "feed order"
    ),
    Rules("a text that stands is no evidence while probed", True, False, False, "feed order"),
    Rules("short entries shortest first", False, True, False, "feed order"),
    Rules("both, probes in feed order", True, True, False, "feed order"),
    Rules("both, the shortest among the probes", True, True, False, "shortest"),
    Rules("both, the two longest and the shortest", True, True, False),
    Rules("those, and caps where texts pile up (the pipeline's)", True, True),
    Rules("those, the proving poll planned on its shortest", True, True, planned=True),
    Rules("caps, the shortest among the probes", True, True, True, "shortest"),
)


def planned(before: FullText, after: FullText, proved: Sequence[int], shortest: int) -> FullText:
    """The state the rest of a poll is planned with once its probes are done, `before` them and
    `after`, under the rule tried on 2026-12-07: where they proved the feed in this poll and
    proved its shortest entry with text of its own (`shortest` words; `proved`, the word
    counts of the entries they found to be the article), the bar for short entries stands at
    that entry, whatever its place in the feed; the state carried to later polls keeps the
    comparisons' length (`observe`)."""
    if before.on or not after.on or not proved or min(proved) > shortest:
        return after
    return replace(after, words=min(after.words, shortest))


def first_probes(state: FullText, mode: TextMode, entry_words: Sequence[int]) -> list[int]:
    """A probe round's entries taken in feed order: as many as `ingest.fulltext.probe` takes."""
    wanted = len(probe(state, mode, entry_words))
    return [i for i, n in enumerate(entry_words) if n >= MIN_WORDS][:wanted]


def shortest_probes(state: FullText, mode: TextMode, entry_words: Sequence[int]) -> list[int]:
    """A probe round's entries with the poll's shortest among them, the rest in feed order."""
    wanted = len(probe(state, mode, entry_words))
    texts = [i for i, n in enumerate(entry_words) if n >= MIN_WORDS]
    if not wanted:
        return []
    shortest = min(texts, key=lambda i: entry_words[i])
    return sorted([shortest, *[i for i in texts if i != shortest][: wanted - 1]])


PROBES = {"feed order": first_probes, "shortest": shortest_probes, "spanned": probe}


def feed_entries(
    pages: Sequence[str],
    bodies: dict[str, str],
    url: dict[str, str],
    cut: tuple[int, str] | None = None,
    summaries: float = 0.0,
    seed: int = 0,
) -> list[Entry]:
    """A feed of `pages` as the site serves it, parsed and measured as the pipeline does, each
    entry compared with its page's extraction in the worker's function. With `cut`, each
    entry's text is its article cut to `cut` (so many words or characters), the cut not marked.
    With `summaries`, that share of the entries (chosen by a hash of the entry) carry a
    summary instead: their article's first 60 to 200 words, unmarked."""
    start = datetime(2025, 8, 11, tzinfo=UTC)
    items, cuts = [], []
    for n, page in enumerate(pages):
        key = page.split("~")[0]
        chosen = summary_of(page, summaries, seed)
        cuts.append(cut if chosen is None else (chosen, "words"))
        body = bodies[key]
        if cuts[-1] is not None:
            length, unit = cuts[-1]
            body = CUTTERS[unit](body, length)
        link = f"http://bench.invalid/news/{page}.html"
        items.append(feed_item(page, link, start - timedelta(minutes=37 * n), {key: body}))
    xml = web.rss("Bench feed", "http://bench.invalid/", items)
    parsed = parse_feed(xml, "http://bench.invalid/feed", {})
    owns = own_texts(list(parsed.entries))
    entries = []
    for page, own, made in zip(pages, owns, cuts, strict=True):
        key = page.split("~")[0]
        if (key, made) not in COMPARED:  # a page's copies carry the same text
            ex = extract_page(AEB_HTML[key], url[key], own.text) if own.text else None
            COMPARED[key, made] = ex.comparison if ex is not None else None
        whole = len(words(bodies[key])) if made is not None else 0
        entries.append(Entry(page, own, COMPARED[key, made], own.words < HOLDS * whole))
    return entries


def summary_of(page: str, share: float, seed: int = 0) -> int | None:
    """The length in words of the summary that entry `page` carries on a site where `share` of
    the entries carry one, or None: chosen by a hash of the entry (and of `seed`, past the
    first), the same in every run."""
    key = f"{seed}:{page}" if seed else page
    h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    if (h % 1000) >= share * 1000:
        return None
    return 60 + (h // 1000) % 141


def first_chars(text: str, n: int) -> str:
    """The first `n` characters of `text` back to the end of a word, its paragraphs kept: an
    article cut short at a length in characters, unmarked."""
    if len(text) <= n:
        return text
    return text[:n].rsplit(maxsplit=1)[0] if " " in text[:n] else text[:n]


def first_words(text: str, n: int) -> str:
    """The first `n` words of `text`, its paragraphs kept: an article cut short, unmarked."""
    kept, left = [], n
    for line in text.split("\n"):
        line_words = line.split()
        if len(line_words) >= left:
            kept.append(" ".join(line_words[:left]))
            break
        kept.append(line)
        left -= len(line_words)
    return "\n".join(kept)


def first_paragraphs(text: str, n: int) -> str:
    """The first `n` paragraphs of `text`: an article cut short in its HTML, at a length that
    varies with its paragraphs', unmarked."""
    return "\n".join([line for line in text.split("\n") if line.strip()][:n])


CUTTERS = {"words": first_words, "characters": first_chars, "paragraphs": first_paragraphs}


@dataclass(frozen=True)
class Poll:
    pages: int
    state: FullText
    """The feed's state after the poll, every fetched page's comparison counted."""
    unchecked: list[Entry]
    """Entries stored from their text without their page."""


def first_poll(entries: Sequence[Entry], rules: Rules, state: FullText | None = None) -> Poll:
    """A poll of a feed whose new entries are `entries` (the first, unless `state` is what an
    earlier one left), in `ingest.pipeline`'s order: probe rounds, then short entries, then
    `wants_pages`, whose pages are compared too."""
    mode: TextMode = "auto"
    state = state or FullText()
    if rules.caps:
        state = poll_caps(state, [e.own for e in entries])
    counts = [article_words(e.own.text, mode, e.own.words, state) for e in entries]
    caps = state
    rest, fetched = list(range(len(entries))), set()
    checks: list[Compared] = []
    start = state

    def round_of(
        indices: list[int], base: FullText, so_far: list[Compared], proved: list[int] | None = None
    ) -> FullText:
        for i in indices:
            fetched.add(i)
            c = entries[i].comparison
            # As the pipeline: an excerpt proves nothing, a capped text is not compared.
            text = entries[i].own.text
            if c is not None and not looks_cut(text) and not capped(caps, text):
                so_far.append((c.same, c.holds, c.clean, entries[i].own.words,
                               c.stands and rules.stands_neutral))  # fmt: skip
                if proved is not None and c.same:
                    proved.append(entries[i].own.words)
        return observe(base, so_far)

    def plan(state: FullText) -> FullText:
        return planned(before, state, proved, shortest) if rules.planned else state

    choose = PROBES[rules.probes]
    before, proved = state, list[int]()
    shortest = min((n for n in counts if n >= MIN_WORDS), default=0)
    while first := choose(state, mode, [counts[i] for i in rest]):
        state = round_of([rest[j] for j in first], state, [], proved)
        rest = [i for i in rest if i not in fetched]
    if rules.shortest_first:
        start = state
        while short := shrunk(plan(state), mode, [counts[i] for i in rest]):
            state = round_of([rest[j] for j in short], start, checks)
            rest = [i for i in rest if i not in fetched]
    wanted, planning = wants_pages(plan(state), mode, [counts[i] for i in rest])
    state = replace(planning, words=state.words)
    unchecked = [entries[i] for i, want in zip(rest, wanted, strict=True) if not want]
    state = round_of([i for i, want in zip(rest, wanted, strict=True) if want], state, [])
    return Poll(len(fetched), state, unchecked)


def polled_twice(feeds: Sequence[Sequence[Entry]], rules: Rules) -> tuple[list[Poll], list[Poll]]:
    """Each feed polled as `ingest_bench.py --later` does: its older half, then its newer half
    with the state the first poll left."""
    first = [first_poll(entries[len(entries) // 2 :], rules) for entries in feeds]
    later = [first_poll(entries[: len(entries) // 2], rules, poll.state)
             for entries, poll in zip(feeds, first, strict=True)]  # fmt: skip
    return first, later


AEB_HTML: dict[str, bytes] = {}
COMPARED: dict[tuple[str, tuple[int, str] | None], Comparison | None] = {}
CUTS = (
    (250, "words"),
    (400, "words"),
    (700, "words"),
    (2000, "characters"),
    (3, "paragraphs"),
    (6, "paragraphs"),
)
"""Lengths at which the feeds of the cut sites cut their articles."""
SUMMARIES = (0.1, 0.25)
"""Shares of the entries that carry a summary on the summary sites."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, default=50)
    p.add_argument("--pages", type=int, default=167)
    p.add_argument("--copies", type=int, default=6)
    p.add_argument(
        "--seeds", type=int, default=1, help="choices of the entries that carry a summary"
    )
    args = p.parse_args()
    aeb = find_aeb(None)
    bodies = aeb_bodies(aeb)
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    url = {k: v.get("url") or f"https://aeb{k}.invalid/" for k, v in truth.items()}
    ids = aeb_ids(aeb, args.pages, args.copies)
    for key in {i.split("~")[0] for i in ids}:
        AEB_HTML[key] = aeb_page(aeb, key)
    print(f"the full-text site of ingest_bench.py --feeds {args.feeds} --pages {args.pages}"
          f" --copies {args.copies} --full-text, first poll replayed")  # fmt: skip
    for part in (None, "dev", "val"):
        chosen = [i for i in ids if part in (None, site_part(site_key(url[i.split("~")[0]])))]
        feeds = buckets(chosen, args.feeds if part is None else args.feeds // 2)
        measured = [feed_entries(pages, bodies, url) for pages in feeds]
        label = "all pages" if part is None else f"{part} pages only"
        print(f"\n{label}: {len(feeds)} feeds of {len(chosen) // len(feeds)} entries or so")
        for rules in RULES:
            pages = [first_poll(entries, rules).pages for entries in measured]
            dist = dict(sorted(Counter(pages).items()))
            print(f"  {rules.name:56s} {sum(pages):4d} pages, at most {max(pages):2d},"
                  f" {sum(n > 5 for n in pages):2d} feeds over 5  {dist}")  # fmt: skip
    for share in SUMMARIES:
        print(f"\nsites where {share:.0%} of the entries carry a summary in place of their"
              " article (its first 60 to 200 words, unmarked), each feed polled as --later does;"
              f" summed over {args.seeds} choice(s) of the entries:")  # fmt: skip
        for part in (None, "dev", "val"):
            chosen = [i for i in ids if part in (None, site_part(site_key(url[i.split("~")[0]])))]
            feeds = buckets(chosen, args.feeds if part is None else args.feeds // 2)
            sites = [[feed_entries(pages, bodies, url, summaries=share, seed=seed)
                      for pages in feeds] for seed in range(args.seeds)]  # fmt: skip
            made = sum(e.cut for measured in sites for entries in measured for e in entries)
            print(f"  {'all pages' if part is None else f'{part} pages only'}: {made} summaries"
                  " shorter than a fifth off")  # fmt: skip
            for rules in RULES[3:]:
                pages = stored = 0
                for measured in sites:
                    first, later = polled_twice(measured, rules)
                    pages += sum(p.pages for p in (*first, *later))
                    stored += sum(e.cut for p in (*first, *later) for e in p.unchecked)
                print(f"    {rules.name:54s} {pages:5d} pages, {stored:4d} summaries stored for"
                      " articles")  # fmt: skip
    feeds = buckets(ids, args.feeds)
    for cut in (None, *CUTS):
        measured = [feed_entries(pages, bodies, url, cut) for pages in feeds]
        if cut is None:
            print("\nthe whole site polled as --later does: each feed's older half, then its newer"
                  " half:")  # fmt: skip
            for rules in RULES[3:]:
                first, later = polled_twice(measured, rules)
                print(f"  {rules.name:56s} {sum(p.pages for p in first):4d} + "
                      f"{sum(p.pages for p in later):4d} pages")  # fmt: skip
            continue
        cut_entries = sum(e.cut for entries in measured for e in entries)
        total = sum(map(len, measured))
        print(f"\nthe same site, each entry's text its article's first {cut[0]} {cut[1]}, unmarked"
              f" ({cut_entries} of {total} entries cut by more than a fifth), polled as"
              " --later does: each feed's older half, then its newer half:")  # fmt: skip
        for rules in RULES[3:]:
            first, later = polled_twice(measured, rules)
            wrong = [sum(e.cut for e in p.unchecked) for p in (*first, *later)]
            print(f"  {rules.name:56s} {sum(p.pages for p in first):4d} + "
                  f"{sum(p.pages for p in later):4d} pages,"
                  f" {sum(p.state.on for p in first):2d} then"
                  f" {sum(p.state.on for p in later):2d} feeds proven,"
                  f" {sum(wrong):3d} of them stored for articles")  # fmt: skip


if __name__ == "__main__":
    main()
