"""ingest.extract.extract_page: the seed WordPress page against the seed article text, metadata
precedence (JSON-LD > OpenGraph/article:* meta > trafilatura), empty pages, and encodings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingest.errors import ExtractError
from ingest.extract import extract_page, visible_text
from ingest.extract.metadata import choose_published
from ingest.neardup import fingerprint
from ingest.normalize import content_hash, paragraphs
from ingest.types import Extracted
from tests.support.paths import ROOT

SEEDS = ROOT / "seeds"
SEED_URL = (
    "https://www.theyeshivaworld.com/news/israel-news/2410001/"
    "netanyahu-ministers-split-over-all-or-nothing-hostage-strategy.html"
)
# As written in the seed page's JSON-LD and meta tags.
SEED_AUTHOR = "YWN Editorial Staff"
SEED_PUBLISHED = datetime(2025, 8, 11, 9, 14, 27, tzinfo=timezone(timedelta(hours=-4)))


def _seed_blocks() -> list[str]:
    text = next(SEEDS.glob("000_*.txt")).read_text(encoding="utf-8")
    return [b.strip() for b in text.split("\n\n") if b.strip()]


def _seed_body() -> list[str]:
    """Body paragraphs: after the title and the image caption, before "Leave a Reply"."""
    blocks = _seed_blocks()
    return blocks[2 : blocks.index("Leave a Reply")]


@pytest.fixture(scope="module")
def seed_page() -> Extracted:
    return extract_page((SEEDS / "wordpress-article.html").read_bytes(), SEED_URL)


# --- the seed page ---------------------------------------------------------------------------


def test_seed_body_paragraphs_all_present(seed_page: Extracted) -> None:
    """Every body paragraph of the seed text is a paragraph of the extracted text, in order."""
    body = _seed_body()
    assert body, "the seed file must have body paragraphs"
    extracted = paragraphs(seed_page.text)
    positions = [extracted.index(p) for p in body]
    assert positions == sorted(positions)


def test_seed_caption_and_furniture_absent(seed_page: Extracted) -> None:
    """The image caption, the comment form and the sidebar are not part of the text."""
    caption = _seed_blocks()[1]
    assert caption not in seed_page.text
    for furniture in ("Leave a Reply", "Popular Posts", "Share on Facebook", "Post Comment"):
        assert furniture not in seed_page.text


def test_the_worker_hashes_and_fingerprints_the_text_it_extracted(seed_page: Extracted) -> None:
    """What the article row carries of its text is computed beside the extraction, of that
    very text (the main process only reads it)."""
    assert seed_page.content_hash == content_hash(seed_page.text)
    assert seed_page.fingerprint == fingerprint(seed_page.text)


def test_seed_text_is_clean(seed_page: Extracted) -> None:
    """Paragraphs are separated by exactly one blank line, without stray whitespace."""
    assert "\n\n\n" not in seed_page.text
    for p in seed_page.text.split("\n\n"):
        assert p == p.strip()
        assert "\n" not in p
        assert "  " not in p


def test_seed_metadata(seed_page: Extracted) -> None:
    """Author from JSON-LD, publication time with its time of day in UTC, rel=canonical URL and
    the language of the text."""
    meta = seed_page.metadata
    assert meta.author == SEED_AUTHOR
    assert meta.published_at == SEED_PUBLISHED
    assert meta.published_at.utcoffset() == timedelta(0)
    assert (meta.published_at.hour, meta.published_at.minute, meta.published_at.second) == (
        13,
        14,
        27,
    )
    assert meta.published_has_time
    assert meta.canonical_url == SEED_URL
    assert meta.language == "en"
    assert meta.title == _seed_blocks()[0]


# --- metadata precedence ---------------------------------------------------------------------

BODY = "".join(
    f"<p>Paragraph {n} of the story explains what the city council decided on Monday and why "
    "the decision matters to the people who live and work in the city.</p>"
    for n in ("one", "two", "three", "four")
)


def _html(head: str, *, lang: str = "en", charset: str = "utf-8") -> str:
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="{charset}">'
        f"<title>Site title</title>{head}</head><body><article><h1>Body headline</h1>{BODY}"
        "</article></body></html>"
    )


JSON_LD = """<script type="application/ld+json">
{"@context": "https://schema.org", "@graph": [
  {"@type": "WebPage", "name": "Not the article"},
  {"@type": ["NewsArticle"], "headline": "LD headline",
   "author": [{"@type": "Person", "name": "Ada Writer"}, {"@type": "Person", "name": "Bo Eriksen"}],
   "datePublished": "2024-03-04T10:00:00Z", "dateModified": "2024-03-04T11:30:00+01:00",
   "image": {"@type": "ImageObject", "url": "https://example.com/ld.jpg"}}
]}</script>"""
META = """
<meta property="og:title" content="OG title">
<meta name="author" content="Meta Author">
<meta property="article:published_time" content="2024-03-05T08:30:00+02:00">
<meta property="article:modified_time" content="2024-03-06T08:30:00+02:00">
<meta property="og:image" content="https://example.com/og.jpg">
<meta property="og:description" content="OG description">
"""


def test_json_ld_wins_over_meta_tags() -> None:
    """When JSON-LD and OpenGraph/article:* tags disagree, JSON-LD wins field by field."""
    meta = extract_page(_html(META + JSON_LD).encode(), "https://example.com/a").metadata
    assert meta.title == "LD headline"
    assert meta.author == "Ada Writer, Bo Eriksen"
    assert meta.published_at == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    assert meta.updated_at == datetime(2024, 3, 4, 10, 30, tzinfo=UTC)
    assert meta.image_url == "https://example.com/ld.jpg"
    # JSON-LD has no description: the meta tag fills the gap.
    assert meta.description == "OG description"


def test_meta_tags_win_over_trafilatura_guesses() -> None:
    """Without JSON-LD, OpenGraph/meta tags give title, author, dates and image."""
    meta = extract_page(_html(META).encode(), "https://example.com/a").metadata
    assert meta.title == "OG title"
    assert meta.author == "Meta Author"
    assert meta.published_at == datetime(2024, 3, 5, 6, 30, tzinfo=UTC)
    assert meta.updated_at == datetime(2024, 3, 6, 6, 30, tzinfo=UTC)
    assert meta.image_url == "https://example.com/og.jpg"


def test_only_article_published_time() -> None:
    """A page whose only date is article:published_time gets that time of day, in UTC."""
    head = '<meta property="article:published_time" content="2024-03-05T23:45:10-05:00">'
    meta = extract_page(_html(head).encode(), "https://example.com/a").metadata
    assert meta.published_at == datetime(2024, 3, 6, 4, 45, 10, tzinfo=UTC)
    assert meta.published_at.utcoffset() == timedelta(0)
    assert meta.published_has_time


def test_date_only_json_ld_has_no_time_of_day() -> None:
    """A JSON-LD date without a time is flagged as having no time of day."""
    head = (
        '<script type="application/ld+json">'
        '{"@type": "Article", "datePublished": "2024-03-04"}</script>'
    )
    meta = extract_page(_html(head).encode(), "https://example.com/a").metadata
    assert meta.published_at is not None
    assert meta.published_at.date() == datetime(2024, 3, 4).date()
    assert not meta.published_has_time


@pytest.mark.parametrize(
    "script",
    [
        pytest.param('<script type="application/ld+json">{not json</script>', id="broken-json"),
        pytest.param(
            '<script type="application/ld+json">{"@type": "Recipe", "headline": "Cake"}</script>',
            id="not-an-article",
        ),
    ],
)
def test_unusable_json_ld_falls_back_to_meta(script: str) -> None:
    """Broken JSON-LD, or JSON-LD about something else, is ignored in favour of the meta tags."""
    meta = extract_page(_html(script + META).encode(), "https://example.com/a").metadata
    assert meta.title == "OG title"
    assert meta.author == "Meta Author"


# --- no text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"  \n\t \r\n ", id="whitespace"),
        pytest.param(b"<html><head><title>x</title></head><body> </body></html>", id="no-body"),
    ],
)
def test_page_without_text_raises(body: bytes) -> None:
    """A page with nothing to extract is an ExtractError naming the URL."""
    url = "https://example.com/empty"
    with pytest.raises(ExtractError) as info:
        extract_page(body, url)
    assert info.value.url == url


# --- encodings -------------------------------------------------------------------------------

FRENCH = [
    "Le conseil municipal a adopté mardi un budget très attendu, déjà critiqué par "
    "l'opposition à l'hôtel de ville.",
    "Les négociations reprendront à l'été, a précisé la maire, qui espère un accord avant "
    "l'hiver. « Ça coûtera cher », a-t-elle reconnu.",
    "Selon les économistes, la réforme permettra d'économiser plusieurs millions d'euros d'ici "
    "à la fin de la décennie, grâce à des dépenses mieux ciblées.",
]


def _french_page(head: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in FRENCH)
    return (
        f'<!DOCTYPE html><html lang="fr"><head>{head}<title>Budget adopté</title></head>'
        f"<body><article><h1>Un budget adopté</h1>{body}</article></body></html>"
    )


@pytest.mark.parametrize(
    "head",
    [
        pytest.param('<meta charset="iso-8859-1">', id="meta-charset"),
        pytest.param(
            '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">',
            id="http-equiv",
        ),
    ],
)
def test_latin1_page_declared_in_meta_decodes(head: str) -> None:
    """A page encoded in ISO-8859-1 and declaring it in a meta tag decodes correctly."""
    result = extract_page(_french_page(head).encode("iso-8859-1"), "https://example.fr/a")
    for paragraph in FRENCH:
        assert paragraph in paragraphs(result.text)
    assert result.metadata.language == "fr"


def test_utf8_page_without_meta_charset_decodes() -> None:
    """A UTF-8 page without any charset declaration (servers often give it only in the HTTP
    header, which extract_page never sees) still decodes as UTF-8, not Latin-1 mojibake."""
    result = extract_page(_french_page("").encode("utf-8"), "https://example.fr/a")
    for paragraph in FRENCH:
        assert paragraph in paragraphs(result.text)


def test_trafilatura_guesses_fill_missing_metadata() -> None:
    """With no JSON-LD nor meta tags, the title comes from trafilatura's guess (the page's
    <title> or headline) rather than staying empty."""
    meta = extract_page(_html("").encode(), "https://example.com/a").metadata
    assert meta.title in {"Site title", "Body headline"}
    assert meta.author is None


def test_date_only_json_ld_does_not_hide_meta_time_of_day() -> None:
    """When JSON-LD has only the date and article:published_time has the same date with a time,
    the time of day is kept."""
    head = (
        '<meta property="article:published_time" content="2024-03-04T10:15:00Z">'
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H", '
        '"author": "A", "datePublished": "2024-03-04"}</script>'
    )
    meta = extract_page(_html(head).encode(), "https://example.com/a").metadata
    assert meta.published_at == datetime(2024, 3, 4, 10, 15, tzinfo=UTC)
    assert meta.published_has_time


def test_page_elements_are_plain_html_elements() -> None:
    """The page parser's element classes come from a lookup done in C (see ingest.extract):
    form controls are plain HtmlElements, with lxml.html's methods that trafilatura calls, and
    a page whose body sits inside a <form> (old ASP.NET templates) still yields its text."""
    from lxml import html
    from trafilatura.utils import load_html

    tree = load_html(b"<html><body><form><p>Kept</p><input name=q><select></select></form>")
    assert tree is not None
    for el in tree.iter("form", "input", "select", "p"):
        assert type(el) is html.HtmlElement
    assert tree.text_content() == "Kept"
    paragraph = "The council met on Tuesday and agreed the plan for the river bank. " * 8
    page = f"<html><body><form id='aspnetForm'><h1>Plan agreed</h1><p>{paragraph}</p></form>"
    result = extract_page(page.encode(), "https://example.com/plan")
    assert paragraph.strip() in result.text


# --- the guard against losing the article ------------------------------------------------------

STORY = [
    f"Paragraph {n} of the story: the harbour authority voted on Monday to extend the pier by "
    f"forty metres, after a consultation that drew more than {n * 100} replies from residents."
    for n in range(1, 7)
]


def _page_in_furniture_wrappers() -> bytes:
    """A page whose template puts each paragraph of the story in its own block named with the
    furniture vocabulary, each a name of its own (blocks of one name that together hold the
    article are kept by the cleaning itself): cleaning alone would remove every one of them."""
    blocks = "".join(f'<div class="widget-{n}"><p>{p}</p></div>' for n, p in enumerate(STORY))
    return (
        "<!DOCTYPE html><html><head><title>Pier</title></head><body>"
        '<nav><a href="/">Home</a> <a href="/news">News</a></nav>'
        f"<main><h1>Pier to be extended</h1>{blocks}</main>"
        "<footer>© Harbour Times</footer></body></html>"
    ).encode()


def test_cleaning_that_removes_the_article_is_overruled() -> None:
    """When the cleaned text holds little of what the second opinion sees as the article, the
    page is extracted again without cleaning, and the story is kept."""
    from lxml import html

    from ingest.extract.clean import preclean

    body = _page_in_furniture_wrappers()
    cleaned = html.fromstring(body)
    preclean(cleaned)
    assert STORY[0] not in cleaned.text_content()  # the trap is real
    text = extract_page(body, "https://example.com/pier").text
    for paragraph in STORY:
        assert paragraph in text


def test_json_ld_article_body_when_the_page_shows_nothing() -> None:
    """A page whose text is rendered by script but whose JSON-LD carries the article body
    gets the publisher's own text rather than an error."""
    article = " ".join(STORY)
    ld = json.dumps({"@type": "NewsArticle", "headline": "Pier", "articleBody": article})
    body = (
        "<!DOCTYPE html><html><head><title>Pier</title>"
        f'<script type="application/ld+json">{ld}</script></head>'
        '<body><div id="root"></div><script>render()</script></body></html>'
    ).encode()
    text = extract_page(body, "https://example.com/pier").text
    assert STORY[0] in text
    assert STORY[-1] in text


