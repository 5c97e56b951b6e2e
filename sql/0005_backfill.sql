-- Backfills (`ingest backfill`): each run with its checkpoint, the sources it walks (feed pages,
-- sitemaps) and the article URLs it queues; and the feed source kind: a site with no feed but a
-- news sitemap is followed through that sitemap as if it were a feed.

ALTER TABLE ingest.feeds
    ADD COLUMN kind text NOT NULL DEFAULT 'feed' CHECK (kind IN ('feed', 'sitemap'));

CREATE OR REPLACE VIEW news.feeds AS
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
       f.consecutive_failures,
       f.inactive_reason,
       f.failing_since,
       f.publish_interval,
       f.kind
FROM ingest.feeds f;

-- One row per backfill, identified by run_key: a hash of its target, date range and source
-- options. Starting the same backfill again finds this row and resumes it.
CREATE TABLE ingest.backfill_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_key     bytea NOT NULL,
    target      text NOT NULL,
    since       timestamptz,
    until       timestamptz,           -- exclusive
    options     jsonb NOT NULL DEFAULT '{}',
    feed_id     bigint REFERENCES ingest.feeds (id) ON DELETE SET NULL,
    seeded      boolean NOT NULL DEFAULT false,  -- the target's sources are recorded
    discovered  boolean NOT NULL DEFAULT false,  -- every source walked, the URL list final
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT backfill_runs_run_key_key UNIQUE (run_key)
);

-- Documents a run walks to find article URLs: feed pages (the feed, its RFC 5005 next /
-- prev-archive pages, WordPress ?paged=N pages) and sitemaps (indexes and URL sets).
CREATE TABLE ingest.backfill_sources (
    run_id     bigint NOT NULL REFERENCES ingest.backfill_runs (id) ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    url        text NOT NULL,
    url_hash   bytea GENERATED ALWAYS AS (ingest.url_hash(url)) STORED,
    kind       text NOT NULL CHECK (kind IN ('feed', 'sitemap')),
    state      text NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'done', 'failed', 'skipped')),
    found      integer NOT NULL DEFAULT 0,     -- article URLs it added to the run
    error      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, url_hash)
);
CREATE INDEX backfill_sources_pending_idx ON ingest.backfill_sources (run_id, seq)
    WHERE state = 'pending';

-- Article URLs of a run (canonical form) and where each one stands. `entry` keeps what the
-- source said about it (feed entry fields, or a news sitemap's title and date) so the article
-- can be built after a restart; `rank` is the fetch order, fixed once discovery is complete.
CREATE TABLE ingest.backfill_urls (
    run_id     bigint NOT NULL REFERENCES ingest.backfill_runs (id) ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    url        text NOT NULL,
    url_hash   bytea GENERATED ALWAYS AS (ingest.url_hash(url)) STORED,
    source     text NOT NULL CHECK (source IN ('feed', 'sitemap', 'list')),
    entry      jsonb NOT NULL DEFAULT '{}',
    entry_hash bytea,
    dated_at   timestamptz,
    rank       integer,
    state      text NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'done', 'failed', 'skipped')),
    -- done: new | existing; skipped: range | undated | limit | known; failed: the error below
    reason     text,
    retryable  boolean NOT NULL DEFAULT false,
    attempts   smallint NOT NULL DEFAULT 0,
    error      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, url_hash)
);
CREATE INDEX backfill_urls_pending_idx ON ingest.backfill_urls (run_id, rank)
    WHERE state = 'pending';
