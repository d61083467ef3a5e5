"""A new contact whose email HubSpot already has (and the cache does not): never written over.

The "existing" contact is created in the sandbox over loopback by another client, after the
cache was synced, exactly as a colleague adding it in HubSpot meanwhile would.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from crm.hubspot.provider import HubSpotApi
from crm.store import outbox
from crm.sync import discard_edit, link_existing_contact, push, queue_new_contact, run_sync
from tests.synced_copies import portal_fingerprint

EMAIL = "grace.hopper@existing.example"
THEIRS = {"email": EMAIL, "firstname": "Grace", "lastname": "Hopper", "jobtitle": "Rear Admiral"}
MINE = {
    "email": "Grace.Hopper@Existing.example",
    "firstname": "Grace",  # same as HubSpot's: nothing to do
    "lastname": "Murray",  # HubSpot has another value: a conflict for a person
    "phone": "+1 555 0100",  # empty in HubSpot: filled by the next push
}


def _with_email(sandbox, email: str) -> list[dict[str, Any]]:
    return [
        r
        for r in sandbox.truth("contacts")
        if (r["properties"].get("email") or "").lower() == email.lower() and not r["archived"]
    ]


def _create_in_hubspot(client, properties: dict[str, str]) -> str:
    answer = client.batch_create("contacts", [{"properties": properties}])
    (record,) = answer.records
    return str(record.id)


@pytest.fixture
def prepared_cache(request, sandbox, settings, synced_copies):
    """For a test that asks for ``existing``: its cache is a copy of the session's synced
    cache (tests/synced_copies.py), made before ``db`` opens it."""
    if "existing" in request.fixturenames:
        synced_copies.fill(
            settings.db,
            "private-app",
            portal_fingerprint(sandbox),
            lambda target: run_sync(dataclasses.replace(settings, db=target), kind="full"),
        )


@pytest.fixture
def existing(sandbox, settings, fast_client, prepared_cache) -> str:
    """The cache is synced, then someone creates the contact in HubSpot."""
    return _create_in_hubspot(fast_client, THEIRS)


class Spy:
    """The real client, counting reads by email and able to die right around the upsert."""

    def __init__(self, client, *, before_upsert=None, after_upsert=None) -> None:
        self.client = client
        self.email_reads = 0
        self.upserts = 0
        self.before_upsert = before_upsert
        self.after_upsert = after_upsert

    def __getattr__(self, name):
        return getattr(self.client, name)

    def batch_read(self, object_type, ids, **kw):
        if kw.get("id_property") == "email":
            self.email_reads += 1
        return self.client.batch_read(object_type, ids, **kw)

    def batch_upsert(self, object_type, inputs, **kw):
        self.upserts += 1
        if self.before_upsert:
            self.before_upsert()
        answer = self.client.batch_upsert(object_type, inputs, **kw)
        if self.after_upsert:
            self.after_upsert()
        return answer


class Killed(BaseException):
    """The push process dies here (kill -9): nothing after this point runs."""


def _die() -> None:
    raise Killed()


def _hold(settings, db) -> dict[str, Any]:
    queue_new_contact(settings, MINE, by="kim")
    summary = push(settings, by="kim")
    (result,) = summary["results"]
    assert result["status"] == "conflict" and "already has a contact with this email" in result["message"]
    (decision,) = db.outbox.conflicts_frame().to_dict("records")
    return decision


def test_a_new_contact_with_an_email_hubspot_has_leaves_hubspots_record_unchanged(
    sandbox, settings, db, existing
):
    before = _with_email(sandbox, EMAIL)
    queue_new_contact(settings, MINE, by="kim")
    push(settings, by="kim")
    assert _with_email(sandbox, EMAIL) == before
    (decision,) = db.outbox.conflicts_frame().to_dict("records")
    assert decision["op"] == "create" and decision["status"] == "conflict"
    mine = json.loads(decision["payload"])
    existing_id, theirs = outbox.existing_record(decision)
    assert existing_id == existing
    assert (mine["lastname"], theirs["lastname"]) == ("Murray", "Hopper")
    # Still waiting: a second push sends nothing and asks nothing again.
    assert push(settings, by="kim")["results"] == []
    assert _with_email(sandbox, EMAIL) == before


def test_link_takes_hubspots_contact_fills_its_empty_fields_and_makes_differences_conflicts(
    sandbox, settings, db, existing
):
    decision = _hold(settings, db)
    queued = link_existing_contact(settings, decision["id"], by="lee")
    assert queued == {"pending": 1, "conflict": 1}
    assert db.queries.get_record("contacts", decision["record_id"]) is None
    cached = db.queries.get_record("contacts", existing)
    assert (cached["jobtitle"], cached["phone"], cached["lastname"]) == (
        "Rear Admiral",
        "+1 555 0100",
        "Murray",
    )
    (conflict,) = db.outbox.conflicts_frame().to_dict("records")
    assert (conflict["record_id"], conflict["property"]) == (existing, "lastname")
    assert (conflict["new_value"], conflict["remote_value"], conflict["base_value"]) == (
        "Murray",
        "Hopper",
        None,
    )

    summary = push(settings, by="lee")
    assert (summary["pushed"], summary["conflicts"], summary["failed"]) == (1, 0, 0)
    (truth,) = _with_email(sandbox, EMAIL)
    assert truth["id"] == existing
    assert (truth["properties"]["phone"], truth["properties"]["lastname"]) == ("+1 555 0100", "Hopper")
    assert truth["properties"]["jobtitle"] == "Rear Admiral"
    log = db.outbox.audit_log()
    linked = log[log["result"] == "linked"].to_dict("records")
    assert len(linked) == 1 and linked[0]["by"] == "lee" and f"contact {existing}" in linked[0]["detail"]


def test_a_field_hubspot_fills_after_the_link_becomes_a_conflict_not_an_overwrite(
    sandbox, settings, db, existing
):
    decision = _hold(settings, db)
    link_existing_contact(settings, decision["id"], by="lee")
    sandbox.patch_object("contacts", existing, {"phone": "+1 555 0999"})
    summary = push(settings, by="lee")
    assert summary["pushed"] == 0 and summary["conflicts"] == 1
    (truth,) = _with_email(sandbox, EMAIL)
    assert truth["properties"]["phone"] == "+1 555 0999"


def test_discard_mine_drops_the_local_contact_and_says_so_in_the_audit_log(sandbox, settings, db, existing):
    before = _with_email(sandbox, EMAIL)
    decision = _hold(settings, db)
    discard_edit(settings, decision["id"], by="lee")
    assert db.queries.get_record("contacts", decision["record_id"]) is None
    assert db.outbox.conflicts_frame().empty and db.outbox.outbox_counts()["pending"] == 0
    (entry,) = db.outbox.audit_log().to_dict("records")
    assert entry["result"] == "discarded" and entry["by"] == "lee"
    assert "HubSpot already had this email" in entry["detail"] and existing in entry["detail"]
    assert push(settings, by="lee")["results"] == []
    assert _with_email(sandbox, EMAIL) == before


def test_creates_are_checked_with_one_read_per_batch_and_new_emails_still_created(
    sandbox, settings, db, existing, fast_client
):
    queue_new_contact(settings, MINE, by="kim")
    for n in range(3):
        queue_new_contact(settings, {"email": f"fresh{n}@new.example", "firstname": f"Fresh {n}"}, by="kim")
    spy = Spy(fast_client)
    summary = push(settings, by="kim", api=HubSpotApi(spy))
    assert spy.email_reads == 1 and spy.upserts == 1
    assert sorted(r["status"] for r in summary["results"]) == ["conflict", "created", "created", "created"]
    assert all(len(_with_email(sandbox, f"fresh{n}@new.example")) == 1 for n in range(3))
    assert _with_email(sandbox, EMAIL)[0]["properties"]["lastname"] == "Hopper"


def test_a_crash_after_the_read_then_a_create_elsewhere_ends_in_a_decision_not_an_overwrite(
    sandbox, settings, db, fast_client
):
    run_sync(settings, kind="full")
    queue_new_contact(settings, MINE, by="kim")
    # The read finds nothing; the process dies before the upsert goes out.
    with pytest.raises(Killed):
        push(settings, by="kim", api=HubSpotApi(Spy(fast_client, before_upsert=_die)))
    assert _with_email(sandbox, EMAIL) == []
    # Meanwhile a colleague creates the contact in HubSpot; the retry reads again.
    existing = _create_in_hubspot(fast_client, THEIRS)
    summary = push(settings, by="kim")
    assert [r["status"] for r in summary["results"]] == ["conflict"]
    (truth,) = _with_email(sandbox, EMAIL)
    assert truth["id"] == existing and truth["properties"]["lastname"] == "Hopper"


def test_a_crash_after_hubspot_created_the_contact_is_not_created_twice_nor_held(
    sandbox, settings, db, fast_client
):
    run_sync(settings, kind="full")
    local = queue_new_contact(settings, MINE, by="kim")
    # HubSpot creates it, then the process dies before recording that.
    with pytest.raises(Killed):
        push(settings, by="kim", api=HubSpotApi(Spy(fast_client, after_upsert=_die)))
    (made,) = _with_email(sandbox, EMAIL)
    assert db.outbox.pending_creates("contacts")[0]["record_id"] == local
    spy = Spy(fast_client)
    summary = push(settings, by="kim", api=HubSpotApi(spy))
    assert spy.upserts == 0
    assert [(r["status"], r["record_id"]) for r in summary["results"]] == [("created", made["id"])]
    assert _with_email(sandbox, EMAIL) == [made]
    assert db.queries.get_record("contacts", local) is None
    assert db.queries.get_record("contacts", made["id"])["lastname"] == "Murray"
    assert db.outbox.conflicts_frame().empty
