"""The tests' fixtures over a throwaway PostgreSQL cluster (``crm.bench.pgserver``).

The server itself (start, databases, copies made ahead) is ``crm.bench.pgserver.PgCluster``,
shared with the benchmark.

If PostgreSQL cannot start, every test that needs it fails with the reason (the server's
log included): these tests are never skipped.

Fixtures (imported by tests/conftest.py, so every directory can use them):

- ``pg_cluster`` (session): the running ``PgCluster``.
- ``pg_url`` (per test): ``postgresql://crm@127.0.0.1:PORT/t_N``, a new empty database
  owned by the ``crm`` role (not a superuser; it may create databases).
- ``pg_migrated_template`` (session): the name of a database the store has migrated to
  the current schema (``crm.store.pg``), with no connections left open.
- ``cache_target`` (per test, parametrised): a new SQLite file path, then a new migrated
  PostgreSQL URL, for tests that must pass on both backends.
- ``pg_migrated_url`` (per test): a new database copied from that template, already at
  the current schema. Copies are made one ahead in a worker thread while the previous test
  runs, and dropped in the background after the test (``take_copy`` / ``give_back``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crm.bench.pgserver import PgCluster, PostgresUnavailable, find_bindir

__all__ = ["PgCluster", "PostgresUnavailable", "find_bindir"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's private PostgreSQL server (fails, never skips, when it cannot start)."""
    try:
        cluster = PgCluster()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        cluster.start()
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        pytest.fail(f"PostgreSQL could not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A new, empty database for this test, as a postgresql:// URL for the ``crm`` role."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.give_back(url)


@pytest.fixture(scope="session")
def pg_migrated_template(pg_cluster: PgCluster) -> str:
    """A database migrated by the store once per session, to copy per test."""
    from crm.store.pg import PostgresEngine

    name = "crm_template"
    PostgresEngine(pg_cluster.create_database(name=name)).close()
    return name


@pytest.fixture
def pg_migrated_url(pg_cluster: PgCluster, pg_migrated_template: str) -> Iterator[str]:
    """A new database for this test, already at the store's current schema (dropped after)."""
    url = pg_cluster.take_copy(pg_migrated_template)
    yield url
    pg_cluster.give_back(url)


# For a test of something other than the cache (request counts and timings of HubSpot walks,
# a thousand page loads) that inherits ``cache_target`` from its directory's fixtures: run it
# on SQLite only, to keep ``make test`` short.
sqlite_only = pytest.mark.parametrize("cache_target", ["sqlite"], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def cache_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend in turn: a new SQLite file path, then a new migrated PostgreSQL URL.

    The one parametrised fixture for tests that must pass on both (``CRM_DB`` takes either
    form); the PostgreSQL server starts only when a PostgreSQL case runs. The process's
    store engines (PostgreSQL pools) are closed after the test, before its database goes.
    """
    from crm import store

    if request.param == "sqlite":
        yield str(tmp_path / "crm.db")
    else:
        yield str(request.getfixturevalue("pg_migrated_url"))
    store.close_engines()


@pytest.fixture
def another_cache(request: pytest.FixtureRequest, cache_target: str, tmp_path: Path) -> Callable[[str], str]:
    """More caches on the backend ``cache_target`` is on: ``another_cache("name")`` is a new
    SQLite path, or a new migrated PostgreSQL database (dropped after the test)."""

    def make(name: str) -> str:
        if not cache_target.startswith("postgresql"):
            return str(tmp_path / f"{name}.db")
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        url = cluster.take_copy(request.getfixturevalue("pg_migrated_template"))
        request.addfinalizer(lambda: cluster.give_back(url))
        return url

    return make
