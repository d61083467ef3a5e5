"""The links table (``crm.store.links``): one person's record in each connection, on both backends."""

from __future__ import annotations

import pytest

from crm.store.links import new_person_id


def test_a_person_linked_to_two_connections_is_found_by_email_in_any_case(db):
    person = new_person_id()
    db.links.put(person, "hubspot-101", status="pending", email="Ada@Example.org", outbox_id=3)
    db.links.put(person, "pipedrive-7", status="pending", email="Ada@Example.org", outbox_id=1)

    assert db.links.person_by_email("ada@example.ORG") == person
    assert [link.connection_id for link in db.links.of_person(person)] == ["hubspot-101", "pipedrive-7"]
    assert db.links.people(email="ADA@example.org") == [person]


def test_a_link_takes_the_crms_record_id_once_pushed_and_keeps_it_through_a_later_error(db):
    person = new_person_id()
    db.links.put(person, "pipedrive-7", status="pending", email="ada@example.org", record_id="local-1")

    db.links.update(person, "pipedrive-7", status="synced", record_id="42")
    failed = db.links.update(person, "pipedrive-7", status="error", error="Pipedrive needs reconnecting")

    assert failed.record_id == "42" and failed.status == "error"
    assert failed.error == "Pipedrive needs reconnecting" and failed.outbox_id is None
    assert db.links.person_of_record("pipedrive-7", "42") == person


def test_links_of_a_page_of_people_come_back_per_person_and_by_status_per_connection(db):
    ada, grace, nobody = new_person_id(), new_person_id(), new_person_id()
    db.links.put(ada, "hubspot-101", status="synced", record_id="1")
    db.links.put(ada, "pipedrive-7", status="error", error="refused")
    db.links.put(grace, "hubspot-101", status="pending")

    found = db.links.of_people([ada, grace, nobody])

    assert [link.status for link in found[ada]] == ["synced", "error"]
    assert [link.status for link in found[grace]] == ["pending"] and found[nobody] == []
    assert [link.person_id for link in db.links.of_connection("pipedrive-7", status="error")] == [ada]
    assert db.links.forget_connection("hubspot-101") == 2
    assert db.links.of_person(grace) == []


def test_a_link_status_outside_synced_pending_error_is_refused(db):
    with pytest.raises(ValueError):
        db.links.put(new_person_id(), "hubspot-101", status="done")  # type: ignore[arg-type]
