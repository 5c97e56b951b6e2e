-- Feeds, their schedule state, and articles. Internal tables live in schema `ingest`;
-- consumers read the views in schema `news` (see README, "The SQL contract").

CREATE SCHEMA IF NOT EXISTS ingest;
CREATE SCHEMA IF NOT EXISTS news;

-- Key for URL uniqueness: URLs can exceed what a btree entry holds, their hashes cannot.
-- convert_to() is only STABLE because it depends on the database encoding, which never changes
-- for a database, so declaring the wrapper IMMUTABLE is sound and lets it index.
CREATE FUNCTION ingest.url_hash(url text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN sha256(convert_to(url, 'UTF8'));

CREATE TABLE ingest.feeds (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                  text NOT NULL,
    url_hash             bytea GENERATED ALWAYS AS (ingest.url_hash(url)) STORED,
    title                text,
    site_url             text,
    active               boolean NOT NULL DEFAULT true,
    added_at             timestamptz NOT NULL DEFAULT now(),
    -- schedule state
    next_fetch_at        timestamptz NOT NULL DEFAULT now(),
    last_fetched_at      timestamptz,
    last_status          text CHECK (last_status IN ('ok', 'not_modified', 'error')),
    last_error           text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    etag                 text,
    last_modified        text,
    body_hash            bytea,
    -- claim: a replica holds a feed until lease_expires_at
    lease_owner          text,
    lease_expires_at     timestamptz,
    CONSTRAINT feeds_url_hash_key UNIQUE (url_hash)
);
CREATE INDEX feeds_due_idx ON ingest.feeds (next_fetch_at) WHERE active;

CREATE TABLE ingest.articles (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                text NOT NULL,
    url_hash           bytea GENERATED ALWAYS AS (ingest.url_hash(url)) STORED,
    original_url       text NOT NULL,
    feed_id            bigint REFERENCES ingest.feeds (id) ON DELETE SET NULL,
    guid               text,
    site               text NOT NULL,
    title              text,
    text               text NOT NULL,
    author             text,
    published_at       timestamptz NOT NULL,
    published_source   text NOT NULL CHECK (published_source IN ('feed', 'page', 'first_seen')),
    modified_at        timestamptz,
    language           text,
    image_url          text,
    summary            text,
    content_hash       bytea NOT NULL,
    text_source        text NOT NULL CHECK (text_source IN ('page', 'feed')),
    extraction_error   text,
    duplicate_of       bigint REFERENCES ingest.articles (id) ON DELETE SET NULL,
    fetched_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT articles_url_hash_key UNIQUE (url_hash)
);
CREATE INDEX articles_content_hash_idx ON ingest.articles (content_hash);
CREATE INDEX articles_published_at_idx ON ingest.articles (published_at DESC);
CREATE INDEX articles_feed_id_idx ON ingest.articles (feed_id);

-- Every URL form that led to an article (entry link, final response URL, rel=canonical), so an
-- entry already stored is recognised before its page is fetched again.
CREATE TABLE ingest.article_urls (
    url_hash   bytea PRIMARY KEY,
    article_id bigint NOT NULL REFERENCES ingest.articles (id) ON DELETE CASCADE
);
CREATE INDEX article_urls_article_id_idx ON ingest.article_urls (article_id);

-- Entries seen per feed, keyed by a hash of the entry's guid (or link when it has none).
CREATE TABLE ingest.feed_entries (
    feed_id       bigint NOT NULL REFERENCES ingest.feeds (id) ON DELETE CASCADE,
    entry_hash    bytea NOT NULL,
    article_id    bigint REFERENCES ingest.articles (id) ON DELETE CASCADE,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed_id, entry_hash)
);

CREATE VIEW news.feeds AS
SELECT f.id,
       f.url,
       f.title,
       f.site_url,
       f.active,
       f.added_at,
       f.last_fetched_at,
       f.next_fetch_at,
       f.last_status,
       f.last_error,
       f.consecutive_failures
FROM ingest.feeds f;

CREATE VIEW news.articles AS
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
       a.guid
FROM ingest.articles a
LEFT JOIN ingest.feeds f ON f.id = a.feed_id;

COMMENT ON VIEW news.articles IS 'One row per canonical article URL. Stable contract: see README.';
COMMENT ON VIEW news.feeds IS 'Feeds and their polling state. Stable contract: see README.';
