"""ingest.schedule: when a feed is due next (README, "Scheduling"), when it is given up on, when
its permanent redirect is followed, and how the servers' hints are read (RFC 9111, RFC 9110)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.schedule import (
    Hints,
    Policy,
    RedirectState,
    cache_max_age,
    hints_from,
    newest_entry,
    next_fetch_at,
    observe_redirect,
    parse_retry_after,
    permanent_target,
    publishing_interval,
    should_deactivate,
    success_interval,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Policy()  # 5 min .. 24 h, default 30 min, ±10 % jitter
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TWO_DAYS = timedelta(days=2)


class _Extreme(random.Random):
    """A random source pinned to one end of every uniform() range."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def _delay(failures: int, rng: random.Random, **kw: object) -> timedelta:
    due = next_fetch_at(
        NOW,
        policy=POLICY,
        interval=kw.pop("interval", POLICY.default_interval),  # type: ignore[arg-type]
        failures=failures,
        rng=rng,
        **kw,  # type: ignore[arg-type]
    )
    return due - NOW


def _every(gap: timedelta, count: int, last: datetime = NOW) -> list[datetime]:
    return [last - gap * i for i in range(count)]


# --- publishing history -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        pytest.param(_every(HOUR, 10), HOUR, id="hourly"),
        pytest.param(_every(timedelta(days=7), 5), timedelta(days=7), id="weekly"),
        pytest.param(_every(HOUR, 50), HOUR, id="only-the-newest-20-count"),
        pytest.param(
            _every(HOUR, 10, NOW - timedelta(days=10)), timedelta(days=10), id="gone-quiet"
        ),
        pytest.param([NOW], None, id="one-entry"),
        pytest.param([], None, id="no-dates"),
        pytest.param([NOW, NOW, NOW], None, id="one-distinct-date"),
        pytest.param(
            [NOW - timedelta(days=200), NOW - timedelta(days=300)],
            timedelta(days=200),
            id="quiet-for-longer-than-the-window",
        ),
        pytest.param(
            [NOW - timedelta(days=10), NOW - timedelta(days=200)],
            timedelta(days=190),
            id="one-entry-within-the-window",
        ),
        pytest.param([NOW + timedelta(days=30), NOW], None, id="future-dates-ignored"),
    ],
)
def test_publishing_interval(dates: list[datetime], expected: timedelta | None) -> None:
    """The mean gap between the newest entries, or the silence since the newest if longer."""
    assert publishing_interval(dates, NOW) == expected


@pytest.mark.parametrize(
    "placeholder",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1900, 1, 1, tzinfo=UTC),
    ],
)
def test_placeholder_dates_say_nothing_of_a_feed_s_publishing(placeholder: datetime) -> None:
    """Entries dated before the web (the Unix epoch of a timestamp 0, year 1 of an unset date)
    carry no date, as their articles do (`normalize.plausible_date`): a feed whose entries all
    are has no publishing history (the default interval), not one of 56 years that slows it to
    the maximum interval, its news a day late; its newest entry is not dated 1970 either."""
    dates = [placeholder, placeholder + timedelta(seconds=1), placeholder + timedelta(hours=1)]
    assert publishing_interval(dates, NOW) is None
    assert newest_entry(dates, NOW) is None
    assert publishing_interval([*dates, NOW - HOUR, NOW - 2 * HOUR], NOW) == HOUR
    assert publishing_interval([*dates, NOW - timedelta(days=200)], NOW) is None


