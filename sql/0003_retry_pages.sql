-- Entries whose page failed for a passing reason (server error, timeout, robots.txt
-- unavailable) are retried on later polls before falling back to the feed's text; and indexes
-- for the foreign keys that deletes cascade through.

ALTER TABLE ingest.feed_entries ADD COLUMN attempts smallint NOT NULL DEFAULT 0;

CREATE INDEX feed_entries_article_id_idx ON ingest.feed_entries (article_id);
CREATE INDEX articles_duplicate_of_idx ON ingest.articles (duplicate_of)
    WHERE duplicate_of IS NOT NULL;
