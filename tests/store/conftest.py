"""The Store on a fresh database, shared by the store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ingest.store import Store
from ingest.store.db import make_pool


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = make_pool(database_url, max_size=6)
    await pool.open(wait=True, timeout=15)
    try:
        yield Store(pool)
    finally:
        await pool.close()
