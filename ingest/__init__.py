"""news-ingest: RSS/Atom feeds in, clean articles in PostgreSQL."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/news-ingest/news-ingest"
USER_AGENT = f"news-ingest/{__version__} (+{PROJECT_URL})"
