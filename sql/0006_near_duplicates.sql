-- Near-duplicate detection: each article's MinHash signature, and its LSH band keys in a GIN
-- index, so that any replica finds an article's candidate copies with one index lookup.

ALTER TABLE ingest.articles
    ADD COLUMN minhash   bytea,
    ADD COLUMN lsh_bands bigint[];

CREATE INDEX articles_lsh_bands_idx ON ingest.articles USING gin (lsh_bands);
