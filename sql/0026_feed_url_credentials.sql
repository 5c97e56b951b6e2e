-- A feed URL may carry a credential as its user-info (`https://TOKEN@host/feed`,
-- `https://user:password@host/feed`: the fetcher sends it as Basic authentication). The logs
-- never name it (ingest.normalize.redact_url), and news.feeds leaves out the extra request
-- headers for the same reason (0016), but news.feeds.url, news.articles.feed_url and
-- news.article_feeds.feed_url showed it to news_reader. They show the URL without it now; the
-- views keep their columns, and ingest.feeds keeps the URL as registered.

-- The URL without its user-info: everything between `scheme://` and the last `@` before the
-- path, query or fragment, as redact_url reads it; a URL without one is returned as it is.
CREATE FUNCTION ingest.without_userinfo(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@', '\1');

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
       ingest.without_userinfo(f.url) AS feed_url,
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
       ingest.without_userinfo(f.url) AS url,
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
       ingest.without_userinfo(f.url) AS feed_url,
       min(e.first_seen_at) AS first_seen_at
FROM ingest.feed_entries e
JOIN ingest.feeds f ON f.id = e.feed_id
WHERE e.article_id IS NOT NULL
GROUP BY e.article_id, e.feed_id, f.url;
