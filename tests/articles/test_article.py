"""ingest.article.build_article: field-by-field precedence between the feed entry and the page,
as its module docstring and the README ("How an entry becomes an article", step 5) state."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

import ingest.article
from ingest.article import (
    KEY_WORDS,
    SHOWN,
    another_page,
    build_article,
    names_entry,
    not_an_article,
    titled_alike,
)
from ingest.coverage import words
from ingest.normalize import canonical_url, clean_text, content_hash
from ingest.pages import OTHER_PAGE_OUTCOME, PageOutcome, page_for
from ingest.types import Article, Extracted, PageMetadata, ParsedEntry
from tests.support.stories import KHMER_STORY, THAI_STORY

NOW = datetime(2025, 8, 12, 6, 0, tzinfo=UTC)
EDT = timezone(timedelta(hours=-4))
ENTRY_LINK = "https://www.example.com/news/story?utm_source=rss&utm_medium=feed"
PAGE_TEXT = (
    "The city council approved the budget on Monday after a long debate.\n\n"
    "The vote was seven to two, and the new plan takes effect in January."
)
FEED_CONTENT = "Feed  content:\nthe council approved\u200b the budget after a long debate."
FEED_SUMMARY = "Feed summary of the council budget vote, which is long enough to classify."


def _entry(**overrides: object) -> ParsedEntry:
    fields: dict[str, object] = {
        "guid": "urn:story:1",
        "link": ENTRY_LINK,
        "title": "Feed title",
        "author": "Feed Author",
        "published_at": datetime(2025, 8, 11, 9, 14, 27, tzinfo=EDT),
        "updated_at": None,
        "summary": FEED_SUMMARY,
        "content": FEED_CONTENT,
    }
    fields.update(overrides)
    return ParsedEntry(**fields)  # type: ignore[arg-type]


def _page(**overrides: object) -> Extracted:
    fields: dict[str, object] = {
        "title": "Page title",
        "author": "Page Author",
        "published_at": datetime(2025, 8, 10, 8, 0, tzinfo=UTC),
        "published_has_time": True,
        "updated_at": datetime(2025, 8, 10, 9, 30, tzinfo=UTC),
        "canonical_url": None,
        "image_url": "https://www.example.com/page.jpg",
        "description": "Page description",
        "language": "en",
    }
    fields.update(overrides)
    return Extracted(text=PAGE_TEXT, metadata=PageMetadata(**fields))  # type: ignore[arg-type]


def _build(
    entry: ParsedEntry,
    extracted: Extracted | None,
    *,
    final_url: str | None = None,
    error: str | None = None,
) -> Article:
    return build_article(
        entry,
        entry_url=entry.link or "",
        final_url=final_url if final_url is not None else (entry.link if extracted else None),
        extracted=extracted,
        extraction_error=error,
        now=NOW,
    )


# --- title, author ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_value", "page_value", "expected"),
    [
        pytest.param("Feed Value", "Page Value", "Feed Value", id="feed-wins"),
        pytest.param(None, "Page Value", "Page Value", id="page-when-feed-missing"),
        pytest.param("   ", "Page Value", "Page Value", id="page-when-feed-blank"),
        pytest.param("  Feed\n Value ", "Page Value", "Feed Value", id="feed-cleaned"),
        pytest.param(None, None, None, id="neither"),
    ],
)
@pytest.mark.parametrize("field", ["title", "author"])
def test_title_and_author_feed_before_page(
    field: str, entry_value: str | None, page_value: str | None, expected: str | None
) -> None:
    """Title and author: the feed entry's non-empty value, else the page's."""
    article = _build(_entry(**{field: entry_value}), _page(**{field: page_value}))
    assert getattr(article, field) == expected


# --- published_at ----------------------------------------------------------------------------


def test_feed_date_wins_over_page() -> None:
    """The feed entry's publication date wins over the page's, converted to UTC."""
    entry = _entry()
    article = _build(entry, _page())
    assert article.published_at == entry.published_at
    assert article.published_at.utcoffset() == timedelta(0)
    assert article.published_source == "feed"


def test_feed_updated_used_when_published_missing() -> None:
    """Without a published date the entry's updated date (RSS 1.0 dc:date) is the feed date."""
    updated = datetime(2025, 8, 11, 22, 5, tzinfo=EDT)
    article = _build(_entry(published_at=None, updated_at=updated), _page())
    assert article.published_at == updated
    assert article.published_at.tzinfo is not None
    assert article.published_at.utcoffset() == timedelta(0)
    assert article.published_source == "feed"


def test_page_date_used_when_feed_has_none() -> None:
    """Without any feed date, the page's publication date is used."""
    page = _page()
    article = _build(_entry(published_at=None, updated_at=None), page)
    assert article.published_at == page.metadata.published_at
    assert article.published_source == "page"


