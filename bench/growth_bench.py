"""Growth: does the cost per new article stay flat from 0 to 1,000,000 articles?

What it measures and how to run it: bench/README.md (`growth_bench.py`); its SQL is in
bench/growth_bench.sql."""

import asyncio
import functools
import itertools
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from lib import ROOT
from lib.db import Databases, scalar
from lib.procs import on_sigterm
from lib.report import check, header, med, parser, pct, table, write_json
from lib.text import TextMaker
from lib.web import cpu_of
from psycopg import sql

from ingest import dedup
from ingest.article import build_article
from ingest.logs import configure
from ingest.neardup import fingerprint
from ingest.normalize import canonical_url, clean_text
from ingest.store import Store, queries
from ingest.store.db import migrate, open_pool
from ingest.types import Extracted, PageMetadata, ParsedEntry

SITES, PARAGRAPHS, TITLES, CHUNK, SPAN_DAYS, TARGET_MS = 1000, 4000, 20000, 10_000, 2190, 5
"""Sites (one feed each), text pools, rows per INSERT, days of publication, near-dup target."""
SECTIONS = ("news", "politics", "business", "world", "sport", "tech", "culture", "science")
SQL_FILE = (ROOT / "bench" / "growth_bench.sql").read_text()
SQL = dict(re.findall(r"-- name: (\w+)\n(.*?)(?=\n-- name: |\Z)", SQL_FILE, re.S))
STORED = "SELECT a.url FROM ingest.feed_entries fe JOIN ingest.articles a ON a.id = fe.article_id"
Conn = psycopg.Connection[Any]
SERIAL = itertools.count(1)


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower())[:60].strip("-") or "story"


def host(n: int) -> str:
    return f"{'www.' if n % 10 < 7 else 'news.'}site{n}.example"


def count(conn: Conn) -> int:
    return int(scalar(conn, "SELECT count(*) FROM ingest.articles"))


def gin_lists(conn: Conn) -> dict[str, tuple[int, int, float]]:
    """The GIN indexes of ingest.articles (their inserts go to a pending list first): each
    pending list's pages and tuples, and how full it is (share of gin_pending_list_limit)."""
    return {str(i): (p, t, f) for i, p, t, f in conn.execute(
        "SELECT c.oid::regclass::text, s.pending_pages, s.pending_tuples, s.pending_pages * 8.0"
        " / (SELECT setting::int FROM pg_settings WHERE name = 'gin_pending_list_limit') FROM"
        " pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam,"
        " pgstatginindex(c.oid) s"
        " WHERE i.indrelid = 'ingest.articles'::regclass AND am.amname = 'gin' ORDER BY 1"
    )}  # fmt: skip


def merge(conn: Conn, index: str) -> float:
    """Milliseconds to merge `index`'s pending list into it."""
    t0 = time.perf_counter()
    conn.execute("SELECT gin_clean_pending_list(%s::regclass)", (index,))
    return 1000 * (time.perf_counter() - t0)


