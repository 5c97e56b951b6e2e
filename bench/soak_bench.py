"""Memory soak: the long-lived service holding many feeds while new articles keep arriving.

What it measures and how to run it: bench/README.md (`soak_bench.py`)."""

import argparse
import gzip
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from lib import procs, web
from lib.db import Databases
from lib.logs import metrics, read_log_file
from lib.report import check, header, parser, write_json

ROLES = ("main", "forkserver", "workers", "tracker")


class SoakApp(web.App):
    """Feeds of the `entries` newest items; an item published before the start links to one
    of `entries` pool pages per host, the others to their own page."""

    def __init__(self, spec: web.Spec, port: int) -> None:
        self.spec, self.port, self.pages, self.bytes = spec, port, 0, 0

    def url(self, f: int, path: str) -> str:
        return web.site_url(f % self.spec.hosts, self.port, path)

    def feed(self, f: int, newest: int) -> bytes:
        items = []
        for k in range(newest, newest - self.spec.entries, -1):
            link = self.url(f, f"/news/{f:05d}/{k}.html" if k >= 0 else f"/news/pool/{-k}.html")
            guid = "" if k >= 0 else f"soak-{f}-{k}"
            when = self.spec.published(f, k)
            items.append(web.Item(f"Story {f}-{k}", link, when, f"Story {f}-{k}.", guid))
        return web.rss(f"Soak feed {f}", self.url(f, ""), items)

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> web.Reply:
        now, (kind, *parts) = time.time(), path.decode("latin-1").strip("/").split("/")
        try:
            f = int(parts[0].removesuffix(".xml")) if parts[0] != "pool" else 0
            n = int(parts[1].removesuffix(".html")) if len(parts) == 2 else 0
            newest, page = self.spec.newest(f, now), kind == "news" and parts[0] != "pool"
            if not 0 <= f < self.spec.feeds or (page and not 0 <= n <= newest):
                return web.NOT_FOUND
            if kind == "feeds" and len(parts) == 1:
                modified = format_datetime(self.spec.published(f, newest), usegmt=True)
                fields = [("ETag", f'"soak-{f}-{newest}"'), ("Last-Modified", modified)]
                if headers.get(b"if-none-match") == fields[0][1].encode():
                    return web.Reply(304, web.http_response(304, fields))
                body, fields = self.feed(f, newest), [("Content-Type", web.RSS_TYPE), *fields]
            elif kind == "news" and len(parts) == 2:
                pool = parts[0] == "pool"
                seed = 10**9 + n if pool else f * 100_003 + n
                title = f"Archive story {n}" if pool else f"Story {f}-{n}"
                when = self.spec.published(0, 0) if pool else self.spec.published(f, n)
                body = web.article_html(seed, title, when)
                fields, self.pages, self.bytes = (
                    [("Content-Type", web.HTML_TYPE)],
                    self.pages + 1,
                    self.bytes + len(body),
                )
            else:
                return web.NOT_FOUND
        except (ValueError, IndexError):
            return web.NOT_FOUND
        if b"gzip" in headers.get(b"accept-encoding", b""):
            fields, body = [*fields, ("Content-Encoding", "gzip")], gzip.compress(body)
        return web.Reply(200, web.http_response(200, fields, body))

    def control(self, message: Any) -> Any:
        return {"pages": self.pages, "bytes": self.bytes}


def make_app(spec: web.Spec, port: int) -> SoakApp:
    return SoakApp(spec, port)


@dataclass
class Sample:
    t: float
    """Seconds since the service started."""
    mb: dict[str, dict[str, float]]
    """RSS, PSS and USS in MB by role (ROLES) and over all processes ("all")."""
    worker_rss: list[float]
    articles: int
    feeds_polled: int
    polls: dict[str, float]
    overdue: float | None

    def get(self, kind: str = "rss", role: str = "all") -> float:
        return self.mb[kind].get(role, 0.0)


def take_sample(service: procs.Service, dsn: str) -> Sample:
    mb: dict[str, dict[str, float]] = {"rss": {}, "pss": {}, "uss": {}}
    workers, names = [], {}
    try:
        top = psutil.Process(service.pid)
        tree = [top, *top.children(recursive=True)]
    except psutil.Error:
        tree = []
    for p in tree:
        try:
            role = names[p.pid] = procs.role_of(p, names)
            full = p.memory_full_info()
        except psutil.Error:
            continue
        role = "workers" if role == "worker" else role
        workers += [round(full.rss / procs.MB, 1)] if role == "workers" else []
        for kind, per in mb.items():
            for key in (role, "all"):
                per[key] = round(per.get(key, 0.0) + getattr(full, kind) / procs.MB, 1)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ingest.articles),"
            " (SELECT count(*) FROM ingest.feeds WHERE last_fetched_at IS NOT NULL)"
        ).fetchone() or (0, 0)
    status, text, _ = procs.http_get(service.port, "/metrics")
    figures = metrics(text) if status == 200 else {"polled": {}, "overdue": None}
    t = round(time.monotonic() - service.started, 1)
    return Sample(t, mb, workers, row[0], row[1], figures["polled"], figures["overdue"])


