"""Pure normalizers: canonical URLs, clean Unicode text, UTC datetimes, language, content hash.
Each takes a value and returns a value; none does I/O or reads the clock."""

from __future__ import annotations

import functools
import hashlib
import html
import ipaddress
import json
import re
import string
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

import idna

if TYPE_CHECKING:
    import ftfy

# C0/C1 control characters except tab and newline, lone surrogates and Unicode's
# noncharacters (U+FDD0..U+FDEF and the last two code points of every plane: U+FFFE, U+FFFF,
# U+1FFFE, ... U+10FFFF; XML cannot carry U+FFFE and U+FFFF at all): what breaks PostgreSQL text
# (NUL, a surrogate) or consumers. `without_controls` removes them.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
# The noncharacters beyond U+FFFF, apart: re has no bitmap for a class's characters beyond
# U+FFFF and compares each character of a text with every one of them in turn (in `_CONTROL`'s
# class, 0.2 ms of an article of 4,500 characters instead of 0.02), so they are looked for only
# in a text that has a character beyond U+FFFF.
_ASTRAL_NONCHARACTERS = re.compile(
    "["
    + "".join(chr(plane << 16 | last) for plane in range(1, 17) for last in (0xFFFE, 0xFFFF))
    + "]"
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_PARA_BREAK = re.compile(r"\n\s*\n")
_ANY_SPACE = re.compile(r"\s+")
# Invisible characters: the zero-width ones, and the soft hyphen (U+00AD, `&shy;`), a hint
# where a word may break that shows only at the end of a line. Kept, `Bundes&shy;tagswahl`
# would not be the word `Bundestagswahl` to a search (PostgreSQL's parser reads a space) nor
# to a copy without the hints. A URL loses them all (`_ZERO_WIDTH`); a text keeps the joiners
# that join (`_LONE_JOINER`). A text loses the bidi overrides too (U+202D, U+202E): they show
# the characters after them in an order other than the one stored (`Council \u202etegdub`
# reads "Council budget", which a search does not find), and reverse whatever a list shows
# after a title left open; no text needs one, the bidi algorithm orders letters by their
# script. The isolates and marks that order mixed-direction text stay.
_ZERO_WIDTH = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_HIDDEN = re.compile(r"[\u00ad\u200b\u2060\ufeff\u202d\u202e]")
# Zero-width non-joiner and joiner (U+200C, U+200D) are spelling where they stand between two
# letters of a script that joins or forms conjuncts: Persian writes `می‌خواهم` with one (without
# it the word is misspelt and drawn joined), Indic scripts choose a half-form by them, and an
# emoji sequence (`👩‍💻`) is one picture by a ZWJ. Beside ASCII, a space or an end they change
# nothing anyone reads: there they are invisible noise, as in a URL.
_LONE_JOINER = re.compile(r"(?<![^\x00-\x7f\s])[\u200c\u200d]|[\u200c\u200d](?![^\x00-\x7f\s])")
_NOT_QUERY_ASCII = re.compile(r"[^\x21-\x7e]")
# UTF-8 read as Latin-1 / Windows-1252 leaves a lead byte (Â Ã Ð Ñ Ø Ù â …) followed by a
# continuation byte shown as a C1 or Windows-1252 punctuation character. ftfy does the real
# repair; this cheap test keeps it off the ~all texts that have nothing to repair (it costs a
# few ms per article, about a tenth of the extraction).
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013-\u2026\u2030\u2039\u203a\u20ac\u2122]|\x1b\\["
)


# courlan, ftfy and pycld2 load on first use: together 70 ms, which `ingest run` would
# otherwise spend before its first request (its main process needs them once entries come in).
@functools.cache
def _ftfy() -> tuple[ModuleType, ftfy.TextFixerConfig]:
    import ftfy

    # Keep what authors chose: curly quotes and full-width forms are not errors.
    config = ftfy.TextFixerConfig(
        uncurl_quotes=False, fix_character_width=False, normalization="NFC", explain=False
    )
    return ftfy, config


@functools.cache
def _courlan() -> Callable[[str], str]:
    from courlan import normalize_url

    return normalize_url


# Tracking parameter names: courlan's list (courlan.clean.TRACKERS_RE), with its words matched
# as whole words only (alone, or followed by `_`, `-` or a digit; affiliate, campaign and
# session ids also followed by `id`). courlan's pattern matches them as the start of any name,
# which would drop `game_id` (`ga`), `gallery`, `reference` or `sourceId` and give two articles
# told apart by them one canonical URL.
_TRACKERS = re.compile(
    r"^(?:dc|fbc|gc|twc|yc|ysc)lid|^(?:click|gbra|msclk|igsh|partner|wbra)id|"
    r"^(?:ads?|mc|ga|gs|itm|mkt|ml|mtm|oly|pk|utm|vero)_|"
    r"(?:\b|_)(?:(?:aff|affi|affiliate|campaign|session)(?:id)?|cl?id|eid|ga|gl|kwd|keyword|"
    r"medium|ref|referr?er|source|uid|xtor)(?![a-z])|"
    # Session ids a server writes into the links it serves (PHP, classic ASP, ColdFusion, Java):
    # they name the reader's visit, not the page, and change from one feed document to the next.
    r"^(?:phpsessid|aspsessionid[a-z]*|cfid|cftoken|jsessionid)$"
)
_SESSION_PATH_PARAMETER = re.compile(r";jsessionid=[^/;]*", re.IGNORECASE)
"""A Java servlet's session id written into a path segment (`/story;jsessionid=0A1B`): no part
of the resource's name, as the same id in the query is not (`_TRACKERS`)."""


def repair(text: str) -> str:
    """Mojibake and terminal escapes repaired (ftfy), only when the text shows signs of them."""
    if not _MOJIBAKE_HINT.search(text):
        return text
    module, config = _ftfy()
    return str(module.fix_text(text, config=config))


def canonical_url(url: str) -> str:
    """Scheme/host lower-cased, default port dropped, path as `_canonical_path` makes it,
    tracking parameters (utm_*, fbclid, gclid…, courlan's list) removed, remaining query
    parameters sorted, fragment dropped but for a hashbang route (`_route`); a user-info part
    kept as written (a credential, which the server compares as sent). Raises ValueError on a
    non-http(s) URL, or one whose port no connection can have (not a number, over 65535).

    The answers for the last 1,024 URLs of up to _KEPT_URL characters are kept: an article's
    link is made canonical as its entry is planned, as the article is built (its entry's and
    its page's addresses) and as its page's canonical link is weighed, most often one URL."""
    if len(url) > _KEPT_URL:
        return _canonical_url(url)
    return _kept_canonical_url(url)


_KEPT_URL: Final = 2048
"""Characters of the longest URL whose canonical form `canonical_url` keeps."""


def _canonical_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    try:
        parts.port  # noqa: B018 (raises for a port that is no number or over 65535)
    except ValueError:
        raise ValueError(f"not an http(s) URL (its port): {url[:200]!r}") from None
    netloc, host = _plain_netloc(parts.netloc)
    if not host:
        # `http://./`: the root's dot is no host.
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    user, at, host_port = _unicode_host(netloc, host).rpartition("@")
    normalized = _courlan()(urlunsplit((parts.scheme, host_port, "", "", "")))
    p = urlsplit(normalized)
    path = _canonical_path(parts.path)
    query = clean_query(parts.query)
    return urlunsplit((p.scheme, user + at + p.netloc, path or "/", query, _route(parts.fragment)))


_kept_canonical_url = functools.lru_cache(maxsize=1024)(_canonical_url)


def _route(fragment: str) -> str:
    """The fragment a canonical URL keeps: a hashbang route (`#!/stories/1234`, Google's old
    AJAX crawling scheme), which names the story a single-page app shows, every story of the
    app sharing the address before it, with its escapes as a query's (`_normal_query_part`);
    "" for the app's own route (`#!`, `#!/`: its address) and any other fragment
    (`#comments`, a place in the page)."""
    if not fragment.startswith("!") or fragment in ("!", "!/"):
        return ""
    return _normal_query_part(fragment)


def host_key(host: str) -> str:
    """A host's one spelling, the key of everything kept per host (politeness, robots.txt, the
    claims' share and the host holds, which read it as `ingest.url_host`, sql/0022): its
    capitals and its fully qualified form's root dot (`News.Example.COM.` is `news.example.com`
    to DNS) go. Only the one dot: `a..` is no name a resolver would take as `a`. An IPv6
    address (written without its brackets, as httpx gives it) is in its RFC 5952 text form
    (`0:0::1` is `::1`, an IPv4-mapped one `::ffff:127.0.0.1`)."""
    host = host.lower().removesuffix(".")
    return _ipv6_text(host) if ":" in host else host


def _ipv6_text(address: str) -> str:
    """An IPv6 address as RFC 5952 writes it (lower case, the longest run of zeros
    compressed, an IPv4-mapped address's last 32 bits dotted, §5), or as given when it is none."""
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    mapped = ip.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else ip.compressed


