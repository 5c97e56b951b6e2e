-- news.feeds.site_url is the feed's own link to its site, which a private feed may give with
-- its token too (`https://host/?token=...`, `https://reader:pw@host/`): shown by the rule of
-- feed URLs now (ingest.redacted_url: no user-info, the value of each query parameter named as
-- a credential as `***`); ingest.feeds keeps it as given. The articles' own URLs are still
-- shown as stored: a scan of news.articles (an export, a lookup by URL, which no index serves)
-- would compute the rule for every row, 5 to 28 microseconds each against 0.2 for the column,
-- 25 to 140 times the cost of the read, for a token that only a private feed echoing it into
-- its links puts there.

CREATE OR REPLACE VIEW news.feeds AS
SELECT f.id,
       ingest.redacted_url(f.url) AS url,
       f.title,
       ingest.redacted_url(f.site_url) AS site_url,
       f.active,
       f.added_at,
       f.last_fetched_at,
       f.next_fetch_at,
       f.last_status,
       ingest.redacted_text(f.last_error) AS last_error,
       f.consecutive_failures,
       ingest.redacted_text(f.inactive_reason) AS inactive_reason,
       f.failing_since,
       f.publish_interval,
       f.kind,
       f.text_mode,
       f.full_text,
       f.full_text_evidence,
       f.tags,
       f.settings - 'headers' AS settings
FROM ingest.feeds f;