def slope(points: Sequence[tuple[float, float]]) -> str:
    """The least-squares slope of (seconds, MB), in MB per hour."""
    n = len(points)
    mx, my = sum(t for t, _ in points) / max(n, 1), sum(v for _, v in points) / max(n, 1)
    den = sum((t - mx) ** 2 for t, _ in points)
    if n < 3 or not den:
        return "-"
    return f"{3600 * sum((t - mx) * (v - my) for t, v in points) / den:+.1f} MB/h"


HEADER = (
    f"{'min':>6}  {'RSS sum':>7}  {'PSS sum':>7}  {'USS sum':>7}  main RSS/PSS  fork RSS/PSS"
    f"  workers RSS/PSS (n)  {'articles':>8}  {'polls (304s)':>14}  {'feeds':>6}  overdue"
)


def row_line(s: Sample) -> str:
    roles = "  ".join(f"{s.get('rss', r):6.0f}/{s.get('pss', r):<4.0f}" for r in ROLES[:3])
    polls, nm, overdue = sum(s.polls.values()), s.polls.get("not_modified", 0.0), s.overdue
    return (
        f"{s.t / 60:6.1f}  {s.get():7.0f}  {s.get('pss'):7.0f}  {s.get('uss'):7.0f}  {roles}"
        f" ({len(s.worker_rss)})  {s.articles:8d}  {polls:7.0f} ({nm:.0f} 304)"
        f"  {s.feeds_polled:6d}  {'-' if overdue is None else f'{overdue:.0f}':>7}"
    )


