"""Associations v4: batch read with per-input paging, create, archive, labels, single records."""

from __future__ import annotations

import httpx2
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

V4 = "/crm/v4/associations"


def _company_with_contacts(sandbox: SandboxAdmin, at_least: int = 1) -> dict:
    return next(c for c in sandbox.truth("companies") if len(c["associations"]["contacts"]) >= at_least)


def test_seeded_portal_links_contacts_companies_and_deals(sandbox: SandboxAdmin) -> None:
    contacts, deals = sandbox.truth("contacts"), sandbox.truth("deals")
    assert sum(bool(c["associations"]["companies"]) for c in contacts) >= 30
    assert all(d["associations"]["companies"] for d in deals)
    assert all(d["associations"]["contacts"] for d in deals)
    primary = next(c for c in contacts if c["associations"]["companies"])["associations"]["companies"][0]
    assert primary["types"] == [1, 279]


def test_batch_read_returns_numeric_to_ids_with_type_specs(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    deal = sandbox.truth("deals")[0]
    body = api.post(f"{V4}/deals/contacts/batch/read", json={"inputs": [{"id": deal["id"]}]}).json()
    row = body["results"][0]
    assert row["from"] == {"id": deal["id"]}
    assert {t["toObjectId"] for t in row["to"]} == {int(c["id"]) for c in deal["associations"]["contacts"]}
    assert row["to"][0]["associationTypes"] == [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]
    assert "paging" not in row


def test_batch_read_pages_each_input_separately(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(association_page_size=2)
    company = _company_with_contacts(sandbox, at_least=3)
    expected = sorted(int(c["id"]) for c in company["associations"]["contacts"])
    seen, after = [], None
    while True:
        item = {"id": company["id"], **({"after": after} if after else {})}
        row = api.post(f"{V4}/companies/contacts/batch/read", json={"inputs": [item]}).json()["results"][0]
        seen += [t["toObjectId"] for t in row["to"]]
        if "paging" not in row:
            break
        after = row["paging"]["next"]["after"]
    assert seen == expected


def test_input_without_associations_is_a_207_no_associations_found(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    lonely = api.post(
        "/crm/v3/objects/deals", json={"properties": {"dealname": "Alone", "dealstage": "qualifiedtobuy"}}
    ).json()
    response = api.post(f"{V4}/deals/companies/batch/read", json={"inputs": [{"id": lonely["id"]}]})
    assert response.status_code == 207
    body = response.json()
    assert body["results"] == [] and body["numErrors"] == 1
    error = body["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert error["message"] == f"No company is associated with deal {lonely['id']}."
    assert error["context"] == {
        "fromObjectId": [lonely["id"]],
        "fromObjectType": ["deal"],
        "toObjectType": ["company"],
    }


def test_batch_create_with_primary_type_adds_the_unlabeled_one_in_both_directions(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    deal = api.post(
        "/crm/v3/objects/deals", json={"properties": {"dealname": "New", "dealstage": "qualifiedtobuy"}}
    ).json()
    company = sandbox.truth("companies")[0]
    response = api.post(
        f"{V4}/deals/companies/batch/create",
        json={
            "inputs": [
                {
                    "from": {"id": deal["id"]},
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}],
                }
            ]
        },
    )
    assert response.status_code == 201
    result = response.json()["results"][0]
    assert result["fromObjectTypeId"] == "0-3" and result["toObjectTypeId"] == "0-2"
    assert result["labels"] == ["Primary"]
    back = api.post(f"{V4}/companies/deals/batch/read", json={"inputs": [{"id": company["id"]}]}).json()
    types = next(t for t in back["results"][0]["to"] if t["toObjectId"] == int(deal["id"]))[
        "associationTypes"
    ]
    assert {t["typeId"] for t in types} == {6, 342}


def test_invalid_type_id_is_400(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    deal, contact = sandbox.truth("deals")[0], sandbox.truth("contacts")[0]
    body = {
        "inputs": [
            {
                "from": {"id": deal["id"]},
                "to": {"id": contact["id"]},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
            }
        ]
    }
    assert_crm_error(api.post(f"{V4}/deals/contacts/batch/create", json=body), 400, "VALIDATION_ERROR")


def test_batch_archive_removes_both_directions(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    company = _company_with_contacts(sandbox)
    contact_id = company["associations"]["contacts"][0]["id"]
    response = api.post(
        f"{V4}/companies/contacts/batch/archive",
        json={"inputs": [{"from": {"id": company["id"]}, "to": [{"id": contact_id}]}]},
    )
    assert response.status_code == 204
    contact = next(c for c in sandbox.truth("contacts") if c["id"] == contact_id)
    assert company["id"] not in {row["id"] for row in contact["associations"]["companies"]}


def test_labels_list_the_hubspot_defined_types_of_a_pair(api: httpx2.Client) -> None:
    labels = api.get(f"{V4}/contacts/companies/labels").json()["results"]
    assert labels == [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
    ]


def test_single_record_associations_put_get_delete(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = next(c for c in sandbox.truth("contacts") if not c["associations"]["deals"])
    deal = sandbox.truth("deals")[0]
    base = f"/crm/v4/objects/contacts/{contact['id']}/associations"
    assert api.put(f"{base}/default/deals/{deal['id']}").status_code == 200
    page = api.get(f"{base}/deals").json()
    assert [r["toObjectId"] for r in page["results"]] == [int(deal["id"])]
    assert page["results"][0]["associationTypes"][0]["typeId"] == 4
    assert api.delete(f"{base}/deals/{deal['id']}").status_code == 204
    assert api.get(f"{base}/deals").json() == {"results": []}


def test_date_versioned_association_path(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    deal = sandbox.truth("deals")[0]
    v4 = api.post(f"{V4}/deals/companies/batch/read", json={"inputs": [{"id": deal["id"]}]}).json()
    dated = api.post(
        "/crm/associations/2026-03/deals/companies/batch/read", json={"inputs": [{"id": deal["id"]}]}
    ).json()
    assert v4["results"] == dated["results"]


def test_more_than_1000_read_inputs_is_400(api: httpx2.Client) -> None:
    body = {"inputs": [{"id": str(i)} for i in range(1001)]}
    assert_crm_error(api.post(f"{V4}/deals/companies/batch/read", json=body), 400, "VALIDATION_ERROR")


def test_associations_to_archived_records_are_hidden(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    deal = sandbox.truth("deals")[0]
    company_id = deal["associations"]["companies"][0]["id"]
    api.delete(f"/crm/v3/objects/companies/{company_id}").raise_for_status()
    response = api.post(f"{V4}/deals/companies/batch/read", json={"inputs": [{"id": deal["id"]}]})
    assert response.status_code == 207
