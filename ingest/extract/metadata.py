"""What a page says about its article: headline, byline, times, tags, image, site name and
language, from JSON-LD, meta tags, the page's own markup and, for what they leave out,
trafilatura's guesses. Pure; runs in the worker processes beside `ingest.extract.page`."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from htmldate import find_date
from lxml import etree, html
from lxml.etree import _Element
from trafilatura.metadata import extract_author, extract_sitename, extract_title

from ingest.byline import PREFIX, authors, is_site_name, joined, not_only_site_name
from ingest.coverage import headline_within
from ingest.extract.clean import tokens
from ingest.extract.vocabulary import COMMENT_TOKENS
from ingest.normalize import (
    absolute_http_url,
    canonical_url,
    clean_inline,
    clean_url,
    colon_time,
    hour_of_day,
    rfc2822_date,
    site_of,
    spelled_date,
    to_utc,
    unique_tags,
    written_date,
    zone_offset,
)
from ingest.types import PageMetadata

# How deep JSON-LD values are read: lists in lists, `@graph`s in lists. JSON nested hundreds of
# levels deep is valid and parsed; read further, it would exhaust the stack.
_LD_DEPTH = 4
_ARTICLE_TYPES = {
    "Article",
    "NewsArticle",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "BlogPosting",
    "LiveBlogPosting",
    "Report",
}


def _guessed_metadata(
    tree: _Element, url: str, *, title: bool, author: bool, date: bool, site_name: bool
) -> PageMetadata:
    """trafilatura's guesses for the fields asked for, and only those: its date guess
    (htmldate) alone costs about as much as a text extraction."""
    found_date = None
    if date:
        found_date = find_date(tree, original_date=True, extensive_search=False, url=url)
    return PageMetadata(
        title=clean_inline(extract_title(tree)) if title else None,
        author=clean_inline(extract_author(tree), max_length=1000) if author else None,
        published_at=_parse_date(found_date),
        published_has_time=False,
        site_name=clean_inline(extract_sitename(tree)) if site_name else None,
    )


def _with_author(
    meta: PageMetadata, author: str | None, people: tuple[str, ...] | None = None
) -> PageMetadata:
    fields = {name: getattr(meta, name) for name in PageMetadata.__slots__}
    fields["author"] = author
    if people is not None:
        fields["authors"] = people
    return PageMetadata(**fields)


_BYLINE_TOKENS = frozenset(
    {
        "author",
        "authors",
        "autor",
        "auteur",
        "byline",
        "byl",
        "writer",
        "reporter",
        "contributor",
        "verfasser",
    }
)


_MARKED_BY = etree.XPath('//body//@rel[.="author"] | //body//@itemprop[.="author"]')


def _marked(tree: _Element) -> list[_Element]:
    """The elements marked up as a byline: a rel="author" link, an itemprop="author", in
    document order (found by their attributes, a third of the time a test of every element's
    takes)."""
    return list(dict.fromkeys(attribute.getparent() for attribute in _MARKED_BY(tree)))


def site_names_of(structured: PageMetadata, url: str) -> tuple[str, ...]:
    """The names a page's site goes by (its og:site_name or publisher, its host): a byline or
    a title affix that is one of them names no person, no headline. A name the page's JSON-LD
    gives to a Person who wrote it is no site's name (a personal blog named after its author)."""
    names = tuple(filter(None, (structured.site_name, site_of(url))))
    if not structured.persons:
        return names
    persons = {p.casefold() for p in structured.persons}
    return tuple(n for n in names if n.casefold() not in persons)


