"""Retention beside a running service: `ingest prune` takes 100,000 articles down to 10,000
while `ingest run` keeps polling a local site and storing new articles; how long the prune
takes and how long the service's writes wait for it.

What it measures and how to run it: bench/README.md (`prune_bench.py`)."""

import itertools
import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from lib import ROOT, procs, web
from lib.db import Databases, scalar
from lib.logs import read_log_file
from lib.report import check, header, parser, pct, write_json

DAY = 86400.0

# 100,000 articles (default), article g published (n - g + 0.5) * step days ago, so that id
# order is publication order and the `keep` newest are younger than keep * step days. Every
# article has two URL forms, a feed entry, 32 band rows and an insert in the change feed; one
# in 50 an earlier version; one in ten is a copy of the article before it, one in a hundred a
# copy of a story `long` articles older (those outlive their original: the prune re-points
# them). The change trigger is off while generating, the band rows go in in key order.
GENERATE = """
ALTER TABLE ingest.articles DISABLE TRIGGER USER;
INSERT INTO ingest.articles (url, original_url, feed_id, guid, site, title, text, published_at,
    published_source, language, content_hash, text_source, fetched_at, lsh_bands, tags)
SELECT 'https://old' || (g %% 100) || '.example/news/' || g,
       'https://old' || (g %% 100) || '.example/news/' || g || '?utm_source=rss',
       %(feed)s, 'old-' || g, 'old' || (g %% 100) || '.example',
       'Story ' || g || ' on the ' || (ARRAY['climate', 'vote', 'match', 'market'])[1 + g %% 4],
       'Reporters covered event ' || g || ' in detail. ' || repeat('The council met again and '
           || 'the budget for the coming year was discussed at length by every member. ', 12),
       now() - make_interval(secs => (%(n)s - g + 0.5) * %(step)s * 86400),
       'feed', 'en', sha256(g::text::bytea), 'page', now(),
       ARRAY(SELECT hashtextextended(g::text || ':' || b, 0) FROM generate_series(1, 32) AS b),
       ARRAY['tag-' || (g %% 300)]
FROM generate_series(1, %(n)s) AS g;
UPDATE ingest.articles SET duplicate_of = id - 1 WHERE id %% 10 = 0;
UPDATE ingest.articles SET duplicate_of = id - %(long)s + 1 WHERE id %% 100 = 7 AND id > %(long)s;
INSERT INTO ingest.article_urls (url_hash, article_id)
SELECT url_hash, id FROM ingest.articles
UNION ALL SELECT ingest.url_hash(original_url), id FROM ingest.articles;
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, first_seen_at)
SELECT %(feed)s, sha256(guid::bytea), id, published_at FROM ingest.articles;
INSERT INTO ingest.article_bands (band, article_id)
SELECT DISTINCT b, id FROM ingest.articles, unnest(lsh_bands) AS b ORDER BY 1, 2;
INSERT INTO ingest.article_history (article_id, title, text, content_hash, replaced_at)
SELECT id, title, 'An earlier version of story ' || id, sha256(('v' || id)::bytea), published_at
FROM ingest.articles WHERE id %% 50 = 0;
INSERT INTO ingest.article_changes (article_id, kind, changed_at)
SELECT id, 'insert', published_at FROM ingest.articles ORDER BY id;
ALTER TABLE ingest.articles ENABLE TRIGGER USER;
"""


