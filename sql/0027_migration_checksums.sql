-- Each applied migration is recorded with the SHA-256 (hex) of its file, so that a released
-- file edited afterwards is noticed: `ingest migrate` and every command that migrates refuse
-- to go on, naming the file, instead of running on a schema the file no longer describes.
-- Rows recorded before this column existed have NULL here; the next start fills them from the
-- files as they are then.

ALTER TABLE ingest.schema_migrations ADD COLUMN checksum text;
