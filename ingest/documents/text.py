"""Text fields of feeds as plain text: HTML to paragraphs and lines, one-line fields collapsed,
character references decoded, control characters dropped, URLs resolved. Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any, Final

import lxml.html
from lxml import etree

from ingest.normalize import absolute_http_url, unescape, without_controls

_TAG = re.compile(r"<[^>]*>")
_CLOSE_TAG = re.compile(r"</[A-Za-z][\w-]*\s*>")
_MARKUP = re.compile(r"<[A-Za-z!?/]")
"""The start of a tag, a comment or a declaration."""
_BLANK_LINES = re.compile(r"\n{3,}")

_PARAGRAPH_TAGS = frozenset(
    {
        *("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "blockquote", "pre"),
        *("table", "section", "article", "aside", "header", "footer", "nav", "figure"),
        *("figcaption", "hr", "address", "details", "summary", "main", "form", "fieldset"),
    }
)
_LINE_TAGS = frozenset({"li", "tr", "dt", "dd", "caption"})
_CELL_TAGS = frozenset({"td", "th"})
# Control characters are stripped from the markup first, so these cannot occur in its text.
_LINE_MARK, _PARAGRAPH_MARK, _BR_MARK = "\x01", "\x02", "\x03"
_BREAKS = re.compile("[ \x01-\x03]*[\x01-\x03][ \x01-\x03]*")
# Elements whose text a reader never sees: code, metadata, embedded documents, and what a player
# or a canvas shows only where it cannot play or draw (WordPress's `[video]` and `[audio]`
# shortcodes put a link to the file there), which a page's extraction leaves out too.
_DROPPED_TAGS = (
    *("script", "style", "noscript", "template", "head", "title", "iframe", "object"),
    *("video", "audio", "canvas"),
)


def title(value: object, is_html: bool = False) -> str | None:
    if not isinstance(value, str):
        return None
    value = without_cdata_markers(value)
    # feedparser types RSS titles by guessing, and calls "<script>x</script>" plain text; JSON
    # Feed titles are plain text by the spec, which not every publisher reads.
    if is_html or _CLOSE_TAG.search(value):
        return collapse(html_to_text(value))
    return plain_line(value)


def block(value: str, is_html: bool = False) -> str | None:
    """A multi-paragraph field: paragraphs separated by blank lines. One declared as text that
    carries a closing tag is read as HTML, as a title is (Atom content without type="html",
    whose default is text, often holds escaped markup): its tags are not words of the text.
    The credit line a publishing tool appends to every entry is left out (`without_credit`)."""
    value = without_cdata_markers(value)
    text = html_to_text(value) if is_html or _CLOSE_TAG.search(value) else plain_block(value)
    return without_credit(text) if text else None


_CDATA_START, _CDATA_END = "<![CDATA[", "]]>"
_CDATA_OPENING = re.compile(r"\s*<!\[CDATA\[")


def without_cdata_markers(value: str) -> str:
    """A field whose whole text is a CDATA section's markers around its text, as the text
    inside them; any other as it is. A template that escapes what it writes turns the CDATA
    section it wraps a field in into text (`&lt;![CDATA[Hello]]&gt;`: Go's html/template, a
    PHP `htmlspecialchars`), and one wrapping a field twice leaves the inner markers in it:
    no title has them, and in HTML they open a declaration that hides the whole field."""
    if not _CDATA_OPENING.match(value):
        return value
    stripped = value.strip()
    while stripped.startswith(_CDATA_START) and stripped.endswith(_CDATA_END):
        stripped = stripped[len(_CDATA_START) : -len(_CDATA_END)].strip()
    return stripped


# The line Yoast SEO appends by default to each entry of a WordPress feed, after the entry's
# text ("The post <title> appeared first on <site>."), in English and the translations it ships
# for the most common languages; and the one Medium appends to each entry of a publication's
# feed ("<title> was originally published in <publication> on Medium, where people are
# continuing the conversation by highlighting and responding to this story."). Never a line of
# the article.
_CREDIT = re.compile(
    r"(?:The post|Der Beitrag|L[’']article|La entrada|Het bericht|O post|L[’']articolo)"
    r" [^\n]{1,400}? (?:appeared first on|erschien zuerst auf|est apparu en premier sur"
    r"|se publicó primero en|verscheen eerst op|apareceu primeiro em|proviene da)"
    # The site's name: one sentence (a dot only inside a word, as in a domain).
    r" (?:[^\n.!?]|[.!?](?=\S)){1,200}[.!?]?"
    r"|[^\n]{1,400}? was originally published in [^\n]{1,200}? on Medium, where people are"
    r" continuing the conversation by highlighting and responding to this story\.",
)
_CREDIT_MAX: Final = 700


def without_credit(text: str) -> str:
    """The text without its last paragraph where that paragraph is a feed's credit line
    ("The post … appeared first on …", "… was originally published in … on Medium, …")."""
    head, _, last = text.rpartition("\n\n")
    if len(last) <= _CREDIT_MAX and _CREDIT.fullmatch(last):
        return head.rstrip()
    return text


def html_to_text(markup: str) -> str:
    """The text of an HTML field, its character references decoded also where they were
    escaped once more than HTML asks (`Don&amp;#8217;t`, an excerpt's `[&amp;#8230;]`), as a
    plain field's are (`unescape`); so is its markup, where the field has no tag of its own
    and its text is tags (`&lt;p&gt;…&lt;/p&gt;` inside a CDATA section): those are read as
    the markup they are, as a field declared as text that holds them is (`block`). A field
    with tags of its own keeps the escaped ones it shows (code in a post about HTML)."""
    text = _html_text(markup)
    if not _MARKUP.search(markup) and _CLOSE_TAG.search(text):
        return _html_text(html.unescape(markup))
    return text


def _html_text(markup: str) -> str:
    markup = without_controls(markup)
    if "<" not in markup and "&" not in markup:
        return _tidy(" ".join(markup.split()))
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True)
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div", parser=parser)
    except (etree.ParserError, ValueError):
        root = None
    # libxml2 stops at nesting depth 256 and silently drops everything deeper.
    if root is None or any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        text = " ".join(html.unescape(_TAG.sub(" ", markup)).split())
    else:
        etree.strip_elements(root, *_DROPPED_TAGS, with_tail=False)
        text = _BREAKS.sub(_merge_breaks, "".join(_walk(root)))
    return _tidy(without_controls(unescape(text)))


def _walk(root: Any) -> Iterable[str]:
    """Element text with block boundaries as newlines; iterative, so deep nesting is fine."""
    in_pre = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if event == "start":
            in_pre += tag == "pre"
            yield _break(tag)
            if element.text:
                yield element.text if in_pre else _spaces(element.text)
        else:
            in_pre -= tag == "pre"
            yield _break(tag)
            if element.tail and element is not root:
                yield element.tail if in_pre else _spaces(element.tail)


def _break(tag: str) -> str:
    # Markers, merged later: </p><p> is one paragraph break and </li><li> one line break.
    if tag in _PARAGRAPH_TAGS:
        return _PARAGRAPH_MARK
    if tag == "br":
        return _BR_MARK
    if tag in _LINE_TAGS:
        return _LINE_MARK
    return " " if tag in _CELL_TAGS else ""


def _merge_breaks(match: re.Match[str]) -> str:
    # <br><br> is how many publishers separate paragraphs. A <br> yields its mark twice (start
    # and end events), so two in a row are four.
    marks = match.group(0)
    return "\n\n" if _PARAGRAPH_MARK in marks or marks.count(_BR_MARK) > 2 else "\n"


def _spaces(text: str) -> str:
    """Source line breaks in HTML are just spaces; keep one space at each edge that had some."""
    inner = " ".join(text.split())
    if not inner:
        return " " if text else ""
    return (" " if text[0].isspace() else "") + inner + (" " if text[-1].isspace() else "")


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def plain_block(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = without_controls(value.replace("\r\n", "\n").replace("\r", "\n"))
    return _tidy(unescape(text)) or None


def plain_line(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    # Doubly escaped feeds ("Tom &amp;amp; Jerry") are common; a literal "&amp;" in a title is not.
    return collapse(unescape(without_controls(value)))


def clean_line(value: object) -> str | None:
    return collapse(without_controls(value)) if isinstance(value, str) else None


def collapse(text: str) -> str | None:
    return " ".join(text.split()) or None


def http_url(value: object, base: str) -> str | None:
    """An absolute http(s) URL resolved against `base`; None for javascript:, data:, mailto:."""
    return absolute_http_url(value, base) if isinstance(value, str) else None
