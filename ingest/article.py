"""Assemble one normalized `Article` from what the feed entry and the page say. Pure.

Precedence, field by field (first non-empty wins):
    title         feed entry > page (JSON-LD headline > og:title > trafilatura), unless the
                  page's is only the site's name
    author(s)     feed entry when it names a person > page (JSON-LD author > meta author >
                  byline shown > trafilatura); split into people by `ingest.byline.authors`
                  (never the site's own name), `author` is their ", "-joined form
    tags          feed categories, then the page's `article:tag` and JSON-LD keywords
    published_at  feed entry, published then updated > page (JSON-LD datePublished >
                  article:published_time > trafilatura's date) > first seen;
                  published_source says which. A feed date without a time of day gives
                  way to the page's time of that day (`_timed_that_day`), and one hours
                  ahead of the moment first seen to the page's time before it (`_ahead`)
    updated_at    feed entry > page; neither date counts when more than a day ahead of now,
                  nor before 1991 (a placeholder: `normalize.plausible_date`), nor before the
                  publication time the feed or page gives; nor the feed's when ahead of the
                  moment first seen where its publication time gave way for that (`_ahead`)
    text          page extraction > feed content > feed summary (text_source says which);
                  a full-text feed's content first (extraction_error then NULL)
    language      detected from the text; `<html lang>`/feed language only when the text is short
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Final
from urllib.parse import urljoin

from ingest.byline import authors, joined, not_only_site_name
from ingest.coverage import UNSPACED_RUNS, has_words, words
from ingest.neardup import fingerprint
from ingest.normalize import (
    canonical_url,
    choose_url,
    clean_inline,
    clean_text,
    clean_url,
    content_hash,
    detect_language,
    plausible_date,
    site_of,
    unique_tags,
    without_user_info,
)
from ingest.types import Article, DateSource, Extracted, OwnText, ParsedEntry, TextSource


def build_article(
    entry: ParsedEntry,
    *,
    entry_url: str,
    final_url: str | None,
    extracted: Extracted | None,
    extraction_error: str | None,
    now: datetime,
    text_from_feed: bool = False,
    own: OwnText | None = None,
) -> Article:
    """`entry_url` is the entry link as found in the feed; `final_url` where the page fetch ended
    after redirects (None when the page was not fetched). With `text_from_feed` (a full-text
    feed, see `ingest.fulltext`) the text is the entry's own even beside an extracted page,
    whose metadata still fills what the entry lacks. `own` is the entry's content measured
    already (`ingest.fulltext.own_text`), so that an article stored from it (a full-text feed,
    or a page that gave nothing) does not have its language and fingerprint computed again."""
    meta = extracted.metadata if extracted else None
    page_url = final_url or entry_url
    # The URLs stored (and shown by news.articles) never carry a user-info: a credential, which
    # a link of a private feed, a redirect or a page's canonical may be written with. The forms
    # written with it stay aliases (hashes that find the article, shown nowhere).
    written = choose_url(page_url, meta.canonical_url if meta else None)
    url = without_user_info(written)
    aliases = {written, canonical_url(entry_url), canonical_url(page_url)} - {url}

    text_source: TextSource
    if extracted is not None and not text_from_feed:
        text, text_source = extracted.text, "page"
        own = None
    elif own is not None and own.text:
        # The entry's content, measured: what the line below gives (content first).
        text, text_source = own.text, "feed"
    else:
        text, text_source = clean_text(entry.content or entry.summary or ""), "feed"
        own = None

    published: datetime
    published_source: DateSource
    # RSS 1.0 carries its only date in dc:date, which feedparser reports as "updated". A date
    # more than a day ahead of now is a typo or a trick (year 9999 would pin the article to
    # the top of every "latest" list): it is not a publication date (`plausible_date`).
    feed_date = plausible_date(entry.published_at or entry.updated_at, now)
    page_date = plausible_date(meta.published_at if meta is not None else None, now)
    page_timed = meta is not None and meta.published_has_time
    feed_ahead = page_timed and feed_date is not None and _ahead(feed_date, page_date, now)
    if feed_date is not None and not (
        page_timed and (_timed_that_day(feed_date, page_date) or feed_ahead)
    ):
        published, published_source = feed_date, "feed"
    elif page_date is not None:
        published, published_source = page_date, "page"
    else:
        published, published_source = now, "first_seen"

    # Nor a modified time, by the same rule, nor one before the publication time the feed or
    # the page gives (a feed's date without a time of day, an RSS 1.0 dc:date that is both, gave
    # way to the page's time of that day), nor the feed's where its publication time gave way
    # for being ahead and it is too (written in the same zone read wrongly): the page's is used
    # instead, else none.
    entry_updated = plausible_date(entry.updated_at, now)
    if feed_ahead and entry_updated is not None and entry_updated > now + CLOCK_SKEW:
        entry_updated = None
    modified = (entry_updated, plausible_date(meta.updated_at if meta else None, now))
    updated = next(
        (
            when
            for when in modified
            if when is not None and (published_source == "first_seen" or when >= published)
        ),
        None,
    )
    # The page's language is its extraction's: an article stored from its feed's text has
    # that text's (the extraction may begin with another story's teaser in another language).
    if meta and meta.language and text_source == "page":
        language: str | None = meta.language
    elif own is not None:  # the text is the measured one
        language = own.language
    else:
        language = detect_language(text, hint=entry.language)
    # What the worker measured of the stored text (its fingerprint and hash), if it did.
    measured: Extracted | OwnText | None = extracted if text_source == "page" else own
    summary = clean_inline(entry.summary, max_length=5000) or (meta.description if meta else None)
    # The feed's byline when it names a person, else the page's people: the site's own name is
    # never an author, not even where nobody else is named.
    site = site_of(url)
    sites = (site, *((meta.site_name,) if meta and meta.site_name else ()))
    people = authors(entry.author, site_names=sites)
    if not people and meta is not None:
        people = meta.authors or authors(meta.author, site_names=sites)
    byline, people = joined(people)
    return Article(
        url=url,
        original_url=without_user_info(entry_url),
        title=clean_inline(entry.title) or not_only_site_name(meta.title if meta else None, sites),
        text=text,
        author=byline or None,
        authors=people,
        tags=unique_tags([*entry.tags, *(meta.tags if meta else ())]),
        published_at=published,
        published_source=published_source,
        updated_at=updated,
        language=language,
        site=site,
        image_url=_without_user_info(
            clean_url(entry.image_url) or (meta.image_url if meta else None)
        ),
        summary=summary,
        content_hash=(
            measured.content_hash
            if measured is not None and measured.content_hash
            else content_hash(text)
        ),
        text_source=text_source,
        extraction_error=extraction_error,
        guid=entry.guid,
        fetched_at=now,
        aliases=tuple(sorted(aliases)),
        fingerprint=measured.fingerprint if measured is not None else fingerprint(text),
    )


def _without_user_info(url: str | None) -> str | None:
    return without_user_info(url) if url is not None else None


def _timed_that_day(feed_date: datetime, page_date: datetime | None) -> bool:
    """Whether a feed's date is a day without a time of day that the page's date (with one)
    falls on: the feed's at midnight UTC, as feedparser and the sitemap reader give a date
    written without a time (`<dc:date>2025-08-11</dc:date>`, a news sitemap's
    `publication_date`), and the page's within a day of it either way (that day in the page's
    own zone is the day before or after in UTC). The page's time then dates the article: the
    feed's day says nothing the page does not, and the time of day would be lost."""
    return (
        page_date is not None
        and feed_date.time() == time(0)
        and abs((page_date.date() - feed_date.date()).days) <= 1
    )