@pytest.mark.parametrize(
    "page_time",
    [
        pytest.param(datetime(2025, 8, 11, 9, 14, tzinfo=EDT), id="same-day"),
        pytest.param(datetime(2025, 8, 11, 21, 30, tzinfo=EDT), id="next-day-in-utc"),
        pytest.param(
            datetime(2025, 8, 11, 7, 5, tzinfo=timezone(timedelta(hours=9))), id="day-before-in-utc"
        ),
    ],
)
def test_a_feed_date_without_a_time_of_day_takes_the_page_s_time_of_that_day(
    page_time: datetime,
) -> None:
    """A feed or sitemap date without a time (`<dc:date>2025-08-11</dc:date>`, a news
    sitemap's `publication_date`), read as midnight UTC, gives way to the page's time of that
    day: the publication time is stored with its time of day when any source gives it."""
    entry = _entry(published_at=datetime(2025, 8, 11, tzinfo=UTC))
    article = _build(entry, _page(published_at=page_time.astimezone(UTC)))
    assert article.published_at == page_time
    assert article.published_source == "page"


def test_a_feed_date_without_a_time_of_day_stays_beside_a_page_dated_otherwise() -> None:
    """The feed's day stands where the page gives another day, or a day without a time."""
    entry = _entry(published_at=datetime(2025, 8, 11, tzinfo=UTC))
    for page in (
        _page(published_at=datetime(2025, 8, 5, 10, 0, tzinfo=UTC)),
        _page(published_at=datetime(2025, 8, 11, tzinfo=UTC), published_has_time=False),
    ):
        article = _build(entry, page)
        assert article.published_at == datetime(2025, 8, 11, tzinfo=UTC)
        assert article.published_source == "feed"


def test_a_feed_date_hours_ahead_gives_way_to_the_page_s_time() -> None:
    """A feed date hours after the article was first seen (a Tokyo feed writing its local
    14:30 as UTC: 8.5 hours ahead of the poll) is a zone read wrongly, not a publication
    time: the page's time (14:30+09:00, half an hour before the poll) dates the article,
    instead of the future that pins it to the top of every "latest" list."""
    entry = _entry(published_at=datetime(2025, 8, 12, 14, 30, tzinfo=UTC))
    page_time = datetime(2025, 8, 12, 14, 30, tzinfo=timezone(timedelta(hours=9)))
    article = _build(entry, _page(published_at=page_time.astimezone(UTC)))
    assert article.published_at == page_time
    assert article.published_source == "page"


def test_a_feed_date_ahead_stays_without_a_page_time_before_it() -> None:
    """The feed's date stands where it is only minutes ahead (the clocks of two machines), or
    where the page has no time of day, or one that is ahead too."""
    cases = [
        (NOW + timedelta(minutes=5), _page(published_at=NOW - timedelta(hours=1))),
        (
            NOW + timedelta(hours=3),
            _page(published_at=datetime(2025, 8, 12, tzinfo=UTC), published_has_time=False),
        ),
        (NOW + timedelta(hours=3), _page(published_at=NOW + timedelta(hours=2))),
        (NOW + timedelta(hours=3), None),
    ]
    for feed_date, page in cases:
        article = _build(_entry(published_at=feed_date), page)
        assert (article.published_at, article.published_source) == (feed_date, "feed")


@pytest.mark.parametrize(
    "extracted",
    [
        pytest.param(None, id="no-page"),
        pytest.param(_page(published_at=None, updated_at=None), id="page-without-date"),
    ],
)
def test_first_seen_when_nobody_dates_it(extracted: Extracted | None) -> None:
    """With no date from the feed nor the page, `now` is used and marked first_seen."""
    article = _build(_entry(published_at=None, updated_at=None), extracted)
    assert article.published_at == NOW
    assert article.published_source == "first_seen"
    assert article.fetched_at == NOW


@pytest.mark.parametrize(
    ("entry_updated", "page_updated", "expected"),
    [
        pytest.param(
            datetime(2025, 8, 11, 12, 0, tzinfo=EDT),
            datetime(2025, 8, 10, 9, 30, tzinfo=UTC),
            datetime(2025, 8, 11, 16, 0, tzinfo=UTC),
            id="feed-wins",
        ),
        pytest.param(
            None,
            datetime(2025, 8, 11, 18, 0, tzinfo=UTC),
            datetime(2025, 8, 11, 18, 0, tzinfo=UTC),
            id="page-fallback",
        ),
        pytest.param(None, None, None, id="none"),
    ],
)
def test_updated_at_feed_before_page(
    entry_updated: datetime | None, page_updated: datetime | None, expected: datetime | None
) -> None:
    """modified time: the feed entry's updated date, else the page's, in UTC."""
    article = _build(_entry(updated_at=entry_updated), _page(updated_at=page_updated))
    assert article.updated_at == expected
    if expected is not None:
        assert article.updated_at is not None
        assert article.updated_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("entry", "page_updated", "expected"),
    [
        pytest.param(
            _entry(published_at=None, updated_at=datetime(2025, 8, 11, tzinfo=UTC)),
            None,
            None,
            id="rss-1.0-dc-date-of-the-day-is-no-modified-time",
        ),
        pytest.param(
            _entry(published_at=None, updated_at=datetime(2025, 8, 11, tzinfo=UTC)),
            datetime(2025, 8, 11, 15, 0, tzinfo=UTC),
            datetime(2025, 8, 11, 15, 0, tzinfo=UTC),
            id="rss-1.0-dc-date-of-the-day-gives-way-to-the-page-s",
        ),
        pytest.param(
            _entry(published_at=None, updated_at=None),
            datetime(2025, 8, 10, 9, 30, tzinfo=UTC),
            None,
            id="page-s-modified-time-before-its-publication",
        ),
        pytest.param(
            _entry(updated_at=datetime(2025, 8, 11, 9, 0, tzinfo=EDT)),
            datetime(2025, 8, 11, 16, 0, tzinfo=UTC),
            datetime(2025, 8, 11, 16, 0, tzinfo=UTC),
            id="feed-s-modified-time-before-its-publication",
        ),
    ],
)
def test_a_modified_time_before_the_publication_time_is_none(
    entry: ParsedEntry, page_updated: datetime | None, expected: datetime | None
) -> None:
    """`modified_at` is never before `published_at`: a feed's date without a time of day (an
    RSS 1.0 `dc:date`, which is both the entry's publication and its update date) gives way to
    the page's time of that day as the publication time, and is no modified time either, 13
    hours before it; a feed's update time before its own publication time is none either. The
    page's modified time is used instead, when it is no earlier, else none."""
    page = _page(published_at=datetime(2025, 8, 11, 13, 14, tzinfo=UTC), updated_at=page_updated)
    article = _build(entry, page)
    assert article.updated_at == expected
    assert article.updated_at is None or article.updated_at >= article.published_at


