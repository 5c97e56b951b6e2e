"""Growth benchmark: does the cost per new article stay flat from 0 to 1,000,000 articles?

    .venv/bin/python bench/growth_bench.py [--sizes 0,100000,1000000] [--quick] [--json FILE]
        [--keep] [--reuse DSN]

What it does. A throwaway database (`ingest_bench_growth_*`) is migrated with the project's own
`ingest.store.db.migrate` and given one feed per generated site (default 1000). Then, for each
size in `--sizes`, smallest first:

  generate  rows are added with SQL until `ingest.articles` holds the size: chunks of
            `INSERT ... SELECT generate_series` (10,000 rows, one transaction each, progress on
            stderr) that also write what a stored article comes with: its `article_urls` (the
            canonical URL, plus a short-link alias for 1 row in 6), its `feed_entries` row
            (entry hash = sha256("guid:" + url), as `ingest.dedup` computes it) and, through
            the migrations' triggers, whatever they derive from a row: its `article_changes`
            row and NOTIFY, and (since sql/0009) its 32 `article_bands` rows. Every index and
            trigger of the migrations stays in place during the load; the generated `search`
            tsvector is computed by PostgreSQL as for any insert. Then VACUUM (ANALYZE), as
            autovacuum would eventually do (it also empties the GIN pending lists).
  measure   with the project's code (`ingest.store.Store`, `ingest.dedup`, `ingest.article`)
            on new articles built as the pipeline builds them (ParsedEntry + Extracted with a
            real `ingest.neardup` fingerprint -> `build_article`). A feed document is 20 new
            entries (`--batch`), the feed's 20 newest stored entries and 2 entries stored from
            other feeds. Of the new articles, 2 per batch are edited copies (about 10 % of the
            sentences rewritten: estimated similarity about 0.75) and 1 an exact copy of an
            article stored earlier by this bench, so the near-duplicate path finds real
            candidates. Per size: one untimed warm-up batch, then `--reps` repetitions of
            `--batches` batches plus their share of the `--lookups` near-duplicate queries.

What each column is (ms per new article; median and p95 over the batches or queries):

  (a) lookup    `Store.known_entries` of the document's 42 entries + `Store.known_urls` of
                those not yet in this feed (the pipeline's plan step), divided by the 20 new
                articles.
  (b) near-dup  the `near_duplicate_candidates` query alone, as `Store.store_articles` issues it
                (same SQL from `sql/queries.sql`, same parameters, on a pool connection, so
                psycopg prepares it after 5 runs): one query per article, for fingerprints of
                new random texts (1 in 10 is an edited copy, which finds its original). The
                target is under 5 ms at 1,000,000 articles; median, p95 and max are given.
  (c) store     `Store.store_articles(feed_id, batch)` of one batch (one transaction: the
                near-duplicate query, INSERT, URL aliases and feed entry per article; the
                search tsvector, every index and trigger) divided by the batch size. (b) is
                part of it.
  (d) GIN merge a GIN index (`search`; `lsh_bands` before sql/0009) takes inserts into a
                pending list that is merged into the index later (by the insert that overflows
                `gin_pending_list_limit`, or by vacuum). After the batches of a size, the bench
                times `gin_clean_pending_list` on each GIN index of `ingest.articles` and divides
                by the articles its list held: the deferred part of the insert cost, which a
                batch alone does not show.
  total         (a) + (c) + (d), medians.

How to read it. The 0 row (an empty database; it holds a few hundred rows by the end of its
own measurement) is the baseline; the second table gives each median as a ratio to it. Flat
means ratios near 1; a lookup that scans instead of probing an index grows with the size. Below
the tables: the EXPLAIN (ANALYZE, BUFFERS) plans of the near-duplicate query (the custom plan
psycopg's first executions get and the generic plan a prepared statement may switch to), of
`known_urls`, `known_entries` and one `insert_article` (rolled back) at the largest size, with a
warning for any sequential scan or any scan that reads many rows only to drop them; database
and index sizes; and, at the largest size, each GIN index's pending list filled to 85 % of its
limit with generated rows, then merged: the merge's cost per article for a full list (what the
insert that overflows the list pays), and, for an index the near-duplicate query reads, that
query again meanwhile (the worst state between two merges: it reads the whole pending list).

Generated rows. Texts come from a pool of 4,000 paragraphs drawn word by word from the
vocabulary of `tests/data/neardup/texts` (its English texts, word frequencies kept), so the
tsvector and its GIN entries look like English news: 25 % of rows (`--long-fraction`) have 4-7
paragraphs (250-500 words), the others 1-2 (60-180 words), each with its own lead sentence.
Sites are skewed (site n gets a share proportional to 1/sqrt(n)); published_at spreads over
the 6 years before the run, in id order with jitter; 80 % English, some de/fr/es/it; 7 % stored
from feed text with an extraction error; 2 % exact copies and 3 % near copies of an earlier row
(duplicate_of set). Band keys are not MinHash of the generated text: they are
`hashint8extended(row, band)`, 32 uniform 64-bit keys per row. A real band key is a 64-bit
BLAKE2b digest, so it is uniform too, and two distinct texts share one only when they are
copies: an index over the keys (the GIN index on `lsh_bands`, or the btree of `article_bands`
since sql/0009) sees the same number of keys per row, the same key distribution and almost
only one row per key, as with real fingerprints, and copies share a subset of their original's
keys (all 32 for exact copies). Computing real MinHash for a million texts would take 10-20
CPU minutes of this 2-core machine's Python for no difference the index can see; the new
articles measured, and their originals, do have real fingerprints. The minhash column holds
512 pseudo-random bytes (sha512), the size of a real signature.

Figures are printed, never asserted. The exit status is 1 only when a step failed. The
database is dropped at the end, also on error, Ctrl-C or SIGTERM, unless `--keep` (then its DSN
is printed; `--reuse DSN` migrates it to the current code and measures it again, generating only
what is missing: an `ingest_bench_*` database this bench made, since measuring writes articles
into it). `--budget` bounds the measuring time per size (a lookup that scans gets fewer
samples, at least one repetition and 5 queries). On a shared
2-core machine, compare rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shlex
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import ADMIN_DSN_DEFAULT, DB_PREFIX, ROOT, Databases
from ingest_bench import machine as base_machine
from psycopg import sql

from ingest import dedup, logs
from ingest.article import build_article
from ingest.neardup import fingerprint
from ingest.normalize import canonical_url, clean_text
from ingest.store import Store, _article_params, queries
from ingest.store.db import migrate, open_pool
from ingest.types import Article, Extracted, PageMetadata, ParsedEntry

DEFAULT_SIZES = (0, 100_000, 1_000_000)
QUICK_SIZES = (0, 10_000, 50_000)
SITES = 1000
PARAGRAPHS = 4000
TITLES = 20000
CHUNK = 10_000
NEARDUP_TARGET_MS = 5.0
SPAN_DAYS = 6 * 365
NEARDUP_PLAN = "near-dup candidates, custom plan, fresh fingerprint"
SECTIONS = ("news", "politics", "business", "world", "sport", "tech", "culture", "science")
TEXTS = ROOT / "tests" / "data" / "neardup" / "texts"
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


# --- text --------------------------------------------------------------------------------------


class TextMaker:
    """News-like text: sentences of words drawn from the vocabulary (with its frequencies) of
    the project's English near-duplicate corpus. Two texts share almost no 5-word shingle, so
    they are near-duplicates only when made so with `edit`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words: list[str] = []
        for path in sorted(TEXTS.glob("*.txt")):
            if re.search(r"\.(de|fr)\.txt$", path.name):
                continue
            words += re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|\d+", path.read_text())
        if len(words) < 1000:
            raise RuntimeError(f"too few words in {TEXTS} to generate texts")
        # Lower-case common words; keep names capitalised as they were.
        self.words = [w if w[0].isupper() and w.lower() not in _STOP else w.lower() for w in words]

    def sentence(self) -> str:
        n = self.rng.randint(8, 26)
        body = " ".join(self.rng.choice(self.words) for _ in range(n))
        return body[0].upper() + body[1:] + "."

    def paragraph(self, words: int) -> str:
        out: list[str] = []
        count = 0
        while count < words:
            s = self.sentence()
            out.append(s)
            count += s.count(" ") + 1
        return " ".join(out)

    def text(self, words: int) -> str:
        paras: list[str] = []
        left = words
        while left > 0:
            n = min(left, self.rng.randint(40, 110))
            paras.append(self.paragraph(n))
            left -= n
        return "\n\n".join(paras)

    def title(self) -> str:
        n = self.rng.randint(6, 13)
        t = " ".join(self.rng.choice(self.words) for _ in range(n))
        return t[0].upper() + t[1:]

    def edit(self, text: str) -> str:
        """A copy with about one sentence in ten rewritten and a dateline added."""
        paras = []
        for para in text.split("\n\n"):
            sentences = para.split(". ")
            sentences = [
                self.sentence().rstrip(".") if self.rng.random() < 0.1 else s for s in sentences
            ]
            paras.append(". ".join(sentences))
        return f"{self.rng.choice(LAST).upper()} (Wire) - " + "\n\n".join(paras)


