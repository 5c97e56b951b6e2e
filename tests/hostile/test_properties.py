"""Properties of the pure core over generated input (Hypothesis): canonical URLs are idempotent
and raise nothing but the documented ValueError; the feed-parsing boundary turns any bytes into a
ParsedFeed or a ParseError within a time bound, with no control character in what it returns;
normalized text never contains NUL, C0 controls or lone surrogates; whether a page is another
than its entry's article is answered for any titles, texts and addresses.

The default profile is derandomized (the same examples on every run, so CI is reproducible);
INGEST_HYPOTHESIS_PROFILE=explore runs many more, randomly, to look for new failures."""

from __future__ import annotations

import json
import os
import re
import signal
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.article import another_page
from ingest.documents.feeds import parse_feed
from ingest.errors import ParseError
from ingest.normalize import canonical_url, clean_inline, clean_text
from ingest.types import Extracted, PageMetadata, ParsedEntry, ParsedFeed

settings.register_profile(
    "hostile",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = settings.get_profile(os.environ.get("INGEST_HYPOTHESIS_PROFILE", "hostile"))

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
INLINE_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
PARSE_BOUND_SECONDS = 10


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Fail the example (TimeoutError) if the block runs longer than `seconds`."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- canonical URLs -------------------------------------------------------------------------------


@st.composite
def url_like(draw: st.DrawFn) -> str:
    """URLs assembled from parts chosen to hit the edge cases: odd schemes and separators,
    user-info, IDN and IP hosts, ports out of range, dot segments, stray percent signs,
    whitespace and controls, tracking and valueless parameters, fragments."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "hTtPs", "ftp", "", "feed", "http:"]))
    sep = draw(st.sampled_from(["://", ":/", ":", ":///"]))
    user = draw(st.sampled_from(["", "user@", "u:p@", "@", "a@b@"]))
    host = draw(
        st.sampled_from(
            [
                *("example.com", "EXAMPLE.com.", "xn--bcher-kva.example", "bücher.example"),
                *("[::1]", "[::1", "127.0.0.1", "a..b", "", "ex ample.com", "ex%41mple.com"),
                *("-x-.com", "exa_mple.com", "1.2.3.4.5", "www.Example.COM"),
            ]
        )
    )
    port = draw(st.sampled_from(["", ":80", ":443", ":0", ":65536", ":99999999999", ":x", ":"]))
    pieces = [*"/a%2F.éZ~ ?#&=;+\\", "%", "%zz", "%e9", "..", "//", "%2e%2E", "\x00", "\t", "\n"]
    path = "".join(draw(st.lists(st.sampled_from(pieces), max_size=12)))
    keys = ["a", "utm_source", "A", "fbclid", "", "%75tm_x", "x y", "é", "gclid", "b", " "]
    values = ["", "1", "=", "%20", "é", "&", " ", "\u3000"]
    params = draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(values)), max_size=4))
    query = "&".join(k + (f"={v}" if v else "") for k, v in params)
    fragment = draw(st.sampled_from(["", "#x", "#", "#a?b"]))
    mark = "?" if query or draw(st.booleans()) else ""
    return f"{scheme}{sep}{user}{host}{port}{path}{mark}{query}{fragment}"


def _check_canonical(url: str) -> None:
    try:
        canonical = canonical_url(url)
    except ValueError:
        return  # documented: not an http(s) URL
    assert canonical_url(canonical) == canonical, (url, canonical)
    assert canonical == canonical.strip()


@PROFILE
@given(url_like())
def test_canonical_url_is_idempotent_on_edge_cases(url: str) -> None:
    """canonical_url(canonical_url(u)) == canonical_url(u); only ValueError is ever raised."""
    _check_canonical(url)


@PROFILE
@given(st.sampled_from(["", "http://", "https://", "HTTP://", "http:", "http:///"]), st.text())
def test_canonical_url_never_raises_on_any_string(prefix: str, rest: str) -> None:
    """Any string, http-looking or not: a canonical URL or ValueError, nothing else."""
    _check_canonical(prefix + rest)


# --- the feed-parsing boundary --------------------------------------------------------------------

FRAGMENTS = [
    *("<", ">", "&", "&amp;", "&#0;", "&#x1;", "&#xD800;", "&#1114112;", "<![CDATA[", "]]>"),
    *("<!--", "-->", "<?xml version='1.0'?>", "<!DOCTYPE x [<!ENTITY e 'v'>]>", "&e;"),
    *("\x00", "\x01", "\x1b", "\xff", "é", "\ud800", "<b>", "</b>", "<script>", " ", "\n"),
    *("<a href='javascript:x'>", "http://", "mailto:a@b", "<title>", "</title>", "<item>"),
    *("</item>", "<entry>", "</entry>", "<link>", "</link>", "<link href='x'/>", "<guid>"),
    *("</guid>", "<pubDate>", "</pubDate>", "Mon, 99 Foo 9999", "<author>", "</author>"),
    *("<description>", "</description>", "<rss version='2.0'>", "<channel>", "</channel>"),
    *("</rss>", "<feed xmlns='http://www.w3.org/2005/Atom'>", "</feed>", "<ttl>", "</ttl>"),
    "<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>",
    "</content:encoded>",
    "<media:content xmlns:media='http://search.yahoo.com/mrss/' url='x'/>",
    "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
    "xmlns='http://purl.org/rss/1.0/'>",
    "<sy:updatePeriod xmlns:sy='http://purl.org/rss/1.0/modules/syndication/'>",
]
TEXT = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8))


@st.composite
def xml_like(draw: st.DrawFn) -> bytes:
    text = "".join(draw(st.lists(TEXT, max_size=40)))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16"])), "surrogatepass")


@st.composite
def rss_with_junk(draw: st.DrawFn) -> bytes:
    inner = "".join(draw(st.lists(TEXT, max_size=30)))
    head = draw(
        st.sampled_from(
            [
                "",
                "\ufeff",
                "<?xml version='1.0' encoding='utf-8'?>",
                "<?xml version='1.0' encoding='utf-16'?>",
                "<?xml version='1.0' encoding='x-bogus'?>",
            ]
        )
    )
    return (
        f"{head}<rss version='2.0'><channel><title>t</title><item>"
        f"<guid isPermaLink='false'>g</guid>{inner}</item></channel></rss>"
    ).encode("utf-8", "surrogatepass")


JSON_KEYS = [
    *("id", "url", "title", "content_html", "content_text", "summary", "date_published"),
    *("date_modified", "authors", "author", "name", "image", "attachments", "mime_type"),
    *("language", "home_page_url"),
]


@st.composite
def json_feed_like(draw: st.DrawFn) -> bytes:
    value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(JSON_KEYS), inner, max_size=4)
        ),
        max_leaves=15,
    )
    items = st.lists(st.dictionaries(st.sampled_from(JSON_KEYS), value, max_size=6), max_size=4)
    doc: dict[str, Any] = {
        "version": draw(
            st.sampled_from(["https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1"])
        ),
        "items": draw(st.one_of(items, value)),
    }
    doc.update(draw(st.dictionaries(st.sampled_from(["title", "language", "authors"]), value)))
    return json.dumps(doc).encode()


HEADERS = [
    {},
    {"Content-Type": "text/html"},
    {"Content-Type": "application/rss+xml; charset=utf-16"},
    {"Content-Type": "text/xml; charset=bogus"},
    {"Content-Type": "application/json", "Content-Language": "\x00en"},
]


def _check_parse(body: bytes, headers: dict[str, str]) -> None:
    with time_bound(PARSE_BOUND_SECONDS):
        try:
            feed = parse_feed(body, "http://127.0.0.1:9/feed", headers)
        except ParseError as e:
            error = str(e)
        else:
            error = None
    if error is not None:
        assert error.startswith("not a feed: ")
        assert not CONTROL.search(error), error
        return
    assert isinstance(feed, ParsedFeed)
    values = [feed.title, feed.link, feed.language, feed.warning]
    for e in feed.entries:
        values += [e.guid, e.link, e.title, e.author, e.summary, e.content, e.image_url]
        assert e.published_at is None or e.published_at.tzinfo is not None
        assert e.updated_at is None or e.updated_at.tzinfo is not None
    for value in values:
        assert value is None or not CONTROL.search(value), value


@PROFILE
@given(st.binary(max_size=400), st.sampled_from(HEADERS))
def test_any_bytes_parse_to_a_feed_or_a_parse_error(body: bytes, headers: dict[str, str]) -> None:
    """Arbitrary bytes: a ParsedFeed or ParseError("not a feed: ..."), within the bound."""
    _check_parse(body, headers)


@PROFILE
@given(st.one_of(xml_like(), rss_with_junk(), json_feed_like()), st.sampled_from(HEADERS))
def test_feed_like_documents_parse_to_clean_values_or_a_parse_error(
    body: bytes, headers: dict[str, str]
) -> None:
    """Documents close to RSS, Atom, RDF and JSON Feed with junk spliced in (entities, CDATA,
    controls, surrogates, wrong types in JSON): the same contract, and no control character
    in any value returned."""
    _check_parse(body, headers)


def test_json_feed_with_non_list_attachments_parses() -> None:
    """Found by the property above: `"attachments": true` raised TypeError from parse_feed."""
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1",'
        b' "items": [{"id": 0, "url": null, "attachments": true}]}'
    )
    assert [e.guid for e in parse_feed(body, "http://127.0.0.1:9/feed").entries] == ["0"]


# --- normalized text -----------------------------------------------------------------------------


@PROFILE
@given(st.text())
def test_clean_text_has_no_controls(text: str) -> None:
    """Body text never keeps NUL, C0 controls (but newline), DEL or lone surrogates."""
    assert not CONTROL.search(clean_text(text))


@PROFILE
@given(st.text(), st.integers(min_value=1, max_value=3000))
def test_clean_inline_has_no_controls_nor_newlines(text: str, max_length: int) -> None:
    """One-line fields never keep any control character, newlines included, and respect their
    length limit."""
    cleaned = clean_inline(text, max_length=max_length)
    assert cleaned is None or not INLINE_CONTROL.search(cleaned)
    assert cleaned is None or len(cleaned) <= max_length


# Words and the whitespace between them as feeds and pages write it (spaces, tabs, line
# breaks, no-break and ideographic spaces), decomposed accents and invisible characters.
_WORDS = st.lists(st.sampled_from([*"abAÄé", "e\u0301", "\u200b", "&amp;"]), max_size=8).map(
    "".join
)
_SPACES = st.text(alphabet=" \t\n\r\u00a0\u2028\u3000", min_size=1)


@PROFILE
@given(st.lists(st.tuples(_WORDS, _SPACES), max_size=12), st.integers(min_value=1, max_value=40))
def test_clean_inline_is_one_tidy_line(pieces: list[tuple[str, str]], max_length: int) -> None:
    """A one-line field (a title, a byline, a summary, a tag) is NFC, with its whitespace
    collapsed to single spaces and none at either end, also where its length limit cuts it."""
    cleaned = clean_inline("".join(word + space for word, space in pieces), max_length=max_length)
    if cleaned is None:
        return
    assert unicodedata.is_normalized("NFC", cleaned)
    assert cleaned == cleaned.strip()
    assert " ".join(cleaned.split()) == cleaned
    assert len(cleaned) <= max_length


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com? #x", "http://example.com/?%20"),
        ("http://example.com/a?q=x y", "http://example.com/a?q=x%20y"),
    ],
)
def test_whitespace_in_the_query_is_encoded(url: str, expected: str) -> None:
    """Found by the property above: a query ending in whitespace was kept raw, so the canonical
    URL changed when canonicalized again (its whitespace stripped)."""
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected


@PROFILE
@given(
    st.one_of(st.none(), st.text(max_size=80)),
    st.one_of(st.none(), st.text(max_size=400)),
    st.one_of(st.none(), st.text(max_size=80)),
    st.text(max_size=400),
    st.one_of(st.none(), url_like(), st.text(max_size=40)),
    st.one_of(st.none(), url_like(), st.text(max_size=40)),
    st.one_of(st.none(), url_like()),
)
def test_another_page_answers_for_anything(
    title: str | None,
    summary: str | None,
    page_title: str | None,
    text: str,
    link: str | None,
    canonical: str | None,
    served_at: str | None,
) -> None:
    """`another_page` (asked of every page stored for an entry) answers True or False for any
    titles, texts, links and canonical addresses: it raises nothing into the pipeline."""
    entry = ParsedEntry(None, link, title=title, summary=summary)
    page = Extracted(text=text, metadata=PageMetadata(title=page_title, canonical_url=canonical))
    assert another_page(entry, page, served_at) in (True, False)
