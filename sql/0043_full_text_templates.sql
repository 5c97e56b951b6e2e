-- Texts a full-text feed was seen to carry in place of more than one story (a template: a
-- newsletter's blurb, a paywall notice; ingest/fulltext.py, `shared`), as digests of the text
-- without its links, the latest first, a few at most. An entry of a later poll carrying one of
-- them, alone or as an update of its entry, has its page fetched, as an excerpt's is. Internal:
-- news.feeds does not show them.

ALTER TABLE ingest.feeds
    ADD COLUMN full_text_templates bytea[] NOT NULL DEFAULT '{}';
