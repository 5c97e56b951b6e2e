-- Named queries run by ingest/store/ (feeds.py, articles.py, backfill.py). Each starts with
-- "-- name: <name>"; parameters are psycopg named placeholders, always bound, never formatted
-- into the text.

-- name: add_feed
-- A feed registered already is left as it is, but for the site it belongs to when it has none
-- yet (a sitemap registered before the site that named it was recorded). `added`: inserted.
INSERT INTO ingest.feeds (url, title, kind, site_url)
VALUES (%(url)s, %(title)s, %(kind)s, %(site_url)s)
ON CONFLICT (url_hash) DO UPDATE SET site_url = EXCLUDED.site_url
    WHERE ingest.feeds.site_url IS NULL AND EXCLUDED.site_url IS NOT NULL
RETURNING id, xmax = 0 AS added;

-- name: list_feeds
-- held_until as news.feeds shows it: the end of a Retry-After's hold not over yet (sql/0048).
SELECT id, url, title, site_url, kind, active, inactive_reason, last_status, last_error,
       consecutive_failures, last_fetched_at, next_fetch_at, text_mode, full_text,
       CASE WHEN held_until > now() THEN held_until END AS held_until
FROM ingest.feeds
ORDER BY id;

-- name: export_feeds
-- `ingest feeds export`: each feed with what `feeds import` needs to register it as it is: its
-- kind, whether it is paused, its text mode, tags and settings (headers included, which
-- news.feeds leaves out).
SELECT url, title, site_url, kind, active, next_fetch_at, text_mode, tags, settings
FROM ingest.feeds
ORDER BY id;

-- name: feed_details
-- Everything `ingest feeds show` prints about one feed: its row in news.feeds, the names of
-- the headers it sends (their values, which may be credentials, stay out, as news.feeds
-- leaves them out) and the articles it holds (first seen in it, or listed by it).
SELECT f.*,
       ARRAY(SELECT jsonb_object_keys(i.settings -> 'headers') AS name
             FROM ingest.feeds i WHERE i.id = f.id ORDER BY name) AS headers,
       (SELECT count(*) FROM ingest.articles a WHERE a.feed_id = f.id) AS articles_first_seen,
       (SELECT count(DISTINCT e.article_id) FROM ingest.feed_entries e
        WHERE e.feed_id = f.id AND e.article_id IS NOT NULL) AS articles_listed,
       (SELECT max(a.published_at) FROM ingest.feed_entries e
        JOIN ingest.articles a ON a.id = e.article_id WHERE e.feed_id = f.id) AS latest_article
FROM news.feeds f
WHERE f.id = (SELECT id FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(url)s));

-- name: set_feed_settings
-- `ingest feeds set`: %(changes)s merged into the settings (a key set to null removed, and
-- headers merged the same way one level down, a header given replacing the stored one of its
-- name in any case: header names are case-insensitive), tags replaced when %(tags)s is not null.
UPDATE ingest.feeds
SET settings = jsonb_strip_nulls(
        (settings || %(changes)s::jsonb)
        || jsonb_build_object('headers',
               COALESCE((SELECT jsonb_object_agg(h.key, h.value)
                         FROM jsonb_each(settings -> 'headers') AS h
                         WHERE lower(h.key) NOT IN (
                             SELECT lower(given)
                             FROM jsonb_object_keys(COALESCE(%(headers)s::jsonb, '{}')) AS given)),
                        '{}')
               || COALESCE(%(headers)s::jsonb, '{}'))),
    tags = COALESCE(%(tags)s::text[], tags)
WHERE url_hash = ingest.url_hash(%(url)s)
RETURNING settings, tags;

-- name: enable_feed
-- Active again and due now, failures forgotten (its 404s in a row too); a lease in progress is
-- left to finish (a failure it ends in is then the first of the enabled feed: feed_failed).
UPDATE ingest.feeds
SET active = true, inactive_reason = NULL, consecutive_failures = 0, failing_since = NULL,
    consecutive_not_found = 0, not_found_since = NULL, next_fetch_at = now(), held_until = NULL
WHERE url_hash = ingest.url_hash(%(url)s)
RETURNING id;

-- name: disable_feed
-- Paused: inactive and never due (an inactive feed that failed is still probed at the slowest
-- rate; a paused one is not polled at all). "Never" is the first instant of the year 9999, a
-- time every client library can read (psycopg refuses 'infinity'). A poll in progress loses
-- its lease, so its outcome does not make the feed active again.
UPDATE ingest.feeds
SET active = false, inactive_reason = %(reason)s, next_fetch_at = '9999-01-01 00:00:00+00',
    lease_owner = NULL, lease_expires_at = NULL
WHERE url_hash = ingest.url_hash(%(url)s)
RETURNING id;

-- name: latest_articles
-- `ingest articles`: news.articles as a consumer reads it, newest first.
SELECT id, url, title, author, authors, tags, published_at, language, site, feed_url,
       duplicate_of, text_source, text
FROM news.articles a
WHERE (%(feed)s::text IS NULL OR a.feed_id = (
          SELECT id FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(feed)s::text))
       OR a.id IN (SELECT e.article_id FROM ingest.feed_entries e JOIN ingest.feeds f
                   ON f.id = e.feed_id WHERE f.url_hash = ingest.url_hash(%(feed)s::text)))
  AND (%(site)s::text IS NULL OR a.site = %(site)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.published_at >= %(since)s::timestamptz)
ORDER BY a.published_at DESC, a.id DESC
LIMIT %(limit)s;

-- name: remove_feed
DELETE FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(url)s) RETURNING id;

-- name: claim_feeds
-- Due feeds (inactive ones are due at the slowest rate), not leased by anyone else, not handed
-- back during this pass (%(exclude)s), not of a host whose feeds hold their share of the
-- process's slots (%(busy_hosts)s, sql/0018), chosen host by host (sql/0037): the earliest due
-- hosts first (ingest.feed_hosts), each for its earliest due feeds (index on host and
-- next_fetch_at), no more of one host than it has room for (%(room_hosts)s/%(rooms)s: hosts
-- with feeds in flight; %(host_limit)s: any other, NULL: no limit) nor than an even share of
-- the batch. What a claim reads follows the batch and the feeds in flight, not a left-out
-- host's backlog. A feed done in this pass is not due any more (its next fetch is ahead), so
-- no list of done feeds is needed. SKIP LOCKED lets replicas claim disjoint sets concurrently.
-- The times a streak began (failures, 404s, a permanent redirect), recorded by the database's
-- clock, are read on the claiming process's (%(now)s; the database's when NULL), which its
-- decisions measure them with: a process whose clock is off the database's counts the
-- streak's real length, not that plus its skew.
SELECT c.id, c.url, c.title, c.etag, c.last_modified, c.body_hash,
       c.consecutive_failures, c.active, c.publish_interval, c.feed_hint,
       c.failing_since + (COALESCE(%(now)s::timestamptz, now()) - now()) AS failing_since,
       c.redirect_to, c.redirect_seen,
       c.redirect_since + (COALESCE(%(now)s::timestamptz, now()) - now()) AS redirect_since,
       c.kind, c.text_mode,
       c.full_text, c.full_text_streak, c.full_text_since_check, c.full_text_words,
       c.full_text_evidence, c.full_text_cap_words, c.full_text_cap_chars,
       c.full_text_templates, c.settings,
       c.newest_entry_at, c.site_url, c.consecutive_not_found,
       c.not_found_since + (COALESCE(%(now)s::timestamptz, now()) - now()) AS not_found_since,
       COALESCE(ingest.url_host(c.url), '') AS host
FROM ingest.claim_due_feeds(
    %(owner)s, %(lease_seconds)s::float8, %(limit)s::int, %(exclude)s::bigint[],
    %(busy_hosts)s::text[], %(room_hosts)s::text[], %(rooms)s::int[], %(host_limit)s::int
) AS c;

-- name: claim_all_feeds
-- A pass over every feed (`run --once --all`): the active ones and the due inactive ones, not
-- polled since the pass started (%(pass_started)s, database clock; now when NULL), least
-- recently polled first (index on polled_at: the feeds done in this pass sort last and are
-- never read again), not leased by anyone else, not handed back during this pass, not of a busy
-- host, no more of one host than it has room for (as claim_feeds), not of a host another process
-- holds, and of the hosts read, only those no other claim is taking, the feeds of the hosts
-- after them read in their place (ingest.claim_all_feeds; the hosts it took feeds of are then
-- held: sql/0045). The times a streak began on the claiming process's clock, as claim_feeds
-- reads them.
SELECT c.id, c.url, c.title, c.etag, c.last_modified, c.body_hash,
       c.consecutive_failures, c.active, c.publish_interval, c.feed_hint,
       c.failing_since + (COALESCE(%(now)s::timestamptz, now()) - now()) AS failing_since,
       c.redirect_to, c.redirect_seen,
       c.redirect_since + (COALESCE(%(now)s::timestamptz, now()) - now()) AS redirect_since,
       c.kind, c.text_mode,
       c.full_text, c.full_text_streak, c.full_text_since_check, c.full_text_words,
       c.full_text_evidence, c.full_text_cap_words, c.full_text_cap_chars,
       c.full_text_templates, c.settings,
       c.newest_entry_at, c.site_url, c.consecutive_not_found,
       c.not_found_since + (COALESCE(%(now)s::timestamptz, now()) - now()) AS not_found_since,
       COALESCE(ingest.url_host(c.url), '') AS host
