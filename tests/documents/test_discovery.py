"""discover: feed links in home pages, common feed paths, robots.txt Sitemap lines, feed
history links (RFC 5005, JSON Feed next_url, WordPress ?paged=N), table by table."""

from __future__ import annotations

import json

import pytest

from ingest.documents.discovery import (
    COMMON_FEED_PATHS,
    FeedLink,
    FeedPaging,
    common_feed_urls,
    feed_links,
    feed_paging,
    looks_like_feed_url,
    looks_like_html,
    page_number,
    parse_feed_page,
    sitemaps_from_robots,
    with_page,
)

HOME = "https://news.example.com/"


def _page(head: str, body: str = "") -> bytes:
    head = f"<head><title>x</title>{head}</head>"
    return f"<!DOCTYPE html><html>{head}<body>{body}</body></html>".encode()


# --- feed links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" title="News &raquo; Feed" '
            'href="https://news.example.com/feed/">',
            [FeedLink("https://news.example.com/feed/", "rss", "News » Feed")],
            id="wordpress",
        ),
        pytest.param(
            '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
            '<link rel="alternate" type="application/feed+json" href="feed.json">'
            '<link rel="alternate" type="application/rdf+xml" href="/index.rdf">',
            [
                FeedLink("https://news.example.com/atom.xml", "atom"),
                FeedLink("https://news.example.com/feed.json", "json"),
                FeedLink("https://news.example.com/index.rdf", "rdf"),
            ],
            id="relative-atom-json-rdf",
        ),
        pytest.param(
            '<base href="https://cdn.example.net/blog/">'
            '<link rel="alternate" type="application/rss+xml" href="rss">',
            [FeedLink("https://cdn.example.net/blog/rss", "rss")],
            id="base-href",
        ),
        pytest.param(
            '<link rel="Alternate Feed" type="Application/RSS+XML; charset=utf-8" href="/f">',
            [FeedLink("https://news.example.com/f", "rss")],
            id="case-and-parameters",
        ),
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" title="News &raquo; Comments Feed" '
            'href="/comments/feed/">'
            '<link rel="alternate" type="application/rss+xml" title="Story 1 &raquo; Comments '
            'Feed" href="/story/1/feed/">'
            '<link rel="alternate" type="application/rss+xml" href="/?feed=comments-rss2">'
            '<link rel="alternate" type="application/rss+xml" href="/feed/">',
            [FeedLink("https://news.example.com/feed/", "rss")],
            id="comment-feeds-left-out",
        ),
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" title="Opinion" '
            'href="/commentisfree/rss">'
            '<link rel="alternate" type="application/rss+xml" title="Commentary" '
            'href="/opinion/rss">'
            '<link rel="alternate" type="application/rss+xml" href="/feeds/comments_rss.xml">',
            [
                FeedLink("https://news.example.com/commentisfree/rss", "rss", "Opinion"),
                FeedLink("https://news.example.com/opinion/rss", "rss", "Commentary"),
            ],
            id="commentary-is-not-comments",
        ),
        pytest.param(
            '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">'
            '<link rel="alternate" type="application/json+oembed" href="/oembed?url=x">'
            '<link rel="alternate" hreflang="fr" href="/fr/">'
            '<link rel="stylesheet" type="application/rss+xml" href="/not-a-feed">',
            [],
            id="rest-api-oembed-hreflang-stylesheet",
        ),
        pytest.param(
            '<link rel="alternate" type="application/json" title="JSON Feed" href="/feed.json">'
            '<link rel="alternate" type="text/xml" title="RSS" href="/rss.php">',
            [
                FeedLink("https://news.example.com/feed.json", "json", "JSON Feed"),
                FeedLink("https://news.example.com/rss.php", "rss", "RSS"),
            ],
            id="generic-types-saying-feed",
        ),
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" href="/feed/">'
            '<link rel="alternate" type="application/rss+xml" href="/feed/#top">'
            '<link rel="alternate" type="application/rss+xml" href="javascript:void(0)">'
            '<link rel="alternate" type="application/rss+xml" href="">',
            [FeedLink("https://news.example.com/feed/", "rss")],
            id="repeats-and-junk-hrefs",
        ),
    ],
)
def test_feed_links(head: str, expected: list[FeedLink]) -> None:
    """<link rel="alternate"> feeds of a page, resolved, in order, without comment feeds."""
    assert list(feed_links(_page(head), HOME)) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        pytest.param("News\ufffe Feed\uffff", "News Feed", id="u-fffe-u-ffff"),
        pytest.param("News\ufdd0 \ufdefFeed", "News Feed", id="u-fdd0-u-fdef"),
        pytest.param("News &#x1FFFE;Feed", "News Feed", id="astral-noncharacter"),
        pytest.param("News\x85\x9b Feed\x1b", "News Feed", id="c1-and-escape"),
        pytest.param("News\u200b Fe\u00adeed", "News Feeed", id="zero-width"),
        pytest.param("Cafe\u0301 &amp;amp; Feed", "Caf\u00e9 & Feed", id="nfc-and-escaped-twice"),
    ],
)
def test_feed_link_titles_are_cleaned_as_article_titles_are(title: str, expected: str) -> None:
    """A `<link title>` holding noncharacters (U+FFFE, U+FFFF, U+FDD0..U+FDEF, U+1FFFE), C1
    controls or zero-width characters is cleaned by the rule every one-line field of an article
    follows (`normalize.clean_inline`): the title `feeds add` stores is text."""
    head = f'<link rel="alternate" type="application/rss+xml" title="{title}" href="/feed/">'
    assert feed_links(_page(head), HOME) == (
        FeedLink("https://news.example.com/feed/", "rss", expected),
    )


