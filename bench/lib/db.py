"""Throwaway `ingest_bench_*` databases on the PostgreSQL server of the tests."""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import psycopg
from psycopg import sql

ADMIN_DSN = os.environ.get("INGEST_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1/postgres")
DB_PREFIX = "ingest_bench_"


def dbname(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn).get("dbname"))


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query.encode(), params).fetchone()
    return row[0] if row else None


SETTINGS = ("server_version", "shared_buffers", "effective_cache_size", "work_mem")
SETTINGS += ("maintenance_work_mem", "max_wal_size", "synchronous_commit", "jit")
SETTINGS += ("gin_pending_list_limit", "max_connections")


def server_settings(admin_dsn: str, prog: str) -> dict[str, str]:
    """The server's version and the settings the figures depend on; exits with a message when
    the server cannot be reached."""
    try:
        with psycopg.connect(admin_dsn, connect_timeout=10) as conn:
            return {n: str(scalar(conn, f"SELECT current_setting('{n}')")) for n in SETTINGS}
    except psycopg.Error as e:
        raise SystemExit(f"{prog}: PostgreSQL not reachable at {admin_dsn!r}: {e}") from None


class Databases:
    """Creates `ingest_bench_*` databases and drops every one of them on exit."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn, self.created = admin_dsn, list[str]()

    def dsn(self, name: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_dsn, dbname=name)

    def admin(self, statement: str, name: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

    def create(self, label: str) -> str:
        self.created.append(name := f"{DB_PREFIX}{label}_{uuid.uuid4().hex[:10]}")
        self.admin("CREATE DATABASE {}", name)
        return self.dsn(name)

    def drop(self, dsn: str) -> None:
        if not (name := dbname(dsn)).startswith(DB_PREFIX):
            raise ValueError(f"refusing to drop {name!r}: not a {DB_PREFIX}* database")
        self.admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
        self.created = [n for n in self.created if n != name]

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.created):
            try:
                self.drop(self.dsn(name))
            except psycopg.Error as e:
                print(f"bench: could not drop database {name}: {e}", file=sys.stderr)