class Generator:
    """Adds generated rows on one session (its temp tables hold the text pools)."""

    def __init__(self, conn: Conn, feeds: list[int], maker: TextMaker, n_max: int) -> None:
        self.conn = conn
        self.generated, self.n_max, self.t_end = 0, max(n_max, 1), datetime.now(UTC)
        self.n_words, names = len(maker.words), maker.names
        self.authors = [f"{a} {b}" for a in names[::10] for b in names[5::12]]
        conn.execute("SET jit = off")  # each chunk is a new statement: compiling it costs ~1 s
        constants = {"span": SPAN_DAYS, "sites": len(feeds), "titles": TITLES, "n_sections": 8}
        text = SQL["temp"]
        for name, value in (constants | {"sections": list(SECTIONS)}).items():
            text = text.replace(f"%({name})s", sql.Literal(value).as_string(conn))  # DDL: literals
        conn.execute(text.encode())
        paras = [maker.paragraph(maker.rng.randint(30, 110)) for _ in range(PARAGRAPHS)]
        titles = [(i, t, slug(t)) for i, t in enumerate(maker.title() for _ in range(TITLES))]
        pools = {
            "bench_paras (id, body)": enumerate(paras),
            "bench_titles (id, title, slug)": titles,
            "bench_sites (n, host, site, feed_id)": [
                (n, host(n), host(n).removeprefix("www."), f) for n, f in enumerate(feeds)
            ],
            "bench_words (id, w)": enumerate(maker.words),
            "bench_authors (id, a)": enumerate(self.authors),
        }
        with conn.cursor() as cur:
            for table_, rows in pools.items():
                with cur.copy(f"COPY {table_} FROM STDIN".encode()) as copy:
                    for row in rows:
                        copy.write_row(row)
        conn.execute("ANALYZE bench_paras, bench_titles, bench_sites, bench_words, bench_authors")

    def chunk(self, n: int) -> None:
        lo, hi = self.generated + 1, self.generated + n
        params = {"lo": lo, "hi": hi, "n_max": self.n_max, "t_end": self.t_end, "copy_rate": 0.05}
        params |= {"exact_rate": 0.02, "long_fraction": 0.25, "paragraphs": PARAGRAPHS}
        params |= {"n_words": self.n_words, "n_authors": len(self.authors)}
        self.conn.execute(SQL["generate"].encode(), params, prepare=False)
        self.generated = hi

    def grow_to(self, target: int) -> dict[str, Any]:
        """Add rows until ingest.articles holds `target`; progress on stderr, with the server's
        CPU per row (the load-independent cost of generating)."""
        have, backend = count(self.conn), self.conn.info.backend_pid
        todo, done, started, cpu0 = target - have, 0, time.perf_counter(), cpu_of(backend) or 0.0
        while done < todo:
            self.chunk(n := min(CHUNK, todo - done))
            done += n
            rate, cpu = done / (time.perf_counter() - started), (cpu_of(backend) or 0.0) - cpu0
            print(f"generate: {have + done:>9,}/{target:,} rows, {rate:6.0f} rows/s, server CPU"
                  f" {1000 * cpu / done:.2f} ms/row", file=sys.stderr)  # fmt: skip
        seconds, cpu = round(time.perf_counter() - started, 1), (cpu_of(backend) or 0.0) - cpu0
        return {"rows": max(todo, 0), "seconds": seconds, "server_cpu_seconds": round(cpu, 1)}

    def fill_pending(self, index: str, fraction: float) -> int:
        """Add rows in chunks of 100 until `index`'s pending list holds `fraction` of
        gin_pending_list_limit (or 50,000 rows were added); the rows added."""
        added = 0
        while added < 50_000 and gin_lists(self.conn)[index][2] < fraction:
            self.chunk(100)
            added += 100
        return added


async def set_up(dsn: str) -> list[int]:
    """Migrate; one feed per generated site: their ids."""
    await migrate(dsn)
    pool = await open_pool(dsn, max_size=2)
    try:
        store, urls = Store(pool), [canonical_url(f"https://{host(n)}/feed/") for n in range(SITES)]
        for n, url in enumerate(urls):
            await store.add_feed(url, f"Site {n}")
        async with pool.connection() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        ids = {f["url"]: int(f["id"]) for f in await store.list_feeds()}
        return [ids[url] for url in urls]
    finally:
        await pool.close()


@dataclass
class SizeResult:
    size: int
    rows_before: int = 0
    rows_after: int = 0
    lookup_ms: list[float] = field(default_factory=list)  # (a) per article, one value per batch
    neardup_ms: list[float] = field(default_factory=list)  # (b) one value per query
    store_ms: list[float] = field(default_factory=list)  # (c) per article, one value per batch
    batch_ms: list[float] = field(default_factory=list)
    gin: dict[str, list[float]] = field(default_factory=dict)  # (d) [ms, pages, tuples] by index
    neardup_hits: int = 0
    planted: int = 0
    flagged: int = 0
    generation: dict[str, Any] = field(default_factory=dict)
    vacuum_s: float = 0.0
    sizes_mb: dict[str, float] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)
    reps: int = 0

    def medians(self) -> dict[str, float]:
        a, b, c = (med(x) for x in (self.lookup_ms, self.neardup_ms, self.store_ms))
        d = sum(ms / max(tuples, 1) for ms, _, tuples in self.gin.values())
        return {"lookup": a, "neardup": b, "store": c, "gin": d, "total": a + c + d}