def test_a_feed_that_dates_its_entries_when_it_is_generated_is_not_polled_at_the_fastest_rate() -> (
    None
):
    """A feed whose generator dates every entry with the time its document is generated (its
    clock read entry by entry, across a second) has no publishing history in those dates: the
    default interval, not a one-second gap that polls it at INGEST_MIN_INTERVAL, six times as
    often. The rule is the one that tells such a stamp from edits (`dedup.stamp_seconds`); the
    entries dated otherwise still count."""
    stamp = [NOW - timedelta(seconds=1)] * 6 + [NOW] * 6
    assert publishing_interval(stamp, NOW) is None
    assert publishing_interval([*stamp, NOW - 2 * HOUR, NOW - 4 * HOUR], NOW) == 2 * HOUR
    policy_interval = success_interval(
        POLICY, publishing=publishing_interval(stamp, NOW), feed_hint=None, hints=Hints()
    )
    assert policy_interval == POLICY.default_interval
    # A morning edition: most stories published in one second are stories all the same.
    edition = [NOW - HOUR] * 5 + [NOW - 2 * HOUR, NOW - 3 * HOUR]
    assert publishing_interval(edition, NOW) is not None


@pytest.mark.parametrize("quiet_days", [80, 89, 91, 200, 2000])
def test_a_feed_quiet_for_longer_than_the_history_window_is_polled_at_the_slowest_rate(
    quiet_days: int,
) -> None:
    """A feed whose newest entries are older than the 90 days of history slows down like one
    quiet for a little less, instead of falling back to the default interval (every 30 minutes
    for a feed silent for 91 days, once a day for one silent for 89)."""
    dates = [NOW - timedelta(days=quiet_days), NOW - timedelta(days=quiet_days + 3)]
    publishing = publishing_interval(dates, NOW)
    got = success_interval(POLICY, publishing=publishing, feed_hint=None, hints=Hints())
    assert got == POLICY.max_interval


def test_hourly_feed_is_polled_more_often_than_weekly() -> None:
    """The adaptive interval follows the publishing rate."""
    hourly = publishing_interval(_every(HOUR, 10), NOW)
    weekly = publishing_interval(_every(timedelta(days=7), 5), NOW)
    fast = success_interval(POLICY, publishing=hourly, feed_hint=None, hints=Hints())
    slow = success_interval(POLICY, publishing=weekly, feed_hint=None, hints=Hints())
    assert fast == HOUR / 2
    assert slow == POLICY.max_interval
    assert fast < slow


# --- success interval ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("publishing", "feed_hint", "hints", "expected"),
    [
        pytest.param(None, None, Hints(), timedelta(minutes=30), id="no-history-default"),
        pytest.param(2 * HOUR, None, Hints(), HOUR, id="half-the-publishing-gap"),
        pytest.param(timedelta(minutes=1), None, Hints(), timedelta(minutes=5), id="min-clamp"),
        pytest.param(timedelta(days=30), None, Hints(), DAY, id="max-clamp"),
        pytest.param(2 * HOUR, None, Hints(max_age=3 * HOUR), 3 * HOUR, id="max-age-longer"),
        pytest.param(2 * HOUR, None, Hints(max_age=timedelta(0)), HOUR, id="max-age-zero"),
        pytest.param(None, None, Hints(max_age=timedelta(days=365)), DAY, id="max-age-capped"),
        pytest.param(None, None, Hints(expires=5 * HOUR), 5 * HOUR, id="expires"),
        pytest.param(None, None, Hints(expires=timedelta(days=90)), DAY, id="expires-capped"),
        pytest.param(None, None, Hints(feed_ttl=2 * HOUR), 2 * HOUR, id="rss-ttl"),
        pytest.param(None, None, Hints(feed_update=DAY * 7), DAY, id="sy-update-capped"),
        pytest.param(None, 3 * HOUR, Hints(), 3 * HOUR, id="stored-feed-hint"),
        pytest.param(None, None, Hints(retry_after=5 * HOUR), timedelta(minutes=30), id="no-ra"),
    ],
)
def test_success_interval(
    publishing: timedelta | None, feed_hint: timedelta | None, hints: Hints, expected: timedelta
) -> None:
    """Half the publishing gap, clamped; longer server or feed hints win, capped at 24 h."""
    got = success_interval(POLICY, publishing=publishing, feed_hint=feed_hint, hints=hints)
    assert got == expected