FROM ingest.claim_all_feeds(
    %(owner)s, %(lease_seconds)s::float8, %(limit)s::int, %(exclude)s::bigint[],
    %(busy_hosts)s::text[], %(room_hosts)s::text[], %(rooms)s::int[], %(host_limit)s::int,
    %(pass_started)s::timestamptz
) AS c;

-- name: feed_succeeded
-- The next fetch is the delay decided at %(now)s (the process's clock) counted from the
-- database's clock, which claims compare with: a process whose clock runs behind the
-- database's would otherwise write times already past, and poll the feed at every tick; one
-- whose clock runs ahead, times its skew late. "Never" (9999-01-01) stays never. The last
-- fetch is by the database's clock too, so that the interval between the two (`feeds show`)
-- is the poll's, and so is when the permanent redirect seen began (decided on the process's
-- clock, as the claim read it: counted back from the database's now).
-- A parse records the publishing interval it found, none included (entries without dates): the
-- polls that find nothing new go on from it, not from an older document's.
UPDATE ingest.feeds
SET last_fetched_at = now(),
    polled_at = now(),
    next_fetch_at = CASE
        WHEN %(next_fetch_at)s::timestamptz >= '9999-01-01 00:00:00+00' THEN %(next_fetch_at)s
        ELSE LEAST(now() + (%(next_fetch_at)s::timestamptz - %(now)s::timestamptz),
                   '9999-01-01 00:00:00+00') END,
    last_status = %(status)s,
    last_error = NULL,
    consecutive_failures = 0,
    etag = %(etag)s,
    last_modified = %(last_modified)s,
    body_hash = CASE WHEN %(keep_body_hash)s THEN COALESCE(%(body_hash)s, body_hash) END,
    title = COALESCE(%(title)s, title),
    site_url = COALESCE(%(site_url)s, site_url),
    publish_interval = CASE WHEN %(parsed)s THEN %(publish_interval)s::interval
                            ELSE COALESCE(%(publish_interval)s, publish_interval) END,
    newest_entry_at = COALESCE(%(newest_entry_at)s, newest_entry_at),
    feed_hint = CASE WHEN %(parsed)s THEN %(feed_hint)s ELSE feed_hint END,
    active = true,
    inactive_reason = NULL,
    failing_since = NULL,
    consecutive_not_found = 0,
    not_found_since = NULL,
    redirect_to = %(redirect_to)s,
    redirect_seen = %(redirect_seen)s,
    redirect_since = now() + (%(redirect_since)s::timestamptz - %(now)s::timestamptz),
    full_text = COALESCE(%(full_text)s, full_text),
    full_text_streak = COALESCE(%(full_text_streak)s, full_text_streak),
    full_text_since_check = COALESCE(%(full_text_since_check)s, full_text_since_check),
    full_text_words = COALESCE(%(full_text_words)s, full_text_words),
    full_text_evidence = COALESCE(%(full_text_evidence)s, full_text_evidence),
    full_text_cap_words = COALESCE(%(full_text_cap_words)s, full_text_cap_words),
    full_text_cap_chars = COALESCE(%(full_text_cap_chars)s, full_text_cap_chars),
    full_text_templates = COALESCE(%(full_text_templates)s::bytea[], full_text_templates),
    held_until = NULL,
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s;

-- name: set_text_mode
-- The operator's setting; the evidence gathered so far is kept. A feed proven full-text that is
-- set back to auto from another mode has its next new entry compared with its page before any
-- is stored from its text (%(due)s entries since the last comparison, one short of a re-check):
-- its evidence is of before the override, and nothing compared its texts meanwhile.
UPDATE ingest.feeds
SET full_text_since_check = CASE WHEN %(mode)s = 'auto' AND text_mode <> 'auto' AND full_text
                                 THEN GREATEST(full_text_since_check, %(due)s::int)
                                 ELSE full_text_since_check END,
    text_mode = %(mode)s
WHERE url_hash = ingest.url_hash(%(url)s) RETURNING id;

-- name: feed_failed
-- The next fetch as in feed_succeeded: the delay decided, by the database's clock (a backoff
-- or a Retry-After must not be cut short by a process's clock behind it, nor stretched by one
-- ahead of it). A streak of failures (of 404s) that begins begins at the database's now, the
-- clock its length is read on by every process (claim_feeds).
-- A feed enabled (enable_feed) since it was claimed, which leaves a lease in progress to finish,
-- has fewer failures than the claim read (%(claimed_failures)s) or is active where it was not
-- (%(claimed_active)s): its outcome is the one decided for the feed as enable_feed left it (the
-- fresh_ parameters, when given), so that a poll which started before the operator's change does
-- not undo it (the feed given up on again, or asked again only at the slowest rate). A feed
-- given up on already takes the reason given (it is found gone), else keeps its own.
-- A 404 (%(not_found)s) is one more of the feed's 404s in a row; any other failure ends them.
-- A failure with a Retry-After holds the feed for %(held_for)s (capped: ingest.schedule,
-- retry_after_wait), shown in news.feeds.held_until; any other leaves no hold (sql/0048).
-- The full-text state is the one the poll's stored entries left, where it failed after storing
-- them (their comparisons are not made again: the entries are known at the next poll); null
-- parameters leave it as it is.
WITH claimed AS (
    SELECT id,
           %(fresh_next_fetch_at)s::timestamptz IS NOT NULL
           AND (consecutive_failures < %(claimed_failures)s::int
                OR (active AND NOT %(claimed_active)s::boolean)) AS enabled
    FROM ingest.feeds
    WHERE id = %(id)s AND lease_owner = %(owner)s
    FOR UPDATE
), outcome AS (
    SELECT id,
           CASE WHEN enabled THEN %(fresh_next_fetch_at)s::timestamptz
                ELSE %(next_fetch_at)s::timestamptz END AS next_at,
           CASE WHEN enabled THEN %(fresh_deactivate)s::boolean
                ELSE %(deactivate)s::boolean END AS deactivate,
           CASE WHEN enabled THEN %(fresh_inactive_reason)s::text
                ELSE %(inactive_reason)s::text END AS reason
    FROM claimed
)
UPDATE ingest.feeds f
SET last_fetched_at = now(),
    polled_at = now(),
    next_fetch_at = CASE
        WHEN o.next_at >= '9999-01-01 00:00:00+00' THEN o.next_at
        ELSE LEAST(now() + (o.next_at - %(now)s::timestamptz), '9999-01-01 00:00:00+00') END,
    last_status = 'error',
    last_error = %(error)s,
    consecutive_failures = f.consecutive_failures + 1,
    failing_since = COALESCE(f.failing_since, now()),
    consecutive_not_found = CASE WHEN %(not_found)s::boolean
                                 THEN f.consecutive_not_found + 1 ELSE 0 END,
    not_found_since = CASE WHEN %(not_found)s::boolean
                           THEN COALESCE(f.not_found_since, now()) END,
    active = f.active AND NOT o.deactivate,
    inactive_reason = CASE WHEN o.deactivate OR NOT f.active
                           THEN COALESCE(o.reason, f.inactive_reason)
                           ELSE f.inactive_reason END,
    redirect_to = NULL,
    redirect_seen = 0,
    redirect_since = NULL,
    full_text = COALESCE(%(full_text)s, f.full_text),
    full_text_streak = COALESCE(%(full_text_streak)s, f.full_text_streak),
    full_text_since_check = COALESCE(%(full_text_since_check)s, f.full_text_since_check),
    full_text_words = COALESCE(%(full_text_words)s, f.full_text_words),
    full_text_evidence = COALESCE(%(full_text_evidence)s, f.full_text_evidence),
    full_text_cap_words = COALESCE(%(full_text_cap_words)s, f.full_text_cap_words),
    full_text_cap_chars = COALESCE(%(full_text_cap_chars)s, f.full_text_cap_chars),
    full_text_templates = COALESCE(%(full_text_templates)s::bytea[], f.full_text_templates),
    held_until = now() + %(held_for)s::interval,
    lease_owner = NULL,
    lease_expires_at = NULL
FROM outcome o
WHERE f.id = o.id;

-- name: feed_held
-- The feed's request was not sent: its host answered another request with 429 or 503 and a
-- Retry-After not over (%(wait)s left, capped at INGEST_MAX_INTERVAL). Not a poll: due again
-- when the hold ends, by the database's clock (or later, where it was due later: paused by the
-- operator meanwhile), done for this pass (polled_at: `run --once --all` does not claim it again
-- into the same hold), its lease released; its failures, 404 streak, status and error, and
-- last_fetched_at stay as they were; news.feeds.held_until says until when it is held (sql/0048).
-- A no-op if the lease was lost.
UPDATE ingest.feeds
SET next_fetch_at = GREATEST(next_fetch_at,
                             LEAST(now() + %(wait)s::interval, '9999-01-01 00:00:00+00')),
    held_until = LEAST(now() + %(wait)s::interval, '9999-01-01 00:00:00+00'),
    polled_at = now(),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s;

