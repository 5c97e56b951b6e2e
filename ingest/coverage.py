"""How much of one text another holds, by word 4-grams. Pure: the measure behind the guard that
notices when cleaning a page threw its article away (see `ingest.extract`)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import islice

# Chinese and Japanese do not separate words with spaces: there every character counts as one
# word (a whole sentence would otherwise be a single `\w+` run).
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _class(first: int, last: int, member: Callable[[str], bool]) -> str:
    """The body of a character class: the characters from `first` to `last` that are `member`,
    as ranges."""
    spans: list[list[int]] = []
    for code in range(first, last + 1):
        if member(chr(code)):
            if spans and spans[-1][1] == code - 1:
                spans[-1][1] = code
            else:
                spans.append([code, code])
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in spans)


def _mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


# Thai and Lao do not separate words with spaces either, and their vowel and tone signs are
# combining marks, which `\w` does not match: every letter (or digit) with the signs above and
# below it counts as one word, as a Chinese character does. As `\w+` runs broken at every sign,
# their words were now whole phrases, now a letter, and a lightly edited copy of a Thai story
# lost most of its shingles. So do Tibetan (which marks its syllables with a tsheg, not its
# words), Myanmar and Khmer, whose vowels, medials and stacked letters (Khmer's coeng,
# Tibetan's subjoined letters) are combining marks too: their `\w+` runs were letters with
# their signs dropped (`ខ្មែរ` was `ខ`, `ម`, `រ`), and a title in them had no key word. So do
# Javanese and Balinese script, written without spaces too, whose vowels, medials and virama
# (Javanese's pangkon, Balinese's adeg-adeg) are combining marks (`ꦥꦿꦧꦺꦴꦮꦺꦴ` was `ꦥ`, `ꦧ`, `ꦮ`).
_THAI_LAO = (0x0E00, 0x0EFF)
_CLUSTERED_SCRIPTS = (
    _THAI_LAO,
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer Symbols
    (0x1B00, 0x1B7F),  # Balinese
    (0xA980, 0xA9DF),  # Javanese
    (0xA9E0, 0xA9FF),  # Myanmar Extended-B
    (0xAA60, 0xAA7F),  # Myanmar Extended-A
)
_CLUSTERED = "".join(_class(*span, lambda c: c.isalnum()) for span in _CLUSTERED_SCRIPTS)
# The scripts of India and Sri Lanka (Devanagari, Bengali, Gurmukhi, Gujarati, Oriya, Tamil,
# Telugu, Kannada, Malayalam, Sinhala) write most vowels, the virama and nasal signs as
# combining marks too, between and after the letters of a spaced word: a word goes on through
# them (`दिल्ली` one word, not `द`, `ल`, `ल`), as it does in Thai and Lao; so does a zero-width
# joiner or non-joiner after a sign (a virama's: `ශ්‍රී`, `र्‍य`), which chooses the conjunct's form.
_INDIC = (0x0900, 0x0DFF)
_MARKS = "".join(_class(*span, _mark) for span in (_INDIC, *_CLUSTERED_SCRIPTS))
_LETTERS = f"[^\\W{_UNSPACED}{_CLUSTERED}]"
_WORD = re.compile(
    f"[{_UNSPACED}]|[{_CLUSTERED}][{_MARKS}]*"
    f"|{_LETTERS}+(?:[{_MARKS}][{_MARKS}\u200c\u200d]*{_LETTERS}*)*"
)

UNSPACED_RUNS = re.compile(f"(?P<han>[{_UNSPACED}]+)|(?P<thai>(?:[{_CLUSTERED}][{_MARKS}]*)+)")
"""The stretches of a text in scripts that put no spaces between words: Chinese or Japanese
characters (group `han`), Thai, Lao, Khmer, Myanmar, Tibetan, Javanese or Balinese letters with
their signs (group `thai`)."""


# The characters `_WORD` reads otherwise than `\w+` does: Chinese and Japanese, and the blocks
# of the scripts of India and of those whose letters are words with their signs
# (`_CLUSTERED_SCRIPTS`), letters and signs alike. A text with none of them has `\w+` runs for
# words, which re finds in two thirds of the time: a pattern of alternatives gets no quick look
# for where a match may start.
_READ_APART = re.compile(
    f"[{_UNSPACED}"
    + "".join(f"{chr(first)}-{chr(last)}" for first, last in (_INDIC, *_CLUSTERED_SCRIPTS))
    + "]"
)
_PLAIN_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The text's words, case-folded: `\\w+` runs (as the AEB scores extraction) with the
    combining signs of the scripts of India within and after them, each Chinese or Japanese
    character on its own, and each Thai, Lao, Khmer, Myanmar, Tibetan, Javanese or Balinese
    letter with its signs."""
    folded = text.casefold()
    return (_WORD if _READ_APART.search(folded) else _PLAIN_WORD).findall(folded)


def has_words(text: str, count: int) -> bool:
    """Whether the text holds at least `count` words (`words`), read no further than that."""
    return sum(1 for _ in islice(_WORD.finditer(text), count)) >= count


def _grams(tokens: list[str]) -> Iterable[tuple[str, ...]]:
    """The word 4-grams of `tokens` in order (a text of fewer words is one gram)."""
    if len(tokens) < 4:
        return [tuple(tokens)] if tokens else []
    return zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False)


def _shingles(tokens: list[str]) -> Counter[tuple[str, ...]]:
    return Counter(_grams(tokens))


class Reference:
    """A text to measure others against, split into word 4-grams once."""

    __slots__ = ("_shingles", "_total", "words")

    def __init__(self, text: str) -> None:
        tokens = words(text)
        self.words = len(tokens)
        self._shingles = _shingles(tokens)
        self._total = self._shingles.total()

    def held_by(self, text: str | list[str]) -> float:
        """The share of this reference's word 4-grams (counted with repeats, so that a
        paragraph said twice weighs twice) that `text` (or its `words`) holds too: 1.0 when
        it holds all of it (or the reference has no words), 0.0 when it holds none."""
        if not self._total:
            return 1.0
        tokens = words(text) if isinstance(text, str) else text
        # The text's 4-grams, each counted while the reference has one of it left: the total
        # of `self._shingles & _shingles(tokens)`, without the text's Counter and `__and__`'s
        # loop over it (a third of the time).
        left = dict(self._shingles)
        held = 0
        for gram in _grams(tokens):
            count = left.get(gram)
            if count:
                left[gram] = count - 1
                held += 1
        return held / self._total


def coverage(text: str, reference: str) -> float:
    """`Reference(reference).held_by(text)`."""
    return Reference(reference).held_by(text)


def headline_within(heading: str, title: str) -> bool:
    """Whether a heading is the title's headline: four in five of its words are in the title,
    and it has three words or more, or half of the title's ("Politik" is a section label over
    "Politik: Merkel tritt zurück", not its headline), and a third of the title's at least (a
    platform's logo in an <h1>, "痞客邦 PIXNET", is the last part of a blog post's title, not
    its headline)."""
    words_h, words_t = words(heading), words(title)
    if len(words_h) < 3 and 2 * len(words_h) < len(words_t):
        return False
    if 3 * len(words_h) < len(words_t):
        return False
    in_title = set(words_t)
    return bool(words_h) and sum(w in in_title for w in words_h) >= 0.8 * len(words_h)
