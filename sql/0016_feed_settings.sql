-- Per-feed settings (`ingest feeds set URL key=value...`), read by every replica on the feed's
-- next claim: poll interval bounds, a User-Agent and extra request headers for its feed and
-- page requests, kept as one JSON object; and tags that group feeds, shown in news.feeds.

ALTER TABLE ingest.feeds
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

CREATE INDEX feeds_tags_idx ON ingest.feeds USING gin (tags);

CREATE OR REPLACE VIEW news.feeds AS
SELECT f.id,
       f.url,
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
