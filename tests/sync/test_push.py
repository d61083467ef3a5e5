"""Pushing local edits to the sandbox: validation, conflicts, partial refusals, creates by upsert."""

from __future__ import annotations

import dataclasses
import json

import pytest

from crm.errors import InvalidEdit
from crm.hubspot import reset_limits
from crm.hubspot.provider import HubSpotApi
from crm.interface import Record, WriteResult
from crm.sync import (
    pronouns_available,
    push,
    queue_edits,
    queue_new_contact,
    resolve_conflict,
    run_sync,
    set_up_pronouns,
)
from tests.sync.synchelpers import differences
from tests.synced_copies import portal_fingerprint


def _truth(sandbox, object_type, record_id):
    return next(r for r in sandbox.truth(object_type) if r["id"] == record_id)


def _outbox(db):
    return db.outbox._rows("SELECT * FROM outbox ORDER BY id")


@pytest.fixture
def prepared_cache(request, sandbox, settings, synced_copies):
    """For a test that asks for ``synced``: its cache is a copy of the session's synced cache
    (tests/synced_copies.py), made before ``db`` opens it."""
    if "synced" in request.fixturenames:
        synced_copies.fill(
            settings.db,
            "private-app",
            portal_fingerprint(sandbox),
            lambda target: run_sync(dataclasses.replace(settings, db=target), kind="full"),
        )


@pytest.fixture
def synced(sandbox, prepared_cache):
    """The ids of the portal's contacts, the cache holding them after a full sync."""
    return [r["id"] for r in sandbox.truth("contacts") if not r["archived"]]


def test_pushed_edits_reach_hubspot_the_cache_and_the_audit_log(sandbox, settings, db, synced):
    first, second = synced[:2]
    queued = queue_edits(
        settings,
        "contacts",
        {
            first: {"jobtitle": "Chief Analyst", "lifecyclestage": "customer"},
            second: {"phone": "+1 555 0142"},
        },
        by="kim@example.com",
    )
    assert queued == 3
    summary = push(settings, by="kim@example.com")
    assert (summary["pushed"], summary["failed"], summary["conflicts"], summary["retry"]) == (3, 0, 0, 0)
    assert _truth(sandbox, "contacts", first)["properties"]["jobtitle"] == "Chief Analyst"
    assert _truth(sandbox, "contacts", second)["properties"]["phone"] == "+1 555 0142"
    assert db.outbox.outbox_counts()["pending"] == 0
    log = db.outbox.audit_log()
    assert set(log["result"]) == {"pushed"} and set(log["by"]) == {"kim@example.com"}
    assert differences(db, sandbox) == []


def test_an_invalid_email_edit_is_refused_with_a_message_and_nothing_queued(settings, db, synced):
    before = db.queries.get_record("contacts", synced[0])
    with pytest.raises(InvalidEdit) as refused:
        queue_edits(settings, "contacts", {synced[0]: {"email": "ada@example", "jobtitle": "Fine"}}, by="kim")
    assert list(refused.value.field_errors) == [f"{synced[0]}.email"]
    assert "not a valid email" in refused.value.field_errors[f"{synced[0]}.email"]
    assert _outbox(db) == []
    assert db.queries.get_record("contacts", synced[0]) == before


def test_an_edit_of_a_field_also_changed_in_hubspot_becomes_a_conflict_and_hubspot_keeps_its_value(
    sandbox, settings, db, synced
):
    contact = synced[3]
    queue_edits(settings, "contacts", {contact: {"phone": "+1 555 0001", "jobtitle": "Mine only"}}, by="kim")
    sandbox.patch_object("contacts", contact, {"phone": "+1 555 0002"})
    summary = push(settings, by="kim")
    assert (summary["pushed"], summary["conflicts"]) == (1, 1)
    truth = _truth(sandbox, "contacts", contact)["properties"]
    assert (truth["phone"], truth["jobtitle"]) == ("+1 555 0002", "Mine only")
    (conflict,) = db.outbox.conflicts_frame().to_dict("records")
    assert (conflict["new_value"], conflict["remote_value"]) == ("+1 555 0001", "+1 555 0002")

    resolve_conflict(settings, conflict["id"], "mine", by="kim")
    assert push(settings, by="kim")["pushed"] == 1
    assert _truth(sandbox, "contacts", contact)["properties"]["phone"] == "+1 555 0001"


