"""Storing articles by group size: the CPU the writing process and PostgreSQL spend per article
when `Store.store_many` is handed groups of 1, 3 or 10 articles (a cold run's pages come in one
at a time; the pipeline's article writer groups them, see `ingest.pipeline.ARTICLES_LINGER`).

What it measures and how to run it: bench/README.md (`store_bench.py`)."""

import asyncio
import os
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from lib.db import Databases
from lib.report import header, parser, table, write_json
from lib.text import TextMaker

from ingest.article import build_article
from ingest.logs import configure
from ingest.neardup import fingerprint
from ingest.store import Store
from ingest.store.articles import WriteItem
from ingest.store.db import migrate, open_pool
from ingest.types import Extracted, PageMetadata, ParsedEntry

GROUPS = (1, 3, 10)


def backend_cpu(dsn: str) -> float:
    """CPU seconds of this database's server processes (the pool's backends)."""
    with psycopg.connect(dsn) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def articles(feed_id: int, n: int, seed: int) -> list[WriteItem]:
    """`n` new articles of 300-700 words, built as the pipeline builds them."""
    maker, now, items = TextMaker(random.Random(seed)), datetime.now(UTC), []
    for k in range(n):
        text = maker.text(maker.rng.randint(300, 700))
        url = f"https://site{seed}.example/news/{k}"
        entry = ParsedEntry(guid=url, link=url, title=maker.title())
        extracted = Extracted(text, PageMetadata(), fingerprint(text))
        article = build_article(entry, entry_url=url, final_url=url, extracted=extracted,
                                extraction_error=None, now=now)  # fmt: skip
        items.append((feed_id, article, url.encode()))
    return items


async def one_pass(dsn: str, group: int, n: int, seed: int) -> dict[str, float]:
    """Migrate a fresh database, store `n` articles `group` at a time: ms per article."""
    await migrate(dsn)
    pool = await open_pool(dsn, max_size=2)
    try:
        store = Store(pool)
        await store.add_feed(f"https://site{seed}.example/feed")
        feed_id = int((await store.list_feeds())[0]["id"])
        items = articles(feed_id, n + 10, seed)
        await store.store_many(items[:10])  # warm: prepared statements, caches
        items = items[10:]
        cpu, pg, wall = time.process_time(), backend_cpu(dsn), time.perf_counter()
        for i in range(0, n, group):
            await store.store_many(items[i : i + group])
        return {
            "client_ms": 1000 * (time.process_time() - cpu) / n,
            "pg_ms": 1000 * (backend_cpu(dsn) - pg) / n,
            "wall_ms": 1000 * (time.perf_counter() - wall) / n,
        }
    finally:
        await pool.close()


def main() -> int:
    p = parser("store_bench.py", __doc__, repeat=3)
    p.add_argument("--articles", type=int, default=300, help="articles per pass (default 300)")
    args = p.parse_args()
    configure(level="warning")  # not a line per migration of every pass
    info = header("store_bench.py", args.admin_url)
    runs: dict[int, list[dict[str, float]]] = {g: [] for g in GROUPS}
    with Databases(args.admin_url) as dbs:
        for k in range(args.repeat):  # interleaved: the machine's speed drifts
            for group in GROUPS:
                dsn = dbs.create(f"store{group}")
                try:
                    runs[group].append(asyncio.run(one_pass(dsn, group, args.articles, k)))
                finally:
                    dbs.drop(dsn)
    medians = {
        g: {m: statistics.median(r[m] for r in rs) for m in ("client_ms", "pg_ms", "wall_ms")}
        for g, rs in runs.items()
    }
    base = medians[1]["client_ms"] + medians[1]["pg_ms"]
    rows = [("group", "client CPU ms", "PostgreSQL CPU ms", "CPU ms", "vs 1", "wall ms")]
    for g, m in medians.items():
        cpu = m["client_ms"] + m["pg_ms"]
        rows.append((str(g), f"{m['client_ms']:.2f}", f"{m['pg_ms']:.2f}", f"{cpu:.2f}",
                     f"{cpu / base:.2f}", f"{m['wall_ms']:.2f}"))  # fmt: skip
    print(
        f"{args.articles} new articles per pass, {args.repeat} passes per group size"
        " (interleaved, a fresh database each); medians, per article:"
    )
    print("\n".join(table(rows)))
    write_json(args.json, {"machine": info, "config": vars(args), "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
