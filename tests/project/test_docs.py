"""The documents a newcomer reads against the code they describe: the README's configuration
table against `Settings`, its command table against the `ingest` parser, the log events the
documents name against those the code logs (and the fields of the two lines the README lists
field by field), the tests docs/hostile.md names against the test files, and docs/sql.md's
list of contract changes against the migrations that change schema `news`. A setting, option,
event or test added, renamed or removed fails here until the documents say so. (The views'
columns, and the objects of schema `news`, are checked against a migrated database in
tests/store/test_migrate.py, the metrics in tests/pipeline/test_liveness.py.)"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from dataclasses import MISSING, Field, fields
from functools import cache
from itertools import takewhile
from pathlib import Path
from typing import Any

import pytest

from ingest.cli import _parser
from ingest.config import Settings, _shown, variable
from tests.support.paths import DATA, ROOT

README = ROOT / "README.md"
DOCUMENTS = (
    README,
    ROOT / "docs" / "sql.md",
    ROOT / "docs" / "hostile.md",
    ROOT / "bench" / "README.md",
)


def _section(text: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of that level."""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


# --------------------------------------------------------------------------- configuration


def _configuration_table() -> dict[str, str]:
    """Variable -> its default cell, from the README's configuration table."""
    section = _section(README.read_text(encoding="utf-8"), "Configuration")
    return dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]*) \|", section, flags=re.MULTILINE))


def test_the_configuration_table_lists_every_setting_and_nothing_else() -> None:
    """One row a setting: a setting added to `Settings` without a row, or a row left behind by
    a setting renamed or removed, is a variable the operator cannot find or sets for nothing."""
    assert set(_configuration_table()) == {variable(f.name) for f in fields(Settings)}


@pytest.mark.parametrize(
    "setting",
    [f for f in fields(Settings) if f.default not in (MISSING, None)],
    ids=lambda f: f.name,
)
def test_each_default_in_the_configuration_table_is_the_code_s(setting: Field[Any]) -> None:
    """Each default the table gives is `Settings`' own, written as the README writes numbers
    (`0.5`, `30`: a seconds setting's whole number without `.0`). The defaults computed at
    start-up (the data directory, the workers) and the unset DATABASE_URL are checked in
    test_config.py."""
    default = setting.default
    shown = str(default).lower() if isinstance(default, bool) else _shown(default)
    assert _configuration_table()[variable(setting.name)] == f"`{shown}`"


# --------------------------------------------------------------------------- command line


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], set[str]]:
    """Each command the parser takes (its words after `ingest`) -> its option strings, `-h`
    and `--help` left out; a command with subcommands is listed only when it has options of
    its own (`ingest --version`)."""
    options: set[str] = set()
    found: dict[tuple[str, ...], set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _commands(sub, (*path, name))
        else:
            options |= set(action.option_strings) - {"-h", "--help"}
    if options or not found:
        found[path] = options
    return found


def _documented_commands() -> dict[tuple[str, ...], set[str]]:
    """Each command of the README's command table (the first cell of a row: `ingest feeds
    enable FEED` / `disable FEED`, the second one under the first one's parent) -> the
    options written in its usage."""
    section = _section(README.read_text(encoding="utf-8"), "Command line")
    documented: dict[tuple[str, ...], set[str]] = {}
    for cell in re.findall(r"^\| (`ingest(?:[^|\\]|\\.)*?) \|", section, flags=re.MULTILINE):
        parent: tuple[str, ...] = ()
        for usage in re.findall(r"`([^`]+)`", cell):
            words = usage.split()
            words = words[1:] if words[0] == "ingest" else [*parent, *words]
            path = tuple(takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), words))
            parent = path[:-1]
            documented.setdefault(path, set()).update(re.findall(r"--[a-z][a-z-]*", usage))
    return documented


def test_the_command_table_has_every_command_with_its_options() -> None:
    """Every `ingest` command and each of its options appear in the README's command table,
    and the table names no command or option the parser does not take."""
    code = _commands(_parser())
    documented = _documented_commands()
    assert sorted(set(code) - set(documented)) == [], "commands missing from the README"
    assert sorted(set(documented) - set(code)) == [], "commands the parser does not take"
    wrong = {
        " ".join(("ingest", *path)): (sorted(code[path] - options), sorted(options - code[path]))
        for path, options in documented.items()
        if options != code[path]
    }
    assert wrong == {}, "(options missing from the README, options the parser does not take)"