def test_keeping_hubspots_value_drops_the_edit_and_the_cache_takes_it(sandbox, settings, db, synced):
    contact = synced[4]
    queue_edits(settings, "contacts", {contact: {"city": "Mine"}}, by="kim")
    sandbox.patch_object("contacts", contact, {"city": "Theirs"})
    push(settings)
    (conflict,) = db.outbox.conflicts_frame().to_dict("records")
    resolve_conflict(settings, conflict["id"], "theirs", by="kim")
    assert db.queries.get_record("contacts", contact)["city"] == "Theirs"
    assert push(settings)["results"] == []
    assert _truth(sandbox, "contacts", contact)["properties"]["city"] == "Theirs"


def test_an_edit_already_made_in_hubspot_counts_as_pushed(sandbox, settings, db, synced):
    queue_edits(settings, "contacts", {synced[5]: {"city": "Same"}}, by="kim")
    sandbox.patch_object("contacts", synced[5], {"city": "Same"})
    summary = push(settings)
    assert [r["status"] for r in summary["results"]] == ["already"]
    assert db.outbox.outbox_counts()["pushed"] == 1


def test_a_batch_with_one_refused_value_pushes_the_good_ones(sandbox, settings, db, synced):
    # Our copy of the definition still offers an option HubSpot has removed since the last sync.
    options = json.loads(
        db.conn.execute(
            "SELECT options FROM property_defs WHERE object_type = 'contacts' AND name = 'lifecyclestage'"
        ).fetchone()[0]
    )
    options.append({"label": "Retired stage", "value": "retiredstage"})
    db.conn.execute(
        "UPDATE property_defs SET options = ? WHERE object_type = 'contacts' AND name = 'lifecyclestage'",
        (json.dumps(options),),
    )
    good = {rid: {"jobtitle": f"Good {n}"} for n, rid in enumerate(synced[:6])}
    bad = synced[6]
    queue_edits(
        settings,
        "contacts",
        {**good, bad: {"lifecyclestage": "retiredstage", "jobtitle": "Also good"}},
        by="kim",
    )
    summary = push(settings, by="kim")
    assert (summary["pushed"], summary["failed"]) == (7, 1)
    (failure,) = [r for r in summary["results"] if r["status"] == "failed"]
    assert (failure["record_id"], failure["property"]) == (bad, "lifecyclestage")
    assert "retiredstage" in failure["message"]
    for n, rid in enumerate(synced[:6]):
        assert _truth(sandbox, "contacts", rid)["properties"]["jobtitle"] == f"Good {n}"
    truth = _truth(sandbox, "contacts", bad)["properties"]
    assert truth["jobtitle"] == "Also good" and truth["lifecyclestage"] != "retiredstage"
    # The refused edit is visible with HubSpot's reason, and the cache shows HubSpot's value again.
    assert db.queries.get_record("contacts", bad)["lifecyclestage"] == truth["lifecyclestage"]
    (row,) = [r for r in _outbox(db) if r["status"] == "failed"]
    assert "retiredstage" in row["error"]


def test_a_transient_failure_leaves_the_edit_for_the_next_push(sandbox, settings, db, synced, fast_client):
    queue_edits(settings, "contacts", {synced[0]: {"jobtitle": "Eventually"}}, by="kim")
    # More 503s in a row than the client retries.
    sandbox.fail_next("/crm/v3/objects/contacts/batch/update", status=503, count=fast_client.max_retries + 1)
    summary = push(settings, api=HubSpotApi(fast_client))
    assert [r["status"] for r in summary["results"]] == ["retry"]
    (row,) = _outbox(db)
    assert (row["status"], row["attempts"]) == ("pending", 1) and row["error"].startswith("Not sent yet")
    reset_limits()  # the breaker may have opened on the storm; a later push starts afresh
    assert push(settings)["pushed"] == 1
    assert _truth(sandbox, "contacts", synced[0])["properties"]["jobtitle"] == "Eventually"


def test_an_edit_of_a_record_deleted_in_hubspot_fails_with_a_clear_message(sandbox, settings, db, synced):
    queue_edits(settings, "contacts", {synced[1]: {"jobtitle": "Too late"}}, by="kim")
    sandbox.archive_object("contacts", synced[1])
    (result,) = push(settings)["results"]
    assert result["status"] == "failed" and "no longer exists" in result["message"]


def test_a_new_contact_is_created_once_even_if_its_push_is_repeated(sandbox, settings, db, synced):
    local = queue_new_contact(
        settings,
        {
            "email": "New.Person@example.com",
            "firstname": "New",
            "lastname": "Person",
            "lifecyclestage": "lead",
        },
        by="kim",
    )
    summary = push(settings, by="kim")
    (created,) = [r for r in summary["results"] if r["status"] == "created"]
    assert db.queries.get_record("contacts", local) is None
    assert db.queries.get_record("contacts", created["record_id"])["firstname"] == "New"
    # A crash after HubSpot created it but before we recorded that: the same create again.
    db.conn.execute("UPDATE outbox SET status = 'pending' WHERE op = 'create'")
    push(settings, by="kim")
    matches = [
        r
        for r in sandbox.truth("contacts")
        if (r["properties"].get("email") or "").lower() == "new.person@example.com"
    ]
    assert len(matches) == 1 and matches[0]["id"] == created["record_id"]