class NewsApp(web.App):
    """Feed f lists its `entries` newest items, one more every feeds / rate seconds; each item
    links to a page of its own."""

    def __init__(self, spec: web.Spec, port: int) -> None:
        self.spec, self.port = spec, port

    def respond(self, path: bytes, headers: dict[bytes, bytes]) -> web.Reply:
        parts = path.decode("latin-1").strip("/").split("/")
        try:
            f = int(parts[1].removesuffix(".xml").removesuffix(".html"))
            newest = self.spec.newest(f, time.time())
            if parts[0] == "feeds" and len(parts) == 2:
                items = [
                    web.Item(
                        f"Story {f}-{k}",
                        web.site_url(f % self.spec.hosts, self.port, f"/news/{f}/{k}.html"),
                        self.spec.published(f, k),
                        f"Story {f}-{k}.",
                    )
                    for k in range(newest, max(newest - self.spec.entries, -1), -1)
                ]
                body = web.rss(f"Feed {f}", web.site_url(f % self.spec.hosts, self.port, ""), items)
                return web.Reply(
                    200, web.http_response(200, [("Content-Type", web.RSS_TYPE)], body)
                )
            if parts[0] == "news" and len(parts) == 3:
                k = int(parts[2].removesuffix(".html"))
                if 0 <= k <= newest:
                    page = web.article_html(
                        f * 100_003 + k, f"Story {f}-{k}", self.spec.published(f, k)
                    )
                    return web.Reply(
                        200, web.http_response(200, [("Content-Type", web.HTML_TYPE)], page)
                    )
        except (ValueError, IndexError):
            pass
        return web.NOT_FOUND


def make_app(spec: web.Spec, port: int) -> NewsApp:
    return NewsApp(spec, port)


