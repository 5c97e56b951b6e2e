-- Every feed an article was seen in, for consumers: ingest.feed_entries already records each
-- entry of each feed with the article it became; news.article_feeds shows it one row per
-- (article, feed). news.articles.feed_id stays the first feed the article was seen in.
--
-- Articles stored before the feed that lists them was registered (a backfill of the site, a
-- feed removed and added again) kept feed_id NULL forever; the service now gives them the feed
-- whose poll links them (ingest/store/articles.py), and those linked already get it here.
-- feed_id alone changing is no update (0013): nothing is announced.

CREATE VIEW news.article_feeds AS
SELECT e.article_id,
       e.feed_id,
       f.url AS feed_url,
       min(e.first_seen_at) AS first_seen_at
FROM ingest.feed_entries e
JOIN ingest.feeds f ON f.id = e.feed_id
WHERE e.article_id IS NOT NULL
GROUP BY e.article_id, e.feed_id, f.url;

UPDATE ingest.articles a
SET feed_id = first.feed_id
FROM (
    SELECT DISTINCT ON (article_id) article_id, feed_id
    FROM ingest.feed_entries
    WHERE article_id IS NOT NULL
    ORDER BY article_id, first_seen_at, feed_id
) AS first
WHERE a.id = first.article_id AND a.feed_id IS NULL;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'news_reader') THEN
        GRANT SELECT ON news.article_feeds TO news_reader;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'news.article_feeds not granted to news_reader: %', SQLERRM;
END
$$;
