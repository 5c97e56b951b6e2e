"""When to fetch a feed next, whether to give up on it, and when to follow its permanent
redirect. Pure functions of `now`, what the server and the feed said, the feed's publishing and
failure history, and a random source: no clock, no I/O."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

from ingest.dedup import stamp_seconds
from ingest.normalize import EARLIEST_DATE, canonical_url
from ingest.types import Feed, FeedSettings, FetchResult, FullText, ParsedFeed

PERMANENT_REDIRECTS = frozenset({301, 308})
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
"""The latest next fetch time: "never", as a paused feed has it (sql/queries.sql,
disable_feed)."""
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)\"?\s*(?=,|$)", re.IGNORECASE)
_HISTORY_WINDOW = timedelta(days=90)
_HISTORY_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class Policy:
    """The scheduling policy; see the README's "Scheduling" section for what each bound means."""

    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=24)
    default_interval: timedelta = timedelta(minutes=30)
    jitter: float = 0.1
    deactivate_after_failures: int = 10
    deactivate_after: timedelta = timedelta(days=2)
    redirect_after_fetches: int = 3
    redirect_after: timedelta = timedelta(days=1)
    missing_after_failures: int = 3
    """A feed that has answered before and now answers 404 is given up on after this many
    404s in a row over at least `missing_after` (a 410 at once): 404s, not failures of any
    kind that a 404 ends."""
    missing_after: timedelta = timedelta(hours=6)
    max_retry_after: timedelta = timedelta(hours=1)
    """The longest a Retry-After (429, 503) holds a feed, its host's other feeds and the host
    (`retry_after_wait`), and never beyond `max_interval`."""


@dataclass(frozen=True, slots=True)
class Hints:
    """What the server and the feed document say about when to come back; each may be None."""

    max_age: timedelta | None = None
    """Cache-Control s-maxage / max-age, less the response's Age."""
    expires: timedelta | None = None
    """Expires less the response's Date (else now), less its Age; None beside a max-age."""
    retry_after: timedelta | None = None
    feed_ttl: timedelta | None = None
    """RSS `<ttl>`."""
    feed_update: timedelta | None = None
    """`sy:updatePeriod` / `sy:updateFrequency`."""


def parse_retry_after(
    value: str | None, now: datetime, *, date: str | None = None
) -> timedelta | None:
    """Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None when absent or
    unparseable, never negative. An HTTP-date is the server's clock speaking: it counts from
    the response's own `date` (its Date header), from `now` when that is absent or invalid, so
    a server clock hours off ours neither cuts the wait to nothing nor stretches it by hours.
    A Retry-After given twice (an application's and a proxy's lines, which arrive joined with
    a comma: `600, 3600`) asks for the longest of its valid values: read as one, it was
    invalid, and the host was asked again minutes later into the outage it announced."""
    seconds = _delta_seconds(value)
    if seconds is not None or not value:
        return seconds
    since = _date(date) or now
    waits = [
        wait for member in _members(value) if (wait := _member_wait(member, since)) is not None
    ]
    return max(waits, default=None)


def retry_after_cap(policy: Policy) -> timedelta:
    """The longest wait a Retry-After is honoured for: `max_retry_after`, or the service's
    `max_interval` where that is shorter (the longest interval of any poll)."""
    return min(policy.max_retry_after, policy.max_interval)


def retry_after_wait(
    policy: Policy, value: str | None, now: datetime, *, date: str | None = None
) -> timedelta | None:
    """How long a Retry-After holds a feed, its host's other feeds in the database and the
    host in the process that met it (`parse_retry_after`), capped at `retry_after_cap`: the
    one rule of all three. A server asking for a day, a month or for ever (an error page's
    `Retry-After: 86400`, a maintenance page's date weeks ahead) is asked again after the cap,
    one request, rather than every feed of its site left unread for that long. `policy` is
    the service's, not a feed's own: a feed's lower `max_interval` bounds its polls, not the
    server's word."""
    wait = parse_retry_after(value, now, date=date)
    return None if wait is None else min(wait, retry_after_cap(policy))