def _plain_netloc(netloc: str) -> tuple[str, str]:
    """`netloc` with its host as `host_key` spells it (the root's dot dropped; capitals are
    courlan's and `_unicode_host`'s) and without an empty port (`example.com:` is the
    scheme's default, RFC 3986 §6.2.3); and the host as written otherwise."""
    user, at, host_port = netloc.rpartition("@")
    if host_port.startswith("["):
        literal, bracket, rest = host_port[1:].partition("]")
        if rest and not rest.startswith(":"):
            return netloc, host_port  # no URL (`[::1].`): left as written
        written = f"[{host_key(literal)}{bracket}"
        port = rest.removeprefix(":")
    else:
        written, _, port = host_port.partition(":")
        written = written.removesuffix(".")
    return f"{user}{at}{written}{':' if port else ''}{port}", written


def _unicode_host(netloc: str, host: str) -> str:
    """`netloc` with an internationalized host in its one Unicode spelling: punycode labels
    decoded by IDNA 2008 (`xn--strae-oqa` is `straße`, as httpx encodes it for the request),
    and a Unicode host mapped by UTS 46 as a browser maps it (capitals, NFD, fullwidth letters,
    `。` and `．` for dots; the root's, so mapped, dropped as `_plain_netloc` drops a `.`). A
    host that is no valid IDN (`exa_mple.com`) is left as it is."""
    if host.isascii() and "xn--" not in host:
        return netloc
    user, at, host_port = netloc.rpartition("@")
    written, colon, port = host_port.partition(":")
    try:
        unicode = idna.decode(written, uts46=True).removesuffix(".")
    except (UnicodeError, ValueError):
        return netloc
    return f"{user}{at}{unicode}{colon}{port}"


# What a path may hold as it is (RFC 3986 `pchar` and `/`): the unreserved characters, which
# quote() never encodes, the sub-delimiters and `:` `@`. `%` too, so that an escape stays as
# written: `%3B` is not `;` to a server (`/a;v=1`, `/@user` and their encoded forms
# may be two resources).
_PATH_SAFE = "/%!$&'()*+,;=:@"
_SLASHES = re.compile(r"/+")


def _canonical_path(path: str) -> str:
    """A URL path with repeated slashes made one, its `.` and `..` segments resolved (RFC 3986's
    remove_dot_segments: `/a/./b/../c` is `/a/c`, a `..` above the root goes), and every
    character a path may not hold as it is percent-encoded (whitespace, controls, quotes, angle
    and square brackets, braces, backslash, `^`, `|`, backquote; non-ASCII as UTF-8). Reserved
    characters are kept as written, escapes in RFC 3986's normal form (`_normal_escapes`); a
    session id written into a segment (`;jsessionid=`) is left out."""
    path = _SESSION_PATH_PARAMETER.sub("", path)
    return quote(_without_dot_segments(_normal_escapes(_SLASHES.sub("/", path))), safe=_PATH_SAFE)


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


def _normal_escapes(path: str) -> str:
    """Percent-escapes as RFC 3986 normalizes them (section 6.2.2): an unreserved character's
    escape decoded (`%7Euser` is `~user`, `%2E%2E` a dot segment), every other escape's hex
    digits in capitals (`%3b` is `%3B`), so that equivalent spellings share one URL."""

    def normal(m: re.Match[str]) -> str:
        char = chr(int(m[1], 16))
        return char if char in _UNRESERVED else "%" + m[1].upper()

    return _ESCAPE.sub(normal, path)


def _without_dot_segments(path: str) -> str:
    """`path` (absolute, or empty) without `.` and `..` segments, as a browser resolves them
    before it sends the request: the same resource's every spelling has one canonical URL."""
    kept: list[str] = []
    segments = path.split("/")[1:]
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    # A path ending in a dot segment names a directory: `/a/b/..` is `/a/`.
    if segments and segments[-1] in (".", ".."):
        kept.append("")
    return "/" + "/".join(kept) if path else path


def clean_query(query: str) -> str:
    """Drop tracking parameters (`_TRACKERS`) and sort the rest, each in its normal spelling
    (`_normal_query_part`). courlan's own clean_query drops valueless parameters
    (`news.php?12345`), which are often the article id."""
    kept = (
        _normal_query_part(part)
        for part in query.split("&")
        if part and not _TRACKERS.search(unquote_plus(part.split("=", 1)[0]).lower())
    )
    return "&".join(sorted(kept))


def _normal_query_part(part: str) -> str:
    """One parameter with its escapes as a path's are (`_normal_escapes`: `%7e` is `~`, `%c3`
    `%C3`) and whitespace, controls and non-ASCII percent-encoded (as UTF-8), as clients send
    them: `?q=café` and `?q=caf%c3%a9` are one query. Reserved characters and their escapes
    stay as written (`%26` is no `&`). Whitespace could not end a canonical URL either: it
    would not survive being canonicalized again (strip())."""
    return _NOT_QUERY_ASCII.sub(lambda m: quote(m.group(0)), _normal_escapes(part))


def absolute_http_url(value: str | None, base: str) -> str | None:
    """`value` resolved against `base` when the result is an http(s) URL with a host, else
    None; control characters and surrounding whitespace are dropped first."""
    value = without_controls(value or "").strip()
    if not value:
        return None
    try:
        resolved = urljoin(base, value)
        parts = urlsplit(resolved)
        hostname = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    return resolved


_FEED_SCHEME = re.compile(r"\s*feed:(//)?", re.IGNORECASE)


def without_feed_scheme(url: str) -> str:
    """A URL in the `feed:` URI scheme (for the feed readers that registered it, as pages
    link their feeds and old readers exported them) as the http(s) URL it stands for:
    `feed://host/rss` is `http://host/rss`, `feed:https://host/rss` is `https://host/rss`;
    any other URL as given."""
    match = _FEED_SCHEME.match(url)
    if match is None:
        return url
    rest = url[match.end() :]
    if match[1]:
        return "http://" + rest
    return rest if rest.lower().startswith(("http://", "https://")) else url


_WWW_HOST_FIRST = re.compile(
    r"www\.(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?::[0-9]*)?(?=[/?#]|$)", re.I | re.A
)


def scheme_less_host(value: str) -> str:
    """A feed's link written as a host name beginning with `www.` without its scheme
    (`www.example.com/2024/story`, as some CMSs write them) as the protocol-relative link it
    stands for (`//www.example.com/2024/story`), which resolves to that host over the feed's
    own scheme; any other value as given (`story.html`, `example.com/a` and `wwwroot/a` are
    paths: only `www.` tells a host name from a file's or a directory's)."""
    stripped = value.strip()
    return "//" + stripped if _WWW_HOST_FIRST.match(stripped) else value


_HOST_FIRST = re.compile(r"([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::[0-9]*)?(?=[/?#]|$)", re.I | re.A)


def scheme_less_site_url(value: str, base: str) -> str:
    """A location written as a URL without its scheme, read where the protocol asks for
    absolute URLs (a sitemap's `<loc>`, a robots.txt `Sitemap:` line): one that begins with a
    host name beginning with `www.` (`scheme_less_host`), or with a host of `base`'s own site
    (`example.com/a`, `news.example.com/a` beside `https://example.com/sitemap.xml`: its
    registered domain), as the protocol-relative URL it stands for; any other value as given
    (`a.html`, `example.org/a.html`: paths)."""
    stripped = value.strip()
    written = scheme_less_host(stripped)
    if written != stripped:
        return written
    first = _HOST_FIRST.match(stripped)
    if first is None or "." not in first[1]:
        return value
    try:
        own = registered_domain(host_key(urlsplit(base).hostname or ""))
        host = registered_domain(host_key(first[1]))
    except ValueError:
        return value
    return "//" + stripped if own and host == own else value


_NOT_UTF8 = re.compile("[\udc80-\udcff]")
"""A byte that is not UTF-8, as the `surrogateescape` error handler decodes it."""


_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)


def media_type(value: object) -> str:
    """The media type a Content-Type header or a link's `type` names, without its parameters
    and in lower case, as media types compare (RFC 9110 §8.3.1): `text/html` for
    `Text/HTML; charset=utf-8`; "" for none."""
    return value.split(";")[0].strip().lower() if isinstance(value, str) else ""


_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
"""A media type's `type/subtype`, each a token (RFC 9110 §8.3.1), in lower case."""


def served_type(values: Iterable[str]) -> str:
    """The Content-Type of a response that sent these values (its header's lines, each split
    at its commas), as a browser reads them (Fetch's "extract a MIME type"): the last that
    names a type (`type/subtype`, not `*/*`), with the charset an earlier value of that type
    gave where it names none (`text/html; charset=windows-1252`, then a server's default
    `text/html`); where none names a type, the values as sent. A framework's or a proxy's
    Content-Type beside the application's makes no `text/html, text/html`, which is no type
    at all."""
    values = [value.strip() for value in values]
    chosen, essence, charset = None, None, None
    for value in values:
        media = media_type(value)
        if _MEDIA_TYPE.fullmatch(media) is None or media == "*/*":
            continue
        own = charset_of(value)
        if own is not None or media != essence:
            charset = own
        chosen = value if own is not None or charset is None else f"{value}; charset={charset}"
        essence = media
    return chosen if chosen is not None else ", ".join(values)


