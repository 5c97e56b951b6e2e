"""ingest.extract.metadata.structured_metadata: the fields a page's JSON-LD and meta tags give,
read from a parsed page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from lxml import html

from ingest.documents.feeds import parse_feed
from ingest.documents.sitemaps import parse_w3c_datetime
from ingest.extract.metadata import (
    choose_published,
    complete_metadata,
    json_ld_article,
    structured_metadata,
)
from ingest.types import PageMetadata

URL = "https://www.example.com/news/2024/story.html"


def _meta(head: str, body: str = "<p>Text.</p>", url: str = URL) -> PageMetadata:
    tree = html.document_fromstring(f"<html><head>{head}</head><body>{body}</body></html>")
    return structured_metadata(tree, json_ld_article(tree, url), url)


def _ld(node: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(node)}</script>'


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("/img/lead.jpg", "https://www.example.com/img/lead.jpg"),
        ("lead.jpg", "https://www.example.com/news/2024/lead.jpg"),
        ("//cdn.example.com/lead.jpg", "https://cdn.example.com/lead.jpg"),
        ("https://cdn.example.com/lead.jpg", "https://cdn.example.com/lead.jpg"),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", None),
        ("/img/lead photo.jpg", "https://www.example.com/img/lead%20photo.jpg"),
        (" https://cdn.example.com/img/\nlead.jpg ", "https://cdn.example.com/img/lead.jpg"),
    ],
)
def test_og_image_is_resolved_against_the_page(image: str, expected: str | None) -> None:
    """An `og:image` written relative to the page, or without its scheme, is the image at
    that address; a data: URI is no image address. A space inside is the file name's (sent
    as `%20`, as a browser requests it); a line break is not part of it."""
    head = f'<meta property="og:image" content="{image}">'
    assert _meta(head).image_url == expected


@pytest.mark.parametrize(
    ("base", "canonical", "image"),
    [
        pytest.param(
            "https://www.example.com/",
            "https://www.example.com/news/2024/story.html",
            "https://www.example.com/fileadmin/lead.jpg",
            id="site-root",
        ),
        pytest.param(
            "/",
            "https://www.example.com/news/2024/story.html",
            "https://www.example.com/fileadmin/lead.jpg",
            id="root-path",
        ),
        pytest.param(
            "//static.example.com/v2/",
            "https://static.example.com/v2/news/2024/story.html",
            "https://static.example.com/v2/fileadmin/lead.jpg",
            id="scheme-relative",
        ),
        pytest.param(
            "javascript:void(0)",
            "https://www.example.com/news/2024/news/2024/story.html",
            "https://www.example.com/news/2024/fileadmin/lead.jpg",
            id="no-http-base",
        ),
    ],
)
def test_relative_addresses_are_resolved_against_the_base_href(
    base: str, canonical: str, image: str
) -> None:
    """A page's `<base href>` is what its relative canonical and `og:image` resolve against,
    as in a browser; one that is no http(s) address is none (the page's address then)."""
    head = (
        f'<base href="{base}"><link rel="canonical" href="news/2024/story.html">'
        '<meta property="og:image" content="fileadmin/lead.jpg">'
    )
    meta = _meta(head)
    assert meta.canonical_url == canonical
    assert meta.image_url == image


@pytest.mark.parametrize(
    "href",
    [
        pytest.param("https://www.example.com/news/2024/\nstory.html", id="line-feed"),
        pytest.param("https://www.example.com/news/\r\n2024/story.html", id="crlf"),
        pytest.param("/news/2024/\tstory.html", id="tab"),
        pytest.param("https://www.exam\nple.com/news/2024/story.html", id="in-the-host"),
        pytest.param("\n  https://www.example.com/news/2024/story.html\n", id="around-it"),
    ],
)
def test_a_canonical_link_split_over_lines_is_the_address_without_the_breaks(href: str) -> None:
    """A `<link rel="canonical">` whose href a template broke over lines, or with a tab in
    it: the address without them, as the URL standard has a browser read it."""
    meta = _meta(f'<link rel="canonical" href="{href}">', url="https://www.example.com/?p=4")
    assert meta.canonical_url == URL


@pytest.mark.parametrize(
    "image",
    [
        "/img/lead.jpg",
        {"@type": "ImageObject", "url": "/img/lead.jpg"},
        {"@type": "ImageObject", "contentUrl": "/img/lead.jpg"},
        [{"@type": "ImageObject", "contentUrl": "https://www.example.com/img/lead.jpg"}],
        ["data:image/gif;base64,R0lGODlhAQABAAAAACw=", "/img/lead.jpg"],
    ],
)
def test_json_ld_image_as_a_string_an_object_or_a_list(image: object) -> None:
    """JSON-LD `image` as a (relative) string, an ImageObject with `url` or `contentUrl`, or
    a list of them: the first that is an image address, resolved against the page."""
    head = _ld({"@type": "NewsArticle", "image": image})
    assert _meta(head).image_url == "https://www.example.com/img/lead.jpg"


def test_og_image_fills_in_for_a_json_ld_image_that_is_no_address() -> None:
    """A JSON-LD `image` that is no image address gives way to `og:image`."""
    head = _ld({"@type": "NewsArticle", "image": "data:image/png;base64,iVBORw0KGgo="})
    head += '<meta property="og:image" content="https://cdn.example.com/og.jpg">'
    assert _meta(head).image_url == "https://cdn.example.com/og.jpg"


@pytest.mark.parametrize(
    ("head", "url"),
    [
        ('<meta property="og:title" content="Example">', URL),
        ('<meta property="og:title" content="www.example.com">', URL),
        (
            '<meta property="og:title" content="The Daily Courier">'
            '<meta property="og:site_name" content="The Daily Courier">',
            URL,
        ),
        (_ld({"@type": "NewsArticle", "headline": "Example.com"}), "https://example.com/a"),
    ],
)
def test_the_h1_is_the_headline_where_the_title_is_only_the_site_s_name(
    head: str, url: str
) -> None:
    """A social/SEO title that is the site's name and nothing else (a template filling in
    the site's title) gives way to the page's <h1>."""
    body = "<h1>Council passes the budget</h1><p>Text.</p>"
    assert _meta(head, body, url=url).title == "Council passes the budget"


@pytest.mark.parametrize(
    ("logo", "title"),
    [
        (
            "The Blogpost Network",
            "Autumn colours at the Misty Valley campsite, part two @ Steven's blog"
            " :: The Blogpost Network ::",
        ),
        ("痞客邦 PIXNET", "新竹尖石_美樹營地賞楓 (2) @ 史蒂文的家_藍天 :: 痞客邦 PIXNET ::"),
    ],
)
def test_a_logo_h1_named_in_a_long_title_is_not_the_headline(logo: str, title: str) -> None:
    """An <h1> holding the platform's logo, whose words all appear in the page's title (its
    last part), is not the headline: the heading must hold a third of the title's words."""
    head = f'<meta property="og:title" content="{title}">'
    assert _meta(head, f"<h1>{logo}</h1><p>Text.</p>").title == title


def test_a_headline_that_begins_with_the_site_s_name_is_kept() -> None:
    """A headline whose first word is the site's name is still a headline."""
    head = '<meta property="og:title" content="Example hires a new editor">'
    assert _meta(head).title == "Example hires a new editor"


@pytest.mark.parametrize(
    "description",
    [
        "&lt;p&gt;The council &lt;b&gt;passed&lt;/b&gt; the budget.&lt;/p&gt;",
        "<p>The council <b>passed</b> the budget.</p>",
        "&amp;lt;p&amp;gt;The council passed the budget.&amp;lt;/p&amp;gt;",
    ],
)
def test_markup_in_a_description_is_not_kept(description: str) -> None:
    """A description written with its HTML markup (escaped or not, once or twice) is its text."""
    head = f'<meta property="og:description" content="{description}">'
    assert _meta(head).description == "The council passed the budget."


def test_paragraphs_of_a_description_written_in_markup_are_kept_apart() -> None:
    head = '<meta name="description" content="&lt;p&gt;One.&lt;/p&gt;&lt;p&gt;Two.&lt;/p&gt;">'
    assert _meta(head).description == "One. Two."


def test_a_description_with_angle_brackets_that_are_no_markup_is_kept() -> None:
    head = '<meta property="og:description" content="Growth &lt; 2 % and inflation &gt; 3 %">'
    assert _meta(head).description == "Growth < 2 % and inflation > 3 %"


@pytest.mark.parametrize(
    ("head", "field", "expected"),
    [
        pytest.param(
            '<meta property="og:title" content="&lt;em&gt;Pier&lt;/em&gt; extended by forty">',
            "title",
            "Pier extended by forty",
            id="og-title-escaped",
        ),
        pytest.param(
            _ld({"@type": "NewsArticle", "headline": "<em>Pier</em> extended by forty"}),
            "title",
            "Pier extended by forty",
            id="json-ld-headline",
        ),
        pytest.param(
            '<meta property="og:site_name" content="&lt;b&gt;Harbour&lt;/b&gt; Times">',
            "site_name",
            "Harbour Times",
            id="og-site-name",
        ),
        pytest.param(
            _ld({"@type": "NewsArticle", "author": {"name": '<a href="/jane">Jane Doe</a>'}}),
            "author",
            "Jane Doe",
            id="json-ld-author-as-a-link",
        ),
        pytest.param(
            '<meta name="author" content="&lt;a href=&quot;/jane&quot;&gt;Jane Doe&lt;/a&gt;">',
            "author",
            "Jane Doe",
            id="meta-author-escaped-link",
        ),
    ],
)
def test_markup_in_a_title_site_name_or_author_is_not_kept(
    head: str, field: str, expected: str
) -> None:
    """A headline, site name or byline written with its HTML markup (as a description may be:
    `<em>Pier</em> extended`, a byline linking its author's page) is its text."""
    meta = complete_metadata(
        html.document_fromstring(f"<html><head>{head}</head><body></body></html>"),
        _meta(head),
        URL,
    )
    assert getattr(meta, field) == expected


@pytest.mark.parametrize(
    "head",
    [
        pytest.param('<meta name="author" content="jane@example.com (Jane Doe)">', id="meta"),
        pytest.param(
            _ld({"@type": "NewsArticle", "author": "jane@example.com (Jane Doe)"}), id="json-ld"
        ),
    ],
)
def test_a_byline_written_as_an_address_and_a_name_is_the_name(head: str) -> None:
    """A byline in RSS's `address (Name)` form, as some templates copy it from their feed into
    the page, names the person in brackets."""
    tree = html.document_fromstring(f"<html><head>{head}</head><body></body></html>")
    meta = complete_metadata(tree, _meta(head), URL)
    assert (meta.author, meta.authors) == ("Jane Doe", ("Jane Doe",))


PERSON = "https://www.example.com/#/schema/person/1"
PUBLISHER = "https://www.example.com/#organization"


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        pytest.param({"@id": PERSON}, "Jane Doe", id="reference"),
        pytest.param([{"@id": PERSON}, {"name": "John Roe"}], "Jane Doe, John Roe", id="list"),
        pytest.param({"@id": PUBLISHER}, None, id="the-publisher"),
        pytest.param({"@id": "https://www.example.com/#nobody"}, None, id="dangling"),
    ],
)
def test_json_ld_author_and_publisher_given_by_reference_are_read_from_the_graph(
    author: object, expected: str | None
) -> None:
    """An `@graph` (Yoast SEO's) whose article names its author and publisher by `@id`, the
    Person and Organization given as other nodes: the byline and site name are theirs; a
    reference to the publisher is no byline, one to no node none either."""
    graph = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebPage", "@id": URL},
            {
                "@type": "Article",
                "headline": "Council passes the budget",
                "author": author,
                "publisher": {"@id": PUBLISHER},
            },
            {"@type": "Person", "@id": PERSON, "name": "Jane Doe"},
            {"@type": "Organization", "@id": PUBLISHER, "name": "Example Times"},
        ],
    }
    meta = _meta(_ld(graph))
    assert (meta.author, meta.site_name) == (expected, "Example Times")


