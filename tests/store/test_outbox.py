"""The outbox: edits queued with their base, pulls that respect them, conflicts and their resolution."""

from __future__ import annotations

import json

import pytest

from crm.store import outbox
from crm.store.outbox import Outcome


def _rows(db):
    return db.outbox._rows("SELECT * FROM outbox ORDER BY id")


def test_an_edit_shows_in_the_cache_and_waits_with_its_base_and_author(contacts_db):
    queued = contacts_db.outbox.queue_updates(
        "contacts", {"101": {"firstname": "Augusta", "score": "13"}}, by="kim@example.com"
    )
    assert queued == 2
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Augusta"
    rows = {r["property"]: r for r in _rows(contacts_db)}
    assert rows["firstname"]["base_value"] == "Ada" and rows["firstname"]["new_value"] == "Augusta"
    assert rows["score"]["base_value"] == "12.5" and rows["firstname"]["created_by"] == "kim@example.com"
    assert {r["status"] for r in rows.values()} == {"pending"}


def test_editing_a_field_twice_keeps_the_first_base_and_reverting_drops_the_edit(contacts_db):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by=None)
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Ava"}}, by=None)
    (row,) = _rows(contacts_db)
    assert (row["base_value"], row["new_value"], row["status"]) == ("Ada", "Ava", "pending")
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Ada"}}, by=None)
    assert _rows(contacts_db)[0]["status"] == "discarded"
    assert contacts_db.outbox.outbox_counts()["pending"] == 0


def test_an_edit_equal_to_the_cached_value_queues_nothing(contacts_db):
    assert contacts_db.outbox.queue_updates("contacts", {"101": {"score": "12.50"}}, by=None) == 0
    assert _rows(contacts_db) == []


def test_an_edit_of_an_unknown_record_writes_nothing(contacts_db):
    with pytest.raises(outbox.NotInCache):
        contacts_db.outbox.queue_updates(
            "contacts", {"101": {"firstname": "X"}, "999": {"firstname": "Y"}}, by=None
        )
    assert _rows(contacts_db) == []
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Ada"


def test_a_pull_keeps_a_pending_local_value_while_hubspot_still_has_the_base(contacts_db, rec):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by=None)
    contacts_db.records.upsert_records("contacts", [rec("101", {"firstname": "Ada", "lastname": "King"})])
    row = contacts_db.queries.get_record("contacts", "101")
    assert (row["firstname"], row["lastname"]) == ("Augusta", "King")
    assert _rows(contacts_db)[0]["status"] == "pending"


def test_a_pull_that_sees_the_field_changed_in_hubspot_makes_the_edit_a_conflict(contacts_db, rec):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by=None)
    result = contacts_db.records.upsert_records("contacts", [rec("101", {"firstname": "Countess"})])
    assert result.conflicts == 1
    (row,) = _rows(contacts_db)
    assert (row["status"], row["remote_value"], row["new_value"]) == ("conflict", "Countess", "Augusta")
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Augusta"


def test_keep_mine_requeues_against_hubspots_value_and_keep_theirs_restores_it(contacts_db, rec):
    contacts_db.outbox.queue_updates(
        "contacts", {"101": {"firstname": "Augusta"}, "102": {"lastname": "H"}}, by=None
    )
    contacts_db.records.upsert_records(
        "contacts", [rec("101", {"firstname": "Countess"}), rec("102", {"lastname": "Murray"})]
    )
    mine, theirs = (r["id"] for r in _rows(contacts_db))
    contacts_db.outbox.resolve_conflict(mine, "mine", by="kim")
    contacts_db.outbox.resolve_conflict(theirs, "theirs", by="kim")
    rows = {r["id"]: r for r in _rows(contacts_db)}
    assert (rows[mine]["status"], rows[mine]["base_value"]) == ("pending", "Countess")
    assert rows[theirs]["status"] == "discarded"
    assert contacts_db.queries.get_record("contacts", "102")["lastname"] == "Murray"
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Augusta"
    log = contacts_db.outbox.audit_log()
    assert sorted(log["result"]) == ["conflict: kept mine", "conflict: kept theirs"]
    with pytest.raises(LookupError):
        contacts_db.outbox.resolve_conflict(mine, "mine", by="kim")


def test_push_outcomes_update_the_cache_and_the_audit_log_in_one_step(contacts_db):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta", "lastname": "L"}}, by="kim")
    first, second = (r["id"] for r in _rows(contacts_db))
    contacts_db.outbox.record_outcomes(
        "contacts",
        [
            Outcome(first, "pushed", cache_value="Augusta", set_cache=True, sent="Augusta", check_sent=True),
            Outcome(
                second, "failed", "Property values were not valid", cache_value="Lovelace", set_cache=True
            ),
        ],
        by="kim",
    )
    rows = {r["id"]: r for r in _rows(contacts_db)}
    assert rows[first]["status"] == "pushed" and rows[second]["status"] == "failed"
    assert rows[second]["error"] == "Property values were not valid"
    assert contacts_db.queries.get_record("contacts", "101")["lastname"] == "Lovelace"
    assert sorted(contacts_db.outbox.audit_log()["result"]) == ["failed", "pushed"]