def charset_of(content_type: str | None) -> str | None:
    """The charset a Content-Type header declares (`text/html; charset=windows-1252`), if
    any: how a feed's or a page's bytes are read where they do not say it themselves."""
    match = _CHARSET.search(content_type or "")
    return match.group(1) if match else None


def with_charset(content_type: str, charset: str) -> str:
    """A Content-Type header with the charset it declares (`charset_of`) replaced by
    `charset`, its quotes too; as it is where it declares none."""
    match = _CHARSET.search(content_type)
    if match is None:
        return content_type
    end = match.end(1) + (content_type[match.end(1) : match.end(1) + 1] in ("'", '"'))
    return f"{content_type[: match.start()]}; charset={charset}{content_type[end:]}"


def wide_encoding(data: bytes) -> str | None:
    """The UTF-16 or UTF-32 a document is in, told by its byte order mark, else by the NULs of
    its first characters (XML 1.0 Appendix F's rule, which Python's `json.detect_encoding`
    applies): those are ASCII in every text read here (`<?xml`, `<!DOCTYPE`, `User-agent:`,
    a URL), and a NUL is no character of any of them in UTF-8. None for any other document.
    A Windows tool's "Unicode" is UTF-16, with its mark or without."""
    encoding = json.detect_encoding(data[:4])
    return encoding if encoding.startswith(("utf-16", "utf-32")) else None


def wide_as_utf8(data: bytes) -> bytes:
    """A document in UTF-16 or UTF-32 (`wide_encoding`) as UTF-8, without its byte order
    mark; any other as it is. The one reading of such a document's bytes for OPML files,
    lists of URLs, robots.txt, home pages and JSON feeds; an XML declaration naming UTF-16
    stays as written (`wide_encoding` first, where it matters)."""
    encoding = wide_encoding(data)
    if encoding is None:
        return data
    return data.decode(encoding, errors="replace").removeprefix("\ufeff").encode("utf-8")


def utf8_with_windows_1252(data: bytes) -> tuple[str, int]:
    """`data` read as UTF-8, each byte that is not UTF-8 read as Windows-1252 (text pasted
    into a UTF-8 document from a word processor: its quotes and dashes), and how many such
    bytes there were. The one reading of such bytes, for feeds and pages alike."""
    text = data.decode("utf-8", errors="surrogateescape")
    stray = len(_NOT_UTF8.findall(text))
    return (_NOT_UTF8.sub(_windows_1252, text) if stray else text), stray


def _windows_1252(match: re.Match[str]) -> str:
    # surrogateescape keeps an undecodable byte b as U+DC00 + b.
    return bytes([ord(match.group(0)) - 0xDC00]).decode("cp1252", errors="replace")


def url_lines(data: bytes) -> list[str]:
    """The lines of a list of URLs, one a line (a text sitemap, `ingest backfill --urls`), each
    stripped of surrounding whitespace: a BOM dropped, lines ended by LF (or CRLF) only, a NEL
    or U+2028 inside one being a character of it; bytes that are not UTF-8 are the URL's own,
    percent-escaped (a Latin-1 `é` is `%E9`, not a U+FFFD that names another page)."""
    return [url_line(raw, first=n == 0) for n, raw in enumerate(data.split(b"\n"))]


def url_line(raw: bytes, *, first: bool = False) -> str:
    """One line of such a list (its bytes without the LF) as `url_lines` reads it, for a list
    read line by line; `first`: the list's first line, where a BOM is dropped."""
    text = raw.decode("utf-8", errors="surrogateescape")
    if first:
        text = text.lstrip("\ufeff")
    return _NOT_UTF8.sub(lambda m: f"%{ord(m[0]) - 0xDC00:02X}", text).strip()


CREDENTIAL_PARAMETER_NAMES = "token|key|secret|sig|signature|password|passwd|pwd|auth|credential"
"""A query parameter whose name ends with one of these (case ignored; a plural `s` allowed:
`token`, `access_token`, `api_key`, `apiKey`, `X-Amz-Signature`, `sig`) has a credential for
its value: `redact_url` and the log lines (ingest.logs) show `***` instead, and so do the views
of schema news (`ingest.redacted_url`, sql/0028, the same rule)."""

_CREDENTIAL_QUERY = re.compile(
    rf"(^|[&;])([^=&;#]*(?:{CREDENTIAL_PARAMETER_NAMES})s?)=[^&;#]*", re.IGNORECASE | re.ASCII
)


# `scheme://` and what follows it up to the last `@` before the path, query or fragment: the
# rule of the SQL function ingest.without_userinfo (sql/0026), by which sql/0046 took the
# user-info out of the article URLs stored before; keep them in step (the tests compare the two
# on the same URLs).
_USER_INFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@")


def without_user_info(url: str) -> str:
    """The URL without its user-info part (`https://user:secret@host/f` -> `https://host/f`):
    a private feed's credential, which the addresses of the pages it lists do not carry. Only
    the user-info goes; the rest is as written (its scheme's capitals, an empty query), as
    `original_url` keeps a link as the feed gave it."""
    if "@" not in url:
        return url
    return _USER_INFO.sub(r"\1", url, count=1)


def redact_url(url: str) -> str:
    """The URL as the logs and schema news show it: without its user-info part, and with the
    value of each query parameter named as a credential (`CREDENTIAL_PARAMETER_NAMES`) replaced by
    `***`: `https://user:secret@host/f?page=2&token=abc` -> `https://host/f?page=2&token=***`."""
    url = without_user_info(url)
    base, hash_, fragment = url.partition("#")
    path, question, query = base.partition("?")
    if not question:
        return url
    return path + "?" + _CREDENTIAL_QUERY.sub(r"\1\2=***", query) + hash_ + fragment


# The same rule on free text (an error quoting a redirect target or a failing URL): the user-info
# of each `scheme://` URL left out, and the value of each parameter named as a credential after a
# `?`, `&` or `;` shown as `***`, a URL ending at whitespace, a quote, `<`, `>` or a backslash (a
# value at a closing parenthesis too). The SQL function ingest.redacted_text (sql/0031) is the
# same two expressions: keep them in step (the tests compare the two on the same texts). Every
# log line is redacted so too (ingest.logs).
# The first expression matches what sql/0031's `([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#...]*@` matches
# (the scheme from the first letter of its run of scheme characters, what precedes that letter
# kept), but is tried once a run: a long run of letters on a log line is scanned once, not once
# for each of its letters.
_TEXT_USERINFO = re.compile(
    r"(?<![a-zA-Z0-9+.-])([0-9+.-]*+[a-zA-Z][a-zA-Z0-9+.-]*+://)[^/?#\s\"'<>\\]*@"
)
_TEXT_QUERY_SECRET = re.compile(
    rf"([?&;][^=&;#?\s\"'<>\\/]*(?:{CREDENTIAL_PARAMETER_NAMES})s?=)[^&;#\s\"'<>\\)]*",
    re.IGNORECASE | re.ASCII,
)


def redact_text(text: str) -> str:
    """An error text as it is stored and schema news shows it: each URL quoted in it as
    `redact_url` shows it, `redirect to https://u:pw@host/p?token=abc` ->
    `redirect to https://host/p?token=***`."""
    if "://" in text and "@" in text:  # user-info ends in "@"
        text = _TEXT_USERINFO.sub(r"\1", text)
    if "=" in text:
        text = _TEXT_QUERY_SECRET.sub(r"\1***", text)
    return text


_URL_BREAK = re.compile(r"[\t\n\r]")


def clean_url(value: str | None) -> str | None:
    """A URL taken from a page or feed (an image): surrounding whitespace, controls, tabs and
    line breaks removed, other whitespace inside percent-encoded (`lead photo.jpg` is
    `lead%20photo.jpg`, the file a browser asks for); None unless it is then an absolute http(s)
    URL."""
    if not value:
        return None
    text = _URL_BREAK.sub("", value).strip()
    text = _ZERO_WIDTH.sub("", without_controls(text))
    text = _ANY_SPACE.sub(lambda m: quote(m.group(0)), text)
    return text if text.lower().startswith(("http://", "https://")) and len(text) < 4096 else None


def site_of(url: str) -> str:
    """The host an article belongs to, without a leading `www.`."""
    host = host_key(urlsplit(url).hostname or "")
    return host[4:] if host.startswith("www.") else host


def _registered_part(host: str) -> str:
    for prefix in ("www.", "m.", "amp.", "mobile."):
        if host.startswith(prefix):
            return host[len(prefix) :]
    return host