-- name: hold_host_feeds
-- The host of %(url)s answered feed %(id)s with 429 or 503 and a Retry-After (%(wait)s, capped at
-- INGEST_MAX_INTERVAL): the host's other feeds due before then, not leased (a poll in progress
-- meets the refusal itself), are due then instead, by the database's clock, so that no replica
-- polls them into the same refusal (news.feeds.held_until: until when, sql/0048). Paused feeds
-- and feeds due later are left as they are. Reads
-- the host's feeds, their host and the URL's as the claims read a feed's (index on the host
-- and next_fetch_at, sql/0037); a URL without a host holds none.
UPDATE ingest.feeds
SET next_fetch_at = LEAST(now() + %(wait)s::interval, '9999-01-01 00:00:00+00'),
    held_until = LEAST(now() + %(wait)s::interval, '9999-01-01 00:00:00+00')
WHERE COALESCE(ingest.url_host(url), '') = ingest.url_host(%(url)s)
  AND next_fetch_at < LEAST(now() + %(wait)s::interval, '9999-01-01 00:00:00+00')
  AND id <> %(id)s
  AND (lease_expires_at IS NULL OR lease_expires_at < now());

-- name: release_leases
UPDATE ingest.feeds SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = %(owner)s AND id = ANY(%(ids)s);

-- name: keep_full_text
-- The full-text state a poll's stored entries left, kept as its lease is handed back without
-- an outcome (the entries are known at the next poll, their comparisons never made again); as
-- in feed_succeeded, null parameters leave it as it is. A no-op if the lease is another's.
UPDATE ingest.feeds
SET full_text = COALESCE(%(full_text)s, full_text),
    full_text_streak = COALESCE(%(full_text_streak)s, full_text_streak),
    full_text_since_check = COALESCE(%(full_text_since_check)s, full_text_since_check),
    full_text_words = COALESCE(%(full_text_words)s, full_text_words),
    full_text_evidence = COALESCE(%(full_text_evidence)s, full_text_evidence),
    full_text_cap_words = COALESCE(%(full_text_cap_words)s, full_text_cap_words),
    full_text_cap_chars = COALESCE(%(full_text_cap_chars)s, full_text_cap_chars),
    full_text_templates = COALESCE(%(full_text_templates)s::bytea[], full_text_templates)
WHERE id = %(id)s AND lease_owner = %(owner)s;

-- name: known_entries
-- The entries of a poll the feed has seen (entry_hash set; done: the entry has its article, or
-- had it until a prune; otherwise it is waiting for another try at its page), and what is known
-- of the links of the others (url set: known_urls; article_id NULL where it was pruned:
-- `ingest.known_url`, sql/0023), in one round trip. %(hashes)s, %(urls)s and %(titles)s are the
-- entries' keys, links and titles, in the same order. `other_story`: the entry's article is
-- stored under another title than the entry's (both given) and its link does not lead to that
-- article (`ingest.dedup.reused`). `listed`: the link's article is one the feed lists already,
-- under another entry (`ingest.dedup.plan`). An entry new to the feed whose link an entry
-- waiting for another try at its page has (its guid changed since) is waiting with those tries.
WITH seen AS (
    SELECT e.entry_hash, e.article_id IS NOT NULL OR e.pruned AS done, e.attempts,
           e.entry_updated_at,
           a.title <> c.title
           AND NOT EXISTS (SELECT 1 FROM ingest.known_url(ingest.url_hash(c.url)) k
                           WHERE k.article_id = e.article_id) AS other_story
    FROM unnest(%(hashes)s::bytea[], %(urls)s::text[], %(titles)s::text[])
         AS c(entry_hash, url, title)
    JOIN ingest.feed_entries e ON e.feed_id = %(feed_id)s AND e.entry_hash = c.entry_hash
    LEFT JOIN ingest.articles a ON a.id = e.article_id
)
SELECT entry_hash, done, attempts, entry_updated_at, NULL::text AS url,
       NULL::bigint AS article_id, COALESCE(other_story, false) AS other_story,
       NULL::boolean AS listed
FROM seen
UNION ALL
SELECT NULL, NULL, NULL, NULL, c.url, k.article_id, NULL,
       EXISTS (SELECT 1 FROM ingest.feed_entries l
               WHERE l.article_id = k.article_id AND l.feed_id = %(feed_id)s)
FROM unnest(%(hashes)s::bytea[], %(urls)s::text[]) AS c(entry_hash, url)
CROSS JOIN LATERAL ingest.known_url(ingest.url_hash(c.url)) AS k
WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.entry_hash = c.entry_hash AND seen.done)
UNION ALL
SELECT c.entry_hash, false, w.attempts, NULL, NULL, NULL, false, NULL
FROM unnest(%(hashes)s::bytea[], %(urls)s::text[]) AS c(entry_hash, url)
CROSS JOIN LATERAL (
    SELECT max(w.attempts) AS attempts FROM ingest.feed_entries w
    WHERE w.feed_id = %(feed_id)s AND w.link_hash = ingest.url_hash(c.url)
      AND w.article_id IS NULL AND NOT w.pruned) AS w
WHERE w.attempts IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM seen WHERE seen.entry_hash = c.entry_hash);

-- name: defer_updates
-- Updated entries whose page failed for a passing reason: one more try counted (reset once the
-- update is recorded, touch_feed_entry), the entry planned again as an update at the next poll.
UPDATE ingest.feed_entries SET attempts = attempts + 1
WHERE feed_id = %(feed_id)s AND entry_hash = ANY(%(hashes)s::bytea[]) AND article_id IS NOT NULL;

-- name: defer_entries
-- One more failed try at these entries' pages: a new entry starts from the tries it was planned
-- with (%(attempts)s: those of an entry waiting with its link, known_entries), and records the
-- hash of its link (%(links)s) for the next entry listed with it. %(tries)s: the tries to count
-- for each entry (0 for a page whose request its host held back, never sent; 1 when absent).
WITH d AS (
    SELECT h, l, t, COALESCE(n, 1) AS n
    FROM unnest(%(hashes)s::bytea[], %(links)s::text[], %(attempts)s::int[], %(tries)s::int[])
         AS d(h, l, t, n)
    WHERE h IS NOT NULL
)
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, attempts, link_hash)
SELECT %(feed_id)s, h, NULL, COALESCE(t, 0) + n, ingest.url_hash(l)
FROM d
ON CONFLICT (feed_id, entry_hash) DO UPDATE
SET attempts = ingest.feed_entries.attempts
        + (SELECT max(d.n) FROM d WHERE d.h = EXCLUDED.entry_hash),
    link_hash = COALESCE(EXCLUDED.link_hash, ingest.feed_entries.link_hash)
WHERE ingest.feed_entries.article_id IS NULL AND NOT ingest.feed_entries.pruned;

-- name: renew_leases
-- The leases still the process's, and the hold of their hosts (sql/0045) with them: a host whose
-- hold ran out and that another process then took is the other's, and the process's feeds of
-- it are not renewed (lost: stopped), so that two processes do not go on polling one host; one
-- whose hold ran out and nobody took is held again.
WITH mine AS (
    SELECT id, COALESCE(ingest.url_host(url), '') AS host
    FROM ingest.feeds
    WHERE lease_owner = %(owner)s AND id = ANY(%(ids)s)
), held AS MATERIALIZED (
    SELECT h.host FROM ingest.hold_hosts(
        ARRAY(SELECT m.host FROM mine m), %(owner)s, %(lease_seconds)s::float8, true
    ) AS h(host)
)
UPDATE ingest.feeds f
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
FROM mine m
WHERE f.id = m.id AND f.lease_owner = %(owner)s AND m.host IN (SELECT h.host FROM held h)
RETURNING f.id;

-- name: release_hosts
-- A run ended, or has no feed of these hosts in flight: the hosts it took feeds of (%(hosts)s),
-- where the process still holds them, are another's to take each one's delay from now
-- (%(delays)s seconds: the host delay, raised by its Crawl-delay, or the rest of its
-- Retry-After, which may outlast the leases), so that their next request does not follow its
-- last one sooner, nor come while the host asked for none (sql/0045). Where another process's
-- claim set a host aside for this one (sql/0048), its time aside ends with the hold, so that
-- the other claims read the host then; a row another transaction holds is left as it is (the
-- host then left to this process until its time aside runs out, the end of the hold as it was
-- when it was set aside).
WITH released AS (
    UPDATE ingest.host_holds hh
    SET held_until = now() + make_interval(secs => r.delay)
    FROM unnest(%(hosts)s::text[], %(delays)s::float8[]) AS r(host, delay)
    WHERE hh.host = r.host AND hh.held_by = %(owner)s AND hh.held_until > now()
    RETURNING hh.host, hh.held_until
)
UPDATE ingest.feed_hosts fh
SET aside_until = r.held_until
FROM released r
WHERE fh.host = r.host AND fh.host IN (
    SELECT l.host FROM ingest.feed_hosts l
    WHERE l.host IN (SELECT x.host FROM released x)
      AND l.aside_for = %(owner)s AND l.aside_until > now()
    ORDER BY l.host
    FOR UPDATE SKIP LOCKED
) AND fh.aside_until > r.held_until;

