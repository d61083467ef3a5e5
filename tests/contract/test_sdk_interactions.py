"""HubSpot's official SDK (hubspot-api-client 12) against the sandbox's tickets, engagements,
ticket pipelines and conversations inbox.

The SDK has typed clients for tickets (``hubspot.crm.tickets``) and the five engagements
(``hubspot.crm.objects.{notes,calls,emails,meetings,tasks}``). It has none for the
conversations inbox (only ``hubspot.conversations.visitor_identification``), so those
tests go through its generic ``api_request``, which still builds HubSpot's headers and auth.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects.notes import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.tasks import BatchReadInputSimplePublicObjectId, SimplePublicObjectId
from hubspot.crm.tickets import ApiException as TicketsApiException
from hubspot.crm.tickets import Filter, FilterGroup, PublicObjectSearchRequest, SimplePublicObjectInput
from hubspot.crm.tickets import SimplePublicObjectInputForCreate as TicketCreate

from crm.sandbox.admin import SandboxAdmin

ENGAGEMENTS = {
    "notes": ("hs_note_body", 202),
    "calls": ("hs_call_body", 194),
    "emails": ("hs_email_subject", 198),
    "meetings": ("hs_meeting_title", 200),
    "tasks": ("hs_task_subject", 204),
}


@pytest.fixture
def hubspot(sandbox: SandboxAdmin, sandbox_token: str) -> HubSpot:
    return HubSpot(access_token=sandbox_token, host=sandbox.url)


def _engagement_api(hubspot: HubSpot, object_type: str) -> Any:
    return getattr(hubspot.crm.objects, object_type)


def test_get_all_tickets_with_typed_fields(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    tickets = hubspot.crm.tickets.get_all(properties=["subject", "hs_pipeline", "hs_pipeline_stage"])
    truth = {t["id"]: t for t in sandbox.truth("tickets")}
    assert {t.id for t in tickets} == set(truth) and len(tickets) == len(truth)
    first = tickets[0]
    assert isinstance(first.created_at, datetime) and first.archived is False
    assert first.properties["subject"] == truth[first.id]["properties"]["subject"]
    assert first.properties["hs_pipeline"] in ("0", "27461903")


@pytest.mark.parametrize("object_type", sorted(ENGAGEMENTS))
def test_engagement_pages_create_and_search_through_the_sdk(
    hubspot: HubSpot, sandbox: SandboxAdmin, object_type: str
) -> None:
    api = _engagement_api(hubspot, object_type)
    field, to_contact = ENGAGEMENTS[object_type]
    seen, after = [], None
    while True:
        page = api.basic_api.get_page(limit=5, after=after, properties=["hs_timestamp", field])
        seen += page.results
        if page.paging is None:
            break
        after = page.paging.next.after
    assert {r.id for r in seen} == {r["id"] for r in sandbox.truth(object_type)}
    assert all(r.properties["hs_timestamp"] for r in seen)

    contact = sandbox.truth("contacts")[0]["id"]
    created = api.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": "2030-01-01T12:00:00Z", field: "Logged through the SDK — ✓"},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=contact),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=to_contact
                        )
                    ],
                )
            ],
        )
    )
    assert created.properties[field] == "Logged through the SDK — ✓"
    assert isinstance(created.updated_at, datetime)
    found = api.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[
                        Filter(property_name="hs_timestamp", operator="GTE", value="2030-01-01T00:00:00Z"),
                    ]
                )
            ],
            properties=[field],
        )
    )
    assert [r.id for r in found.results] == [created.id] and found.total == 1
    linked = hubspot.crm.associations.v4.basic_api.get_page("contacts", contact, object_type)
    assert created.id in {str(r.to_object_id) for r in linked.results}


def test_ticket_page_with_associations_parses_v3_association_names(
    hubspot: HubSpot, sandbox: SandboxAdmin
) -> None:
    page = hubspot.crm.tickets.basic_api.get_page(limit=100, associations=["contacts", "companies"])
    truth = {t["id"]: t for t in sandbox.truth("tickets")}
    first = page.results[0]
    contacts = first.associations["contacts"].results
    assert {c.id for c in contacts} == {a["id"] for a in truth[first.id]["associations"]["contacts"]}
    assert {c.type for c in contacts} == {"ticket_to_contact"}
    with_company = next(t for t in page.results if t.associations and "companies" in t.associations)
    assert {c.type for c in with_company.associations["companies"].results} == {
        "ticket_to_company",
        "ticket_to_company_unlabeled",
    }


def test_batch_read_tasks_and_archive_one(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    ids = [t["id"] for t in sandbox.truth("tasks")[:3]]
    result = hubspot.crm.objects.tasks.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids],
            properties=["hs_task_status", "hs_task_subject"],
            properties_with_history=[],
        )
    )
    assert sorted(r.id for r in result.results) == sorted(ids)
    assert all(r.properties["hs_task_status"] for r in result.results)
    hubspot.crm.objects.tasks.basic_api.archive(ids[0])
    assert next(t for t in sandbox.truth("tasks") if t["id"] == ids[0])["archived"] is True


def test_ticket_update_search_and_closed_stage(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    ticket = next(t for t in sandbox.truth("tickets") if t["properties"]["hs_pipeline_stage"] == "1")
    updated = hubspot.crm.tickets.basic_api.update(
        ticket["id"],
        SimplePublicObjectInput(properties={"hs_pipeline_stage": "4", "hs_ticket_priority": "HIGH"}),
    )
    assert updated.properties["hs_pipeline_stage"] == "4"
    found = hubspot.crm.tickets.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(filters=[Filter(property_name="hs_object_id", operator="EQ", value=ticket["id"])])
            ],
            properties=["closed_date", "hs_ticket_priority"],
        )
    )
    assert found.results[0].properties["hs_ticket_priority"] == "HIGH"
    assert found.results[0].properties["closed_date"]


def test_ticket_with_a_stage_outside_its_pipeline_is_a_400_api_exception(hubspot: HubSpot) -> None:
    with pytest.raises(TicketsApiException) as caught:
        hubspot.crm.tickets.basic_api.create(
            TicketCreate(properties={"subject": "x", "hs_pipeline": "0", "hs_pipeline_stage": "27461904"})
        )
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["errors"][0]["code"] == "INVALID_OPTION"


def test_ticket_pipelines_parse_with_ticket_state(hubspot: HubSpot) -> None:
    pipelines = hubspot.crm.pipelines.pipelines_api.get_all(object_type="tickets").results
    default = next(p for p in pipelines if p.id == "0")
    assert [s.id for s in default.stages] == ["1", "2", "3", "4"]
    assert [s.metadata["ticketState"] for s in default.stages] == ["OPEN", "OPEN", "OPEN", "CLOSED"]
    stage = hubspot.crm.pipelines.pipeline_stages_api.get_by_id(
        object_type="tickets", pipeline_id="0", stage_id="4"
    )
    assert stage.label == "Closed" and isinstance(stage.created_at, datetime)


def test_missing_tickets_scope_is_a_403_with_hubspots_body(sandbox: SandboxAdmin) -> None:
    token = sandbox.private_app_token(scopes=["crm.objects.contacts.read"])
    client = HubSpot(access_token=token, host=sandbox.url)
    with pytest.raises(TicketsApiException) as caught:
        client.crm.tickets.basic_api.get_page()
    assert caught.value.status == 403
    body = json.loads(caught.value.body)
    assert body["category"] == "MISSING_SCOPES" and body["correlationId"]
    assert "tickets" in body["errors"][0]["context"]["requiredGranularScopes"]


def _request(hubspot: HubSpot, sandbox: SandboxAdmin, path: str, **options: Any) -> Any:
    return hubspot.api_request({"base_url": sandbox.url, "path": path, **options})


def test_conversations_threads_and_messages_through_the_sdks_generic_request(
    hubspot: HubSpot, sandbox: SandboxAdmin
) -> None:
    threads, after = [], None
    while True:
        response = _request(
            hubspot,
            sandbox,
            "/conversations/v3/conversations/threads",
            qs={"limit": 4, **({"after": after} if after else {})},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        threads += body["results"]
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
    assert {t["id"] for t in threads} == {t["id"] for t in sandbox.threads()}
    thread = threads[0]
    messages = _request(
        hubspot, sandbox, f"/conversations/v3/conversations/threads/{thread['id']}/messages"
    ).json()
    assert messages["results"] and all(
        m["conversationsThreadId"] == thread["id"] for m in messages["results"]
    )
    closed = _request(
        hubspot,
        sandbox,
        f"/conversations/v3/conversations/threads/{thread['id']}",
        method="PATCH",
        body={"status": "CLOSED"},
    )
    assert closed.status_code == 200 and closed.json()["status"] == "CLOSED"
    refused = HubSpot(access_token=sandbox.private_app_token(scopes=["tickets"]), host=sandbox.url)
    response = _request(refused, sandbox, "/conversations/v3/conversations/threads")
    assert response.status_code == 403 and response.json()["category"] == "MISSING_SCOPES"
