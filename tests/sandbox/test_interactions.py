"""Tickets and engagements in the sandbox over loopback: paging, search, associations,
ticket pipelines, scopes, webhooks and the seeded data (docs/INTERACTIONS_API.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from sandbox_checks import WebhookInbox, assert_crm_error, walk_pages

from crm.sandbox.admin import SandboxAdmin

ENGAGEMENTS = ("notes", "calls", "emails", "meetings", "tasks")
TYPE_IDS = {
    "tickets": "0-5",
    "notes": "0-46",
    "calls": "0-48",
    "emails": "0-49",
    "meetings": "0-47",
    "tasks": "0-27",
}


def _client(sandbox: SandboxAdmin, scopes: list[str]) -> httpx2.Client:
    token = sandbox.private_app_token(scopes=scopes)
    return httpx2.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.parametrize("object_type", ["tickets", *ENGAGEMENTS])
def test_list_pages_reach_every_record_on_v3_and_dated_paths(
    api: httpx2.Client, sandbox: SandboxAdmin, object_type: str
) -> None:
    truth = {r["id"] for r in sandbox.truth(object_type)}
    assert truth, f"the small portal seeds some {object_type}"
    v3 = walk_pages(api, f"/crm/v3/objects/{object_type}", limit="7")
    dated = walk_pages(api, f"/crm/objects/2026-03/{TYPE_IDS[object_type]}", limit="100")
    assert [r["id"] for r in v3] == [r["id"] for r in dated]
    assert {r["id"] for r in v3} == truth and len(v3) == len(truth)
    assert [int(r["id"]) for r in v3] == sorted(int(r["id"]) for r in v3)


def test_default_properties_differ_for_tickets_and_engagements(api: httpx2.Client) -> None:
    ticket = api.get("/crm/v3/objects/tickets", params={"limit": 1}).json()["results"][0]
    assert {
        "subject",
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_priority",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    } <= set(ticket["properties"])
    note = api.get("/crm/v3/objects/notes", params={"limit": 1}).json()["results"][0]
    assert set(note["properties"]) == {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
    assert note["properties"]["hs_createdate"] == note["createdAt"]


def test_search_engagements_by_hs_timestamp_range_newest_first(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    stamps = sorted(r["properties"]["hs_timestamp"] for r in sandbox.truth("emails"))
    low, high = stamps[1], stamps[-2]
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_timestamp", "operator": "BETWEEN", "value": low, "highValue": high}
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_timestamp", "direction": "DESCENDING"}],
        "properties": ["hs_timestamp", "hs_email_subject"],
        "limit": 100,
    }
    found = api.post("/crm/v3/objects/emails/search", json=body).json()
    got = [r["properties"]["hs_timestamp"] for r in found["results"]]
    assert got == sorted((s for s in stamps if low <= s <= high), reverse=True)
    assert found["total"] == len(got) == len(stamps) - 2


def test_search_by_hs_lastmodifieddate_finds_only_what_changed(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    latest = max(r["properties"]["hs_lastmodifieddate"] for r in sandbox.truth("tasks"))
    task = sandbox.truth("tasks")[0]
    changed = api.patch(
        f"/crm/v3/objects/tasks/{task['id']}", json={"properties": {"hs_task_status": "COMPLETED"}}
    )
    assert changed.status_code == 200, changed.text
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": latest}]}
        ]
    }
    found = api.post("/crm/v3/objects/tasks/search", json=body).json()
    assert [r["id"] for r in found["results"]] == [task["id"]]


def test_note_created_with_associations_shows_from_the_contact_side(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    contact = sandbox.truth("contacts")[5]["id"]
    created = api.post(
        "/crm/v3/objects/notes",
        json={
            "properties": {"hs_timestamp": "2026-01-05T10:00:00Z", "hs_note_body": "Called about renewal"},
            "associations": [
                {
                    "to": {"id": contact},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
                }
            ],
        },
    )
    assert created.status_code == 201, created.text
    note = created.json()
    assert note["properties"]["hs_timestamp"] == "2026-01-05T10:00:00.000Z"
    linked = api.get(f"/crm/v4/objects/contacts/{contact}/associations/notes").json()["results"]
    assert {
        "toObjectId": int(note["id"]),
        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 201, "label": None}],
    } in linked


def test_engagement_without_hs_timestamp_is_refused(api: httpx2.Client) -> None:
    response = api.post("/crm/v3/objects/calls", json={"properties": {"hs_call_body": "no time"}})
    assert "hs_timestamp" in assert_crm_error(response, 400, "VALIDATION_ERROR")["message"]


def test_meeting_timestamp_defaults_to_its_start_time(api: httpx2.Client) -> None:
    response = api.post(
        "/crm/v3/objects/meetings",
        json={
            "properties": {
                "hs_meeting_title": "Kick-off",
                "hs_meeting_start_time": "2026-02-01T09:00:00Z",
                "hs_meeting_end_time": "2026-02-01T10:00:00Z",
            }
        },
    )
    assert response.status_code == 201, response.text
    meeting = api.get(
        f"/crm/v3/objects/meetings/{response.json()['id']}", params={"properties": "hs_timestamp"}
    )
    assert meeting.json()["properties"]["hs_timestamp"] == "2026-02-01T09:00:00.000Z"


def test_batch_create_update_read_and_archive_calls(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = sandbox.truth("contacts")[0]["id"]
    created = api.post(
        "/crm/v3/objects/calls/batch/create",
        json={
            "inputs": [
                {
                    "properties": {
                        "hs_timestamp": f"2026-03-0{i}T08:00:00Z",
                        "hs_call_direction": "OUTBOUND",
                        "hs_call_status": "COMPLETED",
                        "hs_call_duration": "61000",
                    },
                    "associations": [
                        {
                            "to": {"id": contact},
                            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
                        }
                    ],
                }
                for i in (1, 2)
            ]
        },
    )
    assert created.status_code == 201, created.text
    ids = sorted(r["id"] for r in created.json()["results"])
    updated = api.post(
        "/crm/v3/objects/calls/batch/update",
        json={"inputs": [{"id": i, "properties": {"hs_call_body": "Сделка закрыта ✅"}} for i in ids]},
    )
    assert updated.status_code == 200, updated.text
    read = api.post(
        "/crm/v3/objects/calls/batch/read",
        json={"inputs": [{"id": i} for i in ids], "properties": ["hs_call_body", "hs_call_duration"]},
    )
    assert {r["properties"]["hs_call_body"] for r in read.json()["results"]} == {"Сделка закрыта ✅"}
    bad = api.post(
        "/crm/v3/objects/calls/batch/update",
        json={"inputs": [{"id": ids[0], "properties": {"hs_call_direction": "SIDEWAYS"}}]},
    )
    assert assert_crm_error(bad, 400, "VALIDATION_ERROR")["errors"][0]["code"] == "INVALID_OPTION"
    assert (
        api.post("/crm/v3/objects/calls/batch/archive", json={"inputs": [{"id": ids[0]}]}).status_code == 204
    )
    live = {r["id"] for r in walk_pages(api, "/crm/v3/objects/calls", limit="100")}
    archived = {r["id"] for r in walk_pages(api, "/crm/v3/objects/calls", limit="100", archived="true")}
    assert ids[0] in archived and ids[0] not in live and ids[1] in live


def test_ticket_pipelines_carry_ticket_state_and_decide_closed_date(api: httpx2.Client) -> None:
    pipelines = api.get("/crm/v3/pipelines/tickets").json()["results"]
    assert {p["id"] for p in pipelines} == {"0", "27461903"}
    default = next(p for p in pipelines if p["id"] == "0")
    states = {s["id"]: s["metadata"]["ticketState"] for s in default["stages"]}
    assert states == {"1": "OPEN", "2": "OPEN", "3": "OPEN", "4": "CLOSED"}
    assert api.get("/crm/pipelines/2026-03/tickets/0/stages/4").json()["metadata"] == {
        "ticketState": "CLOSED"
    }

    created = api.post(
        "/crm/v3/objects/tickets",
        json={"properties": {"subject": "Printer on fire", "hs_pipeline_stage": "1"}},
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["properties"]["hs_pipeline"] == "0"
    closed = api.patch(
        f"/crm/v3/objects/tickets/{ticket['id']}", json={"properties": {"hs_pipeline_stage": "4"}}
    ).json()
    assert closed["properties"]["hs_pipeline_stage"] == "4"
    read = api.get(f"/crm/v3/objects/tickets/{ticket['id']}", params={"properties": "closed_date"}).json()
    assert read["properties"]["closed_date"] == closed["updatedAt"]
    reopened = api.patch(
        f"/crm/v3/objects/tickets/{ticket['id']}", json={"properties": {"hs_pipeline_stage": "2"}}
    )
    assert reopened.status_code == 200
    read = api.get(f"/crm/v3/objects/tickets/{ticket['id']}", params={"properties": "closed_date"}).json()
    assert read["properties"]["closed_date"] is None


def test_ticket_stage_must_belong_to_its_pipeline(api: httpx2.Client) -> None:
    response = api.post(
        "/crm/v3/objects/tickets",
        json={
            "properties": {
                "subject": "Wrong stage",
                "hs_pipeline": "27461903",
                "hs_pipeline_stage": "1",
            }
        },
    )
    body = assert_crm_error(response, 400, "VALIDATION_ERROR")
    assert body["errors"][0]["code"] == "INVALID_OPTION"
    assert body["errors"][0]["context"] == {"propertyName": ["hs_pipeline_stage"]}


def test_seeded_tickets_link_contacts_companies_and_deals_with_hubspot_type_ids(
    sandbox: SandboxAdmin,
) -> None:
    tickets = sandbox.truth("tickets")
    assert all(t["associations"]["contacts"] for t in tickets)
    assert {tid for t in tickets for a in t["associations"]["contacts"] for tid in a["types"]} == {16}
    assert {tuple(a["types"]) for t in tickets for a in t["associations"]["companies"]} <= {(26, 339)}
    closed = [t for t in tickets if t["properties"]["hs_pipeline_stage"] in ("4", "27461906")]
    assert closed and all(t["properties"].get("closed_date") for t in closed)


def test_v4_batch_read_between_engagements_and_records(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    emails = sandbox.truth("emails")[:5]
    body = {"inputs": [{"id": e["id"]} for e in emails]}
    result = api.post("/crm/v4/associations/emails/contacts/batch/read", json=body).json()
    assert {r["from"]["id"] for r in result["results"]} == {e["id"] for e in emails}
    assert {t["typeId"] for r in result["results"] for to in r["to"] for t in to["associationTypes"]} == {198}
    labels = api.get("/crm/v4/associations/tasks/tickets/labels").json()["results"]
    assert [label["typeId"] for label in labels] == [230]


def test_tickets_need_the_tickets_scope(sandbox: SandboxAdmin) -> None:
    with _client(sandbox, ["crm.objects.contacts.read"]) as client:
        body = assert_crm_error(client.get("/crm/v3/objects/tickets"), 403, "MISSING_SCOPES")
        assert "tickets" in body["errors"][0]["context"]["requiredGranularScopes"]
        assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}
        assert_crm_error(client.get("/crm/v3/pipelines/tickets"), 403, "MISSING_SCOPES")
        assert client.get("/crm/v3/objects/notes").status_code == 200
    with _client(sandbox, ["tickets"]) as client:
        assert client.get("/crm/v3/objects/tickets").status_code == 200
        assert_crm_error(client.get("/crm/v3/objects/calls"), 403, "MISSING_SCOPES")


def test_email_content_is_redacted_without_sales_email_read(sandbox: SandboxAdmin) -> None:
    names = "hs_email_subject,hs_email_html,hs_email_direction"
    with _client(sandbox, ["crm.objects.contacts.read"]) as client:
        blank = client.get("/crm/v3/objects/emails", params={"properties": names, "limit": 100}).json()[
            "results"
        ]
    with _client(sandbox, ["crm.objects.contacts.read", "sales-email-read"]) as client:
        full = client.get("/crm/v3/objects/emails", params={"properties": names, "limit": 100}).json()[
            "results"
        ]
    assert {r["properties"]["hs_email_subject"] for r in blank} == {None}
    with _client(sandbox, ["crm.objects.contacts.read"]) as client:
        one = client.get(
            f"/crm/v3/objects/emails/{blank[0]['id']}", params={"propertiesWithHistory": "hs_email_text"}
        ).json()
    assert one["propertiesWithHistory"] == {"hs_email_text": []}
    assert {r["properties"]["hs_email_html"] for r in blank} == {None}
    assert all(r["properties"]["hs_email_direction"] for r in blank)
    assert all(r["properties"]["hs_email_subject"] for r in full)


def test_ticket_and_engagement_changes_fire_webhooks(
    api: httpx2.Client, sandbox: SandboxAdmin, webhook_inbox: WebhookInbox
) -> None:
    ticket = sandbox.truth("tickets")[0]
    contact = sandbox.truth("contacts")[3]["id"]
    assert (
        api.patch(
            f"/crm/v3/objects/tickets/{ticket['id']}", json={"properties": {"hs_ticket_priority": "URGENT"}}
        ).status_code
        == 200
    )
    sandbox.patch_object("tickets", ticket["id"], {"subject": "Edited in HubSpot"})
    note = api.post(
        "/crm/v3/objects/notes",
        json={
            "properties": {"hs_timestamp": "2026-01-05T10:00:00Z", "hs_note_body": "hello"},
            "associations": [
                {
                    "to": {"id": contact},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
                }
            ],
        },
    ).json()
    assert api.delete(f"/crm/v3/objects/tickets/{ticket['id']}").status_code == 204
    sandbox.flush_webhooks()
    events = webhook_inbox.events
    mine = [
        (e["subscriptionType"], e.get("propertyName"), e.get("propertyValue"), e.get("changeSource"))
        for e in events
        if e["objectId"] == int(ticket["id"])
    ]
    assert mine == [
        ("ticket.propertyChange", "hs_ticket_priority", "URGENT", "API"),
        ("ticket.propertyChange", "subject", "Edited in HubSpot", "CRM_UI"),
        ("ticket.deletion", None, None, "API"),
    ]
    note_events = [e for e in events if e["objectId"] == int(note["id"])]
    assert {(e["subscriptionType"], e["objectTypeId"]) for e in note_events} == {
        ("object.creation", "0-46"),
        ("object.associationChange", "0-46"),
    }
    contact_side = [e for e in events if e["objectId"] == int(contact)]
    assert [(e["subscriptionType"], e["associationType"]) for e in contact_side] == [
        ("contact.associationChange", "CONTACT_TO_NOTE"),
    ]


def test_seed_is_deterministic_and_scaled_by_options(sandbox: SandboxAdmin) -> None:
    first = sandbox.truth("tickets"), sandbox.truth("calls"), sandbox.threads()
    sandbox.reset(seed=7)
    assert (sandbox.truth("tickets"), sandbox.truth("calls"), sandbox.threads()) == first
    counts = sandbox.reset(tickets=30, engagements=75, threads=9)
    assert (counts["tickets"], counts["engagements"], counts["threads"]) == (30, 75, 9)
    assert len(sandbox.truth("tickets")) == 30 and len(sandbox.threads()) == 9
    assert sum(len(sandbox.truth(t)) for t in ENGAGEMENTS) == 75


def test_seed_holds_hostile_bodies_long_text_and_other_scripts(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    emails = sandbox.truth("emails")
    assert any("<script>" in (e["properties"].get("hs_email_html") or "") for e in emails)
    assert any("onerror=" in (e["properties"].get("hs_email_html") or "") for e in emails)
    notes = [n["properties"].get("hs_note_body") or "" for n in sandbox.truth("notes")]
    assert max(len(n) for n in notes) == 65_536
    texts = [
        v
        for t in ("tickets", *ENGAGEMENTS)
        for r in sandbox.truth(t)
        for v in r["properties"].values()
        if isinstance(v, str)
    ]
    texts += [m["text"] for thread in sandbox.threads() for m in thread["messages"]]
    assert any(re.search(r"[\u3040-\u30ff]", v) for v in texts), "Japanese"
    assert any(re.search(r"[\u0600-\u06ff]", v) for v in texts), "Arabic"
    assert any(re.search(r"[\u0400-\u04ff]", v) for v in texts), "Cyrillic"
    assert any(re.search(r"[\U0001F300-\U0001FAFF]", v) for v in texts), "emoji"
    calls = [c for c in sandbox.truth("calls") if c["properties"].get("hs_call_transcription_id")]
    sizes = []
    for call in calls:
        transcript = api.get(
            f"/crm/extensions/calling/2026-03/transcripts/{call['properties']['hs_call_transcription_id']}"
        ).json()
        assert transcript["engagementId"] == int(call["id"])
        sizes.append(sum(len(u["text"].encode()) for u in transcript["transcriptUtterances"]))
    assert max(sizes) > 100_000


def test_transcripts_need_their_scope_and_answer_404_for_unknown_ids(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    assert_crm_error(api.get("/crm/v3/extensions/calling/transcripts/42"), 404, "OBJECT_NOT_FOUND")
    with _client(sandbox, ["crm.objects.contacts.read"]) as client:
        response = client.get("/crm/v3/extensions/calling/transcripts/42")
        assert_crm_error(response, 403, "MISSING_SCOPES")


def test_ticket_owner_must_be_an_active_owner(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    ticket = sandbox.truth("tickets")[0]["id"]
    bad = api.patch(f"/crm/v3/objects/tickets/{ticket}", json={"properties": {"hubspot_owner_id": "123"}})
    assert assert_crm_error(bad, 400, "VALIDATION_ERROR")["errors"][0]["code"] == "INVALID_OPTION"
    owner = api.get("/crm/v3/owners").json()["results"][0]["id"]
    good = api.patch(f"/crm/v3/objects/tickets/{ticket}", json={"properties": {"hubspot_owner_id": owner}})
    assert good.json()["properties"]["hubspot_owner_id"] == owner


def test_ticket_upsert_by_a_custom_unique_property(api: httpx2.Client) -> None:
    created = api.post(
        "/crm/v3/properties/tickets",
        json={
            "name": "external_ticket_id",
            "label": "External ticket id",
            "type": "string",
            "fieldType": "text",
            "groupName": "ticketinformation",
            "hasUniqueValue": True,
        },
    )
    assert created.status_code == 201, created.text
    body = {
        "inputs": [
            {
                "id": "EXT-1",
                "idProperty": "external_ticket_id",
                "properties": {"subject": "From the helpdesk", "hs_pipeline_stage": "1"},
            }
        ]
    }
    first = api.post("/crm/v3/objects/tickets/batch/upsert", json=body).json()["results"][0]
    body["inputs"][0]["properties"] = {"subject": "Renamed in the helpdesk"}
    second = api.post("/crm/v3/objects/tickets/batch/upsert", json=body).json()["results"][0]
    assert (first["new"], second["new"]) == (True, False) and first["id"] == second["id"]
    assert second["properties"]["subject"] == "Renamed in the helpdesk"


def test_ticket_created_with_a_contact_fires_creation_and_association_events(
    api: httpx2.Client, sandbox: SandboxAdmin, webhook_inbox: WebhookInbox
) -> None:
    contact = sandbox.truth("contacts")[1]["id"]
    ticket = api.post(
        "/crm/v3/objects/tickets",
        json={
            "properties": {"subject": "Help", "hs_pipeline_stage": "1"},
            "associations": [
                {
                    "to": {"id": contact},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}],
                }
            ],
        },
    ).json()
    sandbox.flush_webhooks()
    events = {(e["subscriptionType"], e["objectId"], e.get("associationType")) for e in webhook_inbox.events}
    assert events == {
        ("ticket.creation", int(ticket["id"]), None),
        ("ticket.associationChange", int(ticket["id"]), "TICKET_TO_CONTACT"),
        ("contact.associationChange", int(contact), "CONTACT_TO_TICKET"),
    }


def test_cli_sizes_interactions_and_refuses_negative_ones() -> None:
    root = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "crm.sandbox",
        "--port",
        "0",
        "--contacts",
        "4",
        "--companies",
        "1",
        "--deals",
        "1",
        "--owners",
        "1",
        "--tickets",
        "2",
        "--engagements",
        "5",
        "--threads",
        "1",
    ]
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        with SandboxAdmin(proc.stdout.readline().strip()) as admin:
            assert len(admin.truth("tickets")) == 2 and len(admin.threads()) == 1
            assert sum(len(admin.truth(t)) for t in ENGAGEMENTS) == 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    refused = subprocess.run(
        [sys.executable, "-m", "crm.sandbox", "--tickets", "-1"],
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "--tickets" in refused.stderr