@pytest.mark.parametrize(
    ("page_updated", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param(
            datetime(2025, 8, 12, 5, 45, tzinfo=UTC),
            datetime(2025, 8, 12, 5, 45, tzinfo=UTC),
            id="the-page-s",
        ),
    ],
)
def test_a_feed_s_modified_time_in_a_zone_read_wrongly_is_none(
    page_updated: datetime | None, expected: datetime | None
) -> None:
    """A Tokyo feed writing its local 14:30 as UTC, 8.5 hours ahead of the poll, writes its
    update time so too: where its publication time gave way to the page's for that (`_ahead`),
    its update time as far ahead is no modified time either (the page's, else none), instead
    of an edit hours in the future."""
    feed_time = datetime(2025, 8, 12, 14, 30, tzinfo=UTC)
    entry = _entry(published_at=feed_time, updated_at=feed_time)
    page = _page(published_at=datetime(2025, 8, 12, 5, 30, tzinfo=UTC), updated_at=page_updated)
    article = _build(entry, page)
    assert article.published_source == "page"
    assert article.updated_at == expected


def test_a_page_s_modified_time_beside_a_first_seen_time_is_kept() -> None:
    """Where neither the feed nor the page dates the article (the first-seen time stands for
    it), the page's modified time is the publisher's only time, and kept."""
    page = _page(published_at=None, updated_at=datetime(2025, 8, 10, 9, 30, tzinfo=UTC))
    article = _build(_entry(published_at=None, updated_at=None), page)
    assert article.published_source == "first_seen"
    assert article.updated_at == datetime(2025, 8, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("entry_updated", "page_updated", "expected"),
    [
        pytest.param(
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(2025, 8, 10, 9, 30, tzinfo=UTC),
            datetime(2025, 8, 10, 9, 30, tzinfo=UTC),
            id="feed-year-9999-page-fallback",
        ),
        pytest.param(
            None, datetime(9999, 12, 31, tzinfo=UTC), None, id="page-year-9999-is-no-date"
        ),
        pytest.param(
            NOW + timedelta(days=1, seconds=1),
            NOW + timedelta(days=3),
            None,
            id="both-over-a-day-ahead",
        ),
        pytest.param(NOW + timedelta(days=1), None, NOW + timedelta(days=1), id="a-day-ahead"),
    ],
)
def test_updated_at_more_than_a_day_ahead_is_no_date(
    entry_updated: datetime | None, page_updated: datetime | None, expected: datetime | None
) -> None:
    """A modified time more than a day ahead of now is not one, by the rule publication dates
    follow (it would mark the article as changed until then): the page's is used instead,
    else none."""
    entry = _entry(published_at=entry_updated, updated_at=entry_updated)
    article = _build(entry, _page(published_at=page_updated, updated_at=page_updated))
    assert article.updated_at == expected
    published_kept = article.published_source in ("feed", "page")
    assert published_kept == (expected is not None)


@pytest.mark.parametrize(
    ("feed_date", "page_date", "expected", "source"),
    [
        pytest.param(
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2025, 8, 10, 8, 0, tzinfo=UTC),
            datetime(2025, 8, 10, 8, 0, tzinfo=UTC),
            "page",
            id="feed-unix-epoch-page-fallback",
        ),
        pytest.param(None, datetime(1, 1, 1, tzinfo=UTC), NOW, "first_seen", id="page-year-1"),
        pytest.param(
            None, datetime(1900, 1, 1, tzinfo=UTC), NOW, "first_seen", id="page-year-1900"
        ),
        pytest.param(
            datetime(1969, 12, 31, 19, 0, tzinfo=EDT), None, NOW, "first_seen", id="epoch-in-edt"
        ),
        pytest.param(
            datetime(1991, 8, 6, tzinfo=UTC),
            None,
            datetime(1991, 8, 6, tzinfo=UTC),
            "feed",
            id="the-web-s-first-day",
        ),
    ],
)
def test_a_placeholder_date_before_the_web_is_no_date(
    feed_date: datetime | None, page_date: datetime | None, expected: datetime, source: str
) -> None:
    """A date before the web (1991) is a placeholder, not a publication or modified time: the
    Unix epoch of a timestamp 0, year 1 of an unset .NET or Java date, 1900 of a spreadsheet's.
    The next source is used instead, else the first-seen time."""
    entry = _entry(published_at=feed_date, updated_at=feed_date)
    article = _build(entry, _page(published_at=page_date, updated_at=page_date))
    assert (article.published_at, article.published_source) == (expected, source)
    assert article.updated_at == (expected if source != "first_seen" else None)


