-- Backfills (`ingest backfill`): the URL a TARGET home page was served from, where it
-- redirected to another site (a site moved to a new domain). Its robots.txt names the run's
-- sitemaps, and a sitemap it names may be hosted elsewhere (a CDN) and list its URLs
-- (ingest/documents/sitemaps.py: `sitemap_sites`); kept for the invocations that continue the
-- run without fetching TARGET again. NULL for a run begun before it, and where TARGET is not a
-- home page.

ALTER TABLE ingest.backfill_runs ADD COLUMN site_url text;
