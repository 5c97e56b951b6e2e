"""Prometheus metrics of the service process (scraped from `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FEEDS_POLLED = Counter("ingest_feeds_polled", "Feeds polled, by outcome", ["status"])
ARTICLES_NEW = Counter("ingest_articles_new", "Articles stored for the first time")
ARTICLES_UPDATED = Counter(
    "ingest_articles_updated", "Stored articles updated in place because their page changed"
)
PAGE_FALLBACKS = Counter(
    "ingest_page_fallbacks", "Articles stored from feed text because their page was unusable"
)
FETCH_SECONDS = Histogram(
    "ingest_fetch_duration_seconds",
    "Time of one HTTP request, redirects and body included (waiting for host slots excluded)",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FEED_SECONDS = Histogram(
    "ingest_feed_duration_seconds",
    "Time to process one feed, fetch to store",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ERRORS = Counter("ingest_errors", "Feed failures, by error kind", ["kind"])
FEEDS_OVERDUE = Gauge("ingest_feeds_overdue", "Feeds past their due time and not being worked on")
OVERDUE_LAG = Gauge("ingest_overdue_lag_seconds", "How late the most overdue feed is")
EXTRACT_SECONDS = Histogram(
    "ingest_extract_duration_seconds",
    "Time to extract one page in a worker process, queueing included",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DUPLICATES = Counter("ingest_duplicates", "New articles whose body duplicates an earlier article's")