-- name: take_host
-- A process that claims no feeds (a backfill) about to send a request to the host of %(url)s
-- (`ingest.url_host`): taken as a claim takes a host (ingest.take_host: under its advisory
-- lock, where no other process holds it) and held %(lease_seconds)s (ingest.hold_hosts), so
-- that the host's feeds are claimed by no other process meanwhile (sql/0045). Where another
-- process holds it: by whom, and the seconds its hold has left as recorded (renewals move
-- them on, a release brings them in); both NULL where a claim is taking it at this moment.
WITH asked AS (
    SELECT COALESCE(ingest.url_host(%(url)s), '') AS host
), taken AS MATERIALIZED (
    SELECT a.host FROM asked a WHERE ingest.take_host(a.host, %(owner)s)
), held AS MATERIALIZED (
    SELECT h.host FROM ingest.hold_hosts(
        ARRAY(SELECT t.host FROM taken t), %(owner)s, %(lease_seconds)s::float8
    ) AS h(host)
)
SELECT a.host, EXISTS (SELECT FROM held) AS taken, hh.held_by,
       extract(epoch FROM hh.held_until - now())::float8 AS seconds
FROM asked a
LEFT JOIN ingest.host_holds hh
    ON hh.host = a.host AND hh.held_by <> %(owner)s AND hh.held_until > now();

