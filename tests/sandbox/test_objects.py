"""CRM object endpoints over loopback HTTP: list, read, create, update, archive."""

from __future__ import annotations

import httpx2
import pytest
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

CONTACTS = "/crm/v3/objects/contacts"


def _all_pages(api: httpx2.Client, path: str, **params: object) -> list[dict]:
    records, after, pages = [], None, 0
    while True:
        query = dict(params, limit=params.get("limit", 7))
        if after:
            query["after"] = after
        body = api.get(path, params=query).json()
        records += body["results"]
        pages += 1
        assert pages < 100
        if "paging" not in body:
            return records
        after = body["paging"]["next"]["after"]


def test_list_pages_through_every_contact_in_id_order_and_omits_paging_on_the_last_page(
    api: httpx2.Client,
) -> None:
    records = _all_pages(api, CONTACTS)
    ids = [int(r["id"]) for r in records]
    assert len(ids) == 40
    assert ids == sorted(ids)
    last = api.get(CONTACTS, params={"limit": 7, "after": records[-5]["id"]}).json()
    assert len(last["results"]) == 5
    assert "paging" not in last


def test_list_returns_default_properties_as_strings_with_hubspot_bookkeeping(api: httpx2.Client) -> None:
    body = api.get(CONTACTS, params={"limit": 3}).json()
    contact = body["results"][0]
    assert set(contact["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert contact["properties"]["hs_object_id"] == contact["id"]
    assert contact["createdAt"] == contact["properties"]["createdate"]
    assert contact["updatedAt"] == contact["properties"]["lastmodifieddate"]
    assert contact["createdAt"].endswith("Z") and len(contact["createdAt"]) == 24
    assert contact["archived"] is False
    assert body["paging"]["next"]["after"] == str(int(body["results"][-1]["id"]) + 1)


def test_list_sends_null_for_defined_properties_without_value_and_ignores_unknown_ones(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    contact_id = api.get(CONTACTS, params={"limit": 1}).json()["results"][0]["id"]
    api.patch(f"{CONTACTS}/{contact_id}", json={"properties": {"jobtitle": ""}}).raise_for_status()
    body = api.get(CONTACTS, params={"limit": 1, "properties": "jobtitle,no_such_thing"}).json()
    assert body["results"][0]["properties"]["jobtitle"] is None
    assert "no_such_thing" not in body["results"][0]["properties"]


def test_list_accepts_properties_repeated_or_comma_separated(api: httpx2.Client) -> None:
    repeated = api.get(
        CONTACTS, params=[("limit", "2"), ("properties", "city"), ("properties", "country")]
    ).json()
    joined = api.get(CONTACTS, params={"limit": 2, "properties": "city,country"}).json()
    assert repeated["results"] == joined["results"]
    assert set(joined["results"][0]["properties"]) >= {"city", "country"}


def test_list_limit_is_clamped_to_100(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.reset(contacts=130, companies=0, deals=0)
    body = api.get(CONTACTS, params={"limit": 500}).json()
    assert len(body["results"]) == 100
    assert "paging" in body


def test_companies_and_deals_use_hs_lastmodifieddate(api: httpx2.Client) -> None:
    company = api.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    deal = api.get("/crm/v3/objects/deals", params={"limit": 1}).json()["results"][0]
    assert "hs_lastmodifieddate" in company["properties"] and "lastmodifieddate" not in company["properties"]
    assert {"dealname", "amount", "closedate", "pipeline", "dealstage", "hs_lastmodifieddate"} <= set(
        deal["properties"]
    )


def test_list_with_associations_names_the_v3_association_types(api: httpx2.Client) -> None:
    body = api.get(CONTACTS, params={"limit": 40, "associations": "companies"}).json()
    linked = [c for c in body["results"] if "associations" in c]
    assert linked, "the seed links most contacts to a company"
    types = {row["type"] for row in linked[0]["associations"]["companies"]["results"]}
    assert types == {"contact_to_company", "contact_to_company_unlabeled"}


def test_get_by_id_and_by_email(api: httpx2.Client) -> None:
    contact = api.get(CONTACTS, params={"limit": 1}).json()["results"][0]
    by_id = api.get(f"{CONTACTS}/{contact['id']}").json()
    by_email = api.get(
        f"{CONTACTS}/{contact['properties']['email'].upper()}", params={"idProperty": "email"}
    ).json()
    assert by_id["id"] == by_email["id"] == contact["id"]


def test_get_unknown_record_is_404_object_not_found(api: httpx2.Client) -> None:
    body = assert_crm_error(api.get(f"{CONTACTS}/999999999"), 404, "OBJECT_NOT_FOUND")
    assert body["message"] == "resource not found"


def test_date_versioned_path_serves_the_same_records(api: httpx2.Client) -> None:
    v3 = api.get(CONTACTS, params={"limit": 5}).json()
    dated = api.get("/crm/objects/2026-03/contacts", params={"limit": 5}).json()
    assert [r["id"] for r in v3["results"]] == [r["id"] for r in dated["results"]]


def test_create_returns_201_with_string_values_and_bookkeeping(api: httpx2.Client) -> None:
    response = api.post(CONTACTS, json={"properties": {"email": "Ada@Example.com", "firstname": "Ada"}})
    assert response.status_code == 201
    created = response.json()
    assert created["properties"]["email"] == "ada@example.com"
    assert created["properties"]["hs_object_id"] == created["id"]
    assert created["properties"]["createdate"] == created["properties"]["lastmodifieddate"]
    assert api.get(f"{CONTACTS}/{created['id']}").json()["properties"]["firstname"] == "Ada"


def test_create_with_a_taken_email_is_409_naming_the_existing_contact(api: httpx2.Client) -> None:
    existing = api.get(CONTACTS, params={"limit": 1}).json()["results"][0]
    response = api.post(CONTACTS, json={"properties": {"email": existing["properties"]["email"]}})
    body = assert_crm_error(response, 409, "CONFLICT")
    assert body["message"] == f"Contact already exists. Existing ID: {existing['id']}"


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"email": "x@example.com", "favcolor": "blue"}, "PROPERTY_DOESNT_EXIST"),
        ({"email": "x@example.com", "hs_object_id": "5"}, "READ_ONLY_VALUE"),
        ({"email": "not an email"}, "INVALID_EMAIL"),
        ({"email": "x@example.com", "lifecyclestage": "Lead"}, "INVALID_OPTION"),
        ({"email": "x@example.com", "hubspot_owner_id": "123"}, "INVALID_OPTION"),
    ],
)
def test_create_with_invalid_values_is_400_in_hubspots_validation_dialect(
    api: httpx2.Client, properties: dict, code: str
) -> None:
    body = assert_crm_error(api.post(CONTACTS, json={"properties": properties}), 400, "VALIDATION_ERROR")
    assert body["message"].startswith("Property values were not valid: ")
    assert [e["code"] for e in body["errors"]] == [code]
    bad = next(name for name in properties if name != "email") if code not in ("INVALID_EMAIL",) else "email"
    assert body["errors"][0]["context"]["propertyName"] == [bad]


