"""How much of one text another holds, by word 4-grams. Pure: the measure behind the guard that
notices when cleaning a page threw its article away (see `ingest.extract`)."""

from __future__ import annotations

import re
from collections import Counter

# Chinese and Japanese do not separate words with spaces: there every character counts as one
# word (a whole sentence would otherwise be a single `\w+` run).
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_UNSPACED}]|[^\\W{_UNSPACED}]+")


def words(text: str) -> list[str]:
    """The text's words, case-folded: `\\w+` runs (as the AEB scores extraction), and each
    Chinese or Japanese character on its own."""
    return _WORD.findall(text.casefold())


def _shingles(tokens: list[str]) -> Counter[tuple[str, ...]]:
    if len(tokens) < 4:
        return Counter([tuple(tokens)] if tokens else [])
    return Counter(zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False))


def coverage(text: str, reference: str) -> float:
    """The share of `reference`'s word 4-grams (counted with repeats, so that a paragraph
    said twice weighs twice) that `text` holds too: 1.0 when `text` holds all of it (or
    `reference` has no words), 0.0 when it holds none."""
    wanted = _shingles(words(reference))
    total = wanted.total()
    if not total:
        return 1.0
    return (wanted & _shingles(words(text))).total() / total