RELATED = {
    "@type": "NewsArticle",
    "headline": "Ferry timetable changes",
    "url": "https://www.example.com/news/2024/ferry.html",
    "author": {"@type": "Person", "name": "John Roe"},
    "datePublished": "2024-01-01T08:00:00Z",
}


def _story(kind: str = "NewsArticle", **naming: object) -> dict[str, object]:
    return {
        "@type": kind,
        "headline": "Council passes the budget",
        "author": {"@type": "Person", "name": "Jane Doe"},
        "datePublished": "2024-03-06T10:00:00Z",
        **naming,
    }


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(
            f'<link rel="canonical" href="{URL}">' + _ld({"@graph": [RELATED, _story(url=URL)]}),
            id="its-url-the-canonical-link",
        ),
        pytest.param(
            f'<meta property="og:url" content="{URL}">'
            + _ld([RELATED, _story(mainEntityOfPage={"@id": URL})]),
            id="main-entity-of-page-the-og-url",
        ),
        pytest.param(
            _ld(RELATED) + _ld(_story(**{"@id": URL + "#article"})),
            id="its-id-the-page-address-in-another-script",
        ),
        pytest.param(
            _ld(RELATED) + _ld(_story("LiveBlogPosting", url="/news/2024/story.html")),
            id="a-live-blog-named-by-a-relative-url",
        ),
        pytest.param(
            '<meta property="og:title" content="Council passes the budget">'
            + _ld({"@graph": [RELATED, _story()]}),
            id="its-headline-the-og-title",
        ),
    ],
)
def test_the_json_ld_article_naming_this_page_is_read_among_several(head: str) -> None:
    """A page with several JSON-LD articles (related stories, or a story beside a live blog):
    the one naming this page, by its `url`, `@id` or `mainEntityOfPage` (the page's address,
    canonical link or `og:url`), else by its headline, gives the page's fields."""
    meta = _meta(head)
    assert (meta.title, meta.author) == ("Council passes the budget", "Jane Doe")
    assert meta.published_at == datetime(2024, 3, 6, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "head"),
    [
        pytest.param(
            URL,
            _ld({"@graph": [RELATED, _story(url="news/2024/story.html")]}),
            id="its-url-relative-to-the-base",
        ),
        pytest.param(
            URL,
            _ld([RELATED, _story(mainEntityOfPage={"@id": "news/2024/story.html#webpage"})]),
            id="main-entity-of-page-relative-to-the-base",
        ),
        pytest.param(
            "https://www.example.com/de/index.php?id=42",
            '<link rel="canonical" href="news/2024/story.html">'
            + _ld({"@graph": [RELATED, _story(**{"@id": URL + "#article"})]}),
            id="the-canonical-link-relative-to-the-base",
        ),
    ],
)
def test_the_json_ld_article_naming_this_page_is_read_against_the_base_href(
    url: str, head: str
) -> None:
    """A page whose `<base href>` names its site's root (TYPO3's `config.baseURL`): the
    addresses its JSON-LD articles and canonical link give relative to it name the page as a
    browser resolves them, against the base, as its canonical and `og:image` are."""
    meta = _meta('<base href="https://www.example.com/">' + head, url=url)
    assert (meta.title, meta.author) == ("Council passes the budget", "Jane Doe")


