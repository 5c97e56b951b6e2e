"""Memory soak: the long-lived service holding many feeds while new articles keep arriving.

What it measures and how to run it: bench/README.md (`soak_bench.py`)."""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from lib.db import ADMIN_DSN, Databases
from lib.logs import metric_summary, read_log_file
from lib.procs import (
    MB,
    Service,
    http_get,
    import_feeds,
    ingest_env,
    kill_services,
    on_sigterm,
    role_of,
    stop_services,
)
from lib.report import header, write_json
from lib.site import (
    HTML_TYPE,
    NOT_FOUND,
    RSS_TYPE,
    Item,
    Reply,
    Site,
    article_html,
    http_response,
    site_url,
)
from lib.site import rss as rss_document


@dataclass(frozen=True)
class SoakSpec:
    feeds: int
    hosts: int
    entries: int
    rate: float
    """New articles per second over the whole site."""
    t0: float
    """Epoch seconds: the site's start; items k >= 0 of a feed are published after it."""

    @property
    def period(self) -> float:
        """Seconds between two articles of one feed."""
        return self.feeds / self.rate

    def published(self, f: int, k: int) -> float:
        return self.t0 + (f / self.feeds + k) * self.period

    def newest(self, f: int, now: float) -> int:
        return math.floor((now - self.t0) / self.period - f / self.feeds)


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)


class SoakApp:
    """Feed f publishes item k at `published(f, k)`; items before the start link to a pool of
    `entries` pages per host, the others to their own page."""

    def __init__(self, spec: SoakSpec, port: int) -> None:
        self.spec, self.port = spec, port
        self.pages, self.bytes = 0, 0

    def link(self, f: int, k: int) -> str:
        path = f"/news/{f:05d}/{k}.html" if k >= 0 else f"/news/pool/{-k % self.spec.entries}.html"
        return site_url(f % self.spec.hosts, self.port, path)

    def feed(self, f: int, newest: int) -> bytes:
        items = [
            Item(f"Story {f}-{k}", self.link(f, k), _when(self.spec.published(f, k)),
                 f"Summary of story {f}-{k}.", "" if k >= 0 else f"soak-feed-{f}-item-{k}")
            for k in range(newest, newest - self.spec.entries, -1)
        ]  # fmt: skip
        return rss_document(f"Soak feed {f}", site_url(f % self.spec.hosts, self.port, ""), items)

    @staticmethod
    def ok(headers: dict[bytes, bytes], fields: list[tuple[str, str]], body: bytes) -> Reply:
        if b"gzip" in headers.get(b"accept-encoding", b""):
            fields, body = [*fields, ("Content-Encoding", "gzip")], gzip.compress(body)
        return Reply(200, http_response(200, fields, body))

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> Reply:
        now, parts = time.time(), path.decode("latin-1").strip("/").split("/")
        try:
            if len(parts) == 2 and parts[0] == "feeds" and parts[1].endswith(".xml"):
                f = int(parts[1].removesuffix(".xml"))
                if not 0 <= f < self.spec.feeds:
                    return Reply(404, NOT_FOUND)
                newest = self.spec.newest(f, now)
                etag = f'"soak-{f}-{newest}"'
                modified = format_datetime(_when(self.spec.published(f, newest)), usegmt=True)
                fields = [("ETag", etag), ("Last-Modified", modified)]
                if headers.get(b"if-none-match") == etag.encode():
                    return Reply(304, http_response(304, fields))
                return self.ok(headers, [("Content-Type", RSS_TYPE), *fields], self.feed(f, newest))
            if len(parts) == 3 and parts[0] == "news" and parts[2].endswith(".html"):
                n = int(parts[2].removesuffix(".html"))
                if parts[1] == "pool":
                    seed, title, when = 10**9 + n, f"Archive story {n}", _when(self.spec.t0)
                else:
                    f = int(parts[1])
                    if not (0 <= f < self.spec.feeds and 0 <= n <= self.spec.newest(f, now)):
                        return Reply(404, NOT_FOUND)
                    seed, title = f * 100_003 + n, f"Story {f}-{n}"
                    when = _when(self.spec.published(f, n))
                page = article_html(seed, title, when, heavy=True)
                self.pages, self.bytes = self.pages + 1, self.bytes + len(page)
                return self.ok(headers, [("Content-Type", HTML_TYPE)], page)
        except ValueError:
            pass
        return Reply(404, NOT_FOUND)

    def control(self, message: Any) -> Any:
        return {"pages": self.pages, "bytes": self.bytes}


def make_app(spec: SoakSpec, port: int) -> SoakApp:
    return SoakApp(spec, port)


