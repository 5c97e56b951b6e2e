-- Removing or merging a feed rewrites its articles' feed_id (ON DELETE SET NULL, or the merge's
-- UPDATE), which announced an 'update' of every one of them in news.article_changes and on
-- news_articles although nothing a consumer reads had changed. An update is announced when
-- anything but feed_id changed.

DROP TRIGGER articles_updated ON ingest.articles;

CREATE TRIGGER articles_updated
    AFTER UPDATE ON ingest.articles
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'feed_id') IS DISTINCT FROM (to_jsonb(NEW) - 'feed_id'))
    EXECUTE FUNCTION ingest.article_changed();