# --------------------------------------------------------------------------- log events

_EVENT = r"`[a-z][a-z0-9]*(?:_[a-z0-9]+)+`"
_EVENTS_AFTER = re.compile(
    r"(?:\blog\s+events?|\blogged\s+as|\blogging|\blogs|\blog\s+lines?[,:]|\bwarning,)\s+"
    rf"({_EVENT}(?:(?:,|,?\s+and|,?\s+or)\s+{_EVENT})*)"
)
_EVENT_BEFORE = re.compile(rf"({_EVENT})\s+(?:log\s+line|\(?in\s+the\s+log)")


def _documented_events() -> set[str]:
    """The names the documents give as log events: after "log event(s)", "logged as",
    "logging", "logs", "log line," or "warning,", and before "log line" or "in the log"."""
    events: set[str] = set()
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in _EVENTS_AFTER.finditer(text):
            events |= set(re.findall(r"`([a-z0-9_]+)`", match[1]))
        events |= {match[1].strip("`") for match in _EVENT_BEFORE.finditer(text)}
    return events


@cache
def _strings_of_the_code() -> frozenset[str]:
    """Every string constant of the modules of ingest/ and jobs/."""
    strings: set[str] = set()
    for package in ("ingest", "jobs"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    strings.add(node.value)
    return frozenset(strings)


def test_the_documents_name_log_events() -> None:
    """The phrases the next test reads events from still find them (the README names a few
    dozen): a rewording that hid them all would leave that test checking nothing."""
    assert {"tick_done", "feed_processed", "host_held", "migration_waiting"} <= (
        _documented_events()
    )


def test_every_log_event_the_documents_name_is_logged() -> None:
    """Each log event the README, docs/ and bench/README.md name is a string of the code (the
    event of a `log.info(...)` call, or one chosen among others): an event renamed or no longer
    logged leaves an operator's alert or a bench's parser waiting for nothing."""
    assert sorted(_documented_events() - _strings_of_the_code()) == []


def _fields_between(text: str, opening: str, closing: str) -> list[str]:
    """The names in backticks between `opening` and `closing`, those within parentheses (what
    a field's values are) left out."""
    listed = text.split(opening, 1)[1].split(closing, 1)[0]
    return re.findall(r"`([a-z_]+)`", re.sub(r"\([^()]*\)", "", listed))


def _keywords_of_the_event(event: str) -> set[str]:
    """The keyword arguments of the code's one log call of `event`."""
    calls = [
        node
        for package in ("ingest", "jobs")
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == event
    ]
    assert len(calls) == 1, f"{event}: {len(calls)} calls"
    return {k.arg for k in calls[0].keywords if k.arg is not None}


def test_the_fields_of_feed_processed_are_those_the_readme_lists() -> None:
    """The README's list of the fields of `feed_processed`, the line every feed ends with (the
    line the benches read), is the one the pipeline logs, no more and no fewer."""
    readme = README.read_text(encoding="utf-8")
    listed = _fields_between(readme, "one log line, `feed_processed`, carrying ", " (`new` counts")
    assert sorted(listed) == sorted(_keywords_of_the_event("feed_processed"))


def test_the_fields_of_tick_done_are_those_the_readme_lists() -> None:
    """The README's list of the counts of `tick_done` (and of `tick_failed`, `tick_bug`) is
    the one a pass logs."""
    from ingest.outcomes import RunSummary
    from jobs.tasks import pass_counts

    readme = README.read_text(encoding="utf-8")
    listed = _fields_between(readme, "one log line,\n`tick_done` (", ": articles updated")
    assert listed == list(pass_counts(RunSummary()))


# --------------------------------------------------------------------------- layout


def _layout() -> dict[str, str]:
    """Each directory of the README's Layout (`ingest/`, `ingest/fetch/`, `jobs/`, ...) -> what
    its entry says, the lines under it included."""
    block = _section(README.read_text(encoding="utf-8"), "Layout").split("```")[1]
    entries = re.split(r"^(?=\S)", block, flags=re.MULTILINE)
    return {entry.split()[0]: entry for entry in entries if entry.strip()}


def test_the_layout_names_every_module() -> None:
    """Each module of ingest/ and jobs/ is named in its directory's entry of the README's
    Layout (or by its path anywhere in it), so that a newcomer looking for where the
    configuration, the logs or the metrics live finds them there."""
    layout = _layout()
    everything = "".join(layout.values())
    unnamed = [
        path.relative_to(ROOT).as_posix()
        for package in ("ingest", "jobs")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.stem not in ("__init__", "__main__")
        and path.relative_to(ROOT).as_posix() not in everything
        and not re.search(
            rf"\b{path.stem}\b",
            layout.get(path.parent.relative_to(ROOT).as_posix() + "/", ""),
        )
    ]
    assert unnamed == []


# --------------------------------------------------------------------------- paths

_PATH = re.compile(
    r"(?<![\w./-])((?:tests|ingest|jobs|bench|docs|sql|seeds|\.ci)/[\w./-]*?"
    r"(?:\.(?:py|sql|md|json|sh|toml|yml|txt|html|xml)|/))(?![\w-])"
)


def _written_paths() -> dict[str, set[str]]:
    """Each path of the repository (a file with its extension, or a directory with its final
    slash) written in the documents, the container and build files, and the code of ingest/,
    jobs/ and bench/ (its messages and docstrings) -> where."""
    sources = [
        *DOCUMENTS,
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / name for name in ("Dockerfile", "docker-compose.yml", "Makefile")),
        ROOT / "pyproject.toml",
        *(ROOT / ".ci").iterdir(),
        *(
            path
            for package in ("ingest", "jobs", "bench")
            for path in (ROOT / package).rglob("*.py")
        ),
    ]
    written: dict[str, set[str]] = {}
    for source in sources:
        for path in _PATH.findall(source.read_text(encoding="utf-8")):
            if re.search(r"/(?:NAME|NNNN)\b", path):  # a placeholder: `bench/NAME.py`
                continue
            written.setdefault(path.rstrip("/"), set()).add(source.relative_to(ROOT).as_posix())
    return written


