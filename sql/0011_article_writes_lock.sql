-- The key of the lock that serialises writes to articles, defined once: the change trigger and
-- the writers (`lock_article_writes` in queries.sql) both take it through this function. The
-- value is the one 0004 used (0x6E657665, "neve"), so a writer running the code of before this
-- migration and one running the code after it still exclude each other.

CREATE FUNCTION ingest.article_writes_lock_key() RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 1852143205;

CREATE OR REPLACE FUNCTION ingest.article_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    kind text := lower(TG_OP);
    change_seq bigint;
BEGIN
    -- Sequence numbers are taken at write time but become visible at commit: two writers could
    -- commit out of order, and a reader could see seq 12, remember it, and never see 11. One
    -- transaction at a time may write changes (the lock is held until it ends), so numbers
    -- become visible in order and "seq > last seen" never skips a row. Writers take the lock
    -- first thing (ingest/store/articles.py), so it cannot deadlock with their row locks.
    PERFORM pg_advisory_xact_lock(ingest.article_writes_lock_key());
    INSERT INTO ingest.article_changes (article_id, kind)
    VALUES (NEW.id, kind)
    RETURNING seq INTO change_seq;
    -- Delivered when (and only if) the transaction commits.
    PERFORM pg_notify(
        'news_articles', json_build_object('id', NEW.id, 'kind', kind, 'seq', change_seq)::text);
    RETURN NULL;
END
$$;
