"""The log lines `ingest.logs.configure` sets up: the project's own events as one JSON object a
line, with their level, logger name and time, filtered by `INGEST_LOG_LEVEL` (also for loggers
structlog cached under an earlier configuration), written without the stdlib's LogRecord; the
stdlib loggers of libraries in the same format on the same stream."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from ingest import logs
from tests.support.paths import ROOT


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogRecordFactory())
    yield io.StringIO()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.setLogRecordFactory(saved[2])
    structlog.reset_defaults()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_carries_the_event_its_level_logger_and_time(out: io.StringIO) -> None:
    logs.configure("json", "info", stream=out)
    structlog.get_logger("ingest.example").info("feed_polled", feed_id=7)
    (line,) = lines(out)
    assert line["event"] == "feed_polled"
    assert line["feed_id"] == 7
    assert line["level"] == "info"
    assert line["logger"] == "ingest.example"
    assert line["timestamp"].endswith("Z")


def test_the_level_filters_lines_also_of_a_logger_cached_before(out: io.StringIO) -> None:
    logs.configure("json", "warning", stream=out)
    log = structlog.get_logger("ingest.example")
    log.info("dropped")
    log.warning("kept")
    log.debug("dropped_too")
    assert [line["event"] for line in lines(out)] == ["kept"]
    other = io.StringIO()
    logs.configure("json", "debug", stream=other)
    log.debug("now_kept")
    assert [line["event"] for line in lines(other)] == ["now_kept"]


def test_an_exception_is_rendered_on_its_line(out: io.StringIO) -> None:
    logs.configure("json", "info", stream=out)
    try:
        raise ValueError("broken feed")
    except ValueError:
        structlog.get_logger("ingest.example").exception("feed_bug")
    (line,) = lines(out)
    assert line["level"] == "error"
    assert "broken feed" in json.dumps(line["exception"])


def test_project_lines_build_no_stdlib_record_and_library_lines_share_the_format(
    out: io.StringIO,
) -> None:
    logs.configure("json", "info", stream=out)
    made: list[str] = []
    factory: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record.name)
        return record

    logging.setLogRecordFactory(counting)
    structlog.get_logger("ingest.example").info("own_line")
    assert made == []
    logging.getLogger("psycopg.pool").warning("library line %s", 1)
    assert "psycopg.pool" in made
    own, library = lines(out)
    assert (own["event"], own["logger"], own["level"]) == ("own_line", "ingest.example", "info")
    assert (library["event"], library["logger"], library["level"]) == (
        "library line 1",
        "psycopg.pool",
        "warning",
    )


class _BrokenPipe(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_line_that_cannot_be_written_does_not_raise_into_the_caller(
    out: io.StringIO, fmt: str
) -> None:
    """stderr gone (a closed pipe, a full disk): the line is lost, as a logging handler loses
    it, and the code that logged goes on; it used to, when every line went through one."""
    logs.configure(fmt, "info", stream=_BrokenPipe())  # type: ignore[arg-type]
    structlog.get_logger("ingest.example").info("feed_polled", feed_id=7)
    structlog.get_logger("ingest.example").error("feed_bug", feed_id=7)


def test_a_line_that_cannot_be_rendered_does_not_raise_into_the_caller(out: io.StringIO) -> None:
    """A value JSON cannot render (a dict with tuple keys) costs that line, not the caller's
    work, as it did when the renderer ran in the logging handler; the next line goes out."""
    logs.configure("json", "info", stream=out)
    log = structlog.get_logger("ingest.example")
    log.info("counted", by_pair={("a", 1): 2})
    log.info("next_line")
    assert "next_line" in [line["event"] for line in lines(out)]


SECRET = "Pw-7d2a-lost"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_library_line_that_cannot_be_rendered_shows_none_of_its_arguments(
    out: io.StringIO, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library's line that cannot be formatted (its arguments do not fit its message) is lost
    with the note the project's own lines get, naming its message and not its arguments: the
    stdlib's handler printed a traceback with the arguments as given, a DSN's password and a
    feed's token included, past the redaction of every other line."""
    logs.configure(fmt, "info", stream=out)  # type: ignore[arg-type]
    dsn = f"postgresql://ingest:{SECRET}@db.internal/news"
    logging.getLogger("psycopg.pool").warning("error connecting to %s in %s", dsn)
    logging.getLogger("httpx").warning("next line")
    stderr = capsys.readouterr().err
    assert SECRET not in stderr + out.getvalue()
    assert "Traceback" not in stderr
    assert "error connecting to %s in %s" in stderr
    assert "next line" in out.getvalue()


