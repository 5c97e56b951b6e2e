"""parse_sitemap and friends: the fixture corpus in tests/data/sitemaps, then gzip, hostile
documents, garbage, dates and the sitemap-as-feed view, one case at a time.

Each fixture `NAME.EXT` sits beside `NAME.expected.json`: the Sitemap as JSON (datetimes as ISO
8601 UTC strings) or, for `*.bad.*` fixtures, {"error": message}. `fetched_from` is the URL the
body came from; keys starting with "_" are notes.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ingest.documents import sitemaps
from ingest.documents.feeds import parse_feed
from ingest.documents.sitemaps import (
    MAX_ENTRIES,
    Sitemap,
    is_gzip,
    looks_like_sitemap,
    on_site,
    parse_sitemap,
    parse_sitemap_feed,
    parse_w3c_datetime,
    sitemap_sites,
)
from ingest.errors import ParseError
from tests.support.paths import DATA

SITEMAPS = DATA / "sitemaps"
FIXTURES = sorted(p for p in SITEMAPS.iterdir() if not p.name.endswith(".expected.json"))
GOOD = [p for p in FIXTURES if ".bad." not in p.name]
BAD = [p for p in FIXTURES if ".bad." in p.name]
URL = "https://example.com/sitemap.xml"
NS = "xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'"
NEWS_NS = "xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'"


def _expected(fixture: Path) -> dict[str, Any]:
    doc = json.loads(fixture.with_name(fixture.stem + ".expected.json").read_text("utf-8"))
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _as_json(sitemap: Sitemap) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)
            return value.isoformat()
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            # The last moment of a lastmod's period is written where it names a year or a
            # month alone (`2023-11`), and left out of the fixtures elsewhere.
            return {
                k: convert(v) for k, v in value.items() if not (k.endswith("_until") and v is None)
            }
        return value

    out: dict[str, Any] = convert(dataclasses.asdict(sitemap))
    return out


def _urlset(urls: str, extra_ns: str = "") -> bytes:
    return f"<?xml version='1.0'?><urlset {NS} {extra_ns}>{urls}</urlset>".encode()


@pytest.mark.parametrize("fixture", GOOD, ids=lambda p: p.name)
def test_fixture(fixture: Path) -> None:
    """Each good fixture parses to its expected Sitemap."""
    expected = _expected(fixture)
    url = expected.pop("fetched_from")
    assert _as_json(parse_sitemap(fixture.read_bytes(), url)) == expected


@pytest.mark.parametrize("fixture", BAD, ids=lambda p: p.name)
def test_bad_fixture(fixture: Path) -> None:
    """Each bad fixture is refused with its expected message."""
    expected = _expected(fixture)
    with pytest.raises(ParseError) as info:
        parse_sitemap(fixture.read_bytes(), expected["fetched_from"])
    assert str(info.value) == expected["error"]
    assert info.value.url == expected["fetched_from"]


# --- gzip ----------------------------------------------------------------------------------------


def test_gzip_is_detected_by_magic_bytes() -> None:
    """A gzip body (whatever its name or type) is decompressed and flagged `compressed`."""
    body = _urlset("<url><loc>https://example.com/a</loc></url>")
    sitemap = parse_sitemap(gzip.compress(body), "https://example.com/s")
    assert sitemap.compressed
    assert [e.url for e in sitemap.entries] == ["https://example.com/a"]
    assert is_gzip(gzip.compress(body))
    assert not is_gzip(body)


def test_every_member_of_a_multi_member_gzip_file_is_read() -> None:
    """A gzip file of several members (concatenated files, bgzip's blocks) is one document:
    the URLs of every member are read, not only those of the first, and the cap holds for the
    members together."""
    urls = [f"https://example.com/a/{n}" for n in range(3000)]
    body = _urlset("".join(f"<url><loc>{u}</loc></url>" for u in urls))
    blocks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    data = b"".join(gzip.compress(block) for block in blocks)
    assert len(blocks) > 10
    assert [e.url for e in parse_sitemap(data, URL).entries] == urls
    first, second = b"https://e.com/a\nhttps://e.com/b\n", b"https://e.com/c\n"
    text = gzip.compress(first) + gzip.compress(second)
    assert [e.url for e in parse_sitemap(text, URL).entries] == [
        "https://e.com/a",
        "https://e.com/b",
        "https://e.com/c",
    ]
    with pytest.raises(ParseError, match="exceeds 5000 bytes after gunzip"):
        parse_sitemap(data, URL, max_bytes=5000)
    with pytest.raises(ParseError, match="truncated gzip data"):
        parse_sitemap(data[:-12], URL)


class _Handed:
    """zlib's decompressor, keeping the length of every input it is handed."""

    def __init__(self, wbits: int, handed: list[int]) -> None:
        self._decoder = zlib.decompressobj(wbits)
        self._handed = handed

    def decompress(self, data: memoryview, max_length: int = 0) -> bytes:
        self._handed.append(len(data))
        return self._decoder.decompress(data, max_length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoder, name)


def test_many_empty_gzip_members_cost_one_bounded_chunk_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200,000 empty members (4 MB): zlib is handed at most one chunk of input per member (what
    it copies past a member's end), never the rest of the file each time, whose cost would
    grow with the square of the members (about half a second as it is)."""
    members = 200_000
    data = gzip.compress(b"https://e.com/a\n") + gzip.compress(b"") * members
    handed: list[int] = []
    zlib_here = SimpleNamespace(
        decompressobj=lambda wbits: _Handed(wbits, handed),
        MAX_WBITS=zlib.MAX_WBITS,
        error=zlib.error,
    )
    monkeypatch.setattr(sitemaps, "zlib", zlib_here)
    assert [e.url for e in parse_sitemap(data, URL).entries] == ["https://e.com/a"]
    assert max(handed) <= sitemaps._GZIP_CHUNK
    assert len(handed) <= members + 1 + len(data) // sitemaps._GZIP_CHUNK + 1


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    """A small file that inflates past the cap is refused with a clear message."""
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    assert len(bomb) < 10_000
    with pytest.raises(ParseError, match="exceeds 1000000 bytes after gunzip"):
        parse_sitemap(bomb, URL, max_bytes=1_000_000)


def test_plain_body_over_the_cap_is_refused() -> None:
    """The cap applies to uncompressed bodies too."""
    with pytest.raises(ParseError, match="exceeds 100 bytes"):
        parse_sitemap(_urlset("<url><loc>https://e.com/" + "a" * 200 + "</loc></url>"), URL, 100)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (gzip.compress(b"<urlset></urlset>")[:-12], "truncated gzip data"),
        (b"\x1f\x8b\x08\x00garbage-garbage", "invalid gzip data"),
        (gzip.compress(b""), r"empty body \(after gunzip\)"),
    ],
    ids=["truncated", "corrupt", "empty"],
)
def test_broken_gzip(body: bytes, message: str) -> None:
    """Broken gzip data is a ParseError saying what is wrong."""
    with pytest.raises(ParseError, match=message):
        parse_sitemap(body, URL)


# --- hostile and garbage documents ------------------------------------------------------------


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    """XXE: an external entity is not read; the location using it is dropped."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f"<?xml version='1.0'?><!DOCTYPE urlset [<!ENTITY x SYSTEM 'file://{secret}'>]>"
        f"<urlset {NS}><url><loc>https://e.com/&x;</loc></url>"
        "<url><loc>https://e.com/ok</loc></url></urlset>"
    ).encode()
    sitemap = parse_sitemap(body, URL)
    assert [e.url for e in sitemap.entries] == ["https://e.com/ok"]
    assert sitemap.dropped == 1
    assert "TOP-SECRET" not in repr(sitemap)


def test_entity_expansion_is_not_performed() -> None:
    """Billion laughs: refused, not expanded, and not "recovered" either."""
    levels = "".join(
        f"<!ENTITY l{i} '{('&l' + str(i - 1) + ';') * 10 if i else 'lol'}'>" for i in range(10)
    )
    body = (
        f"<?xml version='1.0'?><!DOCTYPE urlset [{levels}]>"
        f"<urlset {NS}><url><loc>https://e.com/&l9;</loc></url></urlset>"
    ).encode()
    with pytest.raises(ParseError, match=r"refused by the XML parser: .*amplification"):
        parse_sitemap(body, URL)


def test_no_network_for_dtds() -> None:
    """A DOCTYPE naming a remote DTD is not fetched (no_network), and parsing works."""
    body = (
        "<?xml version='1.0'?><!DOCTYPE urlset SYSTEM 'http://192.0.2.1/sitemap.dtd'>"
        f"<urlset {NS}><url><loc>https://e.com/a</loc></url></urlset>"
    ).encode()
    assert [e.url for e in parse_sitemap(body, URL).entries] == ["https://e.com/a"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not a sitemap: empty body"),
        (b"   \r\n", "not a sitemap: empty body"),
        (b"\x00\x01\x02\x03binary", "not a sitemap: neither XML nor a list of URLs"),
        (b'{"urls": ["https://e.com/a"]}', "not a sitemap: neither XML nor a list of URLs"),
        (b"hello\nworld\nhttps://e.com/a\n", "not a sitemap: neither XML nor a list of URLs"),
        (b"<foo><bar/></foo>", "not a sitemap: no <urlset> or <sitemapindex> root (root is <foo>)"),
        (b"<<<>>>", "not a sitemap: XML syntax error"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "an RSS/Atom feed (root is <feed>)"),
    ],
    ids=["empty", "blank", "binary", "json", "prose", "other-xml", "broken-xml", "atom"],
)
def test_garbage_is_a_clear_error(body: bytes, message: str) -> None:
    """Anything that is not a sitemap is one ParseError with a message that says why."""
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_sitemap(body, URL)


