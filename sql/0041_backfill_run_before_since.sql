-- Backfills (`ingest backfill`): the sitemaps a run's sitemap indexes listed as last modified
-- before its --since, which the walk neither fetches nor records as sources, counted in the run
-- (as sql/0039 counts those on other sites and beyond --max-sitemaps) so that every
-- invocation's summary gives the run's totals. Added in the transaction that records the index
-- that listed them, set to 0 by --restart. A run begun before counts only what its later
-- invocations walk.

ALTER TABLE ingest.backfill_runs
    ADD COLUMN before_since bigint NOT NULL DEFAULT 0;
