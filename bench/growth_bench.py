"""Growth: does the cost per new article stay flat from 0 to 1,000,000 articles?

What it measures and how to run it: bench/README.md (`growth_bench.py`); its SQL is in
bench/growth_bench.sql."""

import argparse
import asyncio
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from lib import ROOT
from lib.db import DB_PREFIX, Databases, scalar
from lib.report import header, med, parser, pct, write_json
from lib.web import cpu_of
from psycopg import sql

from ingest import dedup
from ingest.article import build_article
from ingest.logs import configure
from ingest.neardup import fingerprint
from ingest.normalize import canonical_url, clean_text
from ingest.store import Store, queries
from ingest.store.db import migrate, open_pool
from ingest.types import Article, Extracted, PageMetadata, ParsedEntry

SITES, PARAGRAPHS, TITLES, CHUNK, SPAN_DAYS = 1000, 4000, 20000, 10_000, 2190
TARGET_MS, LONG = 5, 0.25
"""Sites (one feed each), text pools, rows per INSERT, days of publication; the near-dup target
(ms) and the share of long texts (250-500 words)."""
SECTIONS = ("news", "politics", "business", "world", "sport", "tech", "culture", "science")
FIRST = (
    "Anna", "James", "Maria", "David", "Laura", "Peter", "Sofia", "Thomas", "Elena", "Daniel",
    "Clara", "Lukas", "Emma", "Jonas", "Nina", "Marco", "Julia", "Paul", "Sara", "Ahmed",
    "Mei", "Carlos", "Ingrid", "Tomasz", "Aisha", "Olga", "Pierre", "Hannah", "Ravi", "Kenji",
)  # fmt: skip
LAST = (
    "Smith", "Weber", "Rossi", "Garcia", "Novak", "Jensen", "Dubois", "Kowalski", "Martin",
    "Brown", "Schmidt", "Silva", "Moreau", "Fischer", "Young", "Clarke", "Tanaka", "Haddad",
    "Berg", "Costa", "Walsh", "Meyer", "Lindqvist", "Okafor", "Murphy", "Patel",
)  # fmt: skip
STOP = (
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "as", "is", "was", "are", "were", "be", "been", "it", "its", "this", "that", "he",
    "she", "they", "we", "i", "you", "his", "her", "their", "our", "said", "says", "will",
    "would", "could",
)  # fmt: skip
SQL_TEXT = (ROOT / "bench" / "growth_bench.sql").read_text()
SQL = dict(re.findall(r"-- name: (\w+)\n(.*?)(?=\n-- name: |\Z)", SQL_TEXT, re.S))
STORED = "SELECT a.url FROM ingest.feed_entries fe JOIN ingest.articles a ON a.id = fe.article_id"
Conn = psycopg.Connection[Any]