CLOCK_SKEW = timedelta(minutes=10)
"""How far ahead of this machine's clock another's may run: a date that much ahead of the
moment an article is first seen may still be its publication time."""


def _ahead(feed_date: datetime, page_date: datetime | None, now: datetime) -> bool:
    """Whether a feed's date is ahead of `now`, the moment the article is first seen, by more
    than two clocks differ (`CLOCK_SKEW`), and the page's (with a time of day) is not: the
    feed's zone read wrongly (a local time written as UTC, or without its zone, east of
    Greenwich), hours into the future, which no publication time is. The page's time then
    dates the article; a date less than a day ahead is otherwise kept (`plausible_date`)."""
    return page_date is not None and feed_date > now + CLOCK_SKEW and page_date <= now + CLOCK_SKEW


NOT_ARTICLE_WORDS = 50
"""Fewer words than this on a page found by a backfill: a contact or a tag page. Words are
`ingest.coverage.words` (each Chinese or Japanese character one, and each Thai, Lao, Khmer,
Myanmar, Tibetan, Javanese or Balinese letter with its signs: those scripts put no spaces
between words)."""


def not_an_article(extracted: Extracted | None, entry: ParsedEntry) -> str | None:
    """Why a page a backfill found in a sitemap or a URL list (where a site's about, contact
    and tag pages sit beside its stories) is not an article, or None when it may be one: it
    says it is something else (`og:type` website, profile, ..., and no JSON-LD article), it is
    dated nowhere (neither on the page nor in its sitemap entry), or it holds fewer than
    `NOT_ARTICLE_WORDS` words. A page that could not be extracted is judged elsewhere."""
    if extracted is None:
        return None
    meta = extracted.metadata
    if meta.page_type not in (None, "article"):
        return f"not an article: the page says it is a {meta.page_type}"
    if meta.published_at is None and entry.published_at is None:
        return "not an article: dated nowhere"
    if not has_words(extracted.text, NOT_ARTICLE_WORDS):
        return "not an article: too little text"
    return None


OTHER_PAGE: Final = "the page shares next to nothing with the entry's own text"
"""The extraction error of an entry stored from its own text because its page is not its
article at all (`another_page`, `ingest.fulltext.other_page`)."""

TITLED_ALIKE: Final = 0.5
"""Share of the shorter title's words the other must hold for a page to be titled as its entry
(`titled_alike`): either title may add the site's name or a section, or drop a word."""
KEY_LETTERS: Final = 4
KEY_WORDS: Final = 5
KEY_CHARACTERS: Final = 2
"""Chinese or Japanese characters in a row that make a key word (`key_words`): most words of
those scripts are two characters, and one alone is as often a particle or a suffix."""


