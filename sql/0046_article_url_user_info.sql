-- Before the version that resolves a private feed's relative links (and a private sitemap's
-- relative locations) against its URL without its user-info, they resolved with it: an article
-- of `http://reader:s3cret@host/feed` linking `/story/1` was stored at
-- `http://reader:s3cret@host/story/1`, in ingest.articles.url, original_url and image_url,
-- which news.articles (and news.search) show to news_reader as stored, and a backfill queued
-- its pages so (ingest.backfill_urls.url and the link and image of its entry); so was an
-- absolute link, redirect, canonical or image written with a user-info. Those rows lose it
-- here, as the service writes them now (ingest.article.build_article). The feeds' own URLs keep theirs
-- (ingest.feeds.url: it is what their requests are sent with; news.feeds shows them without),
-- and so do a backfill's sources and target (ingest.backfill_sources.url,
-- ingest.backfill_runs.target: feeds and sitemaps fetched with it).
--
-- url_hash is generated from url (ingest.url_hash, the one function every lookup by URL uses),
-- so an article's is its cleaned URL's; the URL forms of ingest.article_urls are hashes alone:
-- those of the cleaned url and original_url are added for the article, so that the service
-- finds it under the addresses it now computes, and those of the old forms are kept (they name
-- the same article, and hold no URL in clear).
--
-- An article whose cleaned URL another article has (the copy a public feed of the site stored
-- of the same page, its own URL or one of its URL forms) is merged into that article; several
-- cleaned to one URL that no other article has are merged into the first stored (the lowest
-- id). Where that other article is itself being cleaned, the merge follows it: an article
-- whose cleaned URL is a URL form of one merged into a third goes into the third, and
-- articles each of whose cleaned URL is a form of the next, round to the first, are one
-- article, the first stored of them; so every article is found by its own URL afterwards
-- (ingest.known_url of its url_hash names it). The merged article's feed entries and URL forms
-- are the kept article's (whose feed_id, where it has none, becomes the merged one's); the
-- merged row goes as a pruned article does: its copies re-pointed by the rule of
-- `prune_repoint_copies` (the earliest published of them the story's original), its change
-- rows and earlier versions with it, its removal not announced. Each article left whose URLs
-- lose their user-info or whose duplicate_of is re-pointed is rewritten once, and so
-- announced as one update (a change row and a notification, by the trigger), so that a
-- consumer that copied it reads it again; nothing else is rewritten.

-- The article writers' turn, first, as every writer takes it (sql/0011): no article is
-- written, merged or pruned meanwhile.
SELECT pg_advisory_xact_lock(ingest.article_writes_lock_key());

-- The articles whose URLs have a user-info to lose, read in one pass over the table (all that
-- follows reads them here).
CREATE TEMPORARY TABLE user_info_articles ON COMMIT DROP AS
SELECT a.id, a.url, a.original_url
FROM ingest.articles a
WHERE (strpos(a.url, '@') > 0 AND ingest.without_userinfo(a.url) <> a.url)
   OR (strpos(a.original_url, '@') > 0
       AND ingest.without_userinfo(a.original_url) <> a.original_url)
   OR (strpos(a.image_url, '@') > 0 AND ingest.without_userinfo(a.image_url) <> a.image_url);
ANALYZE user_info_articles;

CREATE TEMPORARY TABLE cleaned_articles ON COMMIT DROP AS
SELECT a.id, ingest.without_userinfo(a.url) AS url
FROM user_info_articles a
WHERE ingest.without_userinfo(a.url) <> a.url;

-- Where each would go: the article stored at its cleaned URL (which has no user-info, so is
-- not being cleaned), else the one whose URL form it is (itself aside), else the first of
-- those cleaned to it; nowhere (NULL) for that first one when no other article has the URL.
CREATE TEMPORARY TABLE next_articles ON COMMIT DROP AS
SELECT c.id,
       COALESCE(
           (SELECT a.id FROM ingest.articles a WHERE a.url_hash = ingest.url_hash(c.url)),
           (SELECT u.article_id FROM ingest.article_urls u
            WHERE u.url_hash = ingest.url_hash(c.url) AND u.article_id <> c.id),
           NULLIF(min(c.id) OVER (PARTITION BY c.url), c.id)) AS next
FROM cleaned_articles c;
ANALYZE next_articles;

-- gone -> kept: each followed to where its way ends, an article going nowhere (kept as it is,
-- or cleaned in place); a way that comes round to an article already on it ends at the lowest
-- id of that round.
CREATE TEMPORARY TABLE merged_articles ON COMMIT DROP AS
WITH RECURSIVE walk (id, at, path) AS (
    SELECT n.id, n.next, ARRAY[n.id] FROM next_articles n WHERE n.next IS NOT NULL
    UNION ALL
    SELECT w.id, n.next, w.path || w.at
    FROM walk w
    JOIN next_articles n ON n.id = w.at
    WHERE n.next IS NOT NULL AND w.at <> ALL (w.path))
SELECT DISTINCT ON (w.id)
       w.id AS gone,
       CASE WHEN w.at = ANY (w.path)
            THEN (SELECT min(x) FROM unnest(w.path[array_position(w.path, w.at):]) AS x)
            ELSE w.at END AS kept
FROM walk w
ORDER BY w.id, cardinality(w.path) DESC;
DELETE FROM merged_articles WHERE gone = kept;
ANALYZE merged_articles;

-- The URL forms without user-info of every article cleaned, for the article that keeps them.
CREATE TEMPORARY TABLE cleaned_forms ON COMMIT DROP AS
SELECT DISTINCT COALESCE(m.kept, a.id) AS article_id, ingest.without_userinfo(f.form) AS url
FROM user_info_articles a
LEFT JOIN merged_articles m ON m.gone = a.id
CROSS JOIN LATERAL (VALUES (a.url), (a.original_url)) AS f (form)
WHERE strpos(f.form, '@') > 0 AND ingest.without_userinfo(f.form) <> f.form;

UPDATE ingest.feed_entries e SET article_id = m.kept
FROM merged_articles m
WHERE e.article_id = m.gone;

UPDATE ingest.article_urls u SET article_id = m.kept
FROM merged_articles m
WHERE u.article_id = m.gone;

-- A membership alone (feed_id) is no update (sql/0013): not announced.
UPDATE ingest.articles k SET feed_id = g.feed_id
FROM (SELECT DISTINCT ON (m.kept) m.kept, a.feed_id
      FROM merged_articles m
      JOIN ingest.articles a ON a.id = m.gone
      WHERE a.feed_id IS NOT NULL
      ORDER BY m.kept, m.gone) AS g
WHERE k.id = g.kept AND k.feed_id IS NULL;

-- The copies of the merged articles, re-pointed as prune_repoint_copies (sql/queries.sql) does.
CREATE TEMPORARY TABLE repointed_articles ON COMMIT DROP AS
WITH heirs AS (
    SELECT DISTINCT ON (a.duplicate_of) a.duplicate_of AS gone, a.id AS heir
    FROM ingest.articles a
    WHERE a.duplicate_of IN (SELECT gone FROM merged_articles)
      AND a.id NOT IN (SELECT gone FROM merged_articles)
    ORDER BY a.duplicate_of, a.published_at, a.id)
SELECT a.id, NULLIF(h.heir, a.id) AS duplicate_of
FROM ingest.articles a
JOIN heirs h ON h.gone = a.duplicate_of
WHERE a.id NOT IN (SELECT gone FROM merged_articles);
ANALYZE repointed_articles;

-- One rewrite of each article left that changes: its URLs without user-info and its
-- duplicate_of re-pointed together, one change row.
UPDATE ingest.articles a
SET url = ingest.without_userinfo(a.url),
    original_url = ingest.without_userinfo(a.original_url),
    image_url = ingest.without_userinfo(a.image_url),
    duplicate_of = CASE WHEN r.id IS NULL THEN a.duplicate_of ELSE r.duplicate_of END
FROM (SELECT id FROM repointed_articles
      UNION
      SELECT id FROM user_info_articles)
     AS t
LEFT JOIN repointed_articles r ON r.id = t.id
WHERE a.id = t.id AND a.id NOT IN (SELECT gone FROM merged_articles);

DELETE FROM ingest.article_changes WHERE article_id IN (SELECT gone FROM merged_articles);
DELETE FROM ingest.articles WHERE id IN (SELECT gone FROM merged_articles);

INSERT INTO ingest.article_urls (url_hash, article_id)
SELECT ingest.url_hash(url), article_id FROM cleaned_forms
ON CONFLICT (url_hash) DO NOTHING;

-- A backfill's queue: a page queued at its URL with user-info beside the same page queued
-- without it (or with another) in the same run is one page, the row without it kept (else the
-- first queued).
DELETE FROM ingest.backfill_urls b
WHERE strpos(b.url, '@') > 0 AND ingest.without_userinfo(b.url) <> b.url
  AND EXISTS (SELECT 1 FROM ingest.backfill_urls o
              WHERE o.run_id = b.run_id
                AND o.url_hash = ingest.url_hash(ingest.without_userinfo(b.url)));
DELETE FROM ingest.backfill_urls b
USING (SELECT run_id, seq,
              row_number() OVER (PARTITION BY run_id, ingest.without_userinfo(url) ORDER BY seq)
                  AS n
       FROM ingest.backfill_urls
       WHERE strpos(url, '@') > 0 AND ingest.without_userinfo(url) <> url) AS r
WHERE b.run_id = r.run_id AND b.seq = r.seq AND r.n > 1;
UPDATE ingest.backfill_urls
SET url = ingest.without_userinfo(url),
    entry = entry
        || CASE WHEN jsonb_typeof(entry -> 'link') = 'string'
                THEN jsonb_build_object('link', ingest.without_userinfo(entry ->> 'link'))
                ELSE '{}' END
        || CASE WHEN jsonb_typeof(entry -> 'image_url') = 'string'
                THEN jsonb_build_object('image_url', ingest.without_userinfo(entry ->> 'image_url'))
                ELSE '{}' END
WHERE (strpos(url, '@') > 0 AND ingest.without_userinfo(url) <> url)
   OR (jsonb_typeof(entry -> 'link') = 'string' AND strpos(entry ->> 'link', '@') > 0
       AND ingest.without_userinfo(entry ->> 'link') <> entry ->> 'link')
   OR (jsonb_typeof(entry -> 'image_url') = 'string' AND strpos(entry ->> 'image_url', '@') > 0
       AND ingest.without_userinfo(entry ->> 'image_url') <> entry ->> 'image_url');
