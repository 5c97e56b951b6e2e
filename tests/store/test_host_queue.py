"""Claims choose hosts first (sql/0037): what a claim reads follows its batch, not the backlog
of a host it leaves out; a batch is spread over the due hosts; each host's row in
ingest.feed_hosts says when its earliest feed is due, lowered by every change that makes a feed
due sooner and set anew by the claims that found less than they asked for."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from ingest.store import Store, queries
from ingest.store.db import migrate

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def claim_params(
    *,
    limit: int = 10,
    busy: tuple[str, ...] = (),
    rooms: dict[str, int] | None = None,
    owner: str = "test",
) -> dict[str, Any]:
    """A claim's parameters as `Store.claim_feeds` sends them (by `owner`): `busy` hosts
    without room, `rooms` the room of others."""
    room = {**dict.fromkeys(busy, 0), **(rooms or {})}
    return {
        "owner": owner,
        "lease_seconds": 600,
        "limit": limit,
        "exclude": [],
        "busy_hosts": list(busy),
        "room_hosts": list(room),
        "rooms": list(room.values()),
        "host_limit": None,
        "now": None,
    }


def claim(
    conn: psycopg.Connection[Any],
    *,
    limit: int = 10,
    busy: tuple[str, ...] = (),
    rooms: dict[str, int] | None = None,
    owner: str = "test",
) -> list[tuple[int, str]]:
    """The pipeline's claim (`Store.claim_feeds`) by `owner`, its feeds' ids and hosts."""
    params = claim_params(limit=limit, busy=busy, rooms=rooms, owner=owner)
    rows = conn.execute(queries()["claim_feeds"], params).fetchall()
    return [(row[0], row[-1]) for row in rows]


def feeds_read(conn: psycopg.Connection[Any]) -> int:
    """Rows of ingest.feeds this transaction has read so far, by index or by scan."""
    row = conn.execute(
        "SELECT COALESCE(idx_tup_fetch, 0) + COALESCE(seq_tup_read, 0)"
        " FROM pg_stat_xact_user_tables WHERE relid = 'ingest.feeds'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0])


def add(conn: psycopg.Connection[Any], host: str, n: int, due: str, start: int = 0) -> None:
    conn.execute(
        "INSERT INTO ingest.feeds (url, next_fetch_at)"
        " SELECT format('https://%%s/feed/%%s', %s::text, i), now() + %s::interval"
        "        + i * interval '1 ms'"
        " FROM generate_series(%s::int, %s::int) AS i",
        (host, due, start, start + n - 1),
    )


def test_a_claim_behind_one_host_s_backlog_reads_what_its_batch_needs(database_url: str) -> None:
    """One host's due feeds come first and it has no room (its feeds hold their share of the
    process's slots). A claim used to read every one of them, in next_fetch_at order, to drop
    them after: 135 ms a claim behind a backlog of 50,000. It now reads the same rows whether
    that backlog is 300 feeds or ten times as many, and fewer than the small one."""
    read = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "backlog.example", 300, "-2 hours")
        for n in range(20):
            add(conn, f"host{n}.example", 2, "-1 hour", start=n * 10)
        for backlog in (300, 3000):
            if backlog > 300:
                add(conn, "backlog.example", backlog - 300, "-3 hours", start=300)
            conn.execute("ANALYZE ingest.feeds")
            with conn.transaction(force_rollback=True):
                before = feeds_read(conn)
                claimed = claim(conn, limit=20, busy=("backlog.example",))
                read[backlog] = feeds_read(conn) - before
            assert sorted(h for _, h in claimed) == sorted(f"host{n}.example" for n in range(20))
    assert read[3000] <= read[300] < 300, read


async def test_a_batch_is_spread_over_the_due_hosts(store: Store, database_url: str) -> None:
    """Three hosts with six due feeds each, one host's all due first: a claim of six takes two
    of each (before: the six of the first host, which then polled them one at a time)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "first.example", 6, "-3 hours")
        add(conn, "second.example", 6, "-2 hours")
        add(conn, "third.example", 6, "-1 hour")
    claimed = await store.claim_feeds(owner="a", lease_seconds=600, limit=6, all_feeds=False)
    assert Counter(f.host for f in claimed) == {
        "first.example": 2,
        "second.example": 2,
        "third.example": 2,
    }
    # A host alone gives as many as the batch asks for, up to its room.
    rest = await store.claim_feeds(
        owner="a", lease_seconds=600, limit=10, all_feeds=False, host_limit=3
    )
    assert Counter(f.host for f in rest) == {
        "first.example": 3,
        "second.example": 3,
        "third.example": 3,
    }


