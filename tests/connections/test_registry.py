"""The registry of connections: each connection's data in its own partition, found by id or name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crm import connections, store
from crm.errors import DuplicateConnection, UnknownConnection
from crm.hubspot import Record
from crm.store.connections import partition_target


def _contact(record_id: str, first: str) -> Record:
    return Record(record_id, {"firstname": first}, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", False)


def test_two_connections_keep_their_records_apart(home_settings):
    first = connections.add(home_settings, account_id=101, name="Acme EU")
    second = connections.add(home_settings, account_id=202, name="Acme US")
    with store.open(connections.settings_for(home_settings, first)) as db:
        db.records.upsert_records("contacts", [_contact("1", "Ada")])
    with store.open(connections.settings_for(home_settings, second)) as db:
        db.records.upsert_records("contacts", [_contact("1", "Grace"), _contact("2", "Alan")])

    with store.open(connections.settings_for(home_settings, first)) as db:
        assert db.queries.get_record("contacts", "1")["firstname"] == "Ada"
        assert db.queries.get_record("contacts", "2") is None
    with store.open(connections.settings_for(home_settings, second)) as db:
        assert db.queries.get_record("contacts", "1")["firstname"] == "Grace"
    assert [c.name for c in connections.list_connections(home_settings)] == ["Acme EU", "Acme US"]


def test_a_new_install_keeps_its_first_connection_in_the_cache_itself_and_the_second_beside_it(home_settings):
    first = connections.add(home_settings, account_id=101)
    second = connections.add(home_settings, account_id=202)
    assert first.is_home and connections.settings_for(home_settings, first).db == home_settings.db
    assert (first.id, first.name) == ("hubspot-101", "HubSpot (portal 101)")
    chosen = connections.settings_for(home_settings, second)
    assert chosen.db != home_settings.db and chosen.connection == "hubspot-202"
    assert chosen.home.db == home_settings.db and chosen.home.connection == ""
    if not home_settings.db_is_postgresql:
        assert (
            Path(chosen.db).name == "crm.hubspot-202.db" and Path(chosen.db).stat().st_mode & 0o777 == 0o600
        )
    else:
        assert chosen.db_label == home_settings.db_label + ", schema c_hubspot_202"


def test_a_partition_is_a_sibling_file_or_a_schema_of_the_same_database():
    assert partition_target("/data/cache.db", "hubspot-101") == "/data/cache.hubspot-101.db"
    assert partition_target("/data/cache.db", "") == "/data/cache.db"
    url = partition_target("postgresql://crm:pw@db:5432/crm?sslmode=require", "hubspot-101")
    assert url == "postgresql://crm:pw@db:5432/crm?sslmode=require&options=-csearch_path%3Dc_hubspot_101"
    with pytest.raises(ValueError):
        partition_target("/data/cache.db", "../elsewhere")


def test_resolve_finds_a_connection_by_id_or_name_and_lists_the_names_when_it_cannot(home_settings):
    with pytest.raises(UnknownConnection, match="Nothing is connected"):
        connections.resolve(home_settings)
    only = connections.add(home_settings, account_id=101, name="Acme EU")
    assert connections.resolve(home_settings) == only
    other = connections.add(home_settings, account_id=202, name="Acme US")
    assert connections.resolve(home_settings, "acme us") == other
    assert connections.resolve(home_settings, "hubspot-101") == only
    with pytest.raises(UnknownConnection) as ambiguous:
        connections.resolve(home_settings)
    assert ambiguous.value.names == ["Acme EU", "Acme US"] and "Acme US (id hubspot-202)" in str(
        ambiguous.value
    )
    with pytest.raises(UnknownConnection, match="No connection is called 'Nope'.*Acme EU"):
        connections.resolve(home_settings, "Nope")
    preferred = dataclasses.replace(home_settings, preferred_connection="Acme US")
    assert connections.resolve(preferred) == other


def test_names_and_accounts_are_unique_and_a_connection_can_be_renamed(home_settings):
    first = connections.add(home_settings, account_id=101, name="Acme EU")
    with pytest.raises(DuplicateConnection):
        connections.add(home_settings, account_id=101, name="Again")
    with pytest.raises(DuplicateConnection):
        connections.add(home_settings, account_id=202, name="acme eu")
    second = connections.add(home_settings, account_id=202, name="Acme US")
    with pytest.raises(DuplicateConnection):
        connections.rename(home_settings, second, "Acme EU")
    renamed = connections.rename(home_settings, first, "Acme Europe")
    assert connections.resolve(home_settings, "Acme Europe").id == first.id == renamed.id
    with store.open(home_settings) as db:
        taken, created = db.connections.ensure(crm="hubspot", account_id=303, name="Acme US")
    assert created and taken.name == "Acme US (2)"


def test_removing_a_connection_drops_its_partition_and_leaves_the_other_intact(home_settings):
    first = connections.add(home_settings, account_id=101, name="Acme EU")
    second = connections.add(home_settings, account_id=202, name="Acme US")
    for conn, name in ((first, "Ada"), (second, "Grace")):
        with store.open(connections.settings_for(home_settings, conn)) as db:
            db.records.upsert_records("contacts", [_contact("1", name)])
            db.outbox.queue_updates("contacts", {"1": {"firstname": name + "!"}}, by=None)
    assert connections.pending_edits(home_settings, second) == 1

    result = connections.remove(home_settings, second)
    assert result.dropped_edits == 1
    assert connections.list_connections(home_settings) == [first]
    if not home_settings.db_is_postgresql:
        assert not Path(connections.settings_for(home_settings, second).db).exists()
    with store.open(connections.settings_for(home_settings, first)) as db:
        assert db.queries.get_record("contacts", "1")["firstname"] == "Ada!"
        assert db.outbox.outbox_counts()["pending"] == 1

    connections.remove(home_settings, first)
    assert connections.list_connections(home_settings) == []
    with store.open(home_settings) as db:
        assert db.queries.get_record("contacts", "1") is None and db.outbox.outbox_counts()["pending"] == 0
        assert db.connections.home_is_free()


def test_a_connection_added_again_after_removal_starts_empty(home_settings):
    connections.add(home_settings, account_id=101, name="Acme EU")
    second = connections.add(home_settings, account_id=202, name="Acme US")
    with store.open(connections.settings_for(home_settings, second)) as db:
        db.records.upsert_records("contacts", [_contact("1", "Grace")])
    connections.remove(home_settings, second)
    again = connections.add(home_settings, account_id=202, name="Acme US")
    with store.open(connections.settings_for(home_settings, again)) as db:
        assert db.queries.get_record("contacts", "1") is None
