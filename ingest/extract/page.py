"""HTML bytes + URL -> clean article text and page metadata. Pure and CPU-bound: it runs in the
worker processes (see `ingest.workers.pool`), never on the event loop. The text side lives here (the
cleaning in `clean`, the metadata in `metadata`)."""

from __future__ import annotations

import codecs
import re

import trafilatura
import trafilatura.utils
from lxml import etree, html
from lxml.etree import _Element
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from trafilatura.utils import decode_file, handle_compressed_file, load_html

from ingest.coverage import Reference, words
from ingest.errors import ExtractError
from ingest.extract.clean import preclean, remove_paths
from ingest.extract.metadata import (
    complete_metadata,
    json_ld_article,
    ld_text,
    marked_byline,
    meta_tags,
    page_titles,
    site_names_of,
    structured_metadata,
    structured_people,
    with_language,
)
from ingest.extract.stoplists import install_stop_words
from ingest.neardup import fingerprint
from ingest.normalize import clean_text, content_hash, detect_language, utf8_with_windows_1252
from ingest.types import Extracted

# lxml.html's parsers choose each element's Python class with a Python callback (so that forms
# and inputs get classes of their own), run whenever lxml makes the Python object of an element
# (again after the last reference to it went): about 1 µs each, 6 % of `extract_page`. Neither
# trafilatura nor this package uses those form classes; every element gets lxml.html's
# HtmlElement (text_content, drop_tree...) from a lookup done in C. Only the page parser of
# trafilatura, which runs in the worker processes.
trafilatura.utils.HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=html.HtmlElement,
        comment=html.HtmlComment,
        pi=html.HtmlProcessingInstruction,
        entity=html.HtmlEntity,
    )
)
install_stop_words()


# The guard against losing the article: the text kept after cleaning must hold at least half
# of a second opinion's main content (resiliparse, a DOM heuristic built differently from
# trafilatura's and far less strict about furniture), else the page is extracted again
# without cleaning, in trafilatura's full mode, and that text is kept when it holds at least
# twice as much of the second opinion, and a tenth of it more. Chosen on the development
# part of the corpora (`bench/quality_bench.py`).
GUARD_COVERAGE = 0.5
GUARD_GAIN = 2.0
GUARD_MARGIN = 0.1
# Whether the page has an element nested this deep, asked of lxml's tree (in C: a fifth of the
# cost of serializing the tree). No page of the corpora goes past 50 levels, and on all 1,301 the
# second opinion is the same read from the page as sent or from lxml's serialization. A page
# nested deeper in resiliparse's parse than in lxml's is still bounded by the worker's time
# limit. (`tests/hostile/test_pages.py` serves 100,000 nested <div>s: read as sent, they would
# run into that limit.)
_DEEP = etree.XPath("boolean(/" + "/".join(["*"] * 200) + ")")
# A page whose extraction found almost nothing, while its JSON-LD `articleBody` holds the
# story, gets the publisher's own text.
_FEW_WORDS = 30
_LD_BODY_WORDS = 50


def extract_page(body: bytes, url: str, charset: str | None = None) -> Extracted:
    """Boilerplate-free text (comments excluded) and metadata merged by precedence:
    JSON-LD (`NewsArticle`/`Article`) > OpenGraph/`article:*`/meta tags > trafilatura's guesses.
    `charset` is the one the page was served with (its Content-Type header), if any
    (`decode_page`). Raises ExtractError when the page has no extractable body."""
    return read_page(body, url, charset)[0]


