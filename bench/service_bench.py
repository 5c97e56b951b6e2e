"""The long-lived service with replicas: `ingest run` x R against one database and a local site,
one of them killed on the way.

What it checks and how to run it: bench/README.md (`service_bench.py`)."""

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from lib import procs, web
from lib.db import Databases, scalar
from lib.logs import read_log_file
from lib.report import check, header, parser, write_json

SETTLE, STALL = 5.0, 60.0
"""Quiet seconds after the last feed; seconds without progress before giving up."""


def paths(f: int, entries: int) -> tuple[str, list[str]]:
    """Feed f's path and its pages' paths."""
    return f"/feeds/{f:04d}.xml", [f"/news/{f:04d}/{f * entries + e}.html" for e in range(entries)]


def make_app(spec: tuple[int, int, int, float], port: int) -> web.StaticApp:
    """Feeds with an ETag, their items an hour apart, the newest ten minutes old (polled again
    in about 30 minutes); every item links to a page of its own, `delay` seconds late."""
    feeds, entries, hosts, delay = spec
    app, now = web.StaticApp(), datetime.now(UTC).replace(microsecond=0)
    for f in range(feeds):
        feed, pages = paths(f, entries)
        items = []
        for e, path in enumerate(pages):
            n, when = f * entries + e, now - timedelta(minutes=10, hours=e)
            title = f"Story {n} of feed {f}"
            app.add(path, web.article_html(n, title, when), web.HTML_TYPE, delay=delay)
            items.append(web.Item(title, web.site_url(f % hosts, port, path), when, f"{title}."))
        body = web.rss(f"Service bench feed {f}", web.site_url(f % hosts, port, ""), items)
        app.add(feed, body, web.RSS_TYPE, etag=f'"feed-{f}-v1"')
    return app


def done_count(conn: psycopg.Connection[Any]) -> int:
    return int(scalar(conn, "SELECT count(*) FROM news.feeds WHERE last_status IS NOT NULL"))


def wait_for(dsn: str, target: int, services: Sequence[procs.Service], t0: float,
             timeout: float) -> bool:  # fmt: skip
    """Until `target` feeds have a last_status (True), the timeout, STALL seconds without
    progress or every replica gone (False); progress every 10 s."""
    last, progress, report = -1, time.monotonic(), t0 + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while (done := done_count(conn)) < target:
            now = time.monotonic()
            last, progress = (done, now) if done != last else (last, progress)
            for s in services:
                if s.healthy_after is None and procs.http_get(s.port, "/healthz", 0.5)[0] == 200:
                    s.healthy_after = now - s.started
            if now >= report:
                alive, report = sum(s.proc.poll() is None for s in services), report + 10
                print(
                    f"  t={now - t0:5.1f} s: {done} feeds done, {alive} replicas running",
                    flush=True,
                )
            stop = "timeout" if now - t0 > timeout else "stalled" if now - progress > STALL else ""
            if stop or all(s.proc.poll() is not None for s in services):
                print(f"  {stop or 'every replica exited'}: {done} feeds done", file=sys.stderr)
                return False
            time.sleep(0.2)
    return True


def kill(dsn: str, victim: procs.Service) -> tuple[set[str], Any]:
    """SIGKILL `victim` (and its group); the feeds it held leased, and the database's time."""
    owner = read_log_file(victim.log_path).owner or f"%:{victim.pid}:%"
    victim.proc.send_signal(signal.SIGKILL)
    victim.exit_code = victim.proc.wait(10)
    time.sleep(0.5)  # its connections are gone, their transactions rolled back
    with psycopg.connect(dsn, autocommit=True) as conn:
        query = "SELECT url FROM ingest.feeds WHERE lease_owner LIKE %s"
        orphans = {str(u) for (u,) in conn.execute(query, (owner,))}
        killed_at = scalar(conn, "SELECT now()")
    victim.left_behind = procs.reap_group(victim.pid, wait=10.0)
    return orphans, killed_at