# --- text ------------------------------------------------------------------------------------


def test_text_from_page_when_extracted() -> None:
    """An extracted page gives the text, text_source 'page', no extraction error."""
    article = _build(_entry(), _page())
    assert article.text == PAGE_TEXT
    assert article.text_source == "page"
    assert article.extraction_error is None
    assert article.content_hash == content_hash(PAGE_TEXT)


@pytest.mark.parametrize(
    ("content", "summary", "raw"),
    [
        pytest.param(FEED_CONTENT, FEED_SUMMARY, FEED_CONTENT, id="content-first"),
        pytest.param(None, FEED_SUMMARY, FEED_SUMMARY, id="summary-fallback"),
        pytest.param("", FEED_SUMMARY, FEED_SUMMARY, id="empty-content"),
    ],
)
def test_text_from_feed_when_page_unavailable(
    content: str | None, summary: str | None, raw: str
) -> None:
    """Without a page, the feed's content (else its summary) is stored, cleaned, with
    text_source 'feed' and the reason kept in extraction_error."""
    entry = _entry(content=content, summary=summary)
    article = _build(entry, None, error="HTTP 404")
    assert article.text == clean_text(raw)
    assert article.text_source == "feed"
    assert article.extraction_error == "HTTP 404"
    assert article.content_hash == content_hash(clean_text(raw))


# --- URLs ------------------------------------------------------------------------------------


def test_original_url_is_the_raw_entry_link() -> None:
    """original_url is the link exactly as the feed gave it; url is its canonical form."""
    article = _build(_entry(), None)
    assert article.original_url == ENTRY_LINK
    assert article.url == canonical_url(ENTRY_LINK)
    assert article.site == "example.com"
    assert article.aliases == ()


def test_same_site_rel_canonical_chosen_and_entry_link_kept_as_alias() -> None:
    """A same-site rel=canonical becomes the URL; the entry link (canonical form) stays as an
    alias so the entry is recognised later without fetching."""
    canonical = "https://example.com/news/2025/08/story"
    article = _build(_entry(), _page(canonical_url=canonical))
    assert article.url == canonical
    assert canonical_url(ENTRY_LINK) in article.aliases
    assert article.url not in article.aliases
    assert article.original_url == ENTRY_LINK
    assert article.site == "example.com"


def test_final_url_after_redirect_kept_as_alias() -> None:
    """The URL the page fetch ended at is the article URL (no canonical), the entry link an
    alias."""
    final = "https://www.example.com/news/2025/08/story"
    article = _build(_entry(), _page(), final_url=final)
    assert article.url == final
    assert article.aliases == (canonical_url(ENTRY_LINK),)


@pytest.mark.parametrize(
    ("link", "final", "canonical", "image"),
    [
        pytest.param(
            "https://Reader:S3cret@www.example.com/news/story", None, None, None, id="link"
        ),
        pytest.param(
            "https://www.example.com/news/story",
            "https://Reader:S3cret@www.example.com/news/story",
            None,
            None,
            id="redirect",
        ),
        pytest.param(
            "https://www.example.com/news/story",
            None,
            "https://TOKEN@www.example.com/news/story",
            None,
            id="canonical",
        ),
        pytest.param(
            "https://www.example.com/news/story",
            None,
            None,
            "https://Reader:S3cret@www.example.com/news/story.jpg",
            id="image",
        ),
    ],
)
def test_an_article_s_urls_are_stored_without_user_info(
    link: str, final: str | None, canonical: str | None, image: str | None
) -> None:
    """A link, redirect, rel=canonical or image written with a user-info (a credential: an
    absolute link of a private feed, `https://Reader:S3cret@host/story`) is stored without it:
    news.articles shows url, original_url and image_url to news_reader, as it shows no feed's
    credential. The page is still the one its link names (the forms written with it stay
    aliases, hashes that find the article: `ingest.article_urls`)."""
    page = _page(canonical_url=canonical, image_url=image or "https://www.example.com/p.jpg")
    article = _build(_entry(link=link), page, final_url=final or link)
    assert article.url == "https://www.example.com/news/story"
    assert article.original_url == "https://www.example.com/news/story"
    assert article.image_url == "https://www.example.com/" + (
        "news/story.jpg" if image else "p.jpg"
    )
    written = {canonical_url(u) for u in (link, final, canonical) if u and "@" in u}
    assert written <= set(article.aliases)
    assert article.url not in article.aliases


def test_cross_site_rel_canonical_ignored() -> None:
    """A rel=canonical on another site (syndication) is not followed."""
    article = _build(_entry(), _page(canonical_url="https://wire.example.org/original"))
    assert article.url == canonical_url(ENTRY_LINK)
    assert article.aliases == ()


