"""Webhooks fired by the whole sandbox: API writes and UI-style edits reach a receiver, signed."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Iterator

import httpx2
import pytest

from crm.sandbox.config import DEFAULT_CLIENT_SECRET


@pytest.fixture
def api(sandbox, sandbox_url: str, sandbox_token: str) -> Iterator[httpx2.Client]:
    headers = {"Authorization": f"Bearer {sandbox_token}"}
    with httpx2.Client(base_url=sandbox_url, headers=headers, timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture
def hooked(sandbox, receiver):
    sandbox.configure(webhook_url=receiver.url, webhook_retry_delays=[0.05, 0.05], webhook_batch_ms=30)
    return receiver


def all_events(requests: list[dict]) -> list[dict]:
    return [event for request in requests for event in json.loads(request["body"])]


def wait_for_event(receiver, match, timeout: float = 5.0) -> dict:
    count = 1
    while True:
        events = all_events(receiver.wait_for(count, timeout))
        found = [e for e in events if match(e)]
        if found:
            return found[0]
        count = len(receiver.requests) + 1


def test_api_created_contact_is_delivered_as_a_signed_creation_event(api, hooked, sandbox_url):
    created = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "hook@example.com"}})
    assert created.status_code == 201, created.text
    contact_id = int(created.json()["id"])

    event = wait_for_event(hooked, lambda e: e["subscriptionType"] == "contact.creation")

    assert event["objectId"] == contact_id
    assert event["changeSource"] == "API" and event["portalId"] == 62515
    request = next(r for r in hooked.requests if contact_id in [e["objectId"] for e in json.loads(r["body"])])
    timestamp = request["headers"]["x-hubspot-request-timestamp"]
    signed = b"POST" + hooked.url.encode() + request["body"] + timestamp.encode()
    expected = base64.b64encode(hmac.new(DEFAULT_CLIENT_SECRET.encode(), signed, "sha256").digest()).decode()
    assert request["headers"]["x-hubspot-signature-v3"] == expected


def test_ui_edit_is_delivered_as_a_crm_ui_property_change(sandbox, hooked):
    contact = sandbox.truth("contacts")[0]

    sandbox.patch_object("contacts", contact["id"], {"firstname": "Renamed"})

    def is_firstname_change(event: dict) -> bool:
        return event["subscriptionType"] == "contact.propertyChange" and event["propertyName"] == "firstname"

    event = wait_for_event(hooked, is_firstname_change)
    assert event["objectId"] == int(contact["id"])
    assert event["propertyValue"] == "Renamed"
    assert event["changeSource"] == "CRM_UI"


def test_admin_webhooks_route_lists_deliveries(sandbox, hooked, api):
    api.post("/crm/v3/objects/contacts", json={"properties": {"email": "listed@example.com"}})
    hooked.wait_for(1)
    flushed = httpx2.post(f"{sandbox.url}/_sandbox/webhooks/flush", json={"timeout": 5}, trust_env=False)
    assert flushed.json()["flushed"] is True

    listing = sandbox.webhooks()

    assert listing["deliveries"][0]["status"] == 200
    assert listing["deliveries"][0]["url"] == hooked.url
    assert listing["deliveries"][0]["event_count"] >= 1
    assert listing["queued"] == 0


def test_failed_delivery_from_the_sandbox_is_retried(sandbox, hooked, api):
    hooked.answer(503)

    api.post("/crm/v3/objects/contacts", json={"properties": {"email": "retry@example.com"}})

    first, second = hooked.wait_for(2)
    assert json.loads(first["body"])[0]["attemptNumber"] == 0
    assert json.loads(second["body"])[0]["attemptNumber"] == 1
    assert json.loads(first["body"])[0]["eventId"] == json.loads(second["body"])[0]["eventId"]
