"""Fetch-on-notify against the sandbox over loopback: events in, HubSpot's state in the cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from crm import oauth, store, sync, webhooks
from crm.config import Settings
from crm.errors import NeedsReconnect, Unreachable, WebhookRejected
from crm.hubspot import HubSpotClient, StaticToken
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_SECRET
from tests.webhooks.deliveries import PORTAL_ID, body_of, event, make_settings, route_app, sign, wait_until


@pytest.fixture
def live_settings(
    sandbox: SandboxAdmin, sandbox_token: str, tmp_path: Path, cache_target: str
) -> Iterator[Settings]:
    """Private-app settings against the sandbox, signed with the sandbox app's secret."""
    settings = make_settings(
        tmp_path,
        CRM_DB=cache_target,
        HUBSPOT_ACCESS_TOKEN=sandbox_token,
        HUBSPOT_BASE_URL=sandbox.url,
        HUBSPOT_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
    )
    yield settings
    webhooks.stop_worker(settings)


def deliver(settings: Settings, *events: dict[str, Any]) -> int:
    body = body_of(*events)
    return webhooks.receive(settings, method="POST", headers=sign(settings, body), body=body)


def cached(settings: Settings, object_type: str, record_id: str) -> dict[str, Any] | None:
    db = store.open(settings)
    try:
        return db.queries.get_record(object_type, record_id)
    finally:
        db.close()


def truth(sandbox: SandboxAdmin, object_type: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in sandbox.truth(object_type)}


def batch_reads(sandbox: SandboxAdmin) -> int:
    stats = sandbox.stats()
    return sum(n for route, n in _flatten(stats.get("requests", {})) if "batch/read" in route)


def _flatten(requests: Any) -> Iterator[tuple[str, int]]:
    if isinstance(requests, dict):
        for key, value in requests.items():
            if isinstance(value, dict):
                for inner, n in _flatten(value):
                    yield f"{key} {inner}", n
            else:
                yield str(key), int(value)


def first_contact(sandbox: SandboxAdmin) -> str:
    return sorted(truth(sandbox, "contacts"), key=int)[0]


