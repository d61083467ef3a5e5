"""HubSpot's official Python SDK (hubspot-api-client) against the second portal of a two-portal sandbox.

The SDK knows nothing of portals: its token decides. A code approved for portal 202 must
give the SDK a token whose introspection, account and records are portal 202's.
"""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, SimplePublicObjectInputForCreate

from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS

A, B = 101, 202
REDIRECT = DEFAULT_REDIRECT_URIS[0]


@pytest.fixture
def hubspot_b(two_portals: SandboxAdmin) -> HubSpot:
    return HubSpot(access_token=two_portals.private_app_token(portal_id=B), host=two_portals.url)


def test_sdk_exchanges_a_code_for_the_second_portal_and_introspects_it(two_portals):
    api = HubSpot(host=two_portals.url)
    code = two_portals.oauth_code(redirect_uri=REDIRECT, portal_id=B)["code"]

    token = api.oauth.tokens_api.create(
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    info = api.oauth.access_tokens_api.get(token.access_token)

    assert info.hub_id == B and info.hub_domain == f"portal-{B}.sandbox.example.com"
    page = HubSpot(access_token=token.access_token, host=two_portals.url).crm.contacts.basic_api.get_page(
        limit=5
    )
    truth_b = {r["id"] for r in two_portals.truth("contacts", portal_id=B)}
    assert {c.id for c in page.results} <= truth_b


def test_sdk_lists_only_the_second_portals_contacts(hubspot_b, two_portals):
    contacts = hubspot_b.crm.contacts.get_all(properties=["email"])

    truth_b = {r["id"]: r["properties"]["email"] for r in two_portals.truth("contacts", portal_id=B)}
    assert {c.id: c.properties["email"] for c in contacts} == truth_b
    assert not set(truth_b) & {r["id"] for r in two_portals.truth("contacts", portal_id=A)}


def test_sdk_gets_404_for_the_first_portals_record(hubspot_b, two_portals):
    record_a = two_portals.truth("contacts", portal_id=A)[0]["id"]

    with pytest.raises(ApiException) as caught:
        hubspot_b.crm.contacts.basic_api.get_by_id(record_a)

    assert caught.value.status == 404
    assert json.loads(caught.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_sdk_creates_in_the_second_portal_only(hubspot_b, two_portals):
    created = hubspot_b.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "sdk-in-b@example.com"})
    )

    assert created.properties["email"] == "sdk-in-b@example.com"
    assert created.id in {r["id"] for r in two_portals.truth("contacts", portal_id=B)}
    assert created.id not in {r["id"] for r in two_portals.truth("contacts", portal_id=A)}