# --- publication time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidates", "others", "expected", "has_time"),
    [
        pytest.param(
            ["2024-03-06T14:05:00"],
            ["2024-03-06T15:00:00+02:00"],
            datetime(2024, 3, 6, 12, 5, tzinfo=UTC),
            True,
            id="naive-time-in-the-offset-the-page-states",
        ),
        pytest.param(
            ["2024-03-06T14:05:00", "2024-03-06T14:05:00+01:00"],
            [],
            datetime(2024, 3, 6, 13, 5, tzinfo=UTC),
            True,
            id="offset-of-another-candidate",
        ),
        pytest.param(
            ["2024-03-06", None, "2024-03-06T09:30:00+01:00"],
            [],
            datetime(2024, 3, 6, 8, 30, tzinfo=UTC),
            True,
            id="day-then-time-from-a-later-source",
        ),
        pytest.param(
            ["2024-03-06", "2024-04-01T09:30:00+01:00"],
            [],
            datetime(2024, 3, 6, tzinfo=UTC),
            False,
            id="time-of-another-day-ignored",
        ),
        pytest.param(
            ["2024-03-06T14:05:00"], [], datetime(2024, 3, 6, 14, 5, tzinfo=UTC), True, id="utc"
        ),
        pytest.param(
            ["Wed, 06 Mar 2024 14:05:00 +0100"],
            [],
            datetime(2024, 3, 6, 13, 5, tzinfo=UTC),
            True,
            id="rfc-822",
        ),
        pytest.param(
            ["2024-03-06", "Wed, 06 Mar 2024 09:30:00 GMT"],
            [],
            datetime(2024, 3, 6, 9, 30, tzinfo=UTC),
            True,
            id="rfc-822-time-of-day-for-an-iso-day",
        ),
        pytest.param(
            ["Wed, 06 Mar 2024 14:05:00"],
            ["2024-03-06T15:00:00+02:00"],
            datetime(2024, 3, 6, 12, 5, tzinfo=UTC),
            True,
            id="rfc-822-without-zone-in-the-page-offset",
        ),
        pytest.param(
            ["20261205T101500Z", "2026-12-05T18:30:00+00:00"],
            [],
            datetime(2026, 12, 5, 10, 15, tzinfo=UTC),
            True,
            id="iso-basic-keeps-its-time",
        ),
        pytest.param(
            ["2026-12-05T1015+0100", "2026-12-05T18:30"],
            [],
            datetime(2026, 12, 5, 9, 15, tzinfo=UTC),
            True,
            id="iso-basic-time-with-an-extended-date",
        ),
        pytest.param(
            ["20261205T1015"],
            ["20261205T120000+0100"],
            datetime(2026, 12, 5, 9, 15, tzinfo=UTC),
            True,
            id="iso-basic-naive-time-in-the-offset-the-page-states",
        ),
        pytest.param(
            ["2026-12-05", "20261205T0930-0500"],
            [],
            datetime(2026, 12, 5, 14, 30, tzinfo=UTC),
            True,
            id="iso-basic-time-of-day-for-an-iso-day",
        ),
        pytest.param(
            ["2025-06-02", "2025-06-01T23:30:00Z"],
            [],
            datetime(2025, 6, 1, 23, 30, tzinfo=UTC),
            True,
            id="utc-time-of-the-day-before-for-a-day-east-of-greenwich",
        ),
        pytest.param(
            ["2 June 2025", "2025-06-01T23:30:00Z"],
            [],
            datetime(2025, 6, 1, 23, 30, tzinfo=UTC),
            True,
            id="utc-time-of-the-day-before-for-a-written-day",
        ),
        pytest.param(
            ["2025-06-02", "2025-05-31T23:30:00Z"],
            [],
            datetime(2025, 6, 2, tzinfo=UTC),
            False,
            id="time-two-days-before-ignored",
        ),
        pytest.param(["yesterday", None], [], None, False, id="nothing-parseable"),
    ],
)
def test_choose_published(
    candidates: list[str | None],
    others: list[str | None],
    expected: datetime | None,
    has_time: bool,
) -> None:
    """The first source gives the day, any source the time of day, any time its offset."""
    assert choose_published(candidates, others) == (expected, has_time)


