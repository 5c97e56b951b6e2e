-- A feed's last error and inactive reason, and an article's extraction error, may quote a URL
-- (a redirect target, a failing URL) with its user-info or a credential query parameter
-- (`redirect to https://reader:pw@host/p?token=...`): news.feeds and news.articles showed it to
-- news_reader. The service stores these texts redacted now (ingest.normalize.redact_text); the
-- views show every row so, those stored before included, by the rule feed URLs follow (0028).

-- The text with each `scheme://` URL's user-info left out, and the value of each parameter named
-- as a credential (as in ingest.redacted_url) after a `?`, `&` or `;` replaced by `***`; a URL
-- ends at whitespace, a quote, `<`, `>` or a backslash, a value at a closing parenthesis too.
-- Keep in step with ingest.normalize.redact_text (the tests compare the two on the same texts).
CREATE FUNCTION ingest.redacted_text(message text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(
        regexp_replace(message, '([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s"''<>\\]*@', '\1', 'g'),
        '([?&;][^=&;#?\s"''<>\\/]*(token|key|secret|sig|signature|password|passwd|pwd|auth|credential)s?=)[^&;#\s"''<>\\)]*',
        '\1***',
        'gi');

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
       ingest.redacted_text(a.extraction_error) AS extraction_error,
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
       f.settings - 'headers' AS settings
FROM ingest.feeds f;
