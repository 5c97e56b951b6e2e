-- Backfills (`ingest backfill`): how many sitemap indexes led to each source, so that indexes
-- nested without end (each at a URL of its own, which the run's one-row-per-URL rule does not
-- stop) are read only so deep (ingest/backfill/engine.py: MAX_INDEX_DEPTH). Feed pages and the
-- sources a target names are at depth 0. Adding a column with a constant default rewrites
-- nothing.

ALTER TABLE ingest.backfill_sources ADD COLUMN depth smallint NOT NULL DEFAULT 0;