def host_due(conn: psycopg.Connection[Any], host: str) -> timedelta:
    """How far from now the host's row says its earliest feed is due."""
    row = conn.execute(
        "SELECT due_at - now() FROM ingest.feed_hosts WHERE host = %s", (host,)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def test_a_host_is_due_when_its_next_feed_is(store: Store, database_url: str) -> None:
    """A claim that took a host's due feed sets the host's row to when its next feed is due:
    the end of that feed's lease (the feed is due again then, should its poller die) or the
    next feed's time, the earlier. Whatever makes one of its feeds due sooner lowers the row:
    a released lease, a lapsed one, a feed rescheduled by hand, a poll due again at once, a new
    URL."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 1, "-1 minute")
        add(conn, "one.example", 1, "2 hours", start=1)
        (feed,) = await store.claim_feeds(owner="a", lease_seconds=600, limit=5, all_feeds=False)
        assert timedelta(seconds=598) < host_due(conn, "one.example") <= timedelta(seconds=600)
        assert await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=False) == []

        await store.release_leases("a", [feed.id])
        assert host_due(conn, "one.example") <= timedelta(0)
        # Each owner is a process whose run ends once it is done with the host (sql/0045).
        await store.release_hosts("a", ["one.example"], 0)
        (again,) = await store.claim_feeds(owner="b", lease_seconds=0.2, limit=5, all_feeds=False)
        assert again.id == feed.id
        await asyncio.sleep(0.3)  # b's lease lapses: the feed is due again
        (lapsed,) = await store.claim_feeds(owner="c", lease_seconds=600, limit=5, all_feeds=False)
        assert lapsed.id == feed.id

        await store.feed_succeeded(
            feed.id,
            owner="c",
            now=await store.database_now(),
            next_fetch_at=await store.database_now() + timedelta(hours=3),
            not_modified=True,
            etag=None,
            last_modified=None,
            body_hash=None,
            parsed=False,
        )
        await store.release_hosts("c", ["one.example"], 0)
        # Polled, due in three hours; the other feed in two.
        assert await store.claim_feeds(owner="d", lease_seconds=600, limit=5, all_feeds=False) == []
        assert host_due(conn, "one.example") > timedelta(minutes=9)
        conn.execute("UPDATE ingest.feeds SET next_fetch_at = now() WHERE id = %s", (feed.id,))
        assert host_due(conn, "one.example") <= timedelta(0)
        (due,) = await store.claim_feeds(owner="d", lease_seconds=600, limit=5, all_feeds=False)
        assert due.id == feed.id
        # A poll due again at once (sooner than its lease would have run out).
        now = await store.database_now()
        await store.feed_succeeded(
            feed.id,
            owner="d",
            now=now,
            next_fetch_at=now,
            not_modified=True,
            etag=None,
            last_modified=None,
            body_hash=None,
            parsed=False,
        )
        assert host_due(conn, "one.example") <= timedelta(0)
        (soon,) = await store.claim_feeds(owner="d", lease_seconds=600, limit=5, all_feeds=False)
        assert soon.id == feed.id
        await store.release_leases("d", [feed.id])
        await store.release_hosts("d", ["one.example"], 0)

        conn.execute(
            "UPDATE ingest.feeds SET url = 'https://two.example/feed' WHERE id = %s", (feed.id,)
        )
        (moved,) = await store.claim_feeds(owner="e", lease_seconds=600, limit=5, all_feeds=False)
        assert (moved.id, moved.host) == (feed.id, "two.example")

        conn.execute("DELETE FROM ingest.feeds WHERE url LIKE 'https://one.example/%'")
        conn.execute("UPDATE ingest.feed_hosts SET due_at = now() WHERE host = 'one.example'")
        assert await store.claim_feeds(owner="f", lease_seconds=600, limit=5, all_feeds=False) == []
        row = conn.execute(
            "SELECT due_at = 'infinity' FROM ingest.feed_hosts WHERE host = 'one.example'"
        ).fetchone()
        assert row == (True,)


def test_a_claim_never_raises_a_host_a_concurrent_change_lowers(database_url: str) -> None:
    """A host whose feeds are all in flight (its row still due from before) is read by a claim
    that finds nothing and sets its row anew. Meanwhile another transaction makes one of its
    feeds due (its trigger holds the row): the claim leaves the row to it rather than write a
    time that misses that feed, and once it commits, the feed is claimed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "busy.example", 1, "-1 minute")
        add(conn, "busy.example", 1, "2 hours", start=1)
        (taken,) = claim(conn)
        conn.execute("UPDATE ingest.feed_hosts SET due_at = now() - interval '1 minute'")
        later = conn.execute("SELECT id FROM ingest.feeds WHERE id <> %s", (taken[0],)).fetchone()
        assert later is not None
        with psycopg.connect(database_url) as other:
            other.execute("UPDATE ingest.feeds SET next_fetch_at = now() WHERE id = %s", later)
            assert claim(conn) == []  # not yet committed: nothing to claim, nor waited for
            other.commit()
        assert claim(conn) == [(later[0], "busy.example")]