def test_relative_rel_canonical_resolved_against_page() -> None:
    """A relative rel=canonical stays on the same site by definition, so it is used."""
    article = _build(_entry(), _page(canonical_url="/news/2025/08/story"))
    assert article.url == "https://www.example.com/news/2025/08/story"


def test_rel_canonical_naming_another_story_is_neither_the_url_nor_an_alias() -> None:
    """A canonical naming another story of the site (a CMS naming its latest story on every
    page) leaves the article at its own address, and is no alias of it: the other story keeps
    its address."""
    other = "https://www.example.com/news/2025/08/council-budget"
    article = _build(_entry(), _page(canonical_url=other))
    assert article.url == canonical_url(ENTRY_LINK)
    assert canonical_url(other) not in article.aliases


# --- other fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_summary", "page_description", "expected"),
    [
        pytest.param("Feed summary", "Page description", "Feed summary", id="feed-wins"),
        pytest.param(None, "Page description", "Page description", id="page-fallback"),
    ],
)
def test_summary_feed_before_page_description(
    entry_summary: str | None, page_description: str | None, expected: str | None
) -> None:
    """summary: the feed's summary, else the page's description."""
    article = _build(_entry(summary=entry_summary), _page(description=page_description))
    assert article.summary == expected


@pytest.mark.parametrize(
    ("entry_image", "page_image", "expected"),
    [
        pytest.param(
            "https://cdn.example.com/feed.jpg",
            "https://x/p.jpg",
            "https://cdn.example.com/feed.jpg",
            id="feed-wins",
        ),
        pytest.param(None, "https://x/p.jpg", "https://x/p.jpg", id="page-fallback"),
    ],
)
def test_image_feed_before_page(
    entry_image: str | None, page_image: str | None, expected: str | None
) -> None:
    """image_url: the feed entry's image, else the page's lead image."""
    article = _build(_entry(image_url=entry_image), _page(image_url=page_image))
    assert article.image_url == expected


def test_language_from_page_metadata() -> None:
    """With a page, its detected language is used."""
    article = _build(_entry(language="de"), _page(language="fr"))
    assert article.language == "fr"


def test_language_detected_from_feed_text_without_page() -> None:
    """Without a page, the language is detected from the stored feed text."""
    entry = _entry(
        content="Le conseil municipal a voté mardi le nouveau budget de la ville, qui prévoit "
        "davantage d'argent pour les écoles.",
        language="en",
    )
    assert _build(entry, None).language == "fr"


def test_language_hint_used_for_short_feed_text() -> None:
    """A feed text too short to classify takes the feed's language hint."""
    entry = _entry(content="Brief.", summary=None, language="de-DE")
    assert _build(entry, None).language == "de"


def test_guid_carried() -> None:
    """The entry's guid is stored with the article."""
    assert _build(_entry(guid="tag:example.com,2025:1"), None).guid == "tag:example.com,2025:1"


# --- authors, tags ---------------------------------------------------------------------------


def test_feed_byline_naming_a_person_wins_and_is_split() -> None:
    """The feed's byline names people: each becomes an element of `authors`."""
    article = _build(_entry(author="By Jane Doe and John Smith"), _page())
    assert article.authors == ("Jane Doe", "John Smith")
    assert article.author == "Jane Doe, John Smith"


def test_feed_byline_naming_only_the_site_gives_way_to_the_page() -> None:
    """A feed byline that is the site's own name loses to the people the page names."""
    page = _page(author="Priya Raman", authors=("Priya Raman",))
    article = _build(_entry(author="example.com"), page)
    assert article.authors == ("Priya Raman",)


def test_feed_byline_naming_only_the_site_is_no_author_where_the_page_names_nobody() -> None:
    """The site's own name is never an author: not even the last resort of a page without a
    byline."""
    article = _build(_entry(author="Example"), _page(author=None))
    assert (article.author, article.authors) == (None, ())


def test_feed_byline_of_only_a_label_or_address_is_no_author() -> None:
    """An e-mail address in the feed and no byline on the page: nobody is named."""
    article = _build(_entry(author="newsroom@example.com"), _page(author=None))
    assert (article.author, article.authors) == (None, ())


def test_tags_from_feed_then_page_each_once() -> None:
    """Feed categories first, then the page's tags; case-insensitive duplicates dropped."""
    page = Extracted(
        text=PAGE_TEXT, metadata=PageMetadata(title="T", tags=("climate", "Energy &amp; power"))
    )
    article = _build(_entry(tags=("Climate", "Politics")), page)
    assert article.tags == ("Climate", "Politics", "Energy & power")


def test_a_page_is_titled_as_its_entry_where_the_titles_share_half_of_the_shorter_s_words() -> None:
    assert titled_alike("Council rebuilds the bridge", "Council rebuilds the bridge | The Daily")
    assert titled_alike("Council rebuilds the old bridge", "Council rebuilds bridge")
    assert titled_alike("Council rebuilds the bridge - Politics - The Daily", "Council rebuilds")
    assert not titled_alike("Council rebuilds the old bridge", "Bridge news and more")
    assert not titled_alike("Council rebuilds the bridge", "Before you continue")
    assert titled_alike(None, "Before you continue")  # nothing tells them apart
    assert titled_alike("Council rebuilds the bridge", None)
    assert titled_alike("", "")