def read_page(body: bytes, url: str, charset: str | None = None) -> tuple[Extracted, str]:
    """`extract_page`, and the second opinion it was checked against: resiliparse's
    main-content text of the page (asides, menus and related-story blocks left out; "" where
    it could not be read)."""
    document = decode_page(body, charset)
    tree = load_html(document)
    if tree is None:
        raise ExtractError(url, "not an HTML document")
    ld = json_ld_article(tree, url)
    # Read once for the structured fields and the page's titles, as the site's names and the
    # structured byline's people are for the byline read before cleaning and after it.
    meta_values = meta_tags(tree)
    structured = structured_metadata(tree, ld, url, meta_values)
    site_names = site_names_of(structured, url)
    people = structured_people(structured, site_names)
    # The second opinion reads the page before cleaning: as sent, or, for a page nested deeper
    # than _DEEP levels, as lxml parsed it (libxml2 caps the nesting at 255 levels), since
    # resiliparse's main-content pass is quadratic in the depth (100,000 nested <div>s take it
    # minutes; 255 levels, milliseconds).
    as_read = html.tostring(tree, encoding="unicode") if _DEEP(tree) else document
    # Furniture goes before anything reads the page's body: trafilatura's author guess would
    # otherwise find a commenter's name, and its text extraction the widgets inside the body.
    marked = marked_byline(tree, site_names, people)
    cleaned = preclean(tree, page_titles(tree, ld, site_names, meta_values))
    meta = complete_metadata(tree, structured, url, marked, people)
    # fast: without trafilatura's second opinion from its readability and jusText ports. After
    # `preclean` that second opinion mostly brought furniture back (AEB F1 0.968 without it,
    # 0.965 with it) for a sixth more CPU per page. Its last-resort baseline still runs when the
    # main extractor finds too little. Fast mode also keeps blocks classed "teaser" when
    # trafilatura recovers loose text: on news pages that is as often the article's
    # standfirst as another story's, so preclean does not treat it as furniture.
    text = _trafilatura_text(tree, url, fast=True)
    if cleaned.not_the_article:
        # A copy of its text the page hides is none of its text for the second opinion
        # either (resiliparse reads `display: none !important` as shown), nor for the fallback
        # below: against a text held twice, the text once would look half lost. Nor is a next
        # story of an infinite scroll longer than the story: against it, the story would
        # look lost, and the fallback would bring the other back.
        shown = _parsed(document, cleaned.not_the_article)
        if shown is not None:
            as_read = html.tostring(shown, encoding="unicode")
    main = _main_content(as_read)
    reference = Reference(main)
    kept = words(text)
    covered = reference.held_by(kept)
    found = len(kept)
    few = found < _FEW_WORDS
    # Evidence of a loss: the second opinion sees more words than were kept, and most of them
    # are not in the kept text. (Against a second opinion of a few words, coverage says
    # nothing.)
    lost = covered < GUARD_COVERAGE and reference.words > found
    if lost or few:
        raw = _parsed(document, cleaned.not_the_article)
        if raw is not None:
            fallback = _trafilatura_text(raw, url, fast=False)
            fallback_words = words(fallback)
            recovered = reference.held_by(fallback_words)
            # Next to nothing found: the fallback is taken when it finds more of the second
            # opinion, or more words where the second opinion saw next to nothing either.
            more = len(fallback_words) > found
            if recovered >= max(GUARD_GAIN * covered, covered + GUARD_MARGIN) or (
                few and more and (recovered > covered or reference.words < _FEW_WORDS)
            ):
                text, kept = fallback, fallback_words
                found = len(kept)
    if found < _FEW_WORDS:
        ld_body = clean_text(ld_text(ld, "articleBody") or "")
        ld_words = words(ld_body)
        if len(ld_words) >= _LD_BODY_WORDS:
            text, kept = ld_body, ld_words
    if not text:
        raise ExtractError(url, "no article text found on the page")
    language = detect_language(text, hint=meta.language)
    extracted = Extracted(
        text=text,
        metadata=with_language(meta, language),
        fingerprint=fingerprint(text, kept),
        content_hash=content_hash(text),
    )
    return extracted, main


def _parsed(document: str, not_the_article: tuple[str, ...]) -> _Element | None:
    """The page parsed afresh, without what `preclean` removed as none of the article
    (`Precleaned.not_the_article`)."""
    tree = load_html(document)
    if tree is not None and not_the_article:
        remove_paths(tree, not_the_article)
    return tree


def _trafilatura_text(tree: _Element, url: str, *, fast: bool) -> str:
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        fast=fast,
        include_comments=False,
        include_tables=True,
        include_images=False,
        with_metadata=False,
        deduplicate=False,
    )
    if doc is None or isinstance(doc, dict):
        return ""
    return clean_text(doc.text or "")


def _main_content(document: str) -> str:
    """resiliparse's main-content text of the page, or "" when it cannot parse it (a second
    opinion that fails is no opinion)."""
    return _plain_text(document, main_content=True)


def visible_text(body: bytes, charset: str | None = None) -> str:
    """All the text a reader can see on the page (menus and footers included), or "" when it
    cannot be parsed; `charset` as `extract_page`'s."""
    try:
        document = decode_page(body, charset)
    except Exception:  # an unreadable page shows nothing
        return ""
    return _plain_text(document, main_content=False)


def _plain_text(document: str, *, main_content: bool) -> str:
    """resiliparse's plain text of `document` (its main content only, or all of it), without
    alt texts, link targets, bullets, noscript and comments; "" when it cannot parse it."""
    try:
        return str(
            extract_plain_text(
                HTMLTree.parse(document),
                preserve_formatting=False,
                main_content=main_content,
                alt_texts=False,
                links=False,
                list_bullets=False,
                noscript=False,
                comments=False,
            )
        )
    except Exception:
        return ""