def page_titles(
    tree: _Element,
    ld: dict[str, Any],
    site_names: tuple[str, ...],
    meta: dict[str, str] | None = None,
) -> tuple[str, ...]:
    """The titles a page gives its own story, each once and without the site's name around it
    (`strip_site_affixes`): its JSON-LD headline, its social and SEO titles (`_TITLE_KEYS`) and
    its <title>. `preclean` tells the story from the next ones an infinite scroll appends by
    them. `meta` is the page's `meta_tags`, when they were read already."""
    meta = meta_tags(tree) if meta is None else meta
    found = (_str(ld.get("headline")), *map(meta.get, _TITLE_KEYS), tree.findtext(".//title"))
    titles = (_plain(clean_inline(title)) for title in found)
    return tuple(dict.fromkeys(strip_site_affixes(t, site_names) for t in titles if t))


def marked_byline(
    tree: _Element, site_names: tuple[str, ...], people: tuple[str, ...]
) -> str | None:
    """The byline the page marks up as one (`_marked`) outside its comment threads, read
    before the page is cleaned: `preclean` removes many a byline with the aside, the share
    bar or the author box around it. The last resort before trafilatura's guess
    (`complete_metadata`); a commenter's profile link is marked up the same way, hence the
    threads left out (the words `preclean` drops them by). Not looked for (a walk of the whole
    page) where the structured byline names `people` (`structured_people`), who come first.
    `site_names` are the page's (`site_names_of`)."""
    if people:
        return None
    return _first_byline((el for el in _marked(tree) if not _in_comments(el)), site_names)


def _in_comments(el: _Element) -> bool:
    return any(not COMMENT_TOKENS.isdisjoint(tokens(_names_of(a))) for a in el.iterancestors())


def _dom_byline(tree: _Element, site_names: tuple[str, ...]) -> str | None:
    """The byline as the page shows it, once comments are gone (see preclean): a
    rel="author" link, an itemprop="author", or an element whose class/id names it."""
    candidates = [
        *_marked(tree),
        *(
            el
            for el in _byline_hinted(tree)
            if el.tag not in ("html", "body", "meta", "link") and _names_byline(_names_of(el))
        ),
    ]
    return _first_byline(candidates, site_names)


def _first_byline(candidates: Iterable[_Element], site_names: tuple[str, ...]) -> str | None:
    """The first candidate's text that names a person (`authors`)."""
    for el in candidates:
        # The name is the first piece of text ("Priya Raman" of "Priya Raman / Political
        # correspondent"), with a lone "By" joined to what follows it.
        chunks = [c.strip() for c in el.itertext() if c.strip()]
        if not chunks:
            continue
        text = chunks[0]
        if len(chunks) > 1 and PREFIX.match(text + " ") and len(text) <= 6:
            text = f"{text} {chunks[1]}"
        if authors(text, site_names=site_names):
            return str(text)
    return None


# A cheap look at the names before splitting them into words: most elements have none of
# these letters in a row, and every byline word holds one of them.
_BYLINE_HINT = re.compile(r"aut|byl|writ|report|contrib|verfass", re.IGNORECASE)
# The name attributes of an element and of everything in it, read by libxml2 in document order:
# faster than asking every element for its four (a hint cannot span two names, which are joined
# by spaces).
_NAMES = ("class", "id", "data-testid", "data-component")
_NAME_VALUES = etree.XPath(" | ".join(f"descendant-or-self::*/@{name}" for name in _NAMES))


def _byline_hinted(tree: _Element) -> list[_Element]:
    """The elements, in document order, whose names hold a hint (`_BYLINE_HINT`)."""
    search = _BYLINE_HINT.search
    hinted = (value.getparent() for value in _NAME_VALUES(tree) if search(value))
    return list(dict.fromkeys(hinted))


def _names_of(el: _Element) -> str:
    """What an element's class, id, data-testid and data-component attributes call it."""
    names = (el.get("class"), el.get("id"), el.get("data-testid"), el.get("data-component"))
    return " ".join(filter(None, names))


def _names_byline(names: str) -> bool:
    return bool(_BYLINE_HINT.search(names)) and any(t in _BYLINE_TOKENS for t in tokens(names))