class TextMaker:
    """News-like text: sentences of words drawn from the vocabulary (with its frequencies) of
    the project's English near-duplicate corpus. Two texts share almost no 5-word shingle, so
    they are near-duplicates only when made so with `edit`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, words, texts = rng, [], ROOT / "tests" / "data" / "neardup" / "texts"
        for path in sorted(texts.glob("*.txt")):
            if not re.search(r"\.(de|fr)\.txt$", path.name):
                words += re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|\d+", path.read_text())
        # Lower-case common words; keep names capitalised as they were.
        self.words = [w if w[0].isupper() and w.lower() not in STOP else w.lower() for w in words]

    def title(self, lo: int = 6, hi: int = 13) -> str:
        t = " ".join(self.rng.choice(self.words) for _ in range(self.rng.randint(lo, hi)))
        return t[0].upper() + t[1:]

    def paragraph(self, words: int) -> str:
        out: list[str] = []
        while sum(s.count(" ") + 1 for s in out) < words:
            out.append(self.title(8, 26) + ".")
        return " ".join(out)

    def text(self, words: int) -> str:
        paras = []
        while words > 0:
            paras.append(self.paragraph(n := min(words, self.rng.randint(40, 110))))
            words -= n
        return "\n\n".join(paras)

    def edit(self, text: str) -> str:
        """A copy with about one sentence in ten rewritten and a dateline added."""
        paras = []
        for para in text.split("\n\n"):
            new = (self.title(8, 26) if self.rng.random() < 0.1 else s for s in para.split(". "))
            paras.append(". ".join(new))
        return f"{self.rng.choice(LAST).upper()} (Wire) - " + "\n\n".join(paras)


def build(entry: ParsedEntry, url: str, text: str, now: datetime) -> Article:
    extracted = Extracted(text, PageMetadata(), fingerprint(text))
    return build_article(entry, entry_url=entry.link or url, final_url=url, extracted=extracted,
                         extraction_error=None, now=now)  # fmt: skip


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower())[:60].strip("-") or "story"


def host(n: int) -> str:
    return f"{'www.' if n % 10 < 7 else 'news.'}site{n}.example"


def count(conn: Conn) -> int:
    return int(scalar(conn, "SELECT count(*) FROM ingest.articles"))


def gin_indexes(conn: Conn) -> list[str]:
    """The GIN indexes on ingest.articles: their inserts go to a pending list first."""
    return [str(r[0]) for r in conn.execute(
        "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'ingest.articles'::regclass"
        " AND am.amname = 'gin' ORDER BY 1"
    )]  # fmt: skip


def pending(conn: Conn, index: str) -> tuple[int, int]:
    query = "SELECT pending_pages, pending_tuples FROM pgstatginindex(%s::regclass)"
    return conn.execute(query, (index,)).fetchone() or (0, 0)


def limit_kb(conn: Conn) -> int:
    return int(
        scalar(conn, "SELECT setting FROM pg_settings WHERE name = 'gin_pending_list_limit'")
    )


def merge(conn: Conn, index: str) -> float:
    """Milliseconds to merge `index`'s pending list into it."""
    t0 = time.perf_counter()
    conn.execute("SELECT gin_clean_pending_list(%s::regclass)", (index,))
    return 1000 * (time.perf_counter() - t0)


class Generator:
    """Adds generated rows on one session (its temp tables hold the text pools)."""

    def __init__(self, dsn: str, feeds: list[int], maker: TextMaker) -> None:
        self.conn = conn = psycopg.connect(dsn, autocommit=True)
        state = conn.execute("SELECT generated, n_max, t_end FROM public.growth_bench_state")
        self.generated, self.n_max, self.t_end = state.fetchone() or (0, 1, None)
        self.n_words, self.authors = len(maker.words), [f"{a} {b}" for a in FIRST for b in LAST]
        conn.execute("SET jit = off")  # each chunk is a new statement: compiling it costs ~1 s
        constants = {"span": SPAN_DAYS, "sites": len(feeds), "titles": TITLES}
        constants |= {"sections": list(SECTIONS), "n_sections": len(SECTIONS)}
        text = SQL["temp"]
        for name, value in constants.items():  # as literals: DDL takes no parameters
            text = text.replace(f"%({name})s", sql.Literal(value).as_string(conn))
        conn.execute(text.encode())
        paras = [maker.paragraph(maker.rng.randint(30, 110)) for _ in range(PARAGRAPHS)]
        titles = [maker.title() for _ in range(TITLES)]
        pools = {
            "bench_paras (id, body)": enumerate(paras),
            "bench_titles (id, title, slug)": ((i, t, slug(t)) for i, t in enumerate(titles)),
            "bench_sites (n, host, site, feed_id)": (
                (n, host(n), host(n).removeprefix("www."), f) for n, f in enumerate(feeds)
            ),
            "bench_words (id, w)": enumerate(maker.words),
            "bench_authors (id, a)": enumerate(self.authors),
        }
        with conn.cursor() as cur:
            for table, rows in pools.items():
                with cur.copy(f"COPY {table} FROM STDIN".encode()) as copy:
                    for row in rows:
                        copy.write_row(row)
        conn.execute("ANALYZE bench_paras, bench_titles, bench_sites, bench_words, bench_authors")

    def chunk(self, n: int) -> None:
        lo, hi = self.generated + 1, self.generated + n
        params = {"lo": lo, "hi": hi, "n_max": self.n_max, "t_end": self.t_end, "copy_rate": 0.05}
        params |= {"exact_rate": 0.02, "long_fraction": LONG, "paragraphs": PARAGRAPHS}
        params |= {"n_words": self.n_words, "n_authors": len(self.authors)}
        with self.conn.transaction():
            self.conn.execute(SQL["generate"].encode(), params, prepare=False)
            self.conn.execute("UPDATE public.growth_bench_state SET generated = %s", (hi,))
        self.generated = hi

    def grow_to(self, target: int) -> dict[str, Any]:
        """Add rows until ingest.articles holds `target`; progress on stderr, with the server's
        CPU per row (the load-independent cost of generating)."""
        have, backend = count(self.conn), self.conn.info.backend_pid
        todo, done, started, cpu0 = target - have, 0, time.perf_counter(), cpu_of(backend) or 0.0
        while done < todo:
            t0 = time.perf_counter()
            self.chunk(n := min(CHUNK, todo - done))
            done += n
            rate, cpu = done / (time.perf_counter() - started), (cpu_of(backend) or 0.0) - cpu0
            print(
                f"generate: {have + done:>9,}/{target:,} rows ({100 * done / todo:5.1f} % of"
                f" {todo:,} new), chunk of {n:,} in {time.perf_counter() - t0:5.1f} s, {rate:6.0f}"
                f" rows/s, server CPU {1000 * cpu / done:.2f} ms/row, ETA"
                f" {(todo - done) / rate / 60:4.1f} min", file=sys.stderr,
            )  # fmt: skip
        seconds, cpu = round(time.perf_counter() - started, 1), (cpu_of(backend) or 0.0) - cpu0
        return {"rows": max(todo, 0), "seconds": seconds, "server_cpu_seconds": round(cpu, 1)}

    def fill_pending(self, index: str, fraction: float) -> int:
        """Add rows in chunks of 100 until `index`'s pending list holds `fraction` of
        gin_pending_list_limit (or 50,000 rows were added); the rows added."""
        added, limit = 0, limit_kb(self.conn)
        while added < 50_000 and pending(self.conn, index)[0] * 8 < fraction * limit:
            self.chunk(100)
            added += 100
        return added


