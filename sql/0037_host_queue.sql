-- Claims choose hosts first (sql/queries.sql: claim_feeds). A claim used to read due feeds in
-- next_fetch_at order and drop, after reading them, those of hosts that hold their share of the
-- process's feed slots: a host with 50,000 due feeds (more feeds than its politeness lets one
-- process poll in their interval) made every claim read and drop all 50,000, about 135 ms a
-- claim at 100,000 feeds, however small the batch. Now each host has a row here with the time
-- its earliest feed is due, and a claim reads the earliest due hosts that have room, then each
-- one's earliest due feeds by (host, next_fetch_at): what it reads follows the batch and the
-- feeds in flight, whatever the backlog of a host it leaves out.
--
-- A feed is due at next_fetch_at, or at the end of its lease where it is leased
-- (GREATEST skips a NULL lease): `ingest.feed_due`. A host's due_at is at most the earliest of
-- its feeds' (a trigger lowers it whenever a feed comes due sooner: a new feed, an enabled
-- one, a released lease, a poll due again before its lease would have run out, a renamed
-- URL; a poll's outcome written while another transaction held the row, at most the end of
-- that poll's lease), and claims set it exactly (`ingest.host_due`) for the hosts that have no
-- due feed left after them, so that a host whose feeds are all in flight or done is not read
-- again until one of them is due. A host whose feeds were removed keeps its row, due at
-- infinity once a claim has read it.

CREATE FUNCTION ingest.feed_due(next_fetch_at timestamptz, lease_expires_at timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN GREATEST(next_fetch_at, lease_expires_at);

-- The host key of a feed: ingest.url_host (sql/0022), '' for a URL without a host.
DROP INDEX ingest.feeds_url_host_idx;
CREATE INDEX feeds_url_host_idx
    ON ingest.feeds ((COALESCE(ingest.url_host(url), '')), next_fetch_at);

CREATE TABLE ingest.feed_hosts (
    host text PRIMARY KEY,
    due_at timestamptz NOT NULL
);
CREATE INDEX feed_hosts_due_idx ON ingest.feed_hosts (due_at);

-- When the earliest of a host's feeds is due: the first not leased (a lapsed lease counts as
-- none) by next_fetch_at, or the end of a lease among those before it. Reads the host's feeds
-- in flight and one more. VOLATILE: each call reads what is committed when it runs, so that an
-- UPDATE of feed_hosts that waited for a concurrent trigger's row computes it again (READ
-- COMMITTED re-evaluates the new value on the row the trigger wrote) and sees that feed.
CREATE FUNCTION ingest.host_due(h text) RETURNS timestamptz
    LANGUAGE sql VOLATILE
AS $$
    WITH free AS (
        SELECT f.next_fetch_at AS at FROM ingest.feeds f
        WHERE COALESCE(ingest.url_host(f.url), '') = h
          AND (f.lease_expires_at IS NULL OR f.lease_expires_at < now())
        ORDER BY f.next_fetch_at
        LIMIT 1
    )
    SELECT COALESCE(LEAST((SELECT at FROM free), (
        SELECT min(ingest.feed_due(f.next_fetch_at, f.lease_expires_at)) FROM ingest.feeds f
        WHERE COALESCE(ingest.url_host(f.url), '') = h
          AND f.next_fetch_at < COALESCE((SELECT at FROM free), 'infinity')
          AND f.lease_expires_at >= now()
    )), 'infinity')
$$;

