"""Ingestion throughput benchmark: the project against a naive loop and the extraction ceiling.

    .venv/bin/python bench/ingest_bench.py [--feeds N] [--repeat K] [--pages N] [--json FILE]

What it does. The 181 real news pages of the article-extraction benchmark (AEB, found at
`<repo>/../shared/aeb`, or `--aeb DIR`) are served from memory by a local site running in a
separate process: several loopback hosts (127.0.0.2, 127.0.0.3, ...), each with a robots.txt and
some RSS feeds (default 20 feeds of about 9 entries; every page is in exactly one feed). Pages
are sent gzip-compressed when the client accepts it. Then, each repeated K times (default 3) and
interleaved so that machine noise hits all of them alike, it measures:

  project  `ingest run --once` as a subprocess on a fresh database (CREATE DATABASE, `ingest
           migrate`, `ingest feeds add ...` are not timed), with INGEST_WORKERS=2. Articles/s
           is articles stored / wall time of that process, start-up (imports, worker pool,
           migrations check) and shutdown included. Peak RSS is the largest sum of the RSS of the
           process and all its children (worker pool), sampled every 50 ms.
  naive    in this process, one feed after the other: httpx.get the feed, feedparser, then for
           each entry httpx.get the page, trafilatura.extract (comments excluded, metadata on)
           and one autocommit INSERT into a plain table. No robots.txt, no parallelism, no
           normalization or dedup. Peak RSS is this process's own.
  bare     trafilatura.bare_extraction of the same pages, already decompressed in memory, in a
           2-process pool (pool start-up not timed): pages/s, the CPU ceiling for extraction
           alone on 2 cores. The project also fetches (robots.txt, gzip), parses feeds, reads
           JSON-LD/meta tags, detects the language, normalizes and stores, all on the same 2
           cores, and pays a cold start of a few seconds per run; the ratio to this row says how
           much of the ceiling it reaches.

How to read it. Each row shows the median rate over the K runs with min and max, the ratio
to the naive loop and to the bare ceiling, the median peak RSS, the CPU time per item and the
articles stored in each run. Below the table, the project's wall time is split into start-up,
feed processing and shutdown (from the `ms` field of its `feed_processed` JSON log lines) and its
CPU into the main process and the worker processes. Summed RSS counts pages shared between the
forkserver and its workers more than once. Note that `httpx.get` builds a new client (and TLS
context) per call, which is part of the naive loop's cost. The figures are printed, never
asserted: on a noisy 2-core machine, compare rows of one run rather than runs of different days.
The exit status is non-zero only when the project stored fewer articles than there are pages, or
a step failed. Every `ingest_bench_*` database the run creates is dropped at the end, also on
error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import multiprocessing
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import psutil
import psycopg
import trafilatura
from common import (
    ADMIN_DSN_DEFAULT,
    ROOT,
    Databases,
    ProcessSampler,
    SiteInfo,
    corpus_ids,
    find_aeb,
    local_site,
    plan_site,
    read_page,
    summarize,
    with_copies,
)

MB = 1024 * 1024


@dataclass
class Run:
    seconds: float
    items: int
    """Articles stored (project, naive) or pages extracted (bare)."""
    peak_rss: int
    cpu_seconds: float
    """User+system CPU time of the measured processes (see `ProcessSampler`)."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Row:
    name: str
    unit: str
    expected: int
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    def rates(self) -> list[float]:
        return [r.rate for r in self.runs]


# --- (P) the project --------------------------------------------------------------------------


def ingest_command() -> list[str]:
    script = Path(sys.executable).parent / "ingest"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ingest.cli"]


HOST_DELAY = os.environ.get("INGEST_HOST_DELAY", "0")
"""The pause between two requests to one host (politeness, default 0.5 s in the service) would
make the run wait on the site, not on the pipeline; the naive loop has none. 0 unless the
environment sets it."""


