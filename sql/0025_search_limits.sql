-- news.search with hostile queries. A query's cost grows with its words on every article that
-- matches it, read in 23 configurations: a thousand words (`storm or storm or ...`) took a
-- minute on 5,000 articles and grew with the table, and tens of thousands ended in "stack depth
-- limit exceeded" or "value is too big in tsquery" carrying the whole query. A query of
-- punctuation or stop words only printed a NOTICE for each configuration it has no word for
-- (0014 spared only '' and spaces). A query of more than 32 words is now refused before any
-- configuration reads it, and news.search sends no notices.

-- Whether a query has text to search (false for '' and spaces); an error (SQLSTATE 54000,
-- program_limit_exceeded) for one of more than 32 words. A word is a token of the default
-- parser that is not a blank: `or` counts, `-` and quotes do not, and a hyphenated word counts
-- as itself and each of its parts, as the query built from it holds each of them.
CREATE FUNCTION ingest.search_query_ok(query text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    words bigint;
BEGIN
    SELECT count(*) INTO words FROM ts_parse('default', query) WHERE tokid <> 12;  -- blank
    IF words > 32 THEN
        RAISE EXCEPTION 'news.search: a query of at most 32 words (this one has %)', words
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN btrim(query) <> '';
END
$$;

-- The guard names no column, so PostgreSQL checks it once, before the rest of the plan runs
-- (0014); client_min_messages keeps each configuration's notice about a query with no word of
-- its own (stop words, punctuation, a word too long to index) inside the function.
CREATE OR REPLACE FUNCTION news.search(query text) RETURNS SETOF news.articles
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning
    AS $$
        SELECT a.*
        FROM ingest.any_language_query(query) AS candidates,
             ingest.articles AS i
             JOIN news.articles AS a ON a.id = i.id
             CROSS JOIN LATERAL websearch_to_tsquery(ingest.ts_config(i.language), query) AS q
        WHERE ingest.search_query_ok(query)
          AND i.search @@ candidates
          AND i.search @@ q
        ORDER BY ts_rank_cd(i.search, q) DESC, i.published_at DESC, i.id DESC
    $$;