def _member_wait(member: str, since: datetime) -> timedelta | None:
    seconds = _delta_seconds(member)
    return seconds if seconds is not None else _until(member, since)


_WEEKDAY = re.compile(r"[A-Za-z]+")


def _members(value: str) -> list[str]:
    """The values of a header line given more than once, joined with commas (RFC 9110 §5.3);
    an HTTP-date's own comma, after its weekday, is kept inside it."""
    members: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if members and _WEEKDAY.fullmatch(members[-1]):
            members[-1] = f"{members[-1]}, {part}"
        else:
            members.append(part)
    return members


def _delta_seconds(value: str | None) -> timedelta | None:
    """delta-seconds (RFC 9111 §1.2.2: Retry-After, Age), at most 10**9; None if not one."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Clamped before int() and timedelta see it: a hostile header must overflow neither.
        return timedelta(seconds=min(int(value[:10]) if len(value) <= 10 else 10**9, 10**9))
    return None


def _until(http_date: str, now: datetime) -> timedelta | None:
    when = _date(http_date)
    return max(when - now, timedelta(0)) if when is not None else None


@functools.lru_cache(maxsize=256)
def _date(http_date: str | None) -> datetime | None:
    """An HTTP-date (any of RFC 9110 §5.6.7's three forms), None when absent or invalid.
    Cached: a warm pass reads two or three a feed, and a site's Date changes once a second
    and its Last-Modified seldom (2.8 µs each parsed)."""
    if not http_date:
        return None
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def cache_max_age(cache_control: str | None) -> timedelta | None:
    """`s-maxage` (preferred, it is meant for shared caches like us) or `max-age` of a
    Cache-Control header; None when absent, or when `no-store`/`no-cache` ask us not to reuse.
    A directive given twice with two values (two Cache-Control lines, an application's and a
    proxy's, arrive joined into one) leaves the response stale, zero, as RFC 9111 §4.2.1
    allows: which one the server meant is unknown, and the last one could be a day."""
    if not cache_control or _no_reuse(cache_control):
        return None
    # More than 12 digits is not a duration anyone means; ignore it rather than overflow.
    found: dict[str, set[int]] = {}
    for name, secs in _MAX_AGE.findall(cache_control):
        if len(secs) <= 12:
            found.setdefault(name.lower(), set()).add(int(secs))
    values = found.get("s-maxage", found.get("max-age"))
    if values is None:
        return None
    return timedelta(seconds=values.pop()) if len(values) == 1 else timedelta(0)


_NO_REUSE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?=,|$)", re.IGNORECASE)
"""`no-store`, or `no-cache` without field names: no freshness to wait out. `no-cache` with
field names (`no-cache="Set-Cookie"`) forbids reusing those fields only (RFC 9111 §5.2.2.4),
and a directive's name inside another's value is none."""


def _no_reuse(cache_control: str) -> bool:
    return _NO_REUSE.search(cache_control) is not None


def hints_from(
    headers: Mapping[str, str],
    now: datetime,
    *,
    ttl_minutes: int | None = None,
    update_minutes: int | None = None,
) -> Hints:
    """Hints from a response's headers (lower-case keys) and the feed document's own fields.
    The server's freshness is read as RFC 9111 §4.2 has a shared cache read it: max-age
    overrides Expires (§5.3), and no-cache / no-store leave none; Expires counts from the
    server's own Date, so a server clock hours off ours does not move it; what the response's
    Age says is spent already (a CDN's copy served late in its life) is taken off."""
    cache_control = headers.get("cache-control")
    max_age = cache_max_age(cache_control)
    expires = None
    if max_age is None and "expires" in headers and not _no_reuse(cache_control or ""):
        # RFC 9111 §5.3: an invalid Expires means "already expired", i.e. no hint.
        date = _date(headers.get("date"))
        expires = _until(headers["expires"], date or now)
    age = _delta_seconds(headers.get("age")) or timedelta(0)
    return Hints(
        max_age=max(max_age - age, timedelta(0)) if max_age is not None else None,
        expires=max(expires - age, timedelta(0)) if expires is not None else None,
        retry_after=parse_retry_after(headers.get("retry-after"), now, date=headers.get("date")),
        feed_ttl=timedelta(minutes=ttl_minutes) if ttl_minutes else None,
        feed_update=timedelta(minutes=update_minutes) if update_minutes else None,
    )


def publishing_interval(dates: Iterable[datetime], now: datetime) -> timedelta | None:
    """The feed's typical time between two entries, from the dates of its newest entries (up to
    20, within 90 days; its two newest when fewer are that recent): the mean gap, or the time
    since the newest entry if that is longer (a feed gone quiet slows down). None with fewer
    than two dated entries. Dates most of the entries share to the second (or across one) are
    no publishing times but the time the document was generated, given to every entry
    (`dedup.stamp_seconds`): counted, their split across a second would be a one-second gap
    and the feed polled at the fastest rate. (A morning edition's stories published in one
    second, most of the feed's, are left out too: the feed is as fast as its other entries
    say.)"""
    dated = sorted(_counted(dates, now), reverse=True)
    recent = [d for d in dated if now - _HISTORY_WINDOW <= d][:_HISTORY_ENTRIES]
    if len(recent) < 2:
        # A feed quiet for longer than the window is as slow as its newest entries say, not
        # unknown: the default interval would poll it more often than one quiet for less.
        recent = dated[:2]
    if len(recent) < 2:
        return None
    mean_gap = (recent[0] - recent[-1]) / (len(recent) - 1)
    return quiet_for(mean_gap, recent[0], now)


def quiet_for(interval: timedelta, newest: datetime, now: datetime) -> timedelta:
    """A feed's publishing interval as of `now`: the interval between its entries, or the time
    since its newest entry if that is longer (a feed gone quiet slows down). The one rule for a
    feed parsed and for one whose poll found nothing new (a 304, the same bytes)."""
    return max(interval, now - newest)


def newest_entry(dates: Iterable[datetime], now: datetime) -> datetime | None:
    """The newest of the entries' dates that `publishing_interval` counts (none from the
    future, none a stamp), or None."""
    return max(_counted(dates, now), default=None)


def _counted(dates: Iterable[datetime], now: datetime) -> set[datetime]:
    """The distinct entry dates that tell when the feed publishes: no later than an hour from
    now (a date further ahead is a feed's mistake), nor earlier than the web (`EARLIEST_DATE`:
    a placeholder, 1970-01-01 of a timestamp 0, no date, as it is none for the entry's
    article: `normalize.plausible_date`), nor a stamp (`dedup.stamp_seconds`)."""
    plausible = [d for d in dates if EARLIEST_DATE <= d <= now + timedelta(hours=1)]
    stamped = stamp_seconds(plausible)
    return {d for d in plausible if d.replace(microsecond=0) not in stamped}


def success_interval(
    policy: Policy, *, publishing: timedelta | None, feed_hint: timedelta | None, hints: Hints
) -> timedelta:
    """Half the publishing interval (so a new entry waits on average a quarter of it), clamped
    to [min_interval, max_interval]; the default interval when there is no history. A server or
    feed asking for a longer wait (Cache-Control, Expires, <ttl>, sy:update*) is honoured, each
    capped at max_interval so a bad value cannot park a feed for months."""
    base = publishing / 2 if publishing is not None else policy.default_interval
    interval = _clamp(base, policy.min_interval, policy.max_interval)
    return max(interval, shortest_wait(policy, feed_hint=feed_hint, hints=hints))


def shortest_wait(policy: Policy, *, feed_hint: timedelta | None, hints: Hints) -> timedelta:
    """The least a successful poll waits: min_interval, or what the server or the feed asks for
    when that is longer (each capped at max_interval). Jitter must not cut it short either: a
    poll before a max-age or <ttl> ends asks for what the server said would not change yet."""
    asked = (hints.max_age, hints.expires, hints.feed_ttl, hints.feed_update, feed_hint)
    return max([policy.min_interval, *(min(h, policy.max_interval) for h in asked if h)])


def next_fetch_at(
    now: datetime,
    *,
    policy: Policy,
    interval: timedelta,
    failures: int,
    active: bool = True,
    retry_after: timedelta | None = None,
    retry_after_cap: timedelta | None = None,
    shortest: timedelta | None = None,
    rng: random.Random,
) -> datetime:
    """After a success (`failures == 0`): `interval` ± jitter, the jitter kept within
    [`shortest` (min_interval when None), max_interval]: the operator's bounds of the feed's
    interval, and a wait its server asked for, hold for the poll itself, not only for the
    interval it is jittered around. A wait asked for holds up to the lower end of
    max_interval's jitter band: one that long is cut to max_interval anyway, and feeds whose
    servers all ask for a day or more must still drift apart. After failure n: exponential backoff
    `min_interval * 2**(n-1)`, capped at max_interval, with jitter on its upper half. An
    inactive feed is probed at the slowest rate. Neither jitter goes below min_interval (a
    first failure waits it, not half of it). A Retry-After is honoured when it is later,
    capped at `retry_after_cap` (max_interval when None). Never later than `LATEST` (a feed's
    settings may ask for intervals of millennia: they must not overflow the date, which would
    fail the run)."""
    horizon = max(LATEST - now, timedelta(0))
    highest = min(policy.max_interval, horizon)
    # The jitter below a failure's backoff or a probe's max_interval stops at min_interval:
    # the shortest interval between two polls of a feed, whatever its last poll did.
    lowest = min(policy.min_interval, highest)
    if not active:
        delay = _jittered(highest * (1 - policy.jitter), highest, lowest, rng)
    elif failures <= 0:
        base = min(interval, horizon)
        asked = min(shortest or timedelta(0), highest * (1 - policy.jitter))
        low = min(max(policy.min_interval, asked), highest)
        delay = timedelta(
            seconds=rng.uniform(
                _clamp(base * (1 - policy.jitter), low, highest).total_seconds(),
                _clamp(base * (1 + policy.jitter), low, highest).total_seconds(),
            )
        )
    else:
        # Doubled only up to the cap: min_interval * 2**30 is beyond what a timedelta holds
        # once min_interval is a day.
        backoff = min(policy.min_interval, highest)
        for _ in range(min(failures - 1, 30)):
            if backoff >= highest:
                break
            backoff *= 2
        backoff = min(backoff, highest)
        delay = _jittered(backoff * 0.5, backoff, lowest, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_cap or policy.max_interval, horizon))
    return now + min(delay, horizon)


def should_deactivate(
    policy: Policy, *, failures: int, failing_since: datetime | None, now: datetime
) -> bool:
    """Give up on a feed (probe it at the slowest rate only) once it has failed
    `deactivate_after_failures` times in a row over at least `deactivate_after`."""
    since = failing_since or now
    return failures >= policy.deactivate_after_failures and now - since >= policy.deactivate_after


@dataclass(frozen=True, slots=True)
class RedirectState:
    """A permanent redirect seen on the feed's last consecutive fetches."""

    target: str | None = None
    seen: int = 0
    since: datetime | None = None


def permanent_target(redirects: Iterable[tuple[int, str]]) -> str | None:
    """Where a redirect chain ends when every hop in it is permanent (301/308), else None."""
    hops = list(redirects)
    if hops and all(status in PERMANENT_REDIRECTS for status, _ in hops):
        return hops[-1][1]
    return None


def observe_redirect(
    policy: Policy, state: RedirectState, target: str | None, now: datetime
) -> tuple[RedirectState, str | None]:
    """Fold one fetch's outcome into the redirect state. Returns the new state and, once the same
    permanent target has been seen on `redirect_after_fetches` consecutive fetches spanning at
    least `redirect_after`, the URL the feed should move to. Anything else resets the count."""
    if target is None:
        return RedirectState(), None
    since = state.since if target == state.target and state.since is not None else None
    seen = state.seen + 1 if since is not None else 1
    since = since or now
    if seen >= policy.redirect_after_fetches and now - since >= policy.redirect_after:
        return RedirectState(), target
    return RedirectState(target, seen, since), None


def _jittered(low: timedelta, high: timedelta, lowest: timedelta, rng: random.Random) -> timedelta:
    """A delay drawn from [low, high], the part of it below `lowest` cut off (all of it
    `lowest` when `high` is no more)."""
    low, high = max(low, lowest), max(high, lowest)
    return timedelta(seconds=rng.uniform(low.total_seconds(), high.total_seconds()))


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, high))


