-- The SQL of bench/growth_bench.py. Each part starts with "-- name: <name>"; `temp` gets its
-- constants as literals (DDL takes no parameters), `generate` is run with psycopg parameters.

-- name: temp
CREATE TEMP TABLE bench_paras (id integer PRIMARY KEY, body text NOT NULL);
CREATE TEMP TABLE bench_titles (id integer PRIMARY KEY, title text NOT NULL, slug text NOT NULL);
CREATE TEMP TABLE bench_words (id integer PRIMARY KEY, w text NOT NULL);
CREATE TEMP TABLE bench_authors (id integer PRIMARY KEY, a text NOT NULL);
CREATE TEMP TABLE bench_sites (n integer PRIMARY KEY, host text NOT NULL, site text NOT NULL,
                               feed_id bigint NOT NULL);
-- Uniform [0, 1) from a row number and a stream number: deterministic, so a copy can rebuild
-- its original's URL, text and band keys.
CREATE FUNCTION pg_temp.u(g bigint, k integer) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(g, k) & 2147483647)::float8 / 2147483648.0 $$;
CREATE FUNCTION pg_temp.pub(g bigint, n_max bigint, t_end timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT least(t_end,
        t_end - make_interval(days => %(span)s) * greatest(0, 1 - g::float8 / n_max)
              + make_interval(secs => (pg_temp.u(g, 7) - 0.5) * 4 * 86400)) $$;
CREATE FUNCTION pg_temp.site_n(g bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(%(sites)s * pg_temp.u(g, 6) ^ 2)::integer $$;
CREATE FUNCTION pg_temp.title_n(g bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(%(titles)s * pg_temp.u(g, 5))::integer $$;
CREATE FUNCTION pg_temp.mkurl(host text, g bigint, pub timestamptz, slug text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'https://' || host || '/'
        || (%(sections)s::text[])[1 + floor(pg_temp.u(g, 14) * %(n_sections)s)::integer] || '/'
        || to_char(pub AT TIME ZONE 'UTC', 'YYYY/MM/DD') || '/' || slug || '-' || g $$;

-- name: generate
-- One chunk of rows lo..hi. copy: 0 an original, 1 a near copy (its own lead sentence and first
-- paragraph, some of its band keys taken from the original), 2 an exact copy (same text, same
-- content hash, all 32 band keys of the original). An original is always from an earlier chunk,
-- and never itself a copy, so its row exists and duplicate_of points at the story's first row.
WITH r AS (
    SELECT g, x.g0,
           CASE WHEN pg_temp.u(g, 1) < %(copy_rate)s AND x.g0 >= 1
                     AND pg_temp.u(x.g0, 1) >= %(copy_rate)s
                THEN CASE WHEN pg_temp.u(g, 1) < %(exact_rate)s THEN 2 ELSE 1 END
                ELSE 0 END AS copy
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g,
         LATERAL (SELECT %(lo)s::bigint - 1 - floor(pg_temp.u(g, 2) * 20000)::bigint AS g0) x
), s AS (
    SELECT r.*,
           CASE WHEN copy = 2 THEN g0 ELSE g END AS story,
           CASE WHEN copy > 0 THEN g0 ELSE g END AS body,
           pg_temp.pub(g, %(n_max)s, %(t_end)s) AS published_at
    FROM r
), rows AS (
    SELECT s.*, site.host, site.site, site.feed_id, t.title, t.slug,
           pg_temp.mkurl(site.host, s.g, s.published_at, t.slug) AS url,
           txt.paras, txt.first,
           upper(left(ld.lead, 1)) || substr(ld.lead, 2) || '.' AS lead,
           pg_temp.u(s.story, 8) AS ulang
    FROM s
    JOIN bench_sites site ON site.n = pg_temp.site_n(s.g)
    JOIN bench_titles t ON t.id = pg_temp.title_n(s.story)
    CROSS JOIN LATERAL (
        SELECT string_agg(p.body, E'\n\n' ORDER BY i) AS paras,
               min(p.body) FILTER (WHERE i = 1) AS first
        FROM generate_series(1, CASE WHEN pg_temp.u(s.body, 3) < %(long_fraction)s
                                     THEN 4 + floor(pg_temp.u(s.body, 4) * 4)
                                     ELSE 1 + floor(pg_temp.u(s.body, 4) * 2) END::integer) AS i
        JOIN bench_paras p ON p.id = floor(%(paragraphs)s * pg_temp.u(
            CASE WHEN s.copy = 1 AND i = 1 THEN s.g ELSE s.body END, 10 + i))::integer
    ) txt
    CROSS JOIN LATERAL (
        SELECT string_agg(w.w, ' ' ORDER BY i) AS lead
        FROM generate_series(1, 10 + floor(pg_temp.u(s.story, 99) * 12)::integer) AS i
        JOIN bench_words w ON w.id = floor(%(n_words)s * pg_temp.u(s.story, 100 + i))::integer
    ) ld
), ins AS (
    INSERT INTO ingest.articles (
        url, original_url, feed_id, guid, site, title, text, author, published_at,
        published_source, modified_at, language, image_url, summary, content_hash, text_source,
        extraction_error, fetched_at, duplicate_of, minhash, lsh_bands)
    SELECT
        url,
        CASE WHEN pg_temp.u(g, 18) < 0.3 THEN url || '?utm_medium=rss&utm_source=feed'
             ELSE url END,
        feed_id, url, site, title,
        lead || E'\n\n' || paras,
        CASE WHEN pg_temp.u(story, 9) < 0.2 THEN NULL
             ELSE (SELECT a.a FROM bench_authors a
                   WHERE a.id = floor(%(n_authors)s * pg_temp.u(story, 15))::integer) END,
        published_at,
        CASE WHEN pg_temp.u(g, 20) < 0.9 THEN 'feed'
             WHEN pg_temp.u(g, 20) < 0.98 THEN 'page' ELSE 'first_seen' END,
        CASE WHEN pg_temp.u(g, 21) < 0.1 THEN published_at + interval '2 hours' END,
        CASE WHEN ulang < 0.80 THEN 'en' WHEN ulang < 0.87 THEN 'de' WHEN ulang < 0.93 THEN 'fr'
             WHEN ulang < 0.97 THEN 'es' ELSE 'it' END,
        CASE WHEN pg_temp.u(g, 16) < 0.6 THEN 'https://cdn.' || site || '/images/' || g || '.jpg'
             END,
        CASE WHEN pg_temp.u(g, 17) < 0.7 THEN left(first, 240) END,
        sha256(int8send(CASE WHEN copy = 1 THEN g ELSE story END) || '\x01'::bytea),
        CASE WHEN pg_temp.u(g, 12) < 0.07 THEN 'feed' ELSE 'page' END,
        CASE WHEN pg_temp.u(g, 12) < 0.07 THEN (ARRAY['HTTP 404', 'robots.txt: disallowed',
             'not an HTML page: application/pdf', 'no text extracted'])[1 + g %% 4] END,
        published_at + interval '1 minute' * (5 + 55 * pg_temp.u(g, 19)),
        CASE WHEN copy > 0 THEN (
            SELECT COALESCE(a.duplicate_of, a.id)
            FROM bench_sites s0, bench_titles t0, ingest.articles a
            WHERE s0.n = pg_temp.site_n(g0) AND t0.id = pg_temp.title_n(g0)
              AND a.url_hash = ingest.url_hash(pg_temp.mkurl(
                      s0.host, g0, pg_temp.pub(g0, %(n_max)s, %(t_end)s), t0.slug))) END,
        (SELECT string_agg(sha512(int8send(CASE WHEN copy = 2 THEN g0 ELSE g END * 8 + k)),
                           ''::bytea ORDER BY k)
         FROM generate_series(0, 7) k),
        (SELECT array_agg(hashint8extended(
                    CASE WHEN copy = 2 OR (copy = 1 AND pg_temp.u(g, 300 + b)
                                           < 0.3 + 0.5 * pg_temp.u(g, 13))
                         THEN g0 ELSE g END, b) ORDER BY b)
         FROM generate_series(0, 31) b)
    FROM rows
    RETURNING id, url, site, feed_id, fetched_at
), urls AS (
    INSERT INTO ingest.article_urls (url_hash, article_id)
    SELECT ingest.url_hash(u), id
    FROM ins, unnest(CASE WHEN id %% 6 = 0 THEN ARRAY[url, 'https://' || site || '/?p=' || id]
                          ELSE ARRAY[url] END) AS u
)
INSERT INTO ingest.feed_entries (feed_id, entry_hash, article_id, first_seen_at)
SELECT feed_id, sha256(convert_to('guid:' || url, 'UTF8')), id, fetched_at FROM ins