def _merge(first: PageMetadata, second: PageMetadata) -> PageMetadata:
    """Field by field, the first non-empty value wins."""
    fields = {}
    for name in PageMetadata.__slots__:
        a, b = getattr(first, name), getattr(second, name)
        fields[name] = a if a not in (None, "") else b
    if first.published_at is None:
        fields["published_has_time"] = second.published_has_time
    return PageMetadata(**fields)


def with_language(meta: PageMetadata, language: str | None) -> PageMetadata:
    fields = {name: getattr(meta, name) for name in PageMetadata.__slots__}
    fields["language"] = language
    return PageMetadata(**fields)


def structured_people(structured: PageMetadata, site_names: tuple[str, ...]) -> tuple[str, ...]:
    """The people the structured byline names (`authors`); none where it names only the site
    (`site_names`, `site_names_of`), a label or an id."""
    return authors(structured.author, site_names=site_names)


def complete_metadata(
    tree: _Element,
    structured: PageMetadata,
    url: str,
    marked: str | None = None,
    people: tuple[str, ...] | None = None,
) -> PageMetadata:
    """`structured` (read before cleaning) completed from the cleaned page: the byline it
    shows, then the one `marked` up as such before cleaning (`marked_byline`), then
    trafilatura's guesses for what is still missing; the byline split into people.
    `people` are the structured byline's (`structured_people`), when they were read already."""
    site_names = site_names_of(structured, url)
    # The structured byline unless it names no person (only the site, a label, an id), then
    # the byline the page shows, then the one it marked up, then trafilatura's guess.
    if people is None:
        people = structured_people(structured, site_names)
    if not people:
        people = authors(_dom_byline(tree, site_names), site_names=site_names)
    if not people:
        people = authors(marked, site_names=site_names)
    meta = structured
    if not (structured.title and people and structured.published_at):
        # trafilatura's own metadata guesses (htmldate above all) cost about as much as the
        # text extraction itself: only pay for them when the structured data falls short.
        guessed = _guessed_metadata(
            tree,
            url,
            title=not structured.title,
            author=not people,
            date=structured.published_at is None,
            site_name=not structured.site_name,
        )
        meta = _merge(structured, guessed)
        people = people or authors(guessed.author, site_names=site_names)
    byline, people = joined(people)
    return _with_author(meta, byline or None, people)


def structured_metadata(
    tree: _Element, ld: dict[str, Any], url: str, meta: dict[str, str] | None = None
) -> PageMetadata:
    """JSON-LD first, then meta tags; each field from the first source that has it. Read
    before the page is cleaned. `meta` is the page's `meta_tags`, when they were read
    already."""
    site_names = (site_of(url),)
    meta = meta_tags(tree) if meta is None else meta
    published_raws = [
        _str(ld.get("datePublished")),
        *(meta.get(key) for key in _PUBLISHED_KEYS),
        _article_time(tree),
    ]
    published, has_time = choose_published(
        published_raws, [_str(ld.get("dateModified")), meta.get("article:modified_time")]
    )
    # Relative addresses resolve against the page's `<base href>`, as a browser resolves them.
    base = _document_base(tree, url)
    canonical = _canonical_link(tree)
    if canonical is not None:
        canonical = absolute_http_url(canonical, base) or canonical
    # An XHTML page may name its language in `xml:lang` alone.
    lang = (
        tree.get("lang")
        or tree.get("xml:lang")
        or meta.get("og:locale")
        or meta.get("content-language")
    )
    # A one-line field written with its markup (`<em>Pier</em> extended`, a byline linking its
    # author's page) is its text, as a description is.
    site_name = _plain(clean_inline(meta.get("og:site_name") or _ld_publisher(ld.get("publisher"))))
    titles = [meta.get(key) for key in _TITLE_KEYS]
    headline = _str(ld.get("headline"))
    title = _plain(clean_inline(headline or next(filter(None, titles), None)))
    # Other titles of the page's own, to weigh a JSON-LD headline against (`_headline`).
    others = [*titles, tree.findtext(".//title")] if headline else []
    meta_author = next(
        (v for v in map(meta.get, _AUTHOR_KEYS) if v and not v.startswith(("http:", "https:"))),
        None,
    )
    keywords = ld.get("keywords")
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    tags = unique_tags(
        [
            *(el.get("content") for el in tree.iterfind(".//meta[@property='article:tag']")),
            *(keywords if isinstance(keywords, list) else ()),
        ]
    )
    return PageMetadata(
        title=_headline(tree, title, tuple(filter(None, (site_name, *site_names))), others),
        author=_plain(clean_inline(_ld_author(ld.get("author")) or meta_author, max_length=1000)),
        published_at=published,
        published_has_time=has_time,
        updated_at=choose_published(
            [_str(ld.get("dateModified")), meta.get("article:modified_time")], published_raws
        )[0],
        canonical_url=clean_inline(canonical),
        image_url=_image([*_ld_images(ld.get("image")), meta.get("og:image")], base),
        description=_plain(clean_inline(meta.get("og:description") or meta.get("description"))),
        site_name=site_name,
        language=lang or None,
        tags=tags,
        page_type=_page_type(ld, meta.get("og:type")),
        persons=tuple(_ld_persons(ld.get("author"))),
    )