def test_the_first_json_ld_article_is_read_when_none_names_this_page() -> None:
    """Of several JSON-LD articles none of which names the page, the first is read."""
    other = {**RELATED, "headline": "Harbour works begin", "url": "/news/2024/harbour.html"}
    meta = _meta(_ld([RELATED, other]))
    assert (meta.title, meta.author) == ("Ferry timetable changes", "John Roe")


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param('{"@type": 5, "headline": "Other"}', "Pier to be extended", id="type-number"),
        pytest.param(
            '{"@type": [{"x": 1}, "NewsArticle"], "headline": "Pier"}', "Pier", id="type-object"
        ),
        pytest.param(
            '{"@type": "NewsArticle", "headline": "Pier", "author": '
            + _nested(600, '"Jane Doe"')
            + "}",
            "Pier",
            id="author-lists-600-deep",
        ),
        pytest.param(
            '{"@graph": [{"@type": "NewsArticle", "headline": "Pier", "author": '
            + _nested(600, '{"@id": "#jane"}')
            + '}, {"@id": "#jane", "name": "Jane Doe"}]}',
            "Pier",
            id="author-references-600-deep",
        ),
    ],
)
def test_json_ld_of_unexpected_shapes_leaves_the_rest_of_the_page_read(
    script: str, expected: str
) -> None:
    """JSON-LD whose `@type` is a number or holds an object, or whose author is nested hundreds
    of lists deep (valid JSON, which the parser reads): a type that is no name
    is none, and nesting past a few levels names nobody; the page's other fields are read (was:
    TypeError or RecursionError, the page's text lost with its metadata)."""
    head = (
        '<meta property="og:title" content="Pier to be extended">'
        f'<script type="application/ld+json">{script}</script>'
    )
    meta = _meta(head)
    assert meta.title == expected
    assert meta.author is None


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("<![CDATA[", "]]>"),
        ("\n  <![CDATA[\n  ", "\n  ]]>\n"),
        ("//<![CDATA[\n", "\n//]]>"),
        ("/*<![CDATA[*/", "/*]]>*/"),
    ],
)
def test_json_ld_wrapped_in_a_cdata_section_is_read(before: str, after: str) -> None:
    """JSON-LD written for XHTML, inside a CDATA section (bare or commented out for HTML
    parsers), is the same JSON: its authors, headline and dates are read (was: the script
    was no JSON, and a page lost all but the first of its two authors to the byline guess)."""
    node = {
        "@type": "NewsArticle",
        "headline": "Pier to be extended",
        "datePublished": "2024-05-02T08:30:00Z",
        "author": [
            {"@type": "Person", "name": "Jane Doe"},
            {"@type": "Person", "name": "Ana Ruiz"},
        ],
    }
    meta = _meta(f'<script type="application/ld+json">{before}{json.dumps(node)}{after}</script>')
    assert (meta.title, meta.author) == ("Pier to be extended", "Jane Doe, Ana Ruiz")
    assert meta.published_at == datetime(2024, 5, 2, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(
            _ld(
                {
                    "@type": "BlogPosting",
                    "headline": "Simple anomaly detection in SQL",
                    "author": {"@type": "Person", "name": "Jane Doe"},
                    "publisher": {"@type": "Organization", "name": "Jane Doe"},
                }
            ),
            ("Jane Doe",),
            id="json-ld-person-and-publisher",
        ),
        pytest.param(
            '<meta property="og:site_name" content="Jane Doe">'
            + _ld({"@type": "BlogPosting", "author": [{"@type": "Person", "name": "Jane Doe"}]}),
            ("Jane Doe",),
            id="json-ld-person-and-og-site-name",
        ),
        pytest.param(
            '<meta property="og:site_name" content="Jane Doe">'
            '<meta name="author" content="Jane Doe">',
            (),
            id="meta-author-is-the-site-s-name",
        ),
        pytest.param(
            _ld(
                {
                    "@type": "NewsArticle",
                    "author": {"@type": "Organization", "name": "Example Times"},
                    "publisher": {"@type": "Organization", "name": "Example Times"},
                }
            ),
            (),
            id="json-ld-organization",
        ),
    ],
)
def test_a_personal_blog_named_after_its_author_keeps_the_author(
    head: str, expected: tuple[str, ...]
) -> None:
    """A site named after the person who writes it: the JSON-LD's Person is the author, though
    the site goes by that name (was: no author, the byline taken for the site's name). A meta
    author equal to the site's name still names no person."""
    tree = html.document_fromstring(f"<html><head>{head}</head><body><p>Text.</p></body></html>")
    assert complete_metadata(tree, _meta(head), URL).authors == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(
            '<meta property="og:title" content="New Zealand - Wikipedia">',
            "New Zealand",
            id="og-title-agrees-with-the-h1",
        ),
        pytest.param("<title>New Zealand | Example</title>", "New Zealand", id="title-agrees"),
        pytest.param("", "Island country in Oceania", id="nothing-agrees"),
        pytest.param(
            '<meta property="og:title" content="Island country in Oceania">',
            "Island country in Oceania",
            id="og-title-agrees-with-the-json-ld",
        ),
    ],
)
def test_the_h1_is_the_headline_where_a_title_of_the_page_agrees_against_the_json_ld(
    head: str, expected: str
) -> None:
    """A JSON-LD headline that is another text than the <h1> (a summary, as Wikipedia's): the
    <h1> where the og:title or <title> agrees with it, else the JSON-LD's headline (was: the
    JSON-LD's always)."""
    node = {"@type": "Article", "name": "New Zealand", "headline": "Island country in Oceania"}
    meta = _meta(_ld(node) + head, body="<h1>New Zealand</h1><p>Text.</p>")
    assert meta.title == expected


