"""An older cache file is upgraded in place the first time it is opened."""

from __future__ import annotations

import sqlite3

from crm import store
from crm.store.engine import _statements, schema_version
from crm.store.schema import MIGRATIONS, SCHEMA_VERSION


def test_a_version_1_cache_is_upgraded_with_its_data_intact_and_searchable(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO contacts (id, archived, firstname, lastname, email, phone) "
        "VALUES ('7', 0, 'Ada', 'Lovelace', 'ada@example.com', '+44 20 7946 0018')"
    )
    conn.execute(
        "INSERT INTO outbox (object_type, record_id, op, property, new_value, status, created_at, "
        "updated_at) VALUES ('contacts', '7', 'update', 'firstname', 'Augusta', 'pending', 'x', 'x')"
    )
    conn.commit()
    conn.close()

    with store.open(path) as db:
        assert schema_version(db.conn) == SCHEMA_VERSION > 1
        assert db.queries.get_record("contacts", "7")["lastname"] == "Lovelace"
        assert [row["new_value"] for row in db.outbox.rows()] == ["Augusta"]
        frame, total = db.queries.query_records("contacts", search="lovel")
        assert total == 1 and list(frame.index) == ["7"]
    with store.open(path) as db:
        assert schema_version(db.conn) == SCHEMA_VERSION


def test_threads_opening_a_new_cache_at_once_all_get_it(tmp_path):
    """A CLI sync and its progress watcher open a fresh cache together: neither may fail."""
    import threading

    failures: list[str] = []
    for attempt in range(40):
        path = tmp_path / f"fresh-{attempt}.db"
        start = threading.Barrier(3)

        def open_it(path=path, start=start) -> None:
            start.wait()
            try:
                store.open(path).close()
            except store.StoreUnavailable as exc:
                failures.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