@pytest.mark.parametrize("amount", ["1,500", "1.500.00", "12abc"])
def test_malformed_numbers_are_refused(api: httpx2.Client, amount: str) -> None:
    deal = {"dealname": "Test", "dealstage": "qualifiedtobuy", "amount": amount}
    body = assert_crm_error(
        api.post("/crm/v3/objects/deals", json={"properties": deal}), 400, "VALIDATION_ERROR"
    )
    assert body["errors"][0]["code"] == "INVALID_INTEGER"


def test_deal_stage_must_belong_to_the_deals_pipeline(api: httpx2.Client) -> None:
    deal = {"dealname": "Test", "pipeline": "default", "dealstage": "11348542"}
    body = assert_crm_error(
        api.post("/crm/v3/objects/deals", json={"properties": deal}), 400, "VALIDATION_ERROR"
    )
    assert body["errors"][0]["context"]["propertyName"] == ["dealstage"]


def test_deal_create_assumes_the_default_pipeline_and_derives_closed_flags(api: httpx2.Client) -> None:
    response = api.post(
        "/crm/v3/objects/deals",
        json={"properties": {"dealname": "Won", "dealstage": "closedwon", "closedate": "2024-05-01"}},
    )
    assert response.status_code == 201
    deal_id = response.json()["id"]
    deal = api.get(
        f"/crm/v3/objects/deals/{deal_id}",
        params={"properties": "pipeline,hs_is_closed,hs_is_closed_won,closedate"},
    ).json()
    assert deal["properties"]["pipeline"] == "default"
    assert deal["properties"]["hs_is_closed"] == "true"
    assert deal["properties"]["hs_is_closed_won"] == "true"
    assert deal["properties"]["closedate"] == "2024-05-01T00:00:00.000Z"


