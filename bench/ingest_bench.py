"""Ingestion throughput: the project against a naive loop and the extraction ceiling.

What it measures and how to run it: bench/README.md (`ingest_bench.py`)."""

import concurrent.futures
import io
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import feedparser
import httpx
import psycopg
import trafilatura
from lib import procs, web
from lib.corpora import aeb_bodies, aeb_ids, aeb_page, find_aeb
from lib.db import Databases, scalar
from lib.profile import profiled
from lib.report import Steps, check, header, med, parser, write_json

HOST_DELAY = os.environ.get("INGEST_HOST_DELAY", "0")  # the naive loop has none; 0.5 s by default
OWN = ("main", "forkserver", "worker", "tracker", "profiler")
"""The roles of the measured processes (the site and PostgreSQL are counted apart)."""


def buckets(ids: Sequence[str], feeds: int) -> list[Sequence[str]]:
    """The pages dealt round-robin over the feeds: every page in exactly one feed."""
    n = max(1, min(feeds, len(ids)))
    return [ids[f::n] for f in range(n)]


Plan = tuple[Path, tuple[str, ...], int, int, bool, bool]
"""The site: corpus, page ids, feeds, hosts, full text, later (a second feed of all entries)."""


def make_app(plan: Plan, port: int) -> web.StaticApp:
    """The AEB pages from memory, feed f and its pages on host f % hosts, with RSS feeds (with
    `full_text`, each entry carries its page's article, the AEB's ground truth). With `later`,
    feed f holds its older half of the entries, and `/feeds/f-all.xml` all of them: the feed
    as a later poll finds it, its newer half new."""
    aeb, ids, feeds, hosts, full_text, later = plan
    bodies = aeb_bodies(aeb) if full_text else {}
    app, start = web.StaticApp(), datetime(2025, 8, 11, 14, 0, tzinfo=UTC)
    for f, pages in enumerate(buckets(ids, feeds)):
        items = []
        for n, page in enumerate(pages):
            path, when = f"/news/{page[:2]}/{page}.html", start - timedelta(hours=f, minutes=37 * n)
            app.add(path, aeb_page(aeb, page), "text/html")
            items.append(feed_item(page, web.site_url(f % hosts, port, path), when, bodies))
        home = web.site_url(f % hosts, port, "")
        first = items[len(items) // 2 :] if later else items  # newest first: the older half
        title = f"Bench feed {f}"
        app.add(f"/feeds/{f:03d}.xml", web.rss(title, home, first), web.RSS_TYPE)
        if later:
            app.add(f"/feeds/{f:03d}-all.xml", web.rss(title, home, items), web.RSS_TYPE)
    return app


def feed_item(page: str, url: str, when: datetime, bodies: dict[str, str]) -> web.Item:
    """A page's feed entry: a title, a one-line summary and, where `bodies` has the page's
    article (a full-text site), that article as its content, a paragraph a line."""
    body = bodies.get(page.split("~")[0], "")
    content = "".join(f"<p>{escape(x)}</p>" for x in body.split("\n") if x.strip())
    return web.Item(f"Article {page[:12]}", url, when, f"Summary of {page[:12]}.", "", content)


@dataclass
class Run:
    seconds: float
    items: int
    """Articles stored (project, naive) or pages extracted (bare)."""
    peak_rss: int
    cpu: dict[str, float]
    """CPU seconds by role (lib.procs.ROLES)."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def ms(self, *roles: str) -> float:
        """CPU milliseconds per item of these roles."""
        return 1000 * sum(self.cpu[r] for r in roles) / max(self.items, 1)

    def line(self) -> str:
        return (
            f"{self.rate:7.1f}/s  {self.items:>4} in {self.seconds:6.2f} s  peak RSS"
            f" {self.peak_rss / procs.MB:5.0f} MB  CPU {sum(self.cpu[r] for r in OWN):5.1f} s"
        )


def run_project(dbs: Databases, site: web.Site, feeds: list[str], workers: int,
                profile: Path | None, later: bool = False) -> Run:  # fmt: skip
    dsn = dbs.create("p")
    try:
        env = procs.ingest_env(dsn, workers=workers, host_delay=HOST_DELAY)
        procs.run_ingest(env, "migrate")
        procs.run_ingest(env, "feeds", "add", *feeds)
        cmd = profiled(procs.ingest_command("run", "--once"), profile)
        once = procs.run_once(env, cmd, site=site.pids, timeout=600)
        stored, feed_text = stored_texts(dsn)
        poll = None
        if later:
            summary = later_poll(dsn, env, site)
            total, from_feed = stored_texts(dsn)
            poll = f"{summary}; after both, {from_feed} of {total} texts from the feed"
        detail = {"summary": once.out.strip(), "feed_text": feed_text, "later": poll}
        detail |= once.log.summary() | once.window()
        detail["busy"] = busy_by_tenth(once)
        first = once.started + detail["startup_s"]
        detail["window_cpu"] = once.sampler.between(first, first + detail["feeds_window_s"])
        return Run(once.seconds, stored, once.sampler.peak_rss, once.sampler.total, detail)
    finally:
        dbs.drop(dsn)


def busy_by_tenth(once: procs.Once) -> list[float]:
    """Cores busy (CPU seconds of every process but the site's, a second) in each tenth of a
    run's wall time: where a run leaves cores idle (its fill, its tail), not only how much."""
    edges = [once.started + (once.ended - once.started) * k / 10 for k in range(11)]
    roles = [role for role in procs.ROLES if role != "site"]
    cpu = [sum(once.sampler.at(t)[role] for role in roles) for t in edges]
    return [
        (b - a) / (t1 - t0) for a, b, t0, t1 in zip(cpu, cpu[1:], edges, edges[1:], strict=False)
    ]


def stored_texts(dsn: str) -> tuple[int, int]:
    """Articles stored, and how many of them from their feed's text."""
    with psycopg.connect(dsn) as conn:
        stored = int(scalar(conn, "SELECT count(*) FROM news.articles"))
        feed_text = int(
            scalar(conn, "SELECT count(*) FROM news.articles WHERE text_source = 'feed'")
        )
    return stored, feed_text


def later_poll(dsn: str, env: dict[str, str], site: web.Site) -> str:
    """A second `run --once`, every feed due again and holding all its entries (`-all.xml`:
    the feed as a later poll finds it): its summary line."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest.feeds SET url = regexp_replace(url, '[.]xml$', '-all.xml'),"
            " next_fetch_at = now() - interval '1 minute'"
        )
        # Later: the hosts the first run held for their delay after it (sql/0045) are free.
        conn.execute("UPDATE ingest.host_holds SET held_until = LEAST(held_until, now())")
    once = procs.run_once(env, procs.ingest_command("run", "--once"), site=site.pids, timeout=600)
    return once.out.strip()


def run_naive(dbs: Databases, site: web.Site, feeds: list[str]) -> Run:
    """httpx.get the feed, feedparser, then for each entry httpx.get the page,
    trafilatura.extract and one autocommit INSERT: one after the other."""
    dsn = dbs.create("n")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE articles (id bigserial PRIMARY KEY, url text NOT NULL UNIQUE,"
                " title text, published text, text text NOT NULL)"
            )
            query = "INSERT INTO articles (url, title, published, text) VALUES (%s, %s, %s, %s)"
            no_text = 0  # trust_env=False below: never through a proxy, only ever to loopback
            with procs.Sampler(pids={"main": [os.getpid()], "site": site.pids}, dsn=dsn) as sampler:
                started = time.perf_counter()
                for url in feeds:
                    feed = httpx.get(url, timeout=30, trust_env=False).raise_for_status()
                    for entry in feedparser.parse(io.BytesIO(feed.content)).entries:
                        page = httpx.get(entry.link, timeout=30, trust_env=False).raise_for_status()
                        options = {"include_comments": False, "with_metadata": True}
                        text = trafilatura.extract(page.content, url=entry.link, **options)
                        no_text += not text
                        if text:
                            values = (entry.link, entry.get("title"), entry.get("published"), text)
                            conn.execute(query + " ON CONFLICT (url) DO NOTHING", values)
                seconds = time.perf_counter() - started
            stored = int(scalar(conn, "SELECT count(*) FROM articles"))
        return Run(seconds, stored, sampler.peak_rss, sampler.total, {"no_text": no_text})
    finally:
        dbs.drop(dsn)


PAGES: dict[str, bytes] = {}


def _bare_init(aeb: Path, ids: Sequence[str]) -> None:
    PAGES.update((page, aeb_page(aeb, page)) for page in ids)
    _bare_extract(ids[0])  # the first extraction pays for lazy imports and caches: untimed


def _bare_ready() -> int:
    time.sleep(0.2)
    return os.getpid()


def _bare_extract(page: str) -> int:
    doc = trafilatura.bare_extraction(PAGES[page], with_metadata=True, include_comments=False)
    return 0 if doc is None or isinstance(doc, dict) else len(doc.text or "")


def run_bare(aeb: Path, ids: Sequence[str], workers: int) -> Run:
    """trafilatura.bare_extraction of the pages in memory in a pool of `workers` processes
    (started, pages loaded and warmed up before the clock starts)."""
    ctx, init = multiprocessing.get_context("spawn"), (aeb, list(ids))
    with concurrent.futures.ProcessPoolExecutor(workers, ctx, _bare_init, init) as pool:
        seen: set[int] = set()
        deadline = time.monotonic() + 120
        while len(seen) < workers and time.monotonic() < deadline:
            seen.update(f.result() for f in [pool.submit(_bare_ready) for _ in range(workers)])
        with procs.Sampler(pids={"main": [os.getpid()], "worker": sorted(seen)}) as sampler:
            started = time.perf_counter()
            lengths = list(pool.map(_bare_extract, ids, chunksize=1))
            seconds = time.perf_counter() - started
    with_text = sum(1 for n in lengths if n > 0)
    return Run(seconds, len(ids), sampler.peak_rss, sampler.total, {"with_text": with_text})


def busiest_host(ids: Sequence[str], feeds: int, hosts: int) -> int:
    """Requests to the host that gets most: its feeds, its robots.txt and its pages."""
    per_host = [0] * max(1, min(feeds, hosts))
    for f, pages in enumerate(buckets(ids, feeds)):
        per_host[f % len(per_host)] += 1 + len(pages)
    return max(per_host) + 1


def report(
    rows: dict[str, list[Run]], expected: int, busiest: int = 0, pages: int | None = None
) -> list[str]:
    """The table and the project's details. `expected`: the articles a run stores; `pages`:
    the pages the bare extraction reads (all of them; `expected` when None)."""

    def median(name: str, fn: Callable[[Run], float]) -> float:
        return med([fn(r) for r in rows[name]])

    base = {name: median(name, lambda r: r.rate) for name in ("naive", "bare") if rows.get(name)}
    lines = [
        "",
        f"{'name':<8}  {'median/s  (min-max)':<24}  {'vs naive':>8}  {'vs bare':>8}"
        f"  {'peak RSS MB':>11}  {'CPU ms/item':>11}  stored (expected)",
    ]
    for name, runs in rows.items():
        rates, rate = [r.rate for r in runs], median(name, lambda r: r.rate) if runs else 0.0
        if not runs:
            lines.append(f"{name:<8}  failed")
            continue
        ratios = "".join(
            f"  {rate / base[b]:8.2f}" if b in base else f"  {'-':>8}" for b in ("naive", "bare")
        )
        cell = f"{rate:7.1f}  ({min(rates):.1f}-{max(rates):.1f})"
        stored = "/".join(str(r.items) for r in runs)
        lines.append(
            f"{name:<8}  {cell:<24}{ratios}  {median(name, lambda r: r.peak_rss / procs.MB):11.0f}"
            f"  {median(name, lambda r: r.ms(*OWN)):11.0f}  {stored}"
            f" ({f'{pages or expected} pages' if name == 'bare' else f'{expected} articles'})"
        )
    lines.append("")
    window = [r.items / max(r.detail["feeds_window_s"], 1e-9) for r in rows.get("project", [])]
    if rows.get("project"):

        def detail(key: str) -> float:
            return median("project", lambda r: float(r.detail.get(key) or 0))

        lag = [r.detail.get("lag") or {} for r in rows["project"]]
        lag_ms = {k: "/".join(str(x.get(k)) for x in lag) for k in ("p50_ms", "p99_ms", "max_ms")}
        lines += [
            f"project: median wall {median('project', lambda r: r.seconds):.2f} s per `run --once`"
            f" = start-up {detail('startup_s'):.2f} s + feeds {detail('feeds_window_s'):.2f} s +"
            f" shutdown {detail('shutdown_s'):.2f} s (JSON logs: first feed start to last"
            f" `feed_processed`); slowest feed {detail('feed_ms_max') / 1000:.2f} s;"
            f" {med(window):.1f} articles/s over the feeds window",
            f"project: CPU median {median('project', lambda r: r.cpu['main']):.1f} s in the main"
            f" process + {median('project', lambda r: sum(r.cpu[x] for x in OWN[1:])):.1f} s in its"
            f" children (fork server and workers); event-loop lag p50 {lag_ms['p50_ms']} ms, p99"
            f" {lag_ms['p99_ms']} ms, max {lag_ms['max_ms']} ms (each run)",
            f"project: last run: {rows['project'][-1].detail['summary']}; stored from the feed's"
            f" text {rows['project'][-1].detail['feed_text']}, of which without fetching the page"
            f" {rows['project'][-1].detail['from_feed']}",
            *(
                [
                    f"project: pages fetched a feed in the last run (new entries less those"
                    f" stored from its text without a request): at most {max(paged)},"
                    f" {sum(n > 5 for n in paged)} of {len(paged)} feeds over 5; by count"
                    f" {dict(sorted(Counter(paged).items()))}"
                ]
                if rows["project"][-1].detail["from_feed"]
                and (paged := rows["project"][-1].detail["paged"])
                else []
            ),
            *(
                [f"project: later poll of the last run (the newer halves): {later}"]
                if (later := rows["project"][-1].detail.get("later"))
                else []
            ),
            *(f"project: log: {p}" for p in rows["project"][-1].detail["problems"][:5]),
            "project: cores busy in each tenth of the last run's wall time (start-up first): "
            + " ".join(f"{b:.2f}" for b in rows["project"][-1].detail["busy"]),
        ]
    cpu: dict[str, float] = {}
    for name, runs in rows.items():
        if runs:
            pg, site, own, main = (
                median(name, lambda r, k=k: r.ms(*k)) for k in (["pg"], ["site"], OWN, ["main"])
            )
            cpu[name] = own + pg + site
            parts = (
                f"main {main:.1f} + workers {own - main:.1f}"
                if name != "naive"
                else f"loop {own:.1f}"
            )
            lines.append(
                f"{name}: CPU ms per {'page' if name == 'bare' else 'article'}: {parts} +"
                f" PostgreSQL {pg:.1f} + local site {site:.1f} = {own + pg + site:.1f}"
            )
    if rows.get("project") and cpu.get("bare"):
        # bare's clock starts on warm workers with the pages in memory: the project's CPU of
        # its feeds window (start-up and shutdown left out) is the like-for-like figure.
        roles = [*OWN, "pg", "site"]
        window_ms = median(
            "project",
            lambda r: 1000 * sum(r.detail["window_cpu"][k] for k in roles) / max(r.items, 1),
        )
        lines.append(
            f"project: CPU ms per article in the feeds window (start-up and shutdown left out,"
            f" as bare's clock leaves out its pool's): {window_ms:.1f}; against bare's"
            f" {cpu['bare']:.1f} a page: ceiling {cpu['bare'] / window_ms:.2f}"
        )
    if cpu.get("project") and cpu.get("bare") and "bare" in base:
        ceiling = cpu["bare"] / cpu["project"]
        whole = median("project", lambda r: r.rate) / base["bare"] / ceiling
        lines.append(
            f"CPU-bound ceiling of project / bare: {ceiling:.2f} (the ratio of their CPU per"
            " item: the rate ratio of runs that keep every core busy); reached: whole process"
            f" {whole:.2f}, feeds window {med(window) / base['bare'] / ceiling:.2f}"
        )
    if cpu.get("project") and busiest:
        # The physical floor of a cold run: the larger of the CPU floor (the project's
        # own CPU per article, every process counted, over the cores) and the politeness floor
        # of the busiest host ((requests to it - 1) x the host delay).
        cores = len(os.sched_getaffinity(0))
        cpu_floor = expected * cpu["project"] / 1000 / cores
        polite_floor = (busiest - 1) * float(HOST_DELAY)
        floor = max(cpu_floor, polite_floor)
        wall = median("project", lambda r: r.seconds)
        lines.append(
            f"floor of a cold run: {floor:.2f} s, the larger of the CPU floor {cpu_floor:.2f} s"
            f" ({expected} x {cpu['project']:.1f} ms / {cores} cores) and the politeness floor"
            f" {polite_floor:.2f} s (({busiest} requests to the busiest host - 1) x"
            f" {float(HOST_DELAY):g} s); project median wall {wall:.2f} s = {wall / floor:.2f} x"
            f" the floor, {wall / polite_floor if polite_floor else float('inf'):.2f} x the"
            " politeness floor"
        )
    for label, goal in (("bare", 0.9), ("naive", 2.0)):
        if label in base and rows.get("project"):
            whole = median("project", lambda r: r.rate) / base[label]
            lines.append(
                f"target project >= {goal:g} x {label}: whole process {whole:.2f}, feeds window"
                f" {med(window) / base[label]:.2f}"
            )
    for name, key in (("naive", "no_text"), ("bare", "with_text")):
        if rows.get(name):
            lines.append(
                f"{name}: median wall {median(name, lambda r: r.seconds):.2f} s;"
                f" {key.replace('_', ' ')}: {rows[name][-1].detail[key]}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("ingest_bench.py", __doc__, feeds=20, hosts=8, workers=2, repeat=3)
    add = p.add_argument
    add("--pages", type=int, default=None, metavar="N", help="the first N pages (default all)")
    add("--copies", type=int, default=1, metavar="K", help="every page K times (default 1)")
    add("--aeb", metavar="DIR", help="AEB corpus (default <repo>/../shared/aeb)")
    add("--only", default="project,naive,bare", help="a subset of project,naive,bare")
    add("--profile", metavar="FILE", help="the last project run under py-spy, stacks in FILE")
    add("--full-text", action="store_true", help="entries carry the whole article (the AEB's)")
    add("--later", action="store_true",
        help="with --full-text: a first run of each feed's older half, then all")  # fmt: skip
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    check(p, args, "feeds", "repeat", "workers", "copies", "hosts", *["pages"][: bool(args.pages)])
    if not only or set(only) - {"project", "naive", "bare"}:
        p.error("--only takes a comma-separated subset of project,naive,bare")
    procs.on_sigterm()
    aeb = find_aeb(args.aeb)
    ids = tuple(aeb_ids(aeb, args.pages, args.copies))
    feeds = len(buckets(ids, args.feeds))
    info = header("ingest_bench", args.admin_url)
    print(
        f"corpus: {len(ids)} pages from {aeb}; site: {feeds} feeds on {min(feeds, args.hosts)}"
        f" loopback hosts; {args.repeat} run(s) each, interleaved; workers {args.workers};"
        f" INGEST_HOST_DELAY={HOST_DELAY}"
    )
    rows: dict[str, list[Run]] = {name: [] for name in ("project", "naive", "bare") if name in only}
    step, started, failed = Steps(), time.perf_counter(), set[str]()
    if args.later and not args.full_text:
        p.error("--later takes --full-text")
    plan = (aeb, ids, args.feeds, args.hosts, args.full_text, args.later)
    with Databases(args.admin_url) as dbs, web.Site(make_app, plan, args.hosts) as site:
        urls = [site.url(f, f"/feeds/{f:03d}.xml") for f in range(feeds)]
        for k in range(args.repeat):
            profile = Path(args.profile) if args.profile and k == args.repeat - 1 else None
            calls: dict[str, tuple[Any, ...]] = {
                "project": (run_project, dbs, site, urls, args.workers, profile, args.later),
                "naive": (run_naive, dbs, site, urls), "bare": (run_bare, aeb, ids, args.workers),
            }  # fmt: skip
            for name in (name for name in rows if name not in failed):
                run = step(f"[{k + 1}/{args.repeat}] {name}", *calls[name])
                rows[name] += [run] if run else []
                failed |= set() if run else {name}
    # A full-text site's page requests are the project's to decide: no politeness floor.
    busiest = 0 if args.full_text else busiest_host(ids, feeds, args.hosts)
    # With --later, the first run stores the older halves only (the bare extraction reads
    # every page all the same).
    expected = sum(len(b) - len(b) // 2 for b in buckets(ids, feeds)) if args.later else len(ids)
    print("\n".join(report(rows, expected, busiest, len(ids))))
    print(f"total bench time {time.perf_counter() - started:.0f} s")
    short = any(r.items < expected for r in rows.get("project", []))
    if short:
        print("ingest_bench: the project stored fewer articles than expected", file=sys.stderr)
    write_json(args.json, {"machine": info, "config": vars(args), "feeds": feeds, "runs": rows})
    return 1 if short or step.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
