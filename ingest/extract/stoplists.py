"""jusText's stop words of every language, read once a process into the set jusText wants.

trafilatura's last-resort extractor (jusText, run when its fast mode is off: the guard's
fallback in `ingest.extract.page`) classifies paragraphs by the stop words of all of jusText's
languages together, 154,484 words. trafilatura builds that list the first time
(`trafilatura.external.jt_stoplist_init`: each language's list through jusText's reader, which
decodes and lower-cases word by word, then their union, as a tuple), and jusText lower-cases it
into a frozenset again at every call (`justext.core.define_stoplist`). That is about 0.2 s of a
worker's CPU the first time a page takes the fallback and 0.06 s every time after, a few per cent
of a cold run's CPU. Here the same words are read in one pass per file into the lower-cased
frozenset jusText works with, once a process, and jusText is handed that set as it is.
`install_stop_words` puts both in place; the words are the same
(`tests/extract/test_stoplists.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import justext
import justext.core
import trafilatura.external

_ALL: frozenset[str] | None = None


def stop_words(files: Iterable[Path]) -> frozenset[str]:
    """The lower-cased lines of UTF-8 word lists, as jusText's `get_stoplist` reads each (lines
    end at LF, CR or CRLF only, as `bytes.splitlines` ends them; a last line break adds no empty
    word), of all the files together."""
    words: set[str] = set()
    for path in files:
        text = path.read_bytes().decode("utf-8").lower()
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if text.endswith(("\n", "\r")):
            lines.pop()
        words.update(lines)
    return frozenset(words)


def all_stop_words() -> frozenset[str]:
    """The stop words of every language jusText ships, lower-cased, read once a process."""
    global _ALL
    words = _ALL
    if words is None:
        folder = Path(justext.__file__).parent / "stoplists"
        words = _ALL = stop_words(sorted(folder.glob("*.txt")))
    return words


def _stoplist_init() -> frozenset[str]:
    """`trafilatura.external.jt_stoplist_init`'s place: the set, kept where trafilatura looks
    for it first."""
    words = all_stop_words()
    # A frozenset where trafilatura's annotation says tuple: it only hands it to jusText.
    trafilatura.external.JT_STOPLIST = words  # type: ignore[assignment]
    return words


def _define_stoplist_with(
    original: Callable[[Any], frozenset[str]],
) -> Callable[[Any], frozenset[str]]:
    def define_stoplist(stoplist: Any) -> frozenset[str]:
        """`justext.core.define_stoplist`, which hands the set of every language back as it is
        (it is lower-cased and frozen already) and lower-cases any other list as before."""
        words = _ALL
        if words is not None and stoplist is words:
            return words
        return original(stoplist)

    return define_stoplist


def install_stop_words() -> None:
    """Put the set in trafilatura's and jusText's way, in this process (and the processes forked
    from it); the words are read the first time a page takes jusText, or before, by the worker
    pool's fork server (`ingest.workers.warm`), whose workers inherit them. Done once."""
    if getattr(justext.core.define_stoplist, "__module__", None) == __name__:
        return
    justext.core.define_stoplist = _define_stoplist_with(justext.core.define_stoplist)
    trafilatura.external.jt_stoplist_init = _stoplist_init  # type: ignore[assignment]
    trafilatura.external.JT_STOPLIST = _ALL  # type: ignore[assignment]
