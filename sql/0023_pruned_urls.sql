-- Retention (`ingest prune`): the URL forms of pruned articles stay known, so that nothing
-- fetches and stores a pruned article again under a new id. The feed entries of a pruned
-- article are remembered per feed (sql/0017); a sitemap, a URL list or another feed names the
-- article by its URL alone, so `ingest backfill` and a feed new to the article need its URLs.
-- A backfill URL left unfetched for it is skipped with reason 'pruned'. No earlier prune can be
-- recorded here: its URL forms went with its articles.

CREATE TABLE ingest.pruned_urls (
    url_hash  bytea PRIMARY KEY,
    pruned_at timestamptz NOT NULL DEFAULT now()
);

-- What is known of a URL (by `ingest.url_hash`): one row with the article stored under it, or
-- one row with NULL when the article stored under it was pruned; no row when neither. The one
-- rule by which the feed poller (`known_entries`) and `ingest backfill` (`known_urls`,
-- `backfill_skip_known`) leave a URL unfetched. A URL stored again (an article came back under
-- it) is the stored article's.
CREATE FUNCTION ingest.known_url(hash bytea) RETURNS TABLE (article_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT au.article_id FROM ingest.article_urls au WHERE au.url_hash = hash
    UNION ALL
    SELECT NULL::bigint FROM ingest.pruned_urls p
    WHERE p.url_hash = hash
      AND NOT EXISTS (SELECT 1 FROM ingest.article_urls au WHERE au.url_hash = hash)
$$;
