"""`ingest backfill`: what it is asked (`options`), the engine that walks a target's sources and
fetches their articles (`engine`), its progress (`progress`) and the summary it prints
(`summary`)."""

from ingest.backfill.engine import Backfill, run_backfill
from ingest.backfill.options import (
    BackfillOptions,
    classify,
    entry_from_json,
    entry_to_json,
    read_url_list,
)
from ingest.backfill.progress import (
    BackfillReport,
    LogReporter,
    RateLimiter,
    Reporter,
    RichReporter,
    Tally,
)
from ingest.backfill.summary import summary_lines
from ingest.periods import parse_date_bound

__all__ = [
    "Backfill",
    "BackfillOptions",
    "BackfillReport",
    "LogReporter",
    "RateLimiter",
    "Reporter",
    "RichReporter",
    "Tally",
    "classify",
    "entry_from_json",
    "entry_to_json",
    "parse_date_bound",
    "read_url_list",
    "run_backfill",
    "summary_lines",
]
