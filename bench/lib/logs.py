"""What `ingest` says about a run: its JSON log lines and its /metrics."""

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Log:
    feeds: int = 0
    """`feed_processed` lines."""
    statuses: Counter[str] = field(default_factory=Counter)
    new: int = 0
    from_feed: int = 0
    """Entries stored from a full-text feed's own text, their pages not fetched."""
    paged: list[int] = field(default_factory=list)
    """Per feed: its new entries less those stored from its own text without a request, the
    pages it fetched (where every entry is new and every page fetched is stored)."""
    feed_ms: list[int] = field(default_factory=list)
    first_start: float | None = None
    """Epoch seconds: the earliest feed start (a `feed_processed` time minus its `ms`)."""
    last_end: float | None = None
    lag: dict[str, Any] = field(default_factory=dict)
    """The `event_loop_lag` line: samples, p50_ms, p99_ms, max_ms."""
    problems: list[str] = field(default_factory=list)
    """Warning and error lines, `feed_bug` lines and lines that are not JSON."""

    def window(self, started: float, ended: float) -> dict[str, float]:
        """A `run --once` from `started` to `ended` (epoch seconds): start-up, the feeds window
        (first feed start to last feed end) and shutdown, in seconds."""
        first = self.first_start if self.first_start is not None else started
        last = self.last_end if self.last_end is not None else ended
        windows = (round(first - started, 3), round(last - first, 3), round(ended - last, 3))
        return dict(zip(("startup_s", "feeds_window_s", "shutdown_s"), windows, strict=True))

    def summary(self) -> dict[str, Any]:
        ms = sorted(self.feed_ms)
        return {
            "feed_ms_median": ms[len(ms) // 2] if ms else None, "feed_ms_max": max(ms or [0]),
            "statuses": dict(self.statuses), "problems": self.problems[:20], "lag": self.lag,
            "from_feed": self.from_feed, "paged": sorted(self.paged),
        }  # fmt: skip


def read_log(text: str, width: int = 300) -> Log:
    log = Log()
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            log.problems += [line.strip()[:width]] if line.strip() else []
            continue
        event = str(record.get("event"))
        if event == "event_loop_lag":
            log.lag = {k: record.get(k) for k in ("samples", "p50_ms", "p99_ms", "max_ms")}
        elif event == "feed_processed":
            ms = int(record.get("ms", 0))
            log.feeds, log.new = log.feeds + 1, log.new + int(record.get("new") or 0)
            log.from_feed += int(record.get("from_feed") or 0)
            log.paged.append(int(record.get("new") or 0) - int(record.get("from_feed") or 0))
            log.feed_ms.append(ms)
            log.statuses[str(record.get("status"))] += 1
            with contextlib.suppress(KeyError, TypeError, ValueError):
                end = datetime.fromisoformat(str(record["timestamp"])).timestamp()
                log.first_start = min(end - ms / 1000, log.first_start or end)
                log.last_end = max(end, log.last_end or end)
        if record.get("level") in ("warning", "error", "critical") or event == "feed_bug":
            log.problems.append(line[:width])
    return log


def read_log_file(path: Path) -> Log:
    return read_log(path.read_text(errors="replace") if path.exists() else "")


def metrics(text: str) -> dict[str, Any]:
    """Feed polls by status (`ingest_feeds_polled_total`) and `ingest_feeds_overdue`."""
    out: dict[str, Any] = {"polled": {}, "overdue": None}
    for s in (s for family in text_string_to_metric_families(text) for s in family.samples):
        if s.name == "ingest_feeds_polled_total":
            out["polled"][s.labels.get("status", "")] = s.value
        elif s.name == "ingest_feeds_overdue":
            out["overdue"] = s.value
    return out