@functools.lru_cache(maxsize=4096)
def registered_domain(host: str) -> str:
    """The domain a host was registered under, by the Public Suffix List (`www.example.co.uk`
    and `feeds.example.co.uk` are `example.co.uk`); a host that has none (an IP address, a
    bare name) is its own."""
    if not host:
        return ""
    from tld import get_fld

    domain = get_fld(host, fix_protocol=True, fail_silently=True)
    return domain.lower() if isinstance(domain, str) else host


def same_site(a: str, b: str) -> bool:
    """True when both URLs are on one site, ignoring www./m./amp. host variants."""
    ha, hb = host_key(urlsplit(a).hostname or ""), host_key(urlsplit(b).hostname or "")
    return bool(ha) and _registered_part(ha) == _registered_part(hb)


def choose_url(page_url: str, rel_canonical: str | None) -> str:
    """The article's canonical URL: the page's rel=canonical (resolved against the page) when it
    is an http(s) URL on the same site (a canonical pointing elsewhere is a syndication hint we
    do not follow), not the site's home page nor a section the page sits in, and not the address
    of another story (`_another_story`), over https where the page was (`_as_served`); else
    the page URL, which a hashbang route always is."""
    base = canonical_url(page_url)
    if urlsplit(base).fragment:
        # A hashbang route (`_route`): its server never saw the route, so the page's canonical
        # names the app (or the route its scripts last drew), never the story asked for.
        return base
    rel_canonical = (rel_canonical or "").strip()
    if rel_canonical and not any(ch.isspace() for ch in rel_canonical):
        try:
            candidate = canonical_url(urljoin(page_url, rel_canonical))
        except ValueError:
            return base
        if not same_site(base, candidate):
            return base
        # The page's own address in another form: without its AMP marks, over https, without
        # the trailing slash.
        if _story_address(candidate) == _story_address(base):
            return _as_served(candidate, base)
        # A canonical naming the home page or a section the article sits in ("/news/" for
        # "/news/2024/story") is a template error seen on real sites; following it would fold
        # every article of the section into one row. So is one naming another story (every
        # story naming the section front, or the latest story): this one would be stored
        # under the other's address, and one of the two lost.
        if not _is_ancestor(candidate, base) and not _another_story(candidate, base):
            return _as_served(candidate, base)
    return base


def _as_served(candidate: str, page: str) -> str:
    """A canonical URL over https where the page was served over https by the canonical's own
    host: a template still writing the `http://` of a site moved to https (a CMS behind a
    proxy that ends TLS) would store every article at an address a reader's browser warns
    about, and which the site answers only with a redirect."""
    c, p = urlsplit(candidate), urlsplit(page)
    if c.scheme == "http" and p.scheme == "https" and c.netloc == p.netloc:
        return urlunsplit(c._replace(scheme="https"))
    return candidate


def _is_ancestor(candidate: str, page: str) -> bool:
    c, p = urlsplit(candidate), urlsplit(page)
    if c.query or c.path == p.path:
        return False
    prefix = c.path if c.path.endswith("/") else c.path + "/"
    return p.path.startswith(prefix) or c.path in ("", "/")


# How an address marks its AMP version: an `amp` segment (`/amp/story`, `/story/amp`), `.amp`
# before the file's extension or at the end (`story.amp.html`), an `amp` or `outputType`
# parameter (`?outputType=amp`).
_AMP_SUFFIX = re.compile(r"(?i)(?:\.amp(?=\.[a-z]+$)|\.amp$)")
_AMP_PARAMETERS = frozenset({"amp", "outputtype"})
_PAGE_EXTENSION = re.compile(r"(?i)\.(?:s?html?|php\d?|aspx?|jsp|cfm|cms)$")
# Segments that name no story: AMP marks and a directory's index file.
_NAMELESS = frozenset({"", "amp", "index", "default"})
_SLUG_TOKEN = re.compile(r"[^\W_]+")
_SLUG_LETTERS = 4
"""Letters a word of an address's slug needs to tell stories apart ("the", "of", "de" do not)."""
_ID_DIGITS = 4
_ID_CHARACTERS = 8
"""An id is a token of `_ID_DIGITS` digits or more (`4723862`, `8996`), or of `_ID_CHARACTERS`
characters or more mixing letters and two digits or more (`idUSKBN1XT00W`): `covid19` and
`g20` are words."""
# A year, a month or a day of one written as one number (2025, 202508, 20250811): the date of
# a path (`/2025/08/11/`, `/article/20211103/`), shared by the stories of that day.
_DATE_NUMBER = re.compile(r"(?:19|20)\d\d(?:(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])?)?")


def _story_address(url: str) -> tuple[str, str]:
    """A canonical URL's path and query without its AMP marks and trailing slash."""
    parts = urlsplit(url)
    segments = [_AMP_SUFFIX.sub("", s) for s in parts.path.split("/") if s.casefold() != "amp"]
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and pair.partition("=")[0].casefold() not in _AMP_PARAMETERS
    )
    return "/".join(segments).rstrip("/"), query


def _story_marks(url: str) -> tuple[set[str], set[str]]:
    """What names the story at a canonical URL: the words of its slug (of `_SLUG_LETTERS`
    letters or more, from the last path segment that names something), and its ids (`_is_id`:
    tokens of its path and query values with `_ID_DIGITS` digits or more, dates left out, or
    mixing letters and digits)."""
    parts = urlsplit(url)
    segments = [
        _PAGE_EXTENSION.sub("", _AMP_SUFFIX.sub("", s))
        for s in unquote_plus(parts.path).casefold().split("/")
    ]
    named = [s for s in segments if s not in _NAMELESS]
    slug = named[-1] if named else ""
    words = {t for t in _SLUG_TOKEN.findall(slug) if t.isalpha() and len(t) >= _SLUG_LETTERS}
    values = [unquote_plus(v).casefold() for _, v in _parameters(parts.query)]
    ids = {t for value in (*named, *values) for t in _SLUG_TOKEN.findall(value) if _is_id(t)}
    return words, ids


def _is_id(token: str) -> bool:
    digits = sum(ch.isdigit() for ch in token)
    if digits >= _ID_DIGITS:
        return not _DATE_NUMBER.fullmatch(token)
    return digits >= 2 and len(token) >= _ID_CHARACTERS and digits < len(token)


# Query parameters numbering the pages of one story split over several (`?page=2`, WordPress's
# `paged`, Joomla's `limitstart`): the pages' own numbers from 1, the offsets from 0.
_PAGE_NUMBERS = frozenset({"page", "pg", "paged", "pagenum", "pageno", "page_no", "pagenumber"})
_PAGE_OFFSETS = frozenset({"start", "limitstart"})


def _later_page(candidate: str, page: str) -> bool:
    """Whether the page's address numbers a later page of its story (`?page=2`, `?start=10`)
    that the canonical does not: a CMS naming the story's first page as the canonical of each
    of its pages, against search engines' advice. Followed, page 2's text would be taken for
    the first page's article (already stored, so skipped as known: page 2 lost)."""
    named = {k.casefold(): v for k, v in _parameters(urlsplit(candidate).query)}
    for key, value in _parameters(urlsplit(page).query):
        key = key.casefold()
        # The number without its leading zeros, not made an int (a run of digits may be long).
        number = value.lstrip("0") if value.isascii() and value.isdigit() else None
        if number is None or named.get(key) == value:
            continue
        if (key in _PAGE_NUMBERS and number not in ("", "1")) or (key in _PAGE_OFFSETS and number):
            return True
    return False


_SCRIPT_WORDS = 3
"""Fewer slug words than this name a script (`news.php`, `show_news.php`), not a story: a
story's slug is its headline's words (`council-approves-budget`)."""


def _the_script(candidate: str, page: str) -> bool:
    """Whether the canonical is the page's address without its query (a template writing
    PHP's `PHP_SELF`, which has none) where that query alone names the story: an id or a
    number in it (`/news.php?id=4511`, `?id=45`), none in the path, whose slug has fewer
    than `_SCRIPT_WORDS` words. Followed, every story of the script would be stored under
    its address. A story's own address with a parameter of digits added
    (`/2025/06/council-approves-budget?cmpid=12345`) still follows its canonical."""
    c, p = urlsplit(candidate), urlsplit(page)
    if c.query or not p.query or c.path != p.path:
        return False
    words, ids = _story_marks(urlunsplit(p._replace(query="")))
    if ids or len(words) >= _SCRIPT_WORDS:
        return False
    values = (unquote_plus(v).casefold() for _, v in _parameters(p.query))
    named = any(_is_id(t) for value in values for t in _SLUG_TOKEN.findall(value))
    return named or bool(_numbers(p.query))


def _numbers(query: str) -> set[str]:
    """The values of a query that are numbers, of any length (`?p=123`, `?id=45`), a page's
    number or offset (`_later_page`) left out: the story a script serves by that number, which
    a canonical without it does not name."""
    skipped = _PAGE_NUMBERS | _PAGE_OFFSETS
    return {
        v
        for k, v in _parameters(query)
        if v.isascii() and v.isdigit() and k.casefold() not in skipped
    }


