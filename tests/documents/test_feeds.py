"""parse_feed: the fixture corpus in tests/data/feeds, then edge cases one at a time.

Each fixture `NAME.EXT` sits beside `NAME.expected.json`, written by hand from what the fixture
says: the ParsedFeed as JSON (datetimes as ISO 8601 UTC strings) or, for `*.bad.*` fixtures,
{"error": message}. `fetched_from` is the URL the body came from; keys starting with "_" are notes.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import feedparser.api
import feedparser.http
import pytest

from ingest.documents.feeds import looks_like_feed, parse_feed
from ingest.documents.sitemaps import parse_w3c_datetime
from ingest.errors import ParseError
from ingest.types import ParsedEntry, ParsedFeed
from tests.support.paths import DATA

FEEDS = DATA / "feeds"
FIXTURES = sorted(p for p in FEEDS.iterdir() if not p.name.endswith(".expected.json"))
GOOD = [p for p in FIXTURES if ".bad." not in p.name]
BAD = [p for p in FIXTURES if ".bad." in p.name]
URL = "https://example.com/feed/"
GUID = "<guid isPermaLink='false'>g</guid>"  # not a permalink: feedparser leaves it as it is


def _expectation(fixture: Path) -> dict[str, Any]:
    doc = json.loads(fixture.with_suffix(".expected.json").read_text(encoding="utf-8"))
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def _with_datetimes(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    for key in ("published_at", "updated_at"):
        if out[key] is not None:
            out[key] = datetime.fromisoformat(out[key])
    out["tags"] = tuple(out["tags"])
    return out


def _as_dict(feed: ParsedFeed) -> dict[str, Any]:
    out = dataclasses.asdict(feed)
    out["entries"] = list(out["entries"])
    return out


def _assert_utc(feed: ParsedFeed) -> None:
    for entry in feed.entries:
        for value in (entry.published_at, entry.updated_at):
            assert value is None or value.utcoffset() == timedelta(0)


def _rss(items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.com/</link>{channel}{items}</channel></rss>"
    ).encode()


def _one(body: bytes, url: str = URL, headers: dict[str, str] | None = None) -> ParsedEntry:
    (entry,) = parse_feed(body, url, headers).entries
    return entry


def _json_feed(*items: dict[str, Any]) -> bytes:
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": list(items)}
    return json.dumps(feed).encode()


# --- the corpus ----------------------------------------------------------------------------------


def test_every_fixture_has_an_expectation() -> None:
    """A fixture without its .expected.json would silently go untested."""
    assert FIXTURES
    missing = [p.name for p in FIXTURES if not p.with_suffix(".expected.json").exists()]
    assert missing == []


@pytest.mark.parametrize("fixture", GOOD, ids=lambda p: p.name)
def test_fixture_parses_as_expected(fixture: Path) -> None:
    """Each good fixture parses to exactly its hand-written expectation, datetimes in UTC."""
    expected = _expectation(fixture)
    url, headers = expected.pop("fetched_from"), expected.pop("headers", None)
    expected["entries"] = [_with_datetimes(e) for e in expected["entries"]]

    feed = parse_feed(fixture.read_bytes(), url, headers)

    assert _as_dict(feed) == expected
    _assert_utc(feed)


@pytest.mark.parametrize("fixture", BAD, ids=lambda p: p.name)
def test_bad_fixture_raises_parse_error(fixture: Path) -> None:
    """Each *.bad.* fixture raises ParseError carrying its URL and a message saying why."""
    expected = _expectation(fixture)

    with pytest.raises(ParseError) as caught:
        parse_feed(fixture.read_bytes(), expected["fetched_from"])

    assert str(caught.value) == expected["error"]
    assert caught.value.url == expected["fetched_from"]


@pytest.mark.parametrize("fixture", GOOD, ids=lambda p: p.name)
def test_looks_like_feed_accepts_every_good_fixture(fixture: Path) -> None:
    """The cheap sniff recognizes RSS 2.0, RDF, Atom and JSON Feed."""
    assert looks_like_feed(fixture.read_bytes())


@pytest.mark.parametrize(
    "name", ["html-page.bad.html", "not-jsonfeed.bad.json", "blank.bad.txt", "sitemap.bad.xml"]
)
def test_looks_like_feed_rejects_non_feeds(name: str) -> None:
    """The cheap sniff says no to an HTML page, other JSON, whitespace and other XML."""
    assert not looks_like_feed((FEEDS / name).read_bytes())


PHP_NOTICES = {
    "html-warning": (
        "<br />\n<b>Warning</b>:  Cannot modify header information - headers already sent by "
        "(output started at /var/www/wp-config.php:1) in <b>/var/www/wp-includes/feed.php</b>"
        " on line <b>12</b><br />\n"
    ),
    "text-notice": "Deprecated: Function create_function() is deprecated in /var/www/a.php "
    "on line 3\n",
    "blank-lines": "\n\n",
}


@pytest.mark.parametrize("notice", PHP_NOTICES.values(), ids=PHP_NOTICES.keys())
def test_a_feed_after_a_php_notice_looks_like_a_feed(notice: str) -> None:
    """A feed whose server printed a PHP warning or notice before its XML declaration (it
    also keeps the script from setting its Content-Type: served as text/html) is a feed, as
    its parse finds it: `feeds add` registered nothing for it, and each poll took it for a
    web page and went looking for its site's feeds (another one replacing it where found).
    An XHTML page opening with an XML declaration is still none."""
    body = (notice + '<?xml version="1.0" encoding="UTF-8"?>\n').encode() + (
        FEEDS / "rss20.xml"
    ).read_bytes().partition(b"?>")[2]
    assert looks_like_feed(body)
    assert parse_feed(body, URL).entries
    xhtml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'
        '<body><pre>&lt;?xml version="1.0"?&gt;&lt;rss version="2.0"&gt;</pre></body></html>'
    )
    assert not looks_like_feed((notice + xhtml).encode())


@pytest.mark.parametrize("fixture", GOOD, ids=lambda p: p.name)
def test_truncated_fixture_parses_or_raises_parse_error(fixture: Path) -> None:
    """A body cut off anywhere gives a ParsedFeed or a ParseError, never another exception."""
    body = fixture.read_bytes()
    messages = []
    for end in range(0, len(body), max(1, len(body) // 12)):
        try:
            parse_feed(body[:end], URL)
        except ParseError as e:
            messages.append(str(e))
    assert all(m.startswith("not a feed: ") for m in messages)


# --- never opens anything ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"http://127.0.0.1:1/x", b"/etc/passwd", b"file:///etc/passwd", b"feed://x.test/"]
)
def test_body_that_looks_like_a_url_or_path_is_not_opened(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body that reads like a URL or a path is parsed as text: nothing fetched, no file opened."""
    opened: list[object] = []

    def record(*args: object, **kwargs: object) -> None:
        opened.append(args)

    monkeypatch.setattr(feedparser.http, "get", record)
    monkeypatch.setattr(urllib.request, "urlopen", record)
    # feedparser.api calls the builtin open(); a module global of that name shadows it there.
    monkeypatch.setattr(feedparser.api, "open", record, raising=False)

    with pytest.raises(ParseError, match=r"^not a feed: neither XML nor JSON$"):
        parse_feed(body, URL)
    assert opened == []


def test_external_entities_are_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """An XXE payload neither reads the file nor fails the feed."""
    opened: list[object] = []
    monkeypatch.setattr(feedparser.api, "open", lambda *a: opened.append(a), raising=False)
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><title>T</title>'
        b"<item><title>a &x; b</title><guid>g1</guid></item></channel></rss>"
    )

    entry = _one(body)

    assert opened == []
    assert entry.title is not None
    assert "root:" not in entry.title


NETSCAPE_091 = (
    '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    '"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
)


@pytest.mark.parametrize(
    "doctype",
    [NETSCAPE_091, '<!DOCTYPE rss SYSTEM "https://example.com/rss.dtd">'],
    ids=["netscape-0.91", "system"],
)
@pytest.mark.parametrize("between", ["", "\n"], ids=["same-line", "own-line"])
def test_html_entities_of_a_feed_whose_dtd_is_not_read_are_kept(doctype: str, between: str) -> None:
    """A feed whose DOCTYPE names an external DTD (RSS 0.91's Netscape one, which declares
    HTML's entities) and that uses those entities (`&eacute;`, `&mdash;`, `&copy;`): the DTD
    is never fetched, and the entities are read as HTML's, whether the DOCTYPE has a line of
    its own or follows the XML declaration on its line. On the same line, feedparser left the
    DOCTYPE in place and expat skipped every such reference without a word: `été` stored as
    `t`, silently."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?>{between}{doctype}\n<rss version="0.91">'
        "<channel><title>Caf&eacute;</title><link>https://example.com/</link>"
        "<item><title>L&apos;&eacute;t&eacute; &mdash; &copy; 2024</title>"
        "<link>https://example.com/a</link><description>x &amp; y&nbsp;&eacute;</description>"
        "</item></channel></rss>"
    ).encode()
    feed = parse_feed(body, URL)
    (entry,) = feed.entries
    assert (feed.title, entry.title, entry.summary) == ("Café", "L'été — © 2024", "x & y é")


@pytest.mark.parametrize(
    ("head", "subset"),
    [
        ("", '<!ENTITY who "Ministry"><!ENTITY eacute "&#233;">'),
        ("\n", '<!ENTITY who "Ministry"><!ENTITY eacute "&#233;">'),
        ("", '\n<!ENTITY who "Ministry">\n<!ENTITY eacute "&#233;">\n'),
        ("\n", '\n<!ENTITY who "Ministry">\n<!ENTITY eacute "&#233;">\n'),
        ("\n", '\n  <!ENTITY who "Ministry">  <!ENTITY eacute "&#233;">\n'),
        ("\n", "\n<!ENTITY who 'Ministry'>\n<!ENTITY eacute '&#233;'>\n"),
        ("\n", '\n<!ELEMENT rss ANY>\n<!ENTITY who "Ministry">\n<!ENTITY eacute "&#233;">\n'),
        ("\n", '\n<!-- names -->\n<!ENTITY who "Min&#105;stry">\n<!ENTITY eacute "&#233;">\n'),
        ("", '<!ENTITY who "Min&#x69;stry"><!ENTITY eacute "&#xE9;">'),
    ],
    ids=[
        "same-line",
        "own-line",
        "same-line-declarations-on-lines",
        "own-line-declarations-on-lines",
        "two-declarations-on-a-line",
        "single-quotes",
        "element-declaration",
        "comment-and-character-reference",
        "same-line-character-reference",
    ],
)
@pytest.mark.parametrize("external", ["", NETSCAPE_091[len("<!DOCTYPE rss") : -1]], ids=["", "dtd"])
def test_entities_of_an_internal_dtd_subset_are_read_whatever_its_layout(
    head: str, subset: str, external: str
) -> None:
    """Entities declared in the DOCTYPE's internal subset are read, wherever the DOCTYPE and
    its declarations stand: after the XML declaration on its line or on a line of their own,
    one declaration a line or several, in single or double quotes, beside an element
    declaration or a comment, with a character reference in a value, with an external DTD
    named or without. feedparser reads them only from a DOCTYPE and declarations each at the
    start of a line, in double quotes, with nothing else in the subset; otherwise the
    DOCTYPE was cut at its first `>` (an XML syntax error) or kept without its declarations,
    and every reference to them was left as written (`&who;`) or dropped (`x &who y`)."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?>{head}<!DOCTYPE rss{external} [{subset}]>\n'
        '<rss version="2.0"><channel><title>t &who;</title><link>https://example.com/</link>'
        "<item><guid isPermaLink='false'>g</guid><title>A &who; B &eacute;</title>"
        "<description>x &who; y</description></item></channel></rss>"
    ).encode()
    feed = parse_feed(body, URL)
    (entry,) = feed.entries
    assert (feed.title, entry.title, entry.summary) == (
        "t Ministry",
        "A Ministry B é",
        "x Ministry y",
    )


def _texts(feed: ParsedFeed) -> list[str]:
    fields = [feed.title] + [
        value
        for entry in feed.entries
        for value in (entry.title, entry.summary, entry.content, entry.author)
    ]
    return [value for value in fields if value]