# --- one poll's outcome, decided once ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """What a successful poll changes on the feed's row; the store writes it as it is."""

    feed_id: int
    now: datetime
    next_fetch_at: datetime
    not_modified: bool
    """The poll brought nothing to parse (304, or the same bytes as last time)."""
    etag: str | None
    last_modified: str | None
    body_hash: bytes | None
    """None keeps the stored hash, unless `keep_body_hash` is false (then it is cleared)."""
    keep_body_hash: bool
    parsed: bool
    title: str | None
    site_url: str | None
    publish_interval: timedelta | None
    """The publishing interval the poll was decided by: a parse's (None: the feed has no
    publishing history), or the stored one as long as the feed has been quiet since."""
    feed_hint: timedelta | None
    redirect: RedirectState
    move_to: str | None
    """The feed's new URL, once its permanent redirect has held long enough."""
    full_text: FullText | None = None
    """The feed's full-text state after this poll; None leaves it as it is."""
    newest_entry_at: datetime | None = None
    """The date of the feed's newest dated entry; None leaves the stored one as it is."""


@dataclass(frozen=True, slots=True)
class FeedFailure:
    """What a failed poll changes on the feed's row."""

    feed_id: int
    now: datetime
    next_fetch_at: datetime
    error: str
    deactivate: bool
    failures: int
    reason: str | None = None
    """Why the feed is given up on, shown in `news.feeds.inactive_reason`: None unless
    `deactivate`, or the feed, inactive already, is found gone (then its reason anew)."""
    not_found: bool = False
    """The failure is a 404: one more of the feed's 404s in a row (`Feed.consecutive_not_found`,
    since `Feed.not_found_since`); any other failure ends them."""


