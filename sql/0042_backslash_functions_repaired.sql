-- A database migrated while its sessions read a backslash in a string literal as an escape (the
-- server, role or database set standard_conforming_strings off, for a legacy client; the
-- service sets it on as it connects only since then: ingest.store.db.SESSION_SETTINGS) holds
-- the functions whose regular expressions have one as read so: `\.$` as `.$`, `\1` as the
-- character 1, `\s` as `s`. ingest.url_host dropped the last letter of every host
-- (`news.example.co`), news.feeds showed a feed URL's user-info and token mangled, and failed
-- on any row with an error ("invalid regular expression"). Those functions stay so until made
-- again: each is made here as the latest migration defining it does (url_host: 0022;
-- without_userinfo: 0026; redacted_url: 0028; redacted_text: 0031). On a database migrated with
-- the setting on, they are the same, and nothing else here is done.
--
-- What ingest.url_host as misread computed and stored is made again with it: the index on feed
-- hosts (0032, 0037), the rows of ingest.feed_hosts (0037: keyed by the misread hosts, the
-- claims would find no row of any feed's host, and claim nothing), and the site_url that 0036
-- gave the news sitemaps hosted elsewhere than their site (`https://news.example.co/`, whose
-- pages the sitemap's polls then left out as another site's).

-- Whether url_host is the misread one, read before it is made again: for this transaction.
SELECT set_config(
    'ingest.url_host_misread',
    (ingest.url_host('https://news.example.com/') IS DISTINCT FROM 'news.example.com')::text,
    true);

CREATE OR REPLACE FUNCTION ingest.url_host(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(
        lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/?#]*\]|[^/?#:]*)')),
        '\.$', '');

CREATE OR REPLACE FUNCTION ingest.without_userinfo(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@', '\1');

CREATE OR REPLACE FUNCTION ingest.redacted_url(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN coalesce(
        (SELECT parts[1] || '?'
                || regexp_replace(
                       parts[2],
                       '(^|[&;])([^=&;#]*(token|key|secret|sig|signature|password|passwd|pwd|auth|credential)s?)=[^&;#]*',
                       '\1\2=***',
                       'gi')
                || parts[3]
         FROM regexp_match(ingest.without_userinfo(url), '^([^?#]*)\?([^#]*)(.*)$') AS m (parts)),
        ingest.without_userinfo(url));

CREATE OR REPLACE FUNCTION ingest.redacted_text(message text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(
        regexp_replace(message, '([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s"''<>\\]*@', '\1', 'g'),
        '([?&;][^=&;#?\s"''<>\\/]*(token|key|secret|sig|signature|password|passwd|pwd|auth|credential)s?=)[^&;#\s"''<>\\)]*',
        '\1***',
        'gi');

DO $$
BEGIN
    IF NOT current_setting('ingest.url_host_misread')::boolean THEN
        RETURN;
    END IF;
    -- Its entries were computed by the misread function (sql/0032 says so of any new one).
    REINDEX INDEX ingest.feeds_url_host_idx;

    -- Each host's row as sql/0037 made them: its earliest feed's due time. The rows of the
    -- misread hosts go (no feed has one now, and a claim would read each in vain once).
    DELETE FROM ingest.feed_hosts;
    INSERT INTO ingest.feed_hosts (host, due_at)
    SELECT COALESCE(ingest.url_host(url), ''), min(ingest.feed_due(next_fetch_at, lease_expires_at))
    FROM ingest.feeds
    GROUP BY 1;

    -- A news sitemap's site_url that 0036 read from its articles with the misread function: the
    -- scheme and misread host of articles it listed, none of which is on that host. It takes
    -- the site 0036 meant from those articles (the most of them, as 0036 chose), or none where
    -- that is the sitemap's own host (0036 left those without one). The misread host is the
    -- misread function's expression, its literals as they were read.
    WITH misread AS (
        SELECT e.feed_id,
               lower(substring(a.url FROM '^([A-Za-z][A-Za-z0-9+.-]*)://')) || '://'
                   || regexp_replace(lower(substring(a.url
                          FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([[^]/?#]*]|[^/?#:]*)')),
                          '.$', '') || '/' AS misread_site,
               lower(substring(a.url FROM '^([A-Za-z][A-Za-z0-9+.-]*)://')) || '://'
                   || ingest.url_host(a.url) || '/' AS site
        FROM ingest.feeds sf
        JOIN ingest.feed_entries e ON e.feed_id = sf.id
        JOIN ingest.articles a ON a.id = e.article_id
        WHERE sf.kind = 'sitemap' AND sf.site_url IS NOT NULL AND ingest.url_host(a.url) IS NOT NULL
    ), meant AS (
        SELECT DISTINCT ON (m.feed_id) m.feed_id, m.site
        FROM ingest.feeds f
        JOIN misread m ON m.feed_id = f.id AND m.misread_site = f.site_url
        WHERE NOT EXISTS (SELECT FROM misread o WHERE o.feed_id = f.id AND o.site = f.site_url)
        GROUP BY m.feed_id, m.site
        ORDER BY m.feed_id, count(*) DESC, m.site
    )
    UPDATE ingest.feeds f
    SET site_url = CASE WHEN ingest.url_host(s.site) IS DISTINCT FROM ingest.url_host(f.url)
                        THEN s.site END
    FROM meant s
    WHERE f.id = s.feed_id;
END
$$;
