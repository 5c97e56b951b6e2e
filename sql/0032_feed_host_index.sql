-- The feeds of one host by index: a Retry-After's hold (sql/queries.sql: hold_host_feeds) reads
-- the held host's feeds, not every feed due before the hold ends (at 100,000 feeds and an
-- hour's hold, every feed, each one's host computed). The claims compare hosts on the feeds
-- they read by next_fetch_at and need no such index.
--
--   EXPLAIN UPDATE ingest.feeds SET ... WHERE ... AND ingest.url_host(url) = 'host7.example'
--   Update on feeds
--     ->  Bitmap Heap Scan on feeds
--           Recheck Cond: (regexp_replace(lower("substring"(url, ...)), '\.$', '') = ...)
--           Filter: ((id <> 1) AND ... AND (next_fetch_at < LEAST(now() + '01:00:00', ...)))
--           ->  Bitmap Index Scan on feeds_url_host_idx
--
-- (4,000 feeds of 200 hosts after ANALYZE: tests/store/test_sql_contract.py). The index is on
-- the function as sql/0022 defines it; a migration that defines it anew rebuilds the index
-- (REINDEX INDEX ingest.feeds_url_host_idx) in the same transaction.
CREATE INDEX feeds_url_host_idx ON ingest.feeds (ingest.url_host(url));
-- Statistics now, not when autovacuum comes by: without the expression's statistics the hold
-- is planned as a scan of every feed due before it ends.
ANALYZE ingest.feeds;