class Measurer:
    """New articles built as the pipeline builds them, looked up and stored with the project's
    `Store`; `planted` keeps the texts of those stored, to make copies of."""

    def __init__(self, store: Store, feeds: list[int], maker: TextMaker, planted: list[str],
                 last: dict[str, Any]) -> None:  # fmt: skip
        self.store, self.feeds, self.maker, self.rng = store, feeds, maker, maker.rng
        self.planted, self.last = planted, last  # the last parameters of each query, to explain

    def new_url(self, n: int, title: str) -> str:
        path = f"{self.rng.choice(SECTIONS)}/{datetime.now(UTC):%Y/%m/%d}/{slug(title)}"
        return f"https://{host(n)}/{path}-n{next(SERIAL)}"  # generated rows end in -<row>

    def text(self, copy: bool, exact: bool = False) -> str:
        """A new text, or an edited or exact copy of a stored one."""
        if not (copy and self.planted):
            return self.maker.text(self.rng.randint(150, 600))
        text = self.rng.choice(self.planted)
        return text if exact else self.maker.edit(text)

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.store.pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchall()

    async def batch(self, result: SizeResult | None, size: int) -> None:
        """One feed document: lookup of its entries (a), then store of its new articles (c)."""
        n = int(len(self.feeds) * self.rng.random() ** 2)  # the skew of the generated rows
        feed, now, entries, texts = self.feeds[n], datetime.now(UTC), [], {}
        for i in range(size):  # 2 edited copies and 1 exact copy of stored articles
            url, text = self.new_url(n, title := self.maker.title()), self.text(i < 3, i == 2)
            texts[url] = (bool(self.planted) and i < 3, clean_text(text))
            author = " ".join(self.rng.sample(self.maker.names, 2))
            when = now - timedelta(minutes=self.rng.randint(1, 600))
            entries.append(ParsedEntry(guid=url, link=url, title=title, author=author,
                                       published_at=when, summary=text[:200]))  # fmt: skip
        query = f"{STORED} WHERE fe.feed_id = %s ORDER BY fe.first_seen_at DESC LIMIT %s"
        old = await self.rows(query, feed, size)
        low, high = (await self.rows("SELECT min(id), max(id) FROM ingest.articles"))[0]
        query = "SELECT url FROM ingest.articles WHERE id >= %s AND feed_id <> %s ORDER BY id"
        for _ in range(2 if low is not None else 0):
            old += await self.rows(query + " LIMIT 1", self.rng.randint(low, high), feed)
        entries += [ParsedEntry(guid=str(u), link=str(u)) for (u,) in old]
        self.rng.shuffle(entries)
        found, invalid = dedup.candidates(entries)  # (a) the plan step's lookups, as the pipeline
        t0 = time.perf_counter()
        done, attempts = await self.store.known_entries(feed, [c.key for c in found])
        fresh = [c for c in found if c.key not in done]
        known = await self.store.known_urls([c.link for c in fresh]) if fresh else {}
        lookup = time.perf_counter() - t0
        self.last["known_entries"] = {"feed_id": feed, "hashes": [c.key for c in found]}
        self.last["known_urls"] = {"urls": [c.link for c in fresh]}
        plan = dedup.plan(found, known_entries=done, known_urls=known, attempts=attempts,
                          invalid=invalid)  # fmt: skip
        items = [(build(c.entry, c.link, texts[c.link][1], now), c.key)
                 for c in plan.fetch if c.link in texts]  # fmt: skip
        t0 = time.perf_counter()
        counts = await self.store.store_articles(feed, items)  # (c) one transaction
        stored = time.perf_counter() - t0
        self.planted += [t for c, t in texts.values() if not c][: 5000 - len(self.planted)]
        if result is not None:
            result.lookup_ms.append(1000 * lookup / max(len(items), 1))
            result.store_ms.append(1000 * stored / max(len(items), 1))
            result.batch_ms.append(1000 * stored)
            result.planted += sum(c for c, _ in texts.values())
            result.flagged += counts.duplicates

    async def neardup_queries(self, result: SizeResult | None, k: int) -> None:
        """(b) the candidate query alone, as the store issues it, for k new texts (1 in 10 an
        edited copy that finds its original)."""
        texts = {i: fingerprint(clean_text(self.text(i % 10 == 0))) for i in range(k)}
        probes = [(i, {"bands": list(fp.bands), "url": self.new_url(0, "p")})
                  for i, fp in texts.items() if fp]  # fmt: skip
        q = queries()
        async with self.store.pool.connection() as conn, conn.transaction():
            await conn.execute(q["probe_band_index"])  # as the store runs it
            for i, params in probes:
                name = f"near_duplicate_candidates ({'copy' if i % 10 == 0 else 'new'} text)"
                self.last[name] = params
                t0 = time.perf_counter()
                cursor = await conn.execute(q["near_duplicate_candidates"], params)
                rows = await cursor.fetchall()
                if result is not None:
                    result.neardup_ms.append(1000 * (time.perf_counter() - t0))
                    result.neardup_hits += bool(rows)


