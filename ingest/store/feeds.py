"""Feeds and their polling state: registration, claims and leases, poll outcomes, renames."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg.types.json import Jsonb

from ingest.fulltext import RECHECK_EVERY
from ingest.normalize import redact_text, unique_tags
from ingest.schedule import FeedFailure, FeedUpdate, RedirectState
from ingest.store.base import StoreBase, queries, wrap_exceptions
from ingest.types import Feed, FeedSettings, FullText, SourceKind, TextMode

_NO_REDIRECT = RedirectState()


OVERDUE_COUNTED = 10_000
"""Overdue feeds are counted up to this many (`ingest_feeds_overdue`): a backlog of any size
then costs each tick the same few index pages."""


class FeedStore(StoreBase):
    async def add_feed(
        self,
        url: str,
        title: str | None = None,
        *,
        kind: SourceKind = "feed",
        site_url: str | None = None,
    ) -> bool:
        """True when added, False when the URL was already registered. `kind` is "feed" or
        "sitemap" (a news sitemap followed as if it were a feed); `site_url`, the site it
        belongs to when known before its first poll (the site whose robots.txt named a
        sitemap: `sitemaps.sitemap_sites`), recorded for a feed registered already that has
        none."""
        params = {"url": url, "title": title, "kind": kind, "site_url": site_url}
        rows = await self._all("add_feed", params)
        return bool(rows and rows[0]["added"])

    async def add_found_feeds(
        self,
        feed_id: int,
        owner: str,
        found: Sequence[tuple[str, str | None, SourceKind, str | None]],
    ) -> bool:
        """Register the feeds (url, title, kind, site_url; as `add_feed`) that the web page
        registered as feed `feed_id` stands for, while `owner` still holds its lease; False,
        registering none, once it does not (the page paused or removed while it was polled, or
        claimed by another process)."""
        q = queries()
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(q["lock_leased_feed"], {"id": feed_id, "owner": owner})
            if await cur.fetchone() is None:
                return False
            params = [
                {"url": url, "title": title, "kind": kind, "site_url": site}
                for url, title, kind, site in found
            ]
            await conn.cursor().executemany(q["add_feed"], params)
            return True

    async def set_text_mode(self, url: str, mode: TextMode) -> bool:
        """The operator's setting for where the feed's article text comes from. A feed proven
        full-text, set back to `auto` from another mode, has its next new entry compared
        first (`ingest.fulltext.RECHECK_EVERY`): what proved it is of before the override."""
        params = {"url": url, "mode": mode, "due": RECHECK_EVERY - 1}
        return bool(await self._all("set_text_mode", params))

    async def feed_exists(self, feed_id: int) -> bool:
        """Whether the feed `feed_id` is registered (not removed meanwhile)."""
        return bool(await self._all("feed_exists", {"id": feed_id}))

    async def feed_url(self, feed_id: int) -> str | None:
        """The URL, as registered, of the feed `feed_id`, if there is one."""
        rows = await self._all("feed_url_by_id", {"id": feed_id})
        return str(rows[0]["url"]) if rows else None

    async def feed_by_url(self, url: str) -> tuple[int, str] | None:
        """(id, kind) of the registered feed with this URL, if any."""
        rows = await self._all("feed_by_url", {"url": url})
        return (int(rows[0]["id"]), str(rows[0]["kind"])) if rows else None

    async def feed_settings_by_url(
        self, url: str
    ) -> tuple[int, FeedSettings, TextMode, FullText, str | None] | None:
        """(id, the operator's settings, text mode, full-text state, site_url) of the
        registered feed with this URL, if any."""
        rows = await self._all("feed_by_url", {"url": url})
        if not rows:
            return None
        row = rows[0]
        state = _full_text(row)
        settings = FeedSettings.from_json(row["settings"])
        return int(row["id"]), settings, row["text_mode"], state, row["site_url"]

    async def list_feeds(self) -> list[dict[str, Any]]:
        return await self._all("list_feeds", {})

    async def export_feeds(self) -> list[dict[str, Any]]:
        """Every feed as `feeds export` writes it: its settings with their headers."""
        return await self._all("export_feeds", {})

    async def feed_details(self, url: str) -> dict[str, Any] | None:
        """The feed's row of news.feeds with counts of its articles, or None."""
        rows = await self._all("feed_details", {"url": url})
        return rows[0] if rows else None

    async def set_feed_settings(
        self,
        url: str,
        changes: dict[str, Any],
        headers: dict[str, str | None],
        tags: list[str] | None,
    ) -> dict[str, Any] | None:
        """Merge settings (a None value removes its key; headers likewise), replace tags when
        given: the stored settings and tags, or None when no such feed."""
        rows = await self._all(
            "set_feed_settings",
            {
                "url": url,
                "changes": Jsonb(changes),
                "headers": Jsonb(headers) if headers else None,
                "tags": tags,
            },
        )
        return rows[0] if rows else None

    async def enable_feed(self, url: str) -> bool:
        """Active and due now, its failures forgotten; False when no such feed."""
        return bool(await self._all("enable_feed", {"url": url}))

    async def disable_feed(self, url: str, reason: str) -> bool:
        """Paused: never polled until enabled; False when no such feed."""
        return bool(await self._all("disable_feed", {"url": url, "reason": reason}))

    async def latest_articles(
        self, *, feed: str | None, site: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """news.articles, newest first: of one feed (first seen in it or listed by it), one
        site, published since a time."""
        params = {"feed": feed, "site": site, "since": since, "limit": limit}
        return await self._all("latest_articles", params)

    async def remove_feed(self, url: str) -> bool:
        return bool(await self._all("remove_feed", {"url": url}))

    async def claim_feeds(
        self,
        *,
        owner: str,
        lease_seconds: float,
        limit: int,
        all_feeds: bool,
        exclude: Sequence[int] = (),
        pass_started: datetime | None = None,
        host_room: Mapping[str, int] | None = None,
        host_limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Feed]:
        """Lease up to `limit` due feeds (with `all_feeds`, also every active feed not polled
        since `pass_started`, a `database_now()`; by default since now), none of `exclude`. Of
        a host (`Feed.host`) `host_room` names, no more are leased than its room, and none
        where it has none (its feeds are not even read); of any other, no more than
        `host_limit` (None: no limit): the rest stay due for a later claim instead of being
        leased and released at once, batch after batch, while the host has room for one.
        The times the feeds' streaks began (`failing_since`, `not_found_since`,
        `redirect_since`), recorded by the database's clock, are read on the caller's clock
        `now` (None: the database's), which its decisions compare them with."""
        # A room of `limit` or more binds nothing: those hosts are left out of the query's
        # arrays (a process polling a thousand hosts would send them all with every claim),
        # where `host_limit`, which then bounds them instead, binds nothing either.
        unbound = host_limit is None or host_limit >= limit
        room = {host: n for host, n in (host_room or {}).items() if n < limit or not unbound}
        params = {
            "owner": owner,
            "lease_seconds": lease_seconds,
            "limit": limit,
            "exclude": list(exclude),
            "busy_hosts": [host for host, n in room.items() if n <= 0],
            "room_hosts": list(room),
            "rooms": list(room.values()),
            "host_limit": host_limit,
            "now": now,
        }
        if all_feeds:
            rows = await self._all("claim_all_feeds", {**params, "pass_started": pass_started})
        else:
            rows = await self._all("claim_feeds", params)
        return [_feed(row) for row in rows]

    async def feed_succeeded(
        self,
        feed_id: int,
        *,
        owner: str,
        now: datetime,
        next_fetch_at: datetime,
        not_modified: bool,
        etag: str | None,
        last_modified: str | None,
        body_hash: bytes | None,
        parsed: bool,
        keep_body_hash: bool = True,
        title: str | None = None,
        site_url: str | None = None,
        publish_interval: timedelta | None = None,
        feed_hint: timedelta | None = None,
        redirect: RedirectState = _NO_REDIRECT,
    ) -> None:
        """Record a successful poll and release the lease; a no-op if the lease was lost.
        `body_hash` None keeps the stored one, unless `keep_body_hash` is false (then cleared).
        One `FeedUpdate` spelled out; `feeds_succeeded` writes several."""
        update = FeedUpdate(
            feed_id=feed_id,
            now=now,
            next_fetch_at=next_fetch_at,
            not_modified=not_modified,
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
            keep_body_hash=keep_body_hash,
            parsed=parsed,
            title=title,
            site_url=site_url,
            publish_interval=publish_interval,
            feed_hint=feed_hint,
            redirect=redirect,
            move_to=None,
        )
        await self.feeds_succeeded(owner, [update])

    async def feeds_succeeded(self, owner: str, updates: Sequence[FeedUpdate]) -> None:
        """Several successful polls at once, as `decide_feed_update` decided them: one
        transaction, one pipelined round trip, one commit. (`move_to` is `move_feed`'s.)"""
        if not updates:
            return
        params = [_success_params(owner, u) for u in updates]
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            await conn.cursor().executemany(queries()["feed_succeeded"], params)

    async def feed_failed(
        self,
        feed_id: int,
        *,
        owner: str,
        now: datetime,
        next_fetch_at: datetime,
        error: str,
        deactivate: bool = False,
        reason: str | None = None,
        claimed: tuple[bool, int] = (True, 0),
        if_enabled: FeedFailure | None = None,
        full_text: FullText | None = None,
        not_found: bool = False,
        held_for: timedelta | None = None,
    ) -> None:
        """Record a failed poll (and, with `deactivate`, give up on the feed, `reason` saying
        why; a `reason` alone replaces that of a feed given up on already) and release the
        lease; a no-op if the lease was lost. `not_found`: the failure is a 404, one more of
        the feed's 404s in a row; any other failure ends them. `claimed` is what the claim
        read of the feed (active, consecutive failures): when `enable_feed` has changed it
        since, `if_enabled` (the failure decided for the feed as enabled) is recorded instead.
        The URLs the error and reason quote are stored as `redact_text` shows them.
        `full_text`: the feed's full-text state as the poll's stored entries left it, where
        the poll failed after storing them (None leaves the stored state as it is).
        `held_for`: how long the failure's Retry-After holds the feed (`news.feeds.held_until`,
        from the database's now); None: no hold."""
        fresh = if_enabled
        error = redact_text(error)
        await self._all(
            "feed_failed",
            {
                "id": feed_id,
                "owner": owner,
                "now": now,
                "next_fetch_at": next_fetch_at,
                "error": error[:2000],
                "deactivate": deactivate,
                "inactive_reason": _inactive_reason(deactivate, reason, error),
                "claimed_active": claimed[0],
                "claimed_failures": claimed[1],
                "fresh_next_fetch_at": fresh.next_fetch_at if fresh else None,
                "fresh_deactivate": fresh.deactivate if fresh else False,
                "fresh_inactive_reason": (
                    _inactive_reason(fresh.deactivate, fresh.reason, error) if fresh else None
                ),
                "not_found": not_found,
                "held_for": held_for,
                **_full_text_params(full_text),
            },
        )

    async def feed_held(self, feed_id: int, *, owner: str, wait: timedelta) -> None:
        """The feed's request was not sent, its host held for `wait` more by a Retry-After
        given to another request: due again then, by the database's clock, and the lease
        released, with nothing of its polls changed (not a failure); a no-op if the lease was
        lost."""
        await self._all("feed_held", {"id": feed_id, "owner": owner, "wait": wait})

    async def hold_host_feeds(self, feed_id: int, url: str, wait: timedelta) -> None:
        """The host of `url`, which answered feed `feed_id`'s request, asked for `wait` (a
        Retry-After): its feeds due sooner, other than `feed_id` and not leased, are due after
        it instead, by the database's clock. The host is read from `url` as the claims read a
        feed's (`ingest.url_host`)."""
        await self._all("hold_host_feeds", {"id": feed_id, "url": url, "wait": wait})

    async def move_feed(
        self,
        feed_id: int,
        new_url: str,
        full_text: FullText | None = None,
        leave_headers: Collection[str] = (),
        *,
        owner: str,
    ) -> tuple[int, list[str]] | Literal["held", "lost"]:
        """Point the feed at its new URL after a consistent permanent redirect, without its
        headers of the names in `leave_headers` (lower case: credentials that stay with the
        site they were given for, when the new URL is on another). When another feed
        already has that URL, this one is merged into it (entries and articles move, this row
        goes), and the feed kept takes what the operator set on this one and what its polls
        found out about its text, where it has none of its own: its text mode where its own is
        `auto`, each setting and header it does not set itself (a header by its name in any
        case, as `feeds set` reads them), this one's tags after its own (`unique_tags`), and its
        full-text state (`full_text`, the poll's, else the stored one) where it has no evidence
        of its own; a feed kept that is failing (given up on, or backing off) is due at once
        (the URL has just answered). Returns the id of the feed that now has the URL, and the
        names of the headers left behind, as they were stored. Changing nothing: "held" when
        the feed with that URL is paused by the operator (merged into it, this one would stop
        being polled too, so it goes on polling through the redirect); "lost" when `owner` no
        longer holds the feed's lease (paused or removed while it was polled, or claimed by
        another process): the poll's outcome is not recorded, nor is its move made."""
        q = queries()
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(q["lock_leased_feed"], {"id": feed_id, "owner": owner})
            if await cur.fetchone() is None:
                return "lost"
            cur = await conn.execute(q["feed_id_by_url"], {"url": new_url})
            row = await cur.fetchone()
            if row is not None and row[0] != feed_id and row[1]:
                return "held"
            left: list[str] = []
            if leave_headers:
                params = {"id": feed_id, "names": sorted(leave_headers)}
                cur = await conn.execute(q["drop_feed_headers"], params)
                left = list(dropped[0]) if (dropped := await cur.fetchone()) else []
            if row is None:
                await conn.execute(q["rename_feed"], {"id": feed_id, "url": new_url})
                return feed_id, left
            into = {"into_id": row[0], "from_id": feed_id}
            if row[0] != feed_id:
                await conn.execute(q["merge_feed_entries"], into)
                await conn.execute(q["merge_feed_articles"], into)
                cur = await conn.execute(
                    q["merge_feed_settings"], {**into, **_full_text_params(full_text)}
                )
                if (kept := await cur.fetchone()) is not None:
                    url, own, tags, moved_tags = kept
                    headers = own.pop("headers", None)
                    # The kept feed's own settings over the moved one's, by `feeds set`'s rule.
                    await conn.execute(
                        q["set_feed_settings"],
                        {
                            "url": url,
                            "changes": Jsonb(own),
                            "headers": Jsonb(headers) if headers else None,
                            "tags": list(unique_tags([*tags, *moved_tags])),
                        },
                    )
                await conn.execute(q["delete_feed"], {"id": feed_id})
            return int(row[0]), left

    async def database_now(self) -> datetime:
        """The database's clock, which `claim_feeds` compares poll times with."""
        rows = await self._all("database_now", {})
        return rows[0]["now"]  # type: ignore[no-any-return]

    async def schedule_lag(self, grace_seconds: float) -> tuple[int, float]:
        """(feeds overdue by more than `grace_seconds`, up to `OVERDUE_COUNTED`; seconds the
        most overdue one is late)."""
        params = {"grace_seconds": grace_seconds, "cap": OVERDUE_COUNTED}
        rows = await self._all("schedule_lag", params)
        return int(rows[0]["overdue"]), float(rows[0]["max_lag_seconds"])

    async def release_leases(
        self,
        owner: str,
        feed_ids: Iterable[int],
        full_text: Mapping[int, FullText] | None = None,
    ) -> None:
        """Hand back the leases this process holds on `feed_ids`, their polls unrecorded.
        `full_text`: of those feeds, the full-text state that their polls' stored entries
        left (as `feed_failed` records it): those entries are known at the next poll and never
        compared again, so their evidence and their count towards the next re-check are kept
        with the lease handed back. A feed whose lease is another's is left as it is."""
        ids = list(feed_ids)
        states = [
            {"id": feed_id, "owner": owner, **_full_text_params(state)}
            for feed_id, state in (full_text or {}).items()
            if feed_id in ids
        ]
        if not states:
            await self._all("release_leases", {"owner": owner, "ids": ids})
            return
        q = queries()
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            await conn.cursor().executemany(q["keep_full_text"], states)
            await conn.execute(q["release_leases"], {"owner": owner, "ids": ids})

    async def release_hosts(
        self,
        owner: str,
        hosts: Iterable[str],
        delay: float,
        delays: Mapping[str, float] | None = None,
    ) -> None:
        """A run ended, or has no feed of `hosts` (`Feed.host`) in flight: those this process
        still holds (sql/0045) are other processes' to take each one's delay from now: its
        own in `delays` (a Crawl-delay), else `delay` seconds."""
        chosen = sorted(set(hosts))
        own = delays or {}
        params = {
            "owner": owner,
            "hosts": chosen,
            "delays": [own.get(host, delay) for host in chosen],
        }
        await self._all("release_hosts", params)

    async def renew_leases(
        self, owner: str, feed_ids: Iterable[int], lease_seconds: float
    ) -> set[int]:
        """Extend the leases this process holds on feeds it is still working on, and its hold
        of their hosts: the ids of those it still held (not those it released, nor those
        another process claimed once their leases ran out, nor those of a host another process
        took once this one's hold of it ran out)."""
        rows = await self._all(
            "renew_leases", {"owner": owner, "ids": list(feed_ids), "lease_seconds": lease_seconds}
        )
        return {row["id"] for row in rows}

    async def take_host(self, owner: str, url: str, lease_seconds: float) -> HostTake:
        """For a process that claims no feeds (a backfill), about to send a request to `url`:
        its host taken as a claim takes one, and held `lease_seconds` (sql/0045), where no
        other process holds it; else who does and for how long, as recorded."""
        params = {"owner": owner, "url": url, "lease_seconds": lease_seconds}
        (row,) = await self._all("take_host", params)
        return HostTake(row["host"], row["taken"], row["held_by"], row["seconds"])

    async def renew_hosts(self, owner: str, hosts: Iterable[str], lease_seconds: float) -> set[str]:
        """The hosts `take_host` took that the process still sends requests to, held
        `lease_seconds` more: those it still held (not those another process took once its
        hold of them ran out)."""
        params = {"owner": owner, "hosts": sorted(set(hosts)), "lease_seconds": lease_seconds}
        return {row["host"] for row in await self._all("renew_hosts", params)}


@dataclass(frozen=True, slots=True)
class HostTake:
    """What `FeedStore.take_host` found of a host."""

    host: str
    """As the claims read it (`ingest.url_host`)."""
    taken: bool
    """The process holds it now."""
    held_by: str | None = None
    """Where not taken, the process that holds it (None: a claim was taking it then)."""
    seconds: float | None = None
    """Where not taken, the seconds its hold had left as recorded."""


def _success_params(owner: str, u: FeedUpdate) -> dict[str, Any]:
    return {
        "id": u.feed_id,
        "owner": owner,
        "now": u.now,
        "next_fetch_at": u.next_fetch_at,
        "status": "not_modified" if u.not_modified else "ok",
        "etag": u.etag,
        "last_modified": u.last_modified,
        "body_hash": u.body_hash,
        "keep_body_hash": u.keep_body_hash,
        "title": u.title,
        "site_url": u.site_url,
        "parsed": u.parsed,
        "publish_interval": u.publish_interval,
        "newest_entry_at": u.newest_entry_at,
        "feed_hint": u.feed_hint,
        "redirect_to": u.redirect.target,
        "redirect_seen": u.redirect.seen,
        "redirect_since": u.redirect.since,
        **_full_text_params(u.full_text),
    }


def _full_text_params(state: FullText | None) -> dict[str, Any]:
    """A full-text state as the parameters named after its columns (`_FULL_TEXT_COLUMNS`);
    all None for None, which the queries read as "leave the stored state as it is"."""
    params = {
        column: getattr(state, name) if state else None
        for name, column in _FULL_TEXT_COLUMNS.items()
    }
    if state:  # an array parameter is a list
        params["full_text_templates"] = list(state.templates)
    return params


_FULL_TEXT_COLUMNS = {
    "on": "full_text",
    "streak": "full_text_streak",
    "since_check": "full_text_since_check",
    "words": "full_text_words",
    "evidence": "full_text_evidence",
    "cap_words": "full_text_cap_words",
    "cap_chars": "full_text_cap_chars",
    "templates": "full_text_templates",
}
"""`FullText`'s fields and the columns of `ingest.feeds` that hold them."""


def _full_text(row: dict[str, Any], *, take: bool = False) -> FullText:
    """A feed's full-text state from its row's columns (with `take`, taken out of the row)."""
    get = row.pop if take else row.__getitem__
    state = {name: get(column) for name, column in _FULL_TEXT_COLUMNS.items()}
    return FullText(**{**state, "templates": tuple(state["templates"] or ())})


def _feed(row: dict[str, Any]) -> Feed:
    settings = row.pop("settings")
    state = _full_text(row, take=True)
    return Feed(**row, full_text=state, settings=FeedSettings.from_json(settings))


def _inactive_reason(deactivate: bool, reason: str | None, error: str) -> str | None:
    """Why a failed poll gives up on its feed, or on a feed given up already (found gone),
    shown in news.feeds.inactive_reason."""
    if reason:
        return redact_text(reason)
    if not deactivate:
        return None
    return f"gave up after repeated failures; last: {error[:500]}"
