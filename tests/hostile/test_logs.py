"""Secrets in logs: an exception raised while a DSN with a password is in a local variable, in
its message, or bound to the logger never puts the password on a log line, in JSON or console
format, from structlog or from a stdlib logger (psycopg, httpx), traceback included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ingest import logs

SECRET = "Pw-9f3c-hostile"
DSNS = [
    f"postgresql://ingest:{SECRET}@db.internal:5432/news",
    f"postgresql://ingest:{SECRET}@tail@db.internal/news",  # unescaped "@" in the password
    f"postgresql:/ingest:{SECRET}@db.internal/news",  # a mistyped scheme
    f"host=db.internal user=ingest password={SECRET} dbname=news",
    f"host=db.internal password='{SECRET} x' dbname=news",
    # Spellings libpq reads whose password holds what a log line escapes or quotes.
    f"postgresql://ingest:a'{SECRET}@db.internal/news",  # an unescaped quote in a URL
    f'postgresql://ingest:a"{SECRET}@db.internal/news',
    f"host=db.internal password='a\\' {SECRET}' dbname=news",  # an escaped quote
    f'host=db.internal password=a"{SECRET} dbname=news',
    f"host=db.internal password=a\\{SECRET} dbname=news",  # a backslash
    f"host=db.internal password=a,}}{SECRET} dbname=news",
    f"host=db.internal password=\u00e9t\u00e9{SECRET} dbname=news",  # not ASCII
    f"host=db.internal password = '{SECRET}' dbname=news",
    f"host=db.internal sslkey=/k sslpassword={SECRET} dbname=news",  # the key's passphrase
]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield io.StringIO()
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    structlog.reset_defaults()


def connect_and_fail(dsn: str) -> None:
    password = dsn  # locals holding the secret in every frame of the traceback
    settings = {"database_url": dsn, "password": SECRET}
    raise ConnectionError(f"could not connect with {password} ({len(settings)} settings)")


def _log_everything(dsn: str) -> None:
    log = structlog.get_logger("ingest.test")
    try:
        connect_and_fail(dsn)
    except ConnectionError:
        log.exception("feed_bug", dsn=dsn)
        log.error("tick_failed", error=f"database unreachable: {dsn}")
        logging.getLogger("psycopg.pool").warning("error connecting to %s", dsn, exc_info=True)
        logging.getLogger("httpx").error("request failed", exc_info=True)


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize(
    "dsn",
    DSNS,
    ids=[
        *["url", "unescaped-at", "typo", "keywords", "quoted"],
        *["url-quote", "url-double-quote", "escaped-quote", "double-quote", "backslash"],
        *["comma-brace", "not-ascii", "spaced", "sslpassword"],
    ],
)
def test_password_is_in_no_log_line(captured: io.StringIO, fmt: str, dsn: str) -> None:
    """Every line, tracebacks included, carries the event and the exception but not the
    password; tracebacks show no local variables."""
    logs.configure(fmt, "info", stream=captured)  # type: ignore[arg-type]
    _log_everything(dsn)
    out = captured.getvalue()
    assert "feed_bug" in out
    assert "tick_failed" in out
    assert "ConnectionError" in out
    assert "error connecting to" in out
    assert SECRET not in out, out
    assert "settings = " not in out  # no locals in tracebacks
    if fmt == "json":  # redacted, each line is still one JSON object
        assert all(json.loads(line) for line in out.splitlines()), out


TOKEN = "Tk-5e1f-hostile"


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize("value", [TOKEN, f"\u00e9t\u00e9{TOKEN}"], ids=["ascii", "not-ascii"])
def test_a_feed_url_s_query_token_is_in_no_log_line(
    captured: io.StringIO, fmt: str, value: str
) -> None:
    """A feed URL with a credential in its query string (`?token=`, `api_key=`, `sig=`), in a
    bound value, a message, an exception or a stdlib logger's line, has the value replaced by
    `***` on every line, by the rule the views of schema news follow
    (`ingest.normalize.redact_url`); its other parameters stay readable. Also a value that a
    JSON line escapes (`\u00e9`: was, in JSON, `token=***` followed by the rest of the value
    after its first such character)."""
    logs.configure(fmt, "info", stream=captured)  # type: ignore[arg-type]
    log = structlog.get_logger("ingest.test")
    url = f"https://example.com/feed.xml?page=2&token={value}&api_key={value}"
    try:
        raise ConnectionError(f"cannot fetch {url}")
    except ConnectionError:
        log.exception("feed_bug", url=url)
    log.error("feed_failed", feed_url=url, error=f"redirect to {url};sig={TOKEN}#x")
    logging.getLogger("httpx").warning('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    out = captured.getvalue()
    assert "feed_bug" in out
    assert "feed_failed" in out
    assert "HTTP Request" in out
    assert "page=2" in out
    assert "token=***" in out
    assert TOKEN not in out, out


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.parametrize(
    "url",
    [
        f"https://{TOKEN}@example.com/feed.xml",
        f"https://reader:{TOKEN}@example.com/feed.xml",
        f"https://{TOKEN}:x-oauth-basic@example.com/feed.xml",
        # A user-info that a JSON line escapes (was: kept whole in JSON, `\u00e9` and all).
        f"https://\u00e9t\u00e9{TOKEN}@example.com/feed.xml",
    ],
    ids=["token", "user-password", "token-as-user", "not-ascii"],
)
def test_a_url_s_user_info_is_in_no_log_line(captured: io.StringIO, fmt: str, url: str) -> None:
    """A URL with a token as its user name or password (`https://TOKEN@host/feed`), in a bound
    value, a message, an exception or a stdlib logger's line, is logged without its user-info,
    by the rule stored error texts and the views of schema news follow
    (`ingest.normalize.redact_text`)."""
    logs.configure(fmt, "info", stream=captured)  # type: ignore[arg-type]
    log = structlog.get_logger("ingest.test")
    try:
        raise ConnectionError(f"cannot fetch {url}")
    except ConnectionError:
        log.exception("feed_bug", url=url)
    log.error("feed_failed", error=f"redirect to '{url}'")
    logging.getLogger("httpx").warning('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    out = captured.getvalue()
    assert "feed_bug" in out
    assert "feed_failed" in out
    assert "HTTP Request" in out
    assert "https://example.com/feed.xml" in out
    assert TOKEN not in out, out
