-- Each person of a byline as an array element (author stays their ", "-joined form), and the
-- article's topics: the feed's categories, the page's article:tag and JSON-LD keywords.
-- Both appended to news.articles; the view only grows.

ALTER TABLE ingest.articles
    ADD COLUMN authors text[] NOT NULL DEFAULT '{}',
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- Rows stored before keep authors = '{}': their byline was never split into people, and
-- rewriting every row here would hold the table's lock for the whole rewrite. Adding a column
-- with a constant default rewrites nothing.

CREATE OR REPLACE VIEW news.articles AS
SELECT a.id,
       a.url,
       a.title,
       a.text,
       a.author,
       a.published_at,
       a.published_source,
       a.modified_at,
       a.language,
       a.fetched_at,
       a.duplicate_of,
       a.original_url,
       a.site,
       a.feed_id,
       f.url AS feed_url,
       a.image_url,
       a.summary,
       encode(a.content_hash, 'hex') AS content_hash,
       a.text_source,
       a.extraction_error,
       a.guid,
       a.updated_at,
       a.authors,
       a.tags
FROM ingest.articles a
LEFT JOIN ingest.feeds f ON f.id = a.feed_id;

-- Consumers filter by topic: `WHERE tags @> ARRAY['Klima']`.
CREATE INDEX articles_tags_idx ON ingest.articles USING gin (tags);