def build(entry: ParsedEntry, url: str, text: str, now: datetime) -> Any:
    extracted = Extracted(text, PageMetadata(), fingerprint(text))
    return build_article(entry, entry_url=entry.link or url, final_url=url, extracted=extracted,
                         extraction_error=None, now=now)  # fmt: skip


async def measure(dsn: str, result: SizeResult, m: tuple[Any, ...], args: Any) -> None:
    """A warm-up batch, then `--reps` times `--batches` batches and their near-dup queries."""
    pool = await open_pool(dsn, max_size=2)
    try:
        measurer = Measurer(Store(pool), *m)
        await measurer.batch(None, args.batch)  # warm-up: caches, prepared statements
        await measurer.neardup_queries(None, 10)
        for result.reps in range(1, args.reps + 1):
            for _ in range(args.batches):
                await measurer.batch(result, args.batch)
            await measurer.neardup_queries(result, max(1, args.lookups // args.reps))
    finally:
        await pool.close()


def db_sizes(conn: Conn) -> dict[str, float]:
    """MB: the database, and its ten largest tables and indexes."""
    query = "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c WHERE c.relnamespace ="
    query += " 'ingest'::regnamespace AND c.relkind IN ('r', 'i') ORDER BY 2 DESC LIMIT 10"
    size = scalar(conn, "SELECT pg_database_size(current_database())")
    rows = [("database", size), *conn.execute(query)]
    return {str(name): round(int(size) / 2**20, 1) for name, size in rows}


def explain_all(conn: Conn, last: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the measured queries, with their last parameters."""
    out = {}
    for name, params in sorted(last.items()):
        text = f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {queries()[name.split()[0]]}"
        out[name] = [str(line)[:150] for (line,) in conn.execute(text.encode(), params)]
    return out


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def report(results: list[SizeResult], plans: dict[str, list[str]]) -> list[str]:
    rows: list[list[Any]] = [["size", "rows", "a med", "a p95", "b med", "b p95", "b max"]]
    rows[0] += ["c med", "c p95", "d", "a+c+d", "dups"]
    for r in results:
        m, top = r.medians(), max(r.neardup_ms, default=None)
        cells = [m["lookup"], pct(r.lookup_ms, 0.95), m["neardup"], pct(r.neardup_ms, 0.95), top]
        cells += [m["store"], pct(r.store_ms, 0.95)]
        rows.append([f"{r.size:,}", f"{r.rows_before:,}", *map(fmt, cells), fmt(m["gin"], 3),
                     fmt(m["total"]), f"{r.flagged}/{r.planted}"])  # fmt: skip
    lines = ["\nms per new article: (a) lookup, (b) near-dup query, (c) store (median, p95 and max"
             " over the batches, (b) over the queries), (d) GIN merge; rows at the start of the"
             " size; copies found/planted"]  # fmt: skip
    lines += table(rows, left=0)
    last, base = results[-1], results[0].medians()
    verdict = "under" if (median := med(last.neardup_ms)) < TARGET_MS else "ABOVE"
    lines.append(
        f"near-dup query at {last.size:,}: median {median:.2f} ms, {verdict} {TARGET_MS} ms"
    )
    if len(results) > 1:
        lines += ["", f"ratio of medians to the {results[0].size:,} row"]
        ratios = [[f"{r.size:,}", *(fmt(v / base[k] if base[k] > 0 else None)
                   for k, v in r.medians().items())] for r in results]  # fmt: skip
        lines += table([["size", "lookup", "near-dup", "store", "GIN", "total"], *ratios], 0)
    for r in results:
        gin, g = {k: round(v[0], 2) for k, v in r.gin.items()}, r.generation
        lists = {k: [int(v[1]), int(v[2])] for k, v in r.gin.items()}
        lines += [
            f"\nsize {r.size:,}: {r.reps} rep(s), {len(r.store_ms)} batches, store_articles of one"
            f" batch (one transaction) median {med(r.batch_ms):.1f} ms; near-dup queries"
            f" {len(r.neardup_ms)}, {r.neardup_hits} with candidates; GIN merge {gin} ms for"
            f" pending [pages, tuples] {lists}",
            f"    generated {g['rows']:,} rows in {g['seconds']:.0f} s (server CPU"
            f" {g['server_cpu_seconds']:.0f} s), VACUUM (ANALYZE) {r.vacuum_s:.0f} s; sizes MB:"
            f" {r.sizes_mb}",
        ]
        lines += [
            f"    {p['index']} pending list filled to {p['pages']} pages ({p['fill']:.0f} % of"
            f" gin_pending_list_limit; {p['rows']:,} rows, {p['added']:,} generated for it):"
            f" merging it took {p['ms']:.0f} ms = {p['ms'] / max(p['rows'], 1):.3f} ms/article"
            for p in r.probes
        ]
    lines += ["", f"plans at {last.rows_after:,} articles (EXPLAIN ANALYZE, BUFFERS)"]
    for name, plan in plans.items():
        lines += [f"  {name}:", *(f"      {line}" for line in plan)]
        removed = [int(n) for x in plan for n in re.findall(r"Rows Removed by Filter: (\d+)", x)]
        if any("Seq Scan" in x for x in plan) or max(removed, default=0) > 1000:
            lines.append("      WARNING: a sequential scan, or one that drops most of its rows")
    return lines


def run(args: Any, dsn: str, feeds: list[int]) -> tuple[list[SizeResult], dict[str, list[str]]]:
    """Every size (generate, vacuum, measure, merge the pending lists), then the plans and the
    pending lists filled at the largest size."""
    maker, planted, last, results = TextMaker(random.Random(7)), [], {}, []
    connect = functools.partial(psycopg.connect, dsn, autocommit=True)
    with connect() as conn, connect() as other:
        gen = Generator(other, feeds, maker, args.sizes[-1])
        for size in args.sizes:
            result = SizeResult(size, generation=gen.grow_to(size))
            t0 = time.perf_counter()
            conn.execute("VACUUM (ANALYZE)")  # every table, as autovacuum would
            result.vacuum_s, result.rows_before = time.perf_counter() - t0, count(conn)
            asyncio.run(measure(dsn, result, (feeds, maker, planted, last), args))
            # (d) each pending list, per article it held (those stored at this size, the warm-up
            # batch included: VACUUM emptied the lists before).
            for index, (pages, tuples, _) in gin_lists(conn).items():
                result.gin[index.split(".")[-1]] = [merge(conn, index), pages, tuples]
            result.rows_after, result.sizes_mb = count(conn), db_sizes(conn)
            results.append(result)
            m = result.medians()
            print(f"size {size:,}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)
        plans = explain_all(conn, last)
        for index in gin_lists(conn):  # each pending list nearly full, then merged
            added = gen.fill_pending(index, 0.85)
            pages, rows, fill = gin_lists(conn)[index]
            probe = {"index": index.split(".")[-1], "added": added, "pages": pages}
            probe |= {"rows": rows, "fill": 100 * fill, "ms": merge(conn, index)}
            results[-1].probes.append(probe)
    return results, plans


def sizes(text: str) -> list[int]:
    return sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("growth_bench.py", __doc__)
    add = p.add_argument
    add("--sizes", type=sizes, default="0,100000,1000000", help="article counts (%(default)s)")
    add("--reps", type=int, default=5, help="repetitions per size (default 5)")
    add("--batches", type=int, default=4, help="batches per repetition (default 4)")
    add("--batch", type=int, default=20, help="new articles per batch (default 20)")
    add("--lookups", type=int, default=250, help="near-dup queries per size (default 250)")
    args = p.parse_args(argv)
    check(p, args, "reps", "batches", "lookups")
    if args.batch < 4 or not args.sizes or args.sizes[0] < 0:
        p.error("--batch at least 4 (3 copies are planted in each); --sizes non-negative integers")
    configure("console", level="warning", stream=sys.stderr)
    on_sigterm()
    info = header("growth_bench", args.admin_url, subprocesses=False)
    print(f"sizes {args.sizes}; {args.reps} reps x {args.batches} batches of {args.batch} new"
          f" articles, {args.lookups} near-dup queries per size; {SITES} sites")  # fmt: skip
    started = time.perf_counter()
    with Databases(args.admin_url) as dbs:
        dsn = dbs.create("growth")
        results, plans = run(args, dsn, asyncio.run(set_up(dsn)))
    print("\n".join(report(results, plans)))
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end {load}; total bench time {time.perf_counter() - started:.0f} s")
    config = {k: v for k, v in vars(args).items() if k != "admin_url"}
    write_json(args.json, {"machine": info, "config": config, "results": results, "plans": plans})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