def run(args: argparse.Namespace, dsn: str, site: web.Site, logs: Path) -> dict[str, Any]:
    """R replicas; with --kill, SIGKILL to the first after a third of the feeds; all feeds done,
    SETTLE quiet seconds (ticks go on every second: they must fetch nothing), SIGTERM to all."""
    settings = {"tick_seconds": 1, "host_delay": 0.05, "lease_seconds": args.lease}
    env = procs.ingest_env(dsn, workers=1, **settings)
    procs.import_feeds(env, [site.url(f, paths(f, 1)[0]) for f in range(args.feeds)])
    services: list[procs.Service] = []
    out: dict[str, Any] = {"orphans": set(), "finished_s": None}
    try:
        t0 = time.monotonic()
        services = [procs.Service.start(env, f"r{i + 1}", logs) for i in range(args.replicas)]
        if args.kill:
            if not wait_for(dsn, args.feeds // 3, services, t0, args.timeout):
                raise RuntimeError("a third of the feeds were not done in time")
            out["killed_at"] = time.monotonic() - t0
            out["orphans"], killed_at = kill(dsn, services[0])
        out["done"] = wait_for(dsn, args.feeds, services[args.kill :], t0, args.timeout)
        out["seconds"] = time.monotonic() - t0
        if out["orphans"]:
            with psycopg.connect(dsn, autocommit=True) as conn:
                query = "SELECT max(extract(epoch FROM last_fetched_at - %s)) FROM ingest.feeds"
                params = (killed_at, list(out["orphans"]))
                out["finished_s"] = scalar(conn, query + " WHERE url = ANY(%s)", params)
        before = sum(site.counts()[2].values())
        time.sleep(SETTLE)
        out["settle_requests"] = sum(site.counts()[2].values()) - before
        procs.stop_services(services[args.kill :])
    finally:
        procs.kill_services(services)
    return out | {"services": services}


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("service_bench.py", __doc__, feeds=1000, hosts=50, entries=3)
    add = p.add_argument
    add("--replicas", type=int, default=3, help="`ingest run` processes (default 3)")
    add("--kill", action=argparse.BooleanOptionalAction, default=True, help="SIGKILL one replica")
    add("--lease", type=int, default=5, help="INGEST_LEASE_SECONDS (default 5)")
    add("--page-delay", type=float, default=0.05, help="seconds a page answers late (0.05)")
    add("--timeout", type=float, default=240, help="seconds to finish (default 240)")
    add("--logs", metavar="DIR", help="replica logs (default a new dir under /tmp)")
    args = p.parse_args(argv)
    args.survivors = args.replicas - args.kill
    check(p, args, "feeds", "entries", "lease", "hosts", "survivors")
    procs.on_sigterm()
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="service_bench_"))
    logs.mkdir(parents=True, exist_ok=True)
    info, started, n = header("service_bench", args.admin_url), time.monotonic(), args.feeds
    print(
        f"{args.replicas} replicas, {n} feeds x {args.entries} entries on {min(args.hosts, n)}"
        " hosts,"
        f" pages {args.page_delay * 1000:.0f} ms late; INGEST_WORKERS=1 INGEST_TICK_SECONDS=1"
        f" INGEST_HOST_DELAY=0.05 INGEST_LEASE_SECONDS={args.lease}; logs in {logs}"
    )  # fmt: skip
    spec = (n, args.entries, args.hosts, args.page_delay)
    site = web.Site(make_app, spec, args.hosts, count_urls=True)
    with Databases(args.admin_url) as dbs, site:
        out = run(args, dsn := dbs.create("svc"), site, logs)
        counts = site.counts()[2]
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = (
                conn.execute(
                    "SELECT count(*), count(DISTINCT url), count(DISTINCT original_url), (SELECT"
                    " count(*) FROM news.feeds WHERE last_status = 'error'), (SELECT count(*) FROM"
                    " ingest.feeds WHERE lease_owner IS NOT NULL), (SELECT count(*) FROM"
                    " ingest.feeds WHERE next_fetch_at <= now()) FROM news.articles"
                ).fetchone()
                or ()
            )
    db = dict(zip(("articles", "urls", "links", "failed", "leases", "due"), row, strict=True))
    pages = {
        site.url(f, paths(f, 1)[0]): [site.url(f, q) for q in paths(f, args.entries)[1]]
        for f in range(n)
    }
    urls = [*pages, *(q for qs in pages.values() for q in qs)]
    twice, missed = (
        {u for u in urls if counts.get(u, 0) > 1},
        [u for u in urls if not counts.get(u)],
    )
    orphaned = out["orphans"] | {q for u in out["orphans"] for q in pages.get(u, [])}
    services, seconds, stored = out["services"], out["seconds"], db["articles"]
    print(
        f"all feeds done: {out['done']}, {seconds:.1f} s after the replicas started:"
        f" {n / seconds:.1f} feeds/s, {stored / seconds:.1f} articles/s; site:"
        f" {sum(counts.values())} requests, fetched never {len(missed)}, twice or more {len(twice)}"
        f" ({len(twice & orphaned)} of them of the killed replica's feeds);"
        f" {out['settle_requests']} requests in the {SETTLE:g} quiet seconds"
    )  # fmt: skip
    if args.kill:
        print(
            f"SIGKILL r1 at t={out['killed_at']:.1f} s: it held {len(out['orphans'])} leases, the"
            f" last of those feeds done {out['finished_s'] or 0:.1f} s after the kill (lease"
            f" {args.lease} s)"
        )  # fmt: skip
    print(
        f"database: articles {stored} of {n * args.entries}, distinct URLs {db['urls']}, failed"
        f" feeds {db['failed']}, leases held {db['leases']}, feeds due again {db['due']}"
    )  # fmt: skip
    for s in services:
        log = read_log_file(s.log_path)
        healthy = "never" if s.healthy_after is None else f"{s.healthy_after:.1f} s"
        exit_s = "" if s.exit_seconds is None else f" {s.exit_seconds:.1f} s after SIGTERM"
        print(
            f"  {s.name}: /healthz 200 after {healthy}; {log.feeds} feeds {dict(log.statuses)},"
            f" {log.new} new articles; exit code {s.exit_code}{exit_s}; warnings/errors"
            f" {len(log.problems)}, ticks skipped {log.skipped_ticks}, left behind"
            f" {s.left_behind or 'nothing'}"
        )  # fmt: skip
    quiet, once = out["settle_requests"], stored == db["urls"] == db["links"] == n * args.entries
    checks = [
        ("every feed done", out["done"] and not missed, f"{missed[:3]} never fetched"),
        ("every page stored once", once, f"{stored} articles"),
        ("no feed failed", not db["failed"], f"{db['failed']} failed"),
        ("no lease left", not db["leases"], f"{db['leases']} held"),
        (
            "only the killed replica's feeds and pages twice",
            twice <= orphaned,
            f"{twice - orphaned}",
        ),
        ("nothing fetched once all feeds were done", not quiet, f"{quiet} requests"),
    ]
    checks += [
        (f"{s.name} exited 0", s.exit_code == 0, f"{s.exit_code}") for s in services[args.kill :]
    ]
    print("checks:")
    for c, ok, why in checks:
        print(f"  {'ok  ' if ok else 'FAIL'}  {c}" + ("" if ok else f" ({why})"))
    print(f"total bench time {time.monotonic() - started:.0f} s; logs in {logs}")
    figures = {k: v for k, v in out.items() if k != "services"} | {"database": db, "checks": checks}
    write_json(args.json, {"machine": info, "config": vars(args), **figures})
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