@pytest.mark.parametrize("quote", ['"', "'"], ids=["double", "single"])
@pytest.mark.parametrize("between", ["", "\n"], ids=["same-line", "own-line"])
def test_an_entity_repeated_past_expat_s_limit_is_not_expanded_by_the_loose_parser(
    quote: str, between: str
) -> None:
    """A 1,000-character internal entity referenced 10,000 times (a 10 MB expansion from a
    31 KB document) stops expat at its amplification limit, and feedparser hands the document
    to its loose parser with the entities its DTD declares: that parser expanded every
    reference, without a bound (from 50 KB times 5,000, a 250-million-character title and
    750 MB, for 15 s). It expands at most the document's own length of declared entities'
    text; the rest of the references stay as written."""
    big = "x" * 1000
    body = (
        f'<?xml version="1.0"?>{between}<!DOCTYPE rss [\n<!ENTITY a {quote}{big}{quote}>\n]>\n'
        '<rss version="2.0"><channel><title>T</title><item>'
        f"<guid isPermaLink='false'>g</guid><title>{'&a;' * 5000}</title>"
        f"<description>{'&a;' * 5000}</description></item></channel></rss>"
    ).encode()
    feed = parse_feed(body, URL)
    assert feed.entries
    assert sum(len(text) for text in _texts(feed)) < 2 * len(body)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not a feed: empty body"),
        (b"\xef\xbb\xbf \r\n", "not a feed: empty body"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a feed: neither XML nor JSON"),
        (b"{not json", "not a feed: invalid JSON: "),
        (b"[1, 2, 3]", "not a feed: JSON document that is not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1"}', "not a feed: JSON Feed without an"),
        (b"<html><body><p>hi</p></body></html>", "not a feed: HTML document"),
        (b"<opml version='2.0'><body/></opml>", "not a feed: no RSS, Atom or RDF root element"),
        (b'<rss version="2.0"><channel><title>T</tit', "not a feed: XML syntax error at line 1"),
    ],
)
def test_non_feeds_raise_parse_error_saying_why(body: bytes, message: str) -> None:
    """Empty, binary, non-feed JSON, HTML, other XML and broken XML each get a clear message."""
    with pytest.raises(ParseError) as caught:
        parse_feed(body, URL)
    assert str(caught.value).startswith(message)


def test_syntax_error_line_is_counted_without_a_declaration() -> None:
    """feedparser prepends an XML declaration if there is none; the line reported is the body's."""
    body = b'<rss version="2.0">\n<channel>\n<title>T</title>\n<item><title>a</ti'
    with pytest.raises(ParseError, match="XML syntax error at line 4:"):
        parse_feed(body, URL)


def test_feed_served_as_text_html_is_used_with_a_warning() -> None:
    """A wrong Content-Type is a bozo note, not an error: entries kept, the note is the warning."""
    feed = parse_feed(_rss(f"<item>{GUID}</item>"), URL, {"Content-Type": "text/html"})

    assert [e.guid for e in feed.entries] == ["g"]
    assert feed.warning == "NonXMLContentType: text/html is not an XML media type"


# --- entries -------------------------------------------------------------------------------------


def test_entries_without_link_or_guid_are_dropped() -> None:
    """An entry identified by neither a link nor a guid is dropped; the others are kept in order."""
    body = _rss(
        "<item><title>only link</title><link>https://example.com/a</link></item>"
        "<item><title>nothing</title><description>x</description></item>"
        "<item><title>only guid</title><guid isPermaLink='false'>g-2</guid></item>"
        "<item><title>empty guid</title><guid isPermaLink='false'>  </guid></item>"
    )
    feed = parse_feed(body, URL)
    assert [(e.title, e.link, e.guid) for e in feed.entries] == [
        ("only link", "https://example.com/a", None),
        ("only guid", None, "g-2"),
    ]


FEEDBURNER = "xmlns:feedburner='http://rssnamespace.org/feedburner/ext/1.0'"


def _feedburner_rss(item: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0' {FEEDBURNER}><channel>"
        f"<title>T</title><link>https://example.com/</link>{item}</channel></rss>"
    ).encode()


@pytest.mark.parametrize("link", ["<link/>", "<link>   </link>", "<link>javascript:void(0)</link>"])
@pytest.mark.parametrize("permalink", ["", " isPermaLink='true'"])
@pytest.mark.parametrize("guid_first", [False, True], ids=["link-first", "guid-first"])
def test_a_permalink_guid_is_the_link_of_an_item_whose_link_is_no_address(
    link: str, permalink: str, guid_first: bool
) -> None:
    """An RSS item whose `<link>` is empty, blank or no http(s) address and whose `<guid>` is
    a permalink (RSS 2.0: unless isPermaLink="false") has that guid as its link, whichever
    comes first, as an item without `<link>` has. A guid that is no permalink is no link."""

    def item(attributes: str) -> bytes:
        guid = f"<guid{attributes}>https://example.com/2024/story</guid>"
        return _rss(f"<item><title>x</title>{guid + link if guid_first else link + guid}</item>")

    assert _one(item(permalink)).link == "https://example.com/2024/story"
    assert _one(item(" isPermaLink='false'")).link is None


@pytest.mark.parametrize("link", ["#", "#top", "", URL, URL + "#item-1"])
def test_a_link_to_the_feed_itself_is_no_entry_s_link(link: str) -> None:
    """A link that leads back to the feed document (`<link>#</link>`, an Atom `href=""`,
    the feed's own address, a JSON Feed item's `"url": "#"`) is no entry's page: the
    entry's permalink guid is its link, else it has none. Fetched, the feed was stored as an
    article, and every other entry of the document linking so was dropped as its
    duplicate."""
    item = (
        f"<item><title>x</title><link>{link}</link><guid>https://example.com/2024/a</guid></item>"
    )
    assert _one(_rss(item)).link == "https://example.com/2024/a"
    assert _one(_rss(f"<item><title>x</title><link>{link}</link>{GUID}</item>")).link is None
    atom = (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        f"<entry><id>urn:1</id><title>x</title><link rel='alternate' href='{link}'/>"
        "</entry></feed>"
    ).encode()
    assert _one(atom).link is None
    assert _one(_json_feed({"id": "1", "url": link})).link is None


def test_feedburner_original_link_is_the_entry_s_link() -> None:
    """A FeedBurner feed's <link> is a feedproxy.google.com redirect (a service long shut
    down); `feedburner:origLink` is the article's own address: it is the entry's link."""
    item = (
        "<item><title>x</title><link>http://feedproxy.google.com/~r/example/~3/AbC/</link>"
        f"{GUID}<feedburner:origLink>https://example.com/2024/story</feedburner:origLink></item>"
    )
    assert _one(_feedburner_rss(item)).link == "https://example.com/2024/story"


def test_feedburner_original_link_of_an_atom_entry_is_its_link() -> None:
    body = (
        f"<feed xmlns='http://www.w3.org/2005/Atom' {FEEDBURNER}><title>T</title><id>urn:t</id>"
        "<entry><id>urn:1</id><title>x</title>"
        "<link rel='alternate' href='http://feedproxy.google.com/~r/example/~3/AbC/'/>"
        "<feedburner:origLink>https://example.com/2024/story</feedburner:origLink></entry></feed>"
    ).encode()
    assert _one(body).link == "https://example.com/2024/story"


@pytest.mark.parametrize(
    "kind", ["text/html; charset=utf-8", "TEXT/HTML", "application/xhtml+xml;charset=UTF-8"]
)
def test_an_atom_alternate_link_whose_type_has_parameters_is_the_entry_s_link(kind: str) -> None:
    """A media type is matched without its parameters and its case (RFC 9110 §8.3.1): an
    Atom entry whose one link is `type="text/html; charset=utf-8"` has it as its link."""
    body = (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        "<entry><id>urn:1</id><title>x</title><updated>2025-01-01T00:00:00Z</updated>"
        f"<link rel='alternate' type='{kind}' href='https://example.com/2025/story'/>"
        "</entry></feed>"
    ).encode()
    assert _one(body).link == "https://example.com/2025/story"


def test_an_atom_alternate_link_of_another_media_type_is_not_the_entry_s_page() -> None:
    """An alternate in another format (the story's audio) is passed over for the HTML one."""
    body = (
        b"<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
        b"<entry><id>urn:1</id><title>x</title><updated>2025-01-01T00:00:00Z</updated>"
        b"<link rel='alternate' type='audio/mpeg' href='https://example.com/2025/story.mp3'/>"
        b"<link rel='alternate' type='text/html; charset=utf-8'"
        b" href='https://example.com/2025/story'/></entry></feed>"
    )
    assert _one(body).link == "https://example.com/2025/story"


@pytest.mark.parametrize(
    "orig", ["javascript:alert(1)", "mailto:a@example.com", "", "   ", "ftp://example.com/x"]
)
def test_a_feedburner_original_link_that_is_no_http_url_leaves_the_link(orig: str) -> None:
    """An origLink that is no http(s) address is ignored as any such link is: the entry keeps
    its <link>."""
    item = (
        f"<item><title>x</title><link>https://example.com/a</link>{GUID}"
        f"<feedburner:origLink>{orig}</feedburner:origLink></item>"
    )
    assert _one(_feedburner_rss(item)).link == "https://example.com/a"


def test_a_relative_feedburner_original_link_resolves_against_the_feed_url() -> None:
    item = (
        "<item><title>x</title><link>http://feedproxy.google.com/~r/x/~3/AbC/</link>"
        f"{GUID}<feedburner:origLink>../2024/story</feedburner:origLink></item>"
    )
    entry = _one(_feedburner_rss(item), "https://x.test/news/rss/")
    assert entry.link == "https://x.test/news/2024/story"


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "  javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "mailto:tips@example.com",
        "ftp://example.com/file",
    ],
)
def test_non_http_links_become_none(link: str) -> None:
    """Only absolute http(s) links survive; the entry is kept on its guid."""
    item = f"<item><title>x</title><link>{link}</link>{GUID}</item>"
    entry = _one(_rss(item))
    assert (entry.link, entry.guid) == (None, "g")


def test_permalink_guid_is_resolved_and_used_as_link() -> None:
    """feedparser treats a guid without isPermaLink="false" as a URL: resolved, and the link."""
    entry = _one(_rss("<item><guid>12345</guid></item>"), "https://x.test/news/rss")
    assert (entry.guid, entry.link) == ("https://x.test/news/12345", "https://x.test/news/12345")


def test_relative_link_resolves_against_the_feed_url() -> None:
    """A relative <link> is made absolute with the URL the feed was fetched from."""
    entry = _one(_rss("<item><link>../2024/story?id=1</link></item>"), "https://x.test/news/rss/")
    assert entry.link == "https://x.test/news/2024/story?id=1"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_rss("<item><link>../2024/story</link></item>"), id="rss-link"),
        pytest.param(_rss("<item><guid>../2024/story</guid></item>"), id="permalink-guid"),
        pytest.param(
            b"<feed xmlns='http://www.w3.org/2005/Atom' xml:base='/news/'><title>T</title>"
            b"<entry><id>urn:1</id><title>x</title><link href='2024/story'/></entry></feed>",
            id="atom-xml-base",
        ),
        pytest.param(_json_feed({"id": "1", "url": "../2024/story"}), id="json-feed"),
    ],
)
@pytest.mark.parametrize(
    "url", ["https://Reader:S3cret@x.test/news/rss/", "https://T0KEN@x.test/news/rss/"]
)
def test_relative_links_of_a_feed_with_user_info_resolve_without_it(body: bytes, url: str) -> None:
    """A private feed's credential in its URL's user-info is for its own requests: its relative
    links are its site's addresses without it."""
    assert _one(body, url).link == "https://x.test/news/2024/story"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            _rss("<item><link>www.example.org/2024/story</link></item>"),
            "https://www.example.org/2024/story",
            id="rss-link",
        ),
        pytest.param(
            _rss("<item><link> WWW.Example.org:8080/a?id=1</link></item>"),
            "https://WWW.Example.org:8080/a?id=1",
            id="port-and-query",
        ),
        pytest.param(
            _rss("<item><guid>www.example.org/2024/story</guid></item>"),
            "https://www.example.org/2024/story",
            id="permalink-guid",
        ),
        pytest.param(
            b"<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><entry><id>urn:1</id>"
            b"<title>x</title><link href='www.example.org/2024/story'/></entry></feed>",
            "https://www.example.org/2024/story",
            id="atom",
        ),
        pytest.param(
            _json_feed({"id": "1", "url": "www.example.org/2024/story"}),
            "https://www.example.org/2024/story",
            id="json-feed",
        ),
        # A relative path whose first segment is no host name beginning with www. stays one.
        pytest.param(
            _rss("<item><link>wwwroot/story.html</link></item>"),
            "https://x.test/news/wwwroot/story.html",
            id="wwwroot",
        ),
        pytest.param(
            _rss("<item><link>example.org/2024/story</link></item>"),
            "https://x.test/news/example.org/2024/story",
            id="no-www",
        ),
        pytest.param(
            _rss("<item><link>story/www.example.org</link></item>"),
            "https://x.test/news/story/www.example.org",
            id="later-segment",
        ),
    ],
)
def test_a_link_written_as_a_www_host_without_its_scheme_is_that_host_s(
    body: bytes, expected: str
) -> None:
    """A link that names a host beginning with `www.` but leaves out the scheme
    (`<link>www.example.org/2024/story</link>`, a CMS writing its links so) is that host's
    page, over the feed's own scheme, as `//www.example.org/2024/story` would be; read as a
    path it would be a page of the feed's own site that does not exist."""
    assert _one(body, "https://x.test/news/rss").link == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("&lt;b&gt;Big&lt;/b&gt; news", "Big news"),
        ("<![CDATA[<i>Italic</i> &amp; <span class='x'>bold</span>]]>", "Italic & bold"),
        ("Tom &amp;amp; Jerry", "Tom & Jerry"),
        ("a &lt; b", "a < b"),
        ("  spread\n\tover   lines  ", "spread over lines"),
        ("<![CDATA[<p>Two</p><p>paragraphs</p>]]>", "Two paragraphs"),
        ("<![CDATA[<script>alert(1)</script>Safe]]>", "Safe"),
        ("Fish&amp;not chips", "Fish&not chips"),
    ],
)
def test_html_in_titles_is_stripped(title: str, expected: str) -> None:
    """Titles are one line of plain text: tags stripped, entities decoded, spaces collapsed."""
    entry = _one(_rss(f"<item><title>{title}</title>{GUID}</item>"))
    assert entry.title == expected


