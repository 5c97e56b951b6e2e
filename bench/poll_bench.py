"""The warm poll: how fast `ingest run --once --all` goes over feeds that have nothing new.

What it measures and how to run it: bench/README.md (`poll_bench.py`)."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from lib import ROOT
from lib.db import ADMIN_DSN, Databases, dbname, scalar
from lib.procs import MB, import_feeds, ingest_command, ingest_env, on_sigterm, run_once
from lib.profile import profiled, summarize
from lib.report import Steps, fmt_range, header, med, revision, write_json
from lib.site import NOT_FOUND, RSS_TYPE, Item, Reply, Site, http_response, rss, site_url

PASS_TIMEOUT = 1800.0
SITE_DATE = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
FILLER = (
    "Officials said on Tuesday that the plan would be reviewed again next month after residents"
    " raised questions about the cost and the timetable of the works."
)
COUNTER = str(ROOT / "bench" / "lib" / "count_statements.py")


@dataclass(frozen=True)
class PollSpec:
    feeds: int
    hosts: int
    entries: int
    stories: int
    """Story URLs per host that the feeds' items point at (under /private/: not fetched)."""


def feed_path(f: int) -> str:
    return f"/feeds/{f:05d}.xml"


class PollApp:
    """Feed f in two versions (another lastBuildDate), answered in one of three modes:
    `conditional` (304 when a validator matches), `ignore` (200, version 1, whatever the
    validators) and `changed` (version 2)."""

    def __init__(self, spec: PollSpec, port: int) -> None:
        self.spec, self.mode = spec, "conditional"
        self.modified = [
            format_datetime(SITE_DATE + timedelta(hours=v), usegmt=True) for v in (0, 1)
        ]
        self.etags: list[list[bytes]] = [[], []]
        self.plain: list[list[bytes]] = [[], []]
        self.packed: list[list[bytes]] = [[], []]
        self.not_modified: list[list[bytes]] = [[], []]
        for f in range(spec.feeds):
            host, base = f % spec.hosts, site_url(f % spec.hosts, port, "")
            items = []
            for e in range(spec.entries):
                k = (f // spec.hosts + e) % spec.stories
                link = site_url(host, port, f"/private/story-{k:03d}.html")
                when = SITE_DATE - timedelta(minutes=47 * (e + 1))
                items.append(Item(f"Story {k} of host {host}", link, when, f"{FILLER} Story {k}."))
            for v in (0, 1):
                body = rss(f"Poll bench feed {f}", base, items, SITE_DATE + timedelta(hours=v))
                fields = [("Content-Type", RSS_TYPE), ("ETag", f'"feed-{f}-v{v + 1}"')]
                fields.append(("Last-Modified", self.modified[v]))
                self.etags[v].append(fields[1][1].encode())
                self.plain[v].append(http_response(200, fields, body))
                gz = [*fields, ("Content-Encoding", "gzip")]
                self.packed[v].append(http_response(200, gz, gzip.compress(body, 6)))
                self.not_modified[v].append(http_response(304, fields))

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        try:
            f = int(path[7:12]) if path.startswith(b"/feeds/") else -1
        except ValueError:
            f = -1
        if not 0 <= f < self.spec.feeds:
            return Reply(404, NOT_FOUND)
        v = 1 if self.mode == "changed" else 0
        if self.mode != "ignore" and (
            headers.get(b"if-none-match") == self.etags[v][f]
            or headers.get(b"if-modified-since") == self.modified[v].encode()
        ):
            return Reply(304, self.not_modified[v][f])
        packed = b"gzip" in headers.get(b"accept-encoding", b"")
        return Reply(200, (self.packed if packed else self.plain)[v][f])

    def control(self, message: Any) -> Any:
        self.mode = message[1]
        return True


def make_app(spec: PollSpec, port: int) -> PollApp:
    return PollApp(spec, port)


@dataclass
class PassResult:
    label: str
    wall_s: float
    feeds: int
    window_s: float
    statuses: dict[str, int]
    site_counts: dict[int, int]
    site_connections: int
    cpu_total: dict[str, float]
    cpu_window: dict[str, float]
    processes: dict[str, int]
    peak_rss_mb: float
    db: dict[str, int]
    summary: str
    breakdown: dict[str, Any]
    statements: dict[str, Any] | None
    revision: str
    """The project's git revision when the pass started (others may commit during a run)."""

    @property
    def rate_wall(self) -> float:
        return self.feeds / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def rate_window(self) -> float:
        return self.feeds / self.window_s if self.window_s > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.rate_wall:7.0f} feeds/s wall, {self.rate_window:7.0f} in the feeds window"
            f" ({self.feeds} in {self.wall_s:.1f} s, window {self.window_s:.1f} s) logs"
            f" {self.statuses} site {self.site_counts}, {self.site_connections} connections;"
            f" project at {self.revision}"
        )