async def test_the_migration_gives_every_host_of_existing_feeds_its_row(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sql/0037 on a database with feeds: each host gets its earliest feed's time (a leased
    feed's lease end where that is later), and the claims find them."""
    from ingest.store import db

    shipped = db.load_migrations()
    monkeypatch.setattr(db, "load_migrations", lambda: [m for m in shipped if m.version < 37])
    await migrate(empty_database_url)
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        add(conn, "a.example", 3, "-1 hour")
        add(conn, "b.example", 2, "1 hour")
        conn.execute(
            "UPDATE ingest.feeds SET lease_expires_at = now() + interval '30 minutes'"
            " WHERE url LIKE 'https://a.example/%'"
        )
        monkeypatch.setattr(db, "load_migrations", lambda: shipped)
        assert 37 in await migrate(empty_database_url)
        a, b = host_due(conn, "a.example"), host_due(conn, "b.example")
        assert timedelta(minutes=29) < a <= timedelta(minutes=30)
        assert timedelta(minutes=59) < b <= timedelta(hours=1)
        conn.execute("UPDATE ingest.feeds SET lease_expires_at = NULL")
        assert Counter(h for _, h in claim(conn)) == {"a.example": 3}


def test_claims_take_every_due_feed_whatever_the_hosts_rows_say(database_url: str) -> None:
    """181 hosts with one due feed each: claims of 50 take 50, 50, 50 and 31 (a host that gave
    its last due feed is due again at that lease's end, so the next claim does not read it
    again). Then every host's row says it is due, while only 11 of them have a due feed (the
    others polled since): a claim reads on past the hosts with nothing to give and takes the 11,
    rather than come back empty, which ends a pass."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(181):
            add(conn, f"h{n}.example", 1, f"-{n} seconds")
        assert [len(claim(conn, limit=50)) for _ in range(5)] == [50, 50, 50, 31, 0]
        conn.execute("UPDATE ingest.feed_hosts SET due_at = now() - interval '1 day'")
        conn.execute(
            "UPDATE ingest.feeds SET lease_expires_at = NULL,"
            " next_fetch_at = CASE WHEN id % 17 = 0 THEN now() ELSE now() + interval '1 hour' END"
        )
        due = conn.execute("SELECT count(*) FROM ingest.feeds WHERE id % 17 = 0").fetchone()
        assert due is not None
        assert 0 < due[0] < 50
        assert len(claim(conn, limit=50)) == due[0]


def test_a_host_behind_other_hosts_backlogs_is_claimed_in_its_turn(database_url: str) -> None:
    """Two hosts with a backlog each, their earliest feeds due first, and a third host's one
    feed due before the rest of those backlogs. A claim of two takes one of each backlog; the
    next claim takes the third host's feed, the earliest then due, and one of a backlog (before:
    the two backlogs' rows kept the times of the feeds already taken, so every claim read them
    first, and the third host waited until both backlogs were polled)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for host in ("a.example", "b.example"):
            for i, due in enumerate(("-100 seconds", "-90 seconds", "-80 seconds")):
                add(conn, host, 1, due, start=i)
        add(conn, "c.example", 1, "-95 seconds")
        assert sorted(h for _, h in claim(conn, limit=2)) == ["a.example", "b.example"]
        assert "c.example" in [h for _, h in claim(conn, limit=2)]


