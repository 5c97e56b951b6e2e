-- Named queries run by ingest/store.py. Each starts with "-- name: <name>"; parameters are
-- psycopg named placeholders, always bound, never formatted into the text.

-- name: add_feed
INSERT INTO ingest.feeds (url, title)
VALUES (%(url)s, %(title)s)
ON CONFLICT (url_hash) DO NOTHING
RETURNING id;

-- name: list_feeds
SELECT id, url, title, active, last_status, last_error, consecutive_failures,
       last_fetched_at, next_fetch_at
FROM ingest.feeds
ORDER BY id;

-- name: remove_feed
DELETE FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(url)s) RETURNING id;

-- name: claim_feeds
-- Due feeds (inactive ones are due at the slowest rate), plus every active feed when %(all)s,
-- not leased by anyone else; SKIP LOCKED lets replicas claim disjoint sets concurrently.
UPDATE ingest.feeds f
SET lease_owner = %(owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE f.id IN (
    SELECT id FROM ingest.feeds
    WHERE (next_fetch_at <= now() OR (%(all)s AND active))
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
      AND NOT (id = ANY(%(exclude)s))
    ORDER BY next_fetch_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING f.id, f.url, f.title, f.etag, f.last_modified, f.body_hash,
          f.consecutive_failures, f.active, f.publish_interval, f.feed_hint, f.failing_since,
          f.redirect_to, f.redirect_seen, f.redirect_since, f.kind;

-- name: feed_succeeded
UPDATE ingest.feeds
SET last_fetched_at = %(now)s,
    next_fetch_at = %(next_fetch_at)s,
    last_status = %(status)s,
    last_error = NULL,
    consecutive_failures = 0,
    etag = %(etag)s,
    last_modified = %(last_modified)s,
    body_hash = CASE WHEN %(keep_body_hash)s THEN COALESCE(%(body_hash)s, body_hash) END,
    title = COALESCE(%(title)s, title),
    site_url = COALESCE(%(site_url)s, site_url),
    publish_interval = COALESCE(%(publish_interval)s, publish_interval),
    feed_hint = CASE WHEN %(parsed)s THEN %(feed_hint)s ELSE feed_hint END,
    active = true,
    inactive_reason = NULL,
    failing_since = NULL,
    redirect_to = %(redirect_to)s,
    redirect_seen = %(redirect_seen)s,
    redirect_since = %(redirect_since)s,
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s;

-- name: feed_failed
UPDATE ingest.feeds
SET last_fetched_at = %(now)s,
    next_fetch_at = %(next_fetch_at)s,
    last_status = 'error',
    last_error = %(error)s,
    consecutive_failures = consecutive_failures + 1,
    failing_since = COALESCE(failing_since, %(now)s),
    active = active AND NOT %(deactivate)s,
    inactive_reason = CASE WHEN %(deactivate)s THEN %(inactive_reason)s ELSE inactive_reason END,
    redirect_to = NULL,
    redirect_seen = 0,
    redirect_since = NULL,
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s;

-- name: release_leases
UPDATE ingest.feeds SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = %(owner)s AND id = ANY(%(ids)s);

-- name: known_entries
-- done: the entry has its article; otherwise it is waiting for another try at its page.
SELECT entry_hash, article_id IS NOT NULL AS done, attempts FROM ingest.feed_entries
WHERE feed_id = %(feed_id)s AND entry_hash = ANY(%(hashes)s);

-- name: defer_entries
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, attempts)
SELECT %(feed_id)s, h, NULL, 1 FROM unnest(%(hashes)s::bytea[]) AS h
ON CONFLICT (feed_id, entry_hash) DO UPDATE
SET attempts = ingest.feed_entries.attempts + 1
WHERE ingest.feed_entries.article_id IS NULL;

-- name: renew_leases
UPDATE ingest.feeds
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE lease_owner = %(owner)s AND id = ANY(%(ids)s);

-- name: known_urls
SELECT u.url, au.article_id
FROM unnest(%(urls)s::text[]) AS u(url)
JOIN ingest.article_urls au ON au.url_hash = ingest.url_hash(u.url);

-- name: lock_article_writes
SELECT pg_advisory_xact_lock(1852143205);

-- name: insert_article
-- duplicate_of: the original of the earliest article with the same body under another URL (an
-- empty body is nobody's duplicate), else the near-duplicate original the caller found.
INSERT INTO ingest.articles (
    url, original_url, feed_id, guid, site, title, text, author, published_at,
    published_source, modified_at, language, image_url, summary, content_hash, text_source,
    extraction_error, fetched_at, duplicate_of, minhash, lsh_bands)
VALUES (
    %(url)s, %(original_url)s, %(feed_id)s, %(guid)s, %(site)s, %(title)s, %(text)s, %(author)s,
    %(published_at)s, %(published_source)s, %(modified_at)s, %(language)s, %(image_url)s,
    %(summary)s, %(content_hash)s, %(text_source)s, %(extraction_error)s, %(fetched_at)s,
    COALESCE(
        CASE WHEN %(text)s <> '' THEN
            (SELECT COALESCE(duplicate_of, id) FROM ingest.articles
             WHERE content_hash = %(content_hash)s ORDER BY id LIMIT 1)
        END,
        %(near_duplicate_of)s),
    %(minhash)s, %(lsh_bands)s)
ON CONFLICT (url_hash) DO NOTHING
RETURNING id, duplicate_of;

-- name: near_duplicate_candidates
-- Articles sharing at least one LSH band with the new one (GIN index on lsh_bands).
SELECT id, minhash, duplicate_of FROM ingest.articles
WHERE lsh_bands && %(bands)s AND url_hash <> ingest.url_hash(%(url)s)
ORDER BY id
LIMIT 200;

-- name: article_id_by_url
SELECT id FROM ingest.articles WHERE url_hash = ingest.url_hash(%(url)s);

-- name: add_article_urls
INSERT INTO ingest.article_urls (url_hash, article_id)
SELECT ingest.url_hash(u), %(article_id)s FROM unnest(%(urls)s::text[]) AS u
ON CONFLICT (url_hash) DO NOTHING;

-- name: add_feed_entries
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id)
SELECT %(feed_id)s, h, %(article_id)s FROM unnest(%(hashes)s::bytea[]) AS h
ON CONFLICT (feed_id, entry_hash) DO UPDATE
SET article_id = EXCLUDED.article_id
WHERE ingest.feed_entries.article_id IS NULL;

-- name: feed_id_by_url
SELECT id FROM ingest.feeds WHERE url_hash = ingest.url_hash(%(url)s);

-- name: rename_feed
UPDATE ingest.feeds SET url = %(url)s WHERE id = %(id)s;

-- name: merge_feed_entries
-- Moving feed %(from_id)s onto feed %(into_id)s, which already has the new URL.
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, first_seen_at)
SELECT %(into_id)s, entry_hash, article_id, first_seen_at
FROM ingest.feed_entries WHERE feed_id = %(from_id)s
ON CONFLICT (feed_id, entry_hash) DO NOTHING;

-- name: merge_feed_articles
UPDATE ingest.articles SET feed_id = %(into_id)s WHERE feed_id = %(from_id)s;

-- name: delete_feed
DELETE FROM ingest.feeds WHERE id = %(id)s;

-- name: schedule_lag
-- Feeds past due (and not being worked on) and how late the most overdue one is.
SELECT count(*) AS overdue,
       COALESCE(EXTRACT(epoch FROM now() - min(next_fetch_at)), 0)::float8 AS max_lag_seconds
FROM ingest.feeds
WHERE next_fetch_at < now() - make_interval(secs => %(grace_seconds)s)
  AND (lease_expires_at IS NULL OR lease_expires_at < now());
