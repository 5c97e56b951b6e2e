-- news.search('') (or a query of stop words only) returned nothing but sent one NOTICE per
-- language ("text-search query doesn't contain lexemes"): the function now runs with notices
-- off. Same signature, rows and grants.

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
        WHERE i.search @@ candidates
          AND i.search @@ q
        ORDER BY ts_rank_cd(i.search, q) DESC, i.published_at DESC, i.id DESC
    $$;
