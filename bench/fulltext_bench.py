"""Full-text feeds: how the rules of `ingest.fulltext` judge feed texts of known shape against
real pages. Every page of the AEB and of Readability's test pages with a human-written article
body is given feed texts made from that body (the whole article, its first two thirds, half and
quarter cut at a sentence's end; the article and its half also ending in an ellipsis) and
measured against the
project's extraction of the page, as a feed entry would be. Reported by corpus and by part
(dev/val, split by site): the share of each kind of text that the comparison takes for the
article, that an entry of a full-text feed stores from the feed (matched, or `stands` after a
failed comparison, or a page found to be `elsewhere`), of those, the ones further from the
article than the extraction they were stored instead of, for the texts ending in an ellipsis,
that `ends_alike` lets take part, and the failed comparisons that find the page `elsewhere`
(sharing next to nothing with the text: not the entry's article).

What it measures and how to run it: bench/README.md (`fulltext_bench.py`)."""

import argparse
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable

import lxml.html
from lib import corpora as c
from lib.report import header
from trafilatura.utils import decode_file

from ingest.article import KEY_WORDS, SHOWN, another_page, key_words, names_entry, shows_little
from ingest.coverage import words
from ingest.errors import ExtractError
from ingest.extract import read_page
from ingest.extract.page import visible_text
from ingest.fulltext import CLEAN, MIN_WORDS, elsewhere, looks_cut, measure
from ingest.normalize import clean_text
from ingest.types import Extracted, ParsedEntry

SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def first(text: str, share: float) -> str:
    """The text's first sentences up to `share` of its words (at least one sentence)."""
    total, kept, out = len(words(text)), 0, []
    for sentence in SENTENCE_END.split(text):
        if out and kept + len(words(sentence)) > share * total:
            break
        out.append(sentence)
        kept += len(words(sentence))
    return " ".join(out)


KINDS: dict[str, Callable[[str], str]] = {
    "article": lambda t: t,
    "article…": lambda t: t + "…",
    "first 2/3": lambda t: first(t, 2 / 3),
    "first half": lambda t: first(t, 0.5),
    "first half…": lambda t: first(t, 0.5) + " …",
    "first quarter": lambda t: first(t, 0.25),
}
MEASURES = ("compare", "stored", "worse", "ends_alike", "elsewhere")


def f1(sample: c.Sample, text: str) -> float:
    """The text's shingle F1 against the page's human-written body."""
    s = c.score_text(sample, text)
    return s.tp / (s.tp + (s.fp + s.fn) / 2) if s.tp else 0.0


def decide(feed_text: str, page_text: str, visible: str, main: str) -> dict[str, bool]:
    """Whether the text is stored from the feed, as `ingest.pipeline` decides it for an entry
    of a full-text feed whose failed comparison leaves it full-text (`ingest.fulltext.measure`:
    `judge`, then `stands`)."""
    c = measure(feed_text, page_text, visible, main)
    if c is None:
        return dict.fromkeys(MEASURES, False)
    other = not c.same and not c.stands and elsewhere(c.holds, c.clean)
    return {
        "compare": c.same,
        "stored": c.same or c.stands or (other and not looks_cut(feed_text)),
        "ends_alike": True,
        "elsewhere": other,
    }


def worse(sample: c.Sample, feed_text: str, page_text: str) -> bool:
    """Whether the feed text, stored, is further from the article than the page's extraction
    (shingle F1 against the human-written body)."""
    return f1(sample, feed_text) < f1(sample, page_text)


def entry_of(body: bytes, url: str) -> ParsedEntry:
    """The feed entry a page at `url` stands for: that link, its title (og:title, else
    <title>) and, for a summary, its description (og:description, else the description meta
    tag)."""
    try:
        doc = lxml.html.fromstring(decode_file(body))
    except Exception:
        return ParsedEntry(None, None)

    def meta(*names: str) -> str | None:
        for name in names:
            for el in doc.xpath(f"//meta[@property='{name}' or @name='{name}']"):
                if value := (el.get("content") or "").strip():
                    return str(value)
        return None

    title = doc.find(".//title")
    return ParsedEntry(
        None,
        url,
        title=meta("og:title") or (title.text_content().strip() if title is not None else None),
        summary=meta("og:description", "description"),
    )


OTHERS = 5
"""Pages of other sites each entry is measured against (fixed seed)."""


