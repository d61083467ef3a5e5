"""HubSpot's official Python SDK (hubspot-api-client) against the sandbox's CRM side.

The SDK parses every response into its own models, so a field the sandbox leaves out or
mistypes shows up here as None, a ValueError or an exception. The SDK is lenient in places,
so each test asserts on the fields it reads back, and errors on ``ApiException``'s status
and JSON body.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate

from crm.sandbox.admin import SandboxAdmin


@pytest.fixture
def hubspot(sandbox: SandboxAdmin, sandbox_token: str) -> HubSpot:
    return HubSpot(access_token=sandbox_token, host=sandbox.url)


def test_get_all_contacts_pages_to_the_end_with_typed_fields(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    contacts = hubspot.crm.contacts.get_all(properties=["email", "firstname", "lifecyclestage"])
    truth = {r["id"]: r for r in sandbox.truth("contacts")}
    assert len(contacts) == 40
    assert {c.id for c in contacts} == set(truth)
    first = contacts[0]
    assert isinstance(first.created_at, datetime) and isinstance(first.updated_at, datetime)
    assert first.archived is False
    assert first.properties["email"] == truth[first.id]["properties"]["email"]
    assert first.properties["hs_object_id"] == first.id
    assert set(first.properties) >= {"email", "firstname", "lifecyclestage", "createdate", "lastmodifieddate"}


def test_batch_update_changes_every_input(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    ids = [r["id"] for r in sandbox.truth("contacts")[:3]]
    inputs = [
        SimplePublicObjectBatchInput(id=i, properties={"jobtitle": f"Chief {n}"}) for n, i in enumerate(ids)
    ]
    result = hubspot.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert result.status == "COMPLETE"
    assert sorted(r.id for r in result.results) == sorted(ids)
    after = {r["id"]: r["properties"].get("jobtitle") for r in sandbox.truth("contacts")}
    assert [after[i] for i in ids] == ["Chief 0", "Chief 1", "Chief 2"]


def test_batch_read_with_an_unknown_id_is_a_207_the_sdk_parses(
    hubspot: HubSpot, sandbox: SandboxAdmin
) -> None:
    known = sandbox.truth("contacts")[0]["id"]
    result = hubspot.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=known), SimplePublicObjectId(id="424242")],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert [r.id for r in result.results] == [known]
    assert result.num_errors == 1
    assert result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context == {"ids": ["424242"]}


def test_search_with_a_filter_matches_the_sandbox_truth(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    expected = sorted(
        r["id"] for r in sandbox.truth("contacts") if r["properties"].get("lifecyclestage") == "customer"
    )
    request = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(filters=[Filter(property_name="lifecyclestage", operator="EQ", value="customer")])
        ],
        properties=["email", "lifecyclestage"],
        limit=100,
    )
    page = hubspot.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert expected, "seed 7 has customers"
    assert page.total == len(expected)
    assert sorted(r.id for r in page.results) == expected
    assert all(r.properties["lifecyclestage"] == "customer" for r in page.results)
    assert page.paging is None


def test_create_contact_then_duplicate_email_is_a_409_api_exception(hubspot: HubSpot) -> None:
    created = hubspot.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "sdk@example.com", "firstname": "Sdk"})
    )
    assert created.properties["email"] == "sdk@example.com"
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "sdk@example.com"})
        )
    assert caught.value.status == 409
    body = json.loads(caught.value.body)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {created.id}"


def test_unknown_contact_is_a_404_api_exception_with_hubspots_body(hubspot: HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.basic_api.get_by_id("987654321")
    assert caught.value.status == 404
    body = json.loads(caught.value.body)
    assert body["category"] == "OBJECT_NOT_FOUND"
    assert body["correlationId"] == caught.value.headers["X-HubSpot-Correlation-Id"]


def test_bad_token_is_a_401_api_exception(sandbox: SandboxAdmin) -> None:
    client = HubSpot(access_token="not-a-token", host=sandbox.url)
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.get_page(limit=1)
    assert caught.value.status == 401
    assert json.loads(caught.value.body)["category"] in ("INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION")


def test_rate_limit_is_a_429_api_exception_with_hubspots_policy(
    hubspot: HubSpot, sandbox: SandboxAdmin
) -> None:
    # A POST, because urllib3 (under the SDK) silently waits out Retry-After on a GET.
    sandbox.configure(burst_limit=2)
    read = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id="1")], properties=[], properties_with_history=[]
    )
    hubspot.crm.contacts.batch_api.read(read)
    hubspot.crm.contacts.batch_api.read(read)
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.batch_api.read(read)
    assert caught.value.status == 429
    body = json.loads(caught.value.body)
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 10


def test_deal_pipelines_have_hubspots_stage_ids_and_string_metadata(hubspot: HubSpot) -> None:
    pipelines = hubspot.crm.pipelines.pipelines_api.get_all(object_type="deals").results
    default = next(p for p in pipelines if p.id == "default")
    assert default.label == "Sales Pipeline"
    stages = {s.id: s.metadata for s in default.stages}
    assert list(stages) == [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ]
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["appointmentscheduled"] == {"isClosed": "false", "probability": "0.2"}
    custom = [p for p in pipelines if p.id != "default"]
    assert len(custom) == 1 and custom[0].id.isdigit()


def test_owners_page_with_forward_paging(hubspot: HubSpot) -> None:
    first = hubspot.crm.owners.owners_api.get_page(limit=3)
    assert len(first.results) == 3
    rest = hubspot.crm.owners.owners_api.get_page(limit=3, after=first.paging.next.after)
    assert len(rest.results) == 1 and rest.paging is None
    owner = first.results[0]
    assert owner.type == "PERSON" and owner.email and isinstance(owner.user_id, int) and owner.id.isdigit()


def test_association_batch_read_returns_typed_associations_and_no_associations_errors(
    hubspot: HubSpot, sandbox: SandboxAdmin
) -> None:
    contacts = sandbox.truth("contacts")
    linked = next(c for c in contacts if c["associations"]["companies"])
    company_id = linked["associations"]["companies"][0]["id"]
    lonely = hubspot.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "x@y.io"})
    )
    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[
            PublicFetchAssociationsBatchRequest(id=linked["id"]),
            PublicFetchAssociationsBatchRequest(id=lonely.id),
        ]
    )
    result = hubspot.crm.associations.v4.batch_api.get_page("contacts", "companies", request)
    assert len(result.results) == 1
    row = result.results[0]
    assert row._from.id == linked["id"]
    assert row.to[0].to_object_id == company_id
    assert {(t.category, t.type_id, t.label) for t in row.to[0].association_types} == {
        ("HUBSPOT_DEFINED", 1, "Primary"),
        ("HUBSPOT_DEFINED", 279, None),
    }
    assert result.num_errors == 1
    assert result.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"


def test_create_custom_contact_property_and_a_duplicate_is_409(hubspot: HubSpot) -> None:
    definition = PropertyCreate(
        name="pronouns",
        label="Pronouns",
        type="enumeration",
        field_type="select",
        group_name="contactinformation",
        options=[
            {"label": "she/her", "value": "she_her", "hidden": False},
            {"label": "they/them", "value": "they_them", "hidden": False},
        ],
    )
    created = hubspot.crm.properties.core_api.create(object_type="contacts", property_create=definition)
    assert (created.name, created.type, created.field_type) == ("pronouns", "enumeration", "select")
    assert [o.value for o in created.options] == ["she_her", "they_them"]
    assert created.hubspot_defined is False
    fetched = hubspot.crm.properties.core_api.get_by_name(object_type="contacts", property_name="pronouns")
    assert fetched.label == "Pronouns"
    with pytest.raises(PropertiesApiException) as caught:
        hubspot.crm.properties.core_api.create(object_type="contacts", property_create=definition)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["category"] == "OBJECT_ALREADY_EXISTS"


def test_new_custom_property_is_writable_and_validated(hubspot: HubSpot, sandbox: SandboxAdmin) -> None:
    hubspot.crm.properties.core_api.create(
        object_type="contacts",
        property_create=PropertyCreate(
            name="pronouns",
            label="Pronouns",
            type="enumeration",
            field_type="select",
            group_name="contactinformation",
            options=[{"label": "she/her", "value": "she_her", "hidden": False}],
        ),
    )
    contact_id = sandbox.truth("contacts")[0]["id"]
    hubspot.crm.contacts.basic_api.update(contact_id, {"properties": {"pronouns": "she_her"}})
    assert (
        hubspot.crm.contacts.basic_api.get_by_id(contact_id, properties=["pronouns"]).properties["pronouns"]
        == "she_her"
    )
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.basic_api.update(contact_id, {"properties": {"pronouns": "he_him"}})
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["errors"][0]["code"] == "INVALID_OPTION"
