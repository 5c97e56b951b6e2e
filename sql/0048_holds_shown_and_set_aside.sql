-- A feed that a Retry-After holds (its own 429 or 503, or another feed's of its host) says so:
-- news.feeds.held_until is when the hold ends (NULL when none holds it now), which `ingest feeds
-- list` and `feeds show` print, where the feed's next fetch alone said nothing of why it was
-- later than its schedule.

ALTER TABLE ingest.feeds ADD COLUMN held_until timestamptz;

CREATE OR REPLACE VIEW news.feeds AS
SELECT f.id,
       ingest.redacted_url(f.url) AS url,
       f.title,
       ingest.redacted_url(f.site_url) AS site_url,
       f.active,
       f.added_at,
       f.last_fetched_at,
       f.next_fetch_at,
       f.last_status,
       ingest.redacted_text(f.last_error) AS last_error,
       f.consecutive_failures,
       ingest.redacted_text(f.inactive_reason) AS inactive_reason,
       f.failing_since,
       f.publish_interval,
       f.kind,
       f.text_mode,
       f.full_text,
       f.full_text_evidence,
       f.tags,
       f.settings - 'headers' AS settings,
       f.consecutive_not_found,
       f.not_found_since,
       CASE WHEN f.held_until > now() THEN f.held_until END AS held_until
FROM ingest.feeds f;

-- A claim read past every due host another process holds (sql/0045), at every claim: the
-- hosts the other replicas poll whose due feeds are more than they have in flight stay due,
-- and each claim read their rows of ingest.feed_hosts and asked ingest.host_holds about each,
-- its work growing with those hosts rather than with its batch (100,000 feeds on 10,000 hosts,
-- 9,000 of them held by other processes: 40,000 buffers a claim of 50, against 4,000 with
-- none held). A claim that reads past a host another process holds now sets it aside for that
-- process until the hold ends (ingest.feed_hosts.aside_for, aside_until): the claims of other
-- processes read it again only then (a renewal having moved the hold on, they set it aside
-- again), the process holding it reads it as due when its feeds are (it goes on claiming
-- them), and a process releasing a host (sql/queries.sql: release_hosts) brings its time aside
-- down to the end of the hold it leaves. A row another transaction holds is left as it is,
-- read past again by a later claim; nothing waits for a claim.

ALTER TABLE ingest.feed_hosts ADD COLUMN aside_for text, ADD COLUMN aside_until timestamptz;

-- The hosts other claims may read: by when each is due, or, set aside, when that ends.
DROP INDEX ingest.feed_hosts_due_idx;
CREATE INDEX feed_hosts_due_idx ON ingest.feed_hosts ((GREATEST(due_at, aside_until)), host);
-- The hosts set aside for a process, which holds them, by when each is due.
CREATE INDEX feed_hosts_aside_idx ON ingest.feed_hosts (aside_for, due_at)
    WHERE aside_for IS NOT NULL;

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
    chunk int;
    picked_hosts text[];
    picked_at timestamptz[];
    put_aside text[];
    chunk_hosts text[];
    chunk_at timestamptz[];
    chunk_held boolean[];
    read_n int;
    j int;
    last_at timestamptz;
    last_host text;
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
        -- The earliest due hosts, at most `wanted` of them besides those of handed-back feeds:
        -- those no claim has set aside (or whose time aside is over), read a batch's worth at
        -- a time in the order they are due, up to the first `wanted` + cardinality(handed)
        -- that no other process holds; and those set aside for this process, which holds them
        -- and goes on claiming their feeds, by when they are due.
        chunk := wanted + cardinality(handed);
        picked_hosts := '{}';
        picked_at := '{}';
        put_aside := '{}';
        last_at := '-infinity';
        last_host := '';
        LOOP
            SELECT array_agg(c.host ORDER BY c.at, c.host), array_agg(c.at ORDER BY c.at, c.host),
                   array_agg(c.held ORDER BY c.at, c.host), count(*)
            INTO chunk_hosts, chunk_at, chunk_held, read_n
            FROM (
                SELECT fh.host, GREATEST(fh.due_at, fh.aside_until) AS at,
                       ingest.host_held(fh.host, p_owner) AS held
                FROM ingest.feed_hosts fh
                WHERE GREATEST(fh.due_at, fh.aside_until) <= now()
                  AND (GREATEST(fh.due_at, fh.aside_until), fh.host) > (last_at, last_host)
                  AND fh.host <> ALL(p_busy) AND fh.host <> ALL(tried)
                ORDER BY GREATEST(fh.due_at, fh.aside_until), fh.host
                LIMIT chunk
            ) c;
            EXIT WHEN read_n = 0;
            FOR j IN 1..read_n LOOP
                IF chunk_held[j] THEN
                    put_aside := put_aside || chunk_hosts[j];
                ELSIF cardinality(picked_hosts) < chunk THEN
                    picked_hosts := picked_hosts || chunk_hosts[j];
                    picked_at := picked_at || chunk_at[j];
                END IF;
            END LOOP;
            EXIT WHEN read_n < chunk OR cardinality(picked_hosts) >= chunk;
            last_at := chunk_at[read_n];
            last_host := chunk_hosts[read_n];
        END LOOP;
        -- The hosts read past because another process holds them are set aside for it until
        -- its hold ends (as it stands: a renewal moves the hold on, and the host is read past
        -- once more then), so that the claims after this one do not read them again: what a
        -- claim reads follows its batch, not the hosts the other replicas poll. Rows another
        -- transaction holds are left, read past again by a later claim.
        IF cardinality(put_aside) > 0 THEN
            UPDATE ingest.feed_hosts fh
            SET aside_for = hh.held_by, aside_until = hh.held_until
            FROM ingest.host_holds hh
            WHERE hh.host = fh.host AND hh.held_by <> p_owner AND hh.held_until > now()
              AND fh.host IN (
                  SELECT l.host FROM ingest.feed_hosts l
                  WHERE l.host = ANY(put_aside)
                  ORDER BY l.host
                  FOR UPDATE SKIP LOCKED
              );
        END IF;
        SELECT array_agg(h.host ORDER BY h.at) INTO picked FROM (
            SELECT x.host, x.at,
                   row_number() OVER (PARTITION BY x.host = ANY(handed) ORDER BY x.at) AS r
            FROM (
                SELECT y.host, y.at FROM (
                    SELECT p.host, p.at FROM unnest(picked_hosts, picked_at) AS p(host, at)
                    UNION ALL
                    (SELECT fh.host, fh.due_at
                     FROM ingest.feed_hosts fh
                     WHERE fh.aside_for = p_owner AND fh.due_at <= now()
                       AND fh.aside_until > now()
                       AND fh.host <> ALL(p_busy) AND fh.host <> ALL(tried)
                     ORDER BY fh.due_at
                     LIMIT chunk)
                ) y
                ORDER BY y.at
                LIMIT chunk
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
