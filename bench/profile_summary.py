"""Summarize a py-spy profile by process: see bench/README.md (`ingest_bench.py`)."""

import argparse
from collections.abc import Sequence
from pathlib import Path

from lib.profile import summarize


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="profile_summary.py", description=__doc__)
    p.add_argument("profile", type=Path, help="collapsed stacks (py-spy record --format raw)")
    p.add_argument("--top", type=int, default=25, help="functions per list (default 25)")
    args = p.parse_args(argv)
    print(summarize(args.profile, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