def test_feed_links_in_body_and_broken_html() -> None:
    """Links outside <head> and unclosed markup still count (pages are what they are)."""
    html = b"<html><body><div><link rel=alternate type=application/rss+xml href=/rss><p>x"
    assert feed_links(html, HOME) == (FeedLink("https://news.example.com/rss", "rss"),)


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf"])
def test_feed_links_non_ascii_href_without_meta_charset(prefix: bytes) -> None:
    """A UTF-8 page that names its charset only in its Content-Type header: its links are read
    as UTF-8, not as windows-1252."""
    html = '<html><head><link rel="alternate" type="application/rss+xml" href="/actualités/feed/">'
    expected = (FeedLink("https://news.example.com/actualités/feed/", "rss"),)
    assert feed_links(prefix + html.encode(), HOME) == expected


def test_feed_links_latin1_page_still_read() -> None:
    """A page that is not UTF-8 is decoded as it declares."""
    html = (
        '<html><head><meta charset="iso-8859-1"><link rel="alternate" '
        'type="application/rss+xml" title="Actualités" href="/actualités/feed/">'
    )
    expected = (FeedLink("https://news.example.com/actualités/feed/", "rss", "Actualités"),)
    assert feed_links(html.encode("latin-1"), HOME) == expected


# The head of a home page an ASP.NET site serves in UTF-16 (`responseEncoding="utf-16"`),
# its feed's title and address outside ASCII.
UTF_16_HOME = (
    '<!DOCTYPE html>\r\n<html lang="ru"><head><meta charset="utf-16"><title>Новости</title>'
    '<link rel="alternate" type="application/rss+xml" title="Лента новостей" '
    'href="/новости/rss.xml"></head><body><h1>Новости</h1></body></html>'
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(UTF_16_HOME.encode("utf-16-le"), id="le-without-bom"),
        pytest.param(UTF_16_HOME.encode("utf-16-be"), id="be-without-bom"),
        pytest.param(UTF_16_HOME.encode("utf-16"), id="le-with-bom"),
    ],
)
def test_feed_links_of_a_utf_16_page_with_its_byte_order_mark_or_without(body: bytes) -> None:
    """A home page in UTF-16 without a byte order mark (its markup's NULs say so,
    `normalize.wide_as_utf8`) links its feeds as one with the mark does (none was found: its
    bytes, all valid UTF-8 with a NUL after each ASCII letter, were read as UTF-8)."""
    expected = (FeedLink("https://news.example.com/новости/rss.xml", "rss", "Лента новостей"),)
    assert feed_links(body, HOME) == expected


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\xff\xfe garbage", b"{}", b"<rss/>"])
def test_feed_links_of_garbage(body: bytes) -> None:
    """Anything without links gives nothing, never an exception."""
    assert feed_links(body, HOME) == ()