-- name: renew_hosts
-- The hosts a process that claims no feeds holds (take_host) and still sends requests to,
-- held %(lease_seconds)s more: those still its own, or whose hold ran out and nobody took (as
-- renew_leases holds the hosts of a service's feeds). A host left out is another's.
SELECT h.host FROM ingest.hold_hosts(
    %(hosts)s::text[], %(owner)s, %(lease_seconds)s::float8, true
) AS h(host);

-- name: known_urls
-- The URLs not to fetch: those an article is stored under (its id), and those whose article
-- was pruned (NULL): `ingest.known_url` (sql/0023).
SELECT u.url, k.article_id
FROM unnest(%(urls)s::text[]) AS u(url)
CROSS JOIN LATERAL ingest.known_url(ingest.url_hash(u.url)) AS k;

-- name: lock_article_writes
SELECT pg_advisory_xact_lock(ingest.article_writes_lock_key());

-- name: insert_article
-- The story it copies: the original the caller found, of the earliest article with the same
-- body under another URL (exact_candidates), else of a near-duplicate; looked up once.
-- duplicate_of is that original, unless this article was published before it (then this one
-- is the story's original, and the caller re-points the story: repoint_duplicates); ties keep
-- the earlier id.
WITH story AS (
    SELECT o.id, o.published_at
    FROM ingest.articles o
    WHERE o.id = COALESCE(%(exact_of)s::bigint, %(near_duplicate_of)s::bigint))
INSERT INTO ingest.articles (
    url, original_url, feed_id, guid, site, title, text, author, authors, tags, published_at,
    published_source, modified_at, language, image_url, summary, content_hash, text_source,
    extraction_error, fetched_at, duplicate_of, minhash, lsh_bands)
VALUES (
    %(url)s, %(original_url)s, %(feed_id)s, %(guid)s, %(site)s, %(title)s, %(text)s, %(author)s,
    %(authors)s::text[], %(tags)s::text[],
    %(published_at)s, %(published_source)s, %(modified_at)s, %(language)s, %(image_url)s,
    %(summary)s, %(content_hash)s, %(text_source)s, %(extraction_error)s, %(fetched_at)s,
    (SELECT CASE WHEN s.published_at > %(published_at)s THEN NULL ELSE s.id END FROM story s),
    %(minhash)s, %(lsh_bands)s)
ON CONFLICT (url_hash) DO NOTHING
RETURNING id, duplicate_of, (SELECT id FROM story) AS story;

-- name: repoint_duplicates
-- A new article (%(new)s) stored as the original of the story it copies, because it was
-- published before that story's original (%(old)s) when it was inserted: if it still is the
-- earliest (another article of the same batch may have taken the story over meanwhile), the
-- story's original and every copy pointing at it now point at the new one; otherwise the new
-- one, and any copy of the same batch that found it as its story meanwhile, point at the
-- story's original. Re-pointed rows are announced as updates (the articles_updated trigger).
WITH story AS (
    SELECT r.id, r.published_at
    FROM ingest.articles o
    JOIN ingest.articles r ON r.id = COALESCE(o.duplicate_of, o.id)
    WHERE o.id = %(old)s
), new AS (
    SELECT n.id, s.id AS root, (n.published_at, n.id) < (s.published_at, s.id) AS earlier
    FROM ingest.articles n, story s
    WHERE n.id = %(new)s AND s.id <> n.id
), moved AS (
    UPDATE ingest.articles a SET duplicate_of = new.id
    FROM new
    WHERE new.earlier AND (a.id = new.root OR a.duplicate_of = new.root) AND a.id <> new.id
    RETURNING a.id
)
UPDATE ingest.articles a SET duplicate_of = new.root
FROM new
WHERE NOT new.earlier AND (a.id = new.id OR a.duplicate_of = new.id);

-- name: probe_band_index
-- The near-duplicate candidates are looked up by index probes for the rest of the transaction,
-- or until probe_band_index_done, whatever the planner estimates: on a new database, where
-- ingest.article_bands was analyzed empty (sql/0009) and autovacuum has not come by yet, it
-- reads the whole table for every lookup instead, and keeps that plan as the table grows: 8 ms
-- of PostgreSQL's CPU an article by 3,000 articles (bench/store_bench.py --articles 3000),
-- against 1.2 ms with the index. Every run of near_duplicate_candidates comes after it: a
-- connection's cached plan of that query is not planned again when enable_seqscan changes.
SET LOCAL enable_seqscan = off;

-- name: probe_band_index_done
-- Back to the server's default for the statements after the lookups.
SET LOCAL enable_seqscan TO DEFAULT;

-- name: near_duplicate_candidates
-- Articles sharing at least one LSH band with the new one, the 200 sharing the most (ties: the
-- earliest): one btree probe per band key (ingest.article_bands, see sql/0009), then the
-- articles by id. A copy shares many bands with its story (about 10 of 32 at similarity 0.75),
-- while a site's template (a footer, a disclaimer its extraction keeps) gives each of its
-- articles a band or two in common with hundreds of others, none a copy: the earliest 200 of
-- those would leave the story out. The ids go in as an array, so that the articles are probed
-- by primary key whatever the statistics say (a join, planned on a new database without
-- statistics, read the whole table each time).
SELECT a.id, a.minhash, a.duplicate_of, a.site, a.title
FROM ingest.articles a
WHERE a.id = ANY (ARRAY(
        SELECT article_id FROM ingest.article_bands
        WHERE band = ANY (%(bands)s::bigint[])
        GROUP BY article_id
        ORDER BY count(*) DESC, article_id
        LIMIT 200))
  AND a.url_hash <> ingest.url_hash(%(url)s)
ORDER BY a.id;

-- name: article_ids_by_url
SELECT url, id FROM ingest.articles
WHERE url_hash = ANY (ARRAY(SELECT ingest.url_hash(u) FROM unnest(%(urls)s::text[]) AS u));

-- name: link_feed_entry
-- An entry new to this feed whose article is already stored (dedup's "link"), unless that
-- article was pruned since it was looked up: the row lock waits for a prune in progress, and
-- finds nothing once it committed (the entry is then planned again at the next poll). The
-- entry's update time is recorded as an entry stored records it (add_feed_entries), so that the
-- next poll does not take the entry for an update; but no later than the stored version was
-- read (its update in place, else its fetch): an entry updated since is an update of it.
WITH live AS (
    SELECT id, COALESCE(updated_at, fetched_at) AS read_at
    FROM ingest.articles WHERE id = %(article_id)s FOR KEY SHARE)
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, entry_updated_at)
SELECT %(feed_id)s, %(entry_hash)s, id,
       CASE WHEN %(entry_updated_at)s::timestamptz IS NOT NULL
            THEN LEAST(%(entry_updated_at)s::timestamptz, read_at) END
FROM live
ON CONFLICT (feed_id, entry_hash) DO UPDATE
SET article_id = COALESCE(ingest.feed_entries.article_id, EXCLUDED.article_id),
    entry_updated_at = GREATEST(ingest.feed_entries.entry_updated_at, EXCLUDED.entry_updated_at);

-- name: add_article_urls
INSERT INTO ingest.article_urls (url_hash, article_id)
SELECT ingest.url_hash(u), %(article_id)s FROM unnest(%(urls)s::text[]) AS u
ON CONFLICT (url_hash) DO NOTHING;

-- name: adopt_articles
-- Articles stored with no feed (a backfill, or before their feed was registered) that a feed
-- turns out to list: it becomes their first feed. Not an update (0013).
UPDATE ingest.articles SET feed_id = %(feed_id)s
WHERE id = ANY (%(ids)s::bigint[]) AND feed_id IS NULL;

-- name: add_feed_entries
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, entry_updated_at)
SELECT %(feed_id)s, h, %(article_id)s, %(entry_updated_at)s
FROM unnest(%(hashes)s::bytea[]) AS h
ON CONFLICT (feed_id, entry_hash) DO UPDATE
SET article_id = COALESCE(ingest.feed_entries.article_id, EXCLUDED.article_id),
    -- Stored: the tries at its page are over; later ones count an update's (defer_updates).
    attempts = 0,
    entry_updated_at = GREATEST(ingest.feed_entries.entry_updated_at, EXCLUDED.entry_updated_at);

-- name: touch_feed_entry
-- An update recorded (its article updated, or its new version given up on): its tries at the
-- page start again from none for the next update (defer_updates).
UPDATE ingest.feed_entries
SET entry_updated_at = GREATEST(entry_updated_at, %(entry_updated_at)s), attempts = 0
WHERE feed_id = %(feed_id)s AND entry_hash = %(entry_hash)s;

-- name: stored_versions
-- The stored versions of the articles of entries %(hashes)s of feed %(feed_id)s (those with
-- one): the length in characters of the text, what an update from an entry's own text is
-- measured against (`ingest.fulltext.update_words`), and the publisher's modified time, which
-- an update no later than it cannot be newer than (`ingest.dedup.newer_than_stored`).
SELECT e.entry_hash, length(a.text) AS chars, a.modified_at
FROM ingest.feed_entries e
JOIN ingest.articles a ON a.id = e.article_id
WHERE e.feed_id = %(feed_id)s AND e.entry_hash = ANY(%(hashes)s);

-- name: article_to_update
-- An article whose page changed (ArticleStore.update_articles), locked until its update: the row
-- whose URL it is, else the one that the first of its URL forms (%(urls)s: its URL, then the
-- entry's link and where its page was fetched from) led to (article_urls): an entry of a
-- full-text feed, updated from its own text without a request, has its link for URL, while its
-- article may have been stored from its page under the address the link redirected to, and the
-- other way round. Else the article of the entry whose update it is (%(feed_id)s,
-- %(entry_hash)s): stored under a URL the canonical rules of its time wrote (a session id, a
-- host's root dot, an IPv6 spelling, since dropped or respelled), which no form of its URLs
-- today names. Nothing when the text and the title are the same (a new headline over the
-- same text is an edit; no title is no new one), nor when the stored version is as new as
-- this one by the publisher's own times (its modified time no earlier than the update's:
-- another feed listing the article reached the same edit first, from its own text or its page;
-- the publisher's clock on both sides, so no skew between ours and theirs decides it).
SELECT id
FROM ingest.articles
WHERE id = COALESCE(
          (SELECT id FROM ingest.articles WHERE url_hash = ingest.url_hash(%(url)s)),
          (SELECT au.article_id
           FROM unnest(%(urls)s::text[]) WITH ORDINALITY AS u(url, n)
           JOIN ingest.article_urls au ON au.url_hash = ingest.url_hash(u.url)
           ORDER BY u.n
           LIMIT 1),
          (SELECT e.article_id FROM ingest.feed_entries e
           WHERE e.feed_id = %(feed_id)s AND e.entry_hash = %(entry_hash)s))
  AND (content_hash <> %(content_hash)s
       OR (%(title)s::text IS NOT NULL AND title IS DISTINCT FROM %(title)s::text))
  AND (modified_at IS NULL OR %(modified_at)s::timestamptz IS NULL
       OR modified_at < %(modified_at)s::timestamptz)
FOR UPDATE;

-- name: update_article
-- The article %(id)s (article_to_update) updated in place: the stored version goes to the
-- history, and the row takes the new text with the story that text places it in
-- (%(duplicate_of)s), in one UPDATE, so that the edit is one change row. A version without a
-- title keeps the stored headline, as it keeps the byline, image and summary (no title is no
-- new one).
WITH old AS (
    SELECT id, title, text, author, content_hash, modified_at
    FROM ingest.articles
    WHERE id = %(id)s
      AND (content_hash <> %(content_hash)s
           OR (%(title)s::text IS NOT NULL AND title IS DISTINCT FROM %(title)s::text))
), kept AS (
    INSERT INTO ingest.article_history (article_id, title, text, author, content_hash, modified_at)
    SELECT id, title, text, author, content_hash, modified_at FROM old
    RETURNING article_id
)
UPDATE ingest.articles a
SET title = COALESCE(%(title)s, a.title),
    text = %(text)s,
    author = COALESCE(%(author)s, a.author),
    authors = CASE WHEN %(author)s IS NULL THEN a.authors ELSE %(authors)s::text[] END,
    tags = CASE WHEN cardinality(%(tags)s::text[]) = 0 THEN a.tags ELSE %(tags)s::text[] END,
    content_hash = %(content_hash)s,
    modified_at = COALESCE(%(modified_at)s, a.modified_at),
    language = %(language)s,
    image_url = COALESCE(%(image_url)s, a.image_url),
    summary = COALESCE(%(summary)s, a.summary),
    text_source = %(text_source)s,
    extraction_error = %(extraction_error)s,
    minhash = %(minhash)s,
    lsh_bands = %(lsh_bands)s,
    updated_at = %(fetched_at)s,
    duplicate_of = %(duplicate_of)s::bigint
FROM kept
WHERE a.id = kept.article_id
RETURNING a.id;

-- name: updated_article_story
-- An article about to be updated in place (article_to_update), and the copies pointing at it,
-- to place it again by its new text (ArticleStore.update_articles).
SELECT id, published_at, content_hash, minhash, duplicate_of, false AS copy
FROM ingest.articles WHERE id = %(id)s
UNION ALL
SELECT id, published_at, content_hash, minhash, duplicate_of, true
FROM ingest.articles WHERE duplicate_of = %(id)s;

-- name: exact_candidates
-- The articles with this body (%(content_hash)s) whose story an article of site %(site)s may
-- join, each with its story's original (root) and its title: the earliest of another site, and
-- the 200 earliest of its own, whose titles the caller weighs (`ingest.store.articles`: a
-- site's pages sharing a text and not their headline show its template, not one story). An
-- article being updated (%(id)s; NULL for a new one) and the copies pointing at it are left out.
(SELECT id, COALESCE(duplicate_of, id) AS root, site, title
 FROM ingest.articles
 WHERE content_hash = %(content_hash)s AND site <> %(site)s
   AND (%(id)s::bigint IS NULL OR (id <> %(id)s AND duplicate_of IS DISTINCT FROM %(id)s))
 ORDER BY id LIMIT 1)
UNION ALL
(SELECT id, COALESCE(duplicate_of, id), site, title
 FROM ingest.articles
 WHERE content_hash = %(content_hash)s AND site = %(site)s
   AND (%(id)s::bigint IS NULL OR (id <> %(id)s AND duplicate_of IS DISTINCT FROM %(id)s))
 ORDER BY id LIMIT 200);

-- name: story_original
SELECT id AS root, published_at FROM ingest.articles WHERE id = %(id)s;

-- name: set_duplicate_of
-- Rows %(ids)s made copies of %(original)s (NULL: originals); a row already so is not written,
-- so nothing is announced for it.
UPDATE ingest.articles SET duplicate_of = %(original)s::bigint
WHERE id = ANY (%(ids)s::bigint[]) AND duplicate_of IS DISTINCT FROM %(original)s::bigint;

-- name: take_story_over
-- The story of %(root)s (its original and every copy) made copies of %(new)s.
UPDATE ingest.articles SET duplicate_of = %(new)s
WHERE (id = %(root)s OR duplicate_of = %(root)s) AND id <> %(new)s
  AND duplicate_of IS DISTINCT FROM %(new)s;

-- name: lock_leased_feed
-- The feed %(id)s, locked until its move (or the registration of the feeds it stands for)
-- commits, if this process (%(owner)s) still holds its lease: a poll that lost it (the feed
-- paused or removed meanwhile, or taken by another process once the lease ran out) moves
-- nothing and registers nothing.
SELECT id FROM ingest.feeds WHERE id = %(id)s AND lease_owner = %(owner)s FOR UPDATE;

-- name: feed_id_by_url
-- The feed a feed moving to %(url)s would be merged into, and whether the operator paused it
-- (disable_feed: inactive and never due); locked until the move commits against a change or
-- a removal, not against the rows that refer to it: its own poll records its entries meanwhile
-- (a key share lock), whose rows the merge may wait for.
SELECT id, NOT active AND next_fetch_at >= '9999-01-01 00:00:00+00' AS paused
FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(url)s)
FOR NO KEY UPDATE;

-- name: drop_feed_headers
-- A feed's headers of the names given (%(names)s, lower case; any case of them stored), before
-- it moves to another site: the names it held.
WITH old AS (SELECT settings -> 'headers' AS headers FROM ingest.feeds WHERE id = %(id)s),
kept AS (
    SELECT jsonb_object_agg(h.key, h.value) FILTER (WHERE lower(h.key) <> ALL (%(names)s::text[]))
               AS headers,
           array_agg(h.key ORDER BY h.key) FILTER (WHERE lower(h.key) = ANY (%(names)s::text[]))
               AS dropped
    FROM old, jsonb_each(old.headers) AS h
    WHERE jsonb_typeof(old.headers) = 'object')
UPDATE ingest.feeds f
SET settings = CASE WHEN kept.headers IS NULL THEN f.settings - 'headers'
                    ELSE jsonb_set(f.settings, '{headers}', kept.headers) END
FROM kept
WHERE f.id = %(id)s AND kept.dropped IS NOT NULL
RETURNING kept.dropped;

-- name: rename_feed
UPDATE ingest.feeds SET url = %(url)s WHERE id = %(id)s;

-- name: merge_feed_entries
-- Moving feed %(from_id)s onto feed %(into_id)s, which already has the new URL: its entries
-- with all they record (their update times and tries at a failing page: without them, its done
-- entries would be taken for updated at the next poll, and its failing pages tried afresh).
-- An entry both feeds know keeps what either did: its article, its latest update time, the
-- most tries, the earlier first sighting, pruned only where neither still has its article.
INSERT INTO ingest.feed_entries AS e
    (feed_id, entry_hash, article_id, first_seen_at, pruned, entry_updated_at, attempts,
     link_hash)
SELECT %(into_id)s, entry_hash, article_id, first_seen_at, pruned, entry_updated_at, attempts,
       link_hash
FROM ingest.feed_entries WHERE feed_id = %(from_id)s
ON CONFLICT (feed_id, entry_hash) DO UPDATE
SET article_id = COALESCE(e.article_id, EXCLUDED.article_id),
    first_seen_at = LEAST(e.first_seen_at, EXCLUDED.first_seen_at),
    pruned = (e.pruned OR EXCLUDED.pruned) AND COALESCE(e.article_id, EXCLUDED.article_id) IS NULL,
    entry_updated_at = GREATEST(e.entry_updated_at, EXCLUDED.entry_updated_at),
    attempts = GREATEST(e.attempts, EXCLUDED.attempts),
    link_hash = COALESCE(e.link_hash, EXCLUDED.link_hash);

-- name: merge_feed_settings
-- Moving feed %(from_id)s onto feed %(into_id)s: the feed kept takes what the operator set on the
-- one moved and what its polls found out about its text, where it has none of its own. Its
-- settings are the moved feed's (its own, returned as they were with both feeds' tags, are put
-- back over them by set_feed_settings next: a setting or a header it sets wins); its text mode
-- where its own is auto; its full-text state (the poll's where given, as in feed_succeeded) where
-- it has no evidence of its own (its text was never compared with its pages). A feed kept that
-- is failing (given up on and probed at the slowest rate, or backing off; not paused) is due
-- at once: its URL has just answered the moved feed's poll, and its next poll ends its
-- failures (active again).
UPDATE ingest.feeds k
SET settings = f.settings,
    next_fetch_at = CASE WHEN (NOT k.active OR k.consecutive_failures > 0)
                              AND k.next_fetch_at < '9999-01-01 00:00:00+00'
                         THEN LEAST(k.next_fetch_at, now()) ELSE k.next_fetch_at END,
    text_mode = CASE WHEN k.text_mode = 'auto' THEN f.text_mode ELSE k.text_mode END,
    full_text = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text)s, f.full_text) ELSE k.full_text END,
    full_text_streak = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text_streak)s, f.full_text_streak) ELSE k.full_text_streak END,
    full_text_since_check = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text_since_check)s, f.full_text_since_check)
        ELSE k.full_text_since_check END,
    full_text_words = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text_words)s, f.full_text_words) ELSE k.full_text_words END,
    full_text_cap_words = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text_cap_words)s, f.full_text_cap_words)
        ELSE k.full_text_cap_words END,
    full_text_cap_chars = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text_cap_chars)s, f.full_text_cap_chars)
        ELSE k.full_text_cap_chars END,
    full_text_templates = CASE WHEN k.full_text_evidence IS NULL
        THEN COALESCE(%(full_text_templates)s::bytea[], f.full_text_templates)
        ELSE k.full_text_templates END,
    full_text_evidence = COALESCE(k.full_text_evidence, %(full_text_evidence)s,
                                  f.full_text_evidence)