# --- next_fetch_at ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_success_within_jitter_of_interval(seed: int) -> None:
    """A healthy feed is due again after its interval ±10 %."""
    delay = _delay(0, random.Random(seed), interval=2 * HOUR)
    assert 2 * HOUR * 0.9 <= delay <= 2 * HOUR * 1.1


def test_a_thousand_feeds_added_together_do_not_fire_together() -> None:
    """Jitter spreads feeds polled at one instant over a window around their interval."""
    rng = random.Random(7)
    due = sorted(_delay(0, rng) for _ in range(1000))
    assert len(set(due)) == 1000
    assert due[-1] - due[0] > POLICY.default_interval * 0.15
    # ±10 % of 30 min spreads them over about 6 minutes: no minute holds a quarter of them.
    window = timedelta(minutes=1)
    assert max(sum(1 for d in due if t <= d < t + window) for t in due) < 250


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 5, 8, 9, 12, 30, 10_000])
@pytest.mark.parametrize("seed", range(5))
def test_failure_backoff_within_jittered_band(failures: int, seed: int) -> None:
    """Failure n waits min_interval·2^(n-1), capped at max_interval, jittered over its upper
    half."""
    ceiling = min(POLICY.min_interval * 2 ** min(failures - 1, 20), POLICY.max_interval)
    delay = _delay(failures, random.Random(seed))
    assert ceiling * 0.5 <= delay <= ceiling


def test_failure_backoff_grows_then_caps() -> None:
    """The upper bound of the backoff doubles per failure until it reaches max_interval."""
    highs = [_delay(n, _Extreme(high=True)) for n in range(1, 15)]
    assert highs[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert all(b >= a for a, b in itertools.pairwise(highs))
    assert highs[-1] == POLICY.max_interval


@pytest.mark.parametrize("failures", [1, 2, 3])
@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(POLICY, id="5m-24h"),
        pytest.param(Policy(min_interval=HOUR, max_interval=HOUR), id="1h-1h"),
        pytest.param(Policy(min_interval=HOUR, max_interval=HOUR * 1.5), id="1h-90m"),
    ],
)
def test_no_poll_comes_sooner_than_the_minimum_interval(failures: int, policy: Policy) -> None:
    """INGEST_MIN_INTERVAL is the shortest interval between two polls of a feed, whatever its
    last poll did: a failure's backoff, jittered below its step, and the probe of a feed
    given up on, jittered below max_interval, never come sooner (a first failure waits
    min_interval, not half of it; an operator polling every feed hourly, minimum and maximum
    an hour, has them probed hourly, not after 54 minutes)."""
    for rng in (_Extreme(high=False), _Extreme(high=True), random.Random(failures)):
        for active in (True, False):
            due = next_fetch_at(
                NOW,
                policy=policy,
                interval=policy.default_interval,
                failures=failures,
                active=active,
                rng=rng,
            )
            assert policy.min_interval <= due - NOW <= policy.max_interval


def test_inactive_feed_is_probed_at_the_slowest_rate() -> None:
    """A feed given up on is still fetched, once per max_interval (minus jitter)."""
    for rng in (_Extreme(high=True), _Extreme(high=False), random.Random(1)):
        delay = _delay(1, rng, active=False)
        assert POLICY.max_interval * 0.9 <= delay <= POLICY.max_interval


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [
        pytest.param(1, 3 * HOUR, 3 * HOUR, id="longer-than-backoff"),
        pytest.param(0, 5 * HOUR, 5 * HOUR, id="on-success-too"),
        pytest.param(1, timedelta(days=30), DAY, id="capped-at-max-interval"),
    ],
)
def test_retry_after_honoured_and_capped(
    failures: int, retry_after: timedelta, expected: timedelta
) -> None:
    """A later Retry-After replaces the computed delay, up to max_interval."""
    for rng in (_Extreme(high=True), _Extreme(high=False), random.Random(3)):
        assert _delay(failures, rng, retry_after=retry_after) == expected


