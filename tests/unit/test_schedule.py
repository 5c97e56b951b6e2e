"""ingest.schedule: when a feed is due next (README, "Failed feeds back off exponentially") and
how a Retry-After header is read (RFC 9110 §10.2.3)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.schedule import next_fetch_at, parse_retry_after

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=1800)  # the default INGEST_POLL_INTERVAL
DAY = timedelta(hours=24)
TWO_DAYS = timedelta(days=2)


class _Extreme(random.Random):
    """A random source pinned to one end of every uniform() range."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def _delay(failures: int, rng: random.Random, **kw: object) -> timedelta:
    return next_fetch_at(NOW, interval=INTERVAL, failures=failures, rng=rng, **kw) - NOW  # type: ignore[arg-type]


def _backoff_ceiling(failures: int) -> timedelta:
    """README: a quarter of the poll interval, doubling per consecutive failure, capped at 24 h."""
    doublings = min(failures - 1, 30)  # 2**30 quarter-intervals is far past the cap already
    return min(INTERVAL / 4 * 2**doublings, DAY)


# --- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_success_within_ten_percent_of_interval(seed: int) -> None:
    """A healthy feed is due again after the poll interval ±10 %."""
    delay = _delay(0, random.Random(seed))
    assert INTERVAL * 0.9 <= delay <= INTERVAL * 1.1


def test_success_jitter_spreads_feeds() -> None:
    """Feeds polled together do not all come due at the same instant."""
    rng = random.Random(1)
    assert len({_delay(0, rng) for _ in range(10)}) > 1


# --- failure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 5, 6, 7, 8, 12, 30, 10_000])
@pytest.mark.parametrize("seed", range(5))
def test_failure_backoff_within_jittered_band(failures: int, seed: int) -> None:
    """Failure n waits between half and all of min(interval/4 * 2**(n-1), 24 h)."""
    delay = _delay(failures, random.Random(seed))
    ceiling = _backoff_ceiling(failures)
    assert ceiling / 2 <= delay <= ceiling


def test_failure_backoff_grows_then_caps_at_24h() -> None:
    """With jitter pinned, the wait doubles with each failure until it reaches 24 h, then stays."""
    delays = [_delay(n, _Extreme(high=True)) for n in range(1, 15)]
    assert delays[0] == INTERVAL / 4
    capped_from = next(i for i, d in enumerate(delays) if d == DAY)
    assert all(b == 2 * a for a, b in itertools.pairwise(delays[:capped_from]))
    assert all(d == DAY for d in delays[capped_from:])
    assert max(delays) == DAY


def test_failure_backoff_never_exceeds_24h() -> None:
    """Even after very many failures and the highest jitter the wait is at most 24 h."""
    assert _delay(1_000_000, _Extreme(high=True)) == DAY
    assert _delay(1_000_000, _Extreme(high=False)) == DAY / 2


def test_first_failure_retries_sooner_than_success() -> None:
    """The first failure retries within a quarter of the interval, sooner than a normal poll."""
    assert _delay(1, _Extreme(high=True)) < _delay(0, _Extreme(high=False))


# --- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [
        pytest.param(1, timedelta(hours=3), timedelta(hours=3), id="longer-than-backoff"),
        pytest.param(0, timedelta(hours=5), timedelta(hours=5), id="on-success-too"),
        pytest.param(20, timedelta(days=1, hours=12), timedelta(days=1, hours=12), id="beyond-24h"),
        pytest.param(1, timedelta(days=30), TWO_DAYS, id="capped-at-two-days"),
        pytest.param(3, timedelta(days=2), TWO_DAYS, id="exactly-two-days"),
    ],
)
def test_retry_after_honoured_and_capped(
    failures: int, retry_after: timedelta, expected: timedelta
) -> None:
    """A later Retry-After replaces the computed delay, up to two days."""
    for rng in (_Extreme(high=True), _Extreme(high=False), random.Random(3)):
        assert _delay(failures, rng, retry_after=retry_after) == expected


def test_retry_after_shorter_than_backoff_is_ignored() -> None:
    """A Retry-After sooner than the backoff does not shorten it."""
    failures = 5
    without = _delay(failures, _Extreme(high=False))
    assert _delay(failures, _Extreme(high=False), retry_after=timedelta(seconds=1)) == without


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [0, 1, 4])
def test_deterministic_with_seeded_random(failures: int) -> None:
    """Two runs with equally seeded random sources give the same schedule."""
    a, b = random.Random(42), random.Random(42)
    first = [next_fetch_at(NOW, interval=INTERVAL, failures=failures, rng=a) for _ in range(5)]
    second = [next_fetch_at(NOW, interval=INTERVAL, failures=failures, rng=b) for _ in range(5)]
    assert first == second


def test_result_is_aware_and_after_now() -> None:
    """The due time is timezone-aware and in the future."""
    due = next_fetch_at(NOW, interval=INTERVAL, failures=2, rng=random.Random(0))
    assert due.tzinfo is not None
    assert due > NOW


# --- parse_retry_after -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", timedelta(seconds=120), id="delta-seconds"),
        pytest.param(" 3600 ", timedelta(hours=1), id="delta-seconds-padded"),
        pytest.param("0", timedelta(0), id="zero"),
        pytest.param("Wed, 01 Jan 2025 12:02:00 GMT", timedelta(minutes=2), id="imf-fixdate"),
        pytest.param("Thu, 02 Jan 2025 12:00:00 GMT", timedelta(days=1), id="next-day"),
        pytest.param("Wednesday, 01-Jan-25 12:05:00 GMT", timedelta(minutes=5), id="rfc850"),
        pytest.param("Wed Jan  1 12:10:00 2025", timedelta(minutes=10), id="asctime"),
        pytest.param("Wed, 01 Jan 2025 11:00:00 GMT", timedelta(0), id="past-date-is-zero"),
        pytest.param("Mon, 01 Jan 2001 00:00:00 GMT", timedelta(0), id="long-past"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    """delta-seconds or an HTTP-date relative to now; None when absent or unparseable; never
    negative."""
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_huge_seconds_does_not_raise() -> None:
    """An absurdly large delta-seconds is capped or ignored, never an exception."""
    result = parse_retry_after("99999999999999999999", NOW)
    assert result is None or result >= TWO_DAYS