def test_common_feed_urls() -> None:
    """The common paths, at the root; for a site under a directory, there first."""
    root = common_feed_urls("https://news.example.com/")
    assert root[0] == "https://news.example.com/feed/"
    assert "https://news.example.com/feeds/posts/default" in root
    assert "https://news.example.com/?feed=rss2" in root
    assert len(root) == len(COMMON_FEED_PATHS)
    blog = common_feed_urls("https://example.org/blog/index.html")
    assert blog[0] == "https://example.org/blog/feed/"
    assert "https://example.org/feed/" in blog
    assert len(blog) == 2 * len(COMMON_FEED_PATHS)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.com/feed/", True),
        ("https://e.com/category/news/feed", True),
        ("https://e.com/rss", True),
        ("https://e.com/feeds/posts/default", True),
        ("https://e.com/atom.xml", True),
        ("https://e.com/index.rss", True),
        ("https://e.com/feed.json", True),
        ("https://e.com/?feed=rss2", True),
        ("https://e.com/news?format=rss", True),
        ("https://e.com/feed0", True),
        ("https://e.com/rss/world", True),
        ("https://e.com/rss.php", True),
        ("https://e.com/services/rssfeed", True),
        ("https://e.com/feed-rss/", True),
        ("https://e.com/atom.aspx?cat=2", True),
        ("https://e.com/feedreader/", False),
        ("https://e.com/rssguide", False),
        ("https://e.com/", False),
        ("https://e.com", False),
        ("https://e.com/blog/", False),
        ("https://e.com/html", False),
        ("https://e.com/sitemap.xml", False),
        ("https://e.com/news-sitemap.xml", False),
        ("https://e.com/feedback/", False),
    ],
)
def test_looks_like_feed_url(url: str, expected: bool) -> None:
    """URLs that say "feed" by themselves (not sitemaps, not home pages)."""
    assert looks_like_feed_url(url) is expected


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<rss/>", "text/html; charset=utf-8", True),
        (b"\xef\xbb\xbf\n<!DOCTYPE HTML PUBLIC>", "", True),
        (b"<html lang=en>", "application/octet-stream", True),
        (b"<!-- cms --><html>", "", True),
        (b"<?xml version='1.0'?><rss/>", "application/rss+xml", False),
        (b"<urlset/>", "", False),
        (b"", "", False),
    ],
)
def test_looks_like_html(body: bytes, content_type: str, expected: bool) -> None:
    """A web page by its media type, else by its first tag."""
    assert looks_like_html(body, content_type) is expected


# --- robots.txt -----------------------------------------------------------------------------------