def _another_story(candidate: str, page: str) -> bool:
    """Whether a canonical URL of the page's own site names another story than the page's
    address does: a page of the story other than the later one the address numbers
    (`_later_page`); the script serving the story by an id in the query (`_the_script`); a
    query parameter both have with other values holding digits (`?p=12345`,
    `?id=4511`); else neither an id in common nor half of the words of the page's
    slug (a headline reworded in its slug keeps most of them; `/2025/08/council-approves-budget`
    and `/2025/08/mayor-resigns` share none), where both have a slug; else two sets of ids
    with none in common. A page address that names nothing but a short number (`/?p=123`)
    contradicts nothing: the page's canonical is followed, as from a short link to the
    story's slug; a canonical that names nothing (the home page, its index file, `/?lang=en`,
    a language's front `/en/`) names no story the page's address names, by its slug, an id or
    a number in its query (`_numbers`).

    Half of the page's words, not of the shorter slug's: a canonical naming a section, topic
    or tag front (`/politics/`, `/topics/budget/`) has a slug of a word or two, which the
    story's slug often holds (`/2025/06/02/council-vote-budget`); followed, it would store
    the story, and every other story of the section, under the front's address."""
    if _later_page(candidate, page) or _the_script(candidate, page):
        return True
    c, p = urlsplit(candidate), urlsplit(page)
    page_values = dict(_parameters(p.query))
    for key, value in _parameters(c.query):
        other = page_values.get(key)
        if other is not None and other != value and any(ch.isdigit() for ch in other + value):
            return True
    c_words, c_ids = _story_marks(candidate)
    p_words, p_ids = _story_marks(page)
    if c_ids & p_ids:
        return False
    if not (c_words or c_ids):
        return bool(p_words or p_ids or _numbers(p.query) - _numbers(c.query))
    if c_words and p_words:
        return len(c_words & p_words) < 0.5 * len(p_words)
    return bool(c_ids and p_ids)


def _parameters(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, _, v in (pair.partition("=") for pair in query.split("&")) if k]


def without_controls(value: str) -> str:
    """`value` without the characters no text holds: C0 and C1 controls but tab, line feed and
    carriage return, lone surrogates and Unicode's noncharacters. The one rule of every text
    field, article or feed (`clean_inline` and `clean_text` apply it too)."""
    value = _CONTROL.sub("", value)
    return _ASTRAL_NONCHARACTERS.sub("", value) if _ASTRAL.search(value) else value


def _invisible_removed(text: str) -> str:
    """`text` without the zero-width characters and soft hyphens that change no word
    (`_HIDDEN`), nor the joiners that stand where they join nothing (`_LONE_JOINER`)."""
    text = _HIDDEN.sub("", text)
    # The joiners' test looks behind at every character: only run where there is one.
    return _LONE_JOINER.sub("", text) if "\u200c" in text or "\u200d" in text else text


def clean_inline(value: str | None, *, max_length: int = 2000) -> str | None:
    """A one-line field (title, author): character references decoded, NFC, controls removed,
    whitespace collapsed; None if empty. Cut at `max_length` characters, it ends without the
    space the cut may leave it with."""
    if value is None:
        return None
    text = _invisible_removed(without_controls(repair(unescape(value))))
    text = unicodedata.normalize("NFC", _ANY_SPACE.sub(" ", text).strip())
    return text[:max_length].rstrip() or None


_ENTITY = re.compile(r"&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def unescape(value: str) -> str:
    """HTML character references decoded, twice at most: meta tags, JSON-LD and feeds often
    carry a title escaped once more than their format asks (`zerst&amp;ouml;ren` in an
    attribute is `zerst&ouml;ren` once parsed). Only complete references (with their `;`) are
    decoded: `AT&T` and `?lang=de&region=eu&copy=1` stay as they are."""
    for _ in range(2):
        decoded = _ENTITY.sub(lambda m: html.unescape(m.group(0)), value)
        if decoded == value:
            break
        value = decoded
    return value


_MAX_TAGS = 50
_MAX_TAG_LENGTH = 100


def unique_tags(values: Iterable[object]) -> tuple[str, ...]:
    """Topic labels as one-line strings, each once (compared case-insensitively, the first
    spelling kept), in order; at most 50, none longer than 100 characters, no empty ones."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        tag = clean_inline(value, max_length=_MAX_TAG_LENGTH) if isinstance(value, str) else None
        if tag is None or tag.casefold() in seen:
            continue
        seen.add(tag.casefold())
        out.append(tag)
        if len(out) == _MAX_TAGS:
            break
    return tuple(out)


def clean_text(value: str) -> str:
    """Body text: mojibake repaired, NFC, controls removed, whitespace collapsed within
    paragraphs, paragraphs kept apart by exactly one blank line. Single newlines inside the
    input are paragraph breaks too, since extractors emit one paragraph a line."""
    text = repair(value).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    # NFC last: removing a control or zero-width character can bring a base letter and its
    # combining mark together.
    text = unicodedata.normalize("NFC", _invisible_removed(without_controls(text)))
    # `str.split()` splits at the characters `\s` matches: a line's runs of them made one space,
    # its ends stripped (as `re.sub(r"\s+", " ", line).strip()`, in half the time).
    paragraphs = (" ".join(line.split()) for line in text.split("\n"))
    return "\n\n".join(p for p in paragraphs if p)


def paragraphs(text: str) -> list[str]:
    return [p for p in _PARA_BREAK.split(text) if p.strip()]


def to_utc(value: datetime) -> datetime:
    """Aware datetimes converted to UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


FUTURE_TOLERANCE = timedelta(days=1)
"""How far ahead of now a date may be and still count: a time zone away, at most."""

# Zone abbreviations seen in RSS dates and sitemaps: RFC 822's own, and those feedparser does
# not know (it reads them as +0000, an hour or more off). Only unambiguous ones; BST is British
# Summer Time, as in feeds written in English (IST, CST and the like name zones hours apart
# and stay unread here: feedparser reads CST as the US's in a feed).
ZONE_OFFSETS: Final[dict[str, str]] = {
    "ut": "+0000",
    "utc": "+0000",
    "gmt": "+0000",
    "est": "-0500",
    "edt": "-0400",
    "cdt": "-0500",
    "mst": "-0700",
    "mdt": "-0600",
    "pst": "-0800",
    "pdt": "-0700",
    "cet": "+0100",
    "cest": "+0200",
    "mez": "+0100",
    "mesz": "+0200",
    "wet": "+0000",
    "west": "+0100",
    "eet": "+0200",
    "eest": "+0300",
    "bst": "+0100",
    "msk": "+0300",
    "jst": "+0900",
    "kst": "+0900",
    "hkt": "+0800",
    "sgt": "+0800",
    "awst": "+0800",
    "acst": "+0930",
    "acdt": "+1030",
    "aest": "+1000",
    "aedt": "+1100",
    "nzst": "+1200",
    "nzdt": "+1300",
    "hst": "-1000",
    "hdt": "-0900",
    "akst": "-0900",
    "akdt": "-0800",
    "nst": "-0330",
    "ndt": "-0230",
    "sast": "+0200",
    "pkt": "+0500",
    "ict": "+0700",
    "wib": "+0700",
    "wita": "+0800",
    "wit": "+0900",
    "pht": "+0800",
}


# An offset written where a zone's name goes: `+05:30`, `UTC+05:30`, `GMT+2`, `UTC-3` (the
# email parser reads only `+0530`, feedparser neither a `UTC` prefix nor an hour alone).
_WRITTEN_OFFSET = re.compile(r"(?:utc|gmt|ut)?([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def zone_offset(name: str) -> timezone | None:
    """The offset a zone's name stands for (`ZONE_OFFSETS`), or an offset written in its
    place (`_WRITTEN_OFFSET`); None for another name or an offset of a day or more."""
    name = name.strip()
    if written := _WRITTEN_OFFSET.fullmatch(name):
        hours, minutes = int(written[2]), int(written[3] or 0)
        if hours > 23 or minutes > 59:
            return None
        return timezone((-1 if written[1] == "-" else 1) * timedelta(hours=hours, minutes=minutes))
    spelled = ZONE_OFFSETS.get(name.lower())
    if spelled is None:
        return None
    minutes = int(spelled[1:3]) * 60 + int(spelled[3:5])
    return timezone(timedelta(minutes=-minutes if spelled[0] == "-" else minutes))


TZ_DATABASE_NAME: Final = re.compile(r"[A-Za-z]+(?:/[A-Za-z0-9_+-]+)+")
"""A zone written as the tz database names it, an area and a location (`Europe/Berlin`,
`America/Argentina/Buenos_Aires`, `Etc/GMT+5`), as PHP's `e` format prints it."""


def tz_database_zone(name: str) -> tzinfo | None:
    """The zone a `TZ_DATABASE_NAME` names, its summer time included; None for another text
    and for a name the tz database does not have. The database is a table as `ZONE_OFFSETS`
    is, installed with the package (`tzdata`) and read once a zone."""
    name = name.strip()
    if not TZ_DATABASE_NAME.fullmatch(name):
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def hour_of_day(hour: int, half: str) -> int:
    """The 24-hour clock's hour of a 12-hour clock's (1 to 12) before `half`, `AM` or `PM`
    (`a.m.`, `p`): 12 AM is midnight, 12 PM noon."""
    return hour % 12 + (12 if half[:1].lower() == "p" else 0)


EARLIEST_DATE = datetime(1991, 1, 1, tzinfo=UTC)
"""No page or feed entry was published before the web: an earlier date is a placeholder (the
Unix epoch of a timestamp 0, year 1 of an unset .NET or Java date, 1900 of a spreadsheet's)."""


_SHORT_YEAR = re.compile(
    r"^\s*(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?\s*,?\s*)?\d{1,2}[\s-]+"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[\s-]+(\d{2,3})(?=\s|$)",
    re.IGNORECASE,
)


def full_year(text: str) -> str:
    """An RFC 2822 date (`Mon, 05 Dec 94 10:00:00 GMT`) with its year written in full, as RFC
    2822 section 4.3 reads a short one: two digits are 2000-2049 for 00-49 and 1950-1999 for
    50-99, three digits have 1900 added (`124`, a program printing C's tm_year, is 2024). Any
    other text is returned as it is. The one rule for such years: feeds, sitemaps and pages
    hand their RFC 2822 dates through it before parsing them (Python's email parser reads
    50-68 as 2050-2068, feedparser 00-89 as 2000-2089, and both three digits as written)."""
    match = _SHORT_YEAR.match(text)
    if match is None:
        return text
    digits = match.group(1)
    year = int(digits)
    year += 1900 if len(digits) == 3 or year >= 50 else 2000
    return f"{text[: match.start(1)]}{year}{text[match.end(1) :]}"


# RFC 850's day (HTTP's obsolete date form, RFC 9110 section 5.6.7; a cookie's `expires`): the
# day, the month and the year joined by dashes after the day's full name, `Sunday, 06-Nov-94`.
_DASHED_DAY = re.compile(
    r"^(\s*(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?\s*,?\s*)?\d{1,2})-"
    r"((?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?)-(?=\d{2,4}(?:\s|$))",
    re.IGNORECASE,
)


# A day's name whose comma is not followed by a space (`Sun,06 Nov 2022`): RFC 5322's space
# there is optional.
_DAY_NAME_COMMA = re.compile(
    r"^(\s*(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?),(?=\d)", re.IGNORECASE
)


# RFC 822's military zones, one capital after the time (`J` is none; `Z`, UTC's, is read as
# UTC by every parser; a small letter is a 12-hour clock's `a` or `p` as often): their signs
# were written inverted by the software that used them (RFC 1123 section 5.2.14), and RFC
# 5322 section 4.3 reads each as `-0000`, the time in UTC with its local zone unknown.
_MILITARY_ZONE = re.compile(r"(\d:\d\d(?::\d\d)?\s+)[A-IK-Y]\s*$")


# Months abbreviated as `strftime("%b")` writes them under a German, French, Spanish,
# Italian, Dutch or Portuguese locale, where they are not English's (`Okt`, `déc.`, `ene`);
# no abbreviation names two months.
_LOCAL_MONTHS: Final = {
    **dict.fromkeys(("ene", "gen"), "Jan"),
    **dict.fromkeys(("févr", "fév", "fev"), "Feb"),
    **dict.fromkeys(("mär", "mrz", "mars", "mrt"), "Mar"),
    **dict.fromkeys(("avr", "abr"), "Apr"),
    **dict.fromkeys(("mai", "mag", "mei"), "May"),
    **dict.fromkeys(("juin", "giu"), "Jun"),
    **dict.fromkeys(("juil", "lug"), "Jul"),
    **dict.fromkeys(("août", "aou", "ago"), "Aug"),
    **dict.fromkeys(("set",), "Sep"),
    **dict.fromkeys(("okt", "ott", "out"), "Oct"),
    **dict.fromkeys(("déc", "dez", "dic"), "Dec"),
}
# An RFC 2822 date's day and month in another language: a day's name of any language and
# its comma, the day, and a month's abbreviation (`Di, 08 Okt 2024`, `mar., 08 oct. 2024`).
_LOCAL_DAY = re.compile(
    r"^\s*(?:([^\W\d_]{2,9})\.?,\s*)?(\d{1,2})\.?\s+([^\W\d_]{3,5})\.?\s+(?=\d{2,4}(?:\s|$))"
)
_ENGLISH_DAYS: Final = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})


