"""ingest.extract.stoplists: jusText's stop words of every language, read in one pass, are the
words trafilatura and jusText build themselves, and jusText's paragraphs come out the same."""

from __future__ import annotations

from pathlib import Path

import justext.core
import trafilatura.external
from justext.utils import get_stoplist, get_stoplists
from lxml import html

import ingest.extract  # noqa: F401  (installs the set)
from ingest.extract.stoplists import all_stop_words, stop_words


def _as_justext_builds_them() -> frozenset[str]:
    """trafilatura's `jt_stoplist_init` and jusText's `define_stoplist`, as they are shipped."""
    union = {word for language in get_stoplists() for word in get_stoplist(language)}
    return frozenset(w.lower() for w in union)


def test_every_language_gives_the_words_justext_builds() -> None:
    assert all_stop_words() == _as_justext_builds_them()


def test_lines_end_where_justext_ends_them(tmp_path: Path) -> None:
    # bytes.splitlines ends lines at LF, CR and CRLF only, and a last break adds no word.
    data = "Und\r\nDER\rdie\n\nΌΣΟΣ\u2028x\x85y\n".encode()
    (tmp_path / "a.txt").write_bytes(data)
    expected = {w.decode("utf8").lower() for w in data.splitlines()}
    assert stop_words([tmp_path / "a.txt"]) == expected
    assert "\u2028" in "".join(expected)  # U+2028 and NEL stay inside their line


def test_justext_is_handed_the_set_as_it_is() -> None:
    words = all_stop_words()
    assert justext.core.define_stoplist(words) is words
    # Any other list is lower-cased as jusText does it.
    assert justext.core.define_stoplist(("The", "AND")) == frozenset({"the", "and"})
    assert trafilatura.external.jt_stoplist_init() is words
    assert trafilatura.external.JT_STOPLIST is words


def test_paragraphs_are_classified_as_with_justexts_own_list() -> None:
    body = "".join(
        f"<p>{text}</p>"
        for text in (
            "The council approved the budget on Tuesday after a long debate about the schools "
            "and the parks, and the mayor said that the work would start in the spring.",
            "Home | News | Sport | Contact | Login",
            "Der Rat hat den Haushalt am Dienstag nach einer langen Debatte über die Schulen und "
            "die Parks beschlossen, und der Bürgermeister sagte, die Arbeit beginne im Frühjahr.",
        )
    )
    tree = html.fromstring(f"<html><body>{body}</body></html>")

    def classes(stoplist: frozenset[str]) -> list[str]:
        paragraphs = justext.core.ParagraphMaker.make_paragraphs(tree)
        justext.core.classify_paragraphs(paragraphs, stoplist, 50, 150, 0.1, 0.2, 0.25, True)
        justext.core.revise_paragraph_classification(paragraphs, 150)
        return [p.class_type for p in paragraphs]

    ours = classes(all_stop_words())
    assert ours == classes(_as_justext_builds_them())
    assert ours[0] == ours[2] == "good"