def ingest_env(dsn: str, workers: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
        "INGEST_LOG_FORMAT": "json",
        "INGEST_WORKERS": str(workers),
        "INGEST_HOST_DELAY": HOST_DELAY,
    }


def ingest(dsn: str, workers: int, *args: str, timeout: float = 120) -> str:
    """Run one `ingest` command to completion; its stdout, or an error with its stderr."""
    done = subprocess.run(
        [*ingest_command(), *args],
        env=ingest_env(dsn, workers),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`ingest {' '.join(args[:2])}` exited {done.returncode}:\n{done.stderr.strip()}"
        )
    return done.stdout


def log_breakdown(stderr: str, started: float, ended: float) -> dict[str, Any]:
    """What the JSON log lines say about a `run --once` that ran from `started` to `ended` (epoch
    seconds): per-feed `ms`, fallbacks, errors, and the window in which feeds were processed
    (from the first feed's start, its `feed_processed` time minus its `ms`, to the last feed's
    end); the rest of the wall time is process start-up and shutdown."""
    feed_ms: list[int] = []
    window: list[float] = []
    lag: dict[str, Any] = {}
    events: dict[str, int] = {}
    statuses: dict[str, int] = {}
    problems: list[str] = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                problems.append(line.strip())
            continue
        if not isinstance(record, dict):
            continue
        event = str(record.get("event"))
        events[event] = events.get(event, 0) + 1
        if event == "event_loop_lag":
            lag = {k: record.get(k) for k in ("samples", "p50_ms", "p99_ms", "max_ms")}
        if event == "feed_processed":
            ms = int(record.get("ms", 0))
            feed_ms.append(ms)
            with contextlib.suppress(KeyError, TypeError, ValueError):
                at = datetime.fromisoformat(str(record["timestamp"])).timestamp()
                window += [at - ms / 1000, at]
            status = str(record.get("status"))
            statuses[status] = statuses.get(status, 0) + 1
        if record.get("level") in ("error", "critical", "exception") or event == "feed_bug":
            problems.append(line[:2000])
    first, last = (min(window), max(window)) if window else (started, ended)
    return {
        "startup_s": round(first - started, 3),
        "feeds_window_s": round(last - first, 3),
        "shutdown_s": round(ended - last, 3),
        "feeds_logged": len(feed_ms),
        "feed_ms_median": sorted(feed_ms)[len(feed_ms) // 2] if feed_ms else None,
        "feed_ms_max": max(feed_ms) if feed_ms else None,
        "feed_ms_sum": sum(feed_ms),
        "statuses": statuses,
        "events": events,
        "problems": problems[:20],
        "event_loop_lag": lag,
    }


def profiled(cmd: list[str], profile: Path | None) -> list[str]:
    """`cmd` under `py-spy record` (all processes, collapsed stacks into `profile`), or as is."""
    if profile is None:
        return cmd
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    return [
        spy, "record", "--subprocesses", "--idle", "--rate", "250", "--format", "raw",
        "--output", str(profile), "--", *cmd,
    ]  # fmt: skip


def run_project(
    dbs: Databases,
    site: SiteInfo,
    workers: int,
    keep_logs: Path | None,
    profile: Path | None = None,
) -> Run:
    dsn = dbs.create("p")
    try:
        ingest(dsn, workers, "migrate")
        ingest(dsn, workers, "feeds", "add", *site.feed_urls)
        cmd = profiled([*ingest_command(), "run", "--once"], profile)
        started_wall = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=ingest_env(dsn, workers),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        dbname = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
        with (
            ProcessSampler([proc.pid], tree=True) as sampler,
            ProcessSampler([], backends_of=dbname) as database,
            ProcessSampler([site.pid], tree=False) as server,
        ):
            try:
                out, err = proc.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                raise RuntimeError("`ingest run --once` did not finish within 600 s") from None
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        seconds = time.perf_counter() - started
        ended_wall = time.time()
        if keep_logs is not None:
            keep_logs.write_text(err)
        if proc.returncode != 0:
            raise RuntimeError(f"`ingest run --once` exited {proc.returncode}:\n{err.strip()}")
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE text_source = 'feed'),"
                " count(*) FILTER (WHERE duplicate_of IS NOT NULL) FROM news.articles"
            ).fetchone()
            assert row is not None
            stored, from_feed, duplicates = (int(v) for v in row)
            errors = conn.execute(
                "SELECT extraction_error, count(*) FROM news.articles"
                " WHERE extraction_error IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
            ).fetchall()
        detail = {
            "summary": out.strip(),
            "stored_from_feed_text": from_feed,
            "duplicates": duplicates,
            "extraction_errors": [f"{n} x {e}" for e, n in errors],
            "rss_samples": sampler.samples,
            "cpu_main_s": round(sampler.cpu_seconds_roots, 2),
            "cpu_workers_s": round(sampler.cpu_seconds - sampler.cpu_seconds_roots, 2),
            "cpu_postgres_s": round(database.cpu_seconds, 2),
            "cpu_site_s": round(server.cpu_seconds, 2),
            **log_breakdown(err, started_wall, ended_wall),
        }
        return Run(seconds, stored, sampler.peak_rss, sampler.cpu_seconds, detail)
    finally:
        dbs.drop(dsn)