def test_pollers_handing_feeds_back_across_hosts_never_deadlock(database_url: str) -> None:
    """Two pollers each hand back (or record the outcome of) a feed of host x and one of host
    y, in opposite orders, each in one transaction, and each lowers both hosts' rows (their
    rows said due at the end of the leases). Neither waits for the other's row: both commit,
    where they deadlocked (PostgreSQL aborting one after a second), and every feed is due."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "x.example", 2, "-1 minute")
        add(conn, "y.example", 2, "-1 minute")
        taken = claim(conn, limit=4)
        assert host_due(conn, "x.example") > timedelta(minutes=9)
    ids = {h: sorted(i for i, host in taken if host == h) for h in ("x.example", "y.example")}
    release = queries()["release_leases"]
    errors: list[Exception] = []
    with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
        a.execute(release, {"owner": "test", "ids": ids["x.example"][:1]})
        b.execute(release, {"owner": "test", "ids": ids["y.example"][1:]})

        def a_second() -> None:
            try:
                a.execute(release, {"owner": "test", "ids": ids["y.example"][:1]})
                a.commit()
            except psycopg.Error as e:
                errors.append(e)

        other = threading.Thread(target=a_second)
        other.start()
        other.join(timeout=0.5)
        try:
            b.execute(release, {"owner": "test", "ids": ids["x.example"][1:]})
            b.commit()
        except psycopg.Error as e:
            errors.append(e)
        other.join()
    assert errors == []
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert sorted(i for i, _ in claim(conn, limit=4)) == sorted(i for i, _ in taken)


def test_a_claim_fills_its_batch_from_the_hosts_that_have_more(database_url: str) -> None:
    """Two due hosts, one with a backlog and one with a single due feed: a claim of ten takes the
    single feed and nine of the backlog, its room being no limit (before: the backlog gave its
    even share, five, and the claim came back with six while four more were due and no other
    host was). With a room of seven, seven of the backlog."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "backlog.example", 30, "-2 hours")
        add(conn, "one.example", 1, "-1 hour")
        assert Counter(h for _, h in claim(conn, limit=10)) == {
            "backlog.example": 9,
            "one.example": 1,
        }
        add(conn, "other.example", 1, "-3 hours")
        taken = claim(conn, limit=10, rooms={"backlog.example": 7})
        assert Counter(h for _, h in taken) == {"backlog.example": 7, "other.example": 1}


def test_a_poll_of_a_pass_over_every_feed_is_due_no_later_than_its_lease_s_end(
    database_url: str,
) -> None:
    """`run --once --all` leases feeds not due yet (due in one and two hours, leases of ten
    minutes). Two of their outcomes are written at once: one, holding the host's row, lowers it
    to 30 minutes; the other's next poll is in one minute. The row is then no later than the
    second feed's lease's end: the second waits for the first and lowers the row to one minute
    (before: it skipped the row, as a poll of a feed due when claimed does, and the row said 30
    minutes, 20 past that lease's end: the feed polled half an hour late)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "all.example", 1, "1 hour")
        add(conn, "all.example", 1, "2 hours", start=1)
        params = {**claim_params(), "pass_started": None}
        first, second = sorted(r[0] for r in conn.execute(queries()["claim_all_feeds"], params))
    polled = (
        "UPDATE ingest.feeds SET next_fetch_at = now() + %s::interval,"
        " lease_owner = NULL, lease_expires_at = NULL WHERE id = %s AND lease_owner = 'test'"
    )
    with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
        a.execute(polled, ("30 minutes", first))

        def b_writes() -> None:
            b.execute(polled, ("1 minute", second))
            b.commit()

        other = threading.Thread(target=b_writes)
        other.start()
        other.join(timeout=0.5)
        a.commit()
        other.join()
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert host_due(conn, "all.example") <= timedelta(minutes=1)


def test_a_claim_past_hosts_whose_due_feeds_were_handed_back_reads_them_at_once(
    database_url: str,
) -> None:
    """200 hosts whose one due feed each this process handed back in its pass (excluded), due
    before a last host's feed: a claim of one takes that feed in one round, writing no host's
    row but the last one's (before: a round and a row written for each of the 200, claim after
    claim of the pass, 1.7 ms a host). The 200 hosts stay due for other processes."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(200):
            add(conn, f"h{n}.example", 1, f"-{1000 + n} seconds")
        add(conn, "last.example", 1, "-1 second")
        excluded = [
            row[0]
            for row in conn.execute("SELECT id FROM ingest.feeds WHERE url NOT LIKE '%last%'")
        ]
        params = {**claim_params(limit=1), "exclude": excluded}
        with conn.transaction():
            rows = conn.execute(queries()["claim_feeds"], params).fetchall()
            written = conn.execute(
                "SELECT n_tup_upd FROM pg_stat_xact_user_tables"
                " WHERE relid = 'ingest.feed_hosts'::regclass"
            ).fetchone()
        assert [row[-1] for row in rows] == ["last.example"]
        assert written == (1,)
        due = conn.execute(
            "SELECT count(*) FROM ingest.feed_hosts WHERE due_at <= now() AND host LIKE 'h%'"
        ).fetchone()
        assert due == (200,)