def test_retry_after_shorter_than_backoff_is_ignored() -> None:
    """A Retry-After sooner than the backoff does not shorten it."""
    without = _delay(5, _Extreme(high=False))
    assert _delay(5, _Extreme(high=False), retry_after=timedelta(seconds=1)) == without


@pytest.mark.parametrize("failures", [0, 1, 4])
def test_deterministic_with_seeded_random(failures: int) -> None:
    """Two runs with equally seeded random sources give the same schedule."""
    a, b = random.Random(42), random.Random(42)
    assert [_delay(failures, a) for _ in range(5)] == [_delay(failures, b) for _ in range(5)]


# --- giving up ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "since", "expected"),
    [
        pytest.param(10, NOW - TWO_DAYS, True, id="enough-failures-long-enough"),
        pytest.param(9, NOW - timedelta(days=30), False, id="too-few-failures"),
        pytest.param(50, NOW - HOUR, False, id="not-long-enough"),
        pytest.param(10, None, False, id="first-failure-now"),
    ],
)
def test_should_deactivate(failures: int, since: datetime | None, expected: bool) -> None:
    """Both thresholds must be reached: N failures in a row over at least the given time."""
    assert should_deactivate(POLICY, failures=failures, failing_since=since, now=NOW) is expected


# --- hints --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("max-age=600", timedelta(seconds=600), id="max-age"),
        pytest.param("public, max-age=60, s-maxage=300", timedelta(seconds=300), id="s-maxage"),
        pytest.param('max-age="120"', timedelta(seconds=120), id="quoted"),
        pytest.param("MAX-AGE=30", timedelta(seconds=30), id="case"),
        pytest.param("no-cache, max-age=600", None, id="no-cache"),
        pytest.param("no-store", None, id="no-store"),
        pytest.param("public , NO-CACHE ,max-age=600", None, id="no-cache-spaced"),
        pytest.param(
            'no-cache="Set-Cookie", max-age=600', timedelta(seconds=600), id="no-cache-of-a-field"
        ),
        pytest.param(
            'private="no-cache", max-age=600', timedelta(seconds=600), id="inside-another-value"
        ),
        pytest.param("private", None, id="none"),
        pytest.param("max-age=99999999999999", None, id="absurd-ignored"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_cache_max_age(header: str | None, expected: timedelta | None) -> None:
    """Cache-Control freshness (RFC 9111 §5.2.2), s-maxage first."""
    assert cache_max_age(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("max-age=300, max-age=86400", id="the-origin-s-then-a-proxy-s"),
        pytest.param("max-age=86400, max-age=300", id="the-other-order"),
        pytest.param("s-maxage=60, max-age=600, s-maxage=3600", id="s-maxage"),
    ],
)
def test_a_directive_given_twice_with_two_values_leaves_no_freshness(header: str) -> None:
    """Two Cache-Control lines (an application's `max-age=300` and a proxy's `expires 1d`
    adding `max-age=86400`), which reach us joined into one: RFC 9111 §4.2.1 has a cache use
    the first occurrence or take the response as stale, not whichever came last. Stale: no
    wait beyond the feed's own interval, and no Expires beside it; the same value twice is no
    conflict."""
    assert cache_max_age(header) == timedelta(0)
    headers = {"cache-control": header, "expires": _http_date(NOW + DAY)}
    assert (hints_from(headers, NOW).max_age, hints_from(headers, NOW).expires) == (
        timedelta(0),
        None,
    )
    assert cache_max_age("max-age=600, public, max-age=600") == timedelta(minutes=10)


