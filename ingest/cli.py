"""The `ingest` command line. Exit codes: 0 success (also when some feeds failed: they are
recorded on the feed), 1 the command itself could not work (one line on stderr), 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from ingest import __version__, logs
from ingest.config import Settings, load_settings
from ingest.db import connect, database_url, migrate, open_pool
from ingest.errors import ConfigError, IngestError
from ingest.feedlist import parse_feed_list
from ingest.normalize import canonical_url
from ingest.store import Store

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ingest", description="News ingestion service.")
    p.add_argument("--version", action="version", version=f"news-ingest {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="apply the sql/ migrations (idempotent)")

    feeds = sub.add_parser("feeds", help="manage the feeds that are polled")
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    add = fsub.add_parser("add", help="register feed URLs")
    add.add_argument("urls", nargs="+", metavar="URL")
    fsub.add_parser("list", help="list feeds with their status")
    rm = fsub.add_parser("remove", help="stop polling a feed (its articles stay)")
    rm.add_argument("url", metavar="URL")
    imp = fsub.add_parser("import", help="register the feeds of an OPML file or a URL-a-line file")
    imp.add_argument("file", metavar="FILE", help="path, or - for standard input")

    run = sub.add_parser("run", help="run the service (or one pass with --once)")
    run.add_argument("--once", action="store_true", help="process due feeds once and exit")
    run.add_argument("--all", action="store_true", help="ignore the schedule: poll every feed")

    sub.add_parser("backfill", help="fetch a site's history (not available yet)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.all and not args.once:
        parser.error("--all only makes sense with --once")
    try:
        settings = load_settings()
        logs.configure(settings.log_format, settings.log_level, stream=sys.stderr)
        command = _COMMANDS[args.command]
        return command(args, settings)
    except IngestError as e:
        print(f"ingest: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM during `run --once`
        return 143


def _run(coro_fn: Callable[[str], Coroutine[Any, Any, int]], settings: Settings) -> int:
    dsn = database_url(settings)
    return asyncio.run(coro_fn(dsn))


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def go(dsn: str) -> int:
        applied = await migrate(dsn)
        print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
        return 0

    return _run(go, settings)


def _check_feed_url(url: str) -> str:
    """The feed URL in canonical form, so that spellings of one URL make one feed."""
    try:
        return canonical_url(url)
    except ValueError as e:
        raise ConfigError(str(e)) from e


async def _with_store(dsn: str, fn: Callable[[Store], Awaitable[int]]) -> int:
    await migrate(dsn)
    pool = await open_pool(dsn, max_size=2)
    try:
        return await fn(Store(pool))
    finally:
        await pool.close()


def cmd_feeds(args: argparse.Namespace, settings: Settings) -> int:
    action = args.feeds_command
    if action in ("add", "import"):
        if action == "add":
            urls = list(args.urls)
        else:
            try:
                data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
            except OSError as e:
                raise ConfigError(f"cannot read {args.file}: {e.strerror or e}") from e
            urls = parse_feed_list(data)
        checked = [_check_feed_url(u) for u in urls]

        async def add(store: Store) -> int:
            added = 0
            for url in checked:
                if await store.add_feed(url):
                    added += 1
                    print(f"added   {url}")
                else:
                    print(f"present {url}")
            print(f"{added} added, {len(checked) - added} already present")
            return 0

        return _run(lambda dsn: _with_store(dsn, add), settings)

    if action == "list":

        async def show(store: Store) -> int:
            for f in await store.list_feeds():
                state = "active" if f["active"] else "inactive"
                status = f["last_status"] or "never fetched"
                err = f"  ({f['last_error']})" if f["last_error"] else ""
                print(f"{f['id']:>6}  {state:<8}  {status:<13}  {f['url']}{err}")
            return 0

        return _run(lambda dsn: _with_store(dsn, show), settings)

    async def remove(store: Store) -> int:
        if await store.remove_feed(_check_feed_url(args.url)):
            print(f"removed {args.url}")
            return 0
        print(f"ingest: no such feed: {args.url}", file=sys.stderr)
        return 1

    return _run(lambda dsn: _with_store(dsn, remove), settings)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import open_pipeline
    from jobs.service import serve

    async def go(dsn: str) -> int:
        conn = await connect(dsn)  # fail fast with one clear line when unreachable
        await conn.close()
        await migrate(dsn)
        if not args.once:
            await serve(settings, dsn)
            return 0
        async with open_pipeline(settings, dsn) as pipeline:
            # SIGTERM cancels the pass like Ctrl-C does, so claimed feeds are handed back.
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
            summary = await pipeline.run(all_feeds=args.all)
        print(
            f"feeds: {summary.feeds} ({summary.ok} ok, {summary.not_modified} not modified, "
            f"{summary.failed} failed); articles: {summary.new_articles} new, "
            f"{summary.skipped} skipped, {summary.page_errors} stored from feed text"
        )
        return 0

    return _run(go, settings)


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    print("ingest: backfill is not available yet", file=sys.stderr)
    return 2


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "migrate": cmd_migrate,
    "feeds": cmd_feeds,
    "run": cmd_run,
    "backfill": cmd_backfill,
}


if __name__ == "__main__":
    raise SystemExit(main())