def test_a_claim_locks_only_the_feeds_and_hosts_it_takes(database_url: str) -> None:
    """A claim whose transaction is still open holds the feeds it took and the hosts it took
    them of: a claim beside it takes none of those hosts' feeds (two processes would send one
    host requests at once, each at its delay: sql/0045), but the feeds of a host it left,
    where it found them locked and came back empty; once the first is committed, its hosts are
    its process's, and the other's claims leave them too."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 4, "-3 minutes")
        add(conn, "two.example", 3, "-2 minutes")
        add(conn, "three.example", 3, "-1 minute")
        with psycopg.connect(database_url) as first:
            taken = claim(first, limit=2)  # the two earliest hosts, a feed of each
            assert sorted(h for _, h in taken) == ["one.example", "two.example"]
            beside = claim(conn, limit=5, owner="other")
            first.commit()
        after = claim(conn, limit=5, owner="other")
        mine = claim(conn, limit=5)
    assert sorted(h for _, h in beside) == ["three.example"] * 3
    assert after == []
    assert sorted(h for _, h in mine) == ["one.example"] * 3 + ["two.example"] * 2


def held_for(conn: psycopg.Connection[Any], host: str) -> tuple[str | None, timedelta]:
    """Who holds the host (sql/0045), and for how long from now (negative where its hold ran
    out, 0 where it never had one)."""
    row = conn.execute(
        "SELECT held_by, COALESCE(held_until - now(), interval '0')"
        " FROM ingest.feed_hosts LEFT JOIN ingest.host_holds USING (host) WHERE host = %s",
        (host,),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


async def test_a_host_another_process_holds_is_left_to_it(store: Store, database_url: str) -> None:
    """A process that leased a host's feeds holds the host: another's claims, of due feeds and
    of every feed, take none of its feeds while the first goes on taking them; renewed leases
    renew the hold; the first's run ended, the host is the other's a host delay later."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 3, "-3 minutes")
        add(conn, "two.example", 1, "-1 minute")
        (first,) = await store.claim_feeds(owner="a", lease_seconds=600, limit=1, all_feeds=False)
        assert first.host == "one.example"
        assert held_for(conn, "one.example")[0] == "a"

        other = await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=False)
        assert [f.host for f in other] == ["two.example"]
        assert await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=True) == []
        mine = await store.claim_feeds(owner="a", lease_seconds=600, limit=5, all_feeds=False)
        assert [f.host for f in mine] == ["one.example"] * 2

        conn.execute("UPDATE ingest.host_holds SET held_until = now() + interval '5 seconds'")
        ids = [first.id, *(f.id for f in mine)]
        assert await store.renew_leases("a", ids, 600) == set(ids)
        assert held_for(conn, "one.example")[0] == "a"
        assert held_for(conn, "one.example")[1] > timedelta(seconds=590)
        # b's hold of two.example is b's to renew, not a's.
        assert held_for(conn, "two.example")[1] < timedelta(seconds=6)

        await store.release_leases("a", ids)
        await store.release_hosts("a", ["one.example"], 0.5)
        assert await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=False) == []
        await asyncio.sleep(0.6)
        taken = await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=False)
        assert sorted(f.id for f in taken) == sorted(ids)
        assert held_for(conn, "one.example")[0] == "b"


