-- A host name's fully qualified spelling (`news.example.com.`) is the same host as its plain one,
-- as the fetcher's politeness already counts it (ingest.fetch.client._host): the claims' share
-- of a host's feeds counts both spellings together. Only the root's one dot is dropped.
CREATE OR REPLACE FUNCTION ingest.url_host(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(
        lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/?#]*\]|[^/?#:]*)')),
        '\.$', '');