def _english_day(match: re.Match[str]) -> str:
    """`_LOCAL_DAY`'s day and month in English (the day's name left out: RFC 2822 makes it
    optional), where either is in another language; else as written."""
    day_name, day, word = match[1], match[2], match[3].lower()
    if (month := _LOCAL_MONTHS.get(word)) is None:
        english = day_name is None or day_name[:3].lower() in _ENGLISH_DAYS
        if english or _month_number(word) is None:
            return match[0]
        month = word.title()
    return f"{day} {month} "


# A time of day written with dots for colons after a date (`2025-08-11 12.30`, `11 Aug 2025
# 12.30.45 +0200`, `2025-08-11T12.30+02:00`): the Nordic, Italian and Indonesian way, which a
# CMS's locale puts in its dates. Two digits after the dot are minutes (ISO 8601's decimal
# hour, `12.5`, is written by nobody); a dotted date (`11.08.2025`) is no time.
_DOTTED_TIME = re.compile(
    r"(?<=\d)(T|\s*,?\s+)([01]?\d|2[0-3])\.([0-5]\d)(?:\.([0-5]\d|60))?(?=\s|[Zz+-]|$)"
)
# A fraction of a second after a time written with colons, where RFC 2822 has no place for it.
_SECOND_FRACTION = re.compile(r"(\d:[0-5]\d:[0-6]\d)[.,]\d+(?=\s|$)")


def colon_time(text: str) -> str:
    """A date-time whose time of day is written with dots (`_DOTTED_TIME`: `12.30`,
    `12.30.45`) with colons instead (`12:30`, `12:30:45`); any other text as it is. Feeds,
    sitemaps and pages read their dates through it (directly, or by `rfc2822_form` and
    `spelled_date`): feedparser read `2025-08-11 12.30` as 12:00 and `2025/08/11 12.30` as
    1 December, and no parser an RFC 2822 date so written but the email parser."""
    return _DOTTED_TIME.sub(_with_colons, text, count=1)


def _with_colons(match: re.Match[str]) -> str:
    before, hour, minute, second = match.groups()
    return f"{before}{hour}:{minute}" + (f":{second}" if second else "")


# A zone's name (in brackets or not) after the numeric offset of a time: strftime's `%z %Z`
# (`2025-08-11 14:00:00 -0400 EDT`), or after an ISO 8601 offset or `Z` (`…T14:00:00-04:00
# EDT`, `…T14:00:00Z UTC`); a tz database name in square brackets right after it, as Java's
# `ZonedDateTime.toString()` prints it (`…T14:00:00+02:00[Europe/Berlin]`).
_OFFSET_NAME = re.compile(
    r"(\d:\d\d(?::\d\d)?(?:[.,]\d+)?\s*(?:[+-]\d\d(?::?\d\d)?|[Zz]))"
    r"(?:\s+(?:[A-Za-z]{1,5}|\([A-Za-z]{1,5}\))|\[[A-Za-z][\w/+-]{0,63}\])\s*$"
)


def without_offset_name(text: str) -> str:
    """A date-time whose numeric offset is followed by its zone's name (`_OFFSET_NAME`)
    without that name: the offset says where the time is, and ISO 8601 and W3C Datetime have
    no place for a name after it (`2025-08-11T14:00:00-04:00 EDT` is
    `2025-08-11T14:00:00-04:00`); any other text as it is. Feeds and sitemaps read their
    dates through it where their readers do not read them as written."""
    stripped = text.rstrip()
    if not (stripped[-1:].isalpha() or stripped.endswith((")", "]"))):
        return text  # the usual date, ending in its offset or time: no search
    return _OFFSET_NAME.sub(r"\1", text, count=1)