CLOCK_STEP: Final = timedelta(minutes=1)
"""How far a wall clock must have been set (by NTP, an operator) during a poll for the times
its feed's streaks began to be moved with it (`on_clock`): a step shorter than that changes no
streak measured in hours."""


def on_clock(feed: Feed, step: timedelta) -> Feed:
    """The feed as claimed, the times its streaks began (failures, 404s, a permanent
    redirect), read on the wall clock of its claim, moved onto that clock as it reads now:
    `step` is how far the clock was set since the claim, ahead or (negative) back, beyond
    the time that passed. Without it, a clock stepped two hours ahead during a poll would
    lengthen the streak by two hours (a feed given up on, or found gone, early), and the
    redirect's start, written back, would be recorded two hours early for good. Unchanged
    for a step shorter than `CLOCK_STEP`."""
    if abs(step) < CLOCK_STEP:
        return feed
    return replace(
        feed,
        failing_since=_moved(feed.failing_since, step),
        not_found_since=_moved(feed.not_found_since, step),
        redirect_since=_moved(feed.redirect_since, step),
    )


def _moved(when: datetime | None, step: timedelta) -> datetime | None:
    if when is None:
        return None
    try:
        return when + step
    except OverflowError:
        return when


def policy_for(policy: Policy, settings: FeedSettings) -> Policy:
    """The service's policy with the feed's own interval bounds (`ingest feeds set`), where
    it has them; a maximum below the minimum is raised to it."""
    if settings.min_interval is None and settings.max_interval is None:
        return policy
    low = settings.min_interval or policy.min_interval
    high = settings.max_interval or policy.max_interval
    return replace(policy, min_interval=low, max_interval=max(low, high))