def _page_type(ld: dict[str, Any], og_type: str | None) -> str | None:
    kind = (og_type or "").strip().lower()
    if ld or kind.startswith("article"):
        return "article"
    return kind or None


def _headline(
    tree: _Element,
    title: str | None,
    site_names: tuple[str, ...],
    others: Sequence[str | None] = (),
) -> str | None:
    """The headline the page shows: its <h1> when the structured (social/SEO) title is that
    headline with a site name, a section or a kicker around it, or when most of the <h1>'s
    words are in that title, or in one of `others`, the page's own titles (og:title, <title>)
    beside a JSON-LD headline: where that headline is another text (Wikipedia's is a summary),
    the <h1> and a title of the page's own agree; otherwise the structured title without its
    site-name affixes ("Headline - Golem.de", "Site | Headline")."""
    h1 = next(tree.iter("h1"), None)
    heading = clean_inline(_line(h1)) if h1 is not None else None
    if heading and is_site_name(heading, site_names):
        heading = None
    if not heading:
        return strip_site_affixes(title, site_names) if title else None
    if not title:
        return heading
    stripped = strip_site_affixes(title, site_names)
    if headline_within(heading, stripped) or not not_only_site_name(stripped, site_names):
        return heading
    for other in others:
        cleaned = _plain(clean_inline(other))
        agrees = cleaned and headline_within(heading, strip_site_affixes(cleaned, site_names))
        if agrees and cleaned != title:
            return heading
    return stripped


def _line(el: _Element) -> str:
    """An element's text as one line: inline markup joined as written (`Story of <em>Metroid
    </em>, One` has no space before the comma), a line break or a block a space."""
    parts: list[str] = [el.text or ""]
    for child in el:
        if child.tag in ("br", "p", "div"):
            parts.append(" ")
        if isinstance(child.tag, str):
            parts.append(_line(child))
        parts.append(child.tail or "")
    return "".join(parts)


_MARKUP = re.compile(r"</[a-z][a-z0-9]*\s*>|<br\s*/?>", re.IGNORECASE)


def _plain(value: str | None) -> str | None:
    """A one-line field written with its HTML markup (a closing tag or a line break shows it:
    `<p>The council <b>passed</b> …</p>`, escaped or not) as its text, blocks a space apart."""
    if not value or not _MARKUP.search(value):
        return value
    try:
        fragment = html.fragment_fromstring(value, create_parent="div")
    except (etree.ParserError, ValueError):
        return value
    return clean_inline(_line(fragment))