def test_sitemaps_from_robots() -> None:
    """Sitemap lines anywhere in the file, any case, comments cut, relative ones resolved, junk
    and repeats dropped, in file order."""
    robots = (
        "\ufeffUser-agent: *\n"
        "Disallow: /wp-admin/\n"
        "Sitemap: https://news.example.com/sitemap_index.xml\n"
        "sitemap:https://news.example.com/news-sitemap.xml   # for Google News\n"
        "User-agent: bad-bot\n"
        "Disallow: /\n"
        "SITEMAP: /relative-sitemap.xml\n"
        "Sitemap: ftp://news.example.com/nope.xml\n"
        "Sitemap:\n"
        "Sitemaps: https://news.example.com/typo.xml\n"
        "Sitemap: https://news.example.com/sitemap_index.xml\n"
    )
    assert sitemaps_from_robots(robots.encode(), "https://news.example.com/robots.txt") == (
        "https://news.example.com/sitemap_index.xml",
        "https://news.example.com/news-sitemap.xml",
        "https://news.example.com/relative-sitemap.xml",
    )


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0c"], ids=["ls", "nel", "ff"])
def test_a_sitemap_line_in_a_robots_txt_comment_is_no_sitemap(separator: str) -> None:
    """A line ends at CR, LF or CRLF (RFC 9309 §2.2): a `Sitemap:` after U+2028, NEL or a form
    feed in a comment is part of the comment (was: a line of its own, a sitemap the site had
    commented out read as one)."""
    robots = f"# retired{separator}Sitemap: /old.xml\nSitemap: /news.xml\n"
    for body in (robots, robots.encode()):
        assert sitemaps_from_robots(body, "https://e.com/robots.txt") == ("https://e.com/news.xml",)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            ("User-agent: *\r\nSitemap: https://e.com/sitemap.xml\r\n").encode("utf-16"),
            id="le-with-bom",
        ),
        pytest.param(
            ("User-agent: *\r\nSitemap: https://e.com/sitemap.xml\r\n").encode("utf-16-le"),
            id="le-without-bom",
        ),
        pytest.param(
            ("Sitemap: https://e.com/sitemap.xml\n").encode("utf-16-be"), id="be-without-bom"
        ),
    ],
)
def test_the_sitemaps_of_a_utf_16_robots_txt_are_found(body: bytes) -> None:
    """A robots.txt in UTF-16 (Notepad's "Unicode"), with its byte order mark or without one,
    lists its sitemaps as in UTF-8 (`normalize.wide_as_utf8`, as its rules are read: it
    listed none, each line's field name a letter and a NUL apart)."""
    assert sitemaps_from_robots(body, "https://e.com/robots.txt") == ("https://e.com/sitemap.xml",)


@pytest.mark.parametrize(
    "line",
    [
        'Sitemap: "https://e.com/sitemap.xml"',
        "Sitemap: 'https://e.com/sitemap.xml'",
        "Sitemap: <https://e.com/sitemap.xml>",
        'Sitemap: "https://e.com/sitemap.xml" # the index',
        "Sitemap: \u201chttps://e.com/sitemap.xml\u201d",
    ],
)
def test_a_quoted_sitemap_url_in_robots_txt_is_the_url_it_quotes(line: str) -> None:
    """A `Sitemap:` value in quotes (straight or curly, as an SEO plugin's settings field or
    a word processor wrote it) or angle brackets is the URL inside them (it was resolved as
    a relative path: `https://e.com/"https:/e.com/sitemap.xml"`, a sitemap that never
    exists, and the site's real one never read)."""
    body = f"User-agent: *\nDisallow:\n{line}\n".encode()
    assert sitemaps_from_robots(body, "https://e.com/robots.txt") == ("https://e.com/sitemap.xml",)


def test_sitemaps_from_robots_garbage() -> None:
    """Undecodable bytes or no Sitemap line: nothing, never an exception."""
    assert sitemaps_from_robots(b"\xff\xfe\x00garbage", "https://e.com/robots.txt") == ()
    assert sitemaps_from_robots("", "https://e.com/robots.txt") == ()


# --- feed history ------------------------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"