def decide_feed_update(
    feed: Feed,
    result: FetchResult,
    *,
    body_hash: bytes | None,
    parsed: ParsedFeed | None,
    keep_validators: bool,
    policy: Policy,
    now: datetime,
    rng: random.Random,
    full_text: FullText | None = None,
) -> FeedUpdate:
    """A successful poll: when to come back (the server's and the feed's hints, the feed's own
    publishing rate), which validators to keep (none when `keep_validators` is false: entries
    waiting for another try need the next poll to parse the feed again; none either when
    nothing was parsed for a feed whose newest entry's date is not known, so that the next
    poll reads it and learns how long it has been quiet), and whether the feed has moved.
    `parsed` is None when there was nothing to parse."""
    policy = policy_for(policy, feed.settings)
    hints = hints_from(
        result.headers,
        now,
        ttl_minutes=parsed.ttl_minutes if parsed else None,
        update_minutes=parsed.update_minutes if parsed else None,
    )
    dates = (
        [d for e in parsed.entries if (d := e.published_at or e.updated_at) is not None]
        if parsed
        else []
    )
    # Unknown to a feed recorded before sql/0024 kept it: its next poll reads the feed again.
    unknown_newest = feed.publish_interval is not None and feed.newest_entry_at is None
    if parsed:
        publishing = publishing_interval(dates, now)
    elif feed.publish_interval is not None and feed.newest_entry_at is not None:
        # Nothing new (304, or the same bytes): the feed has been quiet for longer still, and
        # slows down as it would if it were parsed.
        publishing = quiet_for(feed.publish_interval, feed.newest_entry_at, now)
    else:
        publishing = feed.publish_interval
    keep_validators = keep_validators and (parsed is not None or not unknown_newest)
    feed_hint = max((h for h in (hints.feed_ttl, hints.feed_update) if h), default=None)
    kept_hint = feed_hint if parsed else feed.feed_hint
    interval = success_interval(policy, publishing=publishing, feed_hint=kept_hint, hints=hints)
    redirect, move_to = observe_redirect(
        policy,
        RedirectState(feed.redirect_to, feed.redirect_seen, feed.redirect_since),
        _canonical_or_none(permanent_target(result.redirects)),
        now,
    )
    etag = _sendable(result.etag) or (feed.etag if result.not_modified else None)
    last_modified = _sendable(_sane_last_modified(result, now)) or (
        feed.last_modified if result.not_modified else None
    )
    return FeedUpdate(
        feed_id=feed.id,
        now=now,
        next_fetch_at=next_fetch_at(
            now,
            policy=policy,
            interval=interval,
            failures=0,
            shortest=shortest_wait(policy, feed_hint=kept_hint, hints=hints),
            rng=rng,
        ),
        not_modified=parsed is None,
        etag=etag if keep_validators else None,
        last_modified=last_modified if keep_validators else None,
        body_hash=body_hash,
        keep_body_hash=keep_validators,
        parsed=parsed is not None,
        title=parsed.title if parsed else None,
        site_url=parsed.link if parsed else None,
        publish_interval=publishing,
        feed_hint=feed_hint,
        redirect=redirect,
        move_to=move_to if move_to != feed.url else None,
        full_text=full_text if full_text != feed.full_text else None,
        newest_entry_at=newest_entry(dates, now),
    )


