-- ingest.feed_entries.attempts of an entry whose article is stored counts the tries at its
-- latest update's page that failed for a passing reason (queries.sql: defer_updates), not the
-- tries its page took before it was stored, which it kept until now: those start from none.

UPDATE ingest.feed_entries SET attempts = 0
WHERE attempts <> 0 AND (article_id IS NOT NULL OR pruned);