def test_create_with_association_links_both_ways(api: httpx2.Client) -> None:
    company = api.get("/crm/v3/objects/companies", params={"limit": 1}).json()["results"][0]
    contact = api.post(
        CONTACTS,
        json={
            "properties": {"email": "linked@example.com"},
            "associations": [
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ],
        },
    ).json()
    back = api.get(f"/crm/v3/objects/companies/{company['id']}", params={"associations": "contacts"}).json()
    assert contact["id"] in {row["id"] for row in back["associations"]["contacts"]["results"]}


def test_patch_changes_values_and_bumps_last_modified(api: httpx2.Client) -> None:
    contact = api.get(CONTACTS, params={"limit": 1}).json()["results"][0]
    updated = api.patch(f"{CONTACTS}/{contact['id']}", json={"properties": {"firstname": "Grace"}})
    assert updated.status_code == 200
    body = updated.json()
    assert body["properties"]["firstname"] == "Grace"
    assert body["properties"]["lastmodifieddate"] > contact["properties"]["lastmodifieddate"]


def test_patch_with_unchanged_values_leaves_last_modified_alone(api: httpx2.Client) -> None:
    contact = api.get(CONTACTS, params={"limit": 1}).json()["results"][0]
    same = {"firstname": contact["properties"]["firstname"]}
    body = api.patch(f"{CONTACTS}/{contact['id']}", json={"properties": same}).json()
    assert body["updatedAt"] == contact["updatedAt"]


def test_patch_by_email_and_clearing_with_empty_string(api: httpx2.Client) -> None:
    contact = api.get(CONTACTS, params={"limit": 1, "properties": "email,jobtitle"}).json()["results"][0]
    email = contact["properties"]["email"]
    api.patch(
        f"{CONTACTS}/{email}", params={"idProperty": "email"}, json={"properties": {"jobtitle": ""}}
    ).raise_for_status()
    again = api.get(f"{CONTACTS}/{contact['id']}", params={"properties": "jobtitle"}).json()
    assert again["properties"]["jobtitle"] is None


def test_delete_archives_without_touching_last_modified(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = api.get(CONTACTS, params={"limit": 1}).json()["results"][0]
    assert api.delete(f"{CONTACTS}/{contact['id']}").status_code == 204
    assert api.get(f"{CONTACTS}/{contact['id']}").status_code == 404
    archived = api.get(f"{CONTACTS}/{contact['id']}", params={"archived": "true"}).json()
    assert archived["archived"] is True and "archivedAt" in archived
    assert archived["updatedAt"] == contact["updatedAt"]
    only_archived = api.get(CONTACTS, params={"archived": "true"}).json()
    assert [r["id"] for r in only_archived["results"]] == [contact["id"]]
    live_ids = {r["id"] for r in _all_pages(api, CONTACTS)}
    assert contact["id"] not in live_ids and len(live_ids) == 39


def test_properties_with_history_lowers_the_page_size_to_50(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    sandbox.reset(contacts=60, companies=0, deals=0)
    body = api.get(CONTACTS, params={"limit": 100, "propertiesWithHistory": "firstname"}).json()
    assert len(body["results"]) == 50
    history = body["results"][0]["propertiesWithHistory"]["firstname"]
    assert history[0]["value"] == body["results"][0]["properties"].get("firstname", history[0]["value"])
