"""Sync you can prove: merges, restores and GDPR deletions reach the cache as HubSpot made them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from crm import journal, store, sync, webhooks
from crm.config import Settings
from crm.sandbox.admin import SandboxAdmin
from tests.live.test_journal_mode import cached, contact_ids, started

Make = Callable[[], journal.JournalPoller]


def outbox(settings: Settings) -> list[dict[str, Any]]:
    with store.open(settings) as db:
        return db.outbox.rows("contacts")


def companies_of(settings: Settings, contact_id: str) -> set[str]:
    with store.open(settings) as db:
        frame = db.queries.associated_records("contacts", contact_id, "companies")
    return {str(i) for i in frame.index}


def with_company(sandbox: SandboxAdmin) -> tuple[str, str]:
    """A contact that has a company in HubSpot, and that company."""
    for record in sorted(sandbox.truth("contacts"), key=lambda r: int(r["id"])):
        linked = record.get("associations", {}).get("companies") or []
        if linked and not record["archived"]:
            return str(record["id"]), str(linked[0]["id"])
    raise AssertionError("the seeded portal has no contact with a company")


def test_a_merge_removes_both_old_rows_and_moves_associations_and_queued_edits_to_the_new_id(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make
) -> None:
    poller = pollers()
    started(poller, synced)
    loser, company = with_company(sandbox)
    primary = next(c for c in contact_ids(sandbox) if c != loser)
    sync.queue_edits(synced, "contacts", {loser: {"jobtitle": "Queued on the loser"}}, by="ann")
    sync.queue_edits(synced, "contacts", {primary: {"city": "Queued on the primary"}}, by="bob")

    winner = str(sandbox.merge("contacts", primary, loser)["id"])
    assert winner not in (primary, loser)  # HubSpot gives a merged contact a new id
    poller.tick()

    assert cached(synced, "contacts", loser) == {} and cached(synced, "contacts", primary) == {}
    merged = cached(synced, "contacts", winner)
    assert merged["jobtitle"] == "Queued on the loser" and merged["city"] == "Queued on the primary"
    active = [r for r in outbox(synced) if r["status"] in ("pending", "conflict")]
    assert {(r["record_id"], r["property"]) for r in active} == {(winner, "jobtitle"), (winner, "city")}
    assert company in companies_of(synced, winner)
    with store.open(synced) as db:
        audit = db.outbox.audit_log()
    assert set(audit["result"]) == {"re-pointed"} and set(audit["record_id"]) == {loser, primary}
    [note] = journal.live_overview(synced)["merge_notes"]
    assert note["winner"] == winner and set(note["losers"]) == {primary, loser}
    assert "2 queued edits now apply to it" in note["text"]


def test_a_record_read_back_under_another_id_is_followed_as_a_merge(
    sandbox: SandboxAdmin, synced: Settings
) -> None:
    loser, company = with_company(sandbox)
    primary = next(c for c in contact_ids(sandbox) if c != loser)
    sync.queue_edits(synced, "contacts", {loser: {"jobtitle": "Still mine"}}, by="ann")
    winner = str(sandbox.merge("contacts", primary, loser)["id"])
    # Only a change notice for the loser arrives (no merge event): reading it back tells.
    with store.open(synced) as db:
        db.inbox.add_events(
            [{"portalId": sandbox.config()["portal_id"], "subscriptionId": 9, "eventId": 1, "objectId": int(loser),
              "subscriptionType": "contact.propertyChange", "propertyName": "jobtitle"}],
            received_at="2026-12-06T00:00:00+00:00", received_ts=0.0,
        )  # fmt: skip

    webhooks.process_pending(synced)

    assert cached(synced, "contacts", loser) == {}
    assert cached(synced, "contacts", primary) == {}  # hs_merged_object_ids names it too
    assert cached(synced, "contacts", winner)["jobtitle"] == "Still mine"
    assert [r["record_id"] for r in outbox(synced) if r["status"] == "pending"] == [winner]
    assert company in companies_of(synced, winner)


def test_a_restored_record_comes_back(sandbox: SandboxAdmin, synced: Settings, pollers: Make) -> None:
    poller = pollers()
    started(poller, synced)
    contact = contact_ids(sandbox)[10]
    sandbox.archive_object("contacts", contact)
    poller.tick()
    assert cached(synced, "contacts", contact)["archived"]

    sandbox.restore("contacts", contact)
    poller.tick()

    assert not cached(synced, "contacts", contact)["archived"]


def test_a_gdpr_deletion_removes_the_contact_its_edits_and_the_values_in_its_audit(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make
) -> None:
    poller = pollers()
    started(poller, synced)
    person, company = with_company(sandbox)
    sync.queue_edits(synced, "contacts", {person: {"jobtitle": "Private-Pushed-Title"}}, by="ann")
    assert sync.push(synced, by="ann")["pushed"] == 1
    sync.queue_edits(synced, "contacts", {person: {"city": "Private-Queued-City"}}, by="ann")
    poller.tick()  # the pushed change comes back through the journal too, value and all

    sandbox.gdpr_delete(person)
    poller.tick()

    assert cached(synced, "contacts", person) == {}
    assert [r for r in outbox(synced) if r["record_id"] == person] == []
    assert person not in {str(i) for i in _company_contacts(synced, company)}
    with store.open(synced) as db:
        audit = db.outbox.audit_log()
    mine = audit[audit["record_id"] == person]
    assert list(mine["result"]) == ["pushed"] and list(mine["by"]) == ["ann"]  # that it happened...
    assert mine["old_value"].isna().all() and mine["new_value"].isna().all()  # ...not what it was
    assert "GDPR" in mine["detail"].iloc[0]
    dump = "\n".join(sqlite3.connect(synced.db_path).iterdump())
    assert "Private-Pushed-Title" not in dump and "Private-Queued-City" not in dump


def _company_contacts(settings: Settings, company: str) -> list[str]:
    with store.open(settings) as db:
        return list(db.queries.associated_records("companies", company, "contacts").index)