def test_property_change_is_read_back_from_hubspot_and_cached(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    contact = first_contact(sandbox)
    sandbox.patch_object("contacts", contact, {"firstname": "Grace", "jobtitle": "Admiral"})
    assert deliver(live_settings, event(1, int(contact))) == 1
    assert webhooks.process_pending(live_settings) == 1
    row = cached(live_settings, "contacts", contact)
    assert row is not None
    assert (row["firstname"], row["jobtitle"]) == ("Grace", "Admiral")
    status = webhooks.live_status(live_settings)
    assert (status["processed"], status["pending"]) == (1, 0)


def test_ticket_and_note_changes_are_read_back_into_the_cache(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    ticket = sorted(truth(sandbox, "tickets"), key=int)[0]
    note = sorted(truth(sandbox, "notes"), key=int)[0]
    sandbox.patch_object("tickets", ticket, {"subject": "Printer on fire", "hs_ticket_priority": "HIGH"})
    sandbox.patch_object("notes", note, {"hs_note_body": "<p>Spoke to <b>Ada</b></p><script>x()</script>"})
    assert (
        deliver(
            live_settings,
            event(
                1,
                int(ticket),
                "ticket.propertyChange",
                propertyName="subject",
                propertyValue="Printer on fire",
            ),
            event(2, int(note), "object.creation", objectTypeId="0-46"),
        )
        == 2
    )
    assert webhooks.process_pending(live_settings) == 2
    row = cached(live_settings, "tickets", ticket)
    assert row is not None and (row["subject"], row["hs_ticket_priority"]) == ("Printer on fire", "HIGH")
    with store.open(live_settings.db) as db:
        assert db.interactions.body("notes", note) == "Spoke to Ada"
        linked = {
            r[0]
            for r in db.conn.execute(
                "SELECT record_type FROM interaction_links WHERE object_type = 'notes' AND id = ?", (note,)
            ).fetchall()
        }
    assert linked == {
        t for t, links in (truth(sandbox, "notes")[note].get("associations") or {}).items() if links
    }


def test_a_new_inbox_message_and_an_archived_thread_reach_the_cache(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    sync.run_sync(live_settings, kind="full")
    contact = first_contact(sandbox)
    started = sandbox.start_thread(contact, "Is my parcel <lost>?")
    thread_id = str(started["id"])
    gone = next(str(t["id"]) for t in sandbox.threads() if not t["archived"] and str(t["id"]) != thread_id)
    archived = httpx2.delete(
        f"{sandbox.url}/conversations/v3/conversations/threads/{gone}",
        headers={"Authorization": f"Bearer {sandbox.private_app_token()}"},
    )
    assert archived.status_code == 204
    assert (
        deliver(
            live_settings,
            event(1, int(thread_id), "conversation.newMessage", messageId="m1", messageType="MESSAGE"),
            event(2, int(gone), "conversation.deletion"),
        )
        == 2
    )
    assert webhooks.process_pending(live_settings) == 2
    with store.open(live_settings.db) as db:
        assert "Is my parcel <lost>?" in (db.interactions.body("threads", thread_id) or "")
        rows = db.interactions.timeline("contacts", contact, types=["threads"]).rows
        assert thread_id in [r["id"] for r in rows]
        assert db.interactions.get("threads", gone)["archived"] == 1


def test_same_batch_delivered_twice_is_applied_once(sandbox: SandboxAdmin, live_settings: Settings) -> None:
    contact = first_contact(sandbox)
    batch = [event(10, int(contact)), event(11, int(contact), propertyName="lastname")]
    assert deliver(live_settings, *batch) == 2
    assert deliver(live_settings, *batch) == 0
    before = batch_reads(sandbox)
    assert webhooks.process_pending(live_settings) == 2
    assert batch_reads(sandbox) == before + 1  # both events coalesce into one read
    # A late redelivery after processing changes nothing and asks HubSpot nothing.
    assert deliver(live_settings, *batch) == 0
    assert webhooks.process_pending(live_settings) == 0
    assert batch_reads(sandbox) == before + 1
    assert webhooks.live_status(live_settings)["processed"] == 2


def test_out_of_order_events_end_with_hubspots_current_value(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    contact = first_contact(sandbox)
    sandbox.patch_object("contacts", contact, {"firstname": "First"})
    sandbox.patch_object("contacts", contact, {"firstname": "Second"})
    newer = event(21, int(contact), propertyValue="Second", occurredAt=2_000)
    older = event(20, int(contact), propertyValue="First", occurredAt=1_000)
    deliver(live_settings, newer)
    deliver(live_settings, older)
    webhooks.process_pending(live_settings)
    assert cached(live_settings, "contacts", contact)["firstname"] == "Second"


def test_deleted_record_is_flagged_archived(sandbox: SandboxAdmin, live_settings: Settings) -> None:
    contact = first_contact(sandbox)
    deliver(live_settings, event(30, int(contact), "contact.creation"))
    webhooks.process_pending(live_settings)
    assert cached(live_settings, "contacts", contact)["archived"] == 0
    sandbox.archive_object("contacts", contact)
    deliver(live_settings, event(31, int(contact), "contact.deletion"))
    webhooks.process_pending(live_settings)
    assert cached(live_settings, "contacts", contact)["archived"] == 1


def test_merge_removes_the_merged_record_and_rereads_the_survivor(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    survivor, merged = sorted(truth(sandbox, "contacts"), key=int)[:2]
    deliver(live_settings, event(40, int(merged), "contact.creation"))
    webhooks.process_pending(live_settings)
    sandbox.patch_object("contacts", survivor, {"firstname": "Merged"})
    deliver(
        live_settings,
        event(
            41,
            int(survivor),
            "contact.merge",
            primaryObjectId=int(survivor),
            mergedObjectIds=[int(merged)],
            newObjectId=int(survivor),
        ),
    )
    webhooks.process_pending(live_settings)
    # Gone, not archived: its id now means the survivor.
    assert cached(live_settings, "contacts", merged) is None
    assert cached(live_settings, "contacts", survivor)["firstname"] == "Merged"


def test_association_change_rereads_the_records_associations(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    contacts = truth(sandbox, "contacts")
    contact = next(cid for cid, c in sorted(contacts.items()) if c["associations"].get("companies"))
    company = contacts[contact]["associations"]["companies"][0]["id"]
    deliver(
        live_settings,
        event(
            50,
            int(contact),
            "contact.associationChange",
            associationType="CONTACT_TO_COMPANY",
            fromObjectId=int(contact),
            toObjectId=int(company),
            associationRemoved=False,
        ),
    )
    webhooks.process_pending(live_settings)
    db = store.open(live_settings)
    try:
        linked = db.conn.execute(
            "SELECT to_id FROM associations WHERE from_type = 'contacts' AND from_id = ? AND to_type = 'companies'",
            (contact,),
        ).fetchall()
    finally:
        db.close()
    assert {row[0] for row in linked} == {a["id"] for a in contacts[contact]["associations"]["companies"]}


def test_events_about_other_object_types_are_marked_handled(live_settings: Settings) -> None:
    deliver(live_settings, event(60, 5, "ticket.creation"))
    assert webhooks.process_pending(live_settings) == 1
    assert webhooks.live_status(live_settings)["pending"] == 0


def test_pending_local_edit_is_kept_and_a_remote_change_to_it_becomes_a_conflict(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    sync.run_sync(live_settings, kind="full")
    contact = first_contact(sandbox)
    sync.queue_edits(live_settings, "contacts", {contact: {"firstname": "Mine"}}, by="staff@example.com")
    sandbox.patch_object("contacts", contact, {"firstname": "Theirs", "jobtitle": "Remote title"})
    deliver(live_settings, event(70, int(contact)))
    webhooks.process_pending(live_settings)
    row = cached(live_settings, "contacts", contact)
    assert row["firstname"] == "Mine"
    assert row["jobtitle"] == "Remote title"
    db = store.open(live_settings)
    try:
        conflicts = db.outbox.conflicts_frame("contacts")
    finally:
        db.close()
    assert len(conflicts) == 1
    assert "Theirs" in conflicts.astype(str).to_numpy().ravel().tolist()


def test_unreachable_hubspot_leaves_events_pending_with_the_error(offline_settings: Settings) -> None:
    deliver(offline_settings, event(80, 101))
    client = HubSpotClient(
        offline_settings, StaticToken("pat-na1-x", portal_key="offline"), max_retries=0, timeout=2.0
    )
    with client, pytest.raises(Unreachable):
        webhooks.process_pending(offline_settings, client=client)
    status = webhooks.live_status(offline_settings)
    assert (status["pending"], status["processed"]) == (1, 0)
    assert "Unreachable" in status["last_error"]


def test_events_stop_being_retried_after_the_attempt_limit_but_stay_in_the_inbox(
    offline_settings: Settings,
) -> None:
    deliver(offline_settings, event(90, 101))
    client = HubSpotClient(
        offline_settings, StaticToken("pat-na1-x", portal_key="offline-limit"), max_retries=0, timeout=2.0
    )
    with client:
        for _ in range(webhooks.MAX_ATTEMPTS):
            with pytest.raises(Unreachable):
                webhooks.process_pending(offline_settings, client=client)
        assert webhooks.process_pending(offline_settings, client=client) == 0
    status = webhooks.live_status(offline_settings)
    assert (status["pending"], status["failed"], status["processed"]) == (0, 1, 0)


def test_route_answers_within_a_second_while_processing_is_slow(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    contact = first_contact(sandbox)
    sandbox.patch_object("contacts", contact, {"firstname": "Slowpoke"})
    sandbox.configure(latency_ms=1500)
    body = body_of(event(100, int(contact)))
    with TestClient(route_app(live_settings)) as client:
        started = time.monotonic()
        response = client.post("/hubspot/webhook", content=body, headers=sign(live_settings, body))
        elapsed = time.monotonic() - started
    assert response.status_code == 204
    assert elapsed < 1.0
    wait_until(
        lambda: (cached(live_settings, "contacts", contact) or {}).get("firstname") == "Slowpoke", within=20.0
    )


def test_worker_drains_events_left_from_before_a_restart(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    contact = first_contact(sandbox)
    sandbox.patch_object("contacts", contact, {"firstname": "Leftover"})
    deliver(live_settings, event(110, int(contact)))  # stored, but nobody woke a worker
    webhooks.ensure_worker(live_settings)
    wait_until(lambda: (cached(live_settings, "contacts", contact) or {}).get("firstname") == "Leftover")


def test_events_from_another_portal_are_refused_and_counted(
    sandbox: SandboxAdmin, live_settings: Settings
) -> None:
    assert oauth.connection_info(live_settings).portal_id == PORTAL_ID  # the portal is now on record
    contact = first_contact(sandbox)
    with pytest.raises(WebhookRejected) as refused:
        deliver(live_settings, event(120, int(contact), portalId=PORTAL_ID + 1))
    assert refused.value.reason == "unknown_portal"
    assert webhooks.process_pending(live_settings) == 0
    assert cached(live_settings, "contacts", contact) is None
    status = webhooks.live_status(live_settings)
    assert (status["pending"], status["rejected"]) == (0, {"unknown_portal": 1})
    # In a delivery that also has events of the connected portal, those are kept.
    assert (
        deliver(live_settings, event(121, int(contact)), event(122, int(contact), portalId=PORTAL_ID + 1))
        == 1
    )
    assert webhooks.live_status(live_settings)["rejected"] == {"unknown_portal": 2}


def test_rejected_token_leaves_events_pending_with_needs_reconnect(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        HUBSPOT_ACCESS_TOKEN="pat-na1-revoked",
        HUBSPOT_BASE_URL=sandbox.url,
        HUBSPOT_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
    )
    deliver(settings, event(130, 1))
    with pytest.raises(NeedsReconnect):
        webhooks.process_pending(settings)
    status = webhooks.live_status(settings)
    assert (status["pending"], status["processed"]) == (1, 0)
    assert status["last_error"].startswith("NeedsReconnect")


def test_a_round_whose_portal_is_switched_while_reading_writes_nothing(
    sandbox: SandboxAdmin, live_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert oauth.connection_info(live_settings).portal_id == PORTAL_ID
    contact = first_contact(sandbox)
    deliver(live_settings, event(140, int(contact)))
    real_fetch = webhooks._fetch

    def fetch_then_switch(db: Any, client: Any, plan: Any) -> Any:
        fetched = real_fetch(db, client, plan)
        with db.atomic():  # another tab connects another portal meanwhile
            db.auth.update_connection(portal_id=PORTAL_ID + 1)
        return fetched

    monkeypatch.setattr(webhooks, "_fetch", fetch_then_switch)
    assert webhooks.process_pending(live_settings) == 0
    assert cached(live_settings, "contacts", contact) is None
    assert webhooks.live_status(live_settings)["pending"] == 1
