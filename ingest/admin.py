"""What operators reach for on day two, as text: one feed in full (`feeds show`), the feed list
(`feeds list`), the feeds as OPML 2.0 (`feeds export`), the latest articles (`articles`) and
the database's address without its password (`db url`). Pure: rows in, lines out; the
commands in `ingest.cli` fetch the rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast, get_args
from xml.etree import ElementTree

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ingest.normalize import (
    absolute_http_url,
    canonical_url,
    clean_inline,
    redact_text,
    redact_url,
    site_of,
    unique_tags,
)
from ingest.periods import parse_date_bound
from ingest.retention import parse_duration
from ingest.schedule import LATEST
from ingest.store.db import redact
from ingest.types import SERVICE_HEADERS, SourceKind, TextMode

NEVER = "never"


def to_json(value: Any, *, ascii_only: bool = False) -> str:
    """Rows as JSON: times in ISO 8601, intervals in seconds, bytes in hex; `ascii_only`: every
    other character as JSON escapes it (`\\u2013`), for an output that cannot carry it."""
    return json.dumps(value, default=_plain, ensure_ascii=ascii_only, indent=2)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return _iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _never(value: datetime) -> bool:
    """A paused feed's next fetch (`LATEST`), compared as a moment: a session in a time zone
    west of UTC reads 9999-01-01 00:00 UTC as 9998-12-31."""
    return value >= LATEST


def _iso(value: datetime | date) -> str:
    return NEVER if isinstance(value, datetime) and _never(value) else value.isoformat()


def _when(value: datetime | None) -> str:
    """A time as the operator reads it: UTC to the second, "never" for a paused feed."""
    if value is None:
        return "-"
    if _never(value):
        return NEVER
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _streak(count: int, since: datetime | None) -> str:
    """How many in a row, and since when: "2 since 2026-01-01 22:00:00Z", or "0"."""
    return f"{count} since {_when(since)}" if count else "0"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


def feed_state(row: Mapping[str, Any]) -> str:
    """active, paused (by the operator) or inactive (given up after failures)."""
    if row["active"]:
        return "active"
    return "paused" if _paused(row) else "inactive"


def _paused(row: Mapping[str, Any]) -> bool:
    when = row.get("next_fetch_at")
    return isinstance(when, datetime) and _never(when)


def shown_feed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A feed's row as `feeds list` prints it unless asked for credentials: its URL and site URL
    as schema news shows them (`redact_url`: no user-info, the value of a query parameter named
    as a credential as `***`), and the URLs its error and inactive reason quote so too
    (`redact_text`: rows stored before errors were redacted, sql/0031, hold them as given).
    Operators paste the list into tickets."""
    shown = dict(row)
    for key in ("url", "site_url"):
        if shown.get(key):
            shown[key] = redact_url(shown[key])
    for key in ("last_error", "inactive_reason"):
        if shown.get(key):
            shown[key] = redact_text(shown[key])
    return shown


def feed_line(row: Mapping[str, Any]) -> str:
    """One line of `feeds list`: id, state, kind, last status, next fetch, URL, then what the
    text comes from, why it is inactive or failing, and until when a Retry-After holds it."""
    status = row["last_status"] or "never fetched"
    text = {"page": "  [text: page]", "feed": "  [text: feed]"}.get(
        row["text_mode"], "  [full text]" if row["full_text"] else ""
    )
    why = row["inactive_reason"] if not row["active"] else row["last_error"]
    note = f"  ({why})" if why else ""
    if row.get("held_until") is not None:
        note += f"  (held until {_when(row['held_until'])}: its host's Retry-After)"
    return (
        f"{row['id']:>6}  {feed_state(row):<8}  {row['kind']:<7}  {status:<13}  "
        f"next {_when(row['next_fetch_at']):<20}  {row['url']}{text}{note}"
    )


