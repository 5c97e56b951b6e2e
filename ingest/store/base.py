"""What every part of the store shares: the named queries of `sql/queries.sql`, the one place
where driver errors become `StoreError`, and the connection pool."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.errors import StoreError

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def queries() -> dict[str, str]:
    text = resources.files("ingest.sql").joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


@asynccontextmanager
async def wrap_exceptions() -> AsyncIterator[None]:
    try:
        yield
    except PoolTimeout as e:
        raise StoreError(f"database unreachable: {e}") from e
    except psycopg.errors.ReadOnlySqlTransaction as e:
        # A replica, or a database set so: the operator's to fix, not the data's.
        raise StoreError(
            "the database is read-only (a hot standby replica, or default_transaction_read_only"
            f" set): {first_line(e)}"
        ) from e
    except psycopg.Error as e:
        raise StoreError(f"{type(e).__name__}: {first_line(e)}") from e


def unreachable(e: BaseException) -> bool:
    """Whether a store error is the database's rather than the data's (no connection, a
    connection lost, and psycopg's other operational errors: lock or statement timeouts, a
    full disk, a deadlock that outlived its retries): writing the same rows again in smaller
    parts would fail alike, or is not worth the time."""
    return isinstance(e, StoreError) and isinstance(
        e.__cause__, (PoolTimeout, psycopg.OperationalError)
    )


def refused(e: BaseException) -> bool:
    """Whether a store error is the rows' own: the database refused their values
    (`REFUSED_VALUES`: a value out of range, text it cannot hold, a check or not-null
    constraint), so that the same rows fail alike however often they are written. Not a
    unique or foreign key violation: that depends on other rows, which another transaction may
    have added or removed meanwhile (a feed registered at the URL a feed moves to, a feed
    removed while its articles are written), and the same rows can go in at the next try. Nor
    a statement the schema does not know (a migration not applied) or any error of the
    database itself."""
    return isinstance(e, StoreError) and isinstance(e.__cause__, REFUSED_VALUES)


REFUSED_VALUES = (
    psycopg.DataError,
    psycopg.errors.ProgramLimitExceeded,
    psycopg.errors.CheckViolation,
    psycopg.errors.NotNullViolation,
)
"""Errors that belong to a row's own values (a value out of range, text the database cannot
hold, an index row too large, a check or not-null constraint): the same row fails alike at
every try, and the others written with it need not. `refused`, and the article store's
row-by-row writes, go by it."""


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class StoreBase:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _all(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with wrap_exceptions(), self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(queries()[name], params)
            return await cur.fetchall() if cur.description else []
