"""What `ingest` says about a run: its JSON log lines and its /metrics."""

from __future__ import annotations

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
    events: Counter[str] = field(default_factory=Counter)
    feeds: int = 0
    """`feed_processed` lines."""
    feed_ids: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    new: int = 0
    feed_ms: list[int] = field(default_factory=list)
    first_start: float | None = None
    """Epoch seconds: the earliest feed start (a `feed_processed` time minus its `ms`)."""
    last_end: float | None = None
    lag: dict[str, Any] = field(default_factory=dict)
    """The `event_loop_lag` line: samples, p50_ms, p99_ms, max_ms."""
    owner: str | None = None
    skipped_ticks: int = 0
    """APScheduler's "maximum number of running instances reached": a tick came while the
    previous one was still running (not counted as a warning)."""
    errors: list[str] = field(default_factory=list)
    """Error lines, `feed_bug` lines and lines that are not JSON."""
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.errors + self.warnings

    def window(self, started: float, ended: float) -> dict[str, float]:
        """A `run --once` from `started` to `ended` (epoch seconds): start-up, the feeds window
        (first feed start to last feed end) and shutdown, in seconds."""
        first = self.first_start if self.first_start is not None else started
        last = self.last_end if self.last_end is not None else ended
        return {
            "startup_s": round(first - started, 3),
            "feeds_window_s": round(last - first, 3),
            "shutdown_s": round(ended - last, 3),
        }

    def summary(self) -> dict[str, Any]:
        ms = self.feed_ms
        return {
            "feeds_logged": self.feeds,
            "feed_ms_median": sorted(ms)[len(ms) // 2] if ms else None,
            "feed_ms_max": max(ms, default=None),
            "statuses": dict(self.statuses),
            "events": dict(self.events),
            "problems": self.problems[:20],
            "event_loop_lag": self.lag,
        }


def read_log(text: str, width: int = 300) -> Log:
    log = Log()
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                log.errors.append(line.strip()[:width])
            continue
        if not isinstance(record, dict):
            continue
        event = str(record.get("event"))
        log.events[event] += 1
        level = record.get("level")
        if event == "service_started":
            log.owner = record.get("owner")
        elif event == "event_loop_lag":
            log.lag = {k: record.get(k) for k in ("samples", "p50_ms", "p99_ms", "max_ms")}
        elif event == "feed_processed":
            ms = int(record.get("ms", 0))
            log.feeds += 1
            log.feed_ms.append(ms)
            log.statuses[str(record.get("status"))] += 1
            log.new += int(record.get("new") or 0)
            with contextlib.suppress(KeyError, TypeError, ValueError):
                log.feed_ids.append(int(record["feed_id"]))
            with contextlib.suppress(KeyError, TypeError, ValueError):
                end = datetime.fromisoformat(str(record["timestamp"])).timestamp()
                start = end - ms / 1000
                log.first_start = min(start, log.first_start or start)
                log.last_end = max(end, log.last_end or end)
        if "maximum number of running instances reached" in event:
            log.skipped_ticks += 1
        elif level in ("error", "critical", "exception") or event == "feed_bug":
            log.errors.append(line[:width])
        elif level == "warning":
            log.warnings.append(line[:width])
    return log


def read_log_file(path: Path) -> Log:
    return read_log(path.read_text(errors="replace") if path.exists() else "")


def metric_summary(text: str) -> dict[str, Any]:
    """Counters by label, histograms as count and sum by kind, the overdue gauges."""
    out: dict[str, Any] = {"polled": {}, "articles_new": 0.0, "errors": {}, "fetch": {}}
    out |= {"extract": {"count": 0.0, "sum": 0.0}, "overdue": None, "lag": None}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "ingest_feeds_polled_total":
                out["polled"][labels.get("status", "")] = value
            elif name == "ingest_articles_new_total":
                out["articles_new"] = value
            elif name == "ingest_errors_total":
                out["errors"][labels.get("kind", "")] = value
            elif name.startswith("ingest_fetch_duration_seconds_") and name[-4:] in (
                "ount",
                "_sum",
            ):
                kind = out["fetch"].setdefault(labels.get("kind", ""), {"count": 0.0, "sum": 0.0})
                kind["count" if name.endswith("_count") else "sum"] = value
            elif name.startswith("ingest_extract_duration_seconds_") and name[-4:] in (
                "ount",
                "_sum",
            ):
                out["extract"]["count" if name.endswith("_count") else "sum"] = value
            elif name == "ingest_feeds_overdue":
                out["overdue"] = value
            elif name == "ingest_overdue_lag_seconds":
                out["lag"] = value
    return out


def raw_metric_lines(text: str) -> list[str]:
    """The `ingest_*` lines of a /metrics text, histogram buckets left out."""
    return [
        line
        for line in text.splitlines()
        if line.startswith("ingest_") and not line.split("{")[0].split(" ")[0].endswith("_bucket")
    ]
