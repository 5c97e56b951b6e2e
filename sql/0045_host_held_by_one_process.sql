-- One process polls a host at a time, so that a host's politeness (INGEST_HOST_DELAY, its
-- Crawl-delay, its connections, its Retry-After), which each process keeps for the hosts it
-- polls, holds whatever the number of replicas. Before, two replicas' claims each took feeds
-- of one host, and each sent it requests at the delay: twice the rate it was promised.
--
-- A host is held by the process whose claim took feeds of it (ingest.host_holds) until
-- held_until: the end of the leases that claim gave, moved on with the leases renewed
-- (sql/queries.sql: renew_leases), and set to the host's delay from now (raised by its
-- Crawl-delay; or the end of a Retry-After it met) when the process has no feed of the host in
-- flight or its run ends (release_hosts), so that another process's first request does not
-- follow its last one sooner than the delay, nor come while the host asked for none. A process that dies holds its hosts until their leases would have
-- run out, as it holds its feeds. A claim reads past the hosts another process
-- holds, and takes a host only under a transaction-level advisory lock of its own (tried, never
-- waited for), reading the holds again once it has it: two claims at the same moment take
-- different hosts, and one that comes after another's commit sees its hold. Only claims,
-- renewals and releases touch the holds: a transaction adding or changing feeds (which locks
-- their hosts' rows of ingest.feed_hosts) neither waits for a claim nor holds one up.

CREATE TABLE ingest.host_holds (
    host text PRIMARY KEY,
    held_by text NOT NULL,
    held_until timestamptz NOT NULL
);

-- Whether another process than p_owner holds the host, as the calling statement sees it.
CREATE FUNCTION ingest.host_held(h text, p_owner text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN EXISTS (
        SELECT FROM ingest.host_holds hh
        WHERE hh.host = h AND hh.held_by <> p_owner AND hh.held_until > now()
    );

-- The host's advisory lock for this transaction, where no other claim has it, and then, read
-- afresh (VOLATILE: the second query sees what was committed before the lock was had),
-- whether another process holds the host. True: the claim may take its feeds.
CREATE FUNCTION ingest.take_host(h text, p_owner text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(1752134516, hashtext(h)) THEN  -- 0x686F7374, "host"
        RETURN false;
    END IF;
    RETURN NOT ingest.host_held(h, p_owner);
END
$$;

-- The hosts a claim took feeds of (or a renewal renews feeds of) are p_owner's for as long as
-- the leases it gave run: the hosts so held. A claim, which took each host under its advisory
-- lock (ingest.take_host), holds them whoever held them; a renewal (p_only_free) holds only those
-- still its own, or whose hold ran out.
CREATE FUNCTION ingest.hold_hosts(
    p_hosts text[], p_owner text, p_lease_seconds float8, p_only_free boolean DEFAULT false
) RETURNS SETOF text
    LANGUAGE sql VOLATILE
AS $$
    INSERT INTO ingest.host_holds AS hh (host, held_by, held_until)
    SELECT DISTINCT h, p_owner, now() + make_interval(secs => p_lease_seconds)
    FROM unnest(p_hosts) AS h
    ORDER BY 1
    ON CONFLICT (host) DO UPDATE
    SET held_by = EXCLUDED.held_by, held_until = GREATEST(
        EXCLUDED.held_until, CASE WHEN hh.held_by = EXCLUDED.held_by THEN hh.held_until END)
    WHERE NOT p_only_free OR hh.held_by = EXCLUDED.held_by OR hh.held_until <= now()
    RETURNING hh.host
$$;

CREATE OR REPLACE FUNCTION ingest.claim_due_feeds(
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
    bare text[];
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
                  AND NOT ingest.host_held(fh.host, p_owner)
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
        ELSE
            tried := tried || picked;
            -- Those with no feed to give (the row of a host whose poll ended before its lease
            -- said due at the lease's end; feeds in flight or handed back) are set anew, but
            -- for those of handed-back feeds, and left without taking their locks: a claim
            -- holds the locks of the hosts it may take feeds of, not of every host it reads
            -- past (the server's lock table is shared and bounded).
            bare := ARRAY(
                SELECT p.host FROM unnest(picked) AS p(host)
                WHERE NOT EXISTS (
                    SELECT FROM ingest.feeds f
                    WHERE COALESCE(ingest.url_host(f.url), '') = p.host
                      AND f.next_fetch_at <= now()
                      AND (f.lease_expires_at IS NULL OR f.lease_expires_at < now())
                      AND NOT (f.id = ANY(p_exclude))
                )
            );
            IF cardinality(bare) > 0 THEN
                UPDATE ingest.feed_hosts fh
                SET due_at = ingest.host_due(fh.host)
                WHERE fh.host IN (
                    SELECT l.host FROM ingest.feed_hosts l
                    WHERE l.host = ANY(bare) AND NOT l.host = ANY(handed)
                    ORDER BY l.host
                    FOR UPDATE SKIP LOCKED
                );
            END IF;
            -- Those another claim is taking, or another process took since, are left: read
            -- past in the next round.
            picked := ARRAY(
                SELECT p.host FROM unnest(picked) WITH ORDINALITY AS p(host, ord)
                WHERE NOT p.host = ANY(bare) AND ingest.take_host(p.host, p_owner)
                ORDER BY p.ord
            );
            CONTINUE WHEN cardinality(picked) = 0;
        END IF;

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

    PERFORM ingest.hold_hosts(
        ARRAY(SELECT DISTINCT COALESCE(ingest.url_host(l.url), '') FROM unnest(leased) AS l),
        p_owner, p_lease_seconds);

    RETURN QUERY SELECT * FROM unnest(leased);
END
$$;

-- A pass over every feed (`run --once --all`; sql/queries.sql: claim_all_feeds): the least
-- recently polled feeds not polled since the pass started (p_pass_started; now when NULL), as
-- many as wanted, of hosts no other process holds, taken host by host (ingest.take_host), no
-- more of one host than its room. Where a claim beside it is taking some of the hosts read,
-- those are left and the feeds of the hosts after them are read in their place, so that a
-- batch read all of such hosts does not come back empty, which ends a pass.
CREATE FUNCTION ingest.claim_all_feeds(
    p_owner text, p_lease_seconds float8, p_limit int, p_exclude bigint[], p_busy text[],
    p_room_hosts text[], p_rooms int[], p_host_limit int, p_pass_started timestamptz
) RETURNS SETOF ingest.feeds
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    leased ingest.feeds[] := '{}';
    tried text[] := '{}';
    ids bigint[];
    hosts text[];
    ranks int[];
    read text[];
    taken text[];
    got ingest.feeds[];
BEGIN
    LOOP
        EXIT WHEN p_limit - cardinality(leased) <= 0;
        SELECT array_agg(p.id ORDER BY p.ord), array_agg(p.host ORDER BY p.ord),
               array_agg(p.ord::int ORDER BY p.ord)
        INTO ids, hosts, ranks
        FROM (
            SELECT f.id, COALESCE(ingest.url_host(f.url), '') AS host,
                   row_number() OVER (ORDER BY f.polled_at NULLS FIRST, f.id) AS ord
            FROM (
                SELECT id, url, polled_at FROM ingest.feeds
                WHERE (polled_at IS NULL
                       OR polled_at < COALESCE(p_pass_started, now()))
                  AND (active OR next_fetch_at <= now())
                  AND (lease_expires_at IS NULL OR lease_expires_at < now())
                  AND NOT (id = ANY(p_exclude))
                  AND COALESCE(ingest.url_host(url), '') <> ALL(p_busy)
                  AND COALESCE(ingest.url_host(url), '') <> ALL(tried)
                  AND NOT ingest.host_held(COALESCE(ingest.url_host(url), ''), p_owner)
                ORDER BY polled_at NULLS FIRST
                LIMIT p_limit - cardinality(leased)
                FOR UPDATE SKIP LOCKED
            ) f
        ) p;
        EXIT WHEN ids IS NULL;
        read := ARRAY(SELECT DISTINCT h FROM unnest(hosts) AS h ORDER BY 1);
        tried := tried || read;
        taken := ARRAY(SELECT h FROM unnest(read) AS h WHERE ingest.take_host(h, p_owner));
        WITH ranked AS (
            SELECT r.id, r.host,
                   row_number() OVER (PARTITION BY r.host ORDER BY r.ord) AS n
            FROM unnest(ids, hosts, ranks) AS r(id, host, ord)
            WHERE r.host = ANY(taken)
        ), chosen AS (
            SELECT r.id FROM ranked r
            LEFT JOIN unnest(p_room_hosts, p_rooms) AS h(host, room) ON h.host = r.host
            WHERE r.n <= COALESCE(h.room, p_host_limit, r.n)
        ), updated AS (
            UPDATE ingest.feeds f
            SET lease_owner = p_owner,
                lease_expires_at = now() + make_interval(secs => p_lease_seconds)
            WHERE f.id = ANY(ARRAY(SELECT c.id FROM chosen c))
            RETURNING f.*
        )
        SELECT array_agg(u) INTO got FROM updated u;
        leased := leased || COALESCE(got, '{}');
        -- Every host read was taken: the batch is what the least recently polled feeds give.
        EXIT WHEN cardinality(taken) = cardinality(read);
    END LOOP;

    PERFORM ingest.hold_hosts(
        ARRAY(SELECT DISTINCT COALESCE(ingest.url_host(l.url), '') FROM unnest(leased) AS l),
        p_owner, p_lease_seconds);

    RETURN QUERY SELECT * FROM unnest(leased);
END
$$;
