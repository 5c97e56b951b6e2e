"""Run as `python -m tests.hostile.fetch_probe` with a JSON list of {name, url, kind} on stdin:
fetches each URL with the production `Fetcher` (default caps) in this fresh process and prints
one JSON line per case with its outcome, the peak of Python allocations during that case
(tracemalloc) and the process's peak RSS so far, after a first line for the baseline (imports
done, one small fetch made). Used by the bomb tests to measure memory in a process of its own."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tracemalloc
from typing import Any

from ingest.config import Settings
from ingest.errors import FetchError
from ingest.fetch import Fetcher


def _peak_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


async def _probe(cases: list[dict[str, Any]]) -> None:
    settings = Settings(allow_private_networks=True, host_delay=0, request_deadline=20)
    async with Fetcher(settings) as fetcher:
        warm = cases[0]["warmup"]
        await fetcher.fetch(warm, "page")
        print(json.dumps({"name": "baseline", "peak_kib": _peak_kib()}), flush=True)
        tracemalloc.start()
        for case in cases[1:]:
            tracemalloc.reset_peak()
            record: dict[str, Any] = {"name": case["name"]}
            try:
                result = await fetcher.fetch(case["url"], case["kind"])
            except FetchError as e:
                record.update(outcome=type(e).__name__, message=str(e))
            else:
                record.update(outcome="ok", body_bytes=len(result.body))
            record["peak_kib"] = _peak_kib()
            record["allocated_peak_kib"] = tracemalloc.get_traced_memory()[1] // 1024
            print(json.dumps(record), flush=True)


def main() -> None:
    asyncio.run(_probe(json.load(sys.stdin)))


if __name__ == "__main__":
    main()
