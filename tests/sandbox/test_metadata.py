"""Properties, pipelines, owners and account info."""

from __future__ import annotations

import httpx2
import pytest
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

PROPS = "/crm/v3/properties/contacts"
PRONOUNS = {
    "name": "pronouns",
    "label": "Pronouns",
    "type": "enumeration",
    "fieldType": "select",
    "groupName": "contactinformation",
    "options": [{"label": "she/her", "value": "she_her"}, {"label": "they/them", "value": "they_them"}],
}


def test_property_list_describes_hubspot_defined_properties(api: httpx2.Client) -> None:
    results = {p["name"]: p for p in api.get(PROPS).json()["results"]}
    assert {
        "email",
        "firstname",
        "lastname",
        "lifecyclestage",
        "hubspot_owner_id",
        "lastmodifieddate",
    } <= set(results)
    stage = results["lifecyclestage"]
    assert stage["type"] == "enumeration" and "lead" in [o["value"] for o in stage["options"]]
    assert results["email"]["options"] == [] and results["email"]["hubspotDefined"] is True
    assert results["lastmodifieddate"]["modificationMetadata"]["readOnlyValue"] is True
    assert (
        results["hubspot_owner_id"]["externalOptions"] is True
        and results["hubspot_owner_id"]["options"] == []
    )


def test_property_get_and_404(api: httpx2.Client) -> None:
    assert api.get(f"{PROPS}/email").json()["label"] == "Email"
    assert_crm_error(api.get(f"{PROPS}/nope"), 404, "OBJECT_NOT_FOUND")


def test_company_and_deal_properties_have_their_own_groups(api: httpx2.Client) -> None:
    company = {p["name"]: p for p in api.get("/crm/v3/properties/companies").json()["results"]}
    deal = {p["name"]: p for p in api.get("/crm/properties/2026-03/deals").json()["results"]}
    assert company["name"]["groupName"] == "companyinformation"
    assert deal["dealname"]["groupName"] == "dealinformation"
    assert deal["hs_is_closed"]["calculated"] is True


def test_create_custom_property_then_duplicate_is_409(api: httpx2.Client) -> None:
    created = api.post(PROPS, json=PRONOUNS)
    assert created.status_code == 201
    body = created.json()
    assert body["hubspotDefined"] is False and body["modificationMetadata"]["archivable"] is True
    assert [o["value"] for o in body["options"]] == ["she_her", "they_them"]
    assert "pronouns" in {p["name"] for p in api.get(PROPS).json()["results"]}
    assert_crm_error(api.post(PROPS, json=PRONOUNS), 409, "OBJECT_ALREADY_EXISTS")


@pytest.mark.parametrize(
    "change",
    [
        {"name": None},
        {"type": "colour"},
        {"fieldType": "number"},
        {"options": []},
        {"groupName": "nope"},
        {"name": "Bad Name"},
    ],
)
def test_invalid_property_definitions_are_400(api: httpx2.Client, change: dict) -> None:
    definition = {**PRONOUNS, **change}
    assert_crm_error(api.post(PROPS, json=definition), 400, "VALIDATION_ERROR")


def test_custom_property_can_be_archived_but_hubspot_defined_cannot(api: httpx2.Client) -> None:
    api.post(PROPS, json=PRONOUNS).raise_for_status()
    assert api.delete(f"{PROPS}/pronouns").status_code == 204
    assert api.get(f"{PROPS}/pronouns").status_code == 404
    assert [p["name"] for p in api.get(PROPS, params={"archived": "true"}).json()["results"]] == ["pronouns"]
    assert_crm_error(api.delete(f"{PROPS}/email"), 400, "VALIDATION_ERROR")


def test_unique_custom_property_works_as_id_property(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    api.post(
        PROPS,
        json={
            "name": "member_no",
            "label": "Member no",
            "type": "string",
            "fieldType": "text",
            "groupName": "contactinformation",
            "hasUniqueValue": True,
        },
    ).raise_for_status()
    contact = sandbox.truth("contacts")[0]
    api.patch(
        f"/crm/v3/objects/contacts/{contact['id']}", json={"properties": {"member_no": "M-1"}}
    ).raise_for_status()
    found = api.get("/crm/v3/objects/contacts/M-1", params={"idProperty": "member_no"}).json()
    assert found["id"] == contact["id"]
    other = sandbox.truth("contacts")[1]["id"]
    clash = api.patch(f"/crm/v3/objects/contacts/{other}", json={"properties": {"member_no": "m-1"}})
    assert_crm_error(clash, 409, "CONFLICT")


def test_property_groups_list_create_and_duplicate(api: httpx2.Client) -> None:
    groups = [g["name"] for g in api.get(f"{PROPS}/groups").json()["results"]]
    assert "contactinformation" in groups
    created = api.post(f"{PROPS}/groups", json={"name": "dashboard", "label": "Dashboard"})
    assert created.status_code == 201 and created.json()["name"] == "dashboard"
    assert_crm_error(
        api.post(f"{PROPS}/groups", json={"name": "dashboard", "label": "Again"}),
        409,
        "OBJECT_ALREADY_EXISTS",
    )


def test_pipeline_by_id_and_its_stages(api: httpx2.Client) -> None:
    pipelines = api.get("/crm/v3/pipelines/deals").json()["results"]
    default = api.get("/crm/v3/pipelines/deals/default").json()
    assert default["createdAt"] == "1970-01-01T00:00:00.000Z"
    stages = api.get("/crm/v3/pipelines/deals/default/stages").json()["results"]
    assert [s["id"] for s in stages] == [s["id"] for s in default["stages"]]
    custom = next(p for p in pipelines if p["id"] != "default")
    assert all(
        s["id"].isdigit() and s["metadata"]["probability"] in {"0.0", "0.3", "0.7", "1.0"}
        for s in custom["stages"]
    )
    assert_crm_error(api.get("/crm/v3/pipelines/deals/nope"), 404, "OBJECT_NOT_FOUND")


def test_owners_filter_by_email_and_read_by_user_id(api: httpx2.Client) -> None:
    owners = api.get("/crm/v3/owners").json()["results"]
    assert len(owners) == 4
    owner = owners[1]
    by_email = api.get("/crm/v3/owners/", params={"email": owner["email"].upper()}).json()["results"]
    assert [o["id"] for o in by_email] == [owner["id"]]
    assert api.get(f"/crm/v3/owners/{owner['id']}").json()["email"] == owner["email"]
    by_user = api.get(f"/crm/v3/owners/{owner['userId']}", params={"idProperty": "userId"}).json()
    assert by_user["id"] == owner["id"]
    assert_crm_error(api.get("/crm/v3/owners/1"), 404, "OBJECT_NOT_FOUND")


def test_records_reference_owners_by_owner_id(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    owner_ids = {o["id"] for o in api.get("/crm/v3/owners").json()["results"]}
    used = {r["properties"].get("hubspot_owner_id") for r in sandbox.truth("deals")}
    assert used <= owner_ids | {None} and used & owner_ids


def test_account_info_details(api: httpx2.Client) -> None:
    details = api.get("/account-info/v3/details").json()
    assert details["portalId"] == 62515
    assert {
        "uiDomain",
        "timeZone",
        "companyCurrency",
        "utcOffset",
        "dataHostingLocation",
        "accountType",
    } <= set(details)
    assert api.get("/account-info/2026-03/details").json() == details