async def set_up(dsn: str, n_max: int) -> None:
    """Migrate, one feed per generated site, the bench's state table."""
    await migrate(dsn)
    pool = await open_pool(dsn, max_size=2)
    try:
        for n in range(SITES):
            await Store(pool).add_feed(canonical_url(f"https://{host(n)}/feed/"), f"Site {n}")
    finally:
        await pool.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        conn.execute(SQL["state"].encode())
        values = (max(n_max, 1), datetime.now(UTC), SITES)
        conn.execute("INSERT INTO public.growth_bench_state VALUES (0, %s, %s, %s)", values)


@dataclass
class SizeResult:
    size: int
    rows_before: int = 0
    rows_after: int = 0
    lookup_ms: list[float] = field(default_factory=list)
    """(a) per new article, one value per batch."""
    neardup_ms: list[float] = field(default_factory=list)
    """(b) one value per query."""
    neardup_hits: int = 0
    store_ms: list[float] = field(default_factory=list)
    """(c) per article, one value per batch."""
    batch_ms: list[float] = field(default_factory=list)
    gin: dict[str, list[float]] = field(default_factory=dict)
    """(d) per GIN index: [merge ms, pending pages, pending tuples]."""
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

    def __init__(
        self, store: Store, feeds: list[int], maker: TextMaker, planted: list[str]
    ) -> None:
        self.store, self.feeds, self.maker, self.rng = store, feeds, maker, maker.rng
        self.planted, self.run, self.counter = planted, f"{random.randrange(36**4):04x}", 0

    def new_url(self, n: int, title: str) -> str:
        self.counter += 1
        path = f"{self.rng.choice(SECTIONS)}/{datetime.now(UTC):%Y/%m/%d}/{slug(title)}"
        return f"https://{host(n)}/{path}-n{self.run}{self.counter}"

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.store.pool.connection() as conn:
            return await (await conn.execute(query, params)).fetchall()

    async def batch(self, result: SizeResult | None, size: int) -> None:
        """One feed document: lookup of its entries (a), then store of its new articles (c)."""
        n = int(len(self.feeds) * self.rng.random() ** 2)  # the skew of the generated rows
        feed, now, new, texts = self.feeds[n], datetime.now(UTC), [], {}
        for i in range(size):
            title = self.maker.title()
            url = self.new_url(n, title)
            if self.planted and i < 3:  # 2 edited copies, 1 exact copy of stored articles
                text = self.rng.choice(self.planted)
                kind, text = ("near", self.maker.edit(text)) if i < 2 else ("exact", text)
            else:
                kind, text = "fresh", self.maker.text(self.rng.randint(150, 600))
            texts[url] = (kind, clean_text(text))
            author = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
            when = now - timedelta(minutes=self.rng.randint(1, 600))
            entry = dict(guid=url, link=url, title=title, author=author, published_at=when)
            new.append(ParsedEntry(**entry, summary=text[:200]))
        query = f"{STORED} WHERE fe.feed_id = %s ORDER BY fe.first_seen_at DESC LIMIT %s"
        old = await self.rows(query, feed, size)
        low, high = (await self.rows("SELECT min(id), max(id) FROM ingest.articles"))[0]
        cross, query = [], "SELECT url FROM ingest.articles WHERE id >= %s AND feed_id <> %s"
        for _ in range(2 if low is not None else 0):
            cross += await self.rows(
                query + " ORDER BY id LIMIT 1", self.rng.randint(low, high), feed
            )
        entries = new + [ParsedEntry(guid=str(u), link=str(u)) for (u,) in old + cross]
        self.rng.shuffle(entries)
        found, invalid = dedup.candidates(entries)  # (a) the plan step's lookups, as the pipeline
        t0 = time.perf_counter()
        done, attempts = await self.store.known_entries(feed, [c.key for c in found])
        fresh = [c for c in found if c.key not in done]
        known = await self.store.known_urls([c.link for c in fresh]) if fresh else {}
        lookup = time.perf_counter() - t0
        plan = dedup.plan(found, known_entries=done, known_urls=known, attempts=attempts,
                          invalid=invalid)  # fmt: skip
        fetch = [c for c in plan.fetch if c.link in texts]
        items = [(build(c.entry, c.link, texts[c.link][1], now), c.key) for c in fetch]
        t0 = time.perf_counter()
        counts = await self.store.store_articles(feed, items)  # (c) one transaction
        stored = time.perf_counter() - t0
        fresh_texts = [t for kind, t in texts.values() if kind == "fresh"]
        self.planted += fresh_texts[: 5000 - len(self.planted)]
        if result is not None:
            result.lookup_ms.append(1000 * lookup / max(len(items), 1))
            result.store_ms.append(1000 * stored / max(len(items), 1))
            result.batch_ms.append(1000 * stored)
            result.planted += sum(1 for k, _ in texts.values() if k != "fresh")
            result.flagged += counts.duplicates

    async def neardup_queries(self, result: SizeResult | None, k: int, until: float = 1e18) -> None:
        """(b) the candidate query alone, as the store issues it, k times (fewer, but at least
        5, once `until` on the perf_counter clock has passed)."""
        probes = []
        for i in range(k):
            copy = self.planted and i % 10 == 0  # 1 in 10 an edited copy that finds its original
            text = self.maker.text(self.rng.randint(150, 600)) if not copy else ""
            text = text or self.maker.edit(self.rng.choice(self.planted))
            if fp := fingerprint(clean_text(text)):
                probes.append({"bands": list(fp.bands), "url": self.new_url(0, "p")})
        async with self.store.pool.connection() as conn:
            for n, params in enumerate(probes):
                if n >= 5 and time.perf_counter() > until:
                    break
                t0 = time.perf_counter()
                cursor = await conn.execute(queries()["near_duplicate_candidates"], params)
                rows = await cursor.fetchall()
                if result is not None:
                    result.neardup_ms.append(1000 * (time.perf_counter() - t0))
                    result.neardup_hits += bool(rows)


