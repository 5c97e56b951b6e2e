-- Backfills (`ingest backfill`): what a run's walk skipped without recording a source or a URL
-- for it, counted in the run so that every invocation's summary gives the run's totals: the
-- sitemaps and URLs that its sitemaps listed on other sites (`sitemaps.on_site`), and the
-- sitemaps beyond --max-sitemaps. Each is added in the transaction that records the source
-- that skipped them (and set to 0 by --restart), so a source walked again after a crash counts
-- them once. A run begun before counts only what its later invocations walk.

ALTER TABLE ingest.backfill_runs
    ADD COLUMN other_sites bigint NOT NULL DEFAULT 0,
    ADD COLUMN beyond_sitemaps bigint NOT NULL DEFAULT 0;
