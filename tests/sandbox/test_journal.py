"""The sandbox's webhooks journal: client-credentials token, subscriptions, offsets, retention, snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.journal import JOURNAL_SCOPES

PORTAL = 62515
LOCAL = "/webhooks-journal/journal-local/2026-03"
SUBSCRIPTIONS = "/webhooks-journal/subscriptions/2026-03"


@pytest.fixture
def journal(sandbox: SandboxAdmin) -> Iterator[httpx2.Client]:
    """A client carrying a client-credentials token with every journal scope."""
    token = sandbox.client_credentials_token(list(JOURNAL_SCOPES))
    with httpx2.Client(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


def subscribe(
    journal: httpx2.Client, object_type_id: str, actions: list[str], **extra: Any
) -> dict[str, Any]:
    body = {
        "subscriptionType": "OBJECT",
        "portalId": PORTAL,
        "objectTypeId": object_type_id,
        "actions": actions,
    }
    response = journal.post(SUBSCRIPTIONS, json={**body, **extra})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def read_all(journal: httpx2.Client) -> list[dict[str, Any]]:
    """Every event from the earliest entry on, walking ``next`` until it answers 204."""
    events: list[dict[str, Any]] = []
    pointer = journal.get(f"{LOCAL}/earliest")
    for _ in range(1000):
        if pointer.status_code == 204:
            return events
        assert pointer.status_code == 200, pointer.text
        body = pointer.json()
        # The file is fetched like a pre-signed download: no token.
        file = httpx2.get(body["url"], timeout=30)
        assert file.status_code == 200, file.text
        events += file.json()["journalEvents"]
        pointer = journal.get(f"{LOCAL}/offset/{body['currentOffset']}/next")
    raise AssertionError("the journal never ended")


def test_client_credentials_token_carries_only_journal_scopes(sandbox: SandboxAdmin) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
        "scope": "developer.webhooks_journal.read crm.objects.contacts.read",
    }
    with httpx2.Client(base_url=sandbox.url, timeout=30) as http:
        token = http.post("/oauth/2026-03/token", data=form)
        assert token.status_code == 200, token.text
        body = token.json()
        assert "refresh_token" not in body and body["expires_in"] == 1800
        assert body["scopes"] == ["developer.webhooks_journal.read"]
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        # A journal token reads the journal, not the CRM.
        assert http.get(f"{LOCAL}/latest", headers=headers).status_code == 204
        assert_crm_error(http.get("/crm/v3/objects/contacts", headers=headers), 403, "MISSING_SCOPES")
        # 2026-09 has no client_credentials grant; a wrong secret is refused in the OAuth dialect.
        assert http.post("/oauth/2026-09/token", data=form).json()["status"] == "BAD_GRANT_TYPE"
        wrong = http.post("/oauth/2026-03/token", data={**form, "client_secret": "nope"})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"


def test_journal_needs_a_journal_scope(sandbox: SandboxAdmin, api: httpx2.Client) -> None:
    assert_crm_error(api.get(f"{LOCAL}/earliest"), 403, "MISSING_SCOPES")


def test_journal_holds_subscribed_changes_in_order(journal: httpx2.Client, api: httpx2.Client) -> None:
    subscribe(journal, "0-1", ["CREATE", "UPDATE"], properties=["firstname"])
    created = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "jo@example.com"}}).json()
    api.patch(f"/crm/v3/objects/contacts/{created['id']}", json={"properties": {"firstname": "Jo"}})
    api.patch(f"/crm/v3/objects/contacts/{created['id']}", json={"properties": {"lastname": "Unwatched"}})
    api.post("/crm/v3/objects/companies", json={"properties": {"name": "Not subscribed"}})

    events = read_all(journal)

    assert [(e["action"], e.get("propertyName")) for e in events] == [
        ("CREATE", None),
        ("UPDATE", "firstname"),
    ]
    assert {e["objectId"] for e in events} == {int(created["id"])}
    assert all(e["objectTypeId"] == "0-1" and e["portalId"] == PORTAL for e in events)
    assert events[1]["propertyValue"] == "Jo"


def test_merge_restore_delete_and_associations_reach_the_journal(
    sandbox: SandboxAdmin, journal: httpx2.Client, api: httpx2.Client
) -> None:
    subscribe(journal, "0-1", ["DELETE", "MERGE", "RESTORE"])
    journal.post(
        SUBSCRIPTIONS,
        json={
            "subscriptionType": "ASSOCIATION",
            "portalId": PORTAL,
            "objectTypeId": "0-1",
            "actions": ["ASSOCIATION_ADDED", "ASSOCIATION_REMOVED"],
            "associatedObjectTypeIds": ["0-2"],
        },
    )
    a, b, c = (r["id"] for r in sandbox.truth("contacts")[:3])
    company = sandbox.truth("companies")[0]["id"]
    api.put(f"/crm/v4/objects/contacts/{a}/associations/default/companies/{company}")
    api.delete(f"/crm/v3/objects/contacts/{c}")
    sandbox.restore("contacts", c)
    merged = sandbox.merge("contacts", a, b)

    events = read_all(journal)

    actions = [e["action"] for e in events]
    assert "ASSOCIATION_ADDED" in actions
    assert actions.index("DELETE") < actions.index("RESTORE") < actions.index("MERGE")
    merge = next(e for e in events if e["action"] == "MERGE")
    assert merge["objectId"] == int(merged["id"]) and merge["mergedObjectIds"] == [int(b)]
    added = next(e for e in events if e["action"] == "ASSOCIATION_ADDED")
    assert added["associatedObjectTypeId"] == "0-2"


def test_offset_that_left_retention_answers_404_and_the_journal_empties(
    sandbox: SandboxAdmin, journal: httpx2.Client, api: httpx2.Client
) -> None:
    subscribe(journal, "0-1", ["CREATE"])
    api.post("/crm/v3/objects/contacts", json={"properties": {"email": "old@example.com"}})
    offset = journal.get(f"{LOCAL}/latest").json()["currentOffset"]
    assert journal.get(f"{LOCAL}/offset/{offset}/next").status_code == 204  # caught up, still in retention

    assert sandbox.age_journal(3 * 24 * 3600 + 1) == 0

    body = assert_crm_error(journal.get(f"{LOCAL}/offset/{offset}/next"), 404, "OBJECT_NOT_FOUND")
    assert offset in body["message"]
    assert journal.get(f"{LOCAL}/earliest").status_code == 204
    # New changes start a fresh history the app can resume from.
    api.post("/crm/v3/objects/contacts", json={"properties": {"email": "new@example.com"}})
    assert [e["action"] for e in read_all(journal)] == ["CREATE"]


def test_download_url_needs_its_signature_and_expires(
    sandbox: SandboxAdmin, journal: httpx2.Client, api: httpx2.Client
) -> None:
    subscribe(journal, "0-1", ["CREATE"])
    api.post("/crm/v3/objects/contacts", json={"properties": {"email": "sig@example.com"}})
    url = journal.get(f"{LOCAL}/earliest").json()["url"]
    assert httpx2.get(url.replace("signature=", "signature=0"), timeout=30).status_code == 403
    sandbox.configure(journal_url_ttl_s=0.0)
    expired = journal.get(f"{LOCAL}/earliest").json()["url"]
    assert httpx2.get(expired, timeout=30).status_code == 403


def test_batch_endpoints_return_entries_oldest_first(journal: httpx2.Client, api: httpx2.Client) -> None:
    subscribe(journal, "0-1", ["CREATE"])
    for n in range(3):
        api.post("/crm/v3/objects/contacts", json={"properties": {"email": f"b{n}@example.com"}})
    earliest = journal.get(f"{LOCAL}/batch/earliest/2").json()
    latest = journal.get(f"{LOCAL}/batch/latest/2").json()
    assert earliest["status"] == "COMPLETE" and len(earliest["results"]) == 2
    assert earliest["results"][1]["currentOffset"] == latest["results"][0]["currentOffset"]
    assert_crm_error(journal.get(f"{LOCAL}/batch/earliest/0"), 400, "VALIDATION_ERROR")
    # Another portal's install has nothing here.
    assert journal.get(f"{LOCAL}/earliest", params={"installPortalId": 1}).status_code == 204


def test_subscriptions_upsert_list_and_delete(journal: httpx2.Client) -> None:
    first = subscribe(journal, "0-1", ["CREATE"])
    again = subscribe(journal, "contacts", ["CREATE", "UPDATE"], properties=["email"])
    assert again["id"] == first["id"] and again["actions"] == ["CREATE", "UPDATE"]
    assert again["objectTypeId"] == "0-1" and again["properties"] == ["email"]
    listed = journal.get(SUBSCRIPTIONS).json()["results"]
    assert [s["id"] for s in listed] == [first["id"]]
    assert_crm_error(
        journal.post(SUBSCRIPTIONS, json={"portalId": PORTAL, "objectTypeId": "0-1", "actions": ["EXPLODE"]}),
        400,
        "VALIDATION_ERROR",
    )
    assert journal.delete(f"{SUBSCRIPTIONS}/{first['id']}").status_code == 204
    assert_crm_error(journal.delete(f"{SUBSCRIPTIONS}/{first['id']}"), 404, "OBJECT_NOT_FOUND")


def test_snapshot_writes_current_values_to_the_journal(sandbox: SandboxAdmin, journal: httpx2.Client) -> None:
    contact = sandbox.truth("contacts")[0]
    response = journal.post(
        "/webhooks-journal/snapshots/2026-03/crm",
        json={
            "snapshotRequests": [
                {
                    "portalId": PORTAL,
                    "objectId": int(contact["id"]),
                    "objectTypeId": "0-1",
                    "properties": ["email"],
                },
                {"portalId": PORTAL, "objectId": 1, "objectTypeId": "0-1", "properties": ["email"]},
            ]
        },
    )
    assert response.status_code == 200, response.text
    found, missing = response.json()["results"]
    status = journal.get(f"/webhooks-journal/snapshots/2026-03/crm/status/{found['snapshotStatusId']}").json()
    assert status["status"] == "SUCCESS"
    missing_status = journal.get(
        f"/webhooks-journal/snapshots/2026-03/crm/status/{missing['snapshotStatusId']}"
    )
    assert missing_status.json()["status"] == "FAILED"
    (event,) = read_all(journal)
    assert event["action"] == "SNAPSHOT" and event["properties"] == {"email": contact["properties"]["email"]}


def test_without_a_webhook_url_the_journal_still_fills(sandbox: SandboxAdmin, journal: httpx2.Client) -> None:
    assert sandbox.config()["webhook_url"] == ""
    subscribe(journal, "0-1", ["UPDATE"])
    contact = sandbox.truth("contacts")[0]["id"]
    sandbox.patch_object("contacts", contact, {"jobtitle": "Pilot"})
    (event,) = read_all(journal)
    assert (event["action"], event["changeSource"], event["propertyName"]) == ("UPDATE", "CRM_UI", "jobtitle")


def test_gdpr_deletion_reaches_a_privacy_subscription_only(
    sandbox: SandboxAdmin, journal: httpx2.Client, api: httpx2.Client
) -> None:
    subscribe(journal, "0-1", ["DELETE"])
    journal.post(
        SUBSCRIPTIONS,
        json={
            "subscriptionType": "GDPR_PRIVACY_DELETION",
            "portalId": PORTAL,
            "objectTypeId": "0-1",
            "actions": ["GDPR_DELETE"],
        },
    )
    doomed = sandbox.truth("contacts")[0]["id"]
    assert api.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": doomed}).status_code == 204
    (event,) = read_all(journal)
    assert (event["action"], event["objectId"]) == ("GDPR_DELETE", int(doomed))