def test_namespace_variants_are_read() -> None:
    """No namespace, the old Google 0.84 namespace or a prefixed one: all read."""
    for root in (
        "<urlset>",
        "<urlset xmlns='http://www.google.com/schemas/sitemap/0.84'>",
        "<s:urlset xmlns:s='http://www.sitemaps.org/schemas/sitemap/0.9'>",
    ):
        close = "</s:urlset>" if root.startswith("<s:") else "</urlset>"
        tag = "s:" if root.startswith("<s:") else ""
        body = f"{root}<{tag}url><{tag}loc>https://e.com/a</{tag}loc></{tag}url>{close}"
        assert [e.url for e in parse_sitemap(body.encode(), URL).entries] == ["https://e.com/a"]


def test_utf16_document() -> None:
    """An XML sitemap in UTF-16 with a BOM is read."""
    body = (
        "<?xml version='1.0' encoding='UTF-16'?>"
        + _urlset("<url><loc>https://e.com/é</loc></url>").decode().split("?>", 1)[1]
    )
    sitemap = parse_sitemap(body.encode("utf-16"), URL)
    assert [e.url for e in sitemap.entries] == ["https://e.com/é"]


# A sitemap a .NET site writes with `Encoding.Unicode` (UTF-16, little-endian; big-endian
# from Java's `UTF-16` writer), with its byte order mark or without, declaring it or not.
UTF_16_URLSET = (
    f"<urlset {NS}><url><loc>https://example.com/nachrichten/straße</loc>"
    "<lastmod>2025-08-11T14:00:00+02:00</lastmod></url></urlset>"
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            ("<?xml version='1.0' encoding='UTF-16'?>" + UTF_16_URLSET).encode("utf-16"),
            id="le-with-bom",
        ),
        pytest.param(
            ("<?xml version='1.0' encoding='utf-16'?>\r\n" + UTF_16_URLSET).encode("utf-16-le"),
            id="le-without-bom",
        ),
        pytest.param(UTF_16_URLSET.encode("utf-16-be"), id="be-without-bom-or-declaration"),
        pytest.param(
            ("https://example.com/nachrichten/straße\r\nhttps://example.com/b\r\n").encode(
                "utf-16"
            ),
            id="text-with-bom",
        ),
        pytest.param(
            ("https://example.com/nachrichten/straße\nhttps://example.com/b\n").encode("utf-16-le"),
            id="text-without-bom",
        ),
    ],
)
def test_a_utf_16_sitemap_looks_like_one_and_is_read(body: bytes) -> None:
    """A sitemap in UTF-16, XML or text, with its byte order mark or without one (the NULs of
    its first characters say so: `normalize.wide_as_utf8`, as for a feed) is a sitemap to
    `looks_like_sitemap` (a backfill's TARGET, `feeds add`, a site's `/sitemap.xml`) and is
    read as the UTF-8 it stands for. Each was refused as no sitemap, by the sniff (its root
    element looked for one byte a character), or by the parser: an XML one without its mark
    or a declaration an XML syntax error at its first NUL, a text one read as XML."""
    assert looks_like_sitemap(body)
    sitemap = parse_sitemap(body, URL)
    assert sitemap.entries[0].url == "https://example.com/nachrichten/straße"