def test_an_edit_changed_during_its_push_stays_pending_against_the_sent_value(contacts_db):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by=None)
    (row,) = _rows(contacts_db)
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Ava"}}, by=None)
    contacts_db.outbox.record_outcomes(
        "contacts",
        [
            Outcome(
                row["id"], "pushed", cache_value="Augusta", set_cache=True, sent="Augusta", check_sent=True
            )
        ],
        by=None,
    )
    (row,) = _rows(contacts_db)
    assert (row["status"], row["base_value"], row["new_value"]) == ("pending", "Augusta", "Ava")
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Ava"


def test_a_new_contact_lives_under_a_local_id_until_pushed(contacts_db, rec):
    local = contacts_db.outbox.queue_create(
        "contacts", {"email": "new@example.com", "firstname": "New"}, by="kim"
    )
    assert local.startswith("local-")
    assert contacts_db.queries.query_records("contacts", search="new@example")[1] == 1
    contacts_db.outbox.queue_updates("contacts", {local: {"lastname": "Person"}}, by="kim")
    (create,) = contacts_db.outbox.pending_creates("contacts")
    assert create["payload"] == {"email": "new@example.com", "firstname": "New", "lastname": "Person"}
    contacts_db.outbox.complete_create(
        create["id"],
        rec("555", {"email": "new@example.com", "firstname": "New", "lastname": "Person"}),
        by="kim",
        existed=False,
    )
    assert contacts_db.queries.get_record("contacts", local) is None
    assert contacts_db.queries.get_record("contacts", "555")["lastname"] == "Person"
    assert contacts_db.outbox.outbox_counts()["pending"] == 0


def test_edits_frame_labels_records_for_people(contacts_db, rec):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by=None)
    contacts_db.records.upsert_records("contacts", [rec("101", {"firstname": "Countess"})])
    frame = contacts_db.outbox.conflicts_frame()
    assert frame.loc[0, "record_label"] == "Augusta Lovelace <ada@analytical.example>"
    assert (frame.loc[0, "new_value"], frame.loc[0, "remote_value"], frame.loc[0, "base_value"]) == (
        "Augusta",
        "Countess",
        "Ada",
    )


def test_discarding_a_pending_edit_restores_hubspots_value(contacts_db):
    contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by=None)
    (row,) = _rows(contacts_db)
    contacts_db.outbox.discard_edit(row["id"], by="kim")
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Ada"
    assert contacts_db.outbox.outbox_counts()["discarded"] == 1


def _held(contacts_db, rec):
    local = contacts_db.outbox.queue_create(
        "contacts",
        {"email": "grace@navy.example", "firstname": "Grace", "phone": "+1 555 0100"},
        by="kim",
    )
    (create,) = contacts_db.outbox.pending_creates("contacts")
    theirs = rec("900", {"email": "grace@navy.example", "firstname": "Amazing Grace", "phone": None})
    assert contacts_db.outbox.hold_create(create["id"], theirs)
    return local, create["id"]


def test_a_held_new_contact_still_takes_edits_and_cannot_be_resolved_as_a_field_conflict(contacts_db, rec):
    local, outbox_id = _held(contacts_db, rec)
    assert contacts_db.outbox.pending_creates("contacts") == []
    contacts_db.outbox.queue_updates("contacts", {local: {"lastname": "Hopper"}}, by="kim")
    (held,) = contacts_db.outbox.conflicts_frame().to_dict("records")
    assert json.loads(held["payload"])["lastname"] == "Hopper"
    assert outbox.existing_record(held) == (
        "900",
        {"email": "grace@navy.example", "firstname": "Amazing Grace", "phone": None},
    )
    with pytest.raises(LookupError, match="link it to HubSpot's contact or discard it"):
        contacts_db.outbox.resolve_conflict(outbox_id, "mine", by="kim")


def test_linking_keeps_an_edit_already_waiting_on_hubspots_contact(contacts_db, rec):
    local, outbox_id = _held(contacts_db, rec)
    contacts_db.records.upsert_records(
        "contacts", [rec("900", {"email": "grace@navy.example", "phone": None})]
    )
    contacts_db.outbox.queue_updates("contacts", {"900": {"phone": "+1 555 0777"}}, by="lee")
    assert contacts_db.outbox.link_create(outbox_id, by="kim") == {"pending": 0, "conflict": 1}
    edits = {r["property"]: r for r in _rows(contacts_db) if r["op"] == "update"}
    assert edits["phone"]["new_value"] == "+1 555 0777" and edits["phone"]["created_by"] == "lee"
    assert (edits["firstname"]["status"], edits["firstname"]["base_value"]) == ("conflict", None)
    assert contacts_db.queries.get_record("contacts", local) is None
    assert contacts_db.queries.get_record("contacts", "900")["phone"] == "+1 555 0777"
    with pytest.raises(LookupError):
        contacts_db.outbox.link_create(outbox_id, by="kim")
