-- Full-text feeds that cut their entries' texts at one length without marking the cut: the
-- length at which a poll's longest texts were seen to stop (ingest/fulltext.py, `pile_up`), in
-- words and in characters, 0 where none was seen. An entry whose text is that long has its
-- page fetched, as an excerpt's is. Internal: news.feeds does not show them.

ALTER TABLE ingest.feeds
    ADD COLUMN full_text_cap_words integer NOT NULL DEFAULT 0
        CONSTRAINT feeds_full_text_cap_words CHECK (full_text_cap_words >= 0),
    ADD COLUMN full_text_cap_chars integer NOT NULL DEFAULT 0
        CONSTRAINT feeds_full_text_cap_chars CHECK (full_text_cap_chars >= 0);
