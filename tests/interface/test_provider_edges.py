"""What each provider does at its own edges, beyond the shared conformance suite."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from crm.config import load_settings
from crm.crms import provider_for
from crm.errors import NeedsReconnect, WebhookRejected
from crm.hubspot.deliveries import signature_v3
from crm.interface import WebhookRequest

URI = "https://crm.example.com/hubspot/webhook"
SECRET = "edge-secret"


def hubspot_delivery(events: list[dict], *, now_ms: int = 1_780_000_000_000) -> WebhookRequest:
    body = json.dumps(events).encode()
    timestamp = str(now_ms)
    signature = signature_v3(client_secret=SECRET, method="POST", uri=URI, body=body, timestamp=timestamp)
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}
    return WebhookRequest("POST", URI, headers, body)


def test_hubspot_events_name_their_type_by_subscription_or_type_id_and_their_kind_of_change() -> None:
    events = [
        {"eventId": 1, "portalId": 101, "occurredAt": 1_780_000_000_250, "subscriptionType": "deal.creation",
         "objectId": 5},
        {"eventId": 2, "portalId": 101, "subscriptionType": "object.propertyChange", "objectTypeId": "0-46",
         "objectId": 6},
        {"eventId": 3, "portalId": 101, "subscriptionType": "contact.merge", "objectId": 7},
        {"eventId": 4, "portalId": 101, "subscriptionType": "contact.associationChange", "fromObjectId": 8},
        {"eventId": 5, "portalId": 101, "subscriptionType": "product.creation", "objectId": 9},
    ]  # fmt: skip

    found = provider_for("hubspot").read_webhook(
        hubspot_delivery(events), secret=SECRET, now_ms=1_780_000_000_000
    )

    assert [(e.object_type, e.object_id, e.change) for e in found] == [
        ("deals", "5", "created"),
        ("notes", "6", "updated"),
        ("contacts", "7", "merged"),
        ("contacts", "8", "associations"),
        (None, "9", "created"),
    ]
    assert found[0].occurred_at == "2026-05-28T20:26:40.250Z"
    assert {e.account_id for e in found} == {"101"}


def test_hubspot_refuses_a_delivery_it_has_no_secret_for_or_that_is_stale() -> None:
    request = hubspot_delivery(
        [{"eventId": 1, "portalId": 101, "subscriptionType": "deal.creation", "objectId": 5}]
    )
    hubspot = provider_for("hubspot")

    with pytest.raises(WebhookRejected) as no_secret:
        hubspot.read_webhook(request, secret="")
    with pytest.raises(WebhookRejected) as stale:
        hubspot.read_webhook(request, secret=SECRET, now_ms=1_780_000_000_000 + 600_000)

    assert no_secret.value.reason == "not_configured"
    assert stale.value.reason == "stale_timestamp"


def test_hubspot_connect_opens_the_connection_the_settings_hold(sandbox, tmp_path: Path) -> None:
    token = sandbox.private_app_token()
    settings = load_settings(
        {"HUBSPOT_ACCESS_TOKEN": token, "HUBSPOT_BASE_URL": sandbox.url, "CRM_DB": str(tmp_path / "c.db")}, {}
    )

    with provider_for("hubspot").connect(settings) as api:
        me = api.identity()

    assert me.account_id == str(sandbox.config()["portal_id"])
    assert me.ui_host == "app.hubspot.com"


def pipedrive_delivery(meta: dict, *, user: str = "hooks", password: str = "pw") -> WebhookRequest:
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    body = json.dumps({"meta": meta, "data": {}, "previous": None}).encode()
    return WebhookRequest("POST", "https://crm.example.com/pipedrive/webhook", {"Authorization": auth}, body)


def test_pipedrive_events_carry_the_company_the_entity_and_the_action() -> None:
    meta = {"action": "delete", "entity": "organization", "entity_id": "12", "company_id": "77", "id": "e-1",
            "timestamp": 1_780_000_000}  # fmt: skip

    (event,) = provider_for("pipedrive").read_webhook(pipedrive_delivery(meta), secret="hooks:pw")

    assert (event.account_id, event.object_type, event.object_id, event.change) == (
        "77",
        "companies",
        "12",
        "deleted",
    )
    assert event.occurred_at == "2026-05-28T20:26:40Z"
    assert event.event_id == "e-1"


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (WebhookRequest("POST", "u", {}, b"{}"), "missing_headers"),
        (WebhookRequest("POST", "u", {"authorization": "Basic !!!"}, b"{}"), "missing_headers"),
        (pipedrive_delivery({"action": "change"}, password="other"), "bad_signature"),
        (WebhookRequest("POST", "u", pipedrive_delivery({}).headers, b"[1, 2]"), "malformed"),
    ],
)
def test_pipedrive_refuses_deliveries_without_the_right_credentials_or_shape(
    request_: WebhookRequest, reason: str
) -> None:
    with pytest.raises(WebhookRejected) as refused:
        provider_for("pipedrive").read_webhook(request_, secret="hooks:pw")
    assert refused.value.reason == reason


def test_a_hubspot_refresh_token_revoked_through_the_provider_is_dead(sandbox, tmp_path: Path) -> None:
    settings = load_settings(
        {"HUBSPOT_ACCESS_TOKEN": "unused", "HUBSPOT_BASE_URL": sandbox.url, "CRM_DB": str(tmp_path / "c.db")},
        {},
    ).for_sandbox(sandbox.url)
    code = sandbox.oauth_code(
        client_id=settings.client_id, redirect_uri=settings.redirect_uri, scopes=list(settings.scopes)
    )["code"]
    hubspot = provider_for("hubspot")
    grant = hubspot.exchange_code(settings, code)
    assert grant.refresh_token

    hubspot.revoke(settings, grant.refresh_token)

    with pytest.raises(NeedsReconnect):
        hubspot.refresh(settings, grant.refresh_token)