@pytest.mark.parametrize(
    ("body", "url", "expected"),
    [
        pytest.param(
            f"<feed xmlns='{ATOM}'><title>x</title>"
            "<link rel='self' href='https://e.com/atom'/>"
            "<link rel='next' href='/atom?page=2'/>"
            "<entry><link rel='next' href='/entry-level'/></entry></feed>",
            "https://e.com/atom",
            FeedPaging(next="https://e.com/atom?page=2"),
            id="atom-paged",
        ),
        pytest.param(
            f"<rss version='2.0' xmlns:atom='{ATOM}'><channel><title>x</title>"
            "<atom:link rel='current' href='https://e.com/rss'/>"
            "<atom:link rel='prev-archive' href='https://e.com/archive/2023-12.xml'/>"
            "<link>https://e.com/</link>"
            "<item><atom:link rel='next' href='https://e.com/item-level'/></item>"
            "</channel></rss>",
            "https://e.com/rss",
            FeedPaging(prev_archive="https://e.com/archive/2023-12.xml"),
            id="rss-archived",
        ),
        pytest.param(
            f"<feed xmlns='{ATOM}'>"
            "<link rel='http://www.iana.org/assignments/relation/next' href='p2'/>"
            "<link rel='prev-archive' href='https://e.com/a1'/></feed>",
            "https://e.com/feeds/x",
            FeedPaging(next="https://e.com/feeds/p2", prev_archive="https://e.com/a1"),
            id="iana-relation-uri-and-both",
        ),
        pytest.param(
            "<?xml version='1.0'?><rss version='2.0'><channel><title>x</title>"
            "<generator>https://wordpress.org/?v=6.5.2</generator></channel></rss>",
            "https://blog.example/news/",
            FeedPaging(wordpress=True),
            id="wordpress-rss-generator",
        ),
        pytest.param(
            f"<feed xmlns='{ATOM}'><generator uri='https://wordpress.org/' version='6.5'>"
            "WordPress</generator></feed>",
            "https://blog.example/atom",
            FeedPaging(wordpress=True),
            id="wordpress-atom-generator",
        ),
        pytest.param(
            "<rss version='2.0'><channel><generator>Hugo</generator></channel></rss>",
            "https://blog.example/category/news/feed/",
            FeedPaging(wordpress=True),
            id="wordpress-feed-path",
        ),
        pytest.param(
            "<rss version='2.0'><channel><generator>Hugo</generator></channel></rss>",
            "https://blog.example/index.xml",
            FeedPaging(),
            id="no-history",
        ),
        pytest.param(
            f"<feed xmlns='{ATOM}'><link rel='next' href='https://e.com/atom'/></feed>",
            "https://e.com/atom",
            FeedPaging(),
            id="next-to-itself-ignored",
        ),
        pytest.param(
            "<rss><channel><atom:link rel='next' href='/p2'/></channel></rss>",
            "https://e.com/rss",
            FeedPaging(),
            id="undeclared-prefix-is-not-atom",
        ),
        pytest.param("", "https://e.com/rss", FeedPaging(), id="empty"),
        pytest.param("\x00garbage<<", "https://e.com/rss", FeedPaging(), id="garbage"),
        pytest.param("<html><body/></html>", "https://e.com/x", FeedPaging(), id="html"),
    ],
)
def test_feed_paging(body: str, url: str, expected: FeedPaging) -> None:
    """Feed-level history links only (entry-level ones are not the feed's), WordPress by its
    generator or path; anything unreadable has no history."""
    assert feed_paging(body.encode(), url) == expected


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16", "utf-32"])
def test_the_history_links_of_a_utf_16_feed_are_found(codec: str) -> None:
    """A paged feed in UTF-16 or UTF-32, with its byte order mark or without one and without
    an XML declaration (its markup's NULs say so, `normalize.wide_as_utf8`, as they say it to
    the parser of its entries), links its older pages as in UTF-8 (without the mark, libxml2
    read none: the backfill walked its first page alone)."""
    body = (
        f'<feed xmlns="{ATOM}"><title>Nachrichten</title>'
        '<link rel="next" href="https://e.com/feed?page=2"/></feed>'
    )
    paging = feed_paging(body.encode(codec), "https://e.com/atom")
    assert paging.next == "https://e.com/feed?page=2"


def test_json_feed_next_url() -> None:
    """JSON Feed 1.1 pagination: `next_url`."""
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "items": [], "next_url": "/feed.json?p=2"}
    ).encode()
    assert feed_paging(body, "https://e.com/feed.json") == FeedPaging(
        next="https://e.com/feed.json?p=2"
    )
    assert feed_paging(b"{not json", "https://e.com/feed.json") == FeedPaging()