def another_table(pages: list[tuple[c.Sample, ParsedEntry, Extracted]]) -> None:
    """`ingest.article.another_page` by corpus and part: of the entries it can judge (a
    title on both sides, five key words or more), how many of their own pages it takes for
    another (wrongly), and how many pages of other sites of the same part (rightly)."""
    print(
        f"Another page (`ingest.article.another_page`, SHOWN {SHOWN:.0%}): each page's title"
        " and description stand for a feed entry's title and summary; judged: entries with"
        " five key words or more; own page: taken for another page (wrongly); titles aside:"
        " own pages that do not name their address as canonical and whose text shows under"
        " SHOWN of the key words, the titles left out (a"
        " headline rewritten for the feed, sharing no word of four letters or more with the"
        " page's, would be taken for another page so often); other sites:"
        f" {OTHERS} pages of other sites of the same part each, taken for another (rightly).\n"
    )
    print(f"  {'':<24}{'own page':>22}{'titles aside':>22}{'other sites':>24}")
    rng = random.Random(0)
    for corpus in sorted({s.corpus for s, _, _ in pages}):
        for part in ("dev", "val"):
            some = [p for p in pages if p[0].corpus == corpus and p[0].part == part]
            own = [another_page(e, x, s.url) for s, e, x in some if judged(e)]
            little = [
                not names_entry(e, x, s.url) and shows_little(e, x.text)
                for s, e, x in some
                if judged(e)
            ]
            other = [
                another_page(e, y[2], y[0].url)
                for s, e, _ in some
                if judged(e)
                for y in rng.sample(some, min(OTHERS, len(some)))
                if y[0].site != s.site
            ]
            cells = [
                f"{sum(own):>5}/{len(own):<5} {sum(own) / max(len(own), 1):>5.1%}",
                f"{sum(little):>5}/{len(little):<5} {sum(little) / max(len(little), 1):>5.1%}",
                f"{sum(other):>6}/{len(other):<6} {sum(other) / max(len(other), 1):>5.1%}",
            ]
            print(f"  {corpus + ' ' + part:<24}" + "".join(f"{x:>22}" for x in cells))
    print()


def judged(entry: ParsedEntry) -> bool:
    """Whether `another_page` can judge an entry at all (the page's side aside)."""
    return bool(entry.title) and len(key_words(entry.summary)) >= KEY_WORDS


def main() -> None:
    p = argparse.ArgumentParser(prog="fulltext_bench.py", description=__doc__)
    p.add_argument(
        "--corpora",
        default="aeb,readability",
        help="comma-separated corpora (trafilatura-eval: the another-page table only)",
    )
    args = p.parse_args()
    header("fulltext_bench.py", subprocesses=False)
    samples = c.load_samples(args.corpora.split(","))
    started = time.perf_counter()
    # (corpus, part, kind, measure) -> [accepted, measured]
    tally: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    skipped = 0
    pages: list[tuple[c.Sample, ParsedEntry, Extracted]] = []
    for sample in samples:
        try:
            extracted, main = read_page(sample.body, sample.url)
            page_text = extracted.text
            pages.append((sample, entry_of(sample.body, sample.url), extracted))
        except ExtractError:
            page_text = main = ""
        truth = clean_text(sample.truth)
        if len(words(truth)) < 2 * MIN_WORDS:
            skipped += 1
            continue
        visible = visible_text(sample.body)
        for kind, make in KINDS.items():
            feed_text = make(truth)
            if len(words(feed_text)) < MIN_WORDS:
                continue
            decided = decide(feed_text, page_text, visible, main)
            decided["worse"] = decided["stored"] and worse(sample, feed_text, page_text)
            for name, ok in decided.items():
                if name == "ends_alike" and not kind.endswith("…"):
                    continue
                cell = tally[(sample.corpus, sample.part, kind, name)]
                cell[0] += ok
                cell[1] += 1
    print(
        f"Full-text rules on {len(samples) - skipped} pages ({skipped} with a body under"
        f" {2 * MIN_WORDS} words left out), {time.perf_counter() - started:.0f} s; share of the"
        f" feed texts each rule accepts (CLEAN {CLEAN:.0%} of the text on the page).\n"
        "Per comparison, each on its own. compare: the article (three in a row stop the"
        " fetching; an excerpt's match never counts); stored: stored from the feed by an entry"
        " of a full-text feed (the comparison's match, or `stands` after a failed one);"
        " worse: stored, and further from the article (shingle F1 against its human-written"
        " body) than the page's extraction it was stored instead of; ends_alike: a text ending"
        " in an ellipsis that takes part at all; elsewhere: a failed comparison that finds"
        " the page shares next to nothing with the text (stored from the feed, no miss).\n"
    )
    kinds = list(KINDS)
    for corpus in sorted({k[0] for k in tally}):
        for part in ("dev", "val"):
            print(f"{corpus} {part}")
            print(f"  {'':<15}" + "".join(f"{m:>16}" for m in MEASURES))
            for kind in kinds:
                cells = []
                for m in MEASURES:
                    hit, n = tally.get((corpus, part, kind, m), [0, 0])
                    cells.append(f"{hit:>5}/{n:<4} {hit / n:>4.0%}" if n else f"{'-':>16}")
                print(f"  {kind:<15}" + "".join(f"{x:>16}" for x in cells))
            print()
    another_table(pages)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
