-- The consumer contract: full-text search, a change feed (NOTIFY + a gap-free change
-- sequence), indexes for the documented queries, and the read-only role `news_reader`.

-- Full-text search ---------------------------------------------------------------------------

-- The text search configuration for an ISO 639-1 code, `simple` when PostgreSQL has no
-- stemmer for the language. IMMUTABLE is sound: it maps constants to built-in configurations.
CREATE FUNCTION ingest.ts_config(language text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE lower(split_part(coalesce(language, ''), '-', 1))
        WHEN 'ar' THEN 'arabic'::regconfig
        WHEN 'da' THEN 'danish'::regconfig
        WHEN 'de' THEN 'german'::regconfig
        WHEN 'el' THEN 'greek'::regconfig
        WHEN 'en' THEN 'english'::regconfig
        WHEN 'es' THEN 'spanish'::regconfig
        WHEN 'fi' THEN 'finnish'::regconfig
        WHEN 'fr' THEN 'french'::regconfig
        WHEN 'ga' THEN 'irish'::regconfig
        WHEN 'hu' THEN 'hungarian'::regconfig
        WHEN 'id' THEN 'indonesian'::regconfig
        WHEN 'it' THEN 'italian'::regconfig
        WHEN 'lt' THEN 'lithuanian'::regconfig
        WHEN 'nb' THEN 'norwegian'::regconfig
        WHEN 'ne' THEN 'nepali'::regconfig
        WHEN 'nl' THEN 'dutch'::regconfig
        WHEN 'nn' THEN 'norwegian'::regconfig
        WHEN 'no' THEN 'norwegian'::regconfig
        WHEN 'pt' THEN 'portuguese'::regconfig
        WHEN 'ro' THEN 'romanian'::regconfig
        WHEN 'ru' THEN 'russian'::regconfig
        WHEN 'sv' THEN 'swedish'::regconfig
        WHEN 'ta' THEN 'tamil'::regconfig
        WHEN 'tr' THEN 'turkish'::regconfig
        ELSE 'simple'::regconfig
    END;

-- Title weighted A, body B, each stemmed for the article's own language.
ALTER TABLE ingest.articles ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector(ingest.ts_config(language), coalesce(title, '')), 'A') ||
    setweight(to_tsvector(ingest.ts_config(language), text), 'B')
) STORED;
CREATE INDEX articles_search_idx ON ingest.articles USING gin (search);

-- A query parsed with every configuration articles can have, the results OR-ed: one tsquery,
-- so one GIN index scan finds the candidates in any language. It is a superset (a negation in
-- one language's reading may not hold in another's): news.search then checks each candidate
-- against the query read in the article's own language.
CREATE FUNCTION ingest.any_language_query(query text) RETURNS tsquery
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (
        SELECT tsquery_or_agg
        FROM (
            SELECT string_agg(DISTINCT '(' || q::text || ')', ' | ')::tsquery AS tsquery_or_agg
            FROM unnest(ARRAY[
                'simple', 'arabic', 'danish', 'dutch', 'english', 'finnish', 'french', 'german',
                'greek', 'hungarian', 'indonesian', 'irish', 'italian', 'lithuanian', 'nepali',
                'norwegian', 'portuguese', 'romanian', 'russian', 'spanish', 'swedish', 'tamil',
                'turkish']::regconfig[]) AS cfg,
                 LATERAL websearch_to_tsquery(cfg, query) AS q
            WHERE q::text <> ''
        ) t
    );

-- Changes: a gap-free sequence and NOTIFY ------------------------------------------------------

CREATE TABLE ingest.article_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id bigint NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('insert', 'update')),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_changes_article_id_idx ON ingest.article_changes (article_id);

CREATE FUNCTION ingest.article_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    kind text := lower(TG_OP);
    change_seq bigint;
BEGIN
    -- Sequence numbers are taken at write time but become visible at commit: two writers could
    -- commit out of order, and a reader could see seq 12, remember it, and never see 11. One
    -- transaction at a time may write changes (the lock is held until it ends), so numbers
    -- become visible in order and "seq > last seen" never skips a row. Writers take the lock
    -- first thing (ingest/store.py), so it cannot deadlock with their row locks.
    PERFORM pg_advisory_xact_lock(1852143205);  -- 0x6E657765, "newe"
    INSERT INTO ingest.article_changes (article_id, kind)
    VALUES (NEW.id, kind)
    RETURNING seq INTO change_seq;
    -- Delivered when (and only if) the transaction commits.
    PERFORM pg_notify(
        'news_articles', json_build_object('id', NEW.id, 'kind', kind, 'seq', change_seq)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER articles_changed
    AFTER INSERT ON ingest.articles
    FOR EACH ROW EXECUTE FUNCTION ingest.article_changed();
CREATE TRIGGER articles_updated
    AFTER UPDATE ON ingest.articles
    FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION ingest.article_changed();

CREATE VIEW news.article_changes AS
SELECT c.seq, c.article_id, c.kind, c.changed_at
FROM ingest.article_changes c;

-- Indexes for the documented queries ----------------------------------------------------------

CREATE INDEX articles_site_published_idx ON ingest.articles (site, published_at DESC);
CREATE INDEX articles_language_published_idx ON ingest.articles (language, published_at DESC);
CREATE INDEX articles_originals_published_idx ON ingest.articles (published_at DESC)
    WHERE duplicate_of IS NULL;

-- news.search ----------------------------------------------------------------------------------

-- Rows of news.articles matching a websearch_to_tsquery query ("quoted phrase", or, -not),
-- best match first. SECURITY DEFINER so that news_reader, who can read only the news schema,
-- can search the index on the internal table.
-- The body is a string, planned at call time, so that `a.*` follows columns appended to the
-- view by later migrations (a BEGIN ATOMIC body would freeze today's column list).
CREATE FUNCTION news.search(query text) RETURNS SETOF news.articles
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT a.*
        FROM ingest.any_language_query(query) AS candidates,
             ingest.articles AS i
             JOIN news.articles AS a ON a.id = i.id
             CROSS JOIN LATERAL websearch_to_tsquery(ingest.ts_config(i.language), query) AS q
        WHERE i.search @@ candidates
          AND i.search @@ q
        ORDER BY ts_rank_cd(i.search, q) DESC, i.published_at DESC, i.id DESC
    $$;

-- The read-only role --------------------------------------------------------------------------

-- Roles are cluster-wide: create it once, and skip (with a notice) where the migrating user may
-- not create roles; everything else in the schema works without it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'news_reader') THEN
        CREATE ROLE news_reader LOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO news_reader', current_database());
    GRANT USAGE ON SCHEMA news TO news_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA news TO news_reader;
    GRANT EXECUTE ON FUNCTION news.search(text) TO news_reader;
    ALTER DEFAULT PRIVILEGES IN SCHEMA news GRANT SELECT ON TABLES TO news_reader;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'news_reader not created: % (create it as a superuser, see README)', SQLERRM;
END
$$;
REVOKE ALL ON FUNCTION news.search(text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'news_reader') THEN
        GRANT EXECUTE ON FUNCTION news.search(text) TO news_reader;
    END IF;
END
$$;
