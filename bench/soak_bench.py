"""Memory soak: the long-lived service holding many feeds while new articles keep arriving.

    .venv/bin/python bench/soak_bench.py [--minutes 60] [--every 15] [--feeds 10000]
        [--rate 5] [--hosts 50] [--entries 10] [--workers 2] [--json FILE] [--logs DIR]

Target (issue): "peak RSS of the service (all processes) <= 400 MB while holding 10,000 feeds
and ingesting continuously; flat over a one-hour soak (report the curve)."

The site. A separate process (bench/poll_bench.py's asyncio server) serves `--feeds` RSS feeds
(default 10,000) dealt round-robin over loopback hosts 127.0.0.2, 127.0.0.3, ... (`--hosts`,
default 50), each with a robots.txt, and keeps publishing: feed f publishes one article every
T = feeds / rate seconds (`--rate`, default 5 new articles/s over the whole site), the feeds
staggered evenly over T, so that articles appear at `--rate` per second all the time. A feed
lists its `--entries` newest items (default 10) with their dates, an ETag and a Last-Modified
(a conditional GET gets 304 until the feed's next article). Items published after the site
started link to their own article page: 10-30 KB of HTML (a generated, unique body of 2-30
paragraphs inside navigation, a cookie banner, share bars, "most read" and "related" boxes, a
newsletter form, a comment form, footer links, inline CSS and JS, JSON-LD). Items published
"before" (the feeds' history, so that the schedule sees a publishing rhythm at once) link to a
pool of `--entries` pages per host, so the first poll of every feed fetches few pages and links
the rest instead of starting with a backlog of feeds x entries pages.

The schedule. A feed is polled every half of its publishing interval (ingest/schedule.py:
success_interval), so every T/2 seconds (about 1000 s at the defaults), clamped to
[INGEST_MIN_INTERVAL, INGEST_MAX_INTERVAL]; the bench sets INGEST_MIN_INTERVAL=`--min-interval`
(default 60 s) so that the clamp does not slow a fast site down. The site thus gets about
2 x rate feed polls per second, half of them answered 304. So that the service starts in its
steady state rather than with every feed due at once, the bench spreads the feeds' first
`next_fetch_at` uniformly over the first T/2 seconds (an UPDATE before the service starts;
`--no-spread` leaves them all due, a cold-start burst).

The service. One `ingest run` (the real service, not --once) on a fresh `ingest_bench_*`
database after `ingest migrate` and `ingest feeds import`, with INGEST_WORKERS=`--workers`
(default 2, the project's default on 2 cores), INGEST_TICK_SECONDS=`--tick` (default 30, the
project's default), INGEST_HOST_DELAY=`--host-delay` (default 0.5, the project's default),
its /metrics on a free loopback port, JSON logs to a file. Every `--every` seconds (default 15)
for `--minutes` (default 60) the bench samples, for every process of the service (main, fork
server, each worker, resource tracker): RSS, and PSS and USS (psutil memory_full_info, from
/proc/PID/smaps_rollup). The RSS sum counts the pages the fork server shares with its workers
(copy-on-write: trafilatura, lxml, the language model) once per process; the PSS sum divides
each shared page among the processes sharing it, so it is what the service really costs; the
USS sum is the memory that would be freed by killing every process. Also sampled: articles in
the database, feed polls (`ingest_feeds_polled_total` from /metrics, by status), feeds overdue
(`ingest_feeds_overdue`).

How to read it. The curve (one row per sample), then: peak RSS and PSS sums (and when), the
peak of each role, RSS and PSS at 5 minutes against the end (growth in MB), and the slope in
MB/hour of a least-squares line through the second half of the samples (the first minutes
include start-up, the first polls and the pools filling up; a flat service has a slope near 0
there). Articles/s and polls/s say whether the service kept up with the site (overdue near 0).
At the end the service gets SIGTERM and must exit 0 within its grace period. Figures are
printed, never asserted. The exit status is 1 only when a step failed (set-up, the service
dying, not exiting 0 on SIGTERM), 2 for usage errors (also when `--logs` already holds a
soak.jsonl: another run's log would be truncated). The database is dropped and every process
stopped at the end, also on error, Ctrl-C or SIGTERM; the service's log stays in the printed
directory. All traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import psutil  # type: ignore[import-untyped]
import psycopg
from common import ADMIN_DSN_DEFAULT, Databases, free_port, host_address
from ingest_bench import machine
from poll_bench import FastSite, SiteApp, http_response, import_feeds, role_of
from service_bench import (
    Replica,
    base_env,
    http_get,
    kill_all,
    metric_summary,
    read_log,
    start_replica,
    stop_replicas,
)

MB = 1024 * 1024
ROBOTS = b"User-agent: *\nDisallow: /private/\n"

# --- the publishing site ----------------------------------------------------------------------

# fmt: off
_WORDS = [
    "council", "budget", "vote", "district", "school", "river", "bridge", "project", "county",
    "board", "plan", "members", "residents", "meeting", "public", "hearing", "water", "energy",
    "price", "market", "report", "season", "team", "coach", "game", "players", "fans",
    "stadium", "league", "record", "weather", "storm", "rain", "week", "month", "year",
    "police", "fire", "station", "hospital", "health", "care", "doctors", "nurses", "patients",
    "study", "research", "university", "students", "teachers", "policy", "government",
    "minister", "election", "campaign", "voters", "poll", "party", "leader", "state",
    "federal", "court", "judge", "ruling", "case", "law", "company", "workers", "jobs",
    "factory", "business", "owners", "shop", "street", "traffic", "road", "construction",
    "housing", "rent", "homes", "families", "children", "parents", "library", "museum",
    "festival", "music", "artists", "local", "officials", "spokesperson", "announced", "said",
    "reported", "confirmed", "expected", "planned", "approved", "rejected", "delayed",
    "opened", "closed", "increased", "decreased", "during", "after", "before", "because",
    "although", "while", "since", "until", "new", "old", "large", "small", "early", "late",
    "first", "second", "final", "annual", "quarterly", "regional", "national", "international",
    "community", "neighborhood", "downtown", "morning", "evening",
]
# fmt: on

_STYLE = "".join(
    f".c{i}{{margin:{i}px;padding:{i % 7}px;color:#{(i * 2654435761) % 0xFFFFFF:06x}}}"
    for i in range(40)
)
_SCRIPT = "".join(
    f"window.dataLayer=window.dataLayer||[];dataLayer.push({{event:'slot{i}',id:{i}}});"
    for i in range(20)
)


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(_WORDS, k=rng.randint(9, 22))).capitalize() + "."


def _links(rng: random.Random, prefix: str, n: int) -> str:
    return "".join(
        f'<li><a href="/{prefix}/{rng.randint(1, 99999)}.html">'
        f"{escape(' '.join(rng.choices(_WORDS, k=rng.randint(3, 7))).capitalize())}</a></li>"
        for _ in range(n)
    )


def article_page(seed: int, title: str, when: datetime) -> bytes:
    """A news page of 10-30 KB: a unique generated body inside a lot of template furniture."""
    rng = random.Random(seed)
    paragraphs = [
        " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))
        for _ in range(rng.randint(2, 30))
    ]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    iso = when.isoformat()
    author = f"Reporter {seed % 97}"
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": title,
            "datePublished": iso,
            "author": {"@type": "Person", "name": author},
        }
    )
    nav = _links(rng, "section", 25)
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Soak Gazette</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="{escape(title)}">
<meta property="article:published_time" content="{iso}">
<style>{_STYLE}</style>
<script type="application/ld+json">{ld}</script>
<script>{_SCRIPT}</script></head>
<body><div class="cookie-banner" role="dialog"><p>We use cookies to improve your experience.
<button>Accept all</button> <button>Settings</button></p></div>
<header class="site-header"><a class="logo" href="/">Soak Gazette</a>
<nav class="main-nav"><ul>{nav}</ul></nav></header>
<main><article class="post"><h1>{escape(title)}</h1>
<p class="byline">By <a rel="author" href="/author/{seed % 97}">{author}</a></p>
<time datetime="{iso}">{when:%B %d, %Y}</time>
<div class="share-bar">Share: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Email</a></div>
<div class="entry-content">
{body}
</div>
<div class="ad-slot"><span>Advertisement</span></div>
<section class="newsletter"><h3>Get the morning briefing</h3><form><input type="email"
placeholder="Your email"><button>Sign up</button></form></section>
<section class="related"><h2>Related stories</h2><ul>{_links(rng, "news", 6)}</ul></section>
<section id="comments"><h2>Leave a Reply</h2><form><textarea></textarea>
<button>Post comment</button></form></section>
</article>
<aside class="sidebar"><h2>Most read</h2><ol>{_links(rng, "news", 10)}</ol>
<h2>Popular Posts</h2><ul>{_links(rng, "news", 8)}</ul></aside></main>
<footer><ul>{_links(rng, "page", 20)}</ul><p>&copy; Soak Gazette. All rights reserved.</p>
</footer></body></html>
"""
    return html.encode("utf-8")