# --- (N) the naive loop -----------------------------------------------------------------------

NAIVE_TABLE = """
CREATE TABLE articles (
    id bigserial PRIMARY KEY,
    url text NOT NULL UNIQUE,
    title text,
    published text,
    text text NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now()
)
"""


def run_naive(dbs: Databases, site: SiteInfo) -> Run:
    dsn = dbs.create("n")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(NAIVE_TABLE)
            no_text = 0
            with (
                ProcessSampler([os.getpid()], tree=False) as sampler,
                ProcessSampler(
                    [], backends_of=str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
                ) as database,
                ProcessSampler([site.pid], tree=False) as server,
            ):
                started = time.perf_counter()
                for feed_url in site.feed_urls:
                    # trust_env=False: never through a proxy, only ever to loopback.
                    response = httpx.get(feed_url, timeout=30, trust_env=False)
                    response.raise_for_status()
                    parsed = feedparser.parse(io.BytesIO(response.content))
                    for entry in parsed.entries:
                        page = httpx.get(entry.link, timeout=30, trust_env=False)
                        page.raise_for_status()
                        text = trafilatura.extract(
                            page.content,
                            url=entry.link,
                            include_comments=False,
                            with_metadata=True,
                        )
                        if not text:
                            no_text += 1
                            continue
                        conn.execute(
                            "INSERT INTO articles (url, title, published, text)"
                            " VALUES (%s, %s, %s, %s) ON CONFLICT (url) DO NOTHING",
                            (entry.link, entry.get("title"), entry.get("published"), text),
                        )
                seconds = time.perf_counter() - started
            row = conn.execute("SELECT count(*) FROM articles").fetchone()
            assert row is not None
            stored = int(row[0])
        detail = {
            "no_text": no_text,
            "rss_samples": sampler.samples,
            "cpu_postgres_s": round(database.cpu_seconds, 2),
            "cpu_site_s": round(server.cpu_seconds, 2),
        }
        return Run(seconds, stored, sampler.peak_rss, sampler.cpu_seconds, detail)
    finally:
        dbs.drop(dsn)


# --- (B) the bare extraction ceiling ----------------------------------------------------------

_PAGES: dict[str, bytes] = {}


def _bare_init(aeb: str, ids: Sequence[str]) -> None:
    for page_id in ids:
        _PAGES[page_id] = read_page(Path(aeb), page_id)
    # The first extraction in a process pays for lazy imports and caches: not part of the timing.
    _bare_extract(ids[0])


def _bare_ready() -> int:
    time.sleep(0.2)
    return os.getpid()


