"""The admin API, webhook events from writes, and the seeded portal."""

from __future__ import annotations

import re

import httpx2
import pytest
from sandbox_checks import WebhookInbox

from crm.sandbox.admin import SandboxAdmin

CONTACTS = "/crm/v3/objects/contacts"


def _status(call) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(httpx2.HTTPStatusError) as caught:
        call()
    return caught.value.response.status_code


def test_reset_to_other_sizes_including_zero(sandbox: SandboxAdmin) -> None:
    counts = sandbox.reset(contacts=3, companies=0, deals=0, owners=0, tickets=0, engagements=0, threads=0)
    assert counts == {
        "contacts": 3,
        "companies": 0,
        "deals": 0,
        "owners": 0,
        "tickets": 0,
        "engagements": 0,
        "threads": 0,
    }
    assert len(sandbox.truth("contacts")) == 3 and sandbox.truth("companies") == []
    assert all(not c["associations"]["companies"] for c in sandbox.truth("contacts"))


def test_reset_refuses_unknown_options_and_negative_sizes(sandbox: SandboxAdmin) -> None:
    assert _status(lambda: sandbox.reset(products=5)) == 400
    assert _status(lambda: sandbox.reset(tickets=-1)) == 400
    assert _status(lambda: sandbox.reset(contacts=-1)) == 400