@dataclass(frozen=True)
class SoakSpec:
    feeds: int
    hosts: list[str]
    port: int
    entries: int
    rate: float
    """New articles per second over the whole site."""
    t0: float
    """Epoch seconds: the site's start; items with k >= 0 are published after it."""

    @property
    def period(self) -> float:
        """Seconds between two articles of one feed."""
        return self.feeds / self.rate

    def published(self, f: int, k: int) -> float:
        return self.t0 + (f / self.feeds) * self.period + k * self.period

    def newest(self, f: int, now: float) -> int:
        return math.floor((now - self.t0 - (f / self.feeds) * self.period) / self.period)


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)


class SoakApp:
    def __init__(self, spec: SoakSpec) -> None:
        self.spec = spec
        self.robots = http_response(200, [("Content-Type", "text/plain")], ROBOTS)
        self.missing = http_response(404, [("Content-Type", "text/plain")], b"not found\n")
        self.pages_served = 0
        self.page_bytes = 0

    def _host(self, f: int) -> str:
        return self.spec.hosts[f % len(self.spec.hosts)]

    def item_link(self, f: int, k: int) -> str:
        base = f"http://{self._host(f)}:{self.spec.port}"
        if k >= 0:
            return f"{base}/news/{f:05d}/{k}.html"
        return f"{base}/news/pool/{(-k) % self.spec.entries}.html"

    def feed(self, f: int, newest: int) -> bytes:
        base = f"http://{self._host(f)}:{self.spec.port}"
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
            f"<title>Soak feed {f}</title><link>{base}/</link>",
            f"<description>news-ingest soak benchmark feed {f}</description>",
        ]
        for k in range(newest, newest - self.spec.entries, -1):
            link = escape(self.item_link(f, k))
            guid = link if k >= 0 else f"soak-feed-{f}-item-{k}"
            perma = "true" if k >= 0 else "false"
            when = format_datetime(_when(self.spec.published(f, k)), usegmt=True)
            parts.append(
                f"<item><title>Story {f}-{k}: {escape(' '.join(_WORDS[(f + k) % 50 : 60]))}"
                f'</title><link>{link}</link><guid isPermaLink="{perma}">{guid}</guid>'
                f"<pubDate>{when}</pubDate><description>Summary of story {f}-{k}."
                "</description></item>"
            )
        parts.append("</channel></rss>\n")
        return "".join(parts).encode("utf-8")

    def _ok(self, headers: dict[bytes, bytes], extra: list[tuple[str, str]], body: bytes) -> bytes:
        if b"gzip" in headers.get(b"accept-encoding", b""):
            return http_response(200, [*extra, ("Content-Encoding", "gzip")], gzip.compress(body))
        return http_response(200, extra, body)

    def respond(self, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> tuple[int, bytes]:
        now = time.time()
        text = path.decode("latin-1")
        if text == "/robots.txt":
            return 200, self.robots
        parts = text.strip("/").split("/")
        try:
            if len(parts) == 2 and parts[0] == "feeds" and parts[1].endswith(".xml"):
                f = int(parts[1].removesuffix(".xml"))
                if not 0 <= f < self.spec.feeds:
                    return 404, self.missing
                newest = self.spec.newest(f, now)
                etag = f'"soak-{f}-{newest}"'
                modified = format_datetime(_when(self.spec.published(f, newest)), usegmt=True)
                validators = [("ETag", etag), ("Last-Modified", modified)]
                if headers.get(b"if-none-match") == etag.encode():
                    return 304, http_response(304, validators)
                content_type = [("Content-Type", "application/rss+xml; charset=UTF-8")]
                return 200, self._ok(headers, content_type + validators, self.feed(f, newest))
            if len(parts) == 3 and parts[0] == "news" and parts[2].endswith(".html"):
                n = int(parts[2].removesuffix(".html"))
                if parts[1] == "pool":
                    seed, title, when = 10**9 + n, f"Archive story {n}", _when(self.spec.t0)
                else:
                    f = int(parts[1])
                    if not (0 <= f < self.spec.feeds and 0 <= n <= self.spec.newest(f, now)):
                        return 404, self.missing
                    seed, title = f * 100_003 + n, f"Story {f}-{n}"
                    when = _when(self.spec.published(f, n))
                page = article_page(seed, title, when)
                self.pages_served += 1
                self.page_bytes += len(page)
                html_type = [("Content-Type", "text/html; charset=utf-8")]
                return 200, self._ok(headers, html_type, page)
        except ValueError:
            pass
        return 404, self.missing

    def control(self, message: Any) -> Any:
        if message == "pages":
            return {"pages": self.pages_served, "bytes": self.page_bytes}
        return ("error", f"unknown message {message!r}")


def make_soak_app(spec: SoakSpec) -> SiteApp:
    return SoakApp(spec)


# --- sampling the service ---------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    """Seconds since the service started."""
    rss: dict[str, float]
    """MB by role: main, forkserver, workers (sum), tracker; and sums over all processes."""
    pss: dict[str, float]
    uss: dict[str, float]
    workers: int
    worker_rss: list[float]
    articles: int
    feeds_polled_once: int
    polls: dict[str, float]
    overdue: float | None


def memory_by_role(root: int) -> tuple[dict[str, dict[str, float]], list[float]]:
    """{"rss"|"pss"|"uss": {role: MB, ..., "all": MB}} over the service's process tree, and the
    RSS of each worker."""
    out: dict[str, dict[str, float]] = {"rss": {}, "pss": {}, "uss": {}}
    workers: list[float] = []
    names: dict[int, str] = {}
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return out, workers
    for p in procs:
        try:
            role = role_of(p, names)
            names[p.pid] = role
            mem = p.memory_full_info()
        except psutil.Error:
            continue
        role = "workers" if role == "worker" else role
        for kind in ("rss", "pss", "uss"):
            value = float(getattr(mem, kind)) / MB
            out[kind][role] = out[kind].get(role, 0.0) + value
            out[kind]["all"] = out[kind].get("all", 0.0) + value
        if role == "workers":
            workers.append(round(float(mem.rss) / MB, 1))
    return out, workers


def take_sample(replica: Replica, dsn: str, started: float) -> Sample:
    mem, workers = memory_by_role(replica.pid)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ingest.articles),"
            " (SELECT count(*) FROM ingest.feeds WHERE last_fetched_at IS NOT NULL)"
        ).fetchone()
    assert row is not None
    status, text, _ = http_get(replica.port, "/metrics")
    metrics = metric_summary(text) if status == 200 else {"polled": {}, "overdue": None}
    return Sample(
        t=round(time.monotonic() - started, 1),
        rss={k: round(v, 1) for k, v in mem["rss"].items()},
        pss={k: round(v, 1) for k, v in mem["pss"].items()},
        uss={k: round(v, 1) for k, v in mem["uss"].items()},
        workers=len(workers),
        worker_rss=workers,
        articles=int(row[0]),
        feeds_polled_once=int(row[1]),
        polls=dict(metrics["polled"]),
        overdue=metrics["overdue"],
    )


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    if den == 0:
        return None
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / den


