-- A news sitemap followed as a feed keeps the URLs of its own site and of the site that named
-- it (news.feeds.site_url); a sitemap registered before that rule, hosted elsewhere
-- than its site (a CDN named by the site's robots.txt), has no site_url, and its polls would
-- keep nothing of its site's. Its site is read from what it listed: the host most of the
-- articles it led to are on, where that is not the sitemap's own (the sitemap's own host needs
-- no site_url). A sitemap that led to no article is left as it is: `ingest feeds add` of the
-- site that names it records it (and the polls log `sitemap_urls_elsewhere` meanwhile).
UPDATE ingest.feeds f
SET site_url = s.site
FROM (
    SELECT DISTINCT ON (e.feed_id)
           e.feed_id,
           lower(substring(a.url FROM '^([A-Za-z][A-Za-z0-9+.-]*)://')) || '://'
               || ingest.url_host(a.url) || '/' AS site
    FROM ingest.feeds sf
    JOIN ingest.feed_entries e ON e.feed_id = sf.id
    JOIN ingest.articles a ON a.id = e.article_id
    WHERE sf.kind = 'sitemap' AND sf.site_url IS NULL AND ingest.url_host(a.url) IS NOT NULL
    GROUP BY e.feed_id, 2
    ORDER BY e.feed_id, count(*) DESC, 2
) s
WHERE f.id = s.feed_id
  AND f.site_url IS NULL
  AND ingest.url_host(s.site) IS DISTINCT FROM ingest.url_host(f.url);