async def measure(dsn: str, result: SizeResult, m: tuple[Any, ...], args: Any) -> None:
    """One untimed warm-up batch, then `--reps` repetitions of `--batches` batches and their
    share of the near-dup queries, within `--budget` seconds."""
    pool = await open_pool(dsn, max_size=2)
    try:
        measurer, started = Measurer(Store(pool), *m), time.perf_counter()
        await measurer.batch(None, args.batch)  # warm-up: caches, prepared statements
        await measurer.neardup_queries(None, 10)
        per_rep = max(1, args.lookups // args.reps)
        for rep in range(args.reps):
            for _ in range(args.batches):
                await measurer.batch(result, args.batch)
            await measurer.neardup_queries(result, per_rep, started + args.budget)
            result.reps, elapsed = rep + 1, time.perf_counter() - started
            print(
                f"measure {result.size:,}: rep {rep + 1}/{args.reps} ({elapsed:.0f} s): store"
                f" {med(result.store_ms[-args.batches :]):.2f} ms/article, near-dup query"
                f" {med(result.neardup_ms[-per_rep:]):.2f} ms", file=sys.stderr,
            )  # fmt: skip
            if rep + 1 < args.reps and elapsed * (rep + 2) / (rep + 1) > args.budget:
                print(
                    f"measure {result.size:,}: stopping: --budget {args.budget:g} s",
                    file=sys.stderr,
                )
                break
    finally:
        await pool.close()


def db_sizes(conn: Conn) -> dict[str, float]:
    """MB: the database, the articles table, its indexes and each GIN index, and the other
    tables a stored article writes to (with their indexes)."""
    parts = {"database": "pg_database_size(current_database())"}
    parts |= {"articles_table": "pg_table_size('ingest.articles')"}
    parts |= {"articles_indexes": "pg_indexes_size('ingest.articles')"}
    parts |= {i.split(".")[-1]: f"pg_relation_size('{i}')" for i in gin_indexes(conn)}
    for t in ("article_bands", "article_urls", "feed_entries", "article_changes"):
        parts[t] = f"COALESCE(pg_total_relation_size(to_regclass('ingest.{t}')), 0)"
    return {k: round(int(scalar(conn, f"SELECT {v}")) / 2**20, 1) for k, v in parts.items()}


def summarize_plan(raw: Any) -> dict[str, Any]:
    """The plan as one line (node > children), its run time, and a warning for each sequential
    scan or scan that reads many rows only to drop them."""
    top, warnings = raw[0] if isinstance(raw, list) else raw, []

    def walk(node: dict[str, Any]) -> str:
        name, kids = str(node.get("Node Type")), [walk(k) for k in node.get("Plans") or []]
        removed = int(node.get("Rows Removed by Filter") or 0) * int(node.get("Actual Loops") or 1)
        index, table = node.get("Index Name"), node.get("Relation Name")
        if name == "Seq Scan":
            warnings.append(f"sequential scan of {table} ({removed:,} rows read and dropped)")
        elif removed > 1000:
            filtered = f"({node.get('Filter', '')[:120]})"
            warnings.append(
                f"{name} using {index or table} read {removed:,} rows, dropped {filtered}"
            )
        if index or table:
            name += f" using {index}" if index else f" on {table}"
        elif node.get("Function Name"):
            name += f" {node['Function Name']}()"
        if len(kids) == 1:
            return f"{name} > {kids[0]}"
        return f"{name} > [{'; '.join(kids)}]" if kids else name

    plan, triggers = top["Plan"], top.get("Triggers") or []
    return {
        "plan": walk(plan), "execution_ms": top.get("Execution Time"), "warnings": warnings,
        "planning_ms": top.get("Planning Time"), "rows": plan.get("Actual Rows"),
        "hit": plan.get("Shared Hit Blocks"), "read": plan.get("Shared Read Blocks"),
        "triggers": [f"{t.get('Trigger Name')} {t.get('Time', 0):.2f} ms" for t in triggers],
    }  # fmt: skip


def explain_all(dsn: str, maker: TextMaker, planted: list[str], feed: int) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the near-duplicate query (a new text, and a copy of a
    stored one), `known_urls`, `known_entries` and one `insert_article`, rolled back."""
    q, rng, out = queries(), maker.rng, {}
    url = f"https://{host(0)}/news/explain-{rng.randrange(10**9)}"
    with psycopg.connect(dsn, autocommit=True) as conn:

        def explain(name: str, query: str, params: dict[str, Any]) -> None:
            raw = scalar(conn, f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {q[query]}", params)
            out[name] = summarize_plan(raw)

        for label, text in (("fresh", maker.text(400)), ("copy", maker.edit(rng.choice(planted)))):
            if fp := fingerprint(clean_text(text)):
                params = {"bands": list(fp.bands), "url": url}
                explain(
                    f"near-dup candidates, {label} fingerprint", "near_duplicate_candidates", params
                )
        urls = [
            str(u) for (u,) in conn.execute(f"{STORED} WHERE fe.feed_id = %s LIMIT 20", (feed,))
        ]
        urls += [f"https://{host(0)}/news/new-{rng.randrange(10**9)}" for _ in range(20)]
        found, _ = dedup.candidates([ParsedEntry(guid=u, link=u) for u in urls])
        explain("known_urls (40 URLs, 20 stored)", "known_urls", {"urls": [c.link for c in found]})
        params = {"feed_id": feed, "hashes": [c.key for c in found]}
        explain("known_entries (40 entries, 20 stored)", "known_entries", params)
        entry = ParsedEntry(guid=urls[-1], link=urls[-1], title=maker.title())
        article = build(entry, urls[-1], clean_text(maker.text(400)), datetime.now(UTC))
        fp = article.fingerprint  # insert_article's parameters, from the article's public fields
        known = {"feed_id": feed, "modified_at": article.updated_at, "near_duplicate_of": None}
        known |= {
            "minhash": fp.minhash if fp else None,
            "lsh_bands": list(fp.bands) if fp else None,
        }
        names = re.findall(r"%\((\w+)\)s", q["insert_article"])
        values = {n: known[n] if n in known else getattr(article, n) for n in names}
        conn.execute("BEGIN")  # one insert as the store issues it, rolled back
        insert = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        explain("insert_article (rolled back)", "insert_article", insert)
        conn.execute("ROLLBACK")
    return out


def fmt(v: float | None, width: int = 6, digits: int = 2) -> str:
    return f"{'-':>{width}}" if v is None or v != v else f"{v:{width}.{digits}f}"


def report(results: list[SizeResult], plans: dict[str, Any]) -> list[str]:
    lines = [
        "\nms per new article (median / p95 over batches of the size; near-dup: over queries)",
        f"{'size':>9} {'rows':>9} | {'(a) lookup':^13} | {'(b) near-dup query':^20} | "
        f"{'(c) store':^13} | {'(d) GIN':>7} | {'total':>6} | dups",
        f"{'':>9} {'at start':>9} | {'med':>6} {'p95':>6} | {'med':>6} {'p95':>6} {'max':>6} | "
        f"{'med':>6} {'p95':>6} | {'merge':>7} | {'a+c+d':>6} | found/planted",
    ]
    for r in results:
        m, top = r.medians(), max(r.neardup_ms, default=None)
        lines.append(
            f"{r.size:>9,} {r.rows_before:>9,} | {fmt(m['lookup'])} {fmt(pct(r.lookup_ms, 0.95))} |"
            f" {fmt(m['neardup'])} {fmt(pct(r.neardup_ms, 0.95))} {fmt(top)} | {fmt(m['store'])}"
            f" {fmt(pct(r.store_ms, 0.95))} | {fmt(m['gin'], 7, 3)} | {fmt(m['total'])} |"
            f" {r.flagged}/{r.planted}"
        )
    last, base = results[-1], results[0].medians()
    if last.neardup_ms:
        median, p95 = med(last.neardup_ms), pct(last.neardup_ms, 0.95)
        lines.append(
            f"near-dup query at {last.size:,}: median {median:.2f} ms, p95 {p95:.2f} ms:"
            f" {'under' if median < TARGET_MS else 'ABOVE'} the {TARGET_MS} ms target"
        )
    if len(results) > 1:
        lines += ["", f"ratio of medians to the {results[0].size:,} row"]
        lines.append(
            f"{'size':>9} | {'lookup':>7} {'near-dup':>8} {'store':>7} {'GIN':>7} {'total':>7}"
        )
        for r in results:
            ratios = [
                f"{v / base[k]:7.2f}" if base[k] > 0 else f"{'-':>7}"
                for k, v in r.medians().items()
            ]
            lines.append(f"{r.size:>9,} | {ratios[0]} {ratios[1]:>8} {' '.join(ratios[2:])}")
    lines.append("")
    for r in results:
        gin = {k: round(v[0], 2) for k, v in r.gin.items()}
        lists = {k: [int(v[1]), int(v[2])] for k, v in r.gin.items()}
        lines.append(
            f"size {r.size:,}: {r.reps} rep(s), {len(r.store_ms)} batches, store_articles of one"
            f" batch (one transaction) median {med(r.batch_ms):.1f} ms; near-dup queries"
            f" {len(r.neardup_ms)}, {r.neardup_hits} with candidates; GIN merge {gin} ms for"
            f" pending [pages, tuples] {lists}"
        )
        if g := r.generation:
            lines.append(
                f"    generated {g['rows']:,} rows in {g['seconds']:.0f} s (server CPU"
                f" {g['server_cpu_seconds']:.0f} s), VACUUM (ANALYZE) {r.vacuum_s:.0f} s"
            )
        lines.append(f"    sizes MB: {r.sizes_mb}")
        for p in r.probes:
            lines.append(
                f"    {p['index']} pending list filled to {p['pages']} pages ({p['fill']:.0f} % of"
                f" gin_pending_list_limit; {p['rows']:,} rows, {p['added']:,} generated for it):"
                f" merging it took {p['merge_ms']:.0f} ms = {p['merge_ms'] / max(p['rows'], 1):.3f}"
                " ms per article"
            )
    lines += ["", f"plans at {last.rows_after:,} articles (EXPLAIN ANALYZE, BUFFERS)"]
    for name, p in plans.items():
        lines += [
            f"  {name}: {p['execution_ms']:.3f} ms (planning {p['planning_ms']:.3f} ms),"
            f" {p['rows']} rows, buffers hit {p['hit']} read {p['read']}",
            f"      {p['plan']}",
            *([f"      triggers: {', '.join(p['triggers'])}"] if p["triggers"] else []),
            *(f"      WARNING: {w}" for w in p["warnings"]),
        ]
    return lines


def run(
    args: argparse.Namespace, dsn: str, results: list[SizeResult], plans: dict[str, Any]
) -> None:
    """Every size (generate, vacuum, measure, merge the pending lists), then the plans and the
    pending lists filled at the largest size."""
    maker, planted, gen = TextMaker(random.Random(7)), [], None
    with psycopg.connect(dsn, autocommit=True) as conn:
        if scalar(conn, "SELECT to_regclass('public.growth_bench_state')") is None:
            raise RuntimeError("no growth_bench_state: not a database made by this bench")
        urls = [canonical_url(f"https://{host(n)}/feed/") for n in range(SITES)]
        feeds = [int(scalar(conn, "SELECT id FROM news.feeds WHERE url = %s", (u,))) for u in urls]
    try:
        for size in args.sizes:
            result = SizeResult(size)
            with psycopg.connect(dsn, autocommit=True) as conn:
                if (have := count(conn)) > size:
                    print(f"size {size:,}: the database already holds {have:,} rows; skipped")
                    continue
            if size > have:
                gen = gen or Generator(dsn, feeds, maker)
                g = result.generation = gen.grow_to(size)
                print(f"generated {g['rows']:,} rows in {g['seconds']:.0f} s")
            with psycopg.connect(dsn, autocommit=True) as conn:
                t0 = time.perf_counter()
                conn.execute("VACUUM (ANALYZE)")  # every table, as autovacuum would
                result.vacuum_s, result.rows_before = time.perf_counter() - t0, count(conn)
            asyncio.run(measure(dsn, result, (feeds, maker, planted), args))
            with psycopg.connect(dsn, autocommit=True) as conn:
                # (d) each pending list, per article it held (those stored at this size, the
                # warm-up batch included: VACUUM emptied the lists before).
                for index in gin_indexes(conn):
                    pages, tuples = pending(conn, index)
                    result.gin[index.split(".")[-1]] = [merge(conn, index), pages, tuples]
                result.rows_after, result.sizes_mb = count(conn), db_sizes(conn)
            results.append(result)
            m = result.medians()
            print(
                f"size {size:,}: lookup {m['lookup']:.3f}, near-dup query {m['neardup']:.3f}, store"
                f" {m['store']:.3f}, GIN merge {m['gin']:.3f} ms per article", flush=True,
            )  # fmt: skip
        if results:
            plans |= explain_all(dsn, maker, planted, feeds[0])
            with psycopg.connect(dsn, autocommit=True) as conn:
                for index in gin_indexes(conn):  # each pending list nearly full, then merged
                    gen = gen or Generator(dsn, feeds, maker)
                    added = gen.fill_pending(index, 0.85)
                    pages, rows = pending(conn, index)
                    fill, merged = 800 * pages / limit_kb(conn), merge(conn, index)
                    probe = {"index": index.split(".")[-1], "added": added, "pages": pages}
                    results[-1].probes.append(
                        probe | {"rows": rows, "fill": fill, "merge_ms": merged}
                    )
    finally:
        if gen is not None:
            gen.conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("growth_bench.py", __doc__)
    add = p.add_argument
    add("--sizes", help="comma-separated article counts (default 0,100000,1000000)")
    add("--quick", action="store_true", help="sizes 0,10000,50000 and fewer repetitions")
    add("--reps", type=int, help="repetitions per size (default 5, 2 with --quick)")
    add("--batches", type=int, default=4, help="batches per repetition (default 4)")
    add("--batch", type=int, default=20, help="new articles per batch (default 20)")
    add("--lookups", type=int, help="near-dup queries per size (default 250, 60 with --quick)")
    add("--budget", type=float, default=600, help="seconds of measuring per size (default 600)")
    add("--keep", action="store_true", help="do not drop the database; print its DSN")
    add("--reuse", metavar="DSN", help="measure a database kept by --keep")
    args = p.parse_args(argv)
    try:
        sizes = args.sizes or ("0,10000,50000" if args.quick else "0,100000,1000000")
        args.sizes = sorted({int(s.replace("_", "")) for s in sizes.split(",") if s.strip()})
    except ValueError:
        p.error("--sizes takes comma-separated integers")
    args.reps, args.lookups = (
        args.reps or (2 if args.quick else 5),
        args.lookups or (60 if args.quick else 250),
    )
    if (
        not args.sizes
        or args.sizes[0] < 0
        or min(args.reps, args.batches, args.lookups) < 1
        or args.batch < 4
    ):
        p.error("--sizes of non-negative integers; --reps, --batches, --lookups >= 1; --batch >= 4")
    if args.reuse and not psycopg.conninfo.conninfo_to_dict(args.reuse).get(
        "dbname", ""
    ).startswith(DB_PREFIX):
        p.error(f"--reuse takes a {DB_PREFIX}* database made by this bench with --keep")
    configure("console", level="warning", stream=sys.stderr)
    info = header("growth_bench", args.admin_url, subprocesses=False)
    names = ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem")
    names += (
        "max_wal_size",
        "synchronous_commit",
        "gin_pending_list_limit",
        "random_page_cost",
        "jit",
    )
    with psycopg.connect(args.admin_url) as conn:
        info |= {
            n: scalar(conn, sql.SQL("SHOW {}").format(sql.Identifier(n)).as_string(conn))
            for n in names
        }
    print("postgresql: " + ", ".join(f"{n}={info[n]}" for n in names))
    print(
        f"sizes {args.sizes}; {args.reps} reps x {args.batches} batches of {args.batch} new"
        f" articles, {args.lookups} near-dup queries per size; {SITES} sites/feeds", flush=True,
    )  # fmt: skip
    results: list[SizeResult] = []
    plans: dict[str, Any] = {}
    failed, started = None, time.perf_counter()
    with Databases(args.admin_url) as dbs:
        try:
            dsn = args.reuse or dbs.create("growth")
            if args.reuse:
                print(
                    f"reusing {dsn}; migrations applied now: {asyncio.run(migrate(dsn)) or 'none'}"
                )
            else:
                asyncio.run(set_up(dsn, max(args.sizes)))
            run(args, dsn, results, plans)
        except (Exception, KeyboardInterrupt) as e:
            failed = f"{type(e).__name__}: {e}"
            print(f"growth_bench: FAILED: {failed}", file=sys.stderr)
            traceback.print_exc()
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            if args.keep and not args.reuse and dbs.created:
                print(f"kept database: {dbs.dsn(dbs.created.pop())} (drop it when done)")
    print("\n".join(report(results, plans)) if results else "no results")
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end {load}; total bench time {time.perf_counter() - started:.0f} s")
    config = {k: v for k, v in vars(args).items() if k not in ("admin_url", "reuse")}
    figures = {"results": results, "plans": plans, "error": failed}
    write_json(args.json, {"machine": info, "config": config, **figures})
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
