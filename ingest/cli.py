"""The `ingest` command line. Exit codes: 0 success (also when some feeds failed: they are
recorded on the feed), 1 the command itself could not work (one line on stderr), 2 usage, 141
the reader of the output went away."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import dataclasses
import io
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

import structlog

from ingest import __version__, logs
from ingest.config import Settings, load_settings, run_problem, unknown_variables
from ingest.errors import ConfigError, DatabaseSilent, IngestError, LockLost
from ingest.launcher import hung_up, terminated
from ingest.normalize import canonical_url, redact_text, redact_url, without_feed_scheme
from ingest.store import Store
from ingest.store.db import (
    connect,
    connection_defaults,
    database_url,
    migrate,
    open_pool,
    watching,
)
from ingest.store.retention import FORGET_PRUNED_AFTER

if TYPE_CHECKING:
    from ingest.admin import Restored, SettingsChange
    from ingest.types import SourceKind

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ingest", description="News ingestion service.")
    p.add_argument("--version", action="version", version=f"news-ingest {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="apply the sql/ migrations (idempotent)")

    feeds = sub.add_parser("feeds", help="manage the feeds that are polled")
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    add = fsub.add_parser(
        "add",
        help="register feeds; a site's home page is searched for its feeds",
        description="Register feeds. A URL that does not look like a feed's (a site's home "
        "page) is fetched: if it answers a web page, the feeds it links with <link "
        'rel="alternate">, else the first common feed path that answers a feed, else a news '
        "sitemap listed in its robots.txt (kind 'sitemap'), are registered instead.",
    )
    add.add_argument("urls", nargs="+", metavar="URL", type=_feed_url)
    add.add_argument(
        "--no-discover",
        action="store_true",
        help="register the URLs as given, without fetching them",
    )
    ls = fsub.add_parser(
        "list", help="list feeds: state, kind, last status, next fetch, why inactive"
    )
    ls.add_argument("--json", action="store_true", help="the same fields, as JSON")
    ls.add_argument(
        "--show-credentials",
        action="store_true",
        help="URLs as registered, user-info and token parameters included (default: as "
        "news.feeds shows them, https://host/feed?token=***)",
    )
    show = fsub.add_parser(
        "show",
        help="everything about one feed",
        description="A feed's state, last status and error, why it is inactive, next fetch, "
        "interval, text mode and the articles it holds.",
    )
    show.add_argument("url", metavar="FEED", type=_feed_ref, help=FEED_HELP)
    show.add_argument("--json", action="store_true", help="as one JSON object")
    enable = fsub.add_parser(
        "enable", help="re-activate a feed now (inactive or paused), its failures forgotten"
    )
    enable.add_argument("url", metavar="FEED", type=_feed_ref, help=FEED_HELP)
    disable = fsub.add_parser("disable", help="pause a feed: not polled until enabled")
    disable.add_argument("url", metavar="FEED", type=_feed_ref, help=FEED_HELP)
    fset = fsub.add_parser(
        "set",
        help="a feed's own settings: interval bounds, User-Agent, headers, tags, pages",
        description="Set a feed's own settings, applied on its next poll by every replica: "
        "min_interval=15m and max_interval=6h bound its poll interval; user_agent=... and "
        "header.NAME=VALUE go with its feed and page requests; tags=a,b group feeds (shown in "
        "news.feeds); pages=always|never|auto is its text mode (always: the page; never: the "
        "feed's own text). An empty value removes a setting.",
    )
    fset.add_argument("url", metavar="FEED", type=_feed_ref, help=FEED_HELP)
    fset.add_argument("change", nargs="+", metavar="KEY=VALUE", action=_SettingsAction)
    export = fsub.add_parser(
        "export", help="write the feeds as OPML 2.0 (read back by `feeds import`)"
    )
    export.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="path (default: standard output)"
    )
    mode = fsub.add_parser(
        "text-mode",
        help="where a feed's article text comes from: auto, page or feed",
        description="auto (the default): pages are fetched until the feed's own entries prove "
        "to carry the whole article, then only re-checked; page: always the page; feed: "
        "always the entry's own text while it has one (teasers still fetch the page).",
    )
    mode.add_argument("url", metavar="FEED", type=_feed_ref, help=FEED_HELP)
    mode.add_argument("mode", choices=["auto", "page", "feed"])
    rm = fsub.add_parser("remove", help="stop polling a feed (its articles stay)")
    rm.add_argument("url", metavar="FEED", type=_feed_ref, help=FEED_HELP)
    imp = fsub.add_parser(
        "import",
        help="register the feeds of an OPML file or a URL-a-line file",
        description="Register every URL of an OPML file or of a file with one URL a line. "
        "A URL that does not look like a feed's is searched for its feeds as `feeds add` "
        "does.",
    )
    imp.add_argument("file", metavar="FILE", help="path, or - for standard input")
    imp.add_argument(
        "--no-discover",
        action="store_true",
        help="register the URLs as given, without fetching them",
    )

    arts = sub.add_parser(
        "articles",
        help="the latest articles, as news.articles shows them",
        description="The latest articles, newest first, as a consumer reads them from "
        "news.articles: for checking the service works without writing SQL.",
    )
    arts.add_argument(
        "--feed",
        metavar="FEED",
        type=_feed_ref,
        help="first seen in, or listed by, this feed (its URL, or its id in `feeds list`)",
    )
    arts.add_argument(
        "--site",
        metavar="SITE",
        type=_site,
        help="this site (news.articles.site): its host, or a link to it",
    )
    arts.add_argument(
        "--since",
        metavar="WHEN",
        type=_since,
        help="published since: ISO 8601, or an age (2h, 3d, 1w)",
    )
    arts.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="at most N (20)")
    arts.add_argument("--json", action="store_true", help="as JSON, text included")

    db = sub.add_parser("db", help="reach the database: its URL, or psql on it")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dsub.add_parser(
        "url", help="print the connection string in use (the password is never printed)"
    )
    dsub.add_parser("shell", help="open psql on the database in use")

    run = sub.add_parser("run", help="run the service (or one pass with --once)")
    run.add_argument("--once", action="store_true", help="process due feeds once and exit")
    run.add_argument(
        "--all", action="store_true", help="ignore the schedule: poll every active feed"
    )

    bf = sub.add_parser(
        "backfill",
        help="fetch the history of a site, a feed or a sitemap (resumable)",
        description="Fetch and store the older articles of a site (its feeds and the sitemaps "
        "of its robots.txt), of a feed (its RFC 5005 / WordPress ?paged=N history) or of a "
        "sitemap or sitemap index, and/or of an explicit URL list. Progress is checkpointed "
        "in PostgreSQL: the same command started again continues where it stopped.",
    )
    bf.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        type=_feed_ref,
        help="a site's home page, a feed or a sitemap URL; or a registered feed's id",
    )
    bf.add_argument(
        "--since",
        metavar="DATE",
        type=_date_bound,
        help="skip URLs dated before DATE (YYYY-MM-DD, YYYY-DDD, YYYY-Www, YYYY-MM, YYYY or ISO "
        "8601)",
    )
    bf.add_argument(
        "--until",
        metavar="DATE",
        type=_date_end,
        help="skip URLs dated after DATE (a date keeps its whole day, a week or month all of it)",
    )
    bf.add_argument(
        "--limit", metavar="N", type=_positive_int, help="fetch at most N URLs, newest first"
    )
    bf.add_argument(
        "--max-pages",
        metavar="N",
        type=_positive_int,
        help="walk at most N pages of each feed's paged history (default 1000, at most 32767)",
    )
    bf.add_argument(
        "--max-sitemaps",
        metavar="N",
        type=_positive_int,
        help="walk at most N sitemaps, indexes included, the newest first (default 10000)",
    )
    bf.add_argument(
        "--dry-run", action="store_true", help="list the URLs that would be fetched; store nothing"
    )
    bf.add_argument(
        "--urls", metavar="FILE", help="article URLs to fetch, one a line (- reads stdin)"
    )
    bf.add_argument(
        "--rate",
        metavar="N",
        type=_non_negative_float,
        default=2.0,
        help="at most N requests per second for this invocation (default 2; 0: no limit)",
    )
    bf.add_argument(
        "--dated-only", action="store_true", help="skip URLs without a date (default: keep them)"
    )
    bf.add_argument(
        "--all-pages",
        action="store_true",
        help="store pages that do not look like articles too (default: skip and count them: "
        "og:type website or profile, no date, too little text)",
    )
    bf.add_argument(
        "--restart", action="store_true", help="forget this backfill's progress and start over"
    )

    pr = sub.add_parser(
        "prune",
        help="remove articles older than a limit, with everything that hangs off them",
        description="Remove the articles published before now minus --older-than, oldest "
        "first, with their URL forms, band rows, earlier versions and change rows; their feed "
        "entries stay known to their feeds (so they are not stored again) and copies that "
        "outlive their original are re-pointed at the earliest published of them. Works in "
        "batches, one short transaction each, beside a running service.",
    )
    pr.add_argument(
        "--older-than",
        metavar="AGE",
        required=True,
        type=_age,
        help="e.g. 90d, 12h, 2w (units s, m, h, d, w)",
    )
    pr.add_argument(
        "--dry-run", action="store_true", help="print what would be removed; change nothing"
    )
    pr.add_argument(
        "--batch",
        metavar="N",
        type=_positive_int,
        default=250,
        help="articles removed and copies re-pointed per transaction (default 250)",
    )
    pr.add_argument(
        "--forget-pruned-after",
        metavar="AGE",
        type=_age,
        default=FORGET_PRUNED_AFTER,
        help="forget the URL forms of articles pruned longer ago than AGE, so that a backfill"
        " may store them again (default 365d)",
    )
    for commands in (sub, fsub, dsub):
        for command in commands.choices.values():
            # The parser whose usage a `_UsageError` of its command prints.
            command.set_defaults(command_parser=command)
    return p


class _UsageError(Exception):
    """A value the command line cannot take that only shows once it is parsed (two options at
    odds, a list of URLs too long): a usage error of its command, as one argparse finds."""


def _usage_error(args: argparse.Namespace, error: _UsageError) -> NoReturn:
    """Exit 2 with the usage of the command given and the reason, as argparse does."""
    command: argparse.ArgumentParser = args.command_parser
    command.error(str(error))


def _date_bound(text: str, *, end: bool = False) -> datetime:
    """`backfill --since` (`--until` with `end`: `_date_end`)."""
    from ingest.periods import parse_date_bound

    try:
        return parse_date_bound(text, end=end)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            "not a date (YYYY-MM-DD, YYYYMMDD, YYYY-Www-D or YYYY-DDD), a week YYYY-Www, a "
            f"month YYYY-MM, a year YYYY or an ISO 8601 datetime: {e}"
        ) from None


def _date_end(text: str) -> datetime:
    return _date_bound(text, end=True)


def _duration(text: str) -> timedelta:
    from ingest.retention import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _age(text: str) -> timedelta:
    """A duration that, back from now, stays within the calendar (from year 1)."""
    age = _duration(text)
    try:
        datetime.now(UTC) - age
    except OverflowError:
        raise argparse.ArgumentTypeError(f"reaches back before year 1: {text!r}") from None
    return age


MAX_COUNT = 2**63 - 1
"""The largest --limit or --batch: a PostgreSQL bigint, as each is sent."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT}: {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def _feed_url(text: str) -> str:
    """A feed's URL argument in canonical form, so that spellings of one URL name one feed;
    one in the `feed:` URI scheme (a page's feed link copied, `feed://host/rss`) as the
    http(s) URL it stands for, as in a page or an OPML file (`normalize.without_feed_scheme`).
    Every command that names a feed or a backfill's TARGET reads its URL so."""
    try:
        return canonical_url(without_feed_scheme(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(redact_text(str(e))) from None


FEED_HELP = "the feed's URL, or its id: the number `feeds list` prints first"

FeedRef = str | int
"""A registered feed as the command line names it: its URL (canonical) or its id."""


def _feed_ref(text: str) -> FeedRef:
    """A feed named on the command line: a whole number is the id `feeds list` prints (no
    feed's URL is one: each is an absolute http(s) URL), anything else its URL."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        return _feed_url(text)
    value = int(digits)
    if value < 1:
        raise argparse.ArgumentTypeError(f"an id is at least 1: {text!r}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"an id is at most {MAX_COUNT}: {text!r}")
    return value


def _since(text: str) -> datetime:
    """`articles --since`: a time, or an age back from now."""
    from ingest import admin

    try:
        return admin.parse_since(text, datetime.now(UTC))
    except OverflowError:
        raise argparse.ArgumentTypeError(f"reaches back before year 1: {text!r}") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time or an age: {text!r}") from None


def _site(text: str) -> str:
    """`articles --site` as news.articles.site spells it; empty, it names no site (an unset
    variable in a script: `--site "$SITE"`), which would list nothing as if it had none."""
    from ingest import admin

    if not text.strip():
        raise argparse.ArgumentTypeError(f"no site: {text!r}")
    return admin.site_filter(text)


class _SettingsAction(argparse.Action):
    """The KEY=VALUE pairs of `feeds set`, read into one `SettingsChange` as the command line
    is parsed: a pair it cannot take is a usage error, as a bad choice is."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        from ingest import admin

        try:
            change = admin.parse_settings([str(v) for v in values or ()])
        except ValueError as e:
            raise argparse.ArgumentError(self, str(e)) from None
        setattr(namespace, self.dest, change)


class _OutputLost(Exception):
    """A write to stdout that failed: its reader went away, or its device is full."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror)
        self.error = error


def _stdout_is_unicode() -> bool:
    """Whether stdout's encoding carries every character (UTF-8, a UTF-16 or UTF-32); where it
    does not, JSON is written with its own escapes, which read back as the characters."""
    try:
        return codecs.lookup(sys.stdout.encoding or "ascii").name.startswith("utf")
    except LookupError:
        return False


class _Stdout:
    """stdout, whose write errors are `_OutputLost`: told apart from any other OSError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as e:
            raise _OutputLost(e) from e

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise _OutputLost(e) from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _discard_stdout() -> None:
    """stdout on /dev/null from here on: the interpreter flushes it at exit, and a write that
    cannot be done would end the process with a traceback there."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _check(args)
    except _UsageError as e:
        _usage_error(args, e)
    stdout = sys.stdout
    if isinstance(stdout, io.TextIOWrapper):
        # An output whose encoding cannot carry a character (a Latin-1 locale) shows it as an
        # escape (`\\u2013`), not a UnicodeEncodeError halfway through a listing.
        stdout.reconfigure(errors="backslashreplace")
    sys.stdout = cast(TextIO, _Stdout(stdout))
    # As `ingest.launcher` does, for `-m ingest.cli`.
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, hung_up)
    try:
        settings = load_settings()
        logs.configure(settings.log_format, settings.log_level, stream=sys.stderr)
        logs.catch_unhandled()
        for name, meant in unknown_variables():
            # Not an error: a platform sets variables of its own (Kubernetes' service links),
            # and an older version's settings may linger; but a typo's value is not in force.
            log.warning("config_unknown_variable", variable=name, did_you_mean=meant)
        command = _COMMANDS[args.command]
        code = command(args, settings)
        sys.stdout.flush()  # here, where a failure to write is handled below, not at exit
        return code
    except IngestError as e:
        print(redact_text(f"ingest: {e}"), file=sys.stderr)
        return 1
    except _UsageError as e:
        _usage_error(args, e)
    except _OutputLost as e:
        _discard_stdout()
        if isinstance(e.error, BrokenPipeError):
            # The reader went away (`ingest feeds list | head`): the rest is nobody's. Exit
            # as a program SIGPIPE stopped would.
            return 141
        print(f"ingest: cannot write the output: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM or SIGHUP during `run --once`
        return _cancelled_exit()
    finally:
        sys.stdout = stdout


def _run(coro_fn: Callable[[str], Coroutine[Any, Any, int]], settings: Settings) -> int:
    dsn = database_url(settings)
    # A SIGTERM (SIGHUP) waits while the event loop is made (its handler raises SystemExit,
    # which would leave a loop half made, whose clean-up prints a traceback), and the
    # command's coroutine is made once the loop is there (one never run says so too).
    came: list[int] = []
    handlers = {
        sig: signal.signal(sig, lambda signum, frame: came.append(signum))
        for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        runner = asyncio.Runner()
        runner.get_loop()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    with runner:
        for signum in came[:1]:
            if callable(handler := handlers[signal.Signals(signum)]):
                handler(signum, None)
        return runner.run(coro_fn(dsn))


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def go(dsn: str) -> int:
        applied = await migrate(dsn)
        print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
        return 0

    return _run(go, settings)


def _import_list(file: str, *, discover: bool) -> tuple[list[str], list[str], dict[str, Restored]]:
    """The URLs of a feed list to register, in canonical form, what was rejected, each with
    its line (what is valid is imported even when some lines are not), and the feeds of
    outlines `feeds export` wrote, to register as they were."""
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {file}: {e.strerror or e}") from e
    # Here, not at the top: lxml is for this command only (5 ms of every other's start-up).
    from ingest import admin
    from ingest.documents.feedlists import read_feed_list

    urls: list[str] = []
    rejected: list[str] = []
    restored: dict[str, Restored] = {}
    for entry in read_feed_list(data):
        where = f"{file}:{entry.line}" if entry.line else file
        if entry.site and not discover:
            rejected.append(
                f"{where}: {entry.url} is a site (htmlUrl only): import it without --no-discover"
            )
            continue
        try:
            url = canonical_url(entry.url)
            feed = admin.restored(url, entry.attributes)
        except ValueError as e:
            rejected.append(f"{where}: {e}")
            continue
        if feed is not None:
            restored.setdefault(url, feed)
        urls.append(url)
    return list(dict.fromkeys(urls)), rejected, restored


async def _registered_url(store: Store, feed: FeedRef) -> str | None:
    """The URL to look the feed named on the command line up by: the URL given, or the one
    the feed of the id given is registered under (None when no feed has that id)."""
    return feed if isinstance(feed, str) else await store.feed_url(feed)


async def _no_such_feed(store: Store, feed: FeedRef) -> int:
    """Say that no feed has this URL (or id), and, when one is shown so (`feeds list` hides
    its credentials: the URL was copied from it), how to name it. Exit status 1."""
    if isinstance(feed, int):
        print(f"ingest: no such feed: id {feed}", file=sys.stderr)
        return 1
    shown = redact_url(feed)
    hint = ""
    if any(redact_url(row["url"]) == shown for row in await store.list_feeds()):
        hint = (
            " (a feed with credentials is shown so; name it by its id or as registered: "
            "`ingest feeds list --show-credentials`)"
        )
    print(f"ingest: no such feed: {shown}{hint}", file=sys.stderr)
    return 1


async def _with_store(dsn: str, fn: Callable[[Store], Awaitable[int]]) -> int:
    await migrate(dsn)
    pool = await open_pool(dsn, max_size=2)
    try:
        async with watching(dsn, pool):
            return await fn(Store(pool))
    finally:
        await pool.close()


def cmd_feeds(args: argparse.Namespace, settings: Settings) -> int:
    action = args.feeds_command
    if action in ("add", "import"):
        rejected: list[str] = []
        restored: dict[str, Restored] = {}
        if action == "add":
            checked = list(args.urls)
        else:
            checked, rejected, restored = _import_list(args.file, discover=not args.no_discover)
        if not args.no_discover:
            code = _run(lambda dsn: _add_discovering(dsn, settings, checked, restored), settings)
        else:

            async def add(store: Store) -> int:
                added = 0
                for url in checked:
                    feed = restored.get(url)
                    kind, title = (feed.kind, feed.title) if feed else ("feed", None)
                    site = feed.site if feed else None
                    if await store.add_feed(url, title, kind=kind, site_url=site):
                        if feed is not None:
                            await _restore(store, url, feed)
                        added += 1
                        print(f"added   {redact_url(url)}")
                    else:
                        print(f"present {redact_url(url)}")
                print(f"{added} added, {len(checked) - added} already present")
                return 0

            code = _run(lambda dsn: _with_store(dsn, add), settings)
        # What could not be imported, after what could: each line once, and exit 1.
        for line in rejected:
            print(redact_text(f"ingest: {line}"), file=sys.stderr)
        return 1 if rejected else code

    if action == "set":
        return _run(
            lambda dsn: _with_store(dsn, lambda store: _set(args.url, args.change, store)),
            settings,
        )
    if action in ("list", "show", "enable", "disable", "export"):
        return _run(lambda dsn: _with_store(dsn, lambda store: _feed_admin(args, store)), settings)

    if action == "text-mode":

        async def set_mode(store: Store) -> int:
            url = await _registered_url(store, args.url)
            if url is not None and await store.set_text_mode(url, args.mode):
                print(f"text mode {args.mode}: {redact_url(url)}")
                return 0
            return await _no_such_feed(store, args.url)

        return _run(lambda dsn: _with_store(dsn, set_mode), settings)

    async def remove(store: Store) -> int:
        url = await _registered_url(store, args.url)
        if url is not None and await store.remove_feed(url):
            print(f"removed {redact_url(url)}")
            return 0
        return await _no_such_feed(store, args.url)

    return _run(lambda dsn: _with_store(dsn, remove), settings)


PAUSED = "paused by the operator"


async def _feed_admin(args: argparse.Namespace, store: Store) -> int:
    """`feeds list`, `show`, `enable`, `disable` and `export`."""
    from ingest import admin

    action = args.feeds_command
    if action in ("list", "export"):
        feeds = await (store.export_feeds() if action == "export" else store.list_feeds())
        if action == "export":
            if args.file == "-":
                sys.stdout.write(admin.opml(feeds, ascii_only=not _stdout_is_unicode()))
            else:
                try:
                    await asyncio.to_thread(_write_private, Path(args.file), admin.opml(feeds))
                except OSError as e:
                    raise ConfigError(f"cannot write {args.file}: {e.strerror or e}") from None
                print(f"{len(feeds)} feeds written to {args.file}", file=sys.stderr)
        else:
            if not args.show_credentials:
                feeds = [admin.shown_feed(feed) for feed in feeds]
            if args.json:
                print(admin.json_rows(feeds, ascii_only=not _stdout_is_unicode()))
            else:
                for feed in feeds:
                    print(admin.feed_line(feed))
        return 0
    url = await _registered_url(store, args.url)
    if url is None:
        found = False
    elif action == "show":
        details = await store.feed_details(url)
        found = details is not None
        if details is not None:
            print(
                admin.to_json(details, ascii_only=not _stdout_is_unicode())
                if args.json
                else "\n".join(admin.feed_details(details))
            )
    elif action == "enable":
        if found := await store.enable_feed(url):
            print(f"enabled {redact_url(url)}: due now")
    elif found := await store.disable_feed(url, PAUSED):
        print(f"paused {redact_url(url)}")
    if not found:
        return await _no_such_feed(store, args.url)
    return 0


def _write_private(path: Path, text: str) -> None:
    """`text` into `path`, whole or not at all: written into a new file beside it, then
    renamed over it, so that an export that fails midway (a full device) leaves the file it
    was to replace, last night's backup, as it was. A file it creates is readable by its owner
    alone (an export holds the feeds' credentials: user-info, request headers); one that
    exists keeps its mode and, where it may, its owner. What is not a regular file (a device,
    a pipe), or is in a directory where no file can be made, is written in place."""
    try:
        existing: os.stat_result | None = path.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        _write_in_place(path, text)
        return
    target = path.resolve()  # a symbolic link's file is replaced, not the link
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except PermissionError:
        if existing is None:
            raise
        _write_in_place(path, text)
        return
    try:
        with open(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if existing is not None:
            os.chmod(temp, stat.S_IMODE(existing.st_mode))
            with contextlib.suppress(OSError):
                os.chown(temp, existing.st_uid, existing.st_gid)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _write_in_place(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        out.write(text)


async def _restore(store: Store, url: str, feed: Restored) -> None:
    """A feed just added from an exported outline made as it was: its settings, text mode and
    pause."""
    change = feed.change
    if change.changes or change.headers or change.tags is not None:
        await store.set_feed_settings(url, change.changes, change.headers, change.tags)
    if feed.text_mode != "auto":
        await store.set_text_mode(url, feed.text_mode)
    if feed.paused:
        await store.disable_feed(url, PAUSED)


async def _set(feed: FeedRef, change: SettingsChange, store: Store) -> int:
    """`feeds set`: store the settings; print what the feed has now."""
    url = await _registered_url(store, feed)
    stored = None
    if url is not None:
        stored = await store.set_feed_settings(url, change.changes, change.headers, change.tags)
    if url is None or stored is None:
        return await _no_such_feed(store, feed)
    if change.text_mode is not None:
        await store.set_text_mode(url, change.text_mode)
    shown = {k: v for k, v in stored["settings"].items() if k != "headers"}
    names = sorted(stored["settings"].get("headers") or {})
    print(f"set {redact_url(url)}: settings {shown}, headers {names}, tags {list(stored['tags'])}")
    return 0


def cmd_articles(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import admin

    since, feed, site = args.since, args.feed, args.site

    async def latest(store: Store) -> int:
        url = None if feed is None else await _registered_url(store, feed)
        if feed is not None and (url is None or await store.feed_by_url(url) is None):
            # No feed, no articles of it: a typo is told apart from a feed that stored none.
            return await _no_such_feed(store, feed)
        rows = await store.latest_articles(feed=url, site=site, since=since, limit=args.limit)
        if args.json:
            print(admin.json_rows(rows, ascii_only=not _stdout_is_unicode()))
        else:
            for row in rows:
                print(admin.article_line(row))
        return 0

    return _run(lambda dsn: _with_store(dsn, latest), settings)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    import os
    import shutil
    import subprocess

    import psycopg
    from psycopg.conninfo import make_conninfo

    from ingest import admin

    dsn = database_url(settings)
    try:
        safe, password = admin.safe_dsn(dsn), admin.password_of(dsn)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if args.db_command == "url":
        print(safe)
        return 0
    psql = shutil.which("psql")
    if psql is None:
        raise ConfigError("psql not found on PATH: install the PostgreSQL client")
    # Connected as the service's own connections are: a database gone silent fails psql's
    # connection after the connect timeout, and its session after the keepalives' minute,
    # rather than never.
    try:
        conninfo = make_conninfo(safe, **connection_defaults(dsn))
    except psycopg.Error:  # as `safe_dsn` masked it: psql says what it makes of it
        conninfo = safe
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    sys.stdout.flush()
    # A child, not exec: an embedded server this command started is stopped when psql exits.
    # Ctrl-C reaches the terminal's whole foreground group, this command too: it is psql's
    # (it cancels the query in progress, or clears the line), and must neither end this
    # command nor have it kill psql. A handler of our own, not SIG_IGN: exec resets it to the
    # default in psql, which installs its own.
    previous = signal.signal(signal.SIGINT, _psql_s_ctrl_c)
    try:
        return subprocess.run([psql, conninfo], env=env, check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)


def _psql_s_ctrl_c(signum: int, frame: object) -> None:
    """SIGINT while `db shell` runs psql: psql's to handle."""


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import open_pipeline
    from ingest.workers.pool import stop_promptly

    if (problem := run_problem(settings, serving=not args.once)) is not None:
        raise ConfigError(problem)  # before the database is reached and the workers start

    async def go(dsn: str) -> int:
        if not args.once:
            from jobs.service import serve  # the scheduler: not needed by a single pass

            # Until the service is under way (its migrations, their wait for another
            # replica's), SIGTERM and SIGHUP stop it where it is: there is nothing to drain.
            _cancel_on_sigterm()
            await serve(settings, dsn)  # it migrates, its endpoints answering meanwhile
            return 0
        await migrate(dsn)  # its connection fails fast, with one clear line, when unreachable
        stop_promptly()
        async with open_pipeline(settings, dsn) as pipeline:
            # SIGTERM (SIGHUP) cancels the pass as Ctrl-C does: claimed feeds are handed back.
            _cancel_on_sigterm()
            async with watching(dsn, pipeline.store.pool):
                summary = await pipeline.run(all_feeds=args.all)
        print(
            f"feeds: {summary.feeds} ({summary.ok} ok, {summary.not_modified} not modified, "
            f"{summary.failed} failed, {summary.held} held); articles: {summary.new_articles} new "
            f"({summary.from_feed} from full-text feeds without a request), "
            f"{summary.updated} updated, {summary.skipped} skipped, "
            f"{summary.page_errors} stored from feed text for want of a usable page"
        )
        return 0

    return _run(go, settings)


CHECKS_AT_ONCE = 16
"""URLs `feeds add` and `feeds import` check at the same time."""


async def _add_discovering(
    dsn: str, settings: Settings, urls: Sequence[str], restored: Mapping[str, Restored]
) -> int:
    """`feeds add` with discovery: URLs that look like a feed's, are registered already, or
    come from an exported outline (`restored`: registered as they were) are registered as
    given without a request; any other is fetched, and a web page is replaced by the feeds
    found for it (or a news sitemap). A URL that cannot be fetched, or where nothing is found,
    is registered as given, as `feeds add` always did: its polls then say why."""
    from ingest.documents.discovery import looks_like_feed_url
    from ingest.errors import FetchError
    from ingest.fetch import Fetcher
    from ingest.sources import find_feeds

    await migrate(dsn)
    pool = await open_pool(dsn, max_size=2)
    runs = Store(pool)
    added = present = 0

    async def register(
        url: str,
        kind: SourceKind = "feed",
        note: str = "",
        title: str | None = None,
        site: str | None = None,
    ) -> None:
        nonlocal added, present
        if await runs.add_feed(url, kind=kind, title=title, site_url=site):
            if (feed := restored.get(url)) is not None:
                await _restore(runs, url, feed)
            added += 1
            print(redact_text(f"added   {url}{note}"))
        else:
            present += 1
            print(redact_text(f"present {url}{note}"))

    async def check(url: str) -> list[tuple[str, SourceKind, str, str | None, str | None]]:
        """What to register for `url`: (url, kind, note, title, site) each."""
        if (feed := restored.get(url)) is not None:
            return [(url, feed.kind, "", feed.title, feed.site)]
        if looks_like_feed_url(url) or await runs.feed_by_url(url) is not None:
            return [(url, "feed", "", None, None)]
        async with checking:
            try:
                found = await find_feeds(fetcher.fetch, url, max_bytes=settings.max_feed_bytes)
            except FetchError as e:
                return [(url, "feed", f"  (not checked: {e})", None, None)]
        if not found:
            return [(url, "feed", "  (no feed found there: registered as given)", None, None)]
        return [(f.url, f.kind, f"  ({f.how})" if f.how else "", f.title, f.site) for f in found]

    # URLs are checked concurrently (each host's politeness still holds in the Fetcher) and
    # registered in the order given, each as soon as it and those before it are checked: a
    # long list that a slow host holds up keeps, and shows, what was checked before it when
    # it is stopped there.
    checking = asyncio.Semaphore(CHECKS_AT_ONCE)
    try:
        async with watching(dsn, pool), Fetcher(settings) as fetcher:
            checks = [asyncio.ensure_future(check(url)) for url in urls]
            try:
                for checked in checks:
                    for url, kind, note, title, site in await checked:
                        await register(url, kind, note, title, site)
            finally:
                for task in checks:
                    task.cancel()
                await asyncio.gather(*checks, return_exceptions=True)
    finally:
        await pool.close()
    print(f"{added} added, {present} already present")
    return 0


def _check(args: argparse.Namespace) -> None:
    """What a command cannot take of its options together, found before the database is
    reached: raises `_UsageError`."""
    if args.command == "run" and args.all and not args.once:
        raise _UsageError("--all only makes sense with --once")
    if args.command != "backfill":
        return
    from ingest.backfill.options import MAX_PAGES_CEILING

    if not args.target and not args.urls:
        raise _UsageError("give a TARGET URL (a site, a feed or a sitemap), or --urls FILE")
    if args.since and args.until and args.since >= args.until:
        raise _UsageError("--since must be before --until")
    if args.max_pages is not None and args.max_pages > MAX_PAGES_CEILING:
        raise _UsageError(f"--max-pages must be at most {MAX_PAGES_CEILING}: {args.max_pages}")


LOCK_LOST_EXIT = 3
"""`ingest backfill` stopped because the database session holding its lock ended mid-run."""


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.backfill import (
        BackfillOptions,
        LogReporter,
        Reporter,
        RichReporter,
        read_url_list,
        run_backfill,
        summary_lines,
    )
    from ingest.backfill.options import (
        DEFAULT_MAX_PAGES,
        DEFAULT_MAX_SITEMAPS,
        MAX_LISTED_URLS,
        TooManyUrls,
    )

    target: FeedRef | None = args.target
    listed: list[str] = []
    if args.urls:
        try:
            with (
                contextlib.nullcontext(sys.stdin.buffer)
                if args.urls == "-"
                else Path(args.urls).open("rb")
            ) as stream:
                listed, invalid = read_url_list(stream)
        except OSError as e:
            raise ConfigError(f"cannot read {args.urls}: {e.strerror or e}") from e
        except TooManyUrls:
            raise _UsageError(
                f"{args.urls} lists more than {MAX_LISTED_URLS} URLs, the most one backfill "
                "takes: split it into several lists"
            ) from None
        if invalid:
            print(
                f"ingest backfill: {invalid} line(s) of {args.urls} are not http(s) URLs, ignored",
                file=sys.stderr,
            )
        if not listed and target is None:
            raise ConfigError(f"no URL in {args.urls}")
    options = BackfillOptions(
        target=target if isinstance(target, str) else None,
        since=args.since,
        until=args.until,
        limit=args.limit,
        dated_only=args.dated_only,
        all_pages=args.all_pages,
        urls=tuple(listed),
        dry_run=args.dry_run,
        restart=args.restart,
        rate=args.rate,
        max_pages=DEFAULT_MAX_PAGES if args.max_pages is None else args.max_pages,
        max_sitemaps=args.max_sitemaps or DEFAULT_MAX_SITEMAPS,
    )

    async def go(dsn: str) -> int:
        nonlocal options
        conn = await connect(dsn)  # fail fast with one clear line when unreachable
        await conn.close()
        await migrate(dsn)
        if isinstance(target, int):  # a registered feed's id: its URL, as registered
            pool = await open_pool(dsn, max_size=1)
            try:
                async with watching(dsn, pool):
                    store = Store(pool)
                    if (url := await store.feed_url(target)) is None:
                        return await _no_such_feed(store, target)
            finally:
                await pool.close()
            options = dataclasses.replace(options, target=url)
        _cancel_on_sigterm()
        tty = sys.stderr.isatty() and settings.log_format != "json"
        reporter: Reporter = RichReporter() if tty else LogReporter()
        report = await run_backfill(
            settings, dsn, options, reporter=reporter, echo=lambda url: print(url, flush=True)
        )
        lines = summary_lines(report, options)
        if options.dry_run:
            # stdout is the URL list alone; the summary goes beside it.
            print(f"{len(report.dry_run_urls)} URL(s) would be fetched", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)
        else:
            print("\n".join(lines))
        return 0

    try:
        return _interruptible(
            lambda: _run(go, settings),
            "ingest: backfill interrupted; run the same command again to continue",
        )
    except LockLost as e:
        # Not the exit 1 of a backfill that cannot run: it ran, and stopped for want of its
        # lock, its checkpoint intact.
        print(f"ingest: {e}; stopped, run the same command again to continue", file=sys.stderr)
        return LOCK_LOST_EXIT
    except DatabaseSilent as e:
        # Stopped as every command is, its checkpoint intact: the next invocation resumes.
        print(f"ingest: {e}; run the same command again to continue", file=sys.stderr)
        return 1


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    async def prune(store: Store) -> int:
        cutoff = await store.retention_cutoff(args.older_than)
        when = f"published before {cutoff.isoformat(timespec='seconds')}"
        if args.dry_run:
            c = await store.prune_counts(cutoff)
            work = c.articles + c.repointed  # a batch's N: articles removed and copies re-pointed
            print(
                f"would remove {c.articles} articles {when} in {-(-work // args.batch)} "
                f"batch(es) of {args.batch}, with {c.urls} URL forms, {c.bands} band rows, "
                f"{c.history} earlier versions and {c.changes} change rows, unlink {c.entries} "
                f"feed entries and re-point {c.repointed} copies (dry run: nothing changed)"
            )
            return 0
        _cancel_on_sigterm()  # rolls the batch in progress back; earlier ones stay
        r = await store.prune(cutoff, batch=args.batch)
        forgotten = await store.forget_pruned_urls(args.forget_pruned_after)
        log.info("pruned_urls_forgotten", urls=forgotten)
        print(
            f"removed {r.articles} articles {when} in {r.batches} batch(es), "
            f"{r.seconds:.1f} s; {r.repointed} copies re-pointed"
        )
        return 0

    interrupted = (
        "ingest: prune interrupted (dry run: nothing changed)"
        if args.dry_run
        else "ingest: prune interrupted; the batch in progress was rolled back, earlier ones"
        " are removed; run the same command again to continue"
    )
    return _interruptible(lambda: _run(lambda dsn: _with_store(dsn, prune), settings), interrupted)


_cancelled_by: list[int] = []
"""The signal `_cancel_on_sigterm` cancelled the command for, if one did."""


def _cancel_on_sigterm() -> None:
    """SIGTERM cancels the running command as Ctrl-C does, so that its own clean-up runs (a
    transaction rolled back, leases handed back); so does SIGHUP, the hang-up of the terminal
    it runs in the foreground of (an SSH session closed), whose default action would kill it
    before that."""
    task = asyncio.current_task()
    assert task is not None
    _cancelled_by.clear()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, _cancel_for, sig, task)


def _cancel_for(sig: int, task: asyncio.Task[Any]) -> None:
    _cancelled_by.append(sig)
    task.cancel()


def _cancelled_exit() -> int:
    """The exit status of a command `_cancel_on_sigterm` cancelled: 128 + the signal's number,
    as the shell reports a command the signal ended (143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + (_cancelled_by[0] if _cancelled_by else signal.SIGTERM)


def _interruptible(run: Callable[[], int], message: str) -> int:
    """`run()`; interrupted, `message` on stderr and exit 130 (Ctrl-C), 143 (SIGTERM) or 129
    (SIGHUP)."""
    try:
        return run()
    except KeyboardInterrupt:
        print(message, file=sys.stderr)
        return 130
    except asyncio.CancelledError:  # SIGTERM or SIGHUP, through _cancel_on_sigterm
        print(message, file=sys.stderr)
        return _cancelled_exit()


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "migrate": cmd_migrate,
    "feeds": cmd_feeds,
    "run": cmd_run,
    "articles": cmd_articles,
    "db": cmd_db,
    "backfill": cmd_backfill,
    "prune": cmd_prune,
}


if __name__ == "__main__":
    raise SystemExit(main())