def _sane_last_modified(result: FetchResult, now: datetime) -> str | None:
    """The response's Last-Modified, unless it is later than the response itself (its Date,
    else `now`), which RFC 9110 §8.8.2.1 forbids: sent back as If-Modified-Since, a date ahead
    would have the many servers that answer 304 when nothing is newer than it answer 304 to
    every change until then. An unreadable one is sent back as it is (the server may compare
    it as a string). Against our own clock, where the response has no Date, a minute ahead is
    the server's clock, not its content: that value is kept."""
    value = result.last_modified
    when = _date(value)
    served = _date(result.headers.get("date"))
    if when is not None and when > (served or now + _OUR_CLOCK_SLACK):
        return None
    return value


MAX_VALIDATOR: Final = 1024
"""Characters of an ETag or Last-Modified kept to be sent back. Real ones are tens of
characters; one of kilobytes, echoed in If-None-Match, meets the header limits of the server
or a proxy in front of it (400, 431) at every poll, and the feed fails until it is given up."""


def _sendable(validator: str | None) -> str | None:
    return validator if validator is not None and len(validator) <= MAX_VALIDATOR else None


_OUR_CLOCK_SLACK: Final = timedelta(minutes=1)
"""How far ahead of this machine's clock a server's clock may run for its Last-Modified, with
no Date to compare it to, to count as sane (`_sane_last_modified`)."""


