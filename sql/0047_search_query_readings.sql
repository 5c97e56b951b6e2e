-- news.search with hostile queries, continued (0025). A run of more than 32 minus signs (a
-- separator line pasted into a search box) failed with PostgreSQL's internal error "tsquery
-- stack too small" (SQLSTATE XX000): a query without a word now finds nothing without being
-- read, and one with words that the parser cannot read is refused with news.search's own
-- error (SQLSTATE 54000). The query was also read again for every article matching it (a word
-- padded with a megabyte of spaces cost a parse of that megabyte per article): it is now read
-- once in each configuration, and each article matched against the reading of its language;
-- a query of more than 4096 characters (43,615 quotes failed with "stack depth limit
-- exceeded") is refused as one of more than 32 words is.

-- The query read in each configuration an article can have (every value of ingest.ts_config),
-- one row each: the one list of them.
CREATE FUNCTION ingest.search_readings(query text)
    RETURNS TABLE (config regconfig, reading tsquery)
    LANGUAGE sql STABLE PARALLEL SAFE
    BEGIN ATOMIC
        SELECT cfg, websearch_to_tsquery(cfg, query)
        FROM unnest(ARRAY[
            'simple', 'arabic', 'danish', 'dutch', 'english', 'finnish', 'french', 'german',
            'greek', 'hungarian', 'indonesian', 'irish', 'italian', 'lithuanian', 'nepali',
            'norwegian', 'portuguese', 'romanian', 'russian', 'spanish', 'swedish', 'tamil',
            'turkish']::regconfig[]) AS cfg;
    END;

-- The readings OR-ed, for the GIN index (0004), from that list.
CREATE OR REPLACE FUNCTION ingest.any_language_query(query text) RETURNS tsquery
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (
        SELECT string_agg(DISTINCT '(' || r.reading::text || ')', ' | ')::tsquery
        FROM ingest.search_readings(query) AS r
        WHERE r.reading::text <> ''
    );

-- Whether a query has a word to search (false for '', spaces and punctuation alone: nothing
-- could match it, and it is not read); an error (SQLSTATE 54000, program_limit_exceeded) for
-- one of more than 4096 characters (counting its words, and each of its 23 readings, costs
-- time in proportion to its length: ten megabytes, seconds), of more than 32 words (0025),
-- and for one whose reading fails in PostgreSQL's parser (the query is not repeated in any).
-- PARALLEL RESTRICTED: the reading's exception block is a subtransaction, which a parallel
-- worker may not start.
CREATE OR REPLACE FUNCTION ingest.search_query_ok(query text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    words bigint;
BEGIN
    IF length(query) > 4096 THEN
        RAISE EXCEPTION 'news.search: a query of at most 4096 characters (this one has %)',
            length(query) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT count(*) INTO words FROM ts_parse('default', query) WHERE tokid <> 12;  -- blank
    IF words > 32 THEN
        RAISE EXCEPTION 'news.search: a query of at most 32 words (this one has %)', words
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF words = 0 THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM ingest.any_language_query(query);
    EXCEPTION WHEN internal_error OR statement_too_complex OR program_limit_exceeded THEN
        -- "tsquery stack too small" (XX000): more than 32 operators waiting for their word.
        RAISE EXCEPTION 'news.search: a query the text search parser cannot read (%)', SQLERRM
            USING ERRCODE = 'program_limit_exceeded';
    END;
    RETURN true;
END
$$;

-- The guard names no column, so PostgreSQL checks it once, before the rest of the plan runs
-- (0014); the readings are a materialized CTE, computed once for the whole search.
CREATE OR REPLACE FUNCTION news.search(query text) RETURNS SETOF news.articles
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning
    AS $$
        WITH readings AS MATERIALIZED (
            SELECT r.config, r.reading FROM ingest.search_readings(query) AS r)
        SELECT a.*
        FROM ingest.any_language_query(query) AS candidates,
             ingest.articles AS i
             JOIN readings AS q ON q.config = ingest.ts_config(i.language)
             JOIN news.articles AS a ON a.id = i.id
        WHERE ingest.search_query_ok(query)
          AND i.search @@ candidates
          AND i.search @@ q.reading
        ORDER BY ts_rank_cd(i.search, q.reading) DESC, i.published_at DESC, i.id DESC
    $$;
