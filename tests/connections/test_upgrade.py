"""A single-portal cache from before several connections becomes one connection, with all it held."""

from __future__ import annotations

import sqlite3

import psycopg

from crm import connections, store
from crm.hubspot import Record
from crm.vault import Vault, load_keys


def _back_to_version_6(target: str) -> None:
    """Make a current cache look as version 6 left it: no registry (7), no links (8), version 6."""
    store.close_engines()
    if target.startswith("postgresql"):
        with psycopg.connect(target, autocommit=True) as raw:
            raw.execute("DROP TABLE connections")
            raw.execute("DROP TABLE links")
            raw.execute("UPDATE schema_version SET version = 6")
    else:
        raw = sqlite3.connect(target)
        raw.execute("DROP TABLE connections")
        raw.execute("DROP TABLE links")
        raw.execute("PRAGMA user_version = 6")
        raw.commit()
        raw.close()


def test_an_upgraded_cache_is_one_connection_with_its_records_edits_conflicts_and_tokens(home_settings):
    vault = Vault(load_keys(home_settings))
    with store.open(home_settings) as db:
        db.meta.claim_for_portal(101)
        db.records.upsert_records(
            "contacts",
            [
                Record("1", {"firstname": "Ada"}, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", False),
                Record("2", {"firstname": "Grace"}, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", False),
            ],
        )
        db.outbox.queue_updates(
            "contacts", {"1": {"firstname": "Augusta"}, "2": {"firstname": "Amazing"}}, by=None
        )
        db.records.upsert_records(
            "contacts",
            [Record("2", {"firstname": "Admiral"}, "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", False)],
        )
        with db.atomic():
            for kind in ("access", "refresh"):
                db.auth.write_token(
                    kind,
                    portal_id=101,
                    ciphertext=vault.encrypt(f"{kind}-token", portal_id=101, kind=kind),
                    expires_at=4_000_000_000.0,
                )
            db.auth.replace_connection(
                mode="sandbox", status="connected", portal_id=101, connected_at="2024-01-01", updated_at="x"
            )
    _back_to_version_6(home_settings.db)

    (adopted,) = connections.list_connections(home_settings)
    assert (adopted.id, adopted.account_id, adopted.is_home) == ("hubspot-101", "101", True)
    with store.open(connections.settings_for(home_settings, adopted)) as db:
        assert db.queries.get_record("contacts", "1")["firstname"] == "Augusta"
        counts = db.outbox.outbox_counts()
        assert (counts["pending"], counts["conflict"]) == (1, 1)
    state = connections.status(home_settings, adopted)
    assert (state.state, state.pending_edits, state.conflicts, state.portal_id) == ("connected", 1, 1, 101)
    with store.open(home_settings) as db:
        assert db.connections.by_account("hubspot", 101) == adopted


def test_an_upgraded_cache_that_never_connected_has_no_connection(home_settings):
    store.open(home_settings).close()
    _back_to_version_6(home_settings.db)
    assert connections.list_connections(home_settings) == []
    with store.open(home_settings) as db:
        assert db.connections.home_is_free()
