"""Prometheus metrics of the service process (scraped from `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FEEDS_POLLED = Counter("ingest_feeds_polled", "Feeds polled, by outcome", ["status"])
ARTICLES_NEW = Counter("ingest_articles_new", "Articles stored for the first time")
PAGE_FALLBACKS = Counter(
    "ingest_page_fallbacks", "Articles stored from feed text because their page was unusable"
)
FEED_SECONDS = Histogram(
    "ingest_feed_duration_seconds",
    "Time to process one feed, fetch to store",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