def test_a_new_contact_needs_an_email_that_no_cached_contact_has(settings, db, synced):
    with pytest.raises(InvalidEdit) as refused:
        queue_new_contact(settings, {"firstname": "No email"}, by="kim")
    assert refused.value.field_errors == {"email": "is required for a new record"}
    taken = db.queries.get_record("contacts", synced[0])["email"]
    with pytest.raises(InvalidEdit) as refused:
        queue_new_contact(settings, {"email": taken.upper()}, by="kim")
    assert "already exists" in refused.value.field_errors["email"]
    assert _outbox(db) == []


def test_pronouns_can_be_set_up_then_sync_and_edit_like_any_property(sandbox, settings, db, synced):
    assert not pronouns_available(db)
    with pytest.raises(InvalidEdit):
        queue_edits(settings, "contacts", {synced[0]: {"pronouns": "they_them"}}, by="kim")
    set_up_pronouns(settings)
    set_up_pronouns(settings)  # a second click finds it there and changes nothing
    assert pronouns_available(db)
    definition = next(p for p in sandbox_properties(settings) if p["name"] == "pronouns")
    assert definition["type"] == "enumeration" and definition["group_name"] == "contactinformation"
    assert "prefer_not_to_say" in [o["value"] for o in definition["options"]]
    queue_edits(settings, "contacts", {synced[0]: {"pronouns": "they_them"}}, by="kim")
    with pytest.raises(InvalidEdit, match="not one of the options"):
        queue_edits(settings, "contacts", {synced[1]: {"pronouns": "xe/xem"}}, by="kim")
    assert push(settings)["pushed"] == 1
    sandbox.patch_object("contacts", synced[2], {"pronouns": "she_her"})
    run_sync(settings)
    assert db.queries.get_record("contacts", synced[2])["pronouns"] == "she_her"
    assert differences(db, sandbox) == []


def sandbox_properties(settings):
    from crm.hubspot import HubSpotClient, StaticToken

    with HubSpotClient(settings, StaticToken(settings.access_token)) as client:
        return client.list_properties("contacts")


class WholeBatchRefusal:
    """A CRM that refuses a whole batch update when any input is bad (no per-input failure),
    as HubSpot does without objectWriteTraceIds: the push has to split the batch to find it."""

    def __init__(self, current: dict[str, dict[str, str]], bad_value: str) -> None:
        self.current = current
        self.bad_value = bad_value
        self.update_calls: list[int] = []

    def batch_read(self, object_type, ids, *, properties):
        return [
            Record(i, object_type, {p: self.current[i].get(p) for p in properties}, None, None) for i in ids
        ]

    def batch_update(self, object_type, updates):
        from crm.errors import ValidationFailed

        self.update_calls.append(len(updates))
        for values in updates.values():
            if self.bad_value in values.values():
                raise ValidationFailed(
                    "Property values were not valid", status_code=400, field_errors={"jobtitle": "nope"}
                )
        for rid, values in updates.items():
            self.current[rid].update(values)
        return WriteResult(
            [Record(rid, object_type, dict(values), None, None) for rid, values in updates.items()]
        )

    def close(self):
        pass


def test_a_batch_refused_as_a_whole_is_split_until_the_bad_input_stands_alone(sandbox, settings, db, synced):
    client = WholeBatchRefusal(
        {rid: {"jobtitle": db.queries.get_record("contacts", rid)["jobtitle"]} for rid in synced},
        bad_value="BAD",
    )
    edits = {rid: {"jobtitle": f"Fine {n}"} for n, rid in enumerate(synced[:16])}
    edits[synced[11]] = {"jobtitle": "BAD"}
    queue_edits(settings, "contacts", edits, by="kim")
    summary = push(settings, api=client)
    assert (summary["pushed"], summary["failed"]) == (15, 1)
    (failed,) = [r for r in summary["results"] if r["status"] == "failed"]
    assert failed["record_id"] == synced[11] and "nope" in failed["message"]
    assert client.current[synced[3]]["jobtitle"] == "Fine 3"
    assert len(client.update_calls) <= 2 * 4 + 1  # halving 16 inputs: about log2(16) levels