def test_hints_from_response_and_feed() -> None:
    """Headers and the feed's own fields become one Hints value; a bad Expires is no hint."""
    headers = {
        "cache-control": "max-age=900",
        "expires": "Wed, 01 Jan 2025 14:00:00 GMT",
        "retry-after": "120",
    }
    hints = hints_from(headers, NOW, ttl_minutes=60, update_minutes=1440)
    assert hints == Hints(
        max_age=timedelta(minutes=15),
        expires=None,  # max-age present: Expires is ignored (RFC 9111 §5.3)
        retry_after=timedelta(minutes=2),
        feed_ttl=HOUR,
        feed_update=DAY,
    )
    assert hints_from({"expires": "0"}, NOW) == Hints()
    assert hints_from({"expires": "Wed, 01 Jan 2025 14:00:00 GMT"}, NOW) == Hints(expires=2 * HOUR)


def _http_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


@pytest.mark.parametrize(
    ("headers", "max_age", "expires"),
    [
        pytest.param(
            {"cache-control": "max-age=300", "expires": _http_date(NOW + 7 * DAY)},
            timedelta(minutes=5),
            None,
            id="max-age-overrides-a-later-expires",
        ),
        pytest.param(
            {"cache-control": "max-age=0, must-revalidate", "expires": _http_date(NOW + DAY)},
            timedelta(0),
            None,
            id="max-age-0-overrides-expires",
        ),
        pytest.param(
            {"cache-control": "no-cache", "expires": _http_date(NOW + DAY)},
            None,
            None,
            id="no-cache-overrides-expires",
        ),
        pytest.param(
            {"cache-control": "no-store", "expires": _http_date(NOW + DAY)},
            None,
            None,
            id="no-store-overrides-expires",
        ),
        pytest.param(
            # The server's clock is 3 hours ahead of ours: Expires says 10 minutes after Date.
            {
                "date": _http_date(NOW + 3 * HOUR),
                "expires": _http_date(NOW + 3 * HOUR + timedelta(minutes=10)),
            },
            None,
            timedelta(minutes=10),
            id="expires-counts-from-the-server-s-date",
        ),
        pytest.param(
            {"date": "garbage", "expires": _http_date(NOW + HOUR)},
            None,
            HOUR,
            id="expires-from-now-without-a-valid-date",
        ),
        pytest.param(
            {"cache-control": "max-age=3600", "age": "3000"},
            timedelta(minutes=10),
            None,
            id="age-spent-of-max-age",
        ),
        pytest.param(
            {"cache-control": "s-maxage=600", "age": "99999999999999999999999"},
            timedelta(0),
            None,
            id="age-beyond-max-age",
        ),
        pytest.param(
            {
                "date": _http_date(NOW),
                "expires": _http_date(NOW + HOUR),
                "age": "1200",
            },
            None,
            timedelta(minutes=40),
            id="age-spent-of-expires",
        ),
        pytest.param(
            {"cache-control": "max-age=600", "age": "-5, 7"},
            timedelta(minutes=10),
            None,
            id="invalid-age-ignored",
        ),
    ],
)
def test_freshness_as_a_shared_cache_reads_it(
    headers: dict[str, str], max_age: timedelta | None, expires: timedelta | None
) -> None:
    """RFC 9111 §4.2: a response's remaining freshness is its lifetime (max-age, which
    overrides Expires; else Expires less the server's own Date) less its Age; no-cache and
    no-store leave no freshness to wait out."""
    hints = hints_from(headers, NOW)
    assert (hints.max_age, hints.expires) == (max_age, expires)


# --- permanent redirects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        pytest.param([(301, "https://b/feed")], "https://b/feed", id="one-301"),
        pytest.param([(308, "https://b/"), (301, "https://c/")], "https://c/", id="all-permanent"),
        pytest.param([(301, "https://b/"), (302, "https://c/")], None, id="ends-temporary"),
        pytest.param([(302, "https://b/")], None, id="temporary"),
        pytest.param([(307, "https://b/")], None, id="temporary-307"),
        pytest.param([], None, id="no-redirect"),
    ],
)
def test_permanent_target(hops: list[tuple[int, str]], expected: str | None) -> None:
    """Only a chain made entirely of 301/308 names a new permanent URL."""
    assert permanent_target(hops) == expected