-- A feed comes due sooner than its host's row may say: lower the row, or add it.
--
-- A feed added, enabled, renamed or rescheduled by hand: the row is locked first, so that a
-- claim's refresh of the host (`host_due`) that runs concurrently either is waited for and
-- then compared with, or leaves the row to this transaction (claims skip rows others hold),
-- whose time is the feed's (which could be the host's only one, due now after being due
-- never). Only a lower time is written: a transaction adding many feeds of one host locks its
-- row once and writes it once, not once a feed.
--
-- A leased feed's poll that ended (or its lease handed back) sooner than the lease would have
-- run out: the row is written only where it must be lowered, and not where another
-- transaction holds it (SKIP LOCKED), so that pollers writing their outcomes, several hosts'
-- in one transaction, never wait for each other nor deadlock on hosts' rows. The row is then
-- no later than the feed's lease's end (a claim's refresh counted the feed as due then, another
-- poll's outcome lowers it further): at worst the feed is polled then, no later. That holds
-- for a feed that was due when leased; one leased before it was due (`claim_all_feeds`) was due
-- after its lease's end, and where the row another transaction holds is later than the feed
-- is now due, the row is locked (waited for) and lowered as by hand.
CREATE FUNCTION ingest.feed_hosts_sooner() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    key text := COALESCE(ingest.url_host(NEW.url), '');
    due timestamptz := ingest.feed_due(NEW.next_fetch_at, NEW.lease_expires_at);
    row_due timestamptz;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.lease_expires_at IS NOT NULL AND NEW.url = OLD.url THEN
        -- The row as committed, without a lock: most polls find it no later than their feed.
        SELECT h.due_at INTO row_due FROM ingest.feed_hosts h WHERE h.host = key;
        IF NOT FOUND THEN
            -- No row (none is ever removed, but a host without one would never be claimed):
            -- added. Read first, as an insert would wait for a transaction writing the row.
            INSERT INTO ingest.feed_hosts (host, due_at) VALUES (key, due)
            ON CONFLICT (host) DO NOTHING;
            RETURN NULL;
        END IF;
        IF row_due <= due THEN
            RETURN NULL;
        END IF;
        UPDATE ingest.feed_hosts SET due_at = due
        WHERE host = (
            SELECT l.host FROM ingest.feed_hosts l
            WHERE l.host = key AND l.due_at > due
            FOR UPDATE SKIP LOCKED
        );
        -- Lowered; or another transaction holds the row: left to it where it is no later than
        -- the lease's end, as where the feed was due when claimed. A feed leased before it was
        -- due (`claim_all_feeds`, or a lapsed lease's feed held since by a Retry-After) was
        -- due later than its lease's end, and the row may be as late: locked and lowered, as
        -- by hand.
        IF FOUND OR OLD.next_fetch_at <= OLD.lease_expires_at THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM FROM ingest.feed_hosts WHERE host = key FOR NO KEY UPDATE;
    IF FOUND THEN
        UPDATE ingest.feed_hosts SET due_at = due WHERE host = key AND due_at > due;
    ELSE
        INSERT INTO ingest.feed_hosts AS h (host, due_at) VALUES (key, due)
        ON CONFLICT (host) DO UPDATE SET due_at = LEAST(h.due_at, EXCLUDED.due_at);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER feeds_host_added AFTER INSERT ON ingest.feeds
    FOR EACH ROW EXECUTE FUNCTION ingest.feed_hosts_sooner();
-- A claim and a renewed lease move a feed later, as does a poll's outcome whose next poll is
-- after the lease's end: no write here.
CREATE TRIGGER feeds_host_sooner AFTER UPDATE OF next_fetch_at, lease_expires_at, url
    ON ingest.feeds FOR EACH ROW
    WHEN (ingest.feed_due(NEW.next_fetch_at, NEW.lease_expires_at)
              < ingest.feed_due(OLD.next_fetch_at, OLD.lease_expires_at)
          OR NEW.url IS DISTINCT FROM OLD.url)
    EXECUTE FUNCTION ingest.feed_hosts_sooner();

INSERT INTO ingest.feed_hosts (host, due_at)
SELECT COALESCE(ingest.url_host(url), ''), min(ingest.feed_due(next_fetch_at, lease_expires_at))
FROM ingest.feeds
GROUP BY 1;

-- Lease up to p_limit due feeds for p_owner (sql/queries.sql: claim_feeds says which). The
-- earliest due hosts not in p_busy, at most as many as feeds are still wanted, each for as many
-- of its earliest due feeds as its room (p_room_hosts/p_rooms; any other: p_host_limit, NULL:
-- no limit) and an even share of what is still wanted allow, skipping feeds another claim
-- holds; of those, the earliest. A host with no due feed left beyond those (its next is read,
-- not locked) has its due_at set anew: the end of the leases just taken, or its next feed's
-- time; one with due feeds left is due at the earliest of those, not at the time of a feed
-- just taken, which would keep it ahead of hosts whose feeds have waited longer, claim after
-- claim. Where that leaves feeds wanted, because hosts due by their rows had nothing to give
-- (their feeds polled since, and due later than their rows said), the next due hosts are read,
-- until the batch is full or no host is due: a claim never comes back empty while a feed is
-- due. Where no other host is due and the batch is not full, the hosts that gave their share
-- and have more fill it, up to their rooms.
CREATE FUNCTION ingest.claim_due_feeds(
    p_owner text, p_lease_seconds float8, p_limit int, p_exclude bigint[], p_busy text[],
    p_room_hosts text[], p_rooms int[], p_host_limit int
) RETURNS SETOF ingest.feeds
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    leased ingest.feeds[] := '{}';
    tried text[] := '{}';
    more text[] := '{}';
    handed text[];
    picked text[];
    got ingest.feeds[];
    spent text[];
    shared text[];
    resumed text[];
    resumed_at timestamptz[];
    wanted int;
BEGIN
    -- The hosts of the due feeds handed back (p_exclude): they stay due for other processes,
    -- and may have nothing else to give. Read beside the hosts a round asks, not counted in
    -- its shares, and their rows left as they are when they give nothing: a pass's claims after
    -- a few hundred hand-backs read past them in one round, writing no row of theirs.
    SELECT COALESCE(array_agg(DISTINCT COALESCE(ingest.url_host(f.url), '')), '{}') INTO handed
    FROM ingest.feeds f
    WHERE f.id = ANY(p_exclude) AND f.next_fetch_at <= now()
      AND (f.lease_expires_at IS NULL OR f.lease_expires_at < now());
    LOOP
        wanted := p_limit - cardinality(leased);
        EXIT WHEN wanted <= 0;
        -- The earliest due hosts, at most `wanted` of them besides those of handed-back feeds.
        SELECT array_agg(h.host ORDER BY h.due_at) INTO picked FROM (
            SELECT x.host, x.due_at,
                   row_number() OVER (PARTITION BY x.host = ANY(handed) ORDER BY x.due_at) AS r
            FROM (
                SELECT fh.host, fh.due_at FROM ingest.feed_hosts fh
                WHERE fh.due_at <= now() AND fh.host <> ALL(p_busy) AND fh.host <> ALL(tried)
                ORDER BY fh.due_at
                LIMIT wanted + cardinality(handed)
            ) x
        ) h
        WHERE h.host = ANY(handed) OR h.r <= wanted;
        IF picked IS NULL THEN
            -- No other host is due: the hosts that gave their share and have more fill the
            -- batch, up to their rooms.
            EXIT WHEN cardinality(more) = 0;
            picked := more;
            more := '{}';
        END IF;
        tried := tried || picked;

        -- Each host is asked for its even share of what is wanted (the earlier hosts one more
        -- where it does not divide), no more than its room: the shares add up to `wanted`, so
        -- that no feed is locked that the claim does not take (another claim would skip it).
        -- The hosts of handed-back feeds are asked beside them, as for one share each.
        WITH taken AS (
            SELECT COALESCE(ingest.url_host(l.url), '') AS host, count(*)::int AS n
            FROM unnest(leased) AS l
            GROUP BY 1
        ), ranked AS (
            SELECT p.host, p.host = ANY(handed) AS is_handed,
                   row_number() OVER (ORDER BY p.host = ANY(handed), p.ord) AS i,
                   GREATEST(1, count(*) FILTER (WHERE NOT p.host = ANY(handed)) OVER ()) AS h,
                   COALESCE(r.room, p_host_limit) - COALESCE(t.n, 0) AS room_left
            FROM unnest(picked) WITH ORDINALITY AS p(host, ord)
            LEFT JOIN unnest(p_room_hosts, p_rooms) AS r(host, room) ON r.host = p.host
            LEFT JOIN taken t ON t.host = p.host
        ), shares AS (
            SELECT x.host, x.is_handed, x.room_left,
                   CASE WHEN x.is_handed THEN ceil(wanted::numeric / x.h)::int
                        ELSE (wanted / x.h + (x.i <= wanted % x.h)::int)::int END AS fair
            FROM ranked x
        ), asked AS (
            SELECT s.host, s.is_handed, LEAST(s.room_left, s.fair) AS n,
                   s.room_left IS NULL OR s.room_left > s.fair AS more
            FROM shares s
        ), candidates AS (
            SELECT c.id, c.next_fetch_at, a.host
            FROM asked a
            CROSS JOIN LATERAL (
                SELECT f.id, f.next_fetch_at FROM ingest.feeds f
                WHERE COALESCE(ingest.url_host(f.url), '') = a.host
                  AND f.next_fetch_at <= now()
                  AND (f.lease_expires_at IS NULL OR f.lease_expires_at < now())
                  AND NOT (f.id = ANY(p_exclude))
                ORDER BY f.next_fetch_at
                LIMIT a.n
                FOR UPDATE SKIP LOCKED
            ) c
        ), chosen AS (
            SELECT c.id FROM candidates c
            ORDER BY c.next_fetch_at, c.id
            LIMIT wanted
        ), updated AS (
            UPDATE ingest.feeds f
            SET lease_owner = p_owner,
                lease_expires_at = now() + make_interval(secs => p_lease_seconds)
            WHERE f.id = ANY(ARRAY(SELECT c.id FROM chosen c))
            RETURNING f.*
        ), counted AS (
            -- What each host gave, and when its next due feed not taken is (NULL: none left;
            -- feeds another claim holds count, as they are not leased yet).
            SELECT a.host, a.is_handed, a.n, a.more, count(c.id) AS k, (
                SELECT f.next_fetch_at FROM ingest.feeds f
                WHERE COALESCE(ingest.url_host(f.url), '') = a.host
                  AND f.next_fetch_at <= now()
                  AND (f.lease_expires_at IS NULL OR f.lease_expires_at < now())
                  AND NOT (f.id = ANY(p_exclude))
                  AND NOT (f.id = ANY(ARRAY(SELECT c.id FROM chosen c)))
                ORDER BY f.next_fetch_at
                LIMIT 1
            ) AS at
            FROM asked a LEFT JOIN candidates c ON c.host = a.host
            GROUP BY a.host, a.is_handed, a.n, a.more
        )
        SELECT (SELECT array_agg(u) FROM updated u),
               (SELECT array_agg(x.host) FROM counted x
                WHERE x.at IS NULL AND NOT (x.is_handed AND x.k = 0)),
               (SELECT array_agg(x.host) FROM counted x
                WHERE x.more AND x.k = x.n AND x.at IS NOT NULL),
               (SELECT array_agg(x.host ORDER BY x.host) FROM counted x WHERE x.at IS NOT NULL),
               (SELECT array_agg(x.at ORDER BY x.host) FROM counted x WHERE x.at IS NOT NULL)
        INTO got, spent, shared, resumed, resumed_at;
        leased := leased || COALESCE(got, '{}');
        more := more || COALESCE(shared, '{}');

        -- A host that has due feeds left is due when the earliest of those is (read already:
        -- not a time past that an earlier claim took), so that it comes after the hosts whose
        -- feeds have waited longer; a spent one is set anew. Rows another transaction holds
        -- are left for a later claim (a trigger lowering one is right as it is), locked in the
        -- order of their keys: claims never wait for each other.
        IF spent IS NOT NULL OR resumed IS NOT NULL THEN
            UPDATE ingest.feed_hosts fh
            SET due_at = CASE
                WHEN fh.host = ANY(COALESCE(spent, '{}')) THEN ingest.host_due(fh.host)
                ELSE (SELECT r.at FROM unnest(resumed, resumed_at) AS r(host, at)
                      WHERE r.host = fh.host)
            END
            WHERE fh.host IN (
                SELECT l.host FROM ingest.feed_hosts l
                WHERE l.host = ANY(COALESCE(spent, '{}') || COALESCE(resumed, '{}'))
                ORDER BY l.host
                FOR UPDATE SKIP LOCKED
            );
        END IF;
        -- Every host gave its room: the earliest are served (were the batch not full, no
        -- other host was due when these were read).
        EXIT WHEN spent IS NULL AND shared IS NULL;
    END LOOP;

    RETURN QUERY SELECT * FROM unnest(leased);
END
$$;