def db_counters(dsn: str) -> dict[str, int]:
    """Cumulative counters: transactions of the database, row updates of ingest.feeds."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        xacts = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s"
        updates = "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'feeds'"
        return {
            "xacts": int(scalar(conn, xacts, (dbname(dsn),)) or 0),
            "feeds_upd": int(scalar(conn, updates + " AND schemaname = 'ingest'") or 0),
        }


def run_pass(
    label: str, dsn: str, env: dict[str, str], site: Site, expected: int, *,
    keep_logs: Path | None = None, profile: Path | None = None, count: bool = False,
) -> PassResult:  # fmt: skip
    args = ["run", "--once", "--all"]
    cmd = (
        [sys.executable, COUNTER, *args] if count else profiled([*ingest_command(), *args], profile)
    )
    site.ask("reset")
    rev, before = revision(), db_counters(dsn)
    once = run_once(env, cmd, site=site.pids, timeout=PASS_TIMEOUT, interval=0.1)
    if keep_logs is not None:
        (keep_logs / f"{label}.jsonl").write_text(once.err)
    time.sleep(1.0)  # exiting backends flush their statistics
    site_counts, connections, _ = site.counts()
    after, log, window, sampler = db_counters(dsn), once.log, once.window(), once.sampler
    lines = once.err.splitlines()
    statements = next((json.loads(x) for x in lines if '"bench_statements"' in x), None)
    if log.feeds < expected:
        raise RuntimeError(f"{label}: {log.feeds} feeds processed of {expected}")
    first, seconds = once.started + window["startup_s"], window["feeds_window_s"]
    return PassResult(
        label, once.seconds, log.feeds, seconds, dict(log.statuses), site_counts, connections,
        sampler.between(once.started, once.ended + 1), sampler.between(first, first + seconds),
        dict(sampler.seen), round(sampler.peak_rss / MB, 1),
        {k: after[k] - before[k] for k in after}, once.out.strip(), log.summary() | window,
        statements, rev,
    )  # fmt: skip


@dataclass
class BareResult:
    seconds: float
    feeds: int
    statuses: dict[int, int]
    cpu_s: float
    server_cpu_s: float
    connections: int

    @property
    def rate(self) -> float:
        return self.feeds / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.rate:7.0f} feeds/s ({self.feeds} in {self.seconds:.1f} s) statuses"
            f" {self.statuses}; loop CPU {self.cpu_s:.1f} s, site CPU {self.server_cpu_s:.1f} s,"
            f" {self.connections} connections"
        )


Target = tuple[str, str | None, str | None]


async def _bare(
    targets: Sequence[Target], concurrency: int, pool: int
) -> tuple[float, Counter[int]]:
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    statuses: Counter[int] = Counter()
    queue, headers = iter(targets), {"User-Agent": "poll-bench", "Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=30, headers=headers) as c:

        async def worker() -> None:
            for url, etag, modified in queue:
                conditional = {"If-None-Match": etag, "If-Modified-Since": modified}
                response = await c.get(url, headers={k: v for k, v in conditional.items() if v})
                statuses[response.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses


def run_bare(targets: Sequence[Target], concurrency: int, pool: int, site: Site) -> BareResult:
    """`concurrency` requests in flight over a pool of `pool` connections, in a random order
    (fixed seed): after phase 0 the service claims feeds in `next_fetch_at` order, which its
    jitter has shuffled."""
    order = list(targets)
    random.Random(42).shuffle(order)
    site.ask("reset")
    server, cpu = site.cpu_seconds(), time.process_time()
    seconds, statuses = asyncio.run(_bare(order, concurrency, pool))
    cpu, server = time.process_time() - cpu, site.cpu_seconds() - server
    n = sum(statuses.values())
    return BareResult(seconds, n, dict(statuses), round(cpu, 3), round(server, 3), site.counts()[1])


BARE_FIGURES = ("seconds", "cpu_s", "server_cpu_s")
ROWS = {"A": "A 304", "B": "B 200 same body", "C": "C 200 new body (parsed)"}
GROUPS = {"main": ("main",), "workers": ("forkserver", "worker"), "pg": ("pg",)}
GROUPS |= {"pg-aux": ("pg_aux",), "site": ("site",)}


def report(
    passes: dict[str, list[PassResult]], bare: dict[str, list[BareResult]], args: Any
) -> list[str]:
    out = [
        f"{'row':<24} {'feeds/s wall (min-max)':>24} {'feeds/s window (min-max)':>26}"
        f"  {'vs bare':>7}   CPU in the feeds window (s, % of one core)"
    ]
    for key, title in ROWS.items():
        runs, b = passes.get(key, []), bare.get(key, [])
        if runs:
            window, rates = med([r.window_s for r in runs]) or 1.0, [r.rate_window for r in runs]
            ratio = f"{med(rates) / med([r.rate for r in b]):7.2f}" if b else f"{'-':>7}"
            cells = []
            for name, roles in GROUPS.items():
                v = med([sum(r.cpu_window[x] for x in roles) for r in runs])
                cells.append(f"{name} {v:5.2f}s {100 * v / window:3.0f}%")
            wall = fmt_range([r.rate_wall for r in runs])
            out.append(
                f"{title + ' project':<24} {wall:>24} {fmt_range(rates):>26}  {ratio}"
                f"   {'  '.join(cells)}"
            )
        if b:
            secs, bcpu, scpu = (med([getattr(r, k) for r in b]) for k in BARE_FIGURES)
            out.append(
                f"{title + ' bare HTTP':<24} {'':>24} {fmt_range([r.rate for r in b]):>26}"
                f"  {1.0:7.2f}   loop {bcpu:5.2f}s {100 * bcpu / secs:3.0f}%"
                f"  site {scpu:5.2f}s {100 * scpu / secs:3.0f}%"
                f"  ({b[-1].connections} TCP connections for {b[-1].feeds} requests)"
            )
    out.append(
        f"(site: {args.server_procs} asyncio process(es); its % is of one core, so"
        f" {100 * args.server_procs}% would mean every site process saturated)\n"
    )
    for key, runs in passes.items():
        last, n = runs[-1], max(runs[-1].feeds, 1)
        per = {k: round(v / n, 2) for k, v in last.db.items()}
        cpu = {
            k: round(1000 * med([r.cpu_window[k] / max(r.feeds, 1) for r in runs]), 3)
            for k in ("main", "pg", "site")
        }
        started = sum(r.processes.get("worker", 0) + r.processes.get("forkserver", 0) for r in runs)
        workers = sum(r.cpu_total["worker"] + r.cpu_total["forkserver"] for r in runs)

        def median_of(name: str, runs: list[PassResult] = runs) -> float:
            return med([r.breakdown[name] or 0 for r in runs])

        out += [
            f"{key}: {med([r.wall_s for r in runs]):.1f} s wall = start-up"
            f" {median_of('startup_s'):.1f} s + feeds {median_of('feeds_window_s'):.1f} s +"
            f" shutdown {median_of('shutdown_s'):.1f} s; one feed takes"
            f" {median_of('feed_ms_median'):.0f} ms (median of the `ms` logged) with"
            f" {args.concurrent_feeds} in flight; per feed: CPU ms {cpu}; db {per} (transactions,"
            f" ingest.feeds row updates); peak RSS {med([r.peak_rss_mb for r in runs]):.0f} MB",
            f"   last run: logs {last.statuses}; site answered {last.site_counts} over"
            f" {last.site_connections} TCP connections; processes seen {last.processes};"
            f" `{last.summary}`",
            f"   over its {len(runs)} run(s): fork server + worker processes started {started},"
            f" their CPU {workers:.2f} s",
        ]
    return out


def proof_lines(passes: dict[str, list[PassResult]]) -> list[str]:
    """The evidence that B parsed nothing. Parsing runs only in the worker processes (the fork
    server's children), so their CPU time bounds the number of feeds parsed."""
    b = passes.get("B", [])
    if not b:
        return []
    answered = all(r.site_counts.get(200, 0) >= r.feeds and not r.site_counts.get(304) for r in b)
    logged = all(r.statuses.get("not_modified", 0) == r.feeds for r in b)
    b_cpu = max(r.cpu_total["worker"] for r in b)
    a_cpu = max((r.cpu_total["worker"] for r in passes.get("A", [])), default=0.0)
    lines = [
        "",
        "B, no parsing: the site answered 200 with the full body to every feed request"
        f" [{'yes' if answered else 'NO'}]; the service logged every feed `not_modified`"
        f" [{'yes' if logged else 'NO'}] (pipeline.py returns that status after a 200 only when"
        " the body hash equals the stored one, before `_parse`); the parse worker processes"
        f" ({max(r.processes.get('worker', 0) for r in b)} started per pass) used at most"
        f" {b_cpu:.2f} s of CPU in any B pass, against {a_cpu:.2f} s in A (304s: nothing to"
        " parse), i.e. their start-up and idling.",
    ]
    for r in passes.get("C", [])[-1:]:
        per_feed = r.cpu_total["worker"] / max(r.feeds, 1)
        bound = f"{b_cpu / per_feed:.0f}" if per_feed > 0 else "?"
        lines.append(
            f"  Contrast, C (changed body, parsed): logs {r.statuses}; the workers used"
            f" {r.cpu_total['worker']:.1f} s of CPU, {1000 * per_feed:.2f} ms per feed:"
            f" B's worker CPU is worth at most {bound} parsed feeds of {b[-1].feeds}, and"
            " that much CPU goes to start-up alone."
        )
    lines.append(
        "  The project emits no parse-specific log event or metric: `feed_processed` and"
        " ingest_feeds_polled_total{status} say `not_modified` both for a 304 and for an"
        " identical body, hence the proof by status counts and worker CPU."
    )
    return lines


def statement_lines(instrumented: dict[str, PassResult]) -> list[str]:
    lines = [""]
    for key, r in instrumented.items():
        n, counts = max(r.feeds, 1), (r.statements or {}).get("counts", {})
        calls = [k for k in counts if k.endswith("(executemany calls)")]
        total = sum(v for k, v in counts.items() if k not in calls)
        shown = sorted(((k, v) for k, v in counts.items() if v / n >= 0.01), key=lambda kv: -kv[1])
        rest = total - sum(v for k, v in shown if k not in calls)
        claims = (r.statements or {}).get("claim_sizes", {})
        by_size = dict(sorted(claims.items(), key=lambda kv: int(kv[0])))
        lines += [
            f"{key} statements per feed (instrumented pass, {r.feeds} feeds): {total / n:.2f} in"
            f" all: {', '.join(f'{name} {v / n:.2f}' for name, v in shown)}; other statements"
            f" (start-up, migrations check): {rest} in all",
            f"   claims: {sum(claims.values())} ({sum(claims.values()) / n:.2f} per feed); feeds"
            f" per claim: {by_size}",
        ]
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="poll_bench.py", description=__doc__)
    add, on_off = p.add_argument, argparse.BooleanOptionalAction
    add("--feeds", type=int, default=10_000, help="RSS feeds (default 10000, at most 99999)")
    add("--hosts", type=int, default=50, help="loopback hosts (default 50)")
    add("--entries", type=int, default=10, help="items per feed (default 10)")
    add("--stories", type=int, default=20, help="story URLs per host (default 20)")
    add("--repeat", type=int, default=3, help="runs of A and B (default 3)")
    add("--concurrent-feeds", type=int, default=32, help="INGEST_CONCURRENT_FEEDS (default 32)")
    add("--per-host", type=int, default=2, help="INGEST_PER_HOST_CONNECTIONS (default 2)")
    add("--max-connections", type=int, help="INGEST_MAX_CONNECTIONS (default 32 or more)")
    add("--workers", type=int, default=2, help="INGEST_WORKERS (default 2)")
    add("--server-procs", type=int, default=2, help="site processes (default 2)")
    add("--control", action=on_off, default=True, help="phase C, a changed body (default on)")
    add("--count-statements", action=on_off, default=True, help="count SQL (default on)")
    add("--profile", metavar="FILE", help="one more phase-A pass under py-spy, stacks in FILE")
    add("--admin-url", default=ADMIN_DSN, help="PostgreSQL admin DSN")
    add("--keep-logs", metavar="DIR", help="write each pass's JSON log lines to DIR")
    add("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    args.max_connections = args.max_connections or max(32, args.concurrent_feeds)
    names = ("feeds", "hosts", "entries", "stories", "repeat", "concurrent_feeds", "per_host")
    names += ("workers", "server_procs", "max_connections")
    if min(getattr(args, name) for name in names) < 1:
        p.error(f"{', '.join('--' + n.replace('_', '-') for n in names)} must be at least 1")
    if args.hosts > 250 or args.feeds > 99_999:
        p.error("--hosts must be at most 250, --feeds at most 99999")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    on_sigterm()
    info = header("poll_bench", args.admin_url)
    print(
        f"config: {args.feeds} feeds x {args.entries} items on {args.hosts} hosts;"
        f" INGEST_CONCURRENT_FEEDS={args.concurrent_feeds} INGEST_PER_HOST_CONNECTIONS="
        f"{args.per_host} INGEST_MAX_CONNECTIONS={args.max_connections}"
        f" INGEST_WORKERS={args.workers} INGEST_HOST_DELAY=0; site {args.server_procs}"
        f" process(es); {args.repeat} run(s) of A, bare A, B, bare B interleaved"
    )
    logs = Path(args.keep_logs) if args.keep_logs else None
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
    passes: dict[str, list[PassResult]] = {}
    bare: dict[str, list[BareResult]] = {}
    counted: dict[str, PassResult] = {}
    step, profile_text, started = Steps(), "", time.perf_counter()
    spec = PollSpec(args.feeds, args.hosts, args.entries, args.stories)
    procs = args.server_procs
    with Databases(args.admin_url) as dbs, Site(make_app, spec, args.hosts, procs=procs) as site:
        print(f"site: {procs} process(es) (pids {site.pids}) on port {site.port}")
        dsn = dbs.create("poll")
        env = ingest_env(
            dsn, workers=args.workers, host_delay=0, concurrent_feeds=args.concurrent_feeds,
            per_host_connections=args.per_host, max_connections=args.max_connections,
        )  # fmt: skip
        t0 = time.perf_counter()
        import_feeds(env, [site.url(f, feed_path(f)) for f in range(args.feeds)])
        print(f"set-up: migrate + `feeds import` in {time.perf_counter() - t0:.1f} s")

        def one(label: str, mode: str, **kw: Any) -> PassResult:
            site.ask(("mode", mode))
            return run_pass(label, dsn, env, site, args.feeds, keep_logs=logs, **kw)

        print("phase 0 (first poll: every feed answers 200 and is parsed):")
        phase0 = step("phase 0", one, "phase0", "conditional")
        with psycopg.connect(dsn, autocommit=True) as conn:
            query = "SELECT url, etag, last_modified FROM ingest.feeds ORDER BY id"
            targets = [(str(u), e, m) for u, e, m in conn.execute(query)]
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE body_hash IS NULL),"
                " count(*) FILTER (WHERE last_status IS DISTINCT FROM 'ok'),"
                " (SELECT count(*) FROM ingest.articles),"
                " (SELECT count(*) FROM ingest.feed_entries) FROM ingest.feeds"
            ).fetchone()
        assert row is not None
        missing = sum(1 for _, e, m in targets if not e and not m)
        print(
            f"  after phase 0: feeds without validators {missing}, without body hash {row[0]},"
            f" not 'ok' {row[1]}; articles {row[2]}, feed entries {row[3]}"
        )
        if phase0 is None or missing or row[0] or row[1]:
            step.failures.append("phase 0 did not leave every feed polled with validators")
        else:
            pool = (args.concurrent_feeds, args.max_connections, site)
            for k in range(args.repeat):
                print(f"run {k + 1}/{args.repeat}:")
                for key, mode in (("A", "conditional"), ("B", "ignore")):
                    if r := step(f"{key} project", one, f"{key}{k + 1}", mode):
                        passes.setdefault(key, []).append(r)
                    if b := step(f"{key} bare HTTP", run_bare, targets, *pool):
                        bare.setdefault(key, []).append(b)
            if args.count_statements:
                print("instrumented passes (statement counts; not in the figures):")
                for key, mode in (("A", "conditional"), ("B", "ignore")):
                    if r := step(f"{key} counted", one, f"{key}-counted", mode, count=True):
                        counted[key] = r
            if args.profile:
                print(f"profiled pass of A (py-spy, not in the figures) into {args.profile}:")
                spy = Path(args.profile)
                if step("A profiled", one, "A-profiled", "conditional", profile=spy):
                    profile_text = summarize(spy, 20, [])
            if args.control:
                print("phase C (control: a changed body, parsed):")
                if r := step("C project", one, "C", "changed"):
                    passes["C"] = [r]
    print()
    if phase0 is not None:
        print(
            f"phase 0 (first poll, parse + plan + link, not in the table): {phase0.rate_wall:.0f}"
            f" feeds/s wall, {phase0.rate_window:.0f} in the feeds window; `{phase0.summary}`"
        )
    revisions = {
        r.revision for runs in [*passes.values(), [phase0] if phase0 else []] for r in runs
    }
    note = [
        f"NOTE: the project changed during the run (revisions {sorted(revisions)}): compare"
        " passes of one revision only; each pass's revision is in the --json output."
    ]
    lines = report(passes, bare, args) + (note if len(revisions) > 1 else [])
    print("\n".join(lines + proof_lines(passes) + statement_lines(counted)))
    if profile_text:
        print("\n" + profile_text)
    print(f"\ntotal bench time {time.perf_counter() - started:.0f} s")
    for f in step.failures:
        print(f"failed: {f}", file=sys.stderr)
    write_json(args.json, {
        "machine": info, "config": vars(args), "phase0": phase0,
        "passes": passes, "bare": bare, "instrumented": counted,
        "profile_summary": profile_text or None, "failures": step.failures,
    })  # fmt: skip
    return 1 if step.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