@dataclass
class LockWaits:
    """pg_stat_activity sampled every `every` seconds: each wait of a backend of the service
    (application_name `bench-service`) on a lock, from the first to the last sample that saw it
    (a wait seen once counts `every`)."""

    dsn: str
    every: float = 0.02
    samples: int = 0
    waits: dict[tuple[int, str, str], list[float]] = field(default_factory=dict)
    """(pid, query start, lock kind) -> [first seen, last seen] (monotonic seconds)."""
    prune_waits: float = 0.0
    """Seconds the prune itself was seen waiting on a lock (the service's turn)."""
    stop: threading.Event = field(default_factory=threading.Event)

    QUERY = (
        "SELECT pid, application_name, query_start::text, wait_event FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                now = time.monotonic()
                for pid, app, start, event in conn.execute(self.QUERY):
                    if app == "bench-prune":
                        self.prune_waits += self.every
                        continue
                    seen = self.waits.setdefault((pid, start, event), [now, now])
                    seen[1] = now
                self.samples += 1
                self.stop.wait(self.every)

    def between(self, start: float, end: float) -> list[float]:
        return sorted(
            last - first + self.every
            for first, last in self.waits.values()
            if first <= end and last >= start
        )


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [f"ingest.{t}" for t in ("articles", "article_urls", "feed_entries",
                 "article_bands", "article_history", "article_changes")]  # fmt: skip
        found = {n.split(".")[1]: int(scalar(conn, f"SELECT count(*) FROM {n}")) for n in names}
        found["dangling_copies"] = int(scalar(conn,
            "SELECT count(*) FROM ingest.articles c WHERE c.duplicate_of IS NOT NULL AND NOT"
            " EXISTS (SELECT 1 FROM ingest.articles o WHERE o.id = c.duplicate_of"
            " AND o.duplicate_of IS NULL)"))  # fmt: skip
        return found


def feed_ms(log_path: Path, start: float, end: float) -> list[int]:
    """`ms` of the service's `feed_processed` lines that ended between start and end (epoch)."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            if record.get("event") != "feed_processed":
                continue
            t = datetime.fromisoformat(str(record["timestamp"])).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        if start <= t <= end:
            found.append(int(record.get("ms", 0)))
    return sorted(found)


def batch_times(stderr: str) -> list[float]:
    """Seconds between two `prune_batch` log lines of the prune (the first from its start)."""
    stamps = []
    for line in stderr.splitlines():
        with_event = line.startswith("{") and '"prune_batch"' in line
        if with_event:
            stamps.append(datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp())
    return [b - a for a, b in itertools.pairwise(stamps)]


def ms_line(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"{label}: none"
    return (
        f"{label}: {len(values)}, median {pct(values, 0.5):.0f} ms, p99 {pct(values, 0.99):.0f} ms,"
        f" max {max(values):.0f} ms"
    )


def index_plans(dsn: str) -> dict[str, bool]:
    """Whether the plan of each example of docs/sql.md over articles and changes (news.feeds is
    one row a feed: a sequential scan is right there) uses an index, as a consumer would get it
    now: with the statistics autovacuum has left, no ANALYZE of our own. news.search plans its
    statements inside the function, out of EXPLAIN's sight: left out."""
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    blocks = [b.strip().rstrip(";") for b in re.findall(r"```sql\n(.*?)```", text, re.S)]
    found = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for query in (b for b in blocks if "news.feeds" not in b and "news.search" not in b):
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}".encode()))
            found[query.splitlines()[0][:70]] = bool(
                re.search(r"Index (Only )?Scan|Bitmap Index Scan", plan)
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("prune_bench.py", __doc__, feeds=200, hosts=20, entries=10, workers=2)
    p.add_argument("--articles", type=int, default=100_000, help="generated (default 100,000)")
    p.add_argument("--keep", type=int, default=10_000, help="left by the prune (default 10,000)")
    p.add_argument("--batch", type=int, default=250, help="prune --batch (default 250)")
    p.add_argument("--rate", type=float, default=10.0, help="new articles/s (default 10)")
    p.add_argument("--warm", type=float, default=20.0, help="seconds of service before (20)")
    args = p.parse_args(argv)
    check(p, args, "feeds", "hosts", "entries", "workers", "articles", "keep", "batch")
    if args.keep >= args.articles:
        p.error("--keep must be below --articles")
    procs.on_sigterm()
    info = header("prune_bench", args.admin_url)
    step = 200.0 / args.articles  # days between two generated articles: 200 days in all
    age_days = args.keep * step
    older_than = f"{round(age_days * 24)}h"
    print(
        f"{args.articles} generated articles over {args.articles * step:.0f} days, prune"
        f" --older-than {older_than} --batch {args.batch} keeps the {args.keep} newest; service:"
        f" {args.feeds} feeds on {args.hosts} hosts, {args.rate:g} new articles/s,"
        f" INGEST_WORKERS={args.workers}, tick 1 s",
        flush=True,
    )
    logs = Path(tempfile.mkdtemp(prefix="prune_bench_"))
    figures: dict[str, Any] = {"machine": info, "config": vars(args)}
    spec = web.Spec(args.feeds, args.hosts, args.entries, args.rate, time.time() - 60)
    service = None
    with Databases(args.admin_url) as dbs, web.Site(make_app, spec, args.hosts) as site:
        try:
            dsn = dbs.create("prune")
            env = procs.ingest_env(dsn, workers=args.workers, tick_seconds=1, min_interval=5,
                                   host_delay=0, change_retention_days=0)  # fmt: skip
            procs.import_feeds(env, [site.url(f, f"/feeds/{f}.xml") for f in range(args.feeds)])
            t0 = time.monotonic()
            with psycopg.connect(dsn, autocommit=True) as conn:
                feed = scalar(conn, "INSERT INTO ingest.feeds (url, active, next_fetch_at)"
                              " VALUES ('https://old.example/feed', false, 'infinity')"
                              " RETURNING id")  # fmt: skip
                params = {"n": args.articles, "step": step, "feed": feed, "long": args.keep}
                for statement in filter(str.strip, GENERATE.split(";\n")):
                    conn.execute(statement.encode(), params)
                conn.execute("VACUUM ANALYZE")
            before = counts(dsn)
            print(f"generated in {time.monotonic() - t0:.1f} s: {before}", flush=True)

            service = procs.Service.start(env | {"PGAPPNAME": "bench-service"}, "service", logs)
            time.sleep(args.warm)
            stored_before = counts(dsn)["articles"] - before["articles"]
            print(f"service: pid {service.pid}, {stored_before} articles stored in the first"
                  f" {args.warm:g} s", flush=True)  # fmt: skip

            prune_env = env | {"PGAPPNAME": "bench-prune", "INGEST_LOG_LEVEL": "debug"}
            cmd = procs.ingest_command("prune", "--older-than", older_than, "--batch",
                                       str(args.batch))  # fmt: skip
            t1 = time.perf_counter()
            dry = subprocess.run([*cmd, "--dry-run"], env=prune_env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=900)  # fmt: skip
            dry_s = time.perf_counter() - t1
            print(f"dry run, {dry_s:.2f} s: {dry.stdout.strip()}", flush=True)

            sampler = LockWaits(dsn)
            thread = threading.Thread(target=sampler.run, daemon=True)
            thread.start()
            time.sleep(1.0)
            calm = time.monotonic()
            time.sleep(10.0)  # the service alone, for comparison
            start_mono, start_epoch = time.monotonic(), time.time()
            done = subprocess.run(cmd, env=prune_env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=3600)  # fmt: skip
            end_mono, end_epoch = time.monotonic(), time.time()
            time.sleep(1.0)
            sampler.stop.set()
            thread.join(5)
            if done.returncode != 0:
                raise RuntimeError(f"prune exited {done.returncode}: {done.stderr[-2000:]}")
            after = counts(dsn)
            during = sampler.between(start_mono, end_mono)
            alone = sampler.between(calm, start_mono)
            batches = batch_times(done.stderr)
            fms_during = feed_ms(service.log_path, start_epoch, end_epoch)
            fms_before = feed_ms(service.log_path, start_epoch - 10, start_epoch)
            with psycopg.connect(dsn, autocommit=True) as conn:
                stored_during = scalar(conn, "SELECT count(*) FROM ingest.articles WHERE"
                                       " created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                                       (start_epoch, end_epoch))  # fmt: skip
            print(
                f"\nprune: {end_mono - start_mono:.2f} s wall ({done.stdout.strip()})\n"
                f"  batches: {len(batches) + 1}; "
                + ms_line("batch durations", [1000 * b for b in batches])
                + f"\n  service during the prune: {stored_during} articles stored;"
                f" lock waits sampled every {sampler.every * 1000:.0f} ms: "
                + ms_line("waits", [1000 * w for w in during])
                + f"; total {1000 * sum(during):.0f} ms\n"
                f"  service in the 10 s before: "
                + ms_line("lock waits", [1000 * w for w in alone])
                + f"\n  prune seen waiting for the service's turn: {sampler.prune_waits:.2f} s"
                f"\n  feed_processed before: "
                + ms_line("feeds", fms_before)
                + "\n  feed_processed during: "
                + ms_line("feeds", fms_during)
                + f"\nrows before the service started: {before}\nrows after: {after}",
                flush=True,
            )
            figures |= {
                "prune_seconds": end_mono - start_mono, "prune_stdout": done.stdout,
                "dry_run_seconds": dry_s, "batch_seconds": batches,
                "lock_waits_during": during, "lock_waits_before": alone,
                "feed_ms_before": fms_before, "feed_ms_during": fms_during,
                "stored_during": stored_during, "before": before, "after": after,
            }  # fmt: skip
            plans = index_plans(dsn)
            print(f"documented queries of docs/sql.md after the prune: {sum(plans.values())} of"
                  f" {len(plans)} use an index")  # fmt: skip
            for query, indexed in plans.items():
                print(f"    {'index' if indexed else 'NO INDEX'}: {query}")
            figures["index_plans_after"] = plans
            procs.stop_services([service])
            log = read_log_file(service.log_path)
            print(f"service log: {log.feeds} feeds processed {dict(log.statuses)}, {log.new} new;"
                  f" warnings/errors {len(log.problems)}; exit {service.exit_code}")  # fmt: skip
            print("".join(f"    {line}\n" for line in log.problems[:5]), end="")
        finally:
            procs.kill_services([service] if service else [])
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