def test_every_path_written_exists() -> None:
    """Every file or directory of the repository that the documents or the code's messages
    name is there (`tests/fetch/test_httpx_internals.py`, not a `tests/unit/` the suite no
    longer has): a path that moved sends its reader nowhere."""
    written = _written_paths()
    assert len(written) > 50, "no paths found"
    missing = {path: sorted(where) for path, where in written.items() if not (ROOT / path).exists()}
    assert missing == {}


# --------------------------------------------------------------------------- hostile.md

_TEST_REFERENCE = re.compile(
    r"`((?:[\w/]+/)?test_\w+\.py)?((?:::(?:Test\w+::)?test_\w+)+)(?:\[[^\]`]*\])?`"
)


def _definitions_of_the_tests() -> dict[str, set[str]]:
    """Each test file (its path from the root) -> the functions and classes it defines."""
    return {
        path.relative_to(ROOT).as_posix(): {
            node.name
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        for path in (ROOT / "tests").rglob("test_*.py")
    }


def test_every_test_the_documents_name_exists() -> None:
    """Each test a row of docs/hostile.md, or another document, names
    (`tests/x/test_y.py::test_z[*]`, a file of tests/hostile/ by its name alone, `::test_z` in
    the file named before it in the row or paragraph) is defined there: a test renamed or
    removed leaves the case it pins down pinned down by nothing."""
    definitions = _definitions_of_the_tests()
    by_name: dict[str, list[str]] = {}
    for path in definitions:
        by_name.setdefault(path.rsplit("/", 1)[1], []).append(path)
    missing = []
    references = 0
    rows = [
        row
        for document in (*DOCUMENTS, ROOT / "docs" / "performance.md")
        for row in document.read_text(encoding="utf-8").splitlines()
    ]
    files: list[str] = []
    for row in rows:
        if not row.strip() or row.startswith("|"):  # a paragraph's `::test_z` wraps lines
            files = []
        for match in _TEST_REFERENCE.finditer(row):
            named, tests = match.groups()
            if named:
                files = (
                    [named]
                    if "/" in named
                    else [p for p in by_name.get(named, []) if p.startswith("tests/hostile/")]
                    or by_name.get(named, [])
                )
            references += 1
            for test in tests.strip(":").split("::"):
                if not any(test in definitions.get(f, set()) for f in files):
                    missing.append(f"{named or files}::{test}")
    assert references > 400, "the rows' test references not found"
    assert missing == []


# --------------------------------------------------------------------------- counts


def test_the_counts_of_the_labelled_corpora_are_those_of_tests_data() -> None:
    """The labelled pages (`33 pages, 10 template styles`) and near-duplicate pairs (`64
    labelled pairs`) the README and bench/README.md count are the files of tests/data/: a page
    or pair added there shows here until the figures are taken again."""
    pages = sorted((DATA / "pages").glob("*.expected.json"))
    styles = {json.loads(p.read_text(encoding="utf-8"))["template"] for p in pages}
    pairs = json.loads((DATA / "neardup" / "pairs.json").read_text(encoding="utf-8"))
    readme = README.read_text(encoding="utf-8")
    bench = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    assert f"({len(pages)} pages, {len(styles)} template styles, `tests/data/pages/`)" in readme
    assert f"{len(pages)} hand-written pages in {len(styles)}\ntemplate styles" in bench
    assert f"({len(pairs)} labelled pairs, `tests/data/neardup/`)" in readme
    assert f"`tests/data/neardup/pairs.json` (or `--data FILE`), {len(pairs)} pairs" in bench


def test_docs_hostile_md_counts_the_tests_of_tests_hostile() -> None:
    """docs/hostile.md gives the size of the hostile suite ("158 tests: `pytest tests/hostile`"),
    as pytest collects it (each parameter a test)."""
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n0", "-p", "no:cacheprovider",
         "tests/hostile"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    count = re.search(r"^(\d+) tests collected", collected, flags=re.MULTILINE)
    assert count is not None, collected[-2000:]
    text = (ROOT / "docs" / "hostile.md").read_text(encoding="utf-8")
    assert f"The suite is `tests/hostile/` ({count[1]} tests: `pytest tests/hostile`)" in text


# --------------------------------------------------------------------------- SQL contract

_CHANGES_NEWS = re.compile(
    r"^\s*(?:CREATE|ALTER|DROP|GRANT|REVOKE)\b[^;]*?\bnews\.", flags=re.MULTILINE | re.IGNORECASE
)


def test_every_change_of_schema_news_is_in_the_sql_contract_s_list_of_changes() -> None:
    """docs/sql.md promises a line for every change to the contract: each migration after the
    one that made it (0004) that creates, alters, drops or grants something of schema `news`
    is named there (`0005`)."""
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    unnamed = [
        path.name
        for path in sorted((ROOT / "sql").glob("[0-9][0-9][0-9][0-9]_*.sql"))
        if int(path.name[:4]) > 4
        and _CHANGES_NEWS.search(path.read_text(encoding="utf-8"))
        and f"`{path.name[:4]}`" not in text
    ]
    assert unnamed == []


def _column_rows(path: Path, view: str) -> dict[str, str]:
    """Column -> its whole table row, under the heading "### `<view>`" of a document."""
    text = path.read_text(encoding="utf-8")
    section = text[text.index(f"### `{view}`") :].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return dict(re.findall(r"^(?=\| `([a-z_]+)` \|)(.*)$", section, flags=re.MULTILINE))


@pytest.mark.parametrize("view", ["news.articles", "news.feeds"])
def test_the_readme_s_tables_of_the_views_are_docs_sql_md_s(view: str) -> None:
    """The README repeats the tables of `news.articles` and `news.feeds` from docs/sql.md:
    each row says there what it says in the contract, so that an edit of one reaches the
    other (the README said `language` was an ISO 639-1 code after the contract had its
    three-letter codes)."""
    readme = _column_rows(README, view)
    assert len(readme) > 10
    assert readme == _column_rows(ROOT / "docs" / "sql.md", view)
