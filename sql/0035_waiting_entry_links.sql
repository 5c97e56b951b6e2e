-- An entry waiting for another try at its page records the hash of its link (ingest.url_hash),
-- so that the same story listed again under another guid (a feed whose guids change at every
-- poll) takes up the tries made so far (queries.sql: known_entries, defer_entries): keyed by its
-- guid alone, each poll's entry started its tries afresh, its failing page was fetched at every
-- poll, forever, and the story never stored from the feed's text.

ALTER TABLE ingest.feed_entries ADD COLUMN link_hash bytea;

CREATE INDEX feed_entries_waiting_link_idx ON ingest.feed_entries (feed_id, link_hash)
    WHERE link_hash IS NOT NULL AND article_id IS NULL;
