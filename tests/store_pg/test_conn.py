"""A PostgreSQL store connection behaves as the store's ``Conn`` protocol says."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from crm.errors import StoreUnavailable
from crm.store.pg import PostgresEngine, qmark_to_pyformat
from tests.store_pg.together import run_together


def test_qmark_placeholders_become_pyformat_outside_quoted_text():
    sql = """SELECT '?', "a?b", ? -- why?
    /* what? 100% */ FROM t WHERE x LIKE '%' || ? ESCAPE '\\' AND y = 'it''s ?'"""
    assert qmark_to_pyformat(sql) == (
        """SELECT '?', "a?b", %s -- why?
    /* what? 100%% */ FROM t WHERE x LIKE '%%' || %s ESCAPE '\\' AND y = 'it''s ?'"""
    )


def test_store_sql_with_question_marks_and_percent_signs_runs_as_written(pg_conn):
    pg_conn.execute("INSERT INTO meta (key, value) VALUES (?, ?), ('what?', '100%')", ("pct", "50% off?"))
    rows = pg_conn.execute(
        "SELECT key, value, '?' AS q FROM meta WHERE value LIKE ? ESCAPE '\\' OR key = 'what?' ORDER BY key",
        ("%\\%%",),
    ).fetchall()
    assert rows == [("pct", "50% off?", "?"), ("what?", "100%", "?")]


def _keys(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT key FROM meta ORDER BY key").fetchall()]


def test_savepoints_nest_inside_a_write_transaction(pg_engine):
    writer, reader = pg_engine.connect(), pg_engine.connect()
    try:
        writer.begin()
        writer.execute("INSERT INTO meta (key) VALUES (?)", ("a",))
        writer.execute("SAVEPOINT s1")
        writer.execute("INSERT INTO meta (key) VALUES (?)", ("b",))
        writer.execute("SAVEPOINT s2")
        writer.execute("INSERT INTO meta (key) VALUES (?)", ("c",))
        writer.execute("RELEASE SAVEPOINT s2")
        writer.execute("ROLLBACK TO SAVEPOINT s1")  # undoes b and c
        writer.execute("RELEASE SAVEPOINT s1")
        writer.execute("SAVEPOINT s1")
        writer.execute("INSERT INTO meta (key) VALUES (?)", ("d",))
        writer.execute("RELEASE SAVEPOINT s1")
        assert _keys(reader) == []  # nothing visible before the outer commit
        writer.commit()
        assert _keys(reader) == ["a", "d"]
    finally:
        writer.close()
        reader.close()


def test_a_rolled_back_transaction_leaves_nothing(pg_conn):
    pg_conn.begin()
    pg_conn.execute("INSERT INTO meta (key) VALUES (?)", ("gone",))
    pg_conn.rollback()
    assert _keys(pg_conn) == []
    pg_conn.rollback()  # no transaction: nothing to do, no error


def test_closing_with_an_open_transaction_rolls_it_back_and_returns_the_connection(pg_migrated_url):
    engine = PostgresEngine(pg_migrated_url, min_size=1, max_size=1, pool_wait_s=2)
    try:
        conn = engine.connect()
        conn.begin()
        conn.execute("INSERT INTO meta (key) VALUES (?)", ("half",))
        conn.close()
        conn.close()  # idempotent
        again = engine.connect()  # the pool's only connection, back and idle
        try:
            assert not again.in_transaction
            assert _keys(again) == []
        finally:
            again.close()
        with pytest.raises(StoreUnavailable, match="closed"):
            conn.execute("SELECT 1")
    finally:
        engine.close()


def test_a_thousand_connects_and_closes_do_not_leak_connections(pg_migrated_url):
    engine = PostgresEngine(pg_migrated_url, min_size=1, max_size=2, pool_wait_s=2)
    try:
        for i in range(1000):
            conn = engine.connect()
            try:
                if i % 100 == 0:
                    conn.begin()  # some left mid-transaction, as an exception would
                conn.execute("SELECT ?", (i,)).fetchone()
            finally:
                conn.close()
        stats = engine.pool.get_stats()
        assert stats["pool_size"] <= 2
        assert stats.get("requests_errors", 0) == 0
        with psycopg.connect(pg_migrated_url) as probe:
            db = pg_migrated_url.rsplit("/", 1)[1]
            open_count = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (db,)
            ).fetchone()[0]
        assert open_count <= 2
    finally:
        engine.close()


def test_an_exhausted_pool_says_so_instead_of_hanging(pg_migrated_url):
    engine = PostgresEngine(pg_migrated_url, min_size=1, max_size=1, pool_wait_s=0.3)
    held = engine.connect()
    try:
        # Another thread (one holding no connection: a nested open gets its own, see below).
        errors = run_together(engine.connect, 1)
        assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable)
        assert "No PostgreSQL connection free" in str(errors[0])
    finally:
        held.close()
        engine.close()


def test_driver_errors_become_store_unavailable_and_the_connection_stays_usable(pg_conn):
    with pytest.raises(StoreUnavailable, match="no_such_table"):
        pg_conn.execute("SELECT * FROM no_such_table")
    assert pg_conn.execute("SELECT 1 + ?", (1,)).fetchone() == (2,)


def test_executemany_writes_every_row(pg_conn):
    pg_conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", ([f"k{i}", str(i)] for i in range(50)))
    assert pg_conn.execute("SELECT count(*) FROM meta").fetchone() == (50,)


def test_wait_s_bounds_how_long_a_writer_waits_for_another_writers_lock(pg_engine):
    holder = pg_engine.connect()
    waiter = pg_engine.connect(wait_s=0.2)
    try:
        holder.execute("INSERT INTO meta (key, value) VALUES ('lease', 'a')")
        holder.begin()
        holder.execute("UPDATE meta SET value = 'b' WHERE key = 'lease'")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="lock timeout"):
            waiter.execute("UPDATE meta SET value = 'c' WHERE key = 'lease'")
        assert time.monotonic() - started < 5
    finally:
        holder.close()
        waiter.close()
    # Returned to the pool with the default back: the next borrower waits as long as it needs.
    conns = [pg_engine.connect() for _ in range(4)]
    try:
        settings = {c.execute("SHOW lock_timeout").fetchone()[0] for c in conns}
        assert settings == {"0"}
    finally:
        for c in conns:
            c.close()


def test_table_columns_lists_columns_in_table_order(pg_conn):
    assert pg_conn.table_columns("meta") == ["key", "value"]
    assert pg_conn.table_columns("no_such_table") == []


def test_add_column_maps_sqlite_affinities_and_tolerates_an_existing_column(pg_conn):
    pg_conn.add_column("contacts", "score", "REAL")
    pg_conn.add_column("contacts", "visits", "INTEGER")
    pg_conn.add_column("contacts", "pronouns", "TEXT")
    pg_conn.add_column("contacts", "pronouns", "TEXT")  # learnt again: no error
    assert pg_conn.table_columns("contacts")[-3:] == ["score", "visits", "pronouns"]
    types = dict(
        pg_conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'contacts' "
            "AND column_name IN ('score', 'visits', 'pronouns')"
        ).fetchall()
    )
    assert types == {"score": "double precision", "visits": "bigint", "pronouns": "text"}
    pg_conn.execute("INSERT INTO contacts (id, score, visits) VALUES (?, ?, ?)", ("1", 2.5, 3))
    assert pg_conn.execute("SELECT score, visits FROM contacts").fetchone() == (2.5, 3)
    with pytest.raises(ValueError, match="affinity"):
        pg_conn.add_column("contacts", "bad", "BLOB")


def test_connections_learning_the_same_property_at_once_all_succeed(pg_engine):
    def learn() -> None:
        conn = pg_engine.connect()
        try:
            conn.add_column("deals", "forecast_bucket", "TEXT")
        finally:
            conn.close()

    assert run_together(learn, 4) == []
    conn = pg_engine.connect()
    try:
        assert conn.table_columns("deals").count("forecast_bucket") == 1
    finally:
        conn.close()


def test_parameters_and_numbers_behave_as_they_do_on_sqlite(pg_conn):
    pg_conn.executemany(
        "INSERT INTO contacts (id, archived, firstname) VALUES (?, ?, ?)",
        [(101, True, "A"), (102, False, "B"), ("103", 0, "C")],
    )
    # an int against a text column, a bool against an INTEGER 0/1 column, ints for LIMIT
    assert pg_conn.execute("SELECT firstname FROM contacts WHERE id = ?", (101,)).fetchone() == ("A",)
    assert pg_conn.execute(
        "SELECT id FROM contacts WHERE archived = ? ORDER BY id LIMIT ? OFFSET ?", (False, 5, 0)
    ).fetchall() == [("102",), ("103",)]
    total, mean, count = pg_conn.execute(
        "SELECT sum(archived), avg(archived), count(*) FROM contacts"
    ).fetchone()
    assert (total, count) == (1, 3) and type(total) is int
    assert mean == pytest.approx(1 / 3) and type(mean) is float


def test_threads_holding_every_pooled_connection_can_still_open_a_second_one(pg_migrated_url):
    """A nested open (a token read inside an open store) must not wait on a pool that only
    threads waiting for their own second connection could give back."""
    engine = PostgresEngine(pg_migrated_url, max_size=2, pool_wait_s=5)
    barrier = threading.Barrier(2, timeout=30)
    seen: list[str] = []

    def nested() -> None:
        outer = engine.connect()
        try:
            barrier.wait()  # both pooled connections are held now
            inner = engine.connect()
            try:
                seen.append(inner.execute("SELECT 'inner'").fetchone()[0])
            finally:
                inner.close()
        finally:
            outer.close()

    try:
        # Before: each waited out the pool (5 s here) and failed with StoreUnavailable.
        assert run_together(nested, 2) == []
        assert seen == ["inner", "inner"]
        # The extra connections were closed, and the pool serves as before.
        assert engine.pool.get_stats()["pool_size"] <= 2
        conn = engine.connect()
        conn.close()
    finally:
        engine.close()
