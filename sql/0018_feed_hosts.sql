-- The host of a URL, as the claims read it from a feed's (sql/queries.sql: claim_feeds,
-- claim_all_feeds): a process keeps one host's feeds from holding more than a share of its feed
-- slots, so that feeds of a host with hundreds of them, each waiting out the host's delay, do
-- not keep other hosts' feeds waiting (ingest.pipeline). Lower-cased, without user, port or
-- path; an IPv6 literal keeps its brackets; NULL when the URL has no host. Computed where a
-- feed is claimed, not stored: a stored column would rewrite ingest.feeds.
CREATE FUNCTION ingest.url_host(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/?#]*\]|[^/?#:]*)'));