def test_entries_beyond_the_cap_are_dropped() -> None:
    """At most `max_entries` URLs are kept (the protocol's limit is 50,000); the rest count."""
    urls = "".join(f"<url><loc>https://e.com/{n}</loc></url>" for n in range(12))
    sitemap = parse_sitemap(_urlset(urls), URL, max_entries=10)
    assert len(sitemap.entries) == 10
    assert sitemap.dropped == 2
    assert MAX_ENTRIES == 50_000


def test_text_sitemap_beyond_the_cap_keeps_its_first_urls() -> None:
    """A text sitemap of more URLs than the cap (or repeating its URLs) is a text sitemap all
    the same: the first `max_entries` are kept and the rest counted, as in an XML one; only
    lines that are not URLs make a text file "not a sitemap"."""
    text = "".join(f"https://e.com/{n}\n" for n in range(35)).encode()
    sitemap = parse_sitemap(text, URL, max_entries=10)
    assert [e.url for e in sitemap.entries] == [f"https://e.com/{n}" for n in range(10)]
    assert sitemap.dropped == 25
    repeated = parse_sitemap(b"https://e.com/a\n" * 5 + b"https://e.com/b\n", URL)
    assert [e.url for e in repeated.entries] == ["https://e.com/a", "https://e.com/b"]
    assert repeated.dropped == 4
    with pytest.raises(ParseError, match="neither XML nor a list of URLs"):
        parse_sitemap(b"hello\nworld\nhttps://e.com/a\nhttps://e.com/b\n", URL, max_entries=1)


