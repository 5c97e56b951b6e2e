"""ingest.schedule.decide_feed_update / decide_feed_failure: what one poll changes on the feed's
row, decided from the feed, the response, the parsed document and `now` alone."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from ingest.schedule import (
    MAX_VALIDATOR,
    FeedFailure,
    FeedUpdate,
    Policy,
    decide_feed_failure,
    decide_feed_update,
    on_clock,
)
from ingest.types import Feed, FeedSettings, FetchResult, ParsedEntry, ParsedFeed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POLICY = Policy(jitter=0.0)
FEED = Feed(
    id=7,
    url="https://news.example/feed",
    title="Old title",
    etag='"v1"',
    last_modified="Sat, 28 Feb 2026 10:00:00 GMT",
    body_hash=b"old",
    consecutive_failures=0,
    active=True,
)


def _result(status: int = 200, headers: dict[str, str] | None = None, **kw: object) -> FetchResult:
    return FetchResult(
        url=FEED.url,
        final_url=FEED.url,
        status=status,
        headers=headers or {},
        body=b"",
        **kw,  # type: ignore[arg-type]
    )


def _parsed(ttl: int | None = None) -> ParsedFeed:
    return ParsedFeed("rss20", "New title", "https://news.example/", "en", (), ttl_minutes=ttl)


def _update(feed: Feed = FEED, result: FetchResult | None = None, **kw: object) -> FeedUpdate:
    args: dict[str, object] = {
        "body_hash": b"new",
        "parsed": _parsed(),
        "keep_validators": True,
        "policy": POLICY,
        "now": NOW,
        "rng": random.Random(1),
    }
    args.update(kw)
    return decide_feed_update(feed, result or _result(), **args)  # type: ignore[arg-type]


def _fail(
    feed: Feed, error: str, *, status: int | None = None, retry_after: str | None = None
) -> FeedFailure:
    return decide_feed_failure(
        feed,
        error,
        retry_after=retry_after,
        policy=POLICY,
        now=NOW,
        rng=random.Random(1),
        status=status,
    )


def test_not_modified_keeps_the_stored_validators_the_server_did_not_resend() -> None:
    update = _update(result=_result(304), body_hash=None, parsed=None)
    assert update.not_modified
    assert not update.parsed
    assert (update.etag, update.last_modified) == (FEED.etag, FEED.last_modified)
    assert update.title is None
    assert update.publish_interval is None


def test_a_new_document_carries_its_own_validators_and_title() -> None:
    update = _update(result=_result(headers={"etag": '"v2"'}))
    assert update.etag == '"v2"'
    assert update.last_modified is None
    assert update.title == "New title"
    assert update.body_hash == b"new"
    assert update.next_fetch_at == NOW + POLICY.default_interval


def test_entries_waiting_for_a_retry_drop_every_validator() -> None:
    update = _update(result=_result(headers={"etag": '"v2"'}), keep_validators=False)
    assert update.etag is None
    assert update.last_modified is None
    assert update.keep_body_hash is False


def test_the_feed_ttl_is_remembered_and_slows_the_poll() -> None:
    update = _update(parsed=_parsed(ttl=120))
    assert update.feed_hint == timedelta(hours=2)
    assert update.next_fetch_at == NOW + timedelta(hours=2)


def test_a_permanent_redirect_moves_the_feed_once_it_has_held() -> None:
    moved = "https://news.example/rss"
    result = _result(redirects=((301, moved),))
    first = _update(result=result)
    assert first.move_to is None
    assert first.redirect.target == moved
    later = replace(
        FEED,
        redirect_to=moved,
        redirect_seen=POLICY.redirect_after_fetches - 1,
        redirect_since=NOW - POLICY.redirect_after,
    )
    assert _update(later, result).move_to == moved
    # A redirect to the feed's own URL is no move.
    home = replace(later, url=moved)
    assert _update(home, result).move_to is None


def test_a_failure_backs_off_and_honours_a_later_retry_after() -> None:
    failure = _fail(FEED, "HTTP 503", retry_after="2400")
    assert failure.failures == 1
    assert not failure.deactivate
    assert failure.next_fetch_at == NOW + timedelta(minutes=40)


def test_a_retry_after_is_capped_at_max_retry_after() -> None:
    """A Retry-After of a day, a date a month ahead or 20 digits holds the feed for
    `max_retry_after` (an hour by default), and never beyond `max_interval` where that is
    shorter; a backoff longer than the cap is not cut short by it (was: capped at max_interval
    alone, a day: one error page's `Retry-After: 86400` and the feed went unread for a day)."""
    month = format_datetime(NOW + timedelta(days=30), usegmt=True)
    for asked in ("86400", month, "9" * 20):
        assert _fail(FEED, "HTTP 503", retry_after=asked).next_fetch_at == NOW + HOUR
    six_hours = replace(POLICY, max_retry_after=6 * HOUR)
    failure = decide_feed_failure(
        FEED, "HTTP 503", retry_after="86400", policy=six_hours, now=NOW, rng=random.Random(1)
    )
    assert failure.next_fetch_at == NOW + 6 * HOUR
    short = replace(POLICY, max_interval=timedelta(minutes=30))
    failure = decide_feed_failure(
        FEED, "HTTP 503", retry_after="86400", policy=short, now=NOW, rng=random.Random(1)
    )
    assert failure.next_fetch_at == NOW + timedelta(minutes=30)
    streak = replace(FEED, consecutive_failures=9, failing_since=NOW)
    assert _fail(streak, "HTTP 503", retry_after="86400").next_fetch_at - NOW >= 12 * HOUR


def test_a_long_streak_of_failures_gives_the_feed_up() -> None:
    streak = replace(
        FEED,
        consecutive_failures=POLICY.deactivate_after_failures - 1,
        failing_since=NOW - POLICY.deactivate_after,
    )
    failure = _fail(streak, "HTTP 500")
    assert failure.deactivate
    assert failure.next_fetch_at >= NOW + POLICY.max_interval * (1 - POLICY.jitter)
    # Not yet long enough: another try with backoff.
    recent = replace(streak, failing_since=NOW - timedelta(hours=1))
    assert not _fail(recent, "HTTP 500").deactivate


def test_410_gone_gives_the_feed_up_at_once_with_the_reason() -> None:
    failure = _fail(FEED, "HTTP 410", status=410)
    assert failure.deactivate
    assert failure.reason is not None
    assert failure.reason.startswith("gone: the feed answers HTTP 410")


def test_a_feed_given_up_already_that_answers_410_says_it_is_gone() -> None:
    """A feed given up on after a long streak of 503s, probed once a day, that then answers
    410 Gone: the reason it is inactive is the latest cause, that it is gone, not the streak
    it was given up on for. It stays inactive, probed at the slowest rate."""
    given_up = replace(
        FEED,
        active=False,
        consecutive_failures=POLICY.deactivate_after_failures + 2,
        failing_since=NOW - timedelta(days=5),
    )
    failure = _fail(given_up, "HTTP 410", status=410)
    assert not failure.deactivate
    assert failure.reason is not None
    assert failure.reason.startswith("gone: the feed answers HTTP 410")
    assert failure.next_fetch_at >= NOW + POLICY.max_interval * (1 - POLICY.jitter)
    # Another failure of a feed given up on leaves its reason as it is.
    assert _fail(given_up, "HTTP 503", status=503).reason is None


def test_404_gives_up_sooner_only_on_a_feed_that_answered_before() -> None:
    streak = replace(
        FEED,
        consecutive_failures=POLICY.missing_after_failures - 1,
        failing_since=NOW - POLICY.missing_after,
        consecutive_not_found=POLICY.missing_after_failures - 1,
        not_found_since=NOW - POLICY.missing_after,
    )
    gone = _fail(streak, "HTTP 404", status=404)
    assert gone.deactivate
    assert gone.not_found
    assert gone.reason is not None
    assert gone.reason.startswith("gone: the feed answers HTTP 404 (3 times in a row)")
    # The streak of 404s is not six hours old yet, though the feed's failures are.
    recent = replace(streak, consecutive_failures=9, not_found_since=NOW - HOUR)
    assert not _fail(recent, "HTTP 404", status=404).deactivate
    # Any other failure is none of the streak, and ends it.
    assert not _fail(streak, "HTTP 503", status=503).not_found
    assert not _fail(streak, "timed out after 30s").not_found
    # A URL that never answered a feed: a 404 is one failure like any other.
    never = replace(streak, etag=None, last_modified=None, body_hash=None, title=None)
    assert not _fail(never, "HTTP 404", status=404).deactivate
    # A news sitemap (no title) whose last success kept no validators (entries waiting for
    # their pages) has answered before: the date of its newest entry tells.
    sitemap = replace(never, kind="sitemap", newest_entry_at=NOW - timedelta(days=1))
    assert _fail(sitemap, "HTTP 404", status=404).deactivate
    # The first 404s of a feed that answered before: not yet.
    first = replace(FEED, consecutive_failures=0, failing_since=None)
    assert not _fail(first, "HTTP 404", status=404).deactivate


def test_one_404_after_hours_of_other_failures_is_not_gone() -> None:
    """A feed that answered before, failing with 503s and timeouts for seven hours (or
    given up on after them), then answering one 404: the first 404 of a streak of its own,
    not the third of the feed's failures, so not given up on as gone: a site that is down
    may answer a 404 for a minute on its way back."""
    down = replace(FEED, consecutive_failures=6, failing_since=NOW - timedelta(hours=7))
    failure = _fail(down, "HTTP 404 Not Found", status=404)
    assert (failure.deactivate, failure.reason) == (False, None)
    given_up = replace(down, active=False, consecutive_failures=12)
    assert _fail(given_up, "HTTP 404 Not Found", status=404).reason is None


def test_a_long_streak_says_so_in_its_reason() -> None:
    streak = replace(
        FEED,
        consecutive_failures=POLICY.deactivate_after_failures - 1,
        failing_since=NOW - POLICY.deactivate_after,
    )
    failure = _fail(streak, "HTTP 503", status=503)
    assert failure.reason is not None
    assert failure.reason.startswith(f"gave up after {POLICY.deactivate_after_failures} failures")


def test_an_absurd_minimum_interval_of_a_feed_neither_overflows_nor_fails_its_poll() -> None:
    """`ingest feeds set URL min_interval=500000w` is a duration like any other: the feed's
    next poll is millennia ahead, never later than "never" as a paused feed has it, after a
    success and after a failure alike, instead of an OverflowError that failed the whole run
    every time the feed was polled."""
    never = datetime(9999, 1, 1, tzinfo=UTC)
    for weeks in (500_000, 142_857_142):
        feed = replace(FEED, settings=FeedSettings(min_interval=timedelta(weeks=weeks)))
        polls = [_update(feed), _fail(replace(feed, active=False), "HTTP 500")]
        for failures in (0, 5, 40):
            polls.append(_fail(replace(feed, consecutive_failures=failures), "HTTP 500"))
        for poll in polls:
            assert NOW + timedelta(days=365_000) < poll.next_fetch_at <= never


def test_a_long_streak_of_an_active_feed_polled_at_most_daily_backs_off_to_the_maximum() -> None:
    """Failure 40 in a row of a feed still active (it is given up on only after 100) whose
    minimum interval is a day waits up to the maximum, a week: its backoff of 2^30 days was
    an OverflowError."""
    policy = Policy(
        min_interval=timedelta(days=1),
        max_interval=timedelta(days=7),
        deactivate_after_failures=100,
    )
    for failures in (30, 31, 39, 1000):
        failure = decide_feed_failure(
            replace(FEED, consecutive_failures=failures),
            "HTTP 500",
            retry_after=None,
            policy=policy,
            now=NOW,
            rng=random.Random(1),
            status=500,
        )
        assert not failure.deactivate
        assert timedelta(days=3.5) <= failure.next_fetch_at - NOW <= timedelta(days=7)


def test_a_feed_s_own_maximum_interval_does_not_cut_a_retry_after_short() -> None:
    """A feed the operator wants polled at least every 10 minutes (`ingest feeds set URL
    max_interval=10m`) that answers 429 with `Retry-After: 3600` is not asked again before the
    hour: the server's word is capped at the service's INGEST_MAX_RETRY_AFTER (an hour, within
    INGEST_MAX_INTERVAL), not at the feed's own maximum, which would send the next request
    into the same refusal."""
    feed = replace(FEED, settings=FeedSettings(max_interval=timedelta(minutes=10)))
    assert _fail(feed, "HTTP 429", status=429, retry_after="3600").next_fetch_at == NOW + HOUR
    assert _fail(feed, "HTTP 429", status=429, retry_after="999999").next_fetch_at == (
        NOW + POLICY.max_retry_after
    )
    # Without a Retry-After, the feed's own maximum bounds its backoff as before.
    streak = replace(feed, consecutive_failures=8, failing_since=NOW)
    assert _fail(streak, "HTTP 500").next_fetch_at <= NOW + timedelta(minutes=10)


def test_a_feed_given_up_on_is_probed_once_a_day_whatever_its_own_maximum() -> None:
    """A feed the operator wants polled at least every 10 minutes (`max_interval=10m`) that is
    given up on (410 Gone, or a long streak of failures), and one given up on already: probed
    once per INGEST_MAX_INTERVAL, as every feed given up on is, not every 10 minutes for ever.
    A feed whose own minimum is longer than that (`min_interval=2d`) is probed no more often
    than its minimum; while active, the feed's own maximum still bounds its backoff."""
    eager = replace(FEED, settings=FeedSettings(max_interval=timedelta(minutes=10)))
    given_up = replace(eager, active=False, consecutive_failures=20, failing_since=NOW - HOUR)
    streak = replace(
        eager,
        consecutive_failures=POLICY.deactivate_after_failures,
        failing_since=NOW - POLICY.deactivate_after,
    )
    for failure in (
        _fail(eager, "HTTP 410", status=410),
        _fail(given_up, "HTTP 503", status=503),
        _fail(streak, "HTTP 503", status=503),
    ):
        assert failure.next_fetch_at == NOW + POLICY.max_interval
    slow = replace(given_up, settings=FeedSettings(min_interval=timedelta(days=2)))
    assert _fail(slow, "HTTP 503", status=503).next_fetch_at == NOW + timedelta(days=2)
    active = replace(eager, consecutive_failures=3, failing_since=NOW - HOUR)
    assert _fail(active, "HTTP 503", status=503).next_fetch_at <= NOW + timedelta(minutes=10)


def test_a_feed_given_up_for_a_reason_of_the_caller_s_is_probed_at_the_slowest_rate() -> None:
    """A web page replaced by the feeds it links is given up on at its first failure, with
    that reason, and probed once a day, not polled again on a first failure's backoff; found
    so again on a later probe, it stays given up on with that reason, probed as before."""
    why = "a web page, not a feed: replaced by https://news.example/rss"
    for feed in (FEED, replace(FEED, active=False, consecutive_failures=1)):
        failure = decide_feed_failure(
            feed, why, retry_after=None, policy=POLICY, now=NOW, rng=random.Random(1), give_up=why
        )
        assert (failure.deactivate, failure.reason) == (feed.active, why)
        assert failure.next_fetch_at == NOW + POLICY.max_interval


def test_a_feed_gone_quiet_slows_down_though_it_answers_304() -> None:
    """The newest entry's date is kept with the feed: a feed that published hourly and has
    said nothing new for three days slows to the maximum interval on its 304s (or on the
    same bytes again), as it would if it were parsed, instead of staying at half an hour
    for as long as it is unchanged."""
    entries = tuple(
        ParsedEntry(f"g{n}", f"https://news.example/{n}", published_at=NOW - HOUR * n)
        for n in range(10)
    )
    parsed = _update(parsed=replace(_parsed(), entries=entries))
    assert parsed.newest_entry_at == NOW
    assert parsed.next_fetch_at == NOW + timedelta(minutes=30)
    later = NOW + timedelta(days=3)
    feed = replace(FEED, publish_interval=parsed.publish_interval, newest_entry_at=NOW)
    for body_hash in (None, b"old"):
        unchanged = _update(
            feed,
            _result(304 if body_hash is None else 200),
            body_hash=body_hash,
            parsed=None,
            now=later,
        )
        assert unchanged.next_fetch_at == later + POLICY.max_interval
        assert unchanged.newest_entry_at is None  # kept as it is
        # The interval it is polled at is the one recorded, as a parse would record it.
        assert unchanged.publish_interval == timedelta(days=3)


def test_a_feed_whose_newest_entry_is_not_known_is_read_again_on_its_next_poll() -> None:
    """A feed with a publishing interval but no newest entry's date (recorded before sql/0024
    kept it) cannot tell on a 304 (or the same bytes) how long it has been quiet: its
    validators and body hash are dropped, so that the next poll reads the feed and records the
    date, instead of polling it at its old rate for as long as it is unchanged. A feed that
    has both, or neither, keeps its validators."""
    legacy = replace(FEED, publish_interval=HOUR, newest_entry_at=None)
    for body_hash in (None, b"old"):
        result = _result(304 if body_hash is None else 200)
        unchanged = _update(legacy, result, body_hash=body_hash, parsed=None)
        assert (unchanged.etag, unchanged.last_modified) == (None, None)
        assert unchanged.keep_body_hash is False
    for feed in (replace(legacy, newest_entry_at=NOW - HOUR), FEED):
        kept = _update(feed, _result(304), body_hash=None, parsed=None)
        assert (kept.etag, kept.keep_body_hash) == (FEED.etag, True)


def test_a_last_modified_later_than_the_response_is_not_sent_back() -> None:
    """A Last-Modified after the response's own Date (a post scheduled ahead, a server clock
    gone wrong once; RFC 9110 §8.8.2.1 forbids it) is not kept as a validator: sent back as
    If-Modified-Since, every server that answers 304 when nothing is newer than that date would
    answer 304 to every change until that date. The ETag still is; a sane one is kept."""
    future = "Sat, 01 Jan 2028 00:00:00 GMT"
    date = "Sun, 01 Mar 2026 12:00:00 GMT"
    headers = {"etag": '"v2"', "last-modified": future, "date": date}
    update = _update(result=_result(headers=headers))
    assert (update.etag, update.last_modified) == ('"v2"', None)
    # Without a Date, our own clock says what is future.
    update = _update(result=_result(headers={"last-modified": future}))
    assert update.last_modified is None
    # A 304 carrying one keeps the stored one, as if it had sent none.
    update = _update(result=_result(304, headers={"last-modified": future}), parsed=None)
    assert update.last_modified == FEED.last_modified
    sane = "Sun, 01 Mar 2026 11:59:00 GMT"
    assert _update(result=_result(headers={"last-modified": sane, "date": date})).last_modified == (
        sane
    )


def test_a_last_modified_seconds_ahead_of_our_clock_without_a_date_is_kept() -> None:
    """With no Date to compare it to, a Last-Modified a few seconds ahead of this machine's
    clock is the server's clock running fast, not a post dated ahead: dropped, the feed would
    lose If-Modified-Since at every poll. An hour ahead is still dropped."""
    seconds_ahead = format_datetime(NOW + timedelta(seconds=20), usegmt=True)
    update = _update(result=_result(headers={"last-modified": seconds_ahead}), now=NOW)
    assert update.last_modified == seconds_ahead
    hour_ahead = format_datetime(NOW + HOUR, usegmt=True)
    assert (
        _update(result=_result(headers={"last-modified": hour_ahead}), now=NOW).last_modified
        is None
    )


def test_jitter_keeps_a_poll_within_the_bounds_of_its_interval() -> None:
    """Jitter spreads polls, but never past the bounds the interval was clamped to: a feed the
    operator wants polled at least every 10 minutes (`max_interval=10m`) or at most once an
    hour (`min_interval=1h`), a server whose `Cache-Control: max-age=7200` asks for two hours,
    a weekly feed at INGEST_MAX_INTERVAL, one whose server asks for a year (capped at that
    maximum). Within those bounds the polls still drift apart."""
    policy = Policy()  # ±10 % jitter
    hourly = tuple(
        ParsedEntry(f"g{n}", f"https://news.example/{n}", published_at=NOW - HOUR * n)
        for n in range(10)
    )
    weekly = tuple(
        replace(e, published_at=NOW - timedelta(days=7) * n) for n, e in enumerate(hourly)
    )
    cases = [
        (FeedSettings(max_interval=timedelta(minutes=10)), {}, weekly, timedelta(minutes=10)),
        (FeedSettings(min_interval=HOUR), {}, hourly, HOUR),
        (FeedSettings(), {"cache-control": "max-age=7200"}, hourly, 2 * HOUR),
        (FeedSettings(), {}, weekly, policy.max_interval),
        (FeedSettings(), {"cache-control": "max-age=31536000"}, hourly, policy.max_interval),
    ]
    for settings, headers, entries, bound in cases:
        delays = {
            _update(
                replace(FEED, settings=settings),
                _result(headers=headers),
                parsed=replace(_parsed(), entries=entries),
                policy=policy,
                rng=random.Random(seed),
            ).next_fetch_at
            - NOW
            for seed in range(50)
        }
        at_most = bound == policy.max_interval or settings.max_interval is not None
        assert all(d <= bound if at_most else d >= bound for d in delays), (bound, sorted(delays))
        assert len(delays) > 25


def test_a_validator_too_long_to_send_back_is_not_kept() -> None:
    """An ETag of kilobytes (or such a Last-Modified) is not kept: echoed in If-None-Match it
    meets the header limits of the server or its proxy (400, 431) at every poll. One of
    MAX_VALIDATOR characters still is."""
    huge = '"' + "x" * MAX_VALIDATOR + '"'
    update = _update(result=_result(headers={"etag": huge, "last-modified": "x" * 5000}))
    assert (update.etag, update.last_modified) == (None, None)
    fits = '"' + "x" * (MAX_VALIDATOR - 2) + '"'
    assert _update(result=_result(headers={"etag": fits})).etag == fits


def test_a_wall_clock_step_moves_the_times_a_feed_s_streaks_began() -> None:
    """The streaks' beginnings read on a claim's clock, moved by a step of that clock since
    (two hours ahead, or back): on the clock as it reads now, the streak lasted what it did.
    A step under a minute, or a feed without streaks, is left as it is."""
    streaks = replace(
        FEED,
        failing_since=NOW - 5 * HOUR,
        not_found_since=NOW - 4 * HOUR,
        redirect_to="https://news.example/moved",
        redirect_seen=2,
        redirect_since=NOW - 3 * HOUR,
    )
    for step in (2 * HOUR, -2 * HOUR):
        moved = on_clock(streaks, step)
        assert (moved.failing_since, moved.not_found_since, moved.redirect_since) == (
            NOW - 5 * HOUR + step,
            NOW - 4 * HOUR + step,
            NOW - 3 * HOUR + step,
        )
        assert replace(moved, failing_since=None, not_found_since=None, redirect_since=None) == (
            replace(streaks, failing_since=None, not_found_since=None, redirect_since=None)
        )
        assert on_clock(FEED, step) == FEED
    assert on_clock(streaks, timedelta(seconds=59)) == streaks
