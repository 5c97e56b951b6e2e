-- Backfills (`ingest backfill`): when a sitemap index says each sitemap it lists was last
-- modified, so that a run with --limit skips a sitemap last modified before the newest URLs it
-- has found already (ingest/backfill/engine.py: `Horizon`), as it stops walking a feed's paged
-- history there. NULL where the index does not say, and for every other source.

ALTER TABLE ingest.backfill_sources ADD COLUMN lastmod timestamptz;
