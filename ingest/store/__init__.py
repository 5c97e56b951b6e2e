"""PostgreSQL, psycopg only: the connection pool and migrations (`db`), the named queries run
for feeds (`feeds`) and articles (`articles`), backfill runs (`backfill`), and retention
(`retention`: pruning old articles, trimming the change feed). Driver errors
become `StoreError` in one place (`base.wrap_exceptions`)."""

from ingest.store.articles import ArticleStore, StoredCounts, _article_params
from ingest.store.base import queries, refused, unreachable, wrap_exceptions
from ingest.store.feeds import FeedStore
from ingest.store.retention import RetentionStore


class Store(FeedStore, ArticleStore, RetentionStore):
    """Feeds, articles and their retention on one pool."""


__all__ = [
    "Store",
    "StoredCounts",
    "_article_params",
    "queries",
    "refused",
    "unreachable",
    "wrap_exceptions",
]
