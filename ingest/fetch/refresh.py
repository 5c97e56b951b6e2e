"""A page that is only a refresh to another address: a CMS's or a link shortener's
"Redirecting..." stub (`<meta http-equiv="refresh" content="0; url=/story">`, or a `Refresh`
header), which a browser follows as it follows a redirect. Pure: the `Fetcher` asks it of the
pages it fetches and follows the address it gives as a redirect hop (`ingest.fetch.client`)."""

from __future__ import annotations

import codecs
import re
from typing import Final

from ingest.normalize import charset_of, media_type

REFRESH_STUB_BYTES: Final = 16 * 1024
"""The largest page whose refresh is a redirect. A stub is a line of text and a link (with an
analytics script, a few KiB); an article page with a refresh (a news page reloading itself
every few minutes, a `<noscript>` refresh to a "please enable JavaScript" page: 70 KB and more
on the real-page corpora) is the page."""
REFRESH_REDIRECT_SECONDS: Final = 60
"""The shortest delay of a refresh that is no redirect: a stub sends its reader on at once or
after a few seconds ("You will be redirected in 5 seconds"); a page that goes elsewhere after
a minute or more (a news site's return to its front page after 15 minutes) is read first."""
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", ""})
_META: Final = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE: Final = re.compile(
    rb"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
_SPACE: Final = " \t\n\f\r"
# What a browser with scripts reads no tag in: a comment, and a `<noscript>`, whose content it
# takes as text (the "please enable JavaScript" fallback of a page its scripts render, often a
# refresh to a plain or consent page). Either runs to the end of the page when left open.
_UNREAD: Final = re.compile(
    rb"<!--.*?(?:-->|\Z)|<noscript\b.*?(?:</noscript\s*>|\Z)", re.IGNORECASE | re.DOTALL
)


def refresh_location(content_type: str, header: str | None, body: bytes) -> str | None:
    """The address a page refreshes to, as written (relative or not), or None when it is no
    stub that sends its reader elsewhere: over REFRESH_STUB_BYTES, no HTML, no refresh, one
    that only reloads the page (no address), or one that waits a minute or more. The
    `Refresh` header first, else the first meta refresh of the page that a browser reads
    (`_UNREAD`: none in a comment or a `<noscript>`)."""
    if len(body) > REFRESH_STUB_BYTES:
        return None
    if media_type(content_type) not in _HTML_TYPES:
        return None
    if header is not None:
        return refresh_url(header)
    for tag in _META.finditer(_UNREAD.sub(b"", _as_utf8(content_type, body))):
        attributes = {
            m.group(1).lower(): next((v for v in m.groups()[1:] if v is not None), b"")
            for m in _ATTRIBUTE.finditer(tag.group(0), 5)
        }
        if attributes.get(b"http-equiv", b"").strip().lower() == b"refresh":
            content = attributes.get(b"content")
            if content is None:
                continue
            return refresh_url(content.decode("utf-8", "replace"))
    return None


def _as_utf8(content_type: str, body: bytes) -> bytes:
    """A page in UTF-16 as UTF-8, told as its text is (`ingest.extract.page.decode_page`,
    WHATWG Encoding's BOM sniffing): by its byte order mark, else by a UTF-16 charset it is
    served with and a NUL among its bytes (its markup's, in UTF-16); any other page as it is,
    its markup ASCII in every charset a browser reads HTML in but UTF-16."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace").encode("utf-8")
    served = _utf_16(charset_of(content_type))
    if served is not None and b"\x00" in body:
        return body.decode(served, errors="replace").encode("utf-8")
    return body


def _utf_16(label: str | None) -> str | None:
    """The codec of the UTF-16 a Content-Type's charset names (`utf-16` as little-endian, as
    WHATWG Encoding reads the label), else None."""
    try:
        name = codecs.lookup((label or "").strip().strip("\"'")).name
    except LookupError:
        return None
    return {"utf-16": "utf-16-le", "utf-16-le": "utf-16-le", "utf-16-be": "utf-16-be"}.get(name)


def refresh_url(content: str) -> str | None:
    """The address of a refresh's value (`0; url=/story`, `0;URL='/story'`, `3, url = a`,
    `0; /story`) as HTML's declarative refresh reads it, or None when it names none (`900`,
    a reload), only after REFRESH_REDIRECT_SECONDS or more (`900; url=/`), or is no refresh
    value at all."""
    rest = content.strip(_SPACE)
    digits = len(rest) - len(rest.lstrip("0123456789."))
    if digits == 0:
        return None
    # The delay is the whole seconds its leading digits write (`2.5` is 2, `.5` is 0), read
    # without its leading zeros so that a run of thousands of digits is never made a number.
    seconds = rest[:digits].split(".", 1)[0].lstrip("0")
    if len(seconds) > 2 or int(seconds or 0) >= REFRESH_REDIRECT_SECONDS:
        return None
    rest = rest[digits:]
    if not rest or rest[0] not in ";," + _SPACE:
        return None
    rest = rest.lstrip(_SPACE)
    if rest[:1] in (";", ","):
        rest = rest[1:].lstrip(_SPACE)
    if rest[:3].lower() == "url":
        after = rest[3:].lstrip(_SPACE)
        if after.startswith("="):
            rest = after[1:].lstrip(_SPACE)
    if rest[:1] in ("'", '"'):
        quote, rest = rest[0], rest[1:]
        rest = rest.split(quote, 1)[0]
    url = rest.strip(_SPACE)
    return url or None