def test_naive_page_time_read_in_the_pages_offset() -> None:
    """JSON-LD without an offset beside `article:modified_time` with one: the publication time
    is read in the page's offset, not as UTC."""
    ld = json.dumps(
        {"@type": "NewsArticle", "headline": "H", "datePublished": "2025-06-02T08:15:00"}
    )
    body = (
        "<html><head>"
        '<meta property="article:modified_time" content="2025-06-02T09:00:00+02:00">'
        f'<script type="application/ld+json">{ld}</script></head><body><article><h1>H</h1>'
        f"<p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    meta = extract_page(body, "https://example.de/a").metadata
    assert meta.published_at == datetime(2025, 6, 2, 6, 15, tzinfo=UTC)
    assert meta.published_has_time


def test_rfc_822_json_ld_date_keeps_its_time_and_offset() -> None:
    """JSON-LD whose datePublished is written as RFC 822 (as some CMSs copy their feed's
    pubDate): the publication time is that instant in UTC, with its time of day."""
    ld = json.dumps(
        {
            "@type": "NewsArticle",
            "headline": "H",
            "datePublished": "Mon, 02 Jun 2025 08:15:00 +0200",
        }
    )
    body = (
        f'<html><head><script type="application/ld+json">{ld}</script></head><body><article>'
        f"<h1>H</h1><p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    meta = extract_page(body, "https://example.de/a").metadata
    assert meta.published_at == datetime(2025, 6, 2, 6, 15, tzinfo=UTC)
    assert meta.published_has_time


@pytest.mark.parametrize(
    ("written", "expected", "has_time"),
    [
        ("June 2, 2025", datetime(2025, 6, 2, tzinfo=UTC), False),
        ("June 2, 2025 at 11:30 PM PDT", datetime(2025, 6, 3, 6, 30, tzinfo=UTC), True),
    ],
)
def test_a_json_ld_date_written_with_its_month_s_name_is_the_article_s(
    written: str, expected: datetime, has_time: bool
) -> None:
    """JSON-LD `datePublished` written for readers (`June 2, 2025`, `June 2, 2025 at 11:30 PM
    PDT`) on a page that shows an update line of another day under an address dated a third:
    the JSON-LD's day (and time), not a guess from the page's text or address."""
    ld = json.dumps({"@type": "NewsArticle", "headline": "H", "datePublished": written})
    body = (
        f'<html><head><script type="application/ld+json">{ld}</script></head><body><article>'
        f'<h1>H</h1><p class="updated">Updated May 30, 2025</p><p>{STORY[0]} {STORY[1]}</p>'
        "</article></body></html>"
    ).encode()
    meta = extract_page(body, "https://example.com/2025/05/28/river-path").metadata
    assert (meta.published_at, meta.published_has_time) == (expected, has_time)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 05 Dec 24 10:00:00 +0100", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("Mon, 05 Dec 94 10:00:00 GMT", datetime(1994, 12, 5, 10, tzinfo=UTC)),
        ("Thu, 05 Dec 124 10:00:00 GMT", datetime(2024, 12, 5, 10, tzinfo=UTC)),
    ],
)
def test_rfc_2822_page_date_with_a_short_year_is_read(value: str, expected: datetime) -> None:
    """A page's RFC 2822 date with a year of two digits (or three: C's tm_year) is read as RFC
    2822 section 4.3 says, as in feeds and sitemaps, not dropped (the page then dated nowhere,
    and a backfilled sitemap URL skipped as no article)."""
    body = (
        f'<html><head><meta property="article:published_time" content="{value}"></head>'
        f"<body><article><h1>H</h1><p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    meta = extract_page(body, "https://example.de/a").metadata
    assert meta.published_at == expected


def test_iso_basic_format_page_date_keeps_its_time_and_offset() -> None:
    """`article:published_time` in ISO 8601's basic format (`2026-12-05T1015+0100`, no colons)
    beside a later `<time>` of the page (an update): the publication time is that instant, with
    its time of day, not the other time of the day."""
    body = (
        '<html><head><meta property="article:published_time" content="2026-12-05T1015+0100">'
        "</head><body><article><h1>H</h1><time datetime='2026-12-05T18:30+01:00'>Updated</time>"
        f"<p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    meta = extract_page(body, "https://example.de/a").metadata
    assert meta.published_at == datetime(2026, 12, 5, 9, 15, tzinfo=UTC)
    assert meta.published_has_time


def test_section_label_h1_is_not_the_headline() -> None:
    """A one-word <h1> (a section) is not the headline of a longer title that starts with it."""
    body = (
        "<html><head><meta property='og:title' content='Politik: Merkel tritt zurück | "
        "tagesschau.de'></head><body><h1>Politik</h1>"
        f"<article><p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    meta = extract_page(body, "https://www.tagesschau.de/a").metadata
    assert meta.title == "Politik: Merkel tritt zurück"


def test_year_9999_dates_do_not_break_extraction() -> None:
    """A date at the end of the calendar breaks nothing: the article is extracted (that such a
    date is no publication time is build_article's call, see test_article.py)."""
    body = (
        "<html><head><meta property='article:published_time' content='9999-12-31'></head>"
        "<body><article><h1>H</h1><time datetime='9999-12-31T10:00'>x</time>"
        f"<p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    extracted = extract_page(body, "https://example.com/a")
    assert STORY[0] in extracted.text
    assert STORY[1] in extracted.text


def test_headline_with_inline_markup_and_a_line_break() -> None:
    """Inline markup adds no space before punctuation; a line break separates words."""
    body = (
        "<html><head><meta property='og:title' content='The Story Of Metroid, One Of Its "
        "Universes - Site'></head><body><h1>The Story Of <em>Metroid</em>, One Of<br>Its "
        f"Universes</h1><article><p>{STORY[0]} {STORY[1]}</p></article></body></html>"
    ).encode()
    meta = extract_page(body, "https://example.com/a").metadata
    assert meta.title == "The Story Of Metroid, One Of Its Universes"


LEAD = "After heavy downpours on Monday, Tuesday morning met strong cold winds across the north."
REPORT = [
    "People out on the streets were seen wearing layers throughout the day on Tuesday.",
    "The first cold wave alert of the season was in effect with cold air from the northwest.",
    "Cheorwon claimed the coldest temperature in the country at minus six degrees at dawn.",
    "Wednesday is forecast to be colder, with morning lows two to five degrees below today.",
    "Daytime temperatures in the capital reached ten degrees, and fourteen in the south-west.",
    "The elderly are advised to stay indoors as much as possible until the weekend is over.",
    "Drivers are warned of black ice where the rain of the last two days has frozen overnight.",
    "The cold snap should peak on Wednesday before temperatures climb back up on Thursday.",
    "The weather agency expects the winter-like weather to return over the coming weekend.",
]


COOKIES = (
    "This website uses cookies and other technology to enhance quality of service. Continuous"
    " usage of the website will be considered as giving consent to the application of such"
    " technology and the policy of the broadcaster."
)


def test_lead_after_an_emptied_image_box_is_kept() -> None:
    """A template that writes its story as loose text between <br>s, after an image box whose
    photo and caption are furniture, with a cookie notice as the page's only <p> (KBS World's):
    the box, emptied by the cleaning, goes, and the lead that follows it stays (trafilatura
    drops an empty block together with the text after it)."""
    report = "<br>\n<br>\n".join(REPORT)
    body = f"""<!DOCTYPE html><html><head><title>Cold wave</title></head><body>
<div id="wrap"><div id="container"><div class="contents">
  <section class="view" id="ele1">
    <div class="body_txt">
      <div class="img_box top">
        <div class="photo no-print"><img src="/p.jpg" alt="Cold"></div>
        <p class="cap no-print">Photo : Agency</p>
      </div>
      Anchor: {LEAD}<br>
Our reporter has more.<br>
<br>
Report: {report}
    </div>
  </section>
</div></div>
<div class="chrome_pick"><div class="chrome_pick_box"><p>{COOKIES}</p></div></div>
</div></body></html>""".encode()
    text = extract_page(body, "https://example.com/news/cold").text
    assert LEAD in text
    assert all(sentence in text for sentence in REPORT)
    assert "Photo : Agency" not in text


SECTIONS = [
    ("Risk analysis", "The reproduction number fell below one before the shutdown began."),
    ("Polls and forecasts", "Weeks before an election the polls are published and argued over."),
    ("A study from Israel", "Researchers compared the curves of several countries in spring."),
]


def test_article_named_in_another_language_keeps_its_headings_and_lists() -> None:
    """An article block that names itself the content in words trafilatura does not know
    (`id="article_content"`, classed "teaser_..." by a German template), beside a column of
    real teasers: its subheadings and list items stay, and the teasers stay out."""
    sections = "".join(
        f"<h3>{heading}</h3><p>{paragraph} {SENTENCE_FILL}</p>" for heading, paragraph in SECTIONS
    )
    questions = "<ol><li>How severe is the disease, who gets it?</li><li>How is it caught?</li>"
    questions += "</ol>"
    teasers = "".join(
        f'<div class="teaser_blog"><div class="teaser_blog_text"><p>Teaser {n}: another writer on'
        f' another subject, with a link to <a href="/a{n}">the piece</a>.</p></div></div>'
        for n in range(8)
    )
    body = (
        "<!DOCTYPE html><html><head><title>Report</title></head><body>"
        '<div class="wrapper_page"><div class="section_beitrag"><div class="beitrag">'
        '<div class="teaser_blog_text" id="article_content"><div id="article_maincontent">'
        f"<h2>Report on the situation</h2>{sections}{questions}</div></div></div></div>"
        f'<div class="column">{teasers}</div></div></body></html>'
    ).encode()
    text = extract_page(body, "https://example.de/artikel/bericht").text
    for heading, paragraph in SECTIONS:
        assert heading in text
        assert paragraph in text
    assert "How severe is the disease" in text
    assert "Teaser 3" not in text


SENTENCE_FILL = (
    "The figures were published by the institute on Wednesday and discussed at length by the"
    " committee, which asked for more data from the regions before its next meeting."
)


def test_a_page_measured_against_a_feed_text_says_which_text_it_measured() -> None:
    """The worker's task measures an entry's own text against the whole visible page (menus
    included) and names the text it measured, so that a page two feeds share is never taken
    as the measure of the other feed's text."""
    from ingest.extract.page import visible_text
    from ingest.fulltext import digest, measure
    from ingest.workers import tasks

    story = [
        f"Paragraph {n}: the harbour board voted on plan {n} after a long night of debate."
        for n in range(8)
    ]
    html = (
        "<html><head><title>Vote</title></head><body><nav>Home World Sport</nav><article>"
        + "".join(f"<p>{p}</p>" for p in story[:6])
        + "</article><aside class='related'>"
        + "".join(f"<p>{p}</p>" for p in story[6:])
        + "</aside></body></html>"
    ).encode()
    feed_text = "\n\n".join(story)
    measured = tasks.extract_page(html, "https://example.com/vote", feed_text)
    assert measured.comparison is not None
    assert measured.comparison == measure(feed_text, measured.text, visible_text(html))
    assert measured.comparison.clean == 1.0  # the aside's paragraphs are on the page
    assert measured.comparison.same
    assert measured.feed_text_digest == digest(feed_text)
    assert measured.feed_text_digest != digest(feed_text + " More.")
    plain = tasks.extract_page(html, "https://example.com/vote")
    assert plain.comparison is None
    assert plain.feed_text_digest is None
    assert plain.text == measured.text
    # An excerpt is compared with the extraction only, and takes no part where the page goes
    # on after it.
    excerpt = " ".join(story[:4]) + " Paragraph 4: the harbour board …"
    cut = tasks.extract_page(html, "https://example.com/vote", excerpt)
    assert cut.comparison is None
    assert cut.feed_text_digest == digest(excerpt)


def test_the_worker_measures_a_feed_text_against_the_page_s_main_content_too() -> None:
    """A story whose body is split across two containers by an advertising row: the
    extraction keeps the first, resiliparse's main content both, and the worker's comparison
    lets the feed's whole text stand for the article (`ingest.fulltext.dominates`)."""
    from ingest.extract.page import read_page, visible_text
    from ingest.fulltext import measure
    from ingest.workers import tasks

    story = [
        f"Paragraph {n}: the harbour board voted on plan {n} after a long night of debate in "
        f"the town hall, where {n + 40} residents had come to hear the result."
        for n in range(6)
    ]

    def block(paras: list[str]) -> str:
        return (
            "<div class='grid'><div class='body article__body'>"
            + "".join(f"<p>{p}</p>" for p in paras)
            + "</div><div class='aside'><div class='ad ad--rail'></div></div></div>"
        )

    html = (
        "<html><head><title>Vote</title></head><body><nav><a href='/'>Home</a></nav><main>"
        f"<article><h1>Vote</h1>{block(story[:2])}<div class='row full-bleed-ad'><div"
        f" class='ad'><span>Advertisement</span></div></div>{block(story[2:])}</article></main>"
        "</body></html>"
    ).encode()
    feed_text = "\n\n".join(story)
    measured = tasks.extract_page(html, "https://example.com/vote", feed_text)
    extracted, main = read_page(html, "https://example.com/vote")
    assert measured.text == extracted.text
    assert len(extracted.text) < len(feed_text) / 2
    assert measured.comparison == measure(feed_text, extracted.text, visible_text(html), main)
    assert measured.comparison is not None
    assert not measured.comparison.same
    assert measured.comparison.stands


@pytest.mark.parametrize(("depth", "deep"), [(150, False), (196, False), (197, True), (300, True)])
def test_only_a_deeply_nested_page_gives_the_second_opinion_lxmls_copy(
    depth: int, deep: bool
) -> None:
    """resiliparse reads the page as sent unless lxml finds an element 200 levels down (html,
    body and the innermost <p> count): then it reads lxml's serialization, whose nesting
    libxml2 caps."""
    from trafilatura.utils import load_html

    from ingest.extract.page import _DEEP

    page = "<html><body>" + "<div>" * depth + "<p>text</p>" + "</div>" * depth + "</body></html>"
    tree = load_html(page)
    assert tree is not None
    assert _DEEP(tree) is deep


# --- bylines the cleaning removes ----------------------------------------------------------------


def _page_with_byline(byline: str, comments: str = "") -> bytes:
    article = "".join(f"<p>{p}</p>" for p in STORY)
    return (
        "<!DOCTYPE html><html><head><title>Pier to be extended</title></head><body><main>"
        f"<article><h1>Pier to be extended</h1><aside>{byline}</aside>{article}</article>"
        f"{comments}</main></body></html>"
    ).encode()


@pytest.mark.parametrize(
    "byline",
    [
        '<a rel="author" href="/people/ada">Ada Lovelace</a> — 4 March 2024',
        '<span itemprop="author">Ada Lovelace</span>',
        '<a rel="author" href="/people/ada">View all posts by Ada Lovelace</a>',
    ],
)
def test_a_byline_marked_up_inside_furniture_is_read(byline: str) -> None:
    """A byline marked up as one (rel="author", itemprop="author") inside a block the cleaning
    removes (an aside, a share bar) is still the article's author, WordPress's "View all posts
    by" link text left out."""
    meta = extract_page(_page_with_byline(byline), "https://example.com/pier").metadata
    assert meta.author == "Ada Lovelace"


def test_a_commenter_marked_as_an_author_is_not_the_byline() -> None:
    """A comment thread's author links are readers', not the article's byline."""
    comments = (
        '<section id="comments"><ol class="commentlist"><li><cite>'
        '<a rel="author" href="/u/grace">Grace Hopper</a></cite><p>Great news.</p></li></ol>'
        "</section>"
    )
    meta = extract_page(_page_with_byline("", comments), "https://example.com/pier").metadata
    assert meta.author is None


STRAY_BYTES_PAGE = (
    "<html><head>{head}<title>Grüße aus Köln</title></head><body><article><h1>Grüße aus Köln</h1>"
    "<p>Die Bürgermeisterin begrüßte am Dienstag die Gäste im Rathaus. Über hundert Menschen "
    "kamen trotz des schlechten Wetters.</p><p>Später äußerte sich auch der Stadtrat zur Lage "
    "der Brücken über den Fluss. QUOTE</p></article></body></html>"
)


@pytest.mark.parametrize(
    ("head", "charset"),
    [
        pytest.param('<meta charset="utf-8">', None, id="meta-charset"),
        pytest.param("", "utf-8", id="header-charset"),
        pytest.param("", None, id="undeclared"),
    ],
)
def test_a_utf8_page_with_stray_windows_1252_bytes_keeps_its_utf8_text(
    head: str, charset: str | None
) -> None:
    """A UTF-8 page with a few Windows-1252 bytes pasted into it (quotes from a word
    processor) is read as UTF-8, those bytes as Windows-1252, as a feed is: not the whole page
    in the charset a detector guesses from the stray bytes (`GrĂĽĂźe aus KĂ¶ln`)."""
    body = STRAY_BYTES_PAGE.format(head=head).encode()
    body = body.replace(b"QUOTE", b"\x84Wir sind froh\x93, sagte er.")
    result = extract_page(body, "https://example.de/a", charset=charset)
    assert result.metadata.title == "Grüße aus Köln"
    assert "Die Bürgermeisterin begrüßte am Dienstag die Gäste im Rathaus." in result.text
    assert "„Wir sind froh“, sagte er." in result.text


COUNCIL_PAGE = (
    "<html><head>{head}<title>Council budget</title></head><body><article><h1>Council budget"
    "</h1><p>The council approved a budget of €4 million on Tuesday, said José Müller, who "
    "chairs the finance committee with Begoña Peña. “It’s a good day for the town,” he said."
    "</p><p>The money will pay for repairs to the bridge and the harbour café.</p>"
    "</article></body></html>"
)


@pytest.mark.parametrize(
    ("head", "charset"),
    [
        pytest.param("", "windows-1252", id="header-windows-1252"),
        pytest.param("", "ISO-8859-1", id="header-latin-1"),
        pytest.param('<meta charset="iso-8859-1">', None, id="meta-latin-1"),
        pytest.param(
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
            "utf-8",
            id="meta-over-a-server-s-utf-8-default",
        ),
    ],
)
def test_a_page_in_the_charset_it_declares_decodes_so(head: str, charset: str | None) -> None:
    """A page in Windows-1252 with little non-ASCII text, its charset declared in the HTTP
    header or a meta tag, is read in that charset (ISO-8859-1 read as Windows-1252, as
    browsers read it: its curly quotes and euro sign are Windows-1252's), not in the charset a
    detector guesses from a few bytes (`Josķ M³ller`), nor with its quotes dropped as the
    control characters ISO-8859-1 has at those bytes (`Its a good day`)."""
    body = COUNCIL_PAGE.format(head=head).encode("cp1252")
    result = extract_page(body, "https://example.com/a", charset=charset)
    assert "said José Müller, who chairs the finance committee with Begoña Peña." in result.text
    assert "“It’s a good day for the town,” he said." in result.text
    assert "the harbour café." in result.text


XHTML_PAGE = (
    "{declaration}\n"
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">'
    + COUNCIL_PAGE.format(head="").removeprefix("<html>")
)


@pytest.mark.parametrize(
    ("declaration", "charset"),
    [
        pytest.param('<?xml version="1.0" encoding="ISO-8859-1"?>', None, id="latin-1"),
        pytest.param("<?xml version='1.0' encoding='iso-8859-1' ?>", None, id="single-quotes"),
        pytest.param(
            '<?xml version="1.0" encoding="ISO-8859-1"?>', "utf-8", id="over-a-server-s-utf-8"
        ),
    ],
)
def test_an_xhtml_page_is_read_in_the_encoding_its_xml_declaration_names(
    declaration: str, charset: str | None
) -> None:
    """An XHTML page (served as `application/xhtml+xml`, or as HTML) whose only label is the
    encoding of its XML declaration is read in it as a meta tag's is, ISO-8859-1 as
    Windows-1252: not as a detector's ISO-8859-1, which drops its curly quotes and euro sign
    (`Its a good day`, `a budget of 4 million`)."""
    body = XHTML_PAGE.format(declaration=declaration).encode("cp1252")
    result = extract_page(body, "https://example.com/a", charset=charset)
    assert "a budget of €4 million on Tuesday, said José Müller, who" in result.text
    assert "“It’s a good day for the town,” he said." in result.text
    assert "€4 million" in visible_text(body, charset)


RUSSIAN_PAGE = (
    "<html lang='ru'><head><title>Бюджет города</title></head><body><article><h1>Бюджет города"
    "</h1><p>Городской совет утвердил бюджет на следующий год после долгих обсуждений, "
    "“сказала” председатель финансовой комиссии. Деньги пойдут на ремонт моста и набережной."
    "</p></article></body></html>"
)


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        pytest.param(b"\xff\xfe", "utf-16-le", id="utf-16-le"),
        pytest.param(b"\xfe\xff", "utf-16-be", id="utf-16-be"),
        pytest.param(b"\xef\xbb\xbf", "utf-8", id="utf-8-with-stray-windows-1252-quotes"),
    ],
)
def test_a_page_s_byte_order_mark_wins_over_the_charset_it_is_served_with(
    bom: bytes, encoding: str
) -> None:
    """A page that begins with a byte order mark is in the encoding the mark names, whatever
    its Content-Type header says (WHATWG Encoding's BOM sniffing, as browsers do): its text,
    its title and the whole visible text its feed's text is compared with, none in
    ISO-8859-1's reading of its bytes (`>2>AB8`, the markup shown as text) or a detector's
    guess; the mark is no character of the text."""
    data = bom + RUSSIAN_PAGE.encode(encoding)
    # Quotes pasted from a word processor into the UTF-8 page, as Windows-1252 bytes.
    data = data.replace("“".encode(), b"\x93").replace("”".encode(), b"\x94")
    result = extract_page(data, "https://example.ru/a", charset="ISO-8859-1")
    assert result.metadata.title == "Бюджет города"
    assert "после долгих обсуждений, “сказала” председатель финансовой комиссии." in result.text
    assert result.metadata.language == "ru"
    shown = visible_text(data, "ISO-8859-1")
    assert shown.startswith("Бюджет города")
    assert "“сказала”" in shown
    assert "<" not in shown


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [
        pytest.param("utf-16le", "utf-16-le", id="utf-16le"),
        pytest.param("UTF-16BE", "utf-16-be", id="utf-16be"),
        pytest.param("utf-16", "utf-16-le", id="utf-16-little-endian-as-whatwg-reads-it"),
        pytest.param("utf-16", "utf-8", id="a-utf-8-page-mislabelled"),
    ],
)
def test_a_page_without_a_byte_order_mark_is_read_in_the_utf_16_it_is_served_as(
    charset: str, encoding: str
) -> None:
    """A UTF-16 page without a byte order mark, served as `charset=utf-16le` (`utf-16` is
    little-endian, as WHATWG Encoding reads the label): read in it, its markup's NUL bytes
    showing it is, not as the valid UTF-8 its Cyrillic letters' bytes happen to be
    (`N465B 3>@>40`); a UTF-8 page so labelled, which has none, stays UTF-8."""
    data = RUSSIAN_PAGE.encode(encoding)
    result = extract_page(data, "https://example.ru/a", charset=charset)
    assert result.metadata.title == "Бюджет города"
    assert "Городской совет утвердил бюджет на следующий год" in result.text
    assert visible_text(data, charset).startswith("Бюджет города")


_STORY = [
    f"Paragraph {i} of the story: the harbour authority said on Thursday that ferry terminal "
    f"number {i} would open next spring, after a long dispute over the cost of the foundations."
    for i in range(6)
]
_STORY_BODY = "".join(f"<p>{p}</p>" for p in _STORY)
_HIDDEN = [
    pytest.param("hidden", id="hidden"),
    pytest.param("hidden itemprop='articleBody' class='article-body'", id="hidden-marked-body"),
    pytest.param("style='display:none'", id="display-none"),
    pytest.param(
        "style='color: red; DISPLAY : NONE !important'", id="display-none-spelt-otherwise"
    ),
    pytest.param("style='visibility: hidden'", id="visibility-hidden"),
    pytest.param("aria-hidden='true'", id="aria-hidden"),
]


@pytest.mark.parametrize("before", [False, True], ids=["copy-after", "copy-before"])
@pytest.mark.parametrize("hidden", _HIDDEN)
def test_a_hidden_copy_of_the_article_is_not_its_text_again(hidden: str, before: bool) -> None:
    """A page carrying a hidden duplicate of its body (for print, AMP or a script to show):
    every paragraph once, though the copy holds half of the page's text."""
    shown = f"<div class='text'>{_STORY_BODY}</div>"
    copy = f"<div {hidden}>{_STORY_BODY}</div>"
    page = (
        "<html><head><title>Ferry</title></head><body><article><h1>Ferry terminal</h1>"
        f"{copy + shown if before else shown + copy}</article></body></html>"
    )
    text = extract_page(page.encode(), "https://example.com/news/ferry").text
    assert [text.count(p) for p in _STORY] == [1] * len(_STORY)


@pytest.mark.parametrize("hidden", _HIDDEN)
def test_an_article_shown_only_in_a_hidden_element_is_kept(hidden: str) -> None:
    """The one copy of the article inside a hidden element (a script shows it) is the text."""
    page = (
        "<html><head><title>Ferry</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>Ferry terminal</h1><div {hidden}>{_STORY_BODY}</div></article></body></html>"
    )
    text = extract_page(page.encode(), "https://example.com/news/ferry").text
    assert [text.count(p) for p in _STORY] == [1] * len(_STORY)


def _scroll_story(k: int, headline: str, heading: str = "h1") -> str:
    paragraphs = "".join(
        f"<p>Story {k}, paragraph {i}: the {headline} said on Thursday that plan number {i} "
        "would go ahead next spring, after a long dispute over its costs.</p>"
        for i in range(5)
    )
    return (
        f"<article class='post'><header><{heading}>{headline}</{heading}></header>"
        f"<div class='text'>{paragraphs}</div></article>"
    )


@pytest.mark.parametrize(
    "wrapper",
    [
        pytest.param("main", id="main"),
        pytest.param("div class='content-body'", id="content-named"),
        pytest.param("div id='story-content'", id="story-named"),
    ],
)
def test_an_infinite_scroll_page_is_its_first_story_only(wrapper: str) -> None:
    """A page that appends the site's next stories, each an <article> with its own <h1>, after
    the story (infinite scroll): the text is the story's, the one holding the page's first
    <h1>."""
    stories = "".join(
        _scroll_story(k, headline)
        for k, headline in enumerate(("harbour authority", "city council", "school board"))
    )
    tag = wrapper.split()[0]
    page = (
        "<html><head><title>Harbour authority</title></head>"
        f"<body><{wrapper}>{stories}</{tag}></body></html>"
    )
    text = extract_page(page.encode(), "https://example.com/news/harbour").text
    assert [text.count(f"Story {k}, ") for k in range(3)] == [5, 0, 0]


def _scroll_page(head: str, stories: str) -> bytes:
    return f"<html><head>{head}</head><body><main>{stories}</main></body></html>".encode()


def _sized_story(k: int, headline: str, paragraphs: int) -> str:
    text = "".join(
        f"<p>Story {k}, paragraph {i}: the {headline.lower()} said on Thursday that plan number "
        f"{i} would go ahead next spring, after a long dispute over its costs.</p>"
        for i in range(paragraphs)
    )
    return f"<article class='post'><h1>{headline}</h1><div class='text'>{text}</div></article>"


@pytest.mark.parametrize(
    "head",
    [
        pytest.param("<title>Harbour authority buys ferries | Example News</title>", id="title"),
        pytest.param(
            "<title>Example News</title>"
            "<meta property='og:title' content='Harbour authority buys ferries'>",
            id="og-title",
        ),
    ],
)
def test_an_infinite_scroll_page_drops_a_next_story_longer_than_the_story(head: str) -> None:
    """The next story an infinite scroll appends, longer than the story (half of the page or
    more), goes too when the story's <h1> is the page's headline (its title or og:title): the
    text is the story's alone."""
    stories = (
        _sized_story(0, "Harbour authority buys ferries", 4)
        + _sized_story(1, "City council passes the budget", 14)
        + _sized_story(2, "School board elects a chair", 3)
    )
    text = extract_page(_scroll_page(head, stories), "https://example.com/news/harbour").text
    assert [text.count(f"Story {k}, ") for k in range(3)] == [4, 0, 0]


def test_a_story_after_a_teaser_with_the_first_h1_is_kept() -> None:
    """A teaser dressed as a story, with the page's first <h1>, before the story: the story,
    holding half of the page and titled as the page, is kept."""
    stories = _sized_story(0, "Breaking: ferry delayed", 1) + _sized_story(
        1, "Harbour authority buys ferries", 8
    )
    head = "<title>Harbour authority buys ferries | Example News</title>"
    text = extract_page(_scroll_page(head, stories), "https://example.com/news/harbour").text
    assert text.count("Story 1, ") == 8


def test_a_story_of_articles_without_their_own_h1_is_kept_whole() -> None:
    """Entries of a live blog, each an <article> with its own <h2> under the page's <h1>: all
    of them are the story."""
    entries = "".join(
        _scroll_story(k, headline, heading="h2")
        for k, headline in enumerate(("harbour authority", "city council", "school board"))
    )
    page = (
        "<html><head><title>Live: the budget</title></head><body><main><h1>Live: the budget</h1>"
        f"<div class='content-body'>{entries}</div></main></body></html>"
    )
    text = extract_page(page.encode(), "https://example.com/news/live").text
    assert [text.count(f"Story {k}, ") for k in range(3)] == [5, 5, 5]