FROM ingest.feeds f, ingest.feeds o
WHERE k.id = %(into_id)s AND f.id = %(from_id)s AND o.id = k.id
RETURNING k.url, o.settings, o.tags, f.tags AS moved_tags;

-- name: merge_feed_articles
UPDATE ingest.articles SET feed_id = %(into_id)s WHERE feed_id = %(from_id)s;

-- name: delete_feed
DELETE FROM ingest.feeds WHERE id = %(id)s;

-- name: database_now
SELECT now();

-- name: schedule_lag
-- Feeds past due (and not being worked on), counted up to %(cap)s, and how late the most
-- overdue one is: both read the due index from its start and stop early, so a tick costs the
-- same with a backlog of a million feeds as with none.
SELECT (SELECT count(*) FROM (
            SELECT 1 FROM ingest.feeds
            WHERE next_fetch_at < now() - make_interval(secs => %(grace_seconds)s)
              AND (lease_expires_at IS NULL OR lease_expires_at < now())
            LIMIT %(cap)s) AS overdue_feeds) AS overdue,
       COALESCE(EXTRACT(epoch FROM now() - (
            SELECT next_fetch_at FROM ingest.feeds
            WHERE next_fetch_at < now() - make_interval(secs => %(grace_seconds)s)
              AND (lease_expires_at IS NULL OR lease_expires_at < now())
            ORDER BY next_fetch_at LIMIT 1)), 0)::float8 AS max_lag_seconds;

-- backfill ---------------------------------------------------------------------------------------
-- `ingest backfill` and site discovery, run by ingest/store/backfill.py. A run's checkpoint is
-- its rows in ingest.backfill_runs / backfill_sources / backfill_urls (sql/0005_backfill.sql).

-- name: backfill_open_run
-- Get or create the run with this identity.
INSERT INTO ingest.backfill_runs (run_key, target, since, until, options)
VALUES (%(run_key)s, %(target)s, %(since)s, %(until)s, %(options)s)
ON CONFLICT (run_key) DO UPDATE SET updated_at = now()
RETURNING id, target, since, until, feed_id, seeded, discovered, started_at, finished_at,
          site_url;

-- name: backfill_try_lock
-- Session-level: held while the run is being worked on, released when the connection goes
-- (a killed process included), so one run is never worked on by two processes at once.
SELECT pg_try_advisory_lock(%(lock_class)s::integer, %(run_id)s::integer) AS locked;

-- name: backfill_holds_lock
-- Whether this session still holds the run's lock (checked while the run goes on).
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
      AND classid = %(lock_class)s::integer::oid AND objid = %(run_id)s::integer::oid
      AND objsubid = 2) AS held;

-- name: backfill_unlock
SELECT pg_advisory_unlock(%(lock_class)s::integer, %(run_id)s::integer);

-- name: backfill_clear_sources
DELETE FROM ingest.backfill_sources WHERE run_id = %(run_id)s;

-- name: backfill_clear_urls
DELETE FROM ingest.backfill_urls WHERE run_id = %(run_id)s;

-- name: backfill_reset_run
UPDATE ingest.backfill_runs
SET seeded = false, discovered = false, feed_id = NULL, finished_at = NULL,
    other_sites = 0, beyond_sitemaps = 0, before_since = 0, started_at = now(),
    updated_at = now()
WHERE id = %(run_id)s;

-- name: backfill_set_seeded
-- %(beyond_sitemaps)s: the sitemaps TARGET's robots.txt named beyond --max-sitemaps.
UPDATE ingest.backfill_runs
SET seeded = true, feed_id = %(feed_id)s, site_url = %(site_url)s,
    beyond_sitemaps = beyond_sitemaps + %(beyond_sitemaps)s, updated_at = now()
WHERE id = %(run_id)s;

-- name: backfill_add_sources
-- A source already in the run keeps its first record, but for a later lastmod given by another
-- index while it waits to be walked: a stale index does not get it skipped (`--limit`). Each
-- URL once (its latest lastmod), as a row cannot be updated twice by one statement. A lastmod
-- of a year or a month alone (`2024-05`) is as late as its last moment, `lastmod_until`
-- (sql/0044).
INSERT INTO ingest.backfill_sources (run_id, url, kind, depth, lastmod, lastmod_until)
SELECT %(run_id)s, s.url, s.kind, %(depth)s, s.lastmod, s.lastmod_until
FROM (
    SELECT DISTINCT ON (u.url) u.url, u.kind, u.lastmod, u.lastmod_until, u.n
    FROM unnest(%(urls)s::text[], %(kinds)s::text[], %(lastmods)s::timestamptz[],
                %(lastmod_untils)s::timestamptz[])
        WITH ORDINALITY AS u(url, kind, lastmod, lastmod_until, n)
    ORDER BY u.url, COALESCE(u.lastmod_until, u.lastmod) DESC NULLS LAST, u.n) s
