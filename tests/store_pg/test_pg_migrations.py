"""Migrating a PostgreSQL cache: once, under a lock, to the same schema as SQLite's."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from crm import store
from crm.errors import StoreUnavailable
from crm.store import SCHEMA_VERSION
from crm.store.pg import MIGRATION_LOCK_KEY, PostgresEngine
from crm.store.pg_schema import PG_MIGRATIONS
from tests.store_pg.together import run_together

ROOT = Path(__file__).resolve().parents[2]
_TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision"}


def _wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_every_sqlite_migration_has_a_postgresql_step():
    assert len(PG_MIGRATIONS) == SCHEMA_VERSION


def test_processes_starting_together_wait_for_one_migration(pg_url):
    """Three app processes start against an empty database while the migration lock is
    held; each waits on the lock, then one migrates and the others find the work done."""
    script = "import sys; from crm.store.pg import PostgresEngine; print(PostgresEngine(sys.argv[1]).version)"
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, pg_url],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        try:

            def waiting() -> int:
                row = holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                return int(row[0]) if row else 0

            _wait_for(lambda: waiting() == 3)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        results = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == str(SCHEMA_VERSION)
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_threads_starting_together_all_get_a_migrated_database(pg_url):
    versions: list[int] = []

    def start() -> None:
        engine = PostgresEngine(pg_url, max_size=1)
        versions.append(engine.version)
        engine.close()

    assert run_together(start, 4) == []
    assert versions == [SCHEMA_VERSION] * 4


def _sqlite_schema(path: Path) -> dict[str, object]:
    db = store.open(path).conn
    try:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'contacts_fts%' "
                "AND name NOT LIKE 'interactions_fts%' "
                "AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        ]
        columns = {}
        keys = {}
        for table in tables:
            info = db.execute(f'PRAGMA table_info("{table}")').fetchall()
            # A primary key column is NOT NULL on PostgreSQL whether declared or not.
            columns[table] = [(row[1], _TYPES[row[2]], bool(row[3] or row[5])) for row in info]
            keys[table] = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        indexes = {}
        for name, table in db.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall():
            cols = [row[2] for row in db.execute(f'PRAGMA index_info("{name}")').fetchall()]
            indexes[name] = (table, cols)
        return {"columns": columns, "keys": keys, "indexes": indexes}
    finally:
        db.close()


def _pg_schema(url: str) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                # Search indexes differ by design: SQLite's FTS5 tables, PostgreSQL's words table.
                "AND table_name NOT IN ('schema_version', 'interactions_search')"
            ).fetchall()
        ]
        pg_types = {"text": "text", "bigint": "bigint", "double precision": "double precision"}
        columns = {}
        keys = {}
        for table in tables:
            rows = conn.execute(
                "SELECT column_name, data_type, is_nullable = 'NO' FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            pk = [
                r[0]
                for r in conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
                    "ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    (table,),
                ).fetchall()
            ]
            keys[table] = pk
            columns[table] = [(name, pg_types[kind], bool(notnull)) for name, kind, notnull in rows]
        indexes = {}
        for name, table, definition in conn.execute(
            "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND indexname NOT LIKE '%%_pkey' AND indexname NOT IN ('contacts_search', 'interactions_search_words')"
        ).fetchall():
            cols = definition.split(" USING btree (", 1)[1][:-1]
            indexes[name] = (table, cols)
        return {"columns": columns, "keys": keys, "indexes": indexes}


def test_postgresql_schema_has_the_sqlite_tables_columns_keys_and_indexes(pg_migrated_url, tmp_path):
    sqlite = _sqlite_schema(tmp_path / "crm.db")
    pg = _pg_schema(pg_migrated_url)
    assert pg["columns"] == sqlite["columns"]
    assert pg["keys"] == sqlite["keys"]
    pg_indexes = pg["indexes"]
    assert isinstance(pg_indexes, dict)
    assert set(pg_indexes) == set(sqlite["indexes"])  # type: ignore[arg-type]
    for name, (table, cols) in sqlite["indexes"].items():  # type: ignore[attr-defined]
        pg_table, pg_cols = pg_indexes[name]
        assert pg_table == table
        # Same leading columns; PostgreSQL's updated_at indexes are built in page order and
        # carry the id tie-break SQLite gets from the rowid.
        expected = ", ".join("lower(email)" if c is None else c for c in cols)
        assert pg_cols.replace(" DESC NULLS LAST", "").replace(", id DESC", "") == expected, name


def test_auto_numbered_tables_hand_out_ids(pg_conn):
    ids = [
        pg_conn.execute(
            "INSERT INTO audit_log (at, object_type, result) VALUES (?, ?, ?) RETURNING id",
            ("2025-01-01T00:00:00Z", "contacts", "ok"),
        ).fetchone()[0]
        for _ in range(3)
    ]
    assert ids == [1, 2, 3]


def test_a_database_from_a_newer_app_is_refused_with_a_clear_message(pg_migrated_url):
    with psycopg.connect(pg_migrated_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreUnavailable, match="schema version 99, newer than"):
        PostgresEngine(pg_migrated_url)


def test_an_unreachable_server_is_reported_without_the_password(pg_cluster):
    url = f"postgresql://crm:hunter2secret@127.0.0.1:{pg_cluster.port}/no_such_database"
    with pytest.raises(StoreUnavailable) as caught:
        PostgresEngine(url, connect_timeout_s=1)
    assert "no_such_database" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_a_database_that_cannot_lower_case_unicode_is_refused(pg_cluster):
    pg_cluster.psql("CREATE DATABASE c_locale OWNER crm ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0")
    with pytest.raises(StoreUnavailable, match="UTF-8 locale"):
        PostgresEngine(pg_cluster.url("c_locale"))