_JUNE_2 = datetime(2025, 6, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-02 08:15 HST", _JUNE_2 + timedelta(hours=18, minutes=15)),
        ("2025-06-02T08:15:00 CEST", _JUNE_2 + timedelta(hours=6, minutes=15)),
        ("2025-06-02 8:15 PM EDT", _JUNE_2 + timedelta(days=1, minutes=15)),
        ("Jun 2, 2025 8:15 AM EDT", _JUNE_2 + timedelta(hours=12, minutes=15)),
        ("June 2, 2025 8:15 p.m. EDT", _JUNE_2 + timedelta(days=1, minutes=15)),
        ("Monday, June 2, 2025 12:05 AM PDT", _JUNE_2 + timedelta(hours=7, minutes=5)),
        ("Mon, 02 Jun 2025 08:15:00 HST", _JUNE_2 + timedelta(hours=18, minutes=15)),
        ("Mon, 02 Jun 2025 08:15:00 aest", _JUNE_2 - timedelta(hours=1, minutes=45)),
        ("Jun 2, 2025 8:15 PM", _JUNE_2 + timedelta(hours=20, minutes=15)),
        ("Jun 2, 2025 12:15 PM GMT", _JUNE_2 + timedelta(hours=12, minutes=15)),
    ],
)
def test_a_page_time_with_a_zone_s_name_is_that_time_in_that_zone(
    value: str, expected: datetime
) -> None:
    """A publication time written with a zone's name (`ZONE_OFFSETS`, the table feeds and
    sitemaps read theirs from) and a 12-hour clock is that instant, not the same digits in
    UTC: 8:15 AM EDT is 12:15 UTC, 8:15 PM in Honolulu the next day's 06:15."""
    assert choose_published([value]) == (expected, True)


