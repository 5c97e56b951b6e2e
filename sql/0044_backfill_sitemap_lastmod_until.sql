-- Backfills (`ingest backfill`): the last moment of the period a sitemap index's `lastmod` names
-- when it gives a year or a month alone (`2024`, `2024-05`, valid W3C Datetime forms): a
-- sitemap last modified `2024-05` may hold URLs modified on any day of May, so that --since and
-- --limit decide by that moment (ingest/backfill/engine.py), while `lastmod` keeps the date as
-- the index wrote it (its first moment). NULL where the lastmod names a day or a time, and for
-- the rows recorded before this column.

ALTER TABLE ingest.backfill_sources ADD COLUMN lastmod_until timestamptz;
