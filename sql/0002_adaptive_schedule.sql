-- Adaptive scheduling, giving up on (and recovering) failing feeds, and permanent redirects.

ALTER TABLE ingest.feeds
    ADD COLUMN publish_interval interval,
    ADD COLUMN feed_hint        interval,
    ADD COLUMN failing_since    timestamptz,
    ADD COLUMN inactive_reason  text,
    ADD COLUMN redirect_to      text,
    ADD COLUMN redirect_seen    integer NOT NULL DEFAULT 0,
    ADD COLUMN redirect_since   timestamptz;

-- Every feed is claimed when due, inactive ones included (they are probed at the slowest rate).
DROP INDEX ingest.feeds_due_idx;
CREATE INDEX feeds_due_idx ON ingest.feeds (next_fetch_at);

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
       f.publish_interval
FROM ingest.feeds f;
