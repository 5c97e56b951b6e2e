-- The date of a feed's newest dated entry, as of its last parse. A feed that has gone quiet is
-- polled more slowly the longer it says nothing new (the time since its newest entry,
-- ingest/schedule.py); its 304s and byte-identical bodies are not parsed, so the poll that
-- finds nothing new reads that date here instead.

ALTER TABLE ingest.feeds ADD COLUMN newest_entry_at timestamptz;
