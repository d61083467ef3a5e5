"""An older cache file is upgraded in place the first time it is opened."""

from __future__ import annotations

import sqlite3

from crm.store import open_db, records
from crm.store.schema import MIGRATIONS, SCHEMA_VERSION, _statements


def test_a_version_1_cache_is_upgraded_with_its_data_intact_and_searchable(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in _statements(MIGRATIONS[0]):  # type: ignore[arg-type]
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

    db = open_db(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION > 1
    assert records.get_record(db, "contacts", "7")["lastname"] == "Lovelace"
    assert db.execute("SELECT new_value FROM outbox").fetchone()[0] == "Augusta"
    frame, total = records.query_records(db, "contacts", search="lovel")
    assert total == 1 and list(frame.index) == ["7"]
    db.close()
    assert open_db(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
