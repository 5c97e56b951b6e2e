"""What the benchmarks share (bench/README.md): the local site (`web`), throwaway databases
(`db`), `ingest` processes and their sampling (`procs`), what they log (`logs`), the header and
number helpers (`report`), profiles (`profile`), the page corpora and their scoring (`corpora`).
The scripts import it as `lib` (`python bench/NAME.py` puts bench/ on the path); the repository
goes first on the path, so that `ingest` is this checkout's."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