def hosts_read(conn: psycopg.Connection[Any]) -> int:
    """Rows of ingest.feed_hosts and ingest.host_holds this session has read so far, by index
    or by scan."""
    row = conn.execute(
        "SELECT sum(COALESCE(idx_tup_fetch, 0) + COALESCE(seq_tup_read, 0))"
        " FROM pg_stat_xact_user_tables"
        " WHERE relid IN ('ingest.feed_hosts'::regclass, 'ingest.host_holds'::regclass)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_claims_read_past_the_hosts_another_process_holds_once_not_at_every_claim(
    database_url: str,
) -> None:
    """200 hosts with due feeds that another process holds (each one's backlog beyond the
    feeds it has in flight), due before 20 free hosts. Every claim of another process used to
    read all 200 rows and ask ingest.host_holds about each, its work growing with the hosts
    the other replicas poll rather than with its batch (9,000 such hosts: 40,000 buffers a
    claim of 50). The first claim reading past them now sets each aside until its hold ends,
    and the next claims do not read them; the process holding them still claims their
    feeds."""
    read = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(200):
            add(conn, f"held{n}.example", 2, "-2 hours", start=n * 10)
        for n in range(20):
            add(conn, f"free{n}.example", 3, "-1 hour", start=n * 10)
        conn.execute(
            "INSERT INTO ingest.host_holds (host, held_by, held_until)"
            " SELECT host, 'other', now() + interval '10 minutes' FROM ingest.feed_hosts"
            " WHERE host LIKE 'held%'"
        )
        conn.execute("ANALYZE ingest.feed_hosts")
        for _ in range(3):
            # A session of its own each, the rows it read its claim's alone; planned as on a
            # large database, where a claim reads the rows by their indexes (with these 220
            # hosts, a sequential scan of them all is cheaper).
            with psycopg.connect(database_url) as claiming:
                claiming.execute("SET enable_seqscan = off")
                before = hosts_read(claiming)
                claimed = claim(claiming, limit=5)
                read.append(hosts_read(claiming) - before)
            assert claimed
            assert all(host.startswith("free") for _, host in claimed), claimed
        with psycopg.connect(database_url) as holder:
            theirs = {host for _, host in claim(holder, limit=200, owner="other")}
        assert theirs == {f"held{n}.example" for n in range(200)}
    assert read[0] > 200
    assert max(read[1:]) < 100, read


def test_claims_of_every_feed_at_once_take_different_hosts(database_url: str) -> None:
    """Two passes over every feed (`run --once --all`) claiming at the same moment: the second
    takes none of the hosts the first, still uncommitted, read (their rows are locked), and
    once it is committed, none of the hosts it holds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 3, "1 hour")
        add(conn, "two.example", 3, "1 hour", start=3)
        conn.execute(
            "UPDATE ingest.feeds SET polled_at = now() - CASE WHEN url LIKE 'https://one.%'"
            " THEN interval '1 day' ELSE interval '1 hour' END"
        )
        params = {**claim_params(limit=2), "pass_started": None}
        with psycopg.connect(database_url) as first:
            taken = first.execute(queries()["claim_all_feeds"], params).fetchall()
            assert [row[-1] for row in taken] == ["one.example"] * 2
            beside = conn.execute(
                queries()["claim_all_feeds"], {**params, "owner": "other", "limit": 10}
            ).fetchall()
            first.commit()
        after = conn.execute(
            queries()["claim_all_feeds"], {**params, "owner": "other", "limit": 10}
        ).fetchall()
    assert sorted(row[-1] for row in beside) == ["two.example"] * 3
    assert after == []


async def test_a_renewal_finds_a_host_another_process_took_once_its_hold_ran_out_lost(
    store: Store, database_url: str
) -> None:
    """A process that stalled past its leases' end (its hold of the host ran out with them)
    while another took the host, claiming a feed of it that was due: the first's renewal of the
    feed it still polls (not due: a pass over every feed leased it) finds it lost, and the
    other's hold stands, so that two processes do not go on polling one host."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 1, "1 hour")
        add(conn, "one.example", 1, "-1 minute", start=1)
        (first,) = await store.claim_feeds(owner="a", lease_seconds=600, limit=1, all_feeds=True)
        assert held_for(conn, "one.example")[0] == "a"
        conn.execute(
            "UPDATE ingest.feeds SET lease_expires_at = now() - interval '1 second'"
            " WHERE lease_owner = 'a'"
        )
        conn.execute("UPDATE ingest.host_holds SET held_until = now() - interval '1 second'")
        (other,) = await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=False)
        assert other.host == "one.example"
        assert other.id != first.id
        assert await store.renew_leases("a", [first.id], 600) == set()
        assert held_for(conn, "one.example")[0] == "b"