def test_a_zone_s_name_on_another_time_of_the_page_gives_the_offset_of_a_naive_one() -> None:
    """A naive datePublished beside a modification time written with a zone's name is read in
    that zone, as it is beside one written with an offset; a name the table does not know is
    no zone (IST names zones hours apart)."""
    naive = ["2025-06-02T08:15:00"]
    assert choose_published(naive, ["2025-06-02 09:00 EDT"])[0] == _JUNE_2 + timedelta(
        hours=12, minutes=15
    )
    assert choose_published(naive, ["2025-06-02 09:00 IST"])[0] == _JUNE_2 + timedelta(
        hours=8, minutes=15
    )


@pytest.mark.parametrize(
    "head",
    [
        '<meta property="article:published_time" content="2025-06-02 08:15 HST">',
        _ld({"@type": "NewsArticle", "headline": "H", "datePublished": "2025-06-02 08:15 HST"}),
    ],
)
def test_a_page_s_publication_time_with_a_zone_s_name_is_read_in_that_zone(head: str) -> None:
    """`article:published_time` or JSON-LD `datePublished` of `2025-06-02 08:15 HST` (PHP's
    `Y-m-d H:i T`): 18:15 UTC, with its time of day, instead of no date at all."""
    meta = _meta(head)
    assert (meta.published_at, meta.published_has_time) == (
        _JUNE_2 + timedelta(hours=18, minutes=15),
        True,
    )