def row_line(s: Sample) -> str:
    polls = sum(s.polls.values())
    nm = s.polls.get("not_modified", 0.0)
    overdue = "-" if s.overdue is None else f"{s.overdue:.0f}"
    return (
        f"{s.t / 60:6.1f}  {s.rss.get('all', 0):7.0f}  {s.pss.get('all', 0):7.0f}"
        f"  {s.uss.get('all', 0):7.0f}  {s.rss.get('main', 0):6.0f}/{s.pss.get('main', 0):<4.0f}"
        f"  {s.rss.get('forkserver', 0):5.0f}/{s.pss.get('forkserver', 0):<4.0f}"
        f"  {s.rss.get('workers', 0):5.0f}/{s.pss.get('workers', 0):<4.0f} ({s.workers})"
        f"  {s.articles:8d}  {polls:7.0f} ({nm:.0f} 304)  {s.feeds_polled_once:6d}  {overdue:>7}"
    )


HEADER = (
    f"{'min':>6}  {'RSS sum':>7}  {'PSS sum':>7}  {'USS sum':>7}  {'main RSS/PSS':>11}"
    f"  {'fork RSS/PSS':>10}  {'workers RSS/PSS (n)':>19}  {'articles':>8}"
    f"  {'polls (304s)':>14}  {'feeds':>6}  {'overdue':>7}"
)