def decide_feed_failure(
    feed: Feed,
    error: str,
    *,
    retry_after: str | None,
    policy: Policy,
    now: datetime,
    rng: random.Random,
    status: int | None = None,
    date: str | None = None,
    give_up: str | None = None,
) -> FeedFailure:
    """A failed poll: one more failure in the streak, backoff (a Retry-After honoured when it
    is later), and whether to give up on the feed now: after a long streak of failures of any
    kind; at once on 410 Gone, or when the caller says why (`give_up`: a web page replaced by
    the feeds it links); after a short streak of 404s in a row when the feed has answered
    before, counted apart from the failures before them: hours of 503s ended by one 404 are a
    site coming back, not a feed gone (`status` is the HTTP status of the failure, if any;
    `date` its Date header, which a Retry-After HTTP-date counts from). A Retry-After is
    capped by the service's policy (`retry_after_wait`), not by a lower maximum interval of
    the feed's own (`ingest feeds set`): the operator asks to hear from the feed that often,
    not to ask again against the server's word; nor to probe a feed given up on more often
    than the service probes any."""
    service = policy
    service_max = policy.max_interval
    policy = policy_for(policy, feed.settings)
    failures = feed.consecutive_failures + 1
    not_found = status == 404
    missing = feed.consecutive_not_found + 1 if not_found else 0
    answered_before = _has_answered(feed)
    gone = status == 410 or (
        not_found
        and answered_before
        and missing >= policy.missing_after_failures
        and now - (feed.not_found_since or now) >= policy.missing_after
    )
    deactivate = feed.active and (
        gone
        or give_up is not None
        or should_deactivate(policy, failures=failures, failing_since=feed.failing_since, now=now)
    )
    # Found gone, a feed given up on already is so for the latest cause, not the one it was
    # given up for (a streak of 503s, a web page).
    if give_up is not None:
        reason = give_up
    elif gone:
        streak = (
            f"{missing} times in a row"
            if not_found
            else f"{failures} failure{'s' * (failures > 1)} in a row"
        )
        reason = f"gone: the feed answers HTTP {status} ({streak}); last: {error[:500]}"
    elif deactivate:
        reason = f"gave up after {failures} failures in a row; last: {error[:500]}"
    else:
        reason = None
    active = feed.active and not deactivate
    # A feed given up on is probed at the service's slowest rate (its own, when that is
    # slower still): a lower maximum of its own bounds the polls of a feed that answers; a
    # feed gone (410) would be asked every few minutes for ever.
    slowest = max(service_max, policy.max_interval)
    return FeedFailure(
        feed_id=feed.id,
        now=now,
        next_fetch_at=next_fetch_at(
            now,
            policy=policy if active else replace(policy, max_interval=slowest),
            interval=policy.default_interval,
            failures=failures,
            active=active,
            retry_after=retry_after_wait(service, retry_after, now, date=date),
            retry_after_cap=retry_after_cap(service),
            rng=rng,
        ),
        error=error,
        deactivate=deactivate,
        failures=failures,
        reason=reason,
        not_found=not_found,
    )


def _has_answered(feed: Feed) -> bool:
    """Whether a poll of the feed has succeeded before, by what a success leaves on its row:
    validators, a body hash, a title, its newest entry's date or its publishing interval. The
    last two stay where a success keeps no validators nor body hash (entries waiting for
    another try at their pages) on a feed without a title (every news sitemap)."""
    return (
        feed.body_hash is not None
        or feed.etag is not None
        or feed.last_modified is not None
        or feed.title is not None
        or feed.newest_entry_at is not None
        or feed.publish_interval is not None
    )


def _canonical_or_none(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return canonical_url(url)
    except ValueError:
        return None
