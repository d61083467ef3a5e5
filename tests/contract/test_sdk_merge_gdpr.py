"""HubSpot's official Python SDK against the sandbox's merge and GDPR-delete endpoints.

``basic_api.merge`` parses the answer into ``SimplePublicObject``; ``basic_api.purge``
expects an empty 2xx. The SDK is generated from HubSpot's own specification, so these hold
the sandbox to HubSpot's shapes rather than to our reading of them.
"""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import PublicMergeInput as CompanyMergeInput
from hubspot.crm.contacts import ApiException, PublicGdprDeleteInput, PublicMergeInput

from crm.sandbox.admin import SandboxAdmin


@pytest.fixture
def hubspot(sandbox: SandboxAdmin, sandbox_token: str) -> HubSpot:
    return HubSpot(access_token=sandbox_token, host=sandbox.url)


def test_sdk_merges_two_contacts_into_a_typed_record(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    primary, other = (r["id"] for r in sandbox.truth("contacts")[:2])

    merged = hubspot.crm.contacts.basic_api.merge(
        public_merge_input=PublicMergeInput(primary_object_id=primary, object_id_to_merge=other)
    )

    assert merged.id not in (primary, other) and merged.archived is False
    assert sorted(merged.properties["hs_merged_object_ids"].split(";")) == sorted([primary, other])
    again = hubspot.crm.contacts.basic_api.get_by_id(contact_id=other)
    assert again.id == merged.id


def test_sdk_merges_two_companies(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    primary, other = (r["id"] for r in sandbox.truth("companies")[:2])
    merged = hubspot.crm.companies.basic_api.merge(
        public_merge_input=CompanyMergeInput(primary_object_id=primary, object_id_to_merge=other)
    )
    assert merged.properties["hs_merged_object_ids"]
    assert {r["id"] for r in sandbox.truth("companies")} >= {merged.id}


def test_sdk_merge_of_an_unknown_contact_raises_with_hubspots_error_body(
    hubspot: HubSpot, sandbox: SandboxAdmin
) -> None:
    primary = sandbox.truth("contacts")[0]["id"]
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.basic_api.merge(
            public_merge_input=PublicMergeInput(primary_object_id=primary, object_id_to_merge="999")
        )
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_sdk_gdpr_delete_by_id_and_by_email(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    first, second = sandbox.truth("contacts")[:2]

    hubspot.crm.contacts.basic_api.purge(
        public_gdpr_delete_input=PublicGdprDeleteInput(object_id=first["id"])
    )
    hubspot.crm.contacts.basic_api.purge(
        public_gdpr_delete_input=PublicGdprDeleteInput(
            object_id=second["properties"]["email"], id_property="email"
        )
    )

    left = {r["id"] for r in sandbox.truth("contacts")}
    assert not {first["id"], second["id"]} & left
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.basic_api.get_by_id(contact_id=first["id"], archived=True)
    assert caught.value.status == 404