def key_words(text: str | None) -> set[str]:
    """The distinct words of KEY_LETTERS letters or more of `text`; where it is written in a
    script that puts no spaces between words, whose words are a character or a letter each
    (`ingest.coverage.words`), every KEY_CHARACTERS Chinese or Japanese characters in a row and
    every KEY_LETTERS Thai, Lao, Khmer, Myanmar, Tibetan, Javanese or Balinese letters (with
    their signs) in a row, so that a story in those scripts has key words as one in a spaced
    script has."""
    text = (text or "").casefold()
    keys = {w for w in words(text) if len(w) >= KEY_LETTERS}
    for run in UNSPACED_RUNS.finditer(text):
        letters = words(run[0])
        n = KEY_CHARACTERS if run["han"] else KEY_LETTERS
        keys.update("".join(letters[i : i + n]) for i in range(len(letters) - n + 1))
    return keys


def titled_alike(entry_title: str | None, page_title: str | None) -> bool:
    """Whether a page's title is the entry's: TITLED_ALIKE of the shorter one's key words
    (`key_words`: of KEY_LETTERS letters or more) are in the other, or either has none (then
    nothing tells them apart). A consent or paywall interstitial, an error page and a home
    page are titled otherwise; shorter words ("the", "of") tell nothing: a home page titled
    "The Daily" would be titled as a quarter of English headlines."""
    asked, shown = _title_key_words(entry_title), _title_key_words(page_title)
    if not asked or not shown:
        return True
    return len(asked & shown) >= TITLED_ALIKE * min(len(asked), len(shown))


_KEPT_TITLE: Final = 1000
"""Characters of the longest title whose key words `_title_key_words` keeps."""


def _title_key_words(title: str | None) -> frozenset[str]:
    """`key_words` of a title, kept for the next comparison of the same title (of titles up to
    _KEPT_TITLE characters, the last 1,024): the writer compares a new article's title with
    those of its near-copy candidates, up to 200 of its site, and the next article of the site
    with most of the same (`ingest.store.articles`)."""
    if title is not None and len(title) > _KEPT_TITLE:
        return frozenset(key_words(title))
    return _kept_title_key_words(title)


@lru_cache(maxsize=1024)
def _kept_title_key_words(title: str | None) -> frozenset[str]:
    return frozenset(key_words(title))


SHOWN: Final = 0.2
"""Share of an entry's key words a page's text must show to be taken for its article when the
two are titled otherwise (`another_page`). Set on the development half of the corpora, each
page's description standing for an entry's summary and its title for the entry's
(`bench/fulltext_bench.py`): no page was taken for another at 0.2 (nor at 0.25 once titles
are told apart by their words of KEY_LETTERS letters or more; one of 495 before), and 64-88 %
of pages of other sites were (71-93 % at 0.25)."""


def another_page(entry: ParsedEntry, extracted: Extracted, page_url: str | None = None) -> bool:
    """Whether a page served for an entry is not its article at all: it does not name the
    entry's link as its canonical address (`names_entry`), it is titled otherwise
    (`titled_alike`), and its text shows under SHOWN of the entry's key words (`key_words`:
    the distinct words of KEY_LETTERS letters or more) of its own text, content else summary
    (rewritten as a summary may be, its names and nouns are the article's), where it has
    KEY_WORDS of them or more. A consent wall, an error page served as a success, a redirect
    to the home page: the entry is stored from its own text instead, OTHER_PAGE its
    extraction error, as a page that gave nothing usable. An entry without a title or key
    words is never judged so. `page_url` is where the page was served (after redirects), when
    known."""
    # Cheapest and most often decisive first: nearly every page is titled as its entry, and
    # this is asked of every page stored, in the main process.
    return (
        not titled_alike(entry.title, extracted.metadata.title)
        and shows_little(entry, extracted.text)
        and not names_entry(entry, extracted, page_url)
    )


def names_entry(entry: ParsedEntry, extracted: Extracted, page_url: str | None = None) -> bool:
    """Whether a page gives the entry's link as its canonical address (resolved against the
    address the page was served at, `page_url`, else the entry's link; both in canonical
    form): it says it is the entry's article, whatever its title (a headline rewritten for the
    feed) and words (`another_page`). A consent wall or a home page reached by a redirect names
    its own address, or none; a relative one (`#`, `?`) is its own too."""
    link, named = entry.link, extracted.metadata.canonical_url
    if not link or not named:
        return False
    try:
        return canonical_url(urljoin(page_url or link, named)) == canonical_url(link)
    except ValueError:
        return False


def shows_little(entry: ParsedEntry, text: str) -> bool:
    """Whether a page's text shows under SHOWN of the entry's key words, where the entry has
    KEY_WORDS of them or more (`another_page`, which asks it of pages titled otherwise)."""
    key = key_words(entry.content or entry.summary)
    return len(key) >= KEY_WORDS and len(key & key_words(text)) < SHOWN * len(key)