def summary(samples: Sequence[Sample]) -> list[str]:
    peak, peak_pss = max(samples, key=Sample.get), max(samples, key=lambda s: s.get("pss"))
    first, at5, end = samples[0], min(samples, key=lambda s: abs(s.t - 300)), samples[-1]
    half = [s for s in samples if s.t >= end.t / 2]
    peaks = [f"{r} {max(x.get('rss', r) for x in samples):.0f}" for r in ROLES]
    biggest = max(w for s in samples for w in [*s.worker_rss, 0.0])
    polls, span = sum(end.polls.values()) - sum(first.polls.values()), max(end.t - first.t, 1.0)
    articles, grew = (
        end.articles - first.articles,
        {k: end.get(k) - at5.get(k) for k in ("rss", "pss")},
    )
    return [
        f"peak RSS sum {peak.get():.0f} MB at {peak.t / 60:.1f} min ("
        + ", ".join(f"{r} {peak.get('rss', r):.0f}" for r in ROLES)
        + f"); peak PSS sum {peak_pss.get('pss'):.0f} MB at {peak_pss.t / 60:.1f} min (USS sum then"
        f" {peak_pss.get('uss'):.0f} MB). Target: RSS <= 400 MB.",
        f"peak RSS by role, MB: {', '.join(peaks)}; largest worker RSS {biggest:.0f} MB",
        f"RSS sum at {at5.t / 60:.1f} min {at5.get():.0f} MB, at the end ({end.t / 60:.1f} min)"
        f" {end.get():.0f} MB: {grew['rss']:+.0f} MB; PSS sum {at5.get('pss'):.0f} ->"
        f" {end.get('pss'):.0f} MB ({grew['pss']:+.0f} MB); main RSS {at5.get('rss', 'main'):.0f}"
        f" -> {end.get('rss', 'main'):.0f} MB",
        f"slope over the second half ({len(half)} samples from {half[0].t / 60:.1f} min): RSS sum"
        f" {slope([(s.t, s.get()) for s in half])}, PSS sum"
        f" {slope([(s.t, s.get('pss')) for s in half])},"
        f" main RSS {slope([(s.t, s.get('rss', 'main')) for s in half])}; RSS sum over that half"
        f" {min(s.get() for s in half):.0f}-{max(s.get() for s in half):.0f} MB",
        f"work: {articles} articles stored ({articles / span:.2f}/s), {polls:.0f} feed polls"
        f" ({polls / span:.1f}/s; by status at the end {end.polls}), feeds polled at least once"
        f" {end.feeds_polled}, overdue at the end {end.overdue}",
    ]  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = parser("soak_bench.py", __doc__, feeds=10_000, hosts=50, entries=10, workers=2)
    add = p.add_argument
    add("--minutes", type=float, default=60, help="soak length (default 60)")
    add("--every", type=float, default=15, help="seconds between samples (default 15)")
    add("--rate", type=float, default=5.0, help="new articles per second, site-wide (default 5)")
    add("--tick", type=float, default=30, help="INGEST_TICK_SECONDS (default 30)")
    add("--host-delay", type=float, default=0.5, help="INGEST_HOST_DELAY (default 0.5)")
    add("--min-interval", type=float, default=60, help="INGEST_MIN_INTERVAL (default 60)")
    add("--spread", action=argparse.BooleanOptionalAction, default=True, help="spread first polls")
    add("--logs", metavar="DIR", help="service log directory (default: new in /tmp)")
    args = p.parse_args(argv)
    check(p, args, "feeds", "entries", "workers", "hosts", "minutes", "every", "rate", "tick")
    check(p, args, "min-interval", *(["host-delay"] if args.host_delay else []))
    if args.logs and (Path(args.logs) / "soak.jsonl").exists():  # opening it would truncate it
        p.error(f"{args.logs}/soak.jsonl exists: give --logs a new directory")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    procs.on_sigterm()
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="soak_bench_"))
    logs.mkdir(parents=True, exist_ok=True)
    info, period = header("soak_bench", args.admin_url), args.feeds / args.rate
    print(
        f"site: {args.feeds} feeds x {args.entries} items on {args.hosts} hosts, {args.rate:g} new"
        f" articles/s (each feed every {period:.0f} s, polled every ~{period / 2:.0f} s);"
        f" INGEST_WORKERS={args.workers} INGEST_TICK_SECONDS={args.tick:g}"
        f" INGEST_HOST_DELAY={args.host_delay:g} INGEST_MIN_INTERVAL={args.min_interval:g}; first"
        f" polls {f'spread over {period / 2:.0f} s' if args.spread else 'all due'};"
        f" {args.minutes:g} min, a sample every {args.every:g} s; logs in {logs}"
    )
    failures: list[str] = []
    samples: list[Sample] = []
    service, site_info, started = None, {}, time.monotonic()
    spec = web.Spec(args.feeds, args.hosts, args.entries, args.rate, time.time())
    with Databases(args.admin_url) as dbs, web.Site(make_app, spec, args.hosts) as site:
        try:
            dsn = dbs.create("soak")
            settings = {"tick_seconds": args.tick, "host_delay": args.host_delay}
            env = procs.ingest_env(
                dsn, workers=args.workers, min_interval=args.min_interval, **settings
            )
            procs.import_feeds(env, [site.url(f, f"/feeds/{f:05d}.xml") for f in range(args.feeds)])
            if args.spread:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    spread = "now() + random() * make_interval(secs => %s)"
                    conn.execute(f"UPDATE ingest.feeds SET next_fetch_at = {spread}", (period / 2,))
            service, site_cpu = procs.Service.start(env, "soak", logs), site.cpu_seconds()
            print(
                f"service: pid {service.pid}, /metrics on :{service.port}\n\n{HEADER}", flush=True
            )
            end = service.started + 60 * args.minutes
            next_at = service.started + min(args.every, 5.0)
            while not samples or time.monotonic() < end - 0.5:
                time.sleep(max(0.0, next_at - time.monotonic()))
                if service.proc.poll() is not None:
                    raise RuntimeError(f"the service exited {service.proc.returncode}")
                samples.append(take_sample(service, dsn))
                print(row_line(samples[-1]), flush=True)
                next_at = min(next_at + args.every, end)
            site_info = {
                "cpu_seconds": round(site.cpu_seconds() - site_cpu, 1),
                **site.ask("pages")[0],
            }
            procs.stop_services([service])
            if service.exit_code != 0:
                failures.append(f"the service exited {service.exit_code} on SIGTERM")
        except Exception as e:
            failures.append(f"{type(e).__name__}: {e}")
        finally:
            procs.kill_services([service] if service else [])
    print("\n" + "\n".join(summary(samples) if samples else ["no samples"]))
    if service and (log := read_log_file(service.log_path)):
        exit_s = f"{service.exit_seconds:.1f} s" if service.exit_seconds is not None else "-"
        print(
            f"service log: {log.feeds} `feed_processed` lines {dict(log.statuses)}, {log.new} new"
            f" articles; warnings/errors {len(log.problems)}; SIGTERM -> exit code"
            f" {service.exit_code} after {exit_s}; left behind {service.left_behind or 'nothing'}"
        )
        print("".join(f"    {line}\n" for line in log.problems[:5]), end="")
    if site_info:
        kb = site_info["bytes"] / max(site_info["pages"], 1) / 1024
        print(
            f"site: {site_info['pages']} article pages served ({kb:.1f} KB average before gzip);"
            f" site CPU {site_info['cpu_seconds']} s"
        )
    print(f"total bench time {time.monotonic() - started:.0f} s; logs in {logs}")
    print("".join(f"failed: {f}\n" for f in failures), end="", file=sys.stderr)
    exit_code = service.exit_code if service else None
    figures = {"machine": info, "config": vars(args), "samples": samples, "site": site_info}
    write_json(args.json, figures | {"exit_code": exit_code, "failures": failures})
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