def test_reset_keeps_tokens_unless_asked(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.reset(contacts=5)
    assert api.get(CONTACTS).status_code == 200
    sandbox.reset(contacts=5, tokens=True)
    assert api.get(CONTACTS).status_code == 401


def test_config_changes_are_checked(sandbox: SandboxAdmin) -> None:
    assert sandbox.configure(latency_ms=5, burst_limit=50)["burst_limit"] == 50
    assert _status(lambda: sandbox.configure(no_such_setting=1)) == 400
    assert _status(lambda: sandbox.configure(burst_limit="many")) == 400
    assert _status(lambda: sandbox.configure(redirect_uris="http://x")) == 400
    assert "client_secret" not in sandbox.config()


def test_reset_with_config_restores_the_startup_settings(sandbox: SandboxAdmin) -> None:
    sandbox.configure(burst_limit=1, latency_ms=50, faults={"500": 0.1})
    sandbox.reset(config=True)
    config = sandbox.config()
    assert (config["burst_limit"], config["latency_ms"], config["faults"]) == (110, 0.0, {})


def test_stats_count_requests_by_route_template_and_status(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    api.get(CONTACTS)
    api.get(f"{CONTACTS}/1")
    api.get(f"{CONTACTS}/2")
    stats = sandbox.stats()
    assert stats["requests"]["GET /crm/v3/objects/{objectType}/{objectId}"] == 2
    assert stats["requests"]["GET /crm/v3/objects/{objectType}"] == 1
    assert stats["responses"]["404"] == 2


def test_truth_includes_archived_records_with_every_property(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    contact = sandbox.truth("contacts")[0]
    api.delete(f"{CONTACTS}/{contact['id']}").raise_for_status()
    truth = {r["id"]: r for r in sandbox.truth("contacts")}
    assert truth[contact["id"]]["archived"] is True
    assert {"email", "country", "lifecyclestage", "hs_object_id"} <= set(truth[contact["id"]]["properties"])


def test_admin_patch_acts_like_the_hubspot_ui(
    api: httpx2.Client, sandbox: SandboxAdmin, webhook_inbox: WebhookInbox
) -> None:
    contact = sandbox.truth("contacts")[0]
    changed = sandbox.patch_object("contacts", contact["id"], {"firstname": "Edited", "city": "Kyoto"})
    assert changed["properties"]["firstname"] == "Edited"
    assert changed["properties"]["lastmodifieddate"] > contact["properties"]["lastmodifieddate"]
    assert api.get(f"{CONTACTS}/{contact['id']}").json()["properties"]["firstname"] == "Edited"
    sandbox.flush_webhooks()
    events = [e for e in webhook_inbox.events if e["objectId"] == int(contact["id"])]
    assert {
        (e["subscriptionType"], e["propertyName"], e["propertyValue"], e["changeSource"]) for e in events
    } == {
        ("contact.propertyChange", "firstname", "Edited", "CRM_UI"),
        ("contact.propertyChange", "city", "Kyoto", "CRM_UI"),
    }


def test_admin_patch_validates_like_the_api(sandbox: SandboxAdmin) -> None:
    contact = sandbox.truth("contacts")[0]
    assert _status(lambda: sandbox.patch_object("contacts", contact["id"], {"lifecyclestage": "Lead"})) == 400
    assert _status(lambda: sandbox.patch_object("contacts", "1", {"firstname": "X"})) == 404


def test_admin_archive_fires_a_deletion(sandbox: SandboxAdmin, webhook_inbox: WebhookInbox) -> None:
    deal = sandbox.truth("deals")[0]
    sandbox.archive_object("deals", deal["id"])
    assert next(d for d in sandbox.truth("deals") if d["id"] == deal["id"])["archived"] is True
    sandbox.flush_webhooks()
    assert {
        "subscriptionType": "deal.deletion",
        "objectId": int(deal["id"]),
        "changeSource": "CRM_UI",
    }.items() <= webhook_inbox.events[0].items()


def test_api_writes_fire_creation_change_association_and_deletion_events(
    api: httpx2.Client, sandbox: SandboxAdmin, webhook_inbox: WebhookInbox
) -> None:
    company = sandbox.truth("companies")[0]
    created = api.post(
        CONTACTS,
        json={
            "properties": {"email": "hook@example.com"},
            "associations": [
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ],
        },
    ).json()
    contact_id = int(created["id"])
    api.patch(
        f"{CONTACTS}/{contact_id}", json={"properties": {"firstname": "Hook", "email": "hook@example.com"}}
    )
    api.delete(f"{CONTACTS}/{contact_id}")
    sandbox.flush_webhooks()
    mine = [e for e in webhook_inbox.events if contact_id in (e["objectId"], e.get("toObjectId"))]
    kinds = [(e["subscriptionType"], e.get("propertyName")) for e in mine]
    assert ("contact.creation", None) in kinds
    assert ("contact.propertyChange", "firstname") in kinds
    assert ("contact.propertyChange", "email") not in kinds, "an unchanged value is no change"
    assert ("contact.deletion", None) in kinds
    association = next(e for e in mine if e["subscriptionType"] == "contact.associationChange")
    assert association["associationType"] == "CONTACT_TO_COMPANY"
    assert association["isPrimaryAssociation"] is True and association["associationRemoved"] is False
    assert any(e["subscriptionType"] == "company.associationChange" for e in mine)
    assert all(e["changeSource"] == "API" for e in mine)
    assert all(isinstance(e["portalId"], int) and isinstance(e["occurredAt"], int) for e in mine)


def test_same_seed_gives_the_same_portal_and_another_seed_another(sandbox: SandboxAdmin) -> None:
    first = sandbox.truth("contacts")
    sandbox.reset(seed=7)
    assert sandbox.truth("contacts") == first
    sandbox.reset(seed=8)
    assert [c["properties"]["email"] for c in sandbox.truth("contacts")] != [
        c["properties"]["email"] for c in first
    ]


def test_seed_data_looks_real_and_includes_hostile_values(sandbox: SandboxAdmin) -> None:
    sandbox.reset(contacts=300, companies=40, deals=60)
    contacts = sandbox.truth("contacts")
    values = [v for c in contacts for v in c["properties"].values()]
    assert "<script>alert(1)</script>" in values
    assert "<img src=x onerror=alert(1)>" in values
    assert '=HYPERLINK("http://evil.example","x")' in values
    assert {"+cmd", "@SUM(A1)"} <= set(values)
    assert any(len(v) > 5000 for v in values)
    assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", v) for v in values), "Japanese or Chinese"
    assert any(re.search(r"[\u0400-\u04ff]", v) for v in values), "Cyrillic"
    assert any(re.search(r"[\U0001F300-\U0001FAFF]", v) for v in values), "emoji"
    assert any("](http" in v for v in values), "markdown link"
    emails = [c["properties"]["email"] for c in contacts]
    assert len(set(emails)) == 300 and all(e.isascii() and "@" in e for e in emails)
    created = [c["createdAt"] for c in contacts]
    assert created == sorted(created), "ids rise with creation time"
    deals = sandbox.truth("deals")
    assert {d["properties"]["pipeline"] for d in deals} == {"default", "11348541"}
    assert any("<img" in d["properties"]["dealname"] for d in deals)
    assert any("<script>" in c["properties"]["name"] for c in sandbox.truth("companies"))