_STOP = frozenset((
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "as", "is", "was", "are", "were", "be", "been", "it", "its", "this", "that", "he",
    "she", "they", "we", "i", "you", "his", "her", "their", "our", "said", "says", "will",
    "would", "could",
))  # fmt: skip


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower())[:60].strip("-") or "story"


# --- generation --------------------------------------------------------------------------------

SETUP_SQL = """
CREATE TABLE IF NOT EXISTS public.growth_bench_state (
    generated bigint NOT NULL,
    n_max     bigint NOT NULL,
    t_end     timestamptz NOT NULL,
    sites     integer NOT NULL
);
"""

TEMP_SQL = """
CREATE TEMP TABLE bench_paras (id integer PRIMARY KEY, body text NOT NULL);
CREATE TEMP TABLE bench_titles (id integer PRIMARY KEY, title text NOT NULL, slug text NOT NULL);
CREATE TEMP TABLE bench_words (id integer PRIMARY KEY, w text NOT NULL);
CREATE TEMP TABLE bench_authors (id integer PRIMARY KEY, a text NOT NULL);
CREATE TEMP TABLE bench_sites (n integer PRIMARY KEY, host text NOT NULL, site text NOT NULL,
                               feed_id bigint NOT NULL);
-- Uniform [0, 1) from a row number and a stream number: deterministic, so a copy can rebuild
-- its original's URL, text and band keys.
CREATE FUNCTION pg_temp.u(g bigint, k integer) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(g, k) & 2147483647)::float8 / 2147483648.0 $$;
CREATE FUNCTION pg_temp.pub(g bigint, n_max bigint, t_end timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT least(t_end,
        t_end - make_interval(days => %(span)s) * (1 - g::float8 / n_max)
              + make_interval(secs => (pg_temp.u(g, 7) - 0.5) * 4 * 86400)) $$;
CREATE FUNCTION pg_temp.site_n(g bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(%(sites)s * pg_temp.u(g, 6) ^ 2)::integer $$;
CREATE FUNCTION pg_temp.title_n(g bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(%(titles)s * pg_temp.u(g, 5))::integer $$;
CREATE FUNCTION pg_temp.mkurl(host text, g bigint, pub timestamptz, slug text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'https://' || host || '/'
        || (%(sections)s::text[])[1 + floor(pg_temp.u(g, 14) * %(n_sections)s)::integer] || '/'
        || to_char(pub AT TIME ZONE 'UTC', 'YYYY/MM/DD') || '/' || slug || '-' || g $$;
"""

# One chunk of rows lo..hi. copy: 0 an original, 1 a near copy (its own lead sentence and first
# paragraph, some of its band keys taken from the original), 2 an exact copy (same text, same
# content hash, all 32 band keys of the original). An original is always from an earlier chunk,
# and never itself a copy, so its row exists and duplicate_of points at the story's first row.
GENERATE_SQL = """
WITH r AS (
    SELECT g, x.g0,
           CASE WHEN pg_temp.u(g, 1) < %(copy_rate)s AND x.g0 >= 1
                     AND pg_temp.u(x.g0, 1) >= %(copy_rate)s
                THEN CASE WHEN pg_temp.u(g, 1) < %(exact_rate)s THEN 2 ELSE 1 END
                ELSE 0 END AS copy
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
         LATERAL (SELECT %(lo)s::bigint - 1 - floor(pg_temp.u(g, 2) * 20000)::bigint AS g0) x
), s AS (
    SELECT r.*,
           CASE WHEN copy = 2 THEN g0 ELSE g END AS story,
           CASE WHEN copy > 0 THEN g0 ELSE g END AS body,
           pg_temp.pub(g, %(n_max)s, %(t_end)s) AS published_at
    FROM r
), rows AS (
    SELECT s.*, site.host, site.site, site.feed_id, t.title, t.slug,
           pg_temp.mkurl(site.host, s.g, s.published_at, t.slug) AS url,
           txt.paras, txt.first,
           upper(left(ld.lead, 1)) || substr(ld.lead, 2) || '.' AS lead,
           pg_temp.u(s.story, 8) AS ulang
    FROM s
    JOIN bench_sites site ON site.n = pg_temp.site_n(s.g)
    JOIN bench_titles t ON t.id = pg_temp.title_n(s.story)
    CROSS JOIN LATERAL (
        SELECT string_agg(p.body, E'\\n\\n' ORDER BY i) AS paras,
               min(p.body) FILTER (WHERE i = 1) AS first
        FROM generate_series(1, CASE WHEN pg_temp.u(s.body, 3) < %(long_fraction)s
                                     THEN 4 + floor(pg_temp.u(s.body, 4) * 4)
                                     ELSE 1 + floor(pg_temp.u(s.body, 4) * 2) END::integer) AS i
        JOIN bench_paras p ON p.id = floor(%(paragraphs)s * pg_temp.u(
            CASE WHEN s.copy = 1 AND i = 1 THEN s.g ELSE s.body END, 10 + i))::integer
    ) txt
    CROSS JOIN LATERAL (
        SELECT string_agg(w.w, ' ' ORDER BY i) AS lead
        FROM generate_series(1, 10 + floor(pg_temp.u(s.story, 99) * 12)::integer) AS i
        JOIN bench_words w ON w.id = floor(%(n_words)s * pg_temp.u(s.story, 100 + i))::integer
    ) ld
), ins AS (
    INSERT INTO ingest.articles (
        url, original_url, feed_id, guid, site, title, text, author, published_at,
        published_source, modified_at, language, image_url, summary, content_hash, text_source,
        extraction_error, fetched_at, duplicate_of, minhash, lsh_bands)
    SELECT
        url,
        CASE WHEN pg_temp.u(g, 18) < 0.3 THEN url || '?utm_medium=rss&utm_source=feed'
             ELSE url END,
        feed_id, url, site, title,
        lead || E'\\n\\n' || paras,
        CASE WHEN pg_temp.u(story, 9) < 0.2 THEN NULL
             ELSE (SELECT a.a FROM bench_authors a
                   WHERE a.id = floor(%(n_authors)s * pg_temp.u(story, 15))::integer) END,
        published_at,
        CASE WHEN pg_temp.u(g, 20) < 0.9 THEN 'feed'
             WHEN pg_temp.u(g, 20) < 0.98 THEN 'page' ELSE 'first_seen' END,
        CASE WHEN pg_temp.u(g, 21) < 0.1 THEN published_at + interval '2 hours' END,
        CASE WHEN ulang < 0.80 THEN 'en' WHEN ulang < 0.87 THEN 'de' WHEN ulang < 0.93 THEN 'fr'
             WHEN ulang < 0.97 THEN 'es' ELSE 'it' END,
        CASE WHEN pg_temp.u(g, 16) < 0.6 THEN 'https://cdn.' || site || '/images/' || g || '.jpg'
             END,
        CASE WHEN pg_temp.u(g, 17) < 0.7 THEN left(first, 240) END,
        sha256(int8send(CASE WHEN copy = 1 THEN g ELSE story END) || '\\x01'::bytea),
        CASE WHEN pg_temp.u(g, 12) < 0.07 THEN 'feed' ELSE 'page' END,
        CASE WHEN pg_temp.u(g, 12) < 0.07 THEN (ARRAY['HTTP 404', 'robots.txt: disallowed',
             'not an HTML page: application/pdf', 'no text extracted'])[1 + g %% 4] END,
        published_at + interval '1 minute' * (5 + 55 * pg_temp.u(g, 19)),
        CASE WHEN copy > 0 THEN (
            SELECT COALESCE(a.duplicate_of, a.id)
            FROM bench_sites s0, bench_titles t0, ingest.articles a
            WHERE s0.n = pg_temp.site_n(g0) AND t0.id = pg_temp.title_n(g0)
              AND a.url_hash = ingest.url_hash(pg_temp.mkurl(
                      s0.host, g0, pg_temp.pub(g0, %(n_max)s, %(t_end)s), t0.slug))) END,
        (SELECT string_agg(sha512(int8send(CASE WHEN copy = 2 THEN g0 ELSE g END * 8 + k)),
                           ''::bytea ORDER BY k)
         FROM generate_series(0, 7) k),
        (SELECT array_agg(hashint8extended(
                    CASE WHEN copy = 2 OR (copy = 1 AND pg_temp.u(g, 300 + b)
                                           < 0.3 + 0.5 * pg_temp.u(g, 13))
                         THEN g0 ELSE g END, b) ORDER BY b)
         FROM generate_series(0, 31) b)
    FROM rows
    RETURNING id, url, site, feed_id, fetched_at
), urls AS (
    INSERT INTO ingest.article_urls (url_hash, article_id)
    SELECT ingest.url_hash(u), id
    FROM ins, unnest(CASE WHEN id %% 6 = 0 THEN ARRAY[url, 'https://' || site || '/?p=' || id]
                          ELSE ARRAY[url] END) AS u
)
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, first_seen_at)
SELECT feed_id, sha256(convert_to('guid:' || url, 'UTF8')), id, fetched_at FROM ins
"""