# A charset declared in the page itself, where a browser looks for it: a <meta charset> or an
# http-equiv Content-Type in its first bytes.
_META_CHARSET = re.compile(rb"<meta[^>]{0,400}?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_PRESCAN_BYTES = 4096
# The encoding an XHTML page names in its XML declaration, which opens it.
_XML_ENCODING = re.compile(
    rb"^\s*<\?xml\s[^>]{0,200}?encoding\s*=\s*[\"']\s*([A-Za-z0-9._:-]+)", re.I
)
# Labels read as browsers read them (WHATWG Encoding): ISO-8859-1 and ASCII are Windows-1252,
# whose quotes and euro sign pages so labelled hold; the other legacy labels name the
# superset their sites write in.
_WHATWG = {
    "iso8859_1": "cp1252",
    "ascii": "cp1252",
    "iso8859_9": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
}

# The byte order marks a page may begin with, and the encodings they name (WHATWG Encoding's
# "BOM sniff": UTF-32 is not among them).
_BOMS = (
    (codecs.BOM_UTF8, "utf_8"),
    (codecs.BOM_UTF16_LE, "utf_16_le"),
    (codecs.BOM_UTF16_BE, "utf_16_be"),
)


def decode_page(body: bytes, charset: str | None = None) -> str:
    """The page's text. Valid UTF-8 is UTF-8, whatever is declared (a page moved to UTF-8
    often keeps its old label). Otherwise the charset the page declares in a meta tag or, an
    XHTML page, in its XML declaration, else the one it was served with (`charset`, from its
    Content-Type header): the page's own label travels with its bytes, a server's is often a
    default for all its pages. A page
    declared or presumed UTF-8 whose other bytes are valid UTF-8 has Windows-1252 bytes
    pasted into it (quotes from a word processor), read as such, as in a feed. A declared
    charset that does not read the bytes, and a page declaring none, are left to
    trafilatura's detection, which guesses a page with a few non-ASCII bytes wrongly
    (`José Müller` as `Josķ M³ller`) and would read a whole UTF-8 page in the charset its
    stray bytes suggest. A byte order mark comes before all of these (WHATWG Encoding's BOM
    sniffing, as browsers read a page): a page beginning with one is in the encoding it names,
    the mark itself no character of the text. A page served as UTF-16 without one is UTF-16
    where its first bytes hold a NUL, as its markup's do in UTF-16 and no HTML's in UTF-8
    (read as UTF-8, the bytes of Cyrillic letters in UTF-16 are valid ASCII)."""
    data = handle_compressed_file(body)
    for bom, marked in _BOMS:
        if data.startswith(bom):
            rest = data[len(bom) :]
            if marked == "utf_8":
                return utf8_with_windows_1252(rest)[0]
            return rest.decode(marked, errors="replace")
    served = _utf_16(charset)
    if served is not None and b"\x00" in data[:_PRESCAN_BYTES]:
        return data.decode(served, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    meta = _META_CHARSET.search(data[:_PRESCAN_BYTES])
    declared = _XML_ENCODING.match(data[:_PRESCAN_BYTES])
    own = [match.group(1).decode() for match in (meta, declared) if match]
    labels = [label for label in (*own, charset) if label]
    for label in labels or ["utf-8"]:
        encoding = _encoding(label)
        if encoding == "utf_8":
            text = _utf8_with_stray_bytes(data)
        elif encoding is not None:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                text = None
        else:
            text = None
        if text is not None:
            return text
    # trafilatura's detection is far better than lxml's own guess (which costs about 0.06 F1
    # on the AEB benchmark through mis-decoded pages).
    return decode_file(data)


def _utf_16(label: str | None) -> str | None:
    """The codec of the UTF-16 a Content-Type's charset names (`utf-16` as little-endian, as
    WHATWG Encoding reads the label), else None."""
    try:
        name = codecs.lookup((label or "").strip().strip("\"'")).name
    except LookupError:
        return None
    return {"utf-16": "utf_16_le", "utf-16-le": "utf_16_le", "utf-16-be": "utf_16_be"}.get(name)


def _encoding(label: str) -> str | None:
    """Python's codec for a charset label, as browsers read the label (`_WHATWG`); None for
    a label no codec has, or UTF-16 and UTF-32, which no page in an ASCII-compatible meta tag
    can be in, or one of Python's codecs of bytes to bytes (`base64`, `zlib`, `rot13`,
    `hex`), which reads no text and no browser knows."""
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name.replace("-", "_")
        b"a".decode(name, "replace")  # LookupError: "'base64' is not a text encoding"
    except LookupError:
        return None
    if name.startswith(("utf_16", "utf_32")):
        return None
    return _WHATWG.get(name, name)


def _utf8_with_stray_bytes(data: bytes) -> str | None:
    """`data` read as UTF-8 with the bytes that are not UTF-8 read as Windows-1252
    (`utf8_with_windows_1252`), where those are fewer than the characters outside ASCII its
    valid UTF-8 spells: text written in UTF-8 with a few bytes pasted in. None otherwise (a
    page in a legacy charset, whose bytes outside ASCII are mostly not UTF-8)."""
    text, stray = utf8_with_windows_1252(data)
    spelt = sum(1 for ch in text if ch > "\x7f") - stray
    return None if stray >= spelt else text
