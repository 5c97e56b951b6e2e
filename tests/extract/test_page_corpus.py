"""The labelled page corpus (`tests/data/pages`): the corpus is sound, and `extract_page` keeps
every body paragraph, drops the page furniture and gets the metadata right, page by page.

Each page `NAME.html` sits beside `NAME.expected.json`, written by hand from the page. The
comparison rules are those of `bench/quality_bench.py`, which prints the same figures for the
project and for plain trafilatura. Today's failures are listed in KNOWN_FAILURES as strict
xfails: when an improvement fixes one, its XPASS fails the run until the entry is removed."""

from __future__ import annotations

import codecs
import functools
import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import lxml.html
import pytest

from ingest.errors import ExtractError
from ingest.extract import extract_page
from ingest.types import Extracted
from tests.support.paths import DATA

PAGES = DATA / "pages"
CHECKS = ("paragraphs", "boilerplate", "title", "author", "published_at", "language")

# (page, check) pairs that fail today, with their cause.
KNOWN_FAILURES: set[tuple[str, str]] = {
    # The time of day is only in the visible text ("2024年3月6日 14時05分"), in no markup.
    ("legacy-ja-shinkansen", "published_at"),
}

_WS = re.compile(r"\s+")
_NAME_SEP = re.compile(r"\s*(?:[,;&]|\band\b)\s*")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _norm(text: str | None) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFC", text or "")).strip()


def _names(value: str | None) -> list[str]:
    return [n for n in _NAME_SEP.split(_norm(value)) if n]


def _when(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0)


def _lang(value: str | None) -> str:
    return _norm(value).lower().replace("_", "-").split("-")[0]


def _names_in_corpus() -> list[str]:
    return sorted(p.name.removesuffix(".expected.json") for p in PAGES.glob("*.expected.json"))


@functools.cache
def _expected(name: str) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads((PAGES / f"{name}.expected.json").read_text("utf-8"))
    return expected


@functools.cache
def _extracted(name: str) -> Extracted:
    body = (PAGES / f"{name}.html").read_bytes()
    try:
        return extract_page(body, _expected(name)["url"])
    except ExtractError:
        return Extracted(text="")


def _cases() -> list[Any]:
    cases = []
    for name in _names_in_corpus():
        for check in CHECKS:
            marks = (
                [pytest.mark.xfail(strict=True, reason="known extraction weakness")]
                if (name, check) in KNOWN_FAILURES
                else []
            )
            cases.append(pytest.param(name, check, marks=marks, id=f"{name}:{check}"))
    return cases


@pytest.mark.parametrize(("name", "check"), _cases())
def test_extraction(name: str, check: str) -> None:
    """extract_page keeps every expected paragraph, leaks no furniture and gets each metadata
    field right."""
    expected = _expected(name)
    got = _extracted(name)
    text = _norm(got.text)
    meta = got.metadata
    wanted = expected["metadata"]
    if check == "paragraphs":
        missing = [p for p in map(_norm, expected["paragraphs"]) if p not in text]
        assert missing == []
    elif check == "boilerplate":
        leaked = [b for b in map(_norm, expected["boilerplate"]) if b in text]
        assert leaked == []
    elif check == "title":
        assert _norm(meta.title) == _norm(wanted["title"])
    elif check == "author":
        assert _names(meta.author) == _names(wanted["author"])
    elif check == "published_at":
        assert _when(meta.published_at) == _when(wanted["published_at"])
    elif check == "language":
        assert _lang(meta.language) == _lang(wanted["language"])


def test_known_failures_name_real_cases() -> None:
    """Every KNOWN_FAILURES entry names a page of the corpus and one of the checks."""
    names = set(_names_in_corpus())
    assert {n for n, _ in KNOWN_FAILURES} <= names
    assert {c for _, c in KNOWN_FAILURES} <= set(CHECKS)


# --- the corpus itself ------------------------------------------------------------------------


def test_corpus_size_and_variety() -> None:
    """At least 25 labelled pages in at least 8 template styles, with a non-UTF-8 page."""
    names = _names_in_corpus()
    templates = {_expected(n)["template"] for n in names}
    encodings = {codecs.lookup(_expected(n)["encoding"]).name for n in names}
    assert len(names) >= 25
    assert len(templates) >= 8
    assert encodings - {"utf-8"}


@pytest.mark.parametrize("name", _names_in_corpus())
def test_page_matches_its_expectations(name: str) -> None:
    """The page is encoded as its <meta> declares and as its expectations say; every expected
    paragraph is text of the page, every boilerplate string is on the page but in no expected
    paragraph; the metadata are complete, with an aware publication time."""
    expected = _expected(name)
    assert set(expected) >= {"url", "template", "encoding", "paragraphs", "boilerplate"}
    assert set(expected["metadata"]) >= {"title", "author", "published_at", "language"}
    assert all(expected["metadata"].values())
    assert datetime.fromisoformat(expected["metadata"]["published_at"]).utcoffset() is not None

    body = (PAGES / f"{name}.html").read_bytes()
    declared = _CHARSET.search(body)
    assert declared, "the page declares its charset in a <meta> tag"
    encoding = codecs.lookup(expected["encoding"]).name
    assert codecs.lookup(declared.group(1).decode("ascii")).name == encoding
    if encoding != "utf-8":
        # Really written in the legacy charset: not valid UTF-8 (it has non-ASCII letters).
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")
    page = lxml.html.document_fromstring(body.decode(encoding))
    for el in page.xpath("//script|//style"):
        el.drop_tree()
    page_text = _norm(page.text_content())

    paragraphs = [_norm(p) for p in expected["paragraphs"]]
    assert paragraphs
    assert [p for p in paragraphs if p not in page_text] == []
    boilerplate = [_norm(b) for b in expected["boilerplate"]]
    assert [b for b in boilerplate if b not in page_text] == []
    body_text = "\n".join(paragraphs)
    assert [b for b in boilerplate if b in body_text] == []