_SUFFIX = re.compile(r"^(.*\S)\s+[|\-–—·•»:/]+\s+(\S.*)$")
_PREFIX_AFFIX = re.compile(r"^(.*?\S)\s+[|\-–—·•«:/]+\s+(\S.*)$")


def strip_site_affixes(title: str, site_names: tuple[str, ...]) -> str:
    """`Headline - Golem.de` -> `Headline`, `Golem.de | Headline` -> `Headline`, when the
    affix is one of the site's names (or its host, or the host's first label)."""
    for _ in range(2):
        m = _SUFFIX.match(title)
        if m and is_site_name(m.group(2), site_names):
            title = m.group(1)
            continue
        m = _PREFIX_AFFIX.match(title)
        if m and is_site_name(m.group(1), site_names):
            title = m.group(2)
            continue
        break
    return title


_TITLE_KEYS = ("og:title", "twitter:title", "parsely-title", "dc.title", "citation_title")
_AUTHOR_KEYS = (
    "author",
    "article:author",
    "parsely-author",
    "sailthru.author",
    "dc.creator",
    "dcterms.creator",
    "citation_author",
    "byl",
)
_PUBLISHED_KEYS = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.date",
    "parsely-pub-date",
    "sailthru.date",
    "pubdate",
    "publishdate",
    "publish-date",
    "article.published",
)
# A time of day: in ISO 8601's extended format or RFC 822 (`10:15`), or in the basic format
# (`20261205T1015Z`, `2026-12-05T1015+0100`), which only its `T` tells from a date.
_CLOCK = re.compile(r"\d:\d|\d[Tt]\d")
# The same in the other forms a page's date is read in (`normalize.written_date`): an hour
# before German's `Uhr` (`12 Uhr`), a Unix time.
_WRITTEN_CLOCK = re.compile(r"\d\s*(?i:uhr)\b|^\s*\d{10}(?:\d{3})?(?:\.\d+)?\s*$")


def _has_clock(raw: str) -> bool:
    """Whether a date gives a time of day (`_CLOCK`), one written with dots (`2025-08-11
    12.30`, read as `colon_time` writes it) or in `_WRITTEN_CLOCK`'s forms too."""
    if _CLOCK.search(raw) is not None:
        return True
    if "." in raw and _CLOCK.search(colon_time(raw)) is not None:
        return True
    return _WRITTEN_CLOCK.search(raw) is not None


def choose_published(
    candidates: Sequence[str | None], others: Sequence[str | None] = ()
) -> tuple[datetime | None, bool]:
    """The publication time from the page's candidate values (best first) as an aware UTC
    datetime, and whether it has a time of day. The first parseable candidate gives the day;
    when it has no time of day, a later candidate on that day (or the next or the one before:
    a UTC value of a late-evening story west of Greenwich, of a morning one east of it) that
    has one gives it. A time without an offset is read in the
    offset the page states on any of its times (`others`: modification times), else as UTC."""
    parsed = [(raw, when) for raw in candidates if raw and (when := _iso(raw)) is not None]
    if not parsed:
        return None, False
    offset = next(
        (
            when.tzinfo
            for raw in [*candidates, *others]
            if raw and _has_clock(raw) and (when := _iso(raw)) and when.tzinfo is not None
        ),
        None,
    )
    raw, chosen = parsed[0]
    if not _has_clock(raw):
        day = chosen.date()
        for other_raw, other in parsed[1:]:
            if _has_clock(other_raw) and abs((other.date() - day).days) <= 1:
                raw, chosen = other_raw, other
                break
    has_time = _has_clock(raw)
    if chosen.tzinfo is None and has_time and offset is not None:
        chosen = chosen.replace(tzinfo=offset)
    try:
        return to_utc(chosen), has_time
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return None, False