def test_history_order() -> None:
    """`history`: RFC 5005 links, next first, without repeats."""
    paging = FeedPaging(next="https://e.com/2", prev_archive="https://e.com/2", wordpress=True)
    assert paging.history == ("https://e.com/2",)
    assert FeedPaging().history == ()


@pytest.mark.parametrize(
    ("url", "page", "expected"),
    [
        ("https://e.com/feed/", 2, "https://e.com/feed/?paged=2"),
        ("https://e.com/feed/?paged=2", 3, "https://e.com/feed/?paged=3"),
        ("https://e.com/?feed=rss2", 2, "https://e.com/?feed=rss2&paged=2"),
        ("https://e.com/feed/?paged=5#x", 1, "https://e.com/feed/"),
    ],
)
def test_with_page(url: str, page: int, expected: str) -> None:
    """WordPress pages: ?paged=N set (or dropped for page 1), other parameters kept."""
    assert with_page(url, page) == expected
    assert page_number(expected) == page


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.com/feed/", 1),
        ("https://e.com/feed/?paged=7", 7),
        ("https://e.com/feed/?paged=0", 1),
        ("https://e.com/feed/?paged=x", 1),
        ("https://e.com/feed/?paged=²", 1),
    ],
)
def test_page_number(url: str, expected: int) -> None:
    """The page a WordPress feed URL asks for; 1 without (or with a junk) `paged`."""
    assert page_number(url) == expected


def test_parse_feed_page() -> None:
    """One call gives the entries and the history links of a feed page."""
    body = (
        f"<feed xmlns='{ATOM}'><title>T</title><id>urn:x</id><updated>2024-05-01T00:00:00Z"
        "</updated><link rel='next' href='/p2'/><entry><id>urn:1</id><title>One</title>"
        "<link href='https://e.com/1'/><updated>2024-05-01T00:00:00Z</updated></entry></feed>"
    ).encode()
    feed, paging = parse_feed_page(body, "https://e.com/atom", {})
    assert [e.link for e in feed.entries] == ["https://e.com/1"]
    assert paging == FeedPaging(next="https://e.com/p2")


def test_a_robots_txt_sitemap_without_its_scheme_is_its_site_s() -> None:
    """A `Sitemap:` line written without the scheme (`www.example.com/sitemap.xml`, or the
    host of the robots.txt's own site) names that host's sitemap, read as a sitemap's own
    locations are (`sitemaps.location`), not a path under the robots.txt's directory."""
    robots = b"Sitemap: www.example.com/news.xml\nSitemap: example.com/sitemap.xml\n"
    assert sitemaps_from_robots(robots, "https://example.com/robots.txt") == (
        "https://www.example.com/news.xml",
        "https://example.com/sitemap.xml",
    )


def test_a_feed_link_in_the_feed_uri_scheme_is_its_http_url() -> None:
    """A page advertising its feed with the `feed:` URI scheme (`feed://host/rss`, for feed
    readers that registered it; `feed:https://host/rss`) links that feed over HTTP: `feed://`
    is `http://`, `feed:` before an http(s) URL that URL. Such a link was no http(s) URL,
    dropped: `feeds add` of the home page found no feed, or only one at a common path."""
    page = (
        b"<html><head>"
        b'<link rel="alternate" type="application/rss+xml" href="feed://example.com/rss.xml">'
        b'<link rel="alternate" type="application/atom+xml" href="feed:https://example.com/atom">'
        b'<link rel="alternate" type="application/rss+xml" href="FEED://example.com/news.xml">'
        b"</head><body></body></html>"
    )
    assert [link.url for link in feed_links(page, "https://example.com/")] == [
        "http://example.com/rss.xml",
        "https://example.com/atom",
        "http://example.com/news.xml",
    ]