def test_atom_html_title_is_stripped() -> None:
    """An Atom title of type html is text once its markup is removed."""
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><entry><id>e</id>'
        b'<title type="html">&lt;em&gt;Breaking:&lt;/em&gt; rain</title></entry></feed>'
    )
    assert _one(body).title == "Breaking: rain"


def test_summary_keeps_paragraphs_as_blank_lines() -> None:
    """HTML summaries become plain text with one blank line between paragraphs, line breaks kept."""
    html = "<div><p>One\n two</p>\n\n<p>Three<br/>four</p><ul><li>a</li><li>b</li></ul></div>"
    entry = _one(_rss(f"<item>{GUID}<description><![CDATA[{html}]]></description></item>"))
    assert entry.summary == "One two\n\nThree\nfour\n\na\nb"


def test_two_line_breaks_in_a_row_separate_paragraphs() -> None:
    """Text whose paragraphs are separated by <br><br> (as Blogger's and older WordPress feeds'
    are) keeps them as paragraphs; a single <br>, and the ends of list items, are lines."""
    html = "One<br /><br />\nTwo<br/> <br>Three<br>four<ul><li>a<br></li><li>b</li></ul>"
    entry = _one(_rss(f"<item>{GUID}<description><![CDATA[{html}]]></description></item>"))
    assert entry.summary == "One\n\nTwo\n\nThree\nfour\n\na\nb"


def test_content_is_the_longest_content_value() -> None:
    """Of several Atom content elements the longest is the content."""
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><entry><id>e</id>'
        b'<content type="text">short</content>'
        b'<content type="html">&lt;p&gt;the longer one&lt;/p&gt;</content></entry></feed>'
    )
    assert _one(body).content == "the longer one"


def test_escaped_html_in_content_not_typed_as_html_is_read_as_html() -> None:
    """Atom content without type="html" (its default is text) that carries escaped markup, as
    publishers' feeds often do: its tags are markup, not words of the text (a full-text feed
    would otherwise store them in the article)."""
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><entry><id>e</id>'
        b"<content>&lt;p&gt;One &amp;amp; two.&lt;/p&gt;&lt;p&gt;Three&lt;br/&gt;four&lt;/p&gt;"
        b"</content><summary type='text'>&lt;p&gt;A &lt;em&gt;short&lt;/em&gt; one.&lt;/p&gt;"
        b"</summary></entry></feed>"
    )
    entry = _one(body)
    assert entry.content == "One & two.\n\nThree\nfour"
    assert entry.summary == "A short one."
    plain = b'<content type="text">Tags such as &lt;b&gt; make text bold.</content>'
    assert _one(
        body.replace(body[body.index(b"<content>") : body.index(b"<summary")], plain)
    ).content == ("Tags such as <b> make text bold.")


def test_html_content_escaped_twice_is_read_as_html() -> None:
    """HTML content (or summary) whose markup was escaped once more than HTML asks, as some
    publishers' feeds are (`<![CDATA[&lt;p&gt;…]]>`, `&amp;lt;p&amp;gt;…`, a JSON Feed's
    `content_html` of `&lt;p&gt;…`): its tags are markup, not words of the text, and its
    paragraphs are kept. Content with tags of its own keeps the escaped ones it shows (code in
    a post about HTML), and text that only shows a "<" keeps it."""
    once = "<p>One &amp;amp; two.</p><p>Three<br/>four</p>"
    escaped = once.replace("<", "&lt;").replace(">", "&gt;")
    expected = "One & two.\n\nThree\nfour"
    cdata = f"<item>{GUID}<content:encoded><![CDATA[{escaped}]]></content:encoded></item>"
    plain = f"<item>{GUID}<description>{escaped.replace('&', '&amp;')}</description></item>"
    assert _one(_rss(cdata)).content == expected
    assert _one(_rss(plain)).summary == expected
    assert _one(_json_feed({"id": "1", "content_html": escaped})).content == expected
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><entry><id>e</id>'
        b'<content type="html">' + escaped.replace("&", "&amp;").encode() + b"</content>"
        b"</entry></feed>"
    )
    assert _one(atom).content == expected
    code = "<p>Close it with <code>&lt;/div&gt;</code>.</p>"
    assert _one(_json_feed({"id": "1", "content_html": code})).content == "Close it with </div>."
    shown = "Tom &amp;lt;3 Jerry, and a &amp;lt; b"
    assert _one(_json_feed({"id": "1", "content_html": shown})).content == "Tom <3 Jerry, and a < b"


def test_character_references_escaped_twice_in_html_content_are_decoded() -> None:
    """HTML content whose character references were escaped once more than HTML asks, as
    some publishers' feeds are: they are decoded (an excerpt's "[&amp;#8230;]" ends in an
    ellipsis), as a plain field's are; a lone "&" stays."""
    html = "<p>Don&amp;#8217;t stop AT&amp;T &amp;amp; Co [&amp;#8230;]</p>"
    entry = _one(_rss(f"<item>{GUID}<content:encoded><![CDATA[{html}]]></content:encoded></item>"))
    assert entry.content == "Don\u2019t stop AT&T & Co [\u2026]"


def test_a_media_description_is_neither_the_content_nor_the_summary_of_an_article() -> None:
    """media:description describes a media object (a photo's caption): feedparser takes it for
    a second description, stored as the entry's content, or as its summary when it comes
    first. It is the summary only of an entry that has no other text (a video feed)."""
    media = 'xmlns:media="http://search.yahoo.com/mrss/"'
    caption = (
        "<media:content url='https://x.test/a.jpg' medium='image'>"
        "<media:description>The mayor, in 2019.</media:description></media:content>"
    )
    for item in (
        f"<item>{GUID}<description>The story.</description>{caption}</item>",
        f"<item>{GUID}{caption}<description>The story.</description></item>",
    ):
        body = f'<rss version="2.0" {media}><channel><title>T</title>{item}</channel></rss>'
        entry = _one(body.encode())
        assert (entry.summary, entry.content) == ("The story.", None)
    video = (
        f"<feed xmlns='http://www.w3.org/2005/Atom' {media}><title>F</title><entry><id>urn:v</id>"
        "<media:group><media:title>Clip</media:title><media:description>What the clip shows."
        "</media:description></media:group></entry></feed>"
    )
    entry = _one(video.encode())
    assert (entry.summary, entry.content) == ("What the clip shows.", None)


