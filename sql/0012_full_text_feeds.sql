-- Full-text feeds: where a feed's own entries carry the whole article, its pages are no longer
-- fetched (see ingest/fulltext.py). Per feed: the operator's setting, the state decided from
-- evidence, and that evidence. news.feeds only grows.

ALTER TABLE ingest.feeds
    ADD COLUMN text_mode text NOT NULL DEFAULT 'auto'
        CONSTRAINT feeds_text_mode CHECK (text_mode IN ('auto', 'page', 'feed')),
    ADD COLUMN full_text boolean NOT NULL DEFAULT false,
    ADD COLUMN full_text_streak smallint NOT NULL DEFAULT 0,
    ADD COLUMN full_text_since_check integer NOT NULL DEFAULT 0,
    ADD COLUMN full_text_words integer NOT NULL DEFAULT 0,
    ADD COLUMN full_text_evidence text;

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
       f.full_text_evidence
FROM ingest.feeds f;