ORDER BY s.n
ON CONFLICT (run_id, url_hash) DO UPDATE
    SET lastmod = EXCLUDED.lastmod, lastmod_until = EXCLUDED.lastmod_until, updated_at = now()
    WHERE ingest.backfill_sources.state = 'pending'
      AND COALESCE(EXCLUDED.lastmod_until, EXCLUDED.lastmod)
          > COALESCE(ingest.backfill_sources.lastmod_until, ingest.backfill_sources.lastmod)
RETURNING url;

-- name: backfill_pending_sources
SELECT url, kind, depth, lastmod, lastmod_until FROM ingest.backfill_sources
WHERE run_id = %(run_id)s AND state = 'pending'
ORDER BY seq
LIMIT %(limit)s;

-- name: backfill_lock_walk
-- Taken first by the transaction that records a walked source: the sources walked at once
-- record their URLs (and sitemaps) one after the other, since two statements inserting the
-- same rows in different orders (two sitemaps listing a site's URLs, one oldest first) would
-- each wait for a row the other holds: a deadlock, which PostgreSQL breaks by failing one.
SELECT 1 FROM ingest.backfill_runs WHERE id = %(run_id)s FOR NO KEY UPDATE;

-- name: backfill_source_finished
UPDATE ingest.backfill_sources
SET state = %(state)s, found = %(found)s, error = %(error)s, retryable = %(retryable)s,
    updated_at = now()
WHERE run_id = %(run_id)s AND url_hash = ingest.url_hash(%(url)s);

-- name: backfill_count_skips
-- What a walked source skipped without a row of its own (sql/0039, sql/0041), in its
-- transaction.
UPDATE ingest.backfill_runs
SET other_sites = other_sites + %(other_sites)s,
    beyond_sitemaps = beyond_sitemaps + %(beyond_sitemaps)s,
    before_since = before_since + %(before_since)s, updated_at = now()
WHERE id = %(run_id)s;

-- name: backfill_retry_sources
-- Sources that failed for a passing reason are walked again by a new invocation of the run.
UPDATE ingest.backfill_sources
SET state = 'pending', retryable = false, error = NULL, updated_at = now()
WHERE run_id = %(run_id)s AND state = 'failed' AND retryable
RETURNING url;

-- name: backfill_reopen_discovery
UPDATE ingest.backfill_runs SET discovered = false, finished_at = NULL, updated_at = now()
WHERE id = %(run_id)s;

-- name: backfill_add_urls
-- URLs already in the run (from another source) keep their first record, but for one that says
-- less about its article than this source, and is not fetched yet (pending, or skipped by its
-- date alone): a plain sitemap's (a lastmod, a modification time) gives way to a news
-- sitemap's or a feed entry's (title and publication date), a news sitemap's to a feed
-- entry's (its text too), whichever source the walk reached first; a listed URL keeps its
-- record. Each URL once (its first), as a row cannot be updated twice by one statement.
-- `inserted`: new to the run, not a record replaced.
INSERT INTO ingest.backfill_urls AS b
    (run_id, url, source, entry, entry_hash, dated_at, state, reason)
SELECT %(run_id)s, u.url, %(source)s, COALESCE(u.entry::jsonb, '{}'), u.entry_hash, u.dated_at,
       u.state, u.reason
FROM (
    SELECT DISTINCT ON (x.url) x.*
    FROM unnest(%(urls)s::text[], %(entries)s::text[], %(entry_hashes)s::bytea[],
                %(dates)s::timestamptz[], %(states)s::text[], %(reasons)s::text[])
         WITH ORDINALITY AS x(url, entry, entry_hash, dated_at, state, reason, n)
    ORDER BY x.url, x.n) u
ORDER BY u.n
ON CONFLICT (run_id, url_hash) DO UPDATE
SET source = EXCLUDED.source, entry = EXCLUDED.entry, entry_hash = EXCLUDED.entry_hash,
    dated_at = EXCLUDED.dated_at, state = EXCLUDED.state, reason = EXCLUDED.reason,
    rank = CASE WHEN EXCLUDED.state = 'pending' THEN b.rank END, updated_at = now()
WHERE b.attempts = 0
  AND (b.state = 'pending' OR (b.state = 'skipped' AND b.reason IN ('range', 'undated')))
  AND CASE EXCLUDED.source
          WHEN 'feed' THEN 2
          WHEN 'sitemap' THEN (EXCLUDED.entry ?| array['title', 'published_at'])::int
          ELSE 0 END
    > CASE b.source
          WHEN 'feed' THEN 2
          WHEN 'sitemap' THEN (b.entry ?| array['title', 'published_at'])::int
          ELSE 3 END
RETURNING url, state, xmax = 0 AS inserted;

-- name: backfill_skip_known
-- URLs whose article is already stored (by the service, or an earlier backfill) are not fetched,
-- nor those whose article was pruned (`ingest.known_url`, sql/0023).
UPDATE ingest.backfill_urls u
SET state = 'skipped', rank = NULL, updated_at = now(),
    reason = CASE WHEN (SELECT k.article_id FROM ingest.known_url(u.url_hash) AS k) IS NULL
                  THEN 'pruned' ELSE 'known' END
WHERE u.run_id = %(run_id)s AND u.state = 'pending'
  AND EXISTS (SELECT 1 FROM ingest.known_url(u.url_hash));

-- name: backfill_unskip_limit
-- Discovery completed again (sources walked again by a later invocation): the URLs beyond the
-- limit compete again with those found since.
UPDATE ingest.backfill_urls
SET state = 'pending', reason = NULL, updated_at = now()
WHERE run_id = %(run_id)s AND state = 'skipped' AND reason = 'limit';

-- name: backfill_rank
-- The fetch order, newest first (undated last) then discovery order, after the URLs ranked by
-- an earlier discovery of the run; beyond %(limit)s, counting the URLs an earlier discovery
-- took (fetched, or to be tried again), skipped. `earlier` is counted once, MATERIALIZED: the
-- walk has just filled the table, of which PostgreSQL has no statistics yet, and with the
-- URLs to rank taken for one row it counted the run's URLs again for every URL ranked (20,000
-- URLs: 228 s; 80,000: about an hour).
WITH earlier AS MATERIALIZED (
    SELECT COALESCE(max(rank), 0) AS last,
           count(*) FILTER (WHERE rank IS NOT NULL) AS taken
    FROM ingest.backfill_urls
    WHERE run_id = %(run_id)s AND state <> 'pending'),
ranked AS (
    SELECT url_hash, row_number() OVER (ORDER BY dated_at DESC NULLS LAST, seq) AS n
    FROM ingest.backfill_urls
    WHERE run_id = %(run_id)s AND state = 'pending')
UPDATE ingest.backfill_urls u
SET rank = e.last + r.n,
    state = CASE WHEN e.taken + r.n > %(limit)s THEN 'skipped' ELSE 'pending' END,
    reason = CASE WHEN e.taken + r.n > %(limit)s THEN 'limit' END,
    updated_at = now()
FROM ranked r, earlier e
WHERE u.run_id = %(run_id)s AND u.url_hash = r.url_hash;

-- name: backfill_set_discovered
UPDATE ingest.backfill_runs SET discovered = true, updated_at = now() WHERE id = %(run_id)s;

-- name: backfill_next_urls
-- With %(failed)s (a dry run), the pages failed for a passing reason too, which the next run
-- that is not one tries again (backfill_retry_urls).
SELECT url, source, entry, entry_hash, attempts, rank FROM ingest.backfill_urls
WHERE run_id = %(run_id)s AND state = 'pending' AND rank > %(after)s
UNION ALL
SELECT url, source, entry, entry_hash, attempts, rank FROM ingest.backfill_urls
WHERE %(failed)s AND run_id = %(run_id)s AND state = 'failed' AND retryable
  AND rank > %(after)s
ORDER BY rank
LIMIT %(limit)s;

-- name: backfill_url_finished
UPDATE ingest.backfill_urls
SET state = %(state)s, reason = %(reason)s, error = %(error)s, retryable = %(retryable)s,
    attempts = attempts + %(attempted)s, updated_at = now()
WHERE run_id = %(run_id)s AND url_hash = ingest.url_hash(%(url)s);

-- name: backfill_retry_urls
-- Pages that failed for a passing reason go back in line, up to %(max_attempts)s tries; with
-- %(fresh)s (a new invocation of the run) whatever their tries so far, which start again.
UPDATE ingest.backfill_urls
SET state = 'pending', retryable = false, updated_at = now(),
    attempts = CASE WHEN %(fresh)s THEN 0 ELSE attempts END
WHERE run_id = %(run_id)s AND state = 'failed' AND retryable
  AND (%(fresh)s OR attempts < %(max_attempts)s)
RETURNING url;

-- name: backfill_to_link
-- A registered feed's entries whose article a dry run found already stored, and did not link
-- (a dry run stores nothing but its walk): the next invocation that is not one links them, with
-- what the entry said (its update time among it).
SELECT url, entry_hash, entry FROM ingest.backfill_urls
WHERE run_id = %(run_id)s AND state = 'skipped' AND reason = 'to_link'
  AND entry_hash IS NOT NULL;