def _iso(value: str) -> datetime | None:
    """An ISO 8601 date or date-time as written (naive when it has no offset), else an RFC 822
    one (`Mon, 02 Jun 2025 08:15:00 +0200`, as some pages copy their feed's pubDate into
    JSON-LD or meta tags; naive without a zone; a short year read as RFC 2822 says); None when
    it is neither. Either may end with a zone's name that `ZONE_OFFSETS` knows (`2025-06-02
    08:15 HST`, `Jun 2, 2025 8:15 AM EDT`) and tell its time on a 12-hour clock: that time in
    that zone (a name the table does not know is none, as in feeds and sitemaps). A date
    written with its month's name, with or without a time (`June 2, 2025`, `2 June 2025`,
    `June 2, 2025 at 8:15 AM EDT`), is read by `spelled_date`: a day alone is its midnight.
    Any other form a feed's or a sitemap's date is read in (German's `12:30 Uhr`, a zone's
    name after an offset, `GMT+02:00` or a tz database zone after the time, its year last or
    first in digits, a Unix time) is read as they read it (`normalize.written_date`)."""
    text = value.strip()
    if text.endswith(("Z", "z")) and text[-2:-1].isdigit():  # UTC's designator, not a name's
        text = text[:-1] + "+00:00"
    try:
        iso = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        if iso.microsecond and not iso.minute and not iso.second and "." in text:
            # Python reads a time written with dots, `12.30`, as 12:00:00.3.
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(colon_time(text))
        return iso
    if (spelled := spelled_date(text)) is not None:
        return spelled
    zone = None
    if (named := _ZONE_NAME.search(text)) and (zone := zone_offset(named[1])) is not None:
        text = text[: named.start()]
    text = _TWELVE_HOUR.sub(_on_the_24_hour_clock, text)
    when: datetime | None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = rfc2822_date(text)
    if when is not None and zone is not None and when.tzinfo is None:
        return when.replace(tzinfo=zone)
    # The other forms feeds and sitemaps are read in, by the same rule; only where the page's
    # usual forms gave nothing.
    return when if when is not None else written_date(value)


# The zone's name a date-time ends with (`... 08:15 HST`), looked up in `ZONE_OFFSETS`.
_ZONE_NAME = re.compile(r"\s([A-Za-z]{2,5})\s*$")
# A time on the 12-hour clock: `8:15 PM`, `8:15:30 a.m.`, `12:05AM`.
_TWELVE_HOUR = re.compile(r"(?<!\d)(\d{1,2})(:\d{2}(?::\d{2})?)\s*([AaPp])\.?[Mm]\.?(?![A-Za-z])")


def _on_the_24_hour_clock(match: re.Match[str]) -> str:
    """`_TWELVE_HOUR`'s time on the 24-hour clock, its hour in two digits (ISO 8601 wants
    them); an hour that is not 1 to 12 is left as written."""
    hour = int(match[1])
    if not 1 <= hour <= 12:
        return match[0]
    return f"{hour_of_day(hour, match[3]):02d}{match[2]}"


def _article_time(tree: _Element) -> str | None:
    """The first <time datetime="..."> with a time of day inside the article (or the page)."""
    scopes = list(tree.iter("article")) or [tree]
    for scope in scopes[:1]:
        for el in scope.iter("time"):
            value = (el.get("datetime") or "").strip()
            if "T" in value or _has_clock(value):
                return value
    return None


def meta_tags(tree: _Element) -> dict[str, str]:
    """The page's <meta> values by their lower-cased property, name or itemprop (the first of
    each, blank ones left out)."""
    found: dict[str, str] = {}
    for el in tree.iterfind(".//meta"):
        key = (el.get("property") or el.get("name") or el.get("itemprop") or "").strip().lower()
        value = (el.get("content") or "").strip()
        if key and value and key not in found:
            found[key] = value
    return found


