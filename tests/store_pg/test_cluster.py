"""The throwaway PostgreSQL cluster the tests run against (tests/pgcluster.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from crm import store
from crm.store import SCHEMA_VERSION
from crm.store.engine import schema_version
from crm.store.pg import PostgresEngine
from tests.pgcluster import PgCluster, PostgresUnavailable


def test_a_cluster_serves_databases_on_loopback_and_leaves_nothing_behind():
    cluster = PgCluster().start()
    try:
        url = cluster.create_database()
        assert url.startswith(f"postgresql://crm@127.0.0.1:{cluster.port}/")
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (
                "crm",
                False,
            )
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    finally:
        cluster.stop()
    assert not cluster.tmp.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_a_server_that_cannot_start_is_reported_with_its_reason():
    bindir = Path(tempfile.mkdtemp(prefix="fake-pg-"))
    bindir.chmod(0o755)  # readable by the postgres user when the tests run as root
    (bindir / "initdb").write_text("#!/bin/sh\necho 'initdb: out of disk' >&2\nexit 1\n")
    (bindir / "initdb").chmod(0o755)
    cluster = PgCluster(bindir=bindir)
    try:
        with pytest.raises(PostgresUnavailable, match="(?s)initdb failed.*out of disk"):
            cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(bindir)


def test_copies_of_a_prepared_database_are_migrated_and_independent(pg_cluster, pg_migrated_template):
    # (Copying a template is what makes a database per test cheap; its speed is the suite's
    # own concern, not asserted here: a bound on wall time would measure the machine's load.)
    first = pg_cluster.create_database(template=pg_migrated_template)
    second = pg_cluster.create_database(template=pg_migrated_template)
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("INSERT INTO meta (key) VALUES ('only here')")
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT count(*) FROM meta").fetchone() == (0,)
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] > 0


def test_cache_target_gives_each_backend_a_fresh_cache_at_the_current_schema(cache_target):
    if cache_target.startswith("postgresql://"):
        engine = PostgresEngine(cache_target)
        conn = engine.connect()
        try:
            version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
            contacts = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
        finally:
            conn.close()
            engine.close()
    else:
        with store.open(cache_target) as db:
            version = schema_version(db.conn)
            contacts = db.queries.counts()["contacts"]
    assert (version, contacts) == (SCHEMA_VERSION, 0)
