-- Each person of a byline as an array element (author stays their ", "-joined form), and the
-- article's topics: the feed's categories, the page's article:tag and JSON-LD keywords.
-- Both appended to news.articles; the view only grows.

ALTER TABLE ingest.articles
    ADD COLUMN authors text[] NOT NULL DEFAULT '{}',
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- Rows stored before: their byline as one element, so that authors is never empty where
-- author is set (and array_to_string(authors, ', ') = author holds for every row). Not an
-- edit of the articles: no change is announced for them.
ALTER TABLE ingest.articles DISABLE TRIGGER articles_updated;
UPDATE ingest.articles SET authors = ARRAY[author] WHERE author IS NOT NULL;
ALTER TABLE ingest.articles ENABLE TRIGGER articles_updated;

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