def json_ld_article(tree: _Element, url: str | None = None) -> dict[str, Any]:
    """The page's JSON-LD node of an article type, or {}. Of several (a story beside the
    related stories it lists, or beside a live blog), the first that names this page: by its
    `url`, `@id` or `mainEntityOfPage`, the page's address `url`, its canonical link or its
    `og:url`; else by its headline, the page's `og:title`, `twitter:title` or `<h1>`; else the
    first."""
    found: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for script in tree.iterfind(".//script[@type]"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(_without_cdata(script.text or ""))
        except (ValueError, RecursionError):
            continue
        nodes = list(_ld_nodes(data))
        for node in nodes:
            if _types(node) & _ARTICLE_TYPES:
                found.append((node, nodes))
    if not found:
        return {}
    node, nodes = found[0] if len(found) == 1 else _naming_this_page(found, tree, url)
    return _with_references(node, nodes)


# A script's text inside a CDATA section, as XHTML pages write it, bare or commented out for
# HTML parsers (`//<![CDATA[ ... //]]>`, `/*<![CDATA[*/ ... /*]]>*/`).
_CDATA = re.compile(
    r"^\s*(?://|/\*)?\s*<!\[CDATA\[(?:\s*\*/)?(.*?)(?://|/\*)?\s*\]\]>\s*(?:\*/)?\s*$", re.S
)


def _without_cdata(text: str) -> str:
    """`text` without the CDATA section around it, if any (`_CDATA`)."""
    if "<![CDATA[" not in text[:64]:
        return text
    match = _CDATA.match(text)
    return match.group(1) if match else text


# The article nodes of a page asked whether they name it: a page lists a few related stories,
# while one of thousands of nodes (megabytes of JSON-LD) would cost a second to compare.
_NAMING_CANDIDATES = 50


def _naming_this_page(
    found: list[tuple[dict[str, Any], list[dict[str, Any]]]], tree: _Element, url: str | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first of `found` (article nodes, each with the nodes of its script) that names the
    page (`json_ld_article`), of the first `_NAMING_CANDIDATES`; else the first."""
    meta = meta_tags(tree)
    # Relative addresses resolve against the page's `<base href>`, as its canonical link does.
    base = _document_base(tree, url or meta.get("og:url") or "")
    addresses = {
        _address(value, base)
        for value in (url, _canonical_link(tree), meta.get("og:url"))
        if isinstance(value, str)
    } - {None}
    if addresses:
        for candidate in found[:_NAMING_CANDIDATES]:
            node = candidate[0]
            named = [node.get("url"), node.get("@id"), node.get("mainEntityOfPage")]
            for value in named:
                if isinstance(value, dict):
                    value = value.get("@id") or value.get("url")
                if isinstance(value, list):
                    value = next(iter(value), None)
                if isinstance(value, str) and _address(value, base) in addresses:
                    return candidate
    h1 = next(tree.iter("h1"), None)
    headlines = {
        _folded(value)
        for value in (
            meta.get("og:title"),
            meta.get("twitter:title"),
            _line(h1) if h1 is not None else None,
        )
    } - {None}
    for candidate in found[:_NAMING_CANDIDATES]:
        if _folded(_str(candidate[0].get("headline"))) in headlines:
            return candidate
    return found[0]


def _address(value: str, base: str) -> str | None:
    """`value` resolved against `base`, in canonical form; None when it is no http(s) one."""
    try:
        return canonical_url(urljoin(base, value.strip()))
    except ValueError:
        return None


def _folded(value: str | None) -> str | None:
    text = clean_inline(value)
    return " ".join(text.split()).casefold() if text else None


def _document_base(tree: _Element, url: str) -> str:
    """The address a page's relative addresses resolve against (HTML's document base URL):
    its first `<base href>`, resolved against `url`, the page's address; `url` without one, or
    where it is no http(s) address. A site may write every address relative to its root
    (TYPO3's `config.baseURL`, an app's `<base href="/">`) on pages deep below it."""
    for element in tree.iterfind(".//base[@href]"):
        return absolute_http_url(element.get("href"), url) or url
    return url


def _canonical_link(tree: _Element) -> str | None:
    """The page's `<link rel="canonical">` address, as written; None when it has none."""
    for link in tree.iterfind(".//link[@rel]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            return (link.get("href") or "").strip() or None
    return None


def _with_references(node: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """`node` with its `author` and `publisher` references (`{"@id": ...}`, as Yoast SEO's
    `@graph` names the Person and the Organization given as nodes of their own) replaced by
    the nodes of that `@id` in the same script; a reference to none stays as it is."""
    by_id = {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str) and n is not node}
    if not by_id:
        return node

    def resolved(value: Any, depth: int = 0) -> Any:
        if isinstance(value, list):
            return [resolved(v, depth + 1) for v in value] if depth < _LD_DEPTH else []
        ref = value.get("@id") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref in by_id and "name" not in value:
            return by_id[ref]
        return value

    return {
        **node,
        **{key: resolved(node[key]) for key in ("author", "publisher") if key in node},
    }


def _types(node: dict[str, Any]) -> set[str]:
    """The type names of a JSON-LD node: its `@type`, a name or a list of them; anything else
    (a number, an object) names none."""
    types = node.get("@type")
    if isinstance(types, str):
        return {types}
    return {t for t in types if isinstance(t, str)} if isinstance(types, list) else set()


def _ld_nodes(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > _LD_DEPTH:
        return
    if isinstance(data, list):
        for item in data:
            yield from _ld_nodes(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        if "@graph" in data:
            yield from _ld_nodes(data["@graph"], depth + 1)


def _ld_author(value: Any, depth: int = 0) -> str | None:
    """Person names of a JSON-LD author (a string, an object, or a list of them, nested
    `_LD_DEPTH` deep at most). An Organization given as the author is the publisher, not a
    byline: left out."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if _types(value) & {"Organization", "NewsMediaOrganization", "Corporation"}:
            return None
        return _str(value.get("name"))
    if isinstance(value, list) and depth < _LD_DEPTH:
        names = [n for n in (_ld_author(v, depth + 1) for v in value) if n]
        return ", ".join(names) or None
    return None


def _ld_persons(value: Any, depth: int = 0) -> Iterator[str]:
    """The names of the nodes of a JSON-LD author typed as a Person (a node or a list of
    them, nested `_LD_DEPTH` deep at most)."""
    if isinstance(value, dict) and "Person" in _types(value):
        name = clean_inline(_str(value.get("name")))
        if name:
            yield name
    elif isinstance(value, list) and depth < _LD_DEPTH:
        for item in value:
            yield from _ld_persons(item, depth + 1)


def _ld_publisher(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, dict):
        return _str(value.get("name"))
    if isinstance(value, list) and value and depth < _LD_DEPTH:
        return _ld_publisher(value[0], depth + 1)
    return None


def _ld_images(value: Any, depth: int = 0) -> Iterator[str]:
    """The addresses a JSON-LD `image` gives, in order: a string, an ImageObject's `url` or
    `contentUrl`, or a list of them."""
    if depth > _LD_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in ("url", "contentUrl"):
            yield from _ld_images(value.get(key), depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _ld_images(item, depth + 1)


def _image(candidates: Iterable[str | None], url: str) -> str | None:
    """The first candidate that is an http(s) address once resolved against the page `url`
    (`/img/a.jpg`, `//cdn.example.com/a.jpg`); a data: URI is none."""
    for candidate in candidates:
        if image := clean_url(absolute_http_url(candidate, url)):
            return image
    return None


def ld_text(ld: dict[str, Any], key: str) -> str | None:
    """A JSON-LD node's string value, stripped; None unless it is a non-blank string."""
    return _str(ld.get(key))


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _parse_date(value: str | None) -> datetime | None:
    """ISO 8601 (with or without time/offset) to an aware UTC datetime; None when unparseable."""
    return choose_published([value])[0]
