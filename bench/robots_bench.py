"""robots.txt rules near the 512 KiB cap: time to parse a file and to answer `allowed()`.

What it measures and how to run it: bench/README.md (`robots_bench.py`)."""

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial

from lib import report

from ingest.fetch.client import ROBOTS_MAX_BYTES
from ingest.fetch.robots import ROBOTS_AGENT, parse_robots

WORDS = ("news", "world", "sport", "print", "amp", "archive", "tag", "video", "search", "page")


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS) + str(rng.randrange(100_000))


def _plain(rng: random.Random) -> str:
    return "Disallow: /" + "/".join(_word(rng) for _ in range(3)) + "/"


def _wildcard(rng: random.Random) -> str:
    shapes = (
        lambda: f"Disallow: /*{_word(rng)}=",
        lambda: f"Disallow: /*.{_word(rng)}$",
        lambda: f"Allow: /{_word(rng)}/*/{_word(rng)}",
        lambda: f"Disallow: /*/{_word(rng)}/*?*{_word(rng)}",
    )
    return rng.choice(shapes)()


def _starred(rng: random.Random) -> str:
    return f"Disallow: /*{_word(rng)}*{_word(rng)}"


FILES: dict[str, Callable[[random.Random], str]] = {
    "plain Disallow": _plain,
    "wildcard mix": _wildcard,
    "all under /*": _starred,
}


def robots_file(rule: Callable[[random.Random], str], seed: int) -> tuple[bytes, int]:
    """`User-agent: *` and rules up to just under the cap; the body and its rule count."""
    rng = random.Random(seed)
    lines, size = ["User-agent: *"], 14
    while True:
        line = rule(rng)
        if size + len(line) + 1 > ROBOTS_MAX_BYTES - 64:
            break
        lines.append(line)
        size += len(line) + 1
    return ("\n".join(lines) + "\n").encode(), len(lines) - 1


def pages(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "https://news.example/"
        + "/".join(_word(rng) for _ in range(rng.randrange(1, 5)))
        + rng.choice(("", ".html", "?id=" + _word(rng), "?utm_source=rss&" + _word(rng) + "=1"))
        for _ in range(count)
    ]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="robots_bench.py", description=__doc__)
    p.add_argument("--repeat", type=int, default=5, help="parses of each file (default 5)")
    p.add_argument("--pages", type=int, default=200, help="URLs asked of each (default 200)")
    args = p.parse_args(argv)
    if args.repeat <= 0 or args.pages <= 0:
        p.error("--repeat and --pages must be positive")
    report.header("robots_bench", subprocesses=False)
    urls = pages(2, args.pages)
    rows: list[list[object]] = [
        ["file", "KiB", "rules", "parse ms", "first allowed() ms", "then allowed() ms", "p99 ms"]
    ]
    for name, rule in FILES.items():
        body, rules = robots_file(rule, 1)
        parse = timed(partial(parse_robots, body), args.repeat)
        first = []
        for _ in range(args.repeat):
            robots = parse_robots(body)
            first += timed(partial(robots.allowed, urls[0], ROBOTS_AGENT), 1)
        per_page = [t for url in urls for t in timed(partial(robots.allowed, url, ROBOTS_AGENT), 1)]
        rows.append([
            name, len(body) // 1024, rules, report.fmt_range(parse, 1), report.fmt_range(first, 1),
            f"{statistics.median(per_page):.3f}", f"{report.pct(per_page, 0.99):.3f}",
        ])  # fmt: skip
    print("\n".join(report.table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
