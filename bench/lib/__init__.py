"""What the benchmarks share (bench/README.md). The scripts import it as `lib`: `python
bench/NAME.py` puts bench/ on the path; the repository goes first, so that `ingest` is this
checkout's."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
