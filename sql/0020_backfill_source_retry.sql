-- Backfills (`ingest backfill`): whether a feed page or sitemap that failed did so for a passing
-- reason (5xx, 429, a timeout, no answer): the next invocation of the run walks it again, as it
-- tries again the pages that failed that way (ingest.backfill_urls.retryable). Adding a column
-- with a constant default rewrites nothing.

ALTER TABLE ingest.backfill_sources ADD COLUMN retryable boolean NOT NULL DEFAULT false;
