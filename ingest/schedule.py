"""When to fetch a feed next: a pure function of `now`, the outcome and a random source."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MAX_BACKOFF = timedelta(hours=24)
MAX_RETRY_AFTER = timedelta(days=2)


def next_fetch_at(
    now: datetime,
    *,
    interval: timedelta,
    failures: int,
    retry_after: timedelta | None = None,
    rng: random.Random,
) -> datetime:
    """Success: `interval` with ±10 % jitter so feeds added together spread out. Failure number n:
    exponential backoff `interval/4 * 2**(n-1)` capped at 24 h, with full jitter on the upper
    half; a Retry-After the server gave is honoured (capped at two days) when it is later."""
    if failures <= 0:
        delay = interval * rng.uniform(0.9, 1.1)
    else:
        base = min(interval / 4 * (2 ** min(failures - 1, 20)), MAX_BACKOFF)
        delay = base * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return now + delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None when absent or
    unparseable, never negative."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Clamped before timedelta sees it: a hostile header must not overflow it.
        return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
