"""A claim behind one host's backlog: what the service's claim of a batch costs the database
when one host has many more due feeds than it can take (its feeds hold their share of the
process's slots), against the same claim with no such host, in one database and one process.
The claim before sql/0037 (due feeds read in next_fetch_at order, those of hosts without room
dropped after reading) runs beside it as the baseline.

What it measures and how to run it: bench/README.md (`claim_bench.py`)."""

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from lib.db import Databases
from lib.report import check, header, parser, write_json

from ingest.store import queries
from ingest.store.db import migrate

# The claim as it was before sql/0037, for comparison (its indexes are still there).
LEGACY = """
WITH picked AS (
    SELECT id, next_fetch_at AS rank_at, COALESCE(ingest.url_host(url), '') AS host
    FROM ingest.feeds
    WHERE next_fetch_at <= now()
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
      AND NOT (id = ANY(%(exclude)s))
      AND COALESCE(ingest.url_host(url), '') <> ALL(%(busy_hosts)s::text[])
    ORDER BY next_fetch_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, host, row_number() OVER (PARTITION BY host ORDER BY rank_at, id) AS n
    FROM picked
), room AS (
    SELECT host, room FROM unnest(%(room_hosts)s::text[], %(rooms)s::int[]) AS r(host, room)
)
UPDATE ingest.feeds f
SET lease_owner = %(owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
FROM ranked r LEFT JOIN room h ON h.host = r.host
WHERE f.id = r.id AND r.n <= COALESCE(h.room, %(host_limit)s::int, r.n)
RETURNING f.id
"""

BACKLOG_HOST = "backlog.example"


def seed(dsn: str, feeds: int, hosts: int, backlog: int) -> None:
    """`feeds` feeds on `hosts` hosts, due over the last half hour in an interleaved order, and
    `backlog` feeds of one more host, all due before any of them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, next_fetch_at)"
            " SELECT format('https://host%%s.example/feed/%%s', g %% %s, g),"
            "        now() - interval '30 minutes' + g * (interval '30 minutes' / %s)"
            " FROM generate_series(1, %s) AS g",
            (hosts, feeds, feeds),
        )
        if backlog:
            conn.execute(
                "INSERT INTO ingest.feeds (url, next_fetch_at)"
                " SELECT format('https://%%s/feed/%%s', %s::text, g),"
                "        now() - interval '2 hours' + g * interval '1 ms'"
                " FROM generate_series(1, %s) AS g",
                (BACKLOG_HOST, backlog),
            )
        conn.execute("VACUUM ANALYZE ingest.feeds")
        conn.execute("VACUUM ANALYZE ingest.feed_hosts")


def feeds_read(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT COALESCE(idx_tup_fetch, 0) + COALESCE(seq_tup_read, 0)"
        " FROM pg_stat_xact_user_tables WHERE relid = 'ingest.feeds'::regclass"
    ).fetchone()
    return int(row[0]) if row else 0


def time_claims(
    dsn: str, named: dict[str, str], params: dict[str, Any], repeat: int
) -> dict[str, tuple[float, int, int]]:
    """For each query, taking turns: median milliseconds of the claim (each rolled back), rows
    of ingest.feeds it read, feeds it returned."""
    times: dict[str, list[float]] = {name: [] for name in named}
    last: dict[str, tuple[int, int]] = {}
    with psycopg.connect(dsn) as conn:
        for _ in range(repeat):
            for name, query in named.items():
                before = feeds_read(conn)
                start = time.perf_counter()
                rows = conn.execute(query.encode(), params).fetchall()
                times[name].append(time.perf_counter() - start)
                last[name] = (feeds_read(conn) - before, len(rows))
                conn.rollback()
    return {n: (1000 * statistics.median(times[n]), *last[n]) for n in named}


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("claim_bench.py", __doc__, feeds=100_000, hosts=1000, repeat=21)
    p.add_argument("--backlog", type=int, default=50_000, help="due feeds of the one busy host")
    p.add_argument("--batch", type=int, default=50, help="feeds a claim asks for")
    args = p.parse_args(argv)
    check(p, args, "feeds", "hosts", "repeat", "backlog", "batch")
    figures: dict[str, Any] = {"run": header("claim_bench.py", args.admin_url, subprocesses=False)}
    base = {
        "owner": "bench", "lease_seconds": 600, "limit": args.batch, "exclude": [],
        "room_hosts": [], "rooms": [], "busy_hosts": [], "host_limit": 128, "now": None,
    }  # fmt: skip
    busy = base | {"busy_hosts": [BACKLOG_HOST], "room_hosts": [BACKLOG_HOST], "rooms": [0]}
    print(
        f"{args.feeds:,} feeds on {args.hosts:,} hosts, due over the last half hour;"
        f" a claim of {args.batch}, median of {args.repeat}, each rolled back"
    )
    with Databases(args.admin_url) as dbs:
        for backlog in (0, args.backlog):
            dsn = dbs.create("claim")
            asyncio.run(migrate(dsn))
            seed(dsn, args.feeds, args.hosts, backlog)
            label = f"with {BACKLOG_HOST}'s {backlog:,} due feeds" if backlog else "no backlog"
            cases = {"no host busy": base}
            if backlog:
                cases[f"{BACKLOG_HOST} busy"] = busy
            named = {"claim": queries()["claim_feeds"], "before": LEGACY}
            for case, params in cases.items():
                timed = time_claims(dsn, named, params, args.repeat)
                for name, (ms, read, got) in timed.items():
                    key = f"{label}, {case}, {name}"
                    figures[key] = {"ms": ms, "feeds_read": read, "claimed": got}
                    print(f"  {key:<62} {ms:8.2f} ms  {read:>7,} rows read  {got:>3} claimed")
            dbs.drop(dsn)
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