async def test_a_renewal_takes_back_its_host_s_hold_that_ran_out_where_nobody_took_it(
    store: Store, database_url: str
) -> None:
    """A hold that ran out (the process stalled) or was brought down by a run's end while a
    feed of the host is still the process's: the renewal that finds the lease still its own
    holds the host again, so that no other process takes it while the feed is polled."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 2, "-1 minute")
        (first,) = await store.claim_feeds(owner="a", lease_seconds=600, limit=1, all_feeds=False)
        conn.execute("UPDATE ingest.host_holds SET held_until = now() - interval '1 second'")
        assert await store.renew_leases("a", [first.id], 600) == {first.id}
        assert held_for(conn, "one.example")[0] == "a"
        assert held_for(conn, "one.example")[1] > timedelta(seconds=590)
        assert await store.claim_feeds(owner="b", lease_seconds=600, limit=5, all_feeds=False) == []


def advisory_locks(conn: psycopg.Connection[Any]) -> int:
    """The advisory locks this session holds (a claim's, one a host it took: sql/0045)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_claim_takes_no_lock_on_the_hosts_it_reads_past(database_url: str) -> None:
    """300 hosts whose rows say due (each one's feed was polled since: they were due at that
    lease's end) before the one host with a due feed. A claim of one reads past them, setting
    their rows anew, and takes the due host's feed holding that host's lock alone, where it held
    one lock a host read: a lock table (`max_locks_per_transaction` × connections, 6,400 by
    default, shared by the whole server) that a claim reading past thousands of such hosts
    would exhaust, failing with `out of shared memory` and rolling back the rows it set anew."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(300):
            add(conn, f"s{n}.example", 1, "1 hour")
        add(conn, "due.example", 1, "-1 minute")
        conn.execute(
            "UPDATE ingest.feed_hosts SET due_at = now() - interval '1 day'"
            " WHERE host LIKE 's%.example'"
        )
        with psycopg.connect(database_url) as claiming:
            assert [h for _, h in claim(claiming, limit=1)] == ["due.example"]
            locks = advisory_locks(claiming)
        due = conn.execute("SELECT count(*) FROM ingest.feed_hosts WHERE due_at <= now()")
        assert due.fetchone() == (0,)
    assert locks == 1


def test_a_pass_over_every_feed_reads_past_the_hosts_a_claim_beside_it_is_taking(
    database_url: str,
) -> None:
    """A pass over every feed (`run --once --all`) claiming while another process's claim,
    still uncommitted, takes a due feed of the host whose feeds were polled longest ago: the
    pass leaves that host to it and takes the next host's feeds, where it came back empty (its
    batch all of that host), which ends a pass, the next host's feeds never polled by it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        add(conn, "one.example", 1, "-1 minute")
        add(conn, "one.example", 2, "1 hour", start=1)
        add(conn, "two.example", 2, "1 hour")
        conn.execute(
            "UPDATE ingest.feeds SET polled_at = now() - CASE WHEN url LIKE 'https://one.%'"
            " THEN interval '1 day' ELSE interval '1 hour' END"
        )
        params = {**claim_params(limit=2, owner="other"), "pass_started": None}
        with psycopg.connect(database_url) as service:
            assert [h for _, h in claim(service, limit=1)] == ["one.example"]
            beside = conn.execute(queries()["claim_all_feeds"], params).fetchall()
            service.commit()
    assert [row[-1] for row in beside] == ["two.example"] * 2
