"""An engine on a fresh, migrated PostgreSQL database per test (tests/pgcluster.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm.store.pg import PgConn, PostgresEngine


@pytest.fixture
def pg_engine(pg_migrated_url: str) -> Iterator[PostgresEngine]:
    engine = PostgresEngine(pg_migrated_url, max_size=4)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def pg_conn(pg_engine: PostgresEngine) -> Iterator[PgConn]:
    conn = pg_engine.connect()
    try:
        yield conn
    finally:
        conn.close()
