"""Start-up: from `ingest run --once` being started to its first request on the wire.

What it measures and how to run it: bench/README.md (`startup_bench.py`)."""

import asyncio
import http.server
import os
import statistics
import subprocess
import threading
import time

from lib import procs
from lib.db import Databases
from lib.report import header, parser, write_json

ARRIVALS: list[float] = []
"""When each request reached the feed server (time.perf_counter)."""


class _Feed(http.server.BaseHTTPRequestHandler):
    """An empty RSS feed."""

    def do_GET(self) -> None:
        ARRIVALS.append(time.perf_counter())
        body = b"<rss version='2.0'><channel><title>T</title></channel></rss>"
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _idle_pool_cpu(seconds: float, poll: float) -> float:
    """CPU milliseconds a second that an idle two-worker pool's manager threads cost this
    process when pebble looks at the pool's state every `poll` seconds (`ingest run --once`
    sets 0.02 s, to stop promptly; the service keeps pebble's 0.1 s)."""
    from pebble import CONSTS

    from ingest.workers.pool import Workers

    previous, CONSTS.sleep_unit = CONSTS.sleep_unit, poll
    workers = Workers(2)
    try:
        asyncio.run(workers.run(os.getpid, timeout=60))  # started, then idle
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        return 1000 * (time.process_time() - cpu) / (time.perf_counter() - wall)
    finally:
        workers.close()
        CONSTS.sleep_unit = previous


def main() -> int:
    p = parser("startup_bench.py", __doc__, repeat=9)
    p.add_argument(
        "--idle-seconds",
        type=float,
        default=5.0,
        help="how long an idle worker pool is watched at each poll interval (0: not at all)",
    )
    args = p.parse_args()
    procs.on_sigterm()
    info = header("startup_bench.py", args.admin_url)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    first, done = [], []
    with Databases(args.admin_url) as dbs:
        env = procs.ingest_env(dbs.create("startup"))  # imports from bytecode
        procs.import_feeds(env, [f"http://127.0.0.1:{server.server_address[1]}/feed.xml"])
        for n in range(args.repeat):
            if n:
                # A run that ends holds its hosts for their delay (sql/0045): the next one,
                # started sooner, would leave the feed's host to it and send nothing.
                time.sleep(float(os.environ.get("INGEST_HOST_DELAY", "0.5")) + 0.05)
            ARRIVALS.clear()
            started = time.perf_counter()
            cmd = procs.ingest_command("run", "--once", "--all")
            subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
            done.append(time.perf_counter() - started)
            first.append(ARRIVALS[0] - started)
    server.shutdown()
    ms = [round(x * 1000) for x in first]
    print(f"first request after start: median {statistics.median(ms)} ms ({min(ms)}-{max(ms)})")
    whole = statistics.median(done) * 1000
    print(f"whole `run --once` (one feed, nothing new): median {whole:.0f} ms")
    idle = {}
    if args.idle_seconds > 0:
        idle = {poll: _idle_pool_cpu(args.idle_seconds, poll) for poll in (0.1, 0.02)}
        print(
            "idle two-worker pool, CPU of its manager threads: "
            + ", ".join(f"{v:.1f} ms/s polling every {k:g} s" for k, v in idle.items())
        )
    write_json(
        args.json,
        {
            "machine": info,
            "first_request_ms": ms,
            "run_ms": [x * 1000 for x in done],
            "idle_pool_cpu_ms_per_s": idle,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