def test_an_itunes_summary_is_not_the_content_of_an_article() -> None:
    """itunes:summary is a podcast episode's notes: feedparser takes it for a second summary,
    which became the entry's content (its summary after a content:encoded), and when it came
    first, the <description> became the content. The content is content:encoded's text or
    none; itunes:summary is the summary only of an entry with no other text (an empty
    <description/> is none), and itunes:subtitle is neither."""
    ns = (
        'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    )
    description = "<description>The episode.</description>"
    notes = "<itunes:summary>Show notes, links and credits.</itunes:summary>"
    subtitle = "<itunes:subtitle>A short subtitle.</itunes:subtitle>"
    full = "<content:encoded><![CDATA[<p>The full text.</p>]]></content:encoded>"

    def parsed(*elements: str) -> tuple[str | None, str | None]:
        body = f'<rss version="2.0" {ns}><channel><title>T</title><item>{GUID}'
        entry = _one(f"{body}{''.join(elements)}</item></channel></rss>".encode())
        return entry.summary, entry.content

    for elements in (
        (description, notes),
        (notes, description),
        (description, subtitle, notes),
        (subtitle, notes, description),
    ):
        assert parsed(*elements) == ("The episode.", None), elements
    for elements in (
        (description, full, notes),
        (description, notes, full),
        (notes, description, full),
        (full, description, notes),
        (full, notes, description),
    ):
        assert parsed(*elements) == ("The episode.", "The full text."), elements
    assert parsed(notes, subtitle) == ("Show notes, links and credits.", None)
    assert parsed("<description/>", notes) == ("Show notes, links and credits.", None)
    assert parsed(full, notes) == (None, "The full text.")
    atom = (
        "<feed xmlns='http://www.w3.org/2005/Atom'"
        " xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'><title>F</title>"
        f"<entry><id>urn:e</id><summary>The episode.</summary>{notes}</entry></feed>"
    )
    entry = _one(atom.encode())
    assert (entry.summary, entry.content) == ("The episode.", None)


def test_a_second_description_is_not_the_content_of_an_article() -> None:
    """feedparser takes a second description-like element (a `dc:description` beside the RSS
    one, or a second `<description>`) for the entry's content, which the project would take
    for the article's own text. The first is the summary, and the second only where the entry
    has no other text (an empty first one is none); content is content:encoded's."""
    ns = (
        'xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    )
    description = "<description>The story in brief.</description>"
    dc = "<dc:description>Another line about it.</dc:description>"
    again = "<description>A second description.</description>"
    full = "<content:encoded><![CDATA[<p>The full text.</p>]]></content:encoded>"

    def parsed(*elements: str) -> tuple[str | None, str | None]:
        body = f'<rss version="2.0" {ns}><channel><title>T</title><item>{GUID}'
        entry = _one(f"{body}{''.join(elements)}</item></channel></rss>".encode())
        return entry.summary, entry.content

    assert parsed(description, dc) == ("The story in brief.", None)
    assert parsed(description, again) == ("The story in brief.", None)
    assert parsed(description, dc, full) == ("The story in brief.", "The full text.")
    assert parsed(full, description, dc) == ("The story in brief.", "The full text.")
    assert parsed(dc) == ("Another line about it.", None)
    assert parsed("<description/>", dc) == ("Another line about it.", None)


def test_every_author_of_an_entry_is_kept_in_order() -> None:
    """Several Atom <author>s, dc:creators or RSS <author>s are each kept, in the feed's order
    and joined as JSON Feed authors are (feedparser's single `author` is one of them: the
    last Atom author, the first dc:creator); a name given twice (dc:creator and
    itunes:author) once."""
    atom = (
        b"<feed xmlns='http://www.w3.org/2005/Atom'><title>F</title><entry><id>urn:e</id>"
        b"<author><name>Ann Lee</name></author><author><name>Bo Park</name>"
        b"<email>bo@example.com</email></author></entry></feed>"
    )
    assert _one(atom).author == "Ann Lee, Bo Park"
    ns = (
        'xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
    )
    for people, expected in (
        ("<dc:creator>Ann Lee</dc:creator><dc:creator>Bo Park</dc:creator>", "Ann Lee, Bo Park"),
        (
            "<author>a@example.com (Ann Lee)</author><author>b@example.com (Bo Park)</author>",
            "Ann Lee, Bo Park",
        ),
        ("<dc:creator>Ann Lee</dc:creator><itunes:author>Ann Lee</itunes:author>", "Ann Lee"),
        ("<author>a@example.com</author>", "a@example.com"),
    ):
        body = f'<rss version="2.0" {ns}><channel><title>T</title><item>{GUID}{people}</item>'
        assert _one((body + "</channel></rss>").encode()).author == expected, people


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("<source><id>urn:s</id><author><name>Ann Lee</name></author></source>", "Ann Lee"),
        (
            "<source><author><name>Ann Lee</name></author><author><name>Bo Park</name></author>"
            "</source>",
            "Ann Lee, Bo Park",
        ),
        (
            "<source><author><name>Ann Lee</name></author></source>"
            "<author><name>Cy Diaz</name></author>",
            "Cy Diaz",
        ),
        ("<source><id>urn:s</id><title>Elsewhere</title></source>", "Planet Editors"),
        ("", "Planet Editors"),
    ],
    ids=["source", "source-two", "own-author", "source-without-author", "no-source"],
)
def test_an_atom_entry_without_an_author_has_its_source_s(entry: str, expected: str) -> None:
    """RFC 4287 section 4.2.1: an entry without `<author>` has the authors of its
    `<source>` (the feed it was copied from, as an aggregator, a planet, writes it), and only
    without those the feed's own: the aggregator's name was stored as every such article's
    author."""
    body = (
        "<feed xmlns='http://www.w3.org/2005/Atom'><title>Planet</title><id>urn:p</id>"
        "<author><name>Planet Editors</name></author>"
        f"<entry><id>urn:e</id><title>x</title>{entry}</entry></feed>"
    ).encode()
    assert _one(body).author == expected


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Mon, 01 Jan 2024 10:00:00 +0530", datetime(2024, 1, 1, 4, 30, tzinfo=UTC)),
        ("Mon, 01 Jan 2024 10:00:00 EST", datetime(2024, 1, 1, 15, 0, tzinfo=UTC)),
        ("Mon, 01 Jan 2024 01:00:00 +0200", datetime(2023, 12, 31, 23, 0, tzinfo=UTC)),
        ("2024-06-30T23:30:00-01:00", datetime(2024, 7, 1, 0, 30, tzinfo=UTC)),
        ("Mon, 01 Jan 2024 10:00:00 GMT", datetime(2024, 1, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_timezone_offsets_are_converted_to_utc(pub_date: str, expected: datetime) -> None:
    """Offsets and zone names in RSS dates are applied: the result is the same instant, in UTC."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    assert entry.published_at is not None
    assert entry.published_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Wed, 10 Jan 2024 10:00:00 CET", datetime(2024, 1, 10, 9, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 CEST", datetime(2024, 7, 10, 8, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 MESZ", datetime(2024, 7, 10, 8, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 EEST", datetime(2024, 7, 10, 7, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 BST", datetime(2024, 7, 10, 9, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 JST", datetime(2024, 7, 10, 1, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 AEST", datetime(2024, 7, 10, 0, 0, tzinfo=UTC)),
        # Sunday 31 March 2024, 01:30 CET: half an hour before Europe's clocks went forward.
        ("Sun, 31 Mar 2024 01:30:00 CET", datetime(2024, 3, 31, 0, 30, tzinfo=UTC)),
        ("Sun, 31 Mar 2024 03:30:00 CEST", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 HST", datetime(2024, 7, 10, 20, 0, tzinfo=UTC)),
        ("Wed, 10 Jan 2024 10:00:00 AKST", datetime(2024, 1, 10, 19, 0, tzinfo=UTC)),
        ("Wed, 10 Jul 2024 10:00:00 WIB", datetime(2024, 7, 10, 3, 0, tzinfo=UTC)),
    ],
)
def test_zone_names_feedparser_does_not_know_are_applied(pub_date: str, expected: datetime) -> None:
    """European, British, Japanese and Australian zone abbreviations in RSS dates are their
    offsets, not UTC (feedparser reads a name it does not know as +0000)."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


def test_rfc_822_date_with_a_day_name_and_no_zone_is_read_as_utc() -> None:
    """A date that names its day but gives no zone is read as UTC, as one without the day name
    is, instead of being lost (the article then dated when first seen)."""
    for pub_date in ("Wed, 10 Jan 2024 10:00:00", "10 Jan 2024 10:00:00"):
        entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
        assert entry.published_at == datetime(2024, 1, 10, 10, 0, tzinfo=UTC), pub_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T08:30:00-04:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T08:30:00Z", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("2024-05-01T08:30:00", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        ("Wed, 01 May 2024 08:30:00 +0100", datetime(2024, 5, 1, 7, 30, tzinfo=UTC)),
        ("yesterday", None),
        (1714552200, datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
        (True, None),
        ([2024, 5, 1], None),
    ],
)
def test_json_feed_dates_are_converted_to_utc(value: object, expected: datetime | None) -> None:
    """JSON Feed dates: offsets applied, naive read as UTC, RFC 822 tolerated, a number a Unix
    time, junk is None."""
    entry = _one(_json_feed({"id": "1", "date_published": value}))
    assert entry.published_at == expected
    if entry.published_at is not None:
        assert entry.published_at.tzinfo is UTC


def test_published_only_entry_has_no_updated_date() -> None:
    """feedparser's deprecated updated -> published alias is not used: updated_at stays None."""
    item = f"<item>{GUID}<pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entry = _one(_rss(item))
    assert entry.updated_at is None


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Fri, 01 Jan 1960 00:00:00 GMT", datetime(1960, 1, 1, tzinfo=UTC)),
        ("Tue, 01 Jan 2999 00:00:00 GMT", datetime(2999, 1, 1, tzinfo=UTC)),
    ],
)
def test_implausible_dates_are_kept_for_the_caller(pub_date: str, expected: datetime) -> None:
    """Parsing cannot know "now": dates long past or far ahead are returned as the feed says."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Mon, 05 Dec 94 10:00:00 GMT", datetime(1994, 12, 5, 10, tzinfo=UTC)),
        ("Thu, 05 Dec 24 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("Sun, 05 Dec 49 10:00:00 GMT", datetime(2049, 12, 5, 10, tzinfo=UTC)),
        ("Mon, 05 Dec 55 10:00:00 GMT", datetime(1955, 12, 5, 10, tzinfo=UTC)),
        ("Tue, 05 Dec 89 10:00:00 GMT", datetime(1989, 12, 5, 10, tzinfo=UTC)),
        ("Thu, 05 Dec 24 10:00:00 CET", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("Thu, 05 Dec 124 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("Thu, 05 Dec 2024 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
    ],
)
def test_two_and_three_digit_years_are_read_as_rfc_2822_says(
    pub_date: str, expected: datetime
) -> None:
    """A year of two digits is 2000-2049 for 00-49 and 1950-1999 for 50-99, one of three
    digits has 1900 added (a program printing C's tm_year), as RFC 2822 section 4.3 says (not
    feedparser's 2000-2089 for 00-89), in feeds as in sitemaps and pages (one rule:
    `ingest.normalize.full_year`)."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Thursday, 05-Dec-24 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("Thu, 05-Dec-2024 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("Thursday, 05-Dec-24 10:00:00 EST", datetime(2024, 12, 5, 15, tzinfo=UTC)),
        ("Thursday, 05-Dec-24 10:00:00 CEST", datetime(2024, 12, 5, 8, tzinfo=UTC)),
        ("Thursday, 05-Dec-24 10:00:00 +0530", datetime(2024, 12, 5, 4, 30, tzinfo=UTC)),
        ("05-Dec-24 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("Thursday, 05-Dec-24 10:00:00", datetime(2024, 12, 5, 10, tzinfo=UTC)),
        ("Thursday, 05-Dec-24 10:00:00 IST", None),
    ],
)
def test_an_rfc_850_date_is_read_as_rfc_2822_writes_it(
    pub_date: str, expected: datetime | None
) -> None:
    """RFC 850's date (HTTP's obsolete form, a cookie's `expires`: the day, month and year
    joined by dashes, the day's full name) is that time in its zone, in UTC, read as the RFC
    2822 date it spells (`normalize.rfc2822_form`), its short year as RFC 2822 reads one;
    a zone no table knows (`IST`) is no date. Feedparser and the email parser read none of
    them but the one with a numeric offset: the article was dated by its page or when first
    seen."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    json_entry = _one(_json_feed({"id": "1", "date_published": pub_date}))
    assert json_entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Sun,06 Nov 2022 08:49:37 GMT", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun,6 Nov 2022 08:49:37 +0200", datetime(2022, 11, 6, 6, 49, 37, tzinfo=UTC)),
        ("Sunday,06 Nov 2022 08:49:37 EST", datetime(2022, 11, 6, 13, 49, 37, tzinfo=UTC)),
        ("Sun,06-Nov-22 08:49:37 GMT", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ],
)
def test_a_day_name_without_a_space_after_its_comma_is_read(
    pub_date: str, expected: datetime
) -> None:
    """RFC 5322's day of the week is followed by a comma and an optional space: `Sun,06 Nov
    2022` is that day (the email parser reads it so: a page's and a sitemap's date). feedparser
    splits a date at its spaces and lost it, in RSS, Atom and JSON Feed alike."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    json_entry = _one(_json_feed({"id": "1", "date_published": pub_date}))
    assert json_entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Sun, 06 Nov 2022 08:49:37 A", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 M", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 N", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 Y", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 Z", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 J", None),
    ],
)
def test_a_military_zone_is_read_as_minus_0000(pub_date: str, expected: datetime | None) -> None:
    """RFC 822's one-letter military zones are read as RFC 5322 (section 4.3) says, as
    `-0000`: the time in UTC. Their signs were written inverted by the software that used
    them, so RFC 822's reading (feedparser's: `A` one hour behind UTC, `Y` twelve ahead) is as
    likely a day off as right; a page's or a sitemap's such date was none."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    json_entry = _one(_json_feed({"id": "1", "date_published": pub_date}))
    assert json_entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Di, 08 Okt 2024 08:49:37 +0200", datetime(2024, 10, 8, 6, 49, 37, tzinfo=UTC)),
        ("Mo, 04 Mär 2024 10:00:00 +0100", datetime(2024, 3, 4, 9, tzinfo=UTC)),
        ("Fr, 17 Mai 2024 10:00:00 GMT", datetime(2024, 5, 17, 10, tzinfo=UTC)),
        ("Do, 05 Dez 2024 10:00:00 +0100", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("mar., 08 oct. 2024 08:49:37 +0200", datetime(2024, 10, 8, 6, 49, 37, tzinfo=UTC)),
        ("jeu., 05 déc. 2024 10:00:00 +0100", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("ven., 16 août 2024 10:00:00 +0200", datetime(2024, 8, 16, 8, tzinfo=UTC)),
        ("sáb, 07 dic 2024 10:00:00 +0100", datetime(2024, 12, 7, 9, tzinfo=UTC)),
        ("lun, 01 ene 2024 10:00:00 +0100", datetime(2024, 1, 1, 9, tzinfo=UTC)),
        ("gio, 01 ago 2024 10:00:00 +0200", datetime(2024, 8, 1, 8, tzinfo=UTC)),
        ("qui, 03 out 2024 10:00:00 -0300", datetime(2024, 10, 3, 13, tzinfo=UTC)),
        ("di, 05 mrt 2024 10:00:00 +0100", datetime(2024, 3, 5, 9, tzinfo=UTC)),
    ],
)
def test_a_date_with_its_day_and_month_named_in_another_language_is_read(
    pub_date: str, expected: datetime
) -> None:
    """An RFC 822 date whose day and month are abbreviated in the publisher's language (a
    server's locale in `strftime("%a, %d %b %Y")`: German, French, Spanish, Italian, Dutch,
    Portuguese) is that time, as the date it spells in English: feedparser and the email
    parser know English names only, and the article was dated by its page or when first
    seen."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    json_entry = _one(_json_feed({"id": "1", "date_published": pub_date}))
    assert json_entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("1667724577", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        (" 1667724577 ", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("1667724577.25", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("1667724577000", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("20221106", datetime(2022, 11, 6, tzinfo=UTC)),  # ISO 8601's basic form, as before
    ],
)
def test_a_unix_time_is_read_as_one(pub_date: str, expected: datetime) -> None:
    """A date written as a Unix time, seconds (ten digits) or milliseconds (thirteen) since
    1970, as a hand-written feed's `<pubDate>` or a JSON Feed's `date_published` may hold
    one, is that moment. feedparser took its first four digits for a year: 1667724577 was
    1667-12-01, no date at all for an article, and the oldest entry to a feed's cap."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    json_entry = _one(_json_feed({"id": "1", "date_published": pub_date}))
    assert json_entry.published_at == expected


IANA_ZONE_DATES = [
    ("Sun, 06 Nov 2022 08:49:37 Europe/Berlin", datetime(2022, 11, 6, 7, 49, 37, tzinfo=UTC)),
    ("Mon, 06 Jun 2022 08:49:37 Europe/Berlin", datetime(2022, 6, 6, 6, 49, 37, tzinfo=UTC)),
    ("Tue, 01 Nov 2022 08:49:37 America/New_York", datetime(2022, 11, 1, 12, 49, 37, tzinfo=UTC)),
    ("Sun, 06 Nov 2022 08:49:37 Asia/Kolkata", datetime(2022, 11, 6, 3, 19, 37, tzinfo=UTC)),
    ("Sun, 06 Nov 2022 08:49:37 Etc/UTC", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
    ("Sun, 06 Nov 2022 08:49:37 Europe/Nowhere", None),
    ("Sun, 06 Nov 2022 08:49:37 America/Argentina", None),
]


@pytest.mark.parametrize(("pub_date", "expected"), IANA_ZONE_DATES)
def test_a_date_naming_its_iana_time_zone_is_read_in_that_zone(
    pub_date: str, expected: datetime | None
) -> None:
    """An RFC 822 date whose zone is written as the tz database names it (PHP's `e`:
    `Europe/Berlin`, `America/New_York`) is that time in that zone, its summer time
    included; a name the database does not have is no date, as any zone's name no table
    knows. feedparser read each as UTC (Berlin's an hour or two ahead, Kolkata's five and a
    half), in RSS, Atom and JSON Feed alike."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    json_entry = _one(_json_feed({"id": "1", "date_published": pub_date}))
    assert json_entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("2024/05/02 08:30:00", datetime(2024, 5, 2, 8, 30, tzinfo=UTC)),
        ("2024/5/2 8:30:00", datetime(2024, 5, 2, 8, 30, tzinfo=UTC)),
        ("2024/05/02 08:30:00 +0900", datetime(2024, 5, 1, 23, 30, tzinfo=UTC)),
        ("2024/05/02 08:30 JST", datetime(2024, 5, 1, 23, 30, tzinfo=UTC)),
        ("2024/05/02", datetime(2024, 5, 2, tzinfo=UTC)),
        ("2024.05.02 08:30:00.000", datetime(2024, 5, 2, 8, 30, tzinfo=UTC)),
        ("2024年5月2日 08:30", datetime(2024, 5, 2, 8, 30, tzinfo=UTC)),
        ("2024/05/02 8:30:00 PM", datetime(2024, 5, 2, 20, 30, tzinfo=UTC)),
        ("2024/05/02 12:10 AM", datetime(2024, 5, 2, 0, 10, tzinfo=UTC)),
    ],
)
def test_dates_written_year_first_with_slashes_dots_or_cjk_are_read_as_written(
    pub_date: str, expected: datetime
) -> None:
    """`2024/05/02 08:30:00` (.NET's DateTime.ToString() in Japanese and Chinese cultures, and
    Asian CMSs) is that day and time: feedparser's ISO 8601 parser takes the four digits for a
    year alone and gives it the current month's first day, midnight. A sitemap's `lastmod` so
    written is read the same way (`normalize.year_first_date`); it was no date."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected
    assert parse_w3c_datetime(pub_date) == expected


@pytest.mark.parametrize(
    "pub_date",
    [
        "2025/13/11 14:00",
        "2025/02/30",
        "2025.13.01 08:30:00 +0900",
        "2025年2月30日",
        "2025/5/2 13:00 PM",
    ],
)
def test_a_day_written_year_first_that_does_not_exist_is_no_date(pub_date: str) -> None:
    """A date written year first with slashes, dots or CJK whose month or day does not exist
    (month 13, 30 February, `13:00 PM`) is no date, in RSS and a JSON Feed as in a sitemap or
    a page: feedparser's ISO 8601 parser took the four digits for a year alone and dated the
    entry the first of the month the poll ran in, a date that moved with the clock."""
    assert _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>")).published_at is None
    assert _one(_json_feed({"id": "1", "date_published": pub_date})).published_at is None
    assert parse_w3c_datetime(pub_date) is None


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("2025-06-02 08:15:00 GMT", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
        ("2025-06-02 08:15:00 UTC", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
        ("2025-06-02 08:15:00 EST", datetime(2025, 6, 2, 13, 15, tzinfo=UTC)),
        ("2025-06-02 08:15 CEST", datetime(2025, 6, 2, 6, 15, tzinfo=UTC)),
        ("2025-06-02 08:15:00.250 PDT", datetime(2025, 6, 2, 15, 15, tzinfo=UTC)),
        ("2025-06-02 8:15 PM EDT", datetime(2025, 6, 3, 0, 15, tzinfo=UTC)),
        ("2025-06-02 8:15 PM", datetime(2025, 6, 2, 20, 15, tzinfo=UTC)),
        ("2025-06-02T08:15:00+02:00", datetime(2025, 6, 2, 6, 15, tzinfo=UTC)),
        ("2025-06-02 08:15:00", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
    ],
)
def test_an_iso_day_with_a_time_and_a_zone_name_keeps_its_time(
    pub_date: str, expected: datetime
) -> None:
    """`2025-06-02 08:15:00 GMT` (PHP's `Y-m-d H:i:s T`) is that time in that zone:
    feedparser's ISO 8601 parser stops at the space before the zone's name and dates it that
    day at midnight. ISO 8601 itself, and the form without a zone, stay as they were read."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("June 2, 2025", datetime(2025, 6, 2, tzinfo=UTC)),
        ("Monday, June 2, 2025", datetime(2025, 6, 2, tzinfo=UTC)),
        ("Jun 2, 2025 8:15 AM EDT", datetime(2025, 6, 2, 12, 15, tzinfo=UTC)),
        ("June 2, 2025 at 11:30 PM PDT", datetime(2025, 6, 3, 6, 30, tzinfo=UTC)),
        ("June 2, 2025 8:15 PM", datetime(2025, 6, 2, 20, 15, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 8:15:00 PM EDT", datetime(2025, 6, 3, 0, 15, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 08:15:00 +0200", datetime(2025, 6, 2, 6, 15, tzinfo=UTC)),
        ("2 June 2025", datetime(2025, 6, 2, tzinfo=UTC)),
    ],
)
def test_a_date_written_with_its_month_s_name_is_read_as_a_page_s_is(
    pub_date: str, expected: datetime
) -> None:
    """A pubDate written for readers, month first or on the 12-hour clock (`June 2, 2025`,
    `Jun 2, 2025 8:15 AM EDT`, `Mon, 02 Jun 2025 8:15:00 PM EDT`), is that day or that time in
    that zone, by the rule a page's date is read with (`normalize.spelled_date`)."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Mon, 02 Jun 2025 08:15:00 UTC+05:30", datetime(2025, 6, 2, 2, 45, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 08:15:00 UTC+0530", datetime(2025, 6, 2, 2, 45, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 08:15:00 GMT+2", datetime(2025, 6, 2, 6, 15, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 08:15:00 UTC-3", datetime(2025, 6, 2, 11, 15, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 08:15:00 IST", None),
        ("Mon, 02 Jun 2025 08:15:00 XYZ", None),
        ("2025-06-02 08:15:00 IST", None),
        ("Mon, 02 Jun 2025 08:15:00 PT", datetime(2025, 6, 2, 16, 15, tzinfo=UTC)),
        ("Mon, 02 Jun 2025 08:15:00 -0000", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
    ],
)
def test_an_rfc_822_zone_is_an_offset_read_or_no_date(
    pub_date: str, expected: datetime | None
) -> None:
    """An offset from UTC or GMT (`UTC+05:30`, `GMT+2`) is applied; a zone's name that neither
    `ZONE_OFFSETS` nor feedparser knows (`IST`, Indian, Irish or Israeli, all ahead of UTC) is
    no date, as a page's or a sitemap's, instead of that time in UTC: an Indian feed's
    articles dated five and a half hours ahead, at the top of every "latest" list."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


@pytest.mark.parametrize(
    ("updated", "expected"),
    [
        ("2025-06-02T08:15:00+0530", datetime(2025, 6, 2, 2, 45, tzinfo=UTC)),
        ("2025-06-02T08:15:00+0545", datetime(2025, 6, 2, 2, 30, tzinfo=UTC)),
        ("2025-06-02T08:15:00-0330", datetime(2025, 6, 2, 11, 45, tzinfo=UTC)),
        ("2025-06-02T08:15:00.123+0930", datetime(2025, 6, 1, 22, 45, tzinfo=UTC)),
        ("20250602T081500+0530", datetime(2025, 6, 2, 2, 45, tzinfo=UTC)),
        ("2025-06-02T08:15:00+05:30", datetime(2025, 6, 2, 2, 45, tzinfo=UTC)),
        ("2025-06-02T08:15:00+0200", datetime(2025, 6, 2, 6, 15, tzinfo=UTC)),
        ("2025-06-02T08:15:00", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
        ("2025-06-02", datetime(2025, 6, 2, tzinfo=UTC)),
    ],
)
def test_an_iso_8601_offset_without_its_colon_keeps_its_minutes(
    updated: str, expected: datetime
) -> None:
    """An Atom date whose offset is written without a colon (`+0530`: PHP's `DATE_ISO8601`,
    `Y-m-d\\TH:i:sO`) or in ISO 8601's basic format is that instant, in RSS and Atom alike:
    feedparser drops or misreads the offset's minutes (India's `+0530` read as +05:00, Nepal's
    `+0545` as +05:05) and dates a basic-format time at midnight."""
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        "<id>urn:t</id><entry><title>A</title><id>urn:a</id><link href='https://example.com/a'/>"
        f"<updated>{updated}</updated><published>{updated}</published></entry></feed>"
    )
    entry = _one(atom.encode())
    assert (entry.published_at, entry.updated_at) == (expected, expected)
    rss = _one(_rss(f"<item>{GUID}<pubDate>{updated}</pubDate></item>"))
    assert rss.published_at == expected


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("Mon Jun 02 08:15:00 CEST 2025", datetime(2025, 6, 2, 6, 15, tzinfo=UTC)),
        ("Mon Jun 02 08:15:00 AEST 2025", datetime(2025, 6, 1, 22, 15, tzinfo=UTC)),
        ("Mon Jun 02 08:15:00 EDT 2025", datetime(2025, 6, 2, 12, 15, tzinfo=UTC)),
        ("Mon Jun  2 08:15:00 2025", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
        ("Mon Jun 02 08:15:00 IST 2025", None),
    ],
)
def test_a_date_with_its_zone_before_the_year_is_read_in_that_zone(
    pub_date: str, expected: datetime | None
) -> None:
    """A pubDate as Java's `Date.toString()` and Unix's `date` print it, the zone between the
    time and the year (`Mon Jun 02 08:15:00 CEST 2025`), is that time in that zone; a name no
    table here knows (`IST`) is no date, as at the end of an RFC 822 date."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>{pub_date}</pubDate></item>"))
    assert entry.published_at == expected


def test_unparseable_date_is_none() -> None:
    """A date feedparser cannot read leaves published_at None instead of failing the entry."""
    entry = _one(_rss(f"<item>{GUID}<pubDate>the day before yesterday</pubDate></item>"))
    assert entry.published_at is None


# --- encodings -----------------------------------------------------------------------------------


def test_undeclared_utf8_without_content_type_is_read_as_utf8() -> None:
    """With no Content-Type, feedparser would assume ISO-8859-1; the XML default, UTF-8, wins."""
    body = '<rss version="2.0"><channel><title>Zürich – café</title></channel></rss>'.encode()
    assert parse_feed(body, URL).title == "Zürich – café"


def test_charset_from_content_type_header_is_used() -> None:
    """A body without an XML declaration is decoded with the charset of the Content-Type header."""
    body = '<rss version="2.0"><channel><title>Köln</title></channel></rss>'.encode("latin-1")
    headers = {"content-type": "application/rss+xml; charset=ISO-8859-1"}
    assert parse_feed(body, URL, headers).title == "Köln"


def test_utf16_feed_with_bom_parses() -> None:
    """A UTF-16 document with a byte-order mark is sniffed and parsed."""
    text = '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>Ω</title>'
    body = (text + f"<item>{GUID}</item></channel></rss>").encode("utf-16")
    assert looks_like_feed(body)
    feed = parse_feed(body, URL)
    assert (feed.title, [e.guid for e in feed.entries]) == ("Ω", ["g"])


def test_windows_1252_bytes_in_a_utf8_feed_garble_nothing_else() -> None:
    """A UTF-8 feed with a few Windows-1252 bytes pasted in (curly quotes from a word
    processor) is read as UTF-8, those bytes as Windows-1252: the rest of its text is not
    turned into mojibake by decoding the whole document in another charset."""
    body = _rss(f"<item>{GUID}<title>Café – @quoted@</title></item>")
    body = body.replace(b"@quoted@", b"\x93quoted\x94")
    stray = body.index(b"\x93quoted")
    for headers in (None, {"Content-Type": "application/rss+xml; charset=UTF-8"}):
        feed = parse_feed(body, URL, headers)
        assert feed.entries[0].title == "Café – \u201cquoted\u201d"
        assert feed.warning == f"invalid UTF-8 at byte {stray}, read as Windows-1252"
    # A document that names another charset is read in that charset, as before.
    declared = body.replace(b"utf-8", b"windows-1252").replace("Café –".encode(), b"Caf\xe9 \x96")
    assert _one(declared).title == "Café – \u201cquoted\u201d"


@pytest.mark.parametrize("label", ["windows-1251", "ISO-8859-15", "koi8-r", "windows-1250"])
@pytest.mark.parametrize("where", ["header", "declaration", "text/xml header"])
def test_a_utf8_feed_labelled_with_a_legacy_charset_is_read_as_utf8(label: str, where: str) -> None:
    """A feed whose bytes are valid UTF-8 but that is labelled with a one-byte charset, by
    its server's Content-Type (a server-wide default) or by its own XML declaration (a
    template kept after the site moved to UTF-8), is read as UTF-8, as a page is
    (`decode_page`): valid UTF-8 is all but never meant as another charset. Each of its
    titles and texts was mojibake (`РџСЂРёРІРµС‚`, `CafĂ©`)."""
    body = _rss(f"<item>{GUID}<title>Привет, Café – “quoted”</title></item>")
    headers = None
    if where == "declaration":
        body = body.replace(b'encoding="utf-8"', f'encoding="{label}"'.encode())
    else:
        media = "text/xml" if where == "text/xml header" else "application/rss+xml"
        headers = {"Content-Type": f"{media}; charset={label}"}
    feed = parse_feed(body, URL, headers)
    assert feed.entries[0].title == "Привет, Café – “quoted”"
    # A document in that charset, which is not valid UTF-8, is still read in it.
    legacy = body.replace("Привет, Café – “quoted”".encode(), "Привет".encode("windows-1251"))
    if label == "windows-1251":
        assert _one(legacy, URL, headers).title == "Привет"


@pytest.mark.parametrize("where", ["declaration", "header", "both"])
def test_a_feed_with_a_utf8_bom_is_utf8_whatever_it_declares(where: str) -> None:
    """A feed that opens with UTF-8's BOM is UTF-8 (RFC 7303 section 3.3: a BOM outweighs
    any label), even where a template's XML declaration or its server's Content-Type names
    another charset and a few bytes that are not UTF-8 were pasted in: it is read as UTF-8,
    those bytes as Windows-1252, as a UTF-8 feed's are. The one stray byte had the whole
    document decoded in the label's charset, every other non-ASCII text mojibake (`Ã‰tÃ©`)."""
    body = b"\xef\xbb\xbf" + _rss(f"<item>{GUID}<title>Été 日本 – café</title></item>")
    body = body.replace("café".encode(), b"caf\xe9")
    headers = None
    if where != "header":
        body = body.replace(b'encoding="utf-8"', b'encoding="ISO-8859-1"')
    if where != "declaration":
        headers = {"Content-Type": "application/rss+xml; charset=ISO-8859-1"}
    feed = parse_feed(body, URL, headers)
    assert feed.entries[0].title == "Été 日本 – café"
    stray = body.index(b"caf\xe9") + 3
    assert feed.warning == f"invalid UTF-8 at byte {stray}, read as Windows-1252"


@pytest.mark.parametrize("label", ["utf-16", "UTF-16LE", "utf-16be"])
def test_an_ascii_feed_served_as_utf_16_is_read(label: str) -> None:
    """A feed of ASCII bytes (its text all character references) served with `charset=utf-16`
    (a server's wrong default): its first bytes, `<?xml` one byte a character, say it is not
    UTF-16, as they say of such an XML declaration. Read as UTF-16, it was "not a feed". A
    UTF-16 document has NULs, and is still read as one."""
    body = _rss(f"<item>{GUID}<title>Caf&#233;</title></item>")
    headers = {"Content-Type": f"application/rss+xml; charset={label}"}
    assert _one(body, URL, headers).title == "Café"
    # A UTF-16 document without a BOM, whitespace before its `<?xml`, is still UTF-16.
    wide = b"\n" + body.replace(b"&#233;", "é".encode())
    wide = wide.decode().encode("utf-16-be" if label == "utf-16be" else "utf-16-le")
    assert _one(wide, URL, headers).title == "Café"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("declared", ["UTF-16", "windows-1252", "utf-8", None])
@pytest.mark.parametrize(
    "content_type",
    [None, "application/rss+xml; charset=ISO-8859-1", "text/xml; charset=utf-8"],
    ids=["no-header", "latin-1-header", "utf-8-header"],
)
def test_a_utf_16_or_utf_32_feed_is_read_so_whatever_its_labels_say(
    encoding: str, declared: str | None, content_type: str | None
) -> None:
    """A feed saved as UTF-16 or UTF-32 (a Windows tool's "Unicode"; its BOM, or without
    one the NULs of its markup, say so: XML 1.0 Appendix F, RFC 7303 section 3.3) is read
    so, whatever its server's Content-Type (a server-wide default charset) or its own XML
    declaration (a template's) names; the warning names the label it does not follow. With
    a one-byte charset in either, it was "not a feed: XML syntax error", every entry lost."""
    declaration = f'<?xml version="1.0" encoding="{declared}"?>' if declared else ""
    text = (
        f'{declaration}<rss version="2.0"><channel><title>Tëst</title>'
        f"<item>{GUID}<title>Été 日本</title></item></channel></rss>"
    )
    headers = {"Content-Type": content_type} if content_type else None
    feed = parse_feed(text.encode(encoding), URL, headers)
    assert (feed.title, [e.title for e in feed.entries]) == ("Tëst", ["Été 日本"])
    labels = [declared, content_type and content_type.rpartition("=")[2]]
    other = next((label for label in labels if label and "16" not in label), None)
    assert feed.warning == (f"declared {other}, read as {encoding.upper()}" if other else None)


# --- hostile values ------------------------------------------------------------------------------


def test_control_characters_and_nul_are_stripped() -> None:
    """NUL, other control characters and lone surrogates never reach the text fields."""
    entry = _one(
        _json_feed(
            {
                "id": "id\u0000-1",
                "url": "https://example.com/a\u0000b",
                "title": "Break\u0000ing\u0007 news\ud800",
                "content_html": "<p>bo\u0000dy\u001b</p>",
                "authors": [{"name": "Ann\u0085e"}],
            }
        )
    )
    assert (entry.guid, entry.link, entry.title, entry.content, entry.author) == (
        "id-1",
        "https://example.com/ab",
        "Breaking news",
        "body",
        "Anne",
    )


def test_control_characters_in_xml_are_stripped() -> None:
    """Control characters that make XML ill-formed are dropped from the recovered text."""
    entry = _one(_rss(f"<item>{GUID}<title>a\x01b\x0bc</title></item>"))
    assert entry.title == "abc"


def test_noncharacters_are_stripped_from_the_feed_s_title_and_its_entries() -> None:
    """Unicode's noncharacters (U+FDD0..U+FDEF, U+FFFE, U+FFFF, U+1FFFE...) are no text: the
    feed's own title (stored as the feed's title at each poll) and its entries' fields leave
    them out, by the rule article text follows."""
    rss = _rss(
        f"<item>{GUID}<title>Pier\ufdd0 extended&#x1FFFE;</title>"
        "<description>Forty\ufdef metres</description></item>"
    ).replace(b"<title>T</title>", "<title>Harbour\ufdd0 Times&#xFFFF;</title>".encode())
    feed = parse_feed(rss, URL)
    assert feed.title == "Harbour Times"
    assert (feed.entries[0].title, feed.entries[0].summary) == ("Pier extended", "Forty metres")
    json_feed = json.loads(_json_feed({"id": "1", "title": "Pier\ufffe", "content_text": "x"}))
    json_feed["title"] = "J\ufdd0\U0010ffff"
    feed = parse_feed(json.dumps(json_feed).encode(), URL)
    assert (feed.title, feed.entries[0].title) == ("J", "Pier")


def test_very_long_values_do_not_crash() -> None:
    """Megabyte titles and guids pass through; limiting them is the caller's decision."""
    title, guid = "word " * 200_000, "g" * 100_000
    item = f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid></item>"
    entry = _one(_rss(item))
    assert entry.guid == guid
    assert entry.title is not None
    assert len(entry.title) == len(title) - 1


def test_deeply_nested_html_does_not_crash() -> None:
    """Pathologically nested markup in content is converted without recursion errors."""
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    entry = _one(_json_feed({"id": "1", "content_html": html}))
    assert entry.content == "deep"


def test_ttl_that_is_not_a_number_is_none() -> None:
    """<ttl> is minutes as an integer; anything else is ignored rather than guessed."""
    assert parse_feed(_rss("", "<ttl>soon</ttl>"), URL).ttl_minutes is None
    assert parse_feed(_rss("", "<ttl> 15 </ttl>"), URL).ttl_minutes == 15


_SY = "xmlns:sy='http://purl.org/rss/1.0/modules/syndication/'"


def _sy(period: str | None, frequency: str | None) -> bytes:
    fields = "" if period is None else f"<sy:updatePeriod {_SY}>{period}</sy:updatePeriod>"
    if frequency is not None:
        fields += f"<sy:updateFrequency {_SY}>{frequency}</sy:updateFrequency>"
    return _rss("", fields)


@pytest.mark.parametrize(
    ("period", "frequency", "minutes"),
    [
        pytest.param("hourly", "1", 60, id="hourly"),
        pytest.param("\n\thourly\t", "\n\t2\t", 30, id="wordpress-spaced-twice-an-hour"),
        pytest.param("DAILY", None, 1440, id="daily-once-by-default"),
        pytest.param(None, "4", 360, id="daily-by-default-four-times"),
        pytest.param("weekly", "0", 10080, id="zero-times-is-once"),
        pytest.param("hourly", "-3", 60, id="negative-times-is-once"),
        pytest.param("daily", "999999999", 1, id="a-billion-times-a-day-is-a-minute"),
        pytest.param("yearly", "1", 525600, id="yearly"),
        pytest.param("fortnightly", "1", None, id="an-unknown-period-is-none"),
        pytest.param("every 5 minutes", None, None, id="a-sentence-is-none"),
        pytest.param("", "1", None, id="an-empty-period-is-none"),
        pytest.param(None, None, None, id="absent"),
    ],
)
def test_sy_update_period_and_frequency(
    period: str | None, frequency: str | None, minutes: int | None
) -> None:
    """RSS 1.0's syndication module: `updateFrequency` times per `updatePeriod`, daily and once
    when either is left out, as the module says. A period it does not name (`fortnightly`,
    empty) is no hint, as a `<ttl>` that is not a number is none: read as daily, a feed that
    publishes every minute would be polled once a day on a word nobody meant as that; a
    frequency that is no positive number is once."""
    assert parse_feed(_sy(period, frequency), URL).update_minutes == minutes


# --- JSON Feed specifics -------------------------------------------------------------------------


def test_json_feed_1_0_single_author_and_version() -> None:
    """JSON Feed 1.0 is version json1 and its single "author" object is read."""
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "title": "Old",
            "author": {"name": "Solo Writer"},
            "items": [{"id": "1", "content_text": "hi"}],
        }
    ).encode()
    feed = parse_feed(body, URL)
    assert (feed.version, feed.entries[0].author) == ("json1", "Solo Writer")


@pytest.mark.parametrize(
    "item",
    [
        {"authors": [], "author": {"name": "Solo Writer"}},
        {"authors": [{"url": "https://example.com/solo"}], "author": {"name": "Solo Writer"}},
        {"authors": None, "author": {"name": "Solo Writer"}},
    ],
    ids=["empty-authors", "nameless-authors", "null-authors"],
)
def test_a_json_feed_1_0_author_beside_authors_naming_nobody_is_read(item: dict[str, Any]) -> None:
    """A feed moving from JSON Feed 1.0 to 1.1 may write both: where "authors" names nobody
    (empty, nameless, null), the 1.0 "author" it keeps beside them is the entry's author, as
    the 1.1 spec lets readers honour it."""
    entry = _one(_json_feed({"id": "1", "content_text": "hi", **item}))
    assert entry.author == "Solo Writer"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"external_url": "https://news.example.org/2025/story"},
            "https://news.example.org/2025/story",
        ),
        ({"url": "#", "external_url": "/2025/story"}, "https://example.com/2025/story"),
        (
            {"url": "https://example.com/p/1", "external_url": "https://news.example.org/s"},
            "https://example.com/p/1",
        ),
        ({"external_url": "mailto:editor@example.org"}, None),
    ],
    ids=["external-only", "url-to-the-feed", "both", "external-no-address"],
)
def test_a_json_feed_item_s_external_url_is_its_link_where_it_has_no_url(
    item: dict[str, Any], expected: str | None
) -> None:
    """A JSON Feed item with an `external_url` and no `url` (a link blog's item: "the URL of
    a page elsewhere", the thing the item is about) has it as its link; an item with a `url`
    of its own keeps that one. The item was left without a link, counted invalid and lost."""
    assert _one(_json_feed({"id": "1", "content_text": "x", **item})).link == expected


def test_json_feed_title_html_is_stripped() -> None:
    """JSON Feed titles are plain text by the spec; markup that slips in is stripped anyway."""
    entry = _one(_json_feed({"id": "1", "title": "<b>Bold</b> &amp; loud"}))
    assert entry.title == "Bold & loud"


def test_looks_like_json_feed_with_version_after_items() -> None:
    """JSON keys have no order: the sniff finds a version that comes after a long items array."""
    items = [{"id": str(n), "content_text": "x" * 100} for n in range(100)]
    body = json.dumps({"items": items, "version": "https://jsonfeed.org/version/1.1"}).encode()
    assert looks_like_feed(body)


def test_json_feed_with_a_utf8_bom_parses() -> None:
    """A UTF-8 byte-order mark before a JSON Feed is tolerated."""
    feed = parse_feed(b"\xef\xbb\xbf" + _json_feed({"id": "1"}), URL)
    assert [e.guid for e in feed.entries] == ["1"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le", "utf-32"])
def test_a_json_feed_in_utf_16_or_utf_32_parses(encoding: str) -> None:
    """A JSON Feed saved as UTF-16 or UTF-32 (a Windows tool's "Unicode"), with its BOM or
    without (RFC 8259 §8.1 asks for UTF-8, and Python's json reads the others from their
    bytes): it is a feed, and its entries are read. It was "not a feed: invalid JSON", and
    `feeds add` took it for no feed at all."""
    body = json.loads(_json_feed({"id": "1", "url": "https://example.com/a", "title": "Ünï"}))
    data = json.dumps(body, ensure_ascii=False).encode(encoding)
    assert looks_like_feed(data)
    (entry,) = parse_feed(data, URL).entries
    assert (entry.guid, entry.link, entry.title) == ("1", "https://example.com/a", "Ünï")


def test_image_prefers_widest_media_then_thumbnail_then_enclosure() -> None:
    """The widest image media:content wins; video media is skipped for a thumbnail."""
    media = 'xmlns:media="http://search.yahoo.com/mrss/"'
    body = (
        f'<rss version="2.0" {media}><channel><title>T</title><item>{GUID}'
        '<media:content url="https://x.test/v.mp4" medium="video"/>'
        '<media:thumbnail url="https://x.test/thumb.jpg"/>'
        '<enclosure url="https://x.test/e.jpg" type="image/jpeg" length="1"/>'
        "</item></channel></rss>"
    ).encode()
    assert _one(body).image_url == "https://x.test/thumb.jpg"


def test_an_entry_s_itunes_image_is_its_image() -> None:
    """An item's itunes:image (an episode's artwork) is its image, resolved, after any Media
    RSS image; the channel's (the show's) is no entry's."""
    itunes = 'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
    body = (
        f'<rss version="2.0" {itunes}><channel><title>T</title>'
        '<itunes:image href="https://x.test/show.jpg"/>'
        f'<item>{GUID}<itunes:image href="/episode-1.jpg"/></item>'
        "<item><guid isPermaLink='false'>h</guid></item></channel></rss>"
    ).encode()
    first, second = parse_feed(body, "https://x.test/podcast/feed").entries
    assert (first.image_url, second.image_url) == ("https://x.test/episode-1.jpg", None)


@pytest.mark.parametrize(
    "image",
    [
        '<media:thumbnail url="{}"/>',
        '<media:content url="{}" medium="image"/>',
        '<enclosure url="{}" type="image/jpeg" length="1"/>',
        '<link rel="enclosure" type="image/jpeg" href="{}"/>',
        '<itunes:image href="{}"/>',
    ],
    ids=["media-thumbnail", "media-content", "rss-enclosure", "atom-enclosure", "itunes-image"],
)
@pytest.mark.parametrize("where", ["entry", "element"])
def test_a_relative_image_url_is_resolved_against_its_xml_base(image: str, where: str) -> None:
    """A relative image address under `xml:base` (on the feed, the entry or the element
    itself) is resolved against that base, as the entry's links are (XML Base, RFC 4287
    section 2): it was resolved against the feed's own URL, an address on the feed's host
    that is no image of the article."""
    namespaces = (
        'xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
    )
    element = image.format("pics/a.jpg")
    entry_base = ' xml:base="2024/"' if where == "entry" else ""
    if where == "element":
        element = element.replace(" ", ' xml:base="2024/" ', 1)
    body = (
        f'<feed {namespaces} xml:base="https://www.example.org/blog/"><title>T</title>'
        f"<id>urn:t</id><entry{entry_base}><id>urn:e</id><title>x</title>"
        f'<link href="https://www.example.org/blog/2024/a.html"/>{element}</entry></feed>'
    ).encode()
    entry = _one(body, "https://feeds.example.net/atom")
    assert entry.image_url == "https://www.example.org/blog/2024/pics/a.jpg"


def test_entry_categories_become_tags() -> None:
    """RSS <category>, Atom <category term/label> and JSON Feed tags are the entry's tags,
    each once, entities decoded."""
    rss = (
        "<rss version='2.0'><channel><title>t</title><item>"
        f"{GUID}<link>https://example.com/a</link><title>A</title>"
        "<category>Klima</category><category>klima</category><category>Energie &amp;amp; "
        "Umwelt</category></item></channel></rss>"
    ).encode()
    (entry,) = parse_feed(rss, URL).entries
    assert entry.tags == ("Klima", "Energie & Umwelt")
    atom = (
        b"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title><entry><id>urn:a</id>"
        b"<link href='https://example.com/a'/><title>A</title>"
        b"<category term='pol' label='Politics'/><category term='sport'/></entry></feed>"
    )
    (entry,) = parse_feed(atom, URL).entries
    assert entry.tags == ("Politics", "sport")
    jsonfeed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "t",
            "items": [{"id": "1", "url": "https://example.com/a", "tags": ["AI", 3, "ai"]}],
        }
    ).encode()
    (entry,) = parse_feed(jsonfeed, URL).entries
    assert entry.tags == ("AI",)


@pytest.mark.parametrize(
    "credit",
    [
        "The post Council’s budget passes appeared first on Riverside Gazette.",
        "Der Beitrag Haushalt beschlossen erschien zuerst auf Stadtanzeiger.",
        "L’article Le budget est voté est apparu en premier sur La Gazette.",
        "La entrada El presupuesto se aprueba se publicó primero en El Diario.",
    ],
)
def test_a_feed_s_credit_line_is_not_part_of_the_entry_s_text(credit: str) -> None:
    """The line Yoast SEO appends to each entry of a WordPress feed ends neither its content nor
    its summary (RSS or JSON Feed); text before it, and the same words opening a paragraph
    that goes on, are kept."""
    story = "<p>The council approved the budget.</p><p>It passed 7 to 2.</p>"
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        f"<item>{GUID}<content:encoded><![CDATA[{story}<p>{credit}</p>]]></content:encoded>"
        f"<description><![CDATA[<p>The council approved [&#8230;]</p><p>{credit}</p>]]>"
        "</description></item></channel></rss>"
    ).encode()
    entry = _one(body)
    assert entry.content == "The council approved the budget.\n\nIt passed 7 to 2."
    assert entry.summary == "The council approved […]"
    item = {"id": "1", "content_html": f"{story}<p>{credit}</p>", "summary": f"A.\n\n{credit}"}
    from_json = _one(_json_feed(item))
    assert (from_json.content, from_json.summary) == (entry.content, "A.")
    kept = _one(_rss(f"<item>{GUID}<description>{credit} It then rained.</description></item>"))
    assert kept.summary == f"{credit} It then rained."


def test_medium_s_credit_line_is_not_part_of_the_entry_s_text() -> None:
    """The line Medium appends, after its view-counting pixel and a rule, to each entry of a
    publication's feed ("… was originally published in … on Medium, where people are …") ends
    no entry's content: a full-text feed's articles were stored with it."""
    story = "<p>The council approved the budget.</p><p>It passed 7 to 2.</p>"
    credit = (
        '<img src="https://medium.com/_/stat?event=post.clientViewed&amp;'
        'referrerSource=full_rss&amp;postId=41d82a184452" width="1" height="1" alt="">'
        '<hr><p><a href="https://medium.com/gazette/budget-passes-41d82a184452">Council’s '
        'budget passes</a> was originally published in <a href="https://medium.com/gazette">'
        "Riverside Gazette</a> on Medium, where people are continuing the conversation by "
        "highlighting and responding to this story.</p>"
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        f"<item>{GUID}<content:encoded><![CDATA[{story}{credit}]]></content:encoded>"
        "</item></channel></rss>"
    ).encode()
    assert _one(body).content == "The council approved the budget.\n\nIt passed 7 to 2."


def test_what_a_player_shows_where_it_cannot_play_is_not_part_of_the_entry_s_text() -> None:
    """A video or audio player embedded in an entry (WordPress's `[video]` and `[audio]`
    shortcodes: a link to the file inside the player, for browsers that cannot play it; "Your
    browser does not support the video tag.") shows no text to a reader, and its page's
    extraction leaves it out: so does the entry's content (RSS or JSON Feed). Text around the
    player is kept."""
    story = (
        "<p>The council approved the budget.</p>"
        '<div style="width: 640px;" class="wp-video"><video class="wp-video-shortcode"'
        ' controls="controls"><source type="video/mp4"'
        ' src="https://example.com/uploads/vote.mp4?_=1" /><a'
        ' href="https://example.com/uploads/vote.mp4">https://example.com/uploads/vote.mp4</a>'
        "</video></div><p>It passed 7 to 2.</p>"
        '<audio class="wp-audio-shortcode" controls="controls"><source type="audio/mpeg"'
        ' src="https://example.com/uploads/vote.mp3?_=2" />Your browser does not support the'
        " audio element.</audio><canvas>A chart of the vote.</canvas>"
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        f"<item>{GUID}<content:encoded><![CDATA[{story}]]></content:encoded>"
        "</item></channel></rss>"
    ).encode()
    assert _one(body).content == "The council approved the budget.\n\nIt passed 7 to 2."
    assert _one(_json_feed({"id": "1", "content_html": story})).content == _one(body).content


def _rdf(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://example.com/"><title>T</title>'
        f"<link>https://example.com/</link></channel>{items}</rdf:RDF>"
    ).encode()


@pytest.mark.parametrize(
    ("about", "expected"),
    [
        pytest.param(
            "https://example.com/2024/a.html", "https://example.com/2024/a.html", id="absolute"
        ),
        pytest.param("2024/a.html", "https://example.com/feed/2024/a.html", id="relative"),
        pytest.param("/2024/a.html", "https://example.com/2024/a.html", id="root-relative"),
        pytest.param("urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", None, id="a-urn"),
    ],
)
def test_an_rss_1_0_item_without_a_link_is_at_its_rdf_about(
    about: str, expected: str | None
) -> None:
    """An RSS 1.0 item's `rdf:about` is the URI of the resource it describes, its page (the
    specification asks for it to be the `<link>`'s value): an item that gives no `<link>` is
    at that address, resolved as a link is; one that names no http(s) resource has none.
    feedparser keeps it as the entry's id only, and the entry had no link: no page fetched,
    the article stored from the feed's text under no address."""
    item = f'<item rdf:about="{about}"><title>A</title><dc:date>2025-08-11</dc:date></item>'
    entry = _one(_rdf(item))
    assert entry.link == expected
    assert entry.guid == about


def test_an_rss_1_0_item_s_link_wins_over_its_rdf_about() -> None:
    """Where an RSS 1.0 item gives both, its `<link>` is its page (a tracking redirect's
    address beside the story's own is the publisher's choice, as in RSS 2.0)."""
    item = (
        '<item rdf:about="https://example.com/2024/a.html"><title>A</title>'
        "<link>https://example.com/2024/a.html?from=rss</link></item>"
    )
    assert _one(_rdf(item)).link == "https://example.com/2024/a.html?from=rss"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Mon, 11 Aug 2025 12.30 +0200", datetime(2025, 8, 11, 10, 30, tzinfo=UTC)),
        ("Mon, 11 Aug 2025 12.30.45 +0200", datetime(2025, 8, 11, 10, 30, 45, tzinfo=UTC)),
        ("11 Aug 2025 12.30 GMT", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("2025-08-11 12.30", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("2025-08-11T12.30+02:00", datetime(2025, 8, 11, 10, 30, tzinfo=UTC)),
        ("2025-08-11 12.30.45 CEST", datetime(2025, 8, 11, 10, 30, 45, tzinfo=UTC)),
        ("2025/08/11 12.30", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("Aug 11, 2025 2.30 PM EDT", datetime(2025, 8, 11, 18, 30, tzinfo=UTC)),
        ("Mon, 11 Aug 2025 12:30:45.123 +0200", datetime(2025, 8, 11, 10, 30, 45, tzinfo=UTC)),
        ("2025-08-11T12:30:45.123456+02:00", datetime(2025, 8, 11, 10, 30, 45, tzinfo=UTC)),
        ("Mon, 11 Aug 2025 12.30 IST", None),
    ],
)
def test_a_time_written_with_dots_or_fractional_seconds_is_read(
    written: str, expected: datetime | None
) -> None:
    """A time of day written with dots (`12.30`, `12.30.45`: the Nordic, Italian and
    Indonesian way, which a CMS's locale puts in its feed dates) is that time, and a fraction
    of a second after an RFC 822 time is dropped, in RSS, Atom and a JSON Feed as in a sitemap
    or a page (`normalize.colon_time`); a zone's name no table knows is still no date.
    feedparser read `2025-08-11 12.30` as 12:00, `2025/08/11 12.30` as 1 December, and the
    RFC 822 forms not at all (the article dated by its page or when first seen)."""
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    atom = _one(
        (
            "<feed xmlns='http://www.w3.org/2005/Atom'><title>T</title><id>urn:t</id>"
            f"<entry><id>urn:1</id><title>x</title><published>{written}</published></entry>"
            "</feed>"
        ).encode()
    )
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    for entry in (rss, atom, json_entry):
        when = entry.published_at
        assert (when.replace(microsecond=0) if when else None) == expected


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(1754915400, id="seconds"),
        pytest.param(1754915400000, id="milliseconds"),
        pytest.param(1754915400.5, id="fraction"),
        pytest.param("1754915400", id="string"),
    ],
)
def test_a_json_feed_date_written_as_a_number_is_a_unix_time(written: object) -> None:
    """A JSON Feed item's `date_published` or `date_modified` written as a JSON number (a
    script's `Date.now()` in milliseconds, a Unix time in seconds) is that Unix time, as the
    same digits in an RSS `<pubDate>` are (`feeds._unix_time`); it was no date (the spec asks
    for an RFC 3339 string), the article dated by its page or when first seen."""
    item = {"id": "1", "url": "https://example.com/a", "date_published": written}
    item["date_modified"] = written
    entry = _one(_json_feed(item))
    expected = datetime(2025, 8, 11, 12, 30, tzinfo=UTC)
    assert entry.published_at == entry.updated_at == expected
    assert _one(_json_feed({**item, "date_published": True})).published_at is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("11.08.2025 12:30", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("11.08.2025 12.30 +0200", datetime(2025, 8, 11, 10, 30, tzinfo=UTC)),
        ("1.8.2025", datetime(2025, 8, 1, tzinfo=UTC)),
        ("11.08.2025 12:30:45 CEST", datetime(2025, 8, 11, 10, 30, 45, tzinfo=UTC)),
        ("25-08-2025 12:30", datetime(2025, 8, 25, 12, 30, tzinfo=UTC)),
        ("08/25/2025 2:30 PM", datetime(2025, 8, 25, 14, 30, tzinfo=UTC)),
        ("25/08/2025 14:30:00 GMT", datetime(2025, 8, 25, 14, 30, tzinfo=UTC)),
        ("11-08-2025 12:30", None),
        ("08/11/2025 12:30:00", None),
        ("31.02.2025", None),
        ("11.08.2025 12:30 IST", None),
    ],
)
def test_a_date_written_with_its_year_last_is_read_day_first_where_it_says_so(
    written: str, expected: datetime | None
) -> None:
    """A date written with its year last in digits: dotted (`11.08.2025`, Europe's way) is
    day first; with dashes or slashes it is read where it can be read but one way (`25-08`,
    `08/25`: no month 25), else it is no date (`11-08-2025` is 11 August in Europe and India,
    8 November in the US). In RSS, Atom and a JSON Feed as in a sitemap. feedparser read
    `11-08-2025 12:30` as 20 August 2011, and the others not at all."""
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    assert rss.published_at == json_entry.published_at == expected
    assert parse_w3c_datetime(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("11.08.2025, 12:30 Uhr", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("11.08.2025, 12.30 Uhr", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("11.08.2025 um 12:30 Uhr", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("11.08.2025 12:30 Uhr MESZ", datetime(2025, 8, 11, 10, 30, tzinfo=UTC)),
        ("11.08.2025, 12:30 Uhr IST", None),
        ("11.08.2025, 12 Uhr", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("11.08.2025 um 9 Uhr MESZ", datetime(2025, 8, 11, 7, tzinfo=UTC)),
        ("11.08.2025 12", None),
    ],
)
def test_a_german_time_of_day_with_uhr_is_read_as_its_clock_says(
    written: str, expected: datetime | None
) -> None:
    """A date written as German sites write it, its time followed by `Uhr` ("o'clock") and
    perhaps `um` ("at") before it (`11.08.2025, 12:30 Uhr`), is that time
    (`normalize.year_last_date`), in RSS, a JSON Feed and a sitemap alike, its hour alone
    too (`12 Uhr`); a zone's name none reads after it is still no date. `Uhr` was read as a
    zone's name none knows: no date (and `12 Uhr` after the fix for minutes)."""
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    assert rss.published_at == json_entry.published_at == expected
    assert parse_w3c_datetime(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-08-11T14:00:00-04:00 EDT", datetime(2025, 8, 11, 18, tzinfo=UTC)),
        ("2025-08-11 14:00:00 -0400 EDT", datetime(2025, 8, 11, 18, tzinfo=UTC)),
        ("2025-08-11 14:00:00 +0200 (CEST)", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("2025-08-11T14:00:00+02:00 CEST", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("2025-08-11T14:00:00Z UTC", datetime(2025, 8, 11, 14, tzinfo=UTC)),
        ("2025-08-11 14:00 GMT", datetime(2025, 8, 11, 14, tzinfo=UTC)),
        ("2025-08-11T14:00:00+02:00[Europe/Berlin]", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("2025-08-11T14:00Z[UTC]", datetime(2025, 8, 11, 14, tzinfo=UTC)),
        ("Mon, 11 Aug 2025 14:00:00 -0400 EDT", datetime(2025, 8, 11, 18, tzinfo=UTC)),
    ],
)
def test_a_zone_s_name_after_its_offset_is_read_by_the_offset(
    written: str, expected: datetime
) -> None:
    """A date-time whose numeric offset is followed by its zone's name (strftime's `%z %Z`:
    `2025-08-11 14:00:00 -0400 EDT`, or after an ISO 8601 offset; Java's
    `ZonedDateTime.toString()`, `…+02:00[Europe/Berlin]`) is the time the offset says
    (`normalize.without_offset_name`), in RSS, a JSON Feed and a sitemap alike. A sitemap read
    none of them; feedparser read the one with a space before its offset as midnight of its
    day, 18 hours early."""
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    assert rss.published_at == json_entry.published_at == expected
    assert parse_w3c_datetime(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-08-11 14:00:00 GMT+02:00", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("2025-08-11T14:00:00 UTC+2", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("2025-08-11 14:00 UTC+05:30", datetime(2025, 8, 11, 8, 30, tzinfo=UTC)),
        ("2025-08-11 14:00:00 GMT-0400", datetime(2025, 8, 11, 18, tzinfo=UTC)),
    ],
)
def test_an_iso_date_with_a_gmt_or_utc_offset_after_a_space_is_read_in_it(
    written: str, expected: datetime
) -> None:
    """An ISO 8601 date and time followed by an offset written after `GMT` or `UTC` and a
    space (`2025-08-11 14:00:00 GMT+02:00`, as `ZONE_OFFSETS`' names are written there) is
    the time that offset says (`normalize.zone_offset`), in RSS, a JSON Feed and a sitemap
    alike. feedparser dated it at midnight, or in UTC; a sitemap read none."""
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    assert rss.published_at == json_entry.published_at == expected
    assert parse_w3c_datetime(written) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2025-08-11 14:00:00 Europe/Berlin", datetime(2025, 8, 11, 12, tzinfo=UTC)),
        ("2025-01-11 14:00:00 Europe/Berlin", datetime(2025, 1, 11, 13, tzinfo=UTC)),
        ("2025-08-11T14:00:00 America/New_York", datetime(2025, 8, 11, 18, tzinfo=UTC)),
        ("2025-08-11 14:00 Asia/Kolkata", datetime(2025, 8, 11, 8, 30, tzinfo=UTC)),
        ("2025-08-11 14:00:00 Europe/Nowhere", None),
    ],
)
def test_an_iso_date_with_a_tz_database_zone_is_read_in_that_zone(
    written: str, expected: datetime | None
) -> None:
    """An ISO 8601 date and time followed by a tz database zone (PHP's `Y-m-d H:i:s e`) is
    that time in that zone on that day (`normalize.tz_database_zone`), in RSS, a JSON Feed
    and a sitemap alike, as an RFC 822 date so written is; a zone the database does not have
    is no date. feedparser read it as UTC, hours off; a sitemap read none."""
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    assert rss.published_at == json_entry.published_at == expected
    assert parse_w3c_datetime(written) == expected


@pytest.mark.parametrize(
    "written",
    [
        "Mon Aug 11 2025 14:00:00 GMT+0200 (Central European Summer Time)",
        "Mon Aug 11 2025 14:00:00 GMT+0200 (Mitteleuropäische Sommerzeit)",
        "Mon Aug 11 2025 08:00:00 GMT-0400 (Eastern Daylight Time)",
    ],
)
def test_a_javascript_date_string_is_read_in_its_offset(written: str) -> None:
    """A date as JavaScript's `Date.prototype.toString()` prints it (a script's `new
    Date().toString()` as a pubDate or a lastmod), its offset followed by its zone's
    description in brackets, is the time the offset says, in RSS, a JSON Feed and a sitemap
    alike (`normalize.spelled_date`, a page's rule too). A sitemap read it as UTC, hours off
    (the email parser's reading of `GMT+0200`), where a feed read it right."""
    expected = datetime(2025, 8, 11, 12, tzinfo=UTC)
    rss = _one(_rss(f"<item>{GUID}<pubDate>{written}</pubDate></item>"))
    json_entry = _one(_json_feed({"id": "1", "date_published": written}))
    assert rss.published_at == json_entry.published_at == expected
    assert parse_w3c_datetime(written) == expected


def test_cdata_markers_escaped_by_a_template_are_not_text() -> None:
    """A feed whose template escaped the CDATA sections it wrote (`&lt;![CDATA[Hello
    World]]&gt;`, as a Go or PHP template's HTML escaping does), or that wrapped one inside
    another, carries the text inside them: the title without the markers, the description's
    markup read as HTML. The markers were the title (`<![CDATA[Hello World]]>` stored as
    the article's title), and the description, read as one unknown declaration, was
    dropped whole. Markers a post quotes inside a real CDATA section stay its text."""
    item = (
        f"<item>{GUID}<title>&lt;![CDATA[Hello World]]&gt;</title>"
        "<description>&lt;![CDATA[&lt;p&gt;&lt;strong&gt;Test&lt;/strong&gt;&lt;br /&gt;"
        "Markdown here&lt;/p&gt;]]&gt;</description></item>"
    )
    entry = _one(_rss(item))
    assert entry.title == "Hello World"
    assert entry.summary == "Test\nMarkdown here"
    nested = f"<item>{GUID}<title><![CDATA[<![CDATA[Nested]]]]><![CDATA[>]]></title></item>"
    assert _one(_rss(nested)).title == "Nested"
    channel = _rss("", channel="").replace(
        b"<title>T</title>", b"<title>&lt;![CDATA[My Blog]]&gt;</title>"
    )
    assert parse_feed(channel, URL).title == "My Blog"
    quoted = (
        f"<item>{GUID}<title>CDATA in XML</title><description><![CDATA[<p>Write</p>"
        "<pre>&lt;![CDATA[x &lt; y]]&gt;</pre>]]></description></item>"
    )
    assert _one(_rss(quoted)).summary == "Write\n\n<![CDATA[x < y]]>"


@pytest.mark.parametrize(
    "home", ["https://example.com/", "https://example.com", "https://www.example.com/#main"]
)
def test_an_item_linking_its_site_s_home_page_is_at_its_permalink_guid(home: str) -> None:
    """An item whose `<link>` is its site's home page (a template giving every item the
    channel's link) and whose `<guid>` is a permalink to another page (RSS 2.0: unless
    isPermaLink="false") is at that page: a site's root is no article's page. Every entry
    linked the home page, its page was fetched for each and its text stored as each article.
    A guid that is no permalink leaves the link as it is; so does a permalink to the root."""
    item = f"<item><title>A</title><link>{home}</link><guid>https://example.com/2025/a.html</guid></item>"
    assert _one(_rss(item)).link == "https://example.com/2025/a.html"
    item = f"<item><title>A</title><link>{home}</link>{GUID}</item>"
    assert _one(_rss(item)).link == home
    item = f"<item><title>A</title><link>{home}</link><guid>https://example.com/</guid></item>"
    assert _one(_rss(item)).link == home