def feed_details(row: Mapping[str, Any]) -> list[str]:
    """`feeds show`: every fact about one feed, one per line."""
    interval = None
    if row["last_fetched_at"] is not None and not _paused(row):
        interval = (row["next_fetch_at"] - row["last_fetched_at"]).total_seconds()
    published = row["publish_interval"]
    evidence = row["full_text_evidence"]  # a sentence: printed as it is
    facts: list[tuple[str, Any]] = [
        ("url", row["url"]),
        ("id", row["id"]),
        ("kind", row["kind"]),
        ("title", row["title"] or "-"),
        ("site", row["site_url"] or "-"),
        ("state", feed_state(row)),
        ("inactive reason", row["inactive_reason"] or "-"),
        ("added", _when(row["added_at"])),
        ("last fetched", _when(row["last_fetched_at"])),
        ("last status", row["last_status"] or "never fetched"),
        ("last error", row["last_error"] or "-"),
        ("failures in a row", row["consecutive_failures"]),
        ("failing since", _when(row["failing_since"])),
        ("404s in a row", _streak(row["consecutive_not_found"], row["not_found_since"])),
        ("next fetch", _when(row["next_fetch_at"])),
        ("held until", _when(row.get("held_until"))),
        ("interval", _duration(interval)),
        ("publishes every", _duration(published.total_seconds() if published else None)),
        ("text mode", row["text_mode"]),
        ("full text", "yes" if row["full_text"] else "no"),
        ("full-text evidence", evidence or "-"),
        ("tags", ", ".join(row.get("tags") or ()) or "-"),
        # As written (`Café`), as the title is: an output that cannot carry a character
        # escapes it (`ingest.cli`), JSON's own escapes would do so everywhere.
        (
            "settings",
            json.dumps(row["settings"], ensure_ascii=False) if row.get("settings") else "-",
        ),
        ("headers", ", ".join(row.get("headers") or ()) or "-"),
        ("articles first seen here", row["articles_first_seen"]),
        ("articles listed", row["articles_listed"]),
        ("latest article", _when(row["latest_article"])),
    ]
    width = max(len(name) for name, _ in facts)
    return [f"{name + ':':<{width + 1}}  {value}" for name, value in facts]


NAMESPACE = "urn:news-ingest:opml"
"""Of the attributes `feeds export` adds to an outline (`exported_attributes`)."""
ElementTree.register_namespace("ingest", NAMESPACE)


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry, even escaped: ElementTree writes them as they are, and
the file is then no XML at all."""


def opml(
    rows: Iterable[Mapping[str, Any]], *, title: str = "news-ingest feeds", ascii_only: bool = False
) -> str:
    """OPML 2.0 with one outline per feed (`type="rss"`, `xmlUrl`, `text`/`title`, `htmlUrl`
    when known), which `feeds import` reads back; and, in the `ingest:` namespace that other
    readers ignore, what registers the feed as it is (`exported_attributes`). `ascii_only`:
    every other character as a character reference (`&#8211;`), for an output that cannot
    carry it."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    body = ElementTree.SubElement(root, "body")
    for row in rows:
        name = row.get("title") or row["url"]
        attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": row["url"]}
        if row.get("site_url"):
            attributes["htmlUrl"] = row["site_url"]
        for key, value in exported_attributes(row).items():
            attributes[f"{{{NAMESPACE}}}{key}"] = value
        attributes = {k: _NOT_XML.sub("", v) for k, v in attributes.items()}
        ElementTree.SubElement(body, "outline", attributes)
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode")
    if ascii_only:
        text = text.encode("ascii", "xmlcharrefreplace").decode("ascii")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + text + "\n"


def exported_attributes(row: Mapping[str, Any]) -> dict[str, str]:
    """A feed's `ingest:` attributes: `kind` always (it marks the outline as exported: its
    feed is registered as given, not searched for), then only what differs from a new feed's:
    `paused="true"`, `textMode`, `tags` (as `feeds set tags=` takes them) and `settings` (the
    stored JSON, headers included)."""
    attributes = {"kind": str(row["kind"])}
    if not row["active"] and _paused(row):
        attributes["paused"] = "true"
    if row.get("text_mode", "auto") != "auto":
        attributes["textMode"] = str(row["text_mode"])
    if row.get("tags"):
        attributes["tags"] = ",".join(row["tags"])
    settings = {k: v for k, v in (row.get("settings") or {}).items() if v or v == 0}
    if settings:
        attributes["settings"] = json.dumps(settings, ensure_ascii=False, sort_keys=True)
    return attributes


@dataclass(frozen=True)
class Restored:
    """A feed of an exported OPML outline as `feeds import` registers it: its kind and title,
    then, once it is added, its settings, text mode and pause."""

    kind: SourceKind
    title: str | None
    paused: bool
    text_mode: TextMode
    change: SettingsChange
    site: str | None = None
    """Its `htmlUrl`, the site it belongs to: for a sitemap, the site that named it, whose URLs
    it may list wherever it is hosted (`sitemaps.sitemap_sites`)."""