def summary_lines(samples: Sequence[Sample]) -> tuple[list[str], dict[str, Any]]:
    if not samples:
        return ["no samples"], {}
    peak_rss = max(samples, key=lambda s: s.rss.get("all", 0))
    peak_pss = max(samples, key=lambda s: s.pss.get("all", 0))
    roles = ("main", "forkserver", "workers", "tracker")
    peaks = {
        r: {
            "rss": max(s.rss.get(r, 0.0) for s in samples),
            "pss": max(s.pss.get(r, 0.0) for s in samples),
        }
        for r in roles
    }
    biggest_worker = max((max(s.worker_rss, default=0.0) for s in samples), default=0.0)
    at5 = min(samples, key=lambda s: abs(s.t - 300))
    end = samples[-1]
    half = [s for s in samples if s.t >= end.t / 2]
    slopes = {
        kind: slope_per_hour([(s.t, getattr(s, kind).get("all", 0.0)) for s in half])
        for kind in ("rss", "pss")
    }
    slopes["main_rss"] = slope_per_hour([(s.t, s.rss.get("main", 0.0)) for s in half])
    low = min(s.rss.get("all", 0.0) for s in half)
    high = max(s.rss.get("all", 0.0) for s in half)
    first = samples[0]
    polls = sum(end.polls.values()) - sum(first.polls.values())
    span = max(end.t - first.t, 1.0)
    arts = end.articles - first.articles

    def fmt_slope(v: float | None) -> str:
        return "-" if v is None else f"{v:+.1f} MB/h"

    lines = [
        f"peak RSS sum {peak_rss.rss['all']:.0f} MB at {peak_rss.t / 60:.1f} min"
        f" (main {peak_rss.rss.get('main', 0):.0f}, fork server"
        f" {peak_rss.rss.get('forkserver', 0):.0f}, {peak_rss.workers} workers"
        f" {peak_rss.rss.get('workers', 0):.0f}, tracker {peak_rss.rss.get('tracker', 0):.0f});"
        f" peak PSS sum {peak_pss.pss['all']:.0f} MB at {peak_pss.t / 60:.1f} min"
        f" (USS sum then {peak_pss.uss.get('all', 0):.0f} MB). Target: RSS <= 400 MB.",
        "peak by role, RSS/PSS MB: "
        + ", ".join(f"{r} {v['rss']:.0f}/{v['pss']:.0f}" for r, v in peaks.items())
        + f"; largest single worker RSS {biggest_worker:.0f} MB",
        f"RSS sum at {at5.t / 60:.1f} min {at5.rss.get('all', 0):.0f} MB, at the end"
        f" ({end.t / 60:.1f} min) {end.rss.get('all', 0):.0f} MB: growth"
        f" {end.rss.get('all', 0) - at5.rss.get('all', 0):+.0f} MB; PSS sum"
        f" {at5.pss.get('all', 0):.0f} -> {end.pss.get('all', 0):.0f} MB"
        f" ({end.pss.get('all', 0) - at5.pss.get('all', 0):+.0f} MB); main RSS"
        f" {at5.rss.get('main', 0):.0f} -> {end.rss.get('main', 0):.0f} MB",
        f"slope over the second half ({len(half)} samples from {half[0].t / 60:.1f} min):"
        f" RSS sum {fmt_slope(slopes['rss'])}, PSS sum {fmt_slope(slopes['pss'])}, main RSS"
        f" {fmt_slope(slopes['main_rss'])}; RSS sum over that half {low:.0f}-{high:.0f} MB"
        " (on a short run one worker restart or one burst of pages dominates the slope)",
        f"work: {arts} articles stored ({arts / span:.2f}/s), {polls:.0f} feed polls"
        f" ({polls / span:.1f}/s; by status at the end {end.polls}), feeds polled at least"
        f" once {end.feeds_polled_once}, overdue at the end {end.overdue}",
    ]
    figures = {
        "peak_rss_mb": peak_rss.rss["all"],
        "peak_rss_at_min": round(peak_rss.t / 60, 2),
        "peak_pss_mb": peak_pss.pss["all"],
        "peak_by_role": peaks,
        "largest_worker_rss_mb": biggest_worker,
        "rss_at_5min_mb": at5.rss.get("all"),
        "rss_at_end_mb": end.rss.get("all"),
        "pss_at_5min_mb": at5.pss.get("all"),
        "pss_at_end_mb": end.pss.get("all"),
        "slope_mb_per_hour_second_half": slopes,
        "articles_per_s": round(arts / span, 3),
        "polls_per_s": round(polls / span, 3),
    }
    return lines, figures


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="soak_bench.py",
        description="Memory of the long-lived service over a soak with continuous publishing.",
    )
    p.add_argument("--minutes", type=float, default=60, help="soak length (default 60)")
    p.add_argument("--every", type=float, default=15, help="seconds between samples (default 15)")
    p.add_argument("--feeds", type=int, default=10_000, help="RSS feeds (default 10000)")
    p.add_argument("--hosts", type=int, default=50, help="loopback hosts (default 50)")
    p.add_argument("--entries", type=int, default=10, help="items per feed (default 10)")
    p.add_argument(
        "--rate", type=float, default=5.0, help="new articles per second, site-wide (default 5)"
    )
    p.add_argument("--workers", type=int, default=2, help="INGEST_WORKERS (default 2)")
    p.add_argument("--tick", type=float, default=30, help="INGEST_TICK_SECONDS (default 30)")
    p.add_argument("--host-delay", type=float, default=0.5, help="INGEST_HOST_DELAY (default 0.5)")
    p.add_argument(
        "--min-interval", type=float, default=60, help="INGEST_MIN_INTERVAL (default 60)"
    )
    p.add_argument(
        "--spread",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="spread the first polls over the first poll interval (default on)",
    )
    p.add_argument("--admin-url", default=ADMIN_DSN_DEFAULT, help="PostgreSQL admin DSN")
    p.add_argument("--logs", metavar="DIR", help="service log directory (default: new in /tmp)")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    for name in ("feeds", "hosts", "entries", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    for name in ("minutes", "every", "rate", "tick", "min_interval"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if not 1 <= args.hosts <= 250:
        p.error("--hosts must be between 1 and 250")
    if args.host_delay < 0:
        p.error("--host-delay must be >= 0")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    info = machine()
    try:
        with psycopg.connect(args.admin_url, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = str(row[0]) if row else "?"
    except psycopg.Error as e:
        print(f"soak_bench: PostgreSQL not reachable at {args.admin_url!r}: {e}", file=sys.stderr)
        return 1
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="soak_bench_"))
    logs.mkdir(parents=True, exist_ok=True)
    if (logs / "soak.jsonl").exists():
        # Another run (maybe still going) writes there: opening it would truncate its log.
        taken = logs / "soak.jsonl"
        print(f"soak_bench: {taken} exists; give --logs a new directory", file=sys.stderr)
        return 2
    command = shlex.join(sys.orig_argv)
    period = args.feeds / args.rate
    first_polls = f"spread over {period / 2:.0f} s" if args.spread else "all due at once"
    print(f"command: {command}")
    print(
        f"machine: {info['cpu_count']} cpus ({info['cpus_usable']} usable, {info['cpu_model']}),"
        f" load {info['load_average']}, {info['memory_gb']} GB; Python {info['python']};"
        f" PostgreSQL {info['postgresql']}; project at {info['project_revision']}; logs in {logs}"
    )
    print(
        f"site: {args.feeds} feeds x {args.entries} items on {args.hosts} hosts, {args.rate:g} new"
        f" articles/s (each feed every {period:.0f} s, so polled every ~{period / 2:.0f} s);"
        f" service: INGEST_WORKERS={args.workers} INGEST_TICK_SECONDS={args.tick:g}"
        f" INGEST_HOST_DELAY={args.host_delay:g} INGEST_MIN_INTERVAL={args.min_interval:g};"
        f" first polls {first_polls};"
        f" {args.minutes:g} min, a sample every {args.every:g} s"
    )
    hosts = [host_address(h) for h in range(args.hosts)]
    port = free_port(hosts[0])
    failures: list[str] = []
    samples: list[Sample] = []
    replica: Replica | None = None
    site_info: dict[str, Any] = {}
    total_started = time.monotonic()
    with Databases(args.admin_url) as dbs:
        spec = SoakSpec(args.feeds, hosts, port, args.entries, args.rate, time.time())
        with FastSite(make_soak_app, spec, hosts, 1, port) as site:
            try:
                dsn = dbs.create("soak")
                urls = [
                    f"http://{hosts[f % args.hosts]}:{port}/feeds/{f:05d}.xml"
                    for f in range(args.feeds)
                ]
                seconds = import_feeds(dsn, base_env(dsn) | {"INGEST_HTTP_PORT": "0"}, urls)
                if args.spread:
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute(
                            "UPDATE ingest.feeds SET next_fetch_at ="
                            " now() + random() * make_interval(secs => %s)",
                            (period / 2,),
                        )
                print(f"set-up: migrate + `feeds import` in {seconds:.1f} s")
                extra = {
                    "INGEST_WORKERS": str(args.workers),
                    "INGEST_TICK_SECONDS": f"{args.tick:g}",
                    "INGEST_HOST_DELAY": f"{args.host_delay:g}",
                    "INGEST_MIN_INTERVAL": f"{args.min_interval:g}",
                }
                replica = start_replica(dsn, "soak", logs, extra)
                started = replica.started
                site_cpu0 = site.cpu_seconds()
                print(f"service: pid {replica.pid}, /metrics on 127.0.0.1:{replica.port}\n")
                print(HEADER, flush=True)
                end = started + 60 * args.minutes
                next_at = started + min(args.every, 5.0)
                while True:
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    if replica.proc.poll() is not None:
                        raise RuntimeError(f"the service exited {replica.proc.returncode}")
                    sample = take_sample(replica, dsn, started)
                    samples.append(sample)
                    print(row_line(sample), flush=True)
                    if time.monotonic() >= end - 0.5:
                        break
                    next_at = min(next_at + args.every, end)
                site_info = {
                    "cpu_seconds": round(site.cpu_seconds() - site_cpu0, 1),
                    **site.ask("pages")[0],
                }
                stop_replicas([replica])
                if replica.exit_code != 0:
                    failures.append(f"the service exited {replica.exit_code} on SIGTERM")
            except Exception as e:
                failures.append(f"{type(e).__name__}: {e}")
                print(f"soak_bench: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            finally:
                if replica is not None:
                    kill_all([replica])  # its process group, if anything is left of it
    print()
    lines, figures = summary_lines(samples)
    print("\n".join(lines))
    log_figures: dict[str, Any] = {}
    if replica is not None:
        summary = read_log(replica.log_path)
        log_figures = {
            "feeds_processed": summary.feeds,
            "statuses": dict(summary.statuses),
            "new": summary.new,
            "problems": summary.problems[:10],
            "skipped_ticks": summary.skipped_ticks,
        }
        exit_s = f"{replica.exit_seconds:.1f} s" if replica.exit_seconds is not None else "-"
        print(
            f"service log: {summary.feeds} `feed_processed` lines {dict(summary.statuses)},"
            f" {summary.new} new articles; warnings/errors {len(summary.problems)}"
            f"; SIGTERM -> exit code {replica.exit_code} after {exit_s}"
            f"; left behind {replica.left_behind or 'nothing'}"
        )
        for line in summary.problems[:5]:
            print(f"    {line}")
    if site_info:
        print(
            f"site: {site_info.get('pages')} article pages served"
            f" ({site_info.get('bytes', 0) / max(site_info.get('pages') or 1, 1) / 1024:.1f} KB"
            f" average before gzip); site CPU {site_info.get('cpu_seconds')} s"
        )
    print(f"total bench time {time.monotonic() - total_started:.0f} s; logs in {logs}")
    for f in failures:
        print(f"failed: {f}", file=sys.stderr)
    if args.json:
        payload = {
            "command": command,
            "machine": info,
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "samples": [vars(s) for s in samples],
            "summary": figures,
            "log": log_figures,
            "site": site_info,
            "exit_code": replica.exit_code if replica else None,
            "failures": failures,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