def test_an_article_time_element_with_a_zone_s_name_is_read_in_that_zone() -> None:
    """`<time datetime="Jun 2, 2025 8:15 AM EDT">` inside the article: 12:15 UTC."""
    body = '<article><time datetime="Jun 2, 2025 8:15 AM EDT">June 2</time><p>Text.</p></article>'
    assert _meta("", body).published_at == _JUNE_2 + timedelta(hours=12, minutes=15)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("June 2, 2025", (_JUNE_2, False)),
        ("2 June 2025", (_JUNE_2, False)),
        ("Monday, June 2, 2025", (_JUNE_2, False)),
        ("Jun. 2nd, 2025", (_JUNE_2, False)),
        ("2nd June 2025", (_JUNE_2, False)),
        ("Sept. 2, 2025", (datetime(2025, 9, 2, tzinfo=UTC), False)),
        ("June 2, 2025 at 8:15 AM EDT", (_JUNE_2 + timedelta(hours=12, minutes=15), True)),
        ("June 2, 2025 at 11:30 PM PDT", (_JUNE_2 + timedelta(days=1, hours=6, minutes=30), True)),
        ("2 June 2025 at 08:15 CEST", (_JUNE_2 + timedelta(hours=6, minutes=15), True)),
        ("June 2, 2025, 8:15 a.m.", (_JUNE_2 + timedelta(hours=8, minutes=15), True)),
        ("June 2, 2025 @ 8:15 pm", (_JUNE_2 + timedelta(hours=20, minutes=15), True)),
    ],
)
def test_a_date_written_with_its_month_s_name_is_read(
    value: str, expected: tuple[datetime, bool]
) -> None:
    """A publication date written for readers, with its month's name, without a time (that
    day: midnight UTC without a time of day, as a date alone is everywhere) or with one after
    `at` (that time, in the zone it names)."""
    assert choose_published([value]) == expected


