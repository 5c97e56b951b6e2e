-- Articles edited after publication: updated in place (with updated_at), the earlier versions
-- kept in a history table; feed entries remember the entry's own update time, which is what
-- tells that an article changed.

ALTER TABLE ingest.articles ADD COLUMN updated_at timestamptz;
ALTER TABLE ingest.feed_entries ADD COLUMN entry_updated_at timestamptz;

CREATE TABLE ingest.article_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id   bigint NOT NULL REFERENCES ingest.articles (id) ON DELETE CASCADE,
    title        text,
    text         text NOT NULL,
    author       text,
    content_hash bytea NOT NULL,
    modified_at  timestamptz,
    replaced_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_history_article_id_idx ON ingest.article_history (article_id, replaced_at);

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
       a.updated_at
FROM ingest.articles a
LEFT JOIN ingest.feeds f ON f.id = a.feed_id;

CREATE VIEW news.article_history AS
SELECT h.article_id,
       h.title,
       h.text,
       h.author,
       encode(h.content_hash, 'hex') AS content_hash,
       h.modified_at,
       h.replaced_at
FROM ingest.article_history h;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'news_reader') THEN
        GRANT SELECT ON news.article_history TO news_reader;
    END IF;
END
$$;
