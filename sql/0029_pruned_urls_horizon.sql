-- Retention (`ingest prune`): the URL forms of pruned articles (sql/0023) are remembered for a
-- horizon (`--forget-pruned-after`, a year by default), not for ever: each prune forgets those
-- pruned longer ago, oldest first, in batches. This index finds them without reading the
-- whole table.

CREATE INDEX pruned_urls_pruned_at ON ingest.pruned_urls (pruned_at);