def restored(url: str, attributes: Mapping[str, str]) -> Restored | None:
    """What an outline's `ingest:` attributes (`exported_attributes`) say of its feed, checked
    as `feeds set` checks its settings; None for an outline without them (another reader's
    OPML). Raises ValueError naming the attribute that is wrong."""
    prefix = f"{{{NAMESPACE}}}"
    exported = {k[len(prefix) :]: v for k, v in attributes.items() if k.startswith(prefix)}
    if not exported:
        return None
    kind, paused = exported.get("kind", "feed"), exported.get("paused", "false")
    mode = exported.get("textMode", "auto")
    if kind not in get_args(SourceKind):
        raise ValueError(f"ingest:kind={kind!r}: a feed is of kind feed or sitemap")
    if paused not in ("true", "false"):
        raise ValueError(f"ingest:paused={paused!r}: true or false")
    if mode not in get_args(TextMode):
        raise ValueError(f"ingest:textMode={mode!r}: auto, page or feed")
    pairs = [f"tags={exported['tags']}"] if "tags" in exported else []
    if "settings" in exported:
        pairs += _setting_pairs(exported["settings"])
    name = clean_inline(attributes.get("title") or attributes.get("text"))
    return Restored(
        kind=cast(SourceKind, kind),
        title=name if name != url else None,
        paused=paused == "true",
        text_mode=cast(TextMode, mode),
        change=parse_settings(pairs),
        site=absolute_http_url(attributes.get("htmlUrl"), "") or None,
    )


def _setting_pairs(text: str) -> list[str]:
    """The `key=value` pairs of `feeds set` that an `ingest:settings` JSON object stands for."""
    try:
        value = json.loads(text)
    except ValueError as e:
        # Its text is not quoted: its headers may be credentials.
        raise ValueError(f"ingest:settings is not JSON: {e}") from None
    headers = value.pop("headers", {}) if isinstance(value, dict) else None
    if not isinstance(value, dict) or not isinstance(headers, dict):
        raise ValueError("ingest:settings is not a JSON object of settings")
    pairs = []
    for key, item in [*value.items(), *((f"header.{k}", v) for k, v in headers.items())]:
        if key in ("min_interval", "max_interval") and isinstance(item, int | float):
            item = f"{int(item)}s" if float(item).is_integer() else str(item)
        if not isinstance(item, str) or "=" in key:
            raise ValueError(f"ingest:settings: {key!r} is not a setting of one line")
        pairs.append(f"{key}={item}")
    return pairs


def article_line(row: Mapping[str, Any]) -> str:
    """One line of `ingest articles`: published time, site, title, URL (and what it copies)."""
    copy = f"  (copy of {row['duplicate_of']})" if row["duplicate_of"] else ""
    title = row["title"] or "(no title)"
    return f"{_when(row['published_at'])}  {row['site']:<24}  {title}  <{row['url']}>{copy}"


INVALID_DSN = "DATABASE_URL is not a valid connection string"


_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
"""The connection parameters that are secrets: the password, and the passphrase of the
client's key (OpenSSL asks for it on the terminal when it is not given)."""


def safe_dsn(dsn: str) -> str:
    """The connection string without its password (libpq reads it from PGPASSWORD or
    ~/.pgpass instead) nor the passphrase of its client key, naming the same hosts and ports.
    A password with an unescaped `@`, whose tail libpq takes for the host, is masked there too.
    Raises ValueError for a string libpq cannot read (psycopg's message would quote it,
    password included)."""
    params = {k: v for k, v in _conninfo(dsn).items() if k not in _SECRET_PARAMETERS}
    if dsn.startswith(("postgresql://", "postgres://")):
        return redact(_url(params), dsn)
    return redact(make_conninfo(**{k: str(v) for k, v in params.items()}), dsn)