def _bare_extract(page_id: str) -> int:
    doc = trafilatura.bare_extraction(_PAGES[page_id], with_metadata=True, include_comments=False)
    if doc is None or isinstance(doc, dict):
        return 0
    return len(doc.text or "")


def run_bare(aeb: Path, ids: Sequence[str], workers: int) -> Run:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_bare_init, initargs=(str(aeb), list(ids))
    ) as pool:
        # Wait until every worker has started and loaded the pages: not part of the timing.
        seen: set[int] = set()
        deadline = time.monotonic() + 120
        while len(seen) < workers and time.monotonic() < deadline:
            seen.update(f.result() for f in [pool.submit(_bare_ready) for _ in range(workers)])
        with ProcessSampler([os.getpid(), *seen], tree=False) as sampler:
            started = time.perf_counter()
            lengths = list(pool.map(_bare_extract, ids, chunksize=1))
            seconds = time.perf_counter() - started
    extracted = sum(1 for n in lengths if n > 0)
    return Run(seconds, len(ids), sampler.peak_rss, sampler.cpu_seconds, {"with_text": extracted})


# --- report -----------------------------------------------------------------------------------


def project_revision() -> str:
    """The commit measured, with `+dirty` when tracked files outside bench/ and tests/ differ
    from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)bench",
                ":(exclude)tests",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": model,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "trafilatura": trafilatura.__version__,
        "httpx": httpx.__version__,
        "postgresql": None,
        "project_revision": project_revision(),
    }


def fmt_rate(values: Sequence[float]) -> str:
    s = summarize(values)
    return f"{s['median']:7.1f}  ({s['min']:.1f}-{s['max']:.1f})"


def cpu_split(by_name: dict[str, Row]) -> list[str]:
    """CPU milliseconds per article of every process that works for it: on 2 cores the sum, not
    the wall time of one process, is what competes with extraction."""
    lines = []
    for name in ("project", "naive"):
        row = by_name.get(name)
        if not row or not row.runs:
            continue

        def per_item(key: str, row: Row = row) -> float:
            return summarize(
                [1000 * float(r.detail.get(key) or 0) / max(r.items, 1) for r in row.runs]
            )["median"]

        own = summarize([1000 * r.cpu_seconds / max(r.items, 1) for r in row.runs])["median"]
        pg, site = per_item("cpu_postgres_s"), per_item("cpu_site_s")
        parts = (
            f"main {per_item('cpu_main_s'):.1f} + workers {per_item('cpu_workers_s'):.1f}"
            if name == "project"
            else f"loop {own:.1f}"
        )
        lines.append(
            f"{name}: CPU ms per article: {parts} + PostgreSQL {pg:.1f} + local site {site:.1f}"
            f" = {own + pg + site:.1f}"
        )
    bare_row = by_name.get("bare")
    if bare_row and bare_row.runs:
        cpu = summarize([1000 * r.cpu_seconds / max(r.items, 1) for r in bare_row.runs])["median"]
        lines.append(f"bare: CPU ms per page: {cpu:.1f} (pool workers and the feeding process)")
    return lines


def targets(by_name: dict[str, Row]) -> list[str]:
    """The cold-ingest targets: project >= 0.9 x bare and >= 2 x naive, in the same run; for the
    whole `run --once` process and for its feeds window (a running service's steady state)."""
    project, naive, bare = (by_name.get(n) for n in ("project", "naive", "bare"))
    if not project or not project.runs:
        return []
    whole = summarize(project.rates())["median"]
    window = [
        r.items / r.detail["feeds_window_s"] for r in project.runs if r.detail.get("feeds_window_s")
    ]
    steady = summarize(window)["median"] if window else float("nan")
    lines = []
    for base, label, goal in ((bare, "bare", 0.9), (naive, "naive", 2.0)):
        if base and base.runs:
            b = summarize(base.rates())["median"]
            lines.append(
                f"target project >= {goal:g} x {label}: whole process {whole / b:.2f}, feeds window"
                f" {steady / b:.2f}"
            )
    return lines


def report(rows: list[Row]) -> str:
    by_name = {r.name: r for r in rows}
    medians = {r.name: summarize(r.rates())["median"] if r.runs else None for r in rows}
    naive, bare = medians.get("naive"), medians.get("bare")
    lines = [
        "",
        f"{'name':<8}  {'median/s  (min-max)':<24}  {'vs naive':>8}  {'vs bare':>8}"
        f"  {'peak RSS MB':>11}  {'CPU ms/item':>11}  stored (expected)",
    ]
    for row in rows:
        if not row.runs:
            lines.append(f"{row.name:<8}  failed: {row.error}")
            continue
        med = medians[row.name]
        assert med is not None
        vs_naive = f"{med / naive:8.2f}" if naive else f"{'-':>8}"
        vs_bare = f"{med / bare:8.2f}" if bare else f"{'-':>8}"
        peak = summarize([r.peak_rss / MB for r in row.runs])["median"]
        cpu = summarize([1000 * r.cpu_seconds / max(r.items, 1) for r in row.runs])["median"]
        stored = "/".join(str(r.items) for r in row.runs)
        unit = "pages" if row.unit == "pages" else "articles"
        lines.append(
            f"{row.name:<8}  {fmt_rate(row.rates()):<24}  {vs_naive}  {vs_bare}"
            f"  {peak:11.0f}  {cpu:11.0f}  {stored} ({row.expected} {unit})"
        )
        if row.error:
            lines.append(f"{'':<8}  (a later run failed: {row.error.splitlines()[0]})")
    lines.append("")
    lines.append(
        "rates: project and naive in articles stored per second of wall time; bare in pages "
        "extracted per second. CPU ms/item: user+system CPU of the measured processes (project:"
        " the `ingest` process tree; naive: this process; bare: the pool workers and this"
        " process) per article or page; PostgreSQL and the local site are counted below."
    )
    project = by_name.get("project")
    if project and project.runs:
        seconds = summarize([r.seconds for r in project.runs])["median"]
        last = project.runs[-1].detail
        feed_ms = [r.detail.get("feed_ms_max") or 0 for r in project.runs]

        def median_of(key: str) -> float:
            return summarize([float(r.detail.get(key) or 0) for r in project.runs])["median"]

        lines.append(
            f"project: median wall {seconds:.2f} s per `run --once` = start-up "
            f"{median_of('startup_s'):.2f} s + feeds {median_of('feeds_window_s'):.2f} s"
            f" + shutdown {median_of('shutdown_s'):.2f} s (from the JSON logs: first feed start"
            " to last "
            f"`feed_processed`); slowest feed {summarize(feed_ms)['median'] / 1000:.2f} s"
        )
        window_rates = [
            r.items / r.detail["feeds_window_s"]
            for r in project.runs
            if r.detail.get("feeds_window_s")
        ]
        if window_rates:
            lines.append(
                f"project: {summarize(window_rates)['median']:.1f} articles/s over the feeds"
                " window alone (start-up and shutdown excluded)"
            )
        lines.append(
            f"project: CPU median {median_of('cpu_main_s'):.1f} s in the main process (event loop:"
            f" fetching, assembling, storing) + {median_of('cpu_workers_s'):.1f} s in its children"
            " (forkserver and extraction workers, start-up included)"
        )
        lag = [r.detail.get("event_loop_lag") or {} for r in project.runs]
        if any(lag):
            lines.append(
                "project: event-loop lag (a 50 ms timer, JSON log `event_loop_lag`): p50 "
                + "/".join(str(x.get("p50_ms")) for x in lag)
                + " ms, p99 "
                + "/".join(str(x.get("p99_ms")) for x in lag)
                + " ms, max "
                + "/".join(str(x.get("max_ms")) for x in lag)
                + " ms (each run)"
            )
        lines.append(f"project: last run: {last.get('summary', '')}")
        if last.get("extraction_errors"):
            lines.append(f"project: stored from feed text: {last['extraction_errors']}")
        if last.get("problems"):
            lines.append("project: error lines in the log:")
            lines.extend(f"    {p}" for p in last["problems"][:5])
    lines.extend(cpu_split(by_name))
    lines.extend(targets(by_name))
    naive_row = by_name.get("naive")
    if naive_row and naive_row.runs:
        seconds = summarize([r.seconds for r in naive_row.runs])["median"]
        lines.append(
            f"naive: median wall {seconds:.2f} s; pages without text (not stored): "
            f"{naive_row.runs[-1].detail.get('no_text')}"
        )
    bare_row = by_name.get("bare")
    if bare_row and bare_row.runs:
        seconds = summarize([r.seconds for r in bare_row.runs])["median"]
        lines.append(
            f"bare: median wall {seconds:.2f} s for {bare_row.expected} pages; pages with text: "
            f"{bare_row.runs[-1].detail.get('with_text')}"
        )
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ingest_bench.py",
        description="Ingestion throughput: the project vs a naive loop vs bare extraction.",
    )
    p.add_argument("--feeds", type=int, default=20, metavar="N", help="RSS feeds (default 20)")
    p.add_argument("--repeat", type=int, default=3, metavar="K", help="runs of each (default 3)")
    p.add_argument(
        "--pages", type=int, default=None, metavar="N", help="use the first N pages (default all)"
    )
    p.add_argument("--hosts", type=int, default=8, metavar="N", help="loopback hosts (default 8)")
    p.add_argument(
        "--copies",
        type=int,
        default=1,
        metavar="K",
        help="serve (and extract) every page K times under different URLs (default 1)",
    )
    p.add_argument("--workers", type=int, default=2, help="INGEST_WORKERS and bare pool size")
    p.add_argument("--aeb", metavar="DIR", help="AEB corpus (default <repo>/../shared/aeb)")
    p.add_argument("--admin-url", default=ADMIN_DSN_DEFAULT, help="PostgreSQL admin DSN")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    p.add_argument(
        "--only",
        default="project,naive,bare",
        help="comma-separated subset of project,naive,bare (default all three)",
    )
    p.add_argument(
        "--keep-logs", metavar="DIR", help="write each project run's JSON log lines into DIR"
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="run the last project run under py-spy (all processes); collapsed stacks into FILE"
        " (its rate and RSS then include the profiler's cost)",
    )
    args = p.parse_args(argv)
    for name in ("feeds", "repeat", "hosts", "workers", "copies"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.pages is not None and args.pages < 1:
        p.error("--pages must be at least 1")
    if not 1 <= args.hosts <= 250:
        p.error("--hosts must be between 1 and 250")
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    if not wanted or set(wanted) - {"project", "naive", "bare"}:
        p.error("--only takes a comma-separated subset of project,naive,bare")
    args.only = wanted
    return args


def server_version(admin_dsn: str) -> str:
    with psycopg.connect(admin_dsn, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the databases are dropped and the site stopped.
    signal.signal(signal.SIGTERM, _terminate)
    aeb = find_aeb(args.aeb)
    ids = with_copies(corpus_ids(aeb, args.pages), args.copies)
    plan = plan_site(ids, args.feeds, args.hosts)
    command = shlex.join(sys.orig_argv)
    info = machine()
    try:
        info["postgresql"] = server_version(args.admin_url)
    except psycopg.Error as e:
        print(f"ingest_bench: PostgreSQL not reachable at {args.admin_url!r}: {e}", file=sys.stderr)
        return 1
    if shutil.which(ingest_command()[0]) is None:
        print(f"ingest_bench: cannot find {ingest_command()[0]}", file=sys.stderr)
        return 1
    hosts = len({f.host for f in plan})
    print(f"command: {command}")
    print(
        f"machine: {info['cpu_count']} cpus ({info['cpus_usable']} usable, {info['cpu_model']}), "
        f"load {info['load_average']}, {info['memory_gb']} GB; Python {info['python']} "
        f"({info['platform']}); PostgreSQL {info['postgresql']}; "
        f"trafilatura {info['trafilatura']}; project at {info['project_revision']}"
    )
    print(
        f"corpus: {len(ids)} pages from {aeb}; site: {len(plan)} feeds on {hosts} loopback "
        f"hosts; {args.repeat} run(s) each, interleaved; workers {args.workers}; "
        f"INGEST_HOST_DELAY={HOST_DELAY}"
    )
    rows = [
        Row(name, "pages" if name == "bare" else "articles", len(ids))
        for name in ("project", "naive", "bare")
        if name in args.only
    ]
    failed = False
    logs_dir = Path(args.keep_logs) if args.keep_logs else None
    if logs_dir is not None:
        logs_dir.mkdir(parents=True, exist_ok=True)
    total_started = time.perf_counter()
    with Databases(args.admin_url) as dbs, local_site(aeb, plan, args.hosts) as site:
        for k in range(args.repeat):
            for row in rows:
                if row.error:
                    continue
                t0 = time.perf_counter()
                try:
                    if row.name == "project":
                        log = logs_dir / f"project-{k + 1}.jsonl" if logs_dir else None
                        last = k == args.repeat - 1
                        spy = Path(args.profile) if args.profile and last else None
                        run = run_project(dbs, site, args.workers, log, spy)
                    elif row.name == "naive":
                        run = run_naive(dbs, site)
                    else:
                        run = run_bare(aeb, ids, args.workers)
                except Exception as e:
                    row.error = f"{type(e).__name__}: {e}"
                    failed = True
                    print(f"[{k + 1}/{args.repeat}] {row.name}: FAILED", file=sys.stderr)
                    traceback.print_exc()
                    continue
                row.runs.append(run)
                extra = ""
                if row.name == "project" and run.items < row.expected:
                    extra = f"  << fewer than expected ({row.expected})"
                print(
                    f"[{k + 1}/{args.repeat}] {row.name:<7} {run.rate:7.1f}/s  "
                    f"{run.items:>4} in {run.seconds:6.2f} s  peak RSS "
                    f"{run.peak_rss / MB:5.0f} MB  CPU {run.cpu_seconds:5.1f} s"
                    f"  ({time.perf_counter() - t0:.1f} s with set-up)"
                    f"{extra}",
                    flush=True,
                )
    print(report(rows))
    print(f"total bench time {time.perf_counter() - total_started:.0f} s")

    project = next((r for r in rows if r.name == "project"), None)
    short = project is not None and any(r.items < project.expected for r in project.runs)
    if short:
        print("ingest_bench: the project stored fewer articles than expected", file=sys.stderr)

    if args.json:
        payload = {
            "command": command,
            "machine": info,
            "config": {
                "pages": len(ids),
                "feeds": len(plan),
                "hosts": hosts,
                "repeat": args.repeat,
                "workers": args.workers,
                "aeb": str(aeb),
            },
            "results": {
                row.name: {
                    "unit": f"{row.unit}/s",
                    "expected": row.expected,
                    "error": row.error,
                    **(
                        {
                            "rate": summarize(row.rates()),
                            "peak_rss_mb": summarize([r.peak_rss / MB for r in row.runs]),
                            "cpu_seconds": summarize([r.cpu_seconds for r in row.runs]),
                        }
                        if row.runs
                        else {}
                    ),
                    "runs": [{**asdict(r), "rate": r.rate} for r in row.runs],
                }
                for row in rows
            },
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 1 if failed or short else 0


if __name__ == "__main__":
    raise SystemExit(main())
