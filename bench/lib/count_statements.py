"""`ingest ARGS...` with the SQL it sends counted: run as a script instead of the `ingest`
command, it wraps psycopg's `AsyncCursor.execute` / `executemany` (counts by query name, rows
via executemany apart) and `Store.claim_feeds` (feeds per claim), then logs the counts as one
JSON line `{"event": "bench_statements", ...}` on stderr when the command ends."""

import collections
import json
import sys
from typing import Any

import psycopg

import ingest.store
from ingest.cli import main

NAMES = {text: name for name, text in ingest.store.queries().items()}
counts: collections.Counter[str] = collections.Counter()
claims: collections.Counter[int] = collections.Counter()
_execute, _executemany = psycopg.AsyncCursor.execute, psycopg.AsyncCursor.executemany
_claim = ingest.store.Store.claim_feeds


def _name(query: Any) -> str:
    text = query if isinstance(query, str) else repr(query)
    return NAMES.get(text, "(pool check: empty query)" if text == "" else text[:60])


async def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
    counts[_name(query)] += 1
    return await _execute(self, query, params, **kw)


async def executemany(self: Any, query: Any, params_seq: Any, **kw: Any) -> Any:
    params_seq = list(params_seq)
    counts[_name(query) + " (rows via executemany)"] += len(params_seq)
    counts[_name(query) + " (executemany calls)"] += 1
    return await _executemany(self, query, params_seq, **kw)


async def claim_feeds(self: Any, **kw: Any) -> Any:
    found = await _claim(self, **kw)
    claims[len(found)] += 1
    return found


if __name__ == "__main__":
    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    psycopg.AsyncCursor.executemany = executemany  # type: ignore[method-assign]
    ingest.store.Store.claim_feeds = claim_feeds  # type: ignore[method-assign]
    try:
        code = main(sys.argv[1:])
    finally:
        sizes = {str(k): v for k, v in sorted(claims.items())}
        event = {"event": "bench_statements", "counts": counts, "claim_sizes": sizes}
        print(json.dumps(event), file=sys.stderr, flush=True)
    sys.exit(code)