@pytest.mark.parametrize(
    "value", ["February 30, 2025", "Juneteenth 2, 2025", "June 2, 2025 at 8:15 AM IST", "June 2"]
)
def test_a_written_date_that_is_none_is_not_read(value: str) -> None:
    """A day the month does not have, a word that is no month's name, a zone's name the table
    does not know (`IST` names zones hours apart) and a date without its year are no date."""
    assert choose_published([value]) == (None, False)


@pytest.mark.parametrize(
    "head",
    [
        '<meta property="article:published_time" content="June 2, 2025">',
        '<meta name="date" content="2 June 2025">',
        '<meta itemprop="datePublished" content="June 2, 2025">',
        _ld({"@type": "NewsArticle", "headline": "H", "datePublished": "June 2, 2025"}),
    ],
)
def test_a_page_s_publication_day_written_with_its_month_s_name_is_read(head: str) -> None:
    """`article:published_time`, a `date` meta or JSON-LD `datePublished` of `June 2, 2025`:
    that day, without a time of day, instead of no date (and trafilatura's guess, another day
    the page or its address names)."""
    meta = _meta(head)
    assert (meta.published_at, meta.published_has_time) == (_JUNE_2, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 02 Jun 2025 08:15:00 UTC+05:30", (_JUNE_2 + timedelta(hours=2, minutes=45), True)),
        ("Mon, 02 Jun 2025 08:15:00 GMT+2", (_JUNE_2 + timedelta(hours=6, minutes=15), True)),
        ("Mon, 02 Jun 2025 08:15:00 UTC-3", (_JUNE_2 + timedelta(hours=11, minutes=15), True)),
        ("Mon, 02 Jun 2025 08:15:00 IST", (None, False)),
        ("Mon, 02 Jun 2025 08:15:00 XYZ", (None, False)),
        ("Mon, 02 Jun 2025 08:15:00 -0000", (_JUNE_2 + timedelta(hours=8, minutes=15), True)),
        ("Mon Jun 02 08:15:00 CEST 2025", (_JUNE_2 + timedelta(hours=6, minutes=15), True)),
        ("Mon Jun 02 08:15:00 IST 2025", (None, False)),
    ],
)
def test_an_rfc_822_page_date_is_read_in_the_zone_it_names_or_is_none(
    value: str, expected: tuple[datetime | None, bool]
) -> None:
    """An RFC 822 date whose zone is an offset from UTC or GMT (`UTC+05:30`, `GMT+2`) is that
    time at that offset; one whose zone's name no table here reads (`IST` names zones hours
    apart, all ahead of UTC) is no date, as it is in an ISO 8601 form, instead of that time
    in UTC (in India, five and a half hours ahead); `-0000` (a zone unknown to the writer) is
    UTC as before."""
    assert choose_published([value]) == expected


