"""The warm poll: how fast `ingest run --once --all` goes over feeds that have nothing new.

What it measures and how to run it: bench/README.md (`poll_bench.py`)."""

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from lib import ROOT, procs, web
from lib.db import Databases, dbname, scalar
from lib.profile import profiled
from lib.report import Steps, check, fmt_range, header, med, parser, revision, write_json

SITE_DATE = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
FILLER = "Officials said on Tuesday that the plan would be reviewed again next month."
COUNTER = str(ROOT / "bench" / "lib" / "count_statements.py")
ROWS = {"A": "A 304", "B": "B 200 same body", "C": "C 200 new body (parsed)"}
GROUPS = {
    "main": ("main",),
    "workers": ("forkserver", "worker"),
    "pg": ("pg",),
    "pg-aux": ("pg_aux",),
}
MODES = {"A": "conditional", "B": "ignore", "C": "changed", "phase 0": "conditional"}


@dataclass(frozen=True)
class FeedDocument:
    feed: int
    version: int
    path: str
    body: bytes
    etag: str
    modified: str


def feed_documents(spec: tuple[int, int, int, int], port: int) -> Iterator[FeedDocument]:
    """Every feed of the site in its two versions (another lastBuildDate)."""
    feeds, hosts, entries, stories = spec
    for f in range(feeds):
        host, items = f % hosts, []
        for e in range(entries):
            k = (f // hosts + e) % stories
            link = web.site_url(host, port, f"/private/story-{k:03d}.html")
            when = SITE_DATE - timedelta(minutes=47 * (e + 1))
            items.append(web.Item(f"Story {k} of host {host}", link, when, f"{FILLER} {k}."))
        for v in (0, 1):
            built = SITE_DATE + timedelta(hours=v)
            body = web.rss(f"Poll bench feed {f}", web.site_url(host, port, ""), items, built)
            etag, modified = f'"feed-{f}-v{v + 1}"', format_datetime(built, usegmt=True)
            yield FeedDocument(f, v, f"/feeds/{f:05d}.xml", body, etag, modified)


def seed_by_sql(dsn: str, site: web.Site, spec: tuple[int, int, int, int]) -> int:
    """What a first poll of every feed leaves on its row (validators, body hash, polled,
    next fetch ahead), written by SQL from the site's own documents: phase 0 of a site too
    large to poll first. No entries or articles are stored. Returns the rows updated."""
    rows = [
        (site.url(d.feed, d.path), d.etag, d.modified, hashlib.sha256(d.body).digest())
        for d in feed_documents(spec, site.port)
        if d.version == 0
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE seed (url text, etag text, last_modified text, body_hash bytea)"
        )
        with conn.cursor().copy("COPY seed FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        done = conn.execute(
            "UPDATE ingest.feeds f SET etag = s.etag, last_modified = s.last_modified,"
            " body_hash = s.body_hash, last_status = 'ok', consecutive_failures = 0,"
            " last_fetched_at = now(),"
            " polled_at = now() - random() * interval '10 minutes',"
            " next_fetch_at = now() + interval '1 hour' FROM seed s WHERE f.url = s.url"
        )
        conn.execute("ANALYZE ingest.feeds")
        return done.rowcount


class PollApp(web.App):
    """Feed f in two versions (another lastBuildDate), answered in one of three modes:
    `conditional` (304 when the ETag matches), `ignore` (200, version 1, whatever the
    validators) and `changed` (version 2). Items point at `stories` story URLs per host under
    /private/, which robots.txt disallows: they are stored from the feed text."""

    def __init__(self, spec: tuple[int, int, int, int], port: int) -> None:
        self.mode, self.versions = "conditional", (web.StaticApp(), web.StaticApp())
        for doc in feed_documents(spec, port):
            app = self.versions[doc.version]
            app.add(doc.path, doc.body, web.RSS_TYPE, doc.etag, modified=doc.modified)

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> web.Reply:
        if self.mode == "ignore":
            headers = {k: v for k, v in headers.items() if k != b"if-none-match"}
        return self.versions[self.mode == "changed"].respond(path, headers)

    def control(self, message: Any) -> Any:
        self.mode = message
        return True


def make_app(spec: tuple[int, int, int, int], port: int) -> PollApp:
    return PollApp(spec, port)


@dataclass
class Pass:
    feeds: int
    wall_s: float
    window_s: float
    statuses: dict[str, int]
    site: dict[int, int]
    connections: int
    cpu: dict[str, float]
    """CPU seconds by role over the whole pass."""
    window_cpu: dict[str, float]
    """CPU seconds by role over its feeds window."""
    processes: dict[str, int]
    peak_rss_mb: float
    db: dict[str, int]
    log: dict[str, Any]
    summary: str
    statements: dict[str, Any] | None
    revision: str

    @property
    def rate(self) -> float:
        return self.feeds / self.wall_s

    @property
    def window_rate(self) -> float:
        return self.feeds / max(self.window_s, 1e-9)

    def line(self) -> str:
        return (
            f"{self.rate:7.0f} feeds/s wall, {self.window_rate:7.0f} in the feeds window"
            f" ({self.feeds}"
            f" in {self.wall_s:.1f} s, window {self.window_s:.1f} s) logs {self.statuses} site"
            f" {self.site}, {self.connections} connections; project at {self.revision}"
        )


def db_counters(dsn: str) -> dict[str, int]:
    """Transactions of the bench database and row updates of ingest.feeds, so far."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        xacts = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s"
        updates = "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'ingest.feeds'::regclass"
        return {"xacts": scalar(conn, xacts, (dbname(dsn),)), "feeds_upd": scalar(conn, updates)}


def run_pass(
    dsn: str,
    env: dict[str, str],
    site: web.Site,
    expected: int,
    count: bool = False,
    profile: Path | None = None,
) -> Pass:
    args = ["run", "--once", "--all"]
    cmd = [sys.executable, COUNTER, *args] if count else procs.ingest_command(*args)
    cmd = profiled(cmd, profile)
    site.ask("reset")
    rev, before = revision(), db_counters(dsn)
    once = procs.run_once(env, cmd, site=site.pids, timeout=1800, interval=0.1)
    time.sleep(1.0)  # exiting backends flush their statistics
    statuses, connections = site.counts()
    after, log, window, sampler = db_counters(dsn), once.log, once.window(), once.sampler
    statements = [json.loads(x) for x in once.err.splitlines() if '"bench_statements"' in x]
    if log.feeds < expected:
        raise RuntimeError(f"{log.feeds} feeds processed of {expected}")
    first, seconds = once.started + window["startup_s"], window["feeds_window_s"]
    return Pass(
        log.feeds, once.seconds, seconds, dict(log.statuses), statuses, connections,
        sampler.between(once.started, once.ended + 1), sampler.between(first, first + seconds),
        dict(sampler.seen), round(sampler.peak_rss / procs.MB, 1),
        {k: after[k] - before[k] for k in after}, log.summary() | window, once.out.strip(),
        statements[0] if statements else None, rev,
    )  # fmt: skip


@dataclass
class Bare:
    feeds: int
    seconds: float
    statuses: dict[int, int]
    cpu_s: float
    site_cpu_s: float
    connections: int

    @property
    def rate(self) -> float:
        return self.feeds / self.seconds

    def line(self) -> str:
        return (
            f"{self.rate:7.0f} feeds/s ({self.feeds} in {self.seconds:.1f} s) statuses"
            f" {self.statuses}; loop CPU {self.cpu_s:.1f} s, site CPU {self.site_cpu_s:.1f} s,"
            f" {self.connections} connections"
        )


def run_bare(
    targets: Sequence[tuple[str, str, str]], concurrency: int, pool: int, site: web.Site
) -> Bare:
    """The same conditional GETs with one httpx.AsyncClient: `concurrency` in flight over a pool
    of `pool` connections, in a random order (fixed seed): after phase 0 the service claims
    feeds in `next_fetch_at` order, which its jitter has shuffled."""
    order, statuses = random.Random(42).sample(list(targets), len(targets)), Counter[int]()
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    headers = {"User-Agent": "poll-bench", "Accept-Encoding": "gzip"}

    async def loop() -> float:
        async with httpx.AsyncClient(
            trust_env=False, limits=limits, timeout=30, headers=headers
        ) as c:
            queue = iter(order)

            async def worker() -> None:
                for url, etag, modified in queue:
                    conditional = {"If-None-Match": etag, "If-Modified-Since": modified}
                    r = await c.get(url, headers={k: v for k, v in conditional.items() if v})
                    statuses[r.status_code] += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

    site.ask("reset")
    site_cpu, cpu = site.cpu_seconds(), time.process_time()
    seconds = asyncio.run(loop())
    cpu, site_cpu = time.process_time() - cpu, site.cpu_seconds() - site_cpu
    return Bare(sum(statuses.values()), seconds, dict(statuses), cpu, site_cpu, site.counts()[1])


def report(passes: dict[str, list[Pass]], bare: dict[str, list[Bare]], args: Any) -> list[str]:
    out = [
        f"{'row':<24} {'feeds/s wall (min-max)':>24} {'feeds/s window (min-max)':>26}"
        f"  {'vs bare':>7}   CPU in the feeds window (s, % of one core)"
    ]
    for key, title in ROWS.items():
        runs, b = passes.get(key, []), bare.get(key, [])
        if runs:
            rates, window = [r.window_rate for r in runs], med([r.window_s for r in runs])
            ratio = f"{med(rates) / med([r.rate for r in b]):7.2f}" if b else f"{'-':>7}"
            cells = ""
            for name, roles in (*GROUPS.items(), ("site", ("site",))):
                v = med([sum(r.window_cpu[x] for x in roles) for r in runs])
                cells += f"  {name} {v:5.2f}s {100 * v / window:3.0f}%"
            wall = fmt_range([r.rate for r in runs])
            out.append(
                f"{title + ' project':<24} {wall:>24} {fmt_range(rates):>26}  {ratio} {cells}"
            )
        if b:
            secs, cpu, site = (
                med([getattr(r, k) for r in b]) for k in ("seconds", "cpu_s", "site_cpu_s")
            )
            loop = f"loop {cpu:5.2f}s {100 * cpu / secs:3.0f}%"
            loop += f"  site {site:5.2f}s {100 * site / secs:3.0f}%"
            out.append(
                f"{title + ' bare HTTP':<24} {'':>24} {fmt_range([r.rate for r in b]):>26} "
                f" {1:7.2f}   {loop}  ({b[-1].connections} TCP connections for {b[-1].feeds}"
                " requests)"
            )  # fmt: skip
    out.append(f"(site: {args.server_procs} process(es); % of one core)\n")
    for key, runs in passes.items():
        last, n = runs[-1], max(runs[-1].feeds, 1)
        cpu = {
            k: round(1000 * med([r.window_cpu[k] / r.feeds for r in runs]), 3)
            for k in ("main", "pg", "site")
        }
        db = f"{last.db['xacts'] / n:.2f} transactions, {last.db['feeds_upd'] / n:.2f} row updates"

        def median(name: str, runs: list[Pass] = runs) -> float:
            return med([r.log[name] or 0 for r in runs])

        out += [
            f"{key}: {med([r.wall_s for r in runs]):.1f} s wall = start-up"
            f" {median('startup_s'):.1f} s + feeds {median('feeds_window_s'):.1f} s + shutdown"
            f" {median('shutdown_s'):.1f} s; one feed takes {median('feed_ms_median'):.0f} ms"
            f" (median) with {args.concurrent_feeds} in flight; per feed: CPU ms {cpu}, {db}; peak"
            f" RSS {med([r.peak_rss_mb for r in runs]):.0f} MB",
            f"   last run: site answered {last.site} over {last.connections} TCP connections;"
            f" processes {last.processes}; `{last.summary}`",
        ]  # fmt: skip
    return out


def proof(passes: dict[str, list[Pass]]) -> list[str]:
    """The evidence that B parsed nothing: parsing runs only in the worker processes (the fork
    server's children), so their CPU time bounds the number of feeds parsed."""
    b = passes.get("B", [])
    if not b:
        return []
    answered = all(r.site.get(200, 0) >= r.feeds and not r.site.get(304) for r in b)
    logged = all(r.statuses.get("not_modified", 0) == r.feeds for r in b)
    b_cpu = max(r.cpu["worker"] for r in b)
    a_cpu = max((r.cpu["worker"] for r in passes.get("A", [])), default=0.0)
    lines = [
        f"\nB, no parsing: the site answered 200 with the full body to every feed request"
        f" [{'yes' if answered else 'NO'}]; every feed was logged `not_modified`"
        f" [{'yes' if logged else 'NO'}]"
        f" (after a 200 only when the body hash matches, before parsing); the workers used at most"
        f" {b_cpu:.2f} s of CPU in any B pass, against {a_cpu:.2f} s in A (304s: nothing to parse)."
    ]  # fmt: skip
    for r in passes.get("C", [])[-1:]:
        per_feed = r.cpu["worker"] / max(r.feeds, 1)
        lines.append(
            f"  C (changed body, parsed): the workers used {r.cpu['worker']:.1f} s,"
            f" {1000 * per_feed:.2f} ms per feed: B's worker CPU is worth at most"
            f" {b_cpu / max(per_feed, 1e-9):.0f} parsed feeds of {b[-1].feeds}"
        )  # fmt: skip
    return lines


TICK_QUERIES = {
    "claim_feeds": {
        "owner": "bench-explain", "lease_seconds": 300, "limit": 50, "exclude": [],
        "busy_hosts": [], "room_hosts": [], "rooms": [], "host_limit": None, "now": None,
    },
    "claim_all_feeds": {
        "owner": "bench-explain", "lease_seconds": 300, "limit": 50, "exclude": [],
        "pass_started": None, "busy_hosts": [], "room_hosts": [], "rooms": [],
        "host_limit": None, "now": None,
    },
    "schedule_lag": {"grace_seconds": 60.0},  # and the service's cap (tick_plans)
}  # fmt: skip


def tick_plans(dsn: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of what the service asks the database on every tick (a claim
    of a batch of INGEST_FEEDS_PER_TICK, 50; the schedule-lag gauges), on
    this database with every feed due (committed, then vacuumed): the pages each reads show
    whether the work follows the batch or the number of feeds. Each runs in a transaction
    rolled back."""
    from ingest.store import queries
    from ingest.store.feeds import OVERDUE_COUNTED

    lines = ["", "per-tick queries, every feed due (EXPLAIN ANALYZE, BUFFERS; each rolled back):"]
    with psycopg.connect(dsn) as conn:
        sizes = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid), c.reltuples::bigint FROM pg_class c"
            " WHERE c.oid = 'ingest.feeds'::regclass OR c.oid IN (SELECT indexrelid"
            " FROM pg_index WHERE indrelid = 'ingest.feeds'::regclass) ORDER BY 2 DESC"
        ).fetchall()
        lines[1:1] = [
            "ingest.feeds and its indexes: "
            + ", ".join(f"{name} {size / 2**20:.1f} MB" for name, size, _ in sizes)
            + f" ({sizes[0][2] if sizes else 0:,} rows)"
        ]
        conn.execute(
            "UPDATE ingest.feeds SET next_fetch_at = now() - random() * interval '10 minutes'"
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE ingest.feeds")  # as autovacuum would after the passes
        conn.autocommit = False
        for name, params in TICK_QUERIES.items():
            text = f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {queries()[name]}"
            params = params | ({"cap": OVERDUE_COUNTED} if name == "schedule_lag" else {})
            plan = [str(line) for (line,) in conn.execute(text.encode(), params)]
            lines += [f"  {name}:"] + [f"    {line[:140]}" for line in plan]
            conn.rollback()
    return lines


def statement_lines(counted: dict[str, Pass]) -> list[str]:
    lines = [""]
    for key, r in counted.items():
        n, counts = max(r.feeds, 1), (r.statements or {}).get("counts", {})
        calls = {k for k in counts if k.endswith("(executemany calls)")}
        total = sum(v for k, v in counts.items() if k not in calls)
        shown = sorted(((k, v) for k, v in counts.items() if v / n >= 0.01), key=lambda kv: -kv[1])
        rest = total - sum(v for k, v in shown if k not in calls)
        claims = (r.statements or {}).get("claim_sizes", {})
        by_size = dict(sorted(claims.items(), key=lambda kv: int(kv[0])))
        lines += [
            f"{key} statements per feed (instrumented pass, {r.feeds} feeds): {total / n:.2f}:"
            f" {', '.join(f'{name} {v / n:.2f}' for name, v in shown)}; others (start-up): {rest}",
            f"   claims: {sum(claims.values())} ({sum(claims.values()) / n:.2f} per feed); feeds"
            f" per claim: {by_size}",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("poll_bench.py", __doc__, feeds=10_000, hosts=50, entries=10, workers=2, repeat=3)
    add, on_off = p.add_argument, argparse.BooleanOptionalAction
    add("--stories", type=int, default=20, help="story URLs per host (default 20)")
    add("--concurrent-feeds", type=int, default=32, help="INGEST_CONCURRENT_FEEDS (default 32)")
    add("--per-host", type=int, default=2, help="INGEST_PER_HOST_CONNECTIONS (default 2)")
    add("--max-connections", type=int, help="INGEST_MAX_CONNECTIONS (default 32 or more)")
    add("--server-procs", type=int, default=2, help="site processes (default 2)")
    add("--backlog-bytes", type=int, help="INGEST_WORKER_BACKLOG_BYTES (default the service's)")
    add("--host-delay", type=float, default=0.0, help="INGEST_HOST_DELAY of the measured passes"
        " (default 0; the service's default is 0.5)")  # fmt: skip
    add("--seed", choices=("poll", "sql"), default="poll", help="phase 0: a parsed poll of"
        " every feed (default), or what it leaves on the feeds' rows written by SQL")  # fmt: skip
    add("--bare", action=on_off, default=True, help="the bare HTTP rows (default on)")
    add("--control", action=on_off, default=True, help="phase C, a changed body (default on)")
    add("--count-statements", action=on_off, default=True, help="count SQL (default on)")
    add("--profile", metavar="FILE", help="the last pass B under py-spy, stacks in FILE")
    args = p.parse_args(argv)
    args.max_connections = args.max_connections or max(32, args.concurrent_feeds)
    check(p, args, "feeds", "hosts", "entries", "stories", "repeat", "concurrent-feeds")
    check(p, args, "per-host", "workers", "server-procs", "max-connections")
    procs.on_sigterm()
    info = header("poll_bench", args.admin_url)
    print(
        f"config: {args.feeds} feeds x {args.entries} items on {args.hosts} hosts;"
        f" INGEST_CONCURRENT_FEEDS={args.concurrent_feeds}"
        f" INGEST_PER_HOST_CONNECTIONS={args.per_host}"
        f" INGEST_MAX_CONNECTIONS={args.max_connections} INGEST_WORKERS={args.workers}"
        f" INGEST_HOST_DELAY={args.host_delay:g} (0 for phase 0); site {args.server_procs}"
        f" process(es); {args.repeat} run(s) of A,"
        " bare A, B, bare B interleaved"
    )  # fmt: skip
    passes: dict[str, list[Pass]] = {}
    plans: list[str] = []
    bare: dict[str, list[Bare]] = {}
    counted: dict[str, Pass] = {}
    step, started = Steps(), time.perf_counter()
    spec = (args.feeds, args.hosts, args.entries, args.stories)
    with (
        Databases(args.admin_url) as dbs,
        web.Site(make_app, spec, args.hosts, procs=args.server_procs) as site,
    ):
        dsn = dbs.create("poll")
        settings = {
            "concurrent_feeds": args.concurrent_feeds,
            "per_host_connections": args.per_host,
        } | ({"worker_backlog_bytes": args.backlog_bytes} if args.backlog_bytes else {})
        setup = procs.ingest_env(
            dsn,
            workers=args.workers,
            host_delay=0,
            max_connections=args.max_connections,
            **settings,
        )
        env = setup | procs.ingest_env(dsn, host_delay=args.host_delay)
        procs.import_feeds(setup, [site.url(f, f"/feeds/{f:05d}.xml") for f in range(args.feeds)])

        def one(key: str, **kw: Any) -> Pass:
            site.ask(MODES[key])
            return run_pass(dsn, setup if key == "phase 0" else env, site, args.feeds, **kw)

        what = "every feed parsed" if args.seed == "poll" else "seeded by SQL, nothing stored"
        print(f"site: {args.server_procs} process(es) on port {site.port}; phase 0 ({what}):")
        phase0, seeded = None, None
        if args.seed == "poll":
            phase0 = step("phase 0", one, "phase 0")
        else:
            seeded = step("phase 0 (seeded by SQL)", seed_by_sql, dsn, site, spec)
        with psycopg.connect(dsn, autocommit=True) as conn:
            query = "SELECT url, etag, last_modified FROM ingest.feeds WHERE body_hash IS NOT NULL"
            targets = conn.execute(
                query + " AND last_status = 'ok' AND coalesce(etag, last_modified) IS NOT NULL"
            ).fetchall()
        if (phase0 is None and seeded is None) or len(targets) < args.feeds:
            step.failures.append(
                f"phase 0 left {args.feeds - len(targets)} feeds without validators"
            )
        else:
            pool = (args.concurrent_feeds, args.max_connections, site)
            for k in range(args.repeat):
                print(f"run {k + 1}/{args.repeat}:")
                for key in "AB":
                    last_b = key == "B" and k == args.repeat - 1
                    kw = {"profile": Path(args.profile)} if args.profile and last_b else {}
                    if r := step(f"{key} project", one, key, **kw):
                        passes.setdefault(key, []).append(r)
                    if args.bare and (b := step(f"{key} bare HTTP", run_bare, targets, *pool)):
                        bare.setdefault(key, []).append(b)
            for key in "AB" if args.count_statements else "":
                if r := step(f"{key} counted (not in the figures)", one, key, count=True):
                    counted[key] = r
            if args.control and (r := step("C project", one, "C")):
                passes["C"] = [r]
            plans = step("per-tick query plans", tick_plans, dsn) or []
    if phase0 is not None:
        rates = f"{phase0.rate:.0f} feeds/s wall, {phase0.window_rate:.0f} in the feeds window"
        print(f"\nphase 0 (not in the table): {rates}; `{phase0.summary}`")
    revisions = {
        r.revision for runs in [*passes.values(), [phase0] if phase0 else []] for r in runs
    }
    if len(revisions) > 1:
        print(f"NOTE: the project changed during the run: {sorted(revisions)}")
    print("\n".join(report(passes, bare, args) + proof(passes) + statement_lines(counted) + plans))
    print(f"\ntotal bench time {time.perf_counter() - started:.0f} s")
    print("".join(f"failed: {f}\n" for f in step.failures), end="", file=sys.stderr)
    figures = {"passes": passes, "bare": bare, "instrumented": counted, "phase0": phase0}
    write_json(
        args.json, {"machine": info, "config": vars(args), **figures, "failures": step.failures}
    )
    return 1 if step.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
