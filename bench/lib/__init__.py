"""What the benchmarks share: the local site (`site`), throwaway databases (`db`), `ingest`
processes and their sampling (`procs`), what they log (`logs`), report helpers (`report`),
profiles (`profile`), the page corpora and their scoring (`corpora`). See bench/README.md.

The bench scripts import it as `lib` (they run as `python bench/NAME.py`, so `bench/` is on
the path); the repository goes first on the path so that `ingest` is this checkout's."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