_AUG_11 = datetime(2025, 8, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11.08.2025, 12:30 Uhr", (_AUG_11 + timedelta(hours=12, minutes=30), True)),
        ("11.08.2025 um 12:30 Uhr MESZ", (_AUG_11 + timedelta(hours=10, minutes=30), True)),
        ("11.08.2025, 12 Uhr", (_AUG_11 + timedelta(hours=12), True)),
        ("11.08.2025", (_AUG_11, False)),
        ("25/08/2025 14:30", (_AUG_11 + timedelta(days=14, hours=14, minutes=30), True)),
        ("2025-08-11 14:00:00 +0200 (CEST)", (_AUG_11 + timedelta(hours=12), True)),
        ("2025-08-11T14:00:00+02:00[Europe/Berlin]", (_AUG_11 + timedelta(hours=12), True)),
        ("2025-08-11 14:00:00 GMT+02:00", (_AUG_11 + timedelta(hours=12), True)),
        ("2025-08-11T14:00:00 UTC+2", (_AUG_11 + timedelta(hours=12), True)),
        ("2025-08-11 14:00:00 Europe/Berlin", (_AUG_11 + timedelta(hours=12), True)),
        ("2025-01-11 14:00:00 Europe/Berlin", (datetime(2025, 1, 11, 13, tzinfo=UTC), True)),
        ("2025-08-11 12.30", (_AUG_11 + timedelta(hours=12, minutes=30), True)),
        ("2025-08-11T12.30+02:00", (_AUG_11 + timedelta(hours=10, minutes=30), True)),
        ("1754915400", (_AUG_11 + timedelta(hours=12, minutes=30), True)),
        ("1754915400000", (_AUG_11 + timedelta(hours=12, minutes=30), True)),
        ("2025/08/11 14:00", (_AUG_11 + timedelta(hours=14), True)),
        ("2025/8/11 2:00 PM +0900", (_AUG_11 + timedelta(hours=5), True)),
        ("2025年8月11日 14:00", (_AUG_11 + timedelta(hours=14), True)),
        ("11/08/2025", (None, False)),
        ("11.08.2025, 12:30 Uhr IST", (None, False)),
        ("2025-08-11 14:00:00 Europe/Nowhere", (None, False)),
        ("2025/13/11 14:00", (None, False)),
        ("2025/5/2 13:00 PM", (None, False)),
    ],
)
def test_a_page_date_in_a_form_feeds_read_is_read_as_a_feed_s(
    value: str, expected: tuple[datetime | None, bool]
) -> None:
    """A page's date written as feeds and sitemaps are read (German's `Uhr`, an offset then
    its zone's name, `GMT+02:00` or a tz database zone after an ISO 8601 time, a time with
    dots, its year last or first, a Unix time) is the time a feed and a sitemap read in it,
    with its time of day, by the one rule (`normalize.written_date`); an ambiguous day
    (`11/08/2025`), a day that does not exist and a zone none reads are none. It was no date
    from the page (`2025-08-11 12.30` was 12:00:00.3): htmldate's guess, else the feed's."""
    assert choose_published([value]) == expected
    published = (
        parse_feed(
            f"<rss><channel><item><guid>g</guid><pubDate>{value}</pubDate></item></channel></rss>".encode(),
            URL,
        )
        .entries[0]
        .published_at
    )
    assert published == parse_w3c_datetime(value) == expected[0]


@pytest.mark.parametrize(
    "head",
    [
        '<meta property="article:published_time" content="11.08.2025, 12:30 Uhr">',
        '<meta name="date" content="2025-08-11T12:30:00+00:00[UTC]">',
        '<meta itemprop="datePublished" content="1754915400">',
        _ld({"@type": "NewsArticle", "headline": "H", "datePublished": "2025-08-11 12.30"}),
    ],
)
def test_a_page_s_meta_tag_or_json_ld_date_in_a_form_feeds_read_is_its_publication(
    head: str,
) -> None:
    """`article:published_time`, a `date` meta, `itemprop="datePublished"` or JSON-LD
    `datePublished` written so: that time, with its time of day, instead of no date."""
    meta = _meta(head)
    assert (meta.published_at, meta.published_has_time) == (
        _AUG_11 + timedelta(hours=12, minutes=30),
        True,
    )


def test_a_zone_less_page_time_in_a_form_feeds_read_takes_the_page_s_offset() -> None:
    """A zone-less time so written (`11.08.2025, 12:30 Uhr`) is read in the offset the page
    gives its modification time, as a zone-less ISO 8601 one is."""
    head = (
        '<meta property="article:published_time" content="11.08.2025, 12:30 Uhr">'
        '<meta property="article:modified_time" content="2025-08-11T14:00:00+02:00">'
    )
    assert _meta(head).published_at == _AUG_11 + timedelta(hours=10, minutes=30)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param('xmlns="http://www.w3.org/1999/xhtml" xml:lang="de"', "de", id="xml-lang"),
        pytest.param('xml:lang="de" lang="de-CH"', "de-CH", id="lang-and-xml-lang"),
        pytest.param('lang="fr"', "fr", id="lang"),
    ],
)
def test_an_xhtml_page_s_language_is_its_xml_lang(attributes: str, expected: str) -> None:
    """An XHTML page (XHTML 1.1, served as `application/xhtml+xml`) names its language in
    `xml:lang` alone: it is the page's language, the hint a text too short to detect its
    language is stored with, as `lang` is."""
    page = f"<html {attributes}><head><title>Kurz</title></head><body><p>Rat.</p></body></html>"
    tree = html.document_fromstring(page)
    assert structured_metadata(tree, {}, URL).language == expected
