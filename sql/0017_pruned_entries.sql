-- Retention (`ingest prune`): a feed entry whose article was pruned stays known to its feed, its
-- link to the article cleared and marked `pruned`, so that a feed still listing the entry does
-- not fetch and store the article again under a new id. Adding a column with a constant
-- default rewrites nothing.

ALTER TABLE ingest.feed_entries ADD COLUMN pruned boolean NOT NULL DEFAULT false;