@dataclass
class GenState:
    generated: int
    n_max: int
    t_end: datetime
    sites: int


@dataclass
class Site:
    n: int
    host: str
    feed_id: int


def site_host(n: int) -> str:
    return f"{'www.' if n % 10 < 7 else 'news.'}site{n}.example"


def count_articles(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM ingest.articles").fetchone()
    return int(row[0]) if row else 0


def load_state(conn: psycopg.Connection[Any]) -> GenState | None:
    row = conn.execute(
        "SELECT generated, n_max, t_end, sites FROM public.growth_bench_state"
    ).fetchone()
    return GenState(int(row[0]), int(row[1]), row[2], int(row[3])) if row else None


def load_sites(conn: psycopg.Connection[Any], n_sites: int) -> list[Site]:
    sites = []
    for n in range(n_sites):
        url = canonical_url(f"https://{site_host(n)}/feed/")
        row = conn.execute("SELECT id FROM news.feeds WHERE url = %s", (url,)).fetchone()
        if row is None:
            raise RuntimeError(f"feed {url} missing: not a database set up by this bench")
        sites.append(Site(n, site_host(n), int(row[0])))
    return sites


class Generator:
    """Adds generated rows on one session (its temp tables hold the text pools)."""

    def __init__(self, dsn: str, state: GenState, sites: list[Site], maker: TextMaker) -> None:
        self.state = state
        self.n_words = len(maker.words)
        self.authors = [f"{a} {b}" for a in FIRST for b in LAST]
        self.conn = psycopg.connect(dsn, autocommit=True)
        row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        self.backend_pid = int(row[0]) if row else 0
        # Each chunk is a new statement: JIT compiling it costs about a second and saves nothing.
        self.conn.execute("SET jit = off")
        params = {
            "span": SPAN_DAYS,
            "sites": len(sites),
            "titles": TITLES,
            "sections": list(SECTIONS),
            "n_sections": len(SECTIONS),
        }
        self._setup_temp(params)
        with self.conn.cursor() as cur:
            with cur.copy("COPY bench_paras (id, body) FROM STDIN") as copy:
                for i in range(PARAGRAPHS):
                    copy.write_row((i, maker.paragraph(maker.rng.randint(30, 110))))
            with cur.copy("COPY bench_titles (id, title, slug) FROM STDIN") as copy:
                for i in range(TITLES):
                    title = maker.title()
                    copy.write_row((i, title, slug(title)))
            with cur.copy("COPY bench_sites (n, host, site, feed_id) FROM STDIN") as copy:
                for s in sites:
                    copy.write_row((s.n, s.host, s.host.removeprefix("www."), s.feed_id))
            with cur.copy("COPY bench_words (id, w) FROM STDIN") as copy:
                for i, w in enumerate(maker.words):
                    copy.write_row((i, w))
            with cur.copy("COPY bench_authors (id, a) FROM STDIN") as copy:
                for i, a in enumerate(self.authors):
                    copy.write_row((i, a))
        self.conn.execute(
            "ANALYZE bench_paras, bench_titles, bench_sites, bench_words, bench_authors"
        )

    def _setup_temp(self, params: dict[str, Any]) -> None:
        # Constants go into the function bodies as literals (DDL takes no parameters).
        text = TEMP_SQL
        for name, value in params.items():
            literal = sql.Literal(value).as_string(self.conn)
            text = text.replace(f"%({name})s", literal)
        self.conn.execute(text.encode())

    def close(self) -> None:
        self.conn.close()

    def backend_cpu(self) -> float | None:
        """User+system CPU seconds of this session's server process, when the server runs on
        this machine (None otherwise): the load-independent cost of generating."""
        try:
            stat = Path(f"/proc/{self.backend_pid}/stat").read_text()
        except OSError:
            return None
        if "postgres" not in stat[: stat.rfind(")") + 1]:
            return None
        fields = stat[stat.rfind(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def chunk(self, lo: int, hi: int, long_fraction: float) -> None:
        with self.conn.transaction():
            self.conn.execute(
                GENERATE_SQL,
                {
                    "lo": lo,
                    "hi": hi,
                    "n_max": self.state.n_max,
                    "t_end": self.state.t_end,
                    "copy_rate": 0.05,
                    "exact_rate": 0.02,
                    "long_fraction": long_fraction,
                    "paragraphs": PARAGRAPHS,
                    "n_words": self.n_words,
                    "n_authors": len(self.authors),
                },
                prepare=False,
            )
            self.conn.execute("UPDATE public.growth_bench_state SET generated = %s", (hi,))
        self.state.generated = hi

    def grow_to(self, target: int, long_fraction: float, chunk: int = CHUNK) -> dict[str, Any]:
        """Add rows until ingest.articles holds `target`; progress on stderr."""
        have = count_articles(self.conn)
        todo = target - have
        started = time.perf_counter()
        cpu_start = self.backend_cpu()
        cpu = ""
        done = 0
        while done < todo:
            n = min(chunk, todo - done)
            lo = self.state.generated + 1
            t0 = time.perf_counter()
            self.chunk(lo, lo + n - 1, long_fraction)
            done += n
            elapsed = time.perf_counter() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (todo - done) / rate if rate > 0 else 0.0
            now_cpu = self.backend_cpu()
            if cpu_start is not None and now_cpu is not None:
                cpu = f", server CPU {1000 * (now_cpu - cpu_start) / done:.2f} ms/row"
            print(
                f"generate: {have + done:>9,}/{target:,} rows ({100 * done / todo:5.1f} % of "
                f"{todo:,} new), chunk of {n:,} in {time.perf_counter() - t0:5.1f} s, "
                f"{rate:6.0f} rows/s{cpu}, ETA {eta / 60:4.1f} min",
                file=sys.stderr,
                flush=True,
            )
        seconds = time.perf_counter() - started
        end_cpu = self.backend_cpu()
        cpu_s = end_cpu - cpu_start if end_cpu is not None and cpu_start is not None else None
        return {
            "rows": max(todo, 0),
            "seconds": round(seconds, 1),
            "server_cpu_seconds": None if cpu_s is None else round(cpu_s, 1),
        }

    def fill_pending(self, index: str, fraction: float, long_fraction: float) -> int:
        """Add rows in small chunks until `index`'s pending list holds `fraction` of
        gin_pending_list_limit; returns the rows added."""
        limit_kb = gin_limit_kb(self.conn)
        added = 0
        for _ in range(500):
            pages, _tuples = pending(self.conn, index)
            if pages * 8 >= fraction * limit_kb:
                break
            lo = self.state.generated + 1
            self.chunk(lo, lo + 99, long_fraction)
            added += 100
        return added


def gin_limit_kb(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT setting::int FROM pg_settings WHERE name = 'gin_pending_list_limit'"
    ).fetchone()
    return int(row[0]) if row else 4096


def gin_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """The GIN indexes on ingest.articles (schema-qualified): their inserts go to a pending
    list first."""
    rows = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
        " WHERE i.indrelid = 'ingest.articles'::regclass AND am.amname = 'gin' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def pending(conn: psycopg.Connection[Any], index: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT pending_pages, pending_tuples FROM pgstatginindex(%s::regclass)", (index,)
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def setup_database(dsn: str, n_max: int, n_sites: int) -> None:
    asyncio.run(migrate(dsn))
    asyncio.run(_add_feeds(dsn, n_sites))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        conn.execute(SETUP_SQL)
        conn.execute(
            "INSERT INTO public.growth_bench_state VALUES (0, %s, %s, %s)",
            (max(n_max, 1), datetime.now(UTC), n_sites),
        )


async def _add_feeds(dsn: str, n_sites: int) -> None:
    pool = await open_pool(dsn, max_size=2)
    try:
        store = Store(pool)
        for n in range(n_sites):
            await store.add_feed(canonical_url(f"https://{site_host(n)}/feed/"), f"Site {n}")
    finally:
        await pool.close()


def vacuum(dsn: str) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Every table, as autovacuum would: migrations may add tables a stored article writes.
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - t0


# --- measuring ---------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation between order statistics."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": pct(values, 0.95),
        "max": max(values),
        "min": min(values),
    }


@dataclass
class SizeResult:
    size: int
    rows_before: int = 0
    rows_after: int = 0
    lookup_ms: list[float] = field(default_factory=list)
    """(a) per new article, one value per batch."""
    lookup_entry_ms: list[float] = field(default_factory=list)
    neardup_ms: list[float] = field(default_factory=list)
    """(b) one value per query."""
    neardup_hits: int = 0
    store_ms: list[float] = field(default_factory=list)
    """(c) per article, one value per batch."""
    store_batch_ms: list[float] = field(default_factory=list)
    gin_merge_ms: dict[str, float] = field(default_factory=dict)
    gin_pending: dict[str, list[int]] = field(default_factory=dict)
    gin_merge_per_article: float = 0.0
    stored: int = 0
    planted: int = 0
    flagged: int = 0
    plan_mismatches: list[str] = field(default_factory=list)
    prepared: list[dict[str, Any]] = field(default_factory=list)
    generation: dict[str, Any] = field(default_factory=dict)
    vacuum_s: float = 0.0
    sizes_mb: dict[str, float] = field(default_factory=dict)
    pending_probes: list[dict[str, Any]] = field(default_factory=list)
    reps_done: int = 0
    neardup_gin: list[str] | None = None
    """GIN indexes the near-dup query's plan reads (largest size only)."""


@dataclass
class Planted:
    """Texts of articles this bench stored, to make copies of."""

    texts: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if len(self.texts) < 5000:
            self.texts.append(text)


class Measurer:
    def __init__(
        self, store: Store, sites: list[Site], maker: TextMaker, planted: Planted, run_id: str
    ) -> None:
        self.store = store
        self.sites = sites
        self.maker = maker
        self.rng = maker.rng
        self.planted = planted
        self.run_id = run_id
        self.counter = 0

    def pick_site(self) -> Site:
        # The same skew as the generated rows: big sites poll big feeds.
        return self.sites[int(len(self.sites) * self.rng.random() ** 2)]

    def new_url(self, site: Site, title: str) -> str:
        self.counter += 1
        now = datetime.now(UTC)
        return (
            f"https://{site.host}/{self.rng.choice(SECTIONS)}/{now:%Y/%m/%d}/"
            f"{slug(title)}-n{self.run_id}{self.counter}"
        )

    async def existing_entries(self, feed_id: int, limit: int) -> list[str]:
        rows = await self._rows(
            "SELECT a.url FROM ingest.feed_entries fe JOIN ingest.articles a"
            " ON a.id = fe.article_id WHERE fe.feed_id = %s"
            " ORDER BY fe.first_seen_at DESC LIMIT %s",
            (feed_id, limit),
        )
        return [str(r[0]) for r in rows]

    async def other_urls(self, feed_id: int, n: int) -> list[str]:
        row = (await self._rows("SELECT min(id), max(id) FROM ingest.articles", ()))[0]
        if row[0] is None:
            return []
        urls = []
        for _ in range(n):
            pick = self.rng.randint(int(row[0]), int(row[1]))
            found = await self._rows(
                "SELECT url FROM ingest.articles WHERE id >= %s AND feed_id IS DISTINCT FROM %s"
                " ORDER BY id LIMIT 1",
                (pick, feed_id),
            )
            if found:
                urls.append(str(found[0][0]))
        return urls

    async def _rows(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.store.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def batch(self, result: SizeResult | None, size: int) -> None:
        """One feed document: lookup of its entries (a), then store of its new articles (c)."""
        site = self.pick_site()
        now = datetime.now(UTC)
        new: list[ParsedEntry] = []
        texts: dict[str, tuple[str, str]] = {}
        for i in range(size):
            title = self.maker.title()
            url = self.new_url(site, title)
            if self.planted.texts and i < 2:
                kind, text = "near", self.maker.edit(self.rng.choice(self.planted.texts))
            elif self.planted.texts and i == 2:
                kind, text = "exact", self.rng.choice(self.planted.texts)
            else:
                kind, text = "fresh", self.maker.text(self.rng.randint(150, 600))
            texts[url] = (kind, clean_text(text))
            new.append(
                ParsedEntry(
                    guid=url,
                    link=url,
                    title=title,
                    author=self.rng.choice(FIRST) + " " + self.rng.choice(LAST),
                    published_at=now - timedelta(minutes=self.rng.randint(1, 600)),
                    summary=text[:200],
                )
            )
        old = [ParsedEntry(guid=u, link=u) for u in await self.existing_entries(site.feed_id, size)]
        cross = [ParsedEntry(guid=u, link=u) for u in await self.other_urls(site.feed_id, 2)]
        entries = new + old + cross
        self.rng.shuffle(entries)
        fingerprints = {u: fingerprint(t) for u, (_, t) in texts.items()}

        # (a) the plan step's lookups, as Pipeline._ingest_entries does them.
        found, invalid = dedup.candidates(entries)
        t0 = time.perf_counter()
        done, attempts = await self.store.known_entries(site.feed_id, [c.key for c in found])
        fresh = [c for c in found if c.key not in done]
        known = await self.store.known_urls([c.link for c in fresh]) if fresh else {}
        lookup = time.perf_counter() - t0
        plan = dedup.plan(
            found, known_entries=done, known_urls=known, attempts=attempts, invalid=invalid
        )

        items: list[tuple[Article, bytes | None]] = []
        for c in plan.fetch:
            if c.link not in texts:
                continue
            kind, text = texts[c.link]
            article = build_article(
                c.entry,
                entry_url=c.entry.link or c.link,
                final_url=c.link,
                extracted=Extracted(text, PageMetadata(), fingerprints[c.link]),
                extraction_error=None,
                now=now,
            )
            items.append((article, c.key))
        # (c) the store of the batch: one transaction.
        t0 = time.perf_counter()
        counts = await self.store.store_articles(site.feed_id, items)
        stored = time.perf_counter() - t0
        for kind, text in texts.values():
            if kind == "fresh":
                self.planted.add(text)
        if result is None:
            return
        unexpected = len(plan.fetch) != size or len(plan.link) != len(cross)
        if unexpected:
            result.plan_mismatches.append(
                f"feed {site.feed_id}: fetch {len(plan.fetch)} (expected {size}), link "
                f"{len(plan.link)} (expected {len(cross)}), skipped {plan.skipped}"
            )
        result.lookup_ms.append(1000 * lookup / max(len(items), 1))
        result.lookup_entry_ms.append(1000 * lookup / max(len(found), 1))
        result.store_ms.append(1000 * stored / max(len(items), 1))
        result.store_batch_ms.append(1000 * stored)
        result.stored += counts.new
        result.planted += sum(1 for k, _ in texts.values() if k != "fresh")
        result.flagged += counts.duplicates

    async def neardup_queries(
        self, result: SizeResult | None, k: int, deadline: float = float("inf")
    ) -> None:
        """(b) the candidate query alone, as the store issues it, k times (fewer, but at least
        5, once `deadline` on the perf_counter clock has passed)."""
        query = queries()["near_duplicate_candidates"]
        probes = []
        for i in range(k):
            if self.planted.texts and i % 10 == 0:
                text = self.maker.edit(self.rng.choice(self.planted.texts))
            else:
                text = self.maker.text(self.rng.randint(150, 600))
            fp = fingerprint(clean_text(text))
            if fp is not None:
                site = self.pick_site()
                probes.append({"bands": list(fp.bands), "url": self.new_url(site, "probe")})
        async with self.store.pool.connection() as conn:
            for n, params in enumerate(probes):
                if n >= 5 and time.perf_counter() > deadline:
                    break
                t0 = time.perf_counter()
                cur = await conn.execute(query, params)
                rows = await cur.fetchall()
                ms = 1000 * (time.perf_counter() - t0)
                if result is not None:
                    result.neardup_ms.append(ms)
                    result.neardup_hits += bool(rows)

    async def prepared_stats(self) -> list[dict[str, Any]]:
        """What the server did with the statements psycopg prepared: how many generic and
        custom plans the near-duplicate query got on each pool connection."""
        out: dict[int, dict[str, Any]] = {}
        for _ in range(4):
            async with self.store.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT pg_backend_pid(), generic_plans, custom_plans"
                    " FROM pg_prepared_statements WHERE statement LIKE %s",
                    ("%lsh_bands &&%",),
                )
                for r in await cur.fetchall():
                    out[int(r[0])] = {"generic": int(r[1]), "custom": int(r[2])}
        return list(out.values())


async def measure_size(
    dsn: str,
    result: SizeResult,
    sites: list[Site],
    maker: TextMaker,
    planted: Planted,
    args: argparse.Namespace,
    run_id: str,
) -> None:
    pool = await open_pool(dsn, max_size=2)
    try:
        m = Measurer(Store(pool), sites, maker, planted, run_id)
        started = time.perf_counter()
        deadline = started + args.budget
        await m.batch(None, args.batch)  # warm-up: caches, prepared statements
        await m.neardup_queries(None, 10, deadline)
        per_rep = max(1, args.lookups // args.reps)
        for rep in range(args.reps):
            for _ in range(args.batches):
                await m.batch(result, args.batch)
            await m.neardup_queries(result, per_rep, deadline)
            result.reps_done = rep + 1
            elapsed = time.perf_counter() - started
            print(
                f"measure {result.size:,}: rep {rep + 1}/{args.reps} ({elapsed:.0f} s): store "
                f"{statistics.median(result.store_ms[-args.batches :]):.2f} ms/article, "
                f"near-dup query {statistics.median(result.neardup_ms[-per_rep:]):.2f} ms",
                file=sys.stderr,
                flush=True,
            )
            # Another repetition would end past the budget: stop (slow sizes get fewer samples).
            if rep + 1 < args.reps and elapsed * (rep + 2) / (rep + 1) > args.budget:
                print(
                    f"measure {result.size:,}: stopping after {rep + 1} repetition(s): "
                    f"--budget {args.budget:.0f} s",
                    file=sys.stderr,
                )
                break
        result.prepared = await m.prepared_stats()
    finally:
        await pool.close()


async def neardup_probe(
    dsn: str,
    sites: list[Site],
    maker: TextMaker,
    planted: Planted,
    k: int,
    run_id: str,
    budget: float,
) -> list[float]:
    pool = await open_pool(dsn, max_size=2)
    try:
        m = Measurer(Store(pool), sites, maker, planted, run_id)
        deadline = time.perf_counter() + budget
        await m.neardup_queries(None, 5, deadline)
        probe = SizeResult(-1)
        await m.neardup_queries(probe, k, deadline)
        return probe.neardup_ms
    finally:
        await pool.close()


def gin_merge(dsn: str, result: SizeResult) -> None:
    """(d) merge the GIN pending lists now, each divided by the articles it held (those stored
    at this size, the warm-up batch included: VACUUM emptied the lists before)."""
    total = 0.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for index in gin_indexes(conn):
            pages, tuples = pending(conn, index)
            t0 = time.perf_counter()
            conn.execute("SELECT gin_clean_pending_list(%s::regclass)", (index,))
            ms = 1000 * (time.perf_counter() - t0)
            short = index.split(".")[-1]
            result.gin_merge_ms[short] = round(ms, 2)
            result.gin_pending[short] = [pages, tuples]
            total += ms / max(tuples, 1)
    result.gin_merge_per_article = total


def db_sizes(dsn: str) -> dict[str, float]:
    """MB: the database, the articles table and its indexes (each GIN index too), and the other
    tables a stored article writes to (with their indexes)."""
    out: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        parts = [
            ("database", "pg_database_size(current_database())"),
            ("articles_table", "pg_table_size('ingest.articles')"),
            ("articles_indexes", "pg_indexes_size('ingest.articles')"),
        ]
        for index in gin_indexes(conn):
            parts.append((index.split(".")[-1], f"pg_relation_size('{index}')"))
        for table in ("article_bands", "article_urls", "feed_entries", "article_changes"):
            parts.append(
                (table, f"COALESCE(pg_total_relation_size(to_regclass('ingest.{table}')), 0)")
            )
        for name, expr in parts:
            row = conn.execute(f"SELECT {expr}".encode()).fetchone()
            if row is not None and (row[0] or name != "article_bands"):
                out[name] = round(int(row[0]) / 1024**2, 1)
    return out


# --- plans -------------------------------------------------------------------------------------


def plan_line(node: dict[str, Any]) -> str:
    name = str(node.get("Node Type"))
    if node.get("Index Name"):
        name += f" using {node['Index Name']}"
    elif node.get("Relation Name"):
        name += f" on {node['Relation Name']}"
    elif node.get("Function Name"):
        name += f" {node['Function Name']}()"
    kids = node.get("Plans") or []
    if not kids:
        return name
    if len(kids) == 1:
        return f"{name} > {plan_line(kids[0])}"
    return f"{name} > [" + "; ".join(plan_line(k) for k in kids) + "]"


def scan_warnings(node: dict[str, Any]) -> list[str]:
    """Sequential scans, and scans that read many rows only to drop them (an index used for
    its order, not to find the rows)."""
    found = []
    removed = int(node.get("Rows Removed by Filter") or 0) * int(node.get("Actual Loops") or 1)
    if node.get("Node Type") == "Seq Scan":
        found.append(
            f"sequential scan of {node.get('Relation Name')} ({removed:,} rows read and dropped)"
        )
    elif removed > 1000:
        where = node.get("Index Name") or node.get("Relation Name")
        found.append(
            f"{node.get('Node Type')} using {where} read {removed:,} rows and dropped them by"
            f" filter ({str(node.get('Filter', ''))[:120]})"
        )
    for kid in node.get("Plans") or []:
        found += scan_warnings(kid)
    return found


def plan_indexes(node: dict[str, Any]) -> list[str]:
    found = [str(node["Index Name"])] if node.get("Index Name") else []
    for kid in node.get("Plans") or []:
        found += plan_indexes(kid)
    return found


def summarize_plan(raw: Any) -> dict[str, Any]:
    top = raw[0] if isinstance(raw, list) else raw
    plan = top["Plan"]
    triggers = [
        f"{t.get('Trigger Name')} {t.get('Time', 0):.2f} ms" for t in top.get("Triggers") or []
    ]
    return {
        "plan": plan_line(plan),
        "execution_ms": top.get("Execution Time"),
        "planning_ms": top.get("Planning Time"),
        "rows": plan.get("Actual Rows"),
        "shared_hit": plan.get("Shared Hit Blocks"),
        "shared_read": plan.get("Shared Read Blocks"),
        "warnings": scan_warnings(plan),
        "indexes": plan_indexes(plan),
        "triggers": triggers,
    }


def explain_all(dsn: str, maker: TextMaker, planted: Planted, sites: list[Site]) -> dict[str, Any]:
    q = queries()
    rng = maker.rng
    fresh = fingerprint(clean_text(maker.text(400)))
    near = fingerprint(clean_text(maker.edit(rng.choice(planted.texts)))) if planted.texts else None
    assert fresh is not None
    site = sites[0]
    url = f"https://{site.host}/news/explain-{rng.randrange(10**9)}"
    out: dict[str, Any] = {}
    explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
    with psycopg.connect(dsn, autocommit=True) as conn:
        nd = q["near_duplicate_candidates"]
        for label, fp in (("fresh", fresh), ("copy", near)):
            if fp is None:
                continue
            row = conn.execute(explain + nd, {"bands": list(fp.bands), "url": url}).fetchone()
            assert row is not None
            out[f"near-dup candidates, custom plan, {label} fingerprint"] = summarize_plan(row[0])
        assert NEARDUP_PLAN in out
        # The generic plan a prepared statement can switch to after five custom ones.
        order: dict[str, int] = {}
        text = re.sub(
            r"%\((\w+)\)s", lambda m: f"${order.setdefault(m.group(1), len(order) + 1)}", nd
        )
        types = {"bands": "bigint[]", "url": "text"}
        conn.execute(f"PREPARE growth_nd ({', '.join(types[n] for n in order)}) AS {text}".encode())
        conn.execute("SET plan_cache_mode = force_generic_plan")
        values = {"bands": list(fresh.bands), "url": url}
        args = sql.SQL(", ").join(sql.Literal(values[n]) for n in order)
        row = conn.execute(
            sql.SQL(explain + "EXECUTE growth_nd ({})").format(args).as_string(conn).encode()
        ).fetchone()
        assert row is not None
        out["near-dup candidates, generic plan, fresh fingerprint"] = summarize_plan(row[0])
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE growth_nd")

        feed_rows = conn.execute(
            "SELECT a.url FROM ingest.feed_entries fe JOIN ingest.articles a"
            " ON a.id = fe.article_id WHERE fe.feed_id = %s LIMIT 20",
            (site.feed_id,),
        ).fetchall()
        urls = [str(r[0]) for r in feed_rows] + [
            f"https://{site.host}/news/new-{rng.randrange(10**9)}" for _ in range(20)
        ]
        entries = [ParsedEntry(guid=u, link=u) for u in urls]
        found, _ = dedup.candidates(entries)
        row = conn.execute(explain + q["known_urls"], {"urls": [c.link for c in found]}).fetchone()
        assert row is not None
        out["known_urls (40 URLs, 20 stored)"] = summarize_plan(row[0])
        row = conn.execute(
            explain + q["known_entries"],
            {"feed_id": site.feed_id, "hashes": [c.key for c in found]},
        ).fetchone()
        assert row is not None
        out["known_entries (40 entries, 20 stored)"] = summarize_plan(row[0])

        # One insert as the store issues it, rolled back.
        text_body = clean_text(maker.text(400))
        entry = ParsedEntry(guid=urls[-1], link=urls[-1], title=maker.title())
        article = build_article(
            entry,
            entry_url=urls[-1],
            final_url=urls[-1],
            extracted=Extracted(text_body, PageMetadata(), fingerprint(text_body)),
            extraction_error=None,
            now=datetime.now(UTC),
        )
        params = _article_params(article, site.feed_id)
        with contextlib.suppress(_Rollback), conn.transaction():
            row = conn.execute(explain + q["insert_article"], params).fetchone()
            assert row is not None
            out["insert_article (rolled back)"] = summarize_plan(row[0])
            raise _Rollback
    return out


class _Rollback(Exception):
    pass


# --- report ------------------------------------------------------------------------------------


def machine(admin_dsn: str) -> dict[str, Any]:
    """bench/ingest_bench.py's machine facts, plus psycopg and the PostgreSQL settings that
    bear on growth."""
    info = base_machine()
    info["psycopg"] = psycopg.__version__
    with psycopg.connect(admin_dsn, connect_timeout=10) as conn:
        settings = (
            "server_version", "shared_buffers", "effective_cache_size", "work_mem",
            "maintenance_work_mem", "max_wal_size", "synchronous_commit",
            "gin_pending_list_limit", "random_page_cost", "jit",
        )  # fmt: skip
        for name in settings:
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            info[f"pg_{name}"] = str(row[0]) if row else "?"
    return info


def fmt(v: float | None, width: int = 6, digits: int = 2) -> str:
    if v is None or v != v:
        return f"{'-':>{width}}"
    return f"{v:{width}.{digits}f}"


def medians(r: SizeResult) -> dict[str, float]:
    a = statistics.median(r.lookup_ms) if r.lookup_ms else float("nan")
    b = statistics.median(r.neardup_ms) if r.neardup_ms else float("nan")
    c = statistics.median(r.store_ms) if r.store_ms else float("nan")
    d = r.gin_merge_per_article
    return {"lookup": a, "neardup": b, "store": c, "gin": d, "total": a + c + d}


def report(results: list[SizeResult]) -> str:
    lines = [
        "",
        "ms per new article (median / p95 over batches of the size; near-dup: over queries)",
        f"{'size':>9} {'rows':>9} | {'(a) lookup':^13} | {'(b) near-dup query':^20} | "
        f"{'(c) store':^13} | {'(d) GIN':>7} | {'total':>6} | dups",
        f"{'':>9} {'at start':>9} | {'med':>6} {'p95':>6} | {'med':>6} {'p95':>6} {'max':>6} | "
        f"{'med':>6} {'p95':>6} | {'merge':>7} | {'a+c+d':>6} | found/planted",
    ]
    for r in results:
        m = medians(r)
        lines.append(
            f"{r.size:>9,} {r.rows_before:>9,} | {fmt(m['lookup'])} {fmt(pct(r.lookup_ms, 0.95))}"
            f" | {fmt(m['neardup'])} {fmt(pct(r.neardup_ms, 0.95))} "
            f"{fmt(max(r.neardup_ms) if r.neardup_ms else None)} | {fmt(m['store'])} "
            f"{fmt(pct(r.store_ms, 0.95))} | {fmt(m['gin'], 7, 3)} | {fmt(m['total'])} | "
            f"{r.flagged}/{r.planted}"
        )
    biggest = results[-1]
    if biggest.neardup_ms:
        median = statistics.median(biggest.neardup_ms)
        verdict = "under" if median < NEARDUP_TARGET_MS else "ABOVE"
        lines.append(
            f"near-dup query at {biggest.size:,}: median {median:.2f} ms, p95 "
            f"{pct(biggest.neardup_ms, 0.95):.2f} ms: {verdict} the {NEARDUP_TARGET_MS:.0f} ms "
            "target (printed, not asserted)"
        )
    base = next((r for r in results if r.size == min(x.size for x in results)), None)
    if base is not None and len(results) > 1:
        b = medians(base)
        lines += [
            "",
            f"ratio of medians to the {base.size:,} row",
            f"{'size':>9} | {'lookup':>7} {'near-dup':>8} {'store':>7} {'GIN':>7} {'total':>7}",
        ]
        for r in results:
            m = medians(r)

            def ratio(key: str, m: dict[str, float] = m) -> str:
                return f"{m[key] / b[key]:7.2f}" if b[key] > 0 else f"{'-':>7}"

            lines.append(
                f"{r.size:>9,} | {ratio('lookup')} {ratio('neardup'):>8} {ratio('store')} "
                f"{ratio('gin')} {ratio('total')}"
            )
    lines.append("")
    for r in results:
        batch = statistics.median(r.store_batch_ms) if r.store_batch_ms else float("nan")
        lines.append(
            f"size {r.size:,}: {r.reps_done} rep(s), {len(r.store_ms)} batches, store_articles"
            f" of one batch (one transaction) median {batch:.1f} ms; near-dup queries "
            f"{len(r.neardup_ms)}, "
            f"{r.neardup_hits} with candidates; lookup per entry looked up median "
            f"{statistics.median(r.lookup_entry_ms) if r.lookup_entry_ms else float('nan'):.3f}"
            f" ms; GIN merge {r.gin_merge_ms} ms for pending [pages, tuples] {r.gin_pending}"
        )
        if r.prepared:
            lines.append(f"    near-dup statement prepared by psycopg: {r.prepared}")
        if r.generation:
            cpu = r.generation.get("server_cpu_seconds")
            lines.append(
                f"    generated {r.generation.get('rows', 0):,} rows in "
                f"{r.generation.get('seconds', 0):.0f} s"
                + (f" (server CPU {cpu:.0f} s)" if cpu is not None else "")
                + f", VACUUM (ANALYZE) {r.vacuum_s:.0f} s"
            )
        if r.sizes_mb:
            lines.append(f"    sizes MB: {r.sizes_mb}")
        for msg in r.plan_mismatches[:3]:
            lines.append(f"    unexpected plan: {msg}")
        for p in r.pending_probes:
            lines.append(
                f"    {p['index']} pending list filled to {p['pending_pages']} pages "
                f"({p['fill_percent']:.0f} % of gin_pending_list_limit; {p['pending_rows']:,} "
                f"rows, {p['rows_added']:,} generated for it): merging it took "
                f"{p['merge_ms']:.0f} ms = {p['merge_ms_per_row']:.3f} ms per article"
            )
            if p.get("n"):
                lines.append(
                    f"        near-dup query meanwhile (it reads this index): median "
                    f"{p['median']:.2f} ms, p95 {p['p95']:.2f} ms, max {p['max']:.2f} ms over "
                    f"{p['n']} queries"
                )
        if r.neardup_gin is not None and not r.neardup_gin:
            lines.append(
                "    the near-dup query reads no GIN index (see its plan): no pending list to "
                "probe for it"
            )
    return "\n".join(lines)


def report_plans(plans: dict[str, Any], size: int) -> str:
    lines = ["", f"plans at {size:,} articles (EXPLAIN ANALYZE, BUFFERS)"]
    for name, p in plans.items():
        lines.append(
            f"  {name}: {p['execution_ms']:.3f} ms (planning {p['planning_ms']:.3f} ms), "
            f"{p['rows']} rows, buffers hit {p['shared_hit']} read {p['shared_read']}"
        )
        lines.append(f"      {p['plan']}")
        if p["triggers"]:
            lines.append(f"      triggers: {', '.join(p['triggers'])}")
        for warning in p["warnings"]:
            lines.append(f"      WARNING: {warning}")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="growth_bench.py",
        description="Cost per new article as the database grows (URL lookup, near-duplicate "
        "candidate lookup, inserts).",
    )
    p.add_argument(
        "--sizes", default=None, help="comma-separated article counts (default 0,100000,1000000)"
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: sizes 0,10000,50000 and fewer repetitions"
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions per size (default 5)")
    p.add_argument("--batches", type=int, default=4, help="batches per repetition (default 4)")
    p.add_argument("--batch", type=int, default=20, help="new articles per batch (default 20)")
    p.add_argument(
        "--lookups", type=int, default=None, help="near-dup queries per size (default 250)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=600,
        help="seconds of measuring per size after which no new repetition starts and the"
        " near-dup queries stop (at least one repetition and 5 queries; default 600)",
    )
    p.add_argument(
        "--long-fraction",
        type=float,
        default=0.25,
        help="share of generated rows with 250-500 words (default 0.25)",
    )
    p.add_argument("--sites", type=int, default=SITES, help=f"sites/feeds (default {SITES})")
    p.add_argument("--seed", type=int, default=7, help="random seed for the texts (default 7)")
    p.add_argument("--admin-url", default=ADMIN_DSN_DEFAULT, help="PostgreSQL admin DSN")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    p.add_argument("--keep", action="store_true", help="do not drop the database; print its DSN")
    p.add_argument(
        "--reuse",
        metavar="DSN",
        help="measure an ingest_bench_* database kept by an earlier --keep run (generating only"
        " what is missing); it is never dropped",
    )
    p.add_argument(
        "--no-pending-probe",
        action="store_true",
        help="at the largest size, do not fill each GIN pending list to 85 %% and time its"
        " merge (and the near-dup query meanwhile, when it reads that index)",
    )
    args = p.parse_args(argv)
    raw = args.sizes or ",".join(str(s) for s in (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    try:
        args.sizes = sorted({int(s.replace("_", "")) for s in raw.split(",") if s.strip()})
    except ValueError:
        p.error("--sizes takes comma-separated integers")
    if not args.sizes or args.sizes[0] < 0:
        p.error("--sizes takes non-negative integers")
    args.reps = args.reps or (2 if args.quick else 5)
    args.lookups = args.lookups or (60 if args.quick else 250)
    for name in ("reps", "batches", "batch", "lookups", "sites"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.batch < 4:
        p.error("--batch must be at least 4 (3 copies are planted in each)")
    if args.reuse:
        dbname = psycopg.conninfo.conninfo_to_dict(args.reuse).get("dbname")
        if not (isinstance(dbname, str) and dbname.startswith(DB_PREFIX)):
            p.error(f"--reuse takes a {DB_PREFIX}* database made by this bench with --keep")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    logs.configure("console", level="warning", stream=sys.stderr)
    command = shlex.join(sys.orig_argv)
    try:
        info = machine(args.admin_url)
    except psycopg.Error as e:
        print(f"growth_bench: PostgreSQL not reachable at {args.admin_url!r}: {e}", file=sys.stderr)
        return 1
    print(f"command: {command}")
    print(
        f"machine: {info['cpu_count']} cpus ({info['cpus_usable']} usable, {info['cpu_model']}), "
        f"load {info['load_average']}, {info['memory_gb']} GB; Python {info['python']} "
        f"({info['platform']}); psycopg {info['psycopg']}; project at {info['project_revision']}"
    )
    print(
        "postgresql: " + ", ".join(f"{k[3:]}={v}" for k, v in info.items() if k.startswith("pg_"))
    )
    print(
        f"sizes {args.sizes}; {args.reps} reps x {args.batches} batches of {args.batch} new "
        f"articles, {args.lookups} near-dup queries per size; {args.sites} sites/feeds; long "
        f"texts {args.long_fraction:.0%}",
        flush=True,
    )
    rng = random.Random(args.seed)
    maker = TextMaker(rng)
    planted = Planted()
    results: list[SizeResult] = []
    plans: dict[str, Any] = {}
    failed: str | None = None
    run_id = f"{random.randrange(36**4):04x}"
    started = time.perf_counter()
    with Databases(args.admin_url) as dbs:
        gen: Generator | None = None
        try:
            if args.reuse:
                dsn = args.reuse
                applied = asyncio.run(migrate(dsn))
                print(f"reusing {dsn}; migrations applied now: {applied or 'none'}")
            else:
                dsn = dbs.create("growth")
                print(f"database: {psycopg.conninfo.conninfo_to_dict(dsn).get('dbname')}")
                t0 = time.perf_counter()
                setup_database(dsn, max(args.sizes), args.sites)
                print(f"migrated and {args.sites} feeds added in {time.perf_counter() - t0:.1f} s")
            with psycopg.connect(dsn, autocommit=True) as conn:
                state = load_state(conn)
                if state is None:
                    raise RuntimeError("no growth_bench_state: not a database made by this bench")
                sites = load_sites(conn, state.sites)
            for size in args.sizes:
                result = SizeResult(size)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    have = count_articles(conn)
                if have > size:
                    print(f"size {size:,}: the database already holds {have:,} rows; skipped")
                    continue
                if size > have:
                    if gen is None:
                        gen = Generator(dsn, state, sites, maker)
                    result.generation = gen.grow_to(size, args.long_fraction)
                    gen_s = float(result.generation["seconds"])
                    print(
                        f"generated {result.generation['rows']:,} rows in "
                        f"{result.generation['seconds']:.0f} s "
                        f"({result.generation['rows'] / max(gen_s, 1e-9):.0f} rows/s)",
                        flush=True,
                    )
                result.vacuum_s = round(vacuum(dsn), 1)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    result.rows_before = count_articles(conn)
                asyncio.run(measure_size(dsn, result, sites, maker, planted, args, run_id))
                gin_merge(dsn, result)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    result.rows_after = count_articles(conn)
                result.sizes_mb = db_sizes(dsn)
                results.append(result)
                m = medians(result)
                print(
                    f"size {size:,}: lookup {m['lookup']:.3f}, near-dup query {m['neardup']:.3f},"
                    f" store {m['store']:.3f}, GIN merge {m['gin']:.3f} ms per article",
                    flush=True,
                )
            if results:
                plans = explain_all(dsn, maker, planted, sites)
                last = results[-1]
                used = set(plans[NEARDUP_PLAN]["indexes"])
                with psycopg.connect(dsn, autocommit=True) as conn:
                    gins = gin_indexes(conn)
                    limit_pages = gin_limit_kb(conn) / 8
                last.neardup_gin = [g for g in gins if g.split(".")[-1] in used]
                for index in [] if args.no_pending_probe else gins:
                    if gen is None:
                        gen = Generator(dsn, state, sites, maker)
                    added = gen.fill_pending(index, 0.85, args.long_fraction)
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        pages, tuples = pending(conn, index)
                    probe: dict[str, Any] = {
                        "index": index.split(".")[-1],
                        "rows_added": added,
                        "pending_pages": pages,
                        "pending_rows": tuples,
                        "fill_percent": 100 * pages / limit_pages,
                    }
                    if index in last.neardup_gin:
                        ms = asyncio.run(
                            neardup_probe(
                                dsn, sites, maker, planted, args.lookups, run_id, args.budget / 4
                            )
                        )
                        probe.update(stats(ms))
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        t0 = time.perf_counter()
                        conn.execute("SELECT gin_clean_pending_list(%s::regclass)", (index,))
                        probe["merge_ms"] = 1000 * (time.perf_counter() - t0)
                    probe["merge_ms_per_row"] = probe["merge_ms"] / max(tuples, 1)
                    last.pending_probes.append(probe)
        except (Exception, KeyboardInterrupt) as e:
            failed = f"{type(e).__name__}: {e}"
            print(f"growth_bench: FAILED: {failed}", file=sys.stderr)
            traceback.print_exc()
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            if gen is not None:
                with contextlib.suppress(psycopg.Error):
                    gen.close()
            if args.keep and not args.reuse and dbs.created:
                kept = dbs.created.pop()
                print(f"kept database: {dbs.dsn(kept)} (drop it when done)")
    if results:
        print(report(results))
        if plans:
            print(report_plans(plans, results[-1].rows_after))
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"load average at the end {info['load_average_end']}; total bench time "
        f"{time.perf_counter() - started:.0f} s"
    )
    if args.json:
        payload = {
            "command": command,
            "machine": info,
            "config": {
                k: v for k, v in vars(args).items() if k not in ("json", "admin_url", "reuse")
            },
            "results": [{**asdict(r), "medians": medians(r)} for r in results],
            "summary": {
                str(r.size): {
                    "lookup_ms": stats(r.lookup_ms),
                    "neardup_ms": stats(r.neardup_ms),
                    "store_ms": stats(r.store_ms),
                    "gin_merge_ms_per_article": r.gin_merge_per_article,
                }
                for r in results
            },
            "plans": plans,
            "error": failed,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