def _fold(observations: list[tuple[timedelta, str | None]]) -> list[str | None]:
    state, moves = RedirectState(), []
    for offset, target in observations:
        state, move = observe_redirect(POLICY, state, target, NOW + offset)
        moves.append(move)
    return moves


def test_redirect_followed_after_three_fetches_over_a_day() -> None:
    """The same 301 target on 3 consecutive fetches spanning a day moves the feed."""
    t = "https://new.example/feed"
    assert _fold([(timedelta(0), t), (12 * HOUR, t), (DAY, t)]) == [None, None, t]


def test_redirect_not_followed_within_the_day() -> None:
    """Three fetches within an hour are not enough: the span must reach a day."""
    t = "https://new.example/feed"
    moves = _fold([(timedelta(0), t), (HOUR / 2, t), (HOUR, t), (DAY, t)])
    assert moves == [None, None, None, t]


def test_redirect_count_resets_on_a_fetch_without_it() -> None:
    """A fetch that was not redirected (or was redirected elsewhere) starts the count over."""
    t, other = "https://new.example/feed", "https://other.example/feed"
    assert _fold([(timedelta(0), t), (HOUR, None), (DAY, t), (2 * DAY, t)]) == [None] * 4
    assert _fold([(timedelta(0), t), (DAY, other), (2 * DAY, t), (3 * DAY, t)]) == [None] * 4


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
        # Given twice (an application's and a proxy's lines, joined with a comma): the
        # longest wait asked for, an HTTP-date's own comma kept inside it.
        pytest.param("3600, 3600", timedelta(hours=1), id="twice"),
        pytest.param("120,3600", timedelta(hours=1), id="twice-the-longest"),
        pytest.param("3600, soon", timedelta(hours=1), id="twice-one-invalid"),
        pytest.param(
            "Wed, 01 Jan 2025 12:02:00 GMT, Wed, 01 Jan 2025 13:00:00 GMT",
            timedelta(hours=1),
            id="two-dates",
        ),
        pytest.param(
            "Wed, 01 Jan 2025 12:02:00 GMT, 600", timedelta(minutes=10), id="date-seconds"
        ),
        pytest.param("soon, maybe", None, id="twice-garbage"),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    """delta-seconds or an HTTP-date relative to now; None when absent or unparseable; never
    negative."""
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("date", "retry_after", "expected"),
    [
        ("Wed, 01 Jan 2025 09:00:00 GMT", "Wed, 01 Jan 2025 09:20:00 GMT", 1200),  # 3 h behind
        ("Wed, 01 Jan 2025 15:00:00 GMT", "Wed, 01 Jan 2025 15:20:00 GMT", 1200),  # 3 h ahead
        ("Wed, 01 Jan 2025 09:30:00 GMT", "Wed, 01 Jan 2025 09:20:00 GMT", 0),  # past for it
        ("yesterday", "Wed, 01 Jan 2025 12:20:00 GMT", 1200),  # invalid Date: from now
        (None, "Wed, 01 Jan 2025 12:20:00 GMT", 1200),
        ("Wed, 01 Jan 2025 15:00:00 GMT", "120", 120),  # delta-seconds whatever the Date
    ],
    ids=["server-behind", "server-ahead", "past", "invalid-date", "no-date", "seconds"],
)
def test_a_retry_after_date_counts_from_the_response_s_date(
    date: str | None, retry_after: str, expected: int
) -> None:
    """An HTTP-date Retry-After is taken off the response's own Date (the server's clock), not
    off ours; off now when the Date is absent or invalid."""
    assert parse_retry_after(retry_after, NOW, date=date) == timedelta(seconds=expected)


def test_parse_retry_after_huge_seconds_does_not_raise() -> None:
    """An absurdly large delta-seconds is capped or ignored, never an exception."""
    result = parse_retry_after("99999999999999999999", NOW)
    assert result is None or result >= TWO_DAYS
