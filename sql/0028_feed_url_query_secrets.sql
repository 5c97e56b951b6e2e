-- A feed URL may carry a credential in its query string (`?token=...`, `&api_key=...`,
-- `?sig=...`: a private feed's access token, a signed URL). The logs show such a value as `***`
-- (ingest.normalize.redact_url, ingest.logs); news.feeds.url, news.articles.feed_url and
-- news.article_feeds.feed_url showed it to news_reader. They show it as the logs do now, by
-- the same rule, with the user-info left out as before (0026); ingest.feeds keeps the URL as
-- registered.

-- The URL as the logs show it: without its user-info (ingest.without_userinfo), and with the
-- value of each query parameter whose name ends with token, key, secret, sig, signature,
-- password, passwd, pwd, auth or credential (case ignored, a plural `s` allowed) replaced by
-- `***`. The query is what lies between the first `?` and the first `#` after it; parameters
-- are separated by `&` or `;`. Keep in step with ingest.normalize.CREDENTIAL_PARAMETER_NAMES (the
-- tests compare the two on the same URLs).
CREATE FUNCTION ingest.redacted_url(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN coalesce(
        (SELECT parts[1] || '?'
                || regexp_replace(
                       parts[2],
                       '(^|[&;])([^=&;#]*(token|key|secret|sig|signature|password|passwd|pwd|auth|credential)s?)=[^&;#]*',
                       '\1\2=***',
                       'gi')
                || parts[3]
         FROM regexp_match(ingest.without_userinfo(url), '^([^?#]*)\?([^#]*)(.*)$') AS m (parts)),
        ingest.without_userinfo(url));

CREATE OR REPLACE VIEW news.articles AS
SELECT a.id,
       a.url,
       a.title,
       a.text,
       a.author,
       a.published_at,
       a.published_source,
       a.modified_at,
       a.language,
       a.fetched_at,
       a.duplicate_of,
       a.original_url,
       a.site,
       a.feed_id,
       ingest.redacted_url(f.url) AS feed_url,
       a.image_url,
       a.summary,
       encode(a.content_hash, 'hex') AS content_hash,
       a.text_source,
       a.extraction_error,
       a.guid,
       a.updated_at,
       a.authors,
       a.tags
FROM ingest.articles a
LEFT JOIN ingest.feeds f ON f.id = a.feed_id;

CREATE OR REPLACE VIEW news.feeds AS
SELECT f.id,
       ingest.redacted_url(f.url) AS url,
       f.title,
       f.site_url,
       f.active,
       f.added_at,
       f.last_fetched_at,
       f.next_fetch_at,
       f.last_status,
       f.last_error,
       f.consecutive_failures,
       f.inactive_reason,
       f.failing_since,
       f.publish_interval,
       f.kind,
       f.text_mode,
       f.full_text,
       f.full_text_evidence,
       f.tags,
       f.settings - 'headers' AS settings
FROM ingest.feeds f;

CREATE OR REPLACE VIEW news.article_feeds AS
SELECT e.article_id,
       e.feed_id,
       ingest.redacted_url(f.url) AS feed_url,
       min(e.first_seen_at) AS first_seen_at
FROM ingest.feed_entries e
JOIN ingest.feeds f ON f.id = e.feed_id
WHERE e.article_id IS NOT NULL
GROUP BY e.article_id, e.feed_id, f.url;