def test_text_sitemap_lines_are_read_as_a_url_list_s() -> None:
    """A text sitemap's lines are read as `ingest backfill --urls` reads its (one rule): bytes
    that are not UTF-8 are the URL's own, percent-escaped (not U+FFFD, which names another
    page), and a line ends at LF (or CRLF) only, a NEL or U+2028 in it being a character that
    is dropped, not the end of a line."""
    text = b"https://e.com/caf\xe9\r\nhttps://e.com/a\xc2\x85b\nhttps://e.com/c\xe2\x80\xa8d\n"
    sitemap = parse_sitemap(text, URL)
    assert [e.url for e in sitemap.entries] == [
        "https://e.com/caf%E9",
        "https://e.com/ab",
        "https://e.com/c\u2028d",
    ]
    assert sitemap.dropped == 0


def test_looks_like_sitemap() -> None:
    """The sniff: urlset and sitemapindex roots, after a prolog; gzip data; text whose first
    line is an http(s) URL (the protocol's text format); nothing else."""
    assert looks_like_sitemap(_urlset(""))
    assert looks_like_sitemap(b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- x --><sitemapindex/>")
    assert looks_like_sitemap(gzip.compress(b"anything"))
    assert looks_like_sitemap(b"https://example.com/a/1\nhttps://example.com/a/2\n")
    assert looks_like_sitemap(b"\xef\xbb\xbf\r\nHTTP://example.com/a/1\r\n")
    assert looks_like_sitemap(b"https://example.com/" + b"a" * 5000)
    assert not looks_like_sitemap(b"Not found: https://example.com/sitemap.txt\n")
    assert not looks_like_sitemap(b"https://example.com/a b\n")
    assert not looks_like_sitemap(b"mailto:news@example.com\n")
    assert not looks_like_sitemap(b"<rss version='2.0'/>")
    assert not looks_like_sitemap(b"<!DOCTYPE html><html></html>")
    assert not looks_like_sitemap(b"")


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-05", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-06", datetime(2024, 5, 6, tzinfo=UTC)),
        ("2024-05-06T07:08+02:00", datetime(2024, 5, 6, 5, 8, tzinfo=UTC)),
        ("2024-05-06T07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09.5-05:00", datetime(2024, 5, 6, 12, 8, 9, 500000, tzinfo=UTC)),
        ("2024-05-06 07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09+0530", datetime(2024, 5, 6, 1, 38, 9, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("  2024-05-06  ", datetime(2024, 5, 6, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09 +0000", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("Mon, 05 Dec 94 10:00:00 GMT", datetime(1994, 12, 5, 10, tzinfo=UTC)),
        ("Mon, 05 Dec 55 10:00:00 GMT", datetime(1955, 12, 5, 10, tzinfo=UTC)),
        ("Thu, 05 Dec 24 10:00:00 +0100", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("Thu, 05 Dec 124 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("2024-05-06 07:08:09 UTC", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06 07:08:09 EDT", datetime(2024, 5, 6, 11, 8, 9, tzinfo=UTC)),
        ("2024-05-06 07:08 CEST", datetime(2024, 5, 6, 5, 8, tzinfo=UTC)),
        ("2024-05-06 07:08:09 XYZ", None),
        ("Mon, 06 May 2024 07:08:09 CEST", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09 +05:30", datetime(2024, 5, 6, 1, 38, 9, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09 UTC+05:30", datetime(2024, 5, 6, 1, 38, 9, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09 GMT+2", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09 IST", None),
        ("Mon May 06 07:08:09 CEST 2024", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
        ("Mon May 06 07:08:09 IST 2024", None),
        ("Mon, 06 May 2024 07:08 PM", datetime(2024, 5, 6, 19, 8, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09 XYZ", None),
        ("Mon, 06 May 2024 07:08:09 -0000", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06 07.08", datetime(2024, 5, 6, 7, 8, tzinfo=UTC)),
        ("2024-05-06T07.08.09+02:00", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
        ("Mon, 06 May 2024 07:08:09.123 +0200", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
        ("6 May 2024 7.08 PM CEST", datetime(2024, 5, 6, 17, 8, tzinfo=UTC)),
        ("2024-05-06 07.08 IST", None),
        ("1714979289", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("1714979289.5", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("1714979289000", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024/05/06 07:08:09", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024/5/6 7:08 PM +0900", datetime(2024, 5, 6, 10, 8, tzinfo=UTC)),
        ("2024/05/06 07.08 CEST", datetime(2024, 5, 6, 5, 8, tzinfo=UTC)),
        ("2024.05.06", datetime(2024, 5, 6, tzinfo=UTC)),
        ("05/26/2024 07:08", datetime(2024, 5, 26, 7, 8, tzinfo=UTC)),
        ("26/05/2024", datetime(2024, 5, 26, tzinfo=UTC)),
        ("06/05/2024", None),
        ("06.05.2024, 9 Uhr MESZ", datetime(2024, 5, 6, 7, tzinfo=UTC)),
        ("2024/05/06 07:08 IST", None),
        ("2024/13/06", None),
        ("2024-13-01", None),
        ("2024-02-30", None),
        ("2024-05-06T25:00Z", None),
        ("2024-05-06T07:08+25:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_w3c_datetime(text: str | None, expected: datetime | None) -> None:
    """W3C Datetime at every precision, to aware UTC; naive means UTC; a zone's name after a
    space (`2024-05-06 07:08:09 UTC`, a CMS's lastmod) is that zone, an unknown one no date;
    a time written with dots (`07.08`) is that time (`normalize.colon_time`); a Unix time, and
    a day written year first or last with slashes where it can be read one way only, as feeds
    read them (`normalize.written_date`: `06/05/2024` is none); garbage is None."""
    assert parse_w3c_datetime(text) == expected


@pytest.mark.parametrize(
    ("text", "last"),
    [
        ("2024", datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-02", datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-12", datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("9999", datetime.max.replace(tzinfo=UTC)),
        ("2024-05-06", None),
        ("2024-05-06T07:08:09Z", None),
        ("Mon, 06 May 2024 07:08:09 +0000", None),
    ],
)
def test_w3c_period(text: str, last: datetime | None) -> None:
    """A year or a month alone stands for the whole of it: its first moment, as
    parse_w3c_datetime reads it, and its last; a day or a time has no period of its own."""
    assert sitemaps.parse_w3c_period(text) == (parse_w3c_datetime(text), last)


# --- as a feed ----------------------------------------------------------------------------------


def test_sitemap_as_feed() -> None:
    """A news sitemap read as a feed: newest first, news title and date on the entry, lastmod
    as the update time only beside a publication date; undated URLs last."""
    body = _urlset(
        "<url><loc>https://www.example.com/old</loc><lastmod>2024-01-01</lastmod></url>"
        "<url><loc>https://www.example.com/undated</loc></url>"
        "<url><loc>https://www.example.com/new</loc><lastmod>2024-05-02</lastmod><news:news>"
        "<news:publication><news:language>de</news:language></news:publication>"
        "<news:publication_date>2024-05-01T10:00:00Z</news:publication_date>"
        "<news:title>Neu</news:title></news:news></url>",
        NEWS_NS,
    )
    feed = parse_sitemap_feed(body, URL, {"content-type": "application/xml"})
    assert feed.version == "sitemap-news"
    assert [e.link for e in feed.entries] == [
        "https://www.example.com/new",
        "https://www.example.com/old",
        "https://www.example.com/undated",
    ]
    new, old, _ = feed.entries
    assert (new.guid, new.title, new.language) == (None, "Neu", "de")
    assert new.published_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert new.updated_at == datetime(2024, 5, 2, tzinfo=UTC)
    assert (old.published_at, old.updated_at) == (None, None)


def test_sitemap_index_is_not_a_feed() -> None:
    """A sitemap index cannot be followed as a feed: a ParseError that says what to do."""
    body = f"<sitemapindex {NS}><sitemap><loc>https://www.example.com/a.xml</loc></sitemap></sitemapindex>"
    with pytest.raises(ParseError, match="register one of the sitemaps"):
        parse_sitemap_feed(body.encode(), URL)


def test_plain_sitemap_as_feed_version() -> None:
    """A sitemap without news fields is version "sitemap"."""
    feed = parse_sitemap_feed(_urlset("<url><loc>https://www.example.com/a</loc></url>"), URL)
    assert feed.version == "sitemap"
    assert feed.entries[0].link == "https://www.example.com/a"


def test_sitemap_as_feed_keeps_the_urls_of_its_own_site() -> None:
    """A sitemap followed as a feed lists the URLs of its own site only (`on_site`, as a
    backfill reads it), and of the site that named it (`sitemap_sites`: a robots.txt may name
    a sitemap hosted elsewhere)."""
    body = _urlset(
        "<url><loc>https://news.example.com/a</loc></url>"
        "<url><loc>https://elsewhere.example.org/b</loc></url>"
        "<url><loc>https://www.site.example.net/c</loc></url>"
    )
    own = parse_sitemap_feed(body, URL)
    assert [e.link for e in own.entries] == ["https://news.example.com/a"]
    sites = sitemap_sites(URL, URL, "https://site.example.net/")
    named = parse_sitemap_feed(body, URL, sites=sites)
    assert [e.link for e in named.entries] == [
        "https://news.example.com/a",
        "https://www.site.example.net/c",
    ]


def test_a_private_sitemap_s_relative_locations_are_its_site_s_urls_without_its_user_info() -> None:
    """A sitemap registered with its credential as user-info (`https://Reader:S3cret@host/
    sitemap.xml`) whose locations are relative (the protocol forbids it, some sites write it):
    its pages are the site's URLs, without the credential, read as a feed or by a backfill."""
    body = _urlset("<url><loc>/news/a</loc></url><url><loc>b</loc></url>")
    url = "https://Reader:S3cret@www.example.com/news/sitemap.xml"
    expected = ["https://www.example.com/news/a", "https://www.example.com/news/b"]
    assert [e.url for e in parse_sitemap(body, url).entries] == expected
    assert sorted(e.link or "" for e in parse_sitemap_feed(body, url).entries) == expected


def test_offsets_are_normalized_to_utc() -> None:
    """Every datetime out of the parser is UTC, whatever zone the document wrote."""
    body = _urlset(
        "<url><loc>https://e.com/a</loc><lastmod>2024-05-06T23:30:00-08:00</lastmod></url>"
    )
    lastmod = parse_sitemap(body, URL).entries[0].lastmod
    assert lastmod == datetime(2024, 5, 7, 7, 30, tzinfo=UTC)
    assert lastmod is not None
    assert lastmod.tzinfo == UTC
    assert datetime(2024, 5, 6, 23, 30, tzinfo=timezone(timedelta(hours=-8))) == lastmod


@pytest.mark.parametrize(
    ("url", "sites", "expected"),
    [
        ("https://www.example.com/a", ["https://example.com/sitemap.xml"], True),
        ("https://news.example.co.uk/a", ["https://www.example.co.uk/sitemap.xml"], True),
        ("https://EXAMPLE.com:8443/a", ["https://example.com/sitemap.xml"], True),
        ("https://example.org/a", ["https://example.com/sitemap.xml"], False),
        ("https://example.com.evil.net/a", ["https://example.com/sitemap.xml"], False),
        ("https://other.co.uk/a", ["https://www.example.co.uk/sitemap.xml"], False),
        # A public suffix under private control: each blog is a site of its own.
        ("https://b.blogspot.com/a", ["https://a.blogspot.com/sitemap.xml"], False),
        # No registered domain (an address, an unknown suffix): the host itself.
        ("http://127.0.0.1:8001/a", ["http://127.0.0.1:8000/sitemap.xml"], True),
        ("http://127.0.0.2/a", ["http://127.0.0.1/sitemap.xml"], False),
        ("https://a.intranet.corp/a", ["https://b.intranet.corp/s.xml"], False),
        ("https://a.intranet.corp/a", ["https://a.intranet.corp/s.xml"], True),
        # The site the backfill was asked for vouches for a sitemap hosted elsewhere.
        (
            "https://www.example.com/a",
            ["https://cdn.example-static.net/s.xml", "https://example.com/"],
            True,
        ),
    ],
)
def test_a_sitemap_lists_urls_of_its_own_site(url: str, sites: list[str], expected: bool) -> None:
    """The sitemaps protocol allows a sitemap the URLs of its own host; the backfill allows
    those of its registered domain (www., news. and the like) and of the TARGET's."""
    assert on_site(url, sites) is expected


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        pytest.param(
            "www.example.com/2024/a.html", "https://www.example.com/2024/a.html", id="www"
        ),
        pytest.param("example.com/2024/a.html", "https://example.com/2024/a.html", id="own-host"),
        pytest.param("news.example.com/a", "https://news.example.com/a", id="own-site"),
        pytest.param(
            "//example.com/2024/a.html", "https://example.com/2024/a.html", id="no-scheme"
        ),
        pytest.param("/2024/a.html", "https://example.com/2024/a.html", id="root-relative"),
        pytest.param("a.html", "https://example.com/sitemaps/a.html", id="relative"),
        pytest.param(
            "example.org/a.html", "https://example.com/sitemaps/example.org/a.html", id="a-path"
        ),
    ],
)
def test_a_location_without_its_scheme_is_read_as_its_site_s_url(loc: str, expected: str) -> None:
    """The protocol asks for absolute URLs; real sitemaps (and robots.txt `Sitemap:` lines)
    write some without the scheme. A location that begins with a host name (`www.` and a
    name, as in a feed's links, or a host of the sitemap's own site) is that host's URL over
    the sitemap's scheme, as a protocol-relative one is; any other is a path, resolved against
    the sitemap as before (`example.org/a.html` may be a directory's). Read as a path,
    `www.example.com/2024/a.html` was `https://example.com/sitemaps/www.example.com/2024/...`,
    a page that does not exist, fetched and stored as a 404's text or failed."""
    url = "https://example.com/sitemaps/sitemap.xml"
    body = _urlset(f"<url><loc>{loc}</loc></url>")
    assert [e.url for e in parse_sitemap(body, url).entries] == [expected]
    index = f"<sitemapindex {NS}><sitemap><loc>{loc}</loc></sitemap></sitemapindex>"
    assert [r.url for r in parse_sitemap(index.encode(), url).sitemaps] == [expected]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"www.example.com/a\nwww.example.com/b\n", True, id="www"),
        pytest.param(b"\xef\xbb\xbfexample.com/a\r\nexample.com/b\r\n", True, id="own-host"),
        pytest.param(b"news.example.com/2024/a.html\n", True, id="own-subdomain"),
        pytest.param(b"//example.com/a\n//example.com/b\n", True, id="protocol-relative"),
        pytest.param(b"example.org/a.html\n", False, id="another-site-is-a-path"),
        pytest.param(b"index.html\nabout.html\n", False, id="file-names"),
        pytest.param(b"example.com/a b\n", False, id="with-a-space"),
    ],
)
def test_a_text_sitemap_whose_first_line_has_no_scheme_looks_like_one(
    body: bytes, expected: bool
) -> None:
    """A text sitemap whose first line is a URL of its own site without the scheme, read as
    its lines are (`normalize.scheme_less_site_url` against the URL it was served from), is a
    sitemap to `looks_like_sitemap` (it was not: such a TARGET of a backfill, or `feeds add`
    of it, was refused as neither a feed, a sitemap nor a web page)."""
    assert looks_like_sitemap(body, "https://example.com/sitemap.txt") is expected


def test_a_text_sitemap_s_lines_without_their_scheme_are_its_site_s_urls() -> None:
    """A text sitemap's lines are read as an XML sitemap's locations are: one beginning with
    a host name of its own site, or `www.`, is that host's URL; it was no URL at all (every
    such line dropped, a sitemap of them refused)."""
    body = b"https://example.com/a\nwww.example.com/b\nexample.com/c\n//example.com/d\n"
    parsed = parse_sitemap(body, "https://example.com/sitemap.txt")
    assert [e.url for e in parsed.entries] == [
        "https://example.com/a",
        "https://www.example.com/b",
        "https://example.com/c",
        "https://example.com/d",
    ]


def test_an_ampersand_escaped_twice_in_a_location_is_an_ampersand() -> None:
    """A location whose `&` is escaped twice (`?id=1&amp;amp;page=2`, a generator escaping an
    already escaped URL) is the URL with an `&`, as a feed's link so written is: read as
    `&amp;` it was another URL (`?amp;page=2&id=1` once canonical), a page of other
    parameters fetched, and the article the feed lists under its own URL stored twice. An
    index's sitemaps are read so too."""
    written = "https://example.com/story?id=1&amp;amp;page=2"
    expected = "https://example.com/story?id=1&page=2"
    body = _urlset(f"<url><loc>{written}</loc></url>")
    assert [e.url for e in parse_sitemap(body, URL).entries] == [expected]
    index = f"<sitemapindex {NS}><sitemap><loc>{written}</loc></sitemap></sitemapindex>"
    assert [r.url for r in parse_sitemap(index.encode(), URL).sitemaps] == [expected]
    rss = (
        "<rss version='2.0'><channel><title>T</title>"
        f"<item><title>A</title><link>{written}</link></item></channel></rss>"
    )
    (entry,) = parse_feed(rss.encode(), URL).entries
    assert entry.link == expected


@pytest.mark.parametrize(
    "notice",
    [
        pytest.param(
            "<br />\n<b>Deprecated</b>:  Function create_function() is deprecated in "
            "<b>/var/www/wp-content/plugins/sitemap.php</b> on line <b>12</b><br />\n",
            id="html-errors",
        ),
        pytest.param(
            'PHP Warning:  Undefined array key "lastmod" in /var/www/sitemap.php on line 40\n',
            id="plain-text",
        ),
    ],
)
def test_a_sitemap_after_a_php_notice_is_read(notice: str) -> None:
    """A sitemap that a PHP warning or notice printed before its XML declaration (a plugin
    on a site showing its errors) is the document from that declaration on, as a feed so
    printed is (`feeds._sniff`): it looks like a sitemap and its URLs are read. It was
    "not a sitemap" (an XML syntax error, or neither XML nor a list of URLs), a backfill's
    source failed and `feeds add` found nothing."""
    sitemap = _urlset("<url><loc>https://example.com/a</loc></url>").decode()
    index = f"<?xml version='1.0'?><sitemapindex {NS}><sitemap><loc>https://example.com/s.xml</loc></sitemap></sitemapindex>"
    for document in (sitemap, index):
        body = (notice + document).encode()
        assert looks_like_sitemap(body)
        parsed = parse_sitemap(body, URL)
        assert [e.url for e in parsed.entries] + [r.url for r in parsed.sitemaps] in (
            ["https://example.com/a"],
            ["https://example.com/s.xml"],
        )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param(
            "Don&amp;#8217;t panic &amp;amp; relax", "Don’t panic & relax", id="escaped-twice"
        ),
        pytest.param("<![CDATA[Caf&eacute; &amp; bar]]>", "Café & bar", id="cdata-references"),
        pytest.param("&lt;b&gt;Budget&lt;/b&gt; passes", "Budget passes", id="markup"),
        pytest.param("Tom & Jerry &lt;3", "Tom & Jerry <3", id="plain"),
    ],
)
def test_a_news_title_is_read_as_a_feed_s_title(written: str, expected: str) -> None:
    """A news sitemap's `<news:title>` is read as a feed's title is (`text.title`): its
    character references decoded also where they were escaped once more than XML asks (a
    CMS escaping its titles for HTML before the sitemap's XML escapes them again), markup
    left out. It was stored as written, `Don&#8217;t panic &amp; relax` the article's
    title where its feed's entry would have been `Don’t panic & relax`."""
    ns = "xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'"
    body = _urlset(
        "<url><loc>https://example.com/a</loc><news:news>"
        f"<news:title>{written.replace('Tom & ', 'Tom &amp; ')}</news:title>"
        "<news:publication_date>2025-01-01</news:publication_date></news:news></url>",
        ns,
    )
    (entry,) = parse_sitemap(body, URL).entries
    assert entry.news_title == expected


@pytest.mark.parametrize("declared", ["ISO-8859-1", "windows-1252", "latin1"])
def test_a_utf_8_sitemap_declared_in_another_charset_is_read_as_utf_8(declared: str) -> None:
    """A sitemap whose bytes are valid UTF-8, non-ASCII among them, under an XML declaration
    naming another charset (a template kept after the site moved to UTF-8) is read as UTF-8,
    as a feed or a page so labelled is: valid UTF-8 is all but never meant as another
    charset. Its URLs were mojibake (`café` read `cafÃ©`, another address, a 404), its news
    titles too. A sitemap really in that charset (its bytes no UTF-8) is read in it."""
    ns = "xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'"
    document = (
        f"<?xml version='1.0' encoding='{declared}'?><urlset {NS} {ns}><url>"
        "<loc>https://example.com/café</loc><news:news><news:title>Café Müller</news:title>"
        "<news:publication_date>2025-01-01</news:publication_date></news:news></url></urlset>"
    )
    (entry,) = parse_sitemap(document.encode("utf-8"), URL).entries
    assert (entry.url, entry.news_title) == ("https://example.com/café", "Café Müller")
    (entry,) = parse_sitemap(document.encode("latin-1"), URL).entries
    assert (entry.url, entry.news_title) == ("https://example.com/café", "Café Müller")


def test_windows_1252_bytes_in_a_utf_8_sitemap_are_read_as_a_feed_s_are() -> None:
    """A UTF-8 sitemap (declared so, or undeclared) with bytes that are not UTF-8 pasted in:
    in a news title (a word processor's quotes, `Caf\\xe9`) they are Windows-1252, as in a
    feed (`normalize.utf8_with_windows_1252`); in a location they are the URL's own bytes,
    percent-escaped, as in a text sitemap (`normalize.url_lines`). Both were U+FFFD, the
    title garbled and the URL another page's."""
    ns = "xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'"
    for declaration in (b"<?xml version='1.0' encoding='UTF-8'?>", b""):
        body = (
            declaration
            + f"<urlset {NS} {ns}><url><loc>https://example.com/caf".encode()
            + b"\xe9</loc><news:news><news:title>Caf\xe9 \x93quoted\x94 \xe2\x80\x94 ok"
            + b"</news:title><news:publication_date>2025-01-01</news:publication_date>"
            + b"</news:news></url><url><loc>https://example.com/b</loc></url></urlset>"
        )
        parsed = parse_sitemap(body, URL)
        assert [(e.url, e.news_title) for e in parsed.entries] == [
            ("https://example.com/caf%E9", "Café “quoted” — ok"),
            ("https://example.com/b", None),
        ]