def test_words_under_four_letters_do_not_make_a_page_titled_as_its_entry() -> None:
    """A home page titled with the site's name ("The Daily") shares "the" with a quarter of
    English headlines: only words of KEY_LETTERS letters or more tell titles alike."""
    assert not titled_alike("Council rebuilds the bridge", "The Daily")
    assert not titled_alike("The vote on the bridge", "Page not found | The Daily")
    assert titled_alike("War in Gaza: day 100", "Gaza: the war, day 100 | The Daily")
    assert titled_alike("Who is he?", "The Daily")  # nothing tells them apart
    home = Extracted(text=CONSENT_TEXT, metadata=PageMetadata(title="The Daily"))
    assert another_page(_entry(title="The council votes on the bridge"), home)


def test_a_title_s_key_words_are_read_once_for_its_comparisons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer compares a new article's title with those of up to 200 candidates of its
    site, and the site's next article with most of the same: each title's key words are read
    once, not at each comparison. A title too long to keep is read each time, with the same
    answers."""
    read: list[str | None] = []
    key_words = ingest.article.key_words

    def counted(text: str | None) -> set[str]:
        read.append(text)
        return key_words(text)

    monkeypatch.setattr(ingest.article, "key_words", counted)
    candidates = [f"Quayside council rebuilds bridge number {n} of the river" for n in range(200)]
    assert all(titled_alike("Quayside council rebuilds bridge 7", c) for c in candidates)
    assert not any(titled_alike("Quayside harbour strike ends", c) for c in candidates)
    assert len(read) == len(set(read)) == 202
    long = "Council rebuilds the bridge " * 100
    assert titled_alike(long, "Council rebuilds bridge")
    assert titled_alike(long, long)
    assert not titled_alike(long, "Harbour strike ends")
    assert read.count(long) == 4


CONSENT_TEXT = (
    "We and our partners use cookies and data to deliver and maintain our services, measure "
    "audience engagement and show personalised advertising. Select accept all to agree."
)


def test_a_consent_wall_is_another_page_than_the_entry_s_article() -> None:
    """Titled otherwise and showing none of the entry's key words: another page. The
    entry's own text is its content, else its summary."""
    wall = Extracted(text=CONSENT_TEXT, metadata=PageMetadata(title="Before you continue"))
    assert another_page(_entry(), wall)
    assert another_page(_entry(content=None), wall)
    # Titled as the entry, or without a title on either side: the page is the article.
    assert not another_page(_entry(), wall_titled("Feed title | The Daily"))
    assert not another_page(_entry(title=None), wall)
    assert not another_page(_entry(), Extracted(text=CONSENT_TEXT, metadata=PageMetadata()))
    # Too few key words to judge by (four letters or more): never another page.
    assert not another_page(_entry(content="Budget vote.", summary=None), wall)


HINDI_TITLE = "किसानों के लिए नई सिंचाई योजना की घोषणा"
HINDI_SUMMARY = (
    "केंद्र सरकार ने सोमवार को किसानों के लिए एक नई सिंचाई योजना की घोषणा की, जिसके तहत अगले"
    " पांच वर्षों में देश के सूखा प्रभावित जिलों में छोटे बांध और नहरें बनाई जाएंगी।"
)
HINDI_CONSENT = (
    "हम और हमारे साझेदार अपनी सेवाएं देने, दर्शकों की गतिविधि मापने और आपको व्यक्तिगत विज्ञापन"
    " दिखाने के लिए कुकीज़ और डेटा का उपयोग करते हैं। सहमति देने के लिए सभी स्वीकार करें चुनें।"
)


@pytest.mark.parametrize(
    "wall",
    [
        pytest.param(Extracted(HINDI_CONSENT, PageMetadata(title="जारी रखने से पहले")), id="hi"),
        pytest.param(Extracted(CONSENT_TEXT, PageMetadata(title="Before you continue")), id="en"),
    ],
)
def test_a_consent_wall_is_another_page_than_a_hindi_entry_s_article(wall: Extracted) -> None:
    """Hindi writes most vowels as combining signs, which `\\w` does not match: a word is its
    letters with their signs (`ingest.coverage.words`), so a Hindi entry has key words as an
    English one does and a consent wall titled otherwise is judged another page; the article,
    titled otherwise, showing the entry's words, is not."""
    entry = _entry(title=HINDI_TITLE, summary=HINDI_SUMMARY, content=None)
    assert words("दिल्ली में सिंचाई") == ["दिल्ली", "में", "सिंचाई"]
    assert another_page(entry, wall)
    article = Extracted(
        "नई दिल्ली, 2 जून। " + HINDI_SUMMARY + " कृषि मंत्री ने संवाददाताओं से बात की।",
        PageMetadata(title="सूखे जिलों को राहत: छोटे बांध बनेंगे"),
    )
    assert not another_page(entry, article)