def rfc2822_form(text: str) -> str:
    """An RFC 2822 date as RFC 2822 writes it: a space after its day's name's comma (`Sun,06
    Nov 2022`), an RFC 850 day (`Sunday, 06-Nov-94 08:49:37 GMT`) with spaces for its dashes,
    a day and month named in another language in English (`Di, 08 Okt 2024` is `08 Oct
    2024`: `_LOCAL_DAY`), a short year in full (`full_year`), a military zone as `-0000`
    (`_MILITARY_ZONE`), a time written with dots with colons (`colon_time`), and without a
    fraction of its second (`12:30:45.123`, which the email parser refuses).
    Any other text is returned as it is. Feeds, sitemaps and pages hand their RFC 2822 dates
    through it: the email parser loses an RFC 850 date whose zone is a name, feedparser every
    one, and any day's name without its space."""
    text = _SECOND_FRACTION.sub(r"\1", colon_time(text), count=1)
    text = _DAY_NAME_COMMA.sub(r"\1, ", text, count=1)
    text = _MILITARY_ZONE.sub(r"\1-0000", text, count=1)
    text = _LOCAL_DAY.sub(_english_day, _DASHED_DAY.sub(r"\1 \2 ", text, count=1), count=1)
    return full_year(text)


_NUMERIC_ZONE = re.compile(r"[+-]\d{4}")
# A zone's name after a date-time's time, at its end or before its year (`08:15:00 IST`,
# Java's `08:15:00 IST 2025`).
_NAMED_ZONE = re.compile(r"\d:\d\d(?::\d\d)?(?:[.,]\d+)?\s+([A-Za-z]{1,5})(?:\s+\d{4})?\s*$")


def stated_zone_name(text: str) -> str | None:
    """The word a date-time states its zone with after its time (`_NAMED_ZONE`: `IST`, or a
    word a parser takes for none, `PM`), or None."""
    named = _NAMED_ZONE.search(colon_time(text))
    return named[1] if named else None


def rfc2822_date(text: str) -> datetime | None:
    """An RFC 2822 date-time, read as `rfc2822_form` writes it: aware where it states a zone (by
    its offset, or a name the email parser, `zone_offset` or the tz database reads: `CEST`,
    `UTC+05:30`, `Europe/Berlin`), naive where it does not (or says -0000); None when it is
    not one, and when it ends with a zone's name none reads (`IST` names zones hours apart:
    not that time in UTC). A four-digit year is as written (`0001` is not read as 2001, as
    the email parser reads a year under 100)."""
    text = rfc2822_form(text.strip())
    words = text.split()
    zone: tzinfo | None = None
    if (
        len(words) > 1
        and not _NUMERIC_ZONE.fullmatch(words[-1])
        and (zone := zone_offset(words[-1]) or tz_database_zone(words[-1])) is not None
    ):
        text = " ".join(words[:-1])
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if str(when.year) not in text:
        return None
    if when.tzinfo is None and zone is not None:
        return when.replace(tzinfo=zone)
    if when.tzinfo is None and (
        words[-1].isalpha()
        or TZ_DATABASE_NAME.fullmatch(words[-1])
        or stated_zone_name(text) is not None
    ):
        return None
    return when


