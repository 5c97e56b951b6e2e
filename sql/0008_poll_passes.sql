-- When a feed's last poll outcome was recorded, by the database's clock: a pass over every feed
-- (`ingest run --once --all`) claims the feeds not polled since it started, least recently
-- polled first (an index on polled_at), instead of sending the ever longer list of feeds it has
-- done with every claim.

ALTER TABLE ingest.feeds ADD COLUMN polled_at timestamptz;

CREATE INDEX feeds_polled_idx ON ingest.feeds (polled_at NULLS FIRST);