CHINESE_TITLE = "国家统计局：5月份规模以上工业增加值同比增长5.6%"
CHINESE_SUMMARY = (
    "国家统计局今天发布数据显示，今年5月份全国规模以上工业增加值同比增长百分之五点六，比上月加快"
    "零点三个百分点。分三大门类看，采矿业增加值同比增长百分之三点一，制造业增长百分之六点零。"
)
CHINESE_CONSENT = (
    "我们和我们的合作伙伴使用Cookie及类似技术来提供和维护我们的服务、衡量受众参与度并展示个性化"
    "广告。选择“全部接受”即表示您同意。"
)


@pytest.mark.parametrize(
    ("entry", "wall", "article"),
    [
        pytest.param(
            _entry(title=CHINESE_TITLE, summary=CHINESE_SUMMARY, content=None),
            Extracted(CHINESE_CONSENT, PageMetadata(title="继续访问之前")),
            Extracted(
                "新华社北京6月2日电 "
                + CHINESE_SUMMARY
                + "国家统计局新闻发言人表示，经济运行总体平稳。",
                PageMetadata(title="工业生产稳中有升 新动能持续壮大_新华网"),
            ),
            id="zh",
        ),
        pytest.param(
            _entry(title=CHINESE_TITLE, summary=CHINESE_SUMMARY, content=None),
            Extracted(CONSENT_TEXT, PageMetadata(title="Before you continue")),
            Extracted(CHINESE_SUMMARY, PageMetadata(title="统计局：工业生产加快")),
            id="zh-en",
        ),
        pytest.param(
            _entry(
                title="北陸新幹線の敦賀延伸から一年、利用者は想定を上回る",
                summary="北陸新幹線の金沢―敦賀間が開業して一年がたち、JR西日本は利用者数が開業前の"
                "想定を約二割上回ったと発表した。観光客の増加が沿線の経済を支えている。",
                content=None,
            ),
            Extracted(
                "当サイトでは、お客様の体験を向上させるためにCookieを使用しています。"
                "「同意する」を選択すると、Cookieの使用に同意したものとみなされます。",
                PageMetadata(title="続行する前に"),
            ),
            Extracted(
                "北陸新幹線の金沢―敦賀間が開業して一年がたった。JR西日本は利用者数が開業前の"
                "想定を約二割上回ったと発表した。",
                PageMetadata(title="開業一年、沿線に観光客 | 地域ニュース"),
            ),
            id="ja",
        ),
        pytest.param(
            _entry(
                title="เงินเฟ้อเดือนพฤษภาคมเพิ่มขึ้นร้อยละหนึ่งจุดห้า",
                summary=THAI_STORY.split("\n\n")[0],
                content=None,
            ),
            Extracted(
                "เราและพันธมิตรใช้คุกกี้เพื่อให้บริการ วัดผลการเข้าชม และแสดงโฆษณาที่ตรงกับความสนใจ"
                "ของคุณ เลือกยอมรับทั้งหมดเพื่อให้ความยินยอม",
                PageMetadata(title="ก่อนดำเนินการต่อ"),
            ),
            Extracted(THAI_STORY, PageMetadata(title="พาณิชย์ชี้ราคาพลังงานดันดัชนีผู้บริโภค")),
            id="th",
        ),
        pytest.param(
            _entry(
                title="តម្លៃប្រេងឥន្ធនៈនឹងធ្លាក់ចុះនៅសប្តាហ៍ក្រោយ",
                summary=KHMER_STORY,
                content=None,
            ),
            Extracted(
                "យើងប្រើខូគីដើម្បីផ្តល់សេវាកម្ម និងវាស់វែងចរាចរណ៍ សូមជ្រើសរើសទទួលយកទាំងអស់ដើម្បីយល់ព្រម",
                PageMetadata(title="មុនពេលបន្ត"),
            ),
            Extracted(KHMER_STORY, PageMetadata(title="ក្រសួងពាណិជ្ជកម្ម៖ ប្រេងថោកជាងមុន")),
            id="km",
        ),
    ],
)
def test_a_consent_wall_is_another_page_than_an_unspaced_entry_s_article(
    entry: ParsedEntry, wall: Extracted, article: Extracted
) -> None:
    """Chinese, Japanese, Thai and Khmer put no spaces between words, whose words are their
    characters (`ingest.coverage.words`): two Chinese or Japanese characters in a row are a key
    word, and four Thai or Khmer letters (with their signs) in a row, so the entry has key words
    and a consent wall titled otherwise is judged another page. Its article, titled otherwise
    but showing the entry's words, is not; titled alike (the site's name added), it is not
    either."""
    assert another_page(entry, wall)
    assert not another_page(entry, article)
    assert titled_alike(entry.title, f"{entry.title}_新华网")


def wall_titled(title: str) -> Extracted:
    return Extracted(text=CONSENT_TEXT, metadata=PageMetadata(title=title))


def test_a_page_titled_otherwise_that_shows_the_entry_s_words_is_its_article() -> None:
    """A page whose title was rewritten is the article where it shows SHOWN of the entry's key
    words, rewritten as the summary may be."""
    key = sorted({w for w in FEED_SUMMARY.casefold().replace(",", "").replace(".", "").split()
                  if len(w) >= 4})  # fmt: skip
    assert len(key) >= KEY_WORDS
    shown = key[: math.ceil(SHOWN * len(key))]
    entry = _entry(content=None)
    page = Extracted(text=" ".join(shown), metadata=PageMetadata(title="Before you continue"))
    assert not another_page(entry, page)
    fewer = Extracted(text=" ".join(shown[:-1]), metadata=page.metadata)
    assert another_page(entry, fewer)