MONTH_NAMES: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# A date written for readers with its month's name, day first or month first, an optional day
# name before it, then optionally a time (after `at`, `@`, a comma or a dash; on the 12-hour
# clock too) and a zone's name or offset: `June 2, 2025`, `Monday, 2nd June 2025`, `Jun. 2,
# 2025 at 8:15 AM EDT`, `2 June 2025, 08:15 +0200`. The year is four digits (an RFC 2822 short
# year is `full_year`'s). A zone may be followed by its description in brackets, as
# JavaScript's `Date.prototype.toString()` prints it (`Mon Aug 11 2025 14:00:00 GMT+0200
# (Central European Summer Time)`, in the browser's language): the offset says the time.
_SPELLED_DATE = re.compile(
    r"\s*(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    r"(?:(?P<day>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?P<month>[a-z]{3,9})\.?"
    r"|(?P<month_first>[a-z]{3,9})\.?\s+(?P<day_after>\d{1,2})(?:st|nd|rd|th)?)"
    r",?\s+(?P<year>\d{4})"
    r"(?:(?:\s*,\s*|\s+(?:at\s+|@\s*|[-\u2013\u2014|]\s+)?)"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"(?:\s*(?P<half>[ap])\.?m\.?)?)?"
    r"(?:\s+(?P<zone>[a-z]{1,5}|(?:utc|gmt|ut)?[+-]\d{1,2}(?::?\d{2})?)(?:\s*\([^()]{1,64}\))?)?"
    r"\s*",
    re.IGNORECASE,
)
# The same as C's asctime(), Unix's `date` and Java's `Date.toString()` print it: the time and
# its zone between the day and the year (`Mon Jun 02 08:15:00 CEST 2025`).
_ASCTIME_DATE = re.compile(
    r"\s*(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    r"(?P<month_first>[a-z]{3,9})\.?\s+(?P<day_after>\d{1,2}),?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"(?:\s+(?P<zone>[a-z]{1,5}|(?:utc|gmt|ut)?[+-]\d{1,2}(?::?\d{2})?))?"
    r"\s+(?P<year>\d{4})\s*",
    re.IGNORECASE,
)


def _month_number(word: str) -> int | None:
    """The month a name or its abbreviation of three letters or more names (`June`, `Jun`,
    `Sept`), 1 to 12; None for another word."""
    word = word.lower()
    return next((n for n, name in enumerate(MONTH_NAMES, 1) if name.startswith(word)), None)


def spelled_date(text: str) -> datetime | None:
    """A date written with its month's name (`_SPELLED_DATE`, `_ASCTIME_DATE`), as pages print
    theirs for readers and some feeds and programs copy: naive where it states no zone (a day
    alone at midnight), aware where it names one that `ZONE_OFFSETS` knows or gives an offset;
    None for any other text, a day its month does not have, and a zone's name the table does
    not know (`IST` names zones hours apart), as everywhere a date is read. A time written
    with dots (`8.15 PM`) is read as `colon_time` writes it."""
    text = colon_time(text)
    match = _SPELLED_DATE.fullmatch(text) or _ASCTIME_DATE.fullmatch(text)
    if match is None:
        return None
    found = match.groupdict()
    month = _month_number(found.get("month") or match["month_first"])
    if month is None:
        return None
    hour = int(match["hour"] or 0)
    if found.get("half"):
        if not 1 <= hour <= 12:
            return None
        hour = hour_of_day(hour, found["half"])
    zone: timezone | None = None
    if spelled := match["zone"]:
        zone = UTC if spelled in ("Z", "z") else zone_offset(spelled)
        if zone is None:
            return None
    try:
        return datetime(
            int(match["year"]),
            month,
            int(found.get("day") or match["day_after"]),
            hour,
            int(match["minute"] or 0),
            int(match["second"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


# A date written with its year last in digits (`11.08.2025`, `25-08-2025`, `08/25/2025`), then
# optionally a time (on the 12-hour clock too, or followed by German's `Uhr`, "o'clock", after
# `um`, "at": `11.08.2025, 12:30 Uhr`, `11.08.2025 um 12:30 Uhr`; before `Uhr` the hour may
# stand alone, `12 Uhr`) and a zone.
_YEAR_LAST = re.compile(
    r"\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4})"
    r"(?:(?:\s*,\s*|\s+|T)(?:um\s+)?(\d{1,2})(?=:|\s*uhr)(?::(\d{2})(?::(\d{2}))?(?:[.,]\d+)?)?"
    r"(?:\s*([ap])\.?m\.?|\s*uhr)?)?"
    r"(?:\s+(\S+))?\s*",
    re.IGNORECASE,
)


def is_year_last(text: str) -> bool:
    """Whether a date is written with its year last in digits (`year_last_date` reads it)."""
    return _YEAR_LAST.fullmatch(colon_time(text)) is not None


def year_last_date(text: str) -> datetime | None:
    """A date written with its year last in digits, its time written with colons or dots
    (`colon_time`): dotted, Europe's way, day first (`11.08.2025 12:30` is 11 August); with
    dashes or slashes, the way it can only be read (`25-08-2025`, `08/25/2025`: no month
    25), else none (`11-08-2025` is 11 August in Europe and India, 8 November in the US).
    Naive where it states no zone, aware where it names one `zone_offset` or the tz database
    knows; None for another text, an ambiguous or impossible day, and an unknown zone's name."""
    match = _YEAR_LAST.fullmatch(colon_time(text))
    if match is None:
        return None
    first, separator, second, year, hour, minute, second_of_minute, half, zone = match.groups()
    if separator == "." or int(second) <= 12 < int(first):
        day, month = int(first), int(second)
    elif int(first) <= 12 < int(second):
        day, month = int(second), int(first)
    else:
        return None
    clock = int(hour or 0)
    if half is not None:
        if not 1 <= clock <= 12:
            return None
        clock = hour_of_day(clock, half)
    tz: tzinfo | None = None
    if zone is not None:
        tz = UTC if zone in ("Z", "z") else zone_offset(zone) or tz_database_zone(zone)
        if tz is None:
            return None
    try:
        return datetime(
            int(year),
            month,
            day,
            clock,
            int(minute or 0),
            min(int(second_of_minute or 0), 59),
            tzinfo=tz,
        )
    except ValueError:
        return None


# W3C Datetime (https://www.w3.org/TR/NOTE-datetime), a sitemap's format, with the usual
# liberties: a space for the "T", seconds without a zone, "+0000" without the colon, a zone's
# name after a space (`2024-05-01 10:30:00 UTC`, `... EDT`: `ZONE_OFFSETS`), or an offset after
# `GMT` or `UTC` (`... GMT+02:00`, `... UTC+5:30`: `zone_offset`), or a tz database zone
# (`... Europe/Berlin`, PHP's `e`: `tz_database_zone`).
_W3C = re.compile(
    r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2})"
    r"(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?|(?<=\s)[A-Za-z]{2,5}(?:[+-]\d{1,2}(?::?\d{2})?)?"
    r"|(?<=\s)[A-Za-z]+(?:/[A-Za-z0-9_+-]+)+)?)?)?)?"
)

Precision = Literal["year", "month", "day"]
"""What a W3C Datetime names: a year alone, a month alone, or a day (with a time or not)."""


def w3c_date(text: str) -> tuple[datetime, Precision] | None:
    """A W3C Datetime at any precision (`2024`, `2024-05`, `2024-05-06`,
    `2024-05-06T07:08:09.5+02:00`) with the liberties of `_W3C`, its time written with dots
    read as `colon_time` writes it and a zone's name after its offset left out
    (`without_offset_name`): its first moment, naive where it states no zone, and what it
    names; None for another text, a day or a time that does not exist, and a zone's name none
    reads. A leap second is the last second of its minute."""
    text = text.strip()
    match = _W3C.fullmatch(text)
    if match is None and (written := without_offset_name(colon_time(text))) != text:
        match = _W3C.fullmatch(written)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            min(int(second or 0), 59),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=_w3c_zone(zone),
        )
    except ValueError:
        return None
    return moment, "day" if day else "month" if month else "year"


def _w3c_zone(zone: str | None) -> tzinfo | None:
    """`_W3C`'s zone: None where it states none; raises ValueError for one none reads."""
    if not zone:
        return None
    if zone in "Zz":
        return UTC
    if zone[0].isalpha():
        named = tz_database_zone(zone) if "/" in zone else zone_offset(zone)
        if named is None:
            raise ValueError(f"unknown zone {zone!r}")
        return named
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad zone {zone!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# A Unix time: seconds since 1970 (ten digits: 2001 to 2286), or milliseconds (thirteen), as
# a script's `Date.now()` writes them.
_UNIX_TIME = re.compile(r"\s*(\d{10}|\d{13})(?:\.\d+)?\s*")


def unix_time(text: str) -> datetime | None:
    """A date written as a Unix time (`_UNIX_TIME`: `1667724577`, a fraction after it,
    JavaScript's milliseconds `1667724577000`), in UTC, to the second; None for any other
    text (an eight-digit ISO 8601 day, `20221106`, is none)."""
    match = _UNIX_TIME.fullmatch(text)
    if match is None:
        return None
    digits = match[1]
    return datetime.fromtimestamp(int(digits) // (1000 if len(digits) == 13 else 1), UTC)


YEAR_FIRST: Final = re.compile(
    r"\s*(\d{4})\s*[/.年]\s*(\d{1,2})\s*[/.月]\s*(\d{1,2})(?:\s*日)?"
    r"(?:(?:\s+|T)(\d{1,2}):(\d{2}(?::\d{2})?)(?:[.,]\d+)?(?:\s*([AP]M))?)?(?:\s*(\S+))?\s*",
    re.IGNORECASE,
)
"""A date written year first with slashes, dots or CJK (`2024/05/02 08:30:00 +0900`,
`2024.05.02`, `2024年5月2日 8:30 PM`), then optionally a time (on the 12-hour clock too) and a
zone: .NET's `DateTime.ToString()` in Japanese and Chinese cultures, and many Asian CMSs."""


def year_first_date(text: str) -> datetime | None:
    """A date written as `YEAR_FIRST` matches (its time written with dots read as `colon_time`
    writes it): naive where it states no zone, aware where it
    gives an offset or names a zone `zone_offset` or the tz database knows; None for another
    text, a day or a time that does not exist, and a zone's name none reads. Year, month, day:
    no one writes the day before the month after a year."""
    match = YEAR_FIRST.fullmatch(colon_time(text))
    if match is None:
        return None
    year, month, day, hour, rest, half, zone = match.groups()
    clock = int(hour or 0)
    if half is not None:
        if not 1 <= clock <= 12:
            return None
        clock = hour_of_day(clock, half)
    minute, _, second = (rest or "0").partition(":")
    tz: tzinfo | None = None
    if zone is not None:
        tz = UTC if zone in ("Z", "z") else zone_offset(zone) or tz_database_zone(zone)
        if tz is None:
            return None
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            clock,
            int(minute),
            min(int(second or 0), 59),
            tzinfo=tz,
        )
    except ValueError:
        return None


def written_date(text: str) -> datetime | None:
    """A date-time in any of the forms feeds and sitemaps are read in, beyond ISO 8601 as
    Python reads it: a Unix time (`unix_time`), its year last (`year_last_date`, German's
    `12:30 Uhr` too) or first (`year_first_date`) in digits, a W3C Datetime with its
    liberties (`w3c_date`: a zone's name, `GMT+02:00` or a tz database zone after the time, a
    time written with dots, a zone's name after an offset, Java's `[Europe/Berlin]`), a month's
    name (`spelled_date`: JavaScript's `Date.toString()` too) or RFC 2822 (`rfc2822_date`).
    Naive where it states no zone; None for another text, a year or a month alone, a day its
    form leaves ambiguous (`11/08/2025`) and a zone's name none reads. Sitemaps read their
    dates by it, and pages theirs where ISO 8601 and their own readings find none."""
    if (unix := unix_time(text)) is not None:
        return unix
    if is_year_last(text):
        return year_last_date(text)
    if (w3c := w3c_date(text)) is not None:
        return w3c[0] if w3c[1] == "day" else None
    if (first := year_first_date(text)) is not None:
        return first
    written = without_offset_name(colon_time(text))
    return spelled_date(written) or rfc2822_date(written)


def plausible_date(when: datetime | None, now: datetime) -> datetime | None:
    """`when` in UTC, unless it is more than `FUTURE_TOLERANCE` ahead of `now` or before
    `EARLIEST_DATE`: then no date at all. A date that far ahead is a typo or a trick (year 9999
    would pin an article to the top of every "latest" list, or count as an update at every
    poll); one before the web is a placeholder (1970-01-01 would have `ingest prune` remove the
    article at once and keep it out of every "latest" list). Publication and modified dates
    alike follow this rule."""
    if when is None:
        return None
    when = to_utc(when)
    return when if EARLIEST_DATE <= when <= now + FUTURE_TOLERANCE else None


def content_hash(text: str) -> bytes:
    """SHA-256 of the body with case and whitespace folded: two copies of one text that differ
    only in layout hash the same."""
    folded = " ".join(text.casefold().split())  # the same as re.sub(r"\s+", " ", ...).strip()
    return hashlib.sha256(folded.encode("utf-8")).digest()


def entry_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def detect_language(text: str, *, hint: str | None = None, min_chars: int = 40) -> str | None:
    """ISO 639-1 code detected from the text itself (CLD2); falls back to the page/feed hint
    (e.g. `<html lang="en-US">` -> "en") when the text is too short or CLD2 cannot tell."""
    sample = text[:1500]
    if len(sample.strip()) >= min_chars:
        import pycld2  # loaded on first use, see _ftfy

        try:
            _reliable, _bytes, found = pycld2.detect(sample, bestEffort=True)
        except (pycld2.error, UnicodeError, ValueError):
            found = ()
        if found and (code := _language_code(found[0][1])):
            return code
    return _language_code(hint) if hint else None


# CLD2 still reports a few withdrawn ISO 639 codes.
_LEGACY_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}


def _language_code(tag: str) -> str | None:
    """The primary subtag of a language tag, lower case ("en-US" -> "en", "zh-Hant" ->
    "zh"), as ISO 639-1 where the language has such a code ("eng", "ger" -> "en", "de"; a
    language without one keeps its three letters, "haw", "sco"); None for "un"/"xx"/"und"
    (unknown), ISO 639-2's other codes that name no language ("mul" several, "mis" one
    without a code, "zxx" no linguistic content) and anything that is not a language code."""
    code = tag.strip().lower().replace("_", "-").split("-")[0]
    if not re.fullmatch(r"[a-z]{2,3}", code) or code in ("un", "xx", "und", "mul", "mis", "zxx"):
        return None
    if len(code) == 3:
        return _two_letters(code)
    return _LEGACY_CODES.get(code, code)


@functools.cache
def _two_letters(code: str) -> str:
    """An ISO 639-2 or 639-3 code as CLDR names the language: its ISO 639-1 code where it has
    one, else the code itself (CLDR lacks some that text detection knows: "sco", "war")."""
    from babel import Locale, UnknownLocaleError

    try:
        return str(Locale.parse(code).language)
    except (UnknownLocaleError, ValueError):
        return code