def _conninfo(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.Error:
        raise ValueError(INVALID_DSN) from None


def _url(params: Mapping[str, Any]) -> str:
    from urllib.parse import quote, urlencode

    user = quote(str(params["user"]), safe="") + "@" if params.get("user") else ""
    options = {k: str(v) for k, v in params.items() if k not in ("user", "host", "port", "dbname")}
    netloc = _netloc(str(params.get("host") or ""), str(params.get("port") or ""))
    if netloc is None:  # Unix socket directories, or one port for several hosts: in the query
        socket = {k: str(params[k]) for k in ("host", "port") if params.get(k)}
        options = socket | options
        netloc = ""
    db = "/" + quote(str(params.get("dbname") or ""), safe="")
    query = "?" + urlencode(options) if options else ""
    return f"postgresql://{user}{netloc}{db}{query}"


def _netloc(host: str, port: str) -> str | None:
    """`host:port` of a URI as libpq reads it: each of several hosts beside its own port, an
    IPv6 address in brackets; None when the hosts cannot be written there (a socket
    directory, or not one port a host)."""
    hosts = host.split(",") if host else []
    ports = port.split(",") if port else [""] * len(hosts)
    if not hosts or len(ports) != len(hosts) or any(h.startswith("/") for h in hosts):
        return None if host or port else ""
    pairs = zip(hosts, ports, strict=True)
    return ",".join((f"[{h}]" if ":" in h else h) + (f":{p}" if p else "") for h, p in pairs)


def password_of(dsn: str) -> str | None:
    password = _conninfo(dsn).get("password")
    return None if password is None else str(password)


def parse_since(value: str, now: datetime) -> datetime:
    """`--since`: an age as `ingest prune` writes it (2h, 3d, 1w: `ingest.retention`), or an
    ISO 8601 date, week, month, year or time, from its start, as `backfill --since` reads it
    (`parse_date_bound`: a date is midnight UTC, a time without an offset is UTC). Raises
    ValueError, or OverflowError for an age reaching back before year 1."""
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    return parse_date_bound(value)


def site_filter(value: str) -> str:
    """`articles --site` as `news.articles.site` spells a site: the host alone, in its one
    spelling, without `www.` (`site_of`), whether given as a host (`WWW.Example.COM`) or as a
    link to it (`https://www.example.com/news/`); a value that is neither is left as given."""
    text = value.strip()
    try:
        return site_of(canonical_url(text if "://" in text else f"http://{text}/"))
    except ValueError:
        return text


def json_rows(rows: Sequence[Mapping[str, Any]], *, ascii_only: bool = False) -> str:
    return to_json([dict(row) for row in rows], ascii_only=ascii_only)


@dataclass(frozen=True)
class SettingsChange:
    """What one `ingest feeds set` changes: settings (None removes a key), headers (None
    removes one), tags (None leaves them), text mode (None leaves it)."""

    changes: dict[str, Any]
    headers: dict[str, str | None]
    tags: list[str] | None
    text_mode: TextMode | None


SETTING_KEYS = "min_interval, max_interval, user_agent, header.NAME, tags, pages"
_SETTING_KEY = re.compile(r"[^=:\s]*")
_PAGES: dict[str, TextMode] = {"always": "page", "never": "feed", "auto": "auto"}


def parse_settings(pairs: Sequence[str]) -> SettingsChange:
    """`key=value` pairs of `ingest feeds set`; an empty value removes the setting. Raises
    ValueError naming the pair that is wrong (by its key alone where its value may be a
    header's credential)."""
    changes: dict[str, Any] = {}
    headers: dict[str, str | None] = {}
    tags: list[str] | None = None
    text_mode: TextMode | None = None
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            # Named by what reads as its key: what follows may be a header's credential.
            named = _SETTING_KEY.match(pair.strip())
            raise ValueError(f"{named[0] if named else ''!r}: expected key=value ({SETTING_KEYS})")
        if key in ("min_interval", "max_interval"):
            try:
                changes[key] = parse_duration(value).total_seconds() if value else None
            except ValueError as e:
                raise ValueError(f"{pair!r}: {e}") from None
        elif key == "user_agent":
            changes[key] = _header_value(repr(pair), value) or None
        elif key.startswith("header.") and len(key) > len("header."):
            name = key[len("header.") :]
            if not name.isascii() or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"{key!r}: not a header name")
            if name.lower() in SERVICE_HEADERS:
                raise ValueError(f"{key!r}: {name} is set by the service")
            # One header whatever the case of its name (RFC 9110): the last spelling given.
            for given in [n for n in headers if n.lower() == name.lower()]:
                del headers[given]
            # A value refused is not quoted: it may be a credential.
            headers[name] = _header_value(repr(key), value) or None
        elif key == "tags":
            tags = list(unique_tags(value.split(",")))
        elif key == "pages":
            if value and value not in _PAGES:
                raise ValueError(f"{pair!r}: pages is always, never or auto")
            # Removed, the setting is the default: auto.
            text_mode = _PAGES[value or "auto"]
        else:
            # Not quoted whole: a mistyped `header.` setting's value may be a credential.
            raise ValueError(f"{key!r}: unknown setting ({SETTING_KEYS})")
    low, high = changes.get("min_interval"), changes.get("max_interval")
    if low is not None and high is not None and high < low:
        raise ValueError("max_interval is below min_interval")
    return SettingsChange(changes, headers, tags, text_mode)


def _header_value(named: str, value: str) -> str:
    """`value` as a header's value; else a ValueError that begins with `named` and says which
    character is wrong, where it is."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as e:
        where = f"{value[e.start]!r} at character {e.start + 1}"
        raise ValueError(f"{named}: a header value must be Latin-1 ({where})") from None
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"{named}: a header value is one line")
    if (i := next((i for i, c in enumerate(value) if _is_control(c)), None)) is not None:
        # RFC 9110: no control character (but tab) in a field value; servers answer 400.
        where = f"{value[i]!r} at character {i + 1}"
        raise ValueError(f"{named}: a header value has no control character ({where})")
    return value


def _is_control(c: str) -> bool:
    return (ord(c) < 32 and c != "\t") or c == "\x7f"
