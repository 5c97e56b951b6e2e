"""Pipelines in process on a fresh database, and the small documents they are fed."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest.config import Settings
from ingest.fetch import Fetcher
from ingest.pipeline import Pipeline
from ingest.ports import WorkerPool
from ingest.store import Store
from ingest.store.db import make_pool


def local_settings(database_url: str | None = None, **overrides: Any) -> Settings:
    """Loopback allowed, no politeness delay (it has tests of its own), fast failures."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "allow_private_networks": True,
        "host_delay": 0,
        "connect_timeout": 2,
        "read_timeout": 5,
        "request_deadline": 10,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def pipeline_for(
    settings: Settings, workers: WorkerPool, fetcher: Fetcher | None = None
) -> AsyncIterator[Pipeline]:
    """A pipeline on `settings.database_url`, with its own connection pool and fetcher (closed
    on the way out) and a seeded random generator."""
    pool = make_pool(settings.database_url or "")
    await pool.open(wait=True)
    fetcher = fetcher or Fetcher(settings)
    pipeline = Pipeline(settings, Store(pool), fetcher, workers, rng=random.Random(0))
    try:
        yield pipeline
    finally:
        await pipeline.aclose()
        await fetcher.aclose()
        await pool.close()


def rows(database_url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def rss(items: str, *, head: str = "", channel: str = "") -> bytes:
    return (
        f"<?xml version='1.0' encoding='utf-8'?>{head}<rss version='2.0'><channel>"
        f"<title>Hostile</title>{channel}{items}</channel></rss>"
    ).encode()


PARAGRAPH = (
    "The harbour authority said on Thursday that the new ferry terminal would open next spring, "
    "two years later than planned, after a dispute over the cost of the foundations."
)


def article_page(title: str) -> bytes:
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{title}. {PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
    ).encode()


# A consent interstitial, as a site serves it in place of an article (titled otherwise, sharing
# none of its words): not the entry's article.
CONSENT_WALL = (
    "<html><head><title>Before you continue</title>"
    "<meta property='og:title' content='Before you continue to our site'>"
    "<meta name='author' content='Privacy Team'></head><body><main><h1>Before you continue</h1>"
    + "".join(
        f"<p>We and our {k} partners use cookies and data to deliver and maintain our services, "
        "measure audience engagement and statistics, and show personalised advertising. "
        "Select accept all to agree, or reject all to decline the use of cookies.</p>"
        for k in range(4)
    )
    + "<button>Accept all</button><button>Reject all</button></main></body></html>"
)


def fail_first(store: Store, failures: dict[str, int], error: str) -> None:
    """Make each of the store's methods named in `failures` raise `StoreError(error)` (the
    database went away) for its first `failures[name]` calls, counting them down in
    `failures`, and answer as itself after."""
    from ingest.errors import StoreError

    def failing(name: str) -> Any:
        real = getattr(store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if failures[name] > 0:
                failures[name] -= 1
                raise StoreError(error)
            return await real(*args, **kwargs)

        return call

    for name in failures:
        setattr(store, name, failing(name))