def test_a_lost_line_s_note_is_a_json_line_in_json_mode(
    out: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    """In JSON mode the note of a lost line is a JSON line too, naming the event lost and why
    (was: a line of text among the JSON ones, which a log shipper parsing JSON refuses)."""
    logs.configure("json", "info", stream=out)
    structlog.get_logger("ingest.example").info("counted", by_pair={("a", 1): 2})
    logging.getLogger("psycopg.pool").warning("error connecting to %s in %s", "x")
    notes = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(n["event"], n["lost_event"], n["error"], n["level"]) for n in notes] == [
        ("log_line_lost", "counted", "TypeError", "error"),
        ("log_line_lost", "error connecting to %s in %s", "TypeError", "error"),
    ]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_python_warning_is_a_log_line(out: io.StringIO, fmt: str) -> None:
    """A warning a library raises (`warnings.warn`) goes out as a line of the configured
    format, on the log stream, at level warning (was: printed by the warnings module as two
    lines of text on stderr, in JSON mode too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logs.configure(fmt, "info", stream=out)  # type: ignore[arg-type]
        warnings.warn("the old way is going away", DeprecationWarning, stacklevel=1)
    text = out.getvalue()
    assert "the old way is going away" in text
    if fmt == "json":
        (line,) = lines(out)
        assert line["level"] == "warning"
        assert line["logger"] == "py.warnings"


# `ingest migrate` whose command has a bug: before it raises, a thread of its dies of one and an
# object's finalizer raises (the interpreter's "Exception ignored in"); each error quotes a DSN.
A_COMMAND_WITH_A_BUG = textwrap.dedent(
    """
    import sys
    import threading

    import ingest.cli
    from ingest import launcher

    DSN = "postgresql://ingest:SECRET@db.test/news"

    class Leaky:
        def __del__(self):
            raise OSError(f"cannot close {DSN}")

    def broken(args, settings):
        thread = threading.Thread(target=lambda: 1 / 0, name="helper")
        thread.start()
        thread.join()
        Leaky()
        raise RuntimeError(f"a bug, connected to {DSN}")

    ingest.cli._COMMANDS["migrate"] = broken
    sys.argv = ["ingest", "migrate"]
    sys.exit(launcher.main())
    """
)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_an_exception_nobody_handles_is_a_log_line(fmt: str) -> None:
    """An exception that ends the command (a bug), one that ends a thread of it and one the
    interpreter can only ignore (raised by a finalizer) are each a line of the log, in its
    format, `unhandled_exception` with the traceback, the DSN's password redacted: in JSON every
    line on stderr parses, for a log shipper that reads one object a line; the command still
    exits 1 (was: Python's multi-line tracebacks as text, the password in them)."""
    proc = subprocess.run(
        [sys.executable, "-c", A_COMMAND_WITH_A_BUG],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("INGEST_")},
            "INGEST_LOG_FORMAT": fmt,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "SECRET" not in proc.stderr
    if fmt == "console":
        assert proc.stderr.count("unhandled_exception") == 3, proc.stderr
        return
    try:
        lines = [json.loads(line) for line in proc.stderr.splitlines()]
    except json.JSONDecodeError:
        raise AssertionError(f"a line of stderr is no JSON: {proc.stderr!r}") from None
    unhandled = [line for line in lines if line["event"] == "unhandled_exception"]
    assert [(line["level"], line["exception"][0]["exc_type"]) for line in unhandled] == [
        ("error", "ZeroDivisionError"),
        ("error", "OSError"),
        ("critical", "RuntimeError"),
    ]
    assert unhandled[0]["thread"] == "helper"
    assert "Leaky" in unhandled[1]["context"]