-- name: backfill_linked
UPDATE ingest.backfill_urls SET reason = 'known', updated_at = now()
WHERE run_id = %(run_id)s AND state = 'skipped' AND reason = 'to_link';

-- name: backfill_url_counts
SELECT state, COALESCE(reason, '') AS reason, count(*) AS n
FROM ingest.backfill_urls
WHERE run_id = %(run_id)s
GROUP BY 1, 2;

-- name: backfill_sitemap_count
SELECT count(*) AS n
FROM ingest.backfill_sources
WHERE run_id = %(run_id)s AND kind = 'sitemap';

-- name: backfill_recorded_sources
-- Those of %(urls)s that are sources of the run already (an index listing a sitemap another
-- index of the run listed, or the index that listed it), by the key they are recorded under.
SELECT s.url FROM ingest.backfill_sources s
WHERE s.run_id = %(run_id)s
  AND s.url_hash IN (SELECT ingest.url_hash(u) FROM unnest(%(urls)s::text[]) AS u);

-- name: backfill_run_skips
SELECT other_sites, beyond_sitemaps, before_since FROM ingest.backfill_runs
WHERE id = %(run_id)s;

-- name: backfill_source_counts
SELECT kind, state, count(*) AS n
FROM ingest.backfill_sources
WHERE run_id = %(run_id)s
GROUP BY 1, 2;

-- name: backfill_failures
-- What the summary names as failed: the run's sources first (a feed or sitemap whose URLs the
-- run lacks for it), then its pages in fetch order.
SELECT url, error FROM (
    SELECT url, error, 0 AS part, NULL::integer AS rank, seq FROM ingest.backfill_sources
    WHERE run_id = %(run_id)s AND state = 'failed'
    UNION ALL
    SELECT url, error, 1, rank, seq FROM ingest.backfill_urls
    WHERE run_id = %(run_id)s AND state = 'failed'
) f
ORDER BY part, rank NULLS LAST, seq
LIMIT %(limit)s;

-- name: backfill_finish_run
UPDATE ingest.backfill_runs SET finished_at = now(), updated_at = now() WHERE id = %(run_id)s;

-- name: feed_exists
SELECT 1 FROM ingest.feeds WHERE id = %(id)s;

-- name: feed_url_by_id
-- The URL, as registered, of the feed the operator named by its id (`ingest feeds list`).
SELECT url FROM ingest.feeds WHERE id = %(id)s;

-- name: feed_by_url
SELECT id, kind, settings, text_mode, full_text, full_text_streak, full_text_since_check,
       full_text_words, full_text_evidence, full_text_cap_words, full_text_cap_chars,
       full_text_templates, site_url
FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(url)s);

-- retention --------------------------------------------------------------------------------------
-- `ingest prune` (old articles and everything that hangs off them) and the service's daily trim
-- of the change feed and the history, run by ingest/store/retention.py, in short batches.

-- name: retention_cutoff
-- The database's clock, so that every replica and the command agree on what "older" means.
SELECT now() - make_interval(secs => %(seconds)s) AS cutoff;

-- name: prune_counts
-- What a prune with this cutoff would remove: the articles, the rows that go with them, and
-- the copies outliving their original that would be re-pointed.
WITH old AS MATERIALIZED (
    SELECT id FROM ingest.articles WHERE published_at < %(cutoff)s)
SELECT (SELECT count(*) FROM old) AS articles,
       (SELECT count(*) FROM old JOIN ingest.article_urls u ON u.article_id = old.id) AS urls,
       (SELECT count(*) FROM old JOIN ingest.feed_entries e ON e.article_id = old.id) AS entries,
       (SELECT count(*) FROM old JOIN ingest.article_bands b ON b.article_id = old.id) AS bands,
       (SELECT count(*) FROM old JOIN ingest.article_history h ON h.article_id = old.id)
           AS history,
       (SELECT count(*) FROM old JOIN ingest.article_changes c ON c.article_id = old.id)
           AS changes,
       (SELECT count(*) FROM old JOIN ingest.articles a ON a.duplicate_of = old.id
        WHERE a.published_at >= %(cutoff)s) AS repointed;

-- name: prune_batch
-- The next batch: at most %(limit)s articles removed and copies re-pointed together, however
-- many copies a story has. Of the oldest %(limit)s articles published before the cutoff (index
-- articles_published_at_idx), first the copies of them published before it too, %(limit)s at
-- a time and alone (nothing points at a copy): a copy is never re-pointed at another copy
-- that a later batch removes. Once none is left, the oldest of them, each weighing itself and
-- the copies outliving it that `prune_repoint_copies` re-points, as many as %(limit)s holds
-- (always the first: a story of more copies than that is re-pointed in one transaction, the
-- only way it stays one story with one original at every commit).
WITH oldest AS MATERIALIZED (
    SELECT id, published_at FROM ingest.articles
    WHERE published_at < %(cutoff)s
    ORDER BY published_at
    LIMIT %(limit)s),
old_copies AS MATERIALIZED (
    SELECT c.id FROM oldest JOIN ingest.articles c ON c.duplicate_of = oldest.id
    WHERE c.published_at < %(cutoff)s
    LIMIT %(limit)s),
weighed AS (
    SELECT o.id,
           row_number() OVER w AS n,
           sum(1 + (SELECT count(*) FROM ingest.articles c WHERE c.duplicate_of = o.id))
               OVER w AS work
    FROM oldest o
    WHERE NOT EXISTS (SELECT 1 FROM old_copies)
    WINDOW w AS (ORDER BY o.published_at, o.id))
SELECT id FROM old_copies
UNION ALL
SELECT id FROM weighed WHERE n = 1 OR work <= %(limit)s;

-- name: prune_repoint_copies
-- Copies that outlive their original stay one story: the earliest published of them (ties: the
-- lowest id) becomes its original (duplicate_of NULL) and the others point at it, the original
-- the story would have had without the pruned one. Each is announced as an update (the change
-- trigger).
WITH heirs AS (
    SELECT DISTINCT ON (duplicate_of) duplicate_of AS pruned, id AS heir
    FROM ingest.articles
    WHERE duplicate_of = ANY (%(ids)s::bigint[]) AND NOT (id = ANY (%(ids)s::bigint[]))
    ORDER BY duplicate_of, published_at, id)
UPDATE ingest.articles a
SET duplicate_of = NULLIF(h.heir, a.id)
FROM heirs h
WHERE a.duplicate_of = h.pruned AND NOT (a.id = ANY (%(ids)s::bigint[]));

-- name: prune_entries
-- The pruned articles' feed entries stay known to their feeds (sql/0017), unlinked.
UPDATE ingest.feed_entries SET article_id = NULL, pruned = true
WHERE article_id = ANY (%(ids)s::bigint[]);

-- name: prune_urls
-- The pruned articles' URL forms stay known (sql/0023), so that no backfill or other feed
-- stores them again.
INSERT INTO ingest.pruned_urls (url_hash)
SELECT url_hash FROM ingest.article_urls WHERE article_id = ANY (%(ids)s::bigint[])
ON CONFLICT (url_hash) DO UPDATE SET pruned_at = now();

-- name: trim_pruned_urls
-- The oldest %(limit)s URL forms of articles pruned before the cutoff (`--forget-pruned-after`):
-- a backfill or a feed new to such an article may store it again (a later prune removes it
-- again, as it would any article that old).
DELETE FROM ingest.pruned_urls
WHERE url_hash IN (
    SELECT url_hash FROM ingest.pruned_urls
    WHERE pruned_at < %(cutoff)s
    ORDER BY pruned_at
    LIMIT %(limit)s);

-- name: prune_changes
-- Change rows name articles without a foreign key: those of pruned articles go with them.
DELETE FROM ingest.article_changes WHERE article_id = ANY (%(ids)s::bigint[]);

-- name: prune_articles
-- URL forms and earlier versions go by ON DELETE CASCADE, band rows by the trigger
-- articles_bands_forget (sql/0001, 0007, 0009).
DELETE FROM ingest.articles WHERE id = ANY (%(ids)s::bigint[]);

-- name: trim_changes
-- The oldest %(limit)s change rows written before the cutoff, stopping at the first one written
-- since: seq follows write order (give or take transactions that started together), so the
-- trim reads the primary key from its start and needs no index on changed_at.
WITH oldest AS MATERIALIZED (
    SELECT seq, changed_at FROM ingest.article_changes ORDER BY seq LIMIT %(limit)s)
DELETE FROM ingest.article_changes c
USING oldest o
WHERE c.seq = o.seq
  AND o.seq < ALL (SELECT seq FROM oldest WHERE changed_at >= %(cutoff)s);

-- name: trim_history
-- The same for earlier versions of articles, by replaced_at in id order.
WITH oldest AS MATERIALIZED (
    SELECT id, replaced_at FROM ingest.article_history ORDER BY id LIMIT %(limit)s)
DELETE FROM ingest.article_history h
USING oldest o
WHERE h.id = o.id
  AND o.id < ALL (SELECT id FROM oldest WHERE replaced_at >= %(cutoff)s);
