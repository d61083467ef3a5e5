"""``python -m crm migrate-cache``: a SQLite cache moves into PostgreSQL with nothing lost."""

from __future__ import annotations

import pytest
from clikit import run_cli

from crm import store
from crm.config import load_settings
from crm.store.copy import _source_tables
from crm.store.engine import SqliteEngine
from crm.sync import queue_edits, resolve_conflict


def _truth(sandbox, record_id):
    return next(r for r in sandbox.truth("contacts") if r["id"] == record_id)["properties"]


def _row_counts(target: str, tables: list[str]) -> dict[str, int]:
    """Rows per table in a cache (either backend)."""
    with store.open(target) as db:
        return {t: int(db.conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}


def test_a_migrated_cache_keeps_queued_edits_and_conflicts_and_pushes_them_from_postgresql(
    headless, sandbox, pg_url, monkeypatch
):
    assert run_cli("sync", "--full")[0] == 0
    settings = load_settings(headless, {})
    contacts = [r["id"] for r in sandbox.truth("contacts") if not r["archived"]]
    mine, pending, pushed = contacts[0], contacts[1], contacts[2]
    queue_edits(settings, "contacts", {mine: {"phone": "+1 555 0001"}, pushed: {"city": "Lyon"}}, by="kim")
    sandbox.patch_object("contacts", mine, {"phone": "+1 555 0002"})
    assert run_cli("push")[0] == 1  # the city went out (audited); the phone edit became a conflict
    queue_edits(settings, "contacts", {pending: {"jobtitle": "Moved with the cache"}}, by="kim")
    sqlite_file = headless["CRM_DB"]
    conn = SqliteEngine(sqlite_file).connect()
    tables = _source_tables(conn)
    sqlite_columns = conn.table_columns("contacts")
    conn.close()
    before = _row_counts(sqlite_file, tables)
    assert {"outbox", "audit_log", "sync_cursors", "property_defs", "associations", "owners"} <= set(tables)

    # A password in the URL is used but never printed.
    secret_url = pg_url.replace("crm@", "crm:s3cret-pw@")
    code, out, err = run_cli("migrate-cache", "--to", secret_url)
    assert code == 0, err
    assert "s3cret-pw" not in out + err
    assert f"Copied {sum(before.values())} rows" in out

    assert _row_counts(pg_url, tables) == before
    with store.open(pg_url) as db:
        assert set(sqlite_columns) <= set(db.conn.table_columns("contacts"))
        counts = db.outbox.outbox_counts()
        assert (counts["pending"], counts["conflict"]) == (1, 1)
        assert len(db.outbox.audit_log()) == before["audit_log"] > 0
        assert db.queries.get_record("contacts", pending)["jobtitle"] == "Moved with the cache"

    # From here on the app and the CLI use PostgreSQL.
    monkeypatch.setenv("CRM_DB", pg_url)
    code, out, _ = run_cli("status")
    assert "1 pending, 1 conflicts" in out
    assert "Cache:       PostgreSQL at 127.0.0.1:" in out
    on_pg = load_settings({**headless, "CRM_DB": pg_url}, {})
    with store.open(on_pg) as db:
        (conflict,) = db.outbox.conflicts_frame().to_dict("records")
    resolve_conflict(on_pg, conflict["id"], "mine", by="kim")
    code, out, err = run_cli("push")
    assert code == 0, out + err
    assert "2 sent" in out
    assert _truth(sandbox, mine)["phone"] == "+1 555 0001"
    assert _truth(sandbox, pending)["jobtitle"] == "Moved with the cache"
    # New rows take ids after the copied ones (the id sequences moved past them).
    with store.open(pg_url) as db:
        assert len(db.outbox.audit_log()) > before["audit_log"]


def test_migrate_cache_refuses_a_postgresql_database_that_holds_a_cache_unless_forced(headless, pg_url):
    assert run_cli("sync", "--full")[0] == 0
    assert run_cli("migrate-cache", "--to", pg_url)[0] == 0
    code, _, err = run_cli("migrate-cache", "--to", pg_url)
    assert code == 1 and "already holds data" in err and "--force" in err
    code, out, err = run_cli("migrate-cache", "--to", pg_url, "--force")
    assert code == 0, err
    with store.open(pg_url) as db:
        assert db.queries.counts()["contacts"] == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "/tmp/not-a-url.db"], "must be a postgresql:// URL"),
        (["--to", "postgresql://crm@127.0.0.1:1/x", "--from", "/nonexistent/crm.db"], "no SQLite cache at"),
    ],
)
def test_migrate_cache_explains_a_bad_source_or_target(headless, args, message):
    code, _, err = run_cli("migrate-cache", *args)
    assert code != 0 and message in err
