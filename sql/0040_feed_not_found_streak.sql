-- The 404s a feed answered in a row, and when the first of them came: a feed that has answered
-- before is given up on as gone after a streak of 404s of its own (ingest/schedule.py,
-- decide_feed_failure), not after hours of 503s or timeouts that one 404 happens to end. Any
-- other failure, a success and `ingest feeds enable` end the streak. A feed failing when this
-- is applied starts with none: its next 404 is the first counted. Shown in news.feeds beside
-- consecutive_failures and failing_since.

ALTER TABLE ingest.feeds
    ADD COLUMN consecutive_not_found integer NOT NULL DEFAULT 0
        CONSTRAINT feeds_consecutive_not_found CHECK (consecutive_not_found >= 0),
    ADD COLUMN not_found_since timestamptz;

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
       f.not_found_since
FROM ingest.feeds f;