@dataclass
class Sample:
    t: float
    """Seconds since the service started."""
    rss: dict[str, float]
    """MB by role (main, forkserver, workers, tracker) and over all processes ("all")."""
    pss: dict[str, float]
    uss: dict[str, float]
    workers: int
    worker_rss: list[float]
    articles: int
    feeds_polled_once: int
    polls: dict[str, float]
    overdue: float | None


def take_sample(service: Service, dsn: str) -> Sample:
    mem: dict[str, dict[str, float]] = {"rss": {}, "pss": {}, "uss": {}}
    workers: list[float] = []
    names: dict[int, str] = {}
    try:
        top = psutil.Process(service.pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        procs = []
    for p in procs:
        try:
            role = names[p.pid] = role_of(p, names)
            full = p.memory_full_info()
        except psutil.Error:
            continue
        role = "workers" if role == "worker" else role
        for kind, per in mem.items():
            for key in (role, "all"):
                per[key] = round(per.get(key, 0.0) + float(getattr(full, kind)) / MB, 1)
        if role == "workers":
            workers.append(round(float(full.rss) / MB, 1))
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ingest.articles),"
            " (SELECT count(*) FROM ingest.feeds WHERE last_fetched_at IS NOT NULL)"
        ).fetchone()
    assert row is not None
    status, text, _ = http_get(service.port, "/metrics")
    metrics = metric_summary(text) if status == 200 else {"polled": {}, "overdue": None}
    t = round(time.monotonic() - service.started, 1)
    return Sample(t, mem["rss"], mem["pss"], mem["uss"], len(workers), workers, int(row[0]),
                  int(row[1]), dict(metrics["polled"]), metrics["overdue"])  # fmt: skip


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour."""
    n = len(points)
    mx, my = sum(t for t, _ in points) / max(n, 1), sum(v for _, v in points) / max(n, 1)
    den = sum((t - mx) ** 2 for t, _ in points)
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / den if n >= 3 and den else None


HEADER = (
    f"{'min':>6}  {'RSS sum':>7}  {'PSS sum':>7}  {'USS sum':>7}  {'main RSS/PSS':>11}"
    f"  {'fork RSS/PSS':>10}  {'workers RSS/PSS (n)':>19}  {'articles':>8}"
    f"  {'polls (304s)':>14}  {'feeds':>6}  {'overdue':>7}"
)


def row_line(s: Sample) -> str:
    def both(role: str, width: int) -> str:
        return f"{s.rss.get(role, 0):{width}.0f}/{s.pss.get(role, 0):<4.0f}"

    overdue = "-" if s.overdue is None else f"{s.overdue:.0f}"
    polls, nm = sum(s.polls.values()), s.polls.get("not_modified", 0.0)
    return (
        f"{s.t / 60:6.1f}  {s.rss.get('all', 0):7.0f}  {s.pss.get('all', 0):7.0f}"
        f"  {s.uss.get('all', 0):7.0f}  {both('main', 6)}  {both('forkserver', 5)}"
        f"  {both('workers', 5)} ({s.workers})  {s.articles:8d}  {polls:7.0f} ({nm:.0f} 304)"
        f"  {s.feeds_polled_once:6d}  {overdue:>7}"
    )


def summary(samples: Sequence[Sample]) -> tuple[list[str], dict[str, Any]]:
    if not samples:
        return ["no samples"], {}
    peak_rss = max(samples, key=lambda s: s.rss.get("all", 0))
    peak_pss = max(samples, key=lambda s: s.pss.get("all", 0))
    roles = ("main", "forkserver", "workers", "tracker")
    peaks = {
        r: {k: max(getattr(s, k).get(r, 0.0) for s in samples) for k in ("rss", "pss")}
        for r in roles
    }
    biggest_worker = max((max(s.worker_rss, default=0.0) for s in samples), default=0.0)
    first, at5, end = samples[0], min(samples, key=lambda s: abs(s.t - 300)), samples[-1]
    half = [s for s in samples if s.t >= end.t / 2]
    slopes = {
        k: slope_per_hour([(s.t, getattr(s, k).get("all", 0.0)) for s in half])
        for k in ("rss", "pss")
    }
    slopes["main_rss"] = slope_per_hour([(s.t, s.rss.get("main", 0.0)) for s in half])
    low, high = (f(s.rss.get("all", 0.0) for s in half) for f in (min, max))
    polls = sum(end.polls.values()) - sum(first.polls.values())
    span, arts = max(end.t - first.t, 1.0), end.articles - first.articles

    def mb(s: Sample, kind: str = "rss", role: str = "all") -> float:
        return getattr(s, kind).get(role, 0.0)

    def slope(v: float | None) -> str:
        return "-" if v is None else f"{v:+.1f} MB/h"

    lines = [
        f"peak RSS sum {mb(peak_rss):.0f} MB at {peak_rss.t / 60:.1f} min (main"
        f" {mb(peak_rss, role='main'):.0f}, fork server {mb(peak_rss, role='forkserver'):.0f},"
        f" {peak_rss.workers} workers {mb(peak_rss, role='workers'):.0f}, tracker"
        f" {mb(peak_rss, role='tracker'):.0f}); peak PSS sum {mb(peak_pss, 'pss'):.0f} MB at"
        f" {peak_pss.t / 60:.1f} min (USS sum then {mb(peak_pss, 'uss'):.0f} MB)."
        " Target: RSS <= 400 MB.",
        "peak by role, RSS/PSS MB: "
        + ", ".join(f"{r} {v['rss']:.0f}/{v['pss']:.0f}" for r, v in peaks.items())
        + f"; largest single worker RSS {biggest_worker:.0f} MB",
        f"RSS sum at {at5.t / 60:.1f} min {mb(at5):.0f} MB, at the end ({end.t / 60:.1f} min)"
        f" {mb(end):.0f} MB: growth {mb(end) - mb(at5):+.0f} MB; PSS sum {mb(at5, 'pss'):.0f}"
        f" -> {mb(end, 'pss'):.0f} MB ({mb(end, 'pss') - mb(at5, 'pss'):+.0f} MB); main RSS"
        f" {mb(at5, role='main'):.0f} -> {mb(end, role='main'):.0f} MB",
        f"slope over the second half ({len(half)} samples from {half[0].t / 60:.1f} min):"
        f" RSS sum {slope(slopes['rss'])}, PSS sum {slope(slopes['pss'])}, main RSS"
        f" {slope(slopes['main_rss'])}; RSS sum over that half {low:.0f}-{high:.0f} MB"
        " (on a short run one worker restart or one burst of pages dominates the slope)",
        f"work: {arts} articles stored ({arts / span:.2f}/s), {polls:.0f} feed polls"
        f" ({polls / span:.1f}/s; by status at the end {end.polls}), feeds polled at least"
        f" once {end.feeds_polled_once}, overdue at the end {end.overdue}",
    ]
    figures = {
        "peak_rss_mb": mb(peak_rss), "peak_rss_at_min": round(peak_rss.t / 60, 2),
        "peak_pss_mb": mb(peak_pss, "pss"), "peak_by_role": peaks,
        "largest_worker_rss_mb": biggest_worker, "rss_at_5min_mb": mb(at5),
        "rss_at_end_mb": mb(end),
        "pss_at_5min_mb": mb(at5, "pss"), "pss_at_end_mb": mb(end, "pss"),
        "slope_mb_per_hour_second_half": slopes, "articles_per_s": round(arts / span, 3),
        "polls_per_s": round(polls / span, 3),
    }  # fmt: skip
    return lines, figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="soak_bench.py", description=__doc__)
    add = p.add_argument
    add("--minutes", type=float, default=60, help="soak length (default 60)")
    add("--every", type=float, default=15, help="seconds between samples (default 15)")
    add("--feeds", type=int, default=10_000, help="RSS feeds (default 10000)")
    add("--hosts", type=int, default=50, help="loopback hosts (default 50)")
    add("--entries", type=int, default=10, help="items per feed (default 10)")
    add("--rate", type=float, default=5.0, help="new articles per second, site-wide (default 5)")
    add("--workers", type=int, default=2, help="INGEST_WORKERS (default 2)")
    add("--tick", type=float, default=30, help="INGEST_TICK_SECONDS (default 30)")
    add("--host-delay", type=float, default=0.5, help="INGEST_HOST_DELAY (default 0.5)")
    add("--min-interval", type=float, default=60, help="INGEST_MIN_INTERVAL (default 60)")
    add("--spread", action=argparse.BooleanOptionalAction, default=True, help="spread first polls")
    add("--admin-url", default=ADMIN_DSN, help="PostgreSQL admin DSN")
    add("--logs", metavar="DIR", help="service log directory (default: new in /tmp)")
    add("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    if min(args.feeds, args.entries, args.workers) < 1 or not 1 <= args.hosts <= 250:
        p.error("--feeds, --entries, --workers must be >= 1, --hosts between 1 and 250")
    if min(args.minutes, args.every, args.rate, args.tick, args.min_interval) <= 0:
        p.error("--minutes, --every, --rate, --tick, --min-interval must be positive")
    if args.host_delay < 0:
        p.error("--host-delay must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    on_sigterm()
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="soak_bench_"))
    logs.mkdir(parents=True, exist_ok=True)
    if (logs / "soak.jsonl").exists():  # another run's log, which opening would truncate
        print(
            f"soak_bench: {logs / 'soak.jsonl'} exists; give --logs a new directory",
            file=sys.stderr,
        )
        return 2
    info = header("soak_bench", args.admin_url)
    period = args.feeds / args.rate
    first_polls = f"spread over {period / 2:.0f} s" if args.spread else "all due at once"
    print(
        f"site: {args.feeds} feeds x {args.entries} items on {args.hosts} hosts, {args.rate:g} new"
        f" articles/s (each feed every {period:.0f} s, so polled every ~{period / 2:.0f} s);"
        f" service: INGEST_WORKERS={args.workers} INGEST_TICK_SECONDS={args.tick:g}"
        f" INGEST_HOST_DELAY={args.host_delay:g} INGEST_MIN_INTERVAL={args.min_interval:g};"
        f" first polls {first_polls}; {args.minutes:g} min, a sample every {args.every:g} s;"
        f" logs in {logs}"
    )
    failures: list[str] = []
    samples: list[Sample] = []
    service: Service | None = None
    site_info: dict[str, Any] = {}
    started_all = time.monotonic()
    spec = SoakSpec(args.feeds, args.hosts, args.entries, args.rate, time.time())
    with Databases(args.admin_url) as dbs, Site(make_app, spec, args.hosts) as site:
        try:
            dsn = dbs.create("soak")
            env = ingest_env(
                dsn, workers=args.workers, tick_seconds=args.tick, host_delay=args.host_delay,
                min_interval=args.min_interval,
            )  # fmt: skip
            t0 = time.perf_counter()
            import_feeds(env, [site.url(f, f"/feeds/{f:05d}.xml") for f in range(args.feeds)])
            if args.spread:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(
                        "UPDATE ingest.feeds SET next_fetch_at ="
                        " now() + random() * make_interval(secs => %s)",
                        (period / 2,),
                    )
            print(f"set-up: migrate + `feeds import` in {time.perf_counter() - t0:.1f} s")
            service = Service.start(env, "soak", logs)
            site_cpu = site.cpu_seconds()
            print(f"service: pid {service.pid}, /metrics on 127.0.0.1:{service.port}\n")
            print(HEADER, flush=True)
            end = service.started + 60 * args.minutes
            next_at = service.started + min(args.every, 5.0)
            while True:
                time.sleep(max(0.0, next_at - time.monotonic()))
                if service.proc.poll() is not None:
                    raise RuntimeError(f"the service exited {service.proc.returncode}")
                samples.append(take_sample(service, dsn))
                print(row_line(samples[-1]), flush=True)
                if time.monotonic() >= end - 0.5:
                    break
                next_at = min(next_at + args.every, end)
            site_info = {
                "cpu_seconds": round(site.cpu_seconds() - site_cpu, 1),
                **site.ask("pages")[0],
            }
            stop_services([service])
            if service.exit_code != 0:
                failures.append(f"the service exited {service.exit_code} on SIGTERM")
        except Exception as e:
            failures.append(f"{type(e).__name__}: {e}")
            print(f"soak_bench: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            if service is not None:
                kill_services([service])
    lines, figures = summary(samples)
    print("\n" + "\n".join(lines))
    log_figures: dict[str, Any] = {}
    if service is not None:
        log = read_log_file(service.log_path)
        log_figures = {
            "feeds_processed": log.feeds, "statuses": dict(log.statuses), "new": log.new,
            "problems": log.problems[:10], "skipped_ticks": log.skipped_ticks,
        }  # fmt: skip
        exit_s = f"{service.exit_seconds:.1f} s" if service.exit_seconds is not None else "-"
        print(
            f"service log: {log.feeds} `feed_processed` lines {dict(log.statuses)}, {log.new} new"
            f" articles; warnings/errors {len(log.problems)}; SIGTERM -> exit code"
            f" {service.exit_code} after {exit_s}; left behind {service.left_behind or 'nothing'}"
        )
        for line in log.problems[:5]:
            print(f"    {line}")
    if site_info:
        kb = site_info["bytes"] / max(site_info["pages"], 1) / 1024
        print(
            f"site: {site_info['pages']} article pages served ({kb:.1f} KB average before gzip);"
            f" site CPU {site_info['cpu_seconds']} s"
        )
    print(f"total bench time {time.monotonic() - started_all:.0f} s; logs in {logs}")
    for f in failures:
        print(f"failed: {f}", file=sys.stderr)
    write_json(args.json, {
        "machine": info, "config": vars(args), "samples": [vars(s) for s in samples],
        "summary": figures, "log": log_figures, "site": site_info,
        "exit_code": service.exit_code if service else None, "failures": failures,
    })  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