def test_a_page_naming_the_entry_s_link_as_canonical_is_its_article() -> None:
    """A page whose canonical address is the entry's link (relative, or with tracking
    parameters on either side) says it is the entry's article, titled and worded as it may
    be; one naming another address, or none, is judged by its title and words."""
    entry = _entry(link="https://www.example.com/news/story?utm_source=rss")
    for named in ("https://www.example.com/news/story", "/news/story", "story?utm_medium=x"):
        page = Extracted(
            text=CONSENT_TEXT,
            metadata=PageMetadata(title="Before you continue", canonical_url=named),
        )
        assert names_entry(entry, page)
        assert not another_page(entry, page)
    for named in (None, "https://consent.example.net/", "/", "mailto:x@example.com"):
        page = Extracted(
            text=CONSENT_TEXT,
            metadata=PageMetadata(title="Before you continue", canonical_url=named),
        )
        assert not names_entry(entry, page)
        assert another_page(entry, page)
    assert not names_entry(_entry(link=None), wall_titled("Before you continue"))


def test_a_relative_canonical_is_read_against_the_address_the_page_was_served_at() -> None:
    """A consent wall reached by a redirect whose canonical is relative (`#`, `?`, a path)
    names its own address, not the entry's link: it is still another page. The same page
    served at the entry's link names the entry."""
    entry = _entry(link="https://www.example.com/news/story")
    for named in ("#", "#main", "?", "?utm_source=x", "", "/news/story"):
        wall = Extracted(
            text=CONSENT_TEXT,
            metadata=PageMetadata(title="Before you continue", canonical_url=named or None),
        )
        redirected = PageOutcome("https://consent.example.net/news/story2?s=1", wall, None, False)
        assert page_for(entry, redirected) is OTHER_PAGE_OUTCOME, named
        if named:
            at_link = PageOutcome("https://www.example.com/news/story", wall, None, False)
            assert page_for(entry, at_link) is at_link, named


@pytest.mark.parametrize(
    ("page_title", "site_name"),
    [("Example", None), ("www.example.com", None), ("The Daily Courier", "The Daily Courier")],
)
def test_a_page_title_that_is_only_the_site_s_name_is_no_title(
    page_title: str, site_name: str | None
) -> None:
    """An entry without a title on a page titled only with the site's name (its host, the
    host's first label, its og:site_name) is stored without a title, not as the site."""
    page = _page(title=page_title, site_name=site_name)
    assert _build(_entry(title=None), page).title is None
    assert _build(_entry(title=None), _page(title="Example hires an editor")).title == (
        "Example hires an editor"
    )


@pytest.mark.parametrize(
    ("text", "copies"),
    [
        ("Comments", False),
        (" ".join(f"w{i}" for i in range(9)), False),
        (" ".join(f"w{i}" for i in range(9)) + " \n\u3000", False),
        ("\n " + " ".join(f"w{i}" for i in range(10)), True),
        ("\n\n".join(f"w{i}" for i in range(10)) + "\n", True),
        (PAGE_TEXT, True),
    ],
)
def test_a_text_says_which_story_it_is_from_ten_words(text: str, copies: bool) -> None:
    """`copies_by_text` counts words (`ingest.coverage.words`) up to EXACT_MIN_WORDS, whatever
    the whitespace around and between them."""
    article = _build(_entry(content=None, summary=None), dataclasses.replace(_page(), text=text))
    assert article.text.split()[:10] == text.split()[:10]
    assert article.copies_by_text is copies


def test_a_chinese_article_found_by_a_backfill_is_an_article() -> None:
    """A page of a sitemap holding a Chinese story of three paragraphs (268 characters, the
    length of a wire brief) is an article: each Chinese or Japanese character is a word
    (`ingest.coverage.words`), as for the copies of a story, not the text's three runs
    between spaces. A page of a few characters (a tag page's) is still too little text."""
    story = (
        "新华社北京6月2日电 国家统计局今天发布数据显示，今年5月份全国规模以上工业增加值同比"
        "增长百分之五点六，比上月加快零点三个百分点。从环比看，5月份规模以上工业增加值比上月增长"
        "零点四七个百分点。\n\n分三大门类看，5月份采矿业增加值同比增长百分之三点一，制造业增长百分"
        "之六点零，电力、热力、燃气及水生产和供应业增长百分之四点三。\n\n国家统计局新闻发言人表示，"
        "当前外部环境依然复杂严峻，国内需求仍显不足，经济回升向好的基础还需巩固。"
    )
    dated = _entry(published_at=NOW - timedelta(hours=3))
    meta = PageMetadata(title="5月份工业增加值同比增长5.6%")
    assert not_an_article(Extracted(text=story, metadata=meta), dated) is None
    tag_page = Extracted(text="标签：经济\n\n统计局 工业", metadata=meta)
    assert not_an_article(tag_page, dated) == "not an article: too little text"
